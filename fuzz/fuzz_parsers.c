/* SPDX-License-Identifier: MIT */
/*
 * fuzz_parsers.c: libFuzzer target for the text parsers of common/ that
 * take what users and other processes write:
 *   common/filter.c   include/exclude entries of the Netdata and collectd
 *                     configs (exact names and "/regex/"), matched against
 *                     stat and VM names
 *   common/cmdline.c  a VMM's /proc/PID/cmdline, /proc/PID/cgroup text and
 *                     a Proxmox VE VM config; name_utf8_len() over names
 *   common/uevent.c   a kvm device uevent datagram
 * The Netdata plugin's kvm_stats.conf parser has its own target
 * (fuzz_netdata_config.c); collectd's oconfig handler is static in
 * collectd/kvm_stats.c, and what reaches the core from it is
 * filter_add()'s entries, fuzzed here.
 *
 * The first byte of the input picks the parser (its value modulo 6), the
 * rest is that parser's text, given in a heap copy of its exact length:
 *   0  filter: one entry per '\n'-separated line; a line starting with '-'
 *      is an exclude entry, any other an include entry, the first byte
 *      being the marker in both cases; then every entry and a few stat
 *      names are matched
 *   1  cmdline_parse_vm() and cmdline_parse(): NUL-separated argv
 *   2  cmdline_cgroup_name(): /proc/PID/cgroup text
 *   3  cmdline_pve_conf_name(): /etc/pve/qemu-server/<vmid>.conf text
 *   4  uevent_parse(): the datagram, NULs and all
 *   5  name_utf8_len() at every byte of the text (cut at its first NUL)
 *
 * Finding fuzz_parsers-regcomp-blowup (fixed, kept as a regression):
 * glibc's regcomp() copies a subexpression once per repetition ("a+" is
 * "aa*", "a{1,n}" n nested optional copies) and computes closures
 * quadratic in those copies: "/a++++++++++++++++++++++/" (24 bytes) took
 * 3 GB, "/(a{1,32767})/" 8 GB. filter.c now refuses such a pattern.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cmdline.h"
#include "filter.h"
#include "uevent.h"
#include "fuzz_check.h"

/* Bytes kept of an untrusted name (cmdline.c's CMDLINE_VALUE_MAX). */
#define VALUE_MAX 4096
/* collectd keeps at most 256 Stat or VM entries. */
#define MAX_ENTRIES 256

enum parser { P_FILTER, P_CMDLINE, P_CGROUP, P_PVE, P_UEVENT, P_UTF8, NPARSERS };


/* An accepted name: a non-empty C string within the cap. */
static void check_name(const char *name)
{
	size_t n;

	FUZZ_CHECK(name != NULL);
	n = strlen(name);
	FUZZ_CHECK(n > 0 && n <= VALUE_MAX);
}

static void fuzz_filter(const char *text, size_t len)
{
	static const char *const names[] = {
		"exits", "halt_exits", "halt_poll_success_ns", "pages_4k",
		"x", "\xff\xfe\x80 not utf-8", "",
	};
	char *entry[MAX_ENTRIES];
	bool exclude[MAX_ENTRIES], added[MAX_ENTRIES];
	size_t n = 0, nadded = 0, nexclude = 0;
	const char *p = text, *end = text + len;
	struct filter *f;

	FUZZ_CHECK(filter_new(&f) == 0);
	FUZZ_CHECK(filter_empty(f) == 1);
	while (p < end && n < MAX_ENTRIES) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((eol ? eol : end) - p);
		int r;

		exclude[n] = l > 0 && p[0] == '-';
		/* The marker byte goes; a NUL inside ends the entry. */
		entry[n] = strndup(l > 0 ? p + 1 : p, l > 0 ? l - 1 : 0);
		FUZZ_CHECK(entry[n] != NULL);
		r = filter_add(f, entry[n], exclude[n]);
		FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
		added[n] = r == 0;
		if (added[n]) {
			nadded++;
			nexclude += exclude[n];
		}
		n++;
		p = eol ? eol + 1 : end;
	}
	FUZZ_CHECK(filter_empty(f) == (nadded == 0));

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int r = filter_match(f, names[i]);

		FUZZ_CHECK(r == 0 || r == 1);
		if (nadded == 0)
			FUZZ_CHECK(r == 1);
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = entry[i];
		size_t elen = strlen(name);
		bool regex = elen > 2 && name[0] == '/' && name[elen - 1] == '/';
		int r = filter_match(f, name);

		FUZZ_CHECK(r == 0 || r == 1);
		if (!added[i] || regex)
			continue;
		/* An exact entry matches its own name: exclude wins. */
		if (exclude[i])
			FUZZ_CHECK(r == 0);
		else if (nexclude == 0)
			FUZZ_CHECK(r == 1);
	}
	FUZZ_CHECK(filter_match(f, NULL) == -EINVAL);
	FUZZ_CHECK(filter_add(f, NULL, false) == -EINVAL);
	FUZZ_CHECK(filter_add(f, "", true) == -EINVAL);
	FUZZ_CHECK(filter_match(NULL, "exits") == 1);
	for (size_t i = 0; i < n; i++)
		free(entry[i]);
	filter_free(f);
}

static void fuzz_cmdline(const char *text, size_t len)
{
	struct cmdline_vm vm = { 0 };
	char *name = NULL, *uuid = NULL;
	int r;

	r = cmdline_parse_vm(text, len, &vm);
	FUZZ_CHECK(r == 0 || r == -ENOMEM);
	if (r < 0)
		return;
	if (vm.name)
		check_name(vm.name);
	if (vm.uuid)
		check_name(vm.uuid);
	/* Proxmox VE's vmid range (pve-vmid in PVE::JSONSchema). */
	FUZZ_CHECK(vm.pve_vmid <= 999999999u);

	/* The same without the vmid. */
	r = cmdline_parse(text, len, &name, &uuid);
	FUZZ_CHECK(r == 0 || r == -ENOMEM);
	if (r == 0) {
		FUZZ_CHECK((name == NULL) == (vm.name == NULL));
		FUZZ_CHECK(!name || strcmp(name, vm.name) == 0);
		FUZZ_CHECK((uuid == NULL) == (vm.uuid == NULL));
		FUZZ_CHECK(!uuid || strcmp(uuid, vm.uuid) == 0);
		free(name);
		free(uuid);
	}
	cmdline_vm_done(&vm);
	FUZZ_CHECK(vm.name == NULL && vm.uuid == NULL);
	cmdline_vm_done(NULL);
}

static void fuzz_cgroup(const char *text, size_t len)
{
	char *name = NULL;
	int r = cmdline_cgroup_name(text, len, &name);

	FUZZ_CHECK(r == 0 || r == 1 || r == -ENOMEM);
	if (r != 1) {
		FUZZ_CHECK(name == NULL);	/* written only on success */
		return;
	}
	check_name(name);
	free(name);
}

static void fuzz_pve(const char *text, size_t len)
{
	char *name = NULL;
	int r = cmdline_pve_conf_name(text, len, &name);
	size_t n;

	FUZZ_CHECK(r == 0 || r == 1 || r == -ENOMEM);
	if (r != 1) {
		FUZZ_CHECK(name == NULL);
		return;
	}
	check_name(name);
	/* Trimmed of blanks on both sides, one line. */
	n = strlen(name);
	FUZZ_CHECK(!strchr(" \t\r\f\v", name[0]) && !strchr(" \t\r\f\v", name[n - 1]));
	FUZZ_CHECK(!strchr(name, '\n'));
	free(name);
}

static void fuzz_uevent(const char *msg, size_t len)
{
	struct kvm_uevent ev = { .kind = KVM_UEVENT_OTHER, .pid = -1 };
	int r = uevent_parse(msg, len, &ev);

	FUZZ_CHECK(r == 0 || r == -EBADMSG);
	if (r == 0 && ev.kind != KVM_UEVENT_OTHER)
		FUZZ_CHECK(ev.pid > 0);
}

/*
 * Every length it accepts spans bytes of one character, never the NUL.
 * Names are C strings: the text is given with a NUL after its last byte.
 */
static void fuzz_utf8(const char *text, size_t len)
{
	char *name = malloc(len + 1);

	if (!name)
		abort();
	memcpy(name, text, len);
	name[len] = '\0';
	for (const char *p = name; *p; p++) {
		size_t n = name_utf8_len(p);

		FUZZ_CHECK(n <= 4);
		FUZZ_CHECK(((unsigned char)*p < 0x80) == (n == 1));
		for (size_t i = 1; i < n; i++)
			FUZZ_CHECK(((unsigned char)p[i] & 0xc0) == 0x80);
	}
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0)
		return 0;
	text = fuzz_copy(data + 1, size - 1);
	switch ((enum parser)(data[0] % NPARSERS)) {
	case P_FILTER:
		fuzz_filter(text, size - 1);
		break;
	case P_CMDLINE:
		fuzz_cmdline(text, size - 1);
		break;
	case P_CGROUP:
		fuzz_cgroup(text, size - 1);
		break;
	case P_PVE:
		fuzz_pve(text, size - 1);
		break;
	case P_UEVENT:
		fuzz_uevent(text, size - 1);
		break;
	case P_UTF8:
	case NPARSERS:
		fuzz_utf8(text, size - 1);
		break;
	}
	free(text);
	return 0;
}
