/*
 * bitmap.h - contiguous block allocator for bitmap mode (one bit per block).
 * Not thread-safe: the caller holds the cache's allocator lock.
 */
#ifndef UCACHE_BITMAP_H
#define UCACHE_BITMAP_H

#include <stddef.h>
#include <stdint.h>

/* Lives in shared memory (inside the cache header). */
struct uc_bitmap_state {
	uint64_t nbits;   /* blocks */
	uint64_t hint;    /* where the next search starts (next-fit) */
	uint64_t used;    /* blocks marked */
};

struct uc_bitmap {
	struct uc_bitmap_state *st;
	uint64_t *words;  /* ceil(nbits / 64) words, in shared memory */
};

static inline uint64_t uc_bitmap_words(uint64_t nbits) { return (nbits + 63) / 64; }

void uc_bitmap_format(struct uc_bitmap *b, uint64_t nbits);

/* Find and mark n contiguous free blocks; returns the first, or -1. */
int64_t uc_bitmap_alloc(struct uc_bitmap *b, uint64_t n);

/* Clear n blocks starting at first (they must be marked). */
void uc_bitmap_free(struct uc_bitmap *b, uint64_t first, uint64_t n);

/* Mark n blocks from first if all are free (rebuild); -1 if any is not. */
int uc_bitmap_claim(struct uc_bitmap *b, uint64_t first, uint64_t n);

/* 1 if every block of [first, first+n) is marked. */
int uc_bitmap_all_set(const struct uc_bitmap *b, uint64_t first, uint64_t n);

/* Number of marked blocks (counted, not the cached st->used). */
uint64_t uc_bitmap_count(const struct uc_bitmap *b);

#endif
