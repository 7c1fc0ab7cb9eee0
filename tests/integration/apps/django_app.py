"""django_app.py - Django's cache API over ucache through Debian's
django_uwsgi.cache.UwsgiCache backend (cache "dj").

POST /ops     ops_app.py (plain uwsgi.* calls), for cross-checks.
POST /django  body: JSON list of [method, arg..., {"kw": {...}}?] run on
              django's cache; returns the JSON list of results
              ({"exc": name} on error).
"""
import json
import os
import sys

import django
from django.conf import settings

settings.configure(
    CACHES={'default': {'BACKEND': 'django_uwsgi.cache.UwsgiCache', 'LOCATION': 'dj'}},
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()

from django.core.cache import cache  # noqa: E402  (needs settings first)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ops_app  # noqa: E402


def run(op):
    name, args = op[0], op[1:]
    kwargs = {}
    if args and isinstance(args[-1], dict) and list(args[-1]) == ['kw']:
        kwargs = args.pop()['kw']
    try:
        return getattr(cache, name)(*args, **kwargs)
    except Exception as e:
        return {'exc': type(e).__name__}


def application(env, start_response):
    if env.get('PATH_INFO') == '/ops':
        return ops_app.application(env, start_response)
    body = env['wsgi.input'].read(int(env.get('CONTENT_LENGTH') or 0))
    out = json.dumps([run(op) for op in json.loads(body)]).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [out]
