# SPDX-License-Identifier: MIT
# kvm_stats: KVM binary statistics for kvmstat, collectd and Netdata.
#
#   make                      build everything under $(O)
#   make test                 install test dependencies if missing, run every test
#   make SANITIZE=address,undefined test
#   make install DESTDIR=... PREFIX=...
#   make deb                  Debian packages into $(DEB_DIR), lintian-checked
#   make V=1                  show the commands
#   make WERROR=0             do not turn warnings into errors

ifneq ($(SANITIZE),)
O ?= build/sanitize
else
O ?= build
endif
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/kvm-stats
# What the installed configs and man pages point to.
INSTALL_DOCS := docs/netdata.md docs/alerts.md docs/metrics.md docs/sources.md \
		docs/security.md docs/prometheus.md
CC ?= cc
WERROR ?= 1

WARNINGS := -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes \
	    -Wstrict-prototypes -Wpointer-arith -Wundef -Wvla
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

BASE_CFLAGS := -std=gnu11 -O2 -g -D_GNU_SOURCE -fPIC -MMD -MP -Icommon $(WARNINGS)
BASE_LDFLAGS :=
ifneq ($(SANITIZE),)
BASE_CFLAGS += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
BASE_LDFLAGS += -fsanitize=$(SANITIZE)
endif
# User CFLAGS and LDFLAGS come last so they can override ours.
ALL_CFLAGS = $(BASE_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(BASE_LDFLAGS) $(LDFLAGS)

ifeq ($(V),1)
Q :=
quiet = @true
else
Q := @
quiet = @printf '  %-6s %s\n'
endif

COMMON_SRCS := $(wildcard common/*.c common/sources/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(O)/obj/%.o)
LIB := $(O)/libkvmstats.a
LIBS_CORE := -lcap -ljansson -pthread

KVMSTAT := $(O)/kvmstat
NETDATA_PLUGIN := $(O)/kvm_stats.plugin
COLLECTD_PLUGIN := $(O)/kvm_stats.so
METRICS_GEN := $(O)/docs/metrics_gen
# collectd 5.12 (Debian collectd-dev). No -z defs: the daemon provides the
# plugin_* symbols when it loads the plugin.
COLLECTD_CFLAGS := -DHAVE_CONFIG_H -I/usr/include/collectd -I/usr/include/collectd/core \
		   -I/usr/include/collectd/core/daemon
NETDATA_OBJS := $(patsubst %.c,$(O)/obj/%.o,$(wildcard netdata/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:%.c=$(O)/%)
UNIT_HELPERS := $(O)/obj/tests/unit/tree.o
FIXTURE_SRCS := $(wildcard tests/fixtures/*.c)
FIXTURE_BINS := $(FIXTURE_SRCS:%.c=$(O)/%)
SHIMS := $(O)/tests/fixtures/no_binary_stats.so $(O)/tests/fixtures/lose_vcpu_fds.so \
	 $(O)/tests/fixtures/heap_in_use.so $(O)/tests/fixtures/failalloc.so

all: $(LIB) $(KVMSTAT) $(NETDATA_PLUGIN) $(COLLECTD_PLUGIN) $(METRICS_GEN) $(UNIT_BINS) $(FIXTURE_BINS) $(SHIMS)

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(COMMON_OBJS)
	$(quiet) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

# kvmstat --top draws with ncurses (Debian libncurses-dev), wide-character build.
CURSES_CFLAGS := $(shell pkg-config --cflags ncursesw 2>/dev/null)
CURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)
KVMSTAT_OBJS := $(patsubst %.c,$(O)/obj/%.o,$(wildcard cli/*.c))
$(O)/obj/cli/top.o $(O)/obj/cli/top_draw.o: ALL_CFLAGS += $(CURSES_CFLAGS)

$(KVMSTAT): $(KVMSTAT_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LIBS_CORE) -ljansson $(CURSES_LIBS) -lm

$(NETDATA_PLUGIN): $(NETDATA_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LIBS_CORE) -linih

$(O)/obj/collectd/%.o: collectd/%.c
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) $(ALL_CFLAGS) $(COLLECTD_CFLAGS) -c $< -o $@

$(COLLECTD_PLUGIN): $(O)/obj/collectd/kvm_stats.o $(O)/obj/collectd/ident.o $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -shared $^ -o $@ $(LIBS_CORE)

$(O)/tests/unit/%: $(O)/obj/tests/unit/%.o $(UNIT_HELPERS) $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(LIB) -o $@ $(LIBS_CORE) $(UNIT_LIBS) -lcmocka

# The Netdata plugin's config module is tested on its own, with inih.
$(O)/tests/unit/test_netdata_config: $(O)/obj/netdata/config.o
$(O)/tests/unit/test_netdata_config: UNIT_LIBS := -linih
# The sinks' escaping: Netdata's chart ids and fields, collectd's identifiers.
$(O)/tests/unit/test_sinks: $(O)/obj/netdata/charts.o $(O)/obj/collectd/ident.o

$(O)/tests/fixtures/%: $(O)/obj/tests/fixtures/%.o $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -pthread $^ -o $@ $(LIBS_CORE)

# LD_PRELOAD shims for tests; never sanitized: they load into any process.
$(O)/tests/fixtures/%.so: tests/fixtures/shim/%.c
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) -std=gnu11 -O2 -D_GNU_SOURCE -fPIC -shared $(WARNINGS) $(CFLAGS) $< -o $@ -ldl

# Test and install targets provision their own Debian packages (quick when
# they are present); plain "make" never touches the system.
deps-build:
	$(Q)scripts/deps build

deps-deb:
	$(Q)scripts/deps deb

deps-test:
	$(Q)scripts/deps test

test: deps-test
	$(Q)$(MAKE) --no-print-directory all inih-tests
	$(Q)KVMSTATS_BUILD=$(abspath $(O)) tests/run

# A PNG of Netdata's dashboard with the plugin's charts (SHOT=path).
SHOT ?= $(O)/netdata-dashboard.png
screenshot: all
	$(Q)KVMSTATS_BUILD=$(abspath $(O)) tests/integration/dashboard_screenshot.py $(SHOT)

# A PNG of the dashboard with a KVM alert raised (ALERT_SHOT=path; also
# ...-badge.png, the alert's own badge).
ALERT_SHOT ?= $(O)/netdata-alert.png
screenshot-alert: all
	$(Q)KVMSTATS_BUILD=$(abspath $(O)) tests/integration/alert_screenshot.py $(ALERT_SHOT)

# docs/metrics.md, every stat and what each front end makes of it, from the
# golden blobs and the code (docs/metrics_gen.c); test_docs.py checks it.
$(METRICS_GEN): $(O)/obj/docs/metrics_gen.o $(O)/obj/netdata/charts.o $(O)/obj/netdata/config.o \
		$(O)/obj/collectd/ident.o $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LIBS_CORE) -linih

docs: $(METRICS_GEN)
	$(Q)$(METRICS_GEN) tests/fixtures/golden/vm.bin tests/fixtures/golden/vcpu.bin > docs/metrics.md.tmp
	$(Q)mv docs/metrics.md.tmp docs/metrics.md

# Regenerates tests/fixtures/golden/ from this kernel's real stats fds.
golden: $(O)/tests/fixtures/capture_stats
	$(Q)tests/fixtures/capture-golden $(O)/tests/fixtures/capture_stats

# Netdata reads plugins from the directory it was built with (Debian's
# package: /usr/lib/netdata/plugins.d, upstream: /usr/libexec/netdata/...).
# Left empty, scripts/install-netdata asks the installed Netdata where that
# is (dpkg -S apps.plugin, then its own apps.plugin on disk, then netdata
# -W buildinfo) and says why; NETDATA_ROOT looks under another root.
NETDATA_PLUGINS_DIR ?=
NETDATA_STOCK_CONFIG_DIR ?=
NETDATA_ROOT ?=
PLUGIN_CAPS := cap_sys_ptrace,cap_dac_read_search+ep
# Debian's collectd loads plugins from here and includes collectd.conf.d/*.conf.
COLLECTD_PLUGIN_DIR ?= /usr/lib/collectd
COLLECTD_CONF_DIR ?= /etc/collectd/collectd.conf.d

# NO_DEPS=1: the packages the build needs are known to be there.
install: $(if $(NO_DEPS),,deps-build)
	$(Q)$(MAKE) --no-print-directory $(KVMSTAT) $(NETDATA_PLUGIN) $(COLLECTD_PLUGIN)
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(KVMSTAT) $(DESTDIR)$(BINDIR)/kvmstat
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DOCDIR)
	install -m 0644 debian/kvmstat.1 $(DESTDIR)$(MANDIR)/man1/kvmstat.1
	install -m 0644 docs/collectd-kvm_stats.5 $(DESTDIR)$(MANDIR)/man5/collectd-kvm_stats.5
	install -m 0644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
	$(Q)$(MAKE) --no-print-directory install-netdata install-collectd

# What install put in place; files a Debian package owns are left alone.
uninstall: uninstall-netdata uninstall-collectd
	rm -f $(DESTDIR)$(BINDIR)/kvmstat $(DESTDIR)$(MANDIR)/man1/kvmstat.1 \
		$(DESTDIR)$(MANDIR)/man5/collectd-kvm_stats.5
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(INSTALL_DOCS)))
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

uninstall-netdata:
	$(Q)DESTDIR='$(DESTDIR)' scripts/install-netdata --uninstall

uninstall-collectd:
	$(Q)for f in $(COLLECTD_PLUGIN_DIR)/kvm_stats.so $(COLLECTD_CONF_DIR)/kvm_stats.conf; do \
		if [ -z '$(DESTDIR)' ] && dpkg-query -S $$f >/dev/null 2>&1; then \
			echo "uninstall: kept $$f: a package owns it"; \
		else rm -fv $(DESTDIR)$$f; fi; done

install-collectd:
	install -d $(DESTDIR)$(COLLECTD_PLUGIN_DIR) $(DESTDIR)$(COLLECTD_CONF_DIR)
	install -m 0644 $(COLLECTD_PLUGIN) $(DESTDIR)$(COLLECTD_PLUGIN_DIR)/kvm_stats.so
	install -m 0644 conf/collectd/kvm_stats.conf $(DESTDIR)$(COLLECTD_CONF_DIR)/kvm_stats.conf

# root:netdata 0750 with file capabilities, as Debian ships apps.plugin.
# Under DESTDIR (packaging) ownership and capabilities are the package's job.
install-netdata:
	$(Q)NETDATA_PLUGINS_DIR='$(NETDATA_PLUGINS_DIR)' \
		NETDATA_STOCK_CONFIG_DIR='$(NETDATA_STOCK_CONFIG_DIR)' \
		NETDATA_ROOT='$(NETDATA_ROOT)' DESTDIR='$(DESTDIR)' PLUGIN_CAPS='$(PLUGIN_CAPS)' \
		scripts/install-netdata $(NETDATA_PLUGIN) conf/netdata/kvm_stats.conf

# The Debian packages (debian/), built by dpkg-buildpackage in a copy of the
# tree in a temporary directory, then checked by lintian.
DEB_DIR ?= $(O)/deb
deb: deps-deb
	$(Q)scripts/build-deb $(DEB_DIR)

clean:
	rm -rf $(O)

# Benchmarks (make bench), fuzzing (make fuzz) and the churn soak (make soak)
# keep their rules apart.
-include bench/bench.mk
-include fuzz/fuzz.mk
-include soak/soak.mk
# The config unit test with each libinih Debian ships (make inih-tests).
-include tests/inih.mk

.PHONY: all test docs golden screenshot screenshot-alert install install-netdata install-collectd uninstall uninstall-netdata uninstall-collectd deb clean deps-build deps-deb deps-test
.DELETE_ON_ERROR:

-include $(wildcard $(O)/obj/*/*.d $(O)/obj/*/*/*.d $(O)/obj/*/*/*/*.d)
