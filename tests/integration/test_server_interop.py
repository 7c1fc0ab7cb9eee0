"""Stock and ucache on both ends of "name@127.0.0.1:PORT" (modifier2 17):
a stock uWSGI client (no ucache) against a ucache server, and a ucache
client against a stock server (--plugin cache), with the same expectations:
get, set, set on an existing key fails, update, exists, del, clear, on the
default cache (empty name and by name) and on a named cache."""
import unittest

from harness import Uwsgi, app, stock_plugin


def server(stock=False):
    # "second" has as many items as the default cache: a stock server's
    # clear of a named cache walks the default cache's item count (a stock
    # bug, see test_bug_remote_clear_named_cache.py), harmless at equal sizes
    kw = dict(plugins=('python3', stock_plugin('cache')), ucache=False) if stock else {}
    return Uwsgi('--cache2', 'name=first,items=30', '--cache2', 'name=second,items=30',
                 '--wsgi-file', app('ops_app.py'), socket_=True, **kw)


def client(stock=False):
    return Uwsgi('--cache2', 'name=local,items=5', '--wsgi-file', app('ops_app.py'),
                 ucache=not stock)


class Interop(unittest.TestCase):
    def matrix(self, s, c, name, local):
        """Every magic command through name@addr; local is the server-side
        cache name the same items live in."""
        R = '%s@127.0.0.1:%d' % (name, s.uport)
        self.assertIs(c.op('cache_clear', R), True)
        r = c.ops(['cache_get', 'k', R],
                  ['cache_set', 'k', 'v', 0, R],
                  ['cache_set', 'k', 'again', 0, R],          # exists: fails
                  ['cache_get', 'k', R],
                  ['cache_update', 'k', 'w', 0, R],
                  ['cache_get', 'k', R],
                  ['cache_update', 'fresh', 'f', 0, R],       # update creates
                  ['cache_exists', 'k', R],
                  ['cache_exists', 'nope', R],
                  ['cache_del', 'k', R],
                  ['cache_del', 'k', R],
                  ['cache_get', 'k', R],
                  ['cache_exists', 'fresh', R])
        self.assertEqual(r, [None, True, None, b'v', True, b'w', True, True, None, True, None,
                             None, True])
        self.assertEqual(s.op('cache_get', 'fresh', local), b'f')
        s.ops(['cache_set', 'a', '1', 0, local], ['cache_set', 'b', '2', 0, local])
        self.assertEqual(c.ops(['cache_clear', R], ['cache_get', 'a', R], ['cache_get', 'fresh', R]),
                         [True, None, None])
        self.assertEqual(s.ops(['cache_get', 'a', local], ['cache_get', 'b', local]), [None, None])

    def check(self, s, c):
        self.matrix(s, c, '', 'first')          # "@addr": the default cache
        self.matrix(s, c, 'first', 'first')     # the default cache by name
        s.op('cache_set', 'keep', 'me', 0, 'first')
        self.matrix(s, c, 'second', 'second')   # a named cache
        self.assertEqual(s.op('cache_get', 'keep', 'first'), b'me')   # untouched by "second"
        R = 'nosuch@127.0.0.1:%d' % s.uport
        self.assertEqual(c.ops(['cache_set', 'k', 'v', 0, R], ['cache_get', 'k', R]), [None, None])

    def test_stock_client_ucache_server(self):
        with server() as s, client(stock=True) as c:
            self.assertIn('*** ucache "first" initialized', s.log())
            self.assertIn('*** Cache "local" initialized', c.log())   # the stock cache
            self.check(s, c)

    def test_ucache_client_stock_server(self):
        with server(stock=True) as s, client() as c:
            self.assertIn('*** Cache "first" initialized', s.log())
            self.assertIn('*** ucache "local" initialized', c.log())
            self.check(s, c)

    def test_ucache_client_ucache_server(self):
        with server() as s, client() as c:
            self.check(s, c)


if __name__ == '__main__':
    unittest.main()
