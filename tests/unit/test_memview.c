/* SPDX-License-Identifier: MIT */
/*
 * test_memview.c: unit tests of memview.c's configured-RAM parse, on
 * command lines as /proc/PID/cmdline gives them (NUL-separated).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "memview.h"

#define CMD(s) (s), (sizeof(s) - 1)

static void test_qemu_forms(void **state)
{
	uint64_t b = 0;

	(void)state;
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0" "512"), &b), 0);
	assert_int_equal(b, 512ULL << 20);
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0" "4G\0-smp\0" "2"), &b), 0);
	assert_int_equal(b, 4ULL << 30);
	/* libvirt's form */
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0size=4194304k,slots=16,maxmem=8G"), &b), 0);
	assert_int_equal(b, 4ULL << 30);
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0" "2G,slots=2"), &b), 0);
	assert_int_equal(b, 2ULL << 30);
	/* the last -m wins, as in QEMU */
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0" "1G\0-m\0" "3G"), &b), 0);
	assert_int_equal(b, 3ULL << 30);
	/* kvmtool */
	assert_int_equal(memview_cmdline_ram(CMD("lkvm\0run\0--mem\0" "256"), &b), 0);
	assert_int_equal(b, 256ULL << 20);
}

static void test_bad_and_missing(void **state)
{
	uint64_t b = 7;

	(void)state;
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-name\0-m"), &b), -ENOENT);
	assert_int_equal(memview_cmdline_ram(CMD("-m\0" "1G"), &b), -ENOENT); /* argv[0] */
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0" "12X"), &b), -EINVAL);
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0" "99999999999999999999"), &b), -EINVAL);
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0" "18446744073709551615T"), &b), -EINVAL);
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0slots=2"), &b), -EINVAL);
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m\0\0"), &b), -EINVAL);
	assert_int_equal(memview_cmdline_ram(CMD("qemu\0-m"), &b), -ENOENT);
	assert_int_equal(b, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_forms),
		cmocka_unit_test(test_bad_and_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
