/* SPDX-License-Identifier: MIT */
/* ident.h: names made safe for collectd identifiers (ident.c). */
#ifndef KVMSTATS_COLLECTD_IDENT_H
#define KVMSTATS_COLLECTD_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "kvmstats.h"

/*
 * s (a VM's or a stat's name, any bytes) into buf as part of a collectd
 * identifier and file name: no '/', no leading '.' or "..", no control
 * byte, space or '"', valid UTF-8; at most size - 1 bytes.
 */
void ident_safe_name(const char *s, char *buf, size_t size);

/*
 * The collectd type a stat is sent as: counters "derive" (collectd computes
 * the rates), instant and peak values and booleans "gauge", byte sizes
 * "bytes"; a histogram one "derive" per bucket; a stat this build does not
 * know raw as "gauge". Also what docs/metrics.md says (make docs).
 */
const char *ident_type_of(const struct kvmstats_desc *d);

/*
 * The scheduler values of a VM (vcpu NULL) or of one of its vCPUs, each a
 * "derive" of ns (collectd computes the rates): type_instance
 * "vcpu_run_ns", "vcpu_wait_ns" and, for a VM, "vmm_other_run_ns" (its
 * VMM's other threads). From the counters that never go back
 * (kvmstats_sched_total). Writes up to IDENT_SCHED_MAX entries and
 * returns how many; 0 while no vCPU thread is known (none is sent, as a
 * counter that did not move would look like an idle VM).
 */
#define IDENT_SCHED_MAX 3
struct ident_sched {
	const char *type_instance;
	uint64_t value;
};
size_t ident_sched_values(const struct kvmstats_vm *vm, const struct kvmstats_vcpu *vcpu,
			  struct ident_sched ret[IDENT_SCHED_MAX]);

#endif
