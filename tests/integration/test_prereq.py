"""The Makefile's prerequisite check (packaging/need-packages.sh): on a
machine without uwsgi, `make demo` as a user stops before building anything
with one line naming the missing package and the command to run; as root
it installs the missing packages of its goal's set only; with everything
installed it is silent and runs no apt-get.

A machine without uwsgi is simulated: PATH holds every command of the
system but uwsgi*, and a stand-in dpkg-query reports every package asked
about as installed but those in HIDE (whatever this machine has: CI has no
benchmark packages).  apt-get is a recorder (never the real one: no
network).  The silent case uses the real dpkg-query on what `make test`
needs, which this machine has."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import deploy_user

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
SYSTEM_BIN = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')

DPKG_QUERY = '''#!/bin/sh
# dpkg-query -W -f='${db:Status-Abbrev}${Package}\\n' PKG...: all installed but $HIDE
for a in "$@"; do
    case "$a" in -*) continue ;; esac
    case " $HIDE " in *" $a "*) ;; *) echo "ii $a" ;; esac
done
'''
APT_GET = '''#!/bin/sh
# apt-get that only records its arguments
echo "$*" >> "$APT_LOG"
'''


def make_list(name):
    out = subprocess.run(['make', '-s', '-C', ROOT, name], capture_output=True, text=True, check=True)
    return out.stdout.split()


@unittest.skipIf(os.geteuid() != 0, 'runs make as root and as a user (setpriv)')
class Prereq(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='ucache-prereq-')
        os.chmod(cls.tmp, 0o755)
        cls.sysbin = os.path.join(cls.tmp, 'sysbin')
        cls.fake = os.path.join(cls.tmp, 'fake')
        cls.sim = os.path.join(cls.tmp, 'sim')
        for d in (cls.sysbin, cls.fake, cls.sim):
            os.mkdir(d)
        for d in SYSTEM_BIN:
            for name in os.listdir(d) if os.path.isdir(d) else ():
                dest = os.path.join(cls.sysbin, name)
                if not name.startswith('uwsgi') and not os.path.lexists(dest):
                    os.symlink(os.path.join(d, name), dest)
        for path, text in ((os.path.join(cls.sim, 'dpkg-query'), DPKG_QUERY),
                           (os.path.join(cls.fake, 'apt-get'), APT_GET)):
            with open(path, 'w') as f:
                f.write(text)
            os.chmod(path, 0o755)
        # a user cannot always read the checkout: a copy of what the check reads
        cls.copy = os.path.join(cls.tmp, 'checkout')
        os.makedirs(os.path.join(cls.copy, 'packaging'))
        for f in ('Makefile', 'VERSION', 'packaging/need-packages.sh'):
            shutil.copy2(os.path.join(ROOT, f), os.path.join(cls.copy, f))
        os.chmod(os.path.join(cls.tmp, 'checkout'), 0o755)
        cls.apt_log = os.path.join(cls.tmp, 'apt.log')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        open(self.apt_log, 'w').close()
        os.chmod(self.apt_log, 0o666)

    def path(self, simulated=True):
        return ':'.join(([self.sim] if simulated else []) + [self.fake, self.sysbin])

    def make(self, *goals, hide=(), user=False, cwd=None, simulated=True):
        env = {'PATH': self.path(simulated), 'HIDE': ' '.join(hide),
               'APT_LOG': self.apt_log, 'HOME': self.tmp, 'LANG': 'C'}
        argv = ['make', '-n'] + list(goals)
        if user:
            uid, gid = deploy_user()
            argv = ['setpriv', '--reuid', str(uid), '--regid', str(gid), '--clear-groups'] + argv
        p = subprocess.run(argv, cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def apt_calls(self):
        with open(self.apt_log) as f:
            return f.read().splitlines()

    def test_no_uwsgi_on_path_in_the_simulation(self):
        env = {'PATH': self.path(), 'HIDE': 'uwsgi-core'}
        self.assertIsNone(shutil.which('uwsgi', path=env['PATH']))
        out = subprocess.run(['dpkg-query', '-W', '-f=${db:Status-Abbrev}${Package}\\n', 'uwsgi-core', 'make'],
                             env=env, capture_output=True, text=True).stdout
        self.assertEqual(out.split(), ['ii', 'make'])

    def test_user_without_uwsgi_gets_one_line(self):
        for goal, fix in (('demo', 'sudo make deps-run'), ('all', 'sudo make deps-run'),
                          ('test', 'sudo make deps-test'), ('bench', 'sudo make deps-bench'),
                          ('deb', 'sudo make deps-deb')):
            rc, out, err = self.make(goal, hide=('uwsgi-core',), user=True, cwd=self.copy)
            self.assertEqual((rc, out), (2, ''), err)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn('*** make %s needs Debian packages that are not installed (uwsgi-core): '
                          'run `%s` first.  Stop.' % (goal, fix), err)
        self.assertEqual(self.apt_calls(), [])

    def test_root_installs_the_missing_packages_of_its_goal_only(self):
        rc, out, err = self.make('demo', hide=('uwsgi-core', 'memcached', 'valgrind'))
        self.assertEqual(rc, 0, err)
        self.assertIn('make demo: installing the missing Debian packages: uwsgi-core', err)
        self.assertEqual([c.split()[-1] for c in self.apt_calls()], ['update', 'uwsgi-core'])
        self.assertIn('install -y --no-install-recommends uwsgi-core', self.apt_calls()[1])
        self.assertIn('uwsgi --ini demo/demo.ini', out)
        open(self.apt_log, 'w').close()
        rc, out, err = self.make('test', hide=('memcached', 'valgrind', 'lintian'))
        self.assertEqual(rc, 0, err)
        self.assertTrue(self.apt_calls()[-1].endswith('--no-install-recommends memcached'), self.apt_calls())
        open(self.apt_log, 'w').close()
        rc, out, err = self.make('bench', hide=('memcached', 'valgrind', 'lintian'))
        self.assertEqual(rc, 0, err)
        self.assertTrue(self.apt_calls()[-1].endswith('--no-install-recommends memcached valgrind'),
                        self.apt_calls())

    def test_root_with_everything_installed_is_silent_and_runs_no_apt(self):
        """The real dpkg-query on the packages `make test` needs (the ones
        this very test runs with)."""
        wanted = make_list('deb-packages-run') + make_list('deb-packages-test')
        p = subprocess.run(['packaging/need-packages.sh', 'check', 'fix'] + wanted, cwd=ROOT,
                           capture_output=True, text=True, env={'PATH': self.path(False), 'APT_LOG': self.apt_log})
        self.assertEqual((p.returncode, p.stdout, p.stderr, self.apt_calls()), (0, '', '', []))
        for goal in ('demo', 'test'):
            start = time.monotonic()
            rc, out, err = self.make(goal, simulated=False)
            took = time.monotonic() - start
            self.assertEqual((rc, err), (0, ''))
            print('[prereq] make -n %s with everything installed: %.2f s' % (goal, took))
        self.assertEqual(self.apt_calls(), [])

    def test_sets_are_split(self):
        run, test, bench, deb = (set(make_list('deb-packages-' + s)) for s in ('run', 'test', 'bench', 'deb'))
        self.assertTrue({'uwsgi-core', 'uwsgi-dev', 'uwsgi-plugin-python3'} <= run)
        self.assertTrue({'libxxhash-dev', 'libhiredis-dev', 'libssl-dev', 'python3'} <= run)
        self.assertFalse({'clang', 'valgrind', 'wrk', 'gnuplot-nox', 'memcached', 'lintian',
                          'uwsgi-plugin-php', 'libcmocka-dev'} & run)
        self.assertTrue({'libcmocka-dev', 'clang', 'memcached', 'redis-server', 'python3-venv'} <= test)
        self.assertEqual(bench, {'gnuplot-nox', 'wrk', 'valgrind'})
        self.assertIn('lintian', deb)
        self.assertEqual(set(make_list('deb-packages')), run | test | bench | deb)


if __name__ == '__main__':
    unittest.main()
