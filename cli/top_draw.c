/* SPDX-License-Identifier: MIT */
/*
 * top_draw.c: the screens of kvmstat --top (host, VM, vCPU, help), drawn
 * with ncurses from the rows top_rows.c made. Every screen fits 80x24 and
 * uses what more the terminal has; every name drawn went through
 * top_safe_copy() (no byte outside printable ASCII reaches the terminal).
 */
#include <curses.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "top_internal.h"

/* Draws at most width bytes of s (already safe) at y, x. */
static void put(int y, int x, const char *s, int width)
{
	if (y < 0 || y >= LINES || x < 0 || x >= COLS || width <= 0)
		return;
	if (x + width > COLS)
		width = COLS - x;
	mvaddnstr(y, x, s, width);
}

void top_putf(int y, int x, int width, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	top_safe_copy(buf, sizeof(buf), buf);
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

static void attr(const struct top *t, enum pair pair, attr_t fallback, bool on)
{
	attr_t a = t->color ? (attr_t)COLOR_PAIR(pair) | (pair == PAIR_HEAD ? A_BOLD : 0) : fallback;

	if (on)
		attron((int)a);
	else
		attroff((int)a);
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
	top_putf(y, 0, COLS, "%7s %-*s %5s %-4s", "PID", NAME_W, first,
	     t->screen == SCREEN_HOST ? "VCPUS" : "", "SRC");
	x = 7 + 1 + NAME_W + 1 + 5 + 1 + 4;
	n = table_cols_fit(t, x);
	for (int c = 0; c < n; c++) {
		char h[DECODE_NAME_MAX + 2];

		top_safe_copy(h, sizeof(h), top_col_heading(&t->cols[c]));
		if (c == t->sort)
			attr(t, PAIR_SORT, A_BOLD | A_UNDERLINE, true);
		top_putf(y, x + 1, t->cols[c].width, "%*.*s", t->cols[c].width,
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
	top_putf(y, 0, COLS, "%7d %-*s %5s %-4.4s", (int)r->pid, NAME_W, first,
	     r->gone_at != 0 ? "gone" : "", host_source_name(r->source));
	if (r->gone_at == 0 && r->vcpu < 0)
		top_putf(y, 7 + 1 + NAME_W + 1, 5, "%5zu", r->nvcpus);
	for (int c = 0; c < n; c++) {
		if (r->have[c] && t->cols[c].sched != COL_STAT)
			snprintf(num, sizeof(num), "%.1f", r->val[c]);	/* a percentage */
		else if (r->have[c])
			fmt_num(num, sizeof(num), r->val[c], t->cols[c].width);
		else
			snprintf(num, sizeof(num), "-");
		top_putf(y, x + 1, t->cols[c].width, "%*s", t->cols[c].width, num);
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
	top_putf(0, 0, COLS, "%s", what);
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

		if (top_vm_cell(t, &c, host_vm(t->host, i), &v)) {
			exits += v;
			any_exits = true;
		}
	}
	if (any_exits)
		fmt_num(num, sizeof(num), exits, 10);
	else
		snprintf(num, sizeof(num), "-");
	snprintf(line, sizeof(line), "kvmstat --top: host  sort: %s %s%s%s", top_sort_name(t),
		 t->sort_desc ? "desc" : "asc", t->vm_filter ? "  filter: " : "",
		 t->vm_filter ? t->vm_filter_text : "");
	draw_top_line(t, line);
	len = snprintf(line, sizeof(line), "%zu VMs  %zu vCPUs  %s exits/s  sources:",
		       running, vcpus, num);
	for (int s = FROM_FD; s <= FROM_LIBVIRT; s++)
		if (from[s] && len < (int)sizeof(line))
			len += snprintf(line + len, sizeof(line) - (size_t)len, " %s %u",
					host_source_name((enum kvmstats_source)s), from[s]);
	top_putf(1, 0, COLS, "%s", line);
	draw_heading(t, 2, "VM");
	n = top_sorted_rows(t, t->vms, t->nvms, t->vm_filter, rows);
	draw_rows(t, 3, rows, n, false);
	if (n == 0)
		put(4, 2, host_nvms(t->host) ? "no VM matches the filter (f, then Enter on an "
			  "empty line, clears it)" : "no KVM VMs found (yet)", COLS - 2);
	draw_status(t, "q quit  h help  Enter vCPUs  <> sort  f filter  "
		    "c columns  +- interval  p pause");
	free(rows);
}

static void draw_vm(struct top *t)
{
	const struct kvmstats_vm *vm = top_find_vm(t, t->sel_pid, t->sel_start);
	const struct row **rows = calloc(t->nvcpus_rows + 1, sizeof(*rows));
	char name[NAME_W * 4 + 1];
	size_t n;

	if (!rows)
		return;
	snprintf(name, sizeof(name), "kvmstat --top: VM  sort: %s %s", top_sort_name(t),
		 t->sort_desc ? "desc" : "asc");
	draw_top_line(t, name);
	if (vm) {
		top_safe_copy(name, sizeof(name), vm->name);
		top_putf(1, 0, COLS, "VM %s  pid %d  %zu vCPUs  vCPU source %s, VM-wide %s",
		     name, (int)vm->pid, vm->nvcpus,
		     vm->nvcpus ? host_source_name(vm->vcpus[0]->source) : "none",
		     host_source_name(vm->vm_source));
	} else {
		attr(t, PAIR_GONE, A_BOLD, true);
		top_putf(1, 0, COLS, "VM pid %d has exited (Esc: back)", (int)t->sel_pid);
		attr(t, PAIR_GONE, A_BOLD, false);
	}
	draw_heading(t, 2, "VCPU");
	n = top_sorted_rows(t, t->vcpus, t->nvcpus_rows, NULL, rows);
	draw_rows(t, 3, rows, n, true);
	draw_status(t, "q quit  h help  Enter stats  Esc back  <> sort  R reverse  c columns");
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
	const struct kvmstats_vm *vm = top_find_vm(t, t->sel_pid, t->sel_start);
	const struct kvmstats_vcpu *c = top_find_vcpu(vm, t->sel_vcpu);
	const struct statsfd *s = c ? c->stats : NULL;
	const struct baseline *b = NULL;
	double dt = t->t_cur - t->t_prev;
	int y = 3, height = LINES - 4;
	size_t line = 0;
	char name[NAME_W * 4 + 1];

	draw_top_line(t, "kvmstat --top: vCPU");
	if (!s) {
		attr(t, PAIR_GONE, A_BOLD, true);
		top_putf(1, 0, COLS, "vCPU %d of pid %d is gone (Esc: back)", t->sel_vcpu,
		     (int)t->sel_pid);
		attr(t, PAIR_GONE, A_BOLD, false);
		draw_status(t, "Esc back  q quit");
		return;
	}
	b = top_find_baseline(t, vm, c->id, s->schema);
	top_safe_copy(name, sizeof(name), vm->name);
	top_putf(1, 0, COLS, "vCPU %d of %s  pid %d  source %s  %s%s%s", c->id, name,
	     (int)vm->pid, host_source_name(c->source),
	     b ? "values since reset" : "values since start",
	     t->stat_filter ? "  filter: " : "", t->stat_filter ? t->stat_filter_text : "");
	attr(t, PAIR_HEAD, A_REVERSE, true);
	mvhline(2, 0, ' ', COLS);
	top_putf(2, 0, COLS, "%-28s %10s %14s  %s", "STAT", "RATE/s", "VALUE", "HISTOGRAM");
	attr(t, PAIR_HEAD, A_REVERSE, false);
	if (s->error)
		top_putf(1, COLS > 30 ? COLS - 30 : 0, 30, "  last read: %s", strerror(-s->error));
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
					top_putf(y++, 0, COLS, "%s", catalog_group_title(g));
					attr(t, PAIR_HEAD, A_BOLD, false);
				}
				line++;
				titled = true;
			}
			if (line++ < t->vcpu_scroll || y - 3 >= height)
				continue;
			top_safe_copy(sname, sizeof(sname), d->name);
			cur = top_stat_sum(s->cur, d);
			if (top_cumulative_like(d) && s->samples >= 2 && dt > 0 && !s->error)
				fmt_num(rate, sizeof(rate), (double)(cur - top_stat_sum(s->prev, d)) / dt, 10);
			else if (top_cumulative_like(d))
				snprintf(rate, sizeof(rate), "-");
			if (b && top_cumulative_like(d) && !hist)
				cur -= top_stat_sum(b->values, d);
			if (hist) {
				snprintf(value, sizeof(value), "%llu", (unsigned long long)cur);
				hist_bar(bar, COLS - 58 > 0 ? COLS - 58 : 0, s->cur, d);
			} else {
				fmt_value(value, sizeof(value), (double)cur, d);
				bar[0] = '\0';
			}
			top_putf(y, 0, COLS, "  %-26.26s %10s %14s  ", sname, rate, value);
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
	draw_status(t, "q quit  h help  Esc back  Up/Down PgUp/PgDn scroll  f filter stats  r reset");
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
	"Rates are per second over the last interval. run% and wait%: the",
	"vCPU threads on a CPU and runnable waiting for one, % of one CPU",
	"(a VM: its vCPUs' sum). A VM that exits is marked \"gone\", then",
	"dropped.",
};

static void draw_help(const struct top *t)
{
	size_t n = sizeof(help_text) / sizeof(help_text[0]);

	for (size_t i = 0; i < n && (int)i < LINES - 1; i++)
		put((int)i + 1, 2, help_text[i], COLS - 2);
	(void)t;
}

void top_draw(struct top *t)
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

