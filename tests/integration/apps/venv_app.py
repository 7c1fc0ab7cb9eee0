"""venv_app.py - run under `uwsgi --home VENV` (test_venv.py): where ucache
was imported from, its version, sys.prefix, and a set/get through
ucache.Cache; or the ImportError."""
import json
import sys

try:
    import ucache
except ImportError as e:
    ucache, error = None, str(e)


def application(env, start_response):
    if ucache is None:
        out = {'error': error, 'prefix': sys.prefix}
    else:
        c = ucache.Cache('v')
        c.set('k', {'n': 42})
        out = {'file': ucache.__file__, 'version': ucache.__version__, 'prefix': sys.prefix,
               'got': c.get('k')}
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]
