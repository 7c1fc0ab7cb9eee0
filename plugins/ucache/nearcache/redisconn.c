/*
 * redisconn.c - the near caches' Redis client: one connection per thread
 * and per cache, and the one way a command is sent (ucp_redis_command).
 *
 * Connections are per thread and per cache, opened lazily on first use in
 * each process (one inherited across fork is never used: its pid differs),
 * with redis_timeout on connect, send and receive: a hung Redis makes a
 * request wait at most redis_timeout for its reply.  A connection found
 * closed (Redis restarted, its idle timeout, CLIENT KILL) is replaced
 * before the command is written ("Dead connections" below).  After a
 * failed connect the thread does not try again for RETRY_MS (requests
 * fail at once meanwhile), so a dead Redis costs a request no wait at all
 * most of the time; a command that failed on a connection that was up
 * (no reply in time, EOF) gates nothing: the next request tries a new
 * connection, so writes are acknowledged again as soon as Redis answers.
 * Error lines are logged at most once a second for the whole instance.
 */
#include "ucp.h"
#include "nearcache/redis.h"

#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>

#define RETRY_MS 100

struct tl_conn {
	redisContext *ctx;
	pid_t pid;
	uint64_t retry_ms;       /* no new connection before (monotonic ms) */
	uint64_t used_ms;        /* the last reply (monotonic ms) */
};

static __thread struct tl_conn tl_conns[UCP_REDIS_MAX];

uint64_t ucp_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

void ucp_redis_log(struct ucp_cache *c, const char *fmt, ...)
{
	uint64_t dropped = 0;
	char line[512];
	va_list ap;

	if (!ucp_ratelimit_pass(&c->redis->sh->log_rl, &dropped))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (dropped)
		uwsgi_log("ucache: cache \"%s\": Redis %s: %s (and %llu more since the last line)\n",
				c->uc.name, c->redis->shown, line, (unsigned long long) dropped);
	else
		uwsgi_log("ucache: cache \"%s\": Redis %s: %s\n", c->uc.name, c->redis->shown, line);
}

/* ---------------------------------------------------------- connection */

static int setup_command(redisContext *ctx, char *why, size_t len, int argc, const char **argv)
{
	redisReply *rep = redisCommandArgv(ctx, argc, argv, NULL);
	int ok = rep && rep->type != REDIS_REPLY_ERROR;

	if (!rep)
		snprintf(why, len, "%s: %s", argv[0], ctx->errstr);
	else if (!ok)
		snprintf(why, len, "%s: %s", argv[0], rep->str);
	if (rep)
		freeReplyObject(rep);
	return ok ? 0 : -1;
}

redisContext *ucp_redis_connect(const struct ucp_redis *r, char *why, size_t len)
{
	redisContext *ctx = r->addr.path[0] ? redisConnectUnixWithTimeout(r->addr.path, r->tv)
		: redisConnectWithTimeout(r->addr.host, (int) r->addr.port, r->tv);
	char db[16];

	if (!ctx) {
		snprintf(why, len, "out of memory");
		return NULL;
	}
	if (ctx->err) {
		snprintf(why, len, "connect: %s", ctx->errstr);
		goto fail;
	}
	if (redisSetTimeout(ctx, r->tv) != REDIS_OK) {
		snprintf(why, len, "cannot set the socket timeout");
		goto fail;
	}
	if (!r->addr.path[0] && redisEnableKeepAlive(ctx) != REDIS_OK) {
		snprintf(why, len, "cannot enable TCP keepalive: %s", ctx->errstr);
		goto fail;
	}
	if (r->password) {
		const char *auth[3] = { "AUTH", r->addr.user, r->password };
		if (r->addr.user[0] ? setup_command(ctx, why, len, 3, auth)
				: (auth[1] = r->password, setup_command(ctx, why, len, 2, auth)))
			goto fail;
	}
	if (r->addr.db) {
		const char *sel[2] = { "SELECT", db };
		snprintf(db, sizeof(db), "%u", r->addr.db);
		if (setup_command(ctx, why, len, 2, sel))
			goto fail;
	}
	return ctx;
fail:
	redisFree(ctx);
	return NULL;
}

/*
 * Dead connections and what may be sent again.  A connection dies under
 * us when Redis restarts (kill -9, SHUTDOWN), closes idle clients (its
 * "timeout", common on managed Redis and proxies) or is told to
 * (CLIENT KILL).  Redis closes it while we are not looking, so:
 *
 *   before a command, a zero-timeout poll of the socket (as redis-py's
 *   pool does before handing a connection out): a reply is always read
 *   before the next command is written, so an idle connection that is
 *   readable was closed by its peer (EOF) or is out of step; it is
 *   replaced at once and the command goes on the new one, nothing of it
 *   having reached the old server.
 *
 *   a connection idle for redis_keepalive ms or more is PINGed before the
 *   command (redis-py's health_check_interval): it refreshes Redis' idle
 *   clock, so the command cannot race the server's timeout, and a PING is
 *   safe to send again.
 *
 *   a command whose connection breaks (EOF, reset) after it was written
 *   may or may not have run.  It is sent once more, on a new connection,
 *   only if running it twice leaves what running it once leaves
 *   (UCP_RESEND_SAFE): a read (FETCH_LUA), SET without NX, DEL (the state
 *   is the same; its count may say 0 for a key the first send deleted),
 *   SCAN, UNLINK, PING, and the tag scripts (a second invalidation only
 *   makes entries staler).  Never (UCP_RESEND_NEVER): SET NX (a second
 *   send would fail on the key the first one wrote) and math (HINCRBY
 *   twice adds twice): they fail, as any write Redis did not acknowledge.
 *   A command that broke before any byte of it left is sent again in
 *   every case.
 *
 *   no reply within redis_timeout is never a reason to send again: Redis
 *   is slow or stopped (DEBUG SLEEP, SIGSTOP), a resend would only double
 *   the wait, and the request's latency stays bounded by redis_timeout.
 *
 * TCP keepalive is on as well (hiredis' 15 s), for a peer that vanished
 * without closing anything.
 */
enum outcome { SENT, UNSENT, LOST, SLOW, BROKEN };

/* Forget this thread's connection; after a failed connect (retry) no new
 * one is tried for RETRY_MS. */
static void drop(struct tl_conn *t, int retry)
{
	if (t->ctx)
		redisFree(t->ctx);
	t->ctx = NULL;
	t->retry_ms = retry ? ucp_mono_ms() + RETRY_MS : 0;
}

static void failed(struct ucp_cache *c, const char *what, const char *why)
{
	atomic_fetch_add_explicit(&c->redis->sh->errors, 1, memory_order_relaxed);
	ucp_redis_log(c, "%s: %s (reads miss and writes fail until it answers)", what, why);
}

/* Closed by the peer, or holding bytes nobody asked for. */
static int peer_closed(const redisContext *ctx)
{
	struct pollfd p = { .fd = ctx->fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) > 0;
}

/* Write cmd whole; UNSENT if no byte of it left, LOST if some did, SLOW
 * if Redis stopped reading. */
static enum outcome send_all(redisContext *ctx, const char *cmd, size_t len, char *why, size_t wlen)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(ctx->fd, cmd + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* SO_SNDTIMEO expired: Redis reads nothing, as for no reply */
			snprintf(why, wlen, "send blocked for redis_timeout");
			return SLOW;
		}
		if (n <= 0) {
			snprintf(why, wlen, "send: %s", n < 0 ? strerror(errno) : "nothing written");
			return off ? LOST : UNSENT;
		}
		off += (size_t) n;
	}
	return SENT;
}

/* One command and its reply on ctx (*rep, also an error reply), or the
 * outcome that says what became of it, with why. */
static enum outcome exchange(struct ucp_cache *c, redisContext *ctx, const char *cmd, size_t len,
		redisReply **rep, char *why, size_t wlen)
{
	enum outcome o = send_all(ctx, cmd, len, why, wlen);
	void *got = NULL;

	if (o != SENT)
		return o;
	if (redisGetReply(ctx, &got) == REDIS_OK && got) {
		*rep = got;
		return SENT;
	}
	/* SO_RCVTIMEO expired: hiredis says "Resource temporarily unavailable" */
	if (ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		snprintf(why, wlen, "no reply within redis_timeout (%llu ms)",
				(unsigned long long) c->redis->timeout_ms);
		return SLOW;
	}
	snprintf(why, wlen, "%s", ctx->errstr[0] ? ctx->errstr : "no reply");
	return ctx->err == REDIS_ERR_EOF || (ctx->err == REDIS_ERR_IO &&
			(errno == ECONNRESET || errno == EPIPE)) ? LOST : BROKEN;
}

/* A new connection for t, or NULL (logged, counted, RETRY_MS set). */
static redisContext *reconnect(struct ucp_cache *c, struct tl_conn *t)
{
	char why[256];

	t->ctx = ucp_redis_connect(c->redis, why, sizeof(why));
	if (!t->ctx) {
		drop(t, 1);
		failed(c, "connection", why);
		return NULL;
	}
	t->pid = uwsgi.mypid;
	t->used_ms = ucp_mono_ms();
	return t->ctx;
}

/* t's connection if it is still good: not closed by the peer, and
 * answering a PING if idle for redis_keepalive.  NULL with *slow set when
 * the PING timed out (Redis is slow: no new connection either). */
static redisContext *still_good(struct ucp_cache *c, struct tl_conn *t, int *slow)
{
	static const char ping[] = "*1\r\n$4\r\nPING\r\n";
	redisReply *rep = NULL;
	char why[160];
	enum outcome o;

	if (peer_closed(t->ctx))
		return NULL;
	if (ucp_mono_ms() - t->used_ms < c->redis->keepalive_ms)
		return t->ctx;
	o = exchange(c, t->ctx, ping, sizeof(ping) - 1, &rep, why, sizeof(why));
	if (rep)
		freeReplyObject(rep);
	*slow = o == SLOW;
	if (o != SENT && o != LOST && o != UNSENT)
		failed(c, "PING", why);
	return o == SENT ? t->ctx : NULL;
}

/* This thread's connection for c, checked (above), replaced when found
 * dead; NULL if Redis is unreachable or slow, or within RETRY_MS of a
 * failure. */
static redisContext *conn(struct ucp_cache *c)
{
	struct tl_conn *t = &tl_conns[c->redis->index];
	int slow = 0;

	if (t->ctx && t->pid != uwsgi.mypid) {
		/* inherited across fork: the parent owns that stream */
		redisFree(t->ctx);
		t->ctx = NULL;
	}
	if (t->ctx) {
		if (still_good(c, t, &slow))
			return t->ctx;
		drop(t, 0);
		if (slow)
			return NULL;
		atomic_fetch_add_explicit(&c->redis->sh->reconnects, 1, memory_order_relaxed);
		return reconnect(c, t);
	}
	if (ucp_mono_ms() < t->retry_ms) {
		atomic_fetch_add_explicit(&c->redis->sh->errors, 1, memory_order_relaxed);
		return NULL;
	}
	return reconnect(c, t);
}

/* One command; NULL on any failure (logged, counted; a broken or timed
 * out stream is dropped: a late reply would answer the next command).
 * Sent a second time, on a new connection, as "Dead connections" says. */
redisReply *ucp_redis_command(struct ucp_cache *c, enum ucp_resend resend, int argc,
		const char **argv, const size_t *lens)
{
	struct tl_conn *t = &tl_conns[c->redis->index];
	redisReply *rep = NULL;
	char *cmd, why[160];
	enum outcome o = BROKEN;
	long long len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	int tries;

	if (len < 0) {
		failed(c, argv[0], "out of memory");
		return NULL;
	}
	for (tries = 0;; tries++) {
		redisContext *ctx = conn(c);

		if (!ctx)
			break;  /* logged and counted by conn() */
		o = exchange(c, ctx, cmd, (size_t) len, &rep, why, sizeof(why));
		if (o == SENT) {
			t->used_ms = ucp_mono_ms();
			break;
		}
		drop(t, 0);
		if (tries || (o != UNSENT && !(o == LOST && resend == UCP_RESEND_SAFE))) {
			failed(c, argv[0], why);
			break;
		}
		atomic_fetch_add_explicit(&c->redis->sh->reconnects, 1, memory_order_relaxed);
	}
	redisFreeCommand(cmd);
	if (o != SENT)
		return NULL;
	if (rep->type == REDIS_REPLY_ERROR) {
		failed(c, argv[0], rep->str);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}
