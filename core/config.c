/*
 * config.c - cache configurations: the --cache2 keyval parser, the legacy
 * --cache N configuration, defaults and validation.
 *
 * Callers: the plugin, once per --cache2 / --cache option at start-up (in
 * the master, before any fork), and ucache_create(), which validates the
 * config it copies.  Nothing here touches shared memory or takes a lock; the
 * only global state used is the logger (warnings go through uc_log()).
 *
 * Compatibility with uWSGI 2.0.21 (uwsgi_kvlist_parse + uwsgi_cache_create):
 *   - Items are split on unescaped ','; the first unescaped '=' splits key
 *     from value, so a value may contain '=' ("store=/a=b").  A backslash
 *     makes the next character literal ("\,", "\=", "\\"); a trailing lone
 *     backslash is dropped.  Keys are case-sensitive and never trimmed.
 *   - An item without '=' is ignored, as stock ignores it, but with a
 *     warning (stock's "bitmap" alone silently did not enable bitmap mode).
 *   - A boolean key is enabled by its presence whatever the value; "=0",
 *     "=false", "=no", "=off" keep it enabled and log a warning.
 *   - The last occurrence of a key (or of one of its aliases) wins; an
 *     override logs a warning.  Unknown keys and "expires" (emitted by
 *     uwsgiconf, ignored by stock) log a warning and are skipped.
 *   - Stricter than stock, which used strtoul() and exit(1): numbers must be
 *     plain decimal with no sign, junk or overflow (math_initial may be
 *     signed); every error is one line naming cache, key and value, and is
 *     returned as -EINVAL, never exit().
 *   - items >= 1 is accepted, as stock does, although items = 1 leaves no
 *     usable item (usable = items - 1, slot 0 is reserved): it only warns.
 *   - store_sync defaults to 0 here; stock's --cache2 inherits the global
 *     --cache-store-sync, which the plugin must copy in when the key is absent.
 *
 * Invariants: after ucache_config_parse() or ucache_config_legacy() succeed,
 * the config has passed ucache_config_validate(): name non-empty,
 * 1 <= items <= blocks, sizes non-zero and within the bounds of config.h.
 * After a failure the config is initialised and owns nothing.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "util.h"

enum key_type {
	KT_NAME,    /* cache name: non-empty string (taken by find_name) */
	KT_PATH,    /* non-empty string */
	KT_LIST,    /* string, empty means unset */
	KT_U64,     /* unsigned decimal */
	KT_I64,     /* signed decimal */
	KT_BOOL,    /* enabled by presence */
	KT_HASH,    /* hash algorithm name */
	KT_OFFLINE, /* redis_offline: miss or stale */
	KT_IGNORED  /* accepted, warned about, no effect */
};

/* Canonical keys; the index is the bit of the key in parse_state.seen. */
enum key_id {
	K_NAME, K_ITEMS, K_BLOCKSIZE, K_BLOCKS, K_BITMAP, K_HASH, K_HASHSIZE,
	K_KEYSIZE, K_STORE, K_STORE_SYNC, K_STORE_DELETE, K_STORE_MIGRATE,
	K_NODES, K_UDP, K_SYNC, K_UDP_ALLOW, K_UDP_SECRET_FILE, K_LASTMOD, K_MATH_INITIAL, K_IGNORE_FULL,
	K_PURGE_LRU, K_LAZY_EXPIRE, K_SWEEP_ON_FULL, K_CLEAR_ON_FULL,
	K_NO_EXPIRE, K_EXPIRES, K_REDIS, K_REDIS_PREFIX, K_REDIS_TIMEOUT,
	K_REDIS_PASSWORD_FILE, K_REDIS_OFFLINE, K_REDIS_KEEPALIVE, K_COUNT
};

#define CFG_OFF(field) offsetof(struct ucache_config, field)

static const struct key_field {
	const char *canon;
	enum key_type type;
	size_t off;
} fields[K_COUNT] = {
	[K_NAME] = { "name", KT_NAME, CFG_OFF(name) },
	[K_ITEMS] = { "items", KT_U64, CFG_OFF(items) },
	[K_BLOCKSIZE] = { "blocksize", KT_U64, CFG_OFF(blocksize) },
	[K_BLOCKS] = { "blocks", KT_U64, CFG_OFF(blocks) },
	[K_BITMAP] = { "bitmap", KT_BOOL, CFG_OFF(bitmap) },
	[K_HASH] = { "hash", KT_HASH, CFG_OFF(hash) },
	[K_HASHSIZE] = { "hashsize", KT_U64, CFG_OFF(hashsize) },
	[K_KEYSIZE] = { "keysize", KT_U64, CFG_OFF(keysize) },
	[K_STORE] = { "store", KT_PATH, CFG_OFF(store) },
	[K_STORE_SYNC] = { "store_sync", KT_U64, CFG_OFF(store_sync) },
	[K_STORE_DELETE] = { "store_delete", KT_BOOL, CFG_OFF(store_delete) },
	[K_STORE_MIGRATE] = { "store_migrate", KT_BOOL, CFG_OFF(store_migrate) },
	[K_NODES] = { "nodes", KT_LIST, CFG_OFF(nodes) },
	[K_UDP] = { "udp", KT_LIST, CFG_OFF(udp) },
	[K_SYNC] = { "sync", KT_LIST, CFG_OFF(sync) },
	[K_UDP_ALLOW] = { "udp_allow", KT_LIST, CFG_OFF(udp_allow) },
	[K_UDP_SECRET_FILE] = { "udp_secret_file", KT_PATH, CFG_OFF(udp_secret_file) },
	[K_LASTMOD] = { "lastmod", KT_BOOL, CFG_OFF(lastmod) },
	[K_MATH_INITIAL] = { "math_initial", KT_I64, CFG_OFF(math_initial) },
	[K_IGNORE_FULL] = { "ignore_full", KT_BOOL, CFG_OFF(ignore_full) },
	[K_PURGE_LRU] = { "purge_lru", KT_BOOL, CFG_OFF(purge_lru) },
	[K_LAZY_EXPIRE] = { "lazy_expire", KT_BOOL, CFG_OFF(lazy_expire) },
	[K_SWEEP_ON_FULL] = { "sweep_on_full", KT_U64, CFG_OFF(sweep_on_full) },
	[K_CLEAR_ON_FULL] = { "clear_on_full", KT_BOOL, CFG_OFF(clear_on_full) },
	[K_NO_EXPIRE] = { "no_expire", KT_BOOL, CFG_OFF(no_expire) },
	[K_EXPIRES] = { "expires", KT_IGNORED, 0 },
	[K_REDIS] = { "redis", KT_LIST, CFG_OFF(redis) },
	[K_REDIS_PREFIX] = { "redis_prefix", KT_LIST, CFG_OFF(redis_prefix) },
	[K_REDIS_TIMEOUT] = { "redis_timeout", KT_U64, CFG_OFF(redis_timeout) },
	[K_REDIS_PASSWORD_FILE] = { "redis_password_file", KT_PATH, CFG_OFF(redis_password_file) },
	[K_REDIS_OFFLINE] = { "redis_offline", KT_OFFLINE, CFG_OFF(redis_offline) },
	[K_REDIS_KEEPALIVE] = { "redis_keepalive", KT_U64, CFG_OFF(redis_keepalive) },
};

/* Spellings other than the canonical ones of fields[]: together, every
 * spelling stock 2.0.21 accepts, plus store_migrate, expires and ucache's
 * udp_allow / udp_secret_file (the plugin reads and checks their values). */
static const struct key_alias {
	const char *alias;
	enum key_id id;
} aliases[] = {
	{ "max_items", K_ITEMS }, { "maxitems", K_ITEMS },
	{ "hash_size", K_HASHSIZE },
	{ "key_size", K_KEYSIZE },
	{ "storesync", K_STORE_SYNC },
	{ "storedelete", K_STORE_DELETE },
	{ "node", K_NODES },
	{ "udp_servers", K_UDP }, { "udp_server", K_UDP }, { "udpservers", K_UDP }, { "udpserver", K_UDP },
	{ "lru", K_PURGE_LRU },
	{ "lazy", K_LAZY_EXPIRE },
};

struct parse_state {
	uint64_t seen;  /* bit i: key i (enum key_id) was given */
};

_Static_assert(K_COUNT <= 64, "parse_state.seen has a bit per key");

/* The name to print in messages: "?" until the cache has one. */
static const char *disp(const char *name)
{
	return name && *name ? name : "?";
}

/* The key a spelling (canonical or alias) names, or K_COUNT if none. */
static enum key_id find_key(const char *key)
{
	size_t i;

	for (i = 0; i < K_COUNT; i++)
		if (!strcmp(fields[i].canon, key))
			return (enum key_id)i;
	for (i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (!strcmp(aliases[i].alias, key))
			return aliases[i].id;
	return K_COUNT;
}

/* Strict unsigned decimal: digits only, at least one, no overflow.
 * Returns 0, -EINVAL (not a number) or -ERANGE (too large). */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Strict signed decimal: optional '+' or '-', then as parse_u64. */
static int parse_i64(const char *s, int64_t *out)
{
	int neg = (*s == '-');
	uint64_t v;
	int rc;

	if (*s == '-' || *s == '+')
		s++;
	rc = parse_u64(s, &v);
	if (rc)
		return rc;
	if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
		return -ERANGE;
	/* -(INT64_MAX + 1) without signed overflow */
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static int is_false_word(const char *v)
{
	return !strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
		!strcasecmp(v, "off");
}

/*
 * Copy the next item of *src (up to an unescaped ',') into buf, removing
 * escapes.  The first unescaped '=' ends the key: it is replaced by a NUL
 * and *val points just after it, into buf; *val is NULL if there is no '='.
 * buf must hold strlen(*src) + 1 bytes.  Returns 0 at the end of the string.
 */
static int next_item(const char **src, char *buf, char **val)
{
	const char *s = *src;
	char *o = buf;

	if (!*s)
		return 0;
	*val = NULL;
	while (*s && *s != ',') {
		if (*s == '\\') {
			if (!*++s)
				break;
			*o++ = *s++;
		} else if (*s == '=' && !*val) {
			*o++ = '\0';
			*val = o;
			s++;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	*src = *s ? s + 1 : s;
	return 1;
}

/* Replace the string at *slot by a copy of val (NULL or "" -> NULL). */
static int set_string(char **slot, const char *val)
{
	char *copy = NULL;

	if (val && *val) {
		copy = strdup(val);
		if (!copy)
			return -ENOMEM;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

/* First pass: take the last name=VALUE, so that every message of the second
 * pass names the cache even when "name" comes last. */
static int find_name(struct ucache_config *cfg, const char *keyval, char *buf)
{
	const char *p = keyval;
	char *val;

	while (next_item(&p, buf, &val))
		if (val && find_key(buf) == K_NAME && set_string(&cfg->name, val))
			return -ENOMEM;
	return 0;
}

static int bad_value(const struct ucache_config *cfg, const char *key, const char *val,
		const char *why, char *err, size_t errlen)
{
	uc_err(err, errlen, "cache \"%s\": invalid value \"%s\" for key \"%s\" (%s)",
		disp(cfg->name), val, key, why);
	return -EINVAL;
}

static int set_number(struct ucache_config *cfg, const struct key_field *f, const char *key,
		const char *val, char *err, size_t errlen)
{
	void *dst = (char *)cfg + f->off;
	uint64_t u;
	int64_t i;
	int rc;

	if (f->type == KT_I64) {
		rc = parse_i64(val, &i);
		if (!rc)
			memcpy(dst, &i, sizeof(i));
	} else {
		rc = parse_u64(val, &u);
		if (!rc)
			memcpy(dst, &u, sizeof(u));
	}
	if (rc == -ERANGE)
		return bad_value(cfg, key, val, f->type == KT_I64 ?
			"out of the signed 64-bit range" : "too large", err, errlen);
	if (rc)
		return bad_value(cfg, key, val, f->type == KT_I64 ?
			"expected a signed number" : "expected a number", err, errlen);
	return 0;
}

static void set_bool(struct ucache_config *cfg, const struct key_field *f, const char *key,
		const char *val)
{
	*(int *)(void *)((char *)cfg + f->off) = 1;
	if (is_false_word(val))
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": %s=%s still enables %s (as in stock uWSGI); "
			"remove the key to disable it", disp(cfg->name), key, val, f->canon);
}

static int set_text(struct ucache_config *cfg, const struct key_field *f, const char *key,
		const char *val, char *err, size_t errlen)
{
	if (f->type == KT_NAME)
		return *val ? 0 : bad_value(cfg, key, val, "expected a cache name", err, errlen);
	if (f->type == KT_PATH && !*val)
		return bad_value(cfg, key, val, "expected a file name", err, errlen);
	if (set_string((char **)(void *)((char *)cfg + f->off), val)) {
		uc_err(err, errlen, "cache \"%s\": out of memory", disp(cfg->name));
		return -ENOMEM;
	}
	return 0;
}

/* Store one key=val into cfg.  key is the spelling the user wrote. */
static int set_field(struct ucache_config *cfg, const struct key_field *f, const char *key,
		const char *val, char *err, size_t errlen)
{
	switch (f->type) {
	case KT_U64:
	case KT_I64:
		return set_number(cfg, f, key, val, err, errlen);
	case KT_BOOL:
		set_bool(cfg, f, key, val);
		return 0;
	case KT_HASH:
		if (ucache_hash_parse(val, &cfg->hash))
			return bad_value(cfg, key, val, "expected djb33x, murmur2 or xxh3",
				err, errlen);
		return 0;
	case KT_OFFLINE:
		if (!strcmp(val, "miss"))
			cfg->redis_offline = UCACHE_REDIS_OFFLINE_MISS;
		else if (!strcmp(val, "stale"))
			cfg->redis_offline = UCACHE_REDIS_OFFLINE_STALE;
		else
			return bad_value(cfg, key, val, "expected miss or stale", err, errlen);
		return 0;
	case KT_IGNORED:
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": key \"%s\" is ignored (as in stock uWSGI); "
			"give each item its own expiry", disp(cfg->name), key);
		return 0;
	default:
		return set_text(cfg, f, key, val, err, errlen);
	}
}

/* Second pass, one item: look the key up, warn about what stock would
 * silently ignore or override, then store the value. */
static int apply_item(struct ucache_config *cfg, struct parse_state *st, const char *key,
		const char *val, char *err, size_t errlen)
{
	enum key_id id = find_key(key);
	const struct key_field *f;

	if (id == K_COUNT) {
		if (*key || val)
			uc_log(UCACHE_LOG_WARN, "cache \"%s\": unknown key \"%s\" ignored",
				disp(cfg->name), key);
		return 0;
	}
	f = &fields[id];
	if (!val) {
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": key \"%s\" without a value is ignored "
			"(as in stock uWSGI); write %s=%s", disp(cfg->name), key, key,
			f->type == KT_BOOL ? "1" : "VALUE");
		return 0;
	}
	if (st->seen & (UINT64_C(1) << id))
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": %s=%s overrides an earlier %s",
			disp(cfg->name), key, id == K_REDIS ? "..." : val, f->canon);
	st->seen |= UINT64_C(1) << id;
	return set_field(cfg, f, key, val, err, errlen);
}

static void warn_degenerate(const struct ucache_config *cfg)
{
	if (cfg->items == 1)
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": items=1 leaves no usable item "
			"(usable items = items - 1)", disp(cfg->name));
}

/* The end of both constructors: rc is the result so far; validate, free
 * the config on failure, warn about what is valid but useless. */
static int finish(struct ucache_config *cfg, int rc, char *err, size_t errlen)
{
	if (!rc)
		rc = ucache_config_validate(cfg, err, errlen);
	if (rc) {
		ucache_config_free(cfg);
		return rc;
	}
	warn_degenerate(cfg);
	return 0;
}

void ucache_config_init(struct ucache_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->blocksize = UC_CONFIG_DEFAULT_BLOCKSIZE;
	cfg->hashsize = UC_CONFIG_DEFAULT_HASHSIZE;
	cfg->keysize = UC_CONFIG_DEFAULT_KEYSIZE;
	/* not stock's djb33x: the hash only places keys in ucache's own index,
	 * nothing outside sees it, and xxh3 costs ~20 instructions on a 16-byte
	 * key where djb33x costs ~106 (a fifth of a get).  hash=djb33x still
	 * selects it. */
	cfg->hash = UCACHE_HASH_XXH3;
	cfg->redis_timeout = UCACHE_REDIS_TIMEOUT_DEFAULT;
	cfg->redis_keepalive = UCACHE_REDIS_KEEPALIVE_DEFAULT;
}

void ucache_config_free(struct ucache_config *cfg)
{
	free(cfg->name);
	free(cfg->store);
	free(cfg->nodes);
	free(cfg->udp);
	free(cfg->sync);
	free(cfg->udp_allow);
	free(cfg->udp_secret_file);
	free(cfg->redis);
	free(cfg->redis_prefix);
	free(cfg->redis_password_file);
	ucache_config_init(cfg);
}

/* Both passes over the keyval string, then defaults and required keys. */
static int parse_items(struct ucache_config *cfg, const char *keyval, char *buf,
		char *err, size_t errlen)
{
	struct parse_state st = { 0 };
	const char *p = keyval;
	char *val;
	int rc;

	if (find_name(cfg, keyval, buf)) {
		uc_err(err, errlen, "cache \"?\": out of memory");
		return -ENOMEM;
	}
	while (next_item(&p, buf, &val)) {
		rc = apply_item(cfg, &st, buf, val, err, errlen);
		if (rc)
			return rc;
	}
	if (!(st.seen & (UINT64_C(1) << K_NAME))) {
		uc_err(err, errlen, "cache \"?\": missing required key \"name\"");
		return -EINVAL;
	}
	if (!(st.seen & (UINT64_C(1) << K_ITEMS))) {
		uc_err(err, errlen, "cache \"%s\": missing required key \"items\"", disp(cfg->name));
		return -EINVAL;
	}
	if (!(st.seen & (UINT64_C(1) << K_BLOCKS)))
		cfg->blocks = cfg->items;
	return 0;
}

int ucache_config_parse(struct ucache_config *cfg, const char *keyval, char *err, size_t errlen)
{
	char *buf;
	int rc;

	ucache_config_init(cfg);
	if (!keyval)
		keyval = "";
	buf = malloc(strlen(keyval) + 1);
	if (!buf) {
		uc_err(err, errlen, "cache \"?\": out of memory");
		return -ENOMEM;
	}
	rc = parse_items(cfg, keyval, buf, err, errlen);
	free(buf);
	return finish(cfg, rc, err, errlen);
}

int ucache_config_legacy(struct ucache_config *cfg, uint64_t items, uint64_t blocksize,
		const char *store, uint64_t store_sync, int lastmod, char *err, size_t errlen)
{
	ucache_config_init(cfg);
	if (set_string(&cfg->name, "default") || set_string(&cfg->store, store)) {
		ucache_config_free(cfg);
		uc_err(err, errlen, "cache \"default\": out of memory");
		return -ENOMEM;
	}
	cfg->items = items;
	cfg->blocks = items;
	if (blocksize)
		cfg->blocksize = blocksize;
	cfg->store_sync = store_sync;
	cfg->lastmod = !!lastmod;
	return finish(cfg, 0, err, errlen);
}

static int bad_number(const struct ucache_config *cfg, const char *key, uint64_t v,
		const char *why, char *err, size_t errlen)
{
	uc_err(err, errlen, "cache \"%s\": invalid value \"%llu\" for key \"%s\" (%s)",
		disp(cfg->name), (unsigned long long)v, key, why);
	return -EINVAL;
}

/* items, blocks and their relation. */
static int validate_counts(const struct ucache_config *cfg, char *err, size_t errlen)
{
	char why[64];

	if (!cfg->items)
		return bad_number(cfg, "items", 0, "must be at least 1", err, errlen);
	if (cfg->items > UC_CONFIG_ITEMS_MAX)
		return bad_number(cfg, "items", cfg->items, "at most 4294967295", err, errlen);
	if (!cfg->blocks)
		return bad_number(cfg, "blocks", 0, "must be at least 1", err, errlen);
	if (cfg->blocks < cfg->items) {
		snprintf(why, sizeof(why), "must be >= items, %llu",
			(unsigned long long)cfg->items);
		return bad_number(cfg, "blocks", cfg->blocks, why, err, errlen);
	}
	if (!cfg->blocksize)
		return bad_number(cfg, "blocksize", 0, "must be at least 1", err, errlen);
	if (cfg->blocks > UC_CONFIG_BYTES_MAX / cfg->blocksize) {
		uc_err(err, errlen, "cache \"%s\": blocksize %llu x blocks %llu exceeds the "
			"2^48-byte (256 TiB) limit", disp(cfg->name),
			(unsigned long long)cfg->blocksize, (unsigned long long)cfg->blocks);
		return -EINVAL;
	}
	return 0;
}

/* The near-cache keys: a parseable address, a timeout in range, and no
 * redis_* key without redis= (it would silently do nothing). */
static int validate_redis(const struct ucache_config *cfg, char *err, size_t errlen)
{
	struct ucache_redis_addr addr;
	char why[400];

	if (!cfg->redis) {
		if (cfg->redis_prefix || cfg->redis_password_file ||
				cfg->redis_timeout != UCACHE_REDIS_TIMEOUT_DEFAULT ||
				cfg->redis_keepalive != UCACHE_REDIS_KEEPALIVE_DEFAULT ||
				cfg->redis_offline != UCACHE_REDIS_OFFLINE_MISS) {
			uc_err(err, errlen, "cache \"%s\": redis_prefix, redis_timeout, "
				"redis_password_file, redis_offline and redis_keepalive need redis=ADDR",
				disp(cfg->name));
			return -EINVAL;
		}
		return 0;
	}
	/* Redis is the shared truth of a near cache: UDP datagrams would write
	 * peers' L1 behind its back, and a start-up sync would fill L1 with
	 * items Redis does not hold */
	if (cfg->nodes || cfg->udp || cfg->sync) {
		uc_err(err, errlen, "cache \"%s\": redis= cannot be combined with nodes=, udp= or sync= "
			"(Redis already shares the cache between machines)", disp(cfg->name));
		return -EINVAL;
	}
	if (ucache_redis_addr_parse(cfg->redis, &addr, why, sizeof(why))) {
		uc_err(err, errlen, "cache \"%s\": key \"redis\": %s", disp(cfg->name), why);
		return -EINVAL;
	}
	if (!cfg->redis_timeout || cfg->redis_timeout > UCACHE_REDIS_TIMEOUT_MAX)
		return bad_number(cfg, "redis_timeout", cfg->redis_timeout,
			"milliseconds, 1..60000", err, errlen);
	if (cfg->redis_keepalive < UCACHE_REDIS_KEEPALIVE_MIN ||
			cfg->redis_keepalive > UCACHE_REDIS_KEEPALIVE_MAX)
		return bad_number(cfg, "redis_keepalive", cfg->redis_keepalive,
			"milliseconds, 100..60000", err, errlen);
	return 0;
}

/* ------------------------------------------------- near-cache namespaces */

char *ucache_redis_prefix(const struct ucache_config *cfg)
{
	const char *src = cfg->redis_prefix ? cfg->redis_prefix : cfg->name;
	size_t n = strlen(src), i;
	char *out = malloc(sizeof("ucache:") + 2 * n + 1), *o = out;

	if (!out)
		return NULL;
	if (cfg->redis_prefix) {
		memcpy(o, src, n);
		o += n;
		if (!n || src[n - 1] != ':')
			*o++ = ':';
		*o = '\0';
		return out;
	}
	o += sprintf(o, "ucache:");
	for (i = 0; i < n; i++) {
		if (src[i] == ':' || src[i] == '\\')
			*o++ = '\\';
		*o++ = src[i];
	}
	strcpy(o, ":");
	return out;
}

/* Both addresses parse (validated before) and name one server and db;
 * shown: that address for the message (never a password).  Two spellings
 * of one host (a name and its address) are not detected. */
static int same_redis(const struct ucache_config *a, const struct ucache_config *b,
		char *shown, size_t len)
{
	struct ucache_redis_addr x, y;
	char why[400];

	if (!a->redis || !b->redis || ucache_redis_addr_parse(a->redis, &x, why, sizeof(why)) ||
			ucache_redis_addr_parse(b->redis, &y, why, sizeof(why)))
		return 0;
	ucache_redis_addr_show(&y, shown, len);
	if (x.path[0] || y.path[0])
		return !strcmp(x.path, y.path) && x.db == y.db;
	return !strcasecmp(x.host, y.host) && x.port == y.port && x.db == y.db;
}

int ucache_config_redis_clash(const struct ucache_config *a, const struct ucache_config *b,
		char *err, size_t errlen)
{
	char *pa, *pb, shown[400];
	int rc = 0;

	if (!same_redis(a, b, shown, sizeof(shown)))
		return 0;
	pa = ucache_redis_prefix(a);
	pb = ucache_redis_prefix(b);
	if (!pa || !pb) {
		uc_err(err, errlen, "cache \"%s\": out of memory", disp(b->name));
		rc = -ENOMEM;
	} else if (!strncmp(pa, pb, strlen(pa) < strlen(pb) ? strlen(pa) : strlen(pb))) {
		uc_err(err, errlen, "caches \"%s\" (Redis prefix \"%s\") and \"%s\" (Redis prefix "
			"\"%s\") share Redis %s and one prefix starts with the other: each would "
			"read, and clear would delete, the other's keys; give them redis_prefix "
			"values that do not overlap", disp(a->name), pa, disp(b->name), pb, shown);
		rc = -EINVAL;
	}
	free(pa);
	free(pb);
	return rc;
}

int ucache_config_validate(const struct ucache_config *cfg, char *err, size_t errlen)
{
	int rc;

	if (!cfg->name || !*cfg->name) {
		uc_err(err, errlen, "cache \"?\": missing required key \"name\"");
		return -EINVAL;
	}
	rc = validate_counts(cfg, err, errlen);
	if (rc)
		return rc;
	if (!cfg->hashsize)
		return bad_number(cfg, "hashsize", 0, "must be at least 1", err, errlen);
	if (cfg->hashsize > UC_CONFIG_HASHSIZE_MAX)
		return bad_number(cfg, "hashsize", cfg->hashsize, "at most 4294967295",
			err, errlen);
	if (!cfg->keysize || cfg->keysize > UCACHE_KEYSIZE_MAX)
		return bad_number(cfg, "keysize", cfg->keysize, "must be 1..65534", err, errlen);
	if ((unsigned)cfg->hash > UCACHE_HASH_XXH3) {
		uc_err(err, errlen, "cache \"%s\": unknown hash %d", disp(cfg->name),
			(int)cfg->hash);
		return -EINVAL;
	}
	return validate_redis(cfg, err, errlen);
}
