# ucache - top-level build.
#
#   make            engine library + the uWSGI plugin (./ucache_plugin.so)
#   make test       unit tests (plain and ASan+UBSan), then integration tests
#   make bench-engine   engine micro-benchmark (not a test)
#
# The engine (core/, include/) builds without uWSGI; everything touching
# uWSGI lives under plugins/ucache/ and is built by `uwsgi --build-plugin`.

CC      ?= cc
OPT     ?= -O2
CFLAGS_BASE = -std=gnu11 -g $(OPT) -fPIC -Wall -Wextra -Wshadow -Werror \
	-Iinclude -Icore -D_GNU_SOURCE
CFLAGS  ?=
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
.PHONY: all engine plugin install deps deb-packages test unit unit-san integration demo bench-engine clean

all: engine tools plugin

engine: $(BUILD)/libucache.a

$(BUILD)/core/%.o: core/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/san/core/%.o: core/%.c $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/libucache.a: $(CORE_OBJ)
	ar rcs $@ $^

$(BUILD)/san/libucache.a: $(CORE_SAN_OBJ)
	ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c tests/unit/*.h $(BUILD)/libucache.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $< -o $@ $(BUILD)/libucache.a -lcmocka $(LDLIBS_ENGINE)

$(BUILD)/san/tests/%: tests/unit/%.c tests/unit/*.h $(BUILD)/san/libucache.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Itests/unit $< -o $@ $(BUILD)/san/libucache.a -lcmocka $(LDLIBS_ENGINE)

# Store inspection tool: ucache-inspect [-k] [-v] FILE
tools: $(BUILD)/ucache-inspect

$(BUILD)/ucache-inspect: tools/ucache-inspect.c $(BUILD)/libucache.a
	$(CC) $(ALL_CFLAGS) $< -o $@ $(BUILD)/libucache.a $(LDLIBS_ENGINE)

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
PLUGIN_SRC  = $(wildcard plugins/ucache/*.c plugins/ucache/*.h) uwsgiplugin.py
# The binary's plugin directory, from its -DUWSGI_PLUGIN_DIR cflag.
PLUGIN_DIR ?= $(shell $(UWSGI) --cflags 2>/dev/null | tr ' ' '\n' | \
	sed -n 's/^-DUWSGI_PLUGIN_DIR="\\"\(.*\)\\""$$/\1/p')

# Debian packages needed to build, test, demo and benchmark (make deps and
# .ci/run install the same list).
DEB_PACKAGES = build-essential libxxhash-dev libcmocka-dev \
	uwsgi-core uwsgi-dev uwsgi-src uwsgi-plugin-python3 uwsgi-plugin-psgi \
	uwsgi-plugin-lua5.2 python3 python3-django python3-django-uwsgi-ng \
	nginx-light memcached redis-server python3-pymemcache python3-redis \
	clang libclang-rt-14-dev gnuplot-nox wrk valgrind

deb-packages:
	@echo $(DEB_PACKAGES)

plugin: $(PLUGIN)

$(PLUGIN): $(PLUGIN_SRC) $(CORE_SRC) $(CORE_HDR)
	$(UWSGI) --build-plugin .

install: $(PLUGIN)
	@test -n "$(PLUGIN_DIR)" || { echo "cannot find the plugin dir of $(UWSGI)"; exit 1; }
	install -D -m 0644 $(PLUGIN) $(DESTDIR)$(PLUGIN_DIR)/$(PLUGIN)

deps:
	@test "$$(id -u)" = 0 || { echo "make deps installs Debian packages: run it as root"; exit 1; }
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES)

# Real uwsgi instances on loopback (tests/integration/harness.py starts them).
integration: $(PLUGIN)
	UCACHE_PLUGIN=$(CURDIR)/$(PLUGIN) $(PYTHON3) -m unittest discover \
		-s tests/integration -p 'test_*.py' -v

# uwsgi + ucache + a small Python app on http://127.0.0.1:8080/
demo: $(PLUGIN)
	$(UWSGI) --ini demo/demo.ini

test: unit unit-san integration

clean:
	rm -rf $(BUILD) $(PLUGIN) .uwsgi_plugins_builder

# Engine micro-benchmark: a benchmark, not a test (never run by `make test`).
# Pass options with BENCH_ARGS, e.g. make bench-engine BENCH_ARGS="--quick --json out.json"
BENCH_ARGS ?=

$(BUILD)/bench/engine: bench/engine.c include/ucache.h $(BUILD)/libucache.a
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -g -O2 -Wall -Wextra -Wshadow -Werror -Iinclude -D_GNU_SOURCE \
		$< -o $@ $(BUILD)/libucache.a $(LDLIBS_ENGINE) -lm

bench-engine: $(BUILD)/bench/engine
	$(BUILD)/bench/engine $(BENCH_ARGS)
