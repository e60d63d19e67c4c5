/* SPDX-License-Identifier: MIT */
/*
 * util.h: small helpers the core's modules share. Internal: front ends
 * include kvmstats.h only.
 */
#ifndef KVMSTATS_UTIL_H
#define KVMSTATS_UTIL_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Reads fd until EOF or until size bytes, retrying EINTR. For /proc and
 * debugfs text files, which hand out their content in pieces, so a short
 * read is no error here (unlike on a stats fd: statsfd.c). Returns the byte
 * count, or -errno.
 */
ssize_t util_read_upto(int fd, char *buf, size_t size);

/* As util_read_upto(), but also done once the bytes read end in '\n'. */
ssize_t util_read_line(int fd, char *buf, size_t size);

/*
 * A decimal number in [min, max] starting at s and ending at the byte stop
 * (often '\0'): true with *ret and *ret_end (at stop). strtoul() alone
 * would take leading blanks, a '+', "-1" and numbers that overflow.
 */
bool util_parse_ulong(const char *s, char stop, unsigned long min,
		      unsigned long max, unsigned long *ret, const char **ret_end);

#endif
