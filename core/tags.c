/*
 * tags.c - tagged entries: invalidation by tag in O(1).
 *
 * A tagged value starts with an envelope (tags.h) recording its tags'
 * generation counters and "since", the invalidation clock the renderer read
 * *before* rendering: an invalidation that lands while the page is rendered
 * raises a counter past since, so the page is stale the moment it is
 * stored.  Invalidating a tag is an atomic add and a compare-and-swap,
 * whatever the number of entries carrying it; every read (read.c: get, get_alloc, exists, peek)
 * compares the recorded generations with the table after its copy and
 * treats a mismatch as a miss, and the sweep (evict.c) frees such entries.
 *
 * Lock rules: none (tags.h, struct uc_tagtab).  Calls only layout/util.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "tags.h"
#include "util.h"

static uint64_t draw_epoch(void)
{
	uint64_t e = 0;

	if (getrandom(&e, sizeof(e), GRND_NONBLOCK) != (ssize_t)sizeof(e))
		e = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&e;
	/* never the shared epoch: this table must not judge a near cache's envelopes */
	return e && e != UCACHE_TAGS_SHARED_EPOCH ? e : 1;
}

/* Is the table in the region (a store's)?  Compares addresses only: the
 * region may already be unmapped (ucache_destroy). */
static int in_region(const ucache_t *c)
{
	return (uint8_t *)c->tags >= c->base && (uint8_t *)c->tags < c->base + c->maplen;
}

/* A reopened store's table, emptied for its new epoch.  A view (view.c)
 * may be reading it: the epoch changes first, so every old envelope is
 * stale before any counter it recorded drops to 0 (memset's order is
 * unspecified: the other way round, an invalidated page read fresh). */
static void clear_table(struct uc_tagtab *t, size_t bytes, uint64_t epoch)
{
	__atomic_store_n(&t->epoch, epoch, __ATOMIC_SEQ_CST);
	memset((uint8_t *)t + offsetof(struct uc_tagtab, ngens), 0, bytes - offsetof(struct uc_tagtab, ngens));
}

int uc_tags_map(ucache_t *c, const struct uc_hdr *plan, int reopened)
{
	size_t bytes = plan->size_tags ? plan->size_tags : uc_tags_table_bytes(uc_stock_mapping(&c->cfg), c->maplen);
	void *p = c->base + plan->off_tags;
	uint64_t epoch = draw_epoch();

	if (!plan->size_tags)
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	else if (reopened) /* a fresh file reads as zeros already: only a reopened one is written */
		clear_table(p, bytes, epoch);
	if (p == MAP_FAILED)
		return -ENOMEM;
	c->tags = p;
	c->tag_ngens = uc_tags_ngens(bytes);
	c->tags->ngens = c->tag_ngens;
	c->tags->epoch = epoch;
	atomic_store(&c->tags->seq, 1);
	/* a reopened store may hold envelopes of the previous table: all stale */
	atomic_store(&c->tags->invalidated, reopened ? 1 : 0);
	return 0;
}

size_t uc_tags_mapped(const ucache_t *c)
{
	return c->tags && !in_region(c) ? uc_align_up(sizeof(struct uc_tagtab) + c->tag_ngens * sizeof(uint64_t), UC_PAGE)
					: 0;
}

void uc_tags_unmap(ucache_t *c)
{
	if (c->tags && !in_region(c))
		munmap(c->tags, uc_tags_mapped(c));
	c->tags = NULL;
}

/* A tag's counter in this cache's table (tags.h: ngens depends on the
 * geometry, so it is not ucache_tag_index() below). */
static uint32_t gen_index(const ucache_t *c, const void *tag, size_t len)
{
	return (uint32_t)(XXH3_64bits(tag, len) % c->tag_ngens);
}

/* The counter index shared by every machine (a near cache's tag state in
 * Redis): a fixed space, whatever each machine's table holds. */
uint32_t ucache_tag_index(const void *tag, size_t len)
{
	return (uint32_t)(XXH3_64bits(tag, len) % UC_TAG_GENS_MAX);
}

/* 1 to UCACHE_TAG_MAX bytes, no comma: the lists of the wire (tags=a,b)
 * and of the Accelerator split on commas, so such a tag could never be
 * invalidated there. */
static int tag_ok(const void *tag, size_t len)
{
	return tag && len && len <= UCACHE_TAG_MAX && !memchr(tag, ',', len);
}

long uc_tags_fresh(const ucache_t *c, const uint8_t *val, size_t len)
{
	uint64_t epoch, since;
	uint32_t ntags, hlen, idx, i;

	if (len < UC_TAG_FIXED)
		return -ESTALE;
	memcpy(&epoch, val + 8, 8);
	memcpy(&since, val + 16, 8);
	memcpy(&ntags, val + 24, 4);
	memcpy(&hlen, val + 28, 4);
	if (epoch != c->tags->epoch || !ntags || ntags > UCACHE_TAGS_MAX ||
	    hlen != UC_TAG_FIXED + UC_TAG_REF * ntags || hlen > len)
		return -ESTALE;
	for (i = 0; i < ntags; i++) {
		memcpy(&idx, val + UC_TAG_FIXED + (size_t)i * UC_TAG_REF, 4);
		if (idx >= c->tag_ngens || atomic_load_explicit(&c->tags->gen[idx], memory_order_acquire) > since)
			return -ESTALE;
	}
	return (long)hlen;
}

uint64_t ucache_tags_now(ucache_t *c)
{
	return c->tags ? atomic_load_explicit(&c->tags->seq, memory_order_acquire) : 0;
}

/* c: a local table's envelope (its epoch, its counters); NULL: a shared one
 * (UCACHE_TAGS_SHARED_EPOCH, ucache_tag_index()'s counters). */
static long write_head(const ucache_t *c, uint64_t since, const void *const *tags, const size_t *lens, size_t ntags,
		       void *out, size_t outlen)
{
	uint8_t *o = out;
	uint32_t n = (uint32_t)ntags, hlen = UC_TAG_FIXED + UC_TAG_REF * (uint32_t)ntags;
	uint64_t epoch = c ? c->tags->epoch : UCACHE_TAGS_SHARED_EPOCH;
	size_t i;

	if (!since || !ntags || ntags > UCACHE_TAGS_MAX)
		return -EINVAL;
	for (i = 0; i < ntags; i++) {
		if (!tag_ok(tags[i], lens[i]))
			return -EINVAL;
	}
	if (outlen < hlen)
		return -ENOBUFS;
	memcpy(o, UC_TAG_MAGIC, UC_TAG_MAGIC_LEN);
	memcpy(o + 8, &epoch, 8);
	memcpy(o + 16, &since, 8);
	memcpy(o + 24, &n, 4);
	memcpy(o + 28, &hlen, 4);
	for (i = 0; i < ntags; i++) {
		uint32_t idx = c ? gen_index(c, tags[i], lens[i]) : ucache_tag_index(tags[i], lens[i]);
		memcpy(o + UC_TAG_FIXED + i * UC_TAG_REF, &idx, 4);
	}
	return (long)hlen;
}

long ucache_tags_head(ucache_t *c, uint64_t since, const void *const *tags, const size_t *lens, size_t ntags,
		      void *out, size_t outlen)
{
	if (!c->tags)
		return -EINVAL;
	return write_head(c, since, tags, lens, ntags, out, outlen);
}

long ucache_tags_head_shared(uint64_t since, const void *const *tags, const size_t *lens, size_t ntags,
			     void *out, size_t outlen)
{
	return write_head(NULL, since, tags, lens, ntags, out, outlen);
}

int ucache_invalidate_tag(ucache_t *c, const void *tag, size_t len)
{
	_Atomic uint64_t *gen;
	uint64_t s, cur;

	if (!c->tags || !tag_ok(tag, len))
		return -EINVAL;
	gen = &c->tags->gen[gen_index(c, tag, len)];
	s = atomic_fetch_add(&c->tags->seq, 1) + 1;
	cur = atomic_load(gen);
	while (cur < s && !atomic_compare_exchange_weak(gen, &cur, s))
		;
	atomic_fetch_add_explicit(&c->tags->invalidated, 1, memory_order_relaxed);
	return 0;
}

long ucache_tags_check(ucache_t *c, const void *val, size_t len)
{
	if (!uc_tags_is_env(val, len))
		return 0;
	if (!c->tags)
		return -ESTALE;
	return uc_tags_fresh(c, val, len);
}
