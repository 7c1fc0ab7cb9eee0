"""ops_app.py - WSGI app that runs uwsgi.* calls for the integration tests.

POST /ops   body: JSON list of [name, arg...]; bytes travel as {"b": latin-1}.
            Returns the JSON list of results, exact: None -> null, True ->
            true, bytes -> {"b": ...}, an exception -> {"exc": "TypeName"}.
            Names are uwsgi functions (cache_get, cache_set, ...) plus the
            helpers below (worker_id, fdcount, sleep, stock_style_keys).
GET  /worker  this worker's id.
GET  other    "app:<path>:<n>" where n counts this worker's requests (lets
            router/check-cache tests tell the cache from the app).
"""
import json
import os
import time

import uwsgi

COUNT = [0]


def fdcount():
    return len(os.listdir('/proc/self/fd'))


HELPERS = {
    'worker_id': lambda: uwsgi.worker_id(),
    'fdcount': fdcount,
    'sleep': lambda s: time.sleep(s) or True,
    'time': lambda: int(time.time()),
}


def dec(v):
    if isinstance(v, dict) and set(v) == {'b'}:
        return v['b'].encode('latin-1')
    return v


def enc(v):
    if isinstance(v, bytes):
        return {'b': v.decode('latin-1')}
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    return v


def run(op):
    name, args = op[0], [dec(a) for a in op[1:]]
    fn = HELPERS.get(name) or getattr(uwsgi, name)
    try:
        return enc(fn(*args))
    except Exception as e:  # the exact exception type is part of the API
        return {'exc': type(e).__name__, 'msg': str(e)}


def application(env, start_response):
    path = env.get('PATH_INFO', '')
    if path == '/ops':
        body = env['wsgi.input'].read(int(env.get('CONTENT_LENGTH') or 0))
        out = json.dumps([run(op) for op in json.loads(body)]).encode()
    elif path == '/worker':
        out = str(uwsgi.worker_id()).encode()
    else:
        COUNT[0] += 1
        out = ('app:%s:%d' % (path, COUNT[0])).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(out)))])
    return [out]
