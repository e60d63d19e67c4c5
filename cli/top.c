/* SPDX-License-Identifier: MIT */
/*
 * top.c: kvmstat --top, a full-screen view in the manner of top(1), htop(1)
 * and Linux's kvm_stat: the host's VMs as rows, sorted by a column; Enter
 * drills into a VM (its vCPUs as rows) and into a vCPU (every stat it has,
 * with its rate and value, histograms as bars). Drawn with ncurses (X/Open
 * curses), so the terminal's own capabilities decide every escape sequence.
 *
 * Data flows one way: the loop asks the core to rescan and sample; the rows
 * are then computed from the samples the core holds (cur and prev of each
 * statsfd) and the catalog's columns and groups; keys change only what is
 * shown. Names (VM names from command lines, stat names from peers) are
 * untrusted: every byte outside printable ASCII is drawn as '?'.
 *
 * Keys (the choice, where top, htop and kvm_stat differ, is in the man page):
 * q quit; h ? help; < > sort column; R I reverse; s sort by name; f /
 * filter; Enter Right drill in; Esc Backspace Left back; + - interval;
 * p space pause; r reset the "since reset" values; c columns; arrows,
 * PgUp/PgDn, Home/End move.
 */
#include <curses.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "top.h"

#define MAX_COLS 32
#define NAME_W 16
#define STAT_W 8
#define GONE_KEEP_S 3.0		/* an exited VM stays marked this long, at least */
#define MESSAGE_S 10.0		/* news stays on the status line this long */

/* The intervals + and - step through, in seconds. */
static const unsigned intervals[] = { 1, 2, 3, 5, 10, 15, 30, 60, 120, 300 };
#define NINTERVALS (sizeof(intervals) / sizeof(intervals[0]))

/* A column of the VM and vCPU tables: a kvmstat column or any stat by name. */
struct col {
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

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ drawing */

/* Untrusted bytes as printable ASCII: the rest is '?'. */
static void safe_copy(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < size; i++)
		dst[i] = (unsigned char)src[i] >= 0x20 && (unsigned char)src[i] < 0x7f ?
			 src[i] : '?';
	dst[i] = '\0';
}

/* Draws at most width bytes of s (already safe) at y, x. */
static void put(int y, int x, const char *s, int width)
{
	if (y < 0 || y >= LINES || x < 0 || x >= COLS || width <= 0)
		return;
	if (x + width > COLS)
		width = COLS - x;
	mvaddnstr(y, x, s, width);
}

static void putf(int y, int x, int width, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void putf(int y, int x, int width, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	safe_copy(buf, sizeof(buf), buf);
	put(y, x, buf, width);
}

/* A number in at most width characters: 1234567 -> "1.23M". */
static void fmt_num(char *buf, size_t size, double v, int width)
{
	static const char suffix[] = " kMGTPE";
	int i = 0;

	if (v < 0)
		v = 0;
	snprintf(buf, size, v < 10 && v != floor(v) ? "%.1f" : "%.0f", v);
	while ((int)strlen(buf) > width && i < 6) {
		v /= 1000;
		i++;
		snprintf(buf, size, v < 10 ? "%.2f%c" : v < 100 ? "%.1f%c" : "%.0f%c",
			 v, suffix[i]);
	}
}

enum pair { PAIR_HEAD = 1, PAIR_SORT, PAIR_GONE, PAIR_PAUSED, PAIR_BAR };

static void attr(const struct top *t, enum pair pair, attr_t fallback, bool on)
{
	attr_t a = t->color ? (attr_t)COLOR_PAIR(pair) | (pair == PAIR_HEAD ? A_BOLD : 0) : fallback;

	if (on)
		attron((int)a);
	else
		attroff((int)a);
}

/* --------------------------------------------------------------- values */

static bool cumulative_like(const struct kvmstats_desc *d)
{
	return d->type == KVM_STATS_TYPE_CUMULATIVE || d->type == KVM_STATS_TYPE_LINEAR_HIST ||
	       d->type == KVM_STATS_TYPE_LOG_HIST;
}

/* Sum of a stat's values (a histogram's bucket counts) in one sample. */
static uint64_t stat_sum(const uint64_t *values, const struct kvmstats_desc *d)
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

static const char *col_heading(const struct col *c)
{
	return c->cat ? c->cat->heading : c->stat;
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
	*ret_rate = cumulative_like(d);
	if (!*ret_rate) {
		*ret = (double)stat_sum(s->cur, d);
		return true;
	}
	if (s->samples < 2 || dt <= 0)
		return false;
	*ret = (double)(stat_sum(s->cur, d) - stat_sum(s->prev, d)) / dt;
	return true;
}

/* A VM's cell: the sum over its vCPUs (a peak: the maximum), else VM-wide. */
static bool vm_cell(const struct top *t, const struct col *c,
		    const struct kvmstats_vm *vm, double *ret)
{
	double sum = 0, v;
	bool any = false, rate;

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
	safe_copy(r->name, sizeof(r->name), vm->name);
	r->nvcpus = vm->nvcpus;
	r->source = vm->nvcpus ? vm->vcpus[0]->source : vm->vm_source;
	for (size_t c = 0; c < t->ncols; c++)
		r->have[c] = vm_cell(t, &t->cols[c], vm, &r->val[c]);
}

static struct kvmstats_vm *find_vm(const struct top *t, pid_t pid, uint64_t start)
{
	for (size_t i = 0; i < host_nvms(t->host); i++) {
		struct kvmstats_vm *vm = host_vm(t->host, i);

		if (vm->pid == pid && vm->starttime == start)
			return vm;
	}
	return NULL;
}

static struct kvmstats_vcpu *find_vcpu(const struct kvmstats_vm *vm, int id)
{
	for (size_t i = 0; vm && i < vm->nvcpus; i++)
		if (vm->vcpus[i]->id == id)
			return vm->vcpus[i];
	return NULL;
}

/* -s: the columns are the first schema's stats that pass the filter. */
static void cols_from_filter(struct top *t)
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
			safe_copy(c->stat, sizeof(c->stat), s->desc[d].name);
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
static int build_vms(struct top *t, double now)
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

		if (find_vm(t, r->pid, r->starttime))
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
static int build_vcpus(struct top *t)
{
	const struct kvmstats_vm *vm = find_vm(t, t->sel_pid, t->sel_start);
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
			r->have[k] = cell(t, &t->cols[k], c->stats, &rate, &is_rate);
			r->val[k] = rate;
		}
	}
	free(t->vcpus);
	t->vcpus = rows;
	t->nvcpus_rows = n;
	return 0;
}

static void baselines_free(struct top *t)
{
	for (size_t i = 0; i < t->nbase; i++)
		free(t->base[i].values);
	free(t->base);
	t->base = NULL;
	t->nbase = 0;
}

/* r: every vCPU's values now become the zero of "since reset". */
static void reset_baselines(struct top *t)
{
	size_t n = 0;

	baselines_free(t);
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
	t->reset_at = now_s();
}

static const struct baseline *find_baseline(const struct top *t, const struct kvmstats_vm *vm,
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
static size_t sorted_rows(const struct top *t, const struct row *rows, size_t n,
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

static const char *sort_name(const struct top *t)
{
	switch (t->sort) {
	case SORT_PID:
		return "pid";
	case SORT_NAME:
		return t->screen == SCREEN_VM ? "vcpu" : "name";
	case SORT_VCPUS:
		return "vcpus";
	}
	return col_heading(&t->cols[t->sort]);
}

static void set_sort(struct top *t, int sort)
{
	if (sort < SORT_PID)
		sort = (int)t->ncols - 1;
	if (sort >= (int)t->ncols)
		sort = SORT_PID;
	t->sort = sort;
	/* Numbers busiest first, names and pids in order. */
	t->sort_desc = sort >= 0 || sort == SORT_VCPUS;
}

/* ------------------------------------------------------------- screens */

static int table_cols_fit(const struct top *t, int x)
{
	size_t n = 0;

	for (; n < t->ncols && x + 1 + t->cols[n].width <= COLS; n++)
		x += 1 + t->cols[n].width;
	return (int)n;
}

static void draw_heading(const struct top *t, int y, const char *first)
{
	int x, n;

	attr(t, PAIR_HEAD, A_REVERSE, true);
	mvhline(y, 0, ' ', COLS);
	putf(y, 0, COLS, "%7s %-*s %5s %-4s", "PID", NAME_W, first,
	     t->screen == SCREEN_HOST ? "VCPUS" : "", "SRC");
	x = 7 + 1 + NAME_W + 1 + 5 + 1 + 4;
	n = table_cols_fit(t, x);
	for (int c = 0; c < n; c++) {
		char h[DECODE_NAME_MAX + 2];

		safe_copy(h, sizeof(h), col_heading(&t->cols[c]));
		if (c == t->sort)
			attr(t, PAIR_SORT, A_BOLD | A_UNDERLINE, true);
		putf(y, x + 1, t->cols[c].width, "%*.*s", t->cols[c].width,
		     t->cols[c].width, h);
		if (c == t->sort)
			attr(t, PAIR_SORT, A_BOLD | A_UNDERLINE, false);
		x += 1 + t->cols[c].width;
	}
	attr(t, PAIR_HEAD, A_REVERSE, false);
}

static void draw_row(const struct top *t, int y, const struct row *r, bool selected)
{
	char num[32], first[NAME_W + 1];
	int x = 7 + 1 + NAME_W + 1 + 5 + 1 + 4, n = table_cols_fit(t, x);

	if (selected)
		attron(A_REVERSE);
	if (r->gone_at != 0)
		attr(t, PAIR_GONE, A_DIM, true);
	mvhline(y, 0, ' ', COLS);
	snprintf(first, sizeof(first), "%s", r->name);
	putf(y, 0, COLS, "%7d %-*s %5s %-4.4s", (int)r->pid, NAME_W, first,
	     r->gone_at != 0 ? "gone" : "", host_source_name(r->source));
	if (r->gone_at == 0 && r->vcpu < 0)
		putf(y, 7 + 1 + NAME_W + 1, 5, "%5zu", r->nvcpus);
	for (int c = 0; c < n; c++) {
		if (r->have[c])
			fmt_num(num, sizeof(num), r->val[c], t->cols[c].width);
		else
			snprintf(num, sizeof(num), "-");
		putf(y, x + 1, t->cols[c].width, "%*s", t->cols[c].width, num);
		x += 1 + t->cols[c].width;
	}
	if (r->gone_at != 0)
		attr(t, PAIR_GONE, A_DIM, false);
	if (selected)
		attroff(A_REVERSE);
}

/* Draws a table's rows below y0, the selection kept in view; returns it. */
static const struct row *draw_rows(struct top *t, int y0, const struct row **rows, size_t n,
				   bool by_vcpu)
{
	int height = LINES - y0 - 1;
	size_t sel = 0, first = 0;

	if (height < 1)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (by_vcpu ? rows[i]->vcpu == t->sel_vcpu :
			      rows[i]->pid == t->sel_pid && rows[i]->starttime == t->sel_start)
			sel = i;
	if (sel >= (size_t)height)
		first = sel - (size_t)height + 1;
	for (size_t i = first; i < n && (int)(i - first) < height; i++)
		draw_row(t, y0 + (int)(i - first), rows[i], i == sel);
	if (n == 0)
		return NULL;
	if (by_vcpu)
		t->sel_vcpu = rows[sel]->vcpu;
	else {
		t->sel_pid = rows[sel]->pid;
		t->sel_start = rows[sel]->starttime;
	}
	return rows[sel];
}

static void draw_status(const struct top *t, const char *hint)
{
	mvhline(LINES - 1, 0, ' ', COLS);
	put(LINES - 1, 0, t->message[0] ? t->message : hint, COLS);
}

static void draw_top_line(const struct top *t, const char *what)
{
	char right[64];

	snprintf(right, sizeof(right), "interval %us%s", t->interval,
		 t->paused ? "  PAUSED" : "");
	putf(0, 0, COLS, "%s", what);
	if (t->paused)
		attr(t, PAIR_PAUSED, A_BOLD, true);
	mvhline(0, COLS - (int)strlen(right) - 1 > 0 ? COLS - (int)strlen(right) - 1 : 0, ' ',
		(int)strlen(right) + 1);
	put(0, COLS - (int)strlen(right), right, (int)strlen(right));
	if (t->paused)
		attr(t, PAIR_PAUSED, A_BOLD, false);
}

static void draw_host(struct top *t)
{
	const struct row **rows = calloc(t->nvms + 1, sizeof(*rows));
	unsigned from[FROM_LIBVIRT + 1] = { 0 };
	size_t vcpus = 0, n, running = 0;
	double exits = 0;
	bool any_exits = false;
	char line[256], num[32];
	int len;

	if (!rows)
		return;
	for (size_t i = 0; i < t->nvms; i++) {
		const struct row *r = &t->vms[i];

		if (r->gone_at != 0)
			continue;
		running++;
		vcpus += r->nvcpus;
		if ((unsigned)r->source <= FROM_LIBVIRT)
			from[r->source]++;
	}
	/* Host exits/s: the catalog's "exits" column, whichever columns are shown. */
	for (size_t i = 0; i < host_nvms(t->host); i++) {
		struct col c = { .cat = &catalog_kvmstat_columns[0] };
		double v;

		if (vm_cell(t, &c, host_vm(t->host, i), &v)) {
			exits += v;
			any_exits = true;
		}
	}
	if (any_exits)
		fmt_num(num, sizeof(num), exits, 10);
	else
		snprintf(num, sizeof(num), "-");
	snprintf(line, sizeof(line), "kvmstat --top: host  sort: %s %s%s%s", sort_name(t),
		 t->sort_desc ? "desc" : "asc", t->vm_filter ? "  filter: " : "",
		 t->vm_filter ? t->vm_filter_text : "");
	draw_top_line(t, line);
	len = snprintf(line, sizeof(line), "%zu VMs  %zu vCPUs  %s exits/s  sources:",
		       running, vcpus, num);
	for (int s = FROM_FD; s <= FROM_LIBVIRT; s++)
		if (from[s] && len < (int)sizeof(line))
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %s %u",
					host_source_name((enum kvmstats_source)s), from[s]);
	putf(1, 0, COLS, "%s", line);
	draw_heading(t, 2, "VM");
	n = sorted_rows(t, t->vms, t->nvms, t->vm_filter, rows);
	draw_rows(t, 3, rows, n, false);
	if (n == 0)
		put(4, 2, host_nvms(t->host) ? "no VM matches the filter (f, then Enter on an "
			  "empty line, clears it)" : "no KVM VMs found (yet)", COLS - 2);
	draw_status(t, "Enter vCPUs  <> sort  R reverse  f filter  c columns  "
		    "+- interval  p pause  h help  q quit");
	free(rows);
}

static void draw_vm(struct top *t)
{
	const struct kvmstats_vm *vm = find_vm(t, t->sel_pid, t->sel_start);
	const struct row **rows = calloc(t->nvcpus_rows + 1, sizeof(*rows));
	char name[NAME_W * 4 + 1];
	size_t n;

	if (!rows)
		return;
	snprintf(name, sizeof(name), "kvmstat --top: VM  sort: %s %s", sort_name(t),
		 t->sort_desc ? "desc" : "asc");
	draw_top_line(t, name);
	if (vm) {
		safe_copy(name, sizeof(name), vm->name);
		putf(1, 0, COLS, "VM %s  pid %d  %zu vCPUs  vCPU source %s, VM-wide %s",
		     name, (int)vm->pid, vm->nvcpus,
		     vm->nvcpus ? host_source_name(vm->vcpus[0]->source) : "none",
		     host_source_name(vm->vm_source));
	} else {
		attr(t, PAIR_GONE, A_BOLD, true);
		putf(1, 0, COLS, "VM pid %d has exited (Esc: back)", (int)t->sel_pid);
		attr(t, PAIR_GONE, A_BOLD, false);
	}
	draw_heading(t, 2, "VCPU");
	n = sorted_rows(t, t->vcpus, t->nvcpus_rows, NULL, rows);
	draw_rows(t, 3, rows, n, true);
	draw_status(t, "Enter stats  Esc back  < > sort  R reverse  c columns  h help  q quit");
	free(rows);
}

/* A histogram as bars: one character per bucket, its height by its count. */
static void hist_bar(char *buf, int width, const uint64_t *v, const struct kvmstats_desc *d)
{
	static const char levels[] = " .:-=+*#";
	uint64_t max = 0;
	uint32_t last = 0;
	int n;

	for (uint32_t i = 0; i < d->size; i++) {
		if (v[d->index + i] > max)
			max = v[d->index + i];
		if (v[d->index + i])
			last = i + 1;
	}
	if (width > 250)
		width = 250;
	n = (int)last < width ? (int)last : width;
	buf[0] = '|';
	for (int i = 0; i < n; i++) {
		uint64_t c = v[d->index + i];

		buf[1 + i] = c == 0 ? '_' : levels[1 + (int)((c * 6) / max)];
	}
	buf[1 + n] = '|';
	buf[2 + n] = '\0';
}

/* A value in its unit: seconds and bytes scaled, the rest as counted. */
static void fmt_value(char *buf, size_t size, double raw, const struct kvmstats_desc *d)
{
	double v = d->known ? raw * decode_scale(d) : raw;
	char num[32];

	fmt_num(num, sizeof(num), v, 9);
	if (d->known && d->unit == KVM_STATS_UNIT_SECONDS)
		snprintf(buf, size, "%s s", num);
	else if (d->known && d->unit == KVM_STATS_UNIT_BYTES)
		snprintf(buf, size, "%s B", num);
	else if (d->known && d->unit == KVM_STATS_UNIT_CYCLES)
		snprintf(buf, size, "%s cyc", num);
	else
		snprintf(buf, size, "%s", num);
}

/*
 * One vCPU's every stat, grouped by the catalog's groups: per stat its rate
 * over the last interval (counters), its value (since the VMM started, or
 * since r), and for a histogram its buckets as a bar.
 */
static void draw_vcpu(struct top *t)
{
	const struct kvmstats_vm *vm = find_vm(t, t->sel_pid, t->sel_start);
	const struct kvmstats_vcpu *c = find_vcpu(vm, t->sel_vcpu);
	const struct statsfd *s = c ? c->stats : NULL;
	const struct baseline *b = NULL;
	double dt = t->t_cur - t->t_prev;
	int y = 3, height = LINES - 4;
	size_t line = 0;
	char name[NAME_W * 4 + 1];

	draw_top_line(t, "kvmstat --top: vCPU");
	if (!s) {
		attr(t, PAIR_GONE, A_BOLD, true);
		putf(1, 0, COLS, "vCPU %d of pid %d is gone (Esc: back)", t->sel_vcpu,
		     (int)t->sel_pid);
		attr(t, PAIR_GONE, A_BOLD, false);
		draw_status(t, "Esc back  q quit");
		return;
	}
	b = find_baseline(t, vm, c->id, s->schema);
	safe_copy(name, sizeof(name), vm->name);
	putf(1, 0, COLS, "vCPU %d of %s  pid %d  source %s  %s%s%s", c->id, name,
	     (int)vm->pid, host_source_name(c->source),
	     b ? "values since reset" : "values since start",
	     t->stat_filter ? "  filter: " : "", t->stat_filter ? t->stat_filter_text : "");
	attr(t, PAIR_HEAD, A_REVERSE, true);
	mvhline(2, 0, ' ', COLS);
	putf(2, 0, COLS, "%-28s %10s %14s  %s", "STAT", "RATE/s", "VALUE", "HISTOGRAM");
	attr(t, PAIR_HEAD, A_REVERSE, false);
	if (s->error)
		putf(1, COLS > 30 ? COLS - 30 : 0, 30, "  last read: %s", strerror(-s->error));
	for (int g = 0; g < CATALOG_NGROUPS; g++) {
		bool titled = false;

		for (uint32_t i = 0; i < s->schema->num_desc; i++) {
			const struct kvmstats_desc *d = &s->schema->desc[i];
			bool hist = d->type == KVM_STATS_TYPE_LINEAR_HIST ||
				    d->type == KVM_STATS_TYPE_LOG_HIST;
			char sname[DECODE_NAME_MAX + 1], rate[32] = "", value[48], bar[256];
			uint64_t cur;

			if ((int)catalog_group_of(d->name) != g ||
			    filter_match(t->stat_filter, d->name) != 1)
				continue;
			if (!titled) {
				if (line >= t->vcpu_scroll && y - 3 < height) {
					attr(t, PAIR_HEAD, A_BOLD, true);
					putf(y++, 0, COLS, "%s", catalog_group_title(g));
					attr(t, PAIR_HEAD, A_BOLD, false);
				}
				line++;
				titled = true;
			}
			if (line++ < t->vcpu_scroll || y - 3 >= height)
				continue;
			safe_copy(sname, sizeof(sname), d->name);
			cur = stat_sum(s->cur, d);
			if (cumulative_like(d) && s->samples >= 2 && dt > 0 && !s->error)
				fmt_num(rate, sizeof(rate), (double)(cur - stat_sum(s->prev, d)) / dt, 10);
			else if (cumulative_like(d))
				snprintf(rate, sizeof(rate), "-");
			if (b && cumulative_like(d) && !hist)
				cur -= stat_sum(b->values, d);
			if (hist) {
				snprintf(value, sizeof(value), "%llu", (unsigned long long)cur);
				hist_bar(bar, COLS - 58 > 0 ? COLS - 58 : 0, s->cur, d);
			} else {
				fmt_value(value, sizeof(value), (double)cur, d);
				bar[0] = '\0';
			}
			putf(y, 0, COLS, "  %-26.26s %10s %14s  ", sname, rate, value);
			if (bar[0]) {
				attr(t, PAIR_BAR, A_NORMAL, true);
				put(y, 56, bar, COLS - 56);
				attr(t, PAIR_BAR, A_NORMAL, false);
			}
			y++;
		}
	}
	if (t->vcpu_scroll >= line && line > 0)
		t->vcpu_scroll = line - 1;
	draw_status(t, "Up/Down PgUp/PgDn scroll  f filter stats  r reset  Esc back  h help  q quit");
}

static const char *const help_text[] = {
	"kvmstat --top keys (see kvmstat(1))",
	"",
	"  q            quit",
	"  h ?          this help; any key closes it",
	"  Enter Right  drill in: a VM's vCPUs, then a vCPU's every stat",
	"  Esc Bksp Left back out",
	"  Up Down PgUp PgDn Home End   move the selection, scroll",
	"  < >          sort by the column left / right",
	"  s            sort by a column, named at the prompt",
	"  R I          reverse the sort order",
	"  f /          filter VMs (a vCPU's stats) by name or /regex/;",
	"               an empty answer clears the filter",
	"  c            columns: stat names or kvmstat headings, separated",
	"               by spaces or commas; empty: the kvmstat columns",
	"  + -          longer / shorter interval",
	"  p space      pause / resume sampling",
	"  r            reset: vCPU values count from now",
	"",
	"Rates are per second over the last interval. A VM that exits is",
	"marked \"gone\", then dropped.",
};

static void draw_help(const struct top *t)
{
	size_t n = sizeof(help_text) / sizeof(help_text[0]);

	for (size_t i = 0; i < n && (int)i < LINES - 1; i++)
		put((int)i + 1, 2, help_text[i], COLS - 2);
	(void)t;
}

static void draw(struct top *t)
{
	erase();
	if (t->help)
		draw_help(t);
	else if (t->screen == SCREEN_HOST)
		draw_host(t);
	else if (t->screen == SCREEN_VM)
		draw_vm(t);
	else
		draw_vcpu(t);
	refresh();
}

/* --------------------------------------------------------------- input */

static void tell(struct top *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line on the status line, for MESSAGE_S. */
static void tell(struct top *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->message, sizeof(t->message), fmt, ap);
	va_end(ap);
	safe_copy(t->message, sizeof(t->message), t->message);
	t->message_at = now_s();
}

/* A line read at the bottom; false when Esc cancels. Printable ASCII only. */
static bool prompt(struct top *t, const char *question, char *buf, size_t size)
{
	size_t len = strlen(buf);

	curs_set(1);
	for (;;) {
		int ch;

		mvhline(LINES - 1, 0, ' ', COLS);
		putf(LINES - 1, 0, COLS, "%s%s", question, buf);
		refresh();
		ch = getch();
		if (stop_requested) {
			curs_set(0);
			return false;
		}
		if (ch == ERR || ch == KEY_RESIZE) {
			if (ch == KEY_RESIZE)
				draw(t);
			continue;
		}
		if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
			break;
		if (ch == 27) {
			curs_set(0);
			return false;
		}
		if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && len > 0)
			buf[--len] = '\0';
		else if (ch >= 0x20 && ch < 0x7f && len + 1 < size) {
			buf[len++] = (char)ch;
			buf[len] = '\0';
		}
	}
	curs_set(0);
	return true;
}

static void set_filter(struct top *t, bool stats)
{
	char *text = stats ? t->stat_filter_text : t->vm_filter_text;
	struct filter **f = stats ? &t->stat_filter : &t->vm_filter;
	char buf[80];
	struct filter *nf = NULL;

	snprintf(buf, sizeof(buf), "%s", *f ? text : "");
	if (!prompt(t, stats ? "filter stats (name or /regex/): " :
		       "filter VMs (name or /regex/): ", buf, sizeof(buf)))
		return;
	t->message[0] = '\0';
	if (buf[0]) {
		if (filter_new(&nf) < 0 || filter_add(nf, buf, false) < 0) {
			filter_free(nf);
			tell(t, "bad filter: a /regex/ that does not compile or is too complex");
			return;
		}
	}
	filter_free(*f);
	*f = nf;
	snprintf(text, sizeof(t->vm_filter_text), "%s", buf);
	if (stats)
		t->vcpu_scroll = 0;
}

/* c: columns by name; each a kvmstat heading or a stat name. */
static void set_columns(struct top *t)
{
	char buf[256] = "", *save = NULL;
	size_t n = 0;

	for (size_t i = 0; i < t->ncols && strlen(buf) + 70 < sizeof(buf); i++) {
		strcat(buf, i ? " " : "");
		strcat(buf, col_heading(&t->cols[i]));
	}
	if (!prompt(t, "columns: ", buf, sizeof(buf)))
		return;
	t->message[0] = '\0';
	for (char *w = strtok_r(buf, " ,", &save); w && n < MAX_COLS;
	     w = strtok_r(NULL, " ,", &save)) {
		struct col *c = &t->cols[n];

		memset(c, 0, sizeof(*c));
		for (size_t k = 0; k < catalog_kvmstat_ncolumns; k++)
			if (strcmp(w, catalog_kvmstat_columns[k].heading) == 0)
				c->cat = &catalog_kvmstat_columns[k];
		if (!c->cat) {
			if (decode_name_valid(w) != 1) {
				tell(t, "not a stat name: %.60s (letters, digits, _)", w);
				continue;
			}
			snprintf(c->stat, sizeof(c->stat), "%s", w);
		}
		c->width = (int)strlen(col_heading(c)) > STAT_W ?
			   (int)strlen(col_heading(c)) : STAT_W;
		n++;
	}
	if (n == 0) {
		for (; n < catalog_kvmstat_ncolumns && n < MAX_COLS; n++) {
			memset(&t->cols[n], 0, sizeof(t->cols[n]));
			t->cols[n].cat = &catalog_kvmstat_columns[n];
			t->cols[n].width = STAT_W;
		}
	}
	t->ncols = n;
	set_sort(t, 0);
}

/* s: the sort column by name (a heading, pid, name, vcpus). */
static void sort_by_name(struct top *t)
{
	char buf[DECODE_NAME_MAX + 1] = "";

	if (!prompt(t, "sort by (pid, name, vcpus or a column): ", buf, sizeof(buf)))
		return;
	if (strcmp(buf, "pid") == 0 || strcmp(buf, "PID") == 0)
		return set_sort(t, SORT_PID);
	if (strcmp(buf, "name") == 0 || strcmp(buf, "vcpu") == 0)
		return set_sort(t, SORT_NAME);
	if (strcmp(buf, "vcpus") == 0)
		return set_sort(t, SORT_VCPUS);
	for (size_t i = 0; i < t->ncols; i++)
		if (strcmp(buf, col_heading(&t->cols[i])) == 0)
			return set_sort(t, (int)i);
	tell(t, "no such column; c chooses the columns");
}

static size_t interval_index(unsigned interval)
{
	size_t i = 0;

	while (i + 1 < NINTERVALS && intervals[i] < interval)
		i++;
	return i;
}

/* Rows the current table shows, for moving the selection. */
static size_t visible(struct top *t, const struct row ***ret)
{
	bool vm = t->screen == SCREEN_VM;
	size_t n = vm ? t->nvcpus_rows : t->nvms;
	const struct row **rows = calloc(n + 1, sizeof(*rows));

	*ret = rows;
	if (!rows)
		return 0;
	return sorted_rows(t, vm ? t->vcpus : t->vms, n, vm ? NULL : t->vm_filter, rows);
}

static void move_sel(struct top *t, long by)
{
	const struct row **rows;
	size_t n, cur = 0;
	long to;

	if (t->screen == SCREEN_VCPU) {
		to = (long)t->vcpu_scroll + by;
		t->vcpu_scroll = to < 0 ? 0 : (size_t)to;
		return;
	}
	n = visible(t, &rows);
	for (size_t i = 0; i < n; i++)
		if (t->screen == SCREEN_VM ? rows[i]->vcpu == t->sel_vcpu :
		    rows[i]->pid == t->sel_pid && rows[i]->starttime == t->sel_start)
			cur = i;
	to = (long)cur + by;
	if (to < 0)
		to = 0;
	if (n && to >= (long)n)
		to = (long)n - 1;
	if (n && t->screen == SCREEN_VM)
		t->sel_vcpu = rows[to]->vcpu;
	else if (n) {
		t->sel_pid = rows[to]->pid;
		t->sel_start = rows[to]->starttime;
	}
	free(rows);
}

/* Returns false to quit. */
static bool key(struct top *t, int ch)
{
	long page = LINES > 6 ? LINES - 5 : 1;

	if (t->help) {
		t->help = false;
		return ch != 'q';
	}
	switch (ch) {
	case 'q':
		return false;
	case 'h':
	case '?':
	case KEY_F(1):
		t->help = true;
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
	case KEY_RIGHT:
		if (t->screen == SCREEN_HOST && find_vm(t, t->sel_pid, t->sel_start)) {
			t->screen = SCREEN_VM;
			t->sel_vcpu = -1;
			build_vcpus(t);
			move_sel(t, 0);
		} else if (t->screen == SCREEN_VM && t->nvcpus_rows > 0) {
			t->screen = SCREEN_VCPU;
			t->vcpu_scroll = 0;
		}
		break;
	case 27:
	case KEY_BACKSPACE:
	case 127:
	case 8:
	case KEY_LEFT:
		if (t->screen == SCREEN_VCPU)
			t->screen = SCREEN_VM;
		else if (t->screen == SCREEN_VM)
			t->screen = SCREEN_HOST;
		break;
	case KEY_UP:
		move_sel(t, -1);
		break;
	case KEY_DOWN:
		move_sel(t, 1);
		break;
	case KEY_PPAGE:
		move_sel(t, -page);
		break;
	case KEY_NPAGE:
		move_sel(t, page);
		break;
	case KEY_HOME:
		move_sel(t, -1000000);
		break;
	case KEY_END:
		move_sel(t, 1000000);
		break;
	case '<':
		set_sort(t, t->sort - 1);
		break;
	case '>':
		set_sort(t, t->sort + 1);
		break;
	case 'R':
	case 'I':
		t->sort_desc = !t->sort_desc;
		break;
	case 's':
		sort_by_name(t);
		break;
	case 'f':
	case '/':
		set_filter(t, t->screen == SCREEN_VCPU);
		break;
	case 'c':
		set_columns(t);
		build_vms(t, now_s());
		build_vcpus(t);
		break;
	case '+':
		t->interval = intervals[interval_index(t->interval) + 1 < NINTERVALS ?
					interval_index(t->interval) + 1 : NINTERVALS - 1];
		break;
	case '-': {
		size_t i = interval_index(t->interval);

		t->interval = intervals[i > 0 ? i - 1 : 0];
		break;
	}
	case 'p':
	case ' ':
		t->paused = !t->paused;
		break;
	case 'r':
		reset_baselines(t);
		break;
	default:
		break;
	}
	return true;
}

/* ---------------------------------------------------------------- loop */

static void say_news(const char *line, void *ctx)
{
	struct top *t = ctx;

	safe_copy(t->message, sizeof(t->message), line);
	t->message_at = now_s();
}

static void sample(struct top *t)
{
	struct kvmstats_scan_report rep;
	int r = host_rescan(t->host, &rep);

	if (t->message[0] && now_s() - t->message_at > MESSAGE_S)
		t->message[0] = '\0';
	scan_news(t->news, r, &rep, t->host, say_news, t);
	host_sample(t->host);
	t->t_prev = t->t_cur;
	t->t_cur = now_s();
	t->samples++;
	if (t->cols_from_filter)
		cols_from_filter(t);
	build_vms(t, t->t_cur);
	build_vcpus(t);
}

static void init_colors(struct top *t)
{
	/*
	 * https://no-color.org: no colour when NO_COLOR is set; here set at
	 * all, even empty, as the issue asks. Then only where the terminal
	 * says it has colours.
	 */
	t->color = !getenv("NO_COLOR") && has_colors();
	if (!t->color)
		return;
	start_color();
	use_default_colors();
	init_pair(PAIR_HEAD, COLOR_BLACK, COLOR_CYAN);
	init_pair(PAIR_SORT, COLOR_YELLOW, COLOR_CYAN);
	init_pair(PAIR_GONE, COLOR_RED, -1);
	init_pair(PAIR_PAUSED, COLOR_YELLOW, -1);
	init_pair(PAIR_BAR, COLOR_GREEN, -1);
}

int top_run(struct kvmstats_host *host, const struct top_config *cfg,
	    struct scan_said *news)
{
	struct top t = { .host = host, .cfg = cfg, .news = news,
			 .interval = cfg->interval ? cfg->interval : 1, .sel_vcpu = -1 };
	struct sigaction sa = { .sa_handler = on_stop };
	SCREEN *screen;
	double next;
	int status = 0;

	if (cfg->stat_filter) {
		t.cols_from_filter = true;
	} else {
		for (size_t i = 0; i < catalog_kvmstat_ncolumns && i < MAX_COLS; i++) {
			t.cols[i].cat = &catalog_kvmstat_columns[i];
			t.cols[i].width = STAT_W;
		}
		t.ncols = catalog_kvmstat_ncolumns < MAX_COLS ? catalog_kvmstat_ncolumns : MAX_COLS;
	}
	set_sort(&t, t.ncols ? 0 : SORT_NAME);
	/* Not initscr(): it exits when the terminal is unknown. */
	screen = newterm(NULL, stdout, stdin);
	if (!screen) {
		fprintf(stderr, "kvmstat: --top cannot drive this terminal (TERM=%s)\n",
			getenv("TERM") ? getenv("TERM") : "");
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	set_escdelay(25);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	/*
	 * No look for typeahead between the lines of an update: ncurses
	 * flushes its output at each look, a write(2) per changed line.
	 */
	typeahead(-1);
	/*
	 * ncurses 6.4 flushes its output at every cursor move until the
	 * screen has once come back from endwin() (its _endwin stays
	 * ewInitial): a write(2) per changed cell, the most of what the view
	 * cost. One endwin() and refresh() at the start, before anything is
	 * drawn, leave it buffering until each update's end.
	 */
	endwin();
	refresh();
	curs_set(0);
	init_colors(&t);
	/* kvmstat sampled once just before: no rate until the next sample. */
	t.t_cur = t.t_prev = now_s();
	if (t.cols_from_filter)
		cols_from_filter(&t);
	build_vms(&t, t.t_cur);
	move_sel(&t, 0);
	next = t.t_cur + t.interval;
	while (!stop_requested) {
		double now = now_s();
		int ch, wait_ms;

		if (now >= next) {
			if (!t.paused) {
				sample(&t);
				if (cfg->count && t.samples >= cfg->count)
					break;
			}
			next = now + t.interval;
		}
		draw(&t);
		wait_ms = (int)((next - now_s()) * 1000) + 1;
		timeout(wait_ms < 1 ? 1 : wait_ms);
		ch = getch();
		if (ch == ERR || ch == KEY_RESIZE)
			continue;
		if (!key(&t, ch))
			break;
		/* Interval changed: the next sample comes at last + interval. */
		if (ch == '+' || ch == '-')
			next = t.t_cur + t.interval;
	}
	endwin();
	delscreen(screen);
	filter_free(t.vm_filter);
	filter_free(t.stat_filter);
	baselines_free(&t);
	free(t.vms);
	free(t.vcpus);
	return status;
}
