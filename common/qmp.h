/* SPDX-License-Identifier: MIT */
/*
 * qmp.h: QEMU's QMP query-stats, typed by query-stats-schemas (qmp.c, and the
 * pure parsing in qmp_parse.c).
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_QMP_H
#define KVMSTATS_QMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "decode.h"

/*
 * VM and vCPU stats of one QEMU (>= 7.1) through its QMP socket:
 * query-stats (targets vm and vcpu) typed by query-stats-schemas, vCPUs
 * mapped from QOM paths to cpu-index with query-cpus-fast. The schemas are
 * synthesized kvmstats_schema objects, so front ends see the same
 * descriptors (name, type, unit, base, exponent, size) as from a stats fd.
 */
/* QEMU's version, from the QMP greeting; 0.0.0 when it said none. */
struct qmp_version {
	int major, minor, micro;
};

struct qmp_stats {
	pid_t pid;				/* the peer (QEMU), SO_PEERCRED */
	struct qmp_version qemu;
	struct kvmstats_schema *vm_schema;	/* NULL: no VM stats */
	uint64_t *vm_values;			/* vm_schema->num_values */
	struct kvmstats_schema *vcpu_schema;	/* NULL: no vCPU stats */
	size_t nvcpus;
	int *vcpu_index;			/* cpu-index of each vCPU */
	uint64_t **vcpu_values;			/* vcpu_schema->num_values each */
	/*
	 * Every vCPU query-cpus-fast lists, by cpu-index, and the host thread
	 * QEMU says runs it (its "thread-id"; 0: none said). Untrusted: a
	 * hint for sources/sched.c, which checks it against /proc.
	 */
	size_t ncpus;
	int *cpu_index;
	pid_t *cpu_tid;
};

/*
 * Connects to the QMP socket at path, negotiates capabilities, queries
 * schemas, stats and vCPUs, and disconnects, all within timeout_ms. The
 * caller frees the result with qmp_stats_free(). vCPUs are sorted by
 * cpu-index. Histogram sizes come from the stats answer, so each call
 * builds its schemas anew: compare them with schema_equal(). Histograms
 * are in the kernel's bucket order (bucket 0 first) whatever order this
 * QEMU sends them in (see qmp_lists_reversed()).
 * -ETIMEDOUT: the whole exchange took too long (QEMU busy or stuck).
 * -ECONNREFUSED/-ENOENT: no QEMU there. -EBUSY: the monitor is taken (no
 * greeting within timeout_ms: another client holds it, or QEMU's main loop
 * is stuck). -ECONNRESET: QEMU closed the socket mid-exchange.
 * -EPROTO: QMP said something unexpected. -ENOTSUP: no query-stats (< 7.1).
 * -EBADMSG: an answer breaks qapi/stats.json. -ENAMETOOLONG: path does not
 * fit in sun_path. -EINVAL: timeout_ms < 0. -ENOMEM.
 */
int qmp_query_stats(const char *path, int timeout_ms, struct qmp_stats **ret_stats);
void qmp_stats_free(struct qmp_stats *stats);	/* accepts NULL */

/*
 * The pure halves, for tests and fuzzing: the "return" of
 * query-stats-schemas -> schemas for targets vm and vcpu (NULL when QEMU
 * has none); the "return"s of one exchange -> what qmp_query_stats() gives,
 * with pid 0. The size of a histogram is only in a stats answer, so
 * qmp_parse_schemas() makes every stat one value (index = position) and
 * qmp_parse_answers() lays the schemas out anew from the answers.
 * -EBADMSG: not JSON or breaks qapi/stats.json. -ENOMEM.
 */
int qmp_parse_schemas(const char *json, size_t len,
		      struct kvmstats_schema **ret_vm,
		      struct kvmstats_schema **ret_vcpu);

/*
 * The JSON text of each "return"; NULL answers count as empty lists. The
 * greeting is the whole {"QMP": ...} object; NULL: a QEMU of unknown
 * version (its lists are taken as every QEMU so far sends them).
 */
struct qmp_answers {
	const char *schemas;	/* query-stats-schemas: required */
	const char *vm;		/* query-stats, target vm */
	const char *vcpu;	/* query-stats, target vcpu */
	const char *cpus;	/* query-cpus-fast */
	const char *greeting;	/* the greeting QEMU sent on connect */
	size_t schemas_len, vm_len, vcpu_len, cpus_len, greeting_len;
};

/* -EINVAL: no schemas. */
int qmp_parse_answers(const struct qmp_answers *answers,
		      struct qmp_stats **ret_stats);

/*
 * 1 when this QEMU sends every list value of query-stats last element
 * first, 0 when in the kernel's order. A version of 0.0.0 (unknown) is
 * taken as reversed, like every QEMU that has query-stats so far.
 */
int qmp_lists_reversed(const struct qmp_version *qemu);

#endif
