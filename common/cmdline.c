/* SPDX-License-Identifier: MIT */
/*
 * cmdline.c: a VM's name (and uuid) from what its host shows of it: the
 * VMM's command line, the VMM's cgroup, and Proxmox VE's VM config.
 *
 * Command lines (/proc/PID/cmdline, NUL-separated), by argv[0]'s basename:
 * - QEMU (anything not below): "-name guest=NAME,debug-threads=on",
 *   "-name NAME" (guest is the implied first key), ",," for a literal
 *   comma, "-uuid UUID", each also with "--"; parsed the way QEMU's
 *   util/qemu-option.c does it. Proxmox VE's QEMU also takes "-id VMID".
 * - Firecracker ("firecracker*", also as the jailer execs it): "--id ID",
 *   parsed as its src/utils arg_parser does: options only with "--", none
 *   after a lone "--". "--id=ID" is taken as well.
 * - kvmtool ("lkvm*"): "--name NAME" or "--name=NAME" (parse-options).
 *   Its "-n" is --network, not a name.
 * - Cloud Hypervisor ("cloud-hypervisor*") has no name option; under
 *   libvirt its cgroup names it.
 * The cgroup (/proc/PID/cgroup) names VMs that libvirt started: systemd's
 * machined puts each in "machine-<escaped machine name>.scope", and
 * without systemd libvirt makes "<machine name>.libvirt-<driver>".
 * Proxmox VE's /etc/pve/qemu-server/<vmid>.conf has a "name:" line.
 *
 * The bytes are anybody's (any user in group kvm can start a VM called
 * anything, and name its own cgroups): they are kept verbatim, only capped
 * at CMDLINE_VALUE_MAX, and sanitized by each front end for its own output.
 */
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
#include "util.h"

/* Bytes kept of a name or uuid from a command line anyone may have chosen. */
#define CMDLINE_VALUE_MAX 4096

/* Proxmox VE's VM ids are 100 to 999999999 (pve-vmid in PVE::JSONSchema). */
#define PVE_VMID_MAX 999999999UL

/*
 * Bytes read of a Proxmox VE config at most. Its main section, which holds
 * the name, comes first and stays far below (the description is capped at
 * 8 KiB); what follows are snapshot sections, each a copy of the config.
 */
#define PVE_CONF_MAX (1024 * 1024)

/* A run of bytes; not NUL-terminated. */
struct span {
	const char *start;
	size_t len;
};

/* Which VMM a command line is of, by the basename of argv[0]. */
enum vmm {
	VMM_QEMU,		/* also anything unknown */
	VMM_FIRECRACKER,
	VMM_KVMTOOL,
	VMM_CLOUD_HYPERVISOR,
};

/* The next argument of [*p, end): NUL-terminated, except maybe the last. */
static bool next_arg(const char **p, const char *end, struct span *ret_arg)
{
	const char *nul;

	if (*p >= end)
		return false;
	nul = memchr(*p, '\0', (size_t)(end - *p));
	ret_arg->start = *p;
	ret_arg->len = (size_t)((nul ? nul : end) - *p);
	*p = nul ? nul + 1 : end;
	return true;
}

static bool span_is(const char *start, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(start, s, len) == 0;
}

static bool span_starts(const struct span *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s->len >= n && memcmp(s->start, prefix, n) == 0;
}

static bool span_ends(const struct span *s, const char *suffix)
{
	size_t n = strlen(suffix);

	return s->len >= n && memcmp(s->start + s->len - n, suffix, n) == 0;
}

static struct span span_skip(const struct span *s, size_t n)
{
	return (struct span){ s->start + n, s->len - n };
}

static enum vmm vmm_of(const struct span *argv0)
{
	const char *slash = memrchr(argv0->start, '/', argv0->len);
	struct span base = *argv0;

	if (slash) {
		base.start = slash + 1;
		base.len = (size_t)(argv0->start + argv0->len - base.start);
	}
	/* Release binaries are "firecracker-v1.7.0-x86_64" and the like. */
	if (span_starts(&base, "firecracker"))
		return VMM_FIRECRACKER;
	if (span_starts(&base, "lkvm"))		/* lkvm, lkvm-static */
		return VMM_KVMTOOL;
	if (span_starts(&base, "cloud-hypervisor"))
		return VMM_CLOUD_HYPERVISOR;
	return VMM_QEMU;
}

/*
 * End of an option value starting at p, as QEMU's get_opt_value() reads
 * it: at the first ',' that is not doubled (",," is a literal comma).
 */
static const char *opt_value_end(const char *p, const char *end)
{
	while (p < end) {
		if (*p == ',') {
			if (end - p < 2 || p[1] != ',')
				break;
			p++;
		}
		p++;
	}
	return p;
}

/*
 * Finds "guest" in one -name value the way QEMU's opts_do_parse() does for
 * its "name" option list: "key=value" elements separated by ','; a first
 * element without '=' is the value of the implied key "guest" ("NAME",
 * "NAME,process=x"); a later one is a flag. Keys end at '=' or ','. Sets
 * *ret_name (still escaped) each time guest is set, so the last one wins.
 */
static void find_guest(const struct span *value, struct span *ret_name,
		       bool *ret_found)
{
	const char *p = value->start, *end = value->start + value->len;
	bool first = true;

	while (p < end) {
		const char *key = p, *key_end = p, *v;

		while (key_end < end && *key_end != '=' && *key_end != ',')
			key_end++;
		if (key_end < end && *key_end == '=') {
			v = key_end + 1;
			p = opt_value_end(v, end);
			if (span_is(key, (size_t)(key_end - key), "guest")) {
				*ret_name = (struct span){ v, (size_t)(p - v) };
				*ret_found = true;
			}
		} else if (first) {
			p = opt_value_end(key, end);
			*ret_name = (struct span){ key, (size_t)(p - key) };
			*ret_found = true;
		} else {
			p = key_end;	/* a flag, "debug-threads" alone */
		}
		if (p < end)
			p++;		/* the ',' between elements */
		first = false;
	}
}

/*
 * Copies v, at most CMDLINE_VALUE_MAX bytes of it, otherwise unchanged:
 * the name is untrusted and the front ends sanitize it for their sink.
 * unescape turns ",," into ','; in a value from opt_value_end() every ','
 * is doubled. *ret is NULL for an empty value. The caller frees *ret.
 */
static int dup_value(const struct span *v, bool unescape, char **ret)
{
	size_t cap = v->len < CMDLINE_VALUE_MAX ? v->len : CMDLINE_VALUE_MAX;
	size_t i, n = 0;
	char *s;

	if (v->len == 0) {
		*ret = NULL;
		return 0;
	}
	s = malloc(cap + 1);
	if (!s)
		return -ENOMEM;
	for (i = 0; i < v->len && n < cap; i++) {
		s[n++] = v->start[i];
		if (unescape && v->start[i] == ',')
			i++;
	}
	s[n] = '\0';
	*ret = s;
	return 0;
}

/*
 * A Proxmox VE vmid as its "-id" gives it: decimal digits only, no leading
 * zero (the config file is named by the number), 1 to PVE_VMID_MAX. 0 when
 * it is anything else: strtoul() alone would take blanks, '+' and "-1".
 */
static uint32_t parse_vmid(const struct span *v)
{
	char digits[16];
	unsigned long id;
	char *end;
	size_t i;

	if (v->len == 0 || v->len >= sizeof(digits) || v->start[0] == '0')
		return 0;
	for (i = 0; i < v->len; i++)
		if (v->start[i] < '0' || v->start[i] > '9')
			return 0;
	memcpy(digits, v->start, v->len);
	digits[v->len] = '\0';
	errno = 0;
	id = strtoul(digits, &end, 10);
	if (errno != 0 || *end != '\0' || id > PVE_VMID_MAX)
		return 0;
	return (uint32_t)id;
}

/* What one command line says, as spans into it. */
struct found {
	struct span name, uuid;
	bool have_name, have_uuid;
	bool name_escaped;	/* ",," in name stands for ',' (QEMU) */
	uint32_t pve_vmid;
};

/*
 * QEMU's lookup_opt() takes "-name" and "--name" alike, and the value only
 * as the next argument ("-name=x" is no option). The "name" list has
 * merge_lists set, so repeated -name options add up and the last guest=
 * wins; of a repeated -uuid or -id the last wins. An option without a
 * following argument is ignored. Options taking a value are not told from
 * others, so a value spelled "-name" of another option misleads this; the
 * name is untrusted anyway.
 */
static void scan_qemu(const char *p, const char *end, struct found *f)
{
	struct span arg, value;

	f->name_escaped = true;
	while (next_arg(&p, end, &arg)) {
		const char *opt = arg.start;
		size_t olen = arg.len;

		if (olen >= 2 && opt[0] == '-' && opt[1] == '-') {
			opt++;
			olen--;
		}
		if (span_is(opt, olen, "-name")) {
			if (!next_arg(&p, end, &value))
				break;
			find_guest(&value, &f->name, &f->have_name);
		} else if (span_is(opt, olen, "-uuid")) {
			if (!next_arg(&p, end, &value))
				break;
			f->uuid = value;
			f->have_uuid = true;
		} else if (span_is(opt, olen, "-id")) {
			if (!next_arg(&p, end, &value))
				break;
			f->pve_vmid = parse_vmid(&value);
		}
	}
}

/*
 * Firecracker's arg_parser: every option is "--key", a value is the next
 * argument and never starts with "--" (it refuses to start otherwise),
 * and what follows a lone "--" is not its own. So "--id" cannot be a
 * value, and this scan is exact. A repeated --id makes it refuse to start.
 */
static void scan_firecracker(const char *p, const char *end, struct found *f)
{
	struct span arg, value;

	while (next_arg(&p, end, &arg)) {
		if (span_is(arg.start, arg.len, "--"))
			break;
		if (span_is(arg.start, arg.len, "--id")) {
			const char *before = p;

			if (!next_arg(&p, end, &value))
				break;
			if (span_starts(&value, "--")) {
				p = before;	/* an option, not a value */
				continue;
			}
			f->name = value;
			f->have_name = true;
		} else if (span_starts(&arg, "--id=")) {
			f->name = (struct span){ arg.start + 5, arg.len - 5 };
			f->have_name = true;
		}
	}
}

/*
 * kvmtool's parse-options (from git's): OPT_STRING('\0', "name", ...), so
 * "--name NAME" or "--name=NAME", the last one winning. Its unambiguous
 * abbreviations ("--nam") are not followed, nor values of other options
 * that read "--name".
 */
static void scan_kvmtool(const char *p, const char *end, struct found *f)
{
	struct span arg, value;

	while (next_arg(&p, end, &arg)) {
		if (span_is(arg.start, arg.len, "--name")) {
			if (!next_arg(&p, end, &value))
				break;
			f->name = value;
			f->have_name = true;
		} else if (span_starts(&arg, "--name=")) {
			f->name = (struct span){ arg.start + 7, arg.len - 7 };
			f->have_name = true;
		}
	}
}

int cmdline_parse_vm(const char *cmdline, size_t len,
		     struct cmdline_vm *ret_vm)
{
	struct found f = { 0 };
	char *name = NULL, *uuid = NULL;
	struct span argv0 = { 0 };
	const char *p;
	int r;

	if (len > 0) {		/* else a kernel thread or a zombie */
		p = cmdline;
		next_arg(&p, cmdline + len, &argv0);
		switch (vmm_of(&argv0)) {
		case VMM_QEMU:
			scan_qemu(p, cmdline + len, &f);
			break;
		case VMM_FIRECRACKER:
			scan_firecracker(p, cmdline + len, &f);
			break;
		case VMM_KVMTOOL:
			scan_kvmtool(p, cmdline + len, &f);
			break;
		case VMM_CLOUD_HYPERVISOR:
			break;
		}
	}

	if (f.have_name) {
		r = dup_value(&f.name, f.name_escaped, &name);
		if (r < 0)
			return r;
	}
	if (f.have_uuid) {
		r = dup_value(&f.uuid, false, &uuid);
		if (r < 0) {
			free(name);
			return r;
		}
	}
	*ret_vm = (struct cmdline_vm){
		.name = name, .uuid = uuid, .pve_vmid = f.pve_vmid,
	};
	return 0;
}

void cmdline_vm_done(struct cmdline_vm *vm)
{
	if (!vm)
		return;
	free(vm->name);
	free(vm->uuid);
	vm->name = NULL;
	vm->uuid = NULL;
}

int cmdline_parse(const char *cmdline, size_t len,
		  char **ret_name, char **ret_uuid)
{
	struct cmdline_vm vm;
	int r;

	r = cmdline_parse_vm(cmdline, len, &vm);
	if (r < 0)
		return r;
	*ret_name = vm.name;
	*ret_uuid = vm.uuid;
	return 0;
}

/* ------------------------------------------------------------------ cgroup */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes systemd's unit name escapes ("\xNN", unit_name_escape()) of
 * s into out (s->len bytes suffice: decoding only shrinks). An escape cut
 * short, not hex, or for a NUL byte (which would end the C string early)
 * is kept as it stands. Returns the length of out.
 */
static size_t unescape_unit(const struct span *s, char *out)
{
	size_t i = 0, n = 0;

	while (i < s->len) {
		const char *c = s->start + i;

		if (s->len - i >= 4 && c[0] == '\\' && c[1] == 'x') {
			int hi = hex_digit(c[2]), lo = hex_digit(c[3]);

			if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
				out[n++] = (char)(hi << 4 | lo);
				i += 4;
				continue;
			}
		}
		out[n++] = *c;
		i++;
	}
	return n;
}

/* libvirt's drivers that register machines (virDomainDriverGenerateMachineName). */
static const char *const libvirt_drivers[] = { "qemu", "lxc", "ch" };

/* Length of the libvirt driver name plus '-' that m starts with, or 0. */
static size_t driver_prefix(const struct span *m)
{
	size_t i;

	for (i = 0; i < sizeof(libvirt_drivers) / sizeof(libvirt_drivers[0]);
	     i++) {
		size_t n = strlen(libvirt_drivers[i]);

		if (m->len > n + 1 && memcmp(m->start, libvirt_drivers[i], n) == 0 &&
		    m->start[n] == '-')
			return n + 1;
	}
	return 0;
}

/* Length of the decimal number plus '-' that s starts with, or 0. */
static size_t number_prefix(const struct span *s)
{
	size_t i = 0;

	while (i < s->len && s->start[i] >= '0' && s->start[i] <= '9')
		i++;
	return i > 0 && i < s->len && s->start[i] == '-' ? i + 1 : 0;
}

/*
 * The VM's name in a machine name (unescaped). libvirt names machines
 * "<driver>-<id>-<name>" (its virDomainDriverGenerateMachineName(), which
 * keeps only [A-Za-z0-9-.] of the name and stops at 64 bytes in all, so
 * the command line's -name is better), or "<driver>-embed-<8 hex>-<id>-
 * <name>" for an embedded driver; older libvirt "<driver>-<name>". A
 * machine name that starts with no libvirt driver is taken whole
 * (systemd-vmspawn registers the VM's own name). A legacy name that looks
 * like "<id>-<rest>" reads as the current form: the forms overlap there.
 */
static struct span machine_vm_name(const struct span *m)
{
	static const char embed[] = "embed-";
	size_t n = driver_prefix(m), k;
	struct span rest;

	if (n == 0)
		return *m;
	rest = span_skip(m, n);
	if (span_starts(&rest, embed) && rest.len > sizeof(embed) - 1 + 9) {
		struct span hash = span_skip(&rest, sizeof(embed) - 1);
		struct span after = span_skip(&hash, 9);
		size_t i;

		for (i = 0; i < 8 && hex_digit(hash.start[i]) >= 0; i++)
			;
		if (i == 8 && hash.start[8] == '-' && number_prefix(&after) > 0)
			rest = after;
	}
	k = number_prefix(&rest);
	return k > 0 ? span_skip(&rest, k) : rest;
}

/* Where a cgroup path component names a machine, and how. */
enum machine_form {
	MACHINE_NONE,
	MACHINE_SCOPE,		/* machined's scope: the name is escaped */
	MACHINE_LIBVIRT,	/* libvirt's own group: the name as it is */
};

/*
 * Whether one cgroup path component is a machine's, with *ret_machine the
 * part that holds the machine name: "machine-<escaped>.scope" (machined
 * escapes the name with unit_name_escape()), or "<machine name>.libvirt-
 * <driver>" (libvirt without systemd: virCgroupNewDomainPartition(); a
 * leading '_' is virCgroupPartitionEscape()'s and not the name's).
 */
static enum machine_form machine_of(const struct span *comp,
				    struct span *ret_machine)
{
	static const char pre[] = "machine-", suf[] = ".scope";
	static const char sep[] = ".libvirt-";
	const char *dot;
	size_t i;

	if (span_starts(comp, pre) && span_ends(comp, suf) &&
	    comp->len > sizeof(pre) - 1 + sizeof(suf) - 1) {
		*ret_machine = (struct span){
			comp->start + sizeof(pre) - 1,
			comp->len - (sizeof(pre) - 1) - (sizeof(suf) - 1),
		};
		return MACHINE_SCOPE;
	}
	dot = memmem(comp->start, comp->len, sep, sizeof(sep) - 1);
	if (!dot || dot == comp->start)
		return MACHINE_NONE;
	for (i = 0; i < sizeof(libvirt_drivers) / sizeof(libvirt_drivers[0]);
	     i++) {
		struct span m = { comp->start, (size_t)(dot - comp->start) };
		struct span driver = span_skip(comp, m.len + sizeof(sep) - 1);

		if (!span_is(driver.start, driver.len, libvirt_drivers[i]))
			continue;
		if (m.start[0] == '_')
			m = span_skip(&m, 1);
		*ret_machine = m;
		return MACHINE_LIBVIRT;
	}
	return MACHINE_NONE;
}

/*
 * The VM name of the deepest machine component of one cgroup path (a VM
 * in a container that is a machine itself is named by its own scope).
 * 1 and *ret_name, 0 when the path names no machine or an empty name.
 */
static int path_vm_name(const char *path, const char *end, char **ret_name)
{
	enum machine_form form = MACHINE_NONE;
	struct span machine = { 0 }, m, name;
	const char *c = path;
	char *buf = NULL;
	int r;

	while (c < end) {
		const char *slash = memchr(c, '/', (size_t)(end - c));
		struct span comp = { c, (size_t)((slash ? slash : end) - c) };
		struct span found;
		enum machine_form f = machine_of(&comp, &found);

		if (f != MACHINE_NONE) {
			form = f;
			machine = found;
		}
		c = slash ? slash + 1 : end;
	}
	if (form == MACHINE_NONE)
		return 0;
	m = machine;
	if (form == MACHINE_SCOPE) {
		buf = malloc(machine.len);
		if (!buf)
			return -ENOMEM;
		m = (struct span){ buf, unescape_unit(&machine, buf) };
	}
	name = machine_vm_name(&m);
	r = name.len > 0 ? dup_value(&name, false, ret_name) : 0;
	free(buf);
	if (r < 0)
		return r;
	return name.len > 0;
}

/*
 * A line of /proc/PID/cgroup is "hierarchy-ID:controllers:path" (cgroups(7);
 * cgroup v2 has "0::path"). The kernel refuses '\n' in cgroup names, so a
 * line is a line; a NUL, which it never writes, ends one too. Every line
 * of a libvirt VM names the same machine: the first that names one counts.
 */
int cmdline_cgroup_name(const char *text, size_t len, char **ret_name)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = p, *path;
		int r;

		while (eol < end && *eol != '\n' && *eol != '\0')
			eol++;
		path = memchr(p, ':', (size_t)(eol - p));
		if (path)
			path = memchr(path + 1, ':', (size_t)(eol - path - 1));
		if (path) {
			r = path_vm_name(path + 1, eol, ret_name);
			if (r != 0)
				return r;
		}
		p = eol + 1;
	}
	return 0;
}

/* ------------------------------------------------------------- Proxmox VE */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * As PVE::QemuServer::parse_vm_config() reads it: lines "key: value", the
 * value trimmed of blanks on both sides; '#' lines are the description;
 * the first "[...]" line starts the pending or snapshot sections, whose
 * "name:" is not the VM's. Of repeated names the last wins; a blank one
 * is skipped, as PVE drops a value it cannot parse. A NUL, which pmxcfs
 * never stores, ends a line.
 */
int cmdline_pve_conf_name(const char *text, size_t len, char **ret_name)
{
	const char *p = text, *end = text + len;
	struct span name = { 0 };
	bool found = false;
	int r;

	while (p < end) {
		const char *eol = p;
		struct span v;

		while (eol < end && *eol != '\n' && *eol != '\0')
			eol++;
		if (*p == '[')
			break;
		if (eol - p >= 5 && memcmp(p, "name:", 5) == 0) {
			v = (struct span){ p + 5, (size_t)(eol - p - 5) };
			while (v.len > 0 && is_space(v.start[0]))
				v = span_skip(&v, 1);
			while (v.len > 0 && is_space(v.start[v.len - 1]))
				v.len--;
			if (v.len > 0) {
				name = v;
				found = true;
			}
		}
		p = eol + 1;
	}
	if (!found)
		return 0;
	r = dup_value(&name, false, ret_name);
	return r < 0 ? r : 1;
}

/*
 * Opened non-blocking and checked to be a regular file, so a FIFO put in
 * its place cannot stall a scan. A config past PVE_CONF_MAX is read up to
 * its last whole line there.
 */
int cmdline_pve_name(const char *conf_root, uint32_t vmid, char **ret_name)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	int fd, r;

	if (!conf_root || vmid == 0)
		return -EINVAL;
	r = snprintf(path, sizeof(path), "%s/%u.conf", conf_root,
		     (unsigned)vmid);
	if (r < 0 || (size_t)r >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	buf = malloc(PVE_CONF_MAX);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	n = util_read_upto(fd, buf, PVE_CONF_MAX);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	if (n == PVE_CONF_MAX) {
		const char *eol = memrchr(buf, '\n', (size_t)n);

		n = eol ? eol - buf : 0;
	}
	r = cmdline_pve_conf_name(buf, (size_t)n, ret_name);
out:
	free(buf);
	close(fd);
	return r;
}

size_t name_utf8_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* The second byte's range rules out overlongs, surrogates, > U+10FFFF. */
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

char *name_utf8_repair(const char *s)
{
	char *buf = malloc(strlen(s) * 3 + 1), *p = buf;

	if (!buf)
		return NULL;
	while (*s) {
		size_t n = name_utf8_len(s);

		if (n > 0) {
			p = mempcpy(p, s, n);
			s += n;
		} else {	/* U+FFFD for each byte that starts no character */
			p = mempcpy(p, "\xef\xbf\xbd", 3);
			s++;
		}
	}
	*p = '\0';
	return buf;
}
