"""ucache._rpc - the engine's atomic operations through its RPC functions
(plugins/ucache/serve/rpc.c; docs/PYTHON.md lists them), over any transport: a
backend gives `_call(fn, *args) -> bytes`, this mixin parses the replies.

Every argument is bytes; the first is the cache name (b'' = default).
Replies start with a status byte: Y done, N not done, S stale value,
H/C/T/W single-flight states, E error ("E<CODE> <message>").
"""
import time

from . import _cooperative

LOCK_PREFIX = b'\0uc-'   # the engine's lock and freshness items (flight.c)
RPC_ARG_MAX = 65535      # uWSGI's RPC argument limit


class CacheError(Exception):
    """An RPC function answered an error (its message says which)."""

    def __init__(self, message):
        super().__init__(message)
        self.code = message.split(' ', 1)[0]


def to_bytes(s):
    return s if isinstance(s, bytes) else str(s).encode('utf-8')


def _num(n):
    return str(int(n)).encode()


def _flight_state(r):
    """A ucache_flight_begin/_try reply as (state, value or None, token)."""
    state = r[:1].decode()
    if state == 'C':
        return state, None, r[1:17].decode()
    return state, (r[1:] if state in 'HS' else None), '0'


class PerKeyOps:
    """The batch operations as one get / set / delete per key, given those
    (the fallback, local uWSGI caches; RpcOps replaces two with one RPC)."""

    def get_many(self, keys):
        out = {}
        for k in keys:
            v = self.get(k)
            if v is not None:
                out[k] = v
        return out

    def set_many(self, items, timeout):
        return [k for k, v in items if not self.set(k, v, timeout)]

    def delete_many(self, keys):
        return sum(1 for k in keys if self.delete(k))


class RpcOps(PerKeyOps):
    """The atomic operations, given self._call and self._rpc_name (bytes)."""

    def _no_reply(self, fn):
        """What a call that got no reply lacks (the backends say where)."""
        return 'no reply: this uWSGI instance does not load the ucache plugin (--plugin ucache)'

    def _rpc(self, fn, *args):
        r = self._call(fn.encode(), self._rpc_name, *[to_bytes(a) for a in args])
        if r is None:
            raise CacheError('ENOENT %s: %s' % (fn, self._no_reply(fn)))
        if r[:1] == b'E':
            raise CacheError(r[1:].decode('utf-8', 'replace'))
        return r

    def peek(self, key):
        """The value of key without counting a hit or miss (a caller's own
        re-read: Django's get_or_set after a lost race), or None."""
        r = self._rpc('ucache_peek', key)
        return r[r.index(b':') + 1:] if r[:1] == b'Y' else None

    def _write(self, fn, *args):
        """A write: True (Y), False (N, or the value is too large/cache full)."""
        try:
            return self._rpc(fn, *args)[:1] == b'Y'
        except CacheError as e:
            if e.code in ('E2BIG', 'ENOSPC'):
                return False
            raise

    def add(self, key, value, timeout):
        if len(value) > RPC_ARG_MAX:
            return False
        return self._write('ucache_add', key, value, _num(timeout))

    def gets(self, key):
        r = self._rpc('ucache_gets', key)
        if r[:1] != b'Y':
            return None, 0
        return r[17:], int(r[1:17], 16)

    def cas(self, key, value, version, timeout):
        if len(value) > RPC_ARG_MAX:
            return False
        args = [key, b'%016x' % version, value] + ([] if timeout is None else [_num(timeout)])
        return self._write('ucache_cas', *args)

    def ttl(self, key):
        r = self._rpc('ucache_ttl', key)
        return int(r[1:]) if r[:1] == b'Y' else None

    def touch(self, key, timeout):
        return self._write('ucache_touch', key, _num(timeout))

    def update(self, key, value):
        if len(value) > RPC_ARG_MAX:
            return False
        return self._write('ucache_update', key, value)

    def incr_value(self, key, delta, initial, timeout):
        args = [key, _num(delta)] + ([] if initial is None else [_num(initial), _num(timeout)])
        try:
            r = self._rpc('ucache_incr', *args)
        except CacheError as e:
            if e.code == 'EINVAL':
                raise ValueError('value of %r is not a 64-bit number' % (key,))
            if e.code == 'ERANGE':
                raise OverflowError('incr_value(%r, %d): the result is outside the 64-bit range '
                                    '(nothing written)' % (key, delta))
            raise
        return int(r[1:]) if r[:1] == b'Y' else None

    def get_many(self, keys):
        out = {}
        for i in range(0, len(keys), 250):
            chunk = keys[i:i + 250]
            r, pos = self._rpc('ucache_get_many', *chunk), 1
            for k in chunk:
                if r[pos:pos + 1] == b'-':
                    pos += 1
                    continue
                colon = r.index(b':', pos)
                n = int(r[pos:colon])
                out[k] = r[colon + 1:colon + 1 + n]
                pos = colon + 1 + n
        return out

    def delete_many(self, keys):
        n = 0
        for i in range(0, len(keys), 250):
            n += self._rpc('ucache_delete_many', *keys[i:i + 250])[1:].count(b'1')
        return n

    def get_stale(self, key):
        r = self._rpc('ucache_get_stale', key)
        if r[:1] == b'N':
            return None, False
        return r[1:], r[:1] == b'S'

    def flight_begin(self, key, wait_ms, lock_s):
        """('H'|'S'|'C'|'T', value or None, token), waiting as the worker's
        loop engine allows (_cooperative): in the engine (one RPC), by
        cooperative polls (gevent), or not at all."""
        mode = _cooperative.mode()
        if mode == _cooperative.GEVENT:
            return self._flight_poll(key, wait_ms, lock_s, _cooperative.sleeper())
        if mode == _cooperative.NO_WAIT:
            wait_ms = 0
        return _flight_state(self._rpc('ucache_flight_begin', key, _num(wait_ms), _num(lock_s)))

    def _flight_poll(self, key, wait_ms, lock_s, sleep):
        """ucache_flight_begin's wait as never-waiting tries (W: the lock
        is another caller's) with sleep() between them: 1 ms doubling to
        4 ms, as core/flight.c polls, for at most wait_ms."""
        until, pause = time.monotonic() + wait_ms / 1000.0, 0.001
        while True:
            r = self._rpc('ucache_flight_try', key, _num(lock_s))
            if r[:1] != b'W':
                return _flight_state(r)
            if time.monotonic() >= until:
                return 'T', None, '0'
            sleep(pause)
            pause = min(pause * 2, 0.004)

    def flight_end(self, key, token, value, timeout, stale):
        if len(value) > RPC_ARG_MAX:
            return False
        return self._write('ucache_flight_end', key, token, value, _num(timeout), _num(stale))

    def flight_abort(self, key, token):
        if token and token != '0':
            self._rpc('ucache_flight_abort', key, token)
