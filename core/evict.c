/*
 * evict.c - what happens when a write finds no room, the bounded sweep of
 * expired items, and clear.
 *
 * Full policy (uc_handle_full), in order, each step only if the previous
 * freed nothing:
 *   1. reclaim a few expired items near the sweep cursor (they can never be
 *      served again, so making room with them is always right; stock would
 *      report "full" instead);
 *   2. purge_lru: evict the least recently used item.  Exact on caches of
 *      <= 64 usable items (a shared logical clock stamps every access and
 *      the victim is the oldest stamp).  Above that, Redis-style sampling:
 *      the oldest of 8 random live items by 4 ms access tick (the victim
 *      is in the oldest 12% with probability 1 - 0.88^8 > 64%; 16 samples
 *      doubled the cost of a full-cache insert for little gain), and no
 *      read ever moves an item in a shared list;
 *   3. sweep_on_full N: sweep every slot for expired items, at most every N s;
 *   4. clear_on_full: delete everything.
 * "*** DANGER cache "X" is FULL !!! ***" is logged at most once a second
 * per cache (stock logs every failed write), unless ignore_full.
 *
 * Locking: victims and expired items are deleted through uc_delete_slot,
 * which takes the victim's stripe lock itself, so callers hold no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache_int.h"
#include "util.h"

#define UC_LRU_SAMPLES 8
#define UC_SWEEP_SCAN_FACTOR 8

int uc_delete_slot(ucache_t *c, uint32_t id, uint64_t expired_before)
{
	struct uc_slot *s = &c->slots[id];
	uint64_t bucket = uc_bucket_of(c, s->hash);
	struct uc_stripe *st = uc_stripe_of(c, bucket);
	uint32_t prev = 0, cur, steps = 0;
	int done = 0;

	uc_stripe_lock(c, st);
	for (cur = atomic_load(&c->buckets[bucket].head); cur && steps++ < c->items; cur = c->slots[cur].next) {
		if (cur == id)
			break;
		prev = cur;
	}
	if (cur == id && s->state == UC_SLOT_LIVE &&
	    (!expired_before || (s->expires && s->expires < expired_before))) {
		uc_unlink_locked(c, st, bucket, id, prev);
		done = 1;
	}
	uc_stripe_unlock(st);
	if (done && expired_before)
		atomic_fetch_add(&c->hdr->expirations, 1);
	return done;
}

int64_t ucache_sweep(ucache_t *c, uint64_t now, uint64_t budget)
{
	uint64_t limit = c->hdr->slot_unused, scan = budget * UC_SWEEP_SCAN_FACTOR, start, i;
	int64_t freed = 0;

	/* nothing can expire: don't read a single slot (a full purge_lru cache
	 * of items without TTL called this on every eviction) */
	if (limit <= 1 || !budget || atomic_load_explicit(&c->hdr->expiring, memory_order_relaxed) <= 0)
		return 0;
	if (scan > limit - 1)
		scan = limit - 1;
	start = atomic_fetch_add(&c->hdr->sweep_cursor, scan);
	for (i = 0; i < scan && (uint64_t)freed < budget; i++) {
		uint32_t id = (uint32_t)(1 + (start + i) % (limit - 1));
		const struct uc_slot *s = &c->slots[id];
		if (s->state == UC_SLOT_LIVE && s->expires && s->expires <= now)
			freed += uc_delete_slot(c, id, now + 1);
	}
	return freed;
}

/* Sweep the whole slot table once (sweep_on_full). */
static int64_t sweep_all(ucache_t *c, uint64_t now)
{
	uint64_t limit = c->hdr->slot_unused, done = 0;
	int64_t freed = 0;

	while (done < limit) {
		freed += ucache_sweep(c, now, 1024);
		done += 1024 * UC_SWEEP_SCAN_FACTOR;
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

	for (id = 1; id < c->hdr->slot_unused; id++) {
		const struct uc_slot *s = &c->slots[id];
		uint32_t age = age_of(clock, atomic_load_explicit(&s->atime, memory_order_relaxed));
		if (s->state == UC_SLOT_LIVE && (!best || age > best_age)) {
			best = id;
			best_age = age;
		}
	}
	return best;
}

static uint32_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 32);
}

static uint32_t pick_sampled(ucache_t *c)
{
	static __thread uint64_t seed;
	uint32_t limit = c->hdr->slot_unused, best = 0, best_age = 0, now = uc_lru_stamp(c), probes, found = 0;

	if (!seed)
		seed = (uint64_t)(uintptr_t)&seed * 0x9e3779b97f4a7c15ull | 1;
	for (probes = 0; limit > 1 && found < UC_LRU_SAMPLES && probes < UC_LRU_SAMPLES * 8; probes++) {
		uint32_t id = 1 + rnd(&seed) % (limit - 1);
		const struct uc_slot *s = &c->slots[id];
		uint32_t age = age_of(now, atomic_load_explicit(&s->atime, memory_order_relaxed));
		if (s->state != UC_SLOT_LIVE)
			continue;
		found++;
		if (!best || age > best_age) {
			best = id;
			best_age = age;
		}
	}
	return best ? best : pick_exact(c); /* sparse table: scan */
}

static int evict_lru(ucache_t *c)
{
	int tries;

	/* a victim can vanish under us (another writer evicted or deleted it):
	 * pick again rather than report a full cache that is being emptied */
	for (tries = 0; tries < 16; tries++) {
		uint32_t id = c->exact_lru ? pick_exact(c) : pick_sampled(c);
		if (!id)
			return 0;
		if (uc_delete_slot(c, id, 0)) {
			atomic_fetch_add(&c->hdr->evictions, 1);
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

int uc_handle_full(ucache_t *c)
{
	uint64_t now = ucache_now();
	int64_t n;

	atomic_fetch_add(&c->hdr->full, 1);
	log_full(c, now);
	if (ucache_sweep(c, now, 16) > 0)
		return 1;
	if (c->cfg.purge_lru && evict_lru(c))
		return 1;
	if (sweep_on_full(c, now))
		return 1;
	if (c->cfg.clear_on_full && (n = ucache_clear(c)) > 0) {
		atomic_fetch_add(&c->hdr->evictions, (uint64_t)n);
		return 1;
	}
	return 0;
}

/* Reset slots, index and allocators to empty (world lock held). */
static void reset_locked(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;
	uint32_t id;

	for (id = 1; id < h->slot_unused; id++)
		c->slots[id].state = UC_SLOT_FREE;
	memset((void *)c->buckets, 0, h->nbuckets * sizeof(struct uc_bucket));
	h->slot_free = 0;
	h->slot_unused = 1;
	h->live = 0;
	atomic_store(&h->value_bytes, 0);
	atomic_store(&h->expiring, 0);
	uc_format_allocators(c);
	if (h->bitmap)
		memset(c->bm.words, 0, uc_bitmap_words(h->blocks) * sizeof(uint64_t));
}

int64_t ucache_clear(ucache_t *c)
{
	int64_t n;

	uc_world_lock(c);
	n = (int64_t)c->hdr->live;
	reset_locked(c);
	uc_world_unlock(c);
	if (c->cfg.lastmod)
		atomic_store(&c->hdr->last_modified_at, ucache_now());
	return n;
}
