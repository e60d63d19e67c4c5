/* SPDX-License-Identifier: MIT */
/*
 * test_fdfair.c: the stats fd budget shared among VMMs, through the whole
 * core (host_rescan(), host_sample(), scan_news()) on a fake /proc tree.
 *
 * Only the VMM can make a stats fd, and pidfd_getfd() copies only real
 * ones, so this binary brings its own acquire layer: it defines every
 * function of common/acquire.c (the linker then never takes that member of
 * libkvmstats.a). A "pidfd" is an eventfd, and a "stats fd" is a real fd
 * open on a copy of the golden blob tests/fixtures/golden/vcpu.bin (vm.bin
 * for the VM-wide one) whose values the test sets. So every fd the core
 * holds is one this process holds: /proc/self/fd tells how many.
 *
 * The integration test tests/integration/test_fdfair.py does the same on
 * real KVM with testvm where /dev/kvm exists.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "acquire.h"
#include "kvmstats.h"
#include "news.h"
#include "tree.h"

#define MAX_LINES 64
#define MAX_PIDFDS 4096

struct fake {
	struct tree *tree;
	char proc[128];		/* the fake /proc */
	char stats[128];	/* <pid>-<vcpu>.bin, <pid>-vm.bin */
	uint8_t *vcpu_blob, *vm_blob;
	size_t vcpu_len, vm_len;
	off_t exits_at;		/* file offset of the vCPU stat "exits" */
	char *lines[MAX_LINES];	/* what scan_news() said */
	size_t nlines;
};

/* ------------------------------------------------------ the acquire layer */

static pid_t pid_of_pidfd[MAX_PIDFDS];
static int emfile_next;		/* so many copies fail with EMFILE */
static const char *stats_dir, *proc_dir;

int acquire_pidfd(const char *proc_root, pid_t pid, uint64_t starttime)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	(void)proc_root;
	(void)starttime;
	if (fd < 0)
		return -errno;
	assert_true(fd < MAX_PIDFDS);
	pid_of_pidfd[fd] = pid;
	return fd;
}

int acquire_stats_fd(int pidfd, int target_fd, int vcpu)
{
	char path[PATH_MAX], link[64], want[64];
	ssize_t n;
	int fd;

	assert_true(pidfd >= 0 && pidfd < MAX_PIDFDS && pid_of_pidfd[pidfd] > 0);
	if (emfile_next > 0) {
		emfile_next--;
		return -EMFILE;
	}
	/* As the kernel and acquire.c check: the VMM's fd target_fd, of that kind. */
	snprintf(path, sizeof(path), "%s/%d/fd/%d", proc_dir, (int)pid_of_pidfd[pidfd],
		 target_fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -EBADF;
	link[n] = '\0';
	if (vcpu < 0)
		snprintf(want, sizeof(want), "anon_inode:kvm-vm-stats");
	else
		snprintf(want, sizeof(want), "anon_inode:kvm-vcpu-stats:%d", vcpu);
	if (strcmp(link, want) != 0)
		return -ESTALE;
	if (vcpu < 0)
		snprintf(path, sizeof(path), "%s/%d-vm.bin", stats_dir, (int)pid_of_pidfd[pidfd]);
	else
		snprintf(path, sizeof(path), "%s/%d-%d.bin", stats_dir,
			 (int)pid_of_pidfd[pidfd], vcpu);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -EBADF : -errno;
	return fd;
}

int acquire_exited(int pidfd)
{
	(void)pidfd;
	return 0;
}

int acquire_raise_nofile(void)
{
	return 1024;
}

/* ------------------------------------------------------------- the host */

static void load(const char *file, uint8_t **ret, size_t *ret_len)
{
	const char *dir = getenv("KVMSTATS_FIXTURES");
	char path[PATH_MAX];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/golden/%s", dir ? dir : "tests/fixtures", file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	*ret = malloc((size_t)st.st_size);
	assert_non_null(*ret);
	assert_int_equal(read(fd, *ret, (size_t)st.st_size), st.st_size);
	*ret_len = (size_t)st.st_size;
	close(fd);
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct statsfd *s;
	void *t;
	int d;

	if (!f || tree_setup(&t, "fdfair") < 0)
		return -1;
	f->tree = t;
	tree_path(f->tree, f->proc, sizeof(f->proc), "proc");
	tree_path(f->tree, f->stats, sizeof(f->stats), "stats");
	if (mkdir(f->proc, 0755) < 0 || mkdir(f->stats, 0755) < 0)
		return -1;
	stats_dir = f->stats;
	proc_dir = f->proc;
	load("vcpu.bin", &f->vcpu_blob, &f->vcpu_len);
	load("vm.bin", &f->vm_blob, &f->vm_len);
	/* Where "exits" lies, from the blob's own descriptors. */
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/probe.bin", f->stats);
	tree_write(path, f->vcpu_blob, f->vcpu_len);
	assert_int_equal(statsfd_open(open(path, O_RDONLY | O_CLOEXEC), NULL, &s), 0);
	d = schema_find(s->schema, "exits");
	assert_true(d >= 0);
	f->exits_at = s->schema->data_offset + 8 * (off_t)s->schema->desc[d].index;
	statsfd_close(s);
	unlink(path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;
	void *t = f->tree;

	for (size_t i = 0; i < f->nlines; i++)
		free(f->lines[i]);
	free(f->vcpu_blob);
	free(f->vm_blob);
	free(f);
	return tree_teardown(&t);
}

static void set_exits(const struct fake *f, pid_t pid, int vcpu, uint64_t v)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%d-%d.bin", f->stats, (int)pid, vcpu);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, 8, f->exits_at), 8);
	close(fd);
}

/* The exits a vCPU of the fake VMM pid has made at generation gen. */
static uint64_t exits(pid_t pid, int vcpu, unsigned gen)
{
	return (uint64_t)pid * 100000 + (uint64_t)vcpu * 100 + gen;
}

/*
 * A VMM in the fake /proc: comm name, fd 3 its VM, fd 4 its VM-wide stats
 * (vm_stats), fds 10 + N its vCPU stats fds, each with exits(pid, N, 0).
 */
static void add_vmm(const struct fake *f, pid_t pid, const char *name, int vcpus,
		    bool vm_stats)
{
	char path[PATH_MAX], target[64], line[512];

	snprintf(path, sizeof(path), "%s/%d", f->proc, (int)pid);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/%d/fd", f->proc, (int)pid);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(line, sizeof(line),
		 "%d (%s) S 1 %d %d 0 -1 4194560 51234 0 12 0 1520 733 0 0 20 0 7 0 "
		 "4242 4631375872 265423 18446744073709551615 1 1 0 0 0 0 268444224 "
		 "4096 17987 0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		 (int)pid, name, (int)pid, (int)pid);
	snprintf(path, sizeof(path), "%s/%d/stat", f->proc, (int)pid);
	tree_write(path, line, strlen(line));
	/* An empty command line: the VM goes by its comm. */
	snprintf(path, sizeof(path), "%s/%d/cmdline", f->proc, (int)pid);
	tree_write(path, "", 0);
	snprintf(path, sizeof(path), "%s/%d/fd/3", f->proc, (int)pid);
	assert_int_equal(symlink("anon_inode:kvm-vm", path), 0);
	if (vm_stats) {
		snprintf(path, sizeof(path), "%s/%d/fd/4", f->proc, (int)pid);
		assert_int_equal(symlink("anon_inode:kvm-vm-stats", path), 0);
		snprintf(path, sizeof(path), "%s/%d-vm.bin", f->stats, (int)pid);
		tree_write(path, f->vm_blob, f->vm_len);
	}
	for (int n = 0; n < vcpus; n++) {
		snprintf(path, sizeof(path), "%s/%d/fd/%d", f->proc, (int)pid, 10 + n);
		snprintf(target, sizeof(target), "anon_inode:kvm-vcpu-stats:%d", n);
		assert_int_equal(symlink(target, path), 0);
		snprintf(path, sizeof(path), "%s/%d-%d.bin", f->stats, (int)pid, n);
		tree_write(path, f->vcpu_blob, f->vcpu_len);
		set_exits(f, pid, n, exits(pid, n, 0));
	}
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* The VMM leaves /proc (its stats files stay: the test still reads them). */
static void remove_vmm(const struct fake *f, pid_t pid)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%d", f->proc, (int)pid);
	assert_int_equal(nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

/* Stats fds this process holds: links of /proc/self/fd into the stats dir. */
static size_t held_fds(const struct fake *f)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0, len = strlen(f->stats);

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[PATH_MAX], link[PATH_MAX];
		ssize_t l;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l > 0 && (link[l] = '\0', strncmp(link, f->stats, len) == 0))
			n++;
	}
	closedir(d);
	return n;
}

static void say(const char *line, void *ctx)
{
	struct fake *f = ctx;

	assert_true(f->nlines < MAX_LINES);
	f->lines[f->nlines++] = strdup(line);
}

/* Lines said since line from that mention needle. */
static size_t said_with(const struct fake *f, size_t from, const char *needle)
{
	size_t n = 0;

	for (size_t i = from; i < f->nlines; i++)
		if (strstr(f->lines[i], needle))
			n++;
	return n;
}

static struct kvmstats_vm *vm_of(struct kvmstats_host *host, pid_t pid)
{
	for (size_t i = 0; i < host_nvms(host); i++)
		if (host_vm(host, i)->pid == pid)
			return host_vm(host, i);
	fail_msg("no VM of pid %d", (int)pid);
	return NULL;
}

static size_t vcpus_with_fd(const struct kvmstats_vm *vm)
{
	size_t n = 0;

	for (size_t i = 0; i < vm->nvcpus; i++)
		n += vm->vcpus[i]->stats->fd >= 0;
	return n;
}

/* host_vcpu_totals() of "exits": what every front end reports VM-wide. */
static uint64_t total_exits(const struct kvmstats_vm *vm)
{
	const struct kvmstats_schema *s = vm->vcpus[0]->stats->schema;
	uint64_t *v = calloc(s->num_values, sizeof(*v)), t;
	int d = schema_find(s, "exits");

	assert_non_null(v);
	assert_true(d >= 0);
	assert_int_equal(host_vcpu_totals(vm, s, v), (int)vm->nvcpus);
	t = v[s->desc[d].index];
	free(v);
	return t;
}

static uint64_t exits_of(const struct kvmstats_vcpu *c)
{
	const struct kvmstats_schema *s = c->stats->schema;

	return c->stats->cur[s->desc[schema_find(s, "exits")].index];
}

static int rescan(struct fake *f, struct kvmstats_host *host, struct scan_said *said,
		  struct kvmstats_scan_report *rep)
{
	int r = host_rescan(host, rep);

	assert_true(r >= 0);
	scan_news(said, r, rep, host, say, f);
	assert_true(host_sample(host) >= 0);
	return r;
}

enum { BIG = 2001, S1 = 2002, S2 = 2003, S3 = 2004 };

/*
 * Budget 64: a VMM of 60 vCPUs alone takes 60. Three of 4 vCPUs come:
 * each gets all 4 at the rescan that finds them, the big one gives back
 * its 8 highest vCPUs, is said once, and its total does not go back. As
 * the small ones leave, it takes its fds again and its values go on.
 */
static void test_late_vmms_get_their_share(void **state)
{
	struct fake *f = *state;
	struct kvmstats_sources src = { .max_fds = 64 };
	struct kvmstats_scan_report rep;
	struct scan_said said = { 0 };
	struct kvmstats_host *host;
	struct kvmstats_vm *big;
	size_t before = held_fds(f), from;
	uint64_t total, want;

	add_vmm(f, BIG, "big", 60, false);
	assert_int_equal(host_new(f->proc, false, NULL, NULL, &host), 0);
	assert_int_equal(host_set_sources(host, &src), 0);
	assert_int_equal(rescan(f, host, &said, &rep), 1);
	big = vm_of(host, BIG);
	assert_int_equal(vcpus_with_fd(big), 60);
	assert_int_equal(held_fds(f) - before, 60);
	assert_int_equal(rep.vms_over, 0);
	assert_int_equal(f->nlines, 0);
	want = 0;
	for (int n = 0; n < 60; n++)
		want += exits(BIG, n, 0);
	assert_int_equal(total = total_exits(big), want);

	/* The big one goes on counting; three small VMMs come. */
	for (int n = 0; n < 60; n++)
		set_exits(f, BIG, n, exits(BIG, n, 1));
	add_vmm(f, S1, "small1", 4, false);
	add_vmm(f, S2, "small2", 4, false);
	add_vmm(f, S3, "small3", 4, false);
	from = f->nlines;
	assert_int_equal(rescan(f, host, &said, &rep), 4);
	big = vm_of(host, BIG);
	assert_int_equal(rep.fd_budget, 64);
	assert_int_equal(rep.fd_vmms, 4);
	assert_int_equal(rep.vms_over, 1);
	assert_int_equal(rep.fds_over, 8);
	assert_int_equal(rep.over[0].pid, BIG);
	assert_int_equal(rep.over[0].holds, 60);
	assert_int_equal(rep.over[0].share, 52);
	assert_int_equal(rep.over[0].taken, 52);
	assert_int_equal(held_fds(f) - before, 64);
	/* Every small VM fully read, values exact. */
	for (pid_t p = S1; p <= S3; p++) {
		struct kvmstats_vm *vm = vm_of(host, p);

		assert_int_equal(vm->nvcpus, 4);
		assert_int_equal(vcpus_with_fd(vm), 4);
		for (int n = 0; n < 4; n++) {
			assert_int_equal(vm->vcpus[n]->stats->error, 0);
			assert_int_equal(exits_of(vm->vcpus[n]), exits(p, n, 0));
		}
	}
	/* The big one keeps 60 vCPUs: 52 read, its highest 8 with their last values. */
	assert_int_equal(big->nvcpus, 60);
	for (int n = 0; n < 60; n++) {
		const struct kvmstats_vcpu *c = big->vcpus[n];

		assert_int_equal(c->id, n);
		assert_int_equal(c->stats->fd >= 0, n < 52);
		assert_int_equal(c->stats->error, n < 52 ? 0 : -EMFILE);
		assert_int_equal(exits_of(c), exits(BIG, n, n < 52 ? 1 : 0));
	}
	assert_true(total_exits(big) >= total);
	total = total_exits(big);
	/* Said once, naming it, how many and why. */
	assert_int_equal(f->nlines - from, 1);
	assert_non_null(strstr(f->lines[from], "VM big (pid 2001): 8 of the 60 stats fds"));
	assert_non_null(strstr(f->lines[from], "budget of 64 stats fds is shared fairly "
				"among 4 VMMs and its share is 52"));

	/* Nothing changes: nothing is said, taken or given. */
	from = f->nlines;
	rescan(f, host, &said, &rep);
	assert_int_equal(f->nlines, from);
	assert_int_equal(held_fds(f) - before, 64);
	assert_int_equal(total_exits(big), total);

	/* One small VMM leaves: the big one takes 4 back; values go on. */
	for (int n = 0; n < 60; n++)
		set_exits(f, BIG, n, exits(BIG, n, 2));
	remove_vmm(f, S1);
	rescan(f, host, &said, &rep);
	big = vm_of(host, BIG);
	assert_int_equal(rep.over[0].share, 56);
	assert_int_equal(vcpus_with_fd(big), 56);
	assert_int_equal(held_fds(f) - before, 64);
	for (int n = 0; n < 60; n++)
		assert_int_equal(exits_of(big->vcpus[n]), exits(BIG, n, n < 56 ? 2 : 0));
	/* vCPU 52, last read at gen 0, taken back at gen 2: its change spans the gap. */
	{
		const struct statsfd *s = big->vcpus[52]->stats;
		uint32_t k = s->schema->desc[schema_find(s->schema, "exits")].index;

		assert_int_equal(s->error, 0);
		assert_int_equal(s->cur[k] - s->prev[k], 2);
	}
	assert_true(total_exits(big) >= total);
	total = total_exits(big);
	assert_int_equal(said_with(f, from, "pid 2001"), 1);
	assert_non_null(strstr(f->lines[f->nlines - 1], "4 of the 60 stats fds"));

	/* All leave: every fd fits, said once, no VMM named. */
	remove_vmm(f, S2);
	remove_vmm(f, S3);
	from = f->nlines;
	rescan(f, host, &said, &rep);
	assert_int_equal(rep.vms_over, 0);
	assert_int_equal(vcpus_with_fd(big), 60);
	assert_int_equal(held_fds(f) - before, 60);
	for (int n = 0; n < 60; n++) {
		assert_int_equal(big->vcpus[n]->stats->error, 0);
		assert_int_equal(exits_of(big->vcpus[n]), exits(BIG, n, 2));
	}
	assert_true(total_exits(big) >= total);
	assert_int_equal(f->nlines - from, 1);
	assert_non_null(strstr(f->lines[from], "fits in the fd budget again"));
	assert_int_equal(said_with(f, from, "pid"), 0);

	host_free(host);
	assert_int_equal(held_fds(f), before);
}

/*
 * The VM-wide stats fd is given back last and taken first; more VMMs than
 * fds leave the last ones with nothing, and a bigger budget brings all back.
 */
static void test_vm_wide_fd_kept_over_vcpus(void **state)
{
	struct fake *f = *state;
	struct kvmstats_sources src = { .max_fds = 4 };
	struct kvmstats_scan_report rep;
	struct scan_said said = { 0 };
	struct kvmstats_host *host;
	struct kvmstats_vm *a, *b;
	size_t before = held_fds(f);
	char path[PATH_MAX];

	add_vmm(f, 3001, "a", 3, true);
	add_vmm(f, 3002, "b", 3, true);
	/* A second fd of a's vCPU 0 and of its VM stats: counted once. */
	tree_path(f->tree, path, sizeof(path), "proc/3001/fd/20");
	assert_int_equal(symlink("anon_inode:kvm-vcpu-stats:0", path), 0);
	tree_path(f->tree, path, sizeof(path), "proc/3001/fd/21");
	assert_int_equal(symlink("anon_inode:kvm-vm-stats", path), 0);
	assert_int_equal(host_new(f->proc, false, NULL, NULL, &host), 0);
	assert_int_equal(host_set_sources(host, &src), 0);
	rescan(f, host, &said, &rep);
	a = vm_of(host, 3001);
	b = vm_of(host, 3002);
	/* Shares 2 and 2: the VM-wide fd and vCPU 0 each. */
	assert_int_equal(held_fds(f) - before, 4);
	assert_int_equal(rep.vms_over, 2);
	assert_int_equal(rep.fds_over, 4);
	for (int i = 0; i < 2; i++) {
		const struct kvmstats_vm *vm = i ? b : a;

		assert_int_equal(vm->vm_source, FROM_FD);
		assert_true(vm->vm_stats->fd >= 0);
		assert_int_equal(vm->vm_stats->error, 0);
		assert_int_equal(vm->nvcpus, 1);
		assert_int_equal(vm->vcpus[0]->id, 0);
	}
	assert_int_equal(f->nlines, 2);

	/* Budget 2: each keeps its VM-wide fd and gives vCPU 0 back. */
	src.max_fds = 2;
	assert_int_equal(host_set_sources(host, &src), 0);
	rescan(f, host, &said, &rep);
	assert_int_equal(held_fds(f) - before, 2);
	assert_true(a->vm_stats->fd >= 0 && b->vm_stats->fd >= 0);
	assert_int_equal(vcpus_with_fd(a) + vcpus_with_fd(b), 0);
	assert_int_equal(a->vcpus[0]->stats->error, -EMFILE);

	/* Budget 1, two VMMs: the first keeps its VM-wide fd, the other has none. */
	src.max_fds = 1;
	assert_int_equal(host_set_sources(host, &src), 0);
	rescan(f, host, &said, &rep);
	assert_int_equal(held_fds(f) - before, 1);
	assert_int_equal((a->vm_stats->fd >= 0) + (b->vm_stats->fd >= 0), 1);
	assert_int_equal(rep.vms_over, 2);
	assert_int_equal(rep.fds_over, 7);

	/* A VM-wide stats fd that comes late takes the place of a vCPU's. */
	add_vmm(f, 3003, "late", 2, false);
	src.max_fds = 8;	/* demands 4, 4, 2: shares 3, 3, 2 */
	assert_int_equal(host_set_sources(host, &src), 0);
	rescan(f, host, &said, &rep);
	assert_int_equal(held_fds(f) - before, 8);
	assert_int_equal(vcpus_with_fd(vm_of(host, 3003)), 2);
	tree_path(f->tree, path, sizeof(path), "proc/3003/fd/4");
	assert_int_equal(symlink("anon_inode:kvm-vm-stats", path), 0);
	tree_path(f->tree, path, sizeof(path), "stats/3003-vm.bin");
	tree_write(path, f->vm_blob, f->vm_len);
	rescan(f, host, &said, &rep);	/* demands 4, 4, 3: shares 3, 3, 2 */
	assert_int_equal(held_fds(f) - before, 8);
	assert_int_equal(vm_of(host, 3003)->vm_source, FROM_FD);
	assert_true(vm_of(host, 3003)->vm_stats->fd >= 0);
	assert_int_equal(vcpus_with_fd(vm_of(host, 3003)), 1);
	assert_int_equal(vm_of(host, 3003)->vcpus[0]->stats->fd >= 0, 1);
	remove_vmm(f, 3003);

	/* Budget 8: everything again, in place. */
	src.max_fds = 8;
	assert_int_equal(host_set_sources(host, &src), 0);
	rescan(f, host, &said, &rep);
	assert_int_equal(held_fds(f) - before, 8);
	assert_int_equal(rep.vms_over, 0);
	assert_int_equal(a->nvcpus + b->nvcpus, 6);
	assert_int_equal(vcpus_with_fd(a) + vcpus_with_fd(b), 6);
	assert_int_equal(a->vm_stats->error + b->vm_stats->error, 0);
	assert_non_null(strstr(f->lines[f->nlines - 1], "fits in the fd budget again"));

	host_free(host);
	assert_int_equal(held_fds(f), before);
}

/* EMFILE from the kernel stops the rescan's takes; they wait, said as such. */
static void test_open_file_limit(void **state)
{
	struct fake *f = *state;
	struct kvmstats_sources src = { .max_fds = 64 };
	struct kvmstats_scan_report rep;
	struct scan_said said = { 0 };
	struct kvmstats_host *host;
	size_t before = held_fds(f);

	add_vmm(f, 4001, "c", 3, false);
	assert_int_equal(host_new(f->proc, false, NULL, NULL, &host), 0);
	assert_int_equal(host_set_sources(host, &src), 0);
	emfile_next = 1;
	rescan(f, host, &said, &rep);
	assert_int_equal(vm_of(host, 4001)->nvcpus, 0);
	assert_int_equal(rep.vms_over, 1);
	assert_int_equal(rep.over[0].taken, 0);
	assert_int_equal(rep.over[0].share, 3);
	assert_int_equal(f->nlines, 1);
	assert_non_null(strstr(f->lines[0], "VM c (pid 4001): 3 of the 3 stats fds"));
	assert_non_null(strstr(f->lines[0], "open file limit"));
	rescan(f, host, &said, &rep);
	assert_int_equal(vcpus_with_fd(vm_of(host, 4001)), 3);
	assert_int_equal(held_fds(f) - before, 3);
	host_free(host);
	assert_int_equal(held_fds(f), before);
}

/*
 * A given-back fd the VMM closed is no longer wanted (its vCPU keeps its
 * last values); one that cannot be copied back is said like any fd that
 * cannot be taken, and taken when it can.
 */
static void test_given_back_then_gone(void **state)
{
	struct fake *f = *state;
	struct kvmstats_sources src = { .max_fds = 4 };
	struct kvmstats_scan_report rep;
	struct scan_said said = { 0 };
	struct kvmstats_host *host;
	struct kvmstats_vm *vm;
	char path[PATH_MAX], keep[PATH_MAX];
	size_t before = held_fds(f);

	add_vmm(f, 5001, "d", 4, false);
	assert_int_equal(host_new(f->proc, false, NULL, NULL, &host), 0);
	assert_int_equal(host_set_sources(host, &src), 0);
	rescan(f, host, &said, &rep);
	vm = vm_of(host, 5001);
	assert_int_equal(vcpus_with_fd(vm), 4);
	src.max_fds = 2;
	assert_int_equal(host_set_sources(host, &src), 0);
	rescan(f, host, &said, &rep);
	assert_int_equal(vcpus_with_fd(vm), 2);
	assert_int_equal(rep.fds_over, 2);

	/* The VMM closes vCPU 3's stats fd: 3 wanted, 2 held. */
	tree_path(f->tree, path, sizeof(path), "proc/5001/fd/13");
	assert_int_equal(unlink(path), 0);
	rescan(f, host, &said, &rep);
	assert_int_equal(rep.vms_over, 1);
	assert_int_equal(rep.over[0].holds, 3);
	assert_int_equal(vm->vcpus[3]->stats->error, -EBADF);
	assert_int_equal(exits_of(vm->vcpus[3]), exits(5001, 3, 0));

	/* vCPU 2 cannot be copied back (twice in a row): said as unread. */
	snprintf(path, sizeof(path), "%s/5001-2.bin", f->stats);
	snprintf(keep, sizeof(keep), "%s/5001-2.keep", f->stats);
	assert_int_equal(rename(path, keep), 0);
	src.max_fds = 4;
	assert_int_equal(host_set_sources(host, &src), 0);
	rescan(f, host, &said, &rep);
	assert_int_equal(vcpus_with_fd(vm), 2);
	rescan(f, host, &said, &rep);
	assert_int_equal(rep.vms_unread, 1);
	assert_int_equal(rep.fds_unread, 1);
	assert_int_equal(rep.unread_error, -EBADF);
	assert_int_equal(rename(keep, path), 0);
	rescan(f, host, &said, &rep);
	assert_int_equal(rep.vms_unread, 0);
	assert_int_equal(rep.vms_over, 0);
	assert_int_equal(vcpus_with_fd(vm), 3);
	assert_int_equal(vm->nvcpus, 4);
	assert_int_equal(held_fds(f) - before, 3);
	assert_int_equal(vm->vcpus[2]->stats->error, 0);
	assert_int_equal(vm->vcpus[3]->stats->error, -EBADF);

	host_free(host);
	assert_int_equal(held_fds(f), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_late_vmms_get_their_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_wide_fd_kept_over_vcpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_file_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_given_back_then_gone, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
