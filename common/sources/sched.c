/* SPDX-License-Identifier: MIT */
/*
 * sched.c: the host thread that runs each vCPU, and its scheduler counters.
 *
 * KVM counts exits and halts, not whether the host gave a vCPU the CPU it
 * wanted. The thread that runs a vCPU says it: /proc/<pid>/task/<tid>/
 * schedstat holds the ns it ran, the ns it waited runnable on a run queue,
 * and its timeslices (what libvirt reports as vcpu.N.time and .delay).
 *
 * Finding the thread, whatever the VMM, without trusting a name alone:
 *  - a thread blocked in ioctl(<fd>, KVM_RUN), as its task/<tid>/syscall
 *    shows ("16 0x<fd> 0xae80 ..." on x86-64), runs the vCPU whose
 *    anon_inode:kvm-vcpu:N is that fd. A thread on a CPU shows "running"
 *    instead (so does a runnable one waiting for a CPU), so this evidence
 *    comes from vCPUs that halt or wait in the kernel (an idle guest), and
 *    a vCPU found once by it keeps its thread;
 *  - QEMU's QMP query-cpus-fast says each vCPU's "thread-id" (where a QMP
 *    socket serves the VM): taken when it is a thread of the VMM that no
 *    evidence gives to another vCPU;
 *  - QEMU names its vCPU threads "CPU N/KVM": a name is taken when nothing
 *    contradicts it (never a thread that evidence gives to another vCPU,
 *    never a name two threads or two vCPU fds share), and looked at again
 *    every LOOK_EVERY_USEC until the syscall evidence confirms it.
 * Reading another user's syscall file needs PTRACE_MODE_ATTACH (the
 * plugin's CAP_SYS_PTRACE, raised around rescans); without it names only.
 *
 * The thread is remembered; its schedstat is kept open and pread at every
 * sample (the fd pins the thread: a read after it exited fails with ESRCH,
 * whatever became of its tid). Then its last values stay in the vCPU's
 * total, and the next rescan finds the thread that replaced it. These fds
 * are not stats fds: they use what RLIMIT_NOFILE leaves after the stats fd
 * budget (the stats come first), at most max_fds; beyond that a schedstat
 * is opened, read and closed at each sample (3 syscalls instead of 1).
 *
 * The VMM's other threads (emulator, I/O): the process's CPU clock
 * (clock_getcpuclockid(), ns, every thread that ever ran, no privilege
 * needed) less its vCPU threads' run time. One syscall per VM, no tick
 * granularity (/proc/<pid>/stat's utime+stime are in clock ticks, 10 ms).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sched.h"
#include "util.h"

/* A vCPU found by name only, or none, is looked at again this often. */
#define LOOK_EVERY_USEC (10 * 1000000ULL)
/* Longer than anything the kernel writes in schedstat or syscall. */
#define TEXT_MAX 256

struct sched_vcpu {
	int fd;			/* its kvm-vcpu fd in the VMM */
	int id;			/* N of kvm-vcpu:N */
	pid_t tid;		/* 0: none known */
	enum sched_how how;
	int statfd;		/* task/<tid>/schedstat held open; -1: none */
	bool bad;		/* its last read failed: published as unknown */
	struct kvmstats_sched_total cur;	/* of tid, its last good read */
	struct kvmstats_sched_total base;	/* of the threads before tid */
};

struct sched_vm {
	struct sched_vcpu *v;	/* sorted by fd */
	size_t n;
	bool stale;		/* look at the threads at the next rescan */
	uint64_t looked_at;	/* CLOCK_MONOTONIC µs; 0: never */
	struct kvmstats_sched_total gone;	/* of vCPU fds closed since */
	clockid_t clock;	/* the VMM's CPU clock */
	int clock_state;	/* 0: not asked yet, 1: have it, < 0: -errno */
	uint64_t other;		/* other_run_ns, never going back */
};

static void total_add(struct kvmstats_sched_total *t, const struct kvmstats_sched_total *a)
{
	t->run_ns += a->run_ns;
	t->wait_ns += a->wait_ns;
	t->timeslices += a->timeslices;
}

/*
 * A decimal number ending at stop, as the kernel's and QEMU's printf
 * write one: digits only, no leading zero but for 0 itself.
 */
static bool parse_dec(const char *s, char stop, unsigned long max, unsigned long *ret,
		      const char **ret_end)
{
	if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
		return false;
	return util_parse_ulong(s, stop, 0, max, ret, ret_end);
}

int sched_parse_schedstat(const char *buf, size_t len, struct kvmstats_sched_total *ret)
{
	char text[TEXT_MAX];
	unsigned long v[3];
	const char *s = text;

	if (len == 0 || len >= sizeof(text) || memchr(buf, '\0', len))
		return -EBADMSG;
	memcpy(text, buf, len);
	text[len] = '\0';
	for (int i = 0; i < 3; i++) {
		if (!parse_dec(s, i < 2 ? ' ' : '\n', UINT64_MAX, &v[i], &s))
			return -EBADMSG;
		s++;
	}
	if (*s != '\0')
		return -EBADMSG;
	*ret = (struct kvmstats_sched_total){ v[0], v[1], v[2] };
	return 0;
}

/*
 * "0x<hex>" ending at stop, as the kernel's "0x%lx" writes it: lower-case
 * digits, no leading zero but for 0x0 (strtoull alone would take blanks,
 * signs, upper case and a second "0x").
 */
static bool parse_hex(const char *s, char stop, unsigned long long *ret, const char **ret_end)
{
	unsigned long long v;
	const char *p = s + 2;
	char *end;

	if (s[0] != '0' || s[1] != 'x' || (p[0] == '0' && p[1] != stop))
		return false;
	while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
		p++;
	if (p == s + 2 || *p != stop)
		return false;
	errno = 0;
	v = strtoull(s + 2, &end, 16);
	if (errno != 0 || end != p)
		return false;
	*ret = v;
	*ret_end = end;
	return true;
}

int sched_parse_syscall(const char *buf, size_t len, int *ret_fd)
{
	char text[TEXT_MAX];
	unsigned long long a[8];
	const char *s = text;
	unsigned long nr;
	int nargs;

	if (len == 0 || len >= sizeof(text) || memchr(buf, '\0', len))
		return -EBADMSG;
	memcpy(text, buf, len);
	text[len] = '\0';
	if (strcmp(text, "running\n") == 0)
		return 0;
	/* Not in a syscall: "-1 0x<sp> 0x<pc>". */
	if (text[0] == '-') {
		if (text[1] != '1' || text[2] != ' ')
			return -EBADMSG;
		s = text + 3;
		nargs = 2;
	} else {
		if (!parse_dec(s, ' ', 0xffffffffUL, &nr, &s))
			return -EBADMSG;
		s++;
		nargs = 8;	/* six arguments, sp, pc */
	}
	for (int i = 0; i < nargs; i++) {
		if (!parse_hex(s, i + 1 < nargs ? ' ' : '\n', &a[i], &s))
			return -EBADMSG;
		s++;
	}
	if (*s != '\0')
		return -EBADMSG;
	if (nargs == 2 || nr != SYS_ioctl || a[1] != KVM_RUN || a[0] > 0x7fffffffULL)
		return 0;
	*ret_fd = (int)a[0];
	return 1;
}

int sched_parse_comm(const char *buf, size_t len, int *ret_id)
{
	char text[32];
	unsigned long id;
	const char *end;

	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len < 8 || len >= sizeof(text) || memchr(buf, '\0', len))
		return 0;
	memcpy(text, buf, len);
	text[len] = '\0';
	if (strncmp(text, "CPU ", 4) != 0 ||
	    !parse_dec(text + 4, '/', 0x7fffffffUL, &id, &end) ||
	    strcmp(end, "/KVM") != 0)
		return 0;
	*ret_id = (int)id;
	return 1;
}

static const struct sched_seen *find_seen(const struct sched_seen *seen, size_t n, pid_t tid)
{
	for (size_t i = 0; i < n; i++)
		if (seen[i].tid == tid)
			return &seen[i];
	return NULL;
}

static bool taken(const struct sched_pick *picks, size_t n, size_t but, pid_t tid)
{
	for (size_t i = 0; i < n; i++)
		if (i != but && picks[i].tid == tid)
			return true;
	return false;
}

void sched_match(const struct sched_seen *seen, size_t nseen,
		 struct sched_pick *picks, size_t npicks)
{
	/* claim[i]: the thread in KVM_RUN on picks[i].fd; -1: several. */
	pid_t *claim = calloc(npicks ? npicks : 1, sizeof(*claim));
	struct sched_pick *was = calloc(npicks ? npicks : 1, sizeof(*was));

	if (!claim || !was) {
		/* No memory to weigh evidence: forget nothing, take nothing. */
		free(claim);
		free(was);
		return;
	}
	memcpy(was, picks, npicks * sizeof(*was));
	for (size_t s = 0; s < nseen; s++) {
		if (seen[s].run_fd < 0)
			continue;
		for (size_t i = 0; i < npicks; i++)
			if (picks[i].fd == seen[s].run_fd)
				claim[i] = claim[i] == 0 ? seen[s].tid : -1;
	}
	/* 1. The syscall evidence. */
	for (size_t i = 0; i < npicks; i++) {
		picks[i].tid = claim[i] > 0 ? claim[i] : 0;
		picks[i].how = claim[i] > 0 ? SCHED_HOW_SYSCALL : SCHED_HOW_NONE;
	}
	/* 2. The thread known before, where nothing says otherwise. */
	for (size_t i = 0; i < npicks; i++) {
		const struct sched_seen *s = find_seen(seen, nseen, was[i].tid);

		if (picks[i].tid != 0 || claim[i] != 0 || was[i].tid == 0 || !s)
			continue;
		if (s->run_fd >= 0 && s->run_fd != picks[i].fd)
			continue;	/* in KVM_RUN on another vCPU's fd */
		if (was[i].how == SCHED_HOW_NAME && s->name_id != picks[i].id)
			continue;	/* renamed: the name was all we had */
		if (was[i].how == SCHED_HOW_HINT && picks[i].hint != was[i].tid)
			continue;	/* the source says another now */
		if (taken(picks, npicks, i, s->tid))
			continue;
		picks[i].tid = was[i].tid;
		picks[i].how = was[i].how;
	}
	/* 3. A source's hint (QMP's thread-id): a thread of this VMM, unclaimed. */
	for (size_t i = 0; i < npicks; i++) {
		const struct sched_seen *s = find_seen(seen, nseen, picks[i].hint);

		if (picks[i].tid != 0 || claim[i] != 0 || picks[i].hint == 0 || !s ||
		    (s->run_fd >= 0 && s->run_fd != picks[i].fd) ||
		    taken(picks, npicks, i, s->tid))
			continue;
		picks[i].tid = s->tid;
		picks[i].how = SCHED_HOW_HINT;
	}
	/* 4. QEMU's names, where one thread and one vCPU fd have the name. */
	for (size_t i = 0; i < npicks; i++) {
		const struct sched_seen *one = NULL;
		bool twice = false;

		if (picks[i].tid != 0 || claim[i] != 0)
			continue;
		for (size_t j = 0; j < npicks; j++)
			if (j != i && picks[j].id == picks[i].id)
				twice = true;
		for (size_t s = 0; s < nseen && !twice; s++) {
			if (seen[s].name_id != picks[i].id)
				continue;
			if (one)
				twice = true;
			one = &seen[s];
		}
		if (twice || !one || (one->run_fd >= 0 && one->run_fd != picks[i].fd) ||
		    taken(picks, npicks, i, one->tid))
			continue;
		picks[i].tid = one->tid;
		picks[i].how = SCHED_HOW_NAME;
	}
	free(claim);
	free(was);
}

static void drop_thread(struct source_env *env, struct sched_vcpu *v)
{
	if (v->statfd >= 0) {
		close(v->statfd);
		v->statfd = -1;
		env->sched_fds--;
	}
	total_add(&v->base, &v->cur);
	v->cur = (struct kvmstats_sched_total){ 0 };
	v->tid = 0;
	v->how = SCHED_HOW_NONE;
	v->bad = false;
}

void sched_vm_free(struct sched_vm *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].statfd >= 0)
			close(s->v[i].statfd);
	free(s->v);
	free(s);
}

void sched_detach(struct source_env *env, struct host_vm *hv)
{
	struct sched_vm *s = hv->sched;

	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].statfd >= 0)
			env->sched_fds--;
	sched_vm_free(s);
	hv->sched = NULL;
}

int sched_listed(struct source_env *env, struct host_vm *hv,
		 const struct discover_proc *p)
{
	struct sched_vm *s = hv->sched;
	struct sched_vcpu *v;
	size_t n = 0, k = 0;

	if (env->no_sched)
		return 0;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->stale = true;
		hv->sched = s;
	}
	for (size_t i = 0; i < p->nfds; i++)
		n += p->fds[i].kind == DISCOVER_FD_VCPU;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	/* p->fds and s->v are both sorted by fd: merge. */
	n = 0;
	for (size_t i = 0; i < p->nfds; i++) {
		const struct discover_fd *f = &p->fds[i];

		if (f->kind != DISCOVER_FD_VCPU)
			continue;
		while (k < s->n && s->v[k].fd < f->fd)
			k++;
		if (k < s->n && s->v[k].fd == f->fd && s->v[k].id == f->vcpu) {
			v[n++] = s->v[k];
			s->v[k].statfd = -1;	/* moved */
			s->v[k].fd = -1;
			k++;
			continue;
		}
		v[n++] = (struct sched_vcpu){ .fd = f->fd, .id = f->vcpu, .statfd = -1 };
		s->stale = true;
	}
	/* vCPU fds closed (or renumbered): their counts stay in the VM's. */
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].fd < 0)
			continue;
		drop_thread(env, &s->v[i]);
		total_add(&s->gone, &s->v[i].base);
		s->stale = true;
	}
	free(s->v);
	s->v = v;
	s->n = n;
	return 0;
}

/* Reads a small /proc text file at dirfd/name; -ESRCH when it is gone. */
static ssize_t read_text(int dirfd, const char *name, char *buf, size_t size)
{
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = util_read_upto(fd, buf, size);
	close(fd);
	return n;
}

/* One thread of a VMM, as task/<tid>/ shows it. -ESRCH: it exited. */
static int look_thread(int taskdir, pid_t tid, struct sched_seen *ret)
{
	char name[32], buf[TEXT_MAX];
	struct sched_seen seen = { .tid = tid, .run_fd = -1, .name_id = -1 };
	ssize_t n;
	int r;

	snprintf(name, sizeof(name), "%d/syscall", (int)tid);
	n = read_text(taskdir, name, buf, sizeof(buf));
	if (n == -ESRCH)
		return -ESRCH;
	/* Garbled or refused (no ptrace right): no evidence from it. */
	if (n > 0 && sched_parse_syscall(buf, (size_t)n, &r) == 1)
		seen.run_fd = r;
	snprintf(name, sizeof(name), "%d/comm", (int)tid);
	n = read_text(taskdir, name, buf, sizeof(buf));
	if (n == -ESRCH)
		return -ESRCH;
	if (n > 0 && sched_parse_comm(buf, (size_t)n, &r) == 1)
		seen.name_id = r;
	*ret = seen;
	return 0;
}

/* Lists the VMM's threads. The caller frees *ret_seen. */
static int look_threads(const char *proc_root, pid_t pid,
			struct sched_seen **ret_seen, size_t *ret_n)
{
	char path[4096];
	struct sched_seen *seen = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;
	int r = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%d/task", proc_root, (int)pid) >= sizeof(path))
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((e = readdir(d))) {
		unsigned long tid;
		const char *end;

		if (!util_parse_ulong(e->d_name, '\0', 1, 0x7fffffffUL, &tid, &end))
			continue;
		if (n == cap) {
			size_t bigger = cap ? cap * 2 : 16;
			void *p = bigger > 65536 ? NULL : reallocarray(seen, bigger, sizeof(*seen));

			if (!p) {
				r = bigger > 65536 ? -E2BIG : -ENOMEM;
				break;
			}
			seen = p;
			cap = bigger;
		}
		if (look_thread(dirfd(d), (pid_t)tid, &seen[n]) == 0)
			n++;
	}
	closedir(d);
	if (r < 0) {
		free(seen);
		return r;
	}
	*ret_seen = seen;
	*ret_n = n;
	return 0;
}

/*
 * schedstat fds this host may hold: what RLIMIT_NOFILE leaves after the
 * stats fd budget (source_fd.c's room, which comes first), the pidfds and
 * a reserve; at most max_fds.
 */
static size_t sched_room(const struct source_env *env)
{
	size_t max = env->max_fds ? env->max_fds : SOURCE_FD_DEFAULT_MAX;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		size_t reserve = 64 + env->nvms + max;
		size_t spare = rl.rlim_cur > reserve ? (size_t)rl.rlim_cur - reserve : 0;

		if (spare < max)
			max = spare;
	}
	return max;
}

static int open_schedstat(const char *proc_root, pid_t pid, pid_t tid)
{
	char path[4096];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%d/task/%d/schedstat", proc_root,
			     (int)pid, (int)tid) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd;
}

static bool look_due(const struct host_vm *hv, const struct sched_vm *s, uint64_t now)
{
	if (s->stale || s->looked_at == 0 || hv->hints_changed)
		return true;
	if (now - s->looked_at < LOOK_EVERY_USEC)
		return false;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].how != SCHED_HOW_SYSCALL)
			return true;
	return false;
}

/*
 * Whether a source's thread hints can be used: its vCPUs are the VMM's
 * kvm-vcpu fds, id for id, once each (QEMU's cpu-index is KVM's id only
 * where its topology numbers them alike); else no hint at all.
 */
static bool hints_usable(const struct host_vm *hv, const struct sched_vm *s)
{
	if (hv->nhints != s->n)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		size_t found = 0;

		for (size_t j = 0; j < hv->nhints; j++)
			found += hv->hints[j].id == s->v[i].id;
		if (found != 1)
			return false;
	}
	return true;
}

/* The thread the (usable) hints say runs vCPU id; 0: none. */
static pid_t hint_of(const struct host_vm *hv, int id)
{
	for (size_t j = 0; j < hv->nhints; j++)
		if (hv->hints[j].id == id)
			return hv->hints[j].tid;
	return 0;
}

static void look_vm(struct source_env *env, const char *proc_root, struct host_vm *hv,
		    size_t room)
{
	struct sched_vm *s = hv->sched;
	struct sched_seen *seen = NULL;
	struct sched_pick *picks;
	size_t nseen = 0;
	bool hinted;

	if (look_threads(proc_root, hv->pub.pid, &seen, &nseen) < 0)
		return;		/* exited, or cannot tell: looked at next time */
	picks = calloc(s->n ? s->n : 1, sizeof(*picks));
	if (!picks) {
		free(seen);
		return;
	}
	hinted = hints_usable(hv, s);
	for (size_t i = 0; i < s->n; i++)
		picks[i] = (struct sched_pick){ s->v[i].fd, s->v[i].id, s->v[i].tid, s->v[i].how,
						hinted ? hint_of(hv, s->v[i].id) : 0 };
	sched_match(seen, nseen, picks, s->n);
	for (size_t i = 0; i < s->n; i++) {
		struct sched_vcpu *v = &s->v[i];

		if (picks[i].tid == v->tid) {
			v->how = picks[i].how;
			continue;
		}
		drop_thread(env, v);
		v->tid = picks[i].tid;
		v->how = picks[i].how;
	}
	/* Hold the schedstat of every thread known, as the room allows. */
	for (size_t i = 0; i < s->n; i++) {
		struct sched_vcpu *v = &s->v[i];
		int fd;

		if (v->tid == 0 || v->statfd >= 0 || env->sched_fds >= room)
			continue;
		fd = open_schedstat(proc_root, hv->pub.pid, v->tid);
		if (fd >= 0) {
			v->statfd = fd;
			env->sched_fds++;
		}
	}
	free(picks);
	free(seen);
	s->stale = false;
	hv->hints_changed = false;
	s->looked_at = source_now_usec();
}

void sched_off(struct source_env *env)
{
	for (size_t i = 0; i < env->nvms; i++) {
		struct host_vm *hv = env->vms[i];
		struct kvmstats_vm *vm = &hv->pub;

		sched_detach(env, hv);
		vm->sched_vcpus = (struct kvmstats_sched_total){ 0 };
		vm->other_run_ns = 0;
		vm->sched_known = 0;
		for (size_t j = 0; j < vm->nvcpus; j++) {
			vm->vcpus[j]->sched = (struct kvmstats_sched){ 0 };
			vm->vcpus[j]->sched_total = (struct kvmstats_sched_total){ 0 };
		}
	}
}

void sched_rescan(struct source_env *env, const char *proc_root)
{
	uint64_t now = source_now_usec();
	size_t room;

	if (env->no_sched) {
		sched_off(env);
		return;
	}
	room = sched_room(env);
	for (size_t i = 0; i < env->nvms; i++) {
		struct host_vm *hv = env->vms[i];

		if (hv->sched && hv->sched->n > 0 && look_due(hv, hv->sched, now))
			look_vm(env, proc_root, hv, room);
	}
}

/* One read of v's schedstat: held, or opened for it. */
static int read_vcpu(const char *proc_root, pid_t pid, const struct sched_vcpu *v,
		     struct kvmstats_sched_total *ret)
{
	char buf[TEXT_MAX];
	ssize_t n;
	int fd = v->statfd;

	if (fd < 0) {
		fd = open_schedstat(proc_root, pid, v->tid);
		if (fd < 0)
			return fd;
	}
	do {
		n = pread(fd, buf, sizeof(buf), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		n = errno == ENOENT ? -ESRCH : -errno;
	if (v->statfd < 0)
		close(fd);
	if (n < 0)
		return (int)n;
	return sched_parse_schedstat(buf, (size_t)n, ret);
}

static void sample_vm(struct source_env *env, const char *proc_root, struct host_vm *hv)
{
	struct sched_vm *s = hv->sched;
	struct kvmstats_vm *vm = &hv->pub;
	struct kvmstats_sched_total sum = s->gone;
	unsigned known = 0;
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct sched_vcpu *v = &s->v[i];
		struct kvmstats_sched_total now;
		int r;

		if (v->tid == 0)
			goto add;
		r = read_vcpu(proc_root, vm->pid, v, &now);
		if (r == -ESRCH) {
			drop_thread(env, v);	/* exited: replaced by the next rescan's */
			s->stale = true;
		} else if (r < 0) {
			v->bad = true;		/* this vCPU only; tried again next time */
		} else {
			/*
			 * Opened per read, a tid can have been reused by a
			 * new thread: its counters start again.
			 */
			if (now.run_ns < v->cur.run_ns || now.wait_ns < v->cur.wait_ns ||
			    now.timeslices < v->cur.timeslices)
				total_add(&v->base, &v->cur);
			v->cur = now;
			v->bad = false;
			known++;
		}
add:
		total_add(&sum, &v->base);
		total_add(&sum, &v->cur);
	}
	vm->sched_vcpus = sum;
	vm->sched_known = known;

	/* vm->vcpus and s->v: a vCPU id that only one kvm-vcpu fd has. */
	for (size_t j = 0; j < vm->nvcpus; j++) {
		struct kvmstats_vcpu *c = vm->vcpus[j];
		const struct sched_vcpu *one = NULL;

		for (k = 0; k < s->n; k++) {
			if (s->v[k].id != c->id)
				continue;
			one = one ? NULL : &s->v[k];
			if (!one)
				break;
		}
		if (!one) {
			c->sched = (struct kvmstats_sched){ 0 };
			continue;	/* its total stays: it never goes back */
		}
		if (one->tid != 0 && !one->bad)
			c->sched = (struct kvmstats_sched){ one->tid, one->cur.run_ns,
							    one->cur.wait_ns, one->cur.timeslices };
		else
			c->sched = (struct kvmstats_sched){ 0 };
		c->sched_total = one->base;
		total_add(&c->sched_total, &one->cur);
	}

	/* The other threads: the process's CPU clock less the vCPU threads'. */
	if (s->clock_state == 0) {
		int r = clock_getcpuclockid(vm->pid, &s->clock);

		s->clock_state = r == 0 ? 1 : -r;
	}
	if (s->clock_state == 1) {
		struct timespec ts;

		if (clock_gettime(s->clock, &ts) == 0) {
			uint64_t all = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
			uint64_t other = all > sum.run_ns ? all - sum.run_ns : 0;

			if (other > s->other)
				s->other = other;
		}
	}
	vm->other_run_ns = s->other;
}

void sched_sample(struct source_env *env, const char *proc_root)
{
	if (env->no_sched)
		return;
	for (size_t i = 0; i < env->nvms; i++)
		if (env->vms[i]->sched)
			sample_vm(env, proc_root, env->vms[i]);
}
