/* SPDX-License-Identifier: MIT */
/*
 * memview.c: the per-VM memory table behind kvmstat --memory and the
 * Netdata function kvm-vms (memview.h).
 *
 * Mapped memory is what KVM's MMU has mapped for the guest, the VM-wide
 * INSTANT stats pages_4k, pages_2m and pages_1g (x86; the kernel's
 * Documentation/virt/kvm/api.rst and arch/x86/kvm/x86.c): the fewer pages
 * mapped, the fewer a live migration has to copy and the fewer it makes
 * dirty again. Configured RAM comes from the VMM's command line, which
 * libvirt writes as well, so a libvirt guest is covered.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memview.h"
#include "util.h"

#define CMDLINE_MAX (256 * 1024)

/* QEMU's qemu_strtosz_MiB(): a number, an optional suffix; none is MiB. */
static int parse_size(const char *s, size_t len, uint64_t *ret_bytes)
{
	uint64_t v = 0, mul = 1ULL << 20;
	size_t i = 0;

	if (len == 0 || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return -EINVAL;
	if (i < len) {
		switch (s[i]) {
		case 'b': case 'B': mul = 1; break;
		case 'k': case 'K': mul = 1ULL << 10; break;
		case 'm': case 'M': mul = 1ULL << 20; break;
		case 'g': case 'G': mul = 1ULL << 30; break;
		case 't': case 'T': mul = 1ULL << 40; break;
		default: return -EINVAL;
		}
		if (i + 1 != len)
			return -EINVAL;
	}
	if (__builtin_mul_overflow(v, mul, &v))
		return -EINVAL;
	*ret_bytes = v;
	return 0;
}

/* "4G", "size=4G,slots=2,maxmem=8G" or "4G,slots=2": the size part. */
static int parse_m_value(const char *s, size_t len, uint64_t *ret_bytes)
{
	const char *p = s, *end = s + len;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = (size_t)((comma ? comma : end) - p);

		if (n > 5 && memcmp(p, "size=", 5) == 0)
			return parse_size(p + 5, n - 5, ret_bytes);
		if (p == s && memchr(p, '=', n) == NULL)
			return parse_size(p, n, ret_bytes);
		p = comma ? comma + 1 : end;
	}
	return -EINVAL;
}

int memview_cmdline_ram(const char *cmdline, size_t len, uint64_t *ret_bytes)
{
	const char *p = cmdline, *end = cmdline + len;
	int r = -ENOENT;

	/* argv[0] is the VMM; the last -m wins, as in QEMU. */
	p = memchr(p, '\0', len);
	p = p ? p + 1 : end;
	while (p < end) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		size_t n = (size_t)((nul ? nul : end) - p);
		const char *next = nul ? nul + 1 : end;

		if ((n == 2 && memcmp(p, "-m", 2) == 0) ||
		    (n == 3 && memcmp(p, "--m", 3) == 0) ||
		    (n == 5 && memcmp(p, "--mem", 5) == 0) ||
		    (n == 7 && memcmp(p, "-memory", 7) == 0)) {
			const char *vnul;
			uint64_t bytes;

			if (next >= end)
				break;
			vnul = memchr(next, '\0', (size_t)(end - next));
			n = (size_t)((vnul ? vnul : end) - next);
			r = parse_m_value(next, n, &bytes);
			if (r == 0)
				*ret_bytes = bytes;
			p = vnul ? vnul + 1 : end;
			continue;
		}
		p = next;
	}
	return r;
}

static int read_ram(const char *proc_root, pid_t pid, uint64_t *ret_bytes)
{
	char path[PATH_MAX], *buf;
	ssize_t n;
	int fd, r;

	snprintf(path, sizeof(path), "%s/%d/cmdline", proc_root, (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(CMDLINE_MAX);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = util_read_upto(fd, buf, CMDLINE_MAX);
	close(fd);
	r = n < 0 ? (int)n : memview_cmdline_ram(buf, (size_t)n, ret_bytes);
	free(buf);
	return r;
}

static uint64_t stat_value(const struct statsfd *s, const char *name, bool *found)
{
	int d;

	*found = false;
	if (!s || s->samples == 0)
		return 0;
	d = schema_find(s->schema, name);
	if (d < 0)
		return 0;
	*found = true;
	return s->cur[s->schema->desc[d].index];
}

/* Exits over the last interval: the vCPUs' "exits", else the VM-wide one. */
static bool exits_delta(const struct kvmstats_vm *vm, uint64_t *ret)
{
	uint64_t sum = 0;
	bool any = false;

	for (size_t i = 0; i < vm->nvcpus; i++) {
		const struct statsfd *s = vm->vcpus[i]->stats;
		int d;

		if (s->error != 0 || s->samples < 2)
			continue;
		d = schema_find(s->schema, "exits");
		if (d < 0)
			continue;
		sum += s->cur[s->schema->desc[d].index] - s->prev[s->schema->desc[d].index];
		any = true;
	}
	/* Not a holder whose last read failed or whose fd was given back: stale. */
	if (!any && vm->vm_stats && vm->vm_stats->error == 0 && vm->vm_stats->samples >= 2) {
		const struct statsfd *s = vm->vm_stats;
		int d = schema_find(s->schema, "exits");

		if (d >= 0) {
			sum = s->cur[s->schema->desc[d].index] - s->prev[s->schema->desc[d].index];
			any = true;
		}
	}
	*ret = sum;
	return any;
}

static int row_cmp(const void *a, const void *b)
{
	const struct memview_row *x = a, *y = b;

	if (x->have_pages != y->have_pages)
		return x->have_pages ? -1 : 1;
	if (x->mapped_bytes != y->mapped_bytes)
		return x->mapped_bytes > y->mapped_bytes ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

int memview_collect(struct kvmstats_host *host, const char *proc_root,
		    double interval_s, struct memview *ret_view)
{
	size_t n = host_nvms(host);
	struct memview v = { 0 };

	v.rows = calloc(n ? n : 1, sizeof(*v.rows));
	if (!v.rows)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct kvmstats_vm *vm = host_vm(host, i);
		struct memview_row *row = &v.rows[v.nrows];
		bool f4, f2, f1;
		uint64_t delta;

		row->pid = vm->pid;
		row->name = strdup(vm->name ? vm->name : "");
		if (!row->name) {
			memview_free(&v);
			return -ENOMEM;
		}
		v.nrows++;
		row->pages_4k = stat_value(vm->vm_stats, "pages_4k", &f4);
		row->pages_2m = stat_value(vm->vm_stats, "pages_2m", &f2);
		row->pages_1g = stat_value(vm->vm_stats, "pages_1g", &f1);
		row->have_pages = host_mapped_bytes(vm, &row->mapped_bytes) == 0;
		row->have_ram = read_ram(proc_root, vm->pid, &row->ram_bytes) == 0;
		row->vcpus = vm->nvcpus;
		if (interval_s > 0 && exits_delta(vm, &delta)) {
			row->have_rate = true;
			row->exits_per_sec = (double)delta / interval_s;
		}
	}
	qsort(v.rows, v.nrows, sizeof(*v.rows), row_cmp);
	*ret_view = v;
	return 0;
}

void memview_free(struct memview *view)
{
	if (!view)
		return;
	for (size_t i = 0; i < view->nrows; i++)
		free(view->rows[i].name);
	free(view->rows);
	view->rows = NULL;
	view->nrows = 0;
}

double memview_mapped_percent(const struct memview_row *row)
{
	if (!row->have_pages || !row->have_ram || row->ram_bytes == 0)
		return -1;
	return 100.0 * (double)row->mapped_bytes / (double)row->ram_bytes;
}
