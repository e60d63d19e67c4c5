/* SPDX-License-Identifier: MIT */
/*
 * top_rows.c: the rows of kvmstat --top from the samples the core holds
 * (cur and prev of each statsfd) and the catalog's columns: a counter's
 * change per second over the last interval, an instant's or a peak's
 * value; a VM's row sums its vCPUs (a peak: their maximum). Also the VMs
 * that went (marked, then dropped), the "since reset" baselines, sorting.
 * Reads the core; never asks it to sample.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched_track.h"
#include "top_internal.h"

double top_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Untrusted bytes as printable ASCII: the rest is '?'. */
void top_safe_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < size; i++)
		dst[i] = (unsigned char)src[i] >= 0x20 && (unsigned char)src[i] < 0x7f ?
			 src[i] : '?';
	dst[i] = '\0';
}

/* --------------------------------------------------------------- values */

bool top_cumulative_like(const struct kvmstats_desc *d)
{
	return d->type == KVM_STATS_TYPE_CUMULATIVE || d->type == KVM_STATS_TYPE_LINEAR_HIST ||
	       d->type == KVM_STATS_TYPE_LOG_HIST;
}

/* Sum of a stat's values (a histogram's bucket counts) in one sample. */
uint64_t top_stat_sum(const uint64_t *values, const struct kvmstats_desc *d)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < d->size; i++)
		sum += values[d->index + i];
	return sum;
}

static int col_find(const struct col *c, const struct kvmstats_schema *s)
{
	if (!s)
		return -ENOENT;
	return c->cat ? catalog_column_find(c->cat, s) : schema_find(s, c->stat);
}

const char *top_col_heading(const struct col *c)
{
	switch (c->sched) {
	case COL_RUN:
		return "run%";
	case COL_WAIT:
		return "wait%";
	case COL_STAT:
		break;
	}
	return c->cat ? c->cat->heading : c->stat;
}

enum col_sched top_sched_col_of(const char *heading)
{
	if (strcmp(heading, "run%") == 0)
		return COL_RUN;
	if (strcmp(heading, "wait%") == 0)
		return COL_WAIT;
	return COL_STAT;
}

/*
 * exits, then run% and wait% (in 80 columns five fit: the question "is
 * this VM starved" wants them in sight), then kvmstat's other columns.
 */
void top_default_cols(struct top *t)
{
	size_t n = 0;

	for (size_t k = 0; k < catalog_kvmstat_ncolumns && n < MAX_COLS; k++) {
		memset(&t->cols[n], 0, sizeof(t->cols[n]));
		t->cols[n].cat = &catalog_kvmstat_columns[k];
		t->cols[n++].width = STAT_W;
		for (int c = COL_RUN; k == 0 && t->cfg->sched && c <= COL_WAIT &&
		     n < MAX_COLS; c++) {
			memset(&t->cols[n], 0, sizeof(t->cols[n]));
			t->cols[n].sched = (enum col_sched)c;
			t->cols[n++].width = STAT_W;
		}
	}
	t->ncols = n;
}

/* A run% or wait% cell from what sched_track kept of a VM or a vCPU. */
static bool sched_cell(const struct col *c, const void *user, bool known, double *ret)
{
	double run, wait;

	if (!sched_track_pct(user, known, &run, &wait))
		return false;
	*ret = c->sched == COL_RUN ? run : wait;
	return true;
}

/*
 * A cell of one holder of stats: a counter's change per second over the
 * last interval, an instant's or a peak's last value. false: none.
 */
static bool cell(const struct top *t, const struct col *c, const struct statsfd *s,
		 double *ret, bool *ret_rate)
{
	const struct kvmstats_desc *d;
	int i = col_find(c, s ? s->schema : NULL);
	double dt = t->t_cur - t->t_prev;

	if (i < 0 || s->error != 0 || s->samples < 1)
		return false;
	d = &s->schema->desc[i];
	*ret_rate = top_cumulative_like(d);
	if (!*ret_rate) {
		*ret = (double)top_stat_sum(s->cur, d);
		return true;
	}
	if (s->samples < 2 || dt <= 0)
		return false;
	*ret = (double)(top_stat_sum(s->cur, d) - top_stat_sum(s->prev, d)) / dt;
	return true;
}

/* A VM's cell: the sum over its vCPUs (a peak: the maximum), else VM-wide. */
bool top_vm_cell(const struct top *t, const struct col *c,
		    const struct kvmstats_vm *vm, double *ret)
{
	double sum = 0, v;
	bool any = false, rate;

	if (c->sched != COL_STAT)
		return sched_cell(c, vm->user, sched_track_vm_known(vm), ret);
	for (size_t i = 0; i < vm->nvcpus; i++) {
		const struct statsfd *s = vm->vcpus[i]->stats;
		int d = col_find(c, s->schema);

		if (!cell(t, c, s, &v, &rate))
			continue;
		if (s->schema->desc[d].type == KVM_STATS_TYPE_PEAK)
			sum = any && sum > v ? sum : v;
		else
			sum += v;
		any = true;
	}
	if (!any && cell(t, c, vm->vm_stats, &v, &rate)) {
		sum = v;
		any = true;
	}
	*ret = sum;
	return any;
}

static void row_of_vm(const struct top *t, const struct kvmstats_vm *vm, struct row *r)
{
	memset(r, 0, sizeof(*r));
	r->pid = vm->pid;
	r->starttime = vm->starttime;
	r->vcpu = -1;
	top_safe_copy(r->name, sizeof(r->name), vm->name);
	r->nvcpus = vm->nvcpus;
	r->source = vm->nvcpus ? vm->vcpus[0]->source : vm->vm_source;
	for (size_t c = 0; c < t->ncols; c++)
		r->have[c] = top_vm_cell(t, &t->cols[c], vm, &r->val[c]);
}

struct kvmstats_vm *top_find_vm(const struct top *t, pid_t pid, uint64_t start)
{
	for (size_t i = 0; i < host_nvms(t->host); i++) {
		struct kvmstats_vm *vm = host_vm(t->host, i);

		if (vm->pid == pid && vm->starttime == start)
			return vm;
	}
	return NULL;
}

struct kvmstats_vcpu *top_find_vcpu(const struct kvmstats_vm *vm, int id)
{
	for (size_t i = 0; vm && i < vm->nvcpus; i++)
		if (vm->vcpus[i]->id == id)
			return vm->vcpus[i];
	return NULL;
}

/* -s: the columns are the first schema's stats that pass the filter. */
void top_cols_from_filter(struct top *t)
{
	for (size_t i = 0; i < host_nvms(t->host) && t->cols_from_filter; i++) {
		const struct kvmstats_vm *vm = host_vm(t->host, i);
		const struct kvmstats_schema *s;

		if (vm->nvcpus == 0)
			continue;
		s = vm->vcpus[0]->stats->schema;
		t->ncols = 0;
		for (uint32_t d = 0; d < s->num_desc && t->ncols < MAX_COLS; d++) {
			struct col *c = &t->cols[t->ncols];

			if (filter_match(t->cfg->stat_filter, s->desc[d].name) != 1)
				continue;
			memset(c, 0, sizeof(*c));
			top_safe_copy(c->stat, sizeof(c->stat), s->desc[d].name);
			c->width = (int)strlen(c->stat) > STAT_W ? (int)strlen(c->stat) : STAT_W;
			t->ncols++;
		}
		t->cols_from_filter = false;
		t->sort = t->ncols ? 0 : SORT_NAME;
	}
}

/*
 * The host table from the core's last samples. A VM no longer there is
 * kept, marked gone, for GONE_KEEP_S or two intervals, then dropped.
 */
int top_build_vms(struct top *t, double now)
{
	size_t n = host_nvms(t->host), old = t->nvms, m = 0;
	struct row *rows = calloc(n + old + 1, sizeof(*rows));
	double keep = 2.0 * t->interval > GONE_KEEP_S ? 2.0 * t->interval : GONE_KEEP_S;

	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct row *r = &rows[m++];
		bool known = false;

		row_of_vm(t, host_vm(t->host, i), r);
		for (size_t j = 0; j < old && !known; j++)
			known = t->vms[j].pid == r->pid && t->vms[j].starttime == r->starttime;
		/*
		 * A VM found by this sample's rescan was read there and again
		 * by the sample: its change spans less than the interval.
		 */
		if (!known && t->samples > 0)
			memset(r->have, 0, sizeof(r->have));
	}
	for (size_t i = 0; i < old; i++) {
		struct row *r = &t->vms[i];

		if (top_find_vm(t, r->pid, r->starttime))
			continue;
		if (r->gone_at == 0)
			r->gone_at = now;
		if (now - r->gone_at < keep) {
			rows[m] = *r;
			memset(rows[m].have, 0, sizeof(rows[m].have));
			m++;
		}
	}
	free(t->vms);
	t->vms = rows;
	t->nvms = m;
	return 0;
}

/* The VM table: the vCPUs of the VM shown. */
int top_build_vcpus(struct top *t)
{
	const struct kvmstats_vm *vm = top_find_vm(t, t->sel_pid, t->sel_start);
	size_t n = vm ? vm->nvcpus : 0;
	struct row *rows = calloc(n + 1, sizeof(*rows));
	double rate;
	bool is_rate;

	if (!rows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct kvmstats_vcpu *c = vm->vcpus[i];
		struct row *r = &rows[i];

		r->pid = vm->pid;
		r->starttime = vm->starttime;
		r->vcpu = c->id;
		snprintf(r->name, sizeof(r->name), "%d", c->id);
		r->nvcpus = 1;
		r->source = c->source;
		for (size_t k = 0; k < t->ncols; k++) {
			if (t->cols[k].sched != COL_STAT)
				r->have[k] = sched_cell(&t->cols[k], c->user,
							sched_track_vcpu_known(c), &rate);
			else
				r->have[k] = cell(t, &t->cols[k], c->stats, &rate, &is_rate);
			r->val[k] = rate;
		}
	}
	free(t->vcpus);
	t->vcpus = rows;
	t->nvcpus_rows = n;
	return 0;
}

void top_baselines_free(struct top *t)
{
	for (size_t i = 0; i < t->nbase; i++)
		free(t->base[i].values);
	free(t->base);
	t->base = NULL;
	t->nbase = 0;
}

/* r: every vCPU's values now become the zero of "since reset". */
void top_reset_baselines(struct top *t)
{
	size_t n = 0;

	top_baselines_free(t);
	for (size_t i = 0; i < host_nvms(t->host); i++)
		n += host_vm(t->host, i)->nvcpus;
	t->base = calloc(n + 1, sizeof(*t->base));
	if (!t->base)
		return;
	for (size_t i = 0; i < host_nvms(t->host); i++) {
		const struct kvmstats_vm *vm = host_vm(t->host, i);

		for (size_t j = 0; j < vm->nvcpus; j++) {
			const struct statsfd *s = vm->vcpus[j]->stats;
			struct baseline *b = &t->base[t->nbase];

			if (s->samples < 1)
				continue;
			b->values = malloc(s->schema->num_values * sizeof(uint64_t) + 1);
			if (!b->values)
				continue;
			memcpy(b->values, s->cur, s->schema->num_values * sizeof(uint64_t));
			b->pid = vm->pid;
			b->starttime = vm->starttime;
			b->vcpu = vm->vcpus[j]->id;
			b->schema = s->schema;
			t->nbase++;
		}
	}
	t->reset_at = top_now();
}

const struct baseline *top_find_baseline(const struct top *t, const struct kvmstats_vm *vm,
					    int vcpu, const struct kvmstats_schema *schema)
{
	for (size_t i = 0; i < t->nbase; i++)
		if (t->base[i].pid == vm->pid && t->base[i].starttime == vm->starttime &&
		    t->base[i].vcpu == vcpu && t->base[i].schema == schema)
			return &t->base[i];
	return NULL;
}

/* -------------------------------------------------------------- sorting */

static int cmp_rows(const struct top *t, const struct row *a, const struct row *b)
{
	int r = 0;

	/* The gone and the valueless last, whatever the order. */
	if ((a->gone_at != 0) != (b->gone_at != 0))
		return a->gone_at != 0 ? 1 : -1;
	switch (t->sort) {
	case SORT_PID:
		r = (a->pid > b->pid) - (a->pid < b->pid);
		break;
	case SORT_NAME:
		r = a->vcpu >= 0 ? (a->vcpu > b->vcpu) - (a->vcpu < b->vcpu) :
				   strcmp(a->name, b->name);
		break;
	case SORT_VCPUS:
		r = (a->nvcpus > b->nvcpus) - (a->nvcpus < b->nvcpus);
		break;
	default:
		if (a->have[t->sort] != b->have[t->sort])
			return a->have[t->sort] ? -1 : 1;
		r = (a->val[t->sort] > b->val[t->sort]) - (a->val[t->sort] < b->val[t->sort]);
		break;
	}
	if (t->sort_desc)
		r = -r;
	if (r == 0)
		r = (a->pid > b->pid) - (a->pid < b->pid);
	if (r == 0)
		r = (a->vcpu > b->vcpu) - (a->vcpu < b->vcpu);
	return r;
}

/* Insertion sort of an index: a few hundred rows, stable, no qsort context. */
size_t top_sorted_rows(const struct top *t, const struct row *rows, size_t n,
			  const struct filter *f, const struct row **out)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j;

		if (f && rows[i].vcpu < 0 && filter_match(f, rows[i].name) != 1)
			continue;
		for (j = m; j > 0 && cmp_rows(t, out[j - 1], &rows[i]) > 0; j--)
			out[j] = out[j - 1];
		out[j] = &rows[i];
		m++;
	}
	return m;
}

const char *top_sort_name(const struct top *t)
{
	switch (t->sort) {
	case SORT_PID:
		return "pid";
	case SORT_NAME:
		return t->screen == SCREEN_VM ? "vcpu" : "name";
	case SORT_VCPUS:
		return "vcpus";
	}
	return top_col_heading(&t->cols[t->sort]);
}

void top_set_sort(struct top *t, int sort)
{
	if (sort < SORT_PID)
		sort = (int)t->ncols - 1;
	if (sort >= (int)t->ncols)
		sort = SORT_PID;
	t->sort = sort;
	/* Numbers busiest first, names and pids in order. */
	t->sort_desc = sort >= 0 || sort == SORT_VCPUS;
}

