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

/* Closes s, counting it out of the held fds if it held one. */
static void close_stats(struct kvmstats_host *host, struct statsfd *s)
{
	if (s && s->fd >= 0)
		host->held--;
	statsfd_close(s);
}

void host_free_vm(struct kvmstats_host *host, struct host_vm *hv)
{
	struct kvmstats_vm *vm = &hv->pub;

	for (size_t i = 0; i < vm->nvcpus; i++) {
		close_stats(host, vm->vcpus[i]->stats);
		free(vm->vcpus[i]);
	}
	free(vm->vcpus);
	close_stats(host, vm->vm_stats);
	debugfs_close(hv->debugfs);
	free(vm->qmp_path);
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	free(vm->name);
	free(vm->uuid);
	free(hv);
}

void host_remove_vm(struct kvmstats_host *host, size_t i)
{
	struct host_vm *hv = host->vms[i];

	if (hv->announced && host->hooks.vm_removed)
		host->hooks.vm_removed(&hv->pub, host->ctx);
	host->vms[i] = host->vms[--host->nvms];
	host->batch_stale = true;	/* it lends hv's statsfds */
	host_free_vm(host, hv);
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
	host->max_fds = HOST_DEFAULT_MAX_FDS;
	host->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (host->epfd < 0) {
		free(host);
		return -errno;
	}
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
	r = statsfd_cache_new(&host->cache);
	if (r >= 0)
		r = statsfd_cache_new(&host->vcache);
	if (r < 0)
		goto fail;
	host->raise_priv = raise_priv;
	if (hooks)
		host->hooks = *hooks;
	host->ctx = ctx;
	*ret_host = host;
	return 0;

fail:
	host_free(host);
	return r;
}

void host_free(struct kvmstats_host *host)
{
	if (!host)
		return;
	while (host->nvms > 0)
		host_remove_vm(host, host->nvms - 1);
	free(host->vms);
	if (host->epfd >= 0)
		close(host->epfd);
	if (host->uevfd >= 0)
		close(host->uevfd);
	statsfd_batch_free(&host->batch);
	free(host->pending);
	for (size_t i = 0; i < host->nqmp; i++)
		free(host->qmp[i]);
	free(host->qmp);
	free(host->debugfs);
	free(host->scratch);
	statsfd_cache_free(host->cache);
	statsfd_cache_free(host->vcache);
	free(host->proc_root);
	free(host);
}

size_t host_nvms(const struct kvmstats_host *host)
{
	return host->nvms;
}

struct kvmstats_vm *host_vm(struct kvmstats_host *host, size_t i)
{
	return i < host->nvms ? &host->vms[i]->pub : NULL;
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
			for (size_t j = 0; j < host->nvms; j++) {
				if (host->vms[j] == ev[i].data.ptr) {
					host_remove_vm(host, j);
					gone++;
					break;
				}
			}
		}
	} while (n == 64);
	return gone;
}

/* Lists every stats fd host_sample() reads, in table order. */
static int build_batch(struct kvmstats_host *host)
{
	struct statsfd_batch *b = &host->batch;
	int r = 0;

	statsfd_batch_clear(b);
	for (size_t i = 0; i < host->nvms && r >= 0; i++) {
		struct kvmstats_vm *vm = &host->vms[i]->pub;

		if (vm->vm_source == FROM_FD && vm->vm_stats)
			r = statsfd_batch_add(b, vm->vm_stats);
		for (size_t j = 0; j < vm->nvcpus && r >= 0; j++)
			if (vm->vcpus[j]->source == FROM_FD)
				r = statsfd_batch_add(b, vm->vcpus[j]->stats);
	}
	if (r < 0) {
		statsfd_batch_clear(b);
		return r;
	}
	host->batch_stale = false;
	return 0;
}

int host_sample(struct kvmstats_host *host)
{
	int r;

	/* A VMM that exited must not be kept alive by our fds until later. */
	r = host_reap(host);
	if (r < 0)
		return r;
	if (host->batch_stale) {
		r = build_batch(host);
		if (r < 0)
			return r;
	}
	statsfd_batch_sample(&host->batch);
	sources_sample(host);
	return (int)host->nvms;
}

int host_vcpu_totals(const struct kvmstats_vm *vm,
		     const struct kvmstats_schema *schema, uint64_t *ret_values)
{
	int counted = 0;

	memset(ret_values, 0, schema->num_values * sizeof(*ret_values));
	for (size_t i = 0; i < vm->nvcpus; i++) {
		const struct statsfd *s = vm->vcpus[i]->stats;

		if (s->schema != schema || s->samples == 0)
			continue;
		for (uint32_t d = 0; d < schema->num_desc; d++) {
			const struct kvmstats_desc *desc = &schema->desc[d];
			bool peak = desc->known && desc->type == KVM_STATS_TYPE_PEAK;

			for (uint32_t k = desc->index; k < desc->index + desc->size; k++) {
				if (!peak)
					ret_values[k] += s->cur[k];
				else if (s->cur[k] > ret_values[k])
					ret_values[k] = s->cur[k];
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
