"""ucache-top (tools/ucache-top) against a real uwsgi: batch mode (-b) prints
a row per cache with the right items, capacity, hit ratios and rates, reads
the stats server over TCP, a unix socket and --stats-http, shows
replication and Redis lines only for the caches that have them, and the
curses view shows the rows in a real terminal (tmux capture-pane)."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

from harness import ROOT, Uwsgi, app, free_port, need, poll, stats_json
from test_redis import Redis

TOP = os.environ.get('UCACHE_TOP', os.path.join(ROOT, 'tools', 'ucache-top'))
TMUX = shutil.which('tmux') or '/usr/bin/tmux'
HEADER = ['CACHE', 'ITEMS', 'MAX', 'USED', 'MAPPED', 'HIT%NOW', 'HIT%ALL', 'GET/s', 'SET/s',
          'DEL/s', 'EVICT/s', 'EXPIRE/s', 'FULL/s']


def top(*args, timeout=30):
    r = subprocess.run([sys.executable, TOP] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def rows(out):
    """{cache: {column: text}} of the last iteration of a batch output."""
    last = out.strip().split('\n\n')[-1].splitlines()
    head = last[1].split()
    assert head == HEADER, head
    return {cells[0]: dict(zip(HEADER, cells)) for cells in (l.split() for l in last[2:])
            if len(cells) == len(HEADER)}


class Load(threading.Thread):
    """Runs the same ops request in a loop until stopped; counts them."""

    def __init__(self, u, *ops):
        super().__init__(daemon=True)
        self.u, self.ops, self.done, self.stop_ = u, ops, 0, threading.Event()

    def run(self):
        while not self.stop_.is_set():
            self.u.ops(*self.ops)
            self.done += 1

    def __enter__(self):
        self.start()
        poll(lambda: self.done > 0, 10, 0.02, 'the load to start')
        return self

    def __exit__(self, *exc):
        self.stop_.set()
        self.join(30)


class Top(unittest.TestCase):
    def instance(self, *stats):
        return Uwsgi('--master', '--processes', '2', *stats,
                     '--cache2', 'name=a,items=11,blocksize=100',
                     '--cache2', 'name=b,items=5,blocksize=100,purge_lru=1,'
                     'nodes=127.0.0.1:%d' % free_port(),
                     '--wsgi-file', app('ops_app.py'))

    def test_batch_rows(self):
        sport = free_port()
        with self.instance('--stats', '127.0.0.1:%d' % sport) as u:
            u.ops(['cache_set', 'k1', 'x' * 10, 0, 'a'], ['cache_set', 'k2', 'y' * 5, 0, 'a'],
                  ['cache_get', 'k1', 'a'], ['cache_get', 'k1', 'a'], ['cache_get', 'k1', 'a'],
                  ['cache_get', 'no', 'a'], ['cache_del', 'k2', 'a'])
            for i in range(7):  # items=5 holds 4: three evictions
                u.op('cache_set', 'b%d' % i, 'v', 0, 'b')
            # quiet: exact counts, every rate 0
            rc, out, err = top('-b', '-d', '0.5', '127.0.0.1:%d' % sport)
            self.assertEqual(rc, 0, err)
            r = rows(out)
            self.assertEqual(sorted(r), ['a', 'b'])
            self.assertEqual([r['a'][k] for k in ('ITEMS', 'MAX', 'USED', 'HIT%NOW', 'HIT%ALL')],
                             ['1', '11', '10', '-', '75.0'])
            self.assertEqual([r['b'][k] for k in ('ITEMS', 'MAX', 'HIT%ALL')], ['4', '5', '-'])
            for k in HEADER[7:]:
                self.assertEqual((r['a'][k], r['b'][k]), ('0.0', '0.0'), k)
            # replication for b only (7 sets sent), no Redis line
            self.assertIn('  b replication: sent 0.0/s, received 0.0/s, applied 0.0/s, errors 0', out)
            self.assertNotIn('a replication', out)
            self.assertNotIn('redis', out)
            # under load: hits on a, misses and sets on b
            with Load(u, ['cache_get', 'k1', 'a'], ['cache_get', 'nope', 'b'],
                      ['cache_set', 'b', 'v', 0, 'b'], ['cache_del', 'b', 'b']) as load:
                before = stats_json(sport)['caches'][1]['sets']
                rc, out, err = top('-b', '-n', '2', '-d', '1', '127.0.0.1:%d' % sport)
                after = stats_json(sport)['caches'][1]['sets']
            self.assertEqual(rc, 0, err)
            self.assertEqual(out.count('CACHE '), 2)
            r = rows(out)
            self.assertEqual((r['a']['HIT%NOW'], r['b']['HIT%NOW']), ('100.0', '0.0'))
            for cache, col in (('a', 'GET/s'), ('b', 'GET/s'), ('b', 'SET/s'), ('b', 'DEL/s')):
                self.assertGreater(float(r[cache][col]), 0, (cache, col, out))
            # the rate is sets over ~1 s of the interval: no more than were done
            self.assertLessEqual(float(r['b']['SET/s']), (after - before) / 0.9 + 1, out)
            self.assertEqual((r['a']['SET/s'], r['a']['DEL/s']), ('0.0', '0.0'))
            self.assertGreater(load.done, 0)

    def test_unix_socket_and_stats_http(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'stats.sock')
            with self.instance('--stats', path) as u:
                u.op('cache_set', 'k', 'v', 0, 'a')
                poll(lambda: os.path.exists(path), 10, 0.02, 'the stats socket')
                rc, out, err = top('-b', '-d', '0.2', path)
                self.assertEqual(rc, 0, err)
                self.assertEqual(rows(out)['a']['ITEMS'], '1')
        hport = free_port()
        with self.instance('--stats', '127.0.0.1:%d' % hport, '--stats-http') as u:
            u.op('cache_set', 'k', 'v', 0, 'b')
            rc, out, err = top('-b', '-d', '0.2', 'http://127.0.0.1:%d/' % hport)
            self.assertEqual(rc, 0, err)
            self.assertEqual(rows(out)['b']['ITEMS'], '1')

    def test_redis_line(self):
        with Redis() as redis:
            sport = free_port()
            with Uwsgi('--master', '--stats', '127.0.0.1:%d' % sport,
                       '--cache2', 'name=r,items=20,redis=127.0.0.1:%d' % redis.port,
                       '--cache2', 'name=plain,items=20', '--wsgi-file', app('ops_app.py')):
                poll(lambda: stats_json(sport)['caches'][0]['redis_connected'] == 1, 10, 0.05,
                     'the Redis listener')
                rc, out, err = top('-b', '-d', '0.2', '127.0.0.1:%d' % sport)
                self.assertEqual(rc, 0, err)
                self.assertIn('  r redis: redis connected, l1_hits 0.0/s', out)
                self.assertNotIn('plain redis', out)
                self.assertNotIn('replication', out)

    def test_unreachable(self):
        rc, out, err = top('-b', '-d', '0.1', '127.0.0.1:%d' % free_port())
        self.assertEqual(rc, 1)
        self.assertIn('ucache-top: cannot read the stats server at 127.0.0.1:', err)
        rc, out, err = top('-b', '-d', '0', '127.0.0.1:1')
        self.assertEqual(rc, 2)
        self.assertIn('--delay must be positive', err)

    @need(TMUX)
    def test_curses_view_in_tmux(self):
        sport = free_port()
        server = 'ucache-top-test-%d' % os.getpid()
        tmux = lambda *a: subprocess.run([TMUX, '-L', server] + list(a), capture_output=True,
                                         text=True, timeout=10)
        with self.instance('--stats', '127.0.0.1:%d' % sport) as u:
            u.ops(['cache_set', 'k1', 'v', 0, 'a'], ['cache_set', 'k2', 'v', 0, 'a'],
                  ['cache_get', 'k1', 'a'])
            cmd = '%s %s -d 0.3 127.0.0.1:%d' % (sys.executable, TOP, sport)
            r = tmux('new-session', '-d', '-s', 'top', '-x', '150', '-y', '30', cmd)
            self.assertEqual(r.returncode, 0, r.stderr)
            try:
                def screen():
                    text = tmux('capture-pane', '-p', '-t', 'top').stdout
                    lines = [l.split() for l in text.splitlines()]
                    a = [l for l in lines if l and l[0] == 'a']
                    return 'HIT%NOW' in text and a and text
                text = poll(screen, 15, 0.1, 'the curses view of ucache-top')
                a = [l.split() for l in text.splitlines() if l.startswith('a ')][0]
                self.assertEqual(a[1:3], ['2', '11'])
                self.assertIn('b replication:', text)
                self.assertIn('q: quit', text)
                tmux('send-keys', '-t', 'top', 'q')
                poll(lambda: tmux('has-session', '-t', 'top').returncode != 0, 10, 0.1,
                     'ucache-top to quit on q')
            finally:
                tmux('kill-server')


if __name__ == '__main__':
    unittest.main()
