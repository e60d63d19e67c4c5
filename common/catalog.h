/* SPDX-License-Identifier: MIT */
/*
 * catalog.h: stat name -> group, unit, kvmstat column (catalog.c): shared by every
 * front end.
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_CATALOG_H
#define KVMSTATS_CATALOG_H

#include <stddef.h>
#include "decode.h"

enum catalog_group {
	CATALOG_EXITS,
	CATALOG_PAGE_FAULTS,
	CATALOG_MMU,
	CATALOG_TLB,
	CATALOG_HALT,
	CATALOG_INTERRUPTS,
	CATALOG_EMULATION,
	CATALOG_MEMORY,
	CATALOG_NESTED,
	CATALOG_PREEMPTION,
	CATALOG_OTHER,
	CATALOG_NGROUPS
};

/* By rules on the name, so unknown arm64/ppc64/future stats land sensibly. */
enum catalog_group catalog_group_of(const char *stat_name);
/* "exits", "page_faults", ...: stable, used in chart ids and identifiers. */
const char *catalog_group_name(enum catalog_group g);
/* "VM exits", "Page faults", ...: for titles. */
const char *catalog_group_title(enum catalog_group g);
/* "exits/s", "faults/s", ...: the unit of the group's counters as a rate. */
const char *catalog_group_units(enum catalog_group g);

/* A kvmstat(1) column and the stat names that may fill it, best first. */
struct catalog_column {
	const char *heading;		/* "exits", "haltx", ... */
	const char *const *stats;	/* NULL-terminated candidates */
	const char *help;
};

extern const struct catalog_column catalog_kvmstat_columns[];
extern const size_t catalog_kvmstat_ncolumns;

/*
 * Index of the first candidate of column that schema has, or -ENOENT when
 * this kernel has none of them (kvmstat prints "-").
 */
int catalog_column_find(const struct catalog_column *column,
			const struct kvmstats_schema *schema);

#endif
