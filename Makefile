# dirtytrackd: plain Makefile, pkg-config for every dependency.
# make            build into build/
# make check      install deps, build (also ASan+UBSan -Werror), run every test
# make demo       install deps, build, run the demo
# make bench      benchmarks; make fuzz: libFuzzer harnesses
# V=1 for verbose, SAN=1 for a sanitizer build, BUILD=dir for another tree.

BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := libsystemd libmicrohttpd json-c inih libcurl

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
WARN += -Werror
endif
ifeq ($(WERROR),1)
WARN += -Werror
endif

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC -I. -Iproto -Istats -Icommon -Icollectors -Idaemon -Iapi -Itests/unit \
	$(PKG_CFLAGS) -MMD -MP
LIBS := $(PKG_LIBS) -lroaring -lpthread -lm

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_SRC := $(wildcard common/*.c)
PROTO_SRC := $(wildcard proto/*.c)
STATS_SRC := $(wildcard stats/*.c)
COLLECT_SRC := $(wildcard collectors/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c)) $(wildcard api/*.c)
CTL_SRC := $(wildcard tools/dirtytrackctl/*.c)
DTSIM_SRC := $(wildcard tools/dtsim/*.c)
DTVM_SRC := $(wildcard tools/dtvm/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)

LIBDT := $(BUILD)/libdirtytrack.a
LIBCORE := $(BUILD)/libdtcore.a
PROGS := $(BUILD)/dirtytrackd $(BUILD)/dirtytrackctl $(BUILD)/dtsim
ifneq ($(DTVM_SRC),)
PROGS += $(BUILD)/dtvm
endif
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

all: $(PROGS)
tests: all $(UNIT_BINS) $(BUILD)/bench/bench_plan

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# /openapi.json is docs/openapi.json, embedded with .incbin.
$(BUILD)/obj/api/openapi.o: docs/openapi.json

$(LIBDT): $(call obj,$(PROTO_SRC))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBCORE): $(call obj,$(COMMON_SRC) $(STATS_SRC) $(COLLECT_SRC))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/dirtytrackd: $(call obj,daemon/main.c $(DAEMON_SRC)) $(LIBCORE) $(LIBDT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/dirtytrackctl: $(call obj,$(CTL_SRC)) $(LIBCORE) $(LIBDT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/dtsim: $(call obj,$(DTSIM_SRC)) $(LIBCORE) $(LIBDT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/dtvm: $(call obj,$(DTVM_SRC)) $(LIBCORE) $(LIBDT)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(call obj,$(DAEMON_SRC)) $(LIBCORE) $(LIBDT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBCORE) $(LIBDT)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# --- fuzzing (clang + libFuzzer) ---------------------------------------------
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	-I. -Iproto -Istats -Icommon -Iapi -Idaemon $(PKG_CFLAGS)
# api/url.c: the REST request-target parser (pure code, no libmicrohttpd).
# daemon/config.c: the configuration parser (libinih; no daemon state).
$(BUILD)/fuzz/%: tests/fuzz/%.c $(PROTO_SRC) $(COMMON_SRC) api/url.c daemon/config.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS)
fuzz: $(FUZZ_BINS)

# --- dependencies, tests, demo, bench ----------------------------------------
deps:
	$(Q)tools/deps.sh

check: deps
	$(Q)$(MAKE) --no-print-directory WERROR=1 all
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 tests
	$(Q)$(MAKE) --no-print-directory fuzz
	$(Q)BUILD=$(BUILD)/asan FUZZ_BUILD=$(BUILD)/fuzz tests/run.sh

demo: deps all
	$(Q)tools/demo.sh $(BUILD)

bench: all $(BENCH_BINS)
	$(Q)bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

.PHONY: all tests fuzz deps check demo bench clean
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
