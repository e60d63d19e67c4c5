/* SPDX-License-Identifier: MIT */
/*
 * functions.h: the plugin's Netdata Function "kvm-vms" (Netdata 1.37+
 * external plugin FUNCTION protocol, and the fields Netdata 2.x adds):
 * one row per VM by mapped guest memory, the table of kvmstat --memory.
 */
#ifndef KVMSTATS_NETDATA_FUNCTIONS_H
#define KVMSTATS_NETDATA_FUNCTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvmstats.h"

#define FUNCTIONS_LINE_MAX 16384	/* Netdata's PLUGINSD_LINE_MAX */
#define FUNCTIONS_PAYLOAD_MAX 65536	/* a FUNCTION_PAYLOAD body; the UI's are < 1 KiB */
#define FUNCTIONS_TRANSACTION_MAX 64
#define FUNCTIONS_REQUEST_MAX 1024	/* "kvm-vms <params>" of a payload call */

/* What the plugin speaks: chosen from NETDATA_VERSION by the caller. */
enum functions_dialect {
	FUNCTIONS_NONE,		/* Netdata before 1.37: no FUNCTION at all */
	FUNCTIONS_V1,		/* 1.37: the declaration and answers of 1.37 */
	FUNCTIONS_V2,		/* 2.x: tags, access, priority; Functions v3 tables */
};

/* A FUNCTION_PAYLOAD call between its first line and FUNCTION_PAYLOAD_END. */
struct functions_payload {
	enum { PAYLOAD_IDLE, PAYLOAD_BODY, PAYLOAD_DISCARD } state;
	bool overflow;		/* the body passed FUNCTIONS_PAYLOAD_MAX */
	bool json;		/* its content type is application/json */
	char transaction[FUNCTIONS_TRANSACTION_MAX + 1];
	char request[FUNCTIONS_REQUEST_MAX];
	uint64_t deadline_us;	/* CLOCK_MONOTONIC: answered by then, END or not */
	size_t len;
	char body[FUNCTIONS_PAYLOAD_MAX];
};

struct functions {
	int fd;			/* Netdata's requests (stdin); -1: none, or EOF */
	int fd_flags;		/* its flags before functions_open() */
	enum functions_dialect dialect;
	char line[FUNCTIONS_LINE_MAX];
	size_t len;
	bool skipping;		/* inside a line too long to keep */
	unsigned update_every;	/* seconds: the exits/s interval */
	struct functions_payload payload;
};

/*
 * Reads requests from fd (made non-blocking; functions_close() restores
 * it). FUNCTIONS_NONE: fd is never read. -errno.
 */
int functions_open(struct functions *f, int fd, enum functions_dialect dialect,
		   unsigned update_every);

/* The FUNCTION declaration, once at start (nothing for FUNCTIONS_NONE). */
void functions_declare(const struct functions *f, FILE *out);

/*
 * Sleeps until deadline_us (CLOCK_MONOTONIC microseconds), answering each
 * call that arrives meanwhile on out (and a payload call whose timeout
 * passes). Returns 1 as soon as it answered any (flush out, then call
 * again), 0 at the deadline.
 */
int functions_sleep(struct functions *f, uint64_t deadline_us,
		    struct kvmstats_host *host, FILE *out);

/*
 * Takes one line from Netdata:
 *   FUNCTION <transaction> <timeout> "kvm-vms [sort:COLUMN] [info]" ["<access>" "<source>" ...]
 *   FUNCTION_PAYLOAD <transaction> <timeout> "kvm-vms" "<access>" "<source>" "<content type>"
 *     then the body lines, then FUNCTION_PAYLOAD_END
 *   FUNCTION_CANCEL <transaction>, FUNCTION_PROGRESS <transaction>
 * Each call gets a table or an error result with an HTTP status (400
 * malformed, 403 access lacks what the declaration asks, 404 unknown
 * function, 408 payload unfinished at its timeout, 413 payload too large,
 * 415 payload not JSON, 499 cancelled). A call without a usable
 * transaction id has no one to answer: -EINVAL, nothing written. Other
 * lines are ignored (0). now_us: CLOCK_MONOTONIC microseconds.
 */
int functions_handle_line(struct functions *f, const char *line, uint64_t now_us,
			  struct kvmstats_host *host, FILE *out);

void functions_close(struct functions *f);	/* accepts a zeroed struct */

#endif
