/* SPDX-License-Identifier: MIT */
/*
 * bench.h: what the parts of kvmstats_bench share (bench/kvmstats_bench.c,
 * bench_util.c, bench_qmp.c): costs measured on two clocks, medians printed
 * as JSON fields.
 */
#ifndef KVMSTATS_BENCH_H
#define KVMSTATS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Repetitions run and thrown away before the measured ones. */
#define WARMUP 5

/* One repetition's cost: this thread's CPU time and the wall time. */
struct cost {
	uint64_t cpu_ns, wall_ns;
};

struct cost bench_cost_now(void);
/* The cost since t0, a bench_cost_now(). */
struct cost bench_cost_since(struct cost t0);

/* Median of n values; sorts v. 0 when n is 0. */
uint64_t bench_median(uint64_t *v, size_t n);

/*
 * Prints "key": {"cpu_ns", "wall_ns" (medians), "cpu_min_ns", "cpu_max_ns",
 * "n"} for n costs, as one JSON member (no separator around it).
 */
void bench_print_costs(const char *key, const struct cost *c, size_t n);

void bench_pause_ms(unsigned ms);

/*
 * How long thread tid of process pid has run, in ns (the first field of
 * /proc/PID/task/TID/schedstat). -errno of open/read, -EBADMSG.
 */
int bench_thread_runtime_ns(pid_t pid, pid_t tid, uint64_t *ret);

/*
 * qmp_query_stats() on the QMP socket at path, samples times (after
 * WARMUP), and on a connection of its own the round trips of query-status
 * and query-stats (vm, vcpu), each with the CPU time QEMU's main thread
 * spent meanwhile. Prints one JSON line {"kind": "qmp", ...}.
 * -errno of the QMP exchange, -ENOMEM.
 */
int bench_measure_qmp(const char *path, unsigned samples, unsigned gap_ms);

#endif
