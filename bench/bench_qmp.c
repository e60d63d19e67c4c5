/* SPDX-License-Identifier: MIT */
/*
 * bench_qmp.c: what a QMP query-stats costs, for kvmstats_bench.
 *
 * qmp_query_stats() is what the core does per VM and sample: connect, read
 * the greeting, qmp_capabilities, query-stats-schemas, query-stats (vm),
 * query-stats (vcpu), query-cpus-fast, close. Beside it, one connection of
 * our own sends single commands, so that the round trip of query-stats can
 * be set against query-status's, which does next to nothing in QEMU: QEMU
 * 7.2 dispatches every QMP command in its main loop (its monitor I/O thread
 * only parses), and for target vcpu it runs the stats read on each vCPU
 * thread and waits for it. The main thread is the one whose tid is QEMU's
 * pid; its run time comes from /proc/PID/task/PID/schedstat.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"
#include "qmp.h"

#define QMP_TIMEOUT_MS 2000
#define QMP_LINE_MAX (1u << 20)

/* A plain QMP connection of our own, for single-command round trips. */
struct qmp_conn {
	int fd;
	char *buf;
	size_t len;
	int next_id;
};

static int qmp_read_line(struct qmp_conn *c, char **ret_line)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (nl) {
			*nl = '\0';
			*ret_line = strdup(c->buf);
			c->len -= (size_t)(nl + 1 - c->buf);
			memmove(c->buf, nl + 1, c->len);
			return *ret_line ? 0 : -ENOMEM;
		}
		if (c->len == QMP_LINE_MAX)
			return -EMSGSIZE;
		n = read(c->fd, c->buf + c->len, QMP_LINE_MAX - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		c->len += (size_t)n;
	}
}

/* Sends one command (args: JSON text or NULL) and waits for its answer. */
static int qmp_command(struct qmp_conn *c, const char *cmd, const char *args)
{
	char req[512];
	int id = ++c->next_id, len;

	len = snprintf(req, sizeof(req), "{\"execute\": \"%s\"%s%s, \"id\": %d}\n",
		       cmd, args ? ", \"arguments\": " : "", args ? args : "", id);
	if (len < 0 || (size_t)len >= sizeof(req))
		return -EINVAL;
	if (write(c->fd, req, (size_t)len) != len)
		return -EIO;
	for (;;) {
		json_t *msg, *jid;
		char *line;
		int r = qmp_read_line(c, &line);

		if (r < 0)
			return r;
		msg = json_loads(line, 0, NULL);
		free(line);
		if (!msg)
			return -EBADMSG;
		jid = json_object_get(msg, "id");
		if (json_is_integer(jid) && json_integer_value(jid) == id) {
			r = json_object_get(msg, "return") ? 0 : -EPROTO;
			json_decref(msg);
			return r;
		}
		json_decref(msg);	/* an event */
	}
}

static int qmp_connect(const char *path, struct qmp_conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = QMP_TIMEOUT_MS / 1000 };
	char *greeting;
	int r;

	*c = (struct qmp_conn){ .fd = -1 };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	c->buf = malloc(QMP_LINE_MAX);
	if (!c->buf)
		return -ENOMEM;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	r = qmp_read_line(c, &greeting);
	if (r < 0)
		return r;
	free(greeting);
	return qmp_command(c, "qmp_capabilities", NULL);
}

static void qmp_close(struct qmp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
}

int bench_measure_qmp(const char *path, unsigned samples, unsigned gap_ms)
{
	static const struct {
		const char *key, *cmd, *args;
	} cmds[] = {
		{ "status", "query-status", NULL },
		{ "stats_vm", "query-stats", "{\"target\": \"vm\"}" },
		{ "stats_vcpu", "query-stats", "{\"target\": \"vcpu\"}" },
	};
	enum { NCMDS = sizeof(cmds) / sizeof(cmds[0]) };
	size_t n = samples;
	struct cost *full = calloc(n, sizeof(*full));
	uint64_t *full_main = calloc(n, sizeof(*full_main));
	struct cost *rtt[NCMDS] = { 0 };
	uint64_t *rtt_main[NCMDS] = { 0 };
	struct qmp_stats *qs = NULL;
	struct qmp_conn conn = { .fd = -1 };
	size_t nvcpus = 0, vm_values = 0, vcpu_values = 0;
	uint64_t idle0, idle1;
	pid_t qpid;
	int r;

	for (size_t k = 0; k < NCMDS; k++) {
		rtt[k] = calloc(n, sizeof(*rtt[k]));
		rtt_main[k] = calloc(n, sizeof(*rtt_main[k]));
		if (!rtt[k] || !rtt_main[k]) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (!full || !full_main) {
		r = -ENOMEM;
		goto out;
	}
	r = qmp_query_stats(path, QMP_TIMEOUT_MS, &qs);
	if (r < 0)
		goto out;
	qpid = qs->pid;
	nvcpus = qs->nvcpus;
	vm_values = qs->vm_schema ? qs->vm_schema->num_values : 0;
	vcpu_values = qs->vcpu_schema ? qs->vcpu_schema->num_values : 0;
	qmp_stats_free(qs);
	qs = NULL;

	/* What the main thread does on its own in one second, for scale. */
	r = bench_thread_runtime_ns(qpid, qpid, &idle0);
	if (r < 0)
		goto out;
	bench_pause_ms(1000);
	r = bench_thread_runtime_ns(qpid, qpid, &idle1);
	if (r < 0)
		goto out;

	/* qmp_query_stats(): connect, 4 commands, disconnect, per VM. */
	for (size_t i = 0; i < WARMUP + n; i++) {
		uint64_t m0, m1;
		struct cost t;

		bench_pause_ms(gap_ms);
		bench_thread_runtime_ns(qpid, qpid, &m0);
		t = bench_cost_now();
		r = qmp_query_stats(path, QMP_TIMEOUT_MS, &qs);
		t = bench_cost_since(t);
		bench_thread_runtime_ns(qpid, qpid, &m1);
		qmp_stats_free(qs);
		qs = NULL;
		if (r < 0)
			goto out;
		if (i >= WARMUP) {
			full[i - WARMUP] = t;
			full_main[i - WARMUP] = m1 - m0;
		}
	}

	/* Single commands on one connection: what each holds the loop. */
	r = qmp_connect(path, &conn);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < WARMUP + n; i++) {
		for (size_t k = 0; k < NCMDS; k++) {
			uint64_t m0, m1;
			struct cost t;

			bench_pause_ms(gap_ms / NCMDS);
			bench_thread_runtime_ns(qpid, qpid, &m0);
			t = bench_cost_now();
			r = qmp_command(&conn, cmds[k].cmd, cmds[k].args);
			t = bench_cost_since(t);
			bench_thread_runtime_ns(qpid, qpid, &m1);
			if (r < 0)
				goto out;
			if (i >= WARMUP) {
				rtt[k][i - WARMUP] = t;
				rtt_main[k][i - WARMUP] = m1 - m0;
			}
		}
	}

	printf("{\"kind\": \"qmp\", \"qemu_pid\": %d, \"vcpus\": %zu, \"vm_values\": %zu, "
	       "\"vcpu_values\": %zu, \"main_idle_ns_per_s\": %" PRIu64 ", ",
	       (int)qpid, nvcpus, vm_values, vcpu_values, idle1 - idle0);
	bench_print_costs("query_stats", full, n);
	printf(", \"query_stats_main_ns\": %" PRIu64, bench_median(full_main, n));
	for (size_t k = 0; k < NCMDS; k++) {
		char key[64];

		snprintf(key, sizeof(key), "rtt_%s", cmds[k].key);
		printf(", ");
		bench_print_costs(key, rtt[k], n);
		printf(", \"%s_main_ns\": %" PRIu64, key, bench_median(rtt_main[k], n));
	}
	printf("}\n");
	r = 0;
out:
	qmp_close(&conn);
	qmp_stats_free(qs);
	for (size_t k = 0; k < NCMDS; k++) {
		free(rtt[k]);
		free(rtt_main[k]);
	}
	free(full);
	free(full_main);
	return r;
}
