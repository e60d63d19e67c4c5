/* SPDX-License-Identifier: MIT */
/*
 * output.h: the plugin's stdout, written without ever blocking the release
 * of VMs whose VMM exited.
 */
#ifndef KVMSTATS_NETDATA_OUTPUT_H
#define KVMSTATS_NETDATA_OUTPUT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct output_buf {
	char *data;
	size_t len, cap;
};

struct output {
	FILE *file;			/* what the protocol is written to */
	struct output_buf pending;	/* written since the last flush */
	struct output_buf sending;	/* being written to fd */
	int fd;
	int wait_fd;			/* readable when a VMM has exited */
	int fd_flags;			/* fd's flags before output_open() */
	int error;			/* -ENOMEM met while appending */
	bool flushing;			/* output_flush() is sending older lines */
	const volatile sig_atomic_t *stop;	/* set: never wait for the reader */
};

/*
 * Makes fd non-blocking (output_close() restores it) and o->file write to
 * it, keeping in memory what the pipe does not take at once: up to 256 KiB
 * before waiting for the pipe, more only while wait_fd is readable (a VMM
 * exited: host_reap_fd()) or once *stop is set (a signal asked us to end:
 * Netdata stops reading a plugin it is about to stop, and the plugin must
 * not wait for it). -errno.
 */
int output_open(struct output *o, int fd, int wait_fd, const volatile sig_atomic_t *stop);

/*
 * Writes everything buffered to fd. While the reader is not reading, waits
 * for it and for wait_fd: each time wait_fd is readable, calls
 * on_ready(ctx), which may write to o->file (that goes out at the next
 * flush). Returns 0; -EPIPE: the reader has gone; -EINTR: *stop was set by
 * a signal meanwhile; -ENOMEM; other -errno of write() or poll().
 */
int output_flush(struct output *o, void (*on_ready)(void *ctx), void *ctx,
		 const volatile sig_atomic_t *stop);

/* Drops what the reader has not taken, without waiting; accepts a zeroed struct. */
void output_close(struct output *o);

#endif
