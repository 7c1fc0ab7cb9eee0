/*
 * test_ops.c - unit tests of core/ops.c and core/write.c: every rule of
 * docs/STOCK_SEMANTICS.md "Operations" (get/set/update/del/exists/clear,
 * math, num, iteration, the size boundaries, counters) as its own test.
 *
 * Every test runs with the fake clock (ut_clock_set) and with engine logs
 * captured, so expiry is deterministic and "cache is FULL" lines are
 * checked instead of printed.  Values are compared byte for byte, lengths
 * and return codes exactly.
 *
 * Two iteration tests fork a writer: one iterates while it writes (keys
 * present throughout must come back exactly once), the other stops the
 * writer with SIGSTOP while it is inside its seqlock window (it spends
 * nearly all its time copying a large value in place) and resumes it after
 * 5 ms; the iteration, run in a thread, must still return every key once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucache.h"
#include "ucache_test.h"

#define T0 UT_T0

/* A small cache with a bucket count below its item count (long chains). */
#define SMALL "name=ops,items=100,blocksize=256,keysize=64,hashsize=16"

static void set_i64(ucache_t *c, const char *k, int64_t v, uint64_t expires)
{
	assert_int_equal(ucache_set(c, k, strlen(k), &v, sizeof(v), expires, UCACHE_SET_UPDATE), 0);
}

static int64_t num_of(ucache_t *c, const char *k)
{
	int64_t v = 0;

	assert_int_equal(ucache_num(c, k, strlen(k), &v), 0);
	return v;
}

static int64_t math(ucache_t *c, const char *k, enum ucache_math_op op, int64_t delta, uint64_t expires)
{
	int64_t r = 0x5a5a5a5a;

	assert_int_equal(ucache_math(c, k, strlen(k), op, delta, expires, &r), 0);
	return r;
}

/* ------------------------------------------------------------ get / set */

static void test_get_hit_exact_bytes_and_length(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	const char val[] = "hello\0world\xff"; /* 12 bytes, one NUL inside */
	unsigned char buf[64];
	size_t len = 0;
	size_t i;

	(void)state;
	assert_int_equal(ucache_set(c, "k", 1, val, 12, 0, 0), 0);
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(ucache_get(c, "k", 1, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(buf, val, 12);
	for (i = 12; i < sizeof(buf); i++) /* nothing written past the value */
		assert_int_equal(buf[i], 0xa5);
	/* a buffer of exactly the value's size is enough */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(ucache_get(c, "k", 1, buf, 12, &len), 0);
	assert_int_equal(len, 12);
	assert_memory_equal(buf, val, 12);
	ut_destroy(c);
}

static void test_get_miss_enoent(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	char buf[16];
	size_t len = 0;

	(void)state;
	assert_int_equal(ut_get(c, "nope", buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ut_set(c, "nope2", "x", 0, 0), 0);
	assert_int_equal(ut_get(c, "nope", buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ut_get(c, "nope22", buf, sizeof(buf), &len), -ENOENT); /* prefix is not a match */
	assert_int_equal(ut_get(c, "nope", buf, sizeof(buf), NULL), -ENOENT);
	ut_destroy(c);
}

static void test_set_existing_fails_keeps_old(void **state)
{
	ucache_t *c = ut_cache(SMALL);

	(void)state;
	assert_int_equal(ut_set(c, "k", "old", 0, 0), 0);
	assert_int_equal(ut_set(c, "k", "new-and-longer", 0, 0), -EEXIST);
	assert_int_equal(ut_set(c, "k", "n", 100, 0), -EEXIST);
	ut_expect(c, "k", "old");
	assert_int_equal(ut_expires_of(c, "k"), 0); /* the failed set's TTL not applied */
	assert_int_equal(ucache_items(c), 1);
	ut_check(c);
	ut_destroy(c);
}

static void test_update_creates_and_overwrites(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	char big[200];

	(void)state;
	memset(big, 'b', sizeof(big));
	assert_int_equal(ut_set(c, "k", "first", 0, UCACHE_SET_UPDATE), 0); /* creates */
	ut_expect(c, "k", "first");
	assert_int_equal(ut_set(c, "k", "second", 0, UCACHE_SET_UPDATE), 0); /* same size class */
	ut_expect(c, "k", "second");
	assert_int_equal(ucache_set(c, "k", 1, big, sizeof(big), 0, UCACHE_SET_UPDATE), 0); /* grows */
	ut_expect_mem(c, "k", 1, big, sizeof(big));
	assert_int_equal(ut_set(c, "k", "z", 0, UCACHE_SET_UPDATE), 0); /* shrinks */
	ut_expect(c, "k", "z");
	assert_int_equal(ucache_items(c), 1);
	ut_check(c);
	ut_destroy(c);
}

static void test_del_then_get_misses(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	char buf[16];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "a", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "b", "2", 0, 0), 0);
	assert_int_equal(ucache_del(c, "a", 1), 0);
	assert_int_equal(ut_get(c, "a", buf, sizeof(buf), &len), -ENOENT);
	ut_expect(c, "b", "2");
	assert_int_equal(ucache_items(c), 1);
	assert_int_equal(ut_set(c, "a", "again", 0, 0), 0); /* set works again after del */
	ut_expect(c, "a", "again");
	ut_check(c);
	ut_destroy(c);
}

static void test_del_missing_enoent(void **state)
{
	ucache_t *c = ut_cache(SMALL);

	(void)state;
	assert_int_equal(ucache_del(c, "a", 1), -ENOENT);
	assert_int_equal(ut_set(c, "a", "1", 0, 0), 0);
	assert_int_equal(ucache_del(c, "a", 1), 0);
	assert_int_equal(ucache_del(c, "a", 1), -ENOENT);
	assert_int_equal(ucache_items(c), 0);
	ut_destroy(c);
}

static void test_exists(void **state)
{
	ucache_t *c = ut_cache(SMALL);

	(void)state;
	assert_int_equal(ucache_exists(c, "k", 1), -ENOENT);
	assert_int_equal(ut_set(c, "k", "v", 0, 0), 0);
	assert_int_equal(ucache_exists(c, "k", 1), 0);
	assert_int_equal(ucache_exists(c, "kk", 2), -ENOENT);
	assert_int_equal(ucache_del(c, "k", 1), 0);
	assert_int_equal(ucache_exists(c, "k", 1), -ENOENT);
	ut_destroy(c);
}

static void test_clear_returns_count_and_empties(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	char k[16];
	int i;

	(void)state;
	assert_int_equal(ucache_clear(c), 0);
	for (i = 0; i < 7; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		assert_int_equal(ut_set(c, k, "value", 0, 0), 0);
	}
	assert_int_equal(ucache_clear(c), 7);
	assert_int_equal(ucache_items(c), 0);
	for (i = 0; i < 7; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		ut_expect_missing(c, k);
	}
	assert_int_equal(ucache_clear(c), 0);
	ut_check(c);
	/* the whole capacity is usable again */
	for (i = 0; i < 99; i++) {
		snprintf(k, sizeof(k), "new%d", i);
		assert_int_equal(ut_set(c, k, "v", 0, 0), 0);
	}
	assert_int_equal(ut_set(c, "one-too-many", "v", 0, 0), -ENOSPC);
	ut_check(c);
	ut_destroy(c);
}

/* ----------------------------------------------------------- refusals */

static void test_empty_key_refused(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	char buf[16];
	size_t len;
	int64_t n;
	uint64_t cur = 0;

	(void)state;
	assert_int_equal(ucache_set(c, "", 0, "v", 1, 0, 0), -EINVAL);
	assert_int_equal(ucache_set(c, "", 0, "v", 1, 0, UCACHE_SET_UPDATE), -EINVAL);
	assert_int_equal(ucache_set(c, NULL, 0, "v", 1, 0, 0), -EINVAL);
	assert_int_equal(ucache_get(c, "", 0, buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(ucache_exists(c, "", 0), -EINVAL);
	assert_int_equal(ucache_del(c, "", 0), -EINVAL);
	assert_int_equal(ucache_math(c, "", 0, UCACHE_MATH_INC, 1, 0, &n), -EINVAL);
	assert_int_equal(ucache_num(c, "", 0, &n), -EINVAL);
	assert_int_equal(ucache_items(c), 0);
	assert_int_equal(ucache_iter(c, &cur, buf, 64, &len), -ENOENT);
	ut_destroy(c);
}

static void test_empty_value_refused(void **state)
{
	ucache_t *c = ut_cache(SMALL);

	(void)state;
	assert_int_equal(ucache_set(c, "k", 1, "", 0, 0, 0), -EINVAL);
	assert_int_equal(ucache_set(c, "k", 1, "", 0, 0, UCACHE_SET_UPDATE), -EINVAL);
	assert_int_equal(ucache_set(c, "k", 1, NULL, 0, 0, 0), -EINVAL);
	assert_int_equal(ucache_exists(c, "k", 1), -ENOENT);
	/* an update to an empty value leaves the old value */
	assert_int_equal(ut_set(c, "k", "v", 0, 0), 0);
	assert_int_equal(ucache_set(c, "k", 1, "", 0, 0, UCACHE_SET_UPDATE), -EINVAL);
	ut_expect(c, "k", "v");
	ut_destroy(c);
}

static void test_key_keysize_ok_keysize_plus_one_refused(void **state)
{
	ucache_t *c = ut_cache(SMALL); /* keysize=64 */
	char key[65], buf[16];
	size_t len;
	int64_t n;

	(void)state;
	memset(key, 'k', sizeof(key));
	assert_int_equal(ucache_set(c, key, 64, "v", 1, 0, 0), 0);
	ut_expect_mem(c, key, 64, "v", 1);
	assert_int_equal(ucache_exists(c, key, 64), 0);
	assert_int_equal(ucache_set(c, key, 65, "v", 1, 0, 0), -E2BIG);
	assert_int_equal(ucache_set(c, key, 65, "v", 1, 0, UCACHE_SET_UPDATE), -E2BIG);
	assert_int_equal(ucache_get(c, key, 65, buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(ucache_exists(c, key, 65), -EINVAL);
	assert_int_equal(ucache_del(c, key, 65), -EINVAL);
	assert_int_equal(ucache_math(c, key, 65, UCACHE_MATH_INC, 1, 0, &n), -EINVAL);
	assert_int_equal(ucache_num(c, key, 65, &n), -EINVAL);
	assert_int_equal(ucache_items(c), 1);
	assert_int_equal(ucache_del(c, key, 64), 0);
	ut_check(c);
	ut_destroy(c);
}

static void test_value_max_blocksize_ok_plus_one_e2big(void **state)
{
	ucache_t *c = ut_cache("name=v,items=10,blocksize=100");
	char val[101];

	(void)state;
	memset(val, 'v', sizeof(val));
	val[99] = 'E';
	assert_int_equal(ucache_max_value(c), 100);
	assert_int_equal(ucache_set(c, "max", 3, val, 100, 0, 0), 0);
	ut_expect_mem(c, "max", 3, val, 100);
	assert_int_equal(ucache_set(c, "over", 4, val, 101, 0, 0), -E2BIG);
	assert_int_equal(ucache_set(c, "max", 3, val, 101, 0, UCACHE_SET_UPDATE), -E2BIG);
	ut_expect_mem(c, "max", 3, val, 100);
	assert_int_equal(ucache_exists(c, "over", 4), -ENOENT);
	ut_check(c);
	ut_destroy(c);
}

/* Regression, "get_alloc misses a bitmap cache's largest values": the
 * fused get_alloc checked key + value against the value region, where a
 * bitmap cache keeps only the value (its key is in the key heap), so a
 * value within a key's length of blocks x blocksize was reported missing
 * to the magic API (every language's cache_get) while ucache_get found it. */
static void test_get_alloc_bitmap_largest_value(void **state)
{
	ucache_t *c = ut_cache("name=bm,items=10,blocks=20,blocksize=16,bitmap=1");
	char val[320];
	size_t len = 0;
	char *got;
	int i;

	(void)state;
	for (i = 0; i < 320; i++)
		val[i] = (char)('a' + i % 26);
	assert_int_equal(ucache_set(c, "max", 3, val, 320, 0, 0), 0);
	got = ucache_get_alloc(c, "max", 3, &len, NULL);
	assert_non_null(got);
	assert_int_equal(len, 320);
	assert_memory_equal(got, val, 320);
	free(got);
	ut_destroy(c);
}

static void test_value_max_bitmap_ok_plus_one_e2big(void **state)
{
	ucache_t *c = ut_cache("name=bm,items=10,blocks=20,blocksize=16,bitmap=1");
	char val[321];
	int i;
	struct ucache_stats st;

	(void)state;
	for (i = 0; i < 321; i++)
		val[i] = (char)('a' + i % 26);
	assert_int_equal(ucache_max_value(c), 320);
	assert_int_equal(ucache_set(c, "max", 3, val, 320, 0, 0), 0);
	ut_expect_mem(c, "max", 3, val, 320);
	ucache_stats(c, &st);
	assert_int_equal(st.blocks_used, 20);
	assert_int_equal(st.bytes_used, 320);
	assert_int_equal(ucache_set(c, "over", 4, val, 321, 0, 0), -E2BIG);
	assert_int_equal(ucache_del(c, "max", 3), 0);
	assert_int_equal(ucache_set(c, "over", 4, val, 321, 0, 0), -E2BIG); /* even when empty */
	ut_check(c);
	ut_destroy(c);
}

static void test_usable_items_is_items_minus_one(void **state)
{
	ucache_t *c = ut_cache("name=cap,items=10,blocksize=64");
	struct ucache_stats st;

	(void)state;
	ucache_stats(c, &st);
	assert_int_equal(st.capacity, 9);
	ut_set_k(c, 0, 9, NULL, 0);
	ucache_stats(c, &st);
	assert_int_equal(st.full, 0);
	assert_int_equal(ut_set(c, "k9", "k9", 0, 0), -ENOSPC);
	ucache_stats(c, &st);
	assert_int_equal(st.full, 1);
	assert_int_equal(st.items, 9);
	assert_int_equal(ut_log_count("*** DANGER cache \"cap\" is FULL !!! ***"), 1);
	assert_int_equal(ut_set(c, "k9", "k9", 0, UCACHE_SET_UPDATE), -ENOSPC);
	ucache_stats(c, &st);
	assert_int_equal(st.full, 2);
	/* an update of an existing key needs no new slot */
	assert_int_equal(ut_set(c, "k3", "three", 0, UCACHE_SET_UPDATE), 0);
	ut_expect(c, "k3", "three");
	ut_expect_k(c, 0, 3);
	ut_expect_k(c, 4, 9);
	assert_int_equal(ucache_del(c, "k0", 2), 0);
	assert_int_equal(ut_set(c, "k9", "k9", 0, 0), 0);
	ut_check(c);
	ut_destroy(c);
}

static void test_get_small_buffer_enobufs_reports_needed(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	char buf[16];
	size_t len = 0;

	(void)state;
	assert_int_equal(ut_set(c, "k", "0123456789", 0, 0), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(ut_get(c, "k", buf, 9, &len), -ENOBUFS);
	assert_int_equal(len, 10);
	len = 0;
	assert_int_equal(ut_get(c, "k", buf, 0, &len), -ENOBUFS);
	assert_int_equal(len, 10);
	len = 0;
	assert_int_equal(ucache_get(c, "k", 1, NULL, 0, &len), -ENOBUFS);
	assert_int_equal(len, 10);
	assert_int_equal(ut_get(c, "k", buf, 10, &len), 0);
	assert_memory_equal(buf, "0123456789", 10);
	ut_destroy(c);
}

static void test_get_alloc(void **state)
{
	ucache_t *c = ut_cache("name=ga,items=10,blocksize=4096");
	struct ucache_item_info info = { 0, 0 };
	char big[3000];
	size_t len = 0;
	char *p;
	int i;

	(void)state;
	for (i = 0; i < (int)sizeof(big); i++)
		big[i] = (char)(i * 7);
	assert_int_equal(ut_set(c, "small", "abc", 0, 0), 0);
	assert_int_equal(ucache_set(c, "big", 3, big, sizeof(big), 60, 0), 0);
	p = ucache_get_alloc(c, "small", 5, &len, NULL);
	assert_non_null(p);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "abc", 3);
	free(p);
	p = ucache_get_alloc(c, "big", 3, &len, &info); /* larger than the first guess */
	assert_non_null(p);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(p, big, sizeof(big));
	assert_int_equal(info.expires, T0 + 60);
	assert_int_equal(info.hits, 1);
	free(p);
	errno = 0;
	assert_null(ucache_get_alloc(c, "none", 4, &len, NULL));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(ucache_get_alloc(c, "", 0, &len, NULL));
	assert_int_equal(errno, EINVAL);
	ut_destroy(c);
}

/* Every way ucache_get_alloc() returns NULL leaves *vallen as it was: the
 * plugin's magic get (plugins/ucache/takeover/api.c) hands the caller's
 * own length pointer to the engine, and stock's uwsgi_cache_magic_get()
 * writes it on a hit only.  Misses on both read paths: the fused first
 * attempt and, with lazy_expire, the general one. */
static void test_get_alloc_failure_leaves_vallen(void **state)
{
	const char *cfg[] = { "name=gv,items=10", "name=gvl,items=10,lazy_expire=1" };
	size_t len;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		ucache_t *c = ut_cache(cfg[i]);

		assert_int_equal(ut_set(c, "old", "abc", 10, 0), 0);
		ut_clock_set(T0 + 11);
		len = 12345;
		assert_null(ucache_get_alloc(c, "none", 4, &len, NULL));
		assert_null(ucache_get_alloc(c, "old", 3, &len, NULL)); /* expired */
		assert_null(ucache_get_alloc(c, "", 0, &len, NULL));    /* EINVAL */
		assert_int_equal(len, 12345);
		ut_clock_set(T0);
		ut_destroy(c);
	}
}

/* A peek (dumps, inspection) returns the value but leaves no trace: no hit
 * counted, and the LRU order is unchanged, so the peeked key is still the
 * first to be evicted. */
static void test_peek_counts_nothing_and_keeps_lru_order(void **state)
{
	ucache_t *c = ut_cache("name=peek,items=4,blocksize=64,purge_lru=1,ignore_full=1");
	struct ucache_item_info info;
	struct ucache_stats st;
	char buf[16];
	size_t len = 0;

	(void)state;
	assert_int_equal(ut_set(c, "a", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "b", "2", 0, 0), 0);
	assert_int_equal(ut_set(c, "c", "3", 0, 0), 0);
	assert_int_equal(ucache_peek(c, "a", 1, buf, sizeof(buf), &len, &info), 0);
	assert_int_equal(len, 1);
	assert_memory_equal(buf, "1", 1);
	assert_int_equal(info.hits, 0);
	assert_int_equal(ucache_peek(c, "zz", 2, buf, sizeof(buf), &len, NULL), -ENOENT);
	ucache_stats(c, &st);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 0);
	assert_int_equal(ut_set(c, "d", "4", 0, 0), 0); /* evicts a: the peek did not refresh it */
	ut_expect_missing(c, "a");
	ut_expect(c, "b", "2");
}

/* A zero-length peek reads a value's size and expiry without copying it
 * (-ENOBUFS), counting nothing: the key listing of server.c. */
static void test_peek_without_buffer_reads_size_and_expiry(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	struct ucache_item_info info = { 0 };
	struct ucache_stats st;
	size_t len = 0;

	(void)state;
	assert_int_equal(ut_set(c, "k", "0123456789", 60, 0), 0);
	assert_int_equal(ucache_peek(c, "k", 1, NULL, 0, &len, &info), -ENOBUFS);
	assert_int_equal(len, 10);
	assert_true(info.expires >= ucache_now() + 59 && info.expires <= ucache_now() + 60);
	assert_int_equal(info.hits, 0);
	ucache_stats(c, &st);
	assert_int_equal(st.hits, 0);
	ut_destroy(c);
}

static void test_get_ex_expiry_and_hits(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	struct ucache_item_info info = { 99, 99 };
	char buf[16];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "ttl", "v", 30, 0), 0);
	assert_int_equal(ut_set(c, "forever", "v", 0, 0), 0);
	assert_int_equal(ucache_get_ex(c, "ttl", 3, buf, sizeof(buf), &len, &info), 0);
	assert_int_equal(info.expires, T0 + 30);
	assert_int_equal(info.hits, 1);
	assert_int_equal(ucache_get_ex(c, "ttl", 3, buf, sizeof(buf), &len, &info), 0);
	assert_int_equal(info.hits, 2);
	assert_int_equal(ucache_get(c, "ttl", 3, buf, sizeof(buf), &len), 0);
	assert_int_equal(ucache_get_ex(c, "ttl", 3, buf, sizeof(buf), &len, &info), 0);
	assert_int_equal(info.hits, 4);
	assert_int_equal(ucache_get_ex(c, "forever", 7, buf, sizeof(buf), &len, &info), 0);
	assert_int_equal(info.expires, 0);
	assert_int_equal(info.hits, 1);
	assert_int_equal(ucache_get_ex(c, "ttl", 3, buf, sizeof(buf), &len, NULL), 0);
	ut_destroy(c);
}

/* The per-item hit counter is a 7-bit code in the slot (layout v7): exact
 * through 64 hits, then an unbiased estimate (steps of a third to a half
 * taken with probability 1 / step).  Averaged over 50 keys read 2000 times
 * each, the estimate is within 25% of 2000 (the mean's standard error is
 * ~6%); no key's estimate wraps or stalls. */
static void test_item_hits_exact_then_unbiased_estimate(void **state)
{
	ucache_t *c = ut_cache("name=hits,items=100");
	struct ucache_item_info info;
	char k[16], buf[8];
	uint64_t sum = 0;
	size_t len;
	int i, n;

	(void)state;
	for (i = 0; i < 50; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(ut_set(c, k, "v", 0, 0), 0);
		for (n = 1; n <= 2000; n++) {
			assert_int_equal(ucache_get_ex(c, k, strlen(k), buf, sizeof(buf), &len, &info), 0);
			if (n <= 65)
				assert_int_equal(info.hits, n);
		}
		assert_true(info.hits >= 200 && info.hits <= 20000);
		sum += info.hits;
	}
	print_message("mean estimate after 2000 hits: %llu\n", (unsigned long long)(sum / 50));
	assert_true(sum / 50 >= 1500 && sum / 50 <= 2500);
	ut_destroy(c);
}

/* ------------------------------------------------------------------ math */

static void test_math_missing_key_starts_from_math_initial(void **state)
{
	ucache_t *c = ut_cache("name=m,items=20,blocksize=64,math_initial=10");

	(void)state;
	assert_true(math(c, "inc", UCACHE_MATH_INC, 5, 0) == 15);
	assert_true(math(c, "dec", UCACHE_MATH_DEC, 3, 0) == 7);
	assert_true(math(c, "mul", UCACHE_MATH_MUL, 4, 0) == 40);
	assert_true(math(c, "div", UCACHE_MATH_DIV, 3, 0) == 3);
	assert_true(num_of(c, "inc") == 15);
	assert_true(num_of(c, "dec") == 7);
	assert_true(num_of(c, "mul") == 40);
	assert_true(num_of(c, "div") == 3);
	assert_int_equal(ucache_items(c), 4);
	ut_destroy(c);

	c = ut_cache("name=m,items=20,blocksize=64"); /* default math_initial = 0 */
	assert_true(math(c, "inc", UCACHE_MATH_INC, 5, 0) == 5);
	assert_true(math(c, "mul", UCACHE_MATH_MUL, 5, 0) == 0);
	ut_destroy(c);

	c = ut_cache("name=m,items=20,blocksize=64,math_initial=-42");
	assert_true(math(c, "dec", UCACHE_MATH_DEC, 1, 0) == -43);
	ut_destroy(c);
}

static void test_math_existing_key(void **state)
{
	ucache_t *c = ut_cache("name=m,items=20,blocksize=64,math_initial=10");
	int64_t r = 0;

	(void)state;
	set_i64(c, "n", 100, 0);
	assert_true(math(c, "n", UCACHE_MATH_INC, 5, 0) == 105);
	assert_true(math(c, "n", UCACHE_MATH_DEC, 10, 0) == 95);
	assert_true(math(c, "n", UCACHE_MATH_MUL, 3, 0) == 285);
	assert_true(math(c, "n", UCACHE_MATH_DIV, 4, 0) == 71);
	assert_true(math(c, "n", UCACHE_MATH_INC, -100, 0) == -29);
	assert_true(num_of(c, "n") == -29);
	assert_int_equal(ucache_math(c, "n", 1, UCACHE_MATH_INC, 1, 0, NULL), 0); /* result may be NULL */
	assert_int_equal(ucache_num(c, "n", 1, &r), 0);
	assert_true(r == -28);
	assert_int_equal(ucache_items(c), 1);
	ut_check(c);
	ut_destroy(c);
}

static void test_math_div_by_zero_gives_zero(void **state)
{
	ucache_t *c = ut_cache("name=m,items=20,blocksize=64,math_initial=10");

	(void)state;
	set_i64(c, "n", 12345, 0);
	assert_true(math(c, "n", UCACHE_MATH_DIV, 0, 0) == 0);
	assert_true(num_of(c, "n") == 0);
	assert_true(math(c, "missing", UCACHE_MATH_DIV, 0, 0) == 0);
	assert_true(num_of(c, "missing") == 0);
	ut_destroy(c);
}

/* Issue 18: engine math wrapped at the ends of int64 (INT64_MAX + 1 stored
 * INT64_MIN) while the Redis near cache's HINCRBY failed: now every path
 * fails with -ERANGE and writes nothing. */
static void test_bug_math_wraps_at_int64_max(void **state)
{
	ucache_t *c = ut_cache("name=m,items=20,blocksize=64,math_initial=10");
	int64_t r = 77;
	static const struct { int64_t start; enum ucache_math_op op; int64_t d; } over[] = {
		{ INT64_MAX, UCACHE_MATH_INC, 1 }, { INT64_MIN, UCACHE_MATH_INC, -1 },
		{ INT64_MIN, UCACHE_MATH_DEC, 1 }, { 0, UCACHE_MATH_DEC, INT64_MIN },
		{ INT64_MAX / 2 + 1, UCACHE_MATH_MUL, 2 }, { INT64_MIN, UCACHE_MATH_MUL, -1 },
		{ INT64_MIN, UCACHE_MATH_DIV, -1 }, /* also must not trap */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
		set_i64(c, "n", over[i].start, 0);
		assert_int_equal(ucache_math(c, "n", 1, over[i].op, over[i].d, 0, &r), -ERANGE);
		assert_true(r == 77);
		assert_true(num_of(c, "n") == over[i].start);
	}
	/* the ends themselves are reachable */
	set_i64(c, "n", INT64_MAX - 1, 0);
	assert_true(math(c, "n", UCACHE_MATH_INC, 1, 0) == INT64_MAX);
	assert_true(math(c, "n", UCACHE_MATH_MUL, -1, 0) == -INT64_MAX);
	assert_true(math(c, "n", UCACHE_MATH_DEC, 1, 0) == INT64_MIN);
	/* a missing key: initial + delta out of range creates nothing */
	assert_int_equal(ucache_math_ex(c, "new", 3, UCACHE_MATH_INC, 1, INT64_MAX, 0, 0, &r), -ERANGE);
	assert_int_equal(ucache_num(c, "new", 3, &r), -ENOENT);
	assert_int_equal(ucache_items(c), 1);
	ut_check(c);
	ut_destroy(c);
}

static void test_math_value_not_8_bytes_einval(void **state)
{
	ucache_t *c = ut_cache("name=m,items=20,blocksize=64");
	int64_t r = 77;
	char nine[9] = "123456789";

	(void)state;
	assert_int_equal(ut_set(c, "s", "abc", 0, 0), 0);
	assert_int_equal(ucache_math(c, "s", 1, UCACHE_MATH_INC, 1, 0, &r), -EINVAL);
	assert_true(r == 77);
	ut_expect(c, "s", "abc");
	assert_int_equal(ucache_num(c, "s", 1, &r), -EINVAL);
	assert_int_equal(ucache_set(c, "nine", 4, nine, 9, 0, 0), 0);
	assert_int_equal(ucache_math(c, "nine", 4, UCACHE_MATH_MUL, 2, 0, &r), -EINVAL);
	assert_int_equal(ucache_num(c, "nine", 4, &r), -EINVAL);
	ut_expect_mem(c, "nine", 4, nine, 9);
	ut_check(c);
	ut_destroy(c);
}

static void test_math_keeps_item_expiry(void **state)
{
	ucache_t *c = ut_cache("name=m,items=20,blocksize=64");

	(void)state;
	set_i64(c, "n", 1, 100);
	assert_int_equal(ut_expires_of(c, "n"), T0 + 100);
	ut_clock_advance(50);
	assert_true(math(c, "n", UCACHE_MATH_INC, 1, 500) == 2);
	assert_int_equal(ut_expires_of(c, "n"), T0 + 100);
	assert_true(math(c, "n", UCACHE_MATH_MUL, 10, 0) == 20);
	assert_int_equal(ut_expires_of(c, "n"), T0 + 100);
	set_i64(c, "forever", 1, 0);
	assert_true(math(c, "forever", UCACHE_MATH_INC, 1, 30) == 2);
	assert_int_equal(ut_expires_of(c, "forever"), 0);
	ut_clock_advance(50); /* T0 + 100: the counter expired with its item */
	assert_int_equal(ucache_exists(c, "n", 1), -ENOENT);
	ut_destroy(c);
}

static void test_math_missing_key_uses_given_expires(void **state)
{
	ucache_t *c = ut_cache("name=m,items=20,blocksize=64");

	(void)state;
	assert_true(math(c, "n", UCACHE_MATH_INC, 3, 60) == 3);
	assert_int_equal(ut_expires_of(c, "n"), T0 + 60);
	assert_true(math(c, "z", UCACHE_MATH_INC, 3, 0) == 3);
	assert_int_equal(ut_expires_of(c, "z"), 0);
	ut_clock_advance(60);
	assert_int_equal(ucache_exists(c, "n", 1), -ENOENT);
	/* an expired counter is missing: it restarts from math_initial */
	assert_true(math(c, "n", UCACHE_MATH_INC, 1, 10) == 1);
	assert_int_equal(ut_expires_of(c, "n"), T0 + 70);
	ut_destroy(c);
}

static void test_num(void **state)
{
	ucache_t *c = ut_cache("name=m,items=20,blocksize=64");
	int64_t v = 5;

	(void)state;
	assert_int_equal(ucache_num(c, "n", 1, &v), -ENOENT);
	assert_true(v == 5);
	set_i64(c, "n", -123456789012345LL, 0);
	assert_int_equal(ucache_num(c, "n", 1, &v), 0);
	assert_true(v == -123456789012345LL);
	assert_int_equal(ucache_num(c, "n", 1, NULL), 0);
	ut_destroy(c);
}

/* ------------------------------------------------------------- iteration */

/* Iterate the whole cache; counts[i] += 1 for each key equal to keys[i].
 * Returns the number of keys returned; fails on a key not in keys. */
static int iterate_count(ucache_t *c, char **keys, const size_t *klens, int n, int *counts)
{
	uint64_t cur = 0;
	char buf[2048];
	size_t len;
	int total = 0, i, rc;

	while ((rc = ucache_iter(c, &cur, buf, sizeof(buf), &len)) == 0) {
		total++;
		for (i = 0; i < n; i++)
			if (klens[i] == len && !memcmp(keys[i], buf, len))
				break;
		if (i == n)
			fail_msg("iteration returned an unknown %zu-byte key", len);
		counts[i]++;
	}
	assert_int_equal(rc, -ENOENT);
	assert_int_equal(ucache_iter(c, &cur, buf, sizeof(buf), &len), -ENOENT); /* stays at the end */
	return total;
}

static void test_iter_each_live_key_once(void **state)
{
	ucache_t *c = ut_cache("name=it,items=200,blocksize=64,keysize=2048");
	char *keys[150];
	size_t klens[150];
	int counts[150] = { 0 }, i;

	(void)state;
	for (i = 0; i < 150; i++) {
		keys[i] = malloc(64);
		klens[i] = (size_t)snprintf(keys[i], 64, i % 2 ? "k%d" : "a-rather-long-key-%d", i);
		assert_int_equal(ucache_set(c, keys[i], klens[i], "v", 1, 0, 0), 0);
	}
	for (i = 0; i < 150; i += 3)
		assert_int_equal(ucache_del(c, keys[i], klens[i]), 0);
	for (i = 1; i < 150; i += 3) /* updates keep a key once */
		assert_int_equal(ucache_set(c, keys[i], klens[i], "longer value", 12, 0, UCACHE_SET_UPDATE), 0);
	assert_int_equal(iterate_count(c, keys, klens, 150, counts), 100);
	for (i = 0; i < 150; i++)
		assert_int_equal(counts[i], i % 3 ? 1 : 0);
	for (i = 0; i < 150; i++)
		free(keys[i]);
	ut_destroy(c);
}

static void test_iter_skips_deleted_and_expired(void **state)
{
	ucache_t *c = ut_cache("name=it,items=20,blocksize=64,keysize=64");
	char *keys[4] = { "live", "ttl-later", "ttl-soon", "deleted" };
	size_t klens[4] = { 4, 9, 8, 7 };
	int counts[4] = { 0 };

	(void)state;
	assert_int_equal(ut_set(c, "live", "v", 0, 0), 0);
	assert_int_equal(ut_set(c, "ttl-later", "v", 100, 0), 0);
	assert_int_equal(ut_set(c, "ttl-soon", "v", 10, 0), 0);
	assert_int_equal(ut_set(c, "deleted", "v", 0, 0), 0);
	assert_int_equal(ucache_del(c, "deleted", 7), 0);
	ut_clock_advance(10);
	assert_int_equal(iterate_count(c, keys, klens, 4, counts), 2);
	assert_int_equal(counts[0], 1);
	assert_int_equal(counts[1], 1);
	assert_int_equal(counts[2], 0);
	assert_int_equal(counts[3], 0);
	ut_destroy(c);
}

static void test_iter_small_buffer_enobufs(void **state)
{
	ucache_t *c = ut_cache("name=it,items=20,blocksize=64,keysize=64");
	char buf[64];
	uint64_t cur = 0;
	size_t len = 0;

	(void)state;
	assert_int_equal(ut_set(c, "k", "v", 0, 0), 0);
	assert_int_equal(ucache_iter(c, &cur, buf, 63, &len), -ENOBUFS);
	assert_int_equal(ucache_iter(c, &cur, buf, 64, &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(buf[0], 'k');
	assert_int_equal(ucache_iter(c, &cur, buf, 64, &len), -ENOENT);
	ut_destroy(c);
}

#define IT_STABLE 600
#define IT_VOLATILE 600

struct iter_share {
	volatile int stop;
	volatile uint64_t progress;
	char why[128];
};

static size_t stable_key(char *buf, int i)
{
	return (size_t)snprintf(buf, 64, i % 2 ? "s%04d" : "stable-long-key-%04d", i);
}

static size_t volatile_key(char *buf, int i)
{
	return (size_t)snprintf(buf, 64, i % 2 ? "v%04d" : "volatile-long-key-%04d", i);
}

/* Child: update stable keys (changing size classes), set/update/delete
 * volatile ones, until told to stop.  Exit 0, or 1 with sh->why set. */
static void iter_writer(ucache_t *c, struct iter_share *sh)
{
	uint64_t seed = 0x1234567ull ^ (uint64_t)getpid();
	char k[64], v[200];
	size_t kl;
	int rc;

	memset(v, 'x', sizeof(v));
	while (!sh->stop) {
		uint64_t r = ut_rand(&seed);
		int i = (int)((r >> 8) % IT_VOLATILE);
		switch (r % 4) {
		case 0:
			kl = stable_key(k, (int)((r >> 8) % IT_STABLE));
			rc = ucache_set(c, k, kl, v, 1 + (r >> 32) % 200, 0, UCACHE_SET_UPDATE);
			break;
		case 1:
			kl = volatile_key(k, i);
			rc = ucache_set(c, k, kl, v, 1 + (r >> 32) % 200, 0, 0);
			rc = rc == -EEXIST ? 0 : rc;
			break;
		case 2:
			kl = volatile_key(k, i);
			rc = ucache_set(c, k, kl, v, 1 + (r >> 32) % 200, 0, UCACHE_SET_UPDATE);
			break;
		default:
			kl = volatile_key(k, i);
			rc = ucache_del(c, k, kl);
			rc = rc == -ENOENT ? 0 : rc;
		}
		if (rc) {
			snprintf(sh->why, sizeof(sh->why), "op %d on key %.*s: rc %d", (int)(r % 4), (int)kl, k, rc);
			_exit(1);
		}
		__atomic_add_fetch(&sh->progress, 1, __ATOMIC_RELAXED);
	}
	_exit(0);
}

/* Check one full iteration: every stable key exactly once, volatile keys
 * at most once, nothing else.  Returns the stable keys seen. */
static int check_one_iteration(ucache_t *c)
{
	static int stable_seen[IT_STABLE], volatile_seen[IT_VOLATILE];
	char buf[256], k[64];
	uint64_t cur = 0;
	size_t len;
	int i, n = 0, rc;

	memset(stable_seen, 0, sizeof(stable_seen));
	memset(volatile_seen, 0, sizeof(volatile_seen));
	while ((rc = ucache_iter(c, &cur, buf, sizeof(buf) - 1, &len)) == 0) {
		buf[len] = '\0';
		if (len == 5 && sscanf(buf, "s%4d", &i) == 1) {
			stable_seen[i]++;
		} else if (len == 20 && sscanf(buf, "stable-long-key-%4d", &i) == 1) {
			stable_seen[i]++;
		} else if ((len == 5 && sscanf(buf, "v%4d", &i) == 1) ||
			   (len == 22 && sscanf(buf, "volatile-long-key-%4d", &i) == 1)) {
			volatile_seen[i]++;
			continue;
		} else {
			fail_msg("iteration returned a foreign key \"%.*s\"", (int)len, buf);
		}
		n++;
	}
	assert_int_equal(rc, -ENOENT);
	for (i = 0; i < IT_STABLE; i++) {
		if (stable_seen[i] != 1) {
			stable_key(k, i);
			fail_msg("stable key %s returned %d times during concurrent writes", k, stable_seen[i]);
		}
	}
	return n;
}

static void test_iter_while_another_process_writes(void **state)
{
	ucache_t *c = ut_cache("name=it,items=4096,blocksize=256,keysize=64");
	struct iter_share *sh = ut_shared(sizeof(*sh));
	uint64_t start, deadline;
	char k[64];
	int i, rounds = 0, st;
	pid_t pid;

	(void)state;
	for (i = 0; i < IT_STABLE; i++)
		assert_int_equal(ucache_set(c, k, stable_key(k, i), "stable", 6, 0, 0), 0);
	pid = ut_fork();
	if (pid == 0)
		iter_writer(c, sh);
	deadline = ut_now_ns() + 10000000000ull;
	while (__atomic_load_n(&sh->progress, __ATOMIC_RELAXED) < 100 && ut_now_ns() < deadline)
		; /* poll until the writer is under way */
	start = sh->progress;
	assert_true(start >= 100);
	/* iterate while the writer makes at least 20000 more writes (or 4 s) */
	deadline = ut_now_ns() + 4000000000ull;
	while (rounds < 20 || (sh->progress - start < 20000 && ut_now_ns() < deadline)) {
		assert_int_equal(check_one_iteration(c), IT_STABLE);
		rounds++;
	}
	sh->stop = 1;
	st = ut_wait_exit(pid);
	if (st)
		fail_msg("writer exited with %d: %s", st, sh->why);
	assert_true(sh->progress - start > 0);
	print_message("    %d iterations over %llu concurrent writes\n", rounds,
		      (unsigned long long)(sh->progress - start));
	ut_check(c);
	munmap(sh, sizeof(*sh));
	ut_destroy(c);
}

/* A writer descheduled inside its seqlock window (simulated with SIGSTOP
 * while it copies a 60000-byte value in place, which is where it spends
 * nearly all its time) must not make an iteration skip keys that are
 * present throughout: the iteration has to wait for the window to close. */
#define STALL_KEYS 48
#define STALL_VAL 60000

struct stall_iter {
	ucache_t *c;
	int counts[STALL_KEYS];
	int foreign;
};

static void *stall_iterate(void *arg)
{
	struct stall_iter *it = arg;
	char buf[64];
	uint64_t cur = 0;
	size_t len;
	int i;

	while (ucache_iter(it->c, &cur, buf, sizeof(buf) - 1, &len) == 0) {
		buf[len] = '\0';
		if (sscanf(buf, "stall%d", &i) == 1 && i >= 0 && i < STALL_KEYS)
			it->counts[i]++;
		else
			it->foreign++;
	}
	return NULL;
}

static void stall_writer(ucache_t *c, volatile uint64_t *progress)
{
	static char v[STALL_VAL];
	uint64_t seed = 99;
	char k[32];

	for (;;) {
		uint64_t r = ut_rand(&seed);
		snprintf(k, sizeof(k), "stall%d", (int)(r % STALL_KEYS));
		v[r % STALL_VAL] = (char)r;
		if (ucache_set(c, k, strlen(k), v, STALL_VAL, 0, UCACHE_SET_UPDATE))
			_exit(1);
		__atomic_add_fetch(progress, 1, __ATOMIC_RELEASE);
	}
}

static void test_iter_returns_every_key_while_writer_stalled(void **state)
{
	ucache_t *c = ut_cache("name=it,items=64,blocksize=65536,keysize=32");
	volatile uint64_t *progress = ut_shared(sizeof(*progress));
	static char v[STALL_VAL];
	char k[32];
	int i, trial, st;
	pid_t pid;

	(void)state;
	for (i = 0; i < STALL_KEYS; i++) {
		snprintf(k, sizeof(k), "stall%d", i);
		assert_int_equal(ucache_set(c, k, strlen(k), v, STALL_VAL, 0, 0), 0);
	}
	pid = ut_fork();
	if (pid == 0)
		stall_writer(c, progress);
	for (trial = 0; trial < 20; trial++) {
		struct stall_iter it = { .c = c };
		uint64_t p0 = *progress, deadline = ut_now_ns() + 10000000000ull;
		pthread_t th;

		while (*progress < p0 + 10 && ut_now_ns() < deadline)
			; /* poll: let the writer run */
		assert_true(*progress >= p0 + 10);
		kill(pid, SIGSTOP);
		assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
		assert_true(WIFSTOPPED(st));
		/* iterate in a thread: a correct iteration may block until the
		 * writer runs again, so resume it after 5 ms whatever happens */
		assert_int_equal(pthread_create(&th, NULL, stall_iterate, &it), 0);
		ut_spin_ns(5000000);
		kill(pid, SIGCONT);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(it.foreign, 0);
		for (i = 0; i < STALL_KEYS; i++)
			if (it.counts[i] != 1)
				fail_msg("trial %d: key stall%d returned %d times while the writer was stalled", trial, i,
					 it.counts[i]);
	}
	assert_int_equal(ut_kill(pid), 1000 + SIGKILL);
	ut_check(c);
	munmap((void *)progress, sizeof(*progress));
	ut_destroy(c);
}

/* --------------------------------------------------------------- stats */

static void test_stats_hits_misses_items_bytes(void **state)
{
	ucache_t *c = ut_cache(SMALL);
	struct ucache_stats st;
	char buf[64];
	size_t len;

	(void)state;
	ucache_stats(c, &st);
	assert_int_equal(st.items + st.hits + st.misses + st.full + st.evictions + st.expirations +
			 st.bytes_used + st.blocks_used + st.last_modified_at, 0);
	assert_int_equal(st.capacity, 99);
	assert_true(st.mapped_bytes > 0);
	assert_int_equal(ut_set(c, "a", "0123456789", 0, 0), 0);
	assert_int_equal(ut_set(c, "b", "01234567890123456789", 0, 0), 0);
	ucache_stats(c, &st);
	assert_int_equal(st.items, 2);
	assert_int_equal(st.bytes_used, 30);
	assert_int_equal(st.blocks_used, 2);
	assert_int_equal(ut_get(c, "a", buf, sizeof(buf), &len), 0);
	assert_int_equal(ut_get(c, "b", buf, sizeof(buf), &len), 0);
	assert_int_equal(ut_get(c, "b", buf, sizeof(buf), &len), 0);
	assert_int_equal(ut_get(c, "x", buf, sizeof(buf), &len), -ENOENT);
	ucache_stats(c, &st);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 1);
	assert_int_equal(ut_set(c, "a", "01234", 0, UCACHE_SET_UPDATE), 0);  /* in place */
	assert_int_equal(ut_set(c, "b", "0123456789012345678901234567890123456789", 0, UCACHE_SET_UPDATE), 0);
	ucache_stats(c, &st);
	assert_int_equal(st.bytes_used, 45);
	assert_int_equal(ucache_del(c, "b", 1), 0);
	ucache_stats(c, &st);
	assert_int_equal(st.items, 1);
	assert_int_equal(st.bytes_used, 5);
	assert_int_equal(st.last_modified_at, 0); /* no lastmod */
	assert_int_equal(ucache_items(c), 1);
	ut_check(c);
	ut_destroy(c);
}

static void test_stats_last_modified_at(void **state)
{
	ucache_t *c = ut_cache("name=lm,items=20,blocksize=64,lastmod=1");
	struct ucache_stats st;
	char buf[16];
	size_t len;

	(void)state;
	ucache_stats(c, &st);
	assert_int_equal(st.last_modified_at, 0);
	assert_int_equal(ut_set(c, "a", "1", 0, 0), 0);
	ucache_stats(c, &st);
	assert_int_equal(st.last_modified_at, T0);
	ut_clock_advance(5);
	assert_int_equal(ut_get(c, "a", buf, sizeof(buf), &len), 0); /* a read changes nothing */
	assert_int_equal(ut_set(c, "a", "2", 0, 0), -EEXIST);       /* nor a failed write */
	ucache_stats(c, &st);
	assert_int_equal(st.last_modified_at, T0);
	assert_int_equal(ut_set(c, "a", "2", 0, UCACHE_SET_UPDATE), 0);
	ucache_stats(c, &st);
	assert_int_equal(st.last_modified_at, T0 + 5);
	ut_clock_advance(5);
	assert_int_equal(ucache_del(c, "a", 1), 0);
	ucache_stats(c, &st);
	assert_int_equal(st.last_modified_at, T0 + 10);
	ut_clock_advance(5);
	assert_int_equal(ucache_math(c, "n", 1, UCACHE_MATH_INC, 1, 0, NULL), 0);
	ucache_stats(c, &st);
	assert_int_equal(st.last_modified_at, T0 + 15);
	ut_clock_advance(5);
	assert_int_equal(ucache_clear(c), 1);
	ucache_stats(c, &st);
	assert_int_equal(st.last_modified_at, T0 + 20);
	ut_destroy(c);
}

static void test_no_expire_ignores_ttl(void **state)
{
	ucache_t *c = ut_cache("name=ne,items=20,blocksize=64,no_expire=1");

	(void)state;
	assert_int_equal(ut_set(c, "rel", "v", 10, 0), 0);
	assert_int_equal(ut_set(c, "abs", "v", T0 + 10, UCACHE_SET_ABSEXPIRE), 0);
	assert_int_equal(ucache_math(c, "n", 1, UCACHE_MATH_INC, 1, 10, NULL), 0);
	assert_int_equal(ut_expires_of(c, "rel"), 0);
	assert_int_equal(ut_expires_of(c, "abs"), 0);
	assert_int_equal(ut_expires_of(c, "n"), 0);
	ut_clock_advance(1000000);
	ut_expect(c, "rel", "v");
	ut_expect(c, "abs", "v");
	assert_int_equal(ucache_sweep(c, ucache_now(), 100), 0);
	assert_int_equal(ucache_items(c), 3);
	ut_destroy(c);
}

/* ------------------------------------------------------------------ keys */

static void test_long_and_inline_keys(void **state)
{
	static const size_t lens[] = { 1, 2, 15, 16, 17, 18, 31, 32, 33, 100, 1000, 2047, 2048 };
	enum { N = sizeof(lens) / sizeof(lens[0]) };
	ucache_t *c = ut_cache("name=keys,items=64,blocksize=128,keysize=2048");
	char *keys[N], val[64];
	size_t i;

	(void)state;
	for (i = 0; i < N; i++) { /* all share a prefix; the last byte differs */
		keys[i] = malloc(lens[i]);
		memset(keys[i], 'p', lens[i]);
		keys[i][lens[i] - 1] = (char)('A' + i);
		snprintf(val, sizeof(val), "value-of-%zu", lens[i]);
		assert_int_equal(ucache_set(c, keys[i], lens[i], val, strlen(val), 0, 0), 0);
	}
	for (i = 0; i < N; i++) {
		snprintf(val, sizeof(val), "value-of-%zu", lens[i]);
		ut_expect_mem(c, keys[i], lens[i], val, strlen(val));
	}
	ut_check(c);
	for (i = 0; i < N; i++) {
		snprintf(val, sizeof(val), "updated-%zu-with-more-bytes-than-before", lens[i]);
		assert_int_equal(ucache_set(c, keys[i], lens[i], val, strlen(val), 0, UCACHE_SET_UPDATE), 0);
	}
	for (i = 0; i < N; i += 2)
		assert_int_equal(ucache_del(c, keys[i], lens[i]), 0);
	ut_check(c);
	for (i = 0; i < N; i++) {
		snprintf(val, sizeof(val), "updated-%zu-with-more-bytes-than-before", lens[i]);
		if (i % 2)
			ut_expect_mem(c, keys[i], lens[i], val, strlen(val));
		else
			assert_int_equal(ucache_exists(c, keys[i], lens[i]), -ENOENT);
	}
	assert_int_equal(ucache_items(c), N / 2);
	for (i = 0; i < N; i++)
		free(keys[i]);
	ut_destroy(c);
}

static void test_keys_with_nul_bytes(void **state)
{
	static const struct { const char *k; size_t len; } keys[] = {
		{ "a", 1 }, { "a\0", 2 }, { "a\0b", 3 }, { "a\0c", 3 }, { "\0", 1 }, { "\0\0", 2 },
		{ "0123456789abcdef\0\0\0\0\0\0\0\0x", 25 }, { "0123456789abcdef\0\0\0\0\0\0\0\0y", 25 },
	};
	enum { N = sizeof(keys) / sizeof(keys[0]) };
	ucache_t *c = ut_cache("name=nul,items=20,blocksize=64");
	char v[8];
	size_t i;

	(void)state;
	for (i = 0; i < N; i++) {
		v[0] = (char)('0' + i);
		assert_int_equal(ucache_set(c, keys[i].k, keys[i].len, v, 1, 0, 0), 0);
	}
	assert_int_equal(ucache_items(c), N);
	for (i = 0; i < N; i++) {
		v[0] = (char)('0' + i);
		ut_expect_mem(c, keys[i].k, keys[i].len, v, 1);
	}
	assert_int_equal(ucache_del(c, "a\0b", 3), 0);
	assert_int_equal(ucache_exists(c, "a\0c", 3), 0);
	assert_int_equal(ucache_exists(c, "a\0b", 3), -ENOENT);
	ut_check(c);
	ut_destroy(c);
}

/* keysize <= 16: every key is inline and there is no key heap at all. */
static void test_keysize_16_inline_only(void **state)
{
	ucache_t *c = ut_cache("name=k16,items=20,blocksize=64,keysize=16");

	(void)state;
	assert_int_equal(ut_set(c, "0123456789abcdef", "sixteen", 0, 0), 0);
	assert_int_equal(ut_set(c, "0123456789abcdefg", "v", 0, 0), -E2BIG);
	assert_int_equal(ut_set(c, "x", "one", 0, 0), 0);
	ut_expect(c, "0123456789abcdef", "sixteen");
	ut_expect(c, "x", "one");
	ut_check(c);
	assert_int_equal(ucache_repair(c), 2);
	ut_expect(c, "0123456789abcdef", "sixteen");
	ut_destroy(c);
}

/* items=1 is accepted (stock does) but leaves no usable item. */
static void test_items_1_has_no_usable_item(void **state)
{
	ucache_t *c = ut_cache("name=one,items=1,blocksize=64,keysize=32");
	struct ucache_stats st;
	char buf[64];
	uint64_t cur = 0;
	size_t len;

	(void)state;
	ucache_stats(c, &st);
	assert_int_equal(st.capacity, 0);
	assert_int_equal(ut_set(c, "k", "v", 0, 0), -ENOSPC);
	assert_int_equal(ucache_math(c, "n", 1, UCACHE_MATH_INC, 1, 0, NULL), -ENOSPC);
	assert_int_equal(ucache_iter(c, &cur, buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ucache_sweep(c, ucache_now(), 10), 0);
	assert_int_equal(ucache_clear(c), 0);
	ut_check(c);
	ut_destroy(c);
}

/* Key and value number i of hash_workload (64 bytes each). */
static void hash_item(int i, char *k, char *v)
{
	snprintf(k, 64, i % 3 ? "key:%d" : "a-key-longer-than-sixteen:%d", i);
	snprintf(v, 64, "v%d", i * 31);
}

/* Set/get/update/del 1500 keys of assorted lengths with one hash. */
static void hash_workload(const char *hash, enum ucache_hash expect)
{
	char kv[128], k[64], v[64];
	ucache_t *c;
	int i;

	snprintf(kv, sizeof(kv), "name=h,items=2000,blocksize=64,hashsize=64,hash=%s", hash);
	c = ut_cache(kv);
	assert_int_equal(ucache_config(c)->hash, expect);
	for (i = 0; i < 1500; i++) {
		hash_item(i, k, v);
		assert_int_equal(ut_set(c, k, v, 0, 0), 0);
	}
	for (i = 0; i < 1500; i++) {
		hash_item(i, k, v);
		ut_expect(c, k, v);
		if (i % 2)
			assert_int_equal(ucache_del(c, k, strlen(k)), 0);
	}
	ut_check(c);
	for (i = 0; i < 1500; i++) {
		hash_item(i, k, v);
		if (i % 2)
			assert_int_equal(ucache_exists(c, k, strlen(k)), -ENOENT);
		else
			ut_expect(c, k, v);
	}
	assert_int_equal(ucache_items(c), 750);
	ut_destroy(c);
}

static void test_hash_djb33x(void **state)
{
	(void)state;
	hash_workload("djb33x", UCACHE_HASH_DJB33X);
}

static void test_hash_murmur2(void **state)
{
	(void)state;
	hash_workload("murmur2", UCACHE_HASH_MURMUR2);
}

static void test_hash_xxh3(void **state)
{
	(void)state;
	hash_workload("xxh3", UCACHE_HASH_XXH3);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_get_hit_exact_bytes_and_length),
		T(test_get_miss_enoent),
		T(test_set_existing_fails_keeps_old),
		T(test_update_creates_and_overwrites),
		T(test_del_then_get_misses),
		T(test_del_missing_enoent),
		T(test_exists),
		T(test_clear_returns_count_and_empties),
		T(test_empty_key_refused),
		T(test_empty_value_refused),
		T(test_key_keysize_ok_keysize_plus_one_refused),
		T(test_value_max_blocksize_ok_plus_one_e2big),
		T(test_value_max_bitmap_ok_plus_one_e2big),
		T(test_get_alloc_bitmap_largest_value),
		T(test_usable_items_is_items_minus_one),
		T(test_get_small_buffer_enobufs_reports_needed),
		T(test_get_alloc),
		T(test_get_alloc_failure_leaves_vallen),
		T(test_peek_without_buffer_reads_size_and_expiry),
		T(test_get_ex_expiry_and_hits),
		T(test_item_hits_exact_then_unbiased_estimate),
		T(test_math_missing_key_starts_from_math_initial),
		T(test_math_existing_key),
		T(test_math_div_by_zero_gives_zero),
		T(test_bug_math_wraps_at_int64_max),
		T(test_math_value_not_8_bytes_einval),
		T(test_math_keeps_item_expiry),
		T(test_math_missing_key_uses_given_expires),
		T(test_num),
		T(test_iter_each_live_key_once),
		T(test_iter_skips_deleted_and_expired),
		T(test_iter_small_buffer_enobufs),
		T(test_iter_while_another_process_writes),
		T(test_iter_returns_every_key_while_writer_stalled),
		T(test_stats_hits_misses_items_bytes),
		T(test_stats_last_modified_at),
		T(test_no_expire_ignores_ttl),
		T(test_long_and_inline_keys),
		T(test_keys_with_nul_bytes),
		T(test_keysize_16_inline_only),
		T(test_items_1_has_no_usable_item),
		T(test_peek_counts_nothing_and_keeps_lru_order),
		T(test_hash_djb33x),
		T(test_hash_murmur2),
		T(test_hash_xxh3),
	};

	return cmocka_run_group_tests_name("ops", tests, NULL, NULL);
}
