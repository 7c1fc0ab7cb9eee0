/*
 * test_storage.c - unit tests of value storage: bitmap mode (core/bitmap.c:
 * odd block counts, multi-block values, next-fit wrap-around,
 * fragmentation, stock issue #527, update-before-free), single-block mode
 * (core/heap.c: the slab capacity argument), ucache_check() after every
 * phase, ucache_repair(), and the memory claims of core/cache.c (virtual
 * mapping, small resident set).
 *
 * Block placement is not visible through the API; the bitmap tests build
 * layouts whose placement follows from the documented next-fit rule and
 * then assert which allocations must succeed or fail (-ENOSPC).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucache.h"
#include "ucache_test.h"

/* Deterministic content for key k of length len. */
static void fill(char *buf, size_t len, const char *k)
{
	size_t i, kl = strlen(k);

	for (i = 0; i < len; i++)
		buf[i] = (char)(k[i % kl] + (char)(i / kl));
}

/* Store key k with a value of len bytes; returns ucache_set's result. */
static int put(ucache_t *c, const char *k, size_t len, unsigned flags)
{
	char *v = malloc(len ? len : 1);
	int rc;

	assert_non_null(v);
	fill(v, len, k);
	rc = ucache_set(c, k, strlen(k), v, len, 0, flags);
	free(v);
	return rc;
}

/* Key k holds the value put() stores for len bytes. */
static void expect_put(ucache_t *c, const char *k, size_t len)
{
	char *v = malloc(len);

	assert_non_null(v);
	fill(v, len, k);
	ut_expect_mem(c, k, strlen(k), v, len);
	free(v);
}

/* ---------------------------------------------------------------- bitmap */

/* 13 blocks: not a multiple of 8 or 64. */
static void test_bitmap_13_blocks(void **state)
{
	ucache_t *c = ut_cache("name=b,items=5,blocks=13,blocksize=16,bitmap=1");

	(void)state;
	assert_int_equal(ucache_max_value(c), 13 * 16);
	assert_int_equal(put(c, "a", 5 * 16, 0), 0);      /* blocks 0-4 */
	assert_int_equal(put(c, "b", 4 * 16 + 1, 0), 0);  /* blocks 5-9 */
	assert_int_equal(put(c, "c", 3 * 16, 0), 0);      /* blocks 10-12: the very last block */
	assert_int_equal(ut_stats(c).blocks_used, 13);
	assert_int_equal(put(c, "d", 1, 0), -ENOSPC);
	expect_put(c, "a", 80);
	expect_put(c, "b", 65);
	expect_put(c, "c", 48);
	ut_check(c);
	assert_int_equal(ucache_del(c, "b", 1), 0);
	assert_int_equal(put(c, "e", 6 * 16, 0), -ENOSPC); /* 5 free blocks */
	assert_int_equal(put(c, "e", 5 * 16, 0), 0);
	assert_int_equal(ut_stats(c).blocks_used, 13);
	ut_check(c);
	ucache_clear(c);
	assert_int_equal(put(c, "max", 13 * 16, 0), 0);   /* one value over every block */
	expect_put(c, "max", 13 * 16);
	assert_int_equal(ut_stats(c).blocks_used, 13);
	ut_check(c);
	ut_destroy(c);
}

/* 67 blocks: runs across the 64-bit word boundary and into a partial word. */
static void test_bitmap_67_blocks(void **state)
{
	ucache_t *c = ut_cache("name=b,items=10,blocks=67,blocksize=8,bitmap=1");

	(void)state;
	assert_int_equal(put(c, "a", 60 * 8, 0), 0);  /* 0-59 */
	assert_int_equal(put(c, "b", 7 * 8, 0), 0);   /* 60-66, crossing word 0 -> 1 */
	assert_int_equal(put(c, "c", 1, 0), -ENOSPC);
	expect_put(c, "b", 56);
	ut_check(c);
	assert_int_equal(ucache_del(c, "a", 1), 0);
	assert_int_equal(put(c, "d", 61 * 8, 0), -ENOSPC); /* only 60 free in a row */
	assert_int_equal(put(c, "d", 60 * 8, 0), 0);
	assert_int_equal(ucache_del(c, "d", 1), 0);
	assert_int_equal(ucache_del(c, "b", 1), 0);
	assert_int_equal(put(c, "all", 67 * 8, 0), 0);
	expect_put(c, "all", 67 * 8);
	assert_int_equal(ucache_del(c, "all", 3), 0);
	/* 9 items of 7 blocks each: 63 blocks, runs straddling bit 64 */
	{
		char k[8];
		int i;
		for (i = 0; i < 9; i++) {
			snprintf(k, sizeof(k), "s%d", i);
			assert_int_equal(put(c, k, 7 * 8, 0), 0);
		}
		for (i = 0; i < 9; i++) {
			snprintf(k, sizeof(k), "s%d", i);
			expect_put(c, k, 56);
		}
	}
	assert_int_equal(ut_stats(c).blocks_used, 63);
	ut_check(c);
	ut_destroy(c);
}

static void test_bitmap_value_spanning_blocks(void **state)
{
	ucache_t *c = ut_cache("name=b,items=10,blocks=40,blocksize=100,bitmap=1");

	(void)state;
	assert_int_equal(put(c, "x", 350, 0), 0); /* 3.5 blocks -> 4 */
	assert_int_equal(put(c, "y", 100, 0), 0); /* exactly one */
	assert_int_equal(put(c, "z", 101, 0), 0); /* one byte into a second */
	expect_put(c, "x", 350);
	expect_put(c, "y", 100);
	expect_put(c, "z", 101);
	assert_int_equal(ut_stats(c).blocks_used, 7);
	assert_int_equal(ut_stats(c).bytes_used, 551);
	assert_int_equal(put(c, "x", 1000, UCACHE_SET_UPDATE), 0);
	expect_put(c, "x", 1000);
	assert_int_equal(ut_stats(c).blocks_used, 13);
	assert_int_equal(put(c, "x", 1, UCACHE_SET_UPDATE), 0);
	assert_int_equal(ut_stats(c).blocks_used, 4);
	assert_int_equal(ut_stats(c).bytes_used, 202);
	ut_check(c);
	ut_destroy(c);
}

/* The next-fit search starts after the last allocation; a run that exists
 * only before that point must still be found (the search wraps), including
 * a run that straddles the start point. */
static void test_bitmap_next_fit_wraps_around(void **state)
{
	ucache_t *c = ut_cache("name=b,items=8,blocks=16,blocksize=4,bitmap=1");

	(void)state;
	assert_int_equal(put(c, "a", 6 * 4, 0), 0);  /* 0-5 */
	assert_int_equal(put(c, "b", 6 * 4, 0), 0);  /* 6-11, next search from 12 */
	assert_int_equal(ucache_del(c, "a", 1), 0);
	assert_int_equal(put(c, "c", 6 * 4, 0), 0);  /* 12-15 too short: wraps to 0-5 */
	assert_int_equal(put(c, "d", 4 * 4, 0), 0);  /* 12-15 */
	assert_int_equal(ut_stats(c).blocks_used, 16);
	expect_put(c, "b", 24);
	expect_put(c, "c", 24);
	expect_put(c, "d", 16);
	ut_check(c);
	ucache_clear(c);

	assert_int_equal(put(c, "a", 4 * 4, 0), 0);  /* 0-3 */
	assert_int_equal(put(c, "b", 4 * 4, 0), 0);  /* 4-7 */
	assert_int_equal(put(c, "c", 4 * 4, 0), 0);  /* 8-11 */
	assert_int_equal(put(c, "d", 4 * 4, 0), 0);  /* 12-15, search wraps to 0 */
	assert_int_equal(ucache_del(c, "d", 1), 0);
	assert_int_equal(put(c, "x", 2 * 4, 0), 0);  /* 12-13, next search from 14 */
	assert_int_equal(ucache_del(c, "x", 1), 0);
	assert_int_equal(ucache_del(c, "c", 1), 0);  /* free: 8-15, search start 14 */
	assert_int_equal(put(c, "y", 8 * 4, 0), 0);  /* 8-15 straddles the start */
	expect_put(c, "y", 32);
	assert_int_equal(ut_stats(c).blocks_used, 16);
	ut_check(c);
	ut_destroy(c);
}

static void test_bitmap_fragmentation(void **state)
{
	ucache_t *c = ut_cache("name=b,items=16,blocks=16,blocksize=8,bitmap=1");
	char k[8];
	int i;

	(void)state;
	for (i = 0; i < 15; i++) { /* k0..k14 in blocks 0-14 */
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(put(c, k, 8, 0), 0);
	}
	for (i = 1; i < 15; i += 2) { /* free 1,3,...,13: with 15, 8 free blocks, no two adjacent */
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(ucache_del(c, k, strlen(k)), 0);
	}
	assert_int_equal(ut_stats(c).blocks_used, 8);
	assert_int_equal(put(c, "two", 16, 0), -ENOSPC);
	assert_int_equal(ut_stats(c).full, 1);
	ut_check(c);
	assert_int_equal(ucache_del(c, "k2", 2), 0); /* blocks 1-3 now free */
	assert_int_equal(put(c, "two", 16, 0), 0);
	expect_put(c, "two", 16);
	assert_int_equal(put(c, "three", 24, 0), -ENOSPC);
	/* single blocks still fill every hole */
	for (i = 0; i < 7; i++) {
		snprintf(k, sizeof(k), "h%d", i);
		assert_int_equal(put(c, k, 8, 0), 0);
	}
	assert_int_equal(ut_stats(c).blocks_used, 16);
	assert_int_equal(put(c, "h7", 1, 0), -ENOSPC);
	for (i = 0; i < 15; i += 2) {
		snprintf(k, sizeof(k), "k%d", i);
		if (i != 2)
			expect_put(c, k, 8);
	}
	ut_check(c);
	ut_destroy(c);
}

/* Stock issue #527: a bitmap cache with items = blocks = N could not place
 * N - 1 one-block items (the allocator gave up after blocks/8). */
static void issue527(int n)
{
	char kv[96], k[16];
	ucache_t *c;
	int i;

	snprintf(kv, sizeof(kv), "name=b,items=%d,blocks=%d,blocksize=32,bitmap=1", n, n);
	c = ut_cache(kv);
	for (i = 0; i < n - 1; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		if (put(c, k, 20, 0))
			fail_msg("N=%d: one-block item %d of %d refused", n, i + 1, n - 1);
	}
	assert_int_equal(put(c, "extra", 20, 0), -ENOSPC); /* no slot left */
	for (i = 0; i < n - 1; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		expect_put(c, k, 20);
	}
	assert_int_equal(ut_stats(c).blocks_used, n - 1);
	ut_check(c);
	/* and again after churn */
	for (i = 0; i < n - 1; i += 3) {
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(ucache_del(c, k, strlen(k)), 0);
		assert_int_equal(put(c, k, 32, 0), 0);
	}
	ut_check(c);
	ut_destroy(c);
}

static void test_issue527_bitmap_capacity(void **state)
{
	(void)state;
	issue527(64);
	issue527(100);
	issue527(13);
}

/* Stock rule: a bitmap update allocates the new blocks before freeing the
 * old ones.  Observed: with a value of 8 blocks and 8 other free blocks, an
 * update to 12 or 16 blocks fails with -ENOSPC (even though freeing first
 * would leave 16 contiguous blocks) and leaves the old value intact; an
 * update to 8 blocks succeeds by moving to the free run. */
static void test_bitmap_update_allocates_before_freeing(void **state)
{
	ucache_t *c = ut_cache("name=b,items=4,blocks=16,blocksize=4,bitmap=1");

	(void)state;
	assert_int_equal(put(c, "a", 8 * 4, 0), 0);                   /* 0-7 */
	assert_int_equal(put(c, "a", 12 * 4, UCACHE_SET_UPDATE), -ENOSPC);
	assert_int_equal(put(c, "a", 16 * 4, UCACHE_SET_UPDATE), -ENOSPC);
	expect_put(c, "a", 32);
	assert_int_equal(ut_stats(c).blocks_used, 8);
	assert_int_equal(ut_stats(c).full, 2);
	assert_int_equal(put(c, "a", 8 * 4 - 1, UCACHE_SET_UPDATE), 0); /* 8-15, then 0-7 freed */
	expect_put(c, "a", 31);
	assert_int_equal(ut_stats(c).blocks_used, 8);
	assert_int_equal(put(c, "a", 9 * 4, UCACHE_SET_UPDATE), -ENOSPC); /* 0-7 free: 8 in a row */
	assert_int_equal(put(c, "a", 4, UCACHE_SET_UPDATE), 0);          /* shrinking always fits */
	assert_int_equal(ut_stats(c).blocks_used, 1);
	assert_int_equal(put(c, "a", 15 * 4, UCACHE_SET_UPDATE), 0);     /* 15 of 16 free around it? */
	expect_put(c, "a", 60);
	assert_int_equal(ut_stats(c).blocks_used, 15);
	ut_check(c);
	ut_destroy(c);
}

/* Stock moved every bitmap update to a fresh run and so failed to update a
 * value in a cache with no second run of its length free; such an update
 * (to no more blocks) is now copied in place, and a shrink frees the tail. */
static void test_bitmap_same_size_update_needs_no_second_run(void **state)
{
	ucache_t *c = ut_cache("name=b,items=4,blocks=16,blocksize=4,bitmap=1");

	(void)state;
	assert_int_equal(put(c, "a", 8 * 4, 0), 0);  /* 0-7 */
	assert_int_equal(put(c, "b", 8 * 4, 0), 0);  /* 8-15: every block used */
	assert_int_equal(put(c, "a", 8 * 4 - 3, UCACHE_SET_UPDATE), 0);
	expect_put(c, "a", 8 * 4 - 3);
	expect_put(c, "b", 8 * 4);
	assert_int_equal(ut_stats(c).full, 0);
	assert_int_equal(ut_stats(c).blocks_used, 16);
	assert_int_equal(put(c, "b", 3 * 4, UCACHE_SET_UPDATE), 0); /* shrinks in place: 11-15 freed */
	expect_put(c, "b", 3 * 4);
	assert_int_equal(ut_stats(c).blocks_used, 11);
	assert_int_equal(put(c, "c", 5 * 4, 0), 0);                  /* the freed tail serves */
	expect_put(c, "c", 5 * 4);
	ut_check(c);
	ut_destroy(c);
}

/* Bitmap mode keeps a key after its value in the value's last block when
 * it fits in the block's unused tail (layout v7), else in a key-heap
 * chunk.  Updates move the key between the two, by a new run and in place
 * (every block in use), growing and shrinking; each state reads back,
 * passes the check and survives a rebuild. */
static void test_bitmap_key_moves_between_block_tail_and_key_heap(void **state)
{
	/* key "key-one" is 7 bytes; blocksize 64: a value whose length mod 64
	 * is 1..57 leaves room for it */
	static const size_t moved[] = { 50, 60, 64, 100, 57, 58, 1, 127, 64, 120, 30 };
	ucache_t *c = ut_cache("name=bk,items=12,blocks=12,blocksize=64,bitmap=1,keysize=32");
	char other[16];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) { /* free runs: moves */
		assert_int_equal(put(c, "key-one", moved[i], i ? UCACHE_SET_UPDATE : 0), 0);
		expect_put(c, "key-one", moved[i]);
		ut_check(c);
	}
	assert_int_equal(put(c, "key-one", 100, UCACHE_SET_UPDATE), 0); /* 2 blocks, inline */
	for (n = 0; n < 10; n++) { /* the 10 other blocks: heap keys, no run left */
		snprintf(other, sizeof(other), "o%d", n);
		assert_int_equal(put(c, other, 64, 0), 0);
	}
	assert_int_equal(ut_stats(c).blocks_used, 12);
	static const size_t in_place[] = { 126, 70, 128, 65, 120, 40, 64 }; /* heap, inline, heap, inline, ... */
	for (i = 0; i < sizeof(in_place) / sizeof(in_place[0]); i++) {
		assert_int_equal(put(c, "key-one", in_place[i], UCACHE_SET_UPDATE), 0);
		expect_put(c, "key-one", in_place[i]);
		ut_check(c);
	}
	assert_int_equal(ut_stats(c).full, 0);
	assert_int_equal(ucache_repair(c), 11); /* every item kept */
	expect_put(c, "key-one", 64);
	for (n = 0; n < 10; n++) {
		snprintf(other, sizeof(other), "o%d", n);
		expect_put(c, other, 64);
	}
	ut_check(c);
	ut_destroy(c);
}

/* ----------------------------------------------------------- single-block */

/* The slab capacity argument of heap.c: whatever the mix of sizes, and
 * after any deletes, items - 1 values up to blocksize always fit. */
static void test_single_block_any_size_mix_keeps_capacity(void **state)
{
	enum { ITEMS = 64, CAP = ITEMS - 1, BS = 1000 };
	ucache_t *c = ut_cache("name=s,items=64,blocksize=1000,keysize=64");
	static const size_t pattern_max[] = { 1, 16, 17, 128, 129, 500, 1000 };
	size_t len[CAP];
	char k[CAP][32];
	uint64_t seed = 12345;
	int live[CAP] = { 0 }, phase, i, n;

	(void)state;
	for (i = 0; i < CAP; i++) /* short keys (inline) and long (key heap) */
		snprintf(k[i], sizeof(k[i]), i % 2 ? "key%d" : "a-long-key-in-the-key-heap-%d", i);
	for (phase = 0; phase < 40; phase++) {
		size_t maxlen = pattern_max[phase % 7];
		/* refill every free item with sizes in 1..maxlen (or all sizes) */
		for (i = 0; i < CAP; i++) {
			if (live[i])
				continue;
			len[i] = 1 + (phase % 3 == 2 ? ut_rand(&seed) % BS : ut_rand(&seed) % maxlen);
			if (put(c, k[i], len[i], 0))
				fail_msg("phase %d: item %d (%zu bytes) refused with %d live", phase, i, len[i],
					 (int)ucache_items(c));
			live[i] = 1;
		}
		assert_int_equal(ucache_items(c), CAP);
		assert_int_equal(put(c, "one-too-many", 1, 0), -ENOSPC);
		ut_check(c);
		/* resize some in place / across classes, then delete a random subset */
		for (i = 0, n = 0; i < CAP; i++) {
			uint64_t r = ut_rand(&seed);
			if (r % 4 == 0) {
				len[i] = 1 + (r >> 8) % BS;
				assert_int_equal(put(c, k[i], len[i], UCACHE_SET_UPDATE), 0);
			}
			if ((r >> 4) % (2 + phase % 3) == 0) {
				assert_int_equal(ucache_del(c, k[i], strlen(k[i])), 0);
				live[i] = 0;
			}
			n += live[i];
		}
		assert_int_equal(ucache_items(c), n);
		for (i = 0; i < CAP; i++)
			if (live[i])
				expect_put(c, k[i], len[i]);
		ut_check(c);
	}
	ut_destroy(c);
}

/* Largest values interleaved with the smallest: every page holds one. */
static void test_single_block_max_values_after_small_churn(void **state)
{
	ucache_t *c = ut_cache("name=s,items=33,blocksize=4096,keysize=32");
	char k[16];
	int i, round;

	(void)state;
	for (round = 0; round < 5; round++) {
		for (i = 0; i < 32; i++) {
			snprintf(k, sizeof(k), "k%d", i);
			assert_int_equal(put(c, k, (i + round) % 2 ? 1 : 4096, 0), 0);
		}
		assert_int_equal(put(c, "x", 1, 0), -ENOSPC);
		ut_check(c);
		for (i = 0; i < 32; i++) {
			snprintf(k, sizeof(k), "k%d", i);
			expect_put(c, k, (i + round) % 2 ? 1 : 4096);
			assert_int_equal(ucache_del(c, k, strlen(k)), 0);
		}
		ut_check(c);
	}
	for (i = 0; i < 32; i++) { /* finally all at the maximum */
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(put(c, k, 4096, 0), 0);
	}
	ut_check(c);
	ut_destroy(c);
}

/* Item sizes shifting in a cache whose items share 4 KiB value pages
 * (keysize 64 + blocksize 128: a packed heap, layout.c): each phase
 * rewrites 7 in 8 items at a new size, so the pages fill with classes no
 * longer written; compaction (compact.c) makes room, and every write
 * stock would take succeeds with the slot table full.  sweep 2 updates
 * in place, sweep 1 deletes and inserts. */
static void packed_size_shift(const char *conf)
{
	enum { CAP = 2047 };
	static const size_t band[] = { 100, 1, 128, 40, 70, 128, 20, 110 };
	ucache_t *c = ut_cache(conf);
	size_t len[CAP];
	uint64_t seed = 99;
	char k[16];
	int i, phase;

	for (i = 0; i < CAP; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		len[i] = band[0];
		assert_int_equal(put(c, k, len[i], 0), 0);
	}
	for (phase = 1; phase < 16; phase++) {
		for (i = 0; i < CAP; i++) {
			if (ut_rand(&seed) % 8 == 0)
				continue;
			snprintf(k, sizeof(k), "k%d", i);
			len[i] = band[phase % 8] - ut_rand(&seed) % 4 % band[phase % 8];
			if (phase % 2)
				assert_int_equal(ucache_del(c, k, strlen(k)), 0);
			if (put(c, k, len[i], UCACHE_SET_UPDATE))
				fail_msg("phase %d: %s (%zu bytes) refused", phase, k, len[i]);
		}
		assert_int_equal(ucache_items(c), CAP);
		assert_int_equal(put(c, "one-too-many", 1, 0), -ENOSPC);
		ut_check(c);
	}
	for (i = 0; i < CAP; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		expect_put(c, k, len[i]);
	}
	ut_destroy(c);
}

static void test_packed_heap_size_shift_keeps_capacity(void **state)
{
	(void)state;
	packed_size_shift("name=p,items=2048,blocksize=128,keysize=64");
}

/* The same shift in a full purge_lru cache: new keys take the victims'
 * slots (SIEVE), each at the phase's size; none is refused. */
static void test_packed_heap_size_shift_lru_inserts_never_fail(void **state)
{
	static const size_t band[] = { 100, 1, 128, 40, 70, 128, 20, 110 };
	ucache_t *c = ut_cache("name=p,items=2048,blocksize=128,keysize=64,purge_lru=1");
	char k[24];
	int i, phase;

	(void)state;
	for (phase = 0, i = 0; phase < 12; phase++) {
		for (; i < (phase + 1) * 3000; i++) {
			snprintf(k, sizeof(k), "k%d", i);
			if (put(c, k, band[phase % 8], 0))
				fail_msg("phase %d: %s refused", phase, k);
		}
		ut_check(c);
		expect_put(c, k, band[phase % 8]);
	}
	ut_destroy(c);
}

/* ---------------------------------------------------------------- repair */

static void repair_keeps_all(const char *keyval, int n, size_t maxlen)
{
	ucache_t *c = ut_cache(keyval);
	char k[64];
	int i;
	struct ucache_stats before, after;

	for (i = 0; i < n; i++) {
		snprintf(k, sizeof(k), i % 2 ? "r%d" : "a-long-repair-key-%d", i);
		assert_int_equal(put(c, k, 1 + (size_t)i * 37 % maxlen, 0), 0);
	}
	for (i = 0; i < n; i += 4) { /* holes in the slot table and the heaps */
		snprintf(k, sizeof(k), i % 2 ? "r%d" : "a-long-repair-key-%d", i);
		assert_int_equal(ucache_del(c, k, strlen(k)), 0);
	}
	ucache_stats(c, &before);
	assert_int_equal(ucache_repair(c), n - (n + 3) / 4);
	ucache_stats(c, &after);
	assert_int_equal(after.items, before.items);
	assert_int_equal(after.bytes_used, before.bytes_used);
	assert_int_equal(after.blocks_used, before.blocks_used);
	ut_check(c);
	for (i = 0; i < n; i++) {
		snprintf(k, sizeof(k), i % 2 ? "r%d" : "a-long-repair-key-%d", i);
		if (i % 4)
			expect_put(c, k, 1 + (size_t)i * 37 % maxlen);
		else
			assert_int_equal(ucache_exists(c, k, strlen(k)), -ENOENT);
	}
	/* the rebuilt free lists hand out only free storage */
	for (i = 0; i < n; i += 4) {
		snprintf(k, sizeof(k), i % 2 ? "r%d" : "a-long-repair-key-%d", i);
		assert_int_equal(put(c, k, maxlen - (size_t)i % 7, 0), 0);
	}
	ut_check(c);
	for (i = 0; i < n; i++) {
		snprintf(k, sizeof(k), i % 2 ? "r%d" : "a-long-repair-key-%d", i);
		expect_put(c, k, i % 4 ? 1 + (size_t)i * 37 % maxlen : maxlen - (size_t)i % 7);
	}
	ut_destroy(c);
}

static void test_repair_keeps_all_items(void **state)
{
	(void)state;
	repair_keeps_all("name=r,items=200,blocksize=512,keysize=64", 199, 512);
	repair_keeps_all("name=r,items=200,blocks=1200,blocksize=64,bitmap=1,keysize=64", 150, 300);
}

/* ---------------------------------------------------------------- memory */

/* 100-byte values cost their size class, not a block: resident memory per
 * item stays near 24 (slot) + 112 (key and value) bytes, plus the bucket
 * array's pages (4 bytes a bucket, 2^17 of them for this cache, touched
 * by 20k keys), whatever the blocksize. */
static void test_resident_bytes_track_use_per_item(void **state)
{
	ucache_t *c = ut_cache("name=res,items=100001");
	uint64_t before = ucache_resident_bytes(c), after, per_item;
	char k[32], v[100];
	int i;

	(void)state;
	assert_true(before < (1u << 20));
	memset(v, 'v', sizeof(v));
	for (i = 0; i < 20000; i++) {
		snprintf(k, sizeof(k), "key:%07d", i);
		assert_int_equal(ucache_set(c, k, strlen(k), v, sizeof(v), 0, 0), 0);
	}
	after = ucache_resident_bytes(c);
	per_item = (after - before) / 20000;
	print_message("resident: %llu bytes per item\n", (unsigned long long)per_item);
	assert_true(per_item >= 24 + 100 + 11);
	assert_true(per_item < 400);
	ut_destroy(c);
}

/* Deleted slots that stripes keep in their stashes (core/index.c) are
 * still free space: after deleting everything, items - 1 new keys of other
 * sizes fit without a single "full", and the counters never show stashed
 * slots as items or bytes. */
static void test_stashed_slots_count_as_free(void **state)
{
	enum { ITEMS = 300 };
	ucache_t *c = ut_cache("name=s,items=300,blocksize=512");
	char k[32];
	int i, round;

	(void)state;
	for (round = 0; round < 3; round++) {
		size_t len = 40 + 200 * (size_t)round; /* a new size class each round */
		for (i = 0; i < ITEMS - 1; i++) {
			snprintf(k, sizeof(k), "r%d-%d", round, i);
			assert_int_equal(put(c, k, len, 0), 0);
		}
		snprintf(k, sizeof(k), "r%d-one-too-many", round);
		assert_int_equal(put(c, k, len, 0), -ENOSPC);
		assert_int_equal(ut_stats(c).items, ITEMS - 1);
		assert_int_equal(ut_stats(c).bytes_used, (uint64_t)(ITEMS - 1) * len);
		for (i = 0; i < ITEMS - 1; i++) {
			snprintf(k, sizeof(k), "r%d-%d", round, i);
			expect_put(c, k, len);
			assert_int_equal(ucache_del(c, k, strlen(k)), 0);
		}
		assert_int_equal(ut_stats(c).items, 0);
		assert_int_equal(ut_stats(c).bytes_used, 0);
		ut_check(c);
	}
	assert_int_equal(ut_stats(c).full, 3); /* the three one-too-many, nothing else */
	ut_destroy(c);
}

/* Values of 16 KiB and more are copied with streaming stores (core/
 * index.c): every length around the threshold and the 64-byte loop, at
 * every alignment a key length gives, inserted and updated in place, reads
 * back byte for byte. */
static void test_large_values_round_trip_streamed(void **state)
{
	static const size_t lens[] = { 16383, 16384, 16385, 16384 + 63, 16384 + 64, 16384 + 65, 65535, 65536 };
	ucache_t *c = ut_cache("name=s,items=64,blocksize=65536,keysize=32");
	char k[32], *other = malloc(65536);
	size_t i, kl;

	(void)state;
	assert_non_null(other);
	for (kl = 1; kl <= 17; kl += 4) {
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			snprintf(k, sizeof(k), "%.*s%zu", (int)kl, "kkkkkkkkkkkkkkkkk", i);
			assert_int_equal(put(c, k, lens[i], UCACHE_SET_UPDATE), 0);
			expect_put(c, k, lens[i]);
			fill(other, lens[i], "another value"); /* same class: copied in place */
			assert_int_equal(ucache_set(c, k, strlen(k), other, lens[i], 0, UCACHE_SET_UPDATE), 0);
			ut_expect_mem(c, k, strlen(k), other, lens[i]);
		}
	}
	free(other);
	ut_check(c);
	ut_destroy(c);
}

/* Bench "mem" found a 10000-item cache of 64 KiB blocks mapping 176 KiB
 * more than stock once the tag generations had a fixed 512 KiB table: the
 * region and the table together stay within stock's mapping. */
static void test_bug_tag_table_over_stock_mapping(void **state)
{
	static const char *const geoms[] = {
		"name=m,items=10000", "name=m,items=100000,blocksize=128", "name=m,items=10,blocksize=10",
		"name=m,items=1000,blocks=4000,blocksize=100,bitmap=1", "name=m,items=2,keysize=8,blocksize=1",
		"name=m,items=1000000,blocksize=128,keysize=64",
	};
	struct ucache_stats st;
	ucache_t *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(geoms) / sizeof(geoms[0]); i++) {
		c = ut_cache(geoms[i]);
		ucache_stats(c, &st);
		if (st.mapped_bytes > st.stock_mapped_bytes)
			fail_msg("%s: maps %llu bytes, stock %llu", geoms[i], (unsigned long long)st.mapped_bytes,
				 (unsigned long long)st.stock_mapped_bytes);
		ut_destroy(c);
	}
}

static void test_memory_mapping_is_virtual_rss_small(void **state)
{
	ucache_t *c;
	uint64_t rss0, rss1, rss2;
	struct ucache_stats st;
	char k[32];
	int i;

	(void)state;
	rss0 = ut_rss_bytes();
	c = ut_cache("name=m,items=100000"); /* 64 KiB blocks: ~6.5 GB of values */
	rss1 = ut_rss_bytes();
	ucache_stats(c, &st);
	assert_true(st.mapped_bytes >= 100000ull * 65536);
	assert_true(st.metadata_bytes >= 100000ull * 32);
	assert_true(st.mapped_bytes <= st.stock_mapped_bytes); /* never more address space than stock */
	print_message("    mapped %llu MB, RSS +%llu KB after create\n", (unsigned long long)(st.mapped_bytes >> 20),
		      (unsigned long long)((rss1 - rss0) >> 10));
	assert_true(rss1 - rss0 < 2u << 20);
	for (i = 0; i < 1000; i++) { /* 1000 small items commit little more */
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(put(c, k, 100, 0), 0);
	}
	rss2 = ut_rss_bytes();
	assert_true(rss2 - rss0 < 4u << 20);
	ut_check(c);
	ut_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bitmap_13_blocks),
		T(test_bitmap_67_blocks),
		T(test_bitmap_value_spanning_blocks),
		T(test_bitmap_next_fit_wraps_around),
		T(test_bitmap_fragmentation),
		T(test_issue527_bitmap_capacity),
		T(test_bitmap_update_allocates_before_freeing),
		T(test_bitmap_same_size_update_needs_no_second_run),
		T(test_bitmap_key_moves_between_block_tail_and_key_heap),
		T(test_single_block_any_size_mix_keeps_capacity),
		T(test_single_block_max_values_after_small_churn),
		T(test_packed_heap_size_shift_keeps_capacity),
		T(test_packed_heap_size_shift_lru_inserts_never_fail),
		T(test_repair_keeps_all_items),
		T(test_bug_tag_table_over_stock_mapping),
		T(test_memory_mapping_is_virtual_rss_small),
		T(test_resident_bytes_track_use_per_item),
		T(test_stashed_slots_count_as_free),
		T(test_large_values_round_trip_streamed),
	};

	return cmocka_run_group_tests_name("storage", tests, NULL, NULL);
}
