# dirtytrackd: plain Makefile, pkg-config for every dependency.
# make            build into build/
# make check      install deps, build (-Werror in $(BUILD)/werror, ASan+UBSan -Werror in
#                 $(BUILD)/asan), run every test
# make demo       install deps, build, run the demo
# make bench      benchmarks; make fuzz: libFuzzer harnesses
# make deb        Debian packages (debian/) into $(BUILD)/deb, checked by lintian
# V=1 for verbose, SAN=1 for a sanitizer build, BUILD=dir for another tree.

BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := libsystemd libmicrohttpd json-c inih libcurl libvirt

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# common/dt_plant.h: DT_PLANT=name switches on a known bug (negative controls)
CFLAGS += -DDT_TEST_PLANTS
LDFLAGS += -fsanitize=address,undefined
WARN += -Werror
endif
ifeq ($(WERROR),1)
WARN += -Werror
endif

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) -fPIC -I. -Iproto -Istats -Iplan -Icommon -Icollectors -Idaemon -Iapi -Itests/unit \
	$(PKG_CFLAGS) -MMD -MP
LIBS := $(PKG_LIBS) -lroaring -lpthread -lm

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

COMMON_SRC := $(wildcard common/*.c)
PROTO_SRC := $(wildcard proto/*.c)
STATS_SRC := $(wildcard stats/*.c)
PLAN_SRC := $(wildcard plan/*.c)
COLLECT_SRC := $(wildcard collectors/*.c)
DAEMON_SRC := $(wildcard daemon/*.c) $(wildcard api/*.c)
CTL_SRC := $(wildcard tools/dirtytrackctl/*.c)
DTSIM_SRC := $(wildcard tools/dtsim/*.c)
DTVM_SRC := $(wildcard tools/dtvm/*.c)
DTQEMU_SRC := $(wildcard tools/dtqemu/*.c)
DTFUZZ_SRC := $(wildcard tools/dtfuzz/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)

LIBDT := $(BUILD)/libdirtytrack.a
LIBCORE := $(BUILD)/libdtcore.a
DTQEMU := $(BUILD)/libdtqemu.so
PROGS := $(BUILD)/dirtytrackd $(BUILD)/dirtytrackctl $(BUILD)/dtsim $(DTQEMU)
ifneq ($(DTVM_SRC),)
PROGS += $(BUILD)/dtvm
endif
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

all: $(PROGS)
tests: all $(UNIT_BINS) $(BUILD)/bench/bench_plan $(BUILD)/bench/bench_qemu_replay $(BUILD)/dtfuzz
include tools/dtguest/dtguest.mk

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# /openapi.json is docs/openapi.json, embedded with .incbin.
$(BUILD)/obj/api/openapi.o: docs/openapi.json

$(LIBDT): $(call obj,$(PROTO_SRC))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBCORE): $(call obj,$(COMMON_SRC) $(STATS_SRC) $(PLAN_SRC) $(COLLECT_SRC))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/dirtytrackd: $(call obj,app/main.c $(DAEMON_SRC)) $(LIBCORE) $(LIBDT)
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

# The stateful protocol fuzzer (tests/integration/fuzz-protocol.sh, make fuzz-long).
$(BUILD)/dtfuzz: $(call obj,$(DTFUZZ_SRC)) $(LIBCORE) $(LIBDT)
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

# libdtqemu.so, the preload library for stock QEMU: loaded into a process
# that is not built with sanitizers, so it never is either (SAN=1 keeps
# -Werror only). It carries its own copy of libdirtytrack, hidden, and
# exports nothing but the two functions it interposes.
DTQ_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARN) -O2 -g -fPIC -fvisibility=hidden -Iproto -MMD -MP
DTQ_OBJ := $(patsubst %.c,$(BUILD)/obj-dtqemu/%.o,$(DTQEMU_SRC) $(PROTO_SRC))
$(BUILD)/obj-dtqemu/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (dtqemu)")
	$(Q)$(CC) $(DTQ_CFLAGS) -c -o $@ $<
$(DTQEMU): $(DTQ_OBJ) tools/dtqemu/exports.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-z,defs -Wl,--version-script=tools/dtqemu/exports.map -o $@ $(DTQ_OBJ) -lpthread -ldl -lm

# --- man pages: one scdoc source each in docs/man, built when scdoc is there ---
SCDOC ?= $(shell command -v scdoc 2>/dev/null)
MAN_PAGES := $(patsubst docs/man/%.scd,$(BUILD)/man/%,$(wildcard docs/man/*.scd))
ifneq ($(SCDOC),)
all: $(MAN_PAGES)
endif
man: $(MAN_PAGES)
# Dated by the source's last commit (reproducible), else today.
$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  SCDOC   $<")
	$(Q)d=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct -- $< 2>/dev/null)}; \
		if [ -n "$$d" ]; then export SOURCE_DATE_EPOCH=$$d; fi; \
		$(or $(SCDOC),scdoc) <$< >$@.tmp && mv $@.tmp $@

# --- fuzzing (clang + libFuzzer) ---------------------------------------------
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	-I. -Iproto -Istats -Iplan -Icommon -Iapi -Idaemon $(PKG_CFLAGS)
# api/url.c: the REST request-target parser (pure code, no libmicrohttpd).
# daemon/config.c, config_keys.c: the configuration parser and key table (libinih; no daemon state).
# api/accept.c: /metrics' Accept negotiation.
# plan/engine.c: ?engine= names (pure, no planner).
$(BUILD)/fuzz/%: tests/fuzz/%.c $(PROTO_SRC) $(COMMON_SRC) api/url.c daemon/config.c daemon/config_keys.c api/accept.c \
		plan/engine.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS)
# fuzz_state: the state files' decoders; stats/ is pure code (no I/O).
$(BUILD)/fuzz/fuzz_state: tests/fuzz/fuzz_state.c $(COMMON_SRC) $(STATS_SRC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS)
fuzz: $(FUZZ_BINS)
# make fuzz-long [DURATION=seconds]: the protocol fuzzer for long (default 30 min)
# under the ASan+UBSan daemon, then tests/fuzz/http-abuse.sh where it exists.
DURATION ?= 1800
fuzz-long:
	$(MAKE) BUILD=$(BUILD)/asan SAN=1 tests
	FUZZ_DURATION=$(DURATION) BUILD=$(BUILD)/asan bash tests/integration/fuzz-protocol.sh
	if [ -f tests/fuzz/http-abuse.sh ]; then BUILD=$(BUILD)/asan bash tests/fuzz/http-abuse.sh $(DURATION); fi
.PHONY: fuzz-long

# --- install -------------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc]; each directory
# below may be overridden too. systemd and D-Bus directories come from
# pkg-config (systemd.pc, dbus-1.pc), with Debian's paths as fallback.
SYSCONFDIR ?= /etc
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
# The QEMU preload library: $(PREFIX)/lib/dirtytrackd on every architecture.
DTQEMUDIR ?= $(PREFIX)/lib/dirtytrackd
INCLUDEDIR ?= $(PREFIX)/include
DOCDIR ?= $(PREFIX)/share/doc/dirtytrackd
MANDIR ?= $(PREFIX)/share/man
# dirtytrackd.conf.5 -> $(MANDIR)/man5/dirtytrackd.conf.5
man_path = $(MANDIR)/man$(subst .,,$(suffix $(1)))/$(1)
pkgvar = $(or $(shell $(PKG_CONFIG) --variable=$(2) $(1) 2>/dev/null),$(3))
SYSTEMDUNITDIR ?= $(call pkgvar,systemd,systemdsystemunitdir,/lib/systemd/system)
SYSUSERSDIR ?= $(call pkgvar,systemd,sysusersdir,/usr/lib/sysusers.d)
TMPFILESDIR ?= $(call pkgvar,systemd,tmpfilesdir,/usr/lib/tmpfiles.d)
DBUS_SERVICESDIR ?= $(call pkgvar,dbus-1,system_bus_services_dir,/usr/share/dbus-1/system-services)
DBUS_POLICYDIR ?= $(call pkgvar,dbus-1,datadir,/usr/share)/dbus-1/system.d
DBUS_INTERFACESDIR ?= $(call pkgvar,dbus-1,interfaces_dir,/usr/share/dbus-1/interfaces)
DT_UNITS := dirtytrackd.service dirtytrackd.socket dirtytrackd-api.socket
DT_DBUS := org.dirtytrack.DirtyTrack1
DT_DOCS := README.md $(wildcard docs/*.md docs/*.json)
# The monitoring mixin: Grafana dashboards, Prometheus rules, runbook.
MONITORINGDIR ?= $(PREFIX)/share/dirtytrackd/monitoring
DT_MONITORING := $(wildcard monitoring/*.md monitoring/dashboards/*.json monitoring/rules/*.yml)
# The daemon searches $(SYSCONFDIR)/dirtytrackd first.
$(BUILD)/obj/daemon/config.o: ALL_CFLAGS += -DDT_SYSCONFDIR='"$(SYSCONFDIR)"'

install: $(BUILD)/dirtytrackd $(BUILD)/dirtytrackctl $(LIBDT) $(DTQEMU) $(if $(SCDOC),$(MAN_PAGES))
	install -D -m 0755 $(BUILD)/dirtytrackd $(DESTDIR)$(SBINDIR)/dirtytrackd
	install -D -m 0644 $(DTQEMU) $(DESTDIR)$(DTQEMUDIR)/libdtqemu.so
	install -D -m 0755 $(BUILD)/dirtytrackctl $(DESTDIR)$(BINDIR)/dirtytrackctl
	install -D -m 0644 $(LIBDT) $(DESTDIR)$(LIBDIR)/libdirtytrack.a
	install -D -m 0644 proto/libdirtytrack.h $(DESTDIR)$(INCLUDEDIR)/libdirtytrack.h
	install -D -m 0644 proto/dt_proto.h $(DESTDIR)$(INCLUDEDIR)/dt_proto.h
	@# The shipped configuration is a template: never overwrite the admin's.
	test -e $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/dirtytrackd.conf || \
		install -D -m 0644 config/dirtytrackd.conf $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/dirtytrackd.conf
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/dirtytrackd.conf.d
	set -e; for u in $(DT_UNITS); do \
		sed 's|@sbindir@|$(SBINDIR)|g; s|@docdir@|$(DOCDIR)|g' units/$$u >$(BUILD)/$$u.tmp; \
		install -D -m 0644 $(BUILD)/$$u.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; \
		rm -f $(BUILD)/$$u.tmp; done
	install -D -m 0644 units/dirtytrackd.sysusers $(DESTDIR)$(SYSUSERSDIR)/dirtytrackd.conf
	$(if $(wildcard units/dirtytrackd.tmpfiles),install -D -m 0644 units/dirtytrackd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/dirtytrackd.conf)
	@# The bus policy names user dirtytrackd: dbus-daemon drops a policy for
	@# a user it does not know, so on this system (no DESTDIR, root) the user
	@# is created before the policy lands; the bus still needs a reload after.
	$(if $(DESTDIR),,if [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
		systemd-sysusers $(SYSUSERSDIR)/dirtytrackd.conf; fi)
	$(if $(wildcard units/$(DT_DBUS).conf),install -D -m 0644 units/$(DT_DBUS).conf $(DESTDIR)$(DBUS_POLICYDIR)/$(DT_DBUS).conf)
	$(if $(wildcard units/$(DT_DBUS).service),install -D -m 0644 units/$(DT_DBUS).service $(DESTDIR)$(DBUS_SERVICESDIR)/$(DT_DBUS).service)
	$(if $(wildcard docs/$(DT_DBUS).xml),install -D -m 0644 docs/$(DT_DBUS).xml $(DESTDIR)$(DBUS_INTERFACESDIR)/$(DT_DBUS).xml)
	sed 's|@bindir@|$(BINDIR)|g; s|@sysconfdir@|$(SYSCONFDIR)|g' units/libvirt/qemu.d/50-dirtytrackd >$(BUILD)/50-dirtytrackd.tmp
	install -D -m 0755 $(BUILD)/50-dirtytrackd.tmp $(DESTDIR)$(SYSCONFDIR)/libvirt/hooks/qemu.d/50-dirtytrackd
	rm -f $(BUILD)/50-dirtytrackd.tmp
	test -e $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/hook.conf || \
		install -D -m 0644 config/hook.conf $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/hook.conf
	set -e; for d in $(DT_DOCS); do install -D -m 0644 $$d $(DESTDIR)$(DOCDIR)/$$(basename $$d); done
	set -e; for f in $(DT_MONITORING); do install -D -m 0644 $$f $(DESTDIR)$(MONITORINGDIR)/$${f#monitoring/}; done
	$(if $(SCDOC),,@echo "scdoc is missing: no man pages installed")
	$(foreach m,$(if $(SCDOC),$(notdir $(MAN_PAGES))),install -D -m 0644 $(BUILD)/man/$(m) $(DESTDIR)$(call man_path,$(m));)
	@echo "installed. Then, in this order (the bus policy needs the user, the bus a reload):"
	@echo "  systemd-sysusers dirtytrackd.conf && systemd-tmpfiles --create dirtytrackd.conf"
	@echo "  systemctl reload dbus && systemctl daemon-reload"
	@echo "  systemctl enable --now dirtytrackd.socket dirtytrackd-api.socket dirtytrackd.service"

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/dirtytrackd $(DESTDIR)$(BINDIR)/dirtytrackctl \
		$(DESTDIR)$(LIBDIR)/libdirtytrack.a $(DESTDIR)$(INCLUDEDIR)/libdirtytrack.h \
		$(DESTDIR)$(DTQEMUDIR)/libdtqemu.so \
		$(DESTDIR)$(INCLUDEDIR)/dt_proto.h \
		$(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(DT_UNITS)) \
		$(DESTDIR)$(SYSUSERSDIR)/dirtytrackd.conf $(DESTDIR)$(TMPFILESDIR)/dirtytrackd.conf \
		$(DESTDIR)$(DBUS_POLICYDIR)/$(DT_DBUS).conf $(DESTDIR)$(DBUS_SERVICESDIR)/$(DT_DBUS).service \
		$(DESTDIR)$(DBUS_INTERFACESDIR)/$(DT_DBUS).xml \
		$(DESTDIR)$(SYSCONFDIR)/libvirt/hooks/qemu.d/50-dirtytrackd \
		$(foreach m,$(notdir $(MAN_PAGES)),$(DESTDIR)$(call man_path,$(m)))
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(MONITORINGDIR)
	-rmdir $(DESTDIR)$(patsubst %/,%,$(dir $(MONITORINGDIR))) 2>/dev/null
	if cmp -s config/hook.conf $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/hook.conf; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/hook.conf; fi
	@# The configuration goes only if it is still the shipped one.
	if cmp -s config/dirtytrackd.conf $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/dirtytrackd.conf; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/dirtytrackd.conf; fi
	-rmdir $(DESTDIR)$(DTQEMUDIR) 2>/dev/null
	-rmdir $(DESTDIR)$(SYSCONFDIR)/dirtytrackd/dirtytrackd.conf.d $(DESTDIR)$(SYSCONFDIR)/dirtytrackd 2>/dev/null
	-rmdir $(DESTDIR)$(SYSCONFDIR)/libvirt/hooks/qemu.d $(DESTDIR)$(SYSCONFDIR)/libvirt/hooks $(DESTDIR)$(SYSCONFDIR)/libvirt 2>/dev/null

# --- dependencies, tests, demo, bench ----------------------------------------
# deps installs what the tests need too; make demo only what it needs.
# The build runs in a sub-make: this make's pkg-config flags were read
# before deps could install pkg-config and the -dev packages.
deps:
	$(Q)tools/deps.sh test

# The -Werror pass builds a tree of its own: objects of an earlier build
# without it would otherwise be up to date and never be compiled again.
check: deps
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/werror WERROR=1 all
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 tests
	$(Q)$(MAKE) --no-print-directory fuzz
	$(Q)BUILD=$(BUILD)/asan FUZZ_BUILD=$(BUILD)/fuzz tests/run.sh

demo:
	$(Q)tools/deps.sh demo
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh $(BUILD)

# make deb: the Debian packages (debian/) into $(BUILD)/deb, then lintian.
# The package build runs in a copy of the tree: it cleans its tree, and
# writes the .deb files next to it.
DEB_DIR := $(BUILD)/deb
deb:
	$(Q)command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null && command -v lintian >/dev/null || \
		{ echo "make deb needs dpkg-dev, debhelper and lintian (make deps installs them)"; exit 1; }
	$(Q)rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/dirtytrackd
	$(Q)if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z -co --exclude-standard | tar --null -T - -cf -; \
	else tar --exclude=./build --exclude='./$(BUILD)' -cf - .; fi | tar -C $(DEB_DIR)/dirtytrackd -xf -
	@# make's own variables (MAKEFLAGS, BUILD=...) must not reach the package's make.
	$(Q)cd $(DEB_DIR)/dirtytrackd && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; echo "dpkg-buildpackage failed: $(DEB_DIR)/build.log"; exit 1; }
	$(Q)lintian --fail-on error,warning --info $(DEB_DIR)/*.changes
	$(Q)ls $(DEB_DIR)/*.deb

bench: all $(BENCH_BINS)
	$(Q)bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

.PHONY: all tests man fuzz deps check demo bench deb clean install uninstall
-include $(shell find $(BUILD)/obj $(BUILD)/obj-dtqemu -name '*.d' 2>/dev/null)
