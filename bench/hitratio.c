/*
 * bench/hitratio.c - eviction quality of a purge_lru ucache cache against an
 * exact LRU, on the same request traces (bench/trace.h).
 *
 * Built and run by bench/run.py (section "hitratio"; never by `make test`):
 *
 *     cc -std=gnu11 -O2 -Iinclude bench/hitratio.c -o build/bench/hitratio \
 *        build/libucache.a -lxxhash -lpthread -lm
 *     build/bench/hitratio [--json FILE] [options: --help]
 *
 * For each trace (zipf, then scan) the program replays every request as a
 * read-through cache would: get the key; on a miss, set it (a 32-byte value
 * naming the key).  Twice, on identical requests:
 *
 *   ucache  a fresh cache from the public API only (ucache_config_init,
 *           name, items, blocksize, blocks = items, purge_lru = 1,
 *           ignore_full = 1; ucache_create), one process;
 *   exact   a reference exact LRU of the same capacity (the cache's usable
 *           items, ucache_stats().capacity = items - 1): a direct-indexed
 *           map from key id to node plus a doubly linked list, most recent
 *           at the head, evicting the tail - what the stock uWSGI cache's
 *           purge_lru list does.
 *
 * hit ratio = hits / all requests of the trace (the scan's cold requests
 * can hit in neither, so ucache / exact is the same over the Zipf requests
 * alone; both figures are written).  Everything is deterministic: a fixed
 * seed, one process; only the engine's own eviction choices may vary.
 * The run fails (exit 1) if a set is refused, a hit returns a wrong value,
 * or ucache_check() finds the cache inconsistent afterwards.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "bench_rand.h"
#include "trace.h"
#include "ucache.h"

#define VLEN 32

struct params {
	uint64_t items, keys, requests, scan_every, scan_len, blocksize, seed;
	double alpha;
	const char *json;
};

static struct params P = {
	.items = 10001, .keys = TRACE_KEYS, .requests = TRACE_DRAWS, .scan_every = TRACE_SCAN_EVERY,
	.scan_len = TRACE_SCAN_LEN, .blocksize = 64, .seed = TRACE_SEED, .alpha = TRACE_ALPHA,
};

struct replay {
	uint64_t hits, zipf_hits, sets, set_errors, bad_values, get_errors;
	int first_set_error, first_get_error;
	double seconds;
	struct ucache_stats st;   /* ucache only */
	int check_rc;             /* ucache only: ucache_check() */
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


/* ------------------------------------------------------------ exact LRU */

#define NIL UINT32_MAX

struct lru {
	uint32_t cap, n, head, tail;
	uint32_t *prev, *next, *key;  /* per node */
	uint32_t *where;              /* key id -> node, NIL if not cached */
};

static int lru_init(struct lru *l, uint32_t cap, uint32_t ids)
{
	l->cap = cap;
	l->n = 0;
	l->head = l->tail = NIL;
	l->prev = malloc(sizeof(uint32_t) * cap);
	l->next = malloc(sizeof(uint32_t) * cap);
	l->key = malloc(sizeof(uint32_t) * cap);
	l->where = malloc(sizeof(uint32_t) * ids);
	if (!l->prev || !l->next || !l->key || !l->where)
		return -1;
	memset(l->where, 0xff, sizeof(uint32_t) * ids);
	return 0;
}

static void lru_free(struct lru *l)
{
	free(l->prev);
	free(l->next);
	free(l->key);
	free(l->where);
}

static void lru_unlink(struct lru *l, uint32_t x)
{
	if (l->prev[x] != NIL)
		l->next[l->prev[x]] = l->next[x];
	else
		l->head = l->next[x];
	if (l->next[x] != NIL)
		l->prev[l->next[x]] = l->prev[x];
	else
		l->tail = l->prev[x];
}

static void lru_push_head(struct lru *l, uint32_t x)
{
	l->prev[x] = NIL;
	l->next[x] = l->head;
	if (l->head != NIL)
		l->prev[l->head] = x;
	l->head = x;
	if (l->tail == NIL)
		l->tail = x;
}

/* 1 = hit (now the most recent), 0 = miss. */
static int lru_get(struct lru *l, uint32_t id)
{
	uint32_t x = l->where[id];

	if (x == NIL)
		return 0;
	if (x != l->head) {
		lru_unlink(l, x);
		lru_push_head(l, x);
	}
	return 1;
}

/* Insert a missing key, evicting the least recently used when full. */
static void lru_insert(struct lru *l, uint32_t id)
{
	uint32_t x;

	if (l->n < l->cap) {
		x = l->n++;
	} else {
		x = l->tail;
		lru_unlink(l, x);
		l->where[l->key[x]] = NIL;
	}
	l->key[x] = id;
	l->where[id] = x;
	lru_push_head(l, x);
}

/* -------------------------------------------------------------- replays */

static void replay_exact(const struct trace *t, uint32_t cap, struct replay *r)
{
	struct lru l;
	double t0;

	memset(r, 0, sizeof(*r));
	if (lru_init(&l, cap, t->ids) < 0) {
		fprintf(stderr, "hitratio: out of memory\n");
		exit(1);
	}
	t0 = now_s();
	for (uint64_t q = 0; q < t->n; q++) {
		uint32_t id = t->id[q];

		if (lru_get(&l, id)) {
			r->hits++;
			r->zipf_hits += id < t->keys;
		} else {
			lru_insert(&l, id);
			r->sets++;
		}
	}
	r->seconds = now_s() - t0;
	lru_free(&l);
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

static void usage(const char *argv0)
{
	printf("usage: %s [--json FILE] [--items N] [--keys K] [--requests R]\n"
		"          [--alpha A] [--scan-every E] [--scan-len L] [--blocksize B] [--seed S]\n"
		"  --items N       cache items (usable: N - 1; default 10001)\n"
		"  --keys K        distinct Zipf keys (default 100000)\n"
		"  --requests R    Zipf draws per trace (default 2000000)\n"
		"  --alpha A       Zipf exponent (default 0.99)\n"
		"  --scan-every E  scan trace: a burst every E draws (default 100000)\n"
		"  --scan-len L    scan trace: cold keys per burst (default 15000)\n"
		"  --blocksize B   ucache blocksize (default 64; values are %d bytes)\n"
		"  --seed S        trace seed\n"
		"  --json FILE     write the results as JSON\n", argv0, VLEN);
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
		} else {
			usage(argv[0]);
			exit(strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0);
		}
	}
	if (P.items < 2 || P.keys < 2 || P.keys > UINT32_MAX || !P.requests || !P.scan_every ||
			!(P.alpha > 0) || P.blocksize < VLEN) {
		fprintf(stderr, "hitratio: need items >= 2, keys >= 2, requests > 0, scan-every > 0, "
				"alpha > 0, blocksize >= %d\n", VLEN);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	static const char *const names[2] = { "zipf", "scan" };
	struct trace t[2];
	struct replay uc[2], ex[2];
	int bad = 0;
	FILE *f = NULL;

	parse_args(argc, argv);
	ucache_set_logger(bench_logger, NULL);
	printf("hitratio: purge_lru ucache vs exact LRU (libucache %s)\n", UCACHE_VERSION);
	printf("  items=%" PRIu64 " (usable %" PRIu64 "), blocksize %" PRIu64 ", %d-byte keys, %d-byte values\n"
			"  Zipf(%.2f) over %" PRIu64 " keys, %" PRIu64 " draws; scan: +%" PRIu64
			" cold keys after draw %" PRIu64 " and every %" PRIu64 " draws after it\n\n",
			P.items, P.items - 1, P.blocksize, TRACE_KLEN, VLEN, P.alpha, P.keys, P.requests,
			P.scan_len, P.scan_every / 2, P.scan_every);
	printf("%-6s %10s %8s %10s %10s %10s %9s %10s\n", "trace", "requests", "scan",
			"ucache", "exact LRU", "ucache/LRU", "evictions", "ucache op/s");
	for (int k = 0; k < 2; k++) {
		ucache_t *c;
		uint64_t cap;
		char name[32];

		if (trace_build(&t[k], (uint32_t)P.keys, P.requests, P.alpha, k ? P.scan_every : 0,
				P.scan_len, P.seed) < 0) {
			fprintf(stderr, "hitratio: cannot build the %s trace (memory, or more than 10^8 ids)\n",
					names[k]);
			return 1;
		}
		snprintf(name, sizeof(name), "hit_%s", names[k]);
		c = make_cache(name);
		replay_ucache(c, &t[k], &uc[k]);
		cap = uc[k].st.capacity;
		ucache_destroy(c);
		if (!cap || cap > P.items) {
			fprintf(stderr, "hitratio: ucache_stats() capacity %" PRIu64 " for items=%" PRIu64 "\n",
					cap, P.items);
			return 1;
		}
		replay_exact(&t[k], (uint32_t)cap, &ex[k]);
		printf("%-6s %10" PRIu64 " %8" PRIu64 " %10.4f %10.4f %10.4f %9" PRIu64 " %10.0f\n", names[k],
				t[k].n, t[k].scan, (double)uc[k].hits / (double)t[k].n,
				(double)ex[k].hits / (double)t[k].n, ex[k].hits ? (double)uc[k].hits / (double)ex[k].hits : 0,
				uc[k].st.evictions, uc[k].seconds > 0 ? (double)t[k].n / uc[k].seconds : 0);
		if (uc[k].set_errors || uc[k].get_errors || uc[k].bad_values || uc[k].check_rc) {
			fprintf(stderr, "hitratio: %s: %" PRIu64 " sets refused (first: %s), %" PRIu64
					" get errors, %" PRIu64 " wrong values, ucache_check: %d %s\n", names[k],
					uc[k].set_errors, strerror(-uc[k].first_set_error), uc[k].get_errors,
					uc[k].bad_values, uc[k].check_rc, uc[k].check_err);
			bad = 1;
		}
	}
	printf("\n  hit ratio = hits / all requests of the trace; capacity of the exact LRU = the\n"
			"  cache's usable items (%" PRIu64 ").\n", uc[0].st.capacity);
	if (P.json) {
		f = fopen(P.json, "w");
		if (!f) {
			fprintf(stderr, "--json %s: %s\n", P.json, strerror(errno));
			return 1;
		}
		fprintf(f, "{\"items\": %" PRIu64 ", \"capacity\": %" PRIu64 ", \"blocksize\": %" PRIu64
				", \"klen\": %d, \"vlen\": %d, \"keys\": %" PRIu64 ", \"draws\": %" PRIu64
				", \"alpha\": %.4f, \"scan_every\": %" PRIu64 ", \"scan_len\": %" PRIu64
				", \"seed\": %" PRIu64 ", \"failed\": %d, \"traces\": {",
				P.items, uc[0].st.capacity, P.blocksize, TRACE_KLEN, VLEN, P.keys, P.requests,
				P.alpha, P.scan_every, P.scan_len, P.seed, bad);
		for (int k = 0; k < 2; k++) {
			fprintf(f, "%s\n  \"%s\": {\"requests\": %" PRIu64 ", \"scan_requests\": %" PRIu64
					", \"id_space\": %u,\n", k ? "," : "", names[k], t[k].n, t[k].scan, t[k].ids);
			json_replay(f, "ucache", &t[k], &uc[k], 1);
			fprintf(f, ",\n");
			json_replay(f, "exact", &t[k], &ex[k], 0);
			fprintf(f, "}");
		}
		fprintf(f, "}}\n");
		if (fclose(f)) {
			fprintf(stderr, "--json %s: %s\n", P.json, strerror(errno));
			return 1;
		}
	}
	for (int k = 0; k < 2; k++)
		trace_free(&t[k]);
	return bad;
}
