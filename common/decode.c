/* SPDX-License-Identifier: MIT */
/*
 * decode.c: bytes of a KVM binary stats file -> schema.
 *
 * Layout (struct kvm_stats_header and struct kvm_stats_desc in
 * <linux/kvm.h>, Linux >= 5.14): a header, an id string, num_desc
 * descriptors and a block of u64 values. The invariants enforced here are
 * the ones tools/testing/selftests/kvm/kvm_binary_stats_test.c checks.
 *
 * Pure: no syscalls, no logging, no globals. The input may come from a
 * fuzzer rather than the kernel, so every field is copied out with memcpy()
 * only after its bounds are checked, and every size computation is checked
 * for overflow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

/*
 * Bounds no kernel comes near (KVM_STATS_NAME_SIZE is 48 and a vCPU has
 * about 50 stats) but that keep a hostile header from making us allocate
 * gigabytes.
 */
#define DECODE_MAX_NAME_SIZE 4096u
#define DECODE_MAX_META_LEN (16u << 20)

/* struct kvm_stats_desc ends in a flexible name[]: its sizeof is the fixed part. */
#define DESC_FIXED_SIZE sizeof(struct kvm_stats_desc)

int decode_header(const void *buf, size_t len, struct kvm_stats_header *ret_hdr)
{
	struct kvm_stats_header h;

	if (!buf || len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (h.name_size == 0 || h.num_desc == 0)
		return -EBADMSG;
	if (h.id_offset < sizeof(h) || h.desc_offset < sizeof(h) ||
	    h.data_offset < sizeof(h))
		return -EBADMSG;
	*ret_hdr = h;
	return 0;
}

/*
 * The descriptor stride is the fixed part plus name_size, not sizeof()
 * alone: each descriptor carries its name inline.
 */
static int desc_block_len(const struct kvm_stats_header *hdr,
			  size_t *ret_stride, size_t *ret_len)
{
	size_t stride, len;

	if (hdr->name_size > DECODE_MAX_NAME_SIZE)
		return -E2BIG;
	stride = DESC_FIXED_SIZE + hdr->name_size;
	if (__builtin_mul_overflow((size_t)hdr->num_desc, stride, &len))
		return -EOVERFLOW;
	*ret_stride = stride;
	*ret_len = len;
	return 0;
}

int decode_meta_len(const struct kvm_stats_header *hdr, size_t *ret_len)
{
	size_t stride, desc_len, desc_end, id_end;
	int r;

	r = desc_block_len(hdr, &stride, &desc_len);
	if (r < 0)
		return r;
	if (__builtin_add_overflow((size_t)hdr->desc_offset, desc_len, &desc_end) ||
	    __builtin_add_overflow((size_t)hdr->id_offset, (size_t)hdr->name_size, &id_end))
		return -EOVERFLOW;
	if (desc_end > DECODE_MAX_META_LEN || id_end > DECODE_MAX_META_LEN)
		return -E2BIG;
	*ret_len = desc_end > id_end ? desc_end : id_end;
	return 0;
}

/* The id string: inside buf, NUL-terminated within name_size, "kvm..." */
static int check_id(const uint8_t *buf, size_t len,
		    const struct kvm_stats_header *h, size_t *ret_idlen)
{
	const char *id;
	size_t n;

	if ((size_t)h->id_offset + h->name_size > len)
		return -EBADMSG;
	id = (const char *)buf + h->id_offset;
	n = strnlen(id, h->name_size);
	if (n == h->name_size || strncmp(id, "kvm", 3) != 0)
		return -EBADMSG;
	*ret_idlen = n;
	return 0;
}

int decode_id(const void *buf, size_t len, char *ret_id, size_t size)
{
	struct kvm_stats_header h;
	size_t n;
	int r;

	r = decode_header(buf, len, &h);
	if (r < 0)
		return r;
	r = check_id(buf, len, &h, &n);
	if (r < 0)
		return r;
	if (n >= size)
		return -ENOBUFS;
	memcpy(ret_id, (const char *)buf + h.id_offset, n + 1);
	return 0;
}

static bool flags_known(uint32_t type, uint32_t unit, uint32_t base)
{
	return type <= KVM_STATS_TYPE_MAX && unit <= KVM_STATS_UNIT_MAX &&
	       base <= KVM_STATS_BASE_MAX;
}

/* The selftest's per-descriptor rules, for types and units we know. */
int decode_check_desc(const struct kvmstats_desc *d)
{
	switch (d->unit) {
	case KVM_STATS_UNIT_NONE:
	case KVM_STATS_UNIT_BYTES:
	case KVM_STATS_UNIT_CYCLES:
		if (d->exponent < 0)
			return -EBADMSG;
		break;
	case KVM_STATS_UNIT_SECONDS:
		if (d->exponent > 0)
			return -EBADMSG;
		break;
	case KVM_STATS_UNIT_BOOLEAN:
		if (d->exponent != 0)
			return -EBADMSG;
		break;
	}
	if (d->type == KVM_STATS_TYPE_LINEAR_HIST)
		return d->bucket_size != 0 ? 0 : -EBADMSG;
	return d->bucket_size == 0 ? 0 : -EBADMSG;
}

/*
 * Fills d from the descriptor at p (stride bytes available) and returns the
 * end of its values in the data block, in bytes.
 */
static int parse_desc(const uint8_t *p, uint32_t name_size,
		      struct kvmstats_desc *d, size_t *ret_name_len,
		      uint64_t *ret_end)
{
	struct kvm_stats_desc raw;
	const char *name = (const char *)p + DESC_FIXED_SIZE;
	size_t n;
	int r;

	memcpy(&raw, p, DESC_FIXED_SIZE);
	n = strnlen(name, name_size);
	if (n == 0 || n == name_size)
		return -EBADMSG;

	*d = (struct kvmstats_desc){
		.flags = raw.flags,
		.type = raw.flags & KVM_STATS_TYPE_MASK,
		.unit = raw.flags & KVM_STATS_UNIT_MASK,
		.base = raw.flags & KVM_STATS_BASE_MASK,
		.exponent = raw.exponent,
		.size = raw.size,
		.index = raw.offset / sizeof(uint64_t),
		.bucket_size = raw.bucket_size,
	};
	/*
	 * A type, unit or base newer than this build is not an error: it is
	 * what a newer kernel sends. The stat is kept raw and the others are
	 * decoded as usual.
	 */
	d->known = flags_known(d->type, d->unit, d->base);
	if (d->known) {
		r = decode_check_desc(d);
		if (r < 0)
			return r;
	}
	/* The data block is an array of u64: values start on a slot. */
	if (raw.size == 0 || raw.offset % sizeof(uint64_t) != 0)
		return -EBADMSG;
	*ret_name_len = n;
	*ret_end = (uint64_t)raw.offset + (uint64_t)raw.size * sizeof(uint64_t);
	return 0;
}

int decode_name_valid(const char *name)
{
	size_t n = 0;

	if (!name)
		return 0;
	for (const char *p = name; *p; p++, n++) {
		char c = *p;

		if (n == DECODE_NAME_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (n > 0 && c >= '0' && c <= '9')))
			return 0;
	}
	return n > 0;
}

void decode_name_refuse(struct kvmstats_refused *r, const char *name)
{
	if (r->count++ == 0)
		snprintf(r->first, sizeof(r->first), "%s", name ? name : "");
}

/* Whether [a, a + alen) and [b, b + blen) are disjoint. */
static bool disjoint(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a + alen <= b || b + blen <= a;
}

int decode_schema(const void *buf, size_t len,
		  struct kvmstats_schema **ret_schema)
{
	const uint8_t *bytes = buf;
	struct kvm_stats_header h;
	struct kvmstats_schema *s;
	size_t stride, desc_len, meta_len, idlen, names_len = 0;
	uint64_t data_len = 0;
	char *names;
	int r;

	r = decode_header(buf, len, &h);
	if (r < 0)
		return r;
	r = decode_meta_len(&h, &meta_len);
	if (r < 0)
		return r;
	if (len < meta_len)
		return -EBADMSG;
	r = check_id(bytes, len, &h, &idlen);
	if (r < 0)
		return r;
	r = desc_block_len(&h, &stride, &desc_len);
	if (r < 0)
		return r;
	if (h.desc_offset <= h.data_offset &&
	    (uint64_t)h.desc_offset + desc_len > h.data_offset)
		return -EBADMSG;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->data_offset = h.data_offset;
	s->desc = calloc(h.num_desc, sizeof(*s->desc));
	if (!s->desc) {
		r = -ENOMEM;
		goto fail;
	}

	/*
	 * Every descriptor is checked; one whose name is no C identifier
	 * (the kernel's never is) is then left out and counted, not the fd.
	 * Until the names are copied, desc[].name points into buf.
	 */
	for (uint32_t i = 0; i < h.num_desc; i++) {
		const uint8_t *p = bytes + h.desc_offset + (size_t)i * stride;
		const char *name = (const char *)p + DESC_FIXED_SIZE;
		struct kvmstats_desc *d = &s->desc[s->num_desc];
		size_t n;
		uint64_t end;

		r = parse_desc(p, h.name_size, d, &n, &end);
		if (r < 0)
			goto fail;
		if (end > data_len)
			data_len = end;
		if (!decode_name_valid(name)) {
			decode_name_refuse(&s->refused, name);
			continue;
		}
		d->name = name;
		names_len += n + 1;
		s->num_desc++;
	}
	/* At least one u64 per stat, and inside what a u32 offset can reach. */
	if (data_len < (uint64_t)h.num_desc * sizeof(uint64_t)) {
		r = -EBADMSG;
		goto fail;
	}
	if (data_len > UINT32_MAX) {
		r = -EOVERFLOW;
		goto fail;
	}
	if (h.data_offset < h.desc_offset &&
	    !disjoint(h.data_offset, data_len, h.desc_offset, desc_len)) {
		r = -EBADMSG;
		goto fail;
	}
	s->data_len = (uint32_t)data_len;
	s->num_values = s->data_len / sizeof(uint64_t);

	/* One block for every name, so a schema is three allocations. */
	s->names = malloc(names_len ? names_len : 1);
	if (!s->names) {
		r = -ENOMEM;
		goto fail;
	}
	names = s->names;
	for (uint32_t i = 0; i < s->num_desc; i++) {
		const char *src = s->desc[i].name;	/* in buf */
		size_t n = strlen(src) + 1;	/* terminated: checked above */

		memcpy(names, src, n);
		s->desc[i].name = names;
		names += n;
	}
	*ret_schema = s;
	return 0;

fail:
	schema_unref(s);
	return r;
}

int schema_equal(const struct kvmstats_schema *a,
		 const struct kvmstats_schema *b)
{
	if (a->num_desc != b->num_desc || a->data_offset != b->data_offset ||
	    a->data_len != b->data_len || a->refused.count != b->refused.count)
		return 0;
	for (uint32_t i = 0; i < a->num_desc; i++) {
		const struct kvmstats_desc *x = &a->desc[i], *y = &b->desc[i];

		if (x->flags != y->flags || x->exponent != y->exponent ||
		    x->size != y->size || x->index != y->index ||
		    x->bucket_size != y->bucket_size ||
		    strcmp(x->name, y->name) != 0)
			return 0;
	}
	return 1;
}

struct kvmstats_schema *schema_ref(struct kvmstats_schema *schema)
{
	schema->refs++;
	return schema;
}

void schema_unref(struct kvmstats_schema *schema)
{
	if (!schema || --schema->refs > 0)
		return;
	free(schema->names);
	free(schema->desc);
	free(schema);
}

int schema_find(const struct kvmstats_schema *schema, const char *name)
{
	for (uint32_t i = 0; i < schema->num_desc; i++)
		if (strcmp(schema->desc[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

double decode_scale(const struct kvmstats_desc *desc)
{
	double step = desc->base == KVM_STATS_BASE_POW2 ? 2.0 : 10.0;
	double scale = 1.0;
	int e = desc->exponent;

	/* |exponent| is small in practice (-9 for nanoseconds). */
	for (; e > 0; e--)
		scale *= step;
	for (; e < 0; e++)
		scale /= step;
	return scale;
}

/*
 * Bucket rules from virt/kvm/binary_stats.c and include/linux/kvm_host.h:
 * a linear histogram puts v in bucket v / bucket_size, a log histogram in
 * bucket fls64(v) (0 for v == 0, i for v in [2^(i-1), 2^i)); both clamp
 * the index to the last bucket, which is therefore open-ended.
 */
int decode_bucket_bounds(const struct kvmstats_desc *desc, uint32_t i,
			 uint64_t *ret_lo, uint64_t *ret_hi)
{
	uint64_t lo, hi;

	if (i >= desc->size)
		return -EINVAL;
	switch (desc->type) {
	case KVM_STATS_TYPE_LINEAR_HIST:
		lo = (uint64_t)i * desc->bucket_size;
		hi = lo + desc->bucket_size;
		break;
	case KVM_STATS_TYPE_LOG_HIST:
		if (i > 64)
			return -EINVAL;	/* fls64() never exceeds 64 */
		lo = i == 0 ? 0 : 1ULL << (i - 1);
		hi = i == 64 ? UINT64_MAX : 1ULL << i;
		break;
	default:
		return -EINVAL;
	}
	if (i == desc->size - 1u)
		hi = UINT64_MAX;
	*ret_lo = lo;
	*ret_hi = hi;
	return 0;
}

const char *decode_type_name(uint32_t type)
{
	switch (type) {
	case KVM_STATS_TYPE_CUMULATIVE:
		return "cumulative";
	case KVM_STATS_TYPE_INSTANT:
		return "instant";
	case KVM_STATS_TYPE_PEAK:
		return "peak";
	case KVM_STATS_TYPE_LINEAR_HIST:
		return "linear_hist";
	case KVM_STATS_TYPE_LOG_HIST:
		return "log_hist";
	}
	return "unknown";
}

const char *decode_unit_name(uint32_t unit)
{
	switch (unit) {
	case KVM_STATS_UNIT_NONE:
		return "none";
	case KVM_STATS_UNIT_BYTES:
		return "bytes";
	case KVM_STATS_UNIT_SECONDS:
		return "seconds";
	case KVM_STATS_UNIT_CYCLES:
		return "cycles";
	case KVM_STATS_UNIT_BOOLEAN:
		return "boolean";
	}
	return "unknown";
}
