/*
 * rpc.c - the engine's atomic operations as uWSGI RPC functions, so that
 * every language reaches them the same way: uwsgi.call('ucache_add', ...)
 * from Python, uwsgi::call from Perl, uwsgi.call from Lua, UWSGI.call from
 * Ruby, and uwsgi_rpc over the network (modifier1 173), where their writes
 * obey --ucache-readonly / -readonly-socket / -write-socket.
 *
 * Every argument is a byte string: the first is the cache name ("" = the
 * default cache; local caches only: a remote node's RPC functions are
 * called on that node), numbers are decimal.  Every reply starts with one
 * status byte (rpcreply.c has the convention and the error codes).
 * An argument is at most 65535 bytes (uWSGI's RPC limit), so values
 * through RPC are too; larger ones go through uwsgi.cache_update.
 *
 * Writes replicate like the magic API's (writepath.c): with nodes=, each changed
 * key's item (value and absolute expiry) or its deletion is sent to the
 * peers; single-flight locks and freshness markers stay local (a lock
 * names a local pid).  A redis= near cache is refused (ENOTSUP): its items
 * live in Redis, which these operations do not reach.
 */
#include "ucp.h"
#include "writepath.h"
#include "serve/serve.h"
#include "wire/packet.h"

static uint64_t reply_num(char **buffer, char status, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", (long long) v);

	return ucp_rpc_reply(buffer, status, num, (size_t) n);
}

/* ------------------------------------------------------------- arguments */

struct rpc_call {
	const char *fn;
	uint8_t argc;
	char **argv;
	uint16_t *argvs;
	struct ucp_cache *c;
	int val_arg;        /* the value's argument (for a too-large write's log line), or 0 */
};

/* What an unknown cache name gets: the name and the caches there are (a
 * LOCATION typo must say so, on every operation). */
static void no_such_cache(const struct rpc_call *r, char *out, size_t len)
{
	char names[256];
	int n = r->argc ? (r->argvs[0] > 64 ? 64 : r->argvs[0]) : 0;

	ucp_cache_names(names, sizeof(names));
	snprintf(out, len, "no such local cache \"%.*s\" (this instance has %s)", n, n ? r->argv[0] : "",
			names);
}

/* An E reply for rc (rpcreply.c's codes); an unknown cache names the caches
 * there are, a write refused for its size is logged. */
static uint64_t reply_err(char **buffer, const struct rpc_call *r, int rc)
{
	char nodev[400];

	if (rc == -ENODEV)
		no_such_cache(r, nodev, sizeof(nodev));
	if (rc == -E2BIG && r->c && r->argc > 1)
		ucp_log_too_large(r->c, r->argvs[1], r->val_arg && r->val_arg < r->argc ? r->argvs[r->val_arg] : 0);
	return ucp_rpc_error_why(buffer, r->fn, rc, rc == -ENODEV ? nodev : NULL);
}

static int arg_u64(struct rpc_call *r, int i, uint64_t *out)
{
	return ucp_parse_u64(r->argv[i], r->argvs[i], out) ? -EINVAL : 0;
}

static int arg_i64(struct rpc_call *r, int i, int64_t *out)
{
	uint64_t u;
	int neg = r->argvs[i] > 0 && r->argv[i][0] == '-';

	if (ucp_parse_u64(r->argv[i] + neg, r->argvs[i] - neg, &u) || u > (uint64_t) INT64_MAX + neg)
		return -EINVAL;
	*out = neg ? (int64_t) (0 - u) : (int64_t) u;
	return 0;
}

static int arg_hex(struct rpc_call *r, int i, uint64_t *out)
{
	char tmp[17];

	if (r->argvs[i] == 0 || r->argvs[i] > 16)
		return -EINVAL;
	memcpy(tmp, r->argv[i], r->argvs[i]);
	tmp[r->argvs[i]] = 0;
	*out = strtoull(tmp, NULL, 16);
	return strspn(tmp, "0123456789abcdefABCDEF") == r->argvs[i] ? 0 : -EINVAL;
}

/* The network's write protection (server.c's rules) for a write over
 * modifier1 173; a local uwsgi.call is the app's own business. */
static int write_allowed(void)
{
	struct wsgi_request *wsgi_req = uwsgi.mywid > 0 && uwsgi.current_wsgi_req ? current_wsgi_req() : NULL;

	return !(wsgi_req && wsgi_req->uh && wsgi_req->uh->modifier1 == 173 && ucp_write_refused(wsgi_req));
}

/* Check argc (min..max) and resolve the cache (any: near caches too);
 * 0 or -errno. */
static int prepare_any(struct rpc_call *r, uint8_t min, uint8_t max, int writes)
{
	if (r->argc < min || r->argc > max)
		return -EINVAL;
	if (writes && !write_allowed())
		return -EROFS;
	r->c = ucp_lookup(r->argv[0], r->argvs[0]);
	return r->c ? 0 : -ENODEV;
}

/* prepare_any for the engine's operations, which a near cache refuses. */
static int prepare(struct rpc_call *r, uint8_t min, uint8_t max, int writes)
{
	int rc = prepare_any(r, min, max, writes);

	return !rc && r->c->redis ? -ENOTSUP : rc;
}

#define CALL(name) struct rpc_call r = { name, argc, argv, argvs, NULL, 0 }
#define KEY(i) r.argv[i], r.argvs[i]

/* Status for rc of a write: Y, N for the "not done" codes (NO_N: none),
 * else an error. */
#define NO_N 1
static uint64_t reply_rc(struct rpc_call *r, char **buffer, int rc, int no1, int no2)
{
	if (rc == 0)
		return ucp_rpc_reply(buffer, 'Y', NULL, 0);
	if (rc == no1 || rc == no2)
		return ucp_rpc_reply(buffer, 'N', NULL, 0);
	return reply_err(buffer, r, rc);
}

/* ------------------------------------------------------------ functions */

/* ucache_add CACHE KEY VALUE [TIMEOUT] -> Y | N (exists) */
static uint64_t rpc_add(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_add");
	uint64_t t = 0;
	int rc = prepare(&r, 3, 4, 1);

	r.val_arg = 2;

	if (!rc && argc == 4)
		rc = arg_u64(&r, 3, &t);
	if (!rc)
		rc = ucp_wrote(r.c, UCP_OP_SET, KEY(1), ucache_set(r.c->cache, KEY(1), KEY(2), t, 0));
	return reply_rc(&r, buffer, rc, -EEXIST, -EEXIST);
}

/* ucache_gets CACHE KEY -> Y VERSION(16 hex) VALUE | N */
static uint64_t rpc_gets(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_gets");
	struct uwsgi_buffer *ub;
	uint64_t ver = 0;
	size_t len = 0;
	char *v, hex[18];
	int rc = prepare(&r, 2, 2, 0);

	if (rc)
		return reply_err(buffer, &r, rc);
	if (!(v = ucache_gets(r.c->cache, KEY(1), &len, &ver, NULL)))
		return errno == ENOENT ? ucp_rpc_reply(buffer, 'N', NULL, 0) : reply_err(buffer, &r, -errno);
	snprintf(hex, sizeof(hex), "Y%016llx", (unsigned long long) ver);
	ub = uwsgi_buffer_new(len + 17);
	uwsgi_buffer_append(ub, hex, 17);
	uwsgi_buffer_append(ub, v, len);
	free(v);
	return ucp_rpc_reply_buffer(ub, buffer);
}

/* ucache_cas CACHE KEY VERSION VALUE [TIMEOUT] -> Y | N (changed, or
 * exists for VERSION 0).  Without TIMEOUT the item keeps its expiry. */
static uint64_t rpc_cas(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_cas");
	uint64_t ver = 0, t = 0;
	int rc = prepare(&r, 4, 5, 1);

	r.val_arg = 3;

	if (!rc)
		rc = arg_hex(&r, 2, &ver);
	if (!rc && argc == 5)
		rc = arg_u64(&r, 4, &t);
	if (!rc)
		rc = ucp_wrote(r.c, UCP_OP_SET, KEY(1), ucache_cas(r.c->cache, KEY(1), KEY(3), t, argc == 5 ? 0 : UCACHE_CAS_KEEP_TTL, ver));
	return reply_rc(&r, buffer, rc, -ESTALE, -EEXIST);
}

/* ucache_ttl CACHE KEY -> Y SECONDS (-1: never) | N */
static uint64_t rpc_ttl(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_ttl");
	int64_t ttl = 0;
	int rc = prepare(&r, 2, 2, 0);

	if (!rc)
		rc = ucache_ttl(r.c->cache, KEY(1), &ttl);
	return rc ? reply_rc(&r, buffer, rc, -ENOENT, -ENOENT) : reply_num(buffer, 'Y', ttl);
}

/* ucache_touch CACHE KEY TIMEOUT -> Y | N (missing) */
static uint64_t rpc_touch(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_touch");
	uint64_t t = 0;
	int rc = prepare(&r, 3, 3, 1);

	if (!rc)
		rc = arg_u64(&r, 2, &t);
	if (!rc)
		rc = ucp_wrote(r.c, UCP_OP_SET, KEY(1), ucache_touch(r.c->cache, KEY(1), t));
	return reply_rc(&r, buffer, rc, -ENOENT, -ENOENT);
}

/* ucache_update CACHE KEY VALUE -> Y | N (missing); keeps the TTL */
static uint64_t rpc_update(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_update");
	int rc = prepare(&r, 3, 3, 1);

	r.val_arg = 2;

	if (!rc)
		rc = ucp_wrote(r.c, UCP_OP_SET, KEY(1), ucache_replace(r.c->cache, KEY(1), KEY(2)));
	return reply_rc(&r, buffer, rc, -ENOENT, -ENOENT);
}

/* ucache_incr CACHE KEY DELTA [INITIAL [TIMEOUT]] -> Y NEWVALUE | N
 * (missing and no INITIAL) | EINVAL (not an 8-byte number) | ERANGE (the
 * sum leaves int64: nothing written) */
static uint64_t rpc_incr(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_incr");
	int64_t delta = 0, initial = 0, res = 0;
	uint64_t t = 0;
	int rc = prepare(&r, 3, 5, 1);

	if (!rc)
		rc = arg_i64(&r, 2, &delta);
	if (!rc && argc >= 4)
		rc = arg_i64(&r, 3, &initial);
	if (!rc && argc == 5)
		rc = arg_u64(&r, 4, &t);
	if (!rc)
		rc = ucp_wrote(r.c, UCP_OP_SET, KEY(1), ucache_math_ex(r.c->cache, KEY(1), UCACHE_MATH_INC, delta, initial, t,
				    argc >= 4 ? 0 : UCACHE_MATH_EXISTING, &res));
	return rc ? reply_rc(&r, buffer, rc, -ENOENT, -ENOENT) : reply_num(buffer, 'Y', res);
}

/* ucache_get_many CACHE KEY... -> Y then per key "-" (missing) or LEN:BYTES */
static uint64_t rpc_get_many(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_get_many");
	struct uwsgi_buffer *ub;
	int i, rc = prepare(&r, 1, 255, 0);

	if (rc)
		return reply_err(buffer, &r, rc);
	ub = uwsgi_buffer_new(256);
	uwsgi_buffer_append(ub, "Y", 1);
	for (i = 1; i < argc; i++) {
		size_t len = 0;
		char *v = ucache_get_alloc(r.c->cache, KEY(i), &len, NULL), num[24];

		if (!v) {
			uwsgi_buffer_append(ub, "-", 1);
			continue;
		}
		uwsgi_buffer_append(ub, num, (size_t) snprintf(num, sizeof(num), "%zu:", len));
		uwsgi_buffer_append(ub, v, len);
		free(v);
	}
	return ucp_rpc_reply_buffer(ub, buffer);
}

/* Y then one '1' (done) or '0' (not) per key. */
static uint64_t reply_flags(char **buffer, const char *flags, int n)
{
	return ucp_rpc_reply(buffer, 'Y', flags, (size_t) n);
}

/* ucache_set_many CACHE TIMEOUT KEY VALUE [KEY VALUE...] -> Y then '1'
 * (stored) or '0' (refused: too large, full) per pair */
static uint64_t rpc_set_many(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_set_many");
	char flags[128];
	uint64_t t = 0;
	int i, rc = prepare(&r, 2, 255, 1);

	if (!rc && argc % 2)
		rc = -EINVAL;
	if (!rc)
		rc = arg_u64(&r, 1, &t);
	if (rc)
		return reply_err(buffer, &r, rc);
	for (i = 2; i < argc; i += 2) {
		rc = ucp_wrote(r.c, UCP_OP_SET, KEY(i), ucache_set(r.c->cache, KEY(i), KEY(i + 1), t, UCACHE_SET_UPDATE));
		flags[(i - 2) / 2] = rc ? '0' : '1';
		if (rc == -E2BIG)
			ucp_log_too_large(r.c, r.argvs[i], r.argvs[i + 1]);
	}
	return reply_flags(buffer, flags, (argc - 2) / 2);
}

/* ucache_delete_many CACHE KEY... -> Y then '1' (deleted) or '0' per key */
static uint64_t rpc_delete_many(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_delete_many");
	char flags[256];
	int i, rc = prepare(&r, 1, 255, 1);

	if (rc)
		return reply_err(buffer, &r, rc);
	for (i = 1; i < argc; i++) {
		flags[i - 1] = ucp_wrote(r.c, UCP_OP_DEL, KEY(i), ucache_del(r.c->cache, KEY(i))) ? '0' : '1';
	}
	return reply_flags(buffer, flags, argc - 1);
}

/* ucache_get_stale CACHE KEY -> Y VALUE (fresh) | S VALUE (stale) | N */
static uint64_t rpc_get_stale(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_get_stale");
	size_t len = 0;
	int stale = 0, rc = prepare(&r, 2, 2, 0);
	char *v;
	uint64_t n;

	if (rc)
		return reply_err(buffer, &r, rc);
	if (!(v = ucache_get_stale(r.c->cache, KEY(1), &len, &stale)))
		return errno == ENOENT ? ucp_rpc_reply(buffer, 'N', NULL, 0) : reply_err(buffer, &r, -errno);
	n = ucp_rpc_reply(buffer, stale ? 'S' : 'Y', v, len);
	free(v);
	return n;
}

/* The reply to a flight state: H VALUE (hit) | S VALUE (stale, another
 * caller refreshes) | C TOKEN (compute, then flight_end) | T (compute
 * without the lock) | W (busy: try again) -- or the error rc < 0. */
static uint64_t flight_reply(struct rpc_call *r, char **buffer, int rc, void *v, size_t len, uint64_t tok)
{
	static const char states[] = { 'H', 'S', 'C', 'T', 'W' };
	char hex[17];
	uint64_t n;

	if (rc < 0)
		return reply_err(buffer, r, rc);
	if (rc == UCACHE_FLIGHT_COMPUTE) {
		free(v);
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long) tok);
		return ucp_rpc_reply(buffer, 'C', hex, 16);
	}
	n = ucp_rpc_reply(buffer, states[rc], v, rc == UCACHE_FLIGHT_HIT || rc == UCACHE_FLIGHT_STALE ? len : 0);
	free(v);
	return n;
}

/* ucache_flight_begin CACHE KEY WAIT_MS [LOCK_S] -> H | S | C | T (waited
 * WAIT_MS) */
static uint64_t rpc_flight_begin(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_flight_begin");
	uint64_t wait_ms = 0, lock_s = 60, tok = 0;
	size_t len = 0;
	void *v = NULL;
	int rc = prepare(&r, 3, 4, 1);

	if (!rc)
		rc = arg_u64(&r, 2, &wait_ms);
	if (!rc && argc == 4)
		rc = arg_u64(&r, 3, &lock_s);
	if (!rc)
		rc = ucache_flight_begin(r.c->cache, KEY(1), wait_ms, lock_s, &v, &len, &tok);
	return flight_reply(&r, buffer, rc, v, len, tok);
}

/* ucache_flight_try CACHE KEY [LOCK_S] -> H | S | C | T (no room for the
 * lock) | W (another caller holds it): one try that never sleeps, for a
 * caller that waits cooperatively (ucache._cooperative under gevent) */
static uint64_t rpc_flight_try(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_flight_try");
	uint64_t lock_s = 60, tok = 0;
	size_t len = 0;
	void *v = NULL;
	int rc = prepare(&r, 2, 3, 1);

	if (!rc && argc == 3)
		rc = arg_u64(&r, 2, &lock_s);
	if (!rc)
		rc = ucache_flight_try(r.c->cache, KEY(1), lock_s, &v, &len, &tok);
	return flight_reply(&r, buffer, rc, v, len, tok);
}

/* ucache_flight_end CACHE KEY TOKEN VALUE [TIMEOUT [STALE_S]] -> Y (stored,
 * lock released) | E...; TOKEN "0" releases nothing (after T) */
static uint64_t rpc_flight_end(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_flight_end");
	uint64_t tok = 0, t = 0, stale = 0;
	int rc = prepare(&r, 4, 6, 1);

	r.val_arg = 3;

	if (!rc)
		rc = arg_hex(&r, 2, &tok);
	if (!rc && argc >= 5)
		rc = arg_u64(&r, 4, &t);
	if (!rc && argc == 6)
		rc = arg_u64(&r, 5, &stale);
	if (!rc)
		rc = ucp_wrote(r.c, UCP_OP_SET, KEY(1), ucache_flight_end(r.c->cache, KEY(1), KEY(3), t, stale, tok));
	if (rc && r.c && tok)
		ucache_flight_abort(r.c->cache, KEY(1), tok); /* never leave the lock on a bad call */
	return reply_rc(&r, buffer, rc, NO_N, NO_N);
}

/* ucache_flight_abort CACHE KEY TOKEN -> Y */
static uint64_t rpc_flight_abort(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_flight_abort");
	uint64_t tok = 0;
	int rc = prepare(&r, 3, 3, 1);

	if (!rc)
		rc = arg_hex(&r, 2, &tok);
	if (!rc)
		ucache_flight_abort(r.c->cache, KEY(1), tok);
	return reply_rc(&r, buffer, rc, NO_N, NO_N);
}

/* The first of the keys present (argument i), uncounted; NULL if none. */
static char *first_present(struct rpc_call *r, int *i, size_t *len)
{
	char *v;

	for (*i = 1; *i < r->argc; (*i)++) {
		if ((v = ucp_peek_alloc(r->c, r->argv[*i], r->argvs[*i], len)))
			return v;
	}
	return NULL;
}

/* Y INDEX ':' VALUE (the INDEXth key, from 0), or N when v is NULL; frees v. */
static uint64_t reply_indexed(char **buffer, int index, char *v, size_t len)
{
	struct uwsgi_buffer *ub;
	char head[8];

	if (!v)
		return ucp_rpc_reply(buffer, 'N', NULL, 0);
	ub = uwsgi_buffer_new(len + 8);
	uwsgi_buffer_append(ub, head, (size_t) snprintf(head, sizeof(head), "Y%d:", index));
	uwsgi_buffer_append(ub, v, len);
	free(v);
	return ucp_rpc_reply_buffer(ub, buffer);
}

/* ucache_peek CACHE KEY... -> Y INDEX:VALUE (the first key present) | N.
 * Counts no hit or miss: a caller's own polls and probes (the
 * Accelerator's render locks, Django's get_or_set after a lost race).
 * Without a KEY: N, or ENOENT naming the caches there are (Python's
 * check of a cache name, which must not cost a near cache a Redis read). */
static uint64_t rpc_peek(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_peek");
	size_t len = 0;
	int i, rc = prepare_any(&r, 1, 255, 0);
	char *v;

	if (rc)
		return reply_err(buffer, &r, rc);
	v = first_present(&r, &i, &len);
	return reply_indexed(buffer, i - 1, v, len);
}

/* The argument to read: the first key that exists (uncounted: no copy),
 * else the first. */
static int first_existing(struct rpc_call *r)
{
	int i;

	for (i = 1; i < r->argc; i++) {
		if (ucp_exists(r->c, r->argv[i], r->argvs[i]) == 0)
			return i;
	}
	return 1;
}

/* ucache_lookup CACHE KEY... -> as ucache_peek, counted as ONE lookup: a
 * hit (the first key that exists is then read, counted: its LRU position
 * refreshed) or a miss (a counted read of the first key, which may still
 * hit).  The Accelerator's page and its Accept-Encoding variant are one
 * lookup. */
static uint64_t rpc_lookup(uint8_t argc, char **argv, uint16_t *argvs, char **buffer)
{
	CALL("ucache_lookup");
	size_t len = 0;
	int i, rc = prepare_any(&r, 2, 255, 0);
	char *v;

	if (rc)
		return reply_err(buffer, &r, rc);
	i = first_existing(&r);
	v = ucp_get_alloc(r.c, KEY(i), &len, NULL);
	return reply_indexed(buffer, i - 1, v, len);
}

static const struct ucp_rpc_def rpcs[] = {
	{ "ucache_add", rpc_add },
	{ "ucache_gets", rpc_gets },
	{ "ucache_cas", rpc_cas },
	{ "ucache_ttl", rpc_ttl },
	{ "ucache_touch", rpc_touch },
	{ "ucache_update", rpc_update },
	{ "ucache_incr", rpc_incr },
	{ "ucache_get_many", rpc_get_many },
	{ "ucache_set_many", rpc_set_many },
	{ "ucache_delete_many", rpc_delete_many },
	{ "ucache_get_stale", rpc_get_stale },
	{ "ucache_flight_begin", rpc_flight_begin },
	{ "ucache_flight_try", rpc_flight_try },
	{ "ucache_flight_end", rpc_flight_end },
	{ "ucache_flight_abort", rpc_flight_abort },
	{ "ucache_peek", rpc_peek },
	{ "ucache_lookup", rpc_lookup },
};

void ucp_rpc_register(struct uwsgi_plugin *owner)
{
	ucp_rpc_add(owner, rpcs, sizeof(rpcs) / sizeof(rpcs[0]));
}
