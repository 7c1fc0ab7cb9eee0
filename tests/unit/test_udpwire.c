/*
 * test_udpwire.c - the replication datagram (plugins/ucache/wire/udpwire.c):
 * stock-format sets and dels (padded and not) both ways, every error class,
 * signing and verification, the replay guard, udp_allow networks, and the
 * regression corpus.  Linked with plugins/ucache/wire/ and libcrypto alone
 * (no uWSGI, no engine); the Makefile runs it plain and under ASan+UBSan.
 *
 * Every datagram is copied into a malloc'd buffer of its exact size before
 * parsing (dup), so that ASan reports any read past it.  The byte strings
 * of the stock format are written out by hand, from stock 2.0.21's
 * cache_send_udp_command(), not produced by the encoder under test.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto.h"
#include "udpwire.h"

/* The corpus's secret and clock (tests/fuzz/make_udp_corpus.py). */
static const char secret[] = "ucache-fuzz-secret-0123456789";
#define SECRET_LEN (sizeof(secret) - 1)
#define NOW 1800000000u

static unsigned char *dup(const void *p, size_t n)
{
	unsigned char *d = malloc(n ? n : 1);

	assert_non_null(d);
	memcpy(d, p, n);
	return d;
}

static int parse(const void *p, size_t n, struct ucp_udpw_msg *m)
{
	unsigned char *d = dup(p, n);
	int ret = ucp_udpw_parse(d, n, m);

	/* the fields point into d, which goes: point them into p instead */
	if (ret == 0 && m->key)
		m->key = (const char *) p + (m->key - (const char *) d);
	if (ret == 0 && m->value)
		m->value = (const char *) p + (m->value - (const char *) d);
	free(d);
	return ret;
}

#define LIT(s) s, sizeof(s) - 1

/* ------------------------------------------------------------- stock format */

static void stock_set_and_dels(void **state)
{
	/* stock set of "key" = "val", expires 1800000100 */
	static const char set[] = "\x6f\x16\x00\x0a" "\x03\x00key" "\x03\x00val" "\x0a\x00" "1800000100";
	/* stock del (unpadded: stock receivers drop it) and ucache's padded del */
	static const char del[] = "\x6f\x05\x00\x0b" "\x03\x00key";
	static const char pdel[] = "\x6f\x07\x00\x0b" "\x03\x00key\x00\x00";
	struct ucp_udpw_msg m;

	(void) state;
	assert_int_equal(parse(LIT(set), &m), 0);
	assert_int_equal(m.cmd, UCP_UDPW_SET);
	assert_int_equal(m.key_len, 3);
	assert_memory_equal(m.key, "key", 3);
	assert_int_equal(m.value_len, 3);
	assert_memory_equal(m.value, "val", 3);
	assert_int_equal(m.expires, 1800000100u);
	assert_false(m.has_trailer);

	assert_int_equal(parse(LIT(del), &m), 0);
	assert_int_equal(m.cmd, UCP_UDPW_DEL);
	assert_memory_equal(m.key, "key", 3);
	assert_null(m.value);
	assert_int_equal(parse(LIT(pdel), &m), 0);
	assert_int_equal(m.cmd, UCP_UDPW_DEL);
	assert_int_equal(m.key_len, 3);
}

static void stock_tolerances(void **state)
{
	/* a set without expiry, or with an empty expiry text: never expires */
	static const char noexp[] = "\x6f\x0a\x00\x0a" "\x01\x00k" "\x05\x00value";
	static const char empty[] = "\x6f\x0c\x00\x0a" "\x01\x00k" "\x05\x00value\x00\x00";
	struct ucp_udpw_msg m;

	(void) state;
	assert_int_equal(parse(LIT(noexp), &m), 0);
	assert_int_equal(m.expires, 0);
	assert_int_equal(m.value_len, 5);
	assert_int_equal(parse(LIT(empty), &m), 0);
	assert_int_equal(m.expires, 0);
}

/* The encoder writes exactly the stock bytes (and pads dels). */
static void encoder_is_stock(void **state)
{
	static const char set[] = "\x6f\x16\x00\x0a" "\x03\x00key" "\x03\x00val" "\x0a\x00" "1800000100";
	static const char never[] = "\x6f\x09\x00\x0a" "\x01\x00k" "\x01\x00v" "\x01\x00" "0";
	static const char pdel[] = "\x6f\x07\x00\x0b" "\x03\x00key\x00\x00";
	unsigned char out[128];

	(void) state;
	assert_int_equal(ucp_udpw_encode_set(out, sizeof(out), "key", 3, "val", 3, 1800000100u),
			sizeof(set) - 1);
	assert_memory_equal(out, set, sizeof(set) - 1);
	assert_int_equal(ucp_udpw_encode_set(out, sizeof(out), "k", 1, "v", 1, 0), sizeof(never) - 1);
	assert_memory_equal(out, never, sizeof(never) - 1);
	assert_int_equal(ucp_udpw_encode_del(out, sizeof(out), "key", 3), sizeof(pdel) - 1);
	assert_memory_equal(out, pdel, sizeof(pdel) - 1);
	/* too small a buffer, empty key or value: nothing */
	assert_int_equal(ucp_udpw_encode_set(out, 20, "key", 3, "val", 3, 1800000100u), 0);
	assert_int_equal(ucp_udpw_encode_set(out, sizeof(out), "", 0, "v", 1, 0), 0);
	assert_int_equal(ucp_udpw_encode_set(out, sizeof(out), "k", 1, "", 0, 0), 0);
	assert_int_equal(ucp_udpw_encode_del(out, 8, "key", 3), 0);
}

/* The largest value that fits in one datagram, and one byte more. */
static void encoder_limits(void **state)
{
	size_t overhead = 4 + 2 + 1 + 2 + 2 + 10;   /* key "k", expiry "1800000100" */
	size_t fits = UCP_UDPW_MAX - overhead;
	unsigned char *out = malloc(UINT16_MAX + 16);
	char *val = calloc(1, UINT16_MAX + 1);
	struct ucp_udpw_msg m;
	size_t len;

	(void) state;
	assert_non_null(out);
	assert_non_null(val);
	len = ucp_udpw_encode_set(out, UINT16_MAX + 16, "k", 1, val, fits, 1800000100u);
	assert_int_equal(len, UCP_UDPW_MAX);
	assert_int_equal(parse(out, len, &m), 0);
	assert_int_equal(m.value_len, fits);
	assert_int_equal(ucp_udpw_encode_set(out, UINT16_MAX + 16, "k", 1, val, fits + 1, 1800000100u), 0);
	/* over 16 bits: never truncated (stock sent vallen & 0xffff) */
	assert_int_equal(ucp_udpw_encode_set(out, UINT16_MAX + 16, "k", 1, val, UINT16_MAX + 1, 0), 0);
	/* room for a trailer, as udp.c asks with a secret */
	assert_int_equal(ucp_udpw_encode_set(out, UCP_UDPW_MAX - UCP_UDPW_TRAILER, "k", 1, val, fits, 1800000100u), 0);
	free(out);
	free(val);
}

/* --------------------------------------------------------------- errors */

static void error_classes(void **state)
{
	static const struct { const char *d; size_t n; int err; } cases[] = {
		{ LIT(""), UCP_UDPW_ESHORT },
		{ LIT("\x6f\x00\x00"), UCP_UDPW_ESHORT },
		{ LIT("\x70\x05\x00\x0b" "\x03\x00key"), UCP_UDPW_EMOD1 },
		{ LIT("\x6f\x06\x00\x0b" "\x03\x00key"), UCP_UDPW_EPKTSIZE },
		{ LIT("\x6f\x04\x00\x0b" "\x03\x00key"), UCP_UDPW_EPKTSIZE },
		{ LIT("\x6f\x05\x00\x0c" "\x03\x00key"), UCP_UDPW_ECMD },
		{ LIT("\x6f\x00\x00\x0b"), UCP_UDPW_EKEY },
		{ LIT("\x6f\x01\x00\x0b" "\x03"), UCP_UDPW_EKEY },
		{ LIT("\x6f\x04\x00\x0b" "\x03\x00ke"), UCP_UDPW_EKEY },
		{ LIT("\x6f\x04\x00\x0b" "\x00\x00\x00\x00"), UCP_UDPW_EKEY },
		{ LIT("\x6f\x03\x00\x0a" "\x01\x00k"), UCP_UDPW_EVALUE },
		{ LIT("\x6f\x04\x00\x0a" "\x01\x00k\x01"), UCP_UDPW_EVALUE },
		{ LIT("\x6f\x06\x00\x0a" "\x01\x00k\x02\x00v"), UCP_UDPW_EVALUE },
		{ LIT("\x6f\x05\x00\x0a" "\x01\x00k\x00\x00"), UCP_UDPW_EVALUE },
		{ LIT("\x6f\x07\x00\x0a" "\x01\x00k\x01\x00v\x01"), UCP_UDPW_EEXPIRY },
		{ LIT("\x6f\x09\x00\x0a" "\x01\x00k\x01\x00v\x02\x00" "1"), UCP_UDPW_EEXPIRY },
		{ LIT("\x6f\x09\x00\x0a" "\x01\x00k\x01\x00v\x01\x00" "x"), UCP_UDPW_EEXPIRY },
		{ LIT("\x6f\x09\x00\x0a" "\x01\x00k\x01\x00v\x01\x00" "-"), UCP_UDPW_EEXPIRY },
		{ LIT("\x6f\x0a\x00\x0a" "\x01\x00k\x01\x00v\x01\x00" "1z"), UCP_UDPW_ETRAILING },
		{ LIT("\x6f\x04\x00\x0b" "\x01\x00k\x00"), UCP_UDPW_ETRAILING },
		{ LIT("\x6f\x06\x00\x0b" "\x01\x00k\x00\x00\x00"), UCP_UDPW_ETRAILING },
	};
	struct ucp_udpw_msg m;
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = parse(cases[i].d, cases[i].n, &m);

		if (ret != -cases[i].err)
			fail_msg("case %zu: got %d (%s), want %s", i, ret, ucp_udpw_strerror(ret),
					ucp_udpw_strerror(-cases[i].err));
	}
	for (i = 0; i <= UCP_UDPW_EMAX; i++)
		assert_non_null(ucp_udpw_strerror(-(int) i));
	assert_string_equal(ucp_udpw_strerror(-UCP_UDPW_EMAX), "unknown error");
}

/* Every prefix of a valid datagram is refused (its pktsize no longer
 * matches), and so is every pktsize but the right one. */
static void every_prefix_and_pktsize(void **state)
{
	unsigned char d[64];
	size_t len = ucp_udpw_encode_set(d, sizeof(d), "key", 3, "value", 5, 1800000100u), i;
	struct ucp_udpw_msg m;

	(void) state;
	for (i = 0; i < len; i++)
		assert_true(parse(d, i, &m) < 0);
	for (i = 0; i < 70; i++) {
		ucp_put_le16(d + 1, (uint16_t) i);
		assert_int_equal(parse(d, len, &m) == 0, i == len - 4);
	}
}

/* -------------------------------------------------------------- signing */

static size_t signed_set(unsigned char *d, size_t cap, uint64_t sender, uint64_t seq, uint64_t ts)
{
	size_t len = ucp_udpw_encode_set(d, cap, "key", 3, "value", 5, 1800000100u);

	assert_true(len > 0);
	len = ucp_udpw_sign(d, len, cap, secret, SECRET_LEN, sender, seq, ts);
	assert_true(len > 0);
	return len;
}

static void sign_and_verify(void **state)
{
	unsigned char d[256];
	size_t len = signed_set(d, sizeof(d), 7, 1, NOW), i;
	struct ucp_udpw_msg m;
	unsigned char *c;

	(void) state;
	assert_int_equal(len, 4 + 2 + 3 + 2 + 5 + 2 + 10 + UCP_UDPW_TRAILER);
	assert_int_equal(ucp_le16(d + 1), len - 4);
	c = dup(d, len);
	assert_int_equal(ucp_udpw_parse(c, len, &m), 0);
	assert_true(m.has_trailer);
	assert_int_equal(m.sender, 7);
	assert_int_equal(m.seq, 1);
	assert_int_equal(m.timestamp, NOW);
	assert_int_equal(m.value_len, 5);
	assert_int_equal(m.expires, 1800000100u);
	assert_int_equal(ucp_udpw_verify(c, &m, secret, SECRET_LEN), 0);
	assert_int_equal(ucp_udpw_verify(c, &m, "another-secret-0123", 19), -UCP_UDPW_EMAC);
	free(c);
	/* any flipped bit, header and trailer included, is refused */
	for (i = 0; i < len; i++) {
		int ret;

		c = dup(d, len);
		c[i] ^= 0x10;
		ret = ucp_udpw_parse(c, len, &m);
		if (ret == 0)
			ret = m.has_trailer ? ucp_udpw_verify(c, &m, secret, SECRET_LEN) : -UCP_UDPW_EUNSIGNED;
		if (ret == 0)
			fail_msg("flipped byte %zu accepted", i);
		free(c);
	}
	/* a signed del; and no room for the trailer */
	len = ucp_udpw_encode_del(d, sizeof(d), "key", 3);
	len = ucp_udpw_sign(d, len, sizeof(d), secret, SECRET_LEN, 7, 2, NOW);
	assert_int_equal(parse(d, len, &m), 0);
	assert_int_equal(m.cmd, UCP_UDPW_DEL);
	assert_true(m.has_trailer);
	len = ucp_udpw_encode_del(d, sizeof(d), "key", 3);
	assert_int_equal(ucp_udpw_sign(d, len, len + UCP_UDPW_TRAILER - 1, secret, SECRET_LEN, 7, 3, NOW), 0);
}

/* A stock receiver reads a signed set's key, value and expiry by their
 * lengths (it ignores what follows) and a signed del passes its
 * "4 + klen > pktsize" check: the checks of stock's loop, replayed. */
static void stock_reads_signed(void **state)
{
	unsigned char d[256];
	size_t len = signed_set(d, sizeof(d), 7, 1, NOW);
	uint16_t pktsize = ucp_le16(d + 1), klen = ucp_le16(d + 4), vlen, elen;

	(void) state;
	assert_int_equal(pktsize, len - 4);
	assert_false(4 + klen > pktsize);
	assert_false(klen + 2 + 2 > pktsize);
	vlen = ucp_le16(d + 6 + klen);
	assert_false(4 + klen + vlen > pktsize);
	assert_true(2 + klen + 2 + vlen + 2 < pktsize);
	elen = ucp_le16(d + 8 + klen + vlen);
	assert_false(6 + klen + vlen + elen > pktsize);
	assert_memory_equal(d + 10 + klen + vlen, "1800000100", elen);
	len = ucp_udpw_encode_del(d, sizeof(d), "key", 3);
	assert_false(4 + 3 > ucp_le16(d + 1));      /* padded: passes */
	d[1] = 5;                                   /* unpadded: what stock sends */
	assert_true(4 + 3 > ucp_le16(d + 1));       /* stock drops its own dels */
}

static void accept_pipeline(void **state)
{
	static struct ucp_udpw_guard g = { .window = 30 };
	unsigned char d[256];
	size_t len = ucp_udpw_encode_set(d, sizeof(d), "k", 1, "v", 1, 0);
	struct ucp_udpw_msg m;

	(void) state;
	/* no secret: unsigned accepted */
	assert_int_equal(ucp_udpw_accept(d, len, &m, NULL, 0, NULL, NOW), 0);
	/* a secret: unsigned refused, signed accepted once */
	assert_int_equal(ucp_udpw_accept(d, len, &m, secret, SECRET_LEN, &g, NOW), -UCP_UDPW_EUNSIGNED);
	len = ucp_udpw_sign(d, len, sizeof(d), secret, SECRET_LEN, 9, 1, NOW);
	assert_int_equal(ucp_udpw_accept(d, len, &m, secret, SECRET_LEN, &g, NOW), 0);
	assert_int_equal(ucp_udpw_accept(d, len, &m, secret, SECRET_LEN, &g, NOW), -UCP_UDPW_EREPLAY);
	/* a signed datagram is also fine for a receiver without a secret */
	assert_int_equal(ucp_udpw_accept(d, len, &m, NULL, 0, NULL, NOW), 0);
	assert_int_equal(m.value_len, 1);
	ucp_udpw_guard_free(&g);
}

/* ----------------------------------------------------------- replay guard */

static void guard_window_and_replay(void **state)
{
	static struct ucp_udpw_guard g = { .window = 30 };

	(void) state;
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 1, NOW - 31, NOW), -UCP_UDPW_EWINDOW);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 1, NOW + 31, NOW), -UCP_UDPW_EWINDOW);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 1, NOW - 30, NOW), 0);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 1, NOW, NOW), -UCP_UDPW_EREPLAY);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 0, NOW, NOW), -UCP_UDPW_EREPLAY);
	assert_int_equal(ucp_udpw_guard_check(&g, 0, 9, NOW, NOW), -UCP_UDPW_EREPLAY);
	/* reordering within 64 is fine, each seq once */
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 10, NOW, NOW), 0);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 3, NOW, NOW), 0);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 3, NOW, NOW), -UCP_UDPW_EREPLAY);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 10, NOW, NOW), -UCP_UDPW_EREPLAY);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 80, NOW, NOW), 0);
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 17, NOW, NOW), 0);     /* 63 back */
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 16, NOW, NOW), -UCP_UDPW_EREPLAY); /* 64 back */
	assert_int_equal(ucp_udpw_guard_check(&g, 5, 17, NOW, NOW), -UCP_UDPW_EREPLAY);
	/* another sender has its own sequence */
	assert_int_equal(ucp_udpw_guard_check(&g, 6, 1, NOW, NOW), 0);
	ucp_udpw_guard_free(&g);
}

/* A guard limited to 256 live senders (the old fixed table's size). */
static void guard_table_full(void **state)
{
	static struct ucp_udpw_guard g = { .window = 30, .max = 256 };
	uint64_t i;

	(void) state;
	for (i = 1; i <= 256; i++)
		assert_int_equal(ucp_udpw_guard_check(&g, i, 1, NOW, NOW), 0);
	assert_int_equal(ucp_udpw_guard_check(&g, 1000, 1, NOW, NOW), -UCP_UDPW_EBUSY);
	/* a known sender still gets through */
	assert_int_equal(ucp_udpw_guard_check(&g, 3, 2, NOW, NOW), 0);
	/* quiet for more than the window: entries are reused */
	assert_int_equal(ucp_udpw_guard_check(&g, 1000, 1, NOW + 31, NOW + 31), 0);
	/* an entry forgotten lets no replay in: its datagrams are out of the window */
	assert_int_equal(ucp_udpw_guard_check(&g, 2, 1, NOW, NOW + 31), -UCP_UDPW_EWINDOW);
	ucp_udpw_guard_free(&g);
}

/* n senders (ids from first, random-looking) each send seq 1 and 2 at now,
 * and each replay of them is refused. */
static void senders_once(struct ucp_udpw_guard *g, uint64_t first, uint64_t n, uint64_t now)
{
	uint64_t i, id;

	for (i = 0; i < n; i++) {
		id = (first + i) * UINT64_C(0xD6E8FEB86659FD93) | 1;
		assert_int_equal(ucp_udpw_guard_check(g, id, 1, now, now), 0);
		assert_int_equal(ucp_udpw_guard_check(g, id, 2, now, now), 0);
	}
	for (i = 0; i < n; i++) {
		id = (first + i) * UINT64_C(0xD6E8FEB86659FD93) | 1;
		assert_int_equal(ucp_udpw_guard_check(g, id, 1, now, now), -UCP_UDPW_EREPLAY);
		assert_int_equal(ucp_udpw_guard_check(g, id, 2, now, now), -UCP_UDPW_EREPLAY);
	}
}

/* Issue 18: the 257th sending process (8 nodes of 32 workers + 1) was
 * refused "too many senders" by a fixed 256-entry table. */
static void test_bug_udp_guard_refuses_the_257th_sender(void **state)
{
	struct ucp_udpw_guard g = { .window = 30 };
	size_t cap;

	(void) state;
	senders_once(&g, 1, 5000, NOW);
	cap = g.cap;
	assert_true(cap >= 5000 * 4 / 3 && cap <= 4 * 5000);
	/* a window later, 5000 others: the quiet ones' entries are reused,
	 * the table does not grow, and no replay of either generation gets in */
	senders_once(&g, 100000, 5000, NOW + 31);
	assert_int_equal(g.cap, cap);
	assert_int_equal(ucp_udpw_guard_check(&g, 1 * UINT64_C(0xD6E8FEB86659FD93) | 1, 1, NOW, NOW + 31),
			-UCP_UDPW_EWINDOW);
	ucp_udpw_guard_free(&g);
}

/* The limit that remains: UCP_UDPW_SENDERS heard within one window, in at
 * most 2 * UCP_UDPW_SENDERS slots (4 MiB). */
static void guard_default_limit(void **state)
{
	struct ucp_udpw_guard g = { .window = 30 };
	uint64_t i;

	(void) state;
	for (i = 1; i <= UCP_UDPW_SENDERS; i++)
		assert_int_equal(ucp_udpw_guard_check(&g, i, 1, NOW, NOW), 0);
	assert_int_equal(ucp_udpw_guard_check(&g, UCP_UDPW_SENDERS + 1, 1, NOW, NOW), -UCP_UDPW_EBUSY);
	assert_int_equal(ucp_udpw_guard_check(&g, 7, 2, NOW, NOW), 0);
	assert_int_equal(ucp_udpw_guard_check(&g, 7, 2, NOW, NOW), -UCP_UDPW_EREPLAY);
	assert_true(g.cap <= 2 * UCP_UDPW_SENDERS);
	assert_true(g.cap * sizeof(struct ucp_udpw_sender) <= 4u << 20);
	/* a window later the newcomer gets in, and the table shrinks back */
	assert_int_equal(ucp_udpw_guard_check(&g, UCP_UDPW_SENDERS + 1, 1, NOW + 31, NOW + 31), 0);
	ucp_udpw_guard_free(&g);
	assert_null(g.s);
	/* a freed guard starts again empty */
	assert_int_equal(ucp_udpw_guard_check(&g, 7, 2, NOW, NOW), 0);
	ucp_udpw_guard_free(&g);
}

/* A sender whose clock runs ahead: its entry lives until its timestamps
 * leave the window, so a replay is refused even after the receiver's own
 * quiet time has passed. */
static void guard_forward_skew(void **state)
{
	static struct ucp_udpw_guard g = { .window = 30 };
	uint64_t i;

	(void) state;
	assert_int_equal(ucp_udpw_guard_check(&g, 77, 1, NOW + 29, NOW), 0);
	/* fill the table with others 31 s later */
	for (i = 1; i < UCP_UDPW_SENDERS; i++)
		assert_int_equal(ucp_udpw_guard_check(&g, 100 + i, 1, NOW + 31, NOW + 31), 0);
	assert_int_equal(ucp_udpw_guard_check(&g, 77, 1, NOW + 29, NOW + 31), -UCP_UDPW_EREPLAY);
	ucp_udpw_guard_free(&g);
}

/* -------------------------------------------------------- source networks */

static int matches(const char *net, const char *addr)
{
	struct ucp_udpw_net n;
	unsigned char a[16];
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	assert_int_equal(ucp_udpw_net_parse(net, strlen(net), &n), 0);
	assert_int_equal(inet_pton(family, addr, a), 1);
	return ucp_udpw_net_match(&n, 1, family, a);
}

static void networks(void **state)
{
	static const char *const bad[] = { "", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/",
		"10.0.0.0/-1", "host.example", "10.0.0.1 ", "1.2.3.4/08x" };
	struct ucp_udpw_net n;
	size_t i;

	(void) state;
	assert_true(matches("127.0.0.1", "127.0.0.1"));
	assert_false(matches("127.0.0.1", "127.0.0.2"));
	assert_true(matches("10.0.0.0/8", "10.200.3.4"));
	assert_false(matches("10.0.0.0/8", "11.0.0.1"));
	assert_true(matches("10.1.2.3/8", "10.9.9.9"));      /* host bits ignored */
	assert_true(matches("192.168.1.128/25", "192.168.1.200"));
	assert_false(matches("192.168.1.128/25", "192.168.1.100"));
	assert_true(matches("0.0.0.0/0", "8.8.8.8"));
	assert_true(matches("::1", "::1"));
	assert_true(matches("fd00::/8", "fd12:3456::1"));
	assert_false(matches("fd00::/8", "fe80::1"));
	/* an IPv4 source seen through an IPv6 socket */
	assert_true(matches("127.0.0.0/8", "::ffff:127.0.0.5"));
	assert_false(matches("::1", "127.0.0.1"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ucp_udpw_net_parse(bad[i], strlen(bad[i]), &n) == 0)
			fail_msg("\"%s\" accepted", bad[i]);
}

/* --------------------------------------------------- regression corpus */

static const struct { const char *prefix; int err; } classes[] = {
	{ "short--", UCP_UDPW_ESHORT }, { "mod1--", UCP_UDPW_EMOD1 },
	{ "pktsize--", UCP_UDPW_EPKTSIZE }, { "cmd--", UCP_UDPW_ECMD },
	{ "key--", UCP_UDPW_EKEY }, { "value--", UCP_UDPW_EVALUE },
	{ "expiry--", UCP_UDPW_EEXPIRY }, { "trailing--", UCP_UDPW_ETRAILING },
	{ "unsigned--", UCP_UDPW_EUNSIGNED }, { "mac--", UCP_UDPW_EMAC },
	{ "window--", UCP_UDPW_EWINDOW },
};

static int replay_file(const char *path)
{
	struct ucp_udpw_guard *g = calloc(1, sizeof(*g));
	unsigned char data[70000];
	struct ucp_udpw_msg m;
	FILE *f = fopen(path, "rb");
	size_t n;
	int ret;

	assert_non_null(f);
	assert_non_null(g);
	g->window = 30;
	n = fread(data, 1, sizeof(data), f);
	fclose(f);
	ret = ucp_udpw_accept(data, n, &m, secret, SECRET_LEN, g, NOW);
	ucp_udpw_guard_free(g);
	free(g);
	return ret;
}

static void regression_corpus(void **state)
{
	DIR *d = opendir("tests/fuzz/udp-regressions");
	struct dirent *de;
	unsigned covered = 0;
	size_t i;

	(void) state;
	assert_non_null(d);     /* run from the repository root (make unit) */
	while ((de = readdir(d))) {
		char path[512];
		int err = 0;

		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
			if (!strncmp(de->d_name, classes[i].prefix, strlen(classes[i].prefix)))
				err = classes[i].err;
		if (!err)
			fail_msg("tests/fuzz/udp-regressions/%s: name does not start with a class", de->d_name);
		snprintf(path, sizeof(path), "tests/fuzz/udp-regressions/%s", de->d_name);
		if (replay_file(path) != -err)
			fail_msg("%s: expected %s", path, ucp_udpw_strerror(-err));
		covered |= 1u << err;
	}
	closedir(d);
	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (!(covered & (1u << classes[i].err)))
			fail_msg("no regression datagram for class %s", classes[i].prefix);
	/* and the seeds are accepted (signed ones with the corpus's secret) */
	d = opendir("tests/fuzz/udp-corpus");
	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[512];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "tests/fuzz/udp-corpus/%s", de->d_name);
		if (!strncmp(de->d_name, "signed-", 7))
			assert_int_equal(replay_file(path), 0);
	}
	closedir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stock_set_and_dels),
		cmocka_unit_test(stock_tolerances),
		cmocka_unit_test(encoder_is_stock),
		cmocka_unit_test(encoder_limits),
		cmocka_unit_test(error_classes),
		cmocka_unit_test(every_prefix_and_pktsize),
		cmocka_unit_test(sign_and_verify),
		cmocka_unit_test(stock_reads_signed),
		cmocka_unit_test(accept_pipeline),
		cmocka_unit_test(guard_window_and_replay),
		cmocka_unit_test(guard_table_full),
		cmocka_unit_test(guard_forward_skew),
		cmocka_unit_test(test_bug_udp_guard_refuses_the_257th_sender),
		cmocka_unit_test(guard_default_limit),
		cmocka_unit_test(networks),
		cmocka_unit_test(regression_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
