#ifndef UCP_DUMP_H
#define UCP_DUMP_H

#include "packet.h"

/*
 * The dump format (reply to a modifier2 6 request with the ucache vars;
 * a plain request gets stock's raw image instead, image.h), version 1.
 * Integers are little endian.  A dump is a stream that ends when the
 * connection closes:
 *
 *   header(111, n, 7)                n = bytes of the vars below
 *   vars     format=ucache-dump version=1 cache=NAME items=I
 *            slots=I blocksize=B blocks=N bitmap=0|1 keysize=K hash=H
 *            max_value=M                (the cache's geometry, decimal)
 *   record*  klen (u16, 1..65534) | vlen (u64) | expires (u64, absolute
 *            seconds since the Epoch, 0 = never) | key | value
 *   end      klen 0 (u16) | records (u64): the number of records sent
 *
 * Only ucache's client asks for this form, so items is the real item
 * count.  A reader checks format and version, then reads records until
 * the end marker; a stream without the end marker (or with another count)
 * is incomplete.  Each record is one consistent read of one item; the
 * dump as a whole is not a snapshot (items written meanwhile may or may
 * not be in it).
 */
#define UCP_DUMP_FORMAT "ucache-dump"
#define UCP_DUMP_VERSION 1
#define UCP_DUMP_RECORD_HEAD 18   /* klen + vlen + expires */
#define UCP_DUMP_END_SIZE 10      /* klen 0 + count */

struct ucp_dump_record {
	const char *key, *value;
	uint16_t key_len;
	uint64_t value_len, expires;
	int end;                  /* the end marker: count is valid */
	uint64_t count;
};

/* The vars of a dump reply (either form: stock sends items and blocksize
 * only) or of a ucache dump request.  Pointers are into buf. */
struct ucp_dump_head {
	const char *format, *cache;
	uint16_t format_len, cache_len;
	uint64_t version, items, blocksize, blocks, keysize, max_value;
	int has_items, has_blocksize;
};

/* Parse dump vars.  Unknown names are ignored.  0, or -UCP_PERR_*
 * (TRUNCATED, VARNAME, NUMBER for a number var that is not decimal). */
int ucp_dump_head_parse(const char *buf, size_t len, struct ucp_dump_head *h);

/* Is h the ucache format (format=ucache-dump)? */
int ucp_dump_head_native(const struct ucp_dump_head *h);

/* Write a ucache dump request for cache (name, len; len 0 = the default
 * cache) into out (at least UCP_DUMP_REQUEST_MAX + len bytes): header and
 * vars.  Returns its length. */
#define UCP_DUMP_REQUEST_MAX 64
size_t ucp_dump_request(char *out, const char *name, uint16_t len);

/* Write a record head (UCP_DUMP_RECORD_HEAD bytes) into out. */
void ucp_dump_record_head(void *out, uint16_t klen, uint64_t vlen, uint64_t expires);

/* Write the end marker (UCP_DUMP_END_SIZE bytes) into out. */
void ucp_dump_end(void *out, uint64_t count);

/* Decode the record at buf (len bytes available), refusing values over
 * max_value (the geometry's).  Returns the bytes it takes (> 0) and fills
 * rec; 0 if more bytes are needed; -UCP_PERR_KEYSIZE (klen over
 * UCP_KEY_MAX) or -UCP_PERR_SIZE (vlen 0 or over max_value). */
long long ucp_dump_record_parse(const char *buf, size_t len, uint64_t max_value,
		struct ucp_dump_record *rec);

#endif
