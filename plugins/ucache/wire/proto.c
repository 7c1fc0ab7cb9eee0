/*
 * proto.c - parse and encode the modifier1 111 requests and the magic
 * (modifier2 17) vars of both directions (proto.h has the formats).  No
 * uWSGI, no allocation, no state: safe from any thread, and linked alone by
 * the unit tests and the fuzzer.  The rule for lengths: packet.c.
 */
#include "proto.h"
#include "dump.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

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

int ucp_magic_var(void *ctx, const char *k, uint16_t kl, const char *v, uint16_t vl)
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
	return ucp_vars_each(buf, len, ucp_magic_var, m);
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
	struct ucp_vars it = { body, len, 0 };
	const char *k, *v;
	uint16_t kl, vl;
	int rc;

	if (len == 0)
		return -UCP_PERR_EMPTY;
	r->http = 1;
	r->http_404 = r->modifier2 == UCP_M2_HTTP_GET;
	while ((rc = ucp_vars_next(&it, &k, &kl, &v, &vl)) > 0) {
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

size_t ucp_magic_reply_head(char *out, int with_value, uint64_t size, uint64_t expires)
{
	size_t pos = UCP_HEADER_SIZE;

	pos += ucp_put_var(out + pos, "status", "ok", 2);
	if (with_value) {
		pos += ucp_put_num_var(out + pos, "size", size);
		if (expires)
			pos += ucp_put_num_var(out + pos, "expires", expires);
	}
	ucp_header(out, (uint16_t) (pos - UCP_HEADER_SIZE), UCP_M2_MAGIC);
	return pos;
}

/* -------------------------------------------------------- magic request */

/* The most a request takes: the header, five vars of 4 length bytes and
 * their names (22 bytes), the values (numbers: 20 digits at most). */
size_t ucp_magic_request_encode(char *out, size_t cap, const char *cmd, const char *cache,
		uint16_t cache_len, const char *key, uint16_t key_len, int with_size, uint64_t size,
		uint64_t expires)
{
	size_t need = UCP_HEADER_SIZE + 4 * 5 + 22 + strlen(cmd) + key_len + 20 + 20 + cache_len;
	size_t pos = UCP_HEADER_SIZE;

	if (cap < need)
		return 0;
	pos += ucp_put_var(out + pos, "cmd", cmd, strlen(cmd));
	if (key)
		pos += ucp_put_var(out + pos, "key", key, key_len);
	if (with_size)
		pos += ucp_put_num_var(out + pos, "size", size);
	if (expires)
		pos += ucp_put_num_var(out + pos, "expires", expires);
	if (cache && cache_len)
		pos += ucp_put_var(out + pos, "cache", cache, cache_len);
	if (pos - UCP_HEADER_SIZE > UINT16_MAX)
		return 0;
	ucp_header(out, (uint16_t) (pos - UCP_HEADER_SIZE), UCP_M2_MAGIC);
	return pos;
}
