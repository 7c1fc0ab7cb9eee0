/*
 * read.h - the lock-free read path's entry for read-only views (read.c).
 * The cache's own reads are the public calls of include/ucache.h.
 */
#ifndef UCACHE_READ_H
#define UCACHE_READ_H

#include "layout.h"

/* A get without any write and without the locked fallback, for a handle
 * on a PROT_READ mapping (view.c).  0 (a hit: the payload, tag envelope
 * removed, in buf), -ENOBUFS (*vallen: the size needed), -ETIME (expired),
 * -ESTALE (one of its tags was invalidated), -ENOENT, -EINVAL (empty key or
 * longer than keysize), -EBUSY (no consistent snapshot in UC_READ_SPINS
 * attempts).  *vallen and *expires are set on 0 and -ENOBUFS. */
int uc_read_view(ucache_t *c, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		 uint64_t *expires);

#endif
