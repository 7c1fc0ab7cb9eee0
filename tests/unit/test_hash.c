/*
 * test_hash.c - hash functions against independently computed vectors
 * (a Python transcription of each definition), hash-name parsing, and the
 * item checksum's sensitivity to key and value.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <xxhash.h>

#include "hash.h"

static void djb33x_vectors(void **state)
{
	(void)state;
	assert_int_equal(uc_hash_djb33x("hello", 5), 0x0a9cede7u);
	assert_int_equal(uc_hash_djb33x("foobar1", 7), 0x660566e3u);
	assert_int_equal(uc_hash_djb33x("\xff\x80" "abc", 5), 0x07e6f47au); /* signed-char bytes, like stock */
	assert_int_equal(uc_hash_djb33x("", 0), 5381u);
}

static void murmur2_vectors(void **state)
{
	(void)state;
	assert_int_equal(uc_hash_murmur2("hello", 5), 0xe56129cbu);
	assert_int_equal(uc_hash_murmur2("foobar1", 7), 0x4588b36fu);
	assert_int_equal(uc_hash_murmur2("\xff\x80" "abc", 5), 0x55ce73f0u);
	assert_int_equal(uc_hash_murmur2("", 0), 0u);
}

static void xxh3_is_libxxhash(void **state)
{
	(void)state;
	assert_int_equal(uc_hash_xxh3("hello", 5), (uint32_t)0x9555e8555c62dcfdull);
	assert_int_equal(uc_hash_xxh3("hello", 5), (uint32_t)XXH3_64bits("hello", 5));
}

static void hash_names_round_trip(void **state)
{
	enum ucache_hash h;

	(void)state;
	assert_int_equal(ucache_hash_parse("djb33x", &h), 0);
	assert_int_equal(h, UCACHE_HASH_DJB33X);
	assert_int_equal(ucache_hash_parse("murmur2", &h), 0);
	assert_int_equal(h, UCACHE_HASH_MURMUR2);
	assert_int_equal(ucache_hash_parse("xxh3", &h), 0);
	assert_int_equal(h, UCACHE_HASH_XXH3);
	assert_int_equal(ucache_hash_parse("md5", &h), -EINVAL);
	assert_int_equal(ucache_hash_parse(NULL, &h), -EINVAL);
	assert_string_equal(ucache_hash_name(UCACHE_HASH_MURMUR2), "murmur2");
	assert_ptr_equal(uc_hash_get(UCACHE_HASH_XXH3), uc_hash_xxh3);
}

static void csum_covers_key_value_and_expiry(void **state)
{
	uint32_t base = uc_item_csum(0x6b6579, 3, "value", 5, 1700000000, 7);

	(void)state;
	assert_int_not_equal(base, uc_item_csum(0x6b6578, 3, "value", 5, 1700000000, 7));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, "valuf", 5, 1700000000, 7));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, "valu", 4, 1700000000, 7));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, "value", 5, 1700000001, 7));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, "value", 5, 0, 7));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, "value", 5, 1700000000, 8));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 4, "value", 5, 1700000000, 7));
	assert_int_equal(base, uc_item_csum(0x6b6579, 3, "value", 5, 1700000000, 7));
}

/* Without a store the value bytes are left out (write.c never leaves a torn
 * value reachable): the checksum still covers key, length, expiry and
 * where the value lives. */
static void csum_without_value_covers_metadata(void **state)
{
	uint32_t base = uc_item_csum(0x6b6579, 3, NULL, 5, 1700000000, 7);

	(void)state;
	assert_int_not_equal(base, uc_item_csum(0x6b6578, 3, NULL, 5, 1700000000, 7));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, NULL, 4, 1700000000, 7));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, NULL, 5, 1700000001, 7));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, NULL, 5, 1700000000, 9));
	assert_int_not_equal(base, uc_item_csum(0x6b6579, 3, "value", 5, 1700000000, 7));
	assert_int_equal(base, uc_item_csum(0x6b6579, 3, NULL, 5, 1700000000, 7));
}

static void mix_spreads_djb33x_suffixes(void **state)
{
	/* keys differing in their first byte only must not share a bucket of 256 */
	int seen[256] = { 0 }, i, distinct = 0;
	char k[8] = "xkey-01";

	(void)state;
	for (i = 0; i < 64; i++) {
		k[0] = (char)('0' + i);
		seen[uc_hash_mix(uc_hash_djb33x(k, 7)) & 255]++;
	}
	for (i = 0; i < 256; i++)
		distinct += seen[i] > 0;
	assert_true(distinct > 48);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(djb33x_vectors),
		cmocka_unit_test(murmur2_vectors),
		cmocka_unit_test(xxh3_is_libxxhash),
		cmocka_unit_test(hash_names_round_trip),
		cmocka_unit_test(csum_covers_key_value_and_expiry),
		cmocka_unit_test(csum_without_value_covers_metadata),
		cmocka_unit_test(mix_spreads_djb33x_suffixes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
