/*
 * checkrpc.c - the RPC function "ucache_check" [CACHE], registered with
 * --ucache-check-rpc (plugin.c), for operators and the crash tests: the
 * engine's full invariant check (ucache_check: index, slots, free lists,
 * storage, every item's checksum) on one or every local cache, from
 * whichever process calls it (a worker, through uwsgi.call()).  It takes
 * the cache's world lock for O(items): on demand only, never periodic.
 * Its reply is text for people, one line per cache (rpcreply.c says why
 * it is not a status byte).
 */
#include "ucp.h"
#include "serve/serve.h"

/* Append "ok NAME ITEMS\n" or "FAIL NAME: why\n" for one cache (a failure
 * is logged too).  Returns ucache_check()'s result. */
static int check_one(struct ucp_cache *c, struct uwsgi_buffer *out)
{
	char err[512] = "", line[1024];
	int ret = ucache_check(c->cache, err, sizeof(err));
	int n;

	if (ret) {
		uwsgi_log("ucache: check of cache \"%s\" FAILED: %s\n", c->uc.name, err);
		n = snprintf(line, sizeof(line), "FAIL %s: %s\n", c->uc.name, err);
	} else {
		n = snprintf(line, sizeof(line), "ok %s %llu\n", c->uc.name,
				(unsigned long long) ucache_items(c->cache));
	}
	if (n > 0)
		uwsgi_buffer_append(out, line, n < (int) sizeof(line) ? (size_t) n : sizeof(line) - 1);
	return ret;
}

/* RPC "ucache_check" [CACHE]: check CACHE, or every local cache.  The reply
 * (malloc'd into *buffer, the caller frees it) is one line per cache; an
 * unknown cache name answers "FAIL NAME: no such cache". */
static uint64_t check_rpc(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	struct uwsgi_buffer *out = uwsgi_buffer_new(256);
	struct ucp_cache *c;

	for (c = ucp_first(); c; c = ucp_next(c)) {
		if (!argc || ucp_streq(argv[0], argvs[0], c->uc.name))
			check_one(c, out);
	}
	if (!out->pos && argc) {
		uwsgi_buffer_append(out, "FAIL ", 5);
		uwsgi_buffer_append(out, argv[0], argvs[0]);
		uwsgi_buffer_append(out, ": no such cache\n", 16);
	}
	return ucp_rpc_reply_buffer(out, buffer);
}

void ucp_check_register(struct uwsgi_plugin *owner)
{
	static const struct ucp_rpc_def defs[] = { { "ucache_check", check_rpc } };

	ucp_rpc_add(owner, defs, 1);
}
