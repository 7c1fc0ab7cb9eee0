/*
 * api.c - the redirected uwsgi_cache_* functions (hook.c has the list).
 *
 * Two families:
 *
 *   magic API (uwsgi_cache_magic_*): what language plugins, router_cache and
 *     --check-cache call.  A cache argument of NULL or "" is the default
 *     (first) cache, "name" a local cache, "name@addr" a remote one
 *     (remote.c).  Values are returned in malloc'd buffers the caller frees.
 *
 *   shim API (uwsgi_cache_get2/3/4, set2, del2, exists2, num2, keys, ...):
 *     callers that hold a struct uwsgi_cache * (ssl sessions, static paths,
 *     corerouter, Python's cache_keys).  They get &ucp_cache.uc and expect
 *     the stock contract that get2/3/4 return a pointer into the cache,
 *     valid while they hold uc->lock.  ucache has no such pointer (readers
 *     take no lock), so the value is copied into a per-thread buffer that
 *     stays valid until the same thread's next get2/3/4: every caller in
 *     uWSGI 2.0.21 consumes it before making another cache call.
 *
 * Locking: the engine is safe from any process and thread; nothing here
 * takes uc->lock.  Legacy callers still take it around their calls (it is a
 * real uWSGI rwlock, see options.c), which is harmless.
 *
 * Failure values are the stock ones (NULL, -1, 0).  A write refused for its
 * size is logged at most once a second per process (and counted by the
 * engine: stats' too_large), so that a value that never fits is visible
 * without an oversized key or value from any language flooding the log.
 */
#include "glue.h"

struct ucp_cache ucp_selftest_sentinel;

/* Per-thread copy buffers for get2/3/4 and keys (never freed: bounded by
 * the largest value / key a thread has read). */
static __thread char *tl_val;
static __thread size_t tl_val_cap;
static __thread struct uwsgi_cache_item *tl_item;
static __thread size_t tl_item_cap;

/* ---------------------------------------------------------------- lookup */

struct ucp_cache *ucp_from_uc(struct uwsgi_cache *uc)
{
	struct ucp_cache *c = (struct ucp_cache *) uc;

	if (!c || c->magic != UCP_MAGIC || !c->cache)
		return NULL;
	return c;
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

static struct ucp_cache *local(const char *cache)
{
	return ucp_lookup(cache, cache ? strlen(cache) : 0);
}

/*
 * The magic API's cache argument, resolved without walking the list in the
 * common cases (one call per uwsgi.cache_get(), router_cache action or
 * --check-cache lookup):
 *
 *   NULL or ""   the default cache, uwsgi.caches: one load;
 *   "name"       one of the last UCP_MEMO caches this thread found by name
 *                (tl_memo, most recent first): one strcmp() per entry;
 *   "name@addr"  remote: NULL with *remote set (remote.c takes it);
 *   otherwise    the walk (ucp_lookup), whose hit enters tl_memo.
 *
 * Why a struct ucp_cache pointer may be kept: the list is built in the
 * master before fork (options.c), caches created later by a plugin
 * (ucp_api_create) are only appended, and no shim is ever freed (uWSGI 2.0
 * has no way to destroy a cache; ucp_caches_close() only detaches the
 * engine, which c->cache == NULL shows).  So a pointer found once names the
 * same cache for the life of the process, and of every process forked from
 * it.
 *
 * Why names, not addresses: the name is compared because the argument's
 * address proves nothing (a freed Python str's UTF-8 buffer is reused by
 * another str with other contents).  Memo slots picked by address were
 * tried and dropped: two Python constants ('c1', 'c4') landed in one slot
 * and every get paid the walk plus a failed compare.  Two entries, so that
 * a request alternating between two named caches hits on both; a thread
 * cycling through three or more names pays the walk, as before.
 *
 * Measured (callgrind, instructions per get of a 100-byte value, 4 caches,
 * engine layout 5, the walk of before -> now): C magic_get on the default
 * cache 679 -> 666, on the 1st cache by name 791 -> 693, on the 4th
 * 1001 -> 693, alternating between two names 896 -> 708, cycling through
 * three 890 -> 898; Python uwsgi.cache_get(k, 'c4') 1577 -> 1263 (stock:
 * 1301).
 *
 * An entry only ever holds a cache found for a name without '@', so a name
 * equal to its name has no '@' either: trying the memo before the '@' test
 * routes no remote name locally.  The result is the stock
 * uwsgi_cache_magic_*() one: the first cache of that name, or NULL.
 */
#define UCP_MEMO 2

static __thread struct ucp_cache *tl_memo[UCP_MEMO];

/* Not the default cache, not in the memo: remote, or the walk. */
static struct ucp_cache *resolve_slow(const char *cache, int *remote)
{
	struct ucp_cache *c;
	int i;

	if (strchr(cache, '@')) {
		*remote = 1;
		return NULL;
	}
	*remote = 0;
	c = ucp_lookup(cache, strlen(cache));
	if (c) {
		for (i = UCP_MEMO - 1; i > 0; i--)
			tl_memo[i] = tl_memo[i - 1];
		tl_memo[0] = c;
	}
	return c;
}

/* Inlined into each magic function: the fast paths cost no call. */
static inline struct ucp_cache *resolve(const char *cache, int *remote)
{
	struct ucp_cache *c;
	int i;

	if (!cache || !*cache) {
		*remote = 0;
		return ucp_from_uc(uwsgi.caches);
	}
	for (i = 0; i < UCP_MEMO && (c = tl_memo[i]); i++) {
		if (!strcmp(cache, c->uc.name)) {
			*remote = 0;
			return c->cache ? c : NULL;
		}
	}
	return resolve_slow(cache, remote);
}

/* ---------------------------------------------------------------- writes */

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
	int ret = ucp_del(c, key, klen);

	if (!ret)
		ucp_count(c, UCP_OP_DEL);
	if (!ret && c->udp)
		ucp_udp_send_del(c, key, klen);
	return ret;
}

/* ------------------------------------------------------------- magic API */

char *ucp_api_magic_get(char *key, uint16_t klen, uint64_t *vlen, uint64_t *expires, char *cache)
{
	struct ucache_item_info info;
	size_t len = 0;
	int remote;
	struct ucp_cache *c = resolve(cache, &remote);
	char *value;

	if (remote)
		return ucp_remote_get(cache, key, klen, vlen, expires);
	if (!c)
		return NULL;
	value = ucp_get_alloc(c, key, klen, &len, expires ? &info : NULL);
	if (!value)
		return NULL;
	*vlen = len;
	if (expires)
		*expires = info.expires;
	return value;
}

int ucp_api_magic_set(char *key, uint16_t klen, char *val, uint64_t vlen, uint64_t expires,
		uint64_t flags, char *cache)
{
	int remote;
	struct ucp_cache *c = resolve(cache, &remote);

	if (remote)
		return ucp_remote_set(cache, key, klen, val, vlen, expires, flags);
	if (!c)
		return -1;
	return ucp_local_set(c, key, klen, val, vlen, expires, flags);
}

int ucp_api_magic_del(char *key, uint16_t klen, char *cache)
{
	int remote;
	struct ucp_cache *c = resolve(cache, &remote);

	if (remote)
		return ucp_remote_simple("del", cache, key, klen);
	if (!c)
		return -1;
	return ucp_local_del(c, key, klen) ? -1 : 0;
}

int ucp_api_magic_exists(char *key, uint16_t klen, char *cache)
{
	int remote;
	struct ucp_cache *c = resolve(cache, &remote);

	if (remote)
		return ucp_remote_simple("exists", cache, key, klen) == 0;
	if (!c)
		return 0;
	return ucp_exists(c, key, klen) == 0;
}

int ucp_api_magic_clear(char *cache)
{
	int remote;
	struct ucp_cache *c = resolve(cache, &remote);

	if (remote)
		return ucp_remote_simple("clear", cache, NULL, 0);
	if (!c)
		return -1;
	return ucp_clear(c) ? -1 : 0;
}

/* uwsgi_hooked_parse() callback filling a struct uwsgi_cache_magic_context
 * (exported by the core; kept for plugins that parse replies themselves). */
void ucp_api_magic_context_hook(char *key, uint16_t klen, char *val, uint16_t vlen, void *data)
{
	struct uwsgi_cache_magic_context *ctx = data;
	uint64_t num = 0;

	if (ucp_streq(key, klen, "cmd")) {
		ctx->cmd = val;
		ctx->cmd_len = vlen;
	} else if (ucp_streq(key, klen, "key")) {
		ctx->key = val;
		ctx->key_len = vlen;
	} else if (ucp_streq(key, klen, "cache")) {
		ctx->cache = val;
		ctx->cache_len = vlen;
	} else if (ucp_streq(key, klen, "status")) {
		ctx->status = val;
		ctx->status_len = vlen;
	} else if (ucp_streq(key, klen, "expires")) {
		ctx->expires = ucp_parse_u64(val, vlen, &num) ? 0 : num;
	} else if (ucp_streq(key, klen, "size")) {
		ctx->size = ucp_parse_u64(val, vlen, &num) ? 0 : num;
	}
}

struct uwsgi_buffer *ucp_api_prepare_exists(char *name, uint16_t name_len, char *key, uint16_t klen)
{
	return ucp_magic_request("exists", name, name_len, key, klen, 0, 0, 0);
}

struct uwsgi_buffer *ucp_api_prepare_del(char *name, uint16_t name_len, char *key, uint16_t klen)
{
	return ucp_magic_request("del", name, name_len, key, klen, 0, 0, 0);
}

struct uwsgi_buffer *ucp_api_prepare_clear(char *name, uint16_t name_len)
{
	return ucp_magic_request("clear", name, name_len, NULL, 0, 0, 0, 0);
}

struct uwsgi_buffer *ucp_api_prepare_set(char *name, uint16_t name_len, char *key, uint16_t klen,
		uint64_t len, uint64_t expires)
{
	return ucp_magic_request("set", name, name_len, key, klen, 1, len, expires);
}

struct uwsgi_buffer *ucp_api_prepare_update(char *name, uint16_t name_len, char *key, uint16_t klen,
		uint64_t len, uint64_t expires)
{
	return ucp_magic_request("update", name, name_len, key, klen, 1, len, expires);
}

/* -------------------------------------------------------------- shim API */

/* Copy key's value into this thread's buffer; NULL on miss. */
static char *copy_out(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t *vlen,
		struct ucache_item_info *info)
{
	struct ucp_cache *c = ucp_from_uc(uc);

	if (!c)
		return NULL;
	for (;;) {
		size_t len = 0;
		int ret = ucp_get_ex(c, key, klen, tl_val, tl_val_cap, &len, info);
		char *grown;

		if (ret == 0) {
			*vlen = len;
			return tl_val;
		}
		if (ret != -ENOBUFS || !(grown = realloc(tl_val, len)))
			return NULL;
		tl_val = grown;
		tl_val_cap = len;
	}
}

char *ucp_api_get2(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t *vlen)
{
	return copy_out(uc, key, klen, vlen, NULL);
}

char *ucp_api_get3(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t *vlen, uint64_t *expires)
{
	struct ucache_item_info info;
	char *value = copy_out(uc, key, klen, vlen, &info);

	if (value && expires)
		*expires = info.expires;
	return value;
}

char *ucp_api_get4(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t *vlen, uint64_t *hits)
{
	struct ucache_item_info info;
	char *value = copy_out(uc, key, klen, vlen, &info);

	/* stock reports the hits before counting this one (the corerouter
	 * round-robins on it) */
	if (value && hits)
		*hits = info.hits ? info.hits - 1 : 0;
	return value;
}

int ucp_api_set2(struct uwsgi_cache *uc, char *key, uint16_t klen, char *val, uint64_t vlen,
		uint64_t expires, uint64_t flags)
{
	struct ucp_cache *c = ucp_from_uc(uc);

	return c ? ucp_local_set(c, key, klen, val, vlen, expires, flags) : -1;
}

/* Stock also deletes by slot index (key NULL); ucache has no public slot
 * numbers, and only the stock cache internals used that form. */
int ucp_api_del2(struct uwsgi_cache *uc, char *key, uint16_t klen, uint64_t index, uint16_t flags)
{
	struct ucp_cache *c = ucp_from_uc(uc);

	(void) index;
	if (!c || !key)
		return -1;
	if (flags & (UWSGI_CACHE_FLAG_LOCAL))
		return ucp_del(c, key, klen) ? -1 : 0;
	return ucp_local_del(c, key, klen) ? -1 : 0;
}

uint32_t ucp_api_exists2(struct uwsgi_cache *uc, char *key, uint16_t klen)
{
	struct ucp_cache *c = ucp_from_uc(uc);

	return c && ucp_exists(c, key, klen) == 0;
}

int64_t ucp_api_num2(struct uwsgi_cache *uc, char *key, uint16_t klen)
{
	struct ucp_cache *c = ucp_from_uc(uc);
	int64_t num = 0;

	if (!c || ucp_num(c, key, klen, &num))
		return 0;
	return num;
}

struct uwsgi_cache *ucp_api_by_name(char *name)
{
	struct ucp_cache *c;

	if (name && !strcmp(name, UCP_SELFTEST_NAME))
		return &ucp_selftest_sentinel.uc;
	c = local(name);
	return c ? &c->uc : NULL;
}

struct uwsgi_cache *ucp_api_by_namelen(char *name, uint16_t len)
{
	struct ucp_cache *c = ucp_lookup(name, len);

	return c ? &c->uc : NULL;
}

/* Iterate keys: *pos is the engine's cursor.  The item returned is this
 * thread's scratch item with keysize and key filled, everything else 0. */
struct uwsgi_cache_item *ucp_api_keys(struct uwsgi_cache *uc, uint64_t *pos, struct uwsgi_cache_item **uci)
{
	struct ucp_cache *c = ucp_from_uc(uc);
	size_t klen = 0;

	if (!c || !pos)
		return NULL;
	if (tl_item_cap < c->uc.keysize) {
		struct uwsgi_cache_item *grown = realloc(tl_item, sizeof(*grown) + c->uc.keysize);
		if (!grown)
			return NULL;
		tl_item = grown;
		tl_item_cap = c->uc.keysize;
	}
	if (ucache_iter(c->cache, pos, tl_item->key, tl_item_cap, &klen))
		return NULL;
	memset(tl_item, 0, sizeof(*tl_item));
	tl_item->keysize = klen;
	if (uci)
		*uci = tl_item;
	return tl_item;
}

void ucp_api_rlock(struct uwsgi_cache *uc)
{
	if (uc && uc->lock)
		uwsgi_rlock(uc->lock);
}

void ucp_api_rwunlock(struct uwsgi_cache *uc)
{
	if (uc && uc->lock)
		uwsgi_rwunlock(uc->lock);
}

char *ucp_api_item_key(struct uwsgi_cache_item *uci)
{
	return uci->key;
}

/* ------------------------------------------------------ creation, no-ops */

/* A --cache2-style cache created by another plugin, before fork. */
struct uwsgi_cache *ucp_api_create(char *arg)
{
	struct ucp_cache *c;

	if (!arg)
		return uwsgi.caches;
	c = ucp_cache_add_keyval(arg);
	ucp_caches_init_locks();
	return &c->uc;
}

/* Called by the core right after it has set up its locks: ucache built the
 * caches already (ucache_asap), only the shims' legacy locks are missing. */
void ucp_api_create_all(void)
{
	ucp_caches_init_locks();
	uwsgi.cache_setup = 1;
}

void ucp_api_noop_uc(struct uwsgi_cache *uc)
{
	(void) uc;
}

void ucp_api_noop(void)
{
}

/* The core's own receiver; never started (udp.c runs ucache's). */
void *ucp_api_udp_loop(void *arg)
{
	(void) arg;
	return NULL;
}
