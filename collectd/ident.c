/* SPDX-License-Identifier: MIT */
/*
 * ident.c: names made safe for collectd identifiers (ident.h). Apart from
 * kvm_stats.c so that tests reach it without a collectd daemon.
 */
#include <stdbool.h>
#include <string.h>

#include "cmdline.h"
#include "ident.h"

/*
 * VM names and stat names are anybody's bytes. They become part of
 * collectd identifiers (host/plugin-plugin_instance/type-type_instance),
 * of file paths (csv and
 * rrdtool: DataDir/host/plugin-plugin_instance/type-type_instance) and of
 * collectd's text protocols (unixsock, exec: an unquoted identifier ends at
 * whitespace, '"' opens a quoted one). As collectd's virt plugin does with
 * domain names, a name is kept as it is but for what breaks one of those,
 * which becomes '_', one per character:
 *  - '/', the separator of identifiers and paths;
 *  - a leading '.', and a '.' after a '.': no ".", ".." or hidden file;
 *  - control characters (C0, DEL, C1) and space: NUL-free but not
 *    printable, and whitespace splits a text protocol's line;
 *  - '"', which would open a quoted field;
 *  - each byte that starts no valid UTF-8 character.
 * '-' stays: collectd splits plugin from plugin_instance and type from
 * type_instance at the FIRST '-', and the plugin name has none. A character
 * is never cut: the result is valid UTF-8 and fits in size.
 */
void ident_safe_name(const char *s, char *buf, size_t size)
{
	size_t n = 0;

	while (*s) {
		unsigned char c = (unsigned char)*s;
		size_t len = name_utf8_len(s);
		bool bad = len == 0 || c < 0x20 || c == 0x7f || c == ' ' || c == '"' ||
			   c == '/' || (c == '.' && (n == 0 || buf[n - 1] == '.')) ||
			   (c == 0xc2 && (unsigned char)s[1] < 0xa0);	/* C1 */
		size_t out = bad ? 1 : len;

		if (n + out >= size)
			break;
		if (bad)
			buf[n] = '_';
		else
			memcpy(buf + n, s, len);
		n += out;
		s += len > 0 ? len : 1;
	}
	buf[n] = '\0';
}

const char *ident_type_of(const struct kvmstats_desc *d)
{
	if (!d->known)
		return "gauge";
	if (d->type == KVM_STATS_TYPE_LINEAR_HIST || d->type == KVM_STATS_TYPE_LOG_HIST ||
	    d->type == KVM_STATS_TYPE_CUMULATIVE)
		return "derive";
	if (d->unit == KVM_STATS_UNIT_BYTES)
		return "bytes";
	return "gauge";
}

size_t ident_sched_values(const struct kvmstats_vm *vm, const struct kvmstats_vcpu *vcpu,
			  struct ident_sched ret[IDENT_SCHED_MAX])
{
	const struct kvmstats_sched_total *t = vcpu ? &vcpu->sched_total : &vm->sched_vcpus;
	bool known = vcpu ? vcpu->sched.tid != 0 : vm->sched_known > 0;

	if (!known)
		return 0;
	ret[0] = (struct ident_sched){ "vcpu_run_ns", t->run_ns };
	ret[1] = (struct ident_sched){ "vcpu_wait_ns", t->wait_ns };
	if (vcpu)
		return 2;
	ret[2] = (struct ident_sched){ "vmm_other_run_ns", vm->other_run_ns };
	return 3;
}
