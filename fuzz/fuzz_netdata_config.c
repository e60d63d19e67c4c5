/* SPDX-License-Identifier: MIT */
/*
 * fuzz_netdata_config.c: libFuzzer target for netdata/config.c, the
 * kvm_stats.conf parser of the Netdata plugin (inih's syntax, then every
 * value checked, filters built with common/filter.c).
 *
 * The input is the text of a kvm_stats.conf, up to its first NUL (where
 * the text variant stops). It is parsed twice through
 * plugin_config_parse_string() and once through plugin_config_parse_file()
 * on a memfd holding the same bytes. Checked, besides ASan and UBSan:
 *   - the result is 0, -EINVAL or -ENOMEM, the same every time and for
 *     both variants, with the same message after "line N" / "path:N";
 *   - err is written only on failure, and then names a line of the text
 *     (1 to the number of lines), and the setting or value it quotes is on
 *     that line: a message must point at the line to fix; it holds no
 *     control byte (it goes to Netdata's log as one line);
 *   - an accepted config is within the documented bounds;
 *   - indentation means nothing: the text with the blanks every line
 *     starts with taken out gives the same result, message and settings
 *     (inih's multi-line mode once read an indented "name = value" as the
 *     value of the setting above);
 *   - plugin_config_done() frees everything (LeakSanitizer).
 *
 * Findings (fixed, kept as regressions): a line inih could not split
 * before a bad value made the message name one line and quote another;
 * a line longer than inih's 200-byte buffer was read as several lines
 * (the tail of a long comment applied as a setting); control bytes of the
 * text reached the message. fuzz/README.md, "Open findings".
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../netdata/config.h"
#include "fuzz_check.h"

#define ERRLEN 2048
#define UNTOUCHED "untouched"

/* The memfd the file variant reads, made once. */
static int text_file(const char *text, size_t len, char *path, size_t size)
{
	static int fd = -1;

	if (fd < 0) {
		fd = memfd_create("kvm_stats.conf", MFD_CLOEXEC);
		FUZZ_CHECK(fd >= 0);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	FUZZ_CHECK(pwrite(fd, text, len, 0) == (ssize_t)len);
	snprintf(path, size, "/proc/self/fd/%d", fd);
	return fd;
}

/* Line n (1-based) of text: its start and length, or NULL past the end. */
static const char *nth_line(const char *text, size_t len, unsigned long n,
			    size_t *ret_len)
{
	const char *p = text, *end = text + len;

	if (n == 0)
		return NULL;
	while (--n > 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			return NULL;
		p = nl + 1;
	}
	if (p == end && p > text)
		return NULL;	/* after the last '\n': no such line */
	*ret_len = (size_t)((const char *)(memchr(p, '\n', (size_t)(end - p)) ?: end) - p);
	return p;
}

/* A control byte, which a message prints as '?'. */
static int is_control(char c)
{
	return (unsigned char)c < 0x20 || c == 0x7f;
}

/* Whether the n bytes at q are in line, '?' standing for a control byte. */
static int quoted_in_line(const char *q, size_t n, const char *line, size_t len)
{
	for (size_t i = 0; i + n <= len; i++) {
		size_t k = 0;

		while (k < n && (line[i + k] == q[k] ||
				 (q[k] == '?' && is_control(line[i + k]))))
			k++;
		if (k == n)
			return 1;
	}
	return 0;
}

/* The last occurrence of needle in s, or NULL. */
static const char *last_of(const char *s, const char *needle)
{
	const char *last = NULL;

	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		last = p;
	return last;
}

/*
 * The message of a failed parse: "line N: what", N a line of the text, and
 * what it quotes from the setting is on that line:
 *   "unknown setting 'NAME' in [S]": NAME;
 *   "bad value for 'NAME' in [S]: 'VALUE'": VALUE.
 * NAME, S and VALUE may hold the separators themselves: what is compared
 * is a prefix of NAME (up to the first "' in [") and a suffix of VALUE
 * (after the last "]: '"), which are on the line whenever NAME and VALUE
 * are.
 */
static void check_message(const char *err, const char *text, size_t len)
{
	static const char unknown[] = "unknown setting '", bad[] = "bad value for '";
	unsigned long n;
	int skip = 0;
	const char *what, *line, *q, *e;
	size_t llen = 0;

	FUZZ_CHECK(sscanf(err, "line %lu: %n", &n, &skip) == 1 && skip > 0);
	line = nth_line(text, len, n, &llen);
	FUZZ_CHECK(line != NULL);
	what = err + skip;
	for (const char *c = what; *c; c++)
		FUZZ_CHECK(!is_control(*c));
	if (strncmp(what, unknown, strlen(unknown)) == 0) {
		q = what + strlen(unknown);
		e = strstr(q, "' in [") ?: q + strlen(q);
		FUZZ_CHECK(quoted_in_line(q, (size_t)(e - q), line, llen));
	} else if (strncmp(what, bad, strlen(bad)) == 0) {
		q = last_of(what, "]: '");
		FUZZ_CHECK(q != NULL);
		q += 4;
		e = q + strlen(q);
		if (e > q && e[-1] == '\'')
			e--;
		FUZZ_CHECK(quoted_in_line(q, (size_t)(e - q), line, llen));
	}
}

/* An accepted config is within what the README documents. */
static void check_config(const struct plugin_config *cfg)
{
	FUZZ_CHECK(cfg->update_every >= 1 && cfg->update_every <= 3600);
	FUZZ_CHECK(cfg->rescan_every >= 1 && cfg->rescan_every <= 86400);
	FUZZ_CHECK(cfg->nqmp <= PLUGIN_CONFIG_MAX_QMP);
	for (size_t i = 0; i < cfg->nqmp; i++)
		FUZZ_CHECK(cfg->qmp[i] && cfg->qmp[i][0] != '\0');
	FUZZ_CHECK(filter_match(cfg->stats, "exits") >= 0);
	FUZZ_CHECK(filter_match(cfg->vms, "web1") >= 0);
}

/* FNV-1a over n bytes, on from h. */
static uint64_t hash(uint64_t h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ULL;
	return h;
}

/*
 * What cfg says, as one number: every field, the QMP paths, the libvirt
 * URI, and what the filters make of a few names (the entries themselves
 * are not exposed).
 */
static uint64_t config_hash(const struct plugin_config *cfg)
{
	static const char *const names[] = { "exits", "mmio_exits", "pf_taken", "web1", "" };
	int v[] = { cfg->update_every, cfg->rescan_every, cfg->per_vcpu, cfg->histograms,
		    cfg->vcpu_histograms, cfg->groups_set, cfg->zero_dims, cfg->debugfs,
		    cfg->debugfs_every, (int)cfg->nqmp, !cfg->stats, !cfg->vms,
		    filter_has_includes(cfg->stats), filter_has_includes(cfg->vms) };
	uint64_t h = hash(0xcbf29ce484222325ULL, v, sizeof(v));

	h = hash(h, cfg->vcpu_groups, sizeof(cfg->vcpu_groups));
	h = hash(h, cfg->groups, sizeof(cfg->groups));
	for (size_t i = 0; i < cfg->nqmp; i++)
		h = hash(h, cfg->qmp[i], strlen(cfg->qmp[i]) + 1);
	if (cfg->libvirt_uri)
		h = hash(h, cfg->libvirt_uri, strlen(cfg->libvirt_uri) + 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int m[2] = { filter_match(cfg->stats, names[i]), filter_match(cfg->vms, names[i]) };

		h = hash(h, m, sizeof(m));
	}
	return h;
}

/* The result; *ret_hash: config_hash() of what was parsed, errors or not. */
static int parse_text(const char *text, char *err, uint64_t *ret_hash)
{
	struct plugin_config cfg;
	int r;

	plugin_config_defaults(&cfg, 1);
	strcpy(err, UNTOUCHED);
	r = plugin_config_parse_string(text, &cfg, err, ERRLEN);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r == 0) {
		FUZZ_CHECK(strcmp(err, UNTOUCHED) == 0);
		check_config(&cfg);
	}
	*ret_hash = config_hash(&cfg);
	plugin_config_done(&cfg);
	plugin_config_done(&cfg);	/* twice is harmless */
	return r;
}

/*
 * text without the blanks each line starts with (after the UTF-8 BOM on
 * line 1, which inih skips first). The caller frees it.
 */
static char *unindented(const char *text, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	int start = 1;

	FUZZ_CHECK(out != NULL);
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
		memcpy(o, text, 3);
		o += 3;
		text += 3;
		len -= 3;
	}
	for (size_t i = 0; i < len; i++) {
		if (start && text[i] != '\n' && isspace((unsigned char)text[i]))
			continue;
		start = text[i] == '\n';
		*o++ = text[i];
	}
	*o = '\0';
	return out;
}

/* The file variant: the same result, the message after "path:" instead. */
static void check_file(const char *text, size_t len, int want, const char *want_err)
{
	struct plugin_config cfg;
	char path[64], err[ERRLEN];
	size_t plen;
	int r;

	text_file(text, len, path, sizeof(path));
	plugin_config_defaults(&cfg, 1);
	strcpy(err, UNTOUCHED);
	r = plugin_config_parse_file(path, &cfg, err, sizeof(err));
	FUZZ_CHECK(r == want);
	if (r == -EINVAL) {
		plen = strlen(path);
		FUZZ_CHECK(strncmp(err, path, plen) == 0 && err[plen] == ':');
		FUZZ_CHECK(strcmp(err + plen + 1, want_err + strlen("line ")) == 0);
	}
	plugin_config_done(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *flat;
	uint64_t h, h_again;
	char err[ERRLEN], again[ERRLEN];
	size_t len;
	int r;

	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	len = strlen(text);
	r = parse_text(text, err, &h);
	if (r == -EINVAL)
		check_message(err, text, len);
	FUZZ_CHECK(parse_text(text, again, &h_again) == r);
	FUZZ_CHECK(strcmp(err, again) == 0);
	FUZZ_CHECK(h_again == h);
	check_file(text, len, r, err);
	flat = unindented(text, len);
	FUZZ_CHECK(parse_text(flat, again, &h_again) == r);
	FUZZ_CHECK(strcmp(err, again) == 0);
	FUZZ_CHECK(h_again == h);
	free(flat);
	free(text);
	return 0;
}
