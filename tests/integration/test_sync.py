"""Start-up sync (sync= of --cache2, --cache-sync): real nodes on loopback,
stock and ucache on either side, each checking every item's value and
absolute expiry:

  - a stock node (plain uwsgi --plugin python3,cache) syncing from ucache
    gets ucache's items (ucache serves stock's raw image; its Python API
    finds every key, so its rebuilt hash table chains are right);
  - ucache syncing from stock reads stock's image, and from ucache its own
    dump; a node of another geometry is imported as far as it fits (stock
    would exit: "invalid cache size");
  - nodes are tried in order; when none answers uwsgi exits 1 with a line
    naming them;
  - a fake node (a Python socket server) sending garbage, a truncated dump
    or an image with lying offsets is refused or partly imported, never
    crashes the node.
"""
import os
import random
import socket
import struct
import threading
import time
import unittest

from cachewire import (DUMP_END, DUMP_RECORD, IMAGE_ITEM, dump_request, exchange, packet,
                       parse_dump, parse_image)
from harness import (STOCK, Uwsgi, app, free_port, poll, run_to_exit, stats_json, stock_plugin,
                     uwsgi_vars)

GEOMETRY = 'name=c,items=100,blocksize=256'


def items_for(seed, n=40):
    """n keys with binary values (1..256 bytes) and a mix of expiries."""
    rng = random.Random(seed)
    out = {}
    for i in range(n):
        key = ('k%d-%d' % (seed, i)).encode()
        out[key] = (bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 256))),
                    0 if i % 3 == 0 else 1000 + i)
    return out


def fill(node, items):
    ops = [['cache_set', k, v, exp, 'c'] for k, (v, exp) in items.items()]
    assert node.ops(*ops) == [True] * len(ops)


def stock_node(*args, geometry_sync=None, **kw):
    geometry = GEOMETRY + (',sync=127.0.0.1:%d' % geometry_sync if geometry_sync else '')
    return Uwsgi('--master', '--cache2', geometry, *args, '--wsgi-file', app('ops_app.py'),
                 plugins=('python3', stock_plugin('cache')), ucache=False, **kw)


def ucache_node(*args, geometry=GEOMETRY, **kw):
    return Uwsgi('--master', '--cache2', geometry, *args, '--wsgi-file', app('ops_app.py'), **kw)


@unittest.skipIf(STOCK, 'ucache behaviour')
class Sync(unittest.TestCase):
    def assert_values(self, node, items):
        keys = list(items)
        got = node.ops(*[['cache_get', k, 'c'] for k in keys])
        self.assertEqual(dict(zip(keys, got)), {k: v for k, (v, _) in items.items()})

    def ucache_expiries(self, node):
        geometry, records, complete = parse_dump(exchange(node.uport, dump_request(b'c')))
        self.assertTrue(complete)
        return {k: (v, e) for k, v, e in records}

    def stock_expiries(self, node):
        return parse_image(exchange(node.uport, packet(6, b'c')))[1]

    def test_stock_node_syncs_from_ucache(self):
        items = items_for(1)
        with ucache_node(socket_=True) as src:
            fill(src, items)
            want = self.ucache_expiries(src)
            self.assertEqual(len(want), len(items))
            with stock_node(socket_=True, geometry_sync=src.uport) as dst:
                self.assert_values(dst, items)
                self.assertEqual(self.stock_expiries(dst), want)
                self.assertIn('[uwsgi-cache] restored %d items' % len(items), dst.log())
            self.assertIn('sent the stock image (%d items, 0 did not fit' % len(items), src.log())

    def test_ucache_syncs_from_stock(self):
        items = items_for(2)
        with stock_node(socket_=True) as src:
            fill(src, items)
            want = self.stock_expiries(src)
            self.assertEqual(len(want), len(items))
            sport = free_port()
            with ucache_node('--stats', '127.0.0.1:%d' % sport, socket_=True,
                             geometry=GEOMETRY + ',sync=127.0.0.1:%d' % src.uport) as dst:
                self.assert_values(dst, items)
                self.assertEqual(self.ucache_expiries(dst), want)
                self.assertIn('imported %d items from the stock image of 127.0.0.1:%d' % (len(items), src.uport),
                              dst.log())
                self.assertEqual(stats_json(sport)['caches'][0]['sync_items'], len(items))

    def test_ucache_syncs_from_ucache(self):
        items = items_for(3)
        with ucache_node(socket_=True) as src:
            fill(src, items)
            want = self.ucache_expiries(src)
            with ucache_node(socket_=True, geometry=GEOMETRY + ',sync=127.0.0.1:%d' % src.uport) as dst:
                self.assert_values(dst, items)
                self.assertEqual(self.ucache_expiries(dst), want)
                self.assertIn('imported %d items from the ucache dump' % len(items), dst.log())

    def test_legacy_cache_sync_from_stock(self):
        items = items_for(4, 10)
        src = Uwsgi('--master', '--cache', '50', '--cache-blocksize', '512', '--wsgi-file', app('ops_app.py'),
                    plugins=('python3', stock_plugin('cache')), ucache=False, socket_=True)
        with src:
            assert src.ops(*[['cache_set', k, v, e] for k, (v, e) in items.items()]) == [True] * 10
            with Uwsgi('--master', '--cache', '50', '--cache-blocksize', '512',
                       '--cache-sync', '127.0.0.1:%d' % src.uport, '--wsgi-file', app('ops_app.py')) as dst:
                got = dst.ops(*[['cache_get', k] for k in items])
                self.assertEqual(got, [v for v, _ in items.values()])
                self.assertNotIn('not implemented', dst.log())

    def test_smaller_node_imports_what_fits_from_stock(self):
        items = items_for(5, 60)
        with stock_node(socket_=True) as src:
            fill(src, items)
            with ucache_node(geometry='name=c,items=31,blocksize=256,sync=127.0.0.1:%d' % src.uport) as dst:
                self.assertRegex(dst.log(), r'imported 30 items from the stock image .*items=100 keysize=2048 '
                                 r'blocksize=256 blocks=100; 0 expired, 0 invalid, 30 did not fit')
                got = [v for v in dst.ops(*[['cache_get', k, 'c'] for k in items]) if v is not None]
                self.assertEqual(len(got), 30)

    def test_nodes_are_tried_in_order(self):
        items = items_for(6, 5)
        dead = free_port()
        with ucache_node(socket_=True) as src:
            fill(src, items)
            with ucache_node(geometry=GEOMETRY + ',sync=127.0.0.1:%d;127.0.0.1:%d' % (dead, src.uport)) as dst:
                self.assert_values(dst, items)
                log = dst.log()
                self.assertIn('[cache-sync] getting cache dump from 127.0.0.1:%d ...' % dead, log)
                self.assertIn('[cache-sync] unable to connect to the cache server', log)
                self.assertIn('[cache-sync] trying with the next sync node...', log)

    def test_no_node_answers_exits_naming_them(self):
        a, b = free_port(), free_port()
        nodes = '127.0.0.1:%d;127.0.0.1:%d' % (a, b)
        rc, out = run_to_exit(['--master', '--cache2', GEOMETRY + ',sync=' + nodes])
        self.assertEqual(rc, 1, out)
        self.assertIn('ucache: cache "c": [cache-sync] no sync node answered (%s): exiting' % nodes, out)


class FakeNode:
    """A node that answers each modifier2 6 request with reply(body): bytes,
    or None to close at once (what stock does for an unknown cache name)."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = conn.recv(4, socket.MSG_WAITALL)
                if len(head) < 4:
                    continue
                _, size, m2 = struct.unpack('<BHB', head)
                body = conn.recv(size, socket.MSG_WAITALL) if size else b''
                self.requests.append((m2, body))
                out = self.reply(body)
                if out:
                    try:
                        conn.sendall(out)
                    except OSError:
                        pass

    def close(self):
        self.sock.close()


def native(body):
    return body.startswith(b'\x06\x00format')


def ucache_dump(records, end=True):
    head = uwsgi_vars([('format', 'ucache-dump'), ('version', '1'), ('cache', 'c'), ('items', '100'),
                       ('max_value', '256')])
    out = packet(7, head)
    for k, v, e in records:
        out += DUMP_RECORD.pack(len(k), len(v), e) + k + v
    if end:
        out += DUMP_END.pack(0, len(records))
    return out


def stock_image(items=100, keysize=2048, blocksize=256, entries=()):
    """A raw image; entries: (index, fields dict, key, value)."""
    stride = IMAGE_ITEM.size + keysize
    img = bytearray(items * (stride + blocksize))
    for i, f, key, value in entries:
        fields = dict(flags=0, keysize=len(key), hash=0, valsize=len(value), first_block=i, expires=0)
        fields.update(f)
        IMAGE_ITEM.pack_into(img, i * stride, fields['flags'], fields['keysize'], fields['hash'],
                             fields['valsize'], fields['first_block'], fields['expires'], 0, 0, 0, 0, 0)
        img[i * stride + IMAGE_ITEM.size:i * stride + IMAGE_ITEM.size + len(key)] = key
        off = items * stride + fields['first_block'] * blocksize
        if 0 <= off < len(img):
            img[off:off + len(value)] = value[:max(0, len(img) - off)]
    return packet(7, uwsgi_vars([('items', str(items)), ('blocksize', str(blocksize))])) + bytes(img)


@unittest.skipIf(STOCK, 'ucache behaviour')
class FakeNodes(unittest.TestCase):
    def run_against(self, reply):
        fake = FakeNode(reply)
        self.addCleanup(fake.close)
        return fake, '127.0.0.1:%d' % fake.port

    def test_garbage_is_refused(self):
        fake, addr = self.run_against(lambda body: b'\x00garbage' * 100)
        rc, out = run_to_exit(['--master', '--cache2', GEOMETRY + ',sync=' + addr])
        self.assertEqual(rc, 1, out)
        self.assertIn('[cache-sync] invalid uwsgi packet received from the cache server %s' % addr, out)
        self.assertIn('no sync node answered (%s)' % addr, out)

    def test_truncated_dump_keeps_complete_records(self):
        recs = [(b'a', b'1', 0), (b'b', b'22', 2000000000), (b'c', b'333', 0)]
        data = ucache_dump(recs)
        cut = data[:-(DUMP_END.size + 2)]      # the end marker and 2 bytes of the last value gone
        fake, addr = self.run_against(lambda body: cut)
        with ucache_node(geometry=GEOMETRY + ',sync=' + addr) as dst:
            self.assertEqual(dst.ops(['cache_get', 'a', 'c'], ['cache_get', 'b', 'c'], ['cache_get', 'c', 'c']),
                             [b'1', b'22', None])
            self.assertIn('the dump from %s is truncated after 2 records: kept the 2 imported' % addr, dst.log())
        self.assertTrue(native(fake.requests[0][1]))

    def test_oversized_record_in_a_dump_stops_there(self):
        data = ucache_dump([(b'a', b'1', 0)], end=False) + DUMP_RECORD.pack(1, 1 << 40, 0) + b'x'
        fake, addr = self.run_against(lambda body: data)
        with ucache_node(geometry=GEOMETRY + ',sync=' + addr) as dst:
            self.assertEqual(dst.op('cache_get', 'a', 'c'), b'1')
            self.assertIn('is damaged after 1 records', dst.log())

    def test_stock_image_with_lying_fields_imports_the_valid_items(self):
        now = int(time.time())
        entries = [
            (1, {}, b'good', b'value-1'),
            (2, {'expires': now + 500}, b'good2', b'value-2'),
            (3, {'expires': now - 5}, b'expired', b'old'),
            (4, {'keysize': 1 << 40}, b'hugekey', b'x'),           # key length past the item
            (5, {'first_block': 1 << 50}, b'farblock', b'x'),      # block past the image
            (6, {'valsize': 1 << 20}, b'hugeval', b'x'),           # value past its region
            (7, {'valsize': 0}, b'noval', b''),
            (8, {'flags': 1}, b'ungettable', b'x'),
            (9, {'first_block': 99, 'valsize': 257}, b'edge', b'x'),  # runs past the last block
        ]
        image = stock_image(entries=entries)
        fake, addr = self.run_against(lambda body: None if native(body) else image)
        with ucache_node(geometry=GEOMETRY + ',sync=' + addr, socket_=True) as dst:
            got = dst.ops(*[['cache_get', e[2], 'c'] for e in entries])
            self.assertEqual(got, [b'value-1', b'value-2'] + [None] * 7)
            dump = {k: e for k, _, e in parse_dump(exchange(dst.uport, dump_request(b'c')))[1]}
            self.assertEqual(dump, {b'good': 0, b'good2': now + 500})
            self.assertIn('1 expired, 6 invalid, 0 did not fit', dst.log())
        self.assertEqual([m2 for m2, _ in fake.requests], [6, 6])
        self.assertEqual(fake.requests[1][1], b'c')     # the stock request: the cache name

    def test_truncated_image_is_refused(self):
        image = stock_image(entries=[(1, {}, b'k', b'v')])
        # 777 bytes short: no keysize or block count explains the length (a
        # cut by a multiple of items would read as a smaller keysize, whose
        # items are then validated one by one like any others)
        fake, addr = self.run_against(lambda body: None if native(body) else image[:-777])
        rc, out = run_to_exit(['--master', '--cache2', GEOMETRY + ',sync=' + addr])
        self.assertEqual(rc, 1, out)
        self.assertIn('matches no geometry of items=100 blocksize=256: refused', out)

    def test_image_of_another_keysize_is_understood(self):
        image = stock_image(keysize=64, entries=[(1, {}, b'k', b'v'), (2, {}, b'k2', b'v2')])
        fake, addr = self.run_against(lambda body: None if native(body) else image)
        with ucache_node(geometry=GEOMETRY + ',sync=' + addr) as dst:
            self.assertEqual(dst.ops(['cache_get', 'k', 'c'], ['cache_get', 'k2', 'c']), [b'v', b'v2'])
            self.assertIn('keysize=64', dst.log())


if __name__ == '__main__':
    unittest.main()
