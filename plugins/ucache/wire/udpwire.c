/*
 * udpwire.c - parse, encode and sign replication datagrams, and the replay
 * guard (udpwire.h has the formats).  No uWSGI, no global state, no
 * allocation but the replay guard's table: safe from any thread (a guard
 * from one at a time); linked alone (with packet.c's byte helpers and
 * libcrypto) by the unit tests and the fuzzer.
 *
 * As in packet.c, a length is compared with the bytes left ("left < n",
 * left never negative) before anything is read through it.
 */
#include "udpwire.h"
#include "packet.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

const char *ucp_udpw_strerror(int err)
{
	return ucp_wire_err_name(err, UCP_UDPW_ESHORT, UCP_UDPW_EMAX);
}

/* ------------------------------------------------------------------ parse */

/* A set's tail after the value: nothing, or elen + decimal text. */
static int parse_expiry(const unsigned char *b, size_t left, struct ucp_udpw_msg *m)
{
	uint16_t elen;

	m->expires = 0;
	if (left == 0)
		return 0;
	if (left < 2)
		return -UCP_UDPW_EEXPIRY;
	elen = ucp_le16(b);
	left -= 2;
	if (left < elen)
		return -UCP_UDPW_EEXPIRY;
	if (elen && ucp_parse_u64((const char *) b + 2, elen, &m->expires))
		return -UCP_UDPW_EEXPIRY;
	return left == elen ? 0 : -UCP_UDPW_ETRAILING;
}

/* The body (n bytes after the header), which must end exactly at n. */
static int parse_body(const unsigned char *b, size_t n, struct ucp_udpw_msg *m)
{
	size_t left = n;
	uint16_t vlen;

	if (left < 2)
		return -UCP_UDPW_EKEY;
	m->key_len = ucp_le16(b);
	left -= 2;
	if (!m->key_len || left < m->key_len)
		return -UCP_UDPW_EKEY;
	m->key = (const char *) b + 2;
	left -= m->key_len;
	b += 2 + m->key_len;
	if (m->cmd == UCP_UDPW_DEL)
		return left == 0 || left == UCP_UDPW_DEL_PAD ? 0 : -UCP_UDPW_ETRAILING;
	if (left < 2)
		return -UCP_UDPW_EVALUE;
	vlen = ucp_le16(b);
	left -= 2;
	if (!vlen || left < vlen)
		return -UCP_UDPW_EVALUE;
	m->value = (const char *) b + 2;
	m->value_len = vlen;
	return parse_expiry(b + 2 + vlen, left - vlen, m);
}

int ucp_udpw_parse(const void *buf, size_t len, struct ucp_udpw_msg *m)
{
	const unsigned char *p = buf;
	const unsigned char *t;
	size_t blen;
	int ret;

	memset(m, 0, sizeof(*m));
	if (len < 4)
		return -UCP_UDPW_ESHORT;
	if (p[0] != UCP_MODIFIER1)
		return -UCP_UDPW_EMOD1;
	if (ucp_le16(p + 1) != len - 4)
		return -UCP_UDPW_EPKTSIZE;
	if (p[3] != UCP_UDPW_SET && p[3] != UCP_UDPW_DEL)
		return -UCP_UDPW_ECMD;
	m->cmd = p[3];
	blen = len - 4;
	ret = parse_body(p + 4, blen, m);
	if (ret == 0)
		return 0;
	if (blen < UCP_UDPW_TRAILER)
		return ret;
	t = p + len - UCP_UDPW_TRAILER;
	if (memcmp(t, UCP_UDPW_MAGIC, 4))
		return ret;
	ret = parse_body(p + 4, blen - UCP_UDPW_TRAILER, m);
	if (ret)
		return ret;
	m->has_trailer = 1;
	m->sender = ucp_le64(t + 4);
	m->seq = ucp_le64(t + 12);
	m->timestamp = ucp_le64(t + 20);
	m->mac_off = len - UCP_UDPW_MAC_LEN;
	return 0;
}

/* ----------------------------------------------------------------- encode */

static unsigned char *put_counted(unsigned char *o, const void *p, uint16_t n)
{
	ucp_put_le16(o, n);
	if (n)
		memcpy(o + 2, p, n);
	return o + 2 + n;
}

static size_t finish(unsigned char *b, unsigned char *end, uint8_t cmd)
{
	size_t len = (size_t) (end - b);

	ucp_header(b, (uint16_t) (len - 4), cmd);
	return len;
}

static size_t room(size_t cap)
{
	return cap < UCP_UDPW_MAX ? cap : UCP_UDPW_MAX;
}

size_t ucp_udpw_encode_set(void *buf, size_t cap, const void *key, uint16_t klen,
		const void *val, size_t vlen, uint64_t expires)
{
	char text[UCP_UDPW_EXPIRY_MAX + 1];
	int tlen = snprintf(text, sizeof(text), "%llu", (unsigned long long) expires);
	unsigned char *b = buf, *o;

	if (!klen || !vlen || tlen <= 0 || vlen > UINT16_MAX ||
			room(cap) < 4 + 2 + (size_t) klen + 2 + vlen + 2 + (size_t) tlen)
		return 0;
	o = put_counted(b + 4, key, klen);
	o = put_counted(o, val, (uint16_t) vlen);
	o = put_counted(o, text, (uint16_t) tlen);
	return finish(b, o, UCP_UDPW_SET);
}

size_t ucp_udpw_encode_del(void *buf, size_t cap, const void *key, uint16_t klen)
{
	unsigned char *b = buf, *o;

	if (!klen || room(cap) < 4 + 2 + (size_t) klen + UCP_UDPW_DEL_PAD)
		return 0;
	o = put_counted(b + 4, key, klen);
	memset(o, 0, UCP_UDPW_DEL_PAD);
	return finish(b, o + UCP_UDPW_DEL_PAD, UCP_UDPW_DEL);
}

/* ----------------------------------------------------------------- signing */

static int mac(const void *secret, size_t secret_len, const void *data, size_t len,
		unsigned char out[UCP_UDPW_MAC_LEN])
{
	unsigned int olen = 0;

	if (secret_len > INT32_MAX)
		return -1;
	if (!HMAC(EVP_sha256(), secret, (int) secret_len, data, len, out, &olen))
		return -1;
	return olen == UCP_UDPW_MAC_LEN ? 0 : -1;
}

size_t ucp_udpw_sign(void *buf, size_t len, size_t cap, const void *secret, size_t secret_len,
		uint64_t sender, uint64_t seq, uint64_t timestamp)
{
	unsigned char *b = buf, *t;
	size_t total = len + UCP_UDPW_TRAILER;

	if (len < 4 || total > room(cap))
		return 0;
	t = b + len;
	memcpy(t, UCP_UDPW_MAGIC, 4);
	ucp_put_le64(t + 4, sender);
	ucp_put_le64(t + 12, seq);
	ucp_put_le64(t + 20, timestamp);
	ucp_header(b, (uint16_t) (total - 4), b[3]);
	if (mac(secret, secret_len, b, total - UCP_UDPW_MAC_LEN, b + total - UCP_UDPW_MAC_LEN))
		return 0;
	return total;
}

int ucp_udpw_verify(const void *buf, const struct ucp_udpw_msg *m, const void *secret,
		size_t secret_len)
{
	unsigned char want[UCP_UDPW_MAC_LEN];
	const unsigned char *b = buf;

	if (!m->has_trailer || mac(secret, secret_len, b, m->mac_off, want))
		return -UCP_UDPW_EMAC;
	return CRYPTO_memcmp(want, b + m->mac_off, UCP_UDPW_MAC_LEN) ? -UCP_UDPW_EMAC : 0;
}

/* ----------------------------------------------------------- replay guard */

/* Slots of the first table (2 KiB); it doubles from there. */
#define GUARD_MIN_CAP 64

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static int expired(const struct ucp_udpw_guard *g, const struct ucp_udpw_sender *s, uint64_t now)
{
	return s->last + g->window < now;
}

static size_t slot_of(uint64_t id, size_t cap)
{
	/* ids are random, but a counting or fixed one (a test, a future
	 * sender) must not pile into one run: mix (Fibonacci hashing) */
	uint64_t h = id * UINT64_C(0x9E3779B97F4A7C15);

	return (size_t) (h ^ (h >> 32)) & (cap - 1);
}

static size_t max_senders(const struct ucp_udpw_guard *g)
{
	return g->max ? g->max : UCP_UDPW_SENDERS;
}

/* The slot holding id, else the first reusable slot of its run (an expired
 * entry, or the free slot ending the run: there is always one, the table
 * is never more than 3/4 full); NULL while there is no table. */
static struct ucp_udpw_sender *probe(struct ucp_udpw_guard *g, uint64_t id, uint64_t now)
{
	struct ucp_udpw_sender *spare = NULL;
	size_t i;

	if (!g->cap)
		return NULL;
	for (i = slot_of(id, g->cap);; i = (i + 1) & (g->cap - 1)) {
		struct ucp_udpw_sender *s = &g->s[i];

		if (s->id == id)
			return s;
		if (!s->id)
			return spare ? spare : s;
		if (!spare && expired(g, s, now))
			spare = s;
	}
}

/* A new table of at least twice the live senders (with the one arriving)
 * and GUARD_MIN_CAP slots, without the expired ones.  0, or
 * -UCP_UDPW_EBUSY: more than max live senders, or no memory. */
static int rehash(struct ucp_udpw_guard *g, uint64_t now)
{
	size_t live = 1, cap = GUARD_MIN_CAP, i, j;
	struct ucp_udpw_sender *t;

	for (i = 0; i < g->cap; i++)
		live += g->s[i].id && !expired(g, &g->s[i], now);
	if (live > max_senders(g))
		return -UCP_UDPW_EBUSY;
	while (cap < 2 * live)
		cap *= 2;
	t = calloc(cap, sizeof(*t));
	if (!t)
		return -UCP_UDPW_EBUSY;
	for (i = 0; i < g->cap; i++) {
		if (!g->s[i].id || expired(g, &g->s[i], now))
			continue;
		for (j = slot_of(g->s[i].id, cap); t[j].id; j = (j + 1) & (cap - 1))
			;
		t[j] = g->s[i];
	}
	free(g->s);
	g->s = t;
	g->cap = cap;
	g->used = live - 1;
	return 0;
}

/* id's entry, a new one (in an expired entry's slot or a free one), or
 * NULL (-UCP_UDPW_EBUSY). */
static struct ucp_udpw_sender *find_sender(struct ucp_udpw_guard *g, uint64_t id, uint64_t now)
{
	struct ucp_udpw_sender *s = probe(g, id, now);

	if (s && s->id == id)
		return s;
	/* a free slot: past 3/4 full, or past max (live or expired), rehash
	 * to count the live ones (an expired entry's slot costs nothing) */
	if (!s || (!s->id && ((g->used + 1) * 4 > g->cap * 3 || g->used + 1 > max_senders(g)))) {
		if (rehash(g, now))
			return NULL;
		s = probe(g, id, now);
	}
	if (!s->id)
		g->used++;
	memset(s, 0, sizeof(*s));
	s->id = id;
	return s;
}

void ucp_udpw_guard_free(struct ucp_udpw_guard *g)
{
	free(g->s);
	g->s = NULL;
	g->cap = g->used = 0;
}

int ucp_udpw_guard_check(struct ucp_udpw_guard *g, uint64_t sender, uint64_t seq,
		uint64_t timestamp, uint64_t now)
{
	struct ucp_udpw_sender *s;
	uint64_t back;

	if (timestamp > now ? timestamp - now > g->window : now - timestamp > g->window)
		return -UCP_UDPW_EWINDOW;
	if (!sender || !seq)
		return -UCP_UDPW_EREPLAY;
	s = find_sender(g, sender, now);
	if (!s)
		return -UCP_UDPW_EBUSY;
	if (!s->top) {
		s->top = seq;
		s->bits = 1;
	} else if (seq > s->top) {
		back = seq - s->top;
		s->bits = back >= 64 ? 1 : (s->bits << back) | 1;
		s->top = seq;
	} else {
		back = s->top - seq;
		if (back >= 64 || (s->bits & (UINT64_C(1) << back)))
			return -UCP_UDPW_EREPLAY;
		s->bits |= UINT64_C(1) << back;
	}
	s->last = max64(s->last, max64(now, timestamp));
	return 0;
}

int ucp_udpw_accept(const void *buf, size_t len, struct ucp_udpw_msg *m, const void *secret,
		size_t secret_len, struct ucp_udpw_guard *g, uint64_t now)
{
	int ret = ucp_udpw_parse(buf, len, m);

	if (ret || !secret_len)
		return ret;
	if (!m->has_trailer)
		return -UCP_UDPW_EUNSIGNED;
	ret = ucp_udpw_verify(buf, m, secret, secret_len);
	if (ret)
		return ret;
	return ucp_udpw_guard_check(g, m->sender, m->seq, m->timestamp, now);
}

/* -------------------------------------------------------- source networks */

static void mask_host_bits(unsigned char *a, unsigned bytes, unsigned prefix)
{
	unsigned i;

	for (i = 0; i < bytes; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
		a[i] &= (unsigned char) (0xff00u >> keep);
	}
}

int ucp_udpw_net_parse(const char *s, size_t len, struct ucp_udpw_net *out)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *slash;
	uint64_t prefix;
	unsigned bits;

	memset(out, 0, sizeof(*out));
	if (!len || len >= sizeof(text))
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	slash = strchr(text, '/');
	if (slash)
		text[slash - text] = '\0';
	if (inet_pton(AF_INET, text, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, text, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -1;
	bits = out->family == AF_INET ? 32 : 128;
	out->prefix = bits;
	if (slash) {
		if (ucp_parse_u64(slash + 1, strlen(slash + 1), &prefix) || prefix > bits)
			return -1;
		out->prefix = (unsigned) prefix;
	}
	mask_host_bits(out->addr, bits / 8, out->prefix);
	return 0;
}

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int ucp_udpw_net_match(const struct ucp_udpw_net *nets, size_t n, int family, const void *addr)
{
	unsigned char a[16];
	unsigned bytes;
	size_t i;

	if (family == AF_INET6 && !memcmp(addr, v4mapped, sizeof(v4mapped))) {
		family = AF_INET;
		addr = (const unsigned char *) addr + sizeof(v4mapped);
	}
	if (family != AF_INET && family != AF_INET6)
		return 0;
	bytes = family == AF_INET ? 4 : 16;
	for (i = 0; i < n; i++) {
		if (nets[i].family != family)
			continue;
		memcpy(a, addr, bytes);
		mask_host_bits(a, bytes, nets[i].prefix);
		if (!memcmp(a, nets[i].addr, bytes))
			return 1;
	}
	return 0;
}
