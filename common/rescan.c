/* SPDX-License-Identifier: MIT */
/*
 * rescan.c: finding the VMs of a host and taking their VMMs' stats fds.
 *
 * The first rescan walks /proc (discover.c). Later ones look only where
 * something can have changed: at the processes KVM's uevents name (a VM
 * created or destroyed; uevent.c) and at the known VMMs whose fd count
 * changed (a vCPU or stats fd opened, a VM closed). On an unchanged host a
 * rescan is then one recv() and one stat() per VMM, whatever the number of
 * other processes. A full walk still runs every WALK_EVERY_USEC, after lost
 * events, and at every rescan where uevents cannot be had (another proc
 * root, a network namespace that does not get them): it finds what the
 * events could not tell.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "host_internal.h"
#include "acquire.h"
#include "priv.h"
#include "sources/sched.h"
#include "uevent.h"

#define WALK_EVERY_USEC (60 * 1000000ULL)
/* Processes one rescan looks at, at most; with more changed, it walks. */
#define MAX_LOOKS 256
/* Rescans that look again at a VM creator whose VM fd was not there yet. */
#define CREATE_RETRIES 3

/* A process to look at; retries: how often again if it has no VM yet. */
struct host_pending {
	pid_t pid;
	unsigned retries;
};

struct looks {
	struct host_pending at[MAX_LOOKS];
	size_t n;
	bool overflow;
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void note_error(struct kvmstats_scan_report *report, int r)
{
	if (r == -EPERM || r == -EACCES)
		report->acquire_denied++;
	else if (report->first_error == 0)
		report->first_error = r;
}

static struct host_vm *find_vm(struct kvmstats_host *host, pid_t pid,
			       uint64_t starttime)
{
	for (size_t i = 0; i < host->env.nvms; i++) {
		struct host_vm *hv = host->env.vms[i];

		if (hv->pub.pid == pid && hv->pub.starttime == starttime)
			return hv;
	}
	return NULL;
}

static int grow_vms(struct kvmstats_host *host)
{
	size_t cap = host->env.cap ? host->env.cap * 2 : 8;
	void *vms;

	if (host->env.nvms < host->env.cap)
		return 0;
	vms = reallocarray(host->env.vms, cap, sizeof(*host->env.vms));
	if (!vms)
		return -ENOMEM;
	host->env.vms = vms;
	host->env.cap = cap;
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
	hv->nfds = -1;
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
	host->env.vms[host->env.nvms++] = hv;
	*ret_vm = hv;
	return 0;

fail:
	host_free_vm(host, hv);
	return r;
}

/*
 * What the report says of fds left unread: VMs where a retry failed too
 * (one failure is a race with the VMM: an fd closed, an exit). The fd
 * limit and refusals have messages of their own.
 */
static void report_unread(const struct host_vm *hv, struct kvmstats_scan_report *rep)
{
	int e = hv->unread_error;

	if (hv->unread_tries < 2 || e == -EMFILE || e == -EPERM || e == -EACCES)
		return;
	if (rep->vms_unread++ == 0) {
		rep->unread_error = e;
		rep->unread_pid = hv->pub.pid;
	}
	rep->fds_unread += hv->unread;
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
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->listed)
			sources[i]->listed(&host->env, hv, p, host->report);
	r = sched_listed(&host->env, hv, p);
	return r == -ENOMEM ? r : 0;
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


/* Drops the events waiting: what happened before a walk, the walk sees. */
static void drain_events(int fd)
{
	struct kvm_uevent ev;
	int r;

	do {
		r = uevent_next(fd, &ev);
	} while (r > 0 || r == -ENOBUFS);
}

/* Walks all of /proc; a VM it does not see is released if really gone. */
static int walk(struct kvmstats_host *host)
{
	int found;

	if (host->uevfd >= 0)
		drain_events(host->uevfd);
	host->npending = 0;
	host->walked_at = now_usec();
	host->report->walked = true;
	found = discover_scan(host->proc_root, merge_proc, host,
			      &host->report->discover);
	if (found < 0)
		return found;
	/*
	 * A VM that no scan sees any more has had its kvm-vm fds closed
	 * while its process lives on (exec, or a test harness destroying a
	 * VM): release it too, or our stats fds would keep it alive.
	 */
	for (size_t i = host->env.nvms; i-- > 0;) {
		if (host->env.vms[i]->seen != host->generation &&
		    vm_fds_gone(host, &host->env.vms[i]->pub))
			host_remove_vm(host, i);
		else	/* listed before its fd count was taken: look next time */
			host->env.vms[i]->nfds = -1;
	}
	return 0;
}

static void looks_add(struct looks *l, pid_t pid, unsigned retries)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->at[i].pid == pid) {
			if (retries > l->at[i].retries)
				l->at[i].retries = retries;
			return;
		}
	}
	if (l->n == MAX_LOOKS)
		l->overflow = true;
	else
		l->at[l->n++] = (struct host_pending){ pid, retries };
}

static bool knows_pid(const struct kvmstats_host *host, pid_t pid)
{
	for (size_t i = 0; i < host->env.nvms; i++)
		if (host->env.vms[i]->pub.pid == pid)
			return true;
	return false;
}

/*
 * What may have changed since the last rescan: the processes KVM's events
 * name, creators still without a VM fd, and known VMMs whose fd count
 * moved (or cannot be told: kernels before 6.2). -ENOBUFS: events lost.
 */
static int collect_looks(struct kvmstats_host *host, struct looks *l)
{
	struct kvm_uevent ev;
	int r;

	while ((r = uevent_next(host->uevfd, &ev)) > 0) {
		if (ev.kind == KVM_UEVENT_CREATE)
			looks_add(l, ev.pid, CREATE_RETRIES);
		else if (knows_pid(host, ev.pid))
			looks_add(l, ev.pid, 0);
	}
	if (r < 0)
		return r;
	for (size_t i = 0; i < host->npending; i++)
		looks_add(l, host->pending[i].pid, host->pending[i].retries);
	for (size_t i = 0; i < host->env.nvms; i++) {
		struct host_vm *hv = host->env.vms[i];
		int n = discover_fd_count(host->proc_root, hv->pub.pid);

		if (n == -ESRCH)
			continue;	/* exited: host_reap() releases it */
		/* unread: a failed take is tried again, not only on a change. */
		if (n <= 0 || n != hv->nfds || hv->unread > 0)
			looks_add(l, hv->pub.pid, 0);
	}
	return 0;
}

/* Remembers a creator whose VM fd was not installed yet. */
static void keep_pending(struct host_pending *next, size_t *n,
			 const struct host_pending *at)
{
	if (at->retries > 0 && *n < MAX_LOOKS)
		next[(*n)++] = (struct host_pending){ at->pid, at->retries - 1 };
}

/*
 * Lists one process's fds again: merges what is new and releases its VMs
 * it no longer holds (or, for a reused pid, never held).
 */
static int look_at(struct kvmstats_host *host, const struct host_pending *at,
		   struct host_pending *next, size_t *nnext)
{
	struct discover_stats *st = &host->report->discover;
	struct discover_proc *p = NULL;
	struct host_vm *hv;
	int nfds, r;

	nfds = discover_fd_count(host->proc_root, at->pid);
	r = discover_process(host->proc_root, at->pid, &p);
	st->scanned++;
	if (r == -EACCES || r == -EPERM) {
		st->denied++;
		return 0;	/* cannot tell: keep what we have */
	}
	if (r == -ENOMEM)
		return r;
	if (r == -ESRCH)
		st->vanished++;
	if (r > 0) {
		r = merge_proc(p, host);
		hv = r >= 0 ? find_vm(host, p->pid, p->starttime) : NULL;
		if (hv)
			hv->nfds = nfds > 0 ? nfds : -1;
	} else if (r == 0) {
		keep_pending(next, nnext, at);
	}
	discover_proc_free(p);
	if (r < 0 && r != -ESRCH)
		return r == -ENOMEM ? r : 0;
	for (size_t i = host->env.nvms; i-- > 0;)
		if (host->env.vms[i]->pub.pid == at->pid &&
		    host->env.vms[i]->seen != host->generation)
			host_remove_vm(host, i);
	return 0;
}

/* A rescan without a walk. -ENOBUFS: too much changed, walk instead. */
static int look_around(struct kvmstats_host *host)
{
	struct host_pending *next;
	struct looks *l;
	size_t nnext = 0;
	int r;

	l = calloc(1, sizeof(*l));
	next = calloc(MAX_LOOKS, sizeof(*next));
	if (!l || !next) {
		r = -ENOMEM;
		goto out;
	}
	r = collect_looks(host, l);
	if (r >= 0 && l->overflow)
		r = -ENOBUFS;
	for (size_t i = 0; r >= 0 && i < l->n; i++)
		r = look_at(host, &l->at[i], next, &nnext);
	if (r >= 0) {
		free(host->pending);
		host->pending = next;
		host->npending = nnext;
		next = NULL;
	}
out:
	free(next);
	free(l);
	return r;
}

static bool walk_due(const struct kvmstats_host *host)
{
	return host->uevfd < 0 || host->walked_at == 0 ||
	       now_usec() - host->walked_at >= WALK_EVERY_USEC;
}

int host_rescan(struct kvmstats_host *host,
		struct kvmstats_scan_report *ret_report)
{
	struct kvmstats_scan_report report = { 0 };
	struct priv_saved saved = { 0 };
	int r;

	r = host_reap(host);
	if (r < 0)
		return r;
	if (host->env.raise_priv) {
		r = priv_raise(&saved);
		if (r < 0)
			return r;
	}
	host->generation++;
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->prepare)
			sources[i]->prepare(&host->env, &report);
	host->env.settings_changed = false;
	host->report = &report;
	r = walk_due(host) ? -ENOBUFS : look_around(host);
	if (r == -ENOBUFS)
		r = walk(host);
	/*
	 * A rescan that failed part way (-ENOMEM) left processes unlooked at,
	 * and the events that named them are consumed: only a walk finds them
	 * again, so the next rescan walks rather than wait a minute.
	 */
	if (r < 0)
		host->walked_at = 0;
	host->report = NULL;
	/* Best source first: each serves only what those before it do not. */
	for (size_t i = 0; r >= 0 && i < nsources; i++)
		if (sources[i]->attach)
			sources[i]->attach(&host->env, &report);
	/* With the capabilities raised: another user's task/<tid>/syscall. */
	if (r >= 0)
		sched_rescan(&host->env, host->proc_root);
	if (host->env.raise_priv)
		priv_restore(&saved);
	if (r < 0)
		return r;

	for (size_t i = 0; i < host->env.nvms; i++) {
		struct host_vm *hv = host->env.vms[i];

		if (!hv->pub.vm_stats && hv->pub.nvcpus == 0)
			report.vms_without_stats++;
		report_unread(hv, &report);
		/* Announced once its first scan has attached every source. */
		if (!hv->announced) {
			hv->announced = true;
			hv->changed = false;
			for (size_t j = 0; j < hv->pub.nvcpus; j++)
				hv->pub.vcpus[j]->announced = true;
			if (host->hooks.vm_added)
				host->hooks.vm_added(&hv->pub, host->ctx);
		}
	}
	host_announce(host);
	if (ret_report)
		*ret_report = report;
	return (int)host->env.nvms;
}
