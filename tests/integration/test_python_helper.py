"""ucache.Cache: helper_contract.py run inside uwsgi (uwsgi.cache_* and
the ucache_* RPC functions) and outside it (the in-process fallback), with
identical observations; plus the name@host:port wire client from outside."""
import json
import os
import sys
import unittest

from harness import ROOT, Uwsgi, app, run_to_exit

sys.path.insert(0, os.path.join(ROOT, 'python'))
import helper_contract  # noqa: E402
import ucache  # noqa: E402

CACHES = ('--cache2', 'name=h,items=100', '--cache2', 'name=h2,items=10')


def run_local():
    """Every contract test in this process (the fallback); name -> (ok, detail, seen)."""
    out = {}
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(helper_contract.HelperContract)
    for t in suite:
        r = unittest.TestResult()
        t.run(r)
        detail = '\n'.join(tb for _, tb in r.failures + r.errors)
        out[t._testMethodName] = (r.wasSuccessful(), detail, list(helper_contract.SEEN.get(t._testMethodName, [])))
    return out


class Helper(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi(*CACHES, '--enable-threads', '--env', 'UCACHE_CONTRACT=helper_contract',
                      '--wsgi-file', app('contract_app.py')).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def test_fallback_outside_uwsgi(self):
        self.assertFalse(ucache.IN_UWSGI)
        for name, (ok, detail, _) in run_local().items():
            self.assertTrue(ok, '%s (fallback): %s' % (name, detail))

    def test_inside_uwsgi_same_observations_as_fallback(self):
        local = run_local()
        names = json.loads(self.u.get('/list'))
        self.assertEqual(sorted(n.split('.')[1] for n in names), sorted(local))
        self.assertGreaterEqual(len(names), 14)
        for name in names:
            r = json.loads(self.u.get('/run/' + name))
            short = name.split('.')[1]
            self.assertTrue(r['ok'], '%s (uwsgi): %s\n%s' % (name, r['detail'], self.u.log()))
            self.assertEqual(r['seen'], local[short][2], short)
            self.assertTrue(r['seen'], short)

    def test_in_uwsgi_flag(self):
        self.assertIs(self.u.op('cache_exists', 'nothing', 'h'), None)  # the instance is up
        body = json.loads(self.u.get('/run/HelperContract.test_add'))
        self.assertTrue(body['ok'], body['detail'])


class OnStock(unittest.TestCase):
    """On stock uWSGI (no ucache plugin) the plain operations work; the
    atomic ones raise CacheError naming the missing RPC function."""

    def test_plain_operations_on_the_stock_cache(self):
        rc, out = run_to_exit(['--cache2', 'name=first,items=10', '--pyrun', app('stock_helper.py')],
                              ucache=False)
        line = [l for l in out.splitlines() if l.startswith('RESULT ')]
        self.assertEqual(len(line), 1, out)
        got = json.loads(line[0][7:])
        self.assertEqual(got[:11], [True, {'b': 1}, {'b': 1}, False, True, ['a', 'n2'], True, 1, 'dflt',
                                    True, False])
        self.assertEqual(got[11][0], 'ENOENT')
        self.assertIn('ucache_gets', got[11][1])


class Wire(unittest.TestCase):
    """ucache.Cache('name@127.0.0.1:PORT') from outside uwsgi: modifier2 17
    for plain commands, RPC (modifier1 173, --plugin rpc) for the rest."""

    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi(*CACHES, '--wsgi-file', app('ops_app.py'), plugins=('python3', 'rpc'),
                      socket_=True).__enter__()
        cls.c = ucache.Cache('h@127.0.0.1:%d' % cls.u.uport)

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def test_plain_commands(self):
        c = self.c
        c.clear()
        self.assertTrue(c.set('k', {'x': 1}))
        self.assertEqual(c.get('k'), {'x': 1})
        self.assertEqual(self.u.op('cache_exists', 'k', 'h'), True)
        self.assertIn('k', c)
        self.assertTrue(c.delete('k'))
        self.assertFalse(c.delete('k'))
        self.assertIsNone(c.get('k'))
        with self.assertRaises(ValueError):
            c.keys

    def test_atomic_operations_over_rpc(self):
        c = self.c
        c.clear()
        self.assertTrue(c.add('a', 1))
        self.assertFalse(c.add('a', 2))
        v, ver = c.gets('a')
        self.assertEqual(v, 1)
        self.assertTrue(c.cas('a', 2, ver))
        self.assertFalse(c.cas('a', 3, ver))
        self.assertEqual(c.get('a'), 2)
        self.assertEqual(c.incr_value('n', 2, initial=10, timeout=60), 12)
        self.assertTrue(c.incr('n', 3))
        self.assertTrue(c.mul('n', 2))
        self.assertEqual(c.get('n', as_int=True), 30)
        self.assertEqual(c.get_or_set('g', lambda: 'computed'), 'computed')
        self.assertEqual(c.get_many(['a', 'g', 'zz']), {'a': 2, 'g': 'computed'})
        self.assertEqual(self.u.op('cache_get', 'a', 'h'), c.get('a', preserve_bytes=True))

    def test_unreachable_server_is_an_error(self):
        from harness import free_port
        c = ucache.Cache('h@127.0.0.1:%d' % free_port())
        with self.assertRaises(OSError):
            c.get('k')


if __name__ == '__main__':
    unittest.main()
