"""Malformed modifier1 111 packets against a live server: every packet of
the fuzzer's regression corpus (tests/fuzz/regressions/, one per parser
error class, see tests/fuzz/make_corpus.py) is answered by a close without
a reply, the worker lives on, valid requests are still served, and the log
gets at most one line per second.  Also: packets cut short on the wire,
and a burst of random garbage."""
import os
import random
import socket
import struct
import time
import unittest

from cachewire import exchange, magic, magic_reply, packet
from harness import ROOT, STOCK, Uwsgi, app, poll

REGRESSIONS = os.path.join(ROOT, 'tests', 'fuzz', 'regressions')


def corpus():
    names = sorted(n for n in os.listdir(REGRESSIONS) if n.endswith('.bin'))
    for name in names:
        with open(os.path.join(REGRESSIONS, name), 'rb') as f:
            yield name, f.read()


@unittest.skipIf(STOCK, 'ucache parser')
class Malformed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # one process, no master: a crash would end the server itself;
        # --buffer-size lets the 65535-byte key packet reach the plugin
        cls.u = Uwsgi('--cache2', 'name=web,items=20', '--buffer-size', '65535',
                      '--socket-timeout', '2', '--wsgi-file', app('ops_app.py'),
                      socket_=True).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def assert_serving(self):
        self.assertTrue(self.u.alive(), self.u.log())
        self.u.op('cache_update', 'probe', 'alive', 0, 'web')
        self.assertEqual(exchange(self.u.uport, packet(0, b'probe')),
                         struct.pack('<BHB', 111, 5, 0) + b'alive')

    def test_regression_corpus(self):
        files = list(corpus())
        self.assertGreaterEqual(len(files), 10)
        offset = len(self.u.log())
        t0 = time.monotonic()
        for name, data in files:
            with self.subTest(name):
                self.assertEqual(exchange(self.u.uport, data), b'', name)
        self.assert_serving()
        # the log: at most one line per second (+1 for the edges)...
        seconds = time.monotonic() - t0
        lines = [l for l in self.u.log()[offset:].splitlines() if 'malformed' in l]
        self.assertLessEqual(len(lines), int(seconds) + 2, lines)
        # ...and the next line that gets through counts the ones dropped
        probe = dict(corpus())['empty--get-without-key.bin']

        def next_line():
            exchange(self.u.uport, probe)
            found = [l for l in self.u.log()[offset:].splitlines() if 'more since the last line' in l]
            return found[-1] if found else None
        line = poll(next_line, 5, 0.1, 'a line counting the suppressed ones')
        self.assertIn('ucache: modifier1 111 from 127.0.0.1 on 127.0.0.1:%d' % self.u.uport, line)
        dropped = int(line.split('(and ')[1].split(' ')[0])
        self.assertGreaterEqual(dropped + len(lines), len(files) - 1)

    def test_each_class_is_logged_by_name(self):
        data = dict(corpus())['modifier2--unknown-9.bin']
        before = self.u.log().count('unknown modifier2')

        def logged():
            # the limiter lets one line through per second: resend until it does
            exchange(self.u.uport, data)
            return self.u.log().count('unknown modifier2') > before
        poll(logged, 5, 0.1, 'the malformed packet to be logged')
        self.assertIn('modifier2 9 malformed: unknown modifier2', self.u.log())

    def test_packets_cut_short(self):
        whole = magic('get', 'some-key', 'web')
        for cut in (1, 3, 4, 10, len(whole) - 1):
            self.assertEqual(exchange(self.u.uport, whole[:cut]), b'')      # EOF before the end
        # a header announcing more than arrives, the client silent: the
        # socket timeout (2 s) closes it
        with socket.create_connection(('127.0.0.1', self.u.uport), timeout=10) as s:
            s.sendall(whole[:8])
            t0 = time.monotonic()
            self.assertEqual(s.recv(10), b'')
            self.assertLess(time.monotonic() - t0, 6)
        self.assert_serving()

    def test_random_garbage(self):
        rng = random.Random(1111)
        for i in range(200):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
            m2 = rng.choice([0, 1, 2, 3, 4, 5, 6, 17, 17, 17, rng.randrange(256)])
            if m2 in (1, 2, 6) or (m2 == 17 and b'cmd' in body):
                continue            # a random write could land; the cache must stay clean
            exchange(self.u.uport, packet(m2, body))
        self.assert_serving()
        self.assertIsNotNone(magic_reply(exchange(self.u.uport, magic('exists', 'probe', 'web'))))


if __name__ == '__main__':
    unittest.main()
