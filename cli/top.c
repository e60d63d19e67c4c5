/* SPDX-License-Identifier: MIT */
/*
 * top.c: kvmstat --top, a full-screen view in the manner of top(1), htop(1)
 * and Linux's kvm_stat: the host's VMs as rows, sorted by a column; Enter
 * drills into a VM (its vCPUs as rows) and into a vCPU (every stat it has,
 * with its rate and value, histograms as bars). Drawn with ncurses (X/Open
 * curses), so the terminal's own capabilities decide every escape sequence.
 *
 * This file: the loop and the keys. Data flows one way: the loop asks the
 * core to rescan and sample; the rows (top_rows.c) are then computed from
 * the samples the core holds (cur and prev of each statsfd) and the
 * catalog's columns and groups; the screens (top_draw.c) draw them; keys
 * change only what is shown. Names (VM names from command lines, stat names from peers) are
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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched_track.h"
#include "top_internal.h"

/* The intervals + and - step through, in seconds. */
static const unsigned intervals[] = { 1, 2, 3, 5, 10, 15, 30, 60, 120, 300 };
#define NINTERVALS (sizeof(intervals) / sizeof(intervals[0]))

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
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
	top_safe_copy(t->message, sizeof(t->message), t->message);
	t->message_at = top_now();
}

/* A line read at the bottom; false when Esc cancels. Printable ASCII only. */
static bool prompt(struct top *t, const char *question, char *buf, size_t size)
{
	size_t len = strlen(buf);

	curs_set(1);
	for (;;) {
		int ch;

		mvhline(LINES - 1, 0, ' ', COLS);
		top_putf(LINES - 1, 0, COLS, "%s%s", question, buf);
		refresh();
		ch = getch();
		if (stop_requested) {
			curs_set(0);
			return false;
		}
		if (ch == ERR || ch == KEY_RESIZE) {
			if (ch == KEY_RESIZE)
				top_draw(t);
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
		strcat(buf, top_col_heading(&t->cols[i]));
	}
	if (!prompt(t, "columns: ", buf, sizeof(buf)))
		return;
	t->message[0] = '\0';
	for (char *w = strtok_r(buf, " ,", &save); w && n < MAX_COLS;
	     w = strtok_r(NULL, " ,", &save)) {
		struct col *c = &t->cols[n];

		memset(c, 0, sizeof(*c));
		c->sched = top_sched_col_of(w);
		if (c->sched != COL_STAT && !t->cfg->sched) {
			tell(t, "no %s with --no-sched", w);
			continue;
		}
		for (size_t k = 0; c->sched == COL_STAT && k < catalog_kvmstat_ncolumns; k++)
			if (strcmp(w, catalog_kvmstat_columns[k].heading) == 0)
				c->cat = &catalog_kvmstat_columns[k];
		if (!c->cat && c->sched == COL_STAT) {
			if (decode_name_valid(w) != 1) {
				tell(t, "not a stat name: %.60s (letters, digits, _)", w);
				continue;
			}
			snprintf(c->stat, sizeof(c->stat), "%s", w);
		}
		c->width = (int)strlen(top_col_heading(c)) > STAT_W ?
			   (int)strlen(top_col_heading(c)) : STAT_W;
		n++;
	}
	t->ncols = n;
	if (n == 0)
		top_default_cols(t);
	top_set_sort(t, 0);
}

/* s: the sort column by name (a heading, pid, name, vcpus). */
static void sort_by_name(struct top *t)
{
	char buf[DECODE_NAME_MAX + 1] = "";

	if (!prompt(t, "sort by (pid, name, vcpus or a column): ", buf, sizeof(buf)))
		return;
	if (strcmp(buf, "pid") == 0 || strcmp(buf, "PID") == 0)
		return top_set_sort(t, SORT_PID);
	if (strcmp(buf, "name") == 0 || strcmp(buf, "vcpu") == 0)
		return top_set_sort(t, SORT_NAME);
	if (strcmp(buf, "vcpus") == 0)
		return top_set_sort(t, SORT_VCPUS);
	for (size_t i = 0; i < t->ncols; i++)
		if (strcmp(buf, top_col_heading(&t->cols[i])) == 0)
			return top_set_sort(t, (int)i);
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
	return top_sorted_rows(t, vm ? t->vcpus : t->vms, n, vm ? NULL : t->vm_filter, rows);
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
		if (t->screen == SCREEN_HOST && top_find_vm(t, t->sel_pid, t->sel_start)) {
			t->screen = SCREEN_VM;
			t->sel_vcpu = -1;
			top_build_vcpus(t);
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
		top_set_sort(t, t->sort - 1);
		break;
	case '>':
		top_set_sort(t, t->sort + 1);
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
		top_build_vms(t, top_now());
		top_build_vcpus(t);
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
		top_reset_baselines(t);
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

	top_safe_copy(t->message, sizeof(t->message), line);
	t->message_at = top_now();
}

static void sample(struct top *t)
{
	struct kvmstats_scan_report rep;
	int r = host_rescan(t->host, &rep);

	if (t->message[0] && top_now() - t->message_at > MESSAGE_S)
		t->message[0] = '\0';
	scan_news(t->news, r, &rep, t->host, say_news, t);
	host_sample(t->host);
	sched_track_all(t->host);
	t->t_prev = t->t_cur;
	t->t_cur = top_now();
	t->samples++;
	if (t->cols_from_filter)
		top_cols_from_filter(t);
	top_build_vms(t, t->t_cur);
	top_build_vcpus(t);
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

	if (cfg->stat_filter)
		t.cols_from_filter = true;
	else
		top_default_cols(&t);
	top_set_sort(&t, t.ncols ? 0 : SORT_NAME);
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
	t.t_cur = t.t_prev = top_now();
	if (t.cols_from_filter)
		top_cols_from_filter(&t);
	top_build_vms(&t, t.t_cur);
	move_sel(&t, 0);
	next = t.t_cur + t.interval;
	while (!stop_requested) {
		double now = top_now();
		int ch, wait_ms;

		if (now >= next) {
			if (!t.paused) {
				sample(&t);
				if (cfg->count && t.samples >= cfg->count)
					break;
			}
			next = now + t.interval;
		}
		top_draw(&t);
		wait_ms = (int)((next - top_now()) * 1000) + 1;
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
	top_baselines_free(&t);
	free(t.vms);
	free(t.vcpus);
	return status;
}

