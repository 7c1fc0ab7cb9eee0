/*
 * image.h - stock uWSGI's cache image: what a stock node sends to a
 * --cache-sync / sync= client after the dump vars (items, blocksize), a
 * raw copy of its cache memory, and what a stock client reads straight
 * into its own memory.  No uWSGI here (unit-tested and fuzzed alone): the
 * layout of struct uwsgi_cache_item comes from the caller (peers/sync.c's ucp_stock_layout() takes
 * it from the running binary's uwsgi.h with offsetof).
 *
 *   image = item[items] block[blocks]
 *   item  = struct uwsgi_cache_item (u64 fields: flags, keysize, hash,
 *           valsize, first_block, expires, hits, prev, next, lru_prev,
 *           lru_next) + key[keysize of the geometry]
 *   item 0 is never used; an item with keysize 0 is free.  The value of an
 *   item is valsize bytes at block first_block (first_block = the item's
 *   index without a bitmap).  Fields are in the sender's byte order.
 *
 * Reading trusts nothing: every field is bounds-checked against the image
 * actually received and the geometry; an item that fails is skipped and
 * counted, never followed.  Writing lays out what a stock client's
 * uwsgi_cache_fix() needs to rebuild its hash table: chains by
 * hash % hashsize through prev/next (heads have prev 0), one LRU list.
 */
#ifndef UCP_IMAGE_H
#define UCP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* struct uwsgi_cache_item: its size (key excluded) and each u64 field's
 * offset. */
struct ucp_image_layout {
	size_t size;
	size_t flags, keysize, hash, valsize, first_block, expires, hits, prev, next, lru_prev, lru_next;
	uint64_t skip_flags;       /* items with any of these flags are not imported (UNGETTABLE) */
};

struct ucp_image_geom {
	uint64_t items, keysize, blocksize, blocks;
};

/* Bytes of an image of geometry g; 0 if it overflows 64 bits. */
uint64_t ucp_image_size(const struct ucp_image_layout *l, const struct ucp_image_geom *g);

/* The sender's geometry from its vars (items, blocksize) and the image's
 * length: keysize and blocks are not sent, so try the receiver's own
 * (own), then the receiver's keysize with the blocks the length implies
 * (a bitmap sender), then blocks = items (no bitmap) with the keysize the
 * length implies.  A length two geometries explain is read as the first
 * (keysize is the option a fleet changes least); either way each item is
 * validated on its own.  0 and *out filled, or -1 if none explains len. */
int ucp_image_guess(const struct ucp_image_layout *l, uint64_t items, uint64_t blocksize, uint64_t len,
		const struct ucp_image_geom *own, struct ucp_image_geom *out);

struct ucp_image_item {
	const uint8_t *key, *value;
	uint64_t key_len, value_len, expires;
};

struct ucp_image_counts {
	uint64_t live;      /* items handed to the callback */
	uint64_t expired;   /* valid but expired at now */
	uint64_t invalid;   /* a field out of bounds, or past the bytes received */
};

/* Call fn for every valid, unexpired item of the image (len bytes, maybe
 * fewer than the geometry: items past the end are invalid).  Keys over
 * key_max are invalid.  fn's return value is ignored.  Fills counts. */
void ucp_image_walk(const struct ucp_image_layout *l, const struct ucp_image_geom *g, const uint8_t *img,
		size_t len, uint64_t now, uint64_t key_max,
		void (*fn)(void *ud, const struct ucp_image_item *it), void *ud, struct ucp_image_counts *counts);

/* Building an image for a stock client. */
struct ucp_image_writer {
	struct ucp_image_layout l;
	struct ucp_image_geom g;
	uint64_t hashsize;
	uint8_t *buf;        /* ucp_image_size() bytes, zeroed */
	size_t len;
	uint32_t *tails;     /* per bucket: the last item chained, 0 = none */
	uint64_t next_item, next_block, last;
	uint64_t added, skipped;
};

/* 0, or -1 if the geometry is absurd or memory is short. */
int ucp_image_writer_init(struct ucp_image_writer *w, const struct ucp_image_layout *l,
		const struct ucp_image_geom *g, uint64_t hashsize);
/* Add one item (hash = the stock client's hash of the key).  0, or -1 if it
 * does not fit (no item or blocks left, key or value too big): counted. */
int ucp_image_add(struct ucp_image_writer *w, const void *key, size_t klen, const void *val, size_t vlen,
		uint64_t expires, uint32_t hash);
void ucp_image_writer_free(struct ucp_image_writer *w);

#endif
