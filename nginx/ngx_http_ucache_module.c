/*
 * ngx_http_ucache_module.c - nginx answers cache hits from ucache's shared
 * memory itself: the worker maps the cache's store file read-only
 * (include/ucache.h, "read-only views") and copies the page out, so a hit
 * never leaves the nginx worker.  Conventions of ngx_http_memcached_module:
 *
 *     location / {
 *         ucache_pass /run/ucache/pages.store;    # the cache's store= file
 *         error_page 404 = @app;                  # a miss is a 404
 *     }
 *
 * The key is $ucache_key (set $ucache_key ...;), by default $request_uri:
 * the key ucache.wsgi.Accelerator stores a page under.  $ucache_status
 * tells the access log what happened: HIT, STALE (served, past the
 * Accelerator's fresh-until), MISS, EXPIRED, INVALIDATED (a tag of the
 * page was invalidated) or ERROR (the store cannot be mapped, no
 * consistent snapshot within the engine's bound, a value nginx cannot
 * send).  Only GET and HEAD are looked up; any other method, and every
 * kind of miss, is a 404, which error_page hands to the app.
 */
#include "ngx_http_ucache.h"

typedef struct {
	ngx_http_complex_value_t *path; /* ucache_pass; NULL: not here */
} ngx_http_ucache_loc_conf_t;

/* The engine copies a value out of its seqlock snapshot straight into the
 * request's pool, where the page lives until it is sent (a per-worker
 * buffer copied into the pool cost a second 8 KiB copy, ~15% of a hit's
 * worker CPU in perf, bench/BOUNDS.md).  The first try's buffer is the
 * last hit's size rounded up to 4 KiB, at most 64 KiB; a bigger value
 * answers NOBUFS with its size and the next try reads it exactly. */
#define NGX_HTTP_UCACHE_GUESS_MAX (64 * 1024)
#define NGX_HTTP_UCACHE_TRIES 3 /* NOBUFS retries: the value may grow between two reads */

static size_t size_guess = 4096;

static ngx_int_t status_index = NGX_ERROR;
static ngx_int_t key_index = NGX_ERROR;

static ngx_str_t status_names[] = {
	ngx_string("HIT"), ngx_string("MISS"), ngx_string("EXPIRED"),
	ngx_string("STALE"), ngx_string("INVALIDATED"), ngx_string("ERROR"),
};

static ngx_str_t status_var = ngx_string("ucache_status");
static ngx_str_t key_var = ngx_string("ucache_key");

static char *ngx_http_ucache_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static void *ngx_http_ucache_create_loc_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_ucache_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_ucache_init(ngx_conf_t *cf);
static void ngx_http_ucache_exit_process(ngx_cycle_t *cycle);

static ngx_command_t ngx_http_ucache_commands[] = {
	{ ngx_string("ucache_pass"), NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF | NGX_CONF_TAKE1, ngx_http_ucache_pass,
	  NGX_HTTP_LOC_CONF_OFFSET, 0, NULL },
	ngx_null_command
};

static ngx_http_module_t ngx_http_ucache_module_ctx = {
	ngx_http_ucache_add_variables, /* preconfiguration */
	ngx_http_ucache_init,          /* postconfiguration */
	NULL, NULL, NULL, NULL,        /* main, server */
	ngx_http_ucache_create_loc_conf,
	NULL                           /* merge: ucache_pass is not inherited, as memcached_pass */
};

ngx_module_t ngx_http_ucache_module = {
	NGX_MODULE_V1,
	&ngx_http_ucache_module_ctx,
	ngx_http_ucache_commands,
	NGX_HTTP_MODULE,
	NULL, NULL, NULL, NULL, /* master, module, process, thread init */
	NULL,                   /* thread exit */
	ngx_http_ucache_exit_process,
	NULL,                   /* master exit */
	NGX_MODULE_V1_PADDING
};

/* ------------------------------------------------------------ variables */

static void set_status(ngx_http_request_t *r, ngx_http_ucache_status_e s)
{
	/* straight into the indexed value: it survives error_page's jump to
	 * the named location (which clears the modules' contexts), so the
	 * fallback's access log line still says MISS */
	ngx_http_variable_value_t *v = &r->variables[status_index];

	v->data = status_names[s].data;
	v->len = status_names[s].len;
	v->valid = 1;
	v->no_cacheable = 0;
	v->not_found = 0;
}

/* $ucache_status before (or without) a lookup: not found ("-" in logs). */
static ngx_int_t status_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data)
{
	(void)r;
	(void)data;
	v->not_found = 1;
	return NGX_OK;
}

/* $ucache_key that no `set` gave a value: $request_uri. */
static ngx_int_t key_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data)
{
	(void)data;
	v->data = r->unparsed_uri.data;
	v->len = r->unparsed_uri.len;
	v->valid = 1;
	v->no_cacheable = 0;
	v->not_found = 0;
	return NGX_OK;
}

static ngx_int_t ngx_http_ucache_add_variables(ngx_conf_t *cf)
{
	ngx_http_variable_t *v = ngx_http_add_variable(cf, &status_var, 0);

	if (v == NULL)
		return NGX_ERROR;
	v->get_handler = status_variable;
	v = ngx_http_add_variable(cf, &key_var, NGX_HTTP_VAR_CHANGEABLE);
	if (v == NULL)
		return NGX_ERROR;
	v->get_handler = key_variable;
	return NGX_OK;
}

static ngx_int_t ngx_http_ucache_init(ngx_conf_t *cf)
{
	status_index = ngx_http_get_variable_index(cf, &status_var);
	key_index = ngx_http_get_variable_index(cf, &key_var);
	return status_index == NGX_ERROR || key_index == NGX_ERROR ? NGX_ERROR : NGX_OK;
}

/* ----------------------------------------------------------- the lookup */

/* The value of key, read into a buffer of the request's pool (*val, *len
 * bytes): an enum ucache_view_status. */
static int lookup(ngx_http_request_t *r, ucache_view_t *view, ngx_str_t *key, u_char **val, size_t *len)
{
	int rc = UCACHE_VIEW_NOBUFS, i;
	size_t cap = size_guess;

	for (i = 0; i < NGX_HTTP_UCACHE_TRIES && rc == UCACHE_VIEW_NOBUFS; i++) {
		if (i) {
			ngx_pfree(r->pool, *val);
			cap = *len;
		}
		*val = ngx_pnalloc(r->pool, cap ? cap : 1);
		if (*val == NULL)
			return UCACHE_VIEW_BUSY;
		rc = ucache_view_get(view, key->data, key->len, *val, cap, len, NULL);
	}
	if (rc == UCACHE_VIEW_HIT)
		size_guess = ngx_min(ngx_align(*len, 4096), NGX_HTTP_UCACHE_GUESS_MAX);
	return rc;
}

static ngx_http_ucache_status_e status_of(int rc)
{
	switch (rc) {
	case UCACHE_VIEW_HIT:
		return NGX_HTTP_UCACHE_HIT;
	case UCACHE_VIEW_MISS:
		return NGX_HTTP_UCACHE_MISS;
	case UCACHE_VIEW_EXPIRED:
		return NGX_HTTP_UCACHE_EXPIRED;
	case UCACHE_VIEW_INVALIDATED:
		return NGX_HTTP_UCACHE_INVALIDATED;
	default: /* BUSY, NOBUFS after the retries */
		return NGX_HTTP_UCACHE_ERROR;
	}
}

/* The store path of this request, NUL-terminated (ucache_view_open's). */
static char *store_path(ngx_http_request_t *r, ngx_http_ucache_loc_conf_t *conf)
{
	ngx_str_t p;
	u_char *c;

	if (ngx_http_complex_value(r, conf->path, &p) != NGX_OK)
		return NULL;
	c = ngx_pnalloc(r->pool, p.len + 1);
	if (c == NULL)
		return NULL;
	ngx_cpystrn(c, p.data, p.len + 1);
	return (char *)c;
}

/* Send the hit (val, len bytes in the request's pool); NGX_DECLINED when
 * the value is not a response nginx can send, NGX_HTTP_NOT_FOUND when it is
 * not a page at all. */
static ngx_int_t send_hit(ngx_http_request_t *r, ngx_http_ucache_slot_t *slot, ngx_str_t *key, u_char *val,
			  size_t len)
{
	const char *why = "";
	ngx_uint_t stale;
	ngx_chain_t out;
	ngx_int_t rc;

	rc = ngx_http_ucache_parse(r, val, len, &out, &stale, &why);
	if (rc == NGX_DECLINED && why == NULL)
		return NGX_HTTP_NOT_FOUND; /* not a page: a plain miss, nothing to log */
	if (rc == NGX_DECLINED)
		ngx_http_ucache_slot_bad_value(slot, r->connection->log, key, why);
	if (rc != NGX_OK)
		return rc;
	set_status(r, stale ? NGX_HTTP_UCACHE_STALE : NGX_HTTP_UCACHE_HIT);
	rc = ngx_http_discard_request_body(r);
	if (rc != NGX_OK)
		return rc;
	rc = ngx_http_send_header(r);
	if (rc == NGX_ERROR || rc > NGX_OK || r->header_only)
		return rc;
	return ngx_http_output_filter(r, &out);
}

static ngx_int_t miss(ngx_http_request_t *r, ngx_http_ucache_status_e s)
{
	set_status(r, s);
	return NGX_HTTP_NOT_FOUND;
}

static ngx_int_t ngx_http_ucache_handler(ngx_http_request_t *r)
{
	ngx_http_ucache_loc_conf_t *conf = ngx_http_get_module_loc_conf(r, ngx_http_ucache_module);
	ngx_http_variable_value_t *kv;
	ngx_http_ucache_slot_t *slot;
	ucache_view_t *view;
	size_t len = 0;
	u_char *val = NULL;
	ngx_str_t key;
	char *path;
	ngx_int_t rc;

	if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD)))
		return NGX_HTTP_NOT_FOUND; /* not a lookup: to the app, body unread */
	kv = ngx_http_get_indexed_variable(r, key_index);
	path = store_path(r, conf);
	if (kv == NULL || path == NULL)
		return NGX_HTTP_INTERNAL_SERVER_ERROR;
	if (kv->not_found || kv->len == 0)
		return miss(r, NGX_HTTP_UCACHE_MISS);
	key.data = kv->data;
	key.len = kv->len;
	slot = ngx_http_ucache_slot(r->connection->log, path);
	view = slot ? ngx_http_ucache_slot_view(slot) : NULL;
	if (view == NULL)
		return miss(r, NGX_HTTP_UCACHE_ERROR);
	rc = lookup(r, view, &key, &val, &len);
	if (rc != UCACHE_VIEW_HIT)
		return miss(r, status_of(rc));
	rc = send_hit(r, slot, &key, val, len);
	if (rc == NGX_HTTP_NOT_FOUND)
		return miss(r, NGX_HTTP_UCACHE_MISS);
	return rc == NGX_DECLINED ? miss(r, NGX_HTTP_UCACHE_ERROR) : rc;
}

/* ------------------------------------------------------------ directives */

static void *ngx_http_ucache_create_loc_conf(ngx_conf_t *cf)
{
	return ngx_pcalloc(cf->pool, sizeof(ngx_http_ucache_loc_conf_t));
}

static char *ngx_http_ucache_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
	ngx_http_ucache_loc_conf_t *ulcf = conf;
	ngx_http_compile_complex_value_t ccv;
	ngx_http_core_loc_conf_t *clcf;
	ngx_str_t *value = cf->args->elts;

	(void)cmd;
	if (ulcf->path)
		return "is duplicate";
	if (value[1].len == 0 || (value[1].data[0] != '/' && value[1].data[0] != '$'))
		return "takes the absolute path of a store file (the cache's store=)";
	ulcf->path = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
	if (ulcf->path == NULL)
		return NGX_CONF_ERROR;
	ngx_memzero(&ccv, sizeof(ccv));
	ccv.cf = cf;
	ccv.value = &value[1];
	ccv.complex_value = ulcf->path;
	if (ngx_http_compile_complex_value(&ccv) != NGX_OK)
		return NGX_CONF_ERROR;
	clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
	clcf->handler = ngx_http_ucache_handler;
	return NGX_CONF_OK;
}

static void ngx_http_ucache_exit_process(ngx_cycle_t *cycle)
{
	(void)cycle;
	ngx_http_ucache_slots_close();
}
