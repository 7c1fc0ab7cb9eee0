#!/usr/bin/env python3
"""bench/ab.py - two builds of the plugin, paired, on the C API cells of `make bench`.

`make bench` compares ucache with stock; a change inside ucache (a layout,
a lock) wants ucache against ucache: the same uwsgi, the same ucbench
plugin, the same cells (run.py's CAPI_GROUPS), two ucache_plugin.so files
run in turn, A B B A ..., so that a burst of load on this shared machine
hits both halves of a pair.  Prints, per cell and process count, each
build's median ops per CPU-second and the median of the pair-by-pair
ratios A/B (the figure to quote).

    /usr/bin/python3 bench/ab.py A.so B.so [--cells default:get_hit,lru:lru] [--reps 6] [--procs 1]

Build B from another commit with `git worktree add /tmp/b REV && make -C
/tmp/b ucache_plugin.so`.  Cells are GROUP:WORKLOAD of CAPI_GROUPS (all by
default).  1-second runs: ~2 s a run with the prefill.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import CAPI_GROUPS, UCBENCH_SO, UWSGI  # noqa: E402


def cells_of(spec):
    groups = {g: (cache2, opts, wls) for g, cache2, opts, wls in CAPI_GROUPS}
    if not spec:
        return [(g, wl) for g, (_, _, wls) in groups.items() for wl in wls]
    out = []
    for item in spec.split(','):
        g, _, wl = item.partition(':')
        if g not in groups or wl not in groups[g][2]:
            sys.exit('ab.py: no cell %r (GROUP:WORKLOAD of bench/run.py CAPI_GROUPS)' % item)
        out.append((g, wl))
    return out


def run_once(so, group, wl, procs, out):
    cache2, opts, _ = next((c, o, w) for g, c, o, w in CAPI_GROUPS if g == group)
    cmd = [UWSGI, '--plugin', so, '--plugin', UCBENCH_SO, '--cache2', cache2, '--ucbench', 'capi',
           '--ucbench-workload', wl, '--ucbench-procs', str(procs), '--ucbench-duration', '1',
           '--ucbench-out', out] + opts
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=True)
    with open(out) as f:
        runs = json.load(f)['runs']
    if any(r['failed'] or r['errors'] for r in runs):
        sys.exit('ab.py: %s %s/%s: errors in the run' % (so, group, wl))
    return runs[0]['ops_per_cpu_s']


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('a')
    ap.add_argument('b')
    ap.add_argument('--cells', default='')
    ap.add_argument('--reps', type=int, default=6)
    ap.add_argument('--procs', type=int, default=1)
    a = ap.parse_args()
    for so in (a.a, a.b, UCBENCH_SO):
        if not os.path.exists(so):
            sys.exit('ab.py: %s: no such file (make, and make bench builds %s)' % (so, UCBENCH_SO))
    out = os.path.join(tempfile.mkdtemp(prefix='ucache-ab-'), 'capi.json')
    for group, wl in cells_of(a.cells):
        xs, ys = [], []
        for rep in range(a.reps):
            first, second = (a.a, a.b) if rep % 2 == 0 else (a.b, a.a)
            r1 = run_once(first, group, wl, a.procs, out)
            r2 = run_once(second, group, wl, a.procs, out)
            x, y = (r1, r2) if first == a.a else (r2, r1)
            xs.append(x)
            ys.append(y)
        ratio = statistics.median(x / y for x, y in zip(xs, ys))
        print('%-8s %-8s %dp  A %.2fM  B %.2fM ops per CPU-s (medians of %d)  A/B paired median %.3f'
              % (group, wl, a.procs, statistics.median(xs) / 1e6, statistics.median(ys) / 1e6, a.reps, ratio),
              flush=True)


if __name__ == '__main__':
    main()
