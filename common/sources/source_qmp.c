/* SPDX-License-Identifier: MIT */
/*
 * source_qmp.c: QEMU's QMP query-stats (QEMU >= 7.1; qmp.c) for the
 * sockets a front end names (paths or globs). Serves a VM's VM-wide stats
 * and each vCPU that no better source serves (source_may_take_*). A
 * socket is tied to its VM by the peer's pid (SO_PEERCRED) at a rescan;
 * one connect-query-disconnect per VM and sample.
 *
 * No peer can stall the others. All sockets are asked at once, each
 * exchange with its own deadline, in one poll() loop (qmp_exchanges_run()),
 * so a sample waits at most one deadline whatever the number of stuck
 * QEMUs. A socket that misses its deadline (or fails otherwise) is stuck:
 * it is no longer waited for, and after a backoff (1 s doubling to 60 s)
 * a probe exchange is started and left in flight across samples, driven
 * without waiting at each one. Only once a probe has answered everything
 * by its deadline is the socket waited for again. So a socket known to be
 * stuck costs the others nothing, and one that stalls suddenly costs its
 * deadline once.
 *
 * Values are always those of this sample's own exchange, one connection,
 * one round: a probe's answers, older than the sample, are never pushed.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "priv.h"
#include "qmp.h"
#include "qmp_internal.h"
#include "source.h"

/* One QMP socket, tied to a VM or not (yet). */
struct qmp_peer {
	char *path;
	struct host_vm *hv;	/* the VM it serves; NULL: none known */
	pid_t pid;		/* its listener at the last connect; 0: unknown */
	struct qmp_exchange *x;	/* in flight; NULL: none */
	bool probe;		/* x only tells whether the peer answers again */
	bool wait;		/* x is waited for in this run */
	int error;		/* 0: answers; else why not (-errno): stuck */
	unsigned backoff_ms;	/* the wait chosen at its last failure */
	uint64_t retry_ns;	/* stuck: a probe starts from then on */
	uint64_t gen;		/* the last attach that globbed its path */
};

struct qmp_state {
	struct qmp_peer *peers;
	size_t n, cap;
	uint64_t gen;
};

/*
 * Takes what a query-stats answer has that no better source serves, at
 * every answer: a worse source's holder is taken over (libvirt's, say,
 * once the socket is configured), a better one's left alone.
 */
static int apply_qmp(struct source_env *env, struct host_vm *hv,
		     const struct qmp_stats *qs)
{
	struct kvmstats_vm *vm = &hv->pub;
	int r;

	if (qs->vm_schema && source_may_take_vm(hv, &source_qmp)) {
		struct statsfd *s;

		r = statsfd_virtual(qs->vm_schema, "qmp", env->vcache, &s);
		if (r < 0)
			return r;
		vm_take_vm_stats(env, hv, &source_qmp, s);
	}
	if (vm->vm_source == FROM_QMP && qs->vm_schema &&
	    schema_equal(vm->vm_stats->schema, qs->vm_schema))
		statsfd_push(vm->vm_stats, qs->vm_values);

	if (qs->ncpus > 0) {
		struct sched_hint *h = calloc(qs->ncpus, sizeof(*h));

		if (!h)
			return -ENOMEM;
		for (size_t i = 0; i < qs->ncpus; i++)
			h[i] = (struct sched_hint){ qs->cpu_index[i], qs->cpu_tid[i] };
		if (hv->nhints != qs->ncpus || memcmp(hv->hints, h, qs->ncpus * sizeof(*h)))
			hv->hints_changed = true;	/* sched.c looks again */
		free(hv->hints);
		hv->hints = h;
		hv->nhints = qs->ncpus;
	}
	for (size_t i = 0; qs->vcpu_schema && i < qs->nvcpus; i++) {
		struct kvmstats_vcpu *c = vm_find_vcpu(vm, qs->vcpu_index[i]);

		if (!c) {
			r = vm_add_virtual_vcpu(env, hv, qs->vcpu_index[i], FROM_QMP,
						"qmp", qs->vcpu_schema, &c);
			if (r < 0)
				return r;
		} else if (source_may_take_vcpu(c, &source_qmp)) {
			struct statsfd *s;

			r = statsfd_virtual(qs->vcpu_schema, "qmp", env->vcache, &s);
			if (r < 0)
				return r;
			vm_take_vcpu(env, hv, c, &source_qmp, s, -1);
		}
		if (c->source == FROM_QMP && schema_equal(c->stats->schema, qs->vcpu_schema))
			statsfd_push(c->stats, qs->vcpu_values[i]);
	}
	return 0;
}

/* This interval has no QMP values for the VM: its holders say why. */
static void mark_vm(struct host_vm *hv, int r)
{
	struct kvmstats_vm *vm = &hv->pub;

	if (vm->vm_source == FROM_QMP)
		vm->vm_stats->error = r;
	for (size_t i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i]->source == FROM_QMP)
			vm->vcpus[i]->stats->error = r;
}

static struct qmp_state *get_state(struct source_env *env)
{
	struct qmp_state *st = env->state[FROM_QMP];

	if (!st && (st = calloc(1, sizeof(*st))))
		env->state[FROM_QMP] = st;
	return st;
}

static struct qmp_peer *find_peer(struct qmp_state *st, const char *path)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->peers[i].path, path) == 0)
			return &st->peers[i];
	return NULL;
}

static struct qmp_peer *add_peer(struct qmp_state *st, const char *path)
{
	struct qmp_peer *p;

	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 8;

		p = realloc(st->peers, cap * sizeof(*p));
		if (!p)
			return NULL;
		st->peers = p;
		st->cap = cap;
	}
	p = &st->peers[st->n];
	*p = (struct qmp_peer){ 0 };
	if (!(p->path = strdup(path)))
		return NULL;
	st->n++;
	return p;
}

static void drop_peer(struct qmp_state *st, size_t i)
{
	qmp_exchange_free(st->peers[i].x);
	free(st->peers[i].path);
	st->peers[i] = st->peers[--st->n];
}

/*
 * What this run does with p: a waited exchange when it answers (and
 * asking is wanted), a probe once its backoff is over, or drives the probe
 * in flight. Returns -errno of a connect that failed at once.
 */
static int plan(struct qmp_peer *p, bool ask, int timeout_ms, uint64_t now)
{
	bool probe;
	int r;

	p->wait = false;
	if (p->x) {		/* a probe in flight: driven, not waited for */
		p->wait = !p->probe;	/* an exchange a failed run left: waited for */
		return 0;
	}
	if (p->error == 0 && !ask)
		return 0;
	if (p->error != 0 && now < p->retry_ns)
		return 0;	/* in backoff: costs nothing */
	probe = p->error != 0;
	r = qmp_exchange_start(p->path, probe, now + (uint64_t)timeout_ms * 1000000u, &p->x);
	if (r < 0)
		return r;
	p->probe = probe;
	p->wait = !probe;
	return 0;
}

/* p failed (again): it is stuck, and asked again after a longer wait. */
static void fail(struct qmp_peer *p, int r, uint64_t now)
{
	p->error = r;
	p->backoff_ms = qmp_backoff_next(p->backoff_ms);
	p->retry_ns = now + (uint64_t)p->backoff_ms * 1000000u;
	if (p->hv)
		mark_vm(p->hv, r);
}

/*
 * Takes what p's exchange ended with, if it ended. At an attach (tie), a
 * socket not tied yet is tied to the VM of its listener's pid, answering
 * or not, so a stuck socket's VM is known by name.
 */
static void finish(struct source_env *env, struct qmp_peer *p, int start_error,
		   bool tie, uint64_t now, struct kvmstats_scan_report *rep)
{
	struct qmp_stats *qs = NULL;
	bool probe = p->probe, tied = false;
	int r = start_error;

	if (r >= 0 && !p->x)
		return;		/* not asked this time */
	if (r >= 0) {
		if (qmp_exchange_state(p->x) != QX_DONE &&
		    qmp_exchange_state(p->x) != QX_FAILED)
			return;	/* a probe still in flight */
		if (qmp_exchange_pid(p->x) > 0)
			p->pid = qmp_exchange_pid(p->x);
		r = qmp_exchange_result(p->x, &qs);
		qmp_exchange_free(p->x);
		p->x = NULL;
	}
	if (tie && !p->hv && p->pid > 0) {
		struct host_vm *hv = vm_find_by_pid(env, p->pid);

		if (hv && !hv->pub.qmp_path && (hv->pub.qmp_path = strdup(p->path))) {
			p->hv = hv;
			tied = true;
		}
	}
	if (r >= 0 && p->hv && qs->pid != p->hv->pub.pid)
		r = -ESTALE;	/* another QEMU now listens there */
	if (r == -ENOMEM) {
		/*
		 * Ours, not the peer's: no backoff, asked again at the next
		 * sample or rescan (untied if tied just now, so that the next
		 * rescan asks it at once). This interval has no values from it.
		 */
		if (p->hv)
			mark_vm(p->hv, r);
		if (tied) {
			free(p->hv->pub.qmp_path);
			p->hv->pub.qmp_path = NULL;
			p->hv = NULL;
		}
		if (rep && rep->first_error == 0)
			rep->first_error = r;
	} else if (r < 0) {
		if (rep && rep->qmp_failed++ == 0)
			rep->qmp_error = r;
		fail(p, r, now);
	} else if (probe) {
		/* Answered in time: waited for again from the next sample on. */
		p->error = 0;
	} else {
		p->error = 0;
		p->backoff_ms = 0;
		if (p->hv) {
			r = apply_qmp(env, p->hv, qs);
			if (r < 0) {
				mark_vm(p->hv, r);	/* taken in part: none this interval */
				if (rep && rep->first_error == 0)
					rep->first_error = r;
			}
		}
		/*
		 * Tied, then taken in part (-ENOMEM): untie the socket, so
		 * that the next rescan takes the rest, rather than leave the
		 * VM without stats until a sample comes.
		 */
		if (r < 0 && tie && p->hv) {
			free(p->hv->pub.qmp_path);
			p->hv->pub.qmp_path = NULL;
			p->hv = NULL;
		}
	}
	qmp_stats_free(qs);
}

/*
 * One run over every peer: tied ones are asked when sample, untied ones
 * when attach; every stuck one is probed or driven. -ENOMEM.
 */
static int run(struct source_env *env, struct qmp_state *st, bool attach,
	       struct kvmstats_scan_report *rep)
{
	struct qmp_exchange **xs = calloc(st->n ? st->n : 1, sizeof(*xs));
	bool *wait = calloc(st->n ? st->n : 1, sizeof(*wait));
	int *start_error = calloc(st->n ? st->n : 1, sizeof(*start_error));
	uint64_t now = qmp_now_ns();
	struct priv_saved saved = { 0 };
	bool raised = false;
	int r = 0;

	if (!xs || !wait || !start_error) {
		r = -ENOMEM;
		goto out;
	}
	/*
	 * The connects, with the acquisition capabilities effective (a
	 * rescan has them already), as the rescan's glob() of the paths had
	 * them: a socket in a container, "/proc/PID/root/...", is reached
	 * only with ptrace read access to the VMM (CAP_SYS_PTRACE), and its
	 * directories may be closed to us (CAP_DAC_READ_SEARCH). Neither
	 * lets us write to a socket: connect() still needs write permission
	 * on it, which its owner grants. Only the connects: the exchanges
	 * run with none.
	 */
	if (env->raise_priv && !attach)
		raised = priv_raise(&saved) == 0;
	for (size_t i = 0; i < st->n; i++) {
		struct qmp_peer *p = &st->peers[i];
		bool ask = attach ? !p->hv : p->hv != NULL;

		start_error[i] = plan(p, ask, env->qmp_timeout_ms, now);
		xs[i] = p->x;
		wait[i] = p->wait;
	}
	if (raised)
		priv_restore(&saved);
	r = qmp_exchanges_run(xs, wait, st->n, env->stop);
	now = qmp_now_ns();
	/*
	 * The run itself failed (-ENOMEM): ours, not the peers'. The
	 * exchanges it should have waited for are dropped, to start afresh
	 * next time, rather than be taken for probes or expire as if the
	 * peers were stuck; their VMs have no values this interval.
	 */
	for (size_t i = 0; r < 0 && i < st->n; i++) {
		struct qmp_peer *p = &st->peers[i];

		if (!p->x || p->probe || qmp_exchange_state(p->x) == QX_DONE ||
		    qmp_exchange_state(p->x) == QX_FAILED)
			continue;
		qmp_exchange_free(p->x);
		p->x = NULL;
		if (p->hv)
			mark_vm(p->hv, r);
	}
	for (size_t i = 0; i < st->n; i++) {
		struct qmp_peer *p = &st->peers[i];

		finish(env, p, start_error[i], attach, now, rep);
		/* Not asked, still stuck: this interval has no values either. */
		if (!attach && p->hv && p->error != 0)
			mark_vm(p->hv, p->error);
	}
out:
	free(start_error);
	free(wait);
	free(xs);
	return r;
}

/* The report names the failing sockets, the first ones by path. */
static void report_stuck(const struct source_env *env, const struct qmp_state *st,
			 struct kvmstats_scan_report *rep)
{
	rep->qmp_timeout_ms = env->qmp_timeout_ms;
	for (size_t i = 0; i < st->n; i++) {
		const struct qmp_peer *p = &st->peers[i];
		struct kvmstats_qmp_stuck *s;
		size_t at;

		if (p->error == 0)
			continue;
		rep->qmp_stuck_total++;
		for (at = 0; at < rep->nqmp_stuck; at++)
			if (strcmp(p->path, rep->qmp_stuck[at].path) < 0)
				break;
		if (at == KVMSTATS_QMP_STUCK_MAX)
			continue;
		if (rep->nqmp_stuck == KVMSTATS_QMP_STUCK_MAX)
			rep->nqmp_stuck--;
		memmove(&rep->qmp_stuck[at + 1], &rep->qmp_stuck[at],
			(rep->nqmp_stuck - at) * sizeof(rep->qmp_stuck[0]));
		rep->nqmp_stuck++;
		s = &rep->qmp_stuck[at];
		snprintf(s->path, sizeof(s->path), "%s", p->path);
		s->pid = p->pid;
		s->error = p->error;
		s->retry_s = p->backoff_ms / 1000;
	}
}

/* The peer at path, found or added, is named again in this rescan. */
static void name_peer(struct qmp_state *st, const char *path, struct kvmstats_scan_report *rep)
{
	struct qmp_peer *p = find_peer(st, path);

	if (!p)
		p = add_peer(st, path);
	if (p)
		p->gen = st->gen;
	else if (rep->first_error == 0)
		rep->first_error = -ENOMEM;
}

/*
 * A configured path without wildcards that glob() did not match because
 * it may not be looked at (a directory closed to us, /proc/PID/root of a
 * VMM we may not ptrace): kept as a peer, so that its connect says why,
 * where glob() would say nothing. One that does not exist stays unnamed.
 */
static bool refused(const char *path)
{
	struct stat sb;

	if (strpbrk(path, "*?[\\") || lstat(path, &sb) == 0)
		return false;
	return errno == EACCES || errno == EPERM;
}

/* Finds the configured sockets; asks those not tied to a VM whose they are. */
static void qmp_attach(struct source_env *env, struct kvmstats_scan_report *rep)
{
	struct qmp_state *st;
	int r;

	if (env->nqmp == 0 && !env->state[FROM_QMP])
		return;
	st = get_state(env);
	if (!st) {
		if (rep->first_error == 0)
			rep->first_error = -ENOMEM;
		return;
	}
	st->gen++;
	for (size_t i = 0; i < env->nqmp; i++) {
		glob_t g;
		int gr = glob(env->qmp[i], GLOB_NOSORT, NULL, &g);

		if (gr == GLOB_NOMATCH && refused(env->qmp[i])) {
			name_peer(st, env->qmp[i], rep);
			continue;
		}
		if (gr != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc; j++)
			name_peer(st, g.gl_pathv[j], rep);
		globfree(&g);
	}
	/* A socket gone (or no longer named) is forgotten, unless a VM uses it. */
	for (size_t i = st->n; i-- > 0;)
		if (st->peers[i].gen != st->gen && !st->peers[i].hv)
			drop_peer(st, i);
	r = run(env, st, true, rep);
	if (r < 0 && rep->first_error == 0)
		rep->first_error = r;
	report_stuck(env, st, rep);
}

static int qmp_sample(struct source_env *env)
{
	struct qmp_state *st = env->state[FROM_QMP];

	if (!st || st->n == 0 || env->nqmp == 0)
		return 0;
	return run(env, st, false, NULL);
}

static void qmp_detach(struct source_env *env, struct host_vm *hv)
{
	struct qmp_state *st = env->state[FROM_QMP];

	for (size_t i = 0; st && i < st->n; i++)
		if (st->peers[i].hv == hv)
			st->peers[i].hv = NULL;
	free(hv->pub.qmp_path);
	hv->pub.qmp_path = NULL;
}

static void qmp_cleanup(struct source_env *env)
{
	struct qmp_state *st = env->state[FROM_QMP];

	if (!st)
		return;
	while (st->n > 0)
		drop_peer(st, st->n - 1);
	free(st->peers);
	free(st);
	env->state[FROM_QMP] = NULL;
}

const struct source_ops source_qmp = {
	.name = "qmp",
	.id = FROM_QMP,
	.serves = SOURCE_VM_STATS | SOURCE_VCPU_STATS,
	.attach = qmp_attach,
	.sample = qmp_sample,
	.detach = qmp_detach,
	.cleanup = qmp_cleanup,
};
