# ucache - top-level build.
#
#   make            engine library + the uWSGI plugin (./ucache_plugin.so)
#   make test       unit tests (plain and ASan+UBSan), the fuzz targets' regression
#                   corpora (ASan), then integration tests
#   make bench-engine   engine micro-benchmark (not a test)
#   make soak       the long crash tests (1000 worker kills, 100 instance crashes)
#   make fuzz       libFuzzer on the modifier1 111 parser and the stock image reader, bounded (FUZZ_TIME s);
#                   FUZZ_TARGET=udp: on the replication datagram receiver;
#                   FUZZ_TARGET=view (make fuzz-view): on read-only views of store images
#   make bench-nginx    nginx direct hits on ucache vs nginx + memcached (not a test)
#   make install    plugin, ucache-inspect, ucache-top, their man pages, docs, Python package and its wheel (DESTDIR-aware)
#   make wheel      build/wheel/ucache-<VERSION>-py3-none-any.whl (pip install it into a venv)
#   make deb        build/deb/uwsgi-plugin-ucache_<VERSION>_<arch>.deb (packaging/deb/), and with
#                   nginx-dev build/deb/libnginx-mod-http-ucache_<VERSION>_<arch>.deb
#   make nginx-module   build/nginx/ngx_http_ucache_module.so (nginx/; part of `make` when nginx-dev is installed)
#
# The engine (core/, include/) builds without uWSGI; everything touching
# uWSGI lives under plugins/ucache/ and is built by `uwsgi --build-plugin`.

CC      ?= cc
OPT     ?= -O2
CFLAGS_BASE = -std=gnu11 -g $(OPT) -fPIC -Wall -Wextra -Wshadow -Werror \
	-Iinclude -Icore -D_GNU_SOURCE
CFLAGS  ?=
# The release lives in VERSION alone (uwsgiplugin.py reads it for the
# plugin).  It goes into C strings, JSON and a Debian version unescaped, so
# it may hold digits, letters, '.', '+' and '~' only ('-' would make the
# .deb a non-native package).
VERSION := $(shell cat VERSION)
ifeq ($(shell printf '%s' '$(VERSION)' | grep -Ex '[0-9][A-Za-z0-9.+~]*'),)
$(error VERSION file holds "$(VERSION)": want a version such as 0.5.0 (digits, letters, . + ~))
endif
CFLAGS_BASE += -DUCACHE_VERSION='"$(VERSION)"'
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)
LDLIBS_ENGINE = -lxxhash -lpthread
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

BUILD   = build
CORE_SRC = $(wildcard core/*.c)
CORE_HDR = $(wildcard core/*.h) include/ucache.h
CORE_OBJ = $(CORE_SRC:core/%.c=$(BUILD)/core/%.o)
CORE_SAN_OBJ = $(CORE_SRC:core/%.c=$(BUILD)/san/core/%.o)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_SAN_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/san/tests/%)

.PHONY: tools inspect
.PHONY: deb
.PHONY: deb-packages-run deb-packages-test deb-packages-bench deb-packages-deb
.PHONY: all engine plugin install deps deps-run deps-test deps-bench deps-deb deb-packages test unit unit-san integration demo bench-engine clean
.PHONY: fuzz fuzz-regress bench-nginx layering
.PHONY: soak nginx-module

all: engine tools plugin

engine: $(BUILD)/libucache.a

$(BUILD)/core/%.o: core/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/san/core/%.o: core/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

# rm first: `ar rcs` keeps members whose source file was removed or renamed
$(BUILD)/libucache.a: $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/san/libucache.a: $(CORE_SAN_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c tests/unit/*.h $(BUILD)/libucache.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $< -o $@ $(BUILD)/libucache.a -lcmocka $(LDLIBS_ENGINE)

$(BUILD)/san/tests/%: tests/unit/%.c tests/unit/*.h $(BUILD)/san/libucache.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Itests/unit $< -o $@ $(BUILD)/san/libucache.a -lcmocka $(LDLIBS_ENGINE)

# plugins/ucache/wire/ (the modifier1 111 parser, the HTTP and dump formats,
# stock's raw cache image, the replication datagram) needs neither uWSGI
# nor the engine: its unit tests and fuzzers link the folder alone, with
# libcrypto for the datagram's HMAC (these explicit rules win over the
# pattern rules above).
WIRE_C   = $(wildcard plugins/ucache/wire/*.c)
WIRE_SRC = $(WIRE_C) $(wildcard plugins/ucache/wire/*.h)
WIRE_TESTS = test_proto test_image test_udpwire

$(WIRE_TESTS:%=$(BUILD)/tests/%): $(BUILD)/tests/%: tests/unit/%.c $(WIRE_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iplugins/ucache/wire $< $(WIRE_C) -o $@ -lcmocka -lcrypto

$(WIRE_TESTS:%=$(BUILD)/san/tests/%): $(BUILD)/san/tests/%: tests/unit/%.c $(WIRE_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Iplugins/ucache/wire $< $(WIRE_C) -o $@ -lcmocka -lcrypto

# Store inspection tool: ucache-inspect [-k] [-v] FILE, ucache-inspect keys
# (a store, or a live cache over modifier1 111: it links the modifier1 111
# part of plugins/ucache/wire/ alone, no uWSGI)
INSPECT_WIRE = $(filter-out %/udpwire.c %/image.c,$(WIRE_C))
INSPECT_SRC = tools/ucache-inspect.c tools/inspect_keys.c tools/inspect_remote.c $(INSPECT_WIRE)
tools: $(BUILD)/ucache-inspect

$(BUILD)/ucache-inspect: $(INSPECT_SRC) tools/inspect.h $(WIRE_SRC) $(BUILD)/libucache.a VERSION
	$(CC) $(ALL_CFLAGS) -Iplugins/ucache/wire $(INSPECT_SRC) -o $@ $(BUILD)/libucache.a $(LDLIBS_ENGINE)

inspect: $(BUILD)/ucache-inspect
	@test -n "$(STORE)" || { echo "usage: make inspect STORE=/path/to/store [INSPECT_ARGS=-k]"; exit 1; }
	$(BUILD)/ucache-inspect $(INSPECT_ARGS) $(STORE)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

unit-san: $(UNIT_SAN_BIN)
	@set -e; for t in $(UNIT_SAN_BIN); do echo "== $$t (asan+ubsan)"; \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

# ---------------------------------------------------------------- plugin
# The plugin is built by the running uwsgi binary itself (`uwsgi
# --build-plugin .` reads uwsgiplugin.py), so it is compiled with that
# binary's cflags and uwsgi.h.  Sources: plugins/ucache/ + core/.
UWSGI      ?= uwsgi
PYTHON3    ?= /usr/bin/python3
PLUGIN      = ucache_plugin.so
PLUGIN_SRC  = $(wildcard plugins/ucache/*.[ch] plugins/ucache/*/*.[ch]) uwsgiplugin.py VERSION
# The binary's plugin directory, from its -DUWSGI_PLUGIN_DIR cflag.
PLUGIN_DIR ?= $(shell $(UWSGI) --cflags 2>/dev/null | tr ' ' '\n' | \
	sed -n 's/^-DUWSGI_PLUGIN_DIR="\\"\(.*\)\\""$$/\1/p')

# ------------------------------------------------------ Debian packages
# One list per purpose; each make goal installs only the sets it needs
# (packaging/need-packages.sh, below): `make`/`make demo` RUN, `make
# install` RUN + WHEEL, `make test` RUN + TEST, `make bench*` RUN + TEST +
# BENCH (the peers are test packages too), `make deb` RUN + DEB.  .ci/run
# installs them all (`make deb-packages`).  Append a package to the set of
# the goal that needs it.
#   RUN:   build the engine, ucache-inspect and the plugin, run the demo
#          (`uwsgi --build-plugin` writes out its own uwsgi.h, which
#          includes pcre.h, uuid.h, zlib.h, sys/capability.h and runs
#          uwsgiconfig.py with distutils: uwsgi-dev depends on all of them)
#   WHEEL: build the Python package's wheel (build/wheel/, shipped in the .deb)
#   TEST:  unit tests (cmocka), the fuzz replay (clang), integration tests
#          (peers, other languages' plugins, Django, a venv, single-flight
#          waits under a gevent worker: test_gevent.py;
#          promtool and prometheus: test_metrics.py; headless chromium:
#          the demo's charts; tmux: ucache-top's curses view)
#   BENCH: benchmarks (make bench, bench-nginx)
#   DEB:   make deb and its check (tests/deb/check.sh); nginx-dev: the nginx
#          module and its package libnginx-mod-http-ucache
DEB_PACKAGES_RUN = build-essential libxxhash-dev libssl-dev libhiredis-dev \
	uwsgi-core uwsgi-dev uwsgi-plugin-python3 python3
DEB_PACKAGES_WHEEL = python3-pip python3-setuptools python3-wheel
DEB_PACKAGES_TEST = libcmocka-dev clang libclang-rt-14-dev uwsgi-src \
	uwsgi-plugin-psgi uwsgi-plugin-lua5.2 uwsgi-plugin-php php-apcu \
	python3-django python3-django-uwsgi-ng python3-pymemcache python3-redis python3-django-redis \
	nginx-light libnginx-mod-http-lua nginx-dev memcached redis-server \
	python3-venv python3-setuptools-whl python3-wheel-whl $(DEB_PACKAGES_WHEEL) \
	uwsgi-plugin-gevent-python3 \
	prometheus chromium tmux
DEB_PACKAGES_BENCH = gnuplot-nox wrk valgrind
DEB_PACKAGES_DEB = lintian dpkg-dev nginx-dev $(DEB_PACKAGES_WHEEL)
DEB_PACKAGES = $(sort $(DEB_PACKAGES_RUN) $(DEB_PACKAGES_TEST) $(DEB_PACKAGES_BENCH) $(DEB_PACKAGES_DEB))

# The lists, for scripts (.ci/run): all of them, or one set.
deb-packages:
	@echo $(DEB_PACKAGES)
deb-packages-run:
	@echo $(DEB_PACKAGES_RUN)
deb-packages-test:
	@echo $(DEB_PACKAGES_TEST)
deb-packages-bench:
	@echo $(DEB_PACKAGES_BENCH)
deb-packages-deb:
	@echo $(DEB_PACKAGES_DEB)

# `make deps-<set>` installs a goal's sets (as root); `make deps` all of them.
deps-run:
	@$(NEED_PACKAGES) "make deps-run" "sudo make deps-run" $(DEB_PACKAGES_RUN)
deps-test:
	@$(NEED_PACKAGES) "make deps-test" "sudo make deps-test" $(DEB_PACKAGES_RUN) $(DEB_PACKAGES_TEST)
deps-bench:
	@$(NEED_PACKAGES) "make deps-bench" "sudo make deps-bench" $(DEB_PACKAGES_RUN) $(DEB_PACKAGES_TEST) \
		$(DEB_PACKAGES_BENCH)
deps-deb:
	@$(NEED_PACKAGES) "make deps-deb" "sudo make deps-deb" $(DEB_PACKAGES_RUN) $(DEB_PACKAGES_DEB)
deps:
	@$(NEED_PACKAGES) "make deps" "sudo make deps" $(DEB_PACKAGES)

# The prerequisite check, before anything is built: the goals on the
# command line pick the sets (the widest wins), packaging/need-packages.sh
# installs what is missing (as root) or stops with the one command to run.
# Silent and fast (one dpkg-query) when nothing is missing.  Skipped in
# sub-makes (their parent checked) and with UCACHE_SKIP_DEPS=1 (a machine
# that is not Debian, or a tree built against other packages).
NEED_PACKAGES = packaging/need-packages.sh
NEED_NONE  = clean deps deps-run deps-test deps-bench deps-deb deb-packages deb-packages-run \
	deb-packages-test deb-packages-bench deb-packages-deb
NEED_TEST  = test unit unit-san fuzz-regress integration soak fuzz fuzz-proto fuzz-udp fuzz-view
NEED_BENCH = bench bench-engine bench-nginx
NEED_GOALS = $(filter-out $(NEED_NONE),$(or $(MAKECMDGOALS),all))
NEED_SET = $(if $(filter $(NEED_BENCH),$(NEED_GOALS)),bench,$(if $(filter $(NEED_TEST),$(NEED_GOALS)),test,$(if \
	$(filter deb,$(NEED_GOALS)),deb,run)))
NEED_LIST = $(DEB_PACKAGES_RUN) $(if $(filter install wheel,$(NEED_GOALS)),$(DEB_PACKAGES_WHEEL)) $(if \
	$(filter test bench,$(NEED_SET)),$(DEB_PACKAGES_TEST)) $(if $(filter bench,$(NEED_SET)),$(DEB_PACKAGES_BENCH)) \
	$(if $(filter deb,$(NEED_SET)),$(DEB_PACKAGES_DEB))
ifneq ($(NEED_GOALS),)
ifeq ($(MAKELEVEL)$(UCACHE_SKIP_DEPS),0)
NEED_FAILED := $(shell $(NEED_PACKAGES) "make $(NEED_GOALS)" \
	"sudo make deps-$(if $(filter install wheel,$(NEED_GOALS)),deb,$(NEED_SET))" $(NEED_LIST))
ifneq ($(.SHELLSTATUS),0)
$(error $(NEED_FAILED))
endif
endif
endif

plugin: $(PLUGIN)

# ---------------------------------------------------------- nginx module
# nginx/ngx_http_ucache_module.so, built against Debian's nginx-dev (the
# configured source tree in NGINX_SRC) as Debian builds its libnginx-mod-*
# (nginx/build.sh says how), linking the engine (libucache.a is -fPIC) and
# libxxhash, never uWSGI.  `make` and `make integration` (its tests need
# it) build it only where nginx-dev is installed; `make nginx-module`
# insists.
NGINX_SRC ?= /usr/share/nginx/src
NGINX_MODULE := $(BUILD)/nginx/ngx_http_ucache_module.so
NGINX_MODULE_SRC = $(wildcard nginx/*.[ch]) nginx/config nginx/build.sh include/ucache.h

# the module where nginx-dev is installed, else nothing (its tests skip)
NGINX_MODULE_IF := $(if $(wildcard $(NGINX_SRC)/configure),$(NGINX_MODULE))
all: $(NGINX_MODULE_IF)

nginx-module: $(NGINX_MODULE)

$(NGINX_MODULE): $(NGINX_MODULE_SRC) $(BUILD)/libucache.a
	@test -f $(NGINX_SRC)/conf_flags || { echo "no $(NGINX_SRC)/conf_flags: install nginx-dev"; exit 1; }
	+nginx/build.sh $(NGINX_SRC) $(BUILD)/nginx $(CURDIR)/$(BUILD)/libucache.a

$(PLUGIN): $(PLUGIN_SRC) $(CORE_SRC) $(CORE_HDR)
	$(UWSGI) --build-plugin .

# What `make install` and the .deb put in place.  The plugin goes where the
# binary looks for `--plugin ucache`; the Python package where Debian's
# python3 (and so the python3 plugin) finds it, with a generated _version.py
# carrying VERSION (python/ucache/__init__.py reads it from there).
PREFIX  ?= /usr
DOCDIR   = $(PREFIX)/share/doc/uwsgi-plugin-ucache
# README.md's docs/ (its links stay valid next to it), with their images
DOC_FILES = $(wildcard docs/*.md docs/img/*.png)
PYDIR    = $(PREFIX)/lib/python3/dist-packages
PY_FILES = $(shell cd python 2>/dev/null && find ucache -name '*.py' ! -name _version.py | sort)

# The Python package as a wheel (python/pyproject.toml), for virtualenvs:
# built offline with Debian's setuptools and wheel, shipped in
# $(SHAREDIR) so that `VENV/bin/pip install --no-index
# /usr/share/uwsgi-plugin-ucache/ucache-*.whl` works with no network.
WHEEL_DIR = $(BUILD)/wheel
SHAREDIR  = $(PREFIX)/share/uwsgi-plugin-ucache
.PHONY: wheel
wheel: $(WHEEL_DIR)/stamp

$(WHEEL_DIR)/stamp: python/pyproject.toml python/setup.py $(addprefix python/,$(PY_FILES)) VERSION
	rm -rf $(WHEEL_DIR)
	$(PYTHON3) -m pip wheel --no-build-isolation --no-index --no-deps --quiet -w $(WHEEL_DIR) ./python
	touch $@

install: $(PLUGIN) $(BUILD)/ucache-inspect $(if $(PY_FILES),$(WHEEL_DIR)/stamp)
	@test -n "$(PLUGIN_DIR)" || { echo "cannot find the plugin dir of $(UWSGI)"; exit 1; }
	install -D -m 0644 $(PLUGIN) $(DESTDIR)$(PLUGIN_DIR)/$(PLUGIN)
	install -D -m 0755 $(BUILD)/ucache-inspect $(DESTDIR)$(PREFIX)/bin/ucache-inspect
	install -D -m 0644 docs/ucache-inspect.1 $(DESTDIR)$(PREFIX)/share/man/man1/ucache-inspect.1
	gzip -9nf $(DESTDIR)$(PREFIX)/share/man/man1/ucache-inspect.1
	install -D -m 0755 tools/ucache-top $(DESTDIR)$(PREFIX)/bin/ucache-top
	install -D -m 0644 docs/ucache-top.1 $(DESTDIR)$(PREFIX)/share/man/man1/ucache-top.1
	gzip -9nf $(DESTDIR)$(PREFIX)/share/man/man1/ucache-top.1
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	@set -e; for f in $(DOC_FILES); do \
		echo "install $$f"; install -D -m 0644 $$f $(DESTDIR)$(DOCDIR)/$$f; done
	install -D -m 0644 LICENSE $(DESTDIR)$(DOCDIR)/copyright
	@set -e; for f in $(PY_FILES); do \
		echo "install python/$$f"; install -D -m 0644 python/$$f $(DESTDIR)$(PYDIR)/$$f; done; \
	if [ -n "$(PY_FILES)" ]; then \
		echo "__version__ = '$(VERSION)'" > $(DESTDIR)$(PYDIR)/ucache/_version.py; \
		install -d $(DESTDIR)$(SHAREDIR) && install -m 0644 $(WHEEL_DIR)/ucache-*.whl $(DESTDIR)$(SHAREDIR)/; fi

# The Debian package: `make install` into a staging root, then
# packaging/deb/build.sh adds the control data (Depends: the uwsgi-abi-<hash>
# the installed uwsgi-core Provides, plus dpkg-shlibdeps' libraries) and
# runs dpkg-deb.  Where nginx-dev is installed, the nginx module's package
# too (packaging/deb/build-nginx.sh: libnginx-mod-http-ucache, Depends: the
# nginx-abi-<version> the installed nginx Provides).
DEB_ROOT = $(BUILD)/deb/root
DEB_NGINX_MODULE = $(if $(wildcard $(NGINX_SRC)/configure),$(NGINX_MODULE))

deb: $(PLUGIN) $(BUILD)/ucache-inspect $(DEB_NGINX_MODULE)
	rm -rf $(DEB_ROOT)
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DEB_ROOT) PREFIX=/usr
	packaging/deb/build.sh $(VERSION) $(DEB_ROOT) $(BUILD)/deb
	$(if $(DEB_NGINX_MODULE),NGINX_SRC=$(NGINX_SRC) packaging/deb/build-nginx.sh $(VERSION) $(DEB_NGINX_MODULE) $(BUILD)/deb)

# Real uwsgi instances on loopback (tests/integration/harness.py starts them).
# The crash tests read store files with ucache-inspect too.
INTEGRATION_ENV = UCACHE_PLUGIN=$(CURDIR)/$(PLUGIN) UCACHE_INSPECT=$(CURDIR)/$(BUILD)/ucache-inspect

integration: $(PLUGIN) $(BUILD)/ucache-inspect $(NGINX_MODULE_IF)
	$(INTEGRATION_ENV) $(PYTHON3) -m unittest discover \
		-s tests/integration -p 'test_*.py' -v

# The long versions of the crash, fault and regression tests (never run by
# `make test`): 1000 worker SIGKILLs under load, 100 whole-instance crashes
# with a store, 300 bit-flipped store files; each test prints its counts
# ("[counts] ...").  About 3 minutes on 2 CPUs.
SOAK_TESTS = test_crash_workers test_crash_instance test_faults_store test_regressions

soak: $(PLUGIN) $(BUILD)/ucache-inspect
	cd tests/integration && UCACHE_SOAK=1 UCACHE_FLIP_TRIALS=300 $(INTEGRATION_ENV) \
		$(PYTHON3) -m unittest -v $(SOAK_TESTS)

# uwsgi + ucache + a small Python app on http://127.0.0.1:8080/
demo: $(PLUGIN)
	$(UWSGI) --ini demo/demo.ini

# The whole tree without cycles (tests/check_layering.py reads the objects'
# symbols): the engine's objects, and the plugin's compiled one by one into
# build/layering/ with the uwsgi binary's cflags and its uwsgi.h (--dot-h),
# as `uwsgi --build-plugin` compiles them.
LAYER_DIR  = $(BUILD)/layering
PLUGIN_C   = $(wildcard plugins/ucache/*.c plugins/ucache/*/*.c)
LAYER_OBJ  = $(PLUGIN_C:plugins/ucache/%.c=$(LAYER_DIR)/%.o)
LAYER_FLAGS = -I$(LAYER_DIR)/include -Iinclude -Icore -Iplugins/ucache -std=gnu11 -D_GNU_SOURCE \
	-fvisibility=hidden -Wall -Wextra -Wshadow -Werror -DUCACHE_VERSION='"$(VERSION)"'

$(LAYER_DIR)/include/uwsgi.h:
	@mkdir -p $(dir $@)
	$(UWSGI) --dot-h > $@

$(LAYER_DIR)/%.o: plugins/ucache/%.c $(PLUGIN_SRC) $(CORE_HDR) $(LAYER_DIR)/include/uwsgi.h
	@mkdir -p $(dir $@)
	$(CC) $$($(UWSGI) --cflags) $(LAYER_FLAGS) -c $< -o $@

layering: engine $(LAYER_OBJ)
	$(PYTHON3) tests/check_layering.py $(BUILD)/core $(LAYER_DIR)

test: unit unit-san layering fuzz-regress integration

clean:
	rm -rf $(BUILD) $(PLUGIN) .uwsgi_plugins_builder

# Engine micro-benchmark: a benchmark, not a test (never run by `make test`).
# Pass options with BENCH_ARGS, e.g. make bench-engine BENCH_ARGS="--quick --json out.json"
BENCH_ARGS ?=

$(BUILD)/bench/engine: bench/engine.c include/ucache.h $(BUILD)/libucache.a
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -g -O2 -Wall -Wextra -Wshadow -Werror -Iinclude -D_GNU_SOURCE \
		-DUCACHE_VERSION='"$(VERSION)"' $< -o $@ $(BUILD)/libucache.a $(LDLIBS_ENGINE) -lm

bench-engine: $(BUILD)/bench/engine
	$(BUILD)/bench/engine $(BENCH_ARGS)

# Side-by-side benchmarks, stock cache vs ucache on the same uwsgi binary
# (~8 min on 2 CPUs; never run by `make test`): C API, Python, memory,
# sweep stall, callgrind instructions, memcached/Redis peers, bench/engine.
# Writes bench/results/latest.json, bench/results/<date>.json,
# bench/results/chart.png and BENCHMARKS.md.
# Pass options with BENCH_RUN_ARGS, e.g. BENCH_RUN_ARGS="--quick" or "--only mem,sweep".
.PHONY: bench
BENCH_RUN_ARGS ?=

# The C API benchmark plugin, built by the uwsgi binary like ucache itself
# (after it: both use ./.uwsgi_plugins_builder).
$(BUILD)/bench/ucbench_plugin.so: bench/capi/ucbench.c bench/capi/uwsgiplugin.py | $(PLUGIN)
	@mkdir -p $(dir $@)
	$(UWSGI) --build-plugin bench/capi
	mv ucbench_plugin.so $@

bench: $(PLUGIN) $(BUILD)/bench/engine $(BUILD)/bench/ucbench_plugin.so
	$(PYTHON3) bench/run.py $(BENCH_RUN_ARGS)

# ------------------------------------------------------------------ fuzzing
# libFuzzer for FUZZ_TIME seconds from a seed corpus; new inputs go to
# build/fuzz/corpus[-udp], a crash to build/fuzz/crash-*.  Targets
# (FUZZ_TARGET): proto (default), the modifier1 111 parser and the stock
# image reader (tests/fuzz/fuzz_proto.c); udp, the replication datagram receiver
# (tests/fuzz/fuzz_udp.c); view, read-only views of store images, the engine
# code nginx's module runs over a file it does not trust (tests/fuzz/fuzz_view.c;
# seeds: make fuzz-view-corpus).  `make test` replays the committed regression
# corpora (and the seeds) through every target under ASan.
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
FUZZ_ARGS ?=
FUZZ_TARGET ?= proto
FUZZ_SRC   = tests/fuzz/fuzz_proto.c $(WIRE_SRC)
FUZZ_UDP_SRC = tests/fuzz/fuzz_udp.c $(WIRE_SRC)
FUZZ_FLAGS = -g -O1 -Wall -Wextra -Werror -D_GNU_SOURCE -Iplugins/ucache/wire \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_RUN   = -max_total_time=$(FUZZ_TIME) -timeout=5 -rss_limit_mb=1024 \
	-artifact_prefix=$(BUILD)/fuzz/ $(FUZZ_ARGS)

$(BUILD)/fuzz/fuzz_proto: $(FUZZ_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) tests/fuzz/fuzz_proto.c $(WIRE_C) -o $@ -lcrypto

$(BUILD)/fuzz/fuzz_udp: $(FUZZ_UDP_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) tests/fuzz/fuzz_udp.c $(WIRE_C) -o $@ -lcrypto

# fuzz_view links the engine itself, built with the fuzzer's instrumentation
FUZZ_VIEW_FLAGS = -g -O1 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Icore -DUCACHE_VERSION='"$(VERSION)"' \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

$(BUILD)/fuzz/fuzz_view: tests/fuzz/fuzz_view.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_VIEW_FLAGS) tests/fuzz/fuzz_view.c $(CORE_SRC) -o $@ $(LDLIBS_ENGINE)

$(BUILD)/fuzz/make_view_corpus: tests/fuzz/make_view_corpus.c $(BUILD)/libucache.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(BUILD)/libucache.a $(LDLIBS_ENGINE)

fuzz: fuzz-$(FUZZ_TARGET)

.PHONY: fuzz-proto fuzz-udp fuzz-view fuzz-view-corpus
fuzz-proto: $(BUILD)/fuzz/fuzz_proto
	@mkdir -p $(BUILD)/fuzz/corpus
	$< $(FUZZ_RUN) -dict=tests/fuzz/proto.dict \
		$(BUILD)/fuzz/corpus tests/fuzz/corpus tests/fuzz/regressions tests/fuzz/images

fuzz-udp: $(BUILD)/fuzz/fuzz_udp
	@mkdir -p $(BUILD)/fuzz/corpus-udp
	$< $(FUZZ_RUN) $(BUILD)/fuzz/corpus-udp tests/fuzz/udp-corpus tests/fuzz/udp-regressions

fuzz-view: $(BUILD)/fuzz/fuzz_view
	@mkdir -p $(BUILD)/fuzz/corpus-view
	$< $(FUZZ_RUN) $(BUILD)/fuzz/corpus-view tests/fuzz/view-corpus tests/fuzz/view-regressions

fuzz-view-corpus: $(BUILD)/fuzz/make_view_corpus
	@mkdir -p tests/fuzz/view-corpus
	$< tests/fuzz/view-corpus

$(BUILD)/san/tests/fuzz_replay: tests/fuzz/replay.c $(FUZZ_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Iplugins/ucache/wire tests/fuzz/replay.c \
		tests/fuzz/fuzz_proto.c $(WIRE_C) -o $@ -lcrypto

$(BUILD)/san/tests/fuzz_replay_udp: tests/fuzz/replay.c $(FUZZ_UDP_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Iplugins/ucache/wire tests/fuzz/replay.c \
		tests/fuzz/fuzz_udp.c $(WIRE_C) -o $@ -lcrypto

$(BUILD)/san/tests/fuzz_replay_view: tests/fuzz/replay.c tests/fuzz/fuzz_view.c $(BUILD)/san/libucache.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) tests/fuzz/replay.c tests/fuzz/fuzz_view.c -o $@ \
		$(BUILD)/san/libucache.a $(LDLIBS_ENGINE)

FUZZ_REPLAY_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1

fuzz-regress: $(BUILD)/san/tests/fuzz_replay $(BUILD)/san/tests/fuzz_replay_udp $(BUILD)/san/tests/fuzz_replay_view
	$(FUZZ_REPLAY_ENV) $(BUILD)/san/tests/fuzz_replay tests/fuzz/regressions tests/fuzz/corpus tests/fuzz/images
	$(FUZZ_REPLAY_ENV) $(BUILD)/san/tests/fuzz_replay_udp tests/fuzz/udp-regressions tests/fuzz/udp-corpus
	$(FUZZ_REPLAY_ENV) $(BUILD)/san/tests/fuzz_replay_view tests/fuzz/view-regressions tests/fuzz/view-corpus

# nginx direct hits on ucache (modifier1 111) against nginx's memcached_pass
# to memcached, same keys and values, same run: a benchmark, not a test.
# Options: make bench-nginx BENCH_NGINX_ARGS="--duration 10 --size 4096"
BENCH_NGINX_ARGS ?=

bench-nginx: $(PLUGIN)
	UCACHE_PLUGIN=$(CURDIR)/$(PLUGIN) $(PYTHON3) bench/nginx/bench_nginx.py $(BENCH_NGINX_ARGS)
