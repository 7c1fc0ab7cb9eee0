#!/usr/bin/env python3
"""bench/run.py - `make bench`: ucache against the stock uWSGI cache, side by side.

Every figure is a ratio measured in this run, on the same uwsgi binary, with
the same command line except for `--plugin ./ucache_plugin.so`:

  capi    C API ops/s (build/bench/ucbench_plugin.so calling the exported
          uwsgi_cache_magic_* functions in N forked processes)
  python  the same through uwsgi.cache_get / cache_update under --pyrun
  peers   memcached and Redis over unix sockets from Python (context)
  mem     resident shared memory per item and mapped (virtual) bytes of the
          cache: 10k to 1M items, blocksize 128 / 65536, keysize 64, bitmap
  sweep   get latency in a worker while the master's sweeper expires 10%
          of 1M items
  instr   callgrind instructions per get / update; cache lines missed per
          full-cache insert (callgrind's cache simulation)
  engine  bench/engine --quick (libucache alone against a private table)
  hitratio  eviction quality: a purge_lru cache's hit ratio on a Zipf trace
          and on the same trace with scans, against an exact LRU and
          simulated CLOCK, SIEVE, S3-FIFO and per-stripe SIEVE
          (bench/hitratio.c, built here against build/libucache.a, its
          --selftest first) and the stock cache's purge_lru (--ucbench
          hitratio)
  php     PHP under uwsgi: apcu_fetch against uwsgi_cache_get, stock and
          ucache, 1 and 2 worker processes
  pyhelper  the Python package's cost over uwsgi.cache_get (Cache.get,
          get_or_set on a hit) and Django's cache.get on UcacheCache
          against PyMemcacheCache and django-redis (bench/pyhelper.py)
  http    one cached 8 KiB page through nginx: the ucache module
          (ngx_http_ucache_module, where built), ucache direct hit, nginx
          uwsgi_cache, the Accelerator's Python hit, uncached, lua_shared_dict;
          the module hit's p99 during tag invalidations; invalidating a tag
          of 100k entries (bench/http_bench.py)

A full run (~7 min on 2 CPUs) writes bench/results/latest.json,
bench/results/<date>.json, bench/results/chart.png and BENCHMARKS.md
(through bench/report.py); --quick (a smoke run, ~1.5 min) and --only
capi,mem,... runs write bench/results/scratch.json only.  Other options:
--reps N, --duration S, --keep (logs and callgrind files).  Exit status 1
if a section failed (the others are still reported).  Only the python3 standard library is used; every process is
started in its own session under /tmp/ucbench-*/ and stopped by its PID.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'bench'))
import report  # noqa: E402  (bench/report.py)
import http_bench  # noqa: E402  (bench/http_bench.py: the 'http' section)

UWSGI = os.environ.get('UWSGI', 'uwsgi')
PYTHON3 = os.environ.get('PYTHON3', '/usr/bin/python3')
UCACHE_SO = './ucache_plugin.so'
UCBENCH_SO = 'build/bench/ucbench_plugin.so'
ENGINE = 'build/bench/engine'
HITRATIO = 'build/bench/hitratio'
RESULTS = os.path.join(ROOT, 'bench', 'results')
IMPLS = ('stock', 'ucache')
SECTIONS = ('capi', 'python', 'peers', 'mem', 'sweep', 'instr', 'engine', 'hitratio', 'php', 'redis',
            'pyhelper', 'http')

# C API groups: one uwsgi run per (group, implementation, rep) prefills the
# cache once and measures each workload x process count in turn.
CAPI_GROUPS = [
    # group, --cache2, ucbench options, workloads
    ('default', 'name=bench,items=131072',
     ['--ucbench-fill', '100000', '--ucbench-klen', '16', '--ucbench-vlen', '100'],
     ['get_hit', 'get_miss', 'update', 'mixed']),
    ('lru', 'name=bench,items=65537,purge_lru=1,ignore_full=1',
     ['--ucbench-fill', '65536', '--ucbench-klen', '16', '--ucbench-vlen', '100'],
     ['lru']),
    ('v64k', 'name=bench,items=1025',
     ['--ucbench-fill', '1000', '--ucbench-klen', '16', '--ucbench-vlen', '65536'],
     ['get_hit', 'update']),
    ('bitmap', 'name=bench,items=131072,blocksize=128,blocks=1048576,bitmap=1',
     ['--ucbench-fill', '100000', '--ucbench-klen', '16', '--ucbench-vlen', '100',
      '--ucbench-vlen-max', '1000'],
     ['get_hit', 'update']),
    ('bs128', 'name=bench,items=131072,blocksize=128',
     ['--ucbench-fill', '100000', '--ucbench-klen', '16', '--ucbench-vlen', '100'],
     ['get_hit']),
]
PY_CACHE = 'name=bench,items=131072'
PY_CELLS = 'get_hit:1,get_hit:2,get_miss:1,update:1,mixed:1'
# Memory rows: name, items stored, blocksize, more --cache2 keys ({items}:
# the cache's items), also in --quick.  The cache has items stored + 1 items
# (usable items = items - 1); 12-byte keys, 100-byte values.
MEM_CASES = [
    ('100k_bs128', 100000, 128, '', True),
    ('100k_bs65536', 100000, 65536, '', True),
    ('1m_bs128', 1000000, 128, '', False),
    ('1m_bs128_ks64', 1000000, 128, 'keysize=64', False),
    ('100k_bitmap', 100000, 128, 'blocks={items},bitmap=1', True),
    ('10k_bs65536', 10000, 65536, '', True),
]
MEM_HASHSIZE = 65536  # the stock default: its hashtable maps hashsize * 8 bytes
SWEEP_ITEMS = 1000000
INSTR_CACHE = 'name=bench,items=131072'
INSTR_OPTS = ['--ucbench-fill', '100000', '--ucbench-klen', '16', '--ucbench-vlen', '100']
# name, --cache2, ucbench options, workload, ops (the loop's own cost, the
# "noop" workload on the default cache, is subtracted from every case)
INSTR_CASES = [
    ('noop', INSTR_CACHE, INSTR_OPTS, 'noop', 100000),
    ('get_hit', INSTR_CACHE, INSTR_OPTS, 'get_hit', 100000),
    ('get_miss', INSTR_CACHE, INSTR_OPTS, 'get_miss', 100000),
    ('update', INSTR_CACHE, INSTR_OPTS, 'update', 100000),
    ('lru', 'name=bench,items=65537,purge_lru=1,ignore_full=1',
     ['--ucbench-fill', '65536', '--ucbench-klen', '16', '--ucbench-vlen', '100'], 'lru', 20000),
    ('update_64k', 'name=bench,items=1025',
     ['--ucbench-fill', '1000', '--ucbench-klen', '16', '--ucbench-vlen', '65536'], 'update', 2000),
]
# Cases also run through callgrind's cache simulation (D1 and LL misses per
# op: the cache lines an op touches that were not in cache), with a fixed
# geometry so that the counts do not depend on the host's caches: 32 KiB
# 8-way L1s and an 8 MiB 16-way last level, 64-byte lines.  The LRU case's
# working set (65,537 slots, chunks, buckets, links) is ~12 MiB, so each
# insert meets cold lines as on real hardware.  Prefetches are not counted.
INSTR_CACHE_SIM = ('lru',)
CACHE_SIM_OPTS = ['--cache-sim=yes', '--I1=32768,8,64', '--D1=32768,8,64', '--LL=8388608,16,64']
CACHE_SIM_EVENTS = ('D1mr', 'D1mw', 'DLmr', 'DLmw')

class BenchError(Exception):
    pass


def sh(cmd):
    """First line of a command's output, or '?'."""
    try:
        out = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=30)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else '?'
    except (OSError, subprocess.SubprocessError):
        return '?'


def cpu_busy(seconds=1.0):
    """Share of all CPUs busy (and stolen by the hypervisor) over `seconds`:
    the load other processes put on the machine before we start."""
    def snap():
        with open('/proc/stat') as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        steal = v[7] if len(v) > 7 else 0
        return sum(v[:8]), idle, steal
    t0, i0, s0 = snap()
    time.sleep(seconds)
    t1, i1, s1 = snap()
    dt = max(t1 - t0, 1)
    return round(1 - (i1 - i0) / dt, 3), round((s1 - s0) / dt, 3)


def machine_info_git():
    """HEAD, and whether the sources the plugins are built from differ from
    it (they are built from the work tree)."""
    dirty = sh('git status --porcelain --untracked-files=no -- core include plugins '
               'uwsgiplugin.py bench/capi bench/hitratio.c bench/trace.h bench/bench_util.h | head -1') not in ('', '?')
    return sh('git rev-parse --short HEAD') + (' (with uncommitted source changes)' if dirty else '')


def machine_info():
    cpu = '?'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    with open('/proc/meminfo') as f:
        mem_kb = int(f.readline().split()[1])
    return {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'nproc': os.cpu_count(), 'cpu': cpu, 'mem_gib': round(mem_kb / 1048576, 1),
        'kernel': platform.release(), 'machine': platform.machine(),
        'uwsgi': sh(UWSGI + ' --version'),
        'uwsgi_binary': sh('readlink -f "$(command -v %s)"' % UWSGI),
        'python': sh(PYTHON3 + ' --version'), 'memcached': sh('memcached -V'),
        'redis': sh('redis-server --version'), 'valgrind': sh('valgrind --version'),
        'cc': sh('cc --version'),
        'git': machine_info_git(),
        'loadavg_start': open('/proc/loadavg').read().split()[:3],
        'cpu_busy_before': cpu_busy()[0], 'cpu_steal_before': cpu_busy(0.5)[1],
    }


class Runner:
    """Starts one process at a time, in its own session, under a watchdog."""

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix='ucbench-', dir='/tmp')
        self.commands = {}
        self.n = 0

    def show(self, cmd):
        return ' '.join(a if re.match(r'^[\w@%+=:,./-]+$', a) else "'%s'" % a for a in cmd) \
            .replace(self.tmp, '$TMP')

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, cmd, label, timeout, impl=None, stop_on=None, env=None):
        """Run cmd from the repository root; return its log text.  With
        stop_on, the process is stopped (SIGINT, then SIGKILL) as soon as that
        file exists.  Raises BenchError on timeout or a non-zero exit."""
        self.n += 1
        self.commands.setdefault(label, self.show(cmd))
        logpath = self.path('%03d-%s.log' % (self.n, re.sub(r'\W+', '_', label)))
        with open(logpath, 'w') as log:
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, env=env)
            rc = self.watch(p, timeout, stop_on)
        text = open(logpath, errors='replace').read()
        if rc is None:
            raise BenchError('%s: timed out after %ss; log %s' % (label, timeout, logpath))
        if rc != 0 and not stop_on:
            raise BenchError('%s: exit status %s; log %s:\n%s' % (label, rc, logpath, text[-1500:]))
        if impl:
            self.check_impl(impl, text, label, logpath)
        return text

    @staticmethod
    def exited(p):
        """Has p exited?  Leaves it unreaped (WNOWAIT): while the session
        leader is a zombie its id cannot be reused, so killing its process
        group can only reach processes this run started."""
        return os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def watch(self, p, timeout, stop_on):
        """Exit status of p, or None if it ran past timeout (then killed)."""
        deadline = time.time() + timeout
        timed_out = False
        while not self.exited(p):
            if time.time() > deadline:
                timed_out = True
                break
            if stop_on and os.path.exists(stop_on):
                os.kill(p.pid, signal.SIGINT)  # uwsgi master: graceful stop
                stop_by = time.time() + 15
                while not self.exited(p) and time.time() < stop_by:
                    time.sleep(0.05)
                break
            time.sleep(0.02)
        try:  # the session's leftovers (forked children, workers), then p
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = p.wait()
        return None if timed_out else rc

    @staticmethod
    def check_impl(impl, text, label, logpath):
        took_over = re.search(r'ucache: \d+ cache entry points redirected', text) is not None
        if took_over != (impl == 'ucache'):
            raise BenchError('%s: expected the %s cache, the log says otherwise (%s)'
                             % (label, impl, logpath))

    def json_of(self, path, label, impl=None):
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            raise BenchError('%s: no result (%s)' % (label, e))
        if impl and 'redirected' in d and d['redirected'] != (impl == 'ucache'):
            raise BenchError('%s: uwsgi_cache_magic_get redirected=%s on %s'
                             % (label, d['redirected'], impl))
        os.unlink(path)
        return d

    def uwsgi(self, impl, args, plugins=('ucbench',)):
        cmd = [UWSGI]
        if 'python3' in plugins:
            cmd += ['--plugin', 'python3']
        if 'php' in plugins:
            cmd += ['--plugin', 'php']
        if impl == 'ucache':
            cmd += ['--plugin', UCACHE_SO]
        if 'ucbench' in plugins:
            cmd += ['--plugin', UCBENCH_SO]
        return cmd + list(args)


def ratio(a, b):
    return a / b if a and b else None


def best(samples):
    good = [s for s in samples if s]
    return max(good) if good else None


def median(samples):
    good = sorted(s for s in samples if s)
    if not good:
        return None
    n = len(good)
    return good[n // 2] if n % 2 else (good[n // 2 - 1] + good[n // 2]) / 2


def paired(a, b):
    """Median over reps of a[i] / b[i]: each rep measures both sides back to
    back, so a burst of load on the machine hits both halves of a pair."""
    return median([x / y for x, y in zip(a, b) if x and y])


def procs_list():
    n = os.cpu_count() or 1
    return [1, 2] + ([n] if n > 2 else [])


# ---------------------------------------------------------------- capi

def bench_capi(r, a):
    procs = ','.join(str(p) for p in procs_list())
    samples = {}  # (group, workload, procs, impl) -> [ops/s]
    cpu = {}      # the same -> [ops per CPU-second]
    shares = []   # CPU share each benchmark process got (1.0 = a whole CPU)
    errors = {}
    for rep in range(a.capi_reps):
        for group, cache2, opts, wls in CAPI_GROUPS:
            for impl in (IMPLS if rep % 2 == 0 else IMPLS[::-1]):
                out = r.path('capi.json')
                label = 'capi %s %s' % (group, impl)
                args = ['--cache2', cache2, '--ucbench', 'capi', '--ucbench-workload', ','.join(wls),
                        '--ucbench-procs', procs, '--ucbench-duration', str(a.duration),
                        '--ucbench-out', out] + opts
                r.run(r.uwsgi(impl, args), label, 120 + 4 * len(wls) * a.duration, impl=impl)
                d = r.json_of(out, label, impl)
                if d['fill_errors']:
                    raise BenchError('%s: %d prefill sets refused' % (label, d['fill_errors']))
                for run in d['runs']:
                    key = (group, run['workload'], run['procs'], impl)
                    ok = not run['failed'] and not run['errors']
                    samples.setdefault(key, []).append(run['ops_s'] if ok else None)
                    cpu.setdefault(key, []).append(run['ops_per_cpu_s'] if ok else None)
                    shares += run['per_proc_cpu_share']
                    if run['errors'] or run['failed']:
                        errors['%s/%s/%dp/%s' % key] = '%d errors, failed=%d' % (run['errors'], run['failed'])
        print('  capi rep %d/%d done' % (rep + 1, a.capi_reps), flush=True)
    cells = []
    for group, cache2, opts, wls in CAPI_GROUPS:
        for wl in wls:
            for p in procs_list():
                s, u = (samples.get((group, wl, p, i), []) for i in IMPLS)
                sc, uc = (cpu.get((group, wl, p, i), []) for i in IMPLS)
                cells.append({'group': group, 'workload': wl, 'procs': p, 'cache2': cache2,
                              'stock_ops_s': best(s), 'ucache_ops_s': best(u),
                              'ratio': paired(u, s), 'ratio_best': ratio(best(u), best(s)),
                              'stock_ops_per_cpu_s': best(sc), 'ucache_ops_per_cpu_s': best(uc),
                              'ratio_cpu': paired(uc, sc),
                              'stock_samples': s, 'ucache_samples': u,
                              'stock_cpu_samples': sc, 'ucache_cpu_samples': uc})
    return {'cells': cells, 'errors': errors, 'procs': procs_list(), 'reps': a.capi_reps,
            'duration': a.duration, 'cpu_share_mean': sum(shares) / len(shares) if shares else None,
            'cpu_share_min': min(shares) if shares else None}


def capi_flat(c):
    def cell(group, wl, p):
        for x in c['cells']:
            if (x['group'], x['workload'], x['procs']) == (group, wl, p):
                return x
        return {}
    flat = {}
    for x in c['cells']:
        name = x['workload'] if x['group'] == 'default' else '%s_%s' % (x['group'], x['workload'])
        flat['capi_%s_%dp_ratio' % (name, x['procs'])] = x['ratio']
    g1, g2 = cell('default', 'get_hit', 1), cell('default', 'get_hit', 2)
    flat.update({
        'capi_get_1p_ratio': g1.get('ratio'),
        'capi_get_2p_ratio': g2.get('ratio'),
        'capi_get_1p_ops_s_stock': g1.get('stock_ops_s'),
        'capi_get_1p_ops_s_ucache': g1.get('ucache_ops_s'),
        # 1 and 2 processes run in the same uwsgi invocation: paired by rep
        'capi_get_scaling_2p_over_1p': paired(g2.get('ucache_samples', []), g1.get('ucache_samples', [])),
        'capi_get_scaling_2p_over_1p_stock': paired(g2.get('stock_samples', []), g1.get('stock_samples', [])),
        'capi_get_scaling_2p_over_1p_cpu': paired(g2.get('ucache_cpu_samples', []),
                                                  g1.get('ucache_cpu_samples', [])),
        'capi_get_1p_ratio_cpu': g1.get('ratio_cpu'),
        'capi_get_2p_ratio_cpu': g2.get('ratio_cpu'),
        'capi_cpu_share_mean': c.get('cpu_share_mean'),
        'capi_update_1p_ratio': cell('default', 'update', 1).get('ratio'),
        'capi_mixed_1p_ratio': cell('default', 'mixed', 1).get('ratio'),
        'capi_lru_churn_ratio': cell('lru', 'lru', 1).get('ratio'),
    })
    return flat


# -------------------------------------------------------------- python

def bench_python(r, a):
    samples = {}
    for rep in range(a.reps):
        for impl in (IMPLS if rep % 2 == 0 else IMPLS[::-1]):
            out = r.path('py.json')
            label = 'python %s' % impl
            pyargv = '--backend uwsgi --out %s --cells %s --duration %s' % (out, PY_CELLS, a.duration)
            cmd = r.uwsgi(impl, ['--cache2', PY_CACHE, '--pyrun', 'bench/pybench.py',
                                 '--pyargv', pyargv], plugins=('python3',))
            r.run(cmd, label, 120 + 8 * a.duration, impl=impl)
            d = r.json_of(out, label)
            for run in d['runs']:
                ok = not run['failed'] and not run['errors']
                samples.setdefault((run['workload'], run['procs'], impl), []).append(
                    run['ops_s'] if ok else None)
    cells = []
    for cell in PY_CELLS.split(','):
        wl, p = cell.split(':')
        s, u = (samples.get((wl, int(p), i), []) for i in IMPLS)
        cells.append({'workload': wl, 'procs': int(p), 'stock_ops_s': best(s),
                      'ucache_ops_s': best(u), 'ratio': paired(u, s),
                      'ratio_best': ratio(best(u), best(s)),
                      'stock_samples': s, 'ucache_samples': u})
    return {'cells': cells, 'cache2': PY_CACHE, 'reps': a.reps, 'duration': a.duration}


def python_flat(py):
    flat = {}
    for x in py['cells']:
        flat['py_%s_%dp_ratio' % (x['workload'], x['procs'])] = x['ratio']
    flat['py_get_1p_ratio'] = flat.get('py_get_hit_1p_ratio')
    return flat


# --------------------------------------------------------------- peers

def wait_socket(path, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            return
        time.sleep(0.05)
    raise BenchError('%s did not appear' % path)


def start_server(r, name, cmd):
    log = open(r.path(name + '.log'), 'w')
    r.commands.setdefault('peer ' + name, r.show(cmd))
    return subprocess.Popen(cmd, cwd=r.tmp, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_server(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def bench_peers(r, a):
    res = {}
    servers = {
        'memcached': ['memcached', '-s', r.path('mc.sock'), '-m', '1024', '-t', '2']
        + (['-u', 'root'] if os.geteuid() == 0 else []),
        'redis': ['redis-server', '--port', '0', '--unixsocket', r.path('redis.sock'),
                  '--save', '', '--appendonly', 'no'],
    }
    socks = {'memcached': r.path('mc.sock'), 'redis': r.path('redis.sock')}
    for name, cmd in servers.items():
        if not shutil.which(cmd[0]):
            res[name] = {'error': '%s not installed' % cmd[0]}
            continue
        p = start_server(r, name, cmd)
        try:
            wait_socket(socks[name])
            cells = {}
            for _ in range(min(a.reps, 2)):
                out = r.path('peer.json')
                r.run([PYTHON3, 'bench/pybench.py', '--backend', name, '--socket', socks[name],
                       '--out', out, '--cells', PY_CELLS, '--duration', str(a.duration)],
                      'peer ' + name + ' client', 120 + 8 * a.duration)
                for run in r.json_of(out, name)['runs']:
                    key = (run['workload'], run['procs'])
                    if not run['failed'] and not run['errors'] and \
                            run['ops_s'] > cells.get(key, {}).get('ops_s', 0):
                        cells[key] = run
            res[name] = {'cells': list(cells.values()), 'reps': min(a.reps, 2)}
        except BenchError as e:
            res[name] = {'error': str(e)}
        finally:
            stop_server(p)
    return res


# ----------------------------------------------------------------- mem

def mem_cache2(n, bs, extra):
    """--cache2 of a memory row storing n items (a 1-item baseline: 3)."""
    items = n + 2 if n == 1 else n + 1
    return 'name=bench,items=%d,blocksize=%d' % (items, bs) + \
        (',' + extra.format(items=items) if extra else ''), items


STOCK_INIT = re.compile(r'\*\*\* Cache "bench" initialized: \S+ \(key: (\d+) bytes, keys: (\d+) bytes, '
                        r'data: (\d+) bytes, bitmap: (\d+) bytes\)')
UCACHE_INIT = re.compile(r'\*\*\* ucache "bench" initialized: (\d+) KiB mapped')


def stock_formula_kb(log, items, label):
    """What the stock cache maps by its own account (its start-up line):
    keys (items * (keysize + 88)) + data (blocks * blocksize) + bitmap, one
    mapping, plus the hashtable (hashsize * 8) and the unused-blocks stack
    (items * 8), each MAP_SHARED | MAP_ANONYMOUS."""
    m = STOCK_INIT.search(log)
    if not m:
        raise BenchError('%s: no "*** Cache "bench" initialized" line in the log' % label)
    keys, data, bitmap = int(m.group(2)), int(m.group(3)), int(m.group(4))
    return (keys + data + bitmap + MEM_HASHSIZE * 8 + items * 8) / 1024.0


def bench_mem(r, a):
    """Resident bytes: the shared mappings' Rss after the fill minus the same
    for a 1-item cache of the same geometry (what every item adds).  Mapped
    bytes: the shared mappings' Size minus the same for an instance with no
    cache at all (everything the cache maps, fixed parts included)."""
    raw, logs = {}, {}
    cases = [c for c in MEM_CASES if c[4] or not a.quick]
    for impl in IMPLS:
        out = r.path('mem.json')
        label = 'mem nocache %s' % impl
        r.run(r.uwsgi(impl, ['--ucbench', 'mem', '--ucbench-fill', '0', '--ucbench-klen', '12',
                             '--ucbench-vlen', '100', '--ucbench-out', out]), label, 60, impl=impl)
        raw[('nocache', impl)] = r.json_of(out, label, impl)
        for bs, extra in sorted({(c[2], c[3]) for c in cases}):
            tiny = 'tiny_bs%d%s' % (bs, '_' + re.sub(r'\W+', '_', extra.replace('{items}', 'n'))
                                    if extra else '')
            cases_g = [(tiny, 1)] + [(c[0], c[1]) for c in cases if (c[2], c[3]) == (bs, extra)]
            for name, n in cases_g:
                out = r.path('mem.json')
                label = 'mem %s %s' % (name, impl)
                cache2, items = mem_cache2(n, bs, extra)
                args = ['--cache2', cache2, '--ucbench', 'mem', '--ucbench-fill', str(n),
                        '--ucbench-klen', '12', '--ucbench-vlen', '100', '--ucbench-out', out]
                log = r.run(r.uwsgi(impl, args), label, 300, impl=impl)
                d = r.json_of(out, label, impl)
                if d['fill_errors'] or d['missing']:
                    raise BenchError('%s: %d refused, %d missing' % (label, d['fill_errors'], d['missing']))
                d['tiny'], d['cache2'], d['cache_items'] = tiny, cache2, items
                raw[(name, impl)], logs[(name, impl)] = d, log
    res = {}
    for order, (name, n, bs, extra, _) in enumerate(cases):
        keysize = int(re.search(r'keysize=(\d+)', extra).group(1)) if 'keysize=' in extra else 2048
        row = {'order': order, 'items': n, 'blocksize': bs, 'keysize': keysize, 'bitmap': 'bitmap=1' in extra,
               'klen': 12, 'vlen': 100, 'cache2': raw[(name, 'stock')]['cache2']}
        for impl in IMPLS:
            d = raw[(name, impl)]
            base, none = raw[(d['tiny'], impl)], raw[('nocache', impl)]
            kb = d['shared_rss_kb'] - base['shared_rss_kb']
            row[impl] = {'rss_kb': d['shared_rss_kb'], 'baseline_rss_kb': base['shared_rss_kb'],
                         'cache_rss_kb': kb, 'bytes_per_item': kb * 1024.0 / n,
                         'mapped_kb': d['shared_size_kb'], 'nocache_mapped_kb': none['shared_size_kb'],
                         'virtual_kb': d['shared_size_kb'] - none['shared_size_kb'],
                         'virtual_over_tiny_kb': d['shared_size_kb'] - base['shared_size_kb'],
                         'shared_maps_kb': d.get('shared_maps_kb')}
        m = UCACHE_INIT.search(logs[(name, 'ucache')])
        row['ucache']['log_mapped_kb'] = int(m.group(1)) if m else None
        # cross-check the stock figure against what stock says it maps: a
        # mismatch means the no-cache baseline does not isolate the cache
        formula = stock_formula_kb(logs[(name, 'stock')], raw[(name, 'stock')]['cache_items'],
                                   'mem %s stock' % name)
        row['stock']['formula_kb'] = formula
        if abs(row['stock']['virtual_kb'] - formula) > 0.01 * formula + 256:
            raise BenchError('mem %s stock: %d KiB mapped, but its start-up line accounts for %.0f KiB'
                             % (name, row['stock']['virtual_kb'], formula))
        # resident bytes an item beyond its key and value; in bitmap mode
        # beyond the blocks stock's accounting gives the value (its capacity
        # and placement: bench/BOUNDS.md mem_overhead_bytes_max), with the
        # key inside them when it fits in the last one's tail, as ucache
        # keeps it (layout v7)
        payload = row['klen'] + row['vlen']
        if row['bitmap']:
            blocks = -(-row['vlen'] // bs) * bs
            payload = blocks + (0 if blocks - row['vlen'] >= row['klen'] else row['klen'])
        for impl in IMPLS:
            row[impl]['overhead_bytes'] = row[impl]['bytes_per_item'] - payload
            row[impl]['beyond_key_value_bytes'] = row[impl]['bytes_per_item'] - row['klen'] - row['vlen']
        row['ratio'] = ratio(row['stock']['bytes_per_item'], row['ucache']['bytes_per_item'])
        row['virtual_ratio'] = ratio(row['ucache']['virtual_kb'], row['stock']['virtual_kb'])
        res[name] = row
    return res


def mem_flat(m):
    flat = {}
    for name, row in m.items():
        flat['mem_%s_ratio' % name] = row['ratio']
        flat['mem_%s_bytes_per_item' % name] = row['ucache']['bytes_per_item']
        flat['mem_%s_bytes_per_item_stock' % name] = row['stock']['bytes_per_item']
        flat['mem_%s_virtual_ratio' % name] = row['virtual_ratio']
        flat['mem_%s_virtual_kb' % name] = row['ucache']['virtual_kb']
        flat['mem_%s_virtual_kb_stock' % name] = row['stock']['virtual_kb']
        flat['mem_%s_overhead_bytes' % name] = row['ucache']['overhead_bytes']
        flat['mem_%s_beyond_key_value_bytes' % name] = row['ucache']['beyond_key_value_bytes']
    vr = [row['virtual_ratio'] for row in m.values() if row['virtual_ratio']]
    flat['mem_virtual_ratio_max'] = max(vr) if vr else None
    # the issue-24 figure: what an item costs beyond its own key and value bytes
    ov = [row['ucache']['overhead_bytes'] for row in m.values()]
    flat['mem_overhead_bytes_max'] = max(ov) if ov else None
    if '100k_bs128' in m:
        flat['mem_100k_ratio'] = m['100k_bs128']['ratio']
        flat['mem_100k_bytes_per_item'] = m['100k_bs128']['ucache']['bytes_per_item']
        flat['mem_100k_bytes_per_item_stock'] = m['100k_bs128']['stock']['bytes_per_item']
    if '1m_bs128' in m:
        flat['mem_1m_ratio'] = m['1m_bs128']['ratio']
    return flat


# --------------------------------------------------------------- sweep

def bench_sweep(r, a):
    res = {}
    items = SWEEP_ITEMS if not a.quick else 200000
    dur = 6.0 if not a.quick else 4.0
    for impl in IMPLS:
        for kind in ('sweep', 'control'):
            out = r.path('sweep.json')
            sock = r.path('sweep.sock')
            label = 'sweep %s %s' % (kind, impl)
            args = ['--master', '--processes', '1', '--socket', sock,
                    '--cache2', 'name=bench,items=%d,blocksize=128' % (items + 1),
                    '--cache-expire-freq', '1', '--cache-report-freed-items',
                    '--ucbench', 'sweep', '--ucbench-fill', str(items), '--ucbench-klen', '12',
                    '--ucbench-vlen', '100', '--ucbench-expire-every', '10',
                    '--ucbench-expires', '3', '--ucbench-duration', str(dur),
                    '--ucbench-out', out]
            if kind == 'control':
                args.append('--cache-no-expire')
            log = r.run(r.uwsgi(impl, args), label, 240, impl=impl, stop_on=out)
            d = r.json_of(out, label, impl)
            freed = sum(int(x) for x in re.findall(r'freed (\d+) items', log))
            d['freed_items'] = freed
            res['%s_%s' % (kind, impl)] = d
    return res


def sweep_flat(s):
    flat = {}
    for impl in IMPLS:
        d = s.get('sweep_' + impl)
        c = s.get('control_' + impl)
        if d:
            flat['sweep_max_latency_ms_' + impl] = d['max_ns'] / 1e6
            flat['sweep_p999_latency_ms_' + impl] = d['p999_ns'] / 1e6
            flat['sweep_freed_items_' + impl] = d['freed_items']
            flat['sweep_max_stall_ms_' + impl] = d.get('max_stall_ns', 0) / 1e6
            flat['sweep_max_stall_nosteal_ms_' + impl] = d.get('max_stall_nosteal_ns', 0) / 1e6
            flat['sweep_max_blocked_ms_' + impl] = d.get('max_slept_ns', 0) / 1e6
        if c:
            flat['sweep_control_max_latency_ms_' + impl] = c['max_ns'] / 1e6
            flat['sweep_control_p999_latency_ms_' + impl] = c['p999_ns'] / 1e6
            flat['sweep_control_max_stall_ms_' + impl] = c.get('max_stall_ns', 0) / 1e6
    return flat


# --------------------------------------------------------------- instr

# Functions both implementations pay the same way through the magic API: the
# caller's malloc'd copy (malloc, free, realloc), memcpy / memcmp, and the
# benchmark loop itself.  What is left is each cache's own work.
COMMON_FN = re.compile(r'^(_?_?(libc_)?(malloc|free|realloc|calloc)|_int_(malloc|free|realloc)|'
                       r'malloc_consolidate|tcache_\w+|__mem(cpy|move|cmp|set)\w*|mem(cpy|move|cmp|set)|'
                       r'ucb_instr_loop)$')


def callgrind_annotate(path, show):
    """callgrind_annotate's self counts per function of the events in show
    (comma-separated), or '' if it cannot run."""
    try:
        return subprocess.run(['callgrind_annotate', '--inclusive=no', '--auto=no', '--threshold=100',
                               '--show=' + show, path], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ''


def callgrind_functions(path, ops):
    """[(function, library, self instructions per op)] from callgrind_annotate."""
    out = []
    for line in callgrind_annotate(path, 'Ir').splitlines():
        m = re.match(r'^\s*([\d,]+) \([\s\d.]+%\)\s+(\S.*?)\s*(\[.*\])?$', line)
        if m and 'PROGRAM TOTALS' not in line:
            fn = m.group(2).split(':')[-1].split('@@')[0]
            lib = os.path.basename((m.group(3) or '').strip('[]')) or '?'
            out.append([fn, lib, int(m.group(1).replace(',', '')) / ops])
    return out


def callgrind_totals(path):
    """{event: total} of a callgrind output file."""
    events, totals = [], []
    for line in open(path):
        if line.startswith('events:'):
            events = line.split()[1:]
        elif line.startswith('totals:') or line.startswith('summary:'):
            totals = [int(x) for x in line.split()[1:]]
    return dict(zip(events, totals))


def callgrind_misses(path, ops):
    """Cache-simulation totals per op ({event: count / ops} for
    CACHE_SIM_EVENTS) and the functions with the most D1 misses
    ([function, D1 read misses, D1 write misses] per op), or ({}, [])."""
    totals = callgrind_totals(path)
    if 'D1mr' not in totals:
        return {}, []
    fns = {}
    for line in callgrind_annotate(path, 'D1mr,D1mw').splitlines():
        m = re.match(r'^\s*([\d,.]+)(?: \([\s\d.]+%\))?\s+([\d,.]+)(?: \([\s\d.]+%\))?\s+(\S.*?)\s*(\[.*\])?$', line)
        if m and 'PROGRAM TOTALS' not in line:
            fn = m.group(3).split(':')[-1].split('@@')[0]
            f = fns.setdefault(fn, [fn, 0.0, 0.0])
            for k in (1, 2):  # '.' is callgrind_annotate's zero
                f[k] += (0 if m.group(k) == '.' else int(m.group(k).replace(',', ''))) / ops
    top = sorted((f for f in fns.values() if f[1] + f[2] >= 0.01), key=lambda f: -(f[1] + f[2]))
    return {e: totals[e] / ops for e in CACHE_SIM_EVENTS if e in totals}, top[:10]


def bench_instr(r, a):
    if not shutil.which('valgrind'):
        return {'error': 'valgrind not installed'}
    res = {'cache2': INSTR_CACHE, 'fill': 100000, 'klen': 16, 'vlen': 100,
           'cases': {name: {'cache2': c2, 'ops': ops} for name, c2, _, _, ops in INSTR_CASES}}
    for impl in IMPLS:
        for name, cache2, opts, wl, ops in INSTR_CASES:
            ops = ops if not a.quick else max(ops // 5, 1000)
            out = r.path('instr.json')
            cg = r.path('callgrind.%s.%s.out' % (impl, name))
            label = 'instr %s %s' % (name, impl)
            cmd = ['valgrind', '--tool=callgrind', '--smc-check=all', '--collect-atstart=no',
                   '--toggle-collect=ucb_instr_loop', '--callgrind-out-file=' + cg] + \
                (CACHE_SIM_OPTS if name in INSTR_CACHE_SIM else []) + \
                r.uwsgi(impl, ['--cache2', cache2, '--ucbench', 'instr', '--ucbench-workload', wl]
                        + opts + ['--ucbench-ops', str(ops), '--ucbench-out', out])
            r.run(cmd, label, 300, impl=impl)
            d = r.json_of(out, label, impl)
            if d['errors'] or d['fill_errors']:
                raise BenchError('%s: %d errors' % (label, d['errors']))
            total = callgrind_totals(cg).get('Ir')
            fns = callgrind_functions(cg, ops)
            res['%s_%s' % (name, impl)] = {
                'total': total, 'ops': ops, 'top': merge_functions(fns)[:14],
                'common': sum(n for fn, _, n in fns if COMMON_FN.match(fn))}
            if name in INSTR_CACHE_SIM:
                # the loop's own misses (a key on its stack) are ~0.0002 per op: not subtracted
                x = res['%s_%s' % (name, impl)]
                x['misses'], x['top_misses'] = callgrind_misses(cg, ops)
    for impl in IMPLS:
        base = res['noop_%s' % impl]
        for name, _, _, _, _ in INSTR_CASES[1:]:
            x = res['%s_%s' % (name, impl)]
            x['per_op'] = x['total'] / x['ops'] - base['total'] / base['ops']
            # the cache's own instructions: minus malloc/free/mem*/loop, plus
            # the loop's share that the noop baseline already removed
            x['own_per_op'] = x['per_op'] - x['common'] + base['total'] / base['ops']
    return res


def merge_functions(fns):
    """One entry per function name (inlined copies and symbol versions are
    listed apart by callgrind_annotate), largest first."""
    merged, libs = {}, {}
    for fn, lib, n in fns:
        merged[fn] = merged.get(fn, 0) + n
        if lib != '?':
            libs.setdefault(fn, lib)
    return sorted(([fn, libs.get(fn, '?'), n] for fn, n in merged.items()), key=lambda t: -t[2])


def instr_flat(i):
    flat = {}
    for name, _, _, _, _ in INSTR_CASES[1:]:
        s, u = i.get('%s_stock' % name), i.get('%s_ucache' % name)
        if s and u:
            flat['instr_%s_stock' % name] = s['per_op']
            flat['instr_%s_ucache' % name] = u['per_op']
            flat['instr_%s_ratio' % name] = ratio(u['per_op'], s['per_op'])
            flat['instr_%s_own_ratio' % name] = ratio(u['own_per_op'], s['own_per_op'])
        unit = 'insert' if name == 'lru' else 'op'
        for impl, x in (('stock', s), ('ucache', u)):
            mi = (x or {}).get('misses')
            if mi and 'D1mr' in mi:  # cache lines touched that were not in the simulated caches
                flat['instr_%s_d1_misses_per_%s_%s' % (name, unit, impl)] = mi['D1mr'] + mi.get('D1mw', 0)
                flat['instr_%s_ll_misses_per_%s_%s' % (name, unit, impl)] = mi.get('DLmr', 0) + mi.get('DLmw', 0)
    flat['instr_get_ratio'] = flat.get('instr_get_hit_ratio')
    return flat


# -------------------------------------------------------------- engine

def bench_engine(r, a):
    out = r.path('engine.json')
    # 3 reps of 0.5 s per cell (~30 s): with --quick's single 0.25 s run the
    # 2-process scalings swung from 0.8 to 1.6 between runs on this VM
    text = r.run([ENGINE] + (['--quick'] if a.quick else ['--reps', '3']) + ['--json', out], 'engine', 300)
    with open(out) as f:
        d = json.load(f)
    d['table'] = [line for line in text.splitlines() if line.strip()]
    return d


# ------------------------------------------------------------ hitratio

# The cache of both replays (usable items: 10000) and the traces of
# bench/trace.h, passed explicitly to both programs so that they replay the
# same requests.
HR_ITEMS, HR_BLOCKSIZE = 10001, 64
HR_TRACE = {'keys': 100000, 'draws': 2000000, 'alpha': '0.99', 'scan-every': 100000,
            'scan-len': 15000, 'seed': 0x5eed0099}
HR_CACHE = 'name=bench,items=%d,blocksize=%d,purge_lru=1,ignore_full=1' % (HR_ITEMS, HR_BLOCKSIZE)
# VERSION is the one place the version lives (the Makefile passes it the same way)
with open(os.path.join(ROOT, 'VERSION')) as _f:
    UCACHE_VERSION = _f.read().strip()
HR_CC = ['cc', '-std=gnu11', '-g', '-O2', '-Wall', '-Wextra', '-Wshadow', '-Werror', '-Iinclude',
         '-D_GNU_SOURCE', '-DUCACHE_VERSION="%s"' % UCACHE_VERSION, 'bench/hitratio.c', '-o', HITRATIO, 'build/libucache.a',
         '-lxxhash', '-lpthread', '-lm']
# The eviction policies bench/hitratio.c simulates over the same requests
# besides the exact LRU (its JSON names): the figures to pick a policy by.
HR_POLICIES = ('clock', 'sieve', 's3fifo', 'sieve_part')


def bench_hitratio(r, a):
    """Not a speed test: every figure is a count, the same on every run
    (the trace is seeded) except for the engine's own eviction choices."""
    if not os.path.exists(os.path.join(ROOT, 'build/libucache.a')):
        raise BenchError('build/libucache.a is missing: run `make bench`')
    os.makedirs(os.path.join(ROOT, os.path.dirname(HITRATIO)), exist_ok=True)
    r.run(HR_CC, 'hitratio build', 120)
    # the simulated references first: a figure from a broken simulator
    # would read as a finding
    check = r.run([HITRATIO, '--selftest'], 'hitratio selftest', 60)
    if 'hitratio --selftest: ok' not in check:
        raise BenchError('hitratio selftest: no "ok" line:\n%s' % check[-1500:])
    out = r.path('hitratio.json')
    opts = []
    for k, v in HR_TRACE.items():
        opts += ['--' + ('requests' if k == 'draws' else k), str(v)]
    text = r.run([HITRATIO, '--items', str(HR_ITEMS), '--blocksize', str(HR_BLOCKSIZE), '--json', out]
                 + opts, 'hitratio engine', 120)
    d = r.json_of(out, 'hitratio engine')
    if d['failed'] or d['capacity'] != HR_ITEMS - 1:
        raise BenchError('hitratio engine: failed=%s, capacity %s (expected %d):\n%s'
                         % (d['failed'], d['capacity'], HR_ITEMS - 1, text[-1500:]))
    d['table'] = [line for line in text.splitlines() if line.strip()]
    d['selftest'] = [line for line in check.splitlines() if line.strip()]
    # the same traces through uwsgi_cache_magic_get/set: stock's purge_lru
    # (a doubly linked list, as the exact LRU), and ucache through the plugin
    for n, tr in enumerate(('zipf', 'scan')):
        t = d['traces'][tr]
        for impl in (IMPLS if n % 2 == 0 else IMPLS[::-1]):
            out = r.path('hr.json')
            label = 'hitratio %s %s' % (tr, impl)
            args = ['--cache2', HR_CACHE, '--ucbench', 'hitratio', '--ucbench-trace', tr,
                    '--ucbench-keys', str(HR_TRACE['keys']), '--ucbench-ops', str(HR_TRACE['draws']),
                    '--ucbench-alpha', HR_TRACE['alpha'], '--ucbench-scan-every', str(HR_TRACE['scan-every']),
                    '--ucbench-scan-len', str(HR_TRACE['scan-len']), '--ucbench-seed', str(HR_TRACE['seed']),
                    '--ucbench-out', out]
            r.run(r.uwsgi(impl, args), label, 180, impl=impl)
            u = r.json_of(out, label, impl)
            if u['set_errors'] or u['bad_values']:
                raise BenchError('%s: %d sets refused, %d wrong values' % (label, u['set_errors'], u['bad_values']))
            if (u['requests'], u['scan_requests']) != (t['requests'], t['scan_requests']):
                raise BenchError('%s: replayed %d requests (%d scan), bench/hitratio.c %d (%d): not the same trace'
                                 % (label, u['requests'], u['scan_requests'], t['requests'], t['scan_requests']))
            u['hit_ratio'] = u['hits'] / u['requests']
            t['uwsgi_' + impl] = u
    return d


def hitratio_flat(h):
    flat = {}
    for tr in ('zipf', 'scan'):
        t = h['traces'][tr]
        uc, ex = t['ucache']['hit_ratio'], t['exact']['hit_ratio']
        flat['lru_hit_ratio_%s_ucache' % tr] = uc
        flat['lru_hit_ratio_%s_exact' % tr] = ex
        flat['lru_hit_ratio_%s_vs_exact' % tr] = ratio(uc, ex)
        for pol in HR_POLICIES:
            flat['lru_hit_ratio_%s_%s' % (tr, pol)] = t[pol]['hit_ratio']
            flat['lru_hit_ratio_%s_%s_vs_exact' % (tr, pol)] = ratio(t[pol]['hit_ratio'], ex)
        st, up = t.get('uwsgi_stock', {}).get('hit_ratio'), t.get('uwsgi_ucache', {}).get('hit_ratio')
        flat['lru_hit_ratio_%s_stock' % tr] = st
        flat['lru_hit_ratio_%s_uwsgi_ucache' % tr] = up
        flat['lru_hit_ratio_%s_vs_stock' % tr] = ratio(up, st)
    return flat


# ----------------------------------------------------------------- php

# One instance per (implementation, rep), 2 workers pinned one per CPU: the
# fill, then one cell per process count; a 1-process cell leaves the other
# worker idle in accept().  Each cell's loop alternates the three backends
# in timed phases of PHP_PHASE_MS (bench/phpbench.php).
PHP_KEYS = 10000
PHP_CACHE = 'name=bench,items=16384'
PHP_OPTS = ['--master', '--processes', '2', '--cpu-affinity', '1', '--http-socket-modifier1', '14',
            '--php-docroot', 'bench', '--php-allowed-ext', '.php',
            '--php-set', 'apc.enabled=1', '--php-set', 'apc.shm_size=64M',
            '--php-set', 'memory_limit=-1', '--disable-logging']
PHP_PROCS = (1, 2)
PHP_BACKENDS = ('noop', 'apcu', 'uwsgi')
PHP_PHASE_MS = 25


def http_get(sock, path, timeout):
    """GET path over the unix socket sock (HTTP/1.0); the JSON body."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        s.sendall(('GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' % path).encode())
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        raise BenchError('php: GET %s: %s' % (path, e))
    finally:
        s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    status = head.split(b'\r\n', 1)[0].decode(errors='replace')
    try:
        d = json.loads(body)
    except ValueError:
        d = None
    if ' 200 ' not in status + ' ' or not isinstance(d, dict):
        raise BenchError('php: GET %s: %s %s' % (path, status, body[:500].decode(errors='replace')))
    return d


def php_cell(sock, procs, duration):
    """procs concurrent requests, one per worker, started together; each
    loops for 2 x duration over the three backends in turn, PHP_PHASE_MS
    each."""
    start = time.time() + 0.3
    path = '/phpbench.php?op=loop&n=%d&dur=%s&start=%.6f&phase_ms=%d' % (PHP_KEYS, 2 * duration, start,
                                                                         PHP_PHASE_MS)
    res, errs = [None] * procs, []

    def one(i):
        try:
            res[i] = http_get(sock, path, 30 + 4 * duration)
        except BenchError as e:
            errs.append(e)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errs:
        raise errs[0]
    if len({d['pid'] for d in res}) != procs:
        raise BenchError('php %dp: the %d requests were served by %d worker(s)'
                         % (procs, procs, len({d['pid'] for d in res})))
    for d in res:
        for b in PHP_BACKENDS:
            if d['misses'][b] or d['bad'][b] or not d['ops'][b] or not d['ns'][b]:
                raise BenchError('php %s %dp: %d misses, %d wrong values in %d ops (pid %s)'
                                 % (b, procs, d['misses'][b], d['bad'][b], d['ops'][b], d['pid']))
    return {'procs': procs,
            'ops_s': {b: sum(d['ops'][b] * 1e9 / d['ns'][b] for d in res) for b in PHP_BACKENDS},
            'cpu_share': sum(d['cpu_ns'] / d['wall_ns'] for d in res) / procs,
            'late_ms': max(d['late_ms'] for d in res), 'per_proc': res}


def php_instance(r, a, impl, label):
    """Start uwsgi + PHP, fill, run every cell, stop it; the cells."""
    sock, done = r.path('php.sock'), r.path('php.done')
    for f in (sock, done):
        if os.path.exists(f):
            os.unlink(f)
    cmd = r.uwsgi(impl, ['--cache2', PHP_CACHE, '--http-socket', sock] + PHP_OPTS, plugins=('php',))
    box = {}

    def serve():
        try:
            box['log'] = r.run(cmd, label, 120 + 12 * a.duration, impl=impl, stop_on=done)
        except BenchError as e:
            box['error'] = e
    th = threading.Thread(target=serve)
    th.start()
    cells, failure = [], None
    try:
        deadline = time.time() + 20
        while not os.path.exists(sock) and th.is_alive() and time.time() < deadline:
            time.sleep(0.05)
        if not os.path.exists(sock):
            raise BenchError('%s: uwsgi did not create %s' % (label, sock))
        time.sleep(0.3)  # the workers: the master binds the socket before forking them
        d = http_get(sock, '/phpbench.php?op=fill&n=%d' % PHP_KEYS, 60)
        if d['errors'] or d['bad'] or not d['apcu']:
            raise BenchError('%s: fill: %d errors, %d wrong read-backs, APCu enabled: %s'
                             % (label, d['errors'], d['bad'], d['apcu']))
        for procs in PHP_PROCS:
            cells.append(php_cell(sock, procs, a.duration))
    except BenchError as e:
        failure = e
    finally:
        with open(done, 'w'):
            pass
        th.join()
    if 'error' in box:
        raise box['error']
    if failure:  # with the end of uwsgi's log (a PHP fatal error, a missing plugin)
        raise BenchError('%s\n%s' % (failure, box.get('log', '')[-1500:]))
    if not re.search(r'PHP [\d.]+ initialized', box['log']):
        raise BenchError('%s: no "PHP ... initialized" line in the log' % label)
    return cells


def bench_php(r, a):
    m = re.search(r'-DUWSGI_PLUGIN_DIR="\\"(.*?)\\""', sh(UWSGI + ' --cflags'))
    plugin_dir = m.group(1) if m else '/usr/lib/uwsgi/plugins'
    if not os.path.exists(os.path.join(plugin_dir, 'php_plugin.so')):
        raise BenchError('no php_plugin.so in %s: install uwsgi-plugin-php and php-apcu (make deps)' % plugin_dir)
    samples, per = {}, {}  # (backend, procs, impl) -> [ops/s]; (procs, impl) -> [cells]
    for rep in range(a.reps):
        for impl in (IMPLS if rep % 2 == 0 else IMPLS[::-1]):
            for c in php_instance(r, a, impl, 'php %s' % impl):
                for b in PHP_BACKENDS:
                    samples.setdefault((b, c['procs'], impl), []).append(c['ops_s'][b])
                per.setdefault((c['procs'], impl), []).append(c)
    cells = []
    for procs in PHP_PROCS:
        for b in PHP_BACKENDS:
            row = {'backend': b, 'procs': procs}
            for impl in IMPLS:
                cs = per.get((procs, impl), [])
                row[impl] = {'ops_s': best(samples.get((b, procs, impl), [])),
                             'samples': samples.get((b, procs, impl), []),
                             'cpu_share': min((c['cpu_share'] for c in cs), default=None)}
                if b == 'uwsgi':  # what the loop left behind and faulted in: all uwsgi_cache_get's
                    row[impl]['mem_per_op'] = max((d['mem_per_op'] for c in cs for d in c['per_proc']), default=None)
                    row[impl]['minflt_per_op'] = max((d['minflt_per_op'] for c in cs for d in c['per_proc']),
                                                     default=None)
            cells.append(row)
    res = {'cells': cells, 'cache2': PHP_CACHE, 'keys': PHP_KEYS, 'reps': a.reps, 'duration': a.duration,
           'phase_ms': PHP_PHASE_MS}
    # ucache / stock pairs each rep's two instances; uwsgi_cache_get / APCu
    # pairs two phases of one loop.  Normalised: ucache's and stock's
    # uwsgi_cache_get each measured against the APCu calls of its own loop
    # (a yardstick that ran at the same drift of the machine's speed).
    for p in PHP_PROCS:
        g = {impl: samples.get(('uwsgi', p, impl), []) for impl in IMPLS}
        ap = {impl: samples.get(('apcu', p, impl), []) for impl in IMPLS}
        res['ucache_vs_stock_%dp' % p] = paired(g['ucache'], g['stock'])
        res['ucache_vs_apcu_%dp' % p] = paired(g['ucache'], ap['ucache'])
        res['stock_vs_apcu_%dp' % p] = paired(g['stock'], ap['stock'])
        res['ucache_vs_stock_%dp_apcu_normalised' % p] = ratio(res['ucache_vs_apcu_%dp' % p],
                                                              res['stock_vs_apcu_%dp' % p])
    return res


# --------------------------------------------------------------- redis

def free_tcp_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def http_json(port, path, timeout):
    import http.client
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('GET', path)
        body = conn.getresponse().read()
    finally:
        conn.close()
    try:
        d = json.loads(body)
    except ValueError:
        raise BenchError('redis %s: not JSON: %r' % (path.split('?')[0], body[:200]))
    if isinstance(d, dict) and d.get('error'):
        raise BenchError('redis %s: %s' % (path.split('?')[0], d['error']))
    return d


def redis_instance(r, name, sock, items):
    """A uwsgi instance (master + 1 worker) with near cache r over the Redis
    at unix socket sock; returns (process, http port) once it answers."""
    port = free_tcp_port()
    cmd = r.uwsgi('ucache', ['--master', '--workers', '1', '--http-socket', '127.0.0.1:%d' % port,
                             '--disable-logging', '--cache2',
                             'name=r,items=%d,blocksize=128,redis=unix:%s' % (items, sock),
                             '--wsgi-file', os.path.join(ROOT, 'bench', 'redis_app.py')],
                  plugins=('python3',))
    cmd = [os.path.join(ROOT, c) if c == UCACHE_SO else c for c in cmd]  # start_server runs in r.tmp
    p = start_server(r, 'uwsgi-' + name, cmd)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            time.sleep(0.5)  # the listener subscribes and flushes L1 once
            return p, port
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.05)
    stop_server(p)
    raise BenchError('uwsgi %s did not start; log %s' % (name, r.path('uwsgi-' + name + '.log')))


def bench_redis(r, a):
    """The near cache over Redis (issue 13): L1 hits and misses against
    redis-py GET in the same worker over the same unix socket, and how long
    a write on instance A takes to replace the value B serves."""
    if not shutil.which('redis-server'):
        raise BenchError('redis-server not installed')
    sock = r.path('redis-near.sock')
    srv = start_server(r, 'redis-near', ['redis-server', '--port', '0', '--unixsocket', sock,
                                         '--save', '', '--appendonly', 'no'])
    procs = []
    n_miss = 2000 if a.quick else 20000
    n_inval = 200 if a.quick else 1000
    try:
        wait_socket(sock)
        pa, port_a = redis_instance(r, 'A', sock, 64 * 1024)
        procs.append(pa)
        pb, port_b = redis_instance(r, 'B', sock, 64 * 1024)
        procs.append(pb)
        hits, misses, writes = [], [], []
        for _ in range(a.reps):
            hits.append(http_json(port_b, '/hit?sock=%s&duration=%s' % (sock, a.duration), 120))
            misses.append(http_json(port_b, '/miss?sock=%s&n=%d' % (sock, n_miss), 300))
            writes.append(http_json(port_b, '/write?sock=%s&n=%d' % (sock, n_miss), 300))
        inval = http_json(port_b, '/inval?n=%d&peer=%d' % (n_inval, port_a), 300)
    finally:
        for p in procs:
            stop_server(p)
        stop_server(srv)
    best_hit = max(hits, key=lambda h: h['ratio'])
    best_miss = min(misses, key=lambda m: m['ratio'])
    best_write = min(writes, key=lambda w: w['ratio'])
    if any(w['failed'] or w['wrong'] for w in writes):
        raise BenchError('redis /write: failed or wrong writes: %r' % writes)
    return {'hit': best_hit, 'miss': best_miss, 'write': best_write, 'inval': inval,
            'hit_samples': hits, 'miss_samples': misses, 'write_samples': writes, 'miss_keys': n_miss}


def redis_flat(d):
    return {'redis_l1_hit_over_redis_py': d['hit']['ratio'],
            'redis_miss_over_redis_py': d['miss']['ratio'],
            'redis_write_over_redis_py': d['write']['ratio'],
            'redis_invalidation_p99_ms': d['inval']['p99_ms']}


def php_flat(ph):
    flat = {}
    for p in PHP_PROCS:
        for k in ('ucache_vs_stock', 'ucache_vs_apcu', 'stock_vs_apcu', 'ucache_vs_stock_%dp_apcu_normalised'):
            key = k % p if '%' in k else '%s_%dp' % (k, p)
            flat['php_' + key] = ph[key]
    for c in ph['cells']:
        name = {'uwsgi': 'uwsgi_cache_get', 'apcu': 'apcu_fetch', 'noop': 'noop'}[c['backend']]
        for impl in IMPLS:
            flat['php_%s_%dp_ops_s_%s' % (name, c['procs'], impl)] = c[impl]['ops_s']
    return flat


# ------------------------------------------------------------ pyhelper

PYHELPER_CACHE = 'name=bench,items=2048'
PYHELPER_KEYS = ('py_helper_get_overhead', 'py_get_or_set_hit_ratio', 'django_ucache_get_over_uwsgi',
                 'django_memcached_get_over_ucache', 'django_redis_get_over_ucache')


def bench_pyhelper(r, a):
    """bench/pyhelper.py under uwsgi with ucache, memcached and Redis
    running for its Django peers; the best (lowest) ratio over reps."""
    servers = {'memcached': ['memcached', '-s', r.path('mc.sock'), '-m', '64', '-t', '1']
               + (['-u', 'root'] if os.geteuid() == 0 else []),
               'redis': ['redis-server', '--port', '0', '--unixsocket', r.path('redis.sock'),
                         '--save', '', '--appendonly', 'no']}
    procs, pyargv = [], ''
    try:
        for name, cmd in servers.items():
            if shutil.which(cmd[0]):
                procs.append(start_server(r, 'pyhelper-' + name, cmd))
                sock = r.path('mc.sock' if name == 'memcached' else 'redis.sock')
                wait_socket(sock)
                pyargv += ' --%s %s' % (name, sock)
        runs = []
        for _ in range(a.reps):
            out = r.path('pyhelper.json')
            cmd = r.uwsgi('ucache', ['--cache2', PYHELPER_CACHE, '--pyrun', 'bench/pyhelper.py', '--pyargv',
                                     '--out %s --duration %s%s' % (out, a.duration, pyargv)],
                          plugins=('python3',))
            r.run(cmd, 'pyhelper', 120 + 20 * a.duration, impl='ucache')
            runs.append(r.json_of(out, 'pyhelper'))
    finally:
        for p in procs:
            stop_server(p)
    res = {'runs': runs, 'cache2': PYHELPER_CACHE, 'reps': a.reps}
    for k in PYHELPER_KEYS:
        vals = [x[k] for x in runs if x.get(k)]
        res[k] = min(vals) if vals else None
    return res


def pyhelper_flat(ph):
    return {k: ph.get(k) for k in PYHELPER_KEYS}


# ---------------------------------------------------------------- main

def bench_http(r, a):
    try:
        return http_bench.run(r.tmp, a.quick, a.reps)
    except http_bench.Error as e:
        raise BenchError('http: %s' % e)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='a smoke run: 1 rep, short runs, no 1M memory case')
    ap.add_argument('--only', default=','.join(SECTIONS), help='sections, comma-separated: ' + ','.join(SECTIONS))
    ap.add_argument('--reps', type=int, help='runs per cell, best counts (default: 5 for the C API, '
                    '3 for Python; --quick 1)')
    ap.add_argument('--duration', type=float, help='seconds per measured cell (default 1; --quick 0.3)')
    ap.add_argument('--keep', action='store_true', help='keep the logs and callgrind files under /tmp')
    a = ap.parse_args()
    a.reps_given = a.reps is not None
    a.reps = a.reps or (1 if a.quick else 3)
    a.capi_reps = a.reps if a.reps_given else (1 if a.quick else 5)
    a.duration = a.duration or (0.3 if a.quick else 1.0)
    only = [s for s in a.only.split(',') if s]
    for s in only:
        if s not in SECTIONS:
            ap.error('unknown section %s' % s)
    for f in (UCACHE_SO, UCBENCH_SO, ENGINE):
        if not os.path.exists(os.path.join(ROOT, f)):
            sys.exit('bench/run.py: %s is missing: run `make bench`' % f)

    t0 = time.time()
    r = Runner(a)
    res = {'meta': machine_info(), 'details': {}, 'errors': {}}
    res['meta'].update({'quick': a.quick, 'reps': a.reps, 'duration': a.duration, 'sections': only})
    funcs = {'capi': (bench_capi, capi_flat), 'python': (bench_python, python_flat),
             'peers': (bench_peers, None), 'mem': (bench_mem, mem_flat),
             'sweep': (bench_sweep, sweep_flat), 'instr': (bench_instr, instr_flat),
             'engine': (bench_engine, None), 'hitratio': (bench_hitratio, hitratio_flat),
             'php': (bench_php, php_flat), 'redis': (bench_redis, redis_flat),
             'pyhelper': (bench_pyhelper, pyhelper_flat), 'http': (bench_http, http_bench.flat)}
    flat = {}
    for s in SECTIONS:
        if s not in only:
            continue
        print('== %s (%.0f s elapsed)' % (s, time.time() - t0), flush=True)
        run, fl = funcs[s]
        try:
            res['details'][s] = run(r, a)
            if s == 'hitratio':  # the self-test's verdict, ucache's table and the policies'
                for line in res['details'][s]['selftest'][-1:] + res['details'][s]['table'][3:10]:
                    print('   ' + line, flush=True)
            if fl:
                flat.update(fl(res['details'][s]))
            elif s == 'engine':
                flat.update({k: v for k, v in res['details'][s].items()
                             if isinstance(v, (int, float)) and k.startswith('engine_')})
        except BenchError as e:
            print('   FAILED: %s' % e, flush=True)
            res['errors'][s] = str(e)
    res['meta']['elapsed_s'] = round(time.time() - t0, 1)
    res['meta']['loadavg_end'] = open('/proc/loadavg').read().split()[:3]
    git_end = machine_info_git()
    if git_end != res['meta']['git']:
        res['meta']['git'] += ' at the start, %s at the end' % git_end
    res['meta']['commands'] = [[label, cmd] for label, cmd in r.commands.items()]  # in run order
    out = dict(flat)
    out.update(res)

    os.makedirs(RESULTS, exist_ok=True)
    day = datetime.datetime.now().strftime('%Y-%m-%d')
    # Only a full run is the record; --quick / --only runs go to scratch.json
    # (ignored by git) and leave latest.json and BENCHMARKS.md alone.
    official = not a.quick and set(only) == set(SECTIONS)
    names = ('latest.json', day + '.json') if official else ('scratch.json',)
    for name in names:
        with open(os.path.join(RESULTS, name + '.tmp'), 'w') as f:
            json.dump(out, f, indent=1, sort_keys=True)
        os.rename(os.path.join(RESULTS, name + '.tmp'), os.path.join(RESULTS, name))
    if official:
        report.generate(out, ROOT, r.tmp)
        print('wrote bench/results/latest.json, bench/results/%s.json, bench/results/chart.png, '
              'BENCHMARKS.md in %.0f s' % (day, time.time() - t0))
    else:
        print('wrote bench/results/scratch.json in %.0f s (a --quick or --only run: latest.json and '
              'BENCHMARKS.md untouched; render it with bench/report.py bench/results/scratch.json '
              '--out DIR)' % (time.time() - t0))
    if not a.keep:
        shutil.rmtree(r.tmp, ignore_errors=True)
    else:
        print('logs kept in %s' % r.tmp)
    for line in report.target_lines(out):
        print('  ' + line)
    return 1 if res['errors'] else 0


if __name__ == '__main__':
    sys.exit(main())
