/* SPDX-License-Identifier: MIT */
/*
 * libvirt_bench.c: what host_sample() costs with the libvirt source on and
 * off, for the VMs of the pids given. Prints one JSON object: wall and CPU
 * (this process, the libvirt worker thread included) per sample, and how
 * many VMs and vCPUs each source served.
 *
 *   libvirt_bench [--libvirt URI] [--samples N] PID...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kvmstats.h"

#define MAX_PIDS 256

struct pids {
	pid_t pid[MAX_PIDS];
	size_t n;
};

static bool want(const struct discover_proc *p, void *ctx)
{
	const struct pids *w = ctx;

	for (size_t i = 0; i < w->n; i++)
		if (w->pid[i] == p->pid)
			return true;
	return false;
}

static double now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	const struct kvmstats_hooks hooks = { .want = want };
	struct kvmstats_sources src = { 0 };
	struct kvmstats_host *host;
	struct pids w = { 0 };
	unsigned samples = 100, by_src[8] = { 0 }, vm_src[8] = { 0 };
	double wall0, cpu0, wall, cpu;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--libvirt") == 0 && i + 1 < argc)
			src.libvirt_uri = argv[++i];
		else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
			samples = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (w.n < MAX_PIDS)
			w.pid[w.n++] = (pid_t)strtol(argv[i], NULL, 10);
	}
	r = host_new("/proc", false, &hooks, &w, &host);
	if (r >= 0)
		r = host_set_sources(host, &src);
	if (r >= 0)
		r = host_rescan(host, NULL);
	if (r < 0) {
		fprintf(stderr, "libvirt_bench: %s\n", strerror(-r));
		return 1;
	}
	host_sample(host);	/* the first: libvirt's labels, vCPUs made */
	host_sample(host);
	wall0 = now_us(CLOCK_MONOTONIC);
	cpu0 = now_us(CLOCK_PROCESS_CPUTIME_ID);
	for (unsigned i = 0; i < samples; i++)
		host_sample(host);
	wall = (now_us(CLOCK_MONOTONIC) - wall0) / samples;
	cpu = (now_us(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / samples;
	for (size_t i = 0; i < host_nvms(host); i++) {
		const struct kvmstats_vm *vm = host_vm(host, i);

		vm_src[vm->vm_source & 7]++;
		for (size_t j = 0; j < vm->nvcpus; j++)
			by_src[vm->vcpus[j]->source & 7]++;
	}
	printf("{\"vms\": %zu, \"samples\": %u, \"wall_us\": %.1f, \"cpu_us\": %.1f, "
	       "\"vm_src\": {\"fd\": %u, \"libvirt\": %u, \"none\": %u}, "
	       "\"vcpu_src\": {\"fd\": %u, \"libvirt\": %u}}\n",
	       host_nvms(host), samples, wall, cpu, vm_src[FROM_FD], vm_src[FROM_LIBVIRT],
	       vm_src[FROM_NONE], by_src[FROM_FD], by_src[FROM_LIBVIRT]);
	host_free(host);
	return 0;
}
