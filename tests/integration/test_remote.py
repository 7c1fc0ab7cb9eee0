"""Remote caches: "name@host:port" in the Python API, against a ucache
server and a stock one, from a ucache client and a stock one (modifier1 111,
modifier2 17); --socket-timeout honoured; no fd leak; ucache wins modifier1
111 when the stock "cache" plugin is loaded too."""
import socket
import time
import unittest

from harness import PLUGIN, Uwsgi, app, poll, stock_plugin


def server(*extra, **kw):
    return Uwsgi('--cache2', 'name=shared,items=20', '--cache2', 'name=second,items=50,blocksize=128',
                 *extra, '--wsgi-file', app('ops_app.py'), socket_=True, **kw)


def client(*extra, **kw):
    return Uwsgi('--cache2', 'name=local,items=5', *extra, '--wsgi-file', app('ops_app.py'), **kw)


class UcacheToUcache(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = server().__enter__()
        cls.c = client('--socket-timeout', '2').__enter__()
        cls.r = 'shared@127.0.0.1:%d' % cls.s.uport

    @classmethod
    def tearDownClass(cls):
        cls.c.__exit__(None, None, None)
        cls.s.__exit__(None, None, None)

    def test_magic_commands(self):
        R = self.r
        r = self.c.ops(
            ['cache_clear', R],
            ['cache_get', 'k', R],
            ['cache_set', 'k', 'v', 0, R],
            ['cache_set', 'k', 'v2', 0, R],       # exists: the server closes
            ['cache_get', 'k', R],
            ['cache_update', 'k', 'w', 0, R],
            ['cache_get', 'k', R],
            ['cache_exists', 'k', R],
            ['cache_exists', 'nope', R],
            ['cache_del', 'k', R],
            ['cache_del', 'k', R],
            ['cache_set', 'big', b'\x01' * 60000, 0, R],
            ['cache_get', 'big', R],
            ['cache_inc', 'n', 1, 0, R],          # no math on the wire
            ['cache_set', 'k', 'local', 0, 'local'],
        )
        self.assertEqual(r, [True, None, True, None, b'v', True, b'w', True, None, True, None,
                             True, b'\x01' * 60000, None, True])
        self.assertEqual(self.s.op('cache_get', 'big', 'shared'), b'\x01' * 60000)
        self.assertEqual(self.c.op('cache_get', 'k', 'local'), b'local')

    def test_named_and_default_remote_cache(self):
        port = self.s.uport
        r = self.c.ops(
            ['cache_set', 'd', 'default', 0, '@127.0.0.1:%d' % port],
            ['cache_set', 'd', 'second', 0, 'second@127.0.0.1:%d' % port],
            ['cache_get', 'd', '@127.0.0.1:%d' % port],
            ['cache_get', 'd', 'second@127.0.0.1:%d' % port],
            ['cache_get', 'd', 'nosuch@127.0.0.1:%d' % port],
            ['cache_clear', 'second@127.0.0.1:%d' % port],   # stock bug: cleared the wrong range
            ['cache_get', 'd', 'second@127.0.0.1:%d' % port],
            ['cache_get', 'd', '@127.0.0.1:%d' % port],
        )
        self.assertEqual(r, [True, True, b'default', b'second', None, True, None, b'default'])

    def test_remote_expiry(self):
        self.assertIs(self.c.op('cache_set', 'e', 'v', 1, self.r), True)
        poll(lambda: self.c.op('cache_get', 'e', self.r) is None, 5, 0.05, 'remote expiry')

    def test_unreachable_server_and_no_fd_leak(self):
        with socket.socket() as s:     # a port nobody listens on
            s.bind(('127.0.0.1', 0))
            dead = 'x@127.0.0.1:%d' % s.getsockname()[1]
        self.assertIs(self.c.op('cache_clear', self.r), True)
        before = self.c.op('fdcount')
        ops = []
        for i in range(15):
            ops += [['cache_set', 'k%d' % i, 'v', 0, self.r], ['cache_get', 'k%d' % i, self.r],
                    ['cache_get', 'missing', self.r], ['cache_set', 'k%d' % i, 'v', 0, self.r],
                    ['cache_get', 'k', dead], ['cache_set', 'k', 'v', 0, dead],
                    ['cache_exists', 'k', dead], ['cache_del', 'k', dead], ['cache_clear', dead]]
        r = self.c.ops(*ops)
        self.assertEqual(r, [True, b'v', None, None, None, None, None, None, None] * 15)
        self.assertEqual(self.c.op('fdcount'), before)

    def test_socket_timeout(self):
        with socket.socket() as hole:  # accepts (backlog) but never answers
            hole.bind(('127.0.0.1', 0))
            hole.listen(16)
            r = 'x@127.0.0.1:%d' % hole.getsockname()[1]
            before = self.c.op('fdcount')
            t0 = time.monotonic()
            self.assertEqual(self.c.ops(['cache_get', 'k', r], ['cache_set', 'k', 'v', 0, r]),
                             [None, None])
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 3.5)   # 2 x --socket-timeout 2
            self.assertLess(elapsed, 8)
            self.assertEqual(self.c.op('fdcount'), before)


class StockInterop(unittest.TestCase):
    def check_pair(self, s, c):
        R = 'shared@127.0.0.1:%d' % s.uport
        r = c.ops(['cache_set', 'k', 'v', 0, R], ['cache_get', 'k', R], ['cache_exists', 'k', R],
                  ['cache_update', 'k', 'w', 10, R], ['cache_get', 'k', R],
                  ['cache_set', 'k', 'x', 0, R], ['cache_del', 'k', R], ['cache_get', 'k', R],
                  ['cache_del', 'k', R], ['cache_exists', 'k', R])
        self.assertEqual(r, [True, b'v', True, True, b'w', None, True, None, None, None])
        self.assertIs(c.op('cache_set', 'z', 'zz', 0, R), True)
        self.assertEqual(s.op('cache_get', 'z', 'shared'), b'zz')

    def test_ucache_client_stock_server(self):
        with server(plugins=('python3', stock_plugin('cache')), ucache=False) as s, client() as c:
            self.assertIn('*** Cache "shared" initialized', s.log())
            self.check_pair(s, c)

    def test_stock_client_ucache_server(self):
        with server() as s, client(ucache=False) as c:
            self.assertNotIn('*** ucache', c.log())
            self.check_pair(s, c)


class Modifier1Takeover(unittest.TestCase):
    def check(self, plugins):
        with server(plugins=plugins, ucache=False) as s, client() as c:
            self.assertIn('ucache: serving modifier1 111 in place of the "cache" plugin', s.log())
            R = 'second@127.0.0.1:%d' % s.uport
            self.assertEqual(c.ops(['cache_set', 'a', '1', 0, R], ['cache_clear', R],
                                   ['cache_exists', 'a', R]), [True, True, None])

    def test_stock_cache_plugin_loaded_first(self):
        self.check(('python3', stock_plugin('cache'), PLUGIN))

    def test_stock_cache_plugin_loaded_last(self):
        self.check(('python3', PLUGIN, stock_plugin('cache')))


if __name__ == '__main__':
    unittest.main()
