"""Django's cache API (set/get/add/delete/get_many/incr/clear/timeouts)
through Debian's django_uwsgi.cache.UwsgiCache backend, on ucache."""
import json
import unittest

from harness import Uwsgi, app, poll

try:
    import django  # noqa: F401  (Debian's python3-django)
    HAVE_DJANGO = True
except ImportError:
    HAVE_DJANGO = False


@unittest.skipUnless(HAVE_DJANGO, 'python3-django not installed')
class Django(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Uwsgi('--cache2', 'name=other,items=10', '--cache2', 'name=dj,items=100',
                      '--wsgi-file', app('django_app.py')).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.u.__exit__(None, None, None)

    def dj(self, *ops):
        status, _, body = self.u.request('/django', 'POST', json.dumps(ops))
        self.assertEqual(status, 200, self.u.log())
        return json.loads(body)

    def setUp(self):
        self.dj(['clear'])

    def test_set_get_add_delete(self):
        r = self.dj(['get', 'k'], ['get', 'k', 'dflt'], ['set', 'k', {'a': [1, 2]}], ['get', 'k'],
                    ['add', 'k', 'other'], ['add', 'new', 'n'], ['get', 'new'],
                    ['has_key', 'k'], ['delete', 'k'], ['get', 'k'], ['has_key', 'k'],
                    ['set', 'k', 'v', {'kw': {'version': 2}}], ['get', 'k'], ['get', 'k', {'kw': {'version': 2}}])
        self.assertEqual(r, [None, 'dflt', None, {'a': [1, 2]}, False, True, 'n', True, None,
                             None, False, None, None, 'v'])

    def test_get_many_incr_decr(self):
        r = self.dj(['set_many', {'a': 1, 'b': 2}], ['get_many', ['a', 'b', 'c']],
                    ['incr', 'a'], ['incr', 'a', 10], ['decr', 'b'], ['get', 'a'],
                    ['incr', 'missing'], ['delete_many', ['a', 'b']], ['get_many', ['a', 'b']])
        self.assertEqual(r, [[], {'a': 1, 'b': 2}, 2, 12, 1, 12, {'exc': 'ValueError'}, None, {}])

    def test_clear_only_clears_its_cache(self):
        self.assertIs(self.u.op('cache_set', 'x', 'y', 0, 'other'), True)
        self.dj(['set', 'k', 1])
        self.assertEqual(self.dj(['clear'], ['get', 'k']), [None, None])
        self.assertEqual(self.u.op('cache_get', 'x', 'other'), b'y')

    def test_timeouts(self):
        r = self.dj(['set', 'forever', 1, {'kw': {'timeout': None}}], ['set', 'now', 1, {'kw': {'timeout': 0}}],
                    ['set', 'short', 1, {'kw': {'timeout': 1}}], ['get', 'now'], ['get', 'short'],
                    ['add', 'now', 2], ['get', 'now'])
        # timeout=0 means "expire immediately" (the backend sends -1: stock
        # wraps now + 2^64 - 1 to the past, and so does ucache)
        self.assertEqual(r, [None, None, None, None, 1, True, 2])
        poll(lambda: self.dj(['get', 'short']) == [None], 5, 0.05, 'django timeout')
        self.assertEqual(self.dj(['get', 'forever']), [1])


if __name__ == '__main__':
    unittest.main()
