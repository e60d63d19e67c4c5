/* SPDX-License-Identifier: MIT */
/*
 * discover.c: finds the processes that run KVM VMs by walking a proc root
 * ("/proc", or a fake tree in tests), and lists their KVM fds.
 *
 * A VMM is a process with an fd whose /proc/PID/fd/N link reads
 * "anon_inode:kvm-vm". KVM names its anonymous inodes in virt/kvm/kvm_main.c
 * (anon_inode_getfd("kvm-vm"), "kvm-vcpu:%d", "kvm-vm-stats",
 * "kvm-vcpu-stats:%d") and fs/anon_inodes.c prints them as "anon_inode:%s".
 * A process is identified by its pid and the starttime of /proc/PID/stat
 * (proc(5) field 22), because a pid alone is reused once the process exits.
 * The name and uuid come from the command line, the name else from the
 * cgroup or a Proxmox VE config (cmdline.c).
 *
 * The walk runs every interval on hosts with thousands of processes, so a
 * process without a kvm-vm fd costs no allocation and no cmdline read: one
 * scan reuses a directory buffer and an fd array for every process, and
 * reads each fd link once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"
#include "discover.h"
#include "util.h"

/* Bytes asked of getdents64() at a time: about 1,000 fds or pids. */
#define DENTS_BUF_SIZE 32768

/*
 * Longer than every link we classify ("anon_inode:kvm-vcpu-stats:" and an
 * int), so a link that fills the buffer is not ours: it is never parsed
 * truncated.
 */
#define LINK_BUF_SIZE 64

/*
 * A /proc/PID/stat line is 52 fields: a comm of at most 64 bytes (workqueue
 * workers) and numbers of at most 20 digits, well under this.
 */
#define STAT_BUF_SIZE 4096

/* The field of /proc/PID/stat that holds starttime, counting from 1. */
#define STAT_FIELD_STARTTIME 22

/* What one scan reuses for every process it reads. */
struct scratch {
	char *dents;			/* getdents64() buffer for fd dirs */
	struct discover_fd *fds;	/* KVM fds of the process being read */
	size_t fds_cap;
};

/* getdents64() over an open directory, without the malloc of a DIR. */
struct dir_iter {
	int fd;
	char *buf;			/* DENTS_BUF_SIZE bytes, lent */
	size_t pos;
	size_t len;
};

/* ENOENT and ESRCH on a process's files both mean it has exited. */
static int gone_to_esrch(int r)
{
	return r == -ENOENT || r == -ESRCH ? -ESRCH : r;
}

/* 1 and *ret when s is a decimal in [0, max] and nothing else, 0 when not. */
static int parse_decimal(const char *s, unsigned long max, unsigned long *ret)
{
	const char *end;

	return util_parse_ulong(s, '\0', 0, max, ret, &end);
}

/* 1 with *ret_name for the next entry, 0 at the end, -errno. */
static int dir_next(struct dir_iter *it, const char **ret_name)
{
	const struct dirent64 *d;

	if (it->pos >= it->len) {
		ssize_t n = getdents64(it->fd, it->buf, DENTS_BUF_SIZE);

		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		it->pos = 0;
		it->len = (size_t)n;
	}
	d = (const struct dirent64 *)(it->buf + it->pos);
	if (it->len - it->pos < offsetof(struct dirent64, d_name) ||
	    d->d_reclen == 0 || d->d_reclen > it->len - it->pos)
		return -EIO;
	it->pos += d->d_reclen;
	*ret_name = d->d_name;
	return 1;
}

/*
 * Parses a /proc/PID/stat line (NUL-terminated at len). Field 2 is the comm
 * in parentheses, and a comm may hold spaces and ')' itself ("(qemu) x)"):
 * only the LAST ')' ends it, since no later field contains one. Fields 3 and
 * on are separated by single spaces. ret_comm (17 bytes) may be NULL.
 */
static int parse_stat(const char *buf, size_t len, uint64_t *ret_starttime,
		      char *ret_comm)
{
	const char *open, *close, *p, *end = buf + len;
	unsigned long long v;
	unsigned field = 2;
	char *num_end;
	size_t comm_len;

	open = memchr(buf, '(', len);
	close = memrchr(buf, ')', len);
	if (!open || !close || close < open)
		return -EBADMSG;

	for (p = close + 1; p < end && field < STAT_FIELD_STARTTIME; p++)
		if (*p == ' ')
			field++;
	if (field != STAT_FIELD_STARTTIME || *p < '0' || *p > '9')
		return -EBADMSG;
	errno = 0;
	v = strtoull(p, &num_end, 10);
	if (errno != 0 || (*num_end != ' ' && *num_end != '\n' &&
			   *num_end != '\0'))
		return -EBADMSG;

	if (ret_comm) {
		comm_len = (size_t)(close - open - 1);
		if (comm_len > 16)
			comm_len = 16;
		memcpy(ret_comm, open + 1, comm_len);
		ret_comm[comm_len] = '\0';
	}
	*ret_starttime = v;
	return 0;
}

/* Starttime and (if ret_comm) comm of the process whose dir is piddir. */
static int read_stat(int piddir, uint64_t *ret_starttime, char *ret_comm)
{
	char buf[STAT_BUF_SIZE];
	ssize_t n;
	int fd;

	fd = openat(piddir, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gone_to_esrch(-errno);
	n = util_read_upto(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return gone_to_esrch((int)n);
	if ((size_t)n == sizeof(buf) - 1)
		return -EBADMSG;	/* longer than any stat line */
	buf[n] = '\0';
	return parse_stat(buf, (size_t)n, ret_starttime, ret_comm);
}

/* Reads the file name in dirfd whole. The caller frees *ret_buf. */
static int read_file_alloc(int dirfd, const char *name, char **ret_buf,
			   size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL;
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		char *bigger;
		ssize_t n;

		if (len == cap && __builtin_mul_overflow(cap, 2, &cap)) {
			r = -EOVERFLOW;
			goto fail;
		}
		bigger = realloc(buf, cap);
		if (!bigger) {
			r = -ENOMEM;
			goto fail;
		}
		buf = bigger;
		n = util_read_upto(fd, buf + len, cap - len);
		if (n < 0) {
			r = (int)n;
			goto fail;
		}
		len += (size_t)n;
		if (len < cap)
			break;		/* EOF before the buffer filled */
	}
	close(fd);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
fail:
	free(buf);
	close(fd);
	return r;
}

/*
 * 1 with the kind and vCPU number when link (NUL-terminated, len bytes) is
 * one of KVM's anon inodes, 0 when not. A number that is not what the
 * kernel's "%d" of a vCPU id prints (empty, signed, not all digits, past
 * INT_MAX) makes the link not ours.
 */
static int classify_link(const char *link, size_t len,
			 enum discover_fd_kind *ret_kind, int *ret_vcpu)
{
	static const struct {
		const char *text;
		enum discover_fd_kind kind;
		bool numbered;		/* text is a prefix of ":N" links */
	} links[] = {
		{ "anon_inode:kvm-vm", DISCOVER_FD_VM, false },
		{ "anon_inode:kvm-vm-stats", DISCOVER_FD_VM_STATS, false },
		{ "anon_inode:kvm-vcpu:", DISCOVER_FD_VCPU, true },
		{ "anon_inode:kvm-vcpu-stats:", DISCOVER_FD_VCPU_STATS, true },
	};
	size_t i;

	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		size_t tlen = strlen(links[i].text);
		unsigned long vcpu;

		if (len < tlen || memcmp(link, links[i].text, tlen) != 0)
			continue;
		if (!links[i].numbered) {
			if (len != tlen)
				continue;
			*ret_kind = links[i].kind;
			*ret_vcpu = -1;
			return 1;
		}
		if (!parse_decimal(link + tlen, INT_MAX, &vcpu))
			return 0;
		*ret_kind = links[i].kind;
		*ret_vcpu = (int)vcpu;
		return 1;
	}
	return 0;
}

/* Appends to s->fds[0..n), growing it as needed. */
static int scratch_push_fd(struct scratch *s, size_t n,
			   const struct discover_fd *fd)
{
	if (n == s->fds_cap) {
		size_t cap = s->fds_cap ? s->fds_cap : 16, bytes;
		struct discover_fd *bigger;

		if ((s->fds_cap && __builtin_mul_overflow(cap, 2, &cap)) ||
		    __builtin_mul_overflow(cap, sizeof(*bigger), &bytes))
			return -EOVERFLOW;
		bigger = realloc(s->fds, bytes);
		if (!bigger)
			return -ENOMEM;
		s->fds = bigger;
		s->fds_cap = cap;
	}
	s->fds[n] = *fd;
	return 0;
}

/*
 * Lists the KVM fds of the process whose dir is piddir into s->fds, one
 * readlinkat() per fd. Returns how many, with *ret_nvms the kvm-vm ones.
 */
static int list_kvm_fds(int piddir, struct scratch *s, unsigned *ret_nvms)
{
	struct dir_iter it = { .buf = s->dents };
	const char *name;
	unsigned nvms = 0;
	size_t n = 0;
	int r;

	it.fd = openat(piddir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (it.fd < 0)
		return gone_to_esrch(-errno);

	while ((r = dir_next(&it, &name)) > 0) {
		char link[LINK_BUF_SIZE];
		struct discover_fd fd;
		unsigned long num;
		ssize_t len;

		if (!parse_decimal(name, INT_MAX, &num))
			continue;	/* "." and ".." */
		len = readlinkat(it.fd, name, link, sizeof(link));
		if (len < 0) {
			if (errno == ENOENT)
				continue;	/* closed since the listing */
			r = -errno;
			break;
		}
		if ((size_t)len == sizeof(link))
			continue;	/* maybe truncated: longer than ours */
		link[len] = '\0';
		if (!classify_link(link, (size_t)len, &fd.kind, &fd.vcpu))
			continue;
		fd.fd = (int)num;
		r = scratch_push_fd(s, n, &fd);
		if (r < 0)
			break;
		n++;
		if (fd.kind == DISCOVER_FD_VM)
			nvms++;
	}
	close(it.fd);
	if (r < 0)
		return gone_to_esrch(r);
	if (n > INT_MAX)
		return -EOVERFLOW;
	*ret_nvms = nvms;
	return (int)n;
}

static int compare_fds(const void *a, const void *b)
{
	const struct discover_fd *x = a, *y = b;

	return (x->fd > y->fd) - (x->fd < y->fd);
}

/*
 * Where Proxmox VE keeps this node's VM configs (pmxcfs). Fixed, since
 * discover_process() takes no such root; read only for a VMM that has
 * "-id N" but no -name, which qemu-server never starts (it always passes
 * -name, "vm<N>" at least): a kvm started by hand the Proxmox way may.
 */
#define DISCOVER_PVE_ROOT "/etc/pve/qemu-server"

/*
 * Names a VMM whose command line does not: from libvirt's machine in its
 * cgroup, else from the Proxmox config of its -id (pve_vmid, 0 if none).
 * Run each scan for such VMMs only. Either source may be missing or
 * unreadable (no libvirt, not root, the process just exited): then the
 * name stays NULL. Only -ENOMEM fails.
 */
static int name_from_host(int piddir, uint32_t pve_vmid,
			  struct discover_proc *p)
{
	char *text = NULL, *name = NULL;
	size_t len = 0;
	int r;

	r = read_file_alloc(piddir, "cgroup", &text, &len);
	if (r == -ENOMEM)
		return r;
	if (r == 0) {
		r = cmdline_cgroup_name(text, len, &name);
		free(text);
		if (r < 0)
			return r;
		if (r > 0) {
			p->name = name;
			p->name_source = DISCOVER_NAME_CGROUP;
			return 0;
		}
	}
	if (pve_vmid == 0)
		return 0;
	r = cmdline_pve_name(DISCOVER_PVE_ROOT, pve_vmid, &name);
	if (r == -ENOMEM)
		return r;
	if (r > 0) {
		p->name = name;
		p->name_source = DISCOVER_NAME_PVE;
	}
	return 0;
}

/*
 * Builds the result for a VMM: copies and sorts its fds, and reads name and
 * uuid from its cmdline (empty for a zombie: then both stay NULL), the name
 * else from its cgroup or Proxmox config.
 */
static int make_proc(int piddir, pid_t pid, uint64_t starttime,
		     const char *comm, const struct discover_fd *fds,
		     size_t nfds, struct discover_proc **ret_proc)
{
	struct discover_proc *p;
	struct cmdline_vm vm;
	char *cmdline = NULL;
	size_t len = 0, bytes;
	int r;

	if (__builtin_mul_overflow(nfds, sizeof(*fds), &bytes))
		return -EOVERFLOW;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->starttime = starttime;
	memcpy(p->comm, comm, sizeof(p->comm));
	p->fds = malloc(bytes);
	if (!p->fds) {
		r = -ENOMEM;
		goto fail;
	}
	memcpy(p->fds, fds, bytes);
	p->nfds = nfds;
	/* /proc lists fds in order, a fake tree need not. */
	qsort(p->fds, nfds, sizeof(*p->fds), compare_fds);

	r = read_file_alloc(piddir, "cmdline", &cmdline, &len);
	if (r < 0) {
		r = gone_to_esrch(r);
		goto fail;
	}
	r = cmdline_parse_vm(cmdline, len, &vm);
	free(cmdline);
	if (r < 0)
		goto fail;
	p->name = vm.name;
	p->uuid = vm.uuid;
	if (p->name) {
		p->name_source = DISCOVER_NAME_CMDLINE;
	} else if (len > 0) {
		r = name_from_host(piddir, vm.pve_vmid, p);
		if (r < 0)
			goto fail;
	}
	*ret_proc = p;
	return 0;
fail:
	discover_proc_free(p);
	return r;
}

/* discover_process() with an open proc root and a scan's scratch. */
static int read_process(int rootfd, pid_t pid, struct scratch *s,
			struct discover_proc **ret_proc)
{
	uint64_t starttime, again;
	char name[16], comm[17];
	unsigned nvms = 0;
	int piddir, nfds, r;

	if (pid <= 0)
		return -EINVAL;
	snprintf(name, sizeof(name), "%d", (int)pid);
	piddir = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (piddir < 0)
		return gone_to_esrch(-errno);

	r = read_stat(piddir, &starttime, comm);
	if (r < 0)
		goto out;
	nfds = list_kvm_fds(piddir, s, &nvms);
	if (nfds < 0) {
		r = nfds;
		goto out;
	}
	if (nvms == 0) {
		r = 0;
		goto out;
	}

	/*
	 * The fd listing is not atomic: the process may have exited during it,
	 * leaving a partial list, and its pid may already name another
	 * process. Reading stat again tells. Through /proc itself piddir stays
	 * bound to the process it was opened for, so once that is reaped stat
	 * gives ENOENT, never the next owner of the pid; a proc root that does
	 * not pin its entries that way (a fake tree) shows the reuse as a
	 * changed starttime, and then the fds may come from two processes.
	 * Either way the process is gone. Done for a VMM only: for any other
	 * process the answer is 0 either way, and it saves a read per process.
	 */
	r = read_stat(piddir, &again, NULL);
	if (r < 0)
		goto out;
	if (again != starttime) {
		r = -ESRCH;
		goto out;
	}

	r = make_proc(piddir, pid, starttime, comm, s->fds, (size_t)nfds,
		      ret_proc);
	if (r == 0)
		r = 1;
out:
	close(piddir);
	return r;
}

static int scratch_init(struct scratch *s)
{
	*s = (struct scratch){ 0 };
	s->dents = malloc(DENTS_BUF_SIZE);
	return s->dents ? 0 : -ENOMEM;
}

static void scratch_done(struct scratch *s)
{
	free(s->dents);
	free(s->fds);
}

static int open_root(const char *proc_root)
{
	int fd = open(proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/*
 * Besides the contract in kvmstats.h: -EINVAL for pid <= 0, and -errno of
 * open() (-ENOENT, -EACCES) when proc_root itself cannot be opened.
 */
int discover_process(const char *proc_root, pid_t pid,
		     struct discover_proc **ret_proc)
{
	struct scratch s;
	int rootfd, r;

	rootfd = open_root(proc_root);
	if (rootfd < 0)
		return rootfd;
	r = scratch_init(&s);
	if (r == 0)
		r = read_process(rootfd, pid, &s, ret_proc);
	scratch_done(&s);
	close(rootfd);
	return r;
}

void discover_proc_free(struct discover_proc *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->uuid);
	free(p->fds);
	free(p);
}

const char *discover_proc_name(const struct discover_proc *p)
{
	return p->name ? p->name : p->comm;
}

/*
 * Besides the contract in kvmstats.h: a process that vanished or whose fds
 * may not be listed is counted and skipped; any other error reading one
 * (-EMFILE, -EBADMSG, ...) stops the walk and is returned, since it would
 * hit the next processes too. *ret_stats (may be NULL) is zeroed first and
 * always written, also when the walk stops early.
 */
int discover_scan(const char *proc_root,
		  int (*cb)(const struct discover_proc *p, void *ctx),
		  void *ctx, struct discover_stats *ret_stats)
{
	struct discover_stats stats = { 0 };
	struct dir_iter it = { .fd = -1 };
	struct scratch s;
	const char *name;
	int found = 0, r;

	if (ret_stats)
		*ret_stats = stats;
	it.fd = open_root(proc_root);
	if (it.fd < 0)
		return it.fd;
	r = scratch_init(&s);
	if (r < 0)
		goto out_root;
	it.buf = malloc(DENTS_BUF_SIZE);
	if (!it.buf) {
		r = -ENOMEM;
		goto out_scratch;
	}

	while ((r = dir_next(&it, &name)) > 0) {
		struct discover_proc *p = NULL;
		unsigned long pid;

		/* Only processes: not "self", "sys", "1a", nor pid 0. */
		if (!parse_decimal(name, INT_MAX, &pid) || pid == 0)
			continue;
		stats.scanned++;
		r = read_process(it.fd, (pid_t)pid, &s, &p);
		if (r == -ESRCH) {
			stats.vanished++;
			continue;
		}
		if (r == -EACCES || r == -EPERM) {
			stats.denied++;
			continue;
		}
		if (r < 0 && r != -ENOMEM) {
			if (stats.failed++ == 0)
				stats.failed_error = r;
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		if (r == 0)
			continue;
		found++;
		r = cb(p, ctx);
		discover_proc_free(p);
		if (r < 0)
			break;
	}
	if (r == 0)
		r = found;

	free(it.buf);
out_scratch:
	scratch_done(&s);
out_root:
	close(it.fd);
	if (ret_stats)
		*ret_stats = stats;
	return r;
}

int discover_fd_count(const char *proc_root, pid_t pid)
{
	char path[PATH_MAX];
	struct stat st;

	if (pid <= 0)
		return -EINVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/%d/fd", proc_root, (int)pid) >= sizeof(path))
		return -ENAMETOOLONG;
	if (stat(path, &st) < 0)
		return gone_to_esrch(-errno);
	return st.st_size > INT_MAX ? INT_MAX : (int)st.st_size;
}

int discover_starttime(const char *proc_root, pid_t pid, uint64_t *ret)
{
	char name[16];
	int rootfd, piddir, r;

	if (pid <= 0)
		return -EINVAL;
	rootfd = open_root(proc_root);
	if (rootfd < 0)
		return rootfd;
	snprintf(name, sizeof(name), "%d", (int)pid);
	piddir = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(rootfd);
	if (piddir < 0)
		return gone_to_esrch(-errno);
	r = read_stat(piddir, ret, NULL);
	close(piddir);
	return r;
}
