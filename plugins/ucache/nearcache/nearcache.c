/*
 * nearcache.c - a cache with redis=ADDR is a near cache: the engine's shared
 * memory (L1, shared by every worker of the instance) in front of Redis,
 * which is authoritative.  This file holds the near-cache operations; the
 * per-thread Redis client is redisconn.c, the invalidation listener
 * listener.c, the tag state tagstate.c.
 *
 *   get     L1 hit, or on a miss one Redis round trip (FETCH_LUA: value,
 *           kind and PTTL read atomically) and an L1 fill whose expiry is
 *           never later than Redis' (floor of its PTTL, in whole seconds).
 *           A tagged entry is judged by the same script against the tag
 *           state in Redis (tagstate.c) and never enters L1.
 *   set / update / del / clear / math
 *           Redis first; when it acknowledged, bump the epoch and remove
 *           the key from L1 (the next read refills it).  A write Redis did
 *           not acknowledge (error, timeout, unreachable) fails: -1 to the
 *           caller, never "ok" and then lost.  set is SET NX (fails on an
 *           existing key, as stock's cache_set does), update plain SET,
 *           expiry PX.  clear is SCAN + UNLINK of the prefix, 500 keys a
 *           batch, so Redis never blocks on a big cache; the prefix is this
 *           cache's alone (ucache_redis_prefix: it ends with ':', default
 *           ones escape the name's ':'; overlapping prefixes on one Redis
 *           are refused at start), so the match is exactly its keys.
 *
 * Numbers (cache_inc & co.).  Stock math works on an 8-byte native integer,
 * which uwsgi.cache_num reads back.  In Redis a number written by math is a
 * hash with one field, "n", holding decimal text (HGET ucache:NAME:key n;
 * HINCRBY works on it); every other value is a string holding the raw
 * bytes.  The kind tells a fill which form to put in L1: a hash becomes the
 * 8-byte native integer, so cache_num and cache_get read exactly what stock
 * returns.  inc/dec are HINCRBY (exact over the whole int64 range; an
 * overflow fails instead of wrapping); mul/div run in MATH_LUA, whose
 * numbers are doubles: a result of magnitude 2^53 or more fails rather than
 * lose digits.  Math on a key that holds a string fails (stock would
 * operate on an 8-byte string; ucache over Redis does not convert it).
 *
 * The fill race.  A worker reads Redis (old value), a write elsewhere
 * changes the key, the listener processes its invalidation (removes the
 * key from L1), and only then the worker's fill lands: L1 would hold the
 * old value with no invalidation left to come.  Designed away with the
 * shared epochs (redis.h): the worker loads the global epoch, its key's
 * slot epoch and live before sending its read, fills, issues a full fence,
 * and loads them again; if an epoch moved or live dropped it removes what
 * it filled.  The listener bumps the key's slot epoch (seq_cst) before it
 * removes the key, and the global one before a flush.  If the listener's bump came
 * before the worker's second load, the worker sees it and removes its
 * fill; otherwise the bump - and the removal after it - came after the
 * fill, which the removal then deletes.  The invalidation of a write that
 * followed the read is processed after that read was sent (Redis sends it
 * after executing the write, which comes after the read), hence after the
 * worker's first load: one of the two cases always applies.  A worker's
 * own acknowledged write bumps the epoch the same way, so a concurrent
 * fill on the same machine cannot hide it either (read-your-writes).
 * Cost: a fill that overlaps an invalidation of a key of the same slot
 * (1 in 4096), or a flush, is undone (counted in fills_dropped), which is
 * only a later miss.
 *
 * Connections: redisconn.c.
 */
#include "ucp.h"
#include "nearcache/nearcache.h"
#include "nearcache/redis.h"
#include "wire/packet.h"

#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#define CLEAR_BATCH "500"
/* PX larger than this (100 years) is capped: Redis refuses PX near 2^63. */
#define PX_MAX (UINT64_C(100) * 365 * 24 * 3600 * 1000)

/* {kind, value, pttl}: kind 0 a string, 1 a number (hash field n), 2 the
 * payload of a fresh tagged entry (never put in L1); nil if absent or a
 * stale tagged entry.  TYPE first: GET on a hash is an error.  A string
 * starting with the envelope magic (ARGV[1]) is judged here, in the same
 * round trip, against the tag state hash KEYS[2] (tagstate.c): fresh
 * when it carries the shared epoch (ARGV[2]), parses (ARGV[3]: the host's
 * byte order for struct) and neither the hash's birth "b" nor any of its
 * counters' last invalidation is later than its since; a missing hash
 * (flushed, evicted, never made) makes every tagged entry stale. */
static const char FETCH_LUA[] =
	"local t = redis.call('TYPE', KEYS[1])['ok'] "
	"if t == 'string' then local v = redis.call('GET', KEYS[1]) "
	"if string.sub(v, 1, 8) ~= ARGV[1] then return {0, v, redis.call('PTTL', KEYS[1])} end "
	"if #v < 32 or string.sub(v, 9, 16) ~= ARGV[2] then return false end "
	"local o = ARGV[3] local since, n, h = struct.unpack(o .. 'I8I4I4', v, 17) "
	"if n < 1 or n > 64 or h ~= 32 + 4 * n or h > #v then return false end "
	"local f = {'b'} for i = 1, n do local x = struct.unpack(o .. 'I4', v, 29 + 4 * i) "
	"if x >= 65536 then return false end f[i + 1] = tostring(x) end "
	"local g = redis.call('HMGET', KEYS[2], unpack(f)) "
	"if not g[1] then return false end "
	"for i = 1, n + 1 do if g[i] and tonumber(g[i]) > since then return false end end "
	"return {2, string.sub(v, h + 1), redis.call('PTTL', KEYS[1])} end "
	"if t == 'hash' then local n = redis.call('HGET', KEYS[1], 'n') "
	"if n then return {1, n, redis.call('PTTL', KEYS[1])} end end "
	"return false";

/* The host's byte order for FETCH_LUA's struct (envelopes are native). */
static const char *byte_order(void)
{
	const uint16_t one = 1;

	return *(const uint8_t *) &one ? "<" : ">";
}

/* ARGV: op (inc, mul, div), delta, initial, px (0: none), update (0/1).
 * Returns the new value as text, or an error reply (the caller fails). */
static const char MATH_LUA[] =
	"local k = KEYS[1] local t = redis.call('TYPE', k)['ok'] "
	"if t ~= 'none' and ARGV[5] ~= '1' then return redis.error_reply('exists') end "
	"if t ~= 'none' and t ~= 'hash' then return redis.error_reply('not a number') end "
	"if t == 'none' or not redis.call('HGET', k, 'n') then "
	"redis.call('HSET', k, 'n', ARGV[3]) "
	"if ARGV[4] ~= '0' then redis.call('PEXPIRE', k, ARGV[4]) end end "
	"if ARGV[1] == 'inc' then return tostring(redis.call('HINCRBY', k, 'n', ARGV[2])) end "
	"local a = tonumber(redis.call('HGET', k, 'n')) local b = tonumber(ARGV[2]) local v "
	"if ARGV[1] == 'mul' then v = a * b elseif b == 0 then v = 0 else v = a / b "
	"if v >= 0 then v = math.floor(v) else v = math.ceil(v) end end "
	"if v >= 9007199254740992 or v <= -9007199254740992 then "
	"return redis.error_reply('result beyond 2^53') end "
	"if v == 0 then v = 0 end "
	"local s = string.format('%.0f', v) redis.call('HSET', k, 'n', s) return s";

static int ncaches;
static struct ucp_cache *attached[UCP_REDIS_MAX];  /* by index, for refuse_clash() */

static __thread char *tl_key;
static __thread size_t tl_key_cap;

/* ------------------------------------------------------------- helpers */

static uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

void ucp_redis_flush_l1(struct ucp_cache *c)
{
	atomic_fetch_add(&c->redis->sh->epoch, 1);
	ucache_clear(c->cache);
	atomic_fetch_add_explicit(&c->redis->sh->flushes, 1, memory_order_relaxed);
}

/* After Redis acknowledged a write of key, or reported its change: L1 must
 * not keep (or be filled with, by a read that overlapped it) the old value.
 * The key's epoch moves first ("The fill race" above). */
static void kept_drop(void);

int ucp_redis_forget(struct ucp_cache *c, const char *key, size_t klen)
{
	kept_drop(); /* this thread's writes are read back as written, never as kept */
	atomic_fetch_add(ucp_key_epoch(c->redis->sh, key, klen), 1);
	return ucache_del(c->cache, key, klen);
}

/* prefix + key in this thread's buffer. */
static const char *full_key(const struct ucp_redis *r, const char *key, size_t klen, size_t *len)
{
	size_t need = r->prefix_len + klen;

	if (need > tl_key_cap) {
		char *grown = realloc(tl_key, need);
		if (!grown)
			return NULL;
		tl_key = grown;
		tl_key_cap = need;
	}
	memcpy(tl_key, r->prefix, r->prefix_len);
	memcpy(tl_key + r->prefix_len, key, klen);
	*len = need;
	return tl_key;
}

/* --------------------------------------------------------------- reads */

/* A fetched value: points into rep, or at num for a number. */
struct fetched {
	redisReply *rep;
	const char *val;
	size_t vlen;
	int64_t num;
	uint64_t expires;        /* absolute seconds, 0 = never */
	int in_l1;               /* the fill landed (and was not undone) */
	uint64_t e0, s0;         /* the epoch and the key's slot epoch before the read */
	uint32_t live0;          /* live before the read */
};

/* Strict decimal int64 (what HINCRBY writes). */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
	uint64_t v = 0, lim;
	int neg = len && s[0] == '-';
	size_t i = (size_t) neg;

	if (i == len)
		return -1;
	lim = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
	for (; i < len; i++) {
		unsigned d = (unsigned) (s[i] - '0');
		if (d > 9 || v > (lim - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t) (0 - v) : (int64_t) v;
	return 0;
}

/* Nothing that could have changed the key happened since f's read was
 * sent: no invalidation of its slot, no flush, the stream still up (the
 * fence orders this after what the caller did: "The fill race"). */
static int unchanged(struct ucp_redis_shared *sh, const struct fetched *f, _Atomic uint64_t *slot)
{
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load(&sh->epoch) == f->e0 && atomic_load(slot) == f->s0 &&
		f->live0 && atomic_load(&sh->live);
}

/* Read key from Redis and fill L1.  0 with f filled (free f->rep), or
 * -ENOENT (absent, or Redis failed: a miss either way). */
static int fetch_fill(struct ucp_cache *c, const char *key, size_t klen, struct fetched *f)
{
	struct ucp_redis_shared *sh = c->redis->sh;
	_Atomic uint64_t *slot = ucp_key_epoch(sh, key, klen);
	const uint64_t epoch = UCACHE_TAGS_SHARED_EPOCH;
	const char *argv[8] = { "EVAL", FETCH_LUA, "2", NULL, c->redis->tags_key, UCACHE_TAG_MAGIC,
		(const char *) &epoch, byte_order() };
	size_t lens[8] = { 4, sizeof(FETCH_LUA) - 1, 1, 0, c->redis->tags_key_len, 8, 8, 1 };
	redisReply *rep, **e;
	int64_t pttl;

	if (!(argv[3] = full_key(c->redis, key, klen, &lens[3])))
		return -ENOENT;
	f->e0 = atomic_load(&sh->epoch);
	f->s0 = atomic_load(slot);
	f->live0 = atomic_load(&sh->live);
	f->in_l1 = 0;
	atomic_fetch_add_explicit(&sh->fetches, 1, memory_order_relaxed);
	rep = ucp_redis_command(c, UCP_RESEND_SAFE, 8, argv, lens);
	if (!rep)
		return -ENOENT;
	e = rep->element;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || e[0]->type != REDIS_REPLY_INTEGER ||
			e[1]->type != REDIS_REPLY_STRING || e[2]->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(rep);
		return -ENOENT;
	}
	f->rep = rep;
	f->val = e[1]->str;
	f->vlen = e[1]->len;
	if (e[0]->integer == 1 && !parse_i64(e[1]->str, e[1]->len, &f->num)) {
		f->val = (const char *) &f->num;
		f->vlen = sizeof(f->num);
	}
	pttl = e[2]->integer;
	f->expires = pttl >= 0 ? (real_ms() + (uint64_t) pttl) / 1000 : 0;
	/* A key expiring within this second is served but not kept: L1's
	 * expiry has whole seconds and must not outlive Redis'. */
	/* A tagged entry stays out of L1: only Redis knows its tags' state. */
	if (e[0]->integer == 2 || !f->live0 || !f->vlen || (pttl >= 0 && f->expires <= ucache_now()))
		return 0;
	if (ucache_set(c->cache, key, klen, f->val, f->vlen, f->expires,
			UCACHE_SET_UPDATE | UCACHE_SET_ABSEXPIRE))
		return 0;
	if (unchanged(sh, f, slot)) {
		f->in_l1 = 1;
		return 0;
	}
	ucache_del(c->cache, key, klen);
	atomic_fetch_add_explicit(&sh->fills_dropped, 1, memory_order_relaxed);
	return 0;
}

/*
 * A fetch whose value did not fit the caller's buffer (-ENOBUFS): the
 * callers (api.c copy_out, server.c) grow the buffer and ask again at
 * once.  When the value went into L1 that retry is an L1 hit; when it did
 * not (a tagged entry, a value L1 cannot take) the retry is served from
 * here instead of a second round trip (and a second redis_fetches).
 * One per thread, for KEPT_MS at most, dropped by any other fetch of this
 * thread, and served only while nothing that could have changed the key
 * happened since its read was sent (unchanged(): the listener's
 * invalidation of its slot, a flush, a lost stream, this thread's write).
 * A fetch that landed in L1 is never kept: the retry does not take it, and
 * a kept copy outliving an invalidation of L1 served an overwritten value
 * for up to KEPT_MS (issue 19, test_bug_held_fetch_serves_overwritten_value).
 * A tag invalidation moves no epoch; a kept tagged entry is taken by the
 * retry that follows at once, as tagged entries never enter L1.
 */
#define KEPT_MS 100

static __thread struct {
	struct fetched f;         /* f.rep NULL: none */
	const struct ucp_cache *c;
	char *key;
	size_t klen;
	uint64_t until_ms;
} tl_kept;

static void kept_drop(void)
{
	if (tl_kept.f.rep)
		freeReplyObject(tl_kept.f.rep);
	free(tl_kept.key);
	tl_kept.f.rep = NULL;
	tl_kept.key = NULL;
}

/* *dst = *src, val kept pointing at dst's own num for a number. */
static void fetched_move(struct fetched *dst, const struct fetched *src)
{
	*dst = *src;
	if (src->val == (const char *) &src->num)
		dst->val = (const char *) &dst->num;
}

/* Keep f for the caller's retry, if it may be served again; else free it. */
static void kept_keep(struct ucp_cache *c, const void *key, size_t klen, struct fetched *f)
{
	if (f->in_l1 || !f->live0 || !(tl_kept.key = malloc(klen ? klen : 1))) {
		freeReplyObject(f->rep);
		return;
	}
	memcpy(tl_kept.key, key, klen);
	fetched_move(&tl_kept.f, f);
	tl_kept.c = c;
	tl_kept.klen = klen;
	tl_kept.until_ms = ucp_mono_ms() + KEPT_MS;
}

/* fetch_fill(), or the kept fetch of the same key. */
static int fetch_or_kept(struct ucp_cache *c, const char *key, size_t klen, struct fetched *f)
{
	if (tl_kept.f.rep && tl_kept.c == c && tl_kept.klen == klen && !memcmp(tl_kept.key, key, klen) &&
			ucp_mono_ms() < tl_kept.until_ms &&
			unchanged(c->redis->sh, &tl_kept.f, ucp_key_epoch(c->redis->sh, key, klen))) {
		fetched_move(f, &tl_kept.f);
		tl_kept.f.rep = NULL;
		kept_drop();
		return 0;
	}
	kept_drop();
	return fetch_fill(c, key, klen, f);
}

int ucp_redis_get_ex(struct ucp_cache *c, const void *key, size_t klen, void *buf, size_t buflen,
		size_t *vlen, struct ucache_item_info *info)
{
	struct fetched f;

	if (fetch_or_kept(c, key, klen, &f))
		return -ENOENT;
	*vlen = f.vlen;
	if (info) {
		info->expires = f.expires;
		info->hits = 1;
	}
	if (f.vlen > buflen) {
		kept_keep(c, key, klen, &f);
		return -ENOBUFS;
	}
	memcpy(buf, f.val, f.vlen);
	freeReplyObject(f.rep);
	return 0;
}

void *ucp_redis_get_alloc(struct ucp_cache *c, const void *key, size_t klen, size_t *vlen,
		struct ucache_item_info *info)
{
	struct fetched f;
	char *copy;

	if (fetch_fill(c, key, klen, &f)) {
		errno = ENOENT;
		return NULL;
	}
	copy = malloc(f.vlen ? f.vlen : 1);
	if (copy) {
		memcpy(copy, f.val, f.vlen);
		*vlen = f.vlen;
		if (info) {
			info->expires = f.expires;
			info->hits = 1;
		}
	}
	freeReplyObject(f.rep);
	return copy;
}

int ucp_redis_exists(struct ucp_cache *c, const void *key, size_t klen)
{
	struct fetched f;

	if (fetch_fill(c, key, klen, &f))
		return -ENOENT;
	freeReplyObject(f.rep);
	return 0;
}

/* -------------------------------------------------------------- writes */

/* Key and value limits of the cache, checked before Redis sees anything:
 * stock refuses them, and a value L1 cannot hold could never be a hit. */
static int check_sizes(struct ucp_cache *c, size_t klen, size_t vlen)
{
	if (!klen || klen > c->uc.keysize)
		return klen ? -E2BIG : -EINVAL;
	if (vlen > ucache_max_value(c->cache))
		return -E2BIG;
	return 0;
}

/* Milliseconds until an expiry as api.c hands it (relative seconds, or
 * absolute with UCACHE_SET_ABSEXPIRE); 0 for none.  A past absolute time
 * becomes 1 ms: the item is gone at once, as stock's would be. */
static uint64_t px_of(const struct ucp_redis *r, uint64_t expires, unsigned flags)
{
	uint64_t now, px;

	if (!expires || r->no_expire)
		return 0;
	if (flags & UCACHE_SET_ABSEXPIRE) {
		now = real_ms();
		if (expires > PX_MAX / 1000 + now / 1000)
			return PX_MAX;
		px = expires * 1000;
		return px > now ? px - now : 1;
	}
	return expires > PX_MAX / 1000 ? PX_MAX : expires * 1000;
}

int ucp_redis_set(struct ucp_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
		uint64_t expires, unsigned flags)
{
	const char *argv[6] = { "SET", NULL, val };
	size_t lens[6] = { 3, 0, vlen };
	uint64_t px = px_of(c->redis, expires, flags);
	char pxs[24];
	int argc = 3, ret = check_sizes(c, klen, vlen);
	redisReply *rep;

	if (ret)
		return ret;
	if (!vlen)
		return -EINVAL;
	if (!(argv[1] = full_key(c->redis, key, klen, &lens[1])))
		return -ENOMEM;
	if (px) {
		argv[argc] = "PX";
		lens[argc++] = 2;
		lens[argc] = (size_t) snprintf(pxs, sizeof(pxs), "%llu", (unsigned long long) px);
		argv[argc++] = pxs;
	}
	if (!(flags & UCACHE_SET_UPDATE)) {
		argv[argc] = "NX";
		lens[argc++] = 2;
	}
	rep = ucp_redis_command(c, flags & UCACHE_SET_UPDATE ? UCP_RESEND_SAFE : UCP_RESEND_NEVER,
			argc, argv, lens);
	if (!rep)
		return -EIO;
	ret = rep->type == REDIS_REPLY_STATUS ? 0 : -EEXIST;
	freeReplyObject(rep);
	if (!ret)
		ucp_redis_forget(c, key, klen);
	return ret;
}

int ucp_redis_del(struct ucp_cache *c, const void *key, size_t klen)
{
	const char *argv[2] = { "DEL", NULL };
	size_t lens[2] = { 3, 0 };
	redisReply *rep;
	int ret;

	if (!klen || klen > c->uc.keysize)
		return -EINVAL;
	if (!(argv[1] = full_key(c->redis, key, klen, &lens[1])))
		return -ENOMEM;
	rep = ucp_redis_command(c, UCP_RESEND_SAFE, 2, argv, lens);
	if (!rep)
		return -EIO;
	ret = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 ? 0 : -ENOENT;
	freeReplyObject(rep);
	ucp_redis_forget(c, key, klen);
	return ret;
}

int ucp_redis_math(struct ucp_cache *c, const void *key, size_t klen, enum ucache_math_op op,
		int64_t delta, uint64_t expires, int update)
{
	static const char *ops[] = { "inc", "inc", "mul", "div" };
	char d[24], init[24], pxs[24];
	const char *argv[9] = { "EVAL", MATH_LUA, "1", NULL, ops[op], d, init, pxs, update ? "1" : "0" };
	size_t lens[9] = { 4, sizeof(MATH_LUA) - 1, 1, 0, 3, 0, 0, 0, 1 };
	redisReply *rep;

	if (!klen || klen > c->uc.keysize)
		return -EINVAL;
	if (op == UCACHE_MATH_DEC) {
		if (delta == INT64_MIN)
			return -ERANGE;
		delta = -delta;
	}
	if (!(argv[3] = full_key(c->redis, key, klen, &lens[3])))
		return -ENOMEM;
	lens[5] = (size_t) snprintf(d, sizeof(d), "%lld", (long long) delta);
	lens[6] = (size_t) snprintf(init, sizeof(init), "%lld", (long long) c->uc.math_initial);
	lens[7] = (size_t) snprintf(pxs, sizeof(pxs), "%llu",
			(unsigned long long) px_of(c->redis, expires, 0));
	rep = ucp_redis_command(c, UCP_RESEND_NEVER, 9, argv, lens);
	if (!rep)
		return -EIO;
	freeReplyObject(rep);
	ucp_redis_forget(c, key, klen);
	return 0;
}

/* The prefix as a SCAN MATCH pattern: glob characters escaped. */
static char *match_pattern(const struct ucp_redis *r)
{
	char *pat = uwsgi_malloc(r->prefix_len * 2 + 2), *o = pat;
	size_t i;

	for (i = 0; i < r->prefix_len; i++) {
		if (strchr("*?[]\\", r->prefix[i]))
			*o++ = '\\';
		*o++ = r->prefix[i];
	}
	*o++ = '*';
	*o = '\0';
	return pat;
}

/* UNLINK the keys of one SCAN reply; -1 on failure. */
static int unlink_batch(struct ucp_cache *c, redisReply *keys)
{
	const char **argv;
	size_t *lens, i;
	redisReply *rep;

	if (!keys->elements)
		return 0;
	argv = uwsgi_malloc(sizeof(*argv) * (keys->elements + 1));
	lens = uwsgi_malloc(sizeof(*lens) * (keys->elements + 1));
	argv[0] = "UNLINK";
	lens[0] = 6;
	for (i = 0; i < keys->elements; i++) {
		argv[i + 1] = keys->element[i]->str;
		lens[i + 1] = keys->element[i]->len;
	}
	rep = ucp_redis_command(c, UCP_RESEND_SAFE, (int) keys->elements + 1, argv, lens);
	free(argv);
	free(lens);
	if (!rep)
		return -1;
	freeReplyObject(rep);
	return 0;
}

int ucp_redis_clear(struct ucp_cache *c)
{
	char *pat = match_pattern(c->redis);
	char cursor[32] = "0";
	const char *argv[6] = { "SCAN", cursor, "MATCH", pat, "COUNT", CLEAR_BATCH };
	int ret = 0;

	do {
		redisReply *rep = ucp_redis_command(c, UCP_RESEND_SAFE, 6, argv, NULL);

		if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
				rep->element[0]->type != REDIS_REPLY_STRING ||
				rep->element[1]->type != REDIS_REPLY_ARRAY) {
			if (rep)
				freeReplyObject(rep);
			ret = -EIO;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		ret = unlink_batch(c, rep->element[1]);
		freeReplyObject(rep);
	} while (!ret && strcmp(cursor, "0"));
	free(pat);
	kept_drop();
	atomic_fetch_add(&c->redis->sh->epoch, 1);
	ucache_clear(c->cache);
	return ret;
}

int ucp_redis_num(struct ucp_cache *c, const void *key, size_t klen, int64_t *out)
{
	size_t vlen = 0;
	int ret = ucache_num(c->cache, key, klen, out);

	if (ret != -ENOENT)
		return ret;
	ret = ucp_redis_get_ex(c, key, klen, out, sizeof(*out), &vlen, NULL);
	if (ret == -ENOBUFS || (!ret && vlen != sizeof(*out)))
		return -EINVAL;
	return ret;
}

/* ---------------------------------------------------------- start-up */

/* The first line of the password file, without its line end.  Exits
 * naming the file (never its content) when it cannot be read. */
static char *read_password(struct ucp_cache *c, const char *path)
{
	char buf[1024];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *nl;

	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) < 0) {
		uwsgi_log("ucache: cache \"%s\": redis_password_file %s: %s\n", c->uc.name, path,
				strerror(errno));
		exit(1);
	}
	close(fd);
	buf[n] = '\0';
	nl = strpbrk(buf, "\r\n");
	if (nl)
		*nl = '\0';
	if (!buf[0]) {
		uwsgi_log("ucache: cache \"%s\": redis_password_file %s is empty\n", c->uc.name, path);
		exit(1);
	}
	return uwsgi_str(buf);
}

/* Try Redis once at start, so that a wrong address or password is a clear
 * line in the log; the instance starts anyway (degraded: reads miss, writes
 * fail) and the listener keeps trying, since Redis may start later. */
static void probe(struct ucp_cache *c)
{
	char why[256];
	redisContext *ctx = ucp_redis_connect(c->redis, why, sizeof(why));

	if (!ctx) {
		uwsgi_log("ucache: cache \"%s\": Redis %s unreachable at start (%s): starting degraded, "
				"reads miss and writes fail until it answers\n", c->uc.name, c->redis->shown, why);
		return;
	}
	redisFree(ctx);
	uwsgi_log("ucache: cache \"%s\": near cache over Redis %s, prefix \"%s\", timeout %llu ms, "
			"offline reads %s\n", c->uc.name, c->redis->shown, c->redis->prefix,
			(unsigned long long) c->redis->timeout_ms,
			c->redis->offline == UCACHE_REDIS_OFFLINE_STALE ? "serve L1" : "miss");
}

/* Exits when cfg's keys would mix with those of a near cache attached
 * before it (the same Redis, overlapping prefixes: each clear would delete
 * the other's keys). */
static void refuse_clash(const struct ucache_config *cfg)
{
	char err[1024];
	int i;

	for (i = 0; i < ncaches; i++) {
		if (ucache_config_redis_clash(ucache_config(attached[i]->cache), cfg, err, sizeof(err))) {
			uwsgi_log("ucache: %s\n", err);
			exit(1);
		}
	}
}

void ucp_redis_attach(struct ucp_cache *c)
{
	const struct ucache_config *cfg = ucache_config(c->cache);
	struct ucp_redis *r;
	char err[512];

	if (!cfg->redis)
		return;
	if (!uwsgi.master_process) {
		uwsgi_log("ucache: cache \"%s\": redis= needs --master (the invalidation listener "
				"is a master thread)\n", cfg->name);
		exit(1);
	}
	if (ncaches == UCP_REDIS_MAX) {
		uwsgi_log("ucache: cache \"%s\": at most %d caches can use redis=\n", cfg->name,
				UCP_REDIS_MAX);
		exit(1);
	}
	r = uwsgi_calloc(sizeof(*r));
	if (ucache_redis_addr_parse(cfg->redis, &r->addr, err, sizeof(err))) {
		uwsgi_log("ucache: cache \"%s\": %s\n", cfg->name, err);
		exit(1);
	}
	ucache_redis_addr_show(&r->addr, r->shown, sizeof(r->shown));
	r->prefix = ucache_redis_prefix(cfg);
	if (!r->prefix) {
		uwsgi_log("ucache: cache \"%s\": out of memory\n", cfg->name);
		exit(1);
	}
	r->prefix_len = strlen(r->prefix);
	refuse_clash(cfg);
	ucp_redis_tags_attach(cfg->name, r);
	r->timeout_ms = cfg->redis_timeout;
	r->keepalive_ms = cfg->redis_keepalive;
	r->tv.tv_sec = (time_t) (r->timeout_ms / 1000);
	r->tv.tv_usec = (suseconds_t) (r->timeout_ms % 1000) * 1000;
	r->offline = cfg->redis_offline;
	r->no_expire = cfg->no_expire;
	r->index = ncaches++;
	r->sh = mmap(NULL, sizeof(*r->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->sh == MAP_FAILED) {
		uwsgi_log("ucache: cache \"%s\": mmap of the near-cache state: %s\n", cfg->name,
				strerror(errno));
		exit(1);
	}
	c->redis = r;
	attached[r->index] = c;
	if (cfg->redis_password_file)
		r->password = read_password(c, cfg->redis_password_file);
	else if (r->addr.password[0])
		r->password = uwsgi_str(r->addr.password);
	probe(c);
}

int ucp_redis_stat(const struct ucp_cache *c, size_t i, const char **name, uint64_t *value)
{
	static const char *const names[] = { "l1_hits", "redis_fetches", "redis_errors", "invalidations",
		"l1_flushes", "fills_dropped", "redis_connected", "redis_reconnects" };
	struct ucp_redis_shared *sh;

	if (!c->redis || i >= sizeof(names) / sizeof(names[0]))
		return 0;
	sh = c->redis->sh;
	*name = names[i];
	switch (i) {
	case 0: *value = c->snap.hits; break;
	case 1: *value = atomic_load(&sh->fetches); break;
	case 2: *value = atomic_load(&sh->errors); break;
	case 3: *value = atomic_load(&sh->invalidations); break;
	case 4: *value = atomic_load(&sh->flushes); break;
	case 5: *value = atomic_load(&sh->fills_dropped); break;
	case 6: *value = atomic_load(&sh->live); break;
	default: *value = atomic_load(&sh->reconnects); break;
	}
	return 1;
}
