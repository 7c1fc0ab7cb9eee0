/*
 * stockimage.c - the answer to a stock sync client (a plain modifier2 6,
 * what stock's --cache-sync / sync= sends): stock's vars items and
 * blocksize of this cache's geometry, then an image laid out as stock's
 * memory for that geometry (item array + blocks) built from the live items,
 * with each item's hash computed by the stock client's function (this
 * cache's hash= if it is djb33x or murmur2, else djb33x, stock's default)
 * and chained by hash % hashsize, so that the client's uwsgi_cache_fix()
 * rebuilds a hash table that finds every item.  The write protection
 * (--ucache-readonly*) covers it (server.c).  Lock-free engine reads
 * (peeks: no hit counted), no state.
 */
#include "ucp.h"
#include "writepath.h"
#include "serve/serve.h"
#include "peers/peers.h"
#include "wire/image.h"

/* The stock client's hash of a key (uwsgi_cache_fix() chains by it). */
static struct uwsgi_hash_algo *client_hash(const struct ucache_config *cfg)
{
	return uwsgi_hash_algo_get(cfg->hash == UCACHE_HASH_MURMUR2 ? "murmur2" : "djb33x");
}

static int fill_image(struct ucp_cache *c, struct ucp_image_writer *w, struct uwsgi_hash_algo *algo)
{
	struct ucp_readbuf vbuf = { NULL, 0 };
	size_t klen = 0, vlen = 0;
	char *kbuf = malloc(c->uc.keysize ? c->uc.keysize : 1), *val;
	uint64_t cursor = 0;
	int ret = -1;

	if (!kbuf)
		goto end;
	while (ucache_iter(c->cache, &cursor, kbuf, c->uc.keysize, &klen) == 0) {
		struct ucache_item_info info;

		/* a tagged entry stays out: a stock node cannot honour its tags */
		val = ucp_read_into(c, kbuf, klen, 1, &vbuf, 0, &vlen, &info);
		if (val && ucache_tags_check(c->cache, val, vlen) == 0)
			ucp_image_add(w, kbuf, klen, val, vlen, info.expires, algo->func(kbuf, klen));
	}
	ret = 0;
end:
	free(kbuf);
	free(vbuf.p);
	return ret;
}

void ucp_serve_stock_image(struct wsgi_request *wsgi_req, struct ucp_cache *c)
{
	const struct ucache_config *cfg = ucache_config(c->cache);
	struct ucp_image_layout l = ucp_stock_layout();
	struct ucp_image_geom g = ucp_own_geom(cfg);
	struct uwsgi_hash_algo *algo = client_hash(cfg);
	struct ucp_image_writer w;
	struct uwsgi_buffer *ub = NULL;
	size_t off;

	if (!algo || ucp_image_writer_init(&w, &l, &g, cfg->hashsize)) {
		uwsgi_log("ucache: dump of \"%s\" for a stock client: cannot build its %llu-byte image\n",
				c->uc.name, (unsigned long long) ucp_image_size(&l, &g));
		return;
	}
	if (fill_image(c, &w, algo))
		goto end;
	ub = uwsgi_buffer_new(uwsgi.page_size);
	ub->pos = UCP_HEADER_SIZE;
	if (uwsgi_buffer_append_keynum(ub, "items", 5, (int64_t) cfg->items) ||
			uwsgi_buffer_append_keynum(ub, "blocksize", 9, (int64_t) cfg->blocksize))
		goto end;
	ucp_header(ub->buf, (uint16_t) (ub->pos - UCP_HEADER_SIZE), UCP_M2_DUMP_REPLY);
	if (uwsgi_response_write_body_do(wsgi_req, ub->buf, ub->pos))
		goto end;
	for (off = 0; off < w.len; off += 1u << 20) {
		size_t n = w.len - off < (1u << 20) ? w.len - off : (1u << 20);
		if (uwsgi_response_write_body_do(wsgi_req, (char *) w.buf + off, n))
			goto end;
	}
	uwsgi_log("ucache: cache \"%s\": sent the stock image (%llu items, %llu did not fit its geometry) "
			"to a stock sync client\n", c->uc.name, (unsigned long long) w.added,
			(unsigned long long) w.skipped);
end:
	if (ub)
		uwsgi_buffer_destroy(ub);
	ucp_image_writer_free(&w);
}
