/*
 * index.h - slots, bucket chains, storage and SIEVE queues: the operations
 * every reader, writer and the rebuild build on.  Nothing here takes a
 * lock; each function's suffix says which one its caller holds:
 *   _stripe_held  the stripe lock of the slot's (or bucket's) stripe
 *   _alloc_held   the allocator lock (hdr->alloc_lock)
 *   no suffix     none: safe lock-free (bounds-checked reads only)
 */
#ifndef UCACHE_INDEX_H
#define UCACHE_INDEX_H

#include <string.h>

#include "layout.h"

/* Key equality without a call for the common short keys: two possibly
 * overlapping 8-byte (or 4-byte) loads per side instead of memcmp(). */
static inline int uc_key_eq(const uint8_t *a, const uint8_t *b, size_t len)
{
	uint64_t x, y, u, v;
	uint32_t p, q, r, t;

	if (len > 16)
		return !memcmp(a, b, len);
	if (len >= 8) {
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		memcpy(&u, a + len - 8, 8);
		memcpy(&v, b + len - 8, 8);
		return ((x ^ y) | (u ^ v)) == 0;
	}
	if (len >= 4) {
		memcpy(&p, a, 4);
		memcpy(&q, b, 4);
		memcpy(&r, a + len - 4, 4);
		memcpy(&t, b + len - 4, 4);
		return ((p ^ q) | (r ^ t)) == 0;
	}
	while (len--)
		if (*a++ != *b++)
			return 0;
	return 1;
}

/* Find key in bucket's chain: the slot id, or 0.  Lock-free safe: every
 * field read is bounds-checked and the walk is bounded by items; *prev (may
 * be NULL) gets the slot before it on the chain (0 = the bucket's head),
 * or on a miss the chain's last slot (0 = empty), where a writer holding
 * the stripe appends the key.  Inline: it is most of every write's and
 * read's own work. */
static inline __attribute__((always_inline)) uint32_t uc_chain_find(const ucache_t *c, uint64_t bucket,
								     uint32_t hash, const void *key, size_t klen,
								     uint32_t *prev)
{
	uint32_t id = atomic_load_explicit(&c->buckets[bucket].head, memory_order_relaxed), before = 0, steps = 0;
	const uint8_t fp = uc_fp(hash);

	while (id && id < c->items && steps++ < c->items) {
		const struct uc_slot *s = &c->slots[id];
		if (uc_slot_fp_is(s, fp) && s->keylen == klen) {
			const uint8_t *k = uc_key_at(c, id, s->val, (uint32_t)klen, s->vallen);
			if (k && uc_key_eq(k, key, klen)) {
				if (prev)
					*prev = before;
				return id;
			}
		}
		before = id;
		id = s->next;
	}
	if (prev)
		*prev = before;
	return 0;
}

/* Where slot id sits on bucket's chain: 1 and *prev (0 = head), or 0 if
 * it is not there (stripe held: the chain cannot change meanwhile).  The
 * head, where a full cache's victim usually is (chains are kept in
 * insertion order), is answered without a call. */
int uc_chain_walk_to(const ucache_t *c, uint64_t bucket, uint32_t id, uint32_t *prev);
static inline int uc_chain_position(const ucache_t *c, uint64_t bucket, uint32_t id, uint32_t *prev)
{
	if (id && atomic_load_explicit(&c->buckets[bucket].head, memory_order_relaxed) == id) {
		*prev = 0;
		return 1;
	}
	return uc_chain_walk_to(c, bucket, id, prev);
}

/* Publish reserved slot id (fields filled; hash: its key's) on bucket's
 * chain, behind slot after (the chain's last, as uc_chain_find's miss gave
 * it under this stripe lock) or at its head if after is 0, and at the
 * newest end of its stripe's SIEVE queue.  Appending keeps a chain in insertion order, so a
 * full cache's victim (its queue's oldest) is usually its chain's head:
 * unlinked without a walk to its predecessor (write.c). */
void uc_chain_link_stripe_held(ucache_t *c, struct uc_stripe *st, uint64_t bucket, uint32_t id, uint32_t after,
			       uint32_t hash);

/* The same without a seqlock window, for the rebuild (world held). */
void uc_chain_link_world_held(ucache_t *c, uint64_t bucket, uint32_t id, uint32_t hash);

/* Empty every chain and SIEVE queue, and zero the allocator's item
 * counters (rebuild and clear; the caller resets the allocators). */
void uc_index_reset_world_held(ucache_t *c);

/* Make live slot id unreachable (prev as uc_chain_find returned it): it
 * becomes RESERVED, still owning its storage (released or reused by the
 * caller; a rebuild frees it if the caller dies). */
void uc_chain_unlink_stripe_held(ucache_t *c, struct uc_stripe *st, uint64_t bucket, uint32_t id, uint32_t prev);

/* Bytes of storage an item of klen + vlen takes (its size class), for
 * "can the victim's / old chunk be reused in place" decisions. */
uint64_t uc_storage_class(const ucache_t *c, size_t klen, size_t vlen);

/* Do items of (ka, va) and (kb, vb) bytes take the same storage?  Equal
 * sizes answer without looking the classes up. */
static inline int uc_same_storage(const ucache_t *c, size_t ka, size_t va, size_t kb, size_t vb)
{
	if (c->bitmap ? ka == kb && va == vb : ka + va == kb + vb)
		return 1;
	return uc_storage_class(c, ka, va) == uc_storage_class(c, kb, vb);
}

/* Where a key of klen goes beside a value of vlen: *kofs a new key-heap
 * chunk (bitmap mode, a key that is not inline), or UC_KOFS_INLINE (none:
 * single-block, or after the value in its last block).  0 or -ENOSPC.
 * free returns such a chunk (UC_KOFS_INLINE: nothing to return). */
int uc_key_alloc_alloc_held(ucache_t *c, size_t klen, size_t vlen, uint32_t *kofs);
void uc_key_free_alloc_held(ucache_t *c, size_t klen, uint32_t kofs);
/* Storage for klen + vlen: *val (slot.val) and *kofs (uc_key_alloc_alloc_held);
 * 0, or -ENOSPC with nothing allocated. */
int uc_storage_alloc_alloc_held(ucache_t *c, size_t klen, size_t vlen, uint32_t *val, uint32_t *kofs);
/* Point slot id at storage (unreachable slot, or inside a window). */
void uc_slot_set_storage(ucache_t *c, uint32_t id, uint32_t val, uint32_t kofs);
/* Return slot id's storage (as its keylen / vallen fields describe it). */
void uc_storage_free_alloc_held(ucache_t *c, uint32_t id);
/* Value storage alone (an update keeps its key): single-block, the chunk
 * of key + value; bitmap, the blocks.  0 or -ENOSPC. */
int uc_value_alloc_alloc_held(ucache_t *c, size_t klen, size_t vlen, uint32_t *val);
void uc_value_free_alloc_held(ucache_t *c, uint32_t val, size_t klen, size_t vlen);
/* Bitmap mode: return the blocks a value shrunk in place from oldlen to
 * newlen no longer needs (the tail of its run). */
void uc_value_trim_alloc_held(ucache_t *c, uint32_t val, size_t oldlen, size_t newlen);

/* A free slot with storage for klen + vlen, RESERVED and counted in live and
 * the value bytes: its id, or 0 when there is no slot or no room. */
uint32_t uc_slot_reserve_alloc_held(ucache_t *c, size_t klen, size_t vlen);
/* Return a RESERVED slot and its storage. */
void uc_slot_release_alloc_held(ucache_t *c, uint32_t id);
/* Return a RESERVED slot whose storage was already returned. */
void uc_slot_free_alloc_held(ucache_t *c, uint32_t id);

/* Copy a value into the cache: memcpy, or streaming stores for large ones
 * (index.c says why), fenced so that a publish after it orders them. */
void uc_copy_value(void *dst, const void *src, size_t len);

/* Write key and value bytes into storage (val, kofs) that no reader can
 * reach yet (kofs is read only for a bitmap key that is not inline). */
void uc_item_fill(ucache_t *c, uint32_t val, uint32_t kofs, const void *key, size_t klen, const void *v, size_t vlen);

/* Stripe stashes (layout.h: struct uc_stripe).  put keeps RESERVED slot id
 * (just unlinked from st) with its storage: 1, or 0 if the stash is full.
 * take returns a stashed slot whose storage fits klen + vlen, its lengths
 * set and counted again, or 0.  drain returns every stashed slot to the
 * allocator (st and alloc held). */
int uc_stash_put_stripe_held(ucache_t *c, struct uc_stripe *st, uint32_t id);
uint32_t uc_stash_take_stripe_held(ucache_t *c, struct uc_stripe *st, size_t klen, size_t vlen);
void uc_stash_drain_alloc_held(ucache_t *c, struct uc_stripe *st);

/* SIEVE (purge_lru caches above 64 items): run stripe st's hand to its next
 * victim, clearing visited bits as it passes them; an expired item is taken
 * at once.  Returns a LIVE slot id, or 0 if the queue is empty. */
uint32_t uc_sieve_victim_stripe_held(ucache_t *c, struct uc_stripe *st, uint64_t now);

/* Stamp for exact LRU (caches of <= 64 usable items): a shared logical clock. */
uint32_t uc_lru_tick(ucache_t *c);

#endif
