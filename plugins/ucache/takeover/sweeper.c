/*
 * sweeper.c - the master's expiry thread (started by lifecycle.c in place
 * of uwsgi_cache_start_sweepers).
 *
 * Stock options and log lines are kept: --cache-no-expire (no thread),
 * --cache-expire-freq N (period, default 3 s), --cache-report-freed-items
 * ("freed N items for cache \"X\""), and "cache sweeper thread enabled".
 *
 * Unlike the stock sweeper, which takes the cache's write lock once per slot
 * and walks every slot, each ucache_sweep() call examines a bounded window
 * (budget * 8 slots from a shared cursor) under the engine's striped locks,
 * so readers are never stalled for long.  One period runs enough windows to
 * cover the slot table once.  Expired items are never served even without
 * this thread (the engine checks expiry on read); the sweeper only gives
 * their memory back.  A cache with no_expire is skipped; purge_lru and
 * lazy_expire caches are swept too, since ucache's TTL and LRU mix.
 *
 * The thread runs in the master only, with every signal blocked
 * (mthread.c).
 */
#include "ucp.h"
#include "takeover/takeover.h"

#include <pthread.h>

/* Items freed per ucache_sweep() call (the engine examines 8x as many). */
uint64_t ucp_sweep_budget = 256;

/* Taken by the sweeper around a pass, by the metrics thread around a
 * scrape and by ucp_caches_close() (ucp_caches_hold), so that the master's
 * exit never unmaps a cache under one of its threads. */
static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;

static int needs_sweeping(const struct uwsgi_cache *uc)
{
	return !uc->no_expire;
}

static uint64_t sweep_cache(struct ucp_cache *c)
{
	uint64_t budget = ucp_sweep_budget ? ucp_sweep_budget : 1;
	uint64_t windows = c->uc.max_items / (budget * 8) + 1;
	uint64_t now = ucache_now();
	uint64_t freed = 0;

	while (windows--) {
		int64_t n = ucache_sweep(c->cache, now, budget);
		if (n > 0)
			freed += (uint64_t) n;
	}
	return freed;
}

static void sweep_pass(void)
{
	struct ucp_cache *c;

	for (c = ucp_first(); c; c = ucp_next(c)) {
		uint64_t freed;

		if (!needs_sweeping(&c->uc))
			continue;
		freed = sweep_cache(c);
		if (uwsgi.cache_report_freed_items && freed)
			uwsgi_log("freed %llu items for cache \"%s\"\n", (unsigned long long) freed,
					c->uc.name);
	}
}

static void *sweeper_loop(void *arg)
{
	(void) arg;
	for (;;) {
		sleep((unsigned) uwsgi.cache_expire_freq);
		pthread_mutex_lock(&pass_lock);
		sweep_pass();
		pthread_mutex_unlock(&pass_lock);
	}
	return NULL;
}

void ucp_sweeper_start(void)
{
	struct ucp_cache *c;

	if (uwsgi.cache_no_expire)
		return;
	for (c = ucp_first(); c && !needs_sweeping(&c->uc); c = ucp_next(c))
		;
	if (!c)
		return;
	if (uwsgi.cache_expire_freq <= 0)
		uwsgi.cache_expire_freq = 3;
	ucp_master_thread("the cache sweeper", sweeper_loop, NULL);
	uwsgi_log("cache sweeper thread enabled\n");
}

void ucp_caches_hold(void)
{
	pthread_mutex_lock(&pass_lock);
}

void ucp_caches_release(void)
{
	pthread_mutex_unlock(&pass_lock);
}
