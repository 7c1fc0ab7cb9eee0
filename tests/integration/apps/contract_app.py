"""contract_app.py - runs one test module's tests inside a uwsgi worker,
one test per request, so that a contract written once (django_contract.py,
helper_contract.py in tests/integration) is checked inside uWSGI exactly as
it is outside.

Env: UCACHE_CONTRACT = the module name.
  GET /list          JSON list of "Class.test_name"
  GET /run/NAME      JSON {"ok": bool, "detail": failure text, "seen": [...]}
                     ("seen": what the test recorded in module.SEEN[NAME])
Other paths go to ops_app.py (plain uwsgi.* calls)."""
import importlib
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), 'python'))

import ops_app  # noqa: E402

mod = importlib.import_module(os.environ['UCACHE_CONTRACT'])


def names():
    suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    out = []

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            else:
                out.append('%s.%s' % (type(t).__name__, t._testMethodName))
    walk(suite)
    return out


def run(name):
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromName(name, mod).run(result)
    detail = '\n'.join(tb for _, tb in result.failures + result.errors)
    return {'ok': result.wasSuccessful() and not result.skipped, 'detail': detail,
            'seen': getattr(mod, 'SEEN', {}).get(name.split('.')[-1])}


def application(env, start_response):
    path = env.get('PATH_INFO', '')
    if path == '/list':
        out = names()
    elif path.startswith('/run/'):
        out = run(path[5:])
    else:
        return ops_app.application(env, start_response)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]
