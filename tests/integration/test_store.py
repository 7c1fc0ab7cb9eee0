"""Persistence through the plugin: a store= cache survives a clean stop
(master cleanup closes it) and a kill -9 of the whole instance; the master
msyncs it (--cache-store-sync / store_sync)."""
import os
import shutil
import signal
import tempfile
import unittest

from harness import Uwsgi, app


class Store(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ucache-store-')
        self.path = os.path.join(self.tmp, 'cache.store')

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def instance(self):
        return Uwsgi('--master', '--cache2', 'name=p,items=20,blocksize=64,store=%s,store_sync=1'
                     % self.path, '--wsgi-file', app('ops_app.py'))

    def test_clean_stop_and_kill9(self):
        with self.instance() as u:
            self.assertEqual(u.ops(['cache_set', 'a', '1', 0, 'p'], ['cache_set', 'b', '2', 0, 'p']),
                             [True, True])
        self.assertTrue(os.path.exists(self.path))
        with self.instance() as u:
            self.assertEqual(u.ops(['cache_get', 'a', 'p'], ['cache_get', 'b', 'p'],
                                   ['cache_set', 'c', '3', 0, 'p']), [b'1', b'2', True])
            os.killpg(u.proc.pid, signal.SIGKILL)
            u.proc.wait(5)
        with self.instance() as u:
            self.assertEqual(sorted(u.op('cache_keys', 'p')), [b'a', b'b', b'c'])
            self.assertEqual(u.op('cache_get', 'c', 'p'), b'3')


if __name__ == '__main__':
    unittest.main()
