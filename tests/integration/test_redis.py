"""Near caches over Redis (--cache2 ...,redis=ADDR): two uwsgi instances, A
and B, share one real redis-server (Debian's, started here on a free port,
stopped by PID).  Checked: a write on A read on B; B's repeated reads stay
in its L1 (Redis INFO commandstats does not move); updates, deletes and
other Redis clients' writes reach both L1s within the staleness bound;
expiry, cache_set's NX, cache_inc's atomicity; Redis killed and restarted
empty, stopped (SIGSTOP) and continued; a random two-instance workload
checked against a model; modifier1 111 (nginx, remote protocol) reading
through L1 -> Redis; bad and unreachable addresses at start; the password
file; the stats keys."""
import os
import random
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
import unittest

from harness import (NGINX, STOCK, Nginx, Process, Uwsgi, app, free_port, need, poll,
                     run_to_exit, stats_json, uwsgi_packet, raw_exchange)

REDIS = shutil.which('redis-server') or '/usr/bin/redis-server'
# The listener pings every 100 ms and gives up after max(redis_timeout, 100)
# ms (redis_listener.c): the documented worst case is their sum.  The tests
# use redis_timeout=200, and allow the bound plus a margin for a loaded host.
BOUND = 0.3
SLACK = 1.0


class Redis(Process):
    """redis-server on a free port, no persistence, in its own session."""

    def __init__(self, port=None, extra=(), password=None):
        workdir = tempfile.mkdtemp(prefix='ucache-redis-')
        self.port = port or free_port()
        self.password = password
        if password:
            extra = list(extra) + ['--requirepass', password]
        argv = [REDIS, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                '--appendonly', 'no', '--dir', workdir] + list(extra)
        super().__init__(argv, workdir)

    def __enter__(self):
        self.start()
        try:
            poll(self.ping, 10, 0.02, 'redis-server to answer')
        except Exception:
            self.__exit__(None, None, None)   # no redis-server outlives a failed start
            raise
        return self

    def __exit__(self, *exc):
        if self.watchdog:
            self.watchdog.cancel()
        if self.alive():
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(5)

    def call(self, *args, timeout=5.0):
        """One command over RESP2; returns the decoded reply (errors raise)."""
        with socket.create_connection(('127.0.0.1', self.port), timeout=timeout) as s:
            out = b'*%d\r\n' % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b'$%d\r\n%s\r\n' % (len(a), a)
            if self.password:
                out = b'*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n' % (
                    len(self.password), self.password.encode()) + out
            s.sendall(out)
            f = s.makefile('rb')
            if self.password:
                _read_reply(f)
            return _read_reply(f)

    def ping(self):
        try:
            return self.call('PING') == 'PONG'
        except OSError:
            return False

    def calls(self, cmd):
        """calls= of cmd in INFO commandstats (0 if never called)."""
        for line in self.call('INFO', 'commandstats').decode().splitlines():
            if line.startswith('cmdstat_%s:' % cmd):
                return int(line.split('calls=')[1].split(',')[0])
        return 0


def _read_reply(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b'+':
        return rest.decode()
    if kind == b'-':
        raise RuntimeError(rest.decode())
    if kind == b':':
        return int(rest)
    if kind == b'$':
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b'*':
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError('bad reply %r' % line)


def instance(redis, *extra, cache='r', timeout=200, socket_=False, opts='', workers=2,
             blocksize=4096, deploy=False):
    stats = free_port()
    inst = Uwsgi('--master', '--workers', str(workers), '--stats', '127.0.0.1:%d' % stats,
                 '--cache2', 'name=%s,items=200,blocksize=%d,redis=127.0.0.1:%d,redis_timeout=%d%s'
                 % (cache, blocksize, redis.port, timeout, opts),
                 '--wsgi-file', app('ops_app.py'), *extra, socket_=socket_, deploy=deploy)
    inst.stats_port = stats
    return inst


def cache_stats(inst, name='r'):
    return [c for c in stats_json(inst.stats_port)['caches'] if c['name'] == name][0]


def connected(inst):
    return cache_stats(inst)['redis_connected'] == 1


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
class TwoInstances(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().__enter__()
        cls.a = instance(cls.redis, socket_=True).__enter__()
        cls.b = instance(cls.redis).__enter__()
        for inst in (cls.a, cls.b):
            poll(lambda: connected(inst), 10, 0.05, 'the listener to subscribe')

    @classmethod
    def tearDownClass(cls):
        cls.b.__exit__(None, None, None)
        cls.a.__exit__(None, None, None)
        cls.redis.__exit__(None, None, None)

    def setUp(self):
        self.assertIs(self.a.op('cache_clear', 'r'), True)

    def test_write_on_a_read_on_b(self):
        self.assertIs(self.a.op('cache_set', 'k1', 'from A', 0, 'r'), True)
        self.assertEqual(self.redis.call('GET', 'ucache:r:k1'), b'from A')
        self.assertEqual(self.b.op('cache_get', 'k1', 'r'), b'from A')
        self.assertIs(self.b.op('cache_exists', 'k1', 'r'), True)
        self.assertIsNone(self.b.op('cache_get', 'never-written', 'r'))

    def test_repeated_reads_on_b_stay_in_l1(self):
        self.assertIs(self.a.op('cache_set', 'hot', b'\x00hot\xff', 0, 'r'), True)
        # the first read may be undone by the invalidation of A's own write
        # arriving meanwhile (fills_dropped): read until B's L1 answers
        before = cache_stats(self.b)['l1_hits']
        poll(lambda: self.b.op('cache_get', 'hot', 'r') == b'\x00hot\xff' and
             cache_stats(self.b)['l1_hits'] > before, 5, 0.02, 'an L1 hit on B')
        evals = self.redis.calls('eval')
        fetches = cache_stats(self.b)['redis_fetches']
        got = self.b.ops(*[['cache_get', 'hot', 'r']] * 100)
        self.assertEqual(got, [b'\x00hot\xff'] * 100)
        self.assertEqual(self.redis.calls('eval'), evals)
        self.assertEqual(cache_stats(self.b)['redis_fetches'], fetches)
        self.assertGreaterEqual(cache_stats(self.b)['l1_hits'], before + 100)

    def _seen_on_b(self, key, want):
        t0 = time.monotonic()
        poll(lambda: self.b.op('cache_get', key, 'r') == want, BOUND + SLACK, 0.001,
             'B to see %r' % (want,))
        return time.monotonic() - t0

    def test_update_and_delete_on_a_seen_on_b(self):
        self.assertIs(self.a.op('cache_set', 'u', 'one', 0, 'r'), True)
        poll(lambda: self.b.op('cache_get', 'u', 'r') == b'one', 5, 0.01, 'B to fill')
        self.b.op('cache_get', 'u', 'r')
        self.assertIs(self.a.op('cache_update', 'u', 'two', 0, 'r'), True)
        self._seen_on_b('u', b'two')
        self.b.op('cache_get', 'u', 'r')
        self.assertIs(self.a.op('cache_del', 'u', 'r'), True)
        self._seen_on_b('u', None)
        self.assertIsNone(self.redis.call('GET', 'ucache:r:u'))

    def test_other_redis_client_invalidates_both(self):
        self.redis.call('SET', 'ucache:r:ext', 'first')
        for inst in (self.a, self.b):
            poll(lambda: inst.op('cache_get', 'ext', 'r') == b'first', 5, 0.01, 'fill')
        inv = [cache_stats(i)['invalidations'] for i in (self.a, self.b)]
        self.redis.call('SET', 'ucache:r:ext', 'second')
        for inst in (self.a, self.b):
            poll(lambda: inst.op('cache_get', 'ext', 'r') == b'second', BOUND + SLACK, 0.005,
                 'the redis-cli write to be seen')
        self.assertGreater(cache_stats(self.a)['invalidations'] + cache_stats(self.b)['invalidations'],
                           sum(inv))
        # a key outside the prefix is nobody's business
        self.redis.call('SET', 'other:ext', 'x')
        self.assertEqual(self.a.op('cache_get', 'ext', 'r'), b'second')

    def test_expiry_carried_to_redis(self):
        self.assertIs(self.a.op('cache_set', 'e', 'soon', 2, 'r'), True)
        pttl = self.redis.call('PTTL', 'ucache:r:e')
        self.assertTrue(0 < pttl <= 2000, pttl)
        self.assertEqual(self.b.op('cache_get', 'e', 'r'), b'soon')
        poll(lambda: self.b.op('cache_get', 'e', 'r') is None and
             self.a.op('cache_get', 'e', 'r') is None, 6, 0.05, 'expiry on both')
        self.assertIsNone(self.redis.call('GET', 'ucache:r:e'))
        # an expiry set by another client is never outlived by an L1 copy
        self.redis.call('SET', 'ucache:r:e2', 'v', 'PX', '1500')
        self.assertEqual(self.b.op('cache_get', 'e2', 'r'), b'v')
        time.sleep(1.6)
        self.assertIsNone(self.b.op('cache_get', 'e2', 'r'))

    def test_cache_set_on_existing_key_fails_everywhere(self):
        self.assertIs(self.a.op('cache_set', 'nx', 'first', 0, 'r'), True)
        self.assertIsNone(self.b.op('cache_set', 'nx', 'second', 0, 'r'))
        self.assertIsNone(self.a.op('cache_set', 'nx', 'third', 0, 'r'))
        self.assertEqual(self.b.op('cache_get', 'nx', 'r'), b'first')
        self.assertEqual(self.redis.call('GET', 'ucache:r:nx'), b'first')
        self.assertIs(self.b.op('cache_update', 'nx', 'fourth', 0, 'r'), True)
        self.assertEqual(self.a.op('cache_get', 'nx', 'r'), b'fourth')

    def test_interleaved_cache_inc_sums_exactly(self):
        errors = []

        def run(inst):
            try:
                for _ in range(10):
                    got = inst.ops(*[['cache_inc', 'ctr', 3, 0, 'r']] * 20)
                    if got != [True] * 20:
                        errors.append(got)
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=run, args=(i,)) for i in (self.a, self.b, self.a, self.b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.redis.call('HGET', 'ucache:r:ctr', 'n'), b'2400')
        for inst in (self.a, self.b):
            poll(lambda: inst.op('cache_num', 'ctr', 'r') == 2400, BOUND + SLACK, 0.01, 'the sum')
            self.assertEqual(inst.op('cache_get', 'ctr', 'r'), struct.pack('q', 2400))
        self.assertIs(self.a.op('cache_dec', 'ctr', 400, 0, 'r'), True)
        self.assertIs(self.b.op('cache_mul', 'ctr', 3, 0, 'r'), True)
        self.assertIs(self.a.op('cache_div', 'ctr', 7, 0, 'r'), True)
        self.assertEqual(self.redis.call('HGET', 'ucache:r:ctr', 'n'), b'857')
        self.assertEqual(self.b.op('cache_num', 'ctr', 'r'), 857)
        # math on a string fails rather than guess
        self.assertIs(self.a.op('cache_set', 'str', 'text', 0, 'r'), True)
        self.assertIsNone(self.a.op('cache_inc', 'str', 1, 0, 'r'))

    def test_stats_keys(self):
        st = cache_stats(self.a)
        for key in ('l1_hits', 'redis_fetches', 'redis_errors', 'invalidations', 'l1_flushes',
                    'redis_connected', 'fills_dropped'):
            self.assertIn(key, st)
        self.assertEqual(st['redis_connected'], 1)
        self.assertGreaterEqual(st['l1_flushes'], 1)    # the first subscription

    def test_modifier1_111_reads_through_l1_and_redis(self):
        self.redis.call('SET', 'ucache:r:/page', 'page body')
        pkt = uwsgi_packet(111, 0, b'/page')      # modifier2 0: the default cache
        reply = raw_exchange(self.a.uport, pkt)
        self.assertEqual(reply[4:], b'page body')
        # the remote protocol from B's worker, served by A's near cache
        self.assertIs(self.b.op('cache_set', 'rem', 'via B', 0, 'r'), True)
        self.assertEqual(self.b.op('cache_get', 'rem', 'r@127.0.0.1:%d' % self.a.uport), b'via B')
        self.assertIs(self.b.op('cache_del', 'rem', 'r@127.0.0.1:%d' % self.a.uport), True)
        self.assertIsNone(self.redis.call('GET', 'ucache:r:rem'))

    def test_fill_race_never_leaves_an_old_value(self):
        """B's workers refill the key from Redis while A rewrites it 300
        times: a fill that read Redis before a write whose invalidation was
        processed before the fill would stay in B's L1 forever without the
        epoch check (redis.c "The fill race").  After the last write, B must
        serve the last value within the bound, and keep serving it."""
        stop = threading.Event()
        self.assertIs(self.a.op('cache_update', 'race', 'v0', 0, 'r'), True)

        def reader():
            while not stop.is_set():
                self.b.ops(*[['cache_get', 'race', 'r']] * 20)
        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(1, 301):
                self.assertIs(self.a.op('cache_update', 'race', 'v%d' % i, 0, 'r'), True)
        finally:
            stop.set()
            for t in threads:
                t.join()
        poll(lambda: self.b.op('cache_get', 'race', 'r') == b'v300', BOUND + SLACK, 0.005,
             'the last value on B')
        self.assertEqual(self.b.ops(*[['cache_get', 'race', 'r']] * 50), [b'v300'] * 50)

    def test_random_workload_against_a_model(self):
        """Sequential random ops on 8 keys from both instances.  A read must
        return the model's value or miss, except a value replaced less than
        BOUND + SLACK ago by a write on the other instance."""
        rng = random.Random(13)
        insts = {'A': self.a, 'B': self.b}
        model = {}                 # key -> value (None: absent)
        replaced = {}              # key -> [(value, when, by which instance)]
        checked = 0
        for step in range(300):
            who = rng.choice('AB')
            key = 'm%d' % rng.randrange(8)
            op = rng.choice(['get', 'get', 'get', 'set', 'update', 'del'])
            cur = model.get(key)
            if op == 'get':
                got = insts[who].op('cache_get', key, 'r')
                if got is None or got == cur:
                    continue
                now = time.monotonic()
                ok = any(v == got and by != who and now - t < BOUND + SLACK
                         for v, t, by in replaced.get(key, []))
                self.assertTrue(ok, 'step %d: %s read %r=%r, model %r, history %r'
                                % (step, who, key, got, cur, replaced.get(key)))
                checked += 1
                continue
            value = ('%s%d' % (who, step)).encode()
            if op == 'del':
                res = insts[who].op('cache_del', key, 'r')
                self.assertEqual(res is True, cur is not None, 'step %d del' % step)
                value = None
            else:
                res = insts[who].op('cache_%s' % op, key, value, 0, 'r')
                if op == 'set':
                    self.assertEqual(res is True, cur is None, 'step %d set %r (model %r)'
                                     % (step, key, cur))
                    if res is not True:
                        continue
                else:
                    self.assertIs(res, True)
            replaced.setdefault(key, []).append((cur, time.monotonic(), who))
            model[key] = value
        for key, want in model.items():
            for inst in (self.a, self.b):
                poll(lambda: inst.op('cache_get', key, 'r') == want, BOUND + SLACK, 0.01,
                     'the final %s' % key)


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
class Failures(unittest.TestCase):
    def test_redis_killed_and_restarted_empty(self):
        with Redis() as redis, instance(redis) as a, instance(redis) as b:
            for inst in (a, b):
                poll(lambda: connected(inst), 10, 0.05, 'subscribed')
            self.assertIs(a.op('cache_set', 'old', 'stale?', 0, 'r'), True)
            for inst in (a, b):
                poll(lambda: inst.op('cache_get', 'old', 'r') == b'stale?' and
                     inst.op('cache_get', 'old', 'r') == b'stale?', 5, 0.01, 'L1 filled')
            flushes = [cache_stats(i)['l1_flushes'] for i in (a, b)]
            port = redis.port
            redis.kill9()
            with Redis(port) as again:
                # from the moment the new Redis answers, no old value anywhere
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    self.assertEqual(a.op('cache_get', 'old', 'r'), None)
                    self.assertEqual(b.op('cache_get', 'old', 'r'), None)
                for inst in (a, b):
                    poll(lambda: connected(inst), 10, 0.05, 'resubscribed')
                self.assertGreater(cache_stats(a)['l1_flushes'], flushes[0])
                self.assertGreater(cache_stats(b)['l1_flushes'], flushes[1])
                self.assertIs(b.op('cache_set', 'new', 'fresh', 0, 'r'), True)
                self.assertEqual(a.op('cache_get', 'new', 'r'), b'fresh')
                self.assertEqual(again.call('GET', 'ucache:r:new'), b'fresh')

    def test_lost_listener_connection_flushes_l1(self):
        """CLIENT KILL of either listener connection (the subscriber, or the
        one that owns the tracking) flushes L1 and the listener comes back."""
        with Redis() as redis, instance(redis) as a:
            poll(lambda: connected(a), 10, 0.05, 'subscribed')
            for flag in ('P', 't'):      # CLIENT LIST flags: pubsub, tracking
                self.assertIs(a.op('cache_update', 'k', flag, 0, 'r'), True)
                poll(lambda: a.op('cache_get', 'k', 'r') == flag.encode() and
                     cache_stats(a)['items'] == 1, 5, 0.01, 'L1 filled')
                flushes = cache_stats(a)['l1_flushes']
                ids = [l.split('id=')[1].split()[0]
                       for l in redis.call('CLIENT', 'LIST').decode().splitlines()
                       if flag in l.split('flags=')[1].split()[0]]
                self.assertEqual(len(ids), 1, (flag, redis.call('CLIENT', 'LIST')))
                self.assertEqual(redis.call('CLIENT', 'KILL', 'ID', ids[0]), 1)
                poll(lambda: cache_stats(a)['l1_flushes'] >= flushes + 2 and connected(a), 10, 0.02,
                     'a flush at the loss and one at the reconnection (%s)' % flag)
                self.assertIn('invalidation stream lost', a.log())

    def test_flushall_flushes_l1(self):
        with Redis() as redis, instance(redis) as a:
            poll(lambda: connected(a), 10, 0.05, 'subscribed')
            self.assertIs(a.op('cache_set', 'f', 'v', 0, 'r'), True)
            poll(lambda: a.op('cache_get', 'f', 'r') == b'v' and cache_stats(a)['items'] == 1,
                 5, 0.01, 'L1 filled')
            redis.call('FLUSHALL')
            poll(lambda: a.op('cache_get', 'f', 'r') is None, BOUND + SLACK, 0.005, 'the flush')

    def test_sigstop_requests_bounded_writes_fail_then_resume(self):
        with Redis() as redis, instance(redis, timeout=300) as a:
            poll(lambda: connected(a), 10, 0.05, 'subscribed')
            self.assertIs(a.op('cache_set', 'k', 'v', 0, 'r'), True)
            os.kill(redis.proc.pid, signal.SIGSTOP)
            try:
                for op in (['cache_get', 'missing', 'r'], ['cache_set', 'w', 'x', 0, 'r'],
                           ['cache_update', 'k', 'y', 0, 'r'], ['cache_del', 'k', 'r'],
                           ['cache_inc', 'n', 1, 0, 'r'], ['cache_clear', 'r']):
                    t0 = time.monotonic()
                    res = a.op(*op)
                    took = time.monotonic() - t0
                    self.assertIn(res, (None, False), op)     # a miss, or a failed write
                    self.assertLess(took, 0.3 + SLACK, op)
                self.assertGreater(cache_stats(a)['redis_errors'], 0)
            finally:
                os.kill(redis.proc.pid, signal.SIGCONT)
            poll(lambda: a.op('cache_update', 'k', 'after', 0, 'r') is True, 10, 0.05,
                 'writes to resume')
            # a worker whose connect failed retries 100 ms later (redis.c RETRY_MS)
            poll(lambda: a.ops(*[['cache_get', 'k', 'r']] * 4) == [b'after'] * 4, 5, 0.05,
                 'reads to resume on every worker')
            self.assertEqual(redis.call('GET', 'ucache:r:k'), b'after')
            self.assertIn('Redis 127.0.0.1:%d' % redis.port, a.log())

    def test_unreachable_at_start_starts_degraded_then_recovers(self):
        port = free_port()
        with instance(type('R', (), {'port': port})) as a:
            self.assertIn('unreachable at start', a.log())
            self.assertIsNone(a.op('cache_set', 'k', 'v', 0, 'r'))
            self.assertIsNone(a.op('cache_get', 'k', 'r'))
            with Redis(port) as redis:
                poll(lambda: a.op('cache_set', 'k', 'v', 0, 'r') is True, 10, 0.05,
                     'the instance to use Redis once it is up')
                self.assertEqual(redis.call('GET', 'ucache:r:k'), b'v')
                poll(lambda: connected(a), 10, 0.05, 'the listener to subscribe')

    def test_bad_address_refuses_to_start(self):
        for addr, want in (('nohost', 'expected HOST:PORT, unix:/PATH or redis://'),
                           ('h:99999', 'the port must be 1..65535'),
                           ('redis://u:s3cret@h:0', 'redis://***@h:0')):
            rc, out = run_to_exit(['--master', '--cache2', 'name=r,items=10,redis=' + addr])
            self.assertEqual(rc, 1, out)
            lines = [l for l in out.splitlines() if 'invalid Redis address' in l]
            self.assertEqual(len(lines), 1, out)
            self.assertIn(want, lines[0])
            self.assertNotIn('s3cret', out)
        rc, out = run_to_exit(['--master', '--cache2', 'name=r,items=10,redis=h:1,redis_timeout=0'])
        self.assertEqual(rc, 1)
        self.assertIn('invalid value "0" for key "redis_timeout"', out)
        rc, out = run_to_exit(['--cache2', 'name=r,items=10,redis=127.0.0.1:1'])
        self.assertEqual(rc, 1)
        self.assertIn('redis= needs --master', out)

    def test_password_file(self):
        work = tempfile.mkdtemp(prefix='ucache-pw-')
        try:
            good = os.path.join(work, 'pw')
            bad = os.path.join(work, 'bad')
            with open(good, 'w') as f:
                f.write('t0ps3cret\n')
            with open(bad, 'w') as f:
                f.write('wrong\n')
            with Redis(password='t0ps3cret') as redis:
                with instance(redis, opts=',redis_password_file=' + good) as a:
                    poll(lambda: connected(a), 10, 0.05, 'subscribed with the password')
                    self.assertIs(a.op('cache_set', 'k', 'v', 0, 'r'), True)
                    self.assertEqual(a.op('cache_get', 'k', 'r'), b'v')
                    self.assertNotIn('t0ps3cret', a.log())
                with instance(redis, opts=',redis_password_file=' + bad) as b:
                    self.assertIsNone(b.op('cache_get', 'k', 'r'))
                    self.assertIn('AUTH', b.log())
                    self.assertNotIn('wrong', b.log().replace('WRONGPASS', ''))
            rc, out = run_to_exit(['--master', '--cache2', 'name=r,items=10,redis=127.0.0.1:1,'
                                   'redis_password_file=' + os.path.join(work, 'none')])
            self.assertEqual(rc, 1)
            self.assertIn('redis_password_file %s' % os.path.join(work, 'none'), out)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_add_cache_item_goes_to_redis(self):
        with Redis() as redis, instance(redis, '--add-cache-item', 'r pre=loaded') as a:
            self.assertEqual(redis.call('GET', 'ucache:r:pre'), b'loaded')
            poll(lambda: connected(a), 10, 0.05, 'subscribed')
            self.assertEqual(a.op('cache_get', 'pre', 'r'), b'loaded')

    def _read_after_redis_died(self, opts):
        """What a read of an L1-held key returns once the listener noticed
        that Redis is gone (a write fails meanwhile either way)."""
        with Redis() as redis, instance(redis, opts=opts) as a:
            poll(lambda: connected(a), 10, 0.05, 'subscribed')
            self.assertIs(a.op('cache_set', 'k', 'kept', 0, 'r'), True)
            poll(lambda: a.op('cache_get', 'k', 'r') == b'kept' and cache_stats(a)['items'] == 1,
                 5, 0.01, 'L1 filled')
            redis.kill9()
            poll(lambda: not connected(a), 5, 0.05, 'the loss to be noticed')
            got = a.op('cache_get', 'k', 'r')
            self.assertIsNone(a.op('cache_update', 'k', 'lost', 0, 'r'))
            return got

    def test_offline_stale_serves_l1(self):
        self.assertEqual(self._read_after_redis_died(',redis_offline=stale'), b'kept')

    def test_offline_miss_flushes_l1(self):
        self.assertIsNone(self._read_after_redis_died(''))


def shutdown_nosave(redis):
    """SHUTDOWN NOSAVE: Redis closes every client and exits (no reply)."""
    try:
        redis.call('SHUTDOWN', 'NOSAVE')
    except (OSError, RuntimeError):
        pass
    redis.proc.wait(5)


def client_ids(redis, flag):
    """CLIENT LIST ids of the clients whose flags hold flag."""
    return [l.split('id=')[1].split()[0] for l in redis.call('CLIENT', 'LIST').decode().splitlines()
            if flag in l.split('flags=')[1].split()[0]]


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
class Disruptions(unittest.TestCase):
    """What real deployments do to Redis (issue 19), each against two
    instances of 2 workers: after it, no stale value served, no write
    acknowledged and lost, no write refused once Redis answers."""

    def fill(self, insts, keys):
        """keys written through the first instance, and in every L1."""
        for k, v in keys.items():
            self.assertIs(insts[0].op('cache_update', k, v, 0, 'r'), True)
        for inst in insts:
            for k, v in keys.items():
                poll(lambda: inst.op('cache_get', k, 'r') == v and inst.op('cache_get', k, 'r') == v,
                     5, 0.01, 'L1 filled')

    def writes_all_acknowledged(self, redis, insts, tag):
        """10 updates through each instance (both workers of each), every
        one acknowledged, read back at once where written and, within the
        staleness bound, on the other instance; Redis holds the last."""
        for n in range(10):
            for i, inst in enumerate(insts):
                v = ('%s-%d-%d' % (tag, i, n)).encode()
                self.assertIs(inst.op('cache_update', 'w', v, 0, 'r'), True, (tag, i, n, inst.log()[-2000:]))
                self.assertEqual(inst.op('cache_get', 'w', 'r'), v)
        for inst in insts:
            poll(lambda: inst.op('cache_get', 'w', 'r') == v, BOUND + SLACK, 0.005, 'the last write')
        self.assertEqual(redis.call('GET', 'ucache:r:w'), v)

    def never_old(self, insts, want, seconds=1.0):
        """For a while every read on every instance gives want (key -> value)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for inst in insts:
                got = inst.ops(*[['cache_get', k, 'r'] for k in want])
                self.assertEqual(dict(zip(want, got)), want)

    def restarted(self, stop, tag):
        with Redis() as redis, instance(redis) as a, instance(redis) as b:
            for inst in (a, b):
                poll(lambda: connected(inst), 10, 0.05, 'subscribed')
            self.fill((a, b), {'old': b'before the restart'})
            stop(redis)
            with Redis(redis.port) as again:
                # the workers' connections died with the old server: the
                # first write on each must not be the one that finds out
                self.writes_all_acknowledged(again, (a, b), tag)
                self.never_old((a, b), {'old': None})
                for inst in (a, b):
                    poll(lambda: connected(inst), 10, 0.05, 'resubscribed')
                self.assertGreater(cache_stats(a)['redis_reconnects'] + cache_stats(b)['redis_reconnects'], 0)
                self.writes_all_acknowledged(again, (a, b), tag + '-later')

    def test_bug_restart_refuses_the_first_write_on_every_worker(self):
        self.restarted(Redis.kill9, 'kill9')

    def test_bug_shutdown_nosave_refuses_the_first_write_on_every_worker(self):
        self.restarted(shutdown_nosave, 'shutdown')

    def test_bug_idle_timeout_fails_writes_and_flushes_l1(self):
        """redis-server --timeout 2 closes a client idle for 2 s: the
        tracking connection (which never spoke after CLIENT TRACKING) and
        the workers' command connections.  Both keep themselves alive."""
        with Redis(extra=['--timeout', '2']) as redis, instance(redis) as a, instance(redis) as b:
            for inst in (a, b):
                poll(lambda: connected(inst), 10, 0.05, 'subscribed')
            self.fill((a, b), {'kept': b'in L1'})
            flushes = [cache_stats(i)['l1_flushes'] for i in (a, b)]
            for idle in range(2):
                time.sleep(3)      # the scenario: nothing at all for longer than the timeout
                self.writes_all_acknowledged(redis, (a, b), 'idle%d' % idle)
            self.assertEqual([cache_stats(i)['l1_flushes'] for i in (a, b)], flushes)
            for inst in (a, b):
                self.assertNotIn('invalidation stream lost', inst.log())
                self.assertEqual(inst.op('cache_get', 'kept', 'r'), b'in L1')
                self.assertTrue(connected(inst))

    def test_client_kill_type_normal_and_pubsub(self):
        with Redis() as redis, instance(redis) as a, instance(redis) as b:
            for kind in ('normal', 'pubsub'):
                for inst in (a, b):
                    poll(lambda: connected(inst), 10, 0.05, 'subscribed')
                keys = {'k1': ('1 ' + kind).encode(), 'k2': ('2 ' + kind).encode()}
                self.fill((a, b), keys)
                self.assertGreater(redis.call('CLIENT', 'KILL', 'TYPE', kind), 0)
                self.writes_all_acknowledged(redis, (a, b), kind)
                self.never_old((a, b), keys, 0.3)
                self.assertIs(a.op('cache_update', 'k1', 'changed', 0, 'r'), True)
                for inst in (a, b):
                    poll(lambda: inst.op('cache_get', 'k1', 'r') == b'changed', BOUND + SLACK, 0.01,
                         'the change after CLIENT KILL TYPE %s' % kind)

    def test_flushall_then_writes(self):
        with Redis() as redis, instance(redis) as a, instance(redis) as b:
            for inst in (a, b):
                poll(lambda: connected(inst), 10, 0.05, 'subscribed')
            self.fill((a, b), {'f': b'flushed soon'})
            redis.call('FLUSHALL')
            for inst in (a, b):
                poll(lambda: inst.op('cache_get', 'f', 'r') is None, BOUND + SLACK, 0.005, 'the flush')
            self.never_old((a, b), {'f': None}, 0.3)
            self.writes_all_acknowledged(redis, (a, b), 'flushall')

    def test_debug_sleep_latency_bounded_then_writes_resume(self):
        """DEBUG SLEEP 3 stalls Redis: every operation fails or misses
        within redis_timeout (200 ms) plus slack, none waits the 3 s; once
        Redis answers, every write is acknowledged again."""
        with Redis(extra=['--enable-debug-command', 'yes']) as redis, instance(redis) as a, instance(redis) as b:
            for inst in (a, b):
                poll(lambda: connected(inst), 10, 0.05, 'subscribed')
            self.fill((a, b), {'s': b'before the sleep'})
            sleeper = threading.Thread(target=redis.call, args=('DEBUG', 'SLEEP', '3'),
                                       kwargs={'timeout': 10})
            sleeper.start()
            poll(lambda: not connected(a), 5, 0.01, 'the stall to be noticed')
            try:
                while sleeper.is_alive():
                    for inst in (a, b):
                        t0 = time.monotonic()
                        res = inst.ops(['cache_get', 's', 'r'], ['cache_update', 'u', 'x', 0, 'r'])
                        self.assertLess(time.monotonic() - t0, 2 * 0.2 + SLACK)
                        self.assertIn(res[0], (None, b'before the sleep'))
                        self.assertIn(res[1], (None, True))
            finally:
                sleeper.join()
            self.writes_all_acknowledged(redis, (a, b), 'awake')
            # a write timed out during the stall may have run after it; what
            # Redis holds is what every instance serves
            want = redis.call('GET', 'ucache:r:s')
            for inst in (a, b):
                poll(lambda: inst.op('cache_get', 's', 'r') == want, BOUND + SLACK, 0.01, 'agreement')

    def test_redis_replaced_by_another_with_other_contents(self):
        """A new redis-server on the same port, started from a dump with
        other values: from its first answer, only its values are served."""
        prep = tempfile.mkdtemp(prefix='ucache-rdb-')
        try:
            with Redis(extra=['--dir', prep]) as other:
                other.call('SET', 'ucache:r:k', 'from the new server')
                other.call('SAVE')
            with Redis() as redis, instance(redis) as a, instance(redis) as b:
                for inst in (a, b):
                    poll(lambda: connected(inst), 10, 0.05, 'subscribed')
                self.fill((a, b), {'k': b'from the old server', 'gone': b'old only'})
                redis.kill9()
                with Redis(redis.port, extra=['--dir', prep]) as new:
                    self.assertEqual(new.call('GET', 'ucache:r:k'), b'from the new server')
                    self.never_old((a, b), {'k': b'from the new server', 'gone': None})
                    self.writes_all_acknowledged(new, (a, b), 'replaced')
        finally:
            shutil.rmtree(prep, ignore_errors=True)


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
class HeldFetch(unittest.TestCase):
    def test_bug_held_fetch_serves_overwritten_value(self):
        """A modifier1 111 lookup of a value larger than the worker's
        buffer, the value overwritten by another Redis client, a lookup on
        the same worker (the only one) once the invalidation is processed:
        the held copy of the first fetch served the old value (8758142)."""
        with Redis() as redis, instance(redis, socket_=True, workers=1, blocksize=65536) as a:
            poll(lambda: connected(a), 10, 0.05, 'subscribed')
            for n in range(10):
                key = '/held%d' % n
                old = b'o' * (5000 + 3000 * n)     # each larger than any before
                redis.call('SET', 'ucache:r:' + key, old)
                self.assertEqual(raw_exchange(a.uport, uwsgi_packet(111, 0, key.encode()))[4:], old)
                inv = cache_stats(a)['invalidations']
                redis.call('SET', 'ucache:r:' + key, 'new')
                deadline = time.monotonic() + 0.05
                while cache_stats(a)['invalidations'] == inv and time.monotonic() < deadline:
                    pass
                self.assertEqual(raw_exchange(a.uport, uwsgi_packet(111, 0, key.encode()))[4:], b'new',
                                 'round %d' % n)


def two_caches(redis, first, second):
    stats = free_port()
    inst = Uwsgi('--master', '--workers', '1', '--stats', '127.0.0.1:%d' % stats,
                 '--cache2', 'name=%s,items=20,redis=127.0.0.1:%d%s' % (first[0], redis.port, first[1]),
                 '--cache2', 'name=%s,items=20,redis=127.0.0.1:%d%s' % (second[0], redis.port, second[1]),
                 '--wsgi-file', app('ops_app.py'))
    inst.stats_port = stats
    return inst


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
class Namespaces(unittest.TestCase):
    def cleared_alone(self, first, second, second_key):
        """clear on the first cache leaves the second's key in Redis."""
        with Redis() as redis, two_caches(redis, first, second) as u:
            self.assertIs(u.op('cache_update', 'k', 'mine', 0, first[0]), True)
            self.assertIs(u.op('cache_update', 'k', 'theirs', 0, second[0]), True)
            self.assertEqual(len(redis.call('KEYS', '*')), 2)
            self.assertIs(u.op('cache_clear', first[0]), True)
            self.assertIsNone(u.op('cache_get', 'k', first[0]))
            left = redis.call('KEYS', '*')
            self.assertEqual(len(left), 1, left)
            self.assertEqual(redis.call('GET', left[0]), b'theirs')
            self.assertEqual(u.op('cache_get', 'k', second[0]), b'theirs')
            self.assertEqual(left[0].decode(), second_key)

    def test_bug_clear_deletes_the_keys_of_a_cache_named_like_it(self):
        self.cleared_alone(('a', ''), ('a:b', ''), 'ucache:a\\:b:k')

    def test_bug_clear_deletes_the_keys_of_a_longer_prefix(self):
        self.cleared_alone(('s', ',redis_prefix=app:s'), ('s2', ',redis_prefix=app:s2:'), 'app:s2:k')

    def test_overlapping_prefixes_refused_at_start(self):
        rc, out = run_to_exit(['--master',
                               '--cache2', 'name=one,items=10,redis=127.0.0.1:1,redis_prefix=app:',
                               '--cache2', 'name=two,items=10,redis=127.0.0.1:1,redis_prefix=app:s:'])
        self.assertEqual(rc, 1, out)
        lines = [l for l in out.splitlines() if 'share Redis' in l]
        self.assertEqual(len(lines), 1, out)
        self.assertIn('caches "one" (Redis prefix "app:") and "two" (Redis prefix "app:s:")', lines[0])


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
class Deployed(unittest.TestCase):
    def test_near_cache_under_uid_across_a_reload(self):
        """--uid www-data with --master, reloaded by SIGHUP as a deploy does:
        the listener comes back, what Redis holds is served, writes go on."""
        with Redis() as redis, instance(redis, deploy=True) as u:
            poll(lambda: connected(u), 10, 0.05, 'subscribed')
            self.assertIs(u.op('cache_update', 'k', 'before', 0, 'r'), True)
            poll(lambda: u.op('cache_get', 'k', 'r') == b'before' and cache_stats(u)['items'] == 1,
                 5, 0.01, 'L1 filled')
            u.reload('sighup')
            poll(lambda: connected(u), 10, 0.05, 'subscribed again after the reload')
            self.assertEqual(u.ops(*[['cache_get', 'k', 'r']] * 4), [b'before'] * 4)
            redis.call('SET', 'ucache:r:k', 'changed elsewhere')
            poll(lambda: u.ops(*[['cache_get', 'k', 'r']] * 4) == [b'changed elsewhere'] * 4,
                 BOUND + SLACK, 0.01, 'the invalidation after the reload')
            self.assertIs(u.op('cache_update', 'k2', 'after', 0, 'r'), True)
            self.assertEqual(redis.call('GET', 'ucache:r:k2'), b'after')


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
@need(NGINX)
class NginxOverRedis(unittest.TestCase):
    def test_nginx_direct_hit_from_redis(self):
        conf = """
location / {
    uwsgi_pass 127.0.0.1:%d;
    uwsgi_modifier1 111;
    uwsgi_modifier2 4;
    uwsgi_param key $request_uri;
    uwsgi_pass_request_headers off;
}
"""
        with Redis() as redis, instance(redis, socket_=True) as a:
            with Nginx(conf % a.uport) as n:
                self.assertEqual(n.get('/hello')[0], 404)
                redis.call('SET', 'ucache:r:/hello', 'hello from redis')
                poll(lambda: n.get('/hello') == (200, b'hello from redis'), 5, 0.02,
                     'nginx to read through to Redis')
