/*
 * util.h - engine-internal helpers: logging, clock, small maths.
 * Used by every core/ module; no state beyond the logger and clock hooks.
 */
#ifndef UCACHE_UTIL_H
#define UCACHE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "ucache.h"

#if defined(__GNUC__)
#define UC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define UC_LIKELY(x) __builtin_expect(!!(x), 1)
#define UC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define UC_PRINTF(a, b)
#define UC_LIKELY(x) (x)
#define UC_UNLIKELY(x) (x)
#endif

/* Emit one log line through the configured logger. */
void uc_log(enum ucache_log_level level, const char *fmt, ...) UC_PRINTF(2, 3);

/* snprintf into an error buffer that may be NULL / zero-sized. */
void uc_err(char *err, size_t errlen, const char *fmt, ...) UC_PRINTF(3, 4);

/* calloc() for the engine's process-local scratch (rebuild, check).  A
 * unit test can make it fail: uc_fault_arm(n) makes the n-th call from now
 * return NULL (0 disarms), so every allocation of a rebuild can be failed
 * in turn (tests/unit/test_repair.c). */
void *uc_calloc(size_t n, size_t size);
void uc_fault_arm(long nth);

/* Which of the UC_CPU_LINES per-process counter lines the calling thread
 * writes (hits, misses, bytes, expiring: layout.h struct uc_cpu). */
#define UC_CPU_LINES 64
extern __thread int uc_my_line;   /* -1 until first use, and in a forked child */
unsigned uc_cpu_line_slow(void);
static inline unsigned uc_cpu_line(void)
{
	return UC_LIKELY(uc_my_line >= 0) ? (unsigned)uc_my_line : uc_cpu_line_slow();
}

static inline uint64_t uc_pow2_floor(uint64_t v)
{
	uint64_t p = 1;

	while (p * 2 <= v)
		p <<= 1;
	return p;
}

static inline uint64_t uc_div_ceil(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
static inline uint64_t uc_align_up(uint64_t a, uint64_t align) { return (a + align - 1) & ~(align - 1); }

#endif
