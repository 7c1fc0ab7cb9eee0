/*
 * redisaddr.c - the address of a near cache's Redis server (--cache2
 * redis=ADDR), parsed without connecting to anything.
 *
 * Callers: ucache_config_validate() (so that a bad address stops uwsgi at
 * start-up with one line naming it) and the plugin's Redis client
 * (plugins/ucache/redis.c), which connects to the parsed address.  No state,
 * no lock, no allocation: the result is copied into fixed-size fields.
 *
 * Accepted forms:
 *   host:port                       TCP; host a name, IPv4, or [IPv6]
 *   unix:/path                      a unix socket (at most 107 bytes)
 *   redis://[user[:password]@]host[:port][/db]
 *                                   TCP, port 6379 by default, db 0
 * A port is 1..65535, a db 0..65535 (Redis' own limit is its "databases"
 * setting, which only the server knows).  A password in the URL is allowed
 * for compatibility with other clients, but redis_password_file= keeps it
 * off the command line; the plugin never logs it (ucache_redis_addr_show).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Decimal in 1..max (0..max when zero_ok) with no sign or junk. */
static int parse_small(const char *s, size_t len, unsigned max, int zero_ok, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (!len || len > 5)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max || (!v && !zero_ok))
		return -EINVAL;
	*out = v;
	return 0;
}

static int copy_field(char *dst, size_t cap, const char *s, size_t len)
{
	if (len >= cap)
		return -E2BIG;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* The message names the address, with a URL's user and password shown as
 * "***" (they must never reach a log). */
static int fail(const char *addr, const char *why, char *err, size_t errlen)
{
	const char *at = strncmp(addr, "redis://", 8) ? NULL : strrchr(addr, '@');

	if (at)
		uc_err(err, errlen, "invalid Redis address \"redis://***%.200s\" (%s)", at, why);
	else
		uc_err(err, errlen, "invalid Redis address \"%.200s\" (%s)", addr, why);
	return -EINVAL;
}

/* "host:port" or "[v6]:port" in s[0..len); port optional when def_port. */
static int parse_hostport(const char *addr, const char *s, size_t len, unsigned def_port,
		struct ucache_redis_addr *out, char *err, size_t errlen)
{
	const char *host = s, *colon;
	size_t hlen;

	if (len && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return fail(addr, "missing ']' after an IPv6 address", err, errlen);
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1 < s + len ? close + 1 : NULL;
		if (colon && *colon != ':')
			return fail(addr, "expected ':PORT' after ']'", err, errlen);
	} else {
		colon = memrchr(s, ':', len);
		hlen = colon ? (size_t)(colon - s) : len;
		if (colon && memchr(s, ':', hlen))
			return fail(addr, "an IPv6 address needs brackets: [ADDR]:PORT", err, errlen);
	}
	if (!hlen)
		return fail(addr, "missing host", err, errlen);
	if (copy_field(out->host, sizeof(out->host), host, hlen))
		return fail(addr, "host name too long", err, errlen);
	if (!colon) {
		if (!def_port)
			return fail(addr, "expected HOST:PORT, unix:/PATH or redis://...", err, errlen);
		out->port = def_port;
		return 0;
	}
	if (parse_small(colon + 1, (size_t)(s + len - colon - 1), 65535, 0, &out->port))
		return fail(addr, "the port must be 1..65535", err, errlen);
	return 0;
}

/* "user[:password]@" of a URL, s[0..len) without the '@'. */
static int parse_userinfo(const char *addr, const char *s, size_t len,
		struct ucache_redis_addr *out, char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', len);
	size_t ulen = colon ? (size_t)(colon - s) : len;

	if (copy_field(out->user, sizeof(out->user), s, ulen))
		return fail(addr, "user name too long", err, errlen);
	if (colon && copy_field(out->password, sizeof(out->password), colon + 1,
			(size_t)(s + len - colon - 1)))
		return fail(addr, "password too long", err, errlen);
	return 0;
}

static int parse_url(const char *addr, const char *s, struct ucache_redis_addr *out,
		char *err, size_t errlen)
{
	const char *at = strrchr(s, '@');
	const char *slash;
	int rc;

	if (at) {
		rc = parse_userinfo(addr, s, (size_t)(at - s), out, err, errlen);
		if (rc)
			return rc;
		s = at + 1;
	}
	slash = strchr(s, '/');
	rc = parse_hostport(addr, s, slash ? (size_t)(slash - s) : strlen(s), 6379, out, err, errlen);
	if (rc)
		return rc;
	if (slash && parse_small(slash + 1, strlen(slash + 1), 65535, 1, &out->db))
		return fail(addr, "the database must be a number 0..65535", err, errlen);
	return 0;
}

int ucache_redis_addr_parse(const char *addr, struct ucache_redis_addr *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!addr || !*addr)
		return fail(addr ? addr : "", "empty", err, errlen);
	if (!strncmp(addr, "unix:", 5)) {
		if (addr[5] != '/')
			return fail(addr, "unix: needs an absolute path", err, errlen);
		if (copy_field(out->path, sizeof(out->path), addr + 5, strlen(addr + 5)))
			return fail(addr, "socket path longer than 107 bytes", err, errlen);
		return 0;
	}
	if (!strncmp(addr, "redis://", 8))
		return parse_url(addr, addr + 8, out, err, errlen);
	if (strstr(addr, "://"))
		return fail(addr, "the only URL scheme is redis://", err, errlen);
	return parse_hostport(addr, addr, strlen(addr), 0, out, err, errlen);
}

const char *ucache_redis_addr_show(const struct ucache_redis_addr *a, char *buf, size_t len)
{
	if (a->path[0])
		snprintf(buf, len, "unix:%s", a->path);
	else if (strchr(a->host, ':'))
		snprintf(buf, len, "[%s]:%u db %u", a->host, a->port, a->db);
	else
		snprintf(buf, len, "%s:%u db %u", a->host, a->port, a->db);
	return buf;
}
