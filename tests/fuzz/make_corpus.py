#!/usr/bin/env python3
"""make_corpus.py - (re)write the fuzzer's seed corpus and regression corpus.

  tests/fuzz/corpus/       valid packets of every modifier2 (fuzzing seeds)
  tests/fuzz/regressions/  one malformed packet per parser error class
                           (enum ucp_perr in plugins/ucache/wire/packet.h), named
                           <class>--<what>.bin
  tests/fuzz/images/       stock raw images (sync), one per way image.c
                           refuses an item or an image

Each file is a packet as it arrives on the socket: header (modifier1 111,
pktsize u16 LE, modifier2) + body.  Every regression is a packet the server
must answer by closing the connection without a reply: `make test` replays
them through the parser under ASan (fuzz-regress) and sends them to a live
server (tests/integration/test_server_regressions.py).  A crash found by
`make fuzz` is added here by hand (copy the artifact in, name it by its class).

Run from anywhere: python3 tests/fuzz/make_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def pkt(modifier2, body, pktsize=None):
    n = len(body) if pktsize is None else pktsize
    return struct.pack('<BHB', 111, n, modifier2) + body


def var(k, v):
    k = k.encode() if isinstance(k, str) else k
    v = v.encode() if isinstance(v, str) else v
    return struct.pack('<H', len(k)) + k + struct.pack('<H', len(v)) + v


def vars_(*pairs):
    return b''.join(var(k, v) for k, v in pairs)


def item(b):
    return struct.pack('<H', len(b)) + b


def record(key, value, expires=0):
    return struct.pack('<HQQ', len(key), len(value), expires) + key + value


SEEDS = {
    'get': pkt(0, b'/index.html'),
    'set': pkt(1, item(b'k') + item(b'value')),
    'set-empty-item': pkt(1, item(b'') + item(b'k') + item(b'v') + item(b'extra')),
    'del': pkt(2, b'k'),
    'http-key': pkt(3, vars_(('key', '/page'))),
    'http-get': pkt(4, vars_(('QUERY_STRING', ''), ('get', '/page'))),
    'stream': pkt(5, b'/big'),
    'dump-default': pkt(6, b''),
    'dump-named': pkt(6, b'web'),
    'magic-get': pkt(17, vars_(('cmd', 'get'), ('key', 'k'), ('cache', 'web'))),
    'magic-set': pkt(17, vars_(('cmd', 'set'), ('key', 'k'), ('size', '5'), ('expires', '60'))) + b'value',
    'magic-update': pkt(17, vars_(('cmd', 'update'), ('key', 'k'), ('size', '1'))) + b'x',
    'magic-del': pkt(17, vars_(('cmd', 'del'), ('key', 'k'))),
    'magic-exists': pkt(17, vars_(('cmd', 'exists'), ('key', 'k'))),
    'magic-clear': pkt(17, vars_(('cmd', 'clear'), ('cache', 'web'))),
    'magic-invalidate': pkt(17, vars_(('cmd', 'invalidate'), ('tags', 'user:1,feed'), ('cache', 'web'))),
    'http-key-cache-inm': pkt(3, vars_(('key', '/p?x=1'), ('cache', 'web'), ('HTTP_IF_NONE_MATCH', '"a", W/"b"'))),
    'magic-reply': pkt(17, vars_(('status', 'ok'), ('size', '3'), ('expires', '1700000000'))) + b'abc',
    'dump-records': pkt(7, record(b'k', b'v', 0) + record(b'/p', b'<html>', 1700000000)
                        + struct.pack('<HQ', 0, 2)),
}

REGRESSIONS = {
    'empty--get-without-key': pkt(0, b''),
    'empty--magic-without-vars': pkt(17, b''),
    'truncated--var-name-length-past-end': pkt(17, struct.pack('<H', 10) + b'cmd'),
    'truncated--var-value-length-past-end': pkt(3, struct.pack('<H', 3) + b'key' + struct.pack('<H', 200) + b'/x'),
    'truncated--odd-trailing-byte': pkt(17, vars_(('cmd', 'get'), ('key', 'k')) + b'\x01'),
    'truncated--value-length-missing': pkt(4, struct.pack('<H', 3) + b'get'),
    'varname--zero-length-name': pkt(17, struct.pack('<HH', 0, 3) + b'get' + vars_(('key', 'k'))),
    'number--size-not-decimal': pkt(17, vars_(('cmd', 'set'), ('key', 'k'), ('size', '12x'))) + b'x' * 12,
    'number--expires-overflows-u64': pkt(17, vars_(('cmd', 'set'), ('key', 'k'), ('size', '1'),
                                                   ('expires', '99999999999999999999'))) + b'x',
    'number--size-negative': pkt(17, vars_(('cmd', 'update'), ('key', 'k'), ('size', '-1'))),
    'nokey--http-without-key-var': pkt(3, vars_(('QUERY_STRING', 'a=b'), ('key', ''))),
    'nokey--magic-get-without-key': pkt(17, vars_(('cmd', 'get'), ('cache', 'web'))),
    'keysize--raw-key-65535-bytes': pkt(0, b'k' * 65535),
    'array--set-with-one-item': pkt(1, item(b'lonely')),
    'truncated--set-item-past-end': pkt(1, item(b'k') + struct.pack('<H', 500) + b'short'),
    'command--unknown-cmd': pkt(17, vars_(('cmd', 'flushall'), ('key', 'k'))),
    'command--missing-cmd': pkt(17, vars_(('key', 'k'), ('cache', 'web'))),
    'size--set-without-size': pkt(17, vars_(('cmd', 'set'), ('key', 'k'))),
    'size--update-size-zero': pkt(17, vars_(('cmd', 'update'), ('key', 'k'), ('size', '0'))),
    'tags--invalidate-without-tags': pkt(17, vars_(('cmd', 'invalidate'), ('key', 'k'))),
    'tags--invalidate-empty-tag': pkt(17, vars_(('cmd', 'invalidate'), ('tags', 'a,,b'))),
    'tags--invalidate-trailing-comma': pkt(17, vars_(('cmd', 'invalidate'), ('tags', 'a,'))),
    'modifier2--unknown-9': pkt(9, b'k'),
    'modifier2--dump-reply-as-request': pkt(7, b'k'),
}


# Stock raw images (a dump reply: header(111, n, 7) + vars items, blocksize,
# then the image past pktsize), one per way image.c refuses an item or an
# image; replayed from tests/fuzz/images/ (fuzz_proto.c's fuzz_image).  The
# fuzzer reads the vars' keysize/blocks too (bounded) to walk other
# geometries.  Layout: uWSGI 2.0.21's struct uwsgi_cache_item (11 u64).
def image(items=8, keysize=8, blocksize=16, blocks=None, entries=(), extra_vars=(), cut=0):
    blocks = items if blocks is None else blocks
    stride = 88 + keysize
    img = bytearray(items * stride + blocks * blocksize)
    for i, fields, key in entries:
        f = dict(flags=0, keysize=len(key), hash=0, valsize=1, first_block=i, expires=0)
        f.update(fields)
        struct.pack_into('<11Q', img, i * stride, f['flags'], f['keysize'], f['hash'], f['valsize'],
                         f['first_block'], f['expires'], 0, 0, 0, 0, 0)
        img[i * stride + 88:i * stride + 88 + len(key)] = key[:keysize]
    vs = [('items', str(items)), ('blocksize', str(blocksize)), ('keysize', str(keysize)),
          ('blocks', str(blocks))] + list(extra_vars)
    data = pkt(7, vars_(*vs)) + bytes(img)
    return data[:len(data) - cut]


IMAGES = {
    'image--valid-two-items': image(entries=[(1, {}, b'a'), (2, {'expires': 5}, b'b')]),
    'image--keysize-over-geometry': image(entries=[(1, {'keysize': 9}, b'a')]),
    'image--keysize-absurd': image(entries=[(1, {'keysize': 1 << 63}, b'a')]),
    'image--no-value': image(entries=[(1, {'valsize': 0}, b'a')]),
    'image--block-past-blocks': image(entries=[(1, {'first_block': 8}, b'a')]),
    'image--value-past-region': image(entries=[(1, {'first_block': 7, 'valsize': 17}, b'a')]),
    'image--value-absurd': image(entries=[(1, {'valsize': (1 << 64) - 1}, b'a')]),
    'image--ungettable': image(entries=[(1, {'flags': 1}, b'a')]),
    'image--truncated-in-an-item': image(entries=[(1, {}, b'a'), (2, {}, b'b')], cut=8 * 16 + 6 * 96 + 50),
    'image--truncated-in-the-blocks': image(entries=[(7, {}, b'a')], cut=10),
    'image--geometry-overflows': image(extra_vars=[('items', '18446744073709551615'),
                                                   ('blocksize', '18446744073709551615')]),
    'image--bad-number-var': pkt(7, vars_(('items', '1x'), ('blocksize', '16'))) + b'\0' * 100,
    'image--bitmap-sender': image(blocks=20, entries=[(1, {'first_block': 15, 'valsize': 80}, b'a')]),
}


def write(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name + '.bin'), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    write(os.path.join(HERE, 'corpus'), SEEDS)
    write(os.path.join(HERE, 'regressions'), REGRESSIONS)
    write(os.path.join(HERE, 'images'), IMAGES)
    print('%d seeds, %d regressions, %d images' % (len(SEEDS), len(REGRESSIONS), len(IMAGES)))
