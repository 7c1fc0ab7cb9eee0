"""Expiry: the master's sweeper (stock options and log lines) and, without
a master, the engine's guarantee that expired items are never returned
(stock bug: they were, forever, without lazy_expire)."""
import unittest

from harness import Uwsgi, app, poll


class WithMaster(unittest.TestCase):
    def test_sweeper_frees_and_reports(self):
        with Uwsgi('--master', '--cache2', 'name=e,items=10', '--cache2', 'name=ne,items=10,no_expire=1',
                   '--cache-expire-freq', '1', '--cache-report-freed-items',
                   '--wsgi-file', app('ops_app.py')) as u:
            poll(lambda: 'cache sweeper thread enabled' in u.log(), 5, 0.05, 'sweeper')
            r = u.ops(['cache_set', 't', 'v', 1, 'e'], ['cache_set', 'p', 'v', 0, 'e'],
                      ['cache_set', 't', 'v', 1, 'ne'], ['cache_get', 't', 'e'])
            self.assertEqual(r, [True, True, True, b'v'])
            poll(lambda: u.op('cache_get', 't', 'e') is None, 5, 0.05, 'expiry')
            poll(lambda: 'freed 1 items for cache "e"' in u.log(), 5, 0.05, 'sweeper log')
            r = u.ops(['cache_get', 'p', 'e'], ['cache_get', 't', 'ne'], ['cache_keys', 'e'])
            self.assertEqual(r, [b'v', b'v', [b'p']])
            self.assertNotIn('for cache "ne"', u.log())

    def test_no_expire_option_disables_the_sweeper(self):
        with Uwsgi('--master', '--cache2', 'name=e,items=10', '--cache-no-expire',
                   '--wsgi-file', app('ops_app.py')) as u:
            self.assertEqual(u.op('cache_set', 't', 'v', 1, 'e'), True)
            poll(lambda: u.op('cache_get', 't', 'e') is None, 5, 0.05, 'expiry')
            self.assertNotIn('cache sweeper thread enabled', u.log())


class WithoutMaster(unittest.TestCase):
    def test_expired_items_are_never_returned(self):
        with Uwsgi('--cache2', 'name=e,items=10', '--cache2', 'name=l,items=5,purge_lru=1',
                   '--wsgi-file', app('ops_app.py')) as u:
            self.assertNotIn('cache sweeper thread enabled', u.log())
            r = u.ops(['cache_set', 't', 'v', 1, 'e'], ['cache_set', 't', 'v', 1, 'l'],
                      ['cache_inc', 'n', 1, 1, 'e'], ['cache_inc', 'n', 1, 0, 'e'],
                      ['cache_set', 'p', 'v', 0, 'e'], ['cache_num', 'n', 'e'])
            self.assertEqual(r, [True, True, True, True, True, 2])
            poll(lambda: u.op('cache_get', 't', 'e') is None, 5, 0.05, 'expiry')
            # TTL and LRU mix (stock bug: purge_lru kept the relative expiry)
            poll(lambda: u.op('cache_exists', 't', 'l') is None, 5, 0.05, 'LRU expiry')
            # math keeps the item's expiry
            poll(lambda: u.op('cache_get', 'n', 'e') is None, 5, 0.05, 'math expiry')
            self.assertEqual(u.ops(['cache_exists', 't', 'e'], ['cache_get', 'p', 'e']), [None, b'v'])


if __name__ == '__main__':
    unittest.main()
