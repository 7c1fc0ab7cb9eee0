/*
 * verify.c - ucache_check(): every invariant of a cache, verified with the
 * world lock held (no writer in flight; readers keep running and retry).
 *
 * Invariants:
 *   - a slot is LIVE iff it is on exactly one bucket chain, the one of its
 *     hash; FREE slots below slot_unused are on the free stack; RESERVED
 *     ones, once their writer is done, are in exactly one stripe's stash;
 *   - hdr->live counts the live and stashed slots; the counter lines sum
 *     to the live items' value bytes and to those with an expiry;
 *   - storage is owned by exactly the live slots (heap chunks, bitmap
 *     bits), each item's checksum holds, no item is DIRTY;
 *   - SIEVE caches: each stripe's queue holds exactly its live items.
 * The storage claims are the rebuild's own (repair.c), in verify mode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repair.h"
#include "util.h"

struct uc_checker {
	ucache_t *c;
	uint8_t *seen;      /* per slot: 1 = on a chain, 2 = on the free stack, 4 = stashed */
	uint64_t chained, bytes, expiring, stashed;
	struct uc_claims cl;
	char *err;
	size_t errlen;
};

static int check_slot(struct uc_checker *k, uint64_t b, uint32_t id)
{
	ucache_t *c = k->c;
	const struct uc_slot *s = &c->slots[id];
	uint32_t hash;

	if (!id || id >= atomic_load(&c->hdr->slot_unused) || k->seen[id]) {
		uc_err(k->err, k->errlen, "bucket %llu: bad or repeated slot %u", (unsigned long long)b, id);
		return -1;
	}
	k->seen[id] = 1;
	if (uc_slot_state(s) != UC_SLOT_LIVE) {
		uc_err(k->err, k->errlen, "slot %u on bucket %llu: state %u", id, (unsigned long long)b, uc_slot_state(s));
		return -1;
	}
	if (!uc_item_valid(c, id, &hash)) {
		uc_err(k->err, k->errlen, "slot %u: key/value out of bounds or checksum mismatch", id);
		return -1;
	}
	if (uc_bucket_of(c, hash) != b) {
		uc_err(k->err, k->errlen, "slot %u on bucket %llu: its key's bucket is %llu", id, (unsigned long long)b,
		       (unsigned long long)uc_bucket_of(c, hash));
		return -1;
	}
	if (uc_claim_item(c, &k->cl, id)) {
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

/* Stashed slots: RESERVED, owning their storage, each in one stash. */
static int check_stashes(struct uc_checker *k)
{
	ucache_t *c = k->c;
	uint64_t i, j;

	for (i = 0; i < c->hdr->nstripes; i++) {
		struct uc_stripe *st = &c->stripes[i];
		for (j = 0; j < st->nstash && j < UC_STASH + 1; j++) {
			uint32_t id = st->stash[j];
			if (st->nstash > UC_STASH || !id || id >= atomic_load(&c->hdr->slot_unused) || k->seen[id] ||
			    uc_slot_state(&c->slots[id]) != UC_SLOT_RESERVED || uc_claim_item(c, &k->cl, id)) {
				uc_err(k->err, k->errlen, "stripe %llu: bad stash entry %u", (unsigned long long)i, id);
				return -1;
			}
			k->seen[id] = 4;
			k->stashed++;
		}
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
		if (id >= atomic_load(&h->slot_unused) || k->seen[id] || uc_slot_state(&c->slots[id]) != UC_SLOT_FREE) {
			uc_err(k->err, k->errlen, "free stack: bad or repeated slot %u", id);
			return -1;
		}
		k->seen[id] = 2;
	}
	for (id = 1; id < atomic_load(&h->slot_unused); id++) {
		if (!k->seen[id]) {
			uc_err(k->err, k->errlen, "slot %u (state %u) is neither indexed nor free", id, uc_slot_state(&c->slots[id]));
			return -1;
		}
	}
	if (k->chained + k->stashed != atomic_load(&h->live) ||
	    k->chained + nfree + k->stashed != atomic_load(&h->slot_unused) - 1u) {
		uc_err(k->err, k->errlen, "counts: %llu indexed, %llu free, %llu stashed, live %llu, %u slots used",
		       (unsigned long long)k->chained, (unsigned long long)nfree, (unsigned long long)k->stashed,
		       (unsigned long long)atomic_load(&h->live), atomic_load(&h->slot_unused) - 1);
		return -1;
	}
	return 0;
}

/* SIEVE: every stripe's queue holds exactly the stripe's live items, its
 * links agree both ways (but the tail's next, which is not kept: index.c),
 * and the hand is on it. */
static int check_queues(struct uc_checker *k)
{
	ucache_t *c = k->c;
	uint64_t i, total = 0;

	if (!c->sieve)
		return 0;
	for (i = 0; i < c->hdr->nstripes; i++) {
		struct uc_stripe *st = &c->stripes[i];
		uint32_t id, prev = 0, hand_seen = !st->hand;
		for (id = st->head; id; prev = id, id = id == st->tail ? 0 : c->links[id].next) {
			if (id >= c->items || k->seen[id] != 1 || c->links[id].prev != prev ||
			    c->links[id].hash != uc_slot_hash(c, id) || uc_stripe_of_hash(c, c->links[id].hash) != st ||
			    total++ > c->items) {
				uc_err(k->err, k->errlen, "stripe %llu: SIEVE queue broken at slot %u", (unsigned long long)i, id);
				return -1;
			}
			k->seen[id] = 3;
			hand_seen |= id == st->hand;
		}
		if (st->tail != prev || !hand_seen) {
			uc_err(k->err, k->errlen, "stripe %llu: SIEVE tail %u / hand %u not on the queue",
			       (unsigned long long)i, st->tail, st->hand);
			return -1;
		}
	}
	if (total != k->chained) {
		uc_err(k->err, k->errlen, "SIEVE queues hold %llu items, %llu are indexed", (unsigned long long)total,
		       (unsigned long long)k->chained);
		return -1;
	}
	return 0;
}

static int check_storage(struct uc_checker *k)
{
	ucache_t *c = k->c;
	struct uc_hdr *h = c->hdr;

	if ((int64_t)k->bytes != uc_sum(c, UC_CTR_BYTES)) {
		uc_err(k->err, k->errlen, "bytes used: %llu counted, %lld recorded", (unsigned long long)k->bytes,
		       (long long)uc_sum(c, UC_CTR_BYTES));
		return -1;
	}
	if ((int64_t)k->expiring != uc_sum(c, UC_CTR_EXPIRING)) {
		uc_err(k->err, k->errlen, "items with an expiry: %llu counted, %lld recorded",
		       (unsigned long long)k->expiring, (long long)uc_sum(c, UC_CTR_EXPIRING));
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

	if (uc_world_lock(c)) {
		uc_err(err, errlen, "cache needs a repair that cannot run (out of memory)");
		uc_world_unlock(c);
		return -ENOMEM;
	}
	k.seen = uc_calloc(c->items + 1u, 1);
	if (k.seen && !uc_claims_prepare(c, &k.cl, 1))
		rc = check_chains(&k) || check_stashes(&k) || check_slots(&k) || check_queues(&k) || check_storage(&k)
			     ? -EUCLEAN : 0;
	else
		uc_err(err, errlen, "out of memory");
	uc_claims_free(&k.cl);
	free(k.seen);
	uc_world_unlock(c);
	return rc;
}
