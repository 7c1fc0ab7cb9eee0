/*
 * bench_util.h - what the C benchmarks (bench/engine.c, bench/hitratio.c)
 * share: the engine logger, and making a cache or exiting.
 */
#ifndef UCACHE_BENCH_UTIL_H
#define UCACHE_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucache.h"

/* A full cache logs "cache is FULL" and the like on purpose here: show
 * the first few lines only. */
static void bench_logger(enum ucache_log_level level, const char *msg, void *ud)
{
	static int shown;

	(void)ud;
	if (shown++ < 10)
		fprintf(stderr, "  [ucache %s] %s\n", level == UCACHE_LOG_ERROR ? "error" :
				level == UCACHE_LOG_WARN ? "warn" : "info", msg);
	else if (shown == 11)
		fprintf(stderr, "  [ucache] further engine messages suppressed\n");
}

/* A cache named name of items x blocksize (blocks = items: ucache_create()
 * does not apply that default), purge_lru and ignore_full as given, keysize
 * and hash as in the config start(): exits with the reason if it fails. */
static ucache_t *bench_cache(const char *name, uint64_t items, uint64_t blocksize, int lru,
			     void (*tune)(struct ucache_config *cfg))
{
	struct ucache_config cfg;
	char err[256] = "";
	ucache_t *c;

	ucache_config_init(&cfg);
	cfg.name = strdup(name);
	cfg.items = items;
	cfg.blocksize = blocksize;
	cfg.blocks = items;
	cfg.purge_lru = lru;
	cfg.ignore_full = 1;
	if (tune)
		tune(&cfg);
	c = ucache_create(&cfg, err, sizeof(err));
	if (!c) {
		fprintf(stderr, "ucache_create(%s): %s\n", name, err);
		exit(1);
	}
	ucache_config_free(&cfg);
	return c;
}

#endif
