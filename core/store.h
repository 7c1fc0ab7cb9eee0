/*
 * store.h - the store file (store.c): open or create and map it, recover
 * what it holds, import a mismatching one (store_migrate).  Called by
 * cache.c only, in the creating process before any fork; the header check
 * also by view.c (a read-only view judges a file as a store's open does).
 */
#ifndef UCACHE_STORE_H
#define UCACHE_STORE_H

#include <sys/types.h>

#include "layout.h"

#define UC_STORE_FRESH 0
#define UC_STORE_EXISTING 1

/* Read a store's header from fd (size: the file's length) into h and
 * check it on its own (magic, layout version, offsets that replay through
 * uc_plan_geometry): UC_HDR_OK, UC_HDR_EMPTY (size 0) or UC_HDR_FOREIGN
 * with why filled ("is truncated ...", "has a damaged header"...). */
#define UC_HDR_EMPTY 0
#define UC_HDR_OK 1
#define UC_HDR_FOREIGN 2
int uc_store_read_header(int fd, struct uc_hdr *h, off_t size, char *why, size_t len);

/* Open or create cfg.store and map it into c (c->base, c->maplen).
 * UC_STORE_FRESH: an empty file to format; UC_STORE_EXISTING: a valid store
 * of the same geometry (locks must be re-initialised and the content
 * rebuilt); -errno with err filled otherwise. */
int uc_store_map(ucache_t *c, const struct uc_hdr *plan, char *err, size_t errlen);
/* After mapping an existing store: fresh locks, rebuild, log the result. */
void uc_store_recover(ucache_t *c);
/* Import what a mismatching store held (store_migrate), after formatting. */
void uc_store_import_pending(ucache_t *c);

/* Clean shutdown of a store: mark it cleanly closed and msync it (the
 * world lock held meanwhile, so no write is half done in the file). */
void uc_store_close(ucache_t *c);

#endif
