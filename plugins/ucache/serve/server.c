/*
 * server.c - the modifier1 111 request handler: what the stock "cache"
 * plugin serves, which ucache takes over (plugin.c puts ucp_request in
 * uwsgi.p[111]).  Formats and the parser are in wire/ (proto.h, http.h,
 * dump.h, keys.h).
 *
 *   modifier2  request            reply
 *    0 get      key                header(111, vlen, 0) + value; miss: close.
 *                                  A value over 65535 bytes (pktsize is 16
 *                                  bits) gets the stream form of 5 instead:
 *                                  header(111, 0, 1) + value until close.
 *    1 set      array key, value   none (close); fails if the key exists
 *    2 del      key                none (close)
 *    3/4        vars key= / get=   an HTTP response: the value as is if it
 *                                  starts with "HTTP/", else the value as the
 *                                  body of a 200; miss: close (3), 404 (4 or
 *                                  a get= var).  A cache= var names the
 *                                  cache; an HTTP_IF_NONE_MATCH var matching
 *                                  the stored response's ETag gets a 304
 *    5 stream   key                header(111, 0, 1) + value; miss: (111, 0, 0)
 *    6 dump     [cache name]       stock's raw image (stockimage.c, image.h)
 *               ucache vars        the ucache dump format (wire/dump.h)
 *   17 magic    vars cmd, key...   header(111, n, 17) + status=ok [+ value];
 *                                  failure or miss: close; cmd=invalidate
 *                                  tags=a,b invalidates tags (a write);
 *                                  cmd=keys cursor= count= lists one bounded
 *                                  batch of keys (wire/keys.h)
 *
 * Stock bugs not carried over: 3/4 look the key up with its real length
 * (stock passed 0: every nginx lookup missed), "clear" clears the cache it
 * names (stock looped over the default cache's slots: out of bounds), and no
 * lock is held anywhere here (stock could leave one held when a dump failed).
 * The engine's reads are lock-free and each write locks inside the engine,
 * so a client that stalls or vanishes mid-reply holds nothing.
 *
 * Security: every byte from the socket is untrusted and goes through
 * ucp_request_parse() first.  A malformed packet closes the connection and
 * logs at most one line per second per worker (the next line says how many
 * were dropped).
 * Writes (set, update, del, clear) and dumps can be refused globally
 * (--ucache-readonly) or per socket (--ucache-readonly-socket,
 * --ucache-write-socket): the request is closed without a reply, as any
 * stock failure is.
 *
 * Threads: a worker may run several requests at once (--threads); the only
 * state is per thread (the reply buffer) or atomic (the log limiter).
 */
#include "ucp.h"
#include "writepath.h"
#include "serve/serve.h"
#include "peers/peers.h"
#include "wire/proto.h"
#include "wire/http.h"
#include "wire/dump.h"

#include <arpa/inet.h>

int ucp_readonly;
struct uwsgi_string_list *ucp_readonly_sockets;
struct uwsgi_string_list *ucp_write_sockets;

/* log limiters (ucp.h): one line per second per worker and kind */
static struct ucp_ratelimit rl_malformed, rl_refused;

static void peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const void *addr = NULL;

	snprintf(out, len, "unix");
	if (getpeername(fd, (struct sockaddr *) &ss, &sl))
		return;
	if (ss.ss_family == AF_INET)
		addr = &((struct sockaddr_in *) &ss)->sin_addr;
	else if (ss.ss_family == AF_INET6)
		addr = &((struct sockaddr_in6 *) &ss)->sin6_addr;
	if (addr && !inet_ntop(ss.ss_family, addr, out, (socklen_t) len))
		snprintf(out, len, "?");
}

static void report(struct ucp_ratelimit *rl, struct wsgi_request *wsgi_req, const char *what,
		const char *why)
{
	char peer[INET6_ADDRSTRLEN + 1], more[64] = "";
	uint64_t dropped = 0;

	if (!ucp_ratelimit_pass(rl, &dropped))
		return;
	peer_name(wsgi_req->fd, peer, sizeof(peer));
	if (dropped)
		snprintf(more, sizeof(more), " (and %llu more since the last line)",
				(unsigned long long) dropped);
	uwsgi_log("ucache: modifier1 111 from %s on %s: modifier2 %u %s: %s%s\n", peer,
			wsgi_req->socket ? wsgi_req->socket->name : "?",
			(unsigned) wsgi_req->uh->modifier2, what, why, more);
}

/* ------------------------------------------------------- write protection */

static int listed(struct uwsgi_string_list *list, const char *name)
{
	struct uwsgi_string_list *usl;

	uwsgi_foreach(usl, list) {
		if (name && !strcmp(usl->value, name))
			return 1;
	}
	return 0;
}

/* NULL if the request may write, else why not (rpc.c asks too). */
const char *ucp_write_refused(struct wsgi_request *wsgi_req)
{
	const char *name = wsgi_req->socket ? wsgi_req->socket->name : NULL;

	if (ucp_readonly)
		return "read-only (--ucache-readonly)";
	if (listed(ucp_readonly_sockets, name))
		return "read-only socket (--ucache-readonly-socket)";
	if (ucp_write_sockets && !listed(ucp_write_sockets, name))
		return "not a write socket (--ucache-write-socket)";
	return NULL;
}

static int socket_exists(const char *name)
{
	struct uwsgi_socket *s;

	for (s = uwsgi.sockets; s; s = s->next) {
		if (s->name && !strcmp(s->name, name))
			return 1;
	}
	return 0;
}

static void check_sockets(struct uwsgi_string_list *list, const char *opt)
{
	struct uwsgi_string_list *usl;

	uwsgi_foreach(usl, list) {
		if (!socket_exists(usl->value)) {
			uwsgi_log("ucache: --%s %s: no such socket (give the address exactly as in "
					"--socket / --uwsgi-socket)\n", opt, usl->value);
			exit(1);
		}
		if (list == ucp_write_sockets && listed(ucp_readonly_sockets, usl->value)) {
			uwsgi_log("ucache: --ucache-write-socket %s: the socket is also given to "
					"--ucache-readonly-socket\n", usl->value);
			exit(1);
		}
	}
}

void ucp_server_init(void)
{
	struct uwsgi_string_list *usl;

	check_sockets(ucp_readonly_sockets, "ucache-readonly-socket");
	check_sockets(ucp_write_sockets, "ucache-write-socket");
	if (ucp_readonly) {
		uwsgi_log("ucache: modifier1 111 is read-only: set, update, del, clear and dump "
				"are refused\n");
		return;
	}
	uwsgi_foreach(usl, ucp_readonly_sockets) {
		uwsgi_log("ucache: modifier1 111 on %s is read-only\n", usl->value);
	}
	uwsgi_foreach(usl, ucp_write_sockets) {
		uwsgi_log("ucache: modifier1 111 writes and dumps allowed on %s only\n", usl->value);
	}
}

/* ------------------------------------------------------------ reply buffer */

/* Each thread reads values into its own buffer, after HEADROOM bytes where
 * the reply's header is put, so that a reply is one write without a copy.
 * A buffer grown past KEEP_MAX is freed after the request. */
#define HEADROOM (UCP_MAGIC_HEAD_MAX > UCP_HTTP_HEAD_MAX ? UCP_MAGIC_HEAD_MAX : UCP_HTTP_HEAD_MAX)
#define KEEP_MAX (1u << 20)

static __thread char *tl_buf;
static __thread size_t tl_cap;

static void buf_release(void)
{
	if (tl_cap > KEEP_MAX) {
		free(tl_buf);
		tl_buf = NULL;
		tl_cap = 0;
	}
}

/* The value of key, at tl_buf + HEADROOM; NULL on a miss (or no memory).
 * peek: read without counting a hit or refreshing LRU (dumps). */
static char *fetch_as(struct ucp_cache *c, const char *key, size_t klen, size_t *vlen,
		struct ucache_item_info *info, int peek)
{
	for (;;) {
		char *val = tl_buf ? tl_buf + HEADROOM : NULL;
		size_t room = val ? tl_cap - HEADROOM : 0;
		int ret = peek ? ucache_peek(c->cache, key, klen, val, room, vlen, info)
			       : ucp_get_ex(c, key, klen, val, room, vlen, info);
		char *grown;

		if (ret == 0)
			return val;
		if (ret != -ENOBUFS || !(grown = realloc(tl_buf, HEADROOM + *vlen)))
			return NULL;
		tl_buf = grown;
		tl_cap = HEADROOM + *vlen;
	}
}

static char *fetch(struct ucp_cache *c, const char *key, size_t klen, size_t *vlen,
		struct ucache_item_info *info)
{
	return fetch_as(c, key, klen, vlen, info, 0);
}

static int send_bytes(struct wsgi_request *wsgi_req, const char *buf, size_t len)
{
	return uwsgi_response_write_body_do(wsgi_req, (char *) buf, len) ? -1 : 0;
}

/* header(111, pktsize, modifier2) + the fetched value, in one write. */
static void send_uwsgi(struct wsgi_request *wsgi_req, char *val, size_t vlen, uint16_t pktsize,
		uint8_t modifier2)
{
	ucp_header(val - UCP_HEADER_SIZE, pktsize, modifier2);
	send_bytes(wsgi_req, val - UCP_HEADER_SIZE, vlen + UCP_HEADER_SIZE);
}

/* ------------------------------------------------------- modifier2 0 .. 5 */

static void serve_get(struct wsgi_request *wsgi_req, struct ucp_cache *c, const struct ucp_request *r)
{
	size_t vlen = 0;
	char *val = fetch(c, r->key, r->key_len, &vlen, NULL);

	if (!val)
		return;
	if (vlen > UINT16_MAX)
		send_uwsgi(wsgi_req, val, vlen, 0, 1);
	else
		send_uwsgi(wsgi_req, val, vlen, (uint16_t) vlen, 0);
}

static void serve_stream(struct wsgi_request *wsgi_req, struct ucp_cache *c, const struct ucp_request *r)
{
	size_t vlen = 0;
	char *val = fetch(c, r->key, r->key_len, &vlen, NULL);
	char miss[UCP_HEADER_SIZE];

	if (val) {
		send_uwsgi(wsgi_req, val, vlen, 0, 1);
		return;
	}
	ucp_header(miss, 0, 0);
	send_bytes(wsgi_req, miss, sizeof(miss));
}

/* If-None-Match matches the stored response's ETag: send a 304 (1). */
static int send_not_modified(struct wsgi_request *wsgi_req, const char *val, size_t vlen,
		const struct ucp_request *r)
{
	char out[UCP_HTTP_304_FIXED + 256];
	const char *etag;
	size_t elen, n;

	if (ucp_http_etag(val, vlen, &etag, &elen) || !ucp_etag_match(r->inm, r->inm_len, etag, elen))
		return 0;
	n = ucp_http_304(out, sizeof(out), etag, elen);
	if (!n)
		return 0;
	send_bytes(wsgi_req, out, n);
	return 1;
}

static void serve_http(struct wsgi_request *wsgi_req, struct ucp_cache *c, const struct ucp_request *r)
{
	char head[UCP_HTTP_HEAD_MAX];
	size_t vlen = 0, hlen;
	/* a POST/DELETE... must reach the app, even through a recipe without
	 * nginx's method guard: a miss sends nginx to its fallback (issue 18) */
	char *val = r->http_pass ? NULL : fetch(c, r->key, r->key_len, &vlen, NULL);

	if (!val) {
		if (r->http_404)
			send_bytes(wsgi_req, ucp_http_404, ucp_http_404_len);
		return;
	}
	if (ucp_http_is_response(val, vlen)) {
		if (!r->inm || !send_not_modified(wsgi_req, val, vlen, r))
			send_bytes(wsgi_req, val, vlen);
		return;
	}
	hlen = ucp_http_head(head, vlen);
	memcpy(val - hlen, head, hlen);
	send_bytes(wsgi_req, val - hlen, hlen + vlen);
}

/* ------------------------------------------------------------ modifier2 6 */

/* Records are gathered into CHUNK-byte writes; a bigger value is written
 * on its own.  A failed write (the client went away) ends the dump. */
#define CHUNK (64u * 1024)

struct out {
	struct wsgi_request *wsgi_req;
	char *buf;
	size_t len;
	int failed;
};

static int out_flush(struct out *o)
{
	if (!o->failed && o->len && send_bytes(o->wsgi_req, o->buf, o->len))
		o->failed = 1;
	o->len = 0;
	return o->failed ? -1 : 0;
}

static int out_put(struct out *o, const void *p, size_t n)
{
	if (o->len + n > CHUNK && out_flush(o))
		return -1;
	if (n > CHUNK) {
		if (send_bytes(o->wsgi_req, p, n))
			o->failed = 1;
		return o->failed ? -1 : 0;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

/* header(111, n, 7) + the geometry vars (wire/dump.h: the dump format). */
static int dump_head(struct out *o, struct ucp_cache *c)
{
	const struct ucache_config *cfg = ucache_config(c->cache);
	struct uwsgi_buffer *ub = uwsgi_buffer_new(uwsgi.page_size);
	const char *hash = ucache_hash_name(cfg->hash);
	int ret = -1;

	ub->pos = UCP_HEADER_SIZE;
	if (uwsgi_buffer_append_keyval(ub, "format", 6, UCP_DUMP_FORMAT, sizeof(UCP_DUMP_FORMAT) - 1) ||
			uwsgi_buffer_append_keynum(ub, "version", 7, UCP_DUMP_VERSION) ||
			uwsgi_buffer_append_keyval(ub, "cache", 5, c->uc.name, c->uc.name_len) ||
			uwsgi_buffer_append_keynum(ub, "items", 5, (int64_t) cfg->items) ||
			uwsgi_buffer_append_keynum(ub, "slots", 5, (int64_t) cfg->items) ||
			uwsgi_buffer_append_keynum(ub, "blocksize", 9, (int64_t) cfg->blocksize) ||
			uwsgi_buffer_append_keynum(ub, "blocks", 6, (int64_t) cfg->blocks) ||
			uwsgi_buffer_append_keynum(ub, "bitmap", 6, cfg->bitmap ? 1 : 0) ||
			uwsgi_buffer_append_keynum(ub, "keysize", 7, (int64_t) cfg->keysize) ||
			uwsgi_buffer_append_keyval(ub, "hash", 4, (char *) hash, (uint16_t) strlen(hash)) ||
			uwsgi_buffer_append_keynum(ub, "max_value", 9, (int64_t) ucache_max_value(c->cache)))
		goto end;
	if (ub->pos - UCP_HEADER_SIZE > UINT16_MAX)
		goto end;
	ucp_header(ub->buf, (uint16_t) (ub->pos - UCP_HEADER_SIZE), UCP_M2_DUMP_REPLY);
	ret = out_put(o, ub->buf, ub->pos);
end:
	uwsgi_buffer_destroy(ub);
	return ret;
}

/* One record per live item: the key from the engine's iterator, then a
 * peek (an item deleted or expired in between is skipped; a dump counts no
 * hits and leaves the LRU order alone). */
static int dump_items(struct out *o, struct ucp_cache *c, char *kbuf, uint64_t *records)
{
	uint64_t cursor = 0;
	size_t klen = 0;

	while (ucache_iter(c->cache, &cursor, kbuf, c->uc.keysize, &klen) == 0) {
		struct ucache_item_info info;
		unsigned char head[UCP_DUMP_RECORD_HEAD];
		size_t vlen = 0;
		char *val = fetch_as(c, kbuf, klen, &vlen, &info, 1);

		if (!val)
			continue;
		ucp_dump_record_head(head, (uint16_t) klen, vlen, info.expires);
		if (out_put(o, head, sizeof(head)) || out_put(o, kbuf, klen) || out_put(o, val, vlen))
			return -1;
		(*records)++;
	}
	return 0;
}

static void serve_dump(struct wsgi_request *wsgi_req, struct ucp_cache *c)
{
	struct out o = { .wsgi_req = wsgi_req };
	unsigned char end[UCP_DUMP_END_SIZE];
	char *kbuf = malloc(c->uc.keysize ? c->uc.keysize : 1);
	uint64_t records = 0;

	o.buf = malloc(CHUNK);
	if (!kbuf || !o.buf) {
		uwsgi_log("ucache: dump of \"%s\": malloc(): %s\n", c->uc.name, strerror(errno));
		goto end;
	}
	if (dump_head(&o, c) || dump_items(&o, c, kbuf, &records))
		goto end;
	ucp_dump_end(end, records);
	if (out_put(&o, end, sizeof(end)) == 0)
		out_flush(&o);
end:
	free(o.buf);
	free(kbuf);
}

/* ------------------------------------------------- modifier2 17 cmd=keys */

/* Append the entry of the key in kbuf to buf (at len); 0, or -1 when it is
 * gone (deleted or expired since the iterator saw it).  A zero-length peek
 * reads size and expiry without copying the value (ucache.h). */
static int keys_entry(struct ucp_cache *c, const char *kbuf, size_t klen, char *buf, size_t *len,
		uint64_t now)
{
	struct ucache_item_info info = { 0 };
	size_t vlen = 0;
	uint64_t ttl = 0;

	if (ucache_peek(c->cache, kbuf, klen, NULL, 0, &vlen, &info) != -ENOBUFS)
		return -1;
	if (info.expires)
		ttl = info.expires > now ? info.expires - now : 1;
	ucp_keys_entry_head(buf + *len, (uint16_t) klen, vlen, ttl);
	memcpy(buf + *len + UCP_KEYS_ENTRY_HEAD, kbuf, klen);
	*len += UCP_KEYS_ENTRY_HEAD + klen;
	return 0;
}

/* One batch: at most count entries and UCP_KEYS_BYTES bytes of them (buf
 * holds that plus one entry, so one always fits).  An entry that would
 * cross the bytes bound is left for the next batch: the cursor goes back
 * to before it.  Returns the next cursor, 0 at the end. */
static uint64_t keys_batch(struct ucp_cache *c, uint64_t cursor, uint64_t count, char *kbuf, char *buf,
		size_t *len, uint64_t *n)
{
	uint64_t now = ucache_now(), before = cursor;
	size_t klen = 0;

	while (*n < count && ucache_iter(c->cache, &cursor, kbuf, c->uc.keysize, &klen) == 0) {
		if (*n && *len + UCP_KEYS_ENTRY_HEAD + klen > UCP_KEYS_BYTES)
			return before;
		if (keys_entry(c, kbuf, klen, buf, len, now) == 0)
			(*n)++;
		before = cursor;
	}
	return *n < count ? 0 : cursor;
}

static void serve_keys(struct wsgi_request *wsgi_req, struct ucp_cache *c, const struct ucp_request *r)
{
	size_t room = UCP_MAGIC_HEAD_MAX + UCP_KEYS_BYTES + UCP_KEYS_ENTRY_HEAD + c->uc.keysize;
	char *kbuf = malloc(c->uc.keysize ? c->uc.keysize : 1), *buf = malloc(room), head[UCP_MAGIC_HEAD_MAX];
	uint64_t n = 0, next;
	size_t len = 0, hlen;

	if (!kbuf || !buf) {
		uwsgi_log("ucache: key listing of \"%s\": malloc(): %s\n", c->uc.name, strerror(errno));
		goto end;
	}
	next = keys_batch(c, r->cursor, ucp_keys_count(r), kbuf, buf + UCP_MAGIC_HEAD_MAX, &len, &n);
	hlen = ucp_keys_reply_head(head, next, n, len);
	memcpy(buf + UCP_MAGIC_HEAD_MAX - hlen, head, hlen);
	send_bytes(wsgi_req, buf + UCP_MAGIC_HEAD_MAX - hlen, hlen + len);
end:
	free(buf);
	free(kbuf);
}

/* ----------------------------------------------------------- modifier2 17 */

/* header(111, n, 17) + status=ok [+ size, expires + the value]: the head
 * goes into the headroom before a fetched value, so a reply is one write. */
static void magic_ok(struct wsgi_request *wsgi_req, char *val, size_t vlen, uint64_t expires)
{
	char head[UCP_MAGIC_HEAD_MAX];
	size_t hlen = ucp_magic_reply_head(head, val != NULL, vlen, expires);

	if (!val) {
		send_bytes(wsgi_req, head, hlen);
		return;
	}
	memcpy(val - hlen, head, hlen);
	send_bytes(wsgi_req, val - hlen, hlen + vlen);
}

/* modifier2 17's expires is relative seconds, as stock's.  One whose sum
 * with now passes 2^64 saturates at the farthest time (the item never
 * expires) where stock wraps into the past and stores an already-expired
 * item while it answers ok.  The Python API keeps the wrap (Django's -1
 * means "expired at once", docs/STOCK_SEMANTICS.md "Expiry"), but no
 * uWSGI remote client sends such a number on the wire: they print expires
 * with %lld, so -1 goes out as "-1".  A client that writes
 * 18446744073709551615 means "as late as possible". */
static uint64_t magic_expiry(uint64_t expires, uint64_t *flags)
{
	if (expires <= UINT64_MAX - ucache_now())
		return expires;
	*flags |= UWSGI_CACHE_FLAG_ABSEXPIRE;
	return UINT64_MAX;
}

/* set/update: the value follows the vars, exactly r->size bytes. */
static int magic_store(struct wsgi_request *wsgi_req, struct ucp_cache *c, const struct ucp_request *r)
{
	uint64_t flags = r->cmd == UCP_CMD_UPDATE ? UWSGI_CACHE_FLAG_UPDATE : 0;
	uint64_t expires = magic_expiry(r->expires, &flags);
	ssize_t rlen = 0;
	char *val;

	if (r->size > c->uc.max_item_size) {
		ucp_log_too_large(c, r->key_len, r->size);
		return -1;
	}
	wsgi_req->post_cl = r->size;
	val = uwsgi_request_body_read(wsgi_req, (ssize_t) r->size, &rlen);
	if (!val || rlen != (ssize_t) r->size)
		return -1;
	return ucp_local_set(c, (char *) r->key, r->key_len, val, r->size, expires, flags);
}

static void serve_magic(struct wsgi_request *wsgi_req, struct ucp_cache *c, const struct ucp_request *r)
{
	struct ucache_item_info info;
	size_t vlen = 0;
	char *val;
	int ret = -1;

	switch (r->cmd) {
	case UCP_CMD_GET:
		val = fetch(c, r->key, r->key_len, &vlen, &info);
		if (val)
			magic_ok(wsgi_req, val, vlen, info.expires);
		return;
	case UCP_CMD_SET:
	case UCP_CMD_UPDATE:
		ret = magic_store(wsgi_req, c, r);
		break;
	case UCP_CMD_DEL:
		ret = ucp_local_del(c, r->key, r->key_len);
		break;
	case UCP_CMD_EXISTS:
		ret = ucp_exists(c, r->key, r->key_len);
		break;
	case UCP_CMD_CLEAR:
		ret = ucp_clear(c);
		break;
	case UCP_CMD_INVALIDATE:
		ret = ucp_tags_invalidate(c, r->tags, r->tags_len);
		break;
	case UCP_CMD_KEYS:
		serve_keys(wsgi_req, c, r);
		return;
	default:
		break;
	}
	if (ret == 0)
		magic_ok(wsgi_req, NULL, 0, 0);
}

/* ------------------------------------------------------------------ entry */

static void dispatch(struct wsgi_request *wsgi_req, struct ucp_cache *c, const struct ucp_request *r)
{
	switch (r->modifier2) {
	case UCP_M2_GET:
		serve_get(wsgi_req, c, r);
		break;
	case UCP_M2_SET:
		ucp_local_set(c, (char *) r->key, r->key_len, (char *) r->value, r->value_len, 0, 0);
		break;
	case UCP_M2_DEL:
		ucp_local_del(c, r->key, r->key_len);
		break;
	case UCP_M2_HTTP_KEY:
	case UCP_M2_HTTP_GET:
		serve_http(wsgi_req, c, r);
		break;
	case UCP_M2_STREAM:
		serve_stream(wsgi_req, c, r);
		break;
	case UCP_M2_DUMP:
		if (r->native)
			serve_dump(wsgi_req, c);
		else
			ucp_serve_stock_image(wsgi_req, c);
		break;
	case UCP_M2_MAGIC:
		serve_magic(wsgi_req, c, r);
		break;
	}
}

int ucp_request(struct wsgi_request *wsgi_req)
{
	struct ucp_request r;
	struct ucp_cache *c;
	const char *why;
	int ret = ucp_request_parse(wsgi_req->uh->modifier2, wsgi_req->buffer, wsgi_req->uh->pktsize, &r);

	if (ret) {
		report(&rl_malformed, wsgi_req, "malformed", ucp_perr_str(ret));
		return UWSGI_OK;
	}
	if (r.write && (why = ucp_write_refused(wsgi_req))) {
		report(&rl_refused, wsgi_req, "refused", why);
		return UWSGI_OK;
	}
	/* modifier2 0..5 work on the default cache; 6 and 17 may name one
	 * (an unknown name is a failure: close, as the stock does) */
	c = ucp_lookup(r.cache, r.cache_len);
	if (c)
		dispatch(wsgi_req, c, &r);
	buf_release();
	return UWSGI_OK;
}
