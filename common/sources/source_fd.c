/*
 * source_fd.c: the stats fds the VMMs hold (first in sources.c), copied with
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

static struct kvmstats_vcpu *find_vcpu(const struct kvmstats_vm *vm,
				       const struct discover_fd *dfd)
{
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vcpu_is(vm, vm->vcpus[i], dfd))
			return vm->vcpus[i];
	return NULL;
}

static void close_stats(struct fd_state *st, struct statsfd **s);

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
		close_stats(st, &c->stats);
		free(c);
		return r;
	}
	env->changes++;		/* the host says vcpu_added */
	return 0;
}

/* The VMM's VM stats fd, instead of a worse source's VM-wide stats. */
static int take_vm(struct source_env *env, struct fd_state *st, struct host_vm *hv,
		   const struct discover_fd *dfd)
{
	struct statsfd *s;
	int r = take_stats_fd(env, st, &hv->pub, dfd, &s);

	if (r >= 0)
		vm_take_vm_stats(env, hv, &source_fd, s);
	return r;
}

/* A vCPU stats fd the VMM holds, instead of a worse source's vCPU c. */
static int take_vcpu(struct source_env *env, struct fd_state *st, struct host_vm *hv,
		     struct kvmstats_vcpu *c, const struct discover_fd *dfd)
{
	struct statsfd *s;
	int r = take_stats_fd(env, st, &hv->pub, dfd, &s);

	if (r >= 0)
		vm_take_vcpu(env, hv, c, &source_fd, s, dfd->fd);
	return r;
}

/*
 * Takes the stats fds of p that serve what no source or only a worse one
 * serves (source_may_take_vm/vcpu): a VM stats fd the VMM opened after
 * debugfs, QMP or libvirt took the VM's VM-wide stats, a vCPU stats fd
 * that appears after QMP served that vCPU. Errors do not stop
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
			 source_may_take_vm(hv, &source_fd))
			r = take_vm(env, st, hv, dfd);
		else if (dfd->kind == DISCOVER_FD_VCPU_STATS) {
			struct kvmstats_vcpu *c = find_vcpu(vm, dfd);

			if (!c)
				r = add_vcpu(env, st, vm, dfd);
			else if (source_may_take_vcpu(c, &source_fd))
				r = take_vcpu(env, st, hv, c, dfd);
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

static void fd_drop_vm(struct source_env *env, struct host_vm *hv)
{
	struct fd_state *st = env->state[FROM_FD];

	if (st)
		st->stale = true;
	close_stats(st, &hv->pub.vm_stats);
}

static void fd_drop_vcpu(struct source_env *env, struct host_vm *hv,
			 struct kvmstats_vcpu *c)
{
	struct fd_state *st = env->state[FROM_FD];

	(void)hv;
	if (st)
		st->stale = true;
	close_stats(st, &c->stats);
}

/* What the report says the host holds, for front ends and tests to compare. */
static void fd_attach(struct source_env *env, struct kvmstats_scan_report *rep)
{
	struct fd_state *st = env->state[FROM_FD];

	rep->fds_held = st ? st->held : 0;
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
	.attach = fd_attach,
	.sample = fd_sample,
	.detach = fd_detach,
	.drop_vm = fd_drop_vm,
	.drop_vcpu = fd_drop_vcpu,
	.cleanup = fd_cleanup,
};
