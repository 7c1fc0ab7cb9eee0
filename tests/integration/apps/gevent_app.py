"""gevent_app.py - single-flight waits in a gevent worker, for
tests/integration/test_gevent.py (uwsgi --gevent N, one process, caches
"g" and "pages").

Every request of a gevent worker runs on one thread: a wait that sleeps
the thread instead of the hub freezes all of them.  Each computation here
is cooperative (gevent.sleep) and first waits until an unrelated request,
/ping, has been answered while a second caller was waiting for it; then it
takes SLEEP seconds.  So with waits that yield, the computation runs once
and the ping is answered before it ends; with a wait that blocks the hub,
the ping is not answered until the wait gives up (wait / lock_timeout),
and the second caller computes too.

  /gos?key=K&api=cache|django   ucache.Cache('g').get_or_set(K, ...) or
      UcacheCache('g').get_or_set(K, ...); answers JSON {value}
  /page/...                     through ucache.wsgi.Accelerator ('pages'):
      a page cached 60 s, rendered as above; body "rendered #N"
  /ping?key=K                   answered by the app (through the
      Accelerator too: not cached); JSON {arrived, t}; once two callers of
      K have arrived it lets K's computation go on
  /num?key=K                    JSON {calls, end}: K's computations and
      when the last one ended (CLOCK_MONOTONIC, comparable to ping's t)
  /hold?key=K                   takes K's single-flight lock for 600 s and
      keeps it (the RPC ucache_flight_begin): JSON {state}
  /gos_wait?key=K               get_or_set(K, wait=3600): JSON {value,
      mode} (ucache._cooperative's mode of this worker)
The counters live in cache "g" (arrived:K, calls:K, pinged:K, end:K).
"""
import json
import os
import sys
import time
import urllib.parse

import gevent
import uwsgi

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), 'python'))

import ucache  # noqa: E402
from ucache.django import UcacheCache  # noqa: E402
from ucache.wsgi import Accelerator  # noqa: E402

SLEEP = 0.5
cache = ucache.Cache('g')
dj = UcacheCache('g', {})


def reply(start_response, obj):
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(obj).encode()]


def compute(key):
    """The slow computation of key: counted, gated on the ping, SLEEP s."""
    n = uwsgi.cache_inc('calls:' + key, 1, 0, 'g') and uwsgi.cache_num('calls:' + key, 'g')
    end = time.monotonic() + 10
    while not uwsgi.cache_exists('pinged:' + key, 'g') and time.monotonic() < end:
        gevent.sleep(0.01)
    gevent.sleep(SLEEP)
    uwsgi.cache_update('end:' + key, repr(time.monotonic()), 0, 'g')
    return n


def gos(q):
    key = q['key']
    uwsgi.cache_inc('arrived:' + key, 1, 0, 'g')
    api = cache if q.get('api', 'cache') == 'cache' else dj
    return {'value': 'v-%d' % api.get_or_set(key, lambda: compute(key), 60)}


def ping(q):
    key = q['key']
    arrived = uwsgi.cache_num('arrived:' + key, 'g')
    if arrived >= 2:
        uwsgi.cache_update('pinged:' + key, b'1', 0, 'g')
    return {'arrived': arrived, 't': time.monotonic()}


def num(q):
    key = q['key']
    end = uwsgi.cache_get('end:' + key, 'g')
    return {'calls': uwsgi.cache_num('calls:' + key, 'g'), 'end': float(end) if end else None}


def hold(q):
    return {'state': uwsgi.call(b'ucache_flight_begin', b'g', q['key'].encode(), b'0', b'600')[:1].decode()}


def gos_wait(q):
    from ucache import _cooperative
    return {'value': cache.get_or_set(q['key'], lambda: 'computed', 60, wait=3600), 'mode': _cooperative.mode()}


def pages(environ, start_response):
    path = environ['PATH_INFO']
    q = dict(urllib.parse.parse_qsl(environ.get('QUERY_STRING', '')))
    if path == '/ping':
        return reply(start_response, ping(q))
    environ['accelerator.cache_for'] = 60
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'rendered #%d' % compute(path)]


accelerated = Accelerator(pages, cache='pages')


def application(environ, start_response):
    path = environ['PATH_INFO']
    q = dict(urllib.parse.parse_qsl(environ.get('QUERY_STRING', '')))
    if path == '/gos':
        return reply(start_response, gos(q))
    if path in ('/num', '/hold', '/gos_wait'):
        return reply(start_response, {'/num': num, '/hold': hold, '/gos_wait': gos_wait}[path](q))
    if path.startswith('/page/'):
        uwsgi.cache_inc('arrived:' + path, 1, 0, 'g')
    return accelerated(environ, start_response)
