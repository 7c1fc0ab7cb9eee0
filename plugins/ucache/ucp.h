/*
 * ucp.h - what every file of the ucache uWSGI plugin (plugins/ucache/)
 * shares: the cache struct, the registry (registry.c), the master-thread
 * start (mthread.c) and the log limiter.
 *
 * The plugin is the layer between uWSGI and the engine (include/ucache.h),
 * in folders by layer, bottom first (docs/ARCHITECTURE.md has one line per
 * file; tests/check_layering.py checks that no file calls up):
 *
 *   wire/       the byte formats: modifier1 111, HTTP, dump, stock image,
 *               replication datagram (no uWSGI: unit-tested and fuzzed alone)
 *   .           registry.c, mthread.c (this header)
 *   nearcache/  the near cache over Redis (nearcache.h)
 *   peers/      other nodes: UDP, start-up sync, remote caches (peers.h)
 *   .           writepath.c: the one write path (writepath.h)
 *   takeover/   what replaces the stock cache inside the binary (takeover.h)
 *   serve/      modifier1 111 server and the RPC functions (serve.h)
 *   .           plugin.c: registration and start-up order
 *
 * Every cache is a struct ucp_cache: a struct uwsgi_cache (the "shim", which
 * the core and the language plugins keep seeing) followed by the engine
 * handle.  uwsgi.caches points to the first shim; shims are chained by
 * uc.next like stock caches.  The list is built once in the master before
 * fork and never changes afterwards, so it is read without a lock.
 *
 * Non-static plugin symbols are prefixed ucp_ and hidden (-fvisibility=hidden);
 * only ucache_plugin and ucache_asap are exported.
 */
#ifndef UCP_H
#define UCP_H

#include <uwsgi.h>
#include "ucache.h"
#include "wire/packet.h"

#define UCP_EXPORT __attribute__((visibility("default")))

/* "ucac" - tells a shim apart from any other struct uwsgi_cache pointer. */
#define UCP_MAGIC 0x75636163u

struct ucp_cache {
	struct uwsgi_cache uc;     /* must stay first: legacy callers get &uc */
	uint32_t magic;            /* UCP_MAGIC */
	ucache_t *cache;           /* the engine handle, inherited across fork */
	struct uwsgi_hash_algo algo; /* what uc.hash points to (stats: "hash") */
	struct ucache_stats snap;  /* last counters copied by ucp_stats_refresh (statkeys.c) */
	uint64_t sync_items;       /* items imported by the start-up sync (peers/sync.c) */
	struct ucp_udp *udp;       /* replication (peers/udp.c), NULL without nodes/udp */
	struct ucp_redis *redis;   /* redis=: near cache over Redis (nearcache/), or NULL */
	struct ucp_ops_line *ops;  /* per-operation counters (below), NULL if not mapped */
};

extern struct uwsgi_server uwsgi;

/* ----------------------------------------------------------- log limiter */

/* One log line per second at most through it, lock-free: the threads of a
 * process (a static one: server.c) or every process (one in a shared
 * mapping: peers/udp.c's send errors, nearcache/) race on the second with a CAS;
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

/* ------------------------------------------------- per-operation counters */

/* Per-operation counters (stats keys "sets", "deletes"; the engine counts
 * gets as hits + misses): one cache line per process slot (uwsgi.mywid,
 * 0 = master) in a shared page mapped before fork (takeover/statkeys.c),
 * so workers never share a line; relaxed atomics, summed by readers.
 * Counted: writes and deletes that succeeded, from the app, modifier1 111
 * and the RPC functions (writepath.c), not replicated or synced ones
 * (udp_applied / sync_items count those). */
enum ucp_op { UCP_OP_SET, UCP_OP_DEL, UCP_OP_COUNT };
#define UCP_OPS_LINES 64
struct ucp_ops_line {
	uint64_t n[UCP_OP_COUNT];
} __attribute__((aligned(64)));

static inline void ucp_count(struct ucp_cache *c, enum ucp_op op)
{
	if (c->ops)
		__atomic_add_fetch(&c->ops[(unsigned) uwsgi.mywid % UCP_OPS_LINES].n[op], 1,
				__ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ registry.c */

/* The shim behind a struct uwsgi_cache pointer, or NULL if not ours (or
 * closed: ucp_caches_close() detaches the engine).  Inline with
 * ucp_lookup: every redirected stock call makes one (registry.c). */
static inline struct ucp_cache *ucp_from_uc(struct uwsgi_cache *uc)
{
	struct ucp_cache *c = (struct ucp_cache *) uc;

	if (!c || c->magic != UCP_MAGIC || !c->cache)
		return NULL;
	return c;
}

/* Is uc named (name, len)?  Every shim's name_len is strlen(uc->name)
 * truncated to 16 bits (options.c), so when it equals len, uc->name has at
 * least len bytes and uc->name[len] can be read: a NUL there makes the
 * test exact even for a name longer than 65535 bytes. */
static inline int ucp_named(const struct uwsgi_cache *uc, const char *name, size_t len)
{
	if (len > UINT16_MAX)
		return ucp_streq(name, len, uc->name);
	return uc->name_len == len && !uc->name[len] && !memcmp(name, uc->name, len);
}

/* Local cache by name (NULL or "" = the default cache), or NULL. */
static inline struct ucp_cache *ucp_lookup(const char *name, size_t len)
{
	struct uwsgi_cache *uc = uwsgi.caches;

	if (!name || !len || !*name)
		return ucp_from_uc(uc);
	for (; uc; uc = uc->next) {
		if (ucp_named(uc, name, len))
			return ucp_from_uc(uc);
	}
	return NULL;
}

/* The live caches in list order: for (c = ucp_first(); c; c = ucp_next(c)). */
struct ucp_cache *ucp_first(void);
struct ucp_cache *ucp_next(const struct ucp_cache *c);

/* The names of the local caches, comma-separated, into out (for errors
 * naming a cache that does not exist). */
void ucp_cache_names(char *out, size_t len);

/* ------------------------------------------------------------- mthread.c */

/* Start a detached thread of the master running fn(arg), every signal
 * blocked in it; exits naming what (and why) when it cannot start. */
void ucp_master_thread(const char *what, void *(*fn)(void *), void *arg);

#endif
