/*
 * view.c - read-only views: a process that is not one of the cache's (an
 * nginx worker) maps a store file PROT_READ and reads it with the engine's
 * own lock-free read path (read.c, uc_read_view).
 *
 * Trust: the file is untrusted bytes.  Its header is read with pread and
 * judged exactly as a store's open judges it (store.c,
 * uc_store_read_header: magic, layout version, every offset replayed
 * through uc_plan_geometry); the file must hold hdr->total bytes; the
 * handle is then attached from that validated copy (uc_attach_as), so
 * every bound a read checks (items, buckets, value region, key heap, tag
 * counters) comes from the checked copy and the mapping's length, never
 * from bytes that may change under the view.  The tag table is the file's
 * last pages (layout.c): an envelope's counters are read there, so an
 * invalidation by any process of the cache is honoured by the next read.  What a read finds inside the region is
 * bounds-checked by find_slot as for any lock-free reader.
 *
 * A file no running instance holds and that was not closed cleanly (a
 * crash, a copy of a live store) is refused at open: only the cache's
 * recovery proves its items (unproven()).
 *
 * Never a signal: the mapping is PROT_READ (a write would be SIGSEGV, and
 * nothing here writes); the cache never shrinks a store file in place
 * (store.c recreates it under a new inode), so the pages a view maps stay
 * backed; ucache_view_replaced() tells the caller to reopen.
 *
 * No locks, no shared state: a view is one process's handle.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "read.h"
#include "store.h"
#include "tags.h"
#include "util.h"

struct ucache_view {
	ucache_t c;         /* attached to the PROT_READ mapping; cfg stays zeroed */
	dev_t dev;          /* the file mapped, for ucache_view_replaced() */
	ino_t ino;
	char *path;
};

/* A store no instance holds (its flock: store.c) that was not closed
 * cleanly was left by a crash: after a machine crash its slots may point
 * at value pages that never reached the disk, which only the cache's
 * recovery (checksums) drops.  0 if the file can be trusted that far, or
 * -1 with err.  The shared lock probe is let go at once (the caller
 * closes fd): a cache starting meanwhile waits 50 ms for it. */
static int unproven(int fd, const char *path, const struct uc_hdr *h, char *err, size_t errlen)
{
	if (h->clean || flock(fd, LOCK_SH | LOCK_NB))
		return 0; /* closed cleanly, or held by a running instance (EWOULDBLOCK) */
	flock(fd, LOCK_UN);
	uc_err(err, errlen, "ucache view: %s was not closed cleanly and no cache holds it (a crash, or a copy of a "
	       "live store): its items are unproven until its cache opens it again", path);
	return -1;
}

/* Judge fd (path) as a store and fill h; 0 or -1 with err. */
static int check_file(int fd, const char *path, struct stat *st, struct uc_hdr *h, char *err, size_t errlen)
{
	char why[600];
	int v;

	if (fstat(fd, st)) {
		uc_err(err, errlen, "ucache view: cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		uc_err(err, errlen, "ucache view: %s is not a regular file", path);
		return -1;
	}
	v = uc_store_read_header(fd, h, st->st_size, why, sizeof(why));
	if (v != UC_HDR_OK) {
		uc_err(err, errlen, "ucache view: %s %s", path, v == UC_HDR_EMPTY ? "is empty" : why);
		return -1;
	}
	if (!h->size_tags) { /* every store has one (since layout 6); a region without is a reload's memfd */
		uc_err(err, errlen, "ucache view: %s has no tag table (not a store's file)", path);
		return -1;
	}
	if ((uint64_t)st->st_size < h->total) {
		uc_err(err, errlen, "ucache view: %s is truncated (%lld of %llu bytes)", path, (long long)st->st_size,
		       (unsigned long long)h->total);
		return -1;
	}
	return unproven(fd, path, h, err, errlen);
}

ucache_view_t *ucache_view_open(const char *path, char *err, size_t errlen)
{
	ucache_view_t *v = calloc(1, sizeof(*v));
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	struct uc_hdr h;
	struct stat st;

	if (!v || !path || (v->path = strdup(path)) == NULL || fd < 0) {
		uc_err(err, errlen, "ucache view: cannot open %s: %s", path ? path : "(null)",
		       fd < 0 && path ? strerror(errno) : "out of memory");
		goto fail;
	}
	if (check_file(fd, path, &st, &h, err, errlen))
		goto fail;
	v->c.base = mmap(NULL, h.total, PROT_READ, MAP_SHARED, fd, 0);
	if (v->c.base == MAP_FAILED) {
		uc_err(err, errlen, "ucache view: cannot map %s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	v->c.maplen = h.total;
	v->c.store_fd = -1;
	uc_attach_as(&v->c, &h);
	v->c.tags = (struct uc_tagtab *)(v->c.base + h.off_tags);
	v->c.tag_ngens = uc_tags_ngens(h.size_tags); /* the geometry's, not the file's word */
	v->dev = st.st_dev;
	v->ino = st.st_ino;
	return v;
fail:
	if (fd >= 0)
		close(fd);
	if (v)
		free(v->path);
	free(v);
	return NULL;
}

void ucache_view_close(ucache_view_t *v)
{
	if (!v)
		return;
	munmap(v->c.base, v->c.maplen);
	free(v->path);
	free(v);
}

int ucache_view_replaced(const ucache_view_t *v)
{
	struct stat st;

	return stat(v->path, &st) || st.st_dev != v->dev || st.st_ino != v->ino ||
	       (uint64_t)st.st_size < v->c.maplen;
}

int ucache_view_get(ucache_view_t *v, const void *key, size_t klen, void *buf, size_t buflen, size_t *vallen,
		    struct ucache_item_info *info)
{
	uint64_t expires = 0;
	size_t len = 0;
	int rc = uc_read_view(&v->c, key, klen, buf, buflen, &len, &expires);

	if (rc == 0 || rc == -ENOBUFS) {
		if (vallen)
			*vallen = len;
		if (info) {
			info->expires = expires;
			info->hits = 0; /* a view does not read the per-item counters */
		}
		return rc ? UCACHE_VIEW_NOBUFS : UCACHE_VIEW_HIT;
	}
	switch (rc) {
	case -ETIME:
		return UCACHE_VIEW_EXPIRED;
	case -ESTALE:
		return UCACHE_VIEW_INVALIDATED;
	case -EBUSY:
		return UCACHE_VIEW_BUSY;
	default: /* -ENOENT, or a key no item can have (-EINVAL) */
		return UCACHE_VIEW_MISS;
	}
}
