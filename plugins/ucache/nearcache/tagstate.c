/*
 * tagstate.c - the tag state of a near cache (redis=), in Redis, so that
 * a tag invalidated on one machine is invalidated on all at once.
 *
 * One Redis hash per cache, "ucache-tags:" + redis_prefix (outside every
 * prefix - none may start with "ucache-tags:" - so no clear's SCAN deletes
 * it and no listener's tracking of a prefix hears of it):
 *   c      the invalidation clock (decimal)
 *   b      when the hash was made ("born")
 *   IDX    for a counter ucache_tag_index(tag) (0 .. 65535, decimal): the
 *          clock value of its last invalidation
 * Clock values are microseconds of Redis' TIME, or one more than the last
 * value when invalidations come faster than one a microsecond: every value
 * is larger than any before it, even across a FLUSHDB or a restart that
 * lost the hash (Redis' clock keeps going), and stays an exact double
 * (2^53 us is year 2255) for the Lua scripts.
 *
 *   now         HGET c; a missing hash is made with c = b = TIME.
 *   invalidate  one script: s = max(c + 1, TIME); c = s; each IDX = s.
 *   read        nearcache.c's FETCH_LUA, in the read's own round trip: a
 *               tagged entry (envelope with UCACHE_TAGS_SHARED_EPOCH) is
 *               fresh while b <= since and every IDX <= since; no hash at
 *               all is stale.  A hash lost (flushed, evicted) and made
 *               again has b later than every since taken before, so no
 *               invalidation is forgotten.
 * Tagged entries never enter L1 (nearcache.c): every read of one is a Redis
 * round trip, and every path (get, modifier1 111, nginx, remote) sees an
 * invalidation from any machine as soon as its script ran.
 *
 * Redis unreachable: now returns 1 (older than any hash's birth: what is
 * rendered meanwhile is stored stale, never wrongly fresh), invalidate
 * fails, reads miss.
 */
#include "ucp.h"
#include "nearcache/nearcache.h"
#include "nearcache/redis.h"

/* A hash without both c and b (made by hand, half deleted) is made again. */
static const char NOW_LUA[] =
	"local g = redis.call('HMGET', KEYS[1], 'c', 'b') if g[1] and g[2] then return g[1] end "
	"local t = redis.call('TIME') "
	"local s = string.format('%.0f', math.max(tonumber(g[1]) or 0, tonumber(t[1]) * 1000000 + tonumber(t[2]))) "
	"redis.call('HSET', KEYS[1], 'c', s, 'b', s) return s";

/* ARGV: counter indices.  Returns the new clock value. */
static const char INVALIDATE_LUA[] =
	"local k = KEYS[1] local t = redis.call('TIME') "
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
	"local g = redis.call('HMGET', k, 'c', 'b') local c = tonumber(g[1]) "
	"if not c or not g[2] then redis.call('HSET', k, 'b', string.format('%.0f', now)) c = math.max(c or 0, now) end "
	"local s = string.format('%.0f', math.max(c + 1, now)) local a = {'c', s} "
	"for i = 1, #ARGV do a[#a + 1] = ARGV[i] a[#a + 1] = s end "
	"redis.call('HSET', k, unpack(a)) return s";

#define TAGS_PREFIX "ucache-tags:"

void ucp_redis_tags_attach(const char *name, struct ucp_redis *r)
{
	r->tags_key = uwsgi_concat2(TAGS_PREFIX, r->prefix);
	r->tags_key_len = strlen(r->tags_key);
	/* A prefix ends with ':' (ucache_redis_prefix), so it holds a tag
	 * state key - this cache's or another's - only if it starts with
	 * TAGS_PREFIX: clear would delete that state. */
	if (!strncmp(r->prefix, TAGS_PREFIX, sizeof(TAGS_PREFIX) - 1)) {
		uwsgi_log("ucache: cache \"%s\": redis_prefix \"%s\" would contain the tag state key "
				"\"%s\" (and those of every near cache): choose a prefix not starting "
				"with \"%s\"\n", name, r->prefix, r->tags_key, TAGS_PREFIX);
		exit(1);
	}
}

uint64_t ucp_redis_tags_now(struct ucp_cache *c)
{
	const char *argv[4] = { "EVAL", NOW_LUA, "1", c->redis->tags_key };
	size_t lens[4] = { 4, sizeof(NOW_LUA) - 1, 1, c->redis->tags_key_len };
	redisReply *rep = ucp_redis_command(c, UCP_RESEND_SAFE, 4, argv, lens);
	uint64_t now = 1;

	if (rep && rep->type == REDIS_REPLY_STRING && ucp_parse_u64(rep->str, rep->len, &now))
		now = 1;
	if (rep)
		freeReplyObject(rep);
	return now ? now : 1;
}

int ucp_redis_tags_invalidate(struct ucp_cache *c, const void *const *tags, const size_t *lens, size_t n)
{
	const char *argv[4 + UCP_INVALIDATE_BATCH];
	size_t alens[4 + UCP_INVALIDATE_BATCH];
	char idx[UCP_INVALIDATE_BATCH][8];
	redisReply *rep;
	size_t i;

	if (!n || n > UCP_INVALIDATE_BATCH)
		return -EINVAL;
	argv[0] = "EVAL", alens[0] = 4;
	argv[1] = INVALIDATE_LUA, alens[1] = sizeof(INVALIDATE_LUA) - 1;
	argv[2] = "1", alens[2] = 1;
	argv[3] = c->redis->tags_key, alens[3] = c->redis->tags_key_len;
	for (i = 0; i < n; i++) {
		if (!lens[i] || lens[i] > UCACHE_TAG_MAX)
			return -EINVAL;
		alens[4 + i] = (size_t) snprintf(idx[i], sizeof(idx[i]), "%u",
				ucache_tag_index(tags[i], lens[i]));
		argv[4 + i] = idx[i];
	}
	rep = ucp_redis_command(c, UCP_RESEND_SAFE, (int) (4 + n), argv, alens);
	if (!rep)
		return -EIO;
	freeReplyObject(rep);
	return 0;
}
