/* SPDX-License-Identifier: MIT */
/*
 * source_libvirt.h: the pure half of source_libvirt.c, libvirt's typed
 * parameters -> a domain's stats -> schemas, for source_libvirt.c and
 * tests. Internal: front ends include kvmstats.h only.
 */
#ifndef KVMSTATS_SOURCE_LIBVIRT_H
#define KVMSTATS_SOURCE_LIBVIRT_H

#include <libvirt/libvirt.h>

#include "kvmstats.h"

/* One stat of one target as libvirt gave it. */
struct lv_value {
	char *name;
	char kind;		/* 's'um, 'c'ur, 'm'ax */
	bool boolean;
	uint64_t value;
};

struct lv_target {
	struct lv_value *v;
	size_t n, cap;
};

/* One domain of one answer. */
struct lv_domain {
	char uuid[VIR_UUID_STRING_BUFLEN];
	char *name;
	struct kvmstats_label labels[4];	/* title, nova_name, nova_flavor, nova_project */
	size_t nlabels;
	struct lv_target vm;
	struct lv_target *vcpu;	/* by vCPU index */
	size_t nvcpus;
};

/*
 * Takes one parameter of a domain's stats record into d: "vm.<stat>.<sum|
 * cur|max>" or "vcpu.<N>.<stat>.<sum|cur>"; others are not KVM's and are
 * skipped. The stat names are libvirt's (QEMU's) bytes, checked only by
 * libvirt_target_schema(). -ENOMEM.
 */
int libvirt_take_param(struct lv_domain *d, const virTypedParameter *p);

/*
 * The schema of one target (its stats sorted by name, one slot each) and
 * its values in *ret_values (the caller frees both), typed by the stat of
 * the same name in cache's schemas (the held fds') when there. A stat
 * whose name is no C identifier (decode_name_valid()) is left out and
 * counted in the schema's refused. -ENOENT: no stats (or none left).
 * -ENOMEM.
 */
int libvirt_target_schema(const struct statsfd_cache *cache, struct lv_target *t,
			  struct kvmstats_schema **ret_schema, uint64_t **ret_values);

/* Frees what d holds (not d). */
void libvirt_domain_done(struct lv_domain *d);

#endif
