"""The RPC functions next to the other cache features: their writes
replicate over UDP (nodes=) like the magic API's, and a redis= near cache
refuses them with ENOTSUP (its items live in Redis, out of their reach)."""
import unittest

from harness import need, poll, stats_json
from test_redis import Redis, connected, instance
from test_udp import Node, udp_port


def call(u, *args):
    return u.op('call', *[a.encode() for a in args])


class Replication(unittest.TestCase):
    def test_rpc_writes_reach_the_udp_nodes(self):
        pb = udp_port()
        with Node(udp=pb) as b, Node(nodes=[pb]) as a:
            self.assertEqual(call(a, 'ucache_add', 'r', 'k', 'v1', '100'), b'Y')
            b.wait_value('k', b'v1')
            self.assertEqual(b.get_ex('k'), a.get_ex('k'))  # the same absolute expiry
            ver = call(a, 'ucache_gets', 'r', 'k')[1:17].decode()
            self.assertEqual(call(a, 'ucache_cas', 'r', 'k', ver, 'v2'), b'Y')
            b.wait_value('k', b'v2')
            self.assertEqual(call(a, 'ucache_touch', 'r', 'k', '0'), b'Y')
            # the value was v2 already: wait for the touch itself (waiting
            # for v2 returned before its datagram arrived, a flaky failure)
            poll(lambda: b.get_ex('k') == (b'v2', 0), what="the touch's expiry 0 on node B")
            self.assertEqual(call(a, 'ucache_incr', 'r', 'n', '5', '10', '0'), b'Y15')
            b.wait_value('n', (15).to_bytes(8, 'little', signed=True))
            self.assertEqual(call(a, 'ucache_set_many', 'r', '0', 'x', 'X'), b'Y1')
            b.wait_value('x', b'X')
            self.assertEqual(call(a, 'ucache_delete_many', 'r', 'x', 'k'), b'Y11')
            b.wait_value('x', None)
            b.wait_value('k', None)
            st = call(a, 'ucache_flight_begin', 'r', 'g', '0')
            self.assertEqual(st[:1], b'C')
            self.assertEqual(call(a, 'ucache_flight_end', 'r', 'g', st[1:].decode(), 'computed', '0'), b'Y')
            b.wait_value('g', b'computed')
            # the lock was never replicated: B computes for itself
            self.assertEqual(call(b, 'ucache_flight_begin', 'r', 'other', '0')[:1], b'C')
            self.assertEqual(sorted(b.op('cache_keys', 'r')), [b'\0uc-lock\0other', b'g', b'n'])

    def test_bug_rpc_replication_read_back_counted_a_hit(self):
        """The RPC functions read the item back with a get to replicate it:
        every replicated write counted a hit on the sender (and a tagged
        entry would have gone out without its envelope)."""
        pb = udp_port()
        with Node(udp=pb) as b, Node(nodes=[pb]) as a:
            for i in range(5):
                self.assertEqual(call(a, 'ucache_add', 'r', 'k%d' % i, 'v'), b'Y')
            self.assertEqual(call(a, 'ucache_incr', 'r', 'n', '1', '0'), b'Y1')
            b.wait_value('k4', b'v')
            b.wait_value('n', (1).to_bytes(8, 'little', signed=True))
            hits = [c for c in stats_json(a.stats)['caches'] if c['name'] == 'r'][0]['hits']
            self.assertEqual(hits, 0)


@need('redis-server')
class NearCache(unittest.TestCase):
    def test_near_cache_refuses_rpc_with_enotsup(self):
        with Redis() as redis, instance(redis) as u:
            poll(lambda: connected(u), 10, what='the near cache to connect')
            self.assertEqual(call(u, 'ucache_add', 'r', 'k', 'v'),
                             b'EENOTSUP ucache_add: not available on a redis= near cache')
            self.assertEqual(call(u, 'ucache_gets', 'r', 'k')[:8], b'EENOTSUP')
            self.assertIsNone(u.op('cache_get', 'k', 'r'))


if __name__ == '__main__':
    unittest.main()
