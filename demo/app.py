"""app.py - the ucache demo: a slow page computation cached in ucache, and
the cache watching itself.

  /              a page that costs ~200 ms to compute: the first request for
                 a given ?n= misses and fills the cache, the next ones hit.
                 Next to it, the demo cache's counters and three charts of the
                 last minutes (hit ratio, memory, operations per second),
                 drawn in inline SVG by the page's own script (no external
                 asset), refreshed every second from /history.json.
  /stats.json    the "caches" section of the uWSGI stats server (live).
  /history.json  the samples behind the charts: [time, counter...] per second.
  /clear         empties the cache.

The samples: a uWSGI timer (1 s) runs sample() in one worker, which reads
the stats server and appends a row to the JSON list kept in the small
"demo-history" cache (the last 300 rows: 5 minutes), under uwsgi.lock() so
two workers never interleave their read-modify-write.  A second cache keeps
the sampler's own gets and sets out of the demo cache's counters.
"""
import html
import json
import os
import socket
import time

import uwsgi

CACHE = 'demo'
HISTORY = 'demo-history'
TTL = 30
SAMPLE_SIGNAL = 17
KEEP = 300  # samples, one a second: the charts' last 5 minutes
FIELDS = ('hits', 'miss', 'sets', 'deletes', 'items', 'max_items', 'bytes_used', 'bytes_mapped',
          'evictions', 'expired', 'full')
HERE = os.path.dirname(os.path.abspath(__file__))


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


def demo_stats():
    return next((c for c in cache_stats() if c.get('name') == CACHE), {})


def history():
    raw = uwsgi.cache_get('samples', HISTORY)
    return json.loads(raw) if raw else []


def sample(signum):
    c = demo_stats()
    if not c:
        return
    row = [round(time.time(), 3)] + [c.get(f, 0) for f in FIELDS]
    uwsgi.lock()
    try:
        rows = (history() + [row])[-KEEP:]
        uwsgi.cache_update('samples', json.dumps(rows, separators=(',', ':')), 0, HISTORY)
    finally:
        uwsgi.unlock()


uwsgi.register_signal(SAMPLE_SIGNAL, 'worker', sample)
uwsgi.add_timer(SAMPLE_SIGNAL, 1)

with open(os.path.join(HERE, 'watch.js')) as f:
    WATCH_JS = f.read()

STYLE = ('body{font-family:sans-serif;margin:1.5em;color:#222}'
         '.watch{display:flex;gap:2em;align-items:flex-start;flex-wrap:wrap}'
         'table{border-collapse:collapse}th,td{padding:1px 8px;text-align:left}'
         'td{text-align:right;font-family:monospace}tr:nth-child(odd){background:#f3f3f3}'
         '.charts{display:flex;flex-direction:column;gap:10px}'
         'svg{background:#fafafa;border:1px solid #ddd}'
         'svg text{font-size:11px;fill:#555}')


def counters_table(c):
    return ''.join('<tr><th>%s</th><td id="ctr-%s">%s</td></tr>'
                   % (html.escape(k), html.escape(k), html.escape(str(v))) for k, v in c.items())


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
    return ('<!doctype html><meta charset="utf-8"><title>ucache demo</title><style>%s</style>'
            '<h1>ucache demo</h1>'
            '<p>square(%d) = %s: <b>%s</b> in %.1f ms (worker %d)</p>'
            '<p><a href="/?n=%d">same n</a> | <a href="/?n=%d">next n</a> | '
            '<a href="/clear">clear</a> | <a href="/stats.json">stats.json</a></p>'
            '<h2>cache "%s" (uWSGI stats server)</h2>'
            '<div class="watch"><div class="charts" id="charts"></div><table>%s</table></div>'
            '<script>const FIELDS = %s;\n%s</script>'
            % (STYLE, n, value.decode(), outcome, ms, uwsgi.worker_id(), n, n + 1, CACHE,
               counters_table(demo_stats()), json.dumps(FIELDS), WATCH_JS))


def application(env, start_response):
    path = env.get('PATH_INFO', '/')
    ctype = 'text/html; charset=utf-8'
    if path == '/stats.json':
        body, ctype = json.dumps(cache_stats(), indent=2), 'application/json'
    elif path == '/history.json':
        body, ctype = json.dumps(history()), 'application/json'
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
