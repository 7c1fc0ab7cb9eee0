"""The HTTP response cache with tags (issue 12, seed 004): ucache.wsgi's
Accelerator in real uwsgi (2 workers x 10 threads), and nginx answering its
pages straight from ucache (modifier1 111, modifier2 4) with the fallback to
the app.  apps/accel_app.py counts how often the app renders each URL, so
every test checks who answered, not only what.

wsgi-accelerator's own behaviours: cached within the TTL and re-rendered
after, POST never cached, 401 not cached, a custom 2xx cached, Set-Cookie not
cached, ETag + 304.  Then: invalidating one tag re-renders exactly the
entries carrying it; an invalidation landing while a page renders leaves no
stale page; 20 concurrent misses render once; HEAD; Vary; invalidation from
another machine over modifier2 17 (write-protected); nginx direct hits
without the app, a miss once the page's tag is invalidated, and a 304 from
ucache itself."""
import concurrent.futures
import http.client
import os
import sys
import tempfile
import threading
import time
import unittest

from harness import (NGINX, ROOT, STOCK, Nginx, Uwsgi, app, free_port, need, poll, raw_exchange,
                     run_to_exit, stats_json, stock_plugin, uwsgi_packet, uwsgi_vars)

sys.path.insert(0, os.path.join(ROOT, 'python'))
from ucache.wsgi import invalidate_tags  # noqa: E402  (remote invalidation: plain Python)

PYTHONPATH = os.path.join(ROOT, 'python')


def accel(*extra, env=None):
    return Uwsgi('--master', '--processes', '2', '--threads', '10',
                 '--cache2', 'name=pages,items=2000,blocksize=65536',
                 '--cache2', 'name=counters,items=2000,blocksize=64',
                 '--pythonpath', PYTHONPATH, '--wsgi-file', app('accel_app.py'),
                 *extra, socket_=True, env=env)


class Client:
    def __init__(self, port):
        self.port = port

    def req(self, path, method='GET', headers=None, body=None):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


@unittest.skipIf(STOCK, 'needs ucache (tags, the Accelerator)')
class Accelerator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = accel().__enter__()
        cls.c = Client(cls.u.port)

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def get(self, path, **kw):
        return self.c.req(path, **kw)

    def calls(self, uri):
        from urllib.parse import quote
        return int(self.c.req('/_calls?u=' + quote(uri, safe=''))[2])

    def invalidate(self, tags, how='/_invalidate'):
        self.assertEqual(self.c.req(how, 'POST', body=tags)[2], b'ok')

    # -- wsgi-accelerator's behaviours
    def test_cached_within_ttl_and_rendered_again_after(self):
        u = '/ttl?cache_for=2'
        first = self.get(u)[2]
        self.assertIn(b'render #1', first)
        self.assertEqual(self.get(u)[2], first)
        self.assertEqual(self.calls(u), 1)
        poll(lambda: b'render #2' in self.get(u)[2], 6, 0.1, 'the page to be rendered again after its TTL')

    def test_post_never_cached(self):
        u = '/post?cache_for=60'
        self.assertIn(b'render #1', self.get(u, method='POST', body=b'x')[2])
        self.assertIn(b'render #2', self.get(u, method='POST', body=b'x')[2])
        self.assertIn(b'GET /post?cache_for=60 render #3', self.get(u)[2])   # a POST stored nothing

    def test_401_not_cached(self):
        u = '/401?cache_for=60&status=401+Unauthorized'
        self.assertEqual(self.get(u)[0], 401)
        self.assertEqual(self.get(u)[0], 401)
        self.assertEqual(self.calls(u), 2)

    def test_custom_2xx_cached(self):
        u = '/203?cache_for=60&status=203+Non-Authoritative+Information'
        self.assertEqual(self.get(u)[0], 203)
        status, _, body = self.get(u)
        self.assertEqual((status, self.calls(u)), (203, 1))
        self.assertIn(b'render #1', body)

    def test_set_cookie_not_cached(self):
        u = '/cookie?cache_for=60&cookie=1'
        self.assertEqual(self.get(u)[1]['set-cookie'], 'session=1')
        self.get(u)
        self.assertEqual(self.calls(u), 2)

    def test_cache_control_private_and_no_store_not_cached(self):
        for cc in ('private', 'no-store', 'max-age=5,+private'):
            u = '/cc-%s?cache_for=60&cc=%s' % (cc[:3], cc)
            self.get(u)
            self.get(u)
            self.assertEqual(self.calls(u), 2, cc)

    def test_etag_and_304(self):
        u = '/etag?cache_for=60'
        status, headers, body = self.get(u)
        etag = headers['etag']
        self.assertTrue(etag.startswith('"') and etag.endswith('"') and len(etag) == 34, etag)
        status, headers, body = self.get(u, headers={'If-None-Match': etag})
        self.assertEqual((status, body, headers['etag']), (304, b'', etag))
        self.assertEqual(self.get(u, headers={'If-None-Match': 'W/%s, "x"' % etag})[0], 304)
        self.assertEqual(self.get(u, headers={'If-None-Match': '"other"'})[0], 200)
        self.assertEqual(self.calls(u), 1)

    # -- tags
    def test_invalidating_one_tag_renders_again_exactly_its_entries(self):
        pages = {'/t1?cache_for=60&tags=a1': True, '/t2?cache_for=60&tags=a1,b1': True,
                 '/t3?cache_for=60&tags=b1,c1': False, '/t4?cache_for=60&tags=c1': False,
                 '/t5?cache_for=60': False}
        for p in pages:
            self.get(p)
            self.get(p)
        self.assertEqual([self.calls(p) for p in pages], [1] * 5)
        self.invalidate('a1')
        for p in pages:
            self.get(p)
        self.assertEqual([self.calls(p) for p in pages], [2 if hit else 1 for hit in pages.values()])
        self.invalidate('c1', how='/_invalidate_fn')       # ucache.wsgi.invalidate_tags()
        for p in pages:
            self.get(p)
        self.assertEqual([self.calls(p) for p in pages], [2, 2, 2, 2, 1])

    def test_invalidation_during_render_leaves_no_stale_page(self):
        u = '/race?cache_for=60&tags=race&sleep=1'
        slow = threading.Thread(target=self.get, args=(u,))
        slow.start()
        time.sleep(0.3)           # the render is under way (it sleeps 1 s before counting)
        self.invalidate('race')   # lands while it renders
        slow.join()
        self.assertEqual(self.calls(u), 1)
        body = self.get(u)[2]     # the page stored by that render is stale: rendered again
        self.assertIn(b'render #2', body)
        self.assertEqual(self.get(u)[2], body)
        self.assertEqual(self.calls(u), 2)

    def test_twenty_concurrent_misses_render_once(self):
        u = '/herd?cache_for=60&sleep=0.5'
        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            bodies = list(ex.map(lambda _: self.get(u), range(20)))
        self.assertEqual({b[0] for b in bodies}, {200})
        self.assertEqual(len({b[2] for b in bodies}), 1)
        self.assertEqual(self.calls(u), 1)

    def test_a_renderer_killed_holding_the_lock_does_not_wedge_the_url(self):
        u = '/crash?cache_for=60&crash=1'
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            self.get(u)                       # its worker dies mid-render, lock held
        t0 = time.monotonic()
        status, _, body = self.get(u)         # a waiter finds the owner dead, breaks the lock
        self.assertEqual(status, 200)
        self.assertIn(b'render #1', body)
        self.assertLess(time.monotonic() - t0, 10)   # not the 30 s lock deadline

    def test_uncacheable_concurrent_misses_all_answered(self):
        u = '/herd401?cache_for=60&sleep=0.2&status=401+Unauthorized'
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            statuses = list(ex.map(lambda _: self.get(u)[0], range(6)))
        self.assertEqual(statuses, [401] * 6)
        self.assertEqual(self.calls(u), 6)

    def test_head_answered_from_a_cached_get(self):
        u = '/head?cache_for=60'
        status, headers, body = self.get(u)
        status2, headers2, body2 = self.get(u, method='HEAD')
        self.assertEqual((status2, body2), (200, b''))
        self.assertEqual((headers2['etag'], headers2['content-length']), (headers['etag'], str(len(body))))
        self.assertEqual(self.calls(u), 1)
        # a HEAD miss goes to the app and stores nothing
        v = '/head-first?cache_for=60'
        self.assertEqual(self.get(v, method='HEAD')[0], 200)
        self.assertIn(b'render #2', self.get(v)[2])

    def test_vary_accept_encoding_honoured(self):
        u = '/vary?cache_for=60&vary=Accept-Encoding'
        gz = self.get(u, headers={'Accept-Encoding': 'gzip'})[2]
        ident = self.get(u, headers={'Accept-Encoding': 'identity'})[2]
        self.assertIn(b'ae=gzip', gz)
        self.assertIn(b'ae=identity', ident)
        self.assertEqual(self.get(u, headers={'Accept-Encoding': 'gzip'})[2], gz)
        self.assertEqual(self.get(u, headers={'Accept-Encoding': 'identity'})[2], ident)
        self.assertEqual(self.calls(u), 2)

    def test_other_vary_not_cached(self):
        for v in ('Cookie', 'Accept-Encoding,+User-Agent', '*'):
            u = '/vary-%s?cache_for=60&vary=%s' % (v[:3], v)
            self.get(u)
            self.get(u)
            self.assertEqual(self.calls(u), 2, v)

    def test_invalidation_over_the_wire(self):
        u = '/wire?cache_for=60&tags=wire'
        self.get(u)
        self.get(u)
        self.assertEqual(invalidate_tags('pages@127.0.0.1:%d' % self.u.uport, ['wire']), 1)
        self.assertIn(b'render #2', self.get(u)[2])
        import ucache                                # the package re-exports it
        self.assertEqual(ucache.invalidate_tags('pages@127.0.0.1:%d' % self.u.uport, 'wire'), 1)
        self.assertIn(b'render #3', self.get(u)[2])

    def test_bad_tags_refused_with_a_clear_error(self):
        with self.assertRaises(ValueError):
            invalidate_tags('pages@127.0.0.1:%d' % self.u.uport, ['a,b'])
        with self.assertRaises(RuntimeError):
            invalidate_tags('nosuchcache@127.0.0.1:%d' % self.u.uport, ['x'])


@unittest.skipIf(STOCK, 'needs ucache (tags)')
class UnixSocketInvalidation(unittest.TestCase):
    def test_bug_invalidate_tags_unix_socket(self):
        """invalidate_tags('pages@/path') raised ValueError: its own client
        parsed every address as host:port (Cache('name@/path') worked)."""
        d = tempfile.mkdtemp(prefix='ucache-http-')
        path = os.path.join(d, 'cache.sock')
        with accel('--socket', path) as u:
            c = Client(u.port)
            uri = '/unix?cache_for=60&tags=unix'
            c.req(uri)
            self.assertIn(b'render #1', c.req(uri)[2])
            self.assertEqual(invalidate_tags('pages@' + path, ['unix']), 1)
            self.assertIn(b'render #2', c.req(uri)[2])


@unittest.skipIf(STOCK, 'needs ucache')
class ConfigErrors(unittest.TestCase):
    def test_unknown_cache_is_a_clear_error_at_load(self):
        rc, out = run_to_exit(['--master', '--http-socket', '127.0.0.1:%d' % free_port(), '--need-app',
                               '--cache2', 'name=pages,items=10', '--pythonpath', PYTHONPATH,
                               '--wsgi-file', app('accel_bad_cache_app.py')])
        self.assertNotEqual(rc, 0)
        self.assertIn("ucache.wsgi.Accelerator: no local cache 'nosuch'", out)


@unittest.skipIf(STOCK, 'needs ucache')
class ReadonlyInvalidation(unittest.TestCase):
    def test_invalidate_is_a_write_refused_on_a_read_only_instance(self):
        with accel('--ucache-readonly') as u:
            c = Client(u.port)
            uri = '/ro?cache_for=60&tags=ro'
            c.req(uri)
            with self.assertRaises(RuntimeError):
                invalidate_tags('pages@127.0.0.1:%d' % u.uport, ['ro'])
            self.assertIn(b'render #1', c.req(uri)[2])
            self.assertIn('refused', u.log())


@unittest.skipIf(STOCK, 'needs ucache')
class Sweeper(unittest.TestCase):
    def test_the_sweeper_frees_invalidated_entries(self):
        sport = free_port()
        with accel('--stats', '127.0.0.1:%d' % sport, '--cache-expire-freq', '1') as u:
            c = Client(u.port)

            def items():
                return [x['items'] for x in stats_json(sport)['caches'] if x['name'] == 'pages'][0]
            for p in ('/s1?cache_for=600&tags=sw', '/s2?cache_for=600&tags=sw,x', '/s3?cache_for=600&tags=x'):
                c.req(p)
            self.assertEqual(items(), 3)
            c.req('/_invalidate', 'POST', body=b'sw')
            poll(lambda: items() == 1, 10, 0.1, 'the sweeper to free the 2 invalidated pages')
            self.assertIn(b'render #1', c.req('/s3?cache_for=600&tags=x')[2])


@unittest.skipIf(STOCK, 'needs ucache (tags)')
class RpcTagErrors(unittest.TestCase):
    """The tag RPC functions called with bad arguments: a clear error, and
    nothing done."""

    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi('--cache2', 'name=c,items=10', '--wsgi-file', app('ops_app.py')).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def call(self, *args):
        return self.u.op('call', *[a if isinstance(a, bytes) else a.encode() for a in args])

    def test_bug_ucache_invalidate_accepts_a_tag_with_a_comma(self):
        since = self.call('ucache_tags_now', 'c')
        self.assertEqual(self.call('ucache_invalidate', 'c', 'x', 'a,b'),
                         b'FAIL tag 2 is empty, longer than 1024 bytes or has a comma')
        self.assertEqual(self.call('ucache_tags_now', 'c'), since)     # not even x
        self.assertEqual(self.call('ucache_invalidate', 'c', 'a', 'b'), b'ok 2')
        self.assertEqual(self.call('ucache_tags_head', 'c', since, 'a,b'),
                         b'EEINVAL ucache_tags_head: a tag is empty, longer than 1024 bytes or has a comma')

    def test_bug_ucache_tags_head_non_numeric_since_answers_nothing(self):
        since = self.call('ucache_tags_now', 'c')
        self.assertEqual(self.call('ucache_tags_head', 'c', since, 'tg')[:8], b'\0UCTAGS\1')
        for bad in ('abc', '12x', '', '-1', '0', '99999999999999999999999'):
            self.assertEqual(self.call('ucache_tags_head', 'c', bad, 'tg'),
                             b'EEINVAL ucache_tags_head: SINCE is not a number from ucache_tags_now', bad)
        self.assertEqual(self.call('ucache_tags_head', 'nosuch', since, 'tg'),
                         b'EENOENT ucache_tags_head: no such cache')
        self.assertEqual(self.call('ucache_tags_head', 'c', since),
                         b'EEINVAL ucache_tags_head: usage: ucache_tags_head CACHE SINCE TAG... (1 to 64 tags)')


@unittest.skipIf(STOCK, 'needs ucache')
class StockSync(unittest.TestCase):
    def test_a_stock_node_syncing_from_ucache_gets_no_tagged_entry(self):
        geometry = 'name=c,items=100,blocksize=4096'
        with Uwsgi('--master', '--cache2', geometry, '--wsgi-file', app('ops_app.py'), socket_=True) as src:
            since = src.op('call', b'ucache_tags_now', b'c')
            head = src.op('call', b'ucache_tags_head', b'c', since, b'tg')
            self.assertEqual(head[:8], b'\0UCTAGS\1')
            self.assertEqual(src.ops(['cache_set', 'tagged', head + b'HTTP/1.1 200 OK\r\n\r\npage', 0, 'c'],
                                     ['cache_set', 'plain', b'p', 0, 'c']), [True, True])
            self.assertEqual(src.op('cache_get', 'tagged', 'c'), b'HTTP/1.1 200 OK\r\n\r\npage')
            with Uwsgi('--master', '--cache2', geometry + ',sync=127.0.0.1:%d' % src.uport,
                       '--wsgi-file', app('ops_app.py'), plugins=('python3', stock_plugin('cache')),
                       ucache=False) as dst:
                # a stock node cannot honour tags: it would serve the page after an invalidation
                self.assertEqual(dst.ops(['cache_get', 'plain', 'c'], ['cache_get', 'tagged', 'c']), [b'p', None])


@unittest.skipIf(STOCK, 'needs ucache')
class UdpReplication(unittest.TestCase):
    def test_a_tagged_entry_is_replicated_as_a_del(self):
        from test_udp import Node, udp_port
        pb = udp_port()
        with Node(udp=pb, stock=True) as b, Node(nodes=[pb]) as a:
            self.assertIs(b.op('cache_set', 'page', 'old copy', 0, 'r'), True)
            since = a.op('call', b'ucache_tags_now', b'r')
            head = a.op('call', b'ucache_tags_head', b'r', since, b'tg')
            self.assertIs(a.op('cache_update', 'page', head + b'new page', 0, 'r'), True)
            b.wait_value('page', None)       # the stock node drops its copy, gets no envelope
            self.assertIs(a.op('cache_set', 'plain', 'p', 0, 'r'), True)
            b.wait_value('plain', b'p')      # untagged values replicate as before


@unittest.skipIf(STOCK, 'needs ucache')
class StaleWhileRevalidate(unittest.TestCase):
    def test_stale_page_served_while_one_request_renders(self):
        with accel(env={'ACCEL_SWR': '30'}) as u:
            c = Client(u.port)
            uri = '/swr?cache_for=1&sleep=0.5'
            first = c.req(uri)[2]
            time.sleep(2.1)          # past cache_for, inside the stale window
            with concurrent.futures.ThreadPoolExecutor(5) as ex:
                bodies = list(ex.map(lambda _: c.req(uri)[2], range(5)))
            self.assertEqual(sum(b == first for b in bodies), 4, bodies)   # stale for all but one
            self.assertEqual(sum(b'render #2' in b for b in bodies), 1, bodies)


NGINX_RECIPE = """
location / {
    error_page 418 = @app;
    if ($request_method !~ ^(GET|HEAD)$) { return 418; }
    uwsgi_pass 127.0.0.1:%(port)d;
    uwsgi_modifier1 111;
    uwsgi_modifier2 4;
    uwsgi_param key $request_uri;
    uwsgi_param cache pages;
    uwsgi_param HTTP_IF_NONE_MATCH $http_if_none_match;
    uwsgi_pass_request_headers off;
    uwsgi_intercept_errors on;
    error_page 404 = @app;
}
location @app {
    uwsgi_pass 127.0.0.1:%(port)d;
    uwsgi_modifier1 0;
    uwsgi_modifier2 0;
    include /etc/nginx/uwsgi_params;
}
"""


@need(NGINX)
@unittest.skipIf(STOCK, 'needs ucache')
class NginxDirect(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = accel().__enter__()
        cls.n = Nginx(NGINX_RECIPE % {'port': cls.u.uport}).__enter__()
        cls.c = Client(cls.n.port)

    @classmethod
    def tearDownClass(cls):
        cls.n.__exit__(None, None, None)
        cls.u.__exit__(None, None, None)

    def calls(self, uri):
        from urllib.parse import quote
        return int(Client(self.u.port).req('/_calls?u=' + quote(uri, safe=''))[2])

    def test_hit_served_without_the_app_then_missed_once_its_tag_is_invalidated(self):
        u = '/n1?cache_for=60&tags=n1&size=8192'
        status, headers, first = self.c.req(u)      # miss: nginx falls back to the app
        self.assertEqual((status, len(first)), (200, 8192))
        self.assertEqual(self.calls(u), 1)
        for _ in range(5):                           # hits: ucache answers, the app is not called
            status, headers2, body = self.c.req(u)
            self.assertEqual((status, body), (200, first))
        self.assertEqual(headers2['etag'], headers['etag'])
        self.assertEqual(self.calls(u), 1)
        Client(self.u.port).req('/_invalidate', 'POST', body=b'n1')
        status, _, body = self.c.req(u)              # the stale hit is a miss: the app renders
        self.assertIn(b'render #2', body)
        self.assertEqual(self.calls(u), 2)
        self.assertIn(b'render #2', self.c.req(u)[2])
        self.assertEqual(self.calls(u), 2)

    def test_if_none_match_gets_304_from_ucache(self):
        u = '/n304?cache_for=60'
        etag = self.c.req(u)[1]['etag']
        status, _, body = self.c.req(u, headers={'If-None-Match': etag})
        self.assertEqual((status, body), (304, b''))
        self.assertEqual(self.calls(u), 1)
        # ucache itself answers 304 (not only nginx's not_modified filter)
        reply = raw_exchange(self.u.uport, uwsgi_packet(111, 3, uwsgi_vars(
            [('key', u), ('cache', 'pages'), ('HTTP_IF_NONE_MATCH', etag)])))
        self.assertEqual(reply, ('HTTP/1.1 304 Not Modified\r\nETag: %s\r\n\r\n' % etag).encode())
        reply = raw_exchange(self.u.uport, uwsgi_packet(111, 3, uwsgi_vars(
            [('key', u), ('cache', 'pages'), ('HTTP_IF_NONE_MATCH', '"nope"')])))
        self.assertTrue(reply.startswith(b'HTTP/1.1 200 OK\r\n') and b'render #1 ae=' in reply, reply)

    def test_invalidation_racing_a_render_leaves_no_stale_page_for_nginx(self):
        u = '/nrace?cache_for=60&tags=nrace&sleep=1'
        slow = threading.Thread(target=self.c.req, args=(u,))
        slow.start()
        time.sleep(0.3)
        Client(self.u.port).req('/_invalidate', 'POST', body=b'nrace')
        slow.join()
        self.assertIn(b'render #2', self.c.req(u)[2])
        self.assertEqual(self.calls(u), 2)

    def test_vary_page_served_by_the_middleware_behind_nginx(self):
        u = '/nvary?cache_for=60&vary=Accept-Encoding'
        gz = self.c.req(u, headers={'Accept-Encoding': 'gzip'})[2]
        self.assertEqual(self.c.req(u, headers={'Accept-Encoding': 'gzip'})[2], gz)   # nginx missed, Python hit
        ident = self.c.req(u, headers={'Accept-Encoding': 'identity'})[2]
        self.assertIn(b'ae=gzip', gz)
        self.assertIn(b'ae=identity', ident)
        self.assertEqual(self.calls(u), 2)

    def test_post_goes_to_the_app(self):
        u = '/npost?cache_for=60'
        self.assertIn(b'POST', self.c.req(u, 'POST', body=b'x')[2])
        self.assertIn(b'POST', self.c.req(u, 'POST', body=b'x')[2])
        self.assertEqual(self.calls(u), 2)


if __name__ == '__main__':
    unittest.main()
