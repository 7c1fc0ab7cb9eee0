/*
 * test_tags.c - unit tests of tagged entries (core/tags.c and the read and
 * sweep paths that honour them, core/read.c, core/evict.c): an entry is
 * served until one of its tags is invalidated and never after, on every
 * read call; an invalidation between making the head and storing the value
 * is not lost; other entries are untouched; the sweep frees stale entries;
 * invalidation costs the same with 1 or 100k entries carrying the tag; a
 * forked process's invalidation is seen by its parent; bad input is refused.
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

/* Store key = envelope(tags, comma-separated) + payload. */
static int put_tagged(ucache_t *c, const char *key, const char *tags, const char *payload, uint64_t expires)
{
	const void *tv[UCACHE_TAGS_MAX];
	size_t tl[UCACHE_TAGS_MAX], n = 0;
	uint8_t *buf = malloc(UCACHE_TAG_HEAD_MAX + strlen(payload));
	const char *p = tags;
	long hlen;
	int rc;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		tv[n] = p;
		tl[n++] = l;
		p += l + (e ? 1 : 0);
	}
	assert_non_null(buf);
	hlen = ucache_tags_head(c, ucache_tags_now(c), tv, tl, n, buf, UCACHE_TAG_HEAD_MAX);
	assert_true(hlen > 0);
	memcpy(buf + hlen, payload, strlen(payload));
	rc = ucache_set(c, key, strlen(key), buf, (size_t)hlen + strlen(payload), expires, UCACHE_SET_UPDATE);
	free(buf);
	return rc;
}

static int inval(ucache_t *c, const char *tag)
{
	return ucache_invalidate_tag(c, tag, strlen(tag));
}

/* Every read call agrees that key is missing. */
static void expect_gone(ucache_t *c, const char *key)
{
	char buf[2048];
	size_t len = 0;

	assert_int_equal(ucache_get(c, key, strlen(key), buf, sizeof(buf), &len), -ENOENT);
	assert_int_equal(ucache_peek(c, key, strlen(key), buf, sizeof(buf), &len, NULL), -ENOENT);
	assert_int_equal(ucache_exists(c, key, strlen(key)), -ENOENT);
	assert_null(ucache_get_alloc(c, key, strlen(key), &len, NULL));
	assert_int_equal(errno, ENOENT);
}

static void test_tagged_entry_served_as_payload(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100,blocksize=4096");
	char buf[2048];
	size_t len = 0;
	void *v;

	(void)state;
	assert_int_equal(put_tagged(c, "/page", "user:1,feed", "HTTP/1.1 200 OK\r\n\r\nhi", 0), 0);
	ut_expect(c, "/page", "HTTP/1.1 200 OK\r\n\r\nhi");
	assert_int_equal(ucache_exists(c, "/page", 5), 0);
	v = ucache_get_alloc(c, "/page", 5, &len, NULL);
	assert_non_null(v);
	assert_int_equal(len, 21);
	assert_memory_equal(v, "HTTP/1.1 200 OK\r\n\r\nhi", 21);
	free(v);
	/* peek gives the stored bytes, envelope included */
	assert_int_equal(ucache_peek(c, "/page", 5, buf, sizeof(buf), &len, NULL), 0);
	assert_int_equal(len, 32 + 2 * 4 + 21);
	assert_true(ucache_tags_check(c, buf, len) == 32 + 2 * 4);
	assert_int_equal(ucache_tags_check(c, "plain", 5), 0);
	ut_check(c);
	ut_destroy(c);
}

static void test_invalidate_one_tag_misses_exactly_its_entries(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100,blocksize=4096");

	(void)state;
	assert_int_equal(put_tagged(c, "a", "x", "A", 0), 0);
	assert_int_equal(put_tagged(c, "b", "x,y", "B", 0), 0);
	assert_int_equal(put_tagged(c, "c", "y,z", "C", 0), 0);
	assert_int_equal(ut_set(c, "plain", "P", 0, 0), 0);
	assert_int_equal(inval(c, "x"), 0);
	expect_gone(c, "a");
	expect_gone(c, "b");
	/* nor does iteration list them */
	{
		uint64_t cur = 0;
		char kb[2048];
		size_t kl = 0;
		int n = 0;
		while (ucache_iter(c, &cur, kb, sizeof(kb), &kl) == 0) {
			assert_false(kl == 1 && (kb[0] == 'a' || kb[0] == 'b'));
			n++;
		}
		assert_int_equal(n, 2); /* c, plain */
	}
	/* a set without UPDATE finds a stale entry missing, as reads do */
	assert_int_equal(ut_set(c, "b", "plain B", 0, 0), 0);
	ut_expect(c, "b", "plain B");
	ut_expect(c, "c", "C");
	ut_expect(c, "plain", "P");
	assert_int_equal(inval(c, "z"), 0);
	expect_gone(c, "c");
	/* re-stored after the invalidation: fresh again */
	assert_int_equal(put_tagged(c, "a", "x", "A2", 0), 0);
	ut_expect(c, "a", "A2");
	ut_check(c);
	ut_destroy(c);
}

static void test_invalidation_during_render_is_not_lost(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100,blocksize=4096");
	const void *tv[1] = { "t" };
	size_t tl[1] = { 1 };
	uint8_t buf[256];
	uint64_t since;
	long hlen;

	(void)state;
	assert_int_equal(inval(c, "t"), 0);                     /* before: harmless */
	since = ucache_tags_now(c);                             /* before rendering */
	assert_int_equal(inval(c, "t"), 0);                     /* lands during it */
	hlen = ucache_tags_head(c, since, tv, tl, 1, buf, sizeof(buf)); /* tags named after */
	assert_true(hlen > 0);
	memcpy(buf + hlen, "old", 3);
	assert_int_equal(ucache_set(c, "k", 1, buf, (size_t)hlen + 3, 0, 0), 0);
	expect_gone(c, "k");
	/* rendered again after the invalidation: fresh */
	since = ucache_tags_now(c);
	hlen = ucache_tags_head(c, since, tv, tl, 1, buf, sizeof(buf));
	memcpy(buf + hlen, "new", 3);
	assert_int_equal(ucache_set(c, "k", 1, buf, (size_t)hlen + 3, 0, UCACHE_SET_UPDATE), 0);
	ut_expect(c, "k", "new");
	ut_destroy(c);
}

static void test_sweep_frees_stale_tagged_entries(void **state)
{
	ucache_t *c = ut_cache("name=t,items=200,blocksize=4096");
	char k[16];
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(put_tagged(c, k, i % 2 ? "odd" : "even", "v", 0), 0);
	}
	assert_int_equal(ucache_sweep(c, ucache_now(), 1000), 0);
	assert_int_equal(ut_stats(c).items, 100);
	assert_int_equal(inval(c, "odd"), 0);
	assert_int_equal(ucache_sweep(c, ucache_now(), 1000), 50);
	assert_int_equal(ut_stats(c).items, 50);
	ut_expect(c, "k0", "v");
	ut_check(c);
	ut_destroy(c);
}

static void test_bitmap_cache_tags(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100,blocksize=64,blocks=2000,bitmap=1");
	char big[3000];

	(void)state;
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(put_tagged(c, "big", "g", big, 0), 0);
	ut_expect(c, "big", big);
	assert_int_equal(inval(c, "g"), 0);
	expect_gone(c, "big");
	assert_int_equal(ucache_sweep(c, ucache_now(), 10), 1);
	ut_check(c);
	ut_destroy(c);
}

static void test_invalidate_cost_independent_of_entries(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100010,blocksize=128");
	char k[16];
	int i;

	(void)state;
	for (i = 0; i < 100000; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(put_tagged(c, k, "hot", "v", 0), 0);
	}
	assert_int_equal(inval(c, "hot"), 0);
	/* O(1): nothing was deleted by the invalidation itself ... */
	assert_int_equal(ut_stats(c).items, 100000);
	/* ... yet every entry is a miss */
	for (i = 0; i < 100000; i += 997) {
		snprintf(k, sizeof(k), "k%d", i);
		expect_gone(c, k);
	}
	ut_destroy(c);
}

static void test_invalidation_from_another_process(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100,blocksize=4096");
	pid_t pid;

	(void)state;
	assert_int_equal(put_tagged(c, "k", "shared", "v", 0), 0);
	pid = ut_fork();
	if (pid == 0)
		_exit(inval(c, "shared") ? 1 : 0);
	assert_int_equal(ut_wait_exit(pid), 0);
	expect_gone(c, "k");
	ut_destroy(c);
}

static void test_bad_tags_refused(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100,blocksize=4096");
	const void *tv[UCACHE_TAGS_MAX + 1];
	size_t tl[UCACHE_TAGS_MAX + 1];
	uint8_t buf[UCACHE_TAG_HEAD_MAX + 16];
	char big[UCACHE_TAG_MAX + 1];
	int i;

	(void)state;
	for (i = 0; i <= UCACHE_TAGS_MAX; i++) {
		tv[i] = "t";
		tl[i] = 1;
	}
	assert_int_equal(ucache_tags_head(c, 1, tv, tl, 0, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ucache_tags_head(c, 1, tv, tl, UCACHE_TAGS_MAX + 1, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ucache_tags_head(c, 1, tv, tl, UCACHE_TAGS_MAX, buf, sizeof(buf)), UCACHE_TAG_HEAD_MAX);
	assert_int_equal(ucache_tags_head(c, 1, tv, tl, 2, buf, 39), -ENOBUFS);
	assert_int_equal(ucache_tags_head(c, 0, tv, tl, 1, buf, sizeof(buf)), -EINVAL);
	tl[0] = 0;
	assert_int_equal(ucache_tags_head(c, 1, tv, tl, 1, buf, sizeof(buf)), -EINVAL);
	memset(big, 'x', sizeof(big));
	assert_int_equal(ucache_invalidate_tag(c, big, sizeof(big)), -EINVAL);
	assert_int_equal(ucache_invalidate_tag(c, "", 0), -EINVAL);
	/* a value that merely starts with the magic and does not parse: a miss */
	assert_int_equal(ucache_set(c, "fake", 4, "\0UCTAGS\1garbage", 15, 0, 0), 0);
	expect_gone(c, "fake");
	ut_destroy(c);
}

/* Issue 18: the tag "a,b" was invalidated ("ok 1") although no entry can
 * carry it (the wire's tags=a,b and the Accelerator split on commas): the
 * engine refuses a comma in a tag wherever a tag goes in. */
static void test_bug_invalidate_accepts_a_tag_with_a_comma(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100,blocksize=4096");
	const void *tv[2] = { "a", "a,b" };
	size_t tl[2] = { 1, 3 };
	uint8_t buf[UCACHE_TAG_HEAD_MAX];
	uint64_t now = ucache_tags_now(c);

	(void)state;
	assert_int_equal(ucache_invalidate_tag(c, "a,b", 3), -EINVAL);
	assert_int_equal(ucache_invalidate_tag(c, ",", 1), -EINVAL);
	assert_true(ucache_tags_now(c) == now);   /* nothing was invalidated */
	assert_int_equal(ucache_tags_head(c, now ? now : 1, tv, tl, 2, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ucache_tags_head_shared(1, tv, tl, 2, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ucache_tags_head(c, now ? now : 1, tv, tl, 1, buf, sizeof(buf)), 36);
	assert_int_equal(ucache_invalidate_tag(c, "a", 1), 0);
	ut_destroy(c);
}

static ucache_t *open_store(const char *path)
{
	struct ucache_config cfg;
	char kv[512], err[512];
	ucache_t *c;

	snprintf(kv, sizeof(kv), "name=s,items=100,blocksize=4096,store=%s", path);
	assert_int_equal(ucache_config_parse(&cfg, kv, err, sizeof(err)), 0);
	c = ucache_create(&cfg, err, sizeof(err));
	ucache_config_free(&cfg);
	if (!c)
		fail_msg("store: %s", err);
	return c;
}

/* Generations are not persisted: a reopened store's tagged entries were
 * made against another table and must never be served again (an
 * invalidation may have been lost with the old table). */
static void test_reopened_store_drops_tagged_entries(void **state)
{
	char path[128];
	ucache_t *c;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/ucache-test-tags-%d.db", (int)getpid());
	unlink(path);
	c = open_store(path);
	assert_int_equal(put_tagged(c, "tagged", "t", "T", 0), 0);
	assert_int_equal(ut_set(c, "plain", "P", 0, 0), 0);
	ut_expect(c, "tagged", "T");
	ucache_close(c);
	c = open_store(path);
	ut_expect(c, "plain", "P");
	expect_gone(c, "tagged");
	assert_int_equal(ucache_sweep(c, ucache_now(), 100), 1);  /* and the sweep frees it */
	assert_int_equal(ut_stats(c).items, 1);
	ucache_close(c);
	unlink(path);
}

/* A shared-epoch head (a near cache's: state kept in Redis) has the same
 * layout, the fixed epoch and ucache_tag_index()'s counters, and no local
 * table ever judges it fresh: stored in a cache, it is a miss. */
static void test_shared_head_parses_everywhere_and_is_never_fresh_locally(void **state)
{
	ucache_t *c = ut_cache("name=t,items=100,blocksize=4096");
	const void *tv[2] = { "user:1", "feed" };
	size_t tl[2] = { 6, 4 };
	uint8_t buf[UCACHE_TAG_HEAD_MAX + 8];
	uint64_t epoch, since;
	uint32_t n, hlen, idx;
	long h;

	(void)state;
	h = ucache_tags_head_shared(12345, tv, tl, 2, buf, sizeof(buf));
	assert_int_equal(h, 32 + 2 * 4);
	assert_memory_equal(buf, "\0UCTAGS\1", 8);
	memcpy(&epoch, buf + 8, 8);
	memcpy(&since, buf + 16, 8);
	memcpy(&n, buf + 24, 4);
	memcpy(&hlen, buf + 28, 4);
	assert_true(epoch == UCACHE_TAGS_SHARED_EPOCH);
	assert_true(since == 12345);
	assert_int_equal(n, 2);
	assert_int_equal(hlen, 40);
	memcpy(&idx, buf + 32, 4);
	assert_int_equal(idx, ucache_tag_index("user:1", 6));
	memcpy(&idx, buf + 36, 4);
	assert_int_equal(idx, ucache_tag_index("feed", 4));
	assert_true(ucache_tag_index("feed", 4) < 65536);
	/* the fixed epoch is the bytes the Redis scripts compare */
	assert_memory_equal(buf + 8, "\0UCREDIS", 8);
	memcpy(buf + h, "payload!", 8);
	assert_int_equal(ucache_tags_check(c, buf, (size_t)h + 8), -ESTALE);
	assert_int_equal(ucache_set(c, "/near", 5, buf, (size_t)h + 8, 0, UCACHE_SET_UPDATE), 0);
	expect_gone(c, "/near");
	/* bad input as ucache_tags_head */
	assert_int_equal(ucache_tags_head_shared(0, tv, tl, 2, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ucache_tags_head_shared(1, tv, tl, 0, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ucache_tags_head_shared(1, tv, tl, 2, buf, 39), -ENOBUFS);
	ut_check(c);
	ut_destroy(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tagged_entry_served_as_payload),
		T(test_invalidate_one_tag_misses_exactly_its_entries),
		T(test_invalidation_during_render_is_not_lost),
		T(test_sweep_frees_stale_tagged_entries),
		T(test_bitmap_cache_tags),
		T(test_invalidate_cost_independent_of_entries),
		T(test_invalidation_from_another_process),
		T(test_bad_tags_refused),
		T(test_bug_invalidate_accepts_a_tag_with_a_comma),
		T(test_reopened_store_drops_tagged_entries),
		T(test_shared_head_parses_everywhere_and_is_never_fresh_locally),
	};

	return cmocka_run_group_tests_name("tags", tests, NULL, NULL);
}
