#!/usr/bin/env python3
"""bench_nginx.py - nginx serving cached values directly: ucache vs memcached.

    make bench-nginx
    make bench-nginx BENCH_NGINX_ARGS="--duration 10 --size 16384 --json out.json"

Starts, on loopback ports it picks:
  - uwsgi with ucache (no app: only modifier1 111), --processes P;
  - memcached (Debian's), -t T threads;
  - one nginx with two servers: one does seed 000's direct lookup
    (uwsgi_modifier1 111, uwsgi_modifier2 3, uwsgi_param key $uri), the
    other memcached_pass with $memcached_key $uri;
stores the same N keys and values in both, checks that every key comes back
intact through both servers, then runs wrk against each, alternately, for
--rounds rounds, and prints the median requests/s of each (and the
range) and the ratio of the medians.
Neither upstream keeps connections alive (nginx's default for both; uwsgi
has no keepalive), so both pay one connection per request.

This is a benchmark, not a test: `make test` never runs it.  Everything
runs on this machine: the load generator, nginx and the server share the
CPUs, so compare the ratio, not the absolute numbers.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN = os.environ.get('UCACHE_PLUGIN', os.path.join(ROOT, 'ucache_plugin.so'))
UWSGI = os.environ.get('UWSGI', 'uwsgi')
NGINX = os.environ.get('NGINX', shutil.which('nginx') or '/usr/sbin/nginx')
MEMCACHED = os.environ.get('MEMCACHED', shutil.which('memcached') or '/usr/bin/memcached')
WRK = os.environ.get('WRK', shutil.which('wrk') or '/usr/bin/wrk')

NGINX_CONF = """
daemon off;
master_process on;
worker_processes %(workers)d;
error_log %(dir)s/error.log crit;
pid %(dir)s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
%(temp_paths)s
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:%(ucache_port)d backlog=4096;
        location / {
            uwsgi_pass 127.0.0.1:%(uwsgi_port)d;
            uwsgi_modifier1 111;
            uwsgi_modifier2 3;
            uwsgi_param key $uri;
            uwsgi_pass_request_headers off;
        }
    }
    server {
        listen 127.0.0.1:%(memcached_nginx_port)d backlog=4096;
        location / {
            set $memcached_key $uri;
            memcached_pass 127.0.0.1:%(memcached_port)d;
        }
    }
}
"""

# nginx writes temporary files for every module: keep them in the work dir
TEMP_PATHS = '\n'.join('    %s_temp_path %%(dir)s/%s;' % (module, sub) for module, sub in (
    ('client_body', 'body'), ('uwsgi', 'uwsgi'), ('proxy', 'proxy'), ('fastcgi', 'fastcgi'), ('scgi', 'scgi')))

WRK_SCRIPT = """
local n = %(keys)d
request = function()
    return wrk.format("GET", "/k" .. math.random(0, n - 1))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit('%s exited with status %s' % (what, proc.returncode))
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit('%s did not listen on %d' % (what, port))


class Procs:
    """Children in their own sessions, stopped by PID at exit."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, name, argv, stop_signal=signal.SIGTERM):
        log = open(os.path.join(self.workdir, name + '.log'), 'wb')
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=self.workdir, start_new_session=True)
        self.procs.append((p, stop_signal))
        return p

    def stop_all(self):
        for p, sig in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(sig)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)


# ------------------------------------------------------------------ filling

def uwsgi_magic_set(port, key, value):
    pairs = [(b'cmd', b'set'), (b'key', key), (b'size', str(len(value)).encode())]
    body = b''.join(struct.pack('<H', len(k)) + k + struct.pack('<H', len(v)) + v for k, v in pairs)
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        s.sendall(struct.pack('<BHB', 111, len(body), 17) + body + value)
        reply = s.recv(1024)
    if not reply.startswith(b'\x6f'):
        sys.exit('ucache refused to store %r' % key)


def memcached_set(port, key, value):
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        s.sendall(b'set %s 0 0 %d\r\n%s\r\n' % (key, len(value), value))
        if s.recv(64) != b'STORED\r\n':
            sys.exit('memcached refused to store %r' % key)


def value_for(i, size):
    seed = ('value %d ' % i).encode()
    return (seed * (size // len(seed) + 1))[:size]


def check_all(port, keys, size, what):
    for i in range(keys):
        with urllib.request.urlopen('http://127.0.0.1:%d/k%d' % (port, i), timeout=10) as r:
            if r.status != 200 or r.read() != value_for(i, size):
                sys.exit('%s: /k%d did not come back intact' % (what, i))


# ---------------------------------------------------------------------- wrk

def wrk(port, args, script):
    out = subprocess.run([WRK, '-t', str(args.wrk_threads), '-c', str(args.connections),
                          '-d', '%ds' % args.duration, '-s', script,
                          'http://127.0.0.1:%d/' % port],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=args.duration + 60)
    text = out.stdout.decode()
    m = re.search(r'Requests/sec:\s+([\d.]+)', text)
    if out.returncode or not m:
        sys.exit('wrk failed:\n' + text)
    bad = re.search(r'Non-2xx or 3xx responses: (\d+)', text)
    errors = re.search(r'Socket errors: (.*)', text)
    if bad:
        sys.exit('wrk saw %s non-2xx responses on port %d:\n%s' % (bad.group(1), port, text))
    return float(m.group(1)), errors.group(1) if errors else ''


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--duration', type=int, default=4, help='seconds per wrk run (4)')
    ap.add_argument('--rounds', type=int, default=5, help='alternating runs of each (5)')
    ap.add_argument('--keys', type=int, default=100, help='distinct keys (100)')
    ap.add_argument('--size', type=int, default=1024, help='value bytes (1024)')
    ap.add_argument('--connections', type=int, default=64, help='wrk connections (64)')
    ap.add_argument('--wrk-threads', type=int, default=2, help='wrk threads (2)')
    ncpu = os.cpu_count() or 2
    ap.add_argument('--nginx-workers', type=int, default=max(1, ncpu // 2),
                    help='nginx worker processes (nproc/2)')
    ap.add_argument('--processes', type=int, default=max(1, ncpu // 2),
                    help='uwsgi processes (nproc/2)')
    ap.add_argument('--memcached-threads', type=int, default=max(1, ncpu // 2),
                    help='memcached threads (nproc/2)')
    ap.add_argument('--json', help='also write the numbers to this file')
    return ap.parse_args()


def start_servers(args, procs, ports):
    blocksize = max(4096, args.size)
    uwsgi = procs.start('uwsgi', [UWSGI, '--plugin', PLUGIN, '--master', '--processes', str(args.processes),
                          '--socket', '127.0.0.1:%d' % ports['uwsgi'], '--listen', '1024',
                          '--disable-logging', '--cache2',
                          'name=bench,items=%d,blocksize=%d' % (args.keys + 16, blocksize)],
                stop_signal=signal.SIGINT)
    mc = [MEMCACHED, '-l', '127.0.0.1', '-p', str(ports['memcached']), '-U', '0',
          '-t', str(args.memcached_threads), '-m', '256', '-c', '4096', '-I', '%dk' % max(1024, args.size // 1024 + 1)]
    if os.geteuid() == 0:
        mc += ['-u', 'root']
    memcached = procs.start('memcached', mc)
    with open(os.path.join(procs.workdir, 'nginx.conf'), 'w') as f:
        f.write(NGINX_CONF % {'dir': procs.workdir, 'workers': args.nginx_workers,
                              'temp_paths': TEMP_PATHS % {'dir': procs.workdir},
                              'ucache_port': ports['ucache'], 'uwsgi_port': ports['uwsgi'],
                              'memcached_nginx_port': ports['memcached_nginx'],
                              'memcached_port': ports['memcached']})
    nginx = procs.start('nginx', [NGINX, '-c', os.path.join(procs.workdir, 'nginx.conf'),
                                  '-p', procs.workdir], stop_signal=signal.SIGQUIT)
    for name, proc in (('uwsgi', uwsgi), ('memcached', memcached), ('ucache', nginx),
                       ('memcached_nginx', nginx)):
        wait_port(ports[name], proc, name)


def main():
    args = parse_args()
    for tool in (UWSGI, NGINX, MEMCACHED, WRK):
        if not shutil.which(tool) and not os.path.exists(tool):
            sys.exit('%s not installed (sudo make deps)' % tool)
    workdir = tempfile.mkdtemp(prefix='ucache-bench-nginx-')
    procs = Procs(workdir)
    ports = {n: free_port() for n in ('uwsgi', 'memcached', 'ucache', 'memcached_nginx')}
    try:
        start_servers(args, procs, ports)
        for i in range(args.keys):
            key, value = b'/k%d' % i, value_for(i, args.size)
            uwsgi_magic_set(ports['uwsgi'], key, value)
            memcached_set(ports['memcached'], key, value)
        check_all(ports['ucache'], args.keys, args.size, 'nginx -> ucache')
        check_all(ports['memcached_nginx'], args.keys, args.size, 'nginx -> memcached')
        script = os.path.join(workdir, 'keys.lua')
        with open(script, 'w') as f:
            f.write(WRK_SCRIPT % {'keys': args.keys})
        print('nginx direct hits: %d keys, %d-byte values, wrk -t%d -c%d, %d x %ds each, '
              'nginx %d workers, uwsgi %d processes, memcached %d threads, %d CPUs'
              % (args.keys, args.size, args.wrk_threads, args.connections, args.rounds,
                 args.duration, args.nginx_workers, args.processes, args.memcached_threads,
                 os.cpu_count() or 0))
        runs = {'ucache': [], 'memcached': []}
        for r in range(args.rounds):
            for name, port in (('ucache', ports['ucache']), ('memcached', ports['memcached_nginx'])):
                rps, errors = wrk(port, args, script)
                runs[name].append(rps)
                print('  round %d  %-9s %10.0f req/s%s' % (r + 1, name, rps,
                                                           ('  (socket errors: %s)' % errors) if errors else ''))
        med = {name: statistics.median(v) for name, v in runs.items()}
        ratio = med['ucache'] / med['memcached'] if med['memcached'] else 0.0
        for name in ('ucache', 'memcached'):
            print('%-9s median %8.0f req/s  (min %.0f, max %.0f)'
                  % (name, med[name], min(runs[name]), max(runs[name])))
        print('ucache/memcached = %.2f (goal >= 1.00: %s)' % (ratio, 'met' if ratio >= 1.0 else 'short'))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump({'nginx_ucache_rps': med['ucache'], 'nginx_memcached_rps': med['memcached'],
                           'nginx_ucache_over_memcached': ratio, 'runs': runs,
                           'value_size': args.size, 'keys': args.keys,
                           'connections': args.connections}, f, indent=1)
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
