/*
 * layout.c - where everything of one cache lives in its shared region: the
 * plan (offsets from the configuration), attaching a process's handle, and
 * formatting a fresh region.  No locks: planning and formatting happen in
 * the creating process before any fork, attaching touches only the handle.
 *
 * Memory layout of one cache (one MAP_SHARED mapping; offsets only, no
 * pointers, so the same bytes can live in a file):
 *
 *   +------------------+ 0
 *   | struct uc_hdr    |  geometry, allocator state, counters (per-cpu lines)
 *   | stripes[S]       |  S <= 256 x {robust mutex, seqlock, SIEVE queue}, a line each
 *   | buckets[B]       |  head slot ids (4 bytes), B = items (or half)
 *   | slots[items]     |  24-byte item headers (hit counter included); slot 0 is the null slot
 *   | kofs[items]      |  bitmap mode: key chunk of each slot (u32)
 *   | atime[items]     |  caches of <= 65 items: exact-LRU access stamps (u32)
 *   | links[items]     |  larger caches: SIEVE queue entries (links and key hash, 3 x u32)
 *   | page descriptors |  value heap (single-block) or key heap (bitmap), 16 B each
 *   | bitmap           |  bitmap mode: one bit per block
 *   +------------------+ off_kdata (page aligned)
 *   | key heap         |  bitmap mode: items pages of keysize
 *   +------------------+ off_vdata (page aligned)
 *   | values           |  single-block: items pages of keysize + blocksize, or
 *   |                  |  packed 4 KiB pages when that is 4 such items or more
 *   |                  |  (heap.c), each chunk holding a key then its value;
 *   |                  |  bitmap: blocks
 *   +------------------+ total
 *
 * Address space: the plan stays within what stock uWSGI maps for the same
 * --cache2 (uc_stock_mapping), so every configuration that starts under a
 * --limit-as, vm.overcommit_memory=2 or ulimit -v with stock starts with
 * ucache.  Per item, stock maps 88 + keysize + blocksize bytes plus 8 of
 * free-slot stack (and 8 x hashsize of hash table); ucache maps a 24-byte
 * slot (its hit counter included), 12 of SIEVE queue entry, 4 of key
 * reference (bitmap only), a 16-byte page descriptor and a page of keysize
 * + blocksize rounded up to 16: at most 71 + keysize + blocksize, and 4 x
 * items of buckets (half that when it would not fit).  The mapping is
 * MAP_NORESERVE and nothing is memset: the kernel hands out zero pages, so
 * resident memory grows with use (a 100-byte value with a 12-byte key
 * costs 24 + 4 + a 112-byte chunk).  The SIEVE entries and stamps exist
 * whether or not purge_lru is set, so a store can be reopened with the
 * other policy; an array a cache never uses is never touched.
 *
 * The heap's capacity argument (heap.c) needs as many pages as slots, each
 * holding the largest item (keysize + blocksize): that is exactly stock's
 * per-item key + block budget, so every value stock accepts fits.  A packed
 * heap needs items x the largest item, plus ~nclass 4 KiB pages and its
 * classes' page-end slack, with compaction (compact.c): it is used when
 * that fits stock's budget (16 bytes of descriptor an item saved pay for
 * it from a few thousand items), else a page per item.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"
#include "tags.h"
#include "util.h"


uint64_t uc_stock_mapping(const struct ucache_config *cfg)
{
	uint64_t blocks = cfg->bitmap ? cfg->blocks : cfg->items;
	uint64_t m = uc_align_up(cfg->items * (88 + cfg->keysize) + blocks * cfg->blocksize, UC_PAGE);

	m += uc_align_up(cfg->hashsize * 8, UC_PAGE) + uc_align_up(cfg->items * 8, UC_PAGE);
	if (cfg->bitmap)
		m += uc_align_up(uc_div_ceil(cfg->blocks, 8), UC_PAGE);
	return m;
}

static uint64_t region(uint64_t *off, uint64_t size, uint64_t align)
{
	uint64_t at = uc_align_up(*off, align);

	*off = at + size;
	return at;
}

/* Single-block: the largest item, key and value together. */
static uint64_t largest_item(uint64_t keysize, uint64_t blocksize)
{
	return uc_align_up(keysize + blocksize, UC_HEAP_UNIT);
}

/* Single-block value heap: pages and their size.  Unpacked (vpage 0), a
 * page per item holding the largest; packed, UC_PACK_PAGE pages shared
 * by items of every size (uc_heap_packed_pages says how many). */
static void vheap_shape(uint64_t vpage, uint64_t keysize, uint64_t blocksize, uint64_t items, uint64_t *page,
			uint64_t *npages)
{
	uint64_t largest = largest_item(keysize, blocksize);

	*page = vpage ? vpage : largest;
	*npages = vpage ? uc_heap_packed_pages(vpage, largest, items) : items;
}

void uc_plan_geometry(const struct ucache_config *cfg, struct uc_hdr *h, uint64_t nbuckets)
{
	uint64_t off = 0, n = cfg->items, heap_pages = n, vpage, vpages;
	int bm = cfg->bitmap != 0;

	vheap_shape(h->vpage, cfg->keysize, cfg->blocksize, n, &vpage, &vpages);

	h->items = n;
	h->blocks = bm ? cfg->blocks : n;
	h->blocksize = cfg->blocksize;
	h->keysize = cfg->keysize;
	h->nbuckets = nbuckets;
	/* purge_lru is a policy, not a layout: a store keeps its file when it
	 * is toggled, so the arrays of both policies are always there */
	h->small = n <= UC_EXACT_LRU_MAX;
	/* a power of two (a bucket's stripe is its low bits); a SIEVE queue
	 * per stripe needs items to choose from: >= 64 each */
	h->nstripes = nbuckets < UC_STRIPES_MAX ? uc_pow2_floor(nbuckets) : UC_STRIPES_MAX;
	while (h->nstripes > 1 && h->nstripes * UC_SIEVE_PER_STRIPE > n)
		h->nstripes /= 2;
	h->hash = (uint64_t)cfg->hash;
	h->bitmap = (uint64_t)bm;
	h->csum_values = cfg->store != NULL;
	region(&off, sizeof(struct uc_hdr), UC_CACHELINE);
	h->off_stripes = region(&off, h->nstripes * sizeof(struct uc_stripe), UC_CACHELINE);
	h->off_buckets = region(&off, nbuckets * sizeof(struct uc_bucket), UC_CACHELINE);
	h->off_slots = region(&off, n * sizeof(struct uc_slot), UC_CACHELINE);
	h->off_kofs = region(&off, bm ? n * sizeof(uint32_t) : 0, UC_CACHELINE);
	h->off_atime = region(&off, h->small ? n * sizeof(uint32_t) : 0, UC_CACHELINE);
	h->off_links = region(&off, h->small ? 0 : n * sizeof(struct uc_link), UC_CACHELINE);
	h->off_kpages = region(&off, bm ? heap_pages * sizeof(struct uc_heap_page) : 0, UC_CACHELINE);
	h->off_vpages = region(&off, bm ? 0 : vpages * sizeof(struct uc_heap_page), UC_CACHELINE);
	h->off_bitmap = region(&off, bm ? uc_bitmap_words(cfg->blocks) * 8 : 0, UC_CACHELINE);
	h->size_kdata = bm ? heap_pages * uc_align_up(cfg->keysize, UC_HEAP_UNIT) : 0;
	h->off_kdata = region(&off, h->size_kdata, UC_PAGE);
	h->size_vdata = bm ? cfg->blocks * cfg->blocksize : vpages * vpage;
	h->off_vdata = region(&off, h->size_vdata, UC_PAGE);
	/* a store's tag table lives in its file, so a read-only view of the
	 * file honours invalidations; its size is what stock's address space
	 * leaves (tags.h), so the file is what region + table mapped before */
	h->size_tags = cfg->store ? uc_tags_table_bytes(uc_stock_mapping(cfg), uc_align_up(off, UC_PAGE)) : 0;
	h->off_tags = cfg->store ? region(&off, h->size_tags, UC_PAGE) : 0;
	h->total = uc_align_up(off, UC_PAGE);
}

/* Does plan h fit stock's address space, one page kept for the tag table
 * (a store's table then takes what is left: tags.h)? */
static int within_budget(const struct uc_hdr *h, uint64_t stock)
{
	return h->total - h->size_tags + UC_PAGE <= stock;
}

uint64_t uc_packed_page(const struct ucache_config *cfg)
{
	return !cfg->bitmap && largest_item(cfg->keysize, cfg->blocksize) * 4 <= UC_PACK_PAGE ? UC_PACK_PAGE : 0;
}

/* Packed value pages when 4 of the largest items fit in one, stock's
 * budget has room for their slack with nb buckets (not at the cost of
 * buckets; a store's tag table takes what is left, tags.h) and offsets
 * stay 32-bit: 1 with h planned so, else 0 with
 * h->vpage 0 (a page per item: at 1/4 of a page or more it wastes little). */
static int plan_packed(const struct ucache_config *cfg, struct uc_hdr *h, uint64_t nb, uint64_t stock)
{
	h->vpage = uc_packed_page(cfg);
	if (!h->vpage)
		return 0;
	uc_plan_geometry(cfg, h, nb);
	if (within_budget(h, stock) && h->size_vdata / UC_HEAP_UNIT < 0xffffffffull)
		return 1;
	h->vpage = 0;
	return 0;
}

int uc_plan_layout(const struct ucache_config *cfg, struct uc_hdr *h, char *err, size_t errlen)
{
	uint64_t refs = cfg->bitmap ? cfg->blocks : cfg->items * (largest_item(cfg->keysize, cfg->blocksize) / UC_HEAP_UNIT);
	uint64_t nb, least, stock = uc_stock_mapping(cfg);

	/* slot.val is 32 bits: a block number, or a heap offset in 16-byte units */
	if (cfg->items >= 0xffffffffull || refs >= 0xffffffffull) {
		uc_err(err, errlen, "cache \"%s\": geometry too large (items=%llu blocks=%llu blocksize=%llu keysize=%llu): "
		       "at most 2^32 - 1 items and blocks, and 64 GiB of single-block values", cfg->name,
		       (unsigned long long)cfg->items, (unsigned long long)cfg->blocks,
		       (unsigned long long)cfg->blocksize, (unsigned long long)cfg->keysize);
		return -EINVAL;
	}
	/* One bucket per item (chains of 1 on average at full load) when that
	 * fits in stock's budget, else half as many (chains of 2).  The budget
	 * keeps one page for the tag generations (tags.h).  hashsize does not
	 * count: it sizes stock's table, and stock's default of 65536 buckets
	 * for 10k items touched 512 KiB of index here, 52 bytes an item
	 * resident (4 now). */
	nb = cfg->items;
	least = (cfg->items + 1) / 2;
	if (plan_packed(cfg, h, nb, stock))
		return 0;
	uc_plan_geometry(cfg, h, nb);
	if (!within_budget(h, stock) && least < nb)
		uc_plan_geometry(cfg, h, least);
	return 0;
}

void uc_attach(ucache_t *c)
{
	uc_attach_as(c, (const struct uc_hdr *)c->base);
}

void uc_attach_as(ucache_t *c, const struct uc_hdr *h)
{
	c->hdr = (struct uc_hdr *)c->base;
	c->stripes = (struct uc_stripe *)(c->base + h->off_stripes);
	c->buckets = (struct uc_bucket *)(c->base + h->off_buckets);
	c->slots = (struct uc_slot *)(c->base + h->off_slots);
	c->kofs = (uint32_t *)(c->base + h->off_kofs);
	c->atime = (_Atomic uint32_t *)(c->base + h->off_atime);
	c->links = (struct uc_link *)(c->base + h->off_links);
	c->kheap = (struct uc_heap){ &c->hdr->kheap, (struct uc_heap_page *)(c->base + h->off_kpages), c->base + h->off_kdata };
	c->vheap = (struct uc_heap){ &c->hdr->vheap, (struct uc_heap_page *)(c->base + h->off_vpages), c->base + h->off_vdata };
	c->bm = (struct uc_bitmap){ &c->hdr->bm, (uint64_t *)(c->base + h->off_bitmap) };
	c->blocks = c->base + h->off_vdata;
	c->hashfn = uc_hash_get((enum ucache_hash)h->hash);
	c->nbuckets = h->nbuckets;
	c->stripe_mask = (uint32_t)h->nstripes - 1;
	c->items = (uint32_t)h->items;
	c->max_value = h->bitmap ? h->blocks * h->blocksize : h->blocksize;
	c->keysize = h->keysize;
	c->size_vdata = h->size_vdata;
	c->size_kdata = h->size_kdata;
	c->blocksize = h->blocksize;
	c->block_mask = h->bitmap && !(h->blocksize & (h->blocksize - 1)) ? h->blocksize - 1 : 0;
	c->bitmap = h->bitmap != 0;
	c->xxh3 = h->hash == UCACHE_HASH_XXH3;
	c->exact_lru = c->cfg.purge_lru && h->small;
	c->sieve = c->cfg.purge_lru && !h->small;
	c->csum_values = h->csum_values != 0;
}

void uc_format_allocators(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;
	uint32_t pages = (uint32_t)h->items;
	uint64_t vpage, vpages;

	vheap_shape(h->vpage, h->keysize, h->blocksize, h->items, &vpage, &vpages);
	uc_heap_format(&h->kheap, uc_align_up(h->keysize, UC_HEAP_UNIT), h->bitmap ? pages : 0);
	uc_heap_format_packed(&h->vheap, vpage, largest_item(h->keysize, h->blocksize), h->bitmap ? 0 : (uint32_t)vpages);
	uc_bitmap_format(&c->bm, h->bitmap ? h->blocks : 0);
}

void uc_format(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;

	memcpy(h->magic, UC_MAGIC, sizeof(h->magic));
	h->version = UC_LAYOUT_VERSION;
	h->hdr_size = sizeof(*h);
	h->created_at = ucache_now();
	snprintf(h->name, sizeof(h->name), "%s", c->cfg.name);
	atomic_store(&h->slot_unused, 1);
	uc_format_allocators(c);
}

int64_t uc_sum(const ucache_t *c, enum uc_counter which)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < UC_CPU_LINES; i++)
		n += atomic_load_explicit(&c->hdr->cpu[i].ctr[which], memory_order_relaxed);
	return (int64_t)n;
}

uint64_t uc_sum_stashed(const ucache_t *c)
{
	uint64_t i, n = 0;

	for (i = 0; i < c->hdr->nstripes; i++)
		n += *(volatile uint32_t *)&c->stripes[i].nstash;
	return n;
}

void uc_counts_reset(ucache_t *c)
{
	int i;

	for (i = 0; i < UC_CPU_LINES; i++) {
		atomic_store(&c->hdr->cpu[i].ctr[UC_CTR_BYTES], 0);
		atomic_store(&c->hdr->cpu[i].ctr[UC_CTR_EXPIRING], 0);
	}
}
