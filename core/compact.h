/*
 * compact.h - emptying sparse pages of a packed value heap (compact.c).
 * Internal to core/.
 */
#ifndef UCACHE_COMPACT_H
#define UCACHE_COMPACT_H

#include "layout.h"

/* A packed value heap with no free page: move the live chunks of some of
 * its sparsest pages into the others (caller holds no lock).  1 if a page
 * is free afterwards (a write may retry), else 0. */
int uc_compact(ucache_t *c);

#endif
