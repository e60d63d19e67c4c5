/* SPDX-License-Identifier: MIT */
/*
 * test_catalog.c: unit tests of common/catalog.c. Every stat name of
 * struct kvm_vcpu_stat and kvm_vm_stat (Linux 5.11 to 6.8, x86, arm64,
 * ppc64el, as the project's seed documents 000 and 001 list them), the
 * generic stats and a few of other architectures must land in the intended
 * group; the kvmstat(1) columns must resolve on the name sets of real
 * kernels.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "catalog.h"
#include "kvmstats.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct expect {
	const char *name;
	enum catalog_group group;
};

#define EXITS		CATALOG_EXITS
#define PF		CATALOG_PAGE_FAULTS
#define MMU		CATALOG_MMU
#define TLB		CATALOG_TLB
#define HALT		CATALOG_HALT
#define IRQ		CATALOG_INTERRUPTS
#define EMUL		CATALOG_EMULATION
#define MEM		CATALOG_MEMORY
#define NESTED		CATALOG_NESTED
#define PREEMPT		CATALOG_PREEMPTION
#define OTHER		CATALOG_OTHER

/* struct kvm_vcpu_stat, x86, every Ubuntu kernel from 5.11 to 6.8. */
static const struct expect vcpu_x86[] = {
	{ "pf_taken", PF },
	{ "pf_fixed", PF },
	{ "pf_emulate", PF },
	{ "pf_spurious", PF },
	{ "pf_fast", PF },
	{ "pf_mmio_spte_created", PF },
	{ "pf_guest", PF },
	{ "tlb_flush", TLB },
	{ "invlpg", TLB },
	{ "exits", EXITS },
	{ "io_exits", EXITS },
	{ "mmio_exits", EXITS },
	{ "signal_exits", EXITS },
	{ "irq_window_exits", EXITS },
	{ "nmi_window_exits", EXITS },
	{ "l1d_flush", OTHER },
	{ "halt_exits", EXITS },
	{ "halt_successful_poll", HALT },
	{ "halt_attempted_poll", HALT },
	{ "halt_poll_invalid", HALT },
	{ "halt_wakeup", HALT },
	{ "request_irq_exits", EXITS },
	{ "irq_exits", EXITS },
	{ "host_state_reload", OTHER },
	{ "fpu_reload", OTHER },
	{ "insn_emulation", EMUL },
	{ "insn_emulation_fail", EMUL },
	{ "hypercalls", EXITS },
	{ "irq_injections", IRQ },
	{ "nmi_injections", IRQ },
	{ "req_event", IRQ },
	{ "halt_poll_success_ns", HALT },
	{ "halt_poll_fail_ns", HALT },
	{ "nested_run", NESTED },
	{ "directed_yield_attempted", PREEMPT },
	{ "directed_yield_successful", PREEMPT },
	{ "guest_mode", NESTED },
	{ "preemption_reported", PREEMPT },
	{ "preemption_other", PREEMPT },
	{ "notify_window_exits", EXITS },
};

/* struct kvm_vcpu_stat, arm64. */
static const struct expect vcpu_arm64[] = {
	{ "halt_successful_poll", HALT },
	{ "halt_attempted_poll", HALT },
	{ "halt_poll_invalid", HALT },
	{ "halt_wakeup", HALT },
	{ "hvc_exit_stat", EXITS },
	{ "wfe_exit_stat", EXITS },
	{ "wfi_exit_stat", EXITS },
	{ "mmio_exit_user", EXITS },
	{ "mmio_exit_kernel", EXITS },
	{ "exits", EXITS },
};

/* struct kvm_vcpu_stat, ppc64el. */
static const struct expect vcpu_ppc64[] = {
	{ "sum_exits", EXITS },
	{ "mmio_exits", EXITS },
	{ "signal_exits", EXITS },
	{ "light_exits", EXITS },
	{ "itlb_real_miss_exits", EXITS },
	{ "itlb_virt_miss_exits", EXITS },
	{ "dtlb_real_miss_exits", EXITS },
	{ "dtlb_virt_miss_exits", EXITS },
	{ "syscall_exits", EXITS },
	{ "isi_exits", EXITS },
	{ "dsi_exits", EXITS },
	{ "emulated_inst_exits", EXITS },
	{ "dec_exits", EXITS },
	{ "ext_intr_exits", EXITS },
	{ "halt_poll_success_ns", HALT },
	{ "halt_poll_fail_ns", HALT },
	{ "halt_wait_ns", HALT },
	{ "halt_successful_poll", HALT },
	{ "halt_attempted_poll", HALT },
	{ "halt_successful_wait", HALT },
	{ "halt_poll_invalid", HALT },
	{ "halt_wakeup", HALT },
	{ "dbell_exits", EXITS },
	{ "gdbell_exits", EXITS },
	{ "ld", EMUL },
	{ "st", EMUL },
	{ "pf_storage", PF },
	{ "pf_instruc", PF },
	{ "sp_storage", PF },
	{ "sp_instruc", PF },
	{ "queue_intr", IRQ },
	{ "ld_slow", EMUL },
	{ "st_slow", EMUL },
	{ "pthru_all", OTHER },
	{ "pthru_host", OTHER },
	{ "pthru_bad_aff", OTHER },
};

/* struct kvm_vm_stat, x86 5.11 to 6.8, arm64 and ppc64el. */
static const struct expect vm_all[] = {
	{ "mmu_shadow_zapped", MMU },
	{ "mmu_pte_write", MMU },
	{ "mmu_pte_updated", MMU },
	{ "mmu_pde_zapped", MMU },
	{ "mmu_flooded", MMU },
	{ "mmu_recycled", MMU },
	{ "mmu_cache_miss", MMU },
	{ "mmu_unsync", MMU },
	{ "remote_tlb_flush", TLB },
	{ "lpages", MMU },
	{ "nx_lpage_splits", MMU },
	{ "max_mmu_page_hash_collisions", MMU },
	{ "pages_4k", MEM },
	{ "pages_2m", MEM },
	{ "pages_1g", MEM },
	{ "pages", MEM },
	{ "max_mmu_rmap_size", MMU },
	{ "num_2M_pages", MEM },
	{ "num_1G_pages", MEM },
};

/*
 * Stats the binary interface adds to every architecture (struct
 * kvm_vcpu_stat_generic, kvm_vm_stat_generic) and newer x86 ones.
 */
static const struct expect generic_and_newer[] = {
	{ "halt_wait_ns", HALT },
	{ "halt_poll_success_hist", HALT },
	{ "halt_poll_fail_hist", HALT },
	{ "halt_wait_hist", HALT },
	{ "blocking", HALT },
	{ "remote_tlb_flush_requests", TLB },
	{ "pf_parked", PF },
	{ "pf_park_timeouts", PF },
	{ "mmu_kicks_spared", MMU },
};

/* Exit and interrupt names of other architectures and future kernels. */
static const struct expect elsewhere[] = {
	{ "exit_userspace", EXITS },		/* s390 */
	{ "exit_external_interrupt", EXITS },	/* s390: exit before irq */
	{ "deliver_io", IRQ },			/* s390 */
	{ "inject_ckc", IRQ },			/* s390 */
	{ "ecall_exit_stat", EXITS },		/* riscv */
	{ "csr_exit_user", EXITS },		/* riscv */
	{ "hypercall_exits", EXITS },		/* loongarch */
	{ "idle_exits", EXITS },		/* loongarch */
	{ "nested_tlb_flush", TLB },		/* hypothetical */
	{ "guest_page_faults", PF },		/* hypothetical */
	{ "shadow_pages", MEM },		/* hypothetical */
	{ "posted_intr_wakeups", IRQ },		/* hypothetical */
};

/* Names no rule knows. */
static const struct expect unknown[] = {
	{ "unknown_future_stat", OTHER },
	{ "", OTHER },
	{ "exit", OTHER },
	{ "l1d_flush", OTHER },
	{ "host_state_reload", OTHER },
	{ "fpu_reload", OTHER },
	{ "EXITS", OTHER },
	{ "\xff\xfe", OTHER },
};

static void check_groups(const struct expect *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum catalog_group got = catalog_group_of(e[i].name);

		if (got != e[i].group)
			fail_msg("%s: got %s, want %s", e[i].name,
				 catalog_group_name(got),
				 catalog_group_name(e[i].group));
	}
}

static void test_groups_vcpu_x86(void **state)
{
	(void)state;
	check_groups(vcpu_x86, ARRAY_SIZE(vcpu_x86));
}

static void test_groups_vcpu_arm64(void **state)
{
	(void)state;
	check_groups(vcpu_arm64, ARRAY_SIZE(vcpu_arm64));
}

static void test_groups_vcpu_ppc64(void **state)
{
	(void)state;
	check_groups(vcpu_ppc64, ARRAY_SIZE(vcpu_ppc64));
}

static void test_groups_vm(void **state)
{
	(void)state;
	check_groups(vm_all, ARRAY_SIZE(vm_all));
}

static void test_groups_generic_and_newer(void **state)
{
	(void)state;
	check_groups(generic_and_newer, ARRAY_SIZE(generic_and_newer));
}

static void test_groups_elsewhere(void **state)
{
	(void)state;
	check_groups(elsewhere, ARRAY_SIZE(elsewhere));
}

static void test_groups_unknown(void **state)
{
	(void)state;
	check_groups(unknown, ARRAY_SIZE(unknown));
	assert_int_equal(catalog_group_of(NULL), CATALOG_OTHER);
}

static void test_group_names(void **state)
{
	static const char *const names[CATALOG_NGROUPS] = {
		"exits", "page_faults", "mmu", "tlb", "halt", "interrupts",
		"emulation", "memory", "nested", "preemption", "other",
	};
	static const char *const titles[CATALOG_NGROUPS] = {
		"VM exits", "Page faults", "MMU", "TLB flushes",
		"Halt polling", "Interrupt injections",
		"Instruction emulation", "Mapped guest memory",
		"Nested virtualization", "Preemption and yield", "Other",
	};

	(void)state;
	for (int g = 0; g < CATALOG_NGROUPS; g++) {
		const char *name = catalog_group_name((enum catalog_group)g);

		assert_string_equal(name, names[g]);
		assert_int_equal(strspn(name, "abcdefghijklmnopqrstuvwxyz_"),
				 strlen(name));
		assert_string_equal(catalog_group_title((enum catalog_group)g),
				    titles[g]);
	}
}

/*
 * Every group below CATALOG_NGROUPS has each field of its catalog entry:
 * a group added to the enum without its line in catalog.c would give the
 * front ends a NULL to print with %s (the Netdata plugin's chart units
 * came from a table of its own that nothing checked).
 */
static void test_every_group_complete(void **state)
{
	(void)state;
	for (int g = 0; g < CATALOG_NGROUPS; g++) {
		const char *name = catalog_group_name((enum catalog_group)g);
		const char *title = catalog_group_title((enum catalog_group)g);
		const char *units = catalog_group_units((enum catalog_group)g);

		if (!name || !*name || !title || !*title || !units || !*units)
			fail_msg("group %d: name %s, title %s, units %s", g,
				 name ? name : "NULL", title ? title : "NULL",
				 units ? units : "NULL");
		for (int h = 0; h < g; h++)
			assert_string_not_equal(name, catalog_group_name((enum catalog_group)h));
	}
}

static void test_group_units(void **state)
{
	static const char *const units[CATALOG_NGROUPS] = {
		[CATALOG_EXITS] = "exits/s",
		[CATALOG_PAGE_FAULTS] = "faults/s",
		[CATALOG_MMU] = "events/s",
		[CATALOG_TLB] = "flushes/s",
		[CATALOG_HALT] = "events/s",
		[CATALOG_INTERRUPTS] = "injections/s",
		[CATALOG_EMULATION] = "instructions/s",
		[CATALOG_MEMORY] = "events/s",
		[CATALOG_NESTED] = "events/s",
		[CATALOG_PREEMPTION] = "events/s",
		[CATALOG_OTHER] = "events/s",
	};

	(void)state;
	for (int g = 0; g < CATALOG_NGROUPS; g++) {
		assert_non_null(units[g]);
		assert_string_equal(catalog_group_units((enum catalog_group)g), units[g]);
	}
	assert_string_equal(catalog_group_units(CATALOG_NGROUPS), "events/s");
	assert_string_equal(catalog_group_units((enum catalog_group)-1), "events/s");
}

static void test_group_out_of_range(void **state)
{
	static const int bad[] = { CATALOG_NGROUPS, CATALOG_NGROUPS + 1, -1,
				   1000 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		enum catalog_group g = (enum catalog_group)bad[i];

		assert_string_equal(catalog_group_name(g), "other");
		assert_string_equal(catalog_group_title(g), "Other");
	}
}

/* ------------------------------------------------------- kvmstat columns */

static void test_column_table(void **state)
{
	static const char *const headings[] = {
		"exits", "haltx", "irqx", "irqwx", "iox", "mmiox", "irqs",
		"emul", "eptv",
	};

	(void)state;
	assert_int_equal(catalog_kvmstat_ncolumns, ARRAY_SIZE(headings));
	for (size_t i = 0; i < catalog_kvmstat_ncolumns; i++) {
		const struct catalog_column *c = &catalog_kvmstat_columns[i];

		assert_string_equal(c->heading, headings[i]);
		assert_non_null(c->stats);
		assert_non_null(c->stats[0]);
		assert_non_null(c->help);
		assert_true(strlen(c->help) > 0);
	}
}

/* Generic vCPU stats (Linux 5.15+), then the architecture's own. */
#define GENERIC_VCPU \
	"halt_successful_poll", "halt_attempted_poll", "halt_poll_invalid", \
	"halt_wakeup", "halt_poll_success_ns", "halt_poll_fail_ns", \
	"halt_wait_ns", "halt_poll_success_hist", "halt_poll_fail_hist", \
	"halt_wait_hist"

static const char *const names_x86_6[] = {
	GENERIC_VCPU, "blocking",
	"pf_taken", "pf_fixed", "pf_emulate", "pf_spurious", "pf_fast",
	"pf_mmio_spte_created", "pf_guest", "tlb_flush", "invlpg", "exits",
	"io_exits", "mmio_exits", "signal_exits", "irq_window_exits",
	"nmi_window_exits", "l1d_flush", "halt_exits", "request_irq_exits",
	"irq_exits", "host_state_reload", "fpu_reload", "insn_emulation",
	"insn_emulation_fail", "hypercalls", "irq_injections",
	"nmi_injections", "req_event", "nested_run",
	"directed_yield_attempted", "directed_yield_successful",
	"preemption_reported", "preemption_other", "guest_mode",
	"notify_window_exits", NULL
};

static const char *const names_x86_5_15[] = {
	GENERIC_VCPU,
	"pf_fixed", "pf_guest", "tlb_flush", "invlpg", "exits", "io_exits",
	"mmio_exits", "signal_exits", "irq_window_exits", "nmi_window_exits",
	"l1d_flush", "halt_exits", "request_irq_exits", "irq_exits",
	"host_state_reload", "fpu_reload", "insn_emulation",
	"insn_emulation_fail", "hypercalls", "irq_injections",
	"nmi_injections", "req_event", "nested_run",
	"directed_yield_attempted", "directed_yield_successful",
	"guest_mode", NULL
};

static const char *const names_arm64[] = {
	GENERIC_VCPU, "blocking",
	"hvc_exit_stat", "wfe_exit_stat", "wfi_exit_stat", "mmio_exit_user",
	"mmio_exit_kernel", "signal_exits", "exits", NULL
};

static const char *const names_ppc64[] = {
	GENERIC_VCPU,
	"sum_exits", "mmio_exits", "signal_exits", "light_exits",
	"itlb_real_miss_exits", "itlb_virt_miss_exits",
	"dtlb_real_miss_exits", "dtlb_virt_miss_exits", "syscall_exits",
	"isi_exits", "dsi_exits", "emulated_inst_exits", "dec_exits",
	"ext_intr_exits", "halt_successful_wait", "dbell_exits",
	"gdbell_exits", "ld", "st", "pf_storage", "pf_instruc", "sp_storage",
	"sp_instruc", "queue_intr", "ld_slow", "st_slow", "pthru_all",
	"pthru_host", "pthru_bad_aff", NULL
};

/* A schema as decode_schema() would build it, with names only. */
struct test_schema {
	struct kvmstats_schema schema;
	struct kvmstats_desc desc[64];
};

static void schema_init(struct test_schema *t, const char *const *names)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; names[i]; i++) {
		assert_true(i < ARRAY_SIZE(t->desc));
		t->desc[i].name = names[i];
		t->desc[i].index = (uint32_t)i;
		t->desc[i].size = 1;
		t->desc[i].known = true;
		t->schema.num_desc = (uint32_t)i + 1;
	}
	t->schema.num_values = t->schema.num_desc;
	t->schema.data_len = t->schema.num_values * 8;
	t->schema.desc = t->desc;
	t->schema.refs = 1;
}

static int index_of(const char *const *names, const char *name)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	fail_msg("%s is not in the name set", name);
	return -1;
}

/* want[i]: the stat that fills column i, NULL for "-". */
static void check_columns(const char *const *names,
			  const char *const want[])
{
	struct test_schema t;

	schema_init(&t, names);
	for (size_t i = 0; i < catalog_kvmstat_ncolumns; i++) {
		const struct catalog_column *c = &catalog_kvmstat_columns[i];
		int got = catalog_column_find(c, &t.schema);
		int expected = want[i] ? index_of(names, want[i]) : -ENOENT;

		if (got != expected)
			fail_msg("column %s: got %d, want %d (%s)", c->heading,
				 got, expected, want[i] ? want[i] : "-");
	}
}

static void test_columns_x86_6(void **state)
{
	static const char *const want[] = {
		"exits", "halt_exits", "irq_exits", "irq_window_exits",
		"io_exits", "mmio_exits", "irq_injections", "insn_emulation",
		"pf_taken",
	};

	(void)state;
	assert_int_equal(ARRAY_SIZE(want), catalog_kvmstat_ncolumns);
	check_columns(names_x86_6, want);
}

static void test_columns_x86_5_15(void **state)
{
	static const char *const want[] = {
		"exits", "halt_exits", "irq_exits", "irq_window_exits",
		"io_exits", "mmio_exits", "irq_injections", "insn_emulation",
		NULL,
	};

	(void)state;
	assert_int_equal(ARRAY_SIZE(want), catalog_kvmstat_ncolumns);
	check_columns(names_x86_5_15, want);
}

static void test_columns_arm64(void **state)
{
	static const char *const want[] = {
		"exits", "wfi_exit_stat", NULL, NULL, NULL, "mmio_exit_user",
		NULL, NULL, NULL,
	};

	(void)state;
	assert_int_equal(ARRAY_SIZE(want), catalog_kvmstat_ncolumns);
	check_columns(names_arm64, want);
}

static void test_columns_ppc64(void **state)
{
	static const char *const want[] = {
		"sum_exits", NULL, "ext_intr_exits", NULL, NULL, "mmio_exits",
		NULL, "emulated_inst_exits", NULL,
	};

	(void)state;
	assert_int_equal(ARRAY_SIZE(want), catalog_kvmstat_ncolumns);
	check_columns(names_ppc64, want);
}

/* With two candidates present, the first one wins wherever it is listed. */
static void test_column_best_first(void **state)
{
	static const char *const names[] = {
		"sum_exits", "wfi_exit_stat", "halt_exits", "exits", NULL
	};
	struct test_schema t;

	(void)state;
	schema_init(&t, names);
	assert_int_equal(catalog_column_find(&catalog_kvmstat_columns[0],
					     &t.schema), 3);
	assert_int_equal(catalog_column_find(&catalog_kvmstat_columns[1],
					     &t.schema), 2);
}

static void test_column_empty_and_null(void **state)
{
	static const char *const none[] = { NULL };
	struct test_schema t;

	(void)state;
	schema_init(&t, none);
	assert_int_equal(catalog_column_find(&catalog_kvmstat_columns[0],
					     &t.schema), -ENOENT);
	assert_int_equal(catalog_column_find(&catalog_kvmstat_columns[0],
					     NULL), -ENOENT);
	assert_int_equal(catalog_column_find(NULL, &t.schema), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_groups_vcpu_x86),
		cmocka_unit_test(test_groups_vcpu_arm64),
		cmocka_unit_test(test_groups_vcpu_ppc64),
		cmocka_unit_test(test_groups_vm),
		cmocka_unit_test(test_groups_generic_and_newer),
		cmocka_unit_test(test_groups_elsewhere),
		cmocka_unit_test(test_groups_unknown),
		cmocka_unit_test(test_group_names),
		cmocka_unit_test(test_every_group_complete),
		cmocka_unit_test(test_group_units),
		cmocka_unit_test(test_group_out_of_range),
		cmocka_unit_test(test_column_table),
		cmocka_unit_test(test_columns_x86_6),
		cmocka_unit_test(test_columns_x86_5_15),
		cmocka_unit_test(test_columns_arm64),
		cmocka_unit_test(test_columns_ppc64),
		cmocka_unit_test(test_column_best_first),
		cmocka_unit_test(test_column_empty_and_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
