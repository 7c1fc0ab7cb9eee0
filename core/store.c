/*
 * store.c - persistence: the cache region as a file (store=), its
 * validation at open, recovery, migration and clean close.
 *
 * File format: the file IS the cache region of layout.c (header, stripes,
 * buckets, slots, side arrays, page descriptors or bitmap, key heap, values), mapped
 * MAP_SHARED, so every write reaches the page cache at once and a process
 * killed at any instant loses nothing the kernel already has; msync
 * (store_sync / ucache_msync) only bounds what a machine crash can lose.
 * The header holds magic "UCACHE\0\1", the layout version, the geometry
 * (items, blocks, blocksize, keysize, hash, mode, buckets) with every
 * region's offset, and a clean-shutdown flag.  Every item carries a
 * checksum of its key, expiry and value (layout.h: caches with a store
 * always hash the value, since a machine crash can persist a slot without
 * the pages of its value).
 *
 * Open: the header must be ours, the same version, and describe exactly
 * the layout the current configuration plans (geometry and offsets alike);
 * a shorter file is extended (what was missing fails its checksum).  Then
 * the locks are initialised afresh (their owners are gone, maybe with the
 * machine) and everything but the slots is rebuilt from the slots that
 * prove themselves (repair.c), logging "restored N, dropped M".
 *
 * Mismatch: refuse, naming both geometries; store_migrate builds a new
 * file beside it (FILE.migrate), imports every valid unexpired item that
 * fits, then renames it over FILE, so a crash during migration leaves the
 * old file intact; store_delete does the same importing nothing.
 *
 * A store file is never shrunk in place: a read-only view (view.c, an
 * nginx worker) may map it, and a page cut off under a mapping is SIGBUS
 * at its next read.  A file of another geometry is replaced by a new
 * inode (the view keeps the old one, whole, and ucache_view_replaced()
 * tells it to reopen).  The old file's flock is held until the rename and
 * the new one is locked before it; a second instance that was waiting for
 * the old lock sees the name moved and opens it again (open_locked).
 *
 * Reloads (keep_region, no store): the same region lives in a memfd
 * instead of a file, so an exec can hand it to the next image (the
 * embedding program passes the fd number on; cfg.region_fd brings it back).
 * It is judged, recovered and migrated by the code above, with three
 * differences: no flock (one owner: the exec'ing process), a damaged one
 * is replaced by an empty region (there is nothing to keep it for), and a
 * geometry change always imports what fits (into a new memfd), in one
 * log line.
 *
 * Called only from ucache_create()/ucache_close() in the creating process,
 * before any fork: no locking here but ucache_close's world lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "repair.h"
#include "store.h"
#include "storefile.h"
#include "tags.h"
#include "util.h"

/* min(limit, size of fd rounded up to a page) */
static size_t uc_min_size(uint64_t limit, const char *file, int fd)
{
	struct stat st;
	uint64_t size;

	(void)file;
	if (fstat(fd, &st))
		return 0;
	size = uc_align_up((uint64_t)st.st_size, 4096);
	return (size_t)(size < limit ? size : limit);
}

static void describe(const struct uc_hdr *h, char *out, size_t len)
{
	snprintf(out, len, "items=%llu blocks=%llu blocksize=%llu keysize=%llu hash=%s %s buckets=%llu%s tag table=%llu KiB",
		 (unsigned long long)h->items, (unsigned long long)h->blocks, (unsigned long long)h->blocksize,
		 (unsigned long long)h->keysize, ucache_hash_name((enum ucache_hash)h->hash),
		 h->bitmap ? "bitmap" : "single-block", (unsigned long long)h->nbuckets, h->vpage ? " packed" : "",
		 (unsigned long long)(h->size_tags >> 10));
}

/* 1 if the layout fields of a and b agree. */
static int same_layout(const struct uc_hdr *a, const struct uc_hdr *b)
{
	return a->items == b->items && a->blocks == b->blocks && a->blocksize == b->blocksize &&
	       a->keysize == b->keysize && a->nbuckets == b->nbuckets && a->nstripes == b->nstripes &&
	       a->hash == b->hash && a->bitmap == b->bitmap && a->small == b->small && a->vpage == b->vpage &&
	       a->csum_values == b->csum_values && a->off_stripes == b->off_stripes &&
	       a->off_buckets == b->off_buckets && a->off_slots == b->off_slots &&
	       a->off_kofs == b->off_kofs && a->off_atime == b->off_atime && a->off_links == b->off_links &&
	       a->off_kpages == b->off_kpages &&
	       a->off_vpages == b->off_vpages && a->off_bitmap == b->off_bitmap && a->off_kdata == b->off_kdata &&
	       a->off_vdata == b->off_vdata && a->size_kdata == b->size_kdata && a->size_vdata == b->size_vdata &&
	       a->off_tags == b->off_tags && a->size_tags == b->size_tags && a->total == b->total;
}

/* The layout a stored header would have if its geometry were configured:
 * a header whose offsets disagree with it is damaged. */
static int header_consistent(const struct uc_hdr *h)
{
	struct ucache_config cfg;
	struct uc_hdr plan;

	ucache_config_init(&cfg);
	cfg.name = (char *)"store";
	cfg.items = h->items;
	cfg.blocks = h->blocks;
	cfg.blocksize = h->blocksize;
	cfg.keysize = h->keysize;
	cfg.hashsize = h->nbuckets;
	cfg.hash = (enum ucache_hash)h->hash;
	cfg.bitmap = (int)h->bitmap;
	cfg.store = h->csum_values ? (char *)"store" : NULL;
	if (h->hash > UCACHE_HASH_XXH3 || h->nbuckets == 0 || h->nbuckets > h->items ||
	    ucache_config_validate(&cfg, NULL, 0))
		return 0;
	memset(&plan, 0, sizeof(plan));
	if (uc_plan_layout(&cfg, &plan, NULL, 0) || (h->vpage && h->vpage != uc_packed_page(&cfg)))
		return 0;
	plan.vpage = h->vpage; /* packed or not: the creator's budget (hashsize) chose */
	uc_plan_geometry(&cfg, &plan, h->nbuckets); /* the bucket count the creator chose */
	/* the tag table's size followed the creator's hashsize (tags.h), which
	 * the header does not keep: any size the rule can give, last in the file */
	if (plan.size_tags && uc_tags_size_ok(h->size_tags)) {
		plan.total += h->size_tags - plan.size_tags;
		plan.size_tags = h->size_tags;
	}
	return same_layout(&plan, h);
}

enum verdict { V_EMPTY = UC_HDR_EMPTY, V_OK = UC_HDR_OK, V_FOREIGN = UC_HDR_FOREIGN, V_MISMATCH };

int uc_store_read_header(int fd, struct uc_hdr *old, off_t size, char *why, size_t len)
{
	ssize_t got;

	if (size == 0)
		return V_EMPTY;
	got = pread(fd, old, sizeof(*old), 0);
	if (got >= (ssize_t)sizeof(old->magic) && memcmp(old->magic, UC_MAGIC, sizeof(old->magic))) {
		snprintf(why, len, "is not a ucache store (bad magic; a stock uWSGI cache file?)");
		return V_FOREIGN;
	}
	if (got != (ssize_t)sizeof(*old)) {
		snprintf(why, len, "is truncated (%lld bytes, not even a header)", (long long)size);
		return V_FOREIGN;
	}
	if (old->version != UC_LAYOUT_VERSION || old->hdr_size != sizeof(*old)) {
		snprintf(why, len, "has layout version %u, this ucache writes %u", old->version, UC_LAYOUT_VERSION);
		return V_FOREIGN;
	}
	if (!header_consistent(old)) {
		snprintf(why, len, "has a damaged header");
		return V_FOREIGN;
	}
	return V_OK;
}

/* uc_store_read_header, then: does the store have the layout the configuration plans? */
static enum verdict judge(int fd, const struct uc_hdr *plan, struct uc_hdr *old, off_t size, char *why, size_t len)
{
	enum verdict v = (enum verdict)uc_store_read_header(fd, old, size, why, len);

	if (v != V_OK)
		return v;
	if (!same_layout(old, plan)) {
		char a[256], b[256];
		describe(old, a, sizeof(a));
		describe(plan, b, sizeof(b));
		snprintf(why, len, "was written with geometry %s, but the configuration asks for %s", a, b);
		return V_MISMATCH;
	}
	return V_OK;
}

#define REGION "the region kept across the reload"

/* What the messages call the region: "store FILE" or REGION. */
static const char *label(const ucache_t *c, char *buf, size_t len)
{
	if (c->memfd)
		return REGION;
	snprintf(buf, len, "store %s", c->cfg.store);
	return buf;
}

static int new_memfd(const ucache_t *c)
{
	char name[80];

	snprintf(name, sizeof(name), "ucache-%s", c->cfg.name);
	return memfd_create(name, MFD_CLOEXEC);
}

static int map_file(ucache_t *c, int fd, char *err, size_t errlen)
{
	const char *file = c->import_tmp && *c->import_tmp ? c->import_tmp : c->cfg.store;
	char lb[600];
	int rc;

	if (!c->memfd) {
		if ((rc = uc_storefile_reserve(c, fd, file, c->maplen, err, errlen)))
			return rc;
	} else if (ftruncate(fd, (off_t)c->maplen)) {
		uc_err(err, errlen, "cache \"%s\": cannot size %s to %llu bytes: %s", c->cfg.name,
		       label(c, lb, sizeof(lb)), (unsigned long long)c->maplen, strerror(errno));
		return -errno;
	}
	c->base = mmap(NULL, c->maplen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (c->base == MAP_FAILED) {
		uc_err(err, errlen, "cache \"%s\": cannot map %s: %s", c->cfg.name, label(c, lb, sizeof(lb)),
		       strerror(errno));
		return -errno;
	}
	return 0;
}

/* The old file mapped for the import (store_migrate). */
static int map_import(ucache_t *c, int fd, const struct uc_hdr *old, char *err, size_t errlen)
{
	c->import_base = mmap(NULL, old->total, PROT_READ, MAP_PRIVATE, fd, 0);
	if (c->import_base == MAP_FAILED) {
		uc_err(err, errlen, "cache \"%s\": cannot map %s for migration", c->cfg.name,
		       c->memfd ? REGION : c->cfg.store);
		c->import_base = NULL;
		return -ENOMEM;
	}
	c->import_len = old->total;
	return 0;
}

/* store_migrate (import: the old file mapped for uc_store_import_pending)
 * and store_delete (nothing imported): the new region beside the old one.
 * A file's replacement is FILE.migrate, renamed over FILE once formatted
 * (and filled); the old descriptor, and so its flock, is kept until then. */
static int start_migration(ucache_t *c, int *fd, const struct uc_hdr *old, off_t size, int import, char *err,
			   size_t errlen)
{
	size_t n = c->memfd ? 1 : strlen(c->cfg.store) + sizeof(".migrate");
	int rc;

	if (c->memfd && (uint64_t)size < old->total)
		return ftruncate(*fd, 0) ? -errno : UC_STORE_FRESH; /* cannot happen: we sized it */
	if (import && (uint64_t)size < old->total) {
		uc_err(err, errlen, "cache \"%s\": store %s is truncated (%lld of %llu bytes): cannot migrate it; "
		       "use store_delete", c->cfg.name, c->cfg.store, (long long)size, (unsigned long long)old->total);
		return -EINVAL;
	}
	if (import && (rc = map_import(c, *fd, old, err, errlen)))
		return rc;
	if (!(c->import_tmp = malloc(n))) {
		uc_err(err, errlen, "cache \"%s\": out of memory", c->cfg.name);
		return -ENOMEM;
	}
	if (c->memfd) {
		close(*fd);
		*c->import_tmp = 0;
		*fd = new_memfd(c);
		return *fd < 0 ? -errno : UC_STORE_FRESH;
	}
	c->import_fd = *fd;
	*fd = -1;
	snprintf(c->import_tmp, n, "%s.migrate", c->cfg.store);
	/* a leftover of a crashed migration, or anything planted there: the
	 * name is removed (never followed) and created afresh, exclusively */
	if (unlink(c->import_tmp) && errno != ENOENT) {
		uc_err(err, errlen, "cache \"%s\": cannot remove %s: %s", c->cfg.name, c->import_tmp, strerror(errno));
		return -errno;
	}
	*fd = uc_storefile_open(c, c->import_tmp, 1, err, errlen);
	return *fd < 0 ? *fd : UC_STORE_FRESH;
}

/* Act on the verdict: map, recreate, migrate or refuse. */
static int resolve(ucache_t *c, int *fd, enum verdict v, const struct uc_hdr *old, off_t size, const char *why,
		   char *err, size_t errlen)
{
	if (v == V_OK) {
		if ((uint64_t)size < c->maplen && !c->memfd)
			uc_log(UCACHE_LOG_WARN, "cache \"%s\": store %s is shorter than its geometry (%lld of %llu bytes); "
			       "items in the missing part will be dropped", c->cfg.name, c->cfg.store, (long long)size,
			       (unsigned long long)c->maplen);
		return UC_STORE_EXISTING;
	}
	if (v == V_EMPTY)
		return UC_STORE_FRESH;
	if (c->memfd && v == V_FOREIGN) {
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": %s %s; starting empty", c->cfg.name, REGION, why);
		return ftruncate(*fd, 0) ? -errno : UC_STORE_FRESH;
	}
	if (c->memfd) { /* V_MISMATCH: uc_store_import_pending logs it with the count */
		c->import_note = strdup(why);
		return start_migration(c, fd, old, size, 1, err, errlen);
	}
	if (c->cfg.store_delete) {
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": store %s %s; recreating it (store_delete)", c->cfg.name,
		       c->cfg.store, why);
		return start_migration(c, fd, old, size, 0, err, errlen);
	}
	if (v == V_MISMATCH && c->cfg.store_migrate) {
		uc_log(UCACHE_LOG_INFO, "cache \"%s\": store %s %s; migrating its items (store_migrate)", c->cfg.name,
		       c->cfg.store, why);
		return start_migration(c, fd, old, size, 1, err, errlen);
	}
	uc_err(err, errlen, "cache \"%s\": store %s %s; remove it, or add store_delete to recreate it%s", c->cfg.name,
	       c->cfg.store, why, v == V_MISMATCH ? " or store_migrate to import its items" : "");
	return -EINVAL;
}

/* flock(LOCK_EX), waiting up to UCACHE_STORE_LOCK_WAIT_MS (default 10 s)
 * for a previous instance's last processes to exit.  0 or -1. */
static int lock_store(int fd, ucache_t *c)
{
	const char *env = getenv("UCACHE_STORE_LOCK_WAIT_MS");
	long wait_ms = env ? strtol(env, NULL, 10) : 10000, waited = 0;

	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK || waited >= wait_ms)
			return -1;
		if (waited == 0)
			uc_log(UCACHE_LOG_WARN, "cache \"%s\": store %s is held by another process; waiting up to %ld ms",
			       c->cfg.name, c->cfg.store, wait_ms);
		usleep(50000);
		waited += 50;
	}
	return 0;
}

/* keep_region: the memfd handed over by the exec, or a new one. */
static int open_memfd(ucache_t *c, struct stat *st, char *err, size_t errlen)
{
	int fd = c->cfg.region_fd > 0 ? c->cfg.region_fd : new_memfd(c);

	if (fd < 0 || fstat(fd, st) || fcntl(fd, F_SETFD, FD_CLOEXEC)) {
		uc_err(err, errlen, "cache \"%s\": cannot %s a memfd for its region: %s", c->cfg.name,
		       c->cfg.region_fd > 0 ? "use" : "create", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	return fd;
}

/* Does path still name the file open as fd (st: its fstat)? */
static int still_named(const char *path, const struct stat *st)
{
	struct stat now;

	return !lstat(path, &now) && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

#define UC_RENAMED_RETRIES 8 /* a new file per try: another instance recreating it that often is a loop */

/* The store opened (storefile.c's checks) and flocked, st its fstat.  The
 * fd, or -errno with err.  One instance per store: the lock lives as long
 * as the creating process or any worker it forked holds the descriptor,
 * so orphaned workers of a killed master keep a new instance from
 * rebuilding under their feet.  Workers SIGKILLed with their master die
 * within moments: wait a little before refusing.  A lock won on a file
 * that was meanwhile replaced (store_delete, store_migrate: renamed over)
 * is a lock on nothing: open the name again. */
static int open_locked(ucache_t *c, struct stat *st, char *err, size_t errlen)
{
	int fd, tries;

	for (tries = 0; tries < UC_RENAMED_RETRIES; tries++) {
		fd = uc_storefile_open(c, c->cfg.store, 0, err, errlen);
		if (fd < 0 || fstat(fd, st)) {
			if (fd >= 0)
				close(fd);
			return -EIO;
		}
		if (lock_store(fd, c)) {
			uc_err(err, errlen, "cache \"%s\": store %s is in use by another running instance (or by the "
			       "orphaned workers of one): stop it first", c->cfg.name, c->cfg.store);
			close(fd);
			return -EBUSY;
		}
		if (still_named(c->cfg.store, st))
			return fd;
		close(fd);
	}
	uc_err(err, errlen, "cache \"%s\": store %s was replaced %d times while this instance opened it: another "
	       "instance keeps recreating it; stop it first", c->cfg.name, c->cfg.store, UC_RENAMED_RETRIES);
	return -EBUSY;
}

/* A failed uc_store_map: nothing open, nothing mapped (the new file of a
 * migration stays behind: the next start removes it). */
static void unmap_failed(ucache_t *c, int fd)
{
	if (fd >= 0)
		close(fd);
	if (c->import_fd >= 0)
		close(c->import_fd);
	c->import_fd = -1;
	if (c->import_base)
		munmap(c->import_base, c->import_len);
	c->import_base = NULL;
	free(c->import_tmp);
	c->import_tmp = NULL;
}

int uc_store_map(ucache_t *c, const struct uc_hdr *plan, char *err, size_t errlen)
{
	struct uc_hdr old;
	struct stat st;
	char why[700];
	int fd, rc;

	c->memfd = !c->cfg.store;
	if (c->memfd)
		fd = open_memfd(c, &st, err, errlen);
	else
		fd = open_locked(c, &st, err, errlen);
	if (fd < 0)
		return fd;
	memset(&old, 0, sizeof(old));
	rc = resolve(c, &fd, judge(fd, plan, &old, st.st_size, why, sizeof(why)), &old, st.st_size, why, err, errlen);
	if (rc >= 0 && c->import_tmp && !c->memfd && flock(fd, LOCK_EX | LOCK_NB))
		rc = -EBUSY;
	if (rc >= 0 && map_file(c, fd, err, errlen))
		rc = -EIO;
	if (rc >= 0) {
		c->store_fd = fd;
		return rc;
	}
	unmap_failed(c, fd);
	return rc;
}

/* The allocators' shape (heap page size, page count and size classes; the
 * bitmap's size) follows from the geometry judge() validated
 * (uc_format_allocators): the copy in the file is not trusted (a damaged
 * nbits or class size sent every later allocation and ucache_check() far
 * outside the mapping).  What they hold is then rebuilt from the slots;
 * only the "never handed out" marks are kept, clamped. */
static void reshape_allocators(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;
	uint32_t kunused = h->kheap.unused, vunused = h->vheap.unused;

	uc_format_allocators(c);
	h->kheap.unused = kunused < h->kheap.npages ? kunused : h->kheap.npages;
	h->vheap.unused = vunused < h->vheap.npages ? vunused : h->vheap.npages;
}

void uc_store_recover(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;
	uint64_t before = 0, id;
	int64_t kept;

	for (id = 1; id < atomic_load(&h->slot_unused) && id < h->items; id++)
		before += uc_slot_state(&c->slots[id]) == UC_SLOT_LIVE;
	reshape_allocators(c);
	uc_locks_init(c);
	atomic_store(&h->repair_needed, 0);
	/* before any fork, but a read-only view (view.c) may be reading the
	 * file: the rebuild runs inside a write window on every stripe */
	(void)uc_world_acquire(c); /* fresh locks: no owner, dead or alive */
	kept = uc_rebuild_world_held(c);
	uc_world_release(c);
	if (kept < 0) {
		atomic_store(&h->repair_needed, UC_REPAIR_ASKED);
		uc_log(UCACHE_LOG_ERROR, "cache \"%s\": store %s could not be rebuilt (out of memory); the first "
		       "write retries", c->cfg.name, c->cfg.store);
		return;
	}
	if (c->memfd)
		uc_log(UCACHE_LOG_INFO, "cache \"%s\": the reload kept %lld items, dropped %llu", c->cfg.name,
		       (long long)kept, (unsigned long long)(before - (uint64_t)kept));
	else
		uc_log(UCACHE_LOG_INFO, "cache \"%s\": store %s restored %lld items, dropped %llu (%s shutdown)",
		       c->cfg.name, c->cfg.store, (long long)kept, (unsigned long long)(before - (uint64_t)kept),
		       h->clean ? "clean" : "unclean");
	h->clean = 0;
	h->opens++;
}

/* Copy every valid unexpired item of the old region that fits; counts. */
static void import_items(ucache_t *c, uint64_t *imported, uint64_t *skipped)
{
	ucache_t old = { .base = c->import_base };
	uint64_t id, now = ucache_now();

	uc_attach(&old);
	for (id = 1; id < atomic_load(&old.hdr->slot_unused) && id < old.hdr->items; id++) {
		const struct uc_slot *s = &old.slots[id];
		if (uc_slot_state(s) != UC_SLOT_LIVE || !uc_item_valid(&old, (uint32_t)id, NULL) || (s->expires && s->expires <= now))
			continue;
		if (ucache_set(c, uc_slot_key(&old, (uint32_t)id), s->keylen, uc_slot_val(&old, (uint32_t)id),
			       s->vallen, s->expires, UCACHE_SET_UPDATE | UCACHE_SET_ABSEXPIRE))
			(*skipped)++;
		else
			(*imported)++;
	}
	munmap(c->import_base, c->import_len);
	c->import_base = NULL;
}

void uc_store_import_pending(ucache_t *c)
{
	uint64_t imported = 0, skipped = 0;
	int import = c->import_base != NULL;

	if (!c->import_tmp)
		return;
	if (import)
		import_items(c, &imported, &skipped);
	if (c->memfd) {
		uc_log(UCACHE_LOG_INFO, "cache \"%s\": %s %s: imported %llu items, %llu did not fit", c->cfg.name,
		       REGION, c->import_note ? c->import_note : "changed geometry", (unsigned long long)imported,
		       (unsigned long long)skipped);
		goto done;
	}
	msync(c->base, c->maplen, MS_SYNC);
	if (rename(c->import_tmp, c->cfg.store))
		uc_log(UCACHE_LOG_ERROR, "cache \"%s\": rename %s -> %s: %s", c->cfg.name, c->import_tmp, c->cfg.store,
		       strerror(errno));
	close(c->import_fd); /* the old file's lock: the name is the new file's now */
	c->import_fd = -1;
	if (import)
		uc_log(UCACHE_LOG_INFO, "cache \"%s\": store_migrate imported %llu items, %llu did not fit",
		       c->cfg.name, (unsigned long long)imported, (unsigned long long)skipped);
done:
	free(c->import_tmp);
	c->import_tmp = NULL;
	free(c->import_note);
	c->import_note = NULL;
}

int ucache_msync(ucache_t *c, int wait)
{
	if (!c->cfg.store)
		return 0;
	return msync(c->base, c->maplen, wait ? MS_SYNC : MS_ASYNC) ? -errno : 0;
}

void uc_store_close(ucache_t *c)
{
	(void)uc_world_lock(c); /* a failed repair leaves the flag set: recovery rebuilds anyway */
	c->hdr->clean = 1;
	msync(c->base, c->maplen, MS_SYNC);
	uc_world_unlock(c);
}

/* Header of a store file, validated; fills cfg with its geometry. */
static int read_geometry(int fd, const char *file, struct uc_hdr *h, struct ucache_config *cfg, char *err, size_t errlen)
{
	struct stat st = { 0 };
	char why[512] = "cannot be read";

	if (fstat(fd, &st) || uc_store_read_header(fd, h, st.st_size, why, sizeof(why)) != V_OK) {
		uc_err(err, errlen, "%s %s", file, st.st_size ? why : "is empty");
		return -EINVAL;
	}
	cfg->name = strndup(h->name, sizeof(h->name));
	cfg->items = h->items;
	cfg->blocks = h->blocks;
	cfg->blocksize = h->blocksize;
	cfg->keysize = h->keysize;
	cfg->hashsize = h->nbuckets;
	cfg->hash = (enum ucache_hash)h->hash;
	cfg->bitmap = (int)h->bitmap;
	return 0;
}

ucache_t *ucache_open_store_readonly(const char *file, struct ucache_store_info *info, char *err, size_t errlen)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct uc_hdr h;
	ucache_t *c = calloc(1, sizeof(*c));

	if (c)
		c->store_fd = -1; /* inspection takes no lock: it may look at a live store */
	if (fd < 0 || !c) {
		uc_err(err, errlen, "cannot open %s: %s", file, fd < 0 ? strerror(errno) : "out of memory");
		goto fail;
	}
	ucache_config_init(&c->cfg);
	if (read_geometry(fd, file, &h, &c->cfg, err, errlen))
		goto fail;
	c->maplen = h.total;
	/* private copy-on-write mapping: locks can be reset, the file stays as is
	 * (pages past the end of a truncated file read as zero via the anonymous
	 * mapping underneath) */
	c->base = mmap(NULL, c->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->base == MAP_FAILED ||
	    mmap(c->base, uc_min_size(c->maplen, file, fd), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) {
		uc_err(err, errlen, "cannot map %s: %s", file, strerror(errno));
		goto fail;
	}
	uc_attach(c);
	uc_locks_init(c);
	if (info) {
		info->clean = h.clean;
		info->opens = h.opens;
		info->created_at = h.created_at;
		info->file_size = uc_min_size(~0ull, file, fd);
	}
	close(fd);
	return c;
fail:
	if (fd >= 0)
		close(fd);
	if (c)
		ucache_config_free(&c->cfg);
	free(c);
	return NULL;
}
