"""ucache.wsgi - an HTTP response cache with tags for WSGI apps, on ucache.

wsgi-accelerator's interface (seed 004) on a ucache cache:

    from ucache.wsgi import Accelerator, invalidate_tags

    def app(environ, start_response):
        environ['accelerator.cache_for'] = 60          # seconds
        environ['accelerator.tags'] = ['user:42', 'feed']
        start_response('200 OK', [('Content-Type', 'text/html')])
        return [page]

    application = Accelerator(app, cache='pages')
    application.invalidate_tag(['user:42'])            # or, anywhere in uwsgi:
    invalidate_tags('pages', ['user:42'])              # or another machine:
    invalidate_tags('pages@10.0.0.5:3031', ['user:42'])

A cached page is stored under its request URI (nginx's $request_uri: path and
?query) as the whole HTTP response, so nginx can answer it with modifier1 111
/ modifier2 3 without entering Python (docs/HTTP.md).  Its
tags travel in the entry (the engine's tag envelope, include/ucache.h): an
invalidation is O(1) and every path -- this middleware, nginx direct, a remote
modifier2 17 get -- treats an entry carrying an invalidated tag as a miss.

What is cached: GET responses with a 2xx status and accelerator.cache_for > 0,
unless they carry an ignored header (Set-Cookie by default), Cache-Control
private / no-store, or a Vary other than Accept-Encoding (pages that vary by
Accept-Encoding are stored per request Accept-Encoding and served from Python
only).  HEAD is answered from a cached GET.  Each cached page gets a strong
ETag (blake2b of the body) unless the app set one; If-None-Match -> 304.

Coalescing: concurrent misses of one URL render it once.  The first takes a
lock entry in the cache with an atomic add (a set that fails on an existing
key), holding its pid and a deadline, with the deadline as its TTL; the others
poll for the page.  A renderer that dies leaves a lock that a waiter breaks
(its pid is gone) or that expires: the URL is never wedged.  Under gevent
the waiters poll with gevent.sleep (a sleep of the thread froze the hub:
the renderer never finished); under uWSGI's other async engines they do
not wait (ucache._cooperative says why).

stale_while_revalidate=N: a page is kept N seconds past cache_for; in that
window one request re-renders it (holding the lock) while the others get the
stale page.  (nginx direct hits serve it until cache_for + N too.)

It explains itself: status_header=True adds X-Ucache: HIT | STALE | MISS |
BYPASS (reason) to each response, and every response it declines to store
is a DEBUG line of the 'ucache.wsgi' logger with the reason (Vary: Cookie,
status 404, ...).  bypass_cookies=('sessionid',): a request carrying one
of these cookies is neither served from nor stored in the cache, and the
pages of the others may carry Vary: Cookie (a Django site caching its
anonymous pages only).  Counting: one lookup (a hit or a miss in the
stats) per request, the Accept-Encoding variant included; the render
lock's polls count nothing.
"""
import hashlib
import logging
import os
import time

from . import _cooperative
from ._wire import WireBackend

try:
    import uwsgi
except ImportError:     # outside uwsgi: only remote invalidation works
    uwsgi = None

__all__ = ['Accelerator', 'invalidate_tags']

LOCK_PREFIX = b'ucache-render:'    # never a $request_uri (they start with '/')
FRESH_HEADER = 'X-Accelerator-Fresh-Until'
TAG_MAX = 1024                     # UCACHE_TAG_MAX
TAGS_MAX = 64                      # UCACHE_TAGS_MAX
log = logging.getLogger('ucache.wsgi')
STATUS_HEADER = 'X-Ucache'
_HOP = {'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'te', 'trailer',
        'upgrade', 'proxy-connection'}


def _b(s):
    return s if isinstance(s, bytes) else str(s).encode('utf-8')


def _tag_list(tags):
    if isinstance(tags, (str, bytes)):
        tags = [tags]
    out = [_b(t) for t in tags]
    for t in out:
        if not t or len(t) > TAG_MAX or b',' in t:
            raise ValueError('ucache: bad tag %r (1..%d bytes, no comma)' % (t, TAG_MAX))
    return out


# ------------------------------------------------------------ invalidation

def _invalidate_remote(cache, tags, timeout):
    """modifier1 111 / modifier2 17 cmd=invalidate on name@host:port or
    name@/path/to/socket (a write: refused by --ucache-readonly and
    read-only sockets)."""
    r = WireBackend(cache, timeout)._magic('invalidate', extra=[('tags', b','.join(tags))])
    if r is None:
        raise RuntimeError('ucache: %s refused the invalidation (unknown cache, bad tags or '
                           'a read-only socket)' % cache)
    if r[0].get('status') != b'ok':
        raise RuntimeError('ucache: %s answered %r' % (cache, r[0]))
    return len(tags)


def invalidate_tags(cache, tags, timeout=5.0):
    """Invalidate tags (a string or a list) in cache: a local cache name
    ('' or None: the default cache), or 'name@host:port' for another uwsgi
    instance.  O(1) per tag.  Returns the number of tags invalidated."""
    tags = _tag_list(tags)
    if not tags:
        return 0
    cache = cache or ''
    if '@' in cache:
        return _invalidate_remote(cache, tags, timeout)
    if uwsgi is None:
        raise RuntimeError('ucache: a local cache needs uwsgi (name@host:port works anywhere)')
    n = 0
    for i in range(0, len(tags), 250):       # an RPC call takes at most 255 arguments
        reply = uwsgi.call(b'ucache_invalidate', _b(cache), *tags[i:i + 250]) or b'FAIL no reply'
        if not reply.startswith(b'ok'):
            raise RuntimeError('ucache: invalidate in cache %r: %s' % (cache, reply.decode()))
        n += int(reply.split()[1])
    return n


# ------------------------------------------------------------ HTTP helpers

def request_uri(environ):
    """The request URI as nginx's $request_uri has it (path + ?query)."""
    uri = environ.get('REQUEST_URI')
    if uri:
        return uri
    from urllib.parse import quote
    path = quote(environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO', ''))
    qs = environ.get('QUERY_STRING')
    return path + ('?' + qs if qs else '')


def _header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def etag_matches(inm, etag):
    """If-None-Match against an ETag, weak comparison (RFC 9110 13.1.2)."""
    if not inm or not etag:
        return False
    etag = etag[2:] if etag.startswith('W/') else etag
    for t in inm.split(','):
        t = t.strip()
        if t == '*':
            return True
        if (t[2:] if t.startswith('W/') else t) == etag:
            return True
    return False


class _Page:
    """A stored response, parsed back for serving from Python."""
    __slots__ = ('status', 'headers', 'body', 'etag', 'fresh_until')

    def __init__(self, raw):
        end = raw.find(b'\r\n\r\n')
        lines = raw[:end].decode('latin-1').split('\r\n')
        self.status = lines[0].split(' ', 1)[1]
        self.headers = [tuple(line.split(': ', 1)) for line in lines[1:]]
        self.body = raw[end + 4:]
        self.etag = _header(self.headers, 'ETag')
        fresh = _header(self.headers, FRESH_HEADER)
        self.fresh_until = float(fresh) if fresh else None


# -------------------------------------------------------------- middleware

class Accelerator:
    """WSGI middleware caching whole responses in a ucache cache, with tags.

    cache: the cache name ('' / None: the default cache; a local cache).
    ignore_headers: a response carrying any of these is never cached.
    stale_while_revalidate: seconds a page is served stale while one
    request re-renders it (0: off).  coalesce: concurrent misses of one URL
    render once.  lock_timeout: longest render a waiter waits for (s).
    status_header: add X-Ucache: HIT | STALE | MISS | BYPASS (reason).
    bypass_cookies: requests carrying one of these cookies bypass the
    cache; the others' pages may then carry Vary: Cookie.
    """

    def __init__(self, app, cache=None, ignore_headers=('Set-Cookie',), stale_while_revalidate=0,
                 coalesce=True, lock_timeout=30, poll_interval=0.005, status_header=False,
                 bypass_cookies=()):
        if uwsgi is None:
            raise RuntimeError('ucache.wsgi.Accelerator runs inside uwsgi (--plugin ucache)')
        self.app = app
        self.cache = cache or ''
        self.bcache = _b(self.cache)
        self.ignore = {h.lower() for h in ignore_headers}
        self.swr = int(stale_while_revalidate)
        self.coalesce = coalesce
        self.lock_timeout = lock_timeout
        self.poll_interval = poll_interval
        self.status_header = status_header
        self.bypass_cookies = tuple(bypass_cookies)
        if '@' in self.cache or not uwsgi.call(b'ucache_tags_now', self.bcache):
            raise RuntimeError('ucache.wsgi.Accelerator: no local cache %r (a --cache2 cache of this '
                               'instance, loaded with --plugin ucache)' % self.cache)

    # wsgi-accelerator's name
    def invalidate_tag(self, tags):
        return invalidate_tags(self.cache, tags)

    invalidate_tags = invalidate_tag

    # -- cache access
    def _peek(self, *keys):
        """(index, value) of the first key present, None; counted: one
        hit or miss in the stats (ucache_lookup), else none (ucache_peek)."""
        r = uwsgi.call(b'ucache_peek', self.bcache, *keys)
        return self._indexed(r)

    @staticmethod
    def _indexed(r):
        if not r or r[:1] != b'Y':
            return None
        colon = r.index(b':')
        return int(r[1:colon]), r[colon + 1:]

    def _variant_key(self, uri, environ):
        ae = ''.join(environ.get('HTTP_ACCEPT_ENCODING', '').lower().split())
        return _b(uri) + b' vary:accept-encoding=' + _b(ae)

    def _lookup(self, uri, environ, counted=True):
        """(page, key) or None: the plain entry, else the Accept-Encoding
        variant; counted: the request's one lookup, else a poll."""
        keys = (_b(uri), self._variant_key(uri, environ))
        got = self._indexed(uwsgi.call(b'ucache_lookup' if counted else b'ucache_peek', self.bcache, *keys))
        if got and got[1].startswith(b'HTTP/'):
            return _Page(got[1]), keys[got[0]]
        return None

    def _lock_holder(self, lock):
        got = self._peek(lock)
        return got[1] if got else None

    # -- render lock (coalescing)
    def _lock_value(self):
        return ('%d %.3f' % (os.getpid(), time.time() + self.lock_timeout)).encode()

    def _try_lock(self, lock):
        return bool(uwsgi.cache_set(lock, self._lock_value(), int(self.lock_timeout) + 1, self.cache))

    def _unlock(self, lock):
        uwsgi.cache_del(lock, self.cache)

    def _lock_dead(self, value):
        try:
            pid, deadline = value.split()
            if time.time() > float(deadline):
                return True
            os.kill(int(pid), 0)
            return False
        except ProcessLookupError:
            return True
        except (ValueError, PermissionError):
            return False

    def _wait(self, uri, environ, lock):
        """Wait for the lock holder's page.  The page, or None once the lock
        is gone (released without a cacheable page, or broken: dead owner),
        or at once where the loop engine cannot wait (_cooperative)."""
        if _cooperative.mode() == _cooperative.NO_WAIT:
            return None
        sleep = _cooperative.sleeper() or time.sleep   # gevent: never the hub's thread
        while True:
            held = self._lock_holder(lock)
            hit = self._lookup(uri, environ, counted=False)
            if hit:
                return hit
            if not held:
                return None
            if self._lock_dead(held):
                if self._lock_holder(lock) == held:
                    self._unlock(lock)
                return None
            sleep(self.poll_interval)

    # -- serving
    def _start(self, start_response, status, headers, why):
        """start_response, with X-Ucache: why when status_header is on."""
        if self.status_header:
            headers = list(headers) + [(STATUS_HEADER, why)]
        return start_response(status, headers)

    def _serve(self, page, environ, start_response, why='HIT'):
        if etag_matches(environ.get('HTTP_IF_NONE_MATCH'), page.etag):
            self._start(start_response, '304 Not Modified', [('ETag', page.etag)], why)
            return [b'']
        self._start(start_response, page.status, page.headers, why)
        return [b''] if environ.get('REQUEST_METHOD') == 'HEAD' else [page.body]

    def _bypass(self, environ, start_response, why):
        """The app's own response, the cache untouched."""
        log.debug('not cached: %s %s: %s', environ.get('REQUEST_METHOD'), request_uri(environ), why)
        if not self.status_header:
            return self.app(environ, start_response)

        def start(status, headers, exc_info=None):
            return start_response(status, list(headers) + [(STATUS_HEADER, 'BYPASS (%s)' % why)], exc_info)
        return self.app(environ, start)

    def _bypass_cookie(self, environ):
        cookies = environ.get('HTTP_COOKIE')
        if not cookies or not self.bypass_cookies:
            return None
        names = {c.split('=', 1)[0].strip() for c in cookies.split(';')}
        for name in self.bypass_cookies:
            if name in names:
                return 'cookie %s' % name
        return None

    def __call__(self, environ, start_response):
        environ['accelerator'] = self
        method = environ.get('REQUEST_METHOD', 'GET')
        if method not in ('GET', 'HEAD'):
            return self._bypass(environ, start_response, 'method %s' % method)
        why = self._bypass_cookie(environ)
        if why:
            return self._bypass(environ, start_response, why)
        uri = request_uri(environ)
        hit = self._lookup(uri, environ)
        lock = LOCK_PREFIX + _b(uri)
        if hit:
            page = hit[0]
            if page.fresh_until is None or time.time() < page.fresh_until:
                return self._serve(page, environ, start_response)
            # stale: one request re-renders, the others get the stale page
            if method == 'HEAD' or not self._try_lock(lock):
                return self._serve(page, environ, start_response, 'STALE')
            return self._render(uri, environ, start_response, lock)
        if method == 'HEAD':
            return self._bypass(environ, start_response, 'a HEAD miss: only a GET is stored')
        if not self.coalesce:
            return self._render(uri, environ, start_response, None)
        if self._try_lock(lock):
            return self._render(uri, environ, start_response, lock)
        hit = self._wait(uri, environ, lock)
        if hit:
            return self._serve(hit[0], environ, start_response)
        return self._render(uri, environ, start_response, None)

    # -- rendering and storing
    def _render(self, uri, environ, start_response, lock):
        since = uwsgi.call(b'ucache_tags_now', self.bcache)     # *before* rendering
        try:
            status, headers, body = self._run_app(environ)
            declined = self._store(uri, environ, status, headers, body, since)
        finally:
            if lock:
                self._unlock(lock)
        if declined:
            log.debug('not cached: %s %s: %s', environ.get('REQUEST_METHOD'), uri, declined)
        why = 'BYPASS (%s)' % declined if declined else 'MISS'
        etag = _header(headers, 'ETag')
        if etag and status[:1] == '2' and etag_matches(environ.get('HTTP_IF_NONE_MATCH'), etag):
            self._start(start_response, '304 Not Modified', [('ETag', etag)], why)
            return [b'']
        self._start(start_response, status, headers, why)
        return [body]

    def _run_app(self, environ):
        got = {}
        parts = []

        def start(status, headers, exc_info=None):
            if exc_info and got:
                raise exc_info[1].with_traceback(exc_info[2])
            got['status'], got['headers'] = status, list(headers)
            return parts.append

        result = self.app(environ, start)
        try:
            for chunk in result:
                parts.append(chunk)
        finally:
            if hasattr(result, 'close'):
                result.close()
        return got['status'], got['headers'], b''.join(parts)

    def _cacheable(self, environ, status, headers):
        """The key suffix policy: ('plain' | 'vary', None), or (None, why not)."""
        if environ.get('REQUEST_METHOD') != 'GET':
            return None, 'method %s' % environ.get('REQUEST_METHOD')
        if not status[:1] == '2':
            return None, 'status %s' % status.split(' ', 1)[0]
        for k, _ in headers:
            if k.lower() in self.ignore:
                return None, k
        cc = (_header(headers, 'Cache-Control') or '').lower()
        if any(d.strip().split('=')[0] in ('private', 'no-store') for d in cc.split(',')):
            return None, 'Cache-Control: %s' % cc
        vary = {v.strip().lower() for v in (_header(headers, 'Vary') or '').split(',') if v.strip()}
        if self.bypass_cookies:  # requests with those cookies never get here
            vary.discard('cookie')
        if not vary:
            return 'plain', None
        if vary == {'accept-encoding'}:
            return 'vary', None
        return None, 'Vary: %s' % _header(headers, 'Vary')

    def _store(self, uri, environ, status, headers, body, since):
        """None once stored, else why not."""
        cache_for = int(environ.get('accelerator.cache_for') or 0)
        if cache_for <= 0:
            return 'accelerator.cache_for not set'
        kind, why = self._cacheable(environ, status, headers)
        if not kind:
            return why
        if not _header(headers, 'ETag'):
            headers.append(('ETag', '"%s"' % hashlib.blake2b(body, digest_size=16).hexdigest()))
        stored = [(k, v) for k, v in headers if k.lower() not in _HOP]
        if self.swr:
            stored.append((FRESH_HEADER, '%.3f' % (time.time() + cache_for)))
        head = 'HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n' % (
            status, ''.join('%s: %s\r\n' % kv for kv in stored), len(body))
        value = head.encode('latin-1') + body
        tags = _tag_list(environ.get('accelerator.tags') or [])
        if tags:
            envelope = uwsgi.call(b'ucache_tags_head', self.bcache, since, *tags[:TAGS_MAX])
            if not envelope or envelope[:1] != b'\0':     # b'E<CODE> ...': not cached
                return 'no tag envelope (ucache_tags_head failed: %r)' % (envelope or b'')[:80]
            value = envelope + value
        key = _b(uri) if kind == 'plain' else self._variant_key(uri, environ)
        if not uwsgi.cache_update(key, value, cache_for + self.swr, self.cache):
            return 'refused by the cache (%d bytes: too large, or the cache is full)' % len(value)
        return None
