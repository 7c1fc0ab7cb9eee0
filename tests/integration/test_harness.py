"""The harness itself: nothing it starts outlives a killed test runner, and
no two of its free ports are the same.

killed_runner.py is that runner (a uwsgi master + 2 workers, a redis-server,
an nginx master + 2 workers, started in a class fixture); each test kills it
with one signal and checks that every one of those pids is gone.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import socket

from harness import HERE, NGINX, free_port, need, poll
from test_redis import REDIS

STARTED_TIMEOUT = 60.0     # a deploy-mode uwsgi, redis and nginx on a loaded host
GONE_TIMEOUT = 10.0        # the reaper SIGKILLs within milliseconds of the runner's death


def start_time(pid):
    """(state, start time in clock ticks) of pid, None once it is gone; the
    start time tells pid from a later process given the same pid."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rpartition(')')[2].split()
    except OSError:
        return None
    return fields[0], int(fields[19])


def running(pid, started):
    """pid is still the process that had start time started, not a zombie."""
    now = start_time(pid)
    return now is not None and now[0] not in 'ZX' and now[1] == started


@need(REDIS)
@need(NGINX)
class KilledRunner(unittest.TestCase):
    def start_runner(self):
        """killed_runner.py started, and {pid: start time} of all it started."""
        # its temporary folders (workdirs, the deployment copies) in one
        # the deployment user can traverse, removed here: a killed runner
        # cannot remove them
        tmp = tempfile.mkdtemp(prefix='ucache-killed-runner-')
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        runner = subprocess.Popen([sys.executable, '-m', 'unittest', 'killed_runner'], cwd=HERE,
                                  stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                  env=dict(os.environ, TMPDIR=tmp), start_new_session=True)
        self.addCleanup(runner.stdout.close)
        self.addCleanup(self.kill_runner, runner)

        def runner_log():
            log.seek(0)
            return log.read().decode('utf-8', 'replace')
        if not select.select([runner.stdout], [], [], STARTED_TIMEOUT)[0]:
            self.fail('killed_runner.py printed no pids in %d s:\n%s' % (STARTED_TIMEOUT, runner_log()))
        line = runner.stdout.readline()
        if not line:
            self.fail('killed_runner.py exited (%s):\n%s' % (runner.wait(10), runner_log()))
        started = {pid: start_time(pid)[1] for pid in json.loads(line)}
        self.addCleanup(self.kill_left, started)
        self.assertEqual(len(started), 7, started)   # 3 + 2 uwsgi workers + 2 nginx workers
        return runner, started

    def kill_runner(self, runner):
        if runner.poll() is None:
            runner.kill()
            runner.wait()

    def kill_left(self, started):
        """What a failed test left (the bug itself): SIGKILLed, by pid."""
        for pid, t in started.items():
            if running(pid, t):
                os.kill(pid, signal.SIGKILL)

    def assert_all_gone(self, sig):
        runner, started = self.start_runner()
        os.kill(runner.pid, sig)
        self.assertEqual(runner.wait(30), -sig)   # the signal's own death, not swallowed
        left = lambda: [pid for pid, t in started.items() if running(pid, t)]
        try:
            poll(lambda: not left(), GONE_TIMEOUT, what='the processes to go')
        except AssertionError:
            self.fail('%s to the runner left %s running %.0f s later' % (
                signal.Signals(sig).name, left(), GONE_TIMEOUT))

    def test_bug_killed_runner_leaves_orphans(self):
        """SIGTERM, as `timeout` and CI watchdogs send it: a crash_app.py
        uwsgi stayed alive for hours after one."""
        self.assert_all_gone(signal.SIGTERM)

    def test_bug_killed_runner_leaves_orphans_sigint(self):
        """Ctrl-C: KeyboardInterrupt skips tearDownClass."""
        self.assert_all_gone(signal.SIGINT)

    def test_bug_killed_runner_leaves_orphans_sigkill(self):
        """SIGKILL: nothing in the runner runs at all."""
        self.assert_all_gone(signal.SIGKILL)


class FreePorts(unittest.TestCase):
    def test_bug_free_port_handed_out_twice(self):
        """One near-cache instance got the same port for --stats and its
        uwsgi socket ("bind(): Address already in use", CI): the kernel
        hands a port to bind(0) calls made one after the other often
        enough.  3000 TCP and 3000 UDP ports, each different."""
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            ports = [free_port(kind) for _ in range(3000)]
            self.assertEqual(len(set(ports)), len(ports), kind)


if __name__ == '__main__':
    unittest.main()
