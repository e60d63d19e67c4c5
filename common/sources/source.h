/*
 * source.h: one interface for every source of a VM's values.
 *
 * A source (held stats fds, QMP, libvirt, debugfs) fills the values of the
 * VMs in the table it is lent, into statsfd holders front ends read alike.
 * The host walks sources[] (sources.c), best first, and never names an
 * implementation; each source is one file (source_*.c) and one line there.
 *
 * Data flows one way: the host (host.c, rescan.c) finds VMs and calls the
 * sources; a source never calls back into the host. What the host must tell
 * the front ends (a vCPU came, a VM's VM-wide source changed), a source
 * marks in the table (vcpu->announced false, host_vm.changed, env->changes)
 * and the host says it afterwards.
 *
 * Choosing per stat: a source takes a VM's VM-wide stats only when no better
 * source holds them (vm_source is FROM_NONE or a worse source), and a vCPU
 * only when no source serves it; debugfs, the last, serves only names no
 * other source has. So no stat is ever reported twice.
 */
#ifndef KVMSTATS_SOURCE_H
#define KVMSTATS_SOURCE_H

#include "kvmstats.h"

/* Stats fds held at most, unless a front end says otherwise (~2.5 KiB each). */
#define SOURCE_FD_DEFAULT_MAX 4096

/* One slot per enum kvmstats_source value. */
#define SOURCE_SLOTS (FROM_LIBVIRT + 1)

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
	char *debugfs;
	uint64_t debugfs_every_us;	/* 0: every sample */
	char *libvirt_uri;		/* NULL: off */
	int libvirt_timeout_ms;
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
	/* The host goes: release env->state[id]. */
	void (*cleanup)(struct source_env *env);
};

/* sources.c: the table, best first, and the walks over it. */
extern const struct source_ops *const sources[];
extern const size_t nsources;

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
 * Takes hv's VM-wide stats from their source, which must be worse than the
 * caller (its detach releases its state of hv): vm_stats is closed,
 * vm_source FROM_NONE, hv->changed set.
 */
void vm_drop_vm_stats(struct source_env *env, struct host_vm *hv);
/* The VM of that VMM pid, or NULL. */
struct host_vm *vm_find_by_pid(const struct source_env *env, pid_t pid);
/* CLOCK_MONOTONIC in µs. */
uint64_t source_now_usec(void);

#endif
