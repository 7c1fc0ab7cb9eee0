"""Write protection of modifier1 111: --ucache-readonly (every socket),
--ucache-readonly-socket ADDR and --ucache-write-socket ADDR (per socket).
Every write command (1 set, 2 del, 17 set/update/del/clear), the dump
(6) and the key listing (17 keys) are refused with a close and a
rate-limited log line; reads (0, 3, 4, 5, 17 get/exists) are still served;
the app's own API is not affected; a mistyped socket address stops uwsgi
at start."""
import struct
import unittest

from cachewire import array, dump_request, exchange, magic, magic_reply, packet, parse_dump
from harness import STOCK, Uwsgi, app, free_port, poll, run_to_exit
from harness import uwsgi_vars as V

CACHES = ('--cache2', 'name=main,items=20', '--cache2', 'name=other,items=20')


def writes(cache=None):
    """(name, packet) for every write or dump request."""
    return [
        ('set', packet(1, array(b'new', b'v'))),
        ('del', packet(2, b'k')),
        ('dump', packet(6)),
        ('dump named', packet(6, b'other')),
        ('ucache dump', dump_request()),
        ('ucache dump named', dump_request(b'other')),
        ('magic set', magic('set', 'new', cache, size=1, value=b'v')),
        ('magic update', magic('update', 'k', cache, size=1, value=b'v')),
        ('magic del', magic('del', 'k', cache)),
        ('magic clear', magic('clear', cache=cache)),
        ('magic keys', magic('keys', cache=cache)),
    ]


@unittest.skipIf(STOCK, 'ucache options')
class ReadOnly(unittest.TestCase):
    def fill(self, u):
        u.ops(['cache_update', 'k', 'value', 0, 'main'], ['cache_update', 'k', 'value', 0, 'other'],
              ['cache_del', 'new', 'main'], ['cache_del', 'new', 'other'])

    def assert_unchanged(self, u):
        self.assertEqual(u.ops(['cache_get', 'k', 'main'], ['cache_get', 'k', 'other'],
                               ['cache_get', 'new', 'main'], ['cache_get', 'new', 'other']),
                         [b'value', b'value', None, None])

    def assert_refused(self, u, port):
        self.fill(u)
        for cache in (None, 'other'):
            for name, data in writes(cache):
                self.assertEqual(exchange(port, data), b'', name)
        self.assert_unchanged(u)

    def assert_allowed(self, u, port):
        self.fill(u)
        self.assertTrue(parse_dump(exchange(port, dump_request()))[2])
        self.assertIsNotNone(magic_reply(exchange(port, magic('update', 'k', size=1, value=b'w'))))
        exchange(port, packet(1, array(b'new', b'v')))
        self.assertEqual(u.ops(['cache_get', 'k', 'main'], ['cache_get', 'new', 'main']), [b'w', b'v'])

    def assert_reads_served(self, port):
        self.assertEqual(exchange(port, packet(0, b'k')), struct.pack('<BHB', 111, 5, 0) + b'value')
        self.assertTrue(exchange(port, packet(3, V([('key', 'k')]))).endswith(b'\r\n\r\nvalue'))
        self.assertTrue(exchange(port, packet(4, V([('key', 'x')]))).startswith(b'HTTP/1.1 404'))
        self.assertEqual(exchange(port, packet(5, b'k')), struct.pack('<BHB', 111, 0, 1) + b'value')
        self.assertEqual(magic_reply(exchange(port, magic('get', 'k', 'other')))[1], b'value')
        self.assertIsNotNone(magic_reply(exchange(port, magic('exists', 'k'))))

    def test_global_readonly(self):
        with Uwsgi(*CACHES, '--ucache-readonly', '--wsgi-file', app('ops_app.py'), socket_=True) as u:
            self.assertIn('modifier1 111 is read-only', u.log())
            self.assert_refused(u, u.uport)
            self.assert_reads_served(u.uport)
            # the app's own API is not modifier1 111: it still writes
            self.assertEqual(u.ops(['cache_set', 'app', 'a', 0, 'main'], ['cache_clear', 'other']),
                             [True, True])
            poll(lambda: 'refused: read-only (--ucache-readonly)' in u.log(), 5, what='log line')
            # one line per second at most, however many were refused
            self.assertLessEqual(u.log().count('refused'), 3)

    def two_sockets(self, opt, which):
        """uwsgi with a read-only and a read-write socket; opt names one of
        them (which: 'ro' or 'rw')."""
        ports = {'ro': free_port(), 'rw': free_port()}
        u = Uwsgi(*CACHES, '--socket', '127.0.0.1:%d' % ports['ro'],
                  '--socket', '127.0.0.1:%d' % ports['rw'], opt, '127.0.0.1:%d' % ports[which],
                  '--wsgi-file', app('ops_app.py'))
        return u, ports['ro'], ports['rw']

    def test_readonly_socket(self):
        u, ro, rw = self.two_sockets('--ucache-readonly-socket', 'ro')
        with u:
            self.assertIn('modifier1 111 on 127.0.0.1:%d is read-only' % ro, u.log())
            self.assert_refused(u, ro)
            self.assert_reads_served(ro)
            self.assert_allowed(u, rw)
            poll(lambda: 'read-only socket (--ucache-readonly-socket)' in u.log(), 5, what='log line')

    def test_write_socket(self):
        u, ro, rw = self.two_sockets('--ucache-write-socket', 'rw')
        with u:
            self.assertIn('writes and dumps allowed on 127.0.0.1:%d only' % rw, u.log())
            self.assert_refused(u, ro)
            self.assert_reads_served(ro)
            self.assert_allowed(u, rw)
            poll(lambda: 'not a write socket (--ucache-write-socket)' in u.log(), 5, what='log line')

    def test_remote_client_sees_failures(self):
        with Uwsgi(*CACHES, '--ucache-readonly', '--wsgi-file', app('ops_app.py'), socket_=True) as s, \
                Uwsgi('--cache2', 'name=local,items=5', '--wsgi-file', app('ops_app.py')) as c:
            s.op('cache_set', 'k', 'v', 0, 'main')
            r = 'main@127.0.0.1:%d' % s.uport
            self.assertEqual(c.ops(['cache_get', 'k', r], ['cache_exists', 'k', r],
                                   ['cache_set', 'x', 'y', 0, r], ['cache_update', 'k', 'y', 0, r],
                                   ['cache_del', 'k', r], ['cache_clear', r]),
                             [b'v', True, None, None, None, None])
            self.assertEqual(s.op('cache_get', 'k', 'main'), b'v')

    def test_unknown_socket_is_a_configuration_error(self):
        for opt in ('--ucache-readonly-socket', '--ucache-write-socket'):
            port, other = free_port(), free_port()
            rc, out = run_to_exit(['--socket', '127.0.0.1:%d' % port, '--cache2', 'name=a,items=5',
                                   opt, '127.0.0.1:%d' % other])
            self.assertEqual(rc, 1, out)
            self.assertIn('ucache: %s 127.0.0.1:%d: no such socket' % (opt, other), out)

    def test_socket_both_readonly_and_write_is_an_error(self):
        addr = '127.0.0.1:%d' % free_port()
        rc, out = run_to_exit(['--socket', addr, '--cache2', 'name=a,items=5',
                               '--ucache-readonly-socket', addr, '--ucache-write-socket', addr])
        self.assertEqual(rc, 1, out)
        self.assertIn('also given to --ucache-readonly-socket', out)


if __name__ == '__main__':
    unittest.main()
