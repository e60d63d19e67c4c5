/* SPDX-License-Identifier: MIT */
/*
 * util.c: small helpers the core's modules share (see util.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

static ssize_t read_until(int fd, char *buf, size_t size, bool line)
{
	size_t len = 0;

	while (len < size && !(line && len > 0 && buf[len - 1] == '\n')) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	return (ssize_t)len;
}

ssize_t util_read_upto(int fd, char *buf, size_t size)
{
	return read_until(fd, buf, size, false);
}

ssize_t util_read_line(int fd, char *buf, size_t size)
{
	return read_until(fd, buf, size, true);
}

bool util_parse_ulong(const char *s, char stop, unsigned long min,
		      unsigned long max, unsigned long *ret, const char **ret_end)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != stop || v < min || v > max)
		return false;
	*ret = v;
	*ret_end = end;
	return true;
}
