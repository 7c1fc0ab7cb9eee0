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
