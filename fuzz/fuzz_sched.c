/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sched.c: libFuzzer target for what common/sources/sched.c reads of
 * a VMM's threads in /proc (any process may name its threads, and the
 * files of a fake or hostile proc root are anybody's bytes):
 *   sched_parse_schedstat()  /proc/<pid>/task/<tid>/schedstat
 *   sched_parse_syscall()    /proc/<pid>/task/<tid>/syscall
 *   sched_parse_comm()       /proc/<pid>/task/<tid>/comm
 *   sched_match()            which thread runs which vCPU, from what one
 *                            look at the threads saw
 *
 * The first byte of the input picks the parser (its value modulo 4), the
 * rest is its input, given in a heap copy of its exact length:
 *   0  schedstat text; 1 syscall text; 2 comm text
 *   3  sched_match(): byte 0 the number of vCPUs (% 9), byte 1 the
 *      number of threads seen (% 9), then 4 bytes per vCPU (fd step, N,
 *      the thread known before and how it was found, the QMP hint) and 3
 *      per thread (tid, the vCPU fd it is in KVM_RUN on, the N its name
 *      says); missing bytes are 0. Thread ids are small (1..8), so that
 *      bytes collide the way evidence does.
 *
 * Checked besides the sanitizers: a parser that fails leaves its
 * out-parameter alone; what schedstat accepts is exactly what the kernel's
 * "%llu %llu %lu\n" prints of the values it returns; a syscall text says
 * KVM_RUN only when it starts as the kernel prints ioctl(fd, KVM_RUN)
 * ("16 0x<fd> 0xae80 ", lower case, no leading zeros) with an fd in int
 * range; a comm accepted as vCPU N is QEMU's "CPU %d/KVM" of N; sched_match
 * never gives one thread to two vCPUs, gives only threads that were seen,
 * and each choice has the evidence its "how" names.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/kvm.h>
#include <sys/syscall.h>

#include "sources/sched.h"
#include "fuzz_check.h"

enum parser { P_SCHEDSTAT, P_SYSCALL, P_COMM, P_MATCH, NPARSERS };

#define MAX_PICKS 8
#define MAX_SEEN 8

/* sched.c's only call into the rest of the core, not reached by the parsers. */
uint64_t source_now_usec(void)
{
	return 0;
}

static void fuzz_schedstat(const char *text, size_t len)
{
	const struct kvmstats_sched_total sentinel = { 11, 22, 33 };
	struct kvmstats_sched_total t = sentinel;
	char want[128];
	int r = sched_parse_schedstat(text, len, &t);

	FUZZ_CHECK(r == 0 || r == -EBADMSG);
	if (r < 0) {
		FUZZ_CHECK(memcmp(&t, &sentinel, sizeof(t)) == 0);
		return;
	}
	snprintf(want, sizeof(want), "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		 t.run_ns, t.wait_ns, t.timeslices);
	FUZZ_CHECK(strlen(want) == len && memcmp(want, text, len) == 0);
}

static void fuzz_syscall(const char *text, size_t len)
{
	int fd = -12345;
	int r = sched_parse_syscall(text, len, &fd);
	char want[64];

	FUZZ_CHECK(r == 0 || r == 1 || r == -EBADMSG);
	if (r != 1) {
		FUZZ_CHECK(fd == -12345);
		return;
	}
	FUZZ_CHECK(fd >= 0);
	/* "16 0x<fd> 0xae80 ...": the number of ioctl, the fd, KVM_RUN. */
	snprintf(want, sizeof(want), "%d 0x%x 0x%x ", SYS_ioctl, (unsigned)fd, (unsigned)KVM_RUN);
	FUZZ_CHECK(len > strlen(want) && memcmp(text, want, strlen(want)) == 0);
	FUZZ_CHECK(text[len - 1] == '\n');
}

static void fuzz_comm(const char *text, size_t len)
{
	int id = -12345;
	int r = sched_parse_comm(text, len, &id);
	char want[40];

	FUZZ_CHECK(r == 0 || r == 1);
	if (r == 0) {
		FUZZ_CHECK(id == -12345);
		return;
	}
	FUZZ_CHECK(id >= 0);
	if (len > 0 && text[len - 1] == '\n')
		len--;
	snprintf(want, sizeof(want), "CPU %d/KVM", id);
	FUZZ_CHECK(strlen(want) == len && memcmp(want, text, len) == 0);
}

static uint8_t byte_at(const uint8_t *d, size_t n, size_t i)
{
	return i < n ? d[i] : 0;
}

static void fuzz_match(const uint8_t *d, size_t n)
{
	struct sched_pick picks[MAX_PICKS], was[MAX_PICKS];
	struct sched_seen seen[MAX_SEEN];
	size_t npicks = byte_at(d, n, 0) % (MAX_PICKS + 1);
	size_t nseen = byte_at(d, n, 1) % (MAX_SEEN + 1);
	size_t at = 2;
	int fd = 10;

	for (size_t i = 0; i < npicks; i++, at += 4) {
		uint8_t a = byte_at(d, n, at), b = byte_at(d, n, at + 1);
		uint8_t c = byte_at(d, n, at + 2), h = byte_at(d, n, at + 3);

		fd += 1 + a % 3;		/* distinct, ascending: a VMM's fds */
		picks[i] = (struct sched_pick){
			.fd = fd, .id = b % 6,
			.tid = c % 9, .how = (enum sched_how)(1 + (c >> 4) % 3),
			.hint = h % 9,
		};
		/* What sched_match() hands back: a thread and how, or neither. */
		if (picks[i].tid == 0)
			picks[i].how = SCHED_HOW_NONE;
	}
	for (size_t s = 0; s < nseen; s++, at += 3) {
		uint8_t a = byte_at(d, n, at), b = byte_at(d, n, at + 1);
		uint8_t c = byte_at(d, n, at + 2);

		seen[s] = (struct sched_seen){
			.tid = 1 + a % 8,
			/* Around the vCPU fds (11 to 34), or in no KVM_RUN. */
			.run_fd = b % 4 == 0 ? -1 : 11 + (b >> 2) % 24,
			.name_id = c % 7 == 6 ? -1 : c % 7,
		};
		/* A thread is seen once in one look at task/. */
		for (size_t k = 0; k < s; k++)
			if (seen[k].tid == seen[s].tid)
				seen[s].tid = (pid_t)(10 + s);
	}
	memcpy(was, picks, sizeof(picks));
	sched_match(seen, nseen, picks, npicks);
	for (size_t i = 0; i < npicks; i++) {
		const struct sched_seen *s = NULL;
		size_t in_run = 0;
		pid_t runner = 0;

		FUZZ_CHECK(picks[i].fd == was[i].fd && picks[i].id == was[i].id &&
			   picks[i].hint == was[i].hint);
		for (size_t k = 0; k < nseen; k++) {
			if (seen[k].tid == picks[i].tid)
				s = &seen[k];
			if (seen[k].run_fd == picks[i].fd) {
				in_run++;
				runner = seen[k].tid;
			}
		}
		/* Exactly one thread in KVM_RUN on its fd: that one. */
		if (in_run == 1)
			FUZZ_CHECK(picks[i].tid == runner && picks[i].how == SCHED_HOW_SYSCALL);
		if (picks[i].tid == 0) {
			FUZZ_CHECK(picks[i].how == SCHED_HOW_NONE);
			continue;
		}
		FUZZ_CHECK(s != NULL);		/* a thread that was seen */
		for (size_t j = 0; j < npicks; j++)
			FUZZ_CHECK(j == i || picks[j].tid != picks[i].tid);
		/* Never a thread in KVM_RUN on another vCPU's fd. */
		FUZZ_CHECK(s->run_fd < 0 || s->run_fd == picks[i].fd);
		switch (picks[i].how) {
		case SCHED_HOW_SYSCALL:
			FUZZ_CHECK(s->run_fd == picks[i].fd ||
				   (was[i].tid == picks[i].tid && was[i].how == SCHED_HOW_SYSCALL));
			break;
		case SCHED_HOW_HINT:
			FUZZ_CHECK(picks[i].hint == picks[i].tid);
			break;
		case SCHED_HOW_NAME:
			FUZZ_CHECK(s->name_id == picks[i].id);
			break;
		case SCHED_HOW_NONE:
			FUZZ_CHECK(!"a thread chosen with no evidence");
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1)
		return 0;
	text = fuzz_copy(data + 1, size - 1);
	switch ((enum parser)(data[0] % NPARSERS)) {
	case P_SCHEDSTAT:
		fuzz_schedstat(text, size - 1);
		break;
	case P_SYSCALL:
		fuzz_syscall(text, size - 1);
		break;
	case P_COMM:
		fuzz_comm(text, size - 1);
		break;
	case P_MATCH:
		fuzz_match(data + 1, size - 1);
		break;
	case NPARSERS:
		break;
	}
	free(text);
	return 0;
}
