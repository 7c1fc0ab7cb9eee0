/*
 * test_repair.c - the rebuild under memory pressure (core/repair.c).
 *
 * Regression for the bug found in review of the old check.c: when the
 * rebuild's scratch allocation failed, the key heap had already been reset,
 * the world lock cleared repair_needed anyway, and a later free read
 * class_size[UINT32_MAX].  Now every allocation happens before anything is
 * changed: each one is failed in turn (uc_fault_arm, core/util.h), and
 * after each failure the cache must be exactly as before (every item
 * readable, ucache_check clean, writes failing with -ENOMEM rather than
 * working on a half-reset allocator), and the next repair must succeed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ucache.h"
#include "ucache_test.h"
#include "util.h"

#define N_ITEMS 40

/* Item i: its key and value. */
static void item(int i, char k[64], char v[64])
{
	snprintf(k, 64, "a-key-long-enough-for-its-own-chunk-%d", i);
	snprintf(v, 64, "value-%d", i);
}

static void fill(ucache_t *c)
{
	char k[64], v[64];
	int i;

	for (i = 0; i < N_ITEMS; i++) {
		item(i, k, v);
		assert_int_equal(ut_set(c, k, v, 0, 0), 0);
	}
}

static void expect_all(ucache_t *c)
{
	char k[64], v[64];
	int i;

	for (i = 0; i < N_ITEMS; i++) {
		item(i, k, v);
		ut_expect(c, k, v);
	}
	assert_int_equal(ucache_items(c), N_ITEMS);
}

/* Fail the 1st, 2nd, ... allocation of a repair until one completes. */
static void fail_each_allocation(const char *keyval)
{
	ucache_t *c = ut_cache(keyval);
	int64_t rc;
	long n;

	fill(c);
	for (n = 1; n < 64; n++) {
		uc_fault_arm(n);
		rc = ucache_repair(c);
		if (rc >= 0) { /* fewer than n allocations: every one was failed */
			uc_fault_arm(0);
			assert_true(n > 1);
			assert_int_equal(rc, N_ITEMS);
			break;
		}
		uc_fault_arm(0);
		assert_int_equal(rc, -ENOMEM);
		assert_true(ut_log_count("out of memory for the repair's scratch space") >= 1);
		expect_all(c); /* reads still work and see everything */
		/* the cache is still marked: this write runs the repair, which now succeeds */
		assert_int_equal(ut_set(c, "after", "x", 0, 0), 0);
		assert_int_equal(ucache_del(c, "after", 5), 0);
		ut_check(c);
		expect_all(c);
	}
	assert_true(n < 64);
	ut_destroy(c);
}

static void test_rebuild_oom_single_block(void **state)
{
	(void)state;
	fail_each_allocation("name=r,items=64,blocksize=64,keysize=64");
}

static void test_rebuild_oom_bitmap(void **state)
{
	(void)state;
	fail_each_allocation("name=r,items=64,blocks=128,blocksize=16,bitmap=1,keysize=64");
}

static void test_rebuild_oom_sieve(void **state)
{
	(void)state;
	fail_each_allocation("name=r,items=200,blocksize=64,keysize=64,purge_lru=1");
}

/* While a repair cannot run, a write fails instead of looping or using
 * the half-reset allocator; the write after memory returns succeeds. */
static void test_write_fails_while_repair_cannot_run(void **state)
{
	ucache_t *c = ut_cache("name=r,items=64,blocksize=64,keysize=64");

	(void)state;
	fill(c);
	uc_fault_arm(1);
	assert_int_equal(ucache_repair(c), -ENOMEM);
	uc_fault_arm(1); /* the repair the next write runs fails too */
	assert_int_equal(ut_set(c, "w", "1", 0, 0), -ENOMEM);
	uc_fault_arm(0);
	assert_int_equal(ut_set(c, "w", "1", 0, 0), 0);
	ut_expect(c, "w", "1");
	ut_check(c);
	ut_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_rebuild_oom_single_block),
		T(test_rebuild_oom_bitmap),
		T(test_rebuild_oom_sieve),
		T(test_write_fails_while_repair_cannot_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
