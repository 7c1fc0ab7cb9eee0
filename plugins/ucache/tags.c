/*
 * tags.c - tags for every language: the RPC functions behind
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
 *                                    ucache_tags_head()); empty on error
 *
 * A tagged entry is stored as head + payload with any set (include/ucache.h,
 * "tags").
 * No state: every call works on the engine's shared table.
 */
#include "glue.h"

int ucp_tags_invalidate(struct ucp_cache *c, const char *tags, size_t len)
{
	const char *tag;
	size_t pos = 0, tlen;
	int ret = 0;

	while (ucp_tags_next(tags, len, &pos, &tag, &tlen)) {
		if (ucache_invalidate_tag(c->cache, tag, tlen))
			ret = -1;
	}
	return ret;
}

/* *buffer = a malloc'd copy of the text; returns its length. */
static uint64_t reply(char **buffer, const char *text)
{
	size_t n = strlen(text);

	*buffer = uwsgi_malloc(n ? n : 1);
	memcpy(*buffer, text, n);
	return n;
}

static uint64_t rpc_invalidate(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	struct ucp_cache *c = argc ? ucp_lookup(argv[0], argvs[0]) : NULL;
	char line[96];
	uint8_t i;

	if (!c)
		return reply(buffer, argc ? "FAIL no such cache" : "FAIL usage: ucache_invalidate CACHE TAG...");
	for (i = 1; i < argc; i++) {
		if (ucache_invalidate_tag(c->cache, argv[i], argvs[i])) {
			snprintf(line, sizeof(line), "FAIL tag %u is empty or longer than %d bytes", i,
					UCACHE_TAG_MAX);
			return reply(buffer, line);
		}
	}
	snprintf(line, sizeof(line), "ok %u", (unsigned) (argc - 1));
	return reply(buffer, line);
}

static uint64_t rpc_tags_now(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	struct ucp_cache *c = argc ? ucp_lookup(argv[0], argvs[0]) : NULL;
	char line[32];

	*buffer = NULL;
	if (!c)
		return 0;
	snprintf(line, sizeof(line), "%llu", (unsigned long long) ucache_tags_now(c->cache));
	return reply(buffer, line);
}

static uint64_t rpc_tags_head(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	struct ucp_cache *c = argc ? ucp_lookup(argv[0], argvs[0]) : NULL;
	const void *tags[UCACHE_TAGS_MAX];
	size_t lens[UCACHE_TAGS_MAX];
	uint64_t since = 0;
	long n;
	uint8_t i;

	*buffer = NULL;
	if (!c || argc < 3 || argc - 2 > UCACHE_TAGS_MAX || ucp_parse_u64(argv[1], argvs[1], &since))
		return 0;
	for (i = 2; i < argc; i++) {
		tags[i - 2] = argv[i];
		lens[i - 2] = argvs[i];
	}
	*buffer = uwsgi_malloc(UCACHE_TAG_HEAD_MAX);
	n = ucache_tags_head(c->cache, since, tags, lens, (size_t) (argc - 2), *buffer, UCACHE_TAG_HEAD_MAX);
	if (n <= 0) {
		free(*buffer);
		*buffer = NULL;
		return 0;
	}
	return (uint64_t) n;
}

void ucp_tags_register(void)
{
	if (uwsgi_register_rpc("ucache_invalidate", &ucache_plugin, 0, rpc_invalidate) ||
			uwsgi_register_rpc("ucache_tags_now", &ucache_plugin, 0, rpc_tags_now) ||
			uwsgi_register_rpc("ucache_tags_head", &ucache_plugin, 0, rpc_tags_head)) {
		uwsgi_log("ucache: cannot register the RPC functions ucache_invalidate, ucache_tags_now "
				"and ucache_tags_head (raise --rpc-max?)\n");
		exit(1);
	}
}
