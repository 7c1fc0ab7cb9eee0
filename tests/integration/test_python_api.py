"""The Python cache API (docs/STOCK_SEMANTICS.md "Operations") with exact
return values, on single-block, bitmap, LRU and math caches, several named
caches, the legacy --cache, and 4 workers sharing values."""
import struct
import threading
import unittest

from harness import Uwsgi, app

CACHES = [
    '--cache2', 'name=single,items=11,blocksize=64',
    '--cache2', 'name=bitmap,items=10,blocks=40,blocksize=16,bitmap=1',
    '--cache2', 'name=lru,items=4,blocksize=64,purge_lru=1',
    '--cache2', 'name=math,items=10,blocksize=64,math_initial=100',
    '--cache2', 'name=small,items=4,keysize=8,blocksize=8',
]


def q(n):
    return struct.pack('=q', n)


class PythonApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi(*CACHES, '--wsgi-file', app('ops_app.py')).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def setUp(self):
        for name in ('single', 'bitmap', 'lru', 'math', 'small'):
            self.assertIs(self.u.op('cache_clear', name), True)

    def test_takeover_banner(self):
        log = self.u.log()
        self.assertNotIn('*** Cache "', log)
        for name in ('single', 'bitmap', 'lru', 'math', 'small'):
            self.assertIn('*** ucache "%s" initialized' % name, log)
        self.assertIn('self-test passed', log)

    def test_set_get_update_del_exists(self):
        r = self.u.ops(
            ['cache_get', 'k', 'single'],
            ['cache_set', 'k', 'v', 0, 'single'],
            ['cache_set', 'k', 'v2', 0, 'single'],
            ['cache_get', 'k', 'single'],
            ['cache_update', 'k', 'w', 0, 'single'],
            ['cache_get', 'k', 'single'],
            ['cache_update', 'new', 'n', 0, 'single'],
            ['cache_exists', 'k', 'single'],
            ['cache_exists', 'nope', 'single'],
            ['cache_del', 'k', 'single'],
            ['cache_del', 'k', 'single'],
            ['cache_get', 'k', 'single'],
            ['cache_get', 'new'],            # default cache = first --cache2
        )
        self.assertEqual(r, [None, True, None, b'v', True, b'w', True, True, None,
                             True, None, None, b'n'])

    def test_refused_inputs(self):
        r = self.u.ops(
            ['cache_set', '', 'v', 0, 'single'],          # empty key
            ['cache_set', 'e', '', 0, 'single'],          # empty value
            ['cache_set', 'x' * 64, 'v', 0, 'single'],    # key <= 2048: fine
            ['cache_set', 'k8', b'\x00' * 64, 0, 'single'],   # == blocksize
            ['cache_set', 'k9', b'\x00' * 65, 0, 'single'],   # > blocksize
            ['cache_set', 'kkkkkkkk', 'v', 0, 'small'],   # == keysize
            ['cache_set', 'kkkkkkkkk', 'v', 0, 'small'],  # > keysize
            ['cache_get', 'k8', 'single'],
            ['cache_set', 'k', 'v', 0, 'nosuchcache'],
            ['cache_get', 'k', 'nosuchcache'],
            ['cache_exists', 'k', 'nosuchcache'],
            ['cache_del', 'k', 'nosuchcache'],
            ['cache_clear', 'nosuchcache'],
        )
        self.assertEqual(r, [None, None, True, True, None, True, None, b'\x00' * 64,
                             None, None, None, None, None])

    def test_usable_items_is_items_minus_one(self):
        r = self.u.ops(*[['cache_set', 'k%d' % i, 'v', 0, 'single'] for i in range(11)])
        self.assertEqual(r, [True] * 10 + [None])
        keys = self.u.op('cache_keys', 'single')
        self.assertEqual(sorted(keys), sorted(b'k%d' % i for i in range(10)))

    def test_keys_and_clear(self):
        self.u.ops(['cache_set', 'a', '1', 0, 'single'], ['cache_set', 'b', '2', 0, 'single'])
        self.assertEqual(sorted(self.u.op('cache_keys', 'single')), [b'a', b'b'])
        self.assertEqual(self.u.op('cache_keys', 'math'), [])
        self.assertEqual(self.u.op('cache_keys', 'nosuchcache'), ('EXC', 'ValueError'))
        self.assertEqual(self.u.op('cache_keys', 'x@127.0.0.1:1'), ('EXC', 'ValueError'))
        self.assertIs(self.u.op('cache_clear', 'single'), True)
        self.assertEqual(self.u.op('cache_keys', 'single'), [])

    def test_math(self):
        r = self.u.ops(
            ['cache_num', 'n', 'math'],
            ['cache_inc', 'n', 5, 0, 'math'],        # math_initial 100 + 5
            ['cache_num', 'n', 'math'],
            ['cache_dec', 'n', 2, 0, 'math'],
            ['cache_mul', 'n', 3, 0, 'math'],
            ['cache_div', 'n', 10, 0, 'math'],
            ['cache_get', 'n', 'math'],
            ['cache_div', 'n', 0, 0, 'math'],        # division by zero gives 0
            ['cache_num', 'n', 'math'],
            ['cache_inc', 'n', -7, 0, 'math'],
            ['cache_num', 'n', 'math'],
            ['cache_set', 's', 'abc', 0, 'math'],
            ['cache_inc', 's', 1, 0, 'math'],        # not an 8-byte int64 (stock
                                                     # bug: reads past the value)
            ['cache_num', 's', 'math'],
            ['cache_inc', 'd'],                      # default cache, delta 1
            ['cache_num', 'd'],
        )
        self.assertEqual(r, [0, True, 105, True, True, True, q(30), True, 0, True, -7,
                             True, None, 0, True, 1])

    def test_bitmap(self):
        r = self.u.ops(
            ['cache_set', 'big', b'x' * 640, 0, 'bitmap'],   # blocksize x blocks
            ['cache_set', 'more', 'y', 0, 'bitmap'],         # no block left
            ['cache_del', 'big', 'bitmap'],
            ['cache_set', 'big', b'x' * 641, 0, 'bitmap'],
            ['cache_set', 'a', b'a' * 33, 0, 'bitmap'],      # 3 blocks
            ['cache_set', 'b', b'b' * 16, 0, 'bitmap'],      # 1 block
            ['cache_get', 'a', 'bitmap'],
            ['cache_update', 'a', b'c' * 100, 0, 'bitmap'],
            ['cache_get', 'a', 'bitmap'],
            ['cache_get', 'b', 'bitmap'],
        )
        self.assertEqual(r, [True, None, True, None, True, True, b'a' * 33, True,
                             b'c' * 100, b'b' * 16])

    def test_lru_eviction_order(self):
        r = self.u.ops(
            ['cache_set', 'a', '1', 0, 'lru'],
            ['cache_set', 'b', '2', 0, 'lru'],
            ['cache_set', 'c', '3', 0, 'lru'],
            ['cache_get', 'a', 'lru'],               # order now b, c, a
            ['cache_set', 'd', '4', 0, 'lru'],       # evicts b
            ['cache_exists', 'b', 'lru'],
            ['cache_get', 'c', 'lru'],               # order a, d, c
            ['cache_set', 'e', '5', 0, 'lru'],       # evicts a
            ['cache_exists', 'a', 'lru'],
        )
        self.assertEqual(r, [True, True, True, b'1', True, None, b'3', True, None])
        self.assertEqual(sorted(self.u.op('cache_keys', 'lru')), [b'c', b'd', b'e'])

    def test_named_caches_are_separate(self):
        r = self.u.ops(
            ['cache_set', 'k', 's', 0, 'single'],
            ['cache_set', 'k', 'l', 0, 'lru'],
            ['cache_get', 'k', 'single'],
            ['cache_get', 'k', 'lru'],
            ['cache_get', 'k', 'math'],
            ['cache_clear', 'lru'],
            ['cache_get', 'k', 'single'],
            ['cache_get', 'k', 'lru'],
        )
        self.assertEqual(r, [True, True, b's', b'l', None, True, b's', None])

    def test_cache_names_resolve_whatever_the_order(self):
        """api.c remembers the last caches each thread found by name: every
        name still resolves to its own cache, in any order.  The names come
        out of json.loads as fresh str objects, so the same address is
        reused for other names (the memo must compare names, not pointers);
        a cycle of five names defeats the memo; a near miss ('singl',
        'single2'), '' (the default cache), an unknown name and 'single@'
        (remote, no address) resolve as the stock cache does."""
        names = ['single', 'bitmap', 'lru', 'math', 'small']
        self.assertEqual(self.u.ops(*[['cache_set', 'who', n, 0, n] for n in names]),
                         [True] * len(names))
        order = ['single', 'single', 'lru', 'single', 'lru', 'math', 'single', 'math', 'lru',
                 'bitmap', 'small', 'single', 'lru', 'math', 'bitmap', 'small', 'small']
        queries = order + ['singl', 'single2', '', 'nosuchcache', 'single@', 'single']
        r = self.u.ops(*[['cache_get', 'who', n] for n in queries])
        expect = [n.encode() for n in order] + [None, None, b'single', None, None, b'single']
        self.assertEqual(r, expect)
        # the same through set / exists / del / clear
        r = self.u.ops(['cache_update', 'w', 'x', 0, 'math'], ['cache_exists', 'w', 'lru'],
                       ['cache_exists', 'w', 'math'], ['cache_del', 'w', 'lru'],
                       ['cache_del', 'w', 'math'], ['cache_clear', 'single'],
                       ['cache_get', 'who', 'single'], ['cache_get', 'who', 'lru'])
        self.assertEqual(r, [True, None, True, None, True, True, None, b'lru'])

    def test_oversized_inputs_do_not_flood_the_log(self):
        before = self.u.log().count('\n')
        ops = []
        for _ in range(100):
            ops += [['cache_set', 'k' * 3000, 'v', 0, 'single'],
                    ['cache_set', 'k', b'v' * 100000, 0, 'single'],
                    ['cache_update', 'k' * 9, 'v', 0, 'small'],
                    ['cache_get', 'k' * 3000, 'single'],
                    ['cache_inc', 'k' * 3000, 1, 0, 'math']]
        self.assertEqual(self.u.ops(*ops), [None, None, None, None, None] * 100)
        self.assertLessEqual(self.u.log().count('\n') - before, 2)


class LegacyCache(unittest.TestCase):
    def test_legacy_cache_is_default(self):
        with Uwsgi('--cache', '5', '--cache-blocksize', '128',
                   '--cache2', 'name=other,items=3',
                   '--wsgi-file', app('ops_app.py')) as u:
            r = u.ops(
                ['cache_set', 'k', 'v'],
                ['cache_get', 'k'],
                ['cache_get', 'k', 'default'],
                ['cache_get', 'k', 'other'],
                ['cache_set', 'big', b'b' * 128],
                ['cache_set', 'big2', b'b' * 129],
                ['cache_set', 'k3', 'v'],
                ['cache_set', 'k4', 'v'],
                ['cache_set', 'k5', 'v'],        # 5 items -> 4 usable
            )
            self.assertEqual(r, [True, b'v', b'v', None, True, None, True, True, None])
            self.assertIn('*** ucache "default" initialized', u.log())
            self.assertNotIn('*** Cache "', u.log())


class Workers(unittest.TestCase):
    def test_four_workers_share_values(self):
        with Uwsgi('--master', '--processes', '4', '--cache2', 'name=s,items=100',
                   '--wsgi-file', app('ops_app.py')) as u:
            self.assertIs(u.op('cache_set', 'shared', 'hello', 0, 's'), True)
            results, lock = [], threading.Lock()

            def hit():
                r = u.ops(['sleep', 0.05], ['worker_id'], ['cache_get', 'shared', 's'],
                          ['cache_inc', 'counter', 1, 0, 's'])
                with lock:
                    results.append(r)
            threads = [threading.Thread(target=hit) for _ in range(24)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(len(results), 24)
            self.assertGreaterEqual(len({r[1] for r in results}), 2)
            self.assertEqual({r[2] for r in results}, {b'hello'})
            self.assertEqual(u.op('cache_num', 'counter', 's'), 24)


if __name__ == '__main__':
    unittest.main()
