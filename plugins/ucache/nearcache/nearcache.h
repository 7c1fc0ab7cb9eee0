/*
 * nearcache/nearcache.h - a cache with redis=: the engine as an L1 in front
 * of Redis, kept coherent by a listener thread in the master.  redis.h is
 * the folder's own interface; this header is what the rest of the plugin
 * calls.
 */
#ifndef UCP_NEARCACHE_H
#define UCP_NEARCACHE_H

#include "ucp.h"

/* ---------------------------------------------------------- nearcache.c */

/* From cache creation, in the master: a cache with redis= gets its near
 * cache state; exits naming the problem (no --master, password file). */
void ucp_redis_attach(struct ucp_cache *c);

/* The L1 -> Redis operations (nearcache.c has the semantics); same results as
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

/* ----------------------------------------------------------- tagstate.c */

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

/* ----------------------------------------------------------- listener.c */

/* One listener thread per near cache, in the master (from ucp_master_threads_start). */
void ucp_redis_listeners_start(void);

/* Stop them changing any L1 (before the master unmaps the caches). */
void ucp_redis_listeners_stop(void);

#endif
