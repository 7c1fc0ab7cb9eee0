"""Django 3.2's cache backend contract (django_contract.py, ported from
Django's tests/cache/tests.py) inside real uwsgi: all of it passes on
ucache.django.UcacheCache; on Debian's django_uwsgi backend exactly the
items in DJANGO_UWSGI_FAILS fail (what it gets wrong), so this test also
notices if that changes."""
import json
import unittest

from harness import Uwsgi, app

try:
    import django  # noqa: F401
    HAVE_DJANGO = True
except ImportError:
    HAVE_DJANGO = False

CACHES = ('--cache2', 'name=dj,items=200,blocksize=65536', '--cache2', 'name=djother,items=10')

# What Debian's django_uwsgi 1.1.2 gets wrong, and why:
DJANGO_UWSGI_FAILS = {
    'test_delete': 'delete() returns None, not whether the key existed',
    'test_delete_nonexistent': 'delete() returns None, not False',
    'test_cache_versioning_delete': 'delete() returns None',
    'test_unicode': 'delete() returns None',
    'test_touch': 'no touch(): BaseCache raises NotImplementedError',
    'test_touch_zero_expires_at_once': 'no touch()',
    'test_forever_timeout': 'no touch()',
    'test_zero_timeout': 'no touch() (set/add with 0 do expire at once)',
    'test_invalid_key_characters': 'no validate_key() warnings (and no touch())',
    'test_invalid_key_length': 'no validate_key() warnings (and no touch())',
    'test_float_timeout': 'a float timeout raises TypeError in cache_update',
    'test_timeout_setting_none_is_forever': 'TIMEOUT None (default_timeout None) raises TypeError',
    'test_incr_keeps_expiry': "incr() is BaseCache's get + set: not atomic, and it resets the TTL",
    'test_too_large_value_fails_and_old_value_is_gone': 'a failed set keeps the old value',
    'test_set_many_returns_failing_keys': 'set_many() returns [] even when a value was not stored',
    'test_pickled_with_highest_protocol': 'pickles with the default protocol (4), not the highest (5)',
}


def run_contract(backend):
    """{test name: (ok, detail)} of every contract test, run in uwsgi."""
    with Uwsgi(*CACHES, '--env', 'UCACHE_CONTRACT=django_contract', '--env', 'UCACHE_DJ_BACKEND=' + backend,
               '--wsgi-file', app('contract_app.py')) as u:
        out = {}
        for name in json.loads(u.get('/list')):
            r = json.loads(u.get('/run/' + name))
            out[name.split('.')[1]] = (r['ok'], r['detail'])
        return out


@unittest.skipUnless(HAVE_DJANGO, 'python3-django not installed')
class Contract(unittest.TestCase):
    def test_ucache_backend_passes_all(self):
        got = run_contract('ucache.django.UcacheCache')
        self.assertGreaterEqual(len(got), 50)
        failed = {n: d for n, (ok, d) in got.items() if not ok}
        self.assertEqual(failed, {})

    def test_django_uwsgi_fails_exactly_these(self):
        got = run_contract('django_uwsgi.cache.UwsgiCache')
        failed = sorted(n for n, (ok, _) in got.items() if not ok)
        self.assertEqual(failed, sorted(DJANGO_UWSGI_FAILS), {n: got[n][1][-300:] for n in failed})


if __name__ == '__main__':
    unittest.main()
