/* SPDX-License-Identifier: MIT */
/*
 * memview.h: "which VMs are cheap to live-migrate": one row per VM with the
 * guest memory KVM has mapped (pages_4k/2m/1g), the RAM its VMM was told to
 * give it, its vCPUs and exit rate. Shared by kvmstat --memory and the
 * Netdata plugin's kvm-vms function.
 */
#ifndef KVMSTATS_MEMVIEW_H
#define KVMSTATS_MEMVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvmstats.h"

struct memview_row {
	pid_t pid;
	char *name;		/* a copy of vm->name; untrusted bytes */
	bool have_pages;	/* pages_* and mapped_bytes are known */
	uint64_t pages_4k, pages_2m, pages_1g;
	uint64_t mapped_bytes;
	bool have_ram;		/* ram_bytes from the VMM's command line */
	uint64_t ram_bytes;
	size_t vcpus;
	bool have_rate;		/* exits_per_sec: two samples seen */
	double exits_per_sec;
};

struct memview {
	struct memview_row *rows;	/* sorted: mapped bytes, largest first */
	size_t nrows;
};

/*
 * The guest RAM a VMM's command line (/proc/PID/cmdline bytes, NUL
 * separated) configures: QEMU's "-m SIZE" or "-m size=SIZE,..." (as
 * libvirt writes it, "-m size=4194304k"), kvmtool's "-m"/"--mem MiB".
 * A size without a suffix is MiB, as QEMU's qemu_strtosz_MiB() takes it.
 * -ENOENT: no such option. -EINVAL: a value that is not a size.
 */
int memview_cmdline_ram(const char *cmdline, size_t len, uint64_t *ret_bytes);

/*
 * One row per VM of host, from its last two samples (exits/s over
 * interval_s seconds), its configured RAM read from
 * <proc_root>/<pid>/cmdline. The caller frees it with memview_free().
 * -ENOMEM.
 */
int memview_collect(struct kvmstats_host *host, const char *proc_root,
		    double interval_s, struct memview *ret_view);

void memview_free(struct memview *view);	/* accepts a zeroed view */

/* The share of the configured RAM that is mapped, in percent; <0 unknown. */
double memview_mapped_percent(const struct memview_row *row);

#endif
