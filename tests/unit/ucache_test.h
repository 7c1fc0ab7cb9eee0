/*
 * ucache_test.h - helpers shared by the engine's cmocka unit tests.
 *
 * Include after <cmocka.h> (the helpers fail tests with fail_msg()).  Every
 * helper is a static inline function and every symbol is prefixed ut_, so a
 * test file may use any subset and define its own names freely.  State that
 * a helper keeps (fake clock, captured log lines) lives in function-local
 * statics: one copy per test program, copied into forked children.
 *
 *   ut_setup, ut_setup_real_clock, ut_teardown
 *                             cmocka fixtures: capture logs and run on the
 *                             fake clock at UT_T0 (or the real one); the
 *                             teardown kills leftover children, destroys
 *                             leftover caches and restores logger and clock
 *   ut_cache(keyval)          create a cache from a --cache2 keyval string;
 *   ut_destroy(c), ut_close(c) destroy it, or close it cleanly (never
 *                             ucache_destroy()/ucache_close() on such a
 *                             cache if the teardown calls ut_destroy_all(),
 *                             which frees what a failed test left behind)
 *   ut_clock_*                fake clock installed with ucache_set_clock()
 *   ut_log_*                  capture engine log lines (ucache_set_logger())
 *   ut_check(c)               ucache_check() must pass
 *   ut_stats(c), ut_expires_of(c, k)
 *   ut_expect(c, k, v)        key k holds exactly the string v
 *   ut_set_k(c, from, to, v, expires), ut_expect_k(c, from, to)
 *                             keys "k<from>".."k<to - 1>", valued v or
 *                             (v NULL) their own name
 *   ut_shared(n)              MAP_SHARED memory for parent/child reporting
 *   ut_fork(), ut_wait_exit(pid), ut_kill(pid), ut_reap_children()
 *                             children are recorded, so that a teardown can
 *                             kill the ones a failed test left running
 *   ut_now_ns(), ut_spin_ns(), ut_rss_bytes(), ut_rand()
 */
#ifndef UCACHE_TEST_H
#define UCACHE_TEST_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ucache.h"

/* ------------------------------------------------------------ fake clock */

/* Where ut_setup() starts the fake clock (and where it starts anyway). */
#define UT_T0 1000000u

static inline uint64_t *ut_clock_var(void)
{
	static uint64_t now = UT_T0;

	return &now;
}

static inline uint64_t ut_clock_fn(void)
{
	return __atomic_load_n(ut_clock_var(), __ATOMIC_RELAXED);
}

/* Install the fake clock, reading t from now on. */
static inline void ut_clock_set(uint64_t t)
{
	__atomic_store_n(ut_clock_var(), t, __ATOMIC_RELAXED);
	ucache_set_clock(ut_clock_fn);
}

static inline void ut_clock_advance(uint64_t seconds)
{
	__atomic_add_fetch(ut_clock_var(), seconds, __ATOMIC_RELAXED);
}

/* Back to time(NULL). */
static inline void ut_clock_real(void)
{
	ucache_set_clock(NULL);
}

/* ----------------------------------------------------------- log capture */

#define UT_LOG_MAX 64

struct ut_logs {
	int n;                                  /* lines seen (may exceed UT_LOG_MAX) */
	enum ucache_log_level level[UT_LOG_MAX];
	char msg[UT_LOG_MAX][512];
};

static inline struct ut_logs *ut_logs(void)
{
	static struct ut_logs logs;

	return &logs;
}

static inline void ut_log_fn(enum ucache_log_level level, const char *msg, void *ud)
{
	struct ut_logs *l = ut_logs();

	(void)ud;
	if (l->n < UT_LOG_MAX) {
		l->level[l->n] = level;
		snprintf(l->msg[l->n], sizeof(l->msg[0]), "%s", msg);
	}
	l->n++;
}

/* Forget captured lines and route engine logs to the capture. */
static inline void ut_log_capture(void)
{
	memset(ut_logs(), 0, sizeof(struct ut_logs));
	ucache_set_logger(ut_log_fn, NULL);
}

static inline void ut_log_reset(void)
{
	memset(ut_logs(), 0, sizeof(struct ut_logs));
}

/* Number of captured lines containing sub. */
static inline int ut_log_count(const char *sub)
{
	struct ut_logs *l = ut_logs();
	int i, n = 0;

	for (i = 0; i < l->n && i < UT_LOG_MAX; i++)
		if (strstr(l->msg[i], sub))
			n++;
	return n;
}

/* ---------------------------------------------------------------- caches */

#define UT_CACHES_MAX 16

struct ut_caches {
	int n;
	ucache_t *c[UT_CACHES_MAX];
};

static inline struct ut_caches *ut_caches(void)
{
	static struct ut_caches caches;

	return &caches;
}

/* Create a cache from a --cache2 keyval string; fails the test on error. */
static inline ucache_t *ut_cache(const char *keyval)
{
	struct ut_caches *all = ut_caches();
	struct ucache_config cfg;
	char err[256] = "";
	ucache_t *c;

	if (ucache_config_parse(&cfg, keyval, err, sizeof(err)))
		fail_msg("parse \"%s\": %s", keyval, err);
	c = ucache_create(&cfg, err, sizeof(err));
	ucache_config_free(&cfg);
	if (!c)
		fail_msg("create \"%s\": %s", keyval, err);
	if (all->n < UT_CACHES_MAX) /* else: not freed if the test fails */
		all->c[all->n++] = c;
	return c;
}

/* Take c off the list of caches ut_cache() made (it is going away). */
static inline void ut_forget(ucache_t *c)
{
	struct ut_caches *all = ut_caches();
	int i;

	for (i = 0; i < all->n; i++)
		if (all->c[i] == c)
			all->c[i] = all->c[--all->n];
}

/* Destroy a cache made by ut_cache(). */
static inline void ut_destroy(ucache_t *c)
{
	ut_forget(c);
	ucache_destroy(c);
}

/* Close (cleanly: ucache_close) a cache made by ut_cache(). */
static inline void ut_close(ucache_t *c)
{
	ut_forget(c);
	ucache_close(c);
}

/* Destroy every cache still alive (a failed test skipped its cleanup). */
static inline void ut_destroy_all(void)
{
	struct ut_caches *all = ut_caches();

	while (all->n > 0)
		ucache_destroy(all->c[--all->n]);
}

/* ucache_check() must return 0. */
static inline void ut_check(ucache_t *c)
{
	char err[512] = "";
	int rc = ucache_check(c, err, sizeof(err));

	if (rc)
		fail_msg("ucache_check: rc %d: %s", rc, err);
}

/* String-keyed conveniences (the terminating NUL is not stored). */
static inline int ut_set(ucache_t *c, const char *k, const char *v, uint64_t expires, unsigned flags)
{
	return ucache_set(c, k, strlen(k), v, strlen(v), expires, flags);
}

static inline int ut_get(ucache_t *c, const char *k, char *buf, size_t buflen, size_t *vallen)
{
	return ucache_get(c, k, strlen(k), buf, buflen, vallen);
}

/* Key k (klen bytes) must hold exactly v (vlen bytes). */
static inline void ut_expect_mem(ucache_t *c, const void *k, size_t klen, const void *v, size_t vlen)
{
	size_t got = 0;
	uint8_t *buf = malloc(vlen + 16);
	int rc;

	assert_non_null(buf);
	memset(buf, 0xa5, vlen + 16);
	rc = ucache_get(c, k, klen, buf, vlen + 16, &got);
	if (rc) {
		free(buf);
		fail_msg("get of a %zu-byte key: rc %d, expected a %zu-byte value", klen, rc, vlen);
	}
	if (got != vlen || memcmp(buf, v, vlen)) {
		free(buf);
		fail_msg("get of a %zu-byte key: %zu bytes, expected %zu (or bytes differ)", klen, got, vlen);
	}
	free(buf);
}

static inline void ut_expect(ucache_t *c, const char *k, const char *v)
{
	ut_expect_mem(c, k, strlen(k), v, strlen(v));
}

/* Key k must be absent (get and exists say -ENOENT). */
static inline void ut_expect_missing(ucache_t *c, const char *k)
{
	char buf[8];
	size_t len = 0;

	assert_int_equal(ucache_get(c, k, strlen(k), buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ucache_exists(c, k, strlen(k)), -ENOENT);
}

static inline struct ucache_stats ut_stats(ucache_t *c)
{
	struct ucache_stats st;

	ucache_stats(c, &st);
	return st;
}

/* The absolute expiry of key k, which must be present. */
static inline uint64_t ut_expires_of(ucache_t *c, const char *k)
{
	struct ucache_item_info info = { 7, 7 };
	char buf[64];
	size_t len = 0;

	assert_int_equal(ucache_get_ex(c, k, strlen(k), buf, sizeof(buf), &len, &info), 0);
	return info.expires;
}

/* Set keys "k<from>".."k<to - 1>" in that order, each to v, or to its own
 * name if v is NULL; every set must succeed. */
static inline void ut_set_k(ucache_t *c, int from, int to, const char *v, uint64_t expires)
{
	char k[16];
	int i, rc;

	for (i = from; i < to; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		rc = ut_set(c, k, v ? v : k, expires, 0);
		if (rc)
			fail_msg("set %s: rc %d", k, rc);
	}
}

/* Keys "k<from>".."k<to - 1>" must each hold their own name. */
static inline void ut_expect_k(ucache_t *c, int from, int to)
{
	char k[16];
	int i;

	for (i = from; i < to; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		ut_expect(c, k, k);
	}
}

/* -------------------------------------------------------------- processes */

/* Zeroed memory shared with forked children (freed with munmap). */
static inline void *ut_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fail_msg("mmap of %zu shared bytes: %s", size, strerror(errno));
	return p;
}

#define UT_CHILDREN_MAX 64

struct ut_children {
	int n;
	pid_t pid[UT_CHILDREN_MAX];
};

static inline struct ut_children *ut_children(void)
{
	static struct ut_children ch;

	return &ch;
}

/* fork(), recording the child in the parent (the child's list is empty). */
static inline pid_t ut_fork(void)
{
	struct ut_children *ch = ut_children();
	pid_t pid;

	assert_true(ch->n < UT_CHILDREN_MAX);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		ch->n = 0;
	else
		ch->pid[ch->n++] = pid;
	return pid;
}

static inline void ut_forget_child(pid_t pid)
{
	struct ut_children *ch = ut_children();
	int i;

	for (i = 0; i < ch->n; i++)
		if (ch->pid[i] == pid)
			ch->pid[i] = ch->pid[--ch->n];
}

/* Kill and reap the children a (failed) test left behind. */
static inline void ut_reap_children(void)
{
	struct ut_children *ch = ut_children();

	while (ch->n > 0) {
		pid_t pid = ch->pid[--ch->n];
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* Wait for pid: its exit status, or 1000 + signal number if killed. */
static inline int ut_wait_exit(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	ut_forget_child(pid);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : -1;
}

/* SIGKILL pid and reap it: ut_wait_exit()'s result, 1000 + SIGKILL if it
 * was still running. */
static inline int ut_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	return ut_wait_exit(pid);
}

static inline uint64_t ut_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Busy-wait (no sleep) for ns nanoseconds: a random delay, not a sync. */
static inline void ut_spin_ns(uint64_t ns)
{
	uint64_t end = ut_now_ns() + ns;

	while (ut_now_ns() < end)
		;
}

/* Resident set size of this process, from /proc/self/statm. */
static inline uint64_t ut_rss_bytes(void)
{
	unsigned long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%llu %llu", &size, &resident), 2);
	fclose(f);
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* xorshift64*: deterministic pseudo-random numbers for tests. */
static inline uint64_t ut_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* --------------------------------------------------------------- fixtures */

/* Per-test setup: engine logs captured, fake clock at UT_T0. */
static inline int ut_setup(void **state)
{
	(void)state;
	ut_log_capture();
	ut_clock_set(UT_T0);
	return 0;
}

/* Per-test setup for tests that need real time: logs captured. */
static inline int ut_setup_real_clock(void **state)
{
	(void)state;
	ut_log_capture();
	ut_clock_real();
	return 0;
}

/* Per-test teardown: kill what a failed test left running, destroy the
 * caches it left, stop capturing logs, back to the real clock. */
static inline int ut_teardown(void **state)
{
	(void)state;
	ut_reap_children();
	ut_destroy_all();
	ucache_set_logger(NULL, NULL);
	ut_clock_real();
	return 0;
}

#endif
