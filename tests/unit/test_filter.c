/* SPDX-License-Identifier: MIT */
/*
 * test_filter.c: unit tests of common/filter.c, the include/exclude name
 * lists with collectd ignorelist semantics ("/regex/" entries, exact names
 * otherwise, IgnoreSelected choosing the list).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"

/* A filter holding entries, all in the include or all in the exclude list. */
static struct filter *filter_of(const char *const *entries, bool exclude)
{
	struct filter *f;

	assert_int_equal(filter_new(&f), 0);
	for (size_t i = 0; entries[i]; i++)
		assert_int_equal(filter_add(f, entries[i], exclude), 0);
	return f;
}

static void test_exact(void **state)
{
	static const char *const entries[] = { "exits", NULL };
	struct filter *f = filter_of(entries, false);

	(void)state;
	assert_int_equal(filter_match(f, "exits"), 1);
	assert_int_equal(filter_match(f, "io_exits"), 0);
	assert_int_equal(filter_match(f, "exit"), 0);
	assert_int_equal(filter_match(f, "exits "), 0);
	assert_int_equal(filter_match(f, "EXITS"), 0);
	filter_free(f);
}

static void test_entry_is_copied(void **state)
{
	char entry[] = "exits";
	struct filter *f;

	(void)state;
	assert_int_equal(filter_new(&f), 0);
	assert_int_equal(filter_add(f, entry, false), 0);
	entry[0] = 'X';
	assert_int_equal(filter_match(f, "exits"), 1);
	filter_free(f);
}

static void test_regex_unanchored(void **state)
{
	static const char *const entries[] = { "/halt_/", NULL };
	struct filter *f = filter_of(entries, false);

	(void)state;
	assert_int_equal(filter_match(f, "halt_wakeup"), 1);
	assert_int_equal(filter_match(f, "xhalt_y"), 1);
	assert_int_equal(filter_match(f, "halt"), 0);
	filter_free(f);
}

static void test_regex_extended(void **state)
{
	static const char *const entries[] = { "/^(io|mmio)_exits$/", NULL };
	struct filter *f = filter_of(entries, false);

	(void)state;
	assert_int_equal(filter_match(f, "io_exits"), 1);
	assert_int_equal(filter_match(f, "mmio_exits"), 1);
	assert_int_equal(filter_match(f, "exits"), 0);
	assert_int_equal(filter_match(f, "xio_exits"), 0);
	filter_free(f);
}

static void test_regex_anchored(void **state)
{
	static const char *const entries[] = { "/^halt_/", "/_exits$/", NULL };
	struct filter *f = filter_of(entries, false);

	(void)state;
	assert_int_equal(filter_match(f, "halt_wakeup"), 1);
	assert_int_equal(filter_match(f, "xhalt_y"), 0);
	assert_int_equal(filter_match(f, "io_exits"), 1);
	assert_int_equal(filter_match(f, "io_exits_x"), 0);
	filter_free(f);
}

static void test_include_only(void **state)
{
	static const char *const entries[] = { "exits", "/^pf_/", NULL };
	struct filter *f = filter_of(entries, false);

	(void)state;
	assert_int_equal(filter_match(f, "exits"), 1);
	assert_int_equal(filter_match(f, "pf_fixed"), 1);
	assert_int_equal(filter_match(f, "halt_exits"), 0);
	assert_int_equal(filter_match(f, ""), 0);
	filter_free(f);
}

static void test_exclude_only(void **state)
{
	static const char *const entries[] = { "exits", "/^pf_/", NULL };
	struct filter *f = filter_of(entries, true);

	(void)state;
	assert_int_equal(filter_match(f, "exits"), 0);
	assert_int_equal(filter_match(f, "pf_fixed"), 0);
	assert_int_equal(filter_match(f, "halt_exits"), 1);
	assert_int_equal(filter_match(f, ""), 1);
	filter_free(f);
}

static void test_exclude_wins(void **state)
{
	struct filter *f;

	(void)state;
	assert_int_equal(filter_new(&f), 0);
	assert_int_equal(filter_add(f, "/_exits$/", false), 0);
	assert_int_equal(filter_add(f, "halt_exits", true), 0);
	assert_int_equal(filter_add(f, "/^irq/", true), 0);
	assert_int_equal(filter_match(f, "io_exits"), 1);
	assert_int_equal(filter_match(f, "halt_exits"), 0);
	assert_int_equal(filter_match(f, "irq_exits"), 0);
	assert_int_equal(filter_match(f, "pf_fixed"), 0);
	filter_free(f);
}

static void test_empty_filter_passes_all(void **state)
{
	struct filter *f;

	(void)state;
	assert_int_equal(filter_new(&f), 0);
	assert_int_equal(filter_empty(f), 1);
	assert_int_equal(filter_match(f, "exits"), 1);
	assert_int_equal(filter_match(f, ""), 1);
	filter_free(f);
}

static void test_null_filter_passes(void **state)
{
	(void)state;
	assert_int_equal(filter_match(NULL, "exits"), 1);
	assert_int_equal(filter_empty(NULL), 1);
	filter_free(NULL);
}

static void test_null_name(void **state)
{
	static const char *const entries[] = { "exits", NULL };
	struct filter *f = filter_of(entries, false);

	(void)state;
	assert_int_equal(filter_match(f, NULL), -EINVAL);
	assert_int_equal(filter_match(NULL, NULL), -EINVAL);
	assert_int_equal(filter_add(f, NULL, false), -EINVAL);
	assert_int_equal(filter_add(NULL, "exits", false), -EINVAL);
	filter_free(f);
}

static void test_filter_empty(void **state)
{
	struct filter *f;

	(void)state;
	assert_int_equal(filter_new(&f), 0);
	assert_int_equal(filter_add(f, "exits", true), 0);
	assert_int_equal(filter_empty(f), 0);
	filter_free(f);

	assert_int_equal(filter_new(&f), 0);
	assert_int_equal(filter_add(f, "/x/", false), 0);
	assert_int_equal(filter_empty(f), 0);
	filter_free(f);
}

/* A refused entry leaves the filter as it was, and freeing it is clean. */
static void test_bad_regex(void **state)
{
	static const char *const bad[] = { "/(/", "/[a/", "/a{2,1}/", "/*x(/",
					   NULL };
	struct filter *f;

	(void)state;
	assert_int_equal(filter_new(&f), 0);
	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(filter_add(f, bad[i], false), -EINVAL);
		assert_int_equal(filter_add(f, bad[i], true), -EINVAL);
	}
	assert_int_equal(filter_empty(f), 1);
	assert_int_equal(filter_add(f, "exits", false), 0);
	assert_int_equal(filter_add(f, "/(/", false), -EINVAL);
	assert_int_equal(filter_match(f, "exits"), 1);
	assert_int_equal(filter_match(f, "("), 0);
	filter_free(f);
}

static void test_slash_and_empty_entries(void **state)
{
	struct filter *f;

	(void)state;
	assert_int_equal(filter_new(&f), 0);
	assert_int_equal(filter_add(f, "/", false), -EINVAL);
	assert_int_equal(filter_add(f, "//", false), -EINVAL);
	assert_int_equal(filter_add(f, "/", true), -EINVAL);
	assert_int_equal(filter_add(f, "//", true), -EINVAL);
	assert_int_equal(filter_add(f, "", false), -EINVAL);
	assert_int_equal(filter_empty(f), 1);
	filter_free(f);
}

/* A slash at one end only is part of an exact name, not a regex. */
static void test_one_sided_slash_is_exact(void **state)
{
	static const char *const entries[] = { "/exits", "exits/", "/./", NULL };
	struct filter *f = filter_of(entries, false);

	(void)state;
	assert_int_equal(filter_match(f, "/exits"), 1);
	assert_int_equal(filter_match(f, "exits/"), 1);
	assert_int_equal(filter_match(f, "x"), 1);	/* "/./": any byte */
	assert_int_equal(filter_match(f, ""), 0);
	filter_free(f);
}

/*
 * What a collectd config does: IgnoreSelected false keeps only the listed
 * names, IgnoreSelected true drops them and keeps the rest.
 */
static struct filter *collectd_filter(bool ignore_selected)
{
	static const char *const selected[] = { "exits", "/^halt_/", NULL };

	return filter_of(selected, ignore_selected);
}

static void test_ignore_selected_false(void **state)
{
	struct filter *f = collectd_filter(false);

	(void)state;
	assert_int_equal(filter_match(f, "exits"), 1);
	assert_int_equal(filter_match(f, "halt_wakeup"), 1);
	assert_int_equal(filter_match(f, "io_exits"), 0);
	assert_int_equal(filter_match(f, "pf_fixed"), 0);
	filter_free(f);
}

static void test_ignore_selected_true(void **state)
{
	struct filter *f = collectd_filter(true);

	(void)state;
	assert_int_equal(filter_match(f, "exits"), 0);
	assert_int_equal(filter_match(f, "halt_wakeup"), 0);
	assert_int_equal(filter_match(f, "io_exits"), 1);
	assert_int_equal(filter_match(f, "pf_fixed"), 1);
	filter_free(f);
}

/* Spaces, newlines and bytes that are not UTF-8 are just bytes. */
static void check_odd_bytes(void)
{
	static const char *const entries[] = {
		"a b", "x\ny", "\xff\xfe", "/^q.r$/", "/\xc3$/", NULL
	};
	struct filter *f = filter_of(entries, false);

	assert_int_equal(filter_match(f, "a b"), 1);
	assert_int_equal(filter_match(f, "a  b"), 0);
	assert_int_equal(filter_match(f, "x\ny"), 1);
	assert_int_equal(filter_match(f, "x\n"), 0);
	assert_int_equal(filter_match(f, "\xff\xfe"), 1);
	assert_int_equal(filter_match(f, "\xff"), 0);
	assert_int_equal(filter_match(f, "q\xffr"), 1);
	assert_int_equal(filter_match(f, "q\nr"), 1);
	assert_int_equal(filter_match(f, "q r"), 1);
	assert_int_equal(filter_match(f, "q\xc3\xa9r"), 0);	/* 2 bytes */
	assert_int_equal(filter_match(f, "caf\xc3"), 1);
	filter_free(f);
}

static void test_odd_bytes(void **state)
{
	(void)state;
	check_odd_bytes();
}

/* The same in a UTF-8 locale, as a front end that calls setlocale() has. */
static void test_odd_bytes_utf8_locale(void **state)
{
	(void)state;
	if (!setlocale(LC_ALL, "C.UTF-8"))
		skip();
	check_odd_bytes();
	setlocale(LC_ALL, "C");
}

static void test_many_entries(void **state)
{
	enum { N = 1000 };
	struct filter *f;
	char name[32];

	(void)state;
	assert_int_equal(filter_new(&f), 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "stat_%d", i);
		assert_int_equal(filter_add(f, name, false), 0);
		snprintf(name, sizeof(name), "/^excl_%d$/", i);
		assert_int_equal(filter_add(f, name, true), 0);
	}
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "stat_%d", i);
		assert_int_equal(filter_match(f, name), 1);
		snprintf(name, sizeof(name), "excl_%d", i);
		assert_int_equal(filter_match(f, name), 0);
	}
	assert_int_equal(filter_match(f, "stat_1000"), 0);
	assert_int_equal(filter_match(f, "stat_"), 0);
	filter_free(f);
}

/*
 * Found by fuzz/fuzz_parsers.c: glibc's regcomp() copies what a repetition
 * applies to, so these took gigabytes. They are refused, quickly; ordinary
 * regexes with repetitions still compile.
 */
static void test_regex_too_costly(void **state)
{
	struct filter *f;

	(void)state;
	assert_int_equal(filter_new(&f), 0);
	assert_int_equal(filter_add(f, "/(a{1,32767})/", false), -EINVAL);
	assert_int_equal(filter_add(f, "/a++++++++++++++++++++++/", false), -EINVAL);
	assert_int_equal(filter_add(f, "/((((a*)*)*)*){1,1000}/", true), -EINVAL);
	assert_int_equal(filter_add(f, "/^halt_(poll|wait)_[a-z]{2,8}_ns$/", false), 0);
	assert_int_equal(filter_add(f, "/^(prod|test)-[0-9]+$/", true), 0);
	assert_int_equal(filter_match(f, "halt_poll_success_ns"), 1);
	assert_int_equal(filter_match(f, "halt_exits"), 0);
	filter_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact),
		cmocka_unit_test(test_entry_is_copied),
		cmocka_unit_test(test_regex_unanchored),
		cmocka_unit_test(test_regex_extended),
		cmocka_unit_test(test_regex_anchored),
		cmocka_unit_test(test_include_only),
		cmocka_unit_test(test_exclude_only),
		cmocka_unit_test(test_exclude_wins),
		cmocka_unit_test(test_empty_filter_passes_all),
		cmocka_unit_test(test_null_filter_passes),
		cmocka_unit_test(test_null_name),
		cmocka_unit_test(test_filter_empty),
		cmocka_unit_test(test_bad_regex),
		cmocka_unit_test(test_slash_and_empty_entries),
		cmocka_unit_test(test_one_sided_slash_is_exact),
		cmocka_unit_test(test_ignore_selected_false),
		cmocka_unit_test(test_ignore_selected_true),
		cmocka_unit_test(test_odd_bytes),
		cmocka_unit_test(test_odd_bytes_utf8_locale),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_regex_too_costly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
