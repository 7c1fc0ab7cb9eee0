"""The features as Debian runs them (issue 18): root dropping to --uid/--gid
www-data under a master (harness deployment mode), with graceful reloads in
the middle of each test:

  - store-backed caches (--cache2 store= and the legacy --cache-store) keep
    every item across SIGHUP and --touch-reload;
  - start-up sync from a stock peer: the items arrive, and a reload keeps
    the node's own contents (the sync is skipped, even with the peer gone);
  - the RPC functions, from the app (uwsgi.call) and over the network
    (modifier1 173): counters keep counting, a CAS version read before the
    reload is still valid after it;
  - the HTTP response cache (ucache.wsgi.Accelerator): a page cached before
    the reload is served after it without the app, tags invalidate after it;
  - need-plugin: a plugin that is gone stops uwsgi, at the first start and
    at the reload's re-exec, instead of a fall-back to the stock cache.
UDP and Redis have their own deployment tests (test_udp*, test_redis*).
"""
import os
import shutil
import signal
import struct
import tempfile
import unittest
from urllib.parse import quote

from cachewire import exchange
from harness import (PLUGIN, ROOT, Uwsgi, app, poll, run_to_exit, skip_unless_deployable,
                     stock_plugin, world_readable_copy)

SYNC_GEOMETRY = 'name=c,items=100,blocksize=256'


class Deployed(unittest.TestCase):
    def setUp(self):
        skip_unless_deployable(self, 'ucache across reloads')

    def both_reloads(self, u, check):
        """check(u) after a SIGHUP, then after a --touch-reload."""
        for how in ('sighup', 'touch'):
            u.reload(how)
            with self.subTest(reload=how):
                check(u)


class Stores(Deployed):
    def test_store_items_kept_across_reloads(self):
        with Uwsgi('--cache2', 'name=s,items=50,blocksize=128,store=s.store',
                   '--cache', '10', '--cache-blocksize', '64', '--cache-store', 'legacy.store',
                   '--wsgi-file', app('ops_app.py'), deploy=True) as u:
            sets = [['cache_set', 'k%d' % i, 'v%d' % i * 10, 0, 's'] for i in range(30)]
            self.assertEqual(u.ops(*sets, ['cache_set', 'l', 'legacy']), [True] * 31)
            generation = [0]

            def check(inst):
                generation[0] += 1
                got = inst.ops(*[['cache_get', 'k%d' % i, 's'] for i in range(30)], ['cache_get', 'l'])
                self.assertEqual(got, [('v%d' % i * 10).encode() for i in range(30)] + [b'legacy'])
                self.assertTrue(inst.op('cache_update', 'g', str(generation[0]), 0, 's'))
                self.assertIn('store s.store restored', inst.log())
            self.both_reloads(u, check)
            self.assertEqual(u.op('cache_get', 'g', 's'), b'2')
            self.assertEqual(os.stat(os.path.join(u.workdir, 's.store')).st_uid,
                             os.stat(u.workdir).st_uid)


class Sync(Deployed):
    def test_sync_from_a_stock_peer_then_reloads(self):
        peer = Uwsgi('--master', '--cache2', SYNC_GEOMETRY, '--wsgi-file', app('ops_app.py'),
                     plugins=('python3', stock_plugin('cache')), ucache=False, socket_=True)
        with peer:
            items = {'k%d' % i: 'value-%d' % i for i in range(40)}
            self.assertEqual(peer.ops(*[['cache_set', k, v, 0, 'c'] for k, v in items.items()]), [True] * 40)
            node = Uwsgi('--cache2', SYNC_GEOMETRY + ',sync=127.0.0.1:%d' % peer.uport,
                         '--wsgi-file', app('ops_app.py'), deploy=True)
            with node:
                self.assertIn('imported 40 items from the stock image', node.log())
                self.assertEqual(node.ops(*[['cache_get', k, 'c'] for k in items]),
                                 [v.encode() for v in items.values()])
                self.assertTrue(node.op('cache_set', 'mine', 'x', 0, 'c'))
                self.assertTrue(peer.op('cache_update', 'k0', 'changed', 0, 'c'))
                node.reload('sighup', expect='start-up sync skipped')
                self.assertEqual(node.ops(['cache_get', 'k0', 'c'], ['cache_get', 'mine', 'c']),
                                 [b'value-0', b'x'])
                peer.stop()  # a sync node gone must not turn a reload into an exit
                node.reload('touch', expect='start-up sync skipped')
                self.assertEqual(len(node.op('cache_keys', 'c')), 41)
                self.assertEqual(node.op('cache_get', 'k39', 'c'), b'value-39')


def rpc_packet(*args):
    body = b''.join(struct.pack('<H', len(a)) + a for a in args)
    return struct.pack('<BHB', 173, len(body), 1) + body


class Rpc(Deployed):
    def test_rpc_functions_across_reloads(self):
        with Uwsgi('--cache2', 'name=r,items=50', '--wsgi-file', app('ops_app.py'),
                   plugins=('python3', 'rpc'), socket_=True, deploy=True) as u:
            def net(*args):
                return exchange(u.uport, rpc_packet(*[a.encode() for a in args]))

            def call(*args):  # uwsgi.call in a worker
                return u.op('call', *[a.encode() for a in args])
            self.assertEqual(call('ucache_incr', 'r', 'n', '5', '0'), b'Y5')
            self.assertEqual(net('ucache_incr', 'r', 'n', '1'), b'Y6')
            self.assertEqual(net('ucache_add', 'r', 'v', 'one'), b'Y')
            gets = net('ucache_gets', 'r', 'v')
            self.assertEqual((gets[:1], gets[17:]), (b'Y', b'one'))
            version = gets[1:17].decode()
            u.reload('sighup')
            self.assertEqual(net('ucache_incr', 'r', 'n', '1'), b'Y7')
            self.assertEqual(call('ucache_incr', 'r', 'n', '1'), b'Y8')
            self.assertEqual(net('ucache_cas', 'r', 'v', version, 'two'), b'Y')
            self.assertEqual(net('ucache_cas', 'r', 'v', version, 'three'), b'N')
            u.reload('touch')
            self.assertEqual(net('ucache_get_many', 'r', 'v', 'gone'), b'Y3:two-')
            self.assertEqual(call('ucache_incr', 'r', 'n', '2'), b'Y10')
            self.assertEqual(u.op('cache_get', 'v', 'r'), b'two')


class HttpCache(Deployed):
    def test_accelerator_pages_across_reloads(self):
        pydir, pkg = world_readable_copy(os.path.join(ROOT, 'python'), 'ucache-deploy-py-')
        self.addCleanup(shutil.rmtree, pydir, True)
        with Uwsgi('--processes', '2', '--threads', '4',
                   '--cache2', 'name=pages,items=200,blocksize=65536',
                   '--cache2', 'name=counters,items=200,blocksize=64',
                   '--pythonpath', pkg, '--wsgi-file', app('accel_app.py'), deploy=True) as u:
            def calls(uri):
                return int(u.get('/_calls?u=' + quote(uri, safe='')))
            plain, tagged = '/plain?cache_for=600', '/tagged?cache_for=600&tags=t1'
            first = {p: u.get(p) for p in (plain, tagged)}
            self.assertEqual({p: u.get(p) for p in (plain, tagged)}, first)
            self.assertEqual([calls(plain), calls(tagged)], [1, 1])
            u.reload('sighup')
            self.assertEqual(u.get(plain), first[plain])
            self.assertEqual(calls(plain), 1)  # served from the page kept across the reload
            # tag counters live outside the region: a tagged page is a miss
            # after a reload (docs/HTTP.md "Tags"), rendered once more, then cached
            self.assertIn(b'render #2', u.get(tagged))
            self.assertIn(b'render #2', u.get(tagged))
            self.assertEqual(u.request('/_invalidate', 'POST', b't1')[2], b'ok')
            self.assertIn(b'render #3', u.get(tagged))
            u.reload('touch')
            self.assertEqual(u.get(plain), first[plain])
            self.assertEqual([calls(plain), calls(tagged)], [1, 3])


class NeedPlugin(unittest.TestCase):
    """need-plugin = ucache (docs/INSTALL.md "Loading the plugin")."""

    def test_missing_plugin_stops_the_first_start(self):
        rc, out = run_to_exit(['--need-plugin', '/nonexistent/ucache_plugin.so', '--cache2', 'name=a,items=10',
                               '--http-socket', '127.0.0.1:0'], ucache=False)
        self.assertEqual(rc, 1, out[-2000:])
        self.assertIn('unable to load plugin', out)
        self.assertNotIn('spawned uWSGI worker', out)

    def test_plugins_dir_without_ucache_stops_the_start(self):
        """The plugins dir after the .deb is gone: python3 still there."""
        d = tempfile.mkdtemp(prefix='ucache-plugins-')
        self.addCleanup(shutil.rmtree, d, True)
        os.symlink(stock_plugin('python3'), os.path.join(d, 'python3_plugin.so'))
        rc, out = run_to_exit(['--plugins-dir', d, '--need-plugin', 'ucache', '--cache2', 'name=a,items=10',
                               '--http-socket', '127.0.0.1:0'], ucache=False)
        self.assertEqual(rc, 1, out[-2000:])
        self.assertIn('unable to load plugin "ucache"', out)

    def test_demo_ini_without_the_plugin_stops(self):
        """The shipped example, its plugin gone."""
        d = tempfile.mkdtemp(prefix='ucache-demo-')
        self.addCleanup(shutil.rmtree, d, True)
        os.mkdir(os.path.join(d, 'demo'))
        for name in ('demo.ini', 'app.py'):
            shutil.copy(os.path.join(ROOT, 'demo', name), os.path.join(d, 'demo', name))
        rc, out = run_to_exit(['--ini', os.path.join(d, 'demo', 'demo.ini')], plugins=(), ucache=False)
        self.assertEqual(rc, 1, out[-2000:])
        self.assertIn('unable to load plugin', out)

    def test_bug_plugin_removed_reload_falls_back_to_stock_cache(self):
        """The .deb removed under a running instance: the next graceful
        reload fell back to the stock cache (the app answered 500).  With
        need-plugin the reloaded master stops instead."""
        skip_unless_deployable(self)
        pdir, plugin = world_readable_copy(PLUGIN, 'ucache-deploy-plugin-')
        self.addCleanup(shutil.rmtree, pdir, True)
        with Uwsgi('--need-plugin', plugin, '--cache2', 'name=a,items=10', '--wsgi-file', app('ops_app.py'),
                   ucache=False, deploy=True) as u:
            self.assertTrue(u.op('cache_set', 'k', 'v', 0, 'a'))
            self.assertIn('ucache "a" initialized', u.log())
            os.unlink(plugin)
            log_len = len(u.log())
            u.wait_master()
            u.proc.send_signal(signal.SIGHUP)
            poll(lambda: not u.alive(), 30, what='uwsgi to stop at the reload')
            after = u.log()[log_len:]
            self.assertNotEqual(u.proc.returncode, 0, after)
            self.assertIn('unable to load plugin', after)
            self.assertNotIn('spawned uWSGI worker', after)


if __name__ == '__main__':
    unittest.main()
