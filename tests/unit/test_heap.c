/*
 * test_heap.c - the slab allocator alone: classes, reuse, page recycling,
 * the capacity guarantee (a page per slot always suffices), rebuild and
 * verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "heap.h"

struct fixture {
	struct uc_heap_state st;
	struct uc_heap h;
};

static struct fixture *make(uint64_t page_size, uint32_t npages)
{
	struct fixture *f = calloc(1, sizeof(*f));

	uc_heap_format(&f->st, page_size, npages);
	f->h.st = &f->st;
	f->h.pages = calloc(npages, sizeof(struct uc_heap_page));
	f->h.data = calloc(npages, f->st.page_size);
	return f;
}

static void destroy(struct fixture *f)
{
	free(f->h.pages);
	free(f->h.data);
	free(f);
}

static void classes_ascend_and_end_at_page(void **state)
{
	struct fixture *f = make(65536, 1);
	uint32_t i;

	(void)state;
	assert_true(f->st.nclass > 8 && f->st.nclass <= UC_HEAP_MAXCLASS);
	for (i = 1; i < f->st.nclass; i++) {
		assert_true(f->st.class_size[i] > f->st.class_size[i - 1]);
		/* slack bounded: next class at most 1/8 (+1 unit) bigger */
		assert_true(f->st.class_size[i] <= f->st.class_size[i - 1] + f->st.class_size[i - 1] / 8 + 16 ||
			    i == f->st.nclass - 1);
	}
	assert_int_equal(f->st.class_size[f->st.nclass - 1], 65536);
	assert_int_equal(uc_heap_chunk_size(&f->st, 100), 112);
	assert_int_equal(uc_heap_chunk_size(&f->st, 1), 16);
	assert_int_equal(uc_heap_chunk_size(&f->st, 65537), 0);
	destroy(f);
}

/* The 4 KiB lookup table agrees with the definition: the smallest class
 * that holds the size, for page sizes from tiny to past 1 MiB (where the
 * smallest class grows so a page keeps <= 65535 chunks). */
static void class_table_matches_smallest_fitting_class(void **state)
{
	static const uint64_t pages[] = { 16, 64, 144, 2176, 4096, 67584, (1u << 20) + 2048, 4u << 20 };
	size_t p;

	(void)state;
	for (p = 0; p < sizeof(pages) / sizeof(pages[0]); p++) {
		struct uc_heap_state st;
		uint64_t size, top = pages[p] < 5000 ? pages[p] + 1 : 5000;
		uc_heap_format(&st, pages[p], 1);
		assert_true(st.page_size / st.class_size[0] <= UC_HEAP_PAGE_CHUNKS);
		for (size = 1; size <= top; size++) {
			uint32_t i, want = 0;
			for (i = 0; i < st.nclass && !want; i++)
				if (st.class_size[i] >= size)
					want = st.class_size[i];
			assert_int_equal(uc_heap_chunk_size(&st, size), want);
		}
	}
}

static void small_chunks_pack_into_one_page(void **state)
{
	struct fixture *f = make(4096, 4);
	int64_t off[36];
	int i;

	(void)state;
	for (i = 0; i < 36; i++) { /* 36 x 112 = 4032 <= 4096 */
		off[i] = uc_heap_alloc(&f->h, 100);
		assert_true(off[i] >= 0);
		assert_true(off[i] / 4096 == 0);
	}
	assert_int_equal(f->st.pages_used, 1);
	assert_true(uc_heap_alloc(&f->h, 100) / 4096 == 1); /* 37th opens page 1 */
	for (i = 0; i < 36; i++)
		uc_heap_free(&f->h, (uint64_t)off[i], 100);
	assert_int_equal(f->st.pages_used, 1);
	destroy(f);
}

static void freed_chunk_is_reused_first(void **state)
{
	struct fixture *f = make(4096, 2);
	int64_t a = uc_heap_alloc(&f->h, 50), b = uc_heap_alloc(&f->h, 50);

	(void)state;
	assert_true(b > a);
	uc_heap_free(&f->h, (uint64_t)a, 50);
	assert_int_equal(uc_heap_alloc(&f->h, 50), a);
	destroy(f);
}

static void empty_page_serves_another_class(void **state)
{
	struct fixture *f = make(1024, 1);
	int64_t a = uc_heap_alloc(&f->h, 16);

	(void)state;
	assert_int_equal(uc_heap_alloc(&f->h, 1024), -1); /* the only page holds class 16 */
	uc_heap_free(&f->h, (uint64_t)a, 16);
	assert_int_equal(f->st.pages_used, 0);
	assert_int_equal(uc_heap_alloc(&f->h, 1024), 0);
	destroy(f);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* With npages pages and at most npages-1 live chunks, any size fits. */
static void capacity_guarantee_random_mix(void **state)
{
	enum { N = 64 };
	struct fixture *f = make(2048, N);
	int64_t off[N - 1];
	uint64_t size[N - 1], x = 42;
	int i, round;

	(void)state;
	memset(off, -1, sizeof(off));
	for (round = 0; round < 20000; round++) {
		i = (int)(rnd(&x) % (N - 1));
		if (off[i] >= 0) {
			uc_heap_free(&f->h, (uint64_t)off[i], size[i]);
			off[i] = -1;
		}
		size[i] = 1 + rnd(&x) % 2048;
		off[i] = uc_heap_alloc(&f->h, size[i]);
		assert_true(off[i] >= 0);
	}
	destroy(f);
}

static struct fixture *make_packed(uint64_t page_size, uint64_t max_chunk, uint64_t items)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint32_t npages = (uint32_t)uc_heap_packed_pages(page_size, max_chunk, items);

	uc_heap_format_packed(&f->st, page_size, max_chunk, npages);
	f->h.st = &f->st;
	f->h.pages = calloc(npages, sizeof(struct uc_heap_page));
	f->h.data = calloc(npages, f->st.page_size);
	return f;
}

static void packed_classes_end_at_max_chunk(void **state)
{
	struct fixture *f = make_packed(4096, 192, 100);

	(void)state;
	assert_int_equal(f->st.class_size[f->st.nclass - 1], 192);
	assert_int_equal(uc_heap_chunk_size(&f->st, 112), 112); /* a 12-byte key, a 100-byte value */
	assert_int_equal(uc_heap_chunk_size(&f->st, 193), 0);
	/* many of the largest share a page: 21 chunks of 192 bytes in 4 KiB */
	assert_int_equal(uc_heap_alloc(&f->h, 192), 0);
	assert_int_equal(uc_heap_alloc(&f->h, 192), 192);
	assert_int_equal(f->st.pages_used, 1);
	destroy(f);
}

/* Move every chunk of the draining pages, as compact.c does with items. */
static int compact(struct fixture *f, int64_t *off, const uint64_t *size, int n)
{
	uint32_t pages[64], k = uc_heap_drain_begin(&f->h, pages, 64), j;
	int i;

	for (i = 0; i < n; i++) {
		if (off[i] >= 0 && uc_heap_draining(&f->h, (uint64_t)off[i])) {
			int64_t to = uc_heap_alloc(&f->h, size[i]);
			assert_true(to >= 0);
			uc_heap_free(&f->h, (uint64_t)off[i], size[i]);
			off[i] = to;
		}
	}
	for (j = 0; j < k; j++)
		uc_heap_drain_end(&f->h, pages[j]);
	return (int)k;
}

/* A packed heap keeps the slab heap's guarantee (room for the largest
 * while an item is free) with compaction: sizes shift phase by phase so
 * that pages fill with classes no longer asked for. */
static void packed_capacity_with_compaction(void **state)
{
	enum { N = 512, MAX = 192 };
	struct fixture *f = make_packed(4096, MAX, N);
	int64_t off[N - 1];
	uint64_t size[N - 1], x = 7, compactions = 0;
	int i, round;

	(void)state;
	memset(off, -1, sizeof(off));
	static const uint64_t band[] = { 192, 144, 176, 112, 160, 128, 96, 192 };

	for (round = 0; round < 8 * 600; round++) {
		i = (int)(rnd(&x) % (N - 1));
		if (off[i] >= 0)
			uc_heap_free(&f->h, (uint64_t)off[i], size[i]);
		off[i] = -1;
		size[i] = band[round / 600] - rnd(&x) % 8;
		off[i] = uc_heap_alloc(&f->h, size[i]);
		if (off[i] < 0) {
			assert_true(uc_heap_exhausted(&f->h));
			assert_true(compact(f, off, size, N - 1) > 0);
			compactions++;
			off[i] = uc_heap_alloc(&f->h, size[i]);
		}
		assert_true(off[i] >= 0);
	}
	assert_true(compactions > 0);
	destroy(f);
}

static void rebuild_restores_lists_and_verify_agrees(void **state)
{
	struct fixture *f = make(1024, 8);
	struct uc_heap_rebuild rb = { 0 };
	int64_t off[20];
	char err[128];
	int i;

	(void)state;
	for (i = 0; i < 20; i++)
		off[i] = uc_heap_alloc(&f->h, i % 2 ? 40 : 300);
	for (i = 0; i < 20; i += 3)
		uc_heap_free(&f->h, (uint64_t)off[i], i % 2 ? 40 : 300);
	/* verify against the live set */
	rb.verify = 1;
	assert_int_equal(uc_heap_rebuild_begin(&f->h, &rb), 0);
	for (i = 0; i < 20; i++)
		if (i % 3)
			assert_int_equal(uc_heap_claim(&f->h, &rb, (uint64_t)off[i], i % 2 ? 40 : 300), 0);
	assert_int_equal(uc_heap_verify(&f->h, &rb, err, sizeof(err)), 0);
	uc_heap_rebuild_free(&rb);
	/* rebuild from the same set, then allocation still works and verifies */
	memset(&rb, 0, sizeof(rb));
	assert_int_equal(uc_heap_rebuild_begin(&f->h, &rb), 0);
	for (i = 0; i < 20; i++)
		if (i % 3)
			assert_int_equal(uc_heap_claim(&f->h, &rb, (uint64_t)off[i], i % 2 ? 40 : 300), 0);
	assert_int_equal(uc_heap_claim(&f->h, &rb, (uint64_t)off[1], 40), -1); /* double claim */
	uc_heap_rebuild_end(&f->h, &rb);
	assert_true(uc_heap_alloc(&f->h, 40) >= 0);
	destroy(f);
}

static void verify_detects_wrong_used_count(void **state)
{
	struct fixture *f = make(1024, 2);
	struct uc_heap_rebuild rb = { .verify = 1 };
	char err[128] = "";
	int64_t a = uc_heap_alloc(&f->h, 100);

	(void)state;
	uc_heap_alloc(&f->h, 100);
	assert_int_equal(uc_heap_rebuild_begin(&f->h, &rb), 0);
	assert_int_equal(uc_heap_claim(&f->h, &rb, (uint64_t)a, 100), 0); /* second chunk not claimed */
	assert_int_equal(uc_heap_verify(&f->h, &rb, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "used"));
	uc_heap_rebuild_free(&rb);
	destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(classes_ascend_and_end_at_page),
		cmocka_unit_test(class_table_matches_smallest_fitting_class),
		cmocka_unit_test(small_chunks_pack_into_one_page),
		cmocka_unit_test(freed_chunk_is_reused_first),
		cmocka_unit_test(empty_page_serves_another_class),
		cmocka_unit_test(capacity_guarantee_random_mix),
		cmocka_unit_test(packed_classes_end_at_max_chunk),
		cmocka_unit_test(packed_capacity_with_compaction),
		cmocka_unit_test(rebuild_restores_lists_and_verify_agrees),
		cmocka_unit_test(verify_detects_wrong_used_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
