/* SPDX-License-Identifier: MIT */
/*
 * functions.c: Netdata Functions for kvm_stats.plugin, the external plugin
 * protocol of Netdata 1.37 (collectors/plugins.d/pluginsd_parser.c,
 * database/rrdfunctions.c):
 *
 *   plugin -> FUNCTION GLOBAL "kvm-vms" <timeout> "<help>"      (declare)
 *   Netdata -> FUNCTION <transaction> <timeout> "kvm-vms <params>" (stdin)
 *   plugin -> FUNCTION_RESULT_BEGIN <transaction> <status> application/json <expires>
 *             <body>
 *             FUNCTION_RESULT_END
 *
 * Netdata replaces '=' and ';' in the function string with ':' before it
 * sends it, so "sort=pid" arrives as "sort:pid"; both are taken. The
 * table follows the shape of apps.plugin's "processes" (1.37): "type":
 * "table", "columns" by name with their index, units, sort and summary,
 * "data" rows in index order, "default_sort_column".
 *
 * Requests are read without blocking: the main loop sleeps here between
 * samples, and a request that is malformed, unknown or too long gets an
 * error result (or, without a transaction, none), never a dead plugin.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "functions.h"
#include "memview.h"
#include "namejson.h"

#define FUNCTION_NAME "kvm-vms"
#define FUNCTION_TIMEOUT 10
#define FUNCTION_HELP "KVM VMs by mapped guest memory: the cheapest to live-migrate last"

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

int functions_open(struct functions *f, int fd, bool enabled, unsigned update_every)
{
	*f = (struct functions){ .fd = -1, .update_every = update_every };
	if (!enabled)
		return 0;
	f->fd_flags = fcntl(fd, F_GETFL);
	if (f->fd_flags < 0)
		return errno == EBADF ? 0 : -errno;	/* no stdin: nobody calls */
	if (fcntl(fd, F_SETFL, f->fd_flags | O_NONBLOCK) < 0)
		return -errno;
	f->fd = fd;
	return 0;
}

void functions_close(struct functions *f)
{
	if (f && f->fd >= 0) {
		fcntl(f->fd, F_SETFL, f->fd_flags);
		f->fd = -1;
	}
}

void functions_declare(const struct functions *f, FILE *out)
{
	if (f->fd >= 0)
		fprintf(out, "FUNCTION GLOBAL \"%s\" %d \"%s\"\n", FUNCTION_NAME,
			FUNCTION_TIMEOUT, FUNCTION_HELP);
}

/*
 * Splits line into up to max words, as Netdata's quoted_strings_splitter:
 * blanks separate, '...' or "..." quote. Writes into buf. The count.
 */
static size_t split_words(const char *line, char *buf, char **words, size_t max)
{
	size_t n = 0;
	char *s;

	strcpy(buf, line);
	s = buf;
	while (n < max) {
		char quote = 0;

		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (!*s)
			break;
		if (*s == '"' || *s == '\'')
			quote = *s++;
		words[n++] = s;
		while (*s && (quote ? *s != quote : !(*s == ' ' || *s == '\t' || *s == '\r' ||
						      *s == '\n')))
			s++;
		if (!*s)
			break;
		*s++ = '\0';
	}
	return n;
}

/* Netdata's transactions are UUIDs; anything of [A-Za-z0-9_-] is taken. */
static bool transaction_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 64)
		return false;
	for (; *t; t++)
		if (!((*t >= '0' && *t <= '9') || (*t >= 'a' && *t <= 'z') ||
		      (*t >= 'A' && *t <= 'Z') || *t == '-' || *t == '_'))
			return false;
	return true;
}

static void result(FILE *out, const char *transaction, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	fprintf(out, "FUNCTION_RESULT_BEGIN %s %d application/json %ld\n", transaction,
		text ? status : 500, status == 200 ? (long)time(NULL) + 1 : 0L);
	fputs(text ? text : "{\"status\":500,\"error_message\":\"out of memory\"}", out);
	fputs("\nFUNCTION_RESULT_END\n", out);
	free(text);
	json_decref(body);
}

static void error_result(FILE *out, const char *transaction, int status, const char *msg)
{
	result(out, transaction, status,
	       json_pack("{s:i, s:s}", "status", status, "error_message", msg));
}

struct column {
	const char *key, *name, *type, *units, *sort, *summary;
	bool unique;
};

/* The row order of every data row; "sort" is each column's default way. */
static const struct column columns[] = {
	{ "pid", "PID", "integer", NULL, "ascending", "count", true },
	{ "name", "VM", "string", NULL, "ascending", NULL, false },
	{ "mapped", "Mapped", "bar-with-integer", "MiB", "descending", "sum", false },
	{ "ram", "RAM", "bar-with-integer", "MiB", "descending", "sum", false },
	{ "mapped_pct", "Mapped%", "bar-with-integer", "%", "descending", NULL, false },
	{ "pages_4k", "pages_4k", "integer", "pages", "descending", "sum", false },
	{ "pages_2m", "pages_2m", "integer", "pages", "descending", "sum", false },
	{ "pages_1g", "pages_1g", "integer", "pages", "descending", "sum", false },
	{ "vcpus", "vCPUs", "integer", NULL, "descending", "sum", false },
	{ "exits", "Exits", "bar-with-integer", "exits/s", "descending", "sum", false },
};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

static json_t *opt_real(bool have, double v)
{
	return have ? json_real(v) : json_null();
}

static json_t *row_json(const struct memview_row *r)
{
	double pct = memview_mapped_percent(r);

	return json_pack("[i, o, o, o, o, o, o, o, I, o]", (int)r->pid, name_json(r->name),
			 opt_real(r->have_pages, r->mapped_bytes / 1048576.0),
			 opt_real(r->have_ram, r->ram_bytes / 1048576.0),
			 opt_real(pct >= 0, pct),
			 r->have_pages ? json_integer((json_int_t)r->pages_4k) : json_null(),
			 r->have_pages ? json_integer((json_int_t)r->pages_2m) : json_null(),
			 r->have_pages ? json_integer((json_int_t)r->pages_1g) : json_null(),
			 (json_int_t)r->vcpus, opt_real(r->have_rate, r->exits_per_sec));
}

static int find_column(const char *key)
{
	for (size_t i = 0; i < NCOLUMNS; i++)
		if (strcmp(columns[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* qsort_r() order of two rows by the column *ctx, in its own direction. */
static int cmp_rows(const void *a, const void *b, void *ctx)
{
	const int sort_column = *(const int *)ctx;
	json_t *x = json_array_get(*(json_t *const *)a, (size_t)sort_column);
	json_t *y = json_array_get(*(json_t *const *)b, (size_t)sort_column);
	int desc = strcmp(columns[sort_column].sort, "descending") == 0 ? -1 : 1;

	if (json_is_null(x) || json_is_null(y))
		return json_is_null(x) - json_is_null(y);	/* unknown last */
	if (json_is_string(x))
		return desc * strcmp(json_string_value(x), json_string_value(y));
	return desc * ((json_number_value(x) > json_number_value(y)) -
		       (json_number_value(x) < json_number_value(y)));
}

static json_t *table(const struct memview *v, int sort, unsigned update_every)
{
	json_t *cols = json_object(), *data = json_array(), **rows;

	rows = calloc(v->nrows ? v->nrows : 1, sizeof(*rows));
	if (!cols || !data || !rows) {
		free(rows);
		json_decref(cols);
		json_decref(data);
		return NULL;
	}
	for (size_t i = 0; i < v->nrows; i++)
		rows[i] = row_json(&v->rows[i]);
	/* memview's order is by mapped bytes; another column sorts here. */
	if (sort >= 0 && strcmp(columns[sort].key, "mapped") != 0)
		qsort_r(rows, v->nrows, sizeof(*rows), cmp_rows, &sort);
	for (size_t i = 0; i < v->nrows; i++)
		json_array_append_new(data, rows[i]);
	free(rows);
	for (size_t i = 0; i < NCOLUMNS; i++) {
		const struct column *c = &columns[i];
		json_t *o = json_pack("{s:i, s:b, s:s, s:b, s:s, s:s, s:b}", "index", (int)i,
				      "unique_key", c->unique, "name", c->name, "visible", 1,
				      "type", c->type, "sort", c->sort, "sortable", 1);

		if (o && c->units)
			json_object_set_new(o, "units", json_string(c->units));
		if (o && c->summary)
			json_object_set_new(o, "summary", json_string(c->summary));
		json_object_set_new(cols, c->key, o);
	}
	return json_pack("{s:i, s:s, s:i, s:s, s:s, s:o, s:o}", "status", 200,
			 "type", "table", "update_every", (int)update_every,
			 "help", FUNCTION_HELP, "default_sort_column",
			 sort >= 0 ? columns[sort].key : "mapped", "columns", cols, "data", data);
}

static void answer_vms(const struct functions *f, const char *transaction,
		       char *params, struct kvmstats_host *host, FILE *out)
{
	char *save = NULL, *tok;
	struct memview v;
	int sort = -1;

	for (tok = strtok_r(params, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (strcmp(tok, "info") == 0 || strcmp(tok, "help") == 0) {
			result(out, transaction, 200, json_pack(
				"{s:i, s:s, s:s}", "status", 200, "help", FUNCTION_HELP,
				"parameters", "sort:pid|name|mapped|ram|mapped_pct|pages_4k|"
				"pages_2m|pages_1g|vcpus|exits"));
			return;
		}
		if ((strncmp(tok, "sort:", 5) == 0 || strncmp(tok, "sort=", 5) == 0) &&
		    (sort = find_column(tok + 5)) >= 0)
			continue;
		error_result(out, transaction, 400, "unknown parameter (try: kvm-vms info)");
		return;
	}
	if (memview_collect(host, "/proc", f->update_every, &v) < 0) {
		error_result(out, transaction, 500, "out of memory");
		return;
	}
	result(out, transaction, 200, table(&v, sort, f->update_every));
	memview_free(&v);
}

int functions_handle_line(const struct functions *f, const char *line,
			  struct kvmstats_host *host, FILE *out)
{
	char buf[FUNCTIONS_LINE_MAX], *w[5], *name;
	size_t n, len;

	if (strlen(line) >= sizeof(buf))
		return -EINVAL;
	n = split_words(line, buf, w, 5);
	if (n == 0 || strcmp(w[0], "FUNCTION") != 0)
		return 0;	/* nothing else comes from Netdata in 1.37 */
	if (n < 2 || !transaction_ok(w[1]))
		return -EINVAL;
	if (n != 4) {
		error_result(out, w[1], 400, "malformed request: FUNCTION <transaction> "
			     "<timeout> \"<function> [params]\"");
		return 0;
	}
	name = w[3];
	len = strcspn(name, " ");
	if (len != strlen(FUNCTION_NAME) || strncmp(name, FUNCTION_NAME, len) != 0) {
		error_result(out, w[1], 404, "no such function (this plugin has: "
			     FUNCTION_NAME ")");
		return 0;
	}
	answer_vms(f, w[1], name + len, host, out);
	return 0;
}

/* Reads what is there; each complete line is handled. The count handled. */
static int read_requests(struct functions *f, struct kvmstats_host *host, FILE *out)
{
	int handled = 0;

	for (;;) {
		char chunk[4096];
		ssize_t r = read(f->fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || (r < 0 && errno != EAGAIN)) {
			f->fd = -1;	/* EOF: Netdata sends nothing more */
			return handled;
		}
		if (r < 0)
			return handled;
		for (ssize_t i = 0; i < r; i++) {
			char c = chunk[i];

			if (c != '\n') {
				if (f->skipping)
					continue;
				if (f->len + 1 >= sizeof(f->line)) {
					fputs("kvm_stats.plugin: a request line longer than "
					      "16 KiB from Netdata: ignored\n", stderr);
					f->skipping = true;
					f->len = 0;
					continue;
				}
				f->line[f->len++] = c;
				continue;
			}
			if (!f->skipping) {
				f->line[f->len] = '\0';
				if (functions_handle_line(f, f->line, host, out) < 0)
					fprintf(stderr, "kvm_stats.plugin: a malformed FUNCTION "
						"request without a transaction: ignored\n");
				handled++;
			}
			f->skipping = false;
			f->len = 0;
		}
	}
}

int functions_sleep(struct functions *f, uint64_t deadline_us,
		    struct kvmstats_host *host, FILE *out)
{
	for (;;) {
		uint64_t now = mono_usec();
		struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
		int timeout_ms, r;

		if (now >= deadline_us)
			return 0;
		timeout_ms = (int)((deadline_us - now + 999) / 1000);
		if (f->fd < 0) {
			struct timespec ts = {
				.tv_sec = (time_t)(deadline_us / 1000000ULL),
				.tv_nsec = (long)(deadline_us % 1000000ULL) * 1000,
			};

			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			return 0;
		}
		r = poll(&pfd, 1, timeout_ms);
		if (r < 0 && errno != EINTR)
			return 0;
		if (r < 0)
			return 0;	/* a signal: let the caller look at stop */
		if (r > 0 && read_requests(f, host, out) > 0)
			return 1;
	}
}
