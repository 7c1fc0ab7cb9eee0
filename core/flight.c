/*
 * flight.c - single-flight get-or-set and stale-while-revalidate, built on
 * the cache's own items (ucache.h describes the protocol).
 *
 * The lock of KEY is the item "\0uc-lock\0" KEY, taken with an atomic add
 * (ucache_cas with version 0), holding struct flight_lock.  Its token is
 * the lock value's version, so a release (ucache_del_if) removes only the
 * lock it took, never one another caller took over since.  A waiter that
 * finds the owner's pid gone (or a zombie) takes the lock over with a CAS on the lock's
 * version: of several waiters exactly one wins.  The lock item expires
 * after lock_s, which bounds a live but hung owner.
 *
 * Waiting polls: 1 ms, doubling to 4 ms (a computation the caller bothers
 * to single-flight takes milliseconds; a hit never gets here).  The wait
 * sleeps in this thread (nanosleep); a caller that must not block its
 * thread (a gevent worker serves every request on one) loops over
 * ucache_flight_try() with its own cooperative sleep instead.
 *
 * Counting: every lookup here is a peek (ucache_peek_alloc): the caller
 * counted its own lookup of KEY before coming here, so the polls, the
 * lock and the marker reads count no hit or miss (two concurrent misses
 * moved the counters by ~50 each before).  ucache_get_stale() is an
 * application lookup and counts one.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "write.h"

#define LOCK_PREFIX "\0uc-lock\0"
#define FRESH_PREFIX "\0uc-fresh\0"
#define LOCK_PLEN (sizeof(LOCK_PREFIX) - 1)
#define FRESH_PLEN (sizeof(FRESH_PREFIX) - 1)
#define PREFIX_MAX FRESH_PLEN

struct flight_lock {
	int64_t pid;
	uint64_t nonce;       /* makes every lock value, hence its token, unique */
};

struct fresh_marker {
	uint64_t fresh_until; /* engine clock seconds */
	uint64_t version;     /* of the value it describes */
};

/* prefix + key, malloc'd (keys reach 64 KiB: not on a worker thread's
 * stack) into *out; 0, -EINVAL (too long with the prefix) or -ENOMEM. */
static int derived_key(const ucache_t *c, const char *prefix, size_t plen, const void *key, size_t klen,
		       char **out, size_t *outlen)
{
	char *buf;

	*out = NULL;
	if (!key || !klen || klen + plen > c->hdr->keysize)
		return -EINVAL;
	if (!(buf = malloc(plen + klen)))
		return -ENOMEM;
	*out = buf;
	memcpy(buf, prefix, plen);
	memcpy(buf + plen, key, klen);
	*outlen = plen + klen;
	return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)(ms * 1000000) };

	nanosleep(&ts, NULL);
}

static uint64_t nonce(void)
{
	struct timespec ts;
	static __thread uint64_t seq;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (++seq << 48);
}

/* Take the lock: 0 and *token, -EEXIST (held), or another error.  With
 * held_version, take it over from that (dead) owner's value instead. */
static int lock_take(ucache_t *c, const char *lk, size_t lklen, uint64_t lock_s, uint64_t held_version,
		     uint64_t *token)
{
	struct flight_lock l = { .pid = getpid(), .nonce = nonce() };
	int rc = ucache_cas(c, lk, lklen, &l, sizeof(l), lock_s, 0, held_version);

	if (rc == 0)
		*token = ucache_version_of(&l, sizeof(l));
	return rc;
}

/* Has pid exited?  kill(pid, 0) fails with ESRCH once it is reaped; before
 * that (a master-less uWSGI's worker 1 reaps its siblings only between
 * requests) it is a zombie, state 'Z' in /proc/PID/stat. */
static int pid_dead(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	if (kill(pid, 0) == -1)
		return errno == ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold spaces */
	return p && p[1] == ' ' && p[2] == 'Z';
}

/* The lock exists and its owner is dead: its version in *version. */
static int lock_orphaned(ucache_t *c, const char *lk, size_t lklen, uint64_t *version)
{
	size_t len = 0;
	struct flight_lock *l = ucache_peek_alloc(c, lk, lklen, &len, NULL);
	int dead = 0;

	if (l)
		*version = ucache_version_of(l, len);
	if (l && len == sizeof(*l) && l->pid > 0)
		dead = pid_dead((pid_t)l->pid);
	free(l);
	return dead;
}

/* Is the value (of version v) past its fresh-until? */
static int is_stale(ucache_t *c, const void *key, size_t klen, uint64_t v)
{
	char *mk;
	struct fresh_marker m;
	size_t mklen, len = 0;

	int stale;

	if (derived_key(c, FRESH_PREFIX, FRESH_PLEN, key, klen, &mk, &mklen))
		return 0;
	stale = !ucache_peek(c, mk, mklen, &m, sizeof(m), &len, NULL) && len == sizeof(m) &&
		m.version == v && ucache_now() >= m.fresh_until;
	free(mk);
	return stale;
}

/* The value and whether it is stale; counted: a hit or miss, or a peek. */
static void *get_stale(ucache_t *c, const void *key, size_t klen, size_t *vallen, int *stale, int counted)
{
	size_t len = 0;
	void *val = counted ? ucache_get_alloc(c, key, klen, &len, NULL) : ucache_peek_alloc(c, key, klen, &len, NULL);

	if (val && vallen)
		*vallen = len;
	if (val && stale)
		*stale = is_stale(c, key, klen, ucache_version_of(val, len));
	return val;
}

void *ucache_get_stale(ucache_t *c, const void *key, size_t klen, size_t *vallen, int *stale)
{
	return get_stale(c, key, klen, vallen, stale, 1);
}

int ucache_flight_try(ucache_t *c, const void *key, size_t klen, uint64_t lock_s, void **val, size_t *vallen,
		      uint64_t *token)
{
	char *lk;
	uint64_t held;
	size_t lklen;
	int rc = derived_key(c, LOCK_PREFIX, LOCK_PLEN, key, klen, &lk, &lklen), stale = 0;

	*val = NULL;
	*token = 0;
	if (rc)
		return rc;
	*val = get_stale(c, key, klen, vallen, &stale, 0);
	if (*val && !stale) {
		free(lk);
		return UCACHE_FLIGHT_HIT;
	}
	rc = lock_take(c, lk, lklen, lock_s ? lock_s : 1, 0, token);
	if (rc == -EEXIST && lock_orphaned(c, lk, lklen, &held))
		rc = lock_take(c, lk, lklen, lock_s ? lock_s : 1, held, token);
	if (rc == 0) { /* the last owner may have stored the value and let go since we looked */
		free(*val);
		*val = get_stale(c, key, klen, vallen, &stale, 0);
		if (*val && !stale) {
			ucache_del_if(c, lk, lklen, *token);
			*token = 0;
			free(lk);
			return UCACHE_FLIGHT_HIT;
		}
	}
	free(lk);
	if (rc == 0)
		return UCACHE_FLIGHT_COMPUTE;
	if (*val)
		return UCACHE_FLIGHT_STALE; /* the lock's owner refreshes it */
	if (rc == -EEXIST || rc == -ESTALE)
		return UCACHE_FLIGHT_BUSY;
	return UCACHE_FLIGHT_TIMEOUT; /* no room for a lock: compute unlocked */
}

int ucache_flight_begin(ucache_t *c, const void *key, size_t klen, uint64_t wait_ms, uint64_t lock_s,
			void **val, size_t *vallen, uint64_t *token)
{
	uint64_t until = mono_ms() + wait_ms, pause = 1;
	int rc;

	while ((rc = ucache_flight_try(c, key, klen, lock_s, val, vallen, token)) == UCACHE_FLIGHT_BUSY &&
	       mono_ms() < until) {
		sleep_ms(pause);
		pause = pause < 4 ? pause * 2 : 4;
	}
	return rc == UCACHE_FLIGHT_BUSY ? UCACHE_FLIGHT_TIMEOUT : rc; /* waited long enough */
}

void ucache_flight_abort(ucache_t *c, const void *key, size_t klen, uint64_t token)
{
	char *lk = NULL;
	size_t lklen;

	if (token && !derived_key(c, LOCK_PREFIX, LOCK_PLEN, key, klen, &lk, &lklen))
		ucache_del_if(c, lk, lklen, token);
	free(lk);
}

int ucache_flight_end(ucache_t *c, const void *key, size_t klen, const void *val, size_t vlen,
		      uint64_t expires, uint64_t stale_s, uint64_t token)
{
	char *mk;
	struct fresh_marker m;
	uint64_t life = expires && stale_s ? add_sat(expires, stale_s) : expires;
	size_t mklen;
	int rc = ucache_set(c, key, klen, val, vlen, life, UCACHE_SET_UPDATE);

	if (rc == 0 && life != expires && !derived_key(c, FRESH_PREFIX, FRESH_PLEN, key, klen, &mk, &mklen)) {
		m.fresh_until = add_sat(ucache_now(), expires);
		m.version = ucache_version_of(val, vlen);
		ucache_set(c, mk, mklen, &m, sizeof(m), life, UCACHE_SET_UPDATE);
		free(mk);
	}
	ucache_flight_abort(c, key, klen, token);
	return rc;
}
