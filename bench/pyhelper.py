"""bench/pyhelper.py - what the Python package costs on top of uWSGI's own
API (run by bench/run.py's "pyhelper" section):

  uwsgi --plugin python3 --plugin ./ucache_plugin.so --cache2 name=bench,... \\
        --pyrun bench/pyhelper.py --pyargv "--out F --duration S [--memcached SOCK] [--redis SOCK]"

One process, one loop, interleaved phases so that every phase of a round
meets the same drift of the machine's speed: each round times PHASE_OPS
hits of each function below on the same prefilled keys (16 bytes, 100-byte
values), in an order that rotates from round to round:

  uwsgi      uwsgi.cache_get(key, 'bench')                 (the yardstick)
  helper     ucache.Cache('bench', serializer='raw').get(key)
  gos        ucache.Cache('bench', serializer='raw').get_or_set(key, cb)
  dj_ucache  Django cache.get(key) on ucache.django.UcacheCache
  dj_memcached / dj_redis  the same on Django's PyMemcacheCache and on
             django-redis's RedisCache, over unix sockets (when given)

A ratio is the median over rounds of (ns per op of a function / ns per op
of the yardstick, or of dj_ucache for the Django peers).  Every value read
is checked.  JSON to --out."""
import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'python'))

import uwsgi  # noqa: E402

import ucache  # noqa: E402

KEYS = 1000
PHASE_OPS = 20000


def django_caches(args):
    import django
    from django.conf import settings
    caches = {'dj_ucache': {'BACKEND': 'ucache.django.UcacheCache', 'LOCATION': 'bench'}}
    if args.memcached:
        caches['dj_memcached'] = {'BACKEND': 'django.core.cache.backends.memcached.PyMemcacheCache',
                                  'LOCATION': 'unix:' + args.memcached}
    if args.redis:
        caches['dj_redis'] = {'BACKEND': 'django_redis.cache.RedisCache',
                              'LOCATION': 'unix://' + args.redis}
    settings.configure(CACHES=dict(caches, default=caches['dj_ucache']), INSTALLED_APPS=[], USE_TZ=True)
    django.setup()
    from django.core.cache import caches as dc
    return {name: dc[name] for name in caches}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--duration', type=float, default=1.0)
    ap.add_argument('--memcached')
    ap.add_argument('--redis')
    args = ap.parse_args(sys.argv[1:])  # --pyargv
    keys = ['k%015d' % i for i in range(KEYS)]
    val = b'v' * 100
    for k in keys:
        uwsgi.cache_update(k, val, 0, 'bench')
    helper = ucache.Cache('bench', serializer='raw')
    cb = lambda: val  # noqa: E731  (never called: every key is a hit)
    dj = django_caches(args)
    for c in dj.values():
        c.set_many({k: val for k in keys}, timeout=None)
    cg = uwsgi.cache_get
    hget, hgos = helper.get, helper.get_or_set

    def loop_uwsgi(ks):
        for k in ks:
            if cg(k, 'bench') is None:
                raise SystemExit('uwsgi.cache_get missed')

    def loop_helper(ks):
        for k in ks:
            if hget(k) is None:
                raise SystemExit('Cache.get missed')

    def loop_gos(ks):
        for k in ks:
            if hgos(k, cb) is None:
                raise SystemExit('get_or_set missed')

    def loop_django(c):
        g = c.get

        def run(ks):
            for k in ks:
                if g(k) != val:
                    raise SystemExit('django get missed')
        return run
    phases = [('uwsgi', loop_uwsgi), ('helper', loop_helper), ('gos', loop_gos)]
    phases += [(name, loop_django(c)) for name, c in dj.items()]
    seq = (keys * (PHASE_OPS // KEYS + 1))[:PHASE_OPS]
    peers_ops = PHASE_OPS // 10  # network round trips: a shorter phase, same ns/op
    ns = {name: [] for name, _ in phases}
    end, rnd = time.monotonic() + max(args.duration, 0.2) * len(phases), 0
    while time.monotonic() < end or rnd < 3:
        order = phases[rnd % len(phases):] + phases[:rnd % len(phases)]
        for name, fn in order:
            ks = seq[:peers_ops] if name in ('dj_memcached', 'dj_redis') else seq
            t0 = time.perf_counter_ns()
            fn(ks)
            ns[name].append((time.perf_counter_ns() - t0) / len(ks))
        rnd += 1

    def ratio_of(a, b):
        return statistics.median(x / y for x, y in zip(ns[a], ns[b]))
    out = {'rounds': rnd, 'phase_ops': PHASE_OPS, 'ns_per_op': {k: statistics.median(v) for k, v in ns.items()},
           'py_helper_get_overhead': ratio_of('helper', 'uwsgi'),
           'py_get_or_set_hit_ratio': ratio_of('gos', 'uwsgi'),
           'django_ucache_get_over_uwsgi': ratio_of('dj_ucache', 'uwsgi')}
    for peer in ('dj_memcached', 'dj_redis'):
        if peer in ns:  # > 1: the peer's get takes that many times ucache's
            out['django_%s_get_over_ucache' % peer[3:]] = ratio_of(peer, 'dj_ucache')
    with open(args.out + '.tmp', 'w') as f:
        json.dump(out, f)
    os.rename(args.out + '.tmp', args.out)


main()
