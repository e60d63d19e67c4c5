/* SPDX-License-Identifier: MIT */
/*
 * bench_util.c: the clocks, medians and JSON fields of kvmstats_bench
 * (bench.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct cost bench_cost_now(void)
{
	return (struct cost){ clock_ns(CLOCK_THREAD_CPUTIME_ID), clock_ns(CLOCK_MONOTONIC) };
}

struct cost bench_cost_since(struct cost t0)
{
	struct cost t1 = bench_cost_now();

	return (struct cost){ t1.cpu_ns - t0.cpu_ns, t1.wall_ns - t0.wall_ns };
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

uint64_t bench_median(uint64_t *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_print_costs(const char *key, const struct cost *c, size_t n)
{
	uint64_t *v = calloc(n ? n : 1, sizeof(*v));
	uint64_t cpu, wall, lo, hi;

	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		v[i] = c[i].cpu_ns;
	cpu = bench_median(v, n);
	lo = n ? v[0] : 0;
	hi = n ? v[n - 1] : 0;
	for (size_t i = 0; i < n; i++)
		v[i] = c[i].wall_ns;
	wall = bench_median(v, n);
	printf("\"%s\": {\"cpu_ns\": %" PRIu64 ", \"wall_ns\": %" PRIu64
	       ", \"cpu_min_ns\": %" PRIu64 ", \"cpu_max_ns\": %" PRIu64
	       ", \"n\": %zu}", key, cpu, wall, lo, hi, n);
	free(v);
}

void bench_pause_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	if (ms)
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
}

int bench_thread_runtime_ns(pid_t pid, pid_t tid, uint64_t *ret)
{
	char path[64], buf[128];
	unsigned long long v;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	if (sscanf(buf, "%llu", &v) != 1)
		return -EBADMSG;
	*ret = v;
	return 0;
}
