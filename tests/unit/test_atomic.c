/*
 * test_atomic.c - unit tests of core/cas.c and core/flight.c: versions,
 * compare-and-set, conditional delete, replace keeping the TTL, touch,
 * ttl, math with an initial value, single-flight locks (a dead owner's
 * lock taken over, a live owner's respected, one winner among forked
 * racers) and stale-while-revalidate markers.
 *
 * Fake clock (ut_setup) unless a test forks processes that wait in real
 * time.  CAS races: 4 forked processes increment one counter with
 * gets + cas 2500 times each; the final value must be exactly 10000.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "ucache.h"
#include "ucache_test.h"

#define CFG "name=atomic,items=200,blocksize=256,keysize=64"

static uint64_t version_of_key(ucache_t *c, const char *k)
{
	uint64_t v = 0;
	size_t len;
	void *p = ucache_gets(c, k, strlen(k), &len, &v, NULL);

	assert_non_null(p);
	free(p);
	return v;
}

static int cas(ucache_t *c, const char *k, const char *v, uint64_t expires, unsigned flags, uint64_t ver)
{
	return ucache_cas(c, k, strlen(k), v, strlen(v), expires, flags, ver);
}

static void test_version_changes_with_value_only(void **state)
{
	ucache_t *c = ut_cache(CFG);
	uint64_t a, b, a2;

	(void)state;
	assert_int_equal(ut_set(c, "k", "one", 0, 0), 0);
	a = version_of_key(c, "k");
	assert_int_not_equal(a, 0);
	assert_int_equal(a, ucache_version_of("one", 3));
	assert_int_equal(ut_set(c, "k", "two", 0, UCACHE_SET_UPDATE), 0);
	b = version_of_key(c, "k");
	assert_int_not_equal(a, b);
	assert_int_equal(ucache_touch(c, "k", 1, 100), 0); /* expiry is not the value */
	assert_int_equal(version_of_key(c, "k"), b);
	assert_int_equal(ut_set(c, "k", "one", 0, UCACHE_SET_UPDATE), 0);
	a2 = version_of_key(c, "k");
	assert_int_equal(a, a2);
	ut_destroy(c);
}

static void test_cas_matching_version_writes(void **state)
{
	ucache_t *c = ut_cache(CFG);
	uint64_t v;

	(void)state;
	assert_int_equal(ut_set(c, "k", "a", 0, 0), 0);
	v = version_of_key(c, "k");
	assert_int_equal(cas(c, "k", "b", 0, 0, v), 0);
	ut_expect(c, "k", "b");
	assert_int_equal(cas(c, "k", "c", 0, 0, v), -ESTALE); /* v is a's version */
	ut_expect(c, "k", "b");
	ut_check(c);
	ut_destroy(c);
}

static void test_cas_version_zero_is_add(void **state)
{
	ucache_t *c = ut_cache(CFG);

	(void)state;
	assert_int_equal(cas(c, "k", "a", 0, 0, 0), 0);
	assert_int_equal(cas(c, "k", "b", 0, 0, 0), -EEXIST);
	ut_expect(c, "k", "a");
	assert_int_equal(cas(c, "missing", "b", 0, 0, 12345), -ESTALE);
	ut_expect_missing(c, "missing");
	ut_destroy(c);
}

static void test_cas_on_expired_item_sees_absent(void **state)
{
	ucache_t *c = ut_cache(CFG);
	uint64_t v;

	(void)state;
	assert_int_equal(ut_set(c, "k", "a", 5, 0), 0);
	v = version_of_key(c, "k");
	ut_clock_advance(5);
	assert_int_equal(cas(c, "k", "b", 0, 0, v), -ESTALE);
	assert_int_equal(cas(c, "k", "b", 0, 0, 0), 0);
	ut_expect(c, "k", "b");
	ut_destroy(c);
}

static void test_cas_keep_ttl_and_new_ttl(void **state)
{
	ucache_t *c = ut_cache(CFG);

	(void)state;
	assert_int_equal(ut_set(c, "k", "a", 50, 0), 0);
	assert_int_equal(cas(c, "k", "b", 0, UCACHE_CAS_KEEP_TTL, version_of_key(c, "k")), 0);
	assert_int_equal(ut_expires_of(c, "k"), UT_T0 + 50);
	assert_int_equal(cas(c, "k", "c", 7, 0, version_of_key(c, "k")), 0);
	assert_int_equal(ut_expires_of(c, "k"), UT_T0 + 7);
	ut_destroy(c);
}

static void test_cas_oversized_value_e2big_keeps_old(void **state)
{
	ucache_t *c = ut_cache(CFG);
	char big[300];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(ut_set(c, "k", "a", 0, 0), 0);
	assert_int_equal(ucache_cas(c, "k", 1, big, sizeof(big), 0, 0, version_of_key(c, "k")), -E2BIG);
	ut_expect(c, "k", "a");
	ut_destroy(c);
}

static void test_del_if(void **state)
{
	ucache_t *c = ut_cache(CFG);
	uint64_t v;

	(void)state;
	assert_int_equal(ut_set(c, "k", "a", 0, 0), 0);
	v = version_of_key(c, "k");
	assert_int_equal(ucache_del_if(c, "k", 1, v + 1), -ESTALE);
	ut_expect(c, "k", "a");
	assert_int_equal(ucache_del_if(c, "k", 1, v), 0);
	ut_expect_missing(c, "k");
	assert_int_equal(ucache_del_if(c, "k", 1, v), -ENOENT);
	ut_check(c);
	ut_destroy(c);
}

static void test_replace_keeps_ttl_missing_enoent(void **state)
{
	ucache_t *c = ut_cache(CFG);

	(void)state;
	assert_int_equal(ucache_replace(c, "k", 1, "v", 1), -ENOENT);
	ut_expect_missing(c, "k");
	assert_int_equal(ut_set(c, "k", "a", 30, 0), 0);
	ut_clock_advance(10);
	assert_int_equal(ucache_replace(c, "k", 1, "longer value", 12), 0);
	ut_expect(c, "k", "longer value");
	assert_int_equal(ut_expires_of(c, "k"), UT_T0 + 30);
	ut_destroy(c);
}

static void test_touch_and_ttl(void **state)
{
	ucache_t *c = ut_cache(CFG);
	int64_t ttl = 99;

	(void)state;
	assert_int_equal(ucache_ttl(c, "k", 1, &ttl), -ENOENT);
	assert_int_equal(ucache_touch(c, "k", 1, 10), -ENOENT);
	assert_int_equal(ut_set(c, "k", "a", 0, 0), 0);
	assert_int_equal(ucache_ttl(c, "k", 1, &ttl), 0);
	assert_int_equal(ttl, -1);
	assert_int_equal(ucache_touch(c, "k", 1, 20), 0);
	ut_clock_advance(5);
	assert_int_equal(ucache_ttl(c, "k", 1, &ttl), 0);
	assert_int_equal(ttl, 15);
	ut_expect(c, "k", "a");
	assert_int_equal(ucache_touch(c, "k", 1, 0), 0); /* 0 = never */
	ut_clock_advance(100);
	ut_expect(c, "k", "a");
	assert_int_equal(ucache_touch(c, "k", 1, 1), 0);
	ut_clock_advance(1);
	ut_expect_missing(c, "k");
	assert_int_equal(ucache_ttl(c, "k", 1, &ttl), -ENOENT);
	ut_check(c);
	ut_destroy(c);
}

static void test_touch_with_store_keeps_checksum_valid(void **state)
{
	char path[] = "/tmp/ucache-test-atomic-XXXXXX", cfg[256];
	int fd = mkstemp(path);
	ucache_t *c;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	snprintf(cfg, sizeof(cfg), "%s,store=%s", CFG, path);
	c = ut_cache(cfg);
	assert_int_equal(ut_set(c, "k", "a", 10, 0), 0);
	assert_int_equal(ucache_touch(c, "k", 1, 40), 0);
	ut_check(c); /* the checksum covers the expiry */
	ut_destroy(c);
	c = ut_cache(cfg);
	ut_expect(c, "k", "a");
	assert_int_equal(ut_expires_of(c, "k"), UT_T0 + 40);
	ut_destroy(c);
	unlink(path);
}

static void test_cas_touch_replace_on_bitmap_cache(void **state)
{
	ucache_t *c = ut_cache("name=abm,items=20,blocksize=64,blocks=64,bitmap=1,keysize=32");
	char big[300], small[10];
	uint64_t v;
	int64_t ttl;

	(void)state;
	memset(big, 'b', sizeof(big));
	memset(small, 's', sizeof(small));
	assert_int_equal(ucache_set(c, "k", 1, big, sizeof(big), 50, 0), 0);
	v = version_of_key(c, "k");
	assert_int_equal(ucache_cas(c, "k", 1, small, sizeof(small), 0, UCACHE_CAS_KEEP_TTL, v), 0);
	ut_expect_mem(c, "k", 1, small, sizeof(small));
	assert_int_equal(ucache_replace(c, "k", 1, big, sizeof(big)), 0); /* grows to 5 blocks */
	ut_expect_mem(c, "k", 1, big, sizeof(big));
	assert_int_equal(ucache_touch(c, "k", 1, 10), 0);
	assert_int_equal(ucache_ttl(c, "k", 1, &ttl), 0);
	assert_int_equal(ttl, 10);
	assert_int_equal(ucache_del_if(c, "k", 1, ucache_version_of(big, sizeof(big))), 0);
	ut_check(c);
	ut_destroy(c);
}

static void test_math_ex_initial_and_existing(void **state)
{
	ucache_t *c = ut_cache(CFG);
	int64_t r = 0;

	(void)state;
	assert_int_equal(ucache_math_ex(c, "n", 1, UCACHE_MATH_INC, 1, 0, 0, UCACHE_MATH_EXISTING, &r), -ENOENT);
	ut_expect_missing(c, "n");
	assert_int_equal(ucache_math_ex(c, "n", 1, UCACHE_MATH_INC, 5, 100, 9, 0, &r), 0);
	assert_int_equal(r, 105);
	assert_int_equal(ut_expires_of(c, "n"), UT_T0 + 9);
	assert_int_equal(ucache_math_ex(c, "n", 1, UCACHE_MATH_DEC, 6, 100, 0, UCACHE_MATH_EXISTING, &r), 0);
	assert_int_equal(r, 99);
	assert_int_equal(ut_expires_of(c, "n"), UT_T0 + 9);
	ut_destroy(c);
}

static void test_cas_race_between_processes_loses_no_update(void **state)
{
	ucache_t *c = ut_cache(CFG);
	int i, p;
	pid_t pids[4];
	char buf[32];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "ctr", "0", 0, 0), 0);
	for (p = 0; p < 4; p++) {
		pids[p] = ut_fork();
		if (pids[p] == 0) {
			for (i = 0; i < 2500; i++) {
				for (;;) {
					uint64_t v;
					char *cur = ucache_gets(c, "ctr", 3, &len, &v, NULL), nv[32];
					long n;

					if (!cur || len >= sizeof(nv))
						_exit(2);
					memcpy(nv, cur, len); /* values are not NUL-terminated */
					nv[len] = 0;
					n = strtol(nv, NULL, 10);
					free(cur);
					snprintf(nv, sizeof(nv), "%ld", n + 1);
					if (cas(c, "ctr", nv, 0, 0, v) == 0)
						break;
				}
			}
			_exit(0);
		}
	}
	for (p = 0; p < 4; p++)
		assert_int_equal(ut_wait_exit(pids[p]), 0);
	assert_int_equal(ut_get(c, "ctr", buf, sizeof(buf) - 1, &len), 0);
	buf[len] = 0;
	assert_string_equal(buf, "10000");
	ut_check(c);
	ut_destroy(c);
}

static void test_flight_miss_compute_then_hit(void **state)
{
	ucache_t *c = ut_cache(CFG);
	void *v;
	size_t len;
	uint64_t tok;

	(void)state;
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	assert_null(v);
	assert_int_not_equal(tok, 0);
	/* a second caller (same process: its pid is alive) waits, then times out */
	assert_int_equal(ucache_flight_begin(c, "k", 1, 5, 5, &v, &len, &tok), UCACHE_FLIGHT_TIMEOUT);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_TIMEOUT);
	ucache_flight_begin(c, "other", 5, 0, 5, &v, &len, &tok); /* other keys are free */
	assert_int_not_equal(tok, 0);
	ucache_flight_abort(c, "other", 5, tok);
	assert_int_equal(ucache_flight_end(c, "k", 1, "val", 3, 0, 0, 0), 0);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_HIT);
	assert_int_equal(len, 3);
	assert_memory_equal(v, "val", 3);
	free(v);
	ut_destroy(c);
}

/* flight_try: BUSY (never a wait) while a live caller holds the lock,
 * the lock once it is released, then the value. */
static void test_flight_try_never_waits(void **state)
{
	ucache_t *c = ut_cache(CFG);
	void *v;
	size_t len;
	uint64_t tok, tok2;

	(void)state;
	assert_int_equal(ucache_flight_try(c, "k", 1, 5, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	assert_int_equal(ucache_flight_try(c, "k", 1, 5, &v, &len, &tok2), UCACHE_FLIGHT_BUSY);
	assert_null(v);
	assert_int_equal(tok2, 0);
	ucache_flight_abort(c, "k", 1, tok);
	assert_int_equal(ucache_flight_try(c, "k", 1, 5, &v, &len, &tok2), UCACHE_FLIGHT_COMPUTE);
	assert_int_equal(ucache_flight_end(c, "k", 1, "val", 3, 0, 0, tok2), 0);
	assert_int_equal(ucache_flight_try(c, "k", 1, 5, &v, &len, &tok), UCACHE_FLIGHT_HIT);
	assert_memory_equal(v, "val", 3);
	free(v);
	assert_int_equal(ucache_flight_try(c, "", 0, 5, &v, &len, &tok), -EINVAL);
	ut_destroy(c);
}

static void counts(ucache_t *c, uint64_t hits, uint64_t misses)
{
	struct ucache_stats st;

	ucache_stats(c, &st);
	assert_int_equal(st.hits, hits);
	assert_int_equal(st.misses, misses);
}

/* Regression: the flight's polls, its lock and marker reads were counted
 * as the application's hits and misses (a waited-for miss: dozens). */
static void test_bug_counters_count_internal_lookups(void **state)
{
	ucache_t *c = ut_cache(CFG);
	void *v;
	size_t len;
	uint64_t tok, tok2;
	int stale = 0;

	(void)state;
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	/* a waiter polls for 20 ms, and reads the live owner's lock */
	assert_int_equal(ucache_flight_begin(c, "k", 1, 20, 5, &v, &len, &tok2), UCACHE_FLIGHT_TIMEOUT);
	assert_int_equal(ucache_flight_end(c, "k", 1, "val", 3, 60, 30, tok), 0);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_HIT);
	free(v);
	counts(c, 0, 0);
	assert_null(ucache_peek_alloc(c, "none", 4, &len, NULL));
	v = ucache_peek_alloc(c, "k", 1, &len, NULL);
	assert_non_null(v);
	free(v);
	counts(c, 0, 0);
	/* the application's own lookups: one each */
	v = ucache_get_stale(c, "k", 1, &len, &stale);
	assert_non_null(v);
	free(v);
	assert_null(ucache_get_stale(c, "none", 4, &len, &stale));
	counts(c, 1, 1);
	ut_destroy(c);
}

/* Regression: a write refused for its size left no trace in the stats. */
static void test_bug_too_large_value_vanishes_silently(void **state)
{
	ucache_t *c = ut_cache(CFG);
	size_t big = ucache_max_value(c) + 1;
	char *val = calloc(1, big);
	struct ucache_stats st;

	(void)state;
	assert_non_null(val);
	assert_int_equal(ucache_set(c, "k", 1, val, big, 0, 0), -E2BIG);
	assert_int_equal(ucache_cas(c, "k", 1, val, big, 0, 0, 0), -E2BIG);
	assert_int_equal(ucache_set(c, "k", 1, val, big - 1, 0, 0), 0);
	ucache_stats(c, &st);
	assert_int_equal(st.too_large, 2);
	free(val);
	ut_destroy(c);
}

static void test_flight_end_releases_lock(void **state)
{
	ucache_t *c = ut_cache(CFG);
	void *v;
	size_t len;
	uint64_t tok, tok2;

	(void)state;
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	assert_int_equal(ucache_flight_end(c, "k", 1, "val", 3, 1, 0, tok), 0);
	ut_clock_advance(1); /* value expired: the lock must be free again */
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok2), UCACHE_FLIGHT_COMPUTE);
	assert_int_not_equal(tok, tok2);
	ucache_flight_abort(c, "k", 1, tok);  /* a stale token releases nothing */
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_TIMEOUT);
	ucache_flight_abort(c, "k", 1, tok2);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	ut_destroy(c);
}

static void test_flight_lock_expires_after_lock_s(void **state)
{
	ucache_t *c = ut_cache(CFG);
	void *v;
	size_t len;
	uint64_t tok;

	(void)state;
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 3, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	ut_clock_advance(2);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 3, &v, &len, &tok), UCACHE_FLIGHT_TIMEOUT);
	ut_clock_advance(1); /* a hung owner holds the key lock_s at most */
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 3, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	ut_destroy(c);
}

static void test_flight_dead_owner_taken_over(void **state)
{
	ucache_t *c = ut_cache(CFG);
	int *got = ut_shared(sizeof(int));
	void *v;
	size_t len;
	uint64_t tok;
	pid_t pid = ut_fork();

	(void)state;
	if (pid == 0) {
		*got = ucache_flight_begin(c, "k", 1, 0, 600, &v, &len, &tok) + 1;
		pause(); /* holds the lock until killed */
		_exit(0);
	}
	while (!__atomic_load_n(got, __ATOMIC_ACQUIRE))
		ut_spin_ns(100000);
	assert_int_equal(*got - 1, UCACHE_FLIGHT_COMPUTE);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 600, &v, &len, &tok), UCACHE_FLIGHT_TIMEOUT);
	ut_kill(pid);
	/* lock_s is 600 s: only the dead-pid check can free it */
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 600, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	ut_destroy(c);
}

/* Regression (bug_flight_zombie_owner): a master-less uWSGI reaps a dead
 * worker only between requests, and kill(pid, 0) succeeds on a zombie: the
 * lock of a killed computer stayed held until lock_s. */
static void test_bug_flight_zombie_owner_taken_over(void **state)
{
	ucache_t *c = ut_cache(CFG);
	int *got = ut_shared(sizeof(int));
	void *v;
	size_t len;
	uint64_t tok;
	pid_t pid = ut_fork();
	char path[64];

	(void)state;
	if (pid == 0) {
		*got = ucache_flight_begin(c, "k", 1, 0, 600, &v, &len, &tok) + 1;
		_exit(0); /* dies holding the lock; nobody reaps it yet */
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (;;) { /* until it is a zombie */
		char buf[256] = "";
		FILE *f = fopen(path, "r");
		char *p;

		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = 0;
			fclose(f);
		}
		p = strrchr(buf, ')');
		if (p && p[2] == 'Z')
			break;
		ut_spin_ns(100000);
	}
	assert_int_equal(*got - 1, UCACHE_FLIGHT_COMPUTE);
	assert_int_equal(kill(pid, 0), 0); /* still there as a zombie */
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 600, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	assert_int_equal(ut_wait_exit(pid), 0);
	ut_destroy(c);
}

static void test_flight_one_winner_among_processes(void **state)
{
	ucache_t *c = ut_cache(CFG);
	int *computed = ut_shared(sizeof(int) * 2), p;
	pid_t pids[4];

	(void)state;
	for (p = 0; p < 4; p++) {
		pids[p] = ut_fork();
		if (pids[p] == 0) {
			void *v;
			size_t len;
			uint64_t tok;
			int st = ucache_flight_begin(c, "k", 1, 5000, 60, &v, &len, &tok);

			if (st == UCACHE_FLIGHT_COMPUTE) {
				__atomic_add_fetch(&computed[0], 1, __ATOMIC_SEQ_CST);
				ut_spin_ns(50 * 1000000ull); /* the others wait meanwhile */
				ucache_flight_end(c, "k", 1, "v", 1, 0, 0, tok);
				_exit(0);
			}
			if (st == UCACHE_FLIGHT_HIT && len == 1 && !memcmp(v, "v", 1))
				__atomic_add_fetch(&computed[1], 1, __ATOMIC_SEQ_CST);
			_exit(0);
		}
	}
	for (p = 0; p < 4; p++)
		assert_int_equal(ut_wait_exit(pids[p]), 0);
	assert_int_equal(computed[0], 1);
	assert_int_equal(computed[1], 3);
	ut_destroy(c);
}

/* A caller that missed the value, then found the lock free, computed
 * again: the owner had stored the value and released the lock in
 * between (test_flight_one_winner_among_processes failed so about one run
 * in 20 under ASan).  Owners that finish at once make that window likely:
 * over 200 keys, 3 processes each, exactly one computes each key. */
static void test_bug_flight_second_computer_after_owner_finished(void **state)
{
	enum { KEYS = 200, PROCS = 3 };
	ucache_t *c = ut_cache(CFG);
	int *computed = ut_shared(sizeof(int) * KEYS), k, p, twice = 0;
	pid_t pids[PROCS];

	(void)state;
	for (k = 0; k < KEYS; k++) {
		char key[16];
		snprintf(key, sizeof(key), "race%d", k);
		for (p = 0; p < PROCS; p++) {
			pids[p] = ut_fork();
			if (pids[p] == 0) {
				void *v;
				size_t len;
				uint64_t tok;
				if (ucache_flight_begin(c, key, strlen(key), 5000, 60, &v, &len, &tok) ==
				    UCACHE_FLIGHT_COMPUTE) {
					__atomic_add_fetch(&computed[k], 1, __ATOMIC_SEQ_CST);
					ucache_flight_end(c, key, strlen(key), "v", 1, 0, 0, tok);
				}
				free(v);
				_exit(0);
			}
		}
		for (p = 0; p < PROCS; p++)
			assert_int_equal(ut_wait_exit(pids[p]), 0);
		twice += computed[k] != 1;
		ucache_del(c, key, strlen(key)); /* 200 keys in a 199-item cache */
	}
	assert_int_equal(twice, 0);
	ut_destroy(c);
}

static void test_flight_stale_served_while_one_refreshes(void **state)
{
	ucache_t *c = ut_cache(CFG);
	void *v;
	size_t len;
	uint64_t tok, tok2;
	int stale = -1;

	(void)state;
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	assert_int_equal(ucache_flight_end(c, "k", 1, "old", 3, 10, 20, tok), 0);
	v = ucache_get_stale(c, "k", 1, &len, &stale);
	assert_non_null(v);
	assert_int_equal(stale, 0);
	free(v);
	ut_clock_advance(10); /* past its timeout, inside its stale window */
	v = ucache_get_stale(c, "k", 1, &len, &stale);
	assert_int_equal(stale, 1);
	assert_memory_equal(v, "old", 3);
	free(v);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	assert_non_null(v); /* the refresher gets the stale value too */
	free(v);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 1000, 5, &v, &len, &tok2), UCACHE_FLIGHT_STALE);
	assert_memory_equal(v, "old", 3); /* no wait: served at once */
	free(v);
	assert_int_equal(ucache_flight_end(c, "k", 1, "new", 3, 10, 20, tok), 0);
	assert_int_equal(ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_HIT);
	assert_memory_equal(v, "new", 3);
	free(v);
	ut_clock_advance(30); /* past the stale window: gone */
	assert_null(ucache_get_stale(c, "k", 1, &len, &stale));
	ut_destroy(c);
}

static void test_flight_plain_set_after_marker_is_fresh(void **state)
{
	ucache_t *c = ut_cache(CFG);
	void *v;
	size_t len;
	uint64_t tok;
	int stale = -1;

	(void)state;
	ucache_flight_begin(c, "k", 1, 0, 5, &v, &len, &tok);
	assert_int_equal(ucache_flight_end(c, "k", 1, "old", 3, 10, 20, tok), 0);
	ut_clock_advance(15);
	assert_int_equal(ut_set(c, "k", "plain", 0, UCACHE_SET_UPDATE), 0);
	v = ucache_get_stale(c, "k", 1, &len, &stale);
	assert_int_equal(stale, 0); /* the marker describes another version */
	free(v);
	ut_destroy(c);
}

static void test_flight_key_too_long_for_prefix_einval(void **state)
{
	ucache_t *c = ut_cache(CFG);
	char k[64];
	void *v;
	size_t len;
	uint64_t tok;

	(void)state;
	memset(k, 'k', sizeof(k));
	assert_int_equal(ucache_flight_begin(c, k, sizeof(k), 0, 5, &v, &len, &tok), -EINVAL);
	assert_int_equal(ucache_flight_begin(c, k, sizeof(k) - 9, 0, 5, &v, &len, &tok), UCACHE_FLIGHT_COMPUTE);
	ut_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup, ut_teardown)
#define TR(f) cmocka_unit_test_setup_teardown(f, ut_setup_real_clock, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_version_changes_with_value_only),
		T(test_cas_matching_version_writes),
		T(test_cas_version_zero_is_add),
		T(test_cas_on_expired_item_sees_absent),
		T(test_cas_keep_ttl_and_new_ttl),
		T(test_cas_oversized_value_e2big_keeps_old),
		T(test_del_if),
		T(test_replace_keeps_ttl_missing_enoent),
		T(test_touch_and_ttl),
		T(test_touch_with_store_keeps_checksum_valid),
		T(test_cas_touch_replace_on_bitmap_cache),
		T(test_math_ex_initial_and_existing),
		TR(test_cas_race_between_processes_loses_no_update),
		T(test_flight_miss_compute_then_hit),
		T(test_flight_end_releases_lock),
		T(test_flight_try_never_waits),
		T(test_bug_counters_count_internal_lookups),
		T(test_bug_too_large_value_vanishes_silently),
		T(test_flight_lock_expires_after_lock_s),
		TR(test_flight_dead_owner_taken_over),
		TR(test_bug_flight_zombie_owner_taken_over),
		TR(test_flight_one_winner_among_processes),
		TR(test_bug_flight_second_computer_after_owner_finished),
		T(test_flight_stale_served_while_one_refreshes),
		T(test_flight_plain_set_after_marker_is_fresh),
		T(test_flight_key_too_long_for_prefix_einval),
	};

	return cmocka_run_group_tests_name("atomic", tests, NULL, NULL);
}
