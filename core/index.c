/*
 * index.c - bucket chains, slot and storage allocation, item bytes and the
 * per-stripe SIEVE queues (index.h says which lock each function needs).
 *
 * Chains: a bucket's head and each slot's next, changed only inside the
 * stripe's seqlock window, so a lock-free reader either sees a consistent
 * chain or retries.
 *
 * Storage: single-block caches keep key and value in one heap chunk
 * (slot.val = offset / 16): one allocation per item and one cache line
 * fetched for both on a hit.  Bitmap caches keep the value in contiguous
 * blocks (stock's rule) and the key after it in its last block when it fits
 * there (uc_key_inline), else in a key-heap chunk (kofs).
 *
 * SIEVE (Zhang et al., NSDI'24): each stripe keeps a FIFO queue of its items
 * (newest at head); a hit only sets the slot's VISITED bit (no shared list
 * is written by a read, unlike stock's LRU); the hand walks from the oldest
 * end towards the newest, clearing VISITED bits, and evicts the first item
 * without one.  Survivors stay where they are, so new items that are never
 * read again leave quickly (scan resistance, bench "hitratio").  One queue
 * per stripe (>= 64 items each: layout.c) lets a writer evict under the
 * stripe lock it already holds, and reuse the victim's slot and storage.
 */
#include <errno.h>
#include <string.h>
#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "index.h"
#include "util.h"

int uc_chain_walk_to(const ucache_t *c, uint64_t bucket, uint32_t id, uint32_t *prev)
{
	uint32_t cur, steps = 0;

	*prev = 0;
	for (cur = atomic_load(&c->buckets[bucket].head); cur && cur < c->items && steps++ < c->items;
	     cur = c->slots[cur].next) {
		if (cur == id)
			return 1;
		*prev = cur;
	}
	return 0;
}

/* ------------------------------------------------------------ SIEVE queue */

static void sieve_push(ucache_t *c, struct uc_stripe *st, uint32_t id, uint32_t hash)
{
	c->links[id] = (struct uc_link){ .prev = 0, .next = st->head, .hash = hash };
	if (st->head)
		c->links[st->head].prev = id;
	else
		st->tail = id;
	st->head = id;
}

/* The tail's next (towards the older end) is never read, so removing the
 * tail leaves its newer neighbour's next stale instead of writing it: in a
 * full cache the victim is usually the tail, and that write was a cold
 * line per eviction (0.86 of the 10 D1 misses of an insert, callgrind). */
static void sieve_remove(ucache_t *c, struct uc_stripe *st, uint32_t id)
{
	struct uc_link *l = &c->links[id];

	if (st->hand == id)
		st->hand = l->prev;
	if (id == st->tail) {
		st->tail = l->prev;
		if (!l->prev)
			st->head = 0;
	} else {
		c->links[l->next].prev = l->prev;
		if (l->prev)
			c->links[l->prev].next = l->next;
		else
			st->head = l->next;
	}
	l->prev = l->next = 0;
}

uint32_t uc_sieve_victim_stripe_held(ucache_t *c, struct uc_stripe *st, uint64_t now)
{
	uint32_t id = st->hand ? st->hand : st->tail, steps = 0;

	/* each pass clears what it skips, so two passes always find one */
	while (id && steps++ <= 2 * c->items) {
		struct uc_slot *s = &c->slots[id];
		uint8_t u = atomic_load_explicit(&s->use, memory_order_relaxed);
		if (!(u & UC_USE_VISITED) || (s->expires && s->expires <= now)) {
			st->hand = c->links[id].prev;
			return id;
		}
		atomic_fetch_and_explicit(&s->use, (uint8_t)~UC_USE_VISITED, memory_order_relaxed);
		id = c->links[id].prev ? c->links[id].prev : st->tail;
	}
	return 0;
}

uint32_t uc_lru_tick(ucache_t *c)
{
	return (uint32_t)atomic_fetch_add_explicit(&c->hdr->lru_clock, 1, memory_order_relaxed) + 1;
}

/* ----------------------------------------------------------------- chains */

/* Link id on bucket's chain, behind after or at the head (after 0) (the
 * caller makes it atomic for readers: a seqlock window, or the world lock). */
static void chain_add(ucache_t *c, uint64_t bucket, uint32_t id, uint32_t after)
{
	struct uc_slot *s = &c->slots[id];

	uc_slot_set_state(s, UC_SLOT_LIVE);
	if (after) {
		s->next = 0;
		c->slots[after].next = id;
		return;
	}
	s->next = atomic_load_explicit(&c->buckets[bucket].head, memory_order_relaxed);
	atomic_store_explicit(&c->buckets[bucket].head, id, memory_order_relaxed);
}

/* What linking an item counts and stamps, outside the seqlock window. */
static void link_bookkeeping(ucache_t *c, struct uc_stripe *st, uint32_t id, uint32_t hash)
{
	if (c->slots[id].expires)
		uc_count(c, UC_CTR_EXPIRING, 1);
	if (c->sieve)
		sieve_push(c, st, id, hash);
}

void uc_chain_link_stripe_held(ucache_t *c, struct uc_stripe *st, uint64_t bucket, uint32_t id, uint32_t after,
			       uint32_t hash)
{
	uc_write_begin(st);
	chain_add(c, bucket, id, after);
	uc_write_end(st);
	link_bookkeeping(c, st, id, hash);
	if (c->exact_lru) /* a new item is the most recent (a rebuild keeps the stamps it finds) */
		atomic_store_explicit(&c->atime[id], uc_lru_tick(c), memory_order_relaxed);
}

void uc_chain_link_world_held(ucache_t *c, uint64_t bucket, uint32_t id, uint32_t hash)
{
	/* every stripe's seq is odd for the world lock's whole duration: a
	 * window here would make it even mid-rebuild */
	chain_add(c, bucket, id, 0);
	link_bookkeeping(c, uc_stripe_of(c, bucket), id, hash);
}

void uc_index_reset_world_held(ucache_t *c)
{
	uint64_t i;

	memset((void *)c->buckets, 0, c->hdr->nbuckets * sizeof(struct uc_bucket));
	for (i = 0; i < c->hdr->nstripes; i++)
		c->stripes[i].head = c->stripes[i].tail = c->stripes[i].hand = c->stripes[i].nstash = 0;
	c->hdr->slot_free = 0;
	atomic_store(&c->hdr->live, 0);
	uc_counts_reset(c);
}

void uc_chain_unlink_stripe_held(ucache_t *c, struct uc_stripe *st, uint64_t bucket, uint32_t id, uint32_t prev)
{
	struct uc_slot *s = &c->slots[id];

	uc_write_begin(st);
	if (prev)
		c->slots[prev].next = s->next;
	else
		atomic_store_explicit(&c->buckets[bucket].head, s->next, memory_order_relaxed);
	uc_slot_set_state(s, UC_SLOT_RESERVED); /* unreachable; a rebuild frees it */
	uc_write_end(st);
	if (s->expires)
		uc_count(c, UC_CTR_EXPIRING, -1);
	if (c->sieve)
		sieve_remove(c, st, id);
}

/* ---------------------------------------------------------------- storage */

uint64_t uc_storage_class(const ucache_t *c, size_t klen, size_t vlen)
{
	if (c->bitmap) /* blocks for the value, a key chunk (0 inline): pack both */
		return uc_div_ceil(vlen, c->hdr->blocksize) << 32 |
		       (uc_key_inline(c, klen, vlen) ? 0 : uc_heap_chunk_size(&c->hdr->kheap, klen));
	return uc_heap_chunk_size(&c->hdr->vheap, klen + vlen);
}

int uc_value_alloc_alloc_held(ucache_t *c, size_t klen, size_t vlen, uint32_t *val)
{
	int64_t v;

	if (c->bitmap) {
		v = uc_bitmap_alloc(&c->bm, uc_div_ceil(vlen, c->hdr->blocksize));
		*val = (uint32_t)v;
	} else {
		v = uc_heap_alloc(&c->vheap, klen + vlen);
		*val = (uint32_t)((uint64_t)v / UC_HEAP_UNIT);
	}
	return v < 0 ? -ENOSPC : 0;
}

void uc_value_free_alloc_held(ucache_t *c, uint32_t val, size_t klen, size_t vlen)
{
	if (c->bitmap)
		uc_bitmap_free(&c->bm, val, uc_div_ceil(vlen, c->hdr->blocksize));
	else
		uc_heap_free(&c->vheap, (uint64_t)val * UC_HEAP_UNIT, klen + vlen);
}

void uc_value_trim_alloc_held(ucache_t *c, uint32_t val, size_t oldlen, size_t newlen)
{
	uint64_t keep = uc_div_ceil(newlen, c->blocksize), had = uc_div_ceil(oldlen, c->blocksize);

	if (c->bitmap && keep < had)
		uc_bitmap_free(&c->bm, val + keep, had - keep);
}

int uc_key_alloc_alloc_held(ucache_t *c, size_t klen, size_t vlen, uint32_t *kofs)
{
	int64_t k;

	*kofs = UC_KOFS_INLINE;
	if (!c->bitmap || uc_key_inline(c, klen, vlen))
		return 0;
	if ((k = uc_heap_alloc(&c->kheap, klen)) < 0)
		return -ENOSPC;
	*kofs = (uint32_t)((uint64_t)k / UC_HEAP_UNIT);
	return 0;
}

void uc_key_free_alloc_held(ucache_t *c, size_t klen, uint32_t kofs)
{
	if (kofs != UC_KOFS_INLINE)
		uc_heap_free(&c->kheap, (uint64_t)kofs * UC_HEAP_UNIT, klen);
}

int uc_storage_alloc_alloc_held(ucache_t *c, size_t klen, size_t vlen, uint32_t *val, uint32_t *kofs)
{
	if (uc_value_alloc_alloc_held(c, klen, vlen, val))
		return -ENOSPC;
	if (!uc_key_alloc_alloc_held(c, klen, vlen, kofs))
		return 0;
	uc_value_free_alloc_held(c, *val, klen, vlen);
	return -ENOSPC;
}

void uc_slot_set_storage(ucache_t *c, uint32_t id, uint32_t val, uint32_t kofs)
{
	c->slots[id].val = val;
	if (kofs != UC_KOFS_INLINE)
		c->kofs[id] = kofs;
}

void uc_storage_free_alloc_held(ucache_t *c, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];

	uc_value_free_alloc_held(c, s->val, s->keylen, s->vallen);
	uc_key_free_alloc_held(c, s->keylen, uc_slot_kofs(c, id));
}

uint32_t uc_slot_reserve_alloc_held(ucache_t *c, size_t klen, size_t vlen)
{
	struct uc_hdr *h = c->hdr;
	uint32_t id = h->slot_free, unused = atomic_load_explicit(&h->slot_unused, memory_order_relaxed), val, kofs;

	if (!id && unused >= h->items)
		return 0;
	if (!id)
		id = unused;
	if (uc_storage_alloc_alloc_held(c, klen, vlen, &val, &kofs))
		return 0;
	uc_slot_set_storage(c, id, val, kofs);
	if (id == h->slot_free)
		h->slot_free = c->slots[id].next;
	else
		atomic_store_explicit(&h->slot_unused, unused + 1, memory_order_relaxed);
	uc_slot_set_state(&c->slots[id], UC_SLOT_RESERVED);
	c->slots[id].keylen = (uint16_t)klen;
	c->slots[id].vallen = (uint32_t)vlen;
	atomic_fetch_add_explicit(&h->live, 1, memory_order_relaxed);
	uc_count(c, UC_CTR_BYTES, (int64_t)vlen);
	return id;
}

void uc_slot_free_alloc_held(ucache_t *c, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];

	uc_count(c, UC_CTR_BYTES, -(int64_t)s->vallen);
	atomic_fetch_sub_explicit(&c->hdr->live, 1, memory_order_relaxed);
	uc_slot_set_state(s, UC_SLOT_FREE);
	s->next = c->hdr->slot_free;
	c->hdr->slot_free = id;
}

void uc_slot_release_alloc_held(ucache_t *c, uint32_t id)
{
	uc_storage_free_alloc_held(c, id);
	uc_slot_free_alloc_held(c, id);
}

/* Values this large are written with streaming (non-temporal) stores:
 * a 64 KiB value written over cold memory costs a read of every line
 * first (read-for-ownership) with memcpy, which streaming stores skip:
 * 182k vs 362k copies/s of 64 KiB into a 64 MiB region here.  The price, a
 * value just written is not in the writer's cache, is small at this size:
 * reading 64 KiB back is bound by bandwidth either way.  Below it, memcpy
 * (the value is likely read again soon, and fits in L2). */
#define UC_STREAM_MIN 16384

void uc_copy_value(void *dst, const void *src, size_t len)
{
#if defined(__x86_64__) && defined(__SSE2__)
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t head;

	if (len < UC_STREAM_MIN) {
		memcpy(dst, src, len);
		return;
	}
	head = (16 - ((uintptr_t)d & 15)) & 15;
	memcpy(d, s, head);
	d += head;
	s += head;
	len -= head;
	for (; len >= 64; len -= 64, d += 64, s += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)s), b = _mm_loadu_si128((const __m128i *)(s + 16));
		__m128i e = _mm_loadu_si128((const __m128i *)(s + 32)), f = _mm_loadu_si128((const __m128i *)(s + 48));
		_mm_stream_si128((__m128i *)d, a);
		_mm_stream_si128((__m128i *)(d + 16), b);
		_mm_stream_si128((__m128i *)(d + 32), e);
		_mm_stream_si128((__m128i *)(d + 48), f);
	}
	memcpy(d, s, len);
	_mm_sfence(); /* streaming stores are weakly ordered: before any publish */
#else
	memcpy(dst, src, len);
#endif
}

void uc_item_fill(ucache_t *c, uint32_t val, uint32_t kofs, const void *key, size_t klen, const void *v, size_t vlen)
{
	uint8_t *at = c->blocks + uc_val_offset(c, val);

	if (c->bitmap) {
		uc_copy_value(at, v, vlen);
		if (uc_key_inline(c, klen, vlen))
			memcpy(at + vlen, key, klen);
		else
			memcpy(c->kheap.data + (uint64_t)kofs * UC_HEAP_UNIT, key, klen);
		return;
	}
	memcpy(at, key, klen);
	uc_copy_value(at + klen, v, vlen);
}

/* ------------------------------------------------------------------ stash */

/* A freed slot kept by its stripe: set (+del) traffic in two processes
 * otherwise serialises on the allocator lock twice per key (bench/engine
 * "set": 2 processes ran at 0.39x one).  With 16 slots per stripe, a
 * stripe's stash is empty (or full) for ~1/17 of its inserts (deletes):
 * inserts and deletes arrive at random stripes at the same rate, a random
 * walk on 0..16. */
int uc_stash_put_stripe_held(ucache_t *c, struct uc_stripe *st, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];

	/* bitmap mode keeps stock's exact block accounting (blocks_used) */
	if (st->nstash >= UC_STASH || c->bitmap)
		return 0;
	st->stash[st->nstash++] = id;
	uc_count(c, UC_CTR_BYTES, -(int64_t)s->vallen);
	return 1;
}

uint32_t uc_stash_take_stripe_held(ucache_t *c, struct uc_stripe *st, size_t klen, size_t vlen)
{
	uint32_t i, id;

	for (i = st->nstash; i-- > 0;) {
		id = st->stash[i];
		if (!uc_same_storage(c, c->slots[id].keylen, c->slots[id].vallen, klen, vlen))
			continue;
		st->stash[i] = st->stash[--st->nstash];
		c->slots[id].keylen = (uint16_t)klen;
		c->slots[id].vallen = (uint32_t)vlen;
		uc_count(c, UC_CTR_BYTES, (int64_t)vlen);
		return id;
	}
	return 0;
}

void uc_stash_drain_alloc_held(ucache_t *c, struct uc_stripe *st)
{
	while (st->nstash) {
		uint32_t id = st->stash[--st->nstash];
		/* counted back in, so that the release counts it out once */
		uc_count(c, UC_CTR_BYTES, (int64_t)c->slots[id].vallen);
		uc_slot_release_alloc_held(c, id);
	}
}
