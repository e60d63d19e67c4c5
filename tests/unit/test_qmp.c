/* SPDX-License-Identifier: MIT */
/*
 * test_qmp: the QMP client on real and broken answers, and against a fake
 * QMP server.
 *
 * The real answers (tests/fixtures/qmp/, from tests/fixtures/capture-qmp)
 * are the lines QEMU 7.2 wrote on this kernel. The parser is fed them, then
 * variants broken one field at a time. The fake server is a forked child on
 * a unix socket in a mkdtemp() directory: it replays the captured lines
 * (with the id of each request), or misbehaves in one way per test. Every
 * call is checked for fd leaks by counting /proc/self/fd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "qmp.h"
#include "qmp_internal.h"
#include "tree.h"

#define TIMEOUT_MS 300
#define SLACK_MS 100	/* how late a timed-out call may return */

/* --------------------------------------------------------------- fixtures */

enum cmd { CMD_CAPS, CMD_SCHEMAS, CMD_VM, CMD_VCPU, CMD_CPUS, NCMDS };

static const char *const cmd_file[NCMDS] = {
	"qmp_capabilities", "query-stats-schemas", "query-stats-vm",
	"query-stats-vcpu", "query-cpus-fast",
};

/* The captured lines, and the "return" of each as JSON text. */
static char *greeting;
static char *line[NCMDS];
static char *ret_text[NCMDS];

static char *read_fixture(const char *name)
{
	const char *dir = getenv("KVMSTATS_FIXTURES");
	char path[4096], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/qmp/%s.json",
		 dir ? dir : "tests/fixtures", name);
	f = fopen(path, "rbe");
	if (!f) {
		fprintf(stderr, "test_qmp: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static int fixtures_load(void **state)
{
	(void)state;
	greeting = read_fixture("greeting");
	if (!greeting)
		return -1;
	for (int i = 0; i < NCMDS; i++) {
		json_t *j;

		line[i] = read_fixture(cmd_file[i]);
		if (!line[i])
			return -1;
		j = json_loads(line[i], 0, NULL);
		if (!j || !json_object_get(j, "return"))
			return -1;
		ret_text[i] = json_dumps(json_object_get(j, "return"), JSON_ENCODE_ANY);
		json_decref(j);
	}
	return 0;
}

static int fixtures_free(void **state)
{
	(void)state;
	free(greeting);
	for (int i = 0; i < NCMDS; i++) {
		free(line[i]);
		free(ret_text[i]);
	}
	return 0;
}

static json_t *fixture_json(enum cmd c)
{
	json_t *j = json_loads(ret_text[c], JSON_DECODE_ANY, NULL);

	assert_non_null(j);
	return j;
}

/* qmp_parse_answers() on NUL-terminated texts (NULL: not given). */
static int parse(const char *schemas, const char *vm, const char *vcpu,
		 const char *cpus, struct qmp_stats **ret)
{
	struct qmp_answers a = {
		.schemas = schemas, .vm = vm, .vcpu = vcpu, .cpus = cpus,
		.schemas_len = schemas ? strlen(schemas) : 0,
		.vm_len = vm ? strlen(vm) : 0,
		.vcpu_len = vcpu ? strlen(vcpu) : 0,
		.cpus_len = cpus ? strlen(cpus) : 0,
	};

	return qmp_parse_answers(&a, ret);
}

static int parse_schemas(const char *json, struct kvmstats_schema **vm,
			 struct kvmstats_schema **vcpu)
{
	return qmp_parse_schemas(json, strlen(json), vm, vcpu);
}

/* ------------------------------------------------- checks on real answers */

static const json_t *schema_stats_of(const json_t *schemas, const char *target)
{
	size_t i;
	json_t *o;

	json_array_foreach(schemas, i, o)
		if (strcmp(json_string_value(json_object_get(o, "target")), target) == 0)
			return json_object_get(o, "stats");
	return NULL;
}

/* Indexes follow schema order, each stat right after the one before. */
static void check_layout(const struct kvmstats_schema *s)
{
	uint32_t next = 0;

	for (uint32_t i = 0; i < s->num_desc; i++) {
		assert_int_equal(s->desc[i].index, next);
		assert_true(s->desc[i].size >= 1);
		next += s->desc[i].size;
	}
	assert_int_equal(s->num_values, next);
	assert_int_equal(s->data_len, next * 8u);
	assert_int_equal(s->refs, 1);
}

/*
 * Every value of one StatsResult's "stats" is in values where desc says, a
 * list last element first: every QEMU so far sends it reversed.
 */
static void check_entry(const struct kvmstats_schema *s, const uint64_t *values,
			const json_t *stats)
{
	size_t i, j;
	json_t *o, *x;

	json_array_foreach(stats, i, o) {
		const json_t *v = json_object_get(o, "value");
		int k = schema_find(s, json_string_value(json_object_get(o, "name")));
		const struct kvmstats_desc *d;

		assert_true(k >= 0);
		d = &s->desc[k];
		if (json_is_array(v)) {
			assert_int_equal(d->size, json_array_size(v));
			json_array_foreach(v, j, x)
				assert_int_equal(values[d->index + d->size - 1 - j],
						 (uint64_t)json_integer_value(x));
		} else {
			assert_int_equal(d->size, 1);
			assert_int_equal(values[d->index], json_is_boolean(v) ?
					 (uint64_t)json_is_true(v) :
					 (uint64_t)json_integer_value(v));
		}
	}
}

/* s is what QEMU's captured answers say, value for value. */
static void check_real(const struct qmp_stats *s)
{
	json_t *vm = fixture_json(CMD_VM), *vcpu = fixture_json(CMD_VCPU);
	json_t *cpus = fixture_json(CMD_CPUS), *o, *c;
	size_t i, j;

	assert_non_null(s->vm_schema);
	assert_non_null(s->vcpu_schema);
	check_layout(s->vm_schema);
	check_layout(s->vcpu_schema);
	check_entry(s->vm_schema, s->vm_values,
		    json_object_get(json_array_get(vm, 0), "stats"));

	/* QEMU lists device[2] (cpu-index 1) first: the result is sorted. */
	assert_int_equal(s->nvcpus, json_array_size(cpus));
	for (i = 0; i < s->nvcpus; i++)
		assert_int_equal(s->vcpu_index[i], (int)i);
	json_array_foreach(vcpu, i, o) {
		const char *path = json_string_value(json_object_get(o, "qom-path"));

		json_array_foreach(cpus, j, c) {
			int index = (int)json_integer_value(json_object_get(c, "cpu-index"));

			if (strcmp(path, json_string_value(json_object_get(c, "qom-path"))) == 0)
				check_entry(s->vcpu_schema, s->vcpu_values[index],
					    json_object_get(o, "stats"));
		}
	}
	/* The kernel's log histograms have 32 buckets (HALT_POLL_HIST_COUNT). */
	assert_int_equal(s->vcpu_schema->desc[schema_find(s->vcpu_schema,
					      "halt_wait_hist")].size, 32);
	json_decref(vm);
	json_decref(vcpu);
	json_decref(cpus);
}

static void test_schemas_real(void **state)
{
	struct kvmstats_schema *vm, *vcpu;
	json_t *schemas = fixture_json(CMD_SCHEMAS);
	const struct kvmstats_desc *d;
	(void)state;

	assert_int_equal(parse_schemas(ret_text[CMD_SCHEMAS], &vm, &vcpu), 0);
	assert_int_equal(vm->num_desc, json_array_size(schema_stats_of(schemas, "vm")));
	assert_int_equal(vcpu->num_desc,
			 json_array_size(schema_stats_of(schemas, "vcpu")));
	/* Before a stats answer, every stat is one value. */
	check_layout(vm);
	check_layout(vcpu);
	assert_int_equal(vcpu->num_values, vcpu->num_desc);
	for (uint32_t i = 0; i < vcpu->num_desc; i++)
		assert_true(vcpu->desc[i].known);

	d = &vcpu->desc[schema_find(vcpu, "halt_wait_hist")];
	assert_int_equal(d->type, KVM_STATS_TYPE_LOG_HIST);
	assert_int_equal(d->unit, KVM_STATS_UNIT_SECONDS);
	assert_int_equal(d->base, KVM_STATS_BASE_POW10);
	assert_int_equal(d->exponent, -9);
	assert_int_equal(d->flags, KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS);
	d = &vcpu->desc[schema_find(vcpu, "blocking")];
	assert_int_equal(d->type, KVM_STATS_TYPE_INSTANT);
	assert_int_equal(d->unit, KVM_STATS_UNIT_BOOLEAN);
	d = &vcpu->desc[schema_find(vcpu, "exits")];
	assert_int_equal(d->flags, KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE);
	assert_int_equal(d->exponent, 0);
	d = &vm->desc[schema_find(vm, "max_mmu_rmap_size")];
	assert_int_equal(d->type, KVM_STATS_TYPE_PEAK);
	d = &vm->desc[schema_find(vm, "pages_4k")];
	assert_int_equal(d->type, KVM_STATS_TYPE_INSTANT);
	assert_string_equal(vm->desc[0].name,
			    json_string_value(json_object_get(json_array_get(
				    schema_stats_of(schemas, "vm"), 0), "name")));
	schema_unref(vm);
	schema_unref(vcpu);
	json_decref(schemas);
}

static void test_answers_real(void **state)
{
	struct qmp_stats *s;
	(void)state;

	assert_int_equal(parse(ret_text[CMD_SCHEMAS], ret_text[CMD_VM],
			       ret_text[CMD_VCPU], ret_text[CMD_CPUS], &s), 0);
	assert_int_equal(s->pid, 0);
	check_real(s);
	/* query-cpus-fast's thread-ids, by cpu-index: hints for sched.c. */
	assert_int_equal(s->ncpus, 2);
	assert_int_equal(s->cpu_index[0], 0);
	assert_int_equal(s->cpu_tid[0], 11675);
	assert_int_equal(s->cpu_index[1], 1);
	assert_int_equal(s->cpu_tid[1], 11676);
	qmp_stats_free(s);
}

/*
 * The kernel puts a halt of v ns in bucket fls64(v) of a log histogram
 * (bucket n >= 1 holds [2^(n-1), 2^n), the last one everything above) and
 * adds the same v to the matching *_ns counter. So for a right bucket
 * order: sum hist[n] * lo(n) <= ns, and, the last bucket empty,
 * ns < sum hist[n] * 2^n. 1 when hist[size] and ns fit that, else 0.
 */
static int hist_fits(const uint64_t *hist, uint16_t size, uint64_t ns)
{
	unsigned __int128 lo = 0, hi = 0;

	for (uint16_t n = 0; n < size; n++) {
		lo += (unsigned __int128)hist[n] * (n ? (uint64_t)1 << (n - 1) : 0);
		hi += (unsigned __int128)hist[n] << n;
	}
	if (lo > ns)
		return 0;
	return hist[size - 1] != 0 || ns < hi || (hi == 0 && ns == 0);
}

/*
 * QEMU 7.2's captured answer: vCPU 1 halted twice for 795 ms in all, which
 * QEMU lists as two halts in bucket 2 ([2, 4) ns). In the kernel's order,
 * bucket 29 ([268, 537) ms), they fit halt_wait_ns; as sent, they do not.
 */
static void test_hist_kernel_order(void **state)
{
	static const char *const pairs[][2] = {
		{ "halt_wait_hist", "halt_wait_ns" },
		{ "halt_poll_success_hist", "halt_poll_success_ns" },
		{ "halt_poll_fail_hist", "halt_poll_fail_ns" },
	};
	struct qmp_answers a = {
		.schemas = ret_text[CMD_SCHEMAS], .vm = ret_text[CMD_VM],
		.vcpu = ret_text[CMD_VCPU], .cpus = ret_text[CMD_CPUS],
		.greeting = greeting,
		.schemas_len = strlen(ret_text[CMD_SCHEMAS]),
		.vm_len = strlen(ret_text[CMD_VM]),
		.vcpu_len = strlen(ret_text[CMD_VCPU]),
		.cpus_len = strlen(ret_text[CMD_CPUS]),
		.greeting_len = strlen(greeting),
	};
	struct qmp_stats *s;
	const struct kvmstats_desc *h;
	uint64_t sent[32];
	(void)state;

	assert_int_equal(qmp_parse_answers(&a, &s), 0);
	assert_int_equal(s->qemu.major, 7);
	assert_int_equal(s->qemu.minor, 2);
	assert_int_equal(s->qemu.micro, 22);
	for (size_t c = 0; c < s->nvcpus; c++) {
		const uint64_t *v = s->vcpu_values[c];

		for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
			h = &s->vcpu_schema->desc[schema_find(s->vcpu_schema, pairs[p][0])];
			assert_int_equal(h->size, 32);
			assert_true(hist_fits(v + h->index, h->size,
					      v[s->vcpu_schema->desc[schema_find(
						      s->vcpu_schema, pairs[p][1])].index]));
		}
	}
	h = &s->vcpu_schema->desc[schema_find(s->vcpu_schema, "halt_wait_hist")];
	assert_int_equal(s->vcpu_index[1], 1);
	assert_int_equal(s->vcpu_values[1][h->index + 29], 2);
	for (int n = 0; n < 32; n++)
		sent[n] = s->vcpu_values[1][h->index + 31 - n];
	assert_false(hist_fits(sent, 32, s->vcpu_values[1][s->vcpu_schema->desc[
				schema_find(s->vcpu_schema, "halt_wait_ns")].index]));
	qmp_stats_free(s);
}

/* Answers not given count as empty: schemas, zero values, no vCPUs. */
static void test_answers_absent(void **state)
{
	struct qmp_stats *s;
	(void)state;

	assert_int_equal(parse(ret_text[CMD_SCHEMAS], NULL, NULL, NULL, &s), 0);
	assert_non_null(s->vm_schema);
	for (uint32_t i = 0; i < s->vm_schema->num_values; i++)
		assert_int_equal(s->vm_values[i], 0);
	assert_int_equal(s->nvcpus, 0);
	qmp_stats_free(s);

	assert_int_equal(parse(NULL, NULL, NULL, NULL, &s), -EINVAL);
	qmp_stats_free(NULL);
}

/* ------------------------------------------------------ schema variants */

#define VM_SCHEMA(stats) \
	"[{\"provider\": \"kvm\", \"target\": \"vm\", \"stats\": [" stats "]}]"
#define CUM(name) "{\"name\": \"" name "\", \"type\": \"cumulative\", \"exponent\": 0}"

static void test_schema_unknown_kept(void **state)
{
	struct kvmstats_schema *vm, *vcpu;
	(void)state;

	assert_int_equal(parse_schemas(VM_SCHEMA(
		CUM("a") ","
		"{\"name\": \"u_type\", \"type\": \"exp-histogram\", \"exponent\": 0},"
		"{\"name\": \"u_unit\", \"type\": \"peak\", \"unit\": \"joules\", \"exponent\": -3},"
		"{\"name\": \"u_base\", \"type\": \"instant\", \"unit\": \"bytes\", "
		"\"base\": 16, \"exponent\": 1}," CUM("z")), &vm, &vcpu), 0);
	assert_null(vcpu);
	assert_int_equal(vm->num_desc, 5);
	assert_true(vm->desc[0].known);
	assert_false(vm->desc[1].known);
	assert_string_equal(decode_type_name(vm->desc[1].type), "unknown");
	assert_false(vm->desc[2].known);
	assert_int_equal(vm->desc[2].type, KVM_STATS_TYPE_PEAK);
	assert_string_equal(decode_unit_name(vm->desc[2].unit), "unknown");
	assert_int_equal(vm->desc[2].exponent, -3);
	assert_false(vm->desc[3].known);
	assert_int_equal(vm->desc[3].unit, KVM_STATS_UNIT_BYTES);
	assert_true(vm->desc[4].known);
	assert_string_equal(vm->desc[4].name, "z");
	assert_int_equal(vm->desc[4].index, 4);
	schema_unref(vm);
}

static void test_schema_skips_others(void **state)
{
	struct kvmstats_schema *vm, *vcpu;
	(void)state;

	/* QEMU 8.0 adds provider and target cryptodev. */
	assert_int_equal(parse_schemas(
		"[{\"provider\": \"cryptodev\", \"target\": \"cryptodev\", \"stats\": ["
		CUM("c") "]}, {\"provider\": \"kvm\", \"target\": \"cryptodev\", "
		"\"stats\": [" CUM("d") "]}, {\"provider\": \"kvm\", \"target\": "
		"\"vcpu\", \"stats\": [" CUM("exits") "," CUM("halt_exits") "]}]",
		&vm, &vcpu), 0);
	assert_null(vm);
	assert_int_equal(vcpu->num_desc, 2);
	assert_string_equal(vcpu->desc[1].name, "halt_exits");
	schema_unref(vcpu);

	/* TCG: no stats providers at all. */
	vm = vcpu = (void *)1;
	assert_int_equal(parse_schemas("[]", &vm, &vcpu), 0);
	assert_null(vm);
	assert_null(vcpu);
	assert_int_equal(parse_schemas(VM_SCHEMA(""), &vm, &vcpu), 0);
	assert_null(vm);
}

static void test_schema_broken(void **state)
{
	static const char *const broken[] = {
		"", "not json", "{}", "[1]", "[{\"provider\": \"kvm\"",
		"[{\"target\": \"vm\", \"stats\": []}]",
		"[{\"provider\": \"kvm\", \"stats\": []}]",
		"[{\"provider\": \"kvm\", \"target\": \"vm\"}]",
		"[{\"provider\": \"kvm\", \"target\": \"vm\", \"stats\": {}}]",
		"[{\"provider\": 7, \"target\": \"vm\", \"stats\": []}]",
		VM_SCHEMA("1"),
		VM_SCHEMA("{\"type\": \"cumulative\", \"exponent\": 0}"),
		VM_SCHEMA("{\"name\": 5, \"type\": \"cumulative\", \"exponent\": 0}"),
		VM_SCHEMA("{\"name\": \"a\\u0000b\", \"type\": \"cumulative\", \"exponent\": 0}"),
		VM_SCHEMA("{\"name\": \"a\", \"exponent\": 0}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": 3, \"exponent\": 0}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\", \"unit\": 1, \"exponent\": 0}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\"}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\", \"exponent\": 1.5}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\", \"exponent\": 40000}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\", \"exponent\": 2, \"base\": \"10\"}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\", \"exponent\": 2, \"base\": 300}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"linear-histogram\", \"exponent\": 0, \"bucket-size\": -1}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"linear-histogram\", \"exponent\": 0, \"bucket-size\": 4294967296}"),
		/* the selftest's invariants, for known types and units */
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\", \"unit\": \"seconds\", \"exponent\": 3}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\", \"exponent\": -1}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"instant\", \"unit\": \"boolean\", \"exponent\": 1}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"linear-histogram\", \"exponent\": 0}"),
		VM_SCHEMA("{\"name\": \"a\", \"type\": \"cumulative\", \"exponent\": 0, \"bucket-size\": 5}"),
		/* names are unique per target, targets per provider, keys per object */
		VM_SCHEMA(CUM("a") "," CUM("b") "," CUM("a")),
		"[{\"provider\": \"kvm\", \"target\": \"vm\", \"stats\": [" CUM("a") "]},"
		" {\"provider\": \"kvm\", \"target\": \"vm\", \"stats\": [" CUM("b") "]}]",
		VM_SCHEMA("{\"name\": \"a\", \"name\": \"b\", \"type\": \"cumulative\", \"exponent\": 0}"),
	};
	(void)state;

	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		struct kvmstats_schema *vm = (void *)1, *vcpu = (void *)1;
		struct qmp_stats *s = (void *)1;

		if (parse_schemas(broken[i], &vm, &vcpu) != -EBADMSG)
			fail_msg("schemas %zu accepted: %s", i, broken[i]);
		assert_ptr_equal(vm, (void *)1);	/* untouched on failure */
		assert_ptr_equal(vcpu, (void *)1);
		assert_int_equal(parse(broken[i], "[]", "[]", "[]", &s), -EBADMSG);
		assert_ptr_equal(s, (void *)1);
	}
}

/* ---------------------------------------------------------- hostile names */

/* A 65-character name (one past DECODE_NAME_MAX) and a 64-character one. */
#define A65 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B64 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* What a hostile QEMU renames real vCPU stats to; NULL: a good name, kept. */
static const struct {
	const char *stat, *to;
	bool bad;
} hostile[] = {
	{ "irq_exits", "evil\nCHART x '' t u", true },	/* first in schema order */
	{ "halt_exits", "../../../../tmp/x", true },
	{ "halt_poll_fail_hist", "q' \"x", true },
	{ "exits", "", true },
	{ "io_exits", " ", true },
	{ "mmio_exits", A65, true },
	{ "signal_exits", "caf\u00e9", true },
	{ "pf_fixed", B64, false },
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static void rename_walk(json_t *j)
{
	const char *key;
	size_t i;
	json_t *v;

	if (json_is_array(j))
		json_array_foreach(j, i, v)
			rename_walk(v);
	if (!json_is_object(j))
		return;
	json_object_foreach(j, key, v) {
		if (strcmp(key, "name") != 0 || !json_is_string(v)) {
			rename_walk(v);
			continue;
		}
		for (i = 0; i < NHOSTILE; i++)
			if (strcmp(json_string_value(v), hostile[i].stat) == 0)
				assert_int_equal(json_string_set(v, hostile[i].to), 0);
	}
}

/* The fixture's "return" c with the hostile names; the caller frees it. */
static char *hostile_text(enum cmd c)
{
	json_t *j = fixture_json(c);
	char *text;

	rename_walk(j);
	text = json_dumps(j, JSON_ENCODE_ANY);
	assert_non_null(text);
	json_decref(j);
	return text;
}

/*
 * A QEMU whose stats have names no kernel gives (newlines and a protocol
 * line, a path, quotes, empty, blank, too long, not ASCII): each is left
 * out and counted, and every other stat is kept with the value QEMU sent,
 * histograms included.
 */
static void test_hostile_names(void **state)
{
	char *schemas = hostile_text(CMD_SCHEMAS), *vcpu = hostile_text(CMD_VCPU);
	struct qmp_stats *o, *h;
	const struct kvmstats_schema *os, *hs;
	size_t nbad = 0;
	(void)state;

	for (size_t i = 0; i < NHOSTILE; i++)
		nbad += hostile[i].bad;
	assert_int_equal(parse(ret_text[CMD_SCHEMAS], ret_text[CMD_VM], ret_text[CMD_VCPU],
			       ret_text[CMD_CPUS], &o), 0);
	assert_int_equal(parse(schemas, ret_text[CMD_VM], vcpu, ret_text[CMD_CPUS], &h), 0);
	os = o->vcpu_schema;
	hs = h->vcpu_schema;
	assert_int_equal(hs->refused.count, nbad);
	assert_string_equal(hs->refused.first, "evil\nCHART x '' t u");
	assert_int_equal(hs->num_desc, os->num_desc - nbad);
	assert_int_equal(h->vm_schema->refused.count, 0);
	assert_int_equal(h->vm_schema->num_desc, o->vm_schema->num_desc);
	check_layout(hs);
	for (uint32_t k = 0; k < hs->num_desc; k++)
		assert_int_equal(decode_name_valid(hs->desc[k].name), 1);
	assert_int_equal(h->nvcpus, o->nvcpus);

	for (uint32_t k = 0; k < os->num_desc; k++) {
		const struct kvmstats_desc *od = &os->desc[k], *hd;
		const char *name = od->name;
		bool bad = false;
		int j;

		for (size_t i = 0; i < NHOSTILE; i++)
			if (strcmp(name, hostile[i].stat) == 0) {
				name = hostile[i].to;
				bad = hostile[i].bad;
			}
		j = schema_find(hs, name);
		if (bad) {
			assert_int_equal(j, -ENOENT);
			continue;
		}
		assert_true(j >= 0);
		hd = &hs->desc[j];
		assert_int_equal(hd->flags, od->flags);
		assert_int_equal(hd->size, od->size);
		for (size_t c = 0; c < h->nvcpus; c++)
			for (uint16_t b = 0; b < od->size; b++)
				assert_int_equal(h->vcpu_values[c][hd->index + b],
						 o->vcpu_values[c][od->index + b]);
	}
	/* The 64-character name is kept: pf_fixed's values, histograms too. */
	assert_true(schema_find(hs, B64) >= 0);
	assert_int_equal(hs->desc[schema_find(hs, "halt_wait_hist")].size, 32);
	qmp_stats_free(o);
	qmp_stats_free(h);
	free(schemas);
	free(vcpu);
}

/* A vm schema of n peak stats s0 ... s<n-1>. */
static char *schema_of(size_t n)
{
	size_t len = n * 64 + 128, off;
	char *buf = malloc(len);

	assert_non_null(buf);
	off = (size_t)snprintf(buf, len, "[{\"provider\": \"kvm\", \"target\": "
			       "\"vm\", \"stats\": [");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s{\"name\": \"s%zu\", "
					"\"type\": \"peak\", \"exponent\": 0}",
					i ? "," : "", i);
	snprintf(buf + off, len - off, "]}]");
	return buf;
}

/* More stats than any kernel has. */
static void test_schema_too_many(void **state)
{
	struct kvmstats_schema *vm = NULL, *vcpu = NULL;
	char *buf = schema_of(4097);
	(void)state;

	assert_int_equal(parse_schemas(buf, &vm, &vcpu), -EBADMSG);
	free(buf);
	buf = schema_of(4096);
	assert_int_equal(parse_schemas(buf, &vm, &vcpu), 0);
	assert_int_equal(vm->num_desc, 4096);
	assert_string_equal(vm->desc[4095].name, "s4095");
	schema_unref(vm);
	free(buf);
}

/* ------------------------------------------------------- stats variants */

#define SMALL_SCHEMAS \
	"[{\"provider\": \"kvm\", \"target\": \"vm\", \"stats\": [" CUM("a") "," \
	"{\"name\": \"h\", \"type\": \"log2-histogram\", \"unit\": \"seconds\", " \
	"\"base\": 10, \"exponent\": -9}]}, {\"provider\": \"kvm\", \"target\": " \
	"\"vcpu\", \"stats\": [" CUM("exits") ", {\"name\": \"hist\", \"type\": " \
	"\"log2-histogram\", \"unit\": \"seconds\", \"base\": 10, \"exponent\": -9}, " \
	"{\"name\": \"blocking\", \"type\": \"instant\", \"unit\": \"boolean\", " \
	"\"exponent\": 0}]}]"
#define CPUS2 "[{\"cpu-index\": 0, \"qom-path\": \"/c0\"}, " \
	      "{\"cpu-index\": 1, \"qom-path\": \"/c1\"}]"
#define VM_ANSWER(stats) "[{\"provider\": \"kvm\", \"stats\": [" stats "]}]"
#define VCPU(path, stats) "{\"provider\": \"kvm\", \"qom-path\": \"" path \
	"\", \"stats\": [" stats "]}"

static void test_stats_broken(void **state)
{
	static const char *const vm_broken[] = {
		"not json", "{}", "[1]", "[{\"provider\": \"kvm\"}]",
		"[{\"stats\": []}]", "[{\"provider\": \"kvm\", \"stats\": {}}]",
		VM_ANSWER("{\"name\": \"a\", \"value\": -1}"),
		VM_ANSWER("{\"name\": \"a\", \"value\": 1.5}"),
		VM_ANSWER("{\"name\": \"a\", \"value\": \"7\"}"),
		VM_ANSWER("{\"name\": \"a\", \"value\": null}"),
		VM_ANSWER("{\"name\": \"a\", \"value\": {\"x\": 1}}"),
		VM_ANSWER("{\"name\": \"a\"}"),
		VM_ANSWER("{\"value\": 1}"),
		VM_ANSWER("{\"name\": 5, \"value\": 1}"),
		VM_ANSWER("1"),
		/* above INT64_MAX: jansson cannot hold it */
		VM_ANSWER("{\"name\": \"a\", \"value\": 18446744073709551615}"),
		VM_ANSWER("{\"name\": \"a\", \"value\": 18446744073709551616}"),
		VM_ANSWER("{\"name\": \"h\", \"value\": []}"),
		VM_ANSWER("{\"name\": \"h\", \"value\": [1, -2]}"),
		VM_ANSWER("{\"name\": \"h\", \"value\": [true]}"),
		VM_ANSWER("{\"name\": \"h\", \"value\": [[1]]}"),
		VM_ANSWER("{\"name\": \"h\", \"value\": [1, 2.0]}"),
		/* malformed even when the schema lacks the stat */
		VM_ANSWER("{\"name\": \"nosuch\", \"value\": -1}"),
		VM_ANSWER("{\"name\": \"a\", \"value\": 1}, {\"name\": \"a\", \"value\": 2}"),
		VM_ANSWER("{\"name\": \"a\", \"value\": 1, \"value\": 2}"),
		"[{\"provider\": \"kvm\", \"stats\": []}, {\"provider\": \"kvm\", \"stats\": []}]",
	};
	static const char *const vcpu_broken[][2] = {
		{ "{}", CPUS2 },
		{ "[" VCPU("/c0", "") "," VCPU("/c0", "") "]", CPUS2 },
		{ "[{\"provider\": \"kvm\", \"stats\": []}]", CPUS2 },
		{ "[" VCPU("/c0", "{\"name\": \"hist\", \"value\": [1, 2, 3]}") ","
		  VCPU("/c1", "{\"name\": \"hist\", \"value\": [1, 2]}") "]", CPUS2 },
		{ "[" VCPU("/c0", "{\"name\": \"exits\", \"value\": 1}") ","
		  VCPU("/c1", "{\"name\": \"exits\", \"value\": [1, 2]}") "]", CPUS2 },
		{ "[]", "{}" },
		{ "[]", "[{\"cpu-index\": -1, \"qom-path\": \"/c0\"}]" },
		{ "[]", "[{\"cpu-index\": \"0\", \"qom-path\": \"/c0\"}]" },
		{ "[]", "[{\"cpu-index\": 0}]" },
		{ "[]", "[{\"cpu-index\": 0, \"qom-path\": \"/c0\"}, "
			"{\"cpu-index\": 0, \"qom-path\": \"/c1\"}]" },
		{ "[]", "[{\"cpu-index\": 0, \"qom-path\": \"/c0\"}, "
			"{\"cpu-index\": 1, \"qom-path\": \"/c0\"}]" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(vm_broken) / sizeof(vm_broken[0]); i++) {
		struct qmp_stats *s = (void *)1;

		if (parse(SMALL_SCHEMAS, vm_broken[i], "[]", CPUS2, &s) != -EBADMSG)
			fail_msg("vm answer %zu accepted: %s", i, vm_broken[i]);
		assert_ptr_equal(s, (void *)1);
	}
	for (size_t i = 0; i < sizeof(vcpu_broken) / sizeof(vcpu_broken[0]); i++) {
		struct qmp_stats *s = (void *)1;

		if (parse(SMALL_SCHEMAS, "[]", vcpu_broken[i][0], vcpu_broken[i][1],
			  &s) != -EBADMSG)
			fail_msg("vcpu answer %zu accepted: %s / %s", i,
				 vcpu_broken[i][0], vcpu_broken[i][1]);
		assert_ptr_equal(s, (void *)1);
	}
}

static void test_stats_lenient(void **state)
{
	struct qmp_stats *s;
	const struct kvmstats_schema *v;
	(void)state;

	/*
	 * A stat the schema has and the answer lacks stays 0 (a histogram one
	 * value); a stat the schema lacks is skipped; booleans are 0 and 1;
	 * providers other than kvm are skipped; a vCPU query-cpus-fast does not
	 * list was unplugged between the two commands and is left out.
	 */
	assert_int_equal(parse(SMALL_SCHEMAS,
		"[{\"provider\": \"other\", \"stats\": 5}, "
		"{\"provider\": \"kvm\", \"stats\": [{\"name\": \"new\", \"value\": [1, 2]}, "
		"{\"name\": \"a\", \"value\": 9223372036854775807}]}]",
		"[" VCPU("/c9", "{\"name\": \"hist\", \"value\": [1, 2, 3, 4]}") ","
		VCPU("/c1", "{\"name\": \"blocking\", \"value\": true}, "
			    "{\"name\": \"exits\", \"value\": 7}") ","
		VCPU("/c0", "{\"name\": \"blocking\", \"value\": false}, "
			    "{\"name\": \"hist\", \"value\": [5, 6]}") "]",
		CPUS2, &s), 0);
	assert_int_equal(s->vm_schema->num_values, 2);
	assert_int_equal(s->vm_values[0], INT64_MAX);
	assert_int_equal(s->vm_values[1], 0);

	v = s->vcpu_schema;
	check_layout(v);
	assert_int_equal(v->desc[1].size, 2);	/* from /c0: /c9 is gone */
	assert_int_equal(s->nvcpus, 2);
	assert_int_equal(s->vcpu_index[0], 0);
	assert_int_equal(s->vcpu_index[1], 1);
	assert_int_equal(s->vcpu_values[0][v->desc[0].index], 0);
	assert_int_equal(s->vcpu_values[0][v->desc[1].index], 6);	/* reversed */
	assert_int_equal(s->vcpu_values[0][v->desc[1].index + 1], 5);
	assert_int_equal(s->vcpu_values[0][v->desc[2].index], 0);
	assert_int_equal(s->vcpu_values[1][v->desc[0].index], 7);
	assert_int_equal(s->vcpu_values[1][v->desc[1].index], 0);
	assert_int_equal(s->vcpu_values[1][v->desc[2].index], 1);
	qmp_stats_free(s);
}

/* vCPUs come sorted by cpu-index, whatever the order of QOM paths. */
static void test_vcpu_order(void **state)
{
	struct qmp_stats *s;
	(void)state;

	assert_int_equal(parse(SMALL_SCHEMAS, NULL,
		"[" VCPU("/a", "{\"name\": \"exits\", \"value\": 20}") ","
		VCPU("/z", "{\"name\": \"exits\", \"value\": 10}") ","
		VCPU("/m", "{\"name\": \"exits\", \"value\": 30}") "]",
		"[{\"cpu-index\": 1, \"qom-path\": \"/a\"}, "
		"{\"cpu-index\": 7, \"qom-path\": \"/m\"}, "
		"{\"cpu-index\": 0, \"qom-path\": \"/z\"}]", &s), 0);
	assert_int_equal(s->nvcpus, 3);
	assert_int_equal(s->vcpu_index[0], 0);
	assert_int_equal(s->vcpu_index[1], 1);
	assert_int_equal(s->vcpu_index[2], 7);
	assert_int_equal(s->vcpu_values[0][0], 10);
	assert_int_equal(s->vcpu_values[1][0], 20);
	assert_int_equal(s->vcpu_values[2][0], 30);
	qmp_stats_free(s);
}

/* The version decides the order; one QEMU never said is as every other. */
static void test_version_order(void **state)
{
	static const struct qmp_version seen[] = {
		{ 7, 1, 0 }, { 7, 2, 22 }, { 8, 2, 0 }, { 10, 0, 2 }, { 0, 0, 0 },
	};
	static const char *const greetings[] = {
		"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, "
		"\"major\": 10}, \"package\": \"\"}, \"capabilities\": []}}",
		"{\"QMP\": {\"capabilities\": []}}",
		"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": -1, \"minor\": 0, "
		"\"major\": 10}}}}",
	};
	static const struct qmp_version want[] = { { 10, 0, 2 }, { 0, 0, 0 }, { 0, 0, 0 } };
	(void)state;

	for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
		assert_int_equal(qmp_lists_reversed(&seen[i]), 1);
	for (size_t i = 0; i < sizeof(greetings) / sizeof(greetings[0]); i++) {
		struct qmp_answers a = {
			.schemas = SMALL_SCHEMAS, .schemas_len = strlen(SMALL_SCHEMAS),
			.vcpu = "[" VCPU("/c0", "{\"name\": \"hist\", \"value\": [1, 2, 3]}") "]",
			.cpus = CPUS2, .cpus_len = strlen(CPUS2),
			.greeting = greetings[i], .greeting_len = strlen(greetings[i]),
		};
		struct qmp_stats *s;
		const struct kvmstats_desc *d;

		a.vcpu_len = strlen(a.vcpu);
		assert_int_equal(qmp_parse_answers(&a, &s), 0);
		assert_int_equal(s->qemu.major, want[i].major);
		assert_int_equal(s->qemu.minor, want[i].minor);
		assert_int_equal(s->qemu.micro, want[i].micro);
		d = &s->vcpu_schema->desc[schema_find(s->vcpu_schema, "hist")];
		assert_int_equal(s->vcpu_values[0][d->index], 3);
		assert_int_equal(s->vcpu_values[0][d->index + 2], 1);
		qmp_stats_free(s);
	}
}

/* The size of a linear histogram, and its bucket size, reach the desc. */
static void test_linear_hist(void **state)
{
	struct qmp_stats *s;
	const struct kvmstats_desc *d;
	uint64_t lo, hi;
	(void)state;

	assert_int_equal(parse(VM_SCHEMA(CUM("a") ", {\"name\": \"lin\", \"type\": "
		"\"linear-histogram\", \"unit\": \"bytes\", \"exponent\": 0, "
		"\"bucket-size\": 5}," CUM("z")),
		VM_ANSWER("{\"name\": \"z\", \"value\": 3}, {\"name\": \"lin\", "
			  "\"value\": [1, 2, 3, 4, 5, 6, 7, 8]}"), NULL, NULL, &s), 0);
	check_layout(s->vm_schema);
	d = &s->vm_schema->desc[1];
	assert_int_equal(d->type, KVM_STATS_TYPE_LINEAR_HIST);
	assert_int_equal(d->size, 8);
	assert_int_equal(d->bucket_size, 5);
	assert_int_equal(d->index, 1);
	assert_int_equal(s->vm_schema->desc[2].index, 9);
	assert_int_equal(s->vm_values[9], 3);
	/* QEMU sends the list last bucket first, linear ones too. */
	assert_int_equal(s->vm_values[1], 8);
	assert_int_equal(s->vm_values[1 + 7], 1);
	assert_int_equal(decode_bucket_bounds(d, 2, &lo, &hi), 0);
	assert_int_equal(lo, 10);
	assert_int_equal(hi, 15);
	qmp_stats_free(s);
}

/* Appends s to a growing buffer (NULL: a new one). */
static char *append(char *buf, const char *s)
{
	size_t a = buf ? strlen(buf) : 0, b = strlen(s);
	char *p = realloc(buf, a + b + 1);

	assert_non_null(p);
	memcpy(p + a, s, b + 1);
	return p;
}

/* "[1,1,...,1]" with n ones. */
static char *list_of(size_t n)
{
	char *buf = malloc(n * 2 + 3), *p = buf;

	assert_non_null(buf);
	*p++ = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '1';
	}
	*p++ = ']';
	*p = '\0';
	return buf;
}

/* Huge lists and vCPU counts are refused before they cost memory. */
static void test_stats_huge(void **state)
{
	struct qmp_stats *s;
	char *answer, *list;
	(void)state;

	/* A histogram size must fit the u16 of struct kvm_stats_desc. */
	list = list_of(65535);
	answer = append(append(NULL, "[{\"provider\": \"kvm\", \"stats\": "
			       "[{\"name\": \"h\", \"value\": "), list);
	answer = append(answer, "}]}]");
	assert_int_equal(parse(SMALL_SCHEMAS, answer, NULL, NULL, &s), 0);
	assert_int_equal(s->vm_schema->desc[1].size, 65535);
	assert_int_equal(s->vm_schema->num_values, 65536);
	qmp_stats_free(s);
	free(answer);
	free(list);

	list = list_of(65536);
	answer = append(append(NULL, "[{\"provider\": \"kvm\", \"stats\": "
			       "[{\"name\": \"h\", \"value\": "), list);
	answer = append(answer, "}]}]");
	assert_int_equal(parse(SMALL_SCHEMAS, answer, NULL, NULL, &s), -EBADMSG);
	free(answer);
	free(list);

	/*
	 * One vCPU with a 60000-bucket histogram, and 80 more vCPUs that say
	 * nothing: 81 * 60002 slots is over the 4 Mi slot bound.
	 */
	list = list_of(60000);
	answer = append(append(NULL, "[{\"provider\": \"kvm\", \"qom-path\": "
			       "\"/c0\", \"stats\": [{\"name\": \"hist\", \"value\": "), list);
	free(list);
	list = append(NULL, "[{\"cpu-index\": 0, \"qom-path\": \"/c0\"}");
	answer = append(answer, "}]}");
	for (int i = 1; i <= 80; i++) {
		char buf[128];

		snprintf(buf, sizeof(buf), ", {\"provider\": \"kvm\", \"qom-path\": "
			 "\"/c%d\", \"stats\": []}", i);
		answer = append(answer, buf);
		snprintf(buf, sizeof(buf), ", {\"cpu-index\": %d, \"qom-path\": \"/c%d\"}", i, i);
		list = append(list, buf);
	}
	answer = append(answer, "]");
	list = append(list, "]");
	assert_int_equal(parse(SMALL_SCHEMAS, NULL, answer, list, &s), -EBADMSG);
	free(answer);
	free(list);
}

/* ------------------------------------------------------ fake QMP server */

enum behaviour {
	SERVE,		/* answers as QEMU did */
	EVENTS,		/* an event before each answer, answers in two writes */
	SILENT,		/* accepts, says nothing: a monitor someone else holds */
	STALL,		/* greets, negotiates, then never answers */
	EVENT_FLOOD,	/* greets, negotiates, then only sends events */
	CLOSE_MID,	/* closes halfway through the schemas answer */
	LONG_LINE,	/* a 5 MiB line */
};

struct script {
	enum behaviour how;
	const char *raw[NCMDS];	/* a whole line instead of the fixture's */
};

struct server {
	pid_t pid;
	char dir[64];
	char path[128];
};

static const char event[] =
	"{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 1}, "
	"\"event\": \"RTC_CHANGE\", \"data\": {\"offset\": 0}}\r\n";

/* 0, or -1 when the client has gone (the server then stops). */
static int put(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static enum cmd command_of(const json_t *req)
{
	const char *exec = json_string_value(json_object_get(req, "execute"));
	const char *target = json_string_value(json_object_get(
		json_object_get(req, "arguments"), "target"));

	if (!exec)
		return CMD_CAPS;
	if (strcmp(exec, "query-stats-schemas") == 0)
		return CMD_SCHEMAS;
	if (strcmp(exec, "query-stats") == 0)
		return target && strcmp(target, "vcpu") == 0 ? CMD_VCPU : CMD_VM;
	if (strcmp(exec, "query-cpus-fast") == 0)
		return CMD_CPUS;
	return CMD_CAPS;
}

/* The line to send for c: the script's, or the captured one with id. */
static char *answer_line(const struct script *sc, enum cmd c, json_t *id)
{
	json_t *j;
	char *text, *out = NULL;

	if (sc->raw[c])
		return asprintf(&out, "%s\r\n", sc->raw[c]) < 0 ? NULL : out;
	j = json_loads(line[c], 0, NULL);
	json_object_set(j, "id", id);
	text = json_dumps(j, 0);
	if (text && asprintf(&out, "%s\r\n", text) < 0)
		out = NULL;
	free(text);
	json_decref(j);
	return out;
}

/* Answers (or not) one request. -1: stop serving. */
static int serve_one(int fd, const struct script *sc, enum cmd c, json_t *id)
{
	static char junk[64 << 10];
	char *text;
	size_t len;
	int r = 0;

	if (c != CMD_CAPS) {
		switch (sc->how) {
		case STALL:
			return 0;
		case EVENT_FLOOD:
			while (put(fd, event, strlen(event)) == 0)
				sleep_ms(10);
			return -1;
		case LONG_LINE:
			memset(junk, 'x', sizeof(junk));
			for (int i = 0; i < 80 && r == 0; i++)
				r = put(fd, junk, sizeof(junk));
			return -1;
		default:
			break;
		}
	}
	text = answer_line(sc, c, id);
	if (!text)
		return -1;
	len = strlen(text);
	if (c == CMD_SCHEMAS && sc->how == CLOSE_MID) {
		put(fd, text, len / 2);
		r = -1;
	} else if (sc->how == EVENTS) {
		r = put(fd, event, strlen(event));
		if (r == 0)
			r = put(fd, text, len / 2);
		sleep_ms(20);
		if (r == 0)
			r = put(fd, text + len / 2, len - len / 2);
		if (r == 0)
			r = put(fd, event, strlen(event));
	} else {
		r = put(fd, text, len);
	}
	free(text);
	return r;
}

/*
 * The child: listens at path, tells the parent through ready, serves one
 * client by the script. Frees what it allocated before it exits, so that
 * valgrind, which follows fork(), has nothing to say about it.
 */
static void server_main(const char *path, const struct script *sc, int ready)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, fd;
	FILE *in;
	char *req = NULL;
	size_t cap = 0;

	strcpy(sa.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 4) < 0 || write(ready, "x", 1) != 1)
		_exit(3);
	close(ready);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		_exit(3);
	if (sc->how == SILENT)
		for (;;)
			pause();
	if (put(fd, greeting, strlen(greeting) - 1) < 0 ||	/* without its LF */
	    put(fd, "\r\n", 2) < 0)
		_exit(0);
	in = fdopen(dup(fd), "r");
	while (in && getline(&req, &cap, in) > 0) {
		json_t *j = json_loads(req, 0, NULL);
		int r = j ? serve_one(fd, sc, command_of(j), json_object_get(j, "id")) : -1;

		json_decref(j);
		if (r < 0)
			break;
	}
	free(req);
	if (in)
		fclose(in);
	if (sc->how == STALL || sc->how == LONG_LINE)
		for (;;)
			pause();	/* keep the socket open: the client must time out */
	_exit(0);
}

static void server_start(struct server *srv, const struct script *sc)
{
	int sync[2];
	char b;

	strcpy(srv->dir, "/tmp/test_qmp.XXXXXX");
	assert_non_null(mkdtemp(srv->dir));
	snprintf(srv->path, sizeof(srv->path), "%s/qmp.sock", srv->dir);
	assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
	srv->pid = fork();
	assert_true(srv->pid >= 0);
	if (srv->pid == 0) {
		close(sync[0]);
		server_main(srv->path, sc, sync[1]);
	}
	close(sync[1]);
	/* The child has listen()ed: a connect now cannot be refused. */
	assert_int_equal(read(sync[0], &b, 1), 1);
	close(sync[0]);
}

static void server_stop(struct server *srv)
{
	kill(srv->pid, SIGKILL);
	waitpid(srv->pid, NULL, 0);
	unlink(srv->path);
	rmdir(srv->dir);
}

static long elapsed_ms(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

/*
 * One qmp_query_stats() against a fake server following sc: its return
 * value, the result in *ret (NULL on failure), how long it took. Proves
 * that the call left no fd behind.
 */
static int query(const struct script *sc, struct qmp_stats **ret, long *ret_ms,
		 pid_t *ret_pid)
{
	struct server srv;
	struct timespec t0;
	unsigned fds;
	int r;

	server_start(&srv, sc);
	fds = tree_count_fds();
	*ret = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = qmp_query_stats(srv.path, TIMEOUT_MS, ret);
	*ret_ms = elapsed_ms(&t0);
	assert_int_equal(tree_count_fds(), fds);
	if (ret_pid)
		*ret_pid = srv.pid;
	server_stop(&srv);
	return r;
}

static int query_err(const struct script *sc)
{
	struct qmp_stats *s;
	long ms;
	int r = query(sc, &s, &ms, NULL);

	assert_null(s);
	assert_true(ms < TIMEOUT_MS + SLACK_MS);
	return r;
}

static void test_server_serves(void **state)
{
	static const struct script serve = { SERVE, { NULL } };
	static const struct script events = { EVENTS, { NULL } };
	struct qmp_stats *s, *ref;
	pid_t pid;
	long ms;
	(void)state;

	assert_int_equal(parse(ret_text[CMD_SCHEMAS], ret_text[CMD_VM],
			       ret_text[CMD_VCPU], ret_text[CMD_CPUS], &ref), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(query(i ? &events : &serve, &s, &ms, &pid), 0);
		assert_int_equal(s->pid, pid);	/* SO_PEERCRED: who listen()ed */
		check_real(s);
		assert_int_equal(schema_equal(s->vm_schema, ref->vm_schema), 1);
		assert_int_equal(schema_equal(s->vcpu_schema, ref->vcpu_schema), 1);
		qmp_stats_free(s);
	}
	qmp_stats_free(ref);
}

static void test_server_timeouts(void **state)
{
	static const struct script stall = { STALL, { NULL } };
	static const struct script flood = { EVENT_FLOOD, { NULL } };
	static const struct script silent = { SILENT, { NULL } };
	struct qmp_stats *s;
	long ms;
	(void)state;

	/* Greeted, then nothing: the deadline, not a blocking read, ends it. */
	assert_int_equal(query(&stall, &s, &ms, NULL), -ETIMEDOUT);
	assert_true(ms >= TIMEOUT_MS - 1 && ms < TIMEOUT_MS + SLACK_MS);
	/* Events keep coming: each one must not restart the clock. */
	assert_int_equal(query(&flood, &s, &ms, NULL), -ETIMEDOUT);
	assert_true(ms >= TIMEOUT_MS - 1 && ms < TIMEOUT_MS + SLACK_MS);
	/* No greeting: QEMU serves another client first. */
	assert_int_equal(query(&silent, &s, &ms, NULL), -EBUSY);
	assert_true(ms >= TIMEOUT_MS - 1 && ms < TIMEOUT_MS + SLACK_MS);
}

static void test_server_misbehaves(void **state)
{
	static const struct script close_mid = { CLOSE_MID, { NULL } };
	static const struct script long_line = { LONG_LINE, { NULL } };
	static const struct script not_found = { SERVE, { [CMD_SCHEMAS] =
		"{\"id\": 2, \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
		"\"The command query-stats-schemas has not been found\"}}" } };
	static const struct script generic = { SERVE, { [CMD_VCPU] =
		"{\"id\": 4, \"error\": {\"class\": \"GenericError\", \"desc\": "
		"\"KVM stats: ioctl failed\"}}" } };
	static const struct script caps_refused = { SERVE, { [CMD_CAPS] =
		"{\"id\": 1, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"x\"}}" } };
	static const struct script garbage = { SERVE, { [CMD_VM] = "this is not json" } };
	static const struct script not_object = { SERVE, { [CMD_VM] = "[1, 2]" } };
	static const struct script wrong_id = { SERVE, { [CMD_VM] =
		"{\"return\": [], \"id\": 99}" } };
	static const struct script no_id = { SERVE, { [CMD_VM] = "{\"return\": []}" } };
	static const struct script neither = { SERVE, { [CMD_VM] = "{\"id\": 3}" } };
	static const struct script big = { SERVE, { [CMD_VM] =
		"{\"return\": [{\"provider\": \"kvm\", \"stats\": [{\"name\": "
		"\"pages_4k\", \"value\": 18446744073709551615}]}], \"id\": 3}" } };
	static const struct script negative = { SERVE, { [CMD_VM] =
		"{\"return\": [{\"provider\": \"kvm\", \"stats\": [{\"name\": "
		"\"pages_4k\", \"value\": -5}]}], \"id\": 3}" } };
	(void)state;

	assert_int_equal(query_err(&close_mid), -ECONNRESET);
	assert_int_equal(query_err(&long_line), -EPROTO);
	assert_int_equal(query_err(&not_found), -ENOTSUP);
	assert_int_equal(query_err(&generic), -EPROTO);
	assert_int_equal(query_err(&caps_refused), -EPROTO);
	assert_int_equal(query_err(&garbage), -EPROTO);
	assert_int_equal(query_err(&not_object), -EPROTO);
	assert_int_equal(query_err(&wrong_id), -EPROTO);
	assert_int_equal(query_err(&no_id), -EPROTO);
	assert_int_equal(query_err(&neither), -EPROTO);
	assert_int_equal(query_err(&big), -EBADMSG);
	assert_int_equal(query_err(&negative), -EBADMSG);
}

static void test_connect_errors(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/test_qmp.XXXXXX", path[128], longpath[200];
	struct qmp_stats *s = NULL;
	unsigned fds = tree_count_fds();
	int fd;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	assert_int_equal(qmp_query_stats(path, TIMEOUT_MS, &s), -ENOENT);
	/* A socket file nobody listens on: a QEMU that has exited. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(qmp_query_stats(path, TIMEOUT_MS, &s), -ECONNREFUSED);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(qmp_query_stats(longpath, TIMEOUT_MS, &s), -ENAMETOOLONG);
	assert_int_equal(qmp_query_stats(path, -1, &s), -EINVAL);
	assert_int_equal(qmp_query_stats(NULL, TIMEOUT_MS, &s), -EINVAL);
	assert_null(s);
	assert_int_equal(tree_count_fds(), fds);
	unlink(path);
	rmdir(dir);
}

/* -------------------------------------------- the exchange, without a socket */

static void test_backoff(void **state)
{
	static const unsigned want[] = { 1000, 2000, 4000, 8000, 16000, 32000,
					 60000, 60000 };
	unsigned ms = 0;
	(void)state;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ms = qmp_backoff_next(ms);
		assert_int_equal(ms, want[i]);
	}
	assert_int_equal(qmp_backoff_next(59999), 60000);
	assert_int_equal(qmp_backoff_next(1), 1000);
}

/* The answer to command c with our request id, as QEMU ends it (CR LF). */
static char *answer_with_id(enum cmd c, int id)
{
	char *out;

	assert_true(asprintf(&out, "{\"return\": %s, \"id\": %d}\r\n", ret_text[c], id) > 0);
	return out;
}

static void feed_ok(struct qmp_exchange *x, const char *text)
{
	assert_int_equal(qmp_exchange_feed(x, text, strlen(text)), 0);
}

static void feed_answer(struct qmp_exchange *x, enum cmd c, int id)
{
	char *a = answer_with_id(c, id);

	feed_ok(x, a);
	free(a);
}

static bool output_is(struct qmp_exchange *x, const char *want)
{
	size_t len;
	const char *out = qmp_exchange_output(x, &len);

	return len == strlen(want) && memcmp(out, want, len) == 0;
}

#define CAPS_LINE "{\"execute\":\"qmp_capabilities\",\"id\":1}\n"
#define QUERY_LINES \
	"{\"execute\":\"query-stats-schemas\",\"id\":2}\n" \
	"{\"execute\":\"query-stats\",\"arguments\":{\"target\":\"vm\"},\"id\":3}\n" \
	"{\"execute\":\"query-stats\",\"arguments\":{\"target\":\"vcpu\"},\"id\":4}\n" \
	"{\"execute\":\"query-cpus-fast\",\"id\":5}\n"

/* Each state in turn, each request only once its turn came. */
static void test_exchange_steps(void **state)
{
	struct qmp_exchange *x;
	struct qmp_stats *s, *ref;
	size_t half = strlen(greeting) / 2, len;
	(void)state;

	assert_int_equal(qmp_exchange_new(false, UINT64_MAX, &x), 0);
	assert_int_equal(qmp_exchange_state(x), QX_GREETING);
	assert_true(output_is(x, ""));
	assert_int_equal(qmp_exchange_result(x, &s), -EINPROGRESS);
	/* A greeting in two pieces: nothing happens on the first. */
	assert_int_equal(qmp_exchange_feed(x, greeting, half), 0);
	assert_int_equal(qmp_exchange_state(x), QX_GREETING);
	feed_ok(x, greeting + half);
	assert_int_equal(qmp_exchange_state(x), QX_CAPS);
	assert_true(output_is(x, CAPS_LINE));
	qmp_exchange_sent(x, 5);
	qmp_exchange_output(x, &len);
	assert_int_equal(len, strlen(CAPS_LINE) - 5);
	qmp_exchange_sent(x, len);
	feed_ok(x, event);
	assert_int_equal(qmp_exchange_state(x), QX_CAPS);
	feed_answer(x, CMD_CAPS, 1);
	assert_int_equal(qmp_exchange_state(x), QX_ANSWERS);
	assert_true(output_is(x, QUERY_LINES));
	qmp_exchange_sent(x, strlen(QUERY_LINES));
	/* Answers are taken by id, in any order, events between them. */
	feed_answer(x, CMD_CPUS, 5);
	feed_ok(x, event);
	feed_answer(x, CMD_VM, 3);
	feed_answer(x, CMD_SCHEMAS, 2);
	assert_int_equal(qmp_exchange_state(x), QX_ANSWERS);
	assert_false(qmp_exchange_expire(x, 0));
	feed_answer(x, CMD_VCPU, 4);
	assert_int_equal(qmp_exchange_state(x), QX_DONE);
	feed_ok(x, event);	/* after the end: not ours */
	assert_false(qmp_exchange_expire(x, UINT64_MAX));
	assert_int_equal(qmp_exchange_result(x, &s), 0);
	assert_int_equal(s->pid, 0);
	assert_int_equal(parse(ret_text[CMD_SCHEMAS], ret_text[CMD_VM], ret_text[CMD_VCPU],
			       ret_text[CMD_CPUS], &ref), 0);
	assert_int_equal(s->nvcpus, ref->nvcpus);
	assert_true(schema_equal(s->vcpu_schema, ref->vcpu_schema));
	assert_memory_equal(s->vm_values, ref->vm_values,
			    s->vm_schema->num_values * sizeof(uint64_t));
	qmp_stats_free(ref);
	qmp_stats_free(s);
	qmp_exchange_free(x);
}

/* A probe sends everything at once and is over after one look. */
static void test_exchange_pipelined(void **state)
{
	struct qmp_exchange *x;
	struct qmp_stats *s;
	char *all = strdup(greeting);
	(void)state;

	assert_int_equal(qmp_exchange_new(true, UINT64_MAX, &x), 0);
	assert_true(output_is(x, CAPS_LINE QUERY_LINES));
	for (enum cmd c = CMD_CAPS; c < NCMDS; c++) {
		char *a = answer_with_id(c, (int)c + 1);

		all = append(all, a);
		free(a);
	}
	feed_ok(x, all);
	assert_int_equal(qmp_exchange_state(x), QX_DONE);
	assert_int_equal(qmp_exchange_result(x, &s), 0);
	assert_int_equal(s->nvcpus, 2);
	qmp_stats_free(s);
	qmp_exchange_free(x);
	free(all);
}

/* Feeds a greeting, then text; returns the exchange's error. */
static int exchange_fails(bool caps_done, const char *text)
{
	struct qmp_exchange *x;
	int r;

	assert_int_equal(qmp_exchange_new(true, UINT64_MAX, &x), 0);
	feed_ok(x, greeting);
	if (caps_done)
		feed_answer(x, CMD_CAPS, 1);
	r = qmp_exchange_feed(x, text, strlen(text));
	assert_int_equal(qmp_exchange_error(x), r);
	if (r < 0) {
		assert_int_equal(qmp_exchange_state(x), QX_FAILED);
		/* Once failed, it stays failed. */
		assert_int_equal(qmp_exchange_feed(x, "\n", 1), r);
	}
	qmp_exchange_free(x);
	return r;
}

static void test_exchange_refuses(void **state)
{
	struct qmp_exchange *x;
	char *big;
	(void)state;

	/* Not a greeting first. */
	assert_int_equal(qmp_exchange_new(false, UINT64_MAX, &x), 0);
	assert_int_equal(qmp_exchange_feed(x, "{\"return\": {}, \"id\": 1}\n", 24), -EPROTO);
	qmp_exchange_free(x);
	/* A query's answer before the capabilities' one. */
	assert_int_equal(exchange_fails(false, "{\"return\": [], \"id\": 2}\n"), -EPROTO);
	/* An id we never sent, one answered twice, no id. */
	assert_int_equal(exchange_fails(true, "{\"return\": [], \"id\": 6}\n"), -EPROTO);
	assert_int_equal(exchange_fails(true, "{\"return\": [], \"id\": 3}\n"
					      "{\"return\": [], \"id\": 3}\n"), -EPROTO);
	assert_int_equal(exchange_fails(true, "{\"return\": []}\n"), -EPROTO);
	/* QEMU < 7.1; a capabilities refusal is not that. */
	assert_int_equal(exchange_fails(true, "{\"error\": {\"class\": \"CommandNotFound\", "
					      "\"desc\": \"x\"}, \"id\": 3}\n"), -ENOTSUP);
	assert_int_equal(exchange_fails(false, "{\"error\": {\"class\": \"CommandNotFound\", "
					       "\"desc\": \"x\"}, \"id\": 1}\n"), -EPROTO);
	assert_int_equal(exchange_fails(true, "[1]\n"), -EPROTO);
	/* A line that never ends. */
	big = calloc(1, (5u << 20) + 1);
	assert_non_null(big);
	memset(big, ' ', 5u << 20);
	assert_int_equal(exchange_fails(true, big), -EPROTO);
	free(big);
}

static void test_exchange_expires(void **state)
{
	struct qmp_exchange *x;
	(void)state;

	/* No greeting by the deadline: the monitor is taken (or QEMU stuck). */
	assert_int_equal(qmp_exchange_new(false, 1000, &x), 0);
	assert_false(qmp_exchange_expire(x, 999));
	assert_true(qmp_exchange_expire(x, 1000));
	assert_int_equal(qmp_exchange_error(x), -EBUSY);
	assert_false(qmp_exchange_expire(x, 2000));
	qmp_exchange_free(x);
	/* Greeted, then too slow. */
	assert_int_equal(qmp_exchange_new(false, 1000, &x), 0);
	feed_ok(x, greeting);
	assert_true(qmp_exchange_expire(x, 5000));
	assert_int_equal(qmp_exchange_error(x), -ETIMEDOUT);
	qmp_exchange_free(x);
}

/*
 * Many stuck peers and a healthy one, driven together: the healthy one's
 * answer is in, and the whole run costs one deadline, not one per peer.
 */
#define NSTUCK 6
static void test_exchanges_concurrent(void **state)
{
	static const struct script serve = { SERVE, { NULL } };
	static const struct script silent = { SILENT, { NULL } };
	static const struct script stall = { STALL, { NULL } };
	struct server srv[NSTUCK + 1];
	struct qmp_exchange *xs[NSTUCK + 2] = { NULL };
	bool wait[NSTUCK + 2];
	struct qmp_stats *s;
	struct timespec t0;
	unsigned fds;
	uint64_t deadline;
	long ms;
	(void)state;

	server_start(&srv[0], &serve);
	for (int i = 1; i <= NSTUCK; i++)
		server_start(&srv[i], i % 2 ? &silent : &stall);
	fds = tree_count_fds();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	deadline = qmp_now_ns() + TIMEOUT_MS * 1000000ull;
	for (int i = 0; i <= NSTUCK; i++) {
		assert_int_equal(qmp_exchange_start(srv[i].path, false, deadline, &xs[i]), 0);
		wait[i] = true;
	}
	/* A probe of a stuck peer, not waited for, deadline far away. */
	assert_int_equal(qmp_exchange_start(srv[1].path, true, UINT64_MAX, &xs[NSTUCK + 1]), 0);
	wait[NSTUCK + 1] = false;
	assert_int_equal(qmp_exchanges_run(xs, wait, NSTUCK + 2, NULL), 0);
	ms = elapsed_ms(&t0);
	assert_true(ms >= TIMEOUT_MS - 1 && ms < TIMEOUT_MS + SLACK_MS);
	assert_int_equal(qmp_exchange_result(xs[0], &s), 0);
	assert_int_equal(s->pid, srv[0].pid);
	assert_int_equal(qmp_exchange_pid(xs[1]), srv[1].pid);
	qmp_stats_free(s);
	for (int i = 1; i <= NSTUCK; i++)
		assert_int_equal(qmp_exchange_error(xs[i]), i % 2 ? -EBUSY : -ETIMEDOUT);
	/* The probe is left in flight, not judged before its deadline. */
	assert_int_equal(qmp_exchange_state(xs[NSTUCK + 1]), QX_GREETING);
	/* Nothing waited for: one look, no wait. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(qmp_exchanges_run(&xs[NSTUCK + 1], &wait[NSTUCK + 1], 1, NULL), 0);
	assert_true(elapsed_ms(&t0) < SLACK_MS);
	for (int i = 0; i < NSTUCK + 2; i++)
		qmp_exchange_free(xs[i]);
	assert_int_equal(tree_count_fds(), fds);
	for (int i = 0; i <= NSTUCK; i++)
		server_stop(&srv[i]);
}

static volatile sig_atomic_t test_stop;

static void set_test_stop(int sig)
{
	(void)sig;
	test_stop = 1;
}

/*
 * A signal that asks the caller to end (SIGTERM in the Netdata plugin)
 * ends the wait at once, not at the deadline of the slowest peer: a silent
 * one and a stalling one are left in flight, neither judged nor closed.
 */
static void test_exchanges_stop(void **state)
{
	static const struct script silent = { SILENT, { NULL } };
	static const struct script stall = { STALL, { NULL } };
	struct sigaction sa = { .sa_handler = set_test_stop }, old;
	struct itimerval in_100ms = { .it_value = { .tv_usec = 100000 } };
	struct server srv[2];
	struct qmp_exchange *xs[2];
	bool wait[2] = { true, true };
	uint64_t deadline = qmp_now_ns() + 10ull * 1000000000u;
	struct timespec t0;
	long ms;
	(void)state;

	server_start(&srv[0], &silent);
	server_start(&srv[1], &stall);
	for (int i = 0; i < 2; i++)
		assert_int_equal(qmp_exchange_start(srv[i].path, false, deadline, &xs[i]), 0);
	/* Set before the run: nothing is waited for. */
	test_stop = 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(qmp_exchanges_run(xs, wait, 2, &test_stop), 0);
	assert_true(elapsed_ms(&t0) < SLACK_MS);
	/* Set by a signal while poll() waits (no SA_RESTART, as the plugin). */
	test_stop = 0;
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &in_100ms, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(qmp_exchanges_run(xs, wait, 2, &test_stop), 0);
	ms = elapsed_ms(&t0);
	sigaction(SIGALRM, &old, NULL);
	assert_true(test_stop);
	assert_true(ms >= 99 && ms < 100 + SLACK_MS);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(qmp_exchange_error(xs[i]), 0);
		assert_true(qmp_exchange_fd(xs[i]) >= 0);
		qmp_exchange_free(xs[i]);
		server_stop(&srv[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schemas_real),
		cmocka_unit_test(test_answers_real),
		cmocka_unit_test(test_answers_absent),
		cmocka_unit_test(test_hist_kernel_order),
		cmocka_unit_test(test_schema_unknown_kept),
		cmocka_unit_test(test_schema_skips_others),
		cmocka_unit_test(test_schema_broken),
		cmocka_unit_test(test_hostile_names),
		cmocka_unit_test(test_schema_too_many),
		cmocka_unit_test(test_stats_broken),
		cmocka_unit_test(test_stats_lenient),
		cmocka_unit_test(test_vcpu_order),
		cmocka_unit_test(test_version_order),
		cmocka_unit_test(test_linear_hist),
		cmocka_unit_test(test_stats_huge),
		cmocka_unit_test(test_server_serves),
		cmocka_unit_test(test_server_timeouts),
		cmocka_unit_test(test_server_misbehaves),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_exchange_steps),
		cmocka_unit_test(test_exchange_pipelined),
		cmocka_unit_test(test_exchange_refuses),
		cmocka_unit_test(test_exchange_expires),
		cmocka_unit_test(test_exchanges_concurrent),
		cmocka_unit_test(test_exchanges_stop),
	};

	return cmocka_run_group_tests(tests, fixtures_load, fixtures_free);
}
