/*
 * compact.c - emptying sparse pages of a packed value heap, so that a
 * write finds room for its size class whenever stock would have a block.
 *
 * A packed heap (layout.c: the largest item is at most 1/4 of a 4 KiB
 * page) serves each page to one size class, so a cache whose item sizes
 * shift can have every page in use by classes it no longer writes.
 * heap.c sizes the heap so that, when a write then finds no free page and
 * no free chunk of its class, some class has more than a page's worth of
 * free chunks (uc_heap_packed_pages).  Compaction moves the live chunks
 * of up to UC_COMPACT_PAGES of that class's sparsest pages into its other
 * pages, one item at a time the way an update moves a value: copy, then
 * publish the new offset and checksum in the stripe's seqlock window
 * (lock-free readers retry as across an update), then free the old chunk.
 *
 * When: uc_handle_full (evict.c) calls it before anything is evicted or
 * reported full.  Locking: the world (every stripe, then alloc): chunks do
 * not name their slot, so it scans the slot table for the owners of the
 * chosen pages' chunks (~10 ms for 1M slots), once per up to 64 pages.
 * A crash midway leaves each item either at its old chunk or at its new
 * one with its checksum (else the rebuild drops it): the repair that the
 * next world lock runs rebuilds the heap from the slots.
 */
#include "compact.h"
#include "index.h"
#include "repair.h"

#define UC_COMPACT_PAGES 64

/* Move slot id's chunk (key and value) to another chunk of its class. */
static void move_item(ucache_t *c, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint64_t size = (uint64_t)s->keylen + s->vallen, from = (uint64_t)s->val * UC_HEAP_UNIT;
	struct uc_stripe *st;
	int64_t to;

	if (from + size > c->size_vdata || (to = uc_heap_alloc(&c->vheap, size)) < 0)
		return; /* damage, or no room (heap.c's count says never): the page stays in use */
	memcpy(c->blocks + to, c->blocks + from, size);
	if (uc_slot_state(s) != UC_SLOT_LIVE) { /* stashed: unreachable, no checksum to keep */
		s->val = (uint32_t)((uint64_t)to / UC_HEAP_UNIT);
	} else {
		uint32_t hash = uc_slot_hash(c, id);
		st = uc_stripe_of_hash(c, hash);
		uc_write_begin(st);
		s->val = (uint32_t)((uint64_t)to / UC_HEAP_UNIT);
		s->csum = uc_slot_csum(c, hash, s->keylen, c->blocks + to + s->keylen, s->vallen, s->expires, s->val);
		uc_write_end(st);
	}
	uc_heap_free(&c->vheap, from, size);
}

/* 1 if a page is free afterwards. */
static int compact_world_held(ucache_t *c)
{
	uint32_t pages[UC_COMPACT_PAGES], n, i, id, limit = atomic_load(&c->hdr->slot_unused);

	if (!uc_heap_exhausted(&c->vheap))
		return 1; /* another writer freed a page meanwhile */
	n = uc_heap_drain_begin(&c->vheap, pages, UC_COMPACT_PAGES);
	for (id = 1; n && id < limit && id < c->items; id++)
		if (uc_slot_state(&c->slots[id]) != UC_SLOT_FREE &&
		    uc_heap_draining(&c->vheap, (uint64_t)c->slots[id].val * UC_HEAP_UNIT))
			move_item(c, id);
	for (i = 0; i < n; i++)
		uc_heap_drain_end(&c->vheap, pages[i]);
	return !uc_heap_exhausted(&c->vheap);
}

int uc_compact(ucache_t *c)
{
	int freed = 0;

	if (c->bitmap || !c->hdr->vpage || !uc_heap_exhausted(&c->vheap))
		return 0;
	if (!uc_world_lock(c))
		freed = compact_world_held(c);
	uc_world_unlock(c);
	return freed;
}
