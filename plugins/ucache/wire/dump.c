/*
 * dump.c - the ucache dump format (dump.h): the stream a ucache start-up
 * sync reads from a ucache node.  No uWSGI, no allocation.
 */
#include "dump.h"

#include <stddef.h>
#include <string.h>

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
	return ucp_vars_each(buf, len, head_field, h);
}

int ucp_dump_head_native(const struct ucp_dump_head *h)
{
	return h->format && ucp_streq(h->format, h->format_len, UCP_DUMP_FORMAT);
}

size_t ucp_dump_request(char *out, const char *name, uint16_t len)
{
	size_t n = UCP_HEADER_SIZE;

	n += ucp_put_var(out + n, "format", UCP_DUMP_FORMAT, sizeof(UCP_DUMP_FORMAT) - 1);
	n += ucp_put_var(out + n, "version", "1", 1);
	if (len)
		n += ucp_put_var(out + n, "cache", name, len);
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
