"""The modifier1 111 server on the wire: every modifier2 of
docs/STOCK_SEMANTICS.md ("Wire protocol") against one ucache server, byte
for byte: 0 get (and its stream form for values over 65535 bytes), 1 set,
2 del, 3/4 HTTP lookups, 5 stream, 6 dump (the ucache dump format), 17
magic on the default and on a named cache."""
import struct
import time
import unittest

from cachewire import (array, dump_request, exchange, magic, magic_reply, packet, parse_dump, parse_image,
                       split_reply)
from harness import STOCK, Uwsgi, app
from harness import uwsgi_vars as V

BIG = bytes(range(256)) * 300          # 76800 bytes: over the 16-bit pktsize


@unittest.skipIf(STOCK, 'ucache behaviour (stock: bugs, other dump format)')
class Server(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # "web" (default): bitmap, values up to 2 MiB; "named": small blocks
        cls.u = Uwsgi('--cache2', 'name=web,items=64,blocks=64,blocksize=32768,bitmap=1',
                      '--cache2', 'name=named,items=20,blocksize=1024',
                      '--buffer-size', '65535', '--wsgi-file', app('ops_app.py'),
                      socket_=True).__enter__()
        cls.port = cls.u.uport

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def setUp(self):
        self.u.ops(['cache_clear', 'web'], ['cache_clear', 'named'])

    def x(self, data, **kw):
        return exchange(self.port, data, **kw)

    def test_0_get(self):
        self.u.op('cache_set', 'k', 'value', 0, 'web')
        self.assertEqual(self.x(packet(0, b'k')), struct.pack('<BHB', 111, 5, 0) + b'value')
        self.assertEqual(self.x(packet(0, b'missing')), b'')

    def test_0_get_big_value_uses_the_stream_form(self):
        self.assertIs(self.u.op('cache_set', 'big', BIG, 0, 'web'), True)
        reply = self.x(packet(0, b'big'))
        self.assertEqual(reply[:4], struct.pack('<BHB', 111, 0, 1))   # never a truncated length
        self.assertEqual(reply[4:], BIG)
        self.u.op('cache_set', 'edge', b'e' * 65535, 0, 'web')       # the largest 16-bit length
        self.assertEqual(self.x(packet(0, b'edge')), struct.pack('<BHB', 111, 65535, 0) + b'e' * 65535)

    def test_1_set_and_2_del(self):
        self.assertEqual(self.x(packet(1, array(b'k', b'v1'))), b'')
        self.assertEqual(self.u.op('cache_get', 'k', 'web'), b'v1')
        self.assertEqual(self.x(packet(1, array(b'k', b'v2'))), b'')   # exists: a set fails
        self.assertEqual(self.u.op('cache_get', 'k', 'web'), b'v1')
        value = b'w' * 60000                                           # with --buffer-size 65535
        self.x(packet(1, array(b'wide', value)))
        self.assertEqual(self.u.op('cache_get', 'wide', 'web'), value)
        self.assertEqual(self.x(packet(2, b'k')), b'')
        self.assertIsNone(self.u.op('cache_get', 'k', 'web'))

    def test_3_4_http_lookups(self):
        self.u.ops(['cache_set', '/page', '<p>hi</p>', 0, 'web'],
                   ['cache_set', '/raw', 'HTTP/1.0 203 OK\r\nX-A: b\r\n\r\nraw', 0, 'web'])
        hit = b'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n<p>hi</p>'
        self.assertEqual(self.x(packet(3, V([('key', '/page')]))), hit)
        self.assertEqual(self.x(packet(4, V([('REQUEST_METHOD', 'GET'), ('key', '/page')]))), hit)
        self.assertEqual(self.x(packet(3, V([('get', '/page')]))), hit)
        # a value that is a whole HTTP response goes out as it is
        self.assertEqual(self.x(packet(3, V([('key', '/raw')]))),
                         b'HTTP/1.0 203 OK\r\nX-A: b\r\n\r\nraw')
        self.assertEqual(self.x(packet(3, V([('key', '/nope')]))), b'')        # 3: close
        for m2, var in ((4, 'key'), (3, 'get'), (4, 'get')):                   # 404
            reply = self.x(packet(m2, V([(var, '/nope')])))
            self.assertTrue(reply.startswith(b'HTTP/1.1 404 Not Found\r\n'), (m2, var, reply))
            self.assertTrue(reply.endswith(b'\r\n\r\nNot Found'))

    def test_5_stream(self):
        self.u.op('cache_set', 'big', BIG, 0, 'web')
        self.assertEqual(self.x(packet(5, b'big')), struct.pack('<BHB', 111, 0, 1) + BIG)
        self.assertEqual(self.x(packet(5, b'nope')), struct.pack('<BHB', 111, 0, 0))

    def test_6_dump(self):
        before = int(time.time())
        self.u.ops(['cache_set', 'a', 'A', 0, 'web'], ['cache_set', 'b', BIG, 100, 'web'],
                   ['cache_set', 'n', 'N', 0, 'named'])
        geometry, records, complete = parse_dump(self.x(dump_request()))
        self.assertTrue(complete)
        self.assertEqual({k: geometry[k] for k in ('format', 'version', 'cache', 'items', 'slots',
                                                    'blocksize', 'blocks', 'bitmap', 'keysize',
                                                    'hash', 'max_value')},
                         {'format': b'ucache-dump', 'version': b'1', 'cache': b'web', 'items': b'64',
                          'slots': b'64', 'blocksize': b'32768', 'blocks': b'64', 'bitmap': b'1',
                          'keysize': b'2048', 'hash': b'xxh3', 'max_value': b'2097152'})
        items = {k: (v, e) for k, v, e in records}
        self.assertEqual(set(items), {b'a', b'b'})
        self.assertEqual(items[b'a'], (b'A', 0))
        self.assertEqual(items[b'b'][0], BIG)
        self.assertTrue(before + 100 <= items[b'b'][1] <= int(time.time()) + 101)   # absolute
        geometry, records, complete = parse_dump(self.x(dump_request(b'named')))
        self.assertTrue(complete)
        self.assertEqual((geometry['cache'], records), (b'named', [(b'n', b'N', 0)]))
        self.assertEqual(self.x(packet(6, b'nosuch')), b'')
        self.assertEqual(self.x(dump_request(b'nosuch')), b'')

    def test_6_plain_dump_is_the_stock_image(self):
        self.u.op('cache_update', 'img', 'I', 0, 'named')
        head, items = parse_image(self.x(packet(6, b'named')))
        self.assertEqual(head, {'items': b'20', 'blocksize': b'1024'})    # what stock sends
        self.assertEqual(items[b'img'], (b'I', 0))
        self.u.op('cache_del', 'img', 'named')

    def test_6_dump_of_an_empty_cache(self):
        geometry, records, complete = parse_dump(self.x(dump_request(b'named')))
        self.assertEqual((records, complete), ([], True))

    def test_17_magic_on_default_and_named(self):
        for cache in (None, 'named'):
            where = cache or 'web'
            ok = magic_reply(self.x(magic('set', 'k', cache, size=1, value=b'1')))
            self.assertEqual(ok[0]['status'], b'ok')
            self.assertIsNone(magic_reply(self.x(magic('set', 'k', cache, size=1, value=b'2'))))
            got = magic_reply(self.x(magic('get', 'k', cache)))
            self.assertEqual((got[0]['size'], got[1]), (b'1', b'1'))
            self.assertIsNotNone(magic_reply(self.x(magic('update', 'k', cache, size=2, expires=50,
                                                          value=b'22'))))
            got = magic_reply(self.x(magic('get', 'k', cache)))
            self.assertEqual(got[1], b'22')
            self.assertGreater(int(got[0]['expires']), time.time())
            self.assertIsNotNone(magic_reply(self.x(magic('exists', 'k', cache))))
            self.assertIsNotNone(magic_reply(self.x(magic('del', 'k', cache))))
            self.assertIsNone(magic_reply(self.x(magic('exists', 'k', cache))))
            self.assertIsNone(magic_reply(self.x(magic('del', 'k', cache))))
            self.u.op('cache_set', 'c', 'c', 0, where)
            self.assertIsNotNone(magic_reply(self.x(magic('clear', cache=cache))))
            self.assertIsNone(self.u.op('cache_get', 'c', where))
        # a value over the named cache's 1024-byte blocks: refused, nothing read
        self.assertIsNone(magic_reply(self.x(magic('set', 'k', 'named', size=2000, value=b'x' * 2000))))
        self.assertIsNone(magic_reply(self.x(magic('get', 'k', 'nosuch'))))

    def test_bug_magic_set_expires_past_2_64_stored_expired(self):
        """A relative expiry whose sum with now passes 2^64 is the farthest
        time, not a wrap into the past: the item is there, never expires.
        The farthest time is 2^32 - 1 (2106) since slots hold 32-bit
        expiries (layout v6); it was 2^64 - 1."""
        for expires in (2 ** 64 - 1, 2 ** 64 - 1000):
            ok = magic_reply(self.x(magic('set', 'far', size=1, expires=expires, value=b'f')))
            self.assertEqual(ok[0]['status'], b'ok')
            got = magic_reply(self.x(magic('get', 'far')))
            self.assertEqual((got[1], int(got[0]['expires'])), (b'f', 2 ** 32 - 1))
            self.assertEqual(self.u.op('cache_get', 'far', 'web'), b'f')
            self.assertIs(self.u.op('cache_del', 'far', 'web'), True)
        # a large one that does not pass 2^64 is relative, as before
        ok = magic_reply(self.x(magic('set', 'near', size=1, expires=10 ** 9, value=b'n')))
        self.assertEqual(ok[0]['status'], b'ok')
        got = magic_reply(self.x(magic('get', 'near')))
        self.assertAlmostEqual(int(got[0]['expires']), time.time() + 10 ** 9, delta=5)

    def test_17_big_value(self):
        got = self.x(magic('set', 'big', size=len(BIG), value=BIG))
        self.assertIsNotNone(magic_reply(got))
        got = magic_reply(self.x(magic('get', 'big')))
        self.assertEqual((int(got[0]['size']), got[1]), (len(BIG), BIG))

    def test_replies_have_a_well_formed_header(self):
        self.u.op('cache_set', 'k', 'v', 0, 'web')
        m1, size, m2, rest = split_reply(self.x(magic('get', 'k')))
        self.assertEqual((m1, m2), (111, 17))
        self.assertEqual(len(rest), size + 1)


if __name__ == '__main__':
    unittest.main()
