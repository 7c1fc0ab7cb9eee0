"""ucache._local - the in-process fallback outside uWSGI: the same
semantics as the engine (seconds-granular expiry on the wall clock,
set-if-absent add, 8-byte native counters, versions, single flight across
threads, stale markers), so an application's tests run without uwsgi.
Caches are shared by name within the process, as uWSGI's are within an
instance."""
import hashlib
import struct
import threading
import time

from ._rpc import PerKeyOps

_STORES = {}
_STORES_LOCK = threading.Lock()
_I64 = struct.Struct('=q')


def _now():
    return int(time.time())


def _expiry(timeout):
    return _now() + int(timeout) if timeout else 0


def _version(value):
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), 'little') or 1


def _key(k):
    return k if isinstance(k, bytes) else str(k).encode('utf-8')


class _Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.items = {}    # key -> [value, expires]
        self.flights = {}  # key -> [token, expires]
        self.fresh = {}    # key -> (fresh_until, version)
        self.tokens = 0


class LocalBackend(PerKeyOps):
    def __init__(self, name):
        self.name = name
        with _STORES_LOCK:
            self.s = _STORES.setdefault(name or '', _Store())

    # -- items (lock held)
    def _live(self, k):
        it = self.s.items.get(k)
        if it is None:
            return None
        if it[1] and it[1] <= _now():
            del self.s.items[k]
            return None
        return it

    def get(self, key):
        with self.s.lock:
            it = self._live(_key(key))
            return it[0] if it else None

    peek = get  # the fallback counts nothing

    def set(self, key, value, timeout):
        with self.s.lock:
            self.s.items[_key(key)] = [bytes(value), _expiry(timeout)]
        return True

    def add(self, key, value, timeout):
        k = _key(key)
        with self.s.lock:
            if self._live(k):
                return False
            self.s.items[k] = [bytes(value), _expiry(timeout)]
        return True

    def exists(self, key):
        with self.s.lock:
            return True if self._live(_key(key)) else None

    def exists_(self, key):
        return bool(self.exists(key))

    def delete(self, key):
        k = _key(key)
        with self.s.lock:
            found = self._live(k) is not None  # an expired item is missing, as in the engine
            self.s.items.pop(k, None)
            return found

    def clear(self):
        with self.s.lock:
            self.s.items.clear()
            self.s.fresh.clear()

    def keys(self):
        with self.s.lock:
            return [k for k in list(self.s.items) if self._live(k)]

    def num(self, key):
        v = self.get(key)
        return _I64.unpack(v)[0] if v is not None and len(v) == 8 else None

    def _math_locked(self, k, fn, initial, timeout, existing):
        it = self._live(k)
        if it is None:
            if existing:
                return None
            self.s.items[k] = [_I64.pack(_int64(fn(initial))), _expiry(timeout)]
        elif len(it[0]) != 8:
            raise ValueError('value of %r is not a 64-bit number' % (k,))
        else:
            it[0] = _I64.pack(_int64(fn(_I64.unpack(it[0])[0])))
        return _I64.unpack(self.s.items[k][0])[0]

    def math(self, op, key, delta, timeout):
        fn = {'inc': lambda a: a + delta, 'dec': lambda a: a - delta, 'mul': lambda a: a * delta,
              'div': lambda a: _cdiv(a, delta)}[op]
        with self.s.lock:
            try:
                self._math_locked(_key(key), fn, 0, timeout, False)
            except (ValueError, OverflowError):
                return False
        return True

    def incr_value(self, key, delta, initial, timeout):
        with self.s.lock:
            return self._math_locked(_key(key), lambda a: a + delta, initial or 0, timeout, initial is None)

    # -- atomic operations (the engine's cas.c)
    def gets(self, key):
        v = self.get(key)
        return (v, _version(v)) if v is not None else (None, 0)

    def cas(self, key, value, version, timeout):
        k = _key(key)
        with self.s.lock:
            it = self._live(k)
            if version == 0:
                if it:
                    return False
            elif not it or _version(it[0]) != version:
                return False
            self.s.items[k] = [bytes(value), it[1] if (timeout is None and it) else _expiry(timeout or 0)]
        return True

    def ttl(self, key):
        with self.s.lock:
            it = self._live(_key(key))
            if not it:
                return None
            return -1 if not it[1] else max(0, it[1] - _now())

    def touch(self, key, timeout):
        with self.s.lock:
            it = self._live(_key(key))
            if it:
                it[1] = _expiry(timeout)
            return bool(it)

    def update(self, key, value):
        with self.s.lock:
            it = self._live(_key(key))
            if it:
                it[0] = bytes(value)
            return bool(it)

    # -- single flight and stale values (the engine's flight.c)
    def get_stale(self, key):
        k = _key(key)
        with self.s.lock:
            it = self._live(k)
            if not it:
                return None, False
            f = self.s.fresh.get(k)
            return it[0], bool(f and f[1] == _version(it[0]) and _now() >= f[0])

    def flight_begin(self, key, wait_ms, lock_s):
        k, until, pause = _key(key), time.monotonic() + wait_ms / 1000.0, 0.001
        while True:
            with self.s.lock:
                v, stale = self.get_stale(k)
                if v is not None and not stale:
                    return 'H', v, '0'
                fl = self.s.flights.get(k)
                if fl is None or fl[1] <= _now():
                    self.s.tokens += 1
                    token = '%016x' % self.s.tokens
                    self.s.flights[k] = [token, _now() + max(1, int(lock_s))]
                    return 'C', None, token
                if v is not None:
                    return 'S', v, '0'
            if time.monotonic() >= until:
                return 'T', None, '0'
            time.sleep(pause)
            pause = min(pause * 2, 0.004)

    def flight_abort(self, key, token):
        k = _key(key)
        with self.s.lock:
            fl = self.s.flights.get(k)
            if fl and fl[0] == token:
                del self.s.flights[k]

    def flight_end(self, key, token, value, timeout, stale):
        k = _key(key)
        with self.s.lock:
            life = timeout + stale if timeout and stale else timeout
            self.set(k, value, life)
            if life != timeout:
                self.s.fresh[k] = (_now() + timeout, _version(bytes(value)))
            self.flight_abort(k, token)
        return True


def _cdiv(a, d):
    """C's int64 division: truncates towards zero; by zero gives 0."""
    if d == 0:
        return 0
    q = abs(a) // abs(d)
    return q if (a < 0) == (d < 0) else -q


def _int64(n):
    """int64 arithmetic, as the engine's: a result outside the range is an
    OverflowError (nothing written), never a wrap."""
    if not -(1 << 63) <= n < (1 << 63):
        raise OverflowError('the result %d is outside the 64-bit range (nothing written)' % n)
    return n
