/*
 * server.c - the modifier1 111 request handler (the stock "cache" plugin's
 * job, which ucache takes over: plugin.c installs it in uwsgi.p[111]).
 *
 * Served today: modifier2 17, the magic protocol of remote clients (stock
 * and ucache, see remote.c and STOCK_SEMANTICS.md):
 *
 *   request  vars cmd, key, cache, expires, size [+ size bytes for set/update]
 *   reply    header(111, n, 17) + vars status=ok [, size, expires] [+ value]
 *   failure  no reply: the connection is closed
 *
 * Other modifier2 values (0..6: raw get/set/del, nginx lookups, stream,
 * dump) are answered by closing the connection; they are a later step.
 *
 * Everything read from the socket is untrusted: the vars go through the
 * bounds-checked parser in proto.c, sizes are checked against the cache's
 * maximum value before any read.  Unlike the stock plugin, "clear" clears
 * the named cache (stock looped over the default cache's item count), and
 * no lock is held while writing to the client.
 */
#include "glue.h"

/* Send status=ok [+ size, expires, value]; -1 if the reply cannot be built. */
static int reply_ok(struct wsgi_request *wsgi_req, const char *value, size_t vlen, uint64_t expires)
{
	struct uwsgi_buffer *ub = uwsgi_buffer_new(uwsgi.page_size + vlen);
	int ret = -1;

	ub->pos = 4;
	if (uwsgi_buffer_append_keyval(ub, "status", 6, "ok", 2))
		goto end;
	if (value && uwsgi_buffer_append_keynum(ub, "size", 4, (int64_t) vlen))
		goto end;
	if (value && expires && uwsgi_buffer_append_keynum(ub, "expires", 7, (int64_t) expires))
		goto end;
	if (uwsgi_buffer_set_uh(ub, 111, 17))
		goto end;
	if (value && uwsgi_buffer_append(ub, (char *) value, vlen))
		goto end;
	uwsgi_response_write_body_do(wsgi_req, ub->buf, ub->pos);
	ret = 0;
end:
	uwsgi_buffer_destroy(ub);
	return ret;
}

static int cmd_get(struct wsgi_request *wsgi_req, struct ucp_cache *c, struct ucp_magic *m)
{
	struct ucache_item_info info;
	size_t vlen = 0;
	char *value = ucache_get_alloc(c->cache, m->key, m->key_len, &vlen, &info);
	int ret;

	if (!value)
		return -1;
	ret = reply_ok(wsgi_req, value, vlen, info.expires);
	free(value);
	return ret;
}

static int cmd_exists(struct wsgi_request *wsgi_req, struct ucp_cache *c, struct ucp_magic *m)
{
	if (ucache_exists(c->cache, m->key, m->key_len))
		return -1;
	return reply_ok(wsgi_req, NULL, 0, 0);
}

static int cmd_del(struct wsgi_request *wsgi_req, struct ucp_cache *c, struct ucp_magic *m)
{
	if (ucache_del(c->cache, m->key, m->key_len))
		return -1;
	return reply_ok(wsgi_req, NULL, 0, 0);
}

static int cmd_clear(struct wsgi_request *wsgi_req, struct ucp_cache *c, struct ucp_magic *m)
{
	(void) m;
	ucache_clear(c->cache);
	return reply_ok(wsgi_req, NULL, 0, 0);
}

/* set/update: the value follows the vars as a body of exactly size bytes. */
static int store(struct wsgi_request *wsgi_req, struct ucp_cache *c, struct ucp_magic *m, uint64_t flags)
{
	ssize_t rlen = 0;
	char *value;

	if (!m->has_size || m->size == 0 || m->size > c->uc.max_item_size)
		return -1;
	wsgi_req->post_cl = m->size;
	value = uwsgi_request_body_read(wsgi_req, (ssize_t) m->size, &rlen);
	if (!value || rlen != (ssize_t) m->size)
		return -1;
	if (ucp_local_set(c, (char *) m->key, m->key_len, value, m->size, m->expires, flags))
		return -1;
	return reply_ok(wsgi_req, NULL, 0, 0);
}

static int cmd_set(struct wsgi_request *wsgi_req, struct ucp_cache *c, struct ucp_magic *m)
{
	return store(wsgi_req, c, m, 0);
}

static int cmd_update(struct wsgi_request *wsgi_req, struct ucp_cache *c, struct ucp_magic *m)
{
	return store(wsgi_req, c, m, UWSGI_CACHE_FLAG_UPDATE);
}

static const struct {
	const char *name;
	int (*fn)(struct wsgi_request *, struct ucp_cache *, struct ucp_magic *);
} magic_cmds[] = {
	{ "get", cmd_get },
	{ "set", cmd_set },
	{ "update", cmd_update },
	{ "del", cmd_del },
	{ "exists", cmd_exists },
	{ "clear", cmd_clear },
};

static void serve_magic(struct wsgi_request *wsgi_req)
{
	struct ucp_magic m;
	struct ucp_cache *c;
	size_t i;

	if (ucp_magic_parse(wsgi_req->buffer, wsgi_req->uh->pktsize, &m) || !m.cmd)
		return;
	c = ucp_lookup(m.cache, m.cache_len);
	if (!c)
		return;
	for (i = 0; i < sizeof(magic_cmds) / sizeof(magic_cmds[0]); i++) {
		if (ucp_streq(m.cmd, m.cmd_len, magic_cmds[i].name)) {
			magic_cmds[i].fn(wsgi_req, c, &m);
			return;
		}
	}
}

int ucp_request(struct wsgi_request *wsgi_req)
{
	switch (wsgi_req->uh->modifier2) {
	case 17:
		serve_magic(wsgi_req);
		break;
	default:
		/* modifier2 0..6: not served yet, the client sees a close */
		break;
	}
	return UWSGI_OK;
}
