"""http_app.py - the app of bench/http_bench.py (the 'http' section).

  /page/...   an 8 KiB page behind ucache.wsgi.Accelerator (cache_for 3600,
              tag "page"): rendered once, then hits (nginx direct, or the
              middleware serving it from Python)
  /raw/...    the same 8 KiB page from the bare app (no middleware: the
              uncached row, and what nginx's uwsgi_cache stores)
  /_renders   how many times /page/ was rendered (counters cache)
  /_inval?n=N fill the 'inval' cache with N entries tagged "hot" (plus one
              untagged probe key), then invalidate "hot" once while a thread
              times cache_get of the probe; JSON: invalidate_ms, the gets'
              max / p99 during it and before, and how many of 1000 sampled
              tagged keys are still served afterwards (must be 0)
  /_burst?secs=S&rate=R  invalidate tags of the 'pages' cache at R per
              second for S seconds (tags burst0..burst999, which the page
              does not carry: it stays a hit), while bench/http_bench.py
              measures the module hit's latency; JSON: invalidations, secs,
              rate (the one reached)
"""
import json
import threading
import time

import uwsgi
from ucache.wsgi import Accelerator, invalidate_tags

BODY = (b'<html><body>' + b'x' * 8192)[:8192 - 14] + b'</body></html>'


def page(environ, start_response):
    uwsgi.cache_inc('renders', 1, 0, 'counters')
    environ['accelerator.cache_for'] = 3600
    environ['accelerator.tags'] = ['page']
    start_response('200 OK', [('Content-Type', 'text/html')])
    return [BODY]


def raw(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/html'), ('Content-Length', str(len(BODY)))])
    return [BODY]


def fill(n):
    since = uwsgi.call(b'ucache_tags_now', b'inval')
    head = uwsgi.call(b'ucache_tags_head', b'inval', since, b'hot')
    for i in range(n):
        uwsgi.cache_update('k%d' % i, head + b'v' * 64, 0, 'inval')
    uwsgi.cache_update('probe', b'v' * 64, 0, 'inval')


def timed_gets(stop, out):
    while not stop.is_set():
        t = time.perf_counter()
        uwsgi.cache_get('probe', 'inval')
        out.append((t, time.perf_counter() - t))


def inval(n):
    fill(n)
    assert uwsgi.cache_get('k0', 'inval'), 'fill failed'
    samples, stop = [], threading.Event()
    th = threading.Thread(target=timed_gets, args=(stop, samples))
    th.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    invalidate_tags('inval', ['hot'])
    t1 = time.perf_counter()
    time.sleep(0.2)
    stop.set()
    th.join()
    before = sorted(d for t, d in samples if t < t0)
    during = [d for t, d in samples if t0 - 0.01 <= t <= t1 + 0.01]
    served = sum(1 for i in range(0, n, max(1, n // 1000)) if uwsgi.cache_get('k%d' % i, 'inval'))

    def pct(xs, q):
        return xs[min(len(xs) - 1, int(len(xs) * q))] * 1e6 if xs else None
    return {'entries': n, 'invalidate_ms': (t1 - t0) * 1e3, 'stale_served_of_1000': served,
            'get_max_us_during': max(during) * 1e6 if during else None, 'gets_during': len(during),
            'get_p99_us_before': pct(before, 0.99), 'get_max_us_before': pct(before, 1.0)}


def burst(secs, rate):
    n, t0 = 0, time.perf_counter()
    while True:
        now = time.perf_counter() - t0
        if now >= secs:
            break
        if n < now * rate:
            invalidate_tags('pages', ['burst%d' % (n % 1000)])
            n += 1
        else:
            time.sleep(min(0.001, n / rate - now))
    return {'invalidations': n, 'secs': now, 'rate': n / now}


def query(environ):
    return dict(kv.split('=', 1) for kv in environ['QUERY_STRING'].split('&') if '=' in kv)


accelerated = Accelerator(page, cache='pages')


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path.startswith('/raw/'):
        return raw(environ, start_response)
    if path == '/_renders':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(uwsgi.cache_num('renders', 'counters') or 0).encode()]
    if path == '/_inval':
        n = int(environ['QUERY_STRING'].split('=')[1])
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps(inval(n)).encode()]
    if path == '/_burst':
        q = query(environ)
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [json.dumps(burst(float(q['secs']), float(q['rate']))).encode()]
    return accelerated(environ, start_response)
