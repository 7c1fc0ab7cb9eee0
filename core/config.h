/*
 * config.h - limits enforced by ucache_config_validate() (core/config.c).
 *
 * The parser and validator themselves are public (include/ucache.h); this
 * header only exports the bounds, so that the cache module can rely on them
 * when it sizes its shared mapping: a config that passed validation never
 * makes blocksize * blocks, or a 32-bit slot/bucket index, overflow.
 */
#ifndef UCACHE_CONFIG_H
#define UCACHE_CONFIG_H

#include <stdint.h>

/* Stock defaults (uWSGI 2.0.21 uwsgi_cache_create). */
#define UC_CONFIG_DEFAULT_BLOCKSIZE 65536
#define UC_CONFIG_DEFAULT_HASHSIZE 65536
#define UC_CONFIG_DEFAULT_KEYSIZE 2048

/* Largest items / hashsize: slot and bucket numbers fit in a uint32_t.
 * Stock took any uint64, but 2^32 stock items would need 8 TiB of key
 * slots alone, so no working configuration goes near this. */
#define UC_CONFIG_ITEMS_MAX UINT32_MAX
#define UC_CONFIG_HASHSIZE_MAX UINT32_MAX

/* Largest value storage, blocksize * blocks: 2^48 bytes (256 TiB), the
 * user address space of x86_64 and aarch64 (48-bit VA). */
#define UC_CONFIG_BYTES_MAX (UINT64_C(1) << 48)

#endif
