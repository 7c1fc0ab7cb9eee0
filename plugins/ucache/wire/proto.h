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
 *                   key listing, keys.h)
 *
 * The core has already bounded the body by --buffer-size (it refuses larger
 * packets), so a body is at most 65535 bytes.
 */
#ifndef UCP_PROTO_H
#define UCP_PROTO_H

#include "packet.h"
/* the answers of modifier1 111 that are formats of their own */
#include "http.h"
#include "dump.h"
#include "keys.h"


enum ucp_cmd { UCP_CMD_NONE, UCP_CMD_GET, UCP_CMD_SET, UCP_CMD_UPDATE, UCP_CMD_DEL,
	UCP_CMD_EXISTS, UCP_CMD_CLEAR, UCP_CMD_DUMP, UCP_CMD_INVALIDATE, UCP_CMD_KEYS };

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

/* One var into m (a ucp_var_fn): unknown names are ignored (as the stock
 * does), a repeated name overwrites.  0 or -UCP_PERR_NUMBER. */
int ucp_magic_var(void *m, const char *k, uint16_t kl, const char *v, uint16_t vl);

/* Write a magic request (the client side: header + vars cmd, key, size if
 * with_size, expires if not 0, cache if cache_len) into out (cap bytes).
 * Returns its length, or 0 if it does not fit (or exceeds a packet). */
size_t ucp_magic_request_encode(char *out, size_t cap, const char *cmd, const char *cache,
		uint16_t cache_len, const char *key, uint16_t key_len, int with_size, uint64_t size,
		uint64_t expires);

/* The command named by (s, len), or UCP_CMD_NONE. */
enum ucp_cmd ucp_cmd_parse(const char *s, size_t len);

/* Largest reply head ucp_magic_reply_head() writes. */
#define UCP_MAGIC_HEAD_MAX 96

/* Write a modifier2 17 reply's header and vars into out (at least
 * UCP_MAGIC_HEAD_MAX bytes): status=ok, and with a value its size and (if
 * not 0) expires.  The value itself follows the head.  Returns the length. */
size_t ucp_magic_reply_head(char *out, int with_value, uint64_t size, uint64_t expires);

/* The next tag of a comma-separated list (*pos advances): 1 with (tag,
 * tlen), 0 at the end. */
int ucp_tags_next(const char *tags, size_t len, size_t *pos, const char **tag, size_t *tlen);

#endif
