/*
 * tags.c - tagged entries: invalidation by tag in O(1).
 *
 * A tagged value starts with an envelope (tags.h) recording, for each of
 * its tags, the tag's generation counter and the generation read when the
 * head was made, which the renderer does *before* rendering: an
 * invalidation that lands while the page is rendered bumps the counter past
 * the recorded value, so the page is stale the moment it is stored.
 * Invalidating a tag is one atomic increment, whatever the number of
 * entries carrying it; every read (read.c: get, get_alloc, exists, peek)
 * compares the recorded generations with the table after its copy and
 * treats a mismatch as a miss, and the sweep (evict.c) frees such entries.
 *
 * Lock rules: none (tags.h, struct uc_tagtab).  Calls only layout/util.
 */
#include <errno.h>
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
	return e ? e : 1;
}

int uc_tags_map(ucache_t *c, int reopened)
{
	void *p = mmap(NULL, sizeof(struct uc_tagtab), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	c->tags = p;
	c->tags->epoch = draw_epoch();
	/* a reopened store may hold envelopes of the previous table: all stale */
	atomic_store(&c->tags->invalidated, reopened ? 1 : 0);
	return 0;
}

void uc_tags_unmap(ucache_t *c)
{
	if (c->tags)
		munmap(c->tags, sizeof(struct uc_tagtab));
	c->tags = NULL;
}

static uint32_t gen_index(const void *tag, size_t len)
{
	return (uint32_t)(XXH3_64bits(tag, len) % UC_TAG_GENS);
}

static int tag_ok(const void *tag, size_t len)
{
	return tag && len && len <= UCACHE_TAG_MAX;
}

long uc_tags_fresh(const ucache_t *c, const uint8_t *val, size_t len)
{
	uint64_t epoch, gen;
	uint32_t ntags, hlen, idx, i;

	if (len < UC_TAG_FIXED)
		return -ESTALE;
	memcpy(&epoch, val + 8, 8);
	memcpy(&ntags, val + 16, 4);
	memcpy(&hlen, val + 20, 4);
	if (epoch != c->tags->epoch || !ntags || ntags > UCACHE_TAGS_MAX ||
	    hlen != UC_TAG_FIXED + UC_TAG_REF * ntags || hlen > len)
		return -ESTALE;
	for (i = 0; i < ntags; i++) {
		const uint8_t *ref = val + UC_TAG_FIXED + (size_t)i * UC_TAG_REF;
		memcpy(&idx, ref, 4);
		memcpy(&gen, ref + 8, 8);
		if (idx >= UC_TAG_GENS || atomic_load_explicit(&c->tags->gen[idx], memory_order_acquire) != gen)
			return -ESTALE;
	}
	return (long)hlen;
}

long ucache_tags_head(ucache_t *c, const void *const *tags, const size_t *lens, size_t ntags, void *out,
		      size_t outlen)
{
	uint8_t *o = out;
	uint32_t n = (uint32_t)ntags, hlen = UC_TAG_FIXED + UC_TAG_REF * (uint32_t)ntags, zero = 0;
	size_t i;

	if (!c->tags || !ntags || ntags > UCACHE_TAGS_MAX)
		return -EINVAL;
	for (i = 0; i < ntags; i++) {
		if (!tag_ok(tags[i], lens[i]))
			return -EINVAL;
	}
	if (outlen < hlen)
		return -ENOBUFS;
	memcpy(o, UC_TAG_MAGIC, UC_TAG_MAGIC_LEN);
	memcpy(o + 8, &c->tags->epoch, 8);
	memcpy(o + 16, &n, 4);
	memcpy(o + 20, &hlen, 4);
	for (i = 0; i < ntags; i++) {
		uint8_t *ref = o + UC_TAG_FIXED + i * UC_TAG_REF;
		uint32_t idx = gen_index(tags[i], lens[i]);
		uint64_t gen = atomic_load_explicit(&c->tags->gen[idx], memory_order_acquire);
		memcpy(ref, &idx, 4);
		memcpy(ref + 4, &zero, 4);
		memcpy(ref + 8, &gen, 8);
	}
	return (long)hlen;
}

int ucache_invalidate_tag(ucache_t *c, const void *tag, size_t len)
{
	if (!c->tags || !tag_ok(tag, len))
		return -EINVAL;
	atomic_fetch_add(&c->tags->gen[gen_index(tag, len)], 1);
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
