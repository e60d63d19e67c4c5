/* SPDX-License-Identifier: MIT */
/*
 * collectd_timer.c: times a collectd plugin's read callback, for `make bench`.
 *
 * bench.mk builds collectd/kvm_stats.c a second time, unchanged, with
 * -Dplugin_register_complex_read=bench_register_complex_read and links this
 * file into that copy of kvm_stats.so. The plugin's registration then comes
 * here: the callback is wrapped and registered with the daemon's real
 * plugin_register_complex_read(). Each call of the wrapper appends one line
 * "<thread cpu ns> <wall ns>" (CLOCK_THREAD_CPUTIME_ID of collectd's read
 * thread, CLOCK_MONOTONIC) to the file named by KVMSTATS_BENCH_READ_LOG,
 * written after the clocks stopped, so the log costs the measure nothing.
 * The copy is also built with -Dplugin_dispatch_values=bench_dispatch_values:
 * the line gets a third number, the values that read dispatched, and with
 * KVMSTATS_BENCH_NO_DISPATCH=1 in the environment they are counted and not
 * handed to collectd, which tells the plugin's own cost per value from
 * what collectd's plugin_dispatch_values() adds.
 *
 * An LD_PRELOAD shim could not do this: the daemon executable defines
 * plugin_register_complex_read and comes first in the lookup order.
 */
#include "collectd.h"

#include "plugin.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int bench_register_complex_read(const char *group, const char *name,
				plugin_read_cb callback, cdtime_t interval,
				user_data_t const *user_data);
int bench_dispatch_values(value_list_t const *vl);

/*
 * Values dispatched by the read running now: collectd runs one plugin's
 * read callback in one read thread at a time, so one counter will do.
 */
static uint64_t dispatched;
static int no_dispatch = -1;	/* -1: KVMSTATS_BENCH_NO_DISPATCH not read yet */

int bench_dispatch_values(value_list_t const *vl)
{
	dispatched++;
	if (no_dispatch < 0)
		no_dispatch = getenv("KVMSTATS_BENCH_NO_DISPATCH") != NULL;
	return no_dispatch ? 0 : plugin_dispatch_values(vl);
}

struct timed_read {
	plugin_read_cb callback;
	user_data_t ud;		/* the plugin's own */
	int log_fd;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int timed_read(user_data_t *ud)
{
	struct timed_read *t = ud->data;
	uint64_t cpu0, wall0, cpu1, wall1;
	int r;

	dispatched = 0;
	cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	wall0 = clock_ns(CLOCK_MONOTONIC);
	r = t->callback(&t->ud);
	cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	wall1 = clock_ns(CLOCK_MONOTONIC);
	if (t->log_fd >= 0)
		dprintf(t->log_fd, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", cpu1 - cpu0,
			wall1 - wall0, dispatched);
	return r;
}

static void timed_free(void *data)
{
	struct timed_read *t = data;

	if (t->ud.free_func)
		t->ud.free_func(t->ud.data);
	if (t->log_fd >= 0)
		close(t->log_fd);
	free(t);
}

int bench_register_complex_read(const char *group, const char *name,
				plugin_read_cb callback, cdtime_t interval,
				user_data_t const *user_data)
{
	const char *path = getenv("KVMSTATS_BENCH_READ_LOG");
	struct timed_read *t = calloc(1, sizeof(*t));
	user_data_t ud = { .free_func = timed_free };

	if (!t)
		return -1;
	t->callback = callback;
	if (user_data)
		t->ud = *user_data;
	t->log_fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
	ud.data = t;
	return plugin_register_complex_read(group, name, timed_read, interval, &ud);
}
