/* SPDX-License-Identifier: MIT */
/*
 * tree.h: scratch directory trees for unit tests (fake /proc, debugfs):
 * made under /tmp with mkdtemp(), removed with nftw(), never system().
 */
#ifndef KVMSTATS_TEST_TREE_H
#define KVMSTATS_TEST_TREE_H

#include <stddef.h>

struct tree {
	char root[64];
};

/* cmocka setup: *state = a new tree at /tmp/kvmstats-<name>-XXXXXX. */
int tree_setup(void **state, const char *name);
/* cmocka teardown: removes the tree and frees it. */
int tree_teardown(void **state);

/* root/<fmt...> into buf; fails the test if it does not fit. */
__attribute__((format(printf, 4, 5)))
void tree_path(const struct tree *t, char *buf, size_t size, const char *fmt, ...);

/*
 * The fds this process has open (the entries of /proc/self/fd, the one
 * the listing holds included): equal before and after a cycle proves
 * nothing leaked.
 */
unsigned tree_count_fds(void);

/* Creates or truncates path with len bytes of data (mode 0644). */
void tree_write(const char *path, const void *data, size_t len);

#endif
