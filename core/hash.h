/*
 * hash.h - the key hash functions an index can use (djb33x and murmur2 with
 * the stock uWSGI definitions, xxh3 from libxxhash), and the checksum that
 * protects every stored item.
 */
#ifndef UCACHE_HASH_H
#define UCACHE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include "ucache.h"

typedef uint32_t (*uc_hash_fn)(const void *key, size_t len);

/* The function for a configured algorithm (never NULL for a valid enum). */
uc_hash_fn uc_hash_get(enum ucache_hash hash);

uint32_t uc_hash_djb33x(const void *key, size_t len);
uint32_t uc_hash_murmur2(const void *key, size_t len);
uint32_t uc_hash_xxh3(const void *key, size_t len);

/* Spread a 32-bit hash so its low bits are usable as a bucket index even for
 * djb33x, whose low bits cluster on keys that share a suffix. */
static inline uint32_t uc_hash_mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Integrity checksum of one item: its key's index hash and length, value
 * length, expiry and where the value lives (valref), plus the value bytes
 * when val is not NULL (caches with a store: a machine crash can persist a
 * slot without its value). */
uint32_t uc_item_csum(uint32_t keyhash, size_t klen, const void *val, size_t vlen, uint64_t expires,
		      uint32_t valref);

#endif
