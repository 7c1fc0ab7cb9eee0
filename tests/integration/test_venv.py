"""The Python package in a virtualenv, offline: most Django deployments run
under `uwsgi --home VENV`, where Debian's dist-packages are not on the path.
Real venvs (python3 -m venv), no network (pip --no-index):

- from the repository's wheel, built as `make wheel` and the .deb build it
  (pip wheel --no-build-isolation with Debian's setuptools and wheel), the
  way /usr/share/uwsgi-plugin-ucache/ucache-*.whl installs;
- straight from the repository, `pip install --no-index --find-links
  /usr/share/python-wheels ./python` (Debian's setuptools and wheel .whl
  files for pip's isolated build);

then an app under `uwsgi --plugin python3 --home VENV` imports ucache from
the venv and round-trips a value through ucache.Cache.  A venv without the
package is the control: there the import fails."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import STOCK, Uwsgi, app

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PYTHON = '/usr/bin/python3'  # the interpreter the python3 plugin embeds
with open(os.path.join(ROOT, 'VERSION')) as f:
    VERSION = f.read().strip().replace('~', '')


def run(*argv):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if p.returncode:
        raise AssertionError('%s exited %d:\n%s%s' % (' '.join(argv), p.returncode, p.stdout, p.stderr))
    return p.stdout


@unittest.skipIf(STOCK, 'the ucache package')
class Venv(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='ucache-venv-')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def venv(self, name):
        path = os.path.join(self.tmp, name)
        run(PYTHON, '-m', 'venv', path)
        return path

    def serve(self, venv):
        """What the app under --home venv reports."""
        with Uwsgi('--home', venv, '--cache2', 'name=v,items=100', '--wsgi-file', app('venv_app.py'),
                   env={'PYTHONPATH': ''}) as u:
            return json.loads(u.get('/'))

    def assert_imports_from(self, venv):
        got = self.serve(venv)
        self.assertEqual(os.path.realpath(got['prefix']), os.path.realpath(venv), got)
        self.assertTrue(os.path.realpath(got['file']).startswith(os.path.realpath(venv) + '/'), got)
        self.assertTrue(got['file'].endswith('/site-packages/ucache/__init__.py'), got)
        self.assertEqual(got['version'], VERSION)
        self.assertEqual(got['got'], {'n': 42})

    def test_control_a_venv_without_the_package_cannot_import_it(self):
        got = self.serve(self.venv('empty'))
        self.assertEqual(got['error'], "No module named 'ucache'")

    def test_the_wheel_installs_offline(self):
        wheels = os.path.join(self.tmp, 'wheels')
        run(PYTHON, '-m', 'pip', 'wheel', '--no-build-isolation', '--no-index', '--no-deps', '--quiet',
            '-w', wheels, os.path.join(ROOT, 'python'))
        wheel, = glob.glob(os.path.join(wheels, 'ucache-*.whl'))
        self.assertEqual(os.path.basename(wheel), 'ucache-%s-py3-none-any.whl' % VERSION)
        venv = self.venv('from-wheel')
        run(os.path.join(venv, 'bin', 'pip'), 'install', '--no-index', '--quiet', wheel)
        self.assert_imports_from(venv)

    def test_the_repository_installs_offline(self):
        venv = self.venv('from-repo')
        run(os.path.join(venv, 'bin', 'pip'), 'install', '--no-index', '--quiet',
            '--find-links', '/usr/share/python-wheels', os.path.join(ROOT, 'python'))
        self.assert_imports_from(venv)


if __name__ == '__main__':
    unittest.main()
