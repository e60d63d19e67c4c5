/* SPDX-License-Identifier: MIT */
/*
 * charts.c: KVM stats -> Netdata charts, and the protocol lines for them.
 *
 * One chart per catalog group and kind of value, so that every stat the
 * kernel has lands on a chart with the right units: counters of events per
 * second, time as milliseconds per second, gauges, booleans (vCPUs in that
 * state), one chart per histogram with a dimension per bucket, and the
 * mapped guest memory (pages_4k/2m/1g) in MiB. A stat this build cannot
 * interpret goes, raw, to an "other_raw" chart: nothing is dropped.
 *
 * Netdata keeps integers: units are reached with multiplier and divisor.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "charts.h"
#include "cmdline.h"

#define PRIORITY_BASE 38100
#define PRIORITY_VCPU 2000
#define PRIORITY_CPU (PRIORITY_BASE - 1)	/* first of a VM's charts */
#define MIB 1048576
#define NS_PER_PERCENT 10000000		/* 1 % of a CPU: 10^7 ns a second */

/* How one stat is shown, apart from which group it is in. */
struct kind {
	const char *suffix;	/* appended to the group's name for the key */
	const char *title;	/* appended to the group's title */
	const char *units;	/* NULL: the group's rate unit (catalog) */
	const char *algorithm;
	const char *type;
	int order;		/* priority within the group */
	int64_t multiplier, divisor;
};

/* base^|exp| as multiplier (exp > 0) or divisor (exp < 0). */
static void scale_by(const struct kvmstats_desc *d, int exp, struct kind *k)
{
	int64_t step = d->base == KVM_STATS_BASE_POW2 ? 2 : 10, f = 1;

	for (int i = exp < 0 ? -exp : exp; i > 0 && f < INT64_MAX / step; i--)
		f *= step;
	if (exp >= 0)
		k->multiplier = f;
	else
		k->divisor = f;
}

/* The size in bytes of the pages a mapped-memory stat counts, or 0. */
static int64_t page_size_of(const char *name)
{
	static const struct { const char *name; int64_t size; } pages[] = {
		{ "pages_4k", 4096 }, { "pages_2m", 2 * MIB }, { "pages_1g", 1024 * MIB },
		{ "num_2M_pages", 2 * MIB }, { "num_1G_pages", 1024 * MIB },
	};

	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		if (strcmp(name, pages[i].name) == 0)
			return pages[i].size;
	return 0;
}

static struct kind kind_of(const struct kvmstats_desc *d, bool vcpu_level)
{
	bool counter = d->type == KVM_STATS_TYPE_CUMULATIVE;
	struct kind k = {
		.suffix = "", .title = "", .algorithm = counter ? "incremental" : "absolute",
		.type = "line", .multiplier = 1, .divisor = 1,
	};
	int64_t page = page_size_of(d->name);

	if (!d->known) {
		k.suffix = "_raw";
		k.title = " (raw values of stats this build does not know)";
		k.units = "raw";
		k.algorithm = "absolute";
		k.order = 9;
		return k;
	}
	if (page > 0 && !counter) {
		/* Mapped guest memory: cheap to live-migrate when small. */
		k.units = "MiB";
		k.type = "stacked";
		k.multiplier = page;
		k.divisor = MIB;
		return k;
	}
	switch (d->unit) {
	case KVM_STATS_UNIT_SECONDS:
		k.suffix = counter ? "_time" : "_duration";
		k.title = counter ? " time" : " duration";
		k.units = counter ? "milliseconds/s" : "milliseconds";
		k.order = 2;
		scale_by(d, d->exponent + 3, &k);
		break;
	case KVM_STATS_UNIT_BYTES:
		k.suffix = counter ? "_bytes" : "_size";
		k.title = counter ? " bytes" : " size";
		k.units = counter ? "bytes/s" : "bytes";
		k.order = 3;
		scale_by(d, d->exponent, &k);
		break;
	case KVM_STATS_UNIT_CYCLES:
		k.suffix = counter ? "_cycles" : "_cycles_current";
		k.title = " cycles";
		k.units = counter ? "cycles/s" : "cycles";
		k.order = 4;
		scale_by(d, d->exponent, &k);
		break;
	case KVM_STATS_UNIT_BOOLEAN:
		k.suffix = "_state";
		k.title = " state";
		k.units = vcpu_level ? "boolean" : "vCPUs";
		k.order = 5;
		break;
	default:
		if (!counter) {
			k.suffix = d->type == KVM_STATS_TYPE_PEAK ? "_peak" : "_current";
			k.title = d->type == KVM_STATS_TYPE_PEAK ? " peaks" : " current values";
			k.units = "value";
			k.order = d->type == KVM_STATS_TYPE_PEAK ? 7 : 6;
		}
		scale_by(d, d->exponent, &k);
	}
	return k;
}

struct builder {
	struct layout *layout;
	const struct layout_options *opt;
	bool vcpu_level;
};

static struct chart *find_or_add_chart(struct builder *b, const char *key)
{
	struct layout *l = b->layout;
	char id[sizeof(l->charts[0].key)];
	struct chart *charts;

	/* A histogram's key is its stat's name: an id part like any other. */
	chart_id_part(key, id, sizeof(id));
	for (size_t i = 0; i < l->ncharts; i++)
		if (strcmp(l->charts[i].key, id) == 0)
			return &l->charts[i];
	charts = reallocarray(l->charts, l->ncharts + 1, sizeof(*charts));
	if (!charts)
		return NULL;
	l->charts = charts;
	charts = &l->charts[l->ncharts++];
	memset(charts, 0, sizeof(*charts));
	memcpy(charts->key, id, sizeof(charts->key));
	snprintf(charts->context, sizeof(charts->context), "kvm.%s.%s",
		 b->vcpu_level ? "vcpu" : "vm", id);
	return charts;
}

static int add_dim(struct chart *c, const struct chart_dim *dim)
{
	struct chart_dim *dims = reallocarray(c->dims, c->ndims + 1, sizeof(*dims));

	if (!dims)
		return -ENOMEM;
	c->dims = dims;
	dims[c->ndims] = *dim;
	/* A VM stat and a vCPU stat of the same name: keep both apart. */
	for (size_t i = 0; i < c->ndims; i++)
		if (strcmp(dims[i].id, dim->id) == 0)
			strncat(dims[c->ndims].id, "_vm",
				sizeof(dims[c->ndims].id) - strlen(dims[c->ndims].id) - 1);
	c->ndims++;
	return 0;
}

/* "<1.02us", ">=2.15s": a bucket bound in the stat's unit, readable. */
static void bound_label(const struct kvmstats_desc *d, uint32_t i, char *buf,
			size_t size)
{
	static const struct { double scale; const char *unit; } time_units[] = {
		{ 1, "s" }, { 1e-3, "ms" }, { 1e-6, "us" }, { 1e-9, "ns" },
	};
	uint64_t lo, hi;
	bool open;
	double v;
	size_t u = 0;

	if (decode_bucket_bounds(d, i, &lo, &hi) < 0) {
		snprintf(buf, size, "bucket%" PRIu32, i);
		return;
	}
	open = hi == UINT64_MAX;
	v = (double)(open ? lo : hi) * decode_scale(d);
	if (d->unit != KVM_STATS_UNIT_SECONDS) {
		snprintf(buf, size, "%s%.4g", open ? ">=" : "<", v);
		return;
	}
	while (u + 1 < sizeof(time_units) / sizeof(time_units[0]) &&
	       v < time_units[u].scale)
		u++;
	snprintf(buf, size, "%s%.3g%s", open ? ">=" : "<", v / time_units[u].scale,
		 time_units[u].unit);
}

static int add_histogram(struct builder *b, const struct kvmstats_desc *d,
			 enum catalog_group g, enum chart_source source)
{
	struct chart *c = find_or_add_chart(b, d->name);

	if (!c)
		return -ENOMEM;
	snprintf(c->title, sizeof(c->title), "%s: %s", catalog_group_title(g), d->name);
	c->units = "events/s";
	c->family = catalog_group_name(g);
	c->type = b->opt->heatmap ? "heatmap" : "stacked";
	c->algorithm = "incremental";
	c->priority = PRIORITY_BASE + (int)g * 20 + 10;
	c->buckets = true;
	for (uint32_t i = 0; i < d->size; i++) {
		struct chart_dim dim = {
			.source = source, .slot = d->index + i,
			.multiplier = 1, .divisor = 1,
		};
		int r;

		snprintf(dim.id, sizeof(dim.id), "bucket%" PRIu32, i);
		bound_label(d, i, dim.name, sizeof(dim.name));
		r = add_dim(c, &dim);
		if (r < 0)
			return r;
	}
	return 0;
}

static int add_stat(struct builder *b, const struct kvmstats_desc *d,
		    enum chart_source source)
{
	enum catalog_group g = catalog_group_of(d->name);
	bool hist = d->known && (d->type == KVM_STATS_TYPE_LINEAR_HIST ||
				 d->type == KVM_STATS_TYPE_LOG_HIST);
	struct chart_dim dim = { .source = source, .slot = d->index };
	struct kind k;
	char key[72];
	struct chart *c;

	if (b->vcpu_level ? !b->opt->vcpu_groups[g] : !b->opt->groups[g])
		return 0;
	if (filter_match(b->opt->stats, d->name) != 1)
		return 0;
	if (hist) {
		bool wanted = b->vcpu_level ? b->opt->vcpu_histograms : b->opt->histograms;

		return wanted ? add_histogram(b, d, g, source) : 0;
	}

	k = kind_of(d, b->vcpu_level);
	snprintf(key, sizeof(key), "%s%s", catalog_group_name(g), k.suffix);
	c = find_or_add_chart(b, key);
	if (!c)
		return -ENOMEM;
	if (c->ndims == 0) {
		snprintf(c->title, sizeof(c->title), "%s%s", catalog_group_title(g), k.title);
		c->units = k.units ? k.units : catalog_group_units(g);
		c->family = catalog_group_name(g);
		c->type = k.type;
		c->algorithm = k.algorithm;
		c->priority = PRIORITY_BASE + (int)g * 20 + k.order;
	}
	chart_id_part(d->name, dim.id, sizeof(dim.id));
	snprintf(dim.name, sizeof(dim.name), "%s", dim.id);
	dim.multiplier = k.multiplier;
	dim.divisor = k.divisor;
	/*
	 * A stat with more than one value that is no histogram has no meaning
	 * this build knows: chart its first value, as kvmstat --json shows all.
	 */
	return add_dim(c, &dim);
}

static int add_schema(struct builder *b, const struct kvmstats_schema *s,
		      enum chart_source source)
{
	for (uint32_t i = 0; s && i < s->num_desc; i++) {
		int r = add_stat(b, &s->desc[i], source);

		if (r < 0)
			return r;
	}
	return 0;
}

int layout_build(const struct kvmstats_schema *vm_schema,
		 const struct kvmstats_schema *vcpu_schema, bool vcpu_only,
		 const struct layout_options *opt, struct layout **ret_layout)
{
	struct builder b = { .opt = opt, .vcpu_level = vcpu_only };
	int r;

	b.layout = calloc(1, sizeof(*b.layout));
	if (!b.layout)
		return -ENOMEM;
	if (vcpu_only) {
		r = add_schema(&b, vcpu_schema, SOURCE_VCPU);
	} else {
		r = add_schema(&b, vm_schema, SOURCE_VM_FD);
		if (r >= 0)
			r = add_schema(&b, vcpu_schema, SOURCE_VCPU_TOTAL);
	}
	if (r < 0) {
		layout_free(b.layout);
		return r;
	}
	if (vcpu_only)
		for (size_t i = 0; i < b.layout->ncharts; i++)
			b.layout->charts[i].priority += PRIORITY_VCPU;
	*ret_layout = b.layout;
	return 0;
}

void cpu_chart_init(struct cpu_chart *c, bool vcpu_level, unsigned vcpus)
{
	static const char *const ids[SCHED_NSLOTS] = {
		[SCHED_RUN] = "run", [SCHED_WAIT] = "wait", [SCHED_OTHER] = "vmm_other",
	};
	size_t ndims = vcpu_level ? SCHED_OTHER : SCHED_NSLOTS;

	memset(c, 0, sizeof(*c));
	c->vcpus = vcpus > 0 ? vcpus : 1;
	snprintf(c->chart.key, sizeof(c->chart.key), "cpu");
	snprintf(c->chart.context, sizeof(c->chart.context), "kvm.%s.cpu",
		 vcpu_level ? "vcpu" : "vm");
	/* Units say the base; the title what 100 % is. */
	snprintf(c->chart.title, sizeof(c->chart.title), "%s",
		 vcpu_level ? "CPU: the vCPU thread on a host CPU (run) and runnable "
			      "waiting for one (wait); 100% = always runnable"
			    : "CPU: vCPU threads on a host CPU (run) and runnable waiting "
			      "for one (wait); 100% = every vCPU always runnable");
	c->chart.units = vcpu_level ? "% of one CPU" : "% per vCPU";
	c->chart.family = "cpu";
	c->chart.type = "stacked";
	c->chart.algorithm = "incremental";
	c->chart.priority = PRIORITY_CPU + (vcpu_level ? PRIORITY_VCPU : 0);
	c->chart.dims = c->dims;
	c->chart.ndims = ndims;
	for (size_t i = 0; i < ndims; i++) {
		struct chart_dim *d = &c->dims[i];

		snprintf(d->id, sizeof(d->id), "%s", ids[i]);
		snprintf(d->name, sizeof(d->name), "%s", ids[i]);
		d->source = SOURCE_SCHED;
		d->slot = (uint32_t)i;
		d->multiplier = 1;
		d->divisor = (int64_t)NS_PER_PERCENT * c->vcpus;
	}
}

void cpu_chart_values(const struct kvmstats_vm *vm, const struct kvmstats_vcpu *vcpu,
		      uint64_t values[SCHED_NSLOTS])
{
	const struct kvmstats_sched_total *t = vm ? &vm->sched_vcpus : &vcpu->sched_total;

	values[SCHED_RUN] = t->run_ns;
	values[SCHED_WAIT] = t->wait_ns;
	values[SCHED_OTHER] = vm ? vm->other_run_ns : 0;
}

void layout_free(struct layout *layout)
{
	if (!layout)
		return;
	for (size_t i = 0; i < layout->ncharts; i++)
		free(layout->charts[i].dims);
	free(layout->charts);
	free(layout);
}

void chart_id_part(const char *s, char *buf, size_t size)
{
	size_t n = 0;

	for (; *s && n + 1 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
			buf[n++] = (char)c;
		else if (c >= 'A' && c <= 'Z')
			buf[n++] = (char)(c - 'A' + 'a');
		else
			buf[n++] = '_';
	}
	buf[n] = '\0';
}

void chart_quote(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', out);
	for (size_t shown = 0; *p && shown < 200; shown++) {
		size_t n = name_utf8_len((const char *)p);

		if (n > 1) {
			fwrite(p, 1, n, out);
			p += n;
			continue;
		}
		if (n == 0 || *p < 0x20 || *p == 0x7f)
			fputc('?', out);
		else if (*p == '"')
			fputc('\'', out);
		else if (*p == '\\')
			fputc('/', out);
		else
			fputc(*p, out);
		p++;
	}
	fputc('"', out);
}

static void label(FILE *out, const char *name, const char *value)
{
	fputs("CLABEL ", out);
	chart_quote(out, name);
	fputc(' ', out);
	chart_quote(out, value);
	fputs(" 1\n", out);	/* 1: the label was set automatically */
}

/* " word": one more quoted field of a protocol line. */
static void field(FILE *out, const char *s)
{
	fputc(' ', out);
	chart_quote(out, s);
}

void chart_define(FILE *out, const char *type_id, const char *prefix,
		  const struct chart *c, const struct chart_labels *labels,
		  int update_every, bool obsolete, const bool *shown)
{
	const struct kvmstats_vm *vm = labels->vm;
	char num[32];

	/*
	 * The id's parts are chart_id_part()s (or numbers); every other
	 * field goes through chart_quote(), whatever it holds today.
	 */
	fprintf(out, "CHART %s.%s%s ''", type_id, prefix, c->key);
	field(out, c->title);
	field(out, c->units);
	field(out, c->family);
	field(out, c->context);
	fprintf(out, " %s %d %d", c->type, c->priority, update_every);
	field(out, obsolete ? "obsolete" : "");
	field(out, "kvm_stats.plugin");
	field(out, labels->vcpu >= 0 ? "vcpu" : "vm");
	fputc('\n', out);
	if (obsolete)
		return;
	label(out, "vm_name", vm->name);
	snprintf(num, sizeof(num), "%d", (int)vm->pid);
	label(out, "vm_pid", num);
	if (vm->uuid)
		label(out, "vm_uuid", vm->uuid);
	/* libvirt's title and Nova's names: vm_title, vm_nova_name, ... */
	for (size_t i = 0; i < vm->nlabels; i++) {
		char key[48];

		snprintf(key, sizeof(key), "vm_%s", vm->labels[i].key);
		label(out, key, vm->labels[i].value);
	}
	if (labels->vcpu >= 0) {
		snprintf(num, sizeof(num), "%d", labels->vcpu);
		label(out, "vcpu", num);
	}
	fputs("CLABEL_COMMIT\n", out);
	for (size_t i = 0; i < c->ndims; i++) {
		const struct chart_dim *d = &c->dims[i];

		if (shown && !shown[i])
			continue;
		fputs("DIMENSION", out);
		field(out, d->id);
		field(out, d->name);
		fprintf(out, " %s %" PRId64 " %" PRId64 " ''\n", c->algorithm,
			d->multiplier, d->divisor);
	}
}

/*
 * "SET 'id' = value\n" without printf: at 200 VMs of 4 vCPUs the plugin
 * writes 44,000 of these a second, and vfprintf was its biggest cost.
 * Netdata takes collected values as int64.
 */
static void put_set(FILE *out, const struct chart_dim *d, int64_t v)
{
	char line[sizeof(d->id) + 32], digits[24], *p = line, *q = digits + sizeof(digits);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	size_t n = strlen(d->id);

	do {
		*--q = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--q = '-';
	p = mempcpy(p, "SET '", 5);
	p = mempcpy(p, d->id, n);
	p = mempcpy(p, "' = ", 4);
	p = mempcpy(p, q, (size_t)(digits + sizeof(digits) - q));
	*p++ = '\n';
	fwrite_unlocked(line, 1, (size_t)(p - line), out);	/* one thread writes */
}

void chart_update(FILE *out, const char *type_id, const char *prefix,
		  const struct chart *c, const uint64_t *const values[CHART_NSOURCES],
		  uint64_t usec, const bool *shown)
{
	fputs_unlocked("BEGIN ", out);
	fputs_unlocked(type_id, out);
	fputc_unlocked('.', out);
	fputs_unlocked(prefix, out);
	fputs_unlocked(c->key, out);
	if (usec > 0)
		fprintf(out, " %" PRIu64, usec);
	fputc_unlocked('\n', out);
	for (size_t i = 0; i < c->ndims; i++) {
		const struct chart_dim *d = &c->dims[i];
		const uint64_t *v = values[d->source];

		if (v && (!shown || shown[i]))
			put_set(out, d, (int64_t)v[d->slot]);
	}
	fputs_unlocked("END\n", out);
}

int chart_show_nonzero(const struct chart *c, const uint64_t *const values[CHART_NSOURCES], bool *shown)
{
	size_t last = 0;	/* 1 + the last dimension not zero */
	int added = 0;

	for (size_t i = 0; i < c->ndims; i++) {
		const uint64_t *v = values[c->dims[i].source];

		if (v && v[c->dims[i].slot] != 0)
			last = i + 1;
	}
	for (size_t i = 0; i < c->ndims; i++) {
		const uint64_t *v = values[c->dims[i].source];
		bool show = c->buckets ? i < last : v && v[c->dims[i].slot] != 0;

		if (show && !shown[i]) {
			shown[i] = true;
			added = 1;
		}
	}
	return added;
}
