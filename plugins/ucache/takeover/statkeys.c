/*
 * statkeys.c - ucache caches in the uWSGI stats server.
 *
 * The core's stats generator (uwsgi_master_generate_stats) walks
 * uwsgi.caches and prints, per cache, the stock keys read straight from the
 * struct uwsgi_cache fields: name, hash, hashsize, keysize, max_items,
 * blocks, blocksize, items, hits, miss, full, last_modified_at.  Our shims
 * carry those fields, but the counters live in the engine.  So two of the
 * generator's helpers are redirected (hook.c) to the reimplementations
 * below, which produce byte-identical output plus:
 *
 *   uwsgi_stats_key(us, "caches")   first refreshes every shim's counters
 *                                   from ucache_stats() (so they are live)
 *                                   and points this thread's cursor at the
 *                                   first cache;
 *   uwsgi_stats_keylong(us, "last_modified_at", n)
 *                                   the last stock key of a cache object:
 *                                   after it, append "evictions", "expired",
 *                                   "bytes_used", "too_large" (writes refused
 *                                   as too large), "bytes_mapped" (the shared
 *                                   mapping), "bytes_resident" (its pages in
 *                                   RAM: mincore, a byte per 4 KiB page per
 *                                   request), "max_value_size" (the largest
 *                                   value a set accepts), "sets", "deletes"
 *                                   (ucp_count), "sync_items",
 *                                   "ucache_version" (the plugin's release),
 *                                   then, only for a cache that has the
 *                                   feature, the udp_* counters (peers/udp.c) and
 *                                   a near cache's redis keys (nearcache/), and
 *                                   advance the cursor.
 *
 * The generator runs in the master's main thread and in stats pushers'
 * threads, hence a per-thread cursor.  Refreshing writes a few aligned
 * uint64 fields of the shims; concurrent refreshes write the same values.
 */
#include "ucp.h"
#include "takeover/takeover.h"
#include "peers/peers.h"
#include "nearcache/nearcache.h"

#include <stdarg.h>
#include <sys/mman.h>

int uwsgi_stats_apply_tabs(struct uwsgi_stats *us);

static __thread struct uwsgi_cache *cursor;

/* Append printf output to us, growing it by us->chunk as the core does. */
static int stats_printf(struct uwsgi_stats *us, const char *fmt, ...)
{
	for (;;) {
		size_t avail = us->size - (size_t) us->pos;
		va_list ap;
		char *grown;
		int n;

		va_start(ap, fmt);
		n = vsnprintf(us->base + us->pos, avail, fmt, ap);
		va_end(ap);
		if (n <= 0)
			return -1;
		if ((size_t) n < avail) {
			us->pos += n;
			return 0;
		}
		grown = realloc(us->base, us->size + us->chunk);
		if (!grown)
			return -1;
		us->base = grown;
		us->size += us->chunk;
	}
}

void ucp_ops_attach(struct ucp_cache *c)
{
	void *m = mmap(NULL, sizeof(struct ucp_ops_line) * UCP_OPS_LINES, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED) {
		uwsgi_log("ucache: cache \"%s\": mmap of the operation counters: %s\n", c->uc.name,
				strerror(errno));
		exit(1);
	}
	c->ops = m;
}

uint64_t ucp_ops_sum(const struct ucp_cache *c, enum ucp_op op)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; c->ops && i < UCP_OPS_LINES; i++)
		sum += __atomic_load_n(&c->ops[i].n[op], __ATOMIC_RELAXED);
	return sum;
}

void ucp_stats_refresh(void)
{
	struct ucp_cache *c;

	for (c = ucp_first(); c; c = ucp_next(c)) {
		struct uwsgi_cache *uc = &c->uc;

		ucache_stats(c->cache, &c->snap);
		uc->n_items = c->snap.items;
		uc->hits = c->snap.hits;
		uc->miss = c->snap.misses;
		uc->full = c->snap.full;
		uc->last_modified_at = (time_t) c->snap.last_modified_at;
	}
}

int ucp_stats_key(struct uwsgi_stats *us, char *key)
{
	if (!strcmp(key, "caches")) {
		ucp_stats_refresh();
		cursor = uwsgi.caches;
	}
	if (uwsgi_stats_apply_tabs(us))
		return -1;
	return stats_printf(us, "\"%s\":", key);
}

static int keylong(struct uwsgi_stats *us, const char *key, unsigned long long num)
{
	if (uwsgi_stats_apply_tabs(us))
		return -1;
	return stats_printf(us, "\"%s\":%llu", key, num);
}

static int keystr(struct uwsgi_stats *us, const char *key, const char *value)
{
	if (uwsgi_stats_apply_tabs(us))
		return -1;
	return stats_printf(us, "\"%s\":\"%s\"", key, value);
}

/* The extra keys of one feature: stat(c, i, ...) for i = 0, 1, ... */
static int feature_keys(struct uwsgi_stats *us, struct ucp_cache *c,
		int (*stat)(const struct ucp_cache *, size_t, const char **, uint64_t *))
{
	const char *name;
	uint64_t value;
	size_t i;

	for (i = 0; stat(c, i, &name, &value); i++) {
		if (uwsgi_stats_comma(us) || keylong(us, name, value))
			return -1;
	}
	return 0;
}

static int extras(struct uwsgi_stats *us, struct ucp_cache *c)
{
	const struct {
		const char *key;
		uint64_t value;
	} keys[] = {
		{ "evictions", c->snap.evictions },
		{ "expired", c->snap.expirations },
		{ "bytes_used", c->snap.bytes_used },
		{ "too_large", c->snap.too_large },
		{ "bytes_mapped", c->snap.mapped_bytes },
		{ "bytes_resident", ucache_resident_bytes(c->cache) },
		{ "max_value_size", ucache_max_value(c->cache) },
		{ "sets", ucp_ops_sum(c, UCP_OP_SET) },
		{ "deletes", ucp_ops_sum(c, UCP_OP_DEL) },
		{ "sync_items", c->sync_items },
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (uwsgi_stats_comma(us) || keylong(us, keys[i].key, keys[i].value))
			return -1;
	}
	/* VERSION holds no quote or backslash (the Makefile checks): no escaping */
	if (uwsgi_stats_comma(us) || keystr(us, "ucache_version", UCACHE_VERSION))
		return -1;
	/* a feature's keys only where it is configured: its iterator has none */
	return feature_keys(us, c, ucp_udp_stat) || feature_keys(us, c, ucp_redis_stat) ? -1 : 0;
}

int ucp_stats_keylong(struct uwsgi_stats *us, char *key, unsigned long long num)
{
	struct ucp_cache *c;

	if (keylong(us, key, num))
		return -1;
	if (!cursor || strcmp(key, "last_modified_at"))
		return 0;
	c = ucp_from_uc(cursor);
	cursor = cursor->next;
	return c ? extras(us, c) : 0;
}
