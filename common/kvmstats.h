/* SPDX-License-Identifier: MIT */
/*
 * kvmstats.h: the public header of the core, the one the front ends
 * (kvmstat, the collectd plugin, the Netdata plugin) start from: a host's
 * VMs and vCPUs, where their values come from, and the calls that find,
 * sample and release them (host.c, rescan.c, the sources in sources/).
 * Each module's own declarations are in a header beside its file
 * (decode.h, statsfd.h, filter.h, ...); a front end includes those it uses.
 *
 * The core reads the KVM binary statistics (KVM_GET_STATS_FD, Linux >= 5.14,
 * Documentation/virt/kvm/api.rst and <linux/kvm.h>) of VMs that other
 * processes run. Only the VMM can create a stats fd; the core duplicates the
 * ones the VMM holds with pidfd_getfd() and preads them.
 *
 * Conventions: functions that can fail return >= 0 on success and -errno on
 * failure; predicates return 1 yes, 0 no, < 0 error. Out-parameters are
 * named ret_* and written only on success. Nothing here logs or exits.
 */
#ifndef KVMSTATS_H
#define KVMSTATS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "decode.h"
#include "discover.h"
#include "statsfd.h"

/*
 * Where a VM's or vCPU's values come from. The values are names only, in
 * no order: which source is preferred is the order of the table in
 * sources/sources.c, and nowhere else.
 */
enum kvmstats_source {
	FROM_NONE,
	FROM_FD,		/* a stats fd the VMM holds, copied */
	FROM_QMP,		/* QEMU's query-stats */
	FROM_DEBUGFS,		/* /sys/kernel/debug/kvm/<pid>-<fd>/ */
	FROM_LIBVIRT,		/* libvirtd's domain stats */
};

/* "fd", "qmp", "debugfs", "libvirt", "none". */
const char *host_source_name(enum kvmstats_source source);

/*
 * A host thread's scheduler counters, from /proc/<pid>/task/<tid>/schedstat
 * (sources/sched.c): what the host gave a vCPU, which KVM's own counters
 * do not say. Since the thread started; all 0 while no thread is known.
 */
struct kvmstats_sched {
	pid_t tid;		/* 0: no thread known (yet, or any more) */
	uint64_t run_ns;	/* time on a CPU */
	uint64_t wait_ns;	/* time runnable on a run queue, not running */
	uint64_t timeslices;	/* times it was run */
};

/*
 * A vCPU's or a VM's scheduler counters as counters: they never go back,
 * when a vCPU's thread is replaced (the old one's last values are kept and
 * the new one's added) or a vCPU goes. For rates.
 */
struct kvmstats_sched_total {
	uint64_t run_ns;
	uint64_t wait_ns;
	uint64_t timeslices;
};

struct kvmstats_vcpu {
	int id;			/* N of kvm-vcpu-stats:N, or QEMU's cpu-index */
	int vmm_fd;		/* the stats fd's number in the VMM, -1 if none */
	enum kvmstats_source source;
	struct statsfd *stats;
	struct kvmstats_sched sched;		/* its thread, at the last sample */
	struct kvmstats_sched_total sched_total;	/* over all its threads */
	void *user;		/* front end's per-vCPU state */
	bool announced;		/* the core's: vcpu_added was called (or vm_added) */
};

struct kvmstats_label {
	const char *key;
	const char *value;
};

/*
 * A VM: one kvm-vm fd of one process. A process that runs several VMs is
 * one entry with vm_fd = -1 and nvms > 1, because the kernel does not say
 * which VM a vCPU stats fd belongs to: its vCPUs are listed (by their stats
 * fd) and summed once, never split between VMs.
 */
struct kvmstats_vm {
	pid_t pid;
	uint64_t starttime;
	int vm_fd;		/* kvm-vm fd number in the VMM, -1 if nvms > 1 */
	unsigned nvms;		/* kvm-vm fds the process holds */
	char *name;		/* untrusted: from the command line, else comm */
	char *uuid;		/* untrusted, NULL if unknown */
	enum discover_name_source name_source;	/* NONE: name is comm */
	/*
	 * VM-wide stats: from the VM stats fd, or QMP's target vm, or the
	 * debugfs directory (which then also has the vCPU stats summed, less
	 * those a vCPU source serves). NULL: no source has them.
	 */
	struct statsfd *vm_stats;
	enum kvmstats_source vm_source;
	char *qmp_path;		/* the QMP socket serving this VM, if any */
	/*
	 * Labels a source knows of the VM (libvirt: title, nova_name,
	 * nova_flavor, nova_project), in that order, only those set. Keys
	 * are constant; values untrusted. Valid until vm_changed/vm_removed.
	 */
	const struct kvmstats_label *labels;
	size_t nlabels;
	size_t nvcpus;
	/* Sorted by id, then vmm_fd; pointers stay valid until vm_removed. */
	struct kvmstats_vcpu **vcpus;
	/*
	 * At the last sample: the sums of the vCPUs' sched_total, those gone
	 * included, and the CPU time of the VMM's other threads (emulator,
	 * I/O) since the VMM started. sched_vcpus: vCPUs whose thread is
	 * known; 0 when none is (or sampling threads is off).
	 */
	struct kvmstats_sched_total sched_vcpus;
	uint64_t other_run_ns;
	unsigned sched_known;
	int pidfd;
	void *user;		/* front end's per-VM state */
	/*
	 * scan_news()'s: the sources (1 << enum kvmstats_source) whose
	 * refused stat names (kvmstats_schema.refused) were said for this VM.
	 */
	unsigned names_said;
};

/* Front-end hooks; any may be NULL. ctx is the one given to host_new(). */
struct kvmstats_hooks {
	/*
	 * Whether to take this VMM's stats fds at all, asked before anything
	 * is taken from it (and again at each rescan while it says no).
	 */
	bool (*want)(const struct discover_proc *p, void *ctx);
	void (*vm_added)(struct kvmstats_vm *vm, void *ctx);
	void (*vcpu_added)(struct kvmstats_vm *vm, struct kvmstats_vcpu *vcpu,
			   void *ctx);
	/*
	 * Later, a source of VM-wide stats came or was replaced by a better
	 * one (vm_stats, vm_source and the schema may all be new: the old
	 * holder is gone), or a vCPU passed to a better source (its stats
	 * and schema are new, the kvmstats_vcpu and its user stay).
	 */
	void (*vm_changed)(struct kvmstats_vm *vm, void *ctx);
	/* Called before the VM's fds are closed and its memory freed. */
	void (*vm_removed)(struct kvmstats_vm *vm, void *ctx);
};

/* How many VMMs over their share of the stats fd budget a report names. */
#define KVMSTATS_OVER_MAX 8

/* A VMM that holds more stats fds than its share of the budget. */
struct kvmstats_fd_over {
	pid_t pid;
	unsigned holds;		/* stats fds its VMM holds that would be read */
	unsigned share;		/* its fair share of the budget */
	unsigned taken;		/* held here: its share, or less at the open file limit */
};

/*
 * A QMP socket that failed (sources/source_qmp.c): not waited for until a
 * probe of it answers in time; probes start after a backoff (1 s doubling
 * to 60 s).
 */
#define KVMSTATS_QMP_STUCK_MAX 16
struct kvmstats_qmp_stuck {
	char path[108];		/* as globbed: untrusted bytes, escape to print */
	pid_t pid;		/* its listener at the last connect; 0: unknown */
	int error;		/* -EBUSY, -ETIMEDOUT: no answer in time; else why */
	unsigned retry_s;	/* the backoff it got at its last failure */
};

/* Why a rescan saw less than everything; the front end words it. */
struct kvmstats_scan_report {
	struct discover_stats discover;
	unsigned acquire_denied;	/* pidfd_getfd refused: -EPERM */
	unsigned vms_without_stats;	/* VMs no source serves */
	unsigned qmp_failed;		/* QMP sockets that did not answer */
	int qmp_error;			/* the first such failure's -errno */
	/* QMP sockets failing now, the first KVMSTATS_QMP_STUCK_MAX by path. */
	struct kvmstats_qmp_stuck qmp_stuck[KVMSTATS_QMP_STUCK_MAX];
	unsigned nqmp_stuck;		/* entries in qmp_stuck */
	unsigned qmp_stuck_total;	/* all failing sockets, listed or not */
	int qmp_timeout_ms;		/* the deadline of each exchange */
	unsigned debugfs_denied;	/* files debugfs refused (lockdown) */
	bool debugfs_missing;		/* debugfs asked for but not readable */
	int debugfs_error;		/* why not: debugfs_probe()'s -errno */
	/*
	 * Over all VMs, not only those this rescan looked at: stats fds their
	 * VMMs hold that could not be taken, at two listings in a row, for a
	 * reason other than the fd limit or a refusal (which have their own
	 * counts above): -errno in unread_error, of the VM unread_pid. Every
	 * rescan tries them again.
	 */
	unsigned vms_unread, fds_unread;
	int unread_error;
	pid_t unread_pid;
	/*
	 * The stats fd budget: kvmstats_sources.max_fds, or less near
	 * RLIMIT_NOFILE (fd_budget_nofile), shared max-min fairly among the
	 * fd_vmms VMMs that hold stats fds (the VM-wide one kept over a
	 * vCPU's). vms_over of them hold more than their share: fds_over
	 * stats fds in all are not read, their highest-numbered vCPUs', which
	 * keep their last values (stats error -EMFILE) until the budget
	 * allows. over[] names the first KVMSTATS_OVER_MAX of them, most
	 * left out first.
	 */
	size_t fd_budget;
	bool fd_budget_nofile;
	unsigned fd_vmms;
	unsigned vms_over, fds_over;
	struct kvmstats_fd_over over[KVMSTATS_OVER_MAX];
	size_t fds_held;		/* stats fds the host holds after the rescan */
	bool walked;			/* this rescan walked all of /proc */
	bool libvirt_asked;		/* a libvirt URI is set */
	int libvirt_error;		/* its last sample: 0 or -errno (-ETIMEDOUT: slow) */
	int first_error;		/* first other -errno, 0 if none */
};

struct kvmstats_host;

/* Sources besides held stats fds; all off by default. */
struct kvmstats_sources {
	bool no_fds;			/* ignore held stats fds (a kernel without them) */
	const char *const *qmp;		/* QMP socket paths or globs */
	size_t nqmp;
	int qmp_timeout_ms;		/* per VM and sample; 0: 500 */
	/*
	 * Set by a signal handler when the caller is to end: the QMP
	 * exchanges of a rescan or sample are no longer waited for (they
	 * stay in flight), so that peers that answer slowly or never cannot
	 * hold up the exit by their deadline. NULL: none.
	 */
	const volatile sig_atomic_t *stop;
	const char *debugfs;		/* e.g. "/sys/kernel/debug/kvm"; NULL: off */
	/*
	 * Read debugfs at most every this many ms (0: at every sample); a VM
	 * seen for the first time is read at its first sample regardless. In
	 * between its values stay those of the last read (cur and prev
	 * unchanged). debugfs costs three syscalls per value (open, read,
	 * close: a KVM debugfs file gives its value once per open), so the
	 * VM-wide values it serves are what a long-lived agent reads less often.
	 */
	unsigned debugfs_every_ms;
	/*
	 * Stats fds held at most over all VMs (the budget); 0: 4096. Each
	 * costs ~2.5 KiB here and one fd of RLIMIT_NOFILE
	 * (acquire_raise_nofile()). Shared max-min fairly among the VMMs:
	 * one VMM with thousands of vCPUs cannot leave the others unwatched.
	 */
	size_t max_fds;
	/*
	 * Do not listen to KVM's uevents: every rescan walks /proc, as where
	 * they cannot be had. For measuring the walk; cannot be undone.
	 */
	bool no_events;
	/*
	 * libvirt URI of a read-only connection ("qemu:///system"); NULL:
	 * off. Serves what no better source does (source_libvirt.c).
	 */
	const char *libvirt_uri;
	/*
	 * Do not find vCPU threads nor read their schedstat (a kernel built
	 * without CONFIG_SCHEDSTATS... has the file but zeros; see sched.c).
	 */
	bool no_sched;
	int libvirt_timeout_ms;		/* per sample, all domains; 0: 500 */
};

/*
 * proc_root is copied; NULL: $KVMSTATS_PROC_ROOT when set (for tests;
 * ignored in a process with file capabilities or setuid), else "/proc".
 * The caller frees the result with host_free().
 * raise_priv: raise the acquisition capabilities around /proc fd listing
 * and pidfd_getfd (priv_raise/priv_restore).
 */
int host_new(const char *proc_root, bool raise_priv,
	     const struct kvmstats_hooks *hooks, void *ctx,
	     struct kvmstats_host **ret_host);
void host_free(struct kvmstats_host *host);	/* calls vm_removed for each */

/* Copies src; takes effect at the next rescan. -ENOMEM. */
int host_set_sources(struct kvmstats_host *host, const struct kvmstats_sources *src);

/*
 * Releases every VM whose VMM has exited (vm_removed, then its fds are
 * closed). Cheap: one poll() over the pidfds. Returns how many went.
 */
int host_reap(struct kvmstats_host *host);

/*
 * An fd that polls readable when a VMM has exited and host_reap() has
 * something to release: for a front end that waits on other fds too.
 */
int host_reap_fd(const struct kvmstats_host *host);

/*
 * Finds new VMMs and new vCPU stats fds of known ones and acquires them.
 * Reaps first. The first rescan walks /proc; later ones look only at the
 * processes KVM's create/destroy uevents name and at the known VMMs whose
 * fd count changed, and walk again once a minute, after lost events, or
 * every time where uevents cannot be had (report.walked tells). Returns the
 * number of VMs known afterwards.
 */
int host_rescan(struct kvmstats_host *host,
		struct kvmstats_scan_report *ret_report);

/*
 * Samples every stats fd of every VM: one pread each. A VM whose reads fail
 * because it exited is reaped. Returns the number of VMs sampled.
 */
int host_sample(struct kvmstats_host *host);

/*
 * The VM-wide view of its vCPUs: per value slot of schema, the sum over the
 * vCPUs (for PEAK stats the maximum) of their last sample. A vCPU with
 * another schema (another source serves it) counts by stat name, where it
 * has that stat with as many values; one with no sample yet is left out;
 * one whose stats fd was given back to the budget counts with its last
 * values, so that a total never goes back. ret_values has
 * schema->num_values slots. Returns the number of vCPUs counted; 0 when
 * the last sample of any other vCPU failed (no total is better than a
 * stale or partial one).
 */
int host_vcpu_totals(const struct kvmstats_vm *vm,
		     const struct kvmstats_schema *schema, uint64_t *ret_values);

/*
 * The guest memory KVM has mapped for vm, in bytes, from its VM-wide
 * pages_4k/2m/1g (x86; num_2M_pages/num_1G_pages on ppc64): the less, the
 * cheaper the VM is to live-migrate. -ENOENT: no source has those stats.
 */
int host_mapped_bytes(const struct kvmstats_vm *vm, uint64_t *ret_bytes);

size_t host_nvms(const struct kvmstats_host *host);
struct kvmstats_vm *host_vm(struct kvmstats_host *host, size_t i);

#endif
