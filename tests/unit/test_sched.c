/* SPDX-License-Identifier: MIT */
/*
 * test_sched.c: finding vCPU threads and reading their schedstat
 * (common/sources/sched.c): the strict parsers, the matching of threads to
 * vCPUs (names that lie, names missing, a thread replaced), and a look and
 * samples over a fake /proc tree.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sources/sched.h"
#include "tree.h"

/* ------------------------------------------------------------ parsers */

static int schedstat(const char *text, struct kvmstats_sched_total *t)
{
	return sched_parse_schedstat(text, strlen(text), t);
}

static void test_schedstat_parse(void **state)
{
	struct kvmstats_sched_total t = { 7, 7, 7 };
	static const char *const bad[] = {
		"", "\n", "1 2\n", "1 2 3", "1 2 3 4\n", " 1 2 3\n", "1  2 3\n",
		"1 2 3\n\n", "-1 2 3\n", "+1 2 3\n", "1 2 0x3\n", "1 2 3 \n",
		"18446744073709551616 0 0\n", "1\t2 3\n", "a b c\n",
		/* The kernel's %llu writes no leading zero (fuzz_sched). */
		"01 2 3\n", "1 00 3\n", "1 2 0003\n",
	};

	(void)state;
	assert_int_equal(schedstat("2622689390 8500188 102\n", &t), 0);
	assert_int_equal(t.run_ns, 2622689390ULL);
	assert_int_equal(t.wait_ns, 8500188ULL);
	assert_int_equal(t.timeslices, 102);
	assert_int_equal(schedstat("18446744073709551615 0 0\n", &t), 0);
	assert_true(t.run_ns == UINT64_MAX);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = (struct kvmstats_sched_total){ 7, 7, 7 };
		assert_int_equal(schedstat(bad[i], &t), -EBADMSG);
		assert_int_equal(t.run_ns, 7);	/* untouched */
	}
	assert_int_equal(sched_parse_schedstat("1 2 3\n\0", 7, &t), -EBADMSG);
}

static int syscall_fd(const char *text, int *fd)
{
	return sched_parse_syscall(text, strlen(text), fd);
}

static void test_syscall_parse(void **state)
{
	int fd = -7;

	(void)state;
	/* Seen on this kind of host: a vCPU thread blocked in KVM_RUN on fd 18. */
	assert_int_equal(syscall_fd("16 0x12 0xae80 0x0 0x0 0x0 0x0 0x7ffd1c0 0x7f12\n", &fd), 1);
	assert_int_equal(fd, 18);
	fd = -7;
	assert_int_equal(syscall_fd("running\n", &fd), 0);
	assert_int_equal(syscall_fd("-1 0x7ffd1c0 0x7f12\n", &fd), 0);
	/* ioctl, not KVM_RUN; another syscall with the same arguments. */
	assert_int_equal(syscall_fd("16 0x12 0xae81 0x0 0x0 0x0 0x0 0x1 0x2\n", &fd), 0);
	assert_int_equal(syscall_fd("7 0x12 0xae80 0x0 0x0 0x0 0x0 0x1 0x2\n", &fd), 0);
	/* An fd beyond int. */
	assert_int_equal(syscall_fd("16 0x100000000 0xae80 0x0 0x0 0x0 0x0 0x1 0x2\n", &fd), 0);
	assert_int_equal(fd, -7);
	static const char *const bad[] = {
		"", "runnin\n", "running", "16 0x12 0xae80\n",
		"16 0x12 0xae80 0x0 0x0 0x0 0x0 0x1 0x2", "16 0x12 0xae80 0x0 0x0 0x0 0x0 0x1 0x2 0x3\n",
		"16 12 0xae80 0x0 0x0 0x0 0x0 0x1 0x2\n", "16 0x-1 0xae80 0x0 0x0 0x0 0x0 0x1 0x2\n",
		"16  0x12 0xae80 0x0 0x0 0x0 0x0 0x1 0x2\n", "-2 0x1 0x2\n", "-1 0x1\n",
		"16 0x12 0xAE80 0x0 0x0 0x0 0x0 0x1 0x2\n", "x\n",
		"16 0x12 0xae80 0x0 0x0 0x0 0x0 0x1 0x10000000000000000\n",
		/* Not as the kernel's "%d 0x%llx" writes: upper case past the
		 * first digit (fuzz_sched-syscall-upper-case-hex), leading zeros. */
		"16 0xb 0xaE80 0x0 0x0 0x0 0x0 0x5 0x0\n", "016 0x12 0xae80 0x0 0x0 0x0 0x0 0x1 0x2\n",
		"16 0x012 0xae80 0x0 0x0 0x0 0x0 0x1 0x2\n", "16 0x12 0xae80 0x00 0x0 0x0 0x0 0x1 0x2\n",
		"16 0x12 0x0xae80 0x0 0x0 0x0 0x0 0x1 0x2\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(syscall_fd(bad[i], &fd), -EBADMSG);
	assert_int_equal(fd, -7);
}

static void test_comm_parse(void **state)
{
	int id = -7;

	(void)state;
	assert_int_equal(sched_parse_comm("CPU 0/KVM\n", 10, &id), 1);
	assert_int_equal(id, 0);
	assert_int_equal(sched_parse_comm("CPU 123/KVM", 11, &id), 1);
	assert_int_equal(id, 123);
	id = -7;
	static const char *const no[] = {
		"CPU 0/KVM ", "CPU /KVM", "CPU -1/KVM", "cpu 0/KVM", "CPU 0/TCG",
		"CPU 0/KVMX", "CPU 0", "qemu-system-x86", "CPU  0/KVM", "CPU +1/KVM",
		"IO mon_iothread", "CPU 99999999999/KVM", "CPU 01/KVM",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_int_equal(sched_parse_comm(no[i], strlen(no[i]), &id), 0);
	assert_int_equal(id, -7);
}

/* ------------------------------------------------------------ matching */

#define S(t, run, name) { (t), (run), (name) }

static void match(const struct sched_seen *seen, size_t nseen, struct sched_pick *p, size_t n)
{
	sched_match(seen, nseen, p, n);
	/* Never one thread for two vCPUs. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_true(p[i].tid == 0 || p[i].tid != p[j].tid);
}

static void test_match_names(void **state)
{
	/* QEMU: main thread, two vCPU threads by name, an I/O thread. */
	struct sched_seen seen[] = { S(100, -1, -1), S(101, -1, 0), S(102, -1, 1), S(103, -1, -1) };
	struct sched_pick p[] = { { 20, 0, 0, 0, 0 }, { 21, 1, 0, 0, 0 } };

	(void)state;
	match(seen, 4, p, 2);
	assert_int_equal(p[0].tid, 101);
	assert_int_equal(p[0].how, SCHED_HOW_NAME);
	assert_int_equal(p[1].tid, 102);
	assert_int_equal(p[1].how, SCHED_HOW_NAME);
}

static void test_match_syscall_beats_names(void **state)
{
	/*
	 * Names that lie: 201 says "CPU 0/KVM" but is in KVM_RUN on vCPU 1's
	 * fd; 202 says "CPU 1/KVM" and is neither. vCPU 1 is 201's; vCPU 0
	 * has no thread (its name is 201's, whom evidence gives to vCPU 1).
	 */
	struct sched_seen seen[] = { S(200, -1, -1), S(201, 21, 0), S(202, -1, 1) };
	struct sched_pick p[] = { { 20, 0, 0, 0, 0 }, { 21, 1, 0, 0, 0 } };

	(void)state;
	match(seen, 3, p, 2);
	assert_int_equal(p[1].tid, 201);
	assert_int_equal(p[1].how, SCHED_HOW_SYSCALL);
	assert_int_equal(p[0].tid, 0);
}

static void test_match_no_names(void **state)
{
	/* A VMM whose threads have no telling names: syscall evidence only. */
	struct sched_seen seen[] = { S(300, -1, -1), S(301, 31, -1), S(302, -1, -1), S(303, 30, -1) };
	struct sched_pick p[] = { { 30, 0, 0, 0, 0 }, { 31, 1, 0, 0, 0 }, { 32, 2, 0, 0, 0 } };

	(void)state;
	match(seen, 4, p, 3);
	assert_int_equal(p[0].tid, 303);
	assert_int_equal(p[1].tid, 301);
	assert_int_equal(p[2].tid, 0);	/* running, never seen in KVM_RUN: unknown */
	/* Later the threads run (syscall "running"): they keep their vCPUs. */
	struct sched_seen later[] = { S(300, -1, -1), S(301, -1, -1), S(302, -1, -1), S(303, -1, -1) };
	match(later, 4, p, 3);
	assert_int_equal(p[0].tid, 303);
	assert_int_equal(p[0].how, SCHED_HOW_SYSCALL);
	assert_int_equal(p[1].tid, 301);
	assert_int_equal(p[2].tid, 0);
}

static void test_match_replaced(void **state)
{
	/* vCPU 0's thread 401 exits; 405 runs it now, named alike. */
	struct sched_seen seen[] = { S(400, -1, -1), S(402, -1, 1), S(405, -1, 0) };
	struct sched_pick p[] = { { 20, 0, 401, SCHED_HOW_SYSCALL, 0 }, { 21, 1, 402, SCHED_HOW_NAME, 0 } };

	(void)state;
	match(seen, 3, p, 2);
	assert_int_equal(p[0].tid, 405);
	assert_int_equal(p[0].how, SCHED_HOW_NAME);
	assert_int_equal(p[1].tid, 402);
	/* A tid found by syscall moves to another vCPU's fd: it follows. */
	struct sched_seen moved[] = { S(400, -1, -1), S(402, -1, 1), S(405, 21, 0) };
	match(moved, 3, p, 2);
	assert_int_equal(p[1].tid, 405);
	assert_int_equal(p[1].how, SCHED_HOW_SYSCALL);
	assert_int_equal(p[0].tid, 0);	/* its name is 405's, taken by vCPU 1 */
}

static void test_match_ambiguous(void **state)
{
	/* Two threads named "CPU 0/KVM"; two in KVM_RUN on fd 21 (one waits
	 * on the vCPU's mutex): neither vCPU gets a thread. */
	struct sched_seen seen[] = { S(500, -1, 0), S(501, -1, 0), S(502, 21, 1), S(503, 21, -1) };
	struct sched_pick p[] = { { 20, 0, 0, 0, 0 }, { 21, 1, 0, 0, 0 } };

	(void)state;
	match(seen, 4, p, 2);
	assert_int_equal(p[0].tid, 0);
	assert_int_equal(p[1].tid, 0);
	/* Two VMs in one process: vCPU id 0 twice, names say nothing. */
	struct sched_seen two[] = { S(600, -1, 0) };
	struct sched_pick q[] = { { 20, 0, 0, 0, 0 }, { 30, 0, 0, 0, 0 } };
	match(two, 1, q, 2);
	assert_int_equal(q[0].tid, 0);
	assert_int_equal(q[1].tid, 0);
	/* A name-found thread renamed: dropped. */
	struct sched_seen renamed[] = { S(700, -1, -1), S(701, -1, -1) };
	struct sched_pick r[] = { { 20, 0, 701, SCHED_HOW_NAME, 0 } };
	match(renamed, 2, r, 1);
	assert_int_equal(r[0].tid, 0);
}

static void test_match_hint(void **state)
{
	/*
	 * QMP's thread-ids where threads have no telling names: taken when the
	 * thread is the VMM's and unclaimed. vCPU 1's hint is in KVM_RUN on
	 * vCPU 0's fd: vCPU 0 is its, vCPU 1 gets none. A hint of a thread
	 * not there is no thread.
	 */
	struct sched_seen seen[] = { S(800, -1, -1), S(801, -1, -1), S(802, 20, -1) };
	struct sched_pick p[] = { { 20, 0, 0, 0, 801 }, { 21, 1, 0, 0, 802 }, { 22, 2, 0, 0, 899 } };

	(void)state;
	match(seen, 3, p, 3);
	assert_int_equal(p[0].tid, 802);
	assert_int_equal(p[0].how, SCHED_HOW_SYSCALL);
	assert_int_equal(p[1].tid, 0);
	assert_int_equal(p[2].tid, 0);
	/* The plain case: each hint its own vCPU's; a name that disagrees loses. */
	struct sched_seen named[] = { S(900, -1, -1), S(901, -1, 1), S(902, -1, 0) };
	struct sched_pick q[] = { { 20, 0, 0, 0, 901 }, { 21, 1, 0, 0, 902 } };
	match(named, 3, q, 2);
	assert_int_equal(q[0].tid, 901);
	assert_int_equal(q[0].how, SCHED_HOW_HINT);
	assert_int_equal(q[1].tid, 902);
	/* The source changes its mind: the hint found before is dropped. */
	q[0].hint = 0;
	q[1].hint = 0;
	match(named, 3, q, 2);
	assert_int_equal(q[0].tid, 902);	/* by name now */
	assert_int_equal(q[0].how, SCHED_HOW_NAME);
	assert_int_equal(q[1].tid, 901);
}

/* ------------------------------------------------ a fake /proc tree */

#define PID 4194001	/* above the usual pid_max: no CPU clock of a real process */

/* root/<pid>/task/<tid>/<name> := text */
static void write_file(const struct tree *t, const char *text, int tid, const char *name)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%d/task/%d/%s", PID, tid, name);
	tree_write(path, text, strlen(text));
}

static void add_thread(const struct tree *t, int tid, const char *comm, const char *syscall,
		       const char *schedstat)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%d/task/%d", PID, tid);
	assert_int_equal(mkdir(path, 0755), 0);
	write_file(t, comm, tid, "comm");
	write_file(t, syscall, tid, "syscall");
	write_file(t, schedstat, tid, "schedstat");
}

struct fakevm {
	struct source_env env;
	struct host_vm hv, *vms[1];
	struct kvmstats_vcpu c[2], *cp[2];
	struct discover_fd fds[3];
	struct discover_proc p;
};

static void fakevm_init(struct fakevm *f, const struct tree *t)
{
	char path[PATH_MAX];

	memset(f, 0, sizeof(*f));
	f->vms[0] = &f->hv;
	f->env.vms = f->vms;
	f->env.nvms = 1;
	f->hv.pub.pid = PID;
	for (int i = 0; i < 2; i++) {
		f->c[i].id = i;
		f->cp[i] = &f->c[i];
	}
	f->hv.pub.vcpus = f->cp;
	f->hv.pub.nvcpus = 2;
	f->fds[0] = (struct discover_fd){ 3, DISCOVER_FD_VM, -1 };
	f->fds[1] = (struct discover_fd){ 20, DISCOVER_FD_VCPU, 0 };
	f->fds[2] = (struct discover_fd){ 21, DISCOVER_FD_VCPU, 1 };
	f->p = (struct discover_proc){ .pid = PID, .nfds = 3, .fds = f->fds };
	tree_path(t, path, sizeof(path), "%d", PID);
	assert_int_equal(mkdir(path, 0755), 0);
	tree_path(t, path, sizeof(path), "%d/task", PID);
	assert_int_equal(mkdir(path, 0755), 0);
}

static const char *const IDLE = "-1 0x7ffd1c0 0x7f12\n";
static const char *const RUN20 = "16 0x14 0xae80 0x0 0x0 0x0 0x0 0x7ffd1c0 0x7f12\n";

static void test_tree_look_and_sample(void **state)
{
	const struct tree *t = *state;
	struct fakevm f;
	unsigned fds = tree_count_fds();
	struct rlimit rl;

	/* Held fds come after the stats fd budget (4096): room for them. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 8192) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 8192)
			skip();
		rl.rlim_cur = 8192;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	fakevm_init(&f, t);
	add_thread(t, PID, "qemu-system-x86\n", IDLE, "5000 10 3\n");
	/* vCPU 0: no telling name, blocked in KVM_RUN on its fd 20. */
	add_thread(t, 4194002, "worker\n", RUN20, "1000 200 30\n");
	/* vCPU 1: QEMU's name, running. */
	add_thread(t, 4194003, "CPU 1/KVM\n", "running\n", "2000 400 40\n");
	/* A liar: named "CPU 0/KVM", not in KVM_RUN. */
	add_thread(t, 4194004, "CPU 0/KVM\n", IDLE, "9000 900 90\n");

	assert_int_equal(sched_listed(&f.env, &f.hv, &f.p), 0);
	sched_rescan(&f.env, t->root);
	assert_int_equal(f.env.sched_fds, 2);
	sched_sample(&f.env, t->root);
	assert_int_equal(f.c[0].sched.tid, 4194002);
	assert_int_equal(f.c[0].sched.run_ns, 1000);
	assert_int_equal(f.c[0].sched.wait_ns, 200);
	assert_int_equal(f.c[0].sched.timeslices, 30);
	assert_int_equal(f.c[1].sched.tid, 4194003);
	assert_int_equal(f.c[1].sched_total.wait_ns, 400);
	assert_int_equal(f.hv.pub.sched_known, 2);
	assert_int_equal(f.hv.pub.sched_vcpus.run_ns, 3000);
	assert_int_equal(f.hv.pub.sched_vcpus.wait_ns, 600);
	assert_int_equal(f.hv.pub.sched_vcpus.timeslices, 70);

	/* Counters move (the held fds read the file again). */
	write_file(t, "1500 250 35\n", 4194002, "schedstat");
	sched_sample(&f.env, t->root);
	assert_int_equal(f.c[0].sched.run_ns, 1500);
	assert_int_equal(f.hv.pub.sched_vcpus.wait_ns, 650);

	/* Garbled: an error for that vCPU only, its total kept. */
	write_file(t, "1600 260\n", 4194002, "schedstat");
	write_file(t, "2100 410 41\n", 4194003, "schedstat");
	sched_sample(&f.env, t->root);
	assert_int_equal(f.c[0].sched.tid, 0);
	assert_int_equal(f.c[0].sched_total.run_ns, 1500);
	assert_int_equal(f.c[1].sched.tid, 4194003);
	assert_int_equal(f.c[1].sched.run_ns, 2100);
	assert_int_equal(f.hv.pub.sched_known, 1);
	assert_int_equal(f.hv.pub.sched_vcpus.run_ns, 3600);
	write_file(t, "1600 260 36\n", 4194002, "schedstat");
	sched_sample(&f.env, t->root);
	assert_int_equal(f.c[0].sched.tid, 4194002);
	assert_int_equal(f.c[0].sched_total.run_ns, 1600);

	/* vCPU 1's fd goes: its counts stay in the VM's sums. */
	f.p.nfds = 2;
	assert_int_equal(sched_listed(&f.env, &f.hv, &f.p), 0);
	assert_int_equal(f.env.sched_fds, 1);
	sched_sample(&f.env, t->root);
	assert_int_equal(f.hv.pub.sched_vcpus.run_ns, 1600 + 2100);
	assert_int_equal(f.hv.pub.sched_known, 1);

	/* Off: nothing held, nothing published. */
	f.env.no_sched = true;
	sched_rescan(&f.env, t->root);
	assert_null(f.hv.sched);
	assert_int_equal(f.env.sched_fds, 0);
	assert_int_equal(f.c[0].sched.tid, 0);
	assert_int_equal(f.hv.pub.sched_vcpus.run_ns, 0);
	assert_int_equal(tree_count_fds(), fds);
}

static void test_tree_thread_replaced(void **state)
{
	const struct tree *t = *state;
	struct rlimit was, low;
	char path[PATH_MAX];
	struct fakevm f;

	/*
	 * No room for held schedstat fds (RLIMIT_NOFILE): each is opened per
	 * read, so a thread's exit shows here as its file gone.
	 */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
	low = was;
	low.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	fakevm_init(&f, t);
	f.p.nfds = 2;		/* vCPU 0 only */
	add_thread(t, 4194010, "CPU 0/KVM\n", "running\n", "1000 100 10\n");
	assert_int_equal(sched_listed(&f.env, &f.hv, &f.p), 0);
	sched_rescan(&f.env, t->root);
	assert_int_equal(f.env.sched_fds, 0);
	sched_sample(&f.env, t->root);
	assert_int_equal(f.c[0].sched.tid, 4194010);
	assert_int_equal(f.c[0].sched_total.run_ns, 1000);

	/* It exits: unknown until the next rescan, its values kept. */
	tree_path(t, path, sizeof(path), "%d/task/4194010/comm", PID);
	assert_int_equal(unlink(path), 0);
	tree_path(t, path, sizeof(path), "%d/task/4194010/syscall", PID);
	assert_int_equal(unlink(path), 0);
	tree_path(t, path, sizeof(path), "%d/task/4194010/schedstat", PID);
	assert_int_equal(unlink(path), 0);
	tree_path(t, path, sizeof(path), "%d/task/4194010", PID);
	assert_int_equal(rmdir(path), 0);
	sched_sample(&f.env, t->root);
	assert_int_equal(f.c[0].sched.tid, 0);
	assert_int_equal(f.c[0].sched_total.run_ns, 1000);
	assert_int_equal(f.c[0].sched_total.timeslices, 10);

	/* Its replacement: found at the rescan, added to the total. */
	add_thread(t, 4194011, "CPU 0/KVM\n", "running\n", "30 3 1\n");
	sched_rescan(&f.env, t->root);
	sched_sample(&f.env, t->root);
	assert_int_equal(f.c[0].sched.tid, 4194011);
	assert_int_equal(f.c[0].sched.run_ns, 30);
	assert_int_equal(f.c[0].sched_total.run_ns, 1030);
	assert_int_equal(f.c[0].sched_total.wait_ns, 103);
	assert_int_equal(f.hv.pub.sched_vcpus.timeslices, 11);

	/* A tid reused by a thread whose counters start again: added too. */
	write_file(t, "5 1 1\n", 4194011, "schedstat");
	sched_sample(&f.env, t->root);
	assert_int_equal(f.c[0].sched_total.run_ns, 1035);
	sched_detach(&f.env, &f.hv);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_tree_other_time(void **state)
{
	const struct tree *t = *state;
	char path[PATH_MAX];
	struct fakevm f;
	uint64_t before, after, vcpus = 1000000;	/* 1 ms on the fake vCPU */
	volatile unsigned long spin = 0;

	/*
	 * This process as the VMM (its CPU clock is what sched.c reads): its
	 * other time is that clock less the vCPU thread's run time, read
	 * between two readings of the clock here.
	 */
	fakevm_init(&f, t);
	f.hv.pub.pid = getpid();
	f.p.pid = getpid();
	f.p.nfds = 2;
	tree_path(t, path, sizeof(path), "%d", (int)getpid());
	assert_int_equal(mkdir(path, 0755), 0);
	tree_path(t, path, sizeof(path), "%d/task", (int)getpid());
	assert_int_equal(mkdir(path, 0755), 0);
	tree_path(t, path, sizeof(path), "%d/task/4194020", (int)getpid());
	assert_int_equal(mkdir(path, 0755), 0);
	tree_path(t, path, sizeof(path), "%d/task/4194020/comm", (int)getpid());
	tree_write(path, "CPU 0/KVM\n", 10);
	tree_path(t, path, sizeof(path), "%d/task/4194020/syscall", (int)getpid());
	tree_write(path, "running\n", 8);
	tree_path(t, path, sizeof(path), "%d/task/4194020/schedstat", (int)getpid());
	tree_write(path, "1000000 5 1\n", 12);
	for (unsigned long i = 0; i < 20000000; i++)
		spin++;			/* more CPU time than the vCPU's 1 ms */
	assert_int_equal(sched_listed(&f.env, &f.hv, &f.p), 0);
	sched_rescan(&f.env, t->root);
	before = cpu_ns();
	sched_sample(&f.env, t->root);
	after = cpu_ns();
	assert_int_equal(f.c[0].sched.tid, 4194020);
	assert_true(before > vcpus);
	assert_true(f.hv.pub.other_run_ns >= before - vcpus);
	assert_true(f.hv.pub.other_run_ns <= after - vcpus);
	sched_detach(&f.env, &f.hv);
}

static int setup(void **state)
{
	return tree_setup(state, "sched");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedstat_parse),
		cmocka_unit_test(test_syscall_parse),
		cmocka_unit_test(test_comm_parse),
		cmocka_unit_test(test_match_names),
		cmocka_unit_test(test_match_syscall_beats_names),
		cmocka_unit_test(test_match_no_names),
		cmocka_unit_test(test_match_replaced),
		cmocka_unit_test(test_match_ambiguous),
		cmocka_unit_test(test_match_hint),
		cmocka_unit_test_setup_teardown(test_tree_look_and_sample, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_tree_thread_replaced, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_tree_other_time, setup, tree_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
