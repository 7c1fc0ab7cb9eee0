"""ucache._uwsgi - the backend inside uWSGI: uwsgi.cache_* for plain
reads and writes (the fast path, any value size), the ucache_* RPC
functions (uwsgi.call; uwsgi.rpc for a name@host:port cache) for the
atomic operations."""
import uwsgi  # only importable inside uWSGI

from ._rpc import LOCK_PREFIX, RpcOps


class UwsgiBackend(RpcOps):
    def __init__(self, name):
        self.name = name
        if name and '@' in name:
            local, addr = name.split('@', 1)
            self._rpc_name = local.encode()
            self._call = lambda fn, *a: uwsgi.rpc(addr, fn, *a)
        else:
            self._rpc_name = (name or '').encode()
            self._call = uwsgi.call
        self.cache_get = uwsgi.cache_get  # Cache's fast paths call it directly
        n = name
        if n is None:   # uwsgi.cache_*'s cache argument is "s": no None
            self.get = uwsgi.cache_get
            self.exists = uwsgi.cache_exists
            self._num = uwsgi.cache_num
            self._del = uwsgi.cache_del
            self._set = lambda k, v, t: uwsgi.cache_update(k, v, t)
            self._add = lambda k, v, t: uwsgi.cache_set(k, v, t)
            self._keys = uwsgi.cache_keys
            self._clear = uwsgi.cache_clear
            self._math = {op: getattr(uwsgi, 'cache_' + op) for op in ('inc', 'dec', 'mul', 'div')}
        else:
            self.get = lambda k: uwsgi.cache_get(k, n)
            self.exists = lambda k: uwsgi.cache_exists(k, n)
            self._num = lambda k: uwsgi.cache_num(k, n)
            self._del = lambda k: uwsgi.cache_del(k, n)
            self._set = lambda k, v, t: uwsgi.cache_update(k, v, t, n)
            self._add = lambda k, v, t: uwsgi.cache_set(k, v, t, n)
            self._keys = lambda: uwsgi.cache_keys(n)
            self._clear = lambda: uwsgi.cache_clear(n)
            self._math = {op: (lambda f: lambda k, d, t: f(k, d, t, n))(getattr(uwsgi, 'cache_' + op))
                          for op in ('inc', 'dec', 'mul', 'div')}
        if n is None:
            self._math = {op: (lambda f: lambda k, d, t: f(k, d, t))(f) for op, f in self._math.items()}

    def num(self, key):
        v = self._num(key)  # stock answers 0 for a missing key too
        return None if v == 0 and not self.exists(key) else v

    def set(self, key, value, timeout):
        return bool(self._set(key, value, timeout))

    def add(self, key, value, timeout):
        # stock cache_set is "set if absent", one atomic step, any size
        return bool(self._add(key, value, timeout))

    def delete(self, key):
        return bool(self._del(key))

    def exists_(self, key):
        return bool(self.exists(key))

    def clear(self):
        self._clear()

    def keys(self):
        return [k for k in (self._keys() or []) if not k.startswith(LOCK_PREFIX)]

    def math(self, op, key, delta, timeout):
        return bool(self._math[op](key, delta, timeout))

    def set_many(self, items, timeout):
        return [k for k, v in items if not self.set(k, v, timeout)]
