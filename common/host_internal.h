/*
 * host_internal.h: what host.c and sources.c share about the host's VM
 * table. Not for front ends: they include kvmstats.h only.
 */
#ifndef KVMSTATS_HOST_INTERNAL_H
#define KVMSTATS_HOST_INTERNAL_H


#include "kvmstats.h"

/* A VM with what only the core needs to know about it. */
struct host_vm {
	struct kvmstats_vm pub;
	uint64_t seen;		/* host->generation of the last scan that saw it */
	bool announced;		/* vm_added was called */
	struct debugfs_vm *debugfs;
};

struct kvmstats_host {
	char *proc_root;
	bool raise_priv;
	struct kvmstats_hooks hooks;
	void *ctx;
	struct statsfd_cache *cache;	/* schemas of held stats fds */
	struct statsfd_cache *vcache;	/* schemas made from QMP and debugfs */
	struct host_vm **vms;
	size_t nvms, cap;
	int epfd;		/* epoll set of the VMMs' pidfds, for host_reap() */
	uint64_t generation;
	struct kvmstats_scan_report *report;	/* during a rescan only */
	/* Sources besides held fds (host_set_sources). */
	bool no_fds;
	char **qmp;
	size_t nqmp;
	int qmp_timeout_ms;
	char *debugfs;
	uint64_t *scratch;	/* debugfs values, scratch_len slots */
	size_t scratch_len;
};

/* Inserts c into vm's vCPUs, keeping them sorted by id, then fd. */
int host_insert_vcpu(struct kvmstats_vm *vm, struct kvmstats_vcpu *c);

/* sources.c: QMP and debugfs, attached at a rescan, read at a sample. */
void sources_attach_qmp(struct kvmstats_host *host, struct kvmstats_scan_report *rep);
void sources_attach_debugfs(struct kvmstats_host *host, struct kvmstats_scan_report *rep);
void sources_sample(struct kvmstats_host *host);

#endif
