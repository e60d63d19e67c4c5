/* SPDX-License-Identifier: MIT */
/*
 * source_fd.c: the stats fds the VMMs hold (first in sources.c), copied with
 * pidfd_getfd() (acquire.c) when a VMM is listed and read with one pread
 * each (statsfd.c), over a flat array of every fd of the host. A stats fd
 * the VMM opens after a worse source took what it serves (a VM stats fd
 * after debugfs, QMP or libvirt; a vCPU's after QMP) takes over
 * (source_may_take_vm/vcpu(), vm_take_vm_stats(), vm_take_vcpu()).
 *
 * The fds held are a budget (max_fds, fewer near RLIMIT_NOFILE) shared
 * max-min fairly among the VMMs (fdshare.c): a listing only notes which
 * stats fds a VMM holds (its demand), and after every listing of a rescan
 * each VMM is brought to its share, those above it first. So a VMM with
 * thousands of vCPUs started first cannot leave the VMs started after it
 * unwatched: at the rescan that finds them it gives fds back.
 *
 * What is given back: the highest-numbered vCPUs first, the VM-wide stats
 * fd last, and it is taken first. It is one fd for the VM's own stats
 * (MMU, pages mapped, TLB flushes) that no vCPU fd has, while each vCPU
 * fd is one vCPU of many, whose counters the VM-wide totals still hold.
 *
 * A vCPU whose fd was given back stays in the table with its last values
 * (statsfd_give_back(), error GIVEN_BACK): front ends show no new value
 * for it, sums keep counting it, so nothing goes back, and its fd is taken
 * again (statsfd_refill()) when the budget allows: the kernel's counters
 * are absolute, so its values go on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "acquire.h"
#include "fdshare.h"
#include "source.h"

/* The error of a holder whose fd was given back and that wants it again. */
#define GIVEN_BACK (-EMFILE)

struct fd_state {
	size_t held;		/* stats fds held */
	size_t room;		/* the budget: max_fds, or less near RLIMIT_NOFILE */
	bool room_nofile;	/* room was cut by RLIMIT_NOFILE */
	bool nofile;		/* this rescan met EMFILE/ENFILE taking an fd */
	struct statsfd_batch batch;	/* what a sample reads */
	bool stale;		/* the table changed since batch was built */
	size_t *demand, *share;	/* per VM, scratch of fd_attach() */
	size_t scratch_len;
};

/* What this source knows of one VM: hv->priv[FROM_FD]. */
struct fd_vm {
	size_t held;		/* stats fds held for it */
	size_t given;		/* holders given back whose fd its VMM still holds */
	int vm_stats_fd;	/* the VMM's number of the VM-wide stats fd we took */
	/*
	 * Stats fds its VMM held at the last listing that have no holder
	 * yet, VM-wide first, then by vCPU id: taken as the budget allows.
	 */
	struct discover_fd *wait;
	size_t nwait;
	bool listed;		/* listed at this rescan */
};

static struct fd_state *state(struct source_env *env)
{
	if (!env->state[FROM_FD])
		env->state[FROM_FD] = calloc(1, sizeof(struct fd_state));
	return env->state[FROM_FD];
}

static struct fd_vm *vm_state(struct host_vm *hv)
{
	if (!hv->priv[FROM_FD])
		hv->priv[FROM_FD] = calloc(1, sizeof(struct fd_vm));
	return hv->priv[FROM_FD];
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
static size_t fd_room(const struct source_env *env, bool *ret_nofile)
{
	const size_t reserve = 64;
	struct rlimit rl;
	size_t room = env->max_fds ? env->max_fds : SOURCE_FD_DEFAULT_MAX;

	*ret_nofile = false;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		size_t spare = rl.rlim_cur > reserve + env->nvms ?
			       (size_t)rl.rlim_cur - reserve - env->nvms : 0;

		if (spare < room) {
			room = spare;
			*ret_nofile = true;
		}
	}
	return room;
}

static void fd_prepare(struct source_env *env, struct kvmstats_scan_report *rep)
{
	struct fd_state *st = state(env);

	(void)rep;
	if (!st)
		return;
	st->nofile = false;
	st->stale = true;	/* sources may move at this rescan */
}

/*
 * A copy of the VMM's stats fd target_fd (vcpu < 0: the VM-wide one).
 * -EMFILE: our RLIMIT_NOFILE (or the system's) is reached.
 */
static int copy_stats_fd(struct fd_state *st, const struct kvmstats_vm *vm,
			 int target_fd, int vcpu)
{
	int fd = acquire_stats_fd(vm->pidfd, target_fd, vcpu);

	if (fd == -EMFILE || fd == -ENFILE) {
		st->nofile = true;
		return -EMFILE;
	}
	return fd;
}

/* Takes a copy of the VMM's stats fd dfd into a new holder *ret. */
static int take_stats_fd(struct source_env *env, struct fd_state *st, struct fd_vm *fv,
			 struct kvmstats_vm *vm, const struct discover_fd *dfd,
			 struct statsfd **ret)
{
	int fd, r;

	fd = copy_stats_fd(st, vm, dfd->fd, dfd->vcpu);
	if (fd < 0)
		return fd;
	r = statsfd_open(fd, env->cache, ret);
	if (r >= 0) {
		st->held++;
		fv->held++;
		st->stale = true;
	}
	return r;
}

/* Closes s, counting it out of the held fds. */
static void close_stats(struct fd_state *st, struct fd_vm *fv, struct statsfd **s)
{
	if (*s && (*s)->fd >= 0) {
		if (st)
			st->held--;
		if (fv)
			fv->held--;
	}
	statsfd_close(*s);
	*s = NULL;
}

/* Gives the fd of holder s back to the budget; s keeps its last values. */
static void give_back(struct fd_state *st, struct fd_vm *fv, struct statsfd *s)
{
	statsfd_give_back(s, GIVEN_BACK);
	st->held--;
	fv->held--;
	fv->given++;
	st->stale = true;
}

/* Takes the fd of holder s, given back before, again from the VMM. */
static int take_back(struct source_env *env, struct fd_state *st, struct fd_vm *fv,
		     const struct kvmstats_vm *vm, int target_fd, int vcpu,
		     struct statsfd *s)
{
	int fd, r;

	fd = copy_stats_fd(st, vm, target_fd, vcpu);
	if (fd < 0)
		return fd;
	r = statsfd_refill(s, fd, env->cache);
	if (r < 0)
		return r;
	st->held++;
	fv->held++;
	fv->given--;
	st->stale = true;
	return 0;
}

/* A holder of ours whose fd was given back and that wants it again. */
static bool is_given_back(enum kvmstats_source source, const struct statsfd *s)
{
	return source == FROM_FD && s && s->fd < 0 && s->error == GIVEN_BACK;
}

/* A holder given back whose fd is no longer wanted: r says why. */
static void unwant(struct fd_vm *fv, struct statsfd *s, int r)
{
	s->error = r;
	fv->given--;
}

/* A holder given back (error not GIVEN_BACK: unwanted) whose fd the VMM holds. */
static void want(struct fd_vm *fv, struct statsfd *s)
{
	if (s->error != GIVEN_BACK)
		fv->given++;
	s->error = GIVEN_BACK;
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

static int add_vcpu(struct source_env *env, struct fd_state *st, struct fd_vm *fv,
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
	r = take_stats_fd(env, st, fv, vm, dfd, &c->stats);
	if (r >= 0)
		r = vm_insert_vcpu(vm, c);
	if (r < 0) {
		close_stats(st, fv, &c->stats);	/* the fd taken is no longer held */
		free(c);
		return r;
	}
	env->changes++;		/* the host says vcpu_added */
	return 0;
}

/* The VMM's vCPU stats fd dfd, instead of a worse source's vCPU c. */
static int take_vcpu(struct source_env *env, struct fd_state *st, struct fd_vm *fv,
		     struct host_vm *hv, struct kvmstats_vcpu *c,
		     const struct discover_fd *dfd)
{
	struct statsfd *s;
	int r = take_stats_fd(env, st, fv, &hv->pub, dfd, &s);

	if (r >= 0)
		vm_take_vcpu(env, hv, c, &source_fd, s, dfd->fd);
	return r;
}

/* VM-wide first (vcpu -1), then by vCPU id, then by fd. */
static int wait_cmp(const void *a, const void *b)
{
	const struct discover_fd *x = a, *y = b;

	if (x->vcpu != y->vcpu)
		return x->vcpu < y->vcpu ? -1 : 1;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

/*
 * Notes which stats fds of p vm has no holder for (fv->wait), and which
 * holders given back p still holds the fd of (the others: -EBADF, no
 * longer wanted). Nothing is taken here: fd_attach() shares the budget
 * once every VMM of the rescan is listed.
 */
static void fd_listed(struct source_env *env, struct host_vm *hv,
		      const struct discover_proc *p, struct kvmstats_scan_report *rep)
{
	struct fd_vm *fv = vm_state(hv);
	struct kvmstats_vm *vm = &hv->pub;
	struct discover_fd *wait;
	size_t n = 0;

	(void)rep;
	if (!fv || !state(env)) {
		hv->unread = p->nfds;
		hv->unread_error = -ENOMEM;
		return;
	}
	free(fv->wait);
	fv->wait = NULL;
	fv->nwait = 0;
	/* Given back and no longer held by the VMM: no longer wanted. */
	if (is_given_back(vm->vm_source, vm->vm_stats))
		unwant(fv, vm->vm_stats, -EBADF);
	for (size_t i = 0; fv->given > 0 && i < vm->nvcpus; i++)
		if (is_given_back(vm->vcpus[i]->source, vm->vcpus[i]->stats))
			unwant(fv, vm->vcpus[i]->stats, -EBADF);	/* unless listed below */
	if (env->no_fds || p->nfds == 0) {
		fv->listed = true;
		return;
	}
	wait = calloc(p->nfds, sizeof(*wait));
	if (!wait) {
		hv->unread = p->nfds;
		hv->unread_error = -ENOMEM;
		return;
	}
	fv->listed = true;
	for (size_t i = 0; i < p->nfds; i++) {
		const struct discover_fd *dfd = &p->fds[i];
		struct kvmstats_vcpu *c;

		if (dfd->kind == DISCOVER_FD_VM_STATS && vm->nvms == 1) {
			if (source_may_take_vm(hv, &source_fd))
				wait[n++] = *dfd;	/* no holder, or a worse one */
			else if (vm->vm_source == FROM_FD && vm->vm_stats->fd < 0) {
				want(fv, vm->vm_stats);
				fv->vm_stats_fd = dfd->fd;	/* where the VMM holds it now */
			}
		} else if (dfd->kind == DISCOVER_FD_VCPU_STATS) {
			c = find_vcpu(vm, dfd);
			if (!c || source_may_take_vcpu(c, &source_fd)) {
				wait[n++] = *dfd;	/* new, or served by a worse source */
			} else if (c->source == FROM_FD && c->stats->fd < 0) {
				want(fv, c->stats);
				c->vmm_fd = dfd->fd;	/* where the VMM holds it now */
			}
		}
	}
	qsort(wait, n, sizeof(*wait), wait_cmp);
	/* One VM: a second fd of the same vCPU (or VM) would count it twice. */
	if (vm->nvms == 1 && n > 1) {
		size_t k = 1;

		for (size_t i = 1; i < n; i++)
			if (wait[i].vcpu != wait[k - 1].vcpu)
				wait[k++] = wait[i];
		n = k;
	}
	fv->wait = wait;
	fv->nwait = n;
}

/* The stats fds vm's VMM holds that we would read: held, given back, waiting. */
static size_t demand_of(const struct host_vm *hv)
{
	const struct fd_vm *fv = hv->priv[FROM_FD];

	return fv ? fv->held + fv->given + fv->nwait : 0;
}

/* Gives back fds of hv until it holds share: highest vCPUs first, VM-wide last. */
static void shrink(struct fd_state *st, struct host_vm *hv, size_t share)
{
	struct kvmstats_vm *vm = &hv->pub;
	struct fd_vm *fv = hv->priv[FROM_FD];

	for (size_t i = vm->nvcpus; fv->held > share && i-- > 0;) {
		struct kvmstats_vcpu *c = vm->vcpus[i];

		if (c->source == FROM_FD && c->stats->fd >= 0)
			give_back(st, fv, c->stats);
	}
	if (fv->held > share && vm->vm_source == FROM_FD && vm->vm_stats &&
	    vm->vm_stats->fd >= 0)
		give_back(st, fv, vm->vm_stats);
}

/* A VM-wide stats fd waits for the budget (at most one does: see fd_listed()). */
static bool vm_wide_waits(const struct host_vm *hv)
{
	const struct fd_vm *fv = hv->priv[FROM_FD];

	return fv->nwait > 0 && fv->wait[0].vcpu < 0 && source_may_take_vm(hv, &source_fd);
}

/* One failure to take an fd of hv: counted in unread, tried again. */
static void failed(struct host_vm *hv, int r, struct kvmstats_scan_report *rep)
{
	hv->unread++;
	hv->unread_error = r;
	if (r != -ESRCH && r != -EBADF && r != -ESTALE && r != -EMFILE)
		note_error(rep, r);
}

/*
 * Takes fds for hv until it holds share: the VM-wide one first, then the
 * vCPUs given back, lowest first, then the new ones. What fails for
 * another reason than the open file limit is left to the next listing.
 */
static void grow(struct source_env *env, struct fd_state *st, struct host_vm *hv,
		 size_t share, struct kvmstats_scan_report *rep)
{
	struct kvmstats_vm *vm = &hv->pub;
	struct fd_vm *fv = hv->priv[FROM_FD];
	size_t keep = 0, i = 0;
	int r;

	if (fv->held < share && is_given_back(vm->vm_source, vm->vm_stats)) {
		r = take_back(env, st, fv, vm, fv->vm_stats_fd, -1, vm->vm_stats);
		if (r < 0 && r != -EMFILE) {
			unwant(fv, vm->vm_stats, r);	/* until listed again */
			failed(hv, r, rep);
		}
	}
	/* The VM-wide fd sorts first in wait: taken before any vCPU's. */
	for (; i < fv->nwait && fv->wait[i].vcpu < 0; i++) {
		struct statsfd *s;

		r = -EMFILE;
		if (!source_may_take_vm(hv, &source_fd))
			continue;	/* a second fd of ours */
		if (fv->held < share && !st->nofile)
			r = take_stats_fd(env, st, fv, vm, &fv->wait[i], &s);
		if (r >= 0) {
			/* In one step: no sample sees a worse holder and ours. */
			vm_take_vm_stats(env, hv, &source_fd, s);
			fv->vm_stats_fd = fv->wait[i].fd;
		} else if (r == -EMFILE) {
			fv->wait[keep++] = fv->wait[i];	/* waits for the budget */
		} else {
			failed(hv, r, rep);
		}
	}
	for (size_t j = 0; j < vm->nvcpus && fv->given > 0 && fv->held < share &&
			   !st->nofile; j++) {
		struct kvmstats_vcpu *c = vm->vcpus[j];

		if (!is_given_back(c->source, c->stats))
			continue;
		r = take_back(env, st, fv, vm, c->vmm_fd, c->id, c->stats);
		if (r < 0 && r != -EMFILE) {
			unwant(fv, c->stats, r);	/* until listed again */
			failed(hv, r, rep);
		}
	}
	for (; i < fv->nwait; i++) {
		struct kvmstats_vcpu *c = find_vcpu(vm, &fv->wait[i]);

		r = -EMFILE;
		/* Served meanwhile by us, or by a source no worse: theirs. */
		if (c && !source_may_take_vcpu(c, &source_fd))
			continue;
		if (fv->held < share && !st->nofile)
			r = c ? take_vcpu(env, st, fv, hv, c, &fv->wait[i]) :
				add_vcpu(env, st, fv, vm, &fv->wait[i]);
		if (r == -EMFILE)
			fv->wait[keep++] = fv->wait[i];	/* waits for the budget */
		else if (r < 0)
			failed(hv, r, rep);
	}
	fv->nwait = keep;
}

/* Names hv in the report if it holds more than its share. */
static void report_over(const struct host_vm *hv, size_t demand, size_t share,
			struct kvmstats_scan_report *rep)
{
	const struct fd_vm *fv = hv->priv[FROM_FD];
	struct kvmstats_fd_over o;
	size_t at;

	if (!fv || fv->held >= demand)
		return;
	o = (struct kvmstats_fd_over){
		.pid = hv->pub.pid,
		.holds = demand > UINT32_MAX ? UINT32_MAX : (unsigned)demand,
		.share = share > UINT32_MAX ? UINT32_MAX : (unsigned)share,
		.taken = fv->held > UINT32_MAX ? UINT32_MAX : (unsigned)fv->held,
	};
	rep->vms_over++;
	rep->fds_over += o.holds - o.taken;
	/* Most left out first; only the first KVMSTATS_OVER_MAX are kept. */
	at = rep->vms_over - 1 < KVMSTATS_OVER_MAX ? rep->vms_over - 1 : KVMSTATS_OVER_MAX;
	while (at > 0 && rep->over[at - 1].holds - rep->over[at - 1].taken < o.holds - o.taken) {
		if (at < KVMSTATS_OVER_MAX)
			rep->over[at] = rep->over[at - 1];
		at--;
	}
	if (at < KVMSTATS_OVER_MAX)
		rep->over[at] = o;
}

static int grow_scratch(struct fd_state *st, size_t n)
{
	size_t *d, *s;

	if (n <= st->scratch_len)
		return 0;
	d = reallocarray(st->demand, n, sizeof(*d));
	if (!d)
		return -ENOMEM;
	st->demand = d;
	s = reallocarray(st->share, n, sizeof(*s));
	if (!s)
		return -ENOMEM;
	st->share = s;
	st->scratch_len = n;
	return 0;
}

/*
 * After every listing: shares the budget among the VMMs' demands, gives
 * back what is above a share, then takes what is below, and reports who is
 * left short.
 */
static void fd_attach(struct source_env *env, struct kvmstats_scan_report *rep)
{
	struct fd_state *st = env->state[FROM_FD];

	if (!st)
		return;
	/* Now that the table is whole: it has a pidfd per VM to leave room for. */
	st->room = fd_room(env, &st->room_nofile);
	rep->fd_budget = st->room;
	rep->fd_budget_nofile = st->room_nofile;
	if (grow_scratch(st, env->nvms) < 0) {
		note_error(rep, -ENOMEM);
		return;
	}
	for (size_t i = 0; i < env->nvms; i++) {
		st->demand[i] = demand_of(env->vms[i]);
		if (st->demand[i] > 0)
			rep->fd_vmms++;
	}
	fdshare_compute(st->demand, env->nvms, st->room, st->share);
	for (size_t i = 0; i < env->nvms; i++) {
		struct fd_vm *fv = env->vms[i]->priv[FROM_FD];
		size_t keep = st->share[i];

		if (!fv)
			continue;
		/* A VM-wide fd that came late is worth a vCPU's: make room for it. */
		if (keep > 0 && fv->held >= keep && vm_wide_waits(env->vms[i]))
			keep--;
		if (fv->held > keep)
			shrink(st, env->vms[i], keep);
	}
	for (size_t i = 0; i < env->nvms; i++) {
		struct host_vm *hv = env->vms[i];
		struct fd_vm *fv = hv->priv[FROM_FD];
		unsigned before = hv->unread;

		if (!fv)
			continue;
		if (fv->listed) {
			hv->unread = 0;
			hv->unread_error = 0;
		}
		if (fv->held < st->share[i])
			grow(env, st, hv, st->share[i], rep);
		if (fv->listed)
			hv->unread_tries = hv->unread == 0 ? 0 :
					   before > 0 ? hv->unread_tries + 1 : 1;
		fv->listed = false;
		/* What failed is no longer demanded: only what waits or was given back. */
		report_over(hv, demand_of(hv), st->share[i], rep);
	}
	rep->fds_held = st->held;	/* for front ends and tests to compare */
}

/* Lists every stats fd a sample reads, in table order; given back: none. */
static int build_batch(struct source_env *env, struct fd_state *st)
{
	struct statsfd_batch *b = &st->batch;
	int r = 0;

	statsfd_batch_clear(b);
	for (size_t i = 0; i < env->nvms && r >= 0; i++) {
		struct kvmstats_vm *vm = &env->vms[i]->pub;

		if (vm->vm_source == FROM_FD && vm->vm_stats && vm->vm_stats->fd >= 0)
			r = statsfd_batch_add(b, vm->vm_stats);
		for (size_t j = 0; j < vm->nvcpus && r >= 0; j++)
			if (vm->vcpus[j]->source == FROM_FD && vm->vcpus[j]->stats->fd >= 0)
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

static void fd_detach(struct source_env *env, struct host_vm *hv)
{
	struct fd_state *st = env->state[FROM_FD];
	struct fd_vm *fv = hv->priv[FROM_FD];
	struct kvmstats_vm *vm = &hv->pub;

	if (st)
		st->stale = true;	/* the batch lends hv's statsfds */
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i]->source == FROM_FD)
			close_stats(st, fv, &vm->vcpus[i]->stats);
	if (vm->vm_source == FROM_FD)
		close_stats(st, fv, &vm->vm_stats);
	if (fv)
		free(fv->wait);
	free(fv);
	hv->priv[FROM_FD] = NULL;
}

/*
 * A better source takes the VM-wide slot (none is better today: for the
 * rule's sake): only our holder of it goes.
 */
static void fd_drop_vm(struct source_env *env, struct host_vm *hv)
{
	struct fd_state *st = env->state[FROM_FD];
	struct fd_vm *fv = hv->priv[FROM_FD];

	if (st)
		st->stale = true;
	if (fv && is_given_back(hv->pub.vm_source, hv->pub.vm_stats))
		fv->given--;
	close_stats(st, fv, &hv->pub.vm_stats);
}

/* Likewise for one vCPU. */
static void fd_drop_vcpu(struct source_env *env, struct host_vm *hv,
			 struct kvmstats_vcpu *c)
{
	struct fd_state *st = env->state[FROM_FD];
	struct fd_vm *fv = hv->priv[FROM_FD];

	if (st)
		st->stale = true;
	if (fv && is_given_back(c->source, c->stats))
		fv->given--;
	close_stats(st, fv, &c->stats);
}

static void fd_cleanup(struct source_env *env)
{
	struct fd_state *st = env->state[FROM_FD];

	if (st) {
		statsfd_batch_free(&st->batch);
		free(st->demand);
		free(st->share);
	}
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
