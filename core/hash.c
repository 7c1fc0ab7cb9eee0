/*
 * hash.c - key hashes and item checksums.
 *
 * djb33x is uWSGI 2.0.21's definition (bytes taken as signed char, as stock
 * does on x86).  murmur2 is canonical MurmurHash2 as in nginx's
 * ngx_murmur_hash2; stock's copy xors the key's first bytes where it means
 * its last ones, which changes only bucket placement, never a result, so we
 * don't copy it.  xxh3 comes from libxxhash and is the fastest of the three
 * on keys longer than a few bytes.  Hash values never leave the process.  The index
 * never uses the raw hash for bucket selection: see uc_hash_mix().
 * Stateless and thread-safe.
 */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "hash.h"

uint32_t uc_hash_djb33x(const void *key, size_t len)
{
	const signed char *p = key; /* stock hashes `char`, signed on x86 */
	uint32_t h = 5381;
	size_t i = 0;

	for (; i + 4 <= len; i += 4) { /* unrolled: the chain is serial anyway */
		h = (h * 33) ^ (uint32_t)(int32_t)p[i];
		h = (h * 33) ^ (uint32_t)(int32_t)p[i + 1];
		h = (h * 33) ^ (uint32_t)(int32_t)p[i + 2];
		h = (h * 33) ^ (uint32_t)(int32_t)p[i + 3];
	}
	for (; i < len; i++)
		h = (h * 33) ^ (uint32_t)(int32_t)p[i];
	return h;
}

uint32_t uc_hash_murmur2(const void *key, size_t len)
{
	const uint8_t *p = key;
	const uint32_t m = 0x5bd1e995;
	uint32_t h = (uint32_t)len;

	for (; len >= 4; len -= 4, p += 4) {
		uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		k *= m;
		k ^= k >> 24;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len) {
	case 3:
		h ^= (uint32_t)p[2] << 16;
		/* fallthrough */
	case 2:
		h ^= (uint32_t)p[1] << 8;
		/* fallthrough */
	case 1:
		h ^= p[0];
		h *= m;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return h;
}

uint32_t uc_hash_xxh3(const void *key, size_t len)
{
	return (uint32_t)XXH3_64bits(key, len);
}

uc_hash_fn uc_hash_get(enum ucache_hash hash)
{
	switch (hash) {
	case UCACHE_HASH_MURMUR2:
		return uc_hash_murmur2;
	case UCACHE_HASH_XXH3:
		return uc_hash_xxh3;
	case UCACHE_HASH_DJB33X:
	default:
		return uc_hash_djb33x;
	}
}

uint32_t uc_item_csum(uint32_t keyhash, size_t klen, const void *val, size_t vlen, uint64_t expires,
		      uint32_t valref)
{
	/* the expiry, lengths and storage reference are covered too: a torn
	 * update must not pair a new value with the old expiry unnoticed.
	 * The key enters through its index hash, which the rebuild checks
	 * against the key bytes anyway: hashing the key again cost ~50
	 * instructions per write (callgrind). */
	uint64_t h = ((uint64_t)keyhash << 32 | (uint32_t)klen) ^ (expires * 0x9e3779b97f4a7c15ull) ^
		     (((uint64_t)vlen << 32 | valref) * 0xc2b2ae3d27d4eb4full);

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	/* Without a store, a value is never torn where a reader or a rebuild
	 * can reach it (write.c copies in place only under UC_SLOT_DIRTY), so
	 * hashing it would only double the cost of a 64 KiB write (138k
	 * instructions against 66k for the copy, bench/BOUNDS.md). */
	if (val)
		h = XXH3_64bits_withSeed(val, vlen, h);
	return (uint32_t)(h ^ (h >> 32));
}

static const char *const hash_names[] = {
	[UCACHE_HASH_DJB33X] = "djb33x",
	[UCACHE_HASH_MURMUR2] = "murmur2",
	[UCACHE_HASH_XXH3] = "xxh3",
};

int ucache_hash_parse(const char *name, enum ucache_hash *out)
{
	size_t i;

	for (i = 0; i < sizeof(hash_names) / sizeof(hash_names[0]); i++) {
		if (name && !strcmp(name, hash_names[i])) {
			*out = (enum ucache_hash)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *ucache_hash_name(enum ucache_hash hash)
{
	if ((unsigned)hash < sizeof(hash_names) / sizeof(hash_names[0]))
		return hash_names[hash];
	return "unknown";
}
