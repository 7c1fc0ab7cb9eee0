/*
 * test_expiry.c - unit tests of expiry (core/ops.c, core/write.c,
 * core/evict.c): TTLs against a fake clock (ucache_set_clock), with and
 * without purge_lru (stock bug: LRU stored the TTL unconverted), with no
 * sweeper at all (stock bug: expired items were served), the bounded sweep
 * (ucache_sweep), lazy_expire, re-setting an expired key, absolute expiry
 * and the counters that report all of it.
 *
 * Rule under test everywhere: an item whose absolute expiry e is non-zero
 * is served while now < e and never once e <= now.
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

#define T0 UT_T0

/* Set "ttl" with a 10 s TTL at T0, then walk the clock across T0 + 10. */
static void ttl_boundary(const char *keyval)
{
	ucache_t *c = ut_cache(keyval);
	char buf[16], k[32], ibuf[64];
	size_t len = 0;
	int64_t n;
	uint64_t cur = 0;
	int i;

	assert_int_equal(ut_set(c, "ttl", "value", 10, 0), 0);
	assert_int_equal(ut_set(c, "forever", "value", 0, 0), 0);
	assert_int_equal(ucache_math(c, "ctr", 3, UCACHE_MATH_INC, 1, 10, NULL), 0);
	for (i = 0; i < 20; i++) { /* a few neighbours so LRU caches have choices */
		snprintf(k, sizeof(k), "n%d", i);
		assert_int_equal(ut_set(c, k, "v", 0, 0), 0);
	}
	assert_int_equal(ut_expires_of(c, "ttl"), T0 + 10);
	ut_clock_set(T0 + 9);
	ut_expect(c, "ttl", "value");
	assert_int_equal(ucache_exists(c, "ttl", 3), 0);
	assert_int_equal(ucache_num(c, "ctr", 3, &n), 0);
	ut_clock_set(T0 + 10); /* expires <= now: expired */
	assert_int_equal(ut_get(c, "ttl", buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ucache_exists(c, "ttl", 3), -ENOENT);
	assert_int_equal(ucache_num(c, "ctr", 3, &n), -ENOENT);
	assert_null(ucache_get_alloc(c, "ttl", 3, &len, NULL));
	assert_int_equal(errno, ENOENT);
	while (ucache_iter(c, &cur, ibuf, sizeof(ibuf), &len) == 0)
		assert_false(len == 3 && (!memcmp(ibuf, "ttl", 3) || !memcmp(ibuf, "ctr", 3)));
	ut_clock_set(T0 + 11);
	assert_int_equal(ut_get(c, "ttl", buf, sizeof(buf), &len), -ENOENT);
	ut_clock_set(T0 + 1000000);
	assert_int_equal(ut_get(c, "ttl", buf, sizeof(buf), &len), -ENOENT);
	ut_expect(c, "forever", "value");
	ut_check(c);
	ut_destroy(c);
}

static void test_ttl_served_before_expiry_never_at_or_after(void **state)
{
	(void)state;
	ttl_boundary("name=e,items=100,blocksize=64,keysize=32");
}

static void test_ttl_with_purge_lru_exact(void **state)
{
	(void)state; /* stock bug: purge_lru stored the TTL unconverted */
	ttl_boundary("name=e,items=64,blocksize=64,keysize=32,purge_lru=1");
}

static void test_ttl_with_purge_lru_sampled(void **state)
{
	(void)state;
	ttl_boundary("name=e,items=1000,blocksize=64,keysize=32,purge_lru=1");
}

static void test_ttl_with_lazy_expire(void **state)
{
	(void)state;
	ttl_boundary("name=e,items=100,blocksize=64,keysize=32,lazy_expire=1");
}

static void test_ttl_bitmap_mode(void **state)
{
	(void)state;
	ttl_boundary("name=e,items=100,blocks=300,blocksize=16,keysize=32,bitmap=1");
}

/* Stock bug: without lazy_expire and without a sweeper, expired items were
 * still returned.  Nothing sweeps here: the item stays counted but is
 * never served. */
static void test_ttl_no_sweeper_not_served(void **state)
{
	ucache_t *c = ut_cache("name=e,items=10,blocksize=64");
	char buf[16];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "k", "v", 1, 0), 0);
	ut_clock_advance(1);
	assert_int_equal(ut_get(c, "k", buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ucache_items(c), 1); /* expired but not swept */
	assert_int_equal(ut_stats(c).expirations, 0);
	assert_int_equal(ut_stats(c).misses, 1);
	assert_int_equal(ut_stats(c).hits, 0);
	ut_destroy(c);
}

/* --------------------------------------------------------------- sweep */

static void test_sweep_frees_expired_items(void **state)
{
	ucache_t *c = ut_cache("name=s,items=200,blocksize=64");
	uint64_t kept_bytes = 0;
	char k[16];
	int i;

	(void)state;
	for (i = 0; i < 150; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(ut_set(c, k, k, i % 3 ? 10 : 0, 0), 0); /* 100 with a TTL */
		kept_bytes += i % 3 ? 0 : strlen(k);
	}
	assert_int_equal(ucache_sweep(c, ucache_now(), 1000), 0); /* nothing expired yet */
	assert_int_equal(ucache_sweep(c, T0 + 9, 1000), 0);      /* sweep uses its own now */
	ut_clock_advance(10);
	assert_int_equal(ucache_sweep(c, ucache_now(), 1000), 100);
	assert_int_equal(ucache_items(c), 50);
	assert_int_equal(ut_stats(c).expirations, 100);
	assert_int_equal(ut_stats(c).bytes_used, kept_bytes);
	for (i = 0; i < 150; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		if (i % 3)
			assert_int_equal(ucache_exists(c, k, strlen(k)), -ENOENT);
		else
			ut_expect(c, k, k);
	}
	assert_int_equal(ucache_sweep(c, ucache_now(), 1000), 0);
	assert_int_equal(ucache_sweep(c, ucache_now(), 0), 0);
	ut_check(c);
	ut_destroy(c);
}

static void test_sweep_respects_budget(void **state)
{
	ucache_t *c = ut_cache("name=s,items=10001,blocksize=16,hashsize=1024");
	uint64_t total = 0, calls = 0;
	int64_t n;

	(void)state;
	ut_set_k(c, 0, 10000, "v", 5);
	ut_clock_advance(5);
	assert_int_equal(ucache_sweep(c, ucache_now(), 10), 10); /* everything expired: exactly the budget */
	total = 10;
	while (total < 10000 && calls < 100000) {
		n = ucache_sweep(c, ucache_now(), 10);
		assert_in_range(n, 0, 10);
		total += (uint64_t)n;
		calls++;
	}
	assert_int_equal(total, 10000);
	assert_true(calls >= 999);
	assert_int_equal(ucache_items(c), 0);
	assert_int_equal(ut_stats(c).expirations, 10000);
	ut_check(c);
	ut_destroy(c);
}

/* The cost of a sweep depends on its budget, not on the cache size: with
 * budget 10 it examines at most 80 slots, so an expired item stored after
 * 9999 live ones is not found by the first call (slots are handed out in
 * order on a fresh cache), only once the shared cursor gets there. */
static void test_sweep_cost_bounded_by_budget(void **state)
{
	ucache_t *c = ut_cache("name=s,items=10001,blocksize=16,hashsize=1024");
	int calls = 0;

	(void)state;
	ut_set_k(c, 0, 9999, "v", 0);
	assert_int_equal(ut_set(c, "last", "v", 1, 0), 0);
	ut_clock_advance(1);
	assert_int_equal(ucache_sweep(c, ucache_now(), 10), 0);
	while (ucache_sweep(c, ucache_now(), 10) == 0 && calls < 1000)
		calls++;
	assert_in_range(calls, 100, 130); /* 10000 slots / 80 per call */
	assert_int_equal(ucache_items(c), 9999);
	assert_int_equal(ut_stats(c).expirations, 1);
	ut_destroy(c);
}

/* ---------------------------------------------------------------- lazy */

static void test_lazy_expire_deletes_on_access(void **state)
{
	ucache_t *c = ut_cache("name=l,items=10,blocksize=64,lazy_expire=1");
	char buf[16];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "a", "v", 5, 0), 0);
	assert_int_equal(ut_set(c, "b", "v", 5, 0), 0);
	assert_int_equal(ut_set(c, "c", "v", 0, 0), 0);
	ut_clock_advance(5);
	assert_int_equal(ucache_items(c), 3);
	assert_int_equal(ut_get(c, "a", buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ucache_items(c), 2);
	assert_int_equal(ut_stats(c).expirations, 1);
	assert_int_equal(ucache_exists(c, "b", 1), -ENOENT);
	assert_int_equal(ucache_items(c), 1);
	assert_int_equal(ut_stats(c).expirations, 2);
	assert_int_equal(ut_stats(c).bytes_used, 1);
	ut_expect(c, "c", "v");
	ut_check(c);
	ut_destroy(c);
}

static void test_no_lazy_expire_keeps_item_until_swept(void **state)
{
	ucache_t *c = ut_cache("name=l,items=10,blocksize=64");
	char buf[16];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "a", "v", 5, 0), 0);
	ut_clock_advance(5);
	assert_int_equal(ut_get(c, "a", buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ucache_items(c), 1);
	assert_int_equal(ucache_sweep(c, ucache_now(), 10), 1);
	assert_int_equal(ucache_items(c), 0);
	assert_int_equal(ut_stats(c).expirations, 1);
	ut_destroy(c);
}

/* ------------------------------------------------------------ re-setting */

static void test_expired_key_can_be_set_again(void **state)
{
	ucache_t *c = ut_cache("name=r,items=10,blocksize=64");

	(void)state;
	assert_int_equal(ut_set(c, "k", "old", 5, 0), 0);
	assert_int_equal(ut_set(c, "k", "new", 5, 0), -EEXIST);
	ut_clock_advance(5);
	assert_int_equal(ut_set(c, "k", "new", 20, 0), 0); /* absent, so set succeeds */
	ut_expect(c, "k", "new");
	assert_int_equal(ut_expires_of(c, "k"), T0 + 25);
	assert_int_equal(ucache_items(c), 1);
	assert_int_equal(ut_stats(c).expirations, 1);
	/* the same through update, and for a counter */
	ut_clock_advance(20);
	assert_int_equal(ut_set(c, "k", "newer", 0, UCACHE_SET_UPDATE), 0);
	ut_expect(c, "k", "newer");
	assert_int_equal(ut_expires_of(c, "k"), 0);
	assert_int_equal(ut_stats(c).expirations, 2);
	ut_check(c);
	ut_destroy(c);
}

static void test_expired_key_in_full_cache_can_be_set_again(void **state)
{
	ucache_t *c = ut_cache("name=r,items=4,blocksize=64");

	(void)state;
	assert_int_equal(ut_set(c, "a", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "b", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "k", "old", 5, 0), 0);
	ut_clock_advance(5);
	assert_int_equal(ut_set(c, "k", "new", 0, 0), 0);
	ut_expect(c, "k", "new");
	assert_int_equal(ut_stats(c).full, 0);
	ut_check(c);
	ut_destroy(c);
}

/* ----------------------------------------------------- absolute expiry */

/* Slots hold 32-bit expiries (layout v6): later ones, absolute or
 * relative, become 2106-02-07, which stays in the future (never wraps
 * into the past, where the item would read as expired). */
static void test_far_expiry_clamped_never_expired(void **state)
{
	ucache_t *c = ut_cache("name=a,items=10,blocksize=64");

	(void)state;
	assert_int_equal(ut_set(c, "abs", "v", UINT64_MAX, UCACHE_SET_ABSEXPIRE), 0);
	assert_true(ut_expires_of(c, "abs") == UINT32_MAX);
	assert_int_equal(ut_set(c, "rel", "v", (uint64_t)1 << 40, 0), 0);
	assert_true(ut_expires_of(c, "rel") == UINT32_MAX);
	assert_int_equal(ut_set(c, "edge", "v", UINT32_MAX - T0, 0), 0);
	assert_true(ut_expires_of(c, "edge") == UINT32_MAX);
	assert_int_equal(ut_set(c, "last", "v", UINT32_MAX - T0 - 1, 0), 0);
	assert_true(ut_expires_of(c, "last") == UINT32_MAX - 1);
	ut_clock_set((uint64_t)UINT32_MAX - 1);
	ut_expect(c, "abs", "v");
	ut_expect(c, "rel", "v");
	ut_destroy(c);
}

static void test_absolute_expiry_flag(void **state)
{
	ucache_t *c = ut_cache("name=a,items=10,blocksize=64");
	char buf[16];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "abs", "v", T0 + 500, UCACHE_SET_ABSEXPIRE), 0);
	assert_int_equal(ut_expires_of(c, "abs"), T0 + 500);
	assert_int_equal(ut_set(c, "upd", "v", 0, 0), 0);
	assert_int_equal(ut_set(c, "upd", "w", T0 + 7, UCACHE_SET_UPDATE | UCACHE_SET_ABSEXPIRE), 0);
	assert_int_equal(ut_expires_of(c, "upd"), T0 + 7);
	/* an absolute time in the past: stored, never served */
	assert_int_equal(ut_set(c, "past", "v", T0 - 1, UCACHE_SET_ABSEXPIRE), 0);
	assert_int_equal(ut_get(c, "past", buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ut_set(c, "now", "v", T0, UCACHE_SET_ABSEXPIRE), 0);
	assert_int_equal(ut_get(c, "now", buf, sizeof(buf), &len), -ENOENT);
	/* 0 still means never */
	assert_int_equal(ut_set(c, "zero", "v", 0, UCACHE_SET_ABSEXPIRE), 0);
	assert_int_equal(ut_expires_of(c, "zero"), 0);
	ut_clock_set(T0 + 499);
	ut_expect(c, "abs", "v");
	assert_int_equal(ut_get(c, "upd", buf, sizeof(buf), &len), -ENOENT);
	ut_clock_set(T0 + 500);
	assert_int_equal(ut_get(c, "abs", buf, sizeof(buf), &len), -ENOENT);
	ut_expect(c, "zero", "v");
	ut_destroy(c);
}

/* -------------------------------------------------- full and expiry mixed */

static void test_full_cache_reclaims_expired_items_first(void **state)
{
	ucache_t *c = ut_cache("name=f,items=10,blocksize=64");

	(void)state;
	ut_set_k(c, 0, 3, NULL, 5);
	ut_set_k(c, 3, 9, NULL, 0);
	assert_int_equal(ut_set(c, "new", "v", 0, 0), -ENOSPC);
	ut_clock_advance(5);
	assert_int_equal(ut_set(c, "new", "v", 0, 0), 0);
	ut_expect(c, "new", "v");
	ut_expect_k(c, 3, 9);
	assert_int_equal(ut_stats(c).full, 2);
	assert_int_equal(ut_stats(c).expirations, 3); /* the first sweep step finds all 3 */
	ut_check(c);
	ut_destroy(c);
}

/* With purge_lru, an expired item goes before the least recently used
 * live one, even when the expired item is the most recently used. */
static void test_lru_reclaims_expired_before_evicting(void **state)
{
	ucache_t *c = ut_cache("name=f,items=10,blocksize=64,purge_lru=1");

	(void)state;
	ut_set_k(c, 0, 8, NULL, 0);
	assert_int_equal(ut_set(c, "ttl", "v", 5, 0), 0);
	ut_clock_advance(5);
	assert_int_equal(ut_set(c, "new", "v", 0, 0), 0);
	ut_expect_k(c, 0, 8);
	assert_int_equal(ut_stats(c).evictions, 0);
	assert_int_equal(ut_stats(c).expirations, 1);
	ut_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_ttl_served_before_expiry_never_at_or_after),
		T(test_ttl_with_purge_lru_exact),
		T(test_ttl_with_purge_lru_sampled),
		T(test_ttl_with_lazy_expire),
		T(test_ttl_bitmap_mode),
		T(test_ttl_no_sweeper_not_served),
		T(test_sweep_frees_expired_items),
		T(test_sweep_respects_budget),
		T(test_sweep_cost_bounded_by_budget),
		T(test_lazy_expire_deletes_on_access),
		T(test_no_lazy_expire_keeps_item_until_swept),
		T(test_expired_key_can_be_set_again),
		T(test_expired_key_in_full_cache_can_be_set_again),
		T(test_far_expiry_clamped_never_expired),
		T(test_absolute_expiry_flag),
		T(test_full_cache_reclaims_expired_items_first),
		T(test_lru_reclaims_expired_before_evicting),
	};

	return cmocka_run_group_tests_name("expiry", tests, NULL, NULL);
}
