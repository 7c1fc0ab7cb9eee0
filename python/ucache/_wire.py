"""ucache._wire - a name@host:port cache from outside uWSGI: the cache
commands over modifier1 111 / modifier2 17 (docs/PROTOCOLS.md) and
the atomic operations over uWSGI RPC (modifier1 173, modifier2 1: raw
reply; the server needs --plugin rpc).  One connection per command, as
uWSGI's own remote cache client does."""
import socket
import struct

from ._local import _cdiv, _int64
from ._rpc import RpcOps

_I64 = struct.Struct('=q')


def _vars(pairs):
    out = b''
    for k, v in pairs:
        k, v = k.encode(), v if isinstance(v, bytes) else str(v).encode()
        out += struct.pack('<H', len(k)) + k + struct.pack('<H', len(v)) + v
    return out


def _parse_vars(data):
    out, pos = {}, 0
    while pos + 2 <= len(data):
        (kl,) = struct.unpack_from('<H', data, pos)
        k = data[pos + 2:pos + 2 + kl].decode('latin-1')
        pos += 2 + kl
        (vl,) = struct.unpack_from('<H', data, pos)
        out[k] = data[pos + 2:pos + 2 + vl]
        pos += 2 + vl
    return out


class WireBackend(RpcOps):
    def __init__(self, name, timeout=5.0):
        self.name = name
        self.cache, addr = name.split('@', 1)
        self._rpc_name = self.cache.encode()
        if addr.startswith('/'):
            self.family, self.addr = socket.AF_UNIX, addr
        else:
            host, port = addr.rsplit(':', 1)
            self.family, self.addr = socket.AF_INET, (host or '127.0.0.1', int(port))
        self.timeout = timeout

    def _exchange(self, data):
        with socket.socket(self.family, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            s.connect(self.addr)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                c = s.recv(65536)
                if not c:
                    return b''.join(chunks)
                chunks.append(c)

    def _magic(self, cmd, key=None, value=None, expires=None, extra=()):
        """(vars, body) of a modifier2 17 reply, or None (refused/missing);
        extra: more (name, value) vars (invalidate's tags)."""
        pairs = [('cmd', cmd)] + list(extra)
        if key is not None:
            pairs.append(('key', key if isinstance(key, bytes) else str(key).encode('utf-8')))
        if value is not None:
            pairs.append(('size', len(value)))
        if expires is not None:
            pairs.append(('expires', int(expires)))
        if self.cache:
            pairs.append(('cache', self.cache))
        body = _vars(pairs)
        if len(body) > 65535:
            raise ValueError('ucache: %s request too large for one packet (%d bytes of vars)' % (cmd, len(body)))
        r = self._exchange(struct.pack('<BHB', 111, len(body), 17) + body + (value or b''))
        if len(r) < 4:
            return None
        size = struct.unpack_from('<H', r, 1)[0]
        return _parse_vars(r[4:4 + size]), r[4 + size:]

    def _no_reply(self, fn):
        """Why an RPC got no reply: a server that answers modifier1 111
        (a modifier2 5 lookup always answers) lacks uWSGI's rpc plugin."""
        try:
            cache_server = self._exchange(struct.pack('<BHB', 111, 4, 5) + b'\0uc-')[:1] == b'\x6f'
        except OSError:
            cache_server = False
        where = '%s:%s' % self.addr if self.family == socket.AF_INET else self.addr
        if cache_server:
            return ('no reply from %s to RPC (modifier1 173): the server answers the cache protocol '
                    '(modifier1 111) but does not load uWSGI\'s rpc plugin: add --plugin rpc to its '
                    'uwsgi command line' % where)
        return ('no reply from %s (modifier1 111 or 173): it needs uwsgi with --plugin ucache and '
                '--plugin rpc' % where)

    def _call(self, fn, *args):
        items = [fn.encode() if isinstance(fn, str) else fn] + list(args)
        body = b''.join(struct.pack('<H', len(a)) + a for a in items)
        r = self._exchange(struct.pack('<BHB', 173, len(body), 1) + body)
        return r or None

    def get(self, key):
        r = self._magic('get', key)
        return r[1] if r else None

    def set(self, key, value, timeout):
        return self._magic('update', key, value, timeout) is not None

    def add(self, key, value, timeout):
        return self._magic('set', key, value, timeout) is not None

    def exists(self, key):
        return True if self._magic('exists', key) else None

    def exists_(self, key):
        return bool(self.exists(key))

    def delete(self, key):
        return self._magic('del', key) is not None

    def clear(self):
        self._magic('clear')

    def keys(self):
        raise ValueError('cache %r: the remote protocol cannot list keys' % self.name)

    def num(self, key):
        v = self.get(key)
        return _I64.unpack(v)[0] if v is not None and len(v) == 8 else None

    def math(self, op, key, delta, timeout):
        if op in ('inc', 'dec'):
            try:
                self.incr_value(key, delta if op == 'inc' else -delta, 0, timeout)
                return True
            except (ValueError, OverflowError):
                return False
        while True:  # mul/div: no RPC of their own; a CAS loop is as atomic
            cur, ver = self.gets(key)
            if cur is not None and len(cur) != 8:
                return False
            a = _I64.unpack(cur)[0] if cur is not None else 0
            try:
                n = _int64(a * delta if op == 'mul' else _cdiv(a, delta))
            except OverflowError:
                return False
            if self.cas(key, _I64.pack(n), ver, None if cur is not None else timeout):
                return True
