"""ucache-inspect keys: the keys of a live cache over modifier1 111 (cmd=keys,
in bounded batches) and of a store file, with their value sizes and
seconds left, filtered by a glob; --biggest N; --help; TTLs in seconds
left (never epochs) in every output of the tool."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import struct

from cachewire import exchange, magic, packet, parse_vars
from harness import STOCK, Uwsgi, app, free_port, stats_json
from harness import uwsgi_vars as V

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
INSPECT = os.environ.get('UCACHE_INSPECT', os.path.join(ROOT, 'build', 'ucache-inspect'))
CACHES = ('--cache2', 'name=main,items=3000,blocksize=4096',
          '--cache2', 'name=other,items=20,blocksize=64',
          '--cache2', 'name=long,items=200,blocksize=64,keysize=1024')
# keys of main: (key, value size, ttl; 0 = never)
USERS = [('user:1', 10, 0), ('user:2', 3000, 100), ('user:3', 1, 5000), ('user:\t4', 7, 0)]
OTHERS = [('session:a', 2000, 0), ('session:b', 50, 0)]


def inspect(*args):
    """(exit status, stdout, stderr) of ucache-inspect."""
    p = subprocess.run([INSPECT] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def rows(out):
    """{key: (size, ttl)} from a listing; every line has three fields."""
    got = {}
    for line in out.splitlines():
        key, size, ttl = line.split('\t')
        assert key not in got, 'listed twice: %r' % key
        got[key] = (int(size), ttl)
    return got


def fill(u, items, cache='main'):
    u.ops(*[['cache_update', k, b'x' * size, ttl, cache] for k, size, ttl in items])


class Tool(unittest.TestCase):
    def test_bug_help_refused(self):
        """--help was refused (only -h worked): exit 2, usage on stderr."""
        for args in (['--help'], ['-h'], ['keys', '--help'], ['keys', '-h']):
            rc, out, err = inspect(*args)
            self.assertEqual((rc, err), (0, ''), args)
            self.assertIn('usage: ', out)
            self.assertIn('keys', out)

    def test_bad_command_lines_name_what_is_wrong(self):
        rc, _, err = inspect('keys', '--biggest', '0', 'x.store')
        self.assertEqual(rc, 2)
        self.assertIn('--biggest 0: want a number from 1', err)
        rc, _, err = inspect('keys', '--batch', '5000', '-s', '127.0.0.1:1')
        self.assertEqual(rc, 2)
        self.assertIn('--batch 5000', err)
        rc, _, err = inspect('keys')
        self.assertEqual(rc, 2)
        self.assertIn('STORE_FILE (or --socket ADDR)', err)
        rc, _, err = inspect('keys', '-c', 'main', 'x.store')
        self.assertEqual(rc, 2)
        self.assertIn('give --socket', err)


@unittest.skipIf(STOCK, 'ucache-inspect reads ucache')
class Live(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stats_port = free_port()
        cls.u = Uwsgi('--processes', '2', *CACHES, '--wsgi-file', app('ops_app.py'),
                      '--stats', '127.0.0.1:%d' % cls.stats_port, socket_=True).__enter__()
        cls.addr = '127.0.0.1:%d' % cls.u.uport
        fill(cls.u, USERS + OTHERS)

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def assert_users(self, got):
        self.assertEqual(set(got), {'user:1', 'user:2', 'user:3', 'user:\\x094'})
        self.assertEqual(got['user:1'], (10, 'never'))
        self.assertEqual(got['user:2'][0], 3000)
        self.assertTrue(95 <= int(got['user:2'][1]) <= 100, got)
        self.assertTrue(4995 <= int(got['user:3'][1]) <= 5000, got)

    def test_pattern(self):
        rc, out, err = inspect('keys', '--socket', self.addr, 'user:*')
        self.assertEqual(rc, 0, err)
        self.assert_users(rows(out))
        self.assertIn('6 keys, 4 matched, 3018 value bytes', err)

    def test_every_key_once_in_small_batches(self):
        many = [('k%04d' % i, 1 + i % 7, 0) for i in range(2500)]
        fill(self.u, many)
        try:
            rc, out, err = inspect('keys', '-s', self.addr, '--batch', '7')
            self.assertEqual(rc, 0, err)
            got = rows(out)
            self.assertEqual(len(got), 2506)
            for k, size, _ in many:
                self.assertEqual(got[k], (size, 'never'))
        finally:
            self.u.ops(*[['cache_del', k, 'main'] for k, _, _ in many])

    def test_named_cache_and_biggest(self):
        fill(self.u, [('o1', 5, 0), ('o2', 60, 0), ('o3', 30, 0)], 'other')
        rc, out, err = inspect('keys', '-s', self.addr, '-c', 'other', '--biggest', '2')
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, 'o2\t60\tnever\no3\t30\tnever\n')
        rc, out, err = inspect('keys', '-s', self.addr, '--biggest', '3', '*:*')
        self.assertEqual(rc, 0, err)
        self.assertEqual([line.split('\t')[:2] for line in out.splitlines()],
                         [['user:2', '3000'], ['session:a', '2000'], ['session:b', '50']])

    def cache_counters(self):
        main = [c for c in stats_json(self.stats_port)['caches'] if c['name'] == 'main'][0]
        return main['hits'], main['miss']

    def test_listing_counts_no_hit_and_no_miss(self):
        before = self.cache_counters()
        rc, out, err = inspect('keys', '-s', self.addr, '--batch', '2')
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(rows(out)), 6)
        self.assertEqual(self.cache_counters(), before)

    def keys_batch(self, cursor, count):
        """One cmd=keys exchange: (reply vars, [(key, size, ttl)])."""
        data = exchange(self.u.uport, packet(17, V([('cmd', 'keys'), ('cache', 'long'),
                                                    ('cursor', str(cursor)), ('count', str(count))])))
        m1, n, m2 = struct.unpack('<BHB', data[:4])
        self.assertEqual((m1, m2), (111, 17))
        head = parse_vars(data[4:4 + n])
        body, entries = data[4 + n:], []
        self.assertEqual(len(body), int(head['size']))
        while body:
            klen, vlen, ttl = struct.unpack('<HQQ', body[:18])
            entries.append((body[18:18 + klen], vlen, ttl))
            body = body[18 + klen:]
        self.assertEqual(len(entries), int(head['count']))
        return head, entries

    def test_batches_are_bounded_in_bytes(self):
        """100 keys of 1000 bytes (100 kB of entries) asked for at once
        (count 1000): each reply holds at most 64 KiB of entries plus one,
        the cursor goes on from the first key left out, none is lost."""
        keys = [('%04d' % i) * 250 for i in range(100)]
        fill(self.u, [(k, 3, 0) for k in keys], 'long')
        cursor, seen, replies = 0, [], 0
        while True:
            head, entries = self.keys_batch(cursor, 1000)
            self.assertLessEqual(int(head['size']), 64 * 1024 + 18 + 1000)
            seen += [e[0].decode() for e in entries]
            self.assertTrue(all(e[1:] == (3, 0) for e in entries))
            replies += 1
            cursor = int(head['cursor'])
            if not cursor:
                break
        self.assertEqual(sorted(seen), keys)
        self.assertEqual(replies, 2)

    def test_unknown_cache_is_a_clear_error(self):
        rc, out, err = inspect('keys', '-s', self.addr, '-c', 'nosuch')
        self.assertEqual((rc, out), (2, ''))
        self.assertIn('closed without a reply: an unknown cache', err)

    def test_nothing_listening(self):
        rc, _, err = inspect('keys', '-s', '/nonexistent/ucache.sock')
        self.assertEqual(rc, 2)
        self.assertIn('/nonexistent/ucache.sock: connect: No such file or directory', err)


@unittest.skipIf(STOCK, 'ucache-inspect reads ucache')
class ReadOnlySocket(unittest.TestCase):
    def test_listing_needs_the_write_permission(self):
        with Uwsgi(*CACHES, '--ucache-readonly', '--wsgi-file', app('ops_app.py'), socket_=True) as u:
            fill(u, USERS)
            rc, out, err = inspect('keys', '-s', '127.0.0.1:%d' % u.uport)
            self.assertEqual((rc, out), (2, ''))
            self.assertIn('read-only socket (listing keys needs the write permission', err)
            self.assertEqual(exchange(u.uport, magic('keys')), b'')


@unittest.skipIf(STOCK, 'ucache-inspect reads ucache')
class Store(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ucache-keys-')
        self.path = os.path.join(self.tmp, 'main.store')
        with Uwsgi('--master', '--cache2', 'name=main,items=100,blocksize=4096,store=%s' % self.path,
                   '--wsgi-file', app('ops_app.py')) as u:
            fill(u, USERS + OTHERS)
        self.stopped = time.time()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_pattern(self):
        rc, out, err = inspect('keys', 'user:*', self.path)
        self.assertEqual(rc, 0, err)
        got = rows(out)
        self.assertEqual(set(got), {'user:1', 'user:2', 'user:3', 'user:\\x094'})
        self.assertEqual(got['user:1'], (10, 'never'))
        self.assertTrue(90 <= int(got['user:2'][1]) <= 100, got)
        self.assertEqual(rows(inspect('keys', self.path)[1]).keys(),
                         {'user:1', 'user:2', 'user:3', 'user:\\x094', 'session:a', 'session:b'})

    def test_biggest(self):
        rc, out, err = inspect('keys', '--biggest', '2', self.path)
        self.assertEqual(rc, 0, err)
        lines = [line.split('\t') for line in out.splitlines()]
        self.assertEqual([x[:2] for x in lines], [['user:2', '3000'], ['session:a', '2000']])
        self.assertTrue(90 <= int(lines[0][2]) <= 100, lines)
        self.assertEqual(lines[1][2], 'never')
        self.assertIn('6 keys, 6 matched', err)

    def test_bug_ttl_printed_as_epoch(self):
        """-v printed "expires 1765000000" (an epoch): seconds left now."""
        rc, out, err = inspect('-v', self.path)
        self.assertEqual(rc, 0, err)
        line = [x for x in out.splitlines() if x.startswith('user:2 = ')][0]
        ttl = int(line.rsplit('ttl ', 1)[1].rstrip(')'))
        self.assertTrue(90 <= ttl <= 100, line)
        self.assertIn('(10 bytes, ttl never)', out)
        self.assertNotIn('expires', out)


if __name__ == '__main__':
    unittest.main()
