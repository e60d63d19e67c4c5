/* SPDX-License-Identifier: MIT */
/*
 * debugfs.c: KVM stats of any VM from /sys/kernel/debug/kvm/<pid>-<fd>/,
 * for VMMs that hold no stats fd (QEMU 7.x, Firecracker, crosvm, ...).
 *
 * What the kernel puts there (virt/kvm/kvm_main.c, kvm_create_vm_debugfs()):
 * a directory per VM named "<pid of the creator>-<VM fd number>", holding one
 * file per VM stat and one per vCPU stat (kvm_get_stat_per_vcpu() sums the
 * vCPUs), each reading "%llu\n" (simple_attr). The mode says the type:
 * 0444 for INSTANT, 0644 for the others (kvm_stats_debugfs_mode()). A
 * histogram file shows bucket 0 only. vcpuN/ subdirectories and arch files
 * such as x86's mmu_rmaps_stat (a table, not a number) are no counters.
 *
 * Under kernel lockdown (integrity or confidentiality) debugfs refuses to
 * open a file with a write bit (EPERM, fs/debugfs/file.c
 * debugfs_locked_down()): only the INSTANT stats stay readable.
 *
 * The files are simple_attr files, opened nonseekable: pread() fails with
 * ESPIPE, so each value is read() from offset 0 of a fresh open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "debugfs.h"
#include "util.h"

/*
 * "%llu\n" is at most 21 bytes. A file that fills this buffer holds no
 * number of ours, so it is never parsed truncated.
 */
#define VALUE_BUF_SIZE 32

/* Far above the ~70 files of a VM on x86; bounds a hostile fake tree. */
#define MAX_STATS 4096

struct debugfs_vm {
	/*
	 * The VM's directory, kept open for every sample. Unlike a stat
	 * file, an open directory does not pin the VM: only kvm_debugfs_open()
	 * (the files' open) takes a reference on struct kvm, the directory
	 * uses debugfs' plain dir operations. When the VM is destroyed,
	 * debugfs_remove_recursive() empties and unlinks the directory and
	 * every openat() through this fd fails with ENOENT (verified on 6.18).
	 * It also ties us to this VM: a new VM that gets the same
	 * "<pid>-<fd>" name later is not mistaken for the old one.
	 */
	int dirfd;
	struct kvmstats_schema *schema;
	uint64_t *scratch;	/* num_values slots: a sample in progress */
};

/* A stat found by debugfs_open(), before the schema is built. */
struct pending {
	char *name;
	struct kvmstats_desc desc;
};

struct pending_list {
	struct pending *items;
	size_t n;
	size_t cap;
	struct kvmstats_refused refused;	/* file names no stat can have */
};

/* 1 and the numbers when name is "<pid>-<fd>", 0 when not. */
static int parse_vm_dir_name(const char *name, pid_t *ret_pid, int *ret_fd)
{
	unsigned long pid, fd;
	const char *end;

	if (!util_parse_ulong(name, '-', 1, INT_MAX, &pid, &end) ||
	    !util_parse_ulong(end + 1, '\0', 0, INT_MAX, &fd, &end))
		return 0;
	*ret_pid = (pid_t)pid;
	*ret_fd = (int)fd;
	return 1;
}

/* A DIR stream for path under at (AT_FDCWD or a directory fd). -errno. */
static int open_dir(int at, const char *path, DIR **ret_dir)
{
	int fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;

	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_dir = dir;
	return 0;
}

/*
 * Only directories count: the top level also holds one file per stat,
 * the sum over all VMs. A negative return of cb stops the walk and is
 * returned. -ENOENT: no root (debugfs not mounted, or KVM not loaded).
 * -EACCES/-EPERM: not root. -ENOTDIR.
 */
int debugfs_scan(const char *root, int (*cb)(pid_t pid, int vm_fd, void *ctx),
		 void *ctx)
{
	struct dirent *d;
	DIR *dir;
	int count = 0, r = 0;

	r = open_dir(AT_FDCWD, root, &dir);
	if (r < 0)
		return r;
	for (;;) {
		pid_t pid;
		int vm_fd;

		errno = 0;
		d = readdir(dir);
		if (!d) {
			r = errno ? -errno : 0;
			break;
		}
		if (d->d_type != DT_DIR && d->d_type != DT_UNKNOWN)
			continue;
		if (!parse_vm_dir_name(d->d_name, &pid, &vm_fd))
			continue;
		count++;
		r = cb(pid, vm_fd, ctx);
		if (r < 0)
			break;
		r = 0;
	}
	closedir(dir);
	return r < 0 ? r : count;
}

/*
 * Reads the small file name in dirfd whole: opens, reads until EOF
 * (retrying EINTR) and closes it. buf gets a NUL after the content.
 * Returns the byte count. -EFBIG: size - 1 bytes were not enough.
 */
static ssize_t read_small_file(int dirfd, const char *name, char *buf,
			       size_t size)
{
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	/* A stat file is "%llu\n", handed out whole: stop at the newline. */
	n = util_read_line(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return n;
	if ((size_t)n == size - 1)
		return -EFBIG;
	buf[n] = '\0';
	return n;
}

/* "%llu\n" (the newline optional) -> *ret. -EBADMSG: anything else. */
static int parse_value(const char *buf, size_t len, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (len == 0 || buf[0] < '0' || buf[0] > '9')
		return -EBADMSG;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno != 0)
		return -EBADMSG;
	if (*end == '\n')
		end++;
	if (end != buf + len)
		return -EBADMSG;	/* trailing bytes or an embedded NUL */
	*ret = v;
	return 0;
}

/*
 * One stat's value. The file is opened, read and closed every time, never
 * kept open: an open KVM debugfs file holds a reference on the VM
 * (kvm_debugfs_open() -> kvm_get_kvm_safe()), which would keep the VM and
 * its memory alive after its VMM exits, and 70 files x 200 VMs would
 * exhaust the fd limit.
 * -ENOENT: gone (the VM is being destroyed). -EPERM: lockdown.
 * -EBADMSG: not a number.
 */
static int read_value(int dirfd, const char *name, uint64_t *ret)
{
	char buf[VALUE_BUF_SIZE];
	ssize_t n;

	n = read_small_file(dirfd, name, buf, sizeof(buf));
	if (n == -EFBIG)
		return -EBADMSG;
	if (n < 0)
		return (int)n;
	return parse_value(buf, (size_t)n, ret);
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The descriptor called name in one of known[], or NULL. */
static const struct kvmstats_desc *
find_known(const struct kvmstats_schema *const *known, size_t nknown,
	   const char *name)
{
	for (size_t i = 0; i < nknown; i++) {
		int r;

		if (!known[i])
			continue;
		r = schema_find(known[i], name);
		if (r >= 0)
			return &known[i]->desc[r];
	}
	return NULL;
}

/*
 * Types the file name of the given mode into *d (name not set). Returns 1
 * to keep it, 0 to leave it out: a histogram, of which debugfs shows
 * bucket 0 only.
 */
static int classify(const char *name, mode_t mode,
		    const struct kvmstats_schema *const *known, size_t nknown,
		    struct kvmstats_desc *d)
{
	const struct kvmstats_desc *k = find_known(known, nknown, name);

	*d = (struct kvmstats_desc){ .size = 1, .known = true };
	if (k) {
		if (k->type == KVM_STATS_TYPE_LINEAR_HIST ||
		    k->type == KVM_STATS_TYPE_LOG_HIST || k->size != 1)
			return 0;
		d->type = k->type;
		d->unit = k->unit;
		d->base = k->base;
		d->exponent = k->exponent;
		d->known = k->known;
		/*
		 * A vCPU stat's file is the sum over the vCPUs: "blocking"
		 * reads 2 when two vCPUs block. A sum of booleans is a count.
		 */
		if (d->unit == KVM_STATS_UNIT_BOOLEAN)
			d->unit = KVM_STATS_UNIT_NONE;
	} else {
		/* Every histogram of the kernel ends so (halt_wait_hist...). */
		if (has_suffix(name, "_hist"))
			return 0;
		if (!(mode & 0222))
			d->type = KVM_STATS_TYPE_INSTANT;
		else if (has_prefix(name, "max_"))
			d->type = KVM_STATS_TYPE_PEAK;
		else
			d->type = KVM_STATS_TYPE_CUMULATIVE;
		/*
		 * Nanoseconds by the kernel's naming. Booleans ("blocking",
		 * "guest_mode") cannot be told from the name: NONE.
		 */
		if (has_suffix(name, "_ns")) {
			d->unit = KVM_STATS_UNIT_SECONDS;
			d->base = KVM_STATS_BASE_POW10;
			d->exponent = -9;
		}
	}
	d->flags = d->type | d->unit | d->base;
	return 1;
}

static int pending_add(struct pending_list *l, const char *name,
		       const struct kvmstats_desc *d)
{
	char *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64, bytes;
		struct pending *items;

		if (l->n >= MAX_STATS)
			return -E2BIG;
		if (__builtin_mul_overflow(cap, sizeof(*items), &bytes))
			return -EOVERFLOW;
		items = realloc(l->items, bytes);
		if (!items)
			return -ENOMEM;
		l->items = items;
		l->cap = cap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	l->items[l->n].name = copy;
	l->items[l->n].desc = *d;
	l->n++;
	return 0;
}

static void pending_free(struct pending_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].name);
	free(l->items);
}

static int pending_cmp(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/*
 * The schema of the pending stats, sorted by name: one u64 slot each,
 * index = position. With no stats it has num_desc 0 and NULL desc and
 * names (a binary stats fd always has at least one). refs == 1.
 */
static int build_schema(struct pending_list *l,
			struct kvmstats_schema **ret_schema)
{
	struct kvmstats_schema *s;
	size_t names_len = 0, data_len;
	char *p;

	if (l->n > MAX_STATS)
		return -E2BIG;
	if (__builtin_mul_overflow(l->n, sizeof(uint64_t), &data_len) ||
	    data_len > UINT32_MAX)
		return -EOVERFLOW;
	for (size_t i = 0; i < l->n; i++)
		if (__builtin_add_overflow(names_len, strlen(l->items[i].name) + 1,
					   &names_len))
			return -EOVERFLOW;
	if (l->n > 1)
		qsort(l->items, l->n, sizeof(*l->items), pending_cmp);

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->refused = l->refused;
	s->num_desc = (uint32_t)l->n;
	s->data_offset = 0;
	s->data_len = (uint32_t)data_len;
	s->num_values = (uint32_t)l->n;
	if (l->n > 0) {
		s->desc = calloc(l->n, sizeof(*s->desc));
		s->names = malloc(names_len);
		if (!s->desc || !s->names) {
			schema_unref(s);
			return -ENOMEM;
		}
	}
	p = s->names;
	for (size_t i = 0; i < l->n; i++) {
		size_t n = strlen(l->items[i].name) + 1;

		s->desc[i] = l->items[i].desc;
		memcpy(p, l->items[i].name, n);
		s->desc[i].name = p;
		s->desc[i].index = (uint32_t)i;
		p += n;
	}
	*ret_schema = s;
	return 0;
}

/*
 * Lists the regular files of the VM directory dirfd into l, typed and with
 * one trial read each. Adds the files lockdown refuses to *denied, and
 * those whose name is no stat's (decode_name_valid()) to l->refused.
 * -ENOENT: the directory is being removed (KVM never removes one file
 * alone; a file of a VM being destroyed fails to open with ENOENT).
 */
static int list_stats(int dirfd, const struct kvmstats_schema *const *known,
		      size_t nknown, bool (*skip)(const char *name, void *ctx),
		      void *ctx, struct pending_list *l, unsigned *denied)
{
	struct dirent *e;
	DIR *dir;
	int r = 0;

	/* A description of its own: readdir() moves no offset of dirfd. */
	r = open_dir(dirfd, ".", &dir);
	if (r < 0)
		return r;
	for (;;) {
		struct kvmstats_desc d;
		struct stat st;
		uint64_t v;

		errno = 0;
		e = readdir(dir);
		if (!e) {
			r = errno ? -errno : 0;
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				r = -ENOENT;
				break;
			}
			continue;
		}
		/* vcpuN/ holds no counters; symlinks are not followed. */
		if (!S_ISREG(st.st_mode))
			continue;
		/*
		 * The kernel names its files after its stats (C identifiers); a
		 * file named otherwise is not KVM's, and its name would reach
		 * chart ids and file paths: left out, counted, never read.
		 */
		if (!decode_name_valid(e->d_name)) {
			decode_name_refuse(&l->refused, e->d_name);
			continue;
		}
		if (skip && skip(e->d_name, ctx))
			continue;
		if (!classify(e->d_name, st.st_mode, known, nknown, &d))
			continue;
		r = read_value(dirfd, e->d_name, &v);
		if (r == -EPERM || r == -EACCES) {
			(*denied)++;
			r = 0;
			continue;
		}
		if (r == -ENOENT)
			break;
		if (r < 0) {
			/* Not a "%llu" file (mmu_rmaps_stat) or unreadable. */
			r = 0;
			continue;
		}
		r = pending_add(l, e->d_name, &d);
		if (r < 0)
			break;
	}
	closedir(dir);
	return r;
}

int debugfs_probe(const char *root)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/*
 * Besides the errors the header names: -EINVAL bad pid or vm_fd,
 * -EACCES/-EPERM root or the directory not searchable, -E2BIG more than
 * MAX_STATS files, -ENOMEM. A directory with no usable file (all refused,
 * skipped or histograms) is a success with an empty schema (num_desc 0),
 * so the caller can tell "nothing to read" from "no such VM".
 * The caller frees *ret_vm with debugfs_close().
 */
int debugfs_open(const char *root, pid_t pid, int vm_fd,
		 const struct kvmstats_schema *const *known, size_t nknown,
		 bool (*skip)(const char *name, void *ctx), void *ctx,
		 struct debugfs_vm **ret_vm, unsigned *ret_denied)
{
	struct pending_list l = { 0 };
	struct debugfs_vm *vm;
	char name[32];
	unsigned denied = 0;
	int rootfd, r;

	if (pid <= 0 || vm_fd < 0)
		return -EINVAL;
	snprintf(name, sizeof(name), "%d-%d", (int)pid, vm_fd);

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->dirfd = -1;

	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		r = -errno;
		goto fail;
	}
	vm->dirfd = openat(rootfd, name,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	r = vm->dirfd < 0 ? -errno : 0;
	close(rootfd);
	if (r < 0)
		goto fail;

	r = list_stats(vm->dirfd, known, nknown, skip, ctx, &l, &denied);
	if (r < 0)
		goto fail;
	r = build_schema(&l, &vm->schema);
	if (r < 0)
		goto fail;
	if (vm->schema->num_values > 0) {
		vm->scratch = calloc(vm->schema->num_values, sizeof(uint64_t));
		if (!vm->scratch) {
			r = -ENOMEM;
			goto fail;
		}
	}
	pending_free(&l);
	*ret_vm = vm;
	if (ret_denied)
		*ret_denied = denied;
	return 0;

fail:
	pending_free(&l);
	debugfs_close(vm);
	return r;
}

const struct kvmstats_schema *debugfs_schema(const struct debugfs_vm *vm)
{
	return vm->schema;
}

/*
 * Returns 0 with every value in values, or an error with values untouched:
 * -ESRCH the VM is gone (its directory was removed: release the VM),
 * -EBADMSG a file held something else than a number, -EPERM lockdown
 * (a file readable at open is refused now), other -errno from open/read.
 */
int debugfs_sample(struct debugfs_vm *vm, uint64_t *values)
{
	const struct kvmstats_schema *s = vm->schema;

	for (uint32_t i = 0; i < s->num_desc; i++) {
		const struct kvmstats_desc *d = &s->desc[i];
		int r;

		r = read_value(vm->dirfd, d->name, &vm->scratch[d->index]);
		if (r < 0)
			return r == -ENOENT ? -ESRCH : r;
	}
	if (s->num_values > 0)
		memcpy(values, vm->scratch, s->num_values * sizeof(uint64_t));
	return 0;
}

void debugfs_close(struct debugfs_vm *vm)
{
	if (!vm)
		return;
	if (vm->dirfd >= 0)
		close(vm->dirfd);
	schema_unref(vm->schema);
	free(vm->scratch);
	free(vm);
}
