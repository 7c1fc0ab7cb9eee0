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

.PHONY: all engine test unit unit-san integration bench-engine clean

all: engine

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

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

unit-san: $(UNIT_SAN_BIN)
	@set -e; for t in $(UNIT_SAN_BIN); do echo "== $$t (asan+ubsan)"; \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

test: unit unit-san

clean:
	rm -rf $(BUILD)

# Engine micro-benchmark: a benchmark, not a test (never run by `make test`).
# Pass options with BENCH_ARGS, e.g. make bench-engine BENCH_ARGS="--quick --json out.json"
BENCH_ARGS ?=

$(BUILD)/bench/engine: bench/engine.c include/ucache.h $(BUILD)/libucache.a
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -g -O2 -Wall -Wextra -Wshadow -Werror -Iinclude -D_GNU_SOURCE \
		$< -o $@ $(BUILD)/libucache.a $(LDLIBS_ENGINE) -lm

bench-engine: $(BUILD)/bench/engine
	$(BUILD)/bench/engine $(BENCH_ARGS)
