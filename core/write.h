/*
 * write.h - the conditional write of write.c, for the atomic operations
 * above it (cas.c, flight.c).  Internal to core/.
 */
#ifndef UCACHE_WRITE_H
#define UCACHE_WRITE_H

#include "layout.h"

/* What a condition answers besides 0 (write the new value) and a negative
 * errno (write nothing, return it). */
#define UC_COND_TOUCH 1   /* keep the value, set the expiry only */
#define UC_COND_DELETE 2  /* delete the item */

/* Called with the key's stripe held: id is the live item (0: none, an
 * expired one was dropped first), *expires the absolute expiry the write
 * would give (0 = never), which it may change (keep the old TTL).  It may
 * read the item (uc_slot_val, c->slots[id]) but write nothing, and it may
 * run more than once for one write (the full-cache retries). */
typedef int (*uc_cond_fn)(const ucache_t *c, uint32_t id, uint64_t *expires, void *ud);

/* Write key -> val (vlen bytes; val may be NULL when cond never answers 0)
 * with expires relative seconds (0 = never) unless UCACHE_SET_ABSEXPIRE in
 * flags, if cond agrees.  Returns cond's error, 0, or ucache_set()'s
 * errors; -ENOENT for UC_COND_TOUCH or UC_COND_DELETE on a missing key. */
int uc_write_cond(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen, uint64_t expires,
		  unsigned flags, uc_cond_fn cond, void *ud);

#endif
