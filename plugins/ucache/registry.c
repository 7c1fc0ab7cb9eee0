/*
 * registry.c - the cache registry: which struct uwsgi_cache is ours, a
 * cache by name, and the walk over every live cache.
 *
 * The list is uwsgi.caches, built once in the master before fork
 * (takeover/options.c) and only ever appended to (a cache another plugin
 * creates, takeover/api.c's ucp_api_create), so it is read without a lock.
 * Every layer above wire/ reads it; it calls nothing of the plugin but
 * wire/packet.c, which keeps it below all of them (tests/check_layering.py).
 */
#include "ucp.h"

struct ucp_cache *ucp_from_uc(struct uwsgi_cache *uc)
{
	struct ucp_cache *c = (struct ucp_cache *) uc;

	if (!c || c->magic != UCP_MAGIC || !c->cache)
		return NULL;
	return c;
}

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

/* Is uc named (name, len)?  Every shim's name_len is strlen(uc->name)
 * truncated to 16 bits (options.c), so when it equals len, uc->name has at
 * least len bytes and uc->name[len] can be read: a NUL there makes the
 * test exact even for a name longer than 65535 bytes. */
static int named(const struct uwsgi_cache *uc, const char *name, size_t len)
{
	if (len > UINT16_MAX)
		return ucp_streq(name, len, uc->name);
	return uc->name_len == len && !uc->name[len] && !memcmp(name, uc->name, len);
}

struct ucp_cache *ucp_lookup(const char *name, size_t len)
{
	struct uwsgi_cache *uc = uwsgi.caches;

	if (!name || !len || !*name)
		return ucp_from_uc(uc);
	for (; uc; uc = uc->next) {
		if (named(uc, name, len))
			return ucp_from_uc(uc);
	}
	return NULL;
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
