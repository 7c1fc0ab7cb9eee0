"""Reloads keep the contents of caches without a store: the master keeps
each region in a memfd across its re-exec (plugins/ucache/takeover/reload.c), and
the new image validates it as a store file is.

  - SIGHUP and --touch-reload keep N items byte for byte, with their
    absolute expiry (compared through ucache's dump before and after);
  - a reload whose ini file was edited to a smaller geometry keeps what
    fits, in one log line;
  - a stop then a fresh start has nothing;
  - workers hold the memfd only with FD_CLOEXEC (their exec'd children
    never inherit it), and the master too once it has started.
"""
import os
import random
import shutil
import signal
import tempfile
import time
import unittest

from cachewire import dump_request, exchange, parse_dump
from crash_support import children
from harness import STOCK, Uwsgi, app

O_CLOEXEC = 0o2000000


def items_for(n, seed):
    rng = random.Random(seed)
    return {('key-%d' % i).encode(): (bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 900))),
                                      0 if i % 2 else 3600 + i)
            for i in range(n)}


def region_fds(pid):
    """{fd: flags} of pid's ucache memfds."""
    out = {}
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if target.startswith('/memfd:ucache-'):
            with open('/proc/%d/fdinfo/%s' % (pid, fd)) as f:
                flags = [l for l in f if l.startswith('flags:')][0]
            out[int(fd)] = int(flags.split()[1], 8)
    return out


@unittest.skipIf(STOCK, 'ucache behaviour (stock loses everything on a reload)')
class Reload(unittest.TestCase):
    def start(self, *args):
        u = Uwsgi('--master', '--processes', '2', *args, '--wsgi-file', app('ops_app.py'), socket_=True)
        u.__enter__()
        self.addCleanup(u.__exit__, None, None, None)
        self.wait_master(u)
        return u

    def wait_master(self, u):
        u.wait_master()

    def fill(self, u, items, cache='c'):
        ops = [['cache_set', k, v, e, cache] for k, (v, e) in items.items()]
        self.assertEqual(u.ops(*ops), [True] * len(ops))

    def contents(self, u, cache=b'c'):
        _, records, complete = parse_dump(exchange(u.uport, dump_request(cache)))
        self.assertTrue(complete)
        return {k: (v, e) for k, v, e in records}

    def reload(self, u, trigger, expect):
        return u.reload(trigger, expect)

    def check_kept(self, trigger_of, *args):
        items = items_for(60, 1)
        u = self.start('--cache2', 'name=c,items=100,blocksize=1024', '--cache2', 'name=d,items=10', *args)
        trigger = trigger_of(u)
        self.fill(u, items)
        self.fill(u, {b'other': (b'cache d', 0)}, 'd')
        before = self.contents(u)
        self.assertEqual(len(before), 60)
        old_master = u.proc.pid
        log = self.reload(u, trigger, 'cache "c": the reload kept 60 items, dropped 0')
        self.assertIn('cache "d": the reload kept 1 items, dropped 0', log)
        self.assertEqual(u.proc.pid, old_master)        # re-exec'd, same process
        self.assertEqual(self.contents(u), before)       # values and expiry, byte for byte
        got = u.ops(*[['cache_get', k, 'c'] for k in items])
        self.assertEqual(got, [v for v, _ in items.values()])
        self.assertEqual(u.op('cache_get', 'other', 'd'), b'cache d')
        # and again: a second reload keeps them too
        self.reload(u, trigger, 'cache "c": the reload kept 60 items, dropped 0')
        self.assertEqual(self.contents(u), before)

    def test_sighup_keeps_every_item(self):
        self.check_kept(lambda u: lambda: u.proc.send_signal(signal.SIGHUP))

    def test_touch_reload_keeps_every_item(self):
        d = tempfile.mkdtemp(prefix='ucache-touch-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'touch')
        open(path, 'w').close()     # --touch-reload watches a file that exists at start

        def touch():
            t = time.time() + 5     # a later mtime than the one the master recorded
            os.utime(path, (t, t))
        self.check_kept(lambda u: touch, '--touch-reload', path)

    def test_new_geometry_keeps_what_fits(self):
        items = items_for(80, 3)
        u = Uwsgi('--ini', 'cache.ini', '--wsgi-file', app('ops_app.py'), socket_=True)
        u.nworkers = 2    # processes = 2 in the ini
        ini = os.path.join(u.workdir, 'cache.ini')
        with open(ini, 'w') as f:
            f.write('[uwsgi]\nmaster = true\nprocesses = 2\ncache2 = name=c,items=100,blocksize=1024\n')
        u.__enter__()
        self.addCleanup(u.__exit__, None, None, None)
        self.wait_master(u)
        self.fill(u, items)
        before = self.contents(u)
        with open(ini, 'w') as f:
            f.write('[uwsgi]\nmaster = true\nprocesses = 2\ncache2 = name=c,items=41,blocksize=1024\n')
        log = self.reload(u, lambda: u.proc.send_signal(signal.SIGHUP), 'imported 40 items, 40 did not fit')
        lines = [l for l in log.splitlines() if 'cache "c"' in l and 'reload' in l]
        self.assertEqual(len(lines), 1, log)
        self.assertIn('items=100', lines[0])
        self.assertIn('items=41', lines[0])
        after = self.contents(u)
        self.assertEqual(len(after), 40)
        for k, v in after.items():
            self.assertEqual(before[k], v)

    def test_stop_then_start_has_nothing(self):
        u = self.start('--cache2', 'name=c,items=100')
        self.fill(u, items_for(10, 4))
        u.stop()
        fresh = self.start('--cache2', 'name=c,items=100')
        self.assertEqual(self.contents(fresh), {})
        self.assertNotIn('the reload kept', fresh.log())

    def test_only_the_master_hands_the_fd_over(self):
        u = self.start('--cache2', 'name=c,items=100')
        for pid in [u.proc.pid] + children(u.proc.pid):
            fds = region_fds(pid)
            self.assertEqual(len(fds), 1, (pid, fds))
            self.assertTrue(all(flags & O_CLOEXEC for flags in fds.values()), (pid, fds))
        self.reload(u, lambda: u.proc.send_signal(signal.SIGHUP), 'the reload kept 0 items')
        for pid in [u.proc.pid] + children(u.proc.pid):
            fds = region_fds(pid)
            self.assertEqual(len(fds), 1, (pid, fds))
            self.assertTrue(all(flags & O_CLOEXEC for flags in fds.values()), (pid, fds))


if __name__ == '__main__':
    unittest.main()
