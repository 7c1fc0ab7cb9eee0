"""`make demo` serves its page: demo/demo.ini on free ports shows a miss,
then a hit, and the live stats of the demo cache; in headless Chromium the
page draws its three charts, and they move after requests (a screenshot is
kept in build/test-artifacts/demo-charts.png)."""
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import ROOT, Uwsgi, free_port, need, poll

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARTIFACTS = os.path.join(ROOT, 'build', 'test-artifacts')
CHARTS = ('chart-hit', 'chart-memory', 'chart-ops')


def chromium(url, *mode):
    """Headless Chromium on url with 3 s of virtual time (the page's own
    fetches and timers run); returns its stdout."""
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu',
                            '--hide-scrollbars', '--user-data-dir=' + profile,
                            '--window-size=1000,640', '--virtual-time-budget=3000'] + list(mode) + [url],
                           capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError('chromium failed (%d): %s' % (r.returncode, r.stderr[-2000:]))
    return r.stdout


def charts(dom):
    """{svg id: (data-samples, {line class: (points, data-last)})}: a
    line is an svg path, its points the "x,y" of its M and L commands."""
    out = {}
    for m in re.finditer(r'<svg ([^>]*)>(.*?)</svg>', dom, re.S):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
        lines = {}
        for pl in re.finditer(r'<path ([^>]*)>', m.group(2)):
            a = dict(re.findall(r'([\w-]+)="([^"]*)"', pl.group(1)))
            lines[a['class']] = (re.findall(r'[ML]([-\d.]+,[-\d.]+)', a['d']), a['data-last'])
        out[attrs.get('id')] = (int(attrs.get('data-samples', -1)), lines)
    return out


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

    @need(CHROMIUM)
    def test_demo_charts_in_chromium(self):
        port, stats = free_port(), free_port()
        env = {'UCACHE_DEMO_PORT': str(port), 'UCACHE_DEMO_STATS': str(stats)}
        history = lambda: json.loads(self.get(port, '/history.json')[1])
        with Uwsgi('--ini', os.path.join(ROOT, 'demo', 'demo.ini'), plugins=(), ucache=False,
                   http=False, env=env):
            poll(lambda: self.get(port, '/stats.json')[0] == 200, 10, 0.05, 'demo')
            self.get(port, '/?n=3')
            poll(lambda: len(history()) >= 3, 15, 0.1, 'three samples')
            url = 'http://127.0.0.1:%d/?n=3' % port
            before = charts(chromium(url, '--dump-dom'))
            self.assertEqual(sorted(before), sorted(CHARTS))
            self.assertGreaterEqual(before['chart-hit'][0], 2)
            self.assertEqual(sorted(before['chart-ops'][1]), ['line-deletes', 'line-gets', 'line-sets'])
            self.assertGreater(float(before['chart-memory'][1]['line-used'][1]), 0)
            # traffic: 40 hits and 2 misses, then a sample that saw them
            hits = history()[-1][1]
            for i in range(40):
                self.get(port, '/?n=3')
            self.get(port, '/?n=4')
            self.get(port, '/?n=5')
            poll(lambda: history()[-1][1] >= hits + 40, 15, 0.1, 'a sample after the requests')
            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, 'demo-charts.png')
            if os.path.exists(shot):
                os.unlink(shot)
            after = charts(chromium(url, '--dump-dom'))
            chromium(url, '--screenshot=' + shot)
            with open(shot, 'rb') as f:
                self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')
            # the charts moved: more samples, new points, gets seen per second
            self.assertGreater(after['chart-ops'][0], before['chart-ops'][0])
            gets_before, gets_after = before['chart-ops'][1]['line-gets'][0], after['chart-ops'][1]['line-gets'][0]
            self.assertNotEqual(gets_before, gets_after)
            ys = [float(p.split(',')[1]) for p in gets_after]
            self.assertLess(min(ys), max(ys), 'the gets line stayed flat: %s' % gets_after)
            self.assertGreater(float(after['chart-memory'][1]['line-used'][1]), 0)


if __name__ == '__main__':
    unittest.main()
