/*
 * source_qmp.c: QEMU's QMP query-stats (QEMU >= 7.1; qmp.c) for the
 * sockets a front end names (paths or globs). Serves a VM's VM-wide stats
 * and each vCPU that no better source serves (source_may_take_*). A
 * socket is tied to its VM by the peer's pid (SO_PEERCRED) at a rescan;
 * one connect-query-disconnect per VM and sample, bounded by a timeout.
 */
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"
#include "qmp.h"

/*
 * Takes what a query-stats answer has that no better source serves, at
 * every answer: a worse source's holder is taken over (libvirt's, say,
 * once the socket is configured), a better one's left alone.
 */
static int apply_qmp(struct source_env *env, struct host_vm *hv,
		     const struct qmp_stats *qs)
{
	struct kvmstats_vm *vm = &hv->pub;
	int r;

	if (qs->vm_schema && source_may_take_vm(hv, &source_qmp)) {
		struct statsfd *s;

		r = statsfd_virtual(qs->vm_schema, "qmp", env->vcache, &s);
		if (r < 0)
			return r;
		vm_take_vm_stats(env, hv, &source_qmp, s);
	}
	if (vm->vm_source == FROM_QMP && qs->vm_schema &&
	    schema_equal(vm->vm_stats->schema, qs->vm_schema))
		statsfd_push(vm->vm_stats, qs->vm_values);

	for (size_t i = 0; qs->vcpu_schema && i < qs->nvcpus; i++) {
		struct kvmstats_vcpu *c = vm_find_vcpu(vm, qs->vcpu_index[i]);

		if (!c) {
			r = vm_add_virtual_vcpu(env, hv, qs->vcpu_index[i], FROM_QMP,
						"qmp", qs->vcpu_schema, &c);
			if (r < 0)
				return r;
		} else if (source_may_take_vcpu(c, &source_qmp)) {
			struct statsfd *s;

			r = statsfd_virtual(qs->vcpu_schema, "qmp", env->vcache, &s);
			if (r < 0)
				return r;
			vm_take_vcpu(env, hv, c, &source_qmp, s, -1);
		}
		if (c->source == FROM_QMP && schema_equal(c->stats->schema, qs->vcpu_schema))
			statsfd_push(c->stats, qs->vcpu_values[i]);
	}
	return 0;
}

static bool qmp_path_taken(const struct source_env *env, const char *path)
{
	for (size_t i = 0; i < env->nvms; i++)
		if (env->vms[i]->pub.qmp_path &&
		    strcmp(env->vms[i]->pub.qmp_path, path) == 0)
			return true;
	return false;
}

/* This interval has no QMP values for hv: its QMP holders say why. */
static void mark_failed(struct host_vm *hv, int r)
{
	struct kvmstats_vm *vm = &hv->pub;

	if (vm->vm_source == FROM_QMP)
		vm->vm_stats->error = r;
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i]->source == FROM_QMP)
			vm->vcpus[i]->stats->error = r;
}

/* Asks each configured socket not yet tied to a VM whose it is. */
static void qmp_attach(struct source_env *env, struct kvmstats_scan_report *rep)
{
	for (size_t i = 0; i < env->nqmp; i++) {
		glob_t g;

		if (glob(env->qmp[i], GLOB_NOSORT, NULL, &g) != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc; j++) {
			const char *path = g.gl_pathv[j];
			struct qmp_stats *qs;
			struct host_vm *hv;
			int r;

			if (qmp_path_taken(env, path))
				continue;
			r = qmp_query_stats(path, env->qmp_timeout_ms, &qs);
			if (r < 0) {
				if (rep->qmp_failed++ == 0)
					rep->qmp_error = r;
				continue;
			}
			/* Not a VM we know: filtered out, or not discovered yet. */
			hv = vm_find_by_pid(env, qs->pid);
			if (hv && (hv->pub.qmp_path = strdup(path)))
				r = apply_qmp(env, hv, qs);
			/*
			 * Taken in part (-ENOMEM): untie the socket, so that
			 * the next rescan takes the rest, rather than leave
			 * the VM without stats until a sample comes.
			 */
			if (hv && r < 0) {
				mark_failed(hv, r);
				free(hv->pub.qmp_path);
				hv->pub.qmp_path = NULL;
			}
			qmp_stats_free(qs);
			if (r < 0 && rep->first_error == 0)
				rep->first_error = r;
		}
		globfree(&g);
	}
}

static void sample_vm(struct source_env *env, struct host_vm *hv)
{
	struct kvmstats_vm *vm = &hv->pub;
	struct qmp_stats *qs = NULL;
	int r;

	r = qmp_query_stats(vm->qmp_path, env->qmp_timeout_ms, &qs);
	if (r >= 0 && qs->pid != vm->pid)
		r = -ESTALE;	/* another QEMU now listens there */
	if (r >= 0)
		r = apply_qmp(env, hv, qs);
	qmp_stats_free(qs);
	if (r < 0)
		mark_failed(hv, r);	/* busy or gone */
}

static int qmp_sample(struct source_env *env)
{
	if (env->nqmp == 0)
		return 0;
	for (size_t i = 0; i < env->nvms; i++)
		if (env->vms[i]->pub.qmp_path)
			sample_vm(env, env->vms[i]);
	return 0;
}

static void qmp_detach(struct source_env *env, struct host_vm *hv)
{
	(void)env;
	free(hv->pub.qmp_path);
	hv->pub.qmp_path = NULL;
}

const struct source_ops source_qmp = {
	.name = "qmp",
	.id = FROM_QMP,
	.serves = SOURCE_VM_STATS | SOURCE_VCPU_STATS,
	.attach = qmp_attach,
	.sample = qmp_sample,
	.detach = qmp_detach,
};
