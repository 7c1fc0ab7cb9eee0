/*
 * layout.h - the shared-memory layout of one cache, the per-process handle
 * that points into it, and the inline accessors every other core/ file uses.
 * Internal to core/.  layout.c plans and formats the region; the lock each
 * field's writer holds is written next to the field.
 *
 * Lock names used below (lock.h has the acquire/release functions):
 *   stripe  the robust mutex of the stripe a key's bucket belongs to
 *           (struct uc_stripe.lock); writers of that stripe's buckets,
 *           chains, slots and SIEVE queue hold it;
 *   alloc   hdr->alloc_lock, taken after a stripe, held only to take or
 *           return slots and storage;
 *   world   every stripe then alloc (rebuild, check, clear, close).
 * Lock-free readers validate what they read against their stripe's seq.
 */
#ifndef UCACHE_LAYOUT_H
#define UCACHE_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <xxhash.h>

#include "bitmap.h"
#include "hash.h"
#include "heap.h"
#include "ucache.h"
#include "util.h"

#define UC_MAGIC "UCACHE\0\1"
/* 2: 8-byte buckets, expiry in the checksum; 3: 64 KiB value pages; 4: value
 * region capped at 8 GiB; 5: 32-byte slots, key and value in one chunk,
 * side arrays, per-stripe SIEVE queues, 16-byte page descriptors; 6: the tag
 * generations in the store file (off_tags), where read-only views see them;
 * the hit counter in the slot (32-bit expiry), no hits array; packed value
 * pages (vpage); 7: 24-byte slots (no key hash: a fingerprint; an 8-bit hit
 * counter), 4-byte buckets (no chunk hint). */
#define UC_LAYOUT_VERSION 7u
#define UC_STRIPES_MAX 256
#define UC_EXACT_LRU_MAX 65 /* caches of <= 64 usable items get exact LRU */
#define UC_SIEVE_PER_STRIPE 64 /* at least this many items per stripe (SIEVE queue quality) */
#define UC_CACHELINE 64
#define UC_PAGE 4096u       /* mappings are planned in whole pages */
#define UC_PACK_PAGE 4096u  /* a packed value heap's page (largest items <= 1/4 of it) */
#define UC_REPAIR_DEAD 1
#define UC_REPAIR_ASKED 2

enum uc_slot_state { UC_SLOT_FREE = 0, UC_SLOT_RESERVED = 1, UC_SLOT_LIVE = 2 };

/* slot.meta: written by the slot's owner only (stripe held, or alloc for a
 * free slot), read by lock-free readers */
#define UC_META_STATE 3u   /* enum uc_slot_state */
#define UC_META_DIRTY 4u   /* a writer is copying a value in place: a rebuild drops the item */
#define UC_META_FP 0xf8u   /* the key hash's top 5 bits (uc_fp): a chain walk skips 31 of 32 other keys */
/* slot.use: written by readers without a lock (plain relaxed stores: a
 * lost update is a lost hint), cleared by writers */
#define UC_USE_VISITED 1u  /* read since the SIEVE hand last passed it */
#define UC_USE_HITS_SHIFT 1 /* bits 1-7: the hit counter's code (uc_hits_value) */
#define UC_HITS_CODES 128u
#define UC_HITS_EXACT 64u  /* codes below count hits one by one */
/* Latest expiry a slot holds (absolute seconds, 2106-02-07): later ones,
 * absolute or relative, are clamped to it, which never wraps into the past */
#define UC_EXPIRES_MAX UINT32_MAX

/* One item header: 24 bytes (stock: 88 + keysize).  Layout v7 keeps no key
 * hash in the slot: a 5-bit fingerprint in meta rejects other keys on a
 * chain walk, and the few paths that need a slot's bucket (eviction, sweep,
 * rebuild, check, compaction, listing) hash its stored key again
 * (uc_slot_hash: ~25 instructions for a 16-byte key, on a chunk those
 * paths read anyway).  24 bytes and a 4-byte bucket make an item's
 * overhead 24 + ~4 (bench: mem_overhead_bytes_max).  The hot fields come
 * first: a chain walk reads bytes 0-7, which never straddle a line (slots
 * start at multiples of 8).
 * Every field but use changes only under the slot's stripe lock, inside
 * that stripe's seqlock window once the slot is reachable; a lock-free
 * reader may see any mix of old and new values and must bounds-check each
 * before use (the seq re-check then discards what it built on them).
 * Slot 0 is the null slot: ids are 1..items-1. */
struct uc_slot {
	uint32_t next;          /* next slot of the bucket chain, or of the free stack */
	uint16_t keylen;
	_Atomic uint8_t meta;   /* UC_META_*: state, dirty, fingerprint */
	_Atomic uint8_t use;    /* UC_USE_*: SIEVE's visited bit and the hit counter */
	uint32_t val;           /* single-block: chunk offset / 16, the key then the value;
				 * bitmap: first block of the value */
	uint32_t vallen;
	uint32_t expires;       /* absolute seconds, 0 = never, at most UC_EXPIRES_MAX */
	uint32_t csum;          /* uc_item_csum() of key hash, lengths, expiry, storage and (with a store) value */
};
_Static_assert(sizeof(struct uc_slot) == 24, "slot must be 24 bytes");

/* The fingerprint of a key hash, in meta's position. */
static inline uint8_t uc_fp(uint32_t hash)
{
	return (uint8_t)(hash >> 24) & UC_META_FP;
}

/* Does slot s hold a key whose hash has fingerprint fp (uc_fp)? */
static inline int uc_slot_fp_is(const struct uc_slot *s, uint8_t fp)
{
	return (atomic_load_explicit(&s->meta, memory_order_relaxed) & UC_META_FP) == fp;
}

static inline unsigned uc_slot_state(const struct uc_slot *s)
{
	return atomic_load_explicit(&s->meta, memory_order_relaxed) & UC_META_STATE;
}

/* Owner only: the state, keeping fingerprint and dirty bit. */
static inline void uc_slot_set_state(struct uc_slot *s, unsigned state)
{
	uint8_t m = atomic_load_explicit(&s->meta, memory_order_relaxed);

	atomic_store_explicit(&s->meta, (uint8_t)((m & ~UC_META_STATE) | state), memory_order_relaxed);
}

/* Owner only: mark or clear an in-place copy.  Read-modify-writes, so the
 * compiler keeps the mark before the copy (a writer killed mid-copy leaves
 * it set for the rebuild). */
static inline void uc_slot_dirty(struct uc_slot *s)
{
	atomic_fetch_or_explicit(&s->meta, UC_META_DIRTY, memory_order_relaxed);
}

static inline void uc_slot_clean(struct uc_slot *s)
{
	atomic_fetch_and_explicit(&s->meta, (uint8_t)~UC_META_DIRTY, memory_order_relaxed);
}

static inline int uc_slot_is_dirty(const struct uc_slot *s)
{
	return (atomic_load_explicit(&s->meta, memory_order_relaxed) & UC_META_DIRTY) != 0;
}

/* Hits a counter code stands for: exact below UC_HITS_EXACT, then
 * c = 64 + 2e + m stands for (2 + m) << (e + 5): steps of a third to a
 * half, each taken with probability 1 / step (read.c), so the estimate is
 * unbiased; 127 stands for 3 x 2^36. */
static inline uint64_t uc_hits_value(unsigned code)
{
	unsigned x;

	if (code < UC_HITS_EXACT)
		return code;
	x = code - UC_HITS_EXACT;
	return (uint64_t)(2 + (x & 1)) << ((x >> 1) + 5);
}

/* The hits slot s counts (any process, racy by design). */
static inline uint64_t uc_slot_hits(const struct uc_slot *s)
{
	return uc_hits_value(atomic_load_explicit(&s->use, memory_order_relaxed) >> UC_USE_HITS_SHIFT);
}

/* SIEVE queue entry of a slot (purge_lru caches above 64 items), stripe
 * held.  hash is the item's key hash, which the slot no longer keeps
 * (layout v7): the hand reads this entry to move on anyway, so the
 * victim's bucket is known from the line it already has, without hashing
 * the victim's key from its chunk first (bench instr: a full insert's
 * lines 8.64 -> see BOUNDS.md).  4 bytes an item, in purge_lru caches only
 * (the array is never touched otherwise). */
struct uc_link {
	uint32_t prev, next;    /* towards the newer / older end; 0 = none */
	uint32_t hash;
};

/* One index bucket: the head of its chain, 16 to a cache line.  (Layout v6
 * kept a hint of the head's chunk beside it, so a hit fetched slot and
 * chunk together; 4 bytes an item, and a cold line per insert to refresh
 * it: the slot's line is fetched first instead.) */
struct uc_bucket {
	_Atomic uint32_t head;
};

/* One stripe: two cache lines.  seq is written by the lock holder only
 * (odd while it changes the stripe), read by everyone.  Under the stripe
 * lock: head/tail/hand, the stripe's SIEVE queue (newest, oldest, next to
 * examine; 0 = none), and the stash: up to UC_STASH slots this stripe
 * deleted, RESERVED with their storage, that its next inserts reuse
 * without the allocator lock (write.c).  A stashed slot stays counted in
 * hdr->live (it is allocated), not in the items or bytes a cache reports;
 * a full cache drains every stash first. */
#define UC_STASH 16
struct uc_stripe {
	pthread_mutex_t lock;   /* robust, process-shared */
	_Atomic uint32_t seq;
	uint32_t head, tail, hand;
	uint32_t nstash;
	uint32_t stash[UC_STASH];
} __attribute__((aligned(UC_CACHELINE)));

/* Counters every process updates often, one line per thread group
 * (uc_cpu_line()): relaxed atomics, summed over the lines by readers.  One
 * shared word per counter made two processes setting and deleting take
 * turns on its line (~100 ns per write): bytes and expiring move here for
 * that reason.  A line's bytes or expiring may go negative (one process
 * adds, another subtracts); only the sum means anything. */
enum uc_counter {
	UC_CTR_HITS, UC_CTR_MISSES,
	UC_CTR_BYTES,       /* value bytes of live items */
	UC_CTR_EXPIRING,    /* live items with an expiry (0 in sum: no sweep can free anything) */
	UC_CTR_FULL, UC_CTR_EVICTIONS, UC_CTR_EXPIRATIONS, /* once per insert into a full LRU cache */
	UC_CTR_TOO_LARGE,   /* writes refused with -E2BIG (the 8th and last counter a line holds) */
	UC_CTR_COUNT
};
struct uc_cpu {
	_Atomic uint64_t ctr[UC_CTR_COUNT]; /* signed counts are stored modulo 2^64 */
} __attribute__((aligned(UC_CACHELINE)));
_Static_assert(sizeof(struct uc_cpu) == UC_CACHELINE, "counters: one line per thread group");

struct uc_hdr {
	char magic[8];
	uint32_t version, hdr_size;
	/* geometry, written once by uc_format() (before any fork) */
	uint64_t items, blocks, blocksize, keysize, nbuckets, nstripes, hash, bitmap;
	uint64_t csum_values;    /* 1: checksums cover the value bytes (caches with a store) */
	uint64_t small;          /* items <= UC_EXACT_LRU_MAX: atime stamps instead of SIEVE links */
	uint64_t vpage;          /* single-block: the packed value heap's page size (UC_PACK_PAGE),
				  * 0 = a page per item of keysize + blocksize (layout.c) */
	uint64_t off_stripes, off_buckets, off_slots, off_kofs, off_atime, off_links;
	uint64_t off_kpages, off_vpages, off_bitmap, off_kdata, off_vdata, size_kdata, size_vdata;
	uint64_t off_tags, size_tags; /* store: the tag generations (tags.h), the region's last pages; else 0 */
	uint64_t total;
	uint64_t created_at;
	char name[64];           /* cache name (informative, may be truncated) */
	uint32_t clean;          /* store: 1 after a clean close, 0 while open (world held) */
	uint32_t opens;          /* store: times the file was opened (creator only) */

	/* allocator state: written under alloc only */
	pthread_mutex_t alloc_lock __attribute__((aligned(UC_CACHELINE)));
	uint32_t slot_free;      /* stack of freed slots (through slot.next), 0 = empty */
	_Atomic uint32_t slot_unused; /* slots [slot_unused, items) never used; relaxed reads (sweep, iter bounds) */
	_Atomic uint64_t live;   /* slots allocated (reserved, live or stashed); relaxed reads (stats, full check) */
	struct uc_heap_state kheap, vheap;
	struct uc_bitmap_state bm;

	/* lock-free shared words (atomic read-modify-writes, any process) */
	_Atomic uint32_t repair_needed __attribute__((aligned(UC_CACHELINE)));
	_Atomic uint64_t sweep_cursor;
	_Atomic uint64_t lru_clock;
	_Atomic uint64_t full_logged_at, next_full_sweep, last_modified_at;
	_Atomic uint64_t repairs;
	_Atomic uint32_t evict_cursor; /* next stripe a writer with an empty queue evicts from */
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
	/* side arrays in the region, one entry per slot:
	 *   kofs   bitmap mode: key chunk offset / 16 in the key heap, for a key
	 *          that does not fit in its value's last block (uc_key_inline);
	 *          set while the slot is unreachable (alloc or stripe held) or
	 *          inside a window, read like the slot's other fields
	 *          (bounds-checked, seq-validated); never touched for an inline
	 *          key, so its page stays unallocated when every key fits
	 *   atime  exact LRU: logical clock stamp, relaxed atomics by anyone
	 *   links  SIEVE queue links: stripe held only (readers never read them) */
	uint32_t *kofs;
	_Atomic uint32_t *atime;
	struct uc_link *links;
	struct uc_heap kheap, vheap;
	struct uc_bitmap bm;
	uint8_t *blocks;         /* the value region (heap pages or blocks) */
	uc_hash_fn hashfn;
	uint64_t nbuckets;       /* any count >= 1: uc_bucket_of maps hashes by multiplication */
	uint32_t stripe_mask;
	uint32_t items;
	uint64_t max_value;
	/* copies of header fields the hot paths read, one pointer chase less */
	uint64_t keysize, size_vdata, size_kdata, blocksize;
	uint64_t block_mask;     /* bitmap mode: blocksize - 1 for a power of two, else 0 (uc_key_inline) */
	int bitmap, xxh3;
	int exact_lru, sieve, csum_values;
	struct uc_tagtab *tags;  /* tag generations (tags.h): in the region (a store) or their own
				  * mapping; NULL on a read-only inspection */
	uint64_t tag_ngens;      /* counters in tags->gen[], from the geometry (the file's copy is not trusted) */
	/* store: pending store_migrate import (store.c) */
	uint8_t *import_base;
	size_t import_len;
	char *import_tmp;       /* the new file, renamed over cfg.store when done */
	int import_fd;          /* the old file, open (its flock held) until that rename; else -1 */
	char *import_note;      /* keep_region: the geometry change, for import's one line */
	int store_fd;           /* store: open and flock()ed while mapped; keep_region:
				 * the memfd (until ucache_release_region); else -1 */
	int memfd;              /* the region is a memfd (keep_region, no store) */
};

/* ------------------------------------------------------------- counters */

/* Add delta to counter which on the calling thread's line. */
static inline void uc_count(ucache_t *c, enum uc_counter which, int64_t delta)
{
	atomic_fetch_add_explicit(&c->hdr->cpu[uc_cpu_line()].ctr[which], (uint64_t)delta, memory_order_relaxed);
}

/* A counter summed over the lines (64 loads: stats, sweeps, checks only). */
int64_t uc_sum(const ucache_t *c, enum uc_counter which);
/* Slots kept in stripe stashes (a racy sum outside the world lock). */
uint64_t uc_sum_stashed(const ucache_t *c);
/* Zero bytes and expiring on every line (world held: rebuild, clear). */
void uc_counts_reset(ucache_t *c);

/* ---------------------------------------------------------------- layout.c */

/* What stock uWSGI 2.0.21 maps for the same configuration (uwsgi_cache_init:
 * items x (88 + keysize) + blocks x blocksize in one mapping, the hash table
 * of hashsize x 8 bytes, the free-slot stack of items x 8 bytes, and the
 * bitmap of ceil(blocks / 8) bytes, each rounded to pages). */
uint64_t uc_stock_mapping(const struct ucache_config *cfg);
/* Compute every offset of the layout into h from the configuration (with a
 * store, the tag table's pages last: tags.h), within
 * uc_stock_mapping() whenever the geometry allows it.  0 or -EINVAL. */
int uc_plan_layout(const struct ucache_config *cfg, struct uc_hdr *h, char *err, size_t errlen);
/* The packed value heap's page size for this geometry (UC_PACK_PAGE:
 * single-block, the largest item at most 1/4 of it), else 0.  The plan
 * uses it when stock's budget has room for its slack (uc_hdr.vpage). */
uint64_t uc_packed_page(const struct ucache_config *cfg);
/* The plan for a given bucket count (items, or half): what
 * uc_plan_layout() chose, replayed by store.c to validate a header. */
void uc_plan_geometry(const struct ucache_config *cfg, struct uc_hdr *h, uint64_t nbuckets);
/* Point the handle's pointers into the mapping at c->base. */
void uc_attach(ucache_t *c);
/* The same from h, a validated copy of the mapping's header (view.c: the
 * file's bytes may change after the check, the handle's bounds may not). */
void uc_attach_as(ucache_t *c, const struct uc_hdr *h);
/* Write magic, geometry and empty allocators into a fresh region. */
void uc_format(ucache_t *c);
/* Empty allocators (heaps, bitmap state) shaped from the geometry alone:
 * formatting, clear and store recovery all use this one definition. */
void uc_format_allocators(ucache_t *c);

/* --------------------------------------------------------------- accessors */

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

/* The index hash of a key: xxh3 (the default) called directly, without
 * the indirect call and wrapper of c->hashfn (~8 instructions a call). */
static inline uint32_t uc_key_hash(const ucache_t *c, const void *key, size_t klen)
{
	return c->xxh3 ? (uint32_t)XXH3_64bits(key, klen) : c->hashfn(key, klen);
}

/* The bucket of a hash: the mixed hash scaled to [0, nbuckets) by a
 * multiply and a shift (Lemire's "fastrange") rather than masked, so the
 * index need not be a power of two: one bucket per item is 4 bytes an
 * item, where rounding up to a power of two cost 4-8 (layout v7). */
static inline uint64_t uc_bucket_of(const ucache_t *c, uint32_t hash)
{
	return ((uint64_t)uc_hash_mix(hash) * c->nbuckets) >> 32;
}

static inline struct uc_stripe *uc_stripe_of(const ucache_t *c, uint64_t bucket)
{
	return &c->stripes[bucket & c->stripe_mask];
}

static inline struct uc_stripe *uc_stripe_of_hash(const ucache_t *c, uint32_t hash)
{
	return uc_stripe_of(c, uc_bucket_of(c, hash));
}

/* Byte offset of slot fields (val, keylen) in the value region: where the
 * key starts (single-block) or the value starts (bitmap). */
static inline uint64_t uc_val_offset(const ucache_t *c, uint32_t val)
{
	return c->bitmap ? (uint64_t)val * c->blocksize : (uint64_t)val * UC_HEAP_UNIT;
}

/* uc_storage_alloc_alloc_held's kofs for a key without a key-heap chunk
 * (single-block, or an inline bitmap key): never stored in kofs[]. */
#define UC_KOFS_INLINE 0xffffffffu

/* Bitmap mode: does a key of keylen live in its value's last block, right
 * after the value?  Stock counts a value as the blocks it occupies, so the
 * unused tail of the last one is paid for: a 12-byte key after a 100-byte
 * value in a 128-byte block costs nothing, where a key-heap chunk and its
 * reference cost 20 bytes (bench mem_100k_bitmap).  Decided by the lengths
 * alone, so readers need no flag.  Power-of-two blocksizes only (a mask,
 * not a division on every lookup); others keep every key in the heap. */
static inline int uc_key_inline(const ucache_t *c, uint64_t keylen, uint64_t vallen)
{
	uint64_t tail = vallen & c->block_mask;

	return tail && c->block_mask + 1 - tail >= keylen;
}

/* Slot id's key chunk as uc_key_alloc_alloc_held gave it: UC_KOFS_INLINE
 * unless a bitmap key lives in the key heap (kofs[] read only then, so its
 * page stays unallocated while every key is inline). */
static inline uint32_t uc_slot_kofs(const ucache_t *c, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];

	return c->bitmap && !uc_key_inline(c, s->keylen, s->vallen) ? c->kofs[id] : UC_KOFS_INLINE;
}

/* The key bytes of slot id for a key of keylen, or NULL if the fields read
 * are out of bounds (torn, or damaged).  Readers pass values they read once. */
static inline const uint8_t *uc_key_at(const ucache_t *c, uint32_t id, uint32_t val, uint32_t keylen,
				       uint64_t vallen)
{
	uint64_t off;

	if (!keylen || keylen > c->keysize)
		return NULL;
	if (c->bitmap && uc_key_inline(c, keylen, vallen)) {
		off = (uint64_t)val * c->blocksize + vallen;
		return vallen <= c->max_value && off + keylen <= c->size_vdata ? c->blocks + off : NULL;
	}
	if (c->bitmap) {
		off = (uint64_t)c->kofs[id] * UC_HEAP_UNIT;
		return off + keylen <= c->size_kdata ? c->kheap.data + off : NULL;
	}
	off = (uint64_t)val * UC_HEAP_UNIT;
	if (vallen > c->max_value || off + keylen + vallen > c->size_vdata)
		return NULL;
	return c->blocks + off;
}

/* The value bytes, same contract. */
static inline const uint8_t *uc_val_at(const ucache_t *c, uint32_t val, uint32_t keylen, uint64_t vallen)
{
	uint64_t off = uc_val_offset(c, val) + (c->bitmap ? 0 : keylen);

	if (vallen > c->max_value || off > c->size_vdata || vallen > c->size_vdata - off)
		return NULL;
	return c->blocks + off;
}

static inline const uint8_t *uc_slot_key(const ucache_t *c, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];

	return uc_key_at(c, id, s->val, s->keylen, s->vallen);
}

static inline const uint8_t *uc_slot_val(const ucache_t *c, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];

	return uc_val_at(c, s->val, s->keylen, s->vallen);
}

/* The index hash of slot id's stored key (v7 slots keep only a
 * fingerprint of it): 0 when its fields are out of bounds (torn or
 * damaged; callers check the slot's chain position, or a seq, before they
 * act on the answer). */
static inline uint32_t uc_slot_hash(const ucache_t *c, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];
	uint32_t keylen = s->keylen;
	const uint8_t *k = uc_key_at(c, id, s->val, keylen, s->vallen);

	return k ? uc_key_hash(c, k, keylen) : 0;
}

/* Checksum of slot id as it should be (stripe or world held). */
static inline uint32_t uc_slot_csum(const ucache_t *c, uint32_t keyhash, uint32_t keylen, const void *val,
				    uint64_t vallen, uint64_t expires, uint32_t valref)
{
	return uc_item_csum(keyhash, keylen, c->csum_values ? val : NULL, vallen, expires, valref);
}

#endif
