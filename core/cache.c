/*
 * cache.c - creation of a cache's shared region, its locks and repair.
 *
 * Who calls it: ucache_create() runs once, in the process that later forks
 * the workers; every other function of the engine runs in any process.
 *
 * Memory layout of one cache (one MAP_SHARED mapping; offsets only, no
 * pointers, so the same bytes can later live in a file):
 *
 *   +------------------+ 0
 *   | struct uc_hdr    |  geometry, allocator state, counters (per-cpu lines)
 *   +------------------+ off_stripes
 *   | stripes[S]       |  S <= 256 x {robust mutex, seqlock}, a line each
 *   +------------------+ off_buckets
 *   | buckets[B]       |  {head slot, value hint} per bucket; B = pow2 >= max(items, hashsize)
 *   +------------------+ off_slots
 *   | slots[items]     |  64-byte item headers; slot 0 is the null slot
 *   +------------------+ off_kpages / off_vpages / off_bitmap
 *   | page descriptors |  key heap and (single-block) value heap, or the
 *   | or block bitmap  |  bitmap of blocks (bitmap mode)
 *   +------------------+ off_kdata
 *   | key heap         |  keys longer than UC_INLINE_KEY, items pages of keysize
 *   +------------------+ off_vdata
 *   | values           |  heap of items pages (uc_vpage_size), or blocks x blocksize
 *   +------------------+ total
 *
 * The mapping is MAP_NORESERVE and nothing is memset at creation: the kernel
 * hands out zero pages, so resident memory grows with what is used.  Per
 * item: 64 bytes of slot + 8 bytes of bucket, plus the key (when longer
 * than 16 bytes) and the value rounded to its size class.
 *
 * Locking rules:
 *   - Readers take no lock: they validate what they read against the seq of
 *     the key's stripe (ops.c).  A reader that sees a stripe stay odd for
 *     long falls back to taking its lock, which repairs a dead writer's mess.
 *   - Writers lock the key's stripe (bucket & (S-1)), then, when they need
 *     slots or storage, the allocator lock.  Order: stripes in index order,
 *     then the allocator; never a stripe while holding the allocator.
 *   - All locks are robust process-shared mutexes.  Whoever gets EOWNERDEAD
 *     marks the lock consistent, raises hdr->repair_needed and releases;
 *     every writer that then locks a stripe sees the flag and joins
 *     uc_world_lock(), where the first one rebuilds index, free lists and
 *     allocators from the slot table (check.c), dropping any item whose
 *     checksum or geometry is wrong.  So a writer killed at any instruction
 *     costs at most its own half-done item.
 *
 * Invariants (verified by ucache_check):
 *   - a slot is LIVE iff it is on exactly one bucket chain, the one of its
 *     hash; FREE slots below slot_unused are on the free stack;
 *   - hdr->live = live + reserved slots; storage is owned by exactly the
 *     live slots (heap chunks / bitmap bits);
 *   - every live item's checksum matches its key and value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache_int.h"
#include "util.h"

static int mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -rc;
}

/* Lock m; returns 1 if its previous owner died (now made consistent). */
static int mutex_lock(pthread_mutex_t *m)
{
	int rc = pthread_mutex_lock(m);

	if (rc == EOWNERDEAD) {
		pthread_mutex_consistent(m);
		return 1;
	}
	if (rc) /* ENOTRECOVERABLE cannot happen: we always make it consistent */
		uc_log(UCACHE_LOG_ERROR, "pthread_mutex_lock: %s", strerror(rc));
	return 0;
}

/* repair_needed: 0 = no, UC_REPAIR_DEAD = a lock owner died, UC_REPAIR_ASKED
 * = ucache_repair() (or store recovery) asked for a rebuild. */
static void mark_repair(ucache_t *c)
{
	atomic_store(&c->hdr->repair_needed, UC_REPAIR_DEAD);
}

void uc_stripe_unlock(struct uc_stripe *st)
{
	pthread_mutex_unlock(&st->lock);
}

void uc_stripe_lock(ucache_t *c, struct uc_stripe *st)
{
	for (;;) {
		if (mutex_lock(&st->lock))
			mark_repair(c);
		if (!atomic_load(&c->hdr->repair_needed))
			return;
		uc_stripe_unlock(st);
		uc_world_lock(c);
		uc_world_unlock(c);
	}
}

int uc_alloc_lock(ucache_t *c)
{
	if (!mutex_lock(&c->hdr->alloc_lock))
		return 0;
	mark_repair(c);
	pthread_mutex_unlock(&c->hdr->alloc_lock);
	return -EAGAIN;
}

void uc_alloc_unlock(ucache_t *c)
{
	pthread_mutex_unlock(&c->hdr->alloc_lock);
}

void uc_world_lock(ucache_t *c)
{
	uint32_t i;
	int dead = 0;

	for (i = 0; i <= c->stripe_mask; i++)
		dead |= mutex_lock(&c->stripes[i].lock);
	dead |= mutex_lock(&c->hdr->alloc_lock);
	for (i = 0; i <= c->stripe_mask; i++) /* open a write window everywhere */
		atomic_store(&c->stripes[i].seq, (atomic_load(&c->stripes[i].seq) | 1u));
	if (dead || atomic_load(&c->hdr->repair_needed)) {
		int why = dead ? UC_REPAIR_DEAD : (int)atomic_load(&c->hdr->repair_needed);
		int64_t kept = uc_rebuild_locked(c);
		atomic_fetch_add(&c->hdr->repairs, 1);
		atomic_store(&c->hdr->repair_needed, 0);
		if (why == UC_REPAIR_DEAD)
			uc_log(UCACHE_LOG_WARN, "cache \"%s\": a process died holding a lock; repaired, %lld items kept",
			       c->cfg.name, (long long)kept);
	}
}

void uc_world_unlock(ucache_t *c)
{
	uint32_t i;

	for (i = 0; i <= c->stripe_mask; i++)
		atomic_store_explicit(&c->stripes[i].seq, atomic_load(&c->stripes[i].seq) + 1, memory_order_release);
	pthread_mutex_unlock(&c->hdr->alloc_lock);
	for (i = c->stripe_mask + 1; i-- > 0;)
		pthread_mutex_unlock(&c->stripes[i].lock);
}

/* ------------------------------------------------------------ layout */

static uint64_t region(uint64_t *off, uint64_t size, uint64_t align)
{
	uint64_t at = uc_align_up(*off, align);

	*off = at + size;
	return at;
}

/* Compute every offset of the layout into h from the configuration. */
int uc_plan_layout(const struct ucache_config *cfg, struct uc_hdr *h, char *err, size_t errlen)
{
	uint64_t off = 0, nkpages = cfg->keysize > UC_INLINE_KEY ? cfg->items : 0;
	uint64_t kpage = uc_align_up(cfg->keysize, UC_HEAP_UNIT), vpages = cfg->bitmap ? 0 : cfg->items;

	h->items = cfg->items;
	h->blocks = cfg->bitmap ? cfg->blocks : cfg->items;
	h->blocksize = cfg->blocksize;
	h->keysize = cfg->keysize;
	h->nbuckets = uc_pow2_ceil(cfg->hashsize > cfg->items ? cfg->hashsize : cfg->items);
	h->nstripes = h->nbuckets < UC_STRIPES_MAX ? h->nbuckets : UC_STRIPES_MAX;
	h->hash = (uint64_t)cfg->hash;
	h->bitmap = cfg->bitmap ? 1 : 0;
	region(&off, sizeof(struct uc_hdr), 4096);
	h->off_stripes = region(&off, h->nstripes * sizeof(struct uc_stripe), UC_CACHELINE);
	h->off_buckets = region(&off, h->nbuckets * sizeof(struct uc_bucket), UC_CACHELINE);
	h->off_slots = region(&off, h->items * sizeof(struct uc_slot), 4096);
	h->off_kpages = region(&off, nkpages * sizeof(struct uc_heap_page), 4096);
	h->off_vpages = region(&off, vpages * sizeof(struct uc_heap_page), 4096);
	h->off_bitmap = region(&off, cfg->bitmap ? uc_bitmap_words(cfg->blocks) * 8 : 0, 4096);
	h->size_kdata = nkpages * kpage;
	h->off_kdata = region(&off, h->size_kdata, 4096);
	h->size_vdata = cfg->bitmap ? cfg->blocks * cfg->blocksize : vpages * uc_vpage_size(cfg->blocksize, cfg->items);
	h->off_vdata = region(&off, h->size_vdata, 4096);
	h->total = uc_align_up(off, 4096);
	if (cfg->items >= 0xffffffffull || h->total >= (1ull << 46) || nkpages * kpage / UC_HEAP_UNIT >= 0xffffffffull) {
		uc_err(err, errlen, "cache \"%s\": geometry too large (items=%llu blocksize=%llu keysize=%llu)",
		       cfg->name, (unsigned long long)cfg->items, (unsigned long long)cfg->blocksize,
		       (unsigned long long)cfg->keysize);
		return -EINVAL;
	}
	return 0;
}

/* Point the handle's pointers into the mapping. */
void uc_attach(ucache_t *c)
{
	struct uc_hdr *h = (struct uc_hdr *)c->base;

	c->hdr = h;
	c->stripes = (struct uc_stripe *)(c->base + h->off_stripes);
	c->buckets = (struct uc_bucket *)(c->base + h->off_buckets);
	c->slots = (struct uc_slot *)(c->base + h->off_slots);
	c->kheap = (struct uc_heap){ &h->kheap, (struct uc_heap_page *)(c->base + h->off_kpages), c->base + h->off_kdata };
	c->vheap = (struct uc_heap){ &h->vheap, (struct uc_heap_page *)(c->base + h->off_vpages), c->base + h->off_vdata };
	c->bm = (struct uc_bitmap){ &h->bm, (uint64_t *)(c->base + h->off_bitmap) };
	c->blocks = c->base + h->off_vdata;
	c->hashfn = uc_hash_get((enum ucache_hash)h->hash);
	c->bucket_mask = h->nbuckets - 1;
	c->stripe_mask = (uint32_t)h->nstripes - 1;
	c->items = (uint32_t)h->items;
	c->max_value = h->bitmap ? h->blocks * h->blocksize : h->blocksize;
	c->exact_lru = h->items <= UC_EXACT_LRU_MAX;
}

int uc_init_locks(ucache_t *c)
{
	uint64_t i;
	int rc = mutex_init(&c->hdr->alloc_lock);

	for (i = 0; i < c->hdr->nstripes; i++) {
		rc |= mutex_init(&c->stripes[i].lock);
		atomic_store(&c->stripes[i].seq, 0);
	}
	return rc ? -EINVAL : 0;
}

void uc_format_allocators(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;

	uc_heap_format(&h->kheap, uc_align_up(h->keysize, UC_HEAP_UNIT),
		       h->keysize > UC_INLINE_KEY ? (uint32_t)h->items : 0);
	uc_heap_format(&h->vheap, uc_vpage_size(h->blocksize, h->items), h->bitmap ? 0 : (uint32_t)h->items);
	uc_bitmap_format(&c->bm, h->bitmap ? h->blocks : 0);
}

int uc_format(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;

	memcpy(h->magic, UC_MAGIC, sizeof(h->magic));
	h->version = UC_LAYOUT_VERSION;
	h->hdr_size = sizeof(*h);
	h->created_at = ucache_now();
	snprintf(h->name, sizeof(h->name), "%s", c->cfg.name);
	h->slot_unused = 1;
	uc_format_allocators(c);
	return uc_init_locks(c);
}

static int config_copy(struct ucache_config *dst, const struct ucache_config *src)
{
	char **strs[] = { &dst->name, &dst->store, &dst->nodes, &dst->udp, &dst->sync };
	size_t i;

	*dst = *src;
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (*strs[i] && !(*strs[i] = strdup(*strs[i]))) {
			while (i-- > 0)
				free(*strs[i]);
			return -ENOMEM;
		}
	}
	return 0;
}

static int map_anonymous(ucache_t *c, char *err, size_t errlen)
{
	c->base = mmap(NULL, c->maplen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->base != MAP_FAILED)
		return UC_STORE_FRESH;
	uc_err(err, errlen, "cache \"%s\": mmap of %llu bytes failed: %s", c->cfg.name,
	       (unsigned long long)c->maplen, strerror(errno));
	return -ENOMEM;
}

ucache_t *ucache_create(const struct ucache_config *cfg, char *err, size_t errlen)
{
	struct uc_hdr plan;
	ucache_t *c;
	int rc;

	if (ucache_config_validate(cfg, err, errlen))
		return NULL;
	memset(&plan, 0, sizeof(plan));
	if (uc_plan_layout(cfg, &plan, err, errlen))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c)
		c->store_fd = -1;
	if (!c || config_copy(&c->cfg, cfg)) {
		uc_err(err, errlen, "cache \"%s\": out of memory", cfg->name);
		free(c);
		return NULL;
	}
	c->maplen = plan.total;
	rc = cfg->store ? uc_store_map(c, &plan, err, errlen) : map_anonymous(c, err, errlen);
	if (rc < 0)
		goto fail;
	if (rc == UC_STORE_EXISTING) {
		uc_attach(c);
		uc_store_recover(c);
		return c;
	}
	memcpy(c->base, &plan, sizeof(plan));
	uc_attach(c);
	if (uc_format(c)) {
		uc_err(err, errlen, "cache \"%s\": cannot initialise process-shared robust mutexes", cfg->name);
		munmap(c->base, c->maplen);
		goto fail;
	}
	if (cfg->store)
		uc_store_import_pending(c);
	return c;
fail:
	if (c->store_fd >= 0)
		close(c->store_fd);
	ucache_config_free(&c->cfg);
	free(c);
	return NULL;
}

void ucache_destroy(ucache_t *c)
{
	if (!c)
		return;
	munmap(c->base, c->maplen);
	if (c->store_fd >= 0)
		close(c->store_fd);
	ucache_config_free(&c->cfg);
	free(c);
}

const struct ucache_config *ucache_config(const ucache_t *c)
{
	return &c->cfg;
}

uint64_t ucache_max_value(const ucache_t *c)
{
	return c->max_value;
}

uint64_t ucache_items(const ucache_t *c)
{
	return c->hdr->live;
}

void ucache_stats(ucache_t *c, struct ucache_stats *st)
{
	struct uc_hdr *h = c->hdr;
	int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < UC_CPU_LINES; i++) {
		st->hits += atomic_load_explicit(&h->cpu[i].hits, memory_order_relaxed);
		st->misses += atomic_load_explicit(&h->cpu[i].misses, memory_order_relaxed);
	}
	st->items = h->live;
	st->capacity = h->items - 1;
	st->full = atomic_load(&h->full);
	st->evictions = atomic_load(&h->evictions);
	st->expirations = atomic_load(&h->expirations);
	st->bytes_used = h->value_bytes;
	st->blocks_used = h->bitmap ? h->bm.used : h->live;
	st->last_modified_at = atomic_load(&h->last_modified_at);
	st->mapped_bytes = h->total;
	st->metadata_bytes = h->nbuckets * sizeof(struct uc_bucket) + h->items * sizeof(struct uc_slot);
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
