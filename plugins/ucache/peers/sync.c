/*
 * sync.c - the start-up sync: a new cache imports a node's contents.
 *
 * Client (sync=ADDR[;ADDR...] of --cache2, --cache-sync of --cache): in the
 * master, right after the cache is created and before any worker exists
 * (stock does it in uwsgi_cache_init, the same moment), the nodes are tried
 * in order with stock's "[cache-sync] ..." lines.  ucache asks for its own
 * dump (wire/dump.h: a modifier2 6 with format=ucache-dump vars); a stock
 * server knows no cache by that name and closes without a byte, so the
 * same node is asked again the stock way (the cache name as the body) and
 * its raw image is read (image.h).  Either form is parsed without trusting
 * a length, and every valid unexpired item is imported with its absolute
 * expiry (an update: the node's copy wins over nothing).
 *
 * Outcomes per node: complete (stop there); partial (a truncated or
 * damaged stream: its valid items are kept, and the next node is tried);
 * failed.  Stock compares items and blocksize with its own and exits when
 * they differ; ucache works out the sender's geometry from the image's
 * length and imports what fits its own (a value over its max is counted
 * as not fitting).  When no node answered at all: one line naming the
 * nodes, exit 1 (stock exits 1 too, silently).
 *
 * Runs in the master before fork: no locking here.  The other side, a
 * stock client's dump request, is serve/stockimage.c's.
 */
#include "ucp.h"
#include "peers/peers.h"
#include "wire/dump.h"
#include "wire/image.h"
#include <stddef.h>

struct ucp_image_layout ucp_stock_layout(void)
{
	struct ucp_image_layout l = {
		.size = sizeof(struct uwsgi_cache_item),
		.flags = offsetof(struct uwsgi_cache_item, flags),
		.keysize = offsetof(struct uwsgi_cache_item, keysize),
		.hash = offsetof(struct uwsgi_cache_item, hash),
		.valsize = offsetof(struct uwsgi_cache_item, valsize),
		.first_block = offsetof(struct uwsgi_cache_item, first_block),
		.expires = offsetof(struct uwsgi_cache_item, expires),
		.hits = offsetof(struct uwsgi_cache_item, hits),
		.prev = offsetof(struct uwsgi_cache_item, prev),
		.next = offsetof(struct uwsgi_cache_item, next),
		.lru_prev = offsetof(struct uwsgi_cache_item, lru_prev),
		.lru_next = offsetof(struct uwsgi_cache_item, lru_next),
		.skip_flags = UWSGI_CACHE_FLAG_UNGETTABLE,
	};
	_Static_assert(sizeof(((struct uwsgi_cache_item *) 0)->keysize) == 8 &&
			sizeof(((struct uwsgi_cache_item *) 0)->lru_next) == 8, "u64 item fields");
	return l;
}

struct ucp_image_geom ucp_own_geom(const struct ucache_config *cfg)
{
	struct ucp_image_geom g = { .items = cfg->items, .keysize = cfg->keysize, .blocksize = cfg->blocksize,
				    .blocks = cfg->bitmap ? cfg->blocks : cfg->items };
	return g;
}

/* ---------------------------------------------------------------- client */

enum outcome { SYNC_FAILED, SYNC_PARTIAL, SYNC_COMPLETE };

struct reply {
	char *buf;
	size_t len, cap, max;
};

struct import {
	struct ucp_cache *c;
	uint64_t imported, refused;
};

/* Everything until the peer closes: 0, or -1 (timeout, error, over max). */
static int read_to_end(int fd, struct reply *r)
{
	for (;;) {
		ssize_t n;

		if (r->cap - r->len < 65536) {
			size_t cap = r->cap ? r->cap * 2 : 1u << 20;
			char *grown = cap <= r->max + 65536 ? realloc(r->buf, cap) : NULL;
			if (!grown)
				return -1;
			r->buf = grown;
			r->cap = cap;
		}
		n = ucp_client_read_some(fd, r->buf + r->len, r->cap - r->len);
		if (n <= 0)
			return (int) n;
		r->len += (size_t) n;
		if (r->len > r->max)
			return -1;
	}
}

/* Connect, send req, read the whole reply, with stock's log lines. */
static int exchange(const char *node, const char *req, size_t reqlen, struct reply *r)
{
	int fd = ucp_client_connect(node), ret = -1;

	r->len = 0;
	if (fd < 0) {
		uwsgi_log("[cache-sync] unable to connect to the cache server\n");
		return -1;
	}
	if (ucp_client_write(fd, req, reqlen))
		uwsgi_log("[cache-sync] unable to write to the cache server\n");
	else if (read_to_end(fd, r))
		uwsgi_log("[cache-sync] unable to read from the cache server\n");
	else
		ret = 0;
	close(fd);
	return ret;
}

static void import_one(struct import *im, const char *key, size_t klen, const char *val, size_t vlen,
		uint64_t expires)
{
	if (ucache_set(im->c->cache, key, klen, val, vlen, expires, UCACHE_SET_UPDATE | UCACHE_SET_ABSEXPIRE))
		im->refused++;
	else
		im->imported++;
}

static void import_item(void *ud, const struct ucp_image_item *it)
{
	import_one(ud, (const char *) it->key, it->key_len, (const char *) it->value, it->value_len, it->expires);
}

static enum outcome import_dump(struct import *im, const char *node, const char *p, size_t len,
		const struct ucp_dump_head *h)
{
	uint64_t records = 0, expired = 0, now = ucache_now();
	size_t pos = 0;

	if (h->version != UCP_DUMP_VERSION) {
		uwsgi_log("[cache-sync] %s sent ucache dump version %llu, this ucache reads %d\n", node,
				(unsigned long long) h->version, UCP_DUMP_VERSION);
		return SYNC_FAILED;
	}
	for (;;) {
		struct ucp_dump_record rec;
		long long n = ucp_dump_record_parse(p + pos, len - pos, h->max_value ? h->max_value : UINT64_MAX, &rec);

		if (n <= 0 || (rec.end && rec.count != records)) {
			uwsgi_log("[cache-sync] the dump from %s is %s after %llu records: kept the %llu imported\n",
					node, n == 0 ? "truncated" : "damaged", (unsigned long long) records,
					(unsigned long long) im->imported);
			return SYNC_PARTIAL;
		}
		pos += (size_t) n;
		if (rec.end)
			break;
		records++;
		if (rec.expires && rec.expires <= now)
			expired++;
		else
			import_one(im, rec.key, rec.key_len, rec.value, rec.value_len, rec.expires);
	}
	uwsgi_log("[cache-sync] imported %llu items from the ucache dump of %s (%llu expired, %llu did not fit)\n",
			(unsigned long long) im->imported, node, (unsigned long long) expired,
			(unsigned long long) im->refused);
	return SYNC_COMPLETE;
}

static enum outcome import_image(struct import *im, const char *node, const uint8_t *img, size_t len,
		const struct ucp_dump_head *h)
{
	const struct ucache_config *cfg = ucache_config(im->c->cache);
	struct ucp_image_layout l = ucp_stock_layout();
	struct ucp_image_geom own = ucp_own_geom(cfg), g;
	struct ucp_image_counts n;

	if (!h->has_items || !h->has_blocksize ||
			ucp_image_guess(&l, h->items, h->blocksize, len, &own, &g)) {
		uwsgi_log("[cache-sync] the image from %s (%llu bytes) matches no geometry of items=%llu "
				"blocksize=%llu: refused\n", node, (unsigned long long) len,
				(unsigned long long) h->items, (unsigned long long) h->blocksize);
		return SYNC_FAILED;
	}
	ucp_image_walk(&l, &g, img, len, ucache_now(), cfg->keysize, import_item, im, &n);
	uwsgi_log("[cache-sync] imported %llu items from the stock image of %s (items=%llu keysize=%llu "
			"blocksize=%llu blocks=%llu; %llu expired, %llu invalid, %llu did not fit)\n",
			(unsigned long long) im->imported, node, (unsigned long long) g.items,
			(unsigned long long) g.keysize, (unsigned long long) g.blocksize,
			(unsigned long long) g.blocks, (unsigned long long) n.expired,
			(unsigned long long) n.invalid, (unsigned long long) im->refused);
	return n.invalid ? SYNC_PARTIAL : SYNC_COMPLETE;
}

/* Parse one reply: header(111, n, 7) + vars, then records or an image. */
static enum outcome import_reply(struct import *im, const char *node, const struct reply *r)
{
	struct ucp_dump_head h;
	size_t vlen;

	if (r->len < UCP_HEADER_SIZE || (uint8_t) r->buf[0] != UCP_MODIFIER1 ||
			(uint8_t) r->buf[3] != UCP_M2_DUMP_REPLY ||
			(vlen = ucp_le16(r->buf + 1)) > r->len - UCP_HEADER_SIZE ||
			ucp_dump_head_parse(r->buf + UCP_HEADER_SIZE, vlen, &h)) {
		uwsgi_log("[cache-sync] invalid uwsgi packet received from the cache server %s\n", node);
		return SYNC_FAILED;
	}
	if (ucp_dump_head_native(&h))
		return import_dump(im, node, r->buf + UCP_HEADER_SIZE + vlen, r->len - UCP_HEADER_SIZE - vlen, &h);
	return import_image(im, node, (const uint8_t *) r->buf + UCP_HEADER_SIZE + vlen,
			r->len - UCP_HEADER_SIZE - vlen, &h);
}

static enum outcome sync_node(struct import *im, const char *node, struct reply *r)
{
	struct ucp_cache *c = im->c;
	char *req = uwsgi_malloc(UCP_DUMP_REQUEST_MAX + c->uc.name_len);
	size_t n = ucp_dump_request(req, c->uc.name, c->uc.name_len);
	enum outcome out = SYNC_FAILED;

	if (exchange(node, req, n, r))
		goto end;
	if (r->len == 0) {
		/* a stock server: no cache is named like our vars; ask its way */
		ucp_header(req, c->uc.name_len, UCP_M2_DUMP);
		memcpy(req + UCP_HEADER_SIZE, c->uc.name, c->uc.name_len);
		if (exchange(node, req, UCP_HEADER_SIZE + c->uc.name_len, r))
			goto end;
	}
	out = import_reply(im, node, r);
end:
	free(req);
	return out;
}

void ucp_sync_cache(struct ucp_cache *c, const char *nodes)
{
	const struct ucache_config *cfg = ucache_config(c->cache);
	struct ucp_image_layout l = ucp_stock_layout();
	struct ucp_image_geom g = ucp_own_geom(cfg);
	struct import im = { .c = c };
	/* the largest reply read: 4x this cache's stock image, + 64 MiB for
	 * a small cache syncing from a bigger one */
	struct reply r = { .max = (size_t) (ucp_image_size(&l, &g) * 4 + (64u << 20)) };
	char *list = uwsgi_str((char *) nodes), *save = NULL, *node;
	enum outcome best = SYNC_FAILED;

	for (node = strtok_r(list, ";", &save); node; node = strtok_r(NULL, ";", &save)) {
		enum outcome out;

		uwsgi_log("[cache-sync] getting cache dump from %s ...\n", node);
		out = sync_node(&im, node, &r);
		if (out > best)
			best = out;
		if (out == SYNC_COMPLETE)
			break;
		if (*save)
			uwsgi_log("[cache-sync] trying with the next sync node...\n");
	}
	free(list);
	free(r.buf);
	c->sync_items = im.imported;
	if (best == SYNC_FAILED) {
		uwsgi_log("ucache: cache \"%s\": [cache-sync] no sync node answered (%s): exiting\n", c->uc.name, nodes);
		exit(1);
	}
}
