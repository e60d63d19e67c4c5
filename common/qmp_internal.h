/*
 * qmp_internal.h: what qmp.c (the socket) and qmp_parse.c (the pure JSON
 * parser) share. Internal: front ends include kvmstats.h only.
 */
#ifndef KVMSTATS_QMP_INTERNAL_H
#define KVMSTATS_QMP_INTERNAL_H

#include <stddef.h>

#include <jansson.h>

#include "qmp.h"

/*
 * json_loadb() with the flags every QMP text gets; the caller json_decref()s
 * *ret. -EBADMSG: an integer above INT64_MAX; err_other: any other failure.
 */
int qmp_load(const char *text, size_t len, int err_other, json_t **ret);

/* A JSON integer within [min, max] in *ret. -EBADMSG: anything else. */
int qmp_get_int(const json_t *v, long long min, long long max,
		long long *ret);

/* A string member of o, or NULL when absent or not a string. */
const char *qmp_get_string(const json_t *o, const char *key);

/*
 * The parsed greeting and "return"s of one exchange (vm, vcpu, cpus may be
 * NULL: no entries; greeting NULL: version unknown) -> a result with pid 0.
 * The caller frees it with qmp_stats_free(). -EBADMSG: breaks
 * qapi/stats.json. -ENOMEM.
 */
int qmp_stats_from_json(const json_t *greeting, const json_t *schemas,
			const json_t *vm, const json_t *vcpu, const json_t *cpus,
			struct qmp_stats **ret_stats);

#endif
