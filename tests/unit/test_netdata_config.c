/* SPDX-License-Identifier: MIT */
/*
 * test_netdata_config.c: unit tests of netdata/config.c, the parser of the
 * Netdata plugin's kvm_stats.conf (README "Settings"): defaults, every
 * setting and value form, every bad value refused with the setting and
 * the line named, unknown settings, indentation (netdata.conf's), and odd
 * or huge input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "../../netdata/config.h"
#include "catalog.h"
#include "filter.h"
#include "tree.h"

#define ERRLEN 512

/* Defaults (update_every 1), then text; the result of the parse. */
static int parse(const char *text, struct plugin_config *cfg, char *err)
{
	plugin_config_defaults(cfg, 1);
	err[0] = '\0';
	return plugin_config_parse_string(text, cfg, err, ERRLEN);
}

/* "[kvm_stats]\n" + line must be refused, the message naming the setting and line 2. */
static void assert_refused(const char *line, const char *setting)
{
	struct plugin_config cfg;
	char text[1024], err[ERRLEN], quoted[128];

	snprintf(text, sizeof(text), "[kvm_stats]\n%s\n", line);
	snprintf(quoted, sizeof(quoted), "'%s'", setting);
	if (parse(text, &cfg, err) != -EINVAL)
		fail_msg("accepted: \"%s\"", line);
	if (strncmp(err, "line 2: ", 8) != 0 || !strstr(err, quoted))
		fail_msg("\"%s\": message \"%s\"", line, err);
	plugin_config_done(&cfg);
}

static void assert_accepted(const char *text, struct plugin_config *cfg)
{
	char err[ERRLEN];

	if (parse(text, cfg, err) != 0)
		fail_msg("refused: %s", err);
}

static void test_defaults(void **state)
{
	struct plugin_config cfg;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(parse("", &cfg, err), 0);
	assert_string_equal(err, "");
	assert_int_equal(cfg.update_every, 1);
	assert_int_equal(cfg.rescan_every, 10);
	/* Small by default: what Netdata stores costs it memory and CPU. */
	assert_false(cfg.per_vcpu);
	assert_false(cfg.histograms);
	assert_false(cfg.vcpu_histograms);
	assert_true(cfg.debugfs);
	assert_int_equal(cfg.debugfs_every, 10);
	assert_false(cfg.zero_dims);
	assert_null(cfg.stats);
	assert_null(cfg.vms);
	assert_int_equal(cfg.nqmp, 0);
	for (int g = 0; g < CATALOG_NGROUPS; g++)
		assert_int_equal(cfg.vcpu_groups[g], g == CATALOG_EXITS || g == CATALOG_HALT);
	{
		bool vm_groups[CATALOG_NGROUPS];

		plugin_config_vm_groups(&cfg, vm_groups);
		for (int g = 0; g < CATALOG_NGROUPS; g++)
			assert_int_equal(vm_groups[g], g == CATALOG_EXITS ||
					 g == CATALOG_PAGE_FAULTS || g == CATALOG_HALT ||
					 g == CATALOG_INTERRUPTS || g == CATALOG_EMULATION ||
					 g == CATALOG_MEMORY);
	}
	plugin_config_done(&cfg);

	plugin_config_defaults(&cfg, 5);
	assert_int_equal(cfg.update_every, 5);
	plugin_config_done(&cfg);
	plugin_config_done(NULL);
}

/* The stock file: every setting commented out, the defaults. */
static void test_stock_file(void **state)
{
	struct plugin_config cfg, def;
	char path[4096], err[ERRLEN];

	(void)state;
	snprintf(path, sizeof(path), "%s/../../conf/netdata/kvm_stats.conf",
		 getenv("KVMSTATS_FIXTURES") ?: "tests/fixtures");
	plugin_config_defaults(&def, 1);
	plugin_config_defaults(&cfg, 1);
	if (plugin_config_parse_file(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
	assert_int_equal(cfg.update_every, def.update_every);
	assert_int_equal(cfg.rescan_every, def.rescan_every);
	assert_int_equal(cfg.per_vcpu, def.per_vcpu);
	assert_int_equal(cfg.histograms, def.histograms);
	assert_int_equal(cfg.vcpu_histograms, def.vcpu_histograms);
	assert_memory_equal(cfg.vcpu_groups, def.vcpu_groups, sizeof(cfg.vcpu_groups));
	assert_memory_equal(cfg.groups, def.groups, sizeof(cfg.groups));
	assert_false(cfg.groups_set);
	assert_null(cfg.stats);
	assert_null(cfg.vms);
	assert_int_equal(cfg.debugfs, def.debugfs);
	assert_int_equal(cfg.debugfs_every, def.debugfs_every);
	assert_int_equal(cfg.nqmp, 0);
	plugin_config_done(&cfg);
}

static void test_every_setting(void **state)
{
	struct plugin_config cfg;

	(void)state;
	assert_accepted("[kvm_stats]\n"
			"update every = 5\n"
			"rescan every = 60\n"
			"per vcpu charts = no\n"
			"per vcpu groups = mmu tlb\n"
			"groups = nested other\n"
			"debugfs every = 1\n"
			"zero dimensions = yes\n"
			"histograms = no\n"
			"per vcpu histograms = yes\n"
			"include stat = /_exits$/\n"
			"exclude stat = halt_exits\n"
			"include vm = /^prod-/\n"
			"exclude vm = prod-scratch\n"
			"debugfs = no\n"
			"qmp socket = /var/run/qemu-server/*.qmp\n"
			"qmp socket = /run/one.qmp\n", &cfg);
	assert_int_equal(cfg.update_every, 5);
	assert_int_equal(cfg.rescan_every, 60);
	assert_false(cfg.per_vcpu);
	for (int g = 0; g < CATALOG_NGROUPS; g++)
		assert_int_equal(cfg.vcpu_groups[g], g == CATALOG_MMU || g == CATALOG_TLB);
	for (int g = 0; g < CATALOG_NGROUPS; g++)
		assert_int_equal(cfg.groups[g], g == CATALOG_NESTED || g == CATALOG_OTHER);
	assert_int_equal(cfg.debugfs_every, 1);
	assert_true(cfg.zero_dims);
	assert_false(cfg.histograms);
	assert_true(cfg.vcpu_histograms);
	assert_int_equal(filter_match(cfg.stats, "mmio_exits"), 1);
	assert_int_equal(filter_match(cfg.stats, "halt_exits"), 0);
	assert_int_equal(filter_match(cfg.stats, "pf_taken"), 0);
	assert_int_equal(filter_match(cfg.vms, "prod-web"), 1);
	assert_int_equal(filter_match(cfg.vms, "prod-scratch"), 0);
	assert_int_equal(filter_match(cfg.vms, "test-web"), 0);
	assert_false(cfg.debugfs);
	assert_int_equal(cfg.nqmp, 2);
	assert_string_equal(cfg.qmp[0], "/var/run/qemu-server/*.qmp");
	assert_string_equal(cfg.qmp[1], "/run/one.qmp");
	plugin_config_done(&cfg);
	assert_null(cfg.stats);
	assert_int_equal(cfg.nqmp, 0);
}

static void test_bool_spellings(void **state)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	struct plugin_config cfg;
	char text[256];

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "[kvm_stats]\nper vcpu charts = %s\n"
			 "histograms = %s\nper vcpu histograms = %s\ndebugfs = %s\n",
			 no[i], no[i], yes[i], no[i]);
		assert_accepted(text, &cfg);
		assert_false(cfg.per_vcpu);
		assert_false(cfg.histograms);
		assert_true(cfg.vcpu_histograms);
		assert_false(cfg.debugfs);
		plugin_config_done(&cfg);
	}
}

static void test_int_bounds(void **state)
{
	struct plugin_config cfg;

	(void)state;
	assert_accepted("[kvm_stats]\nupdate every = 1\nrescan every = 1\n", &cfg);
	assert_int_equal(cfg.update_every, 1);
	assert_int_equal(cfg.rescan_every, 1);
	plugin_config_done(&cfg);
	assert_accepted("[kvm_stats]\nupdate every = 3600\nrescan every = 86400\n", &cfg);
	assert_int_equal(cfg.update_every, 3600);
	assert_int_equal(cfg.rescan_every, 86400);
	plugin_config_done(&cfg);
}

static void test_groups(void **state)
{
	struct plugin_config cfg;

	(void)state;
	assert_accepted("[kvm_stats]\nper vcpu groups = all\n", &cfg);
	for (int g = 0; g < CATALOG_NGROUPS; g++)
		assert_true(cfg.vcpu_groups[g]);
	/* Blanks, tabs and commas separate; the last setting wins. */
	assert_accepted("[kvm_stats]\nper vcpu groups = all\n"
			"per vcpu groups = exits,\tpage_faults  other\n", &cfg);
	for (int g = 0; g < CATALOG_NGROUPS; g++)
		assert_int_equal(cfg.vcpu_groups[g], g == CATALOG_EXITS ||
				 g == CATALOG_PAGE_FAULTS || g == CATALOG_OTHER);
	/* Empty: no group gets per-vCPU charts. */
	assert_accepted("[kvm_stats]\nper vcpu groups =\n", &cfg);
	for (int g = 0; g < CATALOG_NGROUPS; g++)
		assert_false(cfg.vcpu_groups[g]);
	/* Every group by its name. */
	for (int g = 0; g < CATALOG_NGROUPS; g++) {
		char text[128];

		snprintf(text, sizeof(text), "[kvm_stats]\nper vcpu groups = %s\n",
			 catalog_group_name(g));
		assert_accepted(text, &cfg);
		for (int h = 0; h < CATALOG_NGROUPS; h++)
			assert_int_equal(cfg.vcpu_groups[h], h == g);
	}
}

static void test_bad_values(void **state)
{
	static const char *const bad[][2] = {
		{ "update every = 0", "update every" },
		{ "update every = 3601", "update every" },
		{ "update every = -1", "update every" },
		{ "update every = 1s", "update every" },
		{ "update every = 0x10", "update every" },
		{ "update every = 99999999999999999999", "update every" },
		{ "update every =", "update every" },
		{ "rescan every = 0", "rescan every" },
		{ "rescan every = 86401", "rescan every" },
		{ "rescan every = ten", "rescan every" },
		{ "per vcpu charts = maybe", "per vcpu charts" },
		{ "per vcpu charts = YES", "per vcpu charts" },
		{ "per vcpu charts =", "per vcpu charts" },
		{ "per vcpu groups = exits bogus", "per vcpu groups" },
		{ "per vcpu groups = Exits", "per vcpu groups" },
		{ "histograms = 2", "histograms" },
		{ "per vcpu histograms = nope", "per vcpu histograms" },
		{ "include stat = /(/", "include stat" },
		{ "include stat = /", "include stat" },
		{ "include stat =", "include stat" },
		{ "exclude stat = //", "exclude stat" },
		{ "include vm = /[z-a]/", "include vm" },
		{ "exclude vm = /a++++++++++++++++++++++/", "exclude vm" },
		{ "exclude vm =", "exclude vm" },
		{ "debugfs = sometimes", "debugfs" },
		{ "qmp socket =", "qmp socket" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(bad[i][0], bad[i][1]);
}

/* The message quotes the setting, the section and the value. */
static void test_bad_value_message(void **state)
{
	struct plugin_config cfg;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(parse("[kvm_stats]\n# comment\n\nhistograms = maybe\n", &cfg, err),
			 -EINVAL);
	assert_string_equal(err, "line 4: bad value for 'histograms' in [kvm_stats]: 'maybe'");
	plugin_config_done(&cfg);
}

static void test_unknown_settings(void **state)
{
	struct plugin_config cfg;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(parse("[kvm_stats]\ncolour = blue\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 2: unknown setting 'colour' in [kvm_stats]");
	plugin_config_done(&cfg);
	/* Names are exact: no case folding, no abbreviation. */
	assert_refused("Histograms = yes", "Histograms");
	assert_refused("histogram = yes", "histogram");
	assert_refused("include stats = exits", "include stats");
	/* A known setting in another section is unknown there. */
	assert_int_equal(parse("[global]\nupdate every = 5\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 2: unknown setting 'update every' in [global]");
	plugin_config_done(&cfg);
	/* ... and so is one before any section. */
	assert_int_equal(parse("update every = 5\n[kvm_stats]\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 1: unknown setting 'update every' in []");
	plugin_config_done(&cfg);
}

/* The first bad line is the one named; the others are still read. */
static void test_first_error_named(void **state)
{
	struct plugin_config cfg;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(parse("[kvm_stats]\nhistograms = no\ndebugfs = 2\n"
			       "colour = blue\nupdate every = 0\nrescan every = 7\n",
			       &cfg, err), -EINVAL);
	assert_string_equal(err, "line 3: bad value for 'debugfs' in [kvm_stats]: '2'");
	assert_false(cfg.histograms);
	assert_int_equal(cfg.rescan_every, 7);
	plugin_config_done(&cfg);
}

/*
 * A line inih cannot split is named as such, and the line named is always
 * the first bad one, whatever kind: inih reports only its first bad line,
 * which is not the one the first bad value was on when a syntax error came
 * first (fuzz_netdata_config-syntax-error-then-*).
 */
static void test_syntax_errors(void **state)
{
	struct plugin_config cfg;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(parse("[kvm_stats]\nhistograms\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 2: not a 'name = value' setting or a '[section]'");
	plugin_config_done(&cfg);
	assert_int_equal(parse("[kvm_stats\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 1: not a 'name = value' setting or a '[section]'");
	plugin_config_done(&cfg);
	assert_int_equal(parse("[kvm_stats]\nx\ndebugfs=2\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 2: not a 'name = value' setting or a '[section]'");
	plugin_config_done(&cfg);
	assert_int_equal(parse("x\na=b\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 1: not a 'name = value' setting or a '[section]'");
	plugin_config_done(&cfg);
	assert_int_equal(parse("[kvm_stats]\ndebugfs=2\nx\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 2: bad value for 'debugfs' in [kvm_stats]: '2'");
	plugin_config_done(&cfg);
}

/*
 * Parses text as a string and as the file at path: the same result and
 * message in both (the file's after "path:" instead of "line "), and
 * check() holds for the settings of each. want_err NULL: accepted.
 */
static void parse_both(const struct tree *t, const char *text, int want, const char *want_err,
		       void (*check)(const struct plugin_config *cfg))
{
	struct plugin_config cfg;
	char path[256], err[ERRLEN], want_file[ERRLEN];

	if (parse(text, &cfg, err) != want)
		fail_msg("string: %d, not %d: %s", parse(text, &cfg, err), want, err);
	assert_string_equal(err, want_err ? want_err : "");
	check(&cfg);
	plugin_config_done(&cfg);

	tree_path(t, path, sizeof(path), "kvm_stats.conf");
	tree_write(path, text, strlen(text));
	plugin_config_defaults(&cfg, 1);
	err[0] = '\0';
	assert_int_equal(plugin_config_parse_file(path, &cfg, err, sizeof(err)), want);
	if (want_err)
		snprintf(want_file, sizeof(want_file), "%s:%s", path, want_err + strlen("line "));
	else
		want_file[0] = '\0';
	assert_string_equal(err, want_file);
	check(&cfg);
	plugin_config_done(&cfg);
}

/* n bytes of c, NUL-terminated, in buf of size bytes. */
static char *fill(char *buf, size_t size, char c, size_t n)
{
	assert_true(n < size);
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* A VM name of 185 bytes: "include vm = " and it make a 198-byte line. */
#define NAME198 185

static void check_after_comment(const struct plugin_config *cfg)
{
	assert_true(cfg->debugfs);	/* the comment's tail is no setting */
	assert_true(cfg->histograms);	/* the line after it is applied */
	assert_int_equal(cfg->rescan_every, 30);
}

static void check_198(const struct plugin_config *cfg)
{
	char name[NAME198 + 2];

	fill(name, sizeof(name), 'v', NAME198);
	assert_int_equal(filter_match(cfg->vms, name), 1);
	assert_int_equal(filter_match(cfg->vms, "web1"), 0);
	assert_int_equal(cfg->rescan_every, 30);
}

static void check_199(const struct plugin_config *cfg)
{
	assert_null(cfg->vms);			/* the long line: nothing of it */
	assert_int_equal(cfg->rescan_every, 30);	/* the lines after it: applied */
	assert_true(cfg->histograms);
}

static void check_nothing(const struct plugin_config *cfg)
{
	(void)cfg;
}

static void check_qmp(const struct plugin_config *cfg)
{
	assert_int_equal(cfg->nqmp, 0);
	assert_int_equal(cfg->rescan_every, 30);
}

/*
 * Lines near and past inih's 200-byte buffer (a long comment's tail once
 * became a setting: fuzz_netdata_config-long-line-split), with every libinih Debian
 * ships (tests/test_inih_versions.py runs this test with 55, 59 and 61,
 * which treat a full buffer in two different ways): a comment of any
 * length is a comment, a setting of 198 bytes (the blanks around it not
 * counted) is applied, one of 199 is refused with its line, and the
 * lines after either are read as what they are.
 */
static void test_long_lines(void **state)
{
	const struct tree *t = *state;
	char text[8192], want[ERRLEN], c250[251], c199[200], name[NAME198 + 2], big[3001];

	/* A 250-byte comment ending in what would be a setting; a 199-byte one. */
	fill(c250, sizeof(c250), 'y', 250);
	memcpy(c250, "# ", 2);
	memcpy(c250 + 250 - 12, "debugfs = no", 12);
	fill(c199, sizeof(c199), 'z', 199);
	memcpy(c199, "; ", 2);
	memcpy(c199 + 199 - 12, "debugfs = no", 12);
	snprintf(text, sizeof(text), "[kvm_stats]\n%s\nhistograms = yes\n%s\n\t%s  \nrescan every = 30\n",
		 c250, c199, c250);
	assert_int_equal(strlen(c250), 250);
	parse_both(t, text, 0, NULL, check_after_comment);

	/* A 198-byte setting: applied, bare, indented or with blanks after it. */
	fill(name, sizeof(name), 'v', NAME198);
	snprintf(text, sizeof(text), "[kvm_stats]\ninclude vm = %s\nrescan every = 30\n", name);
	assert_int_equal(strchr(text + 12, '\n') - (text + 12), 198);
	parse_both(t, text, 0, NULL, check_198);
	snprintf(text, sizeof(text), "[kvm_stats]\n\t  include vm = %s \t \r\nrescan every = 30", name);
	parse_both(t, text, 0, NULL, check_198);
	snprintf(text, sizeof(text), "[kvm_stats]\nrescan every = 30\ninclude vm = %s", name);
	parse_both(t, text, 0, NULL, check_198);	/* the last line, no '\n' */

	/*
	 * A 199-byte setting: refused, naming its line, which is counted as
	 * one line (after a long comment too); the lines after it are applied
	 * and a later error does not take the message.
	 */
	snprintf(want, sizeof(want), "line 3: longer than %d bytes", 198);
	snprintf(text, sizeof(text), "[kvm_stats]\n%s\ninclude vm = %sv\nrescan every = 30\n"
		 "histograms = yes\nhistograms = maybe\n", c250, name);
	assert_int_equal(strchr(strchr(text + 12, '\n') + 1, '\n') - (strchr(text + 12, '\n') + 1), 199);
	parse_both(t, text, -EINVAL, want, check_199);
	snprintf(text, sizeof(text), "[kvm_stats]\n%s\ninclude vm = %sv\nrescan every = 30\nhistograms = yes",
		 c199, name);
	parse_both(t, text, -EINVAL, want, check_199);

	/* A long value that is cut would be another value: refused. */
	fill(big, sizeof(big), '1', 3000);
	snprintf(text, sizeof(text), "[kvm_stats]\n#\nqmp socket = /run/%s.qmp\nrescan every = 30\n", big);
	parse_both(t, text, -EINVAL, want, check_qmp);

	/* Lines after the long ones keep their numbers. */
	snprintf(text, sizeof(text), "[kvm_stats]\n%s\n%s\n%s\nhistograms = maybe\n", c250, c199, c250);
	parse_both(t, text, -EINVAL, "line 5: bad value for 'histograms' in [kvm_stats]: 'maybe'",
		   check_nothing);
}

/* Control bytes of the text reach the message as '?': it is one log line. */
static void test_control_bytes(void **state)
{
	struct plugin_config cfg;
	char err[ERRLEN];

	(void)state;
	assert_int_equal(parse("[kvm_stats]\nhistograms = a\x1b[2Jb\rc\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 2: bad value for 'histograms' in [kvm_stats]: 'a?[2Jb?c'");
	plugin_config_done(&cfg);
	assert_int_equal(parse("\x01=", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 1: unknown setting '?' in []");
	plugin_config_done(&cfg);
	/* Other bytes (UTF-8) are kept. */
	assert_int_equal(parse("[kvm_stats]\ndebugfs = s\xc3\xbbr\n", &cfg, err), -EINVAL);
	assert_string_equal(err, "line 2: bad value for 'debugfs' in [kvm_stats]: 's\xc3\xbbr'");
	plugin_config_done(&cfg);
}

/* inih: "name: value", ';' inline comments, indented comments, CRLF, a BOM. */
static void test_syntax_forms(void **state)
{
	struct plugin_config cfg;

	(void)state;
	assert_accepted("\xef\xbb\xbf[kvm_stats]\r\n"
			"  update every : 7  \r\n"
			"histograms = no ; not now\r\n"
			"; a comment\r\n"
			"  # an indented comment\r\n"
			" \t \r\n"
			"include stat = exits\r\n"
			"include stat = /^pf_/\r\n", &cfg);
	assert_int_equal(cfg.update_every, 7);
	assert_false(cfg.histograms);
	assert_int_equal(filter_match(cfg.stats, "exits"), 1);
	assert_int_equal(filter_match(cfg.stats, "pf_taken"), 1);
	assert_int_equal(filter_match(cfg.stats, "io_exits"), 0);
	plugin_config_done(&cfg);
	/* A BOM before an indented section, or among the blanks before it. */
	assert_accepted("\xef\xbb\xbf\t[kvm_stats]\n\tupdate every = 3\n", &cfg);
	assert_int_equal(cfg.update_every, 3);
	plugin_config_done(&cfg);
	assert_accepted("\r\xef\xbb\xbf \xef\xbb\xbf[kvm_stats]\n\tupdate every = 4\n", &cfg);
	assert_int_equal(cfg.update_every, 4);
	plugin_config_done(&cfg);
	/* ... on line 1 only, as inih has it. */
	assert_refused("\xef\xbb\xbf" "debugfs = no", "\xef\xbb\xbf" "debugfs");
	/* '#' starts a comment at the start of a line only. */
	assert_refused("debugfs = yes # inline", "debugfs");
}

/*
 * Every field of two configs, the filters judged on the names the tests
 * use (and on the text an indented line would have added as an entry).
 */
static void assert_same_config(const struct plugin_config *a, const struct plugin_config *b)
{
	static const char *const names[] = {
		"web1", "web2", "db1", "exits", "mmio_exits", "pf_taken", "halt_exits",
		"include vm = web1", "qmp socket = /run/q.qmp", "/run/q.qmp",
	};

	assert_int_equal(a->update_every, b->update_every);
	assert_int_equal(a->rescan_every, b->rescan_every);
	assert_int_equal(a->per_vcpu, b->per_vcpu);
	assert_int_equal(a->histograms, b->histograms);
	assert_int_equal(a->vcpu_histograms, b->vcpu_histograms);
	assert_memory_equal(a->vcpu_groups, b->vcpu_groups, sizeof(a->vcpu_groups));
	assert_memory_equal(a->groups, b->groups, sizeof(a->groups));
	assert_int_equal(a->groups_set, b->groups_set);
	assert_int_equal(a->zero_dims, b->zero_dims);
	assert_int_equal(a->debugfs, b->debugfs);
	assert_int_equal(a->debugfs_every, b->debugfs_every);
	assert_int_equal(!a->stats, !b->stats);
	assert_int_equal(!a->vms, !b->vms);
	assert_int_equal(filter_has_includes(a->stats), filter_has_includes(b->stats));
	assert_int_equal(filter_has_includes(a->vms), filter_has_includes(b->vms));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(filter_match(a->stats, names[i]), filter_match(b->stats, names[i]));
		assert_int_equal(filter_match(a->vms, names[i]), filter_match(b->vms, names[i]));
	}
	assert_int_equal(a->nqmp, b->nqmp);
	for (size_t i = 0; i < a->nqmp; i++)
		assert_string_equal(a->qmp[i], b->qmp[i]);
	assert_int_equal(!a->libvirt_uri, !b->libvirt_uri);
	if (a->libvirt_uri)
		assert_string_equal(a->libvirt_uri, b->libvirt_uri);
}

/* text with indent before every line from line 2 on (before line 1 too when all). */
static char *indented(const char *text, const char *indent, bool all)
{
	size_t n = 0, size = strlen(text) * (strlen(indent) + 1) + 1;
	char *out = malloc(size);
	bool start = all;

	assert_non_null(out);
	for (const char *p = text; *p; p++) {
		if (start)
			n += (size_t)snprintf(out + n, size - n, "%s", indent);
		out[n++] = *p;
		start = *p == '\n';
	}
	out[n] = '\0';
	return out;
}

/*
 * kvm_stats.conf written the way Netdata's own netdata.conf is (settings
 * indented under their section, with a tab; or spaces) means what the same
 * file unindented means. Debian's inih read an indented line as the
 * continuation of the setting above it: "include vm = web1" under "qmp
 * socket" became a second socket path and every VM was charted; in the
 * other order "qmp socket = ..." became a VM name. Nothing was said.
 */
static void test_indented_like_netdata_conf(void **state)
{
	static const char *const flat[] = {
		"[kvm_stats]\n"
		"update every = 5\n"
		"qmp socket = /run/q.qmp\n"
		"include vm = web1\n"
		"# a comment\n"
		"\n"
		"exclude stat = /^pf_/\n"
		"per vcpu charts = yes\n"
		"per vcpu groups = exits halt\n"
		"libvirt uri = qemu:///system\n",
		/* The other order. */
		"[kvm_stats]\n"
		"include vm = web1\n"
		"qmp socket = /run/q.qmp\n"
		"histograms = yes\n",
	};
	static const char *const indents[] = { "\t", "    ", " ", " \t ", "\t\t" };
	struct plugin_config want, got;

	(void)state;
	for (size_t f = 0; f < sizeof(flat) / sizeof(flat[0]); f++) {
		assert_accepted(flat[f], &want);
		assert_int_equal(want.nqmp, 1);
		assert_string_equal(want.qmp[0], "/run/q.qmp");
		assert_int_equal(filter_match(want.vms, "web1"), 1);
		assert_int_equal(filter_match(want.vms, "web2"), 0);
		for (size_t i = 0; i < sizeof(indents) / sizeof(indents[0]); i++) {
			for (int all = 0; all < 2; all++) {
				char *text = indented(flat[f], indents[i], all);

				assert_accepted(text, &got);
				assert_same_config(&got, &want);
				plugin_config_done(&got);
				free(text);
			}
		}
		plugin_config_done(&want);
	}
}

/*
 * A line that is neither a setting, a section nor a comment is refused
 * with its number, indented or not: it never continues the setting above
 * (inih's multi-line values, which the file variant no longer has).
 */
static void test_no_continuation(void **state)
{
	static const char *const texts[] = {
		"[kvm_stats]\ninclude stat = exits\n  halt_exits\n",
		"[kvm_stats]\ninclude stat = exits\n\thalt_exits\n",
		"[kvm_stats]\ninclude stat = exits\nhalt_exits\n",
		"[kvm_stats]\n\tqmp socket = /run/q.qmp\n\t  web1\n",
	};
	struct plugin_config cfg;
	char err[ERRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		assert_int_equal(parse(texts[i], &cfg, err), -EINVAL);
		assert_string_equal(err, "line 3: not a 'name = value' setting or a '[section]'");
		assert_int_equal(filter_match(cfg.stats, "halt_exits"), cfg.stats ? 0 : 1);
		assert_true(cfg.nqmp <= 1);
		plugin_config_done(&cfg);
	}
}

static void test_qmp_limit(void **state)
{
	struct plugin_config cfg;
	char text[8192], err[ERRLEN];
	size_t n = 0;

	(void)state;
	n += (size_t)snprintf(text + n, sizeof(text) - n, "[kvm_stats]\n");
	for (int i = 0; i < PLUGIN_CONFIG_MAX_QMP; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "qmp socket = /run/q%d.qmp\n", i);
	assert_accepted(text, &cfg);
	assert_int_equal(cfg.nqmp, PLUGIN_CONFIG_MAX_QMP);
	assert_string_equal(cfg.qmp[63], "/run/q63.qmp");
	plugin_config_done(&cfg);
	snprintf(text + n, sizeof(text) - n, "qmp socket = /run/one-too-many.qmp\n");
	assert_int_equal(parse(text, &cfg, err), -EINVAL);
	assert_string_equal(err, "line 66: bad value for 'qmp socket' in [kvm_stats]: "
			    "'/run/one-too-many.qmp'");
	assert_int_equal(cfg.nqmp, PLUGIN_CONFIG_MAX_QMP);
	plugin_config_done(&cfg);
}

/* Many entries: every one kept. */
static void test_many_entries(void **state)
{
	struct plugin_config cfg;
	size_t size = 2000 * 32, n = 0;
	char *text = malloc(size), name[32];

	(void)state;
	assert_non_null(text);
	n += (size_t)snprintf(text + n, size - n, "[kvm_stats]\n");
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(text + n, size - n, "%s vm = vm%d\n",
				      i % 2 ? "exclude" : "include", i);
	assert_accepted(text, &cfg);
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "vm%d", i);
		assert_int_equal(filter_match(cfg.vms, name), i % 2 == 0);
	}
	plugin_config_done(&cfg);
	free(text);
}

/* The file variant: "path:N: " before the message; a missing file is -ENOENT. */
static void test_file(void **state)
{
	const struct tree *t = *state;
	struct plugin_config cfg;
	char path[256], err[ERRLEN], want[ERRLEN];
	static const char bad[] = "[kvm_stats]\nhistograms = maybe\n";
	static const char good[] = "[kvm_stats]\nrescan every = 30\n";

	tree_path(t, path, sizeof(path), "kvm_stats.conf");
	plugin_config_defaults(&cfg, 1);
	strcpy(err, "untouched");
	assert_int_equal(plugin_config_parse_file(path, &cfg, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "untouched");

	tree_write(path, good, strlen(good));
	assert_int_equal(plugin_config_parse_file(path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "untouched");
	assert_int_equal(cfg.rescan_every, 30);

	tree_write(path, bad, strlen(bad));
	assert_int_equal(plugin_config_parse_file(path, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: bad value for 'histograms' in [kvm_stats]: 'maybe'",
		 path);
	assert_string_equal(err, want);
	plugin_config_done(&cfg);
}

/* An indented file: a bad line is named with the file and its line, and why. */
static void test_file_indented(void **state)
{
	const struct tree *t = *state;
	struct plugin_config cfg;
	char path[256], err[ERRLEN], want[ERRLEN];
	static const char good[] = "[kvm_stats]\n\tqmp socket = /run/q.qmp\n"
				   "\tinclude vm = web1\n";
	static const char junk[] = "[kvm_stats]\n\tqmp socket = /run/q.qmp\n\tweb1\n";
	static const char bad[] = "[kvm_stats]\n\tinclude vm = web1\n\thistograms = maybe\n";

	tree_path(t, path, sizeof(path), "kvm_stats.conf");
	tree_write(path, good, strlen(good));
	plugin_config_defaults(&cfg, 1);
	if (plugin_config_parse_file(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg.nqmp, 1);
	assert_string_equal(cfg.qmp[0], "/run/q.qmp");
	assert_int_equal(filter_match(cfg.vms, "web1"), 1);
	assert_int_equal(filter_match(cfg.vms, "web2"), 0);
	plugin_config_done(&cfg);

	tree_write(path, junk, strlen(junk));
	plugin_config_defaults(&cfg, 1);
	assert_int_equal(plugin_config_parse_file(path, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: not a 'name = value' setting or a '[section]'", path);
	assert_string_equal(err, want);
	assert_int_equal(cfg.nqmp, 1);
	plugin_config_done(&cfg);

	tree_write(path, bad, strlen(bad));
	plugin_config_defaults(&cfg, 1);
	assert_int_equal(plugin_config_parse_file(path, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: bad value for 'histograms' in [kvm_stats]: 'maybe'",
		 path);
	assert_string_equal(err, want);
	plugin_config_done(&cfg);
}

/* A NUL byte would end the line early for inih: refused. A directory cannot be read. */
static void test_file_odd(void **state)
{
	const struct tree *t = *state;
	struct plugin_config cfg;
	char path[256], err[ERRLEN], want[ERRLEN + 300];
	static const char nul[] = "[kvm_stats]\ndebugfs = yes\0 no\n";

	tree_path(t, path, sizeof(path), "kvm_stats.conf");
	tree_write(path, nul, sizeof(nul) - 1);
	plugin_config_defaults(&cfg, 1);
	assert_int_equal(plugin_config_parse_file(path, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: holds a NUL byte", path);
	assert_string_equal(err, want);
	plugin_config_done(&cfg);

	plugin_config_defaults(&cfg, 1);
	assert_int_equal(plugin_config_parse_file(t->root, &cfg, err, sizeof(err)), -EIO);
	snprintf(want, sizeof(want), "%s:1: cannot be read: %s", t->root, strerror(EISDIR));
	assert_string_equal(err, want);
	plugin_config_done(&cfg);
}

/* A short err buffer gets a cut message, never an overflow; none at all is fine. */
static void test_short_err(void **state)
{
	struct plugin_config cfg;
	char err[8];

	(void)state;
	plugin_config_defaults(&cfg, 1);
	assert_int_equal(plugin_config_parse_string("[kvm_stats]\ndebugfs = 2\n", &cfg,
						    err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 2:");
	assert_int_equal(plugin_config_parse_string("[kvm_stats]\ndebugfs = 2\n", &cfg,
						    NULL, 0), -EINVAL);
	plugin_config_done(&cfg);
}

static void test_update_every(void **state)
{
	int v = -7;

	(void)state;
	assert_int_equal(plugin_config_update_every("1", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(plugin_config_update_every("3600", &v), 0);
	assert_int_equal(v, 3600);
	assert_int_equal(plugin_config_update_every("0", &v), -EINVAL);
	assert_int_equal(plugin_config_update_every("3601", &v), -EINVAL);
	assert_int_equal(plugin_config_update_every("", &v), -EINVAL);
	assert_int_equal(plugin_config_update_every("5x", &v), -EINVAL);
	assert_int_equal(v, 3600);
}

static int setup(void **state)
{
	return tree_setup(state, "netdata-config");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_stock_file),
		cmocka_unit_test(test_every_setting),
		cmocka_unit_test(test_bool_spellings),
		cmocka_unit_test(test_int_bounds),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_bad_value_message),
		cmocka_unit_test(test_unknown_settings),
		cmocka_unit_test(test_first_error_named),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test_setup_teardown(test_long_lines, setup, tree_teardown),
		cmocka_unit_test(test_control_bytes),
		cmocka_unit_test(test_syntax_forms),
		cmocka_unit_test(test_indented_like_netdata_conf),
		cmocka_unit_test(test_no_continuation),
		cmocka_unit_test(test_qmp_limit),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test_setup_teardown(test_file, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_file_indented, setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_file_odd, setup, tree_teardown),
		cmocka_unit_test(test_short_err),
		cmocka_unit_test(test_update_every),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
