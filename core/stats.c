/*
 * stats.c - what a cache reports about itself: counters, sizes, resident
 * memory, configuration.  Lock-free: every counter is read with a relaxed
 * atomic load (or, for the per-CPU lines, summed), so a figure may be a
 * few operations stale but never torn.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layout.h"
#include "tags.h"

const struct ucache_config *ucache_config(const ucache_t *c)
{
	return &c->cfg;
}

uint64_t ucache_max_value(const ucache_t *c)
{
	return c->max_value;
}

/* Allocated slots minus those stripes keep stashed: the live items. */
uint64_t ucache_items(const ucache_t *c)
{
	uint64_t live = atomic_load_explicit(&c->hdr->live, memory_order_relaxed), stashed = uc_sum_stashed(c);

	return live > stashed ? live - stashed : 0; /* racy sums: never below 0 */
}

void ucache_stats(ucache_t *c, struct ucache_stats *st)
{
	struct uc_hdr *h = c->hdr;
	int64_t bytes = uc_sum(c, UC_CTR_BYTES);

	memset(st, 0, sizeof(*st));
	st->hits = (uint64_t)uc_sum(c, UC_CTR_HITS);
	st->misses = (uint64_t)uc_sum(c, UC_CTR_MISSES);
	st->items = ucache_items(c);
	st->capacity = h->items - 1;
	st->full = (uint64_t)uc_sum(c, UC_CTR_FULL);
	st->evictions = (uint64_t)uc_sum(c, UC_CTR_EVICTIONS);
	st->expirations = (uint64_t)uc_sum(c, UC_CTR_EXPIRATIONS);
	st->too_large = (uint64_t)uc_sum(c, UC_CTR_TOO_LARGE);
	st->bytes_used = bytes > 0 ? (uint64_t)bytes : 0; /* racy sum: never below 0 */
	/* bm.used is written under alloc: a torn read is impossible (8-byte
	 * aligned) and a stale one is what statistics may show */
	st->blocks_used = h->bitmap ? *(volatile uint64_t *)&h->bm.used : st->items;
	st->last_modified_at = atomic_load(&h->last_modified_at);
	st->mapped_bytes = h->total + uc_tags_mapped(c); /* the region and the tag generations */
	st->metadata_bytes = h->off_kdata; /* everything before the key / value data */
	st->stock_mapped_bytes = uc_stock_mapping(&c->cfg);
}

uint64_t ucache_resident_bytes(ucache_t *c)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), npages = (c->maplen + page - 1) / page, i;
	unsigned char *vec = malloc(npages ? npages : 1);
	uint64_t resident = 0;

	if (!vec)
		return 0;
	if (!mincore(c->base, c->maplen, vec))
		for (i = 0; i < npages; i++)
			resident += vec[i] & 1;
	free(vec);
	return resident * page;
}
