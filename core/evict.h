/*
 * evict.h - removal of items by the engine itself (evict.c): by slot, by
 * sweep, on a full cache.  Callers hold no lock unless a suffix says so.
 */
#ifndef UCACHE_EVICT_H
#define UCACHE_EVICT_H

#include "layout.h"

/* Delete slot id (whose key hashed to hash) if it is still live on its
 * chain, and, when expired_before != 0, expired before that time.  1 if
 * deleted (expirations counted when expired_before != 0), else 0. */
int uc_delete_slot(ucache_t *c, uint32_t id, uint32_t hash, uint64_t expired_before);

/* Unlink live slot id (on bucket's chain after prev) and free it.  0, or
 * -EAGAIN when the allocator's owner died (the repair frees the slot). */
int uc_remove_stripe_held(ucache_t *c, struct uc_stripe *st, uint64_t bucket, uint32_t id, uint32_t prev);

/* Count a write that found the cache full, and log it (at most once a
 * second, unless ignore_full). */
void uc_note_full(ucache_t *c, uint64_t now);

/* The cache had no room for a write: count, log, and free what the
 * configuration allows.  Returns 1 if anything was freed (retry). */
int uc_handle_full(ucache_t *c);

#endif
