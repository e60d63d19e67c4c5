/* SPDX-License-Identifier: MIT */
/*
 * filter.h: include and exclude lists of names, "/regex/" entries (filter.c).
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_FILTER_H
#define KVMSTATS_FILTER_H

#include <stdbool.h>

/*
 * Include and exclude lists of names. An entry written "/regex/" is a POSIX
 * extended regex, any other entry matches exactly. A name passes when the
 * include list is empty or one include entry matches it, and no exclude
 * entry matches it. collectd's IgnoreSelected false puts the entries in the
 * include list, IgnoreSelected true in the exclude list.
 */
struct filter;

int filter_new(struct filter **ret_filter);
void filter_free(struct filter *f);	/* accepts NULL */

/*
 * -EINVAL: empty entry, a regex that does not compile, or one whose compiled
 * form would be too large (glibc's regcomp() can take gigabytes). -ENOMEM.
 */
int filter_add(struct filter *f, const char *entry, bool exclude);

/* 1 when name passes, 0 when it is filtered out. NULL f passes all. */
int filter_match(const struct filter *f, const char *name);

/* 1 when the filter has no entries. */
int filter_empty(const struct filter *f);

/* 1 when it has include entries (only what they match passes), else 0. */
int filter_has_includes(const struct filter *f);

#endif
