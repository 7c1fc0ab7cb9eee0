/*
 * cache_int.h - the shared-memory layout of one cache and the per-process
 * handle that points into it.  Internal to core/; see cache.c for the
 * layout diagram and the locking protocol, ops.c for the read path.
 */
#ifndef UCACHE_CACHE_INT_H
#define UCACHE_CACHE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bitmap.h"
#include "hash.h"
#include "heap.h"
#include "ucache.h"

#define UC_MAGIC "UCACHE\0\1"
#define UC_LAYOUT_VERSION 4u /* 2: 8-byte buckets, expiry in the checksum; 3: 64 KiB value pages, expiring count; 4: value region capped at 8 GiB */
#define UC_CPU_LINES 64
#define UC_STRIPES_MAX 256
#define UC_INLINE_KEY 16   /* keys up to this length live in their slot */
#define UC_EXACT_LRU_MAX 65 /* caches of <= 64 usable items get exact LRU */
#define UC_CACHELINE 64
#define UC_REPAIR_DEAD 1
#define UC_REPAIR_ASKED 2

enum uc_slot_state { UC_SLOT_FREE = 0, UC_SLOT_RESERVED = 1, UC_SLOT_LIVE = 2 };

/* One item header: exactly one cache line.  Fields other than atime and
 * hits change only under the slot's stripe lock (and inside that stripe's
 * seqlock window once the slot is reachable). */
struct uc_slot {
	uint32_t next;          /* next slot of the bucket chain, or free stack */
	uint32_t hash;          /* raw key hash */
	uint16_t keylen;
	uint8_t state;          /* enum uc_slot_state */
	uint8_t flags;
	uint32_t vallen;
	uint64_t val;           /* heap byte offset, or first block (bitmap) */
	uint64_t expires;       /* absolute seconds, 0 = never */
	uint32_t key;           /* key heap offset / 16 when keylen > UC_INLINE_KEY */
	uint32_t csum;          /* uc_item_csum(key, value, expires) */
	_Atomic uint32_t atime; /* LRU stamp (exact clock or coarse tick) */
	_Atomic uint32_t hits;  /* exact below 64, then an unbiased estimate (ops.c) */
	uint8_t ikey[UC_INLINE_KEY];
};
_Static_assert(sizeof(struct uc_slot) == 64, "slot must be one cache line");

/* One index bucket: the head of its chain, and where the head's value
 * lives (in 64-byte lines from the value region) so a reader can start
 * fetching the value while it still compares the key in the slot: a hit
 * then costs two dependent cache misses instead of three.  vhint is only a
 * prefetch hint (stale or 0 is harmless); writers refresh it under the
 * stripe lock whenever the head or the head's value moves. */
struct uc_bucket {
	_Atomic uint32_t head;
	_Atomic uint32_t vhint;
};

struct uc_stripe {
	pthread_mutex_t lock;   /* robust, process-shared */
	_Atomic uint32_t seq;   /* seqlock: odd while a writer changes the stripe */
} __attribute__((aligned(UC_CACHELINE)));

struct uc_cpu {
	_Atomic uint64_t hits, misses;
} __attribute__((aligned(UC_CACHELINE)));

struct uc_hdr {
	char magic[8];
	uint32_t version, hdr_size;
	/* geometry, written once by uc_format() */
	uint64_t items, blocks, blocksize, keysize, nbuckets, nstripes, hash, bitmap;
	uint64_t off_stripes, off_buckets, off_slots, off_kpages, off_vpages, off_bitmap;
	uint64_t off_kdata, off_vdata, size_kdata, size_vdata, total;
	uint64_t created_at;
	char name[64];           /* cache name (informative, may be truncated) */
	uint32_t clean;          /* store: 1 after a clean close, 0 while open */
	uint32_t opens;          /* store: times the file was opened */

	/* allocator state: only under alloc_lock */
	pthread_mutex_t alloc_lock __attribute__((aligned(UC_CACHELINE)));
	uint32_t slot_free;     /* stack of freed slots (through slot.next), 0 = empty */
	uint32_t slot_unused;   /* slots [slot_unused, items) never used */
	uint64_t live;          /* slots allocated (reserved or live) */
	_Atomic uint64_t value_bytes; /* sum of vallen of allocated slots (atomic: in-place updates) */
	struct uc_heap_state kheap, vheap;
	struct uc_bitmap_state bm;

	/* lock-free shared words */
	_Atomic uint32_t repair_needed __attribute__((aligned(UC_CACHELINE)));
	_Atomic uint64_t sweep_cursor;
	_Atomic uint64_t lru_clock;
	_Atomic uint64_t full_logged_at, next_full_sweep, last_modified_at;
	_Atomic uint64_t full, evictions, expirations, repairs;
	_Atomic int64_t expiring;   /* live items with an expiry (0: no sweep can free anything) */
	struct uc_cpu cpu[UC_CPU_LINES];
};

struct ucache {
	struct ucache_config cfg;
	uint8_t *base;
	size_t maplen;
	struct uc_hdr *hdr;
	struct uc_stripe *stripes;
	struct uc_bucket *buckets;
	struct uc_slot *slots;
	struct uc_heap kheap, vheap;
	struct uc_bitmap bm;
	uint8_t *blocks;
	uc_hash_fn hashfn;
	uint64_t bucket_mask;
	uint32_t stripe_mask;
	uint32_t items;
	uint64_t max_value;
	int exact_lru;
	/* store: pending store_migrate import (store.c) */
	uint8_t *import_base;
	size_t import_len;
	char *import_tmp;       /* the new file, renamed over cfg.store when done */
	int store_fd;           /* store: open and flock()ed while mapped, else -1 */
};

/* Page size of the single-block value heap.  A page per slot is what keeps
 * stock capacity (heap.c); pages larger than a block let small values share
 * them: with blocksize 128 a 100-byte value costs a 112-byte chunk instead
 * of a 128-byte page plus a 24-byte descriptor.  64 KiB pages, shrunk so
 * the region's address space stays within 8 GiB (hosts with strict
 * overcommit or ulimit -v count it), never below a block: 1M items get
 * 8 KiB pages, still 73 small values per page. */
static inline uint64_t uc_vpage_size(uint64_t blocksize, uint64_t items)
{
	uint64_t page = 65536, block = (blocksize + 15) & ~15ull;

	while (page > 4096 && items * page > (1ull << 33))
		page /= 2;
	return page > block ? page : block;
}

/* ---- cache.c: locks */
/* Lock a stripe; repairs the cache first if a writer died.  Never fails. */
void uc_stripe_lock(ucache_t *c, struct uc_stripe *st);
void uc_stripe_unlock(struct uc_stripe *st);
/* Lock the allocator (stripe held): 0, or -EAGAIN when its owner died (the
 * cache is marked for repair and the allocator is not held). */
int uc_alloc_lock(ucache_t *c);
void uc_alloc_unlock(ucache_t *c);
/* Every stripe, then the allocator; repairs if needed.  uc_world_unlock
 * bumps every stripe's sequence so readers in flight retry. */
void uc_world_lock(ucache_t *c);
void uc_world_unlock(ucache_t *c);

static inline void uc_write_begin(struct uc_stripe *st)
{
	atomic_store_explicit(&st->seq, atomic_load_explicit(&st->seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static inline void uc_write_end(struct uc_stripe *st)
{
	atomic_store_explicit(&st->seq, atomic_load_explicit(&st->seq, memory_order_relaxed) + 1,
			      memory_order_release);
}

static inline uint64_t uc_bucket_of(const ucache_t *c, uint32_t hash)
{
	return uc_hash_mix(hash) & c->bucket_mask;
}

static inline struct uc_stripe *uc_stripe_of(const ucache_t *c, uint64_t bucket)
{
	return &c->stripes[bucket & c->stripe_mask];
}

/* Refresh bucket b's value hint from its head slot (stripe held). */
void uc_bucket_hint(ucache_t *c, uint64_t b);

/* ---- ops.c: shared helpers */
const uint8_t *uc_slot_key(const ucache_t *c, const struct uc_slot *s, uint32_t keylen);
const uint8_t *uc_slot_val(const ucache_t *c, const struct uc_slot *s, uint64_t vallen);
uint32_t uc_chain_find(const ucache_t *c, uint64_t bucket, uint32_t hash, const void *key, size_t klen,
		       uint32_t *prev);
/* Unlink and free slot id (stripe held); counts nothing. */
void uc_unlink_locked(ucache_t *c, struct uc_stripe *st, uint64_t bucket, uint32_t id, uint32_t prev);
/* Delete slot id if it is still live (and expired, when now != 0). 1 if deleted. */
int uc_delete_slot(ucache_t *c, uint32_t id, uint64_t expired_before);
uint32_t uc_lru_stamp(ucache_t *c);

/* ---- evict.c */
/* The cache had no room for a write: count, log, and free what the
 * configuration allows.  Returns 1 if anything was freed (retry). */
int uc_handle_full(ucache_t *c);

/* ---- check.c */
int64_t uc_rebuild_locked(ucache_t *c);
int uc_item_valid(const ucache_t *c, const struct uc_slot *s);

/* ---- cache.c: layout, shared with store.c */
int uc_plan_layout(const struct ucache_config *cfg, struct uc_hdr *h, char *err, size_t errlen);
void uc_attach(ucache_t *c);
int uc_format(ucache_t *c);
/* Empty allocators (heaps, bitmap state) shaped from the geometry alone:
 * formatting, clear and store recovery all use this one definition. */
void uc_format_allocators(ucache_t *c);
int uc_init_locks(ucache_t *c);

/* ---- store.c */
#define UC_STORE_FRESH 0
#define UC_STORE_EXISTING 1
/* Open or create cfg.store and map it into c (c->base, c->maplen).
 * UC_STORE_FRESH: an empty file to format; UC_STORE_EXISTING: a valid store
 * of the same geometry (locks must be re-initialised and the content
 * rebuilt); -errno with err filled otherwise. */
int uc_store_map(ucache_t *c, const struct uc_hdr *plan, char *err, size_t errlen);
/* After mapping an existing store: fresh locks, rebuild, log the result. */
void uc_store_recover(ucache_t *c);
/* Import what a mismatching store held (store_migrate), after formatting. */
void uc_store_import_pending(ucache_t *c);

#endif
