/*
 * storefile.c - the store's file on disk: opened without following a
 * link, checked for whose it is, given to the user the processes run as,
 * its space reserved.  store.c calls it; it knows nothing of the format.
 *
 * Why each rule (issue 18):
 *   - Deployments start as root and drop to --uid.  The file is opened
 *     again by the master re-exec'd at every graceful reload, which runs as
 *     that user: a file root created 0600 made the first reload exit
 *     ("Permission denied") and take the site down.  So a file created
 *     here is handed to cfg.store_uid/store_gid (as if that user had
 *     created it, which is what stock's later open does), and an existing
 *     one that user could not read and write is refused at the first start,
 *     naming owner, mode and uid, instead of at the first reload.
 *   - Root opens a path in a directory the app user may be able to write:
 *     O_NOFOLLOW (a planted symlink to a root-owned file was truncated by
 *     store_delete, then written by every worker through the mapping),
 *     O_EXCL for a file we create (store_migrate's FILE.migrate), and
 *     checks on the opened fd: a regular file with one link (a hard link
 *     would make a root-owned file the store), and, when root drops, one
 *     the final user can write anyway, so root writing it gives that user
 *     nothing it did not have.
 *   - A sparse file lets a write through the mapping land on a page the
 *     filesystem cannot back: SIGBUS, in a worker, on every request (repair
 *     touches the pages again), and in the master at the next start.  The
 *     whole length is reserved with posix_fallocate when the store is
 *     mapped (created, extended, or an old sparse one reopened), so a full
 *     filesystem fails the start with ENOSPC in one line instead.
 *
 * No locking: the creating process, before any fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storefile.h"
#include "util.h"

/* Root hands the processes to another user later (uWSGI's --uid). */
static int drops_privileges(const ucache_t *c)
{
	return geteuid() == 0 && c->cfg.store_uid != 0;
}

/* Could uid:gid read and write a file of this owner and mode?  (Owner,
 * then group, then others, as the kernel decides; supplementary groups and
 * ACLs are not consulted, docs/OPERATIONS.md says so.) */
static int final_user_can_write(const struct stat *st, unsigned uid, unsigned gid)
{
	if (st->st_uid == uid)
		return (st->st_mode & 0600) == 0600;
	if (st->st_gid == gid)
		return (st->st_mode & 060) == 060;
	return (st->st_mode & 06) == 06;
}

/* The checks on an existing file opened as fd; 0 or -errno with err. */
static int check_opened(const ucache_t *c, const char *path, const struct stat *st, char *err, size_t errlen)
{
	const char *name = c->cfg.name;

	if (!S_ISREG(st->st_mode)) {
		uc_err(err, errlen, "cache \"%s\": store %s is not a regular file (mode %04o)", name, path,
		       (unsigned)st->st_mode);
		return -EINVAL;
	}
	if (geteuid() == 0 && st->st_nlink != 1) {
		uc_err(err, errlen, "cache \"%s\": store %s has %lu hard links: a store must have one name "
		       "(root never writes a file that may be another file's)", name, path, (unsigned long)st->st_nlink);
		return -EPERM;
	}
	if (drops_privileges(c) && !final_user_can_write(st, c->cfg.store_uid, c->cfg.store_gid)) {
		uc_err(err, errlen, "cache \"%s\": store %s is owned by uid %u gid %u with mode %04o, which uid %u "
		       "gid %u (--uid/--gid: the workers, and the master after a reload) cannot read and write; "
		       "chown it to %u:%u, or remove it", name, path, (unsigned)st->st_uid, (unsigned)st->st_gid,
		       (unsigned)(st->st_mode & 07777), c->cfg.store_uid, c->cfg.store_gid, c->cfg.store_uid,
		       c->cfg.store_gid);
		return -EACCES;
	}
	return 0;
}

/* A file just created by root: it belongs to the user the processes will
 * run as (a reloaded master opens it as that user). */
static int give_away(const ucache_t *c, int fd, const char *path, char *err, size_t errlen)
{
	uid_t uid = c->cfg.store_uid ? (uid_t)c->cfg.store_uid : (uid_t)-1;
	gid_t gid = c->cfg.store_gid ? (gid_t)c->cfg.store_gid : (gid_t)-1;

	int e;

	if (geteuid() != 0 || (!c->cfg.store_uid && !c->cfg.store_gid) || !fchown(fd, uid, gid))
		return 0;
	e = errno;
	uc_err(err, errlen, "cache \"%s\": cannot chown store %s to %d:%d: %s", c->cfg.name, path, (int)uid,
	       (int)gid, strerror(e));
	return -e;
}

static int open_failed(const ucache_t *c, const char *path, char *err, size_t errlen)
{
	int e = errno;

	if (e == ELOOP)
		uc_err(err, errlen, "cache \"%s\": store %s is a symbolic link: ucache never follows one for a file it "
		       "writes; name the file itself in store=", c->cfg.name, path);
	else
		uc_err(err, errlen, "cache \"%s\": cannot open store %s: %s", c->cfg.name, path, strerror(e));
	return -e;
}

int uc_storefile_open(const ucache_t *c, const char *path, int exclusive, char *err, size_t errlen)
{
	const int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
	struct stat st;
	int fd, created = 1, rc;

	fd = open(path, flags | O_CREAT | O_EXCL, 0600);
	if (fd < 0 && errno == EEXIST && !exclusive) {
		created = 0;
		fd = open(path, flags);
	}
	if (fd < 0)
		return open_failed(c, path, err, errlen);
	if (fstat(fd, &st)) {
		rc = -errno;
		uc_err(err, errlen, "cache \"%s\": cannot stat store %s: %s", c->cfg.name, path, strerror(-rc));
	} else {
		rc = created ? give_away(c, fd, path, err, errlen) : check_opened(c, path, &st, err, errlen);
	}
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

int uc_storefile_reserve(const ucache_t *c, int fd, const char *path, uint64_t len, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (fstat(fd, &st) || ftruncate(fd, (off_t)len)) {
		rc = errno;
		uc_err(err, errlen, "cache \"%s\": cannot size store %s to %llu bytes: %s", c->cfg.name, path,
		       (unsigned long long)len, strerror(rc));
		return -rc;
	}
	rc = posix_fallocate(fd, 0, (off_t)len);
	if (rc == 0)
		return 0;
	if (rc == EOPNOTSUPP || rc == ENOSYS || rc == EINVAL) {
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": the filesystem of store %s cannot reserve space (%s): if it "
		       "fills up, a write to the store kills its worker (SIGBUS)", c->cfg.name, path, strerror(rc));
		return 0;
	}
	/* an empty file stays a new store for the next start, not a zeroed
	 * one refused as "not a ucache store" */
	if (ftruncate(fd, st.st_size))
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": cannot give store %s its size back: %s", c->cfg.name, path,
		       strerror(errno));
	uc_err(err, errlen, "cache \"%s\": cannot reserve %llu bytes for store %s (posix_fallocate): %s; free space "
	       "on its filesystem or make the cache smaller", c->cfg.name, (unsigned long long)len, path, strerror(rc));
	return -rc;
}
