/*
 * lifecycle.c - the master's side of the caches' life, after they are
 * built (options.c): its threads start (each near cache's Redis listener,
 * the metrics server, the sweeper), each master cycle msyncs the stores due (in place of
 * uwsgi_cache_sync_all: "flush", not "sync", which is the start-up import
 * of peers/sync.c), and the last user closes every store cleanly.
 */
#include "ucp.h"
#include "takeover/takeover.h"
#include "peers/peers.h"
#include "nearcache/nearcache.h"
#include "serve/serve.h"

void ucp_master_threads_start(void)
{
	ucp_redis_listeners_start();
	ucp_metrics_start();
	ucp_sweeper_start();
}

/* Called by the master every cycle (stock rule): msync each store on the
 * first cycle and then every store_sync cycles.  The store is a shared file
 * mapping, so a killed process loses nothing; msync bounds what a machine
 * crash can lose.  MS_ASYNC: the master loop never waits for the disk. */
void ucp_flush_all(void)
{
	uint64_t cycle = uwsgi.master_cycles;
	struct ucp_cache *c;

	for (c = ucp_first(); c; c = ucp_next(c)) {
		struct uwsgi_cache *uc = &c->uc;
		int ret;

		if (!uc->store)
			continue;
		if (cycle != 0 && (uc->store_sync == 0 || cycle % uc->store_sync))
			continue;
		ret = ucache_msync(c->cache, 0);
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
	struct ucp_cache *c, *next;

	ucp_udp_quiesce();
	ucp_redis_listeners_stop();
	ucp_caches_hold();
	for (c = ucp_first(); c; c = next) {
		ucache_t *engine = c->cache;

		next = ucp_next(c);   /* before the detach: c is no longer live after it */
		c->cache = NULL;
		ucp_reload_handover(c->uc.name, engine);
		ucache_close(engine);
	}
	ucp_caches_release();
}
