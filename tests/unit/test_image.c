/*
 * test_image.c - stock's raw cache image (plugins/ucache/wire/image.c) and the
 * dump request/head vars (wire/dump.c): an image written for a stock client
 * reads back item for item, with chains a stock uwsgi_cache_fix() would
 * rebuild; the sender's geometry is worked out from the length; every
 * lying field is refused without a read outside the image; a ucache dump
 * request is told apart from a plain cache name.  Linked with plugins/ucache/wire/
 * alone (no uWSGI, no engine).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "image.h"
#include "proto.h"

/* uWSGI 2.0.21's struct uwsgi_cache_item. */
static const struct ucp_image_layout L = {
	.size = 88, .flags = 0, .keysize = 8, .hash = 16, .valsize = 24, .first_block = 32,
	.expires = 40, .hits = 48, .prev = 56, .next = 64, .lru_prev = 72, .lru_next = 80,
	.skip_flags = 1,
};

struct seen {
	int n;
	char keys[16][32];
	char vals[16][300];
	uint64_t expires[16];
};

static void collect(void *ud, const struct ucp_image_item *it)
{
	struct seen *s = ud;

	assert_true(s->n < 16 && it->key_len < 32 && it->value_len < 300);
	memcpy(s->keys[s->n], it->key, it->key_len);
	memcpy(s->vals[s->n], it->value, it->value_len);
	s->expires[s->n++] = it->expires;
}

static uint64_t field(const struct ucp_image_writer *w, uint64_t i, size_t off)
{
	uint64_t v;

	memcpy(&v, w->buf + i * (L.size + w->g.keysize) + off, 8);
	return v;
}

static void written_image_reads_back(void **state)
{
	struct ucp_image_geom g = { .items = 10, .keysize = 16, .blocksize = 32, .blocks = 10 };
	struct ucp_image_writer w;
	struct ucp_image_counts n;
	struct seen s = { 0 };

	(void)state;
	assert_int_equal(ucp_image_writer_init(&w, &L, &g, 4), 0);
	assert_int_equal(w.len, 10 * (88 + 16) + 10 * 32);
	assert_int_equal(ucp_image_add(&w, "a", 1, "one", 3, 0, 5), 0);       /* bucket 1 */
	assert_int_equal(ucp_image_add(&w, "b", 1, "two", 3, 2000, 9), 0);    /* bucket 1 */
	assert_int_equal(ucp_image_add(&w, "c", 1, "three", 5, 0, 2), 0);     /* bucket 2 */
	assert_int_equal(ucp_image_add(&w, "big", 3, "x", 33, 0, 2), -1);     /* over blocksize */
	assert_int_equal(ucp_image_add(&w, "0123456789abcdefg", 17, "x", 1, 0, 2), -1); /* over keysize */
	assert_int_equal(w.skipped, 2);
	/* chains by hash % hashsize: 1 -> 2 in bucket 1, heads have prev 0 */
	assert_int_equal(field(&w, 1, L.prev), 0);
	assert_int_equal(field(&w, 1, L.next), 2);
	assert_int_equal(field(&w, 2, L.prev), 1);
	assert_int_equal(field(&w, 3, L.prev), 0);
	assert_int_equal(field(&w, 3, L.next), 0);
	/* one LRU list 1 <-> 2 <-> 3, first_block = the item's index */
	assert_int_equal(field(&w, 1, L.lru_prev), 0);
	assert_int_equal(field(&w, 2, L.lru_prev), 1);
	assert_int_equal(field(&w, 3, L.lru_next), 0);
	assert_int_equal(field(&w, 3, L.first_block), 3);
	ucp_image_walk(&L, &g, w.buf, w.len, 1000, 65534, collect, &s, &n);
	assert_int_equal(n.live, 3);
	assert_string_equal(s.keys[1], "b");
	assert_string_equal(s.vals[2], "three");
	assert_int_equal(s.expires[1], 2000);
	/* at 2000 "b" has expired */
	memset(&s, 0, sizeof(s));
	ucp_image_walk(&L, &g, w.buf, w.len, 2000, 65534, collect, &s, &n);
	assert_int_equal(n.live, 2);
	assert_int_equal(n.expired, 1);
	ucp_image_writer_free(&w);
}

static void bitmap_image_places_values_in_blocks(void **state)
{
	struct ucp_image_geom g = { .items = 4, .keysize = 8, .blocksize = 16, .blocks = 6 };
	char big[40];
	struct ucp_image_writer w;
	struct ucp_image_counts n;
	struct seen s = { 0 };

	(void)state;
	memset(big, 'z', sizeof(big));
	assert_int_equal(ucp_image_writer_init(&w, &L, &g, 8), 0);
	assert_int_equal(ucp_image_add(&w, "a", 1, big, 40, 0, 1), 0);   /* blocks 0..2 */
	assert_int_equal(ucp_image_add(&w, "b", 1, big, 40, 0, 2), 0);   /* blocks 3..5 */
	assert_int_equal(ucp_image_add(&w, "c", 1, "x", 1, 0, 3), -1);   /* no block left */
	assert_int_equal(field(&w, 2, L.first_block), 3);
	ucp_image_walk(&L, &g, w.buf, w.len, 0, 65534, collect, &s, &n);
	assert_int_equal(n.live, 2);
	assert_memory_equal(s.vals[1], big, 40);
	ucp_image_writer_free(&w);
}

static void geometry_is_worked_out_from_the_length(void **state)
{
	struct ucp_image_geom own = { .items = 100, .keysize = 2048, .blocksize = 256, .blocks = 100 }, g;

	(void)state;
	/* the receiver's own geometry */
	assert_int_equal(ucp_image_guess(&L, 100, 256, 100 * (88 + 2048 + 256), &own, &g), 0);
	assert_int_equal(g.keysize, 2048);
	/* another keysize, no bitmap */
	assert_int_equal(ucp_image_guess(&L, 50, 512, 50 * (88 + 64 + 512), &own, &g), 0);
	assert_int_equal(g.keysize, 64);
	assert_int_equal(g.blocks, 50);
	/* a bitmap sender with the receiver's keysize: blocks implied */
	assert_int_equal(ucp_image_guess(&L, 10, 100, 10 * (88 + 2048) + 7 * 100, &own, &g), 0);
	assert_int_equal(g.blocks, 7);
	/* nothing explains it */
	assert_int_equal(ucp_image_guess(&L, 100, 256, 100 * (88 + 2048 + 256) - 777, &own, &g), -1);
	assert_int_equal(ucp_image_guess(&L, 0, 256, 1000, &own, &g), -1);
	assert_int_equal(ucp_image_guess(&L, UINT64_MAX, UINT64_MAX, 1000, &own, &g), -1);
	g.items = UINT64_MAX / 2;
	g.keysize = 16;
	g.blocksize = 4;
	g.blocks = 1;
	assert_int_equal(ucp_image_size(&L, &g), 0);   /* overflows */
}

static void put(uint8_t *img, uint64_t stride, uint64_t i, size_t off, uint64_t v)
{
	memcpy(img + i * stride + off, &v, 8);
}

static void lying_fields_are_refused(void **state)
{
	struct ucp_image_geom g = { .items = 8, .keysize = 8, .blocksize = 16, .blocks = 8 };
	uint64_t stride = 88 + 8, size = ucp_image_size(&L, &g);
	uint8_t *img = calloc(1, size);
	struct ucp_image_counts n;
	struct seen s = { 0 };
	uint64_t i;

	(void)state;
	for (i = 1; i < 8; i++) {
		put(img, stride, i, L.keysize, 1);
		put(img, stride, i, L.valsize, 1);
		put(img, stride, i, L.first_block, i);
		img[i * stride + 88] = (uint8_t)('a' + i);
	}
	put(img, stride, 2, L.keysize, 9);                 /* over the keysize */
	put(img, stride, 3, L.first_block, 8);             /* past the blocks */
	put(img, stride, 4, L.valsize, 0);                 /* no value */
	put(img, stride, 5, L.first_block, 7);
	put(img, stride, 5, L.valsize, 17);                /* past the region */
	put(img, stride, 6, L.flags, 1);                   /* ungettable */
	put(img, stride, 7, L.valsize, UINT64_MAX);        /* absurd */
	ucp_image_walk(&L, &g, img, size, 0, 65534, collect, &s, &n);
	assert_int_equal(n.live, 1);
	assert_int_equal(n.invalid, 6);
	assert_string_equal(s.keys[0], "b");
	/* a truncated image: the items whose bytes are missing are invalid */
	memset(&s, 0, sizeof(s));
	put(img, stride, 2, L.keysize, 1);
	ucp_image_walk(&L, &g, img, 2 * stride + 50, 0, 65534, collect, &s, &n);
	assert_int_equal(n.live, 0);
	assert_int_equal(n.invalid, 7);
	/* key longer than the receiver accepts */
	memset(&s, 0, sizeof(s));
	ucp_image_walk(&L, &g, img, size, 0, 0, collect, &s, &n);
	assert_int_equal(n.live, 0);
	free(img);
}

static void dump_request_is_told_apart_from_a_name(void **state)
{
	char buf[UCP_DUMP_REQUEST_MAX + 8];
	struct ucp_request r;
	size_t n = ucp_dump_request(buf, "web", 3);

	(void)state;
	assert_int_equal((unsigned char)buf[0], 111);
	assert_int_equal((unsigned char)buf[3], UCP_M2_DUMP);
	assert_int_equal(ucp_le16(buf + 1), n - 4);
	assert_int_equal(ucp_request_parse(UCP_M2_DUMP, buf + 4, n - 4, &r), 0);
	assert_true(r.native && r.write);
	assert_int_equal(r.cache_len, 3);
	assert_memory_equal(r.cache, "web", 3);
	n = ucp_dump_request(buf, "", 0);                      /* the default cache */
	assert_int_equal(ucp_request_parse(UCP_M2_DUMP, buf + 4, n - 4, &r), 0);
	assert_true(r.native && !r.cache);
	assert_int_equal(ucp_request_parse(UCP_M2_DUMP, "web", 3, &r), 0);   /* stock: the name */
	assert_true(!r.native && r.cache_len == 3);
	assert_int_equal(ucp_request_parse(UCP_M2_DUMP, "", 0, &r), 0);
	assert_true(!r.native && !r.cache);
}

static void dump_head_vars(void **state)
{
	static const char stock[] = "\x05\x00items\x03\x00" "100" "\x09\x00" "blocksize\x05\x00" "65536";
	static const char bad[] = "\x05\x00items\x02\x00" "1x";
	struct ucp_dump_head h;

	(void)state;
	assert_int_equal(ucp_dump_head_parse(stock, sizeof(stock) - 1, &h), 0);
	assert_true(h.has_items && h.has_blocksize && !ucp_dump_head_native(&h));
	assert_int_equal(h.items, 100);
	assert_int_equal(h.blocksize, 65536);
	assert_int_equal(ucp_dump_head_parse(bad, sizeof(bad) - 1, &h), -UCP_PERR_NUMBER);
	assert_int_equal(ucp_dump_head_parse(stock, sizeof(stock) - 3, &h), -UCP_PERR_TRUNCATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(written_image_reads_back),
		cmocka_unit_test(bitmap_image_places_values_in_blocks),
		cmocka_unit_test(geometry_is_worked_out_from_the_length),
		cmocka_unit_test(lying_fields_are_refused),
		cmocka_unit_test(dump_request_is_told_apart_from_a_name),
		cmocka_unit_test(dump_head_vars),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
