/* SPDX-License-Identifier: MIT */
/*
 * sources.c: the table of sources (source.h). Its order is the precedence,
 * and the only place that says it: a source earlier in the table is
 * preferred for every stat both have. The host walks the table in this
 * order at every rescan and sample; a source asks source_may_take_vm()
 * and source_may_take_vcpu() before it takes anything, and never names
 * another source. A source is one file (source_*.c) and one line here.
 */
#include <stddef.h>

#include "source.h"

const struct source_ops *const sources[] = {
	&source_fd,		/* held stats fds: every stat, one pread */
	&source_qmp,		/* QMP sockets a front end names */
	&source_libvirt,	/* libvirtd's domain stats, when asked for */
	&source_debugfs,	/* what no other source serves */
};
const size_t nsources = sizeof(sources) / sizeof(sources[0]);

const struct source_ops *source_of(enum kvmstats_source id)
{
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->id == id)
			return sources[i];
	return NULL;
}

size_t source_rank(enum kvmstats_source id)
{
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->id == id)
			return i;
	return nsources;	/* FROM_NONE: below every source */
}

bool source_may_take_vm(const struct host_vm *hv, const struct source_ops *ops)
{
	return source_rank(ops->id) < source_rank(hv->pub.vm_source);
}

bool source_may_take_vcpu(const struct kvmstats_vcpu *vcpu, const struct source_ops *ops)
{
	return !vcpu || source_rank(ops->id) < source_rank(vcpu->source);
}

const char *host_source_name(enum kvmstats_source source)
{
	const struct source_ops *ops = source_of(source);

	return ops ? ops->name : "none";
}
