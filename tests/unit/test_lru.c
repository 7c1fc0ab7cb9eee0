/*
 * test_lru.c - unit tests of the full-cache policy (core/evict.c): exact
 * LRU order on small caches (items <= 65, a shared logical clock), sampled
 * LRU on a large one (hot keys survive, sets never fail), the evictions and
 * full counters, sweep_on_full, clear_on_full, and the "cache is FULL" log
 * line with and without ignore_full.
 *
 * The exact-order tests keep a model of recency (oldest first) next to the
 * cache and compare the cache's whole key set, read with ucache_iter (which
 * does not count as a use), after every operation.
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
#include <time.h>

#include "ucache.h"
#include "ucache_test.h"

#define T0 UT_T0
#define FULL_LINE "*** DANGER cache \"f\" is FULL !!! ***"

static int get(ucache_t *c, const char *k)
{
	char buf[64];
	size_t len;

	return ut_get(c, k, buf, sizeof(buf), &len);
}

/* ------------------------------------------------------- recency model */

#define MODEL_MAX 64

struct model {
	int n;
	char keys[MODEL_MAX][16]; /* [0] = least recently used */
};

static int model_find(const struct model *m, const char *k)
{
	int i;

	for (i = 0; i < m->n; i++)
		if (!strcmp(m->keys[i], k))
			return i;
	return -1;
}

static void model_remove(struct model *m, int i)
{
	memmove(m->keys[i], m->keys[i + 1], (size_t)(m->n - i - 1) * sizeof(m->keys[0]));
	m->n--;
}

/* k was used (read, written): it becomes the most recent. */
static void model_use(struct model *m, const char *k)
{
	int i = model_find(m, k);

	if (i >= 0)
		model_remove(m, i);
	snprintf(m->keys[m->n++], sizeof(m->keys[0]), "%s", k);
}

/* The cache holds exactly the model's keys (order not visible here). */
static void model_compare(ucache_t *c, const struct model *m, const char *when)
{
	int seen[MODEL_MAX] = { 0 }, n = 0, i;
	char buf[64];
	uint64_t cur = 0;
	size_t len;

	while (ucache_iter(c, &cur, buf, sizeof(buf) - 1, &len) == 0) {
		buf[len] = '\0';
		i = model_find(m, buf);
		if (i < 0)
			fail_msg("%s: cache holds \"%s\", which LRU should have evicted (LRU is \"%s\")", when, buf,
				 m->n ? m->keys[0] : "-");
		seen[i]++;
		n++;
	}
	for (i = 0; i < m->n; i++)
		if (seen[i] != 1)
			fail_msg("%s: \"%s\" (recency rank %d of %d) is missing", when, m->keys[i], i, m->n);
	assert_int_equal(n, m->n);
	assert_int_equal(ucache_items(c), m->n);
}

/* Insert a new key into a model of capacity cap: returns the victim. */
static void model_insert(struct model *m, int cap, const char *k, char *victim)
{
	victim[0] = '\0';
	if (m->n == cap) {
		snprintf(victim, 16, "%s", m->keys[0]);
		model_remove(m, 0);
	}
	model_use(m, k);
}

/* ---------------------------------------------------------- exact order */

/* A scripted scenario: 4 usable items, touches by get, update and math. */
static void test_lru_exact_order_scripted(void **state)
{
	ucache_t *c = ut_cache("name=l,items=5,blocksize=64,keysize=32,purge_lru=1");
	int64_t one = 1;

	(void)state;
	assert_int_equal(ut_set(c, "a", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "b", "1", 0, 0), 0);
	assert_int_equal(ucache_set(c, "c", 1, &one, 8, 0, 0), 0);
	assert_int_equal(ut_set(c, "d", "1", 0, 0), 0);
	assert_int_equal(get(c, "a"), 0);                 /* b c d a */
	assert_int_equal(ucache_math(c, "c", 1, UCACHE_MATH_INC, 1, 0, NULL), 0); /* b d a c */
	assert_int_equal(ut_set(c, "e", "1", 0, 0), 0);   /* evicts b: d a c e */
	assert_int_equal(ucache_exists(c, "b", 1), -ENOENT);
	assert_int_equal(ut_stats(c).evictions, 1);
	assert_int_equal(ut_set(c, "f", "1", 0, 0), 0);   /* evicts d: a c e f */
	assert_int_equal(ucache_exists(c, "d", 1), -ENOENT);
	assert_int_equal(ut_set(c, "a", "2", 0, UCACHE_SET_UPDATE), 0); /* c e f a */
	assert_int_equal(ut_set(c, "g", "1", 0, 0), 0);   /* evicts c: e f a g */
	assert_int_equal(ucache_exists(c, "c", 1), -ENOENT);
	assert_int_equal(get(c, "e"), 0);                 /* f a g e */
	assert_int_equal(get(c, "zz"), -ENOENT);          /* a miss touches nothing */
	assert_int_equal(ut_set(c, "h", "1", 0, 0), 0);   /* evicts f: a g e h */
	assert_int_equal(ucache_exists(c, "f", 1), -ENOENT);
	assert_int_equal(ut_set(c, "i", "1", 0, UCACHE_SET_UPDATE), 0); /* update creating: evicts a */
	assert_int_equal(ucache_exists(c, "a", 1), -ENOENT);
	ut_expect(c, "g", "1");
	ut_expect(c, "e", "1");
	ut_expect(c, "h", "1");
	ut_expect(c, "i", "1");
	assert_int_equal(ut_stats(c).evictions, 5);
	assert_int_equal(ut_stats(c).full, 5);
	assert_int_equal(ut_log_count("LRU item will be purged from cache \"l\""), 1); /* once a second */
	assert_int_equal(ut_log_count("FULL"), 0);
	ut_check(c);
	ut_destroy(c);
}

static void test_lru_update_counts_as_use(void **state)
{
	ucache_t *c = ut_cache("name=l,items=4,blocksize=64,keysize=32,purge_lru=1");

	(void)state;
	assert_int_equal(ut_set(c, "a", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "b", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "c", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "a", "same", 0, UCACHE_SET_UPDATE), 0);        /* in place */
	assert_int_equal(ut_set(c, "b", "a longer value, another size class", 0, UCACHE_SET_UPDATE), 0);
	assert_int_equal(ut_set(c, "d", "1", 0, 0), 0); /* c is now the oldest */
	assert_int_equal(ucache_exists(c, "c", 1), -ENOENT);
	ut_expect(c, "a", "same");
	ut_expect(c, "b", "a longer value, another size class");
	ut_expect(c, "d", "1");
	assert_int_equal(ut_stats(c).evictions, 1);
	ut_destroy(c);
}

/* Random gets, sets, updates, math and deletes against the model. */
static void lru_random_rounds(const char *keyval, int cap, int ops, uint64_t seed)
{
	ucache_t *c = ut_cache(keyval);
	struct model *m = calloc(1, sizeof(*m));
	char k[16], victim[16], when[96];
	uint64_t evictions = 0, next = 0;
	int64_t v = 42;
	int op, i;

	assert_non_null(m);
	for (op = 0; op < ops; op++) {
		uint64_t r = ut_rand(&seed);
		int kind = (int)(r % 10);
		if (kind <= 3 || (kind >= 6 && kind <= 8 && !m->n)) { /* get: a live key, or a miss */
			if (m->n && r % 7) {
				snprintf(k, sizeof(k), "%s", m->keys[(r >> 16) % (uint64_t)m->n]);
				assert_int_equal(get(c, k), 0);
				model_use(m, k);
			} else {
				assert_int_equal(get(c, "never-set"), -ENOENT);
			}
			snprintf(when, sizeof(when), "op %d: get", op);
		} else if (kind <= 5) { /* a new key, by set or by update */
			snprintf(k, sizeof(k), "k%llu", (unsigned long long)next++);
			assert_int_equal(ucache_set(c, k, strlen(k), &v, 8, 0, kind == 4 ? 0 : UCACHE_SET_UPDATE), 0);
			model_insert(m, cap, k, victim);
			evictions += victim[0] != '\0';
			snprintf(when, sizeof(when), "op %d: insert %s (expected victim \"%s\")", op, k, victim);
		} else if (kind <= 8) { /* use an existing key: update, math, or get_ex */
			snprintf(k, sizeof(k), "%s", m->keys[(r >> 16) % (uint64_t)m->n]);
			if (kind == 6)
				assert_int_equal(ucache_set(c, k, strlen(k), &v, 8, 0, UCACHE_SET_UPDATE), 0);
			else if (kind == 7)
				assert_int_equal(ucache_math(c, k, strlen(k), UCACHE_MATH_INC, 1, 0, NULL), 0);
			else
				assert_int_equal(ucache_get_ex(c, k, strlen(k), when, sizeof(when), NULL, NULL), 0);
			model_use(m, k);
			snprintf(when, sizeof(when), "op %d: use %s (kind %d)", op, k, kind);
		} else if (m->n) { /* delete */
			i = (int)((r >> 16) % (uint64_t)m->n);
			snprintf(k, sizeof(k), "%s", m->keys[i]);
			assert_int_equal(ucache_del(c, k, strlen(k)), 0);
			model_remove(m, i);
			snprintf(when, sizeof(when), "op %d: del %s", op, k);
		}
		model_compare(c, m, when);
		assert_int_equal(ut_stats(c).evictions, evictions);
	}
	assert_true(evictions > (uint64_t)ops / 20); /* the model did reach capacity */
	ut_check(c);
	free(m);
	ut_destroy(c);
}

static void test_lru_exact_order_random_rounds_small(void **state)
{
	(void)state;
	lru_random_rounds("name=l,items=9,blocksize=64,keysize=32,purge_lru=1", 8, 3000, 0x9e3779b97f4a7c15ull);
}

static void test_lru_exact_order_random_rounds_65_items(void **state)
{
	(void)state; /* the largest cache with exact LRU: 64 usable items */
	lru_random_rounds("name=l,items=65,blocksize=64,keysize=32,purge_lru=1", 64, 3000, 0x243f6a8885a308d3ull);
}

static void test_lru_exact_order_bitmap(void **state)
{
	(void)state;
	lru_random_rounds("name=l,items=17,blocks=40,blocksize=8,bitmap=1,keysize=32,purge_lru=1", 16, 2000, 7);
}

/* Exact LRU with another process reading: that process reads "hot" in a
 * tight loop, and this one inserts new keys, each only after the reader
 * has completed a read that started after the previous insert returned.
 * So before every insert "hot" is more recent than all but at most one
 * other item, and of 64 it must never be the victim.  The reader stores
 * the key again whenever it finds it gone and counts those misses. */
struct hot_share {
	volatile int stop, started;
	volatile uint64_t reads, misses;
};

static void hot_reader(ucache_t *c, struct hot_share *sh)
{
	char buf[16];
	size_t len;

	while (!sh->stop) {
		if (ucache_get(c, "hot", 3, buf, sizeof(buf), &len) == -ENOENT) {
			sh->misses++;
			if (ucache_set(c, "hot", 3, "h", 1, 0, UCACHE_SET_UPDATE))
				_exit(1);
		}
		__atomic_add_fetch(&sh->reads, 1, __ATOMIC_RELEASE);
		sh->started = 1;
	}
	_exit(0);
}

static void test_lru_exact_key_read_by_other_process_survives(void **state)
{
	ucache_t *c = ut_cache("name=l,items=65,blocksize=64,keysize=32,purge_lru=1,ignore_full=1");
	struct hot_share *sh = ut_shared(sizeof(*sh));
	uint64_t deadline = ut_now_ns() + 30000000000ull;
	char k[32];
	pid_t pid;
	int i;

	(void)state;
	assert_int_equal(ut_set(c, "hot", "h", 0, 0), 0);
	pid = ut_fork();
	if (pid == 0)
		hot_reader(c, sh);
	while (!sh->started && ut_now_ns() < deadline)
		; /* poll until the reader runs */
	assert_true(sh->started);
	for (i = 0; i < 20000; i++) {
		uint64_t r0 = __atomic_load_n(&sh->reads, __ATOMIC_ACQUIRE);
		while (__atomic_load_n(&sh->reads, __ATOMIC_ACQUIRE) < r0 + 2 && ut_now_ns() < deadline)
			; /* poll: read #r0+2 began after the last insert returned */
		snprintf(k, sizeof(k), "cold%d", i);
		assert_int_equal(ut_set(c, k, "c", 0, 0), 0);
	}
	assert_true(ut_now_ns() < deadline);
	sh->stop = 1;
	assert_int_equal(ut_wait_exit(pid), 0);
	print_message("    hot key evicted %llu times in 20000 inserts (%llu reads)\n",
		      (unsigned long long)sh->misses, (unsigned long long)sh->reads);
	assert_int_equal(sh->misses, 0);
	ut_check(c);
	munmap(sh, sizeof(*sh));
	ut_destroy(c);
}

/* --------------------------------------------------------- sampled LRU */

/* The sampled LRU ages items in 4 ms ticks of CLOCK_MONOTONIC_COARSE:
 * poll until the tick changes so that uses on either side are ordered. */
static void next_tick(void)
{
	struct timespec ts;
	uint64_t t0, t;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	t0 = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) >> 2;
	do {
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		t = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) >> 2;
	} while (t == t0);
}

#define HOT 100
#define ROUNDS 100
#define COLD_PER_ROUND 1000

static void test_lru_large_never_full_hot_keys_survive(void **state)
{
	ucache_t *c = ut_cache("name=big,items=10000,blocksize=32,keysize=32,purge_lru=1");
	uint64_t inserts = 0, hot_hits = 0, hot_reads = 0, cold0_alive = 0;
	char k[32];
	int r, i, rc;

	(void)state;
	for (i = 0; i < HOT; i++) {
		snprintf(k, sizeof(k), "hot%03d", i);
		assert_int_equal(ut_set(c, k, "hot", 0, 0), 0);
		inserts++;
	}
	for (r = 0; r < ROUNDS; r++) {
		next_tick();
		for (i = 0; i < COLD_PER_ROUND; i++) {
			snprintf(k, sizeof(k), "cold%03d-%04d", r, i);
			rc = ut_set(c, k, "cold", 0, 0);
			if (rc)
				fail_msg("set %d of round %d: rc %d (purge_lru must always make room)", i, r, rc);
			inserts++;
		}
		next_tick();
		for (i = 0; i < HOT; i++) {
			snprintf(k, sizeof(k), "hot%03d", i);
			hot_reads++;
			if (get(c, k) == 0) {
				hot_hits++;
				continue;
			}
			assert_int_equal(ut_set(c, k, "hot", 0, 0), 0); /* a miss: the app stores it again */
			inserts++;
		}
	}
	for (i = 0; i < COLD_PER_ROUND; i++) {
		snprintf(k, sizeof(k), "cold000-%04d", i);
		cold0_alive += ucache_exists(c, k, strlen(k)) == 0;
	}
	print_message("    hot keys survived %.2f%%, round-0 cold keys %.2f%%\n", 100.0 * (double)hot_hits / (double)hot_reads,
		      100.0 * (double)cold0_alive / COLD_PER_ROUND);
	assert_true(hot_hits * 100 >= hot_reads * 90);
	assert_true(cold0_alive * 100 <= COLD_PER_ROUND * 10);
	assert_int_equal(ucache_items(c), 9999);
	assert_int_equal(ut_stats(c).evictions, inserts - 9999);
	assert_int_equal(ut_stats(c).full, inserts - 9999); /* one eviction per full write */
	ut_check(c);
	ut_destroy(c);
}

/* ---------------------------------------------------------------- SIEVE */

/* A full SIEVE cache through inserts, reads (visited bits: the hand then
 * evicts mid-queue) and deletes of old keys (queue tails, whose next link
 * the engine no longer keeps, and their neighbours): ucache_check walks
 * every stripe's queue both ways every 97 operations. */
static void test_sieve_queue_checked_through_churn_gets_and_deletes(void **state)
{
	ucache_t *c = ut_cache("name=q,items=1025,blocksize=32,keysize=32,purge_lru=1,ignore_full=1");
	uint64_t rng = 88172645463325252ull, op;
	uint32_t n = 0, deleted = 0;
	char k[32];

	(void)state;
	for (op = 0; op < 20000; op++) {
		uint64_t r;
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		r = rng % 100;
		if (r < 60 || n < 1100) {
			snprintf(k, sizeof(k), "k%u", n++);
			assert_int_equal(ut_set(c, k, "v", 0, 0), 0);
			assert_int_equal(get(c, k), 0);
		} else if (r < 85) {
			snprintf(k, sizeof(k), "k%u", n - 1 - (uint32_t)(rng >> 32) % 900);
			(void)get(c, k);
		} else {
			/* old keys: the oldest still cached sit at their queue's tail */
			snprintf(k, sizeof(k), "k%u", n - 1100 + (uint32_t)(rng >> 32) % 200);
			if (ucache_del(c, k, strlen(k)) == 0)
				deleted++;
			assert_int_equal(get(c, k), -ENOENT);
		}
		if (op % 97 == 0)
			ut_check(c);
	}
	ut_check(c);
	assert_true(deleted > 100);
	assert_true(ucache_items(c) <= 1024);
	ut_destroy(c);
}

/* -------------------------------------------------------- sweep_on_full */

/* 10000 usable items; the expired ones are the last stored, so the small
 * sweep a full write always tries first (<= 128 slots from a cursor that
 * starts at slot 1) does not reach them: only sweep_on_full does. */
static ucache_t *full_with_expired_tail(const char *keyval)
{
	ucache_t *c = ut_cache(keyval);

	ut_set_k(c, 0, 9991, "v", 0);
	ut_set_k(c, 9991, 10000, "v", 5);
	return c;
}

static void test_sweep_on_full_frees_expired_when_full(void **state)
{
	ucache_t *c = full_with_expired_tail("name=s,items=10001,blocksize=16,hashsize=1024,sweep_on_full=10,ignore_full=1");
	char k[16];
	int i;

	(void)state;
	ut_clock_set(T0 + 5); /* k9991..k9999 expire */
	assert_int_equal(ut_set(c, "a", "v", 5, 0), 0); /* a full sweep made room */
	assert_int_equal(ut_stats(c).expirations, 9);
	assert_int_equal(ut_stats(c).full, 1);
	for (i = 1; i <= 8; i++) { /* refill the freed slots, all expiring at T0 + 10 */
		snprintf(k, sizeof(k), "b%d", i);
		assert_int_equal(ut_set(c, k, "v", 5, 0), 0);
	}
	assert_int_equal(ucache_items(c), 10000);
	ut_clock_set(T0 + 10); /* 9 expired again, but the last full sweep was at T0 + 5 */
	assert_int_equal(ut_set(c, "c", "v", 0, 0), -ENOSPC);
	assert_int_equal(ut_stats(c).full, 2);
	ut_clock_set(T0 + 15); /* sweep_on_full=10: allowed again */
	assert_int_equal(ut_set(c, "c", "v", 0, 0), 0);
	assert_int_equal(ut_stats(c).expirations, 18);
	assert_int_equal(ucache_items(c), 10000 - 9 + 1);
	ut_expect(c, "k0", "v");
	ut_expect(c, "k9990", "v");
	ut_check(c);
	ut_destroy(c);
}

static void test_without_sweep_on_full_expired_tail_stays(void **state)
{
	ucache_t *c = full_with_expired_tail("name=s,items=10001,blocksize=16,hashsize=1024,ignore_full=1");

	(void)state;
	ut_clock_set(T0 + 5);
	assert_int_equal(ut_set(c, "a", "v", 0, 0), -ENOSPC);
	assert_int_equal(ut_stats(c).expirations, 0);
	assert_int_equal(ut_stats(c).full, 1);
	ut_destroy(c);
}

/* -------------------------------------------------------- clear_on_full */

static void test_clear_on_full_empties_then_stores(void **state)
{
	ucache_t *c = ut_cache("name=f,items=10,blocksize=64,clear_on_full=1");
	char k[16];
	int i;

	(void)state;
	ut_set_k(c, 0, 9, NULL, 0);
	assert_int_equal(ut_set(c, "new", "v", 0, 0), 0);
	assert_int_equal(ucache_items(c), 1);
	ut_expect(c, "new", "v");
	for (i = 0; i < 9; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(ucache_exists(c, k, strlen(k)), -ENOENT);
	}
	assert_int_equal(ut_stats(c).evictions, 9);
	assert_int_equal(ut_stats(c).full, 1);
	assert_int_equal(ut_stats(c).bytes_used, 1);
	ut_check(c);
	ut_destroy(c);
}

/* clear_on_full only when nothing else made room: expired items first. */
static void test_clear_on_full_prefers_expired(void **state)
{
	ucache_t *c = ut_cache("name=f,items=10,blocksize=64,clear_on_full=1");

	(void)state;
	ut_set_k(c, 0, 4, NULL, 0);
	ut_set_k(c, 4, 5, NULL, 5); /* only k4 expires */
	ut_set_k(c, 5, 9, NULL, 0);
	ut_clock_advance(5);
	assert_int_equal(ut_set(c, "new", "v", 0, 0), 0);
	assert_int_equal(ucache_items(c), 9);
	assert_int_equal(ut_stats(c).evictions, 0);
	ut_expect(c, "k0", "k0");
	ut_destroy(c);
}

/* ----------------------------------------------------------- full log */

static void fill_and_fail(ucache_t *c, int failures)
{
	int i;

	ut_set_k(c, 0, 9, NULL, 0);
	for (i = 0; i < failures; i++)
		assert_int_equal(ut_set(c, "over", "v", 0, 0), -ENOSPC);
}

static void test_full_logged_once_without_ignore_full(void **state)
{
	ucache_t *c = ut_cache("name=f,items=10,blocksize=64");

	(void)state;
	fill_and_fail(c, 3);
	assert_int_equal(ut_log_count(FULL_LINE), 1);
	assert_int_equal(ut_logs()->n, 1);
	assert_int_equal(ut_logs()->level[0], UCACHE_LOG_WARN);
	assert_int_equal(ut_stats(c).full, 3);
	ut_clock_advance(1); /* at most once a second */
	assert_int_equal(ut_set(c, "over", "v", 0, 0), -ENOSPC);
	assert_int_equal(ut_log_count(FULL_LINE), 2);
	ut_destroy(c);
}

static void test_ignore_full_suppresses_full_log(void **state)
{
	ucache_t *c = ut_cache("name=f,items=10,blocksize=64,ignore_full=1");

	(void)state;
	fill_and_fail(c, 3);
	ut_clock_advance(1);
	assert_int_equal(ut_set(c, "over", "v", 0, 0), -ENOSPC);
	assert_int_equal(ut_logs()->n, 0);
	assert_int_equal(ut_stats(c).full, 4); /* still counted */
	ut_destroy(c);

	c = ut_cache("name=f,items=10,blocksize=64,ignore_full=1,purge_lru=1");
	fill_and_fail(c, 0);
	assert_int_equal(ut_set(c, "over", "v", 0, 0), 0);
	assert_int_equal(ut_logs()->n, 0);
	assert_int_equal(ut_stats(c).full, 1);
	ut_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_lru_exact_order_scripted),
		T(test_lru_update_counts_as_use),
		T(test_lru_exact_order_random_rounds_small),
		T(test_lru_exact_order_random_rounds_65_items),
		T(test_lru_exact_order_bitmap),
		T(test_lru_exact_key_read_by_other_process_survives),
		T(test_lru_large_never_full_hot_keys_survive),
		T(test_sieve_queue_checked_through_churn_gets_and_deletes),
		T(test_sweep_on_full_frees_expired_when_full),
		T(test_without_sweep_on_full_expired_tail_stays),
		T(test_clear_on_full_empties_then_stores),
		T(test_clear_on_full_prefers_expired),
		T(test_full_logged_once_without_ignore_full),
		T(test_ignore_full_suppresses_full_log),
	};

	return cmocka_run_group_tests_name("lru", tests, NULL, NULL);
}
