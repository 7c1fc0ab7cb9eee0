/*
 * test_bitmap.c - the contiguous block allocator alone: odd sizes, runs
 * across word boundaries, next-fit wrap-around, fragmentation, claims.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "bitmap.h"

static struct uc_bitmap make(uint64_t nbits)
{
	struct uc_bitmap b = { calloc(1, sizeof(struct uc_bitmap_state)), calloc(uc_bitmap_words(nbits) + 1, 8) };

	uc_bitmap_format(&b, nbits);
	return b;
}

static void destroy(struct uc_bitmap *b)
{
	free(b->st);
	free(b->words);
}

static void fills_odd_sizes_exactly(void **state)
{
	uint64_t sizes[] = { 1, 7, 13, 63, 64, 65, 67, 130 };
	size_t s;

	(void)state;
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct uc_bitmap b = make(sizes[s]);
		uint64_t i;
		for (i = 0; i < sizes[s]; i++)
			assert_int_equal(uc_bitmap_alloc(&b, 1), (int64_t)i);
		assert_int_equal(uc_bitmap_alloc(&b, 1), -1); /* no phantom bits past nbits */
		assert_int_equal(uc_bitmap_count(&b), sizes[s]);
		destroy(&b);
	}
}

static void run_crosses_word_boundary(void **state)
{
	struct uc_bitmap b = make(200);

	(void)state;
	assert_int_equal(uc_bitmap_alloc(&b, 60), 0);
	assert_int_equal(uc_bitmap_alloc(&b, 10), 60); /* bits 60..69 span words 0 and 1 */
	assert_true(uc_bitmap_all_set(&b, 55, 15));
	uc_bitmap_free(&b, 60, 10);
	assert_false(uc_bitmap_all_set(&b, 60, 1));
	destroy(&b);
}

static void next_fit_wraps_around(void **state)
{
	struct uc_bitmap b = make(10);

	(void)state;
	assert_int_equal(uc_bitmap_alloc(&b, 4), 0);
	assert_int_equal(uc_bitmap_alloc(&b, 4), 4);
	uc_bitmap_free(&b, 0, 4);
	/* hint is at 8: only 2 free there, the search wraps to 0 */
	assert_int_equal(uc_bitmap_alloc(&b, 3), 0);
	assert_int_equal(uc_bitmap_alloc(&b, 2), 8);
	assert_int_equal(uc_bitmap_alloc(&b, 1), 3);
	assert_int_equal(uc_bitmap_alloc(&b, 1), -1);
	destroy(&b);
}

static void fragmentation_blocks_long_runs(void **state)
{
	struct uc_bitmap b = make(16);
	int64_t i;

	(void)state;
	for (i = 0; i < 16; i++)
		assert_int_equal(uc_bitmap_alloc(&b, 1), i);
	for (i = 0; i < 16; i += 2)
		uc_bitmap_free(&b, (uint64_t)i, 1);
	assert_int_equal(b.st->used, 8);
	assert_int_equal(uc_bitmap_alloc(&b, 2), -1); /* 8 free blocks, no 2 adjacent */
	uc_bitmap_free(&b, 5, 1);
	assert_int_equal(uc_bitmap_alloc(&b, 3), 4);
	destroy(&b);
}

static void claim_refuses_overlap(void **state)
{
	struct uc_bitmap b = make(100);

	(void)state;
	assert_int_equal(uc_bitmap_claim(&b, 10, 20), 0);
	assert_int_equal(uc_bitmap_claim(&b, 29, 2), -1);
	assert_int_equal(uc_bitmap_claim(&b, 95, 6), -1); /* past the end */
	assert_int_equal(uc_bitmap_claim(&b, 30, 70), 0);
	assert_int_equal(b.st->used, 90);
	destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fills_odd_sizes_exactly),
		cmocka_unit_test(run_crosses_word_boundary),
		cmocka_unit_test(next_fit_wraps_around),
		cmocka_unit_test(fragmentation_blocks_long_runs),
		cmocka_unit_test(claim_refuses_overlap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
