/*
 * tags.h - tagged entries (tags.c): the generation table of a cache and the
 * envelope a tagged value starts with.  Internal to core/; the public calls
 * are in include/ucache.h ("tags").
 */
#ifndef UCACHE_TAGS_H
#define UCACHE_TAGS_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "layout.h"

/* Generations per cache: a tag uses gen[xxh3(tag) % ngens].  Two tags
 * sharing a counter invalidate each other's entries: a spurious miss, never
 * a stale hit.  The table takes what stock's address space leaves over
 * after the region (uc_stock_mapping() - the region's mapping, whole pages;
 * uc_plan_layout() keeps at least one page free), at most
 * UC_TAG_GENS_MAX counters: 65536 x 8 bytes = 512 KiB, 1 in 65536 per pair
 * of tags; one page holds 509.  A fixed 512 KiB table put a 10000-item
 * cache of 64 KiB blocks 176 KiB over stock (bench "mem").  Mapped
 * MAP_NORESERVE: only the pages of tags in use become resident. */
#define UC_TAG_GENS_MAX 65536u

/*
 * The generation table: with a store, the last pages of the store file
 * (layout.c, hdr->off_tags), so a read-only view of the file (view.c)
 * honours every invalidation; without one, its own shared anonymous
 * mapping (no other process can name a cache without a file).  Set up
 * with the cache before fork (cache.c).  No lock at all.  seq is a clock of
 * invalidations: invalidating a tag takes the next value s of seq (one
 * atomic add) and raises gen[i] to s (a compare-and-swap loop that only
 * ever raises it, so concurrent invalidations of one counter keep the
 * largest).  A renderer reads seq *before* rendering ("since", 1 word):
 * its entry is fresh while every tag's gen[i] <= since, so the tags
 * themselves may be named after rendering (the app sets them while it
 * renders) and an invalidation landing during the render (s > since)
 * still makes the entry stale.  Readers load gen[i] (acquire) after copying
 * the value, so a read that starts after an invalidation returned sees it.
 * A process killed anywhere leaves every counter whole (at worst seq was
 * taken and gen[i] not raised: that invalidation did not happen).
 * The table is never carried over: epoch is drawn at random at every
 * open (a store's table is zeroed first), so an envelope written before a
 * restart (a store reopened) never matches and every tagged entry of a
 * reopened store is a miss.  The handle's tag_ngens, derived from the
 * table's size, bounds every index: ngens in the table is informative.
 */
struct uc_tagtab {
	uint64_t epoch;                /* written at open, before fork (a view reads it any time) */
	uint64_t ngens;                /* counters in gen[]; written once, before fork */
	_Atomic uint64_t seq;          /* last invalidation's number (starts at 1) */
	_Atomic uint64_t invalidated;  /* invalidations so far (+1 for a reopened store): 0 = the sweep need not read values */
	_Atomic uint64_t gen[];        /* ngens counters */
};

/*
 * The envelope (native byte order, unaligned: read through memcpy):
 *   magic   8 bytes  UC_TAG_MAGIC
 *   epoch   u64      the table's epoch when the head was made, or
 *                    UCACHE_TAGS_SHARED_EPOCH (state outside the engine)
 *   since   u64      seq read before rendering
 *   ntags   u32      1..UCACHE_TAGS_MAX
 *   hlen    u32      32 + 4 * ntags: where the payload starts
 *   ntags x u32      index into gen[]
 *   payload
 * Values starting with the magic are reserved for envelopes: one that does
 * not parse is treated as stale.
 */
#define UC_TAG_MAGIC UCACHE_TAG_MAGIC
#define UC_TAG_MAGIC_LEN 8
#define UC_TAG_FIXED 32
#define UC_TAG_REF 4

#define UC_TAG_TABLE_MAX (sizeof(struct uc_tagtab) + UC_TAG_GENS_MAX * sizeof(uint64_t))

/* The table's bytes for a region of `region` bytes whose configuration
 * stock maps in `stock`: what stock leaves, in whole pages, between one
 * page and UC_TAG_GENS_MAX counters. */
static inline uint64_t uc_tags_table_bytes(uint64_t stock, uint64_t region)
{
	uint64_t most = uc_align_up(UC_TAG_TABLE_MAX, UC_PAGE);
	uint64_t left = stock > region ? (stock - region) / UC_PAGE * UC_PAGE : 0;

	if (left < UC_PAGE)
		left = UC_PAGE;
	return left < most ? left : most;
}

/* Could uc_tags_table_bytes() have given bytes (a store header's size_tags)? */
static inline int uc_tags_size_ok(uint64_t bytes)
{
	return bytes >= UC_PAGE && bytes % UC_PAGE == 0 && bytes <= uc_align_up(UC_TAG_TABLE_MAX, UC_PAGE);
}

/* Counters a table of bytes holds. */
static inline uint64_t uc_tags_ngens(uint64_t bytes)
{
	uint64_t n = (bytes - sizeof(struct uc_tagtab)) / sizeof(uint64_t);

	return n < UC_TAG_GENS_MAX ? n : UC_TAG_GENS_MAX;
}

/* Set up c's table for the region planned in plan: in the region when
 * plan has one (c->base mapped), else an anonymous mapping; reopened: a
 * store whose old table is cleared and whose tagged entries are stale. */
int uc_tags_map(ucache_t *c, const struct uc_hdr *plan, int reopened);
void uc_tags_unmap(ucache_t *c);

/* Bytes the table maps on its own (0 without one, or in the region): part
 * of the cache's address space. */
size_t uc_tags_mapped(const ucache_t *c);

/* Payload offset of a fresh envelope at val (len bytes: at least its head),
 * or -ESTALE (invalidated, another epoch, or malformed). */
long uc_tags_fresh(const ucache_t *c, const uint8_t *val, size_t len);

static inline int uc_tags_is_env(const uint8_t *val, size_t len)
{
	return len >= UC_TAG_MAGIC_LEN && !memcmp(val, UC_TAG_MAGIC, UC_TAG_MAGIC_LEN);
}

/* A read's check of the value it found (val, len: in the cache, inside the
 * reader's seqlock window, so torn bytes are possible and the caller's seq
 * check discards what it built on them): 1 if it is a stale tagged entry
 * (a miss); else 0, with (val, len) moved past a fresh envelope unless raw
 * (peek: dumps copy the stored bytes as they are).  Without a table (a
 * read-only inspection) values are returned as stored. */
static inline int uc_tags_skip(const ucache_t *c, const uint8_t **val, size_t *len, int raw)
{
	long off;

	if (UC_LIKELY(!uc_tags_is_env(*val, *len)) || !c->tags)
		return 0;
	off = uc_tags_fresh(c, *val, *len);
	if (off < 0)
		return 1;
	if (!raw) {
		*val += off;
		*len -= (size_t)off;
	}
	return 0;
}

/* Is live slot id a stale tagged entry?  Lock-free (a sweep's guess: the
 * bytes may be torn) or with its stripe held (the decision: sweeps, and a
 * write finding its key, which treats a stale entry as an expired one). */
static inline int uc_tags_stale_slot(const ucache_t *c, uint32_t id)
{
	const struct uc_slot *s = &c->slots[id];
	uint32_t vallen = s->vallen;
	const uint8_t *v = uc_val_at(c, s->val, s->keylen, vallen);

	return v && c->tags && uc_tags_is_env(v, vallen) && uc_tags_fresh(c, v, vallen) < 0;
}

/* Has any generation moved since the table was made (the sweep reads
 * values only then)? */
static inline int uc_tags_invalidated(const ucache_t *c)
{
	return c->tags && atomic_load_explicit(&c->tags->invalidated, memory_order_relaxed) != 0;
}

#endif
