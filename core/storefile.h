/*
 * storefile.h - the store's file on disk (storefile.c): open it without
 * following a link, check whose it is, give it to the user the processes
 * run as, reserve its space.  Called by store.c only, in the creating
 * process before any fork.
 */
#ifndef UCACHE_STOREFILE_H
#define UCACHE_STOREFILE_H

#include "layout.h"

/* Open path read-write for c's store: never through a symbolic link, a
 * regular file, and (when root drops to cfg.store_uid) one that user can
 * read and write, which a reloaded master reopens as that user.  A file
 * this call creates (exclusive: the file must not exist) is handed to
 * store_uid/store_gid.  The fd, or -errno with err filled (one line naming
 * the path, its owner and mode). */
int uc_storefile_open(const ucache_t *c, const char *path, int exclusive, char *err, size_t errlen);

/* Give fd (of path) len bytes, all of them backed by the filesystem
 * (posix_fallocate), so that no write through the mapping can ever find a
 * page the filesystem cannot back (SIGBUS).  On failure the file gets its
 * old size back and err names the path, the size and the reason.  0 or
 * -errno. */
int uc_storefile_reserve(const ucache_t *c, int fd, const char *path, uint64_t len, char *err, size_t errlen);

#endif
