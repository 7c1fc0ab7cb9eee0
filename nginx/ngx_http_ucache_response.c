/*
 * ngx_http_ucache_response.c - a cached value turned into nginx's response
 * structures, so that nginx's own filters do the HTTP: the not-modified
 * filter answers If-None-Match / If-Modified-Since with a 304, the header
 * filter drops the body of a HEAD, writes Date, Server and the status line.
 *
 * The value is what ucache.wsgi.Accelerator stores (python/ucache/wsgi.py,
 * _store; the engine already removed the tag envelope):
 *
 *     HTTP/1.1 <status>\r\n<Name: value\r\n>*Content-Length: N\r\n\r\n<body>
 *
 * A value not starting with "HTTP/" is the body of a 200, as on the
 * modifier1 111 path (plugins/ucache/wire/http.c), unless it still starts
 * with the tag envelope's reserved bytes.  The value is untrusted
 * bytes: a head without its blank line, a bad status, a header line
 * without a colon or with a bare CR or LF, or a Content-Length other than
 * the body's length is refused (the request is a miss), never half sent.
 */
#include "ngx_http_ucache.h"

/* The Accelerator's stale-while-revalidate mark (wsgi.py FRESH_HEADER):
 * the page is fresh until this Unix time, served STALE after it until its
 * expiry.  Internal: never sent to the client. */
static ngx_str_t fresh_header = ngx_string("X-Accelerator-Fresh-Until");

typedef struct {
	ngx_str_t name;
	ngx_str_t value;
} ucache_line_t;

/* No byte of [p, end) could end a line or a header name (a bare CR or
 * LF, a NUL; with names, a space or a control character): such a byte
 * would let the value write headers of its own into the response. */
static ngx_int_t clean(u_char *p, u_char *end, ngx_uint_t name)
{
	for (; p < end; p++)
		if (*p == '\r' || *p == '\n' || *p == '\0' || (name && (*p <= ' ' || *p == 0x7f)))
			return NGX_ERROR;
	return NGX_OK;
}

/* A line of the head [p, end): "Name: value", the value without the
 * spaces around it. */
static ngx_int_t split_line(u_char *p, u_char *end, ucache_line_t *l)
{
	u_char *colon = ngx_strlchr(p, end, ':');

	if (colon == NULL || colon == p || clean(p, colon, 1) != NGX_OK || clean(colon, end, 0) != NGX_OK)
		return NGX_ERROR;
	l->name.data = p;
	l->name.len = colon - p;
	for (p = colon + 1; p < end && (*p == ' ' || *p == '\t'); p++)
		;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	l->value.data = p;
	l->value.len = end - p;
	return NGX_OK;
}

/* "HTTP/1.1 200 OK": the status (100..599) and its "200 OK" text. */
static ngx_int_t parse_status(ngx_http_request_t *r, u_char *p, u_char *end)
{
	u_char *sp = ngx_strlchr(p, end, ' ');
	ngx_int_t code;

	if (sp == NULL || end - sp < 4 || (end - sp > 4 && sp[4] != ' ') || clean(p, end, 0) != NGX_OK)
		return NGX_ERROR;
	code = ngx_atoi(sp + 1, 3);
	if (code < 100 || code > 599)
		return NGX_ERROR;
	r->headers_out.status = code;
	r->headers_out.status_line.data = sp + 1;
	r->headers_out.status_line.len = end - sp - 1;
	return NGX_OK;
}

/* "1733526000.123" (seconds, optional fraction) against nginx's clock. */
static ngx_uint_t is_stale(ngx_str_t *v)
{
	ngx_time_t *now = ngx_timeofday();
	u_char *dot = ngx_strlchr(v->data, v->data + v->len, '.');
	time_t sec = ngx_atotm(v->data, (dot ? dot : v->data + v->len) - v->data);
	ngx_int_t ms = 0;

	if (sec == NGX_ERROR)
		return 0;
	if (dot && v->data + v->len - dot >= 4)
		ms = ngx_atoi(dot + 1, 3);
	return now->sec > sec || (now->sec == sec && (ngx_int_t)now->msec >= (ms < 0 ? 0 : ms));
}

static ngx_table_elt_t *push_header(ngx_http_request_t *r, ucache_line_t *l)
{
	ngx_table_elt_t *h = ngx_list_push(&r->headers_out.headers);

	if (h == NULL)
		return NULL;
	h->hash = 1;
	h->key = l->name;
	h->value = l->value;
	h->lowcase_key = NULL;
	return h;
}

#define NAME_IS(l, lit) ((l)->name.len == sizeof(lit) - 1 && ngx_strncasecmp((l)->name.data, (u_char *)(lit), \
									 sizeof(lit) - 1) == 0)

/* One stored header into r->headers_out.  Date and Server: nginx writes
 * its own (as proxy_hide_header does by default); hop-by-hop headers
 * describe the connection the page was rendered on, not this one. */
static ngx_int_t add_header(ngx_http_request_t *r, ucache_line_t *l, off_t body_len, ngx_uint_t *stale,
			    const char **why)
{
	ngx_table_elt_t *h;

	if (NAME_IS(l, "Content-Length")) {
		if (ngx_atoof(l->value.data, l->value.len) != body_len) {
			*why = "its Content-Length is not the length of its body";
			return NGX_DECLINED;
		}
		return NGX_OK;
	}
	if (NAME_IS(l, "Content-Type")) {
		/* whole: a stored charset makes the charset filter leave it alone */
		r->headers_out.content_type = l->value;
		r->headers_out.content_type_len = l->value.len;
		return NGX_OK;
	}
	if (l->name.len == fresh_header.len && ngx_strncasecmp(l->name.data, fresh_header.data, fresh_header.len) == 0) {
		*stale = is_stale(&l->value);
		return NGX_OK;
	}
	if (NAME_IS(l, "Date") || NAME_IS(l, "Server") || NAME_IS(l, "Connection") || NAME_IS(l, "Keep-Alive") ||
	    NAME_IS(l, "Transfer-Encoding"))
		return NGX_OK;
	h = push_header(r, l);
	if (h == NULL)
		return NGX_ERROR;
	if (NAME_IS(l, "ETag")) {
		r->headers_out.etag = h;
	} else if (NAME_IS(l, "Last-Modified")) {
		r->headers_out.last_modified = h;
		r->headers_out.last_modified_time = ngx_parse_http_time(l->value.data, l->value.len);
	} else if (NAME_IS(l, "Content-Encoding")) {
		r->headers_out.content_encoding = h;
	}
	return NGX_OK;
}

/* The head [p, end) (without its blank line): status line, then headers. */
static ngx_int_t parse_head(ngx_http_request_t *r, u_char *p, u_char *end, off_t body_len, ngx_uint_t *stale,
			    const char **why)
{
	u_char *eol = ngx_strlcasestrn(p, end, (u_char *)"\r\n", 1);
	ucache_line_t l;
	ngx_int_t rc;

	if (parse_status(r, p, eol ? eol : end) != NGX_OK) {
		*why = "its status line is not \"HTTP/x.y NNN reason\"";
		return NGX_DECLINED;
	}
	while (eol) {
		p = eol + 2;
		eol = ngx_strlcasestrn(p, end, (u_char *)"\r\n", 1);
		if (split_line(p, eol ? eol : end, &l) != NGX_OK) {
			*why = "a header line is not \"Name: value\" (no colon, or a CR, LF or NUL)";
			return NGX_DECLINED;
		}
		rc = add_header(r, &l, body_len, stale, why);
		if (rc != NGX_OK)
			return rc;
	}
	return NGX_OK;
}

static void body_buf(ngx_http_request_t *r, ngx_buf_t *b, u_char *body, size_t len, ngx_chain_t *out)
{
	r->headers_out.content_length_n = len;
	if (len == 0)
		r->header_only = 1;   /* a zero-length memory buffer is an alert in nginx */
	ngx_memzero(b, sizeof(ngx_buf_t));
	b->pos = body;
	b->last = body + len;
	b->memory = 1;
	b->last_buf = (r == r->main) ? 1 : 0;
	b->last_in_chain = 1;
	out->buf = b;
	out->next = NULL;
}

/* Undo a half-parsed head: the fallback location (error_page 404 = @app)
 * must start from nginx's empty response, not carry the refused headers. */
static ngx_int_t reset_headers_out(ngx_http_request_t *r)
{
	ngx_str_null(&r->headers_out.status_line);
	ngx_str_null(&r->headers_out.content_type);
	r->headers_out.status = 0;
	r->headers_out.content_type_len = 0;
	r->headers_out.etag = NULL;
	r->headers_out.last_modified = NULL;
	r->headers_out.content_encoding = NULL;
	r->headers_out.last_modified_time = -1;
	r->headers_out.content_length_n = -1;
	return ngx_list_init(&r->headers_out.headers, r->pool, 20, sizeof(ngx_table_elt_t));
}

ngx_int_t ngx_http_ucache_parse(ngx_http_request_t *r, u_char *val, size_t len, ngx_chain_t *out,
				ngx_uint_t *stale, const char **why)
{
	ngx_buf_t *b = ngx_palloc(r->pool, sizeof(ngx_buf_t));
	u_char *blank;
	ngx_int_t rc;

	*stale = 0;
	if (b == NULL)
		return NGX_ERROR;
	/* an envelope the engine did not take off: tags it could not judge,
	 * so possibly invalidated; never sent */
	if (len >= sizeof(UCACHE_TAG_MAGIC) - 1 && ngx_memcmp(val, UCACHE_TAG_MAGIC, sizeof(UCACHE_TAG_MAGIC) - 1) == 0) {
		*why = "it still carries its tag envelope";
		return NGX_DECLINED;
	}
	if (len < 5 || ngx_strncmp(val, "HTTP/", 5) != 0) {
		r->headers_out.status = NGX_HTTP_OK;
		if (ngx_http_set_content_type(r) != NGX_OK)
			return NGX_ERROR;
		body_buf(r, b, val, len, out);
		return NGX_OK;
	}
	blank = ngx_strlcasestrn(val, val + len, (u_char *)"\r\n\r\n", 3);
	if (blank == NULL) {
		*why = "it starts with \"HTTP/\" but has no blank line after its head";
		return NGX_DECLINED;
	}
	rc = parse_head(r, val, blank, (off_t)(val + len - blank - 4), stale, why);
	if (rc != NGX_OK)
		return reset_headers_out(r) == NGX_OK ? rc : NGX_ERROR;
	body_buf(r, b, blank + 4, val + len - blank - 4, out);
	return NGX_OK;
}
