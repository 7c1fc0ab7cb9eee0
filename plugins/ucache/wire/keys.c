/*
 * keys.c - the key listing of modifier1 111 (keys.h): cmd=keys requests,
 * replies and entries.  No uWSGI, no allocation.
 */
#include "proto.h"

#include <string.h>

size_t ucp_keys_request(char *out, const char *cache, uint16_t clen, uint64_t cursor, uint64_t count)
{
	size_t n = UCP_HEADER_SIZE;

	n += ucp_put_var(out + n, "cmd", "keys", 4);
	if (clen)
		n += ucp_put_var(out + n, "cache", cache, clen);
	n += ucp_put_num_var(out + n, "cursor", cursor);
	n += ucp_put_num_var(out + n, "count", count);
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

	pos += ucp_put_var(out + pos, "status", "ok", 2);
	pos += ucp_put_num_var(out + pos, "cursor", cursor);
	pos += ucp_put_num_var(out + pos, "count", count);
	pos += ucp_put_num_var(out + pos, "size", size);
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
