"""The takeover itself: every exported uwsgi_cache_* entry point is
redirected, whatever the plugin load order (--plugin a,b / several --plugin
/ plugins = in an ini), loaded by path or by name; the stock "Cache ...
initialized" line never appears; legacy struct-uwsgi_cache callers
(--static-cache-paths) work on the shims."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import PLUGIN, ROOT, UWSGI, Uwsgi, app, run_to_exit

PYRUN = b'''import uwsgi
print("RESULT", uwsgi.cache_set("k", "v"), uwsgi.cache_get("k"), uwsgi.cache_get("k", "a"),
      uwsgi.cache_inc("n", 41), uwsgi.cache_inc("n"), uwsgi.cache_num("n"),
      sorted(uwsgi.cache_keys("a")), uwsgi.cache_del("k"), uwsgi.cache_exists("k"))
'''
EXPECTED = "RESULT True b'v' b'v' True True 42 [b'k', b'n'] True None"


def binary():
    return os.path.realpath(shutil.which(UWSGI) or UWSGI)


class RedirectList(unittest.TestCase):
    def test_every_exported_cache_function_is_redirected(self):
        nm = subprocess.run(['nm', '-D', '--defined-only', binary()], stdout=subprocess.PIPE,
                            check=True).stdout.decode()
        exported = {line.split()[-1] for line in nm.splitlines()
                    if re.search(r' T (uwsgi_cache_|cache_udp)', line)}
        with open(os.path.join(ROOT, 'plugins', 'ucache', 'takeover', 'hook.c')) as f:
            listed = set(re.findall(r'^\s*R\((\w+),', f.read(), re.M))
        self.assertTrue(exported)
        self.assertEqual(exported - listed, set())


class LoadOrder(unittest.TestCase):
    def run_pyrun(self, args, ini=None):
        tmp = tempfile.mkdtemp(prefix='ucache-pyrun-')
        try:
            script = os.path.join(tmp, 'x.py')
            with open(script, 'wb') as f:
                f.write(PYRUN)
            if ini:
                path = os.path.join(tmp, 'x.ini')
                with open(path, 'w') as f:
                    f.write(ini % {'dir': os.path.dirname(PLUGIN), 'script': script})
                args = args + ['--ini', path]
            else:
                args = args + ['--pyrun', script]
            rc, out = run_to_exit(args, plugins=(), ucache=False)
        finally:
            shutil.rmtree(tmp)
        self.assertIn(EXPECTED, out)
        self.assertIn('*** ucache "a" initialized', out)
        self.assertIn('self-test passed', out)
        self.assertNotIn('*** Cache "', out)
        return out

    def test_done_when_command(self):
        # uwsgi --plugin python3 --plugin ./ucache_plugin.so --cache2 name=a,items=10 --pyrun x.py
        self.run_pyrun(['--plugin', 'python3', '--plugin', PLUGIN, '--cache2', 'name=a,items=10'])

    def test_comma_list_by_name(self):
        self.run_pyrun(['--plugins-dir', os.path.dirname(PLUGIN), '--plugin', 'python3,ucache',
                        '--cache2', 'name=a,items=10'])

    def test_ucache_first(self):
        self.run_pyrun(['--plugin', PLUGIN, '--plugin', 'python3', '--cache2', 'name=a,items=10'])

    def test_ini_plugins_line(self):
        self.run_pyrun([], ini='[uwsgi]\nplugins-dir = %(dir)s\nplugins = python3,ucache\n'
                               'cache2 = name=a,items=10\npyrun = %(script)s\n')

    def test_cache_options_before_the_plugin(self):
        self.run_pyrun(['--cache2', 'name=a,items=10', '--plugin', 'python3', '--plugin', PLUGIN])


class Refusal(unittest.TestCase):
    def test_unsupported_platform_refuses_to_start(self):
        """A build that cannot redirect (UCP_FORCE_UNSUPPORTED simulates a
        platform without trampolines) must not start on the stock cache."""
        tmp = tempfile.mkdtemp(prefix='ucache-refuse-')
        try:
            for entry in ('include', 'core', 'plugins'):
                shutil.copytree(os.path.join(ROOT, entry), os.path.join(tmp, entry))
            for entry in ('uwsgiplugin.py', 'VERSION'):
                shutil.copy(os.path.join(ROOT, entry), tmp)
            env = dict(os.environ, UCACHE_PLUGIN_CFLAGS='-DUCP_FORCE_UNSUPPORTED')
            build = subprocess.run([UWSGI, '--build-plugin', '. ucache_refuse'], cwd=tmp, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            self.assertEqual(build.returncode, 0, build.stdout.decode())
            rc, out = run_to_exit(['--plugin', os.path.join(tmp, 'ucache_refuse_plugin.so'),
                                   '--cache2', 'name=a,items=10', '--http-socket', '127.0.0.1:0'],
                                  plugins=(), ucache=False)
        finally:
            shutil.rmtree(tmp)
        self.assertEqual(rc, 1)
        self.assertIn('ucache: FATAL: cannot take over the stock cache: unsupported platform', out)
        self.assertNotIn('*** Cache "', out)
        self.assertNotIn('spawned uWSGI', out)


class LegacyCallers(unittest.TestCase):
    def test_static_cache_paths(self):
        tmp = tempfile.mkdtemp(prefix='ucache-static-')
        try:
            with open(os.path.join(tmp, 'file.txt'), 'w') as f:
                f.write('static content')
            with Uwsgi('--master', '--cache2', 'name=paths,items=10', '--static-cache-paths', '30',
                       '--static-map', '/static=' + tmp, '--wsgi-file', app('ops_app.py')) as u:
                self.assertEqual(u.get('/static/file.txt'), b'static content')
                self.assertEqual(u.get('/static/file.txt'), b'static content')
                keys = u.op('cache_keys', 'paths')
                self.assertEqual(len(keys), 1)
                self.assertTrue(keys[0].endswith(b'file.txt'))
                self.assertEqual(u.op('cache_get', keys[0], 'paths'),
                                 os.path.realpath(os.path.join(tmp, 'file.txt')).encode())
        finally:
            shutil.rmtree(tmp)


if __name__ == '__main__':
    unittest.main()
