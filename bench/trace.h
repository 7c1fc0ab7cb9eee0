/*
 * trace.h - the eviction-quality traces of bench/hitratio.c: a fixed,
 * seeded sequence of key ids, built the same way on every run and machine.
 *
 *   zipf  `requests` draws from Zipf(alpha) over `keys` distinct keys: rank r
 *         (0 = most popular) has weight 1 / (r + 1)^alpha, and ranks map to
 *         key ids through a seeded random permutation (popular keys are not
 *         neighbours).
 *   scan  the same draws, and after draws scan_every/2, 3*scan_every/2, ...
 *         a burst of `scan_len` cold keys, each requested once and never again (ids
 *         keys, keys + 1, ...): a one-pass scan that an LRU cache admits and
 *         that pushes the hot keys out.
 *
 * Key id i is the key "k%08u" (9 bytes).  Static functions, no state: the
 * includer owns the arrays (free with trace_free()).  Included by
 * bench/hitratio.c (the engine) and bench/capi/ucbench.c (--ucbench
 * hitratio: the same trace through uwsgi_cache_magic_get/set).
 */
#ifndef UCACHE_BENCH_TRACE_H
#define UCACHE_BENCH_TRACE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_rand.h"

struct trace {
	uint32_t *id;             /* the requests, in order */
	uint64_t n;               /* requests */
	uint64_t scan;            /* of which scan (cold, once-only) requests */
	uint32_t keys;            /* Zipf keys: ids below keys; scan ids from keys up */
	uint32_t ids;             /* distinct ids in the trace: keys + scan */
};

#define TRACE_KLEN 9

/* The traces of `make bench` (bench/run.py passes them to both programs). */
#define TRACE_KEYS 100000
#define TRACE_DRAWS 2000000
#define TRACE_ALPHA 0.99
#define TRACE_SCAN_EVERY 100000
#define TRACE_SCAN_LEN 15000
#define TRACE_SEED 0x5eed0099

/* "k%08u" into k (TRACE_KLEN bytes, no terminator needed by the caller). */
static inline void trace_key(char *k, uint32_t id)
{
	k[0] = 'k';
	for (int i = TRACE_KLEN - 1; i >= 1; i--, id /= 10)
		k[i] = (char)('0' + id % 10);
}

/* Uniform double in [0, 1) from 53 bits of r. */
static inline double trace_unit(uint64_t r)
{
	return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

/* Build the zipf trace (scan_every == 0) or the scan trace.  0, or -1 if
 * out of memory or the ids do not fit 8 digits. */
static int trace_build(struct trace *t, uint32_t keys, uint64_t requests, double alpha,
		uint64_t scan_every, uint64_t scan_len, uint64_t seed)
{
	/* bursts after draws scan_every/2, 3*scan_every/2, ...: none at the very end */
	uint64_t bursts = scan_every ? (requests + scan_every / 2) / scan_every : 0;
	uint64_t rng = seed ? seed : 1, out = 0, cold = keys;
	double *cdf = malloc(sizeof(double) * keys), total = 0;
	uint32_t *perm = malloc(sizeof(uint32_t) * keys);

	t->n = requests + bursts * scan_len;
	t->scan = bursts * scan_len;
	t->keys = keys;
	t->ids = (uint32_t)(keys + t->scan);
	t->id = malloc(sizeof(uint32_t) * t->n);
	if (!cdf || !perm || !t->id || (uint64_t)keys + t->scan > 99999999u) {
		free(cdf);
		free(perm);
		free(t->id);
		t->id = NULL;
		return -1;
	}
	for (uint32_t r = 0; r < keys; r++) {
		total += pow((double)r + 1.0, -alpha);
		cdf[r] = total;
	}
	for (uint32_t i = 0; i < keys; i++)
		perm[i] = i;
	for (uint32_t i = keys - 1; i > 0; i--) {  /* Fisher-Yates: rank -> key id */
		uint32_t j = (uint32_t)bench_pick(bench_xorshift(&rng), (uint64_t)i + 1);
		uint32_t x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	for (uint64_t q = 0; q < requests; q++) {
		double u = trace_unit(bench_xorshift(&rng)) * total;
		uint32_t lo = 0, hi = keys - 1;

		while (lo < hi) {  /* the first rank whose cumulative weight exceeds u */
			uint32_t mid = lo + (hi - lo) / 2;

			if (cdf[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		t->id[out++] = perm[lo];
		if (scan_every && (q + 1 + scan_every / 2) % scan_every == 0)
			for (uint64_t s = 0; s < scan_len; s++)
				t->id[out++] = (uint32_t)cold++;
	}
	free(cdf);
	free(perm);
	return 0;
}

static void trace_free(struct trace *t)
{
	free(t->id);
	t->id = NULL;
}

#endif
