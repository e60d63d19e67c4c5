/*
 * qmp.c: VM and vCPU stats of a QEMU (>= 7.1) through its QMP socket.
 *
 * Follows the QEMU Machine Protocol (docs/interop/qmp-spec.rst: a greeting,
 * qmp_capabilities, then one JSON object per line each way, asynchronous
 * {"event": ...} lines interleaved at any time). This file holds the
 * exchange: it sends query-stats-schemas, query-stats (targets vm and vcpu)
 * and query-cpus-fast, and hands their "return"s to qmp_parse.c, which
 * turns them into schemas and values (qapi/stats.json).
 *
 * Why one deadline: the caller is a collection loop (a collectd read
 * callback, the Netdata plugin's loop). A QEMU whose main loop is stuck, or
 * a monitor another client holds (QEMU then leaves our connection in the
 * listen backlog without a word), must cost it at most timeout_ms and never
 * a read that does not return. So the socket is non-blocking and every wait
 * is a poll() bounded by what is left of one CLOCK_MONOTONIC deadline.
 *
 * The peer is untrusted: a line is at most QMP_MAX_LINE bytes, jansson
 * parses it (never by hand), and every field is type-checked before use.
 * Nothing here logs: errors are returned as -errno.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "qmp.h"
#include "qmp_internal.h"

/* The largest answer seen here is 4.4 KiB; anything near this is hostile. */
#define QMP_MAX_LINE (4u << 20)
#define QMP_BUF_START (64u << 10)

/* Our request ids; QEMU echoes them in the answer (or the error). */
enum {
	ID_CAPABILITIES = 1,
	ID_SCHEMAS,
	ID_STATS_VM,
	ID_STATS_VCPU,
	ID_CPUS,
};

/* ----------------------------------------------------------- the socket */

struct conn {
	int fd;
	uint64_t deadline;	/* CLOCK_MONOTONIC, ns */
	char *buf;		/* bytes received, not yet consumed */
	size_t len, cap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Waits until fd is ready for events or the deadline passes (-ETIMEDOUT).
 * poll() gets the time left rounded up, so it never wakes just before the
 * deadline and spins.
 */
static int conn_wait(const struct conn *c, short events)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };

	for (;;) {
		uint64_t now = now_ns(), left;
		int r;

		if (now >= c->deadline)
			return -ETIMEDOUT;
		left = (c->deadline - now + 999999) / 1000000;
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		/* POLLERR/POLLHUP too: the next send()/recv() says what. */
		if (r > 0)
			return 0;
	}
}

static int conn_write(const struct conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		int r;

		if (n >= 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = conn_wait(c, POLLOUT);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/*
 * The next JSON object QEMU sends, one per line (QEMU ends each with CR LF;
 * a monitor started with pretty=on spreads them over lines and is refused
 * with -EPROTO). The caller json_decref()s it.
 * -EPROTO: not a JSON object, or a line longer than QMP_MAX_LINE.
 * -ECONNRESET: QEMU closed the socket. -ETIMEDOUT.
 */
static int conn_read(struct conn *c, json_t **ret_msg)
{
	size_t scanned = 0;

	for (;;) {
		char *nl = c->len > scanned ?
			   memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		ssize_t n;
		int r;

		if (nl) {
			size_t line = (size_t)(nl - c->buf) + 1;
			json_t *msg = NULL;

			r = blank(c->buf, line) ? 0 :
			    qmp_load(c->buf, line, -EPROTO, &msg);
			memmove(c->buf, c->buf + line, c->len - line);
			c->len -= line;
			scanned = 0;
			if (r < 0)
				return r;
			if (!msg)
				continue;
			if (!json_is_object(msg)) {
				json_decref(msg);
				return -EPROTO;
			}
			*ret_msg = msg;
			return 0;
		}
		scanned = c->len;
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : QMP_BUF_START;
			char *p;

			if (c->cap >= QMP_MAX_LINE)
				return -EPROTO;
			if (cap > QMP_MAX_LINE)
				cap = QMP_MAX_LINE;
			p = realloc(c->buf, cap);
			if (!p)
				return -ENOMEM;
			c->buf = p;
			c->cap = cap;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = conn_wait(c, POLLIN);
		if (r < 0)
			return r;
	}
}

/*
 * The answer to request id, events skipped. *ret_return is its "return"
 * (the caller json_decref()s it). -ENOTSUP: CommandNotFound for a command
 * that only newer QEMUs have (optional); -EPROTO: any other error.
 */
static int conn_answer(struct conn *c, int id, bool optional,
		       json_t **ret_return)
{
	for (;;) {
		json_t *msg, *ret, *error;
		long long got;
		int r;

		r = conn_read(c, &msg);
		if (r < 0)
			return r;
		if (json_object_get(msg, "event")) {
			json_decref(msg);
			continue;
		}
		ret = json_object_get(msg, "return");
		error = json_object_get(msg, "error");
		if (qmp_get_int(json_object_get(msg, "id"), id, id, &got) < 0 ||
		    (!ret && !error)) {
			r = -EPROTO;
		} else if (error) {
			const char *class = qmp_get_string(error, "class");

			r = optional && class && strcmp(class, "CommandNotFound") == 0 ?
			    -ENOTSUP : -EPROTO;
		} else {
			*ret_return = json_incref(ret);
		}
		json_decref(msg);
		return r;
	}
}

/* Connects without blocking past the deadline; the peer's pid in ret_pid. */
static int conn_open(struct conn *c, const char *path, pid_t *ret_pid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int r, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* A full listen backlog: clients queue behind a held monitor. */
		if (errno == EAGAIN)
			return -EBUSY;
		if (errno != EINPROGRESS && errno != EINTR)
			return -errno;
		r = conn_wait(c, POLLOUT);
		if (r < 0)
			return r;
		len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		if (err)
			return -err;
		len = sizeof(cred);
	}
	/* For a client, the credentials of whoever called listen(): QEMU. */
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	*ret_pid = cred.pid;
	return 0;
}

static const char capabilities[] =
	"{\"execute\":\"qmp_capabilities\",\"id\":1}\n";

/* Sent in one write: QEMU answers in-band commands in order. */
static const char queries[] =
	"{\"execute\":\"query-stats-schemas\",\"id\":2}\n"
	"{\"execute\":\"query-stats\",\"arguments\":{\"target\":\"vm\"},\"id\":3}\n"
	"{\"execute\":\"query-stats\",\"arguments\":{\"target\":\"vcpu\"},\"id\":4}\n"
	"{\"execute\":\"query-cpus-fast\",\"id\":5}\n";

int qmp_query_stats(const char *path, int timeout_ms, struct qmp_stats **ret_stats)
{
	struct conn c = { .fd = -1 };
	json_t *greeting = NULL, *caps = NULL, *answer[4] = { NULL };
	struct qmp_stats *s;
	pid_t pid = 0;
	int r;

	if (!path || timeout_ms < 0)
		return -EINVAL;
	c.deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;

	r = conn_open(&c, path, &pid);
	if (r < 0)
		goto out;
	/*
	 * QEMU serves one QMP client per socket and leaves the next in the
	 * listen backlog without a greeting until the first one goes.
	 */
	r = conn_read(&c, &greeting);
	if (r == -ETIMEDOUT)
		r = -EBUSY;
	if (r < 0)
		goto out;
	if (!json_is_object(json_object_get(greeting, "QMP"))) {
		r = -EPROTO;
		goto out;
	}
	r = conn_write(&c, capabilities, sizeof(capabilities) - 1);
	if (r >= 0)
		r = conn_answer(&c, ID_CAPABILITIES, false, &caps);
	if (r >= 0)
		r = conn_write(&c, queries, sizeof(queries) - 1);
	for (int id = ID_SCHEMAS; r >= 0 && id <= ID_CPUS; id++)
		r = conn_answer(&c, id, id != ID_CPUS, &answer[id - ID_SCHEMAS]);
	if (r < 0)
		goto out;
	r = qmp_stats_from_json(greeting, answer[0], answer[1], answer[2],
				answer[3], &s);
	if (r < 0)
		goto out;
	s->pid = pid;
	*ret_stats = s;
out:
	for (int i = 0; i < 4; i++)
		json_decref(answer[i]);
	json_decref(caps);
	json_decref(greeting);
	free(c.buf);
	if (c.fd >= 0)
		close(c.fd);
	return r;
}
