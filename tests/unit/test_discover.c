/* SPDX-License-Identifier: MIT */
/*
 * test_discover.c: unit tests of discover.c on a fake proc tree.
 *
 * Each test builds PID/stat, PID/cmdline and PID/fd/N under a mkdtemp()
 * directory in the formats the kernel uses: a 52-field stat line (proc(5))
 * with the comm in parentheses, a NUL-separated cmdline, and fd symlinks
 * reading "anon_inode:kvm-vm", "anon_inode:kvm-vcpu:N", ... as
 * fs/anon_inodes.c prints KVM's anon inodes. The tree is removed with
 * nftw(). Two tests use the real /proc: one without a VM, and one that
 * makes a VM with /dev/kvm (SKIP where there is none).
 *
 * A process that exits, or whose pid is reused, at an exact step of the
 * walk is staged with a PID/stat that is a FIFO: a thread answers each
 * read of it and changes the tree while the reader waits (stat_feed).
 * Another thread adds and removes whole processes while scans run.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/kvm.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "cmdline.h"
#include "discover.h"
#include "tree.h"

/* The uid and gid of nobody, to which a child drops to meet EACCES. */
#define NOBODY 65534

/* What a scan callback saw. */
#define SEEN_MAX 4096
/* The VMMs a scan reported: all counted in n, the first SEEN_MAX kept. */
struct seen {
	pid_t pids[SEEN_MAX];
	size_t nfds[SEEN_MAX];
	size_t n;
	int fail_with;		/* returned from the first call when < 0 */
};

static int setup(void **state)
{
	return tree_setup(state, "proc");
}

/* PID/stat holding text as it is. */
static void add_stat_text(const struct tree *t, pid_t pid, const char *text)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%d/stat", (int)pid);
	tree_write(path, text, strlen(text));
}

/* A PID/stat line as the kernel prints it, field 22 = starttime. */
static void format_stat(char *line, size_t size, pid_t pid, const char *comm,
			unsigned long long starttime)
{
	int n;

	n = snprintf(line, size,
		     "%d (%s) S 1 %d %d 0 -1 4194560 51234 0 12 0 1520 733 "
		     "0 0 20 0 7 0 %llu 4631375872 265423 "
		     "18446744073709551615 1 1 0 0 0 0 268444224 4096 17987 "
		     "0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		     (int)pid, comm, (int)pid, (int)pid, starttime);
	assert_true(n > 0 && (size_t)n < size);
}

/* PID/stat as the kernel prints it, field 22 = starttime. */
static void add_stat(const struct tree *t, pid_t pid, const char *comm,
		     unsigned long long starttime)
{
	char line[1024];

	format_stat(line, sizeof(line), pid, comm, starttime);
	add_stat_text(t, pid, line);
}

static void add_cmdline(const struct tree *t, pid_t pid, const char *data,
			size_t len)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%d/cmdline", (int)pid);
	tree_write(path, data, len);
}

static void add_fd(const struct tree *t, pid_t pid, int fd, const char *target)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%d/fd/%d", (int)pid, fd);
	assert_int_equal(symlink(target, path), 0);
}

static void add_dir(const struct tree *t, const char *rel)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%s", rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* PID/, PID/fd/ and PID/stat, no cmdline. */
static void add_proc(const struct tree *t, pid_t pid, const char *comm,
		     unsigned long long starttime)
{
	char rel[32];

	snprintf(rel, sizeof(rel), "%d", (int)pid);
	add_dir(t, rel);
	snprintf(rel, sizeof(rel), "%d/fd", (int)pid);
	add_dir(t, rel);
	add_stat(t, pid, comm, starttime);
}

#define CMD(s) s, sizeof(s) - 1

/* A VMM like QEMU 8.x with 4 vCPUs, fds in no order and past 9 and 99. */
static void add_qemu(const struct tree *t, pid_t pid)
{
	static const char cmdline[] =
		"/usr/bin/qemu-system-x86_64\0-name\0"
		"guest=web1,debug-threads=on\0-S\0"
		"-uuid\0c0ffee00-1234-4abc-8def-0123456789ab\0"
		"-smp\0" "4\0-m\0" "1024\0";
	char link[64];
	int i;

	add_proc(t, pid, "qemu-system-x86", 987654);
	add_cmdline(t, pid, cmdline, sizeof(cmdline) - 1);
	add_fd(t, pid, 0, "/dev/null");
	add_fd(t, pid, 1, "pipe:[52001]");
	add_fd(t, pid, 3, "socket:[123]");
	add_fd(t, pid, 11, "/dev/kvm");
	add_fd(t, pid, 12, "anon_inode:kvm-vm");
	add_fd(t, pid, 100, "anon_inode:kvm-vm-stats");
	for (i = 0; i < 4; i++) {
		snprintf(link, sizeof(link), "anon_inode:kvm-vcpu:%d", i);
		add_fd(t, pid, 20 + 2 * i, link);
		snprintf(link, sizeof(link), "anon_inode:kvm-vcpu-stats:%d", i);
		add_fd(t, pid, 21 + 2 * i, link);
	}
	add_fd(t, pid, 9, "anon_inode:[eventfd]");
}

/* A process without KVM fds, but with /dev/kvm open. */
static void add_other(const struct tree *t, pid_t pid)
{
	add_proc(t, pid, "bash", 5000);
	add_cmdline(t, pid, CMD("-bash\0"));
	add_fd(t, pid, 0, "/dev/pts/0");
	add_fd(t, pid, 3, "socket:[123]");
	add_fd(t, pid, 4, "/dev/kvm");
	add_fd(t, pid, 5, "anon_inode:[eventfd]");
}

static int record(const struct discover_proc *p, void *ctx)
{
	struct seen *s = ctx;

	/* The real /proc of a busy host may hold more VMMs than are kept. */
	if (s->n < SEEN_MAX) {
		s->pids[s->n] = p->pid;
		s->nfds[s->n] = p->nfds;
	}
	s->n++;
	return s->fail_with;
}

static bool seen_pid(const struct seen *s, pid_t pid, size_t *ret_nfds)
{
	size_t i;

	for (i = 0; i < s->n && i < SEEN_MAX; i++) {
		if (s->pids[i] == pid) {
			if (ret_nfds)
				*ret_nfds = s->nfds[i];
			return true;
		}
	}
	return false;
}

static void test_qemu_like(void **state)
{
	static const struct discover_fd want[] = {
		{ 12, DISCOVER_FD_VM, -1 },
		{ 20, DISCOVER_FD_VCPU, 0 },
		{ 21, DISCOVER_FD_VCPU_STATS, 0 },
		{ 22, DISCOVER_FD_VCPU, 1 },
		{ 23, DISCOVER_FD_VCPU_STATS, 1 },
		{ 24, DISCOVER_FD_VCPU, 2 },
		{ 25, DISCOVER_FD_VCPU_STATS, 2 },
		{ 26, DISCOVER_FD_VCPU, 3 },
		{ 27, DISCOVER_FD_VCPU_STATS, 3 },
		{ 100, DISCOVER_FD_VM_STATS, -1 },
	};
	struct tree *t = *state;
	struct discover_proc *p = NULL;
	size_t i;

	add_qemu(t, 4242);
	assert_int_equal(discover_process(t->root, 4242, &p), 1);
	assert_non_null(p);
	assert_int_equal(p->pid, 4242);
	assert_int_equal(p->starttime, 987654);
	assert_string_equal(p->comm, "qemu-system-x86");
	assert_string_equal(p->name, "web1");
	assert_string_equal(p->uuid, "c0ffee00-1234-4abc-8def-0123456789ab");
	assert_int_equal(p->nfds, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < p->nfds; i++) {
		assert_int_equal(p->fds[i].fd, want[i].fd);
		assert_int_equal(p->fds[i].kind, want[i].kind);
		assert_int_equal(p->fds[i].vcpu, want[i].vcpu);
	}
	discover_proc_free(p);
}

static void test_non_vmm(void **state)
{
	struct tree *t = *state;
	struct discover_proc *p = (struct discover_proc *)0x1;
	struct discover_stats stats;
	struct seen seen = { 0 };

	add_other(t, 77);
	assert_int_equal(discover_process(t->root, 77, &p), 0);
	assert_ptr_equal(p, (struct discover_proc *)0x1);	/* untouched */

	assert_int_equal(discover_scan(t->root, record, &seen, &stats), 0);
	assert_int_equal(seen.n, 0);
	assert_int_equal(stats.scanned, 1);
	assert_int_equal(stats.vanished, 0);
	assert_int_equal(stats.denied, 0);
}

static void test_two_vm_fds(void **state)
{
	struct tree *t = *state;
	struct discover_proc *p = NULL;

	add_proc(t, 300, "two-vms", 42);
	add_cmdline(t, 300, CMD("./two-vms\0"));
	add_fd(t, 300, 5, "anon_inode:kvm-vm");
	add_fd(t, 300, 4, "anon_inode:kvm-vm");
	add_fd(t, 300, 6, "anon_inode:kvm-vcpu:0");
	add_fd(t, 300, 7, "anon_inode:kvm-vcpu:0");
	assert_int_equal(discover_process(t->root, 300, &p), 1);
	assert_int_equal(p->nfds, 4);
	assert_int_equal(p->fds[0].fd, 4);
	assert_int_equal(p->fds[0].kind, DISCOVER_FD_VM);
	assert_int_equal(p->fds[1].fd, 5);
	assert_int_equal(p->fds[1].kind, DISCOVER_FD_VM);
	assert_int_equal(p->fds[2].kind, DISCOVER_FD_VCPU);
	assert_int_equal(p->fds[3].kind, DISCOVER_FD_VCPU);
	assert_null(p->name);
	assert_null(p->uuid);
	discover_proc_free(p);
}

static void test_malformed_links(void **state)
{
	static const char *const bad[] = {
		"anon_inode:kvm-vcpu:",
		"anon_inode:kvm-vcpu:abc",
		"anon_inode:kvm-vcpu-stats:-1",
		"anon_inode:kvm-vcpu:99999999999999",
		"anon_inode:kvm-vcpu:2147483648",	/* INT_MAX + 1 */
		"anon_inode:kvm-vcpu:+1",
		"anon_inode:kvm-vcpu: 1",
		"anon_inode:kvm-vcpu:1x",
		"anon_inode:kvm-vcpu-stats:",
		"anon_inode:kvm-vm-stats:0",
		"anon_inode:kvm-vmx",
		"anon_inode:kvm-vm ",
		"anon_inode:kvm",
		"anon_inode:[kvm-vm]",
		"/anon_inode:kvm-vm",
		"kvm-vm",
		"/dev/kvm",
		/* Longer than any of ours: must not be parsed truncated. */
		"anon_inode:kvm-vcpu:1111111111111111111111111111111111111111111",
	};
	struct tree *t = *state;
	struct discover_proc *p = NULL;
	char path[PATH_MAX];
	size_t i;

	add_proc(t, 55, "vmm", 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		add_fd(t, 55, 10 + (int)i, bad[i]);
	assert_int_equal(discover_process(t->root, 55, &p), 0);

	/* A non-numeric name in fd/ is not an fd. */
	tree_path(t, path, sizeof(path), "55/fd/x");
	assert_int_equal(symlink("anon_inode:kvm-vm", path), 0);
	assert_int_equal(discover_process(t->root, 55, &p), 0);

	add_cmdline(t, 55, CMD("vmm\0"));
	add_fd(t, 55, 3, "anon_inode:kvm-vm");
	add_fd(t, 55, 4, "anon_inode:kvm-vcpu-stats:2147483647");
	assert_int_equal(discover_process(t->root, 55, &p), 1);
	assert_int_equal(p->nfds, 2);
	assert_int_equal(p->fds[0].fd, 3);
	assert_int_equal(p->fds[0].kind, DISCOVER_FD_VM);
	assert_int_equal(p->fds[1].kind, DISCOVER_FD_VCPU_STATS);
	assert_int_equal(p->fds[1].vcpu, INT_MAX);
	discover_proc_free(p);
}

/* More fds than one getdents64() call returns, grown without a limit. */
static void test_many_fds(void **state)
{
	struct tree *t = *state;
	struct discover_proc *p = NULL;
	char link[64];
	size_t i;
	int fd;

	add_proc(t, 60, "big", 9);
	add_cmdline(t, 60, CMD("big\0"));
	add_fd(t, 60, 4000, "anon_inode:kvm-vm");
	for (fd = 0; fd < 3000; fd++) {
		if (fd % 2) {
			add_fd(t, 60, fd, "socket:[99]");
			continue;
		}
		snprintf(link, sizeof(link), "anon_inode:kvm-vcpu-stats:%d",
			 fd / 2);
		add_fd(t, 60, fd, link);
	}
	assert_int_equal(discover_process(t->root, 60, &p), 1);
	assert_int_equal(p->nfds, 1501);
	for (i = 0; i < 1500; i++) {
		assert_int_equal(p->fds[i].fd, (int)(2 * i));
		assert_int_equal(p->fds[i].kind, DISCOVER_FD_VCPU_STATS);
		assert_int_equal(p->fds[i].vcpu, (int)i);
	}
	assert_int_equal(p->fds[1500].fd, 4000);
	assert_int_equal(p->fds[1500].kind, DISCOVER_FD_VM);
	discover_proc_free(p);
}

/*
 * A process that cannot be read for a reason other than going away or a
 * refusal (here a stat line that does not parse) is skipped and counted:
 * the walk goes on and finds the VMMs on either side of it.
 */
static void test_scan_skips_unreadable(void **state)
{
	struct tree *t = *state;
	struct discover_stats stats;
	struct seen seen = { 0 };
	size_t nfds = 0;

	add_qemu(t, 100);
	add_dir(t, "150");
	add_dir(t, "150/fd");
	add_stat_text(t, 150, "150 (odd");
	add_fd(t, 150, 3, "anon_inode:kvm-vm");
	add_qemu(t, 200);
	assert_int_equal(discover_scan(t->root, record, &seen, &stats), 2);
	assert_true(seen_pid(&seen, 100, &nfds));
	assert_true(seen_pid(&seen, 200, &nfds));
	assert_int_equal(stats.scanned, 3);
	assert_int_equal(stats.failed, 1);
	assert_true(stats.failed_error < 0);
	assert_int_equal(stats.vanished, 0);
	assert_int_equal(stats.denied, 0);
}

/* A tree like a real /proc: processes, entries that are not, and leftovers. */
static void build_scan_tree(const struct tree *t)
{
	char path[PATH_MAX];

	add_qemu(t, 100);
	add_other(t, 200);
	add_proc(t, 300, "two-vms", 42);
	add_cmdline(t, 300, CMD("two-vms\0"));
	add_fd(t, 300, 4, "anon_inode:kvm-vm");
	add_fd(t, 300, 5, "anon_inode:kvm-vm");

	/* Exited between readdir and the reads: no fd dir, no stat. */
	add_dir(t, "400");
	add_stat(t, 400, "gone", 1);
	add_dir(t, "500");
	add_dir(t, "500/fd");
	add_fd(t, 500, 3, "anon_inode:kvm-vm");

	/* Not processes, even with a VMM's files in them. */
	tree_path(t, path, sizeof(path), "self");
	assert_int_equal(symlink("100", path), 0);
	add_dir(t, "sys");
	add_dir(t, "1a");
	add_dir(t, "1a/fd");
	tree_path(t, path, sizeof(path), "1a/stat");
	tree_write(path, CMD("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 "
			     "5 0 0\n"));
	tree_path(t, path, sizeof(path), "1a/fd/3");
	assert_int_equal(symlink("anon_inode:kvm-vm", path), 0);
	add_dir(t, "0");
}

static void test_scan(void **state)
{
	struct tree *t = *state;
	struct discover_stats stats;
	struct seen seen = { 0 };
	size_t nfds = 0;

	build_scan_tree(t);
	assert_int_equal(discover_scan(t->root, record, &seen, &stats), 2);
	assert_int_equal(seen.n, 2);
	assert_true(seen_pid(&seen, 100, &nfds));
	assert_int_equal(nfds, 10);
	assert_true(seen_pid(&seen, 300, &nfds));
	assert_int_equal(nfds, 2);
	assert_int_equal(stats.scanned, 5);
	assert_int_equal(stats.vanished, 2);
	assert_int_equal(stats.denied, 0);

	seen.n = 0;
	assert_int_equal(discover_scan(t->root, record, &seen, NULL), 2);
}

static void test_scan_stops(void **state)
{
	struct tree *t = *state;
	struct discover_stats stats;
	struct seen seen = { .fail_with = -EINTR };

	build_scan_tree(t);
	assert_int_equal(discover_scan(t->root, record, &seen, &stats),
			 -EINTR);
	assert_int_equal(seen.n, 1);
}

static void test_vanished(void **state)
{
	struct tree *t = *state;
	struct discover_proc *p = NULL;
	uint64_t st = 0;

	build_scan_tree(t);
	assert_int_equal(discover_process(t->root, 400, &p), -ESRCH);
	assert_int_equal(discover_process(t->root, 500, &p), -ESRCH);
	assert_int_equal(discover_process(t->root, 999, &p), -ESRCH);
	assert_null(p);
	assert_int_equal(discover_starttime(t->root, 500, &st), -ESRCH);
	assert_int_equal(discover_starttime(t->root, 999, &st), -ESRCH);
	assert_int_equal(discover_starttime(t->root, 400, &st), 0);
	assert_int_equal(st, 1);

	/* A VMM that exits before its cmdline is read. */
	add_proc(t, 600, "qemu", 3);
	add_fd(t, 600, 3, "anon_inode:kvm-vm");
	assert_int_equal(discover_process(t->root, 600, &p), -ESRCH);
	assert_null(p);
}

/*
 * A PID/stat that is a FIFO, answered by a thread: the n-th open gets
 * texts[n] (the last one from then on), after hooks[n] (may be NULL) has
 * changed the tree. The reader waits in its read of stat meanwhile, so a
 * hook runs at an exact step of discover_process(): the first read comes
 * before the fd listing, the second after it and before the cmdline.
 * Before an answer ends (close), a fresh FIFO is renamed over PID/stat, so
 * the next open can never read into the answer before.
 */
#define FEED_MAX 4

struct stat_feed {
	const struct tree *t;
	pid_t pid;
	char path[PATH_MAX];
	char next[PATH_MAX];
	char texts[FEED_MAX][1024];
	size_t ntexts;
	void (*hooks[FEED_MAX])(struct stat_feed *f);
	atomic_uint served;	/* opens answered */
	atomic_bool stop;
	int error;		/* errno of what failed in the thread, 0 */
	pthread_t thread;
};

/*
 * Answers until stopped, also after an error (recorded in f->error), so
 * that a reader is never left blocked in open().
 */
static void *stat_feed_run(void *arg)
{
	struct stat_feed *f = arg;
	const struct timespec pause = { 0, 100 * 1000 };

	while (!atomic_load(&f->stop)) {
		unsigned n = atomic_load(&f->served);
		size_t i = n < f->ntexts ? n : f->ntexts - 1;
		size_t len = strlen(f->texts[i]);
		int fd = open(f->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		if (fd < 0) {
			if (errno != ENXIO && !f->error)	/* ENXIO: no reader yet */
				f->error = errno;
			nanosleep(&pause, NULL);
			continue;
		}
		if (n < FEED_MAX && f->hooks[n])
			f->hooks[n](f);
		if (write(fd, f->texts[i], len) != (ssize_t)len ||
		    mkfifo(f->next, 0644) < 0 || rename(f->next, f->path) < 0)
			f->error = f->error ? f->error : errno ? errno : EIO;
		close(fd);
		atomic_fetch_add(&f->served, 1);
	}
	return NULL;
}

/* Makes PID/stat a FIFO answered with one stat line per starttime given. */
static void stat_feed_start(struct stat_feed *f, const struct tree *t, pid_t pid,
			    const unsigned long long *starttimes, size_t n)
{
	assert_true(n > 0 && n <= FEED_MAX);
	memset(f, 0, sizeof(*f));
	f->t = t;
	f->pid = pid;
	f->ntexts = n;
	for (size_t i = 0; i < n; i++)
		format_stat(f->texts[i], sizeof(f->texts[i]), pid, "qemu-system-x86",
			    starttimes[i]);
	tree_path(t, f->path, sizeof(f->path), "%d/stat", (int)pid);
	tree_path(t, f->next, sizeof(f->next), "%d/stat.next", (int)pid);
	assert_int_equal(mkfifo(f->path, 0644), 0);
}

static void stat_feed_go(struct stat_feed *f)
{
	assert_int_equal(pthread_create(&f->thread, NULL, stat_feed_run, f), 0);
}

/* Stops the thread; returns how many reads of stat it answered. */
static unsigned stat_feed_stop(struct stat_feed *f)
{
	atomic_store(&f->stop, true);
	assert_int_equal(pthread_join(f->thread, NULL), 0);
	assert_int_equal(f->error, 0);
	return atomic_load(&f->served);
}

/* A VMM at pid with a kvm-vm and two vCPU stats fds, and a FIFO stat. */
static void add_fed_vmm(const struct tree *t, pid_t pid, struct stat_feed *f,
			const unsigned long long *starttimes, size_t n)
{
	char rel[32];

	snprintf(rel, sizeof(rel), "%d", (int)pid);
	add_dir(t, rel);
	snprintf(rel, sizeof(rel), "%d/fd", (int)pid);
	add_dir(t, rel);
	add_cmdline(t, pid, CMD("qemu\0-name\0fed\0"));
	add_fd(t, pid, 3, "anon_inode:kvm-vm");
	add_fd(t, pid, 4, "anon_inode:kvm-vcpu-stats:0");
	add_fd(t, pid, 5, "anon_inode:kvm-vcpu-stats:1");
	stat_feed_start(f, t, pid, starttimes, n);
}

static void remove_rel(struct stat_feed *f, const char *rel, bool dir)
{
	char path[PATH_MAX];

	tree_path(f->t, path, sizeof(path), "%d/%s", (int)f->pid, rel);
	if ((dir ? rmdir(path) : unlink(path)) < 0)
		f->error = errno;
}

/* The process closes its fds (exits: the kernel closes them first). */
static void close_fds(struct stat_feed *f)
{
	remove_rel(f, "fd/3", false);
	remove_rel(f, "fd/4", false);
	remove_rel(f, "fd/5", false);
}

/* ... and is reaped: no fd directory any more. */
static void reap_fds(struct stat_feed *f)
{
	close_fds(f);
	remove_rel(f, "fd", true);
}

static void drop_cmdline(struct stat_feed *f)
{
	remove_rel(f, "cmdline", false);
}

/* The same process read twice: reported (the FIFO itself is no change). */
static void test_fed_stat_control(void **state)
{
	static const unsigned long long st[] = { 7 };
	struct tree *t = *state;
	struct discover_proc *p = NULL;
	struct stat_feed f;
	int r;

	add_fed_vmm(t, 800, &f, st, 1);
	stat_feed_go(&f);
	r = discover_process(t->root, 800, &p);
	assert_int_equal(stat_feed_stop(&f), 2);	/* before and after the fds */
	assert_int_equal(r, 1);
	assert_int_equal(p->starttime, 7);
	assert_int_equal(p->nfds, 3);
	assert_string_equal(p->name, "fed");
	discover_proc_free(p);
}

/*
 * The VMM exits and its pid goes to another process while its fds are
 * listed: stat reads another starttime afterwards. The fds may be the new
 * process's, so the VMM is gone, not reported with them.
 */
static void test_pid_reused_during_listing(void **state)
{
	static const unsigned long long st[] = { 7, 8 };
	struct tree *t = *state;
	struct discover_proc *p = NULL;
	struct discover_stats stats;
	struct seen seen = { 0 };
	struct stat_feed f;
	char path[PATH_MAX];
	int before = (int)tree_count_fds(), r;

	add_fed_vmm(t, 800, &f, st, 2);
	stat_feed_go(&f);
	r = discover_process(t->root, 800, &p);
	assert_int_equal(stat_feed_stop(&f), 2);
	assert_int_equal(r, -ESRCH);
	assert_null(p);

	/* In a scan: skipped and counted, the other VMM still reported. */
	add_qemu(t, 100);
	tree_path(t, path, sizeof(path), "800/stat");
	assert_int_equal(unlink(path), 0);
	stat_feed_start(&f, t, 800, st, 2);
	stat_feed_go(&f);
	r = discover_scan(t->root, record, &seen, &stats);
	assert_int_equal(stat_feed_stop(&f), 2);
	assert_int_equal(r, 1);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.pids[0], 100);
	assert_int_equal(stats.scanned, 2);
	assert_int_equal(stats.vanished, 1);
	assert_int_equal(stats.denied, 0);
	assert_int_equal((int)tree_count_fds(), before);
}

/*
 * discover_process() of VMM 800 (start time 7) while hook runs after the
 * stat read number `at` (0: the first): its result, *ret_p as left, and
 * how many stat reads were answered.
 */
static int discover_with_hook(struct tree *t, unsigned at, void (*hook)(struct stat_feed *),
			      struct discover_proc **ret_p, unsigned *ret_reads)
{
	static const unsigned long long st[] = { 7 };
	struct stat_feed f;
	int r;

	add_fed_vmm(t, 800, &f, st, 1);
	f.hooks[at] = hook;
	stat_feed_go(&f);
	r = discover_process(t->root, 800, ret_p);
	*ret_reads = stat_feed_stop(&f);
	return r;
}

/* The VMM is reaped between its stat and its fd listing. */
static void test_reaped_before_fd_listing(void **state)
{
	struct discover_proc *p = NULL;
	unsigned reads;

	assert_int_equal(discover_with_hook(*state, 0, reap_fds, &p, &reads), -ESRCH);
	assert_int_equal(reads, 1);
	assert_null(p);
}

/* It closes its KVM fds (exits) before they are listed: no VMM any more. */
static void test_fds_closed_before_listing(void **state)
{
	struct discover_proc *p = (struct discover_proc *)0x1;
	unsigned reads;

	assert_int_equal(discover_with_hook(*state, 0, close_fds, &p, &reads), 0);
	assert_int_equal(reads, 1);
	assert_ptr_equal(p, (struct discover_proc *)0x1);	/* untouched */
}

/* It is gone after its fds were listed, before its cmdline is read. */
static void test_gone_before_cmdline(void **state)
{
	struct discover_proc *p = NULL;
	unsigned reads;

	assert_int_equal(discover_with_hook(*state, 1, drop_cmdline, &p, &reads), -ESRCH);
	assert_int_equal(reads, 2);
	assert_null(p);
}

/*
 * Processes come and go while scans run: a thread keeps creating a VMM
 * (dir, stat, cmdline, fd dir, then its fds, as a process opens them) and
 * a plain process, and removing them the way the kernel does (fds closed
 * first, then the fd dir, cmdline and stat, then the dir), while the
 * stable VMM opens and closes other fds. Files appear by rename(), whole,
 * as /proc's do. Whatever step a scan meets them at, it never fails,
 * always reports the stable VMM with exactly its KVM fds (an fd closed
 * between the listing and its readlink is skipped, not taken for the
 * process's exit), and the transient one with at most its fds.
 */
struct churn {
	const struct tree *t;
	atomic_bool stop;
	atomic_ulong cycles;
	int error;
};

static void churn_write(struct churn *c, pid_t pid, const char *name,
			const void *data, size_t len)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd;

	tree_path(c->t, tmp, sizeof(tmp), "%d/.%s.tmp", (int)pid, name);
	tree_path(c->t, path, sizeof(path), "%d/%s", (int)pid, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0 ||
	    rename(tmp, path) < 0)
		c->error = errno ? errno : EIO;
}

static void churn_op(struct churn *c, int r)
{
	if (r < 0 && !c->error)
		c->error = errno;
}

static void *churn_run(void *arg)
{
	static const char *const links[] = {
		"anon_inode:kvm-vm", "anon_inode:kvm-vcpu-stats:0",
		"anon_inode:kvm-vcpu-stats:1",
	};
	struct churn *c = arg;
	char path[PATH_MAX], line[1024];
	unsigned long long starttime = 1000;

	while (!atomic_load(&c->stop) && !c->error) {
		for (pid_t pid = 700; pid <= 701; pid++) {
			bool vmm = pid == 700;

			tree_path(c->t, path, sizeof(path), "%d", (int)pid);
			churn_op(c, mkdir(path, 0755));
			format_stat(line, sizeof(line), pid, vmm ? "qemu" : "sh", ++starttime);
			churn_write(c, pid, "stat", line, strlen(line));
			churn_write(c, pid, "cmdline", CMD("qemu\0-name\0transient\0"));
			tree_path(c->t, path, sizeof(path), "%d/fd", (int)pid);
			churn_op(c, mkdir(path, 0755));
			for (int i = 0; vmm && i < 3; i++) {
				tree_path(c->t, path, sizeof(path), "%d/fd/%d", (int)pid, 3 + i);
				churn_op(c, symlink(links[i], path));
			}
		}
		for (pid_t pid = 700; pid <= 701; pid++) {
			for (int i = 0; pid == 700 && i < 3; i++) {
				tree_path(c->t, path, sizeof(path), "%d/fd/%d", (int)pid, 3 + i);
				churn_op(c, unlink(path));
			}
			tree_path(c->t, path, sizeof(path), "%d/fd", (int)pid);
			churn_op(c, rmdir(path));
			tree_path(c->t, path, sizeof(path), "%d/cmdline", (int)pid);
			churn_op(c, unlink(path));
			tree_path(c->t, path, sizeof(path), "%d/stat", (int)pid);
			churn_op(c, unlink(path));
			tree_path(c->t, path, sizeof(path), "%d", (int)pid);
			churn_op(c, rmdir(path));
		}
		/* The stable VMM opens and closes other fds meanwhile. */
		for (int fd = 40; fd < 48; fd++) {
			tree_path(c->t, path, sizeof(path), "100/fd/%d", fd);
			churn_op(c, symlink("socket:[4242]", path));
		}
		for (int fd = 40; fd < 48; fd++) {
			tree_path(c->t, path, sizeof(path), "100/fd/%d", fd);
			churn_op(c, unlink(path));
		}
		atomic_fetch_add(&c->cycles, 1);
	}
	return NULL;
}

static void test_processes_come_and_go(void **state)
{
	struct tree *t = *state;
	struct churn c = { .t = t };
	unsigned long found_transient = 0, vanished = 0, scans = 0;
	int before = (int)tree_count_fds();
	time_t deadline = time(NULL) + 30;
	const char *bad = NULL;
	pthread_t thread;

	add_qemu(t, 100);
	add_other(t, 200);
	assert_int_equal(pthread_create(&thread, NULL, churn_run, &c), 0);
	while (!bad && (found_transient < 50 || vanished < 50 || scans < 2000) &&
	       time(NULL) < deadline && !c.error) {
		struct discover_stats stats;
		struct seen seen = { 0 };
		size_t nfds = 0;
		int r = discover_scan(t->root, record, &seen, &stats);

		scans++;
		if (r < 0)
			bad = "the scan failed";
		else if (!seen_pid(&seen, 100, &nfds) || nfds != 10)
			bad = "the stable VMM was missed or its fds miscounted";
		else if (r > 2 || seen.n != (size_t)r || seen_pid(&seen, 701, NULL))
			bad = "the scan found what is no VMM";
		else if (stats.denied != 0)
			bad = "a vanished process was counted as denied";
		else if (seen_pid(&seen, 700, &nfds) && (nfds < 1 || nfds > 3))
			bad = "the transient VMM was reported with fds it never had";
		else if (seen_pid(&seen, 700, NULL))
			found_transient++;
		vanished += stats.vanished;
	}
	atomic_store(&c.stop, true);
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_int_equal(c.error, 0);
	fprintf(stderr, "%lu scans, %lu churn cycles: the transient VMM seen %lu "
		"times, %lu vanished mid-read\n", scans, atomic_load(&c.cycles),
		found_transient, vanished);
	if (bad)
		fail_msg("scan %lu: %s", scans, bad);
	/* Both sides of the race were met, often. */
	assert_true(found_transient >= 50 && vanished >= 50 && scans >= 2000);
	assert_int_equal((int)tree_count_fds(), before);
}

static void test_bad_arguments(void **state)
{
	struct tree *t = *state;
	struct discover_proc *p = NULL;
	struct discover_stats stats = { .scanned = 7 };
	struct seen seen = { 0 };
	char missing[PATH_MAX];
	uint64_t st;

	tree_path(t, missing, sizeof(missing), "no-such-dir");
	assert_int_equal(discover_scan(missing, record, &seen, &stats),
			 -ENOENT);
	assert_int_equal(stats.scanned, 0);
	assert_int_equal(discover_process(missing, 1, &p), -ENOENT);
	assert_int_equal(discover_starttime(missing, 1, &st), -ENOENT);
	assert_int_equal(discover_process(t->root, 0, &p), -EINVAL);
	assert_int_equal(discover_process(t->root, -1, &p), -EINVAL);
	assert_int_equal(discover_starttime(t->root, 0, &st), -EINVAL);
	assert_null(p);
}

/*
 * Root reads any directory whatever its mode, and a fake tree cannot make
 * the kernel's ptrace check refuse, so a child drops to nobody, for whom a
 * mode 000 fd dir gives a real EACCES.
 */
static void test_denied(void **state)
{
	struct tree *t = *state;
	char path[PATH_MAX];
	int status;
	pid_t child;

	add_qemu(t, 100);
	assert_int_equal(chmod(t->root, 0755), 0);
	tree_path(t, path, sizeof(path), "100/fd");
	assert_int_equal(chmod(path, 0), 0);

	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct discover_proc *p = NULL;
		struct discover_stats stats;
		struct seen seen = { 0 };

		if (geteuid() == 0 &&
		    (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
		     setuid(NOBODY) < 0))
			_exit(77);
		if (discover_process(t->root, 100, &p) != -EACCES)
			_exit(1);
		if (discover_scan(t->root, record, &seen, &stats) != 0)
			_exit(2);
		if (stats.denied != 1 || stats.scanned != 1 || seen.n != 0)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(chmod(path, 0755), 0);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		fprintf(stderr, "SKIP: cannot drop to uid %d\n", NOBODY);
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_starttime(void **state)
{
	static const char *const garbage[] = {
		"",
		"garbage\n",
		"1 (x S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n",
		"1 x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n",
		"1 (x) S 1 2 3\n",
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0\n",
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 0 0\n",
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 +5 0 0\n",
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12abc 0\n",
		("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 "
		 "18446744073709551616 0\n"),
	};
	struct tree *t = *state;
	struct discover_proc *p = NULL;
	char big[5000];
	uint64_t st = 0;
	size_t i;

	add_proc(t, 10, "qemu-system-x86", 123456789);
	assert_int_equal(discover_starttime(t->root, 10, &st), 0);
	assert_int_equal(st, 123456789);

	/* The comm ends at the LAST ')': it may hold ") " itself. */
	add_proc(t, 11, "(qemu) x)", 4242);
	assert_int_equal(discover_starttime(t->root, 11, &st), 0);
	assert_int_equal(st, 4242);
	add_proc(t, 12, "a) b) 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17", 77);
	assert_int_equal(discover_starttime(t->root, 12, &st), 0);
	assert_int_equal(st, 77);
	add_proc(t, 13, "max", 18446744073709551615ULL);
	assert_int_equal(discover_starttime(t->root, 13, &st), 0);
	assert_int_equal(st, UINT64_MAX);

	/* comm of a VMM is kept whole, and cut at 16 bytes. */
	add_cmdline(t, 11, CMD("x\0"));
	add_fd(t, 11, 3, "anon_inode:kvm-vm");
	assert_int_equal(discover_process(t->root, 11, &p), 1);
	assert_string_equal(p->comm, "(qemu) x)");
	discover_proc_free(p);
	add_proc(t, 14, "kworker/u8:1-events_unbound", 5);
	add_cmdline(t, 14, CMD("x\0"));
	add_fd(t, 14, 3, "anon_inode:kvm-vm");
	assert_int_equal(discover_process(t->root, 14, &p), 1);
	assert_string_equal(p->comm, "kworker/u8:1-eve");
	discover_proc_free(p);

	add_dir(t, "20");
	add_dir(t, "20/fd");
	add_fd(t, 20, 3, "anon_inode:kvm-vm");
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		st = 1;
		add_stat_text(t, 20, garbage[i]);
		assert_int_equal(discover_starttime(t->root, 20, &st),
				 -EBADMSG);
		assert_int_equal(st, 1);	/* untouched */
		assert_int_equal(discover_process(t->root, 20, &p), -EBADMSG);
	}
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "1 (x) S", 7);
	add_stat_text(t, 20, big);
	assert_int_equal(discover_starttime(t->root, 20, &st), -EBADMSG);
}

/* Parses a copy of exactly len bytes, so a read past len is caught. */
static void check_cmdline(const char *cmdline, size_t len, const char *name,
			  const char *uuid)
{
	char *copy = len ? malloc(len) : NULL;
	char *n = (char *)0x1, *u = (char *)0x1;

	if (len) {
		assert_non_null(copy);
		memcpy(copy, cmdline, len);
	}
	assert_int_equal(cmdline_parse(copy, len, &n, &u), 0);
	if (name)
		assert_string_equal(n, name);
	else
		assert_null(n);
	if (uuid)
		assert_string_equal(u, uuid);
	else
		assert_null(u);
	free(n);
	free(u);
	free(copy);
}

static void test_cmdline(void **state)
{
	(void)state;
	check_cmdline(CMD("qemu\0-name\0guest=vm1,debug-threads=on\0"),
		      "vm1", NULL);
	check_cmdline(CMD("qemu\0-name\0vm2\0"), "vm2", NULL);
	check_cmdline(CMD("qemu\0-name\0vm3,process=qemu:vm3\0"), "vm3", NULL);
	check_cmdline(CMD("qemu\0-name\0process=p,guest=g\0"), "g", NULL);
	check_cmdline(CMD("qemu\0-name\0guest=a,guest=b\0"), "b", NULL);
	check_cmdline(CMD("qemu\0-name\0foo=bar\0"), NULL, NULL);
	check_cmdline(CMD("qemu\0-name\0guest=a,debug-threads,,x\0"),
		      "a", NULL);

	/* ",," is a literal comma. */
	check_cmdline(CMD("qemu\0-name\0guest=a,,b,debug-threads=on\0"),
		      "a,b", NULL);
	check_cmdline(CMD("qemu\0-name\0a,,b,process=x\0"), "a,b", NULL);
	check_cmdline(CMD("qemu\0-name\0a,,,,b\0"), "a,,b", NULL);
	check_cmdline(CMD("qemu\0-name\0x,,\0"), "x,", NULL);

	/* Two dashes work, three do not; "-name=x" is no option. */
	check_cmdline(CMD("qemu\0--name\0vm4\0--uuid\0u4\0"), "vm4", "u4");
	check_cmdline(CMD("qemu\0---name\0vm\0"), NULL, NULL);
	check_cmdline(CMD("qemu\0-name=vm\0-uuid=u\0"), NULL, NULL);

	/* Repeated -name options merge: the last guest wins. */
	check_cmdline(CMD("qemu\0-name\0first\0-name\0second\0"),
		      "second", NULL);
	check_cmdline(CMD("qemu\0-name\0guest=a\0-name\0debug-threads=on\0"),
		      "a", NULL);
	check_cmdline(CMD("qemu\0-uuid\0u1\0-uuid\0u2\0"), NULL, "u2");

	/* The value is the next argument, whatever it looks like. */
	check_cmdline(CMD("qemu\0-name\0-uuid\0u\0"), "-uuid", NULL);
	check_cmdline(CMD("-name\0x\0"), NULL, NULL);	/* argv[0] */

	/* Missing values, empty values, empty cmdlines. */
	check_cmdline(CMD("qemu\0-name\0"), NULL, NULL);
	check_cmdline(CMD("qemu\0-name\0vm\0-name"), "vm", NULL);
	check_cmdline(CMD("qemu\0-uuid"), NULL, NULL);
	check_cmdline(CMD("qemu\0-name\0\0"), NULL, NULL);
	check_cmdline(CMD("qemu\0-name\0guest=\0"), NULL, NULL);
	check_cmdline(CMD("qemu\0-name\0guest=,debug-threads=on\0"),
		      NULL, NULL);
	check_cmdline(CMD("qemu\0-name\0a\0-name\0guest=\0"), NULL, NULL);
	check_cmdline(CMD("qemu\0-uuid\0\0"), NULL, NULL);
	check_cmdline(NULL, 0, NULL, NULL);
	check_cmdline("", 0, NULL, NULL);
	check_cmdline(CMD("\0"), NULL, NULL);

	/* Without the last NUL: len is the end. */
	check_cmdline(CMD("qemu\0-name\0vm5"), "vm5", NULL);
	check_cmdline(CMD("qemu\0-uuid\0abc"), NULL, "abc");

	/* Untrusted bytes are kept as they are. */
	check_cmdline(CMD("qemu\0-name\0guest=\"evil\"\n'x'/../\xff\xfe;$(id)"
			  ",debug-threads=on\0"),
		      "\"evil\"\n'x'/../\xff\xfe;$(id)", NULL);
}

static void test_cmdline_long_name(void **state)
{
	static const char head[] = "qemu\0-name\0guest=";
	size_t len = sizeof(head) - 1 + 10000 + 1;
	char *cmdline = malloc(len);
	char *want = malloc(4097);

	(void)state;
	assert_non_null(cmdline);
	assert_non_null(want);
	memcpy(cmdline, head, sizeof(head) - 1);
	memset(cmdline + sizeof(head) - 1, 'x', 10000);
	cmdline[len - 1] = '\0';
	memset(want, 'x', 4096);
	want[4096] = '\0';
	check_cmdline(cmdline, len, want, NULL);

	/* Escapes count once in the cap: 5000 ",," give 4096 ','. */
	memset(cmdline + sizeof(head) - 1, ',', 10000);
	memset(want, ',', 4096);
	check_cmdline(cmdline, len, want, NULL);
	free(cmdline);
	free(want);
}

static void test_empty_cmdline(void **state)
{
	struct tree *t = *state;
	struct discover_proc *p = NULL;

	/* A zombie's cmdline is empty; it is still reported. */
	add_proc(t, 70, "qemu-system-x86", 8);
	add_cmdline(t, 70, "", 0);
	add_fd(t, 70, 3, "anon_inode:kvm-vm");
	assert_int_equal(discover_process(t->root, 70, &p), 1);
	assert_null(p->name);
	assert_null(p->uuid);
	assert_string_equal(p->comm, "qemu-system-x86");
	discover_proc_free(p);
}

static void test_proc_free(void **state)
{
	struct discover_proc *p = calloc(1, sizeof(*p));

	(void)state;
	discover_proc_free(NULL);
	assert_non_null(p);
	p->name = strdup("half");
	discover_proc_free(p);
}

static void test_no_fd_leak(void **state)
{
	struct tree *t = *state;
	struct discover_proc *p;
	struct seen seen;
	uint64_t st;
	int before, i;

	build_scan_tree(t);
	add_dir(t, "20");
	add_stat_text(t, 20, "garbage");
	before = (int)tree_count_fds();
	for (i = 0; i < 100; i++) {
		seen = (struct seen){ 0 };
		/* The garbage entry is skipped; the scan runs to the end. */
		assert_int_equal(discover_scan(t->root, record, &seen, NULL), 2);
		assert_int_equal(discover_process(t->root, 100, &p), 1);
		discover_proc_free(p);
		assert_int_equal(discover_process(t->root, 200, &p), 0);
		assert_int_equal(discover_process(t->root, 500, &p), -ESRCH);
		assert_int_equal(discover_starttime(t->root, 100, &st), 0);
		assert_int_equal(discover_starttime(t->root, 20, &st),
				 -EBADMSG);
	}
	assert_int_equal((int)tree_count_fds(), before);

	/* The same with only good entries, so that scans run to the end. */
	add_stat(t, 20, "fixed", 1);
	for (i = 0; i < 100; i++) {
		seen = (struct seen){ 0 };
		assert_int_equal(discover_scan(t->root, record, &seen, NULL),
				 2);
		seen = (struct seen){ .fail_with = -EINTR };
		assert_int_equal(discover_scan(t->root, record, &seen, NULL),
				 -EINTR);
	}
	assert_int_equal((int)tree_count_fds(), before);
}

/* The real /proc: this process holds no VM, others on the host may. */
static void test_real_proc(void **state)
{
	struct discover_stats stats;
	struct seen seen = { 0 };
	int r;

	(void)state;
	r = discover_scan("/proc", record, &seen, &stats);
	assert_true(r >= 0);
	assert_int_equal((size_t)r, seen.n);
	assert_true(stats.scanned > 0);
	assert_false(seen_pid(&seen, getpid(), NULL));
}

/* A VM of our own, to check the link names against this kernel. */
static void test_real_kvm(void **state)
{
	struct discover_proc *p = NULL;
	struct seen seen = { 0 };
	int kvm, vm, vcpu, vm_stats, vcpu_stats;
	bool got[4] = { false };
	size_t i;

	(void)state;
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "SKIP: /dev/kvm: %s\n", strerror(errno));
		skip();
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0) {
		close(kvm);
		fprintf(stderr, "SKIP: no KVM_CAP_BINARY_STATS_FD\n");
		skip();
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	assert_true(vcpu >= 0);
	vm_stats = ioctl(vm, KVM_GET_STATS_FD, NULL);
	assert_true(vm_stats >= 0);
	vcpu_stats = ioctl(vcpu, KVM_GET_STATS_FD, NULL);
	assert_true(vcpu_stats >= 0);

	assert_int_equal(discover_process("/proc", getpid(), &p), 1);
	for (i = 0; i < p->nfds; i++) {
		const struct discover_fd *f = &p->fds[i];

		if (f->fd == vm && f->kind == DISCOVER_FD_VM && f->vcpu == -1)
			got[0] = true;
		if (f->fd == vcpu && f->kind == DISCOVER_FD_VCPU &&
		    f->vcpu == 0)
			got[1] = true;
		if (f->fd == vm_stats && f->kind == DISCOVER_FD_VM_STATS &&
		    f->vcpu == -1)
			got[2] = true;
		if (f->fd == vcpu_stats &&
		    f->kind == DISCOVER_FD_VCPU_STATS && f->vcpu == 0)
			got[3] = true;
	}
	assert_int_equal(p->nfds, 4);
	assert_true(got[0] && got[1] && got[2] && got[3]);
	discover_proc_free(p);

	assert_true(discover_scan("/proc", record, &seen, NULL) >= 1);
	assert_true(seen_pid(&seen, getpid(), NULL));

	close(vcpu_stats);
	close(vm_stats);
	close(vcpu);
	close(vm);
	close(kvm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_qemu_like, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_non_vmm, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_two_vm_fds, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_links, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_many_fds, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_scan, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_scan_skips_unreadable, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_scan_stops, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_vanished, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_fed_stat_control, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_pid_reused_during_listing, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_reaped_before_fd_listing, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_fds_closed_before_listing, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_gone_before_cmdline, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_processes_come_and_go, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_denied, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_starttime, setup,
						tree_teardown),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_cmdline_long_name),
		cmocka_unit_test_setup_teardown(test_empty_cmdline, setup,
						tree_teardown),
		cmocka_unit_test(test_proc_free),
		cmocka_unit_test_setup_teardown(test_no_fd_leak, setup,
						tree_teardown),
		cmocka_unit_test(test_real_proc),
		cmocka_unit_test(test_real_kvm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
