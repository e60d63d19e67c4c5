/* SPDX-License-Identifier: MIT */
/*
 * fuzz_qmp.c: libFuzzer target for common/qmp_parse.c, the parser of a QEMU
 * (>= 7.1) QMP monitor's answers (qapi/stats.json), through the pure halves
 * kvmstats.h exports for this: qmp_parse_schemas() and qmp_parse_answers().
 *
 * Input: up to five JSON texts separated by NUL bytes, the "return" of
 *   query-stats-schemas \0 query-stats vm \0 query-stats vcpu \0
 *   query-cpus-fast \0 and the greeting (its version orders the lists)
 * (the fifth part runs to the end). A part that is missing is passed as
 * NULL, which qmp_parse_answers() takes as an empty list. Each part is
 * given in a heap copy of its exact length, so ASan sees a read past it.
 * qmp_parse_schemas() gets the whole input and the first part.
 *
 * Besides sanitizer reports it aborts on a broken promise of kvmstats.h:
 * value slots outside num_values, vCPUs not sorted by cpu-index, accepted
 * descriptors that break decode_check_desc(), or answers accepted whose
 * schemas qmp_parse_schemas() refuses.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "qmp.h"
#include "fuzz_check.h"

#define NPARTS 5

static volatile double sink;

static void walk_schema(const struct kvmstats_schema *s, bool one_value_each)
{
	uint32_t next = 0;

	FUZZ_CHECK(s->refs == 1 && s->num_desc > 0);
	FUZZ_CHECK(s->data_len == s->num_values * sizeof(uint64_t));
	for (uint32_t k = 0; k < s->num_desc; k++) {
		const struct kvmstats_desc *d = &s->desc[k];
		uint64_t lo, hi;

		FUZZ_CHECK(d->name && d->name[0] != '\0');
		FUZZ_CHECK(d->size > 0);
		/* qmp_parse.c lays the stats out in schema order. */
		FUZZ_CHECK(d->index == next);
		next += d->size;
		if (one_value_each)
			FUZZ_CHECK(d->size == 1);
		FUZZ_CHECK(d->flags == (d->type | d->unit | d->base));
		if (d->known)
			FUZZ_CHECK(decode_check_desc(d) == 0);
		FUZZ_CHECK(schema_find(s, d->name) == (int)k);	/* unique */
		for (uint32_t i = 0; i < d->size; i++)
			if (decode_bucket_bounds(d, i, &lo, &hi) == 0)
				sink = (double)lo * decode_scale(d);
	}
	FUZZ_CHECK(next == s->num_values);
	FUZZ_CHECK(schema_equal(s, s) == 1);
}

/* The values of every stat, as a front end reads a sample. */
static void read_values(const struct kvmstats_schema *s, const uint64_t *values)
{
	double sum = 0;

	FUZZ_CHECK(values != NULL);
	for (uint32_t k = 0; k < s->num_desc; k++) {
		const struct kvmstats_desc *d = &s->desc[k];

		for (uint32_t j = 0; j < d->size; j++)
			sum += (double)values[d->index + j] * decode_scale(d);
	}
	sink = sum;
}

/* Same stats in the same order; sizes come from the answers. */
static void same_names(const struct kvmstats_schema *a,
		       const struct kvmstats_schema *b)
{
	FUZZ_CHECK((a == NULL) == (b == NULL));
	if (!a)
		return;
	FUZZ_CHECK(a->num_desc == b->num_desc);
	for (uint32_t k = 0; k < a->num_desc; k++) {
		FUZZ_CHECK(strcmp(a->desc[k].name, b->desc[k].name) == 0);
		FUZZ_CHECK(a->desc[k].flags == b->desc[k].flags);
	}
}

static void check_stats(const struct qmp_stats *st)
{
	FUZZ_CHECK(st->pid == 0);
	if (st->vm_schema) {
		walk_schema(st->vm_schema, false);
		read_values(st->vm_schema, st->vm_values);
	}
	if (!st->vcpu_schema) {
		FUZZ_CHECK(st->nvcpus == 0);
		return;
	}
	walk_schema(st->vcpu_schema, false);
	for (size_t i = 0; i < st->nvcpus; i++) {
		FUZZ_CHECK(st->vcpu_index[i] >= 0);
		if (i > 0)	/* sorted by cpu-index, each once */
			FUZZ_CHECK(st->vcpu_index[i - 1] < st->vcpu_index[i]);
		read_values(st->vcpu_schema, st->vcpu_values[i]);
	}
}

/* qmp_parse_schemas() on one text: the schemas, or NULLs and r < 0. */
static int parse_schemas(const uint8_t *data, size_t len,
			 struct kvmstats_schema **vm, struct kvmstats_schema **vcpu)
{
	char *copy = fuzz_copy(data, len);
	int r;

	*vm = *vcpu = NULL;
	r = qmp_parse_schemas(copy, len, vm, vcpu);
	free(copy);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
		FUZZ_CHECK(*vm == NULL && *vcpu == NULL);
		return r;
	}
	if (*vm)
		walk_schema(*vm, true);
	if (*vcpu)
		walk_schema(*vcpu, true);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmstats_schema *vm, *vcpu;
	struct qmp_stats *st = NULL;
	struct qmp_answers a = { 0 };
	const uint8_t *p = data, *end = data + size;
	char *text[NPARTS] = { NULL };
	size_t len[NPARTS] = { 0 };
	int r, rs;

	/* The whole input as one answer (NUL bytes included). */
	r = parse_schemas(data, size, &vm, &vcpu);
	if (r == 0) {
		schema_unref(vm);
		schema_unref(vcpu);
	}

	for (size_t i = 0; i < NPARTS && p <= end; i++) {
		const uint8_t *nul = i < NPARTS - 1 ?
				     memchr(p, '\0', (size_t)(end - p)) : NULL;
		const uint8_t *stop = nul ? nul : end;

		len[i] = (size_t)(stop - p);
		text[i] = fuzz_copy(p, len[i]);
		if (!nul)
			break;
		p = nul + 1;
	}
	a = (struct qmp_answers){
		.schemas = text[0], .schemas_len = len[0],
		.vm = text[1], .vm_len = len[1],
		.vcpu = text[2], .vcpu_len = len[2],
		.cpus = text[3], .cpus_len = len[3],
		.greeting = text[4], .greeting_len = len[4],
	};

	rs = parse_schemas((const uint8_t *)text[0], len[0], &vm, &vcpu);
	r = qmp_parse_answers(&a, &st);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
	} else {
		check_stats(st);
		/* The answers were accepted, so their schemas are good alone. */
		FUZZ_CHECK(rs == 0);
		same_names(vm, st->vm_schema);
		same_names(vcpu, st->vcpu_schema);
		qmp_stats_free(st);
	}
	if (rs == 0) {
		schema_unref(vm);
		schema_unref(vcpu);
	}
	for (size_t i = 0; i < NPARTS; i++)
		free(text[i]);
	return 0;
}
