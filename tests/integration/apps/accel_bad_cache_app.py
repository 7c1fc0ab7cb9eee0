"""accel_bad_cache_app.py - an Accelerator naming a cache the instance does not
have: loading it must fail with one clear line (test_http_cache.ConfigErrors)."""
from ucache.wsgi import Accelerator


def app(environ, start_response):
    start_response('200 OK', [])
    return [b'x']


application = Accelerator(app, cache='nosuch')
