/*
 * test_config.c - unit tests of core/config.c: the --cache2 keyval parser
 * (every key and alias, booleans, escapes, warnings, errors), the legacy
 * --cache configuration, defaults and validation.
 *
 * Warnings are captured by ut_log_capture() (a logger installed with
 * ucache_set_logger()) and checked by substring.  Every parse is followed by ucache_config_free(), so
 * the ASan build (build/san/tests/test_config) also proves there are no leaks,
 * including on error paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ucache.h"
#include "ucache_test.h"

/* ------------------------------------------------------------ log capture */

/* Index of the first warning containing sub, or -1. */
static int find_log(const char *sub)
{
	int i;

	for (i = 0; i < ut_logs()->n && i < UT_LOG_MAX; i++)
		if (strstr(ut_logs()->msg[i], sub))
			return i;
	return -1;
}

static void assert_warned(const char *sub)
{
	int i = find_log(sub);

	if (i < 0) {
		for (i = 0; i < ut_logs()->n && i < UT_LOG_MAX; i++)
			print_message("  logged: %s\n", ut_logs()->msg[i]);
		fail_msg("no warning containing \"%s\"", sub);
	}
	assert_int_equal(ut_logs()->level[i], UCACHE_LOG_WARN);
}

/* Parse keyval and expect success with no warning at all. */
static void parse_ok(struct ucache_config *cfg, const char *keyval)
{
	char err[256] = "";
	int rc = ucache_config_parse(cfg, keyval, err, sizeof(err));

	if (rc)
		fail_msg("parse \"%s\": rc %d: %s", keyval, rc, err);
}

/* Parse keyval, expect -EINVAL, each of the substrings in the error, and a
 * config left initialised (owning nothing). */
static void parse_fails(const char *keyval, ...)
{
	struct ucache_config cfg;
	char err[256] = "";
	const char *sub;
	va_list ap;
	int rc = ucache_config_parse(&cfg, keyval, err, sizeof(err));

	if (rc != -EINVAL)
		fail_msg("parse \"%s\": rc %d, expected -EINVAL (err \"%s\")", keyval, rc, err);
	assert_null(strchr(err, '\n'));
	va_start(ap, keyval);
	while ((sub = va_arg(ap, const char *)))
		if (!strstr(err, sub))
			fail_msg("parse \"%s\": error \"%s\" lacks \"%s\"", keyval, err, sub);
	va_end(ap);
	assert_null(cfg.name);
	assert_null(cfg.store);
	assert_null(cfg.nodes);
	assert_null(cfg.udp);
	assert_null(cfg.sync);
	assert_null(cfg.udp_allow);
	assert_null(cfg.udp_secret_file);
	assert_null(cfg.redis);
	assert_null(cfg.redis_prefix);
	assert_null(cfg.redis_password_file);
	assert_int_equal(cfg.items, 0);
}

static void assert_defaults_after_items(const struct ucache_config *cfg, uint64_t items)
{
	assert_int_equal(cfg->items, items);
	assert_int_equal(cfg->blocks, items);
	assert_int_equal(cfg->blocksize, 65536);
	assert_int_equal(cfg->hashsize, 65536);
	assert_int_equal(cfg->keysize, 2048);
	assert_int_equal(cfg->hash, UCACHE_HASH_XXH3);
	assert_null(cfg->store);
	assert_null(cfg->nodes);
	assert_null(cfg->udp);
	assert_null(cfg->sync);
	assert_null(cfg->udp_allow);
	assert_null(cfg->udp_secret_file);
	assert_int_equal(cfg->store_sync, 0);
	assert_int_equal(cfg->math_initial, 0);
	assert_int_equal(cfg->sweep_on_full, 0);
	assert_int_equal(cfg->bitmap + cfg->store_delete + cfg->store_migrate + cfg->lastmod +
		cfg->ignore_full + cfg->purge_lru + cfg->lazy_expire + cfg->clear_on_full +
		cfg->no_expire, 0);
}

/* ------------------------------------------------------------- defaults */

static void test_init_defaults(void **state)
{
	struct ucache_config cfg;

	(void)state;
	memset(&cfg, 0xa5, sizeof(cfg));
	ucache_config_init(&cfg);
	assert_null(cfg.name);
	assert_defaults_after_items(&cfg, 0);
}

static void test_minimal(void **state)
{
	struct ucache_config cfg;

	(void)state;
	memset(&cfg, 0xa5, sizeof(cfg)); /* parse initialises cfg itself */
	parse_ok(&cfg, "name=mycache,items=100");
	assert_string_equal(cfg.name, "mycache");
	assert_defaults_after_items(&cfg, 100);
	assert_int_equal(ut_logs()->n, 0);
	ucache_config_free(&cfg);
	assert_null(cfg.name);
	assert_int_equal(cfg.blocksize, 65536);
	ucache_config_free(&cfg); /* freeing twice is harmless */
}

static void test_every_key(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=all,items=10,blocksize=4096,blocks=30,bitmap=1,hash=murmur2,"
		"hashsize=1024,keysize=250,store=/tmp/s.cache,store_sync=7,store_delete=1,"
		"store_migrate=1,nodes=10.0.0.1:3000;10.0.0.2:3000,udp=127.0.0.1:4000,"
		"sync=10.0.0.3:3031,lastmod=1,math_initial=-42,ignore_full=1,purge_lru=1,"
		"lazy_expire=1,sweep_on_full=5,clear_on_full=1,no_expire=1");
	assert_string_equal(cfg.name, "all");
	assert_int_equal(cfg.items, 10);
	assert_int_equal(cfg.blocksize, 4096);
	assert_int_equal(cfg.blocks, 30);
	assert_int_equal(cfg.hash, UCACHE_HASH_MURMUR2);
	assert_int_equal(cfg.hashsize, 1024);
	assert_int_equal(cfg.keysize, 250);
	assert_string_equal(cfg.store, "/tmp/s.cache");
	assert_int_equal(cfg.store_sync, 7);
	assert_string_equal(cfg.nodes, "10.0.0.1:3000;10.0.0.2:3000");
	assert_string_equal(cfg.udp, "127.0.0.1:4000");
	assert_string_equal(cfg.sync, "10.0.0.3:3031");
	assert_true(cfg.math_initial == -42);
	assert_int_equal(cfg.sweep_on_full, 5);
	assert_int_equal(cfg.bitmap + cfg.store_delete + cfg.store_migrate + cfg.lastmod +
		cfg.ignore_full + cfg.purge_lru + cfg.lazy_expire + cfg.clear_on_full +
		cfg.no_expire, 9);
	assert_int_equal(ut_logs()->n, 0);
	ucache_config_free(&cfg);
}

/* ---------------------------------------------------------------- aliases */

enum fkind { F_U64, F_STR, F_BOOL };

static const struct alias_case {
	const char *alias;
	const char *value;
	size_t off;
	enum fkind kind;
	uint64_t expect;
} alias_cases[] = {
#define OFF(f) offsetof(struct ucache_config, f)
	{ "items", "7", OFF(items), F_U64, 7 },
	{ "max_items", "7", OFF(items), F_U64, 7 },
	{ "maxitems", "7", OFF(items), F_U64, 7 },
	{ "blocksize", "512", OFF(blocksize), F_U64, 512 },
	{ "blocks", "90", OFF(blocks), F_U64, 90 },
	{ "hashsize", "77", OFF(hashsize), F_U64, 77 },
	{ "hash_size", "77", OFF(hashsize), F_U64, 77 },
	{ "keysize", "99", OFF(keysize), F_U64, 99 },
	{ "key_size", "99", OFF(keysize), F_U64, 99 },
	{ "store_sync", "3", OFF(store_sync), F_U64, 3 },
	{ "storesync", "3", OFF(store_sync), F_U64, 3 },
	{ "sweep_on_full", "60", OFF(sweep_on_full), F_U64, 60 },
	{ "store", "/var/c", OFF(store), F_STR, 0 },
	{ "nodes", "h:1;h:2", OFF(nodes), F_STR, 0 },
	{ "node", "h:1;h:2", OFF(nodes), F_STR, 0 },
	{ "udp", "h:3", OFF(udp), F_STR, 0 },
	{ "udp_servers", "h:3", OFF(udp), F_STR, 0 },
	{ "udp_server", "h:3", OFF(udp), F_STR, 0 },
	{ "udpservers", "h:3", OFF(udp), F_STR, 0 },
	{ "udpserver", "h:3", OFF(udp), F_STR, 0 },
	{ "sync", "h:4", OFF(sync), F_STR, 0 },
	{ "udp_allow", "10.0.0.0/8;::1", OFF(udp_allow), F_STR, 0 },
	{ "udp_secret_file", "/etc/s", OFF(udp_secret_file), F_STR, 0 },
	{ "bitmap", "1", OFF(bitmap), F_BOOL, 1 },
	{ "store_delete", "1", OFF(store_delete), F_BOOL, 1 },
	{ "storedelete", "1", OFF(store_delete), F_BOOL, 1 },
	{ "store_migrate", "1", OFF(store_migrate), F_BOOL, 1 },
	{ "lastmod", "1", OFF(lastmod), F_BOOL, 1 },
	{ "ignore_full", "1", OFF(ignore_full), F_BOOL, 1 },
	{ "purge_lru", "1", OFF(purge_lru), F_BOOL, 1 },
	{ "lru", "1", OFF(purge_lru), F_BOOL, 1 },
	{ "lazy_expire", "1", OFF(lazy_expire), F_BOOL, 1 },
	{ "lazy", "1", OFF(lazy_expire), F_BOOL, 1 },
	{ "clear_on_full", "1", OFF(clear_on_full), F_BOOL, 1 },
	{ "no_expire", "1", OFF(no_expire), F_BOOL, 1 },
#undef OFF
};

static void check_alias(const struct alias_case *c)
{
	struct ucache_config cfg;
	char kv[256];
	const char *base = c->off == offsetof(struct ucache_config, items) ? "" : "items=7,";
	const char *p;

	/* blocks must stay >= items: give blocks only with its own case */
	snprintf(kv, sizeof(kv), "name=a,%s%s=%s", base, c->alias, c->value);
	parse_ok(&cfg, kv);
	p = (const char *)&cfg + c->off;
	if (c->kind == F_U64)
		assert_int_equal(*(const uint64_t *)(const void *)p, c->expect);
	else if (c->kind == F_BOOL)
		assert_int_equal(*(const int *)(const void *)p, 1);
	else
		assert_string_equal(*(char *const *)(const void *)p, c->value);
	ucache_config_free(&cfg);
}

static void test_every_alias(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(alias_cases) / sizeof(alias_cases[0]); i++)
		check_alias(&alias_cases[i]);
	assert_int_equal(ut_logs()->n, 0);
}

static void test_hash_names(void **state)
{
	static const struct { const char *name; enum ucache_hash h; } hashes[] = {
		{ "djb33x", UCACHE_HASH_DJB33X },
		{ "murmur2", UCACHE_HASH_MURMUR2 },
		{ "xxh3", UCACHE_HASH_XXH3 },
	};
	struct ucache_config cfg;
	char kv[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		snprintf(kv, sizeof(kv), "name=h,items=2,hash=%s", hashes[i].name);
		parse_ok(&cfg, kv);
		assert_int_equal(cfg.hash, hashes[i].h);
		ucache_config_free(&cfg);
	}
}

static void test_math_initial(void **state)
{
	static const struct { const char *v; int64_t expect; } cases[] = {
		{ "0", 0 }, { "17", 17 }, { "+17", 17 }, { "-17", -17 },
		{ "9223372036854775807", INT64_MAX },
		{ "-9223372036854775808", INT64_MIN },
	};
	struct ucache_config cfg;
	char kv[96];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(kv, sizeof(kv), "name=m,items=2,math_initial=%s", cases[i].v);
		parse_ok(&cfg, kv);
		assert_true(cfg.math_initial == cases[i].expect);
		ucache_config_free(&cfg);
	}
}

static void test_large_numbers(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=n,items=4294967295,blocksize=1,store_sync=18446744073709551615,"
		"sweep_on_full=18446744073709551615,hashsize=4294967295,keysize=65534");
	assert_int_equal(cfg.items, UINT32_MAX);
	assert_int_equal(cfg.blocks, UINT32_MAX);
	assert_true(cfg.store_sync == UINT64_MAX);
	assert_true(cfg.sweep_on_full == UINT64_MAX);
	assert_int_equal(cfg.hashsize, UINT32_MAX);
	assert_int_equal(cfg.keysize, 65534);
	ucache_config_free(&cfg);
	/* exactly 2^48 bytes of blocks is allowed */
	parse_ok(&cfg, "name=n,items=2,blocksize=65536,blocks=4294967296");
	assert_true(cfg.blocks == UINT64_C(4294967296));
	ucache_config_free(&cfg);
}

/* --------------------------------------------------------------- booleans */

static const char *const bool_keys[] = {
	"bitmap", "store_delete", "storedelete", "store_migrate", "lastmod", "ignore_full",
	"purge_lru", "lru", "lazy_expire", "lazy", "clear_on_full", "no_expire",
};

static const char *canon_of(const char *key)
{
	if (!strcmp(key, "storedelete"))
		return "store_delete";
	if (!strcmp(key, "lru"))
		return "purge_lru";
	if (!strcmp(key, "lazy"))
		return "lazy_expire";
	return key;
}

static int bool_field(const struct ucache_config *cfg, const char *canon)
{
	static const struct { const char *name; size_t off; } map[] = {
		{ "bitmap", offsetof(struct ucache_config, bitmap) },
		{ "store_delete", offsetof(struct ucache_config, store_delete) },
		{ "store_migrate", offsetof(struct ucache_config, store_migrate) },
		{ "lastmod", offsetof(struct ucache_config, lastmod) },
		{ "ignore_full", offsetof(struct ucache_config, ignore_full) },
		{ "purge_lru", offsetof(struct ucache_config, purge_lru) },
		{ "lazy_expire", offsetof(struct ucache_config, lazy_expire) },
		{ "clear_on_full", offsetof(struct ucache_config, clear_on_full) },
		{ "no_expire", offsetof(struct ucache_config, no_expire) },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].name, canon))
			return *(const int *)(const void *)((const char *)cfg + map[i].off);
	fail_msg("no boolean field %s", canon);
	return -1;
}

/* Any value, even empty or "yes", enables the key silently. */
static void test_bool_presence(void **state)
{
	static const char *const values[] = { "1", "", "yes", "true", "on", "whatever" };
	struct ucache_config cfg;
	char kv[128];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(bool_keys) / sizeof(bool_keys[0]); i++) {
		for (j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
			snprintf(kv, sizeof(kv), "name=b,items=2,%s=%s", bool_keys[i], values[j]);
			parse_ok(&cfg, kv);
			assert_int_equal(bool_field(&cfg, canon_of(bool_keys[i])), 1);
			ucache_config_free(&cfg);
		}
	}
	assert_int_equal(ut_logs()->n, 0);
}

/* "=0/false/no/off" (any case) keeps the key enabled, as stock does, and warns. */
static void test_bool_false_warns(void **state)
{
	static const char *const values[] = { "0", "false", "FALSE", "no", "No", "off", "OFF" };
	struct ucache_config cfg;
	char kv[128], want[256];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(bool_keys) / sizeof(bool_keys[0]); i++) {
		for (j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
			ut_log_reset();
			snprintf(kv, sizeof(kv), "items=2,%s=%s,name=x", bool_keys[i], values[j]);
			parse_ok(&cfg, kv);
			assert_int_equal(bool_field(&cfg, canon_of(bool_keys[i])), 1);
			snprintf(want, sizeof(want), "cache \"x\": %s=%s still enables %s (as in "
				"stock uWSGI); remove the key to disable it", bool_keys[i], values[j],
				canon_of(bool_keys[i]));
			assert_int_equal(ut_logs()->n, 1);
			assert_string_equal(ut_logs()->msg[0], want);
			assert_int_equal(ut_logs()->level[0], UCACHE_LOG_WARN);
			ucache_config_free(&cfg);
		}
	}
}

/* A key with no '=' is ignored, as stock ignores it, with a warning. */
static void test_key_without_value(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=v,items=2,bitmap,blocksize");
	assert_int_equal(cfg.bitmap, 0);
	assert_int_equal(cfg.blocksize, 65536);
	assert_warned("cache \"v\": key \"bitmap\" without a value is ignored (as in stock "
		"uWSGI); write bitmap=1");
	assert_warned("key \"blocksize\" without a value is ignored");
	assert_warned("write blocksize=VALUE");
	ucache_config_free(&cfg);
}

/* ---------------------------------------------------------------- escapes */

static void test_escapes(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=a\\,b,items=2,store=/tmp/x\\=y\\\\z,nodes=n\\,1");
	assert_string_equal(cfg.name, "a,b");
	assert_string_equal(cfg.store, "/tmp/x=y\\z");
	assert_string_equal(cfg.nodes, "n,1");
	ucache_config_free(&cfg);

	/* only the first '=' splits; an escaped ordinary char is itself */
	parse_ok(&cfg, "n\\ame=c,it\\ems=3,store=/a=b=c");
	assert_string_equal(cfg.name, "c");
	assert_int_equal(cfg.items, 3);
	assert_string_equal(cfg.store, "/a=b=c");
	ucache_config_free(&cfg);

	/* a trailing lone backslash is dropped, as in stock */
	parse_ok(&cfg, "items=2,name=d\\");
	assert_string_equal(cfg.name, "d");
	ucache_config_free(&cfg);
}

static void test_escaped_equal_in_key(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=e,items=2,items\\=3=4");
	assert_int_equal(cfg.items, 2);
	assert_warned("cache \"e\": unknown key \"items=3\" ignored");
	ucache_config_free(&cfg);
}

static void test_empty_items_and_lists(void **state)
{
	struct ucache_config cfg;

	(void)state;
	/* empty items are skipped silently, empty lists mean "none" */
	parse_ok(&cfg, ",name=f,,items=2,nodes=,udp=,sync=,udp_allow=,");
	assert_string_equal(cfg.name, "f");
	assert_null(cfg.nodes);
	assert_null(cfg.udp);
	assert_null(cfg.sync);
	assert_null(cfg.udp_allow);
	assert_int_equal(ut_logs()->n, 0);
	ucache_config_free(&cfg);
}

/* --------------------------------------------------------------- warnings */

static void test_unknown_key(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "foo=bar,name=x,items=2,Items=3, blocks=9,=z");
	assert_int_equal(cfg.items, 2);
	assert_int_equal(cfg.blocks, 2);
	assert_warned("cache \"x\": unknown key \"foo\" ignored");
	assert_warned("cache \"x\": unknown key \"Items\" ignored");
	assert_warned("cache \"x\": unknown key \" blocks\" ignored");
	assert_warned("cache \"x\": unknown key \"\" ignored");
	assert_int_equal(ut_logs()->n, 4);
	ucache_config_free(&cfg);
}

static void test_expires_ignored(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=x,items=2,expires=300");
	assert_warned("cache \"x\": key \"expires\" is ignored (as in stock uWSGI)");
	assert_int_equal(ut_logs()->n, 1);
	ucache_config_free(&cfg);
}

static void test_override_last_wins(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=one,max_items=5,items=20,store=/a,store=/b,name=two,lru=1,purge_lru=1");
	assert_string_equal(cfg.name, "two");
	assert_int_equal(cfg.items, 20);
	assert_string_equal(cfg.store, "/b");
	assert_warned("cache \"two\": items=20 overrides an earlier items");
	assert_warned("cache \"two\": store=/b overrides an earlier store");
	assert_warned("cache \"two\": name=two overrides an earlier name");
	assert_warned("cache \"two\": purge_lru=1 overrides an earlier purge_lru");
	assert_int_equal(ut_logs()->n, 4);
	ucache_config_free(&cfg);
}

static void test_items_one_warns(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=tiny,items=1");
	assert_int_equal(cfg.items, 1);
	assert_warned("cache \"tiny\": items=1 leaves no usable item");
	ucache_config_free(&cfg);
}

/* ----------------------------------------------------------------- errors */

static void test_bad_numbers(void **state)
{
	static const char *const keys[] = {
		"items", "max_items", "maxitems", "blocksize", "blocks", "hashsize",
		"hash_size", "keysize", "key_size", "store_sync", "storesync", "sweep_on_full",
	};
	static const char *const values[] = { "abc", "", "10x", "-1", "+1", " 1", "1 ", "0x10", "1.5" };
	char kv[128], val[32];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		for (j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
			snprintf(kv, sizeof(kv), "name=mycache,items=5,%s=%s", keys[i], values[j]);
			snprintf(val, sizeof(val), "\"%s\"", values[j]);
			parse_fails(kv, "cache \"mycache\": invalid value ", val, " for key \"",
				keys[i], "(expected a number)", NULL);
		}
		snprintf(kv, sizeof(kv), "name=mycache,items=5,%s=18446744073709551616", keys[i]);
		parse_fails(kv, "cache \"mycache\": invalid value \"18446744073709551616\" for key",
			keys[i], "(too large)", NULL);
	}
	parse_fails("name=mycache,items=abc", "cache \"mycache\": invalid value \"abc\" for key "
		"\"items\" (expected a number)", NULL);
}

static void test_bad_math_initial(void **state)
{
	(void)state;
	parse_fails("name=m,items=2,math_initial=abc",
		"cache \"m\": invalid value \"abc\" for key \"math_initial\" (expected a signed number)",
		NULL);
	parse_fails("name=m,items=2,math_initial=", "value \"\" for key \"math_initial\"", NULL);
	parse_fails("name=m,items=2,math_initial=-", "value \"-\" for key \"math_initial\"", NULL);
	parse_fails("name=m,items=2,math_initial=1e3", "value \"1e3\"", NULL);
	parse_fails("name=m,items=2,math_initial=9223372036854775808",
		"invalid value \"9223372036854775808\" for key \"math_initial\" "
		"(out of the signed 64-bit range)", NULL);
	parse_fails("name=m,items=2,math_initial=-9223372036854775809",
		"\"-9223372036854775809\"", "out of the signed 64-bit range", NULL);
}

static void test_bad_strings(void **state)
{
	(void)state;
	parse_fails("name=h,items=2,hash=sha1", "cache \"h\": invalid value \"sha1\" for key "
		"\"hash\" (expected djb33x, murmur2 or xxh3)", NULL);
	parse_fails("name=h,items=2,hash=DJB33X", "invalid value \"DJB33X\" for key \"hash\"", NULL);
	parse_fails("name=h,items=2,hash=", "invalid value \"\" for key \"hash\"", NULL);
	parse_fails("name=h,items=2,store=", "cache \"h\": invalid value \"\" for key \"store\" "
		"(expected a file name)", NULL);
	parse_fails("name=h,items=2,udp_secret_file=", "cache \"h\": invalid value \"\" for key "
		"\"udp_secret_file\" (expected a file name)", NULL);
	parse_fails("name=,items=2", "cache \"?\": invalid value \"\" for key \"name\" "
		"(expected a cache name)", NULL);
	parse_fails("name=a,items=2,name=", "invalid value \"\" for key \"name\"", NULL);
}

static void test_missing_required(void **state)
{
	(void)state;
	parse_fails("items=10", "cache \"?\": missing required key \"name\"", NULL);
	parse_fails("name,items=10", "cache \"?\": missing required key \"name\"", NULL);
	parse_fails("", "cache \"?\": missing required key \"name\"", NULL);
	parse_fails(NULL, "cache \"?\": missing required key \"name\"", NULL);
	parse_fails("name=x", "cache \"x\": missing required key \"items\"", NULL);
	parse_fails("name=x,blocks=10,items", "cache \"x\": missing required key \"items\"", NULL);
	/* the name is found even when an error comes before it */
	parse_fails("items=q,name=late", "cache \"late\": invalid value \"q\" for key \"items\"",
		NULL);
	parse_fails("items=q", "cache \"?\": invalid value \"q\" for key \"items\"", NULL);
}

static void test_bad_sizes(void **state)
{
	(void)state;
	parse_fails("name=z,items=0",
		"cache \"z\": invalid value \"0\" for key \"items\" (must be at least 1)", NULL);
	parse_fails("name=z,items=4294967296",
		"invalid value \"4294967296\" for key \"items\" (at most 4294967295)", NULL);
	parse_fails("name=z,items=4,blocksize=0",
		"cache \"z\": invalid value \"0\" for key \"blocksize\" (must be at least 1)", NULL);
	parse_fails("name=z,items=4,blocks=0",
		"cache \"z\": invalid value \"0\" for key \"blocks\" (must be at least 1)", NULL);
	parse_fails("name=z,items=10,blocks=5",
		"cache \"z\": invalid value \"5\" for key \"blocks\" (must be >= items, 10)", NULL);
	parse_fails("name=z,items=4,hashsize=0",
		"cache \"z\": invalid value \"0\" for key \"hashsize\" (must be at least 1)", NULL);
	parse_fails("name=z,items=4,hash_size=4294967296",
		"invalid value \"4294967296\" for key \"hashsize\" (at most 4294967295)", NULL);
	parse_fails("name=z,items=4,keysize=0",
		"cache \"z\": invalid value \"0\" for key \"keysize\" (must be 1..65534)", NULL);
	parse_fails("name=z,items=4,key_size=65535",
		"cache \"z\": invalid value \"65535\" for key \"keysize\" (must be 1..65534)", NULL);
	parse_fails("name=z,items=4,blocksize=65536,blocks=4294967297",
		"cache \"z\": blocksize 65536 x blocks 4294967297 exceeds the 2^48-byte", NULL);
	parse_fails("name=z,items=4,blocksize=18446744073709551615,blocks=4",
		"cache \"z\": blocksize 18446744073709551615 x blocks 4 exceeds", NULL);
}

/* The error buffer may be NULL or tiny; the message is truncated, not overrun. */
static void test_err_buffer(void **state)
{
	struct ucache_config cfg;
	char err[8];

	(void)state;
	assert_int_equal(ucache_config_parse(&cfg, "name=x,items=abc", NULL, 0), -EINVAL);
	assert_int_equal(ucache_config_parse(&cfg, "name=x,items=abc", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cache \"");
	assert_int_equal(ucache_config_validate(&cfg, NULL, 0), -EINVAL);
}

/* Errors after strings were copied must release them (checked by ASan). */
static void test_error_frees_strings(void **state)
{
	(void)state;
	parse_fails("name=x,store=/s,nodes=a,udp=b,sync=c,udp_allow=d,udp_secret_file=e,items=2,blocks=1",
		"invalid value \"1\" for key \"blocks\"", NULL);
	parse_fails("name=x,store=/s,nodes=a,udp=b,sync=c,items=2,hash=nope", "\"nope\"", NULL);
	parse_fails("name=x,items=2,redis=h:1,nodes=127.0.0.1:4000",
		"redis= cannot be combined with nodes=, udp= or sync=", NULL);
	parse_fails("name=x,items=2,sync=127.0.0.1:3031,redis=h:1",
		"redis= cannot be combined with nodes=, udp= or sync=", NULL);
	parse_fails("name=x,items=2,udp=127.0.0.1:4000,redis=h:1",
		"redis= cannot be combined with nodes=, udp= or sync=", NULL);
	parse_fails("name=x,redis=h:1,redis_prefix=p,redis_password_file=/f,items=2,blocks=1",
		"invalid value \"1\" for key \"blocks\"", NULL);
}

/* ----------------------------------------------------------------- legacy */

static void test_legacy(void **state)
{
	struct ucache_config cfg;
	char err[256] = "";

	(void)state;
	assert_int_equal(ucache_config_legacy(&cfg, 1000, 0, NULL, 0, 0, err, sizeof(err)), 0);
	assert_string_equal(cfg.name, "default");
	assert_defaults_after_items(&cfg, 1000);
	ucache_config_free(&cfg);

	assert_int_equal(ucache_config_legacy(&cfg, 50, 1024, "/tmp/legacy.cache", 9, 7,
		err, sizeof(err)), 0);
	assert_string_equal(cfg.name, "default");
	assert_int_equal(cfg.items, 50);
	assert_int_equal(cfg.blocks, 50);
	assert_int_equal(cfg.blocksize, 1024);
	assert_string_equal(cfg.store, "/tmp/legacy.cache");
	assert_int_equal(cfg.store_sync, 9);
	assert_int_equal(cfg.lastmod, 1);
	assert_int_equal(cfg.bitmap, 0);
	ucache_config_free(&cfg);

	assert_int_equal(ucache_config_legacy(&cfg, 5, 0, "", 0, 0, err, sizeof(err)), 0);
	assert_null(cfg.store);
	ucache_config_free(&cfg);
	assert_int_equal(ut_logs()->n, 0);
}

static void test_legacy_errors(void **state)
{
	struct ucache_config cfg;
	char err[256] = "";

	(void)state;
	assert_int_equal(ucache_config_legacy(&cfg, 0, 0, "/s", 0, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cache \"default\": invalid value \"0\" for key \"items\""));
	assert_null(cfg.name);
	assert_null(cfg.store);
	assert_int_equal(ucache_config_legacy(&cfg, 10, UINT64_MAX, NULL, 0, 0, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "exceeds the 2^48-byte"));
	assert_null(cfg.name);
	assert_int_equal(ucache_config_legacy(&cfg, 1, 0, NULL, 0, 0, err, sizeof(err)), 0);
	assert_warned("cache \"default\": items=1 leaves no usable item");
	ucache_config_free(&cfg);
}

/* ------------------------------------------------------------- validation */

static void test_validate_hand_built(void **state)
{
	struct ucache_config cfg;
	char name[] = "hand";
	char err[256] = "";

	(void)state;
	ucache_config_init(&cfg);
	assert_int_equal(ucache_config_validate(&cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cache \"?\": missing required key \"name\"");
	cfg.name = name;
	cfg.items = 10;
	assert_int_equal(ucache_config_validate(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid value \"0\" for key \"blocks\""));
	cfg.blocks = 10;
	assert_int_equal(ucache_config_validate(&cfg, err, sizeof(err)), 0);
	cfg.hash = (enum ucache_hash)7;
	assert_int_equal(ucache_config_validate(&cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cache \"hand\": unknown hash 7");
	cfg.hash = UCACHE_HASH_XXH3;
	cfg.name = name + 4; /* "" */
	assert_int_equal(ucache_config_validate(&cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cache \"?\": missing required key \"name\"");
}


/* ----------------------------------------------------------- near cache */

static void test_redis_keys(void **state)
{
	struct ucache_config cfg;

	(void)state;
	parse_ok(&cfg, "name=r,items=10");
	assert_null(cfg.redis);
	assert_null(cfg.redis_prefix);
	assert_null(cfg.redis_password_file);
	assert_int_equal(cfg.redis_timeout, 200);
	assert_int_equal(cfg.redis_keepalive, 1000);
	assert_int_equal(cfg.redis_offline, UCACHE_REDIS_OFFLINE_MISS);
	ucache_config_free(&cfg);
	parse_ok(&cfg, "name=r,items=10,redis=127.0.0.1:6379,redis_prefix=app:,redis_timeout=50,"
		"redis_password_file=/etc/pw,redis_offline=stale,redis_keepalive=250");
	assert_int_equal(cfg.redis_keepalive, 250);
	assert_string_equal(cfg.redis, "127.0.0.1:6379");
	assert_string_equal(cfg.redis_prefix, "app:");
	assert_string_equal(cfg.redis_password_file, "/etc/pw");
	assert_int_equal(cfg.redis_timeout, 50);
	assert_int_equal(cfg.redis_offline, UCACHE_REDIS_OFFLINE_STALE);
	assert_int_equal(ut_logs()->n, 0);
	ucache_config_free(&cfg);
	assert_null(cfg.redis);
	parse_ok(&cfg, "name=r,items=10,redis=unix:/run/redis.sock,redis_offline=miss");
	assert_string_equal(cfg.redis, "unix:/run/redis.sock");
	assert_int_equal(cfg.redis_offline, UCACHE_REDIS_OFFLINE_MISS);
	ucache_config_free(&cfg);
}

static void test_redis_bad_values(void **state)
{
	(void)state;
	parse_fails("name=r,items=2,redis=localhost", "cache \"r\": key \"redis\": invalid Redis "
		"address \"localhost\" (expected HOST:PORT, unix:/PATH or redis://...)", NULL);
	parse_fails("name=r,items=2,redis=h:0", "the port must be 1..65535", NULL);
	parse_fails("name=r,items=2,redis=h:65536", "the port must be 1..65535", NULL);
	parse_fails("name=r,items=2,redis=h:6x", "the port must be 1..65535", NULL);
	parse_fails("name=r,items=2,redis=:6379", "missing host", NULL);
	parse_fails("name=r,items=2,redis=unix:rel", "unix: needs an absolute path", NULL);
	parse_fails("name=r,items=2,redis=http://h:1", "the only URL scheme is redis://", NULL);
	parse_fails("name=r,items=2,redis=redis://h/x", "the database must be a number", NULL);
	parse_fails("name=r,items=2,redis=::1:6379", "IPv6 address needs brackets", NULL);
	parse_fails("name=r,items=2,redis=h:1,redis_timeout=0",
		"invalid value \"0\" for key \"redis_timeout\" (milliseconds, 1..60000)", NULL);
	parse_fails("name=r,items=2,redis=h:1,redis_timeout=60001", "redis_timeout", NULL);
	parse_fails("name=r,items=2,redis=h:1,redis_timeout=-1",
		"invalid value \"-1\" for key \"redis_timeout\" (expected a number)", NULL);
	parse_fails("name=r,items=2,redis=h:1,redis_offline=serve",
		"invalid value \"serve\" for key \"redis_offline\" (expected miss or stale)", NULL);
	parse_fails("name=r,items=2,redis=h:1,redis_password_file=",
		"invalid value \"\" for key \"redis_password_file\"", NULL);
	parse_fails("name=r,items=2,redis_prefix=p:", "cache \"r\": redis_prefix, redis_timeout, "
		"redis_password_file, redis_offline and redis_keepalive need redis=ADDR", NULL);
	parse_fails("name=r,items=2,redis_keepalive=500", "need redis=ADDR", NULL);
	parse_fails("name=r,items=2,redis=h:1,redis_keepalive=99",
		"invalid value \"99\" for key \"redis_keepalive\" (milliseconds, 100..60000)", NULL);
	parse_fails("name=r,items=2,redis=h:1,redis_keepalive=60001", "redis_keepalive", NULL);
	parse_fails("name=r,items=2,redis_offline=stale", "need redis=ADDR", NULL);
}

/* The prefix of keyval's cache, compared with want. */
static void prefix_is(const char *keyval, const char *want)
{
	struct ucache_config cfg;
	char *got;

	parse_ok(&cfg, keyval);
	got = ucache_redis_prefix(&cfg);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	ucache_config_free(&cfg);
}

/* Default prefixes never start with one another (issue 19: clear on cache
 * "a" wiped cache "a:b"); a given prefix always ends with ':' (app:s wiped
 * app:s2:). */
static void test_redis_prefix(void **state)
{
	(void)state;
	prefix_is("name=r,items=2,redis=h:1", "ucache:r:");
	prefix_is("name=a:b,items=2,redis=h:1", "ucache:a\\:b:");
	prefix_is("name=r,items=2,redis=h:1,redis_prefix=app:s", "app:s:");
	prefix_is("name=r,items=2,redis=h:1,redis_prefix=app:s2:", "app:s2:");
}

/* clash(a, b): ucache_config_redis_clash's result for two caches. */
static int clash(const char *a, const char *b, char *err, size_t errlen)
{
	struct ucache_config x, y;
	int rc;

	parse_ok(&x, a);
	parse_ok(&y, b);
	rc = ucache_config_redis_clash(&x, &y, err, errlen);
	ucache_config_free(&x);
	ucache_config_free(&y);
	return rc;
}

static void test_bug_redis_prefixes_overlap_between_caches(void **state)
{
	char err[512] = "";

	(void)state;
	assert_int_equal(clash("name=a,items=2,redis=127.0.0.1:6379,redis_prefix=app:",
		"name=b,items=2,redis=127.0.0.1:6379,redis_prefix=app:s:", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "caches \"a\" (Redis prefix \"app:\") and \"b\" (Redis "
		"prefix \"app:s:\") share Redis 127.0.0.1:6379"));
	assert_null(strchr(err, '\n'));
	/* the same prefix twice, the password never shown */
	assert_int_equal(clash("name=a,items=2,redis=redis://u:s3cret@h:1/2,redis_prefix=p",
		"name=b,items=2,redis=redis://u:s3cret@H:1/2,redis_prefix=p:", err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "s3cret"));
	/* cache names that looked nested, prefixes that were prefixes */
	assert_int_equal(clash("name=a,items=2,redis=h:1", "name=a:b,items=2,redis=h:1", err,
		sizeof(err)), 0);
	assert_int_equal(clash("name=a,items=2,redis=h:1,redis_prefix=app:s",
		"name=b,items=2,redis=h:1,redis_prefix=app:s2:", err, sizeof(err)), 0);
	/* another server, another db, or no Redis at all: no clash */
	assert_int_equal(clash("name=a,items=2,redis=h:1,redis_prefix=p:",
		"name=b,items=2,redis=h:2,redis_prefix=p:", err, sizeof(err)), 0);
	assert_int_equal(clash("name=a,items=2,redis=redis://h:1/0,redis_prefix=p:",
		"name=b,items=2,redis=redis://h:1/1,redis_prefix=p:", err, sizeof(err)), 0);
	assert_int_equal(clash("name=a,items=2,redis=unix:/r.sock,redis_prefix=p:",
		"name=b,items=2,redis=unix:/r.sock,redis_prefix=p:x:", err, sizeof(err)), -EINVAL);
	assert_int_equal(clash("name=a,items=2", "name=b,items=2", err, sizeof(err)), 0);
}

/* A password in a redis:// URL never appears in a message. */
static void test_redis_password_not_shown(void **state)
{
	struct ucache_config cfg;
	char err[256] = "";

	(void)state;
	assert_int_equal(ucache_config_parse(&cfg, "name=r,items=2,redis=redis://u:s3cret@h:0",
		err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "s3cret"));
	assert_non_null(strstr(err, "redis://***@h:0"));
	parse_ok(&cfg, "name=r,items=2,redis=redis://u:s3cret@h:1,redis=redis://u:s3cret@h:2");
	assert_warned("redis=... overrides an earlier redis");
	assert_int_equal(find_log("s3cret"), -1);
	ucache_config_free(&cfg);
}

static void test_redis_addr_forms(void **state)
{
	struct ucache_redis_addr a;
	char err[256], show[400];

	(void)state;
	assert_int_equal(ucache_redis_addr_parse("10.0.0.1:7000", &a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "10.0.0.1");
	assert_int_equal(a.port, 7000);
	assert_string_equal(a.path, "");
	assert_int_equal(a.db, 0);
	assert_int_equal(ucache_redis_addr_parse("[::1]:7001", &a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "::1");
	assert_int_equal(a.port, 7001);
	assert_string_equal(ucache_redis_addr_show(&a, show, sizeof(show)), "[::1]:7001 db 0");
	assert_int_equal(ucache_redis_addr_parse("unix:/tmp/r.sock", &a, err, sizeof(err)), 0);
	assert_string_equal(a.path, "/tmp/r.sock");
	assert_string_equal(ucache_redis_addr_show(&a, show, sizeof(show)), "unix:/tmp/r.sock");
	assert_int_equal(ucache_redis_addr_parse("redis://h", &a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "h");
	assert_int_equal(a.port, 6379);
	assert_int_equal(ucache_redis_addr_parse("redis://bob:p@ss:w@rd@h.example:6380/3", &a,
		err, sizeof(err)), 0);
	assert_string_equal(a.user, "bob");
	assert_string_equal(a.password, "p@ss:w@rd");
	assert_string_equal(a.host, "h.example");
	assert_int_equal(a.port, 6380);
	assert_int_equal(a.db, 3);
	assert_string_equal(ucache_redis_addr_show(&a, show, sizeof(show)), "h.example:6380 db 3");
	assert_int_equal(ucache_redis_addr_parse("redis://:pw@h/0", &a, err, sizeof(err)), 0);
	assert_string_equal(a.user, "");
	assert_string_equal(a.password, "pw");
	assert_int_equal(ucache_redis_addr_parse("", &a, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "invalid Redis address \"\" (empty)");
	assert_int_equal(ucache_redis_addr_parse(NULL, &a, err, sizeof(err)), -EINVAL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, ut_setup_real_clock, ut_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_init_defaults),
		T(test_minimal),
		T(test_every_key),
		T(test_every_alias),
		T(test_hash_names),
		T(test_math_initial),
		T(test_large_numbers),
		T(test_bool_presence),
		T(test_bool_false_warns),
		T(test_key_without_value),
		T(test_escapes),
		T(test_escaped_equal_in_key),
		T(test_empty_items_and_lists),
		T(test_unknown_key),
		T(test_expires_ignored),
		T(test_override_last_wins),
		T(test_items_one_warns),
		T(test_bad_numbers),
		T(test_bad_math_initial),
		T(test_bad_strings),
		T(test_missing_required),
		T(test_bad_sizes),
		T(test_err_buffer),
		T(test_error_frees_strings),
		T(test_legacy),
		T(test_legacy_errors),
		T(test_validate_hand_built),
		T(test_redis_keys),
		T(test_redis_bad_values),
		T(test_redis_prefix),
		T(test_bug_redis_prefixes_overlap_between_caches),
		T(test_redis_password_not_shown),
		T(test_redis_addr_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
