/*
 * image.c - read and write stock uWSGI's raw cache image (image.h has the
 * format).  No uWSGI, no state; comparisons are written "left < n" so
 * that no sum of untrusted numbers can overflow.
 */
#include "image.h"

#include <stdlib.h>
#include <string.h>

static uint64_t get64(const uint8_t *item, size_t off)
{
	uint64_t v;

	memcpy(&v, item + off, sizeof(v));
	return v;
}

static void put64(uint8_t *item, size_t off, uint64_t v)
{
	memcpy(item + off, &v, sizeof(v));
}

/* a * b + c, or 0 on overflow (0 is never a valid image size). */
static uint64_t mul_add(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m;

	if (__builtin_mul_overflow(a, b, &m) || __builtin_add_overflow(m, c, &m))
		return 0;
	return m;
}

uint64_t ucp_image_size(const struct ucp_image_layout *l, const struct ucp_image_geom *g)
{
	uint64_t stride = l->size + g->keysize, blocks;

	if (stride < l->size || !g->items || !g->blocksize || !g->blocks)
		return 0;
	blocks = mul_add(g->blocks, g->blocksize, 0);
	return blocks ? mul_add(g->items, stride, blocks) : 0;
}

static int fits(const struct ucp_image_layout *l, struct ucp_image_geom *g, uint64_t len)
{
	return g->keysize >= 1 && g->blocks >= 1 && ucp_image_size(l, g) == len;
}

int ucp_image_guess(const struct ucp_image_layout *l, uint64_t items, uint64_t blocksize, uint64_t len,
		const struct ucp_image_geom *own, struct ucp_image_geom *out)
{
	struct ucp_image_geom g = { .items = items, .blocksize = blocksize, .keysize = own->keysize,
				    .blocks = own->blocks };
	uint64_t data, stride;

	if (!items || !blocksize)
		return -1;
	if (fits(l, &g, len))
		goto found;
	/* bitmap: the receiver's keysize, the blocks the length implies */
	g.keysize = own->keysize;
	data = mul_add(items, l->size + own->keysize, 0);
	if (data && len > data && (len - data) % blocksize == 0) {
		g.blocks = (len - data) / blocksize;
		if (fits(l, &g, len))
			goto found;
	}
	/* no bitmap: blocks = items, the rest of each item's share is its key */
	g.blocks = items;
	data = mul_add(items, blocksize, 0);
	if (data && len > data && (len - data) % items == 0) {
		stride = (len - data) / items;
		g.keysize = stride > l->size ? stride - l->size : 0;
		if (fits(l, &g, len))
			goto found;
	}
	return -1;
found:
	*out = g;
	return 0;
}

/* Item i of the image, checked: 1 and *it filled, 0 free, -1 invalid. */
static int read_item(const struct ucp_image_layout *l, const struct ucp_image_geom *g, const uint8_t *img,
		size_t len, uint64_t i, uint64_t key_max, struct ucp_image_item *it, uint64_t *flags)
{
	uint64_t stride = l->size + g->keysize, off = i * stride; /* < ucp_image_size: no overflow */
	uint64_t data = g->items * stride, klen, vlen, block, voff, region = g->blocks * g->blocksize;
	const uint8_t *item = img + off;

	if (len < off || len - off < l->size)
		return -1;
	klen = get64(item, l->keysize);
	if (klen == 0)
		return 0;
	if (klen > g->keysize || klen > key_max || len - off - l->size < klen)
		return -1;
	vlen = get64(item, l->valsize);
	block = get64(item, l->first_block);
	if (vlen == 0 || block >= g->blocks)
		return -1;
	voff = block * g->blocksize;
	if (region - voff < vlen || len < data || len - data < voff || len - data - voff < vlen)
		return -1;
	it->key = item + l->size;
	it->key_len = klen;
	it->value = img + data + voff;
	it->value_len = vlen;
	it->expires = get64(item, l->expires);
	*flags = get64(item, l->flags);
	return 1;
}

void ucp_image_walk(const struct ucp_image_layout *l, const struct ucp_image_geom *g, const uint8_t *img,
		size_t len, uint64_t now, uint64_t key_max,
		void (*fn)(void *ud, const struct ucp_image_item *it), void *ud, struct ucp_image_counts *counts)
{
	uint64_t i, flags = 0;

	memset(counts, 0, sizeof(*counts));
	if (!ucp_image_size(l, g))
		return;
	for (i = 1; i < g->items; i++) {
		struct ucp_image_item it;
		int rc = read_item(l, g, img, len, i, key_max, &it, &flags);

		if (rc < 0 || (rc > 0 && (flags & l->skip_flags)))
			counts->invalid++;
		else if (rc > 0 && it.expires && it.expires <= now)
			counts->expired++;
		else if (rc > 0) {
			counts->live++;
			fn(ud, &it);
		}
	}
}

int ucp_image_writer_init(struct ucp_image_writer *w, const struct ucp_image_layout *l,
		const struct ucp_image_geom *g, uint64_t hashsize)
{
	uint64_t size = ucp_image_size(l, g);

	memset(w, 0, sizeof(*w));
	if (!size || size > SIZE_MAX || !hashsize || hashsize > UINT32_MAX || g->items > UINT32_MAX)
		return -1;
	w->l = *l;
	w->g = *g;
	w->hashsize = hashsize;
	w->len = (size_t) size;
	w->buf = calloc(1, w->len);
	w->tails = calloc((size_t) hashsize, sizeof(*w->tails));
	w->next_item = 1;
	if (!w->buf || !w->tails) {
		ucp_image_writer_free(w);
		return -1;
	}
	return 0;
}

static uint8_t *item_at(struct ucp_image_writer *w, uint64_t i)
{
	return w->buf + i * (w->l.size + w->g.keysize);
}

int ucp_image_add(struct ucp_image_writer *w, const void *key, size_t klen, const void *val, size_t vlen,
		uint64_t expires, uint32_t hash)
{
	uint64_t i = w->next_item, bucket = hash % w->hashsize, nblocks, block;
	uint8_t *item;

	/* without a bitmap (blocks = items) an item's value is its own block */
	nblocks = w->g.blocks == w->g.items ? 1 : (vlen + w->g.blocksize - 1) / w->g.blocksize;
	block = w->g.blocks == w->g.items ? i : w->next_block;
	if (i >= w->g.items || !klen || klen > w->g.keysize || !vlen ||
	    (w->g.blocks == w->g.items && vlen > w->g.blocksize) || w->g.blocks - block < nblocks) {
		w->skipped++;
		return -1;
	}
	item = item_at(w, i);
	put64(item, w->l.keysize, klen);
	put64(item, w->l.hash, hash);
	put64(item, w->l.valsize, vlen);
	put64(item, w->l.first_block, block);
	put64(item, w->l.expires, expires);
	memcpy(item + w->l.size, key, klen);
	memcpy(w->buf + w->g.items * (w->l.size + w->g.keysize) + block * w->g.blocksize, val, vlen);
	if (w->tails[bucket]) {
		put64(item_at(w, w->tails[bucket]), w->l.next, i);
		put64(item, w->l.prev, w->tails[bucket]);
	}
	w->tails[bucket] = (uint32_t) i;
	if (w->last) {
		put64(item_at(w, w->last), w->l.lru_next, i);
		put64(item, w->l.lru_prev, w->last);
	}
	w->last = i;
	w->next_item++;
	if (w->g.blocks != w->g.items)
		w->next_block += nblocks;
	w->added++;
	return 0;
}

void ucp_image_writer_free(struct ucp_image_writer *w)
{
	free(w->buf);
	free(w->tails);
	w->buf = NULL;
	w->tails = NULL;
}
