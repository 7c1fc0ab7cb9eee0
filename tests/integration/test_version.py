"""The release from the repository's VERSION file (its one place) reaches
every place that prints it: the plugin's start-up line, each cache's
ucache_version in the stats server, and ucache-inspect --version."""
import os
import subprocess
import unittest

from harness import ROOT, Uwsgi, app, free_port, stats_json

INSPECT = os.environ.get('UCACHE_INSPECT', os.path.join(ROOT, 'build', 'ucache-inspect'))

with open(os.path.join(ROOT, 'VERSION')) as f:
    VERSION = f.read().strip()


class Version(unittest.TestCase):
    def test_startup_line_and_stats_name_the_version(self):
        sport = free_port()
        with Uwsgi('--master', '--stats', '127.0.0.1:%d' % sport,
                   '--cache2', 'name=a,items=10', '--cache2', 'name=b,items=10',
                   '--wsgi-file', app('ops_app.py')) as u:
            self.assertIn('self-test passed (ucache %s for uWSGI 2.0.21' % VERSION, u.log())
            caches = stats_json(sport)['caches']
            self.assertEqual([(c['name'], c['ucache_version']) for c in caches],
                             [('a', VERSION), ('b', VERSION)])

    def test_inspect_version(self):
        res = subprocess.run([INSPECT, '--version'], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=10)
        self.assertEqual((res.returncode, res.stdout.decode(), res.stderr),
                         (0, 'ucache-inspect %s\n' % VERSION, b''))


if __name__ == '__main__':
    unittest.main()
