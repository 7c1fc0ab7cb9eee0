"""ucache.django - a Django cache backend on ucache that keeps Django's
whole BaseCache contract (Django 3.2 as Debian ships it).

    CACHES = {
        'default': {
            'BACKEND': 'ucache.django.UcacheCache',
            'LOCATION': 'mycache',          # a --cache2 name, or 'name@host:port'
            'TIMEOUT': 300,
            'OPTIONS': {'WAIT': 10, 'LOCK_TIMEOUT': 30},   # get_or_set's single flight
        },
    }

Outside uWSGI (manage.py, cron, Celery) a local LOCATION is an in-process
dict, with a warning; OPTIONS {'fallback': False} makes it an error, and
LOCATION 'name@host:port' reaches the live cache.  Inside uWSGI a LOCATION
that is no cache raises CacheError naming the caches there are.

Values: an int that fits 64 bits is stored as the engine's native number
(so incr/decr are one atomic engine operation, ucache_incr); everything
else is pickled with the highest protocol (a pickle of exactly 8 bytes
gets one pad byte, which unpickling ignores, so the two never collide).
Timeouts: DEFAULT_TIMEOUT = the TIMEOUT setting, None = forever, <= 0 =
expire at once, floats rounded up to whole seconds.  A value too large for
the cache fails to store and the key's old value is deleted, as memcached
does; set_many returns such keys.  clear() empties this cache only.
"""
import pickle
import struct

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from . import backend_for, whole_seconds

_I64 = struct.Struct('=q')
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


def encode(value):
    if type(value) is int and _INT_MIN <= value <= _INT_MAX:
        return _I64.pack(value)
    data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    return data + b'\0' if len(data) == 8 else data


def decode(data):
    return _I64.unpack(data)[0] if len(data) == 8 else pickle.loads(data)


class UcacheCache(BaseCache):
    def __init__(self, server, params):
        super().__init__(params)
        if isinstance(server, (list, tuple)):
            server = server[0] if server else ''
        self._name = server or None
        options = params.get('OPTIONS', {})
        self._wait_ms = int(float(options.get('WAIT', 10)) * 1000)
        self._lock_s = int(options.get('LOCK_TIMEOUT', 30))
        self._b = backend_for(self._name, options.get('fallback', True))

    def _key(self, key, version):
        key = self.make_key(key, version=version)
        self.validate_key(key)
        return key

    def _seconds(self, timeout):
        """Engine seconds: 0 = never, -1 = expire at once."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return 0
        if timeout <= 0:
            return -1
        return whole_seconds(timeout)

    def _store(self, key, data, t):
        """set: True if stored; a value that did not fit leaves no old one."""
        if t < 0:
            self._b.delete(key)
            return True
        if self._b.set(key, data, t):
            return True
        self._b.delete(key)
        return False

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key, t = self._key(key, version), self._seconds(timeout)
        data = encode(value)
        if t < 0:
            return not self._b.exists_(key)
        return self._b.add(key, data, t)

    def get(self, key, default=None, version=None):
        raw = self._b.get(self._key(key, version))
        return default if raw is None else decode(raw)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._store(self._key(key, version), encode(value), self._seconds(timeout))

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        key, t = self._key(key, version), self._seconds(timeout)
        if t < 0:
            return self._b.delete(key)
        return self._b.touch(key, t)

    def delete(self, key, version=None):
        return self._b.delete(self._key(key, version))

    def get_many(self, keys, version=None):
        made = {self._key(k, version): k for k in keys}
        got = self._b.get_many(list(made))
        return {made[k]: decode(v) for k, v in got.items()}

    def has_key(self, key, version=None):
        return self._b.exists_(self._key(key, version))

    def incr(self, key, delta=1, version=None):
        made = self._key(key, version)
        try:
            value = self._b.incr_value(made, delta, None, 0)
        except ValueError:  # not a native number: a CAS loop on the pickle
            return self._incr_pickled(key, made, delta)
        if value is None:
            raise ValueError("Key '%s' not found" % key)
        return value

    def _incr_pickled(self, key, made, delta):
        while True:
            raw, version = self._b.gets(made)
            if raw is None:
                raise ValueError("Key '%s' not found" % key)
            new = decode(raw) + delta
            if self._b.cas(made, encode(new), version, None):
                return new

    def decr(self, key, delta=1, version=None):
        return self.incr(key, -delta, version=version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        t = self._seconds(timeout)
        return [k for k, v in data.items() if not self._store(self._key(k, version), encode(v), t)]

    def delete_many(self, keys, version=None):
        self._b.delete_many([self._key(k, version) for k in keys])

    def clear(self):
        self._b.clear()

    def get_or_set(self, key, default, timeout=DEFAULT_TIMEOUT, version=None):
        """Django's get_or_set, single-flight: on a miss one caller per key
        computes a callable default while the others wait for its value
        (OPTIONS WAIT seconds at most).  One counted lookup (Django's own
        does two on a miss): the re-read after a lost add is a peek."""
        made = self._key(key, version)
        raw = self._b.get(made)
        if raw is not None:
            return decode(raw)
        state, raw, token = self._b.flight_begin(made, self._wait_ms, self._lock_s)
        if state in ('H', 'S'):
            return decode(raw)
        try:
            if callable(default):
                default = default()
            t = self._seconds(timeout)
            if t < 0 or self._b.add(made, encode(default), t):
                return default
        finally:
            self._b.flight_abort(made, token)
        raw = self._b.peek(made)  # as Django: a racing add wins
        return default if raw is None else decode(raw)

    def close(self, **kwargs):
        pass
