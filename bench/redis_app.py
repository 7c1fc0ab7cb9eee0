"""bench/redis_app.py - the WSGI app of bench/run.py's 'redis' section.

Runs in the one worker of a uwsgi instance whose cache "r" is a near cache
over Redis (--cache2 name=r,...,redis=unix:SOCK); the loops run inside the
worker, so a near-cache read and a redis-py read are measured in the same
process, over the same unix socket, with the same keys and values.

GET /hit?sock=S&duration=D     L1 hits (uwsgi.cache_get on one key read
                               before) against redis-py GET of that key
GET /miss?sock=S&n=N           N keys written to Redis by redis-py, then
                               each read once through the near cache (a
                               miss: Redis read + L1 fill), then each read
                               once by redis-py
GET /write?sock=S&n=N          N keys written through the near cache
                               (uwsgi.cache_update: Redis SET, then the
                               key's epoch bump and L1 drop), then N
                               others by redis-py SET; us per write
GET /inval?n=N&peer=PORT       N rounds: key in this L1, write on the peer
                               instance (HTTP /update there), read here
                               until the new value shows; latencies in ms
                               from the peer's acknowledged write (its
                               perf_counter, the machine's CLOCK_MONOTONIC)
                               and, as an upper bound, from before the
                               request to the peer was sent
GET /update?key=K&value=V      cache_update on this instance (for /inval)
Every reply is JSON.
"""
import http.client
import json
import time
from urllib.parse import parse_qs

import uwsgi

VALUE = b'v' * 100


def rate(fn, duration):
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(1000):
            fn()
        n += 1000
        dt = time.perf_counter() - t0
        if dt >= duration:
            return n / dt


def redis_client(sock):
    import redis
    return redis.Redis(unix_socket_path=sock)


def hit(q):
    r = redis_client(q['sock'])
    duration = float(q.get('duration', 1))
    r.set('ucache:r:hot', VALUE)
    get = uwsgi.cache_get
    for _ in range(3):
        if get('hot', 'r') != VALUE:
            return {'error': 'near cache read %r' % get('hot', 'r')}
    l1 = rate(lambda: get('hot', 'r'), duration)
    rp = rate(lambda: r.get('ucache:r:hot'), duration)
    return {'l1_hit_ops_s': l1, 'redis_py_get_ops_s': rp, 'ratio': l1 / rp}


def miss(q):
    r = redis_client(q['sock'])
    n = int(q.get('n', 10000))
    tag = str(time.monotonic_ns())
    keys = ['m%s-%d' % (tag, i) for i in range(n)]
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set('ucache:r:' + k, VALUE)
    pipe.execute()
    get = uwsgi.cache_get
    t0 = time.perf_counter()
    bad = sum(1 for k in keys if get(k, 'r') != VALUE)
    near = (time.perf_counter() - t0) / n
    rkeys = ['ucache:r:' + k for k in keys]
    t0 = time.perf_counter()
    bad += sum(1 for k in rkeys if r.get(k) != VALUE)
    rp = (time.perf_counter() - t0) / n
    hits = sum(1 for k in keys[:100] if get(k, 'r') == VALUE)
    return {'near_miss_us': near * 1e6, 'redis_py_get_us': rp * 1e6, 'ratio': near / rp,
            'wrong': bad, 'filled_of_100': hits}


def write(q):
    r = redis_client(q['sock'])
    n = int(q.get('n', 10000))
    tag = str(time.monotonic_ns())
    keys = ['w%s-%d' % (tag, i) for i in range(n)]
    update = uwsgi.cache_update
    t0 = time.perf_counter()
    failed = sum(1 for k in keys if not update(k, VALUE, 0, 'r'))
    near = (time.perf_counter() - t0) / n
    rkeys = ['ucache:r:x' + k for k in keys]
    t0 = time.perf_counter()
    failed += sum(1 for k in rkeys if not r.set(k, VALUE))
    rp = (time.perf_counter() - t0) / n
    wrong = sum(1 for k in keys[:100] if r.get('ucache:r:' + k) != VALUE)
    return {'near_write_us': near * 1e6, 'redis_py_set_us': rp * 1e6, 'ratio': near / rp,
            'failed': failed, 'wrong': wrong}


def inval(q):
    n = int(q.get('n', 1000))
    peer = int(q['peer'])
    get = uwsgi.cache_get
    lat, sent = [], []
    timeouts = 0
    for i in range(n):
        old, new = b'old%d' % i, b'new%d' % i
        if not uwsgi.cache_update('inv', old, 0, 'r'):
            return {'error': 'update failed'}
        deadline = time.monotonic() + 2
        while get('inv', 'r') != old or get('inv', 'r') != old:   # in L1 now
            if time.monotonic() > deadline:
                return {'error': 'no L1 copy of the old value'}
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection('127.0.0.1', peer, timeout=10)  # no keep-alive
        conn.request('GET', '/update?key=inv&value=' + new.decode())
        acked = json.loads(conn.getresponse().read())
        conn.close()
        if not acked:
            return {'error': 'peer update failed'}
        deadline = time.monotonic() + 2
        while get('inv', 'r') != new:
            if time.monotonic() > deadline:
                timeouts += 1
                break
        t1 = time.perf_counter()
        lat.append((t1 - acked) * 1000)
        sent.append((t1 - t0) * 1000)
    return {'n': n, 'timeouts': timeouts, **pct(lat, ''), **pct(sent, 'from_send_')}


def pct(ms, tag):
    ms = sorted(ms)
    return {tag + 'p50_ms': ms[len(ms) // 2], tag + 'p99_ms': ms[int(len(ms) * 0.99) - 1],
            tag + 'max_ms': ms[-1]}


def update(q):
    """The monotonic time (CLOCK_MONOTONIC, one clock for every process of
    the machine) at which Redis had acknowledged the update, or False."""
    if not uwsgi.cache_update(q['key'], q['value'].encode(), 0, 'r'):
        return False
    return time.perf_counter()


ROUTES = {'/hit': hit, '/miss': miss, '/write': write, '/inval': inval, '/update': update}


def application(env, start_response):
    q = {k: v[0] for k, v in parse_qs(env.get('QUERY_STRING', '')).items()}
    fn = ROUTES.get(env.get('PATH_INFO'))
    try:
        out = fn(q) if fn else {'error': 'no such path'}
    except Exception as e:  # reported to run.py
        out = {'error': '%s: %s' % (type(e).__name__, e)}
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
