/* SPDX-License-Identifier: MIT */
/*
 * catalog.c: what a KVM stat name means to a reader, shared by every front
 * end. catalog_group_of() files a stat under a group (exits, page faults,
 * ...) by ordered rules on its name, so that stats of other architectures
 * and of future kernels land somewhere sensible; the kvmstat column table
 * says which stats fill the columns of illumos kvmstat(1).
 *
 * The rules were written against struct kvm_vcpu_stat and kvm_vm_stat of
 * Linux 5.11 to 6.8 on x86, arm64 and ppc64el, the generic stats of
 * virt/kvm/kvm_main.c (halt_*, blocking, remote_tlb_flush*), and the exit
 * naming of the other architectures (s390 exit_*, riscv *_exit_*).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "catalog.h"

/* --------------------------------------------------------------- groups */

/*
 * Names no rule below files correctly: kernel stats whose names say little
 * ("ld", "blocking") or would fall through to "other".
 */
static const struct {
	const char *name;
	enum catalog_group group;
} exact_names[] = {
	{ "exits",		CATALOG_EXITS },	/* all exits */
	{ "sp_storage",		CATALOG_PAGE_FAULTS },	/* ppc */
	{ "sp_instruc",		CATALOG_PAGE_FAULTS },	/* ppc */
	{ "lpages",		CATALOG_MMU },		/* x86 < 5.15 */
	{ "nx_lpage_splits",	CATALOG_MMU },
	{ "invlpg",		CATALOG_TLB },
	{ "blocking",		CATALOG_HALT },		/* vCPU in halt */
	{ "req_event",		CATALOG_INTERRUPTS },
	{ "ld",			CATALOG_EMULATION },	/* ppc loads */
	{ "st",			CATALOG_EMULATION },	/* ppc stores */
	{ "ld_slow",		CATALOG_EMULATION },
	{ "st_slow",		CATALOG_EMULATION },
	{ "pages",		CATALOG_MEMORY },	/* x86 pages[3] */
	{ "guest_mode",		CATALOG_NESTED },	/* vCPU in L2 */
};

enum rule_kind { RULE_PREFIX, RULE_SUFFIX, RULE_SUBSTRING };

/*
 * Tried in order; the first rule that matches wins. Exits come first, so
 * "halt_exits", "irq_exits", "itlb_real_miss_exits" and
 * "emulated_inst_exits" count as exits; page faults come before emulation,
 * so "pf_emulate" is a page fault.
 */
static const struct {
	enum rule_kind kind;
	const char *text;
	enum catalog_group group;
} rules[] = {
	{ RULE_SUFFIX,		"_exits",	CATALOG_EXITS },
	{ RULE_SUFFIX,		"_exit",	CATALOG_EXITS },
	{ RULE_SUBSTRING,	"_exit_",	CATALOG_EXITS },  /* arm64, riscv */
	{ RULE_PREFIX,		"exit_",	CATALOG_EXITS },  /* s390 */
	{ RULE_SUBSTRING,	"hypercall",	CATALOG_EXITS },
	{ RULE_PREFIX,		"pf_",		CATALOG_PAGE_FAULTS },
	{ RULE_SUBSTRING,	"page_fault",	CATALOG_PAGE_FAULTS },
	{ RULE_PREFIX,		"mmu_",		CATALOG_MMU },
	{ RULE_PREFIX,		"max_mmu_",	CATALOG_MMU },
	{ RULE_SUBSTRING,	"tlb",		CATALOG_TLB },
	{ RULE_PREFIX,		"halt_",	CATALOG_HALT },
	{ RULE_SUBSTRING,	"irq",		CATALOG_INTERRUPTS },
	{ RULE_SUBSTRING,	"nmi",		CATALOG_INTERRUPTS },
	{ RULE_SUBSTRING,	"intr",		CATALOG_INTERRUPTS },
	{ RULE_SUBSTRING,	"inject",	CATALOG_INTERRUPTS },
	{ RULE_PREFIX,		"deliver_",	CATALOG_INTERRUPTS },  /* s390 */
	{ RULE_SUBSTRING,	"dbell",	CATALOG_INTERRUPTS },  /* ppc */
	{ RULE_SUBSTRING,	"emulat",	CATALOG_EMULATION },
	{ RULE_PREFIX,		"pages_",	CATALOG_MEMORY },
	{ RULE_SUBSTRING,	"_pages",	CATALOG_MEMORY },
	{ RULE_SUBSTRING,	"nested",	CATALOG_NESTED },
	{ RULE_SUBSTRING,	"preempt",	CATALOG_PREEMPTION },
	{ RULE_SUBSTRING,	"yield",	CATALOG_PREEMPTION },
};

/*
 * Every group has an entry, each field set: test_catalog checks it for
 * every group below CATALOG_NGROUPS, so a group added to the enum without
 * a line here fails the tests instead of printing "(null)" (or crashing)
 * where a front end prints a field with %s.
 */
static const struct {
	const char *name;
	const char *title;
	const char *units;	/* of the group's counters, as a rate */
} groups[CATALOG_NGROUPS] = {
	[CATALOG_EXITS]		= { "exits",		"VM exits",		"exits/s" },
	[CATALOG_PAGE_FAULTS]	= { "page_faults",	"Page faults",		"faults/s" },
	[CATALOG_MMU]		= { "mmu",		"MMU",			"events/s" },
	[CATALOG_TLB]		= { "tlb",		"TLB flushes",		"flushes/s" },
	[CATALOG_HALT]		= { "halt",		"Halt polling",		"events/s" },
	[CATALOG_INTERRUPTS]	= { "interrupts",	"Interrupt injections",	"injections/s" },
	[CATALOG_EMULATION]	= { "emulation",	"Instruction emulation", "instructions/s" },
	[CATALOG_MEMORY]	= { "memory",		"Mapped guest memory",	"events/s" },
	[CATALOG_NESTED]	= { "nested",		"Nested virtualization", "events/s" },
	[CATALOG_PREEMPTION]	= { "preemption",	"Preemption and yield",	"events/s" },
	[CATALOG_OTHER]		= { "other",		"Other",		"events/s" },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static bool has_suffix(const char *s, const char *suffix)
{
	size_t len = strlen(s), slen = strlen(suffix);

	return len >= slen && strcmp(s + len - slen, suffix) == 0;
}

static bool rule_matches(enum rule_kind kind, const char *text,
			 const char *name)
{
	switch (kind) {
	case RULE_PREFIX:
		return strncmp(name, text, strlen(text)) == 0;
	case RULE_SUFFIX:
		return has_suffix(name, text);
	case RULE_SUBSTRING:
		return strstr(name, text) != NULL;
	}
	return false;
}

/* CATALOG_OTHER for NULL and for names no rule knows. */
enum catalog_group catalog_group_of(const char *stat_name)
{
	if (!stat_name)
		return CATALOG_OTHER;
	for (size_t i = 0; i < ARRAY_SIZE(exact_names); i++)
		if (strcmp(stat_name, exact_names[i].name) == 0)
			return exact_names[i].group;
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
		if (rule_matches(rules[i].kind, rules[i].text, stat_name))
			return rules[i].group;
	return CATALOG_OTHER;
}

/* Out of range (a cast int, a newer enum) reads as CATALOG_OTHER. */
static enum catalog_group group_or_other(enum catalog_group g)
{
	return (unsigned)g < CATALOG_NGROUPS ? g : CATALOG_OTHER;
}

const char *catalog_group_name(enum catalog_group g)
{
	return groups[group_or_other(g)].name;
}

const char *catalog_group_title(enum catalog_group g)
{
	return groups[group_or_other(g)].title;
}

const char *catalog_group_units(enum catalog_group g)
{
	return groups[group_or_other(g)].units;
}

/* ------------------------------------------------------- kvmstat columns */

/*
 * The columns of illumos kvmstat(1), in its order. The first candidate is
 * the x86 name; later ones are what arm64 or ppc64 count for the same thing.
 */
static const char *const col_exits[] = { "exits", "sum_exits", NULL };
static const char *const col_haltx[] = { "halt_exits", "wfi_exit_stat", NULL };
static const char *const col_irqx[] = { "irq_exits", "ext_intr_exits", NULL };
static const char *const col_irqwx[] = { "irq_window_exits", NULL };
static const char *const col_iox[] = { "io_exits", NULL };
static const char *const col_mmiox[] = { "mmio_exits", "mmio_exit_user", NULL };
static const char *const col_irqs[] = { "irq_injections", NULL };
static const char *const col_emul[] = { "insn_emulation",
					"emulated_inst_exits", NULL };
/*
 * kvmstat counted EPT violations. KVM counts the EPT/NPT violations that
 * reach its page-fault handler as pf_taken, which Linux 5.19 added: older
 * kernels have no such stat and kvmstat shows "-".
 */
static const char *const col_eptv[] = { "pf_taken", NULL };

const struct catalog_column catalog_kvmstat_columns[] = {
	{ "exits", col_exits, "VM exits, all reasons" },
	{ "haltx", col_haltx, "exits on a halt (HLT, WFI) instruction" },
	{ "irqx", col_irqx, "exits on an external interrupt" },
	{ "irqwx", col_irqwx, "exits on an open interrupt window" },
	{ "iox", col_iox, "exits on port I/O instructions" },
	{ "mmiox", col_mmiox, "exits on MMIO to userspace" },
	{ "irqs", col_irqs, "interrupts injected into the vCPU" },
	{ "emul", col_emul, "instructions KVM emulated" },
	{ "eptv", col_eptv, "EPT/NPT violations handled as page faults" },
};

const size_t catalog_kvmstat_ncolumns = ARRAY_SIZE(catalog_kvmstat_columns);

/* 1 when schema has a stat called name at *ret_index. */
static int schema_index_of(const struct kvmstats_schema *schema,
			   const char *name, int *ret_index)
{
	uint32_t n = schema->num_desc;

	/* An index above INT_MAX cannot be returned; no kernel has that many. */
	if (n > INT_MAX)
		n = INT_MAX;
	for (uint32_t i = 0; i < n; i++) {
		const char *stat = schema->desc[i].name;

		if (stat && strcmp(stat, name) == 0) {
			*ret_index = (int)i;
			return 1;
		}
	}
	return 0;
}

/*
 * Searches schema->desc itself rather than calling schema_find(), so the
 * catalog does not depend on the decoder. A NULL column or schema has no
 * stats: -ENOENT.
 */
int catalog_column_find(const struct catalog_column *column,
			const struct kvmstats_schema *schema)
{
	int index;

	if (!column || !column->stats || !schema || !schema->desc)
		return -ENOENT;
	for (size_t i = 0; column->stats[i]; i++)
		if (schema_index_of(schema, column->stats[i], &index))
			return index;
	return -ENOENT;
}
