/* SPDX-License-Identifier: MIT */
/*
 * acquire.h: pidfds of VMMs and copies of the stats fds they hold (acquire.c).
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_ACQUIRE_H
#define KVMSTATS_ACQUIRE_H

#include <stdint.h>
#include <sys/types.h>

/*
 * Opens a pidfd for pid and checks that the process still has starttime,
 * so a reused pid is never mistaken for the VMM that was discovered.
 * Returns the pidfd (O_CLOEXEC). -ESRCH: gone or a different process.
 */
int acquire_pidfd(const char *proc_root, pid_t pid, uint64_t starttime);

/*
 * Duplicates fd number target_fd of the process behind pidfd and checks
 * that the copy is a KVM stats fd of the expected kind (vcpu < 0: the VM
 * stats fd, else kvm-vcpu-stats:vcpu). Returns the new fd (O_CLOEXEC).
 * -ESRCH: process gone. -EBADF: fd closed meanwhile. -ESTALE: the number
 * now names something else. -EPERM: not allowed (CAP_SYS_PTRACE missing).
 */
int acquire_stats_fd(int pidfd, int target_fd, int vcpu);

/* 1 when the process behind pidfd has exited (its pidfd polls readable). */
int acquire_exited(int pidfd);

/*
 * Raises this process's soft RLIMIT_NOFILE to its hard limit: every stats
 * fd held counts against it, and 1024 (systemd's default soft limit) is a
 * host of 200 VMs. For processes of our own (kvmstat, the Netdata plugin),
 * which use no select(); a plugin inside someone else's daemon leaves the
 * daemon's limits alone. Returns the new soft limit, or -errno.
 */
int acquire_raise_nofile(void);

#endif
