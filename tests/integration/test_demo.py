"""`make demo` serves its page: demo/demo.ini on free ports shows a miss,
then a hit, and the live stats of the demo cache."""
import http.client
import json
import os
import unittest

from harness import ROOT, Uwsgi, free_port, poll


class Demo(unittest.TestCase):
    def get(self, port, path):
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=15)
        try:
            conn.request('GET', path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def test_demo_page(self):
        port, stats = free_port(), free_port()
        env = {'UCACHE_DEMO_PORT': str(port), 'UCACHE_DEMO_STATS': str(stats)}
        with Uwsgi('--ini', os.path.join(ROOT, 'demo', 'demo.ini'), plugins=(), ucache=False,
                   http=False, env=env):
            poll(lambda: self.get(port, '/stats.json')[0] == 200, 10, 0.05, 'demo')
            status, body = self.get(port, '/?n=12')
            self.assertEqual(status, 200)
            self.assertIn('square(12) = 144: <b>MISS</b>', body)
            status, body = self.get(port, '/?n=12')
            self.assertIn('square(12) = 144: <b>HIT</b>', body)
            self.assertIn('<th>evictions</th>', body)
            caches = json.loads(self.get(port, '/stats.json')[1])
            self.assertEqual(caches[0]['name'], 'demo')
            self.assertEqual((caches[0]['items'], caches[0]['hits'], caches[0]['miss']), (1, 1, 1))


if __name__ == '__main__':
    unittest.main()
