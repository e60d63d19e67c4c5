/* SPDX-License-Identifier: MIT */
/*
 * test_uevent.c: unit tests of common/uevent.c: the parser of KVM's VM
 * create/destroy uevents, on the exact bytes this kernel sends (as read with
 * a NETLINK_KOBJECT_UEVENT socket while tests/fixtures/testvm ran), and the
 * socket: it opens, and holds no event of any other device.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uevent.h"

/* A datagram as the kernel sends it: NUL-separated, ending with a NUL. */
#define CREATE_MSG \
	"change@/devices/virtual/misc/kvm\0ACTION=change\0" \
	"DEVPATH=/devices/virtual/misc/kvm\0SUBSYSTEM=misc\0CREATED=2471\0" \
	"COUNT=2\0EVENT=create\0PID=18264\0STATS_PATH=/kvm/18264-4\0MAJOR=10\0" \
	"MINOR=232\0DEVNAME=kvm\0SEQNUM=5760\0"

static int parse(const char *msg, size_t len, struct kvm_uevent *ev)
{
	return uevent_parse(msg, len, ev);
}

static void test_create(void **state)
{
	struct kvm_uevent ev;

	(void)state;
	assert_int_equal(parse(CREATE_MSG, sizeof(CREATE_MSG) - 1, &ev), 0);
	assert_int_equal(ev.kind, KVM_UEVENT_CREATE);
	assert_int_equal(ev.pid, 18264);
}

static void test_destroy(void **state)
{
	static const char msg[] = "change@/devices/virtual/misc/kvm\0ACTION=change\0"
				  "EVENT=destroy\0PID=7\0";
	struct kvm_uevent ev;

	(void)state;
	assert_int_equal(parse(msg, sizeof(msg) - 1, &ev), 0);
	assert_int_equal(ev.kind, KVM_UEVENT_DESTROY);
	assert_int_equal(ev.pid, 7);
}

/* Every cut of a real message parses or is refused, never read past len. */
static void test_every_truncation(void **state)
{
	static const char head[] = "change@/devices/virtual/misc/kvm";
	const char *pid = memmem(CREATE_MSG, sizeof(CREATE_MSG) - 1, "PID=18264", 9);
	const size_t pid_end = (size_t)(pid - CREATE_MSG) + 9;

	(void)state;
	for (size_t len = 0; len < sizeof(CREATE_MSG) - 1; len++) {
		char *copy = malloc(len ? len : 1);
		struct kvm_uevent ev = { .kind = KVM_UEVENT_OTHER, .pid = -1 };
		int r;

		memcpy(copy, CREATE_MSG, len);
		r = parse(copy, len, &ev);
		if (len < sizeof(head))
			assert_int_equal(r, -EBADMSG);
		else if (len <= pid_end)	/* PID= cut off, or not reached */
			assert_true(r == -EBADMSG || (r == 0 && ev.kind == KVM_UEVENT_OTHER));
		else
			assert_true(r == 0 && ev.kind == KVM_UEVENT_CREATE && ev.pid == 18264);
		free(copy);
	}
}

static void test_refused(void **state)
{
	static const struct { const char *msg; size_t len; } bad[] = {
#define M(s) { s, sizeof(s) - 1 }
		/* another device */
		M("change@/devices/virtual/misc/kvmx\0EVENT=create\0PID=1\0"),
		M("add@/devices/virtual/misc/kvm\0EVENT=create\0PID=1\0"),
		M("change@/devices/virtual/misc/kv"),
		/* create or destroy without a valid PID */
		M("change@/devices/virtual/misc/kvm\0EVENT=create\0"),
		M("change@/devices/virtual/misc/kvm\0EVENT=create\0PID=0\0"),
		M("change@/devices/virtual/misc/kvm\0EVENT=create\0PID=-1\0"),
		M("change@/devices/virtual/misc/kvm\0EVENT=create\0PID=12x\0"),
		M("change@/devices/virtual/misc/kvm\0EVENT=create\0PID= 12\0"),
		M("change@/devices/virtual/misc/kvm\0EVENT=create\0PID=99999999999\0"),
		M("change@/devices/virtual/misc/kvm\0EVENT=destroy\0PID=\0"),
#undef M
	};
	struct kvm_uevent ev;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i].msg, bad[i].len, &ev), -EBADMSG);
}

/* A kvm event that is neither create nor destroy is kept, as OTHER. */
static void test_other_kvm_event(void **state)
{
	static const char msg[] = "change@/devices/virtual/misc/kvm\0EVENT=termination\0PID=5\0";
	struct kvm_uevent ev;

	(void)state;
	assert_int_equal(parse(msg, sizeof(msg) - 1, &ev), 0);
	assert_int_equal(ev.kind, KVM_UEVENT_OTHER);
}

/* Keys must match whole: EVENT=created is no create, XPID= no pid. */
static void test_whole_keys(void **state)
{
	static const char msg[] = "change@/devices/virtual/misc/kvm\0EVENT=created\0"
				  "XPID=5\0EVENT=destroy\0PID=9\0";
	struct kvm_uevent ev;

	(void)state;
	assert_int_equal(parse(msg, sizeof(msg) - 1, &ev), 0);
	assert_int_equal(ev.kind, KVM_UEVENT_DESTROY);
	assert_int_equal(ev.pid, 9);
}

static void test_socket(void **state)
{
	struct kvm_uevent ev;
	int fd;

	(void)state;
	fd = uevent_open();
	if (fd == -EPROTONOSUPPORT || fd == -EPERM || fd == -EACCES)
		skip();	/* no netlink uevents here: the core walks /proc instead */
	assert_true(fd >= 0);
	/* Nothing yet, and the call does not block. */
	assert_int_equal(uevent_next(fd, &ev), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_other_kvm_event),
		cmocka_unit_test(test_whole_keys),
		cmocka_unit_test(test_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
