/*
 * fuzz_proto.c - libFuzzer target for the modifier1 111 parser
 * (plugins/ucache/proto.c), the code that reads untrusted packets.
 *
 * Input: bytes as they arrive on a uwsgi socket, a 4-byte header (modifier1,
 * pktsize u16 LE, modifier2) then the body.  uWSGI hands the plugin exactly
 * pktsize bytes, so the body is copied into a buffer of exactly that size:
 * any read past the packet is an ASan report.  A pktsize larger than the
 * input is clamped (the core never delivers a short packet; the parser
 * still gets fuzzed on what is there).
 *
 * Checked besides memory safety (a violation is __builtin_trap()):
 *   - a parse either succeeds or returns -UCP_PERR_* with a name;
 *   - every pointer a successful parse returns lies inside the body, and a
 *     command that needs a key has a non-empty one;
 *   - the reply-side parser (ucp_magic_parse), the dump reader
 *     (ucp_dump_record_parse) and the key listing's entry reader
 *     (ucp_keys_entry_parse) never claim more bytes than they were given;
 *   - a dump reply (modifier2 7) is also read as stock's raw image
 *     (image.c): the vars after the header, the image after them (past
 *     pktsize, as on the wire), with uWSGI 2.0.21's item layout; every
 *     item the walk hands out lies inside the image (tests/fuzz/images/
 *     has the regression inputs).
 *
 * Built two ways by the Makefile: with -fsanitize=fuzzer for `make fuzz`,
 * and with replay.c's main() for `make test` (tests/fuzz/regressions/).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "proto.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* Inside [lo, lo + len)?  Reads every byte so that ASan sees the range. */
static void in_body(const char *p, size_t n, const char *lo, size_t len)
{
	volatile unsigned sum = 0;
	size_t i;

	if (!p) {
		CHECK(n == 0);
		return;
	}
	CHECK(p >= lo && n <= len && (size_t) (p - lo) <= len - n);
	for (i = 0; i < n; i++)
		sum += (unsigned char) p[i];
	(void) sum;
}

static void check_request(const char *body, size_t len, const struct ucp_request *r)
{
	in_body(r->key, r->key_len, body, len);
	in_body(r->value, r->value_len, body, len);
	in_body(r->cache, r->cache_len, body, len);
	in_body(r->tags, r->tags_len, body, len);
	in_body(r->inm, r->inm_len, body, len);
	if (r->cmd == UCP_CMD_INVALIDATE)
		CHECK(r->tags && r->tags_len > 0);
	else if (r->cmd != UCP_CMD_CLEAR && r->cmd != UCP_CMD_DUMP && r->cmd != UCP_CMD_KEYS)
		CHECK(r->key && r->key_len > 0 && r->key_len <= UCP_KEY_MAX);
	if (r->cmd == UCP_CMD_KEYS)
		CHECK(ucp_keys_count(r) >= 1 && ucp_keys_count(r) <= UCP_KEYS_COUNT_MAX);
	if (r->modifier2 == UCP_M2_SET)
		CHECK(r->value && r->value_len > 0);
	if (r->cmd == UCP_CMD_SET || r->cmd == UCP_CMD_UPDATE)
		CHECK(r->modifier2 == UCP_M2_SET || r->size > 0);
	if (r->cmd != UCP_CMD_GET && r->cmd != UCP_CMD_EXISTS)
		CHECK(r->write);
}

/* The body as a stored HTTP response: its ETag lies inside it, and an
 * If-None-Match (the request's, or the body itself) is compared safely. */
static void fuzz_http(const char *body, size_t len, const struct ucp_request *r)
{
	const char *etag, *tag;
	size_t elen, pos = 0, tlen;
	char out[UCP_HTTP_304_FIXED + 64];

	if (ucp_http_etag(body, len, &etag, &elen) == 0) {
		in_body(etag, elen, body, len);
		(void) ucp_etag_match(body, len, etag, elen);
		if (r && r->inm)
			(void) ucp_etag_match(r->inm, r->inm_len, etag, elen);
		CHECK(ucp_http_304(out, sizeof(out), etag, elen) <= sizeof(out));
	}
	while (ucp_tags_next(body, len, &pos, &tag, &tlen))
		in_body(tag, tlen, body, len);
}

static void fuzz_request(uint8_t modifier2, const char *body, size_t len)
{
	struct ucp_request r;
	struct ucp_magic m;
	int rc = ucp_request_parse(modifier2, body, len, &r);

	if (rc == 0)
		check_request(body, len, &r);
	else
		CHECK(rc < 0 && -rc < UCP_PERR_MAX && ucp_perr_str(rc));
	fuzz_http(body, len, rc == 0 ? &r : NULL);
	if (ucp_magic_parse(body, len, &m) == 0) {
		in_body(m.cmd, m.cmd_len, body, len);
		in_body(m.key, m.key_len, body, len);
		in_body(m.cache, m.cache_len, body, len);
		in_body(m.status, m.status_len, body, len);
		in_body(m.tags, m.tags_len, body, len);
	}
}

/* Read the body as a key listing's entries (proto.h "keys"). */
static void fuzz_keys(const char *body, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		struct ucp_keys_entry e;
		long n = ucp_keys_entry_parse(body + pos, len - pos, &e);
		if (n <= 0)
			break;
		CHECK((size_t) n <= len - pos);
		in_body(e.key, e.key_len, body, len);
		pos += (size_t) n;
	}
}

/* Read the body as a dump stream: records until the end or a need for more. */
static void fuzz_dump(const char *body, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		struct ucp_dump_record rec;
		long long n = ucp_dump_record_parse(body + pos, len - pos, 1u << 20, &rec);
		if (n <= 0)
			break;
		CHECK((size_t) n <= len - pos);
		if (!rec.end) {
			in_body(rec.key, rec.key_len, body, len);
			in_body(rec.value, (size_t) rec.value_len, body, len);
		}
		pos += (size_t) n;
	}
}

/* struct uwsgi_cache_item of uWSGI 2.0.21: 11 u64 fields, then the key. */
static const struct ucp_image_layout layout = {
	.size = 88, .flags = 0, .keysize = 8, .hash = 16, .valsize = 24, .first_block = 32,
	.expires = 40, .hits = 48, .prev = 56, .next = 64, .lru_prev = 72, .lru_next = 80,
	.skip_flags = 1,
};

struct walk_ctx {
	const uint8_t *img;
	size_t len;
	uint64_t seen;
};

static void on_item(void *ud, const struct ucp_image_item *it)
{
	struct walk_ctx *w = ud;

	in_body((const char *) it->key, (size_t) it->key_len, (const char *) w->img, w->len);
	in_body((const char *) it->value, (size_t) it->value_len, (const char *) w->img, w->len);
	w->seen++;
}

/* The vars choose the geometry (bounded, so one input stays fast); the
 * guess is exercised against the receiver's geometry too. */
static void fuzz_image(const char *vars, size_t vlen, const uint8_t *img, size_t len)
{
	struct ucp_image_geom own = { .items = 100, .keysize = 64, .blocksize = 256, .blocks = 100 }, g;
	struct ucp_image_counts counts;
	struct walk_ctx w = { img, len, 0 };
	struct ucp_dump_head h;

	if (ucp_dump_head_parse(vars, vlen, &h))
		return;
	if (ucp_image_guess(&layout, h.items, h.blocksize, len, &own, &g) == 0) {
		CHECK(ucp_image_size(&layout, &g) == len);
		ucp_image_walk(&layout, &g, img, len, 2000000000u, 65534, on_item, &w, &counts);
		CHECK(counts.live == w.seen);
	}
	g.items = h.items % 4096;
	g.blocksize = h.blocksize % 65536;
	g.keysize = h.keysize % 4096;
	g.blocks = h.blocks % 65536;
	w.seen = 0;
	ucp_image_walk(&layout, &g, img, len, 2000000000u, 65534, on_item, &w, &counts);
	CHECK(counts.live == w.seen && counts.live + counts.expired + counts.invalid < (g.items ? g.items : 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	char *body;

	if (size < UCP_HEADER_SIZE)
		return 0;
	len = ucp_le16(data + 1);
	if (len > size - UCP_HEADER_SIZE)
		len = size - UCP_HEADER_SIZE;
	body = malloc(len ? len : 1);
	if (!body)
		return 0;
	memcpy(body, data + UCP_HEADER_SIZE, len);
	fuzz_request(data[3], body, len);
	fuzz_dump(body, len);
	fuzz_keys(body, len);
	if (data[3] == UCP_M2_DUMP_REPLY) {
		size_t ilen = size - UCP_HEADER_SIZE - len;
		uint8_t *img = malloc(ilen ? ilen : 1);

		if (img) {
			memcpy(img, data + UCP_HEADER_SIZE + len, ilen);
			fuzz_image(body, len, img, ilen);
			free(img);
		}
	}
	free(body);
	return 0;
}
