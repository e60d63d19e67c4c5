/* SPDX-License-Identifier: MIT */
/*
 * fuzz_decode.c: libFuzzer target for common/decode.c, the KVM binary stats
 * decoder (struct kvm_stats_header / kvm_stats_desc in <linux/kvm.h>).
 *
 * The input is a whole stats file: header, id, descriptors, data block. It
 * goes through what statsfd.c and the front ends do with a real one:
 * decode_header(), decode_meta_len(), decode_id(), decode_schema(); then
 * every descriptor is walked (decode_scale(), decode_bucket_bounds() for
 * each bucket of a histogram), and when the input holds the whole data
 * block at data_offset, each stat's value slots are read from it.
 *
 * Besides sanitizer reports it aborts on a broken promise of kvmstats.h or
 * of KVM_STATS_FACTS.md: a stat's slots outside the data block, an accepted
 * descriptor that breaks the selftest rules, a result that depends on bytes
 * past decode_meta_len().
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "decode.h"
#include "fuzz_check.h"

/* Keeps the value reads and the scaled sums from being optimized away. */
static volatile double sink;

static void walk_desc(const struct kvmstats_schema *s,
		      const struct kvmstats_desc *d, uint32_t name_size)
{
	size_t n = strlen(d->name);
	double scale = decode_scale(d);
	uint64_t lo, hi;

	FUZZ_CHECK(n > 0 && n < name_size);
	FUZZ_CHECK(d->size > 0);
	FUZZ_CHECK((uint64_t)d->index + d->size <= s->num_values);
	FUZZ_CHECK(d->type == (d->flags & KVM_STATS_TYPE_MASK));
	FUZZ_CHECK(d->unit == (d->flags & KVM_STATS_UNIT_MASK));
	FUZZ_CHECK(d->base == (d->flags & KVM_STATS_BASE_MASK));
	if (d->known)
		FUZZ_CHECK(decode_check_desc(d) == 0);
	FUZZ_CHECK(decode_type_name(d->type) != NULL);
	FUZZ_CHECK(decode_unit_name(d->unit) != NULL);

	/* What kvmstat and the Netdata plugin do for the bucket labels. */
	for (uint32_t i = 0; i < d->size; i++) {
		int r = decode_bucket_bounds(d, i, &lo, &hi);

		if (d->type == KVM_STATS_TYPE_LINEAR_HIST ||
		    (d->type == KVM_STATS_TYPE_LOG_HIST && i <= 64)) {
			FUZZ_CHECK(r == 0);
		} else {
			FUZZ_CHECK(r == -EINVAL);
			continue;
		}
		if (i == d->size - 1u)
			FUZZ_CHECK(hi == UINT64_MAX);
		if (d->known)
			FUZZ_CHECK(lo < hi);
		sink = (double)(hi == UINT64_MAX ? lo : hi) * scale;
	}
	FUZZ_CHECK(decode_bucket_bounds(d, d->size, &lo, &hi) == -EINVAL);
}

/* The values of every stat, from the data block when the input has it. */
static void read_values(const struct kvmstats_schema *s, const uint8_t *data,
			size_t size)
{
	const uint8_t *block = data + s->data_offset;
	double sum = 0;

	if ((uint64_t)s->data_offset + s->data_len > size)
		return;
	for (uint32_t k = 0; k < s->num_desc; k++) {
		const struct kvmstats_desc *d = &s->desc[k];
		double scale = decode_scale(d);

		for (uint32_t j = 0; j < d->size; j++) {
			uint64_t slot = (uint64_t)d->index + j, v;

			FUZZ_CHECK(slot < s->num_values);
			memcpy(&v, block + slot * sizeof(v), sizeof(v));
			sum += (double)v * scale;
		}
	}
	sink = sum;
}

static void check_schema(struct kvmstats_schema *s,
			 const struct kvm_stats_header *h, const uint8_t *data,
			 size_t size)
{
	struct kvmstats_schema *ref;

	FUZZ_CHECK(s->refs == 1);
	FUZZ_CHECK(s->num_desc == h->num_desc);
	FUZZ_CHECK(s->data_offset == h->data_offset);
	FUZZ_CHECK(s->data_len % sizeof(uint64_t) == 0);
	FUZZ_CHECK(s->num_values == s->data_len / sizeof(uint64_t));
	FUZZ_CHECK(s->num_values >= s->num_desc);
	for (uint32_t k = 0; k < s->num_desc; k++) {
		int found;

		walk_desc(s, &s->desc[k], h->name_size);
		/* Names may repeat: the first one of that name is found. */
		found = schema_find(s, s->desc[k].name);
		FUZZ_CHECK(found >= 0 && (uint32_t)found <= k);
		FUZZ_CHECK(strcmp(s->desc[found].name, s->desc[k].name) == 0);
	}
	FUZZ_CHECK(schema_equal(s, s) == 1);
	read_values(s, data, size);

	ref = schema_ref(s);
	FUZZ_CHECK(ref == s && s->refs == 2);
	schema_unref(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmstats_schema *s = NULL, *again = NULL;
	struct kvm_stats_header h;
	bool have_header, have_meta = false;
	size_t meta_len = 0;
	char id[64], tiny[3];	/* "kvm" needs 4 */
	int r, rid;

	have_header = decode_header(data, size, &h) == 0;
	if (have_header)
		have_meta = decode_meta_len(&h, &meta_len) == 0;

	/* statsfd.c's id buffer, and one too small for any id. */
	rid = decode_id(data, size, id, sizeof(id));
	if (rid == 0)
		FUZZ_CHECK(strncmp(id, "kvm", 3) == 0 && strlen(id) < sizeof(id));
	r = decode_id(data, size, tiny, sizeof(tiny));
	FUZZ_CHECK(r < 0);
	if (!have_header)
		FUZZ_CHECK(rid == -EBADMSG && r == -EBADMSG);

	r = decode_schema(data, size, &s);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EOVERFLOW || r == -E2BIG ||
			   r == -ENOMEM);
		return 0;
	}
	FUZZ_CHECK(have_header && have_meta && meta_len <= size);
	FUZZ_CHECK(rid == 0 || rid == -ENOBUFS);
	check_schema(s, &h, data, size);

	/*
	 * decode_schema() needs only the first decode_meta_len() bytes, which
	 * is what statsfd_open() reads: the same bytes must give the same
	 * schema. A heap copy of exactly that length catches a read past it.
	 */
	{
		char *meta = fuzz_copy(data, meta_len);

		r = decode_schema(meta, meta_len, &again);
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(schema_equal(s, again) == 1);
		schema_unref(again);
		free(meta);
	}
	schema_unref(s);
	return 0;
}
