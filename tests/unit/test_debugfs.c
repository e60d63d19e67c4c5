/* SPDX-License-Identifier: MIT */
/*
 * test_debugfs.c: unit tests of debugfs.c on a fake debugfs tree.
 *
 * Each test builds, under a mkdtemp() directory, what KVM puts in
 * /sys/kernel/debug/kvm (virt/kvm/kvm_main.c kvm_create_vm_debugfs()):
 * "<pid>-<fd>" directories holding one "%llu\n" file per stat, 0444 for
 * INSTANT stats and 0644 for the others, and vcpuN/ subdirectories. Junk
 * names sit next to them. The tree is removed with nftw().
 *
 * Lockdown's EPERM cannot be made on a normal file system as root: the
 * integration test tests/integration/test_debugfs.py meets it on the real
 * debugfs.
 */
#include <dirent.h>
#include <errno.h>
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "debugfs.h"
#include "tree.h"

#define PID 4242
#define VM_FD 11

static int setup(void **state)
{
	return tree_setup(state, "debugfs");
}

static void make_dir(const struct tree *t, const char *rel)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%s", rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* Writes content (len bytes) to rel and gives it mode. */
static void make_file_len(const struct tree *t, const char *rel, mode_t mode,
			  const char *content, size_t len)
{
	char path[PATH_MAX];
	int fd;

	tree_path(t, path, sizeof(path), "%s", rel);
	/* A new file each time: a 0444 one cannot be rewritten unless root. */
	assert_true(unlink(path) == 0 || errno == ENOENT);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static void make_file(const struct tree *t, const char *rel, mode_t mode,
		      const char *content)
{
	make_file_len(t, rel, mode, content, strlen(content));
}

static void remove_file(const struct tree *t, const char *rel)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%s", rel);
	assert_int_equal(unlink(path), 0);
}

/* The "<PID>-<VM_FD>" directory of a VM as x86 KVM makes it. */
static void make_vm(const struct tree *t)
{
	char dir[32];

	snprintf(dir, sizeof(dir), "%d-%d", PID, VM_FD);
	make_dir(t, dir);
	make_file(t, "4242-11/exits", 0644, "1234\n");
	make_file(t, "4242-11/pages_4k", 0444, "77\n");
	make_file(t, "4242-11/max_mmu_rmap_size", 0644, "5\n");
	make_file(t, "4242-11/halt_poll_success_ns", 0644, "1000000\n");
	make_file(t, "4242-11/blocking", 0444, "2\n");
	make_file(t, "4242-11/halt_wait_hist", 0644, "3\n");
	make_dir(t, "4242-11/vcpu0");
	make_file(t, "4242-11/vcpu0/pid", 0444, "4243\n");
	make_file(t, "4242-11/vcpu0/lapic_timer_advance_ns", 0444, "1000\n");
}

static const struct kvmstats_desc *find(const struct kvmstats_schema *s,
					const char *name)
{
	int i = schema_find(s, name);

	return i < 0 ? NULL : &s->desc[i];
}

/* ------------------------------------------------------------------ scan */

struct seen {
	pid_t pid[16];
	int fd[16];
	size_t n;
	int fail_with;		/* returned from every call when < 0 */
};

static int record(pid_t pid, int vm_fd, void *ctx)
{
	struct seen *s = ctx;

	if (s->n < 16) {
		s->pid[s->n] = pid;
		s->fd[s->n] = vm_fd;
	}
	s->n++;
	return s->fail_with;
}

static bool seen_has(const struct seen *s, pid_t pid, int fd)
{
	for (size_t i = 0; i < s->n && i < 16; i++)
		if (s->pid[i] == pid && s->fd[i] == fd)
			return true;
	return false;
}

static void test_scan_finds_exactly_vm_dirs(void **state)
{
	static const char *const junk[] = {
		"abc", "12", "12-", "-3", "12-x", "0-3", "1-2-3", "+1-2",
		" 1-2", "1-+2", "1- 2", "1--2", "99999999999-1", "1-99999999999",
		"12-3x",
	};
	struct tree *t = *state;
	struct seen s = { 0 };

	make_vm(t);
	make_dir(t, "77-0");
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		make_dir(t, junk[i]);
	/* A file with a VM's name is no VM; top-level files are sums. */
	make_file(t, "7-8", 0444, "0\n");
	make_file(t, "exits", 0644, "99\n");

	assert_int_equal(debugfs_scan(t->root, record, &s), 2);
	assert_int_equal(s.n, 2);
	assert_true(seen_has(&s, PID, VM_FD));
	assert_true(seen_has(&s, 77, 0));
}

static void test_scan_stops_on_negative(void **state)
{
	struct tree *t = *state;
	struct seen s = { .fail_with = -EINTR };

	make_vm(t);
	make_dir(t, "77-0");
	assert_int_equal(debugfs_scan(t->root, record, &s), -EINTR);
	assert_int_equal(s.n, 1);
}

static void test_scan_missing_or_not_a_dir(void **state)
{
	struct tree *t = *state;
	struct seen s = { 0 };
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "kvm");
	assert_int_equal(debugfs_scan(path, record, &s), -ENOENT);
	make_file(t, "kvm", 0644, "");
	assert_int_equal(debugfs_scan(path, record, &s), -ENOTDIR);
	make_dir(t, "empty");
	tree_path(t, path, sizeof(path), "empty");
	assert_int_equal(debugfs_scan(path, record, &s), 0);
	assert_int_equal(s.n, 0);
}

/* ------------------------------------------------------------------ open */

static void test_open_types_by_mode_and_name(void **state)
{
	struct tree *t = *state;
	const struct kvmstats_schema *s;
	const struct kvmstats_desc *d;
	struct debugfs_vm *vm = NULL;
	unsigned denied = 99;
	static const char *const order[] = {
		"blocking", "exits", "halt_poll_success_ns",
		"max_mmu_rmap_size", "pages_4k",
	};

	make_vm(t);
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, &denied), 0);
	assert_non_null(vm);
	assert_int_equal(denied, 0);
	s = debugfs_schema(vm);

	/* Sorted by name; the histogram and vcpu0/ are left out. */
	assert_int_equal(s->num_desc, 5);
	assert_int_equal(s->num_values, 5);
	assert_int_equal(s->data_len, 40);
	assert_int_equal(s->data_offset, 0);
	assert_int_equal(s->refs, 1);
	for (uint32_t i = 0; i < s->num_desc; i++) {
		assert_string_equal(s->desc[i].name, order[i]);
		assert_int_equal(s->desc[i].index, i);
		assert_int_equal(s->desc[i].size, 1);
		assert_int_equal(s->desc[i].bucket_size, 0);
		assert_true(s->desc[i].known);
		assert_int_equal(s->desc[i].flags,
				 s->desc[i].type | s->desc[i].unit |
				 s->desc[i].base);
	}
	assert_null(find(s, "halt_wait_hist"));
	assert_null(find(s, "pid"));

	d = find(s, "exits");
	assert_int_equal(d->type, KVM_STATS_TYPE_CUMULATIVE);
	assert_int_equal(d->unit, KVM_STATS_UNIT_NONE);
	assert_int_equal(d->exponent, 0);
	d = find(s, "pages_4k");
	assert_int_equal(d->type, KVM_STATS_TYPE_INSTANT);
	d = find(s, "max_mmu_rmap_size");
	assert_int_equal(d->type, KVM_STATS_TYPE_PEAK);
	d = find(s, "halt_poll_success_ns");
	assert_int_equal(d->type, KVM_STATS_TYPE_CUMULATIVE);
	assert_int_equal(d->unit, KVM_STATS_UNIT_SECONDS);
	assert_int_equal(d->base, KVM_STATS_BASE_POW10);
	assert_int_equal(d->exponent, -9);
	/* A boolean cannot be told by its name. */
	d = find(s, "blocking");
	assert_int_equal(d->type, KVM_STATS_TYPE_INSTANT);
	assert_int_equal(d->unit, KVM_STATS_UNIT_NONE);
	debugfs_close(vm);
}

/* A schema as decode.c builds them: desc[], one names block, refs 1. */
struct hand_desc {
	const char *name;
	uint32_t type, unit;
	int16_t exponent;
	uint16_t size;
};

static struct kvmstats_schema *hand_schema(const struct hand_desc *h, size_t n)
{
	struct kvmstats_schema *s = calloc(1, sizeof(*s));
	size_t names_len = 0;
	uint32_t index = 0;
	char *p;

	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		names_len += strlen(h[i].name) + 1;
	s->desc = calloc(n, sizeof(*s->desc));
	s->names = malloc(names_len);
	assert_non_null(s->desc);
	assert_non_null(s->names);
	s->refs = 1;
	s->num_desc = (uint32_t)n;
	s->data_offset = 0x200;
	p = s->names;
	for (size_t i = 0; i < n; i++) {
		strcpy(p, h[i].name);
		s->desc[i] = (struct kvmstats_desc){
			.name = p,
			.flags = h[i].type | h[i].unit,
			.type = h[i].type,
			.unit = h[i].unit,
			.base = KVM_STATS_BASE_POW10,
			.exponent = h[i].exponent,
			.size = h[i].size,
			.index = index,
			.known = true,
		};
		index += h[i].size;
		p += strlen(p) + 1;
	}
	s->num_values = index;
	s->data_len = index * 8;
	return s;
}

static void test_open_types_from_known(void **state)
{
	static const struct hand_desc vm_descs[] = {
		{ "pages_4k", KVM_STATS_TYPE_INSTANT, KVM_STATS_UNIT_NONE, 0, 1 },
		/* Known as cumulative although the file says otherwise. */
		{ "max_mmu_rmap_size", KVM_STATS_TYPE_CUMULATIVE,
		  KVM_STATS_UNIT_BYTES, 3, 1 },
	};
	static const struct hand_desc vcpu_descs[] = {
		{ "halt_poll_success_ns", KVM_STATS_TYPE_CUMULATIVE,
		  KVM_STATS_UNIT_SECONDS, -9, 1 },
		{ "halt_wait_hist", KVM_STATS_TYPE_LOG_HIST,
		  KVM_STATS_UNIT_SECONDS, -9, 32 },
		{ "blocking", KVM_STATS_TYPE_INSTANT, KVM_STATS_UNIT_BOOLEAN,
		  0, 1 },
		{ "exits", KVM_STATS_TYPE_CUMULATIVE, KVM_STATS_UNIT_CYCLES,
		  0, 1 },
		/* Several values but no histogram: debugfs shows one. */
		{ "wide", KVM_STATS_TYPE_CUMULATIVE, KVM_STATS_UNIT_NONE, 0, 2 },
	};
	struct tree *t = *state;
	const struct kvmstats_schema *known[3];
	const struct kvmstats_schema *s;
	const struct kvmstats_desc *d;
	struct kvmstats_schema *vm_schema, *vcpu_schema;
	struct debugfs_vm *vm = NULL;
	unsigned denied = 99;

	vm_schema = hand_schema(vm_descs, 2);
	vcpu_schema = hand_schema(vcpu_descs, 5);
	known[0] = vm_schema;
	known[1] = NULL;	/* e.g. no vCPU stats fd: tolerated */
	known[2] = vcpu_schema;
	make_vm(t);
	/* Known by name, so its 0444 mode does not make it instant. */
	make_file(t, "4242-11/halt_wait_ns", 0444, "8\n");
	make_file(t, "4242-11/wide", 0644, "1\n");

	assert_int_equal(debugfs_open(t->root, PID, VM_FD, known, 3, NULL, NULL,
				      &vm, &denied), 0);
	s = debugfs_schema(vm);
	assert_int_equal(s->num_desc, 6);
	assert_null(find(s, "halt_wait_hist"));
	assert_null(find(s, "wide"));

	d = find(s, "pages_4k");
	assert_int_equal(d->type, KVM_STATS_TYPE_INSTANT);
	d = find(s, "max_mmu_rmap_size");
	assert_int_equal(d->type, KVM_STATS_TYPE_CUMULATIVE);
	assert_int_equal(d->unit, KVM_STATS_UNIT_BYTES);
	assert_int_equal(d->exponent, 3);
	assert_int_equal(d->size, 1);
	d = find(s, "halt_poll_success_ns");
	assert_int_equal(d->type, KVM_STATS_TYPE_CUMULATIVE);
	assert_int_equal(d->unit, KVM_STATS_UNIT_SECONDS);
	assert_int_equal(d->exponent, -9);
	/* debugfs sums a vCPU boolean over the vCPUs: a count. */
	d = find(s, "blocking");
	assert_int_equal(d->type, KVM_STATS_TYPE_INSTANT);
	assert_int_equal(d->unit, KVM_STATS_UNIT_NONE);
	assert_int_equal(d->flags, KVM_STATS_TYPE_INSTANT);
	d = find(s, "exits");
	assert_int_equal(d->unit, KVM_STATS_UNIT_CYCLES);
	/* Not in known[]: by mode and name. */
	d = find(s, "halt_wait_ns");
	assert_int_equal(d->type, KVM_STATS_TYPE_INSTANT);
	assert_int_equal(d->unit, KVM_STATS_UNIT_SECONDS);
	assert_int_equal(d->exponent, -9);

	debugfs_close(vm);
	/* The known schemas stay the caller's. */
	assert_int_equal(vm_schema->refs, 1);
	schema_unref(vm_schema);
	schema_unref(vcpu_schema);
}

struct skip_ctx {
	unsigned calls;
};

static bool skip_some(const char *name, void *ctx)
{
	struct skip_ctx *c = ctx;

	c->calls++;
	return strcmp(name, "exits") == 0 || strncmp(name, "pages_", 6) == 0;
}

static void test_open_skip(void **state)
{
	struct tree *t = *state;
	const struct kvmstats_schema *s;
	struct skip_ctx c = { 0 };
	struct debugfs_vm *vm = NULL;
	unsigned denied;

	make_vm(t);
	make_file(t, "4242-11/pages_2m", 0444, "1\n");
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, skip_some,
				      &c, &vm, &denied), 0);
	s = debugfs_schema(vm);
	assert_true(c.calls >= 7);	/* every regular file at the top */
	assert_int_equal(s->num_desc, 3);
	assert_null(find(s, "exits"));
	assert_null(find(s, "pages_4k"));
	assert_null(find(s, "pages_2m"));
	assert_non_null(find(s, "blocking"));
	assert_string_equal(s->desc[2].name, "max_mmu_rmap_size");
	assert_int_equal(s->desc[2].index, 2);
	debugfs_close(vm);
}

static void test_open_leaves_out_unreadable(void **state)
{
	struct tree *t = *state;
	const struct kvmstats_schema *s;
	struct debugfs_vm *vm = NULL;
	unsigned denied = 99;
	char target[PATH_MAX];

	make_vm(t);
	/* x86's mmu_rmaps_stat is a table, not a number. */
	make_file(t, "4242-11/mmu_rmaps_stat", 0644,
		  "rmap_count 0 1 2\n1 0 0 0\n");
	make_file(t, "4242-11/garbage", 0644, "abc\n");
	make_file(t, "4242-11/empty", 0644, "");
	/* Symlinks are not followed, even to a readable number. */
	tree_path(t, target, sizeof(target), "4242-11/exits");
	{
		char link[PATH_MAX];

		tree_path(t, link, sizeof(link), "4242-11/evil");
		assert_int_equal(symlink(target, link), 0);
	}
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, &denied), 0);
	s = debugfs_schema(vm);
	assert_int_equal(s->num_desc, 5);
	assert_null(find(s, "mmu_rmaps_stat"));
	assert_null(find(s, "garbage"));
	assert_null(find(s, "empty"));
	assert_null(find(s, "evil"));
	/* Unparsable is no lockdown refusal. */
	assert_int_equal(denied, 0);
	debugfs_close(vm);
}

static void test_open_empty_dir(void **state)
{
	struct tree *t = *state;
	struct debugfs_vm *vm = NULL;
	unsigned denied = 99;
	uint64_t v = 42;

	make_dir(t, "1-2");
	make_dir(t, "1-2/vcpu0");
	make_file(t, "1-2/halt_wait_hist", 0644, "0\n");
	assert_int_equal(debugfs_open(t->root, 1, 2, NULL, 0, NULL, NULL, &vm,
				      &denied), 0);
	assert_int_equal(debugfs_schema(vm)->num_desc, 0);
	assert_int_equal(debugfs_schema(vm)->num_values, 0);
	assert_int_equal(debugfs_schema(vm)->data_len, 0);
	assert_int_equal(denied, 0);
	assert_int_equal(debugfs_sample(vm, &v), 0);
	assert_int_equal(v, 42);
	debugfs_close(vm);
}

static void test_open_errors(void **state)
{
	struct tree *t = *state;
	struct debugfs_vm *vm = NULL;
	unsigned denied = 99;
	char path[PATH_MAX];

	make_vm(t);
	assert_int_equal(debugfs_open(t->root, PID, VM_FD + 1, NULL, 0, NULL,
				      NULL, &vm, &denied), -ENOENT);
	tree_path(t, path, sizeof(path), "nothere");
	assert_int_equal(debugfs_open(path, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, &denied), -ENOENT);
	assert_int_equal(debugfs_open(t->root, 0, VM_FD, NULL, 0, NULL, NULL,
				      &vm, &denied), -EINVAL);
	assert_int_equal(debugfs_open(t->root, PID, -1, NULL, 0, NULL, NULL,
				      &vm, &denied), -EINVAL);
	/* ret_* untouched on failure. */
	assert_null(vm);
	assert_int_equal(denied, 99);
	/* A file named like a VM is no VM directory. */
	make_file(t, "5-6", 0444, "1\n");
	assert_int_equal(debugfs_open(t->root, 5, 6, NULL, 0, NULL, NULL, &vm,
				      &denied), -ENOTDIR);
	/* ret_denied is optional. */
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, NULL), 0);
	debugfs_close(vm);
	debugfs_close(NULL);
}

/* ---------------------------------------------------------------- sample */

static void test_sample_exact_values(void **state)
{
	struct tree *t = *state;
	const struct kvmstats_schema *s;
	struct debugfs_vm *vm = NULL;
	uint64_t v[5];

	make_vm(t);
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, NULL), 0);
	s = debugfs_schema(vm);
	assert_int_equal(debugfs_sample(vm, v), 0);
	assert_int_equal(v[find(s, "blocking")->index], 2);
	assert_int_equal(v[find(s, "exits")->index], 1234);
	assert_int_equal(v[find(s, "halt_poll_success_ns")->index], 1000000);
	assert_int_equal(v[find(s, "max_mmu_rmap_size")->index], 5);
	assert_int_equal(v[find(s, "pages_4k")->index], 77);

	/* Every sample reads the files anew; the newline is optional. */
	make_file(t, "4242-11/exits", 0644, "18446744073709551615\n");
	make_file(t, "4242-11/pages_4k", 0444, "0");
	assert_int_equal(debugfs_sample(vm, v), 0);
	assert_true(v[find(s, "exits")->index] == UINT64_MAX);
	assert_int_equal(v[find(s, "pages_4k")->index], 0);
	debugfs_close(vm);
}

/*
 * Files whose names no stat has (a hostile or broken tree: a newline and a
 * protocol line, quotes, dots, blanks, too long, not ASCII) are left out
 * and counted, never read; the VM's stats are kept with their values.
 */
static void test_open_hostile_names(void **state)
{
	static const char *const bad[] = {
		"evil\nCHART x '' t u", "...", "q' \"x", " ", "-x", "9lives",
		"caf\xc3\xa9", "a\x7f",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
	};
	static const char good64[] =
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	struct tree *t = *state;
	const struct kvmstats_schema *s;
	struct debugfs_vm *vm = NULL;
	char rel[128];
	uint64_t v[6];
	size_t i;

	make_vm(t);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rel, sizeof(rel), "4242-11/%s", bad[i]);
		make_file(t, rel, 0644, "666\n");
	}
	snprintf(rel, sizeof(rel), "4242-11/%s", good64);
	make_file(t, rel, 0644, "64\n");
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, NULL), 0);
	s = debugfs_schema(vm);
	assert_int_equal(s->refused.count, sizeof(bad) / sizeof(bad[0]));
	/* Whichever readdir() gave first, cut to DECODE_NAME_MAX bytes. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strncmp(s->refused.first, bad[i], DECODE_NAME_MAX) == 0)
			break;
	assert_true(i < sizeof(bad) / sizeof(bad[0]));
	/* exits, pages_4k, max_mmu_rmap_size, halt_poll_success_ns, blocking, b*64 */
	assert_int_equal(s->num_desc, 6);
	for (uint32_t k = 0; k < s->num_desc; k++)
		assert_int_equal(decode_name_valid(s->desc[k].name), 1);
	assert_int_equal(debugfs_sample(vm, v), 0);
	assert_int_equal(v[find(s, "exits")->index], 1234);
	assert_int_equal(v[find(s, "pages_4k")->index], 77);
	assert_int_equal(v[find(s, good64)->index], 64);
	debugfs_close(vm);
}

static void test_sample_removed_file_is_esrch(void **state)
{
	struct tree *t = *state;
	struct debugfs_vm *vm = NULL;
	uint64_t v[5] = { 9, 9, 9, 9, 9 };

	make_vm(t);
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, NULL), 0);
	remove_file(t, "4242-11/pages_4k");
	assert_int_equal(debugfs_sample(vm, v), -ESRCH);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(v[i], 9);
	debugfs_close(vm);
}

static void test_sample_garbage(void **state)
{
	static const char *const bad[] = {
		"abc", "-1", "", "99999999999999999999999", "18446744073709551616",
		"12abc", " 12", "+5", "1\n2", "\n", "0x10", "1 \n", "5\n\n", "5x",
		"5 ", "5\r\n",
		/* Longer than any "%llu\n": never parsed truncated (as 0). */
		"000000000000000000000000000000000000000000000005\n",
		"123456789012345678901234567890123456789012345678901234567890",
	};
	struct tree *t = *state;
	struct debugfs_vm *vm = NULL;
	uint64_t v[5];

	make_vm(t);
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, NULL), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (size_t j = 0; j < 5; j++)
			v[j] = 7;
		make_file(t, "4242-11/exits", 0644, bad[i]);
		assert_int_equal(debugfs_sample(vm, v), -EBADMSG);
		for (size_t j = 0; j < 5; j++)
			assert_int_equal(v[j], 7);
	}
	/* An embedded NUL. */
	make_file_len(t, "4242-11/exits", 0644, "12\0003\n", 5);
	assert_int_equal(debugfs_sample(vm, v), -EBADMSG);
	/* And it recovers once the file is sane again. */
	make_file(t, "4242-11/exits", 0644, "3\n");
	assert_int_equal(debugfs_sample(vm, v), 0);
	debugfs_close(vm);
}

/* The VM dir replaced by a new one of the same name: not the same VM. */
static void test_sample_dir_replaced_is_esrch(void **state)
{
	struct tree *t = *state;
	struct debugfs_vm *vm = NULL;
	char from[PATH_MAX], to[PATH_MAX];
	uint64_t v[5];

	make_vm(t);
	assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0, NULL, NULL,
				      &vm, NULL), 0);
	tree_path(t, from, sizeof(from), "4242-11");
	tree_path(t, to, sizeof(to), "old");
	assert_int_equal(rename(from, to), 0);
	make_dir(t, "4242-11");
	make_file(t, "4242-11/exits", 0644, "1\n");
	/* Still the old directory through the held fd. */
	assert_int_equal(debugfs_sample(vm, v), 0);
	remove_file(t, "old/exits");
	assert_int_equal(debugfs_sample(vm, v), -ESRCH);
	debugfs_close(vm);
}

/* --------------------------------------------------------------- no leak */

static void test_no_fd_leak(void **state)
{
	struct tree *t = *state;
	struct seen seen = { 0 };
	struct debugfs_vm *vm;
	uint64_t v[5];
	int before;

	make_vm(t);
	make_file(t, "4242-11/mmu_rmaps_stat", 0644, "table\n");
	before = tree_count_fds();
	for (int round = 0; round < 3; round++) {
		seen.n = 0;
		assert_int_equal(debugfs_scan(t->root, record, &seen), 1);
		seen.fail_with = -EINTR;
		assert_int_equal(debugfs_scan(t->root, record, &seen), -EINTR);
		seen.fail_with = 0;
		assert_int_equal(debugfs_open(t->root, PID, VM_FD + 1, NULL, 0,
					      NULL, NULL, &vm, NULL), -ENOENT);
		vm = NULL;
		assert_int_equal(debugfs_open(t->root, PID, VM_FD, NULL, 0,
					      NULL, NULL, &vm, NULL), 0);
		for (int i = 0; i < 3; i++)
			assert_int_equal(debugfs_sample(vm, v), 0);
		make_file(t, "4242-11/exits", 0644, "junk\n");
		assert_int_equal(debugfs_sample(vm, v), -EBADMSG);
		remove_file(t, "4242-11/exits");
		assert_int_equal(debugfs_sample(vm, v), -ESRCH);
		debugfs_close(vm);
		make_file(t, "4242-11/exits", 0644, "1\n");
	}
	assert_int_equal(tree_count_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, tree_teardown)
		T(test_scan_finds_exactly_vm_dirs),
		T(test_scan_stops_on_negative),
		T(test_scan_missing_or_not_a_dir),
		T(test_open_types_by_mode_and_name),
		T(test_open_types_from_known),
		T(test_open_skip),
		T(test_open_leaves_out_unreadable),
		T(test_open_empty_dir),
		T(test_open_errors),
		T(test_sample_exact_values),
		T(test_open_hostile_names),
		T(test_sample_removed_file_is_esrch),
		T(test_sample_garbage),
		T(test_sample_dir_replaced_is_esrch),
		T(test_no_fd_leak),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
