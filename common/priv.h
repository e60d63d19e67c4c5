/* SPDX-License-Identifier: MIT */
/*
 * priv.h: the capabilities the core needs and no more (priv.c): the only code
 * that includes <sys/capability.h>.
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_PRIV_H
#define KVMSTATS_PRIV_H

#include <stdbool.h>

/* What the process may do, for an exact message once at start. */
struct priv_report {
	bool root;			/* effective uid 0 */
	bool sys_ptrace;		/* CAP_SYS_PTRACE permitted */
	bool dac_read_search;		/* CAP_DAC_READ_SEARCH permitted */
};

int priv_probe(struct priv_report *ret_report);

/*
 * For a process of our own (kvmstat, the Netdata plugin) only: keep just
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH permitted (those we have), none
 * effective or inheritable, no ambient, the bounding set reduced to them when
 * CAP_SETPCAP allows, and no_new_privs. Never call it inside collectd.
 */
int priv_restrict(void);

/* The effective set before priv_raise(), for priv_restore(). */
struct priv_saved {
	bool raised;
	bool had_ptrace;
	bool had_dac;
};

/*
 * Makes the acquisition capabilities effective in this thread (those that
 * are permitted) and remembers what was effective before, so that a
 * process whose other code relies on them (collectd as root) sees no change.
 */
int priv_raise(struct priv_saved *ret_saved);
int priv_restore(const struct priv_saved *saved);

#endif
