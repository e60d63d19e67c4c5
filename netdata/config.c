/*
 * config.c: kvm_stats.conf -> struct plugin_config.
 *
 * inih (Debian's libinih) splits the text into sections and "name = value"
 * settings and calls on_setting() for each; this file checks every value,
 * keeps the first bad one for the message, and never prints: the plugin's
 * main() says what is wrong, because only it talks to Netdata.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* What one parse carries through inih's handler. */
struct parse_state {
	struct plugin_config *cfg;
	char error[256];	/* the first bad setting, for the message */
};

static int parse_bool(const char *v, bool *ret)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcmp(v, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_int(const char *v, long min, long max, int *ret)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
		return -EINVAL;
	*ret = (int)n;
	return 0;
}

/* "exits halt", or "all": the groups that get per-vCPU charts. */
static int parse_groups(const char *v, bool groups[CATALOG_NGROUPS])
{
	char buf[512], *save = NULL;

	if (strlen(v) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, v);
	memset(groups, 0, CATALOG_NGROUPS * sizeof(bool));
	for (char *w = strtok_r(buf, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
		bool found = false;

		for (int g = 0; g < CATALOG_NGROUPS; g++) {
			if (strcmp(w, "all") == 0 || strcmp(w, catalog_group_name(g)) == 0) {
				groups[g] = true;
				found = true;
			}
		}
		if (!found)
			return -EINVAL;
	}
	return 0;
}

static int add_entry(struct filter **f, const char *value, bool exclude)
{
	int r;

	if (!*f) {
		r = filter_new(f);
		if (r < 0)
			return r;
	}
	return filter_add(*f, value, exclude);
}

static int add_qmp(struct plugin_config *cfg, const char *value)
{
	if (cfg->nqmp >= PLUGIN_CONFIG_MAX_QMP || !*value)
		return -EINVAL;
	cfg->qmp[cfg->nqmp] = strdup(value);
	if (!cfg->qmp[cfg->nqmp])
		return -EINVAL;
	cfg->nqmp++;
	return 0;
}

/* One setting of [kvm_stats]: 0, -EINVAL for a bad value, -ENOENT unknown. */
static int apply(struct plugin_config *cfg, const char *name, const char *value)
{
	if (strcmp(name, "update every") == 0)
		return parse_int(value, 1, 3600, &cfg->update_every);
	if (strcmp(name, "rescan every") == 0)
		return parse_int(value, 1, 86400, &cfg->rescan_every);
	if (strcmp(name, "per vcpu charts") == 0)
		return parse_bool(value, &cfg->per_vcpu);
	if (strcmp(name, "per vcpu groups") == 0)
		return parse_groups(value, cfg->vcpu_groups);
	if (strcmp(name, "histograms") == 0)
		return parse_bool(value, &cfg->histograms);
	if (strcmp(name, "per vcpu histograms") == 0)
		return parse_bool(value, &cfg->vcpu_histograms);
	if (strcmp(name, "include stat") == 0 || strcmp(name, "exclude stat") == 0)
		return add_entry(&cfg->stats, value, name[0] == 'e');
	if (strcmp(name, "include vm") == 0 || strcmp(name, "exclude vm") == 0)
		return add_entry(&cfg->vms, value, name[0] == 'e');
	if (strcmp(name, "debugfs") == 0)
		return parse_bool(value, &cfg->debugfs);
	if (strcmp(name, "qmp socket") == 0)
		return add_qmp(cfg, value);
	return -ENOENT;
}

/* inih's handler: 1 when the setting is good, 0 when not. */
static int on_setting(void *user, const char *section, const char *name,
		      const char *value)
{
	struct parse_state *st = user;
	int r = strcmp(section, "kvm_stats") == 0 ? apply(st->cfg, name, value) : -ENOENT;

	if (r < 0 && st->error[0] == '\0')
		snprintf(st->error, sizeof(st->error),
			 r == -ENOENT ? "unknown setting '%s' in [%s]" :
					"bad value for '%s' in [%s]: '%s'",
			 name, section, value);
	return r >= 0;
}

/*
 * inih's result (0, the first bad line, -2 out of memory) as 0 or -errno,
 * with the message in err: "path:N: ..." for a file, "line N: ..." for text.
 */
static int finish(const struct parse_state *st, int line, const char *path,
		  char *err, size_t errlen)
{
	const char *what = line > 0 && st->error[0] ? st->error : "cannot be read";

	if (line == 0)
		return 0;
	if (path)
		snprintf(err, errlen, "%s:%d: %s", path, line, what);
	else
		snprintf(err, errlen, "line %d: %s", line, what);
	return line == -2 ? -ENOMEM : -EINVAL;
}

void plugin_config_defaults(struct plugin_config *cfg, int update_every)
{
	*cfg = (struct plugin_config){
		.update_every = update_every,
		.rescan_every = 10,
		.per_vcpu = true,
		.histograms = true,
		.debugfs = true,
	};
	cfg->vcpu_groups[CATALOG_EXITS] = true;
	cfg->vcpu_groups[CATALOG_HALT] = true;
}

void plugin_config_done(struct plugin_config *cfg)
{
	if (!cfg)
		return;
	filter_free(cfg->stats);
	filter_free(cfg->vms);
	cfg->stats = cfg->vms = NULL;
	for (size_t i = 0; i < cfg->nqmp; i++)
		free(cfg->qmp[i]);
	cfg->nqmp = 0;
}

int plugin_config_parse_string(const char *text, struct plugin_config *cfg,
			       char *err, size_t errlen)
{
	struct parse_state st = { .cfg = cfg };

	return finish(&st, ini_parse_string(text, on_setting, &st), NULL, err, errlen);
}

int plugin_config_parse_file(const char *path, struct plugin_config *cfg,
			     char *err, size_t errlen)
{
	struct parse_state st = { .cfg = cfg };
	FILE *f = fopen(path, "re");
	int line;

	if (!f)
		return -errno;
	line = ini_parse_file(f, on_setting, &st);
	fclose(f);
	return finish(&st, line, path, err, errlen);
}

int plugin_config_update_every(const char *value, int *ret)
{
	return parse_int(value, 1, 3600, ret);
}
