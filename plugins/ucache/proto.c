/*
 * proto.c - uwsgi "vars" packets for the cache protocol (modifier1 111).
 *
 *   packet  = header(4) vars
 *   header  = modifier1 (u8) | pktsize (u16 LE, bytes of vars) | modifier2 (u8)
 *   vars    = { keylen (u16 LE) key vallen (u16 LE) val }*
 *
 * Used by server.c (requests from the network: untrusted) and remote.c
 * (replies from a remote server: untrusted too), so the parser checks every
 * length against the bytes left and accepts numbers only in strict decimal.
 * No state; no allocation except the request builder's uwsgi_buffer.
 */
#include "glue.h"

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
		unsigned d = (unsigned char) s[i] - '0';
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static uint16_t le16(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;

	return (uint16_t) (u[0] | (u[1] << 8));
}

/* Store one var into m; unknown names are ignored (as the stock does). */
static int magic_field(struct ucp_magic *m, const char *k, uint16_t kl, const char *v, uint16_t vl)
{
	if (ucp_streq(k, kl, "cmd")) {
		m->cmd = v;
		m->cmd_len = vl;
	} else if (ucp_streq(k, kl, "key")) {
		m->key = v;
		m->key_len = vl;
	} else if (ucp_streq(k, kl, "cache")) {
		m->cache = v;
		m->cache_len = vl;
	} else if (ucp_streq(k, kl, "status")) {
		m->status = v;
		m->status_len = vl;
	} else if (ucp_streq(k, kl, "size")) {
		m->has_size = 1;
		return ucp_parse_u64(v, vl, &m->size);
	} else if (ucp_streq(k, kl, "expires")) {
		return ucp_parse_u64(v, vl, &m->expires);
	}
	return 0;
}

int ucp_magic_parse(const char *buf, size_t len, struct ucp_magic *m)
{
	size_t pos = 0;

	memset(m, 0, sizeof(*m));
	while (pos < len) {
		const char *k, *v;
		uint16_t kl, vl;

		if (len - pos < 2)
			return -1;
		kl = le16(buf + pos);
		pos += 2;
		if (len - pos < (size_t) kl + 2)
			return -1;
		k = buf + pos;
		pos += kl;
		vl = le16(buf + pos);
		pos += 2;
		if (len - pos < vl)
			return -1;
		v = buf + pos;
		pos += vl;
		if (magic_field(m, k, kl, v, vl))
			return -1;
	}
	return 0;
}

struct uwsgi_buffer *ucp_magic_request(const char *cmd, const char *cache, uint16_t cache_len,
		const char *key, uint16_t key_len, int with_size, uint64_t size, uint64_t expires)
{
	struct uwsgi_buffer *ub = uwsgi_buffer_new(uwsgi.page_size);

	ub->pos = 4;
	if (uwsgi_buffer_append_keyval(ub, "cmd", 3, (char *) cmd, (uint16_t) strlen(cmd)))
		goto error;
	if (key && uwsgi_buffer_append_keyval(ub, "key", 3, (char *) key, key_len))
		goto error;
	if (with_size && uwsgi_buffer_append_keynum(ub, "size", 4, (int64_t) size))
		goto error;
	if (expires && uwsgi_buffer_append_keynum(ub, "expires", 7, (int64_t) expires))
		goto error;
	if (cache && cache_len && uwsgi_buffer_append_keyval(ub, "cache", 5, (char *) cache, cache_len))
		goto error;
	if (ub->pos - 4 > UINT16_MAX || uwsgi_buffer_set_uh(ub, 111, 17))
		goto error;
	return ub;
error:
	uwsgi_buffer_destroy(ub);
	return NULL;
}
