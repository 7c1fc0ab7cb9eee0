/*
 * udp.c - cache replication over UDP, interoperable with stock uWSGI nodes
 * (the datagram, its signed trailer and the replay guard: udpwire.h).
 *
 * Configuration, per cache, read once in the master before fork
 * (ucp_udp_setup, from takeover/options.c):
 *   nodes= (--cache2; --cache-udp-node for --cache)   peers every local
 *       write is sent to ("added udp node ADDR for cache \"x\"")
 *   udp= (--cache2; --cache-udp-server for --cache)   addresses to receive
 *       on: bound now, read by a master thread started with the master
 *       loop (ucp_udp_servers_start, in place of the core's
 *       uwsgi_cache_start_sync_servers)
 *   udp_allow=   ';'-separated ADDR or ADDR/PREFIX accepted on udp= (any
 *       source without it, as stock)
 *   udp_secret_file=   a shared secret: every datagram sent is signed
 *       (HMAC-SHA256, udpwire.h), and only signed ones within the 30 s
 *       window, never seen before, are applied
 * Every address is checked here (HOST:PORT, [IPV6]:PORT, :PORT = any on
 * udp=); a bad one stops uWSGI with one line naming the option and value.
 *
 * Sending (any process, any thread): the one write path (writepath.c)
 * calls ucp_udp_send_* after a successful local set, update, del or math;
 * nothing for clear (as stock).  One non-blocking socket per address family,
 * created in the master and shared by every process: sendto() with
 * MSG_DONTWAIT never waits, a full socket buffer is a counted send error
 * (logged at most once a second across all processes).  Unlike stock:
 *   - a del is padded (udpwire.h) so stock receivers apply it;
 *   - math sends the resulting value, not the delta;
 *   - a value that does not fit in one datagram is sent as a del (peers
 *     drop their stale copy; udp_oversize counts it), never truncated.
 *
 * Receiving (one master thread per cache with udp=): a set is applied as an
 * update with the absolute expiry it carries (an expiry already past is a
 * del: an expired item is never served), a del as a del, both straight to
 * the engine, so that nothing received is sent on again.  Garbage is
 * dropped and counted, never trusted: the parser checks every length.
 *
 * Counters (udp_* in the stats server's caches): the writers are every
 * worker (sent) and the master's receiver (received...), so they live in a
 * MAP_SHARED anonymous page per cache, mapped here before fork; any process
 * adds to them with relaxed atomic adds and the stats server reads them
 * with relaxed loads (each is a plain count, no two need to agree).  The
 * send-error log limiter lives there too, so it is one line a second for
 * the whole instance, not per worker.
 */
#include "ucp.h"
#include "peers/peers.h"
#include "wire/udpwire.h"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/random.h>

/* Seconds a signed datagram's timestamp may be off from the receiver's
 * clock (both ways): clock skew between nodes plus delivery time. */
#define UDP_WINDOW 30
/* Secrets: at least 16 bytes (128 bits); a file over 4096 bytes is surely
 * not a secret file. */
#define SECRET_MIN 16
#define SECRET_MAX 4096
/* Receive buffer asked for on udp= sockets: a burst the thread has not read
 * yet waits there (the kernel caps it at net.core.rmem_max).  Measured on
 * loopback: 14850 updates of 100 bytes from one worker, 7958 applied with
 * the 212992-byte default, all with 4 MiB.  What does not fit is dropped by
 * the kernel: compare the senders' udp_sent with udp_received. */
#define RCVBUF (4 << 20)

enum udp_ctr { C_SENT, C_SEND_ERRORS, C_OVERSIZE, C_RECEIVED, C_APPLIED, C_MALFORMED,
	C_REFUSED, C_FAILED, C_COUNT };

static const char *const ctr_names[C_COUNT] = {
	"udp_sent", "udp_send_errors", "udp_oversize", "udp_received", "udp_applied",
	"udp_malformed", "udp_refused", "udp_failed",
};

/* One MAP_SHARED page per cache, mapped in the master before fork.
 * Writers: any process and thread, no lock: every field is changed only by
 * an atomic read-modify-write (add, exchange, compare-exchange; relaxed).
 * Readers (the stats server, the log limiter) load with relaxed atomics:
 * each counter is exact and only grows, but two counters read one after
 * the other need not agree (a datagram may be in udp_received and not yet
 * in udp_applied). */
struct udp_shared {
	uint64_t ctr[C_COUNT];
	struct ucp_ratelimit send_rl;  /* send errors: one line a second, every process */
};

struct udp_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char *text;               /* as configured */
	int fd;                   /* nodes: the family's send socket; udp: bound */
};

struct ucp_udp {
	struct udp_shared *sh;
	struct udp_addr *nodes, *servers;
	size_t n_nodes, n_servers;
	struct ucp_udpw_net *allow;
	size_t n_allow;
	unsigned char *secret;
	size_t secret_len;
	struct ucp_udpw_guard *guard;  /* receiver thread only */
	struct ucp_ratelimit rx_rl;    /* receiver thread's lines */
};

static int send_fd[2] = { -1, -1 };  /* AF_INET, AF_INET6 */

/* Held by the receiver around every apply and by ucp_udp_quiesce(), so that
 * the master's shutdown never unmaps a cache under it. */
static pthread_mutex_t apply_lock = PTHREAD_MUTEX_INITIALIZER;
static int stopping;

/* --------------------------------------------------------------- helpers */

static void count(struct ucp_udp *u, enum udp_ctr i)
{
	__atomic_add_fetch(&u->sh->ctr[i], 1, __ATOMIC_RELAXED);
}

static void log_limited(struct ucp_cache *c, struct ucp_ratelimit *rl, const char *what,
		const char *addr, const char *why)
{
	uint64_t dropped = 0;

	if (!ucp_ratelimit_pass(rl, &dropped))
		return;
	if (dropped)
		uwsgi_log("ucache: cache \"%s\": UDP %s %s: %s (and %llu more since the last line)\n",
				c->uc.name, what, addr, why, (unsigned long long) dropped);
	else
		uwsgi_log("ucache: cache \"%s\": UDP %s %s: %s\n", c->uc.name, what, addr, why);
}

static void fatal(const char *where, const char *value, const char *why)
{
	uwsgi_log("ucache: %s: invalid value \"%s\" (%s)\n", where, value, why);
	exit(1);
}

/* --------------------------------------------------------------- addresses */

/* "HOST:PORT", "[IPV6]:PORT" or ":PORT" -> a resolved address.  NULL on
 * success, else why not.  IPv4 first (a name resolves as stock resolved it,
 * ":PORT" is 0.0.0.0 / 127.0.0.1 as in stock), then IPv6. */
static const char *addr_resolve(const char *text, int passive, struct udp_addr *a)
{
	char host[256];
	const char *colon = strrchr(text, ':');
	const char *h = text;
	size_t hlen;
	uint64_t port = 0;
	struct addrinfo hints, *res = NULL;
	int err = 0, i;

	if (!colon)
		return "expected HOST:PORT";
	hlen = (size_t) (colon - text);
	if (hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	} else if (memchr(text, ':', hlen)) {
		return "write an IPv6 address as [ADDR]:PORT";
	}
	if (hlen >= sizeof(host))
		return "host name too long";
	if (ucp_parse_u64(colon + 1, strlen(colon + 1), &port) || port == 0 || port > 65535)
		return "expected a port 1-65535 after the last ':'";
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	for (i = 0; i < 2 && !res; i++) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = i ? AF_INET6 : AF_INET;
		hints.ai_socktype = SOCK_DGRAM;
		hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
		if (i == 0 || hlen)
			err = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &res);
	}
	if (!res)
		return err ? gai_strerror(err) : "cannot resolve";
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	a->text = uwsgi_str((char *) text);
	a->fd = -1;
	return NULL;
}

static int family_index(const struct udp_addr *a)
{
	return a->ss.ss_family == AF_INET6 ? 1 : 0;
}

/* Every socket here is created in ucache_asap(), before the core's
 * uwsgi_setup_inherited_sockets(), which in a reloaded image (SIGHUP,
 * --touch-reload) closes every fd >= 3 that is neither one of its own
 * sockets nor "safe": unregistered, ours were closed there and their
 * numbers reused by the core's next socketpair()s, so the receiver read a
 * uWSGI pipe and sends failed with ENOTSOCK.  Registered, they survive that
 * loop (and the old image's loop before the exec); SOCK_CLOEXEC still
 * closes them at the exec, and each image makes and binds its own. */
static int our_socket(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd >= 0)
		uwsgi_add_safe_fd(fd);
	return fd;
}

/* The non-blocking send socket of a's family, created once. */
static int send_socket(const struct udp_addr *a)
{
	int *fd = &send_fd[family_index(a)];

	if (*fd < 0)
		*fd = our_socket(a->ss.ss_family);
	return *fd;
}

static void bind_server(const char *where, struct udp_addr *a)
{
	int one = 1, rcvbuf = RCVBUF;
	int fd = our_socket(a->ss.ss_family);

	if (fd < 0 || (a->ss.ss_family == AF_INET6 &&
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
			bind(fd, (struct sockaddr *) &a->ss, a->len)) {
		uwsgi_log("ucache: %s: cannot bind to \"%s\": %s\n", where, a->text, strerror(errno));
		exit(1);
	}
	/* best effort: a smaller buffer only means earlier drops */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	a->fd = fd;
}

/* Call one(where, entry, ud) for each ';'-separated entry of list. */
static void each_entry(const char *where, const char *list, void (*one)(const char *, char *, void *),
		void *ud)
{
	char *copy = uwsgi_str((char *) list);
	char *tok, *ctx = NULL;

	for (tok = strtok_r(copy, ";", &ctx); tok; tok = strtok_r(NULL, ";", &ctx))
		one(where, tok, ud);
	free(copy);
}

/* Room for one more element of size bytes at the end of *v (*n of them):
 * the new slot, *n counts it.  Exits without memory (start-up only). */
static void *grow_one(const char *where, void *v, size_t *n, size_t size)
{
	void **vp = v;
	void *grown = realloc(*vp, (*n + 1) * size);

	if (!grown) {
		uwsgi_log("ucache: %s: out of memory\n", where);
		exit(1);
	}
	*vp = grown;
	return (char *) grown + (*n)++ * size;
}

struct addr_sink {
	int passive;
	struct udp_addr **v;
	size_t *n;
};

static void add_addr(const char *where, char *tok, void *ud)
{
	struct addr_sink *k = ud;
	struct udp_addr a;
	const char *why = addr_resolve(tok, k->passive, &a);

	if (why)
		fatal(where, tok, why);
	*(struct udp_addr *) grow_one(where, k->v, k->n, sizeof(a)) = a;
}

/* Append every ';'-separated address of list to *v (*n entries). */
static void addr_list(const char *where, const char *list, int passive, struct udp_addr **v,
		size_t *n)
{
	struct addr_sink k = { passive, v, n };

	each_entry(where, list, add_addr, &k);
}

static void addr_strlist(const char *where, struct uwsgi_string_list *list, int passive,
		struct udp_addr **v, size_t *n)
{
	struct uwsgi_string_list *usl;

	uwsgi_foreach(usl, list) {
		addr_list(where, usl->value, passive, v, n);
	}
}

static void add_allow(const char *where, char *tok, void *ud)
{
	struct ucp_udp *u = ud;
	size_t n = u->n_allow;
	void *slot = grow_one(where, &u->allow, &n, sizeof(*u->allow));

	if (ucp_udpw_net_parse(tok, strlen(tok), slot))
		fatal(where, tok, "expected a numeric IPv4/IPv6 address or ADDR/PREFIX");
	u->n_allow = n;
}

static void read_secret(const char *where, const char *path, struct ucp_udp *u)
{
	unsigned char *buf = uwsgi_malloc(SECRET_MAX + 2);
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = 1;

	while (fd >= 0 && len < SECRET_MAX + 2 && (n = read(fd, buf + len, SECRET_MAX + 2 - len)) > 0)
		len += (size_t) n;
	if (fd < 0 || n < 0) {
		uwsgi_log("ucache: %s: cannot read \"%s\": %s\n", where, path, strerror(errno));
		exit(1);
	}
	close(fd);
	/* a final newline is the editor's, not the secret's */
	if (len && buf[len - 1] == '\n')
		len--;
	if (len && buf[len - 1] == '\r')
		len--;
	if (len < SECRET_MIN || len > SECRET_MAX) {
		uwsgi_log("ucache: %s: \"%s\" holds %zu bytes: a secret has %d to %d\n", where, path,
				len, SECRET_MIN, SECRET_MAX);
		exit(1);
	}
	u->secret = buf;
	u->secret_len = len;
}

/* ----------------------------------------------------------------- setup */

static struct udp_shared *shared_page(const char *name)
{
	void *p = mmap(NULL, sizeof(struct udp_shared), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		uwsgi_log("ucache: cache \"%s\": mmap of the UDP counters: %s\n", name, strerror(errno));
		exit(1);
	}
	return p;
}

static void announce(struct ucp_cache *c, const char *where)
{
	struct ucp_udp *u = c->udp;
	size_t i;

	for (i = 0; i < u->n_nodes; i++) {
		u->nodes[i].fd = send_socket(&u->nodes[i]);
		if (u->nodes[i].fd < 0) {
			uwsgi_log("ucache: %s: socket(): %s\n", where, strerror(errno));
			exit(1);
		}
		uwsgi_log("added udp node %s for cache \"%s\"\n", u->nodes[i].text, c->uc.name);
	}
	for (i = 0; i < u->n_servers; i++)
		bind_server(where, &u->servers[i]);
	if (u->n_servers && !uwsgi.master_process)
		uwsgi_log("ucache: cache \"%s\": udp needs the master (--master) to receive: "
				"nothing will be received\n", c->uc.name);
}

void ucp_udp_setup(struct ucp_cache *c, int legacy)
{
	const struct ucache_config *cfg = ucache_config(c->cache);
	struct ucp_udp *u;
	char where[300];

	if (legacy ? !uwsgi.cache_udp_node && !uwsgi.cache_udp_server
			: !cfg->nodes && !cfg->udp && !cfg->udp_allow && !cfg->udp_secret_file)
		return;
	u = uwsgi_calloc(sizeof(*u));
	c->udp = u;
	u->sh = shared_page(c->uc.name);
	if (legacy) {
		addr_strlist("--cache-udp-node", uwsgi.cache_udp_node, 0, &u->nodes, &u->n_nodes);
		addr_strlist("--cache-udp-server", uwsgi.cache_udp_server, 1, &u->servers, &u->n_servers);
		announce(c, "--cache-udp-server");
		return;
	}
	snprintf(where, sizeof(where), "cache \"%s\": key \"nodes\"", c->uc.name);
	if (cfg->nodes)
		addr_list(where, cfg->nodes, 0, &u->nodes, &u->n_nodes);
	snprintf(where, sizeof(where), "cache \"%s\": key \"udp_allow\"", c->uc.name);
	if (cfg->udp_allow)
		each_entry(where, cfg->udp_allow, add_allow, u);
	snprintf(where, sizeof(where), "cache \"%s\": key \"udp_secret_file\"", c->uc.name);
	if (cfg->udp_secret_file)
		read_secret(where, cfg->udp_secret_file, u);
	snprintf(where, sizeof(where), "cache \"%s\": key \"udp\"", c->uc.name);
	if (cfg->udp)
		addr_list(where, cfg->udp, 1, &u->servers, &u->n_servers);
	announce(c, where);
}

/* --------------------------------------------------------------- sending */

/* This process's signer identity: a random id drawn after each fork (a
 * respawned worker may get a dead one's pid, never its id) and a sequence
 * counting from 1. */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t id_pid;
static uint64_t id_value, id_seq;

static void sender_next(uint64_t *id, uint64_t *seq)
{
	pid_t pid = getpid();

	if (__atomic_load_n(&id_pid, __ATOMIC_ACQUIRE) != pid) {
		pthread_mutex_lock(&id_lock);
		if (id_pid != pid) {
			if (getrandom(&id_value, sizeof(id_value), 0) != sizeof(id_value))
				id_value = ((uint64_t) time(NULL) << 32) ^ (uint64_t) pid ^ (uint64_t) clock();
			id_value |= 1;
			__atomic_store_n(&id_seq, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&id_pid, pid, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&id_lock);
	}
	*id = id_value;
	*seq = __atomic_add_fetch(&id_seq, 1, __ATOMIC_RELAXED);
}

/* Each thread encodes into its own buffer (UCP_UDPW_MAX bytes, kept). */
static __thread unsigned char *tl_dgram;

static unsigned char *dgram_buf(void)
{
	if (!tl_dgram)
		tl_dgram = malloc(UCP_UDPW_MAX);
	return tl_dgram;
}

static size_t body_cap(const struct ucp_udp *u)
{
	return u->secret ? UCP_UDPW_MAX - UCP_UDPW_TRAILER : UCP_UDPW_MAX;
}

static void send_error(struct ucp_cache *c, const char *addr, const char *why)
{
	count(c->udp, C_SEND_ERRORS);
	log_limited(c, &c->udp->sh->send_rl, "send to", addr, why);
}

/* Sign (with a secret) and send the datagram to every node. */
static void send_all(struct ucp_cache *c, unsigned char *buf, size_t len)
{
	struct ucp_udp *u = c->udp;
	size_t i;

	if (u->secret) {
		uint64_t id, seq;

		sender_next(&id, &seq);
		len = ucp_udpw_sign(buf, len, UCP_UDPW_MAX, u->secret, u->secret_len, id, seq,
				(uint64_t) time(NULL));
		if (!len) {
			send_error(c, "every node", "cannot sign the datagram");
			return;
		}
	}
	for (i = 0; i < u->n_nodes; i++) {
		struct udp_addr *a = &u->nodes[i];
		ssize_t n = sendto(a->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
				(struct sockaddr *) &a->ss, a->len);

		if (n == (ssize_t) len)
			count(u, C_SENT);
		else
			send_error(c, a->text, n < 0 ? strerror(errno) : "short write");
	}
}

void ucp_udp_send_del(struct ucp_cache *c, const char *key, uint16_t klen)
{
	unsigned char *buf;
	size_t len;

	if (!c->udp->n_nodes)
		return;
	buf = dgram_buf();
	len = buf ? ucp_udpw_encode_del(buf, body_cap(c->udp), key, klen) : 0;
	if (!len) {
		send_error(c, "every node", buf ? "key too long for a datagram" : "out of memory");
		return;
	}
	send_all(c, buf, len);
}

/* A set, or a del when the value does not fit in one datagram or is a
 * tagged entry (another node's tag table never matches it: a stock node
 * would serve it for ever, a ucache node never). */
static void send_value(struct ucp_cache *c, const char *key, uint16_t klen, const void *val,
		uint64_t vlen, uint64_t expires)
{
	unsigned char *buf = dgram_buf();
	size_t len;

	if (!buf) {
		send_error(c, "every node", "out of memory");
		return;
	}
	if (ucache_tags_check(c->cache, val, (size_t) vlen)) { /* tagged: no node can honour its tags */
		ucp_udp_send_del(c, key, klen);
		return;
	}
	len = ucp_udpw_encode_set(buf, body_cap(c->udp), key, klen, val, (size_t) vlen, expires);
	if (!len) {
		count(c->udp, C_OVERSIZE);
		ucp_udp_send_del(c, key, klen);
		return;
	}
	send_all(c, buf, len);
}

void ucp_udp_send_set(struct ucp_cache *c, const char *key, uint16_t klen, const char *val,
		uint64_t vlen, uint64_t expires, int absolute)
{
	if (!c->udp->n_nodes)
		return;
	/* the engine's rule (write.c): what the item now holds */
	if (ucache_config(c->cache)->no_expire)
		expires = 0;
	else if (expires && !absolute)
		expires = expires > UINT64_MAX - ucache_now() ? UINT64_MAX : ucache_now() + expires;
	send_value(c, key, klen, val, vlen, expires);
}

/* After math or an atomic (RPC) write: the item's stored bytes and expiry,
 * read back with a peek (no hit counted, LRU untouched, a tagged entry's
 * envelope kept, so send_value() sends it as a del); a concurrent writer
 * may have changed it since: then that writer sends its own.  A value
 * larger than any datagram is a del, as in send_value(). */
void ucp_udp_send_item(struct ucp_cache *c, const char *key, uint16_t klen)
{
	static __thread unsigned char *vbuf; /* UCP_UDPW_MAX bytes, once per thread */
	struct ucache_item_info info;
	size_t vlen = 0;
	int rc;

	if (!c->udp->n_nodes)
		return;
	if (!vbuf && !(vbuf = malloc(UCP_UDPW_MAX))) {
		send_error(c, "every node", "out of memory");
		return;
	}
	rc = ucache_peek(c->cache, key, klen, vbuf, UCP_UDPW_MAX, &vlen, &info);
	if (rc == -ENOBUFS)
		count(c->udp, C_OVERSIZE);
	if (rc) {
		ucp_udp_send_del(c, key, klen);
		return;
	}
	send_value(c, key, klen, vbuf, vlen, info.expires);
}

/* ------------------------------------------------------------- receiving */

static void source_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
	const void *a = ss->ss_family == AF_INET6 ? (const void *) &((const struct sockaddr_in6 *) ss)->sin6_addr
		: (const void *) &((const struct sockaddr_in *) ss)->sin_addr;

	if (!inet_ntop(ss->ss_family, a, out, (socklen_t) len))
		snprintf(out, len, "?");
}

static int source_allowed(const struct ucp_udp *u, const struct sockaddr_storage *ss)
{
	if (!u->n_allow)
		return 1;
	if (ss->ss_family == AF_INET6)
		return ucp_udpw_net_match(u->allow, u->n_allow, AF_INET6,
				&((const struct sockaddr_in6 *) ss)->sin6_addr);
	return ucp_udpw_net_match(u->allow, u->n_allow, ss->ss_family,
			&((const struct sockaddr_in *) ss)->sin_addr);
}

static void rx_log(struct ucp_cache *c, const struct sockaddr_storage *ss, const char *why)
{
	char src[INET6_ADDRSTRLEN + 1];

	source_text(ss, src, sizeof(src));
	log_limited(c, &c->udp->rx_rl, "datagram from", src, why);
}

/* Apply to the engine directly (never re-sent).  0 or -errno. */
static int apply(struct ucp_cache *c, const struct ucp_udpw_msg *m)
{
	int ret = -ESHUTDOWN;

	pthread_mutex_lock(&apply_lock);
	if (stopping || !c->cache)
		goto end;
	if (m->cmd == UCP_UDPW_SET && (!m->expires || m->expires > ucache_now()))
		ret = ucache_set(c->cache, m->key, m->key_len, m->value, m->value_len, m->expires,
				UCACHE_SET_UPDATE | UCACHE_SET_ABSEXPIRE);
	else
		ret = ucache_del(c->cache, m->key, m->key_len);
	if (ret == -ENOENT)
		ret = 0;
end:
	pthread_mutex_unlock(&apply_lock);
	return ret;
}

static void handle(struct ucp_cache *c, const unsigned char *buf, size_t len,
		const struct sockaddr_storage *src)
{
	struct ucp_udp *u = c->udp;
	struct ucp_udpw_msg m;
	int ret;

	count(u, C_RECEIVED);
	if (!source_allowed(u, src)) {
		count(u, C_REFUSED);
		rx_log(c, src, "refused: source not in udp_allow");
		return;
	}
	ret = ucp_udpw_accept(buf, len, &m, u->secret, u->secret_len, u->guard, (uint64_t) time(NULL));
	if (ret) {
		count(u, -ret < UCP_UDPW_EPARSE_MAX ? C_MALFORMED : C_REFUSED);
		rx_log(c, src, ucp_udpw_strerror(ret));
		return;
	}
	ret = apply(c, &m);
	if (ret == -ESHUTDOWN)
		return;
	if (ret) {
		count(u, C_FAILED);
		rx_log(c, src, strerror(-ret));
		return;
	}
	count(u, C_APPLIED);
}

static void *receiver(void *arg)
{
	struct ucp_cache *c = arg;
	struct ucp_udp *u = c->udp;
	struct pollfd *pfd = uwsgi_calloc(u->n_servers * sizeof(*pfd));
	/* one byte more than any datagram: a read that fills it was cut */
	unsigned char *buf = uwsgi_malloc(UINT16_MAX + 2);
	size_t i;

	for (i = 0; i < u->n_servers; i++) {
		pfd[i].fd = u->servers[i].fd;
		pfd[i].events = POLLIN;
	}
	for (;;) {
		if (poll(pfd, u->n_servers, -1) <= 0)
			continue;
		for (i = 0; i < u->n_servers; i++) {
			struct sockaddr_storage src;
			socklen_t sl = sizeof(src);
			ssize_t n;

			if (!(pfd[i].revents & POLLIN))
				continue;
			while ((n = recvfrom(pfd[i].fd, buf, UINT16_MAX + 2, MSG_DONTWAIT,
						(struct sockaddr *) &src, &sl)) >= 0) {
				handle(c, buf, (size_t) n, &src);
				sl = sizeof(src);
			}
		}
	}
	return NULL;
}

void ucp_udp_servers_start(void)
{
	struct ucp_cache *c;

	for (c = ucp_first(); c; c = ucp_next(c)) {
		struct uwsgi_cache *uc = &c->uc;
		size_t i;

		if (!c->udp || !c->udp->n_servers)
			continue;
		if (c->udp->secret && !c->udp->guard) {
			c->udp->guard = uwsgi_calloc(sizeof(*c->udp->guard));
			c->udp->guard->window = UDP_WINDOW;
		}
		ucp_master_thread("the cache udp server", receiver, c);
		uwsgi_log("udp server thread enabled for cache \"%s\"\n", uc->name);
		for (i = 0; i < c->udp->n_servers; i++)
			uwsgi_log("*** udp server for cache \"%s\" running on %s ***\n", uc->name,
					c->udp->servers[i].text);
	}
}

void ucp_udp_quiesce(void)
{
	pthread_mutex_lock(&apply_lock);
	stopping = 1;
	pthread_mutex_unlock(&apply_lock);
}

/* ----------------------------------------------------------------- stats */

int ucp_udp_stat(const struct ucp_cache *c, size_t i, const char **name, uint64_t *value)
{
	if (!c->udp || i >= C_COUNT)
		return 0;
	*name = ctr_names[i];
	*value = __atomic_load_n(&c->udp->sh->ctr[i], __ATOMIC_RELAXED);
	return 1;
}
