"""The documentation's recipes, run as written (issue 18): every ```nginx
and ```ini block of README.md and of docs/*.md (issue 22 moved most of
them there) is marked `<!-- recipe: NAME -->` on the line before its
fence, and each is run here with real uwsgi and nginx, so the docs cannot
drift from what works.

What the test changes, and only this (fill()):
  - 127.0.0.1:3031 -> 127.0.0.1:<a free port>; 10.0.0.N:4000 (replication)
    -> 127.0.0.N:<a free port> (Linux answers all of 127/8 on loopback);
    /run/app/cache-admin.sock -> a socket in a temporary folder;
  - the plugin name ucache, in a `plugins`/`plugin`/`need-plugin` value ->
    the path of the built plugin (UCACHE_PLUGIN), as `make install` would
    make the name resolve;
  - `wsgi-file = app.py` -> tests/integration/apps/recipe_app.py (answers
    "app METHOD URI #N", N counting the app's answers);
  - nginx's `include uwsgi_params;` -> /etc/nginx/uwsgi_params (the test's
    nginx.conf lives in a temporary folder);
  - the nginx module's store, /run/uwsgi/app/mysite/pages.store -> a file
    in a temporary folder on tmpfs (the folder Debian's uwsgi would make),
    and nginx.conf gets `load_module` of the module built here;
  - the quick start's Django project: `chdir = /srv/mysite` -> the test
    apps' folder, `module = mysite.wsgi:application` -> `wsgi-file =
    recipe_app.py` (uid/gid www-data stay: the tests run as root);
  - a whole nginx `server { }` block -> its body without `listen` and
    `server_name` (the test's nginx.conf has its own server);
  - an ini fragment without a section gets `[uwsgi]`; the command line
    adds an HTTP socket for the test's own requests, PYTHONPATH for the
    package (installed, it is on the path), and what a fragment leaves
    out (a cache, an app), named in each test.
Each recipe is checked for what its README text promises: GET served from
the cache (the app's count does not move), POST and DELETE reach the app,
with the nginx guard and without it (ucache's own method check)."""
import os
import re
import shutil
import signal
import tempfile
import unittest

from cachewire import exchange, magic, magic_reply
from harness import (NGINX, PLUGIN, ROOT, STOCK, Nginx, Uwsgi, app, deploy_path, deploy_supported, deploy_user,
                     free_port, http_request, need, poll, raw_exchange, stock_plugin, world_readable_copy)

DOCS = [os.path.join(ROOT, 'README.md')] + sorted(
    os.path.join(ROOT, 'docs', f) for f in os.listdir(os.path.join(ROOT, 'docs')) if f.endswith('.md'))
PYTHONPATH = os.path.join(ROOT, 'python')
MODULE = os.path.join(ROOT, 'build', 'nginx', 'ngx_http_ucache_module.so')
MODULE_STORE = '/run/uwsgi/app/mysite/pages.store'
_readable_python = []


def python_path(text):
    """The package's folder, a world-readable copy for an ini that drops
    to a uid (a clone under a 0700 folder is unreadable to it)."""
    if not re.search(r'^uid\s*=', text, re.M):
        return PYTHONPATH
    if not _readable_python:
        _readable_python.append(world_readable_copy(PYTHONPATH, 'ucache-recipe-py-')[1])
    return _readable_python[0]
MARK = re.compile(r'^<!-- recipe: ([\w-]+) -->\n```(\w+)\n(.*?)^```$', re.M | re.S)
FENCE = re.compile(r'^```(nginx|ini)$', re.M)
GUARD = re.compile(r'^\s*if \(\$request_method .*\n', re.M)


def recipes():
    """{name: (language, text)} of the marked blocks of every doc."""
    out = {}
    for doc in DOCS:
        with open(doc) as f:
            text = f.read()
        for m in MARK.finditer(text):
            if m.group(1) in out:
                raise AssertionError('%s: two recipes named %s' % (os.path.relpath(doc, ROOT), m.group(1)))
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def unmarked_fences():
    """'FILE:LINE' of each ```nginx / ```ini fence without a recipe mark."""
    out = []
    for doc in DOCS:
        with open(doc) as f:
            lines = f.read().split('\n')
        out += ['%s:%d' % (os.path.relpath(doc, ROOT), i + 1) for i, line in enumerate(lines)
                if FENCE.match(line) and not (i and lines[i - 1].startswith('<!-- recipe: '))]
    return out


def _plugin_value(m):
    names = [PLUGIN if p.strip() == 'ucache' else p.strip() for p in m.group(2).split(',')]
    return m.group(1) + ','.join(names)


def fill(text, port=None, sock=None, udp=None, store=None):
    """The module docstring's substitutions."""
    if port:
        text = text.replace('127.0.0.1:3031', '127.0.0.1:%d' % port)
    if store:
        text = text.replace(MODULE_STORE, store)
    if sock:
        text = text.replace('/run/app/cache-admin.sock', sock)
    for n, p in (udp or {}).items():
        text = text.replace('10.0.0.%d:4000' % n, '127.0.0.%d:%d' % (n, p))
    # an ini that drops to a uid reads the app from a copy that user can read
    recipe_app = app('recipe_app.py')
    if re.search(r'^uid\s*=', text, re.M):
        recipe_app = deploy_path(recipe_app)
    text = re.sub(r'^((?:plugins?|need-plugin)\s*=\s*)(.*)$', _plugin_value, text, flags=re.M)
    text = re.sub(r'^(wsgi-file\s*=\s*)app\.py$', r'\g<1>' + recipe_app, text, flags=re.M)
    text = re.sub(r'^chdir = /srv/mysite$', 'chdir = ' + os.path.dirname(recipe_app), text, flags=re.M)
    text = re.sub(r'^module = mysite\.wsgi:application$', 'wsgi-file = ' + recipe_app, text, flags=re.M)
    return text.replace('include uwsgi_params;', 'include /etc/nginx/uwsgi_params;')


def server_body(text):
    """A whole `server { }` block's body, without listen and server_name."""
    m = re.match(r'\s*server\s*\{\n(.*)\}\s*$', text, re.S)
    if not m:
        return text
    return re.sub(r'^\s*(listen|server_name)\s[^;]*;\n', '', m.group(1), flags=re.M)


def ini_uwsgi(name, *extra, env=None, **subst):
    """A Uwsgi running recipe name (an ini) with fill(**subst) and extra args."""
    lang, text = recipes()[name]
    assert lang == 'ini', name
    text = fill(text, **subst)
    if not re.search(r'^\[uwsgi\]', text, re.M):
        text = '[uwsgi]\n' + text
    fd, path = tempfile.mkstemp(prefix='ucache-recipe-', suffix='.ini')
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    env = dict(env or {}, PYTHONPATH=python_path(text))
    u = Uwsgi('--ini', path, *extra, plugins=(), ucache=False, env=env)
    u.ini = path
    return u


def nginx_conf(name, port, guard=True, store=None):
    lang, text = recipes()[name]
    assert lang == 'nginx', name
    text = server_body(fill(text, port=port, store=store))
    return text if guard else GUARD.sub('', text)


def req(port, method, path, body=None):
    status, _, data = http_request(port, method, path, body)
    return status, data


@need(NGINX)
@need(stock_plugin('python3'))
@unittest.skipIf(STOCK, 'the recipes load ucache')
class ReadmeRecipes(unittest.TestCase):
    TESTED = {'uwsgi-load', 'uwsgi-direct', 'nginx-direct', 'uwsgi-accelerator', 'nginx-accelerator',
              'uwsgi-write-socket', 'uwsgi-replication', 'uwsgi-quickstart', 'nginx-quickstart',
              'uwsgi-module', 'nginx-module'}

    def tearDown(self):
        for u in getattr(self, '_inis', []):
            os.unlink(u)

    def started(self, u):
        self._inis = getattr(self, '_inis', []) + [u.ini]
        return u

    def test_every_nginx_and_ini_block_is_a_recipe_tested_here(self):
        self.assertEqual(unmarked_fences(), [], 'doc lines with an unmarked ```nginx/```ini block')
        self.assertEqual(set(recipes()), self.TESTED)

    def test_every_ini_recipe_needs_the_plugin(self):
        # issue 18 item 9: with `plugins = ucache` a removed plugin falls
        # back to the stock cache at the next reload; need-plugin stops uwsgi
        for name, (lang, text) in recipes().items():
            if lang == 'ini':
                self.assertRegex(text, r'(?m)^need-plugin = ucache$', name)
                self.assertNotRegex(text, r'(?m)^plugins? = .*ucache', name)

    def test_uwsgi_load(self):
        # + an app to reach the cache from
        with self.started(ini_uwsgi('uwsgi-load', '--wsgi-file', app('ops_app.py'))) as u:
            self.assertIn('ucache "a" initialized', u.log())
            self.assertEqual(u.ops(['cache_update', 'k', 'v', 0, 'a'], ['cache_get', 'k', 'a']), [True, b'v'])

    def test_quickstart(self):
        # README's quick start: the Debian ini (uid www-data, need-plugin)
        # behind the nginx server block; every request reaches the app,
        # which counts in the ucache default cache the ini makes
        port = free_port()
        with self.started(ini_uwsgi('uwsgi-quickstart', port=port)) as u:
            self.assertIn('ucache "default" initialized', u.log())
            self.assertIn('setuid() to 33', u.log())                 # www-data
            with Nginx(nginx_conf('nginx-quickstart', port)) as n:
                calls = int(u.get('/_calls')) + 1
                self.assertEqual(req(n.port, 'GET', '/a'), (200, ('app GET /a #%d' % calls).encode()))
                self.assertEqual(req(n.port, 'POST', '/a', b'x=1'),
                                 (200, ('app POST /a #%d' % (calls + 1)).encode()))
                self.assertEqual(int(u.get('/_calls')), calls + 1)

    def check_nginx(self, uwsgi_recipe, nginx_recipe, env=None, store=None, main='master_process off;',
                    frozen=False):
        """GET: the app once, then the cache; POST, DELETE: the app; with the
        recipe's method guard and without it.  frozen: the cached GET is
        answered while every uwsgi process is stopped (nginx alone)."""
        port = free_port()
        with self.started(ini_uwsgi(uwsgi_recipe, env=env, port=port, store=store)) as u:
            for guard in (True, False):
                with self.subTest(guard=guard), Nginx(nginx_conf(nginx_recipe, port, guard, store), main) as n:
                    p, path = n.port, '/user/%d' % guard
                    calls = int(u.get('/_calls')) + 1
                    first = req(p, 'GET', path)                      # a miss: the app
                    self.assertEqual(first, (200, ('app GET %s #%d' % (path, calls)).encode()))
                    self.assertEqual(self.cached_get(u, p, path, frozen), first)  # from the cache:
                    self.assertEqual(req(p, 'HEAD', path)[0], 200)
                    self.assertEqual(int(u.get('/_calls')), calls)   # the app saw nothing
                    self.assertEqual(req(p, 'POST', path, b'x=1'),
                                     (200, ('app POST %s #%d' % (path, calls + 1)).encode()))
                    self.assertEqual(req(p, 'DELETE', path),
                                     (200, ('app DELETE %s #%d' % (path, calls + 2)).encode()))
                    self.assertEqual(req(p, 'GET', path), first)

    def cached_get(self, u, port, path, frozen):
        if not frozen:
            return req(port, 'GET', path)
        os.killpg(u.proc.pid, signal.SIGSTOP)
        try:
            return http_request(port, 'GET', path, timeout=5)[::2]
        finally:
            os.killpg(u.proc.pid, signal.SIGCONT)

    def test_nginx_direct(self):
        self.check_nginx('uwsgi-direct', 'nginx-direct')

    def test_nginx_accelerator(self):
        self.check_nginx('uwsgi-accelerator', 'nginx-accelerator', env={'RECIPE_APP': 'accelerator'})

    @need(MODULE)
    def test_nginx_module(self):
        # docs/HTTP.md's ini (the Accelerator's cache with a store on tmpfs,
        # uid www-data) behind README's nginx block, with the module built
        # here; the folder stands for the one Debian's uwsgi makes
        d = tempfile.mkdtemp(prefix='ucache-recipe-', dir='/dev/shm')
        self.addCleanup(shutil.rmtree, d, True)
        if deploy_supported() is None:
            os.chown(d, *deploy_user())
        self.check_nginx('uwsgi-module', 'nginx-module', env={'RECIPE_APP': 'accelerator'},
                         store=os.path.join(d, 'pages.store'),
                         main='load_module %s;\nmaster_process off;' % MODULE, frozen=True)

    def test_uwsgi_write_socket(self):
        # + a cache and an app: the fragment shows only the sockets
        port, d = free_port(), tempfile.mkdtemp(prefix='ucache-recipe-')
        sock = os.path.join(d, 'cache-admin.sock')
        try:
            with self.started(ini_uwsgi('uwsgi-write-socket', '--plugin', 'python3', '--plugin', PLUGIN,
                                        '--cache2', 'name=c,items=10', '--wsgi-file', app('ops_app.py'),
                                        port=port, sock=sock)) as u:
                poll(lambda: os.path.exists(sock), what='the admin socket')
                set_ = magic('set', 'k', 'c', size=1, value=b'v')
                self.assertEqual(exchange(port, set_), b'')                # refused: read-only
                self.assertIsNone(u.op('cache_get', 'k', 'c'))
                self.assertIsNotNone(magic_reply(raw_exchange(sock, set_)))
                self.assertEqual(u.op('cache_get', 'k', 'c'), b'v')
                self.assertEqual(magic_reply(exchange(port, magic('get', 'k', 'c')))[1], b'v')
        finally:
            if os.path.exists(sock):
                os.unlink(sock)
            os.rmdir(d)

    def test_uwsgi_replication(self):
        # node 10.0.0.1 as written; 10.0.0.2 a node receiving on its udp=
        # (+ --master: the receiver thread; + an app to read the cache)
        ports = {n: free_port() for n in (1, 2, 3)}
        with Uwsgi('--master', '--cache2', 'name=sessions,items=10000,udp=127.0.0.2:%d' % ports[2],
                   '--wsgi-file', app('ops_app.py')) as peer, \
                self.started(ini_uwsgi('uwsgi-replication', '--master', '--plugin', 'python3', '--plugin', PLUGIN,
                                       '--wsgi-file', app('ops_app.py'), udp=ports)) as u:
            self.assertTrue(u.op('cache_update', 's1', 'alive', 0, 'sessions'))
            self.assertEqual(poll(lambda: peer.op('cache_get', 's1', 'sessions'), what='the replica'), b'alive')


if __name__ == '__main__':
    unittest.main()
