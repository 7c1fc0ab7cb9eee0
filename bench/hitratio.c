/*
 * bench/hitratio.c - eviction quality of a purge_lru ucache cache against an
 * exact LRU and other eviction policies, on the same request traces
 * (bench/trace.h).
 *
 * Built and run by bench/run.py (section "hitratio"; never by `make test`):
 *
 *     cc -std=gnu11 -O2 -Iinclude bench/hitratio.c -o build/bench/hitratio \
 *        build/libucache.a -lxxhash -lpthread -lm
 *     build/bench/hitratio --selftest
 *     build/bench/hitratio [--json FILE] [options: --help]
 *
 * For each trace (zipf, then scan) the program replays every request as a
 * read-through cache would: get the key; on a miss, set it (a 32-byte value
 * naming the key).  On identical requests:
 *
 *   ucache      a fresh cache from the public API only (ucache_config_init,
 *               name, items, blocksize, blocks = items, purge_lru = 1,
 *               ignore_full = 1; ucache_create), one process;
 *   exact       a reference exact LRU: a doubly linked list, most recent at
 *               the head, evicting the tail - what the stock uWSGI cache's
 *               purge_lru list does;
 *   clock       CLOCK: second chance over a circular array of slots;
 *   sieve       SIEVE, one global queue (Zhang et al., NSDI'24);
 *   s3fifo      S3-FIFO (Yang et al., SOSP'23);
 *   sieve_part  SIEVE in one queue per engine stripe, keys placed as the
 *               engine places them: what ucache's purge_lru is meant to be.
 *
 * Every reference holds at most the cache's usable items
 * (ucache_stats().capacity = items - 1) and is simulated here, exactly and
 * deterministically (the rules are under "reference caches").
 *
 * hit ratio = hits / all requests of the trace (the scan's cold requests
 * can hit in none, so ratios between policies are the same over the Zipf
 * requests alone; both figures are written).  Everything is deterministic:
 * a fixed seed, one process; only the engine's own eviction choices may
 * vary.  The run fails (exit 1) if a set is refused, a hit returns a wrong
 * value, ucache_check() finds the cache inconsistent afterwards, or a
 * reference ends up holding more than its capacity.  --selftest checks the
 * references on traces whose hits are known (hand-worked ones, cycles,
 * scans, a naive LRU: see selftest()) and exits 1 if one is off; run.py
 * runs it before every measurement.  --s3fifo-threshold and --sieve-queues
 * vary the two references' parameters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "bench_util.h"
#include "bench_rand.h"
#include "trace.h"
#include "ucache.h"

#define VLEN 32

struct params {
	uint64_t items, keys, requests, scan_every, scan_len, blocksize, seed, s3_threshold;
	uint64_t sieve_queues;    /* sieve_part's queues; 0: the engine's stripe count */
	double alpha;
	const char *json;
	int selftest;
};

static struct params P = {
	.items = 10001, .keys = TRACE_KEYS, .requests = TRACE_DRAWS, .scan_every = TRACE_SCAN_EVERY,
	.scan_len = TRACE_SCAN_LEN, .blocksize = 64, .seed = TRACE_SEED, .alpha = TRACE_ALPHA,
	.s3_threshold = 1,
};

struct replay {
	uint64_t hits, zipf_hits, sets, set_errors, bad_values, get_errors;
	int first_set_error, first_get_error;
	double seconds;
	struct ucache_stats st;   /* ucache only */
	int check_rc;             /* ucache: ucache_check(); references: sim_audit() */
	char check_err[256];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The value stored for key id: "v" + the id, padded to VLEN bytes. */
static void make_value(char *v, uint32_t id)
{
	memset(v, '.', VLEN);
	v[0] = 'v';
	trace_key(v + 1, id);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "hitratio: out of memory\n");
		exit(1);
	}
	return p;
}

/* ------------------------------------------------------ reference caches */

/*
 * One struct sim serves every policy: a pool of nodes (a key id each),
 * doubly linked lists over them (head = newest; prev points towards the
 * head) and a direct-indexed map from key id to node (trace ids are dense,
 * so the map is a perfect hash table).  The rules, per policy:
 *
 *   exact LRU  a hit moves the key to the head; a miss on a full cache
 *              evicts the tail.
 *   CLOCK      second chance over a circular array of cap slots (no list):
 *              a hit sets the slot's reference bit; a miss on a full cache
 *              moves the hand, clearing set bits, to the first slot whose
 *              bit is clear, puts the new key there with its bit clear
 *              (libCacheSim's Clock starts new keys unreferenced too) and
 *              leaves the hand on the next slot.
 *   SIEVE      Zhang et al., "SIEVE is Simpler than LRU", NSDI'24: one FIFO
 *              queue, new keys at the head, bit clear; a hit sets the key's
 *              visited bit; eviction starts at the hand (the tail when there
 *              is none), walks towards the head clearing set bits, wrapping
 *              from the head to the tail, evicts the first key whose bit is
 *              clear and leaves the hand on the victim's newer neighbour
 *              (none past the head).  Survivors stay where they are.
 *   SIEVE per stripe  the same with one queue per engine stripe
 *              (stripe_of()): a full cache evicts from the new key's own
 *              queue, or when that one is empty from the queues in turn
 *              from a shared cursor (core/evict.c evict_sieve); capacity
 *              stays global, as the engine's slots are.
 *   S3-FIFO    see s3_insert().
 */
#define NIL UINT32_MAX
#define NPOL 5
#define STRIPES_MAX 256    /* core/layout.h UC_STRIPES_MAX */
#define STRIPE_ITEMS 64    /* core/layout.h UC_SIEVE_PER_STRIPE */
#define S3_THRESHOLD 1     /* S3-FIFO: S -> M when freq > 1 (the paper's Algorithm 1) */

enum { S3_S, S3_M, S3_G };  /* S3-FIFO's lists */

struct list {
	uint32_t head, tail, len;
	uint32_t hand;                /* SIEVE: the next candidate, NIL = the tail */
};

struct policy;

struct sim {
	const struct policy *pol;
	uint32_t cap, n, ids;         /* keys cached at most, now; the map's size */
	uint32_t nodes, used, free;   /* nodes; handed out; freed ones (chained by next) */
	uint32_t nq, cursor;          /* lists; sieve_part: the queue a stray victim comes from */
	uint32_t hand;                /* CLOCK: the slot under the hand */
	uint32_t small_cap, main_cap, threshold;  /* S3-FIFO (see s3_insert()) */
	uint32_t *prev, *next, *key;  /* per node */
	uint8_t *bits, *qof;          /* per node: reference / visited bit or S3-FIFO freq; its list */
	uint32_t *where;              /* key id -> node, NIL if not cached (S3-FIFO: or in G) */
	struct list *q;
};

struct policy {
	const char *name, *label;     /* JSON key; table column */
	int nq;                       /* lists; -1: one per engine stripe */
	int ghosts;                   /* S3-FIFO: nodes for G's keys too */
	int (*get)(struct sim *s, uint32_t id);      /* 1 = hit */
	void (*insert)(struct sim *s, uint32_t id);  /* a key that missed */
};

/* The engine's stripe count for a cache of `items` (core/layout.c
 * uc_plan_geometry): min(256, buckets) - the default hashsize makes that
 * 256 - halved while a stripe would get fewer than 64 of the items. */
static uint32_t engine_stripes(uint64_t items)
{
	uint32_t n = STRIPES_MAX;

	while (n > 1 && (uint64_t)n * STRIPE_ITEMS > items)
		n /= 2;
	return n;
}

/* The engine's stripe of key id among nq (a power of two): the low bits of
 * its xxh3 hash (the default) spread by uc_hash_mix (core/hash.h,
 * murmur3's finaliser), as uc_stripe_of_hash() picks it. */
static uint32_t stripe_of(uint32_t id, uint32_t nq)
{
	char k[TRACE_KLEN];
	uint32_t h;

	trace_key(k, id);
	h = (uint32_t)XXH3_64bits(k, TRACE_KLEN);
	h = (h ^ (h >> 16)) * 0x85ebca6bu;
	h = (h ^ (h >> 13)) * 0xc2b2ae35u;
	return (h ^ (h >> 16)) & (nq - 1);
}

static void list_unlink(struct sim *s, uint32_t x)
{
	struct list *l = &s->q[s->qof[x]];

	if (s->prev[x] != NIL)
		s->next[s->prev[x]] = s->next[x];
	else
		l->head = s->next[x];
	if (s->next[x] != NIL)
		s->prev[s->next[x]] = s->prev[x];
	else
		l->tail = s->prev[x];
	l->len--;
}

static void list_push(struct sim *s, uint32_t q, uint32_t x)
{
	struct list *l = &s->q[q];

	s->qof[x] = (uint8_t)q;
	s->prev[x] = NIL;
	s->next[x] = l->head;
	if (l->head != NIL)
		s->prev[l->head] = x;
	else
		l->tail = x;
	l->head = x;
	l->len++;
}

/* Node x to the head of list q (its own or another). */
static void list_move(struct sim *s, uint32_t x, uint32_t q)
{
	list_unlink(s, x);
	list_push(s, q, x);
}

static void map_key(struct sim *s, uint32_t x, uint32_t id)
{
	s->key[x] = id;
	s->where[id] = x;
	s->bits[x] = 0;
}

/* Cache key id in a new node at the head of list q. */
static void admit(struct sim *s, uint32_t q, uint32_t id)
{
	uint32_t x = s->free;

	if (x != NIL) {
		s->free = s->next[x];
	} else if (s->used < s->nodes) {
		x = s->used++;
	} else {  /* a policy holding more than it may: fail here, not in a corrupt heap */
		fprintf(stderr, "hitratio: %s: more than %u nodes\n", s->pol->name, s->nodes);
		exit(1);
	}
	map_key(s, x, id);
	list_push(s, q, x);
	s->n++;
}

/* Forget node x's key (S3-FIFO: also G's tail) and free the node. */
static void drop(struct sim *s, uint32_t x)
{
	list_unlink(s, x);
	s->where[s->key[x]] = NIL;
	s->next[x] = s->free;
	s->free = x;
}

static void evict(struct sim *s, uint32_t x)
{
	drop(s, x);
	s->n--;
}

/* ---- exact LRU */

static int lru_get(struct sim *s, uint32_t id)
{
	uint32_t x = s->where[id];

	if (x == NIL)
		return 0;
	if (x != s->q[0].head)
		list_move(s, x, 0);
	return 1;
}

static void lru_insert(struct sim *s, uint32_t id)
{
	if (s->n >= s->cap)
		evict(s, s->q[0].tail);
	admit(s, 0, id);
}

/* ---- CLOCK and SIEVE: a hit only sets the key's bit */

static int bit_get(struct sim *s, uint32_t id)
{
	uint32_t x = s->where[id];

	if (x == NIL)
		return 0;
	s->bits[x] = 1;
	return 1;
}

static void clock_insert(struct sim *s, uint32_t id)
{
	uint32_t x;

	if (s->n < s->cap) {
		x = s->n++;
	} else {
		for (x = s->hand; s->bits[x]; x = (x + 1) % s->cap)
			s->bits[x] = 0;  /* a second chance */
		s->where[s->key[x]] = NIL;
		s->hand = (x + 1) % s->cap;
	}
	map_key(s, x, id);
}

/* SIEVE's victim in l (not empty); the hand stays on its newer neighbour. */
static uint32_t sieve_victim(struct sim *s, struct list *l)
{
	uint32_t x = l->hand != NIL ? l->hand : l->tail;

	while (s->bits[x]) {
		s->bits[x] = 0;
		x = s->prev[x] != NIL ? s->prev[x] : l->tail;
	}
	l->hand = s->prev[x];
	return x;
}

static void sieve_insert(struct sim *s, uint32_t id)
{
	uint32_t q = s->nq > 1 ? stripe_of(id, s->nq) : 0, v = q;

	if (s->n >= s->cap) {
		while (!s->q[v].len)  /* only per stripe: the key's own queue is empty */
			v = s->cursor++ % s->nq;
		evict(s, sieve_victim(s, &s->q[v]));
	}
	admit(s, q, id);
}

/* ---- S3-FIFO */

static int s3_get(struct sim *s, uint32_t id)
{
	uint32_t x = s->where[id];

	if (x == NIL || s->qof[x] == S3_G)
		return 0;
	if (s->bits[x] < 3)
		s->bits[x]++;
	return 1;
}

/* FIFO-reinsertion with the 2-bit counter: at most 3 rounds. */
static void s3_evict_main(struct sim *s)
{
	uint32_t x;

	while ((x = s->q[S3_M].tail) != NIL && s->bits[x]) {
		s->bits[x]--;
		list_move(s, x, S3_M);
	}
	if (x != NIL)
		evict(s, x);
}

static void s3_evict_small(struct sim *s)
{
	uint32_t x;

	while ((x = s->q[S3_S].tail) != NIL) {
		if (s->bits[x] > s->threshold) {
			s->bits[x] = 0;
			list_move(s, x, S3_M);
			if (s->q[S3_M].len > s->main_cap)
				s3_evict_main(s);
			continue;
		}
		list_move(s, x, S3_G);  /* the key stays mapped, its value is gone */
		s->n--;
		if (s->q[S3_G].len > s->main_cap)
			drop(s, s->q[S3_G].tail);
		return;
	}
}

/*
 * S3-FIFO: Yang, Zhang, Qiu, Yue, Vinayak, "FIFO queues are all you need
 * for cache eviction", SOSP'23, Algorithm 1 and section 4, for keys of one
 * size.  The exact rules implemented:
 *   - S gets small_cap = cap / 10 (at least 1) of the capacity, M the rest
 *     (main_cap); G remembers up to main_cap keys evicted from S, no value.
 *   - a hit (in S or M) increments the key's counter, capped at 3; a
 *     request for a key in G is a miss.
 *   - a miss: while S and M hold cap keys, evict; then the key goes to the
 *     head of M if it is (still) in G, leaving G, else to the head of S;
 *     its counter starts at 0.
 *   - evict: from S if S holds at least small_cap keys, else from M.
 *   - from S: take S's tail; if its counter is > 1 (Algorithm 1's
 *     "t.freq > 1"; the paper's simulator, libCacheSim S3FIFOv0.c, has
 *     move-to-main-threshold=2, the same rule; --s3fifo-threshold), move it
 *     to M's head with its counter cleared (section 4: "its access bits
 *     are cleared during the move"), evict from M if M now holds more than
 *     main_cap, and take the next tail; otherwise move it to G's head,
 *     dropping G's tail past main_cap keys, and stop.
 *   - from M: take M's tail; while its counter is > 0, decrement it and
 *     move the key to M's head; evict the first tail whose counter is 0.
 */
static void s3_insert(struct sim *s, uint32_t id)
{
	uint32_t x;

	while (s->n >= s->cap) {
		if (s->q[S3_S].len >= s->small_cap)
			s3_evict_small(s);
		else
			s3_evict_main(s);
	}
	x = s->where[id];
	if (x == NIL) {
		admit(s, S3_S, id);
		return;
	}
	list_move(s, x, S3_M);  /* from G */
	s->bits[x] = 0;
	s->n++;
}

static const struct policy POLICIES[NPOL] = {
	{ "exact", "exact LRU", 1, 0, lru_get, lru_insert },
	{ "clock", "CLOCK", 0, 0, bit_get, clock_insert },
	{ "sieve", "SIEVE", 1, 0, bit_get, sieve_insert },
	{ "s3fifo", "S3-FIFO", 3, 1, s3_get, s3_insert },
	{ "sieve_part", "SIEVE/stripe", -1, 0, bit_get, sieve_insert },
};

/* S3-FIFO's S: a tenth of the capacity, at least one key. */
static uint32_t s3_small_cap(uint32_t cap)
{
	return cap / 10 ? cap / 10 : 1;
}

/* Queues of a policy at capacity cap (the cache has cap + 1 items). */
static uint32_t policy_queues(const struct policy *pol, uint32_t cap)
{
	if (pol->nq >= 0)
		return (uint32_t)pol->nq;
	return P.sieve_queues ? (uint32_t)P.sieve_queues : engine_stripes((uint64_t)cap + 1);
}

static void sim_init(struct sim *s, const struct policy *pol, uint32_t cap, uint32_t ids)
{
	uint32_t nodes;

	memset(s, 0, sizeof(*s));
	s->pol = pol;
	s->cap = cap;
	s->ids = ids;
	s->free = NIL;
	s->nq = policy_queues(pol, cap);
	s->small_cap = s3_small_cap(cap);
	s->main_cap = cap - s->small_cap;
	s->threshold = (uint32_t)P.s3_threshold;
	nodes = s->nodes = cap + (pol->ghosts ? s->main_cap : 0);
	s->prev = xmalloc(sizeof(uint32_t) * nodes);
	s->next = xmalloc(sizeof(uint32_t) * nodes);
	s->key = xmalloc(sizeof(uint32_t) * nodes);
	s->bits = xmalloc(nodes);
	s->qof = xmalloc(nodes);
	s->where = xmalloc(sizeof(uint32_t) * ids);
	memset(s->where, 0xff, sizeof(uint32_t) * ids);
	s->q = xmalloc(sizeof(struct list) * s->nq);
	for (uint32_t i = 0; i < s->nq; i++)
		s->q[i] = (struct list){ .head = NIL, .tail = NIL, .hand = NIL };
}

static void sim_free(struct sim *s)
{
	free(s->prev);
	free(s->next);
	free(s->key);
	free(s->bits);
	free(s->qof);
	free(s->where);
	free(s->q);
}

/* What every policy keeps: at most cap keys cached, the map and the lists
 * agreeing on how many, S3-FIFO's G within main_cap keys.  0, or -1 with
 * what broke in err. */
static int sim_audit(const struct sim *s, char *err, size_t errlen)
{
	uint64_t mapped = 0, wrong = 0, listed = 0;
	uint32_t ghosts = s->pol->ghosts ? s->q[S3_G].len : 0;

	for (uint32_t id = 0; id < s->ids; id++) {
		mapped += s->where[id] != NIL;
		wrong += s->where[id] != NIL && s->key[s->where[id]] != id;
	}
	for (uint32_t i = 0; i < s->nq; i++)
		listed += s->q[i].len;
	if (!s->nq)  /* CLOCK: no list */
		listed = s->n;
	if (s->n > s->cap || wrong || mapped != (uint64_t)s->n + ghosts || listed != mapped ||
			ghosts > s->main_cap) {
		snprintf(err, errlen, "%s: %u keys cached (capacity %u), %" PRIu64 " mapped (%" PRIu64
				" to another key), %" PRIu64 " listed, %u in G (at most %u)", s->pol->name,
				s->n, s->cap, mapped, wrong, listed, ghosts, s->main_cap);
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- replays */

/* Replay t through a reference of capacity cap, auditing it every `every`
 * requests (0: once, at the end). */
static void replay_sim(const struct policy *pol, const struct trace *t, uint32_t cap, uint64_t every,
		struct replay *r)
{
	struct sim s;
	double t0;

	memset(r, 0, sizeof(*r));
	sim_init(&s, pol, cap, t->ids);
	t0 = now_s();
	for (uint64_t q = 0; q < t->n && !r->check_rc; q++) {
		uint32_t id = t->id[q];

		if (pol->get(&s, id)) {
			r->hits++;
			r->zipf_hits += id < t->keys;
		} else {
			pol->insert(&s, id);
			r->sets++;
		}
		if (every && (q + 1) % every == 0)
			r->check_rc = sim_audit(&s, r->check_err, sizeof(r->check_err));
	}
	r->seconds = now_s() - t0;
	if (!r->check_rc)
		r->check_rc = sim_audit(&s, r->check_err, sizeof(r->check_err));
	sim_free(&s);
}

static ucache_t *make_cache(const char *name)
{
	return bench_cache(name, P.items, P.blocksize, 1, NULL);
}

static void replay_ucache(ucache_t *c, const struct trace *t, struct replay *r)
{
	char key[TRACE_KLEN], val[VLEN], want[VLEN], buf[256];
	double t0;

	memset(r, 0, sizeof(*r));
	t0 = now_s();
	for (uint64_t q = 0; q < t->n; q++) {
		uint32_t id = t->id[q];
		size_t vl = 0;
		int rc;

		trace_key(key, id);
		rc = ucache_get(c, key, TRACE_KLEN, buf, sizeof(buf), &vl);
		if (rc == 0) {
			r->hits++;
			r->zipf_hits += id < t->keys;
			make_value(want, id);
			if (vl != VLEN || memcmp(buf, want, VLEN))
				r->bad_values++;
			continue;
		}
		if (rc != -ENOENT && !r->get_errors++)
			r->first_get_error = rc;
		make_value(val, id);
		rc = ucache_set(c, key, TRACE_KLEN, val, VLEN, 0, 0);
		r->sets++;
		if (rc && !r->set_errors++)
			r->first_set_error = rc;
	}
	r->seconds = now_s() - t0;
	ucache_stats(c, &r->st);
	r->check_rc = ucache_check(c, r->check_err, sizeof(r->check_err));
}

/* ------------------------------------------------------------ self-test */

/* Exact LRU the slow way, to check the list one: a stamp per cached key,
 * linear searches for the key and for the oldest stamp. */
static uint64_t naive_lru_hits(const struct trace *t, uint32_t cap)
{
	uint32_t *key = xmalloc(sizeof(uint32_t) * cap), n = 0;
	uint64_t *stamp = xmalloc(sizeof(uint64_t) * cap), hits = 0;

	for (uint64_t q = 0; q < t->n; q++) {
		uint32_t i = 0, oldest = 0;

		for (; i < n && key[i] != t->id[q]; i++)
			if (stamp[i] < stamp[oldest])
				oldest = i;
		if (i < n)
			hits++;
		else if (n < cap)
			i = n++;
		else
			i = oldest;
		key[i] = t->id[q];
		stamp[i] = q;
	}
	free(key);
	free(stamp);
	return hits;
}

/* Replay t through every reference (audited every 1000 requests); 1 if one
 * fails its audit or, where want is given, misses its expected hit count. */
static int selftest_case(const char *what, const struct trace *t, uint32_t cap, const int64_t *want)
{
	int bad = 0;

	printf("  %-34s cap %5u:", what, cap);
	for (int p = 0; p < NPOL; p++) {
		struct replay r;

		replay_sim(&POLICIES[p], t, cap, 1000, &r);
		printf(" %s %" PRIu64, POLICIES[p].name, r.hits);
		if (r.check_rc || (want && want[p] >= 0 && r.hits != (uint64_t)want[p])) {
			printf(" (%s%s%" PRId64 ")", r.check_err, r.check_rc ? "" : "expected ", want ? want[p] : 0);
			bad = 1;
		}
	}
	printf("%s\n", bad ? "  FAILED" : "");
	return bad;
}

/* A trace of one key per character of reqs (tiny hand-checked cases). */
static struct trace trace_of(const char *reqs, uint32_t *ids)
{
	struct trace t = { .id = ids, .n = strlen(reqs), .keys = 256, .ids = 256 };

	for (uint64_t i = 0; i < t.n; i++)
		ids[i] = (unsigned char)reqs[i];
	return t;
}

/* Hand-worked traces: where the policies' rules differ, per POLICIES. */
static const struct {
	const char *reqs;
	uint32_t cap;
	int64_t hits[NPOL];
} HAND[] = {
	/* A is hit, D evicts B under LRU, CLOCK and SIEVE; E evicts A under
	 * LRU and CLOCK (whose hand came round to it), not under SIEVE (whose
	 * hand moved on to the newer keys).  S3-FIFO sends A, hit once, to G
	 * at D and still has B */
	{ "ABCADBEA", 3, { 1, 1, 2, 2, 2 } },
	/* X hit twice: S3-FIFO moves it from S to M, a scan of 10 keeps it */
	{ "XXXabcdefghijX", 10, { 2, 3, 3, 3, 3 } },
	/* Y hit once: S3-FIFO drops it to G, the next miss brings it into M,
	 * where 20 cold keys do not reach it; CLOCK's hand comes round to it,
	 * SIEVE's keeps chasing the new keys at the head */
	{ "YYabcdefghijYklmnopqrstuvwxyz0123Y", 10, { 1, 2, 3, 2, 3 } },
};

/* A trace whose request q is key q % period (a cycle; a scan when period
 * is n). */
static void trace_cycle(struct trace *t, uint64_t n, uint32_t period)
{
	*t = (struct trace){ .id = xmalloc(sizeof(uint32_t) * n), .n = n, .keys = period, .ids = period };
	for (uint64_t q = 0; q < n; q++)
		t->id[q] = (uint32_t)(q % period);
}

/*
 * --selftest: the references on traces whose hits are known: HAND's, per
 * policy; for every policy, a cycle over cap - 1 keys misses only its
 * first round and a scan (each key once) never hits; on a Zipf trace with
 * scans (cap 511: 8 stripes, so sieve_part's per-stripe path runs) the
 * list LRU hits exactly as often as a naive one; and every reference
 * passes its audit every 1000 requests of every case.  0 if all pass.
 */
static int selftest(void)
{
	const uint32_t cap = 511, rounds = 50;
	uint32_t ids[64];               /* HAND's longest trace, and more */
	int64_t want[NPOL];
	struct trace t;
	int bad = 0;

	P.s3_threshold = S3_THRESHOLD;  /* HAND's counts are the paper's rule's */
	P.sieve_queues = 0;             /* and the engine's stripes' */
	printf("hitratio --selftest: hits of each simulated reference (exact LRU, CLOCK, SIEVE, S3-FIFO,\n"
			"  SIEVE per stripe) on traces whose hits are known\n");
	for (size_t i = 0; i < sizeof(HAND) / sizeof(HAND[0]); i++) {
		t = trace_of(HAND[i].reqs, ids);
		bad |= selftest_case(HAND[i].reqs, &t, HAND[i].cap, HAND[i].hits);
	}
	trace_cycle(&t, (uint64_t)rounds * (cap - 1), cap - 1);
	for (int p = 0; p < NPOL; p++)
		want[p] = (int64_t)(rounds - 1) * (cap - 1);
	bad |= selftest_case("cycle over cap - 1 keys, 50 rounds", &t, cap, want);
	trace_free(&t);
	trace_cycle(&t, 20 * cap, 20 * cap);
	memset(want, 0, sizeof(want));
	bad |= selftest_case("scan: 20 x cap keys, each once", &t, cap, want);
	trace_free(&t);
	if (trace_build(&t, 10 * cap, 200000, 0.99, 20000, 3 * cap / 2, TRACE_SEED) < 0) {
		fprintf(stderr, "hitratio: out of memory\n");
		return 1;
	}
	want[0] = (int64_t)naive_lru_hits(&t, cap);
	for (int p = 1; p < NPOL; p++)
		want[p] = -1;
	bad |= selftest_case("Zipf + scans (LRU: a naive LRU's)", &t, cap, want);
	trace_free(&t);
	printf("%s\n", bad ? "hitratio --selftest: FAILED" : "hitratio --selftest: ok");
	return bad;
}

/* --------------------------------------------------------------- output */

static void json_replay(FILE *f, const char *name, const struct trace *t, const struct replay *r, int uc)
{
	uint64_t zipf_n = t->n - t->scan;

	fprintf(f, "   \"%s\": {\"hits\": %" PRIu64 ", \"hit_ratio\": %.6f, \"zipf_hit_ratio\": %.6f, "
			"\"sets\": %" PRIu64 ", \"seconds\": %.3f, \"requests_per_s\": %.0f",
			name, r->hits, (double)r->hits / (double)t->n,
			zipf_n ? (double)r->zipf_hits / (double)zipf_n : 0.0, r->sets, r->seconds,
			r->seconds > 0 ? (double)t->n / r->seconds : 0.0);
	if (uc)
		fprintf(f, ", \"set_errors\": %" PRIu64 ", \"first_set_error\": %d, \"get_errors\": %" PRIu64
				", \"bad_values\": %" PRIu64 ", \"items_at_end\": %" PRIu64 ", \"capacity\": %" PRIu64
				", \"evictions\": %" PRIu64 ", \"engine_hits\": %" PRIu64 ", \"engine_misses\": %" PRIu64
				", \"full\": %" PRIu64 ", \"mapped_bytes\": %" PRIu64 ", \"check\": %d",
				r->set_errors, r->first_set_error, r->get_errors, r->bad_values, r->st.items,
				r->st.capacity, r->st.evictions, r->st.hits, r->st.misses, r->st.full,
				r->st.mapped_bytes, r->check_rc);
	fprintf(f, "}");
}

struct result {
	struct trace t;
	struct replay uc, ref[NPOL];  /* ref[0]: exact LRU */
};

static const char *const NAMES[2] = { "zipf", "scan" };

static int write_json(const struct result *res, int bad)
{
	FILE *f = fopen(P.json, "w");
	uint32_t cap = (uint32_t)res[0].uc.st.capacity;

	if (!f) {
		fprintf(stderr, "--json %s: %s\n", P.json, strerror(errno));
		return -1;
	}
	fprintf(f, "{\"items\": %" PRIu64 ", \"capacity\": %u, \"blocksize\": %" PRIu64
			", \"klen\": %d, \"vlen\": %d, \"keys\": %" PRIu64 ", \"draws\": %" PRIu64
			", \"alpha\": %.4f, \"scan_every\": %" PRIu64 ", \"scan_len\": %" PRIu64
			", \"seed\": %" PRIu64 ", \"sieve_part_queues\": %u, \"s3fifo_small\": %u"
			", \"s3fifo_threshold\": %" PRIu64 ", \"failed\": %d, \"traces\": {",
			P.items, cap, P.blocksize, TRACE_KLEN, VLEN, P.keys, P.requests, P.alpha, P.scan_every,
			P.scan_len, P.seed, policy_queues(&POLICIES[NPOL - 1], cap), s3_small_cap(cap),
			P.s3_threshold, bad);
	for (int k = 0; k < 2; k++) {
		const struct trace *t = &res[k].t;

		fprintf(f, "%s\n  \"%s\": {\"requests\": %" PRIu64 ", \"scan_requests\": %" PRIu64
				", \"id_space\": %u,\n", k ? "," : "", NAMES[k], t->n, t->scan, t->ids);
		json_replay(f, "ucache", t, &res[k].uc, 1);
		for (int p = 0; p < NPOL; p++) {
			fprintf(f, ",\n");
			json_replay(f, POLICIES[p].name, t, &res[k].ref[p], 0);
		}
		fprintf(f, "}");
	}
	fprintf(f, "}}\n");
	if (fclose(f)) {
		fprintf(stderr, "--json %s: %s\n", P.json, strerror(errno));
		return -1;
	}
	return 0;
}

/* Build trace k, replay it through ucache and then through every reference
 * at the cache's capacity, print its row.  1 if something failed. */
static int measure(int k, struct result *res)
{
	struct trace *t = &res->t;
	const struct replay *uc = &res->uc, *ex = &res->ref[0];
	ucache_t *c;
	uint64_t cap;
	char name[32];
	int bad = 0;

	if (trace_build(t, (uint32_t)P.keys, P.requests, P.alpha, k ? P.scan_every : 0, P.scan_len,
			P.seed) < 0) {
		fprintf(stderr, "hitratio: cannot build the %s trace (memory, or more than 10^8 ids)\n", NAMES[k]);
		exit(1);
	}
	snprintf(name, sizeof(name), "hit_%s", NAMES[k]);
	c = make_cache(name);
	replay_ucache(c, t, &res->uc);
	cap = uc->st.capacity;
	ucache_destroy(c);
	if (!cap || cap > P.items) {
		fprintf(stderr, "hitratio: ucache_stats() capacity %" PRIu64 " for items=%" PRIu64 "\n", cap, P.items);
		exit(1);
	}
	for (int p = 0; p < NPOL; p++) {
		replay_sim(&POLICIES[p], t, (uint32_t)cap, 0, &res->ref[p]);
		if (res->ref[p].check_rc) {
			fprintf(stderr, "hitratio: %s: %s\n", NAMES[k], res->ref[p].check_err);
			bad = 1;
		}
	}
	printf("%-6s %10" PRIu64 " %8" PRIu64 " %10.4f %10.4f %10.4f %9" PRIu64 " %10.0f\n", NAMES[k],
			t->n, t->scan, (double)uc->hits / (double)t->n, (double)ex->hits / (double)t->n,
			ex->hits ? (double)uc->hits / (double)ex->hits : 0, uc->st.evictions,
			uc->seconds > 0 ? (double)t->n / uc->seconds : 0);
	if (uc->set_errors || uc->get_errors || uc->bad_values || uc->check_rc) {
		fprintf(stderr, "hitratio: %s: %" PRIu64 " sets refused (first: %s), %" PRIu64 " get errors, %"
				PRIu64 " wrong values, ucache_check: %d %s\n", NAMES[k], uc->set_errors,
				strerror(-uc->first_set_error), uc->get_errors, uc->bad_values, uc->check_rc,
				uc->check_err);
		bad = 1;
	}
	return bad;
}

/* The references' table: hit ratio, and / exact LRU's. */
static void print_references(const struct result *res)
{
	uint32_t cap = (uint32_t)res[0].uc.st.capacity;

	printf("\nthe same requests through simulated references of the same capacity: hit ratio (/ exact LRU)\n"
			"%-6s", "trace");
	for (int p = 0; p < NPOL; p++)
		printf(" %16s", POLICIES[p].label);
	printf(" %16s\n", "ucache");
	for (int k = 0; k < 2; k++) {
		double ex = (double)res[k].ref[0].hits;

		printf("%-6s", NAMES[k]);
		for (int p = 0; p <= NPOL; p++) {
			uint64_t h = p < NPOL ? res[k].ref[p].hits : res[k].uc.hits;

			printf("  %6.4f (%6.4f)", (double)h / (double)res[k].t.n, ex > 0 ? (double)h / ex : 0);
		}
		printf("\n");
	}
	printf("  SIEVE/stripe: %u queues by key hash, as the engine's stripes; S3-FIFO: S %u keys,\n"
			"  M and G %u, S -> M when freq > %" PRIu64 "\n", policy_queues(&POLICIES[NPOL - 1], cap),
			s3_small_cap(cap), cap - s3_small_cap(cap), P.s3_threshold);
	/* 0 while the engine evicts exactly as its model: a change to the
	 * engine's policy, stripes or hash shows here first */
	printf("  ucache - SIEVE/stripe: %+" PRId64 " hits (zipf), %+" PRId64 " (scan)\n",
			(int64_t)(res[0].uc.hits - res[0].ref[NPOL - 1].hits),
			(int64_t)(res[1].uc.hits - res[1].ref[NPOL - 1].hits));
}

static void usage(const char *argv0)
{
	printf("usage: %s [--json FILE] [--items N] [--keys K] [--requests R]\n"
		"          [--alpha A] [--scan-every E] [--scan-len L] [--blocksize B] [--seed S]\n"
		"          [--s3fifo-threshold T] [--sieve-queues Q] | --selftest\n"
		"  --items N       cache items (usable: N - 1; default 10001)\n"
		"  --keys K        distinct Zipf keys (default 100000)\n"
		"  --requests R    Zipf draws per trace (default 2000000)\n"
		"  --alpha A       Zipf exponent (default 0.99)\n"
		"  --scan-every E  scan trace: a burst every E draws (default 100000)\n"
		"  --scan-len L    scan trace: cold keys per burst (default 15000)\n"
		"  --blocksize B   ucache blocksize (default 64; values are %d bytes)\n"
		"  --seed S        trace seed\n"
		"  --s3fifo-threshold T  S3-FIFO moves a key from S to M when its counter\n"
		"                  is > T (default %d, the paper's; 0: hit once)\n"
		"  --sieve-queues Q  SIEVE/stripe's queues: a power of two <= %d (default:\n"
		"                  the engine's stripes for --items)\n"
		"  --json FILE     write the results as JSON\n"
		"  --selftest      check the simulated references and exit\n", argv0, VLEN, S3_THRESHOLD,
		STRIPES_MAX);
}

static uint64_t num_arg(const char *opt, const char *v)
{
	char *end;
	unsigned long long x = strtoull(v, &end, 0);

	if (end == v || *end) {
		fprintf(stderr, "hitratio: bad %s \"%s\"\n", opt, v);
		exit(2);
	}
	return x;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--json") && v) {
			P.json = argv[++i];
		} else if (!strcmp(a, "--items") && v) {
			P.items = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--keys") && v) {
			P.keys = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--requests") && v) {
			P.requests = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--alpha") && v) {
			P.alpha = strtod(argv[++i], NULL);
		} else if (!strcmp(a, "--scan-every") && v) {
			P.scan_every = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--scan-len") && v) {
			P.scan_len = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--blocksize") && v) {
			P.blocksize = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--seed") && v) {
			P.seed = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--s3fifo-threshold") && v) {
			P.s3_threshold = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--sieve-queues") && v) {
			P.sieve_queues = num_arg(a, argv[++i]);
		} else if (!strcmp(a, "--selftest")) {
			P.selftest = 1;
		} else {
			usage(argv[0]);
			exit(strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0);
		}
	}
	if (P.items < 2 || P.keys < 2 || P.keys > UINT32_MAX || !P.requests || !P.scan_every ||
			!(P.alpha > 0) || P.blocksize < VLEN || P.s3_threshold > 3 || P.sieve_queues > STRIPES_MAX ||
			(P.sieve_queues & (P.sieve_queues - 1))) {
		fprintf(stderr, "hitratio: need items >= 2, keys >= 2, requests > 0, scan-every > 0, alpha > 0, "
				"blocksize >= %d, s3fifo-threshold <= 3, sieve-queues a power of two <= %d\n",
				VLEN, STRIPES_MAX);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct result res[2];
	int bad = 0;

	parse_args(argc, argv);
	if (P.selftest)
		return selftest();
	ucache_set_logger(bench_logger, NULL);
	printf("hitratio: purge_lru ucache vs exact LRU (libucache %s)\n", UCACHE_VERSION);
	printf("  items=%" PRIu64 " (usable %" PRIu64 "), blocksize %" PRIu64 ", %d-byte keys, %d-byte values\n"
			"  Zipf(%.2f) over %" PRIu64 " keys, %" PRIu64 " draws; scan: +%" PRIu64
			" cold keys after draw %" PRIu64 " and every %" PRIu64 " draws after it\n\n",
			P.items, P.items - 1, P.blocksize, TRACE_KLEN, VLEN, P.alpha, P.keys, P.requests,
			P.scan_len, P.scan_every / 2, P.scan_every);
	printf("%-6s %10s %8s %10s %10s %10s %9s %10s\n", "trace", "requests", "scan",
			"ucache", "exact LRU", "ucache/LRU", "evictions", "ucache op/s");
	for (int k = 0; k < 2; k++)
		bad |= measure(k, &res[k]);
	print_references(res);
	printf("\n  hit ratio = hits / all requests of the trace; capacity of every reference = the\n"
			"  cache's usable items (%" PRIu64 ").\n", res[0].uc.st.capacity);
	if (P.json && write_json(res, bad) < 0)
		return 1;
	for (int k = 0; k < 2; k++)
		trace_free(&res[k].t);
	return bad;
}
