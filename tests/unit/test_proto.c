/*
 * test_proto.c - the modifier1 111 wire protocol (plugins/ucache/wire/):
 * every modifier2's request parser, each error class, the magic vars, the
 * HTTP helpers and the dump record codec.  Linked with plugins/ucache/wire/ alone (no
 * uWSGI, no engine); the Makefile runs it plain and under ASan+UBSan.
 *
 * Every packet is copied into a malloc'd buffer of its exact size before
 * parsing (pkt_dup), so that ASan reports any read past the packet.  The
 * last test replays tests/fuzz/regressions/ and checks that each file is
 * refused with the error class its name starts with.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto.h"

/* ---------------------------------------------------------------- helpers */

struct buf {
	char *p;
	size_t len;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->len + n + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void buf_u16(struct buf *b, uint16_t v)
{
	char le[2];

	ucp_put_le16(le, v);
	buf_add(b, le, 2);
}

static void buf_var(struct buf *b, const char *k, const char *v)
{
	buf_u16(b, (uint16_t) strlen(k));
	buf_add(b, k, strlen(k));
	buf_u16(b, (uint16_t) strlen(v));
	buf_add(b, v, strlen(v));
}

static void buf_item(struct buf *b, const char *s)
{
	buf_u16(b, (uint16_t) strlen(s));
	buf_add(b, s, strlen(s));
}

/* An exact-size heap copy: reading past it is an ASan error. */
static char *pkt_dup(const char *p, size_t len)
{
	char *d = malloc(len ? len : 1);

	assert_non_null(d);
	if (len)
		memcpy(d, p, len);
	return d;
}

/* Parse body (copied to an exact-size buffer); r's pointers are rebased
 * onto `body` afterwards so the caller can compare them. */
static int parse(uint8_t m2, const char *body, size_t len, struct ucp_request *r)
{
	char *copy = pkt_dup(body, len);
	int rc = ucp_request_parse(m2, copy, len, r);

	if (r->key)
		r->key = body + (r->key - copy);
	if (r->value)
		r->value = body + (r->value - copy);
	if (r->cache)
		r->cache = body + (r->cache - copy);
	if (r->tags)
		r->tags = body + (r->tags - copy);
	if (r->inm)
		r->inm = body + (r->inm - copy);
	free(copy);
	return rc;
}

static void assert_span(const char *p, size_t len, const char *expect)
{
	assert_non_null(p);
	assert_int_equal(len, strlen(expect));
	assert_memory_equal(p, expect, len);
}

/* ---------------------------------------------------------------- numbers */

static void numbers_and_strings(void **state)
{
	uint64_t v = 7;

	(void) state;
	assert_int_equal(ucp_parse_u64("0", 1, &v), 0);
	assert_true(v == 0);
	assert_int_equal(ucp_parse_u64("18446744073709551615", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(ucp_parse_u64("18446744073709551616", 20, &v), -1);
	assert_int_equal(ucp_parse_u64("123456789012345678901", 21, &v), -1);
	assert_int_equal(ucp_parse_u64("", 0, &v), -1);
	assert_int_equal(ucp_parse_u64("+1", 2, &v), -1);
	assert_int_equal(ucp_parse_u64("-1", 2, &v), -1);
	assert_int_equal(ucp_parse_u64("1 ", 2, &v), -1);
	assert_true(ucp_streq("get", 3, "get"));
	assert_false(ucp_streq("get", 2, "get"));
	assert_false(ucp_streq("gex", 3, "get"));
	assert_true(ucp_streq(NULL, 0, ""));
}

static void integers_and_header(void **state)
{
	unsigned char b[8];

	(void) state;
	ucp_put_le16(b, 0xbeef);
	assert_int_equal(b[0], 0xef);
	assert_int_equal(ucp_le16(b), 0xbeef);
	ucp_put_le64(b, UINT64_C(0x0102030405060708));
	assert_int_equal(b[0], 8);
	assert_int_equal(b[7], 1);
	assert_true(ucp_le64(b) == UINT64_C(0x0102030405060708));
	ucp_header(b, 0x1234, 17);
	assert_int_equal(b[0], 111);
	assert_int_equal(b[1], 0x34);
	assert_int_equal(b[2], 0x12);
	assert_int_equal(b[3], 17);
}

/* --------------------------------------------------------- raw-key packets */

static void raw_key_commands(void **state)
{
	static char big[UCP_KEY_MAX + 1];
	struct ucp_request r;

	(void) state;
	assert_int_equal(parse(0, "/index", 6, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_GET);
	assert_false(r.write);
	assert_span(r.key, r.key_len, "/index");
	assert_int_equal(parse(5, "k", 1, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_GET);
	assert_int_equal(parse(2, "k", 1, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_DEL);
	assert_true(r.write);
	assert_int_equal(parse(0, "", 0, &r), -UCP_PERR_EMPTY);
	assert_int_equal(parse(2, "", 0, &r), -UCP_PERR_EMPTY);
	assert_int_equal(parse(5, "", 0, &r), -UCP_PERR_EMPTY);
	memset(big, 'k', sizeof(big));
	assert_int_equal(parse(0, big, UCP_KEY_MAX, &r), 0);
	assert_int_equal(r.key_len, UCP_KEY_MAX);
	assert_int_equal(parse(0, big, UCP_KEY_MAX + 1, &r), -UCP_PERR_KEYSIZE);
}

static void set_array(void **state)
{
	struct buf b = { 0 };
	struct ucp_request r;

	(void) state;
	buf_item(&b, "key");
	buf_item(&b, "value");
	assert_int_equal(parse(1, b.p, b.len, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_SET);
	assert_true(r.write);
	assert_span(r.key, r.key_len, "key");
	assert_span(r.value, r.value_len, "value");
	/* stock: empty items are skipped, a third item is ignored */
	b.len = 0;
	buf_item(&b, "");
	buf_item(&b, "k");
	buf_item(&b, "");
	buf_item(&b, "v");
	buf_item(&b, "extra");
	assert_int_equal(parse(1, b.p, b.len, &r), 0);
	assert_span(r.key, r.key_len, "k");
	assert_span(r.value, r.value_len, "v");
	b.len = 0;
	buf_item(&b, "lonely");
	assert_int_equal(parse(1, b.p, b.len, &r), -UCP_PERR_ARRAY);
	buf_add(&b, "\x05", 1);          /* half a length */
	assert_int_equal(parse(1, b.p, b.len, &r), -UCP_PERR_TRUNCATED);
	b.len = 0;
	buf_item(&b, "k");
	buf_u16(&b, 100);                /* an item longer than what is left */
	buf_add(&b, "short", 5);
	assert_int_equal(parse(1, b.p, b.len, &r), -UCP_PERR_TRUNCATED);
	assert_int_equal(parse(1, "", 0, &r), -UCP_PERR_EMPTY);
	free(b.p);
}

/* ------------------------------------------------------------ HTTP (3, 4) */

static void http_lookups(void **state)
{
	struct buf b = { 0 };
	struct ucp_request r;

	(void) state;
	buf_var(&b, "QUERY_STRING", "a=1");
	buf_var(&b, "key", "");          /* empty values are skipped (stock) */
	buf_var(&b, "key", "/page");
	buf_var(&b, "key", "/second");   /* the first non-empty one wins */
	assert_int_equal(parse(3, b.p, b.len, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_GET);
	assert_true(r.http);
	assert_false(r.http_404);
	assert_false(r.write);
	assert_span(r.key, r.key_len, "/page");
	assert_int_equal(parse(4, b.p, b.len, &r), 0);
	assert_true(r.http_404);         /* modifier2 4: a miss is a 404 */
	b.len = 0;
	buf_var(&b, "get", "/g");        /* a get= var: 404 whatever the modifier2 */
	assert_int_equal(parse(3, b.p, b.len, &r), 0);
	assert_true(r.http_404);
	assert_span(r.key, r.key_len, "/g");
	b.len = 0;
	buf_var(&b, "PATH_INFO", "/x");
	assert_int_equal(parse(3, b.p, b.len, &r), -UCP_PERR_NOKEY);
	assert_int_equal(parse(4, "", 0, &r), -UCP_PERR_EMPTY);
	b.len = 0;
	buf_u16(&b, 3);
	buf_add(&b, "key", 3);
	buf_u16(&b, 9);                  /* value runs past the end */
	buf_add(&b, "/x", 2);
	assert_int_equal(parse(3, b.p, b.len, &r), -UCP_PERR_TRUNCATED);
	free(b.p);
}

/* ------------------------------------------------------------- dump (6) */

static void dump_request(void **state)
{
	struct ucp_request r;

	(void) state;
	assert_int_equal(parse(6, "", 0, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_DUMP);
	assert_true(r.write);
	assert_null(r.cache);
	assert_int_equal(parse(6, "web", 3, &r), 0);
	assert_span(r.cache, r.cache_len, "web");
}

/* ----------------------------------------------------------- magic (17) */

static int magic(struct buf *b, struct ucp_request *r)
{
	return parse(17, b->p, b->len, r);
}

static void magic_commands(void **state)
{
	static const struct { const char *cmd; enum ucp_cmd id; int write; } cmds[] = {
		{ "get", UCP_CMD_GET, 0 }, { "exists", UCP_CMD_EXISTS, 0 },
		{ "del", UCP_CMD_DEL, 1 }, { "set", UCP_CMD_SET, 1 },
		{ "update", UCP_CMD_UPDATE, 1 }, { "clear", UCP_CMD_CLEAR, 1 },
	};
	struct ucp_request r;
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct buf b = { 0 };
		buf_var(&b, "cmd", cmds[i].cmd);
		buf_var(&b, "key", "k");
		buf_var(&b, "cache", "web");
		buf_var(&b, "size", "42");
		buf_var(&b, "expires", "60");
		buf_var(&b, "unknown", "ignored");
		assert_int_equal(magic(&b, &r), 0);
		assert_int_equal(r.cmd, cmds[i].id);
		assert_int_equal(r.write, cmds[i].write);
		assert_span(r.key, r.key_len, "k");
		assert_span(r.cache, r.cache_len, "web");
		assert_true(r.size == 42 && r.expires == 60);
		free(b.p);
	}
}

static void magic_errors(void **state)
{
	struct buf b = { 0 };
	struct ucp_request r;

	(void) state;
	assert_int_equal(parse(17, "", 0, &r), -UCP_PERR_EMPTY);
	buf_var(&b, "cmd", "flushall");
	buf_var(&b, "key", "k");
	assert_int_equal(magic(&b, &r), -UCP_PERR_COMMAND);
	b.len = 0;
	buf_var(&b, "key", "k");
	assert_int_equal(magic(&b, &r), -UCP_PERR_COMMAND);
	b.len = 0;
	buf_var(&b, "cmd", "get");
	assert_int_equal(magic(&b, &r), -UCP_PERR_NOKEY);
	buf_var(&b, "key", "");
	assert_int_equal(magic(&b, &r), -UCP_PERR_NOKEY);
	b.len = 0;
	buf_var(&b, "cmd", "clear");     /* clear needs no key */
	assert_int_equal(magic(&b, &r), 0);
	b.len = 0;
	buf_var(&b, "cmd", "set");
	buf_var(&b, "key", "k");
	assert_int_equal(magic(&b, &r), -UCP_PERR_SIZE);
	buf_var(&b, "size", "0");
	assert_int_equal(magic(&b, &r), -UCP_PERR_SIZE);
	buf_var(&b, "size", "12x");
	assert_int_equal(magic(&b, &r), -UCP_PERR_NUMBER);
	b.len = 0;
	buf_var(&b, "cmd", "get");
	buf_var(&b, "key", "k");
	buf_var(&b, "expires", "99999999999999999999");
	assert_int_equal(magic(&b, &r), -UCP_PERR_NUMBER);
	b.len = 0;
	buf_u16(&b, 0);                  /* a var without a name */
	buf_u16(&b, 1);
	buf_add(&b, "x", 1);
	assert_int_equal(magic(&b, &r), -UCP_PERR_VARNAME);
	free(b.p);
}

static void magic_reply_and_repeats(void **state)
{
	struct buf b = { 0 };
	struct ucp_magic m;

	(void) state;
	buf_var(&b, "status", "ok");
	buf_var(&b, "size", "3");
	buf_var(&b, "size", "5");        /* the last one wins */
	assert_int_equal(ucp_magic_parse(b.p, b.len, &m), 0);
	assert_span(m.status, m.status_len, "ok");
	assert_true(m.has_size && m.size == 5);
	assert_null(m.cmd);
	assert_int_equal(ucp_cmd_parse("update", 6), UCP_CMD_UPDATE);
	assert_int_equal(ucp_cmd_parse("updat", 5), UCP_CMD_NONE);
	assert_int_equal(ucp_cmd_parse(NULL, 0), UCP_CMD_NONE);
	free(b.p);
}

/* The client's encoder (peers/remote.c sends it) reads back through the
 * server's parser: every var, the size and expiry numbers, the length
 * bound. */
static void magic_request_encode(void **state)
{
	char out[256];
	struct ucp_request r;
	size_t n;

	(void) state;
	n = ucp_magic_request_encode(out, sizeof(out), "update", "web", 3, "k1", 2, 1, 42, UINT64_MAX);
	assert_true(n > UCP_HEADER_SIZE);
	assert_int_equal((unsigned char) out[0], 111);
	assert_int_equal(out[3], UCP_M2_MAGIC);
	assert_int_equal(ucp_le16(out + 1), n - UCP_HEADER_SIZE);
	assert_int_equal(ucp_request_parse(UCP_M2_MAGIC, out + UCP_HEADER_SIZE, n - UCP_HEADER_SIZE, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_UPDATE);
	assert_span(r.key, r.key_len, "k1");
	assert_span(r.cache, r.cache_len, "web");
	assert_true(r.size == 42 && r.expires == UINT64_MAX && r.write);
	/* no cache, no size, no expires: those vars are left out */
	n = ucp_magic_request_encode(out, sizeof(out), "get", NULL, 0, "k", 1, 0, 0, 0);
	assert_int_equal(ucp_request_parse(UCP_M2_MAGIC, out + UCP_HEADER_SIZE, n - UCP_HEADER_SIZE, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_GET);
	assert_null(r.cache);
	assert_null(memmem(out, n, "size", 4));
	assert_null(memmem(out, n, "expires", 7));
	/* too small a buffer: 0, nothing to send */
	assert_int_equal(ucp_magic_request_encode(out, 20, "get", NULL, 0, "k", 1, 0, 0, 0), 0);
}

static void magic_reply_head(void **state)
{
	char head[UCP_MAGIC_HEAD_MAX];
	struct ucp_magic m;
	size_t n;

	(void) state;
	n = ucp_magic_reply_head(head, 0, 0, 0);
	assert_int_equal(n, UCP_HEADER_SIZE + 12);
	assert_int_equal((unsigned char) head[0], 111);
	assert_int_equal(head[3], 17);
	assert_int_equal(ucp_le16(head + 1), n - UCP_HEADER_SIZE);
	assert_int_equal(ucp_magic_parse(head + UCP_HEADER_SIZE, n - UCP_HEADER_SIZE, &m), 0);
	assert_span(m.status, m.status_len, "ok");
	assert_false(m.has_size);
	n = ucp_magic_reply_head(head, 1, UINT64_MAX, UINT64_MAX);   /* the longest head */
	assert_true(n <= UCP_MAGIC_HEAD_MAX);
	assert_int_equal(ucp_magic_parse(head + UCP_HEADER_SIZE, n - UCP_HEADER_SIZE, &m), 0);
	assert_true(m.has_size && m.size == UINT64_MAX && m.expires == UINT64_MAX);
	n = ucp_magic_reply_head(head, 1, 5, 0);                     /* no expires var */
	assert_int_equal(ucp_magic_parse(head + UCP_HEADER_SIZE, n - UCP_HEADER_SIZE, &m), 0);
	assert_true(m.size == 5 && m.expires == 0);
	assert_null(memmem(head, n, "expires", 7));
}

/* Every prefix of a valid packet: parses or fails cleanly (ASan checks
 * that no prefix is read past its end). */
static void every_prefix(void **state)
{
	struct buf b = { 0 };
	struct ucp_request r;
	size_t n;
	uint8_t m2;

	(void) state;
	buf_var(&b, "cmd", "set");
	buf_var(&b, "key", "some-key");
	buf_var(&b, "size", "10");
	buf_var(&b, "cache", "web");
	for (m2 = 0; m2 < 20; m2++) {
		for (n = 0; n <= b.len; n++) {
			int rc = parse(m2, b.p, n, &r);
			assert_true(rc <= 0 && -rc < UCP_PERR_MAX);
		}
	}
	assert_int_equal(parse(17, b.p, b.len - 1, &r), -UCP_PERR_TRUNCATED);
	assert_int_equal(parse(17, b.p, b.len, &r), 0);
	free(b.p);
}

static void unknown_modifier2_and_names(void **state)
{
	struct ucp_request r;
	int i, j;

	(void) state;
	assert_int_equal(parse(7, "k", 1, &r), -UCP_PERR_MODIFIER2);
	assert_int_equal(parse(255, "k", 1, &r), -UCP_PERR_MODIFIER2);
	for (i = 1; i < UCP_PERR_MAX; i++) {
		assert_non_null(ucp_perr_str(-i));
		for (j = 1; j < i; j++)
			assert_string_not_equal(ucp_perr_str(-i), ucp_perr_str(-j));
	}
	assert_string_equal(ucp_perr_str(-UCP_PERR_MAX), "unknown error");
	assert_string_equal(ucp_perr_str(-1000), "unknown error");
}

/* ------------------------------------------------------------------ HTTP */

static void http_helpers(void **state)
{
	char head[UCP_HTTP_HEAD_MAX];
	size_t n;

	(void) state;
	assert_true(ucp_http_is_response("HTTP/1.0 200 OK\r\n\r\nx", 20));
	assert_false(ucp_http_is_response("HTTP", 4));
	assert_false(ucp_http_is_response("<html>", 6));
	n = ucp_http_head(head, 17);
	assert_int_equal(n, strlen("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n"));
	assert_memory_equal(head, "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n", n);
	n = ucp_http_head(head, UINT64_MAX);
	assert_true(n > 0 && n < UCP_HTTP_HEAD_MAX);
	assert_int_equal(ucp_http_404_len, strlen(ucp_http_404));
	assert_memory_equal(ucp_http_404 + ucp_http_404_len - 9, "Not Found", 9);
}

/* nginx's lookups name the cache and pass If-None-Match (issue 12). */
static void http_cache_and_if_none_match(void **state)
{
	struct buf b = { 0 };
	struct ucp_request r;

	(void) state;
	buf_var(&b, "key", "/p?x=1");
	buf_var(&b, "cache", "pages");
	buf_var(&b, "HTTP_IF_NONE_MATCH", "\"abc\"");
	assert_int_equal(parse(3, b.p, b.len, &r), 0);
	assert_span(r.key, r.key_len, "/p?x=1");
	assert_span(r.cache, r.cache_len, "pages");
	assert_span(r.inm, r.inm_len, "\"abc\"");
	b.len = 0;
	buf_var(&b, "key", "/p");
	buf_var(&b, "cache", "");                /* $empty: the default cache */
	buf_var(&b, "HTTP_IF_NONE_MATCH", "");   /* no header */
	assert_int_equal(parse(3, b.p, b.len, &r), 0);
	assert_null(r.cache);
	assert_null(r.inm);
	free(b.p);
}

/* A REQUEST_METHOD other than GET/HEAD is never answered from the cache
 * (issue 18); GET, HEAD, an empty one and none (stock recipes) are. */
static void http_method_not_get_passes(void **state)
{
	static const char *const methods[] = { "POST", "DELETE", "PUT", "get", "GET", "HEAD", "" };
	static const int pass[] = { 1, 1, 1, 1, 0, 0, 0 };
	struct buf b = { 0 };
	struct ucp_request r;
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
		b.len = 0;
		buf_var(&b, "REQUEST_METHOD", methods[i]);
		buf_var(&b, "key", "/p");
		assert_int_equal(parse(3, b.p, b.len, &r), 0);
		assert_int_equal(r.http_pass, pass[i]);
		assert_span(r.key, r.key_len, "/p");
	}
	b.len = 0;
	buf_var(&b, "key", "/p");
	assert_int_equal(parse(4, b.p, b.len, &r), 0);
	assert_int_equal(r.http_pass, 0);
	free(b.p);
}

static void etag_helpers(void **state)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\netag:  \"v1\" \r\n"
		"Content-Length: 4\r\n\r\nETag: \"body\"";
	char out[128];
	const char *e;
	size_t el, n;

	(void) state;
	assert_int_equal(ucp_http_etag(resp, sizeof(resp) - 1, &e, &el), 0);
	assert_span(e, (uint16_t) el, "\"v1\"");
	/* only the head is searched */
	{
		static const char body_only[] = "HTTP/1.1 200 OK\r\n\r\nETag: \"x\"";
		static const char empty[] = "HTTP/1.1 200 OK\r\nETag:\r\n\r\n";
		assert_int_equal(ucp_http_etag(body_only, sizeof(body_only) - 1, &e, &el), -1);
		assert_int_equal(ucp_http_etag(empty, sizeof(empty) - 1, &e, &el), -1);
	}
	assert_true(ucp_etag_match("\"v1\"", 4, "\"v1\"", 4));
	assert_true(ucp_etag_match("\"a\", W/\"v1\"", 11, "\"v1\"", 4));
	assert_true(ucp_etag_match(" * ", 3, "\"v1\"", 4));
	assert_true(ucp_etag_match("\"v1\"", 4, "W/\"v1\"", 6));
	assert_false(ucp_etag_match("\"v2\"", 4, "\"v1\"", 4));
	assert_false(ucp_etag_match("\"v1", 3, "\"v1\"", 4));
	assert_false(ucp_etag_match(",,", 2, "\"v1\"", 4));
	n = ucp_http_304(out, sizeof(out), "\"v1\"", 4);
	assert_int_equal(n, strlen("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"));
	assert_memory_equal(out, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n", n);
	assert_int_equal(ucp_http_304(out, 10, "\"v1\"", 4), 0);
}

static void magic_invalidate(void **state)
{
	static const char *const bad[] = { "", ",", "a,", ",a", "a,,b" };
	struct buf b = { 0 };
	struct ucp_request r;
	const char *t;
	size_t pos = 0, tl, i;

	(void) state;
	buf_var(&b, "cmd", "invalidate");
	buf_var(&b, "tags", "user:1,feed");
	buf_var(&b, "cache", "pages");
	assert_int_equal(magic(&b, &r), 0);      /* no key needed */
	assert_int_equal(r.cmd, UCP_CMD_INVALIDATE);
	assert_true(r.write);
	assert_span(r.cache, r.cache_len, "pages");
	assert_span(r.tags, r.tags_len, "user:1,feed");
	assert_true(ucp_tags_next(r.tags, r.tags_len, &pos, &t, &tl));
	assert_span(t, (uint16_t) tl, "user:1");
	assert_true(ucp_tags_next(r.tags, r.tags_len, &pos, &t, &tl));
	assert_span(t, (uint16_t) tl, "feed");
	assert_false(ucp_tags_next(r.tags, r.tags_len, &pos, &t, &tl));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b.len = 0;
		buf_var(&b, "cmd", "invalidate");
		buf_var(&b, "tags", bad[i]);
		assert_int_equal(magic(&b, &r), -UCP_PERR_TAGS);
	}
	b.len = 0;
	buf_var(&b, "cmd", "invalidate");
	buf_var(&b, "key", "k");
	assert_int_equal(magic(&b, &r), -UCP_PERR_TAGS);
	free(b.p);
}

/* ------------------------------------------------------------------ dump */

static void dump_records(void **state)
{
	struct ucp_dump_record rec;
	struct buf b = { 0 };
	char head[UCP_DUMP_RECORD_HEAD], end[UCP_DUMP_END_SIZE];
	size_t n;
	long long used;

	(void) state;
	ucp_dump_record_head(head, 3, 5, 1700000000);
	buf_add(&b, head, sizeof(head));
	buf_add(&b, "keyvalue", 8);
	ucp_dump_end(end, 1);
	buf_add(&b, end, sizeof(end));
	used = ucp_dump_record_parse(b.p, b.len, 100, &rec);
	assert_int_equal(used, UCP_DUMP_RECORD_HEAD + 8);
	assert_false(rec.end);
	assert_span(rec.key, rec.key_len, "key");
	assert_true(rec.value_len == 5 && memcmp(rec.value, "value", 5) == 0);
	assert_true(rec.expires == 1700000000);
	used = ucp_dump_record_parse(b.p + used, b.len - (size_t) used, 100, &rec);
	assert_int_equal(used, UCP_DUMP_END_SIZE);
	assert_true(rec.end && rec.count == 1);
	/* every strict prefix of the record asks for more bytes */
	for (n = 0; n < UCP_DUMP_RECORD_HEAD + 8; n++) {
		char *copy = pkt_dup(b.p, n);
		assert_int_equal(ucp_dump_record_parse(copy, n, 100, &rec), 0);
		free(copy);
	}
	assert_int_equal(ucp_dump_record_parse(b.p, b.len, 4, &rec), -UCP_PERR_SIZE);
	ucp_dump_record_head(head, 3, 0, 0);
	assert_int_equal(ucp_dump_record_parse(head, sizeof(head), 100, &rec), -UCP_PERR_SIZE);
	ucp_dump_record_head(head, 65535, 1, 0);
	assert_int_equal(ucp_dump_record_parse(head, sizeof(head), 100, &rec), -UCP_PERR_KEYSIZE);
	ucp_dump_record_head(head, 1, UINT64_MAX, 0);
	assert_int_equal(ucp_dump_record_parse(head, sizeof(head), UINT64_MAX, &rec), 0);
	free(b.p);
}

/* ------------------------------------------------------------------ keys */

/* cmd=keys needs no key, carries cursor and count, needs write permission
 * (it discloses every key, as a dump does); the request builder's packet
 * parses back to what it was given; count is bounded. */
static void keys_request(void **state)
{
	char out[UCP_KEYS_REQUEST_MAX + 3];
	struct ucp_request r;
	struct buf b = { 0 };
	size_t n;

	(void) state;
	n = ucp_keys_request(out, "web", 3, 12345, 500);
	assert_int_equal(out[0], UCP_MODIFIER1);
	assert_int_equal(ucp_le16(out + 1), n - UCP_HEADER_SIZE);
	assert_int_equal(out[3], UCP_M2_MAGIC);
	assert_int_equal(parse(17, out + UCP_HEADER_SIZE, n - UCP_HEADER_SIZE, &r), 0);
	assert_int_equal(r.cmd, UCP_CMD_KEYS);
	assert_int_equal(r.write, 1);
	assert_span(r.cache, r.cache_len, "web");
	assert_true(r.cursor == 12345 && r.count == 500);
	assert_int_equal(ucp_keys_count(&r), 500);
	buf_var(&b, "cmd", "keys");
	assert_int_equal(magic(&b, &r), 0);
	assert_true(r.cursor == 0 && r.cache == NULL);
	assert_int_equal(ucp_keys_count(&r), UCP_KEYS_COUNT);
	buf_var(&b, "count", "1000000");
	assert_int_equal(magic(&b, &r), 0);
	assert_int_equal(ucp_keys_count(&r), UCP_KEYS_COUNT_MAX);
	buf_var(&b, "cursor", "-1");
	assert_int_equal(magic(&b, &r), -UCP_PERR_NUMBER);
	free(b.p);
}

static void keys_reply(void **state)
{
	char head[UCP_MAGIC_HEAD_MAX], entry[UCP_KEYS_ENTRY_HEAD + 3];
	struct ucp_keys_entry e;
	struct ucp_magic m;
	size_t n, i;

	(void) state;
	n = ucp_keys_reply_head(head, UINT64_MAX, UCP_KEYS_COUNT_MAX, UINT64_MAX);
	assert_true(n <= UCP_MAGIC_HEAD_MAX);
	assert_int_equal(ucp_magic_parse(head + UCP_HEADER_SIZE, n - UCP_HEADER_SIZE, &m), 0);
	assert_span(m.status, m.status_len, "ok");
	assert_true(m.cursor == UINT64_MAX && m.count == UCP_KEYS_COUNT_MAX && m.size == UINT64_MAX);
	ucp_keys_entry_head(entry, 3, 4096, 60);
	memcpy(entry + UCP_KEYS_ENTRY_HEAD, "k:1", 3);
	assert_int_equal(ucp_keys_entry_parse(entry, sizeof(entry), &e), sizeof(entry));
	assert_span(e.key, e.key_len, "k:1");
	assert_true(e.value_len == 4096 && e.ttl == 60);
	for (i = 0; i < sizeof(entry); i++) {  /* every strict prefix is truncated */
		char *copy = pkt_dup(entry, i);
		assert_int_equal(ucp_keys_entry_parse(copy, i, &e), -UCP_PERR_TRUNCATED);
		free(copy);
	}
	ucp_keys_entry_head(entry, 0, 1, 0);
	assert_int_equal(ucp_keys_entry_parse(entry, sizeof(entry), &e), -UCP_PERR_KEYSIZE);
	ucp_keys_entry_head(entry, 65535, 1, 0);
	assert_int_equal(ucp_keys_entry_parse(entry, sizeof(entry), &e), -UCP_PERR_KEYSIZE);
}

/* --------------------------------------------------- regression corpus */

static const struct { const char *prefix; int err; } classes[] = {
	{ "empty--", UCP_PERR_EMPTY }, { "truncated--", UCP_PERR_TRUNCATED },
	{ "varname--", UCP_PERR_VARNAME }, { "number--", UCP_PERR_NUMBER },
	{ "nokey--", UCP_PERR_NOKEY }, { "keysize--", UCP_PERR_KEYSIZE },
	{ "array--", UCP_PERR_ARRAY }, { "command--", UCP_PERR_COMMAND },
	{ "size--", UCP_PERR_SIZE }, { "modifier2--", UCP_PERR_MODIFIER2 },
	{ "tags--", UCP_PERR_TAGS },
};

static int class_of(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (!strncmp(name, classes[i].prefix, strlen(classes[i].prefix)))
			return classes[i].err;
	}
	return 0;
}

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char data[70000];
	struct ucp_request r;
	size_t n, len;

	assert_non_null(f);
	n = fread(data, 1, sizeof(data), f);
	fclose(f);
	assert_true(n >= UCP_HEADER_SIZE && (unsigned char) data[0] == 111);
	len = ucp_le16(data + 1);
	assert_true(len <= n - UCP_HEADER_SIZE);
	return parse((uint8_t) data[3], data + UCP_HEADER_SIZE, len, &r);
}

static void regression_corpus(void **state)
{
	DIR *d = opendir("tests/fuzz/regressions");
	struct dirent *de;
	unsigned seen = 0, covered = 0;
	size_t i;

	(void) state;
	assert_non_null(d);     /* run from the repository root (make unit) */
	while ((de = readdir(d))) {
		char path[512];
		int err = class_of(de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if (!err)
			fail_msg("tests/fuzz/regressions/%s: name does not start with a class", de->d_name);
		snprintf(path, sizeof(path), "tests/fuzz/regressions/%s", de->d_name);
		if (replay_file(path) != -err)
			fail_msg("%s: expected %s", path, ucp_perr_str(-err));
		covered |= 1u << err;
		seen++;
	}
	closedir(d);
	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (!(covered & (1u << classes[i].err)))
			fail_msg("no regression packet for class %s", classes[i].prefix);
	}
	assert_true(seen >= sizeof(classes) / sizeof(classes[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(numbers_and_strings),
		cmocka_unit_test(integers_and_header),
		cmocka_unit_test(raw_key_commands),
		cmocka_unit_test(set_array),
		cmocka_unit_test(http_lookups),
		cmocka_unit_test(dump_request),
		cmocka_unit_test(magic_commands),
		cmocka_unit_test(magic_errors),
		cmocka_unit_test(magic_reply_and_repeats),
		cmocka_unit_test(magic_reply_head),
		cmocka_unit_test(magic_request_encode),
		cmocka_unit_test(every_prefix),
		cmocka_unit_test(unknown_modifier2_and_names),
		cmocka_unit_test(http_helpers),
		cmocka_unit_test(http_cache_and_if_none_match),
		cmocka_unit_test(http_method_not_get_passes),
		cmocka_unit_test(etag_helpers),
		cmocka_unit_test(magic_invalidate),
		cmocka_unit_test(dump_records),
		cmocka_unit_test(keys_request),
		cmocka_unit_test(keys_reply),
		cmocka_unit_test(regression_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
