"""Regression, ucache bug "address-space reservation makes --limit-as setups
fail to start".

`--limit-as N` caps the address space (RLIMIT_AS, N MiB) of every uwsgi
process: a common production guard.  RLIMIT_AS counts every mapping,
touched or not, so what matters is how much address space a cache
*reserves*, not what it uses.  A configuration that starts on the stock
cache must start on ucache too.  The bug: ucache reserved far more than
stock (6.3 GiB, "6611988 KiB mapped", for items=100000,blocksize=128,
where stock maps 217 MiB), so such setups died at start with an mmap
failure.

The limit given here is, per geometry, what the stock cache maps
(stock_mapping(), from uwsgi_cache_create() and uwsgi_cache_init() in
uWSGI 2.0.21's core/cache.c, rounded up to a MiB; it equals, to the byte,
the shared mappings a stock cache adds in /proc/PID/maps) plus MARGIN_MB
for everything else the instance maps.  Measured on Debian 12's binary, an
idle `uwsgi --master --plugin python3 --wsgi-file apps/ops_app.py` has a
VSZ of 58 MiB with no cache; with a 10-item cache of 64-byte blocks, 67
MiB in the master (the sweeper thread's 8 MiB stack included) and 60 MiB
in the worker, with or without ucache (within 1 MiB).  256 MiB covers that
with room for what a worker allocates while it serves.  Each geometry runs
twice: on the stock cache (the control: it proves the limit is one stock
lives with) and on ucache.  Each instance must start and serve a set and a
get of a value whose content is checked, through the WSGI app
(apps/ops_app.py).

How it fails (for the record): uWSGI applies --limit-as after the plugins'
call_asap hooks, where ucache builds its caches, so ucache's own mmap
succeeds and the *next* mmap at start fails ("unable to allocate 40 bytes",
"mmap(): Cannot allocate memory [core/utils.c ...]"); the stock cache is
built after the limit is set, so when it does not fit it is its own mmap
that fails ("uwsgi_cache_init()/mmap(): Cannot allocate memory").
"""
import math
import shutil
import unittest

from harness import Uwsgi, app, run_to_exit

MIB = 1 << 20
PAGE = 4096
MARGIN_MB = 256

# stock defaults (core/cache.c uwsgi_cache_create)
DEFAULTS = {'blocksize': 65536, 'keysize': 2048, 'hashsize': 65536}
ITEM_HEADER = 88        # sizeof(struct uwsgi_cache_item): 11 x uint64_t

GEOMETRIES = {
    'default': 'name=g,items=100',
    'items100k_bs128': 'name=g,items=100000,blocksize=128',
    'items1m_bs128_ks64': 'name=g,items=1000000,blocksize=128,keysize=64',
    'bitmap': 'name=g,items=10000,blocks=20000,blocksize=4096,bitmap=1',
    'purge_lru': 'name=g,items=100000,blocksize=128,purge_lru=1',
}


def parse(spec):
    kv = dict(p.split('=', 1) for p in spec.split(','))
    geo = {k: int(kv.get(k, v)) for k, v in DEFAULTS.items()}
    geo['items'] = int(kv['items'])
    geo['blocks'] = int(kv.get('blocks', geo['items']))
    geo['bitmap'] = 'bitmap' in kv
    return geo


def pages(n):
    return -(-n // PAGE) * PAGE


def stock_mapping(spec):
    """Bytes the stock cache maps for this --cache2, every mapping
    MAP_SHARED | MAP_ANONYMOUS and rounded up to a page (mmap does):

      items * (keysize + 88) + blocks * blocksize   items and blocks (one mapping)
      hashsize * 8                                  the hashtable
      items * 8                                     the free-slot stack
      ceil(blocks / 8)                              the block bitmap (bitmap only)
      3 pages                                       struct uwsgi_cache, its lock
    """
    g = parse(spec)
    maps = [g['items'] * (g['keysize'] + ITEM_HEADER) + g['blocks'] * g['blocksize'],
            g['hashsize'] * 8, g['items'] * 8]
    if g['bitmap']:
        maps.append(-(-g['blocks'] // 8))
    return sum(pages(m) for m in maps) + 3 * PAGE


def limit_mb(spec):
    return math.ceil(stock_mapping(spec) / MIB) + MARGIN_MB


def value_for(name):
    """A value that fits every geometry's blocksize (128) and proves it is
    the one written: the geometry's name and every byte value."""
    return (b'limit-as:' + name.encode() + b':' + bytes(range(256)))[:120]


class AddressSpaceReservationLimitAs(unittest.TestCase):
    def check(self, name, ucache):
        spec = GEOMETRIES[name]
        limit = limit_mb(spec)
        inst = Uwsgi('--master', '--limit-as', str(limit), '--cache2', spec,
                     '--wsgi-file', app('ops_app.py'), ucache=ucache)
        failed = None
        try:
            inst.__enter__()
        except AssertionError as e:   # exited, or never listened: say why
            failed = str(e).splitlines()[0]
        if failed:
            log = inst.log()
            shutil.rmtree(inst.workdir, ignore_errors=True)
            why = [line for line in log.splitlines()
                   if 'allocate' in line or 'mmap' in line or 'initialized' in line]
            self.fail('%s: uwsgi did not start with --limit-as %d (stock maps %.1f MiB for '
                      '--cache2 %s): %s\n  %s\n--- log ---\n%s' % (
                          'ucache' if ucache else 'stock', limit, stock_mapping(spec) / MIB,
                          spec, failed, '\n  '.join(why) or '(no allocation failure logged)', log))
        try:
            self.assertIn('your process address space limit is %d bytes' % (limit * MIB),
                          inst.log())
            value = value_for(name)
            self.assertEqual(inst.ops(['cache_set', 'k', value, 0, 'g'], ['cache_get', 'k', 'g'],
                                      ['cache_get', 'nope', 'g']),
                             [True, value, None])
        finally:
            inst.__exit__(None, None, None)

    # ucache: each must start and serve, as the stock cache does below
    def test_address_space_reservation_limit_as_default(self):
        self.check('default', True)

    def test_address_space_reservation_limit_as_items100k_bs128(self):
        self.check('items100k_bs128', True)

    def test_address_space_reservation_limit_as_items1m_bs128_ks64(self):
        self.check('items1m_bs128_ks64', True)

    def test_address_space_reservation_limit_as_bitmap(self):
        self.check('bitmap', True)

    def test_address_space_reservation_limit_as_purge_lru(self):
        self.check('purge_lru', True)

    # control: the stock cache (no ucache plugin) under the same limits
    def test_stock_control_default(self):
        self.check('default', False)

    def test_stock_control_items100k_bs128(self):
        self.check('items100k_bs128', False)

    def test_stock_control_items1m_bs128_ks64(self):
        self.check('items1m_bs128_ks64', False)

    def test_stock_control_bitmap(self):
        self.check('bitmap', False)

    def test_stock_control_purge_lru(self):
        self.check('purge_lru', False)


class CacheTooBigForLimitAs(unittest.TestCase):
    """A cache that does not fit the limit, with stock or ucache: ucache
    says which cache and by how much (uWSGI applies --limit-as after the
    caches are mapped, so without the check some later allocation fails
    with "unable to allocate 40 bytes")."""

    SPEC = 'name=huge,items=200000,blocksize=4096'   # stock maps ~1.2 GiB

    def test_cache_too_big_for_limit_as_is_named(self):
        limit = 512
        self.assertGreater(stock_mapping(self.SPEC) / MIB, limit)
        rc, out = run_to_exit(['--master', '--limit-as', str(limit), '--cache2', self.SPEC,
                               '--wsgi-file', app('ops_app.py')])
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r'ucache: cache "huge" maps \d+ KiB \(stock would map \d+ KiB\): with it this '
                              r'process maps \d+ MiB, over --limit-as 512 MiB')
        self.assertNotIn('unable to allocate', out)

    def test_stock_control_cache_too_big_fails_too(self):
        rc, out = run_to_exit(['--master', '--limit-as', '512', '--cache2', self.SPEC,
                               '--wsgi-file', app('ops_app.py')], ucache=False)
        self.assertNotEqual(rc, 0, out)


if __name__ == '__main__':
    unittest.main()
