/*
 * lock.c - raw robust process-shared mutexes for stripes, the allocator and
 * the world (lock.h has the rules).  Every engine lock is one of these: a
 * process killed while holding one leaves it to the next locker with
 * EOWNERDEAD, never a deadlock (stock's rwlock stayed held: uWSGI #1202).
 *
 * glibc takes its slow path (~300 instructions per lock/unlock pair,
 * callgrind) for every robust mutex; the write path is shaped to take as
 * few as possible (write.c: one stripe lock for an update, and for an
 * insert into a full purge_lru cache, which reuses its victim in place).
 */
#include <errno.h>
#include <string.h>

#include "lock.h"
#include "util.h"

static int mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return rc;
}

int uc_lock_outcome(pthread_mutex_t *m, int rc)
{
	if (rc == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		return 1;
	}
	if (rc) /* ENOTRECOVERABLE cannot happen: we always make it consistent */
		uc_log(UCACHE_LOG_ERROR, "pthread_mutex_lock: %s", strerror(rc));
	return 0;
}

/* Lock m; 1 if its previous owner died (now made consistent). */
static int mutex_acquire(pthread_mutex_t *m)
{
	int rc = pthread_mutex_lock(m);

	return rc ? uc_lock_outcome(m, rc) : 0;
}

int uc_locks_init(ucache_t *c)
{
	uint64_t i;
	int rc = mutex_init(&c->hdr->alloc_lock);

	for (i = 0; i < c->hdr->nstripes; i++) {
		rc |= mutex_init(&c->stripes[i].lock);
		atomic_store(&c->stripes[i].seq, 0);
	}
	return rc ? -EINVAL : 0;
}

int uc_alloc_acquire(ucache_t *c)
{
	return mutex_acquire(&c->hdr->alloc_lock);
}

void uc_alloc_release(ucache_t *c)
{
	pthread_mutex_unlock(&c->hdr->alloc_lock);
}

int uc_world_acquire(ucache_t *c)
{
	uint32_t i;
	int dead = 0;

	for (i = 0; i <= c->stripe_mask; i++)
		dead |= mutex_acquire(&c->stripes[i].lock);
	dead |= mutex_acquire(&c->hdr->alloc_lock);
	for (i = 0; i <= c->stripe_mask; i++) /* open a write window everywhere */
		atomic_store(&c->stripes[i].seq, atomic_load(&c->stripes[i].seq) | 1u);
	return dead;
}

void uc_world_release(ucache_t *c)
{
	uint32_t i;

	for (i = 0; i <= c->stripe_mask; i++)
		atomic_store_explicit(&c->stripes[i].seq, atomic_load(&c->stripes[i].seq) + 1, memory_order_release);
	pthread_mutex_unlock(&c->hdr->alloc_lock);
	for (i = c->stripe_mask + 1; i-- > 0;)
		pthread_mutex_unlock(&c->stripes[i].lock);
}
