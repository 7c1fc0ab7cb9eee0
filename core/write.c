/*
 * write.c - set, update, delete, math and clear.
 *
 * Every write locks the key's stripe (uc_stripe_lock), which is where a
 * dead writer's damage gets repaired.  Allocation (slots, heap chunks,
 * bitmap blocks) happens under the allocator lock, taken after the stripe
 * lock and held only for the allocation itself.  New storage is filled while
 * unreachable; only the pointer/length swap happens inside the stripe's
 * seqlock window, and old storage is freed after it.  Stock rules kept:
 * set on an existing key fails, update overwrites; in bitmap mode an update
 * allocates its new blocks before freeing the old ones.  A single-block
 * update whose new value has the same size class is done in place.
 *
 * When a write finds no room it releases its stripe, lets uc_handle_full()
 * apply the cache's policy (evict.c) and retries, a bounded number of times.
 */
#include <errno.h>
#include <string.h>

#include "cache_int.h"
#include "util.h"

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
};

static uint64_t abs_expiry(ucache_t *c, uint64_t expires, unsigned flags)
{
	uint64_t now;

	if (c->cfg.no_expire || !expires)
		return 0;
	if (flags & UCACHE_SET_ABSEXPIRE)
		return expires;
	now = ucache_now();
	return expires > UINT64_MAX - now ? UINT64_MAX : now + expires; /* never wrap into the past */
}

static void touch_modified(ucache_t *c)
{
	if (c->cfg.lastmod)
		atomic_store_explicit(&c->hdr->last_modified_at, ucache_now(), memory_order_relaxed);
}

/* Allocate value storage for vlen bytes (allocator held); -1 if none. */
static int64_t store_alloc(ucache_t *c, size_t vlen)
{
	if (c->hdr->bitmap)
		return uc_bitmap_alloc(&c->bm, uc_div_ceil(vlen, c->hdr->blocksize));
	return uc_heap_alloc(&c->vheap, vlen);
}

static void store_free(ucache_t *c, uint64_t val, size_t vlen)
{
	if (c->hdr->bitmap)
		uc_bitmap_free(&c->bm, val, uc_div_ceil(vlen, c->hdr->blocksize));
	else
		uc_heap_free(&c->vheap, val, vlen);
	atomic_fetch_sub(&c->hdr->value_bytes, vlen);
}

static uint8_t *val_ptr(ucache_t *c, uint64_t val)
{
	return c->blocks + (c->hdr->bitmap ? val * c->hdr->blocksize : val);
}

/* Reserve a slot with storage for w (allocator held): slot id, 0 if full. */
static uint32_t reserve_locked(ucache_t *c, struct uc_write *w)
{
	struct uc_hdr *h = c->hdr;
	struct uc_slot *s;
	int64_t v, k = 0;
	uint32_t id = h->slot_free;

	if (!id && h->slot_unused >= h->items)
		return 0;
	v = store_alloc(c, w->vlen);
	if (v < 0)
		return 0;
	if (w->klen > UC_INLINE_KEY && (k = uc_heap_alloc(&c->kheap, w->klen)) < 0) {
		atomic_fetch_add(&h->value_bytes, w->vlen); /* store_free takes it back */
		store_free(c, (uint64_t)v, w->vlen);
		return 0;
	}
	if (id)
		h->slot_free = c->slots[id].next;
	else
		id = h->slot_unused++;
	s = &c->slots[id];
	s->state = UC_SLOT_RESERVED;
	s->val = (uint64_t)v;
	s->key = (uint32_t)((uint64_t)k / UC_HEAP_UNIT);
	h->live++;
	atomic_fetch_add(&h->value_bytes, w->vlen);
	return id;
}

/* Return slot id and its storage to the allocator (allocator held). */
static void release_locked(ucache_t *c, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];

	store_free(c, s->val, s->vallen);
	if (s->keylen > UC_INLINE_KEY)
		uc_heap_free(&c->kheap, (uint64_t)s->key * UC_HEAP_UNIT, s->keylen);
	s->state = UC_SLOT_FREE;
	s->next = c->hdr->slot_free;
	c->hdr->slot_free = id;
	c->hdr->live--;
}

/* Insert w as a new item (stripe held).  0, -ENOSPC or -EAGAIN. */
static int insert_locked(ucache_t *c, struct uc_write *w)
{
	struct uc_slot *s;
	uint32_t id;

	if (uc_alloc_lock(c))
		return -EAGAIN;
	id = reserve_locked(c, w);
	uc_alloc_unlock(c);
	if (!id)
		return -ENOSPC;
	s = &c->slots[id];
	s->hash = w->hash;
	s->keylen = (uint16_t)w->klen;
	s->flags = 0;
	s->vallen = (uint32_t)w->vlen;
	s->expires = w->expires;
	s->csum = uc_item_csum(w->key, w->klen, w->val, w->vlen, w->expires);
	if (w->expires)
		atomic_fetch_add_explicit(&c->hdr->expiring, 1, memory_order_relaxed);
	atomic_store_explicit(&s->hits, 0, memory_order_relaxed);
	atomic_store_explicit(&s->atime, uc_lru_stamp(c), memory_order_relaxed);
	memcpy(w->klen > UC_INLINE_KEY ? c->kheap.data + (uint64_t)s->key * UC_HEAP_UNIT : s->ikey, w->key, w->klen);
	memcpy(val_ptr(c, s->val), w->val, w->vlen);
	uc_write_begin(w->st);
	s->next = atomic_load_explicit(&c->buckets[w->bucket].head, memory_order_relaxed);
	s->state = UC_SLOT_LIVE;
	atomic_store_explicit(&c->buckets[w->bucket].head, id, memory_order_relaxed);
	uc_bucket_hint(c, w->bucket);
	uc_write_end(w->st);
	return 0;
}

/* Overwrite live slot id with w (stripe held).  0, -ENOSPC or -EAGAIN. */
static int replace_locked(ucache_t *c, struct uc_write *w, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint64_t old = s->val, oldlen = s->vallen;
	uint32_t csum = uc_item_csum(w->key, w->klen, w->val, w->vlen, w->expires);
	int64_t v;

	if (!c->hdr->bitmap && (w->vlen == oldlen || uc_heap_chunk_size(&c->hdr->vheap, w->vlen) ==
						       uc_heap_chunk_size(&c->hdr->vheap, oldlen))) {
		uc_write_begin(w->st);
		memcpy(val_ptr(c, old), w->val, w->vlen);
		if (w->vlen != oldlen) /* a shared line: don't write it for nothing */
			atomic_fetch_add(&c->hdr->value_bytes, w->vlen - oldlen);
		goto publish;
	}
	if (uc_alloc_lock(c))
		return -EAGAIN;
	v = store_alloc(c, w->vlen);
	if (v >= 0)
		atomic_fetch_add(&c->hdr->value_bytes, w->vlen);
	uc_alloc_unlock(c);
	if (v < 0)
		return -ENOSPC;
	memcpy(val_ptr(c, (uint64_t)v), w->val, w->vlen);
	uc_write_begin(w->st);
	s->val = (uint64_t)v;
	uc_bucket_hint(c, w->bucket);
publish:
	s->vallen = (uint32_t)w->vlen;
	if (!s->expires != !w->expires)
		atomic_fetch_add_explicit(&c->hdr->expiring, w->expires ? 1 : -1, memory_order_relaxed);
	s->expires = w->expires;
	s->csum = csum;
	if (c->cfg.purge_lru)
		atomic_store_explicit(&s->atime, uc_lru_stamp(c), memory_order_relaxed);
	uc_write_end(w->st);
	if (old != s->val && !uc_alloc_lock(c)) {
		store_free(c, old, oldlen);
		uc_alloc_unlock(c);
	}
	return 0;
}

void uc_unlink_locked(ucache_t *c, struct uc_stripe *st, uint64_t bucket, uint32_t id, uint32_t prev)
{
	struct uc_slot *s = &c->slots[id];

	uc_write_begin(st);
	if (prev) {
		c->slots[prev].next = s->next;
	} else {
		atomic_store_explicit(&c->buckets[bucket].head, s->next, memory_order_relaxed);
		uc_bucket_hint(c, bucket);
	}
	s->state = UC_SLOT_RESERVED; /* unreachable; recovery frees it */
	uc_write_end(st);
	if (s->expires)
		atomic_fetch_sub_explicit(&c->hdr->expiring, 1, memory_order_relaxed);
	if (!uc_alloc_lock(c)) {
		release_locked(c, id);
		uc_alloc_unlock(c);
	}
}

/* Find w's key (stripe held), dropping it first if it has expired. */
static uint32_t find_live_locked(ucache_t *c, struct uc_write *w)
{
	uint32_t prev = 0, id = uc_chain_find(c, w->bucket, w->hash, w->key, w->klen, &prev);

	if (id && c->slots[id].expires && c->slots[id].expires <= ucache_now()) {
		uc_unlink_locked(c, w->st, w->bucket, id, prev);
		atomic_fetch_add(&c->hdr->expirations, 1);
		return 0;
	}
	return id;
}

static int set_once(ucache_t *c, struct uc_write *w)
{
	uint32_t id;
	int rc;

	uc_stripe_lock(c, w->st);
	id = find_live_locked(c, w);
	if (id && !(w->flags & UCACHE_SET_UPDATE))
		rc = -EEXIST;
	else
		rc = id ? replace_locked(c, w, id) : insert_locked(c, w);
	uc_stripe_unlock(w->st);
	return rc;
}

/* Run one write attempt function with the full/repair retry policy. */
static int with_retries(ucache_t *c, struct uc_write *w, int (*once)(ucache_t *, struct uc_write *))
{
	int attempt, rc = -ENOSPC;

	w->hash = c->hashfn(w->key, w->klen);
	w->bucket = uc_bucket_of(c, w->hash);
	w->st = uc_stripe_of(c, w->bucket);
	for (attempt = 0; attempt < UC_FULL_RETRIES; attempt++) {
		rc = once(c, w);
		if (rc == -EAGAIN) { /* allocator owner died: repair, then retry */
			uc_world_lock(c);
			uc_world_unlock(c);
			continue;
		}
		if (rc != -ENOSPC || !uc_handle_full(c))
			break;
	}
	if (rc == 0)
		touch_modified(c);
	return rc;
}

int ucache_set(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen, uint64_t expires,
	       unsigned flags)
{
	struct uc_write w = { .key = key, .klen = klen, .val = val, .vlen = vlen, .flags = flags };

	if (!key || !klen || !val || !vlen)
		return -EINVAL;
	if (klen > c->hdr->keysize || vlen > c->max_value || vlen > 0xffffffffu)
		return -E2BIG;
	w.expires = abs_expiry(c, expires, flags);
	return with_retries(c, &w, set_once);
}

static int del_once(ucache_t *c, struct uc_write *w)
{
	uint32_t prev = 0, id;

	uc_stripe_lock(c, w->st);
	id = uc_chain_find(c, w->bucket, w->hash, w->key, w->klen, &prev);
	if (id)
		uc_unlink_locked(c, w->st, w->bucket, id, prev);
	uc_stripe_unlock(w->st);
	return id ? 0 : -ENOENT;
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
	int64_t result;
};

static int64_t apply(enum ucache_math_op op, int64_t a, int64_t d)
{
	switch (op) {
	case UCACHE_MATH_INC:
		return (int64_t)((uint64_t)a + (uint64_t)d);
	case UCACHE_MATH_DEC:
		return (int64_t)((uint64_t)a - (uint64_t)d);
	case UCACHE_MATH_MUL:
		return (int64_t)((uint64_t)a * (uint64_t)d);
	case UCACHE_MATH_DIV:
	default:
		if (d == 0)
			return 0;
		if (d == -1) /* INT64_MIN / -1 overflows: wrap like the others */
			return (int64_t)(0 - (uint64_t)a);
		return a / d;
	}
}

static int math_once(ucache_t *c, struct uc_write *w)
{
	struct uc_math *m = (struct uc_math *)w;
	int64_t cur;
	uint32_t id;
	int rc;

	uc_stripe_lock(c, w->st);
	id = find_live_locked(c, w);
	if (id && c->slots[id].vallen != sizeof(int64_t)) {
		rc = -EINVAL;
	} else if (id) {
		memcpy(&cur, val_ptr(c, c->slots[id].val), sizeof(cur));
		m->result = apply(m->op, cur, m->delta);
		w->expires = c->slots[id].expires; /* math keeps the expiry */
		rc = replace_locked(c, w, id);
	} else {
		m->result = apply(m->op, c->cfg.math_initial, m->delta);
		w->expires = m->expires;
		rc = insert_locked(c, w);
	}
	uc_stripe_unlock(w->st);
	return rc;
}

int ucache_math(ucache_t *c, const void *key, size_t klen, enum ucache_math_op op, int64_t delta,
		uint64_t expires, int64_t *result)
{
	struct uc_math m = { .w = { .key = key, .klen = klen, .flags = UCACHE_SET_UPDATE }, .op = op, .delta = delta };
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
