/*
 * proto.c - parse and encode the modifier1 111 wire protocol (proto.h has
 * the formats).  No uWSGI, no allocation, no state: safe from any thread,
 * and linked alone by the unit tests and the fuzzer.
 *
 * The parser's one rule: a length is compared with the bytes left before
 * anything is read through it.  Comparisons are written as "left < n"
 * (left = len - pos, never negative) so that no sum can overflow.
 */
#include "proto.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

int ucp_streq(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len == n && (n == 0 || memcmp(s, lit, n) == 0);
}

int ucp_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned) (unsigned char) s[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

uint16_t ucp_le16(const void *p)
{
	const unsigned char *u = p;

	return (uint16_t) (u[0] | (u[1] << 8));
}

uint64_t ucp_le64(const void *p)
{
	const unsigned char *u = p;
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | u[i];
	return v;
}

void ucp_put_le16(void *p, uint16_t v)
{
	unsigned char *u = p;

	u[0] = (unsigned char) v;
	u[1] = (unsigned char) (v >> 8);
}

void ucp_put_le64(void *p, uint64_t v)
{
	unsigned char *u = p;
	int i;

	for (i = 0; i < 8; i++, v >>= 8)
		u[i] = (unsigned char) v;
}

void ucp_header(void *out, uint16_t pktsize, uint8_t modifier2)
{
	unsigned char *u = out;

	u[0] = UCP_MODIFIER1;
	ucp_put_le16(u + 1, pktsize);
	u[3] = modifier2;
}

static const char *const perr_names[UCP_PERR_MAX] = {
	[0] = "ok",
	[UCP_PERR_EMPTY] = "empty body",
	[UCP_PERR_TRUNCATED] = "truncated (a length runs past the packet)",
	[UCP_PERR_VARNAME] = "var with an empty name",
	[UCP_PERR_NUMBER] = "size or expires is not a number",
	[UCP_PERR_NOKEY] = "no key",
	[UCP_PERR_KEYSIZE] = "key too long",
	[UCP_PERR_ARRAY] = "set without key and value",
	[UCP_PERR_COMMAND] = "missing or unknown cmd",
	[UCP_PERR_SIZE] = "bad size",
	[UCP_PERR_MODIFIER2] = "unknown modifier2",
	[UCP_PERR_TAGS] = "invalidate without tags (or with an empty one)",
};

const char *ucp_perr_str(int err)
{
	if (err < 0)
		err = -err;
	if (err >= UCP_PERR_MAX)
		return "unknown error";
	return perr_names[err];
}

/* ------------------------------------------------------------------ vars */

struct vars_iter {
	const char *buf;
	size_t len, pos;
};

/* The next var: 1 with (k, kl, v, vl) set, 0 at the end, or -UCP_PERR_*. */
static int vars_next(struct vars_iter *it, const char **k, uint16_t *kl, const char **v, uint16_t *vl)
{
	size_t left = it->len - it->pos;

	if (left == 0)
		return 0;
	if (left < 2)
		return -UCP_PERR_TRUNCATED;
	*kl = ucp_le16(it->buf + it->pos);
	if (*kl == 0)
		return -UCP_PERR_VARNAME;
	if (left - 2 < (size_t) *kl + 2)
		return -UCP_PERR_TRUNCATED;
	*k = it->buf + it->pos + 2;
	*vl = ucp_le16(*k + *kl);
	left -= 4 + (size_t) *kl;
	if (left < *vl)
		return -UCP_PERR_TRUNCATED;
	*v = *k + *kl + 2;
	it->pos += 4 + (size_t) *kl + *vl;
	return 1;
}

enum ucp_cmd ucp_cmd_parse(const char *s, size_t len)
{
	static const struct { const char *name; enum ucp_cmd cmd; } cmds[] = {
		{ "get", UCP_CMD_GET }, { "set", UCP_CMD_SET }, { "update", UCP_CMD_UPDATE },
		{ "del", UCP_CMD_DEL }, { "exists", UCP_CMD_EXISTS }, { "clear", UCP_CMD_CLEAR },
		{ "invalidate", UCP_CMD_INVALIDATE }, { "keys", UCP_CMD_KEYS },
	};
	size_t i;

	for (i = 0; s && i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (ucp_streq(s, len, cmds[i].name))
			return cmds[i].cmd;
	}
	return UCP_CMD_NONE;
}

typedef int (*vars_field_fn)(void *ctx, const char *k, uint16_t kl, const char *v, uint16_t vl);

/* Hand every var of buf to field; stop at its first non-zero return.
 * 0, or -UCP_PERR_* (the iterator's or field's). */
static int vars_each(const char *buf, size_t len, vars_field_fn field, void *ctx)
{
	struct vars_iter it = { buf, len, 0 };
	const char *k, *v;
	uint16_t kl, vl;
	int rc;

	while ((rc = vars_next(&it, &k, &kl, &v, &vl)) > 0) {
		rc = field(ctx, k, kl, v, vl);
		if (rc)
			return rc;
	}
	return rc;
}

/* Store one var into m; unknown names are ignored (as the stock does). */
static int magic_field(void *ctx, const char *k, uint16_t kl, const char *v, uint16_t vl)
{
	struct ucp_magic *m = ctx;

	if (ucp_streq(k, kl, "cmd")) {
		m->cmd = v;
		m->cmd_len = vl;
	} else if (ucp_streq(k, kl, "key")) {
		m->key = v;
		m->key_len = vl;
	} else if (ucp_streq(k, kl, "cache")) {
		m->cache = v;
		m->cache_len = vl;
	} else if (ucp_streq(k, kl, "tags")) {
		m->tags = v;
		m->tags_len = vl;
	} else if (ucp_streq(k, kl, "status")) {
		m->status = v;
		m->status_len = vl;
	} else if (ucp_streq(k, kl, "size")) {
		m->has_size = 1;
		return ucp_parse_u64(v, vl, &m->size) ? -UCP_PERR_NUMBER : 0;
	} else if (ucp_streq(k, kl, "expires")) {
		return ucp_parse_u64(v, vl, &m->expires) ? -UCP_PERR_NUMBER : 0;
	} else if (ucp_streq(k, kl, "cursor")) {
		return ucp_parse_u64(v, vl, &m->cursor) ? -UCP_PERR_NUMBER : 0;
	} else if (ucp_streq(k, kl, "count")) {
		return ucp_parse_u64(v, vl, &m->count) ? -UCP_PERR_NUMBER : 0;
	}
	return 0;
}

int ucp_magic_parse(const char *buf, size_t len, struct ucp_magic *m)
{
	memset(m, 0, sizeof(*m));
	return vars_each(buf, len, magic_field, m);
}

/* -------------------------------------------------------------- requests */

/* modifier2 0, 2, 5: the whole body is the key. */
static int parse_raw_key(const char *body, size_t len, struct ucp_request *r)
{
	if (len == 0)
		return -UCP_PERR_EMPTY;
	if (len > UCP_KEY_MAX)
		return -UCP_PERR_KEYSIZE;
	r->key = body;
	r->key_len = (uint16_t) len;
	return 0;
}

/* modifier2 1: array key, value.  Like the stock uwsgi_parse_array(),
 * empty items are skipped and items after the second are ignored; unlike
 * it, every item must lie inside the packet. */
static int parse_set(const char *body, size_t len, struct ucp_request *r)
{
	const char *item[2] = { NULL, NULL };
	uint16_t ilen[2] = { 0, 0 };
	size_t pos = 0;
	int n = 0;

	if (len == 0)
		return -UCP_PERR_EMPTY;
	while (pos < len) {
		uint16_t l;
		if (len - pos < 2)
			return -UCP_PERR_TRUNCATED;
		l = ucp_le16(body + pos);
		pos += 2;
		if (len - pos < l)
			return -UCP_PERR_TRUNCATED;
		if (l && n < 2) {
			item[n] = body + pos;
			ilen[n++] = l;
		}
		pos += l;
	}
	if (n < 2)
		return -UCP_PERR_ARRAY;
	if (ilen[0] > UCP_KEY_MAX)
		return -UCP_PERR_KEYSIZE;
	r->key = item[0];
	r->key_len = ilen[0];
	r->value = item[1];
	r->value_len = ilen[1];
	return 0;
}

/* modifier2 3/4: vars; the first non-empty "key" or "get" is the key.  A
 * miss is a 404 for modifier2 4 and for a "get" var (the stock rule).  A
 * REQUEST_METHOD other than GET or HEAD (nginx passes $request_method)
 * sets http_pass; none (stock's recipe passes no method) reads as GET. */
static int parse_http(const char *body, size_t len, struct ucp_request *r)
{
	struct vars_iter it = { body, len, 0 };
	const char *k, *v;
	uint16_t kl, vl;
	int rc;

	if (len == 0)
		return -UCP_PERR_EMPTY;
	r->http = 1;
	r->http_404 = r->modifier2 == UCP_M2_HTTP_GET;
	while ((rc = vars_next(&it, &k, &kl, &v, &vl)) > 0) {
		int is_get = ucp_streq(k, kl, "get");
		if (ucp_streq(k, kl, "cache")) {
			r->cache = vl ? v : NULL;
			r->cache_len = vl;
			continue;
		}
		if (ucp_streq(k, kl, "HTTP_IF_NONE_MATCH")) {
			r->inm = vl ? v : NULL;
			r->inm_len = vl;
			continue;
		}
		if (ucp_streq(k, kl, "REQUEST_METHOD")) {
			r->http_pass = vl && !ucp_streq(v, vl, "GET") && !ucp_streq(v, vl, "HEAD");
			continue;
		}
		if (r->key || vl == 0 || !(is_get || ucp_streq(k, kl, "key")))
			continue;
		if (vl > UCP_KEY_MAX)
			return -UCP_PERR_KEYSIZE;
		r->key = v;
		r->key_len = vl;
		r->http_404 |= is_get;
	}
	if (rc)
		return rc;
	return r->key ? 0 : -UCP_PERR_NOKEY;
}

int ucp_tags_next(const char *tags, size_t len, size_t *pos, const char **tag, size_t *tlen)
{
	const char *comma;

	if (*pos >= len)
		return 0;
	*tag = tags + *pos;
	comma = memchr(*tag, ',', len - *pos);
	*tlen = comma ? (size_t) (comma - *tag) : len - *pos;
	*pos += *tlen + 1;
	return 1;
}

/* At least one tag, none empty ("a,,b", ",a" and "a," are refused). */
static int tags_ok(const char *tags, size_t len)
{
	const char *tag;
	size_t pos = 0, tlen;

	if (!tags || !len || tags[len - 1] == ',')
		return 0;
	while (ucp_tags_next(tags, len, &pos, &tag, &tlen)) {
		if (!tlen)
			return 0;
	}
	return 1;
}

static int parse_magic(const char *body, size_t len, struct ucp_request *r)
{
	struct ucp_magic m;
	int rc;

	if (len == 0)
		return -UCP_PERR_EMPTY;
	rc = ucp_magic_parse(body, len, &m);
	if (rc)
		return rc;
	r->cmd = ucp_cmd_parse(m.cmd, m.cmd_len);
	if (r->cmd == UCP_CMD_NONE)
		return -UCP_PERR_COMMAND;
	if (r->cmd == UCP_CMD_INVALIDATE && !tags_ok(m.tags, m.tags_len))
		return -UCP_PERR_TAGS;
	if (r->cmd != UCP_CMD_CLEAR && r->cmd != UCP_CMD_INVALIDATE && r->cmd != UCP_CMD_KEYS &&
			(!m.key || !m.key_len))
		return -UCP_PERR_NOKEY;
	if ((r->cmd == UCP_CMD_SET || r->cmd == UCP_CMD_UPDATE) && (!m.has_size || !m.size))
		return -UCP_PERR_SIZE;
	r->key = m.key;
	r->key_len = m.key_len;
	r->cache = m.cache;
	r->cache_len = m.cache_len;
	r->tags = m.tags;
	r->tags_len = m.tags_len;
	r->expires = m.expires;
	r->size = m.size;
	r->cursor = m.cursor;
	r->count = m.count;
	r->write = r->cmd != UCP_CMD_GET && r->cmd != UCP_CMD_EXISTS;
	return 0;
}

/* 6: ucache's vars (native), else the whole body is a cache name. */
static int parse_dump(const char *body, size_t len, struct ucp_request *r)
{
	struct ucp_dump_head h;

	if (len && ucp_dump_head_parse(body, len, &h) == 0 && ucp_dump_head_native(&h)) {
		r->native = 1;
		r->cache = h.cache_len ? h.cache : NULL;
		r->cache_len = h.cache_len;
		return 0;
	}
	r->cache = len ? body : NULL;
	r->cache_len = (uint16_t) (len > UINT16_MAX ? UINT16_MAX : len);
	return 0;
}

int ucp_request_parse(uint8_t modifier2, const char *body, size_t len, struct ucp_request *r)
{
	memset(r, 0, sizeof(*r));
	r->modifier2 = modifier2;
	switch (modifier2) {
	case UCP_M2_GET:
	case UCP_M2_STREAM:
		r->cmd = UCP_CMD_GET;
		return parse_raw_key(body, len, r);
	case UCP_M2_DEL:
		r->cmd = UCP_CMD_DEL;
		r->write = 1;
		return parse_raw_key(body, len, r);
	case UCP_M2_SET:
		r->cmd = UCP_CMD_SET;
		r->write = 1;
		return parse_set(body, len, r);
	case UCP_M2_HTTP_KEY:
	case UCP_M2_HTTP_GET:
		r->cmd = UCP_CMD_GET;
		return parse_http(body, len, r);
	case UCP_M2_DUMP:
		r->cmd = UCP_CMD_DUMP;
		r->write = 1;
		return parse_dump(body, len, r);
	case UCP_M2_MAGIC:
		return parse_magic(body, len, r);
	default:
		return -UCP_PERR_MODIFIER2;
	}
}

/* ---------------------------------------------------------- magic reply */

/* Append var (k, v) at out; returns the bytes written. */
static size_t put_var(char *out, const char *k, const char *v, size_t vl)
{
	size_t kl = strlen(k);

	ucp_put_le16(out, (uint16_t) kl);
	memcpy(out + 2, k, kl);
	ucp_put_le16(out + 2 + kl, (uint16_t) vl);
	memcpy(out + 4 + kl, v, vl);
	return 4 + kl + vl;
}

static size_t put_num_var(char *out, const char *k, uint64_t num)
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long) num);

	return put_var(out, k, digits, (size_t) n);
}

size_t ucp_magic_reply_head(char *out, int with_value, uint64_t size, uint64_t expires)
{
	size_t pos = UCP_HEADER_SIZE;

	pos += put_var(out + pos, "status", "ok", 2);
	if (with_value) {
		pos += put_num_var(out + pos, "size", size);
		if (expires)
			pos += put_num_var(out + pos, "expires", expires);
	}
	ucp_header(out, (uint16_t) (pos - UCP_HEADER_SIZE), UCP_M2_MAGIC);
	return pos;
}

/* ------------------------------------------------------------------ HTTP */

const char ucp_http_404[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
	"Content-Length: 9\r\n\r\nNot Found";
const size_t ucp_http_404_len = sizeof(ucp_http_404) - 1;

int ucp_http_is_response(const char *v, size_t len)
{
	return len >= 5 && memcmp(v, "HTTP/", 5) == 0;
}

/* The end of the head of an HTTP response (after its blank line), or len. */
static size_t head_end(const char *resp, size_t len)
{
	const char *end = memmem(resp, len, "\r\n\r\n", 4);

	return end ? (size_t) (end - resp) + 4 : len;
}

static int lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

int ucp_http_etag(const char *resp, size_t len, const char **etag, size_t *elen)
{
	size_t hend = head_end(resp, len), pos = 0;

	while (pos < hend) {
		const char *line = resp + pos, *eol = memchr(line, '\n', hend - pos);
		size_t llen = eol ? (size_t) (eol - line) : hend - pos, i;

		pos += llen + 1;
		if (llen && line[llen - 1] == '\r')
			llen--;
		if (llen < 5)
			continue;
		for (i = 0; i < 5 && lower((unsigned char) line[i]) == "etag:"[i]; i++)
			;
		if (i < 5)
			continue;
		while (i < llen && (line[i] == ' ' || line[i] == '\t'))
			i++;
		while (llen > i && (line[llen - 1] == ' ' || line[llen - 1] == '\t'))
			llen--;
		if (i == llen)
			return -1;
		*etag = line + i;
		*elen = llen - i;
		return 0;
	}
	return -1;
}

/* An entity tag without its weakness prefix. */
static void strip_weak(const char **t, size_t *len)
{
	if (*len >= 2 && (*t)[0] == 'W' && (*t)[1] == '/') {
		*t += 2;
		*len -= 2;
	}
}

int ucp_etag_match(const char *inm, size_t inm_len, const char *etag, size_t elen)
{
	size_t pos = 0;

	strip_weak(&etag, &elen);
	while (pos < inm_len) {
		const char *t;
		size_t tl;

		while (pos < inm_len && (inm[pos] == ' ' || inm[pos] == '\t' || inm[pos] == ','))
			pos++;
		t = inm + pos;
		while (pos < inm_len && inm[pos] != ',')
			pos++;
		tl = (size_t) (inm + pos - t);
		while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
			tl--;
		if (tl == 1 && t[0] == '*')
			return 1;
		strip_weak(&t, &tl);
		if (tl && tl == elen && !memcmp(t, etag, elen))
			return 1;
	}
	return 0;
}

size_t ucp_http_304(char *out, size_t outlen, const char *etag, size_t elen)
{
	static const char a[] = "HTTP/1.1 304 Not Modified\r\nETag: ", b[] = "\r\n\r\n";
	size_t n = sizeof(a) - 1 + elen + sizeof(b) - 1;

	if (n > outlen)
		return 0;
	memcpy(out, a, sizeof(a) - 1);
	memcpy(out + sizeof(a) - 1, etag, elen);
	memcpy(out + sizeof(a) - 1 + elen, b, sizeof(b) - 1);
	return n;
}

size_t ucp_http_head(char *out, uint64_t clen)
{
	int n = snprintf(out, UCP_HTTP_HEAD_MAX, "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n",
			(unsigned long long) clen);

	return n > 0 && n < UCP_HTTP_HEAD_MAX ? (size_t) n : 0;
}

/* ------------------------------------------------------------------ dump */

static int head_field(void *ctx, const char *k, uint16_t kl, const char *v, uint16_t vl)
{
	struct ucp_dump_head *h = ctx;
	static const struct { const char *name; size_t off; } nums[] = {
		{ "version", offsetof(struct ucp_dump_head, version) },
		{ "items", offsetof(struct ucp_dump_head, items) },
		{ "blocksize", offsetof(struct ucp_dump_head, blocksize) },
		{ "blocks", offsetof(struct ucp_dump_head, blocks) },
		{ "keysize", offsetof(struct ucp_dump_head, keysize) },
		{ "max_value", offsetof(struct ucp_dump_head, max_value) },
	};
	size_t i;

	if (ucp_streq(k, kl, "format")) {
		h->format = v;
		h->format_len = vl;
	} else if (ucp_streq(k, kl, "cache")) {
		h->cache = v;
		h->cache_len = vl;
	}
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (!ucp_streq(k, kl, nums[i].name))
			continue;
		h->has_items |= i == 1;
		h->has_blocksize |= i == 2;
		return ucp_parse_u64(v, vl, (uint64_t *) ((char *) h + nums[i].off)) ? -UCP_PERR_NUMBER : 0;
	}
	return 0;
}

int ucp_dump_head_parse(const char *buf, size_t len, struct ucp_dump_head *h)
{
	memset(h, 0, sizeof(*h));
	return vars_each(buf, len, head_field, h);
}

int ucp_dump_head_native(const struct ucp_dump_head *h)
{
	return h->format && ucp_streq(h->format, h->format_len, UCP_DUMP_FORMAT);
}

size_t ucp_dump_request(char *out, const char *name, uint16_t len)
{
	size_t n = UCP_HEADER_SIZE;

	n += put_var(out + n, "format", UCP_DUMP_FORMAT, sizeof(UCP_DUMP_FORMAT) - 1);
	n += put_var(out + n, "version", "1", 1);
	if (len)
		n += put_var(out + n, "cache", name, len);
	ucp_header(out, (uint16_t) (n - UCP_HEADER_SIZE), UCP_M2_DUMP);
	return n;
}

void ucp_dump_record_head(void *out, uint16_t klen, uint64_t vlen, uint64_t expires)
{
	unsigned char *u = out;

	ucp_put_le16(u, klen);
	ucp_put_le64(u + 2, vlen);
	ucp_put_le64(u + 10, expires);
}

void ucp_dump_end(void *out, uint64_t count)
{
	unsigned char *u = out;

	ucp_put_le16(u, 0);
	ucp_put_le64(u + 2, count);
}

long long ucp_dump_record_parse(const char *buf, size_t len, uint64_t max_value,
		struct ucp_dump_record *rec)
{
	uint16_t klen;

	memset(rec, 0, sizeof(*rec));
	if (len < 2)
		return 0;
	klen = ucp_le16(buf);
	if (klen == 0) {
		if (len < UCP_DUMP_END_SIZE)
			return 0;
		rec->end = 1;
		rec->count = ucp_le64(buf + 2);
		return UCP_DUMP_END_SIZE;
	}
	if (klen > UCP_KEY_MAX)
		return -UCP_PERR_KEYSIZE;
	if (len < UCP_DUMP_RECORD_HEAD)
		return 0;
	rec->value_len = ucp_le64(buf + 2);
	rec->expires = ucp_le64(buf + 10);
	if (rec->value_len == 0 || rec->value_len > max_value)
		return -UCP_PERR_SIZE;
	len -= UCP_DUMP_RECORD_HEAD;
	if (len < klen || len - klen < rec->value_len)
		return 0;
	rec->key = buf + UCP_DUMP_RECORD_HEAD;
	rec->key_len = klen;
	rec->value = rec->key + klen;
	return (long long) (UCP_DUMP_RECORD_HEAD + klen + rec->value_len);
}

/* ------------------------------------------------------------------ keys */

size_t ucp_keys_request(char *out, const char *cache, uint16_t clen, uint64_t cursor, uint64_t count)
{
	size_t n = UCP_HEADER_SIZE;

	n += put_var(out + n, "cmd", "keys", 4);
	if (clen)
		n += put_var(out + n, "cache", cache, clen);
	n += put_num_var(out + n, "cursor", cursor);
	n += put_num_var(out + n, "count", count);
	ucp_header(out, (uint16_t) (n - UCP_HEADER_SIZE), UCP_M2_MAGIC);
	return n;
}

uint64_t ucp_keys_count(const struct ucp_request *r)
{
	if (!r->count)
		return UCP_KEYS_COUNT;
	return r->count > UCP_KEYS_COUNT_MAX ? UCP_KEYS_COUNT_MAX : r->count;
}

size_t ucp_keys_reply_head(char *out, uint64_t cursor, uint64_t count, uint64_t size)
{
	size_t pos = UCP_HEADER_SIZE;

	pos += put_var(out + pos, "status", "ok", 2);
	pos += put_num_var(out + pos, "cursor", cursor);
	pos += put_num_var(out + pos, "count", count);
	pos += put_num_var(out + pos, "size", size);
	ucp_header(out, (uint16_t) (pos - UCP_HEADER_SIZE), UCP_M2_MAGIC);
	return pos;
}

void ucp_keys_entry_head(void *out, uint16_t klen, uint64_t vlen, uint64_t ttl)
{
	ucp_dump_record_head(out, klen, vlen, ttl);
}

long ucp_keys_entry_parse(const char *buf, size_t len, struct ucp_keys_entry *e)
{
	memset(e, 0, sizeof(*e));
	if (len < UCP_KEYS_ENTRY_HEAD)
		return -UCP_PERR_TRUNCATED;
	e->key_len = ucp_le16(buf);
	if (e->key_len == 0 || e->key_len > UCP_KEY_MAX)
		return -UCP_PERR_KEYSIZE;
	e->value_len = ucp_le64(buf + 2);
	e->ttl = ucp_le64(buf + 10);
	if (len - UCP_KEYS_ENTRY_HEAD < e->key_len)
		return -UCP_PERR_TRUNCATED;
	e->key = buf + UCP_KEYS_ENTRY_HEAD;
	return (long) (UCP_KEYS_ENTRY_HEAD + e->key_len);
}
