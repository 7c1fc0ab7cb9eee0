"""accel_app.py - a WSGI app behind ucache.wsgi.Accelerator for
tests/integration/test_http_cache.py.

GET /any/path?query renders a page whose body names the URL and how many
times the app rendered it ("render #N"); query parameters shape the reply:
  cache_for=S   environ['accelerator.cache_for']     tags=a,b   accelerator.tags
  status=401    the status line ("203 Non-Authoritative Information", ...)
  cookie=1      a Set-Cookie header       cc=private   a Cache-Control header
  vary=H        a Vary header             sleep=S      render for S seconds
  size=N        pad the body to N bytes
  crash=1       the first render of this URL kills its worker (SIGKILL) while
                it holds the render lock
The render count lives in the 'counters' cache (cache_inc: every worker
and thread sees it).  Control endpoints (never cached, POST or cache_for 0):
  /_calls?u=URI        how many times URI was rendered
  POST /_invalidate    body "a,b": environ['accelerator'].invalidate_tag
  POST /_invalidate_fn body "a,b": ucache.wsgi.invalidate_tags(cache, ...)
The cache name comes from ACCEL_CACHE (default "pages"); ACCEL_SWR sets
stale_while_revalidate.
"""
import os
import signal
import time
from urllib.parse import parse_qs

import uwsgi
from ucache.wsgi import Accelerator, invalidate_tags, request_uri

CACHE = os.environ.get('ACCEL_CACHE', 'pages')


def counter_key(uri):
    return 'calls:' + uri


def app(environ, start_response):
    path = environ['PATH_INFO']
    method = environ['REQUEST_METHOD']
    if path == '/_calls':
        uri = parse_qs(environ.get('QUERY_STRING', ''))['u'][0]
        n = uwsgi.cache_num(counter_key(uri), 'counters') if uwsgi.cache_exists(counter_key(uri), 'counters') else 0
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(n).encode()]
    if path in ('/_invalidate', '/_invalidate_fn') and method == 'POST':
        tags = environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0)).decode().split(',')
        if path == '/_invalidate':
            environ['accelerator'].invalidate_tag(tags)
        else:
            invalidate_tags(CACHE, tags)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'ok']
    uri = request_uri(environ)
    # read any body: a socket closed with unread bytes is reset, and the
    # client can lose the reply (ECONNRESET while it reads)
    environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
    q = {k: v[0] for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}
    if q.get('sleep'):
        time.sleep(float(q['sleep']))
    if q.get('crash') and uwsgi.cache_set('crashed:' + uri, b'1', 0, 'counters'):
        os.kill(os.getpid(), signal.SIGKILL)
    uwsgi.cache_inc(counter_key(uri), 1, 0, 'counters')
    n = uwsgi.cache_num(counter_key(uri), 'counters')
    headers = [('Content-Type', 'text/plain')]
    if q.get('cookie'):
        headers.append(('Set-Cookie', 'session=1'))
    if q.get('cc'):
        headers.append(('Cache-Control', q['cc']))
    if q.get('vary'):
        headers.append(('Vary', q['vary']))
    if q.get('cache_for'):
        environ['accelerator.cache_for'] = int(q['cache_for'])
    if q.get('tags'):
        environ['accelerator.tags'] = q['tags'].split(',')
    body = ('%s %s render #%d ae=%s' % (method, uri, n, environ.get('HTTP_ACCEPT_ENCODING', ''))).encode()
    if q.get('size'):
        body = body.ljust(int(q['size']), b'.')
    start_response(q.get('status', '200 OK'), headers)
    return [body]


application = Accelerator(app, cache=CACHE,
                          stale_while_revalidate=int(os.environ.get('ACCEL_SWR', '0')))
