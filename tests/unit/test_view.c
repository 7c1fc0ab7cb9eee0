/*
 * test_view.c - read-only views of a store (core/view.c): what a process
 * outside the cache (an nginx worker) reads through the file, mapped
 * PROT_READ: hits with the envelope removed, misses with their reason
 * (absent, expired, invalidated), BUSY in bounded time over a stripe a
 * writer died inside, NOBUFS, files refused at open (garbage, truncated,
 * foreign, empty, missing), a store replaced under a view, bitmap mode, and
 * a view that never writes (its mapping is read-only; counters unchanged).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "layout.h"
#include "ucache_test.h"

static char path[256], other[300];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/ucache-test-view-%d.db", (int)getpid());
	snprintf(other, sizeof(other), "%s.copy", path);
	unlink(path);
	unlink(other);
	return ut_setup(state);
}

static int teardown(void **state)
{
	unlink(path);
	unlink(other);
	return ut_teardown(state);
}

#define GEOM "name=v,items=100,blocksize=256,keysize=64"
#define GEOM_BITMAP "name=vb,items=100,blocks=400,blocksize=64,bitmap=1,keysize=64"

/* A cache on the store at path (keyval + ",store=path"). */
static ucache_t *store_cache(const char *keyval)
{
	char kv[512];

	snprintf(kv, sizeof(kv), "%s,store=%s", keyval, path);
	return ut_cache(kv);
}

static ucache_view_t *must_view(const char *file)
{
	char err[1024] = "";
	ucache_view_t *v = ucache_view_open(file, err, sizeof(err));

	if (!v)
		fail_msg("view %s: %s", file, err);
	return v;
}

/* ucache_view_open must refuse file, with an error containing want. */
static void expect_refused(const char *file, const char *want)
{
	char err[1024] = "";

	assert_null(ucache_view_open(file, err, sizeof(err)));
	if (!strstr(err, want) || !strstr(err, file))
		fail_msg("error \"%s\" does not say \"%s\" about %s", err, want, file);
}

static int vget(ucache_view_t *v, const char *k, char *buf, size_t buflen, size_t *len)
{
	return ucache_view_get(v, k, strlen(k), buf, buflen, len, NULL);
}

/* Key k reads as exactly want through the view. */
static void expect_hit(ucache_view_t *v, const char *k, const char *want)
{
	char buf[512];
	size_t len = 0;

	assert_int_equal(vget(v, k, buf, sizeof(buf), &len), UCACHE_VIEW_HIT);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
}

static void hit_and_miss(const char *geom)
{
	ucache_t *c = store_cache(geom);
	struct ucache_item_info info = { 0, 0 };
	ucache_view_t *v;
	char buf[64], big[80];
	size_t len = 0;

	assert_int_equal(ut_set(c, "page", "<html>hello</html>", 0, 0), 0);
	assert_int_equal(ut_set(c, "timed", "soon gone", 100, 0), 0);
	v = must_view(path);
	expect_hit(v, "page", "<html>hello</html>");
	assert_int_equal(ucache_view_get(v, "timed", 5, buf, sizeof(buf), &len, &info), UCACHE_VIEW_HIT);
	assert_int_equal(info.expires, UT_T0 + 100);
	assert_int_equal(vget(v, "absent", buf, sizeof(buf), &len), UCACHE_VIEW_MISS);
	memset(big, 'k', sizeof(big)); /* longer than keysize: no item can have it */
	assert_int_equal(ucache_view_get(v, big, sizeof(big), buf, sizeof(buf), &len, NULL), UCACHE_VIEW_MISS);
	assert_int_equal(ucache_view_get(v, "", 0, buf, sizeof(buf), &len, NULL), UCACHE_VIEW_MISS);
	/* writes made after the view opened are seen at once (MAP_SHARED) */
	assert_int_equal(ut_set(c, "later", "written after open", 0, 0), 0);
	expect_hit(v, "later", "written after open");
	assert_int_equal(ucache_del(c, "page", 4), 0);
	assert_int_equal(vget(v, "page", buf, sizeof(buf), &len), UCACHE_VIEW_MISS);
	/* NOBUFS: the size needed, nothing else */
	len = 0;
	assert_int_equal(vget(v, "later", buf, 3, &len), UCACHE_VIEW_NOBUFS);
	assert_int_equal(len, strlen("written after open"));
	assert_int_equal(ucache_view_get(v, "later", 5, NULL, 0, &len, NULL), UCACHE_VIEW_NOBUFS);
	/* expired: the key is there, past its expiry */
	ut_clock_advance(101);
	assert_int_equal(vget(v, "timed", buf, sizeof(buf), &len), UCACHE_VIEW_EXPIRED);
	ucache_view_close(v);
	ut_destroy(c);
}

static void view_hit_miss_nobufs_expired(void **state)
{
	(void)state;
	hit_and_miss(GEOM);
}

static void view_bitmap_mode(void **state)
{
	(void)state;
	hit_and_miss(GEOM_BITMAP);
}

/* Store k = payload tagged with tag, rendered from since. */
static void set_tagged(ucache_t *c, const char *k, const char *tag, uint64_t since, const char *payload)
{
	const void *tv[1] = { tag };
	size_t tl[1] = { strlen(tag) };
	char buf[512];
	long hlen = ucache_tags_head(c, since, tv, tl, 1, buf, sizeof(buf));

	assert_true(hlen > 0);
	memcpy(buf + hlen, payload, strlen(payload));
	assert_int_equal(ucache_set(c, k, strlen(k), buf, (size_t)hlen + strlen(payload), 0, UCACHE_SET_UPDATE), 0);
}

/* The tag table is in the store file: an invalidation made through the
 * cache's own handle is honoured by the view's next read; a fresh tagged
 * entry is a hit with its envelope removed. */
static void view_honours_tag_invalidation(void **state)
{
	ucache_t *c = store_cache(GEOM);
	ucache_view_t *v;
	char buf[64];
	size_t len;

	(void)state;
	set_tagged(c, "page", "user:1", ucache_tags_now(c), "<p>one</p>");
	set_tagged(c, "other", "user:2", ucache_tags_now(c), "<p>two</p>");
	v = must_view(path);
	expect_hit(v, "page", "<p>one</p>");
	assert_int_equal(ucache_invalidate_tag(c, "user:1", 6), 0);
	assert_int_equal(vget(v, "page", buf, sizeof(buf), &len), UCACHE_VIEW_INVALIDATED);
	expect_hit(v, "other", "<p>two</p>");
	/* re-rendered after the invalidation: fresh again */
	set_tagged(c, "page", "user:1", ucache_tags_now(c), "<p>one, again</p>");
	expect_hit(v, "page", "<p>one, again</p>");
	ucache_view_close(v);
	ut_destroy(c);
}

/* A reopened store's table is cleared with its new epoch: the old
 * entries are stale (another epoch), and the generations the previous
 * instance raised do not make the new instance's entries stale (the
 * invalidation clock starts at 1 again: a table kept from the file would
 * have judged every new entry of an invalidated tag stale). */
static void test_bug_reopened_store_keeps_old_generations(void **state)
{
	ucache_t *c = store_cache(GEOM);
	ucache_view_t *v;
	char buf[64];
	size_t len;
	int i;

	(void)state;
	set_tagged(c, "old", "t", ucache_tags_now(c), "before the restart");
	for (i = 0; i < 5; i++)
		assert_int_equal(ucache_invalidate_tag(c, "t", 1), 0);
	ut_destroy(c); /* an unclean stop; a clean one clears nothing more */
	c = store_cache(GEOM);
	v = must_view(path);
	assert_int_equal(vget(v, "old", buf, sizeof(buf), &len), UCACHE_VIEW_INVALIDATED);
	set_tagged(c, "new", "t", ucache_tags_now(c), "after the restart");
	ut_expect(c, "new", "after the restart");
	expect_hit(v, "new", "after the restart");
	ucache_view_close(v);
	ut_destroy(c);
}

/* The tag table moved into the store file without changing the address
 * space: a store maps what the same cache without one maps (region +
 * table), which stays within stock's (--limit-as). */
static void store_maps_what_an_anonymous_cache_maps(void **state)
{
	static const char *geoms[] = { "name=a,items=10,blocksize=10", GEOM, GEOM_BITMAP,
				       "name=b,items=1000,blocksize=65536",
				       "name=c,items=100000,blocksize=100,hashsize=1024" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(geoms) / sizeof(geoms[0]); i++) {
		ucache_t *anon = ut_cache(geoms[i]), *c = store_cache(geoms[i]);
		struct ucache_stats a = ut_stats(anon), s = ut_stats(c);
		struct stat st;
		if (a.mapped_bytes != s.mapped_bytes || s.mapped_bytes > s.stock_mapped_bytes)
			fail_msg("%s: store maps %llu, anonymous %llu, stock %llu", geoms[i],
				 (unsigned long long)s.mapped_bytes, (unsigned long long)a.mapped_bytes,
				 (unsigned long long)s.stock_mapped_bytes);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal((uint64_t)st.st_size, s.mapped_bytes); /* the file is the whole mapping */
		ut_destroy(c);
		ut_destroy(anon);
		unlink(path);
	}
}

#define GEOM_BIG "name=v,items=1000,blocksize=4096,keysize=64"
#define GEOM_SMALL "name=v,items=10,blocksize=64,keysize=64,store_delete=1"
#define NBIG 900 /* of 999 usable items */

static void big_item(int i, char *k, char *val)
{
	snprintf(k, 32, "key-%d", i);
	memset(val, 'a' + i % 26, 3000);
	snprintf(val, 3000, "value-%d", i);
	val[strlen(val)] = '.';
}

/* Child: every item of fill_big() reads back whole through v; exit 0. */
static int read_big(ucache_view_t *v)
{
	static char k[32], want[3000], got[4096];
	size_t len;
	int i;

	for (i = 0; i < NBIG; i++) {
		big_item(i, k, want);
		if (vget(v, k, got, sizeof(got), &len) != UCACHE_VIEW_HIT || len != 3000 || memcmp(got, want, len))
			return 1;
	}
	return 0;
}

/* ucache_view_replaced() after the store was recreated by a geometry
 * change (store_delete): 1, and the old view still reads everything the
 * old file held.  The store used to be truncated in place and resized:
 * the old view read zeroed pages (every item a miss: this test's failure
 * before the fix) and, past the new, smaller size, SIGBUS. */
static void test_bug_store_delete_shrank_a_mapped_store(void **state)
{
	ucache_t *c = store_cache(GEOM_BIG);
	char k[32], val[3000];
	ucache_view_t *v, *nv;
	pid_t pid;
	int i;

	(void)state;
	for (i = 0; i < NBIG; i++) {
		big_item(i, k, val);
		assert_int_equal(ucache_set(c, k, strlen(k), val, sizeof(val), 0, 0), 0);
	}
	v = must_view(path);
	assert_int_equal(ucache_view_replaced(v), 0);
	ut_destroy(c);
	c = store_cache(GEOM_SMALL);
	assert_true(ut_log_count("recreating it (store_delete)") == 1);
	pid = ut_fork();
	if (pid == 0)
		_exit(read_big(v));
	assert_int_equal(ut_wait_exit(pid), 0); /* not SIGBUS (1007), every item whole */
	assert_int_equal(ucache_view_replaced(v), 1);
	nv = must_view(path);
	assert_int_equal(ucache_view_replaced(nv), 0);
	assert_int_equal(vget(nv, "key-1", val, sizeof(val), NULL), UCACHE_VIEW_MISS);
	assert_int_equal(ut_set(c, "k", "in the new file", 0, 0), 0);
	expect_hit(nv, "k", "in the new file");
	assert_int_equal(vget(v, "k", val, sizeof(val), NULL), UCACHE_VIEW_MISS); /* the old file is nobody's now */
	ucache_view_close(nv);
	ucache_view_close(v);
	ut_destroy(c);
}

/* replaced(): a migration (another inode) and a removed file are 1; a
 * restart over the same file is 0 (the same inode: the view follows it). */
static void view_replaced_cases(void **state)
{
	ucache_t *c = store_cache(GEOM);
	ucache_view_t *v;

	(void)state;
	assert_int_equal(ut_set(c, "k", "v1", 0, 0), 0);
	v = must_view(path);
	ut_destroy(c);
	c = store_cache(GEOM); /* restarted over the same file */
	assert_int_equal(ucache_view_replaced(v), 0);
	assert_int_equal(ut_set(c, "k", "v2", 0, UCACHE_SET_UPDATE), 0);
	expect_hit(v, "k", "v2");
	ut_destroy(c);
	c = store_cache("name=v,items=200,blocksize=256,keysize=64,store_migrate=1");
	assert_true(ut_log_count("store_migrate imported 1 items") == 1);
	assert_int_equal(ucache_view_replaced(v), 1);
	expect_hit(v, "k", "v2"); /* the old inode, whole */
	ucache_view_close(v);
	v = must_view(path);
	expect_hit(v, "k", "v2"); /* migrated */
	ut_destroy(c);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ucache_view_replaced(v), 1);
	ucache_view_close(v);
}

static void note_wait(enum ucache_log_level level, const char *msg, void *ud)
{
	(void)level;
	if (strstr(msg, "waiting up to"))
		__atomic_store_n((int *)ud, 1, __ATOMIC_RELAXED);
}

/* A second instance waiting for the store's lock, whose file is replaced
 * meanwhile (a migration renamed a new one over it), opens the new file:
 * it used to win the lock on the old, unlinked inode and run on it. */
static void test_bug_lock_won_on_a_replaced_store(void **state)
{
	int *flags = ut_shared(2 * sizeof(int)); /* [0]: a is open, [1]: the child waits */
	char kv[512];
	ucache_t *a, *b;
	pid_t pid;
	int i;

	(void)state;
	snprintf(kv, sizeof(kv), "%s,store=%s", GEOM, path);
	pid = ut_fork(); /* before a: a child would inherit a's descriptor, and its lock */
	if (pid == 0) {
		struct ucache_config cfg;
		char err[512] = "";
		while (!__atomic_load_n(&flags[0], __ATOMIC_ACQUIRE))
			usleep(1000);
		ucache_set_logger(note_wait, &flags[1]);
		setenv("UCACHE_STORE_LOCK_WAIT_MS", "10000", 1);
		if (ucache_config_parse(&cfg, kv, err, sizeof(err)) || !(b = ucache_create(&cfg, err, sizeof(err)))) {
			fprintf(stderr, "child: %s\n", err);
			_exit(2);
		}
		_exit(ut_get(b, "where", kv, sizeof(kv), NULL) == 0 ? 0 : 1);
	}
	a = ut_cache(kv);
	__atomic_store_n(&flags[0], 1, __ATOMIC_RELEASE);
	for (i = 0; i < 10000 && !__atomic_load_n(&flags[1], __ATOMIC_RELAXED); i++)
		usleep(1000); /* poll: the child logs once it waits */
	assert_true(__atomic_load_n(&flags[1], __ATOMIC_RELAXED));
	/* another file renamed over the name while the child waits for a's lock */
	snprintf(kv, sizeof(kv), "%s,store=%s", GEOM, other);
	b = ut_cache(kv);
	assert_int_equal(ut_set(b, "where", "the new file", 0, 0), 0);
	ut_destroy(b);
	assert_int_equal(rename(other, path), 0);
	ut_destroy(a); /* the old file's lock goes */
	assert_int_equal(ut_wait_exit(pid), 0);
}

/* Value number n of the writer below: its length and every byte say n. */
static size_t pattern(unsigned n, char *buf)
{
	size_t len = 1000 + (n % 26) * 100;

	memset(buf, 'a' + (int)(n % 26), len);
	return len;
}

/* A hit is whole: one of the writer's values, never a mix. */
static void expect_whole(const char *buf, size_t len)
{
	char want[4000];

	assert_true(len >= 1000 && len < 1000 + 26 * 100);
	assert_int_equal(pattern((unsigned)(buf[0] - 'a'), want), len);
	assert_memory_equal(buf, want, len);
}

/* A writer rewriting the key nginx reads, then SIGKILLed wherever it is:
 * every read is a whole value (old or new), a miss or BUSY, never a torn
 * one, and the reads go on after the kill. */
static void view_never_torn_by_a_writer_killed_midway(void **state)
{
	ucache_t *c = store_cache("name=v,items=64,blocksize=4096,keysize=16");
	static char buf[4096];
	int hits = 0, busy = 0, i, round;
	ucache_view_t *v;
	size_t len;
	pid_t pid;

	(void)state;
	len = pattern(0, buf);
	assert_int_equal(ucache_set(c, "k", 1, buf, len, 0, 0), 0);
	v = must_view(path);
	for (round = 0; round < 3; round++) {
		pid = ut_fork();
		if (pid == 0) {
			char val[4096];
			for (unsigned n = 1;; n++) {
				size_t l = pattern(n, val);
				ucache_set(c, "k", 1, val, l, 0, UCACHE_SET_UPDATE);
			}
		}
		for (i = 0; i < 20000; i++) {
			int rc = ucache_view_get(v, "k", 1, buf, sizeof(buf), &len, NULL);
			if (rc == UCACHE_VIEW_HIT) {
				expect_whole(buf, len);
				hits++;
			}
			busy += rc == UCACHE_VIEW_BUSY;
			assert_true(rc == UCACHE_VIEW_HIT || rc == UCACHE_VIEW_BUSY || rc == UCACHE_VIEW_MISS);
			if (i == 10000)
				ut_kill(pid);
		}
		(void)ut_get(c, "k", buf, sizeof(buf), &len); /* the cache's own read repairs a dead writer's stripe */
		if (ucache_view_get(v, "k", 1, buf, sizeof(buf), &len, NULL) == UCACHE_VIEW_HIT)
			expect_whole(buf, len);
	}
	print_message("    %d whole hits, %d busy\n", hits, busy);
	assert_true(hits > 0);
	ucache_view_close(v);
	ut_destroy(c);
}

/* Every stripe's seq odd (1) or even (0), as the file holds it. */
static void set_seqs(int odd)
{
	int fd = open(path, O_RDWR);
	struct uc_hdr h;
	uint32_t seq;
	uint64_t i;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &h, sizeof(h), 0), sizeof(h));
	for (i = 0; i < h.nstripes; i++) { /* every stripe, so the key's is one of them */
		off_t at = (off_t)(h.off_stripes + i * sizeof(struct uc_stripe) + offsetof(struct uc_stripe, seq));
		assert_int_equal(pread(fd, &seq, 4, at), 4);
		seq = odd ? seq | 1 : (seq + 1) & ~1u;
		assert_int_equal(pwrite(fd, &seq, 4, at), 4);
	}
	close(fd);
}

/* A writer that died inside its seqlock window leaves the stripe's seq odd
 * (until the cache's next writer or reader repairs it under the lock the
 * dead writer held): the view, which takes no lock, answers BUSY in
 * bounded time, and hits again once the stripe is whole. */
static void view_busy_when_a_writer_died_inside(void **state)
{
	ucache_t *c = store_cache(GEOM);
	ucache_view_t *v;
	char buf[64];
	uint64_t t0;
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "k", "v", 0, 0), 0);
	v = must_view(path);
	set_seqs(1);
	t0 = ut_now_ns();
	assert_int_equal(vget(v, "k", buf, sizeof(buf), &len), UCACHE_VIEW_BUSY);
	assert_int_equal(vget(v, "absent", buf, sizeof(buf), &len), UCACHE_VIEW_BUSY);
	print_message("    BUSY twice in %llu us\n", (unsigned long long)((ut_now_ns() - t0) / 1000));
	set_seqs(0);
	expect_hit(v, "k", "v");
	ucache_view_close(v);
	ut_destroy(c);
}

/* The mapping's line in /proc/self/maps: its permissions must be "r--s". */
static void expect_mapped_read_only(const char *file, char *start_out)
{
	char line[1024], perms[8] = "", name[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo = 0;
		name[0] = 0;
		if (sscanf(line, "%lx-%*x %7s %*s %*s %*s %511s", &lo, perms, name) >= 2 && !strcmp(name, file)) {
			if (strcmp(perms, "r--s"))
				fail_msg("%s mapped %s, not r--s", file, perms);
			if (!found)
				memcpy(start_out, &lo, sizeof(lo));
			found++;
		}
	}
	fclose(f);
	assert_true(found >= 1);
}

/* The view can never change a byte: its mapping is PROT_READ and shared
 * (a write through it is SIGSEGV), and reads leave the item's hit counter
 * and the cache's hits and misses as they were. */
static void view_never_writes(void **state)
{
	ucache_t *c = store_cache(GEOM);
	struct ucache_item_info info;
	struct ucache_stats before, after;
	ucache_view_t *v;
	unsigned long at = 0;
	char buf[64];
	size_t len;
	pid_t pid;
	int i, st;

	(void)state;
	ut_close(c); /* the cache's own mapping of the file would be listed too */
	v = must_view(path);
	expect_mapped_read_only(path, (char *)&at);
	pid = ut_fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* cmocka's handler would catch it */
		*(volatile char *)at = 1;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	ut_forget_child(pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
	ucache_view_close(v);

	c = store_cache(GEOM);
	assert_int_equal(ut_set(c, "k", "v", 0, 0), 0);
	v = must_view(path);
	before = ut_stats(c);
	for (i = 0; i < 100; i++) {
		assert_int_equal(vget(v, "k", buf, sizeof(buf), &len), UCACHE_VIEW_HIT);
		assert_int_equal(vget(v, "absent", buf, sizeof(buf), &len), UCACHE_VIEW_MISS);
	}
	after = ut_stats(c);
	assert_int_equal(after.hits, before.hits);
	assert_int_equal(after.misses, before.misses);
	assert_int_equal(ucache_peek(c, "k", 1, buf, sizeof(buf), &len, &info), 0);
	assert_int_equal(info.hits, 0);
	ucache_view_close(v);
	ut_destroy(c);
}

/* Copy the first n bytes of path to other (n 0: the whole file). */
static void copy_store(size_t n)
{
	static char data[1 << 22];
	int in = open(path, O_RDONLY), out = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t got;

	assert_true(in >= 0 && out >= 0);
	got = read(in, data, sizeof(data));
	assert_true(got > 0 && got < (ssize_t)sizeof(data));
	assert_int_equal(write(out, data, n ? n : (size_t)got), n ? (ssize_t)n : got);
	close(in);
	close(out);
}

static void patch_other(off_t at, const void *bytes, size_t n)
{
	int fd = open(other, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, at), (ssize_t)n);
	close(fd);
}

/* Bad files are refused at open with one line naming the file and why. */
static void view_refuses_bad_files(void **state)
{
	ucache_t *c = store_cache(GEOM);
	static char junk[65536];
	uint64_t seed = 7, i, bogus = 12345;
	uint32_t version = 99;

	(void)state;
	assert_int_equal(ut_set(c, "k", "v", 0, 0), 0);
	expect_refused("/nonexistent/ucache.store", "No such file");
	copy_store(1);
	assert_int_equal(truncate(other, 0), 0);
	expect_refused(other, "is empty");
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (char)ut_rand(&seed);
	copy_store(0);
	patch_other(0, junk, sizeof(junk)); /* garbage: not even the magic */
	expect_refused(other, "bad magic");
	copy_store(0);
	patch_other(0, "STOCKCAC", 8); /* a foreign file: another magic */
	expect_refused(other, "not a ucache store");
	copy_store(0);
	patch_other(offsetof(struct uc_hdr, version), &version, 4);
	expect_refused(other, "layout version 99");
	copy_store(0);
	patch_other(offsetof(struct uc_hdr, off_slots), &bogus, 8); /* an offset the geometry does not plan */
	expect_refused(other, "damaged header");
	copy_store(100);
	expect_refused(other, "truncated");
	copy_store(8192); /* a whole header, not the whole region */
	expect_refused(other, "is truncated (8192 of");
	expect_refused("/tmp", "not a regular file");
	ut_destroy(c);
}

/* Mark the live slot of the 1-byte key DIRTY in the file, as a writer
 * killed while copying its value in place leaves it. */
static void mark_dirty_one_byte_key(void)
{
	int fd = open(path, O_RDWR);
	struct uc_slot s;
	struct uc_hdr h;
	uint64_t id;
	int marked = 0;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &h, sizeof(h), 0), sizeof(h));
	for (id = 1; id < h.items; id++) {
		off_t at = (off_t)(h.off_slots + id * sizeof(s));
		assert_int_equal(pread(fd, &s, sizeof(s), at), sizeof(s));
		if (uc_slot_state(&s) == UC_SLOT_LIVE && s.keylen == 1) {
			uint8_t meta = (uint8_t)(atomic_load(&s.meta) | UC_META_DIRTY);
			assert_int_equal(pwrite(fd, &meta, 1, at + (off_t)offsetof(struct uc_slot, meta)), 1);
			marked++;
		}
	}
	close(fd);
	assert_int_equal(marked, 1);
}

/* A value a dead writer was copying in place (DIRTY) behind an even seq:
 * what a restart shows between resetting the seqs and its rebuild dropping
 * the item.  The view used to serve its torn bytes as a hit; it answers
 * BUSY.  (The restart's rebuild now also runs inside a write window.) */
static void test_bug_view_served_a_dirty_value(void **state)
{
	ucache_t *c = store_cache(GEOM);
	ucache_view_t *v;
	char buf[64];
	size_t len;

	(void)state;
	assert_int_equal(ut_set(c, "k", "half-copied", 0, 0), 0);
	assert_int_equal(ut_set(c, "ok", "whole", 0, 0), 0);
	v = must_view(path);
	mark_dirty_one_byte_key();
	assert_int_equal(vget(v, "k", buf, sizeof(buf), &len), UCACHE_VIEW_BUSY);
	expect_hit(v, "ok", "whole");
	ut_destroy(c);
	c = store_cache(GEOM); /* the restart's rebuild drops it */
	assert_int_equal(vget(v, "k", buf, sizeof(buf), &len), UCACHE_VIEW_MISS);
	expect_hit(v, "ok", "whole");
	ucache_view_close(v);
	ut_destroy(c);
}

/* A store nobody holds that was not closed cleanly (its cache crashed; a
 * copy of a live store) is refused: after a machine crash its slots may
 * name value pages the disk never got, which only the cache's recovery
 * drops.  Held by a running cache, or closed cleanly, it opens. */
static void view_refuses_an_unproven_store(void **state)
{
	ucache_t *c = store_cache(GEOM);
	ucache_view_t *v;

	(void)state;
	assert_int_equal(ut_set(c, "k", "v", 0, 0), 0);
	copy_store(0); /* a copy of a live store: nobody holds the copy */
	expect_refused(other, "was not closed cleanly and no cache holds it");
	ut_destroy(c); /* a crash */
	expect_refused(path, "was not closed cleanly and no cache holds it");
	c = store_cache(GEOM); /* recovered, running */
	v = must_view(path);
	expect_hit(v, "k", "v");
	ucache_view_close(v);
	ut_close(c);
	v = must_view(path); /* stopped cleanly */
	expect_hit(v, "k", "v");
	ucache_view_close(v);
	c = store_cache(GEOM); /* the probe let the lock go: the cache starts */
	ut_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(view_hit_miss_nobufs_expired),
		T(view_bitmap_mode),
		T(view_busy_when_a_writer_died_inside),
		T(view_never_writes),
		T(view_refuses_bad_files),
		T(view_honours_tag_invalidation),
		T(test_bug_reopened_store_keeps_old_generations),
		T(store_maps_what_an_anonymous_cache_maps),
		T(test_bug_store_delete_shrank_a_mapped_store),
		T(view_replaced_cases),
		T(test_bug_lock_won_on_a_replaced_store),
		T(view_never_torn_by_a_writer_killed_midway),
		T(test_bug_view_served_a_dirty_value),
		T(view_refuses_an_unproven_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
