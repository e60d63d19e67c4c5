/* SPDX-License-Identifier: MIT */
/*
 * cmdline.h: a VM's name from what its host shows of it: the VMM's command line,
 * its cgroup, Proxmox's config (cmdline.c); UTF-8 checks for front ends.
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_CMDLINE_H
#define KVMSTATS_CMDLINE_H

#include <stddef.h>
#include <stdint.h>

/*
 * A VM's name from what its host shows of it. Every name is untrusted
 * bytes, kept verbatim up to 4096 bytes: front ends sanitize them. Where
 * the command line names no VM, discover.c asks the cgroup, then Proxmox.
 */

/*
 * For front ends that must show a name as UTF-8: the length of the valid
 * UTF-8 character at s (RFC 3629: no overlong forms, no surrogates, none
 * above U+10FFFF), 1 for an ASCII byte, 0 if s starts no valid character
 * (the caller replaces that byte and goes on with the next).
 */
size_t name_utf8_len(const char *s);

/*
 * s as valid UTF-8: each byte that starts no valid character replaced by
 * U+FFFD, the rest kept. The caller frees the result; NULL: out of memory.
 */
char *name_utf8_repair(const char *s);

/* What a VMM's command line says about its VM. */
struct cmdline_vm {
	char *name;		/* NULL if none */
	char *uuid;		/* QEMU -uuid, NULL if none */
	uint32_t pve_vmid;	/* Proxmox VE "-id N", 0 if none */
};

/*
 * Parses a NUL-separated command line (/proc/PID/cmdline; the last NUL may
 * be missing), by the VMM argv[0] names: QEMU -name guest=X,... or -name X
 * (",," an escaped comma), -uuid U, Proxmox -id N (also with "--");
 * Firecracker --id X; kvmtool (lkvm) --name X; Cloud Hypervisor: none.
 * Free the strings with cmdline_vm_done(). -ENOMEM.
 */
int cmdline_parse_vm(const char *cmdline, size_t len,
		     struct cmdline_vm *ret_vm);
void cmdline_vm_done(struct cmdline_vm *vm);	/* accepts NULL */

/* cmdline_parse_vm() without the vmid: each a malloc'ed string or NULL. */
int cmdline_parse(const char *cmdline, size_t len,
		  char **ret_name, char **ret_uuid);

/*
 * The VM name in /proc/PID/cgroup text (v1 or v2) of a VM that libvirt
 * started: its machine "machine-qemu\x2d3\x2dweb01.scope" (systemd
 * escapes undone) or "qemu-3-web01.libvirt-qemu" (no systemd) -> "web01".
 * 1 and *ret_name (the caller frees it), 0 when no machine is named.
 * -ENOMEM.
 */
int cmdline_cgroup_name(const char *text, size_t len, char **ret_name);

/*
 * The "name:" of <conf_root>/<vmid>.conf, a Proxmox VE VM config
 * ("/etc/pve/qemu-server"). 1 and *ret_name (the caller frees it), 0 when
 * it has none. -EINVAL: vmid 0, or not a regular file. -ENAMETOOLONG.
 * -errno of open() or read() (-ENOENT, -EACCES). -ENOMEM.
 */
int cmdline_pve_name(const char *conf_root, uint32_t vmid, char **ret_name);

/* The pure half of cmdline_pve_name(): the config's text. */
int cmdline_pve_conf_name(const char *text, size_t len, char **ret_name);

#endif
