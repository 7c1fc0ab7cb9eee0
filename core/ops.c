/*
 * ops.c - get / exists / set / update / del / math / num / iterate.
 *
 * Read path (get, exists, num, iterate): no lock, no shared write in the
 * common case.
 *   1. hash the key, pick its bucket and the bucket's stripe;
 *   2. read the stripe's seq (acquire); if odd, a writer is inside: spin;
 *   3. walk the chain and copy the value out, bounds-checking every offset
 *      and length read (they may be torn), never more than `items` steps;
 *   4. re-read seq: unchanged means the copy is a consistent snapshot.
 * A reader killed anywhere holds nothing.  After UC_READ_SPINS failed
 * attempts (a writer died inside its window, or a pathological write rate)
 * the reader takes the stripe lock once, which also triggers repair.
 *
 * A hit then writes only (a) its thread's counter line (one of 64, picked
 * per thread/process, so no ping-pong between processes), (b) the item's LRU stamp
 * when the cache has purge_lru and the stamp changed (coarse 4 ms ticks; an
 * exact shared clock on caches of <= 64 items), and (c) the item's hit
 * counter, which is exact up to 64 and then a probabilistic counter
 * (increments of 2^k with probability 2^-k, k = log2(hits) - 5: unbiased,
 * ~12% relative error) so that a key read more than 64 times writes its
 * line about once per hits/64 reads instead of on every read: nothing
 * outside ucache_get_ex's info reads per-item hits.
 *
 * Write path: lock the key's stripe (cache.c), find the key, take the
 * allocator lock only to allocate or free, fill new storage while it is
 * still unreachable, and publish with pointer/length swaps inside the
 * stripe's seqlock window.  Storage of an overwritten value is freed after
 * the window, so a reader never sees freed bytes without retrying.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache_int.h"
#include "util.h"

#define UC_READ_SPINS 4096
#define UC_HITS_EXACT 64   /* per-item hits counted one by one below this */

/* --------------------------------------------------------------- helpers */

/* Back off while a writer is inside its window: spin briefly (windows are a
 * few pointer stores or one value copy), then give the CPU away. */
static void uc_pause(unsigned tries)
{
	if (tries < 64) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		__asm__ __volatile__("yield");
#endif
		return;
	}
	sched_yield();
}

const uint8_t *uc_slot_key(const ucache_t *c, const struct uc_slot *s, uint32_t keylen)
{
	uint64_t off;

	if (keylen <= UC_INLINE_KEY)
		return s->ikey;
	off = (uint64_t)s->key * UC_HEAP_UNIT;
	if (keylen > c->hdr->keysize || off + keylen > c->hdr->size_kdata)
		return NULL;
	return c->kheap.data + off;
}

const uint8_t *uc_slot_val(const ucache_t *c, const struct uc_slot *s, uint64_t vallen)
{
	uint64_t off = c->hdr->bitmap ? s->val * c->hdr->blocksize : s->val;

	if (vallen > c->max_value || off > c->hdr->size_vdata || vallen > c->hdr->size_vdata - off)
		return NULL;
	return c->blocks + off;
}

void uc_bucket_hint(ucache_t *c, uint64_t b)
{
	uint32_t head = atomic_load_explicit(&c->buckets[b].head, memory_order_relaxed), hint = 0;

	if (head) {
		const struct uc_slot *s = &c->slots[head];
		uint64_t line = (c->hdr->bitmap ? s->val * c->hdr->blocksize : s->val) / UC_CACHELINE;
		hint = line < 0xffffffffu ? (uint32_t)line + 1 : 0;
	}
	atomic_store_explicit(&c->buckets[b].vhint, hint, memory_order_relaxed);
}

uint32_t uc_chain_find(const ucache_t *c, uint64_t bucket, uint32_t hash, const void *key, size_t klen,
		       uint32_t *prev)
{
	uint32_t id = atomic_load_explicit(&c->buckets[bucket].head, memory_order_relaxed), before = 0, steps = 0;

	while (id && id < c->items && steps++ < c->items) {
		const struct uc_slot *s = &c->slots[id];
		if (s->hash == hash && s->keylen == klen) {
			const uint8_t *k = uc_slot_key(c, s, (uint32_t)klen);
			if (k && !memcmp(k, key, klen)) {
				if (prev)
					*prev = before;
				return id;
			}
		}
		before = id;
		id = s->next;
	}
	return 0;
}

/* Reads refuse an empty or oversized key with -EINVAL (writes say -E2BIG). */
static int key_ok(const ucache_t *c, const void *key, size_t klen)
{
	return !key || !klen || klen > c->hdr->keysize ? -EINVAL : 0;
}

static void register_atfork(void);

/* Counter line of the calling thread: chosen once per thread (from its
 * CPU at first use, so processes pinned to different cores never share a
 * line) and forgotten in a forked child, which would otherwise inherit its
 * parent's line and share it with every sibling. */
static __thread int my_line = -1;

static void forget_line(void)
{
	my_line = -1;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_line);
}

static unsigned cpu_line(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	static _Atomic unsigned next;

	if (UC_LIKELY(my_line >= 0))
		return (unsigned)my_line;
	pthread_once(&once, register_atfork);
	my_line = (int)((atomic_fetch_add(&next, 1) + (unsigned)getpid()) % UC_CPU_LINES);
	return (unsigned)my_line;
}

static uint32_t rand32(void)
{
	static __thread uint32_t x;

	if (!x)
		x = (uint32_t)(uintptr_t)&x ^ (uint32_t)time(NULL) ^ 0x9e3779b9u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

uint32_t uc_lru_stamp(ucache_t *c)
{
	struct timespec ts;

	if (c->exact_lru)
		return (uint32_t)atomic_fetch_add_explicit(&c->hdr->lru_clock, 1, memory_order_relaxed) + 1;
	/* wall clock, not monotonic: stamps are kept in a store across reboots */
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint32_t)(((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) >> 2);
}

/* Side effects of a hit on slot id (racy by design: statistics only). */
static void touch(ucache_t *c, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint32_t h = atomic_load_explicit(&s->hits, memory_order_relaxed);

	if (c->cfg.purge_lru) {
		uint32_t now = uc_lru_stamp(c);
		if (atomic_load_explicit(&s->atime, memory_order_relaxed) != now)
			atomic_store_explicit(&s->atime, now, memory_order_relaxed);
	}
	if (h < UC_HITS_EXACT) {
		atomic_store_explicit(&s->hits, h + 1, memory_order_relaxed);
	} else if (h < 0x80000000u) {
		uint32_t k = (uint32_t)(31 - __builtin_clz(h)) - 5; /* 2^k ~ h / 64 */
		if (!(rand32() & ((1u << k) - 1)))
			atomic_store_explicit(&s->hits, h + (1u << k), memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&c->hdr->cpu[cpu_line()].hits, 1, memory_order_relaxed);
}

static void count_miss(ucache_t *c)
{
	atomic_fetch_add_explicit(&c->hdr->cpu[cpu_line()].misses, 1, memory_order_relaxed);
}

static int expired(uint64_t expires, uint64_t now)
{
	return expires && expires <= now;
}

/* ------------------------------------------------------------- read path */

struct uc_read {
	const void *key;
	size_t klen;
	uint32_t hash;
	uint64_t bucket;
	void *buf;          /* NULL: existence check only */
	size_t buflen;
	/* results */
	uint32_t id;
	size_t vallen;
	struct ucache_item_info info;
	int expired;
};

/* One attempt: find and copy.  Returns 0, -ENOENT, -ENOBUFS, or -EAGAIN
 * when what was read is impossible (torn): the caller retries. */
static int read_once(ucache_t *c, struct uc_read *r, uint64_t *now)
{
	uint32_t hint = atomic_load_explicit(&c->buckets[r->bucket].vhint, memory_order_relaxed);
	const struct uc_slot *s;
	const uint8_t *v;

	if (hint && r->buflen) { /* start fetching the head's value now (see uc_bucket) */
		const uint8_t *p = c->blocks + (uint64_t)(hint - 1) * UC_CACHELINE;
		__builtin_prefetch(p);
		__builtin_prefetch(p + UC_CACHELINE);
	}
	r->id = uc_chain_find(c, r->bucket, r->hash, r->key, r->klen, NULL);
	if (!r->id)
		return -ENOENT;
	s = &c->slots[r->id];
	r->vallen = s->vallen;
	r->info.expires = s->expires;
	r->info.hits = atomic_load_explicit(&s->hits, memory_order_relaxed);
	if (r->info.expires && !*now) /* read the clock only for items that can expire */
		*now = ucache_now();
	r->expired = expired(r->info.expires, *now);
	if (r->expired)
		return -ENOENT;
	if (!r->buf)
		return 0;
	if (r->vallen > r->buflen)
		return -ENOBUFS;
	v = uc_slot_val(c, s, r->vallen);
	if (!v)
		return -EAGAIN;
	memcpy(r->buf, v, r->vallen);
	return 0;
}

static int read_locked(ucache_t *c, struct uc_stripe *st, struct uc_read *r, uint64_t *now)
{
	int rc;

	uc_stripe_lock(c, st);
	rc = read_once(c, r, now);
	uc_stripe_unlock(st);
	return rc == -EAGAIN ? -ENOENT : rc;
}

static int do_read(ucache_t *c, struct uc_read *r)
{
	uint64_t now = 0;
	struct uc_stripe *st;
	unsigned tries;
	int rc;

	r->hash = c->hashfn(r->key, r->klen);
	r->bucket = uc_bucket_of(c, r->hash);
	st = uc_stripe_of(c, r->bucket);
	for (tries = 0; tries < UC_READ_SPINS; tries++) {
		uint32_t seq = atomic_load_explicit(&st->seq, memory_order_acquire);
		if (seq & 1) {
			uc_pause(tries);
			continue;
		}
		rc = read_once(c, r, &now);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&st->seq, memory_order_relaxed) == seq && rc != -EAGAIN)
			return rc;
	}
	return read_locked(c, st, r, &now);
}

static void lazy_expire(ucache_t *c, struct uc_read *r)
{
	if (r->expired && c->cfg.lazy_expire)
		uc_delete_slot(c, r->id, ucache_now() + 1);
}

/* get_ex and peek: touch = count the hit and refresh the item's LRU stamp. */
static int get_common(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		      struct ucache_item_info *info, int touch_it)
{
	struct uc_read r = { .key = key, .klen = klen, .buf = buf ? buf : (void *)"", .buflen = buf ? buflen : 0 };
	int rc = key_ok(c, key, klen);

	if (rc)
		return rc;
	rc = do_read(c, &r);
	if (rc == -ENOENT) {
		if (touch_it)
			count_miss(c);
		lazy_expire(c, &r);
		return rc;
	}
	if (vallen)
		*vallen = r.vallen;
	if (rc == 0) {
		if (touch_it)
			touch(c, r.id);
		if (info) {
			*info = r.info;
			info->hits += (uint64_t)touch_it;
		}
	}
	return rc;
}

int ucache_get_ex(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		  struct ucache_item_info *info)
{
	return get_common(c, key, klen, buf, buflen, vallen, info, 1);
}

int ucache_peek(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		struct ucache_item_info *info)
{
	return get_common(c, key, klen, buf, buflen, vallen, info, 0);
}

int ucache_get(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen)
{
	return ucache_get_ex(c, key, klen, buf, buflen, vallen, NULL);
}

void *ucache_get_alloc(ucache_t *c, const void *key, size_t klen, size_t *vallen, struct ucache_item_info *info)
{
	size_t cap = 256, len = 0;
	void *buf = NULL;
	int rc;

	for (;;) {
		void *nb = realloc(buf, cap);
		if (!nb) {
			free(buf);
			errno = ENOMEM;
			return NULL;
		}
		buf = nb;
		rc = ucache_get_ex(c, key, klen, buf, cap, &len, info);
		if (rc != -ENOBUFS)
			break;
		cap = len; /* the value changed size meanwhile: loop */
	}
	if (rc) {
		free(buf);
		errno = -rc;
		return NULL;
	}
	if (vallen)
		*vallen = len;
	return buf;
}

int ucache_exists(ucache_t *c, const void *key, size_t klen)
{
	struct uc_read r = { .key = key, .klen = klen };
	int rc = key_ok(c, key, klen);

	if (rc)
		return rc;
	rc = do_read(c, &r);
	if (rc == -ENOENT)
		lazy_expire(c, &r);
	return rc;
}

int ucache_num(ucache_t *c, const void *key, size_t klen, int64_t *out)
{
	int64_t v;
	size_t len = 0;
	int rc = ucache_get(c, key, klen, &v, sizeof(v), &len);

	if (rc == -ENOBUFS || (rc == 0 && len != sizeof(v)))
		return -EINVAL;
	if (rc == 0 && out)
		*out = v;
	return rc;
}

/* --------------------------------------------------------------- iterate */

/* Copy slot id's key if it is live and unexpired; 0, -ENOENT, or -EAGAIN
 * when a writer was inside the slot's stripe (lock-free attempt only). */
static int iter_copy(ucache_t *c, const struct uc_slot *s, void *buf, size_t *klen, uint64_t now)
{
	uint32_t len = s->keylen;
	const uint8_t *k;

	if (s->state != UC_SLOT_LIVE || expired(s->expires, now) || !len || !(k = uc_slot_key(c, s, len)))
		return -ENOENT;
	memcpy(buf, k, len);
	*klen = len;
	return 0;
}

static int iter_slot(ucache_t *c, uint32_t id, void *buf, size_t *klen, uint64_t now, int locked)
{
	const struct uc_slot *s = &c->slots[id];
	struct uc_stripe *st;
	uint32_t seq;
	int rc;

	if (s->state != UC_SLOT_LIVE)
		return -ENOENT;
	st = uc_stripe_of(c, uc_bucket_of(c, s->hash));
	if (locked) { /* a writer sits in this stripe: wait for it like a writer */
		uc_stripe_lock(c, st);
		rc = uc_stripe_of(c, uc_bucket_of(c, s->hash)) == st ? iter_copy(c, s, buf, klen, now) : -EAGAIN;
		uc_stripe_unlock(st);
		return rc;
	}
	seq = atomic_load_explicit(&st->seq, memory_order_acquire);
	if (seq & 1)
		return -EAGAIN;
	rc = iter_copy(c, s, buf, klen, now);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&st->seq, memory_order_relaxed) != seq ||
	    uc_stripe_of(c, uc_bucket_of(c, s->hash)) != st)
		return -EAGAIN;
	return rc;
}

/* Lock-free attempts first; then, once, behind the stripe lock (there
 * -EAGAIN means the slot now belongs to another stripe: a key inserted
 * during the iteration, which need not be returned). */
static int iter_one(ucache_t *c, uint32_t id, void *buf, size_t *klen, uint64_t now)
{
	unsigned tries;
	int rc;

	for (tries = 0; tries < UC_READ_SPINS; tries++) {
		rc = iter_slot(c, id, buf, klen, now, 0);
		if (rc != -EAGAIN)
			return rc;
		uc_pause(tries);
	}
	rc = iter_slot(c, id, buf, klen, now, 1);
	return rc == -EAGAIN ? -ENOENT : rc;
}

int ucache_iter(ucache_t *c, uint64_t *cursor, void *buf, size_t buflen, size_t *klen)
{
	uint64_t now = ucache_now();

	if (buflen < c->hdr->keysize)
		return -ENOBUFS;
	if (*cursor == 0)
		*cursor = 1;
	for (; *cursor < c->hdr->slot_unused && *cursor < c->items; (*cursor)++) {
		if (iter_one(c, (uint32_t)*cursor, buf, klen, now) == 0) {
			(*cursor)++;
			return 0;
		}
	}
	return -ENOENT;
}
