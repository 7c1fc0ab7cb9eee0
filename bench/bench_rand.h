/*
 * bench_rand.h - the benchmarks' shared PRNG: xorshift64* and Lemire's
 * multiply-shift reduction to pick a uniform index.  Static inline, no
 * state: each process seeds its own.
 */
#ifndef UCACHE_BENCH_RAND_H
#define UCACHE_BENCH_RAND_H

#include <stdint.h>

static inline uint64_t bench_xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform index below n from the high 32 bits of r. */
static inline uint64_t bench_pick(uint64_t r, uint64_t n)
{
	return ((r >> 32) * n) >> 32;
}

#endif
