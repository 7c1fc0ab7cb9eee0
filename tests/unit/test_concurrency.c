/*
 * test_concurrency.c - multi-process tests of the locking and recovery
 * protocol (core/cache.c, core/ops.c, core/check.c).
 *
 *   - stress: 4 forked children run mixed get/set/update/del/math/iterate
 *     on one cache created before the fork.  Every value embeds its key and
 *     a checksum, so a torn or foreign read is detected; counters checked
 *     against the exact number of increments; ucache_check() at the end.
 *   - writer killed: hundreds of times, a child writing in a tight loop is
 *     SIGKILLed at a random point (after a random number of its own
 *     operations, polled through a shared progress counter, plus a random
 *     busy-wait); the parent must then read, write and pass ucache_check(),
 *     and a reader running through all the kills must always read the
 *     parent's keys back exactly (even while a repair runs).
 *   - reader killed (stock issue #1202: a reader died holding the lock and
 *     every writer hung): readers are killed at random points while a writer
 *     runs; the writer must keep making progress within a bounded time.
 *
 * Synchronisation is by polling shared counters, never by sleeping.
 * Children never call cmocka: they report through their exit status and a
 * message in shared memory, and leave with _exit().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ucache.h"
#include "ucache_test.h"

#define SEC 1000000000ull

/* ------------------------------------------------ self-checking values */

static uint32_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *b++) * 16777619u;
	return h;
}

/* "key|writer|seq|padding|crc": the crc covers everything before it. */
static size_t make_value(char *buf, size_t cap, const char *key, unsigned writer, uint64_t seq, size_t pad)
{
	size_t n = (size_t)snprintf(buf, cap, "%s|%u|%llu|", key, writer, (unsigned long long)seq);

	memset(buf + n, 'a' + (int)(seq % 26), pad);
	n += pad;
	n += (size_t)snprintf(buf + n, cap - n, "|%08x", fnv1a(buf, n));
	return n;
}

/* 1 if v (len bytes) is a well-formed value of key. */
static int value_ok(const char *key, const char *v, size_t len)
{
	size_t kl = strlen(key);
	char hex[9];

	if (len < kl + 10 || memcmp(v, key, kl) || v[kl] != '|' || v[len - 9] != '|')
		return 0;
	snprintf(hex, sizeof(hex), "%08x", fnv1a(v, len - 9));
	return !memcmp(hex, v + len - 8, 8);
}

static void key_name(char *buf, size_t cap, int i)
{
	snprintf(buf, cap, i % 3 ? "key%02d" : "a-much-longer-key-in-the-key-heap-%02d", i);
}

/* ------------------------------------------------------------- stress */

#define CHILDREN 4
#define STRESS_OPS 25000
#define NKEYS 96
#define NCTR 8

struct stress_share {
	volatile int go;
	uint64_t incs[CHILDREN][NCTR];
	char why[CHILDREN][192];
};

/* In a child: record why (a char array in shared memory) and exit 1. */
#define CHILD_FAIL(why, ...) do { \
		snprintf((why), sizeof(why), __VA_ARGS__); \
		_exit(1); \
	} while (0)

static void stress_read(ucache_t *c, struct stress_share *sh, int me, const char *k, uint64_t r)
{
	char buf[512];
	size_t len = 0;
	int rc;

	if (r % 3 == 0) {
		char *p = ucache_get_alloc(c, k, strlen(k), &len, NULL);
		if (!p && errno != ENOENT)
			CHILD_FAIL(sh->why[me], "get_alloc %s: errno %d", k, errno);
		if (p && !value_ok(k, p, len)) {
			free(p);
			CHILD_FAIL(sh->why[me], "get_alloc %s: torn or foreign value (%zu bytes)", k, len);
		}
		free(p);
		return;
	}
	rc = ucache_get(c, k, strlen(k), buf, sizeof(buf), &len);
	if (rc == -ENOENT)
		return;
	if (rc)
		CHILD_FAIL(sh->why[me], "get %s: rc %d", k, rc);
	if (!value_ok(k, buf, len))
		CHILD_FAIL(sh->why[me], "get %s: torn or foreign value \"%.*s\"", k, (int)(len < 80 ? len : 80), buf);
}

static void stress_iterate(ucache_t *c, struct stress_share *sh, int me)
{
	char buf[64];
	uint64_t cur = 0;
	size_t len;
	int n = 0, i;

	while (ucache_iter(c, &cur, buf, sizeof(buf) - 1, &len) == 0) {
		buf[len] = '\0';
		if (!(sscanf(buf, "key%2d", &i) == 1 || sscanf(buf, "a-much-longer-key-in-the-key-heap-%2d", &i) == 1 ||
		      sscanf(buf, "ctr%d", &i) == 1))
			CHILD_FAIL(sh->why[me], "iteration returned a foreign key \"%s\"", buf);
		if (++n > NKEYS + NCTR)
			CHILD_FAIL(sh->why[me], "iteration returned %d keys, more than ever existed", n);
	}
}

static void stress_child(ucache_t *c, struct stress_share *sh, int me, int counters_exact)
{
	uint64_t seed = 0x5eed0000ull + (uint64_t)me * 7919, seq = 0;
	char k[64], v[512];
	int op, rc;

	while (!sh->go)
		; /* poll: start together */
	for (op = 0; op < STRESS_OPS; op++) {
		uint64_t r = ut_rand(&seed);
		int kind = (int)(r % 16), j = (int)((r >> 8) % NCTR);
		size_t vl;

		key_name(k, sizeof(k), (int)((r >> 16) % NKEYS));
		vl = make_value(v, sizeof(v), k, (unsigned)me, seq++, (r >> 32) % 200);
		if (kind <= 5) {
			stress_read(c, sh, me, k, r >> 40);
		} else if (kind == 6) {
			rc = ucache_exists(c, k, strlen(k));
			if (rc && rc != -ENOENT)
				CHILD_FAIL(sh->why[me], "exists %s: rc %d", k, rc);
		} else if (kind == 7) {
			rc = ucache_set(c, k, strlen(k), v, vl, 0, 0);
			if (rc && rc != -EEXIST)
				CHILD_FAIL(sh->why[me], "set %s: rc %d", k, rc);
		} else if (kind <= 9) {
			rc = ucache_set(c, k, strlen(k), v, vl, 0, UCACHE_SET_UPDATE);
			if (rc)
				CHILD_FAIL(sh->why[me], "update %s: rc %d", k, rc);
		} else if (kind == 10) {
			rc = ucache_del(c, k, strlen(k));
			if (rc && rc != -ENOENT)
				CHILD_FAIL(sh->why[me], "del %s: rc %d", k, rc);
		} else if (kind <= 13) {
			int64_t res;
			snprintf(k, sizeof(k), "ctr%d", j);
			rc = ucache_math(c, k, strlen(k), UCACHE_MATH_INC, 1, 0, &res);
			if (rc)
				CHILD_FAIL(sh->why[me], "inc %s: rc %d", k, rc);
			if (counters_exact && res <= 0)
				CHILD_FAIL(sh->why[me], "inc %s gave %lld", k, (long long)res);
			sh->incs[me][j]++;
		} else if (kind == 14) {
			int64_t n;
			snprintf(k, sizeof(k), "ctr%d", j);
			rc = ucache_num(c, k, strlen(k), &n);
			if (rc && rc != -ENOENT)
				CHILD_FAIL(sh->why[me], "num %s: rc %d (not 8 bytes?)", k, rc);
		} else if (op % 64 == 15) {
			stress_iterate(c, sh, me);
		}
	}
	_exit(0);
}

static void stress(const char *keyval, int counters_exact)
{
	ucache_t *c = ut_cache(keyval);
	struct stress_share *sh = ut_shared(sizeof(*sh));
	pid_t pids[CHILDREN];
	char k[64], buf[512];
	size_t len;
	int i, j, failed = 0;

	for (i = 0; i < CHILDREN; i++) {
		pids[i] = ut_fork();
		if (pids[i] == 0)
			stress_child(c, sh, i, counters_exact);
	}
	sh->go = 1;
	for (i = 0; i < CHILDREN; i++) {
		int st = ut_wait_exit(pids[i]);
		if (st) {
			print_message("child %d: exit %d: %s\n", i, st, sh->why[i]);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
	for (i = 0; i < NKEYS; i++) { /* what is left is well-formed */
		key_name(k, sizeof(k), i);
		if (ucache_get(c, k, strlen(k), buf, sizeof(buf), &len) == 0 && !value_ok(k, buf, len))
			fail_msg("%s holds a torn value after the stress", k);
	}
	for (j = 0; j < NCTR; j++) {
		uint64_t total = 0;
		int64_t n = -1;
		int rc;
		for (i = 0; i < CHILDREN; i++)
			total += sh->incs[i][j];
		snprintf(k, sizeof(k), "ctr%d", j);
		rc = ucache_num(c, k, strlen(k), &n);
		if (counters_exact) {
			assert_int_equal(rc, 0);
			if ((uint64_t)n != total)
				fail_msg("%s = %lld after %llu increments (lost updates)", k, (long long)n,
					 (unsigned long long)total);
		} else if (rc == 0) {
			assert_true(n > 0 && (uint64_t)n <= total);
		}
	}
	ut_check(c);
	munmap(sh, sizeof(*sh));
	ut_destroy(c);
}

static void test_stress_mixed_ops_four_processes(void **state)
{
	(void)state;
	stress("name=st,items=256,blocksize=256,keysize=64,hashsize=64", 1);
}

static void test_stress_bitmap_mode(void **state)
{
	(void)state;
	stress("name=st,items=256,blocks=512,blocksize=64,bitmap=1,keysize=64", 1);
}

/* Fewer slots than keys: purge_lru evicts while others read and write. */
static void test_stress_with_lru_evictions(void **state)
{
	(void)state;
	stress("name=st,items=40,blocksize=256,keysize=64,purge_lru=1,ignore_full=1", 0);
}

/* ------------------------------------------------------ writer killed */

#define PKEYS 40   /* the parent's own keys: never touched by children */
#define CKEYS 150  /* the children's keys */

struct kill_share {
	volatile uint64_t progress;     /* the writer's operations */
	volatile uint64_t rprogress;    /* the watching reader's passes */
	volatile int rstop;
	char why[192], rwhy[192];
};

static void parent_key(char *buf, size_t cap, int i)
{
	snprintf(buf, cap, i % 2 ? "p%02d" : "parent-key-long-enough-for-the-heap-%02d", i);
}

static void child_key(char *buf, size_t cap, int i)
{
	snprintf(buf, cap, i % 2 ? "c%03d" : "child-key-long-enough-for-the-heap-%03d", i);
}

/* Random writes forever (until SIGKILL). */
static void kill_writer(ucache_t *c, struct kill_share *sh, uint64_t seed)
{
	char k[64], v[4096];
	uint64_t seq = 0;
	int rc;

	for (;;) {
		uint64_t r = ut_rand(&seed);
		size_t vl;

		child_key(k, sizeof(k), (int)((r >> 8) % CKEYS));
		vl = make_value(v, sizeof(v), k, 9, seq++, r % 8 == 7 ? 3000 + (r >> 40) % 900 : (r >> 40) % 300);
		switch (r % 8) {
		case 0:
		case 1:
			rc = ucache_set(c, k, strlen(k), v, vl, 0, 0);
			rc = rc == -EEXIST ? 0 : rc;
			break;
		case 2:
		case 3:
		case 7:
			rc = ucache_set(c, k, strlen(k), v, vl, 0, UCACHE_SET_UPDATE);
			break;
		case 4:
			rc = ucache_del(c, k, strlen(k));
			rc = rc == -ENOENT ? 0 : rc;
			break;
		case 5:
			snprintf(k, sizeof(k), "cn%d", (int)((r >> 8) % 8));
			rc = ucache_math(c, k, strlen(k), UCACHE_MATH_INC, 1, 0, NULL);
			break;
		default:
			rc = ucache_get(c, k, strlen(k), v, sizeof(v), &vl);
			if (rc == 0 && !value_ok(k, v, vl))
				CHILD_FAIL(sh->why, "get %s: torn value", k);
			rc = rc == -ENOENT ? 0 : rc;
		}
		if (rc)
			CHILD_FAIL(sh->why, "op %d on %s: rc %d", (int)(r % 8), k, rc);
		__atomic_add_fetch(&sh->progress, 1, __ATOMIC_RELEASE);
	}
}

/* A reader that runs through all the kills: the parent's keys must read
 * back exactly on every pass, even while a dead writer's damage is being
 * repaired, and the children's keys must never read torn. */
static void kill_watcher(ucache_t *c, struct kill_share *sh)
{
	char k[64], v[4096], want[256];
	size_t len, wl;
	int i, rc;

	while (!sh->rstop) {
		for (i = 0; i < PKEYS; i++) {
			parent_key(k, sizeof(k), i);
			wl = make_value(want, sizeof(want), k, 1, (uint64_t)i, (size_t)i * 3);
			rc = ucache_get(c, k, strlen(k), v, sizeof(v), &len);
			if (rc || len != wl || memcmp(v, want, wl))
				CHILD_FAIL(sh->rwhy, "watcher: parent key %s: rc %d, %zu bytes", k, rc, len);
		}
		for (i = 0; i < CKEYS; i++) {
			child_key(k, sizeof(k), i);
			if (ucache_get(c, k, strlen(k), v, sizeof(v), &len) == 0 && !value_ok(k, v, len))
				CHILD_FAIL(sh->rwhy, "watcher: %s torn", k);
		}
		__atomic_add_fetch(&sh->rprogress, 1, __ATOMIC_RELEASE);
	}
	_exit(0);
}

/* After a kill: the parent's keys are intact, every child key present is
 * well-formed, and a write/read/delete round trip works. */
static void verify_after_kill(ucache_t *c, int iter)
{
	char k[64], v[4096], want[256];
	size_t len, wl;
	int64_t n;
	int i, rc;

	for (i = 0; i < PKEYS; i++) {
		parent_key(k, sizeof(k), i);
		wl = make_value(want, sizeof(want), k, 1, (uint64_t)i, (size_t)i * 3);
		rc = ucache_get(c, k, strlen(k), v, sizeof(v), &len);
		if (rc || len != wl || memcmp(v, want, wl))
			fail_msg("kill %d: parent key %s: rc %d, %zu bytes (want %zu)", iter, k, rc, len, wl);
	}
	for (i = 0; i < CKEYS; i++) {
		child_key(k, sizeof(k), i);
		rc = ucache_get(c, k, strlen(k), v, sizeof(v), &len);
		if (rc == 0 && !value_ok(k, v, len))
			fail_msg("kill %d: %s holds a torn value (%zu bytes)", iter, k, len);
		if (rc && rc != -ENOENT)
			fail_msg("kill %d: get %s: rc %d", iter, k, rc);
	}
	for (i = 0; i < 8; i++) {
		snprintf(k, sizeof(k), "cn%d", i);
		rc = ucache_num(c, k, strlen(k), &n);
		if (rc && rc != -ENOENT)
			fail_msg("kill %d: num %s: rc %d", iter, k, rc);
	}
	wl = make_value(want, sizeof(want), "scratch", 1, (uint64_t)iter, (size_t)iter % 200);
	assert_int_equal(ucache_set(c, "scratch", 7, want, wl, 0, UCACHE_SET_UPDATE), 0);
	ut_expect_mem(c, "scratch", 7, want, wl);
	assert_int_equal(ucache_del(c, "scratch", 7), 0);
	assert_int_equal(ucache_exists(c, "scratch", 7), -ENOENT);
}

/* Poll until *counter >= target; 0, or -1 after timeout_ns. */
static int wait_progress(volatile uint64_t *counter, uint64_t target, uint64_t timeout_ns)
{
	uint64_t deadline = ut_now_ns() + timeout_ns;

	while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < target)
		if (ut_now_ns() > deadline)
			return -1;
	return 0;
}

/* Kill child pid at a random point: once *progress reaches target, plus a
 * spin_ns busy-wait.  Its ut_wait_exit() status (1000 + SIGKILL if it was
 * still running), or -ETIMEDOUT, the child killed and reaped all the same,
 * if it made no progress in 10 s. */
static int kill_after_progress(pid_t pid, volatile uint64_t *progress, uint64_t target, uint64_t spin_ns)
{
	if (wait_progress(progress, target, 10 * SEC)) {
		ut_kill(pid);
		return -ETIMEDOUT;
	}
	ut_spin_ns(spin_ns);
	return ut_kill(pid);
}

static void writer_killed(const char *keyval, int max_iters, uint64_t budget_ns)
{
	ucache_t *c = ut_cache(keyval);
	struct kill_share *sh = ut_shared(sizeof(*sh));
	uint64_t seed = 0xfeedfacecafebeefull, start = ut_now_ns();
	char k[64], v[256];
	int iter, st;
	pid_t watcher;
	size_t vl;

	for (iter = 0; iter < PKEYS; iter++) {
		parent_key(k, sizeof(k), iter);
		vl = make_value(v, sizeof(v), k, 1, (uint64_t)iter, (size_t)iter * 3);
		assert_int_equal(ucache_set(c, k, strlen(k), v, vl, 0, 0), 0);
	}
	watcher = ut_fork();
	if (watcher == 0)
		kill_watcher(c, sh);
	for (iter = 0; iter < max_iters && (iter < 50 || ut_now_ns() - start < budget_ns); iter++) {
		uint64_t r = ut_rand(&seed);
		pid_t pid;

		sh->progress = 0;
		pid = ut_fork();
		if (pid == 0)
			kill_writer(c, sh, r | 1);
		st = kill_after_progress(pid, &sh->progress, 1 + r % 64, (r >> 16) % 200000); /* 0-200 us more */
		if (st == -ETIMEDOUT)
			fail_msg("kill %d: the writer made no progress in 10 s (blocked?)", iter);
		if (st != 1000 + SIGKILL)
			fail_msg("kill %d: writer exited with %d: %s", iter, st, sh->why);
		verify_after_kill(c, iter);
		if (wait_progress(&sh->rprogress, sh->rprogress + 1, 10 * SEC))
			fail_msg("kill %d: the watching reader is stuck or dead: %s", iter, sh->rwhy);
		if (iter % 4 == 3) /* otherwise the next child (or a read) repairs */
			ut_check(c);
	}
	sh->rstop = 1;
	st = ut_wait_exit(watcher);
	if (st)
		fail_msg("watching reader exited with %d: %s", st, sh->rwhy);
	ut_check(c);
	verify_after_kill(c, iter);
	print_message("    %d kills in %.2f s, %d died holding a lock (repaired)\n", iter,
		      (double)(ut_now_ns() - start) / 1e9, ut_log_count("died holding a lock"));
	assert_true(iter >= 50);
	/* every line logged is a repair report (only the first UT_LOG_MAX are kept) */
	assert_int_equal(ut_log_count("repair dropped") + ut_log_count("died holding a lock"),
			 ut_logs()->n < UT_LOG_MAX ? ut_logs()->n : UT_LOG_MAX);
	munmap(sh, sizeof(*sh));
	ut_destroy(c);
}

static void test_writer_killed_at_random_points(void **state)
{
	(void)state;
	writer_killed("name=kw,items=512,blocksize=4096,keysize=64", 300, 8 * SEC);
}

static void test_writer_killed_bitmap_mode(void **state)
{
	(void)state;
	writer_killed("name=kb,items=512,blocks=4096,blocksize=256,bitmap=1,keysize=64", 100, 3 * SEC);
}

/* ------------------------------------------------------ reader killed */

#define WKEYS 64

struct reader_share {
	volatile int stop;
	volatile uint64_t wprogress, rprogress;
	volatile uint64_t wmax_ns;
	char why[192];
};

/* The only writer: every write is checked by reading it back. */
static void rk_writer(ucache_t *c, struct reader_share *sh)
{
	uint64_t seed = 77, seq = 0;
	char k[64], v[512], got[512];
	size_t vl, gl;
	int rc;

	while (!sh->stop) {
		uint64_t r = ut_rand(&seed), t0 = ut_now_ns(), dt;
		key_name(k, sizeof(k), (int)((r >> 8) % WKEYS));
		vl = make_value(v, sizeof(v), k, 2, seq++, (r >> 32) % 300);
		if (r % 5 == 4) {
			rc = ucache_del(c, k, strlen(k));
			if (rc && rc != -ENOENT)
				CHILD_FAIL(sh->why, "writer: del %s: rc %d", k, rc);
			rc = ucache_get(c, k, strlen(k), got, sizeof(got), &gl) == -ENOENT ? 0 : -1;
		} else if (r % 5 == 3) {
			rc = ucache_math(c, "counter", 7, UCACHE_MATH_INC, 1, 0, NULL);
		} else {
			rc = ucache_set(c, k, strlen(k), v, vl, 0, UCACHE_SET_UPDATE);
			if (!rc && (ucache_get(c, k, strlen(k), got, sizeof(got), &gl) || gl != vl || memcmp(got, v, vl)))
				CHILD_FAIL(sh->why, "writer: %s does not read back what was written", k);
		}
		if (rc)
			CHILD_FAIL(sh->why, "writer: op on %s: rc %d", k, rc);
		dt = ut_now_ns() - t0;
		if (dt > sh->wmax_ns)
			sh->wmax_ns = dt;
		__atomic_add_fetch(&sh->wprogress, 1, __ATOMIC_RELEASE);
	}
	_exit(0);
}

/* Reads of every kind in a tight loop (until SIGKILL). */
static void rk_reader(ucache_t *c, struct reader_share *sh, uint64_t seed)
{
	char k[64], buf[512];
	size_t len;
	int64_t n;

	for (;;) {
		uint64_t r = ut_rand(&seed);
		key_name(k, sizeof(k), (int)((r >> 8) % WKEYS));
		switch (r % 6) {
		case 0:
		case 1:
			if (ucache_get(c, k, strlen(k), buf, sizeof(buf), &len) == 0 && !value_ok(k, buf, len))
				CHILD_FAIL(sh->why, "reader: %s torn", k);
			break;
		case 2: {
			struct ucache_item_info info;
			ucache_get_ex(c, k, strlen(k), buf, 8, &len, &info); /* often -ENOBUFS */
			break;
		}
		case 3:
			ucache_exists(c, k, strlen(k));
			ucache_num(c, "counter", 7, &n);
			break;
		case 4: {
			char *p = ucache_get_alloc(c, k, strlen(k), &len, NULL);
			free(p);
			break;
		}
		default: {
			uint64_t cur = 0;
			while (ucache_iter(c, &cur, buf, sizeof(buf), &len) == 0)
				;
		}
		}
		__atomic_add_fetch(&sh->rprogress, 1, __ATOMIC_RELEASE);
	}
}

static void test_reader_killed_writers_never_block_issue1202(void **state)
{
	ucache_t *c = ut_cache("name=rk,items=256,blocksize=512,keysize=64,purge_lru=1");
	struct reader_share *sh = ut_shared(sizeof(*sh));
	uint64_t seed = 4242, start = ut_now_ns();
	pid_t writer;
	int kills, st;

	(void)state;
	writer = ut_fork();
	if (writer == 0)
		rk_writer(c, sh);
	assert_int_equal(wait_progress(&sh->wprogress, 100, 10 * SEC), 0);
	for (kills = 0; kills < 200 && (kills < 30 || ut_now_ns() - start < 4 * SEC); kills++) {
		uint64_t r = ut_rand(&seed), w0;
		pid_t reader;

		sh->rprogress = 0;
		reader = ut_fork();
		if (reader == 0)
			rk_reader(c, sh, r | 1);
		st = kill_after_progress(reader, &sh->rprogress, 1 + r % 100, (r >> 16) % 100000);
		if (st == -ETIMEDOUT)
			fail_msg("reader %d made no progress", kills);
		if (st != 1000 + SIGKILL)
			fail_msg("reader %d exited with %d: %s", kills, st, sh->why);
		/* the writer must go on: 50 more writes within 5 s */
		w0 = sh->wprogress;
		if (wait_progress(&sh->wprogress, w0 + 50, 5 * SEC)) {
			ut_kill(writer);
			fail_msg("writer blocked after reader %d was killed (stock issue #1202)", kills);
		}
	}
	sh->stop = 1;
	st = ut_wait_exit(writer);
	if (st)
		fail_msg("writer exited with %d: %s", st, sh->why);
	print_message("    %d readers killed, %llu writes, slowest write %.3f ms\n", kills,
		      (unsigned long long)sh->wprogress, (double)sh->wmax_ns / 1e6);
	assert_true(sh->wmax_ns < 2 * SEC);
	ut_check(c);
	munmap(sh, sizeof(*sh));
	ut_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup_real_clock, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_stress_mixed_ops_four_processes),
		T(test_stress_bitmap_mode),
		T(test_stress_with_lru_evictions),
		T(test_writer_killed_at_random_points),
		T(test_writer_killed_bitmap_mode),
		T(test_reader_killed_writers_never_block_issue1202),
	};

	return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
