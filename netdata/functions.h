/* SPDX-License-Identifier: MIT */
/*
 * functions.h: the plugin's Netdata Function "kvm-vms" (Netdata 1.37+
 * external plugin FUNCTION protocol): one row per VM by mapped guest
 * memory, the table of kvmstat --memory.
 */
#ifndef KVMSTATS_NETDATA_FUNCTIONS_H
#define KVMSTATS_NETDATA_FUNCTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvmstats.h"

#define FUNCTIONS_LINE_MAX 16384	/* Netdata's PLUGINSD_LINE_MAX */

struct functions {
	int fd;			/* Netdata's requests (stdin); -1: none, or EOF */
	int fd_flags;		/* its flags before functions_open() */
	char line[FUNCTIONS_LINE_MAX];
	size_t len;
	bool skipping;		/* inside a line too long to keep */
	unsigned update_every;	/* seconds: the exits/s interval */
};

/*
 * Reads requests from fd (made non-blocking; functions_close() restores
 * it). enabled false (Netdata before 1.37): fd is never read. -errno.
 */
int functions_open(struct functions *f, int fd, bool enabled, unsigned update_every);

/* The FUNCTION declaration, once at start (nothing when not enabled). */
void functions_declare(const struct functions *f, FILE *out);

/*
 * Sleeps until deadline_us (CLOCK_MONOTONIC microseconds), answering each
 * FUNCTION request that arrives meanwhile on out. Returns 1 as soon as it
 * answered any (flush out, then call again), 0 at the deadline.
 */
int functions_sleep(struct functions *f, uint64_t deadline_us,
		    struct kvmstats_host *host, FILE *out);

/*
 * Answers one request line ("FUNCTION <transaction> <timeout> \"kvm-vms
 * [sort:COLUMN] [info]\""): a table, or an error result with an HTTP status
 * (400 malformed, 404 unknown function). A line without a transaction id
 * has no one to answer: returns -EINVAL and writes nothing. Other lines
 * are ignored (0).
 */
int functions_handle_line(const struct functions *f, const char *line,
			  struct kvmstats_host *host, FILE *out);

void functions_close(struct functions *f);	/* accepts a zeroed struct */

#endif
