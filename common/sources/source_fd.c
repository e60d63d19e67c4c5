/*
 * source_fd.c: the best source, the stats fds the VMMs hold, copied with
 * pidfd_getfd() (acquire.c) when a VMM is listed and read with one pread
 * each (statsfd.c), over a flat array of every fd of the host.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "source.h"
#include "acquire.h"

struct fd_state {
	size_t held;		/* stats fds held */
	size_t room;		/* this rescan's cap: max_fds, or less near RLIMIT_NOFILE */
	struct statsfd_batch batch;	/* what a sample reads */
	bool stale;		/* the table changed since batch was built */
};

static struct fd_state *state(struct source_env *env)
{
	if (!env->state[FROM_FD])
		env->state[FROM_FD] = calloc(1, sizeof(struct fd_state));
	return env->state[FROM_FD];
}

static void note_error(struct kvmstats_scan_report *report, int r)
{
	if (r == -EPERM || r == -EACCES)
		report->acquire_denied++;
	else if (report->first_error == 0)
		report->first_error = r;
}

/*
 * How many stats fds this rescan may hold: max_fds, and fewer when the open
 * file limit is nearer, so that listing /proc and the VMMs' pidfds (one per
 * VM) never fail for want of an fd.
 */
static size_t fd_room(const struct source_env *env)
{
	const size_t reserve = 64;
	struct rlimit rl;
	size_t room = env->max_fds ? env->max_fds : SOURCE_FD_DEFAULT_MAX;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		size_t spare = rl.rlim_cur > reserve + env->nvms ?
			       (size_t)rl.rlim_cur - reserve - env->nvms : 0;

		if (spare < room)
			room = spare;
	}
	return room;
}

static void fd_prepare(struct source_env *env, struct kvmstats_scan_report *rep)
{
	struct fd_state *st = state(env);

	(void)rep;
	if (!st)
		return;
	st->room = fd_room(env);
	st->stale = true;	/* sources may move at this rescan */
}

/*
 * Takes a copy of the VMM's target_fd and opens it as a stats fd.
 * -EMFILE: the host holds max_fds already, or our RLIMIT_NOFILE is reached.
 */
static int take_stats_fd(struct source_env *env, struct fd_state *st,
			 struct kvmstats_vm *vm, const struct discover_fd *dfd,
			 struct statsfd **ret)
{
	int fd, r;

	if (st->held >= st->room)
		return -EMFILE;
	fd = acquire_stats_fd(vm->pidfd, dfd->fd, dfd->vcpu);
	if (fd < 0)
		return fd == -ENFILE ? -EMFILE : fd;
	r = statsfd_open(fd, env->cache, ret);
	if (r >= 0) {
		st->held++;
		st->stale = true;
	}
	return r;
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

static int add_vcpu(struct source_env *env, struct fd_state *st,
		    struct kvmstats_vm *vm, const struct discover_fd *dfd)
{
	struct kvmstats_vcpu *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->id = dfd->vcpu;
	c->vmm_fd = dfd->fd;
	c->source = FROM_FD;
	r = take_stats_fd(env, st, vm, dfd, &c->stats);
	if (r >= 0)
		r = vm_insert_vcpu(vm, c);
	if (r < 0) {
		statsfd_close(c->stats);
		free(c);
		return r;
	}
	env->changes++;		/* the host says vcpu_added */
	return 0;
}

/*
 * Takes the stats fds of p that vm does not have yet. Errors do not stop
 * the others. What could not be taken, whatever the reason (an fd closed
 * meanwhile: -EBADF, -ESTALE; a VMM exiting: -ESRCH; a refusal; the fd
 * limit), is remembered in hv->unread, so that every rescan tries again
 * instead of waiting for the VMM's fd count to change, and the front ends
 * can say why.
 */
static void fd_listed(struct source_env *env, struct host_vm *hv,
		      const struct discover_proc *p, struct kvmstats_scan_report *rep)
{
	struct fd_state *st = state(env);
	struct kvmstats_vm *vm = &hv->pub;
	unsigned before = hv->unread;

	hv->unread = 0;
	hv->unread_error = 0;
	for (size_t i = 0; !env->no_fds && i < p->nfds; i++) {
		const struct discover_fd *dfd = &p->fds[i];
		int r = 0;

		if (!st)
			r = -ENOMEM;
		else if (dfd->kind == DISCOVER_FD_VM_STATS && vm->nvms == 1 &&
			 !vm->vm_stats) {
			r = take_stats_fd(env, st, vm, dfd, &vm->vm_stats);
			if (r >= 0) {
				vm->vm_source = FROM_FD;
				hv->vm_owner = &source_fd;
			}
		} else if (dfd->kind == DISCOVER_FD_VCPU_STATS && !has_vcpu(vm, dfd)) {
			r = add_vcpu(env, st, vm, dfd);
		}
		if (r >= 0)
			continue;
		hv->unread++;
		hv->unread_error = r;
		if (r == -EMFILE)
			rep->fds_limited++;
		else if (r != -ESRCH && r != -EBADF && r != -ESTALE)
			note_error(rep, r);
	}
	hv->unread_tries = hv->unread == 0 ? 0 : before > 0 ? hv->unread_tries + 1 : 1;
}

/* Lists every stats fd a sample reads, in table order. */
static int build_batch(struct source_env *env, struct fd_state *st)
{
	struct statsfd_batch *b = &st->batch;
	int r = 0;

	statsfd_batch_clear(b);
	for (size_t i = 0; i < env->nvms && r >= 0; i++) {
		struct kvmstats_vm *vm = &env->vms[i]->pub;

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
	st->stale = false;
	return 0;
}

static int fd_sample(struct source_env *env)
{
	struct fd_state *st = env->state[FROM_FD];
	int r;

	if (!st)
		return 0;	/* nothing was ever taken */
	if (st->stale) {
		r = build_batch(env, st);
		if (r < 0)
			return r;
	}
	statsfd_batch_sample(&st->batch);
	return 0;
}

/* Closes s, counting it out of the held fds. */
static void close_stats(struct fd_state *st, struct statsfd **s)
{
	if (*s && (*s)->fd >= 0 && st)
		st->held--;
	statsfd_close(*s);
	*s = NULL;
}

static void fd_detach(struct source_env *env, struct host_vm *hv)
{
	struct fd_state *st = env->state[FROM_FD];
	struct kvmstats_vm *vm = &hv->pub;

	if (st)
		st->stale = true;	/* the batch lends hv's statsfds */
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i]->source == FROM_FD)
			close_stats(st, &vm->vcpus[i]->stats);
	if (vm->vm_source == FROM_FD)
		close_stats(st, &vm->vm_stats);
}

static void fd_cleanup(struct source_env *env)
{
	struct fd_state *st = env->state[FROM_FD];

	if (st)
		statsfd_batch_free(&st->batch);
	free(st);
	env->state[FROM_FD] = NULL;
}

const struct source_ops source_fd = {
	.name = "fd",
	.id = FROM_FD,
	.serves = SOURCE_VM_STATS | SOURCE_VCPU_STATS,
	.prepare = fd_prepare,
	.listed = fd_listed,
	.sample = fd_sample,
	.detach = fd_detach,
	.cleanup = fd_cleanup,
};
