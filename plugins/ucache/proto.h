/*
 * proto.h - the modifier1 111 wire protocol (uWSGI's cache protocol), with
 * no uWSGI dependency: server.c and remote.c use it inside the plugin;
 * tests/unit/test_proto.c and the fuzzer (tests/fuzz/) link it alone.
 *
 * Everything here reads untrusted bytes.  Every length is checked against
 * the bytes left before it is used, numbers are strict decimal, nothing is
 * allocated and nothing is kept: results point into the caller's buffer.
 *
 *   packet  = header(4) body
 *   header  = modifier1 (u8) | pktsize (u16 LE: bytes of body) | modifier2 (u8)
 *   vars    = { keylen (u16 LE, > 0) key vallen (u16 LE) val }*
 *   array   = { len (u16 LE) item }*        (modifier2 1; empty items skipped)
 *
 * Requests by modifier2 (docs/STOCK_SEMANTICS.md "Wire protocol" has the
 * stock table):
 *
 *    0 get          body = key
 *    1 set          body = array: key, value (more items are ignored)
 *    2 del          body = key
 *    3, 4 http get  body = vars; the first non-empty "key" or "get" is the key;
 *                   "cache" names the cache, "HTTP_IF_NONE_MATCH" asks for a 304,
 *                   a "REQUEST_METHOD" other than GET/HEAD makes it a miss
 *    5 stream get   body = key
 *    6 dump         body = cache name, or empty for the default cache (stock
 *                   client: a raw image answers, image.h); or vars
 *                   format=ucache-dump version=1 [cache=NAME] (ucache's
 *                   client: the ucache dump answers).  A body is taken as
 *                   those vars only if it parses as vars with that format
 *                   var, which no cache name does in practice (it would
 *                   start with the bytes 06 00 "format").
 *   17 magic        body = vars cmd, key, cache, expires, size; cmd=invalidate
 *                   takes tags (comma-separated) instead of a key; cmd=keys
 *                   takes cursor and count instead (a bounded batch of the
 *                   key listing, below)
 *
 * The core has already bounded the body by --buffer-size (it refuses larger
 * packets), so a body is at most 65535 bytes.
 */
#ifndef UCP_PROTO_H
#define UCP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define UCP_MODIFIER1 111
#define UCP_HEADER_SIZE 4
/* Largest key the engine accepts (UCACHE_KEYSIZE_MAX). */
#define UCP_KEY_MAX 65534

enum ucp_modifier2 {
	UCP_M2_GET = 0,
	UCP_M2_SET = 1,
	UCP_M2_DEL = 2,
	UCP_M2_HTTP_KEY = 3,
	UCP_M2_HTTP_GET = 4,
	UCP_M2_STREAM = 5,
	UCP_M2_DUMP = 6,
	UCP_M2_DUMP_REPLY = 7,     /* modifier2 of a dump reply's header */
	UCP_M2_MAGIC = 17,
};

enum ucp_cmd { UCP_CMD_NONE, UCP_CMD_GET, UCP_CMD_SET, UCP_CMD_UPDATE, UCP_CMD_DEL,
	UCP_CMD_EXISTS, UCP_CMD_CLEAR, UCP_CMD_DUMP, UCP_CMD_INVALIDATE, UCP_CMD_KEYS };

/* Why a request was refused by the parser; ucp_request_parse() returns the
 * negated value.  Each class has a packet in tests/fuzz/regressions/. */
enum ucp_perr {
	UCP_PERR_EMPTY = 1,     /* no body where the command needs one */
	UCP_PERR_TRUNCATED,     /* a length runs past the end of the packet */
	UCP_PERR_VARNAME,       /* a var with an empty name */
	UCP_PERR_NUMBER,        /* size or expires is not a decimal u64 */
	UCP_PERR_NOKEY,         /* the command needs a key and has none */
	UCP_PERR_KEYSIZE,       /* key longer than UCP_KEY_MAX */
	UCP_PERR_ARRAY,         /* set: fewer than two non-empty items */
	UCP_PERR_COMMAND,       /* magic: cmd missing or unknown */
	UCP_PERR_SIZE,          /* magic set/update: size missing or 0 */
	UCP_PERR_MODIFIER2,     /* a modifier2 this protocol does not have */
	UCP_PERR_TAGS,          /* magic invalidate: tags missing, or an empty tag */
	UCP_PERR_MAX
};

/* One parsed modifier2 17 packet (also a reply: status, size, expires). */
struct ucp_magic {
	const char *cmd, *key, *cache, *status, *tags;
	uint16_t cmd_len, key_len, cache_len, status_len, tags_len;
	uint64_t size, expires;
	uint64_t cursor, count;   /* cmd=keys (and its reply) */
	int has_size;
};

/* One parsed request.  Pointers are into the packet body. */
struct ucp_request {
	uint8_t modifier2;
	enum ucp_cmd cmd;         /* what to do (modifier2 0..6 map onto it too) */
	int write;                /* needs write permission: set, update, del,
	                             clear, and dump and keys (they disclose
	                             every key) */
	int http;                 /* 3/4: answer as HTTP */
	int http_404;             /* 3/4: answer a miss with 404 (else close) */
	int http_pass;            /* 3/4: REQUEST_METHOD is not GET/HEAD: never from the
	                             cache, answered as a miss so nginx hands it to the app */
	const char *key, *value, *cache;
	uint16_t key_len, value_len, cache_len;
	const char *tags;         /* magic invalidate: "a,b,c" (no empty tag) */
	uint16_t tags_len;
	const char *inm;          /* 3/4: the If-None-Match var, or NULL */
	uint16_t inm_len;
	int native;               /* 6: ucache's client asked for the ucache dump */
	uint64_t expires, size;   /* magic: relative expiry, body size */
	uint64_t cursor, count;   /* magic keys: where to go on, keys wanted */
};

/* Parse a request body of len bytes for modifier2 into r.  Returns 0, or
 * -UCP_PERR_* (r is then partly filled and must not be used). */
int ucp_request_parse(uint8_t modifier2, const char *body, size_t len, struct ucp_request *r);

/* A short name for a parser error ("truncated vars", ...); never NULL. */
const char *ucp_perr_str(int err);

/* Parse uwsgi vars into m (magic requests and their replies).  Unknown
 * names are ignored, the last of a repeated name wins.  0, or -UCP_PERR_*
 * (TRUNCATED, VARNAME, NUMBER). */
int ucp_magic_parse(const char *buf, size_t len, struct ucp_magic *m);

/* The command named by (s, len), or UCP_CMD_NONE. */
enum ucp_cmd ucp_cmd_parse(const char *s, size_t len);

/* Strict decimal (1-20 digits, no sign, no overflow) -> *out.  0 or -1. */
int ucp_parse_u64(const char *s, size_t len, uint64_t *out);

/* Does the counted string (s, len) equal the C string lit? */
int ucp_streq(const char *s, size_t len, const char *lit);

/* Little-endian integers, as on the wire. */
uint16_t ucp_le16(const void *p);
uint64_t ucp_le64(const void *p);
void ucp_put_le16(void *p, uint16_t v);
void ucp_put_le64(void *p, uint64_t v);

/* Write a packet header (modifier1 111) into out[4]. */
void ucp_header(void *out, uint16_t pktsize, uint8_t modifier2);

/* Largest reply head ucp_magic_reply_head() writes. */
#define UCP_MAGIC_HEAD_MAX 96

/* Write a modifier2 17 reply's header and vars into out (at least
 * UCP_MAGIC_HEAD_MAX bytes): status=ok, and with a value its size and (if
 * not 0) expires.  The value itself follows the head.  Returns the length. */
size_t ucp_magic_reply_head(char *out, int with_value, uint64_t size, uint64_t expires);

/* ------------------------------------------------------------------ HTTP */

/* Does the value already hold a whole HTTP response (starts with "HTTP/")?
 * Such a value is sent as it is; any other is the body of a 200. */
int ucp_http_is_response(const char *v, size_t len);

/* Largest head ucp_http_head() writes. */
#define UCP_HTTP_HEAD_MAX 64

/* Write "HTTP/1.1 200 OK" + Content-Length: clen + blank line into out
 * (at least UCP_HTTP_HEAD_MAX bytes); returns its length. */
size_t ucp_http_head(char *out, uint64_t clen);

/* The value of the ETag header of the HTTP response (resp, len), searched
 * in its head only: 0 with (*etag, *elen) pointing into resp, or -1. */
int ucp_http_etag(const char *resp, size_t len, const char **etag, size_t *elen);

/* Does If-None-Match (inm, a comma-separated list of entity tags, or "*")
 * match etag?  Weak comparison (RFC 9110 13.1.2): W/ prefixes ignored. */
int ucp_etag_match(const char *inm, size_t inm_len, const char *etag, size_t elen);

/* Largest 304 reply ucp_http_304() writes for an ETag of elen bytes. */
#define UCP_HTTP_304_FIXED 64

/* Write "HTTP/1.1 304 Not Modified" with the ETag into out (outlen bytes);
 * returns its length, or 0 if it does not fit. */
size_t ucp_http_304(char *out, size_t outlen, const char *etag, size_t elen);

/* The next tag of a comma-separated list (*pos advances): 1 with (tag,
 * tlen), 0 at the end. */
int ucp_tags_next(const char *tags, size_t len, size_t *pos, const char **tag, size_t *tlen);

/* The whole reply to a miss on modifier2 4. */
extern const char ucp_http_404[];
extern const size_t ucp_http_404_len;

/* ------------------------------------------------------------------ dump */

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

/* ------------------------------------------------------------------ keys */

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
