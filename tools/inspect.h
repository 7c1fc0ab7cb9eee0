/*
 * inspect.h - what the parts of ucache-inspect share: the key listing
 * (inspect_keys.c) walks keys from a store file through the engine or from
 * a live cache over the modifier1 111 socket (inspect_remote.c), both
 * read-only, as one stream of entries.
 */
#ifndef UCACHE_INSPECT_H
#define UCACHE_INSPECT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One key as listed: the key's bytes, its value's size, seconds left. */
struct ik_entry {
	const unsigned char *key;
	size_t klen;
	uint64_t vlen;
	int64_t ttl;            /* seconds left, -1 = never expires */
};

/* Called for each key; a non-zero return stops the walk. */
typedef int (*ik_fn)(void *ctx, const struct ik_entry *e);

/* Walk the live cache (name: NULL = the default one) of the uWSGI instance
 * at addr ("host:port", or a unix socket path: anything with a '/') over
 * modifier1 111, batch keys per request.  0, or -1 with err filled. */
int ik_remote_each(const char *addr, const char *cache, unsigned batch, ik_fn fn, void *ctx,
		   char *err, size_t errlen);

/* `ucache-inspect keys ...`: argv[0] is "keys".  Returns the exit status. */
int ik_main(int argc, char **argv);

/* Write (s, len) to out, a byte that is not printable (or '\\') as \xHH. */
void ik_print_escaped(FILE *out, const unsigned char *s, size_t len);

/* ttl (seconds left, -1 = never) as printed: the seconds, or "never". */
const char *ik_ttl_str(int64_t ttl, char *buf, size_t len);

#endif
