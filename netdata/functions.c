/* SPDX-License-Identifier: MIT */
/*
 * functions.c: Netdata Functions for kvm_stats.plugin, the external plugin
 * protocol of Netdata 1.37 (collectors/plugins.d/pluginsd_parser.c,
 * database/rrdfunctions.c) and the fields Netdata 2.x adds
 * (src/plugins.d/pluginsd_functions.c, src/plugins.d/README.md "FUNCTION"):
 *
 *   plugin -> FUNCTION GLOBAL "kvm-vms" <timeout> "<help>"      (declare, 1.37)
 *             ... "<tags>" <access hex> <priority>               (2.x only)
 *   Netdata -> FUNCTION <transaction> <timeout> "kvm-vms <params>" (stdin, 1.37)
 *              ... "<access hex>" "<source>"                     (2.x)
 *              FUNCTION_PAYLOAD <transaction> <timeout> "kvm-vms" "<access>"
 *                "<source>" "<content type>", body lines, FUNCTION_PAYLOAD_END (2.x)
 *              FUNCTION_CANCEL <transaction>, FUNCTION_PROGRESS <transaction> (2.x)
 *   plugin -> FUNCTION_RESULT_BEGIN <transaction> <status> application/json <expires>
 *             <body>
 *             FUNCTION_RESULT_END
 *
 * Netdata replaces '=' and ';' in the function string with ':' before it
 * sends it, so "sort=pid" arrives as "sort:pid"; both are taken. Under
 * 1.37 the table follows the shape of apps.plugin's "processes" (1.37):
 * "type": "table", "columns" by name with their index, units, sort and
 * summary, "data" rows in index order, "default_sort_column". Under 2.x
 * it is the Functions v3 simple table (src/plugins.d/FUNCTION_UI_REFERENCE.md,
 * functions-table.md; the column keys of buffer_rrdf_table_add_field()):
 * "has_history": false, "accepted_params", and per column
 * "visualization", "value_options", "filter", "sticky", "max".
 *
 * Requests are read without blocking: the main loop sleeps here between
 * samples, and a request that is malformed, unknown or too long gets an
 * error result (or, without a transaction, none), never a dead plugin.
 * Every call is answered when it is read, so FUNCTION_CANCEL and
 * FUNCTION_PROGRESS find nothing running, except a payload call whose
 * body has not ended: a cancel answers it 499, its timeout 408.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "functions.h"
#include "memview.h"
#include "namejson.h"

#define FUNCTION_NAME "kvm-vms"
#define FUNCTION_TIMEOUT 10
#define FUNCTION_HELP "KVM VMs by mapped guest memory: the cheapest to live-migrate last"
#define FUNCTION_TAGS "top"
#define FUNCTION_PRIORITY 100	/* Netdata's RRDFUNCTIONS_PRIORITY_DEFAULT */

/*
 * Netdata 2.x HTTP_ACCESS bits (src/libnetdata/http/http-access.h): the
 * VM list names every user's VMs and pids, so the caller must be signed
 * in, of this node's space, and allowed sensitive data, as Netdata's own
 * process and log functions declare.
 */
#define ACCESS_SIGNED_ID 0x1u
#define ACCESS_SAME_SPACE 0x2u
#define ACCESS_SENSITIVE_DATA 0x10u
#define FUNCTION_ACCESS (ACCESS_SIGNED_ID | ACCESS_SAME_SPACE | ACCESS_SENSITIVE_DATA)

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

int functions_open(struct functions *f, int fd, enum functions_dialect dialect,
		   unsigned update_every)
{
	f->fd = -1;
	f->fd_flags = 0;
	f->dialect = dialect;
	f->len = 0;
	f->skipping = false;
	f->update_every = update_every;
	f->payload.state = PAYLOAD_IDLE;
	if (dialect == FUNCTIONS_NONE)
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
	if (f->fd < 0)
		return;
	if (f->dialect == FUNCTIONS_V2)	/* 1.37 would take the extra words as garbage */
		fprintf(out, "FUNCTION GLOBAL \"%s\" %d \"%s\" \"%s\" 0x%x %d\n",
			FUNCTION_NAME, FUNCTION_TIMEOUT, FUNCTION_HELP, FUNCTION_TAGS,
			FUNCTION_ACCESS, FUNCTION_PRIORITY);
	else
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

/*
 * The body on one line with no byte Netdata splits words at. Netdata 1.37
 * reads plugin lines with fgets() into PLUGINSD_LINE_MAX (15,360) bytes
 * (parser/parser.c, libnetdata.h of v1.37.1): a longer line comes in
 * pieces, each appended as it is to the deferred result, so the answer
 * is whole again, unless a piece's first word (up to a space, tab, CR, LF
 * or '=': pluginsd_space()) is FUNCTION_RESULT_END. A VM name is anybody's
 * text and could put one there where a piece starts (some 300 VMs make the
 * answer longer than a piece): cut short, the rest read as keywords.
 * Compact JSON has none of these bytes outside strings, and within them
 * they are written as \u escapes, which mean the same to a JSON reader.
 */
static void put_body(FILE *out, const char *text)
{
	bool in_string = false, escaped = false;

	for (const char *c = text; *c; c++) {
		if (in_string && !escaped && (*c == ' ' || *c == '=')) {
			fprintf(out, "\\u%04x", (unsigned)*c);
			continue;
		}
		fputc(*c, out);
		if (escaped)
			escaped = false;
		else if (*c == '\\')
			escaped = in_string;
		else if (*c == '"')
			in_string = !in_string;
	}
}

static void result(FILE *out, const char *transaction, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	fprintf(out, "FUNCTION_RESULT_BEGIN %s %d application/json %ld\n", transaction,
		text ? status : 500, status == 200 ? (long)time(NULL) + 1 : 0L);
	put_body(out, text ? text : "{\"status\":500,\"error_message\":\"out of memory\"}");
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

/* Functions v3 (2.x): how the dashboard shows and filters a column. */
static void column_v3(json_t *o, const struct column *c, json_t *data, size_t index)
{
	bool numeric = strcmp(c->type, "string") != 0;
	bool bar = strcmp(c->type, "bar-with-integer") == 0;
	json_t *opts = json_pack("{s:s, s:i, s:n}", "transform", numeric ? "number" : "none",
				 "decimal_points", bar ? 1 : 0, "default_value");

	if (opts && c->units)
		json_object_set_new(opts, "units", json_string(c->units));
	json_object_set_new(o, "visualization", json_string(bar ? "bar" : "value"));
	json_object_set_new(o, "value_options", opts);
	json_object_set_new(o, "filter", json_string(numeric ? "range" : "multiselect"));
	json_object_set_new(o, "sticky", json_boolean(strcmp(c->key, "name") == 0));
	json_object_set_new(o, "summary", json_string(c->summary ? c->summary : "count"));
	if (bar) {	/* a bar is drawn against the column's largest value */
		double max = 0;
		size_t i;
		json_t *row;

		json_array_foreach(data, i, row) {
			json_t *v = json_array_get(row, index);

			if (json_is_number(v) && json_number_value(v) > max)
				max = json_number_value(v);
		}
		json_object_set_new(o, "max", json_real(max));
	}
}

static json_t *table(const struct functions *f, const struct memview *v, int sort)
{
	json_t *cols = json_object(), *data = json_array(), **rows, *t;

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
		if (o && f->dialect == FUNCTIONS_V2)
			column_v3(o, c, data, i);
		json_object_set_new(cols, c->key, o);
	}
	t = json_pack("{s:i, s:s, s:i, s:s, s:s, s:o, s:o}", "status", 200,
		      "type", "table", "update_every", (int)f->update_every,
		      "help", FUNCTION_HELP, "default_sort_column",
		      sort >= 0 ? columns[sort].key : "mapped", "columns", cols, "data", data);
	if (t && f->dialect == FUNCTIONS_V2) {
		json_object_set_new(t, "has_history", json_false());
		json_object_set_new(t, "accepted_params", json_pack("[s, s]", "info", "sort"));
		json_object_set_new(t, "expires", json_integer((json_int_t)time(NULL) + 1));
	}
	return t;
}

/* What a call asks for, from its parameters and its payload. */
struct request {
	int sort;	/* a column, or -1: by mapped memory */
	bool info;
};

static json_t *info(const struct functions *f)
{
	if (f->dialect != FUNCTIONS_V2)
		return json_pack("{s:i, s:s, s:s}", "status", 200, "help", FUNCTION_HELP,
				 "parameters", "sort:pid|name|mapped|ram|mapped_pct|pages_4k|"
				 "pages_2m|pages_1g|vcpus|exits");
	/* The preflight of Functions v3: "v": 3 has the UI POST its calls. */
	return json_pack("{s:i, s:i, s:s, s:b, s:s, s:i, s:[s, s]}", "v", 3, "status", 200,
			 "type", "table", "has_history", 0, "help", FUNCTION_HELP,
			 "update_every", (int)f->update_every, "accepted_params", "info", "sort");
}

/*
 * The parameters Netdata's dashboard adds to every call (Functions v3,
 * FUNCTION_UI_REFERENCE.md "Standard Accepted Parameters"): they concern
 * tables with history, which the dashboard filters itself for this one.
 */
static bool ignored_param(const char *tok)
{
	static const char *const keys[] = {
		"after", "before", "last", "query", "direction", "anchor", "slice", "timeout",
		"data_only", "if_modified_since", "tail", "delta", "sampling", "facets",
		"histogram",
	};
	size_t len = strcspn(tok, ":=");

	if (tok[len] == '\0')
		return false;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i]) == len && strncmp(tok, keys[i], len) == 0)
			return true;
	return false;
}

/* "sort:COLUMN info ...", split in place. 0, or -EINVAL with *ret_msg. */
static int parse_params(char *params, struct request *rq, const char **ret_msg)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(params, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (strcmp(tok, "info") == 0 || strcmp(tok, "help") == 0) {
			rq->info = true;
			continue;
		}
		if (ignored_param(tok))
			continue;
		if ((strncmp(tok, "sort:", 5) == 0 || strncmp(tok, "sort=", 5) == 0) &&
		    (rq->sort = find_column(tok + 5)) >= 0)
			continue;
		*ret_msg = "unknown parameter (try: kvm-vms info)";
		return -EINVAL;
	}
	return 0;
}

/*
 * A POST's JSON body: {"sort": "COLUMN", "info": true, ...}. The keys the
 * dashboard adds for tables it filters itself (after, before, query,
 * selections, last, timeout, ...) are ignored. 0, or -EINVAL with *ret_msg.
 */
static int parse_payload(const char *body, size_t len, struct request *rq,
			 const char **ret_msg)
{
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL), *v;
	int r = 0;

	if (!json_is_object(root)) {
		*ret_msg = "the payload is not a JSON object";
		json_decref(root);
		return -EINVAL;
	}
	v = json_object_get(root, "sort");
	if (v && !(json_is_string(v) && (rq->sort = find_column(json_string_value(v))) >= 0)) {
		*ret_msg = "\"sort\" names no column (try: kvm-vms info)";
		r = -EINVAL;
	}
	v = json_object_get(root, "info");
	if (v && json_is_true(v))
		rq->info = true;
	else if (v && !json_is_false(v)) {
		*ret_msg = "\"info\" is not a boolean";
		r = -EINVAL;
	}
	json_decref(root);
	return r;
}

static void answer(const struct functions *f, const char *transaction,
		   const struct request *rq, struct kvmstats_host *host, FILE *out)
{
	struct memview v;

	if (rq->info) {
		result(out, transaction, 200, info(f));
		return;
	}
	if (memview_collect(host, "/proc", f->update_every, &v) < 0) {
		error_result(out, transaction, 500, "out of memory");
		return;
	}
	result(out, transaction, 200, table(f, &v, rq->sort));
	memview_free(&v);
}

/* A timeout in seconds, as Netdata writes it: 1 to 3600. */
static int parse_timeout(const char *s, unsigned *ret)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 3600)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

/*
 * The caller's access (2.x, "0x13"): what Netdata granted the caller. The
 * declaration asks FUNCTION_ACCESS, so Netdata refuses others itself; this
 * refuses them again. A predicate: 1 enough, 0 not, -EINVAL malformed.
 */
static int access_enough(const char *s)
{
	char *end;
	unsigned long long v;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 16);
	if (errno || *end || v > 0xffffffffULL)
		return -EINVAL;
	return ((unsigned)v & FUNCTION_ACCESS) == FUNCTION_ACCESS;
}

/* "kvm-vms[ params]": the params, or NULL when it names another function. */
static char *our_function(char *name)
{
	size_t len = strcspn(name, " ");

	if (len != strlen(FUNCTION_NAME) || strncmp(name, FUNCTION_NAME, len) != 0)
		return NULL;
	return name + len;
}

/*
 * The words every call has: transaction, timeout, "name and params", and
 * 2.x's access. Answers what is wrong with them (a status > 0), or 0.
 */
static int check_call(FILE *out, char *const *w, size_t n, size_t need, unsigned *ret_timeout)
{
	int r;

	if (n < need || parse_timeout(w[2], ret_timeout) < 0) {
		error_result(out, w[1], 400, need == 4 ?
			     "malformed request: FUNCTION <transaction> <timeout> "
			     "\"<function> [params]\" [\"<access>\" \"<source>\"]" :
			     "malformed request: FUNCTION_PAYLOAD <transaction> <timeout> "
			     "\"<function>\" \"<access>\" \"<source>\" \"<content type>\"");
		return 400;
	}
	if (!our_function(w[3])) {
		error_result(out, w[1], 404, "no such function (this plugin has: "
			     FUNCTION_NAME ")");
		return 404;
	}
	if (n >= 5 && (r = access_enough(w[4])) <= 0) {
		error_result(out, w[1], r < 0 ? 400 : 403, r < 0 ? "malformed access" :
			     "kvm-vms lists every user's VMs: it needs a signed-in user "
			     "of this space with access to sensitive data");
		return r < 0 ? 400 : 403;
	}
	return 0;
}

static uint64_t payload_deadline(uint64_t now_us, unsigned timeout_s)
{
	uint64_t t = (uint64_t)timeout_s * 1000000ULL;

	/* Answer a little before Netdata gives up on it. */
	return now_us + t - (t / 2 < 1000000ULL ? t / 2 : 1000000ULL);
}

static void payload_start(struct functions *f, char *const *w, size_t n, uint64_t now_us,
			  FILE *out)
{
	struct functions_payload *p = &f->payload;
	unsigned timeout = FUNCTION_TIMEOUT;
	int status = check_call(out, w, n, 7, &timeout);

	/* Its body follows whatever its first line was: skip it when answered. */
	p->state = status ? PAYLOAD_DISCARD : PAYLOAD_BODY;
	p->overflow = false;
	p->len = 0;
	p->deadline_us = payload_deadline(now_us, timeout);
	snprintf(p->transaction, sizeof(p->transaction), "%s", w[1]);
	if (status)
		return;
	if (strlen(w[3]) >= sizeof(p->request)) {
		error_result(out, w[1], 400, "function parameters too long");
		p->state = PAYLOAD_DISCARD;
		return;
	}
	strcpy(p->request, w[3]);
	p->json = strncasecmp(w[6], "application/json", 16) == 0 &&
		  (w[6][16] == '\0' || w[6][16] == ';');
}

/* FUNCTION_PAYLOAD_END: the call is answered. */
static void payload_end(struct functions *f, struct kvmstats_host *host, FILE *out)
{
	struct functions_payload *p = &f->payload;
	struct request rq = { .sort = -1 };
	const char *msg = NULL;
	char *params;

	p->state = PAYLOAD_IDLE;
	if (p->overflow) {
		error_result(out, p->transaction, 413, "payload too large");
		return;
	}
	if (!p->json) {
		error_result(out, p->transaction, 415, "the payload must be application/json");
		return;
	}
	params = our_function(p->request);
	if (parse_params(params, &rq, &msg) < 0 ||
	    parse_payload(p->body, p->len, &rq, &msg) < 0) {
		error_result(out, p->transaction, 400, msg);
		return;
	}
	answer(f, p->transaction, &rq, host, out);
}

/* A body line: kept, up to FUNCTIONS_PAYLOAD_MAX. */
static void payload_line(struct functions_payload *p, const char *line, bool overlong)
{
	size_t n = strlen(line);

	if (p->state != PAYLOAD_BODY)
		return;
	if (overlong || n + 1 > sizeof(p->body) - p->len) {
		p->overflow = true;
		return;
	}
	memcpy(p->body + p->len, line, n);
	p->len += n;
	p->body[p->len++] = '\n';
}

/* The payload call's time is up: answered now, its remaining body ignored. */
static int payload_expire(struct functions *f, uint64_t now_us, FILE *out)
{
	struct functions_payload *p = &f->payload;

	bool answered = p->state == PAYLOAD_BODY;

	if (p->state == PAYLOAD_IDLE || now_us < p->deadline_us)
		return 0;
	if (answered)
		error_result(out, p->transaction, 408, "the payload did not end within "
			     "the call's timeout");
	p->state = PAYLOAD_IDLE;
	return answered;
}

int functions_handle_line(struct functions *f, const char *line, uint64_t now_us,
			  struct kvmstats_host *host, FILE *out)
{
	struct functions_payload *p = &f->payload;
	char buf[FUNCTIONS_LINE_MAX], *w[8], *params;
	struct request rq = { .sort = -1 };
	const char *msg = NULL;
	unsigned timeout;
	size_t n;

	if (strlen(line) >= sizeof(buf))
		return -EINVAL;
	n = split_words(line, buf, w, 8);
	if (p->state != PAYLOAD_IDLE) {
		if (strcmp(line, "FUNCTION_PAYLOAD_END") == 0) {
			if (p->state == PAYLOAD_BODY)
				payload_end(f, host, out);
			p->state = PAYLOAD_IDLE;
		} else if (n == 2 && strcmp(w[0], "FUNCTION_CANCEL") == 0 &&
			   strcmp(w[1], p->transaction) == 0) {
			/* Cancelled before its body ended: answered all the same. */
			if (p->state == PAYLOAD_BODY)
				error_result(out, p->transaction, 499, "cancelled");
			p->state = PAYLOAD_DISCARD;
		} else
			payload_line(p, line, false);
		return 0;
	}
	if (n == 0)
		return 0;
	if (strcmp(w[0], "FUNCTION_CANCEL") == 0 || strcmp(w[0], "FUNCTION_PROGRESS") == 0)
		return 0;	/* every call was answered when it came: nothing runs */
	if (strcmp(w[0], "FUNCTION") != 0 && strcmp(w[0], "FUNCTION_PAYLOAD") != 0)
		return 0;	/* nothing else comes from Netdata */
	if (n < 2 || !transaction_ok(w[1]))
		return -EINVAL;
	if (strcmp(w[0], "FUNCTION_PAYLOAD") == 0) {
		payload_start(f, w, n, now_us, out);
		return 0;
	}
	if (check_call(out, w, n, 4, &timeout) != 0)
		return 0;
	params = our_function(w[3]);
	if (parse_params(params, &rq, &msg) < 0) {
		error_result(out, w[1], 400, msg);
		return 0;
	}
	answer(f, w[1], &rq, host, out);
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
					payload_line(&f->payload, "", true);
					f->skipping = true;
					f->len = 0;
					continue;
				}
				f->line[f->len++] = c;
				continue;
			}
			if (!f->skipping) {
				f->line[f->len] = '\0';
				if (functions_handle_line(f, f->line, mono_usec(), host, out) < 0)
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
		uint64_t now = mono_usec(), until = deadline_us;
		struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
		int timeout_ms, r;

		if (payload_expire(f, now, out))
			return 1;
		if (f->payload.state != PAYLOAD_IDLE && f->payload.deadline_us < until)
			until = f->payload.deadline_us;
		if (now >= deadline_us)
			return 0;
		if (now >= until)
			continue;
		timeout_ms = (int)((until - now + 999) / 1000);
		if (f->fd < 0) {
			struct timespec ts = {
				.tv_sec = (time_t)(deadline_us / 1000000ULL),
				.tv_nsec = (long)(deadline_us % 1000000ULL) * 1000,
			};

			f->payload.state = PAYLOAD_IDLE;	/* its END can no longer come */
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
