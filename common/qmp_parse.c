/* SPDX-License-Identifier: MIT */
/*
 * qmp_parse.c: the JSON answers of a QEMU (>= 7.1) QMP monitor -> schemas
 * and values, for qmp.c (which holds the socket) and for tests and fuzzers.
 *
 * Follows qapi/stats.json: query-stats-schemas types the stats, query-stats
 * with target vm and vcpu gives their values, and query-cpus-fast maps a
 * vCPU's QOM path to its cpu-index. QEMU fills both from the same KVM stats
 * fds this project reads directly (accel/kvm/kvm-all.c), so the schemas are
 * translated back into the kernel's KVM_STATS_* flags and checked with the
 * same rules decode.c applies (decode_check_desc()).
 *
 * Pure: no syscalls, no logging, no globals. The text is untrusted: jansson
 * parses it (never by hand), and every field is type-checked before use.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "qmp.h"
#include "qmp_internal.h"

/* x86 KVM has ~50 vCPU stats and KVM_MAX_VCPUS is 4096 at most (MAXSMP). */
#define QMP_MAX_STATS 4096u
#define QMP_MAX_VCPUS 16384u
/* u64 slots in one result, all targets: 32 MiB, 50 times a 4096-vCPU VM. */
#define QMP_MAX_SLOTS (4u << 20)

/* ------------------------------------------------------------ schemas */

struct qmp_name {
	const char *name;
	uint32_t value;
};

static const struct qmp_name qmp_types[] = {
	{ "cumulative", KVM_STATS_TYPE_CUMULATIVE },
	{ "instant", KVM_STATS_TYPE_INSTANT },
	{ "peak", KVM_STATS_TYPE_PEAK },
	{ "linear-histogram", KVM_STATS_TYPE_LINEAR_HIST },
	{ "log2-histogram", KVM_STATS_TYPE_LOG_HIST },
};

/* An absent unit is KVM_STATS_UNIT_NONE ("a simple number or counter"). */
static const struct qmp_name qmp_units[] = {
	{ "bytes", KVM_STATS_UNIT_BYTES },
	{ "seconds", KVM_STATS_UNIT_SECONDS },
	{ "cycles", KVM_STATS_UNIT_CYCLES },
	{ "boolean", KVM_STATS_UNIT_BOOLEAN },	/* QEMU 7.2 */
};

/*
 * The kernel's value for a QMP enum string, or all ones in the field (mask)
 * for a string newer than this build: no kernel value is that, and
 * decode_type_name()/decode_unit_name() call it "unknown".
 */
static uint32_t enum_value(const struct qmp_name *tab, size_t n,
			   const char *name, uint32_t mask, bool *known)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i].name, name) == 0)
			return tab[i].value;
	*known = false;
	return mask;
}

/* A JSON integer within [min, max]. */
int qmp_get_int(const json_t *v, long long min, long long max,
		long long *ret)
{
	long long x;

	if (!json_is_integer(v))
		return -EBADMSG;
	x = json_integer_value(v);
	if (x < min || x > max)
		return -EBADMSG;
	*ret = x;
	return 0;
}

/*
 * One StatsSchemaValue -> d. d->name borrows the JSON string: the caller
 * copies it before the JSON goes.
 */
static int desc_from_json(const json_t *o, struct kvmstats_desc *d)
{
	const json_t *name = json_object_get(o, "name");
	const json_t *type = json_object_get(o, "type");
	const json_t *unit = json_object_get(o, "unit");
	const json_t *base = json_object_get(o, "base");
	const json_t *bucket = json_object_get(o, "bucket-size");
	long long exponent, b = 10, bucket_size = 0;
	uint32_t t, u = KVM_STATS_UNIT_NONE;
	bool known = true;

	/* The name is checked by the caller (decode_name_valid()). */
	if (!json_is_string(name) || !json_is_string(type) ||
	    (unit && !json_is_string(unit)))
		return -EBADMSG;
	/* jansson refuses \u0000 in strings (no JSON_ALLOW_NUL): C strings. */
	if (qmp_get_int(json_object_get(o, "exponent"), INT16_MIN, INT16_MAX,
		    &exponent) < 0)
		return -EBADMSG;
	/* "Only present if exponent is non-zero": absent means no scaling. */
	if (base && qmp_get_int(base, INT8_MIN, INT8_MAX, &b) < 0)
		return -EBADMSG;
	if (bucket && qmp_get_int(bucket, 0, UINT32_MAX, &bucket_size) < 0)
		return -EBADMSG;

	t = enum_value(qmp_types, sizeof(qmp_types) / sizeof(qmp_types[0]),
		       json_string_value(type), KVM_STATS_TYPE_MASK, &known);
	if (unit)
		u = enum_value(qmp_units, sizeof(qmp_units) / sizeof(qmp_units[0]),
			       json_string_value(unit), KVM_STATS_UNIT_MASK, &known);
	*d = (struct kvmstats_desc){
		.name = json_string_value(name),
		.type = t,
		.unit = u,
		.exponent = (int16_t)exponent,
		.size = 1,
		.bucket_size = (uint32_t)bucket_size,
	};
	if (b == 10) {
		d->base = KVM_STATS_BASE_POW10;
	} else if (b == 2) {
		d->base = KVM_STATS_BASE_POW2;
	} else {
		d->base = KVM_STATS_BASE_MASK;
		known = false;
	}
	d->flags = d->type | d->unit | d->base;
	/* Like decode.c: an unknown type or unit is kept raw, not refused. */
	d->known = known;
	return known ? decode_check_desc(d) : 0;
}

/* A stat name and its position, sorted by name: lookups without n^2. */
struct name_ref {
	const char *name;
	uint32_t i;
};

static int name_ref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct name_ref *)a)->name,
		      ((const struct name_ref *)b)->name);
}

/* The sorted index of s's names. -EBADMSG: a name twice. */
static int index_build(const struct kvmstats_schema *s,
		       struct name_ref **ret_index)
{
	struct name_ref *idx = calloc(s->num_desc, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->num_desc; i++)
		idx[i] = (struct name_ref){ s->desc[i].name, i };
	qsort(idx, s->num_desc, sizeof(*idx), name_ref_cmp);
	for (uint32_t i = 1; i < s->num_desc; i++) {
		if (strcmp(idx[i - 1].name, idx[i].name) == 0) {
			free(idx);
			return -EBADMSG;
		}
	}
	*ret_index = idx;
	return 0;
}

/* Position of name in the schema, or -ENOENT. */
static int index_find(const struct name_ref *idx, uint32_t n, const char *name)
{
	struct name_ref key = { name, 0 };
	const struct name_ref *hit = bsearch(&key, idx, n, sizeof(*idx),
					     name_ref_cmp);

	return hit ? (int)hit->i : -ENOENT;
}

/*
 * Assigns each stat its first value slot, in schema order, from the sizes
 * in desc[]. -EBADMSG: more slots than QMP_MAX_SLOTS.
 */
static int schema_layout(struct kvmstats_schema *s)
{
	uint32_t next = 0;

	for (uint32_t i = 0; i < s->num_desc; i++) {
		s->desc[i].index = next;
		next += s->desc[i].size;	/* <= 4096 * 65535: no overflow */
	}
	if (next > QMP_MAX_SLOTS)
		return -EBADMSG;
	s->num_values = next;
	s->data_len = next * (uint32_t)sizeof(uint64_t);
	s->data_offset = 0;	/* no file behind it */
	return 0;
}

/*
 * The "stats" list of one StatsSchema -> a schema with refs == 1, every stat
 * one value until a stats answer says otherwise. A stat whose name is no C
 * identifier (decode_name_valid()) is left out and counted in refused: a
 * peer's names end up in chart ids and file names. Values of names left out
 * are then skipped as those of any stat the schema lacks. An empty list,
 * or one whose every name was left out, gives NULL.
 */
static int schema_from_json(const json_t *stats,
			    struct kvmstats_schema **ret_schema)
{
	struct kvmstats_schema *s;
	struct name_ref *idx = NULL;
	size_t n = json_array_size(stats), names_len = 0;
	char *p;
	int r;

	if (!json_is_array(stats) || n > QMP_MAX_STATS)
		return -EBADMSG;
	if (n == 0) {
		*ret_schema = NULL;
		return 0;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->desc = calloc(n, sizeof(*s->desc));
	if (!s->desc) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(stats, i);
		const char *name = qmp_get_string(o, "name");

		if (!json_is_object(o) || !name) {
			r = -EBADMSG;
			goto fail;
		}
		if (!decode_name_valid(name)) {
			decode_name_refuse(&s->refused, name);
			continue;
		}
		r = desc_from_json(o, &s->desc[s->num_desc]);
		if (r < 0)
			goto fail;
		names_len += strlen(s->desc[s->num_desc].name) + 1;
		s->num_desc++;
	}
	if (s->num_desc == 0) {
		schema_unref(s);
		*ret_schema = NULL;
		return 0;
	}
	r = index_build(s, &idx);	/* names are unique per target */
	if (r < 0)
		goto fail;
	free(idx);
	r = schema_layout(s);
	if (r < 0)
		goto fail;

	/* The names move from the JSON into one block the schema owns. */
	s->names = malloc(names_len);
	if (!s->names) {
		r = -ENOMEM;
		goto fail;
	}
	p = s->names;
	for (size_t i = 0; i < s->num_desc; i++) {
		size_t len = strlen(s->desc[i].name) + 1;

		memcpy(p, s->desc[i].name, len);
		s->desc[i].name = p;
		p += len;
	}
	*ret_schema = s;
	return 0;

fail:
	schema_unref(s);	/* frees desc[], never the borrowed names */
	return r;
}

/* A string member, or NULL when absent or not a string. */
const char *qmp_get_string(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/*
 * The "return" of query-stats-schemas. Providers other than kvm and targets
 * other than vm and vcpu (QEMU 8.0 adds cryptodev) are skipped.
 */
static int schemas_from_json(const json_t *ret, struct kvmstats_schema **ret_vm,
			     struct kvmstats_schema **ret_vcpu)
{
	struct kvmstats_schema *vm = NULL, *vcpu = NULL;
	bool seen_vm = false, seen_vcpu = false;
	size_t i;
	json_t *o;
	int r;

	if (!json_is_array(ret))
		return -EBADMSG;
	json_array_foreach(ret, i, o) {
		const char *provider = qmp_get_string(o, "provider");
		const char *target = qmp_get_string(o, "target");
		struct kvmstats_schema **slot;
		bool *seen;

		if (!provider || !target) {
			r = -EBADMSG;
			goto fail;
		}
		if (strcmp(provider, "kvm") != 0)
			continue;
		if (strcmp(target, "vm") == 0) {
			slot = &vm;
			seen = &seen_vm;
		} else if (strcmp(target, "vcpu") == 0) {
			slot = &vcpu;
			seen = &seen_vcpu;
		} else {
			continue;
		}
		if (*seen) {
			r = -EBADMSG;
			goto fail;
		}
		*seen = true;
		r = schema_from_json(json_object_get(o, "stats"), slot);
		if (r < 0)
			goto fail;
	}
	*ret_vm = vm;
	*ret_vcpu = vcpu;
	return 0;

fail:
	schema_unref(vm);
	schema_unref(vcpu);
	return r;
}

/* -------------------------------------------------------------- stats */

/*
 * The size of one StatsValue: 1 for a scalar (uint64, or a boolean since
 * QEMU 7.2, which sends "blocking": false), n for a list of n uint64.
 * QEMU sends a list exactly when the kernel's size is > 1, whatever the
 * type, so the shape alone gives the size.
 */
static int value_size(const json_t *v, uint32_t *ret_size)
{
	size_t n, i;
	json_t *x;

	if (json_is_boolean(v) ||
	    (json_is_integer(v) && json_integer_value(v) >= 0)) {
		*ret_size = 1;
		return 0;
	}
	n = json_array_size(v);
	if (!json_is_array(v) || n == 0 || n > UINT16_MAX)
		return -EBADMSG;
	json_array_foreach(v, i, x)
		if (!json_is_integer(x) || json_integer_value(x) < 0)
			return -EBADMSG;
	*ret_size = (uint32_t)n;
	return 0;
}

/*
 * Copies a value value_size() accepted into its size slots at out, a list
 * turned back into the kernel's order when QEMU sent it reversed.
 */
static void value_copy(const json_t *v, bool reversed, uint64_t *out)
{
	size_t i, n = json_array_size(v);
	json_t *x;

	if (json_is_boolean(v))
		out[0] = json_is_true(v);
	else if (json_is_integer(v))
		out[0] = (uint64_t)json_integer_value(v);
	else
		json_array_foreach(v, i, x)
			out[reversed ? n - 1 - i : i] = (uint64_t)json_integer_value(x);
}

/* One target's schema while its answer is read. */
struct target {
	struct kvmstats_schema *schema;
	struct name_ref *idx;
	uint32_t *size;		/* per stat: size seen in the answer, 0: none */
	uint32_t *stamp;	/* per stat: last entry that named it */
	bool reversed;		/* lists arrive last element first */
};

static void target_free(struct target *t)
{
	free(t->idx);
	free(t->size);
	free(t->stamp);
	*t = (struct target){ 0 };
}

static int target_init(struct target *t, struct kvmstats_schema *schema,
		       const struct qmp_version *qemu)
{
	int r;

	*t = (struct target){
		.schema = schema,
		.reversed = qmp_lists_reversed(qemu) != 0,
	};
	r = index_build(schema, &t->idx);
	if (r < 0)
		return r;
	t->size = calloc(schema->num_desc, sizeof(*t->size));
	t->stamp = calloc(schema->num_desc, sizeof(*t->stamp));
	if (!t->size || !t->stamp) {
		target_free(t);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Checks the "stats" list of one StatsResult (entry number n, from 1) and
 * records the size of each stat the schema has. Stats the schema lacks are
 * skipped. -EBADMSG: a malformed stat, one named twice in the entry, or a
 * size that differs from another entry's (all vCPUs share one schema).
 */
static int entry_sizes(struct target *t, const json_t *stats, uint32_t n)
{
	size_t i;
	json_t *o;

	if (!json_is_array(stats))
		return -EBADMSG;
	json_array_foreach(stats, i, o) {
		const char *name = qmp_get_string(o, "name");
		uint32_t size;
		int k, r;

		if (!name)
			return -EBADMSG;
		r = value_size(json_object_get(o, "value"), &size);
		if (r < 0)
			return r;
		k = index_find(t->idx, t->schema->num_desc, name);
		if (k < 0)
			continue;
		if (t->stamp[k] == n)
			return -EBADMSG;
		t->stamp[k] = n;
		if (t->size[k] != 0 && t->size[k] != size)
			return -EBADMSG;
		t->size[k] = size;
	}
	return 0;
}

/* Sizes from the answer; a stat no entry had keeps one (zero) value. */
static int target_layout(struct target *t)
{
	for (uint32_t k = 0; k < t->schema->num_desc; k++)
		t->schema->desc[k].size = t->size[k] ? (uint16_t)t->size[k] : 1;
	return schema_layout(t->schema);
}

/* Fills values (num_values slots, zeroed) from an entry entry_sizes() passed. */
static void entry_values(const struct target *t, const json_t *stats,
			 uint64_t *values)
{
	size_t i;
	json_t *o;

	json_array_foreach(stats, i, o) {
		int k = index_find(t->idx, t->schema->num_desc,
				   qmp_get_string(o, "name"));

		if (k >= 0)
			value_copy(json_object_get(o, "value"), t->reversed,
				   values + t->schema->desc[k].index);
	}
}

/*
 * Whether a StatsResult is the kvm provider's (only those are looked into).
 * -EBADMSG: no provider, or a kvm one without a stats list.
 */
static int is_kvm_entry(const json_t *o)
{
	const char *provider = qmp_get_string(o, "provider");

	if (!provider)
		return -EBADMSG;
	if (strcmp(provider, "kvm") != 0)
		return 0;
	return json_is_array(json_object_get(o, "stats")) ? 1 : -EBADMSG;
}

/* A query-cpus-fast entry. */
struct cpu {
	const char *qom_path;	/* borrowed from the JSON */
	int index;
	pid_t tid;		/* its "thread-id"; 0: none or not a tid */
	const json_t *stats;	/* its query-stats entry, NULL: none yet */
};

static int cpu_cmp_path(const void *a, const void *b)
{
	return strcmp(((const struct cpu *)a)->qom_path,
		      ((const struct cpu *)b)->qom_path);
}

static int cpu_cmp_index(const void *a, const void *b)
{
	int x = ((const struct cpu *)a)->index, y = ((const struct cpu *)b)->index;

	return (x > y) - (x < y);
}

/*
 * The "return" of query-cpus-fast -> cpus sorted by QOM path.
 * -EBADMSG: a field missing or a QOM path or cpu-index twice.
 */
static int cpus_from_json(const json_t *ret, struct cpu **ret_cpus,
			  size_t *ret_n)
{
	size_t n = json_array_size(ret), i;
	struct cpu *cpus;
	json_t *o;

	if (ret && !json_is_array(ret))
		return -EBADMSG;
	if (n > QMP_MAX_VCPUS)
		return -EBADMSG;
	cpus = calloc(n ? n : 1, sizeof(*cpus));
	if (!cpus)
		return -ENOMEM;
	json_array_foreach(ret, i, o) {
		long long index;

		cpus[i].qom_path = qmp_get_string(o, "qom-path");
		if (!cpus[i].qom_path ||
		    qmp_get_int(json_object_get(o, "cpu-index"), 0, INT_MAX, &index) < 0)
			goto bad;
		cpus[i].index = (int)index;
		/* Optional to us: the stats do not need it. */
		if (qmp_get_int(json_object_get(o, "thread-id"), 1, INT_MAX, &index) >= 0)
			cpus[i].tid = (pid_t)index;
	}
	qsort(cpus, n, sizeof(*cpus), cpu_cmp_index);
	for (i = 1; i < n; i++)
		if (cpus[i - 1].index == cpus[i].index)
			goto bad;
	qsort(cpus, n, sizeof(*cpus), cpu_cmp_path);
	for (i = 1; i < n; i++)
		if (strcmp(cpus[i - 1].qom_path, cpus[i].qom_path) == 0)
			goto bad;
	*ret_cpus = cpus;
	*ret_n = n;
	return 0;

bad:
	free(cpus);
	return -EBADMSG;
}

/* The "return" of query-stats target vm -> s->vm_values. */
static int vm_from_json(struct qmp_stats *s, const json_t *ret)
{
	const json_t *found = NULL;
	struct target t;
	size_t i;
	json_t *o;
	int r;

	if (ret && !json_is_array(ret))
		return -EBADMSG;
	json_array_foreach(ret, i, o) {
		r = is_kvm_entry(o);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		if (found)
			return -EBADMSG;	/* one VM, one kvm entry */
		found = o;
	}
	r = target_init(&t, s->vm_schema, &s->qemu);
	if (r < 0)
		return r;
	if (found)
		r = entry_sizes(&t, json_object_get(found, "stats"), 1);
	if (r >= 0)
		r = target_layout(&t);
	if (r >= 0) {
		s->vm_values = calloc(s->vm_schema->num_values, sizeof(uint64_t));
		if (!s->vm_values)
			r = -ENOMEM;
	}
	if (r >= 0 && found)
		entry_values(&t, json_object_get(found, "stats"), s->vm_values);
	target_free(&t);
	return r;
}

/*
 * The "return"s of query-stats target vcpu and of query-cpus-fast ->
 * s->nvcpus, vcpu_index, vcpu_values, sorted by cpu-index. An entry whose
 * QOM path query-cpus-fast does not list is left out: that vCPU was
 * unplugged between the two commands.
 */
static int vcpus_from_json(struct qmp_stats *s, const json_t *ret,
			   const json_t *cpus_ret)
{
	struct cpu *cpus = NULL;
	size_t ncpus = 0, n = 0, i;
	struct target t = { 0 };
	json_t *o;
	int r;

	if (ret && !json_is_array(ret))
		return -EBADMSG;
	r = cpus_from_json(cpus_ret, &cpus, &ncpus);
	if (r < 0)
		return r;
	r = target_init(&t, s->vcpu_schema, &s->qemu);
	if (r < 0)
		goto out;
	json_array_foreach(ret, i, o) {
		struct cpu key = { .qom_path = qmp_get_string(o, "qom-path") }, *c;

		r = is_kvm_entry(o);
		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		if (!key.qom_path) {
			r = -EBADMSG;
			goto out;
		}
		c = bsearch(&key, cpus, ncpus, sizeof(*cpus), cpu_cmp_path);
		if (!c)
			continue;
		if (c->stats) {
			r = -EBADMSG;	/* one vCPU, two entries */
			goto out;
		}
		c->stats = json_object_get(o, "stats");
		r = entry_sizes(&t, c->stats, (uint32_t)++n);
		if (r < 0)
			goto out;
	}
	r = target_layout(&t);
	if (r < 0)
		goto out;
	if ((uint64_t)n * s->vcpu_schema->num_values +
	    (s->vm_schema ? s->vm_schema->num_values : 0) > QMP_MAX_SLOTS) {
		r = -EBADMSG;
		goto out;
	}

	qsort(cpus, ncpus, sizeof(*cpus), cpu_cmp_index);
	s->cpu_index = calloc(ncpus ? ncpus : 1, sizeof(*s->cpu_index));
	s->cpu_tid = calloc(ncpus ? ncpus : 1, sizeof(*s->cpu_tid));
	if (!s->cpu_index || !s->cpu_tid) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < ncpus; i++) {
		s->cpu_index[i] = cpus[i].index;
		s->cpu_tid[i] = cpus[i].tid;
	}
	s->ncpus = ncpus;
	s->vcpu_index = calloc(n ? n : 1, sizeof(*s->vcpu_index));
	s->vcpu_values = calloc(n ? n : 1, sizeof(*s->vcpu_values));
	if (!s->vcpu_index || !s->vcpu_values) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < ncpus; i++) {
		uint64_t *values;

		if (!cpus[i].stats)
			continue;
		values = calloc(s->vcpu_schema->num_values, sizeof(*values));
		if (!values) {
			r = -ENOMEM;
			goto out;
		}
		entry_values(&t, cpus[i].stats, values);
		s->vcpu_index[s->nvcpus] = cpus[i].index;
		s->vcpu_values[s->nvcpus++] = values;
	}
	r = 0;
out:
	target_free(&t);
	free(cpus);
	return r;
}

/* ------------------------------------------------------------ version */

/*
 * The first QEMU that sends query-stats lists in the kernel's order; 0.0.0
 * while there is none. QEMU's add_kvmstat_entry() (accel/kvm/kvm-all.c)
 * has built a stat of size > 1 with QAPI_LIST_PREPEND(val_list,
 * stats_data[i]) for i = 0, 1, ... since query-stats came in 7.1, so the
 * list starts with the kernel's last bucket. Seen on 7.2.22 and 10.0.2
 * against the same vCPU's stats fd, and still so in the 10.1 source. When
 * a release sends bucket 0 first, its version goes here.
 */
static const struct qmp_version qmp_in_order_since = { 0, 0, 0 };

static int version_cmp(const struct qmp_version *a, const struct qmp_version *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->micro != b->micro)
		return a->micro < b->micro ? -1 : 1;
	return 0;
}

int qmp_lists_reversed(const struct qmp_version *qemu)
{
	static const struct qmp_version none = { 0, 0, 0 };

	if (version_cmp(&qmp_in_order_since, &none) == 0 ||
	    version_cmp(qemu, &none) == 0)
		return 1;
	return version_cmp(qemu, &qmp_in_order_since) < 0;
}

/*
 * {"QMP": {"version": {"qemu": {"major", "minor", "micro"}}}} -> ret. A
 * greeting without a well-formed version leaves 0.0.0 (unknown): the
 * version only decides the list order, which is the same either way today.
 */
static void version_from_json(const json_t *greeting, struct qmp_version *ret)
{
	const json_t *qmp = json_object_get(greeting, "QMP");
	const json_t *q = json_object_get(json_object_get(qmp, "version"), "qemu");
	long long v[3];

	if (qmp_get_int(json_object_get(q, "major"), 0, INT_MAX, &v[0]) < 0 ||
	    qmp_get_int(json_object_get(q, "minor"), 0, INT_MAX, &v[1]) < 0 ||
	    qmp_get_int(json_object_get(q, "micro"), 0, INT_MAX, &v[2]) < 0)
		return;
	*ret = (struct qmp_version){ (int)v[0], (int)v[1], (int)v[2] };
}

/*
 * Builds the result from parsed answers (vm, vcpu, cpus may be NULL: no
 * entries; greeting NULL: version unknown). The caller frees it with
 * qmp_stats_free().
 */
int qmp_stats_from_json(const json_t *greeting, const json_t *schemas,
			const json_t *vm, const json_t *vcpu, const json_t *cpus,
			struct qmp_stats **ret_stats)
{
	struct qmp_stats *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	version_from_json(greeting, &s->qemu);
	r = schemas_from_json(schemas, &s->vm_schema, &s->vcpu_schema);
	if (r >= 0 && s->vm_schema)
		r = vm_from_json(s, vm);
	if (r >= 0 && s->vcpu_schema)
		r = vcpus_from_json(s, vcpu, cpus);
	if (r < 0) {
		qmp_stats_free(s);
		return r;
	}
	*ret_stats = s;
	return 0;
}

void qmp_stats_free(struct qmp_stats *stats)
{
	if (!stats)
		return;
	for (size_t i = 0; stats->vcpu_values && i < stats->nvcpus; i++)
		free(stats->vcpu_values[i]);
	free(stats->vcpu_values);
	free(stats->vcpu_index);
	free(stats->cpu_index);
	free(stats->cpu_tid);
	free(stats->vm_values);
	schema_unref(stats->vm_schema);
	schema_unref(stats->vcpu_schema);
	free(stats);
}

/* -------------------------------------------------------------- entries */

/*
 * json_loadb() with the flags every QMP text gets. Integers above
 * INT64_MAX (jansson's json_int_t) are refused by jansson itself: that is
 * -EBADMSG like any number that is not a uint64 we can hold; any other
 * failure is err_other.
 */
int qmp_load(const char *text, size_t len, int err_other, json_t **ret)
{
	json_error_t error;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);

	/*
	 * jansson reports a failed allocation as a syntax error, which would
	 * blame the peer (and put it in backoff) for our memory. The same
	 * bytes parse the same way, so a second try tells the two apart.
	 */
	if (!j)
		j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
	if (!j)
		return json_error_code(&error) == json_error_numeric_overflow ?
		       -EBADMSG : err_other;
	*ret = j;
	return 0;
}

int qmp_parse_schemas(const char *json, size_t len,
		      struct kvmstats_schema **ret_vm,
		      struct kvmstats_schema **ret_vcpu)
{
	json_t *j;
	int r;

	if (!json)
		return -EINVAL;
	r = qmp_load(json, len, -EBADMSG, &j);
	if (r < 0)
		return r;
	r = schemas_from_json(j, ret_vm, ret_vcpu);
	json_decref(j);
	return r;
}

int qmp_parse_answers(const struct qmp_answers *a, struct qmp_stats **ret_stats)
{
	const char *text[] = { a->schemas, a->vm, a->vcpu, a->cpus, a->greeting };
	size_t len[] = { a->schemas_len, a->vm_len, a->vcpu_len, a->cpus_len,
			 a->greeting_len };
	json_t *j[5] = { NULL };
	int r = 0;

	if (!a->schemas)
		return -EINVAL;
	for (size_t i = 0; i < 5 && r >= 0; i++)
		if (text[i])
			r = qmp_load(text[i], len[i], -EBADMSG, &j[i]);
	if (r >= 0)
		r = qmp_stats_from_json(j[4], j[0], j[1], j[2], j[3], ret_stats);
	for (size_t i = 0; i < 5; i++)
		json_decref(j[i]);
	return r;
}
