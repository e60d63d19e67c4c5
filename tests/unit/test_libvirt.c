/* SPDX-License-Identifier: MIT */
/*
 * test_libvirt.c: the pure half of source_libvirt.c (source_libvirt.h):
 * libvirt's typed parameters of a domain -> schemas and values. No
 * libvirtd: the parameters are made here, as virConnectGetAllDomainStats()
 * gives them ("vm.<stat>.sum", "vcpu.<N>.<stat>.cur", ...).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sources/source_libvirt.h"

#define A65 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B64 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void take(struct lv_domain *d, const char *field, unsigned long long v)
{
	virTypedParameter p = { .type = VIR_TYPED_PARAM_ULLONG, .value.ul = v };

	snprintf(p.field, sizeof(p.field), "%s", field);
	assert_string_equal(p.field, field);	/* fits in VIR_TYPED_PARAM_FIELD_LENGTH */
	assert_int_equal(libvirt_take_param(d, &p), 0);
}

static uint64_t value_of(const struct kvmstats_schema *s, const uint64_t *values,
			 const char *name)
{
	int i = schema_find(s, name);

	assert_true(i >= 0);
	return values[s->desc[i].index];
}

/*
 * Stat names libvirt passes on from a hostile QEMU: left out of the schema
 * and counted; the good ones kept, typed, with their values.
 */
static void test_hostile_names(void **state)
{
	struct lv_domain d = { 0 };
	struct statsfd_cache *cache;
	struct kvmstats_schema *s;
	uint64_t *values;
	(void)state;

	assert_int_equal(statsfd_cache_new(&cache), 0);
	take(&d, "vm.evil\nCHART x '' t u.sum", 1);
	take(&d, "vm.../../../../tmp/x.sum", 2);
	take(&d, "vm.q' \"x.cur", 3);
	take(&d, "vm. .sum", 4);
	take(&d, "vm." A65 ".sum", 5);
	take(&d, "vm.caf\xc3\xa9.sum", 6);
	take(&d, "vm.remote_tlb_flush.sum", 70);
	take(&d, "vm.pages_4k.cur", 71);
	take(&d, "vm.max_mmu_rmap_size.max", 72);
	take(&d, "vm." B64 ".sum", 73);
	take(&d, "vcpu.1.../x.cur", 8);
	take(&d, "vcpu.1.exits.sum", 80);
	take(&d, "vcpu.1.halt_wait_ns.sum", 81);
	/* Not KVM's: skipped before any schema. */
	take(&d, "vcpu.1.time", 9);
	take(&d, "vm..sum", 10);

	assert_int_equal(libvirt_target_schema(cache, &d.vm, &s, &values), 0);
	assert_int_equal(s->refused.count, 6);
	/* Sorted by name before the check: " " comes first. */
	assert_string_equal(s->refused.first, " ");
	assert_int_equal(s->num_desc, 4);
	assert_int_equal(s->num_values, 4);
	for (uint32_t i = 0; i < s->num_desc; i++) {
		assert_int_equal(decode_name_valid(s->desc[i].name), 1);
		assert_int_equal(s->desc[i].index, i);
	}
	assert_int_equal(value_of(s, values, "remote_tlb_flush"), 70);
	assert_int_equal(value_of(s, values, "pages_4k"), 71);
	assert_int_equal(value_of(s, values, "max_mmu_rmap_size"), 72);
	assert_int_equal(value_of(s, values, B64), 73);
	assert_int_equal(s->desc[schema_find(s, "pages_4k")].type, KVM_STATS_TYPE_INSTANT);
	assert_int_equal(s->desc[schema_find(s, "max_mmu_rmap_size")].type,
			 KVM_STATS_TYPE_PEAK);
	schema_unref(s);
	free(values);

	assert_true(d.nvcpus == 2);
	assert_int_equal(libvirt_target_schema(cache, &d.vcpu[0], &s, &values), -ENOENT);
	assert_int_equal(libvirt_target_schema(cache, &d.vcpu[1], &s, &values), 0);
	assert_int_equal(s->refused.count, 1);
	assert_string_equal(s->refused.first, "../x");
	assert_int_equal(s->num_desc, 2);
	assert_int_equal(value_of(s, values, "exits"), 80);
	assert_int_equal(value_of(s, values, "halt_wait_ns"), 81);
	assert_int_equal(s->desc[schema_find(s, "halt_wait_ns")].unit,
			 KVM_STATS_UNIT_SECONDS);
	schema_unref(s);
	free(values);

	libvirt_domain_done(&d);
	statsfd_cache_free(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
