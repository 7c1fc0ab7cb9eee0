"""helper_contract.py - what ucache.Cache does, written once and run twice:
inside uwsgi (through apps/contract_app.py, on caches "h" and "h2") and
outside it (the in-process fallback, test_python_helper.py runs this module
directly).  Each test records what it observed in SEEN[test name], and
test_python_helper.py checks the two runs recorded the same.

Needs the caches: h (items=100), h2 (items=10)."""
import threading
import time
import unittest

import ucache

SEEN = {}


def poll(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError('timed out')
        time.sleep(0.02)


class HelperContract(unittest.TestCase):
    def setUp(self):
        self.c = ucache.Cache('h')
        self.c.clear()
        ucache.Cache('h2').clear()
        self.seen = SEEN.setdefault(self._testMethodName, [])
        del self.seen[:]

    def see(self, value):
        self.seen.append(repr(value))
        return value

    def test_uwsgiconf_api(self):
        c = ucache.Cache('h', serializer='str')
        self.assertEqual(self.see(c.keys), [])
        self.assertFalse(self.see('some' in c))
        c['mystr'] = 'val'
        self.assertEqual(self.see(c.keys), ['mystr'])
        self.assertEqual(self.see(c['mystr']), 'val')
        self.assertTrue(self.see(c.delete('mystr')))
        self.assertFalse(self.see(c.delete('mystr')))
        self.assertEqual(self.see(c.keys), [])
        c.set('mybytes', b'x01')
        self.assertEqual(self.see(c.get('mybytes', preserve_bytes=True)), b'x01')
        self.assertTrue(self.see(c.incr('myint', delta=10)))
        self.assertTrue(self.see(c.decr('myint', delta=2)))
        self.assertTrue(self.see(c.mul('myint', value=3)))
        self.assertTrue(self.see(c.div('myint', value=2)))
        self.assertEqual(self.see(c.get('myint', as_int=True)), 12)
        self.assertEqual(self.see(c.get('some', default='other')), 'other')
        self.assertEqual(self.see(c.get('int', default=10, as_int=True)), 10)

        def picker(key):
            return {'1': 'one', '2': 'two'}.get(key)
        self.assertEqual(self.see(c.get('1', setter=picker)), 'one')
        self.assertEqual(self.see(c.get('1')), 'one')
        self.assertEqual(self.see(c.get('44', default=50, setter=picker)), 50)
        self.assertNotIn('44', c)
        c.clear()
        self.assertEqual(self.see(c.keys), [])

    def test_pickle_default_and_overwrite(self):
        c = self.c
        self.assertTrue(c.set('a', {'b': [1, 2, (3, 'x')]}))
        self.assertEqual(self.see(c.get('a')), {'b': [1, 2, (3, 'x')]})
        self.assertTrue(c.set('a', 'second'))  # set overwrites (uwsgi's cache_set would not)
        self.assertEqual(self.see(c.get('a')), 'second')
        self.assertIsNone(self.see(c.get('missing')))
        self.assertEqual(self.see(c.get(b'a')), 'second')  # bytes and str keys are one key

    def test_serializers(self):
        raw = ucache.Cache('h', serializer='raw')
        raw.set('r', 'héllo')
        self.assertEqual(self.see(raw.get('r')), 'héllo'.encode())
        num = ucache.Cache('h', serializer='int')
        num.set('n', 5)
        self.assertTrue(num.incr('n', 3))
        self.assertEqual(self.see(num.get('n')), 8)
        self.assertEqual(self.see(num.get('n', as_int=True)), 8)
        with self.assertRaises(ValueError):
            ucache.Cache('h', serializer='nope')

    def test_caches_are_separate(self):
        self.c.set('k', 1)
        other = ucache.Cache('h2')
        self.assertIsNone(self.see(other.get('k')))
        other.set('k', 2)
        self.c.clear()
        self.assertEqual(self.see(other.get('k')), 2)
        self.assertIsNone(self.see(self.c.get('k')))

    def test_add(self):
        self.assertTrue(self.see(self.c.add('k', 1)))
        self.assertFalse(self.see(self.c.add('k', 2)))
        self.assertEqual(self.see(self.c.get('k')), 1)

    def test_ttl_touch_update(self):
        c = self.c
        self.assertIsNone(self.see(c.ttl('k')))
        c.set('k', 'v', timeout=0)
        self.assertEqual(self.see(c.ttl('k')), -1)
        c.set('k', 'v', timeout=100)
        self.assertIn(c.ttl('k'), (99, 100))
        self.assertTrue(self.see(c.touch('k', 1000)))
        self.assertIn(c.ttl('k'), (999, 1000))
        self.assertTrue(self.see(c.update('k', 'w')))
        self.assertIn(c.ttl('k'), (999, 1000))
        self.assertEqual(self.see(c.get('k')), 'w')
        self.assertFalse(self.see(c.update('nokey', 'w')))
        self.assertFalse(self.see(c.touch('nokey', 10)))
        self.assertIsNone(self.see(c.get('nokey')))

    def test_default_timeout_300(self):
        c = ucache.Cache('h')
        self.assertEqual(c.timeout, 300)
        c.set('k', 1)
        self.assertIn(c.ttl('k'), (299, 300))
        self.see(ucache.Cache('h', timeout=0).set('k', 1))
        self.assertEqual(self.see(c.ttl('k')), -1)

    def test_expiry(self):
        c = self.c
        c.set('short', 1, timeout=1)
        c.set('long', 1, timeout=100)
        self.assertEqual(self.see(c.get('short')), 1)
        poll(lambda: c.get('short') is None)
        self.assertNotIn('short', c)
        self.assertTrue(self.see(c.add('short', 2)))
        self.assertEqual(self.see(c.get('long')), 1)
        c.set('gone', 1, timeout=-1)
        self.assertIsNone(self.see(c.get('gone')))

    def test_gets_cas(self):
        c = self.c
        self.assertEqual(self.see(c.gets('k')), (None, 0))
        self.assertTrue(self.see(c.cas('k', 'first', 0)))
        self.assertFalse(self.see(c.cas('k', 'again', 0)))
        v, ver = c.gets('k')
        self.assertEqual(self.see(v), 'first')
        self.assertTrue(self.see(c.cas('k', 'second', ver)))
        self.assertFalse(self.see(c.cas('k', 'third', ver)))
        self.assertEqual(self.see(c.get('k')), 'second')

    def test_incr_value(self):
        c = self.c
        self.assertIsNone(self.see(c.incr_value('n')))
        self.assertEqual(self.see(c.incr_value('n', 5, initial=100, timeout=50)), 105)
        self.assertIn(c.ttl('n'), (49, 50))
        self.assertEqual(self.see(c.incr_value('n', -6)), 99)
        c.set('s', 'text')
        with self.assertRaises(ValueError):
            c.incr_value('s')

    def test_bug_incr_value_wraps_at_int64_max(self):
        c = self.c
        self.assertEqual(self.see(c.incr_value('n', 0, initial=2 ** 63 - 1, timeout=50)), 2 ** 63 - 1)
        with self.assertRaises(OverflowError):
            c.incr_value('n', 1)
        self.assertFalse(self.see(c.incr('n')))
        self.assertFalse(self.see(c.mul('n', 2)))
        self.assertEqual(self.see(c.incr_value('n', -1)), 2 ** 63 - 2)
        self.assertEqual(self.see(c.incr_value('m', 0, initial=-2 ** 63, timeout=50)), -2 ** 63)
        self.assertFalse(self.see(c.decr('m')))
        self.assertFalse(self.see(c.div('m', -1)))
        with self.assertRaises(OverflowError):
            c.incr_value('m', -1)
        self.assertEqual(self.see(c.incr_value('m', 0)), -2 ** 63)

    def test_many(self):
        c = self.c
        self.assertEqual(self.see(c.set_many({'a': 1, 'b': [2], 'c': 'three'})), [])
        self.assertEqual(self.see(c.get_many(['a', 'b', 'x', 'c'])), {'a': 1, 'b': [2], 'c': 'three'})
        self.assertEqual(self.see(c.delete_many(['a', 'x', 'c'])), 2)
        self.assertEqual(self.see(c.get_many(['a', 'b', 'c'])), {'b': [2]})

    def test_get_or_set(self):
        c, calls = self.c, []

        def compute():
            calls.append(1)
            return {'v': len(calls)}
        self.assertEqual(self.see(c.get_or_set('k', compute, timeout=100)), {'v': 1})
        self.assertEqual(self.see(c.get_or_set('k', compute)), {'v': 1})
        self.assertEqual(self.see(len(calls)), 1)
        self.assertIn(c.ttl('k'), (99, 100))
        with self.assertRaises(KeyError):
            c.get_or_set('boom', lambda: {}['x'])
        # the failed computation released the key at once
        self.assertEqual(self.see(c.get_or_set('boom', lambda: 7, wait=0)), 7)

    def test_get_or_set_threads_single_flight(self):
        c, calls, out = self.c, [], []
        gate = threading.Event()

        def compute():
            calls.append(1)
            gate.wait(5)
            return 'value'
        ts = [threading.Thread(target=lambda: out.append(c.get_or_set('k', compute))) for _ in range(4)]
        for t in ts:
            t.start()
        poll(lambda: calls)
        time.sleep(0.05)  # give the other three time to reach the wait
        gate.set()
        for t in ts:
            t.join(10)
        self.assertEqual(self.see(out), ['value'] * 4)
        self.assertEqual(self.see(len(calls)), 1)

    def test_stale_while_revalidate(self):
        c = self.c
        self.assertEqual(self.see(c.get_or_set('k', lambda: 'old', timeout=1, stale=30)), 'old')
        self.assertEqual(self.see(c.get_stale('k')), ('old', False))
        poll(lambda: c.get_stale('k')[1], 5)
        self.assertEqual(self.see(c.get_stale('k')), ('old', True))
        self.assertEqual(self.see(c.get_or_set('k', lambda: 'new', timeout=100, stale=30)), 'new')
        self.assertEqual(self.see(c.get_stale('k')), ('new', False))
        self.assertEqual(self.see(c.get_stale('missing', 'd')), ('d', False))

    def test_div_truncates_towards_zero(self):
        c = ucache.Cache('h', serializer='int')
        c.set('n', -7)
        self.assertTrue(c.div('n', 2))
        self.assertEqual(self.see(c.get('n')), -3)  # C division: towards zero
        self.assertTrue(c.div('n', 0))
        self.assertEqual(self.see(c.get('n')), 0)
