"""A malformed --cache2 makes uwsgi exit non-zero at start with one line
naming the cache, the key and the value."""
import unittest

from harness import run_to_exit

CASES = [
    # (keyval, cache, key, value)
    ('items=10', '?', 'name', None),
    ('name=x', 'x', 'items', None),
    ('name=x,items=0', 'x', 'items', '0'),
    ('name=x,items=10,blocksize=0', 'x', 'blocksize', '0'),
    ('name=x,items=10,blocks=0', 'x', 'blocks', '0'),
    ('name=x,items=10,hashsize=0', 'x', 'hashsize', '0'),
    ('name=x,items=10,keysize=0', 'x', 'keysize', '0'),
    ('name=x,items=10,blocks=5', 'x', 'blocks', '5'),
    ('name=x,items=10,keysize=65535', 'x', 'keysize', '65535'),
    ('name=x,items=10,hash=foo', 'x', 'hash', 'foo'),
    ('name=x,items=abc', 'x', 'items', 'abc'),
    ('name=x,items=10,blocksize=12x', 'x', 'blocksize', '12x'),
]


class MalformedCache2(unittest.TestCase):
    def test_each_case(self):
        for keyval, cache, key, value in CASES:
            with self.subTest(keyval=keyval):
                rc, out = run_to_exit(['--cache2', 'name=ok,items=5', '--cache2', keyval,
                                       '--http-socket', '127.0.0.1:0'], plugins=())
                self.assertNotEqual(rc, 0)
                lines = [line for line in out.splitlines() if 'invalid --cache2' in line]
                self.assertEqual(len(lines), 1, out)
                self.assertIn('cache "%s"' % cache, lines[0])
                self.assertIn('"%s"' % key, lines[0])
                if value is not None:
                    self.assertIn('value "%s"' % value, lines[0])
                self.assertNotIn('spawned uWSGI', out)
                self.assertNotIn('bound to', out)


if __name__ == '__main__':
    unittest.main()
