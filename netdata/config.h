/* SPDX-License-Identifier: MIT */
/*
 * config.h: the settings of kvm_stats.plugin, read from kvm_stats.conf
 * (section [kvm_stats], inih syntax: "name = value" lines, indented or
 * not, as in Netdata's netdata.conf; a line never continues the setting
 * above it: one that is no setting, section or comment is refused). Pure:
 * no globals, no output; only the file variant opens a file.
 */
#ifndef KVM_STATS_CONFIG_H
#define KVM_STATS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "filter.h"

#define PLUGIN_CONFIG_MAX_QMP 64

struct plugin_config {
	int update_every;
	int rescan_every;
	bool per_vcpu;
	bool histograms;
	bool vcpu_histograms;
	bool vcpu_groups[CATALOG_NGROUPS];
	bool groups[CATALOG_NGROUPS];	/* "groups": the VM charts */
	bool groups_set;		/* "groups" was given */
	struct filter *stats;	/* NULL: every stat */
	struct filter *vms;	/* NULL: every VM */
	bool zero_dims;		/* "zero dimensions": chart stats still at zero */
	bool cpu_charts;	/* "cpu charts": vCPU threads' run and wait (schedstat) */
	bool debugfs;
	int debugfs_every;	/* seconds between debugfs reads */
	char *qmp[PLUGIN_CONFIG_MAX_QMP];	/* "qmp socket" paths or globs */
	size_t nqmp;
	char *libvirt_uri;	/* "libvirt uri"; NULL: off */
};

/*
 * The defaults, with Netdata's update_every. They keep what Netdata stores
 * small (every dimension costs the daemon memory and CPU at every update):
 * VM charts of CONFIG_DEFAULT_GROUPS only, no per-vCPU charts, no
 * histograms, no dimension for a stat still at zero, debugfs read every 10 s.
 */
#define CONFIG_DEFAULT_GROUPS "exits page_faults halt interrupts emulation memory"

void plugin_config_defaults(struct plugin_config *cfg, int update_every);

/* Frees what parsing allocated (filters, QMP paths). Accepts NULL. */
void plugin_config_done(struct plugin_config *cfg);

/*
 * Applies the settings of text over what cfg holds (plugin_config_defaults()
 * first). 0 when every line is good, err untouched. On the first bad line
 * err gets "line N: " and what is wrong, naming the setting, and the result
 * is -EINVAL (a bad value, an unknown setting, a line that is none, one
 * longer than 198 bytes, blanks around it not counted, that is no
 * comment) or -ENOMEM. The lines after
 * it are still applied; cfg keeps them all for plugin_config_done().
 */
int plugin_config_parse_string(const char *text, struct plugin_config *cfg,
			       char *err, size_t errlen);

/*
 * The same for the file at path; err starts "path:N: " instead, and a file
 * that cannot be read is -EIO, one holding a NUL byte -EINVAL. -errno of
 * fopen() when it cannot be opened (-ENOENT: no such file), err untouched.
 */
int plugin_config_parse_file(const char *path, struct plugin_config *cfg,
			     char *err, size_t errlen);

/* Netdata's update_every (argv[1]): 0 and *ret for 1 to 3600, else -EINVAL. */
int plugin_config_update_every(const char *value, int *ret);

/*
 * The groups whose VM charts are drawn: "groups" when given, else every
 * group when "include stat" lists stats (they are charted wherever they
 * are), else CONFIG_DEFAULT_GROUPS. Writes groups[CATALOG_NGROUPS].
 */
void plugin_config_vm_groups(const struct plugin_config *cfg, bool groups[]);

#endif
