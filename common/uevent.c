/* SPDX-License-Identifier: MIT */
/*
 * uevent.c: KVM's VM create and destroy events, so that a rescan of a host
 * where nothing changed need not walk /proc.
 *
 * The kernel sends a uevent on the kvm misc device for every VM created and
 * destroyed (virt/kvm/kvm_main.c, kvm_uevent_notify_change()):
 *
 *   change@/devices/virtual/misc/kvm\0ACTION=change\0...\0EVENT=create\0PID=1234\0...
 *
 * PID is the creating process in the initial pid namespace. The create
 * event is sent just before the VM's fd is installed in that process, so a
 * reader may see the event before the fd: the caller looks again later.
 * Anyone may listen to kernel uevents; a socket filter keeps every other
 * device's events out of our receive buffer.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uevent.h"
#include "util.h"

#define KVM_UEVENT_HEAD "change@/devices/virtual/misc/kvm"

/* Big enough for any uevent: the kernel's UEVENT_BUFFER_SIZE is 2048. */
#define UEVENT_MSG_MAX 8192

/*
 * Accepts a datagram only if it starts with KVM_UEVENT_HEAD and its NUL:
 * 33 bytes, compared as eight big-endian words and one byte.
 */
static int attach_filter(int fd)
{
	static const char head[] = KVM_UEVENT_HEAD;
	struct sock_filter code[2 * 8 + 2 + 2];
	struct sock_fprog prog = { .filter = code };
	unsigned n = 0, words = (sizeof(head) - 1) / 4;

	_Static_assert(sizeof(head) - 1 == 32, "the filter compares 8 words");
	for (unsigned i = 0; i < words; i++) {
		const unsigned char *w = (const unsigned char *)head + 4 * i;
		uint32_t k = (uint32_t)w[0] << 24 | (uint32_t)w[1] << 16 |
			     (uint32_t)w[2] << 8 | w[3];

		code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4 * i);
		/* On a mismatch jump to the final "drop". */
		code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0,
							 (uint8_t)(2 * (words - i) + 1));
	}
	code[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 4 * words);
	code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
	code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, UINT32_MAX);
	code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	prog.len = (unsigned short)n;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		return -errno;
	return 0;
}

int uevent_open(void)
{
	struct sockaddr_nl addr = {
		.nl_family = AF_NETLINK,
		.nl_groups = 1,		/* the kernel's own events, not udev's */
	};
	int fd, r;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return -errno;
	r = attach_filter(fd);
	if (r == 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int uevent_parse(const char *msg, size_t len, struct kvm_uevent *ret_event)
{
	struct kvm_uevent ev = { .kind = KVM_UEVENT_OTHER, .pid = 0 };
	size_t at;

	if (len < sizeof(KVM_UEVENT_HEAD) ||
	    memcmp(msg, KVM_UEVENT_HEAD, sizeof(KVM_UEVENT_HEAD)) != 0)
		return -EBADMSG;
	/* KEY=VALUE strings, each ended by a NUL; a last one without is cut. */
	for (at = sizeof(KVM_UEVENT_HEAD); at < len;) {
		const char *kv = msg + at;
		const char *end = memchr(kv, '\0', len - at);
		unsigned long pid;
		const char *stop;

		if (!end)
			break;
		if (strcmp(kv, "EVENT=create") == 0)
			ev.kind = KVM_UEVENT_CREATE;
		else if (strcmp(kv, "EVENT=destroy") == 0)
			ev.kind = KVM_UEVENT_DESTROY;
		else if (strncmp(kv, "PID=", 4) == 0) {
			if (!util_parse_ulong(kv + 4, '\0', 1, INT_MAX, &pid, &stop))
				return -EBADMSG;
			ev.pid = (pid_t)pid;
		}
		at = (size_t)(end - msg) + 1;
	}
	if (ev.kind != KVM_UEVENT_OTHER && ev.pid == 0)
		return -EBADMSG;
	*ret_event = ev;
	return 0;
}

int uevent_next(int fd, struct kvm_uevent *ret_event)
{
	char buf[UEVENT_MSG_MAX];

	for (;;) {
		struct sockaddr_nl from = { 0 };
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = {
			.msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &iov, .msg_iovlen = 1,
		};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		/* Only the kernel speaks on group 1; a user process could too. */
		if (from.nl_pid != 0 || (mh.msg_flags & MSG_TRUNC))
			continue;
		if (uevent_parse(buf, (size_t)n, ret_event) == 0 &&
		    ret_event->kind != KVM_UEVENT_OTHER)
			return 1;
	}
}
