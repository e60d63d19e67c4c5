/* SPDX-License-Identifier: MIT */
/*
 * sched.h: the host threads that run a VM's vCPUs and their scheduler
 * counters (sched.c). Not a source of KVM stats: it runs beside them, at
 * every rescan (finding threads) and sample (one pread per vCPU thread),
 * and fills kvmstats_vcpu.sched/.sched_total and kvmstats_vm.sched_vcpus,
 * .other_run_ns, .sched_known.
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_SCHED_H
#define KVMSTATS_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "source.h"

/* How a vCPU's thread was found, weakest first. */
enum sched_how {
	SCHED_HOW_NONE,
	SCHED_HOW_NAME,		/* its comm is QEMU's "CPU N/KVM", nothing says otherwise */
	SCHED_HOW_SYSCALL,	/* seen in ioctl(<the vCPU's fd>, KVM_RUN) */
};

/*
 * One text of /proc/<pid>/task/<tid>/schedstat: "<run ns> <wait ns>
 * <timeslices>\n", three decimal u64, nothing else. -EBADMSG otherwise.
 */
int sched_parse_schedstat(const char *buf, size_t len,
			  struct kvmstats_sched_total *ret);

/*
 * One text of /proc/<pid>/task/<tid>/syscall. 1 and *ret_fd: the thread is
 * blocked in ioctl(fd, KVM_RUN); 0: anything else the kernel writes there
 * ("running", not in a syscall, another syscall or ioctl); -EBADMSG: not
 * what the kernel writes.
 */
int sched_parse_syscall(const char *buf, size_t len, int *ret_fd);

/*
 * A thread's comm (with or without its '\n'): 1 and *ret_id when it is
 * QEMU's "CPU <N>/KVM", 0 when not.
 */
int sched_parse_comm(const char *buf, size_t len, int *ret_id);

/* What one look at a VMM's threads says of one thread. */
struct sched_seen {
	pid_t tid;
	int run_fd;		/* in KVM_RUN on this vCPU fd; -1: not seen so */
	int name_id;		/* comm names vCPU N; -1: no such name */
};

/* A vCPU (one kvm-vcpu:N fd of the VMM) and the thread it has now. */
struct sched_pick {
	int fd;			/* the kvm-vcpu fd in the VMM */
	int id;			/* N */
	pid_t tid;		/* in: the thread known so far; out: chosen; 0 none */
	enum sched_how how;	/* likewise */
};

/*
 * Chooses each vCPU's thread from one look at the VMM's threads (seen,
 * nseen; a thread not in seen has exited): a thread blocked in KVM_RUN on
 * a vCPU's fd runs that vCPU (when exactly one is); else the thread known
 * before stays if it still exists, no other vCPU's evidence claims it and
 * (found by name) its name still says so; else the one thread whose name
 * says this vCPU, if no evidence gives it to another vCPU and the id is
 * not the N of two vCPU fds. Never one thread for two vCPUs. Pure: no
 * I/O, for the unit tests.
 */
void sched_match(const struct sched_seen *seen, size_t nseen,
		 struct sched_pick *picks, size_t npicks);

/* Per VM state (host_vm.sched). */
struct sched_vm;
void sched_vm_free(struct sched_vm *s);	/* accepts NULL */
/* hv leaves the table: closes its schedstat fds, frees hv->sched. */
void sched_detach(struct source_env *env, struct host_vm *hv);

/* A VMM was listed: remember its kvm-vcpu fds. -ENOMEM. */
int sched_listed(struct source_env *env, struct host_vm *hv,
		 const struct discover_proc *p);

/*
 * After the sources attached: finds the threads of vCPUs that have none
 * (or lost theirs, or were found by name only and not looked at for a
 * while). Called with the acquisition capabilities raised: reading
 * another user's task/<tid>/syscall needs PTRACE_MODE_ATTACH.
 */
void sched_rescan(struct source_env *env, const char *proc_root);

/* Reads every known vCPU thread's schedstat and publishes the values. */
void sched_sample(struct source_env *env, const char *proc_root);

/* Sampling threads was turned off: releases everything, zeros the values. */
void sched_off(struct source_env *env);

#endif
