/* SPDX-License-Identifier: MIT */
/*
 * top_internal.h: what the files of kvmstat --top share (top.c: the loop
 * and the keys; top_rows.c: the rows from the core's samples, sorting;
 * top_draw.c: the screens). Not for the rest of kvmstat: top.h is.
 */
#ifndef KVMSTAT_TOP_INTERNAL_H
#define KVMSTAT_TOP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "top.h"

#define MAX_COLS 32
#define NAME_W 16
#define STAT_W 8
#define GONE_KEEP_S 3.0		/* an exited VM stays marked this long, at least */
#define MESSAGE_S 10.0		/* news stays on the status line this long */

/*
 * A column of the VM and vCPU tables: a kvmstat column, any stat by name,
 * or run% / wait% (sched_track.h: the vCPU threads' time on a CPU and
 * runnable waiting for one, percent of one CPU; a VM's sums its vCPUs').
 */
enum col_sched { COL_STAT, COL_RUN, COL_WAIT };

struct col {
	enum col_sched sched;			/* COL_STAT: cat or stat */
	const struct catalog_column *cat;	/* or NULL: stat */
	char stat[DECODE_NAME_MAX + 1];
	int width;
};

/* A row of the host table (a VM) or of a VM's table (a vCPU). */
struct row {
	pid_t pid;
	uint64_t starttime;
	int vcpu;			/* VM table: the vCPU's id */
	char name[NAME_W + 1];		/* printable ASCII */
	size_t nvcpus;
	enum kvmstats_source source;
	double val[MAX_COLS];
	bool have[MAX_COLS];
	double gone_at;			/* 0: running; else when it was seen gone */
};

enum view { SCREEN_HOST, SCREEN_VM, SCREEN_VCPU };

/* The fixed columns before the stat columns: sort keys -3 .. -1. */
enum { SORT_PID = -3, SORT_NAME = -2, SORT_VCPUS = -1 };

/* A vCPU's values at the last r, for "since reset". */
struct baseline {
	pid_t pid;
	uint64_t starttime;
	int vcpu;
	const struct kvmstats_schema *schema;
	uint64_t *values;
};

struct top {
	struct kvmstats_host *host;
	const struct top_config *cfg;
	struct scan_said *news;
	unsigned interval;
	bool paused, color, help;
	unsigned long samples;
	double t_cur, t_prev;		/* monotonic times of the last two samples */
	char message[160];		/* the last news, printable ASCII */
	double message_at;		/* when it came; shown for MESSAGE_S */

	struct col cols[MAX_COLS];
	size_t ncols;
	bool cols_from_filter;		/* -s: built from the first schema seen */
	int sort;			/* SORT_* or a column index */
	bool sort_desc;

	struct row *vms;		/* host table, unsorted */
	size_t nvms;
	struct row *vcpus;		/* VM table of the VM shown */
	size_t nvcpus_rows;

	struct filter *vm_filter;	/* f at the host table */
	struct filter *stat_filter;	/* f at a vCPU */
	char vm_filter_text[80], stat_filter_text[80];

	enum view screen;
	pid_t sel_pid;			/* the selected / shown VM */
	uint64_t sel_start;
	int sel_vcpu;			/* the selected / shown vCPU */
	size_t vcpu_scroll;		/* first stat line shown at a vCPU */

	struct baseline *base;
	size_t nbase;
	double reset_at;		/* 0: never reset */
};

enum pair { PAIR_HEAD = 1, PAIR_SORT, PAIR_GONE, PAIR_PAUSED, PAIR_BAR };

/* top_rows.c: the model, from the core's last samples */
double top_now(void);			/* CLOCK_MONOTONIC, seconds */
/* Untrusted bytes as printable ASCII: the rest is '?'. dst may be src. */
void top_safe_copy(char *dst, size_t size, const char *src);
bool top_cumulative_like(const struct kvmstats_desc *d);
uint64_t top_stat_sum(const uint64_t *values, const struct kvmstats_desc *d);
const char *top_col_heading(const struct col *c);
/* "run%" or "wait%": COL_RUN or COL_WAIT; else COL_STAT. */
enum col_sched top_sched_col_of(const char *heading);
bool top_vm_cell(const struct top *t, const struct col *c,
		 const struct kvmstats_vm *vm, double *ret);
/* The default columns: kvmstat's, with run% wait% after exits unless --no-sched. */
void top_default_cols(struct top *t);
struct kvmstats_vm *top_find_vm(const struct top *t, pid_t pid, uint64_t start);
struct kvmstats_vcpu *top_find_vcpu(const struct kvmstats_vm *vm, int id);
void top_cols_from_filter(struct top *t);
int top_build_vms(struct top *t, double now);
int top_build_vcpus(struct top *t);
void top_baselines_free(struct top *t);
void top_reset_baselines(struct top *t);
const struct baseline *top_find_baseline(const struct top *t, const struct kvmstats_vm *vm,
					 int vcpu, const struct kvmstats_schema *schema);
size_t top_sorted_rows(const struct top *t, const struct row *rows, size_t n,
		       const struct filter *f, const struct row **out);
const char *top_sort_name(const struct top *t);
void top_set_sort(struct top *t, int sort);

/* top_draw.c: the screens */
void top_putf(int y, int x, int width, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void top_draw(struct top *t);

#endif
