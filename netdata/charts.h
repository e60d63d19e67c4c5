/* SPDX-License-Identifier: MIT */
/*
 * charts.h: how KVM stats become Netdata charts, and the protocol lines
 * that define and update them (Netdata's external plugin protocol,
 * src/collectors/plugins.d/README.md upstream; only keywords Netdata 1.37
 * knows, since it drops a plugin on any other).
 */
#ifndef KVM_STATS_CHARTS_H
#define KVM_STATS_CHARTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "catalog.h"
#include "filter.h"
#include "kvmstats.h"

/* Where a dimension's value comes from. */
enum chart_source {
	SOURCE_VM_FD,		/* the VM stats fd */
	SOURCE_VCPU_TOTAL,	/* summed over the VM's vCPUs */
	SOURCE_VCPU,		/* one vCPU */
	SOURCE_SCHED,		/* scheduler counters: enum sched_slot */
};
#define CHART_NSOURCES 4

/* The value slots of SOURCE_SCHED (cpu_chart_values()). */
enum sched_slot {
	SCHED_RUN,		/* ns the vCPU threads ran */
	SCHED_WAIT,		/* ns they waited on a run queue, runnable */
	SCHED_OTHER,		/* ns the VMM's other threads ran (VM only) */
	SCHED_NSLOTS,
};

struct chart_dim {
	char id[72];
	char name[72];
	enum chart_source source;
	uint32_t slot;		/* value slot in that source */
	int64_t multiplier;
	int64_t divisor;
};

struct chart {
	char key[72];		/* the id after "kvm_<vm>." (or "vcpuN_") */
	char context[96];	/* "kvm.vm.<key>" or "kvm.vcpu.<key>" */
	char title[128];
	const char *units;
	const char *family;	/* the catalog group */
	const char *type;	/* line, stacked, heatmap */
	const char *algorithm;	/* incremental or absolute */
	int priority;
	/*
	 * The dimensions are a histogram's buckets, ascending: shown only as
	 * a prefix (chart_show_nonzero()), since Netdata keeps dimensions in
	 * the order it learns them and a heatmap reads them in that order.
	 */
	bool buckets;
	struct chart_dim *dims;
	size_t ndims;
};

/* The charts of one VM, or of one vCPU: shared by every VM of one kernel. */
struct layout {
	struct chart *charts;
	size_t ncharts;
};

struct layout_options {
	const struct filter *stats;		/* NULL: every stat */
	bool histograms;
	bool vcpu_histograms;			/* also per vCPU (many lines) */
	bool heatmap;				/* Netdata >= 2.2 */
	bool vcpu_groups[CATALOG_NGROUPS];	/* per-vCPU charts wanted */
	bool groups[CATALOG_NGROUPS];		/* VM charts wanted */
};

/*
 * The cpu chart of a VM (vcpu_level false) or of one vCPU, from the
 * scheduler counters of the vCPU threads (kvmstats_sched_total), in
 * percent of one CPU per vCPU: 100 % run is every vCPU on a host CPU all
 * the time, 100 % run + wait every vCPU runnable all the time. Netdata
 * computes the rates from the ns counters (incremental) and reaches
 * percent through the divisor: 10^7 ns/s per vCPU, times the vCPUs whose
 * thread is known (vcpus, at least 1) for a VM. Not part of a shared
 * layout, since the divisor is the VM's own. c->chart.dims points into c:
 * c is not copied.
 */
struct cpu_chart {
	struct chart chart;
	struct chart_dim dims[SCHED_NSLOTS];
	unsigned vcpus;		/* what the divisor was made for */
	bool defined;		/* sent to Netdata */
	uint64_t last_usec;	/* monotonic time of its last update */
};
void cpu_chart_init(struct cpu_chart *c, bool vcpu_level, unsigned vcpus);

/* A VM's or a vCPU's (vm NULL) SOURCE_SCHED values, values[SCHED_NSLOTS]. */
void cpu_chart_values(const struct kvmstats_vm *vm, const struct kvmstats_vcpu *vcpu,
		      uint64_t values[SCHED_NSLOTS]);

/*
 * The VM charts from its VM stats schema and vCPU schema (either may be
 * NULL), or with vcpu_only the charts of one vCPU. The caller frees the
 * result with layout_free(). -ENOMEM.
 */
int layout_build(const struct kvmstats_schema *vm_schema,
		 const struct kvmstats_schema *vcpu_schema, bool vcpu_only,
		 const struct layout_options *opt, struct layout **ret_layout);
void layout_free(struct layout *layout);	/* accepts NULL */

/*
 * Writes s into buf as a chart id part: [a-z0-9_] only, at most size - 1
 * bytes. VM names are anybody's bytes.
 */
void chart_id_part(const char *s, char *buf, size_t size);

/*
 * Writes s as one quoted protocol word: Netdata's parser ends a word at its
 * opening quote character and treats a backslash as an escape, and a
 * newline would end the line, so those and every control byte and invalid
 * UTF-8 sequence are replaced. No VM name can add a protocol line.
 */
void chart_quote(FILE *out, const char *s);

/* The labels of a VM's charts, and of a vCPU's when vcpu >= 0. */
struct chart_labels {
	const struct kvmstats_vm *vm;
	int vcpu;
};

/*
 * CHART, CLABEL..., CLABEL_COMMIT, DIMENSION... for one chart: the
 * dimensions i with shown[i], or every one when shown is NULL. Sent again
 * with more dimensions shown, it adds them to the chart.
 */
void chart_define(FILE *out, const char *type_id, const char *prefix,
		  const struct chart *c, const struct chart_labels *labels,
		  int update_every, bool obsolete, const bool *shown);

/*
 * BEGIN/SET/END for one chart. values[source] are the value arrays of the
 * sources; usec is the time since the last update, 0 for the first.
 */
void chart_update(FILE *out, const char *type_id, const char *prefix,
		  const struct chart *c, const uint64_t *const values[CHART_NSOURCES],
		  uint64_t usec, const bool *shown);

/*
 * Marks in shown[] (c->ndims) the dimensions whose value is not zero; for
 * a histogram's (c->buckets), every bucket up to the last one not zero, so
 * that a bucket never follows a larger one (were bucket 29 shown first and
 * bucket 7 later, Netdata would append 7 after 29). Returns 1 when one was
 * newly marked (the chart wants defining again).
 */
int chart_show_nonzero(const struct chart *c, const uint64_t *const values[CHART_NSOURCES],
		       bool *shown);

#endif
