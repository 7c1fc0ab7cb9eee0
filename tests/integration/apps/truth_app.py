"""truth_app.py - what the stats' hits/miss count per application
operation, for test_truth.py.  Caches: "m" (measured), "aux" (the
test's own bookkeeping: never measured), "pages" (cache_page).

POST /py       body: JSON list of [target, method, arg...]: target "cache"
               (ucache.Cache('m', serializer='raw')) or "dj" (the Django
               backend on "m"); results as JSON ({"exc": "Name: message"}).
GET  /gos?key=K&n=N[&lib=cache]   Django's (or ucache.Cache's) get_or_set(K) on "m" whose compute waits
               (5 s at most) until N requests have arrived (counted in "aux")
               and then 0.3 s, so that N callers race; JSON {value}.
GET  /page/... a Django view under cache_page(60) on the "pages" cache.
GET  /accel/...  an Accelerator (cache "pages", X-Ucache on, bypass
               cookie "sessionid") around an app sending Vary: Cookie when
               ?vary=cookie, caching ?cache_for=S seconds.
GET  /typo?op=set|get|get_or_set  ucache.Cache('mycahce') (no such cache).
GET  /remote_incr?addr=HOST:PORT  ucache.Cache('m@HOST:PORT').incr_value('n').
Other paths go to ops_app.py.
"""
import json
import logging
import os
import sys
import time
import urllib.parse

import uwsgi

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), 'python'))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

settings.configure(
    CACHES={'default': {'BACKEND': 'ucache.django.UcacheCache', 'LOCATION': 'pages'},
            'm': {'BACKEND': 'ucache.django.UcacheCache', 'LOCATION': 'm'},
            'typo': {'BACKEND': 'ucache.django.UcacheCache', 'LOCATION': 'mycahce'}},
    INSTALLED_APPS=[], USE_TZ=True, ALLOWED_HOSTS=['*'], CACHE_MIDDLEWARE_SECONDS=60,
)
django.setup()

from django.core.cache import caches  # noqa: E402
from django.core.handlers.wsgi import WSGIRequest  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.views.decorators.cache import cache_page  # noqa: E402

import ops_app  # noqa: E402
import ucache  # noqa: E402
from ucache.wsgi import Accelerator  # noqa: E402

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format='%(name)s %(levelname)s %(message)s')
cache = ucache.Cache('m', serializer='raw')


def run(op):
    target, name, args = op[0], op[1], op[2:]
    obj = cache if target == 'cache' else caches['m']
    args = [(lambda: b'computed') if a == '__cb__' else a for a in args]
    try:
        r = getattr(obj, name)(*args)
        return r.decode('latin-1') if isinstance(r, bytes) else r
    except Exception as e:
        return {'exc': '%s: %s' % (type(e).__name__, e)}


def gos(q):
    key, n = q['key'], int(q.get('n', 1))
    uwsgi.cache_inc('arrived:' + key, 1, 0, 'aux')

    def compute():
        end = time.monotonic() + 5
        while uwsgi.cache_num('arrived:' + key, 'aux') < n and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.3)
        return 'v-%d' % os.getpid()
    if q.get('lib') == 'cache':
        return {'value': cache.get_or_set(key, lambda: compute().encode(), 60).decode()}
    return {'value': caches['m'].get_or_set(key, compute, 60)}


@cache_page(60)
def page_view(request):
    return HttpResponse('page %s' % request.path)


def accel_inner(env, start_response):
    q = dict(urllib.parse.parse_qsl(env.get('QUERY_STRING', '')))
    headers = [('Content-Type', 'text/plain')]
    if q.get('vary'):
        headers.append(('Vary', q['vary']))
    if q.get('cache_for'):
        env['accelerator.cache_for'] = int(q['cache_for'])
    start_response('200 OK', headers)
    return [('rendered %s' % env['PATH_INFO']).encode()]


accel = Accelerator(accel_inner, cache='pages', status_header=True, bypass_cookies=('sessionid',))


def typo(q):
    try:
        c = ucache.Cache('mycahce')
        return {'result': getattr(c, q['op'])('k', *({'set': ['v'], 'get_or_set': [lambda: 'v']}.get(q['op'], [])))}
    except Exception as e:
        return {'exc': '%s: %s' % (type(e).__name__, e)}


def typo_django(q):
    try:
        c = caches['typo']
        return {'result': getattr(c, q['op'])('k', *({'set': ['v'], 'get_or_set': ['v']}.get(q['op'], [])))}
    except Exception as e:
        return {'exc': '%s: %s' % (type(e).__name__, e)}


def remote_incr(q):
    try:
        return {'result': ucache.Cache('m@' + q['addr']).incr_value('n', 1, initial=0)}
    except Exception as e:
        return {'exc': '%s: %s' % (type(e).__name__, e)}


def reply(start_response, obj):
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(obj).encode()]


def application(env, start_response):
    path = env.get('PATH_INFO', '')
    q = dict(urllib.parse.parse_qsl(env.get('QUERY_STRING', '')))
    if path == '/py':
        body = env['wsgi.input'].read(int(env.get('CONTENT_LENGTH') or 0))
        return reply(start_response, [run(op) for op in json.loads(body)])
    handlers = {'/gos': gos, '/typo': typo, '/typo_django': typo_django, '/remote_incr': remote_incr}
    if path in handlers:
        return reply(start_response, handlers[path](q))
    if path.startswith('/page/'):
        resp = page_view(WSGIRequest(env))
        start_response('%d %s' % (resp.status_code, resp.reason_phrase), list(resp.items()))
        return [resp.content]
    if path.startswith('/accel/'):
        return accel(env, start_response)
    return ops_app.application(env, start_response)
