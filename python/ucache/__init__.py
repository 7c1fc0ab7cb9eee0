"""ucache - the Python side of ucache (docs/PYTHON.md).

    import ucache
    c = ucache.Cache('mycache', timeout=300)      # a --cache2 name, or None
    c.set('a', {'b': 1}); c.get('a')               # pickled by default
    c.get_or_set('k', compute, timeout=60)         # one process computes
    value, version = c.gets('k'); c.cas('k', new, version)

`Cache` follows uwsgiconf's runtime Cache (get/set/delete/incr/decr/mul/
div/keys/clear/in, the same names, defaults and return values) and adds
the engine's atomic operations.  Inside uWSGI it uses uwsgi.cache_* for
plain reads and writes and the ucache_* RPC functions for the atomic ones;
outside uWSGI it falls back to an in-process store with the same
semantics (expiry included), so an application's tests run without
uwsgi; a 'name@host:port' cache outside uWSGI talks to the server over
the wire.  ucache.django.UcacheCache is the Django backend.
"""
import logging
import math
import os
import pickle
import struct
import warnings

from ._rpc import CacheError

try:
    from ._version import __version__
except ImportError:
    def _read_version():
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            'VERSION')
        try:
            with open(path) as f:
                return f.read().strip() or '0+unknown'
        except OSError:
            return '0+unknown'
    __version__ = _read_version()

try:
    import uwsgi as _uwsgi  # noqa: F401  (only importable inside uWSGI)
    IN_UWSGI = hasattr(_uwsgi, 'cache_get')
except ImportError:
    IN_UWSGI = False

__all__ = ['Cache', 'CacheError', 'PickleSerializer', 'RawSerializer', 'StrSerializer',
           'IntSerializer', 'IN_UWSGI', '__version__', 'invalidate_tags']

_I64 = struct.Struct('=q')
_MISSING = object()


# ------------------------------------------------------------ serializers

class PickleSerializer:
    """Any picklable object (the default), highest protocol."""
    name = 'pickle'

    def dumps(self, value):
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    loads = staticmethod(pickle.loads)


class RawSerializer:
    """bytes as they are (str is stored UTF-8 encoded); get returns bytes."""
    name = 'raw'

    def dumps(self, value):
        return value if isinstance(value, bytes) else str(value).encode('utf-8')

    def loads(self, data):
        return data


class StrSerializer:
    """uwsgiconf's behaviour: str(value) stored UTF-8, get returns str."""
    name = 'str'

    def dumps(self, value):
        return value if isinstance(value, bytes) else str(value).encode('utf-8')

    def loads(self, data):
        return data.decode('utf-8')


class IntSerializer:
    """Native 64-bit integers: the layout of uwsgi.cache_inc() & co."""
    name = 'int'

    def dumps(self, value):
        return _I64.pack(int(value))

    def loads(self, data):
        if len(data) != 8:
            raise ValueError('not a 64-bit number: %d bytes' % len(data))
        return _I64.unpack(data)[0]


SERIALIZERS = {s.name: s for s in (PickleSerializer(), RawSerializer(), StrSerializer(), IntSerializer())}


def _serializer(s):
    if isinstance(s, str):
        if s not in SERIALIZERS:
            raise ValueError('unknown serializer %r (one of %s)' % (s, ', '.join(SERIALIZERS)))
        return SERIALIZERS[s]
    if not (hasattr(s, 'dumps') and hasattr(s, 'loads')):
        raise TypeError('a serializer needs dumps() and loads()')
    return s


FALLBACK_WARNING = ('ucache: not running inside uWSGI: cache %r is an in-process dict, private to '
                    'this process (the live cache is not reached: use LOCATION / name '
                    '"name@host:port" for management commands, cron jobs and workers; fallback=False '
                    'makes this an error)')
_warned = set()


class _NoFallback:
    """Outside uWSGI with fallback=False: every operation raises."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        if attr.startswith('_') or attr == 'cache_get':
            raise AttributeError(attr)
        raise CacheError('ENOENT cache %r: not running inside uWSGI and fallback=False (use '
                         '"name@host:port" to reach a uWSGI instance\'s cache from here)' % (self.name,))


def _warn_fallback(name):
    """Once per cache name and process: warnings and logging both."""
    if name in _warned:
        return
    _warned.add(name)
    msg = FALLBACK_WARNING % (name,)
    warnings.warn(msg, RuntimeWarning, stacklevel=4)
    logging.getLogger('ucache').warning(msg)


def backend_for(name, fallback=True):
    """The storage behind a cache name: uWSGI's, the wire client's, or
    the in-process fallback (with a warning; fallback=False: refused)."""
    if IN_UWSGI:
        from ._uwsgi import UwsgiBackend
        return UwsgiBackend(name)
    if name and '@' in name:
        from ._wire import WireBackend
        return WireBackend(name)
    if not fallback:
        return _NoFallback(name)
    _warn_fallback(name)
    from ._local import LocalBackend
    return LocalBackend(name)


def whole_seconds(timeout):
    """Engine timeouts are whole seconds: round a fraction up (0.5 s
    lives up to 1 s rather than not at all)."""
    return int(math.ceil(timeout))


# ------------------------------------------------------------------ Cache

def _fast_paths(cache, cg, name):
    """Inside uWSGI, get() and get_or_set() on a hit: one Python frame
    around uwsgi.cache_get (a method and a backend call cost ~150 ns each
    here, against ~130 ns for uwsgi.cache_get itself); everything else
    takes the general methods."""
    slow_get, slow_gos = cache._get, cache._get_or_set
    loads = None if isinstance(cache.serializer, RawSerializer) else cache._loads

    if loads is None:  # raw: the hit returns what uwsgi.cache_get returned
        def get(key, default=None, as_int=False, setter=None, preserve_bytes=False):
            v = cg(key, name)
            if as_int:
                return slow_get(key, default, as_int, setter, preserve_bytes)
            return v if v is not None else slow_get(key, default, False, setter, preserve_bytes, None)
    else:
        def get(key, default=None, as_int=False, setter=None, preserve_bytes=False):
            v = cg(key, name)
            if as_int:
                return slow_get(key, default, as_int, setter, preserve_bytes)
            if v is not None:
                return v if preserve_bytes else loads(v)
            return slow_get(key, default, False, setter, preserve_bytes, None)

    def get_or_set(key, callback, timeout=None, wait=10.0, stale=0, lock_timeout=30, _store_none=True):
        if not stale:
            v = cg(key, name)
            if v is not None:
                return v if loads is None else loads(v)
        return slow_gos(key, callback, timeout, wait, stale, lock_timeout, _store_none, _missed=not stale)
    get.__doc__, get_or_set.__doc__ = Cache.get.__doc__, Cache.get_or_set.__doc__
    return get, get_or_set


class Cache:
    """A uWSGI cache by name (None: the default cache; 'name@host:port': a
    remote one).  timeout: default expiry in seconds (None: 300, as
    uwsgiconf; 0: never).  serializer: 'pickle' (default), 'raw', 'str',
    'int', or an object with dumps/loads.  fallback: outside uWSGI, a
    local name is an in-process dict (with a warning); False: an error at
    first use.  Inside uWSGI a name that is no local cache raises
    CacheError naming the caches there are."""

    def __init__(self, name=None, timeout=None, serializer='pickle', fallback=True):
        self.name = name
        self.timeout = 300 if timeout is None else timeout
        self.serializer = _serializer(serializer)
        self._b = backend_for(name, fallback)
        self._dumps, self._loads = self.serializer.dumps, self.serializer.loads
        if hasattr(self._b, 'cache_get'):
            self.get, self.get_or_set = _fast_paths(self, self._b.cache_get, self._b.cache)

    def __repr__(self):
        return 'ucache.Cache(%r, timeout=%r, serializer=%r)' % (self.name, self.timeout, self.serializer.name)

    def _t(self, timeout):
        t = self.timeout if timeout is None else timeout
        return whole_seconds(t) if t > 0 else t

    # -- uwsgiconf's API
    def get(self, key, default=None, as_int=False, setter=None, preserve_bytes=False):
        """The value of key, or default.  as_int: the native 64-bit number
        (incr & co.); preserve_bytes: the stored bytes; setter(key): called
        on a miss, its value (unless None) stored and returned (one caller
        at a time per key: see get_or_set)."""
        return self._get(key, default, as_int, setter, preserve_bytes)

    def _get(self, key, default=None, as_int=False, setter=None, preserve_bytes=False, _raw=_MISSING):
        # _raw: what the fast path's lookup read (its miss is not read twice)
        if _raw is not _MISSING:
            raw = _raw
        else:
            raw = self._b.num(key) if as_int else self._b.get(key)
        if raw is None:
            if setter is None:
                return default
            val = self._get_or_set(key, lambda: setter(key), _store_none=False, _missed=True)
            return default if val is None else val
        if as_int or preserve_bytes:
            return raw
        return self._loads(raw)

    def __getitem__(self, key):
        return self.get(key)

    def set(self, key, value, timeout=None):
        """Store value (an existing key is overwritten).  timeout: seconds,
        0 = never, None = the cache's default, < 0 = expire at once.
        True if stored; False (and the old value gone) if it did not fit."""
        t = self._t(timeout)
        if t < 0:
            self._b.delete(key)
            return True
        if self._b.set(key, self._dumps(value), t):
            return True
        self._b.delete(key)
        return False

    __setitem__ = set

    def delete(self, key):
        """Delete key; True if it existed."""
        return self._b.delete(key)

    __delitem__ = delete

    def __contains__(self, key):
        return self._b.exists_(key)

    @property
    def keys(self):
        """The keys (str) currently in the cache.  ValueError if the cache
        cannot list them."""
        ks = self._b.keys()
        if ks is None:
            raise ValueError('cache %r is unavailable' % (self.name,))
        return [k.decode('utf-8', 'surrogateescape') if isinstance(k, bytes) else k for k in ks]

    def clear(self):
        """Delete every item of this cache (other caches are untouched)."""
        self._b.clear()

    def incr(self, key, delta=1):
        """Add delta to the native number at key (a missing key starts at
        the cache's math_initial, 0, with this cache's timeout).  True if done."""
        return self._b.math('inc', key, delta, self._t(None))

    def decr(self, key, delta=1):
        return self._b.math('dec', key, delta, self._t(None))

    def mul(self, key, value=2):
        return self._b.math('mul', key, value, self._t(None))

    def div(self, key, value=2):
        return self._b.math('div', key, value, self._t(None))

    # -- atomic operations (the engine's; RPC names in docs/PYTHON.md)
    def add(self, key, value, timeout=None):
        """Store value only if key is absent (ucache_add); True if stored."""
        t = self._t(timeout)
        if t < 0:
            return not self._b.exists_(key)
        return self._b.add(key, self._dumps(value), t)

    def get_or_set(self, key, callback, timeout=None, wait=10.0, stale=0, lock_timeout=30,
                   _store_none=True):
        """The value of key; on a miss callback() computes it, in one caller
        at a time per key: the others wait for its result up to `wait`
        seconds, then compute themselves; a caller that dies computing
        frees the key at once (its pid is checked), a hung one after
        lock_timeout s.  stale > 0: the value is kept `stale` s past its
        timeout and served, while one caller refreshes it, to the others
        (costs one RPC per hit instead of a plain read)."""
        return self._get_or_set(key, callback, timeout, wait, stale, lock_timeout, _store_none)

    def _get_or_set(self, key, callback, timeout=None, wait=10.0, stale=0, lock_timeout=30,
                    _store_none=True, _missed=False):
        # One counted lookup per call (the stats' hits/miss): the caller's
        # (_missed: already made and missed), a plain get, or with stale a
        # get_stale; the flight's own reads count nothing.
        if stale:
            raw, is_stale = self._b.get_stale(key)
            if raw is not None and not is_stale:
                return self._loads(raw)
        elif not _missed:
            raw = self._b.get(key)
            if raw is not None:
                return self._loads(raw)
        state, raw, token = self._b.flight_begin(key, int(wait * 1000), lock_timeout)
        if state in ('H', 'S'):
            return self._loads(raw)
        try:
            value = callback()
        except BaseException:
            self._b.flight_abort(key, token)
            raise
        if value is None and not _store_none:
            self._b.flight_abort(key, token)
            return None
        t, data = self._t(timeout), self._dumps(value)
        if not (stale and t > 0 and self._b.flight_end(key, token, data, t, stale)):
            if t >= 0:
                self._b.set(key, data, t)
            self._b.flight_abort(key, token)
        return value

    def gets(self, key, default=None):
        """(value, version) of key; (default, 0) if missing.  The version is
        the token cas() compares."""
        raw, version = self._b.gets(key)
        return (default, 0) if raw is None else (self._loads(raw), version)

    def cas(self, key, value, version, timeout=None):
        """Store value only if key still holds the version gets() returned
        (0: only if absent).  timeout None keeps the item's expiry.  True if
        stored, False if another write came first."""
        return self._b.cas(key, self._dumps(value), version, None if timeout is None else self._t(timeout))

    def ttl(self, key):
        """Seconds key has left: -1 if it never expires, None if missing."""
        return self._b.ttl(key)

    def touch(self, key, timeout=None):
        """Give key a new expiry (None: the default; 0: never); True if it exists."""
        t = self._t(timeout)
        if t < 0:
            return self._b.delete(key)
        return self._b.touch(key, t)

    def update(self, key, value):
        """Overwrite an existing key keeping its expiry; False if missing."""
        return self._b.update(key, self._dumps(value))

    def incr_value(self, key, delta=1, initial=None, timeout=None):
        """Add delta atomically and return the new number.  A missing key
        is None, unless initial is given: it then starts at initial (plus
        delta) with timeout.  ValueError if the value is not a number,
        OverflowError if the result leaves the 64-bit range (the value is
        then unchanged)."""
        return self._b.incr_value(key, delta, initial, self._t(timeout) if initial is not None else 0)

    def get_many(self, keys):
        """{key: value} of the keys present (one RPC per 250 keys)."""
        got = self._b.get_many(list(keys))
        return {k: self._loads(v) for k, v in got.items()}

    def set_many(self, mapping, timeout=None):
        """Store every item; returns the keys that could not be stored."""
        t = self._t(timeout)
        if t < 0:
            self._b.delete_many(list(mapping))
            return []
        failed = self._b.set_many([(k, self._dumps(v)) for k, v in mapping.items()], t)
        for k in failed:
            self._b.delete(k)
        return failed

    def delete_many(self, keys):
        """Delete keys; returns how many existed."""
        return self._b.delete_many(list(keys))

    def get_stale(self, key, default=None):
        """(value, is_stale): a value past its get_or_set timeout but inside
        its stale window comes back with True; (default, False) if missing."""
        raw, stale = self._b.get_stale(key)
        return (default, False) if raw is None else (self._loads(raw), stale)


def invalidate_tags(cache, tags, timeout=5.0):
    """Invalidate tags of the HTTP response cache (ucache.wsgi.invalidate_tags:
    a local cache name, or 'name@host:port'); docs/HTTP.md."""
    from .wsgi import invalidate_tags as invalidate
    return invalidate(cache, tags, timeout)
