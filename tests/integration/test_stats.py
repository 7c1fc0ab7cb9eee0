"""The stats server's "caches" array: stock keys plus ucache's evictions,
expired, bytes_used, bytes_mapped, bytes_resident, max_value_size, sets,
deletes, sync_items and ucache_version; no udp_* key without nodes/udp
(test_udp.py checks their values) and no Redis key without redis=; the
counters are live."""
import unittest

from harness import Uwsgi, app, free_port, poll, stats_json

STOCK_KEYS = ['name', 'hash', 'hashsize', 'keysize', 'max_items', 'blocks', 'blocksize',
              'items', 'hits', 'miss', 'full', 'last_modified_at']
UCACHE_KEYS = ['evictions', 'expired', 'bytes_used', 'too_large', 'bytes_mapped',
               'bytes_resident', 'max_value_size', 'sets', 'deletes', 'sync_items', 'ucache_version']


class Stats(unittest.TestCase):
    def stats(self, port):
        return stats_json(port)

    def check(self, minified):
        sport = free_port()
        extra = ['--stats-minified'] if minified else []
        with Uwsgi('--master', '--stats', '127.0.0.1:%d' % sport, *extra,
                   '--cache-expire-freq', '1',
                   '--cache2', 'name=a,items=11,blocksize=100,keysize=64,hash=murmur2,lastmod=1',
                   '--cache2', 'name=b,items=3,blocks=12,blocksize=10,bitmap=1,purge_lru=1',
                   '--wsgi-file', app('ops_app.py')) as u:
            caches = self.stats(sport)['caches']
            self.assertEqual([c['name'] for c in caches], ['a', 'b'])
            for c in caches:
                self.assertEqual(list(c), STOCK_KEYS + UCACHE_KEYS)
                self.assertGreaterEqual(c['bytes_mapped'], c['bytes_resident'])
                self.assertGreater(c['bytes_resident'], 0)
            a, b = caches
            # blocksize, or blocks * blocksize in bitmap mode
            self.assertEqual((a['max_value_size'], b['max_value_size']), (100, 120))
            self.assertEqual((a['hash'], a['hashsize'], a['keysize'], a['max_items'],
                              a['blocks'], a['blocksize']), ('murmur2', 65536, 64, 11, 11, 100))
            self.assertEqual((b['hash'], b['blocks'], b['blocksize']), ('xxh3', 12, 10))
            self.assertEqual([a[k] for k in ('items', 'hits', 'miss', 'full', 'evictions',
                                             'expired', 'bytes_used', 'sync_items', 'sets',
                                             'deletes')], [0] * 10)
            u.ops(['cache_set', 'k1', 'x' * 10, 0, 'a'], ['cache_set', 'k2', 'y' * 5, 0, 'a'],
                  ['cache_get', 'k1', 'a'], ['cache_get', 'k1', 'a'], ['cache_get', 'k2', 'a'],
                  ['cache_get', 'no', 'a'], ['cache_get', 'no2', 'a'],
                  ['cache_set', 'e', 'v', 1, 'a'],
                  ['cache_set', 'b1', 'v', 0, 'b'], ['cache_set', 'b2', 'v', 0, 'b'],
                  ['cache_set', 'b3', 'v', 0, 'b'],
                  ['cache_set', 'k1', 'z', 0, 'a'], ['cache_del', 'k2', 'a'],
                  ['cache_del', 'k2', 'a'], ['cache_update', 'k2', 'y' * 5, 0, 'a'])
            a, b = self.stats(sport)['caches']
            # sets and deletes count what succeeded: the refused set of k1
            # (it exists) and the second del of k2 do not count
            self.assertEqual([a[k] for k in ('items', 'hits', 'miss', 'bytes_used', 'sets',
                                             'deletes')], [3, 3, 2, 16, 4, 1])
            self.assertGreaterEqual(a['bytes_mapped'], 11 * 100)
            self.assertGreater(a['last_modified_at'], 0)
            self.assertEqual((b['items'], b['evictions'], b['full']), (2, 1, 1))
            # expiry is counted once the item is gone (lazily or swept)
            poll(lambda: u.op('cache_get', 'e', 'a') is None, 5, 0.05, 'expiry')
            poll(lambda: self.stats(sport)['caches'][0]['expired'] == 1, 6, 0.1, 'expired')
            self.assertEqual(self.stats(sport)['caches'][0]['items'], 2)

    def test_stats_json(self):
        self.check(False)

    def test_stats_json_minified(self):
        self.check(True)


if __name__ == '__main__':
    unittest.main()
