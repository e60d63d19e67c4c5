/* SPDX-License-Identifier: MIT */
/*
 * metrics_gen: writes docs/metrics.md, the reference of every stat, from
 * the code itself so that it cannot drift: the stats are the descriptors of
 * the golden blobs (tests/fixtures/golden/, this kernel's real VM and vCPU
 * stats files), their group from the catalog, their Netdata chart and
 * dimension from the layout the plugin builds (netdata/charts.c), their
 * collectd type from collectd/ident.c. `make docs` runs it; the test
 * test_docs.py fails when the committed file differs from its output.
 *
 * Usage: metrics_gen VM.bin VCPU.bin > docs/metrics.md
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "decode.h"
#include "../collectd/ident.h"
#include "../netdata/charts.h"
#include "../netdata/config.h"

/* What each stat counts; a stat missing here is listed without one. */
static const struct {
	const char *name, *meaning;
} meanings[] = {
	{ "remote_tlb_flush", "TLB flushes KVM made on other vCPUs" },
	{ "remote_tlb_flush_requests", "requests for such flushes" },
	{ "mmu_shadow_zapped", "shadow pages zapped" },
	{ "mmu_pte_write", "guest writes to shadowed page tables" },
	{ "mmu_pde_zapped", "shadow page directory entries zapped" },
	{ "mmu_flooded", "shadow pages unshadowed after repeated writes" },
	{ "mmu_recycled", "shadow pages reclaimed for reuse" },
	{ "mmu_cache_miss", "shadow page lookups that missed" },
	{ "mmu_unsync", "shadow pages out of sync now" },
	{ "pages_4k", "guest memory KVM maps now in 4 KiB pages" },
	{ "pages_2m", "guest memory KVM maps now in 2 MiB pages" },
	{ "pages_1g", "guest memory KVM maps now in 1 GiB pages" },
	{ "nx_lpage_splits", "huge pages split for the NX huge page mitigation, now" },
	{ "max_mmu_rmap_size", "longest reverse-map chain seen" },
	{ "max_mmu_page_hash_collisions", "most shadow page hash collisions seen" },
	{ "mmu_kicks_spared", "vCPU kicks saved by the MMU" },
	{ "halt_successful_poll", "halt polls that found a wake-up" },
	{ "halt_attempted_poll", "halt polls tried" },
	{ "halt_poll_invalid", "halt polls cut short (invalid state)" },
	{ "halt_wakeup", "wake-ups from halt" },
	{ "halt_poll_success_ns", "time spent in successful halt polls" },
	{ "halt_poll_fail_ns", "time spent in failed halt polls" },
	{ "halt_wait_ns", "time halted, waiting" },
	{ "halt_poll_success_hist", "successful halt polls by duration" },
	{ "halt_poll_fail_hist", "failed halt polls by duration" },
	{ "halt_wait_hist", "halt waits by duration" },
	{ "blocking", "the vCPU is blocked (halted) now" },
	{ "pf_taken", "page faults (EPT/NPT violations) KVM handled" },
	{ "pf_fixed", "page faults fixed by mapping a page" },
	{ "pf_emulate", "page faults resolved by emulating the instruction" },
	{ "pf_spurious", "page faults already fixed by another vCPU" },
	{ "pf_fast", "page faults fixed on the fast path" },
	{ "pf_mmio_spte_created", "MMIO shadow entries created" },
	{ "pf_guest", "page faults reflected into the guest" },
	{ "tlb_flush", "TLB flushes of this vCPU" },
	{ "invlpg", "INVLPG instructions intercepted" },
	{ "exits", "all VM exits" },
	{ "io_exits", "exits for port I/O" },
	{ "mmio_exits", "exits for MMIO handled by the VMM" },
	{ "signal_exits", "exits to handle a signal to the vCPU thread" },
	{ "irq_window_exits", "exits for an open interrupt window" },
	{ "nmi_window_exits", "exits for an open NMI window" },
	{ "l1d_flush", "L1 data cache flushes (L1TF mitigation)" },
	{ "halt_exits", "exits for HLT" },
	{ "request_irq_exits", "exits because the VMM asked for an interrupt window" },
	{ "irq_exits", "exits for an external interrupt" },
	{ "host_state_reload", "reloads of host state after an exit" },
	{ "fpu_reload", "FPU state reloads" },
	{ "insn_emulation", "instructions emulated" },
	{ "insn_emulation_fail", "instructions KVM failed to emulate" },
	{ "hypercalls", "hypercalls" },
	{ "irq_injections", "interrupts injected" },
	{ "nmi_injections", "NMIs injected" },
	{ "req_event", "event requests processed" },
	{ "nested_run", "nested guest (L2) entries" },
	{ "directed_yield_attempted", "directed yields to another vCPU tried" },
	{ "directed_yield_successful", "directed yields that succeeded" },
	{ "preemption_reported", "preemptions reported to the guest" },
	{ "preemption_other", "preemptions not reported to the guest" },
	{ "guest_mode", "the vCPU runs a nested guest now" },
	{ "notify_window_exits", "exits for the notify VM exit window" },
};

static const char *meaning_of(const char *name)
{
	for (size_t i = 0; i < sizeof(meanings) / sizeof(meanings[0]); i++)
		if (strcmp(meanings[i].name, name) == 0)
			return meanings[i].meaning;
	return "-";
}

static struct kvmstats_schema *load(const char *path)
{
	struct kvmstats_schema *s = NULL;
	static char buf[1 << 20];
	FILE *f = fopen(path, "rbe");
	size_t n;

	if (!f) {
		fprintf(stderr, "metrics_gen: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (decode_schema(buf, n, &s) < 0) {
		fprintf(stderr, "metrics_gen: %s: not a KVM stats file\n", path);
		exit(1);
	}
	return s;
}

/* The chart and dimension of the value at slot of source, or NULL. */
static const struct chart *find(const struct layout *l, enum chart_source src,
				uint32_t slot, const struct chart_dim **ret_dim)
{
	for (size_t i = 0; i < l->ncharts; i++)
		for (size_t j = 0; j < l->charts[i].ndims; j++)
			if (l->charts[i].dims[j].source == src &&
			    l->charts[i].dims[j].slot == slot) {
				*ret_dim = &l->charts[i].dims[j];
				return &l->charts[i];
			}
	return NULL;
}

static void unit_of(const struct kvmstats_desc *d, char *buf, size_t size)
{
	if (d->exponent)
		snprintf(buf, size, "%s × 10^%d", decode_unit_name(d->unit), d->exponent);
	else
		snprintf(buf, size, "%s", decode_unit_name(d->unit));
}

static void row(const struct layout *l, const struct kvmstats_desc *d,
		enum chart_source src, const char *scope, bool *defaults)
{
	bool hist = d->type == KVM_STATS_TYPE_LINEAR_HIST ||
		    d->type == KVM_STATS_TYPE_LOG_HIST;
	const struct chart_dim *dim = NULL;
	const struct chart *c = find(l, src, d->index, &dim);
	enum catalog_group g = catalog_group_of(d->name);
	const char *type = ident_type_of(d);
	char unit[64], ctx[128];

	unit_of(d, unit, sizeof(unit));
	printf("| `%s` | %s | %s | %s | %s | %s | ", d->name, scope,
	       catalog_group_name(g), decode_type_name(d->type), unit,
	       meaning_of(d->name));
	if (!c) {
		printf("- | - | ");
	} else {
		printf("`%s`%s | %s | ", c->key,
		       defaults[g] && !hist ? "" : " (opt-in)",
		       hist ? "one per bucket (`<1.02us` ... `>=1.07s`)" : dim->id);
	}
	if (hist)
		printf("`%s-%s-lt<bound>ns` ... `-ge<bound>ns` | ", type, d->name);
	else
		printf("`%s-%s` | ", type, d->name);
	if (c) {
		snprintf(ctx, sizeof(ctx), "%s", c->context);
		for (char *p = ctx; *p; p++)
			if (*p == '.')
				*p = '_';
		printf("`netdata_%s%s{dimension=\"%s\"}`<br>", ctx,
		       strcmp(c->algorithm, "incremental") == 0 ? "_total" : "",
		       hist ? "<bucket>" : dim->id);
	}
	printf("`collectd_kvm_stats_%s%s{type=\"%s%s\"}` |\n", type,
	       strcmp(type, "derive") == 0 ? "_total" : "", d->name, hist ? "-<bucket>" : "");
}

/*
 * The vCPU threads' scheduler counters: not KVM stats, so after the table
 * of those, from the same code the plugins run (cpu_chart_init(),
 * ident_sched_values()). The first column is no `stat`: test_docs.py
 * counts those rows against the golden blobs.
 */
static void sched_rows(void)
{
	static const char *const sched_meanings[SCHED_NSLOTS] = {
		[SCHED_RUN] = "time the vCPU threads ran on a host CPU",
		[SCHED_WAIT] = "time they were runnable on a host run queue while another task "
			       "ran (the guest's steal time, VMware's CPU ready)",
		[SCHED_OTHER] = "time the VMM's other threads (emulator, I/O) ran",
	};
	struct kvmstats_vm vm = { .sched_known = 1 };
	struct kvmstats_vcpu vcpu = { .sched = { .tid = 1 } };
	struct ident_sched vm_ids[IDENT_SCHED_MAX], vcpu_ids[IDENT_SCHED_MAX];
	size_t nvm = ident_sched_values(&vm, NULL, vm_ids);
	size_t nvcpu = ident_sched_values(&vm, &vcpu, vcpu_ids);
	struct cpu_chart vc, cc;

	cpu_chart_init(&vc, false, 1);
	cpu_chart_init(&cc, true, 1);
	printf("\n## vCPU threads: run and run-queue wait\n\n"
	       "From `/proc/<pid>/task/<tid>/schedstat` of the host thread that runs\n"
	       "each vCPU (README.md, netdata.md: how it is found, what it needs),\n"
	       "ns counters that never go back. Netdata's chart `%s` (context `%s`,\n"
	       "%s, units `%s`: the rate divided by 10^7 ns/s per vCPU whose thread\n"
	       "is known) and, per vCPU, `vcpu<N>_%s` (context `%s`, units `%s`);\n"
	       "on with the defaults (`cpu charts = yes`, collectd `SchedStats true`).\n\n"
	       "| value | scope | unit | meaning | Netdata dimension | collectd | Prometheus |\n"
	       "| --- | --- | --- | --- | --- | --- | --- |\n",
	       vc.chart.key, vc.chart.context, vc.chart.type, vc.chart.units, cc.chart.key,
	       cc.chart.context, cc.chart.units);
	for (size_t i = 0; i < nvm; i++) {
		const struct chart_dim *d = &vc.dims[i];
		char ctx[128];

		snprintf(ctx, sizeof(ctx), "%s", vc.chart.context);
		for (char *p = ctx; *p; p++)
			if (*p == '.')
				*p = '_';
		printf("| %s | vm%s | ns | %s | %s | `derive-%s` | "
		       "`netdata_%s_total{dimension=\"%s\"}`<br>"
		       "`collectd_kvm_stats_derive_total{type=\"%s\"}` |\n",
		       d->id, i < nvcpu ? ", vcpu" : "", sched_meanings[i], d->id,
		       vm_ids[i].type_instance, ctx, d->id, vm_ids[i].type_instance);
	}
}

int main(int argc, char **argv)
{
	struct layout_options opt = { .histograms = true };
	bool defaults[CATALOG_NGROUPS];
	struct plugin_config cfg;
	struct kvmstats_schema *vm, *vcpu;
	struct layout *l = NULL;

	if (argc != 3) {
		fprintf(stderr, "usage: metrics_gen VM.bin VCPU.bin\n");
		return 2;
	}
	vm = load(argv[1]);
	vcpu = load(argv[2]);
	for (int g = 0; g < CATALOG_NGROUPS; g++)
		opt.groups[g] = opt.vcpu_groups[g] = true;
	if (layout_build(vm, vcpu, false, &opt, &l) < 0) {
		fprintf(stderr, "metrics_gen: out of memory\n");
		return 1;
	}
	/* The Netdata plugin's default groups (collectd's are the same). */
	plugin_config_defaults(&cfg, 1);
	plugin_config_vm_groups(&cfg, defaults);
	plugin_config_done(&cfg);

	printf("<!-- Generated by docs/metrics_gen.c (make docs) from "
	       "tests/fixtures/golden/*.bin: do not edit. -->\n"
	       "# Metrics reference\n\n"
	       "Every statistic KVM has on x86 (Linux 6.x; the golden blobs hold this\n"
	       "kernel's %u VM-wide and %u per-vCPU descriptors), as the Netdata plugin\n"
	       "charts it and the collectd plugin sends it. Another kernel or\n"
	       "architecture may have more or fewer: every front end takes the stats\n"
	       "the kernel describes, grouped by name (`common/catalog.c`).\n\n"
	       "- **scope**: `vm` from the VM stats fd, `vcpu` per vCPU (VM charts and\n"
	       "  collectd's VM values sum the vCPUs, peaks take the maximum).\n"
	       "- **type**, **unit**: as the kernel describes the stat (value ×\n"
	       "  10^exponent is in the unit).\n"
	       "- **Netdata**: the chart `kvm_<vm>.<chart>` (context `kvm.vm.<chart>`) and\n"
	       "  its dimension; per vCPU (`per vcpu charts = yes`) the chart\n"
	       "  `kvm_<vm>.vcpu<N>_<chart>` (context `kvm.vcpu.<chart>`). \"(opt-in)\": not\n"
	       "  charted with the defaults (`groups = all`, `histograms = yes`).\n"
	       "- **collectd**: `<host>/kvm_stats-<vm>/<type>-<type_instance>` (per vCPU\n"
	       "  `kvm_stats-<vm>-vcpu<N>`); collectd-kvm_stats(5).\n"
	       "- **Prometheus**: the series through Netdata\n"
	       "  (`/api/v1/allmetrics?format=prometheus&source=as-collected`, label\n"
	       "  `chart=\"kvm_<vm>.<chart>\"`) and through collectd's\n"
	       "  `write_prometheus` (label `kvm_stats=\"<vm>\"`); see\n"
	       "  [prometheus.md](prometheus.md).\n\n"
	       "Mapped guest memory is also a derived value: Netdata's `memory` chart\n"
	       "stacks `pages_4k`, `pages_2m` and `pages_1g` in MiB; collectd sends\n"
	       "`bytes-mapped_guest_memory`.\n\n"
	       "| stat | scope | group | type | unit | meaning | Netdata chart | dimension | collectd | Prometheus |\n"
	       "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
	       vm->num_desc, vcpu->num_desc);
	for (uint32_t i = 0; i < vm->num_desc; i++)
		row(l, &vm->desc[i], SOURCE_VM_FD, "vm", defaults);
	for (uint32_t i = 0; i < vcpu->num_desc; i++)
		row(l, &vcpu->desc[i], SOURCE_VCPU_TOTAL, "vcpu", defaults);
	sched_rows();
	layout_free(l);
	schema_unref(vm);
	schema_unref(vcpu);
	return 0;
}
