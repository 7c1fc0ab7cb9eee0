/*
 * heap.h - slab allocator for variable-size chunks inside a shared region.
 *
 * Used for value bytes in single-block mode and for keys too long to live
 * inline in their slot.  Not thread-safe: the caller holds the cache's
 * allocator lock.  See heap.c for the layout and the capacity argument.
 */
#ifndef UCACHE_HEAP_H
#define UCACHE_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define UC_HEAP_UNIT 16u         /* chunk sizes are multiples of this */
#define UC_HEAP_MAXCLASS 64
#define UC_HEAP_TABLE 256        /* sizes up to 256 x 16 = 4 KiB find their class in one load */
#define UC_HEAP_NIL 0xffffffffu

/* Lives in shared memory (inside the cache header). */
struct uc_heap_state {
	uint64_t page_size;                  /* bytes per page, multiple of UC_HEAP_UNIT */
	uint64_t max_chunk;                  /* the largest class: page_size, or less in a packed heap */
	uint32_t npages;                     /* pages in the region */
	uint32_t nclass;                     /* size classes in use */
	uint32_t unused;                     /* pages [unused, npages) never handed out */
	uint32_t free_head;                  /* stack of emptied pages */
	uint32_t partial[UC_HEAP_MAXCLASS];  /* per class: pages with a free chunk */
	uint32_t class_size[UC_HEAP_MAXCLASS]; /* chunk bytes per class, ascending */
	uint8_t class_table[UC_HEAP_TABLE];    /* [(size - 1) / 16]: class of size (sizes <= 4 KiB) */
	uint64_t pages_used;
	uint64_t chunk_bytes;                /* bytes of chunks handed out */
};

/* One per page, in shared memory, in an array apart from the data: 16
 * bytes, so that the descriptors of a cache's items-many pages stay inside
 * the address-space budget of the stock cache (layout.c).  Chunk counts are
 * 16-bit: build_classes() raises the smallest class of a page larger than
 * 1 MiB so that no page holds more than UC_HEAP_PAGE_CHUNKS chunks. */
#define UC_HEAP_PAGE_CHUNKS 65535u
struct uc_heap_page {
	uint32_t next, prev;  /* partial list of its class, or free-page stack */
	uint16_t used;        /* live chunks */
	uint16_t carved;      /* chunks ever handed out (bump pointer) */
	uint16_t free_head;   /* 1 + index of the first freed chunk; 0 = none */
	uint8_t cls;          /* class + 1; 0 = page not in use */
	uint8_t draining;     /* compaction is moving its chunks out: off the partial list */
};
_Static_assert(sizeof(struct uc_heap_page) == 16, "heap page descriptor must stay 16 bytes");

/* Process-local view: pointers into this process's mapping. */
struct uc_heap {
	struct uc_heap_state *st;
	struct uc_heap_page *pages;
	uint8_t *data;
};

/* Format an empty heap of npages pages of page_size bytes (rounded up to
 * UC_HEAP_UNIT).  Touches only the state struct. */
void uc_heap_format(struct uc_heap_state *st, uint64_t page_size, uint32_t npages);

/* A packed heap: pages of page_size holding chunks of at most max_chunk
 * bytes (a multiple of UC_HEAP_UNIT, at most page_size), so that items
 * much smaller than the largest share pages whatever the largest is. */
void uc_heap_format_packed(struct uc_heap_state *st, uint64_t page_size, uint64_t max_chunk, uint32_t npages);

/* Pages a packed heap needs so that a chunk of max_chunk bytes can always
 * be had, after uc_heap_drain_begin's compaction at worst, while the
 * chunks in use hold at most items x max_chunk bytes (heap.c). */
uint64_t uc_heap_packed_pages(uint64_t page_size, uint64_t max_chunk, uint64_t items);

/* No page is free (racy: only decides whether compaction may help). */
int uc_heap_exhausted(const struct uc_heap *h);

/* Compaction (caller holds the allocator and every user of the heap):
 * choose up to max pages of the class with the most free chunks whose
 * chunks fit in that class's other pages, take them off the allocation
 * lists and write their numbers to pages.  Returns how many (0: nothing
 * to gain).  The caller moves each live chunk of a draining page
 * (uc_heap_draining) with uc_heap_alloc + uc_heap_free, then calls
 * uc_heap_drain_end for each page. */
uint32_t uc_heap_drain_begin(struct uc_heap *h, uint32_t *pages, uint32_t max);
int uc_heap_draining(const struct uc_heap *h, uint64_t off);
void uc_heap_drain_end(struct uc_heap *h, uint32_t page);

/* Chunk size that holds size bytes (0 if size > page_size). */
uint32_t uc_heap_chunk_size(const struct uc_heap_state *st, uint64_t size);

/* Allocate a chunk for size bytes; returns its byte offset in data, or -1
 * when no page can serve it. */
int64_t uc_heap_alloc(struct uc_heap *h, uint64_t size);

/* Free the chunk at off that was allocated for size bytes. */
void uc_heap_free(struct uc_heap *h, uint64_t off, uint64_t size);

/* Rebuild: uc_heap_rebuild_prepare() allocates all the scratch a rebuild
 * needs and changes nothing (so a failed allocation leaves the heap as it
 * was); uc_heap_rebuild_reset() then forgets every allocation (allocates
 * nothing); each live chunk is claimed with uc_heap_claim() (returns -1 if
 * the claim conflicts with an earlier one or is malformed: the caller drops
 * that item), then uc_heap_rebuild_end() rebuilds free lists.
 * uc_heap_rebuild_begin() = prepare + reset.  rb is process-local scratch. */
struct uc_heap_rebuild {
	int verify;         /* claim without modifying page descriptors */
	uint64_t *marks;    /* one bit per UC_HEAP_UNIT of the pages below npages: chunk starts claimed */
	uint32_t npages;    /* pages that may hold claims (old unused mark) */
};
int uc_heap_rebuild_prepare(struct uc_heap *h, struct uc_heap_rebuild *rb);
void uc_heap_rebuild_reset(struct uc_heap *h, struct uc_heap_rebuild *rb);
int uc_heap_rebuild_begin(struct uc_heap *h, struct uc_heap_rebuild *rb);
int uc_heap_claim(struct uc_heap *h, struct uc_heap_rebuild *rb, uint64_t off, uint64_t size);
/* Undo a successful uc_heap_claim (the item is dropped after all). */
void uc_heap_unclaim(struct uc_heap *h, struct uc_heap_rebuild *rb, uint64_t off, uint64_t size);
void uc_heap_rebuild_end(struct uc_heap *h, struct uc_heap_rebuild *rb);

/* Verify page descriptors and lists against the chunks claimed in rb (built
 * as for a rebuild, without modifying the heap).  0 or -1 with err filled. */
int uc_heap_verify(struct uc_heap *h, struct uc_heap_rebuild *rb, char *err, size_t errlen);
void uc_heap_rebuild_free(struct uc_heap_rebuild *rb);

#endif
