/* SPDX-License-Identifier: MIT */
/*
 * host_internal.h: what host.c and rescan.c share about the host. Not for
 * front ends (they include kvmstats.h only), nor for sources (source.h).
 */
#ifndef KVMSTATS_HOST_INTERNAL_H
#define KVMSTATS_HOST_INTERNAL_H

#include "sources/source.h"

struct kvmstats_host {
	struct source_env env;	/* the VM table and settings the sources are lent */
	char *proc_root;
	struct kvmstats_hooks hooks;
	void *ctx;
	int epfd;		/* epoll set of the VMMs' pidfds, for host_reap() */
	int uevfd;		/* KVM's uevents (uevent.c); -1: walk /proc every rescan */
	uint64_t walked_at;	/* CLOCK_MONOTONIC µs of the last /proc walk; 0: none */
	struct host_pending *pending;	/* VM creators to look at again */
	size_t npending;
	uint64_t generation;
	struct kvmstats_scan_report *report;	/* during a rescan only */
};

/* Removes host->env.vms[i]: vm_removed hook, then host_free_vm(). */
void host_remove_vm(struct kvmstats_host *host, size_t i);
/* Releases hv from every source and frees it; for a VM not (or no longer) in the table. */
void host_free_vm(struct kvmstats_host *host, struct host_vm *hv);
/*
 * Says what the sources changed: vcpu_added for new vCPUs, vm_changed for
 * new VM-wide sources, of VMs already announced.
 */
void host_announce(struct kvmstats_host *host);

#endif
