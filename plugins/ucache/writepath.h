/*
 * writepath.h - every cache operation on a local cache goes through here:
 * reads and writes dispatched to the engine, or for a near cache
 * (redis=) to Redis behind it (nearcache/), and writes replicated to the
 * UDP nodes (peers/udp.c) by writepath.c.
 */
#ifndef UCP_WRITEPATH_H
#define UCP_WRITEPATH_H

#include "ucp.h"
#include "nearcache/nearcache.h"

/* The magic API's write with a resolved local cache (takeover/api.c,
 * serve/server.c): stock flags (UPDATE, MATH, ABSEXPIRE, LOCAL) and a
 * relative expiry; a successful write is replicated unless _LOCAL.  0 or -1. */
int ucp_local_set(struct ucp_cache *c, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags);
/* ucp_del() + replication of a successful del.  0 or -errno. */
int ucp_local_del(struct ucp_cache *c, const char *key, uint16_t klen);

/* After a local engine write of key that returned rc (an atomic RPC write,
 * a del): on success it is counted (op: a set or a del) and replicated, a
 * set as the key's current item (a peek: no hit counted; a tagged or
 * vanished entry goes out as a del).  Returns rc. */
int ucp_wrote(struct ucp_cache *c, enum ucp_op op, const char *key, uint16_t klen, int rc);

/* Log a write refused for its size (one line per second per process, the
 * next says how many were dropped): the cache, the key length, the value
 * size and the limits.  The engine counts it (stats' too_large). */
void ucp_log_too_large(const struct ucp_cache *c, size_t klen, size_t vlen);

/* What takeover/api.c and serve/ call for a local cache: the engine, and for a
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

/* A buffer a thread reads values into, grown on demand: the value lands
 * at p + head (serve/server.c keeps its reply head in front of it). */
struct ucp_readbuf {
	char *p;
	size_t cap;
};

/* The one grow-and-retry read: key's value into b (grown to fit), at
 * b->p + head; NULL on a miss or without memory.  peek: without counting
 * a hit or moving the LRU (dumps, the stock image); the engine only. */
static inline char *ucp_read_into(struct ucp_cache *c, const void *key, size_t klen, int peek,
		struct ucp_readbuf *b, size_t head, size_t *vlen, struct ucache_item_info *info)
{
	for (;;) {
		char *val = b->p ? b->p + head : NULL;
		size_t room = val ? b->cap - head : 0;
		int ret = peek ? ucache_peek(c->cache, key, klen, val, room, vlen, info)
			       : ucp_get_ex(c, key, klen, val, room, vlen, info);
		char *grown;

		if (ret == 0)
			return val;
		if (ret != -ENOBUFS || !(grown = realloc(b->p, head + *vlen)))
			return NULL;
		b->p = grown;
		b->cap = head + *vlen;
	}
}

#endif
