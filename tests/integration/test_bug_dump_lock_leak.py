"""Regression, stock bug "dump-lock-leak": the stock modifier2 6 handler
takes the cache's write lock and, when building the dump fails midway,
returns without releasing it; every later write then blocks forever.

ucache takes no lock to dump (each record is a lock-free engine read), so
a dump that fails midway - the client closes after a few bytes, or stalls
without reading - leaves nothing locked: later writes succeed promptly,
from the worker that served the dump and from the others, and the next
dump is complete."""
import socket
import time
import unittest

from cachewire import dump_request, exchange, magic, magic_reply, parse_dump
from harness import STOCK, Uwsgi, app

MIB = 1 << 20
ITEMS = 16            # 16 MiB of values: far more than the socket buffers


@unittest.skipIf(STOCK, 'ucache dump format')
class DumpLockLeak(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi('--master', '--processes', '2',
                      '--cache2', 'name=big,items=20,blocks=400,blocksize=65536,bitmap=1',
                      '--wsgi-file', app('ops_app.py'), socket_=True).__enter__()
        for i in range(ITEMS):
            value = bytes([i]) * MIB
            reply = exchange(cls.u.uport, magic('set', 'item%d' % i, size=MIB, value=value))
            assert magic_reply(reply), reply

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def start_dump(self):
        s = socket.create_connection(('127.0.0.1', self.u.uport), timeout=10)
        s.sendall(dump_request())
        return s

    def assert_writes_prompt(self, tag):
        """A write through every path completes within a second."""
        t0 = time.monotonic()
        self.assertIsNotNone(magic_reply(exchange(self.u.uport, magic('update', 'w', size=len(tag),
                                                                      value=tag.encode()))))
        self.assertIs(self.u.op('cache_update', 'w2', tag, 0, 'big'), True)
        self.assertIsNotNone(magic_reply(exchange(self.u.uport, magic('del', 'w2'))))
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(self.u.op('cache_get', 'w', 'big'), tag.encode())

    def assert_dump_complete(self):
        _, records, complete = parse_dump(exchange(self.u.uport, dump_request()))
        self.assertTrue(complete)
        self.assertEqual(sum(1 for k, _, _ in records if k.startswith(b'item')), ITEMS)

    def test_client_closes_midway(self):
        for round_ in range(4):
            s = self.start_dump()
            self.assertEqual(s.recv(100)[:1], b'\x6f')      # the dump started
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\0\0\0\0\0\0\0')
            s.close()                                      # reset: the server's writes fail
            self.assert_writes_prompt('closed-%d' % round_)
        self.assert_dump_complete()
        self.assertNotIn('DAMN', self.u.log())             # no worker died

    def test_client_stalls(self):
        stalled = [self.start_dump() for _ in range(1)]    # one worker blocked in a write
        try:
            for round_ in range(3):
                self.assert_writes_prompt('stalled-%d' % round_)
        finally:
            for s in stalled:
                s.close()
        self.assert_dump_complete()
        self.assertNotIn('DAMN', self.u.log())


if __name__ == '__main__':
    unittest.main()
