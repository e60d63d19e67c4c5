/*
 * kvmstats.h: the one header the front ends (kvmstat, the collectd plugin,
 * the Netdata plugin) include.
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

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- decode.c */

/*
 * One statistic as described by the kernel. Its values are the u64 slots
 * [index, index + size) of the data block.
 */
struct kvmstats_desc {
	const char *name;	/* NUL-terminated, owned by the schema */
	uint32_t flags;		/* raw flags word from the kernel */
	uint32_t type;		/* flags & KVM_STATS_TYPE_MASK */
	uint32_t unit;		/* flags & KVM_STATS_UNIT_MASK */
	uint32_t base;		/* flags & KVM_STATS_BASE_MASK */
	int16_t exponent;	/* value = raw * base^exponent */
	uint16_t size;		/* number of u64 values (buckets) */
	uint32_t index;		/* first value, in u64 slots from data start */
	uint32_t bucket_size;	/* LINEAR_HIST only */
	/*
	 * false when type, unit or base is newer than this build: the values
	 * are still read and may be shown raw, but not scaled or charted.
	 */
	bool known;
};

/* What the descriptors of one stats fd say. Shared by fds with equal blocks. */
struct kvmstats_schema {
	uint32_t num_desc;
	uint32_t data_offset;	/* file offset of the data block */
	uint32_t data_len;	/* bytes in the data block, a multiple of 8 */
	uint32_t num_values;	/* data_len / 8 */
	struct kvmstats_desc *desc;
	char *names;		/* storage behind desc[].name */
	unsigned refs;		/* schema_unref() frees at 0 */
};

/*
 * Copies the header out of buf and checks what can be checked of it alone:
 * offsets past the header, name_size and num_desc non-zero.
 * -EBADMSG: too short or broken.
 */
int decode_header(const void *buf, size_t len,
		  struct kvm_stats_header *ret_hdr);

/*
 * Bytes from file offset 0 that hold the header, the id string and every
 * descriptor, i.e. what decode_schema() needs.
 * -EOVERFLOW: the sizes in the header overflow.
 */
int decode_meta_len(const struct kvm_stats_header *hdr, size_t *ret_len);

/*
 * Decodes and validates the descriptors in buf (the first decode_meta_len()
 * bytes of a stats file, or more). Enforces the invariants the kernel's
 * kvm_binary_stats_test.c checks; a descriptor whose type, unit or base is
 * unknown to this build is kept with known = false instead of failing the
 * others. The result has refs == 1; release it with schema_unref().
 * -EBADMSG: malformed. -EOVERFLOW: size arithmetic overflowed. -ENOMEM.
 */
int decode_schema(const void *buf, size_t len,
		  struct kvmstats_schema **ret_schema);

/* Known type/unit/base: 0, or -EBADMSG if it breaks the selftest rules. */
int decode_check_desc(const struct kvmstats_desc *d);

/*
 * Copies the id string ("kvm-<pid>" or "kvm-<tid>/vcpu-<n>") of a stats
 * file into ret_id (at most size bytes with the NUL).
 * -EBADMSG: missing, unterminated or not starting with "kvm".
 * -ENOBUFS: does not fit.
 */
int decode_id(const void *buf, size_t len, char *ret_id, size_t size);

/* Two schemas describe the same stats at the same places: 1 yes, 0 no. */
int schema_equal(const struct kvmstats_schema *a,
		 const struct kvmstats_schema *b);

struct kvmstats_schema *schema_ref(struct kvmstats_schema *schema);
void schema_unref(struct kvmstats_schema *schema);	/* accepts NULL */

/* Index of the stat called name, or -ENOENT. */
int schema_find(const struct kvmstats_schema *schema, const char *name);

/* base^exponent as a double: multiply a raw value by it to get the unit. */
double decode_scale(const struct kvmstats_desc *desc);

/*
 * Bounds of histogram bucket i in raw units: it counts values in
 * [*ret_lo, *ret_hi); the last bucket has *ret_hi == UINT64_MAX (open).
 * -EINVAL: not a histogram or i out of range.
 */
int decode_bucket_bounds(const struct kvmstats_desc *desc, uint32_t i,
			 uint64_t *ret_lo, uint64_t *ret_hi);

/* "cumulative", "instant", "peak", "linear_hist", "log_hist", "unknown". */
const char *decode_type_name(uint32_t type);
/* "none", "bytes", "seconds", "cycles", "boolean", "unknown". */
const char *decode_unit_name(uint32_t unit);

/* --------------------------------------------------------------- statsfd.c */

/*
 * An open stats fd with its schema and its last two samples. The only code
 * that reads a stats fd. Reads use pread() only: a duplicated stats fd shares
 * its file offset with the VMM's copy.
 */
struct statsfd {
	/* What a sample touches first, in one cache line. */
	int fd;
	int error;		/* host_sample(): 0 or the last sample's -errno */
	uint64_t *cur;		/* num_values slots, last sample */
	uint64_t *prev;		/* the sample before, valid when samples > 1 */
	uint64_t samples;	/* successful statsfd_sample() calls */
	struct kvmstats_schema *schema;
	char id[64];
};

struct statsfd_cache;

/*
 * Takes ownership of fd (closed on failure too), reads the header, id and
 * descriptors once. A schema equal to one in cache (may be NULL) is shared.
 * The caller frees the result with statsfd_close().
 * -EBADMSG, -EOVERFLOW: malformed. -EIO: short read. -ENOMEM.
 */
int statsfd_open(int fd, struct statsfd_cache *cache,
		 struct statsfd **ret_statsfd);

/*
 * One pread() of the whole data block into cur (the previous cur becomes
 * prev). -EIO: short read (nothing is changed); other -errno from pread.
 */
int statsfd_sample(struct statsfd *s);

void statsfd_close(struct statsfd *s);	/* accepts NULL */

/*
 * The stats fds of a host in one flat array, sampled in one tight loop:
 * what a sample of every VM costs is then little more than the preads
 * themselves. Lends the statsfds: the owner removes none while it is in use.
 */
struct statsfd_batch {
	struct statsfd_slot *slot;
	size_t n, cap;
};

/* Appends s (an fd holder, not a virtual one). -ENOMEM. */
int statsfd_batch_add(struct statsfd_batch *b, struct statsfd *s);
void statsfd_batch_clear(struct statsfd_batch *b);	/* keeps the memory */
void statsfd_batch_free(struct statsfd_batch *b);
/* statsfd_sample() of each, its result in s->error. */
void statsfd_batch_sample(const struct statsfd_batch *b);

/*
 * A holder without an fd, for values that come from elsewhere (QMP,
 * debugfs) but are read by front ends exactly like a stats fd's. Takes a
 * reference on schema (interned through cache when given). id names the
 * source ("qmp", "debugfs"). The caller frees it with statsfd_close().
 */
int statsfd_virtual(struct kvmstats_schema *schema, const char *id,
		    struct statsfd_cache *cache, struct statsfd **ret_statsfd);

/* Makes values (schema->num_values slots) the new sample of a virtual holder. */
void statsfd_push(struct statsfd *s, const uint64_t *values);

/*
 * Whether this kernel has KVM_GET_STATS_FD (KVM_CAP_BINARY_STATS_FD, 5.14):
 * 1 yes, 0 no. -ENOENT: no /dev/kvm. -EACCES: /dev/kvm not openable.
 */
int statsfd_supported(void);

/*
 * Interns schemas so that every vCPU of every VM on one kernel shares one.
 * statsfd_cache_free() drops the cache's references only.
 */
int statsfd_cache_new(struct statsfd_cache **ret_cache);
/* The schemas interned so far (binary ones tell debugfs files' types). */
size_t statsfd_cache_schemas(const struct statsfd_cache *cache,
			     const struct kvmstats_schema *const **ret_schemas);
void statsfd_cache_free(struct statsfd_cache *cache);	/* accepts NULL */

/* -------------------------------------------------------------- discover.c */

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

/* --------------------------------------------------------------- cmdline.c */

/*
 * A VM's name from what its host shows of it. Every name is untrusted
 * bytes, kept verbatim up to 4096 bytes: front ends sanitize them. Where
 * the command line names no VM, discover.c asks the cgroup, then Proxmox.
 */

/*
 * For front ends that must show a name as UTF-8: the length of the valid
 * UTF-8 character at s (RFC 3629: no overlong forms, no surrogates, none
 * above U+10FFFF), 1 for an ASCII byte, 0 if s starts no valid character
 * (the caller replaces that byte and goes on with the next).
 */
size_t name_utf8_len(const char *s);

/*
 * s as valid UTF-8: each byte that starts no valid character replaced by
 * U+FFFD, the rest kept. The caller frees the result; NULL: out of memory.
 */
char *name_utf8_repair(const char *s);

/* What a VMM's command line says about its VM. */
struct cmdline_vm {
	char *name;		/* NULL if none */
	char *uuid;		/* QEMU -uuid, NULL if none */
	uint32_t pve_vmid;	/* Proxmox VE "-id N", 0 if none */
};

/*
 * Parses a NUL-separated command line (/proc/PID/cmdline; the last NUL may
 * be missing), by the VMM argv[0] names: QEMU -name guest=X,... or -name X
 * (",," an escaped comma), -uuid U, Proxmox -id N (also with "--");
 * Firecracker --id X; kvmtool (lkvm) --name X; Cloud Hypervisor: none.
 * Free the strings with cmdline_vm_done(). -ENOMEM.
 */
int cmdline_parse_vm(const char *cmdline, size_t len,
		     struct cmdline_vm *ret_vm);
void cmdline_vm_done(struct cmdline_vm *vm);	/* accepts NULL */

/* cmdline_parse_vm() without the vmid: each a malloc'ed string or NULL. */
int cmdline_parse(const char *cmdline, size_t len,
		  char **ret_name, char **ret_uuid);

/*
 * The VM name in /proc/PID/cgroup text (v1 or v2) of a VM that libvirt
 * started: its machine "machine-qemu\x2d3\x2dweb01.scope" (systemd
 * escapes undone) or "qemu-3-web01.libvirt-qemu" (no systemd) -> "web01".
 * 1 and *ret_name (the caller frees it), 0 when no machine is named.
 * -ENOMEM.
 */
int cmdline_cgroup_name(const char *text, size_t len, char **ret_name);

/*
 * The "name:" of <conf_root>/<vmid>.conf, a Proxmox VE VM config
 * ("/etc/pve/qemu-server"). 1 and *ret_name (the caller frees it), 0 when
 * it has none. -EINVAL: vmid 0, or not a regular file. -ENAMETOOLONG.
 * -errno of open() or read() (-ENOENT, -EACCES). -ENOMEM.
 */
int cmdline_pve_name(const char *conf_root, uint32_t vmid, char **ret_name);

/* The pure half of cmdline_pve_name(): the config's text. */
int cmdline_pve_conf_name(const char *text, size_t len, char **ret_name);

/* ----------------------------------------------------------------- qmp.c */

/*
 * VM and vCPU stats of one QEMU (>= 7.1) through its QMP socket:
 * query-stats (targets vm and vcpu) typed by query-stats-schemas, vCPUs
 * mapped from QOM paths to cpu-index with query-cpus-fast. The schemas are
 * synthesized kvmstats_schema objects, so front ends see the same
 * descriptors (name, type, unit, base, exponent, size) as from a stats fd.
 */
/* QEMU's version, from the QMP greeting; 0.0.0 when it said none. */
struct qmp_version {
	int major, minor, micro;
};

struct qmp_stats {
	pid_t pid;				/* the peer (QEMU), SO_PEERCRED */
	struct qmp_version qemu;
	struct kvmstats_schema *vm_schema;	/* NULL: no VM stats */
	uint64_t *vm_values;			/* vm_schema->num_values */
	struct kvmstats_schema *vcpu_schema;	/* NULL: no vCPU stats */
	size_t nvcpus;
	int *vcpu_index;			/* cpu-index of each vCPU */
	uint64_t **vcpu_values;			/* vcpu_schema->num_values each */
};

/*
 * Connects to the QMP socket at path, negotiates capabilities, queries
 * schemas, stats and vCPUs, and disconnects, all within timeout_ms. The
 * caller frees the result with qmp_stats_free(). vCPUs are sorted by
 * cpu-index. Histogram sizes come from the stats answer, so each call
 * builds its schemas anew: compare them with schema_equal(). Histograms
 * are in the kernel's bucket order (bucket 0 first) whatever order this
 * QEMU sends them in (see qmp_lists_reversed()).
 * -ETIMEDOUT: the whole exchange took too long (QEMU busy or stuck).
 * -ECONNREFUSED/-ENOENT: no QEMU there. -EBUSY: the monitor is taken (no
 * greeting within timeout_ms: another client holds it, or QEMU's main loop
 * is stuck). -ECONNRESET: QEMU closed the socket mid-exchange.
 * -EPROTO: QMP said something unexpected. -ENOTSUP: no query-stats (< 7.1).
 * -EBADMSG: an answer breaks qapi/stats.json. -ENAMETOOLONG: path does not
 * fit in sun_path. -EINVAL: timeout_ms < 0. -ENOMEM.
 */
int qmp_query_stats(const char *path, int timeout_ms, struct qmp_stats **ret_stats);
void qmp_stats_free(struct qmp_stats *stats);	/* accepts NULL */

/*
 * The pure halves, for tests and fuzzing: the "return" of
 * query-stats-schemas -> schemas for targets vm and vcpu (NULL when QEMU
 * has none); the "return"s of one exchange -> what qmp_query_stats() gives,
 * with pid 0. The size of a histogram is only in a stats answer, so
 * qmp_parse_schemas() makes every stat one value (index = position) and
 * qmp_parse_answers() lays the schemas out anew from the answers.
 * -EBADMSG: not JSON or breaks qapi/stats.json. -ENOMEM.
 */
int qmp_parse_schemas(const char *json, size_t len,
		      struct kvmstats_schema **ret_vm,
		      struct kvmstats_schema **ret_vcpu);

/*
 * The JSON text of each "return"; NULL answers count as empty lists. The
 * greeting is the whole {"QMP": ...} object; NULL: a QEMU of unknown
 * version (its lists are taken as every QEMU so far sends them).
 */
struct qmp_answers {
	const char *schemas;	/* query-stats-schemas: required */
	const char *vm;		/* query-stats, target vm */
	const char *vcpu;	/* query-stats, target vcpu */
	const char *cpus;	/* query-cpus-fast */
	const char *greeting;	/* the greeting QEMU sent on connect */
	size_t schemas_len, vm_len, vcpu_len, cpus_len, greeting_len;
};

/* -EINVAL: no schemas. */
int qmp_parse_answers(const struct qmp_answers *answers,
		      struct qmp_stats **ret_stats);

/*
 * 1 when this QEMU sends every list value of query-stats last element
 * first, 0 when in the kernel's order. A version of 0.0.0 (unknown) is
 * taken as reversed, like every QEMU that has query-stats so far.
 */
int qmp_lists_reversed(const struct qmp_version *qemu);

/* ------------------------------------------------------------- debugfs.c */

/*
 * /sys/kernel/debug/kvm/<pid>-<fd>/: one file per VM stat and per vCPU
 * stat summed over the vCPUs (any VMM, any kernel with KVM; root). The
 * root is a parameter so tests can use a fake tree.
 */
struct debugfs_vm;

/*
 * 0 when root can be opened and listed with the caller's effective
 * credentials, capabilities included (raise CAP_DAC_READ_SEARCH first: the
 * debugfs mount point is root's 0700). Not access(2): that checks with the
 * real uid and, for a non-root one, without any capability, so it says
 * "no" to a plugin of user netdata that holds CAP_DAC_READ_SEARCH.
 * -ENOENT debugfs not mounted (or KVM without debugfs), -EACCES/-EPERM
 * not permitted, -ENOTDIR, other -errno from open.
 */
int debugfs_probe(const char *root);

/* Calls cb for every "<pid>-<fd>" directory under root. Returns how many. */
int debugfs_scan(const char *root, int (*cb)(pid_t pid, int vm_fd, void *ctx),
		 void *ctx);

/*
 * Builds the schema of one VM's directory: a stat per file, typed by the
 * same name in known[] (binary schemas of this kernel) when there, else by
 * the file mode (0444: instant) and the name (max_*: peak, *_ns: seconds
 * with exponent -9). Histogram files (bucket 0 only) are left out, and so
 * is every name skip() says another source serves. Files the kernel
 * refuses (lockdown: EPERM) are left out and counted in *ret_denied.
 * -ENOENT: no such directory.
 */
int debugfs_open(const char *root, pid_t pid, int vm_fd,
		 const struct kvmstats_schema *const *known, size_t nknown,
		 bool (*skip)(const char *name, void *ctx), void *ctx,
		 struct debugfs_vm **ret_vm, unsigned *ret_denied);
const struct kvmstats_schema *debugfs_schema(const struct debugfs_vm *vm);
/* Reads every file of the schema into values (num_values slots). */
int debugfs_sample(struct debugfs_vm *vm, uint64_t *values);
void debugfs_close(struct debugfs_vm *vm);	/* accepts NULL */

/* --------------------------------------------------------------- acquire.c */

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

/* ---------------------------------------------------------------- uevent.c */

enum kvm_uevent_kind { KVM_UEVENT_OTHER, KVM_UEVENT_CREATE, KVM_UEVENT_DESTROY };

struct kvm_uevent {
	enum kvm_uevent_kind kind;
	pid_t pid;		/* the VM's creator, initial pid namespace */
};

/*
 * A non-blocking socket (O_CLOEXEC) that receives the kernel's uevents of
 * the kvm device only: KVM's VM create and destroy events. The caller
 * closes it. -errno (e.g. -EPROTONOSUPPORT, -EPERM) if none can be had.
 */
int uevent_open(void);

/*
 * The next KVM create or destroy event waiting on fd: 1 with *ret_event,
 * 0 when none is left. -ENOBUFS: events were lost (the receive buffer
 * overflowed), the caller must look at everything.
 */
int uevent_next(int fd, struct kvm_uevent *ret_event);

/*
 * One kvm device uevent datagram. KVM_UEVENT_OTHER for a kvm event that
 * is neither create nor destroy. -EBADMSG: not a kvm device uevent, or a
 * create/destroy without a valid PID.
 */
int uevent_parse(const char *msg, size_t len, struct kvm_uevent *ret_event);

/* ------------------------------------------------------------------ host.c */

/* Where a VM's or vCPU's values come from, best first. */
enum kvmstats_source {
	FROM_NONE,
	FROM_FD,		/* a stats fd the VMM holds, copied */
	FROM_QMP,		/* QEMU's query-stats */
	FROM_DEBUGFS,		/* /sys/kernel/debug/kvm/<pid>-<fd>/ */
	FROM_LIBVIRT,		/* libvirtd's domain stats */
};

/* "fd", "qmp", "debugfs", "libvirt", "none". */
const char *host_source_name(enum kvmstats_source source);

struct kvmstats_vcpu {
	int id;			/* N of kvm-vcpu-stats:N, or QEMU's cpu-index */
	int vmm_fd;		/* the stats fd's number in the VMM, -1 if none */
	enum kvmstats_source source;
	struct statsfd *stats;
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
	int pidfd;
	void *user;		/* front end's per-VM state */
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
	/* A source of VM-wide stats came (or its schema changed) later. */
	void (*vm_changed)(struct kvmstats_vm *vm, void *ctx);
	/* Called before the VM's fds are closed and its memory freed. */
	void (*vm_removed)(struct kvmstats_vm *vm, void *ctx);
};

/*
 * A QMP socket that failed (source_qmp.c): not waited for until a probe of
 * it answers in time; probes start after a backoff (1 s doubling to 60 s).
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
	unsigned fds_limited;		/* stats fds not taken: limit reached */
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
	size_t fd_limit;		/* that limit (kvmstats_sources.max_fds) */
	bool walked;			/* this rescan walked all of /proc */
	bool libvirt_asked;		/* a libvirt URI is set */
	int libvirt_error;		/* its last sample: 0 or -errno (-ETIMEDOUT: slow) */
	int first_error;		/* first other -errno, 0 if none */
};

struct kvmstats_host;

/* ------------------------------------------------------------------ news.c */

/* What scan_news() said last; zero-initialize. */
struct scan_said {
	int rescan_error;
	int failed_error;
	unsigned unread_vms, unread_fds;
	int unread_error;
	pid_t unread_pid;
	int libvirt_error;	/* the libvirt source's state last said */
	struct {		/* the QMP sockets last said to fail */
		char path[108];
		pid_t pid;
		int error;	/* -ETIMEDOUT for every "no answer in time" */
	} qmp[KVMSTATS_QMP_STUCK_MAX];
	unsigned nqmp;
	unsigned qmp_more;	/* failing sockets beyond those */
};

/*
 * Calls say() with each line worth saying about a rescan that returned r
 * (and, when r >= 0, filled rep): a failed rescan, processes skipped for an
 * error, stats fds a VMM holds that could not be taken, QMP sockets that
 * did not answer. Each state is said once, and again only when it changes
 * or clears. The line has no prefix
 * and no newline.
 */
void scan_news(struct scan_said *said, int r,
	       const struct kvmstats_scan_report *rep, struct kvmstats_host *host,
	       void (*say)(const char *line, void *ctx), void *ctx);

/* Sources besides held stats fds; all off by default. */
struct kvmstats_sources {
	bool no_fds;			/* ignore held stats fds (a kernel without them) */
	const char *const *qmp;		/* QMP socket paths or globs */
	size_t nqmp;
	int qmp_timeout_ms;		/* per VM and sample; 0: 500 */
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
	 * Stats fds held at most over all VMs; 0: 4096. Each costs ~2.5 KiB
	 * here and one fd of RLIMIT_NOFILE (acquire_raise_nofile()).
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
 * another schema or no sample yet is left out. ret_values has
 * schema->num_values slots. Returns the number of vCPUs counted; 0 when
 * the last sample of any of them failed (no total is better than a stale
 * or partial one).
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

/* ------------------------------------------------------------------ priv.c */

/* What the process may do, for an exact message once at start. */
struct priv_report {
	bool root;			/* effective uid 0 */
	bool sys_ptrace;		/* CAP_SYS_PTRACE permitted */
	bool dac_read_search;		/* CAP_DAC_READ_SEARCH permitted */
};

int priv_probe(struct priv_report *ret_report);

/*
 * For a process of our own (kvmstat, the Netdata plugin) only: keep just
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH permitted (those we have), none
 * effective or inheritable, no ambient, the bounding set reduced to them when
 * CAP_SETPCAP allows, and no_new_privs. Never call it inside collectd.
 */
int priv_restrict(void);

/* The effective set before priv_raise(), for priv_restore(). */
struct priv_saved {
	bool raised;
	bool had_ptrace;
	bool had_dac;
};

/*
 * Makes the acquisition capabilities effective in this thread (those that
 * are permitted) and remembers what was effective before, so that a
 * process whose other code relies on them (collectd as root) sees no change.
 */
int priv_raise(struct priv_saved *ret_saved);
int priv_restore(const struct priv_saved *saved);

/* ---------------------------------------------------------------- filter.c */

/*
 * Include and exclude lists of names. An entry written "/regex/" is a POSIX
 * extended regex, any other entry matches exactly. A name passes when the
 * include list is empty or one include entry matches it, and no exclude
 * entry matches it. collectd's IgnoreSelected false puts the entries in the
 * include list, IgnoreSelected true in the exclude list.
 */
struct filter;

int filter_new(struct filter **ret_filter);
void filter_free(struct filter *f);	/* accepts NULL */

/*
 * -EINVAL: empty entry, a regex that does not compile, or one whose compiled
 * form would be too large (glibc's regcomp() can take gigabytes). -ENOMEM.
 */
int filter_add(struct filter *f, const char *entry, bool exclude);

/* 1 when name passes, 0 when it is filtered out. NULL f passes all. */
int filter_match(const struct filter *f, const char *name);

/* 1 when the filter has no entries. */
int filter_empty(const struct filter *f);

/* 1 when it has include entries (only what they match passes), else 0. */
int filter_has_includes(const struct filter *f);

/* --------------------------------------------------------------- catalog.c */

enum catalog_group {
	CATALOG_EXITS,
	CATALOG_PAGE_FAULTS,
	CATALOG_MMU,
	CATALOG_TLB,
	CATALOG_HALT,
	CATALOG_INTERRUPTS,
	CATALOG_EMULATION,
	CATALOG_MEMORY,
	CATALOG_NESTED,
	CATALOG_PREEMPTION,
	CATALOG_OTHER,
	CATALOG_NGROUPS
};

/* By rules on the name, so unknown arm64/ppc64/future stats land sensibly. */
enum catalog_group catalog_group_of(const char *stat_name);
/* "exits", "page_faults", ...: stable, used in chart ids and identifiers. */
const char *catalog_group_name(enum catalog_group g);
/* "VM exits", "Page faults", ...: for titles. */
const char *catalog_group_title(enum catalog_group g);

/* A kvmstat(1) column and the stat names that may fill it, best first. */
struct catalog_column {
	const char *heading;		/* "exits", "haltx", ... */
	const char *const *stats;	/* NULL-terminated candidates */
	const char *help;
};

extern const struct catalog_column catalog_kvmstat_columns[];
extern const size_t catalog_kvmstat_ncolumns;

/*
 * Index of the first candidate of column that schema has, or -ENOENT when
 * this kernel has none of them (kvmstat prints "-").
 */
int catalog_column_find(const struct catalog_column *column,
			const struct kvmstats_schema *schema);

#endif
