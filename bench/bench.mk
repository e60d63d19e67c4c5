# SPDX-License-Identifier: MIT
# bench.mk: `make bench`, included by the top Makefile (include bench/bench.mk).
#
# Uses the Makefile's O, LIB, LIBS_CORE, ALL_CFLAGS, ALL_LDFLAGS, quiet, Q.
# Builds the in-process driver and a copy of the collectd plugin whose read
# callback is timed (bench/collectd_timer.c), then runs bench/run, which
# prints one markdown report on stdout. Needs root, /dev/kvm, QEMU and
# collectd (Debian 12: qemu-system-x86, collectd-core); takes ~10 minutes.
#
#   make bench                      every size the machine allows
#   make bench BENCH_ARGS="--sizes 1x1,10x4 --plugin-seconds 20"

BENCH_BIN := $(O)/bench/kvmstats_bench
BENCH_OBJS := $(patsubst %.c,$(O)/obj/%.o,bench/kvmstats_bench.c bench/bench_util.c bench/bench_qmp.c)
BENCH_COLLECTD := $(O)/bench/collectd/kvm_stats.so
BENCH_LIBVIRT := $(O)/bench/libvirt_bench
BENCH_NULL_WRITE := $(O)/bench/collectd/bench_null_write.so
BENCH_ARGS ?=
# The same flags as the collectd plugin proper (collectd 5.12 headers).
BENCH_COLLECTD_CFLAGS := -DHAVE_CONFIG_H -I/usr/include/collectd \
	-I/usr/include/collectd/core -I/usr/include/collectd/core/daemon

$(BENCH_LIBVIRT): $(O)/obj/bench/libvirt_bench.o $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LIBS_CORE)

$(BENCH_BIN): $(BENCH_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LIBS_CORE)

# collectd/kvm_stats.c unchanged; only its registration and its dispatch
# go through the timer.
$(O)/obj/bench/collectd/kvm_stats.o: collectd/kvm_stats.c
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) $(ALL_CFLAGS) $(BENCH_COLLECTD_CFLAGS) \
		-Dplugin_register_complex_read=bench_register_complex_read \
		-Dplugin_dispatch_values=bench_dispatch_values -c $< -o $@

$(O)/obj/bench/collectd_timer.o: bench/collectd_timer.c
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) $(ALL_CFLAGS) $(BENCH_COLLECTD_CFLAGS) -c $< -o $@

$(BENCH_COLLECTD): $(O)/obj/bench/collectd/kvm_stats.o $(O)/obj/collectd/ident.o \
		   $(O)/obj/bench/collectd_timer.o $(LIB)
	@mkdir -p $(@D)
	$(quiet) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -shared $^ -o $@ $(LIBS_CORE)

# A writer that drops every value (collectd without one logs per value).
$(BENCH_NULL_WRITE): bench/collectd_null_write.c
	@mkdir -p $(@D)
	$(quiet) CC $@
	$(Q)$(CC) $(ALL_CFLAGS) $(BENCH_COLLECTD_CFLAGS) -shared $< -o $@

bench: all $(BENCH_BIN) $(BENCH_COLLECTD) $(BENCH_NULL_WRITE) $(BENCH_LIBVIRT)
	$(Q)KVMSTATS_BUILD=$(abspath $(O)) /usr/bin/python3 bench/run $(BENCH_ARGS)
	$(Q)KVMSTATS_BUILD=$(abspath $(O)) /usr/bin/python3 bench/libvirt_run $(BENCH_LIBVIRT_ARGS)

.PHONY: bench
