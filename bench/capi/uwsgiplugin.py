# bench/capi/uwsgiplugin.py - `uwsgi --build-plugin bench/capi` builds
# ./ucbench_plugin.so, the C API benchmark plugin (bench/capi/ucbench.c),
# with the running uwsgi binary's own cflags.  `make bench` moves it into
# build/bench/.  It links nothing of ucache: it calls the core's exported
# uwsgi_cache_magic_* functions, which ucache redirects when it is loaded.
NAME = 'ucbench'

CFLAGS = ['-std=gnu11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Wshadow', '-Werror',
          '-Wno-unused-parameter', '-Wno-missing-field-initializers']
LDFLAGS = []
LIBS = ['-lm']  # pow(): the hitratio trace (bench/trace.h)
GCC_LIST = ['ucbench']
