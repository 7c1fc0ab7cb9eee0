/*
 * ngx_http_ucache.h - what the nginx module's three files share.
 *
 *   ngx_http_ucache_module.c    directives, variables, the content handler
 *   ngx_http_ucache_views.c     each worker's read-only views, by store path
 *   ngx_http_ucache_response.c  a stored HTTP response sent through nginx
 */
#ifndef NGX_HTTP_UCACHE_H
#define NGX_HTTP_UCACHE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <ucache.h>

/* $ucache_status */
typedef enum {
	NGX_HTTP_UCACHE_HIT = 0,
	NGX_HTTP_UCACHE_MISS,
	NGX_HTTP_UCACHE_EXPIRED,
	NGX_HTTP_UCACHE_STALE,
	NGX_HTTP_UCACHE_INVALIDATED,
	NGX_HTTP_UCACHE_ERROR
} ngx_http_ucache_status_e;

/* One store path's view in this worker (ngx_http_ucache_views.c). */
typedef struct ngx_http_ucache_slot_s ngx_http_ucache_slot_t;

/* The slot of path (NUL-terminated), opened, checked for a replacement
 * (at most every NGX_HTTP_UCACHE_CHECK_MS) and reopened as needed; NULL
 * when no more paths fit.  A failure to open is logged once per change of
 * the reason, never per request. */
ngx_http_ucache_slot_t *ngx_http_ucache_slot(ngx_log_t *log, const char *path);

/* The slot's view, NULL while its file cannot be opened. */
ucache_view_t *ngx_http_ucache_slot_view(ngx_http_ucache_slot_t *s);

/* A value that is not a response nginx can send: logged once per opening
 * of the slot's file. */
void ngx_http_ucache_slot_bad_value(ngx_http_ucache_slot_t *s, ngx_log_t *log, ngx_str_t *key,
				    const char *why);

/* Close every view (at the worker's exit). */
void ngx_http_ucache_slots_close(void);

/* A hit: parse the stored value (len bytes, copied into r's pool by the
 * caller) into r->headers_out and the body buffer *out.  *stale is set
 * when the Accelerator's fresh-until time has passed.  NGX_DECLINED with
 * *why set when it is not a response nginx can send. */
ngx_int_t ngx_http_ucache_parse(ngx_http_request_t *r, u_char *val, size_t len, ngx_chain_t *out,
				ngx_uint_t *stale, const char **why);

#endif
