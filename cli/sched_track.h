/* SPDX-License-Identifier: MIT */
/*
 * sched_track.h: run% and wait% of kvmstat's table and of kvmstat --top,
 * from the scheduler counters the core keeps per vCPU (sched_total) and
 * per VM (sched_vcpus): their change between the last two samples, in
 * percent of one CPU. What is kept between samples hangs off
 * kvmstats_vcpu.user and kvmstats_vm.user, which kvmstat gives to no one
 * else.
 */
#ifndef KVMSTAT_SCHED_TRACK_H
#define KVMSTAT_SCHED_TRACK_H

#include <stdbool.h>

#include "kvmstats.h"

/* After each host_sample(): every VM's and vCPU's counters, timed. */
void sched_track_all(struct kvmstats_host *host);

/* The vm_removed hook's part: frees what the VM and its vCPUs kept. */
void sched_track_forget(struct kvmstats_vm *vm);

/*
 * Run and run-queue wait over the last interval, in percent of one CPU
 * (a VM's: its vCPUs' sum, up to 100 % per vCPU), from vm->user or
 * vcpu->user: false before two samples, or while no thread is known
 * (known false).
 */
bool sched_track_pct(const void *user, bool known, double *ret_run, double *ret_wait);

/* Whether a thread is known now: kvmstats_vcpu.sched, kvmstats_vm.sched_known. */
bool sched_track_vcpu_known(const struct kvmstats_vcpu *vcpu);
bool sched_track_vm_known(const struct kvmstats_vm *vm);

#endif
