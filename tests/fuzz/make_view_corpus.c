/*
 * make_view_corpus.c - (re)write tests/fuzz/view-corpus/: real small store
 * images, the seeds of fuzz_view.c.  Each is a store the engine wrote
 * (single-block and bitmap, with and without tags), holding the keys
 * fuzz_view.c reads: k1, k2, page, a big value (bitmap: several blocks), an
 * item that has expired by the time the image is read (written on a clock
 * in 2001), and with tags a fresh tagged entry and an invalidated one.
 *
 *   make fuzz-view-corpus      (build/fuzz/make_view_corpus tests/fuzz/view-corpus)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ucache.h"

#define PAST 1000000000u /* the clock while writing: 2001 */

static uint64_t past(void)
{
	return PAST;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "make_view_corpus: %s: %s\n", what, why);
	exit(1);
}

static void put(ucache_t *c, const char *k, const void *v, size_t vlen, uint64_t expires)
{
	int rc = ucache_set(c, k, strlen(k), v, vlen, expires, UCACHE_SET_UPDATE);

	if (rc)
		die(k, strerror(-rc));
}

static void put_tagged(ucache_t *c, const char *k, const char *tag, const char *payload)
{
	const void *tv[1] = { tag };
	size_t tl[1] = { strlen(tag) };
	char buf[512];
	long hlen = ucache_tags_head(c, ucache_tags_now(c), tv, tl, 1, buf, sizeof(buf));

	if (hlen < 0)
		die(k, strerror((int)-hlen));
	memcpy(buf + hlen, payload, strlen(payload));
	put(c, k, buf, (size_t)hlen + strlen(payload), 0);
}

static void make(const char *dir, const char *name, const char *geometry, int tags)
{
	char kv[2048], path[1024], err[512] = "", big[200];
	struct ucache_config cfg;
	ucache_t *c;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	snprintf(kv, sizeof(kv), "name=fuzz,%s,store=%s", geometry, path);
	if (ucache_config_parse(&cfg, kv, err, sizeof(err)) || !(c = ucache_create(&cfg, err, sizeof(err))))
		die(path, err);
	ucache_config_free(&cfg);
	memset(big, 'b', sizeof(big));
	put(c, "k1", "one", 3, 0);
	put(c, "k2", "two, expiring in 2030", 21, 1900000000u - PAST);
	put(c, "page", "<html>page</html>", 17, 0);
	put(c, "big", big, sizeof(big), 0);
	put(c, "expired", "gone", 4, 10);
	if (tags) {
		put_tagged(c, "tagged", "t:fresh", "<p>fresh</p>");
		put_tagged(c, "stale", "t:old", "<p>stale</p>");
		if (ucache_invalidate_tag(c, "t:old", 5))
			die(name, "invalidate");
	}
	ucache_close(c);
	printf("%s\n", path);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/view-corpus";

	ucache_set_clock(past);
	make(dir, "single.store", "items=8,blocksize=256,keysize=16,hashsize=8", 0);
	make(dir, "single-tags.store", "items=8,blocksize=256,keysize=16,hashsize=8", 1);
	make(dir, "bitmap.store", "items=8,blocks=32,blocksize=32,keysize=16,hashsize=8,bitmap=1", 0);
	make(dir, "bitmap-tags.store", "items=8,blocks=32,blocksize=32,keysize=16,hashsize=8,bitmap=1", 1);
	return 0;
}
