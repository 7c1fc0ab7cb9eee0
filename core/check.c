/*
 * check.c - the invariant verifier (ucache_check) and the rebuild that lock
 * recovery and ucache_repair run (uc_rebuild_locked).
 *
 * Both run with the world lock held (every stripe, then the allocator), so
 * no writer is in flight; readers keep running and retry (the world lock
 * leaves every stripe's seq odd until it is released).
 *
 * The rebuild trusts nothing but live slots that prove themselves: key and
 * value lengths and offsets within the geometry, the key's hash, the
 * item's checksum, storage not claimed by an earlier item, key not already
 * indexed.  Everything else becomes free.  It touches every slot below
 * slot_unused and every bucket: O(items), only ever run after a crash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache_int.h"
#include "util.h"

struct uc_claims {
	struct uc_heap_rebuild k, v;
	uint64_t *bits;   /* bitmap mode, verify: blocks claimed so far */
};

/* The item in s is self-consistent (bounds, hash, checksum). */
int uc_item_valid(const ucache_t *c, const struct uc_slot *s)
{
	const uint8_t *k, *v;

	if (!s->keylen || s->keylen > c->hdr->keysize || !s->vallen || s->vallen > c->max_value)
		return 0;
	k = uc_slot_key(c, s, s->keylen);
	v = uc_slot_val(c, s, s->vallen);
	if (!k || !v)
		return 0;
	if (c->hashfn(k, s->keylen) != s->hash)
		return 0;
	return uc_item_csum(k, s->keylen, v, s->vallen, s->expires) == s->csum;
}

static uint64_t nblocks(const ucache_t *c, const struct uc_slot *s)
{
	return uc_div_ceil(s->vallen, c->hdr->blocksize);
}

/* Claim s's key chunk and value storage; 0, or -1 with nothing claimed. */
static int claim(ucache_t *c, struct uc_claims *cl, const struct uc_slot *s, int verify)
{
	uint64_t koff = (uint64_t)s->key * UC_HEAP_UNIT;
	int haskey = s->keylen > UC_INLINE_KEY;

	if (haskey && uc_heap_claim(&c->kheap, &cl->k, koff, s->keylen))
		return -1;
	if (!c->hdr->bitmap) {
		if (!uc_heap_claim(&c->vheap, &cl->v, s->val, s->vallen))
			return 0;
	} else if (!verify) {
		if (!uc_bitmap_claim(&c->bm, s->val, nblocks(c, s)))
			return 0;
	} else {
		struct uc_bitmap mine = { .st = &(struct uc_bitmap_state){ .nbits = c->hdr->blocks }, .words = cl->bits };
		if (uc_bitmap_all_set(&c->bm, s->val, nblocks(c, s)) && !uc_bitmap_claim(&mine, s->val, nblocks(c, s)))
			return 0;
	}
	if (haskey)
		uc_heap_unclaim(&c->kheap, &cl->k, koff, s->keylen);
	return -1;
}

static int claims_begin(ucache_t *c, struct uc_claims *cl, int verify)
{
	memset(cl, 0, sizeof(*cl));
	cl->k.verify = cl->v.verify = verify;
	if (uc_heap_rebuild_begin(&c->kheap, &cl->k) || uc_heap_rebuild_begin(&c->vheap, &cl->v))
		return -1;
	if (c->hdr->bitmap && verify) {
		cl->bits = calloc(uc_bitmap_words(c->hdr->blocks) + 1, sizeof(uint64_t));
		return cl->bits ? 0 : -1;
	}
	if (c->hdr->bitmap) {
		memset(c->bm.words, 0, uc_bitmap_words(c->hdr->blocks) * sizeof(uint64_t));
		c->hdr->bm.used = 0;
	}
	return 0;
}

static void claims_free(struct uc_claims *cl)
{
	uc_heap_rebuild_free(&cl->k);
	uc_heap_rebuild_free(&cl->v);
	free(cl->bits);
	cl->bits = NULL;
}

/* ---------------------------------------------------------------- rebuild */

static int link_item(ucache_t *c, uint32_t id)
{
	struct uc_slot *s = &c->slots[id];
	uint64_t b = uc_bucket_of(c, s->hash);

	if (uc_chain_find(c, b, s->hash, uc_slot_key(c, s, s->keylen), s->keylen, NULL))
		return -1; /* duplicate key: keep the first */
	s->next = atomic_load(&c->buckets[b].head);
	atomic_store(&c->buckets[b].head, id);
	uc_bucket_hint(c, b);
	return 0;
}

static void drop_claim(ucache_t *c, struct uc_claims *cl, const struct uc_slot *s)
{
	if (s->keylen > UC_INLINE_KEY)
		uc_heap_unclaim(&c->kheap, &cl->k, (uint64_t)s->key * UC_HEAP_UNIT, s->keylen);
	if (c->hdr->bitmap)
		uc_bitmap_free(&c->bm, s->val, nblocks(c, s));
	else
		uc_heap_unclaim(&c->vheap, &cl->v, s->val, s->vallen);
}

int64_t uc_rebuild_locked(ucache_t *c)
{
	struct uc_hdr *h = c->hdr;
	struct uc_claims cl;
	uint32_t id, unused = h->slot_unused < h->items ? h->slot_unused : (uint32_t)h->items;
	uint64_t dropped = 0;

	if (claims_begin(c, &cl, 0)) {
		uc_log(UCACHE_LOG_ERROR, "cache \"%s\": out of memory during repair", c->cfg.name);
		claims_free(&cl);
		return -ENOMEM;
	}
	memset((void *)c->buckets, 0, h->nbuckets * sizeof(struct uc_bucket));
	h->slot_free = 0;
	h->slot_unused = unused ? unused : 1;
	h->live = 0;
	atomic_store(&h->value_bytes, 0);
	atomic_store(&h->expiring, 0);
	for (id = h->slot_unused; id-- > 1;) {
		struct uc_slot *s = &c->slots[id];
		int ok = s->state == UC_SLOT_LIVE && uc_item_valid(c, s) && !claim(c, &cl, s, 0);
		if (ok && link_item(c, id)) {
			drop_claim(c, &cl, s);
			ok = 0;
		}
		if (ok) {
			h->live++;
			atomic_fetch_add(&h->value_bytes, s->vallen);
			if (s->expires)
				atomic_fetch_add(&h->expiring, 1);
			continue;
		}
		dropped += s->state == UC_SLOT_LIVE;
		s->state = UC_SLOT_FREE;
		s->next = h->slot_free;
		h->slot_free = id;
	}
	uc_heap_rebuild_end(&c->kheap, &cl.k);
	uc_heap_rebuild_end(&c->vheap, &cl.v);
	claims_free(&cl);
	if (dropped)
		uc_log(UCACHE_LOG_WARN, "cache \"%s\": repair dropped %llu damaged items", c->cfg.name,
		       (unsigned long long)dropped);
	return (int64_t)h->live;
}

int64_t ucache_repair(ucache_t *c)
{
	int64_t n;

	atomic_store(&c->hdr->repair_needed, UC_REPAIR_ASKED);
	uc_world_lock(c);
	n = (int64_t)c->hdr->live;
	uc_world_unlock(c);
	return n;
}

/* ------------------------------------------------------------------ check */

struct uc_checker {
	ucache_t *c;
	uint8_t *seen;      /* per slot: 1 = on a chain, 2 = on the free stack */
	uint64_t chained, bytes, expiring;
	struct uc_claims cl;
	char *err;
	size_t errlen;
};

static int check_slot(struct uc_checker *k, uint64_t b, uint32_t id)
{
	ucache_t *c = k->c;
	const struct uc_slot *s = &c->slots[id];

	if (!id || id >= c->hdr->slot_unused || k->seen[id]) {
		uc_err(k->err, k->errlen, "bucket %llu: bad or repeated slot %u", (unsigned long long)b, id);
		return -1;
	}
	k->seen[id] = 1;
	if (s->state != UC_SLOT_LIVE || uc_bucket_of(c, s->hash) != b) {
		uc_err(k->err, k->errlen, "slot %u on bucket %llu: state %u, hash bucket %llu", id,
		       (unsigned long long)b, s->state, (unsigned long long)uc_bucket_of(c, s->hash));
		return -1;
	}
	if (!uc_item_valid(c, s)) {
		uc_err(k->err, k->errlen, "slot %u: key/value out of bounds or checksum mismatch", id);
		return -1;
	}
	if (claim(c, &k->cl, s, 1)) {
		uc_err(k->err, k->errlen, "slot %u: storage (val %llu, %u bytes) overlaps another item or the allocator",
		       id, (unsigned long long)s->val, s->vallen);
		return -1;
	}
	k->chained++;
	k->bytes += s->vallen;
	k->expiring += s->expires != 0;
	return 0;
}

static int check_chains(struct uc_checker *k)
{
	ucache_t *c = k->c;
	uint64_t b;

	for (b = 0; b < c->hdr->nbuckets; b++) {
		uint32_t id = atomic_load(&c->buckets[b].head);
		for (; id; id = c->slots[id].next)
			if (check_slot(k, b, id))
				return -1;
	}
	return 0;
}

static int check_slots(struct uc_checker *k)
{
	ucache_t *c = k->c;
	struct uc_hdr *h = c->hdr;
	uint64_t nfree = 0;
	uint32_t id;

	for (id = h->slot_free; id; id = c->slots[id].next, nfree++) {
		if (id >= h->slot_unused || k->seen[id] || c->slots[id].state != UC_SLOT_FREE) {
			uc_err(k->err, k->errlen, "free stack: bad or repeated slot %u", id);
			return -1;
		}
		k->seen[id] = 2;
	}
	for (id = 1; id < h->slot_unused; id++) {
		if (!k->seen[id]) {
			uc_err(k->err, k->errlen, "slot %u (state %u) is neither indexed nor free", id, c->slots[id].state);
			return -1;
		}
	}
	if (k->chained != h->live || k->chained + nfree != h->slot_unused - 1u) {
		uc_err(k->err, k->errlen, "counts: %llu indexed, %llu free, live %llu, %u slots used",
		       (unsigned long long)k->chained, (unsigned long long)nfree, (unsigned long long)h->live,
		       h->slot_unused - 1);
		return -1;
	}
	return 0;
}

static int check_storage(struct uc_checker *k)
{
	ucache_t *c = k->c;
	struct uc_hdr *h = c->hdr;

	if (k->bytes != atomic_load(&h->value_bytes)) {
		uc_err(k->err, k->errlen, "bytes used: %llu counted, %llu recorded", (unsigned long long)k->bytes,
		       (unsigned long long)atomic_load(&h->value_bytes));
		return -1;
	}
	if ((int64_t)k->expiring != atomic_load(&h->expiring)) {
		uc_err(k->err, k->errlen, "items with an expiry: %llu counted, %lld recorded",
		       (unsigned long long)k->expiring, (long long)atomic_load(&h->expiring));
		return -1;
	}
	if (uc_heap_verify(&c->kheap, &k->cl.k, k->err, k->errlen) || uc_heap_verify(&c->vheap, &k->cl.v, k->err, k->errlen))
		return -1;
	if (h->bitmap && (memcmp(k->cl.bits, c->bm.words, uc_bitmap_words(h->blocks) * 8) ||
			  uc_bitmap_count(&c->bm) != h->bm.used)) {
		uc_err(k->err, k->errlen, "bitmap: marked blocks differ from the blocks items own");
		return -1;
	}
	return 0;
}

int ucache_check(ucache_t *c, char *err, size_t errlen)
{
	struct uc_checker k = { .c = c, .err = err, .errlen = errlen };
	int rc = -ENOMEM;

	uc_world_lock(c);
	k.seen = calloc(c->items + 1u, 1);
	if (k.seen && !claims_begin(c, &k.cl, 1))
		rc = check_chains(&k) || check_slots(&k) || check_storage(&k) ? -EUCLEAN : 0;
	else
		uc_err(err, errlen, "out of memory");
	claims_free(&k.cl);
	free(k.seen);
	uc_world_unlock(c);
	return rc;
}
