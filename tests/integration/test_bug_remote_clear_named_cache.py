"""Regression, stock bug "remote-clear-named-cache": a modifier2 17 "clear"
of a named cache made the stock server loop over the *default* cache's item
count: on a smaller cache it wrote past the end of the cache (the worker
could die holding the lock), on a larger one it left the items beyond that
count in place.

ucache clears exactly the named cache, whatever its size relative to the
default one, and the server process lives on."""
import unittest

from cachewire import exchange, magic, magic_reply
from harness import STOCK, Uwsgi, app


@unittest.skipIf(STOCK, 'stock bug')
class RemoteClearNamedCache(unittest.TestCase):
    SIZES = {'default': 50, 'small': 10, 'large': 200}

    def keys(self, u, cache):
        return len(u.op('cache_keys', cache))

    def fill(self, u, cache, n):
        r = u.ops(*[['cache_set', '%s-%d' % (cache, i), 'v', 0, cache] for i in range(n)])
        self.assertEqual(r, [True] * n)

    def test_clear_smaller_and_larger_named_caches(self):
        caches = []
        for name, items in self.SIZES.items():
            caches += ['--cache2', 'name=%s,items=%d,blocksize=256' % (name, items)]
        # no master, one process: a worker that dies takes the server with it
        with Uwsgi(*caches, '--wsgi-file', app('ops_app.py'), socket_=True) as s, \
                Uwsgi('--cache2', 'name=local,items=5', '--wsgi-file', app('ops_app.py')) as c:
            for name, items in self.SIZES.items():
                self.fill(s, name, items - 1)             # every usable slot
            # the ucache client API, then a raw packet, on each named cache
            self.assertIs(c.op('cache_clear', 'small@127.0.0.1:%d' % s.uport), True)
            self.assertEqual(self.keys(s, 'small'), 0)
            self.assertIsNotNone(magic_reply(exchange(s.uport, magic('clear', cache='large'))))
            self.assertEqual(self.keys(s, 'large'), 0)    # slots past the default's count too
            self.assertEqual(self.keys(s, 'default'), 49)
            self.assertTrue(s.alive())
            # both caches work afterwards, to their last slot
            self.fill(s, 'small', 9)
            self.fill(s, 'large', 199)
            self.assertIs(c.op('cache_clear', 'large@127.0.0.1:%d' % s.uport), True)
            self.assertEqual([self.keys(s, n) for n in self.SIZES], [49, 9, 0])
            self.assertTrue(s.alive())


if __name__ == '__main__':
    unittest.main()
