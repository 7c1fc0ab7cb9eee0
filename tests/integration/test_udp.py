"""UDP replication (nodes= / udp=, --cache-udp-node / --cache-udp-server)
between real processes on loopback: stock -> ucache and ucache -> stock
(a stock node is plain uwsgi + the stock "cache" plugin), ucache <-> ucache,
garbage and truncated datagrams from a raw socket, signed / unsigned /
replayed datagrams with udp_secret_file, udp_allow, bad addresses at start.

Replication is asynchronous, so every expectation is polled.  Where a test
needs to know that something did NOT arrive, it sends a marker after it on
the same path and waits for the marker: datagrams between two sockets on
loopback arrive in order, so once the marker is there the other one has
been received (and applied, or dropped) too.
"""
import hashlib
import hmac
import os
import socket
import struct
import tempfile
import time
import unittest

from cachewire import exchange, magic, magic_reply
from harness import Uwsgi, app, free_port, poll, run_to_exit, stats_json, stock_plugin

HERE = os.path.dirname(os.path.abspath(__file__))
REGRESSIONS = os.path.join(os.path.dirname(HERE), 'fuzz', 'udp-regressions')


def udp_port():
    return free_port(socket.SOCK_DGRAM)


def counted(b):
    return struct.pack('<H', len(b)) + b


def dgram_set(key, val, expires=0):
    body = counted(key) + counted(val) + counted(str(expires).encode())
    return struct.pack('<BHB', 111, len(body), 10) + body


def dgram_del(key, pad=True):
    body = counted(key) + (b'\0\0' if pad else b'')
    return struct.pack('<BHB', 111, len(body), 11) + body


def sign(dgram, secret, sender=1, seq=1, ts=None):
    """The signed trailer of plugins/ucache/wire/udpwire.h, built here by hand."""
    ts = int(time.time()) if ts is None else ts
    trailer = b'UCS1' + struct.pack('<QQQ', sender, seq, ts)
    body = dgram[4:] + trailer
    d = struct.pack('<BHB', 111, len(body) + 32, dgram[3]) + body
    return d + hmac.new(secret, d, hashlib.sha256).digest()


def send(port, data):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, ('127.0.0.1', port))


class Node(Uwsgi):
    """A uwsgi node with one cache NAME (items=100), a uwsgi socket for
    magic gets (value + expiry), the stats server, and optionally udp= /
    nodes=.  stock: the stock cache instead of ucache."""

    def __init__(self, name='r', udp=None, nodes=(), stock=False, keys='', args=(), legacy=False,
                 deploy=False):
        """legacy: the legacy --cache (named "default") with --cache-udp-server /
        --cache-udp-node.  deploy: the harness's deployment mode."""
        self.name = 'default' if legacy else name
        self.udp = udp
        self.stats = free_port()
        if legacy:
            cache = ['--cache', '100']
            cache += ['--cache-udp-server', '127.0.0.1:%d' % udp] if udp else []
            for p in nodes:
                cache += ['--cache-udp-node', '127.0.0.1:%d' % p]
        else:
            kv = 'name=%s,items=100' % name
            if udp:
                kv += ',udp=127.0.0.1:%d' % udp
            if nodes:
                kv += ',nodes=' + ';'.join('127.0.0.1:%d' % p for p in nodes)
            cache = ['--cache2', kv + keys]
        kw = dict(plugins=('python3', stock_plugin('cache')), ucache=False) if stock else {}
        super().__init__('--master', *cache, '--stats', '127.0.0.1:%d' % self.stats,
                         '--wsgi-file', app('ops_app.py'), *args, socket_=True, deploy=deploy, **kw)

    def __enter__(self):
        super().__enter__()
        if self.udp:
            # stock binds its udp= socket in the thread it starts after the
            # workers; ucache binds at start, and logs the same line
            line = '*** udp server for cache "%s" running on 127.0.0.1:%d ***' % (self.name, self.udp)
            poll(lambda: line in self.log(), 10, what='the udp server of %s' % self.name)
        return self

    def get(self, key):
        return self.op('cache_get', key, self.name)

    def get_ex(self, key):
        """(value, expires) through modifier2 17, or None."""
        r = magic_reply(exchange(self.uport, magic('get', key, self.name)))
        if r is None:
            return None
        return r[1], int(r[0].get('expires', b'0') or 0)

    def counters(self):
        c = stats_json(self.stats)['caches'][0]
        return {k: v for k, v in c.items() if k.startswith('udp_')}

    def wait_counter(self, name, value):
        return poll(lambda: self.counters()[name] == value and self.counters(), 10,
                    what='%s == %d (now %s)' % (name, value, self.counters()))

    def wait_value(self, key, value):
        poll(lambda: self.get(key) == value, 10,
             what='%r == %r on %s (now %r)' % (key, value, self.name, self.get(key)))


def set_and_update(test, sender, receiver):
    """A set with an expiry, then an update without: replicated, the
    absolute expiry as is."""
    test.assertIs(sender.op('cache_set', 'k', 'v', 100, 'r'), True)
    receiver.wait_value('k', b'v')
    test.assertEqual(receiver.get_ex('k'), sender.get_ex('k'))
    test.assertGreater(receiver.get_ex('k')[1], time.time() + 90)
    test.assertIs(sender.op('cache_update', 'k', 'w', 0, 'r'), True)
    receiver.wait_value('k', b'w')
    test.assertEqual(receiver.get_ex('k'), (b'w', 0))


class StockToUcache(unittest.TestCase):
    def test_set_update_del_expiry_from_stock(self):
        pu, ps = udp_port(), udp_port()
        with Node(udp=pu) as u, Node(udp=ps, nodes=[pu], stock=True) as s:
            set_and_update(self, s, u)
            # stock sends its del unpadded: ucache applies it anyway
            self.assertIs(s.op('cache_del', 'k', 'r'), True)
            u.wait_value('k', None)
            c = u.wait_counter('udp_applied', 3)
            self.assertEqual((c['udp_received'], c['udp_malformed'], c['udp_refused']), (3, 0, 0))

    def test_stock_math_sends_the_delta(self):
        """Documented stock behaviour: stock's math sends the delta as the
        value, so a peer (ucache or stock) holds the delta, not the sum."""
        pu, ps = udp_port(), udp_port()
        with Node(udp=pu) as u, Node(udp=ps, nodes=[pu], stock=True) as s:
            self.assertIs(s.op('cache_inc', 'n', 5, 0, 'r'), True)
            self.assertIs(s.op('cache_inc', 'n', 5, 0, 'r'), True)
            self.assertEqual(s.op('cache_num', 'n', 'r'), 10)
            u.wait_counter('udp_applied', 2)
            self.assertEqual(u.op('cache_num', 'n', 'r'), 5)

    def test_stock_expiry_never_served_expired(self):
        pu, ps = udp_port(), udp_port()
        with Node(udp=pu) as u, Node(udp=ps, nodes=[pu], stock=True) as s:
            self.assertIs(s.op('cache_set', 'short', 'v', 2, 'r'), True)
            u.wait_value('short', b'v')
            expires = u.get_ex('short')[1]
            poll(lambda: time.time() >= expires + 0.05, 5, what='the expiry')
            # gone at once, whatever the sweeper did
            self.assertIsNone(u.get('short'))
            self.assertIsNone(u.get_ex('short'))


class UcacheToStock(unittest.TestCase):
    def test_set_update_del_math_reach_stock(self):
        pu, ps = udp_port(), udp_port()
        with Node(udp=ps, stock=True) as s, Node(udp=pu, nodes=[ps]) as u:
            set_and_update(self, u, s)
            # a padded del: the stock receiver applies it
            self.assertIs(u.op('cache_del', 'k', 'r'), True)
            s.wait_value('k', None)
            # math: the resulting value, not the delta
            self.assertIs(u.op('cache_inc', 'n', 5, 0, 'r'), True)
            self.assertIs(u.op('cache_inc', 'n', 5, 0, 'r'), True)
            self.assertIs(u.op('cache_mul', 'n', 3, 0, 'r'), True)
            poll(lambda: s.op('cache_num', 'n', 'r') == 30, 10, what='n == 30 on stock')
            c = u.counters()
            self.assertEqual((c['udp_sent'], c['udp_send_errors'], c['udp_oversize']), (6, 0, 0))
            # clear is not replicated (as stock)
            self.assertIs(u.op('cache_set', 'keep', 'x', 0, 'r'), True)
            s.wait_value('keep', b'x')
            self.assertIs(u.op('cache_clear', 'r'), True)
            self.assertEqual(u.counters()['udp_sent'], 7)
            self.assertEqual(s.get('keep'), b'x')

    def test_stock_to_stock_drops_dels(self):
        """Why ucache pads dels: between two stock nodes, a del never
        arrives (stock's receiver drops every unpadded del)."""
        p1, p2 = udp_port(), udp_port()
        with Node(udp=p2, stock=True) as s2, Node(udp=p1, nodes=[p2], stock=True) as s1:
            s1.op('cache_set', 'k', 'v', 0, 'r')
            s2.wait_value('k', b'v')
            s1.op('cache_del', 'k', 'r')
            s1.op('cache_set', 'marker', 'm', 0, 'r')
            s2.wait_value('marker', b'm')
            self.assertEqual(s2.get('k'), b'v')


class UcacheToUcache(unittest.TestCase):
    def test_both_ways_and_no_echo(self):
        pa, pb = udp_port(), udp_port()
        with Node(udp=pa, nodes=[pb]) as a, Node(udp=pb, nodes=[pa]) as b:
            self.assertIs(a.op('cache_set', 'k', 'v', 100, 'r'), True)
            b.wait_value('k', b'v')
            self.assertEqual(b.get_ex('k'), a.get_ex('k'))
            self.assertIs(b.op('cache_update', 'k', 'w', 0, 'r'), True)
            a.wait_value('k', b'w')
            self.assertEqual(a.get_ex('k'), (b'w', 0))
            self.assertIs(a.op('cache_inc', 'n', 7, 0, 'r'), True)
            poll(lambda: b.op('cache_num', 'n', 'r') == 7, 10, what='n == 7')
            self.assertIs(b.op('cache_dec', 'n', 2, 0, 'r'), True)
            poll(lambda: a.op('cache_num', 'n', 'r') == 5, 10, what='n == 5')
            self.assertIs(a.op('cache_del', 'k', 'r'), True)
            b.wait_value('k', None)
            # what a node applied it never sent on: each sent exactly its own
            # writes, and received exactly the other's
            ca, cb = a.wait_counter('udp_applied', 2), b.wait_counter('udp_applied', 3)
            self.assertEqual((ca['udp_sent'], ca['udp_received']), (3, 2))
            self.assertEqual((cb['udp_sent'], cb['udp_received']), (2, 3))

    def test_ipv6(self):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(('::1', 0))
            port = s.getsockname()[1]
        with Node(keys=',udp=[::1]:%d,udp_allow=::1' % port) as b, \
                Node(keys=',nodes=[::1]:%d' % port) as a:
            line = '*** udp server for cache "r" running on [::1]:%d ***' % port
            poll(lambda: line in b.log(), 10, what='the udp server line')
            a.op('cache_set', 'k', 'v6', 0, 'r')
            b.wait_value('k', b'v6')

    def test_oversized_value_sent_as_del(self):
        pa, pb = udp_port(), udp_port()
        big = ',blocksize=100000'
        with Node(udp=pb, keys=big) as b, Node(udp=pa, nodes=[pb], keys=big) as a:
            a.op('cache_set', 'k', 'small', 0, 'r')
            b.wait_value('k', b'small')
            value = b'x' * 70000
            self.assertIs(a.op('cache_update', 'k', value, 0, 'r'), True)
            self.assertEqual(a.get('k'), value)
            # never a truncated value: the peer drops its stale copy
            b.wait_value('k', None)
            c = a.counters()
            self.assertEqual((c['udp_oversize'], c['udp_sent']), (1, 2))
            # the largest value that fits still goes as a set
            fits = b'y' * (65507 - (4 + 2 + 1 + 2 + 2 + 1))
            a.op('cache_update', 'k', fits, 0, 'r')
            b.wait_value('k', fits)


class Reload(unittest.TestCase):
    """Replication across graceful reloads of a ucache node deployed as Debian
    runs it (harness deployment mode: root -> www-data, --master), with a
    stock peer on the legacy options, both directions."""

    def both_ways(self, u, s, round_):
        value = ('v%d' % round_).encode()
        self.assertIs(u.op('cache_update', 'to-stock', value, 0, 'r'), True)
        s.wait_value('to-stock', value)
        self.assertIs(s.op('cache_update', 'to-ucache', value, 0, 'default'), True)
        u.wait_value('to-ucache', value)

    def check_reloads(self, how):
        pu, ps = udp_port(), udp_port()
        with Node(udp=ps, nodes=[pu], stock=True, legacy=True) as s, \
                Node(udp=pu, nodes=[ps], deploy=True) as u:
            self.both_ways(u, s, 0)
            for round_ in (1, 2):
                log = u.reload(how)
                self.assertIn('*** udp server for cache "r" running on 127.0.0.1:%d ***' % pu, log)
                self.both_ways(u, s, round_)
                # the counters count again from the new image, and nothing
                # failed: no send error, no datagram read from a stranger's fd
                c = u.wait_counter('udp_applied', 1)
                self.assertEqual((c['udp_sent'], c['udp_received'], c['udp_send_errors'],
                                  c['udp_malformed']), (1, 1, 0, 0))
            self.assertNotIn('UDP send to', u.log())
            self.assertNotIn('UDP datagram from', u.log())

    def test_bug_udp_sockets_closed_by_reload_sighup(self):
        self.check_reloads('sighup')

    def test_bug_udp_sockets_closed_by_reload_touch(self):
        self.check_reloads('touch')


class Garbage(unittest.TestCase):
    def test_garbage_and_truncated_datagrams(self):
        pu = udp_port()
        with Node(udp=pu) as u:
            bad = [b'', b'\x6f', b'garbage' * 10, os.urandom(1000), b'\x6f\xff\xff\x0a',
                   dgram_set(b'k', b'v')[:-1], dgram_set(b'k', b'v')[:6], dgram_del(b'k')[:5]]
            for name in sorted(os.listdir(REGRESSIONS)):
                with open(os.path.join(REGRESSIONS, name), 'rb') as f:
                    data = f.read()
                # the parse classes; the others are only refused with a secret
                if not name.startswith(('unsigned--', 'mac--', 'window--')):
                    bad.append(data)
            for d in bad:
                send(pu, d)
            c = u.wait_counter('udp_malformed', len(bad))
            self.assertEqual((c['udp_received'], c['udp_applied']), (len(bad), 0))
            self.assertIsNone(u.get('k'))
            # still serving, still receiving
            self.assertIs(u.op('cache_set', 'local', 'ok', 0, 'r'), True)
            self.assertEqual(u.get('local'), b'ok')
            send(pu, dgram_set(b'k', b'after'))
            u.wait_value('k', b'after')
            self.assertIn('UDP datagram from 127.0.0.1', u.log())

    def test_expired_datagram_never_stored(self):
        pu = udp_port()
        with Node(udp=pu) as u:
            u.op('cache_set', 'old', 'stale', 0, 'r')
            send(pu, dgram_set(b'old', b'new', int(time.time()) - 10))
            send(pu, dgram_set(b'fresh', b'f', int(time.time()) - 1))
            u.wait_counter('udp_applied', 2)
            self.assertIsNone(u.get('old'))
            self.assertIsNone(u.get('fresh'))
            # an expiry in a few seconds is kept, then not served past it
            when = int(time.time()) + 2
            send(pu, dgram_set(b'soon', b's', when))
            u.wait_value('soon', b's')
            self.assertEqual(u.get_ex('soon'), (b's', when))
            poll(lambda: time.time() >= when + 0.05, 5, what='the expiry')
            self.assertIsNone(u.get('soon'))


class Secret(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='ucache-udp-')
        self.secret = b'correct horse battery staple 42'
        self.path = os.path.join(self.dir, 'secret')
        with open(self.path, 'wb') as f:
            f.write(self.secret + b'\n')

    def test_signed_unsigned_replayed(self):
        pu, pa, cap = udp_port(), udp_port(), udp_port()
        keys = ',udp_secret_file=' + self.path
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tap:
            tap.bind(('127.0.0.1', cap))
            tap.settimeout(10)
            with Node(udp=pu, keys=keys) as u, Node(udp=pa, nodes=[pu, cap], keys=keys) as a:
                # a signed set from a ucache node with the secret: applied
                self.assertIs(a.op('cache_set', 'k', 'v', 0, 'r'), True)
                u.wait_value('k', b'v')
                captured = tap.recv(70000)
                self.assertEqual(captured[-60:-56], b'UCS1')
                # the same datagram again (a replay within the window)
                a.op('cache_set', 'k2', 'v2', 0, 'r')
                u.wait_value('k2', b'v2')
                u.op('cache_del', 'k', 'r')
                send(pu, captured)
                # unsigned (stock format), wrong secret, out of the window
                send(pu, dgram_set(b'k', b'unsigned'))
                send(pu, sign(dgram_set(b'k', b'wrong'), b'not the secret at all', seq=1))
                send(pu, sign(dgram_set(b'k', b'late'), self.secret, sender=99, seq=1,
                              ts=int(time.time()) - 120))
                c = u.wait_counter('udp_refused', 4)
                self.assertEqual((c['udp_applied'], c['udp_received']), (2, 6))
                self.assertIsNone(u.get('k'))
                # a fresh, correctly signed datagram built here is applied
                send(pu, sign(dgram_set(b'k', b'good'), self.secret, sender=99, seq=1))
                u.wait_value('k', b'good')
                # one line a second: the first refusal, the replay, is logged
                self.assertIn('UDP datagram from 127.0.0.1: replayed', u.log())

    def test_stock_receiver_reads_signed(self):
        """A stock node applies what a ucache node with a secret sends (it
        cannot check the signature): a fleet can be moved to signing while
        stock nodes still listen."""
        ps, pu = udp_port(), udp_port()
        with Node(udp=ps, stock=True) as s, Node(udp=pu, nodes=[ps], keys=',udp_secret_file=' + self.path) as u:
            u.op('cache_set', 'k', 'v', 0, 'r')
            s.wait_value('k', b'v')
            u.op('cache_del', 'k', 'r')
            s.wait_value('k', None)


class Allow(unittest.TestCase):
    def test_udp_allow(self):
        p1, p2 = udp_port(), udp_port()
        with Node(udp=p1, keys=',udp_allow=10.0.0.0/8;::1') as refusing, \
                Node(udp=p2, keys=',udp_allow=192.168.0.1;127.0.0.0/8') as allowing:
            send(p1, dgram_set(b'k', b'v'))
            send(p2, dgram_set(b'k', b'v'))
            allowing.wait_value('k', b'v')
            c = refusing.wait_counter('udp_refused', 1)
            self.assertEqual(c['udp_applied'], 0)
            self.assertIsNone(refusing.get('k'))
            self.assertIn('not in udp_allow', refusing.log())


class Startup(unittest.TestCase):
    def start_fails(self, *args):
        rc, out = run_to_exit(['--master', '--http-socket', '127.0.0.1:%d' % free_port()] + list(args)
                              + ['--wsgi-file', app('ops_app.py')])
        self.assertEqual(rc, 1, out)
        return [l for l in out.splitlines()
                if l.startswith('ucache:') and 'entry points redirected' not in l]

    def test_bad_addresses(self):
        cases = [
            (['--cache2', 'name=r,items=10,nodes=127.0.0.1'], 'key "nodes"', '127.0.0.1', 'HOST:PORT'),
            (['--cache2', 'name=r,items=10,nodes=127.0.0.1:1;127.0.0.1:70000'], 'key "nodes"',
             '127.0.0.1:70000', 'port'),
            (['--cache2', 'name=r,items=10,udp=nosuchhost.invalid:5000'], 'key "udp"',
             'nosuchhost.invalid:5000', ''),
            (['--cache2', 'name=r,items=10,udp=::1:5000'], 'key "udp"', '::1:5000', '[ADDR]'),
            (['--cache2', 'name=r,items=10,udp=127.0.0.1:5000,udp_allow=10.0.0.0/40'],
             'key "udp_allow"', '10.0.0.0/40', 'PREFIX'),
            (['--cache', '10', '--cache-udp-node', 'localhost'], '--cache-udp-node', 'localhost',
             'HOST:PORT'),
            (['--cache', '10', '--cache-udp-server', '127.0.0.1:x'], '--cache-udp-server',
             '127.0.0.1:x', 'port'),
        ]
        for args, where, value, why in cases:
            lines = self.start_fails(*args)
            self.assertEqual(len(lines), 1, lines)
            self.assertIn(where, lines[0])
            self.assertIn('"%s"' % value, lines[0])
            self.assertIn(why, lines[0])

    def test_bad_secret_and_busy_port(self):
        d = tempfile.mkdtemp(prefix='ucache-udp-')
        short = os.path.join(d, 'short')
        with open(short, 'w') as f:
            f.write('tooshort\n')
        lines = self.start_fails('--cache2', 'name=r,items=10,udp=127.0.0.1:%d,udp_secret_file=%s'
                                 % (udp_port(), short))
        self.assertEqual(len(lines), 1, lines)
        self.assertIn('holds 8 bytes', lines[0])
        # checked even on a cache that neither sends nor receives
        lines = self.start_fails('--cache2', 'name=r,items=10,udp_secret_file=' + d + '/none')
        self.assertIn('No such file', lines[0])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind(('127.0.0.1', 0))
            port = busy.getsockname()[1]
            lines = self.start_fails('--cache2', 'name=r,items=10,udp=127.0.0.1:%d' % port)
            self.assertIn('cannot bind to "127.0.0.1:%d"' % port, lines[0])

    def test_without_master_says_nothing_is_received(self):
        with Uwsgi('--cache2', 'name=r,items=10,udp=127.0.0.1:%d' % udp_port(),
                   '--wsgi-file', app('ops_app.py')) as u:
            self.assertIn('ucache: cache "r": udp needs the master (--master) to receive', u.log())
            self.assertNotIn('udp server thread enabled', u.log())

    def test_log_lines_and_legacy_options(self):
        """The stock lines, and --cache-udp-node / --cache-udp-server on the
        legacy --cache, against a stock node."""
        ps, pu = udp_port(), udp_port()
        legacy = ('--cache', '50', '--cache-udp-server', '127.0.0.1:%d' % pu,
                  '--cache-udp-node', '127.0.0.1:%d' % ps)
        with Node(udp=ps, stock=True) as s, Uwsgi('--master', '--wsgi-file', app('ops_app.py'),
                                                   *legacy) as u:
            line = '*** udp server for cache "default" running on 127.0.0.1:%d ***' % pu
            poll(lambda: line in u.log(), 10, what='the udp server line')
            log = u.log()
            self.assertIn('added udp node 127.0.0.1:%d for cache "default"' % ps, log)
            self.assertIn('udp server thread enabled for cache "default"', log)
            self.assertNotIn('not implemented yet', log)
            u.op('cache_set', 'k', 'v', 0)
            s.wait_value('k', b'v')
            send(pu, dgram_set(b'from', b'raw'))
            poll(lambda: u.op('cache_get', 'from') == b'raw', 10, what='the raw set')


if __name__ == '__main__':
    unittest.main()
