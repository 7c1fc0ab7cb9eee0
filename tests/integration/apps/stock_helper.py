"""stock_helper.py - ucache.Cache on the stock uWSGI cache (no ucache
plugin), run with --pyrun: plain operations work through uwsgi.cache_*,
the atomic ones raise CacheError saying why.  Prints one "RESULT <json>"
line."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), 'python'))

import ucache  # noqa: E402

c = ucache.Cache()
named = ucache.Cache('first')
out = [c.set('a', {'b': 1}), c.get('a'), named.get('a'), c.add('a', 2), c.add('n2', 3), sorted(c.keys),
       c.incr('n'), c.get('n', as_int=True), c.get('zz', 'dflt'), c.delete('a'), c.delete('a')]
try:
    c.gets('a')
    out.append('no error')
except ucache.CacheError as e:
    out.append([e.code, str(e)])
print('RESULT ' + json.dumps(out), flush=True)
