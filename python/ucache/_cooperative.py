"""ucache._cooperative - how a waiter (get_or_set's single flight, the
Accelerator's coalescing) sleeps between polls, given the worker's loop
engine.

A sync or threaded worker sleeps where it is: get_or_set makes one RPC that
polls in C (core/flight.c), the Accelerator time.sleep()s.  A gevent worker
(--gevent N) runs all its requests on one thread: a sleep of the thread
freezes the hub, so the request computing the value never runs before the
wait gives up (issue 18: two misses of a 0.5 s computation took 10 s, two
Accelerator misses 30 s, and the value was computed twice).  There the
waiter polls with gevent.sleep (and one never-waiting try per poll,
ucache_flight_try).

uWSGI's other async engines (--async with ugreen or greenlet, --asyncio,
--tornado) give Python no sub-second cooperative sleep: uwsgi.async_sleep
counts whole seconds, and they leave uWSGI's wait_milliseconds_hook a
blocking poll (only gevent and coroae replace it).  Under them a waiter
does not wait: get_or_set computes at once when another caller holds the
key (as wait=0), the Accelerator renders the page itself.  Duplicate work,
never a frozen loop.
"""
try:
    import uwsgi
except ImportError:     # outside uwsgi: time.sleep is what the caller patched it to be
    uwsgi = None

BLOCK = 'block'         # sleep the thread (sync or threaded workers)
GEVENT = 'gevent'       # gevent.sleep between polls
NO_WAIT = 'no-wait'     # an async engine without a cooperative sleep: do not wait

_OTHER_ASYNC = ('asyncio', 'tornado', 'ugreen', 'greenlet')
_mode = None


def _opt(name):
    v = uwsgi.opt.get(name)
    if isinstance(v, list):
        v = v[-1]
    return v.decode('utf-8', 'replace') if isinstance(v, bytes) else v


def _detect():
    if uwsgi is None or not hasattr(uwsgi, 'opt'):
        return BLOCK
    loop = _opt('loop')
    if _opt('gevent') is not None or loop == 'gevent':
        return GEVENT
    if loop or any(_opt(o) is not None for o in _OTHER_ASYNC):
        return NO_WAIT
    try:
        return NO_WAIT if int(_opt('async') or 0) > 1 else BLOCK
    except ValueError:
        return BLOCK


def mode():
    """BLOCK, GEVENT or NO_WAIT for this worker (its options do not change)."""
    global _mode
    if _mode is None:
        _mode = _detect()
    return _mode


def sleeper():
    """gevent.sleep under gevent, else None (sleep the thread, or no wait)."""
    if mode() != GEVENT:
        return None
    import gevent
    return gevent.sleep
