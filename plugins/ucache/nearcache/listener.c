/*
 * listener.c - the invalidation listener of each near cache: one
 * master thread per cache with redis=, started with the sweeper
 * (ucp_master_threads_start), every signal blocked.
 *
 * hiredis 0.14 speaks RESP2, where a connection cannot both receive
 * invalidations and run commands, so the listener holds two:
 *
 *   sub  CLIENT ID, then SUBSCRIBE __redis__:invalidate: receives the
 *        invalidation messages (an array of Redis keys, or nil when Redis
 *        flushed a database), and the listener's keepalive PINGs;
 *   trk  CLIENT TRACKING on REDIRECT <sub's id> BCAST PREFIX <prefix>:
 *        Redis tracks nothing per key in BCAST mode; every change of a key
 *        under the prefix, by any client (ucache on any machine, redis-cli,
 *        expiry, eviction), is sent to sub.  It must stay open: tracking
 *        ends with it.  It PINGs every redis_keepalive ms (1 s by default)
 *        so that a server's idle "timeout" (redis-server --timeout 2, most
 *        managed Redis and proxies) never closes it: the loss would flush
 *        L1 every time.  sub needs no such care for the timeout (Redis
 *        exempts subscribers) and PINGs every PING_MS anyway, for the
 *        staleness bound below.
 *
 * Each key of a message, less the prefix, is removed from L1 right after
 * a bump of its slot epoch (redis.h: the fill race).  A nil message flushes
 * L1.  So does every (re)connection, once tracking is on: what changed
 * while nobody listened cannot be known.  A lost stream (either connection
 * closed or in error, or a PING on either not answered within
 * max(redis_timeout, 100 ms)) sets live = 0 and, with redis_offline=miss (the default),
 * flushes L1; with redis_offline=stale L1 is kept and served, unfilled,
 * until the stream is back.  Reconnection backs off from 100 ms to 2 s.
 *
 * The staleness bound: Redis replies to a PING after the invalidations it
 * queued before it (one ordered stream; BCAST messages are queued by the
 * event loop iteration that made the write).  A PING goes out every
 * PING_MS, so the invalidation of a write acknowledged at t is processed
 * by t + PING_MS + max(redis_timeout, 100 ms), or L1 is flushed by then;
 * on a healthy stream it is the delivery time (measured in bench/run.py
 * 'redis': redis_invalidation_p99_ms).
 */
#include "ucp.h"
#include "nearcache/nearcache.h"
#include "nearcache/redis.h"

#include <poll.h>
#include <pthread.h>

#define PING_MS 100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

/* Held by a listener around each change it makes to an L1, and taken for
 * good by ucp_redis_listeners_stop() before the master unmaps the caches
 * (exit, reload): a listener that finds stopping set exits instead. */
static pthread_mutex_t l1_lock = PTHREAD_MUTEX_INITIALIZER;
static int stopping;

static void l1_enter(void)
{
	pthread_mutex_lock(&l1_lock);
	if (stopping) {
		pthread_mutex_unlock(&l1_lock);
		pthread_exit(NULL);
	}
}

static void l1_leave(void)
{
	pthread_mutex_unlock(&l1_lock);
}

void ucp_redis_listeners_stop(void)
{
	pthread_mutex_lock(&l1_lock);
	stopping = 1;
	pthread_mutex_unlock(&l1_lock);
}

struct listener {
	struct ucp_cache *c;
	redisContext *sub, *trk;
	uint64_t ping_sent;      /* monotonic ms of sub's unanswered PING, 0: none */
	uint64_t next_ping;
	uint64_t trk_ping_sent;  /* the same for trk */
	uint64_t trk_next_ping;
	uint64_t dead_ms;
	char why[256];
};

static void close_streams(struct listener *l)
{
	if (l->sub)
		redisFree(l->sub);
	if (l->trk)
		redisFree(l->trk);
	l->sub = l->trk = NULL;
}

/* A command on a connection being set up; the reply, or NULL (why set). */
static redisReply *setup(struct listener *l, redisContext *ctx, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;

	va_start(ap, fmt);
	rep = redisvCommand(ctx, fmt, ap);
	va_end(ap);
	if (!rep) {
		snprintf(l->why, sizeof(l->why), "%s", ctx->errstr);
		return NULL;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(l->why, sizeof(l->why), "%s", rep->str);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

static int open_streams(struct listener *l)
{
	struct ucp_redis *r = l->c->redis;
	redisReply *rep;
	long long id;

	l->sub = ucp_redis_connect(r, l->why, sizeof(l->why));
	if (!l->sub)
		return -1;
	if (!(rep = setup(l, l->sub, "CLIENT ID")))
		return -1;
	id = rep->integer;
	freeReplyObject(rep);
	if (!(rep = setup(l, l->sub, "SUBSCRIBE __redis__:invalidate")))
		return -1;
	freeReplyObject(rep);
	l->trk = ucp_redis_connect(r, l->why, sizeof(l->why));
	if (!l->trk)
		return -1;
	if (!(rep = setup(l, l->trk, "CLIENT TRACKING on REDIRECT %lld BCAST PREFIX %b", id,
			r->prefix, r->prefix_len)))
		return -1;
	freeReplyObject(rep);
	l->ping_sent = l->trk_ping_sent = 0;
	l->next_ping = ucp_mono_ms() + PING_MS;
	l->trk_next_ping = ucp_mono_ms() + r->keepalive_ms;
	return 0;
}

static void went_up(struct listener *l, int was_down_logged)
{
	struct ucp_cache *c = l->c;

	l1_enter();
	ucp_redis_flush_l1(c);
	atomic_store(&c->redis->sh->live, 1);
	l1_leave();
	if (was_down_logged)
		uwsgi_log("ucache: cache \"%s\": Redis %s: invalidation stream back, near cache "
				"flushed\n", c->uc.name, c->redis->shown);
}

static void went_down(struct listener *l)
{
	struct ucp_cache *c = l->c;
	int stale = c->redis->offline == UCACHE_REDIS_OFFLINE_STALE;

	if (atomic_exchange(&c->redis->sh->live, 0)) {
		if (stale) {  /* keep L1, but no fill in flight may land */
			atomic_fetch_add(&c->redis->sh->epoch, 1);
		} else {      /* the flush moves the epoch too */
			l1_enter();
			ucp_redis_flush_l1(c);
			l1_leave();
		}
		uwsgi_log("ucache: cache \"%s\": Redis %s: invalidation stream lost (%s): %s\n",
				c->uc.name, c->redis->shown, l->why, stale
				? "serving what the near cache holds until it is back"
				: "near cache flushed, reads go to Redis until it is back");
		return;
	}
	atomic_fetch_add_explicit(&c->redis->sh->errors, 1, memory_order_relaxed);
	ucp_redis_log(c, "invalidation stream: %s (retrying)", l->why);
}

/* Remove the keys of one invalidation message from L1. */
static void invalidate(struct listener *l, redisReply *keys)
{
	struct ucp_cache *c = l->c;
	struct ucp_redis *r = c->redis;
	size_t i;

	l1_enter();
	if (keys->type != REDIS_REPLY_ARRAY) {
		/* nil: FLUSHDB / FLUSHALL (or anything we cannot read) */
		ucp_redis_flush_l1(c);
		l1_leave();
		return;
	}
	for (i = 0; i < keys->elements; i++) {
		redisReply *k = keys->element[i];

		if (k->type != REDIS_REPLY_STRING || k->len <= r->prefix_len ||
				memcmp(k->str, r->prefix, r->prefix_len))
			continue;
		if (ucp_redis_forget(c, k->str + r->prefix_len, k->len - r->prefix_len) == 0)
			atomic_fetch_add_explicit(&r->sh->invalidations, 1, memory_order_relaxed);
	}
	l1_leave();
}

/* One push on sub: ["message", channel, payload] or ["pong", ""]. */
static void handle(struct listener *l, redisReply *rep)
{
	redisReply **e = rep->element;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || e[0]->type != REDIS_REPLY_STRING)
		return;
	if (!strcmp(e[0]->str, "message") && rep->elements == 3)
		invalidate(l, e[2]);
	else if (!strcmp(e[0]->str, "pong"))
		l->ping_sent = 0;
}

static int read_sub(struct listener *l)
{
	redisReply *rep;

	if (redisBufferRead(l->sub) != REDIS_OK) {
		snprintf(l->why, sizeof(l->why), "invalidation connection: %s",
				l->sub->errstr[0] ? l->sub->errstr : "closed");
		return -1;
	}
	for (;;) {
		rep = NULL;
		if (redisGetReplyFromReader(l->sub, (void **) &rep) != REDIS_OK) {
			snprintf(l->why, sizeof(l->why), "protocol error");
			return -1;
		}
		if (!rep)
			return 0;
		handle(l, rep);
		freeReplyObject(rep);
	}
}

/* Queue and write a PING on ctx; -1 (why set) if it cannot be written. */
static int ping(struct listener *l, redisContext *ctx, const char *which)
{
	int done = 0;

	if (redisAppendCommand(ctx, "PING") != REDIS_OK)
		goto fail;
	while (!done) {
		if (redisBufferWrite(ctx, &done) != REDIS_OK)
			goto fail;
	}
	return 0;
fail:
	snprintf(l->why, sizeof(l->why), "PING on the %s connection: %s", which, ctx->errstr);
	return -1;
}

/* Replies on trk: only the PONGs of its keepalive; EOF ends the stream. */
static int read_trk(struct listener *l)
{
	redisReply *rep;

	if (redisBufferRead(l->trk) != REDIS_OK) {
		snprintf(l->why, sizeof(l->why), "tracking connection %s",
				l->trk->errstr[0] ? l->trk->errstr : "closed");
		return -1;
	}
	for (;;) {
		rep = NULL;
		if (redisGetReplyFromReader(l->trk, (void **) &rep) != REDIS_OK) {
			snprintf(l->why, sizeof(l->why), "protocol error on the tracking connection");
			return -1;
		}
		if (!rep)
			return 0;
		if (rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "PONG"))
			l->trk_ping_sent = 0;
		freeReplyObject(rep);
	}
}

/* The PINGs due now, and the check that the last ones were answered
 * within dead_ms; -1 (why set) when the stream is to be given up. */
static int keepalive(struct listener *l, uint64_t now)
{
	if ((l->ping_sent && now - l->ping_sent > l->dead_ms) ||
			(l->trk_ping_sent && now - l->trk_ping_sent > l->dead_ms)) {
		snprintf(l->why, sizeof(l->why), "no answer to PING on the %s connection within "
				"%llu ms", l->ping_sent ? "invalidation" : "tracking",
				(unsigned long long) l->dead_ms);
		return -1;
	}
	if (!l->ping_sent && now >= l->next_ping) {
		if (ping(l, l->sub, "invalidation"))
			return -1;
		l->ping_sent = now;
		l->next_ping = now + PING_MS;
	}
	if (!l->trk_ping_sent && now >= l->trk_next_ping) {
		if (ping(l, l->trk, "tracking"))
			return -1;
		l->trk_ping_sent = now;
		l->trk_next_ping = now + l->c->redis->keepalive_ms;
	}
	return 0;
}

/* Serve the streams until one is lost (why says how). */
static void serve(struct listener *l)
{
	struct pollfd pfd[2] = { { .fd = l->sub->fd, .events = POLLIN },
				 { .fd = l->trk->fd, .events = POLLIN } };

	for (;;) {
		if (keepalive(l, ucp_mono_ms()))
			return;
		if (poll(pfd, 2, 20) < 0 && errno != EINTR) {
			snprintf(l->why, sizeof(l->why), "poll: %s", strerror(errno));
			return;
		}
		if (pfd[1].revents && read_trk(l))
			return;
		if (pfd[0].revents && read_sub(l))
			return;
	}
}

static void *listener_loop(void *arg)
{
	struct listener l = { .c = arg };
	unsigned backoff = BACKOFF_MIN_MS;
	int down_logged = 0;

	l.dead_ms = l.c->redis->timeout_ms > 100 ? l.c->redis->timeout_ms : 100;
	for (;;) {
		if (open_streams(&l)) {
			went_down(&l);
			down_logged = 1;
			close_streams(&l);
			usleep(backoff * 1000);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		went_up(&l, down_logged);
		backoff = BACKOFF_MIN_MS;
		serve(&l);
		went_down(&l);
		down_logged = 1;
		close_streams(&l);
	}
	return NULL;
}

void ucp_redis_listeners_start(void)
{
	struct ucp_cache *c;

	for (c = ucp_first(); c; c = ucp_next(c)) {
		if (c->redis)
			ucp_master_thread("the Redis listener", listener_loop, c);
	}
}
