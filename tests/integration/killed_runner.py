"""killed_runner.py - the test runner test_harness.py kills (not a test
module of its own: `python3 -m unittest killed_runner`).

Its class fixture starts, through the harness, a uwsgi master with 2
workers (in the deployment mode where it can run: a master that drops to
--uid www-data, the case PR_SET_PDEATHSIG does not cover), a redis-server
and an nginx master with 2 workers; its one test prints every pid of them as
a JSON list on stdout, then waits to be killed.  A killed runner never gets
to tearDownClass: only the harness's reaper can stop them then.
"""
import contextlib
import json
import signal
import unittest

from harness import Nginx, Uwsgi, app, children, deploy_supported, poll
from test_redis import Redis

# Ctrl-C raises KeyboardInterrupt, even where this runner was started with
# SIGINT ignored (a background job of a non-interactive shell is)
signal.signal(signal.SIGINT, signal.default_int_handler)


class WaitToBeKilled(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = contextlib.ExitStack()
        cls.uwsgi = cls.stack.enter_context(
            Uwsgi('--master', '--processes', '2', '--wsgi-file', app('ops_app.py'),
                  deploy=deploy_supported() is None))
        cls.redis = cls.stack.enter_context(Redis())
        cls.nginx = cls.stack.enter_context(Nginx('return 204;', 'worker_processes 2;'))

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def test_wait(self):
        self.uwsgi.wait_master()
        nginx = self.nginx.proc.pid
        poll(lambda: len(children(nginx)) >= 2, what='the 2 nginx workers')
        pids = [self.uwsgi.proc.pid, self.redis.proc.pid, nginx]
        print(json.dumps(pids + children(self.uwsgi.proc.pid) + children(nginx)), flush=True)
        while True:
            signal.pause()
