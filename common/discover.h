/* SPDX-License-Identifier: MIT */
/*
 * discover.h: the /proc walk that finds VMM processes and their KVM fds
 * (discover.c); the proc root is a parameter, so tests use a fake tree.
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_DISCOVER_H
#define KVMSTATS_DISCOVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum discover_fd_kind {
	DISCOVER_FD_VM,		/* anon_inode:kvm-vm */
	DISCOVER_FD_VCPU,	/* anon_inode:kvm-vcpu:N */
	DISCOVER_FD_VM_STATS,	/* anon_inode:kvm-vm-stats */
	DISCOVER_FD_VCPU_STATS,	/* anon_inode:kvm-vcpu-stats:N */
};

struct discover_fd {
	int fd;				/* number in the VMM */
	enum discover_fd_kind kind;
	int vcpu;			/* N for vCPU kinds, else -1 */
};

/* Where discover_proc.name came from, best first. */
enum discover_name_source {
	DISCOVER_NAME_NONE,	/* no name: shown by comm */
	DISCOVER_NAME_CMDLINE,	/* QEMU -name, Firecracker --id, lkvm --name */
	DISCOVER_NAME_CGROUP,	/* libvirt's machine in /proc/PID/cgroup */
	DISCOVER_NAME_PVE,	/* Proxmox VE config of the VM's -id */
};

/* A process that holds at least one anon_inode:kvm-vm fd. */
struct discover_proc {
	pid_t pid;
	uint64_t starttime;	/* /proc/PID/stat field 22: pid + this = identity */
	char comm[17];
	char *name;		/* NULL if none; untrusted */
	enum discover_name_source name_source;
	char *uuid;		/* from the command line, NULL if none; untrusted */
	size_t nfds;
	struct discover_fd *fds;	/* sorted by fd */
};

/*
 * Reads one process under proc_root ("/proc", or a fake tree in tests).
 * Returns 1 and *ret_proc if it holds a kvm-vm fd, 0 if not (ret_proc
 * untouched). The caller frees the result with discover_proc_free().
 * -ESRCH: gone. -EACCES/-EPERM: no right to list its fds. -ENOMEM.
 */
int discover_process(const char *proc_root, pid_t pid,
		     struct discover_proc **ret_proc);

void discover_proc_free(struct discover_proc *p);	/* accepts NULL */

/* The name a VM is shown by: name (see name_source), else comm. */
const char *discover_proc_name(const struct discover_proc *p);

/* What a scan could not look at, for a front end to explain once. */
struct discover_stats {
	unsigned scanned;	/* processes looked at */
	unsigned denied;	/* fd directory not readable (-EACCES/-EPERM) */
	unsigned vanished;	/* exited during the scan */
	unsigned failed;	/* could not be read for another reason: skipped */
	int failed_error;	/* the first such -errno */
};

/*
 * Walks every numeric directory of proc_root and calls cb for each process
 * holding a kvm-vm fd. cb borrows p; a negative return from cb stops the
 * walk and is returned. Returns the number of VMM processes found.
 * A process that cannot be read (gone, denied, or any other error but
 * -ENOMEM) is counted in ret_stats and skipped: one odd process must not
 * hide the VMs after it.
 * -ENOENT/-EACCES: proc_root itself unreadable. -ENOMEM.
 */
int discover_scan(const char *proc_root,
		  int (*cb)(const struct discover_proc *p, void *ctx),
		  void *ctx, struct discover_stats *ret_stats);

/*
 * How many fds PID has open: the size of /proc/PID/fd (Linux >= 6.2; 0 on
 * older kernels, where the caller cannot tell). -ESRCH: gone.
 */
int discover_fd_count(const char *proc_root, pid_t pid);

/* /proc/PID/stat field 22 of one process. -ESRCH: gone. -EBADMSG. */
int discover_starttime(const char *proc_root, pid_t pid, uint64_t *ret);

#endif
