/*
 * redis.h - what the files of nearcache/ share: redisconn.c (the
 * per-thread client), nearcache.c (the near-cache operations), tagstate.c
 * (the tag state in Redis) and listener.c (the master's invalidation
 * thread).  The rest of the plugin sees only nearcache.h.
 *
 * struct ucp_redis is process-private: built in the master before fork
 * (ucp_redis_attach), read-only afterwards, inherited by every worker.
 * struct ucp_redis_shared lives in a MAP_SHARED page of its own, mapped
 * before fork, so every process of the instance sees the same epoch, state
 * and counters.  Every field is atomic; nobody takes a lock:
 *
 *   epoch   bumped (seq_cst) at every flush, clear and state change.
 *   key_epoch[slot of a key]
 *           bumped (seq_cst) by the listener before it removes an
 *           invalidated key from L1, and by a worker after Redis
 *           acknowledged its write of a key and before it removes the key
 *           from L1.  A slot is the key's xxh3 modulo UCP_EPOCH_SLOTS, so
 *           an invalidation only disturbs the fills of 1/4096 of the keys.
 *           A worker filling L1 from a Redis read loads epoch and its
 *           key's slot before sending the read and again after the fill
 *           (with a full fence between the fill and the loads); a
 *           different value makes it remove what it filled (nearcache.c "The
 *           fill race").
 *   live    1 while the invalidation stream is subscribed and tracking is
 *           on; written only by the listener.  L1 is filled only by a read
 *           that started while it was 1 and finished while it still was.
 *   counters  relaxed increments by any process, summed by construction.
 *   log_rl  the error lines' limiter (ucp.h), shared by every process.
 */
#ifndef UCP_REDIS_H
#define UCP_REDIS_H

#include "ucp.h"

#include <stdatomic.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>
#include <xxhash.h>

/* Redis caches per instance (each has a per-thread connection slot). */
#define UCP_REDIS_MAX 32
#define UCP_EPOCH_SLOTS 4096

struct ucp_redis_shared {
	_Atomic uint64_t epoch;
	_Atomic uint32_t live;
	_Atomic uint64_t fetches;        /* L1 misses read from Redis */
	_Atomic uint64_t errors;         /* Redis calls that failed or timed out */
	_Atomic uint64_t invalidations;  /* keys removed from L1 by the listener */
	_Atomic uint64_t flushes;        /* whole-L1 flushes (connect, loss, FLUSHDB) */
	_Atomic uint64_t fills_dropped;  /* fills undone by the epoch check */
	_Atomic uint64_t reconnects;     /* command connections found dead and replaced */
	struct ucp_ratelimit log_rl;
	_Atomic uint64_t key_epoch[UCP_EPOCH_SLOTS];
};

/* The key_epoch slot of an L1 key. */
static inline _Atomic uint64_t *ucp_key_epoch(struct ucp_redis_shared *sh, const void *key, size_t klen)
{
	return &sh->key_epoch[XXH3_64bits(key, klen) & (UCP_EPOCH_SLOTS - 1)];
}

struct ucp_redis {
	struct ucache_redis_addr addr;
	char shown[320];                 /* the address for logs, no password */
	char *prefix;                    /* Redis key = prefix + key */
	size_t prefix_len;
	char *tags_key;                  /* the tag state hash: "ucache-tags:" + prefix (tagstate.c) */
	size_t tags_key_len;
	char *password;                  /* from redis_password_file or the URL, or NULL */
	uint64_t timeout_ms;
	uint64_t keepalive_ms;           /* redis_keepalive: PING what was idle this long */
	struct timeval tv;
	int offline;                     /* enum ucache_redis_offline */
	int no_expire;
	int index;                       /* slot in the per-thread connections */
	struct ucp_redis_shared *sh;
};

/* Connect, AUTH and SELECT with r's timeout.  NULL with the reason in why. */
redisContext *ucp_redis_connect(const struct ucp_redis *r, char *why, size_t len);

/* One log line per second at most, over every process of the instance. */
void ucp_redis_log(struct ucp_cache *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empty L1 and bump the epoch (the listener, on connect, loss, FLUSHDB). */
void ucp_redis_flush_l1(struct ucp_cache *c);

/* Drop key from L1 after its change in Redis, its epoch moved first;
 * ucache_del()'s result. */
int ucp_redis_forget(struct ucp_cache *c, const char *key, size_t klen);

uint64_t ucp_mono_ms(void);

/* Whether a command whose connection broke after it was written may be
 * sent again on a new one: running it twice must leave what running it
 * once leaves (redisconn.c "Dead connections" lists which are). */
enum ucp_resend { UCP_RESEND_NEVER, UCP_RESEND_SAFE };

/* One command on this thread's connection for c; NULL on any failure
 * (logged, counted). */
redisReply *ucp_redis_command(struct ucp_cache *c, enum ucp_resend resend, int argc,
		const char **argv, const size_t *lens);

#endif
