"""The engine's atomic operations between real processes (4 uwsgi
workers racing): get_or_set single flight (the callback runs once; a SIGKILLed
computer is taken over before the wait bound), CAS and Django incr races
(no lost update over 10k rounds), the RPC functions from Perl in the same
instance, and the write protection on RPC over the network."""
import json
import os
import signal
import struct
import threading
import time
import unittest

from harness import Uwsgi, app, http_body, need, poll, stock_plugin, uwsgi_request

# 4 racing workers and one for the test's own look-ups; the master respawns the killed one
CACHES = ('--cache2', 'name=fl,items=100', '--master', '--processes', '5')


def parallel(u, paths, timeout=60):
    """GET every path at once from its own thread; [(status, body) or exception]."""
    out = [None] * len(paths)

    def one(i, p):
        try:
            status, _, body = u.request(p, timeout=timeout)
            out[i] = (status, json.loads(body))
        except Exception as e:  # a killed worker's connection
            out[i] = e
    ts = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in ts:
        t.start()
    return ts, out


class Processes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi(*CACHES, '--wsgi-file', app('flight_app.py')).__enter__()
        poll(lambda: cls.u.log().count('spawned uWSGI worker') >= 5, what='5 workers')

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def num(self, key):
        return self.u.op('cache_num', key, 'fl')

    def test_single_flight_four_workers_callback_runs_once(self):
        ts, out = parallel(self.u, ['/gos?key=a&sleep=0.2&wait=20&n=4'] * 4)
        for t in ts:
            t.join(30)
        self.assertTrue(all(isinstance(o, tuple) and o[0] == 200 for o in out), out)
        self.assertEqual(self.num('calls:a'), 1)
        values = {o[1]['value'] for o in out}
        self.assertEqual(len(values), 1, out)
        # all four were in flight together (the computer waited for them): four workers
        self.assertEqual(len({o[1]['pid'] for o in out}), 4, out)

    def test_killed_computer_is_taken_over_within_the_bound(self):
        wait = 20
        ts, out = parallel(self.u, ['/gos?key=b&sleep=60&wait=%d&n=4' % wait] * 4)
        pid = int(poll(lambda: self.u.op('cache_get', 'computer:b', 'fl'), 10, what='a computer'))
        poll(lambda: self.num('arrived:b') == 4, 10, what='the three waiters')
        t_kill = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        for t in ts:
            t.join(wait + 10)
        took = time.monotonic() - t_kill
        served = [o[1] for o in out if isinstance(o, tuple)]
        self.assertEqual(len(served), 3, out)  # the killed worker's client got no answer
        self.assertEqual(self.num('calls:b'), 2)  # the dead one's call, then the taker's
        self.assertEqual(len({s['value'] for s in served}), 1)
        self.assertNotEqual(served[0]['value'], 'v-%d' % pid)
        self.assertLess(took, wait, 'taken over before the waiters gave up')

    def test_cas_race_no_lost_update_10k_rounds(self):
        self.u.op('cache_del', 'ctr', 'fl')
        self.assertIs(self.u.op('cache_update', 'ctr', __import__('pickle').dumps(0, 5), 0, 'fl'), True)
        ts, out = parallel(self.u, ['/cas?rounds=2500'] * 4, timeout=120)
        for t in ts:
            t.join(150)
        self.assertTrue(all(isinstance(o, tuple) and o[0] == 200 for o in out), out)
        import pickle
        self.assertEqual(pickle.loads(self.u.op('cache_get', 'ctr', 'fl')), 10000)

    def test_django_incr_race_no_lost_update(self):
        self.u.op('cache_update', ':1:dj', struct.pack('=q', 0), 0, 'fl')
        ts, out = parallel(self.u, ['/djincr?n=2500'] * 4, timeout=120)
        for t in ts:
            t.join(150)
        self.assertTrue(all(isinstance(o, tuple) and o[0] == 200 for o in out), out)
        self.assertEqual(self.num(':1:dj'), 10000)
        self.assertEqual(max(o[1]['last'] for o in out), 10000)


@need(stock_plugin('psgi'))
class Perl(unittest.TestCase):
    """The RPC functions from Perl (uwsgi::call) on the cache Python uses."""

    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi('--cache2', 'name=fl,items=100', '--wsgi-file', app('flight_app.py'),
                      '--psgi', app('rpc_app.pl'), plugins=('python3', 'psgi'), socket_=True).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def call(self, f, *args):
        from urllib.parse import quote
        qs = 'f=%s' % f + ''.join('&a=' + quote(a, safe='') for a in args)
        raw = uwsgi_request(self.u.uport, {'PATH_INFO': '/call', 'QUERY_STRING': qs}, 5)
        status, body = http_body(raw)
        self.assertIn('200', status, raw)
        return body[2:] if body.startswith(b'R:') else None

    def test_rpc_functions_from_perl(self):
        c = self.call
        self.assertEqual(c('ucache_add', 'fl', 'k', 'v1', '100'), b'Y')
        self.assertEqual(c('ucache_add', 'fl', 'k', 'v2'), b'N')
        self.assertEqual(self.u.op('cache_get', 'k', 'fl'), b'v1')
        got = c('ucache_gets', 'fl', 'k')
        self.assertEqual((got[:1], got[17:]), (b'Y', b'v1'))
        ver = got[1:17].decode()
        self.assertEqual(c('ucache_cas', 'fl', 'k', ver, 'v3'), b'Y')
        self.assertEqual(c('ucache_cas', 'fl', 'k', ver, 'v4'), b'N')
        self.assertEqual(self.u.op('cache_get', 'k', 'fl'), b'v3')
        self.assertIn(int(c('ucache_ttl', 'fl', 'k')[1:]), (99, 100))  # cas kept the TTL
        self.assertEqual(c('ucache_touch', 'fl', 'k', '0'), b'Y')
        self.assertEqual(c('ucache_ttl', 'fl', 'k'), b'Y-1')
        self.assertEqual(c('ucache_update', 'fl', 'k', 'v5'), b'Y')
        self.assertEqual(c('ucache_update', 'fl', 'nokey', 'v'), b'N')
        self.assertEqual(c('ucache_incr', 'fl', 'n', '1'), b'N')
        self.assertEqual(c('ucache_incr', 'fl', 'n', '5', '10', '60'), b'Y15')
        self.assertEqual(c('ucache_incr', 'fl', 'n', '-20'), b'Y-5')
        self.assertEqual(self.u.op('cache_num', 'n', 'fl'), -5)
        self.assertEqual(c('ucache_incr', 'fl', 'k', '1')[:7], b'EEINVAL')
        self.assertEqual(c('ucache_set_many', 'fl', '0', 'a', 'A', 'b', 'BB'), b'Y11')
        self.assertEqual(c('ucache_get_many', 'fl', 'a', 'zz', 'b'), b'Y1:A-2:BB')
        self.assertEqual(c('ucache_delete_many', 'fl', 'a', 'zz'), b'Y10')
        self.assertEqual(c('ucache_get_stale', 'fl', 'b'), b'YBB')
        self.assertEqual(c('ucache_get_stale', 'fl', 'a'), b'N')
        st = c('ucache_flight_begin', 'fl', 'g', '0')
        self.assertEqual(st[:1], b'C')
        self.assertEqual(c('ucache_flight_begin', 'fl', 'g', '0'), b'T')  # held by a live worker
        self.assertEqual(c('ucache_flight_end', 'fl', 'g', st[1:].decode(), 'computed', '0'), b'Y')
        self.assertEqual(c('ucache_flight_begin', 'fl', 'g', '0'), b'Hcomputed')
        self.assertEqual(c('ucache_add', 'nosuch', 'k', 'v')[:7], b'EENOENT')
        self.assertEqual(c('ucache_add', 'fl', 'k')[:7], b'EEINVAL')


class BadInput(unittest.TestCase):
    """Malformed RPC calls get an E reply naming the function; nothing is
    written, the worker carries on."""

    def test_malformed_calls(self):
        with Uwsgi('--cache2', 'name=fl,items=10', '--cache2', 'name=tiny,items=4,blocksize=16',
                   '--wsgi-file', app('flight_app.py')) as u:
            def call(*args):
                return u.op('call', *[a.encode() for a in args])
            self.assertEqual(call('ucache_ttl'), b'EEINVAL ucache_ttl: bad argument')
            self.assertEqual(call('ucache_cas', 'fl', 'k', 'xyz!', 'v')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_cas', 'fl', 'k', '1' * 17, 'v')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_incr', 'fl', 'n', '12a')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_incr', 'fl', 'n', '-')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_incr', 'fl', 'n', '9223372036854775808')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_add', 'fl', 'k', 'v', '1e3')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_set_many', 'fl', '0', 'a')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_add', 'fl', '', 'v')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_add', 'fl', 'k', '')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_add', 'tiny', 'k', 'x' * 17), b'EE2BIG ucache_add: key or value too large')
            self.assertEqual(call('ucache_flight_end', 'fl', 'k', 'zz', 'v')[:7], b'EEINVAL')
            self.assertEqual(call('ucache_add', 'fl', 'k' * 3000, 'v')[:6], b'EE2BIG')
            self.assertEqual(call('ucache_flight_begin', 'fl', 'k' * 2045, '0')[:7], b'EEINVAL')
            self.assertEqual(u.op('cache_keys', 'fl'), [])
            self.assertEqual(u.op('cache_keys', 'tiny'), [])
            self.assertEqual(call('ucache_incr', 'fl', 'n', '-9223372036854775808', '0'), b'Y-9223372036854775808')


class Overflow(unittest.TestCase):
    def test_bug_ucache_incr_rpc_wraps_at_int64_max(self):
        """The RPC wrapped INT64_MAX + 1 to INT64_MIN while the near cache's
        HINCRBY failed: one rule now, the engine's, for the RPC and
        uwsgi.cache_inc & co. alike: fail, name it, write nothing."""
        top, bottom = str(2 ** 63 - 1), str(-2 ** 63)
        with Uwsgi('--cache2', 'name=fl,items=10', '--wsgi-file', app('flight_app.py')) as u:
            def call(*args):
                return u.op('call', *[a.encode() for a in args])
            self.assertEqual(call('ucache_incr', 'fl', 'n', '-1', top, '0'), ('Y%d' % (2 ** 63 - 2)).encode())
            self.assertEqual(call('ucache_incr', 'fl', 'n', '1'), b'Y' + top.encode())
            self.assertEqual(call('ucache_incr', 'fl', 'n', '1'),
                             b'EERANGE ucache_incr: the result is outside the 64-bit range (nothing written)')
            self.assertEqual(u.op('cache_num', 'n', 'fl'), 2 ** 63 - 1)
            self.assertEqual(call('ucache_incr', 'fl', 'm', '0', bottom, '0'), b'Y' + bottom.encode())
            self.assertEqual(call('ucache_incr', 'fl', 'm', '-1')[:7], b'EERANGE')
            self.assertEqual(call('ucache_incr', 'fl', 'new', '1', top, '0')[:7], b'EERANGE')
            self.assertIsNone(u.op('cache_get', 'new', 'fl'))
            # the same rule for the stock API's math
            self.assertIsNone(u.op('cache_inc', 'n', 1, 0, 'fl'))
            self.assertIsNone(u.op('cache_mul', 'n', 2, 0, 'fl'))
            self.assertIsNone(u.op('cache_dec', 'm', 1, 0, 'fl'))
            self.assertIsNone(u.op('cache_div', 'm', -1, 0, 'fl'))
            self.assertEqual((u.op('cache_num', 'n', 'fl'), u.op('cache_num', 'm', 'fl')), (2 ** 63 - 1, -2 ** 63))
            self.assertIs(u.op('cache_dec', 'n', 1, 0, 'fl'), True)
            self.assertEqual(u.op('cache_num', 'n', 'fl'), 2 ** 63 - 2)


class NetworkWriteProtection(unittest.TestCase):
    """RPC over the network (modifier1 173): reads answer, writes obey
    --ucache-readonly; the same call from the app itself still writes."""

    def rpc(self, port, *args):
        from cachewire import exchange, header
        body = b''.join(struct.pack('<H', len(a)) + a for a in args)
        return exchange(port, struct.pack('<BHB', 173, len(body), 1) + body)

    def test_readonly_refuses_rpc_writes_from_the_network(self):
        with Uwsgi('--cache2', 'name=fl,items=10', '--ucache-readonly', '--wsgi-file', app('flight_app.py'),
                   plugins=('python3', 'rpc'), socket_=True) as u:
            self.assertEqual(self.rpc(u.uport, b'ucache_add', b'fl', b'k', b'v')[:6], b'EEROFS')
            self.assertIsNone(u.op('cache_get', 'k', 'fl'))
            self.assertEqual(self.rpc(u.uport, b'ucache_flight_begin', b'fl', b'k', b'0')[:6], b'EEROFS')
            u.op('cache_set', 'r', 'x', 0, 'fl')
            self.assertEqual(self.rpc(u.uport, b'ucache_ttl', b'fl', b'r'), b'Y-1')
            self.assertEqual(self.rpc(u.uport, b'ucache_get_many', b'fl', b'r'), b'Y1:x')

    def test_writable_instance_accepts_rpc_writes(self):
        with Uwsgi('--cache2', 'name=fl,items=10', '--wsgi-file', app('flight_app.py'),
                   plugins=('python3', 'rpc'), socket_=True) as u:
            self.assertEqual(self.rpc(u.uport, b'ucache_add', b'fl', b'k', b'v'), b'Y')
            self.assertEqual(u.op('cache_get', 'k', 'fl'), b'v')


if __name__ == '__main__':
    unittest.main()
