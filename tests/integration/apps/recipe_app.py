"""recipe_app.py - the app behind the nginx recipes of README.md and docs/HTTP.md
(test_readme_recipes.py, and test_nginx.py's method test).

Every request is answered "app METHOD URI #N", N counting the app's
answers (key "recipe-calls" of the default cache, shared by the workers),
so a test tells the app from the cache: a page nginx took from the cache
has an old N and leaves the count alone.  /_calls answers the count
(never counted, never cached).  RECIPE_APP chooses how GET pages get into
the cache, as docs/HTTP.md says:
  direct (default)   the app stores the page under its URI in the default
                     cache (uwsgi.cache_set(env['REQUEST_URI'], html))
  accelerator        ucache.wsgi.Accelerator(cache='pages'), cache_for 60
"""
import os

import uwsgi

COUNTER = 'recipe-calls'


def count():
    uwsgi.cache_inc(COUNTER, 1, 0)
    return uwsgi.cache_num(COUNTER)


def page(environ):
    environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))  # a POST's body
    return ('app %s %s #%d' % (environ['REQUEST_METHOD'], environ['REQUEST_URI'], count())).encode()


def direct(environ, start_response):
    body = page(environ)
    if environ['REQUEST_METHOD'] == 'GET':
        uwsgi.cache_set(environ['REQUEST_URI'], body)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]


def accelerated(environ, start_response):
    body = page(environ)
    environ['accelerator.cache_for'] = 60
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]


if os.environ.get('RECIPE_APP') == 'accelerator':
    from ucache.wsgi import Accelerator
    _app = Accelerator(accelerated, cache='pages')
else:
    _app = direct


def application(environ, start_response):
    if environ['PATH_INFO'] == '/_calls':
        n = uwsgi.cache_num(COUNTER) if uwsgi.cache_exists(COUNTER) else 0
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [str(n).encode()]
    return _app(environ, start_response)
