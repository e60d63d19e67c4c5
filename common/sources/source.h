/* SPDX-License-Identifier: MIT */
/*
 * source.h: one interface for every source of a VM's values.
 *
 * A source (held stats fds, QMP, libvirt, debugfs) fills the values of the
 * VMs in the table it is lent, into statsfd holders front ends read alike.
 * The host walks sources[] (sources.c), best first, and never names an
 * implementation; each source is one file (source_*.c) and one line there.
 * That table's order is the precedence, and the only statement of it.
 *
 * Data flows one way: the host (host.c, rescan.c) finds VMs and calls the
 * sources; a source never calls back into the host. What the host must tell
 * the front ends (a vCPU came, a VM's VM-wide source changed), a source
 * marks in the table (vcpu->announced false, host_vm.changed, env->changes)
 * and the host says it afterwards.
 *
 * Choosing per stat: a source takes a VM's VM-wide stats, or a vCPU, only
 * when source_may_take_vm() / source_may_take_vcpu() say so: nobody holds
 * them, or a source after it in the table does. A better source that comes
 * later (a VM stats fd the VMM opens late, QMP after libvirt, a vCPU stats
 * fd after QMP served that vCPU) takes over at the next rescan or sample:
 * vm_take_vm_stats() / vm_take_vcpu() swap the holder in one step, so no
 * stat is ever reported by two sources, and the new holder is read at the
 * next sample. debugfs, the last, serves only names no other source has;
 * its VM-wide holder, with the vCPU stats it sums, goes as a whole.
 */
#ifndef KVMSTATS_SOURCE_H
#define KVMSTATS_SOURCE_H

#include "kvmstats.h"

/* Stats fds held at most, unless a front end says otherwise (~2.5 KiB each). */
#define SOURCE_FD_DEFAULT_MAX 4096

/* One slot per enum kvmstats_source value. */
#define SOURCE_SLOTS (FROM_LIBVIRT + 1)

/* A thread a source says runs vCPU id (QMP's thread-id); sched.c checks it. */
struct sched_hint {
	int id;
	pid_t tid;
};

/* A VM with what only the core needs to know about it. */
struct host_vm {
	struct kvmstats_vm pub;
	uint64_t seen;		/* host generation of the last scan that saw it */
	int nfds;		/* its VMM's fd count when last listed; -1: unknown */
	bool announced;		/* vm_added was called */
	bool changed;		/* a source changed vm_stats: vm_changed is due */
	/*
	 * Stats fds its VMM held at the last listing that we could not take,
	 * and why (-errno): looked at again at every rescan until taken.
	 */
	unsigned unread;
	int unread_error;
	unsigned unread_tries;	/* listings in a row that left some unread */
	const struct source_ops *vm_owner;	/* the source of pub.vm_stats */
	void *priv[SOURCE_SLOTS];	/* each source's per-VM state; its detach frees it */
	struct sched_vm *sched;	/* its vCPU threads (sched.c); NULL: none listed */
	struct sched_hint *hints;	/* the last a source gave, by id; untrusted */
	size_t nhints;
	bool hints_changed;		/* since sched.c last looked */
};

/* What the host lends the sources: its VM table, caches and settings. */
struct source_env {
	struct host_vm **vms;	/* the table: only the host adds or removes */
	size_t nvms, cap;
	struct statsfd_cache *cache;	/* schemas of held stats fds */
	struct statsfd_cache *vcache;	/* schemas made from other sources */
	bool raise_priv;
	/* Settings (host_set_sources), owned here. */
	bool no_fds;
	size_t max_fds;		/* 0: SOURCE_FD_DEFAULT_MAX */
	char **qmp;
	size_t nqmp;
	int qmp_timeout_ms;
	const volatile sig_atomic_t *stop;	/* kvmstats_sources.stop */
	char *debugfs;
	uint64_t debugfs_every_us;	/* 0: every sample */
	char *libvirt_uri;		/* NULL: off */
	int libvirt_timeout_ms;
	bool no_sched;			/* no vCPU threads (sched.c) */
	size_t sched_fds;		/* schedstat fds held (sched.c) */
	bool settings_changed;		/* since the sources last looked */
	unsigned changes;	/* bumped when a vCPU or VM source was added */
	void *state[SOURCE_SLOTS];	/* each source's own state */
};

enum source_serves {
	SOURCE_VM_STATS = 1 << 0,
	SOURCE_VCPU_STATS = 1 << 1,
	SOURCE_NAMES = 1 << 2,
};

/*
 * A source. Every op may be NULL. rep is the rescan's report, for what
 * the front ends should say (counts and -errno, never text).
 */
struct source_ops {
	const char *name;		/* "fd", "qmp", ...: the "source" front ends show */
	enum kvmstats_source id;
	unsigned serves;		/* enum source_serves */
	/* A rescan starts (settings may have changed). */
	void (*prepare)(struct source_env *env, struct kvmstats_scan_report *rep);
	/* A VMM process was listed (new or again): take what it holds. */
	void (*listed)(struct source_env *env, struct host_vm *hv,
		       const struct discover_proc *p, struct kvmstats_scan_report *rep);
	/* After the listing: serve what no better source serves. */
	void (*attach)(struct source_env *env, struct kvmstats_scan_report *rep);
	/*
	 * One sample of everything this source serves. A failure to read one
	 * VM goes into its holders' error; < 0 only when the source could
	 * not sample at all (-ENOMEM).
	 */
	int (*sample)(struct source_env *env);
	/* hv leaves the table: release what this source holds of it. */
	void (*detach)(struct source_env *env, struct host_vm *hv);
	/*
	 * A better source takes hv's VM-wide stats: release only what this
	 * source holds for that slot (it may close pub.vm_stats and set it
	 * NULL; vm_take_vm_stats() closes what is left). Its other state of
	 * hv (vCPUs, labels, a QMP socket) stays. NULL: nothing to release.
	 */
	void (*drop_vm)(struct source_env *env, struct host_vm *hv);
	/* Likewise for one vCPU c of hv that a better source takes. */
	void (*drop_vcpu)(struct source_env *env, struct host_vm *hv,
			  struct kvmstats_vcpu *c);
	/* The host goes: release env->state[id]. */
	void (*cleanup)(struct source_env *env);
};

/* sources.c: the table, best first, and the walks over it. */
extern const struct source_ops *const sources[];
extern const size_t nsources;

/* The table's entry for id, or NULL (FROM_NONE). */
const struct source_ops *source_of(enum kvmstats_source id);
/* id's place in the table, 0 the best; nsources for FROM_NONE. */
size_t source_rank(enum kvmstats_source id);
/*
 * Whether ops may take hv's VM-wide stats: nobody holds them, or a source
 * after ops in the table does. False for the holder itself.
 */
bool source_may_take_vm(const struct host_vm *hv, const struct source_ops *ops);
/* Whether ops may serve vcpu (NULL: a vCPU not in the table yet), likewise. */
bool source_may_take_vcpu(const struct kvmstats_vcpu *vcpu, const struct source_ops *ops);

extern const struct source_ops source_fd;
extern const struct source_ops source_qmp;
extern const struct source_ops source_libvirt;
extern const struct source_ops source_debugfs;

/* vmtable.c: what every source does to the table. */

/* Inserts c into vm's vCPUs, keeping them sorted by id, then fd. -ENOMEM. */
int vm_insert_vcpu(struct kvmstats_vm *vm, struct kvmstats_vcpu *c);
/* The vCPU with that id, or NULL. */
struct kvmstats_vcpu *vm_find_vcpu(const struct kvmstats_vm *vm, int id);
/*
 * A new vCPU id served by a virtual holder of source (id names it) with
 * schema, inserted into hv and marked for vcpu_added. -ENOMEM.
 */
int vm_add_virtual_vcpu(struct source_env *env, struct host_vm *hv, int id,
			enum kvmstats_source source, const char *name,
			struct kvmstats_schema *schema, struct kvmstats_vcpu **ret);
/*
 * Empties hv's VM-wide slot: its holder's drop_vm releases what it held
 * for it (never its other state of hv), vm_stats is closed, vm_source
 * FROM_NONE, vm_changed due.
 */
void vm_drop_vm_stats(struct source_env *env, struct host_vm *hv);
/*
 * Gives hv's VM-wide slot to ops (source_may_take_vm() said yes) with
 * stats, which the slot owns from then on: the holder before is dropped
 * as by vm_drop_vm_stats() in the same step, so no sample sees both or
 * neither. vm_changed due.
 */
void vm_take_vm_stats(struct source_env *env, struct host_vm *hv,
		      const struct source_ops *ops, struct statsfd *stats);
/*
 * Gives vCPU c of hv to ops (source_may_take_vcpu() said yes) with stats
 * (owned by c from then on) and vmm_fd: its holder before is dropped
 * (drop_vcpu, then closed). c stays the same vCPU for the front ends
 * (id, user); vm_changed due, since its schema may differ.
 */
void vm_take_vcpu(struct source_env *env, struct host_vm *hv, struct kvmstats_vcpu *c,
		  const struct source_ops *ops, struct statsfd *stats, int vmm_fd);
/* The VM of that VMM pid, or NULL. */
struct host_vm *vm_find_by_pid(const struct source_env *env, pid_t pid);
/* CLOCK_MONOTONIC in µs. */
uint64_t source_now_usec(void);

#endif
