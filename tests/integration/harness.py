"""harness.py - start real uwsgi (and nginx) instances on loopback for the
integration tests.

Rules every test follows through this module:
  - ports come from binding port 0 on 127.0.0.1 (free_port);
  - readiness is polled (connect, or a request), never slept for;
  - every process has a watchdog that kills it after WATCHDOG seconds;
  - processes are started in their own session and stopped by PID
    (SIGINT, then SIGKILL to the process group if it lingers);
  - nothing outlives the runner, however it ends (a normal exit, SIGTERM
    from `timeout` or a CI watchdog, Ctrl-C, SIGKILL): each group started
    is registered with reaper.py, which SIGKILLs the groups left when the
    runner is gone (see _Reaper).

Environment: UCACHE_PLUGIN (path of ucache_plugin.so, default: the repo
root's), UWSGI (the uwsgi binary, default "uwsgi"), NGINX (default nginx).
"""
import atexit
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(HERE, 'apps')
REAPER = os.path.join(HERE, 'reaper.py')
PLUGIN = os.environ.get('UCACHE_PLUGIN', os.path.join(ROOT, 'ucache_plugin.so'))
UWSGI = os.environ.get('UWSGI', 'uwsgi')
NGINX = os.environ.get('NGINX', shutil.which('nginx') or '/usr/sbin/nginx')
# UCACHE_TEST_STOCK=1 runs the instances without ucache, on the stock cache:
# a way to check that an expectation is the stock behaviour.
STOCK = os.environ.get('UCACHE_TEST_STOCK') == '1'
WATCHDOG = float(os.environ.get('UCACHE_TEST_WATCHDOG', '60'))
READY_TIMEOUT = 15.0


_HANDED_OUT = set()  # (kind, port) free_port() returned in this process
_HANDED_OUT_LOCK = threading.Lock()


def free_port(kind=socket.SOCK_STREAM):
    """A TCP (or, with kind=socket.SOCK_DGRAM, UDP) port on 127.0.0.1 that
    was free a moment ago and that this process never handed out before.
    The kernel gives the same port to bind(0) calls made one after the
    other often enough (136 repeats in 2000 calls here) that one instance's
    --stats and --socket once got the same port (uwsgi: "Address already
    in use"); a port handed out is never handed out again."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        with _HANDED_OUT_LOCK:
            if (kind, port) not in _HANDED_OUT:
                _HANDED_OUT.add((kind, port))
                return port
    raise AssertionError('free_port: the kernel offered only ports this run has handed out already')


def poll(predicate, timeout=10.0, interval=0.02, what='condition'):
    """Call predicate until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(interval)


def stats_json(port, timeout=10.0):
    """The uWSGI stats server's JSON on port.  The master opens that socket
    after the workers it spawns can already answer, so a test that starts
    with the app socket ready polls until the stats socket listens too."""
    def read():
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
                chunks = []
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        return json.loads(b''.join(chunks))
                    chunks.append(chunk)
        except ConnectionRefusedError:
            return None
    return poll(read, timeout, 0.02, 'the stats server on port %d' % port)


def app(name):
    return os.path.join(APPS, name)


# ------------------------------------------------------------ wire helpers

def uwsgi_vars(pairs):
    """Encode uwsgi vars: (u16 LE len, key, u16 LE len, value)*."""
    out = b''
    for k, v in pairs:
        k = k.encode() if isinstance(k, str) else k
        v = v.encode() if isinstance(v, str) else v
        out += struct.pack('<H', len(k)) + k + struct.pack('<H', len(v)) + v
    return out


def uwsgi_packet(modifier1, modifier2, payload):
    return struct.pack('<BHB', modifier1, len(payload), modifier2) + payload


def parse_vars(data):
    out, pos = {}, 0
    while pos < len(data):
        (kl,) = struct.unpack_from('<H', data, pos)
        k = data[pos + 2:pos + 2 + kl]
        pos += 2 + kl
        (vl,) = struct.unpack_from('<H', data, pos)
        out[k.decode()] = data[pos + 2:pos + 2 + vl]
        pos += 2 + vl
    return out


def _connect(addr, timeout):
    """A connection to 127.0.0.1:addr (a port) or to the unix socket addr."""
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(addr)
        return s
    return socket.create_connection(('127.0.0.1', addr), timeout=timeout)


def raw_exchange(addr, data, timeout=10.0):
    """Send data to 127.0.0.1:addr (a port) or the unix socket addr (a
    path), return everything read until close."""
    with _connect(addr, timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)


def uwsgi_request(port, env, modifier1=0, body=b''):
    """A uwsgi-protocol request (as nginx sends it); returns the raw reply."""
    base = {'REQUEST_METHOD': 'GET', 'SERVER_PROTOCOL': 'HTTP/1.1',
            'SERVER_NAME': 'localhost', 'SERVER_PORT': '80', 'QUERY_STRING': ''}
    base.update(env)
    if 'PATH_INFO' in base and 'REQUEST_URI' not in base:
        base['REQUEST_URI'] = base['PATH_INFO']
    if body:
        base['CONTENT_LENGTH'] = str(len(body))
    return raw_exchange(port, uwsgi_packet(modifier1, 0, uwsgi_vars(base.items())) + body)


def http_request(port, method, path, body=None, headers=None, timeout=15):
    """An HTTP request to 127.0.0.1:port: (status, {header: value}, body)."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def http_body(raw):
    """Split a raw HTTP response into (status line, body)."""
    head, _, body = raw.partition(b'\r\n\r\n')
    return head.split(b'\r\n')[0].decode(), body


# ------------------------------------------------------- value encoding

def enc(value):
    """JSON-able form of a Python value (bytes as {"b": latin-1 text})."""
    if isinstance(value, bytes):
        return {'b': value.decode('latin-1')}
    if isinstance(value, (list, tuple)):
        return [enc(v) for v in value]
    return value


def dec(value):
    if isinstance(value, dict) and set(value) == {'b'}:
        return value['b'].encode('latin-1')
    if isinstance(value, dict) and 'exc' in value:
        return ('EXC', value['exc'])
    if isinstance(value, list):
        return [dec(v) for v in value]
    return value


# ---------------------------------------------------------------- processes

def proc_status(pid):
    """Fields of /proc/PID/status as a dict, {} if the process is gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            return dict(line.rstrip('\n').split(':\t', 1) for line in f if ':\t' in line)
    except OSError:
        return {}


def children(pid):
    """Live (not zombie) children of pid."""
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return []
    return [p for p in pids if proc_status(p).get('State', 'Z')[:1] not in ('Z', 'X', '')]


def catches(pid, *sigs):
    """True once pid has handlers for sigs, none of them blocked (uwsgi's
    master installs its handlers only after it has spawned the workers: a
    signal sent before that is lost)."""
    st = proc_status(pid)
    if not st:
        return False
    cgt, blk = int(st['SigCgt'], 16), int(st['SigBlk'], 16)
    mask = sum(1 << (s - 1) for s in sigs)
    return cgt & mask == mask and not blk & mask


# ---------------------------------------------------------------- reaper
# What the harness starts runs in its own session: a signal to the runner's
# process group (Ctrl-C, `timeout`'s kill(0, SIGTERM)) never reaches it, and
# neither does the runner's death.  So every group is registered with one
# reaper.py per runner, which SIGKILLs the groups left once the runner has
# closed its pipe, at exit or by dying.  Not PR_SET_PDEATHSIG: setuid clears
# it (a uwsgi --uid www-data master and its 2 workers outlived a SIGKILLed
# parent here, where without --uid all three died), it fires when the
# *thread* that forked exits, and it reaches only the process it was set in.
# The one gap: a runner killed between a fork and its registration (the
# time of one pipe write).

def group_alive(pgid):
    """True while any process (a zombie too) is in process group pgid."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class _Reaper:
    """The groups this runner started, as told to reaper.py."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc = None        # reaper.py, started with the first group
        self.groups = {}        # pgid -> the Popen of its leader

    def add(self, proc):
        """Register the group of proc, started with start_new_session."""
        with self.lock:
            if self.proc is None:
                self.proc = subprocess.Popen([sys.executable, '-I', REAPER], stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, start_new_session=True)
                atexit.register(self.close)
            self._sweep()
            self.groups[proc.pid] = proc
            self._send('+%d' % proc.pid)

    def sweep(self):
        with self.lock:
            self._sweep()

    def _sweep(self):
        """Forget the groups whose leader was reaped and whose members are
        all gone: from then on their id may be another's group (pid_max is
        32768 here, and other engineers run tests on this machine)."""
        for pgid, proc in list(self.groups.items()):
            if proc.returncode is not None and not group_alive(pgid):
                del self.groups[pgid]
                self._send('-%d' % pgid)

    def _send(self, line):
        try:
            self.proc.stdin.write(line.encode() + b'\n')
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError('reaper.py (pid %d) is gone (%s): a killed runner would leave its '
                               'processes running' % (self.proc.pid, self.proc.poll())) from None

    def close(self):
        """At exit: what the tests left running is SIGKILLed now."""
        with self.lock:
            self.proc.stdin.close()
            self.proc.wait(10)


_REAPER = _Reaper()


def start_group(argv, **popen_args):
    """Popen(argv) in its own session, registered with the reaper."""
    proc = subprocess.Popen(argv, start_new_session=True, **popen_args)
    _REAPER.add(proc)
    return proc


class Process:
    """A child process in its own session, with a log file and a watchdog."""

    def __init__(self, argv, workdir, env=None):
        self.argv = argv
        self.workdir = workdir
        self.log_path = os.path.join(workdir, 'log.txt')
        self.env = env
        self.proc = None
        self.watchdog = None

    def start(self):
        env = dict(os.environ)
        env.update(self.env or {})
        with open(self.log_path, 'wb') as log:
            self.proc = start_group(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir, env=env)
        self.watchdog = threading.Timer(WATCHDOG, self.kill)
        self.watchdog.daemon = True
        self.watchdog.start()
        return self

    def log(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        if self.watchdog:
            self.watchdog.cancel()
        # SIGINT is the master's clean shutdown; one sent before the master
        # installed its handlers is lost, so repeat it until it exits
        deadline = time.monotonic() + 5
        while self.alive() and time.monotonic() < deadline:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        # whatever is left of the group (workers of a killed master)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(5)
        _REAPER.sweep()


# ------------------------------------------------------- deployment mode
# Debian runs apps as root dropping to www-data (/etc/uwsgi/apps-enabled
# with `uid = www-data`), under a master, and reloads them gracefully on
# every deploy.  Uwsgi(..., deploy=True) starts an instance that way:
# --master --uid/--gid DEPLOY_USER, its workdir owned by that user, the
# plugin and the apps read from a world-readable copy (the re-exec'd master
# of a reload runs as the user and loads them again; a checkout under a
# 0700 folder would be unreadable to it), and Uwsgi.reload() in the test.
DEPLOY_USER = os.environ.get('UCACHE_TEST_DEPLOY_USER', 'www-data')
_deploy_copy = None


def deploy_supported():
    """None when the deployment mode can run here, else why not."""
    if os.geteuid() != 0:
        return 'the deployment mode drops from root to %s: run as root' % DEPLOY_USER
    try:
        pwd.getpwnam(DEPLOY_USER)
    except KeyError:
        return 'no user %s' % DEPLOY_USER
    return None


def skip_unless_deployable(test, stock_why=None):
    """Skip test where the deployment mode cannot run (not root, no user),
    or under UCACHE_TEST_STOCK=1 when stock_why says why it is ucache's."""
    why = deploy_supported() or (STOCK and stock_why)
    if why:
        test.skipTest(why)


def deploy_user():
    """(uid, gid) of DEPLOY_USER."""
    pw = pwd.getpwnam(DEPLOY_USER)
    return pw.pw_uid, pw.pw_gid


def world_readable_copy(src, prefix):
    """(folder, copy): a copy of src (a file or a tree, without __pycache__)
    in a new folder the deployment user can read (a reloaded master loads
    plugins and apps again as that user); removed at exit."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    os.chmod(d, 0o755)
    dst = os.path.join(d, os.path.basename(src))
    if os.path.isdir(src):
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__'))
    else:
        shutil.copy2(src, dst)
    for root, dirs, files in os.walk(d):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    return d, dst


def _deploy_paths():
    """{original path: world-readable copy} for the plugin and the apps."""
    global _deploy_copy
    if _deploy_copy is None:
        _deploy_copy = {PLUGIN: world_readable_copy(PLUGIN, 'ucache-deploy-')[1],
                        APPS: world_readable_copy(APPS, 'ucache-deploy-')[1]}
    return _deploy_copy


def deploy_path(arg):
    """arg with the plugin's or the apps' path replaced by its world-readable
    copy (an instance that drops to --uid cannot read a checkout under a
    0700 folder, as a fresh clone in mktemp -d is)."""
    for orig, copy in _deploy_paths().items():
        if arg == orig or arg.startswith(orig + os.sep):
            return copy + arg[len(orig):]
    return arg


def _worker_count(args):
    for flag in ('--processes', '-p', '--workers', '-w'):
        if flag in args:
            return int(args[args.index(flag) + 1])
    return 1


class Uwsgi(Process):
    """A uwsgi instance with ucache loaded and an HTTP socket on a free port.

    args: extra uwsgi options.  plugins: loaded before ucache.
    http: add --http-socket (self.port).  socket: add a uwsgi-protocol
    --socket (self.uport) too.  deploy: the deployment mode above (the test
    is skipped where it cannot run: not root, no DEPLOY_USER); its
    instance has --touch-reload self.touch_path.
    """

    def __init__(self, *args, plugins=('python3',), ucache=True, http=True, socket_=False,
                 env=None, deploy=False):
        self.workdir = tempfile.mkdtemp(prefix='ucache-it-')
        self.port = free_port() if http else None
        self.uport = free_port() if socket_ else None
        self.deploy = deploy
        self.nworkers = _worker_count(args)
        argv = [UWSGI]
        for p in plugins:
            argv += ['--plugin', p]
        if ucache and not STOCK:
            argv += ['--plugin', PLUGIN]
        if http:
            argv += ['--http-socket', '127.0.0.1:%d' % self.port]
        if socket_:
            argv += ['--socket', '127.0.0.1:%d' % self.uport]
        argv += ['--disable-logging'] + list(args)
        if deploy:
            why = deploy_supported()
            if why:
                shutil.rmtree(self.workdir, ignore_errors=True)
                raise unittest.SkipTest(why)
            uid, gid = deploy_user()
            os.chown(self.workdir, uid, gid)
            self.touch_path = os.path.join(self.workdir, 'reload.touch')
            open(self.touch_path, 'w').close()
            argv = [deploy_path(a) for a in argv]
            if '--master' not in argv:
                argv.append('--master')
            argv += ['--uid', DEPLOY_USER, '--gid', DEPLOY_USER,
                     '--touch-reload', self.touch_path]
        super().__init__(argv, self.workdir, env)

    def __enter__(self):
        self.start()
        try:
            self.wait_ready()
            if self.deploy:
                self.wait_master()
        except Exception:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def wait_ready(self):
        ports = [p for p in (self.port, self.uport) if p]

        def ready():
            if not self.alive():
                raise AssertionError('uwsgi exited (%s):\n%s' % (self.proc.returncode, self.log()))
            for port in ports:
                try:
                    socket.create_connection(('127.0.0.1', port), timeout=1).close()
                except OSError:
                    return False
            return 'spawned uWSGI worker' in self.log()
        poll(ready, READY_TIMEOUT, what='uwsgi to listen')

    def wait_master(self):
        """Until the master and every worker have their signal handlers: a
        worker still starting ignores the master's SIGHUP (the reload then
        waits for it the whole --reload-mercy)."""
        def ready():
            workers = children(self.proc.pid)
            return (len(workers) >= self.nworkers and
                    catches(self.proc.pid, signal.SIGINT, signal.SIGHUP) and
                    all(catches(w, signal.SIGHUP) for w in workers))
        poll(ready, READY_TIMEOUT, what='the master and workers to finish starting')

    def reload(self, how='sighup', expect=None):
        """A graceful reload, as a deploy does it: 'sighup' (the master
        re-execs itself, as `systemctl reload`/`service uwsgi reload`), or
        'touch' (--touch-reload, deploy mode), or a function that triggers it.  Returns once every worker
        of the new generation answers; returns the log since the trigger.
        expect: a text the log must show after the trigger."""
        self.wait_master()
        log_len = len(self.log())
        spawned = self.log().count('spawned uWSGI worker')
        if callable(how):
            how()
        elif how == 'sighup':
            self.proc.send_signal(signal.SIGHUP)
        elif how == 'touch':
            # uWSGI compares whole seconds: a later second than the one it
            # recorded, even within a second of the start or the last touch
            t = max(time.time(), os.stat(self.touch_path).st_mtime + 1)
            os.utime(self.touch_path, (t, t))
        else:
            raise ValueError(how)

        def respawned():
            if not self.alive():
                raise AssertionError('uwsgi died in the reload (%s):\n%s'
                                     % (self.proc.returncode, self.log()[log_len - 2000:]))
            return self.log().count('spawned uWSGI worker') >= spawned + self.nworkers
        poll(respawned, 30, what='the workers of the reload')
        if expect is not None:
            try:
                poll(lambda: expect in self.log()[log_len:], 20, what='the reload: %r' % expect)
            except AssertionError:
                raise AssertionError('no %r after the reload:\n%s' % (expect, self.log()[log_len - 3000:]))
        self.wait_ready()
        self.wait_master()
        return self.log()[log_len:]

    # -- HTTP
    def request(self, path, method='GET', body=None, headers=None, timeout=15):
        return http_request(self.port, method, path, body, headers, timeout)

    def get(self, path):
        status, _, body = self.request(path)
        if status != 200:
            raise AssertionError('GET %s -> %d %r\n%s' % (path, status, body, self.log()))
        return body

    def ops(self, *ops):
        """Run uwsgi.* calls in a worker (apps/ops_app.py); exact results."""
        status, _, body = self.request('/ops', 'POST', json.dumps(enc(list(ops))))
        if status != 200:
            raise AssertionError('ops -> %d %r\n%s' % (status, body, self.log()))
        return dec(json.loads(body))

    def op(self, *call):
        return self.ops(list(call))[0]


def run_to_exit(args, timeout=20, plugins=('python3',), ucache=True):
    """Run uwsgi expected to exit by itself; returns (returncode, output)."""
    argv = [UWSGI]
    for p in plugins:
        argv += ['--plugin', p]
    if ucache:
        argv += ['--plugin', PLUGIN]
    argv += list(args)
    # its own session: on a timeout the whole group goes (killing the master
    # alone left a forked worker spinning on its closed master pipe, 85% of
    # a CPU for 96 minutes, seen while this machine ran the benchmarks)
    p = start_group(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # workers the master left behind
        except ProcessLookupError:
            pass
        _REAPER.sweep()
    return p.returncode, out.decode('utf-8', 'replace')


class Nginx(Process):
    """nginx in the foreground on a free port; server_conf goes in server {},
    main_conf in the main context (load_module, a master and workers)."""

    def __init__(self, server_conf, main_conf='master_process off;'):
        workdir = tempfile.mkdtemp(prefix='ucache-nginx-')
        self.port = free_port()
        conf = os.path.join(workdir, 'nginx.conf')
        with open(conf, 'w') as f:
            f.write(NGINX_CONF % {'dir': workdir, 'port': self.port, 'server': server_conf, 'main': main_conf})
        super().__init__([NGINX, '-c', conf, '-p', workdir], workdir)

    def __enter__(self):
        self.start()

        def ready():
            if not self.alive():
                raise AssertionError('nginx exited:\n%s' % self.log())
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return True
            except OSError:
                return False
        poll(ready, READY_TIMEOUT, what='nginx to listen')
        return self

    def __exit__(self, *exc):
        if self.watchdog:
            self.watchdog.cancel()
        if self.alive():
            self.proc.terminate()
            self.proc.wait(5)
        _REAPER.sweep()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def get(self, path):
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=15)
        try:
            conn.request('GET', path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


NGINX_CONF = """
daemon off;
%(main)s
error_log %(dir)s/error.log;
pid %(dir)s/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    uwsgi_temp_path %(dir)s/uwsgi;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    scgi_temp_path %(dir)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        %(server)s
    }
}
"""


def need(path_or_cmd):
    """Skip the test unless a binary/plugin file exists."""
    ok = os.path.exists(path_or_cmd) or shutil.which(path_or_cmd)
    return unittest.skipUnless(ok, '%s not installed' % path_or_cmd)


def stock_plugin(name):
    return os.path.join('/usr/lib/uwsgi/plugins', '%s_plugin.so' % name)
