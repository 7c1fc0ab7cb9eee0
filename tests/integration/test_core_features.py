"""Core users of the cache: --check-cache, the UWSGI_CACHE_GET request
variable (directly and through nginx), router_cache's cache:/cachestore:
routes, --add-cache-item, --load-file-in-cache and -gzip.

--check-cache and UWSGI_CACHE_GET write the cached value as the whole
response (stock behaviour): the value holds the status line and headers."""
import gzip
import os
import shutil
import tempfile
import unittest

from harness import NGINX, Nginx, Uwsgi, app, http_body, need, stock_plugin, uwsgi_request


def response(body):
    return b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n' + body


class CheckCacheAndCacheGet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi('--cache2', 'name=main,items=10', '--check-cache',
                      '--wsgi-file', app('ops_app.py'), socket_=True).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def test_check_cache_serves_get_requests_by_uri(self):
        self.assertTrue(self.u.get('/page').startswith(b'app:/page:'))
        self.assertIs(self.u.op('cache_set', '/page', response(b'from the cache')), True)
        self.assertEqual(self.u.get('/page'), b'from the cache')
        status, _, body = self.u.request('/page', 'POST', b'x')   # GET only
        self.assertTrue(body.startswith(b'app:/page:'))

    def test_uwsgi_cache_get_variable(self):
        self.assertIs(self.u.op('cache_set', 'thekey', response(b'cached body')), True)
        raw = uwsgi_request(self.u.uport, {'PATH_INFO': '/x', 'UWSGI_CACHE_GET': 'thekey'})
        self.assertEqual(raw, response(b'cached body'))
        raw = uwsgi_request(self.u.uport, {'PATH_INFO': '/x', 'UWSGI_CACHE_GET': 'nokey'})
        self.assertIn(b'app:/x:', http_body(raw)[1])

    @need(NGINX)
    def test_through_nginx(self):
        conf = ('location / { include /etc/nginx/uwsgi_params; '
                'uwsgi_param UWSGI_CACHE_GET $arg_key; uwsgi_pass 127.0.0.1:%d; }' % self.u.uport)
        self.assertIs(self.u.op('cache_set', 'nk', response(b'via nginx')), True)
        with Nginx(conf) as n:
            self.assertEqual(n.get('/any?key=nk'), (200, b'via nginx'))
            status, body = n.get('/any?key=missing')
            self.assertEqual(status, 200)
            self.assertTrue(body.startswith(b'app:/any:'))


@need(stock_plugin('router_cache'))
class RouterCache(unittest.TestCase):
    def test_cache_and_cachestore_routes(self):
        with Uwsgi('--cache2', 'name=main,items=10', '--cache2', 'name=rc,items=10',
                   '--route', '^/rc/ cache:key=${REQUEST_URI},name=rc',
                   '--route', '^/rc/ cachestore:key=${REQUEST_URI},name=rc',
                   '--wsgi-file', app('ops_app.py'),
                   plugins=('python3', 'router_cache')) as u:
            first = u.get('/rc/page')
            self.assertEqual(first, b'app:/rc/page:1')
            self.assertEqual(u.op('cache_get', '/rc/page', 'rc'), first)
            status, headers, body = u.request('/rc/page')
            self.assertEqual((status, body), (200, first))
            self.assertEqual(headers.get('Content-Type'), 'text/html')
            self.assertEqual(u.get('/other'), b'app:/other:2')


class Preload(unittest.TestCase):
    def test_add_cache_item_and_load_files(self):
        tmp = tempfile.mkdtemp(prefix='ucache-files-')
        try:
            plain, packed = os.path.join(tmp, 'plain.txt'), os.path.join(tmp, 'packed.txt')
            with open(plain, 'wb') as f:
                f.write(b'plain file\n')
            with open(packed, 'wb') as f:
                f.write(b'packed ' * 100)
            with Uwsgi('--cache2', 'name=a,items=10', '--cache2', 'name=b,items=10',
                       '--add-cache-item', 'a k1=v1', '--add-cache-item', 'k2=v=2',
                       '--load-file-in-cache', 'b ' + plain,
                       '--load-file-in-cache-gzip', packed,
                       '--wsgi-file', app('ops_app.py')) as u:
                r = u.ops(['cache_get', 'k1', 'a'], ['cache_get', 'k1', 'b'],
                          ['cache_get', 'k2', 'a'], ['cache_get', 'k2', 'b'],
                          ['cache_get', plain, 'a'], ['cache_get', plain, 'b'],
                          ['cache_get', packed, 'a'], ['cache_get', packed, 'b'])
                self.assertEqual(r[:6], [b'v1', None, b'v=2', b'v=2', None, b'plain file\n'])
                self.assertEqual(gzip.decompress(r[6]), b'packed ' * 100)
                self.assertEqual(r[6], r[7])
                self.assertIn('[cache-gzip] stored "%s" in "a"' % packed, u.log())
        finally:
            shutil.rmtree(tmp)


if __name__ == '__main__':
    unittest.main()
