#!/usr/bin/env python3
"""bench/report.py - BENCHMARKS.md and bench/results/chart.png from a results file.

Called by bench/run.py at the end of `make bench`; run it alone to redo the
report from bench/results/latest.json (or a dated copy) without measuring,
or to render a --quick / --only run somewhere else:

    /usr/bin/python3 bench/report.py [bench/results/2026-01-01.json]
    /usr/bin/python3 bench/report.py bench/results/scratch.json --out /tmp/report

Standard library only; the chart needs gnuplot (gnuplot-nox), and is skipped
with a note in the report when gnuplot is missing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench  # noqa: E402  (bench/http_bench.py: its BENCHMARKS.md section)

# key, comparison, target, what it is
TARGETS = [
    ('capi_get_1p_ratio', '>=', 3, 'C API get (hit), 1 process, ucache/stock'),
    ('capi_get_2p_ratio', '>=', 5, 'C API get (hit), 2 processes, ucache/stock'),
    ('capi_get_scaling_2p_over_1p', '>=', 1.9, 'ucache get, 2 processes / 1 process'),
    ('capi_update_1p_ratio', '>=', 1.5, 'C API update, 1 process, ucache/stock'),
    ('capi_lru_churn_ratio', '>=', 3, 'C API purge_lru churn, 1 process, ucache/stock'),
    ('capi_lru_lru_2p_ratio', '>=', 3, 'C API purge_lru churn, 2 processes, ucache/stock'),
    ('instr_lru_own_ratio', '<=', 0.8, 'own instructions per full purge_lru insert, ucache/stock (callgrind)'),
    ('instr_lru_d1_misses_per_insert_ucache', '<=', 4, 'cache lines missed per full purge_lru insert (callgrind '
     'cache simulation, D1 read + write misses)'),
    ('capi_v64k_update_1p_ratio', '>=', 1.5, 'C API update of 64 KiB values, 1 process, ucache/stock'),
    ('capi_bitmap_update_1p_ratio', '>=', 2, 'C API update, bitmap cache, 1 process, ucache/stock'),
    ('engine_set_scaling_2p_over_1p', '>=', 1.6, 'engine set (+del), 2 processes / 1 process'),
    ('engine_lru_churn_scaling_2p_over_1p', '>=', 1.6, 'engine full purge_lru inserts, 2 processes / 1 process'),
    ('py_get_1p_ratio', '>=', 1.3, 'Python cache_get (hit), 1 process, ucache/stock'),
    ('mem_100k_ratio', '>=', 12, 'resident bytes per item, 100k items, stock/ucache'),
    ('mem_1m_bs128_ks64_ratio', '>=', 2, 'resident bytes per item, 1M items, keysize 64, stock/ucache'),
    ('mem_overhead_bytes_max', '<=', 32, 'resident bytes per item beyond key and value (bitmap: beyond the blocks the value occupies), largest over the memory rows'),
    ('mem_virtual_ratio_max', '<=', 1.0, 'mapped (virtual) bytes of the cache, ucache/stock, largest over the memory rows'),
    ('sweep_max_latency_ms_ucache', '<=', 1, 'max get latency while ucache sweeps 1M items (ms)'),
    ('instr_get_ratio', '<=', 0.33, 'instructions per get, ucache/stock (callgrind)'),
    ('instr_get_hit_own_ratio', '<=', 0.6, 'own instructions per get (hit), ucache/stock (callgrind): malloc/free/memcpy/loop left out'),
    ('lru_hit_ratio_zipf_vs_exact', '>=', 1.0, 'purge_lru hit ratio, Zipf(0.99) trace, ucache/exact LRU'),
    ('lru_hit_ratio_scan_vs_exact', '>=', 1.1, 'purge_lru hit ratio, Zipf(0.99) trace with scans, ucache/exact LRU'),
    ('php_ucache_vs_stock_1p', '>=', 1.3, 'PHP uwsgi_cache_get (hit), 1 process, ucache/stock'),
    ('php_ucache_vs_stock_2p', '>=', 1.3, 'PHP uwsgi_cache_get (hit), 2 processes, ucache/stock'),
    ('php_ucache_vs_apcu_1p', '>=', 1.0, 'PHP uwsgi_cache_get on ucache / apcu_fetch, 1 process'),
    ('php_ucache_vs_apcu_2p', '>=', 1.0, 'PHP uwsgi_cache_get on ucache / apcu_fetch, 2 processes'),
    ('redis_l1_hit_over_redis_py', '>=', 100, 'near cache over Redis: Python cache_get (L1 hit) / redis-py GET, same process'),
    ('redis_miss_over_redis_py', '<=', 1.2, 'near cache over Redis: time of a miss (Redis read + L1 fill) / redis-py GET'),
    ('redis_write_over_redis_py', '<=', 1.3, 'near cache over Redis: time of a write (cache_update: Redis SET + L1 drop) / redis-py SET'),
    ('redis_invalidation_p99_ms', '<=', 5, 'near cache over Redis: write on A -> B serves the new value, p99 of 1000 (ms)'),
    ('py_helper_get_overhead', '<=', 1.3, 'ucache.Cache.get (raw) time per hit / uwsgi.cache_get, same run'),
    ('py_get_or_set_hit_ratio', '<=', 1.5, 'ucache.Cache.get_or_set on a hit / uwsgi.cache_get, same run'),
    ('http_direct_over_nginx_cache', '>=', 1.0, 'cached 8 KiB page via nginx: ucache direct hit / nginx uwsgi_cache'),
    ('http_direct_over_python_hit', '>=', 5, 'cached 8 KiB page via nginx: ucache direct hit / Accelerator hit'),
    ('http_module_over_nginx_cache', '>=', 1.1, 'cached 8 KiB page: nginx with ngx_http_ucache_module / nginx uwsgi_cache'),
    ('http_module_over_lua_dict', '>=', 1.0, 'cached 8 KiB page: nginx with ngx_http_ucache_module / lua_shared_dict'),
    ('http_module_over_direct_111', '>=', 2.5, 'cached 8 KiB page: nginx with ngx_http_ucache_module / modifier1 111 hit'),
    ('http_invalidate_100k_ms', '<=', 1, 'invalidate a tag carried by 100k entries, ms'),
]

# Static functions of the Debian uwsgi-core 2.0.21-5.1 amd64 binary that
# callgrind can only name by address (checked with objdump: the first call
# of uwsgi_cache_get3 / uwsgi_cache_set2).
STOCK_STATIC = {'0x00000000000687f0': 'uwsgi_cache_get_index (static)'}


def load_bounds():
    """bench/BOUNDS.md: '## <target key>' sections, written from profiling
    (perf, callgrind); shown under a target only when it is short."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'BOUNDS.md')
    bounds, key = {}, None
    if not os.path.exists(path):
        return bounds
    with open(path) as f:
        for line in f:
            if line.startswith('## '):
                key = line[3:].strip().strip('`')
                bounds[key] = []
            elif key:
                bounds[key].append(line.rstrip('\n'))
    return {k: '\n'.join(v).strip() for k, v in bounds.items()}

CHART_LABELS = {
    ('default', 'get_hit'): 'get\\n(hit)', ('default', 'get_miss'): 'get\\n(miss)',
    ('default', 'update'): 'update', ('default', 'mixed'): 'mixed\\n95/5',
    ('lru', 'lru'): 'LRU\\nchurn', ('v64k', 'get_hit'): 'get\\n64 KiB',
    ('v64k', 'update'): 'update\\n64 KiB', ('bitmap', 'get_hit'): 'bitmap\\nget',
    ('bitmap', 'update'): 'bitmap\\nupdate', ('bs128', 'get_hit'): 'get\\nbs 128',
}
CAPI_LABELS = {
    ('default', 'get_hit'): 'get (hit)', ('default', 'get_miss'): 'get (miss)',
    ('default', 'update'): 'update', ('default', 'mixed'): 'mixed 95/5',
    ('lru', 'lru'): 'LRU-full churn', ('v64k', 'get_hit'): 'get 64 KiB',
    ('v64k', 'update'): 'update 64 KiB', ('bitmap', 'get_hit'): 'bitmap get',
    ('bitmap', 'update'): 'bitmap update', ('bs128', 'get_hit'): 'get, blocksize 128',
}


def met(value, op, target):
    if value is None:
        return None
    return value >= target if op == '>=' else value <= target


def fnum(x, digits=2):
    if x is None:
        return 'n/a'
    if isinstance(x, float) and x != int(x) or abs(x) < 100:
        return '%.*f' % (digits, x)
    return '%d' % x


def fops(x):
    if not x:
        return 'n/a'
    if x >= 1e6:
        return '%.2fM' % (x / 1e6)
    if x >= 1e3:
        return '%.1fk' % (x / 1e3)
    return '%.0f' % x


def fratio(x):
    return 'n/a' if x is None else '%.2f×' % x


def ftarget(v, target):
    """A target's value, with 4 decimals where 2 would hide which side of
    the target it is on."""
    if isinstance(v, (int, float)) and abs(v - target) < 0.01:
        return '%.4f' % v
    return fnum(v)


def target_lines(res):
    out = []
    for key, op, target, _ in TARGETS:
        v = res.get(key)
        m = met(v, op, target)
        out.append('%-30s %10s  target %s %-5s %s' % (key, ftarget(v, target), op, target,
                                                      {True: 'met', False: 'SHORT', None: 'n/a'}[m]))
    return out


def table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


# ------------------------------------------------------------------ sections

def sec_targets(res):
    rows = []
    for key, op, target, what in TARGETS:
        v = res.get(key)
        m = met(v, op, target)
        rows.append(['`%s`' % key, what, ftarget(v, target), '%s %s' % (op, target),
                     {True: 'met', False: '**short**', None: 'n/a'}[m]])
    md = ['## Targets', '', table(['key', 'what', 'this run', 'target', ''], rows), '']
    short = [(k, res.get(k)) for k, op, t, _ in TARGETS if met(res.get(k), op, t) is False]
    bounds = load_bounds()
    if short:
        md += ['## What bounds the short targets', '',
               'From profiling (callgrind counts are exact and repeat from run to run; `perf record -e '
               'cpu-clock` for time, as this VM exposes no hardware counters). Source: bench/BOUNDS.md.', '']
        for k, v in short:
            md += ['### `%s` = %s' % (k, ftarget(v, [t for kk, _, t, _ in TARGETS if kk == k][0])), '',
               bounds.get(k, 'Not profiled yet.'), '']
    others = [k for k in bounds if k not in {t[0] for t in TARGETS}]
    if others:
        md += ['## Other findings', '']
        for k in others:
            md += ['### %s' % k, '', bounds[k], '']
    return md


def sec_machine(res):
    m = res['meta']
    return ['## Machine and run', '', table(['', ''], [
        ['date', m.get('date')], ['CPU', '%s, nproc %s, %s GiB' % (m.get('cpu'), m.get('nproc'), m.get('mem_gib'))],
        ['kernel', '%s (%s)' % (m.get('kernel'), m.get('machine'))],
        ['uWSGI', '`%s` (%s), the same binary for both columns' % (m.get('uwsgi'), m.get('uwsgi_binary'))],
        ['Python', m.get('python')], ['compiler', m.get('cc')],
        ['peers', '%s; %s' % (m.get('memcached'), m.get('redis'))], ['valgrind', m.get('valgrind')],
        ['ucache', 'git %s' % m.get('git')],
        ['machine load', 'load average %s at the start, %s at the end; CPUs %.0f%% busy (%.0f%% stolen '
         'by the hypervisor) in the second before the run' % (
             ' '.join(m.get('loadavg_start', [])), ' '.join(m.get('loadavg_end', [])),
             100 * (m.get('cpu_busy_before') or 0), 100 * (m.get('cpu_steal_before') or 0))],
        ['run', '%s s, %s rep(s) per cell (best counts), %s s per cell%s' % (
            m.get('elapsed_s'), m.get('reps'), m.get('duration'), ', --quick' if m.get('quick') else '')],
    ] + [['re-run', '%s: %s' % (sec, why)] for sec, why in sorted(m.get('sections_rerun', {}).items())]), '']


def sec_capi(res):
    c = res['details'].get('capi')
    if not c:
        return ['## 1. C API', '', 'not run: %s' % res['errors'].get('capi', 'skipped'), '']
    rows = []
    for x in c['cells']:
        rows.append([CAPI_LABELS.get((x['group'], x['workload']), x['workload']), x['procs'],
                     fops(x['stock_ops_s']), fops(x['ucache_ops_s']), '**%s**' % fratio(x['ratio']),
                     fratio(x.get('ratio_best')), fratio(x.get('ratio_cpu')), '`%s`' % x['cache2']])
    md = ['## 1. C API (`uwsgi_cache_magic_get/set`, forked processes)', '',
          'build/bench/ucbench_plugin.so (bench/capi/ucbench.c) prefills the cache in the master, '
          'forks N processes pinned one per CPU that loop on the exported functions for %s s, and '
          'sums ops/s; 16-byte keys, 100-byte values (64 KiB rows: 65536; bitmap rows: 100..1000 '
          'bytes), 100k prefilled keys chosen at random; get returns a malloc\'d copy that the '
          'loop frees, as for every language plugin. %d reps; each rep runs stock and ucache back to '
          'back (alternating which goes first), and **ratio** is the median over reps of the two '
          'runs\' ratio, so a burst of load hits both sides of a pair; ops/s columns are the best '
          'rep of each, "ratio of bests" divides those. "per CPU-s" divides each process\'s ops by '
          'the CPU time it actually got (CLOCK_THREAD_CPUTIME_ID) instead of wall time, which '
          'removes other processes\' load but also hides time a process spends asleep on a lock. '
          'The benchmark processes got %.0f%% of a CPU each on average (lowest %.0f%%).' % (
              c['duration'], c['reps'], 100 * (c.get('cpu_share_mean') or 0),
              100 * (c.get('cpu_share_min') or 0)), '',
          table(['workload', 'procs', 'stock ops/s', 'ucache ops/s', 'ratio', 'ratio of bests',
                 'ratio per CPU-s', '--cache2'], rows), '',
          'Derived: ucache get scaling 2 processes / 1 = %s by wall time, %s per CPU-second '
          '(stock: %s by wall time).' % (
              fnum(res.get('capi_get_scaling_2p_over_1p')), fnum(res.get('capi_get_scaling_2p_over_1p_cpu')),
              fnum(res.get('capi_get_scaling_2p_over_1p_stock'))), '']
    if c.get('errors'):
        md += ['Cells with errors (excluded): ' + ', '.join('%s: %s' % kv for kv in c['errors'].items()), '']
    return md


def sec_python(res):
    p = res['details'].get('python')
    if not p:
        return ['## 2. Python', '', 'not run: %s' % res['errors'].get('python', 'skipped'), '']
    peers = res['details'].get('peers', {})
    header = ['workload', 'procs', 'stock', 'ucache', 'ratio']
    names = [n for n in ('memcached', 'redis') if peers.get(n, {}).get('cells')]
    header += names
    rows = []
    for x in p['cells']:
        row = [x['workload'], x['procs'], fops(x['stock_ops_s']), fops(x['ucache_ops_s']),
               '**%s**' % fratio(x['ratio'])]
        for n in names:
            pc = [y for y in peers[n]['cells'] if (y['workload'], y['procs']) == (x['workload'], x['procs'])]
            row.append(fops(pc[0]['ops_s']) if pc else 'n/a')
        rows.append(row)
    md = ['## 2. Python (`uwsgi.cache_get` / `cache_update` under `--pyrun`) and peers', '',
          'bench/pybench.py, the same loop for every backend: 100k prefilled 16-byte keys, '
          '100-byte values, `%s`; %d reps, ops/s of the best rep, ratio = median of the reps\' '
          'ratios as in section 1. memcached and Redis '
          'run the same Python loop over a unix socket through python3-pymemcache / python3-redis, '
          'best of 2, for context: they pay a socket round trip per op. On this virtual machine '
          'their 1-process rows are often slower than the 2-process ones, consistent with waking '
          'an idle vCPU for the server on each request.' % (p['cache2'], p['reps']),
          '', table(header, rows), '']
    for n in ('memcached', 'redis'):
        if peers.get(n, {}).get('error'):
            md += ['%s: not measured (%s)' % (n, peers[n]['error']), '']
    return md


def mem_label(row, sep=', '):
    """'100k items, blocksize 128, keysize 64, bitmap'."""
    n = row['items']
    parts = ['%s items' % ('%dM' % (n // 1000000) if n >= 1000000 and n % 1000000 == 0 else '%dk' % (n // 1000)),
             'blocksize %d' % row['blocksize']]
    if row.get('keysize', 2048) != 2048:
        parts.append('keysize %d' % row['keysize'])
    if row.get('bitmap'):
        parts.append('bitmap')
    return sep.join(parts)


def mem_rows(m):
    """The rows in bench/run.py's MEM_CASES order (JSON sorts the keys)."""
    return sorted(m.items(), key=lambda kv: (kv[1].get('order', 99), kv[0]))


def fmib(kb):
    return 'n/a' if kb is None else ('%.0f MiB' % (kb / 1024) if kb >= 102400 else '%.1f MiB' % (kb / 1024))


def sec_mem(res):
    m = res['details'].get('mem')
    if not m:
        return ['## 3. Memory', '', 'not run: %s' % res['errors'].get('mem', 'skipped'), '']
    rows = []
    for name, row in mem_rows(m):
        st, uc = row['stock'], row['ucache']
        rows.append([mem_label(row), '%.1f MiB' % (st['cache_rss_kb'] / 1024),
                     '%.1f MiB' % (uc['cache_rss_kb'] / 1024),
                     '%.0f' % st['bytes_per_item'], '%.0f' % uc['bytes_per_item'],
                     fnum(uc.get('beyond_key_value_bytes', uc.get('overhead_bytes')), 0),
                     fnum(uc.get('overhead_bytes'), 0), '**%s**' % fratio(row['ratio']),
                     fmib(st['virtual_kb']), fmib(uc['virtual_kb']),
                     '**%s**' % fnum(row.get('virtual_ratio'), 4), '`%s`' % row.get('cache2', '')])
    return ['## 3. Memory (resident and mapped shared memory of the cache)', '',
            'The master stores N items (12-byte keys, 100-byte values; keysize 2048 unless the row '
            'says otherwise, default hashsize 65536) and reads /proc/self/smaps. **Resident**: the sum '
            'of `Rss` over its shared mappings minus the same sum for a 1-item cache of the same '
            'geometry (what the items add), per item. blocksize 128 fits the values for both '
            'implementations (the headline ratio); 65536 is the stock default, where stock touches a '
            'page per item; the bitmap row has blocks = items. 1M-item rows use blocksize 128 only '
            '(stock would map 64 GiB) and are left out of --quick runs.', '',
            '**Mapped** (virtual): the sum of `Size` over the shared mappings minus the same sum for '
            'an instance with no cache at all (same command, no `--cache2`): every byte of address '
            'space the cache itself maps, its fixed parts included. For stock that is, all '
            '`MAP_SHARED | MAP_ANONYMOUS`: one mapping of items x (keysize + 88) bytes of keys plus '
            'blocks x blocksize of data plus the bitmap (blocks / 8, bitmap mode), the hashtable '
            '(hashsize x 8 = 512 KiB), the unused-blocks stack (items x 8) and its lock; bench/run.py '
            'checks the measured stock figure against the sizes of its own start-up line (within 1% '
            '+ 256 KiB) and fails the section if they differ. For ucache it is what its start-up line '
            'reports as "KiB mapped". Mapped is not memory in use: a page costs RAM only once touched '
            '(resident columns); it counts against `ulimit -v`, `vm.overcommit_memory=2` and VSZ '
            'alarms. **mapped ucache/stock** is the target\'s ratio (`mem_virtual_ratio_max`: the '
            'largest row). **ucache B beyond key + value**: ucache B/item less the 12 + 100 bytes '
            'the item holds; **overhead**: the same, except that a bitmap row\'s value counts as the '
            'blocks stock\'s accounting gives it (one 128-byte block, which holds the key too: '
            'bench/BOUNDS.md `mem_overhead_bytes_max`); `mem_overhead_bytes_max` is its largest row.', '',
            table(['cache', 'stock resident', 'ucache resident', 'stock B/item', 'ucache B/item',
                   'ucache B beyond key + value', 'overhead', 'stock/ucache', 'stock mapped', 'ucache mapped', 'mapped ucache/stock', '--cache2'],
                  rows), '']


def sec_sweep(res):
    s = res['details'].get('sweep')
    if not s:
        return ['## 4. Sweep stall', '', 'not run: %s' % res['errors'].get('sweep', 'skipped'), '']
    rows = []
    for kind in ('sweep', 'control'):
        for impl in ('stock', 'ucache'):
            d = s.get('%s_%s' % (kind, impl))
            if not d:
                continue
            rows.append([impl, 'sweeper every 1 s' if kind == 'sweep' else 'no sweeper',
                         d['gets'], d['freed_items'], '%.1f' % (d['p50_ns'] / 1e3),
                         '%.1f' % (d['p999_ns'] / 1e3), '%.0f' % (d['p9999_ns'] / 1e3),
                         '**%.2f**' % (d['max_ns'] / 1e6),
                         '%.2f' % (d.get('max_stall_ns', 0) / 1e6),
                         '%.2f' % (d.get('max_stall_nosteal_ns', 0) / 1e6),
                         d.get('steal_ticks', 0),
                         '%.2f' % (d.get('max_on_cpu_ns', 0) / 1e6),
                         '%.2f (%d)' % (d.get('max_slept_ns', 0) / 1e6, d.get('slow_slept', 0)),
                         '%.2f (%d)' % (d.get('max_preempted_ns', 0) / 1e6, d.get('slow_preempted', 0))])
    any_d = s.get('sweep_ucache') or s.get('sweep_stock')
    return ['## 4. Sweep stall (get latency in a worker while the master sweeps)', '',
            '`--master --processes 1 --cache-expire-freq 1`: the master stores %d items '
            '(12-byte keys, 100-byte values, blocksize 128, default hashsize), then gives every '
            '10th an expiry %d s later; worker 1 times every `uwsgi_cache_magic_get` of a random key '
            'for %.0f s (the clock read of one get ends the next one, so every nanosecond is some '
            'get\'s) while the master\'s sweeper (stock: `uwsgi_cache_start_sweepers`; ucache: its '
            'own) frees them. The control runs add `--cache-no-expire` (no sweeper thread): their '
            'maxima are the noise floor of the machine. Each get slower than %d µs is classified '
            'from the worker\'s context-switch counters (`getrusage(RUSAGE_THREAD)`): *blocked* '
            '(it slept: a lock wait), *preempted* (the scheduler ran another task on its CPU) or '
            '*on CPU* (neither; on a virtual machine this includes time the host took the vCPU '
            'away). *Stall* = latency minus the time the worker waited on a run queue '
            '(/proc/thread-self/schedstat): what is left is the cache\'s (a spin, a lock wait) or '
            'the hypervisor\'s (steal: the host ran something else on the vCPU). The guest sees '
            'steal only as 10 ms ticks of /proc/stat (all CPUs): "steal ticks" counts those seen '
            'during slow gets, and "max stall, no steal" is the worst stall during which not one '
            'tick of steal was recorded. Latencies in µs unless marked ms; (n) = number of such '
            'gets.' % (
                any_d['fill'], any_d['expires'], any_d['duration'],
                any_d.get('slow_threshold_ns', 50000) // 1000), '',
            table(['cache', 'run', 'gets', 'freed', 'p50', 'p99.9', 'p99.99', 'max ms',
                   'max stall ms', 'max stall, no steal, ms', 'steal ticks', 'max on CPU ms',
                   'max blocked ms (n)', 'max preempted ms (n)'], rows), '']


INSTR_LABELS = [('get_hit', 'get (hit)'), ('get_miss', 'get (miss)'), ('update', 'update'),
                ('lru', 'LRU-full insert'), ('update_64k', 'update 64 KiB')]


def fn_name(fn, lib):
    return '%s (%s)' % (STOCK_STATIC.get(fn, fn), lib)


def instr_misses(i):
    """The cache-simulation lines of section 5 (bench/run.py INSTR_CACHE_SIM)."""
    rows, fns = [], []
    for name, label in INSTR_LABELS:
        for impl in ('stock', 'ucache'):
            mi = i.get('%s_%s' % (name, impl), {}).get('misses')
            if mi:
                rows.append([label, impl, '%.2f' % mi['D1mr'], '%.2f' % mi['D1mw'],
                             '**%.2f**' % (mi['D1mr'] + mi['D1mw']), '%.2f' % (mi['DLmr'] + mi['DLmw'])])
                fns.append([label, impl, ', '.join('%s %.2f + %.2f' % (STOCK_STATIC.get(f, f), r, w)
                                                   for f, r, w in i['%s_%s' % (name, impl)].get('top_misses', []))])
    if not rows:
        return []
    return ['Cache lines per op (`--cache-sim=yes` with 32 KiB 8-way L1s and an 8 MiB 16-way last '
            'level, whatever the host has): D1 misses are the lines an op touched that were not in '
            'the first-level cache (a write miss is a line read for ownership); prefetches are not '
            'counted, so lines fetched ahead of use count the same. Target for the LRU-full insert: '
            'at most 4 (`instr_lru_d1_misses_per_insert_ucache`).', '',
            table(['op', 'cache', 'D1 read misses', 'D1 write misses', 'D1 lines', 'LL misses'], rows), '',
            table(['op', 'cache', 'D1 misses (read + write) per op by function'], fns), '']


def sec_instr(res):
    i = res['details'].get('instr')
    if not i or 'error' in i:
        return ['## 5. Instructions per op', '', 'not run: %s' % (res['errors'].get('instr') or
                                                                (i or {}).get('error', 'skipped')), '']
    rows = []
    for name, label in INSTR_LABELS:
        s, u = i.get('%s_stock' % name), i.get('%s_ucache' % name)
        if s and u:
            rows.append([label, '`%s`' % i['cases'][name]['cache2'], '%.0f' % s['per_op'], '%.0f' % u['per_op'],
                         '**%s**' % fratio(u['per_op'] / s['per_op']),
                         '%.0f' % s['own_per_op'], '%.0f' % u['own_per_op'],
                         fratio(u['own_per_op'] / s['own_per_op'] if s['own_per_op'] else None)])
    md = ['## 5. Instructions per op (callgrind)', '',
          '`valgrind --tool=callgrind --toggle-collect=ucb_instr_loop`: a fixed number of ops in the '
          'master after the prefill (100k keys; LRU: a full 65536-item cache; 64 KiB: 1000 keys), '
          'minus the same loop with no cache call (`noop`). Exact and repeatable whatever the '
          'machine load, but blind to cache misses and lock contention, which dominate the stock '
          'cache\'s wall time. "own" leaves out what both pay alike through the magic API: the '
          'malloc\'d copy (malloc, realloc, free), memcpy/memcmp, and the call from the loop.', '',
          table(['op', '--cache2', 'stock', 'ucache', 'ucache/stock', 'stock own', 'ucache own', 'own ratio'],
                rows), '']
    md += instr_misses(i)
    for name, label in INSTR_LABELS[:4]:
        cols = []
        for impl in ('stock', 'ucache'):
            x = i.get('%s_%s' % (name, impl), {})
            cols.append(['%s %.0f' % (fn_name(fn, lib), n) for fn, lib, n in x.get('top', [])[:10]])
        n = max(len(cols[0]), len(cols[1]))
        if n:
            md += ['Self instructions per op, %s, top functions:' % label, '',
                   table(['stock', 'ucache'], [[cols[0][k] if k < len(cols[0]) else '',
                                                cols[1][k] if k < len(cols[1]) else ''] for k in range(n)]), '']
    return md


def sec_hitratio(res):
    h = res['details'].get('hitratio')
    if not h:
        return ['## 6. Eviction quality', '', 'not run: %s' % res['errors'].get('hitratio', 'skipped'), '']
    rows = []
    for tr, label in (('zipf', 'Zipf(%s)' % h['alpha']), ('scan', 'Zipf + scans')):
        t = h['traces'][tr]
        st, up = t.get('uwsgi_stock', {}), t.get('uwsgi_ucache', {})
        rows.append([label, t['requests'], t['scan_requests'], '%.4f' % t['ucache']['hit_ratio'],
                     '%.4f' % t['exact']['hit_ratio'],
                     '**%s**' % fnum(res.get('lru_hit_ratio_%s_vs_exact' % tr), 3),
                     '%.4f' % st['hit_ratio'] if st else 'n/a', '%.4f' % up['hit_ratio'] if up else 'n/a',
                     fnum(res.get('lru_hit_ratio_%s_vs_stock' % tr), 3), t['ucache']['evictions']])
    return ['## 6. Eviction quality (purge_lru hit ratio against an exact LRU)', '',
            'bench/hitratio.c (built by bench/run.py against build/libucache.a, public API only) '
            'replays each trace as a read-through cache: get the key, and on a miss set it (%d-byte '
            'keys `k%%08u`, %d-byte values) on a fresh cache `items=%d,blocksize=%d,purge_lru=1` '
            '(%d usable items), then replays the same requests through an exact LRU of the same '
            'capacity (a map from key to node plus a doubly linked list, in the bench). Traces '
            '(bench/trace.h, seeded, identical on every run): %d draws from Zipf(%s) over %d keys '
            '(10x the capacity), ranks shuffled onto key ids; the scan trace inserts, after draw '
            '%d and then every %d draws, a burst of %d cold keys (%.1fx the capacity) requested once '
            'and never again. Hit ratio = hits / all requests (the scan\'s cold requests miss in '
            'every cache, so the ratios between caches are the same over the Zipf requests alone). '
            'The same traces also go through `uwsgi_cache_magic_get/set` under uwsgi '
            '(`--ucbench hitratio`, `--cache2 %s`): "stock" is the stock cache\'s purge_lru, and '
            '"ucache (uwsgi)" the engine behind the plugin (it differs from the first column only '
            'by the engine\'s own eviction choices). A count, not a speed: one process replaying a '
            'seeded trace, it repeats from run to run.' % (
                h['klen'], h['vlen'], h['items'], h['blocksize'], h['capacity'], h['draws'], h['alpha'],
                h['keys'], h['scan_every'] // 2, h['scan_every'], h['scan_len'],
                h['scan_len'] / float(h['capacity']),
                'name=bench,items=%d,blocksize=%d,purge_lru=1,ignore_full=1' % (h['items'], h['blocksize'])),
            '', table(['trace', 'requests', 'scan requests', 'ucache', 'exact LRU', 'ucache/exact',
                       'stock (uwsgi)', 'ucache (uwsgi)', 'ucache/stock (uwsgi)', 'ucache evictions'],
                      rows), ''] + hitratio_policies(res, h)


def hitratio_policies(res, h):
    """Section 6's policy table: the simulated references of bench/hitratio.c."""
    labels = [('exact', 'exact LRU'), ('clock', 'CLOCK'), ('sieve', 'SIEVE, one queue'),
              ('s3fifo', 'S3-FIFO'),
              ('sieve_part', 'SIEVE, %s queues by key hash' % h.get('sieve_part_queues', '?')),
              ('ucache', 'ucache (the engine: per-stripe SIEVE)')]
    if 'sieve' not in h['traces']['zipf']:
        return ['(no simulated policies in this results file)', '']
    rows = []
    for pol, label in labels:
        ratios, vs = [], []
        for tr in ('zipf', 'scan'):
            ratios.append(h['traces'][tr].get(pol, {}).get('hit_ratio'))
            # ucache's own keys predate the others: lru_hit_ratio_<trace>_vs_exact
            vs.append(1.0 if pol == 'exact' else res.get(
                'lru_hit_ratio_%s_vs_exact' % tr if pol == 'ucache' else 'lru_hit_ratio_%s_%s_vs_exact' % (tr, pol)))
        rows.append([label] + [fnum(x, 4) for x in ratios] + [fnum(x, 3) for x in vs])
    return ['The same requests through simulated eviction policies of the same capacity (%d keys; '
            'bench/hitratio.c, whose `--selftest` checks every simulator on hand-worked traces, '
            'on cycles and scans of known hits, against a naive LRU and for capacity before each '
            'run): CLOCK (second chance over a circular array), SIEVE (NSDI\'24) with one global '
            'queue, S3-FIFO (SOSP\'23: S %d keys, M and a ghost queue of %d, S to M when a key\'s '
            'counter is > %s) and SIEVE with one queue per engine stripe, keys placed by the '
            'engine\'s hash, which is what ucache runs: where its hits equal ucache\'s, the engine '
            'evicts exactly as modelled. Rules: the comments of bench/hitratio.c; findings: '
            '"eviction policy" under Other findings.' % (
                h['capacity'], h.get('s3fifo_small', 0), h['capacity'] - h.get('s3fifo_small', 0),
                h.get('s3fifo_threshold', '?')),
            '', table(['policy', 'Zipf', 'Zipf + scans', 'Zipf / exact LRU', 'Zipf + scans / exact LRU'],
                      rows), '']


PHP_LABELS = {'noop': 'loop alone (no call)', 'apcu': '`apcu_fetch`', 'uwsgi': '`uwsgi_cache_get`'}


def sec_php(res):
    p = res['details'].get('php')
    if not p:
        return ['## 7. PHP', '', 'not run: %s' % res['errors'].get('php', 'skipped'), '']
    rows = []
    for c in p['cells']:
        st, uc = c['stock'], c['ucache']
        r = res.get('php_ucache_vs_stock_%dp' % c['procs']) if c['backend'] == 'uwsgi' else None
        rows.append([PHP_LABELS.get(c['backend'], c['backend']), c['procs'], fops(st['ops_s']),
                     fops(uc['ops_s']), '**%s**' % fratio(r) if r else '',
                     '%.0f' % (1e9 * c['procs'] / uc['ops_s']) if uc['ops_s'] else 'n/a',
                     '%.0f' % uc['mem_per_op'] if uc.get('mem_per_op') is not None else '',
                     '%.1f' % (1000 * uc['minflt_per_op']) if uc.get('minflt_per_op') is not None else ''])
    md = ['## 7. PHP (`uwsgi_cache_get` against APCu\'s `apcu_fetch`)', '',
          'uwsgi\'s PHP plugin (Debian uwsgi-plugin-php, PHP 8.2 embed, php-apcu) with `--master '
          '--processes 2 --cpu-affinity 1 --http-socket ... --http-socket-modifier1 14 --php-docroot '
          'bench`, `--cache2 %s` and `--php-set apc.enabled=1,apc.shm_size=64M,memory_limit=-1`, once '
          'on the stock cache and once with `--plugin ./ucache_plugin.so`. One request stores %d keys '
          '(16 bytes, 100-byte values) in both APCu and the uwsgi cache and reads them back; then '
          'one request per process (two at once for the 2-process rows, each checked to land on '
          'its own worker, both starting at the same instant) runs bench/phpbench.php\'s loop for '
          '%s s: rounds of three timed phases of %s ms - the loop alone, `apcu_fetch`, '
          '`uwsgi_cache_get` (the last two swap places every round) - each walking the keys in a '
          'fixed shuffled order and checking every value. ops/s = calls / time spent in that '
          'function\'s phases, summed over the workers, best of %d reps. The phases share the drift '
          'of this host\'s speed (it varies by up to 2x from second to second), and are long enough '
          'that what one function leaves in the CPU caches does not tax the next (batches of 256 '
          'calls were not: stock\'s gets halved the APCu calls that followed them). '
          '"uwsgi_cache_get / apcu_fetch" divides two phases of one loop (median over reps); '
          'ucache / stock pairs the two instances of a rep (median over reps), and "normalised" '
          'divides the two instances\' in-loop ratios instead (APCu as the yardstick of each '
          'instance). "ns/op" (per process), "bytes left per call" (request memory the loop left '
          'allocated) and "faults per 1000 calls" are the ucache instance\'s.' % (
              p['cache2'], p['keys'], 2 * p['duration'], p.get('phase_ms', 25), p['reps']), '',
          table(['loop', 'procs', 'stock instance ops/s', 'ucache instance ops/s', 'ucache/stock',
                 'ns/op', 'bytes left per call', 'faults per 1000 calls'], rows), '',
          'uwsgi_cache_get / apcu_fetch, same loop: ucache %s (1 process), %s (2 processes); '
          'stock %s (1 process), %s (2 processes). ucache / stock normalised by APCu: %s (1 process), '
          '%s (2 processes).' % (
              fratio(res.get('php_ucache_vs_apcu_1p')), fratio(res.get('php_ucache_vs_apcu_2p')),
              fratio(res.get('php_stock_vs_apcu_1p')), fratio(res.get('php_stock_vs_apcu_2p')),
              fratio(res.get('php_ucache_vs_stock_1p_apcu_normalised')),
              fratio(res.get('php_ucache_vs_stock_2p_apcu_normalised'))), '']
    behind = [n for n in (1, 2) if (res.get('php_ucache_vs_apcu_%dp' % n) or 0) < 1]
    if behind:
        cell = {(c['backend'], c['procs']): c['ucache'] for c in p['cells']}
        ns = {b: 1e9 / cell[(b, 1)]['ops_s'] if cell.get((b, 1), {}).get('ops_s') else None
              for b in ('noop', 'apcu', 'uwsgi')}
        u1 = cell.get(('uwsgi', 1))
        md += ['**What bounds it (ucache behind APCu at %s).** The PHP plugin\'s wrapper, not the '
               'cache. Per call, `uwsgi_cache_get` (plugins/php/php_plugin.c, uwsgi 2.0.21) parses '
               'its arguments, gets a malloc\'d copy of the value from `uwsgi_cache_magic_get`, '
               '`estrndup()`s it into the request heap, `free()`s the malloc\'d copy, and '
               '`RETURN_STRING()` `strlen()`s the estrndup\'d buffer and copies it a third time into '
               'a zend_string; the estrndup\'d buffer is not freed before the request ends (%s bytes '
               'left per call, %s page faults per 1000 calls in this run). `apcu_fetch` copies once, '
               'from shared memory into the result. One op cost %s ns with the loop alone, %s ns with '
               '`apcu_fetch`, %s ns with `uwsgi_cache_get` on ucache (1 process). Callgrind puts the plugin\'s own part of the call (outside the magic '
               'get) at about four fifths of `apcu_fetch`\'s whole call (bench/BOUNDS.md, '
               '`php_ucache_vs_apcu_1p`): even a magic get that cost nothing would leave '
               '`uwsgi_cache_get` only about a quarter ahead in instructions. Clearly ahead needs a '
               'PHP binding that copies the value once (a fixed PHP plugin, or a PHP extension over '
               'libucache), outside what a cache plugin can change.' % (
                   ' and '.join('%d process%s' % (n, 'es' if n > 1 else '') for n in behind),
                   '%.0f' % u1['mem_per_op'] if u1 else 'n/a',
                   '%.1f' % (1000 * u1['minflt_per_op']) if u1 else 'n/a',
                   fnum(ns['noop'], 0), fnum(ns['apcu'], 0), fnum(ns['uwsgi'], 0)), '']
    return md


def sec_redis(res):
    d = res['details'].get('redis')
    if not d:
        return ['## 8. Near cache over Redis', '', 'not run: %s' % res['errors'].get('redis', 'skipped'), '']
    h, m, i = d['hit'], d['miss'], d['inval']
    rows = [['L1 hit: `uwsgi.cache_get`', fops(h['l1_hit_ops_s']), fops(h['redis_py_get_ops_s']),
             '**%s**' % fratio(h['ratio'])],
            ['miss: Redis read + L1 fill (us per get)', '%.1f' % m['near_miss_us'],
             '%.1f' % m['redis_py_get_us'], '**%s**' % fratio(m['ratio'])]]
    w = d.get('write')
    if w:
        rows.append(['write: `uwsgi.cache_update` (us per write; against redis-py `SET`)',
                     '%.1f' % w['near_write_us'], '%.1f' % w['redis_py_set_us'],
                     '**%s**' % fratio(w['ratio'])])
    return ['## 8. Near cache over Redis (bench/redis_app.py)', '',
            'One redis-server (unix socket), two uwsgi instances A and B (`--master --workers 1`, '
            '`--cache2 name=r,items=65536,blocksize=128,redis=unix:SOCK`). In B\'s worker, over the same '
            'socket: 100-byte values read by `uwsgi.cache_get` and by redis-py `GET` (python3-redis); '
            'a hit loops on one key for %s s, a miss reads each of %d keys written to Redis once, '
            'a write writes as many keys, each once (best of %d reps). Invalidation: %d rounds of "B holds the value in L1, B asks A over HTTP '
            'to `cache_update` it, B reads until it sees the new value", timed from the moment A\'s '
            '`cache_update` returned (Redis acknowledged; `time.perf_counter()` is the machine\'s '
            'CLOCK_MONOTONIC in both processes) to B\'s first read of the new value.' % (
                res['meta'].get('duration'), d['miss_keys'], len(d['hit_samples']), i['n']), '',
            table(['', 'near cache', 'redis-py GET', 'ratio'], rows), '',
            'Write acknowledged on A -> B serves the new value: p50 %.2f ms, p99 **%.2f ms**, max %.2f ms '
            '(%d rounds, %d not seen within 2 s); from before B\'s request to A: p50 %.2f ms, p99 %.2f ms.'
            % (i['p50_ms'], i['p99_ms'], i['max_ms'], i['n'], i['timeouts'],
               i.get('from_send_p50_ms', 0), i.get('from_send_p99_ms', 0)), '']


def sec_pyhelper(res):
    p = res['details'].get('pyhelper')
    if not p:
        return ['## 9. The Python package', '', 'not run: %s' % res['errors'].get('pyhelper', 'skipped'), '']
    ns = p['runs'][0]['ns_per_op'] if p.get('runs') else {}
    rows = [[k, '%.0f' % v] for k, v in sorted(ns.items())]
    ratios = [['`%s`' % k, fratio(p.get(k)) if p.get(k) else 'n/a'] for k in
              ('py_helper_get_overhead', 'py_get_or_set_hit_ratio', 'django_ucache_get_over_uwsgi',
               'django_memcached_get_over_ucache', 'django_redis_get_over_ucache')]
    return ['## 9. The Python package (bench/pyhelper.py)', '',
            'One uwsgi process with ucache (`--cache2 %s`), interleaved phases of hits on 1000 keys '
            '(16 bytes, 100-byte values): `uwsgi.cache_get`, `ucache.Cache(serializer=\'raw\').get`, '
            '`get_or_set` on a hit, and Django `cache.get` on `ucache.django.UcacheCache`, '
            'PyMemcacheCache and django-redis\'s RedisCache (memcached and Redis on unix sockets). '
            'Ratios: median over rounds of ns per op over the yardstick, best of %d reps. '
            '`django_*_over_ucache` > 1 means the peer\'s get takes that many times ucache\'s.'
            % (p['cache2'], p['reps']), '',
            table(['ratio', 'this run'], ratios), '', table(['phase (first rep)', 'ns per op'], rows), '']


def sec_engine(res):
    e = res['details'].get('engine')
    if not e:
        return []
    table_lines = [l for l in e.get('table', []) if not l.startswith('ucache engine')]
    return ['## Engine micro-benchmark (bench/engine.c, `--quick`)', '',
            'libucache alone against a private unlocked table (no uWSGI); see bench/README.md.', '',
            '```'] + table_lines + ['```', '']


def sec_commands(res):
    cmds = res['meta'].get('commands', [])
    cmds = dict(cmds) if isinstance(cmds, list) else cmds  # [[label, command], ...] in run order
    md = ['## Exact commands', '',
          'Run from the repository root by `make bench` (bench/run.py); `$TMP` is a fresh '
          '/tmp/ucbench-* directory. Each uwsgi line is the stock run; its ucache twin is the same '
          'command with `--plugin ./ucache_plugin.so` added before the benchmark plugin, e.g.:', '',
          '```']
    example = [c for l, c in cmds.items() if l.startswith('capi') and l.endswith('ucache')]
    md += example[:1] + ['```', '', '```']
    seen = set()
    for label, cmd in cmds.items():
        if label.endswith(' ucache') and label[:-7] + ' stock' in cmds:
            continue
        if cmd in seen:
            continue
        seen.add(cmd)
        md.append(cmd)
    md += ['```', '']
    return md


def headline(res):
    def g(k, f=fratio):
        return f(res.get(k))
    s_st, s_uc = res.get('sweep_max_latency_ms_stock'), res.get('sweep_max_latency_ms_ucache')
    return ['Headline (ucache / stock, same uwsgi binary, same run): C API get **%s** (1 process), '
            '**%s** (2 processes), update **%s**, LRU churn **%s**; Python `cache_get` **%s**; '
            '**%s** less resident memory per item at 100k items (%s vs %s bytes), **%s** at 1M items '
            'with a tuned keysize of 64 (%s vs %s bytes); max get latency '
            'while sweeping 1M items **%s ms** vs %s ms; instructions per get **%s**.' % (
                g('capi_get_1p_ratio'), g('capi_get_2p_ratio'), g('capi_update_1p_ratio'),
                g('capi_lru_churn_ratio'), g('py_get_1p_ratio'), g('mem_100k_ratio'),
                fnum(res.get('mem_100k_bytes_per_item_stock'), 0),
                fnum(res.get('mem_100k_bytes_per_item'), 0), g('mem_1m_bs128_ks64_ratio'),
                fnum(res.get('mem_1m_bs128_ks64_bytes_per_item_stock'), 0),
                fnum(res.get('mem_1m_bs128_ks64_bytes_per_item'), 0),
                fnum(s_uc, 3), fnum(s_st, 3), g('instr_get_ratio'))
            + ' Mapped (virtual) memory at most **%s** stock\'s over the memory rows; purge_lru hit '
            'ratio **%s** an exact LRU\'s (Zipf), **%s** with scans; PHP `uwsgi_cache_get` **%s** stock '
            '(1 process), **%s** APCu\'s `apcu_fetch`.' % (
                g('mem_virtual_ratio_max'), g('lru_hit_ratio_zipf_vs_exact'),
                g('lru_hit_ratio_scan_vs_exact'), g('php_ucache_vs_stock_1p'), g('php_ucache_vs_apcu_1p')), '']


# --------------------------------------------------------------------- chart

def write(path, rows):
    with open(path, 'w') as f:
        for r in rows:
            f.write(' '.join('"%s"' % c if isinstance(c, str) else ('%g' % c if c is not None else 'NaN')
                             for c in r) + '\n')


def chart(res, root, tmp, out_dir=None):
    """bench/results/chart.png: 2x2 gnuplot panels.  Returns an error or None."""
    if not shutil.which('gnuplot'):
        return 'gnuplot not installed'
    d = res['details']
    plots = []
    if d.get('capi'):
        by = {}
        for x in d['capi']['cells']:
            by.setdefault(CHART_LABELS.get((x['group'], x['workload']), x['workload']), {})[x['procs']] = x['ratio']
        write(os.path.join(tmp, 'capi.dat'), [[k, v.get(1), v.get(2)] for k, v in by.items()])
        plots.append("set title 'C API: ucache / stock ops/s (log; 1 = parity)'\n"
                     "set logscale y 2\nset yrange [0.125:64]\nset ytics ('1/8' 0.125,'1/4' 0.25,'1/2' 0.5,"
                     "1,2,4,8,16,32,64)\nset xrange [-0.6:%g]\nset xtics font ',7'\n"
                     "plot 'capi.dat' using 2:xtic(1) title '1 process' lc rgb '#4477aa', "
                     "'' using 3 title '2 processes' lc rgb '#66ccee', 1 notitle dt 2 lc rgb 'black'\n"
                     "unset logscale y\nset yrange [*:*]\nset ytics autofreq\nset xtics font ''\n"
                     % (len(by) - 0.4))
    if d.get('python'):
        peers = d.get('peers', {})
        rows = []
        for x in d['python']['cells']:
            if x['procs'] != 1:
                continue
            pr = []
            for n in ('memcached', 'redis'):
                pc = [y for y in peers.get(n, {}).get('cells', []) if (y['workload'], y['procs']) == (x['workload'], 1)]
                pr.append(pc[0]['ops_s'] / 1e3 if pc else None)
            rows.append([x['workload'].replace('_', ' '), (x['stock_ops_s'] or 0) / 1e3,
                         (x['ucache_ops_s'] or 0) / 1e3] + pr)
        write(os.path.join(tmp, 'py.dat'), rows)
        plots.append(("set title 'Python, 1 process: thousands of ops/s (log)'\nset logscale y\n"
                      "set xrange [-0.6:%g]\n" % (len(rows) - 0.4)) +
                     "plot 'py.dat' using 2:xtic(1) title 'stock' lc rgb '#bbbbbb', '' using 3 title 'ucache' "
                     "lc rgb '#4477aa', '' using 4 title 'memcached' lc rgb '#ccbb44', '' using 5 title 'redis' "
                     "lc rgb '#ee6677'\nunset logscale y\n")
    if d.get('mem'):
        rows = [[mem_label(r, '\\n').replace('blocksize', 'bs').replace(' items', ''),
                 r['stock']['bytes_per_item'], r['ucache']['bytes_per_item']] for _, r in mem_rows(d['mem'])]
        write(os.path.join(tmp, 'mem.dat'), rows)
        plots.append(("set title 'Resident bytes per item (log)'\nset logscale y\nset xrange [-0.6:%g]\n"
                      % (len(rows) - 0.4)) +
                     "plot 'mem.dat' using 2:xtic(1) title 'stock' lc rgb '#bbbbbb', '' using 3 title 'ucache' "
                     "lc rgb '#4477aa'\nunset logscale y\n")
    if d.get('sweep'):
        series, fill = [], 0
        for key, title, color, width in (('sweep_stock', 'stock, sweeping', '#999999', 1.5),
                                         ('control_ucache', 'ucache, no sweeper', '#66ccee', 1),
                                         ('sweep_ucache', 'ucache, sweeping', '#4477aa', 1.5)):
            s = d['sweep'].get(key)
            if not s or 'window_max_stall_ns' not in s:
                continue
            fill = s['fill']
            fn = key + '.dat'
            w = s['window_ms'] / 1e3
            write(os.path.join(tmp, fn), [[i * w, ns / 1e6]  # the last window is partial
                                          for i, ns in enumerate(s['window_max_stall_ns'][:-1]) if ns])
            series.append("'%s' using 1:2 with steps title '%s' lc rgb '%s' lw %g" % (fn, title, color, width))
        if series:
            plots.append("set title 'Sweeping %dk items: worst get stall per %d ms (ms, log)'\n"
                         "set xrange [*:*]\nset style data lines\nset logscale y\n"
                         "set xlabel 'seconds'\nplot %s\nunset logscale y\nunset xlabel\n"
                         % (fill // 1000, s['window_ms'], ', '.join(series)))
    if not plots:
        return 'nothing to plot'
    script = ("set terminal pngcairo size 1200,860 font 'DejaVu Sans,9'\n"
              "set output 'chart.png'\nset multiplot layout 2,2\n"
              "set style data histograms\nset style histogram clustered gap 1\n"
              "set style fill solid 0.85 border -1\nset key top left font ',8'\nset grid ytics\n"
              "set bmargin 4\n"
              + '\n'.join(plots) + "unset multiplot\n")
    with open(os.path.join(tmp, 'chart.gp'), 'w') as f:
        f.write(script)
    p = subprocess.run(['gnuplot', 'chart.gp'], cwd=tmp, capture_output=True, text=True)
    if p.returncode or not os.path.exists(os.path.join(tmp, 'chart.png')):
        return 'gnuplot failed: ' + p.stderr[-500:]
    dest = out_dir or os.path.join(root, 'bench', 'results')
    os.makedirs(dest, exist_ok=True)
    shutil.copy(os.path.join(tmp, 'chart.png'), os.path.join(dest, 'chart.png'))
    return None


def generate(res, root, tmp=None, out_dir=None):
    """Write BENCHMARKS.md and bench/results/chart.png under root, or both
    into out_dir (relative links then point next to the markdown)."""
    own_tmp = tmp is None
    if own_tmp:
        tmp = tempfile.mkdtemp(prefix='ucbench-report-', dir='/tmp')
    err = chart(res, root, tmp, out_dir)
    md = ['# Benchmarks: ucache against the stock uWSGI cache', '',
          'Generated by `make bench` (bench/run.py, ~7 minutes on 2 CPUs; never part of `make test`). '
          'Every ratio is ucache / stock (memory: stock / ucache), measured in the same run on '
          'the same uwsgi binary with identical command lines except `--plugin ./ucache_plugin.so`. '
          'Raw numbers: [bench/results/latest.json](bench/results/latest.json) (a dated copy sits '
          'next to it). Absolute ops/s on a shared 2-CPU virtual machine are noise; read ratios, '
          'and trust the instruction counts most.', '']
    md += headline(res)
    md += ['![ucache vs stock](%s)' % ('chart.png' if out_dir else 'bench/results/chart.png')
           if not err else '(chart not drawn: %s)' % err, '']
    if res.get('errors'):
        md += ['**Sections that failed in this run:** ' +
               '; '.join('%s: %s' % (k, v.splitlines()[0]) for k, v in res['errors'].items()), '']
    md += sec_targets(res) + sec_machine(res) + sec_capi(res) + sec_python(res) + sec_mem(res) \
        + sec_sweep(res) + sec_instr(res) + sec_hitratio(res) + sec_php(res) + sec_redis(res) \
        + sec_pyhelper(res) + http_bench.section(res) + sec_engine(res) \
        + sec_commands(res)
    with open(os.path.join(out_dir or root, 'BENCHMARKS.md'), 'w') as f:
        f.write('\n'.join(md))
    if own_tmp:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = None
    if '--out' in argv:
        i = argv.index('--out')
        out_dir = os.path.abspath(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    path = argv[0] if argv else os.path.join(root, 'bench', 'results', 'latest.json')
    with open(path) as f:
        res = json.load(f)
    generate(res, root, out_dir=out_dir)
    print('wrote %s' % os.path.join(out_dir or root, 'BENCHMARKS.md'))
    print('\n'.join(target_lines(res)))


if __name__ == '__main__':
    main(sys.argv[1:])
