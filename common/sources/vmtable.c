/* SPDX-License-Identifier: MIT */
/*
 * vmtable.c: what every source does to the host's VM table (source.h):
 * insert and find vCPUs, hand a VM-wide slot or a vCPU from one source to
 * a better one, find a VM by its VMM's pid. Below the sources and
 * the host alike; it calls neither.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "source.h"

int vm_insert_vcpu(struct kvmstats_vm *vm, struct kvmstats_vcpu *c)
{
	struct kvmstats_vcpu **v;
	size_t at = vm->nvcpus;

	v = reallocarray(vm->vcpus, vm->nvcpus + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	vm->vcpus = v;
	while (at > 0 && (v[at - 1]->id > c->id ||
			  (v[at - 1]->id == c->id && v[at - 1]->vmm_fd > c->vmm_fd)))
		at--;
	memmove(&v[at + 1], &v[at], (vm->nvcpus - at) * sizeof(*v));
	v[at] = c;
	vm->nvcpus++;
	return 0;
}

struct kvmstats_vcpu *vm_find_vcpu(const struct kvmstats_vm *vm, int id)
{
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i]->id == id)
			return vm->vcpus[i];
	return NULL;
}

int vm_add_virtual_vcpu(struct source_env *env, struct host_vm *hv, int id,
			enum kvmstats_source source, const char *name,
			struct kvmstats_schema *schema, struct kvmstats_vcpu **ret)
{
	struct kvmstats_vcpu *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->id = id;
	c->vmm_fd = -1;
	c->source = source;
	r = statsfd_virtual(schema, name, env->vcache, &c->stats);
	if (r >= 0)
		r = vm_insert_vcpu(&hv->pub, c);
	if (r < 0) {
		statsfd_close(c->stats);
		free(c);
		return r;
	}
	env->changes++;		/* the host says vcpu_added */
	*ret = c;
	return 0;
}

void vm_drop_vm_stats(struct source_env *env, struct host_vm *hv)
{
	struct kvmstats_vm *vm = &hv->pub;

	/* Only what the holder keeps for the slot: detach is for hv leaving. */
	if (hv->vm_owner && hv->vm_owner->drop_vm)
		hv->vm_owner->drop_vm(env, hv);
	statsfd_close(vm->vm_stats);
	vm->vm_stats = NULL;
	vm->vm_source = FROM_NONE;
	hv->vm_owner = NULL;
	hv->changed = true;
	env->changes++;
}

void vm_take_vm_stats(struct source_env *env, struct host_vm *hv,
		      const struct source_ops *ops, struct statsfd *stats)
{
	vm_drop_vm_stats(env, hv);
	hv->pub.vm_stats = stats;
	hv->pub.vm_source = ops->id;
	hv->vm_owner = ops;
}

void vm_take_vcpu(struct source_env *env, struct host_vm *hv, struct kvmstats_vcpu *c,
		  const struct source_ops *ops, struct statsfd *stats, int vmm_fd)
{
	const struct source_ops *was = source_of(c->source);

	if (was && was->drop_vcpu)
		was->drop_vcpu(env, hv, c);
	statsfd_close(c->stats);
	c->stats = stats;
	c->source = ops->id;
	c->vmm_fd = vmm_fd;
	hv->changed = true;
	env->changes++;
}

struct host_vm *vm_find_by_pid(const struct source_env *env, pid_t pid)
{
	for (size_t i = 0; i < env->nvms; i++)
		if (env->vms[i]->pub.pid == pid)
			return env->vms[i];
	return NULL;
}

uint64_t source_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
