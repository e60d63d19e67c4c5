/* SPDX-License-Identifier: MIT */
/*
 * kvmstats_bench: the in-process half of `make bench` (bench/run is the
 * other half: it starts the VMs, the Netdata plugin and collectd, and prints
 * the table).
 *
 * For the VMs whose name starts with --prefix it measures, each a bench_median of
 * --samples repetitions, CPU time of this thread (CLOCK_THREAD_CPUTIME_ID)
 * and wall time (CLOCK_MONOTONIC):
 *
 *   core     host_sample() after one host_rescan(), held stats fds only;
 *   fdloop   statsfd_sample() of the same statsfds: host_sample() without
 *            its reap (one poll() over the VMMs' pidfds);
 *   bare     a loop that only pread()s the same fds, same offsets and
 *            lengths (schema->data_offset, data_len), into a buffer per fd:
 *            the floor any reader of these fds pays; bare2 the same into
 *            two buffers per fd taken in turn, as statsfd alternates cur
 *            and prev. The four take turns within a repetition, each
 *            repetition starting with the next, "cold" with a --gap-ms
 *            pause before each (a front end sleeps between samples) and
 *            "hot" back to back;
 *   reap     poll() over the VMMs' pidfds alone, as host_reap() does, and
 *            epoll_wait(0) on an epoll set of the same pidfds;
 *   debugfs  debugfs_open() of one VM's directory once, then
 *            debugfs_sample(): every stat file the kernel lets us read;
 *   qmp      qmp_query_stats() on --qmp (a QEMU >= 7.1), and on a QMP
 *            connection of our own the round trip of query-status and of
 *            query-stats per target, with the CPU time QEMU's main thread
 *            (tid == pid) spent meanwhile (/proc/PID/task/PID/schedstat);
 *   rescan   host_rescan() on an unchanged host, first as it is, then with
 *            --extra-procs more processes (/bin/sleep children, started
 *            and killed by pid here): the periodic rescan (uevents and fd
 *            counts), then the full walk of /proc it falls back to.
 *
 * With --syscount K it only rescans once and samples K times between two
 * getppid() calls, markers for strace (bench/run counts what lies between).
 *
 * With --loop N it only runs the bare reads the way a front end runs at
 * update_every 1, N times, one pass every --loop-period-ms (1000): "stats"
 * pread()s every stats fd (as bare above), "stats_sched" does the same and
 * also pread()s /proc/PID/task/TID/schedstat of every vCPU thread (kept
 * open; the threads the bench's testvm names "CPU N/KVM"), the reads a
 * front end that charts vCPU run and wait makes. The two take turns half a
 * period apart; mean and median CPU time per pass are printed (bench/run
 * puts them beside the Netdata plugin's CPU as % of a core).
 *
 * bench_util.c holds the clocks and medians, bench_qmp.c the QMP half.
 *
 * Output: one JSON object per line on stdout. Exit status 0, 1 on error
 * (a message on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "acquire.h"
#include "debugfs.h"
#include "kvmstats.h"

#define DEFAULT_SAMPLES 50
#define DEFAULT_RESCANS 20
#define MAX_EXTRA_PROCS 10000

struct options {
	const char *prefix;
	unsigned samples;
	unsigned rescans;
	unsigned gap_ms;		/* pause between repetitions */
	unsigned extra_procs;
	unsigned syscount;		/* samples in syscount mode */
	bool syscount_mode;
	unsigned loop;			/* passes in loop mode, 0: not */
	unsigned loop_period_ms;
	const char *debugfs;		/* NULL: skip */
	const char *qmp;		/* NULL: skip */
	long expect_vms, expect_vcpus;	/* -1: no check */
};

/*
 * What bare reads: the same fds as the core, with a buffer each, or two
 * taken in turn (bare2), as statsfd_sample() alternates cur and prev.
 */
struct bare {
	size_t n;
	int *fd;
	uint32_t *off, *len;
	uint64_t **buf;
	uint64_t **buf2;
	unsigned turn;
};

/* ---------------------------------------------------------------- host */

static bool want_prefix(const struct discover_proc *p, void *ctx)
{
	const char *prefix = ctx;

	return strncmp(discover_proc_name(p), prefix, strlen(prefix)) == 0;
}

/* A host of the bench's VMs after its first rescan (a walk of /proc). */
static int new_host(const struct options *o, struct kvmstats_host **ret_host)
{
	static const struct kvmstats_hooks hooks = { .want = want_prefix };
	struct kvmstats_host *host;
	int r;

	r = host_new("/proc", false, &hooks, (void *)o->prefix, &host);
	if (r < 0)
		return r;
	r = host_rescan(host, NULL);
	if (r < 0) {
		host_free(host);
		return r;
	}
	*ret_host = host;
	return 0;
}

static void count_host(struct kvmstats_host *host, size_t *ret_vcpus, size_t *ret_fds)
{
	size_t vcpus = 0, fds = 0;

	for (size_t i = 0; i < host_nvms(host); i++) {
		const struct kvmstats_vm *vm = host_vm(host, i);

		vcpus += vm->nvcpus;
		fds += vm->vm_source == FROM_FD;
		for (size_t j = 0; j < vm->nvcpus; j++)
			fds += vm->vcpus[j]->source == FROM_FD;
	}
	*ret_vcpus = vcpus;
	*ret_fds = fds;
}

static void bare_free(struct bare *b)
{
	for (size_t i = 0; b->buf && i < b->n; i++) {
		free(b->buf[i]);
		free(b->buf2[i]);
	}
	free(b->buf);
	free(b->buf2);
	free(b->fd);
	free(b->off);
	free(b->len);
}

static int bare_add(struct bare *b, const struct statsfd *s)
{
	size_t i = b->n++;

	b->fd[i] = s->fd;
	b->off[i] = s->schema->data_offset;
	b->len[i] = s->schema->data_len;
	b->buf[i] = malloc(s->schema->data_len ? s->schema->data_len : 8);
	b->buf2[i] = malloc(s->schema->data_len ? s->schema->data_len : 8);
	return b->buf[i] && b->buf2[i] ? 0 : -ENOMEM;
}

/* The fds host_sample() reads, in the order it reads them. */
static int bare_init(struct kvmstats_host *host, size_t nfds, struct bare *b)
{
	int r = 0;

	*b = (struct bare){ 0 };
	b->fd = calloc(nfds + 1, sizeof(*b->fd));
	b->off = calloc(nfds + 1, sizeof(*b->off));
	b->len = calloc(nfds + 1, sizeof(*b->len));
	b->buf = calloc(nfds + 1, sizeof(*b->buf));
	b->buf2 = calloc(nfds + 1, sizeof(*b->buf2));
	if (!b->fd || !b->off || !b->len || !b->buf || !b->buf2)
		return -ENOMEM;
	for (size_t i = 0; r >= 0 && i < host_nvms(host); i++) {
		const struct kvmstats_vm *vm = host_vm(host, i);

		if (vm->vm_source == FROM_FD)
			r = bare_add(b, vm->vm_stats);
		for (size_t j = 0; r >= 0 && j < vm->nvcpus; j++)
			if (vm->vcpus[j]->source == FROM_FD)
				r = bare_add(b, vm->vcpus[j]->stats);
	}
	return r;
}

/* The limit: only the preads, each checked for a full block. */
static int bare_sample(const struct bare *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (pread(b->fd[i], b->buf[i], b->len[i], b->off[i]) != (ssize_t)b->len[i])
			return -EIO;
	return 0;
}

/* The same into two buffers per fd taken in turn: statsfd's footprint. */
static int bare2_sample(struct bare *b)
{
	uint64_t **dst = b->turn++ % 2 ? b->buf2 : b->buf;

	for (size_t i = 0; i < b->n; i++)
		if (pread(b->fd[i], dst[i], b->len[i], b->off[i]) != (ssize_t)b->len[i])
			return -EIO;
	return 0;
}

/* host_sample()'s loop without its reap and other sources: statsfd_sample(). */
static int fd_loop(struct kvmstats_host *host)
{
	int r = 0;

	for (size_t i = 0; i < host_nvms(host); i++) {
		struct kvmstats_vm *vm = host_vm(host, i);

		if (vm->vm_source == FROM_FD && vm->vm_stats)
			r |= statsfd_sample(vm->vm_stats);
		for (size_t j = 0; j < vm->nvcpus; j++)
			if (vm->vcpus[j]->source == FROM_FD)
				r |= statsfd_sample(vm->vcpus[j]->stats);
	}
	return r < 0 ? -EIO : 0;
}

enum variant { V_CORE, V_FDLOOP, V_BARE2, V_BARE, NVARIANTS };
static const char *const variant_name[NVARIANTS] = { "core", "fdloop", "bare2", "bare" };

static int run_variant(enum variant v, struct kvmstats_host *host, struct bare *b)
{
	int r;

	switch (v) {
	case V_CORE:
		r = host_sample(host);
		return r < 0 ? r : 0;
	case V_FDLOOP:
		return fd_loop(host);
	case V_BARE2:
		return bare2_sample(b);
	default:
		return bare_sample(b);
	}
}

/*
 * core, fdloop, bare2 and bare in turn, each repetition starting with the next one
 * so that none always runs first on caches the others warmed. gap_ms > 0
 * ("cold"): a pause before each repetition, as a front end sleeps between
 * samples; 0 ("hot"): back to back.
 */
static int measure_core(struct kvmstats_host *host, unsigned gap_ms, const char *label,
			const struct options *o)
{
	size_t n = o->samples, vcpus, nfds, nvms = host_nvms(host);
	struct cost *c[NVARIANTS] = { 0 };
	const struct kvmstats_schema *schema = NULL;
	struct bare b = { 0 };
	int r = 0;

	count_host(host, &vcpus, &nfds);
	for (int v = 0; v < NVARIANTS; v++)
		if (!(c[v] = calloc(n, sizeof(*c[v]))))
			r = -ENOMEM;
	if (r >= 0)
		r = bare_init(host, nfds, &b);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < host_nvms(host) && !schema; i++)
		if (host_vm(host, i)->nvcpus)
			schema = host_vm(host, i)->vcpus[0]->stats->schema;

	for (size_t i = 0; i < WARMUP + n; i++) {
		for (int k = 0; k < NVARIANTS; k++) {
			enum variant v = (enum variant)((i + (size_t)k) % NVARIANTS);
			struct cost t;

			bench_pause_ms(gap_ms);
			t = bench_cost_now();
			r = run_variant(v, host, &b);
			t = bench_cost_since(t);
			if (r < 0)
				goto out;
			if (i >= WARMUP)
				c[v][i - WARMUP] = t;
		}
		if (host_nvms(host) != nvms) {
			r = -ESRCH;	/* a VM went away during the run */
			goto out;
		}
	}
	printf("{\"kind\": \"core\", \"label\": \"%s\", \"gap_ms\": %u, \"vms\": %zu, "
	       "\"vcpus\": %zu, \"fds\": %zu, \"bytes_per_vcpu\": %u, \"stats_per_vcpu\": %u",
	       label, gap_ms, host_nvms(host), vcpus, nfds, schema ? schema->data_len : 0,
	       schema ? schema->num_desc : 0);
	for (int v = 0; v < NVARIANTS; v++) {
		printf(", ");
		bench_print_costs(variant_name[v], c[v], n);
	}
	printf("}\n");
	r = 0;
out:
	bare_free(&b);
	for (int v = 0; v < NVARIANTS; v++)
		free(c[v]);
	return r;
}

/* ----------------------------------------------------- bare loops at 1 Hz */

/* schedstat of every vCPU thread of the host's VMs, kept open. */
struct sched_files {
	size_t n, cap;
	int *fd;
};

static void sched_files_free(struct sched_files *s)
{
	for (size_t i = 0; i < s->n; i++)
		close(s->fd[i]);
	free(s->fd);
}

/* Is thread tid of pid a vCPU thread (QEMU's name "CPU N/KVM", testvm's too)? */
static bool vcpu_thread(pid_t pid, const char *tid)
{
	char path[PATH_MAX], comm[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = '\0';
	return strncmp(comm, "CPU ", 4) == 0 && strstr(comm, "/KVM\n") != NULL;
}

static int sched_open(struct kvmstats_host *host, struct sched_files *s)
{
	*s = (struct sched_files){ 0 };
	for (size_t i = 0; i < host_nvms(host); i++) {
		pid_t pid = host_vm(host, i)->pid;
		char path[PATH_MAX];
		struct dirent *d;
		DIR *dir;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		dir = opendir(path);
		if (!dir)
			return -errno;
		while ((d = readdir(dir))) {
			int fd;

			if (d->d_name[0] < '0' || d->d_name[0] > '9' || !vcpu_thread(pid, d->d_name))
				continue;
			if (s->n == s->cap) {
				size_t cap = s->cap ? 2 * s->cap : 64;
				int *p = realloc(s->fd, cap * sizeof(*p));

				if (!p) {
					closedir(dir);
					return -ENOMEM;
				}
				s->fd = p;
				s->cap = cap;
			}
			snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid,
				 d->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				s->fd[s->n++] = fd;
		}
		closedir(dir);
	}
	return 0;
}

static int sched_read(const struct sched_files *s)
{
	char buf[128];

	for (size_t i = 0; i < s->n; i++)
		if (pread(s->fd[i], buf, sizeof(buf), 0) <= 0)
			return -EIO;
	return 0;
}

static uint64_t mean_cpu(const struct cost *c, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += c[i].cpu_ns;
	return n ? sum / n : 0;
}

static int measure_loops(struct kvmstats_host *host, const struct options *o)
{
	size_t n = o->loop, vcpus, nfds;
	struct cost *a = calloc(n, sizeof(*a)), *b = calloc(n, sizeof(*b));
	struct sched_files sf = { 0 };
	struct bare bare = { 0 };
	unsigned half = o->loop_period_ms / 2;
	int r = a && b ? 0 : -ENOMEM;

	count_host(host, &vcpus, &nfds);
	if (r >= 0)
		r = bare_init(host, nfds, &bare);
	if (r >= 0)
		r = sched_open(host, &sf);
	for (size_t i = 0; r >= 0 && i < 1 + n; i++) {	/* one pass of warm-up */
		struct cost t;

		bench_pause_ms(half);
		t = bench_cost_now();
		r = bare_sample(&bare);
		t = bench_cost_since(t);
		if (r < 0)
			break;
		if (i)
			a[i - 1] = t;
		bench_pause_ms(o->loop_period_ms - half);
		t = bench_cost_now();
		r = bare_sample(&bare);
		if (r >= 0)
			r = sched_read(&sf);
		t = bench_cost_since(t);
		if (i)
			b[i - 1] = t;
	}
	if (r >= 0) {
		printf("{\"kind\": \"loop\", \"period_ms\": %u, \"vms\": %zu, \"vcpus\": %zu, "
		       "\"fds\": %zu, \"sched_files\": %zu, \"stats_cpu_mean_ns\": %" PRIu64
		       ", \"stats_sched_cpu_mean_ns\": %" PRIu64 ", ",
		       o->loop_period_ms, host_nvms(host), vcpus, nfds, sf.n, mean_cpu(a, n),
		       mean_cpu(b, n));
		bench_print_costs("stats", a, n);
		printf(", ");
		bench_print_costs("stats_sched", b, n);
		printf("}\n");
	}
	sched_files_free(&sf);
	bare_free(&bare);
	free(a);
	free(b);
	return r;
}

/* ----------------------------------------------------------------- reap */

/*
 * What host_sample() pays before its first pread: host_reap()'s poll() over
 * every VMM's pidfd. Measured alone, and against epoll_wait(0) on an epoll
 * set holding the same pidfds (what an O(1) reap would cost).
 */
static int measure_reap(struct kvmstats_host *host, const struct options *o)
{
	size_t n = o->samples, nvms = host_nvms(host);
	struct pollfd *pfds = calloc(nvms + 1, sizeof(*pfds));
	struct epoll_event *ev = calloc(nvms + 1, sizeof(*ev));
	struct cost *c_poll = calloc(n, sizeof(*c_poll));
	struct cost *c_epoll = calloc(n, sizeof(*c_epoll));
	int ep = -1, r = 0;

	if (!pfds || !ev || !c_poll || !c_epoll) {
		r = -ENOMEM;
		goto out;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		r = -errno;
		goto out;
	}
	for (size_t i = 0; i < nvms; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = i };

		pfds[i] = (struct pollfd){ .fd = host_vm(host, i)->pidfd, .events = POLLIN };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, pfds[i].fd, &e) < 0) {
			r = -errno;
			goto out;
		}
	}
	for (size_t i = 0; i < WARMUP + n; i++) {
		struct cost t, tp, te;
		int a, b;

		bench_pause_ms(o->gap_ms / 2);
		t = bench_cost_now();
		a = poll(pfds, nvms, 0);
		tp = bench_cost_since(t);
		t = bench_cost_now();
		b = epoll_wait(ep, ev, (int)nvms + 1, 0);
		te = bench_cost_since(t);
		if (a != 0 || b != 0) {
			r = a < 0 || b < 0 ? -errno : -ESRCH;
			goto out;
		}
		if (i >= WARMUP) {
			c_poll[i - WARMUP] = tp;
			c_epoll[i - WARMUP] = te;
		}
	}
	printf("{\"kind\": \"reap\", \"pidfds\": %zu, ", nvms);
	bench_print_costs("poll", c_poll, n);
	printf(", ");
	bench_print_costs("epoll", c_epoll, n);
	printf("}\n");
out:
	if (ep >= 0)
		close(ep);
	free(pfds);
	free(ev);
	free(c_poll);
	free(c_epoll);
	return r;
}

/* -------------------------------------------------------------- debugfs */

static int measure_debugfs(struct kvmstats_host *host, const struct options *o)
{
	const struct kvmstats_schema *const *known = NULL;
	struct statsfd_cache *cache = NULL;
	struct statsfd *probe = NULL;
	struct debugfs_vm *dvm = NULL;
	const struct kvmstats_schema *s;
	const struct kvmstats_vm *vm = NULL;
	struct cost *c = NULL;
	uint64_t *values = NULL;
	unsigned denied = 0;
	size_t nknown = 0;
	int r, fd;

	for (size_t i = 0; i < host_nvms(host) && !vm; i++)
		if (host_vm(host, i)->vm_fd >= 0 && host_vm(host, i)->nvcpus > 0)
			vm = host_vm(host, i);
	if (!vm)
		return -ENOENT;
	/* The binary schema types the files, as the core does. */
	r = statsfd_cache_new(&cache);
	if (r < 0)
		return r;
	fd = fcntl(vm->vcpus[0]->stats->fd, F_DUPFD_CLOEXEC, 0);
	r = fd < 0 ? -errno : statsfd_open(fd, cache, &probe);
	if (r < 0)
		goto out;
	nknown = statsfd_cache_schemas(cache, &known);

	r = debugfs_open(o->debugfs, vm->pid, vm->vm_fd, known, nknown, NULL, NULL,
			 &dvm, &denied);
	if (r < 0)
		goto out;
	s = debugfs_schema(dvm);
	c = calloc(o->samples, sizeof(*c));
	values = calloc(s->num_values + 1, sizeof(*values));
	if (!c || !values) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < WARMUP + o->samples; i++) {
		struct cost t;

		bench_pause_ms(o->gap_ms);
		t = bench_cost_now();
		r = debugfs_sample(dvm, values);
		if (r < 0)
			goto out;
		if (i >= WARMUP)
			c[i - WARMUP] = bench_cost_since(t);
	}
	printf("{\"kind\": \"debugfs\", \"pid\": %d, \"vm_fd\": %d, \"vcpus\": %zu, "
	       "\"files_read\": %u, \"files_denied\": %u, \"names\": [",
	       (int)vm->pid, vm->vm_fd, vm->nvcpus, s->num_desc, denied);
	for (uint32_t i = 0; i < s->num_desc; i++)
		printf("%s\"%s\"", i ? ", " : "", s->desc[i].name);
	printf("], ");
	bench_print_costs("sample", c, o->samples);
	printf("}\n");
	r = 0;
out:
	free(values);
	free(c);
	debugfs_close(dvm);
	statsfd_close(probe);
	statsfd_cache_free(cache);
	return r;
}

/* --------------------------------------------------------------- rescan */

static int rescan_series(struct kvmstats_host *host, unsigned n, const char *label,
			 size_t expect_vms)
{
	struct cost *c = calloc(n, sizeof(*c));
	struct kvmstats_scan_report rep = { 0 };
	int r = 0;

	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < WARMUP + n; i++) {
		struct cost t = bench_cost_now();

		r = host_rescan(host, &rep);
		t = bench_cost_since(t);
		if (r < 0)
			goto out;
		if ((size_t)r != expect_vms) {
			r = -ESTALE;	/* the host changed: not what we measure */
			goto out;
		}
		if (i >= WARMUP)
			c[i - WARMUP] = t;
	}
	printf("{\"kind\": \"rescan\", \"label\": \"%s\", \"scanned\": %u, \"walked\": %s, "
	       "\"vms\": %d, ", label, rep.discover.scanned, rep.walked ? "true" : "false", r);
	bench_print_costs("rescan", c, n);
	printf("}\n");
	r = 0;
out:
	free(c);
	return r;
}

/* Starts n "sleep 3600" children; they die with us (PR_SET_PDEATHSIG). */
static int spawn_sleepers(pid_t *pids, unsigned n, unsigned *ret_started)
{
	pid_t self = getpid();
	unsigned i;

	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			break;
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != self)
				_exit(1);
			execl("/bin/sleep", "sleep", "3600", (char *)NULL);
			_exit(127);
		}
		pids[i] = pid;
	}
	*ret_started = i;
	return i == n ? 0 : -errno;
}

static void stop_sleepers(const pid_t *pids, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		kill(pids[i], SIGTERM);
	for (unsigned i = 0; i < n; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
}

/*
 * What a front end's periodic rescan costs (it looks where KVM's uevents
 * and fd counts point), then the walk of /proc it falls back to once a
 * minute and wherever uevents cannot be had: each as the host is, and with
 * --extra-procs more processes.
 */
static int rescan_both(struct kvmstats_host *host, const struct options *o,
		       const char *suffix)
{
	struct kvmstats_sources walk_always = { .no_events = true };
	char label[64];
	int r;

	r = rescan_series(host, o->rescans, suffix, host_nvms(host));
	if (r < 0)
		return r;
	r = host_set_sources(host, &walk_always);
	if (r < 0)
		return r;
	snprintf(label, sizeof(label), "walk_%s", suffix);
	return rescan_series(host, o->rescans, label, host_nvms(host));
}

static int measure_rescan(const struct options *o)
{
	struct kvmstats_host *host = NULL;
	pid_t *pids = NULL;
	unsigned started = 0;
	int r;

	/* A host of its own: the walks switch its uevents off for good. */
	r = new_host(o, &host);
	if (r >= 0)
		r = rescan_both(host, o, "host");
	host_free(host);
	host = NULL;
	if (r < 0 || o->extra_procs == 0)
		return r;
	pids = calloc(o->extra_procs, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	r = spawn_sleepers(pids, o->extra_procs, &started);
	if (r >= 0) {
		/* Each child must have exec'd: a forked copy is not "ordinary". */
		bench_pause_ms(1000);
		r = new_host(o, &host);
	}
	if (r >= 0)
		r = rescan_both(host, o, "extra_procs");
	host_free(host);
	stop_sleepers(pids, started);
	free(pids);
	return r;
}

/* ----------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fputs("usage: kvmstats_bench --prefix NAME [--samples N] [--rescans N]\n"
	      "         [--gap-ms MS] [--extra-procs N] [--debugfs DIR] [--qmp SOCKET]\n"
	      "         [--expect-vms N] [--expect-vcpus N] [--syscount K]\n"
	      "         [--loop N [--loop-period-ms MS]]\n", f);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "prefix", required_argument, NULL, 'p' },
		{ "samples", required_argument, NULL, 's' },
		{ "rescans", required_argument, NULL, 'r' },
		{ "gap-ms", required_argument, NULL, 'g' },
		{ "extra-procs", required_argument, NULL, 'x' },
		{ "debugfs", required_argument, NULL, 'd' },
		{ "qmp", required_argument, NULL, 'q' },
		{ "expect-vms", required_argument, NULL, 'V' },
		{ "expect-vcpus", required_argument, NULL, 'C' },
		{ "syscount", required_argument, NULL, 'S' },
		{ "loop", required_argument, NULL, 'L' },
		{ "loop-period-ms", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned long v;
	int c;

	*o = (struct options){ .samples = DEFAULT_SAMPLES, .rescans = DEFAULT_RESCANS,
			       .expect_vms = -1, .expect_vcpus = -1,
			       .loop_period_ms = 1000 };
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == '?')
			return -EINVAL;
		switch (c) {
		case 'p':
			o->prefix = optarg;
			continue;
		case 'd':
			o->debugfs = *optarg ? optarg : NULL;
			continue;
		case 'q':
			o->qmp = *optarg ? optarg : NULL;
			continue;
		}
		if (parse_uint(optarg, c == 'x' ? MAX_EXTRA_PROCS : 1000000, &v) < 0) {
			fprintf(stderr, "kvmstats_bench: bad number '%s'\n", optarg);
			return -EINVAL;
		}
		switch (c) {
		case 's': o->samples = (unsigned)v; break;
		case 'r': o->rescans = (unsigned)v; break;
		case 'g': o->gap_ms = (unsigned)v; break;
		case 'x': o->extra_procs = (unsigned)v; break;
		case 'V': o->expect_vms = (long)v; break;
		case 'C': o->expect_vcpus = (long)v; break;
		case 'S': o->syscount = (unsigned)v; o->syscount_mode = true; break;
		case 'L': o->loop = (unsigned)v; break;
		case 'P': o->loop_period_ms = (unsigned)v; break;
		}
	}
	if (!o->prefix || optind != argc || o->samples == 0 || o->rescans == 0)
		return -EINVAL;
	return 0;
}

static int fail(const char *what, int r)
{
	fprintf(stderr, "kvmstats_bench: %s: %s\n", what, strerror(-r));
	return 1;
}

int main(int argc, char **argv)
{
	struct kvmstats_host *host = NULL;
	struct options o;
	size_t vcpus, nfds;
	int r, status = 1;

	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	acquire_raise_nofile();
	r = new_host(&o, &host);
	if (r < 0)
		return fail("host", r);
	count_host(host, &vcpus, &nfds);
	if ((o.expect_vms >= 0 && (long)host_nvms(host) != o.expect_vms) ||
	    (o.expect_vcpus >= 0 && (long)vcpus != o.expect_vcpus)) {
		fprintf(stderr, "kvmstats_bench: found %zu VMs, %zu vCPUs named %s*; "
			"expected %ld, %ld\n", host_nvms(host), vcpus, o.prefix,
			o.expect_vms, o.expect_vcpus);
		goto out;
	}
	if (o.loop) {
		r = measure_loops(host, &o);
		status = r < 0 ? fail("loop", r) : 0;
		goto out;
	}
	if (o.syscount_mode) {
		getppid();	/* strace marker: the samples start */
		for (unsigned i = 0; i < o.syscount; i++)
			host_sample(host);
		getppid();	/* and end */
		status = 0;
		goto out;
	}
	r = measure_core(host, o.gap_ms, "cold", &o);
	if (r >= 0)
		r = measure_core(host, 0, "hot", &o);
	if (r < 0) {
		status = fail("core", r);
		goto out;
	}
	r = measure_reap(host, &o);
	if (r < 0) {
		status = fail("reap", r);
		goto out;
	}
	if (o.debugfs && (r = measure_debugfs(host, &o)) < 0)
		printf("{\"kind\": \"debugfs\", \"error\": \"%s\"}\n", strerror(-r));
	if (o.qmp && (r = bench_measure_qmp(o.qmp, o.samples, o.gap_ms)) < 0)
		printf("{\"kind\": \"qmp\", \"error\": \"%s\"}\n", strerror(-r));
	fflush(stdout);
	r = measure_rescan(&o);
	if (r < 0) {
		status = fail("rescan", r);
		goto out;
	}
	status = 0;
out:
	fflush(stdout);
	host_free(host);
	return status;
}
