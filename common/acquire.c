/* SPDX-License-Identifier: MIT */
/*
 * acquire.c: take copies of the stats fds a VMM holds.
 *
 * Only the VMM can create a stats fd: KVM's ioctls return EIO when the
 * caller's mm is not the VM's, so a copied VM or vCPU fd is useless to us.
 * A stats fd that already exists, though, can be copied with pidfd_getfd()
 * (PTRACE_MODE_ATTACH_REALCREDS over the VMM: same uid, or CAP_SYS_PTRACE)
 * and read here. A copy keeps the VM's kernel objects alive, so whoever
 * holds one must close it as soon as the VMM exits: acquire_exited() tells.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "acquire.h"
#include "discover.h"

int acquire_pidfd(const char *proc_root, pid_t pid, uint64_t starttime)
{
	uint64_t now;
	int pidfd, r;

	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	/*
	 * The pid was read from /proc a moment ago. If the process exited
	 * and the pid was reused since, the start time differs: the pidfd
	 * then names a stranger, not the VMM.
	 */
	r = discover_starttime(proc_root, pid, &now);
	if (r < 0 || now != starttime) {
		close(pidfd);
		return r < 0 && r != -ESRCH ? r : -ESRCH;
	}
	return pidfd;
}

/* What /proc/self/fd/N must say for the kind of stats fd we asked for. */
static bool is_stats_link(const char *link, int vcpu)
{
	char want[64];

	if (vcpu < 0)
		return strcmp(link, "anon_inode:kvm-vm-stats") == 0;
	snprintf(want, sizeof(want), "anon_inode:kvm-vcpu-stats:%d", vcpu);
	return strcmp(link, want) == 0;
}

int acquire_stats_fd(int pidfd, int target_fd, int vcpu)
{
	char path[64], link[64];
	ssize_t n;
	int fd;

	/* The copy comes with FD_CLOEXEC set (pidfd_getfd(2)). */
	fd = pidfd_getfd(pidfd, target_fd, 0);
	if (fd < 0)
		return -errno;
	/*
	 * The VMM may have closed target_fd and reused the number since the
	 * scan; only a stats fd of the kind we saw is kept.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0 || (link[n] = '\0', !is_stats_link(link, vcpu))) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int acquire_exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int r;

	do {
		r = poll(&p, 1, 0);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

int acquire_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	return rl.rlim_cur > INT_MAX ? INT_MAX : (int)rl.rlim_cur;
}
