/* SPDX-License-Identifier: MIT */
/*
 * test_cmdline.c: unit tests of cmdline.c, the VM names from command
 * lines, cgroups and Proxmox VE configs, and of how discover.c uses them.
 *
 * Realistic inputs are fixtures in tests/fixtures/cmdlines/ (made by its
 * make-fixtures script): NUL-separated command lines as /proc/PID/cmdline
 * gives them, /proc/PID/cgroup texts (v1 and v2), and a fake
 * /etc/pve/qemu-server. Hostile inputs are built here. Every parse gets a
 * copy of exactly len bytes, so that ASan or valgrind catch a read past it.
 * The discover tests build a fake proc tree under mkdtemp() and remove it
 * with nftw().
 */
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
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmdline.h"
#include "discover.h"
#include "tree.h"

/* A literal with its length, embedded NULs included. */
#define CMD(s) (s), (sizeof(s) - 1)

/* What cmdline.c keeps of a name at most. */
#define VALUE_MAX 4096

/* A name far past VALUE_MAX. */
#define LONG_NAME 10240

/* ---------------------------------------------------------------- helpers */

static void fixture_path(char *buf, size_t size, const char *file)
{
	const char *dir = getenv("KVMSTATS_FIXTURES");
	int n;

	n = snprintf(buf, size, "%s/cmdlines/%s", dir ? dir : "tests/fixtures",
		     file);
	assert_true(n > 0 && (size_t)n < size);
}

/* The fixture file whole, in a buffer of exactly its size. */
static char *fixture_load(const char *file, size_t *ret_len)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf;
	int fd;

	fixture_path(path, sizeof(path), file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size > 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*ret_len = (size_t)st.st_size;
	return buf;
}

/* A copy of exactly len bytes (NULL for 0), so reads past len are caught. */
static char *copy_exact(const char *data, size_t len)
{
	char *copy;

	if (len == 0)
		return NULL;
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, data, len);
	return copy;
}

static void assert_maybe_string(const char *got, const char *want)
{
	if (want)
		assert_string_equal(got, want);
	else
		assert_null(got);
}

static void check_vm(const char *cmdline, size_t len, const char *name,
		     const char *uuid, uint32_t vmid)
{
	char *copy = copy_exact(cmdline, len);
	struct cmdline_vm vm = { (char *)0x1, (char *)0x1, 7 };
	char *n = (char *)0x1, *u = (char *)0x1;

	assert_int_equal(cmdline_parse_vm(copy, len, &vm), 0);
	assert_maybe_string(vm.name, name);
	assert_maybe_string(vm.uuid, uuid);
	assert_int_equal(vm.pve_vmid, vmid);
	cmdline_vm_done(&vm);
	assert_null(vm.name);
	assert_null(vm.uuid);

	/* The older call says the same, bar the vmid. */
	assert_int_equal(cmdline_parse(copy, len, &n, &u), 0);
	assert_maybe_string(n, name);
	assert_maybe_string(u, uuid);
	free(n);
	free(u);
	free(copy);
}

static void check_fixture(const char *file, const char *name,
			  const char *uuid, uint32_t vmid)
{
	size_t len;
	char *buf = fixture_load(file, &len);

	check_vm(buf, len, name, uuid, vmid);
	free(buf);
}

/* cmdline_cgroup_name() on an exact copy; name NULL: expects none. */
static void check_cgroup(const char *text, size_t len, const char *name)
{
	char *copy = copy_exact(text, len);
	char *got = (char *)0x1;

	if (name) {
		assert_int_equal(cmdline_cgroup_name(copy, len, &got), 1);
		assert_string_equal(got, name);
		free(got);
	} else {
		assert_int_equal(cmdline_cgroup_name(copy, len, &got), 0);
		assert_ptr_equal(got, (char *)0x1);	/* untouched */
	}
	free(copy);
}

static void check_cgroup_fixture(const char *file, const char *name)
{
	size_t len;
	char *buf = fixture_load(file, &len);

	check_cgroup(buf, len, name);
	free(buf);
}

static void check_pve_text(const char *text, size_t len, const char *name)
{
	char *copy = copy_exact(text, len);
	char *got = (char *)0x1;

	if (name) {
		assert_int_equal(cmdline_pve_conf_name(copy, len, &got), 1);
		assert_string_equal(got, name);
		free(got);
	} else {
		assert_int_equal(cmdline_pve_conf_name(copy, len, &got), 0);
		assert_ptr_equal(got, (char *)0x1);
	}
	free(copy);
}

/* head, then reps times fill, then tail, in a malloc of exactly that. */
static char *build_long(const char *head, size_t head_len, const char *fill,
			size_t reps, const char *tail, size_t tail_len,
			size_t *ret_len)
{
	size_t fill_len = strlen(fill), i;
	size_t len = head_len + reps * fill_len + tail_len;
	char *buf = malloc(len), *p;

	assert_non_null(buf);
	memcpy(buf, head, head_len);
	p = buf + head_len;
	for (i = 0; i < reps; i++, p += fill_len)
		memcpy(p, fill, fill_len);
	memcpy(p, tail, tail_len);
	*ret_len = len;
	return buf;
}

/* A string of VALUE_MAX times c. */
static char *capped(char c)
{
	char *s = malloc(VALUE_MAX + 1);

	assert_non_null(s);
	memset(s, c, VALUE_MAX);
	s[VALUE_MAX] = '\0';
	return s;
}

static int setup(void **state)
{
	return tree_setup(state, "cmdline");
}

/* ---------------------------------------------------------- command lines */

static void test_libvirt_qemu(void **state)
{
	(void)state;
	check_fixture("libvirt-qemu.cmdline", "web01",
		      "8c1f0d4e-5a3b-4f6e-9d2a-7b1c3e5f9a20", 0);
}

static void test_pve_qemu(void **state)
{
	(void)state;
	/* -name "db-1,debug-threads=on" as one argument; no -uuid. */
	check_fixture("pve-qemu.cmdline", "db-1", NULL, 101);
	check_fixture("pve-qemu-noname.cmdline", NULL, NULL, 101);
}

static void test_pve_vmid(void **state)
{
	(void)state;
	check_vm(CMD("kvm\0-id\0999999999\0"), NULL, NULL, 999999999);
	check_vm(CMD("kvm\0--id\0" "100\0"), NULL, NULL, 100);
	check_vm(CMD("kvm\0-id\0" "100\0-id\0" "007\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0" "100\0-id\0" "7"), NULL, NULL, 7);
	check_vm(CMD("kvm\0-id\0" "5\0-id\0x\0"), NULL, NULL, 0);	/* last */

	/* Not a vmid the config could be named by. */
	check_vm(CMD("kvm\0-id\0" "0\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0" "0101\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0+5\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0-1\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0 5\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0" "5 \0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0" "1e3\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0" "1000000000\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0" "18446744073709551617\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id\0\0"), NULL, NULL, 0);
	check_vm(CMD("kvm\0-id=5\0"), NULL, NULL, 0);

	/* Missing value at the end, with and without the last NUL. */
	check_vm(CMD("kvm\0-name\0vm\0-id\0"), "vm", NULL, 0);
	check_vm(CMD("kvm\0-name\0vm\0-id"), "vm", NULL, 0);
}

static void test_firecracker(void **state)
{
	(void)state;
	check_fixture("firecracker.cmdline", "vm-7", NULL, 0);
	check_fixture("firecracker-eq.cmdline", "vm-8", NULL, 0);

	/* A value never starts with "--": it would not have started. */
	check_vm(CMD("firecracker\0--id\0--api-sock\0/s\0"), NULL, NULL, 0);
	check_vm(CMD("firecracker\0--id\0--\0--id\0x\0"), NULL, NULL, 0);
	check_vm(CMD("firecracker\0--id\0-x\0"), "-x", NULL, 0);
	/* After "--" nothing is its own. */
	check_vm(CMD("firecracker\0--api-sock\0/s\0--\0--id\0x\0"), NULL, NULL,
		 0);
	check_vm(CMD("firecracker\0--id\0a\0--id=b\0"), "b", NULL, 0);
	check_vm(CMD("firecracker\0--id\0"), NULL, NULL, 0);
	check_vm(CMD("firecracker\0--id"), NULL, NULL, 0);
	check_vm(CMD("firecracker\0--id=\0"), NULL, NULL, 0);
	check_vm(CMD("firecracker\0--id\0\0"), NULL, NULL, 0);
	/* Its options only: not QEMU's, not single-dash ones. */
	check_vm(CMD("firecracker\0-name\0x\0-uuid\0u\0-id\0" "5\0"), NULL,
		 NULL, 0);
	check_vm(CMD("firecracker\0-id\0x\0"), NULL, NULL, 0);
	check_vm(CMD("/jail/root/firecracker\0--id\0j\0"), "j", NULL, 0);
}

static void test_kvmtool(void **state)
{
	(void)state;
	/* The fixture has "-n mode=tap,...": -n is --network. */
	check_fixture("kvmtool.cmdline", "guest-3", NULL, 0);
	check_vm(CMD("lkvm\0run\0-n\0mode=tap\0-m\0" "256\0"), NULL, NULL, 0);
	check_vm(CMD("lkvm\0run\0--name=g4\0"), "g4", NULL, 0);
	check_vm(CMD("/usr/bin/lkvm-static\0run\0--name\0a\0--name\0b\0"),
		 "b", NULL, 0);
	check_vm(CMD("lkvm\0run\0--name\0"), NULL, NULL, 0);
	check_vm(CMD("lkvm\0run\0--name"), NULL, NULL, 0);
	check_vm(CMD("lkvm\0run\0--name=\0"), NULL, NULL, 0);
	check_vm(CMD("lkvm\0run\0--name\0\0"), NULL, NULL, 0);
	check_vm(CMD("lkvm\0run\0-name\0x\0"), NULL, NULL, 0);
	check_vm(CMD("lkvm\0run\0--names\0x\0"), NULL, NULL, 0);
	/* Commas are the name's own: no QEMU escaping here. */
	check_vm(CMD("lkvm\0run\0--name\0a,,b,c\0"), "a,,b,c", NULL, 0);
}

static void test_cloud_hypervisor(void **state)
{
	(void)state;
	check_fixture("cloud-hypervisor.cmdline", NULL, NULL, 0);
	check_vm(CMD("cloud-hypervisor\0-name\0x\0--id\0y\0--name\0z\0"),
		 NULL, NULL, 0);
}

static void test_cmdline_hostile(void **state)
{
	static const struct {
		const char *text;
		size_t len;
	} heads[] = {
		{ CMD("qemu\0-name\0guest=") },
		{ CMD("qemu\0-name\0") },
		{ CMD("firecracker\0--id\0") },
		{ CMD("firecracker\0--id=") },
		{ CMD("lkvm\0run\0--name\0") },
		{ CMD("lkvm\0run\0--name=") },
	};
	char *want = capped('x');
	size_t i, len;

	(void)state;
	/* 10 KiB names are capped, with and without the last NUL. */
	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		char *buf = build_long(heads[i].text, heads[i].len, "x",
				       LONG_NAME, CMD("\0"), &len);

		check_vm(buf, len, want, NULL, 0);
		check_vm(buf, len - 1, want, NULL, 0);
		free(buf);
	}

	/* NULs split arguments: a name cannot hold one. */
	check_vm(CMD("qemu\0-name\0a\0b\0"), "a", NULL, 0);
	check_vm(CMD("firecracker\0--id\0a\0b\0"), "a", NULL, 0);
	/* Bytes kept as they are. */
	check_vm(CMD("firecracker\0--id\0\xff\n\x1b[2J;$(id)\0"),
		 "\xff\n\x1b[2J;$(id)", NULL, 0);
	/* Only argv[0], or nothing. */
	check_vm(CMD("firecracker"), NULL, NULL, 0);
	check_vm(CMD("lkvm\0"), NULL, NULL, 0);
	check_vm(NULL, 0, NULL, NULL, 0);
	free(want);
}

/* ----------------------------------------------------------------- cgroup */

static void test_cgroup_libvirt(void **state)
{
	(void)state;
	check_cgroup_fixture("libvirt-v2.cgroup", "web01");
	check_cgroup_fixture("libvirt-v1.cgroup", "mail-store.prod");
	check_cgroup_fixture("libvirt-legacy.cgroup", "caf\xc3\xa9 db");
	check_cgroup_fixture("libvirt-nosystemd.cgroup", "build-box");
	check_cgroup_fixture("pve.cgroup", NULL);
	check_cgroup_fixture("user.cgroup", NULL);
}

static void test_cgroup_forms(void **state)
{
	(void)state;
	/* Other drivers, the embedded driver, uppercase hex. */
	check_cgroup(CMD("0::/machine.slice/machine-lxc\\x2d77\\x2dct1.scope\n"),
		     "ct1");
	check_cgroup(CMD("0::/machine.slice/machine-ch\\x2d1\\x2dfc.scope\n"),
		     "fc");
	check_cgroup(CMD("0::/machine.slice/machine-qemu\\x2dembed\\x2d"
			 "0123abcd\\x2d2\\x2dvm1.scope/libvirt/emulator\n"),
		     "vm1");
	check_cgroup(CMD("0::/machine.slice/machine-qemu\\x2dembed\\x2d"
			 "0123abcz\\x2d2\\x2dvm1.scope\n"),
		     "embed-0123abcz-2-vm1");
	check_cgroup(CMD("0::/machine.slice/machine-qemu\\X2D3\\x2Dweb.scope\n"),
		     "qemu\\X2D3-web");
	check_cgroup(CMD("0::/machine.slice/machine-qemu\\x2d3\\x2DWeb.scope\n"),
		     "Web");
	/* A custom partition; a machine that is no libvirt VM is whole. */
	check_cgroup(CMD("0::/machine-prod.slice/machine-qemu\\x2d9\\x2dapi.scope\n"),
		     "api");
	check_cgroup(CMD("0::/machine.slice/machine-fedora\\x2d40.scope/payload\n"),
		     "fedora-40");
	check_cgroup(CMD("0::/machine.slice/machine-xen\\x2d1\\x2dx.scope\n"),
		     "xen-1-x");
	/* The deepest machine names the VM. */
	check_cgroup(CMD("0::/machine.slice/machine-box.scope/payload/"
			 "machine-qemu\\x2d1\\x2dinner.scope/libvirt/emulator\n"),
		     "inner");
	/* The first line that names a machine. */
	check_cgroup(CMD("1:name=systemd:/user.slice\n"
			 "0::/machine.slice/machine-qemu\\x2d2\\x2db.scope\n"),
		     "b");
	/* No systemd: '_' escapes, drivers, no unit escapes. */
	check_cgroup(CMD("3:memory:/machine/_cpu.libvirt-qemu\n"), "cpu");
	check_cgroup(CMD("3:memory:/machine/old\\x2dvm.libvirt-lxc\n"),
		     "old\\x2dvm");
	check_cgroup(CMD("3:memory:/machine/x.libvirt-xen\n"), NULL);
	check_cgroup(CMD("3:memory:/machine/.libvirt-qemu\n"), NULL);
	check_cgroup(CMD("3:memory:/machine/x.libvirt-qemu.scope\n"), NULL);
	/* Not machines, or machines without a name. */
	check_cgroup(CMD("0::/machine.slice\n"), NULL);
	check_cgroup(CMD("0::/machine.slice/machine-.scope\n"), NULL);
	check_cgroup(CMD("0::/machine.slice/machine-qemu\\x2d1\\x2d.scope\n"),
		     NULL);
	check_cgroup(CMD("0::/machine.slice/machine-qemu\\x2d1.scope\n"), "1");
	check_cgroup(CMD("0::/system.slice/machine-x.service\n"), NULL);
	check_cgroup(CMD("0::/\n"), NULL);
	check_cgroup(CMD(""), NULL);
	check_cgroup(CMD("\n\n"), NULL);
	/* Without the last newline; a path with empty components. */
	check_cgroup(CMD("0:://machine.slice//machine-qemu\\x2d1\\x2dz.scope//"),
		     "z");
}

static void test_cgroup_hostile(void **state)
{
	char *buf, *want;
	size_t len;

	(void)state;
	/* Escapes cut short, not hex, or for NUL stay as they are. */
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2dbad\\x2.scope\n"),
		     "bad\\x2");
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2da\\xZZb.scope\n"),
		     "a\\xZZb");
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2da\\x00b.scope\n"),
		     "a\\x00b");
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2da\\x.scope\n"),
		     "a\\x");
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2da\\.scope\n"),
		     "a\\");
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2d\\x0a\\x1b.scope\n"),
		     "\n\x1b");
	check_cgroup(CMD("0::/m.slice/machine-\\x5cx2d.scope\n"), "\\x2d");
	/* An escape ending right at len, the scope suffix cut off. */
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2dab\\x2"), NULL);
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2dab.scop"), NULL);

	/* A NUL ends a line: what follows it is the next one. */
	check_cgroup(CMD("0::/m.slice/machine-qemu\\x2d1\\x2dab\0cd.scope\n"),
		     NULL);
	check_cgroup(CMD("0::/m.slice/machine-q\0" "0::/m.slice/machine-"
			 "qemu\\x2d1\\x2dok.scope"), "ok");
	check_cgroup(CMD("\0\0\0"), NULL);
	/* Lines without their two colons. */
	check_cgroup(CMD("/machine.slice/machine-qemu\\x2d1\\x2dz.scope\n"),
		     NULL);
	check_cgroup(CMD("0:/machine.slice/machine-qemu\\x2d1\\x2dz.scope\n"),
		     NULL);
	check_cgroup(CMD("::::\n:\n"), NULL);

	/* 10 KiB names, plain and escaped, are capped. */
	want = capped('a');
	buf = build_long(CMD("0::/machine.slice/machine-qemu\\x2d1\\x2d"), "a",
			 LONG_NAME, CMD(".scope/emulator\n"), &len);
	check_cgroup(buf, len, want);
	free(buf);
	buf = build_long(CMD("0::/machine.slice/machine-qemu\\x2d1\\x2d"),
			 "\\x61", LONG_NAME, CMD(".scope"), &len);
	check_cgroup(buf, len, want);
	free(buf);
	buf = build_long(CMD("3:memory:/machine/qemu-1-"), "a", LONG_NAME,
			 CMD(".libvirt-qemu"), &len);
	check_cgroup(buf, len, want);
	free(buf);
	free(want);
}

/* ------------------------------------------------------------- Proxmox VE */

static void test_pve_config(void **state)
{
	char root[PATH_MAX], *name = (char *)0x1;

	(void)state;
	fixture_path(root, sizeof(root), "pve/qemu-server");
	/* Not the description's, the pending change's or a snapshot's. */
	assert_int_equal(cmdline_pve_name(root, 101, &name), 1);
	assert_string_equal(name, "db-1");
	free(name);
	name = (char *)0x1;
	assert_int_equal(cmdline_pve_name(root, 102, &name), 0);
	assert_int_equal(cmdline_pve_name(root, 103, &name), -ENOENT);
	assert_int_equal(cmdline_pve_name(root, 0, &name), -EINVAL);
	assert_int_equal(cmdline_pve_name(NULL, 101, &name), -EINVAL);
	assert_int_equal(cmdline_pve_name("/nonexistent/qemu-server", 101,
					  &name), -ENOENT);
	assert_ptr_equal(name, (char *)0x1);
}

static void test_pve_conf_text(void **state)
{
	char *buf, *want;
	size_t len;

	(void)state;
	check_pve_text(CMD("name: a\n"), "a");
	check_pve_text(CMD("name:a"), "a");
	check_pve_text(CMD("name: \t db 1 \r\n"), "db 1");
	check_pve_text(CMD("name: a\nname: b\n"), "b");
	/* A blank one is skipped, as PVE drops a value it cannot parse. */
	check_pve_text(CMD("name: a\nname:   \n"), "a");
	check_pve_text(CMD("name:"), NULL);
	check_pve_text(CMD(" name: x\n"), NULL);
	check_pve_text(CMD("names: x\nnam: y\nname x\n"), NULL);
	check_pve_text(CMD("#name: x\n"), NULL);
	check_pve_text(CMD("cores: 1\n[snap]\nname: x\n"), NULL);
	check_pve_text(CMD("[PENDING]\nname: x\n"), NULL);
	check_pve_text(CMD(""), NULL);
	/* A NUL ends a line. */
	check_pve_text(CMD("name: a\0b\n"), "a");
	check_pve_text(CMD("x\0name: c\n"), "c");
	/* Bytes kept as they are, capped. */
	check_pve_text(CMD("name: \xff;$(id)\x1b\n"), "\xff;$(id)\x1b");
	want = capped('n');
	buf = build_long(CMD("name: "), "n", LONG_NAME, CMD("\n"), &len);
	check_pve_text(buf, len, want);
	free(buf);
	free(want);
}

static void test_pve_config_files(void **state)
{
	struct tree *t = *state;
	char path[PATH_MAX], *name = (char *)0x1, *big;
	size_t cap = 1024 * 1024, pos;

	/* Not regular files: a directory, a FIFO (must not block). */
	tree_path(t, path, sizeof(path), "105.conf");
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(cmdline_pve_name(t->root, 105, &name), -EINVAL);
	tree_path(t, path, sizeof(path), "106.conf");
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_int_equal(cmdline_pve_name(t->root, 106, &name), -EINVAL);
	assert_ptr_equal(name, (char *)0x1);

	/* Past the cap: whole lines up to it are read, a cut one is not. */
	big = malloc(cap + 64);
	assert_non_null(big);
	memset(big, '#', cap + 64);
	for (pos = 99; pos < cap - 16; pos += 100)
		big[pos] = '\n';
	memcpy(big, "name: early\n", 12);
	tree_path(t, path, sizeof(path), "107.conf");
	tree_write(path, big, cap + 64);
	assert_int_equal(cmdline_pve_name(t->root, 107, &name), 1);
	assert_string_equal(name, "early");
	free(name);
	name = (char *)0x1;

	memset(big, '#', 12);
	memcpy(big + cap - 8, "\nname: late-and-cut\n", 20);
	tree_write(path, big, cap + 64);
	assert_int_equal(cmdline_pve_name(t->root, 107, &name), 0);
	memcpy(big + cap - 30, "\nname: in\n", 10);
	tree_write(path, big, cap + 64);
	assert_int_equal(cmdline_pve_name(t->root, 107, &name), 1);
	assert_string_equal(name, "in");
	free(name);
	free(big);

	/* A root so long that the path does not fit. */
	big = malloc(PATH_MAX + 2);
	assert_non_null(big);
	memset(big, 'r', PATH_MAX + 1);
	big[PATH_MAX + 1] = '\0';
	name = (char *)0x1;
	assert_int_equal(cmdline_pve_name(big, 101, &name), -ENAMETOOLONG);
	assert_ptr_equal(name, (char *)0x1);
	free(big);
}

/* ---------------------------------------------------------------- discover */

static void add_dir(const struct tree *t, const char *rel)
{
	char path[PATH_MAX];

	tree_path(t, path, sizeof(path), "%s", rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

/*
 * A VMM under the tree: PID/stat as the kernel prints it (field 22 is
 * starttime), PID/cmdline, a kvm-vm fd link and, if cgroup is not NULL,
 * PID/cgroup.
 */
static void add_vmm(const struct tree *t, pid_t pid, const char *comm,
		    const char *cmdline, size_t len, const char *cgroup)
{
	char path[PATH_MAX], line[1024];
	int n;

	tree_path(t, path, sizeof(path), "%d", (int)pid);
	assert_int_equal(mkdir(path, 0755), 0);
	tree_path(t, path, sizeof(path), "%d/fd", (int)pid);
	assert_int_equal(mkdir(path, 0755), 0);
	tree_path(t, path, sizeof(path), "%d/fd/3", (int)pid);
	assert_int_equal(symlink("anon_inode:kvm-vm", path), 0);

	n = snprintf(line, sizeof(line),
		     "%d (%s) S 1 %d %d 0 -1 4194560 51234 0 12 0 1520 733 "
		     "0 0 20 0 7 0 %d 4631375872 265423 "
		     "18446744073709551615 1 1 0 0 0 0 268444224 4096 17987 "
		     "0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		     (int)pid, comm, (int)pid, (int)pid, 1000 + (int)pid);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	tree_path(t, path, sizeof(path), "%d/stat", (int)pid);
	tree_write(path, line, (size_t)n);
	tree_path(t, path, sizeof(path), "%d/cmdline", (int)pid);
	tree_write(path, cmdline, len);
	if (cgroup) {
		tree_path(t, path, sizeof(path), "%d/cgroup", (int)pid);
		tree_write(path, cgroup, strlen(cgroup));
	}
}

static void check_discover(const struct tree *t, pid_t pid, const char *name,
			   enum discover_name_source source, const char *uuid)
{
	struct discover_proc *p = NULL;

	assert_int_equal(discover_process(t->root, pid, &p), 1);
	assert_non_null(p);
	assert_maybe_string(p->name, name);
	assert_int_equal(p->name_source, source);
	assert_maybe_string(p->uuid, uuid);
	assert_string_equal(discover_proc_name(p), name ? name : p->comm);
	discover_proc_free(p);
}

static void test_discover_names(void **state)
{
	static const char libvirt_v2[] =
		"0::/machine.slice/machine-qemu\\x2d3\\x2dweb01.scope/libvirt/"
		"emulator\n";
	struct tree *t = *state;
	char pve[64];
	int before = tree_count_fds();

	/* No -name: libvirt's machine names it; -uuid still counts. */
	add_vmm(t, 100, "qemu-system-x86",
		CMD("/usr/bin/qemu-system-x86_64\0-uuid\0u-100\0-m\0" "512\0"),
		libvirt_v2);
	check_discover(t, 100, "web01", DISCOVER_NAME_CGROUP, "u-100");

	/* The command line goes first: its name is libvirt's unmangled. */
	add_vmm(t, 101, "qemu-system-x86",
		CMD("qemu-system-x86_64\0-name\0guest=web 01!,debug-threads=on\0"),
		libvirt_v2);
	check_discover(t, 101, "web 01!", DISCOVER_NAME_CMDLINE, NULL);

	/* No name anywhere, or no cgroup file: comm. */
	add_vmm(t, 102, "qemu-system-x86", CMD("qemu-system-x86_64\0-m\0" "1G\0"),
		"0::/user.slice/user-1000.slice/session-2.scope\n");
	check_discover(t, 102, NULL, DISCOVER_NAME_NONE, NULL);
	add_vmm(t, 103, "qemu-system-x86", CMD("qemu-system-x86_64\0"), NULL);
	check_discover(t, 103, NULL, DISCOVER_NAME_NONE, NULL);

	/* Firecracker and kvmtool name themselves. */
	add_vmm(t, 104, "firecracker",
		CMD("/firecracker\0--id\0vm-7\0--api-sock\0/run/fc.sock\0"),
		libvirt_v2);
	check_discover(t, 104, "vm-7", DISCOVER_NAME_CMDLINE, NULL);
	add_vmm(t, 105, "lkvm", CMD("lkvm\0run\0--name\0guest-3\0"), NULL);
	check_discover(t, 105, "guest-3", DISCOVER_NAME_CMDLINE, NULL);

	/* Cloud Hypervisor under libvirt: only its cgroup names it. */
	add_vmm(t, 106, "cloud-hyperviso",
		CMD("cloud-hypervisor\0--api-socket\0path=/run/ch.sock\0"),
		"0::/machine.slice/machine-ch\\x2d2\\x2dedge.scope/libvirt/emulator\n");
	check_discover(t, 106, "edge", DISCOVER_NAME_CGROUP, NULL);

	/* A cgroup that cannot be read is no error. */
	add_vmm(t, 107, "qemu-system-x86", CMD("qemu\0"), NULL);
	add_dir(t, "107/cgroup");
	check_discover(t, 107, NULL, DISCOVER_NAME_NONE, NULL);

	/* A zombie's empty cmdline: its cgroup is not asked. */
	add_vmm(t, 108, "qemu-system-x86", "", 0, libvirt_v2);
	check_discover(t, 108, NULL, DISCOVER_NAME_NONE, NULL);

	/*
	 * Proxmox -id without -name: its cgroup has only the vmid, and
	 * discover.c reads the real /etc/pve/qemu-server, which this host is
	 * not expected to have for this vmid (cmdline_pve_name() is tested on
	 * a fake root above).
	 */
	snprintf(pve, sizeof(pve), "/etc/pve/qemu-server/%u.conf", 999999999u);
	add_vmm(t, 109, "kvm", CMD("/usr/bin/kvm\0-id\0" "999999999\0"),
		"0::/qemu.slice/999999999.scope\n");
	if (access(pve, F_OK) != 0)
		check_discover(t, 109, NULL, DISCOVER_NAME_NONE, NULL);

	assert_int_equal(tree_count_fds(), before);
}

/* name_utf8_len(): RFC 3629, strictly; 0 where a front end must replace. */
static void test_name_utf8_len(void **state)
{
	static const struct { const char *s; size_t len; } cases[] = {
		{ "a", 1 }, { "\x7f", 1 },
		{ "\xc3\xa9", 2 }, { "\xe2\x82\xac", 3 }, { "\xf0\x9f\x98\x80", 4 },
		{ "\xf4\x8f\xbf\xbf", 4 },		/* U+10FFFF */
		{ "\xc0\xaf", 0 }, { "\xc1\xbf", 0 },	/* overlong '/' and DEL */
		{ "\xe0\x80\xaf", 0 }, { "\xf0\x80\x80\xaf", 0 },	/* overlong */
		{ "\xed\xa0\x80", 0 },		/* a surrogate, U+D800 */
		{ "\xf4\x90\x80\x80", 0 }, { "\xf5\x80\x80\x80", 0 },	/* > U+10FFFF */
		{ "\x80", 0 }, { "\xbf", 0 }, { "\xfe", 0 }, { "\xff", 0 },
		{ "\xe2\x82", 0 }, { "\xe2", 0 },	/* cut: the NUL is no continuation */
		{ "\xe2\x82\x41", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(name_utf8_len(cases[i].s), cases[i].len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libvirt_qemu),
		cmocka_unit_test(test_pve_qemu),
		cmocka_unit_test(test_pve_vmid),
		cmocka_unit_test(test_firecracker),
		cmocka_unit_test(test_kvmtool),
		cmocka_unit_test(test_cloud_hypervisor),
		cmocka_unit_test(test_cmdline_hostile),
		cmocka_unit_test(test_cgroup_libvirt),
		cmocka_unit_test(test_cgroup_forms),
		cmocka_unit_test(test_cgroup_hostile),
		cmocka_unit_test(test_pve_config),
		cmocka_unit_test(test_pve_conf_text),
		cmocka_unit_test(test_name_utf8_len),
		cmocka_unit_test_setup_teardown(test_pve_config_files, setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_discover_names, setup,
						tree_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
