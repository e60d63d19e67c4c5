# SPDX-License-Identifier: MIT
# fuzz/fuzz.mk: libFuzzer targets for the parsers of common/ (fuzz/README.md).
# Included by the Makefile after its "all" rule; uses its O, WARNINGS,
# CFLAGS, quiet and Q. Needs Debian's clang and libclang-rt-14-dev.
#
#   make fuzz                          replay fuzz/regressions/, then fuzz each
#                                      target for FUZZ_SECONDS; fails on a finding
#   make fuzz FUZZ_DECODE_RUNS=10000000  the decoder for that many executions
#   make fuzz-decode, fuzz-qmp, fuzz-parsers, fuzz-netdata_config, fuzz-sched
#                                      one target only
#   make fuzz-build                    build the targets and seeds only
#                                      (fuzz/README.md, "Open findings")
#
# The common/ (and netdata/) sources each target needs are compiled again
# here, with clang and the fuzzer's instrumentation, never taken from $(LIB).

# Read once, whether the Makefile includes it, "make -f Makefile -f
# fuzz/fuzz.mk" names it, or both.
ifndef FUZZ_MK_INCLUDED
FUZZ_MK_INCLUDED := 1

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
# Empty: the decoder runs FUZZ_SECONDS too.
FUZZ_DECODE_RUNS ?=
# libFuzzer's per-input time (s) and memory (MiB) limits, and anything else.
FUZZ_TIMEOUT ?= 10
FUZZ_RSS_MB ?= 2048
FUZZ_ARGS ?=

# FUZZ_INIH=DIR: the netdata_config target with another libinih than the
# installed one (fuzz/README.md): DIR is a .deb unpacked by
# scripts/fetch-inih ($KVMSTATS_CACHE/inih/<suite>: its ini.h and
# libinih.a, as Debian builds them), or a source tree holding ini.c and
# ini.h (then compiled into the target with the sanitizers, so a read
# outside inih's own buffers is caught too). Built under $(O)/fuzz-inih-<DIR's name>/.
FUZZ_INIH ?=
ifneq ($(FUZZ_INIH),)
FUZZ_INIH_DIR := $(patsubst %/,%,$(FUZZ_INIH))
FUZZ_O := $(O)/fuzz-inih-$(notdir $(FUZZ_INIH_DIR))
ifneq ($(wildcard $(FUZZ_INIH_DIR)/ini.c),)
FUZZ_INIH_CFLAGS := -I$(FUZZ_INIH_DIR)
FUZZ_INIH_OBJS := $(FUZZ_O)/obj/inih/ini.o
FUZZ_INIH_LIBS :=
else
FUZZ_INIH_CFLAGS := -I$(FUZZ_INIH_DIR)/usr/include
FUZZ_INIH_OBJS :=
FUZZ_INIH_LIBS := $(firstword $(wildcard $(FUZZ_INIH_DIR)/usr/lib/*/libinih.a))
endif
else
FUZZ_O := $(O)/fuzz
FUZZ_INIH_LIBS := -linih
endif
FUZZ_TARGETS := decode qmp parsers netdata_config sched
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_O)/fuzz_%)
FUZZ_SANITIZE := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -MMD -MP \
	      -Icommon $(FUZZ_INIH_CFLAGS) $(WARNINGS) $(FUZZ_SANITIZE) $(CFLAGS)

# Each target and the common/ sources it exercises.
fuzz_objs = $(patsubst %.c,$(FUZZ_O)/obj/%.o,fuzz/fuzz_$(1).c $(2))
$(FUZZ_O)/fuzz_decode: $(call fuzz_objs,decode,common/decode.c)
$(FUZZ_O)/fuzz_qmp: $(call fuzz_objs,qmp,common/qmp_parse.c common/decode.c)
$(FUZZ_O)/fuzz_parsers: $(call fuzz_objs,parsers,common/filter.c common/cmdline.c common/uevent.c common/util.c)
$(FUZZ_O)/fuzz_sched: $(call fuzz_objs,sched,common/sources/sched.c common/util.c)
$(FUZZ_O)/fuzz_netdata_config: $(call fuzz_objs,netdata_config,netdata/config.c \
		common/filter.c common/catalog.c) $(FUZZ_INIH_OBJS)
FUZZ_LIBS_qmp := -ljansson
FUZZ_LIBS_netdata_config := $(FUZZ_INIH_LIBS)

# inih's own source (FUZZ_INIH=a source tree), with its own defaults as
# Debian's build keeps them, and none of our warnings.
$(FUZZ_O)/obj/inih/ini.o: $(FUZZ_INIH_DIR)/ini.c
	@mkdir -p $(@D)
	$(quiet) FUZZCC $@
	$(Q)$(FUZZ_CC) -g -O1 -fno-omit-frame-pointer $(FUZZ_SANITIZE) -c $< -o $@

$(FUZZ_O)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(quiet) FUZZCC $@
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_O)/fuzz_%:
	$(quiet) FUZZLD $@
	$(Q)$(FUZZ_CC) $(FUZZ_SANITIZE) $^ -o $@ $(FUZZ_LIBS_$*)

# Seed inputs from tests/fixtures/, in each target's input format.
FUZZ_SEEDS := $(FUZZ_O)/seeds.stamp
$(FUZZ_SEEDS): fuzz/make-seeds $(wildcard tests/fixtures/golden/*.bin \
		tests/fixtures/qmp/*.json tests/fixtures/cmdlines/* \
		tests/fixtures/cmdlines/pve/qemu-server/*) conf/netdata/kvm_stats.conf
	@mkdir -p $(@D)
	$(quiet) SEEDS "$(FUZZ_O)/seeds-*"
	$(Q)fuzz/make-seeds $(FUZZ_O) tests/fixtures conf
	$(Q)touch $@

# libFuzzer arguments of target $(1).
fuzz_limit = $(if $(and $(filter decode,$(1)),$(FUZZ_DECODE_RUNS)),-runs=$(FUZZ_DECODE_RUNS),-max_total_time=$(FUZZ_SECONDS))
fuzz_args = $(call fuzz_limit,$(1)) -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=$(FUZZ_RSS_MB) \
	    $(if $(wildcard fuzz/$(1).dict),-dict=fuzz/$(1).dict) $(FUZZ_ARGS)
fuzz_run = fuzz/run-target $(FUZZ_O)/fuzz_$(1) $(1) $(FUZZ_O)/seeds-$(1) \
	   $(FUZZ_O)/corpus-$(1) $(FUZZ_O)/artifacts fuzz/regressions $(call fuzz_args,$(1))

fuzz-build: $(FUZZ_BINS) $(FUZZ_SEEDS)

# Every target runs, even after one found something; then the status.
fuzz: fuzz-build
	$(Q)status=0; \
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t)) || status=1;) \
	exit $$status

$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: $(FUZZ_O)/fuzz_% $(FUZZ_SEEDS)
	$(Q)$(call fuzz_run,$*)

.PHONY: fuzz fuzz-build $(FUZZ_TARGETS:%=fuzz-%)

-include $(wildcard $(FUZZ_O)/obj/*/*.d)

endif
