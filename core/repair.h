/*
 * repair.h - the only place where a dead lock owner leads to a rebuild:
 * the locking wrappers every reader fallback and writer uses, the rebuild
 * itself, and the storage claims the rebuild and ucache_check share.
 */
#ifndef UCACHE_REPAIR_H
#define UCACHE_REPAIR_H

#include "layout.h"
#include "lock.h"
#include "util.h"

/* Lock a stripe, repairing the cache first if a writer died.  0, or
 * -ENOMEM when a needed repair could not allocate its scratch memory (the
 * stripe is then NOT held, and the cache stays marked for repair).  The
 * common case (owner alive, no repair pending) is inline. */
int uc_stripe_lock_slow(ucache_t *c, struct uc_stripe *st, int dead);
static inline int uc_stripe_lock(ucache_t *c, struct uc_stripe *st)
{
	int dead = uc_stripe_acquire(st);

	if (UC_LIKELY(!dead && !atomic_load_explicit(&c->hdr->repair_needed, memory_order_acquire)))
		return 0;
	return uc_stripe_lock_slow(c, st, dead);
}

static inline void uc_stripe_unlock(struct uc_stripe *st)
{
	uc_stripe_release(st);
}

/* Lock the allocator (a stripe held): 0, or -EAGAIN when its owner died
 * (the cache is marked for repair and the allocator is not held). */
int uc_alloc_lock(ucache_t *c);
void uc_alloc_unlock(ucache_t *c);

/* Every stripe, then the allocator; rebuilds if an owner died or a repair
 * was asked for.  0, or -ENOMEM if that rebuild could not run (the world
 * is held either way: call uc_world_unlock). */
int uc_world_lock(ucache_t *c);
void uc_world_unlock(ucache_t *c);

/* Rebuild index, free lists, queues and allocators from the slots that
 * prove themselves (world held, or the creator before any fork).  Items
 * kept, or -ENOMEM with nothing changed. */
int64_t uc_rebuild_world_held(ucache_t *c);

/* The item of slot id is self-consistent: bounds, key fingerprint,
 * checksum, and no writer died copying it in place.  *hash (may be NULL)
 * gets its key's hash, which names its bucket. */
int uc_item_valid(const ucache_t *c, uint32_t id, uint32_t *hash);

/* Storage claims: which heap chunks / blocks the kept items own.  prepare
 * allocates everything (nothing changed on failure); reset (rebuild only)
 * forgets the allocators' state; claim takes an item's storage (0, or -1
 * with nothing claimed: a conflict or a malformed reference). */
struct uc_claims {
	struct uc_heap_rebuild k, v;
	uint64_t *bits;   /* bitmap mode, verify: blocks claimed so far */
	int verify;
};
int uc_claims_prepare(ucache_t *c, struct uc_claims *cl, int verify);
void uc_claims_reset(ucache_t *c, struct uc_claims *cl);
int uc_claim_item(ucache_t *c, struct uc_claims *cl, uint32_t id);
void uc_claims_free(struct uc_claims *cl);

#endif
