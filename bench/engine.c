/*
 * bench/engine.c - micro-benchmark of the ucache engine (libucache.a).
 *
 * Run by `make bench-engine` (never by `make test`).  For each workload it
 * measures ucache throughput with 1 process, 2 processes (and nproc when
 * that is larger), and a "ceiling": the same operation loop, 1 process, on an
 * unlocked private open-addressing hash table (malloc'd in that process)
 * doing the same useful work - hash the key, compare it, memcpy the value
 * into the caller's buffer.  The ceiling is what a cache costs with no
 * sharing, no locks, no checksums and a compact layout; ucache/ceiling says
 * what the shared-memory machinery costs on top of that.
 *
 * Workloads (16-byte keys, 100-byte values, keys picked by a per-process
 * xorshift64* generator over pre-generated key arrays, so no snprintf is
 * timed):
 *   get-hit     ucache_get of a prefilled key
 *   get-miss    ucache_get of a key that was never stored
 *   set (+del)  insert a new key; once a process has `window` live keys of
 *               its own, each insert is followed by a delete of its oldest
 *               one to keep room (ops counts the inserts)
 *   update      overwrite a prefilled key (UCACHE_SET_UPDATE)
 *   mixed 95/5  95% get-hit, 5% update
 *   lru-churn   a purge_lru cache kept full: every op inserts a new key and
 *               so evicts the least recently used one
 * New keys are "new:" + 4 chars of a per-process tag + 8 chars of a counter,
 * built by a few shifts (the same cost on both sides of the comparison).
 *
 * Timing: each child pins itself to one CPU (--no-pin to disable), prepares,
 * signals ready, and spins on a shared start flag; then it runs its loop for
 * --duration seconds of CLOCK_MONOTONIC, checking the clock every BATCH ops,
 * and writes ops / elapsed into a MAP_SHARED results page.  The total for N
 * processes is the sum of each process's ops/s.  Each cell is the best of
 * --reps runs, interleaved across the columns of a row (see measure()).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "bench_util.h"
#include "bench_rand.h"
#include "ucache.h"

#define KLEN 16          /* every benchmark key is exactly 16 bytes */
#define VBUF 4096        /* caller buffer for gets */
#define BATCH 256        /* ops between two clock reads */
#define MAXP 64          /* most processes in one run */
#define MAXPLIST 8       /* most process counts measured */
#define SET_WINDOW 1024  /* live keys a set-workload process keeps (at most) */

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define INLINE static inline __attribute__((always_inline))

enum workload { WL_GET_HIT, WL_GET_MISS, WL_SET, WL_UPDATE, WL_MIXED, WL_LRU, WL_COUNT };
enum backend { BE_UCACHE, BE_CEIL };

static const char *const wl_name[WL_COUNT] = {
	"get-hit", "get-miss", "set (+del)", "update", "mixed 95/5", "lru-churn",
};
static const char *const wl_json[WL_COUNT] = {
	"get_hit", "get_miss", "set", "update", "mixed_95_5", "lru_churn",
};

struct params {
	double duration;          /* seconds per measured run */
	int reps;                 /* runs per cell; the best one counts */
	unsigned wl_mask;         /* workloads to run (--only) */
	uint64_t items;           /* ucache items (usable: items - 1) */
	uint64_t fill;            /* prefilled keys */
	uint64_t blocksize;
	size_t vlen;              /* value bytes */
	enum ucache_hash hash;
	int plist[MAXPLIST];      /* process counts, plist[0] == 1 */
	int np;
	int pin;
	const char *json;
};

/* One process's report, written into the shared page. */
struct slot {
	uint64_t ops, errs, ns, sink;
	int64_t first_err;
	int ready;
};

struct shared {
	int go;                   /* start flag, set by the parent */
	struct slot slot[MAXP];
};

struct result {
	double ops_s;             /* NAN when the run failed */
	uint64_t ops, errs;
	int64_t first_err;
	char why[96];             /* why it failed, "" if it did not */
};

/* Read-only state every child inherits. */
static struct params P;
static unsigned char (*hit_keys)[KLEN];
static unsigned char (*miss_keys)[KLEN];
static struct shared *SH;
static int cpus[1024], ncpus;

/* ------------------------------------------------------------ small tools */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "new:" + 4 tag chars; fresh_key_n() writes the 8 counter chars. */
static void fresh_key_init(unsigned char *k, uint32_t tag)
{
	memcpy(k, "new:", 4);
	for (int i = 0; i < 4; i++)
		k[4 + i] = (unsigned char)('a' + ((tag >> (4 * i)) & 15));
}

INLINE void fresh_key_n(unsigned char *k, uint32_t n)
{
	uint64_t x = n;

	x = (x | x << 16) & 0x0000ffff0000ffffull;
	x = (x | x << 8) & 0x00ff00ff00ff00ffull;
	x = (x | x << 4) & 0x0f0f0f0f0f0f0f0full;
	x += 0x6161616161616161ull; /* nibble -> 'a'..'p' */
	memcpy(k + 8, &x, 8);
}

static const char *errname(int64_t rc)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%" PRId64 " (%s)", rc, rc < 0 ? strerror((int)-rc) : "?");
	return buf;
}


/* ------------------------------------------------------ the ceiling table */

/*
 * An unlocked private hash table, the best case for this work: linear
 * probing over 8-byte buckets {hash, entry + 1} at load <= 0.5, entries in
 * one malloc'd array (header, key, value inline), deletion by backward shift
 * (no tombstones), optional LRU list for lru-churn.  The key hash is the same
 * function the cache is configured with, spread like the engine spreads it.
 */
#define NIL UINT32_MAX

struct cbucket {
	uint32_t hash, idx;       /* idx: entry + 1, 0 = empty */
};

struct centry {
	uint32_t prev, next;      /* LRU list, or free list (next) */
	uint32_t hash;
	uint16_t klen, vlen;      /* then key[KLEN], value[valmax] */
};

struct ctable {
	struct cbucket *b;
	uint64_t mask;
	unsigned char *ents;
	size_t stride, valmax;
	uint32_t cap, free_head, lru_head, lru_tail;
	int lru;
	enum ucache_hash hash;
};

#define CE(t, i) ((struct centry *)((t)->ents + (size_t)(i) * (t)->stride))
#define CE_KEY(e) ((unsigned char *)((e) + 1))
#define CE_VAL(e) (CE_KEY(e) + KLEN)

static uint32_t ct_hash(enum ucache_hash kind, const void *key, size_t len)
{
	const uint8_t *p = key;
	uint32_t h;

	if (kind == UCACHE_HASH_XXH3) {
		h = (uint32_t)XXH3_64bits(key, len);
	} else if (kind == UCACHE_HASH_MURMUR2) {
		const uint32_t m = 0x5bd1e995;

		h = (uint32_t)len;
		for (; len >= 4; len -= 4, p += 4) {
			uint32_t k;

			memcpy(&k, p, 4);
			k *= m;
			k ^= k >> 24;
			k *= m;
			h = h * m ^ k;
		}
		for (size_t i = 0; i < len; i++)
			h ^= (uint32_t)p[i] << (8 * i);
		h = (h * m) ^ ((h * m) >> 13);
		h *= m;
		h ^= h >> 15;
	} else {
		h = 5381;
		for (size_t i = 0; i < len; i++)
			h = ((h << 5) + h) ^ (uint32_t)(int32_t)(signed char)p[i];
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static struct ctable *ct_create(uint32_t cap, size_t valmax, int lru, enum ucache_hash hash)
{
	struct ctable *t = calloc(1, sizeof(*t));
	uint64_t nb = 1;

	while (nb < 2 * (uint64_t)cap)
		nb <<= 1;
	if (!t)
		return NULL;
	t->b = calloc(nb, sizeof(*t->b));
	t->mask = nb - 1;
	t->stride = (sizeof(struct centry) + KLEN + valmax + 7) & ~(size_t)7;
	t->ents = malloc(t->stride * cap);
	if (!t->b || !t->ents)
		return NULL;
	t->valmax = valmax;
	t->cap = cap;
	t->lru = lru;
	t->hash = hash;
	t->lru_head = t->lru_tail = NIL;
	for (uint32_t i = 0; i < cap; i++)
		CE(t, i)->next = i + 1 < cap ? i + 1 : NIL;
	t->free_head = cap ? 0 : NIL;
	return t;
}

/* Bucket holding key, or -1 with *empty = the first empty bucket. */
INLINE int64_t ct_find(const struct ctable *t, const void *key, size_t klen, uint32_t h,
		uint64_t *empty)
{
	for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
		const struct cbucket *b = &t->b[i];

		if (!b->idx) {
			*empty = i;
			return -1;
		}
		if (b->hash == h) {
			struct centry *e = CE(t, b->idx - 1);

			if (e->klen == klen && !memcmp(CE_KEY(e), key, klen))
				return (int64_t)i;
		}
	}
}

/* Empty bucket i and shift later members of its cluster back into it. */
static void ct_unindex(struct ctable *t, uint64_t i)
{
	uint64_t j = i;

	for (;;) {
		j = (j + 1) & t->mask;
		if (!t->b[j].idx)
			break;
		uint64_t home = t->b[j].hash & t->mask;
		int movable = j > i ? (home <= i || home > j) : (home <= i && home > j);

		if (movable) {
			t->b[i] = t->b[j];
			i = j;
		}
	}
	t->b[i].idx = 0;
}

static void lru_unlink(struct ctable *t, uint32_t i)
{
	struct centry *e = CE(t, i);

	if (e->prev != NIL)
		CE(t, e->prev)->next = e->next;
	else
		t->lru_head = e->next;
	if (e->next != NIL)
		CE(t, e->next)->prev = e->prev;
	else
		t->lru_tail = e->prev;
}

static void lru_push(struct ctable *t, uint32_t i)
{
	struct centry *e = CE(t, i);

	e->prev = NIL;
	e->next = t->lru_head;
	if (t->lru_head != NIL)
		CE(t, t->lru_head)->prev = i;
	t->lru_head = i;
	if (t->lru_tail == NIL)
		t->lru_tail = i;
}

/* Drop the entry in bucket pos (index, LRU list) and free it. */
static void ct_remove(struct ctable *t, uint64_t pos)
{
	uint32_t i = t->b[pos].idx - 1;

	ct_unindex(t, pos);
	if (t->lru)
		lru_unlink(t, i);
	CE(t, i)->next = t->free_head;
	t->free_head = i;
}

static void ct_evict(struct ctable *t)
{
	struct centry *e = CE(t, t->lru_tail);
	uint64_t empty;
	int64_t pos = ct_find(t, CE_KEY(e), e->klen, e->hash, &empty);

	ct_remove(t, (uint64_t)pos);
}

static __attribute__((noinline)) int ct_get(struct ctable *t, const void *key, size_t klen,
		void *buf, size_t buflen, size_t *vallen)
{
	uint32_t h = ct_hash(t->hash, key, klen);
	uint64_t empty;
	int64_t pos = ct_find(t, key, klen, h, &empty);
	struct centry *e;

	if (pos < 0)
		return -ENOENT;
	e = CE(t, t->b[pos].idx - 1);
	*vallen = e->vlen;
	if (e->vlen > buflen)
		return -ENOBUFS;
	memcpy(buf, CE_VAL(e), e->vlen);
	if (t->lru) {
		lru_unlink(t, t->b[pos].idx - 1);
		lru_push(t, t->b[pos].idx - 1);
	}
	return 0;
}

static __attribute__((noinline)) int ct_set(struct ctable *t, const void *key, size_t klen,
		const void *val, size_t vlen, unsigned flags)
{
	uint32_t h = ct_hash(t->hash, key, klen);
	uint64_t empty = 0;
	int64_t pos = ct_find(t, key, klen, h, &empty);
	struct centry *e;
	uint32_t i;

	if (klen != KLEN || vlen > t->valmax)
		return -E2BIG;
	if (pos >= 0) {
		if (!(flags & UCACHE_SET_UPDATE))
			return -EEXIST;
		i = t->b[pos].idx - 1;
		e = CE(t, i);
		memcpy(CE_VAL(e), val, vlen);
		e->vlen = (uint16_t)vlen;
		if (t->lru) {
			lru_unlink(t, i);
			lru_push(t, i);
		}
		return 0;
	}
	if (t->free_head == NIL) {
		if (!t->lru)
			return -ENOSPC;
		ct_evict(t);
		ct_find(t, key, klen, h, &empty); /* the shift may have moved the hole */
	}
	i = t->free_head;
	e = CE(t, i);
	t->free_head = e->next;
	e->hash = h;
	e->klen = (uint16_t)klen;
	e->vlen = (uint16_t)vlen;
	memcpy(CE_KEY(e), key, klen);
	memcpy(CE_VAL(e), val, vlen);
	t->b[empty] = (struct cbucket){ h, i + 1 };
	if (t->lru)
		lru_push(t, i);
	return 0;
}

static __attribute__((noinline)) int ct_del(struct ctable *t, const void *key, size_t klen)
{
	uint64_t empty;
	int64_t pos = ct_find(t, key, klen, ct_hash(t->hash, key, klen), &empty);

	if (pos < 0)
		return -ENOENT;
	ct_remove(t, (uint64_t)pos);
	return 0;
}

/* ------------------------------------------------------- the op loops */

/* Backend dispatch: be is a constant after inlining, so the branch vanishes. */
INLINE int b_get(int be, void *h, const void *k, void *buf, size_t *vl)
{
	return be == BE_UCACHE ? ucache_get(h, k, KLEN, buf, VBUF, vl) : ct_get(h, k, KLEN, buf, VBUF, vl);
}

INLINE int b_set(int be, void *h, const void *k, const void *v, size_t vlen, unsigned flags)
{
	return be == BE_UCACHE ? ucache_set(h, k, KLEN, v, vlen, 0, flags) : ct_set(h, k, KLEN, v, vlen, flags);
}

INLINE int b_del(int be, void *h, const void *k)
{
	return be == BE_UCACHE ? ucache_del(h, k, KLEN) : ct_del(h, k, KLEN);
}

struct loop_state {
	uint64_t rng, ops, errs, sink, n, window;
	int64_t first_err;
	unsigned char fkey[KLEN], okey[KLEN];
	unsigned char val[VBUF], buf[VBUF];
};

INLINE void note_err(struct loop_state *s, int rc, int want)
{
	if (UNLIKELY(rc != want) && !s->errs++)
		s->first_err = rc;
}

/* One op of workload wl (a constant after inlining). */
INLINE void one_op(int be, int wl, void *h, struct loop_state *s)
{
	uint64_t r = bench_xorshift(&s->rng);
	size_t vl = 0;

	if (wl == WL_GET_HIT || (wl == WL_MIXED && (r & 1023) >= 51)) {
		note_err(s, b_get(be, h, hit_keys[bench_pick(r, P.fill)], s->buf, &vl), 0);
		s->sink += s->buf[vl ? vl - 1 : 0];
	} else if (wl == WL_GET_MISS) {
		note_err(s, b_get(be, h, miss_keys[bench_pick(r, P.fill)], s->buf, &vl), -ENOENT);
	} else if (wl == WL_UPDATE || wl == WL_MIXED) {
		memcpy(s->val, &s->ops, sizeof(s->ops));
		note_err(s, b_set(be, h, hit_keys[bench_pick(r, P.fill)], s->val, P.vlen, UCACHE_SET_UPDATE), 0);
	} else if (wl == WL_SET) {
		fresh_key_n(s->fkey, (uint32_t)s->n);
		note_err(s, b_set(be, h, s->fkey, s->val, P.vlen, 0), 0);
		if (s->n >= s->window) {
			fresh_key_n(s->okey, (uint32_t)(s->n - s->window));
			note_err(s, b_del(be, h, s->okey), 0);
		}
		s->n++;
	} else { /* WL_LRU */
		fresh_key_n(s->fkey, (uint32_t)s->n++);
		note_err(s, b_set(be, h, s->fkey, s->val, P.vlen, 0), 0);
	}
}

INLINE void op_loop(int be, int wl, void *h, struct loop_state *s, uint64_t deadline)
{
	do {
		for (int i = 0; i < BATCH; i++)
			one_op(be, wl, h, s);
		s->ops += BATCH;
	} while (now_ns() < deadline);
}

/* Instantiate op_loop for every (backend, workload) pair. */
#define LOOP_CASE(wl) \
	case wl: \
		if (be == BE_UCACHE) \
			op_loop(BE_UCACHE, wl, h, s, deadline); \
		else \
			op_loop(BE_CEIL, wl, h, s, deadline); \
		break

static void run_loop(int be, int wl, void *h, struct loop_state *s, uint64_t deadline)
{
	switch (wl) {
	LOOP_CASE(WL_GET_HIT);
	LOOP_CASE(WL_GET_MISS);
	LOOP_CASE(WL_SET);
	LOOP_CASE(WL_UPDATE);
	LOOP_CASE(WL_MIXED);
	LOOP_CASE(WL_LRU);
	}
}

/* ---------------------------------------------------------- processes */

struct job {
	int be, wl, nprocs;
	ucache_t *cache;          /* BE_UCACHE */
	uint32_t tag0;            /* fresh-key tag of process 0 (then +1 each) */
	uint64_t window;          /* set: live keys per process */
};

/* Build this process's private ceiling table, filled like the cache. */
static struct ctable *ceiling_prepare(int wl)
{
	uint32_t cap = (uint32_t)(P.items - 1);
	struct ctable *t = ct_create(cap, P.vlen, wl == WL_LRU, P.hash);
	unsigned char val[VBUF], key[KLEN];

	if (!t)
		return NULL;
	memset(val, 'v', P.vlen);
	if (wl == WL_LRU) {
		fresh_key_init(key, 0);
		for (uint32_t i = 0; i < cap; i++) {
			fresh_key_n(key, i);
			ct_set(t, key, KLEN, val, P.vlen, 0);
		}
	} else {
		for (uint64_t i = 0; i < P.fill; i++)
			ct_set(t, hit_keys[i], KLEN, val, P.vlen, 0);
	}
	return t;
}

static void pin_self(int idx)
{
	cpu_set_t set;

	if (!P.pin || ncpus <= 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpus[idx % ncpus], &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void child_main(const struct job *j, int idx)
{
	struct slot *out = &SH->slot[idx];
	struct loop_state *s = calloc(1, sizeof(*s));
	void *h = j->cache;
	uint64_t t0, t1;

	pin_self(idx);
	if (!s)
		_exit(3);
	if (j->be == BE_CEIL && !(h = ceiling_prepare(j->wl)))
		_exit(3);
	s->window = j->window;
	s->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(idx + 1) ^ (uint64_t)getpid() << 17;
	memset(s->val, 'v', sizeof(s->val));
	fresh_key_init(s->fkey, j->tag0 + (uint32_t)idx);
	fresh_key_init(s->okey, j->tag0 + (uint32_t)idx);
	__atomic_store_n(&out->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&SH->go, __ATOMIC_ACQUIRE))
		sched_yield();
	t0 = now_ns();
	run_loop(j->be, j->wl, h, s, t0 + (uint64_t)(P.duration * 1e9));
	t1 = now_ns();
	/* set: remove this process's remaining live keys (untimed) */
	for (uint64_t n = s->n > s->window ? s->n - s->window : 0; j->wl == WL_SET && n < s->n; n++) {
		fresh_key_n(s->okey, (uint32_t)n);
		note_err(s, b_del(j->be == BE_UCACHE ? BE_UCACHE : BE_CEIL, h, s->okey), 0);
	}
	out->ops = s->ops;
	out->errs = s->errs;
	out->first_err = s->first_err;
	out->sink = s->sink;
	out->ns = t1 - t0;
	_exit(0);
}

static void describe_status(char *why, size_t len, int status)
{
	if (WIFSIGNALED(status))
		snprintf(why, len, "child killed by signal %d (%s)", WTERMSIG(status),
				strsignal(WTERMSIG(status)));
	else
		snprintf(why, len, "child exited with status %d", WEXITSTATUS(status));
}

/* Wait until every child is ready (or one died), then start them all. */
static void start_children(const pid_t *pids, int n, int *status, int *dead)
{
	for (;;) {
		int ready = 0;

		for (int i = 0; i < n; i++) {
			ready += __atomic_load_n(&SH->slot[i].ready, __ATOMIC_ACQUIRE);
			if (!dead[i] && waitpid(pids[i], &status[i], WNOHANG) == pids[i])
				dead[i] = 1;
		}
		if (ready == n)
			break;
		for (int i = 0; i < n; i++)
			if (dead[i] && !SH->slot[i].ready)
				goto go;
		usleep(200);
	}
go:
	__atomic_store_n(&SH->go, 1, __ATOMIC_RELEASE);
}

static struct result run_job(const struct job *j)
{
	static uint32_t next_tag = 1; /* tag 0: the lru prefill */
	struct result r = { .ops_s = 0 };
	pid_t pids[MAXP];
	int status[MAXP] = { 0 }, dead[MAXP] = { 0 };
	struct job jj = *j;

	jj.tag0 = next_tag;
	/* set: keep prefill + live windows well below capacity */
	for (jj.window = SET_WINDOW; jj.window > 1 &&
			P.fill + (uint64_t)j->nprocs * jj.window + 1024 > P.items - 1; jj.window /= 2)
		;
	next_tag += (uint32_t)j->nprocs;
	memset(SH, 0, sizeof(*SH));
	fflush(NULL);
	for (int i = 0; i < j->nprocs; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			child_main(&jj, i);
		if (pids[i] < 0) {
			fprintf(stderr, "fork: %s\n", strerror(errno));
			exit(1);
		}
	}
	start_children(pids, j->nprocs, status, dead);
	for (int i = 0; i < j->nprocs; i++) {
		if (!dead[i])
			waitpid(pids[i], &status[i], 0);
		if (!(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0) && !r.why[0])
			describe_status(r.why, sizeof(r.why), status[i]);
		r.ops += SH->slot[i].ops;
		r.errs += SH->slot[i].errs;
		if (SH->slot[i].errs && !r.first_err)
			r.first_err = SH->slot[i].first_err;
		if (SH->slot[i].ns)
			r.ops_s += (double)SH->slot[i].ops * 1e9 / (double)SH->slot[i].ns;
	}
	if (r.why[0])
		r.ops_s = NAN;
	return r;
}

/* ------------------------------------------------------------- set-up */

static void engine_tune(struct ucache_config *cfg)
{
	cfg->hash = P.hash;
	cfg->keysize = 64;
}

static ucache_t *make_cache(const char *name, int lru)
{
	return bench_cache(name, P.items, P.blocksize, lru, engine_tune);
}

/* Main cache: the hit keys.  LRU cache: exactly full of fresh keys (tag 0). */
static void prefill(ucache_t *main_c, ucache_t *lru_c)
{
	unsigned char val[VBUF], key[KLEN];
	struct ucache_stats st;
	int rc;

	memset(val, 'v', P.vlen);
	for (uint64_t i = 0; i < P.fill; i++) {
		if ((rc = ucache_set(main_c, hit_keys[i], KLEN, val, P.vlen, 0, 0)) != 0) {
			fprintf(stderr, "prefill: ucache_set #%" PRIu64 ": %s\n", i, errname(rc));
			exit(1);
		}
	}
	ucache_stats(lru_c, &st);
	fresh_key_init(key, 0);
	for (uint32_t i = 0; i < st.capacity; i++) {
		fresh_key_n(key, i);
		if ((rc = ucache_set(lru_c, key, KLEN, val, P.vlen, 0, 0)) != 0) {
			fprintf(stderr, "prefill lru: ucache_set #%u: %s\n", i, errname(rc));
			exit(1);
		}
	}
	if (ucache_items(main_c) != P.fill || ucache_items(lru_c) != st.capacity)
		fprintf(stderr, "warning: after prefill items = %" PRIu64 " / %" PRIu64
				" (expected %" PRIu64 " / %" PRIu64 ")\n", ucache_items(main_c),
				ucache_items(lru_c), P.fill, st.capacity);
}

static void make_keys(void)
{
	char tmp[32];

	hit_keys = malloc(P.fill * KLEN);
	miss_keys = malloc(P.fill * KLEN);
	if (!hit_keys || !miss_keys) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (uint64_t i = 0; i < P.fill; i++) {
		snprintf(tmp, sizeof(tmp), "key:%012" PRIu64, i);
		memcpy(hit_keys[i], tmp, KLEN);
		snprintf(tmp, sizeof(tmp), "mis:%012" PRIu64, i);
		memcpy(miss_keys[i], tmp, KLEN);
	}
}

static void usage(const char *argv0)
{
	printf("usage: %s [--duration S] [--reps N] [--quick] [--only LIST]\n          [--procs N[,M...]] [--json FILE]\n"
		"          [--blocksize B] [--hash djb33x|murmur2|xxh3] [--no-pin]\n"
		"  --duration S  seconds per measured run (default 0.5; --quick: 0.25)\n"
		"  --reps N      runs per cell, best counts (default 3; --quick: 1)\n"
		"  --only LIST   run only these workloads (get_hit,get_miss,set,update,\n"
		"                mixed_95_5,lru_churn), e.g. to profile one\n"
		"  --procs LIST  process counts besides 1 (default: 2, and nproc if > 2)\n"
		"  --json FILE   also write the numbers as one flat JSON object\n"
		"  --blocksize B ucache blocksize (default 65536)\n"
		"  --hash H      key hash of the cache and of the ceiling (default djb33x)\n"
		"  --no-pin      do not pin process i to the i-th allowed CPU\n", argv0);
}

static void add_procs(int n)
{
	for (int i = 0; i < P.np; i++)
		if (P.plist[i] == n)
			return;
	if (n >= 1 && n <= MAXP && P.np < MAXPLIST)
		P.plist[P.np++] = n;
}

/* --only: a comma-separated list of JSON workload names. */
static int parse_only(const char *list)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	P.wl_mask = 0;
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		int wl = 0;

		while (wl < WL_COUNT && strcmp(w, wl_json[wl]))
			wl++;
		if (wl == WL_COUNT)
			return -1;
		P.wl_mask |= 1u << wl;
	}
	return P.wl_mask ? 0 : -1;
}

static void parse_args(int argc, char **argv)
{
	int quick = 0, procs_given = 0;
	double duration = 0;
	int reps = 0;
	const char *badarg = NULL;

	P = (struct params){ .items = 131072, .fill = 100000, .blocksize = 65536, .vlen = 100,
		.hash = UCACHE_HASH_DJB33X, .pin = 1, .wl_mask = (1u << WL_COUNT) - 1, .plist = { 1 }, .np = 1 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		badarg = v;

		if (!strcmp(a, "--quick")) {
			quick = 1;
		} else if (!strcmp(a, "--no-pin")) {
			P.pin = 0;
		} else if (!strcmp(a, "--duration") && v) {
			duration = atof(v), i++;
		} else if (!strcmp(a, "--only") && v) {
			if (parse_only(argv[++i]) < 0)
				goto bad;
		} else if (!strcmp(a, "--reps") && v) {
			reps = atoi(v), i++;
		} else if (!strcmp(a, "--json") && v) {
			P.json = v, i++;
		} else if (!strcmp(a, "--blocksize") && v) {
			P.blocksize = strtoull(v, NULL, 0), i++;
		} else if (!strcmp(a, "--hash") && v) {
			if (ucache_hash_parse(v, &P.hash) < 0)
				goto bad;
			i++;
		} else if (!strcmp(a, "--procs") && v) {
			for (char *s = argv[++i], *end; *s; s = *end ? end + 1 : end) {
				long n = strtol(s, &end, 10);

				if (end == s || n < 1 || n > MAXP)
					goto bad;
				add_procs((int)n);
			}
			procs_given = 1;
		} else {
			usage(argv[0]);
			exit(strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0);
		}
	}
	P.duration = duration > 0 ? duration : quick ? 0.25 : 0.5;
	P.reps = reps > 0 ? reps : quick ? 1 : 3;
	if (!procs_given) {
		add_procs(2);
		if (ncpus > 2)
			add_procs(ncpus > MAXP ? MAXP : ncpus);
	}
	if (P.blocksize < P.vlen) {
		fprintf(stderr, "--blocksize must be >= the value size (%zu)\n", P.vlen);
		exit(2);
	}
	return;
bad:
	fprintf(stderr, "bad value '%s'\n", badarg);
	usage(argv[0]);
	exit(2);
}

static void init_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0) {
		ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
		for (int i = 0; i < ncpus && i < 1024; i++)
			cpus[i] = i;
		return;
	}
	for (int i = 0; i < CPU_SETSIZE && ncpus < 1024; i++)
		if (CPU_ISSET(i, &set))
			cpus[ncpus++] = i;
}

/* -------------------------------------------------------------- output */

struct table {
	struct result u[WL_COUNT][MAXPLIST];  /* ucache, per process count */
	struct result ceil[WL_COUNT];
	double lru_evict_ratio;               /* evictions / ops over the lru runs */
	int have_lru_ratio;
};

static int pindex(int n)
{
	for (int i = 0; i < P.np; i++)
		if (P.plist[i] == n)
			return i;
	return -1;
}

static void fmt_ops(char *buf, size_t len, double v)
{
	if (isnan(v))
		snprintf(buf, len, "FAILED");
	else if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else
		snprintf(buf, len, "%.1fk", v / 1e3);
}

static void print_header(void)
{
	char col[32];

	printf("%-12s %10s", "workload", "ucache 1p");
	for (int i = 1; i < P.np; i++) {
		snprintf(col, sizeof(col), "ucache %dp", P.plist[i]);
		printf(" %10s", col);
	}
	for (int i = 1; i < P.np; i++) {
		snprintf(col, sizeof(col), "%dp/1p", P.plist[i]);
		printf(" %6s", col);
	}
	printf(" %10s %11s %6s\n", "ceiling 1p", "ucache/ceil", "cost");
}

static void print_row(const struct table *t, int wl)
{
	char buf[32];
	double one = t->u[wl][0].ops_s, c = t->ceil[wl].ops_s;

	printf("%-12s", wl_name[wl]);
	for (int i = 0; i < P.np; i++) {
		fmt_ops(buf, sizeof(buf), t->u[wl][i].ops_s);
		printf(" %10s", buf);
	}
	for (int i = 1; i < P.np; i++)
		printf(" %6.2f", t->u[wl][i].ops_s / one);
	fmt_ops(buf, sizeof(buf), c);
	printf(" %10s %11.3f %5.2fx\n", buf, one / c, c / one);
	fflush(stdout);
}

static void print_notes(const struct table *t)
{
	for (int wl = 0; wl < WL_COUNT; wl++) {
		for (int i = 0; i < P.np; i++) {
			const struct result *r = &t->u[wl][i];

			if (r->why[0])
				printf("  ! %s %dp: %s\n", wl_name[wl], P.plist[i], r->why);
			if (r->errs)
				printf("  ! %s %dp: %" PRIu64 " of %" PRIu64 " ops returned an unexpected"
						" result (first: %s)\n", wl_name[wl], P.plist[i],
						r->errs, r->ops, errname(r->first_err));
		}
		if (t->ceil[wl].why[0] || t->ceil[wl].errs)
			printf("  ! %s ceiling: %s %" PRIu64 " unexpected results\n", wl_name[wl],
					t->ceil[wl].why, t->ceil[wl].errs);
	}
	if (t->have_lru_ratio)
		printf("  lru-churn: engine evictions / inserts = %.3f (expect 1.000)\n",
				t->lru_evict_ratio);
}

/* Goals; returns the two values for the JSON. */
static void print_goals(const struct table *t, double *ceil_ratio, double *scaling)
{
	int p2 = pindex(2);

	*ceil_ratio = t->u[WL_GET_HIT][0].ops_s / t->ceil[WL_GET_HIT].ops_s;
	*scaling = p2 > 0 ? t->u[WL_GET_HIT][p2].ops_s / t->u[WL_GET_HIT][0].ops_s : NAN;
	printf("\ngoals:\n");
	printf("  get cost <= 1.5x ceiling  (ucache/ceil >= 0.667): %.3f  %s\n", *ceil_ratio,
			isnan(*ceil_ratio) ? "n/a" : *ceil_ratio >= 1 / 1.5 ? "met" : "short");
	if (p2 > 0)
		printf("  2-process get >= 1.9x 1-process            : %.2f   %s\n", *scaling,
				isnan(*scaling) ? "n/a" : *scaling >= 1.9 ? "met" : "short");
	else
		printf("  2-process get >= 1.9x 1-process            : n/a (2 not in --procs)\n");
}

static void json_num(FILE *f, int *first, const char *key, double v)
{
	fprintf(f, "%s\n  \"%s\": ", *first ? "" : ",", key);
	*first = 0;
	if (isnan(v) || isinf(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.6g", v);
}

/* NaN compares false, so a goal that could not be measured reads false. */
static void json_bool(FILE *f, int *first, const char *key, int v)
{
	fprintf(f, "%s\n  \"%s\": %s", *first ? "" : ",", key, v ? "true" : "false");
	*first = 0;
}

static void write_json(const struct table *t, double ceil_ratio, double scaling)
{
	FILE *f = fopen(P.json, "w");
	char key[96];
	int first = 1;

	if (!f) {
		fprintf(stderr, "--json %s: %s\n", P.json, strerror(errno));
		exit(1);
	}
	fprintf(f, "{");
	for (int wl = 0; wl < WL_COUNT; wl++) {
		double one = t->u[wl][0].ops_s;

		if (!(P.wl_mask & 1u << wl))
			continue;
		for (int i = 0; i < P.np; i++) {
			snprintf(key, sizeof(key), "engine_%s_%dp_ops", wl_json[wl], P.plist[i]);
			json_num(f, &first, key, t->u[wl][i].ops_s);
		}
		for (int i = 1; i < P.np; i++) {
			snprintf(key, sizeof(key), "engine_%s_scaling_%dp_over_1p", wl_json[wl], P.plist[i]);
			json_num(f, &first, key, t->u[wl][i].ops_s / one);
		}
		snprintf(key, sizeof(key), "engine_%s_ceiling_ops", wl_json[wl]);
		json_num(f, &first, key, t->ceil[wl].ops_s);
		snprintf(key, sizeof(key), "engine_%s_ceiling_ratio", wl_json[wl]);
		json_num(f, &first, key, one / t->ceil[wl].ops_s);
	}
	json_num(f, &first, "engine_get_ceiling_ratio", ceil_ratio);
	json_num(f, &first, "engine_get_scaling_2p_over_1p", scaling);
	json_bool(f, &first, "engine_goal_get_ceiling_met", ceil_ratio >= 1 / 1.5);
	json_bool(f, &first, "engine_goal_get_scaling_met", scaling >= 1.9);
	json_num(f, &first, "engine_lru_evictions_per_insert", t->have_lru_ratio ? t->lru_evict_ratio : NAN);
	json_num(f, &first, "engine_nproc", ncpus);
	json_num(f, &first, "engine_duration_s", P.duration);
	json_num(f, &first, "engine_reps", P.reps);
	json_num(f, &first, "engine_items", (double)P.items);
	json_num(f, &first, "engine_value_bytes", (double)P.vlen);
	json_num(f, &first, "engine_blocksize", (double)P.blocksize);
	fprintf(f, "\n}\n");
	fclose(f);
}

/* ---------------------------------------------------------------- main */

/* Keep the best rate of several runs (interference only ever slows a run
 * down), but every failure and every unexpected result. */
static void merge(struct result *best, const struct result *r, int first)
{
	if (first) {
		*best = *r;
		return;
	}
	if (!best->why[0] && r->why[0])
		snprintf(best->why, sizeof(best->why), "%s", r->why);
	if (!best->errs && r->errs)
		best->first_err = r->first_err;
	best->ops += r->ops;
	best->errs += r->errs;
	if (best->why[0])
		best->ops_s = NAN;
	else if (r->ops_s > best->ops_s)
		best->ops_s = r->ops_s;
}

/* Per workload, the runs of each configuration interleave rep by rep, so a
 * slow phase of a shared machine hits all columns alike. */
static void measure(struct table *t, ucache_t *main_c, ucache_t *lru_c)
{
	uint64_t ev_ops = 0, ev = 0;
	struct ucache_stats st0, st1;

	for (int wl = 0; wl < WL_COUNT; wl++) {
		ucache_t *c = wl == WL_LRU ? lru_c : main_c;

		if (!(P.wl_mask & 1u << wl))
			continue;
		for (int rep = 0; rep < P.reps; rep++) {
			for (int i = 0; i < P.np; i++) {
				struct job j = { .be = BE_UCACHE, .wl = wl, .nprocs = P.plist[i], .cache = c };
				struct result r;

				ucache_stats(c, &st0);
				r = run_job(&j);
				ucache_stats(c, &st1);
				merge(&t->u[wl][i], &r, rep == 0);
				if (wl == WL_LRU) {
					ev_ops += r.ops;
					ev += st1.evictions - st0.evictions;
				}
			}
			struct job cj = { .be = BE_CEIL, .wl = wl, .nprocs = 1 };
			struct result r = run_job(&cj);

			merge(&t->ceil[wl], &r, rep == 0);
		}
		print_row(t, wl);
	}
	t->have_lru_ratio = ev_ops > 0;
	t->lru_evict_ratio = ev_ops ? (double)ev / (double)ev_ops : NAN;
}

static void check_cache(const char *name, ucache_t *c)
{
	char err[512] = "";
	int rc = ucache_check(c, err, sizeof(err));

	printf("  ucache_check(%s): %s%s%s\n", name, rc == 0 ? "ok" : errname(rc),
			rc ? ": " : "", rc ? err : "");
}

int main(int argc, char **argv)
{
	static struct table t;
	double ceil_ratio, scaling;
	ucache_t *main_c, *lru_c;

	init_cpus();
	parse_args(argc, argv);
	ucache_set_logger(bench_logger, NULL);
	SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (SH == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	printf("ucache engine benchmark (libucache %s)\n", UCACHE_VERSION);
	printf("  items=%" PRIu64 " (prefill %" PRIu64 "), key %d B, value %zu B, blocksize %" PRIu64
			", hash %s,\n  best of %d x %.2f s per cell, %s\n", P.items, P.fill, KLEN, P.vlen, P.blocksize,
			ucache_hash_name(P.hash), P.reps, P.duration, P.pin ? "pinned" : "not pinned");
	printf("  nproc=%d.  Absolute numbers on a shared 2-core machine are noise; the ratios matter.\n",
			ncpus);
	printf("  ceiling = private unlocked open-addressing table, same hash, key compare + value memcpy.\n\n");
	make_keys();
	main_c = make_cache("bench", 0);
	lru_c = make_cache("bench_lru", 1);
	prefill(main_c, lru_c);
	print_header();
	measure(&t, main_c, lru_c);
	print_notes(&t);
	check_cache("bench", main_c);
	check_cache("bench_lru", lru_c);
	print_goals(&t, &ceil_ratio, &scaling);
	if (P.json) {
		write_json(&t, ceil_ratio, scaling);
		printf("\nwrote %s\n", P.json);
	}
	ucache_destroy(main_c);
	ucache_destroy(lru_c);
	return 0;
}
