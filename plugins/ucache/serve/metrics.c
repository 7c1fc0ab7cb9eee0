/*
 * metrics.c - Prometheus metrics of every cache (--ucache-metrics ADDR):
 * GET /metrics answers the text exposition format (version 0.0.4).
 *
 * Who runs what: the master checks ADDR at init (a bad value stops the
 * start with a line naming the option) and binds it in preinit_apps, before
 * fork (so does a busy address).  Not at init: a reload's new master closes, after init, every inherited-looking
 * socket that is not one of uWSGI's (uwsgi_setup_inherited_sockets), which
 * took ours too; by preinit_apps privileges are dropped (--uid), so ADDR
 * needs a port the user may bind (Prometheus exporters use 9xxx).  Every worker
 * closes its copy (post_fork), so a busy worker never holds a scrape.  One
 * master thread (started with the sweeper, every signal blocked) accepts
 * and answers one connection at a time: a scrape reads counters with
 * relaxed atomics and takes no cache lock, so it costs the workers nothing;
 * a client that does not send its request within 2 s is dropped.  The
 * thread holds ucp_caches_hold() while it reads the caches, so the master's
 * exit never unmaps one under it.  The socket is close-on-exec: a reload's
 * new master binds it again.
 *
 * Names: uwsgi_exporter's cache metrics are kept as it names them
 * (uwsgi_cache_hits, _misses, _full, _items, _max_items, label name), so
 * its dashboards keep working; its three counters lack the _total suffix
 * that promtool requires of a counter, so they are typed untyped.  ucache's
 * own are uwsgi_cache_*_total counters and gauges, plus one family per
 * udp_* counter and near-cache key, only for the caches that have them.
 */
#include "ucp.h"
#include "serve/serve.h"
#include "takeover/takeover.h"
#include "peers/peers.h"
#include "nearcache/nearcache.h"

#include <netdb.h>
#include <sys/socket.h>

char *ucp_metrics_addr;          /* --ucache-metrics */
static int listen_fd = -1;

#define REQUEST_MAX 4096         /* a scrape's request is ~200 bytes */
#define IO_TIMEOUT_S 2

/* ------------------------------------------------------------- rendering */

enum { M_HITS, M_MISSES, M_FULL, M_ITEMS, M_MAX_ITEMS, M_EVICTIONS, M_EXPIRATIONS,
	M_BYTES_USED, M_BYTES_MAPPED, M_BYTES_RESIDENT, M_MAX_VALUE, M_COUNT };

static const struct family {
	const char *name, *type, *help;
} families[M_COUNT] = {
	{ "uwsgi_cache_hits", "untyped", "Total number of hits (a counter, named as uwsgi_exporter does)." },
	{ "uwsgi_cache_misses", "untyped", "Total number of misses (a counter, named as uwsgi_exporter does)." },
	{ "uwsgi_cache_full", "untyped", "Total number of writes refused or evicting because the cache was full (a counter, named as uwsgi_exporter does)." },
	{ "uwsgi_cache_items", "gauge", "Items in cache." },
	{ "uwsgi_cache_max_items", "gauge", "Max items for this cache." },
	{ "uwsgi_cache_evictions_total", "counter", "Items evicted to make room (purge_lru, clear_on_full)." },
	{ "uwsgi_cache_expirations_total", "counter", "Expired items removed." },
	{ "uwsgi_cache_bytes_used", "gauge", "Value bytes stored." },
	{ "uwsgi_cache_bytes_mapped", "gauge", "Size of the cache's shared mapping." },
	{ "uwsgi_cache_bytes_resident", "gauge", "Bytes of the cache's mapping resident in memory." },
	{ "uwsgi_cache_max_value_bytes", "gauge", "Largest value the cache accepts." },
};

static void values(struct ucp_cache *c, uint64_t v[M_COUNT])
{
	struct ucache_stats st;

	ucache_stats(c->cache, &st);
	v[M_HITS] = st.hits;
	v[M_MISSES] = st.misses;
	v[M_FULL] = st.full;
	v[M_ITEMS] = st.items;
	v[M_MAX_ITEMS] = c->uc.max_items;
	v[M_EVICTIONS] = st.evictions;
	v[M_EXPIRATIONS] = st.expirations;
	v[M_BYTES_USED] = st.bytes_used;
	v[M_BYTES_MAPPED] = st.mapped_bytes;
	v[M_BYTES_RESIDENT] = ucache_resident_bytes(c->cache);
	v[M_MAX_VALUE] = ucache_max_value(c->cache);
}

static void header(struct uwsgi_buffer *ub, const char *name, const char *type, const char *help)
{
	uwsgi_buffer_append(ub, "# HELP ", 7);
	uwsgi_buffer_append(ub, (char *) name, strlen(name));
	uwsgi_buffer_append(ub, " ", 1);
	uwsgi_buffer_append(ub, (char *) help, strlen(help));
	uwsgi_buffer_append(ub, "\n# TYPE ", 8);
	uwsgi_buffer_append(ub, (char *) name, strlen(name));
	uwsgi_buffer_append(ub, " ", 1);
	uwsgi_buffer_append(ub, (char *) type, strlen(type));
	uwsgi_buffer_append(ub, "\n", 1);
}

/* NAME{name="CACHE"[,op="OP"]} VALUE, the label value escaped as the
 * format requires (backslash, double quote, newline). */
static void sample(struct uwsgi_buffer *ub, const char *name, const char *cache, const char *op,
		uint64_t value)
{
	const char *p;
	char num[32];

	uwsgi_buffer_append(ub, (char *) name, strlen(name));
	uwsgi_buffer_append(ub, "{name=\"", 7);
	for (p = cache; *p; p++) {
		if (*p == '\\' || *p == '"')
			uwsgi_buffer_append(ub, "\\", 1);
		uwsgi_buffer_append(ub, *p == '\n' ? "\\n" : (char *) p, *p == '\n' ? 2 : 1);
	}
	uwsgi_buffer_append(ub, "\"", 1);
	if (op) {
		uwsgi_buffer_append(ub, ",op=\"", 5);
		uwsgi_buffer_append(ub, (char *) op, strlen(op));
		uwsgi_buffer_append(ub, "\"", 1);
	}
	snprintf(num, sizeof(num), "} %llu\n", (unsigned long long) value);
	uwsgi_buffer_append(ub, num, strlen(num));
}

static void base_families(struct uwsgi_buffer *ub, struct ucp_cache **cs, uint64_t (*v)[M_COUNT], size_t n)
{
	static const char *const ops[] = { "get", "set", "delete" };
	size_t f, i, o;

	for (f = 0; f < M_COUNT; f++) {
		header(ub, families[f].name, families[f].type, families[f].help);
		for (i = 0; i < n; i++)
			sample(ub, families[f].name, cs[i]->uc.name, NULL, v[i][f]);
	}
	header(ub, "uwsgi_cache_operations_total", "counter",
			"Operations: get (hits + misses), set and delete (successful writes and deletes).");
	for (o = 0; o < 3; o++) {
		for (i = 0; i < n; i++) {
			uint64_t x = o == 0 ? v[i][M_HITS] + v[i][M_MISSES]
				: ucp_ops_sum(cs[i], o == 1 ? UCP_OP_SET : UCP_OP_DEL);
			sample(ub, "uwsgi_cache_operations_total", cs[i]->uc.name, ops[o], x);
		}
	}
}

typedef int (*feature_stat)(const struct ucp_cache *, size_t, const char **, uint64_t *);

/* One family per key of a feature (udp_* of udp.c, the near cache's of
 * redis.c), with samples for the caches that have the feature only:
 * uwsgi_cache_<prefix><key without "redis_">[_total]; "redis_connected"
 * is a gauge, every other key a counter. */
static void feature_families(struct uwsgi_buffer *ub, struct ucp_cache **cs, size_t n,
		feature_stat stat, const char *prefix)
{
	const char *key;
	uint64_t value;
	size_t i, k, first;

	for (first = 0; first < n && !stat(cs[first], 0, &key, &value); first++)
		;
	for (k = 0; first < n && stat(cs[first], k, &key, &value); k++) {
		int gauge = !strcmp(key, "redis_connected");
		char name[128], help[128];

		snprintf(help, sizeof(help), "The stats server's \"%s\" of the cache.", key);
		snprintf(name, sizeof(name), "uwsgi_cache_%s%s%s", prefix,
				strncmp(key, "redis_", 6) ? key : key + 6, gauge ? "" : "_total");
		header(ub, name, gauge ? "gauge" : "counter", help);
		for (i = first; i < n; i++) {
			if (stat(cs[i], k, &key, &value))
				sample(ub, name, cs[i]->uc.name, NULL, value);
		}
	}
}

/* The whole exposition, in a new buffer. */
static struct uwsgi_buffer *render(void)
{
	struct uwsgi_buffer *ub = uwsgi_buffer_new(4096);
	struct uwsgi_cache *uc;
	struct ucp_cache **cs, *c;
	uint64_t (*v)[M_COUNT];
	size_t n = 0, max = 0;

	for (uc = uwsgi.caches; uc; uc = uc->next)
		max++;
	cs = uwsgi_calloc(sizeof(*cs) * (max + 1));
	v = uwsgi_calloc(sizeof(*v) * (max + 1));
	ucp_caches_hold();
	for (c = ucp_first(); c && n < max; c = ucp_next(c)) {
		cs[n] = c;
		values(c, v[n++]);
	}
	base_families(ub, cs, v, n);
	feature_families(ub, cs, n, ucp_udp_stat, "");
	feature_families(ub, cs, n, ucp_redis_stat, "redis_");
	ucp_caches_release();
	free(v);
	free(cs);
	return ub;
}

/* ---------------------------------------------------------------- serving */

static void reply(int fd, const char *status, const char *ctype, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head), "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
			"Content-Length: %zu\r\nConnection: close\r\n\r\n", status, ctype, len);

	if (write(fd, head, (size_t) n) == n && len)
		(void) !write(fd, body, len);  /* a scraper gone away: nothing to do */
}

/* Read up to the end of the request head; 0, or -1 (timeout, too long). */
static int read_head(int fd, char *buf, size_t size)
{
	size_t got = 0;

	while (got + 1 < size) {
		ssize_t r = read(fd, buf + got, size - 1 - got);

		if (r <= 0)
			return -1;
		got += (size_t) r;
		buf[got] = 0;
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return 0;
	}
	return -1;
}

static void serve(int fd)
{
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	char req[REQUEST_MAX];
	struct uwsgi_buffer *ub;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (read_head(fd, req, sizeof(req)))
		return;
	if (strncmp(req, "GET ", 4)) {
		reply(fd, "405 Method Not Allowed", "text/plain", "GET /metrics only\n", 18);
		return;
	}
	if (strncmp(req + 4, "/metrics", 8) || !strchr(" ?", req[12])) {
		reply(fd, "404 Not Found", "text/plain", "ucache: the metrics are at /metrics\n", 36);
		return;
	}
	ub = render();
	reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", ub->buf, ub->pos);
	uwsgi_buffer_destroy(ub);
}

static void *metrics_loop(void *arg)
{
	(void) arg;
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(100 * 1000);  /* EMFILE and the like: do not spin */
			continue;
		}
		serve(fd);
		close(fd);
	}
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

static void metrics_fatal(const char *what, const char *why)
{
	uwsgi_log("ucache: --ucache-metrics %s: %s: %s\n", ucp_metrics_addr, what, why);
	exit(1);
}

/* HOST:PORT (or :PORT, every address), resolved at init: a bad value
 * stops the start before anything else runs. */
static struct addrinfo *resolved;

static struct addrinfo *resolve(const char *addr)
{
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *ai;
	char host[256];
	int err;

	if (!colon || !colon[1] || (size_t) (colon - addr) >= sizeof(host))
		metrics_fatal("bad address", "expected HOST:PORT or :PORT");
	memcpy(host, addr, (size_t) (colon - addr));
	host[colon - addr] = 0;
	err = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
	if (err)
		metrics_fatal("bad address", gai_strerror(err));
	return ai;
}

void ucp_metrics_init(void)
{
	if (!ucp_metrics_addr)
		return;
	if (!uwsgi.master_process)
		metrics_fatal("needs --master", "the metrics are served by a master thread");
	resolved = resolve(ucp_metrics_addr);
}

void ucp_metrics_bind(void)
{
	int one = 1;

	if (!resolved)
		return;
	listen_fd = socket(resolved->ai_family, resolved->ai_socktype | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		metrics_fatal("socket()", strerror(errno));
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listen_fd, resolved->ai_addr, resolved->ai_addrlen) || listen(listen_fd, 16))
		metrics_fatal("bind()", strerror(errno));
	freeaddrinfo(resolved);
	resolved = NULL;
	uwsgi_log("ucache: Prometheus metrics on http://%s/metrics\n", ucp_metrics_addr);
}

void ucp_metrics_post_fork(void)
{
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
}

void ucp_metrics_start(void)
{
	if (listen_fd >= 0)
		ucp_master_thread("the --ucache-metrics server", metrics_loop, NULL);
}
