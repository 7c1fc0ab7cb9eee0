/*
 * glue.h - internal interface of the ucache uWSGI plugin (plugins/ucache/).
 *
 * The plugin is the thin layer between uWSGI and the engine (include/ucache.h):
 *
 *   plugin.c   struct uwsgi_plugin ucache_plugin, its options and hooks
 *   options.c  claims the stock cache options and builds the caches
 *   hook.c     redirects the binary's exported cache API to api.c/stats.c
 *   api.c      the redirected uwsgi_cache_* functions and the shim structs
 *   remote.c   the name@host:port client (modifier1 111, modifier2 17)
 *   proto.c    the modifier1 111 wire protocol: parser, encoders (proto.h;
 *              no uWSGI, unit-tested and fuzzed alone)
 *   server.c   the modifier1 111 request handler
 *   rpc.c      the engine's atomic operations as RPC functions (ucache_add, ...)
 *   sweeper.c  the master's expiry thread, store msync/close, the check RPC
 *   tags.c     tag invalidation and envelope heads: the RPC functions
 *              ucache_invalidate, ucache_tags_now, ucache_tags_head, and
 *              the modifier2 17 invalidate
 *   stats.c    live counters and ucache's extra keys in the stats server
 *   reload.c   store-less caches' regions kept across the master's re-exec
 *   image.c    stock's raw cache image: reader and writer (image.h; no
 *              uWSGI, unit-tested and fuzzed alone)
 *   sync.c     start-up sync (sync=, --cache-sync) and the stock image
 *              served to stock sync clients
 *   udp.c      replication over UDP: nodes=/udp= setup, sending after local
 *              writes, the master's receiver threads, the udp_* counters
 *   udpwire.c  the replication datagram: parser, encoders, signing, replay
 *              guard, udp_allow networks (udpwire.h; no uWSGI, unit-tested
 *              and fuzzed alone)
 *   redis.c    near cache over Redis: per-thread client, L1 -> Redis operations
 *   redis_listener.c  the master's invalidation thread of each near cache
 *   redis_tags.c  a near cache's tag state in Redis: clock, invalidation
 *
 * Every cache is a struct ucp_cache: a struct uwsgi_cache (the "shim", which
 * the core and the language plugins keep seeing) followed by the engine
 * handle.  uwsgi.caches points to the first shim; shims are chained by
 * uc.next like stock caches.  The list is built once in the master before
 * fork and never changes afterwards, so it is read without a lock.
 *
 * Non-static glue symbols are prefixed ucp_ and hidden (-fvisibility=hidden);
 * only ucache_plugin and ucache_asap are exported.
 */
#ifndef UCP_GLUE_H
#define UCP_GLUE_H

#include <uwsgi.h>
#include "ucache.h"
#include "proto.h"

#define UCP_EXPORT __attribute__((visibility("default")))

/* "ucac" - tells a shim apart from any other struct uwsgi_cache pointer. */
#define UCP_MAGIC 0x75636163u

struct ucp_cache {
	struct uwsgi_cache uc;     /* must stay first: legacy callers get &uc */
	uint32_t magic;            /* UCP_MAGIC */
	ucache_t *cache;           /* the engine handle, inherited across fork */
	struct uwsgi_hash_algo algo; /* what uc.hash points to (stats: "hash") */
	struct ucache_stats snap;  /* last counters copied by ucp_stats_refresh */
	uint64_t sync_items;       /* items imported by the start-up sync (sync.c) */
	struct ucp_udp *udp;       /* replication (udp.c), NULL without nodes/udp */
	struct ucp_redis *redis;   /* redis=: near cache over Redis (redis.c), or NULL */
	struct ucp_ops_line *ops;  /* per-operation counters (stats.c), NULL if not mapped */
};

extern struct uwsgi_server uwsgi;

/* ----------------------------------------------------------- log limiter */

/* One log line per second at most through it, lock-free: the threads of a
 * process (a static one: server.c) or every process (one in a shared
 * mapping: udp.c's send errors, redis.c) race on the second with a CAS;
 * the losers count themselves in suppressed. */
struct ucp_ratelimit {
	uint64_t second;          /* when the last line was logged */
	uint64_t suppressed;      /* lines dropped since */
};

/* 1 if a line may be logged now (*dropped: the lines suppressed since the
 * last one), 0 if this second already had its line. */
static inline int ucp_ratelimit_pass(struct ucp_ratelimit *rl, uint64_t *dropped)
{
	uint64_t now = (uint64_t) time(NULL);
	uint64_t prev = __atomic_load_n(&rl->second, __ATOMIC_RELAXED);

	if (prev == now || !__atomic_compare_exchange_n(&rl->second, &prev, now, 0,
				__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&rl->suppressed, 1, __ATOMIC_RELAXED);
		return 0;
	}
	*dropped = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);
	return 1;
}
extern struct uwsgi_plugin ucache_plugin;

/* ------------------------------------------------------------ options.c */

/* Build every configured cache (called once, from ucache_asap). Exits with
 * a one-line message naming the option on a configuration error. */
void ucp_caches_build(void);

/* Create one cache from a --cache2 keyval string; exits on error. */
struct ucp_cache *ucp_cache_add_keyval(const char *keyval);

/* Give every shim its uWSGI lock (needs the core's lock ops, set up after
 * the options are parsed; called from the redirected create_all). */
void ucp_caches_init_locks(void);

/* Number of caches, and the largest keysize among them. */
uint64_t ucp_max_keysize(void);

/* ---------------------------------------------------------------- api.c */

/* The shim behind a struct uwsgi_cache pointer, or NULL if not ours. */
struct ucp_cache *ucp_from_uc(struct uwsgi_cache *uc);

/* Local cache by name (NULL or "" = the default cache), or NULL. */
struct ucp_cache *ucp_lookup(const char *name, size_t len);

/* The magic API with a resolved local cache (also used by server.c); a
 * successful write is replicated (udp.c). */
int ucp_local_set(struct ucp_cache *c, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags);
/* ucache_del() + replication of a successful del.  0 or -errno. */
int ucp_local_del(struct ucp_cache *c, const char *key, uint16_t klen);

/* Log a write refused for its size (one line per second per process, the
 * next says how many were dropped): the cache, the key length, the value
 * size and the limits.  The engine counts it (stats' too_large). */
void ucp_log_too_large(const struct ucp_cache *c, size_t klen, size_t vlen);

/* The names of the local caches, comma-separated, into out (for errors
 * naming a cache that does not exist). */
void ucp_cache_names(char *out, size_t len);

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
void ucp_api_noop(void);
void *ucp_api_udp_loop(void *arg);

/* ----------------------------------------------------------------- hook.c */

/* Redirect the binary's cache API and prove it works; exits with a clear
 * message when that is impossible on this platform/binary. */
void ucp_hook_install(void);

/* The self-test sentinel: uwsgi_cache_by_name(UCP_SELFTEST_NAME) returns
 * &ucp_selftest_sentinel only when the redirect is in place. */
#define UCP_SELFTEST_NAME "\x01ucache-selftest"
extern struct ucp_cache ucp_selftest_sentinel;

/* -------------------------------------------------------------- proto.c */

/* The wire protocol, parser and encoders: proto.h (no uWSGI in it). */

/* ------------------------------------------------------------- remote.c */

/* Split "name@addr": *addr points after '@', *name_len = bytes before it.
 * Returns 0 if cache names a remote cache, -1 otherwise. */
int ucp_remote_split(const char *cache, const char **addr, uint16_t *name_len);

char *ucp_remote_get(const char *cache, char *key, uint16_t klen, uint64_t *vlen, uint64_t *expires);
int ucp_remote_set(const char *cache, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags);
int ucp_remote_simple(const char *cmd, const char *cache, char *key, uint16_t klen);

/* Build a modifier2 17 request: header + vars.  NULL on allocation failure. */
struct uwsgi_buffer *ucp_magic_request(const char *cmd, const char *cache, uint16_t cache_len,
		const char *key, uint16_t key_len, int with_size, uint64_t size, uint64_t expires);

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

/* ---------------------------------------------------------------- rpc.c */

/* Register ucache_add, ucache_cas, ... (README "Python"); exits naming the
 * function when the RPC table is full.  From preinit_apps, in the master. */
void ucp_rpc_register(void);

/* ------------------------------------------------------------ sweeper.c */

extern uint64_t ucp_sweep_budget;  /* --ucache-sweep-budget */
void ucp_sweepers_start(void);
void ucp_sync_all(void);
void ucp_caches_close(void);

/* RPC "ucache_check" [CACHE] (--ucache-check-rpc): ucache_check() on CACHE
 * or every local cache; one "ok NAME ITEMS" / "FAIL NAME: why" line each,
 * malloc'd into *buffer.  Returns the reply's length. */
uint64_t ucp_check_rpc(uint8_t argc, char **argv, uint16_t *argvs, char **buffer);

/* --------------------------------------------------------------- sync.c */

/* Import cache c's contents from the first of nodes (';'-separated) that
 * answers, in the master before fork; exits 1 naming the nodes if none
 * does (as stock does). */
void ucp_sync_cache(struct ucp_cache *c, const char *nodes);

/* Answer a plain modifier2 6 (a stock sync client) with stock's vars and
 * raw image of c (image.h). */
void ucp_sync_serve_image(struct wsgi_request *wsgi_req, struct ucp_cache *c);

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

/* --------------------------------------------------------------- tags.c */

/* Invalidate every tag of the comma-separated list (tags, len) in c.
 * 0, or -1 if a tag is empty or too long (the others are invalidated). */
int ucp_tags_invalidate(struct ucp_cache *c, const char *tags, size_t len);

/* Register the RPC functions ucache_invalidate, ucache_tags_now and
 * ucache_tags_head (from the master, before fork); exits naming the
 * function if one fails. */
void ucp_tags_register(void);

/* -------------------------------------------------------------- stats.c */

int ucp_stats_key(struct uwsgi_stats *us, char *key);
int ucp_stats_keylong(struct uwsgi_stats *us, char *key, unsigned long long num);

/* Copy the engine's live counters into every shim. */
void ucp_stats_refresh(void);

/* Per-operation counters (stats keys "sets", "deletes"; the engine counts
 * gets as hits + misses): one cache line per process slot (uwsgi.mywid,
 * 0 = master) in a shared page mapped before fork, so workers never share
 * a line; relaxed atomics, summed by readers.  Counted: writes and deletes
 * that succeeded, from the app, modifier1 111 and the RPC functions (not
 * replicated or synced ones: udp_applied / sync_items count those). */
enum ucp_op { UCP_OP_SET, UCP_OP_DEL, UCP_OP_COUNT };
#define UCP_OPS_LINES 64
struct ucp_ops_line {
	uint64_t n[UCP_OP_COUNT];
} __attribute__((aligned(64)));

/* Map c's counters (in the master, at creation); exits if mmap fails. */
void ucp_ops_attach(struct ucp_cache *c);
uint64_t ucp_ops_sum(const struct ucp_cache *c, enum ucp_op op);

static inline void ucp_count(struct ucp_cache *c, enum ucp_op op)
{
	if (c->ops)
		__atomic_add_fetch(&c->ops[(unsigned) uwsgi.mywid % UCP_OPS_LINES].n[op], 1,
				__ATOMIC_RELAXED);
}

/* Hold off ucp_caches_close() (sweeper.c) while a master thread reads the
 * caches: between hold and release no cache is unmapped. */
void ucp_caches_hold(void);
void ucp_caches_release(void);

/* ------------------------------------------------------------ metrics.c */

/* --ucache-metrics ADDR: check ADDR at init, bind it in the master from
 * preinit_apps, before fork (both exit naming the option on an error),
 * close it in workers, serve /metrics from a master thread. */
extern char *ucp_metrics_addr;
void ucp_metrics_init(void);
void ucp_metrics_bind(void);
void ucp_metrics_post_fork(void);
void ucp_metrics_start(void);

/* ---------------------------------------------------------------- udp.c */

struct ucp_udp;

/* Read and check the cache's nodes/udp/udp_allow/udp_secret_file (legacy:
 * --cache-udp-node/--cache-udp-server), bind udp=, log the stock lines;
 * exits naming the option on a bad value.  In the master, before fork. */
void ucp_udp_setup(struct ucp_cache *c, int legacy);

/* Replicate a successful local write (only when c->udp is set): a set with
 * its expiry (relative seconds unless absolute), a del, or the current
 * stored item of a key after math or an atomic (RPC) write. */
void ucp_udp_send_set(struct ucp_cache *c, const char *key, uint16_t klen, const char *val,
		uint64_t vlen, uint64_t expires, int absolute);
void ucp_udp_send_del(struct ucp_cache *c, const char *key, uint16_t klen);
void ucp_udp_send_item(struct ucp_cache *c, const char *key, uint16_t klen);

/* The master's receiver threads (in place of uwsgi_cache_start_sync_servers). */
void ucp_udp_servers_start(void);

/* Stop applying received datagrams for good (before the caches close). */
void ucp_udp_quiesce(void);

/* The i-th udp_* counter of c: 1 with *name and *value set, 0 past the last
 * (or without nodes/udp). */
int ucp_udp_stat(const struct ucp_cache *c, size_t i, const char **name, uint64_t *value);
/* -------------------------------------------------------------- redis.c */

/* From cache creation, in the master: a cache with redis= gets its near
 * cache state; exits naming the problem (no --master, password file). */
void ucp_redis_attach(struct ucp_cache *c);

/* The L1 -> Redis operations (redis.c has the semantics); same results as
 * the engine calls they stand for, -EIO when Redis did not answer. */
int ucp_redis_get_ex(struct ucp_cache *c, const void *key, size_t klen, void *buf, size_t buflen,
		size_t *vlen, struct ucache_item_info *info);
void *ucp_redis_get_alloc(struct ucp_cache *c, const void *key, size_t klen, size_t *vlen,
		struct ucache_item_info *info);
int ucp_redis_exists(struct ucp_cache *c, const void *key, size_t klen);
int ucp_redis_set(struct ucp_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
		uint64_t expires, unsigned flags);
int ucp_redis_del(struct ucp_cache *c, const void *key, size_t klen);
int ucp_redis_clear(struct ucp_cache *c);
int ucp_redis_math(struct ucp_cache *c, const void *key, size_t klen, enum ucache_math_op op,
		int64_t delta, uint64_t expires, int update);
int ucp_redis_num(struct ucp_cache *c, const void *key, size_t klen, int64_t *out);

/* The i-th stats key of a near cache: 1 with *name and *value set, 0 past
 * the last (or without Redis); as ucp_udp_stat(). */
int ucp_redis_stat(const struct ucp_cache *c, size_t i, const char **name, uint64_t *value);

/* --------------------------------------------------------- redis_tags.c */

/* Most tags one ucp_redis_tags_invalidate() takes (an RPC's 255 args fit). */
#define UCP_INVALIDATE_BATCH 256

/* From ucp_redis_attach: name the tag state key (exits if the prefix
 * would contain it). */
void ucp_redis_tags_attach(const char *name, struct ucp_redis *r);

/* A near cache's ucache_tags_now() (1 when Redis does not answer) and
 * its invalidation of n tags at once: 0, -EINVAL (a bad tag, nothing
 * done) or -EIO (Redis did not acknowledge). */
uint64_t ucp_redis_tags_now(struct ucp_cache *c);
int ucp_redis_tags_invalidate(struct ucp_cache *c, const void *const *tags, const size_t *lens, size_t n);

/* ---------------------------------------------------- redis_listener.c */

/* One listener thread per near cache, in the master (from ucp_sweepers_start). */
void ucp_redis_listeners_start(void);

/* Stop them changing any L1 (before the master unmaps the caches). */
void ucp_redis_listeners_stop(void);

/* What api.c and server.c call for a local cache: the engine, and for a
 * near cache Redis behind it.  A cache without redis= pays one test of
 * c->redis, and only on an L1 miss or a write. */
static inline int ucp_get_ex(struct ucp_cache *c, const void *key, size_t klen, void *buf,
		size_t buflen, size_t *vlen, struct ucache_item_info *info)
{
	int ret = ucache_get_ex(c->cache, key, klen, buf, buflen, vlen, info);

	if (__builtin_expect(ret == -ENOENT && c->redis != NULL, 0))
		return ucp_redis_get_ex(c, key, klen, buf, buflen, vlen, info);
	return ret;
}

static inline void *ucp_get_alloc(struct ucp_cache *c, const void *key, size_t klen,
		size_t *vlen, struct ucache_item_info *info)
{
	void *val = ucache_get_alloc(c->cache, key, klen, vlen, info);

	if (__builtin_expect(!val && c->redis != NULL && errno == ENOENT, 0))
		return ucp_redis_get_alloc(c, key, klen, vlen, info);
	return val;
}

static inline int ucp_exists(struct ucp_cache *c, const void *key, size_t klen)
{
	int ret = ucache_exists(c->cache, key, klen);

	return ret == -ENOENT && c->redis ? ucp_redis_exists(c, key, klen) : ret;
}

static inline int ucp_set(struct ucp_cache *c, const void *key, size_t klen, const void *val,
		size_t vlen, uint64_t expires, unsigned flags)
{
	int ret = c->redis ? ucp_redis_set(c, key, klen, val, vlen, expires, flags)
		: ucache_set(c->cache, key, klen, val, vlen, expires, flags);

	if (__builtin_expect(ret == -E2BIG, 0))
		ucp_log_too_large(c, klen, vlen);
	return ret;
}

/* An uncounted read (the plugin's own lookups: candidate keys, polls). */
static inline void *ucp_peek_alloc(struct ucp_cache *c, const void *key, size_t klen, size_t *vlen)
{
	void *val = ucache_peek_alloc(c->cache, key, klen, vlen, NULL);

	if (__builtin_expect(!val && c->redis != NULL && errno == ENOENT, 0))
		return ucp_redis_get_alloc(c, key, klen, vlen, NULL);
	return val;
}

static inline int ucp_del(struct ucp_cache *c, const void *key, size_t klen)
{
	return c->redis ? ucp_redis_del(c, key, klen) : ucache_del(c->cache, key, klen);
}

static inline int ucp_clear(struct ucp_cache *c)
{
	if (c->redis)
		return ucp_redis_clear(c);
	ucache_clear(c->cache);
	return 0;
}

static inline int ucp_num(struct ucp_cache *c, const void *key, size_t klen, int64_t *out)
{
	return c->redis ? ucp_redis_num(c, key, klen, out) : ucache_num(c->cache, key, klen, out);
}

#endif
