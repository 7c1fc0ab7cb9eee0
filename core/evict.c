/*
 * evict.c - removing items other than by an explicit del: delete by slot
 * (lazy expiry, sweeps, victims), the bounded sweep of expired items, what
 * happens when a write finds no room, and clear.
 *
 * Full policy (uc_handle_full), in order, each step only if the previous
 * freed nothing:
 *   0. return the slots stripes keep in their stashes (index.c) to the
 *      allocator, or compact a packed value heap (compact.c): not a full
 *      cache yet, nothing counted or logged;
 *   1. reclaim a few expired items near the sweep cursor (they can never be
 *      served again, so making room with them is always right; stock would
 *      report "full" instead);
 *   2. purge_lru: evict.  Exact LRU on caches of <= 64 usable items (a
 *      shared logical clock stamps every access; the victim is the oldest
 *      stamp).  Above that, SIEVE per stripe (index.c): a writer that finds
 *      the cache full evicts from its own stripe's queue and reuses the
 *      victim's slot and storage without leaving its stripe lock
 *      (write.c); this step serves the rare writer whose own queue is
 *      empty, taking a victim from the stripes in turn;
 *   3. sweep_on_full N: sweep every slot for expired items, at most every N s;
 *   4. clear_on_full: delete everything.
 * "*** DANGER cache "X" is FULL !!! ***" is logged at most once a second
 * per cache (stock logs every failed write), unless ignore_full.
 *
 * Locking: callers hold no lock; each deletion takes the victim's stripe
 * lock (repair.c), clear takes the world.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compact.h"
#include "evict.h"
#include "index.h"
#include "repair.h"
#include "tags.h"
#include "util.h"

#define UC_SWEEP_SCAN_FACTOR 8

int uc_remove_stripe_held(ucache_t *c, struct uc_stripe *st, uint64_t bucket, uint32_t id, uint32_t prev)
{
	uc_chain_unlink_stripe_held(c, st, bucket, id, prev);
	if (uc_stash_put_stripe_held(c, st, id))
		return 0;
	if (uc_alloc_lock(c))
		return -EAGAIN;
	uc_slot_release_alloc_held(c, id);
	uc_alloc_unlock(c);
	return 0;
}

/* What a sweep frees: expired by now, or (tags invalidated) stale. */
static int sweepable(const ucache_t *c, uint32_t id, uint64_t now, int tags)
{
	const struct uc_slot *s = &c->slots[id];

	if (uc_slot_state(s) != UC_SLOT_LIVE)
		return 0;
	return (s->expires && s->expires <= now) || (tags && uc_tags_stale_slot(c, id));
}

/* Delete slot id (whose key hashed to hash) if it is still live on its
 * chain -- it may have been deleted or reused since it was picked -- and
 * still what it was picked for: with stale, a stale tagged entry; else
 * expired before expired_before (0: anything).  1 if deleted. */
static int delete_picked(ucache_t *c, uint32_t id, uint32_t hash, uint64_t expired_before, int stale)
{
	struct uc_slot *s = &c->slots[id];
	uint64_t bucket = uc_bucket_of(c, hash);
	struct uc_stripe *st = uc_stripe_of(c, bucket);
	uint32_t prev;
	int done = 0;

	if (uc_stripe_lock(c, st))
		return 0;
	/* the slot is this stripe's if it is on the bucket's chain: the
	 * fingerprint only spares the walk for a slot reused meanwhile */
	if (uc_slot_state(s) == UC_SLOT_LIVE && uc_slot_fp_is(s, uc_fp(hash)) &&
	    uc_chain_position(c, bucket, id, &prev) &&
	    (stale ? uc_tags_stale_slot(c, id) : !expired_before || (s->expires && s->expires < expired_before)))
		done = !uc_remove_stripe_held(c, st, bucket, id, prev);
	uc_stripe_unlock(st);
	if (done && expired_before)
		uc_count(c, UC_CTR_EXPIRATIONS, 1);
	return done;
}

/* Free one slot a sweep picked: an expired item, else a stale tagged one. */
static int sweep_slot(ucache_t *c, uint32_t id, uint64_t now)
{
	const struct uc_slot *s = &c->slots[id];
	uint32_t hash = uc_slot_hash(c, id);

	if (s->expires && s->expires <= now)
		return delete_picked(c, id, hash, now + 1, 0);
	return delete_picked(c, id, hash, 0, 1);
}

int uc_delete_slot(ucache_t *c, uint32_t id, uint32_t hash, uint64_t expired_before)
{
	return delete_picked(c, id, hash, expired_before, 0);
}

int64_t ucache_sweep(ucache_t *c, uint64_t now, uint64_t budget)
{
	uint64_t limit = atomic_load_explicit(&c->hdr->slot_unused, memory_order_relaxed);
	uint64_t scan = budget * UC_SWEEP_SCAN_FACTOR, start, i;
	int64_t freed = 0;
	int tags = uc_tags_invalidated(c);

	/* nothing can expire and no tag was invalidated: don't read a single
	 * slot (a full purge_lru cache of items without TTL called this on
	 * every eviction) */
	if (limit <= 1 || !budget || (uc_sum(c, UC_CTR_EXPIRING) <= 0 && !tags))
		return 0;
	if (scan > limit - 1)
		scan = limit - 1;
	start = atomic_fetch_add(&c->hdr->sweep_cursor, scan);
	for (i = 0; i < scan && (uint64_t)freed < budget; i++) {
		uint32_t id = (uint32_t)(1 + (start + i) % (limit - 1));
		if (sweepable(c, id, now, tags))
			freed += sweep_slot(c, id, now);
	}
	return freed;
}

/* Visit every used slot once and free the expired ones (sweep_on_full).
 * Unlike a loop of ucache_sweep() calls, it counts the slots it visited,
 * not the ones it asked for. */
static int64_t sweep_all(ucache_t *c, uint64_t now)
{
	uint32_t limit = atomic_load_explicit(&c->hdr->slot_unused, memory_order_relaxed), id;
	int64_t freed = 0;
	int tags = uc_tags_invalidated(c);

	if (uc_sum(c, UC_CTR_EXPIRING) <= 0 && !tags)
		return 0;
	for (id = 1; id < limit && id < c->items; id++) {
		if (sweepable(c, id, now, tags))
			freed += sweep_slot(c, id, now);
	}
	return freed;
}

/* Age of a stamp against now.  A stamp newer than our snapshot of the clock
 * (touched by another process during the scan) is age 0, not 2^32 - 1:
 * reading the difference unsigned made exact LRU evict the hottest key. */
static uint32_t age_of(uint32_t now, uint32_t stamp)
{
	int32_t age = (int32_t)(now - stamp);

	return age < 0 ? 0 : (uint32_t)age;
}

static uint32_t pick_exact(ucache_t *c)
{
	uint32_t id, best = 0, clock = (uint32_t)atomic_load(&c->hdr->lru_clock), best_age = 0;
	uint32_t limit = atomic_load_explicit(&c->hdr->slot_unused, memory_order_relaxed);

	for (id = 1; id < limit && id < c->items; id++) {
		const struct uc_slot *s = &c->slots[id];
		uint32_t age = age_of(clock, atomic_load_explicit(&c->atime[id], memory_order_relaxed));
		if (uc_slot_state(s) == UC_SLOT_LIVE && (!best || age > best_age)) {
			best = id;
			best_age = age;
		}
	}
	return best;
}

/* SIEVE victim from another stripe than the writer's (its queue was
 * empty): stripes in turn from a shared cursor.  1 if one was evicted. */
static int evict_sieve(ucache_t *c, uint64_t now)
{
	uint32_t tries;

	for (tries = 0; tries <= c->stripe_mask; tries++) {
		struct uc_stripe *st = &c->stripes[atomic_fetch_add(&c->hdr->evict_cursor, 1) & c->stripe_mask];
		uint32_t id, prev;
		int done = 0;
		if (uc_stripe_lock(c, st))
			return 0;
		id = uc_sieve_victim_stripe_held(c, st, now);
		if (id) {
			uint64_t bucket = uc_bucket_of(c, c->links[id].hash);
			int was_expired = c->slots[id].expires && c->slots[id].expires <= now;
			done = uc_chain_position(c, bucket, id, &prev) && !uc_remove_stripe_held(c, st, bucket, id, prev);
			if (done)
				uc_count(c, was_expired ? UC_CTR_EXPIRATIONS : UC_CTR_EVICTIONS, 1);
		}
		uc_stripe_unlock(st);
		if (done)
			return 1;
	}
	return 0;
}

static int evict_exact(ucache_t *c)
{
	int tries;

	/* a victim can vanish under us (another writer evicted or deleted it):
	 * pick again rather than report a full cache that is being emptied */
	for (tries = 0; tries < 16; tries++) {
		uint32_t id = pick_exact(c);
		if (!id)
			return 0;
		if (uc_delete_slot(c, id, uc_slot_hash(c, id), 0)) {
			uc_count(c, UC_CTR_EVICTIONS, 1);
			return 1;
		}
	}
	return 0;
}

static void log_full(ucache_t *c, uint64_t now)
{
	uint64_t last = atomic_load(&c->hdr->full_logged_at);

	if (c->cfg.ignore_full || last == now || !atomic_compare_exchange_strong(&c->hdr->full_logged_at, &last, now))
		return;
	if (c->cfg.purge_lru)
		uc_log(UCACHE_LOG_INFO, "LRU item will be purged from cache \"%s\"", c->cfg.name);
	else
		uc_log(UCACHE_LOG_WARN, "*** DANGER cache \"%s\" is FULL !!! ***", c->cfg.name);
}

static int sweep_on_full(ucache_t *c, uint64_t now)
{
	uint64_t next = atomic_load(&c->hdr->next_full_sweep);

	if (!c->cfg.sweep_on_full || now < next ||
	    !atomic_compare_exchange_strong(&c->hdr->next_full_sweep, &next, now + c->cfg.sweep_on_full))
		return 0;
	return sweep_all(c, now) > 0;
}

void uc_note_full(ucache_t *c, uint64_t now)
{
	uc_count(c, UC_CTR_FULL, 1);
	log_full(c, now);
}

/* Return every stripe's stash to the allocator: 1 if anything was stashed. */
static int drain_stashes(ucache_t *c)
{
	uint32_t i;
	int any = 0;

	if (!uc_sum_stashed(c))
		return 0;
	for (i = 0; i <= c->stripe_mask; i++) {
		struct uc_stripe *st = &c->stripes[i];
		if (!st->nstash) /* racy peek: only skips the lock */
			continue;
		if (uc_stripe_lock(c, st))
			return any;
		if (st->nstash && !uc_alloc_lock(c)) {
			uc_stash_drain_alloc_held(c, st);
			uc_alloc_unlock(c);
			any = 1;
		}
		uc_stripe_unlock(st);
	}
	return any;
}

int uc_handle_full(ucache_t *c)
{
	uint64_t now = ucache_now();
	int64_t n;

	/* slots kept in stripe stashes are free space: not full yet */
	if (drain_stashes(c))
		return 1;
	/* nor is a packed heap whose pages other size classes hold */
	if (uc_compact(c))
		return 1;
	uc_note_full(c, now);
	if (ucache_sweep(c, now, 16) > 0)
		return 1;
	if (c->cfg.purge_lru && (c->sieve ? evict_sieve(c, now) : evict_exact(c)))
		return 1;
	if (sweep_on_full(c, now))
		return 1;
	if (c->cfg.clear_on_full && (n = ucache_clear(c)) > 0) {
		uc_count(c, UC_CTR_EVICTIONS, (uint64_t)n);
		return 1;
	}
	return 0;
}

/* Reset slots, index and allocators to empty (world held). */
static void reset_world_held(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;
	uint32_t id, limit = atomic_load(&h->slot_unused);

	for (id = 1; id < limit && id < c->items; id++)
		uc_slot_set_state(&c->slots[id], UC_SLOT_FREE);
	uc_index_reset_world_held(c);
	atomic_store(&h->slot_unused, 1);
	uc_format_allocators(c);
	if (h->bitmap)
		memset(c->bm.words, 0, uc_bitmap_words(h->blocks) * sizeof(uint64_t));
}

int64_t ucache_clear(ucache_t *c)
{
	int64_t n = 0;

	if (!uc_world_lock(c)) {
		n = (int64_t)(atomic_load(&c->hdr->live) - uc_sum_stashed(c));
		reset_world_held(c);
	}
	uc_world_unlock(c);
	if (c->cfg.lastmod)
		atomic_store(&c->hdr->last_modified_at, ucache_now());
	return n;
}
