"""--ucache-metrics ADDR: Prometheus metrics of every cache from a master
thread.  The values of a scrape match the operations done; a feature's
families appear only for the caches that have it; Debian's `promtool check
metrics` accepts the exposition; a real `prometheus` scrapes it; a scrape is
answered while the only worker is busy and again after a reload; bad
options stop the start."""
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from harness import Process, Uwsgi, app, free_port, need, poll, run_to_exit
from test_redis import Redis

PROMTOOL = shutil.which('promtool') or '/usr/bin/promtool'
PROMETHEUS = shutil.which('prometheus') or '/usr/bin/prometheus'
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$')


def scrape(port, path='/metrics'):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        conn.request('GET', path)
        resp = conn.getresponse()
        return resp.status, resp.getheader('Content-Type'), resp.read().decode()
    finally:
        conn.close()


def parse(text):
    """{(name, labels): value} and {name: type} of an exposition."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(' ')
            types[name] = kind
        elif line and not line.startswith('#'):
            m = SAMPLE.match(line)
            if not m:
                raise AssertionError('not a sample line: %r' % line)
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2))))
            samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def value(samples, name, cache, **labels):
    key = (name, tuple(sorted([('name', cache)] + list(labels.items()))))
    return samples.get(key)


class Metrics(unittest.TestCase):
    def instance(self, *extra):
        self.mport = free_port()
        return Uwsgi('--master', '--processes', '1', '--ucache-metrics', '127.0.0.1:%d' % self.mport,
                     '--cache2', 'name=a,items=11,blocksize=100',
                     '--cache2', 'name=b,items=3,blocks=12,blocksize=10,bitmap=1,purge_lru=1,'
                     'nodes=127.0.0.1:%d' % free_port(),
                     '--wsgi-file', app('ops_app.py'), *extra)

    def test_values_and_features(self):
        with self.instance() as u:
            u.ops(['cache_set', 'k1', 'x' * 10, 0, 'a'], ['cache_set', 'k2', 'y' * 5, 0, 'a'],
                  ['cache_get', 'k1', 'a'], ['cache_get', 'k1', 'a'], ['cache_get', 'no', 'a'],
                  ['cache_del', 'k2', 'a'],
                  ['cache_set', 'b1', 'v', 0, 'b'], ['cache_set', 'b2', 'v', 0, 'b'],
                  ['cache_set', 'b3', 'v', 0, 'b'])
            status, ctype, body = scrape(self.mport)
            self.assertEqual(status, 200)
            self.assertTrue(ctype.startswith('text/plain; version=0.0.4'), ctype)
            s, types = parse(body)
            want_a = {'uwsgi_cache_hits': 2, 'uwsgi_cache_misses': 1, 'uwsgi_cache_full': 0,
                      'uwsgi_cache_items': 1, 'uwsgi_cache_max_items': 11,
                      'uwsgi_cache_bytes_used': 10, 'uwsgi_cache_max_value_bytes': 100,
                      'uwsgi_cache_evictions_total': 0, 'uwsgi_cache_expirations_total': 0}
            self.assertEqual({k: value(s, k, 'a') for k in want_a}, want_a)
            self.assertEqual([value(s, 'uwsgi_cache_operations_total', 'a', op=op)
                              for op in ('get', 'set', 'delete')], [3, 2, 1])
            self.assertEqual((value(s, 'uwsgi_cache_full', 'b'), value(s, 'uwsgi_cache_items', 'b'),
                              value(s, 'uwsgi_cache_evictions_total', 'b'),
                              value(s, 'uwsgi_cache_max_value_bytes', 'b')), (1, 2, 1, 120))
            self.assertGreaterEqual(value(s, 'uwsgi_cache_bytes_mapped', 'a'), 11 * 100)
            self.assertGreater(value(s, 'uwsgi_cache_bytes_resident', 'a'), 0)
            # replication: only b has it; no Redis family at all
            self.assertEqual(value(s, 'uwsgi_cache_udp_sent_total', 'b'), 3)
            self.assertIsNone(value(s, 'uwsgi_cache_udp_sent_total', 'a'))
            self.assertEqual(types['uwsgi_cache_udp_sent_total'], 'counter')
            self.assertFalse([k for k in types if 'redis' in k], types)
            self.assertEqual((types['uwsgi_cache_hits'], types['uwsgi_cache_items'],
                              types['uwsgi_cache_operations_total']), ('untyped', 'gauge', 'counter'))
            # every family has its HELP line
            self.assertEqual(len(re.findall(r'^# HELP ', body, re.M)), len(types))
            self.assertEqual(scrape(self.mport, '/')[0], 404)

    @need(PROMTOOL)
    def test_promtool_check_metrics(self):
        with self.instance() as u:
            u.ops(['cache_set', 'k', 'v', 0, 'a'], ['cache_get', 'k', 'a'])
            body = scrape(self.mport)[2]
            r = subprocess.run([PROMTOOL, 'check', 'metrics'], input=body.encode(),
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    @need(PROMTOOL)
    def test_redis_families(self):
        with Redis() as redis:
            self.mport = free_port()
            with Uwsgi('--master', '--ucache-metrics', '127.0.0.1:%d' % self.mport,
                       '--cache2', 'name=r,items=20,redis=127.0.0.1:%d' % redis.port,
                       '--cache2', 'name=plain,items=20', '--wsgi-file', app('ops_app.py')) as u:
                u.op('cache_set', 'k', 'v', 0, 'r')
                poll(lambda: value(parse(scrape(self.mport)[2])[0], 'uwsgi_cache_redis_connected',
                                   'r') == 1, 10, 0.05, 'the Redis listener')
                body = scrape(self.mport)[2]
                s, types = parse(body)
                self.assertEqual(types['uwsgi_cache_redis_connected'], 'gauge')
                self.assertEqual(types['uwsgi_cache_redis_fetches_total'], 'counter')
                self.assertIsNone(value(s, 'uwsgi_cache_redis_fetches_total', 'plain'))
                self.assertEqual(value(s, 'uwsgi_cache_operations_total', 'r', op='set'), 1)
                self.assertFalse([k for k in types if 'udp' in k], types)
                r = subprocess.run([PROMTOOL, 'check', 'metrics'], input=body.encode(),
                                   capture_output=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_served_while_the_worker_is_busy(self):
        with self.instance() as u:
            busy = threading.Thread(target=u.ops, args=(['sleep', 3],))
            busy.start()
            try:
                poll(lambda: 'uwsgi_cache_items' in scrape(self.mport)[2], 2, 0.05, 'a scrape')
                self.assertTrue(busy.is_alive(), 'the scrape came after the busy request ended')
            finally:
                busy.join()

    @need(PROMETHEUS)
    def test_prometheus_scrapes(self):
        with self.instance() as u, tempfile.TemporaryDirectory() as tmp:
            for i in range(5):
                u.op('cache_set', 'k%d' % i, 'v', 0, 'a')
            conf = os.path.join(tmp, 'prometheus.yml')
            with open(conf, 'w') as f:
                f.write('global:\n  scrape_interval: 1s\nscrape_configs:\n'
                        '  - job_name: ucache\n    static_configs:\n'
                        "      - targets: ['127.0.0.1:%d']\n" % self.mport)
            pport = free_port()
            prom = Process([PROMETHEUS, '--config.file', conf, '--storage.tsdb.path',
                            os.path.join(tmp, 'data'), '--web.listen-address',
                            '127.0.0.1:%d' % pport], tmp)
            prom.start()
            try:
                q = urllib.parse.quote('uwsgi_cache_items{name="a"}')

                def scraped():
                    try:
                        with urllib.request.urlopen('http://127.0.0.1:%d/api/v1/query?query=%s'
                                                    % (pport, q), timeout=5) as r:
                            res = json.load(r)['data']['result']
                    except OSError:
                        return False
                    return res and res[0]['value'][1]
                self.assertEqual(poll(scraped, 60, 0.5, 'prometheus to scrape'), '5')
            finally:
                prom.stop()

    def test_served_again_after_a_reload(self):
        with self.instance() as u:
            u.op('cache_set', 'k', 'v', 0, 'a')
            u.reload('sighup')
            s, _ = parse(scrape(self.mport)[2])
            # the new master bound the address again; the contents were kept
            self.assertEqual(value(s, 'uwsgi_cache_items', 'a'), 1)

    def test_bad_options(self):
        rc, out = run_to_exit(['--master', '--ucache-metrics', 'nocolon', '--cache2', 'name=a,items=10'])
        self.assertNotEqual(rc, 0)
        self.assertIn('--ucache-metrics nocolon: bad address', out)
        rc, out = run_to_exit(['--ucache-metrics', '127.0.0.1:%d' % free_port(),
                               '--cache2', 'name=a,items=10'])
        self.assertNotEqual(rc, 0)
        self.assertIn('needs --master', out)
        with self.instance():
            rc, out = run_to_exit(['--master', '--ucache-metrics', '127.0.0.1:%d' % self.mport,
                                   '--http-socket', '127.0.0.1:0', '--cache2', 'name=a,items=10'])
            self.assertNotEqual(rc, 0)
            self.assertIn('bind(): Address already in use', out)


if __name__ == '__main__':
    unittest.main()
