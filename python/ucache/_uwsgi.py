"""ucache._uwsgi - the backend inside uWSGI: uwsgi.cache_* for plain
reads and writes (the fast path, any value size), the ucache_* RPC
functions (uwsgi.call; uwsgi.rpc for a name@host:port cache) for the
atomic operations."""
import uwsgi  # only importable inside uWSGI

from ._rpc import LOCK_PREFIX, CacheError, PerKeyOps, RpcOps


class UwsgiBackend(RpcOps):
    def __init__(self, name):
        self.name = name
        # the cache argument of uwsgi.cache_* is "s" (no None): "" is ucache's
        # default cache, as NULL is
        self.cache = n = name or ''
        self.remote = '@' in n
        if self.remote:
            local, addr = n.split('@', 1)
            self._rpc_name = local.encode()
            self._call = lambda fn, *a: uwsgi.rpc(addr, fn, *a)
        else:
            self._rpc_name = n.encode()
            self._call = uwsgi.call
        self.cache_get = cg = uwsgi.cache_get  # Cache's fast paths call it directly
        self.get = lambda k: cg(k, n)
        self.exists = lambda k: uwsgi.cache_exists(k, n)
        self._num = lambda k: uwsgi.cache_num(k, n)
        self._math = {op: getattr(uwsgi, 'cache_' + op) for op in ('inc', 'dec', 'mul', 'div')}
        if not self.remote:
            self._check_exists()

    def _check_exists(self):
        """A name that is no local cache (a LOCATION typo) fails here, when
        the cache is first used, naming the caches there are: every
        uwsgi.cache_* call on it would fail silently (get None, set False).
        Without ucache (stock uWSGI) there is nothing to ask."""
        try:
            r = uwsgi.call(b'ucache_peek', self._rpc_name)
        except Exception:
            return
        if r and r[:8] == b'EENOENT ':
            raise CacheError('ENOENT ' + r.split(b': ', 1)[-1].decode('utf-8', 'replace'))

    def _no_reply(self, fn):
        if self.remote:  # the wire client asks the server what it answers
            from ._wire import WireBackend
            return WireBackend(self.cache)._no_reply(fn)
        return RpcOps._no_reply(self, fn)

    def num(self, key):
        v = self._num(key)  # stock answers 0 for a missing key too
        return None if v == 0 and not self.exists(key) else v

    def set(self, key, value, timeout):
        return bool(uwsgi.cache_update(key, value, timeout, self.cache))

    def add(self, key, value, timeout):
        # stock cache_set is "set if absent", one atomic step, any size
        return bool(uwsgi.cache_set(key, value, timeout, self.cache))

    def delete(self, key):
        return bool(uwsgi.cache_del(key, self.cache))

    def exists_(self, key):
        return bool(self.exists(key))

    def clear(self):
        uwsgi.cache_clear(self.cache)

    def keys(self):
        return [k for k in (uwsgi.cache_keys(self.cache) or []) if not k.startswith(LOCK_PREFIX)]

    def math(self, op, key, delta, timeout):
        return bool(self._math[op](key, delta, timeout, self.cache))

    # Local caches: a uwsgi.cache_* call per key costs less than one RPC's
    # marshalling for the sizes Django asks for, and works on a redis= near
    # cache too (which refuses the RPC functions); remote: one RPC.
    def get_many(self, keys):
        return (RpcOps if self.remote else PerKeyOps).get_many(self, keys)

    def delete_many(self, keys):
        return (RpcOps if self.remote else PerKeyOps).delete_many(self, keys)
