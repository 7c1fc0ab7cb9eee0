"""Stores as deployments run them (issue 18): root dropping to --uid with a
master and graceful reloads, a store directory the app user can write, a
filesystem that fills up.

  - a store survives SIGHUP, --touch-reload and a chain reload under
    --uid/--gid with every item (the reloaded master reopens the file as
    the user: it is created for that user), and one that user could never
    open is refused at the first start, in one line;
  - a symbolic link (or a hard link) planted where the store or its
    store_migrate temporary goes is never followed: the root-owned target
    stays intact;
  - on a small tmpfs the space is reserved at creation: a store that does
    not fit fails the start with ENOSPC in one line, one that fits keeps
    working when the filesystem is full, and an old sparse store fails the
    restart cleanly; no process ever dies of SIGBUS.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Uwsgi, app, deploy_user, run_to_exit, skip_unless_deployable

GEOM = 'items=20,blocksize=64'


def store_args(path, extra=''):
    return ['--cache2', 'name=p,%s,store=%s%s' % (GEOM, path, extra), '--wsgi-file', app('ops_app.py')]


def deployed(path, *extra, extra_cache=''):
    return Uwsgi(*store_args(path, extra_cache), *extra, deploy=True)


def refusal(test, rc, out):
    """The one "unable to create cache" line of a refused start."""
    test.assertEqual(rc, 1, out[-3000:])
    test.assertNotIn('signal', out)
    lines = [ln for ln in out.splitlines() if ln.startswith('ucache: unable to create cache')]
    test.assertEqual(len(lines), 1, out[-3000:])
    return lines[0]


def deploy_run(args):
    uid, gid = deploy_user()
    return run_to_exit(args + ['--http-socket', '127.0.0.1:0', '--master', '--uid', str(uid), '--gid', str(gid)])


class Base(unittest.TestCase):
    def setUp(self):
        skip_unless_deployable(self, 'ucache store safety')
        self.root_dir = tempfile.mkdtemp(prefix='ucache-deploy-store-')
        os.chmod(self.root_dir, 0o755)
        # the directory a deployment gives the app user (Debian: /var/lib/APP)
        self.app_dir = os.path.join(self.root_dir, 'app')
        os.mkdir(self.app_dir)
        os.chown(self.app_dir, *deploy_user())

    def tearDown(self):
        shutil.rmtree(self.root_dir, ignore_errors=True)


class StoreUnderUid(Base):
    def check_reloads(self, path):
        with deployed(path, '--lazy-apps', '--touch-chain-reload', os.path.join(self.root_dir, 'chain')) as u:
            self.assertEqual(u.ops(['cache_set', 'a', '1', 0, 'p'], ['cache_set', 'b', '2', 0, 'p']), [True, True])
            u.reload('sighup')
            self.assertEqual(u.ops(['cache_get', 'a', 'p'], ['cache_set', 'c', '3', 0, 'p']), [b'1', True])
            u.reload('touch')
            self.assertEqual(u.op('cache_set', 'd', '4', 0, 'p'), True)
            chain = os.path.join(self.root_dir, 'chain')
            open(chain, 'w').close()
            u.reload(lambda: os.utime(chain), expect='chain reload')
            self.assertEqual(sorted(u.op('cache_keys', 'p')), [b'a', b'b', b'c', b'd'])
            self.assertEqual(u.ops(['cache_get', 'c', 'p'], ['cache_get', 'd', 'p']), [b'3', b'4'])
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_gid), deploy_user())

    def test_bug_store_under_uid_lost_at_first_reload(self):
        """Root created the store 0600 root:root; the master re-exec'd by
        the first SIGHUP runs as the uid and exited: "Permission denied"."""
        self.check_reloads(os.path.join(self.app_dir, 'c.store'))

    def test_store_in_a_root_owned_directory(self):
        """The file is the user's; the directory need not be."""
        self.check_reloads(os.path.join(self.root_dir, 'c.store'))

    def test_bug_store_unopenable_by_uid_refused_at_first_start(self):
        """A store the final user could never open (left by an earlier
        version running as root) is refused at the first start, naming the
        path, owner, mode and uid, not at the first reload."""
        path = os.path.join(self.app_dir, 'c.store')
        with Uwsgi(*store_args(path), '--master') as u:  # as root, no --uid
            self.assertTrue(u.op('cache_set', 'a', '1', 0, 'p'))
        os.chown(path, 0, 0)
        os.chmod(path, 0o600)
        uid, gid = deploy_user()
        line = refusal(self, *deploy_run(store_args(path)))
        for frag in (path, 'owned by uid 0 gid 0', 'mode 0600', 'uid %d gid %d' % (uid, gid)):
            self.assertIn(frag, line)
        os.chown(path, uid, gid)  # the way out the line names
        with deployed(path) as u:
            self.assertEqual(u.op('cache_get', 'a', 'p'), b'1')


class PlantedLinks(Base):
    """The app user owns the store directory and plants links in it; uwsgi
    runs as root at start (store_delete / store_migrate)."""

    def setUp(self):
        super().setUp()
        self.target = os.path.join(self.root_dir, 'precious')
        with open(self.target, 'wb') as f:
            f.write(b'root-owned secret\n' * 100)
        os.chmod(self.target, 0o644)
        self.path = os.path.join(self.app_dir, 'c.store')

    def assert_target_intact(self):
        with open(self.target, 'rb') as f:
            self.assertEqual(f.read(), b'root-owned secret\n' * 100)
        st = os.stat(self.target)
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o644))

    def test_bug_store_delete_follows_symlink(self):
        os.symlink(self.target, self.path)
        line = refusal(self, *deploy_run(store_args(self.path, ',store_delete=1')))
        self.assertIn('store %s is a symbolic link' % self.path, line)
        self.assert_target_intact()

    def test_bug_store_migrate_follows_symlink(self):
        with deployed(self.path) as u:  # a store of another geometry, with items
            self.assertTrue(u.op('cache_set', 'k', 'v', 0, 'p'))
        os.symlink(self.target, self.path + '.migrate')
        global GEOM
        old, GEOM = GEOM, 'items=30,blocksize=64'
        try:
            with deployed(self.path, extra_cache=',store_migrate=1') as u:
                self.assertIn('store_migrate imported 1 items', u.log())
                self.assertEqual(u.op('cache_get', 'k', 'p'), b'v')
                u.reload('sighup')
                self.assertEqual(u.op('cache_get', 'k', 'p'), b'v')
        finally:
            GEOM = old
        self.assert_target_intact()
        self.assertFalse(os.path.lexists(self.path + '.migrate'))
        self.assertFalse(os.path.islink(self.path))

    def test_bug_store_hard_link_to_root_file(self):
        os.link(self.target, self.path)
        line = refusal(self, *deploy_run(store_args(self.path, ',store_delete=1')))
        self.assertIn('has 2 hard links', line)
        self.assert_target_intact()


class FullFilesystem(Base):
    """A store on a 2 MiB tmpfs."""

    def setUp(self):
        super().setUp()
        self.mnt = os.path.join(self.root_dir, 'mnt')
        os.mkdir(self.mnt)
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', self.mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode:
            self.skipTest('cannot mount a tmpfs: %s' % r.stdout.decode(errors='replace').strip())
        self.addCleanup(subprocess.run, ['umount', '-l', self.mnt])
        self.path = os.path.join(self.mnt, 'c.store')

    def fill(self):
        """Take every free byte of the filesystem."""
        fd = os.open(os.path.join(self.mnt, 'filler'), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while os.write(fd, b'x' * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)

    def test_bug_store_larger_than_its_filesystem_sigbus(self):
        """A sparse store bigger than the tmpfs started, then every write
        that reached an unbacked page killed the worker (signal 7)."""
        args = ['--cache2', 'name=p,items=100,blocksize=65536,store=%s' % self.path,
                '--wsgi-file', app('ops_app.py')]
        line = refusal(self, *deploy_run(args))
        self.assertIn('cannot reserve', line)
        self.assertIn('No space left on device', line)
        # an empty file: once there is room, the next start creates it
        self.assertEqual(os.path.getsize(self.path), 0)

    def test_bug_full_filesystem_restart_sigbus(self):
        """A store that fits keeps every write working on a full
        filesystem, across a reload; an old sparse store fails the restart
        with ENOSPC in one line instead of the master's SIGBUS."""
        big = 'x' * 60000
        args = ['--cache2', 'name=p,items=12,blocksize=65536,store=%s' % self.path]
        with Uwsgi(*args, '--wsgi-file', app('ops_app.py'), deploy=True) as u:
            self.fill()
            sets = [['cache_update', 'k%d' % i, big, 0, 'p'] for i in range(11)]
            self.assertEqual(u.ops(*sets), [True] * 11)
            u.reload('sighup')
            self.assertEqual(u.ops(*sets), [True] * 11)
            self.assertEqual(u.op('cache_get', 'k10', 'p'), big.encode())
            self.assertNotIn('signal 7', u.log())
        os.unlink(os.path.join(self.mnt, 'filler'))
        subprocess.run(['fallocate', '--dig-holes', self.path], check=True)
        self.fill()
        line = refusal(self, *deploy_run(args + ['--wsgi-file', app('ops_app.py')]))
        self.assertIn('No space left on device', line)


if __name__ == '__main__':
    unittest.main()
