/* SPDX-License-Identifier: MIT */
/*
 * config.c: kvm_stats.conf -> struct plugin_config.
 *
 * inih (Debian's libinih) splits the text into sections and "name = value"
 * settings and calls on_setting() for each; this file hands it the lines
 * (read_line(), which takes the blanks a line starts with, so that inih
 * never continues a setting on the next line), checks every value, keeps
 * the first error with its line for the message, and never prints: the
 * plugin's main() says what is wrong, because only it talks to Netdata.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/*
 * What one parse carries through inih. inih reads lines through
 * read_line(), so this file knows which line inih is on: a message names
 * the line it is about, even when inih's own count would not (inih reports
 * only its first bad line).
 */
struct parse_state {
	struct plugin_config *cfg;
	const char *text;	/* the text variant: what is left of it */
	FILE *file;		/* the file variant */
	char *buf;		/* getline()'s buffer for the file */
	size_t bufsize;
	int line;		/* the line inih has, from 1 */
	int error_line;		/* the first line with an error, 0 none */
	int error;		/* its -errno: -EINVAL, -ENOMEM, -EIO */
	char message[1024];	/* and what is wrong with it */
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
		return -ENOMEM;
	cfg->nqmp++;
	return 0;
}

/* One setting of [kvm_stats]: 0, -EINVAL for a bad value, -ENOENT unknown, -ENOMEM. */
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
	if (strcmp(name, "groups") == 0) {
		cfg->groups_set = true;
		return parse_groups(value, cfg->groups);
	}
	if (strcmp(name, "zero dimensions") == 0)
		return parse_bool(value, &cfg->zero_dims);
	if (strcmp(name, "cpu charts") == 0)
		return parse_bool(value, &cfg->cpu_charts);
	if (strcmp(name, "debugfs every") == 0)
		return parse_int(value, 1, 86400, &cfg->debugfs_every);
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
	if (strcmp(name, "libvirt uri") == 0) {
		/* "no" or empty: off (the default); any other value is the URI. */
		free(cfg->libvirt_uri);
		cfg->libvirt_uri = NULL;
		if (!*value || strcmp(value, "no") == 0)
			return 0;
		cfg->libvirt_uri = strdup(value);
		return cfg->libvirt_uri ? 0 : -ENOMEM;
	}
	return -ENOENT;
}

/*
 * Records the first error: its line, -errno and message. Control bytes of
 * the message (from the text) become '?': it is printed as one log line.
 */
__attribute__((format(printf, 3, 4)))
static void fail(struct parse_state *st, int error, const char *fmt, ...)
{
	va_list ap;

	if (st->error_line != 0)
		return;
	st->error_line = st->line;
	st->error = error;
	va_start(ap, fmt);
	vsnprintf(st->message, sizeof(st->message), fmt, ap);
	va_end(ap);
	for (char *c = st->message; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	}
}

/* inih's handler: 1 when the setting is good, 0 when not. */
static int on_setting(void *user, const char *section, const char *name,
		      const char *value)
{
	struct parse_state *st = user;
	int r = strcmp(section, "kvm_stats") == 0 ? apply(st->cfg, name, value) : -ENOENT;

	if (r == -ENOENT)
		fail(st, -EINVAL, "unknown setting '%s' in [%s]", name, section);
	else if (r == -ENOMEM)
		fail(st, -ENOMEM, "out of memory for '%s'", name);
	else if (r < 0)
		fail(st, -EINVAL, "bad value for '%s' in [%s]: '%s'", name, section, value);
	return r >= 0;
}

/* The next line of the text or file without its '\n' (*ret_len bytes), or NULL at the end. */
static const char *next_line(struct parse_state *st, size_t *ret_len)
{
	const char *p = st->text, *nl;
	ssize_t n;

	if (!st->file) {
		if (*p == '\0')
			return NULL;
		nl = strchr(p, '\n');
		*ret_len = nl ? (size_t)(nl - p) : strlen(p);
		st->text = nl ? nl + 1 : p + *ret_len;
		return p;
	}
	n = getline(&st->buf, &st->bufsize, st->file);
	if (n < 0) {
		if (ferror(st->file)) {
			int e = errno ? errno : EIO;

			st->line++;
			fail(st, e == ENOMEM ? -ENOMEM : -EIO, "cannot be read: %s", strerror(e));
		}
		return NULL;
	}
	*ret_len = (size_t)n - (n > 0 && st->buf[n - 1] == '\n');
	return st->buf;
}

/* A comment line: ';' or '#' first (read_line() took the blanks before it). */
static bool is_comment(const char *p, size_t len)
{
	return len > 0 && (*p == ';' || *p == '#');
}

/*
 * inih's reader: one whole line per call, the way fgets() hands it one
 * that fits: the line's bytes, then '\n', in inih's buffer of size bytes.
 * Taken off first: the blanks the line starts with (and, on line 1, the
 * UTF-8 BOMs inih would skip) and the blanks it ends with (inih strips
 * those itself).
 *
 * The blanks it starts with: inih reads a line that starts with a blank
 * as the continuation of the setting above it (its multi-line mode, on in
 * Debian's libinih), even when it holds "name = value": indented the way
 * Netdata's own netdata.conf is, "include vm = web1" under "qmp socket = X"
 * became a second QMP socket path. Given no leading blank, inih sees each
 * line for what it is: a setting, a section, a comment, a blank line, or
 * a line that is none of these, refused with its number.
 *
 * The '\n': what inih does with a full buffer that has none changed
 * between the versions Debian ships. libinih 55 (Debian 12) reads the rest
 * of the line as a line of its own; 59 (Debian 13) and 61 read input up to
 * the next '\n' in 16-byte pieces and count the line as an error (and
 * read the byte before their 16-byte buffer when a reader hands them an
 * empty piece). A line that
 * ends in '\n' and fits never reaches either, so every version sees one
 * line per call and counts lines as this file does: at most size - 2
 * bytes (198 with Debian's 200-byte buffer). A longer comment is cut to
 * that; any other longer line, or one holding a NUL byte (which would end
 * it early for inih), is refused, and inih is handed a blank line instead.
 */
static char *read_line(char *str, int size, void *stream)
{
	struct parse_state *st = stream;
	size_t len = 0, max;
	const char *p = next_line(st, &len);

	if (!p)
		return NULL;
	st->line++;
	if (size < 2) {
		/* No room for a line and its '\n': no inih calls it so. */
		fail(st, -EINVAL, "cannot be read: inih's buffer holds %d bytes", size);
		return NULL;
	}
	max = (size_t)size - 2;
	/*
	 * Line 1 may also start with UTF-8 BOMs, before or among the blanks:
	 * inih skips one at the start of what it is given, which would be a
	 * BOM that stood after blanks in the file.
	 */
	while (len > 0) {
		size_t skip = isspace((unsigned char)*p) ? 1 : 0;

		if (st->line == 1 && len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
			skip = 3;
		if (skip == 0)
			break;
		p += skip;
		len -= skip;
	}
	while (len > 0 && isspace((unsigned char)p[len - 1]))
		len--;
	if (memchr(p, '\0', len)) {
		fail(st, -EINVAL, "holds a NUL byte");
		len = 0;
	} else if (len > max && is_comment(p, len)) {
		len = max;
	} else if (len > max) {
		fail(st, -EINVAL, "longer than %zu bytes", max);
		len = 0;
	}
	memcpy(str, p, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/*
 * Runs inih over the text or file of st: 0, or the first error as -errno
 * with the message in err, "path:N: ..." for a file, "line N: ..." for text.
 * inih's result is 0, its first bad line, or -2 out of memory: a bad line
 * before the first st knows of is one inih could not split (no '=' or ':',
 * no ']').
 */
static int parse(struct parse_state *st, const char *path, char *err, size_t errlen)
{
	int line = ini_parse_stream(read_line, st, on_setting, st);

	if (line == -2) {
		st->error_line = 0;
		st->line = st->line > 0 ? st->line : 1;	/* 0 would read as no error */
		fail(st, -ENOMEM, "out of memory");
	} else if (line > 0 && (st->error_line == 0 || line < st->error_line)) {
		st->error_line = 0;
		st->line = line;
		fail(st, -EINVAL, "not a 'name = value' setting or a '[section]'");
	}
	if (st->error_line == 0)
		return 0;
	if (path)
		snprintf(err, errlen, "%s:%d: %s", path, st->error_line, st->message);
	else
		snprintf(err, errlen, "line %d: %s", st->error_line, st->message);
	return st->error;
}

void plugin_config_defaults(struct plugin_config *cfg, int update_every)
{
	*cfg = (struct plugin_config){
		.update_every = update_every,
		.rescan_every = 10,
		.per_vcpu = false,
		.histograms = false,
		.debugfs = true,
		.debugfs_every = 10,
		.cpu_charts = true,
	};
	cfg->vcpu_groups[CATALOG_EXITS] = true;
	cfg->vcpu_groups[CATALOG_HALT] = true;
	parse_groups(CONFIG_DEFAULT_GROUPS, cfg->groups);
}

void plugin_config_vm_groups(const struct plugin_config *cfg, bool groups[])
{
	bool all = !cfg->groups_set && filter_has_includes(cfg->stats) == 1;

	for (int g = 0; g < CATALOG_NGROUPS; g++)
		groups[g] = all || cfg->groups[g];
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
	free(cfg->libvirt_uri);
	cfg->libvirt_uri = NULL;
}

int plugin_config_parse_string(const char *text, struct plugin_config *cfg,
			       char *err, size_t errlen)
{
	struct parse_state st = { .cfg = cfg, .text = text };

	return parse(&st, NULL, err, errlen);
}

int plugin_config_parse_file(const char *path, struct plugin_config *cfg,
			     char *err, size_t errlen)
{
	struct parse_state st = { .cfg = cfg };
	int r;

	st.file = fopen(path, "re");
	if (!st.file)
		return -errno;
	r = parse(&st, path, err, errlen);
	free(st.buf);
	fclose(st.file);
	return r;
}

int plugin_config_update_every(const char *value, int *ret)
{
	return parse_int(value, 1, 3600, ret);
}
