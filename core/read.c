/*
 * read.c - get / get_ex / peek / get_alloc / exists / num / iterate: the
 * lock-free read path.
 *
 *   1. hash the key, pick its bucket and the bucket's stripe;
 *   2. read the stripe's seq (acquire); if odd, a writer is inside: spin;
 *   3. walk the chain and copy the value out, bounds-checking every offset
 *      and length read (they may be torn), never more than `items` steps;
 *   4. re-read seq: unchanged means the copy is a consistent snapshot.
 * A reader killed anywhere holds nothing.  After UC_READ_SPINS failed
 * attempts (a writer died inside its window, or a pathological write rate)
 * the reader takes the stripe lock once (repair.c), which also repairs.
 * A read-only view (view.c: a PROT_READ mapping in a process outside the
 * cache) runs the same attempts through uc_read_view, without any of the
 * writes below and, since it can take no lock, answering -EBUSY instead.
 *
 * A hit then writes only (a) its thread's counter line (one of 64, picked
 * per thread/process, so no ping-pong between processes), (b) with
 * purge_lru, the item's stamp in an exact-LRU cache of <= 64 items, and
 * (c) the slot's use byte: SIEVE's VISITED bit and the hit counter's
 * 7-bit code (layout.h: exact up to 64, then steps of 2^k taken with
 * probability 2^-k: unbiased, a third to a half of the count per step), in
 * one store, and none once the bit is set and the code does not move: a
 * key read more than 64 times writes its slot about once per hits/2
 * reads (v6's 32-bit counter: once per hits/64, 4 bytes more a slot).  Nothing but ucache_get_ex's info (and stock's get4, the
 * corerouter's round robin) reads per-item hits.
 *
 * Lock rules: none taken on the fast path; the fallback takes the stripe
 * lock through uc_stripe_lock (repair.c).  Expired items are never
 * returned; with lazy_expire a read that finds one deletes it (evict.c).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evict.h"
#include "index.h"
#include "read.h"
#include "repair.h"
#include "tags.h"
#include "util.h"

#define UC_READ_SPINS 4096

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

/* Reads refuse an empty or oversized key with -EINVAL (writes say -E2BIG). */
static int key_ok(const ucache_t *c, const void *key, size_t klen)
{
	return !key || !klen || klen > c->keysize ? -EINVAL : 0;
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

/* Side effects of a hit on slot id (racy by design: statistics and
 * eviction hints only). */
static inline __attribute__((always_inline)) void touch(ucache_t *c, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint8_t u = atomic_load_explicit(&s->use, memory_order_relaxed), n = u | UC_USE_VISITED;
	unsigned code = u >> UC_USE_HITS_SHIFT, step;

	if (c->exact_lru)
		atomic_store_explicit(&c->atime[id], uc_lru_tick(c), memory_order_relaxed);
	if (code < UC_HITS_EXACT) {
		n = (uint8_t)(n + (1u << UC_USE_HITS_SHIFT));
	} else if (code < UC_HITS_CODES - 1) {
		/* uc_hits_value(code + 1) - uc_hits_value(code) = 2^step */
		step = ((code - UC_HITS_EXACT) >> 1) + 5;
		if (!(rand32() & ((1u << (step < 31 ? step : 31)) - 1)))
			n = (uint8_t)(n + (1u << UC_USE_HITS_SHIFT));
	}
	if (n != u)
		atomic_store_explicit(&s->use, n, memory_order_relaxed);
	uc_count(c, UC_CTR_HITS, 1);
}

static void count_miss(ucache_t *c)
{
	uc_count(c, UC_CTR_MISSES, 1);
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
	int alloc;          /* buf is malloc'd: grow it to the value's exact size */
	int raw;            /* peek: a tagged value keeps its envelope */
	/* results */
	uint32_t id;
	size_t vallen;
	uint64_t expires;
	int expired;
};

/* Make r->buf hold vallen bytes (get_alloc): malloc exactly once in the
 * common case; a value that grew between attempts reallocates. */
static inline int fit_buffer(struct uc_read *r, size_t vallen)
{
	void *nb;

	if (vallen <= r->buflen && r->buf)
		return 0;
	nb = r->buf ? realloc(r->buf, vallen) : malloc(vallen ? vallen : 1); /* realloc(NULL) costs ~24 more */
	if (!nb)
		return -ENOMEM;
	r->buf = nb;
	r->buflen = vallen;
	return 0;
}

/* What a read snapshots of the slot it found (each field read once, bounds
 * checked once). */
struct uc_found {
	const uint8_t *val;
	size_t vallen;
	uint64_t expires;
};

/* The chain walk of uc_chain_find for readers: the bounds checks done once
 * per candidate on fields read once (a torn candidate fails them and is
 * passed over; the seq check then makes the reader retry), returning where
 * the value is.  bitmap is a constant at each call: two loops. */
static inline __attribute__((always_inline)) uint32_t find_slot(const ucache_t *c, uint64_t bucket, uint32_t hash,
								 const uint8_t *key, size_t klen, struct uc_found *f,
								 const int bitmap)
{
	uint32_t id = atomic_load_explicit(&c->buckets[bucket].head, memory_order_relaxed), steps = 0;
	uint64_t size = c->size_vdata;
	const uint8_t fp = uc_fp(hash);

	while (id && id < c->items && steps++ < c->items) {
		const struct uc_slot *s = &c->slots[id];
		if (uc_slot_fp_is(s, fp) && s->keylen == klen) {
			uint64_t off = (uint64_t)s->val * UC_HEAP_UNIT, len = s->vallen;
			const uint8_t *k = c->blocks + off, *v = k + klen;
			int ok = len <= c->max_value && off + klen + len <= size;
			if (bitmap) { /* the key in the key heap, the value in its blocks */
				k = uc_key_at(c, id, s->val, (uint32_t)klen, len);
				v = uc_val_at(c, s->val, (uint32_t)klen, len);
				ok = k && v;
			}
			if (ok && uc_key_eq(k, key, klen)) {
				f->val = v;
				f->vallen = len;
				f->expires = s->expires;
				return id;
			}
		}
		id = s->next;
	}
	return 0;
}

/* One attempt: find and copy.  Returns 0, -ENOENT, -ENOBUFS or -ENOMEM;
 * the caller validates it against the stripe's seq.  The read path's
 * functions are always inlined: as layers they cost ~110 instructions per
 * get (callgrind), most of a get's own work. */
static inline __attribute__((always_inline)) int read_once(ucache_t *c, struct uc_read *r, uint64_t *now)
{
	struct uc_found f;

	r->id = c->bitmap ? find_slot(c, r->bucket, r->hash, r->key, r->klen, &f, 1)
			  : find_slot(c, r->bucket, r->hash, r->key, r->klen, &f, 0);
	if (!r->id)
		return -ENOENT;
	r->expires = f.expires;
	if (f.expires && !*now) /* read the clock only for items that can expire */
		*now = ucache_now();
	r->expired = expired(f.expires, *now);
	if (r->expired || UC_UNLIKELY(uc_tags_skip(c, &f.val, &f.vallen, r->raw)))
		return -ENOENT;
	r->vallen = f.vallen;
	if (!r->buf && !r->alloc)
		return 0;
	if (r->alloc && fit_buffer(r, f.vallen))
		return -ENOMEM;
	if (f.vallen > r->buflen)
		return -ENOBUFS;
	memcpy(r->buf, f.val, f.vallen);
	return 0;
}

/* The fallback after UC_READ_SPINS torn attempts: read under the stripe
 * lock (which repairs a dead writer's damage first). */
static int read_under_lock(ucache_t *c, struct uc_stripe *st, struct uc_read *r, uint64_t *now)
{
	int rc = uc_stripe_lock(c, st);

	if (rc)
		return rc;
	rc = read_once(c, r, now);
	uc_stripe_unlock(st);
	return rc;
}

/* The seqlock loop around read_once.  view (a constant at each call): a
 * read-only view (view.c), which cannot take a lock, answers -EBUSY where
 * the cache's own processes take the stripe lock. */
static inline __attribute__((always_inline)) int do_read(ucache_t *c, struct uc_read *r, const int view)
{
	uint64_t now = 0;
	struct uc_stripe *st;
	unsigned tries;
	int rc;

	r->hash = uc_key_hash(c, r->key, r->klen);
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
		if (atomic_load_explicit(&st->seq, memory_order_relaxed) == seq || rc == -ENOMEM)
			return rc;
	}
	return view ? -EBUSY : read_under_lock(c, st, r, &now);
}

static void lazy_expire(ucache_t *c, struct uc_read *r)
{
	if (r->expired && c->cfg.lazy_expire)
		uc_delete_slot(c, r->id, r->hash, ucache_now() + 1);
}

/* What get_ex, peek and get_alloc share once r is set up: the read, the
 * counters (touch_it: count the hit or miss and mark the item used) and
 * the outputs. */
static inline __attribute__((always_inline)) int get_common(ucache_t *c, struct uc_read *r, size_t *vallen,
							    struct ucache_item_info *info, int touch_it)
{
	int rc = key_ok(c, r->key, r->klen);

	if (rc)
		return rc;
	rc = do_read(c, r, 0);
	if (rc == -ENOENT) {
		if (touch_it)
			count_miss(c);
		lazy_expire(c, r);
		return rc;
	}
	if (vallen)
		*vallen = r->vallen;
	/* -ENOBUFS found the item too: a zero-length buffer reads its size and
	 * expiry without copying it (the key listing, server.c) */
	if (info && (rc == 0 || rc == -ENOBUFS)) { /* the item's hits before this read, plus this one */
		info->expires = r->expires;
		info->hits = uc_slot_hits(&c->slots[r->id]) + (uint64_t)(touch_it && rc == 0);
	}
	if (rc == 0 && touch_it)
		touch(c, r->id);
	return rc;
}

/* The general get_alloc: retries, the locked fallback, lazy expiry.  buf
 * (cap bytes, may be NULL) is what the fast path already allocated. */
static void *get_alloc_slow(ucache_t *c, const void *key, size_t klen, size_t *vallen,
			    struct ucache_item_info *info, void *buf, size_t cap, int touch_it)
{
	struct uc_read r = { .key = key, .klen = klen, .alloc = 1, .buf = buf, .buflen = cap };
	size_t len = 0;
	int rc = get_common(c, &r, &len, info, touch_it);

	if (rc) {
		free(r.buf);
		errno = -rc;
		return NULL;
	}
	if (vallen)
		*vallen = len;
	return r.buf;
}

static int get_into(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		    struct ucache_item_info *info, int touch_it)
{
	struct uc_read r = { .key = key, .klen = klen, .buf = buf ? buf : (void *)"", .buflen = buf ? buflen : 0,
			     .raw = !touch_it };

	return get_common(c, &r, vallen, info, touch_it);
}

int ucache_get_ex(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		  struct ucache_item_info *info)
{
	return get_into(c, key, klen, buf, buflen, vallen, info, 1);
}

int ucache_peek(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		struct ucache_item_info *info)
{
	return get_into(c, key, klen, buf, buflen, vallen, info, 0);
}

int ucache_get(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen)
{
	return get_into(c, key, klen, buf, buflen, vallen, NULL, 1);
}

/* One lock-free attempt of the fused get_alloc: find, size the buffer
 * exactly, copy.  0 (a hit: *id, *f filled), -ENOENT, -ENOMEM.  A torn
 * read is caught by the caller's seq check. */
static inline int alloc_once(ucache_t *c, uint64_t bucket, uint32_t hash, const void *key, size_t klen,
			     void **buf, size_t *cap, uint32_t *id, struct uc_found *f)
{
	*id = c->bitmap ? find_slot(c, bucket, hash, key, klen, f, 1) : find_slot(c, bucket, hash, key, klen, f, 0);
	if (!*id || (f->expires && f->expires <= ucache_now()) || UC_UNLIKELY(uc_tags_skip(c, &f->val, &f->vallen, 0)))
		return -ENOENT;
	if (f->vallen > *cap) {
		void *nb = *buf ? realloc(*buf, f->vallen) : malloc(f->vallen ? f->vallen : 1);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = f->vallen;
	}
	memcpy(*buf, f->val, f->vallen);
	return 0;
}

/* get_alloc, fused for the magic API's hot path (plugins/ucache/api.c):
 * hash, bucket, seqlock, and the copy straight into a malloc of the
 * value's exact size.  Anything unusual (a writer inside the stripe, a
 * torn read, an expired item with lazy_expire) takes the general path.
 * Running the general path's first attempt here instead (read_once through
 * struct uc_read) costs ~45 more instructions per get (callgrind): 10% of
 * the whole get, the hottest call of the project. */
void *ucache_get_alloc(ucache_t *c, const void *key, size_t klen, size_t *vallen, struct ucache_item_info *info)
{
	struct uc_found f;
	uint32_t hash, id, seq;
	void *buf = NULL;
	size_t cap = 0;
	struct uc_stripe *st;
	uint64_t bucket;
	int rc;

	if (UC_UNLIKELY(key_ok(c, key, klen))) {
		errno = EINVAL;
		return NULL;
	}
	hash = uc_key_hash(c, key, klen);
	bucket = uc_bucket_of(c, hash);
	st = uc_stripe_of(c, bucket);
	seq = atomic_load_explicit(&st->seq, memory_order_acquire);
	if (UC_LIKELY(!(seq & 1))) {
		rc = alloc_once(c, bucket, hash, key, klen, &buf, &cap, &id, &f);
		atomic_thread_fence(memory_order_acquire);
		if (UC_LIKELY(atomic_load_explicit(&st->seq, memory_order_relaxed) == seq) &&
		    (rc == 0 || (rc == -ENOENT && !c->cfg.lazy_expire))) {
			if (rc) {
				count_miss(c);
				errno = ENOENT;
				return NULL;
			}
			if (info) { /* as get_ex: the hits before this one, plus this one */
				info->expires = f.expires;
				info->hits = uc_slot_hits(&c->slots[id]) + 1;
			}
			touch(c, id);
			if (vallen)
				*vallen = f.vallen;
			return buf;
		}
	}
	return get_alloc_slow(c, key, klen, vallen, info, buf, cap, 1);
}

/* The general path without the hit: nothing calls it per request but the
 * single flight's polls and the plugin's candidate probes. */
void *ucache_peek_alloc(ucache_t *c, const void *key, size_t klen, size_t *vallen, struct ucache_item_info *info)
{
	return get_alloc_slow(c, key, klen, vallen, info, NULL, 0, 0);
}

int ucache_exists(ucache_t *c, const void *key, size_t klen)
{
	struct uc_read r = { .key = key, .klen = klen };
	int rc = key_ok(c, key, klen);

	if (rc)
		return rc;
	rc = do_read(c, &r, 0);
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

/* read.h: the same attempts as a get, with none of its writes (no hit
 * counted, no SIEVE bit, no lazy expiry: a view's mapping is PROT_READ). */
int uc_read_view(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		 uint64_t *expires)
{
	struct uc_read r = { .key = key, .klen = klen, .buf = buf ? buf : (void *)"", .buflen = buf ? buflen : 0 };
	int rc = key_ok(c, key, klen);

	if (rc)
		return rc;
	rc = do_read(c, &r, 1);
	/* a writer died copying this value in place and no cache process has
	 * repaired it yet (a restart resets every seq before its rebuild drops
	 * the item): torn bytes behind an even seq */
	if (rc == 0 && UC_UNLIKELY(uc_slot_is_dirty(&c->slots[r.id])))
		return -EBUSY;
	*vallen = r.vallen;
	*expires = r.expires;
	if (rc == -ENOENT && r.id) /* found, then refused by read_once: expired or stale */
		return r.expired ? -ETIME : -ESTALE;
	return rc;
}

/* --------------------------------------------------------------- iterate */

/* Copy slot id's key if it is live, unexpired and not a stale tagged entry
 * (reads would miss it); 0 or -ENOENT. */
static int iter_copy(ucache_t *c, uint32_t id, void *buf, size_t *klen, uint64_t now)
{
	const struct uc_slot *s = &c->slots[id];
	uint32_t len = s->keylen;
	const uint8_t *k;

	if (uc_slot_state(s) != UC_SLOT_LIVE || expired(s->expires, now) || !(k = uc_key_at(c, id, s->val, len, s->vallen)) ||
	    (uc_tags_invalidated(c) && uc_tags_stale_slot(c, id)))
		return -ENOENT;
	memcpy(buf, k, len);
	*klen = len;
	return 0;
}

/* -EAGAIN when a writer was inside the slot's stripe (lock-free attempt),
 * or the slot moved to another stripe.  The stripe comes from the key the
 * slot holds (uc_slot_hash), and is checked again on the key copied out
 * (lock-free) or under that stripe's lock (which then owns the slot). */
static int iter_slot(ucache_t *c, uint32_t id, void *buf, size_t *klen, uint64_t now, int locked)
{
	const struct uc_slot *s = &c->slots[id];
	struct uc_stripe *st;
	uint32_t seq;
	int rc;

	if (uc_slot_state(s) != UC_SLOT_LIVE)
		return -ENOENT;
	st = uc_stripe_of_hash(c, uc_slot_hash(c, id));
	if (locked) { /* a writer sits in this stripe: wait for it like a writer */
		if ((rc = uc_stripe_lock(c, st)))
			return rc;
		rc = uc_stripe_of_hash(c, uc_slot_hash(c, id)) == st ? iter_copy(c, id, buf, klen, now) : -EAGAIN;
		uc_stripe_unlock(st);
		return rc;
	}
	seq = atomic_load_explicit(&st->seq, memory_order_acquire);
	if (seq & 1)
		return -EAGAIN;
	rc = iter_copy(c, id, buf, klen, now);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&st->seq, memory_order_relaxed) != seq ||
	    (rc == 0 && uc_stripe_of_hash(c, uc_key_hash(c, buf, *klen)) != st))
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
	for (; *cursor < atomic_load_explicit(&c->hdr->slot_unused, memory_order_relaxed) && *cursor < c->items;
	     (*cursor)++) {
		if (iter_one(c, (uint32_t)*cursor, buf, klen, now) == 0) {
			(*cursor)++;
			return 0;
		}
	}
	return -ENOENT;
}
