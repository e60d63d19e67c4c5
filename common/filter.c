/* SPDX-License-Identifier: MIT */
/*
 * filter.c: include and exclude lists of names (stat names, VM names), with
 * the semantics of collectd's ignorelist (src/utils/ignorelist): an entry
 * written "/regex/" is a POSIX extended regular expression, any other entry
 * matches the whole name exactly.
 *
 * A regex is unanchored, as regexec(3) is: "/halt_/" matches
 * "halt_wakeup" and also "xhalt_y"; write "/^halt_/" to match only names
 * that start with "halt_", "/_exits$/" for names that end with "_exits".
 *
 * Names are bytes. Exact entries compare with strcmp(). Regexes are
 * compiled in the "C" locale whatever locale the front end set, so "."
 * matches any byte, including bytes that are not valid UTF-8.
 *
 * Regexes are compiled once, in filter_add(); filter_match() allocates
 * nothing itself and only reads the filter, so several threads may match
 * with one filter at the same time.
 */
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <locale.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

/* One entry: exact != NULL for an exact name, else a compiled regex. */
struct filter_entry {
	char *exact;
	regex_t re;
};

struct filter_list {
	struct filter_entry *entries;
	size_t n;	/* complete entries: only these are matched or freed */
	size_t cap;
};

struct filter {
	struct filter_list include;
	struct filter_list exclude;
};

/* Caller frees the result with filter_free(). -ENOMEM. */
int filter_new(struct filter **ret_filter)
{
	struct filter *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	*ret_filter = f;
	return 0;
}

static void entry_clear(struct filter_entry *e)
{
	if (e->exact)
		free(e->exact);
	else
		regfree(&e->re);
}

static void list_clear(struct filter_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		entry_clear(&l->entries[i]);
	free(l->entries);
}

void filter_free(struct filter *f)
{
	if (!f)
		return;
	list_clear(&f->include);
	list_clear(&f->exclude);
	free(f);
}

/*
 * Makes room for one more entry: 8 at first, then twice as many each time.
 * A size that overflows could never be allocated: -ENOMEM, like the rest.
 */
static int list_reserve(struct filter_list *l)
{
	struct filter_entry *grown;
	size_t cap, bytes;

	if (l->n < l->cap)
		return 0;
	if (l->cap == 0)
		cap = 8;
	else if (__builtin_mul_overflow(l->cap, (size_t)2, &cap))
		return -ENOMEM;
	if (__builtin_mul_overflow(cap, sizeof(*grown), &bytes))
		return -ENOMEM;
	grown = realloc(l->entries, bytes);
	if (!grown)
		return -ENOMEM;
	l->entries = grown;
	l->cap = cap;
	return 0;
}

/*
 * Compiles pattern (len bytes, not NUL-terminated) into ret_re in the "C"
 * locale, so that matching is bytewise even when the front end runs in a
 * UTF-8 locale (there, "." would not match an invalid byte). The locale is
 * switched for this thread only, with uselocale(3).
 * -EINVAL: does not compile. -ENOMEM.
 */
/*
 * An upper estimate of the nodes glibc's regcomp() builds for the POSIX ERE
 * pattern[0, len): every repetition copies what it applies to ("x+" twice,
 * "x{m,n}" max(m, n) times, "x{m,}" m + 1 times) and adds a node, a group
 * adds one, alternatives add up. The memory regcomp() takes grows with the
 * square of this at worst (its epsilon closures): 1000 costs about 10 MB,
 * 4000 about 120 MB, 2^20 gigabytes. Patterns nested deeper than 64 groups
 * count as too costly.
 */
#define REGEX_MAX_COST 1024.0

static double regex_cost(const char *p, size_t len)
{
	struct { double seq, alt; } stack[64];
	double seq = 0, alt = 0, last = 0;
	size_t depth = 0, i = 0;

	while (i < len) {
		char c = p[i++];
		double copies;

		switch (c) {
		case '(':
			if (depth == sizeof(stack) / sizeof(stack[0]))
				return INFINITY;
			stack[depth].seq = seq;
			stack[depth++].alt = alt;
			seq = alt = last = 0;
			continue;
		case ')':
			if (depth == 0)
				break;		/* a literal ')' */
			last = alt + seq + 1;
			depth--;
			seq = stack[depth].seq + last;
			alt = stack[depth].alt;
			continue;
		case '|':
			alt += seq;
			seq = last = 0;
			continue;
		case '*':
		case '?':
		case '+':
		case '{':
			if (last == 0)
				break;		/* nothing to repeat: a literal */
			copies = c == '+' ? 2 : 1;
			if (c == '{') {
				unsigned long m = 0, n = 0;
				bool comma = false, digits_n = false;

				while (i < len && p[i] >= '0' && p[i] <= '9' && m < 100000)
					m = m * 10 + (unsigned long)(p[i++] - '0');
				if (i < len && p[i] == ',') {
					comma = true;
					i++;
					while (i < len && p[i] >= '0' && p[i] <= '9' && n < 100000) {
						n = n * 10 + (unsigned long)(p[i++] - '0');
						digits_n = true;
					}
				}
				if (i < len && p[i] == '}')
					i++;
				copies = !comma ? (double)m : digits_n ?
					 (double)(m > n ? m : n) : (double)m + 1;
				if (copies < 1)
					copies = 1;
			}
			seq += last * (copies - 1) + 1;
			last = last * copies + 1;
			continue;
		case '\\':
			if (i < len)
				i++;
			break;
		case '[':
			/* A bracket expression is one node: "[]a]", "[^]a]", "[[:alpha:]]". */
			if (i < len && p[i] == '^')
				i++;
			if (i < len && p[i] == ']')
				i++;
			while (i < len && p[i] != ']') {
				if (p[i] == '[' && i + 1 < len &&
				    (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
					char close = p[i + 1];

					for (i += 2; i + 1 < len && !(p[i] == close && p[i + 1] == ']'); i++)
						;
					i += 2;
				} else {
					i++;
				}
			}
			i++;
			break;
		default:
			break;
		}
		seq += 1;		/* one atom */
		last = 1;
	}
	while (depth > 0) {		/* unclosed: regcomp() refuses it anyway */
		depth--;
		seq = stack[depth].seq + alt + seq + 1;
		alt = stack[depth].alt;
	}
	return alt + seq;
}

/*
 * -EINVAL for a pattern that does not compile, or whose compiled form would
 * be too large: glibc's regcomp() copies what a repetition applies to, so
 * "/(a{1,32767})/" alone takes 8 GB, which would take the daemon (collectd
 * and every other plugin in it) down with it. Found by fuzz/fuzz_parsers.c.
 */
static int regex_compile(const char *pattern, size_t len, regex_t *ret_re)
{
	locale_t c_locale, saved;
	char *copy;
	int r;

	if (!(regex_cost(pattern, len) <= REGEX_MAX_COST))
		return -EINVAL;
	copy = strndup(pattern, len);
	if (!copy)
		return -ENOMEM;
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (c_locale == (locale_t)0) {
		free(copy);
		return -ENOMEM;
	}
	saved = uselocale(c_locale);
	r = regcomp(ret_re, copy, REG_EXTENDED | REG_NOSUB);
	uselocale(saved);
	freelocale(c_locale);
	free(copy);
	if (r == REG_ESPACE)
		return -ENOMEM;
	return r == 0 ? 0 : -EINVAL;
}

/*
 * Fills e from entry. "/" and "//" are refused rather than read as names
 * or as an empty regex: an empty ERE is undefined in POSIX and matches every
 * name in glibc, so a stray "//" in an exclude list would silently drop
 * everything, and a name "/" is a slip, never a real stat or VM name.
 */
static int entry_init(struct filter_entry *e, const char *entry)
{
	size_t len = strlen(entry);

	if (len == 0 || strcmp(entry, "/") == 0 || strcmp(entry, "//") == 0)
		return -EINVAL;
	if (len > 2 && entry[0] == '/' && entry[len - 1] == '/') {
		e->exact = NULL;
		return regex_compile(entry + 1, len - 2, &e->re);
	}
	e->exact = strdup(entry);
	return e->exact ? 0 : -ENOMEM;
}

/*
 * Adds entry to the exclude list (exclude) or the include list. entry is
 * copied. On failure the filter is unchanged.
 * -EINVAL: NULL, empty, "/", "//", or a regex that does not compile.
 * -ENOMEM.
 */
int filter_add(struct filter *f, const char *entry, bool exclude)
{
	struct filter_list *l;
	int r;

	if (!f || !entry)
		return -EINVAL;
	l = exclude ? &f->exclude : &f->include;
	r = list_reserve(l);
	if (r < 0)
		return r;
	r = entry_init(&l->entries[l->n], entry);
	if (r < 0)
		return r;
	l->n++;
	return 0;
}

/*
 * 1 when an entry of l matches name, else 0. regexec() fails otherwise than
 * REG_NOMATCH only when out of memory; that counts as no match.
 */
static int list_match(const struct filter_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct filter_entry *e = &l->entries[i];

		if (e->exact ? strcmp(e->exact, name) == 0
			     : regexec(&e->re, name, 0, NULL, 0) == 0)
			return 1;
	}
	return 0;
}

/*
 * 1 when name passes, 0 when it is filtered out: the exclude list wins over
 * the include list. -EINVAL: name is NULL.
 */
int filter_match(const struct filter *f, const char *name)
{
	if (!name)
		return -EINVAL;
	if (!f)
		return 1;
	if (list_match(&f->exclude, name))
		return 0;
	if (f->include.n == 0)
		return 1;
	return list_match(&f->include, name);
}

/* A NULL filter has no entries either. */
int filter_empty(const struct filter *f)
{
	return !f || (f->include.n == 0 && f->exclude.n == 0);
}

/* A NULL filter has no include entries. */
int filter_has_includes(const struct filter *f)
{
	return f && f->include.n > 0;
}
