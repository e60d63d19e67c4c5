/* SPDX-License-Identifier: MIT */
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
 * Why a state machine per exchange, driven by one poll(): the caller is a
 * collection loop (a collectd read callback, the Netdata plugin's loop)
 * that asks many QEMUs. A QEMU whose main loop is stuck, or a monitor
 * another client holds (QEMU then leaves our connection in the listen
 * backlog without a word), must cost the others nothing, and never a read
 * that does not return. So every socket is non-blocking, each exchange has
 * its own CLOCK_MONOTONIC deadline, and all of them advance together in one
 * poll() loop (qmp_exchanges_run()): N stuck peers cost one deadline, not N.
 * The protocol half (qmp_exchange_feed(), qmp_exchange_output()) sees bytes
 * only, so tests can drive it without a socket.
 *
 * The peer is untrusted: a line is at most QMP_MAX_LINE bytes, jansson
 * parses it (never by hand), and every field is type-checked before use.
 * Nothing here logs: errors are returned as -errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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

#define CAPABILITIES "{\"execute\":\"qmp_capabilities\",\"id\":1}\n"
/* QEMU answers in-band commands in the order they came. */
#define QUERIES \
	"{\"execute\":\"query-stats-schemas\",\"id\":2}\n" \
	"{\"execute\":\"query-stats\",\"arguments\":{\"target\":\"vm\"},\"id\":3}\n" \
	"{\"execute\":\"query-stats\",\"arguments\":{\"target\":\"vcpu\"},\"id\":4}\n" \
	"{\"execute\":\"query-cpus-fast\",\"id\":5}\n"

/* Everything we ever send, in order: the output is a window into it. */
static const char requests[] = CAPABILITIES QUERIES;
#define CAPABILITIES_LEN (sizeof(CAPABILITIES) - 1)
#define REQUESTS_LEN (sizeof(requests) - 1)

struct qmp_exchange {
	int fd;				/* -1: none (closed, or a test feeds bytes) */
	enum qmp_xstate state;
	bool pipelined;
	int error;			/* QX_FAILED: why */
	pid_t pid;			/* the listener (SO_PEERCRED); 0: unknown */
	uint64_t deadline;		/* CLOCK_MONOTONIC, ns */
	size_t out_off, out_end;	/* requests[out_off..out_end) is still to send */
	char *buf;			/* bytes received, not yet a whole line */
	size_t len, cap;
	json_t *greeting, *answer[ID_CPUS - ID_SCHEMAS + 1];
};

uint64_t qmp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned qmp_backoff_next(unsigned ms)
{
	if (ms < QMP_BACKOFF_FIRST_MS)
		return QMP_BACKOFF_FIRST_MS;
	return ms >= QMP_BACKOFF_MAX_MS / 2 ? QMP_BACKOFF_MAX_MS : ms * 2;
}

/* ------------------------------------------------------ the protocol half */

static void xfail(struct qmp_exchange *x, int r)
{
	if (x->state == QX_DONE || x->state == QX_FAILED)
		return;
	x->state = QX_FAILED;
	x->error = r;
	x->out_off = x->out_end;
	if (x->fd >= 0) {	/* let QEMU serve its next client at once */
		close(x->fd);
		x->fd = -1;
	}
}

static void xdone(struct qmp_exchange *x)
{
	x->state = QX_DONE;
	if (x->fd >= 0) {
		close(x->fd);
		x->fd = -1;
	}
}

int qmp_exchange_new(bool pipelined, uint64_t deadline_ns, struct qmp_exchange **ret)
{
	struct qmp_exchange *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->fd = -1;
	x->state = QX_GREETING;
	x->pipelined = pipelined;
	x->deadline = deadline_ns;
	/* Pipelined: everything goes at once; QEMU takes capabilities first. */
	if (pipelined)
		x->out_end = REQUESTS_LEN;
	*ret = x;
	return 0;
}

void qmp_exchange_free(struct qmp_exchange *x)
{
	if (!x)
		return;
	if (x->fd >= 0)
		close(x->fd);
	json_decref(x->greeting);
	for (size_t i = 0; i < sizeof(x->answer) / sizeof(x->answer[0]); i++)
		json_decref(x->answer[i]);
	free(x->buf);
	free(x);
}

static bool blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/*
 * An answer (not an event) after the greeting, matched by id: capabilities
 * first, then the queries in any order, each taken once (-EPROTO for an
 * unknown or repeated id). An error answer is -EPROTO, but CommandNotFound
 * for a query-stats command is -ENOTSUP: a QEMU older than 7.1.
 */
static int take_answer(struct qmp_exchange *x, json_t *msg)
{
	json_t *ret = json_object_get(msg, "return");
	json_t *error = json_object_get(msg, "error");
	long long lo = x->state == QX_CAPS ? ID_CAPABILITIES : ID_SCHEMAS;
	long long hi = x->state == QX_CAPS ? ID_CAPABILITIES : ID_CPUS;
	long long id;

	if (qmp_get_int(json_object_get(msg, "id"), lo, hi, &id) < 0 ||
	    (!ret && !error))
		return -EPROTO;
	if (error) {
		const char *class = qmp_get_string(error, "class");

		return id != ID_CAPABILITIES && id != ID_CPUS && class &&
		       strcmp(class, "CommandNotFound") == 0 ? -ENOTSUP : -EPROTO;
	}
	if (id == ID_CAPABILITIES) {
		x->state = QX_ANSWERS;
		if (!x->pipelined)
			x->out_end = REQUESTS_LEN;
		return 0;
	}
	if (x->answer[id - ID_SCHEMAS])
		return -EPROTO;
	x->answer[id - ID_SCHEMAS] = json_incref(ret);
	for (size_t i = 0; i < sizeof(x->answer) / sizeof(x->answer[0]); i++)
		if (!x->answer[i])
			return 0;
	xdone(x);
	return 0;
}

/* One whole line from the peer. */
static int take_line(struct qmp_exchange *x, const char *line, size_t len)
{
	json_t *msg = NULL;
	int r;

	if (blank(line, len))
		return 0;
	/* A monitor started with pretty=on spreads objects over lines: -EPROTO. */
	r = qmp_load(line, len, -EPROTO, &msg);
	if (r < 0)
		return r;
	if (!json_is_object(msg)) {
		r = -EPROTO;
	} else if (x->state == QX_GREETING) {
		if (!json_is_object(json_object_get(msg, "QMP"))) {
			r = -EPROTO;
		} else {
			x->greeting = json_incref(msg);
			x->state = QX_CAPS;
			if (!x->pipelined)
				x->out_end = CAPABILITIES_LEN;
		}
	} else if (json_object_get(msg, "event")) {
		r = 0;
	} else if (x->state == QX_CAPS || x->state == QX_ANSWERS) {
		r = take_answer(x, msg);
	}
	/* After QX_DONE: events or noise, no longer our business. */
	json_decref(msg);
	return r;
}

int qmp_exchange_feed(struct qmp_exchange *x, const char *data, size_t n)
{
	size_t scanned = x->len, start = 0;

	if (x->state == QX_FAILED)
		return x->error;
	if (x->state == QX_DONE || n == 0)
		return 0;
	if (x->len + n > x->cap) {
		size_t cap = x->cap ? x->cap : QMP_BUF_START;
		char *p;

		while (cap < x->len + n)
			cap *= 2;
		p = realloc(x->buf, cap);
		if (!p) {
			xfail(x, -ENOMEM);
			return -ENOMEM;
		}
		x->buf = p;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, data, n);
	x->len += n;
	for (;;) {
		char *nl = memchr(x->buf + scanned, '\n', x->len - scanned);
		int r;

		if (!nl)
			break;
		r = take_line(x, x->buf + start, (size_t)(nl - x->buf) + 1 - start);
		start = scanned = (size_t)(nl - x->buf) + 1;
		if (r < 0) {
			xfail(x, r);
			return r;
		}
		if (x->state == QX_DONE)
			break;
	}
	memmove(x->buf, x->buf + start, x->len - start);
	x->len -= start;
	if (x->len > QMP_MAX_LINE) {
		xfail(x, -EPROTO);
		return -EPROTO;
	}
	/* Keep a flood of lines from holding a large buffer for ever. */
	if (x->len == 0 && x->cap > QMP_BUF_START) {
		free(x->buf);
		x->buf = NULL;
		x->cap = 0;
	}
	return 0;
}

const char *qmp_exchange_output(const struct qmp_exchange *x, size_t *ret_len)
{
	*ret_len = x->out_end - x->out_off;
	return requests + x->out_off;
}

void qmp_exchange_sent(struct qmp_exchange *x, size_t n)
{
	x->out_off += n <= x->out_end - x->out_off ? n : x->out_end - x->out_off;
}

enum qmp_xstate qmp_exchange_state(const struct qmp_exchange *x)
{
	return x->state;
}

int qmp_exchange_error(const struct qmp_exchange *x)
{
	return x->state == QX_FAILED ? x->error : 0;
}

pid_t qmp_exchange_pid(const struct qmp_exchange *x)
{
	return x->pid;
}

uint64_t qmp_exchange_deadline(const struct qmp_exchange *x)
{
	return x->deadline;
}

bool qmp_exchange_expire(struct qmp_exchange *x, uint64_t now_ns)
{
	if (x->state == QX_DONE || x->state == QX_FAILED || now_ns < x->deadline)
		return false;
	/*
	 * No greeting: QEMU serves one QMP client per socket and leaves the
	 * next in the listen backlog without a word until the first one goes
	 * (or its main loop is stuck).
	 */
	xfail(x, x->state == QX_CONNECT || x->state == QX_GREETING ? -EBUSY : -ETIMEDOUT);
	return true;
}

int qmp_exchange_result(const struct qmp_exchange *x, struct qmp_stats **ret_stats)
{
	struct qmp_stats *s;
	int r;

	if (x->state == QX_FAILED)
		return x->error;
	if (x->state != QX_DONE)
		return -EINPROGRESS;
	r = qmp_stats_from_json(x->greeting, x->answer[0], x->answer[1], x->answer[2],
				x->answer[3], &s);
	if (r < 0)
		return r;
	s->pid = x->pid;
	*ret_stats = s;
	return 0;
}

/* --------------------------------------------------------- the socket half */

/* For a client, the credentials of whoever called listen(): QEMU. */
static int take_peer(struct qmp_exchange *x)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(x->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	x->pid = cred.pid;
	return 0;
}

/*
 * The length of "/proc/PID/root/" at the start of path (a VMM in another
 * mount namespace, a container, seen from the host), 0 when it has none.
 */
static size_t in_proc_root(const char *path)
{
	size_t n = strlen("/proc/"), digits;

	if (strncmp(path, "/proc/", n) != 0)
		return 0;
	digits = strspn(path + n, "0123456789");
	if (digits == 0 || digits > 10 || strncmp(path + n + digits, "/root/", 6) != 0)
		return 0;
	return n + digits + 6;
}

/*
 * An O_PATH fd of the socket at "/proc/PID/root/REST", REST resolved inside
 * that root (openat2() RESOLVE_IN_ROOT): an absolute symlink or ".." among
 * the container's files stays in the container, as it does for the VMM,
 * rather than reach the host's files; no magic link is followed. -EPERM:
 * the kernel refused to enter /proc/PID/root, which needs ptrace read
 * access to PID (PTRACE_MODE_READ_FSCREDS: CAP_SYS_PTRACE for a VMM of
 * another user, or one with capabilities this process lacks). -ENOSYS:
 * no openat2() (Linux < 5.6).
 */
static int open_in_root(const char *path, size_t prefix)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	char root[32];
	int dirfd, fd;

	if ((size_t)snprintf(root, sizeof(root), "%.*s", (int)(prefix - 1), path) >= sizeof(root))
		return -ENAMETOOLONG;
	dirfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return errno == EACCES ? -EPERM : -errno;
	fd = (int)syscall(SYS_openat2, dirfd, path + prefix, &how, sizeof(how));
	if (fd < 0)
		fd = -errno;
	close(dirfd);
	return fd;
}

/*
 * Connects fd to the socket at path: 0, -EINPROGRESS (non-blocking, under
 * way) or -errno. -EACCES: no write permission on the socket (connect()
 * needs it; capabilities do not stand in for it here: the process holds no
 * CAP_DAC_OVERRIDE) or no search permission on a directory above it; -EPERM
 * see open_in_root(). A path in another process's root is reached through
 * the O_PATH fd open_in_root() gives, as "/proc/self/fd/N", which connect()
 * resolves to the same socket and checks in the same way.
 */
static int connect_path(int fd, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t prefix = in_proc_root(path);
	int pathfd = -1, r = 0;

	if (prefix > 0) {
		pathfd = open_in_root(path, prefix);
		if (pathfd == -ENOSYS)
			pathfd = -1;	/* resolved as any other path, below */
		else if (pathfd < 0)
			return pathfd;
	}
	if (pathfd >= 0)
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", pathfd);
	else if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	else
		memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = errno == EINPROGRESS ? -EINPROGRESS : -errno;
	if (pathfd >= 0)
		close(pathfd);
	return r;
}

int qmp_exchange_start(const char *path, bool pipelined, uint64_t deadline_ns,
		       struct qmp_exchange **ret)
{
	struct qmp_exchange *x;
	int r;

	if (!path)
		return -EINVAL;
	r = qmp_exchange_new(pipelined, deadline_ns, &x);
	if (r < 0)
		return r;
	x->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (x->fd < 0) {
		r = -errno;
		goto fail;
	}
	r = connect_path(x->fd, path);
	if (r == -EAGAIN) {
		/* A full listen backlog: clients queue behind a held monitor. */
		r = -EBUSY;
		goto fail;
	} else if (r == -EINPROGRESS || r == -EINTR) {
		x->state = QX_CONNECT;
	} else if (r < 0) {
		goto fail;
	} else {
		r = take_peer(x);
		if (r < 0)
			goto fail;
	}
	*ret = x;
	return 0;
fail:
	qmp_exchange_free(x);
	return r;
}

int qmp_exchange_fd(const struct qmp_exchange *x)
{
	return x->fd;
}

short qmp_exchange_events(const struct qmp_exchange *x)
{
	if (x->fd < 0)
		return 0;
	if (x->state == QX_CONNECT)
		return POLLOUT;
	return x->out_off < x->out_end ? POLLIN | POLLOUT : POLLIN;
}

static int xwrite(struct qmp_exchange *x)
{
	while (x->out_off < x->out_end) {
		ssize_t n = send(x->fd, requests + x->out_off, x->out_end - x->out_off,
				 MSG_NOSIGNAL);

		if (n >= 0) {
			x->out_off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		return errno == EPIPE ? -ECONNRESET : -errno;
	}
	return 0;
}

void qmp_exchange_io(struct qmp_exchange *x)
{
	char buf[16384];
	int r;

	if (x->fd < 0)
		return;
	if (x->state == QX_CONNECT) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
			xfail(x, -errno);
			return;
		}
		if (err == EINPROGRESS || err == EALREADY)
			return;
		if (err) {
			xfail(x, -err);
			return;
		}
		r = take_peer(x);
		if (r < 0) {
			xfail(x, r);
			return;
		}
		x->state = QX_GREETING;
	}
	/* Read and write until neither can go on: the state moves as lines come. */
	for (;;) {
		ssize_t n;

		r = xwrite(x);
		if (r < 0) {
			xfail(x, r);
			return;
		}
		n = recv(x->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			qmp_exchange_feed(x, buf, (size_t)n);
			if (x->state == QX_DONE || x->state == QX_FAILED)
				return;
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			xfail(x, -ECONNRESET);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			xfail(x, -errno);
		return;
	}
}

/*
 * The time to the earliest deadline among the waited-for exchanges, for
 * poll(), rounded up to whole ms so it never wakes just before it and
 * spins; -1: none is waited for.
 */
static int next_timeout(struct qmp_exchange *const *xs, const bool *wait, size_t n,
			uint64_t now)
{
	uint64_t first = UINT64_MAX;

	for (size_t i = 0; i < n; i++)
		if (xs[i] && wait[i] && qmp_exchange_fd(xs[i]) >= 0 &&
		    xs[i]->deadline < first)
			first = xs[i]->deadline;
	if (first == UINT64_MAX)
		return -1;
	if (first <= now)
		return 0;
	first = (first - now + 999999) / 1000000;
	return first > INT_MAX ? INT_MAX : (int)first;
}

int qmp_exchanges_run(struct qmp_exchange *const *xs, const bool *wait, size_t n,
		      const volatile sig_atomic_t *stop)
{
	struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
	size_t *which = calloc(n ? n : 1, sizeof(*which));
	bool once = true;
	int r = 0;

	if (!pfd || !which) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		uint64_t now = qmp_now_ns();
		int timeout = next_timeout(xs, wait, n, now), got;
		size_t npfd = 0;

		/*
		 * Asked to end (the signal broke poll() below with EINTR):
		 * no peer, however slow, holds the caller up any longer.
		 */
		if (stop && *stop)
			break;
		/* Nothing waited for: one look at what is ready, no wait. */
		if (timeout < 0) {
			if (!once)
				break;
			timeout = 0;
		}
		once = false;
		for (size_t i = 0; i < n; i++) {
			if (!xs[i] || qmp_exchange_fd(xs[i]) < 0)
				continue;
			pfd[npfd] = (struct pollfd){ .fd = qmp_exchange_fd(xs[i]),
						     .events = qmp_exchange_events(xs[i]) };
			which[npfd++] = i;
		}
		if (npfd == 0)
			break;
		got = poll(pfd, npfd, timeout);
		if (got < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		for (size_t k = 0; got > 0 && k < npfd; k++)
			if (pfd[k].revents)
				qmp_exchange_io(xs[which[k]]);
		now = qmp_now_ns();
		for (size_t i = 0; i < n; i++)
			if (xs[i] && wait[i])
				qmp_exchange_expire(xs[i], now);
	}
	/* Those not waited for are judged against their deadline too. */
	for (size_t i = 0; i < n; i++)
		if (xs[i])
			qmp_exchange_expire(xs[i], qmp_now_ns());
out:
	free(which);
	free(pfd);
	return r;
}

int qmp_query_stats(const char *path, int timeout_ms, struct qmp_stats **ret_stats)
{
	struct qmp_exchange *x;
	bool wait = true;
	int r;

	if (!path || timeout_ms < 0)
		return -EINVAL;
	r = qmp_exchange_start(path, false,
			       qmp_now_ns() + (uint64_t)timeout_ms * 1000000u, &x);
	if (r < 0)
		return r;
	r = qmp_exchanges_run(&x, &wait, 1, NULL);
	if (r >= 0)
		r = qmp_exchange_result(x, ret_stats);
	qmp_exchange_free(x);
	return r;
}
