"""nginx answering from the cache (seed 000's recipe, modifier1 111 /
modifier2 3) with the fallback to the app on a miss (error_page 502 504 =
@real), modifier2 4's 404, values stored by the app and by --add-cache-item,
a whole-HTTP-response value passed through, and 1 MiB values intact.

Stock uWSGI 2.0.21 fails all the direct hits here: its modifier2 3/4 handler
looked keys up with length 0 (regression: test_direct_hit_*)."""
import http.client
import os
import unittest

from harness import NGINX, STOCK, Nginx, Uwsgi, app, free_port, http_request, need, stats_json
from test_readme_recipes import recipes

def readme_recipes():
    """The docs' nginx recipes that answer from the cache (modifier1 111;
    test_readme_recipes marks and runs them all, the quick start's plain
    uwsgi_pass too), with Debian's uwsgi_params."""
    return [text.replace('include uwsgi_params;', 'include /etc/nginx/uwsgi_params;')
            for lang, text in recipes().values() if lang == 'nginx' and 'uwsgi_modifier1 111;' in text]


RECIPE = """
location / {
    uwsgi_pass 127.0.0.1:%(port)d;
    uwsgi_modifier1 111;
    uwsgi_modifier2 3;
    uwsgi_param key $request_uri;
    uwsgi_pass_request_headers off;
    error_page 502 504 = @real;
}
location /strict/ {
    uwsgi_pass 127.0.0.1:%(port)d;
    uwsgi_modifier1 111;
    uwsgi_modifier2 4;
    uwsgi_param key $request_uri;
    uwsgi_pass_request_headers off;
}
location @real {
    uwsgi_pass 127.0.0.1:%(port)d;
    uwsgi_modifier1 0;
    uwsgi_modifier2 0;
    include /etc/nginx/uwsgi_params;
}
"""

# docs/HTTP.md's first recipe before issue 18 (no method guard), passing the
# method as the fixed recipe does: ucache itself must send a POST or DELETE
# to the app (a miss: 502, error_page -> @real).  Without the REQUEST_METHOD
# param nginx tells ucache nothing of the method (stock's recipe): the guard
# in nginx is then the only protection (docs/HTTP.md).
UNGUARDED = """
location / {
    uwsgi_pass 127.0.0.1:%(port)d;
    uwsgi_modifier1 111;
    uwsgi_modifier2 3;
    uwsgi_param key $request_uri;
    uwsgi_param REQUEST_METHOD $request_method;
    uwsgi_pass_request_headers off;
    error_page 502 504 = @real;
}
location @real {
    uwsgi_pass 127.0.0.1:%(port)d;
    uwsgi_modifier1 0;
    uwsgi_modifier2 0;
    include /etc/nginx/uwsgi_params;
}
"""

MIB = bytes(range(251)) * 4178          # 1 MiB + a little, not a multiple of anything


@need(NGINX)
@unittest.skipIf(STOCK, 'stock bug: modifier2 3/4 never hit')
class NginxDirect(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi('--cache2', 'name=web,items=100,blocks=100,blocksize=65536,bitmap=1',
                      '--add-cache-item', '/static/hello.txt=hello from add-cache-item',
                      '--wsgi-file', app('ops_app.py'), socket_=True).__enter__()
        cls.n = Nginx(RECIPE % {'port': cls.u.uport}).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.n.__exit__(None, None, None)
        cls.u.__exit__(None, None, None)

    def get(self, path):
        conn = http.client.HTTPConnection('127.0.0.1', self.n.port, timeout=15)
        try:
            conn.request('GET', path)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def test_direct_hit_of_a_key_stored_by_the_app(self):
        self.assertIs(self.u.op('cache_set', '/page?x=1', '<h1>cached page</h1>'), True)
        status, headers, body = self.get('/page?x=1')
        self.assertEqual((status, body), (200, b'<h1>cached page</h1>'))
        self.assertEqual(headers['Content-Length'], str(len(body)))

    def test_direct_hit_of_an_add_cache_item(self):
        self.assertEqual(self.get('/static/hello.txt')[::2], (200, b'hello from add-cache-item'))

    def test_miss_falls_back_to_the_app(self):
        status, _, body = self.get('/not-cached')
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b'app:/not-cached:'), body)    # ops_app's GET answer

    def test_app_fallback_then_hit_after_the_app_stores_it(self):
        self.assertTrue(self.get('/later')[2].startswith(b'app:'))
        self.u.op('cache_set', '/later', 'now cached')
        self.assertEqual(self.get('/later')[2], b'now cached')
        self.u.op('cache_del', '/later')
        self.assertTrue(self.get('/later')[2].startswith(b'app:'))

    def test_modifier2_4_gives_404_on_a_miss(self):
        self.assertEqual(self.get('/strict/missing')[0], 404)
        self.u.op('cache_set', '/strict/there', 'strict hit')
        self.assertEqual(self.get('/strict/there')[::2], (200, b'strict hit'))

    def test_value_that_is_a_whole_http_response(self):
        self.u.op('cache_set', '/full', 'HTTP/1.1 201 Created\r\nX-From: ucache\r\n'
                  'Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nfull')
        status, headers, body = self.get('/full')
        self.assertEqual((status, headers['X-From'], headers['Content-Type'], body),
                         (201, 'ucache', 'text/plain', b'full'))

    def test_one_mib_value_intact(self):
        self.assertIs(self.u.op('cache_set', '/big', MIB), True)
        status, _, body = self.get('/big')
        self.assertEqual(status, 200)
        self.assertEqual(len(body), len(MIB))
        self.assertTrue(body == MIB)


@need(NGINX)
@unittest.skipIf(STOCK, 'stock bug: modifier2 3/4 never hit')
class NginxMethods(unittest.TestCase):
    """apps/recipe_app.py answers "app METHOD URI #N" and stores GET pages."""

    def req(self, n, method, path, body=None):
        status, _, data = http_request(n.port, method, path, body)
        return status, data

    def test_bug_111_http_serves_post_from_cache(self):
        with Uwsgi('--cache2', 'name=web,items=100,blocksize=65536', '--wsgi-file', app('recipe_app.py'),
                   socket_=True) as u, Nginx(UNGUARDED % {'port': u.uport}) as n:
            self.assertEqual(self.req(n, 'GET', '/user/42'), (200, b'app GET /user/42 #1'))
            self.assertEqual(self.req(n, 'GET', '/user/42'), (200, b'app GET /user/42 #1'))  # cached
            self.assertEqual(self.req(n, 'POST', '/user/42', b'x=1'), (200, b'app POST /user/42 #2'))
            self.assertEqual(self.req(n, 'DELETE', '/user/42'), (200, b'app DELETE /user/42 #3'))
            self.assertEqual(self.req(n, 'PUT', '/user/42', b'x=2'), (200, b'app PUT /user/42 #4'))
            self.assertEqual(self.req(n, 'HEAD', '/user/42')[0], 200)
            self.assertEqual(self.req(n, 'GET', '/user/42'), (200, b'app GET /user/42 #1'))
            self.assertEqual(u.get('/_calls'), b'4')  # HEAD and the GETs came from the cache


@need(NGINX)
@unittest.skipIf(STOCK, 'stock bug: modifier2 3/4 never hit')
class ReadmeRecipes(unittest.TestCase):
    def test_bug_every_miss_logs_upstream_prematurely_closed(self):
        recipes = readme_recipes()
        self.assertEqual(len(recipes), 2)
        sport = free_port()
        with Uwsgi('--cache2', 'name=pages,items=100', '--master', '--stats', '127.0.0.1:%d' % sport,
                   '--wsgi-file', app('ops_app.py'), socket_=True) as u:
            def counts():
                c = stats_json(sport)['caches'][0]
                return c['hits'], c['miss']
            for recipe in recipes:
                with Nginx(recipe.replace('127.0.0.1:3031', '127.0.0.1:%d' % u.uport)) as n:
                    before = counts()
                    for i in range(10):
                        status, body = n.get('/miss/%d' % i)
                        self.assertEqual(status, 200, body)
                        self.assertTrue(body.startswith(b'app:/miss/%d:' % i), body)   # the fallback
                    u.op('cache_set', '/hit', 'from ucache', 0, 'pages')
                    self.assertEqual(n.get('/hit'), (200, b'from ucache'))
                    u.op('cache_del', '/hit', 'pages')
                    after = counts()
                    # one lookup per request: 10 misses, 1 hit
                    self.assertEqual((after[0] - before[0], after[1] - before[1]), (1, 10))
                    with open(os.path.join(n.workdir, 'error.log')) as f:
                        errors = [line for line in f if '[error]' in line or '[crit]' in line]
                    self.assertEqual(errors, [], recipe)


if __name__ == '__main__':
    unittest.main()
