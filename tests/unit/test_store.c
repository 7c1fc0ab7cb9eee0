/*
 * test_store.c - persistence (store=): reopen keeps items, clean and
 * unclean shutdown, geometry mismatch / store_delete / store_migrate,
 * damaged files (truncated, zero-filled, bit-flipped, foreign), LRU order
 * and capacity after a restore, and a writer SIGKILLed mid-write whose
 * store is then recovered.  Regression tests carry the stock bug's name.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "ucache_test.h"

static char path[256];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/ucache-test-store-%d.db", (int)getpid());
	unlink(path);
	return ut_setup_real_clock(state);
}

static int teardown(void **state)
{
	char tmp[300];

	unlink(path);
	snprintf(tmp, sizeof(tmp), "%s.migrate", path);
	unlink(tmp);
	return ut_teardown(state);
}

/* Create from keyval + ",store=<path>"; NULL allowed (err gets the reason). */
static ucache_t *open_store(const char *keyval, char *err, size_t errlen)
{
	struct ucache_config cfg;
	char kv[512];
	ucache_t *c;

	snprintf(kv, sizeof(kv), "%s,store=%s", keyval, path);
	assert_int_equal(ucache_config_parse(&cfg, kv, err, errlen), 0);
	c = ucache_create(&cfg, err, errlen);
	ucache_config_free(&cfg);
	return c;
}

static ucache_t *must_open(const char *keyval)
{
	char err[1024];
	ucache_t *c = open_store(keyval, err, sizeof(err));

	if (!c)
		fail_msg("open store: %s", err);
	return c;
}

/* Key and value number i of fill() (32 and 64 bytes). */
static void fill_item(int i, char *k, char *v)
{
	snprintf(k, 32, "key-%d", i);
	snprintf(v, 64, "value-of-key-%d", i);
}

static void fill(ucache_t *c, int n)
{
	char k[32], v[64];
	int i;

	for (i = 0; i < n; i++) {
		fill_item(i, k, v);
		assert_int_equal(ut_set(c, k, v, 0, UCACHE_SET_UPDATE), 0);
	}
}

static void expect_filled(ucache_t *c, int n)
{
	char k[32], v[64];
	int i;

	for (i = 0; i < n; i++) {
		fill_item(i, k, v);
		ut_expect(c, k, v);
	}
}

static void reopen_keeps_items_clean_and_unclean(void **state)
{
	ucache_t *c = must_open("name=s,items=100,blocksize=128");

	(void)state;
	fill(c, 50);
	ucache_destroy(c); /* like a crash: no clean flag */
	c = must_open("name=s,items=100,blocksize=128");
	expect_filled(c, 50);
	assert_true(ut_log_count("restored 50 items, dropped 0 (unclean shutdown)") == 1);
	ut_check(c);
	ucache_close(c);
	c = must_open("name=s,items=100,blocksize=128");
	assert_true(ut_log_count("restored 50 items, dropped 0 (clean shutdown)") == 1);
	expect_filled(c, 50);
	ucache_close(c);
}

/* Two instances on one store would rebuild under each other's feet: the
 * second is refused while the first (or a process it forked) holds it. */
static void store_in_use_is_refused(void **state)
{
	ucache_t *c = must_open("name=s,items=10,blocksize=64");
	char err[1024] = "";

	(void)state;
	setenv("UCACHE_STORE_LOCK_WAIT_MS", "200", 1);
	assert_null(open_store("name=s,items=10,blocksize=64", err, sizeof(err)));
	unsetenv("UCACHE_STORE_LOCK_WAIT_MS");
	assert_non_null(strstr(err, "in use by another running instance"));
	ucache_destroy(c);
	c = must_open("name=s,items=10,blocksize=64");
	ucache_close(c);
}

/* Workers killed along with their master hold the store for a moment:
 * a new instance waits for them instead of refusing at once. */
static void store_waits_for_the_last_holder_to_exit(void **state)
{
	int *ready = ut_shared(sizeof(int));
	pid_t pid = fork();
	ucache_t *c;

	(void)state;
	if (pid == 0) {
		char err[512];
		ucache_t *mine = open_store("name=s,items=10,blocksize=64", err, sizeof(err));
		__atomic_store_n(ready, mine ? 1 : 2, __ATOMIC_RELEASE);
		ut_spin_ns(300 * 1000 * 1000ull); /* then exit, releasing the store */
		_exit(0);
	}
	while (!__atomic_load_n(ready, __ATOMIC_ACQUIRE))
		;
	assert_int_equal(*ready, 1);
	c = must_open("name=s,items=10,blocksize=64");
	assert_true(ut_log_count("held by another process; waiting") >= 1);
	ut_wait_exit(pid);
	ucache_close(c);
}

static void geometry_mismatch_refuses_naming_both(void **state)
{
	char err[1024] = "";
	ucache_t *c = must_open("name=s,items=100,blocksize=128");

	(void)state;
	ucache_close(c);
	c = open_store("name=s,items=200,blocksize=128", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "items=100"));
	assert_non_null(strstr(err, "items=200"));
	assert_non_null(strstr(err, "store_delete"));
}

/* A store an earlier ucache wrote (layout 6: 32-byte slots) is refused
 * with the versions and the way out named, and store_delete recreates it. */
static void older_layout_refused_naming_store_delete(void **state)
{
	char err[1024] = "";
	uint32_t v6 = 6;
	ucache_t *c = must_open("name=s,items=100,blocksize=128");
	int fd;

	(void)state;
	fill(c, 10);
	ucache_close(c);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v6, sizeof(v6), 8), sizeof(v6)); /* uc_hdr.version, after the magic */
	close(fd);
	c = open_store("name=s,items=100,blocksize=128", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "has layout version 6, this ucache writes 7"));
	assert_non_null(strstr(err, "store_delete"));
	c = must_open("name=s,items=100,blocksize=128,store_delete=1");
	assert_int_equal(ucache_items(c), 0);
	ucache_close(c);
}

static void store_delete_recreates(void **state)
{
	ucache_t *c = must_open("name=s,items=100,blocksize=128");

	(void)state;
	fill(c, 10);
	ucache_close(c);
	c = must_open("name=s,items=50,blocksize=128,store_delete=1");
	assert_int_equal(ucache_items(c), 0);
	ucache_close(c);
	c = must_open("name=s,items=50,blocksize=128"); /* now the new geometry */
	ucache_close(c);
}

static void store_migrate_imports_valid_items(void **state)
{
	ucache_t *c = must_open("name=s,items=100,blocksize=128");
	struct stat st;
	char tmp[300];

	(void)state;
	fill(c, 60);
	ucache_close(c);
	c = must_open("name=s,items=200,blocksize=256,keysize=64,store_migrate=1");
	expect_filled(c, 60);
	assert_true(ut_log_count("imported 60 items") == 1);
	ut_check(c);
	ucache_close(c);
	snprintf(tmp, sizeof(tmp), "%s.migrate", path);
	assert_int_equal(stat(tmp, &st), -1); /* renamed over the store */
	c = must_open("name=s,items=200,blocksize=256,keysize=64");
	expect_filled(c, 60);
	ucache_close(c);
}

static void write_file(const void *data, size_t len, off_t at, int truncate_first, off_t truncate_to)
{
	int fd = open(path, O_RDWR | O_CREAT, 0600);

	assert_true(fd >= 0);
	if (truncate_first)
		assert_int_equal(ftruncate(fd, truncate_to), 0);
	if (len)
		assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
	close(fd);
}

static void expect_refused(const char *what)
{
	char err[1024] = "";
	ucache_t *c = open_store("name=s,items=100,blocksize=128", err, sizeof(err));

	assert_null(c);
	if (!strstr(err, what))
		fail_msg("expected \"%s\" in: %s", what, err);
	assert_non_null(strstr(err, path));
}

static void damaged_files_are_refused_clearly(void **state)
{
	static char zeros[8192], text[] = "this is somebody else's file\n";

	(void)state;
	write_file(text, sizeof(text), 0, 1, 0);
	expect_refused("not a ucache store");
	write_file(zeros, sizeof(zeros), 0, 1, 0);
	expect_refused("not a ucache store");
	write_file("UCA", 3, 0, 1, 0);
	expect_refused("truncated");
}

static void truncated_store_recovers_what_remains(void **state)
{
	ucache_t *c = must_open("name=s,items=100,blocksize=128");
	struct stat st;

	(void)state;
	fill(c, 50);
	ucache_close(c);
	assert_int_equal(stat(path, &st), 0);
	/* cut the value region in half: the header and slots survive */
	write_file(NULL, 0, 0, 1, st.st_size - 100 * 128 / 2);
	c = must_open("name=s,items=100,blocksize=128");
	ut_check(c);
	assert_int_equal(ucache_items(c), 50); /* values are packed: all in the first pages */
	expect_filled(c, 50);
	ucache_close(c);
}

static void bit_flipped_value_is_dropped_not_served(void **state)
{
	ucache_t *c = must_open("name=s,items=100,blocksize=128,keysize=32");
	const char *v = "value-of-key-7";
	char buf[256];
	size_t len;
	int fd;
	off_t off;

	(void)state;
	fill(c, 20);
	ucache_close(c);
	/* find the value bytes of key-7 in the file and flip one bit */
	fd = open(path, O_RDWR);
	for (off = 0;; off++) {
		assert_int_equal(pread(fd, buf, strlen(v), off), (ssize_t)strlen(v));
		if (!memcmp(buf, v, strlen(v)))
			break;
	}
	buf[3] ^= 0x04;
	assert_int_equal(pwrite(fd, buf, 1 + 3, off), 4);
	close(fd);
	c = must_open("name=s,items=100,blocksize=128,keysize=32");
	assert_true(ut_log_count("restored 19 items, dropped 1") == 1);
	assert_int_equal(ut_get(c, "key-7", buf, sizeof(buf), &len), -ENOENT);
	ut_expect(c, "key-8", "value-of-key-8");
	ut_check(c);
	ucache_close(c);
}

/* uWSGI PR #2578: the LRU order was lost when a store was reloaded. */
static void pr2578_lru_order_restored_from_store(void **state)
{
	ucache_t *c = must_open("name=s,items=4,blocksize=64,purge_lru=1,ignore_full=1");
	char buf[64];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "a", "1", 0, 0), 0);
	assert_int_equal(ut_set(c, "b", "2", 0, 0), 0);
	assert_int_equal(ut_set(c, "c", "3", 0, 0), 0);
	assert_int_equal(ut_get(c, "a", buf, sizeof(buf), &len), 0);
	ucache_close(c);
	c = must_open("name=s,items=4,blocksize=64,purge_lru=1,ignore_full=1");
	assert_int_equal(ut_set(c, "d", "4", 0, 0), 0); /* evicts b, the least recently used */
	ut_expect_missing(c, "b");
	ut_expect(c, "a", "1");
	ut_expect(c, "c", "3");
	ut_expect(c, "d", "4");
	ucache_close(c);
}

/* uWSGI #1168: after restoring a store the cache claimed to be full. */
static void issue1168_not_full_after_restore(void **state)
{
	ucache_t *c = must_open("name=s,items=11,blocksize=64");
	char k[16];
	int i;

	(void)state;
	fill(c, 5);
	assert_int_equal(ucache_del(c, "key-0", 5), 0);
	ucache_destroy(c);
	c = must_open("name=s,items=11,blocksize=64");
	for (i = 0; i < 6; i++) { /* 4 restored + 6 = 10 = items - 1 */
		snprintf(k, sizeof(k), "new-%d", i);
		assert_int_equal(ut_set(c, k, "x", 0, 0), 0);
	}
	assert_int_equal(ut_set(c, "one-too-many", "x", 0, 0), -ENOSPC);
	ut_check(c);
	ucache_close(c);
}

/* uWSGI #1003: a stale value came back after a restart with store_sync. */
static void issue1003_no_stale_value_after_restart(void **state)
{
	ucache_t *c = must_open("name=s,items=10,blocksize=64,store_sync=1");

	(void)state;
	assert_int_equal(ut_set(c, "k", "old", 0, 0), 0);
	assert_int_equal(ucache_msync(c, 1), 0);
	assert_int_equal(ut_set(c, "k", "new", 0, UCACHE_SET_UPDATE), 0);
	ucache_destroy(c); /* killed before the next sync */
	c = must_open("name=s,items=10,blocksize=64,store_sync=1");
	ut_expect(c, "k", "new");
	ucache_close(c);
}

/* A child owns the store and writes; it is SIGKILLed at a random point;
 * reopening must restore only intact items, each holding its own value. */
static void killed_writer_store_recovers(void **state)
{
	uint64_t seed = 7, *progress = ut_shared(sizeof(uint64_t));
	int round;

	(void)state;
	for (round = 0; round < 30; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			char err[512], k[32], v[200];
			ucache_t *c = open_store("name=s,items=200,blocksize=256", err, sizeof(err));
			uint64_t x = (uint64_t)getpid();
			if (!c)
				_exit(3);
			for (;;) {
				int n = (int)(ut_rand(&x) % 300);
				snprintf(k, sizeof(k), "k%d", n);
				memset(v, 'a' + n % 26, sizeof(v));
				snprintf(v, sizeof(v), "%s:", k);
				ucache_set(c, k, strlen(k), v, 20 + (size_t)n % 180, 0, UCACHE_SET_UPDATE);
				if (n % 7 == 0)
					ucache_del(c, k, strlen(k));
				__atomic_add_fetch(progress, 1, __ATOMIC_RELAXED);
			}
		}
		while (__atomic_load_n(progress, __ATOMIC_RELAXED) < 200 + ut_rand(&seed) % 2000)
			;
		ut_kill(pid);
		*progress = 0;
		ucache_t *c = must_open("name=s,items=200,blocksize=256");
		ut_check(c);
		for (int n = 0; n < 300; n++) {
			char k[32], buf[256], want[32];
			size_t len;
			snprintf(k, sizeof(k), "k%d", n);
			if (ut_get(c, k, buf, sizeof(buf), &len) == 0) {
				snprintf(want, sizeof(want), "%s:", k);
				assert_int_equal(len, 20 + (size_t)n % 180);
				assert_memory_equal(buf, want, strlen(want));
			}
		}
		ucache_destroy(c);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(reopen_keeps_items_clean_and_unclean),
		T(store_in_use_is_refused),
		T(store_waits_for_the_last_holder_to_exit),
		T(geometry_mismatch_refuses_naming_both),
		T(older_layout_refused_naming_store_delete),
		T(store_delete_recreates),
		T(store_migrate_imports_valid_items),
		T(damaged_files_are_refused_clearly),
		T(truncated_store_recovers_what_remains),
		T(bit_flipped_value_is_dropped_not_served),
		T(pr2578_lru_order_restored_from_store),
		T(issue1168_not_full_after_restore),
		T(issue1003_no_stale_value_after_restart),
		T(killed_writer_store_recovers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
