/*
 * sweeper.c - the master's side: the expiry thread (replaces
 * uwsgi_cache_start_sweepers), the per-cycle persistence hook
 * (uwsgi_cache_sync_all) and the clean close of the stores at shutdown.
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
 * The thread runs in the master only, with every signal blocked.
 *
 * Also here, for operators and the crash tests: the RPC function
 * "ucache_check" (registered with --ucache-check-rpc, see plugin.c), which
 * runs the engine's full invariant check (ucache_check: index, slots, free
 * lists, storage, every item's checksum) on one or every local cache, from
 * whichever process calls it (a worker, through uwsgi.call()).  It takes
 * the cache's world lock for O(items): on demand only, never periodic.
 */
#include "glue.h"

#include <pthread.h>

/* Items freed per ucache_sweep() call (the engine examines 8x as many). */
uint64_t ucp_sweep_budget = 256;

/* Held by the sweeper around a pass, by the metrics thread around a scrape
 * (ucp_caches_hold) and by ucp_caches_close(), so that the master's exit
 * never unmaps a cache under one of its threads. */
static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;

void ucp_caches_hold(void)
{
	pthread_mutex_lock(&pass_lock);
}

void ucp_caches_release(void)
{
	pthread_mutex_unlock(&pass_lock);
}

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
	struct uwsgi_cache *uc;

	for (uc = uwsgi.caches; uc; uc = uc->next) {
		struct ucp_cache *c = ucp_from_uc(uc);
		uint64_t freed;

		if (!c || !needs_sweeping(uc))
			continue;
		freed = sweep_cache(c);
		if (uwsgi.cache_report_freed_items && freed)
			uwsgi_log("freed %llu items for cache \"%s\"\n", (unsigned long long) freed,
					uc->name);
	}
}

static void *sweeper_loop(void *arg)
{
	sigset_t all;

	(void) arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		sleep((unsigned) uwsgi.cache_expire_freq);
		pthread_mutex_lock(&pass_lock);
		sweep_pass();
		pthread_mutex_unlock(&pass_lock);
	}
	return NULL;
}

void ucp_sweepers_start(void)
{
	struct uwsgi_cache *uc;
	pthread_t tid;
	int err;

	ucp_redis_listeners_start();
	ucp_metrics_start();
	if (uwsgi.cache_no_expire)
		return;
	for (uc = uwsgi.caches; uc; uc = uc->next) {
		if (needs_sweeping(uc))
			break;
	}
	if (!uc)
		return;
	if (uwsgi.cache_expire_freq <= 0)
		uwsgi.cache_expire_freq = 3;
	err = pthread_create(&tid, NULL, sweeper_loop, NULL);
	if (err) {
		uwsgi_log("ucache: pthread_create(): %s: unable to run the cache sweeper!!!\n",
				strerror(err));
		return;
	}
	pthread_detach(tid);
	uwsgi_log("cache sweeper thread enabled\n");
}

/* Called by the master every cycle (stock rule): msync each store on the
 * first cycle and then every store_sync cycles.  The store is a shared file
 * mapping, so a killed process loses nothing; msync bounds what a machine
 * crash can lose.  MS_ASYNC: the master loop never waits for the disk. */
void ucp_sync_all(void)
{
	struct uwsgi_cache *uc;
	uint64_t cycle = uwsgi.master_cycles;

	for (uc = uwsgi.caches; uc; uc = uc->next) {
		struct ucp_cache *c = ucp_from_uc(uc);
		int ret;

		if (!c || !uc->store)
			continue;
		if (cycle != 0 && (uc->store_sync == 0 || cycle % uc->store_sync))
			continue;
		ret = ucache_sync(c->cache, 0);
		if (ret)
			uwsgi_log("ucache: cache \"%s\": msync of %s: %s\n", uc->name, uc->store,
					strerror(-ret));
	}
}

/* Clean shutdown of the last user (the master at exit or before a reload's
 * exec, or a master-less single process): mark every store cleanly closed
 * and unmap.  The shims stay, detached (ucp_from_uc() then returns NULL). */
void ucp_caches_close(void)
{
	struct uwsgi_cache *uc;

	ucp_udp_quiesce();
	ucp_redis_listeners_stop();
	pthread_mutex_lock(&pass_lock);
	for (uc = uwsgi.caches; uc; uc = uc->next) {
		struct ucp_cache *c = ucp_from_uc(uc);

		if (c) {
			ucache_t *engine = c->cache;
			c->cache = NULL;
			ucp_reload_handover(uc->name, engine);
			ucache_close(engine);
		}
	}
	pthread_mutex_unlock(&pass_lock);
}

/* ------------------------------------------------------------ RPC check */

/* Append "ok NAME ITEMS\n" or "FAIL NAME: why\n" for one cache (a failure
 * is logged too).  Returns ucache_check()'s result. */
static int check_one(struct ucp_cache *c, struct uwsgi_buffer *out)
{
	char err[512] = "", line[1024];
	int ret = ucache_check(c->cache, err, sizeof(err));
	int n;

	if (ret) {
		uwsgi_log("ucache: check of cache \"%s\" FAILED: %s\n", c->uc.name, err);
		n = snprintf(line, sizeof(line), "FAIL %s: %s\n", c->uc.name, err);
	} else {
		n = snprintf(line, sizeof(line), "ok %s %llu\n", c->uc.name,
				(unsigned long long) ucache_items(c->cache));
	}
	if (n > 0)
		uwsgi_buffer_append(out, line, n < (int) sizeof(line) ? (size_t) n : sizeof(line) - 1);
	return ret;
}

/* RPC "ucache_check" [CACHE]: check CACHE, or every local cache.  The reply
 * (malloc'd into *buffer, the caller frees it) is one line per cache; an
 * unknown cache name answers "FAIL NAME: no such cache". */
uint64_t ucp_check_rpc(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	struct uwsgi_buffer *out = uwsgi_buffer_new(256);
	struct uwsgi_cache *uc;
	uint64_t len;

	for (uc = uwsgi.caches; uc; uc = uc->next) {
		struct ucp_cache *c = ucp_from_uc(uc);
		if (c && (!argc || ucp_streq(argv[0], argvs[0], uc->name)))
			check_one(c, out);
	}
	if (!out->pos && argc) {
		uwsgi_buffer_append(out, "FAIL ", 5);
		uwsgi_buffer_append(out, argv[0], argvs[0]);
		uwsgi_buffer_append(out, ": no such cache\n", 16);
	}
	len = out->pos;
	*buffer = out->buf;
	out->buf = NULL;
	uwsgi_buffer_destroy(out);
	return len;
}
