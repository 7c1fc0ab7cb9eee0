"""http_bench.py - bench/run.py's 'http' section: one cached 8 KiB page through nginx.

Rows (wrk against one nginx, one server block per row, same page, same run):
  direct       nginx -> ucache, modifier1 111 / modifier2 3 (the page stored
               by ucache.wsgi.Accelerator as a whole HTTP response; the app
               is not called: its render count is checked after the run)
  nginx_cache  nginx's own uwsgi_cache, its file cache on tmpfs (/dev/shm),
               of the bare app's page
  python_hit   nginx -> uwsgi -> the Accelerator serving the hit from Python
  uncached     nginx -> uwsgi -> the bare app
  lua_dict     nginx answering from its own memory (lua_shared_dict, Debian's
               libnginx-mod-http-lua): the ceiling; skipped, with the reason,
               where the module is missing
  module       nginx answering from ucache itself: ngx_http_ucache_module
               (build/nginx/, `make nginx-module`) maps the store file of the
               'pages' cache (on tmpfs) and serves the page the Accelerator
               stored; skipped, with the reason, where it is not built
The 'pages' cache has its store on tmpfs (/dev/shm) for every row, so all
the ucache rows read the same cache.  With the module: wrk --latency on its
row alone, quiet and then during a burst of tag invalidations in uwsgi
(BURST_RATE per second, tags the page does not carry: /_burst), the p99 of
each over one connection.  Then the tag invalidation: 100k entries carrying one tag, invalidated
once (bench/http_app.py /_inval), with cache_get latency of another key
during it.

Keys: http_<row>_rps, http_direct_over_nginx_cache, http_direct_over_python_hit,
http_direct_over_lua_dict, http_module_over_nginx_cache, http_module_over_lua_dict,
http_module_over_direct_111, http_module_hit_p99_ms,
http_module_hit_p99_during_invalidations_ms, http_module_invalidations_per_s,
http_invalidate_100k_ms, http_invalidate_get_max_us.
uwsgi runs --master --processes 2 --threads 4 on a unix socket; nginx 1 worker; wrk -t1 -c16,
keep-alive to nginx (nginx opens one upstream connection per request: uwsgi
has no keepalive).  Each rep measures every row back to back; the median of
the reps is reported.  Everything shares the machine's CPUs: compare ratios.
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
import sys
import threading
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'bench', 'nginx'))
from bench_nginx import TEMP_PATHS  # noqa: E402  (nginx's temporary paths, in the work dir)
NGINX = os.environ.get('NGINX', shutil.which('nginx') or '/usr/sbin/nginx')
WRK = os.environ.get('WRK', shutil.which('wrk') or '/usr/bin/wrk')
UWSGI = os.environ.get('UWSGI', 'uwsgi')
LUA_MODULES = ('/usr/lib/nginx/modules/ndk_http_module.so', '/usr/lib/nginx/modules/ngx_http_lua_module.so')
ROWS = ('module', 'direct', 'nginx_cache', 'python_hit', 'uncached', 'lua_dict')
PAGE = 8192
UCACHE_MODULE = os.environ.get('UCACHE_NGINX_MODULE', os.path.join(ROOT, 'build', 'nginx',
                                                                    'ngx_http_ucache_module.so'))
# Tag invalidations per second during the module's latency run: a CMS
# republishing in bulk (each is one O(1) generation bump in the tag table
# the module reads on every hit; the Python loop reaches ~10k/s on this
# 2-vCPU VM).
BURST_RATE = 10000


class Error(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


NGINX_CONF = """
%(load)s
daemon off;
master_process on;
worker_processes 1;
error_log %(dir)s/nginx-error.log error;
pid %(dir)s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
%(temp_paths)s
    uwsgi_cache_path %(shm)s levels=1:2 keys_zone=uwsgipages:10m max_size=64m inactive=1h use_temp_path=off;
    %(lua_http)s
    server {   # direct: ucache answers, the app on a miss
        listen 127.0.0.1:%(direct)d backlog=4096;
        location / {
            uwsgi_pass unix:%(usock)s;
            uwsgi_modifier1 111;
            uwsgi_modifier2 3;
            uwsgi_param key $request_uri;
            uwsgi_param cache pages;
            uwsgi_param HTTP_IF_NONE_MATCH $http_if_none_match;
            uwsgi_pass_request_headers off;
            error_page 502 504 = @app;
        }
        location @app {
            uwsgi_pass unix:%(usock)s;
            include /etc/nginx/uwsgi_params;
        }
    }
    server {   # nginx's own cache (tmpfs)
        listen 127.0.0.1:%(nginx_cache)d backlog=4096;
        location / {
            uwsgi_pass unix:%(usock)s;
            include /etc/nginx/uwsgi_params;
            uwsgi_cache uwsgipages;
            uwsgi_cache_key $request_uri;
            uwsgi_cache_valid 200 1h;
            add_header X-Cache $upstream_cache_status;
        }
    }
    server {   # python_hit and uncached: straight to the app
        listen 127.0.0.1:%(app)d backlog=4096;
        location / {
            uwsgi_pass unix:%(usock)s;
            include /etc/nginx/uwsgi_params;
        }
    }
    %(lua_server)s
    %(module_server)s
}
"""

LUA_HTTP = 'lua_shared_dict pages 16m;'
LUA_SERVER = """server {   # the ceiling: nginx's own shared memory
        listen 127.0.0.1:%(lua)d backlog=4096;
        location / {
            default_type text/html;
            content_by_lua_block {
                local d = ngx.shared.pages
                local v = d:get(ngx.var.request_uri)
                if not v then
                    v = string.rep("x", %(page)d)
                    d:set(ngx.var.request_uri, v)
                end
                ngx.print(v)
            }
        }
    }"""


MODULE_SERVER = """server {   # module: nginx reads ucache's store itself
        listen 127.0.0.1:%(module)d backlog=4096;
        location / {
            set $ucache_key $request_uri;
            ucache_pass %(store)s;
            add_header X-Ucache $ucache_status;
            error_page 404 = @app;
        }
        location @app {
            uwsgi_pass unix:%(usock)s;
            include /etc/nginx/uwsgi_params;
        }
    }"""


class Procs:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, argv, env=None):
        log = open(os.path.join(self.tmp, 'http-%s.log' % name), 'wb')
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=e)
        self.procs.append(p)
        return p

    def log(self, name):
        with open(os.path.join(self.tmp, 'http-%s.log' % name), errors='replace') as f:
            return f.read()

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT if p.args[0] == UWSGI else signal.SIGQUIT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def wait_listen(connect, proc, what, timeout=20):
    """Poll connect() (a socket connection attempt) until it succeeds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise Error('%s exited with status %s' % (what, proc.returncode))
        try:
            connect()
            return
        except OSError:
            time.sleep(0.05)
    raise Error('%s did not listen' % what)


def tcp_connect(port):
    return lambda: socket.create_connection(('127.0.0.1', port), timeout=1).close()


def unix_connect(path):
    def connect():
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
    return connect


def fetch(port, path, timeout=30):
    with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path), timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def wrk_run(port, path, duration, extra=(), conns=16):
    """wrk -t1 -cCONNS's output, checked: every response a 2xx or 3xx."""
    out = subprocess.run([WRK, '-t1', '-c%d' % conns, '-d%ds' % duration] + list(extra) +
                         ['http://127.0.0.1:%d%s' % (port, path)], capture_output=True, text=True,
                         timeout=duration + 60).stdout
    if not re.search(r'Requests/sec:\s+([\d.]+)', out) or re.search(r'Non-2xx or 3xx responses: (\d+)', out):
        raise Error('wrk on port %d: %s' % (port, out.strip().splitlines()[-3:] if out else 'no output'))
    return out


def wrk(port, path, duration):
    return float(re.search(r'Requests/sec:\s+([\d.]+)', wrk_run(port, path, duration)).group(1))


def wrk_latency_ms(port, path, duration):
    """(p50, p99) of wrk --latency's distribution, in ms, over one
    connection: each request's own time, not its wait behind 15 others."""
    out = wrk_run(port, path, duration, ['--latency'], conns=1)
    got = []
    for q in ('50', '99'):
        m = re.search(r'^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$' % q, out, re.M)
        if not m:
            raise Error('wrk --latency printed no %s%% line: %s' % (q, out.strip().splitlines()[-8:]))
        got.append(float(m.group(1)) * {'us': 1e-3, 'ms': 1.0, 's': 1e3}[m.group(2)])
    return tuple(got)


def module_latency(ports, duration):
    """((p50, p99) ms of a module hit, quiet; the same during a burst of
    tag invalidations in uwsgi; the burst's JSON from /_burst)."""
    quiet = wrk_latency_ms(ports['module'], '/page/8k', duration)
    got = {}

    def burst():
        try:
            got['burst'] = json.loads(fetch(ports['app'], '/_burst?secs=%s&rate=%d' % (duration + 1, BURST_RATE),
                                            timeout=duration + 30)[2])
        except (OSError, ValueError) as e:
            got['error'] = e
    th = threading.Thread(target=burst)
    th.start()
    time.sleep(0.3)   # the burst is under way before wrk starts, and ends after it
    during = wrk_latency_ms(ports['module'], '/page/8k', duration)
    th.join()
    if 'burst' not in got:
        raise Error('/_burst: %s' % got.get('error'))
    return quiet, during, got['burst']


def run(tmp, quick, reps):
    for binary in (NGINX, WRK):
        if not shutil.which(binary) and not os.path.exists(binary):
            raise Error('%s is not installed' % binary)
    procs = Procs(tmp)
    shm = '/dev/shm/ucbench-http-%d' % os.getpid()
    lua_ok = all(os.path.exists(m) for m in LUA_MODULES)
    module_ok = os.path.exists(UCACHE_MODULE)
    res = {'rows': {}, 'lua_skipped': None if lua_ok else
           'lua_dict row skipped: %s missing (Debian package libnginx-mod-http-lua)' %
           ' / '.join(m for m in LUA_MODULES if not os.path.exists(m)),
           'module_skipped': None if module_ok else
           'module row skipped: %s is not built (`make nginx-module`, which needs the Debian package '
           'nginx-dev)' % (os.path.relpath(UCACHE_MODULE, ROOT) if UCACHE_MODULE.startswith(ROOT + os.sep)
                           else UCACHE_MODULE)}
    ports = {k: free_port() for k in ('direct', 'nginx_cache', 'app', 'lua', 'module')}
    # the 'pages' cache's store, on tmpfs; nginx's workers (not root) read it
    store_dir = '/dev/shm/ucbench-http-store-%d' % os.getpid()
    os.makedirs(store_dir, mode=0o755, exist_ok=True)
    store = os.path.join(store_dir, 'pages.store')
    sockdir = os.path.join(tmp, 'http-sock')   # nginx's workers (not root) must reach it
    os.makedirs(sockdir, exist_ok=True)
    os.chmod(sockdir, 0o755)
    os.chmod(tmp, 0o755)
    usock = os.path.join(sockdir, 'uwsgi.sock')
    try:
        u = procs.start('uwsgi', [UWSGI, '--plugin', 'python3', '--plugin', './ucache_plugin.so', '--master',
                                  '--processes', '2', '--threads', '4', '--socket', usock, '--chmod-socket=666',
                                  '--listen', '1024', '--disable-logging',
                                  '--cache2', 'name=pages,items=1000,blocksize=65536,store=%s' % store,
                                  '--cache2', 'name=counters,items=100,blocksize=64',
                                  '--cache2', 'name=inval,items=100010,blocksize=128',
                                  '--pythonpath', 'python', '--wsgi-file', 'bench/http_app.py'])
        wait_listen(unix_connect(usock), u, 'uwsgi')
        os.chmod(store, 0o644)   # ucache creates it 0600 for uwsgi's user (root here)
        conf = os.path.join(tmp, 'http-nginx.conf')
        with open(conf, 'w') as f:
            f.write(NGINX_CONF % dict(
                ports, usock=usock, dir=tmp, shm=shm, page=PAGE, temp_paths=TEMP_PATHS % {'dir': tmp},
                load='\n'.join('load_module %s;' % m for m in (LUA_MODULES if lua_ok else ()) +
                                ((UCACHE_MODULE,) if module_ok else ())),
                lua_http=LUA_HTTP if lua_ok else '',
                lua_server=LUA_SERVER % dict(lua=ports['lua'], page=PAGE) if lua_ok else '',
                module_server=MODULE_SERVER % dict(module=ports['module'], store=store, usock=usock)
                if module_ok else ''))
        n = procs.start('nginx', [NGINX, '-c', conf, '-p', tmp])
        wait_listen(tcp_connect(ports['direct']), n, 'nginx')
        targets = {'direct': (ports['direct'], '/page/8k'), 'nginx_cache': (ports['nginx_cache'], '/raw/8k'),
                   'python_hit': (ports['app'], '/page/8k'), 'uncached': (ports['app'], '/raw/8k')}
        if lua_ok:
            targets['lua_dict'] = (ports['lua'], '/page/8k')
        if module_ok:
            targets['module'] = (ports['module'], '/page/8k')
        # warm up and check every row serves the 8 KiB page
        fetch(ports['app'], '/page/8k')
        for row, (port, path) in targets.items():
            for _ in range(2):
                status, headers, body = fetch(port, path)
            if status != 200 or len(body) != PAGE:
                raise Error('%s: %s %d bytes' % (row, status, len(body)))
        if fetch(ports['nginx_cache'], '/raw/8k')[1].get('X-Cache') != 'HIT':
            raise Error('nginx uwsgi_cache does not hit')
        if module_ok and fetch(ports['module'], '/page/8k')[1].get('X-Ucache') != 'HIT':
            raise Error('the module does not hit: $ucache_status %r' %
                        fetch(ports['module'], '/page/8k')[1].get('X-Ucache'))
        duration = 2 if quick else 4
        samples = {row: [] for row in targets}
        for _ in range(reps):
            for row, (port, path) in targets.items():
                samples[row].append(wrk(port, path, duration))
        if module_ok:
            lat = [module_latency(ports, duration) for _ in range(reps)]
            res['module_latency'] = {'p50_ms': statistics.median(q[0] for q, _, _ in lat),
                                     'p99_ms': statistics.median(q[1] for q, _, _ in lat),
                                     'p50_during_ms': statistics.median(d[0] for _, d, _ in lat),
                                     'p99_during_ms': statistics.median(d[1] for _, d, _ in lat),
                                     'rate': min(b['rate'] for _, _, b in lat), 'target_rate': BURST_RATE,
                                     'invalidations': sum(b['invalidations'] for _, _, b in lat),
                                     'samples': [[q[1], d[1]] for q, d, _ in lat]}
        renders = int(fetch(ports['app'], '/_renders')[2])
        if renders != 1:
            raise Error('the page was rendered %d times: nginx direct or module hits called the app' % renders)
        for row, s in samples.items():
            res['rows'][row] = {'rps': statistics.median(s), 'samples': s}
        res['invalidate'] = json.loads(fetch(ports['app'], '/_inval?n=100000', timeout=300)[2])
        if res['invalidate']['stale_served_of_1000']:
            raise Error('invalidated entries still served: %r' % res['invalidate'])
        res['wrk'] = 'wrk -t1 -c16 -d%ds' % duration
        res['reps'] = reps
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        raise Error('%s: %s' % (type(e).__name__, e))
    finally:
        procs.stop()
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(store_dir, ignore_errors=True)
    return res


def flat(d):
    out = {}
    rows = d.get('rows', {})
    for row, v in rows.items():
        out['http_%s_rps' % row] = v['rps']

    def ratio(a, b):
        return rows[a]['rps'] / rows[b]['rps'] if a in rows and b in rows and rows[b]['rps'] else None
    out['http_direct_over_nginx_cache'] = ratio('direct', 'nginx_cache')
    out['http_direct_over_python_hit'] = ratio('direct', 'python_hit')
    out['http_direct_over_uncached'] = ratio('direct', 'uncached')
    out['http_direct_over_lua_dict'] = ratio('direct', 'lua_dict')
    out['http_module_over_nginx_cache'] = ratio('module', 'nginx_cache')
    out['http_module_over_lua_dict'] = ratio('module', 'lua_dict')
    out['http_module_over_direct_111'] = ratio('module', 'direct')
    lat = d.get('module_latency') or {}
    out['http_module_hit_p99_ms'] = lat.get('p99_ms')
    out['http_module_hit_p99_during_invalidations_ms'] = lat.get('p99_during_ms')
    out['http_module_invalidations_per_s'] = lat.get('rate')
    inv = d.get('invalidate') or {}
    out['http_invalidate_100k_ms'] = inv.get('invalidate_ms')
    out['http_invalidate_get_max_us'] = inv.get('get_max_us_during')
    return {k: v for k, v in out.items() if v is not None}


def section(res):
    """BENCHMARKS.md's section (bench/report.py)."""
    d = res['details'].get('http')
    if not d:
        return ['## HTTP response cache', '', 'not run: %s' % res.get('errors', {}).get('http', 'skipped'), '']
    names = {'module': 'ucache module hit (nginx reads the store: ngx_http_ucache_module)',
             'direct': 'ucache direct hit (nginx modifier1 111)', 'nginx_cache': 'nginx uwsgi_cache (tmpfs)',
             'python_hit': 'ucache.wsgi.Accelerator hit (Python)', 'uncached': 'the app, uncached',
             'lua_dict': 'nginx lua_shared_dict'}
    rps = {row: v['rps'] for row, v in d['rows'].items()}

    def over(a, row):
        return '%.2f' % (rps[a] / rps[row]) if rps.get(a) and rps.get(row) else '-'
    lines = ['## HTTP response cache', '',
             'One cached 8 KiB page through nginx (bench/http_bench.py; `%s`, median of %d reps, '
             'every row back to back in each rep; the cache `pages` has its store on tmpfs).' % (
                 d.get('wrk', 'wrk'), d.get('reps', 1)), '',
             '| row | requests/s | module / row | direct / row |', '|---|---:|---:|---:|']
    for row in ROWS:
        if row in rps:
            lines.append('| %s | %.0f | %s | %s |' % (names[row], rps[row], over('module', row), over('direct', row)))
    for skipped in (d.get('module_skipped'), d.get('lua_skipped')):
        if skipped:
            lines += ['', skipped]
    lat = d.get('module_latency')
    if lat:
        lines += ['', 'Module hit latency (`wrk -t1 -c1 --latency`, its row alone, median of %d reps): p99 %.3f ms '
                  '(p50 %.3f) quiet, p99 %.3f ms (p50 %.3f) during a burst of tag invalidations in uwsgi (%.0f '
                  'per second reached, target %d; tags the page does not carry, so every request stays a '
                  'hit).' % (len(lat['samples']), lat['p99_ms'], lat['p50_ms'], lat['p99_during_ms'],
                             lat['p50_during_ms'], lat['rate'], lat['target_rate'])]
    inv = d.get('invalidate') or {}
    if inv:
        lines += ['', 'Invalidating one tag carried by %d entries: %.3f ms (through the ucache_invalidate RPC '
                  'from Python); cache_get of another key during it: max %.1f us over %d gets (before it: '
                  'p99 %.1f us, max %.1f us); tagged entries still served after it: %d of 1000 sampled.' % (
                      inv['entries'], inv['invalidate_ms'], inv['get_max_us_during'] or 0, inv['gets_during'],
                      inv['get_p99_us_before'] or 0, inv['get_max_us_before'] or 0,
                      inv['stale_served_of_1000'])]
    return lines + ['']
