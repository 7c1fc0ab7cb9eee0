/*
 * util.c - logger and clock hooks of the engine.
 *
 * Both hooks are process-global and meant to be set once at start-up (the
 * plugin routes logs to uwsgi_log; tests install a fake clock).  They are
 * read without locks: setting them while other threads use the engine is
 * not supported.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "util.h"

static ucache_log_fn log_fn;
static void *log_ud;
static uint64_t (*clock_fn)(void);

void ucache_set_logger(ucache_log_fn fn, void *ud)
{
	log_fn = fn;
	log_ud = ud;
}

void ucache_set_clock(uint64_t (*now)(void))
{
	clock_fn = now;
}

uint64_t ucache_now(void)
{
	struct timespec ts;

	if (clock_fn)
		return clock_fn();
	/* the coarse clock is a vDSO memory read, never a syscall: expiry has
	 * one-second resolution, so its few-ms granularity costs nothing */
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

void uc_log(enum ucache_log_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_fn) {
		log_fn(level, buf, log_ud);
		return;
	}
	fprintf(stderr, "[ucache] %s%s\n",
		level == UCACHE_LOG_ERROR ? "error: " : level == UCACHE_LOG_WARN ? "warning: " : "", buf);
}

void uc_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static long fault_countdown; /* 0: disarmed; n: the n-th uc_calloc fails */

void uc_fault_arm(long nth)
{
	fault_countdown = nth;
}

void *uc_calloc(size_t n, size_t size)
{
	if (fault_countdown > 0 && --fault_countdown == 0)
		return NULL;
	return calloc(n, size);
}

/* Counter line of the calling thread: chosen once per thread and forgotten
 * in a forked child, which would otherwise inherit its parent's line and
 * share it with every sibling (a shared line costs ~100 ns per write when
 * two processes take turns on it). */
__thread int uc_my_line = -1;

static void forget_line(void)
{
	uc_my_line = -1;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_line);
}

unsigned uc_cpu_line_slow(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	static _Atomic unsigned next;

	pthread_once(&once, register_atfork);
	uc_my_line = (int)((atomic_fetch_add(&next, 1) + (unsigned)getpid()) % UC_CPU_LINES);
	return (unsigned)uc_my_line;
}
