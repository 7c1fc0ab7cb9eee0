/*
 * write.c - set, update, delete and math.
 *
 * Every write locks the key's stripe (uc_stripe_lock, repair.c), which is
 * where a dead writer's damage gets repaired.  Allocation (slots, heap
 * chunks, bitmap blocks) happens under the allocator lock, taken after the
 * stripe lock and held only for the allocation itself.  New storage is
 * filled while unreachable; only the pointer/length swap happens inside
 * the stripe's seqlock window, and old storage is freed after it.  An
 * update whose new item has the size class of the old one (single-block),
 * or a bitmap update that finds no new run but needs no more blocks, is
 * copied in place, inside the window and under UC_SLOT_DIRTY, so a writer
 * killed mid-copy leaves an item the rebuild drops rather than a torn
 * value.  Stock rules kept: set on an existing key fails, update
 * overwrites; a bitmap update allocates its new blocks before freeing the
 * old ones.
 *
 * Full purge_lru cache (SIEVE, > 64 items): the writer takes its victim
 * from its own stripe's queue (it holds that lock already), unlinks it and
 * gives its slot, and its storage when the size class matches, to the new
 * item: one robust-mutex round trip per insert instead of four (victim
 * stripe, allocator to free, allocator to allocate, own stripe).
 *
 * Otherwise, when a write finds no room it releases its stripe, lets
 * uc_handle_full() (evict.c) apply the cache's policy and retries, a
 * bounded number of times.
 *
 * uc_write_cond() (write.h) is the one entry for the atomic operations of
 * cas.c and flight.c: a condition decides, under the stripe lock, whether
 * the write happens, only the expiry changes, or the item goes.
 */
#include <errno.h>
#include <string.h>

#include "evict.h"
#include "index.h"
#include "repair.h"
#include "tags.h"
#include "util.h"
#include "write.h"

#define UC_FULL_RETRIES 64

struct uc_write {
	const void *key;
	size_t klen;
	const void *val;
	size_t vlen;
	uint64_t expires;     /* absolute */
	unsigned flags;
	uint32_t hash;
	uint64_t bucket;
	struct uc_stripe *st;
	uint32_t last;        /* key not found: its chain's last slot (stripe held), 0 = link at the head */
};

static uint64_t abs_expiry(ucache_t *c, uint64_t expires, unsigned flags)
{
	uint64_t now;

	if (c->cfg.no_expire || !expires)
		return 0;
	if (flags & UCACHE_SET_ABSEXPIRE)
		return expires < UC_EXPIRES_MAX ? expires : UC_EXPIRES_MAX;
	now = ucache_now();
	return expires < UC_EXPIRES_MAX - now ? now + expires : UC_EXPIRES_MAX; /* never wrap into the past */
}

static void touch_modified(ucache_t *c)
{
	if (c->cfg.lastmod)
		atomic_store_explicit(&c->hdr->last_modified_at, ucache_now(), memory_order_relaxed);
}

/* Fill reserved slot id with w: fields, then key and value bytes. */
static void fill_new(ucache_t *c, uint32_t id, const struct uc_write *w)
{
	struct uc_slot *s = &c->slots[id];

	atomic_store_explicit(&s->meta, (uint8_t)(uc_fp(w->hash) | UC_SLOT_RESERVED), memory_order_relaxed);
	atomic_store_explicit(&s->use, 0, memory_order_relaxed);
	s->keylen = (uint16_t)w->klen;
	s->vallen = (uint32_t)w->vlen;
	s->expires = w->expires;
	s->csum = uc_slot_csum(c, w->hash, (uint32_t)w->klen, w->val, w->vlen, w->expires, s->val);
	uc_item_fill(c, s->val, uc_slot_kofs(c, id), w->key, w->klen, w->val, w->vlen);
}

/* The slot table is full (racy read: only decides which path to try). */
static int slots_full(const ucache_t *c)
{
	return atomic_load_explicit(&c->hdr->live, memory_order_relaxed) + 1 >= c->items;
}

/* Give the victim's storage to w's item: kept when its size class is the
 * same, else swapped under one allocator acquisition.  0, -EAGAIN (the
 * allocator's owner died: the slot stays RESERVED with its old storage for
 * the repair), or -ENOSPC (no room even so: the slot is freed). */
static int reuse_storage(ucache_t *c, uint32_t id, const struct uc_write *w)
{
	struct uc_slot *s = &c->slots[id];
	uint32_t val, kofs;
	int rc;

	if (uc_same_storage(c, s->keylen, s->vallen, w->klen, w->vlen))
		return 0;
	if (uc_alloc_lock(c))
		return -EAGAIN;
	rc = uc_storage_alloc_alloc_held(c, w->klen, w->vlen, &val, &kofs);
	uc_storage_free_alloc_held(c, id);
	if (rc)
		rc = uc_storage_alloc_alloc_held(c, w->klen, w->vlen, &val, &kofs);
	if (rc)
		uc_slot_free_alloc_held(c, id);
	else
		uc_slot_set_storage(c, id, val, kofs);
	uc_alloc_unlock(c);
	return rc;
}

static inline void prefetch_line(const void *p)
{
#if defined(__x86_64__)
	/* gcc 12 -O2 emitted none of prefetch_victim()'s
	 * __builtin_prefetch calls (objdump); a volatile asm is kept */
	__asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p);
#endif
}

/* The hand's next candidate is the next victim of this stripe: its slot
 * and link, fetched now, are in the writer's L2 (512 KiB here) rather than
 * memory when that insert comes, if it comes soon (in the bench's churn,
 * 256 inserts later: the next insert's first dependent load). */
static inline void prefetch_hand(const ucache_t *c, const struct uc_stripe *st)
{
	uint32_t hand = st->hand ? st->hand : st->tail;

	if (hand && hand < c->items) {
		prefetch_line(&c->slots[hand]);
		prefetch_line(&c->links[hand]);
	}
}

/* Full SIEVE cache: evict from w's own stripe and reuse the victim for w.
 * 0, -ENOENT (the stripe's queue is empty: take the general path),
 * -EAGAIN or -ENOSPC. */
static int insert_over_victim(ucache_t *c, struct uc_write *w)
{
	uint64_t now = ucache_now(), vb;
	uint32_t id = uc_sieve_victim_stripe_held(c, w->st, now), prev;
	struct uc_slot *s = &c->slots[id];
	int rc, was_expired;

	if (!id)
		return -ENOENT;
	vb = uc_bucket_of(c, c->links[id].hash);
	if (!uc_chain_position(c, vb, id, &prev))
		return -ENOENT; /* cannot happen with the stripe held; be safe */
	if (id == w->last) /* w's chain loses its last slot */
		w->last = prev;
	was_expired = s->expires && s->expires <= now;
	uc_note_full(c, now);
	uc_count(c, was_expired ? UC_CTR_EXPIRATIONS : UC_CTR_EVICTIONS, 1);
	uc_chain_unlink_stripe_held(c, w->st, vb, id, prev);
	rc = reuse_storage(c, id, w);
	if (rc)
		return rc;
	if (w->vlen != s->vallen) /* a locked add: it waits for every store before it */
		uc_count(c, UC_CTR_BYTES, (int64_t)w->vlen - (int64_t)s->vallen);
	fill_new(c, id, w);
	uc_chain_link_stripe_held(c, w->st, w->bucket, id, w->last, w->hash);
	prefetch_hand(c, w->st);
	return 0;
}

/* A full SIEVE cache's insert touches, besides the new key's bucket and
 * chain, the hand's slot and queue entry, the queue head's entry, then
 * the hand's chunk and bucket (named by the hash in its queue entry): each
 * a cold line (bench instr: ~8 D1 misses an insert), which were fetched
 * one after the other.  Started here, before the new key's lookup, they
 * arrive together: the hand is the victim unless it was read since the
 * hand last passed it.  Racy as to fullness only (the stripe is held): a
 * prefetch cannot fault, and the hand's fields are bounds-checked before
 * use (a bucket index is in range for any hash). */
static inline void prefetch_victim(const ucache_t *c, const struct uc_stripe *st)
{
	uint32_t hand = st->hand ? st->hand : st->tail, head = st->head;
	const struct uc_slot *s = &c->slots[hand];
	uint64_t at, len;

	if (!hand || hand >= c->items || head >= c->items)
		return;
	prefetch_line(&c->links[hand]);
	prefetch_line(&c->links[head]);
	at = uc_val_offset(c, s->val);
	len = c->bitmap ? s->vallen : (uint64_t)s->keylen + s->vallen;
	if (len && at + len <= c->size_vdata) { /* its first and last lines */
		prefetch_line(c->blocks + at);
		prefetch_line(c->blocks + at + len - 1);
	}
	prefetch_line(&c->buckets[uc_bucket_of(c, c->links[hand].hash)]);
}

/* Insert w as a new item (stripe held).  0, -ENOSPC or -EAGAIN. */
static int insert_stripe_held(ucache_t *c, struct uc_write *w)
{
	uint32_t id;
	int rc;

	id = w->st->nstash ? uc_stash_take_stripe_held(c, w->st, w->klen, w->vlen) : 0;
	if (!id && c->sieve && slots_full(c) && (rc = insert_over_victim(c, w)) != -ENOENT)
		return rc;
	if (!id) {
		if (uc_alloc_lock(c))
			return -EAGAIN;
		id = uc_slot_reserve_alloc_held(c, w->klen, w->vlen);
		uc_alloc_unlock(c);
		if (!id)
			return -ENOSPC;
	}
	fill_new(c, id, w);
	uc_chain_link_stripe_held(c, w->st, w->bucket, id, w->last, w->hash);
	return 0;
}

/* An update is a use: mark it for SIEVE, stamp it for exact LRU. */
static void mark_used(ucache_t *c, uint32_t id)
{
	if (c->sieve)
		atomic_fetch_or_explicit(&c->slots[id].use, UC_USE_VISITED, memory_order_relaxed);
	else if (c->exact_lru)
		atomic_store_explicit(&c->atime[id], uc_lru_tick(c), memory_order_relaxed);
}

/* Inside the window: w's length, expiry and checksum on live slot id. */
static void publish_fields(ucache_t *c, struct uc_slot *s, const struct uc_write *w)
{
	if (!s->expires != !w->expires)
		uc_count(c, UC_CTR_EXPIRING, w->expires ? 1 : -1);
	s->vallen = (uint32_t)w->vlen;
	s->expires = w->expires;
	s->csum = uc_slot_csum(c, w->hash, (uint32_t)w->klen, w->val, w->vlen, w->expires, s->val);
	uc_slot_clean(s);
}

/* Single-block, same size class: copy over the old value inside the window. */
static void replace_in_place(ucache_t *c, struct uc_write *w, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint8_t *v = c->blocks + uc_val_offset(c, s->val) + w->klen;

	uc_write_begin(w->st);
	uc_slot_dirty(s);
	uc_copy_value(v, w->val, w->vlen);
	if (w->vlen != s->vallen) /* a shared line: don't write it for nothing */
		uc_count(c, UC_CTR_BYTES, (int64_t)w->vlen - (int64_t)s->vallen);
	publish_fields(c, s, w);
	uc_write_end(w->st);
}

/* Bitmap mode: a new run for w's value and the key's place (alloc held).
 * Stock's order moves a value to a new run; when none is free and the
 * value needs no more blocks, it is copied over its own run (stock failed
 * such an update as "full").  Moving is tried first because it is faster:
 * next-fit allocation writes the bitmap's blocks in order, an in-place
 * copy lands on a random, cold run (1.45M vs 1.2M updates/s of 100-1000
 * byte values here).  The key keeps its chunk (*kofs as given) while it
 * stays out of the value's last block, else takes the place
 * uc_key_alloc_alloc_held gives it.  0 (*val: the run, the old one if
 * *inplace), or -ENOSPC with nothing allocated. */
static int bitmap_update_storage_alloc_held(ucache_t *c, struct uc_write *w, uint32_t id, uint32_t *val,
					    uint32_t *kofs, int *inplace)
{
	const struct uc_slot *s = &c->slots[id];
	int rc = uc_value_alloc_alloc_held(c, w->klen, w->vlen, val);

	*inplace = rc && uc_div_ceil(w->vlen, c->blocksize) <= uc_div_ceil(s->vallen, c->blocksize);
	if (rc && !*inplace)
		return rc;
	if (*inplace)
		*val = s->val;
	if (*kofs != UC_KOFS_INLINE && !uc_key_inline(c, w->klen, w->vlen))
		return 0;
	rc = uc_key_alloc_alloc_held(c, w->klen, w->vlen, kofs);
	if (rc && !*inplace)
		uc_value_free_alloc_held(c, *val, w->klen, w->vlen);
	return rc;
}

/* Bitmap mode: w's value into run v, and its key after it when it lives
 * there (a key that stays in its chunk is not rewritten). */
static void fill_run(uint8_t *v, const struct uc_write *w, int key_inline)
{
	uc_copy_value(v, w->val, w->vlen);
	if (key_inline)
		memcpy(v + w->vlen, w->key, w->klen);
}

/* Bitmap mode: overwrite live slot id with w (stripe held).  The key is
 * written where it moves (into the new run's last block, or a new chunk)
 * and left alone where it stays: a live key chunk is never rewritten.
 * 0, -ENOSPC or -EAGAIN. */
static int replace_bitmap_stripe_held(ucache_t *c, struct uc_write *w, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint32_t oldval = s->val, oldlen = s->vallen, oldkofs = uc_slot_kofs(c, id), kofs = oldkofs, val;
	int inplace, rc;
	uint8_t *v;

	if (uc_alloc_lock(c))
		return -EAGAIN;
	rc = bitmap_update_storage_alloc_held(c, w, id, &val, &kofs, &inplace);
	uc_alloc_unlock(c);
	if (rc)
		return rc;
	v = c->blocks + uc_val_offset(c, val);
	if (kofs != oldkofs && kofs != UC_KOFS_INLINE) /* a new chunk: unreachable until published */
		memcpy(c->kheap.data + (uint64_t)kofs * UC_HEAP_UNIT, w->key, w->klen);
	if (!inplace)
		fill_run(v, w, kofs == UC_KOFS_INLINE);
	uc_write_begin(w->st);
	uc_slot_dirty(s);
	if (inplace)
		fill_run(v, w, kofs == UC_KOFS_INLINE);
	uc_slot_set_storage(c, id, val, kofs);
	publish_fields(c, s, w);
	uc_write_end(w->st);
	if (w->vlen != oldlen)
		uc_count(c, UC_CTR_BYTES, (int64_t)w->vlen - (int64_t)oldlen);
	if (!uc_alloc_lock(c)) { /* else the repair reclaims what the old item no longer needs */
		if (inplace)
			uc_value_trim_alloc_held(c, oldval, oldlen, w->vlen);
		else
			uc_value_free_alloc_held(c, oldval, w->klen, oldlen);
		if (kofs != oldkofs)
			uc_key_free_alloc_held(c, w->klen, oldkofs);
		uc_alloc_unlock(c);
	}
	return 0;
}

/* Overwrite live slot id with w (stripe held).  0, -ENOSPC or -EAGAIN. */
static int replace_stripe_held(ucache_t *c, struct uc_write *w, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint32_t oldval = s->val, oldlen = s->vallen, val;
	int rc;

	mark_used(c, id);
	if (c->bitmap)
		return replace_bitmap_stripe_held(c, w, id);
	if (uc_same_storage(c, w->klen, oldlen, w->klen, w->vlen)) {
		replace_in_place(c, w, id);
		return 0;
	}
	if (uc_alloc_lock(c))
		return -EAGAIN;
	rc = uc_value_alloc_alloc_held(c, w->klen, w->vlen, &val);
	uc_alloc_unlock(c);
	if (rc)
		return rc;
	uc_item_fill(c, val, UC_KOFS_INLINE, w->key, w->klen, w->val, w->vlen);
	uc_write_begin(w->st);
	uc_slot_dirty(s);
	s->val = val;
	publish_fields(c, s, w);
	uc_write_end(w->st);
	uc_count(c, UC_CTR_BYTES, (int64_t)w->vlen - (int64_t)oldlen);
	if (!uc_alloc_lock(c)) { /* else the repair reclaims the old storage */
		uc_value_free_alloc_held(c, oldval, w->klen, oldlen);
		uc_alloc_unlock(c);
	}
	return 0;
}

/* Find w's key (stripe held), dropping it first if it has expired or is a
 * stale tagged entry (reads say it is missing: a set without UPDATE, or
 * math, must not find it either). */
static inline uint32_t find_live_stripe_held(ucache_t *c, struct uc_write *w)
{
	uint32_t prev = 0, id = uc_chain_find(c, w->bucket, w->hash, w->key, w->klen, &prev);

	w->last = id ? 0 : prev; /* a removal below: the new item goes to the head */
	if (id && c->slots[id].expires && c->slots[id].expires <= ucache_now()) {
		if (!uc_remove_stripe_held(c, w->st, w->bucket, id, prev))
			uc_count(c, UC_CTR_EXPIRATIONS, 1);
		return 0;
	}
	if (id && UC_UNLIKELY(uc_tags_invalidated(c)) && uc_tags_stale_slot(c, id)) {
		uc_remove_stripe_held(c, w->st, w->bucket, id, prev);
		return 0;
	}
	return id;
}

static int set_once(ucache_t *c, struct uc_write *w)
{
	uint32_t id;
	int rc = uc_stripe_lock(c, w->st);

	if (rc)
		return rc;
	if (c->sieve && !w->st->nstash && slots_full(c))
		prefetch_victim(c, w->st);
	id = find_live_stripe_held(c, w);
	if (id && !(w->flags & UCACHE_SET_UPDATE))
		rc = -EEXIST;
	else
		rc = id ? replace_stripe_held(c, w, id) : insert_stripe_held(c, w);
	uc_stripe_unlock(w->st);
	return rc;
}

/* Run one write attempt function with the full/repair retry policy
 * (always inlined: each caller's attempt function is then a direct,
 * inlinable call, ~60 instructions less per write). */
static inline __attribute__((always_inline)) int with_retries(ucache_t *c, struct uc_write *w, int (*once)(ucache_t *, struct uc_write *))
{
	int attempt, rc = -ENOSPC;

	w->hash = uc_key_hash(c, w->key, w->klen);
	w->bucket = uc_bucket_of(c, w->hash);
	w->st = uc_stripe_of(c, w->bucket);
	/* the bucket's line comes in while the stripe lock is taken */
	__builtin_prefetch(&c->buckets[w->bucket]);
	for (attempt = 0; attempt < UC_FULL_RETRIES; attempt++) {
		rc = once(c, w);
		if (rc == -EAGAIN) { /* allocator owner died: repair, then retry */
			rc = uc_world_lock(c);
			uc_world_unlock(c);
			if (rc)
				break;
			rc = -EAGAIN;
			continue;
		}
		if (rc != -ENOSPC || !uc_handle_full(c))
			break;
	}
	if (rc == 0)
		touch_modified(c);
	return rc;
}

/* A write refused for its size: counted (stats' too_large), so that a
 * value that never fits is visible to an operator. */
static int too_large(ucache_t *c)
{
	uc_count(c, UC_CTR_TOO_LARGE, 1);
	return -E2BIG;
}

int ucache_set(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen, uint64_t expires,
	       unsigned flags)
{
	struct uc_write w = { .key = key, .klen = klen, .val = val, .vlen = vlen, .flags = flags };

	if (!key || !klen || !val || !vlen)
		return -EINVAL;
	if (klen > c->hdr->keysize || vlen > c->max_value || vlen > 0xffffffffu)
		return too_large(c);
	w.expires = abs_expiry(c, expires, flags);
	return with_retries(c, &w, set_once);
}

static int del_once(ucache_t *c, struct uc_write *w)
{
	uint32_t prev = 0, id;
	int rc = uc_stripe_lock(c, w->st);

	if (rc)
		return rc;
	id = uc_chain_find(c, w->bucket, w->hash, w->key, w->klen, &prev);
	rc = id ? uc_remove_stripe_held(c, w->st, w->bucket, id, prev) : -ENOENT;
	uc_stripe_unlock(w->st);
	return rc;
}

int ucache_del(ucache_t *c, const void *key, size_t klen)
{
	struct uc_write w = { .key = key, .klen = klen };
	int rc;

	if (!key || !klen || klen > c->hdr->keysize)
		return -EINVAL;
	rc = with_retries(c, &w, del_once);
	return rc;
}

/* ------------------------------------------------------------------ math */

struct uc_math {
	struct uc_write w;
	uint64_t expires;     /* absolute expiry for a new item */
	enum ucache_math_op op;
	int64_t delta;
	int64_t initial;      /* start value on a missing key */
	unsigned flags;       /* enum ucache_math_flags */
	int64_t result;
};

/* a op d into *out, or -ERANGE when the result is outside int64: one
 * rule for every path that does math (this engine, the ucache_incr RPC,
 * the Redis near cache's HINCRBY), so a counter never wraps to the other
 * end of the range (stock's C arithmetic wrapped).  Division by zero
 * gives 0, as stock. */
static int apply(enum ucache_math_op op, int64_t a, int64_t d, int64_t *out)
{
	switch (op) {
	case UCACHE_MATH_INC:
		return __builtin_add_overflow(a, d, out) ? -ERANGE : 0;
	case UCACHE_MATH_DEC:
		return __builtin_sub_overflow(a, d, out) ? -ERANGE : 0;
	case UCACHE_MATH_MUL:
		return __builtin_mul_overflow(a, d, out) ? -ERANGE : 0;
	case UCACHE_MATH_DIV:
	default:
		if (a == INT64_MIN && d == -1)
			return -ERANGE;
		*out = d ? a / d : 0;
		return 0;
	}
}

static int math_once(ucache_t *c, struct uc_write *w)
{
	struct uc_math *m = (struct uc_math *)w;
	int64_t cur;
	uint32_t id;
	int rc = uc_stripe_lock(c, w->st);

	if (rc)
		return rc;
	id = find_live_stripe_held(c, w);
	if (id && c->slots[id].vallen != sizeof(int64_t)) {
		rc = -EINVAL;
	} else if (id) {
		memcpy(&cur, uc_slot_val(c, id), sizeof(cur));
		w->expires = c->slots[id].expires; /* math keeps the expiry */
		rc = apply(m->op, cur, m->delta, &m->result);
		if (!rc)
			rc = replace_stripe_held(c, w, id);
	} else if (m->flags & UCACHE_MATH_EXISTING) {
		rc = -ENOENT;
	} else {
		w->expires = m->expires;
		rc = apply(m->op, m->initial, m->delta, &m->result);
		if (!rc)
			rc = insert_stripe_held(c, w);
	}
	uc_stripe_unlock(w->st);
	return rc;
}

int ucache_math(ucache_t *c, const void *key, size_t klen, enum ucache_math_op op, int64_t delta,
		uint64_t expires, int64_t *result)
{
	return ucache_math_ex(c, key, klen, op, delta, c->cfg.math_initial, expires, 0, result);
}

int ucache_math_ex(ucache_t *c, const void *key, size_t klen, enum ucache_math_op op, int64_t delta,
		   int64_t initial, uint64_t expires, unsigned flags, int64_t *result)
{
	struct uc_math m = { .w = { .key = key, .klen = klen, .flags = UCACHE_SET_UPDATE }, .op = op, .delta = delta,
			     .initial = initial, .flags = flags };
	int rc;

	if (!key || !klen || klen > c->hdr->keysize || c->max_value < sizeof(int64_t))
		return -EINVAL;
	m.w.val = &m.result;
	m.w.vlen = sizeof(m.result);
	m.expires = abs_expiry(c, expires, 0);
	rc = with_retries(c, &m.w, math_once);
	if (rc == 0 && result)
		*result = m.result;
	return rc;
}

/* ----------------------------------------------------------- conditional */

struct uc_cond_write {
	struct uc_write w;    /* first: with_retries() passes &w */
	uc_cond_fn cond;
	void *ud;
};

/* Only the expiry of live slot id changes (UC_COND_TOUCH), inside the
 * stripe's window; the checksum covers the expiry. */
static void set_expiry_stripe_held(ucache_t *c, struct uc_write *w, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];

	mark_used(c, id);
	uc_write_begin(w->st);
	if (!s->expires != !w->expires)
		uc_count(c, UC_CTR_EXPIRING, w->expires ? 1 : -1);
	s->expires = w->expires;
	s->csum = uc_slot_csum(c, w->hash, s->keylen, uc_slot_val(c, id), s->vallen, w->expires, s->val);
	uc_write_end(w->st);
}

static int cond_once(ucache_t *c, struct uc_write *w)
{
	struct uc_cond_write *cw = (struct uc_cond_write *)w;
	uint32_t id, prev = 0;
	int rc = uc_stripe_lock(c, w->st);

	if (rc)
		return rc;
	id = find_live_stripe_held(c, w);
	rc = cw->cond(c, id, &w->expires, cw->ud);
	if (rc == UC_COND_TOUCH && id) {
		set_expiry_stripe_held(c, w, id);
		rc = 0;
	} else if (rc == UC_COND_DELETE && id && uc_chain_position(c, w->bucket, id, &prev)) {
		rc = uc_remove_stripe_held(c, w->st, w->bucket, id, prev);
	} else if (rc == UC_COND_TOUCH || rc == UC_COND_DELETE) {
		rc = -ENOENT;
	} else if (rc == 0 && !w->val) {
		rc = -EINVAL; /* a condition allowed a write that has no value */
	} else if (rc == 0) {
		rc = id ? replace_stripe_held(c, w, id) : insert_stripe_held(c, w);
	}
	uc_stripe_unlock(w->st);
	return rc;
}

int uc_write_cond(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen, uint64_t expires,
		  unsigned flags, uc_cond_fn cond, void *ud)
{
	struct uc_cond_write cw = { .w = { .key = key, .klen = klen, .val = val, .vlen = vlen, .flags = flags },
				    .cond = cond, .ud = ud };

	if (!key || !klen || klen > c->hdr->keysize)
		return -EINVAL;
	if (val && !vlen)
		return -EINVAL;
	if (val && (vlen > c->max_value || vlen > 0xffffffffu))
		return too_large(c);
	cw.w.expires = abs_expiry(c, expires, flags);
	return with_retries(c, &cw.w, cond_once);
}
