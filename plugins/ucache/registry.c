/*
 * registry.c - the cache registry: which struct uwsgi_cache is ours, a
 * cache by name, and the walk over every live cache.
 *
 * The list is uwsgi.caches, built once in the master before fork
 * (takeover/options.c) and only ever appended to (a cache another plugin
 * creates, takeover/api.c's ucp_api_create), so it is read without a lock.
 * Every layer above wire/ reads it; it calls nothing of the plugin but
 * wire/packet.c, which keeps it below all of them (tests/check_layering.py).
 * ucp_from_uc and ucp_lookup are inline in ucp.h: every redirected stock
 * call makes one, and out of line they cost 8 instructions a get (callgrind,
 * make bench's instr section, 429 -> 437 when they moved here from api.c).
 */
#include "ucp.h"

/* The first live cache from uc on (uc itself included), or NULL. */
static struct ucp_cache *live_from(struct uwsgi_cache *uc)
{
	for (; uc; uc = uc->next) {
		struct ucp_cache *c = ucp_from_uc(uc);

		if (c)
			return c;
	}
	return NULL;
}

struct ucp_cache *ucp_first(void)
{
	return live_from(uwsgi.caches);
}

struct ucp_cache *ucp_next(const struct ucp_cache *c)
{
	return live_from(c->uc.next);
}

void ucp_cache_names(char *out, size_t len)
{
	struct uwsgi_cache *uc;
	size_t pos = 0;

	out[0] = 0;
	for (uc = uwsgi.caches; uc && pos < len; uc = uc->next) {
		int n = snprintf(out + pos, len - pos, "%s\"%s\"", pos ? ", " : "", uc->name);
		if (n < 0)
			break;
		pos += (size_t) n;
	}
}
