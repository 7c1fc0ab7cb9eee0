/*
 * writepath.c - the one write path every writer takes: the local write
 * (the engine, or a near cache's Redis behind it: writepath.h dispatches),
 * then its count (stats "sets", "deletes": takeover/statkeys.c) and its
 * replication to the UDP nodes (peers/udp.c).
 *
 * Writers: the redirected magic and shim APIs (takeover/api.c), the
 * modifier1 111 server (serve/server.c) and the RPC functions
 * (serve/rpc.c).  The stock flag UWSGI_CACHE_FLAG_LOCAL means "do not
 * replicate" (a write received from a node, or a del2 with _LOCAL).
 */
#include "ucp.h"
#include "writepath.h"
#include "peers/peers.h"
#include "nearcache/nearcache.h"

int ucp_wrote(struct ucp_cache *c, enum ucp_op op, const char *key, uint16_t klen, int rc)
{
	if (rc)
		return rc;
	ucp_count(c, op);
	if (c->udp && op == UCP_OP_DEL)
		ucp_udp_send_del(c, key, klen);
	else if (c->udp)
		ucp_udp_send_item(c, key, klen);
	return 0;
}

static struct ucp_ratelimit rl_too_large;

void ucp_log_too_large(const struct ucp_cache *c, size_t klen, size_t vlen)
{
	char more[64] = "";
	uint64_t dropped = 0;

	if (!ucp_ratelimit_pass(&rl_too_large, &dropped))
		return;
	if (dropped)
		snprintf(more, sizeof(more), " (and %llu more since the last line)", (unsigned long long) dropped);
	uwsgi_log("ucache: cache \"%s\": a write refused, too large: key %zu bytes, value %zu bytes "
			"(limits: keysize %llu, value %llu bytes)%s\n", c->uc.name, klen, vlen,
			(unsigned long long) c->uc.keysize, (unsigned long long) ucache_max_value(c->cache), more);
}

/* Stock semantics of a relative expiry (docs/STOCK_SEMANTICS.md "Expiry"):
 * now + expires, modulo 2^64.  A sum that wraps is a time in the past
 * (Django sends -1 for "expire now"), so it is passed as an absolute time;
 * anything else stays relative. */
static uint64_t expiry(uint64_t expires, uint64_t uflags, unsigned *sflags)
{
	uint64_t now, when;

	if (!expires)
		return 0;
	if (uflags & (UWSGI_CACHE_FLAG_ABSEXPIRE)) {
		*sflags |= UCACHE_SET_ABSEXPIRE;
		return expires;
	}
	now = ucache_now();
	if (expires <= UINT64_MAX - now)
		return expires;
	*sflags |= UCACHE_SET_ABSEXPIRE;
	when = now + expires;
	return when ? when : 1;
}

static int local_math(struct ucp_cache *c, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags)
{
	enum ucache_math_op op;
	int64_t delta;

	if (vlen != sizeof(delta))
		return -1;
	if (flags & (UWSGI_CACHE_FLAG_INC))
		op = UCACHE_MATH_INC;
	else if (flags & (UWSGI_CACHE_FLAG_DEC))
		op = UCACHE_MATH_DEC;
	else if (flags & (UWSGI_CACHE_FLAG_MUL))
		op = UCACHE_MATH_MUL;
	else if (flags & (UWSGI_CACHE_FLAG_DIV))
		op = UCACHE_MATH_DIV;
	else
		return -1;
	memcpy(&delta, val, sizeof(delta));
	if (c->redis) {
		if (ucp_redis_math(c, key, klen, op, delta, expires, !!(flags & (UWSGI_CACHE_FLAG_UPDATE))))
			return -1;
		ucp_count(c, UCP_OP_SET);
		return 0;
	}
	/* stock: without UPDATE, math on an existing key fails like a set */
	if (!(flags & (UWSGI_CACHE_FLAG_UPDATE)) && ucache_exists(c->cache, key, klen) == 0)
		return -1;
	if (ucache_math(c->cache, key, klen, op, delta, expires, NULL))
		return -1;
	ucp_count(c, UCP_OP_SET);
	if (c->udp && !(flags & (UWSGI_CACHE_FLAG_LOCAL)))
		ucp_udp_send_item(c, key, klen);
	return 0;
}

int ucp_local_set(struct ucp_cache *c, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags)
{
	unsigned sflags = 0;

	if (flags & (UWSGI_CACHE_FLAG_MATH))
		return local_math(c, key, klen, val, vlen, expires, flags);
	if (flags & (UWSGI_CACHE_FLAG_UPDATE))
		sflags |= UCACHE_SET_UPDATE;
	expires = expiry(expires, flags, &sflags);
	if (ucp_set(c, key, klen, val, vlen, expires, sflags))
		return -1;
	ucp_count(c, UCP_OP_SET);
	/* _LOCAL: the stock flag for "do not replicate" */
	if (c->udp && !(flags & (UWSGI_CACHE_FLAG_LOCAL)))
		ucp_udp_send_set(c, key, klen, val, vlen, expires, !!(sflags & UCACHE_SET_ABSEXPIRE));
	return 0;
}

int ucp_local_del(struct ucp_cache *c, const char *key, uint16_t klen)
{
	return ucp_wrote(c, UCP_OP_DEL, key, klen, ucp_del(c, key, klen));
}

