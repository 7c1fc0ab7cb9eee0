"""nginx answering cache hits itself (issue 21): a real nginx loading
build/nginx/ngx_http_ucache_module.so maps the store file of a real uwsgi
running ucache.wsgi.Accelerator (apps/module_app.py, a "pages" cache with
store= on tmpfs) and serves its pages without reaching uwsgi.

As Debian runs them where the tests run as root: uwsgi drops to www-data
(harness deployment mode) and nginx's workers run as www-data, reading the
store uwsgi created (0600, www-data): the permission docs/HTTP.md asks for.

Each response of the module's locations carries X-Ucache-Status:
$ucache_status, the fallback's (@app) too.  Skipped only where the module
is not built (no nginx-dev: `make` builds it when it is installed)."""
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import unittest
from urllib.parse import quote

from harness import (NGINX, ROOT, STOCK, Nginx, Uwsgi, app, children, deploy_supported, deploy_user,
                     http_request, poll, world_readable_copy)

MODULE = os.environ.get('UCACHE_NGINX_MODULE', os.path.join(ROOT, 'build', 'nginx', 'ngx_http_ucache_module.so'))
DEPLOY = deploy_supported() is None
WORKERS = 2
GEOMETRY = 'name=pages,items=500,blocksize=65536'

LOCATIONS = """
location / {
    ucache_pass %(store)s;
    add_header X-Ucache-Status $ucache_status always;
    error_page 404 = @app;
}
location /strict/ {
    ucache_pass %(store)s;
    add_header X-Ucache-Status $ucache_status always;
    charset utf-8;
}
location /byvar/ {
    set $pages_store %(store)s;
    set $ucache_key /strict/$arg_k;
    ucache_pass $pages_store;
    add_header X-Ucache-Status $ucache_status always;
}
location /garbage/ {
    ucache_pass %(garbage)s;
    error_page 404 = @app;
}
location /truncated/ {
    set $ucache_key /in-the-copy?cache_for=600;
    ucache_pass %(truncated)s;
    error_page 404 = @app;
}
location @app {
    add_header X-Ucache-Status $ucache_status always;
    uwsgi_pass 127.0.0.1:%(port)d;
    include /etc/nginx/uwsgi_params;
}
"""


def main_conf():
    """load_module, a master and WORKERS workers (as www-data when root)."""
    return 'load_module %s;\nworker_processes %d;\n%s' % (MODULE, WORKERS, 'user www-data;' if DEPLOY else '')


def store_dir():
    """A folder on tmpfs the cache's user can write and nginx's read."""
    d = tempfile.mkdtemp(prefix='ucache-module-', dir='/dev/shm')
    if DEPLOY:
        os.chown(d, *deploy_user())
    os.chmod(d, 0o755)
    return d


def pages(store, *extra, geometry=GEOMETRY, env=None):
    """uwsgi with the Accelerator over a store-backed "pages" cache."""
    return Uwsgi('--processes', '2', '--cache2', '%s,store=%s' % (geometry, store),
                 '--cache2', 'name=counters,items=500,blocksize=64', '--pythonpath', PYPKG,
                 '--wsgi-file', app('module_app.py'), *extra, socket_=True, deploy=DEPLOY, env=env)


def nginx(port, store, garbage='/nonexistent', truncated='/nonexistent'):
    n = Nginx(LOCATIONS % {'store': store, 'port': port, 'garbage': garbage, 'truncated': truncated},
              main_conf())
    os.chmod(n.workdir, 0o755)
    return n


def error_lines(n, text):
    with open(os.path.join(n.workdir, 'error.log')) as f:
        return [line for line in f if text in line and ('[error]' in line or '[crit]' in line or
                                                        '[alert]' in line)]


def get(n, path, method='GET', headers=None, body=None):
    """(status, {lowercase header: value}, body)."""
    status, h, data = http_request(n.port, method, path, body, headers, timeout=10)
    return status, {k.lower(): v for k, v in h.items()}, data


PYPKG = None


def setUpModule():
    global PYPKG
    if not os.path.exists(MODULE):
        raise unittest.SkipTest('%s is not built (make builds it where nginx-dev is installed)' % MODULE)
    if STOCK:
        raise unittest.SkipTest('the module reads ucache stores')
    if not (os.path.exists(NGINX) or shutil.which(NGINX)):
        raise unittest.SkipTest('nginx is not installed')
    d, PYPKG = world_readable_copy(os.path.join(ROOT, 'python'), 'ucache-module-py-')


class Module(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = store_dir()
        cls.store = os.path.join(cls.dir, 'pages.store')
        cls.u = pages(cls.store, env={'ACCEL_SWR': '2'}).__enter__()
        cls.n = nginx(cls.u.uport, cls.store).__enter__()
        cls.workers = poll(lambda: sorted(children(cls.n.proc.pid)) if len(children(cls.n.proc.pid)) == WORKERS
                           else None, what='the nginx workers')

    @classmethod
    def tearDownClass(cls):
        cls.n.__exit__(None, None, None)
        cls.u.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def tearDown(self):
        self.assertEqual(sorted(children(self.n.proc.pid)), self.workers, 'an nginx worker died')
        with open(os.path.join(self.n.workdir, 'error.log')) as f:
            self.assertEqual([line for line in f if '[alert]' in line or '[crit]' in line or
                              '[emerg]' in line], [])

    def calls(self, uri):
        return int(self.u.get('/_calls?u=' + quote(uri, safe='')))

    def cached(self, path):
        """GET path through nginx until the module serves it (the first is
        the app's render, stored by the Accelerator): (headers, body)."""
        first = get(self.n, path)
        self.assertEqual(first[0], 200, first)
        status, headers, body = get(self.n, path)
        self.assertEqual((status, headers['x-ucache-status']), (200, 'HIT'), (headers, body))
        self.assertEqual(body, first[2])
        return headers, body

    def test_hits_served_while_every_uwsgi_process_is_stopped(self):
        paths = ['/stopped/%d?cache_for=600' % i for i in range(3)]
        want = {p: self.cached(p)[1] for p in paths}
        os.killpg(self.u.proc.pid, signal.SIGSTOP)
        try:
            for _ in range(5):
                for p in paths:
                    status, headers, body = get(self.n, p)
                    self.assertEqual((status, headers['x-ucache-status'], body), (200, 'HIT', want[p]))
        finally:
            os.killpg(self.u.proc.pid, signal.SIGCONT)
        self.assertEqual([self.calls(p) for p in paths], [1, 1, 1])

    def test_invalidated_tag_is_a_miss_the_app_renders_again(self):
        path = '/tagged?cache_for=600&tags=t1,t2'
        _, body = self.cached(path)
        self.assertIn(b'render #1', body)
        self.assertEqual(get(self.n, '/_invalidate', 'POST', body=b't2')[::2], (200, b'ok'))
        status, headers, body = get(self.n, path)
        self.assertEqual((status, headers['x-ucache-status']), (200, 'INVALIDATED'))
        self.assertIn(b'render #2', body)                     # the app, again
        status, headers, again = get(self.n, path)
        self.assertEqual((status, headers['x-ucache-status'], again), (200, 'HIT', body))
        self.assertEqual(self.calls(path), 2)

    def test_expired_page_is_never_served(self):
        # cache_for 1 + stale_while_revalidate 2 (ACCEL_SWR): HIT, then STALE
        # past the fresh-until mark, then never; TTLs are whole seconds
        path = '/short?cache_for=1'
        seen, statuses, deadline = {}, set(), time.monotonic() + 10
        while time.monotonic() < deadline and len(seen) < 2:
            status, headers, body = get(self.n, path)
            now = time.monotonic()
            self.assertEqual(status, 200)
            render = re.search(rb'render #(\d+)', body).group(1)
            first = seen.setdefault(render, now)
            statuses.add(headers['x-ucache-status'])
            if headers['x-ucache-status'] in ('HIT', 'STALE'):
                self.assertLess(now - first, 1 + 2 + 1.5, 'render #%s served after its expiry' % render)
                self.assertNotIn('x-accelerator-fresh-until', headers)      # internal: stripped
            time.sleep(0.05)
        self.assertGreaterEqual(len(seen), 2, 'never expired')
        self.assertTrue({'HIT', 'STALE'} <= statuses, statuses)
        self.assertTrue(statuses & {'EXPIRED', 'MISS'}, statuses)

    def test_etag_304_and_head_answered_by_nginx(self):
        path = '/etag?cache_for=600'
        headers, body = self.cached(path)
        etag = headers['etag']
        self.assertEqual((headers['content-type'], headers['content-length']), ('text/plain', str(len(body))))
        status, h304, data = get(self.n, path, headers={'If-None-Match': etag})
        self.assertEqual((status, data, h304['etag'], h304['x-ucache-status']), (304, b'', etag, 'HIT'))
        status, h200, data = get(self.n, path, headers={'If-None-Match': '"other"'})
        self.assertEqual((status, data), (200, body))
        status, hhead, data = get(self.n, path, 'HEAD')
        self.assertEqual((status, data, hhead['content-length'], hhead['x-ucache-status']),
                         (200, b'', str(len(body)), 'HIT'))
        self.assertEqual(self.calls(path), 1)

    def test_missing_key_is_a_404_that_falls_back_to_the_app(self):
        status, headers, body = get(self.n, '/strict/nothing')
        self.assertEqual((status, headers['x-ucache-status']), (404, 'MISS'))
        status, headers, body = get(self.n, '/nothing-here')            # not cached: no cache_for
        self.assertEqual((status, headers['x-ucache-status']), (200, 'MISS'))
        self.assertIn(b'GET /nothing-here render #1', body)
        self.assertIn(b'render #2', get(self.n, '/nothing-here')[2])

    def put(self, key, value):
        self.assertEqual(get(self.n, '/_put?key=' + quote(key, safe=''), 'POST', body=value)[::2], (200, b'True'))

    def test_stored_values_as_nginx_sends_them(self):
        # a whole response: its status and headers as stored, its charset
        # alone (charset utf-8 in the location), hop-by-hop dropped
        self.put('/strict/full', b'HTTP/1.1 203 Non-Authoritative Information\r\nX-From: ucache\r\n'
                 b'Content-Type: text/html; charset=utf-8\r\nConnection: close\r\nContent-Length: 4\r\n\r\nfull')
        status, headers, body = get(self.n, '/strict/full')
        self.assertEqual((status, headers['x-from'], headers['content-type'], body),
                         (203, 'ucache', 'text/html; charset=utf-8', b'full'))
        self.assertEqual(headers['connection'], 'keep-alive')
        # the store's path and the key from variables
        status, headers, body = get(self.n, '/byvar/?k=full')
        self.assertEqual((status, headers['x-ucache-status'], body), (203, 'HIT', b'full'))
        # not "HTTP/": the body of a 200, as on the modifier1 111 path
        self.put('/strict/plain.txt', b'just a value')
        status, headers, body = get(self.n, '/strict/plain.txt')
        self.assertEqual((status, headers['content-type'], body), (200, 'text/plain; charset=utf-8', b'just a value'))
        # what nginx cannot send is a miss, logged once per worker
        bad = {'/strict/no-blank': b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n',
               '/strict/bad-status': b'HTTP/1.1 2x0 OK\r\n\r\n',
               '/strict/bad-length': b'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort',
               '/strict/no-colon': b'HTTP/1.1 200 OK\r\nX-Broken\r\n\r\nbody',
               '/strict/bare-lf': b'HTTP/1.1 200 OK\r\nX-A: 1\nX-Broken: 2\r\nContent-Length: 4\r\n\r\nbody'}
        for key, value in bad.items():
            self.put(key, value)
            for _ in range(4):
                status, headers, body = get(self.n, key)
                self.assertEqual((status, headers['x-ucache-status']), (404, 'ERROR'), key)
                self.assertNotIn('x-broken', headers)
        lines = error_lines(self.n, 'is not a response nginx can send')
        self.assertTrue(1 <= len(lines) <= WORKERS, lines)

    def test_post_to_a_cached_uri_reaches_the_app(self):
        path = '/posted?cache_for=600'
        self.cached(path)
        for method in ('POST', 'PUT', 'DELETE'):
            status, headers, body = get(self.n, path, method, body=b'x=1')
            self.assertEqual(status, 200)
            self.assertIn(('%s %s render' % (method, path)).encode(), body)
            self.assertNotIn('x-ucache-status', headers)        # no lookup made
        self.assertEqual(self.calls(path), 4)

    def test_garbage_and_truncated_stores_are_misses(self):
        garbage = os.path.join(self.dir, 'garbage.store')
        with open(garbage, 'wb') as f:
            f.write(os.urandom(1 << 20))
        self.cached('/in-the-copy?cache_for=600')
        truncated = os.path.join(self.dir, 'truncated.store')
        shutil.copyfile(self.store, truncated)
        os.truncate(truncated, os.path.getsize(self.store) // 2)
        os.chmod(garbage, 0o644)
        os.chmod(truncated, 0o644)
        with nginx(self.u.uport, self.store, garbage, truncated) as n:
            workers = poll(lambda: sorted(children(n.proc.pid)) if len(children(n.proc.pid)) == WORKERS else None,
                           what='the nginx workers')
            for _ in range(10):
                for path in ('/garbage/x?cache_for=600', '/truncated/anything'):
                    status, _, body = get(n, path)
                    self.assertEqual(status, 200)
                    self.assertIn(b'render', body)                   # the fallback
            self.assertEqual(sorted(children(n.proc.pid)), workers)
            for f in (garbage, truncated):
                lines = error_lines(n, f)
                self.assertTrue(1 <= len(lines) <= WORKERS, lines)   # once per worker, not per request
            self.assertIn('truncated', ''.join(error_lines(n, truncated)))

    def test_writer_killed_mid_write_never_leaves_a_torn_page(self):
        # three writers, each SIGKILLed while it overwrites the key nginx
        # reads in a loop (its loop is all writes: a kill lands inside one)
        size, versions, after = 48 * 1024, set(), set()      # the cache's blocksize is 64 KiB
        for round_ in range(3):
            key = '/strict/torn%d' % round_
            served = self.serve_while_killing_a_writer(key, size)
            for _ in range(10):                                   # after the kill
                status, headers, body = get(self.n, key)
                after.add(headers['x-ucache-status'])
                self.assertIn((status, headers['x-ucache-status']), ((200, 'HIT'), (404, 'ERROR')))
                served += [body] if status == 200 else []
            for body in served:
                self.assertEqual(len(body), size)
                self.assertEqual(body, body[:8] * (size // 8), 'a torn page')
                versions.add((key, body[:8]))
            self.assertGreater(len({v for k, v in versions if k == key}), 1,
                               'the writer never changed the page under the readers')
        # ERROR after a kill: it died inside the write's publication (no
        # consistent snapshot: the reader gives up, never a torn page, never
        # a hang); HIT: the last complete version
        print('[counts] %d versions served; after the kills: %s' % (len(versions), sorted(after)))

    def serve_while_killing_a_writer(self, key, size):
        """The bodies nginx served while a writer overwrote key, until and
        just after its SIGKILL."""
        served, stop = [], threading.Event()

        def reader():
            while not stop.is_set():
                status, headers, body = get(self.n, key)
                if status == 200:
                    served.append(body)
        pid = int(get(self.n, '/_writer?key=%s&size=%d' % (key, size), 'POST')[2])
        t = threading.Thread(target=reader)
        try:
            poll(lambda: get(self.n, key)[0] == 200, what='the writer\'s first version')
            t.start()
            poll(lambda: len(served) >= 20, 20, what='pages served while the writer writes')
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        finally:
            stop.set()
            if t.is_alive():
                t.join()
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return served


class Restarts(unittest.TestCase):
    def test_uwsgi_restarted_over_the_same_store_and_rebuilt_is_followed(self):
        d = store_dir()
        self.addCleanup(shutil.rmtree, d, True)
        store = os.path.join(d, 'pages.store')
        u = pages(store).__enter__()
        port = u.uport
        try:
            n = nginx(port, store).__enter__()
            try:
                self.check_follows(n, u, '/first?cache_for=600')
                u.__exit__(None, None, None)
                # the same store file, the same socket port: nginx's
                # fallback reaches the new instance
                u = restart(store, port)
                self.assertIn('restored', u.log())
                self.assertEqual(get(n, '/first?cache_for=600')[1]['x-ucache-status'], 'HIT')
                self.check_follows(n, u, '/second?cache_for=600')
                u.__exit__(None, None, None)
                u = restart(store, port, geometry='name=pages,items=300,blocksize=32768,store_delete=1')
                self.assertIn('store_delete', u.log())
                poll(lambda: get(n, '/first?cache_for=600')[1]['x-ucache-status'] != 'HIT', 5,
                     what='nginx to map the rebuilt store')
                self.check_follows(n, u, '/third?cache_for=600')
                self.assertEqual(error_lines(n, store), [])
            finally:
                n.__exit__(None, None, None)
        finally:
            u.__exit__(None, None, None)

    def check_follows(self, n, u, path):
        """A page the (new) instance renders is then a hit in nginx."""
        first = get(n, path)
        self.assertEqual((first[0], first[1]['x-ucache-status']), (200, 'MISS'))
        status, headers, body = poll(lambda: (lambda r: r if r[1]['x-ucache-status'] == 'HIT' else None)(
            get(n, path)), 5, what='nginx to serve the page %s' % path)
        self.assertEqual(body, first[2])


def restart(store, port, geometry=GEOMETRY):
    """A new instance over store, on the socket port the nginx config names."""
    u = pages(store, geometry=geometry)
    u.uport = port
    u.argv[u.argv.index('--socket') + 1] = '127.0.0.1:%d' % port
    return u.__enter__()


if __name__ == '__main__':
    unittest.main()
