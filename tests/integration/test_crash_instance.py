"""Whole-instance crashes with a store: writer threads drive updates, sets
and deletes through the workers while the test SIGKILLs the master and the
workers (all at once, master first, or workers first), restarts uwsgi on
the same store files and compares what it serves with what was written.

The model: every key belongs to one writer thread, which sends one batch
at a time, so for each key the test knows the last acknowledged state and
the ops still in flight when the instance died.  A write acknowledged
before the kill is in the shared file mapping and must survive it.  After a
restart, for every key:
  - no op in flight: it holds exactly its last acknowledged value (or is
    absent if that was a delete);
  - ops in flight: it holds its acknowledged value, the value of one of
    those ops, or nothing (the half-written item is dropped);
and every value served is valid for its key (never torn, never foreign),
the log reports "restored N items, dropped M" with M no larger than the
keys in flight, and the invariant check passes.

Then: a clean stop (SIGINT) + restart keeps everything and says "clean
shutdown, dropped 0"; a graceful reload (SIGHUP) keeps everything;
ucache-inspect agrees with the store file.

make test: 50 crash rounds (UCACHE_CRASH_ROUNDS overrides); make soak: 100.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from crash_support import (INSPECT, SOAK, Instance, app_args, assert_checked, assert_no_crash,
                           counts, crashvalues, http_post, poll)

ROUNDS = int(os.environ.get('UCACHE_CRASH_ROUNDS', 100 if SOAK else 50))
WRITERS = 3
KEYS = 120
CACHES = {'st': 'items=301,blocksize=64,blocks=2400,bitmap=1', 'sb': 'items=201,blocksize=512'}
VMAX = 512
ABSENT = None


class Model:
    """What every key must hold, as far as acknowledged writes tell."""

    def __init__(self):
        self.acked = {(c, 'k%d' % i): ABSENT for c in CACHES for i in range(KEYS)}
        self.inflight = {}          # writer -> list of ops not acknowledged
        self.seq = 0
        self.acks = 0

    def batch(self, rng, writer, round_no):
        ops = []
        for _ in range(rng.randint(1, 12)):
            cache = rng.choice(sorted(CACHES))
            key = 'k%d' % rng.randrange(writer, KEYS, WRITERS)
            r = rng.random()
            if r < 0.2:
                ops.append(['del', cache, key, None, 0])
                continue
            self.seq += 1
            v = crashvalues.make(key, 'r%d-%d' % (round_no, self.seq), rng.randint(40, VMAX))
            ops.append(['set' if r < 0.35 else 'update', cache, key, v.decode('latin-1'), 0])
        return ops

    def ack(self, ops, results):
        for (op, cache, key, value, _), res in zip(ops, results):
            if op == 'del':
                self.acked[cache, key] = ABSENT
            elif res:
                self.acked[cache, key] = value.encode('latin-1')
        self.acks += 1

    def allowed(self, cache, key):
        """(states the key may be in, whether an op on it was in flight)"""
        ok = [self.acked[cache, key]]
        pending = False
        for ops in self.inflight.values():
            for op, c, k, value, _ in ops:
                if (c, k) == (cache, key):
                    pending = True
                    ok.append(ABSENT if op == 'del' else value.encode('latin-1'))
        if pending:
            ok.append(ABSENT)
        return ok, pending

    def settle(self, served):
        """After a restart: served becomes the acknowledged state."""
        for ck in self.acked:
            self.acked[ck] = served.get(ck, ABSENT)
        self.inflight = {}


def writer(inst, model, n, rng, round_no, stop):
    """Send batches until the instance dies (or stop is set)."""
    while not stop.is_set():
        ops = model.batch(rng, n, round_no)
        model.inflight[n] = ops
        try:
            status, body = http_post(inst.port, '/write', json.dumps(ops), 10)
        except OSError:
            return
        if status != 200:
            return
        model.ack(ops, json.loads(body))
        model.inflight[n] = []


class Store:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='ucache-crash-')

    def path(self, cache):
        return os.path.join(self.dir, cache + '.store')

    def args(self):
        out = []
        for name, geo in sorted(CACHES.items()):
            out += ['--cache2', 'name=%s,%s,store=%s,store_sync=1' % (name, geo, self.path(name))]
        return out


def start(store, **kw):
    return Instance('--master', '--processes', '2', '--forkbomb-delay', '0', *store.args(),
                    *app_args(), workers=2, stats=True, **kw).__enter__()


def restored(log):
    """{cache: (restored, dropped, clean?)} from the last open of each store."""
    out = {}
    for m in re.finditer(r'cache "(\w+)": store \S+ restored (\d+) items, dropped (\d+) \((\w+) shutdown\)', log):
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)), m.group(4) == 'clean')
    return out


class InstanceCrash(unittest.TestCase):
    def setUp(self):
        self.store = Store()
        self.model = Model()
        self.rng = random.Random(int(os.environ.get('UCACHE_SEED', time.time())))

    def tearDown(self):
        shutil.rmtree(self.store.dir, ignore_errors=True)

    def served(self, inst):
        out = {}
        for cache in CACHES:
            for key, value in inst.dump(cache).items():
                self.assertTrue(crashvalues.valid(key, value),
                                'cache %s key %s: invalid value %r' % (cache, key, value and value[:100]))
                self.assertIn((cache, key), self.model.acked, 'foreign key %s in %s' % (key, cache))
                out[cache, key] = value
        return out

    def verify(self, inst, exact=False):
        """Compare the instance with the model; returns keys in flight."""
        served = self.served(inst)
        pending = 0
        for ck in sorted(self.model.acked):
            ok, inflight = self.model.allowed(*ck)
            pending += inflight
            got = served.get(ck, ABSENT)
            if exact or not inflight:
                self.assertEqual(got, self.model.acked[ck], '%s/%s lost an acknowledged write' % ck)
            else:
                self.assertIn(got, ok, '%s/%s holds a value that was never written' % ck)
        assert_checked(self, inst)
        self.model.settle(served)
        return pending

    def write_for(self, inst, seconds, round_no):
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(inst, self.model, n, random.Random(self.rng.random()),
                                                         round_no, stop), daemon=True)
                   for n in range(WRITERS)]
        for t in threads:
            t.start()
        poll(lambda: self.model.acks > 0, 10, what='a first acknowledged write')
        time.sleep(seconds)  # the write window: the load runs meanwhile
        return stop, threads

    def crash(self, inst, style):
        if style == 'all':
            inst.crash()
        elif style == 'master-first':
            os.kill(inst.proc.pid, signal.SIGKILL)
            time.sleep(self.rng.uniform(0, 0.02))  # workers keep writing meanwhile
            inst.crash()
        else:  # workers first, then the master (which may be respawning them)
            for pid in inst.workers():
                os.kill(pid, signal.SIGKILL)
            inst.crash()

    def test_sigkill_instance_during_writes(self):
        styles = {'all': 0, 'master-first': 0, 'workers-first': 0}
        dropped = pending_total = 0
        inst = start(self.store)
        try:
            for r in range(ROUNDS):
                stop, threads = self.write_for(inst, self.rng.uniform(0.03, 0.25), r)
                style = self.rng.choice(sorted(styles))
                styles[style] += 1
                self.crash(inst, style)
                stop.set()
                for t in threads:
                    t.join(15)
                inst.__exit__(None, None, None)
                inst = start(self.store)
                log = inst.log()
                assert_no_crash(self, log)
                rest = restored(log)
                self.assertEqual(sorted(rest), sorted(CACHES), log[-3000:])
                pending = self.verify(inst)
                for cache, (_, drop, clean) in rest.items():
                    self.assertFalse(clean, 'a SIGKILLed store reported a clean shutdown')
                    self.assertLessEqual(drop, pending, 'dropped items that were not being written')
                    dropped += drop
                pending_total += pending
        finally:
            inst.__exit__(None, None, None)
        counts('instance crash', rounds=ROUNDS, writes_acked=self.model.acks, keys_in_flight=pending_total,
               items_dropped=dropped, **styles)

    def test_clean_stop_and_graceful_reload_keep_everything(self):
        inst = start(self.store)
        try:
            stop, threads = self.write_for(inst, 0.3, 0)
            stop.set()
            for t in threads:
                t.join(15)
            self.assertEqual(self.model.inflight, {n: [] for n in range(WRITERS)})
            before = self.verify(inst, exact=True)
            self.assertEqual(before, 0)

            # graceful reload: the master closes the stores and re-execs
            log_len = len(inst.log())
            inst.proc.send_signal(signal.SIGHUP)
            poll(lambda: len(restored(inst.log()[log_len:])) == len(CACHES), 20, what='the reload')
            inst.wait_ready()
            poll(lambda: inst.log().count('spawned uWSGI worker') >= 4, 20, what='respawned workers')
            for cache, (_, drop, clean) in restored(inst.log()[log_len:]).items():
                self.assertTrue(clean, 'reload did not close %s cleanly' % cache)
                self.assertEqual(drop, 0)
            self.verify(inst, exact=True)

            # clean stop, then the store files as ucache-inspect sees them
            inst.stop_clean()
            assert_no_crash(self, inst.log())
            if os.path.exists(INSPECT):
                for cache in CACHES:
                    res = subprocess.run([INSPECT, '-k', self.store.path(cache)], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, timeout=30)
                    out = res.stdout.decode()
                    self.assertEqual(res.returncode, 0, out)
                    self.assertIn('last shutdown clean', out)
                    live = sum(1 for (c, _), v in self.model.acked.items() if c == cache and v is not None)
                    self.assertRegex(out, r'items:\s+%d of' % live)
            inst.__exit__(None, None, None)

            inst = start(self.store)
            for cache, (n, drop, clean) in restored(inst.log()).items():
                self.assertTrue(clean, inst.log()[-2000:])
                self.assertEqual(drop, 0)
            self.verify(inst, exact=True)
        finally:
            inst.__exit__(None, None, None)


if __name__ == '__main__':
    unittest.main()
