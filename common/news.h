/* SPDX-License-Identifier: MIT */
/*
 * news.h: what a front end should say about a rescan, said once per change
 * (news.c).
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_NEWS_H
#define KVMSTATS_NEWS_H

#include <sys/types.h>
#include "kvmstats.h"

/* What scan_news() said last; zero-initialize. */
struct scan_said {
	int rescan_error;
	int failed_error;
	unsigned unread_vms, unread_fds;
	int unread_error;
	pid_t unread_pid;
	int libvirt_error;	/* the libvirt source's state last said */
	unsigned vms_over, fds_over;	/* the fd budget's */
	struct kvmstats_fd_over over[KVMSTATS_OVER_MAX];
	struct {		/* the QMP sockets last said to fail */
		char path[108];
		pid_t pid;
		int error;	/* -ETIMEDOUT for every "no answer in time" */
	} qmp[KVMSTATS_QMP_STUCK_MAX];
	unsigned nqmp;
	unsigned qmp_more;	/* failing sockets beyond those */
};

/*
 * Calls say() with each line worth saying about a rescan that returned r
 * (and, when r >= 0, filled rep): a failed rescan, processes skipped for an
 * error, stats fds a VMM holds that could not be taken, each VMM over its
 * share of the fd budget (by name and pid), QMP sockets that did not
 * answer. Each state is said once, and again only when it changes or
 * clears. Then, once per VM and
 * source, the stat names that source gave which were left out (not C
 * identifiers, decode_name_valid()), with the first of them escaped. The
 * line has no prefix and no newline.
 */
void scan_news(struct scan_said *said, int r,
	       const struct kvmstats_scan_report *rep, struct kvmstats_host *host,
	       void (*say)(const char *line, void *ctx), void *ctx);

#endif
