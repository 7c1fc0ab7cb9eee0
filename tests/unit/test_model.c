/*
 * test_model.c - model-based test: random operations on the engine and on
 * a trivially correct model (a linear table) must agree, for every storage
 * mode and hash, with ucache_check() after every batch.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ucache.h"
#include "ucache_test.h"

#define NKEYS 200
#define MAXV 300

struct model_item {
	int present;
	size_t len;
	unsigned char val[MAXV];
};

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

static void key_of(int i, char *k, size_t *kl)
{
	/* short keys stay inline in the slot; long ones go to the key heap */
	*kl = (size_t)snprintf(k, 64, i % 3 ? "k%d" : "a-much-longer-key-that-needs-the-heap-%d", i);
}

static void check_all(ucache_t *c, struct model_item *m)
{
	unsigned char buf[MAXV];
	char k[64];
	size_t kl, len;
	int i, rc;

	for (i = 0; i < NKEYS; i++) {
		key_of(i, k, &kl);
		rc = ucache_get(c, k, kl, buf, sizeof(buf), &len);
		if (m[i].present) {
			assert_int_equal(rc, 0);
			assert_int_equal(len, m[i].len);
			assert_memory_equal(buf, m[i].val, len);
		} else {
			assert_int_equal(rc, -ENOENT);
		}
	}
	ut_check(c);
}

/* One random operation applied to both; the model decides what must happen. */
static void step(ucache_t *c, struct model_item *m, size_t maxv, int *live, int capacity, int strict)
{
	unsigned char v[MAXV];
	char k[64];
	size_t kl, vl = 1 + rnd() % maxv, j;
	int i = (int)(rnd() % NKEYS), op = (int)(rnd() % 10), rc;

	key_of(i, k, &kl);
	for (j = 0; j < vl; j++)
		v[j] = (unsigned char)rnd();
	if (op < 4) { /* set */
		rc = ucache_set(c, k, kl, v, vl, 0, op < 2 ? UCACHE_SET_UPDATE : 0);
		if (m[i].present && op >= 2) {
			assert_int_equal(rc, -EEXIST);
			return;
		}
		if (!m[i].present && *live >= capacity) {
			assert_int_equal(rc, -ENOSPC);
			return;
		}
		if (rc == -ENOSPC && !strict) /* bitmap fragmentation may refuse: nothing changed */
			return;
		assert_int_equal(rc, 0);
		*live += !m[i].present;
		m[i].present = 1;
		m[i].len = vl;
		memcpy(m[i].val, v, vl);
	} else if (op < 7) {
		rc = ucache_del(c, k, kl);
		assert_int_equal(rc, m[i].present ? 0 : -ENOENT);
		*live -= m[i].present;
		m[i].present = 0;
	} else {
		unsigned char buf[MAXV];
		size_t len;
		rc = ucache_get(c, k, kl, buf, sizeof(buf), &len);
		assert_int_equal(rc, m[i].present ? 0 : -ENOENT);
		if (!rc)
			assert_memory_equal(buf, m[i].val, len);
	}
}

static void run_model(const char *keyval, size_t maxv, int capacity, int strict)
{
	struct model_item *m = calloc(NKEYS, sizeof(*m));
	ucache_t *c = ut_cache(keyval);
	int round, n, live = 0;

	for (round = 0; round < 40; round++) {
		for (n = 0; n < 500; n++)
			step(c, m, maxv, &live, capacity, strict);
		check_all(c, m);
		if (round % 10 == 9) { /* a rebuild must keep everything */
			assert_int_equal(ucache_repair(c), live);
			check_all(c, m);
		}
	}
	assert_int_equal((int)ucache_items(c), live);
	ut_destroy(c);
	free(m);
}

static void model_single_block(void **state)
{
	(void)state;
	run_model("name=m,items=101,blocksize=300", 300, 100, 1);
}

static void model_single_block_small_blocks(void **state)
{
	(void)state;
	run_model("name=m,items=51,blocksize=40,hash=murmur2", 40, 50, 1);
}

static void model_bitmap(void **state)
{
	(void)state;
	run_model("name=m,items=151,blocks=300,blocksize=16,bitmap=1,hash=xxh3", 64, 150, 0);
}

static void model_small_keysize(void **state)
{
	/* keysize 60: long keys (< 60) still go to the key heap */
	(void)state;
	run_model("name=m,items=201,blocksize=128,keysize=60", 128, 200, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(model_single_block),
		cmocka_unit_test(model_single_block_small_blocks),
		cmocka_unit_test(model_bitmap),
		cmocka_unit_test(model_small_keysize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
