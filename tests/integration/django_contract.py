"""django_contract.py - Django 3.2's cache backend contract, ported from
Django's own tests/cache/tests.py (BaseCacheTests, plus the memcached
tests' failed-set rules), run inside uwsgi by apps/contract_app.py against
the backend named by UCACHE_DJ_BACKEND (test_django_contract.py runs it
against ucache.django.UcacheCache and Debian's django_uwsgi).

Expiry is polled, not slept for: each test asserts the value is there
first, then waits (bounded) for it to go.  Needs the uwsgi caches "dj"
(blocksize 65536) and "djother"."""
import os
import pickle
import time
import unittest
import warnings
import zlib

import django
from django.conf import settings

BACKEND = os.environ.get('UCACHE_DJ_BACKEND', 'ucache.django.UcacheCache')


def custom_key_func(key, key_prefix, version):
    return 'CUSTOM-' + '-'.join([key_prefix, str(version), key])


def _caches():
    base = {'BACKEND': BACKEND, 'LOCATION': 'dj'}
    return {
        'default': dict(base),
        'prefix': dict(base, KEY_PREFIX='cacheprefix'),
        'v2': dict(base, VERSION=2),
        'custom_key': dict(base, KEY_FUNCTION=custom_key_func),
        'custom_key2': dict(base, KEY_FUNCTION='django_contract.custom_key_func'),
        'other': {'BACKEND': BACKEND, 'LOCATION': 'djother'},
        'forever': dict(base, TIMEOUT=None),
    }


if not settings.configured:
    settings.configure(CACHES=_caches(), INSTALLED_APPS=[], USE_TZ=True)
    django.setup()

from django.core.cache import CacheKeyWarning, caches  # noqa: E402

cache = caches['default']


class Unpicklable:
    def __getstate__(self):
        raise pickle.PickleError()


def f():
    return 42


class C:
    def m(n):
        return 24


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError('timed out waiting for expiry')
        time.sleep(0.05)


class DjangoContract(unittest.TestCase):
    def setUp(self):
        cache.clear()
        caches['other'].clear()

    tearDown = setUp

    def test_simple(self):
        cache.set('key', 'value')
        self.assertEqual(cache.get('key'), 'value')

    def test_default_used_when_none_is_set(self):
        cache.set('key_default_none', None)
        self.assertIsNone(cache.get('key_default_none', default='default'))

    def test_add(self):
        self.assertIs(cache.add('addkey1', 'value'), True)
        self.assertIs(cache.add('addkey1', 'newvalue'), False)
        self.assertEqual(cache.get('addkey1'), 'value')

    def test_prefix(self):
        cache.set('somekey', 'value')
        self.assertIs(caches['prefix'].has_key('somekey'), False)
        caches['prefix'].set('somekey', 'value2')
        self.assertEqual(cache.get('somekey'), 'value')
        self.assertEqual(caches['prefix'].get('somekey'), 'value2')

    def test_non_existent(self):
        self.assertIsNone(cache.get('does_not_exist'))
        self.assertEqual(cache.get('does_not_exist', 'bang!'), 'bang!')

    def test_get_many(self):
        cache.set_many({'a': 'a', 'b': 'b', 'c': 'c', 'd': 'd'})
        self.assertEqual(cache.get_many(['a', 'c', 'd']), {'a': 'a', 'c': 'c', 'd': 'd'})
        self.assertEqual(cache.get_many(['a', 'b', 'e']), {'a': 'a', 'b': 'b'})
        self.assertEqual(cache.get_many(iter(['a', 'b', 'e'])), {'a': 'a', 'b': 'b'})
        cache.set_many({'x': None, 'y': 1})
        self.assertEqual(cache.get_many(['x', 'y']), {'x': None, 'y': 1})

    def test_delete(self):
        cache.set_many({'key1': 'spam', 'key2': 'eggs'})
        self.assertEqual(cache.get('key1'), 'spam')
        self.assertIs(cache.delete('key1'), True)
        self.assertIsNone(cache.get('key1'))
        self.assertEqual(cache.get('key2'), 'eggs')

    def test_delete_nonexistent(self):
        self.assertIs(cache.delete('nonexistent_key'), False)

    def test_has_key(self):
        cache.set('hello1', 'goodbye1')
        self.assertIs(cache.has_key('hello1'), True)
        self.assertIs(cache.has_key('goodbye1'), False)
        cache.set('no_expiry', 'here', None)
        self.assertIs(cache.has_key('no_expiry'), True)
        cache.set('null', None)
        self.assertIs(cache.has_key('null'), True)

    def test_in(self):
        cache.set('hello2', 'goodbye2')
        self.assertIn('hello2', cache)
        self.assertNotIn('goodbye2', cache)
        cache.set('null', None)
        self.assertIn('null', cache)

    def test_incr(self):
        cache.set('answer', 41)
        self.assertEqual(cache.incr('answer'), 42)
        self.assertEqual(cache.get('answer'), 42)
        self.assertEqual(cache.incr('answer', 10), 52)
        self.assertEqual(cache.get('answer'), 52)
        self.assertEqual(cache.incr('answer', -10), 42)
        with self.assertRaises(ValueError):
            cache.incr('does_not_exist')
        with self.assertRaises(ValueError):
            cache.incr('does_not_exist', -1)
        cache.set('null', None)
        with self.assertRaises(TypeError):
            cache.incr('null')

    def test_decr(self):
        cache.set('answer', 43)
        self.assertEqual(cache.decr('answer'), 42)
        self.assertEqual(cache.get('answer'), 42)
        self.assertEqual(cache.decr('answer', 10), 32)
        self.assertEqual(cache.get('answer'), 32)
        self.assertEqual(cache.decr('answer', -10), 42)
        with self.assertRaises(ValueError):
            cache.decr('does_not_exist')
        cache.set('null', None)
        with self.assertRaises(TypeError):
            cache.decr('null')

    def test_incr_keeps_expiry(self):
        cache.set('n', 1, 1)
        self.assertEqual(cache.incr('n'), 2)
        wait_for(lambda: cache.get('n') is None)

    def test_close(self):
        self.assertTrue(hasattr(cache, 'close'))
        cache.close()

    def test_data_types(self):
        stuff = {
            'string': 'this is a string',
            'int': 42,
            'bigint': 1 << 70,
            'negative': -7,
            'list': [1, 2, 3, 4],
            'tuple': (1, 2, 3, 4),
            'dict': {'A': 1, 'B': 2},
            'function': f,
            'class': C,
            'float': 1.5,
            'bool': True,
        }
        cache.set('stuff', stuff)
        self.assertEqual(cache.get('stuff'), stuff)
        for k, v in stuff.items():
            cache.set(k, v)
            self.assertEqual(cache.get(k), v)
            self.assertIs(type(cache.get(k)), type(v))

    def test_expiration(self):
        cache.set('expire1', 'very quickly', 1)
        cache.set('expire2', 'very quickly', 1)
        cache.set('expire3', 'very quickly', 1)
        self.assertEqual(cache.get('expire1'), 'very quickly')
        wait_for(lambda: cache.get('expire1') is None and cache.get('expire2') is None
                 and not cache.has_key('expire3'))
        self.assertIs(cache.add('expire2', 'newvalue'), True)
        self.assertEqual(cache.get('expire2'), 'newvalue')
        self.assertIs(cache.has_key('expire3'), False)

    def test_touch(self):
        t0 = time.monotonic()
        cache.set('expire1', 'very quickly', timeout=1)
        self.assertIs(cache.touch('expire1', timeout=4), True)
        wait_for(lambda: time.monotonic() - t0 > 2.2)
        self.assertIs(cache.has_key('expire1'), True)
        wait_for(lambda: not cache.has_key('expire1'), 4)
        t1 = time.monotonic()
        cache.set('expire2', 'very quickly', timeout=1)
        self.assertIs(cache.touch('expire2', timeout=None), True)
        wait_for(lambda: time.monotonic() - t1 > 2.2)  # past its first expiry
        self.assertIs(cache.has_key('expire2'), True)
        self.assertIs(cache.touch('nonexistent'), False)

    def test_touch_zero_expires_at_once(self):
        cache.set('k', 'v', None)
        self.assertIs(cache.touch('k', 0), True)
        self.assertIsNone(cache.get('k'))

    def test_unicode(self):
        stuff = {
            'ascii': 'ascii_value',
            'unicode_ascii': 'Iñtërnâtiônàlizætiøn1',
            'Iñtërnâtiônàlizætiøn': 'Iñtërnâtiônàlizætiøn2',
            'ascii2': {'x': 1},
        }
        for key, value in stuff.items():
            with self.subTest(key=key):
                cache.set(key, value)
                self.assertEqual(cache.get(key), value)
        for key, value in stuff.items():
            with self.subTest(key=key):
                self.assertIs(cache.delete(key), True)
                self.assertIs(cache.add(key, value), True)
                self.assertEqual(cache.get(key), value)
        for key, value in stuff.items():
            cache.delete(key)
        cache.set_many(stuff)
        for key, value in stuff.items():
            with self.subTest(key=key):
                self.assertEqual(cache.get(key), value)

    def test_binary_string(self):
        value = 'value_to_be_compressed'.encode()
        compressed = zlib.compress(value)
        cache.set('binary1', compressed)
        self.assertEqual(zlib.decompress(cache.get('binary1')), value)
        self.assertIs(cache.add('binary1-add', compressed), True)
        self.assertEqual(zlib.decompress(cache.get('binary1-add')), value)
        cache.set_many({'binary1-set_many': compressed})
        self.assertEqual(zlib.decompress(cache.get('binary1-set_many')), value)

    def test_large_value(self):
        value = os.urandom(60000)
        cache.set('large', value)
        self.assertEqual(cache.get('large'), value)
        self.assertEqual(cache.get_many(['large']), {'large': value})

    def test_too_large_value_fails_and_old_value_is_gone(self):
        cache.set('key', 'old')
        cache.set('key', 'x' * 70000)
        self.assertIsNone(cache.get('key'))

    def test_set_many(self):
        cache.set_many({'key1': 'spam', 'key2': 'eggs'})
        self.assertEqual(cache.get('key1'), 'spam')
        self.assertEqual(cache.get('key2'), 'eggs')

    def test_set_many_returns_empty_list_on_success(self):
        self.assertEqual(cache.set_many({'key1': 'spam', 'key2': 'eggs'}), [])

    def test_set_many_returns_failing_keys(self):
        cache.set('big', 'old')
        self.assertEqual(cache.set_many({'small': 1, 'big': 'x' * 70000}), ['big'])
        self.assertEqual(cache.get('small'), 1)
        self.assertIsNone(cache.get('big'))

    def test_set_many_expiration(self):
        cache.set_many({'key1': 'spam', 'key2': 'eggs'}, 1)
        self.assertEqual(cache.get('key1'), 'spam')
        wait_for(lambda: cache.get('key1') is None and cache.get('key2') is None)

    def test_delete_many(self):
        cache.set_many({'key1': 'spam', 'key2': 'eggs', 'key3': 'ham'})
        cache.delete_many(['key1', 'key2'])
        self.assertIsNone(cache.get('key1'))
        self.assertIsNone(cache.get('key2'))
        self.assertEqual(cache.get('key3'), 'ham')

    def test_clear(self):
        cache.set_many({'key1': 'spam', 'key2': 'eggs'})
        cache.clear()
        self.assertIsNone(cache.get('key1'))
        self.assertIsNone(cache.get('key2'))

    def test_clear_only_this_cache(self):
        caches['other'].set('x', 'kept')
        cache.set('y', 'gone')
        cache.clear()
        self.assertIsNone(cache.get('y'))
        self.assertEqual(caches['other'].get('x'), 'kept')

    def test_long_timeout(self):
        cache.set('key1', 'eggs', 60 * 60 * 24 * 30 + 1)
        self.assertEqual(cache.get('key1'), 'eggs')
        self.assertIs(cache.add('key2', 'ham', 60 * 60 * 24 * 30 + 1), True)
        self.assertEqual(cache.get('key2'), 'ham')
        cache.set_many({'key3': 'sausage', 'key4': 'lobster bisque'}, 60 * 60 * 24 * 30 + 1)
        self.assertEqual(cache.get('key3'), 'sausage')
        self.assertEqual(cache.get('key4'), 'lobster bisque')

    def test_forever_timeout(self):
        cache.set('key1', 'eggs', None)
        self.assertEqual(cache.get('key1'), 'eggs')
        self.assertIs(cache.add('key2', 'ham', None), True)
        self.assertEqual(cache.get('key2'), 'ham')
        self.assertIs(cache.add('key1', 'new eggs', None), False)
        self.assertEqual(cache.get('key1'), 'eggs')
        cache.set_many({'key3': 'sausage', 'key4': 'lobster bisque'}, None)
        self.assertEqual(cache.get('key3'), 'sausage')
        self.assertEqual(cache.get('key4'), 'lobster bisque')
        cache.set('key5', 'belgian fries', timeout=1)
        self.assertIs(cache.touch('key5', timeout=None), True)
        self.assertEqual(cache.get('key5'), 'belgian fries')

    def test_timeout_setting_none_is_forever(self):
        caches['forever'].set('k', 'v')
        self.assertEqual(caches['forever'].get('k'), 'v')
        self.assertIs(caches['forever'].touch('k'), True)

    def test_zero_timeout(self):
        cache.set('key1', 'eggs', 0)
        self.assertIsNone(cache.get('key1'))
        self.assertIs(cache.add('key2', 'ham', 0), True)
        self.assertIsNone(cache.get('key2'))
        cache.set_many({'key3': 'sausage', 'key4': 'lobster bisque'}, 0)
        self.assertIsNone(cache.get('key3'))
        self.assertIsNone(cache.get('key4'))
        cache.set('key5', 'belgian fries', timeout=5)
        self.assertIs(cache.touch('key5', timeout=0), True)
        self.assertIsNone(cache.get('key5'))

    def test_float_timeout(self):
        cache.set('key1', 'spam', 100.2)
        self.assertEqual(cache.get('key1'), 'spam')
        cache.set('key2', 'spam', 0.5)
        self.assertEqual(cache.get('key2'), 'spam')
        wait_for(lambda: cache.get('key2') is None)

    def _perform_invalid_key_test(self, key, expected_warning):
        """Every operation warns once with the backend's key (Django's
        memcache_key_warnings), as Django's own backends do."""
        ops = (
            ('add', cache.add, [key, 1]), ('get', cache.get, [key]), ('set', cache.set, [key, 1]),
            ('incr', cache.incr, [key]), ('decr', cache.decr, [key]), ('touch', cache.touch, [key]),
            ('delete', cache.delete, [key]), ('get_many', cache.get_many, [[key, 'b']]),
            ('set_many', cache.set_many, [{key: 1, 'b': 2}]),
            ('delete_many', cache.delete_many, [{key: 1, 'b': 2}]),
            ('has_key', cache.has_key, [key]),
        )
        for name, op, args in ops:
            with self.subTest(op=name):
                with warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter('always')
                    try:
                        op(*args)
                    except ValueError:
                        pass  # incr/decr of a missing key
                got = [str(x.message) for x in w if issubclass(x.category, CacheKeyWarning)]
                self.assertEqual(got, [expected_warning])

    def test_invalid_key_characters(self):
        key = 'key with spaces and 清'
        self._perform_invalid_key_test(key, 'Cache key contains characters that will cause errors if '
                                            'used with memcached: %r' % (':1:' + key))

    def test_invalid_key_length(self):
        key = 'a' * 251
        self._perform_invalid_key_test(key, 'Cache key will cause errors if used with memcached: '
                                            '%r (longer than %s)' % (':1:' + key, 250))

    def test_cache_versioning_get_set(self):
        cache.set('answer1', 42)
        self.assertEqual(cache.get('answer1'), 42)
        self.assertEqual(cache.get('answer1', version=1), 42)
        self.assertIsNone(cache.get('answer1', version=2))
        self.assertIsNone(caches['v2'].get('answer1'))
        self.assertEqual(caches['v2'].get('answer1', version=1), 42)
        self.assertIsNone(caches['v2'].get('answer1', version=2))
        cache.set('answer2', 42, version=2)
        self.assertIsNone(cache.get('answer2'))
        self.assertEqual(cache.get('answer2', version=2), 42)
        self.assertEqual(caches['v2'].get('answer2'), 42)
        caches['v2'].set('answer3', 42)
        self.assertIsNone(cache.get('answer3'))
        self.assertEqual(cache.get('answer3', version=2), 42)
        caches['v2'].set('answer4', 42, version=1)
        self.assertEqual(cache.get('answer4'), 42)
        self.assertIsNone(caches['v2'].get('answer4'))

    def test_cache_versioning_add(self):
        self.assertIs(cache.add('answer1', 42, version=2), True)
        self.assertIs(cache.add('answer1', 37, version=2), False)
        self.assertEqual(cache.get('answer1', version=2), 42)
        self.assertIs(cache.add('answer1', 37, version=1), True)
        self.assertEqual(cache.get('answer1', version=1), 37)
        self.assertIs(caches['v2'].add('answer2', 42), True)
        self.assertIs(caches['v2'].add('answer2', 37, version=1), True)
        self.assertEqual(caches['v2'].get('answer2', version=1), 37)
        self.assertEqual(cache.get('answer2', version=2), 42)

    def test_cache_versioning_has_key(self):
        cache.set('answer1', 42)
        self.assertIs(cache.has_key('answer1'), True)
        self.assertIs(cache.has_key('answer1', version=1), True)
        self.assertIs(cache.has_key('answer1', version=2), False)
        self.assertIs(caches['v2'].has_key('answer1'), False)
        self.assertIs(caches['v2'].has_key('answer1', version=1), True)

    def test_cache_versioning_delete(self):
        cache.set('answer1', 37, version=1)
        cache.set('answer1', 42, version=2)
        self.assertIs(cache.delete('answer1'), True)
        self.assertIsNone(cache.get('answer1', version=1))
        self.assertEqual(cache.get('answer1', version=2), 42)
        self.assertIs(caches['v2'].delete('answer1'), True)
        self.assertIsNone(cache.get('answer1', version=2))

    def test_cache_versioning_incr_decr(self):
        cache.set('answer1', 37, version=1)
        cache.set('answer1', 42, version=2)
        self.assertEqual(cache.incr('answer1'), 38)
        self.assertEqual(cache.get('answer1', version=2), 42)
        self.assertEqual(cache.decr('answer1', version=2), 41)
        self.assertEqual(cache.get('answer1', version=1), 38)
        self.assertEqual(caches['v2'].incr('answer1'), 42)
        self.assertEqual(caches['v2'].incr('answer1', version=1), 39)

    def test_cache_versioning_get_set_many(self):
        cache.set_many({'ford1': 37, 'arthur1': 42})
        self.assertEqual(cache.get_many(['ford1', 'arthur1']), {'ford1': 37, 'arthur1': 42})
        self.assertEqual(cache.get_many(['ford1', 'arthur1'], version=2), {})
        self.assertEqual(caches['v2'].get_many(['ford1', 'arthur1'], version=1), {'ford1': 37, 'arthur1': 42})
        caches['v2'].set_many({'ford2': 37, 'arthur2': 42})
        self.assertEqual(cache.get_many(['ford2', 'arthur2']), {})
        self.assertEqual(caches['v2'].get_many(['ford2', 'arthur2']), {'ford2': 37, 'arthur2': 42})
        cache.delete_many(['ford1', 'arthur1'])
        self.assertEqual(caches['v2'].get_many(['ford1', 'arthur1'], version=1), {})

    def test_incr_version(self):
        cache.set('answer', 42, version=2)
        self.assertIsNone(cache.get('answer'))
        self.assertEqual(cache.get('answer', version=2), 42)
        self.assertEqual(cache.incr_version('answer', version=2), 3)
        self.assertIsNone(cache.get('answer', version=2))
        self.assertEqual(cache.get('answer', version=3), 42)
        with self.assertRaises(ValueError):
            cache.incr_version('does_not_exist')
        cache.set('null', None)
        self.assertEqual(cache.incr_version('null'), 2)

    def test_decr_version(self):
        cache.set('answer', 42, version=2)
        self.assertEqual(cache.decr_version('answer', version=2), 1)
        self.assertEqual(cache.get('answer'), 42)
        self.assertIsNone(cache.get('answer', version=2))
        with self.assertRaises(ValueError):
            cache.decr_version('does_not_exist', version=2)

    def test_custom_key_func(self):
        cache.set('answer1', 42)
        self.assertIsNone(caches['custom_key'].get('answer1'))
        self.assertIsNone(caches['custom_key2'].get('answer1'))
        caches['custom_key'].set('answer2', 42)
        self.assertIsNone(cache.get('answer2'))
        self.assertEqual(caches['custom_key'].get('answer2'), 42)
        self.assertEqual(caches['custom_key2'].get('answer2'), 42)

    def test_add_fail_on_pickleerror(self):
        with self.assertRaises(pickle.PickleError):
            cache.add('unpicklable', Unpicklable())

    def test_set_fail_on_pickleerror(self):
        with self.assertRaises(pickle.PickleError):
            cache.set('unpicklable', Unpicklable())

    def test_pickled_with_highest_protocol(self):
        from django.core.cache import caches as cs
        import uwsgi
        cs['default'].set('p', {'a': 1})
        raw = uwsgi.cache_get(cs['default'].make_key('p'), 'dj')
        self.assertEqual(raw, pickle.dumps({'a': 1}, pickle.HIGHEST_PROTOCOL))

    def test_get_or_set(self):
        self.assertIsNone(cache.get('projector'))
        self.assertEqual(cache.get_or_set('projector', 42), 42)
        self.assertEqual(cache.get('projector'), 42)
        self.assertIsNone(cache.get_or_set('null', None))
        self.assertIsNone(cache.get('null', 'default'))

    def test_get_or_set_callable(self):
        def my_callable():
            return 'value'
        self.assertEqual(cache.get_or_set('mykey', my_callable), 'value')
        self.assertEqual(cache.get_or_set('mykey', my_callable()), 'value')
        self.assertIsNone(cache.get_or_set('null', lambda: None))
        self.assertIsNone(cache.get('null', 'default'))

    def test_get_or_set_version(self):
        msg = "get_or_set() missing 1 required positional argument: 'default'"
        self.assertEqual(cache.get_or_set('brian', 1979, version=2), 1979)
        for kwargs in ({}, {'version': 1}):  # Django's assertRaisesMessage: a substring
            with self.assertRaises(TypeError) as cm:
                cache.get_or_set('brian', **kwargs)
            self.assertIn(msg, str(cm.exception))
        self.assertIsNone(cache.get('brian', version=1))
        self.assertEqual(cache.get_or_set('brian', 42, version=1), 42)
        self.assertEqual(cache.get_or_set('brian', 1979, version=2), 1979)
        self.assertIsNone(cache.get('brian', version=3))
