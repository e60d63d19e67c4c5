/* SPDX-License-Identifier: MIT */
/*
 * qmp_internal.h: what qmp.c (the socket) and qmp_parse.c (the pure JSON
 * parser) share. Internal: front ends include kvmstats.h only.
 */
#ifndef KVMSTATS_QMP_INTERNAL_H
#define KVMSTATS_QMP_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* ------------------------------------------------------------- exchanges */

/*
 * One connect-query-disconnect with one QEMU, non-blocking: a state
 * machine that poll() drives (qmp.c). States in order; an exchange ends
 * QX_DONE (every answer in) or QX_FAILED (qmp_exchange_error() says why).
 */
enum qmp_xstate {
	QX_CONNECT,	/* connect() in progress */
	QX_GREETING,	/* waiting for {"QMP": ...} */
	QX_CAPS,	/* waiting for qmp_capabilities' answer */
	QX_ANSWERS,	/* waiting for the four queries' answers, by id */
	QX_DONE,
	QX_FAILED,
};

struct qmp_exchange;

/* A failed peer is asked again after 1 s, then 2, 4, ... up to 60 s. */
#define QMP_BACKOFF_FIRST_MS 1000u
#define QMP_BACKOFF_MAX_MS 60000u

/* The wait after a failure that followed a wait of ms (0: none yet). */
unsigned qmp_backoff_next(unsigned ms);

/* CLOCK_MONOTONIC in ns: the clock of every deadline here. */
uint64_t qmp_now_ns(void);

/*
 * An exchange without a socket, in QX_GREETING, for tests: bytes go in
 * with qmp_exchange_feed(), requests come out of qmp_exchange_output().
 * pipelined: send capabilities and every query at once, without waiting
 * for the greeting and the capabilities' answer (QEMU takes input in
 * order), so the whole exchange needs one look at the socket once QEMU
 * has answered: what a probe of a peer not waited for needs. Otherwise
 * each request waits for the answer before it, as QMP clients usually do.
 * Freed with qmp_exchange_free() (accepts NULL). -ENOMEM.
 */
int qmp_exchange_new(bool pipelined, uint64_t deadline_ns, struct qmp_exchange **ret);
void qmp_exchange_free(struct qmp_exchange *x);

/*
 * The same, connected (non-blocking) to the QMP socket at path.
 * -ENOENT/-ECONNREFUSED: no QEMU there; -EBUSY: its listen backlog is
 * full; -EACCES: no write permission on the socket (or no search
 * permission on a directory above it); -EPERM: path is in another
 * process's root ("/proc/PID/root/...", a VMM in a container), which this
 * process may not enter (ptrace read access to PID: CAP_SYS_PTRACE for
 * another user's process or a more privileged one); -ENAMETOOLONG;
 * -EINVAL: path NULL; -ENOMEM. A "/proc/PID/root/" path is resolved inside
 * that root (symlinks stay in the container) and reached through an
 * O_PATH fd, so its length is not bound by sun_path.
 */
int qmp_exchange_start(const char *path, bool pipelined, uint64_t deadline_ns,
		       struct qmp_exchange **ret);

/*
 * Bytes the peer sent -> the next state. 0, or the -errno the exchange
 * failed with (-EPROTO: not QMP, a line over 4 MiB; -ENOTSUP: no
 * query-stats; -ENOMEM). Bytes after QX_DONE are ignored.
 */
int qmp_exchange_feed(struct qmp_exchange *x, const char *data, size_t n);

/* What is still to send (may be empty), and how much of it went. */
const char *qmp_exchange_output(const struct qmp_exchange *x, size_t *ret_len);
void qmp_exchange_sent(struct qmp_exchange *x, size_t n);

enum qmp_xstate qmp_exchange_state(const struct qmp_exchange *x);
int qmp_exchange_error(const struct qmp_exchange *x);	/* 0 unless QX_FAILED */
pid_t qmp_exchange_pid(const struct qmp_exchange *x);	/* 0: not connected */
uint64_t qmp_exchange_deadline(const struct qmp_exchange *x);

/*
 * Fails x if it is not over by now_ns: -EBUSY before the greeting (the
 * monitor is taken, or QEMU's main loop is stuck), -ETIMEDOUT after it.
 * true when it did.
 */
bool qmp_exchange_expire(struct qmp_exchange *x, uint64_t now_ns);

/*
 * A QX_DONE exchange's answers -> stats with the peer's pid (the caller
 * frees them). The exchange's error if it failed, -EINPROGRESS before
 * the end, -EBADMSG: an answer breaks qapi/stats.json, -ENOMEM.
 */
int qmp_exchange_result(const struct qmp_exchange *x, struct qmp_stats **ret_stats);

/* The socket half: its fd (-1 once over) and the poll() events it waits for. */
int qmp_exchange_fd(const struct qmp_exchange *x);
short qmp_exchange_events(const struct qmp_exchange *x);
/* Reads and writes what the socket takes now, never blocking. */
void qmp_exchange_io(struct qmp_exchange *x);

/*
 * Drives n exchanges (NULL entries skipped) in one poll() loop until every
 * one with wait[i] is over or past its own deadline. The others are not
 * waited for: they advance by what is ready meanwhile (with nothing waited
 * for, one poll() that does not wait). At the end every exchange past its
 * deadline is expired. Once *stop is set (a signal: the caller is to end),
 * nothing more is waited for; the exchanges under way stay so. 0, or
 * -ENOMEM / poll()'s -errno.
 */
int qmp_exchanges_run(struct qmp_exchange *const *xs, const bool *wait, size_t n,
		      const volatile sig_atomic_t *stop);

#endif
