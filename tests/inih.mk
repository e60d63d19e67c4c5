# SPDX-License-Identifier: MIT
# tests/inih.mk: the Netdata plugin's config unit test built once more with
# each libinih that scripts/fetch-inih unpacked under $(INIH_CACHE)/<suite>/
# (Debian 13's and sid's; the plain build has the installed one), their
# header and their libinih.so found through an rpath. make test builds
# them; tests/test_inih_versions.py runs each and says which libinih it
# loaded. Included by the Makefile; uses its O, CC, LIB and flags.

INIH_CACHE ?= $(or $(KVMSTATS_CACHE),/var/cache/kvm_stats)/inih
INIH_SUITES := $(patsubst $(INIH_CACHE)/%/.deb-version,%,$(wildcard $(INIH_CACHE)/*/.deb-version))
INIH_TESTS := $(INIH_SUITES:%=$(O)/inih/%/test_netdata_config)
INIH_TEST_SRCS := tests/unit/test_netdata_config.c tests/unit/tree.c netdata/config.c
# The directory of a suite's libinih.so.
inih_libdir = $(patsubst %/,%,$(dir $(firstword $(wildcard $(INIH_CACHE)/$(1)/usr/lib/*/libinih.so))))

# One compiler run, no -MMD: its prerequisites are listed here.
$(O)/inih/%/test_netdata_config: $(INIH_TEST_SRCS) tests/unit/tree.h netdata/config.h $(LIB) \
		$(INIH_CACHE)/%/.deb-version
	@mkdir -p $(@D)
	$(quiet) LINK "$@ (libinih $$(cat $(INIH_CACHE)/$*/.deb-version))"
	$(Q)$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -I$(INIH_CACHE)/$*/usr/include \
		$(INIH_TEST_SRCS) $(ALL_LDFLAGS) $(LIB) -o $@ \
		-L$(call inih_libdir,$*) -Wl,-rpath,$(call inih_libdir,$*) -linih $(LIBS_CORE) -lcmocka

inih-tests: $(INIH_TESTS)

.PHONY: inih-tests
