/*
 * takeover/takeover.h - what replaces the stock cache inside the binary:
 * the redirect (hook.c), its targets (api.c), the options and the caches
 * they build (options.c), the master's threads, msync and close
 * (lifecycle.c, sweeper.c), the stats keys (statkeys.c) and the regions
 * kept across a reload (reload.c).
 */
#ifndef UCP_TAKEOVER_H
#define UCP_TAKEOVER_H

#include "ucp.h"

/* ------------------------------------------------------------ options.c */

/* Build every configured cache (called once, from ucache_asap). Exits with
 * a one-line message naming the option on a configuration error. */
void ucp_caches_build(void);

/* Create one cache from a --cache2 keyval string; exits on error. */
struct ucp_cache *ucp_cache_add_keyval(const char *keyval);

/* Give every shim its uWSGI lock (needs the core's lock ops, set up after
 * the options are parsed; called from the redirected create_all). */
void ucp_caches_init_locks(void);

/* ---------------------------------------------------------------- api.c */

/* Redirect targets: same prototypes as the uwsgi.h functions they replace
 * (hook.c has the list). */
char *ucp_api_magic_get(char *key, uint16_t klen, uint64_t *vlen, uint64_t *expires, char *cache);
int ucp_api_magic_set(char *key, uint16_t klen, char *val, uint64_t vlen, uint64_t expires,
		uint64_t flags, char *cache);
int ucp_api_magic_del(char *key, uint16_t klen, char *cache);
int ucp_api_magic_exists(char *key, uint16_t klen, char *cache);
int ucp_api_magic_clear(char *cache);
void ucp_api_magic_context_hook(char *key, uint16_t klen, char *val, uint16_t vlen, void *data);
struct uwsgi_buffer *ucp_api_prepare_exists(char *name, uint16_t name_len, char *key, uint16_t klen);
struct uwsgi_buffer *ucp_api_prepare_del(char *name, uint16_t name_len, char *key, uint16_t klen);
struct uwsgi_buffer *ucp_api_prepare_clear(char *name, uint16_t name_len);
struct uwsgi_buffer *ucp_api_prepare_set(char *name, uint16_t name_len, char *key, uint16_t klen,
		uint64_t len, uint64_t expires);
struct uwsgi_buffer *ucp_api_prepare_update(char *name, uint16_t name_len, char *key, uint16_t klen,
		uint64_t len, uint64_t expires);
char *ucp_api_get2(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t *vlen);
char *ucp_api_get3(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t *vlen, uint64_t *expires);
char *ucp_api_get4(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t *vlen, uint64_t *hits);
int ucp_api_set2(struct uwsgi_cache *uc, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags);
int ucp_api_del2(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t index, uint16_t flags);
uint32_t ucp_api_exists2(struct uwsgi_cache *uc, char *key, uint16_t klen);
int64_t ucp_api_num2(struct uwsgi_cache *uc, char *key, uint16_t klen);
struct uwsgi_cache *ucp_api_by_name(char *name);
struct uwsgi_cache *ucp_api_by_namelen(char *name, uint16_t len);
struct uwsgi_cache_item *ucp_api_keys(struct uwsgi_cache *uc, uint64_t *pos, struct uwsgi_cache_item **uci);
void ucp_api_rlock(struct uwsgi_cache *uc);
void ucp_api_rwunlock(struct uwsgi_cache *uc);
char *ucp_api_item_key(struct uwsgi_cache_item *uci);
struct uwsgi_cache *ucp_api_create(char *arg);
void ucp_api_create_all(void);
void ucp_api_noop_uc(struct uwsgi_cache *uc);
void *ucp_api_udp_loop(void *arg);

/* ----------------------------------------------------------------- hook.c */

/* Redirect the binary's cache API and prove it works; exits with a clear
 * message when that is impossible on this platform/binary. */
void ucp_hook_install(void);

/* The self-test sentinel: uwsgi_cache_by_name(UCP_SELFTEST_NAME) returns
 * &ucp_selftest_sentinel only when the redirect is in place. */
#define UCP_SELFTEST_NAME "\x01ucache-selftest"
extern struct ucp_cache ucp_selftest_sentinel;

/* ------------------------------------------------------------ sweeper.c */

extern uint64_t ucp_sweep_budget;  /* --ucache-sweep-budget */

/* The expiry thread (none with --cache-no-expire or without a cache that
 * expires); from ucp_master_threads_start. */
void ucp_sweeper_start(void);

/* Hold off ucp_caches_close() while a master thread (the sweeper, the
 * metrics server) reads the caches: between hold and release no cache is
 * unmapped (the sweeper's pass lock). */
void ucp_caches_hold(void);
void ucp_caches_release(void);

/* ---------------------------------------------------------- lifecycle.c */

/* The master's threads (in place of uwsgi_cache_start_sweepers): each near
 * cache's Redis listener, the metrics server and the sweeper. */
void ucp_master_threads_start(void);

/* Every master cycle (in place of uwsgi_cache_sync_all): msync the stores
 * due (store_sync=); MS_ASYNC. */
void ucp_flush_all(void);

/* The last user's clean close of every cache (master cleanup, or a
 * master-less single process at exit). */
void ucp_caches_close(void);

/* ------------------------------------------------------------- reload.c */

/* Before ucache_create of a store-less cache in a master: set keep_region,
 * and region_fd if the previous image handed this cache's region over.
 * Returns 1 when it did (a reload: the contents are kept). */
int ucp_reload_prepare(struct ucache_config *cfg);
/* After ucache_create: keep uWSGI's fd-closing loops off its memfd. */
void ucp_reload_created(ucache_t *engine);
/* After every cache is built: drop regions no cache claimed. */
void ucp_reload_done(void);
/* In the master's cleanup hook: hand the cache's memfd to the next exec. */
void ucp_reload_handover(const char *name, ucache_t *engine);

/* ---------------------------------------------------------- statkeys.c */

int ucp_stats_key(struct uwsgi_stats *us, char *key);
int ucp_stats_keylong(struct uwsgi_stats *us, char *key, unsigned long long num);

/* Copy the engine's live counters into every shim. */
void ucp_stats_refresh(void);

/* Map c's per-operation counters (ucp.h; in the master, at creation);
 * exits if mmap fails.  sum: over every process slot. */
void ucp_ops_attach(struct ucp_cache *c);
uint64_t ucp_ops_sum(const struct ucp_cache *c, enum ucp_op op);

#endif
