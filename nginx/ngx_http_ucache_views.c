/*
 * ngx_http_ucache_views.c - each nginx worker's read-only views of the
 * stores it serves, one per store path (ucache_pass), opened lazily by the
 * first request after the fork (the master never maps a store).
 *
 * A store is replaced when uwsgi recreates it (a restart that rebuilds it,
 * store_delete / store_migrate with another geometry): the old mapping
 * then shows a cache nobody writes any more.  ucache_view_replaced() costs
 * one stat(): 3.5-4 us on tmpfs on the 2-CPU test VM, against 40-85 us
 * per hit there (12k-25k hits/s of an 8 KiB page, one nginx process, wrk
 * on the same CPUs: as fast as nginx sending a static file), so 5-10% if
 * asked per request.  It is asked at most every
 * NGX_HTTP_UCACHE_CHECK_MS per path and worker instead, from nginx's
 * cached clock (no timer, no syscall for the time): a replaced store is
 * followed within 100 ms, and a store that cannot be opened is retried at
 * the same pace, never per request.
 * Each change of state is one line of the error log: the failure and its
 * reason when it changes, the (re)opening at notice level.
 */
#include "ngx_http_ucache.h"

#define NGX_HTTP_UCACHE_CHECK_MS 100
/* ucache_pass with variables could name any number of files: a worker
 * maps at most this many (a further path is an ERROR, logged once) */
#define NGX_HTTP_UCACHE_SLOTS 16
#define NGX_HTTP_UCACHE_ERRLEN 512

struct ngx_http_ucache_slot_s {
	char *path;                   /* NUL-terminated, ngx_alloc'd */
	ucache_view_t *view;          /* NULL: not open, err says why */
	ngx_msec_t checked;           /* ngx_current_msec of the last check */
	ngx_uint_t ever_checked;
	ngx_uint_t bad_value_logged;  /* since the file was opened */
	char err[NGX_HTTP_UCACHE_ERRLEN];
};

static ngx_http_ucache_slot_t slots[NGX_HTTP_UCACHE_SLOTS];
static ngx_uint_t nslots;
static ngx_uint_t full_logged;

static ngx_http_ucache_slot_t *slot_find(ngx_log_t *log, const char *path)
{
	ngx_http_ucache_slot_t *s;
	size_t len = ngx_strlen(path);
	ngx_uint_t i;

	for (i = 0; i < nslots; i++)
		if (ngx_strcmp(slots[i].path, path) == 0)
			return &slots[i];
	if (nslots == NGX_HTTP_UCACHE_SLOTS) {
		if (!full_logged++)
			ngx_log_error(NGX_LOG_ERR, log, 0,
				      "ucache: \"%s\": this worker already maps %d stores, the most it maps: "
				      "answered as misses",
				      path, NGX_HTTP_UCACHE_SLOTS);
		return NULL;
	}
	s = &slots[nslots];
	s->path = ngx_alloc(len + 1, log);
	if (s->path == NULL)
		return NULL;
	ngx_memcpy(s->path, path, len + 1);
	nslots++;
	return s;
}

static void slot_open(ngx_http_ucache_slot_t *s, ngx_log_t *log)
{
	char err[NGX_HTTP_UCACHE_ERRLEN];

	err[0] = '\0';
	s->view = ucache_view_open(s->path, err, sizeof(err));
	if (s->view) {
		ngx_log_error(NGX_LOG_NOTICE, log, 0, "ucache: \"%s\" mapped read-only", s->path);
		s->err[0] = '\0';
		s->bad_value_logged = 0;
		return;
	}
	if (err[0] == '\0')
		ngx_cpystrn((u_char *)err, (u_char *)"cannot be opened", sizeof(err));
	if (ngx_strcmp(err, s->err) != 0) {
		ngx_log_error(NGX_LOG_ERR, log, 0, "%s (answered as misses until it can be mapped)", err);
		ngx_cpystrn((u_char *)s->err, (u_char *)err, sizeof(s->err));
	}
}

static void slot_check(ngx_http_ucache_slot_t *s, ngx_log_t *log)
{
	if (s->ever_checked && ngx_current_msec - s->checked < NGX_HTTP_UCACHE_CHECK_MS)
		return;
	s->ever_checked = 1;
	s->checked = ngx_current_msec;
	if (s->view && ucache_view_replaced(s->view)) {
		ngx_log_error(NGX_LOG_NOTICE, log, 0, "ucache: \"%s\" was replaced: mapping it again", s->path);
		ucache_view_close(s->view);
		s->view = NULL;
	}
	if (s->view == NULL)
		slot_open(s, log);
}

ngx_http_ucache_slot_t *ngx_http_ucache_slot(ngx_log_t *log, const char *path)
{
	ngx_http_ucache_slot_t *s = slot_find(log, path);

	if (s)
		slot_check(s, log);
	return s;
}

ucache_view_t *ngx_http_ucache_slot_view(ngx_http_ucache_slot_t *s)
{
	return s->view;
}

void ngx_http_ucache_slot_bad_value(ngx_http_ucache_slot_t *s, ngx_log_t *log, ngx_str_t *key, const char *why)
{
	if (s->bad_value_logged++)
		return;
	ngx_log_error(NGX_LOG_ERR, log, 0,
		      "ucache: \"%s\": the value of \"%V\" is not a response nginx can send: %s "
		      "(answered as a miss; logged once per mapping of the file)",
		      s->path, key, why);
}

void ngx_http_ucache_slots_close(void)
{
	ngx_uint_t i;

	for (i = 0; i < nslots; i++) {
		ucache_view_close(slots[i].view);
		slots[i].view = NULL;
	}
}
