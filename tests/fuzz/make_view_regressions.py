#!/usr/bin/env python3
"""make_view_regressions.py - (re)write tests/fuzz/view-regressions/: store
images damaged the ways a read-only view must survive (fuzz_view.c replays
them under ASan+UBSan in `make fuzz-regress`), each derived from a seed of
tests/fuzz/view-corpus/ (make fuzz-view-corpus) and named <what>.store:

  bucket-heads-out-of-range   every bucket's head slot id is 0xffffffff
  chain-loop                  every slot's next is itself (the walk is bounded)
  slot-storage-out-of-range   every slot's value offset and length point past the region
  stripes-odd                 every stripe's seq odd: a writer died inside (BUSY)
  tag-index-out-of-range      a tagged entry's generation index is past the table
  tag-count-huge              a tagged entry claims 1000 tags
  bitmap-key-out-of-range     bitmap: every slot's key heap offset is past the heap
  truncated-region            a whole header, half the region
  header-offset-damaged       off_slots moved by one line

A crash found by `make fuzz-view` is added here by hand (copy the artifact
in, name it by what it is).  Run from anywhere: python3 tests/fuzz/make_view_regressions.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, 'view-corpus')
OUT = os.path.join(HERE, 'view-regressions')

# struct uc_hdr (core/layout.h): magic, version, hdr_size, then u64 fields
FIELDS = ('items blocks blocksize keysize nbuckets nstripes hash bitmap csum_values small vpage '
          'off_stripes off_buckets off_slots off_kofs off_atime off_links off_kpages '
          'off_vpages off_bitmap off_kdata off_vdata size_kdata size_vdata off_tags size_tags total').split()
SLOT = 24          # struct uc_slot (layout 7): next, keylen, meta, use, val, vallen, expires, csum
BUCKET = 4         # struct uc_bucket: the head slot id
STRIPE = 128       # struct uc_stripe: two cache lines
SEQ_AT = 40        # offsetof(struct uc_stripe, seq): after the 40-byte pthread_mutex_t
TAG_MAGIC = b'\0UCTAGS\1'


LAYOUT = 7         # UC_LAYOUT_VERSION these offsets describe


def header(img):
    version = struct.unpack_from('<I', img, 8)[0]
    if version != LAYOUT:
        raise SystemExit('seed has layout %d, this script knows %d: update FIELDS/SLOT and LAYOUT '
                         'from core/layout.h, then run make fuzz-view-corpus' % (version, LAYOUT))
    vals = struct.unpack_from('<%dQ' % len(FIELDS), img, 16)
    return dict(zip(FIELDS, vals))


def slots(img, h):
    return [h['off_slots'] + i * SLOT for i in range(1, h['items'])]


def bucket_heads(img, h):
    for b in range(h['nbuckets']):
        struct.pack_into('<I', img, h['off_buckets'] + BUCKET * b, 0xffffffff)


def chain_loop(img, h):
    for i, at in enumerate(slots(img, h), 1):
        struct.pack_into('<I', img, at, i)


def storage_out(img, h):
    for at in slots(img, h):
        struct.pack_into('<I', img, at + 12, 0xfffffff0)   # vallen
        struct.pack_into('<I', img, at + 8, 0xfffffff0)    # val


def stripes_odd(img, h):
    for s in range(h['nstripes']):
        at = h['off_stripes'] + s * STRIPE + SEQ_AT
        struct.pack_into('<I', img, at, struct.unpack_from('<I', img, at)[0] | 1)


def envelopes(img):
    at = img.find(TAG_MAGIC)
    while at >= 0:
        yield at
        at = img.find(TAG_MAGIC, at + 1)


def tag_index(img, h):
    for at in envelopes(img):
        struct.pack_into('<I', img, at + 32, 0xffffffff)


def tag_count(img, h):
    for at in envelopes(img):
        struct.pack_into('<II', img, at + 24, 1000, 32 + 4 * 1000)


def bitmap_key(img, h):
    for i in range(h['items']):
        struct.pack_into('<I', img, h['off_kofs'] + 4 * i, 0xfffffff0)


def truncated(img, h):
    del img[4096 + (len(img) - 4096) // 2:]


def offset_damaged(img, h):
    struct.pack_into('<Q', img, 16 + 8 * FIELDS.index('off_slots'), h['off_slots'] + 64)


CASES = [
    ('bucket-heads-out-of-range', 'single.store', bucket_heads),
    ('chain-loop', 'single.store', chain_loop),
    ('slot-storage-out-of-range', 'single.store', storage_out),
    ('stripes-odd', 'single-tags.store', stripes_odd),
    ('tag-index-out-of-range', 'single-tags.store', tag_index),
    ('tag-count-huge', 'bitmap-tags.store', tag_count),
    ('bitmap-key-out-of-range', 'bitmap.store', bitmap_key),
    ('truncated-region', 'single.store', truncated),
    ('header-offset-damaged', 'bitmap.store', offset_damaged),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, seed, damage in CASES:
        with open(os.path.join(SEEDS, seed), 'rb') as f:
            img = bytearray(f.read())
        damage(img, header(img))
        with open(os.path.join(OUT, name + '.store'), 'wb') as f:
            f.write(img)
        print(os.path.join(OUT, name + '.store'))


if __name__ == '__main__':
    main()
