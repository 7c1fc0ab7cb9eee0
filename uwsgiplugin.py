# uwsgiplugin.py - lets `uwsgi --build-plugin .` (run from the repository
# root) build ./ucache_plugin.so: the uWSGI glue (plugins/ucache/) and the
# engine (core/) in one shared object, compiled with the running binary's
# own cflags (which uWSGI's plugin builder adds) plus the flags below.
import glob
import os

NAME = 'ucache'

# The release lives in VERSION alone; the start-up line and the stats print
# it.  Relative to the current directory, like GCC_LIST (uWSGI exec()s this
# file without a __file__).
with open('VERSION') as f:
    VERSION = f.read().strip()

CFLAGS = [
    '-Iinclude',
    '-Icore',
    '-Iplugins/ucache',
    '-std=gnu11',
    '-D_GNU_SOURCE',
    '-fvisibility=hidden',
    # the engine's few __thread variables: without this a dlopen'd plugin
    # calls __tls_get_addr on every access (~200 instructions per LRU insert)
    '-ftls-model=initial-exec',
    '-Wall',
    '-Wextra',
    '-Wshadow',
    '-Werror',
    # uWSGI's builder hands this line to the shell: the escaped quotes survive
    '-DUCACHE_VERSION="\\"%s\\""' % VERSION,
]
if os.environ.get('UCACHE_PLUGIN_CFLAGS'):
    CFLAGS += os.environ['UCACHE_PLUGIN_CFLAGS'].split()

LDFLAGS = []
LIBS = ['-lxxhash', '-lpthread', '-lcrypto', '-lhiredis']

GCC_LIST = sorted(glob.glob('plugins/ucache/**/*.c', recursive=True)) + sorted(glob.glob('core/*.c'))
