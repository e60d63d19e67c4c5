/* SPDX-License-Identifier: MIT */
/*
 * test_decode: the decoder and the stats fd reader on real and built blobs.
 *
 * Golden blobs (tests/fixtures/golden/, from tests/fixtures/capture-golden)
 * are byte-for-byte copies of this kernel's VM and vCPU stats files. Blobs
 * for the arm64 and ppc64 stat sets of seeds 000/001 and every broken
 * variant are built here by blob_build(), one invariant broken at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "statsfd.h"

#define NAME_SIZE 48
#define STRIDE (sizeof(struct kvm_stats_desc) + NAME_SIZE)

/* --------------------------------------------------------------- fixtures */

struct golden {
	uint8_t *buf;
	size_t len;
};

static void golden_load(const char *file, struct golden *g)
{
	const char *dir = getenv("KVMSTATS_FIXTURES");
	char path[4096];
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/golden/%s",
		 dir ? dir : "tests/fixtures", file);
	f = fopen(path, "rbe");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	g->buf = malloc((size_t)n);
	assert_non_null(g->buf);
	assert_int_equal(fread(g->buf, 1, (size_t)n, f), (size_t)n);
	g->len = (size_t)n;
	fclose(f);
}

/* One descriptor of a built blob. */
struct bdesc {
	const char *name;
	uint32_t flags;
	int16_t exponent;
	uint16_t size;
	uint32_t offset;	/* UINT32_MAX: right after the previous stat */
	uint32_t bucket_size;
};

#define CUM(n) { n, KVM_STATS_TYPE_CUMULATIVE, 0, 1, UINT32_MAX, 0 }
#define INST(n) { n, KVM_STATS_TYPE_INSTANT, 0, 1, UINT32_MAX, 0 }

/*
 * Lays a blob out as the kernel does: header, id, descriptors, data.
 * Data slot i holds i * 10 + 7, so each value is predictable.
 */
static uint8_t *blob_build(const char *id, const struct bdesc *d, uint32_t n,
			   size_t *ret_len)
{
	struct kvm_stats_header h = {
		.name_size = NAME_SIZE, .num_desc = n,
		.id_offset = sizeof(h),
		.desc_offset = sizeof(h) + NAME_SIZE,
	};
	uint32_t next = 0, data_len = 0;
	uint8_t *buf;

	h.data_offset = h.desc_offset + n * STRIDE;
	buf = calloc(1, h.data_offset + 65536);
	assert_non_null(buf);
	memcpy(buf, &h, sizeof(h));
	strcpy((char *)buf + h.id_offset, id);
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_stats_desc kd = {
			.flags = d[i].flags, .exponent = d[i].exponent,
			.size = d[i].size, .bucket_size = d[i].bucket_size,
			.offset = d[i].offset == UINT32_MAX ? next : d[i].offset,
		};
		uint8_t *p = buf + h.desc_offset + i * STRIDE;

		memcpy(p, &kd, sizeof(kd));
		strcpy((char *)p + sizeof(kd), d[i].name);
		next = kd.offset + kd.size * 8;
		if (next > data_len)
			data_len = next;
	}
	for (uint32_t i = 0; i < data_len / 8; i++) {
		uint64_t v = i * 10 + 7;

		memcpy(buf + h.data_offset + i * 8, &v, 8);
	}
	*ret_len = h.data_offset + data_len;
	return buf;
}

static const struct bdesc valid_set[] = {
	CUM("exits"),
	{ "halt_poll_success_ns", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS, -9, 1, UINT32_MAX, 0 },
	{ "halt_wait_hist", KVM_STATS_TYPE_LOG_HIST | KVM_STATS_UNIT_SECONDS, -9, 32, UINT32_MAX, 0 },
	{ "lin_hist", KVM_STATS_TYPE_LINEAR_HIST, 0, 5, UINT32_MAX, 10 },
	{ "blocking", KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_BOOLEAN, 0, 1, UINT32_MAX, 0 },
	{ "bytes_pow2", KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_BYTES | KVM_STATS_BASE_POW2, 10, 1, UINT32_MAX, 0 },
	{ "cycles", KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_CYCLES, 0, 1, UINT32_MAX, 0 },
};
#define N_VALID (sizeof(valid_set) / sizeof(valid_set[0]))

/* The offset in a built blob of descriptor i, and of its fields. */
#define DESC_AT(i) (sizeof(struct kvm_stats_header) + NAME_SIZE + (i) * STRIDE)
#define HDR_FIELD(f) offsetof(struct kvm_stats_header, f)
#define DESC_FIELD(i, f) (DESC_AT(i) + offsetof(struct kvm_stats_desc, f))

static void put32(uint8_t *buf, size_t at, uint32_t v)
{
	memcpy(buf + at, &v, 4);
}

static void put16(uint8_t *buf, size_t at, uint16_t v)
{
	memcpy(buf + at, &v, 2);
}

static int decode_built(const uint8_t *buf, size_t len)
{
	struct kvmstats_schema *s = NULL;
	int r = decode_schema(buf, len, &s);

	schema_unref(s);
	return r;
}

/* ----------------------------------------------------------------- golden */

static uint64_t value_of(const struct golden *g, const struct kvmstats_schema *s,
			 const char *name)
{
	int i = schema_find(s, name);
	uint64_t v;

	assert_true(i >= 0);
	memcpy(&v, g->buf + s->data_offset + s->desc[i].index * 8, 8);
	return v;
}

static void test_golden_vcpu(void **state)
{
	struct kvmstats_schema *s;
	struct golden g;
	const struct kvmstats_desc *d;
	char id[64];
	int i;

	(void)state;
	golden_load("vcpu.bin", &g);
	assert_int_equal(decode_schema(g.buf, g.len, &s), 0);
	assert_int_equal(decode_id(g.buf, g.len, id, sizeof(id)), 0);
	assert_memory_equal(id, "kvm-", 4);
	assert_non_null(strstr(id, "/vcpu-0"));
	assert_true(s->num_desc >= 40);
	assert_int_equal(s->data_offset + s->data_len, g.len);

	i = schema_find(s, "halt_wait_hist");
	assert_true(i >= 0);
	d = &s->desc[i];
	assert_int_equal(d->type, KVM_STATS_TYPE_LOG_HIST);
	assert_int_equal(d->unit, KVM_STATS_UNIT_SECONDS);
	assert_int_equal(d->exponent, -9);
	assert_int_equal(d->size, 32);
	assert_true(d->known);

	d = &s->desc[schema_find(s, "blocking")];
	assert_int_equal(d->type, KVM_STATS_TYPE_INSTANT);
	assert_int_equal(d->unit, KVM_STATS_UNIT_BOOLEAN);

	/* capture_stats ran three MMIO writes and one hlt. */
	assert_int_equal(value_of(&g, s, "mmio_exits"), 3);
	assert_int_equal(value_of(&g, s, "halt_exits"), 1);
	assert_int_equal(schema_find(s, "no_such_stat"), -ENOENT);
	schema_unref(s);
	free(g.buf);
}

static void test_golden_vm_offset_order(void **state)
{
	struct kvmstats_schema *s;
	struct golden g;
	int rmap, hash;

	(void)state;
	golden_load("vm.bin", &g);
	assert_int_equal(decode_schema(g.buf, g.len, &s), 0);
	rmap = schema_find(s, "max_mmu_rmap_size");
	hash = schema_find(s, "max_mmu_page_hash_collisions");
	assert_true(rmap >= 0 && hash >= 0);
	/* Listed first, stored after: values must be found by offset. */
	assert_true(rmap < hash);
	assert_true(s->desc[rmap].index > s->desc[hash].index);
	assert_int_equal(s->desc[rmap].type, KVM_STATS_TYPE_PEAK);
	assert_int_equal(s->desc[schema_find(s, "pages_4k")].type, KVM_STATS_TYPE_INSTANT);
	schema_unref(s);
	free(g.buf);
}

/* Every truncation of a real blob fails cleanly before the metadata ends. */
static void test_golden_truncations(void **state)
{
	struct kvm_stats_header h;
	struct golden g;
	size_t meta_len;

	(void)state;
	golden_load("vcpu.bin", &g);
	assert_int_equal(decode_header(g.buf, g.len, &h), 0);
	assert_int_equal(decode_meta_len(&h, &meta_len), 0);
	for (size_t n = 0; n <= g.len; n++) {
		uint8_t *copy = malloc(n ? n : 1);	/* exact size: ASan sees overreads */

		memcpy(copy, g.buf, n);
		assert_int_equal(decode_built(copy, n), n < meta_len ? -EBADMSG : 0);
		free(copy);
	}
	free(g.buf);
}

/* Random corruption never crashes: it decodes or fails with a code. */
static void test_golden_bitflips(void **state)
{
	struct golden g;
	uint32_t seed = 12345;

	(void)state;
	golden_load("vcpu.bin", &g);
	for (int round = 0; round < 20000; round++) {
		uint8_t *copy = malloc(g.len);
		int r;

		memcpy(copy, g.buf, g.len);
		for (int k = 0; k < 1 + round % 4; k++) {
			seed = seed * 1103515245 + 12345;
			copy[(seed >> 8) % 400] ^= (uint8_t)(1u << (seed % 8));
		}
		r = decode_built(copy, g.len);
		assert_true(r == 0 || r == -EBADMSG || r == -EOVERFLOW || r == -E2BIG);
		free(copy);
	}
	free(g.buf);
}

/* ----------------------------------------------------- other architectures */

/* kvm_vcpu_stat on arm64 and ppc64el (seed 000), generic stats first. */
static const struct bdesc arm64_vcpu[] = {
	CUM("halt_successful_poll"), CUM("halt_attempted_poll"),
	CUM("halt_poll_invalid"), CUM("halt_wakeup"), CUM("hvc_exit_stat"),
	CUM("wfe_exit_stat"), CUM("wfi_exit_stat"), CUM("mmio_exit_user"),
	CUM("mmio_exit_kernel"), CUM("exits"),
};

static const struct bdesc ppc64_vm[] = {
	CUM("remote_tlb_flush"), INST("num_2M_pages"), INST("num_1G_pages"),
};

static void test_other_arch(void **state)
{
	struct kvmstats_schema *s;
	size_t len;
	uint8_t *buf;

	(void)state;
	buf = blob_build("kvm-77/vcpu-3", arm64_vcpu, 10, &len);
	assert_int_equal(decode_schema(buf, len, &s), 0);
	assert_int_equal(s->num_desc, 10);
	assert_string_equal(s->desc[6].name, "wfi_exit_stat");
	assert_int_equal(s->desc[9].index, 9);
	assert_int_equal(s->num_values, 10);
	schema_unref(s);
	free(buf);

	buf = blob_build("kvm-77", ppc64_vm, 3, &len);
	assert_int_equal(decode_schema(buf, len, &s), 0);
	assert_string_equal(s->desc[1].name, "num_2M_pages");
	assert_int_equal(s->desc[1].type, KVM_STATS_TYPE_INSTANT);
	schema_unref(s);
	free(buf);
}

/* ------------------------------------------------------- broken invariants */

static void test_valid_built(void **state)
{
	struct kvmstats_schema *s;
	size_t len;
	uint8_t *buf = blob_build("kvm-1", valid_set, N_VALID, &len);

	(void)state;
	assert_int_equal(decode_schema(buf, len, &s), 0);
	assert_int_equal(s->num_desc, N_VALID);
	for (uint32_t i = 0; i < N_VALID; i++)
		assert_true(s->desc[i].known);
	assert_int_equal(s->num_values, 1 + 1 + 32 + 5 + 1 + 1 + 1);
	schema_unref(s);
	free(buf);
}

/* Builds the valid blob, applies one mutation, expects err. */
#define BROKEN(name, err, mutation)                                         \
	static void name(void **state)                                     \
	{                                                                  \
		size_t len;                                                \
		uint8_t *buf = blob_build("kvm-1", valid_set, N_VALID, &len); \
		(void)state;                                               \
		mutation;                                                  \
		assert_int_equal(decode_built(buf, len), err);             \
		free(buf);                                                 \
	}

BROKEN(test_id_not_kvm, -EBADMSG, memcpy(buf + sizeof(struct kvm_stats_header), "xvm", 3))
BROKEN(test_id_unterminated, -EBADMSG,
       memset(buf + sizeof(struct kvm_stats_header), 'k', NAME_SIZE))
BROKEN(test_name_size_zero, -EBADMSG, put32(buf, HDR_FIELD(name_size), 0))
BROKEN(test_num_desc_zero, -EBADMSG, put32(buf, HDR_FIELD(num_desc), 0))
BROKEN(test_desc_offset_in_header, -EBADMSG, put32(buf, HDR_FIELD(desc_offset), 8))
BROKEN(test_data_offset_in_header, -EBADMSG, put32(buf, HDR_FIELD(data_offset), 20))
BROKEN(test_id_offset_in_header, -EBADMSG, put32(buf, HDR_FIELD(id_offset), 0))
/* The data block starts inside the descriptor block. */
BROKEN(test_desc_overlaps_data, -EBADMSG,
       put32(buf, HDR_FIELD(data_offset), (uint32_t)DESC_AT(2)))
/* The data block lies before the descriptors and runs into them. */
BROKEN(test_data_overlaps_desc, -EBADMSG,
       put32(buf, HDR_FIELD(desc_offset), 24 + NAME_SIZE + 64);
       put32(buf, HDR_FIELD(data_offset), 24 + NAME_SIZE))
BROKEN(test_exponent_none_negative, -EBADMSG, put16(buf, DESC_FIELD(0, exponent), (uint16_t)-1))
BROKEN(test_exponent_seconds_positive, -EBADMSG, put16(buf, DESC_FIELD(1, exponent), 3))
BROKEN(test_exponent_boolean_nonzero, -EBADMSG, put16(buf, DESC_FIELD(4, exponent), 1))
BROKEN(test_exponent_bytes_negative, -EBADMSG, put16(buf, DESC_FIELD(5, exponent), (uint16_t)-2))
BROKEN(test_exponent_cycles_negative, -EBADMSG, put16(buf, DESC_FIELD(6, exponent), (uint16_t)-1))
BROKEN(test_size_zero, -EBADMSG, put16(buf, DESC_FIELD(0, size), 0))
BROKEN(test_bucket_size_on_log_hist, -EBADMSG, put32(buf, DESC_FIELD(2, bucket_size), 4))
BROKEN(test_bucket_size_missing_linear, -EBADMSG, put32(buf, DESC_FIELD(3, bucket_size), 0))
BROKEN(test_bucket_size_on_counter, -EBADMSG, put32(buf, DESC_FIELD(0, bucket_size), 1))
BROKEN(test_offset_unaligned, -EBADMSG, put32(buf, DESC_FIELD(1, offset), 12))
BROKEN(test_name_empty, -EBADMSG, buf[DESC_AT(1) + sizeof(struct kvm_stats_desc)] = 0)
BROKEN(test_name_unterminated, -EBADMSG,
       memset(buf + DESC_AT(1) + sizeof(struct kvm_stats_desc), 'a', NAME_SIZE))
BROKEN(test_name_size_huge, -E2BIG, put32(buf, HDR_FIELD(name_size), 1u << 20))
BROKEN(test_num_desc_huge, -E2BIG, put32(buf, HDR_FIELD(num_desc), UINT32_MAX))
BROKEN(test_offsets_huge, -E2BIG, put32(buf, HDR_FIELD(desc_offset), UINT32_MAX))
/* offset + size * 8 past what a u32 data length can say. */
BROKEN(test_value_end_overflows, -EOVERFLOW,
       put32(buf, DESC_FIELD(0, offset), UINT32_MAX - 7))
/* Fewer value slots than stats: stats share slots. */
BROKEN(test_data_smaller_than_stats, -EBADMSG,
       for (uint32_t i = 0; i < N_VALID; i++) {
	       put32(buf, DESC_FIELD(i, offset), 0);
	       put16(buf, DESC_FIELD(i, size), 1);
	       put32(buf, DESC_FIELD(i, bucket_size), 0);
	       put32(buf, DESC_FIELD(i, flags), 0);
       })

/* ----------------------------------------------------------------- names */

/* The name rule: what the kernel can name a stat (a C identifier), no more. */
static void test_name_rule(void **state)
{
	static const char *const good[] = {
		"exits", "_", "_x", "A9_b", "halt_poll_success_ns", "X",
	};
	static const char *const bad[] = {
		"", " ", "9lives", "a-b", "a.b", "a b", "a\tb", "evil\nCHART x '' t u",
		"../../../../tmp/x", "q' \"x", "caf\xc3\xa9", "a\x7f", "a\xff", "a/b",
		"\xe2\x80\xae" "abc",
	};
	char name[DECODE_NAME_MAX + 2];
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (decode_name_valid(good[i]) != 1)
			fail_msg("refused: \"%s\"", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (decode_name_valid(bad[i]) != 0)
			fail_msg("taken: bad name %zu", i);
	assert_int_equal(decode_name_valid(NULL), 0);
	/* DECODE_NAME_MAX characters pass, one more does not. */
	memset(name, 'a', sizeof(name));
	name[DECODE_NAME_MAX] = '\0';
	assert_int_equal(decode_name_valid(name), 1);
	name[DECODE_NAME_MAX] = 'a';
	name[DECODE_NAME_MAX + 1] = '\0';
	assert_int_equal(decode_name_valid(name), 0);
}

/*
 * A kernel blob whose descriptors name stats in ways no kernel does: those
 * are left out and counted, the fd and its other stats are kept, each at
 * its own offset with its own value.
 */
static void test_bad_names_left_out(void **state)
{
	struct bdesc set[N_VALID];
	struct kvmstats_schema *s;
	const struct kvmstats_desc *d;
	size_t len;
	uint8_t *buf;
	uint64_t v;
	(void)state;

	memcpy(set, valid_set, sizeof(set));
	set[1].name = "evil\nCHART x '' t u";	/* halt_poll_success_ns */
	set[3].name = "../../../../tmp/x";	/* lin_hist */
	set[5].name = "q' \"x";		/* bytes_pow2 */
	buf = blob_build("kvm-1", set, N_VALID, &len);
	assert_int_equal(decode_schema(buf, len, &s), 0);
	assert_int_equal(s->num_desc, N_VALID - 3);
	assert_int_equal(s->refused.count, 3);
	assert_string_equal(s->refused.first, "evil\nCHART x '' t u");
	/* The data block is the kernel's still: every slot is there. */
	assert_int_equal(s->num_values, 1 + 1 + 32 + 5 + 1 + 1 + 1);
	for (uint32_t i = 0; i < s->num_desc; i++)
		assert_int_equal(decode_name_valid(s->desc[i].name), 1);
	assert_int_equal(schema_find(s, "evil\nCHART x '' t u"), -ENOENT);
	assert_string_equal(s->desc[0].name, "exits");
	assert_int_equal(s->desc[0].index, 0);
	d = &s->desc[schema_find(s, "halt_wait_hist")];
	assert_int_equal(d->index, 2);
	assert_int_equal(d->size, 32);
	d = &s->desc[schema_find(s, "blocking")];
	assert_int_equal(d->index, 1 + 1 + 32 + 5);
	memcpy(&v, buf + s->data_offset + d->index * 8, 8);
	assert_int_equal(v, (1 + 1 + 32 + 5) * 10 + 7);
	d = &s->desc[schema_find(s, "cycles")];
	assert_int_equal(d->index, 1 + 1 + 32 + 5 + 1 + 1);
	schema_unref(s);
	free(buf);

	/* Every name bad: an fd with nothing to show, not a broken one. */
	for (size_t i = 0; i < N_VALID; i++)
		set[i].name = "a-b";
	buf = blob_build("kvm-1", set, N_VALID, &len);
	assert_int_equal(decode_schema(buf, len, &s), 0);
	assert_int_equal(s->num_desc, 0);
	assert_int_equal(s->refused.count, N_VALID);
	schema_unref(s);
	free(buf);
}

/* A type, unit or base newer than this build: kept raw, others decoded. */
static void test_unknown_kinds_kept(void **state)
{
	const uint32_t odd[] = {
		KVM_STATS_TYPE_MAX + (1 << KVM_STATS_TYPE_SHIFT),
		KVM_STATS_UNIT_MAX + (1 << KVM_STATS_UNIT_SHIFT),
		KVM_STATS_BASE_MAX + (1 << KVM_STATS_BASE_SHIFT),
	};

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		struct kvmstats_schema *s;
		size_t len;
		uint8_t *buf = blob_build("kvm-1", valid_set, N_VALID, &len);

		/* Even a "wrong" exponent is no error for a unit we do not know. */
		put32(buf, DESC_FIELD(0, flags), odd[k]);
		put16(buf, DESC_FIELD(0, exponent), (uint16_t)-3);
		assert_int_equal(decode_schema(buf, len, &s), 0);
		assert_false(s->desc[0].known);
		assert_int_equal(s->desc[0].size, 1);
		for (uint32_t i = 1; i < N_VALID; i++)
			assert_true(s->desc[i].known);
		assert_string_equal(decode_type_name(s->desc[0].type),
				    k == 0 ? "unknown" : "cumulative");
		schema_unref(s);
		free(buf);
	}
}

/* ---------------------------------------------------------------- helpers */

static void test_bucket_bounds(void **state)
{
	const struct kvmstats_desc log = {
		.type = KVM_STATS_TYPE_LOG_HIST, .size = 32 };
	const struct kvmstats_desc lin = {
		.type = KVM_STATS_TYPE_LINEAR_HIST, .size = 5, .bucket_size = 10 };
	const struct kvmstats_desc cum = { .type = KVM_STATS_TYPE_CUMULATIVE, .size = 1 };
	uint64_t lo, hi;

	(void)state;
	assert_int_equal(decode_bucket_bounds(&log, 0, &lo, &hi), 0);
	assert_true(lo == 0 && hi == 1);
	assert_int_equal(decode_bucket_bounds(&log, 1, &lo, &hi), 0);
	assert_true(lo == 1 && hi == 2);
	assert_int_equal(decode_bucket_bounds(&log, 10, &lo, &hi), 0);
	assert_true(lo == 512 && hi == 1024);
	assert_int_equal(decode_bucket_bounds(&log, 31, &lo, &hi), 0);
	assert_true(lo == 1ULL << 30 && hi == UINT64_MAX);
	assert_int_equal(decode_bucket_bounds(&log, 32, &lo, &hi), -EINVAL);
	assert_int_equal(decode_bucket_bounds(&lin, 0, &lo, &hi), 0);
	assert_true(lo == 0 && hi == 10);
	assert_int_equal(decode_bucket_bounds(&lin, 3, &lo, &hi), 0);
	assert_true(lo == 30 && hi == 40);
	assert_int_equal(decode_bucket_bounds(&lin, 4, &lo, &hi), 0);
	assert_true(lo == 40 && hi == UINT64_MAX);
	assert_int_equal(decode_bucket_bounds(&cum, 0, &lo, &hi), -EINVAL);
}

static void test_scale(void **state)
{
	const struct kvmstats_desc ns = { .exponent = -9, .base = KVM_STATS_BASE_POW10 };
	const struct kvmstats_desc kib = { .exponent = 10, .base = KVM_STATS_BASE_POW2 };
	const struct kvmstats_desc one = { 0 };

	(void)state;
	assert_true(decode_scale(&ns) > 0.999e-9 && decode_scale(&ns) < 1.001e-9);
	assert_true(decode_scale(&kib) == 1024.0);
	assert_true(decode_scale(&one) == 1.0);
	assert_string_equal(decode_unit_name(KVM_STATS_UNIT_BOOLEAN), "boolean");
	assert_string_equal(decode_type_name(KVM_STATS_TYPE_LINEAR_HIST), "linear_hist");
}

/* ---------------------------------------------------------------- statsfd */

static int fd_of(const uint8_t *buf, size_t len)
{
	char path[] = "/tmp/kvmstats-blob-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	return fd;
}

/*
 * statsfd on a regular file holding a real blob: one pread per sample,
 * the schema shared through the cache, the file offset never moved.
 */
static void test_statsfd_sample(void **state)
{
	struct statsfd_cache *cache;
	struct statsfd *a, *b;
	struct golden g;
	int mmio;

	(void)state;
	golden_load("vcpu.bin", &g);
	assert_int_equal(statsfd_cache_new(&cache), 0);
	assert_int_equal(statsfd_open(fd_of(g.buf, g.len), cache, &a), 0);
	assert_int_equal(statsfd_open(fd_of(g.buf, g.len), cache, &b), 0);
	assert_ptr_equal(a->schema, b->schema);
	assert_memory_equal(a->id, "kvm-", 4);

	lseek(a->fd, 5, SEEK_SET);
	assert_int_equal(statsfd_sample(a), 0);
	assert_int_equal(statsfd_sample(a), 0);
	assert_int_equal(lseek(a->fd, 0, SEEK_CUR), 5);
	assert_int_equal(a->samples, 2);
	mmio = schema_find(a->schema, "mmio_exits");
	assert_int_equal(a->cur[a->schema->desc[mmio].index], 3);
	assert_int_equal(a->prev[a->schema->desc[mmio].index], 3);

	/* The data block shrinks: a short read is an error, nothing changes. */
	assert_int_equal(ftruncate(b->fd, (off_t)g.len - 8), 0);
	assert_int_equal(statsfd_sample(b), -EIO);
	assert_int_equal(b->samples, 0);

	statsfd_close(a);
	statsfd_close(b);
	statsfd_cache_free(cache);
	free(g.buf);
}

static void test_statsfd_rejects_garbage(void **state)
{
	uint8_t junk[256];
	struct statsfd *s = NULL;

	(void)state;
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(statsfd_open(fd_of(junk, sizeof(junk)), NULL, &s), -E2BIG);
	assert_null(s);
	assert_int_equal(statsfd_open(fd_of(junk, 10), NULL, &s), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_vcpu),
		cmocka_unit_test(test_golden_vm_offset_order),
		cmocka_unit_test(test_golden_truncations),
		cmocka_unit_test(test_golden_bitflips),
		cmocka_unit_test(test_other_arch),
		cmocka_unit_test(test_valid_built),
		cmocka_unit_test(test_id_not_kvm),
		cmocka_unit_test(test_id_unterminated),
		cmocka_unit_test(test_name_size_zero),
		cmocka_unit_test(test_num_desc_zero),
		cmocka_unit_test(test_desc_offset_in_header),
		cmocka_unit_test(test_data_offset_in_header),
		cmocka_unit_test(test_id_offset_in_header),
		cmocka_unit_test(test_desc_overlaps_data),
		cmocka_unit_test(test_data_overlaps_desc),
		cmocka_unit_test(test_exponent_none_negative),
		cmocka_unit_test(test_exponent_seconds_positive),
		cmocka_unit_test(test_exponent_boolean_nonzero),
		cmocka_unit_test(test_exponent_bytes_negative),
		cmocka_unit_test(test_exponent_cycles_negative),
		cmocka_unit_test(test_size_zero),
		cmocka_unit_test(test_bucket_size_on_log_hist),
		cmocka_unit_test(test_bucket_size_missing_linear),
		cmocka_unit_test(test_bucket_size_on_counter),
		cmocka_unit_test(test_offset_unaligned),
		cmocka_unit_test(test_name_empty),
		cmocka_unit_test(test_name_unterminated),
		cmocka_unit_test(test_name_size_huge),
		cmocka_unit_test(test_num_desc_huge),
		cmocka_unit_test(test_offsets_huge),
		cmocka_unit_test(test_value_end_overflows),
		cmocka_unit_test(test_data_smaller_than_stats),
		cmocka_unit_test(test_unknown_kinds_kept),
		cmocka_unit_test(test_bucket_bounds),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_statsfd_sample),
		cmocka_unit_test(test_statsfd_rejects_garbage),
		cmocka_unit_test(test_name_rule),
		cmocka_unit_test(test_bad_names_left_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
