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
#include "ucp.h"
#include "writepath.h"
#include "takeover/takeover.h"
#include "peers/peers.h"
#include "wire/proto.h"

struct ucp_cache ucp_selftest_sentinel;

/* Per-thread copy buffers for get2/3/4 and keys (never freed: bounded by
 * the largest value / key a thread has read). */
static __thread struct ucp_readbuf tl_val;
static __thread struct uwsgi_cache_item *tl_item;
static __thread size_t tl_item_cap;

/* ---------------------------------------------------------------- lookup */

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
 *   "name@addr"  remote: REMOTE (remote.c takes it);
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

/* resolve()'s answer for a remote cache: a marker whose engine handle is
 * NULL (so engine_only() refuses it), never written.  A return value rather
 * than an int *remote, because a local whose address is taken costs each
 * magic function a stack-protector canary (5 instructions a call,
 * -fstack-protector-strong). */
static struct ucp_cache remote_marker;
#define REMOTE (&remote_marker)

/* Not the default cache, not in the memo: remote, or the walk. */
static struct ucp_cache *resolve_slow(const char *cache)
{
	struct ucp_cache *c;
	int i;

	if (strchr(cache, '@'))
		return REMOTE;
	c = ucp_lookup(cache, strlen(cache));
	if (c) {
		for (i = UCP_MEMO - 1; i > 0; i--)
			tl_memo[i] = tl_memo[i - 1];
		tl_memo[0] = c;
	}
	return c;
}

/* The memo entry named cache (open or closed), or NULL. */
static inline struct ucp_cache *memo_find(const char *cache)
{
	struct ucp_cache *c;
	int i;

	for (i = 0; i < UCP_MEMO && (c = tl_memo[i]); i++) {
		if (!strcmp(cache, c->uc.name))
			return c;
	}
	return NULL;
}

/* Inlined into each magic function: the fast paths cost no call.  An open
 * local cache, REMOTE, or NULL (no such cache, or closed). */
static inline struct ucp_cache *resolve(const char *cache)
{
	struct ucp_cache *c;

	if (!cache || !*cache)
		return ucp_from_uc(uwsgi.caches);
	if ((c = memo_find(cache)))
		return c->cache ? c : NULL;
	return resolve_slow(cache);
}

/* ------------------------------------------------------------- magic API */

/* The magic get's general path, cache already resolved: remote, a near
 * cache (redis=), expires wanted.  Never inlined: its frame (the info
 * struct and the stack-protector canary it brings) would be the fast
 * paths' too. */
static __attribute__((noinline)) char *get_from(struct ucp_cache *c, char *key, uint16_t klen,
		uint64_t *vlen, uint64_t *expires, char *cache)
{
	struct ucache_item_info info;
	size_t len = 0;
	char *value;

	if (c == REMOTE)
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

/* The fast paths pass the caller's *vlen (uint64_t) to the engine
 * (size_t): the same type on the 64-bit targets hook.c accepts. */
_Static_assert(sizeof(uint64_t) == sizeof(size_t), "the magic API's *vlen is the engine's size_t");

/* An open cache a get without expires reads from the engine alone (one
 * with redis= has ucp_get_alloc()'s fallback to Redis: get_from()). */
static inline int engine_only(const struct ucp_cache *c)
{
	return c && c->cache && !c->redis;
}

/* Any magic get but the hot one: resolve, then the engine or get_from().
 * Never inlined, so that the strcmp() calls' frame is not the hot one's. */
static __attribute__((noinline)) char *magic_get(char *key, uint16_t klen, uint64_t *vlen,
		uint64_t *expires, char *cache)
{
	struct ucp_cache *c = resolve(cache);

	if (!expires && engine_only(c))
		return ucache_get_alloc(c->cache, key, klen, (size_t *) vlen, NULL);
	return get_from(c, key, klen, vlen, expires, cache);
}

/*
 * The hot get (uwsgi.cache_get(key), router_cache, --check-cache on the
 * default cache): no expiry wanted, no cache name, a default cache without
 * redis=: a tail call into the engine with the caller's own arguments, no
 * frame, no struct ucache_item_info on the stack (so no stack-protector
 * canary), no length copied through a local: 54 -> 22 instructions a get
 * of 100 bytes in the plugin (callgrind, make bench's instr section:
 * own instructions a get 263 -> 231, 0.66 -> 0.58 of stock's 399).  A
 * get by name takes magic_get(): its memo, then the same tail call
 * (64 -> 57 instructions in the plugin).
 *
 * Same contract as get_from(): *vlen is written on a hit only (the engine
 * writes it only on success), as stock's uwsgi_cache_get3() does; a miss
 * is NULL.
 */
char *ucp_api_magic_get(char *key, uint16_t klen, uint64_t *vlen, uint64_t *expires, char *cache)
{
	struct ucp_cache *c;

	if (expires || (cache && *cache))
		return magic_get(key, klen, vlen, expires, cache);
	c = ucp_from_uc(uwsgi.caches);
	if (engine_only(c))
		return ucache_get_alloc(c->cache, key, klen, (size_t *) vlen, NULL);
	return get_from(c, key, klen, vlen, NULL, cache);
}

int ucp_api_magic_set(char *key, uint16_t klen, char *val, uint64_t vlen, uint64_t expires,
		uint64_t flags, char *cache)
{
	struct ucp_cache *c = resolve(cache);

	if (c == REMOTE)
		return ucp_remote_set(cache, key, klen, val, vlen, expires, flags);
	if (!c)
		return -1;
	return ucp_local_set(c, key, klen, val, vlen, expires, flags);
}

int ucp_api_magic_del(char *key, uint16_t klen, char *cache)
{
	struct ucp_cache *c = resolve(cache);

	if (c == REMOTE)
		return ucp_remote_simple("del", cache, key, klen);
	if (!c)
		return -1;
	return ucp_local_del(c, key, klen) ? -1 : 0;
}

int ucp_api_magic_exists(char *key, uint16_t klen, char *cache)
{
	struct ucp_cache *c = resolve(cache);

	if (c == REMOTE)
		return ucp_remote_simple("exists", cache, key, klen) == 0;
	if (!c)
		return 0;
	return ucp_exists(c, key, klen) == 0;
}

int ucp_api_magic_clear(char *cache)
{
	struct ucp_cache *c = resolve(cache);

	if (c == REMOTE)
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
	struct ucp_magic m;

	/* the one parser of magic vars (wire/proto.c), one var at a time;
	 * a number that does not parse reads as 0, as stock's does */
	memset(&m, 0, sizeof(m));
	m.size = ctx->size;
	m.expires = ctx->expires;
	if (ucp_magic_var(&m, key, klen, val, vlen)) {
		if (ucp_streq(key, klen, "size"))
			m.size = 0;
		else if (ucp_streq(key, klen, "expires"))
			m.expires = 0;
	}
	if (m.cmd) {
		ctx->cmd = val;
		ctx->cmd_len = vlen;
	} else if (m.key) {
		ctx->key = val;
		ctx->key_len = vlen;
	} else if (m.cache) {
		ctx->cache = val;
		ctx->cache_len = vlen;
	} else if (m.status) {
		ctx->status = val;
		ctx->status_len = vlen;
	}
	ctx->size = m.size;
	ctx->expires = m.expires;
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
	size_t len = 0;
	char *val;

	if (!c)
		return NULL;
	val = ucp_read_into(c, key, klen, 0, &tl_val, 0, &len, info);
	if (val)
		*vlen = len;
	return val;
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

/* The core's own receiver; never started (udp.c runs ucache's). */
void *ucp_api_udp_loop(void *arg)
{
	(void) arg;
	return NULL;
}
