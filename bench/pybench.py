"""bench/pybench.py - the Python-level cache benchmark (stdlib only).

Run by bench/run.py in two ways, with the same workload code:

  uwsgi --plugin python3 [--plugin ./ucache_plugin.so] --cache2 ... \\
        --pyrun bench/pybench.py --pyargv "--backend uwsgi --out F ..."
      uwsgi.cache_get / cache_update / cache_set on the default cache
      (stock, or ucache when its plugin is loaded);

  /usr/bin/python3 bench/pybench.py --backend memcached|redis --socket PATH ...
      the same loops through python3-pymemcache / python3-redis over a unix
      socket, for context.

Cells (--cells workload:procs,...): get_hit, get_miss, update (overwrite a
prefilled key), mixed (95% get_hit / 5% update).  Keys are exactly --klen
bytes ("k" + zero-padded index for prefilled keys, "m" + index for misses),
values --vlen bytes.  Each process walks its own precomputed random order of
keys; processes are forked after the fill, pinned one per CPU, started
together, and each runs for --duration seconds, checking the clock every
CHUNK ops.  ops/s of a cell = sum over its processes of ops / own elapsed.
The result is one JSON object written to --out (via a .tmp + rename).
"""
import argparse
import json
import os
import random
import sys
import time

CHUNK = 1000
ORDER = 64 * CHUNK


def make_key(prefix, i, klen):
    return prefix + str(i).zfill(klen - 1)


class UwsgiBackend:
    def __init__(self, args):
        import uwsgi  # only importable under uwsgi
        self.u = uwsgi

    def connect(self):
        return self.u.cache_get, self.u.cache_update

    def fill(self, keys, val):
        bad = 0
        for k in keys:
            if not self.u.cache_set(k, val):
                bad += 1
        return bad


class MemcachedBackend:
    def __init__(self, args):
        self.path = args.socket

    def client(self):
        from pymemcache.client.base import Client
        return Client(self.path, default_noreply=False)

    def connect(self):
        c = self.client()
        return c.get, c.set

    def fill(self, keys, val):
        c = self.client()
        bad = 0
        for i in range(0, len(keys), 1000):
            bad += len(c.set_many({k: val for k in keys[i:i + 1000]}, noreply=False))
        return bad


class RedisBackend:
    def __init__(self, args):
        self.path = args.socket

    def client(self):
        import redis
        return redis.Redis(unix_socket_path=self.path)

    def connect(self):
        c = self.client()
        return c.get, c.set

    def fill(self, keys, val):
        c = self.client()
        for i in range(0, len(keys), 1000):
            c.mset({k: val for k in keys[i:i + 1000]})
        return 0


BACKENDS = {'uwsgi': UwsgiBackend, 'memcached': MemcachedBackend, 'redis': RedisBackend}


def run_loop(workload, get, upd, chunks, val, deadline):
    """Ops and errors of one process until deadline (checked every CHUNK)."""
    ops = errs = 0
    now = time.perf_counter
    while True:
        for chunk in chunks:
            if workload == 'get_hit':
                for k in chunk:
                    if get(k) is None:
                        errs += 1
            elif workload == 'get_miss':
                for k in chunk:
                    if get(k) is not None:
                        errs += 1
            elif workload == 'update':
                for k in chunk:
                    if not upd(k, val):
                        errs += 1
            else:  # mixed: 1 update then 19 gets, 50 times per chunk
                for j in range(0, CHUNK, 20):
                    if not upd(chunk[j], val):
                        errs += 1
                    for k in chunk[j + 1:j + 20]:
                        if get(k) is None:
                            errs += 1
            ops += len(chunk)
            if now() >= deadline:
                return ops, errs


def child(idx, backend, workload, keys, val, duration, ready_w, go_r, res_w):
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[idx % len(cpus)]})
    get, upd = backend.connect()
    rng = random.Random(1000 + idx)
    order = [keys[rng.randrange(len(keys))] for _ in range(ORDER)]
    chunks = [order[i:i + CHUNK] for i in range(0, ORDER, CHUNK)]
    os.write(ready_w, b'r')
    os.read(go_r, 1)
    t0 = time.perf_counter()
    ops, errs = run_loop(workload, get, upd, chunks, val, t0 + duration)
    dt = time.perf_counter() - t0
    os.write(res_w, (json.dumps({'ops': ops, 'errors': errs, 's': dt}) + '\n').encode())


def run_cell(backend, workload, procs, hit, miss, val, duration):
    keys = miss if workload == 'get_miss' else hit
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pids = []
    for i in range(procs):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child(i, backend, workload, keys, val, duration, ready_w, go_r, res_w)
            except BaseException as e:  # report, never return into the parent's code
                sys.stderr.write('pybench child: %r\n' % (e,))
                code = 1
            os._exit(code)
        pids.append(pid)
    for _ in range(procs):
        os.read(ready_r, 1)
    os.write(go_w, b'g' * procs)
    failed = 0
    for pid in pids:
        failed |= os.waitpid(pid, 0)[1] != 0
    os.close(res_w)
    data = b''
    while True:
        part = os.read(res_r, 65536)
        if not part:
            break
        data += part
    lines = data.decode().splitlines()
    for fd in (ready_r, ready_w, go_r, go_w, res_r):
        os.close(fd)
    per = [json.loads(x) for x in lines]
    return {'workload': workload, 'procs': procs, 'failed': int(failed or len(per) != procs),
            'per_proc_ops_s': [p['ops'] / p['s'] for p in per],
            'ops_s': sum(p['ops'] / p['s'] for p in per),
            'errors': sum(p['errors'] for p in per)}


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument('--backend', choices=sorted(BACKENDS), required=True)
    ap.add_argument('--socket', help='memcached / redis unix socket')
    ap.add_argument('--out', required=True)
    ap.add_argument('--cells', default='get_hit:1,get_hit:2,get_miss:1,update:1,mixed:1')
    ap.add_argument('--duration', type=float, default=1.0)
    ap.add_argument('--fill', type=int, default=100000)
    ap.add_argument('--klen', type=int, default=16)
    ap.add_argument('--vlen', type=int, default=100)
    args = ap.parse_args(argv)

    backend = BACKENDS[args.backend](args)
    hit = [make_key('k', i, args.klen) for i in range(args.fill)]
    miss = [make_key('m', i, args.klen) for i in range(args.fill)]
    val = bytes((97 + i % 26) for i in range(args.vlen))
    t0 = time.perf_counter()
    fill_errors = backend.fill(hit, val)
    fill_s = time.perf_counter() - t0
    runs = []
    for cell in args.cells.split(','):
        workload, procs = cell.split(':')
        runs.append(run_cell(backend, workload, int(procs), hit, miss, val, args.duration))
    out = {'mode': 'python', 'backend': args.backend, 'python': sys.version.split()[0],
           'fill': args.fill, 'fill_errors': fill_errors, 'fill_s': fill_s,
           'klen': args.klen, 'vlen': args.vlen, 'duration': args.duration, 'runs': runs}
    with open(args.out + '.tmp', 'w') as f:
        json.dump(out, f)
    os.rename(args.out + '.tmp', args.out)


if __name__ == '__main__':
    main(sys.argv[1:])
