/* SPDX-License-Identifier: MIT */
/*
 * uevent.h: KVM's VM create and destroy uevents (uevent.c).
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_UEVENT_H
#define KVMSTATS_UEVENT_H

#include <stddef.h>
#include <sys/types.h>

enum kvm_uevent_kind { KVM_UEVENT_OTHER, KVM_UEVENT_CREATE, KVM_UEVENT_DESTROY };

struct kvm_uevent {
	enum kvm_uevent_kind kind;
	pid_t pid;		/* the VM's creator, initial pid namespace */
};

/*
 * A non-blocking socket (O_CLOEXEC) that receives the kernel's uevents of
 * the kvm device only: KVM's VM create and destroy events. The caller
 * closes it. -errno (e.g. -EPROTONOSUPPORT, -EPERM) if none can be had.
 */
int uevent_open(void);

/*
 * The next KVM create or destroy event waiting on fd: 1 with *ret_event,
 * 0 when none is left. -ENOBUFS: events were lost (the receive buffer
 * overflowed), the caller must look at everything.
 */
int uevent_next(int fd, struct kvm_uevent *ret_event);

/*
 * One kvm device uevent datagram. KVM_UEVENT_OTHER for a kvm event that
 * is neither create nor destroy. -EBADMSG: not a kvm device uevent, or a
 * create/destroy without a valid PID.
 */
int uevent_parse(const char *msg, size_t len, struct kvm_uevent *ret_event);

#endif
