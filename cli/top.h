/* SPDX-License-Identifier: MIT */
/*
 * top.h: kvmstat --top, the full-screen view (top.c, ncurses): one row per
 * VM sorted by a column, drilled into a VM's vCPUs and into one vCPU's
 * stats. The core samples; the view only renders what it sampled.
 */
#ifndef KVMSTAT_TOP_H
#define KVMSTAT_TOP_H

#include "filter.h"
#include "kvmstats.h"
#include "news.h"

struct top_config {
	unsigned interval;		/* seconds, the first; + and - change it */
	unsigned long count;		/* samples before leaving; 0: until q */
	/* -s: the columns are the stats that pass it; NULL: kvmstat's columns. */
	const struct filter *stat_filter;
	/* run% and wait% are among the columns (not with --no-sched). */
	bool sched;
};

/*
 * Runs the view on the terminal of stdin/stdout until q (or count
 * samples, or SIGINT/SIGTERM), then restores the terminal. host has been
 * rescanned and sampled once; news carries what the front end has said so
 * far (later news goes to the view's status line, not to stderr).
 * Returns the exit status: 0, or 1 when the terminal cannot be driven.
 */
int top_run(struct kvmstats_host *host, const struct top_config *cfg,
	    struct scan_said *news);

#endif
