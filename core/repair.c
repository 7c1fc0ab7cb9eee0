/*
 * repair.c - recovery from a process that died holding a lock, and the
 * rebuild that store recovery and ucache_repair() run too.
 *
 * Protocol: whoever acquires a lock with EOWNERDEAD (lock.c) raises
 * hdr->repair_needed and lets go; every writer that then locks a stripe
 * sees the flag and joins uc_world_lock(), where the first one rebuilds
 * index, free lists, SIEVE queues and allocators from the slot table,
 * dropping any item whose bounds, hash or checksum is wrong or whose writer
 * died copying it in place (UC_SLOT_DIRTY).  So a writer killed at any
 * instruction costs at most its own half-done item.  Readers take no lock;
 * one that finds a stripe's seq odd for long (a writer died inside its
 * window) falls back to uc_stripe_lock(), which repairs.
 *
 * The rebuild trusts nothing but live slots that prove themselves: key and
 * value within the geometry, the key's hash, the checksum, storage not
 * claimed by an earlier item, key not already indexed.  Everything else
 * becomes free.  It touches every slot below slot_unused and every bucket:
 * O(items), only ever run after a crash.  All its scratch memory (one bit
 * per 16 heap bytes: 1.6 MiB for 100k items of keysize 2048 + 128) is
 * allocated before anything is changed: when that fails, the cache stays
 * as it was, still marked for repair, and writers fail with -ENOMEM instead
 * of working on a half-reset allocator.
 *
 * repair_needed: 0 = no, UC_REPAIR_DEAD = a lock owner died, UC_REPAIR_ASKED
 * = ucache_repair() asked for a rebuild.  Written with atomic stores by any
 * process; cleared only by a rebuild that completed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "lock.h"
#include "repair.h"
#include "util.h"

static void mark_repair(ucache_t *c)
{
	atomic_store(&c->hdr->repair_needed, UC_REPAIR_DEAD);
}

int uc_stripe_lock_slow(ucache_t *c, struct uc_stripe *st, int dead)
{
	int rc;

	for (;;) {
		if (dead)
			mark_repair(c);
		if (!atomic_load_explicit(&c->hdr->repair_needed, memory_order_acquire))
			return 0;
		uc_stripe_release(st);
		rc = uc_world_lock(c);
		uc_world_unlock(c);
		if (rc)
			return rc;
		dead = uc_stripe_acquire(st);
	}
}

int uc_alloc_lock(ucache_t *c)
{
	if (UC_LIKELY(!uc_alloc_acquire(c)))
		return 0;
	mark_repair(c);
	uc_alloc_release(c);
	return -EAGAIN;
}

void uc_alloc_unlock(ucache_t *c)
{
	uc_alloc_release(c);
}

int uc_world_lock(ucache_t *c)
{
	int dead = uc_world_acquire(c);
	uint32_t why = dead ? UC_REPAIR_DEAD : atomic_load(&c->hdr->repair_needed);
	int64_t kept;

	if (!why)
		return 0;
	if (dead)
		mark_repair(c);
	kept = uc_rebuild_world_held(c);
	if (kept < 0)
		return (int)kept;
	atomic_fetch_add(&c->hdr->repairs, 1);
	atomic_store(&c->hdr->repair_needed, 0);
	if (why == UC_REPAIR_DEAD)
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": a process died holding a lock; repaired, %lld items kept",
		       c->cfg.name, (long long)kept);
	return 0;
}

void uc_world_unlock(ucache_t *c)
{
	uc_world_release(c);
}

/* ----------------------------------------------------------------- claims */

int uc_item_valid(const ucache_t *c, uint32_t id, uint32_t *hash)
{
	const struct uc_slot *s = &c->slots[id];
	const uint8_t *k, *v;
	uint32_t h;

	if (!s->keylen || s->keylen > c->hdr->keysize || !s->vallen || s->vallen > c->max_value || uc_slot_is_dirty(s))
		return 0;
	k = uc_slot_key(c, id);
	v = uc_slot_val(c, id);
	if (!k || !v)
		return 0;
	h = uc_key_hash(c, k, s->keylen);
	if (hash)
		*hash = h;
	return uc_slot_fp_is(s, uc_fp(h)) &&
	       uc_slot_csum(c, h, s->keylen, v, s->vallen, s->expires, s->val) == s->csum;
}

static uint64_t nblocks(const ucache_t *c, const struct uc_slot *s)
{
	return uc_div_ceil(s->vallen, c->hdr->blocksize);
}

int uc_claims_prepare(ucache_t *c, struct uc_claims *cl, int verify)
{
	memset(cl, 0, sizeof(*cl));
	cl->verify = cl->k.verify = cl->v.verify = verify;
	if (uc_heap_rebuild_prepare(&c->kheap, &cl->k) || uc_heap_rebuild_prepare(&c->vheap, &cl->v))
		return -1;
	if (c->hdr->bitmap && verify && !(cl->bits = uc_calloc(uc_bitmap_words(c->hdr->blocks) + 1, sizeof(uint64_t))))
		return -1;
	return 0;
}

void uc_claims_reset(ucache_t *c, struct uc_claims *cl)
{
	uc_heap_rebuild_reset(&c->kheap, &cl->k);
	uc_heap_rebuild_reset(&c->vheap, &cl->v);
	if (c->hdr->bitmap) {
		memset(c->bm.words, 0, uc_bitmap_words(c->hdr->blocks) * sizeof(uint64_t));
		c->hdr->bm.used = 0;
	}
}

/* Blocks of a bitmap item: rebuild marks the live bitmap; verify checks
 * they are marked there and marks its own copy. */
static int claim_blocks(ucache_t *c, struct uc_claims *cl, const struct uc_slot *s)
{
	struct uc_bitmap mine = { .st = &(struct uc_bitmap_state){ .nbits = c->hdr->blocks }, .words = cl->bits };

	if (!cl->verify)
		return uc_bitmap_claim(&c->bm, s->val, nblocks(c, s));
	if (!uc_bitmap_all_set(&c->bm, s->val, nblocks(c, s)))
		return -1;
	return uc_bitmap_claim(&mine, s->val, nblocks(c, s));
}

int uc_claim_item(ucache_t *c, struct uc_claims *cl, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];
	uint64_t koff;

	if (!c->hdr->bitmap)
		return uc_heap_claim(&c->vheap, &cl->v, (uint64_t)s->val * UC_HEAP_UNIT, (uint64_t)s->keylen + s->vallen);
	if (uc_slot_kofs(c, id) == UC_KOFS_INLINE)
		return claim_blocks(c, cl, s) ? -1 : 0;
	koff = (uint64_t)c->kofs[id] * UC_HEAP_UNIT;
	if (uc_heap_claim(&c->kheap, &cl->k, koff, s->keylen))
		return -1;
	if (!claim_blocks(c, cl, s))
		return 0;
	uc_heap_unclaim(&c->kheap, &cl->k, koff, s->keylen);
	return -1;
}

/* Undo uc_claim_item (rebuild: the item is dropped after all). */
static void unclaim_item(ucache_t *c, struct uc_claims *cl, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];

	if (!c->hdr->bitmap) {
		uc_heap_unclaim(&c->vheap, &cl->v, (uint64_t)s->val * UC_HEAP_UNIT, (uint64_t)s->keylen + s->vallen);
		return;
	}
	if (uc_slot_kofs(c, id) != UC_KOFS_INLINE)
		uc_heap_unclaim(&c->kheap, &cl->k, (uint64_t)c->kofs[id] * UC_HEAP_UNIT, s->keylen);
	uc_bitmap_free(&c->bm, s->val, nblocks(c, s));
}

void uc_claims_free(struct uc_claims *cl)
{
	uc_heap_rebuild_free(&cl->k);
	uc_heap_rebuild_free(&cl->v);
	free(cl->bits);
	cl->bits = NULL;
}

/* ---------------------------------------------------------------- rebuild */

/* Keep slot id if it proves itself and its key is not indexed yet. */
static int keep_item(ucache_t *c, struct uc_claims *cl, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint32_t hash;
	uint64_t b;

	if (uc_slot_state(s) != UC_SLOT_LIVE || !uc_item_valid(c, id, &hash) || uc_claim_item(c, cl, id))
		return 0;
	b = uc_bucket_of(c, hash);
	if (uc_chain_find(c, b, hash, uc_slot_key(c, id), s->keylen, NULL)) {
		unclaim_item(c, cl, id); /* duplicate key: keep the first */
		return 0;
	}
	uc_slot_clean(s);
	uc_chain_link_world_held(c, b, id, hash);
	atomic_fetch_add_explicit(&c->hdr->live, 1, memory_order_relaxed);
	uc_count(c, UC_CTR_BYTES, (int64_t)s->vallen);
	return 1;
}

int64_t uc_rebuild_world_held(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;
	struct uc_claims cl;
	uint32_t id, unused = atomic_load(&h->slot_unused);
	uint64_t dropped = 0;

	if (uc_claims_prepare(c, &cl, 0)) {
		uc_log(UCACHE_LOG_ERROR, "cache \"%s\": out of memory for the repair's scratch space; the cache is "
		       "left as it was and writes fail until a repair succeeds", c->cfg.name);
		uc_claims_free(&cl);
		return -ENOMEM;
	}
	uc_claims_reset(c, &cl);
	uc_index_reset_world_held(c);
	unused = unused < h->items ? unused : (uint32_t)h->items;
	atomic_store(&h->slot_unused, unused ? unused : 1);
	for (id = atomic_load(&h->slot_unused); id-- > 1;) {
		struct uc_slot *s = &c->slots[id];
		if (keep_item(c, &cl, id))
			continue;
		dropped += uc_slot_state(s) == UC_SLOT_LIVE;
		uc_slot_set_state(s, UC_SLOT_FREE);
		s->next = h->slot_free;
		h->slot_free = id;
	}
	uc_heap_rebuild_end(&c->kheap, &cl.k);
	uc_heap_rebuild_end(&c->vheap, &cl.v);
	uc_claims_free(&cl);
	if (dropped)
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": repair dropped %llu damaged items", c->cfg.name,
		       (unsigned long long)dropped);
	return (int64_t)atomic_load(&h->live);
}

int64_t ucache_repair(ucache_t *c)
{
	int64_t n;
	int rc;

	atomic_store(&c->hdr->repair_needed, UC_REPAIR_ASKED);
	rc = uc_world_lock(c);
	n = rc ? rc : (int64_t)atomic_load(&c->hdr->live);
	uc_world_unlock(c);
	return n;
}
