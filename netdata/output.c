/* SPDX-License-Identifier: MIT */
/*
 * output.c: the plugin's stdout, written without ever blocking the release
 * of VMs whose VMM exited.
 *
 * A stats fd we hold keeps its VM alive after the VMM exits (KVM_STATS_FACTS.md),
 * so the plugin must close it at once. If Netdata is slow to read, a
 * plain write() to the pipe would block the plugin, and every VM that
 * exited meanwhile would live on until Netdata read again. So the fd is
 * non-blocking: lines go out as stdio's 64 KiB buffer fills, and what the
 * pipe does not take waits in memory for output_flush(), which waits on
 * the pipe and on the VMMs' pidfds together and lets the host release the
 * VMs that exit meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"

static int buf_append(struct output_buf *b, const char *data, size_t n)
{
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 64 * 1024;
		char *p;

		while (cap - b->len < n)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

/* Writes to fd what it takes now of data, without waiting: the count. */
static size_t write_now(int fd, const char *data, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);

		if (w > 0)
			off += (size_t)w;
		else if (w < 0 && errno == EINTR)
			continue;
		else
			break;	/* EAGAIN, or an error output_flush() will meet */
	}
	return off;
}

/* Lines held in memory before the writer waits for the pipe to drain. */
#define OUTPUT_HOLD (256 * 1024)

/*
 * Netdata is reading more slowly than we write: wait for the pipe rather
 * than hold a whole iteration in memory, unless a VMM has exited (or a
 * signal came): then keep buffering, so that this iteration ends soon and
 * output_flush() releases the VM. Nothing is released from here: the
 * caller is in the middle of walking the VMs.
 */
static void drain_some(struct output *o)
{
	struct pollfd pfd[2] = {
		{ .fd = o->fd, .events = POLLOUT },
		{ .fd = o->wait_fd, .events = POLLIN },
	};

	while (o->pending.len > OUTPUT_HOLD) {
		size_t w;

		/*
		 * Asked to end: a poll() here would wait for a reader that
		 * may never read again (Netdata shutting down stops reading,
		 * then signals), and the signal that set *stop is spent.
		 */
		if (o->stop && *o->stop)
			return;
		if (poll(pfd, o->wait_fd >= 0 ? 2 : 1, -1) < 0 ||
		    (pfd[1].revents & POLLIN) || !(pfd[0].revents & POLLOUT))
			return;
		w = write_now(o->fd, o->pending.data, o->pending.len);
		if (w == 0)
			return;
		memmove(o->pending.data, o->pending.data + w, o->pending.len - w);
		o->pending.len -= w;
	}
}

static ssize_t cookie_write(void *cookie, const char *data, size_t n)
{
	struct output *o = cookie;
	size_t done = 0;

	/*
	 * Straight out while the pipe takes it, so memory holds lines only
	 * while Netdata is slow; never while older lines wait (order).
	 */
	if (!o->flushing && o->pending.len == 0)
		done = write_now(o->fd, data, n);
	if (done < n && buf_append(&o->pending, data + done, n - done) < 0) {
		o->error = -ENOMEM;
		errno = ENOMEM;
		return -1;
	}
	if (!o->flushing)
		drain_some(o);
	return (ssize_t)n;
}

int output_open(struct output *o, int fd, int wait_fd, const volatile sig_atomic_t *stop)
{
	static const cookie_io_functions_t io = { .write = cookie_write };

	*o = (struct output){ .fd = fd, .wait_fd = wait_fd, .stop = stop };
	o->fd_flags = fcntl(fd, F_GETFL);
	if (o->fd_flags < 0)
		return -errno;
	if (fcntl(fd, F_SETFL, o->fd_flags | O_NONBLOCK) < 0)
		return -errno;
	o->file = fopencookie(o, "w", io);
	if (!o->file) {
		fcntl(fd, F_SETFL, o->fd_flags);
		return -ENOMEM;
	}
	/* stdio's own buffer, then one copy into pending per 64 KiB. */
	setvbuf(o->file, NULL, _IOFBF, 64 * 1024);
	return 0;
}

/* Waits until fd takes more, releasing exited VMs meanwhile. */
static int wait_writable(struct output *o, int wait_fd, void (*on_ready)(void *ctx),
			 void *ctx, const volatile sig_atomic_t *stop)
{
	struct pollfd pfd[2] = {
		{ .fd = o->fd, .events = POLLOUT },
		{ .fd = wait_fd, .events = POLLIN },
	};

	for (;;) {
		if (*stop)
			return -EINTR;
		if (poll(pfd, wait_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[1].revents & POLLIN)
			on_ready(ctx);
		if (pfd[0].revents & (POLLERR | POLLHUP))
			return -EPIPE;
		if (pfd[0].revents & POLLOUT)
			return 0;
	}
}

int output_flush(struct output *o, void (*on_ready)(void *ctx), void *ctx,
		 const volatile sig_atomic_t *stop)
{
	const int wait_fd = o->wait_fd;
	struct output_buf swap;
	size_t off = 0;
	int r = 0;

	if (fflush(o->file) != 0 || o->error < 0)
		return o->error < 0 ? o->error : -EIO;
	/* What on_ready() writes while we wait goes into the other buffer. */
	swap = o->sending;
	o->sending = o->pending;
	o->pending = swap;
	o->pending.len = 0;
	o->flushing = true;

	while (off < o->sending.len && r == 0) {
		ssize_t n = write(o->fd, o->sending.data + off, o->sending.len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno == EAGAIN)
			r = wait_writable(o, wait_fd, on_ready, ctx, stop);
		else if (n < 0 && errno == EINTR)
			r = *stop ? -EINTR : 0;
		else
			r = n < 0 ? -errno : -EIO;
	}
	o->sending.len = 0;
	o->flushing = false;
	return r;
}

void output_close(struct output *o)
{
	if (o->file) {
		static const volatile sig_atomic_t ending = 1;

		/* What the pipe does not take at once is dropped, never waited for. */
		o->stop = &ending;
		fclose(o->file);
		fcntl(o->fd, F_SETFL, o->fd_flags);
	}
	free(o->pending.data);
	free(o->sending.data);
	*o = (struct output){ .fd = -1 };
}
