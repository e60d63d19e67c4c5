/* SPDX-License-Identifier: MIT */
/*
 * source_debugfs.c: /sys/kernel/debug/kvm/<pid>-<fd>/ (debugfs.c), the
 * last source of the table: a VM's VM-wide stats and its vCPU stats
 * summed, for every name no other source serves, in the VM-wide slot while
 * no better source wants it (a VM stats fd the VMM opens later takes it,
 * summed vCPU stats and all). Read at most every debugfs_every_us.
 */
#include <errno.h>
#include <stdlib.h>

#include "source.h"
#include "debugfs.h"
#include "priv.h"

struct debugfs_state {
	uint64_t due_us;	/* CLOCK_MONOTONIC µs of the next read */
	uint64_t *scratch;	/* values, scratch_len slots */
	size_t scratch_len;
};

/* What debugfs holds of one VM. */
struct debugfs_priv {
	struct debugfs_vm *dir;
	size_t nvcpus;		/* vCPUs when it was opened */
};

static void debugfs_prepare(struct source_env *env, struct kvmstats_scan_report *rep)
{
	struct debugfs_state *st = env->state[FROM_DEBUGFS];

	(void)rep;
	if (st && env->settings_changed)
		st->due_us = 0;
}

/* debugfs serves what no other source does: never a stat twice. */
static bool served_elsewhere(const char *name, void *ctx)
{
	const struct kvmstats_vm *vm = ctx;

	for (size_t i = 0; i < vm->nvcpus; i++)
		if (schema_find(vm->vcpus[i]->stats->schema, name) >= 0)
			return true;
	return false;
}

static void attach_vm(struct source_env *env, struct host_vm *hv,
		      const struct kvmstats_schema *const *known, size_t nknown,
		      struct kvmstats_scan_report *rep)
{
	struct kvmstats_vm *vm = &hv->pub;
	struct debugfs_priv *dp = hv->priv[FROM_DEBUGFS];
	struct statsfd *s;
	unsigned denied = 0;
	int r;

	/*
	 * vCPUs came since debugfs was opened for the VM (a VMM seen before
	 * it opened its vCPU stats fds, or a hot-plug): what they serve must
	 * leave debugfs, or it is reported twice.
	 */
	if (vm->vm_source == FROM_DEBUGFS && dp && dp->nvcpus != vm->nvcpus)
		vm_drop_vm_stats(env, hv);
	/* The directory is <pid>-<fd>: only a VM's own fd names it. */
	if (!source_may_take_vm(hv, &source_debugfs) || vm->vm_fd < 0)
		return;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return;
	r = debugfs_open(env->debugfs, vm->pid, vm->vm_fd, known, nknown,
			 served_elsewhere, vm, &dp->dir, &denied);
	rep->debugfs_denied += denied;
	if (r >= 0)
		r = statsfd_virtual((struct kvmstats_schema *)debugfs_schema(dp->dir),
				    "debugfs", env->vcache, &s);
	if (r < 0) {
		debugfs_close(dp->dir);
		free(dp);
		return;
	}
	dp->nvcpus = vm->nvcpus;
	vm_take_vm_stats(env, hv, &source_debugfs, s);
	hv->priv[FROM_DEBUGFS] = dp;
}

static void debugfs_attach(struct source_env *env, struct kvmstats_scan_report *rep)
{
	const struct kvmstats_schema *const *known;
	size_t nknown = statsfd_cache_schemas(env->cache, &known);
	int r;

	if (!env->debugfs)
		return;
	if (!env->state[FROM_DEBUGFS] &&
	    !(env->state[FROM_DEBUGFS] = calloc(1, sizeof(struct debugfs_state))))
		return;
	/* With the capabilities host_rescan() raised: never access(2). */
	r = debugfs_probe(env->debugfs);
	if (r < 0) {
		rep->debugfs_missing = true;
		rep->debugfs_error = r;
		return;
	}
	for (size_t i = 0; i < env->nvms; i++)
		attach_vm(env, env->vms[i], known, nknown, rep);
}

static void sample_vm(struct debugfs_state *st, struct host_vm *hv)
{
	struct debugfs_priv *dp = hv->priv[FROM_DEBUGFS];
	size_t n = debugfs_schema(dp->dir)->num_values;
	int r;

	if (n > st->scratch_len) {
		uint64_t *p = reallocarray(st->scratch, n, sizeof(*p));

		if (!p) {
			hv->pub.vm_stats->error = -ENOMEM;
			return;
		}
		st->scratch = p;
		st->scratch_len = n;
	}
	r = debugfs_sample(dp->dir, st->scratch);
	if (r < 0)
		hv->pub.vm_stats->error = r;
	else
		statsfd_push(hv->pub.vm_stats, st->scratch);
}

static int debugfs_sample_all(struct source_env *env)
{
	struct debugfs_state *st = env->state[FROM_DEBUGFS];
	struct priv_saved saved = { 0 };
	uint64_t now;
	bool due, read_all;

	if (!env->debugfs || !st)
		return 0;
	/* A tenth of the period early is on time: samples jitter. */
	now = source_now_usec();
	due = env->debugfs_every_us == 0 ||
	      now + env->debugfs_every_us / 10 >= st->due_us;
	read_all = due;
	if (due && env->debugfs_every_us)
		st->due_us = now + env->debugfs_every_us;
	for (size_t i = 0; !due && i < env->nvms; i++)
		if (env->vms[i]->priv[FROM_DEBUGFS] && env->vms[i]->pub.vm_stats->samples == 0)
			due = true;	/* a new VM: only it is read below */
	if (!due)
		return 0;	/* no capability raised for nothing */
	/* debugfs needs CAP_DAC_READ_SEARCH (root-only directories). */
	if (env->raise_priv)
		priv_raise(&saved);
	for (size_t i = 0; i < env->nvms; i++) {
		struct host_vm *hv = env->vms[i];

		if (hv->priv[FROM_DEBUGFS] && (read_all || hv->pub.vm_stats->samples == 0))
			sample_vm(st, hv);
	}
	if (env->raise_priv)
		priv_restore(&saved);
	return 0;
}

/* Its VM-wide holder is all debugfs serves of a VM: drop_vm and detach alike. */
static void debugfs_drop_vm(struct source_env *env, struct host_vm *hv)
{
	struct debugfs_priv *dp = hv->priv[FROM_DEBUGFS];

	(void)env;
	if (!dp)
		return;
	debugfs_close(dp->dir);
	free(dp);
	hv->priv[FROM_DEBUGFS] = NULL;
}

static void debugfs_cleanup(struct source_env *env)
{
	struct debugfs_state *st = env->state[FROM_DEBUGFS];

	if (st)
		free(st->scratch);
	free(st);
	env->state[FROM_DEBUGFS] = NULL;
}

const struct source_ops source_debugfs = {
	.name = "debugfs",
	.id = FROM_DEBUGFS,
	.serves = SOURCE_VM_STATS,
	.prepare = debugfs_prepare,
	.attach = debugfs_attach,
	.sample = debugfs_sample_all,
	.detach = debugfs_drop_vm,
	.drop_vm = debugfs_drop_vm,
	.cleanup = debugfs_cleanup,
};
