/*
 * serve/serve.h - what answers requests: the modifier1 111 server
 * (server.c) and the RPC functions (rpc.c, tagrpc.c, checkrpc.c; their
 * replies: rpcreply.c).
 */
#ifndef UCP_SERVE_H
#define UCP_SERVE_H

#include "ucp.h"

/* ------------------------------------------------------------- server.c */

/* Write protection of modifier1 111 (options in plugin.c). */
extern int ucp_readonly;                                /* --ucache-readonly */
extern struct uwsgi_string_list *ucp_readonly_sockets;  /* --ucache-readonly-socket */
extern struct uwsgi_string_list *ucp_write_sockets;     /* --ucache-write-socket */

/* Check the write-protection options against the configured sockets and
 * log what they mean; exits naming the option on a mistake.  From init. */
void ucp_server_init(void);

int ucp_request(struct wsgi_request *wsgi_req);

/* NULL if a request on wsgi_req's socket may write, else why not. */
const char *ucp_write_refused(struct wsgi_request *wsgi_req);

/* -------------------------------------------------------- stockimage.c */

/* Answer a plain modifier2 6 (a stock sync client) with stock's vars and
 * raw image of c (wire/image.h). */
void ucp_serve_stock_image(struct wsgi_request *wsgi_req, struct ucp_cache *c);

/* --------------------------------------------------------- rpcreply.c */

/* Replies (the convention: rpcreply.c), each malloc'd into *buffer; they
 * return its length.  reply: status byte + len bytes of data; buffer: ub's
 * bytes as they are (ub is consumed); text: a line for people; error:
 * "E<CODE> fn: why" for rc (-errno), why = the table's unless given. */
uint64_t ucp_rpc_reply(char **buffer, char status, const void *data, size_t len);
uint64_t ucp_rpc_reply_buffer(struct uwsgi_buffer *ub, char **buffer);
uint64_t ucp_rpc_text(char **buffer, const char *text);
uint64_t ucp_rpc_error(char **buffer, const char *fn, int rc);
uint64_t ucp_rpc_error_why(char **buffer, const char *fn, int rc, const char *why);

/* Register the RPC functions defs[0..n) for owner (the plugin), from
 * preinit_apps in the master; exits naming the function when the RPC
 * table is full (raise --rpc-max). */
typedef uint64_t (*ucp_rpc_fn)(uint8_t argc, char **argv, uint16_t *argvs, char **buffer);
struct ucp_rpc_def {
	const char *name;
	ucp_rpc_fn fn;
};
void ucp_rpc_add(struct uwsgi_plugin *owner, const struct ucp_rpc_def *defs, size_t n);

/* ---------------------------------------------------------------- rpc.c */

/* ucache_add, ucache_cas, ... (docs/PYTHON.md "Atomic operations"). */
void ucp_rpc_register(struct uwsgi_plugin *owner);

/* ------------------------------------------------------------ tagrpc.c */

/* Invalidate every tag of the comma-separated list (tags, len) in c.
 * 0, or -1 if a tag is empty or too long (the others are invalidated). */
int ucp_tags_invalidate(struct ucp_cache *c, const char *tags, size_t len);

/* Register the RPC functions ucache_invalidate, ucache_tags_now and
 * ucache_tags_head (from the master, before fork); exits naming the
 * function if one fails. */
void ucp_tags_register(struct uwsgi_plugin *owner);

/* ---------------------------------------------------------- checkrpc.c */

/* RPC "ucache_check" [CACHE] (--ucache-check-rpc): ucache_check() on CACHE
 * or every local cache; one "ok NAME ITEMS" / "FAIL NAME: why" line each. */
void ucp_check_register(struct uwsgi_plugin *owner);

/* ----------------------------------------------------------- metrics.c */

/* --ucache-metrics ADDR: check ADDR at init, bind it in the master from
 * preinit_apps, before fork (both exit naming the option on an error),
 * close it in workers, serve /metrics from a master thread. */
extern char *ucp_metrics_addr;
void ucp_metrics_init(void);
void ucp_metrics_bind(void);
void ucp_metrics_post_fork(void);
void ucp_metrics_start(void);

#endif
