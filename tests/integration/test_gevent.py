"""Single-flight waits under a gevent worker (issue 18 item 5): uwsgi
--gevent 100 (Debian's uwsgi-plugin-gevent-python3), one process, so every
request shares one thread and one hub.

Two concurrent misses of one key -- ucache.Cache.get_or_set, the Django
backend's get_or_set, and two Accelerator misses of one URL -- while the
first computes (cooperatively, 0.5 s), the second waits: the wait must
yield to the hub, so that the computation finishes, runs ONCE, and an
unrelated request (/ping) is answered before it ends.  A wait that sleeps
the thread (nanosleep in core/flight.c, time.sleep in the Accelerator)
froze the hub until it gave up: 10 s for get_or_set, 30 s for the
Accelerator, and then the second caller computed (rendered) again.
apps/gevent_app.py holds the computation until the ping has been answered,
so the order is a behaviour, not a timing.  Under ugreen (uWSGI's other
async engines alike) a waiter does not wait: it computes at once."""
import json
import os
import threading
import unittest

from harness import ROOT, STOCK, Uwsgi, app, need, poll, stock_plugin

PYTHONPATH = os.path.join(ROOT, 'python')


@need(stock_plugin('gevent_python3'))
@unittest.skipIf(STOCK, 'needs ucache (the RPC functions, the Accelerator)')
class GeventWaits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi('--gevent', '100', '--cache2', 'name=g,items=200',
                      '--cache2', 'name=pages,items=200,blocksize=65536',
                      '--pythonpath', PYTHONPATH, '--wsgi-file', app('gevent_app.py'),
                      plugins=('python3', 'gevent_python3')).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def json(self, path):
        # long enough for the bug's frozen hub (30 s) to end in an assertion
        status, _, body = self.u.request(path, timeout=45)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def start(self, path, out):
        def one():
            out.append(self.u.request(path, timeout=45))
        t = threading.Thread(target=one)
        t.start()
        return t

    def race(self, path, key):
        """Two concurrent requests of path (computing key); returns (the two
        replies, the ping answered while the second waited, /num)."""
        out = []
        first = self.start(path, out)
        poll(lambda: self.json('/num?key=%s' % key)['calls'] >= 1, 20, what='the first computation')
        second = self.start(path, out)
        ping = poll(lambda: (lambda p: p if p['arrived'] >= 2 else None)(self.json('/ping?key=%s' % key)),
                    40, what='a ping while the second caller waits')
        for t in (first, second):
            t.join(60)
        self.assertEqual([r[0] for r in out], [200, 200], out)
        return [r[2] for r in out], ping, self.json('/num?key=%s' % key)

    def check(self, bodies, ping, num):
        self.assertEqual(num['calls'], 1, 'the computation ran %d times' % num['calls'])
        self.assertEqual(bodies[0], bodies[1])
        self.assertLess(ping['t'], num['end'], 'the unrelated request waited for the computation')

    def test_bug_gevent_get_or_set_blocks_hub(self):
        for api in ('cache', 'django'):
            with self.subTest(api=api):
                key = 'k-' + api
                bodies, ping, num = self.race('/gos?api=%s&key=%s' % (api, key), key)
                self.check(bodies, ping, num)
                self.assertEqual(json.loads(bodies[0]), {'value': 'v-1'})

    def test_bug_gevent_accelerator_blocks_hub(self):
        bodies, ping, num = self.race('/page/a', '/page/a')
        self.check(bodies, ping, num)
        self.assertEqual(bodies[0], b'rendered #1')
        # the page is cached: a third request is a hit, not a render
        self.assertEqual(self.u.request('/page/a')[2], b'rendered #1')
        self.assertEqual(self.json('/num?key=/page/a')['calls'], 1)


@need(stock_plugin('ugreen'))
@unittest.skipIf(STOCK, 'needs ucache (the RPC functions)')
class OtherAsyncEngines(unittest.TestCase):
    def test_ugreen_get_or_set_does_not_wait(self):
        """uWSGI's other async engines have no cooperative sub-second sleep
        (ucache._cooperative): a caller finding the key locked computes at
        once instead of freezing the loop for `wait` (here an hour: the
        request would time out)."""
        with Uwsgi('--async', '10', '--ugreen', '--cache2', 'name=g,items=200', '--cache2', 'name=pages,items=10',
                   '--pythonpath', PYTHONPATH, '--wsgi-file', app('gevent_app.py'),
                   plugins=('python3', 'ugreen')) as u:
            status, _, body = u.request('/hold?key=h')
            self.assertEqual((status, json.loads(body)), (200, {'state': 'C'}))
            status, _, body = u.request('/gos_wait?key=h', timeout=30)
            self.assertEqual((status, json.loads(body)), (200, {'value': 'computed', 'mode': 'no-wait'}))


if __name__ == '__main__':
    unittest.main()
