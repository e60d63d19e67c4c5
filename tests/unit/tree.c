/* SPDX-License-Identifier: MIT */
/*
 * tree.c: scratch directory trees for unit tests (see tree.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tree.h"

int tree_setup(void **state, const char *name)
{
	struct tree *t = calloc(1, sizeof(*t));
	int n;

	if (!t)
		return -1;
	n = snprintf(t->root, sizeof(t->root), "/tmp/kvmstats-%s-XXXXXX", name);
	if (n < 0 || (size_t)n >= sizeof(t->root) || !mkdtemp(t->root)) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type,
			struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

int tree_teardown(void **state)
{
	struct tree *t = *state;
	int r;

	r = nftw(t->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return r;
}

void tree_path(const struct tree *t, char *buf, size_t size, const char *fmt, ...)
{
	char rel[PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(rel));
	n = snprintf(buf, size, "%s/%s", t->root, rel);
	assert_true(n > 0 && (size_t)n < size);
}

void tree_write(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

unsigned tree_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}
