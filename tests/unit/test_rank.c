/* SPDX-License-Identifier: MIT */
/*
 * test_rank.c: one rank, in one place. The order of the table in
 * sources.c decides which source may take a VM's VM-wide stats and each
 * vCPU (source_may_take_vm/vcpu), and a better source that comes later
 * takes over in one step: the old holder goes with only what it held for
 * that slot (drop_vm), never with the rest of its state (detach).
 *
 * The takeovers run the real sources on stand-ins, without /dev/kvm: a
 * fake debugfs tree under mkdtemp() (the format of test_debugfs.c), and
 * the golden stats blobs (tests/fixtures/golden, captured from real stats
 * fds) opened by this process, which plays the VMM: pidfd_getfd() copies
 * its own fds, and readlink() is interposed below so that acquire.c sees
 * a copy of vm.bin as "anon_inode:kvm-vm-stats" and of vcpu.bin as
 * "anon_inode:kvm-vcpu-stats:0", as KVM names its stats fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "sources/source.h"
#include "tree.h"

#define VM_FD 11	/* the kvm-vm fd number the debugfs directory is named by */

/* ----------------------------------------------------------- readlink() */

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

/* The real link, except that a golden blob reads as the KVM anon inode. */
ssize_t readlink(const char *restrict path, char *restrict buf, size_t size)
{
	char real[PATH_MAX];
	const char *link = real;
	long n = syscall(SYS_readlinkat, AT_FDCWD, path, real, sizeof(real) - 1);
	size_t len;

	if (n < 0)
		return -1;
	real[n] = '\0';
	if (ends_with(real, "/golden/vm.bin"))
		link = "anon_inode:kvm-vm-stats";
	else if (ends_with(real, "/golden/vcpu.bin"))
		link = "anon_inode:kvm-vcpu-stats:0";
	len = strlen(link);
	if (len > size)
		len = size;
	memcpy(buf, link, len);
	return (ssize_t)len;
}

/* -------------------------------------------------------------- fixture */

struct fixture {
	struct tree *debugfs;
	struct source_env env;
	struct host_vm *hv;
	int vm_blob, vcpu_blob;	/* "the VMM's" stats fds */
	unsigned fds_before;
};

static int open_golden(const char *name)
{
	const char *dir = getenv("KVMSTATS_FIXTURES");
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/golden/%s", dir ? dir : "tests/fixtures", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static void make_file(const struct tree *t, const char *rel, mode_t mode, const char *text)
{
	char path[PATH_MAX];
	int fd;

	tree_path(t, path, sizeof(path), "%s", rel);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	void *tree;
	char rel[64];

	assert_non_null(f);
	f->fds_before = tree_count_fds();
	f->vm_blob = open_golden("vm.bin");
	f->vcpu_blob = open_golden("vcpu.bin");
	if (f->vm_blob < 0 || f->vcpu_blob < 0) {
		fprintf(stderr, "test_rank: no golden blobs (make golden; KVMSTATS_FIXTURES)\n");
		return -1;
	}
	assert_int_equal(tree_setup(&tree, "rank"), 0);
	f->debugfs = tree;
	/* KVM's per-VM directory: VM stats, and vCPU stats summed (0444: instant). */
	snprintf(rel, sizeof(rel), "%d-%d", (int)getpid(), VM_FD);
	{
		char path[PATH_MAX];

		tree_path(f->debugfs, path, sizeof(path), "%s", rel);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	snprintf(rel, sizeof(rel), "%d-%d/pages_4k", (int)getpid(), VM_FD);
	make_file(f->debugfs, rel, 0444, "7\n");
	snprintf(rel, sizeof(rel), "%d-%d/mmu_unsync", (int)getpid(), VM_FD);
	make_file(f->debugfs, rel, 0444, "0\n");
	snprintf(rel, sizeof(rel), "%d-%d/exits", (int)getpid(), VM_FD);
	make_file(f->debugfs, rel, 0644, "12\n");

	assert_int_equal(statsfd_cache_new(&f->env.cache), 0);
	assert_int_equal(statsfd_cache_new(&f->env.vcache), 0);
	f->env.debugfs = strdup(f->debugfs->root);
	assert_non_null(f->env.debugfs);

	f->hv = calloc(1, sizeof(*f->hv));
	assert_non_null(f->hv);
	f->hv->nfds = -1;
	f->hv->pub.pid = getpid();
	f->hv->pub.vm_fd = VM_FD;
	f->hv->pub.nvms = 1;
	f->hv->pub.pidfd = pidfd_open(getpid(), 0);
	assert_true(f->hv->pub.pidfd >= 0);
	f->env.vms = &f->hv;
	f->env.nvms = f->env.cap = 1;
	*state = f;
	return 0;
}

/* What host_free_vm() and host_free() do. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_vm *vm = &f->hv->pub;

	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->detach)
			sources[i]->detach(&f->env, f->hv);
	for (size_t i = 0; i < vm->nvcpus; i++) {
		statsfd_close(vm->vcpus[i]->stats);
		free(vm->vcpus[i]);
	}
	free(vm->vcpus);
	statsfd_close(vm->vm_stats);
	close(vm->pidfd);
	free(f->hv);
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->cleanup)
			sources[i]->cleanup(&f->env);
	free(f->env.debugfs);
	statsfd_cache_free(f->env.cache);
	statsfd_cache_free(f->env.vcache);
	close(f->vm_blob);
	close(f->vcpu_blob);
	tree_teardown((void **)&f->debugfs);
	/* Every copy of a stats fd and the debugfs files were closed. */
	assert_int_equal(tree_count_fds(), f->fds_before);
	free(f);
	return 0;
}

/* One rescan of the sources, as rescan.c runs it, with the VMM holding fds. */
static void rescan(struct fixture *f, const struct discover_fd *fds, size_t nfds,
		   struct kvmstats_scan_report *rep)
{
	struct discover_proc p = {
		.pid = getpid(), .comm = "testvm", .nfds = nfds,
		.fds = (struct discover_fd *)fds,
	};

	memset(rep, 0, sizeof(*rep));
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->prepare)
			sources[i]->prepare(&f->env, rep);
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->listed)
			sources[i]->listed(&f->env, f->hv, &p, rep);
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->attach)
			sources[i]->attach(&f->env, rep);
}

/* One sample, as host_sample() runs it. */
static void sample(struct fixture *f)
{
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->sample)
			assert_true(sources[i]->sample(&f->env) >= 0);
}

/* What host_announce() resets once it has told the front ends. */
static void announced(struct fixture *f)
{
	f->hv->changed = false;
	f->env.changes = 0;
}

/* No name is served by the VM-wide holder and a vCPU holder at once. */
static void assert_no_stat_twice(const struct kvmstats_vm *vm)
{
	const struct kvmstats_schema *s = vm->vm_stats ? vm->vm_stats->schema : NULL;

	for (uint32_t d = 0; s && d < s->num_desc; d++)
		for (size_t i = 0; i < vm->nvcpus; i++)
			assert_true(schema_find(vm->vcpus[i]->stats->schema, s->desc[d].name) < 0);
}

/* ----------------------------------------------------------------- rank */

static void test_rank_is_the_table_order(void **state)
{
	struct host_vm hv = { 0 };
	struct kvmstats_vcpu c = { 0 };

	(void)state;
	for (size_t i = 0; i < nsources; i++) {
		assert_int_equal(source_rank(sources[i]->id), i);
		assert_ptr_equal(source_of(sources[i]->id), sources[i]);
	}
	assert_int_equal(source_rank(FROM_NONE), nsources);
	assert_null(source_of(FROM_NONE));
	assert_string_equal(host_source_name(FROM_NONE), "none");

	/* Every pair: a source takes from nobody and from those after it only. */
	for (size_t i = 0; i < nsources; i++) {
		hv.pub.vm_source = FROM_NONE;
		assert_true(source_may_take_vm(&hv, sources[i]));
		assert_true(source_may_take_vcpu(NULL, sources[i]));
		c.source = FROM_NONE;
		assert_true(source_may_take_vcpu(&c, sources[i]));
		for (size_t j = 0; j < nsources; j++) {
			hv.pub.vm_source = sources[j]->id;
			c.source = sources[j]->id;
			assert_int_equal(source_may_take_vm(&hv, sources[i]), i < j);
			assert_int_equal(source_may_take_vcpu(&c, sources[i]), i < j);
		}
	}
}

static void test_rank_named_cases(void **state)
{
	struct host_vm hv = { 0 };
	struct kvmstats_vcpu c = { .source = FROM_QMP };

	(void)state;
	/* A VM stats fd the VMM opens late takes over from debugfs, QMP, libvirt. */
	hv.pub.vm_source = FROM_DEBUGFS;
	assert_true(source_may_take_vm(&hv, &source_fd));
	hv.pub.vm_source = FROM_QMP;
	assert_true(source_may_take_vm(&hv, &source_fd));
	hv.pub.vm_source = FROM_LIBVIRT;
	assert_true(source_may_take_vm(&hv, &source_fd));
	/* QMP after libvirt takes over; libvirt never takes from QMP. */
	assert_true(source_may_take_vm(&hv, &source_qmp));
	hv.pub.vm_source = FROM_QMP;
	assert_false(source_may_take_vm(&hv, &source_libvirt));
	/* debugfs, the last, takes only what nobody holds. */
	assert_false(source_may_take_vm(&hv, &source_debugfs));
	hv.pub.vm_source = FROM_FD;
	assert_false(source_may_take_vm(&hv, &source_qmp));
	assert_false(source_may_take_vm(&hv, &source_fd));
	/* A vCPU QMP serves: a held stats fd takes it, libvirt does not. */
	assert_true(source_may_take_vcpu(&c, &source_fd));
	assert_false(source_may_take_vcpu(&c, &source_libvirt));
	assert_false(source_may_take_vcpu(&c, &source_qmp));
	c.source = FROM_LIBVIRT;
	assert_true(source_may_take_vcpu(&c, &source_qmp));
}

/* ------------------------------------------------------------ drop_vm */

static unsigned fake_drops, fake_detaches;

static void fake_drop_vm(struct source_env *env, struct host_vm *hv)
{
	(void)env;
	(void)hv;
	fake_drops++;
}

static void fake_detach(struct source_env *env, struct host_vm *hv)
{
	(void)env;
	(void)hv;
	fake_detaches++;
}

static void test_drop_runs_drop_vm_not_detach(void **state)
{
	const struct source_ops fake = {
		.name = "fake", .id = FROM_LIBVIRT, .serves = SOURCE_VM_STATS,
		.drop_vm = fake_drop_vm, .detach = fake_detach,
	};
	struct fixture *f = *state;
	struct host_vm *hv = f->hv;
	struct kvmstats_schema *schema;
	struct statsfd *s;

	assert_int_equal(statsfd_open(dup(f->vm_blob), f->env.cache, &s), 0);
	schema = s->schema;
	assert_int_equal(statsfd_virtual(schema, "fake", f->env.vcache, &hv->pub.vm_stats), 0);
	statsfd_close(s);
	hv->pub.vm_source = FROM_LIBVIRT;
	hv->vm_owner = &fake;
	fake_drops = fake_detaches = 0;
	vm_drop_vm_stats(&f->env, hv);
	assert_int_equal(fake_drops, 1);
	assert_int_equal(fake_detaches, 0);
	assert_null(hv->pub.vm_stats);
	assert_int_equal(hv->pub.vm_source, FROM_NONE);
	assert_null(hv->vm_owner);
	assert_true(hv->changed);
}

/*
 * libvirt's state of a VM is its labels (title, Nova's names) and the
 * domain it matched, not its VM-wide holder: a better source taking that
 * slot must leave them. The state is what libvirt's apply() leaves for a
 * domain without labels (zeroed), freed by its detach at teardown.
 */
static void test_drop_keeps_libvirt_labels(void **state)
{
	static const struct kvmstats_label labels[] = { { "title", "web" } };
	struct fixture *f = *state;
	struct host_vm *hv = f->hv;
	struct statsfd *s;
	void *lv = calloc(1, 4096);

	assert_non_null(lv);
	hv->priv[FROM_LIBVIRT] = lv;
	hv->pub.labels = labels;
	hv->pub.nlabels = 1;
	assert_int_equal(statsfd_open(dup(f->vm_blob), f->env.cache, &s), 0);
	assert_int_equal(statsfd_virtual(s->schema, "libvirt", f->env.vcache,
					 &hv->pub.vm_stats), 0);
	statsfd_close(s);
	hv->pub.vm_source = FROM_LIBVIRT;
	hv->vm_owner = &source_libvirt;

	vm_drop_vm_stats(&f->env, hv);
	assert_ptr_equal(hv->priv[FROM_LIBVIRT], lv);
	assert_ptr_equal(hv->pub.labels, labels);
	assert_int_equal(hv->pub.nlabels, 1);
	assert_null(hv->pub.vm_stats);
	assert_int_equal(hv->pub.vm_source, FROM_NONE);
}

/* ----------------------------------------------------------- takeovers */

static void test_late_vm_stats_fd_takes_over_from_debugfs(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_vm *vm = &f->hv->pub;
	struct kvmstats_scan_report rep;
	const struct discover_fd early[] = {
		{ f->vcpu_blob, DISCOVER_FD_VCPU_STATS, 0 },
	};
	const struct discover_fd late[] = {
		{ f->vm_blob, DISCOVER_FD_VM_STATS, -1 },
		{ f->vcpu_blob, DISCOVER_FD_VCPU_STATS, 0 },
	};
	struct kvmstats_vcpu *c;
	struct statsfd *debugfs_holder;

	/* First rescan: vCPU 0 from its fd, the VM-wide slot to debugfs. */
	rescan(f, early, 1, &rep);
	assert_int_equal(vm->nvcpus, 1);
	c = vm->vcpus[0];
	assert_int_equal(c->source, FROM_FD);
	assert_int_equal(vm->vm_source, FROM_DEBUGFS);
	assert_ptr_equal(f->hv->vm_owner, &source_debugfs);
	assert_non_null(f->hv->priv[FROM_DEBUGFS]);
	/* exits is the vCPU fd's: debugfs serves only what nobody else does. */
	assert_true(schema_find(vm->vm_stats->schema, "pages_4k") >= 0);
	assert_true(schema_find(vm->vm_stats->schema, "exits") < 0);
	assert_no_stat_twice(vm);
	sample(f);
	assert_int_equal(vm->vm_stats->samples, 1);
	assert_int_equal(vm->vm_stats->cur[vm->vm_stats->schema->desc[
		schema_find(vm->vm_stats->schema, "pages_4k")].index], 7);
	announced(f);
	debugfs_holder = vm->vm_stats;

	/* The VMM opens its VM stats fd: the next rescan gives the slot to it. */
	rescan(f, late, 2, &rep);
	assert_int_equal(f->hv->unread, 0);
	assert_int_equal(vm->vm_source, FROM_FD);
	assert_ptr_equal(f->hv->vm_owner, &source_fd);
	assert_ptr_not_equal(vm->vm_stats, debugfs_holder);
	assert_true(vm->vm_stats->fd >= 0);
	assert_null(f->hv->priv[FROM_DEBUGFS]);	/* debugfs let go of its directory */
	assert_true(f->hv->changed);		/* vm_changed is due */
	assert_true(f->env.changes > 0);
	/* The same vCPU, still from its fd. */
	assert_int_equal(vm->nvcpus, 1);
	assert_ptr_equal(vm->vcpus[0], c);
	assert_int_equal(c->source, FROM_FD);
	assert_no_stat_twice(vm);
	/* Read at the very next sample: no interval without VM-wide stats. */
	assert_int_equal(vm->vm_stats->samples, 0);
	sample(f);
	assert_int_equal(vm->vm_stats->samples, 1);
	assert_int_equal(vm->vm_stats->error, 0);
	assert_true(schema_find(vm->vm_stats->schema, "remote_tlb_flush") >= 0);
	announced(f);

	/* Later rescans change nothing: debugfs does not come back. */
	rescan(f, late, 2, &rep);
	assert_int_equal(vm->vm_source, FROM_FD);
	assert_null(f->hv->priv[FROM_DEBUGFS]);
	assert_false(f->hv->changed);
	sample(f);
	assert_int_equal(vm->vm_stats->samples, 2);
}

/* A VM stats fd that cannot be taken is retried, and debugfs keeps serving. */
static void test_untaken_vm_stats_fd_is_unread(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_vm *vm = &f->hv->pub;
	struct kvmstats_scan_report rep;
	int other = open("/dev/null", O_RDONLY | O_CLOEXEC);
	const struct discover_fd early[] = {
		{ f->vcpu_blob, DISCOVER_FD_VCPU_STATS, 0 },
	};
	/* The number the VMM showed now names something else: -ESTALE. */
	const struct discover_fd late[] = {
		{ other, DISCOVER_FD_VM_STATS, -1 },
		{ f->vcpu_blob, DISCOVER_FD_VCPU_STATS, 0 },
	};

	assert_true(other >= 0);
	rescan(f, early, 1, &rep);
	assert_int_equal(vm->vm_source, FROM_DEBUGFS);
	announced(f);
	rescan(f, late, 2, &rep);
	assert_int_equal(f->hv->unread, 1);
	assert_int_equal(f->hv->unread_error, -ESTALE);
	assert_int_equal(vm->vm_source, FROM_DEBUGFS);
	assert_false(f->hv->changed);
	close(other);
}

/* A vCPU QMP served, whose stats fd the VMM holds later: the fd takes it. */
static void test_late_vcpu_stats_fd_takes_over_from_qmp(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_vm *vm = &f->hv->pub;
	struct kvmstats_scan_report rep;
	const struct discover_fd late[] = {
		{ f->vcpu_blob, DISCOVER_FD_VCPU_STATS, 0 },
	};
	struct kvmstats_vcpu *c;
	struct statsfd *s;
	int user;

	assert_int_equal(statsfd_open(dup(f->vcpu_blob), f->env.cache, &s), 0);
	assert_int_equal(vm_add_virtual_vcpu(&f->env, f->hv, 0, FROM_QMP, "qmp",
					     s->schema, &c), 0);
	statsfd_close(s);
	c->user = &user;
	c->announced = true;
	announced(f);

	rescan(f, late, 1, &rep);
	assert_int_equal(vm->nvcpus, 1);
	assert_ptr_equal(vm->vcpus[0], c);	/* the same vCPU for the front ends */
	assert_ptr_equal(c->user, &user);
	assert_int_equal(c->source, FROM_FD);
	assert_int_equal(c->vmm_fd, f->vcpu_blob);
	assert_true(c->stats->fd >= 0);
	assert_true(f->hv->changed);
	assert_int_equal(f->hv->unread, 0);
	sample(f);
	assert_int_equal(c->stats->samples, 1);
	assert_int_equal(c->stats->error, 0);
}

/*
 * A vCPU whose source differs from vCPU 0's (a takeover that could take
 * only some: the fd limit) still counts in the VM's totals, by name: the
 * sum must not lose it and go back.
 */
static void test_totals_count_every_vcpu(void **state)
{
	struct fixture *f = *state;
	struct kvmstats_vm *vm = &f->hv->pub;
	struct kvmstats_vcpu *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	const struct kvmstats_desc *exits;
	uint64_t *totals;

	/* Freed by teardown, as the host frees a VM's vCPUs. */
	assert_true(a && b);
	*a = (struct kvmstats_vcpu){ .id = 0, .vmm_fd = -1, .source = FROM_FD };
	*b = (struct kvmstats_vcpu){ .id = 1, .vmm_fd = -1, .source = FROM_QMP };
	/* The same kernel blob, but b's schema another object, as a QMP one is. */
	assert_int_equal(statsfd_open(dup(f->vcpu_blob), f->env.cache, &a->stats), 0);
	assert_int_equal(vm_insert_vcpu(vm, a), 0);
	assert_int_equal(statsfd_open(dup(f->vcpu_blob), NULL, &b->stats), 0);
	assert_int_equal(vm_insert_vcpu(vm, b), 0);
	assert_ptr_not_equal(a->stats->schema, b->stats->schema);
	assert_int_equal(statsfd_sample(a->stats), 0);
	assert_int_equal(statsfd_sample(b->stats), 0);
	exits = &a->stats->schema->desc[schema_find(a->stats->schema, "exits")];
	assert_true(a->stats->cur[exits->index] > 0);
	totals = calloc(a->stats->schema->num_values, sizeof(*totals));
	assert_non_null(totals);
	assert_int_equal(host_vcpu_totals(vm, a->stats->schema, totals), 2);
	assert_int_equal(totals[exits->index], 2 * a->stats->cur[exits->index]);
	free(totals);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rank_is_the_table_order),
		cmocka_unit_test(test_rank_named_cases),
		cmocka_unit_test_setup_teardown(test_drop_runs_drop_vm_not_detach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_keeps_libvirt_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_vm_stats_fd_takes_over_from_debugfs,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_untaken_vm_stats_fd_is_unread, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_late_vcpu_stats_fd_takes_over_from_qmp,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_totals_count_every_vcpu, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
