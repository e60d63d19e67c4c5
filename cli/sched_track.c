/* SPDX-License-Identifier: MIT */
/*
 * sched_track.c: the run% and wait% columns (sched_track.h), shared by
 * kvmstat's table and kvmstat --top so that both say the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "sched_track.h"

/*
 * What kvmstat keeps of a vCPU or a VM between samples: its scheduler
 * totals (counters that never go back, over thread replacements) at the
 * last two samples.
 */
struct sched_track {
	struct kvmstats_sched_total prev, cur;
	uint64_t prev_ns, cur_ns;	/* CLOCK_MONOTONIC of the samples */
	unsigned samples;
};

static void track(void **user, const struct kvmstats_sched_total *t, uint64_t now)
{
	struct sched_track *k = *user;

	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return;		/* no rate for it: "-" */
		*user = k;
	}
	k->prev = k->cur;
	k->prev_ns = k->cur_ns;
	k->cur = *t;
	k->cur_ns = now;
	k->samples++;
}

void sched_track_all(struct kvmstats_host *host)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	for (size_t i = 0; i < host_nvms(host); i++) {
		struct kvmstats_vm *vm = host_vm(host, i);

		track(&vm->user, &vm->sched_vcpus, now);
		for (size_t j = 0; j < vm->nvcpus; j++)
			track(&vm->vcpus[j]->user, &vm->vcpus[j]->sched_total, now);
	}
}

void sched_track_forget(struct kvmstats_vm *vm)
{
	for (size_t j = 0; j < vm->nvcpus; j++) {
		free(vm->vcpus[j]->user);
		vm->vcpus[j]->user = NULL;
	}
	free(vm->user);
	vm->user = NULL;
}

bool sched_track_pct(const void *user, bool known, double *ret_run, double *ret_wait)
{
	const struct sched_track *k = user;
	double ns;

	if (!k || !known || k->samples < 2 || k->cur_ns <= k->prev_ns)
		return false;
	ns = (double)(k->cur_ns - k->prev_ns);
	*ret_run = (double)(k->cur.run_ns - k->prev.run_ns) * 100.0 / ns;
	*ret_wait = (double)(k->cur.wait_ns - k->prev.wait_ns) * 100.0 / ns;
	return true;
}

bool sched_track_vcpu_known(const struct kvmstats_vcpu *vcpu)
{
	return vcpu->sched.tid != 0;
}

bool sched_track_vm_known(const struct kvmstats_vm *vm)
{
	return vm->sched_known > 0;
}
