/* SPDX-License-Identifier: MIT */
/*
 * kvmstat: report KVM activity per virtual CPU, in the spirit of illumos
 * kvmstat(1): "kvmstat [interval [count]]", one row per vCPU with the
 * exits of each kind and the injections over each interval.
 *
 * A front end only: the core (common/) finds the VMs, takes their stats fds
 * and samples them; this file chooses what to show and prints it, as a
 * table or, with --json, as one JSON object per interval (JSON Lines).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "acquire.h"
#include "catalog.h"
#include "cmdline.h"
#include "debugfs.h"
#include "filter.h"
#include "news.h"
#include "priv.h"
#include "memview.h"
#include "namejson.h"
#include "sched_track.h"
#include "top.h"

#define MAX_PIDS 64
#define MAX_QMP 64
#define MAX_FDS 1048576		/* --max-fds: Linux's default fs.nr_open */
#define DEBUGFS_KVM "/sys/kernel/debug/kvm"

struct options {
	pid_t pids[MAX_PIDS];
	size_t npids;
	struct filter *vm_filter;	/* -n */
	struct filter *stat_filter;	/* -s; NULL: the kvmstat columns */
	bool totals;
	bool json;
	bool sources;			/* --sources: which source serves each VM */
	bool memory;			/* --memory: one row per VM, by mapped memory */
	bool top;			/* --top: the full-screen view on a terminal */
	const char *qmp[MAX_QMP];	/* --qmp sockets or globs */
	size_t nqmp;
	const char *debugfs;		/* NULL: --no-debugfs */
	const char *libvirt;		/* --libvirt URI; NULL: off */
	size_t max_fds;			/* --max-fds; 0: the core's default */
	bool no_sched;			/* --no-sched */
	unsigned interval;		/* seconds */
	unsigned long count;		/* 0: forever */
};

static void usage(FILE *f)
{
	fputs("usage: kvmstat [options] [interval [count]]\n"
	      "Reports KVM statistics per virtual CPU every interval seconds\n"
	      "(default 1), count times (default: until interrupted).\n\n"
	      "  -p, --pid PID      only the VMs of process PID (repeatable)\n"
	      "  -n, --name NAME    only VMs called NAME; \"/regex/\" matches a POSIX\n"
	      "                     extended regex (repeatable)\n"
	      "  -s, --stat STAT    show these stats instead of the kvmstat columns;\n"
	      "                     a name or \"/regex/\" (repeatable)\n"
	      "  -t, --totals       add a row per VM with the sum of its vCPUs (with\n"
	      "                     --json: \"totals\", the VM-wide values the\n"
	      "                     plugins report: sums, peaks the maximum)\n"
	      "  -j, --json         one JSON object per interval, with every stat's\n"
	      "                     value since the VM started and its change over\n"
	      "                     the interval\n"
	      "  -S, --sources      which source serves each VM, and its mapped memory\n"
	      "  -m, --memory       one row per VM, largest mapped guest memory first:\n"
	      "                     pages_4k/2m/1g, mapped MiB, configured RAM (the\n"
	      "                     VMM's -m), the share mapped, vCPUs, exits/s\n"
	      "  -T, --top          a full-screen view (top(1) style keys; h lists\n"
	      "                     them): VMs by exits/s, drill into vCPUs and stats;\n"
	      "                     on a stdout that is no terminal, the table\n"
	      "  -q, --qmp SOCKET   also ask QEMU's QMP socket (a path or a glob, e.g.\n"
	      "                     '/var/run/qemu-server/*.qmp'; repeatable)\n"
	      "  -L, --libvirt [URI] also ask libvirtd (read-only; default qemu:///system)\n"
	      "                     for what no better source serves\n"
	      "      --debugfs DIR  KVM's debugfs directory (default " DEBUGFS_KVM ")\n"
	      "      --no-debugfs   do not read debugfs\n"
	      "      --max-fds N    hold at most N stats fds (default 4096, fewer near\n"
	      "                     the open file limit), shared fairly among the VMMs\n"
	      "      --no-sched     do not find vCPU threads nor read their run and\n"
	      "                     run-queue wait times (the run% and wait% columns)\n"
	      "  -h, --help         this text\n\n"
	      "Columns: exits haltx irqx irqwx iox mmiox irqs emul eptv, taken from\n"
	      "this kernel's stat names; \"-\" where the kernel has no such stat;\n"
	      "run% and wait%: the vCPU thread's time on a CPU and waiting for one,\n"
	      "in percent of one CPU over the interval.\n", f);
}

/*
 * Decimal digits only, up to max: strtoul() alone also takes leading
 * blanks and a sign, and " -1" is ULONG_MAX to it.
 */
static int parse_ulong(const char *s, unsigned long max, unsigned long *ret)
{
	unsigned long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

/*
 * The options that only one view reads, refused with the view that
 * ignores them: --sources prints once (no interval, count, --json,
 * --memory, --totals or --stat); --memory has no --totals or --stat.
 */
static int check_views(const struct options *o, bool positionals)
{
	const char *what = NULL;

	if (o->sources) {
		if (o->json)
			what = "--json";
		else if (o->memory)
			what = "--memory";
		else if (o->totals)
			what = "--totals";
		else if (o->stat_filter)
			what = "--stat";
		else if (positionals)
			what = "interval or count";
		if (what) {
			fprintf(stderr, "kvmstat: --sources prints once and takes no %s\n", what);
			return -1;
		}
	}
	if (o->top && (o->json || o->sources || o->memory)) {
		fprintf(stderr, "kvmstat: --top is a view of its own: not with %s\n",
			o->json ? "--json" : o->sources ? "--sources" : "--memory");
		return -1;
	}
	if (o->memory && (o->totals || o->stat_filter)) {
		fprintf(stderr, "kvmstat: --memory shows no %s\n",
			o->totals ? "--totals" : "--stat");
		return -1;
	}
	return 0;
}

static int add_filter_entry(struct filter **f, const char *entry)
{
	int r;

	if (!*f) {
		r = filter_new(f);
		if (r < 0)
			return r;
	}
	return filter_add(*f, entry, false);
}

/* Returns 0 to go on, 1 to exit successfully (help), -1 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'n' },
		{ "stat", required_argument, NULL, 's' },
		{ "totals", no_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "sources", no_argument, NULL, 'S' },
		{ "memory", no_argument, NULL, 'm' },
		{ "top", no_argument, NULL, 'T' },
		{ "qmp", required_argument, NULL, 'q' },
		{ "libvirt", optional_argument, NULL, 'L' },
		{ "debugfs", required_argument, NULL, 'D' },
		{ "no-debugfs", no_argument, NULL, 'N' },
		{ "max-fds", required_argument, NULL, 'F' },
		{ "no-sched", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool debugfs_given = false, libvirt_given = false, interval_given;
	unsigned long v;
	int c;

	o->interval = 1;
	o->debugfs = DEBUGFS_KVM;
	while ((c = getopt_long(argc, argv, "p:n:s:tjSmTq:L::h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_ulong(optarg, INT_MAX, &v) < 0 || v == 0) {
				fprintf(stderr, "kvmstat: bad --pid: \"%s\" (a process id, "
					"1 to %d)\n", optarg, INT_MAX);
				return -1;
			}
			if (o->npids == MAX_PIDS) {
				fprintf(stderr, "kvmstat: more than %d --pid\n", MAX_PIDS);
				return -1;
			}
			o->pids[o->npids++] = (pid_t)v;
			break;
		case 'n':
		case 's':
			if (add_filter_entry(c == 'n' ? &o->vm_filter : &o->stat_filter,
					     optarg) < 0) {
				fprintf(stderr, "kvmstat: bad --%s: \"%s\" (an empty name, or a "
					"/regex/ that does not compile or is too complex)\n",
					c == 'n' ? "name" : "stat", optarg);
				return -1;
			}
			break;
		case 't':
			o->totals = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'S':
			o->sources = true;
			break;
		case 'm':
			o->memory = true;
			break;
		case 'T':
			o->top = true;
			break;
		case 'q':
			if (!*optarg) {
				fprintf(stderr, "kvmstat: --qmp needs a socket path or glob\n");
				return -1;
			}
			if (o->nqmp == MAX_QMP) {
				fprintf(stderr, "kvmstat: more than %d --qmp\n", MAX_QMP);
				return -1;
			}
			o->qmp[o->nqmp++] = optarg;
			break;
		case 'L':
			/* "--libvirt URI" too: a next word with ':' is a URI, not an interval. */
			if (!optarg && optind < argc && strchr(argv[optind], ':'))
				optarg = argv[optind++];
			if (libvirt_given || (optarg && !*optarg)) {
				fprintf(stderr, "kvmstat: %s\n", libvirt_given ?
					"--libvirt given twice: one libvirtd is asked" :
					"--libvirt= needs a URI, or none for qemu:///system");
				return -1;
			}
			libvirt_given = true;
			o->libvirt = optarg ? optarg : "qemu:///system";
			break;
		case 'D':
		case 'N':
			if (debugfs_given || (c == 'D' && !*optarg)) {
				fprintf(stderr, "kvmstat: %s\n", debugfs_given ?
					"--debugfs or --no-debugfs given twice" :
					"--debugfs needs a directory");
				return -1;
			}
			debugfs_given = true;
			o->debugfs = c == 'D' ? optarg : NULL;
			break;
		case 'F':
			if (parse_ulong(optarg, MAX_FDS, &v) < 0 || v == 0) {
				fprintf(stderr, "kvmstat: --max-fds must be 1 to %d: %s\n",
					MAX_FDS, optarg);
				return -1;
			}
			o->max_fds = v;
			break;
		case 'P':
			o->no_sched = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	interval_given = optind < argc;
	if (optind < argc) {
		if (parse_ulong(argv[optind], 86400, &v) < 0 || v == 0) {
			fprintf(stderr, "kvmstat: interval must be 1 to 86400 seconds: %s\n",
				argv[optind]);
			return -1;
		}
		o->interval = (unsigned)v;
		optind++;
	}
	if (optind < argc) {
		if (parse_ulong(argv[optind], ULONG_MAX, &v) < 0 || v == 0) {
			fprintf(stderr, "kvmstat: count must be a whole number from 1 to "
				"%lu: %s\n", ULONG_MAX, argv[optind]);
			return -1;
		}
		o->count = v;
		optind++;
	}
	if (optind < argc) {
		fprintf(stderr, "kvmstat: unexpected argument after the count: %s\n",
			argv[optind]);
		usage(stderr);
		return -1;
	}
	return check_views(o, interval_given);
}

/* The --pid and --name choice, made before any fd is taken from a VMM. */
static bool want_vmm(const struct discover_proc *p, void *ctx)
{
	const struct options *o = ctx;
	bool pid_ok = o->npids == 0;

	for (size_t i = 0; i < o->npids; i++)
		if (o->pids[i] == p->pid)
			pid_ok = true;
	return pid_ok && filter_match(o->vm_filter, discover_proc_name(p)) == 1;
}

static bool has_prev(const struct statsfd *s)
{
	return s && s->error == 0 && s->samples >= 2;
}

/* Sum of a stat's values (the bucket counts of a histogram) in a sample. */
static uint64_t stat_sum(const uint64_t *values, const struct kvmstats_desc *d)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < d->size; i++)
		sum += values[d->index + i];
	return sum;
}

/* ------------------------------------------------------------------ sched */

static void forget_vm(struct kvmstats_vm *vm, void *ctx)
{
	(void)ctx;
	sched_track_forget(vm);
}

static void print_pct(const void *user, bool known)
{
	double run, wait;

	if (sched_track_pct(user, known, &run, &wait))
		printf(" %6.1f %6.1f", run, wait);
	else
		printf(" %6s %6s", "-", "-");
}

/* ------------------------------------------------------------------ table */

/*
 * VM names (and paths) are untrusted: no control characters reach the
 * terminal. width < 0: the whole string, unpadded.
 */
static void print_name(const char *name, int width)
{
	int n = 0;

	for (; *name && (width < 0 || n < width); name++, n++)
		putchar((unsigned char)*name < 0x20 || *name == 0x7f ? '?' : *name);
	for (; n < width; n++)
		putchar(' ');
}

struct column {
	const char *heading;
	const struct catalog_column *kvmstat;	/* default columns */
	const char *stat;			/* -s columns */
	int width;
};

struct table {
	struct column *cols;
	size_t ncols;
};

static int table_add(struct table *t, const struct column *c)
{
	struct column *cols = reallocarray(t->cols, t->ncols + 1, sizeof(*cols));

	if (!cols)
		return -ENOMEM;
	t->cols = cols;
	t->cols[t->ncols++] = *c;
	return 0;
}

static bool table_has_stat(const struct table *t, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (t->cols[i].stat && strcmp(t->cols[i].stat, name) == 0)
			return true;
	return false;
}

/*
 * The columns: the kvmstat ones, or with -s every stat of the VMs shown
 * that passes the filter, in the kernel's order.
 */
static int table_build(struct table *t, const struct options *o,
		       struct kvmstats_host *host)
{
	struct column c = { 0 };

	t->ncols = 0;
	if (!o->stat_filter) {
		for (size_t i = 0; i < catalog_kvmstat_ncolumns; i++) {
			c.heading = catalog_kvmstat_columns[i].heading;
			c.kvmstat = &catalog_kvmstat_columns[i];
			c.width = 8;
			if (table_add(t, &c) < 0)
				return -ENOMEM;
		}
		return 0;
	}
	for (size_t i = 0; i < host_nvms(host); i++) {
		const struct kvmstats_vm *vm = host_vm(host, i);
		const struct kvmstats_schema *s;

		if (vm->nvcpus == 0)
			continue;
		s = vm->vcpus[0]->stats->schema;
		for (uint32_t d = 0; d < s->num_desc; d++) {
			const char *name = s->desc[d].name;
			size_t len = strlen(name);

			if (filter_match(o->stat_filter, name) != 1 ||
			    table_has_stat(t, name))
				continue;
			c.heading = name;
			c.stat = name;
			c.width = len > 8 ? (int)len : 8;
			if (table_add(t, &c) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

static int column_desc(const struct column *c, const struct kvmstats_schema *s)
{
	return c->kvmstat ? catalog_column_find(c->kvmstat, s) : schema_find(s, c->stat);
}

/*
 * A column heading right-aligned in width: with -s it is a stat's name,
 * printable ASCII only (the rest '?'), so no byte of it drives the terminal.
 */
static void print_heading(const char *s, int width)
{
	int n = (int)strlen(s);

	for (; n < width; n++)
		putchar(' ');
	for (; *s; s++)
		putchar((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f ? '?' : *s);
}

/* run% and wait% go with the kvmstat columns; -s shows the stats asked for. */
static bool table_sched(const struct options *o)
{
	return !o->no_sched && !o->stat_filter;
}

static void print_header(const struct options *o, const struct table *t)
{
	printf("%7s %-16s %4s", "pid", "vm", "vcpu");
	for (size_t i = 0; i < t->ncols; i++) {
		putchar(' ');
		print_heading(t->cols[i].heading, t->cols[i].width);
	}
	if (table_sched(o))
		printf(" %6s %6s", "run%", "wait%");
	putchar('\n');
}

/* The change of a cell over the interval, summed over the vCPUs given. */
static bool cell_delta(const struct column *c, struct kvmstats_vcpu *const *vcpus,
		       size_t n, int64_t *ret)
{
	int64_t sum = 0;
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		const struct statsfd *s = vcpus[i]->stats;
		int d = column_desc(c, s->schema);

		if (d < 0 || !has_prev(s))
			continue;
		sum += (int64_t)(stat_sum(s->cur, &s->schema->desc[d]) -
				 stat_sum(s->prev, &s->schema->desc[d]));
		any = true;
	}
	*ret = sum;
	return any;
}

/* sched: the vCPU's or VM's sched_track; known: a thread is known now. */
static void print_row(const struct options *o, const struct table *t,
		      const struct kvmstats_vm *vm, const char *vcpu,
		      struct kvmstats_vcpu *const *vcpus, size_t n,
		      const void *sched, bool known)
{
	printf("%7d ", (int)vm->pid);
	print_name(vm->name, 16);
	printf(" %4s", vcpu);
	for (size_t i = 0; i < t->ncols; i++) {
		int64_t v;

		if (cell_delta(&t->cols[i], vcpus, n, &v))
			printf(" %*lld", t->cols[i].width, (long long)v);
		else
			printf(" %*s", t->cols[i].width, "-");
	}
	if (table_sched(o))
		print_pct(sched, known);
	putchar('\n');
}

static int print_table(const struct options *o, struct kvmstats_host *host)
{
	struct table t = { 0 };

	if (table_build(&t, o, host) < 0)
		return -ENOMEM;
	print_header(o, &t);
	for (size_t i = 0; i < host_nvms(host); i++) {
		const struct kvmstats_vm *vm = host_vm(host, i);
		char id[16];

		for (size_t j = 0; j < vm->nvcpus; j++) {
			snprintf(id, sizeof(id), "%d", vm->vcpus[j]->id);
			print_row(o, &t, vm, id, &vm->vcpus[j], 1, vm->vcpus[j]->user,
				  sched_track_vcpu_known(vm->vcpus[j]));
		}
		if (o->totals && vm->nvcpus > 0)
			print_row(o, &t, vm, "all", vm->vcpus, vm->nvcpus, vm->user,
				  sched_track_vm_known(vm));
	}
	putchar('\n');
	free(t.cols);
	return 0;
}

/* ------------------------------------------------------------------- JSON */

static json_t *json_values(const uint64_t *v, const struct kvmstats_desc *d)
{
	json_t *a;

	if (d->size == 1 && d->type != KVM_STATS_TYPE_LINEAR_HIST &&
	    d->type != KVM_STATS_TYPE_LOG_HIST)
		return json_integer((json_int_t)v[d->index]);
	a = json_array();
	for (uint32_t i = 0; a && i < d->size; i++)
		json_array_append_new(a, json_integer((json_int_t)v[d->index + i]));
	return a;
}

static json_t *json_deltas(const struct statsfd *s, const struct kvmstats_desc *d)
{
	json_t *a;

	if (!has_prev(s))
		return json_null();
	if (d->size == 1 && d->type != KVM_STATS_TYPE_LINEAR_HIST &&
	    d->type != KVM_STATS_TYPE_LOG_HIST)
		return json_integer((json_int_t)(s->cur[d->index] - s->prev[d->index]));
	a = json_array();
	for (uint32_t i = 0; a && i < d->size; i++)
		json_array_append_new(a, json_integer(
			(json_int_t)(s->cur[d->index + i] - s->prev[d->index + i])));
	return a;
}

/*
 * Upper bounds of the buckets in raw units, the scale of "value": an exact
 * integer that base^exponent turns into the unit, as it does the value
 * (1 and 32 for halt_wait_hist's first buckets, not the doubles
 * 1.0000000000000003e-09 and 3.200000000000001e-08). null for the open
 * last bucket. Only a log histogram of more than 64 buckets reaches 2^63,
 * past json_int_t: that one bound is a real, which holds 2^63 exactly.
 */
static json_t *json_bounds(const struct kvmstats_desc *d)
{
	json_t *a = json_array();
	uint64_t lo, hi;

	for (uint32_t i = 0; a && i < d->size; i++) {
		if (decode_bucket_bounds(d, i, &lo, &hi) < 0 || hi == UINT64_MAX)
			json_array_append_new(a, json_null());
		else if (hi > INT64_MAX)
			json_array_append_new(a, json_real((double)hi));
		else
			json_array_append_new(a, json_integer((json_int_t)hi));
	}
	return a;
}

/*
 * obj[name] = v (stolen), name made valid UTF-8 first: jansson refuses
 * (and drops) a key that is not, and json_dumpf() escapes the rest. Stat
 * names are C identifiers by the time they get here (decode_name_valid());
 * this keeps the output valid JSON even if one was not.
 */
static void json_set_stat(json_t *obj, const char *name, json_t *v)
{
	const char *p = name;
	char *valid = NULL;
	size_t n;

	while (*p && (n = name_utf8_len(p)) > 0)
		p += n;
	if (*p) {
		valid = name_utf8_repair(name);
		if (!valid) {
			json_decref(v);
			return;
		}
	}
	json_object_set_new(obj, valid ? valid : name, v);
	free(valid);
}

static json_t *json_stats(const struct options *o, const struct statsfd *s)
{
	json_t *obj = json_object();

	for (uint32_t i = 0; obj && i < s->schema->num_desc; i++) {
		const struct kvmstats_desc *d = &s->schema->desc[i];
		json_t *st;

		if (filter_match(o->stat_filter, d->name) != 1)
			continue;
		st = json_pack("{s:o, s:o, s:s, s:s, s:i}",
			       "value", json_values(s->cur, d),
			       "delta", json_deltas(s, d),
			       "type", decode_type_name(d->type),
			       "unit", decode_unit_name(d->unit),
			       "exponent", (int)d->exponent);
		if (st && d->known && (d->type == KVM_STATS_TYPE_LINEAR_HIST ||
				       d->type == KVM_STATS_TYPE_LOG_HIST))
			json_object_set_new(st, "bucket_upper_bounds", json_bounds(d));
		json_set_stat(obj, d->name, st);
	}
	return obj;
}

/*
 * {"vcpus": N, "stats": {name: value}}: host_vcpu_totals() over the vCPUs,
 * by the first one's schema (others count by name), what the Netdata and
 * collectd plugins report VM-wide; JSON null when the VM has no vCPU,
 * NULL: no memory.
 */
static json_t *json_totals(const struct options *o, const struct kvmstats_vm *vm)
{
	const struct kvmstats_schema *schema;
	json_t *stats;
	uint64_t *v;
	int n;

	if (vm->nvcpus == 0)
		return json_null();
	schema = vm->vcpus[0]->stats->schema;
	v = calloc(schema->num_values ? schema->num_values : 1, sizeof(*v));
	stats = json_object();
	if (!v || !stats) {
		free(v);
		json_decref(stats);
		return NULL;
	}
	n = host_vcpu_totals(vm, schema, v);
	for (uint32_t i = 0; i < schema->num_desc; i++)
		if (filter_match(o->stat_filter, schema->desc[i].name) == 1)
			json_set_stat(stats, schema->desc[i].name,
				      json_values(v, &schema->desc[i]));
	free(v);
	return json_pack("{s:i, s:o}", "vcpus", n, "stats", stats);
}

static const char *name_source(enum discover_name_source source)
{
	switch (source) {
	case DISCOVER_NAME_CMDLINE:
		return "cmdline";
	case DISCOVER_NAME_CGROUP:
		return "cgroup";
	case DISCOVER_NAME_PVE:
		return "pve";
	case DISCOVER_NAME_NONE:
		break;
	}
	return "comm";
}

/* A holder's stats, or null when it has none or its last sample failed (never stale values). */
static json_t *json_fresh(const struct options *o, const struct statsfd *s)
{
	return s && s->error == 0 ? json_stats(o, s) : json_null();
}

static json_t *json_total(const struct kvmstats_sched_total *t)
{
	return json_pack("{s:I, s:I, s:I}", "run_ns", (json_int_t)t->run_ns,
			 "wait_ns", (json_int_t)t->wait_ns,
			 "timeslices", (json_int_t)t->timeslices);
}

/* The vCPU's thread and its counters since it started; null: none known. */
static json_t *json_vcpu_sched(const struct kvmstats_vcpu *c)
{
	if (c->sched.tid == 0)
		return json_null();
	return json_pack("{s:i, s:I, s:I, s:I}", "tid", (int)c->sched.tid,
			 "run_ns", (json_int_t)c->sched.run_ns,
			 "wait_ns", (json_int_t)c->sched.wait_ns,
			 "timeslices", (json_int_t)c->sched.timeslices);
}

/* The VM's sums over its vCPU threads (gone ones included) and the rest. */
static json_t *json_vm_sched(const struct kvmstats_vm *vm)
{
	json_t *j = json_total(&vm->sched_vcpus);

	if (j) {
		json_object_set_new(j, "known", json_integer(vm->sched_known));
		json_object_set_new(j, "other_run_ns", json_integer((json_int_t)vm->other_run_ns));
	}
	return j;
}

static json_t *json_vm(const struct options *o, const struct kvmstats_vm *vm)
{
	json_t *vcpus = json_array(), *j;

	for (size_t i = 0; vcpus && i < vm->nvcpus; i++) {
		const struct kvmstats_vcpu *c = vm->vcpus[i];

		json_t *jc = json_pack(
			"{s:i, s:i, s:s, s:s, s:o}", "vcpu", c->id, "vmm_fd", c->vmm_fd,
			"source", host_source_name(c->source),
			"stats_id", c->stats->id, "stats", json_fresh(o, c->stats));

		if (jc && c->stats->error)
			json_object_set_new(jc, "error", json_string(strerror(-c->stats->error)));
		if (jc && !o->no_sched) {
			json_object_set_new(jc, "sched", json_vcpu_sched(c));
			json_object_set_new(jc, "sched_total", json_total(&c->sched_total));
		}
		json_array_append_new(vcpus, jc);
	}
	j = json_pack("{s:i, s:o, s:o, s:s, s:i, s:i, s:s, s:o, s:o}",
		      "pid", (int)vm->pid,
		      "name", name_json(vm->name),
		      "uuid", vm->uuid ? name_json(vm->uuid) : json_null(),
		      "name_source", name_source(vm->name_source),
		      "vm_fd", vm->vm_fd,
		      "nvms", (int)vm->nvms,
		      "source", host_source_name(vm->vm_source),
		      "stats", json_fresh(o, vm->vm_stats),
		      "vcpus", vcpus);
	if (j && vm->vm_stats && vm->vm_stats->error)
		json_object_set_new(j, "error", json_string(strerror(-vm->vm_stats->error)));
	if (j && vm->nlabels) {
		json_t *labels = json_object();

		for (size_t i = 0; labels && i < vm->nlabels; i++)
			json_object_set_new(labels, vm->labels[i].key,
					    name_json(vm->labels[i].value));
		json_object_set_new(j, "labels", labels);
	}
	if (j && o->totals)
		json_object_set_new(j, "totals", json_totals(o, vm));
	if (j && !o->no_sched)
		json_object_set_new(j, "sched", json_vm_sched(vm));
	return j;
}

static int print_json(const struct options *o, struct kvmstats_host *host)
{
	struct timespec now;
	json_t *doc, *vms = json_array();
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; vms && i < host_nvms(host); i++) {
		json_array_append_new(vms, json_vm(o, host_vm(host, i)));
	}
	doc = json_pack("{s:f, s:i, s:o}",
			"time", now.tv_sec + now.tv_nsec / 1e9,
			"interval", (int)o->interval, "vms", vms);
	if (!doc || json_dumpf(doc, stdout, JSON_COMPACT) < 0)
		r = -ENOMEM;
	putchar('\n');
	json_decref(doc);
	return r;
}

/* ---------------------------------------------------------------- sources */

/* The vCPUs' source: one name, or "mixed". */
static const char *vcpu_source(const struct kvmstats_vm *vm)
{
	enum kvmstats_source first = vm->nvcpus ? vm->vcpus[0]->source : FROM_NONE;

	for (size_t i = 1; i < vm->nvcpus; i++)
		if (vm->vcpus[i]->source != first)
			return "mixed";
	return host_source_name(first);
}

/* One row per VM: who serves its vCPU and VM-wide stats, its mapped memory. */
static void print_sources(struct kvmstats_host *host)
{
	printf("%7s %-16s %5s %-8s %-8s %12s  %s\n", "pid", "vm", "vcpus", "vcpu-src",
	       "vm-src", "mapped", "qmp");
	for (size_t i = 0; i < host_nvms(host); i++) {
		const struct kvmstats_vm *vm = host_vm(host, i);
		char mapped[32] = "-";
		uint64_t bytes;

		if (host_mapped_bytes(vm, &bytes) == 0)
			snprintf(mapped, sizeof(mapped), "%.1f MiB", bytes / 1048576.0);
		printf("%7d ", (int)vm->pid);
		print_name(vm->name, 16);
		printf(" %5zu %-8s %-8s %12s  ", vm->nvcpus, vcpu_source(vm),
		       host_source_name(vm->vm_source), mapped);
		print_name(vm->qmp_path ? vm->qmp_path : "-", -1);
		putchar('\n');
	}
}

/* ----------------------------------------------------------------- memory */

static json_t *json_opt_uint(bool have, uint64_t v)
{
	return have ? json_integer((json_int_t)v) : json_null();
}

static json_t *json_memory_row(const struct memview_row *r)
{
	double pct = memview_mapped_percent(r);

	return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o}",
			 "pid", (int)r->pid, "name", name_json(r->name),
			 "pages_4k", json_opt_uint(r->have_pages, r->pages_4k),
			 "pages_2m", json_opt_uint(r->have_pages, r->pages_2m),
			 "pages_1g", json_opt_uint(r->have_pages, r->pages_1g),
			 "mapped_bytes", json_opt_uint(r->have_pages, r->mapped_bytes),
			 "ram_bytes", json_opt_uint(r->have_ram, r->ram_bytes),
			 "mapped_percent", pct >= 0 ? json_real(pct) : json_null(),
			 "vcpus", (json_int_t)r->vcpus,
			 "exits_per_sec", r->have_rate ? json_real(r->exits_per_sec) : json_null());
}

/* The VM of a memview row (rows are per VMM process). */
static const struct kvmstats_vm *vm_of_pid(struct kvmstats_host *host, pid_t pid)
{
	for (size_t i = 0; i < host_nvms(host); i++)
		if (host_vm(host, i)->pid == pid)
			return host_vm(host, i);
	return NULL;
}

/* --memory --json: a row's run_percent and wait_percent (null: unknown). */
static void json_memory_sched(json_t *row, const struct kvmstats_vm *vm)
{
	double run, wait;
	bool have = vm && sched_track_pct(vm->user, sched_track_vm_known(vm), &run, &wait);

	json_object_set_new(row, "run_percent", have ? json_real(run) : json_null());
	json_object_set_new(row, "wait_percent", have ? json_real(wait) : json_null());
}

/* kvmstat --memory: the VMs cheapest to live-migrate come last. */
static int print_memory(const struct options *o, struct kvmstats_host *host)
{
	struct memview v;
	int r = memview_collect(host, "/proc", o->interval, &v);

	if (r < 0)
		return r;
	if (o->json) {
		json_t *rows = json_array(), *doc;

		for (size_t i = 0; rows && i < v.nrows; i++) {
			json_t *row = json_memory_row(&v.rows[i]);

			if (row && !o->no_sched)
				json_memory_sched(row, vm_of_pid(host, v.rows[i].pid));
			json_array_append_new(rows, row);
		}
		doc = json_pack("{s:i, s:o}", "interval", (int)o->interval, "vms", rows);
		if (!doc || json_dumpf(doc, stdout, JSON_COMPACT) < 0)
			r = -ENOMEM;
		putchar('\n');
		json_decref(doc);
		memview_free(&v);
		return r;
	}
	printf("%7s %-16s %10s %8s %6s %11s %11s %7s %5s %10s", "pid", "vm",
	       "pages_4k", "pages_2m", "pages_1g", "mapped_MiB", "ram_MiB", "mapped%",
	       "vcpus", "exits/s");
	if (!o->no_sched)
		printf(" %6s %6s", "run%", "wait%");
	putchar('\n');
	for (size_t i = 0; i < v.nrows; i++) {
		const struct memview_row *row = &v.rows[i];
		double pct = memview_mapped_percent(row);

		printf("%7d ", (int)row->pid);
		print_name(row->name, 16);
		if (row->have_pages)
			printf(" %10llu %8llu %6llu %11.1f", (unsigned long long)row->pages_4k,
			       (unsigned long long)row->pages_2m,
			       (unsigned long long)row->pages_1g,
			       row->mapped_bytes / 1048576.0);
		else
			printf(" %10s %8s %6s %11s", "-", "-", "-", "-");
		if (row->have_ram)
			printf(" %11.1f", row->ram_bytes / 1048576.0);
		else
			printf(" %11s", "-");
		if (pct >= 0)
			printf(" %7.1f", pct);
		else
			printf(" %7s", "-");
		printf(" %5zu", row->vcpus);
		if (row->have_rate)
			printf(" %10.1f", row->exits_per_sec);
		else
			printf(" %10s", "-");
		if (!o->no_sched) {
			const struct kvmstats_vm *vm = vm_of_pid(host, row->pid);

			print_pct(vm ? vm->user : NULL, vm && sched_track_vm_known(vm));
		}
		putchar('\n');
	}
	putchar('\n');
	memview_free(&v);
	return 0;
}

/* ------------------------------------------------------------------- main */

/* Says once, exactly, why kvmstat cannot report anything. */
static int explain_nothing(const struct kvmstats_scan_report *rep,
			   const struct priv_report *priv, bool filtered)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	self[n > 0 ? n : 0] = '\0';
	if ((rep->discover.denied > 0 || rep->acquire_denied > 0) && !priv->sys_ptrace) {
		if (priv->root)
			fprintf(stderr, "kvmstat: running as root but without CAP_SYS_PTRACE "
				"(this shell or container drops it): cannot read the VMMs' "
				"stats fds. Run it where root keeps CAP_SYS_PTRACE.\n");
		else
			fprintf(stderr, "kvmstat: %u processes could not be inspected: not "
				"root and without CAP_SYS_PTRACE. Run as root, or grant it: "
				"setcap cap_sys_ptrace,cap_dac_read_search+ep %s\n",
				rep->discover.denied + rep->acquire_denied, self);
		return 1;
	}
	/* Before "no VM matches": a wanted VM that failed was matched. */
	if (rep->first_error < 0) {
		fprintf(stderr, "kvmstat: reading the VMs failed: %s\n",
			strerror(-rep->first_error));
		return 1;
	}
	if (filtered && rep->vms_without_stats == 0) {
		fprintf(stderr, "kvmstat: no VM matches the --pid and --name given\n");
		return 1;
	}
	if (rep->vms_without_stats > 0) {
		fprintf(stderr, "kvmstat: %u VMs found, but their VMMs hold no KVM stats "
			"fd (QEMU before 8.1, Firecracker, Cloud Hypervisor and kvmtool "
			"never open one), and neither QMP (--qmp) nor debugfs (%s) "
			"serves them: nothing to read\n", rep->vms_without_stats,
			rep->debugfs_missing ? "not mounted or not readable" : "off");
		return 1;
	}
	fprintf(stderr, "kvmstat: no KVM VMs are running on this host\n");
	return 1;
}

/*
 * 0 when there is something to read, else the exit status. Without the
 * binary stats API (Linux < 5.14) debugfs alone serves, if it is there.
 */
static int check_kernel(const struct options *o, bool *ret_no_fds)
{
	struct utsname u;
	int r = statsfd_supported();

	*ret_no_fds = false;
	if (r == 0) {
		uname(&u);
		/* Not access(2): it ignores capabilities for a non-root uid. */
		if (o->debugfs && debugfs_probe(o->debugfs) == 0) {
			fprintf(stderr, "kvmstat: kernel %s has no binary stats API: "
				"reading debugfs only\n", u.release);
			*ret_no_fds = true;
			return 0;
		}
		fprintf(stderr, "kvmstat: kernel %s has no binary stats API "
			"(KVM_CAP_BINARY_STATS_FD, Linux 5.14 or later), and %s is "
			"not readable\n", u.release, o->debugfs ? o->debugfs : "debugfs");
		return 1;
	}
	if (r == -ENOENT || r == -ENODEV || r == -ENXIO) {
		/*
		 * A kvmstat in a container without /dev/kvm can still read
		 * the QEMUs whose QMP sockets or libvirtd it is given.
		 */
		if (o->nqmp > 0 || o->libvirt) {
			*ret_no_fds = true;
			return 0;
		}
		fprintf(stderr, "kvmstat: no /dev/kvm: KVM is not available on this host\n");
		return 1;
	}
	return 0;	/* supported, or /dev/kvm not ours to open: try anyway */
}

/* Absolute deadlines: the reports do not drift, however long one takes. */
static void sleep_until(struct timespec *deadline, unsigned interval)
{
	deadline->tv_sec += interval;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL) == EINTR)
		;
}

static void say_news(const char *line, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "kvmstat: %s\n", line);
}

static int run(const struct options *o, struct kvmstats_host *host,
	       const struct priv_report *priv)
{
	struct kvmstats_scan_report rep;
	struct scan_said news = { 0 };
	struct timespec deadline;
	/* A pipe or a file gets the table, as without --top. */
	bool top = o->top && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
	int r;

	r = host_rescan(host, &rep);
	if (r < 0) {
		fprintf(stderr, "kvmstat: cannot scan /proc: %s\n", strerror(-r));
		return 1;
	}
	scan_news(&news, r, &rep, host, say_news, NULL);
	if (o->sources) {
		host_sample(host);
		print_sources(host);
		return host_nvms(host) > 0 ? 0 : explain_nothing(&rep, priv, false);
	}
	/*
	 * libvirt serves at the first sample: it may have what nothing else
	 * has. The full-screen view waits for VMs to come, unless something
	 * stands in the way.
	 */
	if (rep.vms_without_stats == host_nvms(host) && !o->libvirt &&
	    !(top && host_nvms(host) == 0 && rep.first_error == 0 &&
	      rep.discover.denied == 0 && rep.acquire_denied == 0))
		return explain_nothing(&rep, priv, o->npids > 0 || o->vm_filter);
	host_sample(host);
	sched_track_all(host);
	if (top) {
		struct top_config cfg = { .interval = o->interval, .count = o->count,
					  .stat_filter = o->stat_filter, .sched = table_sched(o) };

		return top_run(host, &cfg, &news);
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	for (unsigned long n = 0; o->count == 0 || n < o->count; n++) {
		sleep_until(&deadline, o->interval);
		/* New VMs and hot-plugged vCPUs; exited VMMs are released. */
		r = host_rescan(host, &rep);
		scan_news(&news, r, &rep, host, say_news, NULL);
		host_sample(host);
		sched_track_all(host);
		if (o->memory)
			r = print_memory(o, host);
		else
			r = o->json ? print_json(o, host) : print_table(o, host);
		if (r < 0 || fflush(stdout) != 0)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct kvmstats_host *host = NULL;
	const struct kvmstats_hooks hooks = { .want = want_vmm, .vm_removed = forget_vm };
	struct kvmstats_sources sources = { 0 };
	struct priv_report priv;
	int r, status;

	r = parse_args(argc, argv, &o);
	if (r != 0) {
		status = r > 0 ? 0 : 2;
		goto out;
	}
	status = check_kernel(&o, &sources.no_fds);
	if (status != 0)
		goto out;
	sources.qmp = o.qmp;
	sources.nqmp = o.nqmp;
	sources.debugfs = o.debugfs;
	sources.libvirt_uri = o.libvirt;
	sources.max_fds = o.max_fds;
	sources.no_sched = o.no_sched;
	/*
	 * The vCPU table shows vCPU stats only; what debugfs serves (VM-wide
	 * stats, mapped memory) goes to --json, --sources and --memory. At
	 * three syscalls a value (open, read, close) it was most of `kvmstat 1`
	 * at 200 VMs, so the vCPU table reads it once per VM (when found) and
	 * then hourly.
	 */
	if (!o.json && !o.sources && !o.memory)
		sources.debugfs_every_ms = 3600 * 1000;
	/* Before anything else: keep CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH only. */
	r = priv_probe(&priv);
	if (r >= 0)
		r = priv_restrict();
	if (r < 0) {
		fprintf(stderr, "kvmstat: cannot drop capabilities: %s\n", strerror(-r));
		status = 1;
		goto out;
	}
	/*
	 * SIGINT, SIGTERM and SIGPIPE keep their default action: kvmstat has
	 * nothing to save, and the kernel closes every fd it holds.
	 */
	acquire_raise_nofile();	/* each held stats fd counts against it */
	r = host_new(NULL, true, &hooks, &o, &host);
	if (r >= 0)
		r = host_set_sources(host, &sources);
	if (r < 0) {
		fprintf(stderr, "kvmstat: %s\n", strerror(-r));
		status = 1;
		goto out;
	}
	status = run(&o, host, &priv);
out:
	host_free(host);
	filter_free(o.vm_filter);
	filter_free(o.stat_filter);
	return status;
}
