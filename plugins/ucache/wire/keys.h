#ifndef UCP_KEYS_H
#define UCP_KEYS_H

#include "packet.h"

struct ucp_request;

/*
 * The key listing: modifier2 17 with cmd=keys, in bounded batches like
 * Redis's SCAN, so that listing a cache of a million keys never holds a
 * worker for more than one batch (one connection per batch).
 *
 *   request  vars cmd=keys [cache=NAME] [cursor=C] [count=N]
 *            cursor: 0 (or absent) starts; then the cursor of the last reply
 *            count: keys wanted, default UCP_KEYS_COUNT, at most
 *            UCP_KEYS_COUNT_MAX (a larger count is taken as the maximum)
 *   reply    header(111, n, 17) + vars status=ok cursor=C count=N size=S,
 *            then S bytes: N entries
 *   entry    klen (u16, 1..65534) | vlen (u64) | ttl (u64, seconds left,
 *            0 = never expires; an item in its last second says 1) | key
 *
 * A reply cursor of 0 ends the listing.  A batch holds at most count
 * entries and at most UCP_KEYS_BYTES bytes of them (one entry always fits),
 * and is read without a lock and without a hit or an LRU change.  As with
 * the engine's iterator, a key present for the whole listing is listed
 * once; keys written meanwhile may or may not be.  The cursor is a slot
 * number, valid across requests and workers of one instance.  Like a dump,
 * the listing discloses every key: it needs write permission.
 */
#define UCP_KEYS_COUNT 100
#define UCP_KEYS_COUNT_MAX 1000
#define UCP_KEYS_BYTES (64u * 1024)
#define UCP_KEYS_ENTRY_HEAD 18    /* klen + vlen + ttl */
#define UCP_KEYS_REQUEST_MAX 96

struct ucp_keys_entry {
	const char *key;
	uint16_t key_len;
	uint64_t value_len, ttl;
};

/* Write a keys request (header and vars) into out (at least
 * UCP_KEYS_REQUEST_MAX + clen bytes; clen 0 = the default cache). */
size_t ucp_keys_request(char *out, const char *cache, uint16_t clen, uint64_t cursor, uint64_t count);

/* The count a request asks for, bounded as above. */
uint64_t ucp_keys_count(const struct ucp_request *r);

/* Write a keys reply's header and vars into out (UCP_MAGIC_HEAD_MAX bytes);
 * returns its length. */
size_t ucp_keys_reply_head(char *out, uint64_t cursor, uint64_t count, uint64_t size);

/* Write an entry head (UCP_KEYS_ENTRY_HEAD bytes) into out. */
void ucp_keys_entry_head(void *out, uint16_t klen, uint64_t vlen, uint64_t ttl);

/* Decode the entry at buf (len bytes).  Returns the bytes it takes (> 0)
 * and fills e; -UCP_PERR_TRUNCATED if it runs past len; -UCP_PERR_KEYSIZE
 * for klen 0 or over UCP_KEY_MAX. */
long ucp_keys_entry_parse(const char *buf, size_t len, struct ucp_keys_entry *e);

#endif
