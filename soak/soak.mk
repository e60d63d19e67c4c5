# SPDX-License-Identifier: MIT
# soak/soak.mk: `make soak`, included by the top Makefile (-include soak/soak.mk).
#
# Uses the Makefile's O, Q and its deps-test and all targets. soak/run
# creates and destroys test VMs for SOAK_MINUTES while the Netdata plugin,
# collectd with kvm_stats.so and kvmstat watch them, then checks that they
# let every VM go, kept their fds and did not grow their malloc bytes in
# use from cycle to cycle (soak/README.md). Needs root and /dev/kvm.
#
#   make soak                                  5 minutes
#   make soak SOAK_MINUTES=1 VALGRIND=1        the same under valgrind memcheck
#   make SANITIZE=address,undefined soak       the same under ASan/UBSan/LSan

SOAK_MINUTES ?= 5
SOAK_ARGS ?=
ifeq ($(VALGRIND),1)
SOAK_ARGS += --valgrind
endif

# Like "test": the packages first, then the build that needs them.
soak: deps-test
	$(Q)$(MAKE) --no-print-directory all
	$(Q)KVMSTATS_BUILD=$(abspath $(O)) soak/run --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

.PHONY: soak
