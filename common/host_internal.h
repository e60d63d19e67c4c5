/*
 * host_internal.h: what host.c and sources.c share about the host's VM
 * table. Not for front ends: they include kvmstats.h only.
 */
#ifndef KVMSTATS_HOST_INTERNAL_H
#define KVMSTATS_HOST_INTERNAL_H


#include "kvmstats.h"

/* Stats fds held at most, unless a front end says otherwise (~2.5 KiB each). */
#define HOST_DEFAULT_MAX_FDS 4096

/* A VM with what only the core needs to know about it. */
struct host_vm {
	struct kvmstats_vm pub;
	uint64_t seen;		/* host->generation of the last scan that saw it */
	int nfds;		/* its VMM's fd count when last listed; -1: unknown */
	bool announced;		/* vm_added was called */
	/*
	 * Stats fds its VMM held at the last listing that we could not take,
	 * and why (-errno): looked at again at every rescan until taken.
	 */
	unsigned unread;
	int unread_error;
	unsigned unread_tries;	/* listings in a row that left some unread */
	struct debugfs_vm *debugfs;
	size_t debugfs_nvcpus;	/* vCPUs when debugfs was opened for it */
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
	int uevfd;		/* KVM's uevents (uevent.c); -1: walk /proc every rescan */
	uint64_t walked_at;	/* CLOCK_MONOTONIC µs of the last /proc walk; 0: none */
	struct host_pending *pending;	/* VM creators to look at again */
	size_t npending;
	size_t held, max_fds;	/* stats fds held, and the most we take */
	size_t fd_room;		/* this rescan's cap: max_fds, or less near RLIMIT_NOFILE */
	struct statsfd_batch batch;	/* what host_sample() reads */
	bool batch_stale;	/* the table changed since batch was built */
	uint64_t generation;
	struct kvmstats_scan_report *report;	/* during a rescan only */
	/* Sources besides held fds (host_set_sources). */
	bool no_fds;
	char **qmp;
	size_t nqmp;
	int qmp_timeout_ms;
	char *debugfs;
	uint64_t debugfs_every_us;	/* 0: every sample */
	uint64_t debugfs_due_us;	/* CLOCK_MONOTONIC µs of the next read */
	uint64_t *scratch;	/* debugfs values, scratch_len slots */
	size_t scratch_len;
};

/* Removes host->vms[i]: vm_removed hook, then host_free_vm(). */
void host_remove_vm(struct kvmstats_host *host, size_t i);
/* Closes hv's fds and frees it; for a VM not (or no longer) in the table. */
void host_free_vm(struct kvmstats_host *host, struct host_vm *hv);

/* Inserts c into vm's vCPUs, keeping them sorted by id, then fd. */
int host_insert_vcpu(struct kvmstats_vm *vm, struct kvmstats_vcpu *c);

/* sources.c: QMP and debugfs, attached at a rescan, read at a sample. */
void sources_attach_qmp(struct kvmstats_host *host, struct kvmstats_scan_report *rep);
void sources_attach_debugfs(struct kvmstats_host *host, struct kvmstats_scan_report *rep);
void sources_sample(struct kvmstats_host *host);

#endif
