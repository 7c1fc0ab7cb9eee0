/*
 * ucache.h - the public API of libucache, a shared-memory key/value cache
 * engine for pre-forked servers.
 *
 * The engine knows nothing of uWSGI: the plugin (plugins/ucache/) translates
 * uWSGI's options, hooks and exported cache API into the calls below.
 *
 * Conventions
 *   - Every function returns 0 (or a count >= 0) on success and -errno on
 *     failure, or a pointer / NULL.  Each prototype says how it fails.
 *   - A cache is created once, before the processes that share it fork;
 *     every process then uses the same ucache_t handle it inherited.
 *   - All operations are safe from any number of processes and threads.
 *     Readers take no lock; writers take striped robust locks that recover
 *     when their owner dies (see core/repair.c for the protocol).
 *   - Keys and values are byte strings; an empty key or value is refused.
 *   - Times are seconds since the Epoch (the engine's clock, see
 *     ucache_set_clock()); an expiry of 0 means "never".
 */
#ifndef UCACHE_H
#define UCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The release, from the repository's VERSION file (the one place it lives):
 * the Makefile and uwsgiplugin.py pass -DUCACHE_VERSION="...".  A compile
 * line that does not (a benchmark's own) says so instead of guessing. */
#ifndef UCACHE_VERSION
#define UCACHE_VERSION "unknown"
#endif

/* Largest key the engine accepts at all (stock: keysize < 65535). */
#define UCACHE_KEYSIZE_MAX 65534

typedef struct ucache ucache_t;

/* ---------------------------------------------------------------- logging */

enum ucache_log_level { UCACHE_LOG_ERROR, UCACHE_LOG_WARN, UCACHE_LOG_INFO };

/* Receives every message the engine emits (one line, no trailing newline). */
typedef void (*ucache_log_fn)(enum ucache_log_level level, const char *msg, void *ud);

/* Route engine messages to fn (NULL restores the default: stderr). */
void ucache_set_logger(ucache_log_fn fn, void *ud);

/* Replace the engine's clock (seconds since the Epoch); NULL restores
 * time(NULL).  Meant for tests; set it before creating caches. */
void ucache_set_clock(uint64_t (*now)(void));
uint64_t ucache_now(void);

/* ---------------------------------------------------------- configuration */

enum ucache_hash { UCACHE_HASH_DJB33X, UCACHE_HASH_MURMUR2, UCACHE_HASH_XXH3 };

struct ucache_config {
	char *name;               /* required; the first cache is the default one */
	uint64_t items;           /* required; usable items = items - 1 */
	uint64_t blocksize;       /* default 65536 */
	uint64_t blocks;          /* default = items; must be >= items */
	int bitmap;               /* bitmap mode: values take contiguous blocks */
	enum ucache_hash hash;    /* default xxh3 (stock: djb33x; only places keys in our index) */
	uint64_t hashsize;        /* floor of the index's bucket count (65536) */
	uint64_t keysize;         /* max key length (2048), < 65535 */
	char *store;              /* persistence file, or NULL */
	uint64_t store_sync;      /* msync period in master cycles (0: never) */
	int store_delete;         /* recreate a mismatching store */
	int store_migrate;        /* import a mismatching store's valid items */
	char *nodes;              /* ';'-separated UDP peers, or NULL */
	char *udp;                /* ';'-separated UDP listen addresses, or NULL */
	char *sync;               /* ';'-separated nodes to dump from, or NULL */
	char *udp_allow;          /* ';'-separated sources (ADDR[/PREFIX]) udp= accepts, or NULL (any) */
	char *udp_secret_file;    /* file holding the UDP shared secret, or NULL */
	int lastmod;              /* keep last_modified_at */
	int64_t math_initial;     /* start value of math on a missing key */
	int ignore_full;          /* don't log "cache is FULL" */
	int purge_lru;            /* evict the least recently used item when full */
	int lazy_expire;          /* accepted; expired items are never served anyway */
	uint64_t sweep_on_full;   /* when full, sweep at most every N s (0: off) */
	int clear_on_full;        /* when full and a sweep freed nothing, clear */
	int no_expire;            /* ignore expiry for this cache */
	/* near cache over Redis (the plugin's redis.c; the engine only parses) */
	char *redis;              /* ADDR (ucache_redis_addr_parse), or NULL: no Redis */
	char *redis_prefix;       /* Redis key = prefix + key (ucache_redis_prefix) */
	uint64_t redis_timeout;   /* ms bounding each Redis call (default 200) */
	uint64_t redis_keepalive; /* ms: PING period of idle connections (default 1000) */
	char *redis_password_file; /* file whose first line is the password, or NULL */
	int redis_offline;        /* enum ucache_redis_offline */
	/* Not parsed (set by the embedding program): keep a store-less cache's
	 * region in a memfd that an exec can hand to the next image (reloads). */
	int keep_region;          /* create the region in a memfd (no store only) */
	int region_fd;            /* a memfd kept from before an exec, to attach
	                           * and validate as a store is; 0 = none (fd 0 is
	                           * stdin, never a region) */
	/* Not parsed: the user the processes run as after start-up (uWSGI's
	 * --uid/--gid; 0: no change).  A store this root process creates is
	 * chowned to it, and an existing one it could not read and write is
	 * refused (a reloaded master reopens the file as that user). */
	unsigned store_uid;
	unsigned store_gid;
};

/* What a read does while Redis is unreachable: miss (default; the near
 * cache is flushed when coherence is lost), or serve what L1 holds. */
enum ucache_redis_offline { UCACHE_REDIS_OFFLINE_MISS, UCACHE_REDIS_OFFLINE_STALE };

#define UCACHE_REDIS_TIMEOUT_DEFAULT 200
#define UCACHE_REDIS_TIMEOUT_MAX 60000
/* Below Redis' smallest idle timeout (timeout 1 = 1 s) by default. */
#define UCACHE_REDIS_KEEPALIVE_DEFAULT 1000
#define UCACHE_REDIS_KEEPALIVE_MIN 100
#define UCACHE_REDIS_KEEPALIVE_MAX 60000

/* A parsed redis= address: path set for unix:, else host and port. */
struct ucache_redis_addr {
	char host[256];
	unsigned port;
	char path[108];           /* unix socket (sun_path's size) */
	char user[128];           /* ACL user of redis://user:pw@..., or "" */
	char password[512];       /* from the URL, or "" */
	unsigned db;
};

/* Parse HOST:PORT, [V6]:PORT, unix:/PATH or redis://[user[:pw]@]host[:port][/db].
 * 0, or -EINVAL with one line naming the address (a URL's user:password
 * shown as ***) and what is wrong in err. */
int ucache_redis_addr_parse(const char *addr, struct ucache_redis_addr *out, char *err, size_t errlen);

/* "host:port db N" or "unix:/path": the address without user or password,
 * for logs.  Returns buf. */
const char *ucache_redis_addr_show(const struct ucache_redis_addr *a, char *buf, size_t len);

/* The Redis key prefix of a near cache, malloc'd (NULL: no memory):
 * redis_prefix with a ':' appended when it does not end with one, or
 * "ucache:" + NAME + ":" with every ':' and backslash of NAME escaped by
 * a backslash, so that no default prefix starts with another (cache "a"
 * is ucache:a: and cache "a:b" is ucache:a\:b:, not ucache:a:b:). */
char *ucache_redis_prefix(const struct ucache_config *cfg);

/* 0, or -EINVAL when a and b are near caches on the same Redis (the same
 * parsed address and db) whose key prefixes overlap (one starts with the
 * other: each would read, and clear would delete, the other's keys), with
 * one line naming both caches and prefixes in err. */
int ucache_config_redis_clash(const struct ucache_config *a, const struct ucache_config *b,
		char *err, size_t errlen);

/* Fill cfg with the stock defaults (no name, no items).  Never fails. */
void ucache_config_init(struct ucache_config *cfg);

/* Release the strings a config owns; cfg is left initialised.  Never fails. */
void ucache_config_free(struct ucache_config *cfg);

/* Parse a --cache2 keyval string ("name=x,items=10,...", backslash escapes)
 * into cfg (initialised by the call).  Unknown keys and "=0/false/no"
 * booleans log a warning and parse.  On error returns -EINVAL and writes one
 * line naming the cache, key and value into err. */
int ucache_config_parse(struct ucache_config *cfg, const char *keyval, char *err, size_t errlen);

/* Build the legacy --cache N configuration (cache "default").  store may be
 * NULL.  Returns -EINVAL with a message in err for a bad value. */
int ucache_config_legacy(struct ucache_config *cfg, uint64_t items, uint64_t blocksize,
		const char *store, uint64_t store_sync, int lastmod, char *err, size_t errlen);

/* Check a filled config (required keys, sizes, keysize, blocks >= items).
 * Returns 0 or -EINVAL with the reason in err. */
int ucache_config_validate(const struct ucache_config *cfg, char *err, size_t errlen);

/* Parse a hash name ("djb33x", "murmur2", "xxh3"); -EINVAL if unknown. */
int ucache_hash_parse(const char *name, enum ucache_hash *out);
const char *ucache_hash_name(enum ucache_hash hash);

/* ----------------------------------------------------------------- caches */

/* Create a cache (call before fork): a shared anonymous mapping, or with
 * cfg->store the file, created, or reopened and recovered: every item is
 * validated and the index rebuilt ("restored N, dropped M" is logged).  A
 * store of another geometry is refused unless store_delete (recreate) or
 * store_migrate (import its items).  With keep_region (and no store) the
 * region is a memfd; with region_fd too, that memfd is attached and
 * validated exactly as a store file ("kept N items, dropped M"), and one
 * of another geometry has what fits imported (as store_migrate, logged in
 * one line); a damaged one is replaced by an empty region.  The config is
 * copied.  NULL on failure, with the reason in err. */
ucache_t *ucache_create(const struct ucache_config *cfg, char *err, size_t errlen);

/* Unmap the cache in this process.  Never fails; NULL is ignored. */
void ucache_destroy(ucache_t *c);

/* Clean shutdown of the last user (the master): with a store, mark it
 * cleanly closed and msync it; then unmap.  Never fails; NULL is ignored. */
void ucache_close(ucache_t *c);

struct ucache_store_info {
	int clean;                /* the last user closed it cleanly */
	uint32_t opens;           /* times it was opened by a cache */
	uint64_t created_at;      /* when it was formatted */
	uint64_t file_size;       /* bytes on disk */
};

/* Open a store file for inspection (ucache-inspect): a private
 * copy-on-write view of it, never written back; the handle supports every
 * read, ucache_check() and ucache_stats().  info may be NULL.  NULL if the
 * file is missing or not a valid ucache store, with the reason in err. */
ucache_t *ucache_open_store_readonly(const char *file, struct ucache_store_info *info, char *err, size_t errlen);

/* The memfd of a keep_region cache (the handle keeps it), or -1. */
int ucache_region_fd(const ucache_t *c);

/* The memfd of a keep_region cache, handed over: the handle no longer
 * closes it (ucache_destroy/close unmap only), so it can outlive the
 * handle across an exec.  -1 if the cache has no such region.  The fd
 * keeps FD_CLOEXEC; the caller clears it just before its exec. */
int ucache_release_region(ucache_t *c);

/* Flush a store to disk (msync; wait = MS_SYNC, else MS_ASYNC).  0 without
 * a store; -errno if msync fails. */
int ucache_msync(ucache_t *c, int wait);

/* The cache's configuration (read-only).  Never fails. */
const struct ucache_config *ucache_config(const ucache_t *c);

/* Largest value the cache accepts: blocksize, or blocksize * blocks in bitmap
 * mode.  Never fails. */
uint64_t ucache_max_value(const ucache_t *c);

/* ------------------------------------------------------------- operations */

struct ucache_item_info {
	uint64_t expires;         /* absolute expiry, 0 = never */
	uint64_t hits;            /* hits of this item, this one included; exact below 64, then an estimate (read.c) */
};

/* Copy the value of key into buf (buflen bytes); *vallen gets its length.
 * Returns 0, -ENOENT (missing or expired), -ENOBUFS (buf too small: *vallen
 * holds the size needed), -EINVAL (empty or oversized key). */
int ucache_get(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen,
		size_t *vallen);

/* As ucache_get, and fills info (may be NULL) with expiry and item hits,
 * on -ENOBUFS too (so buflen 0 reads a value's size and expiry). */
int ucache_get_ex(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen,
		size_t *vallen, struct ucache_item_info *info);

/* As ucache_get_ex, but leaves no trace: no hit or miss counted, LRU
 * position unchanged (dumps, inspection, replication). */
int ucache_peek(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen,
		size_t *vallen, struct ucache_item_info *info);

/* Return a malloc'd copy of the value (caller frees) and its length in
 * *vallen; info may be NULL.  NULL with errno = ENOENT, EINVAL or ENOMEM. */
void *ucache_get_alloc(ucache_t *c, const void *key, size_t klen, size_t *vallen,
		struct ucache_item_info *info);

/* As ucache_get_alloc, but counts no hit or miss and leaves the LRU alone:
 * the engine's and the plugin's own lookups (single-flight locks and
 * markers, a lookup of several candidate keys), so that hits and misses
 * count the application's lookups only.  Unlike ucache_peek, a tagged
 * entry comes back without its envelope (an invalidated one: ENOENT). */
void *ucache_peek_alloc(ucache_t *c, const void *key, size_t klen, size_t *vallen,
		struct ucache_item_info *info);

/* 0 if key holds an unexpired value, -ENOENT if not, -EINVAL for a bad key. */
int ucache_exists(ucache_t *c, const void *key, size_t klen);

enum ucache_set_flags {
	UCACHE_SET_UPDATE = 1 << 0,   /* overwrite an existing key (else -EEXIST) */
	UCACHE_SET_ABSEXPIRE = 1 << 1 /* expires is absolute, not relative */
};

/* Store key -> value.  expires is relative seconds (0 = never) unless
 * UCACHE_SET_ABSEXPIRE.  Returns 0, -EEXIST (exists, no UPDATE flag),
 * -EINVAL (empty key or value), -E2BIG (key > keysize or value > max),
 * -ENOSPC (full, after the configured full handling). */
int ucache_set(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen,
		uint64_t expires, unsigned flags);

/* Delete key.  0, -ENOENT, -EINVAL (bad key). */
int ucache_del(ucache_t *c, const void *key, size_t klen);

/* Delete every item.  Returns the number of items deleted (>= 0). */
int64_t ucache_clear(ucache_t *c);

enum ucache_math_op { UCACHE_MATH_INC, UCACHE_MATH_DEC, UCACHE_MATH_MUL, UCACHE_MATH_DIV };

/* Apply op with delta to the native int64 stored at key (division by zero
 * gives 0).  A missing key starts from math_initial and gets expires
 * (relative seconds); an existing key keeps its expiry.  *result (may be
 * NULL) gets the new value.  0, -EINVAL (bad key, or the value is not 8
 * bytes), -ERANGE (the result is outside int64: nothing written, never a
 * wrap), -ENOSPC (full). */
int ucache_math(ucache_t *c, const void *key, size_t klen, enum ucache_math_op op,
		int64_t delta, uint64_t expires, int64_t *result);

enum ucache_math_flags {
	UCACHE_MATH_EXISTING = 1 << 0 /* a missing key is -ENOENT, not created */
};

/* As ucache_math, with the start value of a missing key given (initial)
 * instead of the cache's math_initial, and flags.  Also -ENOENT (missing
 * key with UCACHE_MATH_EXISTING). */
int ucache_math_ex(ucache_t *c, const void *key, size_t klen, enum ucache_math_op op, int64_t delta,
		   int64_t initial, uint64_t expires, unsigned flags, int64_t *result);

/* Read the native int64 at key into *out.  0, -ENOENT, -EINVAL (value is not
 * 8 bytes, or bad key). */
int ucache_num(ucache_t *c, const void *key, size_t klen, int64_t *out);

/* Iterate keys: start with *cursor = 0; each call copies the next live key
 * into buf (buflen bytes), sets *klen and advances *cursor.  Safe while other
 * processes write: a key present for the whole iteration is returned once;
 * keys added or deleted meanwhile may or may not be.  Returns 0, -ENOENT at
 * the end, -ENOBUFS if buf is smaller than keysize. */
int ucache_iter(ucache_t *c, uint64_t *cursor, void *buf, size_t buflen, size_t *klen);

/* ------------------------------------------------ atomic operations (cas.c)
 *
 * An item's version is a function of its value: the 64-bit xxh3 of the
 * bytes (never 0; 0 stands for "no item").  Any write that changes the
 * value changes the version (collision odds 2^-64 per pair); rewriting the
 * same bytes keeps it, so compare-and-set compares values without copying
 * them, and no update is lost: a CAS succeeds only on the exact value its
 * caller read.  Versions need no room in the item, survive a store reopen
 * and mean the same in every process. */

/* The version of a value.  Never fails, never 0. */
uint64_t ucache_version_of(const void *val, size_t vlen);

/* ucache_get_alloc() plus the value's version in *version (may be NULL). */
void *ucache_gets(ucache_t *c, const void *key, size_t klen, size_t *vallen, uint64_t *version,
		  struct ucache_item_info *info);

enum ucache_cas_flags {
	UCACHE_CAS_KEEP_TTL = 1 << 0  /* keep the item's expiry, ignore expires */
};

/* Store val only if the item's version is still version (0: only if the
 * key is absent).  expires is relative (0 = never).  0, -ESTALE (another
 * value, or absent while version != 0), -EEXIST (version 0, key present),
 * or ucache_set()'s errors. */
int ucache_cas(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen, uint64_t expires,
	       unsigned flags, uint64_t version);

/* Delete key only if its version is version.  0, -ENOENT, -ESTALE. */
int ucache_del_if(ucache_t *c, const void *key, size_t klen, uint64_t version);

/* Overwrite an existing key keeping its expiry.  0, -ENOENT, ucache_set()'s errors. */
int ucache_replace(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen);

/* Give an existing key a new expiry (relative, 0 = never), value untouched.
 * 0, -ENOENT, -EINVAL (bad key). */
int ucache_touch(ucache_t *c, const void *key, size_t klen, uint64_t expires);

/* Seconds key has left in *ttl (-1: never expires).  0, -ENOENT, -EINVAL. */
int ucache_ttl(ucache_t *c, const void *key, size_t klen, int64_t *ttl);

/* --------------------------------------------- single flight (flight.c)
 *
 * get-or-set without a stampede.  ucache_flight_begin() on a miss takes a
 * per-key lock item (an atomic add of "\0uc-lock\0" KEY holding the owner's
 * pid and a token) and tells its caller to compute; other callers of the
 * same key wait, polling every 1-4 ms, for at most wait_ms, then compute
 * anyway.  A lock whose owner is dead (kill(pid, 0) fails with ESRCH) is
 * taken over at once; one whose owner hangs expires after lock_s.  Other
 * keys are never blocked.
 *
 * Stale-while-revalidate: ucache_flight_end() with stale_s > 0 keeps the
 * value stale_s seconds past its timeout and records when it turns stale
 * in a marker item ("\0uc-fresh\0" KEY: fresh-until and the value's
 * version).  A stale value is served by ucache_get_stale(), and by
 * ucache_flight_begin() to every caller but the one that refreshes it. */

enum ucache_flight_state {
	UCACHE_FLIGHT_HIT,      /* *val holds the fresh value */
	UCACHE_FLIGHT_STALE,    /* *val holds a stale value; another caller refreshes it */
	UCACHE_FLIGHT_COMPUTE,  /* the lock is the caller's: compute, then flight_end (*val: a stale value or NULL) */
	UCACHE_FLIGHT_TIMEOUT,  /* waited wait_ms (or no room for the lock): compute without the lock */
	UCACHE_FLIGHT_BUSY      /* ucache_flight_try only: another live caller holds the lock */
};

/* Returns an enum ucache_flight_state (>= 0) or -EINVAL (bad key: too long
 * for the lock's prefix), -ENOMEM.  *val (malloc'd, caller frees) and
 * *vallen as said per state; *token identifies the lock for flight_end
 * when the state is COMPUTE.  Counts no hit or miss (its reads are
 * peeks): the caller counts its own lookup of key first. */
int ucache_flight_begin(ucache_t *c, const void *key, size_t klen, uint64_t wait_ms, uint64_t lock_s,
			void **val, size_t *vallen, uint64_t *token);

/* One try of ucache_flight_begin that never waits: BUSY where begin would
 * poll.  For callers that wait their own way (a coroutine's sleep between
 * tries) without blocking the thread.  Same returns, *val and *token. */
int ucache_flight_try(ucache_t *c, const void *key, size_t klen, uint64_t lock_s, void **val, size_t *vallen,
		      uint64_t *token);

/* Store key -> val (expires relative, 0 = never; stale_s extra seconds of
 * stale life) and release the lock token (0: none) if it is still ours.
 * Returns ucache_set()'s result. */
int ucache_flight_end(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen,
		      uint64_t expires, uint64_t stale_s, uint64_t token);

/* Release the lock token without storing (the computation failed). */
void ucache_flight_abort(ucache_t *c, const void *key, size_t klen, uint64_t token);

/* The value even when stale (past its flight_end timeout, within stale_s):
 * malloc'd, *stale set to 1 if so; one hit or miss counted.  NULL with errno ENOENT, EINVAL, ENOMEM. */
void *ucache_get_stale(ucache_t *c, const void *key, size_t klen, size_t *vallen, int *stale);

/* Free up to budget expired items, examining at most budget * 8 slots from
 * a shared cursor, so the cost depends on budget and not on the cache size.
 * Returns the number of items freed (>= 0). */
int64_t ucache_sweep(ucache_t *c, uint64_t now, uint64_t budget);

/* Number of live items. Never fails. */
uint64_t ucache_items(const ucache_t *c);

/* ------------------------------------------------------------------ tags */

/* An entry may carry tags: its value starts with a tag envelope (the head
 * ucache_tags_head() writes) followed by the payload.  Invalidating a tag
 * costs two atomic operations however many entries carry it; from then on
 * every read of an entry carrying it (get, get_ex, get_alloc, exists, num,
 * peek) is a miss, and ucache_sweep() frees it.  A renderer reads
 * ucache_tags_now() *before* computing the value and passes it to
 * ucache_tags_head() with the tags (known only afterwards, say): an
 * invalidation of one of them after that moment, during the computation
 * included, makes the entry stale.  Reads return the payload only, except
 * ucache_peek(), which returns the stored bytes (envelope included: dumps
 * and replicas copy them unchanged; another instance's table never matches
 * them, so there they are misses).  Generations are not persisted: after a
 * restart every tagged entry of a reopened store is a miss.  Values
 * starting with the 8 bytes "\0UCTAGS\1" are reserved for envelopes. */
#define UCACHE_TAG_MAGIC "\0UCTAGS\1" /* an envelope's first 8 bytes */
#define UCACHE_TAGS_MAX 64          /* tags per entry */
#define UCACHE_TAG_MAX 1024         /* bytes per tag */
#define UCACHE_TAG_HEAD_MAX (32 + 4 * UCACHE_TAGS_MAX)

/* The invalidation clock now: what a renderer reads before rendering.
 * Never fails (0 without a tag table: a read-only inspection). */
uint64_t ucache_tags_now(ucache_t *c);

/* Write the envelope head for ntags tags (tags[i], lens[i] bytes) of a
 * value computed after ucache_tags_now() returned since.  Returns its
 * length (32 + 4 * ntags), -EINVAL (no tags, more than UCACHE_TAGS_MAX, an
 * empty or oversized tag or one with a comma, since = 0) or -ENOBUFS
 * (outlen too short). */
long ucache_tags_head(ucache_t *c, uint64_t since, const void *const *tags, const size_t *lens, size_t ntags,
		      void *out, size_t outlen);

/* Invalidate tag: O(1).  0 or -EINVAL (empty or oversized tag, or one
 * with a comma). */
int ucache_invalidate_tag(ucache_t *c, const void *tag, size_t len);

/* Tag state kept outside the engine (a near cache's, in Redis: the plugin's
 * redis_tags.c).  Such an envelope carries the fixed epoch
 * UCACHE_TAGS_SHARED_EPOCH instead of a table's random one, so any machine
 * parses it and no engine table ever judges it fresh (a local read of one
 * is a miss); its counters are ucache_tag_index(tag), 0 .. 65535, and the
 * holder of the state compares them (tags.h has the layout). */
#define UCACHE_TAGS_SHARED_EPOCH UINT64_C(0x5349444552435500)   /* "\0UCREDIS" little-endian */
uint32_t ucache_tag_index(const void *tag, size_t len);
long ucache_tags_head_shared(uint64_t since, const void *const *tags, const size_t *lens, size_t ntags,
			     void *out, size_t outlen);

/* Is the stored value val (len bytes) a fresh tagged entry?  The payload's
 * offset (> 0) if so, 0 if val has no envelope, -ESTALE if it is stale. */
long ucache_tags_check(ucache_t *c, const void *val, size_t len);

/* ------------------------------------------------ read-only views (view.c)
 *
 * A process that is not one of the cache's (an nginx worker: the module in
 * nginx/) reads a cache through its store file, mapped PROT_READ and
 * MAP_SHARED: it sees every write of the cache's processes as they make it
 * and can never change a byte of the cache.  A store on tmpfs (/run,
 * /dev/shm) is shared memory with a path.  The tag generations live in the
 * same file, so an invalidation made by any process of the cache is honoured
 * by the view's next read.
 *
 * The file is untrusted bytes: its header is judged as a store's open
 * judges it, every bound comes from that checked copy and the mapping's
 * length, every offset and length read is checked against them; a read
 * that cannot get a consistent snapshot within a small bound (a writer
 * inside the key's stripe, or one that died there) answers BUSY instead of
 * waiting or taking a lock, and a garbage, truncated or foreign file is
 * refused at open with one line.  A view never takes a lock, never counts a
 * hit or a miss and never moves an item in the LRU: an entry nginx serves
 * ages out of a purge_lru cache as if nobody read it.
 *
 * The cache never shrinks a store file in place (a geometry change,
 * store_delete and store_migrate all rename a new file over it), so a view
 * is never SIGBUS'd: it keeps the old file, whole, until it reopens.  A
 * restart over the same file (same geometry) keeps the inode: the view
 * follows it without reopening.  Thread safety: a view is read-only after
 * open; concurrent ucache_view_get calls on one view are safe. */
typedef struct ucache_view ucache_view_t;

enum ucache_view_status {
	UCACHE_VIEW_HIT = 0,      /* the payload was copied (tag envelope removed) */
	UCACHE_VIEW_MISS,         /* no such key (or an empty key, or one over the cache's keysize) */
	UCACHE_VIEW_EXPIRED,      /* the key is there, past its expiry (the engine's clock, ucache_now) */
	UCACHE_VIEW_INVALIDATED,  /* the key is there, one of its tags was invalidated (or it
				   * was tagged before the cache last opened the store) */
	UCACHE_VIEW_BUSY,         /* no consistent snapshot in 4096 attempts (a few ms: the
				   * key's stripe was being written the whole time, or its
				   * writer died inside and no cache process has repaired it
				   * yet): treat as a miss, never retry in a loop */
	UCACHE_VIEW_NOBUFS        /* buf too small: *vallen holds the size needed */
};

/* Map the store file path read-only (the caller needs read permission on
 * it only; the cache's processes keep it 0600 unless deployed otherwise).
 * NULL, with one line naming the file and what is wrong in err, when it is
 * missing, unreadable, empty, not a ucache store, of another layout version,
 * with a damaged header, or shorter than its header says (a store being
 * created: retry later), or when no cache holds it and it was not closed
 * cleanly (a crash, or a copy of a live store: its items are proven only
 * by the cache's recovery; retry once the cache runs).  A cleanly stopped
 * cache's store opens.  The descriptor is closed once mapped. */
ucache_view_t *ucache_view_open(const char *path, char *err, size_t errlen);

/* Unmap and free.  NULL is ignored. */
void ucache_view_close(ucache_view_t *v);

/* 1 when path no longer names the file the view maps (the store was
 * replaced: store_delete, store_migrate, a geometry change; or it is gone,
 * or now shorter than the mapping), so the caller should open a new view
 * and close this one (the old one stays readable meanwhile); else 0.
 * Costs one stat(): call it on a timer (say once a second), not per read. */
int ucache_view_replaced(const ucache_view_t *v);

/* Look key up: an enum ucache_view_status.  On HIT the payload is in buf
 * (buflen bytes) and *vallen is its length; on NOBUFS *vallen is the size
 * needed (buf may be NULL with buflen 0 to ask the size).  vallen and info
 * may be NULL; info gets the expiry on HIT and NOBUFS, and hits = 0 (a view
 * does not read the item's hit counter).  Never blocks, never signals. */
int ucache_view_get(ucache_view_t *v, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		    struct ucache_item_info *info);

struct ucache_stats {
	uint64_t items;            /* live items (expired-but-unswept included) */
	uint64_t capacity;         /* usable items: items - 1 */
	uint64_t hits, misses;     /* application lookups only (ucache_peek* count nothing) */
	uint64_t full;             /* times a write found the cache full */
	uint64_t evictions;        /* items removed by purge_lru or clear_on_full */
	uint64_t expirations;      /* expired items removed (sweep or lazily) */
	uint64_t bytes_used;       /* value bytes stored */
	uint64_t blocks_used;      /* bitmap mode: blocks in use; else items */
	uint64_t last_modified_at; /* with lastmod: time of the last write, else 0 */
	uint64_t mapped_bytes;     /* size of the shared mapping (virtual) */
	uint64_t metadata_bytes;   /* header, index, slots and allocator metadata (virtual) */
	uint64_t stock_mapped_bytes; /* what stock uWSGI 2.0.21 maps for the same configuration (never less than mapped_bytes for sane geometries) */
	uint64_t too_large;        /* writes refused with -E2BIG (key or value over the cache's limits) */
};

/* Fill st with live counters (summed without locks).  Never fails. */
void ucache_stats(ucache_t *c, struct ucache_stats *st);

/* Bytes of the cache's mapping resident in memory now (mincore() over the
 * mapping: costs a byte per 4 KiB page, call it at start-up or on demand,
 * not per request).  0 if mincore fails. */
uint64_t ucache_resident_bytes(ucache_t *c);

/* Verify every invariant (index <-> slots <-> key/value storage <-> free
 * lists).  Takes every write lock.  0, or -EUCLEAN with the first violation
 * described in err. */
int ucache_check(ucache_t *c, char *err, size_t errlen);

/* Rebuild index, free lists and allocators from the slot table (what lock
 * recovery does after a writer died).  Returns the number of items kept,
 * or -ENOMEM if the rebuild's scratch memory could not be allocated (the
 * cache is then unchanged and stays marked for repair). */
int64_t ucache_repair(ucache_t *c);

#ifdef __cplusplus
}
#endif

#endif /* UCACHE_H */
