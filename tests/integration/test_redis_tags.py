"""Tagged entries of a near cache (issue 13: the HTTP response cache's tag
state lives in Redis, redis_tags.c).  Two uwsgi instances, A and B, run
ucache.wsgi's Accelerator (apps/accel_app.py) over one near cache "pages"
and one real redis-server; "counters" stays local, so each instance counts
its own renders and every test checks who rendered, not only what.

Checked: a tagged page rendered on A is served on B, from Redis (never from
B's L1); invalidating its tag on A makes B miss at once, through Python,
modifier1 111 modifier2 3 and nginx, also when sent to A over modifier2 17;
an invalidation on B racing a render
on A leaves no stale page; the tag state lost during a render (FLUSHALL)
leaves no stale page; the clock is one for both; an untagged page keeps
L1's behaviour; Redis stopped: a tagged read misses (with
redis_offline=stale serving untagged L1 entries), an invalidation fails."""
import http.client
import os
import signal
import sys
import threading
import time
import unittest
from urllib.parse import quote

from harness import (NGINX, STOCK, Nginx, Uwsgi, app, free_port, need, poll, raw_exchange,
                     run_to_exit, stats_json, uwsgi_packet, uwsgi_vars)
from test_http_cache import NGINX_RECIPE, PYTHONPATH, Client, invalidate_tags
from test_redis import REDIS, Redis

TAGS_KEY = 'ucache-tags:ucache:pages:'
MAGIC = b'\x00UCTAGS\x01'


def node(redis, opts=''):
    stats = free_port()
    inst = Uwsgi('--master', '--processes', '2', '--threads', '4',
                 '--stats', '127.0.0.1:%d' % stats,
                 '--cache2', 'name=pages,items=2000,blocksize=65536,redis=127.0.0.1:%d,'
                 'redis_timeout=200%s' % (redis.port, opts),
                 '--cache2', 'name=counters,items=2000,blocksize=64',
                 '--pythonpath', PYTHONPATH, '--wsgi-file', app('accel_app.py'), socket_=True)
    inst.stats_port = stats
    return inst


def pages_stats(inst):
    return [c for c in stats_json(inst.stats_port)['caches'] if c['name'] == 'pages'][0]


def calls(inst, uri):
    return int(Client(inst.port).req('/_calls?u=' + quote(uri, safe=''))[2])


def direct(inst, uri):
    """modifier1 111 modifier2 3: what nginx's direct lookup gets (b'' = miss)."""
    return raw_exchange(inst.uport, uwsgi_packet(111, 3, uwsgi_vars([('key', uri), ('cache', 'pages')])))


def rendering(redis, uri):
    """Wait until a render of uri holds its render lock (in Redis: the lock
    is a key of the near cache); the renderer reads the clock right after
    taking it, so 0.2 s later it has (the render sleeps 1 s)."""
    poll(lambda: redis.call('GET', 'ucache:pages:ucache-render:' + uri) is not None, 5, 0.01,
         'the render of %s to start' % uri)
    time.sleep(0.2)


def invalidate(inst, tags):
    """The status of POST /_invalidate; None when the app raised (uwsgi then
    closes the connection without a reply)."""
    try:
        return Client(inst.port).req('/_invalidate', 'POST', body=tags.encode())[0]
    except http.client.RemoteDisconnected:
        return None


class Pair:
    @classmethod
    def start(cls, opts=''):
        cls.redis = Redis().__enter__()
        cls.a = node(cls.redis, opts).__enter__()
        cls.b = node(cls.redis, opts).__enter__()
        for inst in (cls.a, cls.b):
            poll(lambda: pages_stats(inst)['redis_connected'] == 1, 10, 0.05, 'the listener')
        cls.ca, cls.cb = Client(cls.a.port), Client(cls.b.port)

    @classmethod
    def stop(cls):
        cls.b.__exit__(None, None, None)
        cls.a.__exit__(None, None, None)
        cls.redis.__exit__(None, None, None)


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
class NearCacheTags(Pair, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.start()

    @classmethod
    def tearDownClass(cls):
        cls.stop()

    def test_tagged_page_stored_on_a_is_served_on_b_from_redis(self):
        u = '/t1?cache_for=60&tags=t1'
        first = self.ca.req(u)[2]
        self.assertIn(b'render #1', first)
        stored = self.redis.call('GET', 'ucache:pages:' + u)
        self.assertTrue(stored.startswith(MAGIC), stored[:40])
        fetches = pages_stats(self.b)['redis_fetches']
        for _ in range(3):
            self.assertEqual(self.cb.req(u)[2], first)
        self.assertEqual(calls(self.b, u), 0)
        # never in B's L1: every read is a Redis round trip
        self.assertGreaterEqual(pages_stats(self.b)['redis_fetches'], fetches + 3)
        self.assertEqual(direct(self.b, u).split(b'\r\n\r\n', 1)[1], first)

    def test_bug_lookup_larger_than_the_buffer_fetched_twice(self):
        """A direct lookup whose value did not fit the worker's buffer read
        Redis again after growing it: two round trips (and two
        redis_fetches) for one lookup of a value that never enters L1."""
        for n, size in enumerate((30000, 45000, 60000)):  # each larger than any before
            u = '/big%d?cache_for=60&tags=big&size=%d' % (n, size)
            body = self.ca.req(u)[2]
            fetches = pages_stats(self.b)['redis_fetches']
            self.assertEqual(direct(self.b, u).split(b'\r\n\r\n', 1)[1], body)
            self.assertEqual(pages_stats(self.b)['redis_fetches'], fetches + 1)

    def test_invalidation_on_a_makes_b_miss_at_once(self):
        u = '/t2?cache_for=60&tags=t2,other'
        first = self.ca.req(u)[2]
        self.assertEqual(self.cb.req(u)[2], first)
        self.assertTrue(direct(self.b, u).startswith(b'HTTP/1.1 200 OK\r\n'))
        self.assertEqual(invalidate(self.a, 't2'), 200)
        # no waiting: the very next lookups on B miss
        self.assertEqual(direct(self.b, u), b'')
        self.assertIn(b'render #1', self.cb.req(u)[2])
        self.assertEqual(calls(self.b, u), 1)
        # B's fresh render is served to A
        self.assertEqual(self.ca.req(u)[2], self.cb.req(u)[2])
        self.assertEqual(calls(self.a, u), 1)

    def test_remote_invalidation_sent_to_a_reaches_b(self):
        """modifier2 17 cmd=invalidate (ucache.wsgi.invalidate_tags from any
        machine) on A: B's next read misses."""
        u = '/t3?cache_for=60&tags=t3'
        first = self.ca.req(u)[2]
        self.assertEqual(self.cb.req(u)[2], first)
        self.assertEqual(invalidate_tags('pages@127.0.0.1:%d' % self.a.uport, ['t3', 'unrelated']), 2)
        self.assertEqual(direct(self.b, u), b'')
        self.cb.req(u)
        self.assertEqual(calls(self.b, u), 1)

    def render_on_a_while(self, u, during):
        """A renders u (1 s); during() runs once it has read the clock.
        The page is stored but stale: both direct lookups miss, B renders."""
        slow = threading.Thread(target=self.ca.req, args=(u,))
        slow.start()
        rendering(self.redis, u)
        during()
        slow.join()
        self.assertIsNotNone(self.redis.call('GET', 'ucache:pages:' + u))
        self.assertEqual(direct(self.a, u), b'')
        self.assertEqual(direct(self.b, u), b'')
        self.cb.req(u)
        self.assertEqual(calls(self.b, u), 1)

    def test_invalidation_on_b_racing_a_render_on_a_leaves_no_stale_page(self):
        self.render_on_a_while('/race?cache_for=60&tags=race&sleep=1',
                               lambda: self.assertEqual(invalidate(self.b, 'race'), 200))

    def test_tag_state_lost_during_a_render_leaves_no_stale_page(self):
        u = '/lost?cache_for=60&tags=lost&sleep=1'

        def invalidate_then_flush():
            self.assertEqual(invalidate(self.b, 'lost'), 200)
            self.redis.call('FLUSHALL')        # the invalidation is forgotten with the hash
        self.render_on_a_while(u, invalidate_then_flush)
        # the state made again works as before
        self.assertEqual(self.cb.req(u)[2], self.ca.req(u)[2])
        self.assertEqual(calls(self.a, u), 1)

    def test_one_clock_for_both_machines_outside_the_prefix(self):
        self.assertEqual(invalidate(self.a, 'c1'), 200)
        c1 = int(self.redis.call('HGET', TAGS_KEY, 'c'))
        self.assertEqual(invalidate(self.b, 'c2'), 200)
        c2 = int(self.redis.call('HGET', TAGS_KEY, 'c'))
        self.assertGreater(c2, c1)
        # microseconds of Redis' clock: later than any value before a restart
        self.assertLess(abs(c2 / 1e6 - time.time()), 60)
        # the tag state is no key of the cache: clear's SCAN never meets it
        keys = self.redis.call('SCAN', '0', 'MATCH', 'ucache:pages:*', 'COUNT', '100000')[1]
        self.assertNotIn(TAGS_KEY.encode(), keys)

    def test_hash_without_its_birth_is_made_again_and_its_pages_are_stale(self):
        u = '/hb?cache_for=60&tags=hb'
        first = self.ca.req(u)[2]
        self.assertEqual(self.cb.req(u)[2], first)
        c0 = int(self.redis.call('HGET', TAGS_KEY, 'c'))
        self.redis.call('HDEL', TAGS_KEY, 'b')
        self.assertEqual(direct(self.b, u), b'')
        self.cb.req(u)                                # renders: the clock read makes b again
        self.assertEqual(calls(self.b, u), 1)
        self.assertIsNotNone(self.redis.call('HGET', TAGS_KEY, 'b'))
        self.assertGreaterEqual(int(self.redis.call('HGET', TAGS_KEY, 'c')), c0)   # never backwards
        self.assertEqual(self.ca.req(u)[2], self.cb.req(u)[2])
        self.assertEqual((calls(self.a, u), calls(self.b, u)), (1, 1))

    def test_untagged_page_keeps_l1_behaviour(self):
        u = '/plain?cache_for=60'
        first = self.ca.req(u)[2]
        before = pages_stats(self.b)['l1_hits']
        poll(lambda: self.cb.req(u)[2] == first and pages_stats(self.b)['l1_hits'] > before,
             5, 0.02, 'an L1 hit on B')
        fetches = pages_stats(self.b)['redis_fetches']
        for _ in range(5):
            self.assertEqual(self.cb.req(u)[2], first)
        self.assertEqual(pages_stats(self.b)['redis_fetches'], fetches)
        self.assertEqual(calls(self.b, u), 0)


@unittest.skipIf(STOCK, 'near caches are ucache only')
@need(REDIS)
class NearCacheTagsRedisDown(Pair, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.start(',redis_offline=stale')

    @classmethod
    def tearDownClass(cls):
        cls.stop()

    def test_redis_stopped_tagged_read_misses_and_invalidation_fails(self):
        tagged, plain = '/down?cache_for=60&tags=down', '/downplain?cache_for=60'
        page = self.ca.req(tagged)[2]
        self.assertEqual(self.cb.req(tagged)[2], page)
        other = self.ca.req(plain)[2]
        before = pages_stats(self.b)['l1_hits']
        poll(lambda: self.cb.req(plain)[2] == other and pages_stats(self.b)['l1_hits'] > before,
             5, 0.02, 'the untagged page in B\'s L1')
        os.kill(self.redis.proc.pid, signal.SIGSTOP)
        try:
            # an untagged page is served from L1 (redis_offline=stale) ...
            self.assertEqual(self.cb.req(plain)[2], other)
            # ... a tagged one never: it may have been invalidated meanwhile
            self.assertEqual(direct(self.b, tagged), b'')
            self.assertIn(b'render #1', self.cb.req(tagged)[2])
            self.assertEqual(calls(self.b, tagged), 1)
            self.assertIn(invalidate(self.a, 'down'), (None, 500))
            poll(lambda: 'FAIL Redis did not acknowledge the invalidation' in self.a.log(), 5, 0.05,
                 'the failure in the log')
        finally:
            os.kill(self.redis.proc.pid, signal.SIGCONT)
        poll(lambda: pages_stats(self.b)['redis_connected'] == 1, 10, 0.05, 'the listener back')
        # a timed-out invalidation may still run when Redis reads it (as any
        # write that was not acknowledged): the caller retries it
        self.assertEqual(invalidate(self.a, 'down'), 200)
        self.assertEqual(direct(self.b, tagged), b'')


@unittest.skipIf(STOCK, 'near caches are ucache only')
class TagKeyPrefix(unittest.TestCase):
    def test_prefix_that_would_contain_the_tag_state_key_is_refused(self):
        rc, out = run_to_exit(['--master', '--cache2', 'name=r,items=10,redis=127.0.0.1:1,'
                               'redis_prefix=ucache-tags:'])
        self.assertEqual(rc, 1, out)
        lines = [l for l in out.splitlines() if 'would contain the tag state key' in l]
        self.assertEqual(len(lines), 1, out)
        self.assertIn('"ucache-tags:ucache-tags:"', lines[0])
        # issue 19: a prefix always ends with ':', so "ucache-" is "ucache-:",
        # which holds no tag state key (all are "ucache-tags:...")


@need(NGINX)
@need(REDIS)
@unittest.skipIf(STOCK, 'near caches are ucache only')
class NearCacheTagsNginx(Pair, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.start()
        cls.n = Nginx(NGINX_RECIPE % {'port': cls.b.uport}).__enter__()
        cls.cn = Client(cls.n.port)

    @classmethod
    def tearDownClass(cls):
        cls.n.__exit__(None, None, None)
        cls.stop()

    def test_nginx_on_b_serves_a_page_of_a_and_misses_once_a_invalidates(self):
        u = '/ng?cache_for=60&tags=ng&size=4096'
        status, headers, first = self.ca.req(u)
        self.assertEqual((status, len(first)), (200, 4096))
        for _ in range(3):                             # nginx on B: straight from Redis
            self.assertEqual(self.cn.req(u)[2], first)
        self.assertEqual(calls(self.b, u), 0)
        status, _, body = self.cn.req(u, headers={'If-None-Match': headers['etag']})
        self.assertEqual((status, body), (304, b''))
        self.assertEqual(calls(self.b, u), 0)
        self.assertEqual(invalidate(self.a, 'ng'), 200)
        self.assertIn(b'render #1', self.cn.req(u)[2])  # B's app renders at once
        self.assertEqual(calls(self.b, u), 1)
        self.assertEqual(self.cn.req(u)[2], self.ca.req(u)[2])
        self.assertEqual(calls(self.a, u), 1)


if __name__ == '__main__':
    sys.exit(unittest.main())
