/*
 * inspect_remote.c - the client side of the key listing over modifier1 111
 * (plugins/ucache/wire/keys.h): one connection per batch, each batch
 * read whole, its entries handed to the caller, until the cursor is 0.
 * Read-only: the server peeks (no hit, no LRU change), and a worker is
 * held for one batch only (at most UCP_KEYS_COUNT_MAX keys, 64 KiB).
 *
 * Every byte from the server is checked (proto.c's parsers); a stalled
 * server is given up after IK_TIMEOUT_S seconds.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "inspect.h"
#include "proto.h"

#define IK_TIMEOUT_S 10

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *) &sun, sizeof(sun))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_tcp(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	const char *colon = strrchr(addr, ':');
	char host[256];
	int fd = -1;

	if (!colon || (size_t) (colon - addr) >= sizeof(host)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(host, addr, (size_t) (colon - addr));
	host[colon - addr] = '\0';
	if (getaddrinfo(host[0] ? host : "127.0.0.1", colon + 1, &hints, &res)) {
		errno = EHOSTUNREACH;
		return -1;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

static int dial(const char *addr)
{
	struct timeval tv = { .tv_sec = IK_TIMEOUT_S };
	int fd = strchr(addr, '/') ? connect_unix(addr) : connect_tcp(addr);

	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

/* Read exactly len bytes: 0, or -1 (error, timeout, or an early close). */
static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

struct batch {
	uint64_t cursor, count, size;
	char *body;              /* size bytes of entries, malloc'd */
};

/* Read one reply: the head's vars, then the entries' bytes. */
static int read_reply(int fd, struct batch *b, char *err, size_t errlen)
{
	unsigned char hdr[UCP_HEADER_SIZE];
	char vars[UINT16_MAX];
	struct ucp_magic m;
	uint16_t n;

	if (read_full(fd, hdr, sizeof(hdr)))
		return fail(err, errlen, "%s", errno == ECONNRESET ? "closed without a reply: an unknown cache, "
			    "a read-only socket (listing keys needs the write permission, as a dump does), "
			    "or a uWSGI without ucache's key listing" : strerror(errno));
	n = ucp_le16(hdr + 1);
	if (hdr[0] != UCP_MODIFIER1 || hdr[3] != UCP_M2_MAGIC)
		return fail(err, errlen, "not a modifier1 111 reply (modifier1 %u, modifier2 %u)", hdr[0], hdr[3]);
	if (read_full(fd, vars, n) || ucp_magic_parse(vars, n, &m))
		return fail(err, errlen, "a truncated or malformed reply head");
	if (!m.status || !ucp_streq(m.status, m.status_len, "ok") || !m.has_size ||
	    m.size > UCP_KEYS_BYTES + UCP_KEYS_ENTRY_HEAD + UCP_KEY_MAX)
		return fail(err, errlen, "a reply without status=ok and a valid size");
	b->cursor = m.cursor;
	b->count = m.count;
	b->size = m.size;
	b->body = malloc(m.size ? m.size : 1);
	if (!b->body || read_full(fd, b->body, m.size))
		return fail(err, errlen, "reading %llu bytes of keys: %s", (unsigned long long) m.size,
			    b->body ? strerror(errno) : "out of memory");
	return 0;
}

/* Hand the batch's entries to fn: 1 if fn stopped, 0, or -1 (malformed). */
static int each_entry(const struct batch *b, ik_fn fn, void *ctx, char *err, size_t errlen)
{
	size_t pos = 0;
	uint64_t i;
	int rc;

	for (i = 0; i < b->count; i++) {
		struct ucp_keys_entry e;
		long used = ucp_keys_entry_parse(b->body + pos, b->size - pos, &e);
		struct ik_entry ie;

		if (used < 0)
			return fail(err, errlen, "a malformed entry (%s)", ucp_perr_str((int) used));
		ie = (struct ik_entry){ (const unsigned char *) e.key, e.key_len, e.value_len,
					e.ttl ? (int64_t) e.ttl : -1 };
		pos += (size_t) used;
		rc = fn(ctx, &ie);
		if (rc)
			return rc < 0 ? fail(err, errlen, "out of memory") : 1;
	}
	return pos == b->size ? 0 : fail(err, errlen, "%zu bytes after the last entry", (size_t) (b->size - pos));
}

static int one_batch(const char *addr, const char *cache, unsigned batch, struct batch *b, char *err,
		     size_t errlen)
{
	size_t clen = cache ? strlen(cache) : 0;
	char *req = malloc(UCP_KEYS_REQUEST_MAX + clen);
	size_t rlen;
	int fd, rc = -1;

	if (!req)
		return fail(err, errlen, "out of memory");
	rlen = ucp_keys_request(req, cache, (uint16_t) clen, b->cursor, batch);
	fd = dial(addr);
	if (fd < 0)
		fail(err, errlen, "connect: %s", strerror(errno));
	else if (write(fd, req, rlen) != (ssize_t) rlen)
		fail(err, errlen, "write: %s", strerror(errno));
	else
		rc = read_reply(fd, b, err, errlen);
	if (fd >= 0)
		close(fd);
	free(req);
	return rc;
}

int ik_remote_each(const char *addr, const char *cache, unsigned batch, ik_fn fn, void *ctx,
		   char *err, size_t errlen)
{
	struct batch b = { 0 };
	int rc;

	if (cache && strlen(cache) > UINT16_MAX - 16)
		return fail(err, errlen, "cache name too long");
	do {
		uint64_t asked = b.cursor;
		b.body = NULL;
		rc = one_batch(addr, cache, batch, &b, err, errlen);
		if (rc == 0)
			rc = each_entry(&b, fn, ctx, err, errlen);
		free(b.body);
		if (rc == 0 && b.cursor && !b.count && b.cursor == asked)
			rc = fail(err, errlen, "the server's cursor does not move (%llu)", (unsigned long long) asked);
	} while (rc == 0 && b.cursor);
	return rc < 0 ? -1 : 0;
}
