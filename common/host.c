/* SPDX-License-Identifier: MIT */
/*
 * host.c: the VMs of one host and the stats fds taken from their VMMs.
 *
 * A rescan (rescan.c) finds VMM processes and takes copies of the stats fds
 * they hold. A sample is one pread per fd, over a flat array of the fds.
 * Before each sample, one epoll_wait() on the VMMs' pidfds tells which VMMs
 * exited: their fds are closed at once, because a stats fd we hold keeps
 * the VM's kernel objects alive after its VMM is gone.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "host_internal.h"
#include "sources/sched.h"
#include "uevent.h"

void host_free_vm(struct kvmstats_host *host, struct host_vm *hv)
{
	struct kvmstats_vm *vm = &hv->pub;

	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->detach)
			sources[i]->detach(&host->env, hv);
	sched_detach(&host->env, hv);
	free(hv->hints);
	for (size_t i = 0; i < vm->nvcpus; i++) {
		statsfd_close(vm->vcpus[i]->stats);
		free(vm->vcpus[i]);
	}
	free(vm->vcpus);
	statsfd_close(vm->vm_stats);
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	free(vm->name);
	free(vm->uuid);
	free(hv);
}

void host_remove_vm(struct kvmstats_host *host, size_t i)
{
	struct source_env *env = &host->env;
	struct host_vm *hv = env->vms[i];

	if (hv->announced && host->hooks.vm_removed)
		host->hooks.vm_removed(&hv->pub, host->ctx);
	env->vms[i] = env->vms[--env->nvms];
	host_free_vm(host, hv);
}

void host_announce(struct kvmstats_host *host)
{
	struct source_env *env = &host->env;

	if (env->changes == 0)
		return;
	env->changes = 0;
	for (size_t i = 0; i < env->nvms; i++) {
		struct host_vm *hv = env->vms[i];
		struct kvmstats_vm *vm = &hv->pub;

		if (!hv->announced)
			continue;	/* vm_added tells all at once */
		for (size_t j = 0; j < vm->nvcpus; j++) {
			if (vm->vcpus[j]->announced)
				continue;
			vm->vcpus[j]->announced = true;
			if (host->hooks.vcpu_added)
				host->hooks.vcpu_added(vm, vm->vcpus[j], host->ctx);
		}
		if (hv->changed) {
			hv->changed = false;
			if (host->hooks.vm_changed)
				host->hooks.vm_changed(vm, host->ctx);
		}
	}
}

int host_new(const char *proc_root, bool raise_priv,
	     const struct kvmstats_hooks *hooks, void *ctx,
	     struct kvmstats_host **ret_host)
{
	struct kvmstats_host *host;
	int r;

	host = calloc(1, sizeof(*host));
	if (!host)
		return -ENOMEM;
	host->uevfd = -1;
	host->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (host->epfd < 0) {
		free(host);
		return -errno;
	}
	/*
	 * Tests point the front ends at a fake tree; secure_getenv() ignores
	 * the variable in a process with file capabilities or setuid.
	 */
	if (!proc_root)
		proc_root = secure_getenv("KVMSTATS_PROC_ROOT");
	host->proc_root = strdup(proc_root ? proc_root : "/proc");
	if (!host->proc_root) {
		r = -ENOMEM;
		goto fail;
	}
	/*
	 * KVM's uevents name pids of the real /proc only. Without them
	 * (another proc root, no netlink) every rescan walks /proc.
	 */
	if (strcmp(host->proc_root, "/proc") == 0) {
		r = uevent_open();
		host->uevfd = r >= 0 ? r : -1;
	}
	r = statsfd_cache_new(&host->env.cache);
	if (r >= 0)
		r = statsfd_cache_new(&host->env.vcache);
	if (r < 0)
		goto fail;
	host->env.raise_priv = raise_priv;
	if (hooks)
		host->hooks = *hooks;
	host->ctx = ctx;
	*ret_host = host;
	return 0;

fail:
	host_free(host);
	return r;
}

static void free_settings(struct source_env *env)
{
	for (size_t i = 0; i < env->nqmp; i++)
		free(env->qmp[i]);
	free(env->qmp);
	free(env->debugfs);
	free(env->libvirt_uri);
}

void host_free(struct kvmstats_host *host)
{
	if (!host)
		return;
	while (host->env.nvms > 0)
		host_remove_vm(host, host->env.nvms - 1);
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->cleanup)
			sources[i]->cleanup(&host->env);
	free(host->env.vms);
	if (host->epfd >= 0)
		close(host->epfd);
	if (host->uevfd >= 0)
		close(host->uevfd);
	free(host->pending);
	free_settings(&host->env);
	statsfd_cache_free(host->env.cache);
	statsfd_cache_free(host->env.vcache);
	free(host->proc_root);
	free(host);
}

int host_set_sources(struct kvmstats_host *host, const struct kvmstats_sources *src)
{
	struct source_env *env = &host->env;
	struct source_env next = { 0 };

	next.qmp = calloc(src->nqmp + 1, sizeof(*next.qmp));
	if (!next.qmp)
		return -ENOMEM;
	for (size_t i = 0; i < src->nqmp; i++) {
		next.qmp[i] = strdup(src->qmp[i]);
		if (!next.qmp[i])
			goto fail;
		next.nqmp = i + 1;
	}
	if (src->debugfs && !(next.debugfs = strdup(src->debugfs)))
		goto fail;
	if (src->libvirt_uri && !(next.libvirt_uri = strdup(src->libvirt_uri)))
		goto fail;
	free_settings(env);
	env->qmp = next.qmp;
	env->nqmp = next.nqmp;
	env->debugfs = next.debugfs;
	env->libvirt_uri = next.libvirt_uri;
	env->no_fds = src->no_fds;
	env->max_fds = src->max_fds;
	env->no_sched = src->no_sched;
	if (src->no_events && host->uevfd >= 0) {
		close(host->uevfd);
		host->uevfd = -1;
	}
	env->qmp_timeout_ms = src->qmp_timeout_ms > 0 ? src->qmp_timeout_ms : 500;
	env->stop = src->stop;
	env->debugfs_every_us = (uint64_t)src->debugfs_every_ms * 1000;
	env->libvirt_timeout_ms = src->libvirt_timeout_ms > 0 ? src->libvirt_timeout_ms : 500;
	env->settings_changed = true;
	return 0;

fail:
	free_settings(&next);
	return -ENOMEM;
}

size_t host_nvms(const struct kvmstats_host *host)
{
	return host->env.nvms;
}

struct kvmstats_vm *host_vm(struct kvmstats_host *host, size_t i)
{
	return i < host->env.nvms ? &host->env.vms[i]->pub : NULL;
}

int host_reap_fd(const struct kvmstats_host *host)
{
	return host->epfd;
}

int host_reap(struct kvmstats_host *host)
{
	struct epoll_event ev[64];
	int gone = 0, n;

	/*
	 * epoll, not poll(): one call whatever the number of VMs, and a pidfd
	 * leaves the set when it is closed, so nothing but an exit reports.
	 */
	do {
		do {
			n = epoll_wait(host->epfd, ev, 64, 0);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			for (size_t j = 0; j < host->env.nvms; j++) {
				if (host->env.vms[j] == ev[i].data.ptr) {
					host_remove_vm(host, j);
					gone++;
					break;
				}
			}
		}
	} while (n == 64);
	return gone;
}

int host_sample(struct kvmstats_host *host)
{
	int r, first = 0;

	/* A VMM that exited must not be kept alive by our fds until later. */
	r = host_reap(host);
	if (r < 0)
		return r;
	/* Best source first: each serves only what no source before it does. */
	for (size_t i = 0; i < nsources; i++) {
		if (!sources[i]->sample)
			continue;
		r = sources[i]->sample(&host->env);
		if (r < 0 && first == 0)
			first = r;
	}
	/* After the stats: a vCPU added by this sample gets its thread's values. */
	sched_sample(&host->env, host->proc_root);
	host_announce(host);
	return first < 0 ? first : (int)host->env.nvms;
}

int host_vcpu_totals(const struct kvmstats_vm *vm,
		     const struct kvmstats_schema *schema, uint64_t *ret_values)
{
	int counted = 0;

	memset(ret_values, 0, schema->num_values * sizeof(*ret_values));
	for (size_t i = 0; i < vm->nvcpus; i++) {
		const struct statsfd *s = vm->vcpus[i]->stats;

		if (s->samples == 0)
			continue;
		/*
		 * Its last sample failed (a QMP socket that did not answer):
		 * no total this interval, rather than a stale one (a flat
		 * line) or one over some vCPUs (a counter that goes back).
		 * A vCPU whose fd was given back to the budget is no failure:
		 * it counts with its last values (source_fd.c).
		 */
		if (s->error != 0 && !s->given_back)
			return 0;
		for (uint32_t d = 0; d < schema->num_desc; d++) {
			const struct kvmstats_desc *desc = &schema->desc[d], *from = desc;
			bool peak = desc->known && desc->type == KVM_STATS_TYPE_PEAK;

			/*
			 * A vCPU served by another source (a takeover half done:
			 * the fd limit, a refusal) counts by name, so that the
			 * sum never loses a vCPU and goes back.
			 */
			if (s->schema != schema) {
				int k = schema_find(s->schema, desc->name);

				if (k < 0 || s->schema->desc[k].size != desc->size)
					continue;
				from = &s->schema->desc[k];
			}
			for (uint32_t k = 0; k < desc->size; k++) {
				uint64_t v = s->cur[from->index + k];
				uint64_t *t = &ret_values[desc->index + k];

				if (!peak)
					*t += v;
				else if (v > *t)
					*t = v;
			}
		}
		counted++;
	}
	return counted;
}

int host_mapped_bytes(const struct kvmstats_vm *vm, uint64_t *ret_bytes)
{
	static const struct { const char *name; uint64_t size; } pages[] = {
		{ "pages_4k", 4096ULL }, { "pages_2m", 2ULL << 20 }, { "pages_1g", 1ULL << 30 },
		{ "num_2M_pages", 2ULL << 20 }, { "num_1G_pages", 1ULL << 30 },
	};
	const struct statsfd *s = vm->vm_stats;
	uint64_t bytes = 0;
	bool any = false;

	if (!s || s->samples == 0)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		int d = schema_find(s->schema, pages[i].name);

		if (d >= 0) {
			bytes += s->cur[s->schema->desc[d].index] * pages[i].size;
			any = true;
		}
	}
	if (!any)
		return -ENOENT;
	*ret_bytes = bytes;
	return 0;
}
