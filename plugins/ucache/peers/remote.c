/*
 * remote.c - the cache client for "name@addr" cache names.
 *
 * Speaks the stock magic protocol (modifier1 111, modifier2 17), so it talks
 * to stock uWSGI cache servers and to ucache servers (server.c) alike:
 *
 *   request  header(111, n, 17) + vars cmd, key [, size] [, expires]
 *            [, cache] [+ size bytes of value for set/update]
 *   reply    header(111, n, 17) + vars status=ok [, size] [, expires]
 *            [+ size bytes of value for get]; failure or miss: the server
 *            closes the connection without a reply.
 *
 * One connection per operation, like the stock client, over client.c
 * (every wait bounded by --socket-timeout).  Every path closes its
 * socket (one cleanup label per function): no fd leaks on errors or
 * timeouts.
 *
 * Math operations (cache_inc & co.) have no wire command: the stock client
 * sends them as "update" with the 8-byte delta as the value, silently
 * overwriting the number.  ucache refuses them instead (failure value).
 */
#include "ucp.h"
#include "peers/peers.h"
#include "wire/proto.h"

/* Largest value accepted from a remote server (its "size" var). */
#define UCP_REMOTE_MAX_VALUE (UINT64_C(1) << 30)

int ucp_remote_split(const char *cache, const char **addr, uint16_t *name_len)
{
	const char *at = cache ? strchr(cache, '@') : NULL;

	if (!at || at - cache > UINT16_MAX || !at[1])
		return -1;
	*addr = at + 1;
	*name_len = (uint16_t) (at - cache);
	return 0;
}

/* Read a reply's header and vars into *vars (malloc'd) and parse them. */
static int read_reply(int fd, char **vars, struct ucp_magic *m)
{
	unsigned char uh[4];
	size_t n;

	if (ucp_client_read(fd, (char *) uh, 4) || uh[0] != 111)
		return -1;
	n = (size_t) uh[1] | ((size_t) uh[2] << 8);
	*vars = uwsgi_malloc(n ? n : 1);
	if (ucp_client_read(fd, *vars, n) || ucp_magic_parse(*vars, n, m))
		return -1;
	return ucp_streq(m->status, m->status_len, "ok") ? 0 : -1;
}

/* Send req (+ body) to the server named by cache and read the reply vars.
 * Returns the socket (the caller reads any value, then closes it) or -1. */
static int exchange(const char *cache, struct uwsgi_buffer *req, const char *body, uint64_t blen,
		struct ucp_magic *m, char **vars)
{
	const char *addr;
	uint16_t name_len;
	int fd;

	*vars = NULL;
	if (!req || ucp_remote_split(cache, &addr, &name_len))
		return -1;
	if (body && uwsgi_buffer_append(req, (char *) body, blen))
		return -1;
	fd = ucp_client_connect(addr);
	if (fd < 0)
		return -1;
	if (ucp_client_write(fd, req->buf, req->pos) || read_reply(fd, vars, m)) {
		close(fd);
		return -1;
	}
	return fd;
}

struct uwsgi_buffer *ucp_magic_request(const char *cmd, const char *cache, uint16_t cache_len,
		const char *key, uint16_t key_len, int with_size, uint64_t size, uint64_t expires)
{
	size_t cap = 128 + strlen(cmd) + (size_t) key_len + cache_len;
	struct uwsgi_buffer *ub = uwsgi_buffer_new(cap);

	ub->pos = ucp_magic_request_encode(ub->buf, cap, cmd, cache, cache_len, key, key_len,
			with_size, size, expires);
	if (!ub->pos) {
		uwsgi_buffer_destroy(ub);
		return NULL;
	}
	return ub;
}

static struct uwsgi_buffer *request_for(const char *cmd, const char *cache, char *key, uint16_t klen,
		int with_size, uint64_t size, uint64_t expires)
{
	const char *addr;
	uint16_t name_len;

	if (ucp_remote_split(cache, &addr, &name_len))
		return NULL;
	return ucp_magic_request(cmd, cache, name_len, key, klen, with_size, size, expires);
}

char *ucp_remote_get(const char *cache, char *key, uint16_t klen, uint64_t *vlen, uint64_t *expires)
{
	struct uwsgi_buffer *req = request_for("get", cache, key, klen, 0, 0, 0);
	struct ucp_magic m;
	char *vars = NULL, *value = NULL;
	int fd = exchange(cache, req, NULL, 0, &m, &vars);

	if (fd < 0)
		goto end;
	if (m.size > 0 && m.size <= UCP_REMOTE_MAX_VALUE) {
		value = uwsgi_malloc(m.size);
		if (ucp_client_read(fd, value, m.size)) {
			free(value);
			value = NULL;
		}
	}
	close(fd);
	if (value) {
		*vlen = m.size;
		if (expires)
			*expires = m.expires;
	}
end:
	free(vars);
	if (req)
		uwsgi_buffer_destroy(req);
	return value;
}

/* Send cmd, with a "size" var and the vlen bytes of val when vlen is not 0,
 * and read the reply: 0 if the server answered status=ok, else -1. */
static int command(const char *cmd, const char *cache, char *key, uint16_t klen, char *val,
		uint64_t vlen, uint64_t expires)
{
	struct uwsgi_buffer *req = request_for(cmd, cache, key, klen, vlen > 0, vlen, expires);
	struct ucp_magic m;
	char *vars = NULL;
	int fd = exchange(cache, req, val, vlen, &m, &vars);

	if (fd >= 0)
		close(fd);
	free(vars);
	if (req)
		uwsgi_buffer_destroy(req);
	return fd >= 0 ? 0 : -1;
}

int ucp_remote_set(const char *cache, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags)
{
	const char *cmd = (flags & (UWSGI_CACHE_FLAG_UPDATE)) ? "update" : "set";

	if ((flags & (UWSGI_CACHE_FLAG_MATH)) || !klen || !vlen)
		return -1;
	return command(cmd, cache, key, klen, val, vlen, expires);
}

/* del, exists, clear: 0 if the server answered status=ok, else -1. */
int ucp_remote_simple(const char *cmd, const char *cache, char *key, uint16_t klen)
{
	return command(cmd, cache, key, klen, NULL, 0, 0);
}
