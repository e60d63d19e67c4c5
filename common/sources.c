/*
 * sources.c: where a VM's values come from when its VMM holds no stats fd
 * for them: QEMU's QMP query-stats (opt-in sockets), then debugfs.
 *
 * Best source first, per VM and per stat: a held stats fd, then QMP, then
 * debugfs, which serves only the names no other source has, so no stat is
 * ever reported twice. Both are read into "virtual" statsfd holders, so the
 * front ends read them as they read a stats fd.
 */
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host_internal.h"

const char *host_source_name(enum kvmstats_source source)
{
	switch (source) {
	case FROM_FD:
		return "fd";
	case FROM_QMP:
		return "qmp";
	case FROM_DEBUGFS:
		return "debugfs";
	case FROM_NONE:
		break;
	}
	return "none";
}

int host_set_sources(struct kvmstats_host *host, const struct kvmstats_sources *src)
{
	char **qmp = calloc(src->nqmp + 1, sizeof(*qmp));
	char *debugfs = NULL;

	if (!qmp)
		return -ENOMEM;
	for (size_t i = 0; i < src->nqmp; i++) {
		qmp[i] = strdup(src->qmp[i]);
		if (!qmp[i])
			goto fail;
	}
	if (src->debugfs && !(debugfs = strdup(src->debugfs)))
		goto fail;
	for (size_t i = 0; i < host->nqmp; i++)
		free(host->qmp[i]);
	free(host->qmp);
	free(host->debugfs);
	host->qmp = qmp;
	host->nqmp = src->nqmp;
	host->debugfs = debugfs;
	host->no_fds = src->no_fds;
	host->max_fds = src->max_fds ? src->max_fds : HOST_DEFAULT_MAX_FDS;
	if (src->no_events && host->uevfd >= 0) {
		close(host->uevfd);
		host->uevfd = -1;
	}
	host->qmp_timeout_ms = src->qmp_timeout_ms > 0 ? src->qmp_timeout_ms : 500;
	host->debugfs_every_us = (uint64_t)src->debugfs_every_ms * 1000;
	host->debugfs_due_us = 0;
	return 0;

fail:
	for (size_t i = 0; i < src->nqmp; i++)
		free(qmp[i]);
	free(qmp);
	return -ENOMEM;
}

static struct kvmstats_vcpu *find_vcpu(const struct kvmstats_vm *vm, int id)
{
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i]->id == id)
			return vm->vcpus[i];
	return NULL;
}

/* A vCPU that QMP serves, made the first time QEMU lists it. */
static int qmp_vcpu(struct kvmstats_host *host, struct host_vm *hv, int id,
		    struct kvmstats_schema *schema, struct kvmstats_vcpu **ret)
{
	struct kvmstats_vcpu *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->id = id;
	c->vmm_fd = -1;
	c->source = FROM_QMP;
	r = statsfd_virtual(schema, "qmp", host->vcache, &c->stats);
	if (r >= 0)
		r = host_insert_vcpu(&hv->pub, c);
	if (r < 0) {
		statsfd_close(c->stats);
		free(c);
		return r;
	}
	if (hv->announced && host->hooks.vcpu_added)
		host->hooks.vcpu_added(&hv->pub, c, host->ctx);
	*ret = c;
	return 0;
}

/*
 * Takes what a query-stats answer has that no better source serves: the VM
 * target when no VM stats fd is held, each vCPU that has no stats fd.
 */
static int apply_qmp(struct kvmstats_host *host, struct host_vm *hv,
		     const struct qmp_stats *qs)
{
	struct kvmstats_vm *vm = &hv->pub;
	int r;

	if (qs->vm_schema && (vm->vm_source == FROM_NONE || vm->vm_source == FROM_DEBUGFS)) {
		statsfd_close(vm->vm_stats);
		debugfs_close(hv->debugfs);
		hv->debugfs = NULL;
		r = statsfd_virtual(qs->vm_schema, "qmp", host->vcache, &vm->vm_stats);
		if (r < 0)
			return r;
		vm->vm_source = FROM_QMP;
		if (hv->announced && host->hooks.vm_changed)
			host->hooks.vm_changed(vm, host->ctx);
	}
	if (vm->vm_source == FROM_QMP && qs->vm_schema &&
	    schema_equal(vm->vm_stats->schema, qs->vm_schema))
		statsfd_push(vm->vm_stats, qs->vm_values);

	for (size_t i = 0; qs->vcpu_schema && i < qs->nvcpus; i++) {
		struct kvmstats_vcpu *c = find_vcpu(vm, qs->vcpu_index[i]);

		if (!c) {
			r = qmp_vcpu(host, hv, qs->vcpu_index[i], qs->vcpu_schema, &c);
			if (r < 0)
				return r;
		}
		if (c->source == FROM_QMP && schema_equal(c->stats->schema, qs->vcpu_schema))
			statsfd_push(c->stats, qs->vcpu_values[i]);
	}
	return 0;
}

static struct host_vm *find_vm_by_pid(struct kvmstats_host *host, pid_t pid)
{
	for (size_t i = 0; i < host->nvms; i++)
		if (host->vms[i]->pub.pid == pid)
			return host->vms[i];
	return NULL;
}

static bool qmp_path_taken(struct kvmstats_host *host, const char *path)
{
	for (size_t i = 0; i < host->nvms; i++)
		if (host->vms[i]->pub.qmp_path &&
		    strcmp(host->vms[i]->pub.qmp_path, path) == 0)
			return true;
	return false;
}

/* Asks each configured socket not yet tied to a VM whose it is. */
void sources_attach_qmp(struct kvmstats_host *host, struct kvmstats_scan_report *rep)
{
	for (size_t i = 0; i < host->nqmp; i++) {
		glob_t g;

		if (glob(host->qmp[i], GLOB_NOSORT, NULL, &g) != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc; j++) {
			const char *path = g.gl_pathv[j];
			struct qmp_stats *qs;
			struct host_vm *hv;
			int r;

			if (qmp_path_taken(host, path))
				continue;
			r = qmp_query_stats(path, host->qmp_timeout_ms, &qs);
			if (r < 0) {
				if (rep->qmp_failed++ == 0)
					rep->qmp_error = r;
				continue;
			}
			/* Not a VM we know: filtered out, or not discovered yet. */
			hv = find_vm_by_pid(host, qs->pid);
			if (hv && (hv->pub.qmp_path = strdup(path)))
				r = apply_qmp(host, hv, qs);
			qmp_stats_free(qs);
			if (r < 0 && rep->first_error == 0)
				rep->first_error = r;
		}
		globfree(&g);
	}
}

/* debugfs serves what no other source does: never a stat twice. */
static bool served_elsewhere(const char *name, void *ctx)
{
	const struct kvmstats_vm *vm = ctx;

	for (size_t i = 0; i < vm->nvcpus; i++)
		if (schema_find(vm->vcpus[i]->stats->schema, name) >= 0)
			return true;
	return false;
}

void sources_attach_debugfs(struct kvmstats_host *host, struct kvmstats_scan_report *rep)
{
	const struct kvmstats_schema *const *known;
	size_t nknown = statsfd_cache_schemas(host->cache, &known);
	int r;

	if (!host->debugfs)
		return;
	/* With the capabilities host_rescan() raised: never access(2). */
	r = debugfs_probe(host->debugfs);
	if (r < 0) {
		rep->debugfs_missing = true;
		rep->debugfs_error = r;
		return;
	}
	for (size_t i = 0; i < host->nvms; i++) {
		struct host_vm *hv = host->vms[i];
		struct kvmstats_vm *vm = &hv->pub;
		unsigned denied = 0;
		bool changed = false;

		/*
		 * vCPUs came since debugfs was opened for the VM (a VMM seen
		 * before it opened its vCPU stats fds, or a hot-plug): what
		 * they serve must leave debugfs, or it is reported twice.
		 */
		if (vm->vm_source == FROM_DEBUGFS && hv->debugfs_nvcpus != vm->nvcpus) {
			statsfd_close(vm->vm_stats);
			vm->vm_stats = NULL;
			debugfs_close(hv->debugfs);
			hv->debugfs = NULL;
			vm->vm_source = FROM_NONE;
			changed = true;
		}
		/* The directory is <pid>-<fd>: only a VM's own fd names it. */
		if (vm->vm_stats || vm->vm_fd < 0)
			goto next;
		r = debugfs_open(host->debugfs, vm->pid, vm->vm_fd, known, nknown,
				 served_elsewhere, vm, &hv->debugfs, &denied);
		rep->debugfs_denied += denied;
		if (r < 0)
			goto next;
		r = statsfd_virtual((struct kvmstats_schema *)debugfs_schema(hv->debugfs),
				    "debugfs", host->vcache, &vm->vm_stats);
		if (r < 0) {
			debugfs_close(hv->debugfs);
			hv->debugfs = NULL;
			goto next;
		}
		vm->vm_source = FROM_DEBUGFS;
		hv->debugfs_nvcpus = vm->nvcpus;
		changed = true;
next:
		if (changed && hv->announced && host->hooks.vm_changed)
			host->hooks.vm_changed(vm, host->ctx);
	}
}

static void sample_debugfs(struct kvmstats_host *host, struct host_vm *hv)
{
	size_t n = debugfs_schema(hv->debugfs)->num_values;
	int r;

	if (n > host->scratch_len) {
		uint64_t *p = reallocarray(host->scratch, n, sizeof(*p));

		if (!p) {
			hv->pub.vm_stats->error = -ENOMEM;
			return;
		}
		host->scratch = p;
		host->scratch_len = n;
	}
	r = debugfs_sample(hv->debugfs, host->scratch);
	if (r < 0)
		hv->pub.vm_stats->error = r;
	else
		statsfd_push(hv->pub.vm_stats, host->scratch);
}

static void sample_qmp(struct kvmstats_host *host, struct host_vm *hv)
{
	struct kvmstats_vm *vm = &hv->pub;
	struct qmp_stats *qs = NULL;
	int r;

	r = qmp_query_stats(vm->qmp_path, host->qmp_timeout_ms, &qs);
	if (r >= 0 && qs->pid != vm->pid)
		r = -ESTALE;	/* another QEMU now listens there */
	if (r >= 0)
		r = apply_qmp(host, hv, qs);
	qmp_stats_free(qs);
	if (r >= 0)
		return;
	/* Busy or gone: this interval has no QMP values for the VM. */
	if (vm->vm_source == FROM_QMP)
		vm->vm_stats->error = r;
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i]->source == FROM_QMP)
			vm->vcpus[i]->stats->error = r;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void sources_sample(struct kvmstats_host *host)
{
	struct priv_saved saved = { 0 };
	uint64_t now;
	bool due, read_all;

	if (host->nqmp == 0 && !host->debugfs)
		return;

	for (size_t i = 0; i < host->nvms; i++)
		if (host->vms[i]->pub.qmp_path)
			sample_qmp(host, host->vms[i]);
	if (!host->debugfs)
		return;
	/* A tenth of the period early is on time: samples jitter. */
	now = now_usec();
	due = host->debugfs_every_us == 0 ||
	      now + host->debugfs_every_us / 10 >= host->debugfs_due_us;
	read_all = due;
	if (due && host->debugfs_every_us)
		host->debugfs_due_us = now + host->debugfs_every_us;
	for (size_t i = 0; !due && i < host->nvms; i++)
		if (host->vms[i]->debugfs && host->vms[i]->pub.vm_stats->samples == 0)
			due = true;	/* a new VM: only it is read below */
	if (!due)
		return;	/* no capability raised for nothing */
	/* debugfs needs CAP_DAC_READ_SEARCH (root-only directories). */
	if (host->raise_priv)
		priv_raise(&saved);
	for (size_t i = 0; i < host->nvms; i++) {
		struct host_vm *hv = host->vms[i];

		if (hv->debugfs && (read_all || hv->pub.vm_stats->samples == 0))
			sample_debugfs(host, hv);
	}
	if (host->raise_priv)
		priv_restore(&saved);
}
