"""app.py - the ucache demo: a slow page computation cached in ucache.

  /            a page that costs ~200 ms to compute: the first request for a
               given ?n= misses and fills the cache, the next ones hit.
  /stats.json  the "caches" section of the uWSGI stats server (live).
  /clear       empties the cache.
"""
import html
import json
import os
import socket
import time

import uwsgi

CACHE = 'demo'
TTL = 30


def slow_square(n):
    time.sleep(0.2)
    return str(n * n).encode()


def cache_stats():
    port = int(os.environ.get('UCACHE_DEMO_STATS', '9191'))
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=2) as s:
            data = b''.join(iter(lambda: s.recv(65536), b''))
        return json.loads(data).get('caches', [])
    except (OSError, ValueError):
        return []


def page(n):
    t0 = time.monotonic()
    key = 'square:%d' % n
    value = uwsgi.cache_get(key, CACHE)
    outcome = 'HIT'
    if value is None:
        outcome = 'MISS'
        value = slow_square(n)
        uwsgi.cache_set(key, value, TTL, CACHE)
    ms = (time.monotonic() - t0) * 1000
    rows = ''.join('<tr><th>%s</th><td>%s</td></tr>' % (html.escape(k), html.escape(str(v)))
                   for c in cache_stats() for k, v in c.items())
    return ('<!doctype html><title>ucache demo</title><h1>ucache demo</h1>'
            '<p>square(%d) = %s: <b>%s</b> in %.1f ms (worker %d)</p>'
            '<p><a href="/?n=%d">same n</a> | <a href="/?n=%d">next n</a> | '
            '<a href="/clear">clear</a> | <a href="/stats.json">stats.json</a></p>'
            '<h2>cache "%s" (uWSGI stats server)</h2><table>%s</table>'
            % (n, value.decode(), outcome, ms, uwsgi.worker_id(), n, n + 1, CACHE, rows))


def application(env, start_response):
    path = env.get('PATH_INFO', '/')
    ctype = 'text/html; charset=utf-8'
    if path == '/stats.json':
        body, ctype = json.dumps(cache_stats(), indent=2), 'application/json'
    elif path == '/clear':
        uwsgi.cache_clear(CACHE)
        body = '<p>cleared. <a href="/">back</a></p>'
    else:
        qs = dict(p.split('=', 1) for p in env.get('QUERY_STRING', '').split('&') if '=' in p)
        try:
            n = int(qs.get('n', '7'))
        except ValueError:
            n = 7
        body = page(n)
    out = body.encode()
    start_response('200 OK', [('Content-Type', ctype), ('Content-Length', str(len(out)))])
    return [out]
