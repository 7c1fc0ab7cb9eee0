/*
 * rpcreply.c - the one reply convention of ucache's RPC functions, and
 * their registration.
 *
 * A reply is malloc'd into *buffer (uWSGI frees it) and starts with one
 * status byte (docs/PYTHON.md lists the replies per function):
 *   Y  done (payload follows)      N  not done: missing / exists / changed
 *   S  a stale value follows       H, C, T, W  single-flight states
 *   E  error: "E<CODE> <function>: <why>", CODE from the one table below
 * Two functions answer text for people instead, kept as they were for
 * the scripts that read them: ucache_check ("ok NAME ITEMS" / "FAIL NAME:
 * why" per cache) and ucache_invalidate ("ok N" / "FAIL why"); they build
 * it with ucp_rpc_text(), their errors in the same words as the table's.
 * ucache_tags_head answers a raw envelope (its first byte is 0, never a
 * status letter) or an E reply.
 */
#include "ucp.h"
#include "serve/serve.h"

/* The error codes an RPC reply names: errno (negated, as the engine
 * returns it) -> code and what it means.  -ENODEV is "no such local
 * cache", answered as ENOENT (the key's ENOENT is a plain N). */
static const struct {
	int rc;
	const char *code, *what;
} errors[] = {
	{ -E2BIG, "E2BIG", "key or value too large" },
	{ -ENOSPC, "ENOSPC", "cache full" },
	{ -EROFS, "EROFS", "writes refused on this socket" },
	{ -ENOMEM, "ENOMEM", "out of memory" },
	{ -ENODEV, "ENOENT", "no such local cache" },
	{ -ENOTSUP, "ENOTSUP", "not available on a redis= near cache" },
	{ -ERANGE, "ERANGE", "the result is outside the 64-bit range (nothing written)" },
	{ -EINVAL, "EINVAL", "bad argument" },
};

uint64_t ucp_rpc_reply_buffer(struct uwsgi_buffer *ub, char **buffer)
{
	uint64_t len = ub->pos;

	*buffer = ub->buf;
	ub->buf = NULL;
	uwsgi_buffer_destroy(ub);
	return len;
}

uint64_t ucp_rpc_reply(char **buffer, char status, const void *data, size_t len)
{
	struct uwsgi_buffer *ub = uwsgi_buffer_new(len + 1);

	uwsgi_buffer_append(ub, &status, 1);
	if (len)
		uwsgi_buffer_append(ub, (char *) data, len);
	return ucp_rpc_reply_buffer(ub, buffer);
}

uint64_t ucp_rpc_text(char **buffer, const char *text)
{
	size_t n = strlen(text);

	*buffer = uwsgi_malloc(n ? n : 1);
	memcpy(*buffer, text, n);
	return n;
}

uint64_t ucp_rpc_error_why(char **buffer, const char *fn, int rc, const char *why)
{
	size_t i, n = sizeof(errors) / sizeof(errors[0]);
	char msg[256];
	int len;

	for (i = 0; i < n - 1 && errors[i].rc != rc; i++)
		;   /* anything else is the last entry, EINVAL */
	len = snprintf(msg, sizeof(msg), "E%s %s: %s", errors[i].code, fn, why ? why : errors[i].what);
	return ucp_rpc_reply(buffer, msg[0], msg + 1, len > 1 ? (size_t) len - 1 : 0);
}

uint64_t ucp_rpc_error(char **buffer, const char *fn, int rc)
{
	return ucp_rpc_error_why(buffer, fn, rc, NULL);
}

void ucp_rpc_add(struct uwsgi_plugin *owner, const struct ucp_rpc_def *defs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (uwsgi_register_rpc((char *) defs[i].name, owner, 0, defs[i].fn)) {
			uwsgi_log("ucache: cannot register the RPC function %s (RPC table full? raise "
					"--rpc-max)\n", defs[i].name);
			exit(1);
		}
	}
}
