"""flight_app.py - processes racing on one key, for test_python_atomic.py
(cache "fl"; run with --processes 4).

  /gos?key=K&sleep=S&wait=W&n=N   ucache.Cache('fl').get_or_set(K, compute,
      wait=W), each request first counted in "arrived:K": compute counts
      its calls in "calls:K", publishes its pid in "computer:K", and on
      the first call only waits (10 s at most) until N requests have
      arrived, so that they all race, then sleeps S seconds; it returns
      "v-<pid>".  Answers JSON {value, pid, elapsed}.
  /cas?rounds=N               N increments of the pickled int "ctr" with
      gets + cas; answers JSON {retries}.
  /djincr?n=N                 N UcacheCache.incr("dj") calls; JSON {last}.
Other paths go to ops_app.py."""
import json
import os
import sys
import time
import urllib.parse

import uwsgi

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), 'python'))

import ops_app  # noqa: E402
import ucache  # noqa: E402
from ucache.django import UcacheCache  # noqa: E402

cache = ucache.Cache('fl')
dj = UcacheCache('fl', {})


def gos(q):
    key, sleep, wait = q['key'], float(q.get('sleep', 0)), float(q.get('wait', 10))
    uwsgi.cache_inc('arrived:' + key, 1, 0, 'fl')

    def compute():
        n = uwsgi.cache_inc('calls:' + key, 1, 0, 'fl') and uwsgi.cache_num('calls:' + key, 'fl')
        uwsgi.cache_update('computer:' + key, str(os.getpid()), 0, 'fl')
        if n == 1:
            end = time.monotonic() + 10
            while uwsgi.cache_num('arrived:' + key, 'fl') < int(q.get('n', 1)) and time.monotonic() < end:
                time.sleep(0.01)
            time.sleep(sleep)
        return 'v-%d' % os.getpid()
    t0 = time.monotonic()
    value = cache.get_or_set(key, compute, timeout=0, wait=wait)
    return {'value': value, 'pid': os.getpid(), 'elapsed': time.monotonic() - t0}


def cas(q):
    retries = 0
    for _ in range(int(q['rounds'])):
        while True:
            v, ver = cache.gets('ctr')
            if cache.cas('ctr', v + 1, ver):
                break
            retries += 1
    return {'retries': retries}


def djincr(q):
    last = None
    for _ in range(int(q['n'])):
        last = dj.incr('dj')
    return {'last': last}


def application(env, start_response):
    path = env.get('PATH_INFO', '')
    q = dict(urllib.parse.parse_qsl(env.get('QUERY_STRING', '')))
    fn = {'/gos': gos, '/cas': cas, '/djincr': djincr}.get(path)
    if fn is None:
        return ops_app.application(env, start_response)
    out = json.dumps(fn(q)).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [out]
