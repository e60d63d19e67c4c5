/* SPDX-License-Identifier: MIT */
/*
 * test_news.c: what scan_news() says of QMP sockets that do not answer:
 * each once, named (escaped), again only when it changes or clears, and
 * "N more" past the report's list. The host is one on an empty proc tree,
 * so no VM is known and the lines name socket and pid only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmstats.h"
#include "news.h"

struct heard {
	char lines[32][1024];
	int n;
};

static void say(const char *line, void *ctx)
{
	struct heard *h = ctx;

	assert_true(h->n < 32);
	snprintf(h->lines[h->n++], sizeof(h->lines[0]), "%s", line);
}

static void stuck(struct kvmstats_scan_report *rep, const char *path, pid_t pid, int error)
{
	struct kvmstats_qmp_stuck *s = &rep->qmp_stuck[rep->nqmp_stuck++];

	snprintf(s->path, sizeof(s->path), "%s", path);
	s->pid = pid;
	s->error = error;
	s->retry_s = 1;
	rep->qmp_stuck_total++;
	rep->qmp_timeout_ms = 500;
}

static void test_qmp_said_once(void **state)
{
	char root[] = "/tmp/test_news.XXXXXX";
	struct kvmstats_host *host;
	struct kvmstats_scan_report rep = { 0 };
	struct scan_said said = { 0 };
	struct heard h = { .n = 0 };
	(void)state;

	assert_non_null(mkdtemp(root));
	assert_int_equal(host_new(root, false, NULL, NULL, &host), 0);

	stuck(&rep, "/run/a.qmp", 41, -EBUSY);
	stuck(&rep, "/run/b\n.qmp", 42, -ECONNRESET);
	scan_news(&said, 0, &rep, host, say, &h);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.lines[0], "QMP socket /run/a.qmp (pid 41) did not answer "
			    "within 500 ms: asked again in 1 s");
	/* A newline in a path cannot forge a log line. */
	assert_string_equal(h.lines[1], "QMP socket /run/b\\n.qmp (pid 42) failed: "
			    "Connection reset by peer: asked again in 1 s");

	/* Same state, a longer backoff, -ETIMEDOUT instead of -EBUSY: news to no one. */
	rep.qmp_stuck[0].error = -ETIMEDOUT;
	rep.qmp_stuck[0].retry_s = 8;
	scan_news(&said, 0, &rep, host, say, &h);
	assert_int_equal(h.n, 2);

	/* Another pid listens there now: said again. One clears. */
	rep.qmp_stuck[0].pid = 43;
	rep.qmp_stuck[1] = rep.qmp_stuck[0];
	rep.nqmp_stuck = rep.qmp_stuck_total = 1;
	scan_news(&said, 0, &rep, host, say, &h);
	assert_int_equal(h.n, 4);
	assert_string_equal(h.lines[2], "QMP socket /run/a.qmp (pid 43) did not answer "
			    "within 500 ms: asked again in 8 s");
	assert_string_equal(h.lines[3], "QMP socket /run/b\\n.qmp: no longer asked");

	/* More than the list holds: those are counted, once. */
	rep.qmp_stuck_total = 20;
	scan_news(&said, 0, &rep, host, say, &h);
	scan_news(&said, 0, &rep, host, say, &h);
	assert_int_equal(h.n, 5);
	assert_string_equal(h.lines[4], "19 more QMP sockets did not answer: each is "
			    "asked again with backoff");

	host_free(host);
	rmdir(root);
}

/* The two refusals say what grants the access (docs/sources.md). */
static void test_qmp_refusals_say_why(void **state)
{
	char root[] = "/tmp/test_news.XXXXXX";
	struct kvmstats_host *host;
	struct kvmstats_scan_report rep = { 0 };
	struct scan_said said = { 0 };
	struct heard h = { .n = 0 };

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_int_equal(host_new(root, false, NULL, NULL, &host), 0);
	stuck(&rep, "/proc/7/root/a.qmp", 0, -EPERM);
	stuck(&rep, "/run/b.qmp", 0, -EACCES);
	scan_news(&said, 0, &rep, host, say, &h);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.lines[0], "QMP socket /proc/7/root/a.qmp failed: Operation not "
			    "permitted (a socket under /proc/PID/root is reached only with ptrace "
			    "access to that process: CAP_SYS_PTRACE): asked again in 1 s");
	assert_string_equal(h.lines[1], "QMP socket /run/b.qmp failed: Permission denied "
			    "(connecting needs write permission on the socket for this user, and "
			    "search permission on its directories): asked again in 1 s");
	host_free(host);
	rmdir(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qmp_said_once),
		cmocka_unit_test(test_qmp_refusals_say_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
