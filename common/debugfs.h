/* SPDX-License-Identifier: MIT */
/*
 * debugfs.h: KVM's debugfs directories, /sys/kernel/debug/kvm/<pid>-<fd>/ (debugfs.c).
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_DEBUGFS_H
#define KVMSTATS_DEBUGFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "decode.h"

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
 * refuses (lockdown: EPERM) are left out and counted in *ret_denied, files
 * whose name no stat can have (decode_name_valid()) in the schema's
 * refused.
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

#endif
