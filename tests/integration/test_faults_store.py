"""Damaged and foreign store files: truncated, zero-filled, bit-flipped, a
stock uWSGI cache file, random bytes, another ucache geometry.  Each one
ends in a clear one-line refusal (exit status 1, the store named, no crash)
or a clean recovery: uwsgi starts, every value it serves is one that was
written for that key, and the invariant check passes.  Also: store_delete
recreates, store_migrate imports into the new geometry, and the legacy
--cache-store / --cache-store-sync options persist the default cache.
"""
import os
import random
import re
import shutil
import signal
import struct
import tempfile
import time
import unittest

from crash_support import Instance, app_args, assert_checked, assert_no_crash, counts, crashvalues, poll
from harness import Uwsgi, app, run_to_exit, STOCK

# f: bitmap, multi-block values, short (inline) keys; g: single-block,
# long keys (kept in the key heap)
GEOMETRY = {'f': 'items=101,blocksize=64,blocks=800,bitmap=1', 'g': 'items=51,blocksize=256,keysize=64'}
NF, NG = 60, 40
PROBE = 'probe'
FLIPS = int(os.environ.get('UCACHE_FLIP_TRIALS', 40))


def gkey(i):
    return 'a-long-key-kept-in-the-key-heap-%03d' % i


def cache_args(paths, extra=''):
    out = []
    for name in sorted(GEOMETRY):
        out += ['--cache2', 'name=%s,%s,store=%s%s' % (name, GEOMETRY[name], paths[name], extra)]
    return out


def instance(paths, extra='', **kw):
    return Instance(*cache_args(paths, extra), *app_args(), **kw)


def refused(paths, extra=''):
    """Run uwsgi on paths expecting a refusal: (returncode, output)."""
    return run_to_exit(cache_args(paths, extra) + app_args() + ['--http-socket', '127.0.0.1:0'])


@unittest.skipIf(STOCK, 'ucache store format')
class StoreFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pristine = tempfile.mkdtemp(prefix='ucache-faults-')
        cls.paths = {n: os.path.join(cls.pristine, n + '.store') for n in GEOMETRY}
        rng = random.Random(7)
        cls.written = {}
        ops = []
        for i in range(NF):
            k = 'f%d' % i
            cls.written['f', k] = crashvalues.make(k, 'orig', rng.randint(40, 400))
            ops.append(['update', 'f', k, cls.written['f', k].decode('latin-1'), 0])
        for i in range(NG):
            k = gkey(i)
            cls.written['g', k] = crashvalues.make(k, 'orig', rng.randint(60, 256))
            ops.append(['update', 'g', k, cls.written['g', k].decode('latin-1'), 0])
        with instance(cls.paths) as u:
            assert u.post('/write', ops) == [True] * len(ops)
            u.stop_clean()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pristine, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ucache-fault-')
        self.paths = {n: os.path.join(self.tmp, n + '.store') for n in GEOMETRY}
        for n in GEOMETRY:
            shutil.copy(self.__class__.paths[n], self.paths[n])

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ helpers

    def assert_refused(self, extra, *fragments):
        rc, out = refused(self.paths, extra)
        self.assertEqual(rc, 1, out[-3000:])
        assert_no_crash(self, out)
        line = [ln for ln in out.splitlines() if ln.startswith('ucache: unable to create cache')]
        self.assertEqual(len(line), 1, out[-3000:])
        for frag in fragments:
            self.assertIn(frag, line[0])
        return line[0]

    def served_subset(self, extra=''):
        """Start on the (damaged) files: every served value must be the
        original of its key.  Returns ({cache: items served}, log)."""
        outcome, seen, log = self.attempt(extra)
        self.assertEqual(outcome, 'recovered', log[-3000:])
        return seen, log

    def attempt(self, extra=''):
        """Start on the files: ('refused', None, output) for a clean refusal
        (exit status 1, one "unable to create cache" line naming the store),
        else ('recovered', {cache: items served}, log) once every served
        value proved to be the original of its key."""
        u = instance(self.paths, extra)
        u.start()
        poll(lambda: not u.alive() or 'spawned uWSGI worker' in u.log(), 15, what='uwsgi to start or exit')
        if not u.alive():
            u.proc.wait(5)
            out = u.log()
            u.__exit__(None, None, None)
            self.assertEqual(u.proc.returncode, 1, out[-3000:])
            assert_no_crash(self, out)
            self.assertEqual(out.count('ucache: unable to create cache: cache "f": store %s ' % self.paths['f']), 1,
                             out[-3000:])
            return 'refused', None, out
        try:
            u.wait_ready()
            seen = {}
            for cache in GEOMETRY:
                got = u.dump(cache)
                got.pop(PROBE, None)
                seen[cache] = len(got)
                for k, v in got.items():
                    self.assertEqual(v, self.written.get((cache, k)),
                                     'cache %s key %r: a value that was never written' % (cache, k))
            assert_checked(self, u)
            # the recovered cache works: write, read back
            self.assertEqual(u.op('cache_update', PROBE, b'x' * 200, 0, 'g'), True)
            self.assertEqual(u.op('cache_get', PROBE, 'g'), b'x' * 200)
            log = u.log()
        finally:
            u.__exit__(None, None, None)
        assert_no_crash(self, log)
        return 'recovered', seen, log

    # -------------------------------------------------------------- tests

    def test_intact_store_restores_everything(self):
        seen, log = self.served_subset()
        self.assertEqual(seen, {'f': NF, 'g': NG})
        self.assertIn('restored %d items, dropped 0 (clean shutdown)' % NF, log)
        self.assertIn('restored %d items, dropped 0 (clean shutdown)' % NG, log)

    def test_truncated_store(self):
        size = os.path.getsize(self.paths['f'])
        outcomes = {}
        for cut in (0, 100, 4096, 8192, size // 3, size // 2, size - 4096, size - 1):
            shutil.copy(self.__class__.paths['f'], self.paths['f'])
            os.truncate(self.paths['f'], cut)
            outcome, seen, log = self.attempt()
            outcomes[cut] = outcome
            if outcome == 'refused':  # only a file cut inside its header
                self.assertLess(cut, 8192)
                self.assertIn('is truncated (%d bytes, not even a header)' % cut, log)
                continue
            self.assertEqual(seen['g'], NG)
            if cut == 0:
                self.assertEqual(seen['f'], 0)  # an empty file is a new store
            else:
                self.assertIn('is shorter than its geometry', log)
        self.assertEqual(outcomes[100], 'refused')
        self.assertEqual(outcomes[size - 1], 'recovered')

    def test_zero_filled_store(self):
        size = os.path.getsize(self.paths['f'])
        with open(self.paths['f'], 'wb') as f:
            f.write(b'\0' * size)
        self.assert_refused('', 'store %s' % self.paths['f'], 'bad magic', 'store_delete')
        seen, log = self.served_subset(',store_delete=1')
        self.assertEqual(seen['f'], 0)
        self.assertIn('recreating it (store_delete)', log)

    def test_bit_flips(self):
        rng = random.Random(int(os.environ.get('UCACHE_SEED', time.time())))
        size = os.path.getsize(self.paths['f'])
        outcomes = {'refused': 0, 'recovered': 0, 'dropped': 0}
        for trial in range(FLIPS):
            with open(self.__class__.paths['f'], 'rb') as f:
                data = bytearray(f.read())
            # a quarter of the trials hit the header page, the rest anywhere
            limit = 4096 if trial % 4 == 0 else size
            for _ in range(rng.randint(1, 16)):
                data[rng.randrange(limit)] ^= 1 << rng.randrange(8)
            with open(self.paths['f'], 'wb') as f:
                f.write(data)
            outcome, seen, log = self.attempt()
            outcomes[outcome] += 1
            if outcome == 'recovered':
                m = re.search(r'cache "f": store \S+ restored (\d+) items, dropped (\d+)', log)
                self.assertIsNotNone(m, log[-2000:])
                outcomes['dropped'] += int(m.group(2))
        counts('bit flips', trials=FLIPS, **outcomes)

    def test_foreign_files(self):
        rng = random.Random(3)
        foreign = {
            'random bytes': bytes(rng.getrandbits(8) for _ in range(50000)),
            'text': b'this is not a cache\n' * 100,
            'ucache magic, other version': b'UCACHE\0\1' + struct.pack('<II', 99, 0) + b'\0' * 8000,
        }
        for what, data in foreign.items():
            with open(self.paths['f'], 'wb') as f:
                f.write(data)
            line = self.assert_refused('', 'store %s' % self.paths['f'], 'store_delete')
            self.assertRegex(line, 'bad magic|layout version|damaged header|truncated', what)
        seen, log = self.served_subset(',store_delete=1')
        self.assertEqual(seen, {'f': 0, 'g': NG})

    def test_stock_uwsgi_store_file(self):
        stock_path = os.path.join(self.tmp, 'stock.store')
        with Uwsgi('--cache2', 'name=f,items=101,blocksize=64,store=%s' % stock_path,
                   '--wsgi-file', app('ops_app.py'), ucache=False) as u:
            self.assertEqual(u.op('cache_set', 'k', b'stock value', 0, 'f'), True)
        os.replace(stock_path, self.paths['f'])
        self.assert_refused('', 'bad magic; a stock uWSGI cache file?', 'store_delete')
        self.assert_refused(',store_migrate=1', 'bad magic')

    def test_geometry_mismatch_names_both(self):
        old = GEOMETRY['f']
        try:
            GEOMETRY['f'] = 'items=201,blocksize=64,blocks=800,bitmap=1'
            line = self.assert_refused('', 'was written with geometry items=101 blocks=800 blocksize=64',
                                       'configuration asks for items=201 blocks=800 blocksize=64',
                                       'store_delete', 'store_migrate')
            self.assertIn(self.paths['f'], line)

            seen, log = self.served_subset(',store_migrate=1')
            self.assertEqual(seen['f'], NF)
            self.assertIn('store_migrate imported %d items, 0 did not fit' % NF, log)
            # the migrated file now has the new geometry
            seen, log = self.served_subset()
            self.assertEqual(seen['f'], NF)

            # into a smaller cache: what fits is imported, the rest counted
            shutil.copy(self.__class__.paths['f'], self.paths['f'])
            GEOMETRY['f'] = 'items=31,blocksize=128,blocks=200,bitmap=1'
            seen, log = self.served_subset(',store_migrate=1')
            self.assertEqual(seen['f'], 30)
            self.assertIn('store_migrate imported 30 items, %d did not fit' % (NF - 30), log)

            shutil.copy(self.__class__.paths['f'], self.paths['f'])
            seen, log = self.served_subset(',store_delete=1')
            self.assertEqual(seen['f'], 0)
        finally:
            GEOMETRY['f'] = old

    def test_legacy_cache_store_options(self):
        path = os.path.join(self.tmp, 'legacy.store')
        args = ('--master', '--cache', '20', '--cache-blocksize', '128', '--cache-store', path,
                '--cache-store-sync', '1', '--wsgi-file', app('ops_app.py'))
        with Instance(*args) as u:
            self.assertEqual(u.op('cache_set', 'k', b'v1', 0), True)
            os.killpg(u.proc.pid, signal.SIGKILL)
            u.proc.wait(5)
        with Instance(*args) as u:
            self.assertIn('cache "default": store %s restored 1 items' % path, u.log())
            self.assertEqual(u.op('cache_get', 'k'), b'v1')
            u.stop_clean()
        with Instance(*args) as u:
            self.assertIn('(clean shutdown)', u.log())
            self.assertEqual(u.op('cache_get', 'k'), b'v1')


if __name__ == '__main__':
    unittest.main()
