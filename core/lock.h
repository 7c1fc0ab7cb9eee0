/*
 * lock.h - the raw locks of a cache: robust process-shared mutexes that
 * report a dead previous owner and do nothing else.  Deciding what a dead
 * owner means (a rebuild) is repair.c's job, one layer up; nothing here
 * reads or writes cache contents.
 *
 * Order: stripes in index order, then alloc; never a stripe while holding
 * alloc.  Each acquire returns 1 if the previous owner died (the mutex has
 * been made consistent and is held), else 0.
 */
#ifndef UCACHE_LOCK_H
#define UCACHE_LOCK_H

#include "layout.h"

/* Fresh, unlocked mutexes and even seqs for every stripe and the allocator
 * (a new region, or a store whose previous owners are gone).  0 or -EINVAL. */
int uc_locks_init(ucache_t *c);

/* What a pthread_mutex_lock() result means: 1 if the owner died (the
 * mutex is made consistent), else 0 (an unexpected error is logged). */
int uc_lock_outcome(pthread_mutex_t *m, int rc);

static inline int uc_stripe_acquire(struct uc_stripe *st)
{
	int rc = pthread_mutex_lock(&st->lock);

	return rc ? uc_lock_outcome(&st->lock, rc) : 0;
}

static inline void uc_stripe_release(struct uc_stripe *st)
{
	pthread_mutex_unlock(&st->lock);
}
int uc_alloc_acquire(ucache_t *c);
void uc_alloc_release(ucache_t *c);

/* Every stripe, then alloc, and a write window opened on every stripe
 * (seq made odd) so lock-free readers in flight retry until the release,
 * which closes them.  Returns 1 if any previous owner died. */
int uc_world_acquire(ucache_t *c);
void uc_world_release(ucache_t *c);

#endif
