"""The cache tells the truth (issue 20): the stats' hits/miss count the
application's lookups only, one per operation on every path (Python,
Django, RPC, modifier1 111, remote, cache_page, the Accelerator); a write
refused for its size is logged and counted (too_large); a cache name that
does not exist is the same clear error for every operation; outside uWSGI
the in-process fallback warns (or, with fallback=False, refuses); a remote
server without --plugin rpc is named as such; the Accelerator says what it
did (X-Ucache) and why it did not store a page (a DEBUG line)."""
import json
import os
import subprocess
import sys
import threading
import unittest

from harness import (STOCK, Uwsgi, app, free_port, parse_vars, poll, raw_exchange, stats_json, uwsgi_packet,
                     uwsgi_vars)

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'python')
sys.path.insert(0, PYTHON)

try:
    import django  # noqa: F401  (Debian's python3-django)
    HAVE_DJANGO = True
except ImportError:
    HAVE_DJANGO = False

CACHES = ('--cache2', 'name=m,items=100,blocksize=65536', '--cache2', 'name=aux,items=100',
          '--cache2', 'name=pages,items=100,blocksize=65536')


@unittest.skipIf(STOCK, 'ucache behaviour')
@unittest.skipUnless(HAVE_DJANGO, 'python3-django not installed')
class Counters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sport = free_port()
        cls.u = Uwsgi(*CACHES, '--master', '--processes', '2', '--stats', '127.0.0.1:%d' % cls.sport,
                      '--wsgi-file', app('truth_app.py'), plugins=('python3', 'rpc'),
                      socket_=True).__enter__()
        stats_json(cls.sport)

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def counts(self, cache='m'):
        c = {c['name']: c for c in stats_json(self.sport)['caches']}[cache]
        return c['hits'], c['miss']

    def delta(self, fn, cache='m'):
        """(hits, misses) that fn() added, and fn's result."""
        h0, m0 = self.counts(cache)
        r = fn()
        h1, m1 = self.counts(cache)
        return (h1 - h0, m1 - m0), r

    def py(self, *ops):
        status, _, body = self.u.request('/py', 'POST', json.dumps(ops))
        self.assertEqual(status, 200, self.u.log())
        return json.loads(body)

    def expect(self, counts, *ops, cache='m'):
        got, r = self.delta(lambda: self.py(*ops), cache)
        self.assertEqual(got, counts, (ops, r))
        return r

    def setUp(self):
        self.u.ops(['cache_clear', 'm'], ['cache_clear', 'pages'])
        self.py(['cache', 'set', 'a', 'A'], ['dj', 'set', 'd', 'D'])

    def test_bug_counters_count_internal_lookups(self):
        # ucache.Cache: a get_or_set miss counted 3 misses
        self.assertEqual(self.expect((1, 0), ['cache', 'get', 'a']), ['A'])
        self.assertEqual(self.expect((0, 1), ['cache', 'get', 'zz']), [None])
        self.assertEqual(self.expect((0, 1), ['cache', 'get_or_set', 'g', '__cb__']), ['computed'])
        self.assertEqual(self.expect((1, 0), ['cache', 'get_or_set', 'g', '__cb__']), ['computed'])
        # with stale: a get_stale, then the flight's peeks
        self.expect((0, 1), ['cache', 'get_or_set', 's', '__cb__', 60, 10, 30])
        self.expect((1, 0), ['cache', 'get_or_set', 's', '__cb__', 60, 10, 30])
        # Django: a get, a get_or_set miss (Django's own re-reads after its add), a hit
        self.assertEqual(self.expect((1, 0), ['dj', 'get', 'd']), ['D'])
        self.assertEqual(self.expect((0, 1), ['dj', 'get', 'nope']), [None])
        self.assertEqual(self.expect((0, 1), ['dj', 'get_or_set', 'dg', 'V']), ['V'])
        self.assertEqual(self.expect((1, 0), ['dj', 'get_or_set', 'dg', 'W']), ['V'])

    def test_rpc_lookups_count_one_each_and_peeks_none(self):
        def call(*args):
            return self.u.op('call', *[a.encode() for a in args])
        (d, r) = self.delta(lambda: call('ucache_get_many', 'm', 'a', 'zz'))
        self.assertEqual((d, r), ((1, 1), b'Y1:A-'))
        self.assertEqual(self.delta(lambda: call('ucache_lookup', 'm', 'zz', 'a')), ((1, 0), b'Y1:A'))
        self.assertEqual(self.delta(lambda: call('ucache_lookup', 'm', 'zz', 'zy')), ((0, 1), b'N'))
        self.assertEqual(self.delta(lambda: call('ucache_peek', 'm', 'zz', 'a')), ((0, 0), b'Y1:A'))
        self.assertEqual(self.delta(lambda: call('ucache_gets', 'm', 'zz')), ((0, 1), b'N'))

    def test_modifier1_111_and_remote_lookups_count_one_each(self):
        def get(m2, key, cache=None):
            pairs = [('key', key)] + ([('cache', cache)] if cache else [])
            if m2 == 17:
                pairs = [('cmd', 'get')] + pairs
            payload = key.encode() if m2 == 0 else uwsgi_vars(pairs)
            return raw_exchange(self.u.uport, uwsgi_packet(111, m2, payload))
        self.assertEqual(self.delta(lambda: get(17, 'a', 'm'))[0], (1, 0))
        self.assertEqual(self.delta(lambda: get(17, 'zz', 'm')), ((0, 1), b''))
        self.assertEqual(self.delta(lambda: get(4, 'a', 'm'))[0], (1, 0))
        self.assertEqual(self.delta(lambda: get(4, 'zz', 'm'))[0], (0, 1))
        import ucache
        remote = ucache.Cache('m@127.0.0.1:%d' % self.u.uport, serializer='raw')
        self.assertEqual(self.delta(lambda: remote.get('a')), ((1, 0), b'A'))
        self.assertEqual(self.delta(lambda: remote.get('zz')), ((0, 1), None))

    def test_concurrent_django_get_or_set_misses_count_one_miss_each(self):
        self.concurrent_misses('/gos?key=race&n=2')

    def test_concurrent_cache_get_or_set_misses_count_one_miss_each(self):
        self.concurrent_misses('/gos?key=race2&n=2&lib=cache')

    def concurrent_misses(self, path):
        out = []

        def one():
            status, _, body = self.u.request(path)
            out.append((status, json.loads(body)['value'] if status == 200 else body))
        threads = [threading.Thread(target=one) for _ in range(2)]
        d, _ = self.delta(lambda: [t.start() for t in threads] and [t.join() for t in threads])
        self.assertEqual(len(out), 2)
        self.assertEqual(out[0][1], out[1][1], out)   # one computed, the other waited for it
        self.assertEqual(d, (0, 2))

    def test_cache_page_hit_and_miss(self):
        # Django's cache middleware reads the header list, then the page: a
        # miss is one get (no header list yet), a hit two
        status, _, body = self.u.request('/page/x')
        self.assertEqual((status, body), (200, b'page /page/x'))
        d1, _ = self.delta(lambda: self.u.request('/page/y'), 'pages')
        d2, r = self.delta(lambda: self.u.request('/page/y'), 'pages')
        self.assertEqual(r[2], b'page /page/y')
        self.assertEqual((d1, d2), ((0, 1), (2, 0)))

    def test_accelerator_counts_one_lookup_per_page_and_says_what_it_did(self):
        d1, r1 = self.delta(lambda: self.u.request('/accel/p?cache_for=60', headers={'Accept-Encoding': 'gzip'}),
                            'pages')
        d2, r2 = self.delta(lambda: self.u.request('/accel/p?cache_for=60', headers={'Accept-Encoding': 'gzip'}),
                            'pages')
        self.assertEqual((r1[1].get('X-Ucache'), r2[1].get('X-Ucache')), ('MISS', 'HIT'))
        self.assertEqual(r2[2], b'rendered /accel/p')
        self.assertEqual((d1, d2), ((0, 1), (1, 0)))
        # an Accept-Encoding variant: one lookup, found in its second key
        self.u.request('/accel/v?cache_for=60&vary=Accept-Encoding', headers={'Accept-Encoding': 'br'})
        d3, r3 = self.delta(lambda: self.u.request('/accel/v?cache_for=60&vary=Accept-Encoding',
                                                   headers={'Accept-Encoding': 'br'}), 'pages')
        self.assertEqual((d3, r3[1].get('X-Ucache')), ((1, 0), 'HIT'))

    def test_bug_accelerator_never_says_why_a_page_is_not_cached(self):
        _, h, _ = self.u.request('/accel/u?cache_for=60&vary=User-Agent')
        self.assertEqual(h.get('X-Ucache'), 'BYPASS (Vary: User-Agent)')
        poll(lambda: 'ucache.wsgi DEBUG not cached: GET /accel/u?cache_for=60&vary=User-Agent: Vary: User-Agent'
             in self.u.log(), 5, what='the debug line')
        _, h, _ = self.u.request('/accel/u')
        self.assertEqual(h.get('X-Ucache'), 'BYPASS (accelerator.cache_for not set)')
        # bypass_cookies: a session's request bypasses, an anonymous page
        # varying on Cookie is cached
        _, h, _ = self.u.request('/accel/c?cache_for=60&vary=Cookie', headers={'Cookie': 'a=1; sessionid=x'})
        self.assertEqual(h.get('X-Ucache'), 'BYPASS (cookie sessionid)')
        self.assertEqual(self.u.request('/accel/c?cache_for=60&vary=Cookie')[1].get('X-Ucache'), 'MISS')
        self.assertEqual(self.u.request('/accel/c?cache_for=60&vary=Cookie')[1].get('X-Ucache'), 'HIT')
        self.assertEqual(self.u.request('/accel/c?cache_for=60&vary=Cookie',
                                        headers={'Cookie': 'sessionid=y'})[1].get('X-Ucache'),
                         'BYPASS (cookie sessionid)')

    def test_bug_too_large_value_vanishes_silently(self):
        def too_large():
            return {c['name']: c for c in stats_json(self.sport)['caches']}['m']['too_large']
        before = too_large()
        self.assertEqual(self.py(['dj', 'set', 'big', 'x' * 100000], ['dj', 'get', 'big']), [None, None])
        self.assertEqual(too_large(), before + 1)
        poll(lambda: 'ucache: cache "m": a write refused, too large: key' in self.u.log(), 5, what='the log line')
        self.assertRegex(self.u.log(), r'ucache: cache "m": a write refused, too large: key \d+ bytes, value '
                         r'100\d\d\d bytes \(limits: keysize 2048, value 65536 bytes\)')

    def test_bug_unknown_cache_fails_differently_per_operation(self):
        want = ('CacheError: ENOENT no such local cache "mycahce" (this instance has "m", "aux", "pages")')
        for op in ('set', 'get', 'get_or_set'):
            self.assertEqual(json.loads(self.u.get('/typo?op=' + op)), {'exc': want}, op)
            self.assertEqual(json.loads(self.u.get('/typo_django?op=' + op)), {'exc': want}, op)


FALLBACK_SCRIPT = r'''
import logging, sys, warnings
sys.path.insert(0, %(python)r)
logging.basicConfig(stream=sys.stdout, format='LOG %%(name)s %%(levelname)s %%(message)s')
import ucache
from ucache.django import UcacheCache
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    a = ucache.Cache('mycache'); a.set('k', 1)
    ucache.Cache('mycache').get('k')
    d = UcacheCache('other', {})
print('WARNINGS', len(w), [str(x.message)[:60] for x in w])
for c in (ucache.Cache('mycache', fallback=False), UcacheCache('mycache', {'OPTIONS': {'fallback': False}})):
    try:
        c.get('k')
        print('NO ERROR')
    except ucache.CacheError as e:
        print('REFUSED', e)
'''


@unittest.skipUnless(HAVE_DJANGO, 'python3-django not installed')
class Fallback(unittest.TestCase):
    def test_bug_fallback_outside_uwsgi_is_silent(self):
        out = subprocess.run([sys.executable, '-c', FALLBACK_SCRIPT % {'python': PYTHON}], capture_output=True,
                             text=True, timeout=60, env=dict(os.environ, PYTHONWARNINGS='ignore'))
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertIn("WARNINGS 2 [\"ucache: not running inside uWSGI: cache 'mycache' is an in-p\", "
                      "\"ucache: not running inside uWSGI: cache 'other' is an in-pro\"]", lines)
        self.assertEqual(len([x for x in lines if x.startswith('LOG ucache WARNING ucache: not running')]), 2)
        refused = [x for x in lines if x.startswith('REFUSED')]
        self.assertEqual(len(refused), 2, out.stdout)
        for x in refused:
            self.assertIn("cache 'mycache': not running inside uWSGI and fallback=False", x)
            self.assertIn('name@host:port', x)


@unittest.skipIf(STOCK, 'ucache behaviour')
class RemoteWithoutRpc(unittest.TestCase):
    def test_bug_remote_without_plugin_rpc_blames_the_ucache_plugin(self):
        import ucache
        with Uwsgi('--cache2', 'name=m,items=10', '--wsgi-file', app('ops_app.py'), socket_=True) as u:
            c = ucache.Cache('m@127.0.0.1:%d' % u.uport)
            self.assertTrue(c.set('k', 1))                 # modifier1 111 works
            with self.assertRaises(ucache.CacheError) as e:
                c.incr_value('n', 1, initial=0)
            self.assertIn('the server answers the cache protocol (modifier1 111) but does not load '
                          "uWSGI's rpc plugin: add --plugin rpc", str(e.exception))
            self.assertNotIn('is the ucache plugin loaded', str(e.exception))
            # the same from inside another uwsgi (uwsgi.rpc)
            with Uwsgi(*CACHES, '--wsgi-file', app('truth_app.py')) as client:
                got = json.loads(client.get('/remote_incr?addr=127.0.0.1:%d' % u.uport))
            self.assertIn('exc', got)
            self.assertIn("does not load uWSGI's rpc plugin: add --plugin rpc", got['exc'])


if __name__ == '__main__':
    unittest.main()
