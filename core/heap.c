/*
 * heap.c - slab allocator inside a shared region (values in single-block
 * mode, and keys longer than a slot's inline room).
 *
 * Layout (all offsets, no pointers, so the region can be a file):
 *
 *   data:  | page 0 | page 1 | ... | page npages-1 |     page_size bytes each
 *   pages: | desc 0 | desc 1 | ... |                      struct uc_heap_page
 *
 * A page serves one size class at a time; a chunk is found through the
 * page's free list (linked through the first 2 bytes of each freed chunk) or
 * carved from its bump pointer, so a fresh page is touched front to back and
 * memory is committed only as it is used.  An emptied page goes back to a
 * free-page stack and can serve any class.
 *
 * Capacity argument (why stock capacity rules still hold): the region has as
 * many pages as the cache has slots, each page holds a whole largest item
 * (keysize + blocksize: layout.c keeps key and value in one chunk), and
 * every page in use holds at least one live chunk.  So while a slot is
 * free, at most items-1 pages are in use and one more page can always be
 * had: an item that fits stock's single-block mode always fits here, while
 * a 12-byte key with a 100-byte value costs a 112-byte chunk.
 *
 * A packed heap (uc_heap_format_packed: layout.c uses one when the largest
 * item is at most 1/4 of a 4 KiB page, e.g. keysize 64 + blocksize 128)
 * has fewer, larger pages, so that items much smaller than the largest
 * share them: a page per 192-byte largest item made every 112-byte item
 * cost 192 + a 16-byte descriptor.  Its capacity argument holds with
 * compaction (uc_heap_drain_begin, compact.c): see uc_heap_packed_pages.
 *
 * Classes: multiples of 16 up to 128 bytes, then ~1/8 geometric steps, the
 * last class being the whole page (a packed heap's: the largest item); at
 * most 1/8 of a chunk is slack.
 *
 * Locking: none here; the caller holds the cache's allocator lock.  Readers
 * may read a chunk while it is freed (a seqlock tells them to retry), so a
 * free only ever writes the chunk's first 2 bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "util.h"

static void build_classes(struct uc_heap_state *st)
{
	uint32_t i;
	/* no more than UC_HEAP_PAGE_CHUNKS chunks per page (16-bit counts) */
	uint64_t size = uc_align_up(uc_div_ceil(st->page_size, UC_HEAP_PAGE_CHUNKS), UC_HEAP_UNIT);
	uint32_t n = 0;

	while (size < st->max_chunk && n < UC_HEAP_MAXCLASS - 1) {
		st->class_size[n++] = (uint32_t)size;
		if (size < 128)
			size += UC_HEAP_UNIT;
		else
			size = uc_align_up(size + size / 8, UC_HEAP_UNIT);
		/* a class holding a single chunk per page might as well be the
		 * page (a packed heap's pages hold several of its largest) */
		if (st->max_chunk == st->page_size && size > st->page_size / 2)
			break;
	}
	st->class_size[n++] = (uint32_t)st->max_chunk;
	st->nclass = n;
	/* the binary search below costs ~70 instructions; two lookups per
	 * write were 15% of a full purge_lru insert (callgrind) */
	for (i = 0, n = 0; i < UC_HEAP_TABLE; i++) {
		while (n < st->nclass - 1 && st->class_size[n] < (i + 1) * UC_HEAP_UNIT)
			n++;
		st->class_table[i] = (uint8_t)n;
	}
}

void uc_heap_format_packed(struct uc_heap_state *st, uint64_t page_size, uint64_t max_chunk, uint32_t npages)
{
	uint32_t i;

	memset(st, 0, sizeof(*st));
	st->page_size = uc_align_up(page_size ? page_size : UC_HEAP_UNIT, UC_HEAP_UNIT);
	st->max_chunk = max_chunk && max_chunk < st->page_size ? uc_align_up(max_chunk, UC_HEAP_UNIT) : st->page_size;
	st->npages = npages;
	st->free_head = UC_HEAP_NIL;
	build_classes(st);
	for (i = 0; i < UC_HEAP_MAXCLASS; i++)
		st->partial[i] = UC_HEAP_NIL;
}

void uc_heap_format(struct uc_heap_state *st, uint64_t page_size, uint32_t npages)
{
	uc_heap_format_packed(st, page_size, page_size, npages);
}

/* Why this many pages: a write that finds no free page and no free chunk
 * of its class holds at most items x max_chunk bytes in chunks (one slot
 * at least is its own, or an update holds two chunks of items - 1 slots).
 * Pages in use hold chunks worth at least page_size - tail bytes each
 * (tail: the most any class leaves unused at a page's end), so the free
 * chunks are worth at least nclass x page_size: more than a page's worth
 * of chunks of some class, and compaction can empty one of its pages
 * into the others.  A packed heap maps ~nclass x 4 KiB and the largest
 * tail more than items x max_chunk, far less than a page per item. */
uint64_t uc_heap_packed_pages(uint64_t page_size, uint64_t max_chunk, uint64_t items)
{
	struct uc_heap_state st;
	uint64_t tail = 0;
	uint32_t c;

	uc_heap_format_packed(&st, page_size, max_chunk, 0);
	for (c = 0; c < st.nclass; c++)
		if (st.page_size % st.class_size[c] > tail)
			tail = st.page_size % st.class_size[c];
	return uc_div_ceil(items * st.max_chunk + st.nclass * st.page_size, st.page_size - tail);
}

int uc_heap_exhausted(const struct uc_heap *h)
{
	return h->st->free_head == UC_HEAP_NIL && h->st->unused >= h->st->npages;
}

static int class_of(const struct uc_heap_state *st, uint64_t size)
{
	uint32_t lo = 0, hi = st->nclass;

	if (size > st->max_chunk)
		return -1;
	if (size <= UC_HEAP_TABLE * UC_HEAP_UNIT) {
		lo = st->class_table[(size - 1) / UC_HEAP_UNIT];
		if (st->class_size[lo] >= size)
			return (int)lo;
		return -1; /* past the last (page-sized) class */
	}
	while (lo < hi) { /* first class whose size >= size */
		uint32_t mid = (lo + hi) / 2;
		if (st->class_size[mid] < size)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int)lo;
}

uint32_t uc_heap_chunk_size(const struct uc_heap_state *st, uint64_t size)
{
	int cls = class_of(st, size ? size : 1);

	return cls < 0 ? 0 : st->class_size[cls];
}

static uint32_t per_page(const struct uc_heap_state *st, uint32_t cls)
{
	return (uint32_t)(st->page_size / st->class_size[cls]);
}

static void list_push(struct uc_heap *h, uint32_t *head, uint32_t p)
{
	h->pages[p].prev = UC_HEAP_NIL;
	h->pages[p].next = *head;
	if (*head != UC_HEAP_NIL)
		h->pages[*head].prev = p;
	*head = p;
}

static void list_remove(struct uc_heap *h, uint32_t *head, uint32_t p)
{
	struct uc_heap_page *pg = &h->pages[p];

	if (pg->prev != UC_HEAP_NIL)
		h->pages[pg->prev].next = pg->next;
	else
		*head = pg->next;
	if (pg->next != UC_HEAP_NIL)
		h->pages[pg->next].prev = pg->prev;
	pg->next = pg->prev = UC_HEAP_NIL;
}

static uint32_t page_get(struct uc_heap *h, uint32_t cls)
{
	struct uc_heap_state *st = h->st;
	uint32_t p;

	if (st->free_head != UC_HEAP_NIL) {
		p = st->free_head;
		st->free_head = h->pages[p].next;
	} else if (st->unused < st->npages) {
		p = st->unused++;
	} else {
		return UC_HEAP_NIL;
	}
	h->pages[p] = (struct uc_heap_page){ .cls = (uint8_t)(cls + 1), .next = UC_HEAP_NIL, .prev = UC_HEAP_NIL };
	st->pages_used++;
	list_push(h, &st->partial[cls], p);
	return p;
}

int64_t uc_heap_alloc(struct uc_heap *h, uint64_t size)
{
	struct uc_heap_state *st = h->st;
	int cls = class_of(st, size ? size : 1);
	uint32_t p, idx, csize;
	struct uc_heap_page *pg;
	uint8_t *chunk;

	if (cls < 0)
		return -1;
	p = st->partial[cls];
	if (p == UC_HEAP_NIL && (p = page_get(h, (uint32_t)cls)) == UC_HEAP_NIL)
		return -1;
	pg = &h->pages[p];
	csize = st->class_size[cls];
	if (pg->free_head) {
		idx = pg->free_head - 1;
		chunk = h->data + p * st->page_size + (uint64_t)idx * csize;
		memcpy(&pg->free_head, chunk, sizeof(pg->free_head));
	} else {
		idx = pg->carved++;
	}
	if (++pg->used == per_page(st, (uint32_t)cls))
		list_remove(h, &st->partial[cls], p);
	st->chunk_bytes += csize;
	return (int64_t)(p * st->page_size + (uint64_t)idx * csize);
}

void uc_heap_free(struct uc_heap *h, uint64_t off, uint64_t size)
{
	struct uc_heap_state *st = h->st;
	uint32_t p = (uint32_t)(off / st->page_size);
	uint32_t cls = h->pages[p].cls - 1u;
	struct uc_heap_page *pg = &h->pages[p];
	uint32_t idx = (uint32_t)((off % st->page_size) / st->class_size[cls]);

	(void)size;
	memcpy(h->data + off, &pg->free_head, sizeof(pg->free_head));
	pg->free_head = (uint16_t)(idx + 1);
	if (pg->used-- == per_page(st, cls) && !pg->draining)
		list_push(h, &st->partial[cls], p);
	st->chunk_bytes -= st->class_size[cls];
	if (pg->used == 0) {
		if (!pg->draining)
			list_remove(h, &st->partial[cls], p);
		pg->draining = 0;
		pg->cls = 0;
		pg->next = st->free_head;
		st->free_head = p;
		st->pages_used--;
	}
}

/* ---------------------------------------------------------- compaction */

/* The class whose pages have the most free chunks, counted in pages'
 * worth of chunks (at least one, or -1).  used[] and pages[] are scratch
 * of UC_HEAP_MAXCLASS entries. */
static int roomiest_class(const struct uc_heap *h, uint64_t *used, uint64_t *pages)
{
	const struct uc_heap_state *st = h->st;
	uint64_t best = 0;
	uint32_t p, c;
	int which = -1;

	memset(used, 0, UC_HEAP_MAXCLASS * sizeof(*used));
	memset(pages, 0, UC_HEAP_MAXCLASS * sizeof(*pages));
	for (p = 0; p < st->unused && p < st->npages; p++) {
		if (h->pages[p].cls && h->pages[p].cls <= st->nclass) {
			used[h->pages[p].cls - 1] += h->pages[p].used;
			pages[h->pages[p].cls - 1]++;
		}
	}
	for (c = 0; c < st->nclass; c++) {
		uint64_t spare = (pages[c] * per_page(st, c) - used[c]) / per_page(st, c);
		if (spare > best) {
			best = spare;
			which = (int)c;
		}
	}
	return which;
}

/* The page of class cls with the fewest live chunks, not yet chosen. */
static uint32_t sparsest_page(const struct uc_heap *h, uint32_t cls)
{
	uint32_t p, best = UC_HEAP_NIL;

	for (p = 0; p < h->st->unused && p < h->st->npages; p++) {
		const struct uc_heap_page *pg = &h->pages[p];
		if (pg->cls == cls + 1 && !pg->draining && (best == UC_HEAP_NIL || pg->used < h->pages[best].used))
			best = p;
	}
	return best;
}

uint32_t uc_heap_drain_begin(struct uc_heap *h, uint32_t *pages, uint32_t max)
{
	struct uc_heap_state *st = h->st;
	uint64_t used[UC_HEAP_MAXCLASS], npg[UC_HEAP_MAXCLASS], room, moving = 0;
	int cls = roomiest_class(h, used, npg);
	uint32_t n = 0, p;

	if (cls < 0)
		return 0;
	/* free chunks outside the chosen pages must take every chunk moved */
	room = npg[cls] * per_page(st, (uint32_t)cls) - used[cls];
	while (n < max && (p = sparsest_page(h, (uint32_t)cls)) != UC_HEAP_NIL) {
		struct uc_heap_page *pg = &h->pages[p];
		uint64_t holes = per_page(st, (uint32_t)cls) - pg->used;
		if (moving + pg->used > room - holes)
			break;
		moving += pg->used;
		room -= holes;
		if (pg->used < per_page(st, (uint32_t)cls))
			list_remove(h, &st->partial[cls], p);
		pg->draining = 1;
		pages[n++] = p;
	}
	return n;
}

int uc_heap_draining(const struct uc_heap *h, uint64_t off)
{
	uint64_t p = off / h->st->page_size;

	return p < h->st->npages && h->pages[p].draining;
}

void uc_heap_drain_end(struct uc_heap *h, uint32_t p)
{
	struct uc_heap_page *pg = &h->pages[p];

	if (!pg->draining)
		return; /* emptied: uc_heap_free gave it back */
	pg->draining = 0;
	if (pg->used < per_page(h->st, pg->cls - 1u))
		list_push(h, &h->st->partial[pg->cls - 1], p);
}

/* ------------------------------------------------------------- rebuild */

/* Bit of the chunk starting at byte off (marks cover pages below npages). */
static uint64_t unit_of(uint64_t off)
{
	return off / UC_HEAP_UNIT;
}

int uc_heap_rebuild_prepare(struct uc_heap *h, struct uc_heap_rebuild *rb)
{
	struct uc_heap_state *st = h->st;
	uint64_t units;

	rb->npages = st->unused <= st->npages ? st->unused : st->npages;
	units = (uint64_t)rb->npages * (st->page_size / UC_HEAP_UNIT);
	/* one allocation, sized now: 1 bit per 16 bytes (1.5 MiB for a
	 * 100k x 2 KiB heap), so nothing is allocated once claims begin */
	rb->marks = uc_calloc(uc_div_ceil(units, 64) + 1, sizeof(uint64_t));
	return rb->marks ? 0 : -1;
}

void uc_heap_rebuild_reset(struct uc_heap *h, struct uc_heap_rebuild *rb)
{
	struct uc_heap_state *st = h->st;
	uint32_t i;

	if (rb->verify)
		return;
	for (i = 0; i < rb->npages; i++)
		h->pages[i] = (struct uc_heap_page){ .next = UC_HEAP_NIL, .prev = UC_HEAP_NIL };
	st->free_head = UC_HEAP_NIL;
	for (i = 0; i < UC_HEAP_MAXCLASS; i++)
		st->partial[i] = UC_HEAP_NIL;
	st->pages_used = st->chunk_bytes = 0;
}

int uc_heap_rebuild_begin(struct uc_heap *h, struct uc_heap_rebuild *rb)
{
	if (uc_heap_rebuild_prepare(h, rb))
		return -1;
	uc_heap_rebuild_reset(h, rb);
	return 0;
}

static int marked(const struct uc_heap_rebuild *rb, uint64_t unit)
{
	return (rb->marks[unit / 64] >> (unit % 64)) & 1;
}

int uc_heap_claim(struct uc_heap *h, struct uc_heap_rebuild *rb, uint64_t off, uint64_t size)
{
	struct uc_heap_state *st = h->st;
	int cls = class_of(st, size ? size : 1);
	uint64_t p = off / st->page_size, within = off % st->page_size, u = unit_of(off);

	if (cls < 0 || p >= rb->npages || within % st->class_size[cls] || within % UC_HEAP_UNIT)
		return -1;
	if (h->pages[p].cls == 0 && !rb->verify)
		h->pages[p].cls = (uint8_t)(cls + 1);
	if (h->pages[p].cls != (uint32_t)cls + 1 || marked(rb, u))
		return -1;
	rb->marks[u / 64] |= 1ull << (u % 64);
	return 0;
}

void uc_heap_unclaim(struct uc_heap *h, struct uc_heap_rebuild *rb, uint64_t off, uint64_t size)
{
	uint64_t u = unit_of(off);

	(void)size;
	if (off / h->st->page_size < rb->npages)
		rb->marks[u / 64] &= ~(1ull << (u % 64));
}

/* Is chunk idx of page p (class cls) claimed? */
static int chunk_marked(const struct uc_heap *h, const struct uc_heap_rebuild *rb, uint32_t p, uint32_t cls,
			uint32_t idx)
{
	return marked(rb, unit_of((uint64_t)p * h->st->page_size + (uint64_t)idx * h->st->class_size[cls]));
}

/* Live chunks of page p (class cls, n chunks) per rb, and the highest live index + 1. */
static uint32_t count_marks(const struct uc_heap *h, const struct uc_heap_rebuild *rb, uint32_t p, uint32_t cls,
			    uint32_t n, uint32_t *top)
{
	uint32_t i, used = 0;

	*top = 0;
	for (i = 0; i < n; i++) {
		if (chunk_marked(h, rb, p, cls, i)) {
			used++;
			*top = i + 1;
		}
	}
	return used;
}

static void rebuild_page(struct uc_heap *h, struct uc_heap_rebuild *rb, uint32_t p)
{
	struct uc_heap_state *st = h->st;
	struct uc_heap_page *pg = &h->pages[p];
	uint32_t cls = pg->cls - 1u, n = per_page(st, cls), i, top;
	uint16_t head = 0;

	pg->used = (uint16_t)count_marks(h, rb, p, cls, n, &top);
	pg->carved = (uint16_t)top;
	for (i = top; i-- > 0;) {
		if (chunk_marked(h, rb, p, cls, i))
			continue;
		memcpy(h->data + p * st->page_size + (uint64_t)i * st->class_size[cls], &head, sizeof(head));
		head = (uint16_t)(i + 1);
	}
	pg->free_head = head;
	st->pages_used++;
	st->chunk_bytes += (uint64_t)pg->used * st->class_size[cls];
	if (pg->used < n)
		list_push(h, &st->partial[cls], p);
}

void uc_heap_rebuild_end(struct uc_heap *h, struct uc_heap_rebuild *rb)
{
	struct uc_heap_state *st = h->st;
	uint32_t p;

	for (p = rb->npages; p-- > 0;) {
		uint32_t top, cls = h->pages[p].cls;
		if (cls && cls <= st->nclass && count_marks(h, rb, p, cls - 1, per_page(st, cls - 1), &top)) {
			rebuild_page(h, rb, p);
		} else {
			h->pages[p].cls = 0;
			h->pages[p].next = st->free_head;
			st->free_head = p;
		}
	}
	st->unused = rb->npages;
	uc_heap_rebuild_free(rb);
}

void uc_heap_rebuild_free(struct uc_heap_rebuild *rb)
{
	free(rb->marks);
	rb->marks = NULL;
}

/* ------------------------------------------------------------- verify */

static int verify_page(struct uc_heap *h, struct uc_heap_rebuild *rb, uint32_t p, char *err, size_t errlen)
{
	struct uc_heap_state *st = h->st;
	struct uc_heap_page *pg = &h->pages[p];
	uint32_t cls = pg->cls - 1u, n, top, used, fi, steps = 0;
	uint16_t next;

	if (cls >= st->nclass) {
		uc_err(err, errlen, "heap page %u has bad class %u", p, pg->cls);
		return -1;
	}
	n = per_page(st, cls);
	used = count_marks(h, rb, p, cls, n, &top);
	if (pg->used != used || pg->carved < top || pg->carved > n) {
		uc_err(err, errlen, "heap page %u: used %u carved %u, but %u live chunks up to %u", p, pg->used,
		       pg->carved, used, top);
		return -1;
	}
	for (fi = pg->free_head; fi; steps++) {
		if (fi > pg->carved || chunk_marked(h, rb, p, cls, fi - 1) || steps > n) {
			uc_err(err, errlen, "heap page %u: bad free list entry %u", p, fi);
			return -1;
		}
		memcpy(&next, h->data + p * st->page_size + (uint64_t)(fi - 1) * st->class_size[cls], sizeof(next));
		fi = next;
	}
	if (steps != (uint32_t)pg->carved - pg->used) {
		uc_err(err, errlen, "heap page %u: %u free chunks listed, %u expected", p, steps, (uint32_t)pg->carved - pg->used);
		return -1;
	}
	return 0;
}

static uint32_t list_len(struct uc_heap *h, uint32_t head, uint32_t limit)
{
	uint32_t n = 0;

	for (; head != UC_HEAP_NIL && n <= limit; head = h->pages[head].next)
		n++;
	return n;
}

int uc_heap_verify(struct uc_heap *h, struct uc_heap_rebuild *rb, char *err, size_t errlen)
{
	struct uc_heap_state *st = h->st;
	uint32_t p, free_pages = 0, partial = 0, c;

	for (p = 0; p < rb->npages; p++) {
		if (!h->pages[p].cls) {
			free_pages++;
			continue;
		}
		if (verify_page(h, rb, p, err, errlen))
			return -1;
		if (h->pages[p].used < per_page(st, h->pages[p].cls - 1))
			partial++;
	}
	if (list_len(h, st->free_head, st->npages) != free_pages) {
		uc_err(err, errlen, "heap: free-page stack holds %u pages, %u pages are free",
		       list_len(h, st->free_head, st->npages), free_pages);
		return -1;
	}
	for (c = 0; c < st->nclass; c++)
		partial -= list_len(h, st->partial[c], st->npages);
	if (partial) {
		uc_err(err, errlen, "heap: partial lists disagree with page usage");
		return -1;
	}
	return 0;
}
