"""One cache, two languages in the same instance: Python (HTTP socket,
modifier1 0) and Perl (Debian's uwsgi-plugin-psgi, modifier1 5) or Lua 5.2
(uwsgi-plugin-lua5.2, modifier1 6) through the uwsgi-protocol socket."""
import unittest

from harness import Uwsgi, app, http_body, need, stock_plugin, uwsgi_request


class SecondLanguage:
    plugin = modifier1 = option = script = None

    def call(self, u, path, **q):
        qs = '&'.join('%s=%s' % kv for kv in q.items())
        raw = uwsgi_request(u.uport, {'PATH_INFO': path, 'QUERY_STRING': qs}, self.modifier1)
        status, body = http_body(raw)
        self.assertIn('200', status, raw)
        return body.decode()

    def test_shared_cache(self):
        with Uwsgi('--cache2', 'name=shared,items=10', '--cache2', 'name=other,items=10',
                   '--wsgi-file', app('ops_app.py'), self.option, app(self.script),
                   plugins=('python3', self.plugin), socket_=True) as u:
            self.assertIs(u.op('cache_set', 'py', 'from python', 0, 'shared'), True)
            self.assertEqual(self.call(u, '/get', k='py', c='shared'), 'R:from python')
            self.assertEqual(self.call(u, '/set', k='other', v='from_2nd', c='shared'), 'R:1')
            self.assertEqual(self.call(u, '/set', k='other', v='again', c='shared'), 'UNDEF')
            self.assertEqual(u.op('cache_get', 'other', 'shared'), b'from_2nd')
            self.assertEqual(self.call(u, '/exists', k='py', c='shared'), 'R:1')
            self.assertEqual(self.call(u, '/get', k='py', c='other'), 'UNDEF')
            self.assertEqual(self.call(u, '/del', k='py', c='shared'), 'R:1')
            self.assertEqual(self.call(u, '/del', k='py', c='shared'), 'UNDEF')
            self.assertIs(u.op('cache_exists', 'py', 'shared'), None)
            self.assertEqual(self.call(u, '/clear', c='shared'), 'R:1')
            self.assertEqual(u.op('cache_keys', 'shared'), [])


@need(stock_plugin('psgi'))
class Perl(SecondLanguage, unittest.TestCase):
    plugin, modifier1, option, script = 'psgi', 5, '--psgi', 'cache_app.pl'


@need(stock_plugin('lua52'))
class Lua(SecondLanguage, unittest.TestCase):
    plugin, modifier1, option, script = 'lua52', 6, '--lua', 'cache_app.lua'

    def call(self, u, path, **q):
        out = super().call(u, path, **q)
        return {'R:true': 'R:1'}.get(out, out)


if __name__ == '__main__':
    unittest.main()
