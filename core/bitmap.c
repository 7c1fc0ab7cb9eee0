/*
 * bitmap.c - contiguous block allocator for bitmap mode.
 *
 * Bit i set = block i in use.  A value of len bytes takes ceil(len /
 * blocksize) contiguous blocks; runs never wrap around the end.  The search
 * is next-fit from a hint (like stock, so successive small values fill the
 * region in order), and skips whole words: a full word costs one compare,
 * a run is found with two ctz per boundary.  Bits past nbits in the last
 * word are never set.  The stock allocator could place at most blocks/8
 * items in some layouts (uWSGI #527); this one places an item whenever a
 * run of the needed length exists anywhere.
 *
 * Locking: none here; the caller holds the cache's allocator lock.
 */
#include <string.h>

#include "bitmap.h"

void uc_bitmap_format(struct uc_bitmap *b, uint64_t nbits)
{
	memset(b->st, 0, sizeof(*b->st));
	b->st->nbits = nbits;
	/* the words live in fresh zero pages; no memset needed */
}

/* First index in [from, limit) whose bit equals want, or limit. */
static uint64_t next_bit(const struct uc_bitmap *b, uint64_t from, uint64_t limit, int want)
{
	while (from < limit) {
		uint64_t w = b->words[from / 64];
		if (!want)
			w = ~w;
		w &= ~0ull << (from % 64);
		if (w) {
			uint64_t i = (from & ~63ull) + (uint64_t)__builtin_ctzll(w);
			return i < limit ? i : limit;
		}
		from = (from & ~63ull) + 64;
	}
	return limit;
}

/* First run of n free bits starting in [from, limit) and ending by limit. */
static int64_t find_run(const struct uc_bitmap *b, uint64_t from, uint64_t limit, uint64_t n)
{
	while (from < limit) {
		uint64_t start = next_bit(b, from, limit, 0), end;
		if (start >= limit || limit - start < n)
			return -1;
		end = next_bit(b, start, start + n, 1);
		if (end - start >= n)
			return (int64_t)start;
		from = end;
	}
	return -1;
}

static void set_range(struct uc_bitmap *b, uint64_t first, uint64_t n, int on)
{
	uint64_t i = first, end = first + n;

	while (i < end) {
		uint64_t bits = end - i < 64 - i % 64 ? end - i : 64 - i % 64;
		uint64_t mask = (bits == 64 ? ~0ull : ((1ull << bits) - 1)) << (i % 64);
		if (on)
			b->words[i / 64] |= mask;
		else
			b->words[i / 64] &= ~mask;
		i += bits;
	}
}

int64_t uc_bitmap_alloc(struct uc_bitmap *b, uint64_t n)
{
	struct uc_bitmap_state *st = b->st;
	uint64_t hint = st->hint < st->nbits ? st->hint : 0;
	int64_t at;

	if (!n || n > st->nbits - st->used)
		return -1;
	at = find_run(b, hint, st->nbits, n);
	if (at < 0) /* wrap: search the start, runs may extend into [hint, ...) */
		at = find_run(b, 0, hint + n - 1 < st->nbits ? hint + n - 1 : st->nbits, n);
	if (at < 0)
		return -1;
	set_range(b, (uint64_t)at, n, 1);
	st->used += n;
	st->hint = (uint64_t)at + n >= st->nbits ? 0 : (uint64_t)at + n;
	return at;
}

void uc_bitmap_free(struct uc_bitmap *b, uint64_t first, uint64_t n)
{
	set_range(b, first, n, 0);
	b->st->used -= n;
}

int uc_bitmap_all_set(const struct uc_bitmap *b, uint64_t first, uint64_t n)
{
	if (first > b->st->nbits || n > b->st->nbits - first)
		return 0;
	return next_bit(b, first, first + n, 0) == first + n;
}

int uc_bitmap_claim(struct uc_bitmap *b, uint64_t first, uint64_t n)
{
	if (!n || first > b->st->nbits || n > b->st->nbits - first)
		return -1;
	if (next_bit(b, first, first + n, 1) != first + n)
		return -1;
	set_range(b, first, n, 1);
	b->st->used += n;
	return 0;
}

uint64_t uc_bitmap_count(const struct uc_bitmap *b)
{
	uint64_t i, n = 0;

	for (i = 0; i < uc_bitmap_words(b->st->nbits); i++)
		n += (uint64_t)__builtin_popcountll(b->words[i]);
	return n;
}
