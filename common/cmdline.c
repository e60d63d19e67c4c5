/*
 * cmdline.c: a VM's name and uuid from its VMM's command line.
 *
 * QEMU: "-name guest=NAME,debug-threads=on", "-name NAME" (guest is the
 * implied first key), ",," for a literal comma, "-uuid UUID"; each also
 * with "--". Parsed the way QEMU's util/qemu-option.c does it. The bytes
 * are anybody's (any user in group kvm can start a VM called anything):
 * they are kept verbatim, only capped, and sanitized by each front end for
 * its own output.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstats.h"

/* Bytes kept of a name or uuid from a command line anyone may have chosen. */
#define CMDLINE_VALUE_MAX 4096

/* A run of bytes in a command line; not NUL-terminated. */
struct span {
	const char *start;
	size_t len;
};

/* The next argument of [*p, end): NUL-terminated, except maybe the last. */
static bool next_arg(const char **p, const char *end, struct span *ret_arg)
{
	const char *nul;

	if (*p >= end)
		return false;
	nul = memchr(*p, '\0', (size_t)(end - *p));
	ret_arg->start = *p;
	ret_arg->len = (size_t)((nul ? nul : end) - *p);
	*p = nul ? nul + 1 : end;
	return true;
}

static bool span_is(const char *start, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(start, s, len) == 0;
}

/*
 * End of an option value starting at p, as QEMU's get_opt_value() reads
 * it: at the first ',' that is not doubled (",," is a literal comma).
 */
static const char *opt_value_end(const char *p, const char *end)
{
	while (p < end) {
		if (*p == ',') {
			if (end - p < 2 || p[1] != ',')
				break;
			p++;
		}
		p++;
	}
	return p;
}

/*
 * Finds "guest" in one -name value the way QEMU's opts_do_parse() does for
 * its "name" option list: "key=value" elements separated by ','; a first
 * element without '=' is the value of the implied key "guest" ("NAME",
 * "NAME,process=x"); a later one is a flag. Keys end at '=' or ','. Sets
 * *ret_name (still escaped) each time guest is set, so the last one wins.
 */
static void find_guest(const struct span *value, struct span *ret_name,
		       bool *ret_found)
{
	const char *p = value->start, *end = value->start + value->len;
	bool first = true;

	while (p < end) {
		const char *key = p, *key_end = p, *v;

		while (key_end < end && *key_end != '=' && *key_end != ',')
			key_end++;
		if (key_end < end && *key_end == '=') {
			v = key_end + 1;
			p = opt_value_end(v, end);
			if (span_is(key, (size_t)(key_end - key), "guest")) {
				*ret_name = (struct span){ v, (size_t)(p - v) };
				*ret_found = true;
			}
		} else if (first) {
			p = opt_value_end(key, end);
			*ret_name = (struct span){ key, (size_t)(p - key) };
			*ret_found = true;
		} else {
			p = key_end;	/* a flag, "debug-threads" alone */
		}
		if (p < end)
			p++;		/* the ',' between elements */
		first = false;
	}
}

/*
 * Copies v, at most CMDLINE_VALUE_MAX bytes of it, otherwise unchanged:
 * the name is untrusted and the front ends sanitize it for their sink.
 * unescape turns ",," into ','; in a value from opt_value_end() every ','
 * is doubled. *ret is NULL for an empty value.
 */
static int dup_value(const struct span *v, bool unescape, char **ret)
{
	size_t cap = v->len < CMDLINE_VALUE_MAX ? v->len : CMDLINE_VALUE_MAX;
	size_t i, n = 0;
	char *s;

	if (v->len == 0) {
		*ret = NULL;
		return 0;
	}
	s = malloc(cap + 1);
	if (!s)
		return -ENOMEM;
	for (i = 0; i < v->len && n < cap; i++) {
		s[n++] = v->start[i];
		if (unescape && v->start[i] == ',')
			i++;
	}
	s[n] = '\0';
	*ret = s;
	return 0;
}

/*
 * QEMU's lookup_opt() takes "-name" and "--name" alike, and the value only
 * as the next argument ("-name=x" is no option). The "name" list has
 * merge_lists set, so repeated -name options add up and the last guest=
 * wins. A -name or -uuid without a following argument is ignored.
 */
int cmdline_parse(const char *cmdline, size_t len,
			   char **ret_name, char **ret_uuid)
{
	struct span arg, value, name = { 0 }, uuid = { 0 };
	bool have_name = false, have_uuid = false;
	const char *p, *end;
	char *n = NULL, *u = NULL;
	int r;

	if (len == 0) {		/* a kernel thread or a zombie */
		*ret_name = NULL;
		*ret_uuid = NULL;
		return 0;
	}
	p = cmdline;
	end = cmdline + len;
	next_arg(&p, end, &arg);	/* argv[0], the program */
	while (next_arg(&p, end, &arg)) {
		const char *opt = arg.start;
		size_t olen = arg.len;

		if (olen >= 2 && opt[0] == '-' && opt[1] == '-') {
			opt++;
			olen--;
		}
		if (span_is(opt, olen, "-name")) {
			if (!next_arg(&p, end, &value))
				break;
			find_guest(&value, &name, &have_name);
		} else if (span_is(opt, olen, "-uuid")) {
			if (!next_arg(&p, end, &value))
				break;
			uuid = value;
			have_uuid = true;
		}
	}

	if (have_name) {
		r = dup_value(&name, true, &n);
		if (r < 0)
			return r;
	}
	if (have_uuid) {
		r = dup_value(&uuid, false, &u);
		if (r < 0) {
			free(n);
			return r;
		}
	}
	*ret_name = n;
	*ret_uuid = u;
	return 0;
}
