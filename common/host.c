/*
 * host.c: the VMs of one host and the stats fds taken from their VMMs.
 *
 * A rescan finds VMM processes (discover.c), takes copies of the stats fds
 * they hold (acquire.c) and opens them (statsfd.c). A sample is one pread
 * per fd. Before each sample, one epoll_wait() on the VMMs' pidfds tells which
 * VMMs exited: their fds are closed at once, because a stats fd we hold
 * keeps the VM's kernel objects alive after its VMM is gone.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "host_internal.h"

static void note_error(struct kvmstats_scan_report *report, int r)
{
	if (r == -EPERM || r == -EACCES)
		report->acquire_denied++;
	else if (report->first_error == 0)
		report->first_error = r;
}

static void vm_free(struct host_vm *hv)
{
	struct kvmstats_vm *vm = &hv->pub;

	for (size_t i = 0; i < vm->nvcpus; i++) {
		statsfd_close(vm->vcpus[i]->stats);
		free(vm->vcpus[i]);
	}
	free(vm->vcpus);
	statsfd_close(vm->vm_stats);
	debugfs_close(hv->debugfs);
	free(vm->qmp_path);
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	free(vm->name);
	free(vm->uuid);
	free(hv);
}

static void vm_remove(struct kvmstats_host *host, size_t i)
{
	struct host_vm *hv = host->vms[i];

	if (hv->announced && host->hooks.vm_removed)
		host->hooks.vm_removed(&hv->pub, host->ctx);
	host->vms[i] = host->vms[--host->nvms];
	vm_free(hv);
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
		vm_remove(host, host->nvms - 1);
	free(host->vms);
	if (host->epfd >= 0)
		close(host->epfd);
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
					vm_remove(host, j);
					gone++;
					break;
				}
			}
		}
	} while (n == 64);
	return gone;
}

static struct host_vm *find_vm(struct kvmstats_host *host, pid_t pid,
			       uint64_t starttime)
{
	for (size_t i = 0; i < host->nvms; i++) {
		struct host_vm *hv = host->vms[i];

		if (hv->pub.pid == pid && hv->pub.starttime == starttime)
			return hv;
	}
	return NULL;
}

static int grow_vms(struct kvmstats_host *host)
{
	size_t cap = host->cap ? host->cap * 2 : 8;
	void *vms;

	if (host->nvms < host->cap)
		return 0;
	vms = reallocarray(host->vms, cap, sizeof(*host->vms));
	if (!vms)
		return -ENOMEM;
	host->vms = vms;
	host->cap = cap;
	return 0;
}

static int vm_create(struct kvmstats_host *host, const struct discover_proc *p,
		     struct host_vm **ret_vm)
{
	struct host_vm *hv;
	struct kvmstats_vm *vm;
	int r;

	r = grow_vms(host);
	if (r < 0)
		return r;
	hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	vm = &hv->pub;
	vm->pidfd = -1;
	vm->pid = p->pid;
	vm->starttime = p->starttime;
	vm->vm_fd = -1;
	for (size_t i = 0; i < p->nfds; i++) {
		if (p->fds[i].kind == DISCOVER_FD_VM) {
			vm->nvms++;
			vm->vm_fd = p->fds[i].fd;
		}
	}
	if (vm->nvms != 1)
		vm->vm_fd = -1;
	vm->name_source = p->name_source;
	vm->name = strdup(discover_proc_name(p));
	vm->uuid = p->uuid ? strdup(p->uuid) : NULL;
	if (!vm->name || (p->uuid && !vm->uuid)) {
		r = -ENOMEM;
		goto fail;
	}
	r = acquire_pidfd(host->proc_root, p->pid, p->starttime);
	if (r < 0)
		goto fail;
	vm->pidfd = r;
	/* The pidfd polls readable when the VMM exits (pidfd_open(2)). */
	if (epoll_ctl(host->epfd, EPOLL_CTL_ADD, vm->pidfd,
		      &(struct epoll_event){ .events = EPOLLIN, .data.ptr = hv }) < 0) {
		r = -errno;
		goto fail;
	}
	host->vms[host->nvms++] = hv;
	*ret_vm = hv;
	return 0;

fail:
	vm_free(hv);
	return r;
}

/* Takes a copy of the VMM's target_fd and opens it as a stats fd. */
static int take_stats_fd(struct kvmstats_host *host, struct kvmstats_vm *vm,
			 const struct discover_fd *dfd, struct statsfd **ret)
{
	int fd;

	fd = acquire_stats_fd(vm->pidfd, dfd->fd, dfd->vcpu);
	if (fd < 0)
		return fd;
	return statsfd_open(fd, host->cache, ret);
}

/*
 * In a process that runs one VM, a vCPU is its id: a second stats fd the
 * VMM holds for the same vCPU must not count it twice. In a process with
 * several VMs ids repeat across VMs, so only the fd tells vCPUs apart.
 */
static bool vcpu_is(const struct kvmstats_vm *vm, const struct kvmstats_vcpu *c,
		    const struct discover_fd *dfd)
{
	return vm->nvms == 1 ? c->id == dfd->vcpu : c->vmm_fd == dfd->fd;
}

static bool has_vcpu(const struct kvmstats_vm *vm, const struct discover_fd *dfd)
{
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vcpu_is(vm, vm->vcpus[i], dfd))
			return true;
	return false;
}

int host_insert_vcpu(struct kvmstats_vm *vm, struct kvmstats_vcpu *c)
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

static int add_vcpu(struct kvmstats_host *host, struct kvmstats_vm *vm,
		    const struct discover_fd *dfd, struct kvmstats_vcpu **ret)
{
	struct kvmstats_vcpu *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->id = dfd->vcpu;
	c->vmm_fd = dfd->fd;
	c->source = FROM_FD;
	r = take_stats_fd(host, vm, dfd, &c->stats);
	if (r >= 0)
		r = host_insert_vcpu(vm, c);
	if (r < 0) {
		statsfd_close(c->stats);
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

/*
 * Takes the stats fds of p that vm does not have yet. Errors are counted
 * in the report and do not stop the others: an fd closed meanwhile
 * (-EBADF, -ESTALE) or a VMM that just exited (-ESRCH) is simply skipped.
 */
static void take_new_fds(struct kvmstats_host *host, struct host_vm *hv,
			 const struct discover_proc *p, bool announce)
{
	struct kvmstats_vm *vm = &hv->pub;

	for (size_t i = 0; !host->no_fds && i < p->nfds; i++) {
		const struct discover_fd *dfd = &p->fds[i];
		struct kvmstats_vcpu *c;
		int r = 0;

		if (dfd->kind == DISCOVER_FD_VM_STATS && vm->nvms == 1 &&
		    !vm->vm_stats) {
			r = take_stats_fd(host, vm, dfd, &vm->vm_stats);
			if (r >= 0)
				vm->vm_source = FROM_FD;
		}
		else if (dfd->kind == DISCOVER_FD_VCPU_STATS && !has_vcpu(vm, dfd)) {
			r = add_vcpu(host, vm, dfd, &c);
			if (r >= 0 && announce && host->hooks.vcpu_added)
				host->hooks.vcpu_added(vm, c, host->ctx);
		}
		if (r < 0 && r != -ESRCH && r != -EBADF && r != -ESTALE)
			note_error(host->report, r);
	}
}

static int merge_proc(const struct discover_proc *p, void *ctx)
{
	struct kvmstats_host *host = ctx;
	struct host_vm *hv = find_vm(host, p->pid, p->starttime);
	bool fresh = hv == NULL;
	int r;

	if (fresh) {
		if (host->hooks.want && !host->hooks.want(p, host->ctx))
			return 0;
		r = vm_create(host, p, &hv);
		if (r == -ESRCH)
			return 0;
		if (r < 0) {
			note_error(host->report, r);
			return r == -ENOMEM ? r : 0;
		}
	}
	hv->seen = host->generation;
	take_new_fds(host, hv, p, hv->announced);
	return 0;
}

/*
 * Whether a VM the scan did not see has really lost its kvm-vm fds: the
 * walk skips processes it could not read at that moment, and a live VM
 * must not be released (and its charts made obsolete) for that.
 */
static bool vm_fds_gone(struct kvmstats_host *host, const struct kvmstats_vm *vm)
{
	struct discover_proc *p = NULL;
	bool gone;
	int r;

	r = discover_process(host->proc_root, vm->pid, &p);
	if (r == -EACCES || r == -EPERM || r == -ENOMEM)
		return false;	/* cannot tell: keep it */
	gone = r <= 0 || p->starttime != vm->starttime;
	discover_proc_free(p);
	return gone;
}

int host_rescan(struct kvmstats_host *host,
		struct kvmstats_scan_report *ret_report)
{
	struct kvmstats_scan_report report = { 0 };
	struct priv_saved saved = { 0 };
	int r, found;

	r = host_reap(host);
	if (r < 0)
		return r;
	if (host->raise_priv) {
		r = priv_raise(&saved);
		if (r < 0)
			return r;
	}
	host->generation++;
	host->report = &report;
	found = discover_scan(host->proc_root, merge_proc, host, &report.discover);
	host->report = NULL;
	if (found >= 0) {
		/*
		 * A VM that no scan sees any more has had its kvm-vm fds
		 * closed while its process lives on (exec, or a test harness
		 * destroying a VM): release it too, or our stats fds would
		 * keep it alive.
		 */
		for (size_t i = host->nvms; i-- > 0;)
			if (host->vms[i]->seen != host->generation &&
			    vm_fds_gone(host, &host->vms[i]->pub))
				vm_remove(host, i);
		/* Best source first: QMP before debugfs fills the gaps. */
		sources_attach_qmp(host, &report);
		sources_attach_debugfs(host, &report);
	}
	if (host->raise_priv)
		priv_restore(&saved);
	if (found < 0)
		return found;

	for (size_t i = 0; i < host->nvms; i++) {
		struct host_vm *hv = host->vms[i];

		if (!hv->pub.vm_stats && hv->pub.nvcpus == 0)
			report.vms_without_stats++;
		/* Announced once its first scan has attached every source. */
		if (!hv->announced) {
			hv->announced = true;
			if (host->hooks.vm_added)
				host->hooks.vm_added(&hv->pub, host->ctx);
		}
	}
	if (ret_report)
		*ret_report = report;
	return (int)host->nvms;
}

static void sample_one(struct statsfd *s)
{
	if (s)
		s->error = statsfd_sample(s);
}

int host_sample(struct kvmstats_host *host)
{
	int r;

	/* A VMM that exited must not be kept alive by our fds until later. */
	r = host_reap(host);
	if (r < 0)
		return r;
	for (size_t i = 0; i < host->nvms; i++) {
		struct host_vm *hv = host->vms[i];
		struct kvmstats_vm *vm = &hv->pub;

		if (vm->vm_source == FROM_FD)
			sample_one(vm->vm_stats);
		for (size_t j = 0; j < vm->nvcpus; j++)
			if (vm->vcpus[j]->source == FROM_FD)
				sample_one(vm->vcpus[j]->stats);
	}
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
