/*
 * tagrpc.c - tags for every language: the RPC functions behind
 * ucache.wsgi.invalidate_tags() and the Accelerator, usable from any
 * language plugin (uwsgi.call / uwsgi_rpc), a worker, a mule or a spooler,
 * and the invalidation of the modifier2 17 command "invalidate" (server.c).
 *
 *   ucache_invalidate CACHE TAG...   invalidate each TAG in CACHE (""
 *                                    = the default cache): "ok N", or
 *                                    "FAIL why" (nothing or some done)
 *   ucache_tags_now CACHE            the invalidation clock (decimal), to
 *                                    read *before* computing a value
 *   ucache_tags_head CACHE SINCE TAG...
 *                                    the envelope head of a value computed
 *                                    after SINCE was read (binary,
 *                                    ucache_tags_head()), or
 *                                    "E<CODE> ucache_tags_head: why"
 *
 * A tag is 1 to UCACHE_TAG_MAX bytes without a comma (the wire's
 * tags=a,b and the Accelerator split on commas, so a tag holding one could
 * never be invalidated there): the engine refuses any other.
 *
 * A tagged entry is stored as head + payload with any set (include/ucache.h,
 * "tags").
 * No state: every call works on the engine's shared table, or for a near
 * cache (redis=) on its tag state in Redis (nearcache/tagstate.c).
 */
#include "ucp.h"
#include "serve/serve.h"
#include "nearcache/nearcache.h"
#include "wire/proto.h"

/* Invalidate n tags of c: the engine's table, or a near cache's state in
 * Redis (nearcache/tagstate.c, one script for them all).  0, -EINVAL (a bad tag;
 * the others are done on a local cache, none on a near one) or -EIO. */
static int invalidate(struct ucp_cache *c, const void *const *tags, const size_t *lens, size_t n)
{
	size_t i;
	int ret = 0;

	if (c->redis)
		return n ? ucp_redis_tags_invalidate(c, tags, lens, n) : 0;
	for (i = 0; i < n; i++) {
		if (ucache_invalidate_tag(c->cache, tags[i], lens[i]))
			ret = -EINVAL;
	}
	return ret;
}

int ucp_tags_invalidate(struct ucp_cache *c, const char *tags, size_t len)
{
	const void *tag[UCP_INVALIDATE_BATCH];
	size_t tlen[UCP_INVALIDATE_BATCH], pos = 0, n = 0;
	const char *t;
	int ret = 0;

	while (ucp_tags_next(tags, len, &pos, &t, &tlen[n])) {
		tag[n++] = t;
		if (n == UCP_INVALIDATE_BATCH) {
			ret |= invalidate(c, tag, tlen, n);
			n = 0;
		}
	}
	ret |= invalidate(c, tag, tlen, n);
	return ret ? -1 : 0;
}

static uint64_t rpc_invalidate(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	struct ucp_cache *c = argc ? ucp_lookup(argv[0], argvs[0]) : NULL;
	const void *tags[UINT8_MAX];
	size_t lens[UINT8_MAX];
	char line[96];
	uint8_t i;

	if (!c)
		return ucp_rpc_text(buffer, argc ? "FAIL no such cache" : "FAIL usage: ucache_invalidate CACHE TAG...");
	for (i = 1; i < argc; i++) {
		tags[i - 1] = argv[i];
		lens[i - 1] = argvs[i];
		if (!argvs[i] || argvs[i] > UCACHE_TAG_MAX || memchr(argv[i], ',', argvs[i])) {
			snprintf(line, sizeof(line), "FAIL tag %u is empty, longer than %d bytes or has a comma",
					i, UCACHE_TAG_MAX);
			return ucp_rpc_text(buffer, line);
		}
	}
	if (invalidate(c, tags, lens, (size_t) (argc - 1)))
		return ucp_rpc_text(buffer, "FAIL Redis did not acknowledge the invalidation (see the log)");
	snprintf(line, sizeof(line), "ok %u", (unsigned) (argc - 1));
	return ucp_rpc_text(buffer, line);
}

static uint64_t rpc_tags_now(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	struct ucp_cache *c = argc ? ucp_lookup(argv[0], argvs[0]) : NULL;
	char line[32];

	*buffer = NULL;
	if (!c)
		return 0;
	snprintf(line, sizeof(line), "%llu", (unsigned long long) (c->redis ? ucp_redis_tags_now(c)
				: ucache_tags_now(c->cache)));
	return ucp_rpc_text(buffer, line);
}

/* Errors in the RPC convention, "E<CODE> function: why" (an envelope
 * starts with a 0 byte, so the two never mix). */
#define HEAD "ucache_tags_head"

static uint64_t rpc_tags_head(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	struct ucp_cache *c = argc ? ucp_lookup(argv[0], argvs[0]) : NULL;
	const void *tags[UCACHE_TAGS_MAX];
	size_t lens[UCACHE_TAGS_MAX];
	uint64_t since = 0;
	long n;
	uint8_t i;

	if (argc < 3 || argc - 2 > UCACHE_TAGS_MAX)
		return ucp_rpc_error_why(buffer, HEAD, -EINVAL, "usage: ucache_tags_head CACHE SINCE TAG... (1 to 64 tags)");
	if (!c)
		return ucp_rpc_error_why(buffer, HEAD, -ENODEV, "no such cache");
	if (ucp_parse_u64(argv[1], argvs[1], &since) || !since)
		return ucp_rpc_error_why(buffer, HEAD, -EINVAL, "SINCE is not a number from ucache_tags_now");
	for (i = 2; i < argc; i++) {
		tags[i - 2] = argv[i];
		lens[i - 2] = argvs[i];
	}
	*buffer = uwsgi_malloc(UCACHE_TAG_HEAD_MAX);
	n = c->redis ? ucache_tags_head_shared(since, tags, lens, (size_t) (argc - 2), *buffer, UCACHE_TAG_HEAD_MAX)
		: ucache_tags_head(c->cache, since, tags, lens, (size_t) (argc - 2), *buffer, UCACHE_TAG_HEAD_MAX);
	if (n <= 0) {
		free(*buffer);
		return ucp_rpc_error_why(buffer, HEAD, -EINVAL, "a tag is empty, longer than 1024 bytes or has a comma");
	}
	return (uint64_t) n;
}

void ucp_tags_register(struct uwsgi_plugin *owner)
{
	static const struct ucp_rpc_def defs[] = {
		{ "ucache_invalidate", rpc_invalidate },
		{ "ucache_tags_now", rpc_tags_now },
		{ "ucache_tags_head", rpc_tags_head },
	};

	ucp_rpc_add(owner, defs, sizeof(defs) / sizeof(defs[0]));
}
