/* SPDX-License-Identifier: MIT */
/*
 * decode.h: bytes of a KVM stats file -> schema and values (decode.c). Pure: no
 * syscalls, no logging, no globals; every bound checked before it is trusted.
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_DECODE_H
#define KVMSTATS_DECODE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One statistic as described by the kernel. Its values are the u64 slots
 * [index, index + size) of the data block.
 */
struct kvmstats_desc {
	const char *name;	/* NUL-terminated, owned by the schema */
	uint32_t flags;		/* raw flags word from the kernel */
	uint32_t type;		/* flags & KVM_STATS_TYPE_MASK */
	uint32_t unit;		/* flags & KVM_STATS_UNIT_MASK */
	uint32_t base;		/* flags & KVM_STATS_BASE_MASK */
	int16_t exponent;	/* value = raw * base^exponent */
	uint16_t size;		/* number of u64 values (buckets) */
	uint32_t index;		/* first value, in u64 slots from data start */
	uint32_t bucket_size;	/* LINEAR_HIST only */
	/*
	 * false when type, unit or base is newer than this build: the values
	 * are still read and may be shown raw, but not scaled or charted.
	 */
	bool known;
};

/*
 * Longest stat name taken (decode_name_valid()). The kernel's are at most
 * 47 characters (KVM_STATS_NAME_SIZE is 48 with the NUL); the rest is room
 * for a longer name in a future kernel.
 */
#define DECODE_NAME_MAX 64

/* The names a source gave that decode_name_valid() refused. */
struct kvmstats_refused {
	unsigned count;
	/* The first of them, raw bytes cut to fit: escape it to show it. */
	char first[DECODE_NAME_MAX + 1];
};

/* What the descriptors of one stats fd say. Shared by fds with equal blocks. */
struct kvmstats_schema {
	uint32_t num_desc;
	uint32_t data_offset;	/* file offset of the data block */
	uint32_t data_len;	/* bytes in the data block, a multiple of 8 */
	uint32_t num_values;	/* data_len / 8 */
	struct kvmstats_desc *desc;
	char *names;		/* storage behind desc[].name */
	unsigned refs;		/* schema_unref() frees at 0 */
	/* Stats whose name was refused: left out of desc[], counted here. */
	struct kvmstats_refused refused;
};

/*
 * Whether name can name a stat: 1 yes, 0 no. The rule is what the kernel
 * itself can name one (its STATS_DESC macros make the name of a struct
 * field's): a C identifier, [A-Za-z_][A-Za-z0-9_]*, of 1 to
 * DECODE_NAME_MAX characters. Every source's names pass it where their
 * schema is built (decode_schema(), QMP, libvirt, debugfs): a stat named
 * otherwise is left out and counted (decode_name_refuse()), so no front
 * end ever sees a newline, a quote or a "/" in a stat name.
 */
int decode_name_valid(const char *name);

/* Counts name as refused in r, keeping the first name refused. */
void decode_name_refuse(struct kvmstats_refused *r, const char *name);

/*
 * Copies the header out of buf and checks what can be checked of it alone:
 * offsets past the header, name_size and num_desc non-zero.
 * -EBADMSG: too short or broken.
 */
int decode_header(const void *buf, size_t len,
		  struct kvm_stats_header *ret_hdr);

/*
 * Bytes from file offset 0 that hold the header, the id string and every
 * descriptor, i.e. what decode_schema() needs.
 * -EOVERFLOW: the sizes in the header overflow.
 */
int decode_meta_len(const struct kvm_stats_header *hdr, size_t *ret_len);

/*
 * Decodes and validates the descriptors in buf (the first decode_meta_len()
 * bytes of a stats file, or more). Enforces the invariants the kernel's
 * kvm_binary_stats_test.c checks; a descriptor whose type, unit or base is
 * unknown to this build is kept with known = false instead of failing the
 * others, and one whose name decode_name_valid() refuses is left out and
 * counted in refused. The result has refs == 1; release it with
 * schema_unref().
 * -EBADMSG: malformed. -EOVERFLOW: size arithmetic overflowed. -ENOMEM.
 */
int decode_schema(const void *buf, size_t len,
		  struct kvmstats_schema **ret_schema);

/* Known type/unit/base: 0, or -EBADMSG if it breaks the selftest rules. */
int decode_check_desc(const struct kvmstats_desc *d);

/*
 * Copies the id string ("kvm-<pid>" or "kvm-<tid>/vcpu-<n>") of a stats
 * file into ret_id (at most size bytes with the NUL).
 * -EBADMSG: missing, unterminated or not starting with "kvm".
 * -ENOBUFS: does not fit.
 */
int decode_id(const void *buf, size_t len, char *ret_id, size_t size);

/* Two schemas describe the same stats at the same places: 1 yes, 0 no. */
int schema_equal(const struct kvmstats_schema *a,
		 const struct kvmstats_schema *b);

struct kvmstats_schema *schema_ref(struct kvmstats_schema *schema);
void schema_unref(struct kvmstats_schema *schema);	/* accepts NULL */

/* Index of the stat called name, or -ENOENT. */
int schema_find(const struct kvmstats_schema *schema, const char *name);

/* base^exponent as a double: multiply a raw value by it to get the unit. */
double decode_scale(const struct kvmstats_desc *desc);

/*
 * Bounds of histogram bucket i in raw units: it counts values in
 * [*ret_lo, *ret_hi); the last bucket has *ret_hi == UINT64_MAX (open).
 * -EINVAL: not a histogram or i out of range.
 */
int decode_bucket_bounds(const struct kvmstats_desc *desc, uint32_t i,
			 uint64_t *ret_lo, uint64_t *ret_hi);

/* "cumulative", "instant", "peak", "linear_hist", "log_hist", "unknown". */
const char *decode_type_name(uint32_t type);
/* "none", "bytes", "seconds", "cycles", "boolean", "unknown". */
const char *decode_unit_name(uint32_t unit);

#endif
