"""Regressions, two stock bugs of the start-up preload options
(docs/STOCK_SEMANTICS.md, stock bugs table):

- "add-cache-item after a restore": stock stores --add-cache-item and
  --load-file-in-cache items with a plain set, which fails on a key
  restored from the store ("[cache-error] unable to store ..."), leaving the
  old value in place.  ucache overwrites it.
- "a space in an --add-cache-item value": stock takes the first space
  anywhere in the argument for the end of a cache name, so `key=a b` is
  looked for in a cache named `key=a` and stored nowhere.  ucache only takes
  a space before the `=` as the cache-name separator.

Both run on ucache only (UCACHE_TEST_STOCK=1 skips them: stock fails them)."""
import os
import shutil
import tempfile
import unittest

from harness import STOCK, Uwsgi, app


@unittest.skipIf(STOCK, 'stock bug')
class AddCacheItemAfterRestore(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ucache-preload-')
        self.store = os.path.join(self.tmp, 'a.store')
        self.file = os.path.join(self.tmp, 'page.txt')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def instance(self, item, content):
        with open(self.file, 'wb') as f:
            f.write(content)
        return Uwsgi('--master', '--cache2', 'name=a,items=10,blocksize=256,store=%s' % self.store,
                     '--add-cache-item', 'a k=%s' % item, '--load-file-in-cache', 'a ' + self.file,
                     '--wsgi-file', app('ops_app.py'))

    def test_add_cache_item_overwrites_item_restored_from_store(self):
        with self.instance('first', b'first file') as u:
            self.assertEqual(u.ops(['cache_get', 'k', 'a'], ['cache_get', self.file, 'a']),
                             [b'first', b'first file'])
        with self.instance('second', b'second file') as u:  # restored, then preloaded again
            self.assertIn('restored 2 items', u.log())
            self.assertEqual(u.ops(['cache_get', 'k', 'a'], ['cache_get', self.file, 'a']),
                             [b'second', b'second file'])
            self.assertNotIn('unable to store', u.log())


@unittest.skipIf(STOCK, 'stock bug')
class AddCacheItemValueWithSpace(unittest.TestCase):
    def test_value_with_a_space_is_stored(self):
        with Uwsgi('--cache2', 'name=a,items=10', '--cache2', 'name=b,items=10',
                   '--add-cache-item', 'k1=a b', '--add-cache-item', 'b k2=c d e',
                   '--wsgi-file', app('ops_app.py')) as u:
            self.assertEqual(u.ops(['cache_get', 'k1', 'a'], ['cache_get', 'k1', 'b'],
                                   ['cache_get', 'k2', 'a'], ['cache_get', 'k2', 'b']),
                             [b'a b', b'a b', None, b'c d e'])


if __name__ == '__main__':
    unittest.main()
