# accel — build, test, run.  See README.md and docs/architecture.md.
#
#   make            build build/accel, build/libstore.a, build/libvcl.a
#   make run        install missing Debian packages, build, start the demo
#                   (PORT=8080 ORIGIN=host:port DEMO_PORT=8081 ADMIN_PORT=6082)
#   make test       install missing Debian packages, build, run every test
#   make docs-check the docs name only parameters and files that exist
#   make deps       install missing Debian packages (apt-get, only when missing)
#   make SAN=1 ...  ASan + UBSan build, output under build/san/
#   make TSAN=1 ... ThreadSanitizer build, output under build/tsan/
#   make fuzz       libFuzzer targets (clang), under build/fuzz/
#   make bench      benchmarks (never part of make test)

CC      ?= gcc
ifeq ($(origin CC),default)
CC      := gcc
endif
BUILD   ?= build
OPT     ?= -O2
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror
CFLAGS_BASE := $(CSTD) $(OPT) -g $(WARN) -pthread -fno-strict-aliasing
ifeq ($(SAN),1)
BUILD   := build/san
CFLAGS_BASE += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -DAC_SAN=1
LDSAN   := -fsanitize=address,undefined
endif
ifeq ($(TSAN),1)
BUILD   := build/tsan
CFLAGS_BASE += -fsanitize=thread -fno-omit-frame-pointer -DAC_TSAN=1
LDSAN   := -fsanitize=thread
endif
ifeq ($(DEBUG),1)
CFLAGS_BASE += -DAC_DEBUG_LOG=1
endif

PKGS    := openssl zlib libbrotlienc libbrotlidec lmdb libpcre2-8 libnghttp2
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(HIREDIS_LIBS) -lev -lm
# hiredis (the cluster bus, accel/cluster/): its headers only for the files
# that use them; every binary that links libaccel.a links the library.
HIREDIS_CFLAGS = $(shell pkg-config --cflags hiredis 2>/dev/null)
HIREDIS_LIBS   = $(shell pkg-config --libs hiredis 2>/dev/null || echo -lhiredis)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

STORE_SRC := $(wildcard store/*.c)
VCL_SRC   := $(wildcard vcl-lite/*.c)
# accel/ is split into rooms (docs/architecture.md): each sub-folder is one
# layer of the daemon.  A room is compiled with its own headers and those of
# the rooms below it on the include path, nothing above, so an upward
# #include does not build:
#   client -> req -> cluster -> cache, origin -> net -> ops -> base; http -> base
# (transports, the request machine, the cluster bus, caching rules and
# origins, workers and connections, configuration/log/counters, shared
# basics; the HTTP codec).
# req/int/ holds the request machine's own headers (struct req): on req's
# path only, so transports see req.h and xport.h, never the request's
# insides.  The libraries go to the rooms that use them.  main.c, unit tests,
# fuzz targets and benchmarks see everything (ACCEL_INC).
ACCEL_ROOMS := base ops net http cache origin cluster req client
INC_base    := base
INC_ops     := ops base
INC_net     := net ops base
INC_http    := http base
INC_cache   := cache http ops base
INC_origin  := origin net http ops base
INC_cluster := cluster cache origin net http ops base
INC_req     := req req/int cluster cache origin net http ops base
INC_client  := client req origin net http ops base
LIB_net     := store vcl-lite
LIB_cache   := store
LIB_origin  := vcl-lite
LIB_cluster := store vcl-lite
LIB_req     := store vcl-lite
LIB_client  := vcl-lite
room_inc = $(addprefix -Iaccel/,$(INC_$(1))) $(addprefix -I,$(LIB_$(1)))
ACCEL_INC := -Iaccel $(addprefix -Iaccel/,$(ACCEL_ROOMS) req/int)
ACCEL_SRC := $(foreach r,$(ACCEL_ROOMS),$(wildcard accel/$(r)/*.c))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)

STORE_OBJ := $(STORE_SRC:%.c=$(BUILD)/obj/%.o)
VCL_OBJ   := $(VCL_SRC:%.c=$(BUILD)/obj/%.o)
ACCEL_OBJ := $(ACCEL_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

LIBSTORE  := $(BUILD)/libstore.a
LIBVCL    := $(BUILD)/libvcl.a
LIBACCEL  := $(BUILD)/libaccel.a
ALL_LIBS  := $(LIBACCEL) $(LIBVCL) $(LIBSTORE)

.PHONY: all deps run test unit integration docs-check fuzz fuzz-smoke bench valgrind clean format
all: $(BUILD)/accel $(UNIT_BIN)

# The libraries compile with their own directory only on the include path,
# so store/ and vcl-lite/ cannot include each other or accel (DESIGN.md).
$(BUILD)/obj/store/%.o: store/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -Istore -MMD -MP -c $< -o $@
$(BUILD)/obj/vcl-lite/%.o: vcl-lite/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) -Ivcl-lite -MMD -MP -c $< -o $@
$(foreach r,$(ACCEL_ROOMS),$(eval \
    $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard accel/$(r)/*.c)): ROOM_INC := $(call room_inc,$(r))))
$(BUILD)/obj/accel/main.o: ROOM_INC := $(ACCEL_INC) -Istore -Ivcl-lite
$(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard accel/cluster/*.c)): ROOM_INC += $(HIREDIS_CFLAGS)
$(BUILD)/obj/accel/%.o: accel/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) $(ROOM_INC) -MMD -MP -c $< -o $@

$(LIBSTORE): $(STORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
$(LIBVCL): $(VCL_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^
$(LIBACCEL): $(ACCEL_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/accel: $(BUILD)/obj/accel/main.o $(ALL_LIBS)
	$(CC) $(CFLAGS_BASE) $< $(ALL_LIBS) $(PKG_LIBS) $(LDSAN) -o $@

# Unit tests: one cmocka binary per tests/unit/test_<module>.c.
$(BUILD)/tests/%: tests/unit/%.c $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) $(ACCEL_INC) -Istore -Ivcl-lite -Itests/unit -MMD -MP $< \
	    $(ALL_LIBS) $(PKG_LIBS) $(CMOCKA_LIBS) $(LDSAN) -o $@

deps:
	@sh scripts/deps.sh test

unit: $(UNIT_BIN)
	@sh scripts/run-unit.sh $(UNIT_BIN)

integration: $(BUILD)/accel
	ACCEL_BIN=$(abspath $(BUILD)/accel) BUILD_DIR=$(abspath $(BUILD)) \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration

# `make test` runs everything CI runs: unit tests (natively, then under
# valgrind, which must find no errors or leaks), a bounded libFuzzer run of
# every parser, and the integration suite against a real accel.
test: deps
	$(MAKE) all
	$(MAKE) unit
ifneq ($(SAN)$(TSAN),)
	@echo "valgrind: skipped in a sanitizer build"
else
	$(MAKE) valgrind
endif
	$(MAKE) fuzz-smoke
	$(MAKE) docs-check
	$(MAKE) integration

# The user docs agree with the binary: every -p parameter they name is in
# `accel -h` (and the guide's table has them all), every repository file
# they name exists, no internal issue numbers.  Alone: make docs-check.
docs-check: $(BUILD)/accel
	@/usr/bin/python3 scripts/check-docs.py $(BUILD)/accel

valgrind: $(UNIT_BIN)
	@VALGRIND=1 sh scripts/run-unit.sh $(UNIT_BIN)

# make run [PORT=8080] [ORIGIN=host:port] [DEMO_PORT=8081] [ADMIN_PORT=6082]
run: deps
	$(MAKE) $(BUILD)/accel
	@PORT="$(PORT)" ORIGIN="$(ORIGIN)" DEMO_PORT="$(DEMO_PORT)" ADMIN_PORT="$(ADMIN_PORT)" \
	    sh scripts/run-demo.sh $(BUILD)/accel

# libFuzzer targets are built with clang from the same sources.
FUZZ_CC     := clang
FUZZ_FLAGS  := $(CSTD) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DAC_FUZZ=1
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_LIBOBJ := $(STORE_SRC:%.c=build/fuzz/obj/%.o) $(VCL_SRC:%.c=build/fuzz/obj/%.o) $(ACCEL_SRC:%.c=build/fuzz/obj/%.o)
$(patsubst %.c,build/fuzz/obj/%.o,$(wildcard accel/cluster/*.c)): ROOM_CFLAGS := $(HIREDIS_CFLAGS)
build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) $(ROOM_CFLAGS) $(ACCEL_INC) -Istore -Ivcl-lite -pthread -MMD -MP -c $< -o $@
build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIBOBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) $(ACCEL_INC) -Istore -Ivcl-lite -pthread $< \
	    $(FUZZ_LIBOBJ) $(PKG_LIBS) -o $@
fuzz: $(FUZZ_BIN)
fuzz-smoke: $(FUZZ_BIN)
	@sh scripts/fuzz-smoke.sh $(FUZZ_BIN)

bench:
	@sh scripts/deps.sh bench
	$(MAKE) all
	@sh scripts/bench.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

# Benchmarks: tests/bench/<name>.c → build/bench/<name> (not part of make test)
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: tests/bench/%.c $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(PKG_CFLAGS) $(ACCEL_INC) -Istore -Ivcl-lite $< $(ALL_LIBS) $(PKG_LIBS) $(LDSAN) -o $@
bench-bin: $(BENCH_BIN)
