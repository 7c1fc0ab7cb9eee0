"""crash_app.py - load and verification app for the crash, fault and
regression tests (tests/integration/test_crash*.py, test_faults*.py,
test_regressions*.py).  Values are crashvalues.make() values.

POST /churn   {"n": N, "seed": S, "caches": [{"name", "keys", "vmax"}...]}
              N random ops (get 40%, update 20%, set 10%, del 10%, math 12%,
              exists 6%, cache_keys 2%) over keys v0..v<keys-1> (values)
              and n0..n<keys/4> (numbers); every read is validated.  Answers
              {"ops": {...}, "bad": [...]} (bad: reads that were torn,
              foreign or malformed).
POST /write   [[op, cache, key, value, expires], ...] with op in update,
              set, del: the results, in order (true / null).
GET  /dump?cache=NAME   every key of the cache and its value: {"key": value
              (latin-1) or null if it vanished between listing and reading}.
GET  /check   uwsgi.call("ucache_check") (needs --ucache-check-rpc).
GET  /pid     this worker's pid.
GET  /die_holding_rlock?cache=NAME&locks=N   take the cache's legacy read
              lock N times through the exported uwsgi_cache_rlock() (what
              Python's cache_keys and the static-path cache take), release it
              once, then SIGKILL this worker: the stock deadlock detector
              only remembers the last locker (#1202), which is no one now.
POST /ops     as apps/ops_app.py.
"""
import json
import os
import random
import struct
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import uwsgi  # noqa: E402

import crashvalues  # noqa: E402
import ops_app  # noqa: E402

SEQ = [0]
NUM_LIMIT = 1 << 40  # |number| never reaches this: far bigger means damage


POOL = {}


def tag():
    SEQ[0] += 1
    return 'w%d-%d' % (os.getpid(), SEQ[0])


def pooled_value(rng, cache, key, vmax):
    """A valid value for key: mostly reused from a small per-worker pool, so
    that the op loop spends its time in the cache rather than building
    values (and kills land inside cache calls more often)."""
    pool = POOL.setdefault((cache, key), [])
    if len(pool) < 4 or rng.random() < 0.05:
        v = crashvalues.make(key, tag(), rng.randint(40, vmax))
        pool.append(v)
        if len(pool) > 4:
            pool.pop(0)
        return v
    return rng.choice(pool)


def check_num(cache, key, bad):
    raw = uwsgi.cache_get(key, cache)
    if raw is None:
        return
    if len(raw) != 8 or abs(struct.unpack('=q', raw)[0]) >= NUM_LIMIT:
        bad.append([cache, key, raw[:64].decode('latin-1')])


def one_op(rng, spec, counts, bad):
    cache = spec['name']
    r = rng.random()
    if r < 0.12:
        key = 'n%d' % rng.randrange(max(1, spec['keys'] // 4))
        op = rng.choice(('cache_inc', 'cache_dec', 'cache_mul'))
        delta = -1 if op == 'cache_mul' else rng.randint(1, 3)
        getattr(uwsgi, op)(key, delta, 0, cache)
        check_num(cache, key, bad)
        counts['math'] = counts.get('math', 0) + 1
        return
    key = 'v%d' % rng.randrange(spec['keys'])
    if r < 0.52:
        name, value = 'get', uwsgi.cache_get(key, cache)
        if value is not None and not crashvalues.valid(key, value):
            bad.append([cache, key, value[:200].decode('latin-1')])
    elif r < 0.72:
        name = 'update'
        uwsgi.cache_update(key, pooled_value(rng, cache, key, spec['vmax']), 0, cache)
    elif r < 0.82:
        name = 'set'
        uwsgi.cache_set(key, pooled_value(rng, cache, key, spec['vmax']), 0, cache)
    elif r < 0.92:
        name = 'del'
        uwsgi.cache_del(key, cache)
    elif r < 0.98:
        name = 'exists'
        uwsgi.cache_exists(key, cache)
    else:
        name = 'keys'
        for k in uwsgi.cache_keys(cache):
            if k[:1] not in (b'v', b'n') or not k[1:].isdigit():
                bad.append([cache, 'cache_keys', k[:200].decode('latin-1')])
    counts[name] = counts.get(name, 0) + 1


def churn(req):
    rng = random.Random(req.get('seed'))
    counts, bad = {}, []
    for _ in range(req['n']):
        one_op(rng, rng.choice(req['caches']), counts, bad)
    return {'ops': counts, 'bad': bad}


def write(ops):
    out = []
    for op, cache, key, value, expires in ops:
        if op == 'del':
            out.append(uwsgi.cache_del(key, cache))
        else:
            fn = uwsgi.cache_update if op == 'update' else uwsgi.cache_set
            out.append(fn(key, value.encode('latin-1'), expires, cache))
    return out


def dump(cache):
    out = {}
    for k in uwsgi.cache_keys(cache):
        v = uwsgi.cache_get(k, cache)
        out[k.decode('latin-1')] = None if v is None else v.decode('latin-1')
    return out


def die_holding_rlock(cache, locks):
    import ctypes
    import signal
    exe = ctypes.CDLL(None)
    exe.uwsgi_cache_by_name.restype = ctypes.c_void_p
    exe.uwsgi_cache_by_name.argtypes = [ctypes.c_char_p]
    exe.uwsgi_cache_rlock.argtypes = exe.uwsgi_cache_rwunlock.argtypes = [ctypes.c_void_p]
    uc = exe.uwsgi_cache_by_name(cache.encode())
    for _ in range(locks + 1):
        exe.uwsgi_cache_rlock(uc)
    exe.uwsgi_cache_rwunlock(uc)
    os.kill(os.getpid(), signal.SIGKILL)


def application(env, start_response):
    path = env.get('PATH_INFO', '')
    query = urllib.parse.parse_qs(env.get('QUERY_STRING', ''))
    body = env['wsgi.input'].read(int(env.get('CONTENT_LENGTH') or 0))
    if path == '/churn':
        out = json.dumps(churn(json.loads(body)))
    elif path == '/write':
        out = json.dumps(write(json.loads(body)))
    elif path == '/dump':
        out = json.dumps(dump(query['cache'][0]))
    elif path == '/check':
        out = (uwsgi.call(b'ucache_check') or b'').decode()
    elif path == '/die_holding_rlock':
        die_holding_rlock(query['cache'][0], int(query.get('locks', ['1'])[0]))
    elif path == '/pid':
        out = str(os.getpid())
    elif path == '/ops':
        out = json.dumps([ops_app.run(op) for op in json.loads(body)])
    else:
        start_response('404 Not Found', [('Content-Length', '0')])
        return [b'']
    out = out.encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(out)))])
    return [out]
