"""crash_support.py - what the crash, fault and regression tests share on top
of harness.py: instances with a watchdog sized to the test, a stop that
cannot lose its SIGINT, worker pids, a background load with latency
records, and the check RPC.

UCACHE_SOAK=1 (make soak) asks the tests for their long versions; each test
prints its counts on stderr ("[counts] ...").
"""
import http.client
import json
import os
import random
import signal
import sys
import threading
import time

import harness
from harness import Uwsgi, app, poll

sys.path.insert(0, harness.APPS)
import crashvalues  # noqa: E402,F401  (re-exported for the tests)

SOAK = os.environ.get('UCACHE_SOAK') == '1'
ROOT = harness.ROOT
INSPECT = os.environ.get('UCACHE_INSPECT', os.path.join(ROOT, 'build', 'ucache-inspect'))


def counts(what, **kv):
    """Print a test's counts where make test / make soak shows them."""
    sys.stderr.write('\n[counts] %s: %s\n' % (what, ', '.join('%s=%s' % i for i in kv.items())))
    sys.stderr.flush()


# --------------------------------------------------------------- processes

proc_status, children, catches = harness.proc_status, harness.children, harness.catches


class Instance(Uwsgi):
    """harness.Uwsgi with a watchdog of `watchdog` seconds, worker pids and a
    clean stop that waits for the master's handlers."""

    def __init__(self, *args, watchdog=60.0, workers=1, stats=False, **kw):
        self.stats_port = harness.free_port() if stats else None
        if stats:
            args = args + ('--stats', '127.0.0.1:%d' % self.stats_port)
        super().__init__(*args, **kw)
        self.watchdog_s = watchdog
        self.nworkers = workers
        self.master = '--master' in args

    def start(self):
        super().start()
        self.watchdog.cancel()
        self.watchdog = threading.Timer(self.watchdog_s, self.kill)
        self.watchdog.daemon = True
        self.watchdog.start()
        return self

    def wait_ready(self):
        super().wait_ready()
        if self.master:
            poll(lambda: len(self.workers()) >= self.nworkers and catches(self.proc.pid, signal.SIGINT, signal.SIGHUP),
                 harness.READY_TIMEOUT, what='the master to finish starting')

    def workers(self):
        return children(self.proc.pid)

    def stats(self):
        """The stats server's JSON (needs stats=True).  Reading it also wakes
        the master's loop, which reaps and respawns dead workers there and
        then instead of at its next 1 s tick."""
        return harness.stats_json(self.stats_port)

    def wait_respawned(self, gone=(), timeout=10.0):
        """Poll (waking the master through its stats server) until all the
        workers are alive again and none of `gone` is among them."""
        def full():
            pids = self.workers()
            if len(pids) >= self.nworkers and not set(pids) & set(gone):
                return pids
            self.stats()
            return None
        return poll(full, timeout, what='the workers to be respawned')

    def stop_clean(self, timeout=20.0):
        """SIGINT (the master's clean shutdown) until it exits; returns its log."""
        poll(lambda: not self.alive() or catches(self.proc.pid, signal.SIGINT), 10, what='SIGINT handler')
        deadline = time.monotonic() + timeout
        while self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(0.5)
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise AssertionError('uwsgi did not stop on SIGINT:\n' + self.log()[-3000:])
        return self.log()

    def crash(self):
        """SIGKILL the whole instance (master and workers) at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def check(self):
        """The check RPC through a worker: {cache: 'ok N' or 'FAIL ...'}."""
        text = self.get('/check').decode()
        out = {}
        for line in text.splitlines():
            word, name, rest = (line.split(' ', 2) + ['', ''])[:3]
            out[name.rstrip(':')] = '%s %s' % (word, rest)
        return out

    def post(self, path, obj, timeout=15):
        status, _, body = self.request(path, 'POST', json.dumps(obj), timeout=timeout)
        if status != 200:
            raise AssertionError('%s -> %d %r\n%s' % (path, status, body, self.log()[-3000:]))
        return json.loads(body)

    def dump(self, cache):
        return {k: (None if v is None else v.encode('latin-1'))
                for k, v in json.loads(self.get('/dump?cache=' + cache)).items()}


def app_args(*extra):
    rpc = [] if harness.STOCK else ['--ucache-check-rpc']
    return rpc + ['--wsgi-file', app('crash_app.py')] + list(extra)


def assert_checked(test, inst):
    """The engine's invariant check, through the ucache_check RPC (nothing
    to check on the stock cache, UCACHE_TEST_STOCK=1)."""
    if harness.STOCK:
        return
    res = inst.check()
    test.assertTrue(res, 'empty check reply')
    for name, verdict in res.items():
        test.assertTrue(verdict.startswith('ok'), 'cache %s: %s\n%s' % (name, verdict, inst.log()[-3000:]))


def http_post(port, path, body, timeout):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('POST', path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -------------------------------------------------------------------- load

class Load:
    """Client threads posting /churn to an instance without pause.

    Every finished request is recorded as (start, end); requests cut by a
    killed worker (reset, empty reply) are counted, a request that takes
    longer than `timeout` is a failure.  progress_after(t) waits for a
    request that started after t to complete and returns how long after t
    it did."""

    def __init__(self, inst, caches, threads=4, ops=200, timeout=10.0):
        self.inst, self.caches, self.ops, self.timeout = inst, caches, ops, timeout
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.stopping = False
        self.done = []          # (start, end) of successful requests
        self.cut = 0            # requests that died with their worker
        self.slow = []          # requests over timeout
        self.bad = []           # invalid reads reported by the app
        self.ops_count = {}

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        for t in self.threads:
            t.join(self.timeout + 5)

    def _run(self, n):
        rng = random.Random(n)
        while not self.stopping:
            body = json.dumps({'n': self.ops, 'seed': rng.getrandbits(32), 'caches': self.caches})
            start = time.monotonic()
            try:
                status, reply = http_post(self.inst.port, '/churn', body, self.timeout)
            except (ConnectionError, http.client.HTTPException):
                with self.lock:
                    self.cut += 1
                continue
            except OSError as e:  # socket.timeout included
                with self.lock:
                    self.slow.append(repr(e))
                continue
            end = time.monotonic()
            if status != 200:
                with self.lock:
                    self.cut += 1
                continue
            res = json.loads(reply)
            with self.cond:
                self.done.append((start, end))
                self.bad.extend(res['bad'])
                for k, v in res['ops'].items():
                    self.ops_count[k] = self.ops_count.get(k, 0) + v
                self.cond.notify_all()

    def progress_after(self, t0, timeout=5.0):
        """Seconds from t0 to the end of the first request started after t0."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                ends = [end for start, end in self.done if start >= t0]
                if ends:
                    return min(ends) - t0
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


# ----------------------------------------------------------------- tools

def repairs(log):
    """Lock recoveries the engine logged (a process died holding a lock)."""
    return log.count('died holding a lock; repaired')


def assert_no_crash(test, log):
    for bad in ('Segmentation Fault', 'got Bus Error', 'FAILED', 'Floating Point Exception',
                'DANGER: unable'):
        test.assertNotIn(bad, log, log[-4000:])
