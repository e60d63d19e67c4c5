/* SPDX-License-Identifier: MIT */
/*
 * source_libvirt.c: libvirtd's domain stats (libvirt >= 8.9: the "vm" and
 * "vcpu" groups re-export QEMU's query-stats without histograms), for what
 * no better source serves: VM-wide stats of a VMM that holds no VM stats
 * fd (QEMU >= 8.1), and every stat of a domain whose VMM holds no stats
 * fd at all (QEMU 7.1-8.0, whose QMP monitor libvirt keeps to itself).
 *
 * One read-only connection; one virConnectGetAllDomainStats() (VM and vCPU
 * groups, active domains) per sample for all domains. libvirt's calls
 * block, so a worker thread makes them and the sample waits for it at most
 * libvirt_timeout_ms: a stopped or slow libvirtd costs the sample that
 * long, then the interval goes on without libvirt values (never stale
 * ones: an answer that comes late is dropped). A failed call closes the
 * connection; it is opened again with backoff (1 s doubling to 16 s).
 *
 * libvirt is dlopen()ed ("libvirt.so.0") the first time a front end turns
 * this source on, never before: a front end without libvirt configured
 * maps none of it. The worker may outlive host_free() while blocked in
 * libvirtd: it owns its state (freed by whichever of the two lets go
 * last), and libvirt stays loaded.
 *
 * libvirt does not tell a domain's QEMU pid. A domain is matched to a VMM
 * process (known by pid and start time) by the uuid and name libvirt gave
 * that QEMU (-uuid, -name guest=): both must be equal, and no other VMM
 * may claim the uuid. The match is kept with that process, so a restarted
 * domain (a new process) is matched anew.
 *
 * Values are typed as the kernel types them: by the descriptor of the same
 * name in a held stats fd's schema when one is known, else by libvirt's
 * suffix (sum: cumulative, cur: instant, max: peak) and the kernel's naming
 * (*_ns: nanoseconds; a boolean parameter: boolean).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "source.h"
#include "source_libvirt.h"

#define BACKOFF_MIN_US 1000000ULL
#define BACKOFF_MAX_US 16000000ULL
#define NOVA_NS "http://openstack.org/xmlns/libvirt/nova/1.1"
#define LABELS_EVERY_US (300 * 1000000ULL)

struct lv_api {
	virConnectPtr (*open_ro)(const char *name);
	int (*close)(virConnectPtr conn);
	int (*all_stats)(virConnectPtr conn, unsigned int stats,
			 virDomainStatsRecordPtr **ret, unsigned int flags);
	void (*stats_free)(virDomainStatsRecordPtr *stats);
	int (*uuid)(virDomainPtr dom, char *buf);
	const char *(*name)(virDomainPtr dom);
	char *(*metadata)(virDomainPtr dom, int type, const char *uri, unsigned int flags);
	void (*set_error_func)(void *ctx, virErrorFunc handler);
	virErrorPtr (*last_error)(void);
};

struct lv_answer {
	int error;		/* 0, or why there is none */
	struct lv_domain *dom;
	size_t ndom;
};

/* Shared by the sampler and the worker, under mu. */
struct lv_shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned refs;		/* the source and the worker */
	bool quit;
	uint64_t asked, answered;	/* request generations */
	struct lv_answer *answer;	/* for generation answered */
	char *uri;
	/* The worker's alone. */
	virConnectPtr conn;
	uint64_t retry_at_us, backoff_us;
	struct lv_named *named;	/* labels fetched, by uuid */
	size_t nnamed;
};

/* Labels of a domain, fetched once per LABELS_EVERY_US, not every call. */
struct lv_named {
	char uuid[VIR_UUID_STRING_BUFLEN];
	struct kvmstats_label labels[4];
	size_t nlabels;
	uint64_t fetched_us;
	uint64_t seen;		/* answer generation that last listed it */
};

struct lv_state {
	struct lv_shared *sh;
	char *uri;		/* what sh was started for */
	bool thread_failed;
	int error;		/* the last sample's: 0 or -errno */
	int said_error;
};

/* What the source keeps of a VM it serves. */
struct lv_vm {
	char uuid[VIR_UUID_STRING_BUFLEN];
	struct kvmstats_label labels[4];
	size_t nlabels;
};

static struct lv_api api;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static int api_error;

static void silent(void *ctx, virErrorPtr err)
{
	(void)ctx;
	(void)err;	/* common/ never logs: errors are returned */
}

static void api_load(void)
{
	void *dl = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);

	if (!dl) {
		api_error = -ELIBACC;
		return;
	}
#define SYM(field, name) do { *(void **)&api.field = dlsym(dl, name); \
		if (!api.field) { api_error = -ELIBBAD; return; } } while (0)
	SYM(open_ro, "virConnectOpenReadOnly");
	SYM(close, "virConnectClose");
	SYM(all_stats, "virConnectGetAllDomainStats");
	SYM(stats_free, "virDomainStatsRecordListFree");
	SYM(uuid, "virDomainGetUUIDString");
	SYM(name, "virDomainGetName");
	SYM(metadata, "virDomainGetMetadata");
	SYM(set_error_func, "virSetErrorFunc");
	SYM(last_error, "virGetLastError");
#undef SYM
	api.set_error_func(NULL, silent);
	/* Never dlclose()d: a worker may still be inside it. */
}

static void answer_free(struct lv_answer *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->ndom; i++)
		libvirt_domain_done(&a->dom[i]);
	free(a->dom);
	free(a);
}

void libvirt_domain_done(struct lv_domain *d)
{
	free(d->name);
	for (size_t k = 0; k < d->nlabels; k++)
		free((char *)d->labels[k].value);
	for (size_t k = 0; k < d->vm.n; k++)
		free(d->vm.v[k].name);
	free(d->vm.v);
	for (size_t j = 0; j < d->nvcpus; j++) {
		for (size_t k = 0; k < d->vcpu[j].n; k++)
			free(d->vcpu[j].v[k].name);
		free(d->vcpu[j].v);
	}
	free(d->vcpu);
}

static void shared_unref(struct lv_shared *sh)
{
	bool last;

	pthread_mutex_lock(&sh->mu);
	last = --sh->refs == 0;
	pthread_mutex_unlock(&sh->mu);
	if (!last)
		return;
	if (sh->conn)
		api.close(sh->conn);
	for (size_t i = 0; i < sh->nnamed; i++)
		for (size_t k = 0; k < sh->named[i].nlabels; k++)
			free((char *)sh->named[i].labels[k].value);
	free(sh->named);
	answer_free(sh->answer);
	free(sh->uri);
	pthread_cond_destroy(&sh->cv);
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

static int target_add(struct lv_target *t, const char *name, size_t len, char kind,
		      bool boolean, uint64_t value)
{
	struct lv_value *v;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;

		v = reallocarray(t->v, cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	v = &t->v[t->n];
	v->name = strndup(name, len);
	if (!v->name)
		return -ENOMEM;
	v->kind = kind;
	v->boolean = boolean;
	v->value = value;
	t->n++;
	return 0;
}

/* "vm.<stat>.<sum|cur|max>" or "vcpu.<N>.<stat>.<sum|cur>"; others are not KVM's. */
int libvirt_take_param(struct lv_domain *d, const virTypedParameter *p)
{
	const char *field = p->field, *stat, *dot;
	struct lv_target *t;
	uint64_t value;
	bool boolean = false;
	char kind;

	switch (p->type) {
	case VIR_TYPED_PARAM_ULLONG: value = p->value.ul; break;
	case VIR_TYPED_PARAM_UINT: value = p->value.ui; break;
	case VIR_TYPED_PARAM_LLONG: value = (uint64_t)p->value.l; break;
	case VIR_TYPED_PARAM_INT: value = (uint64_t)(int64_t)p->value.i; break;
	case VIR_TYPED_PARAM_BOOLEAN: value = p->value.b != 0; boolean = true; break;
	default: return 0;
	}
	dot = strrchr(field, '.');
	if (!dot)
		return 0;
	if (strcmp(dot, ".sum") == 0)
		kind = 's';
	else if (strcmp(dot, ".cur") == 0)
		kind = 'c';
	else if (strcmp(dot, ".max") == 0)
		kind = 'm';
	else
		return 0;	/* vcpu.N.time, vcpu.current: libvirt's own */
	if (strncmp(field, "vm.", 3) == 0) {
		t = &d->vm;
		stat = field + 3;
	} else if (strncmp(field, "vcpu.", 5) == 0) {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(field + 5, &end, 10);
		if (errno || end == field + 5 || *end != '.' || n >= 4096)
			return 0;
		if (n >= d->nvcpus) {
			struct lv_target *v = reallocarray(d->vcpu, n + 1, sizeof(*v));

			if (!v)
				return -ENOMEM;
			memset(&v[d->nvcpus], 0, (n + 1 - d->nvcpus) * sizeof(*v));
			d->vcpu = v;
			d->nvcpus = n + 1;
		}
		t = &d->vcpu[n];
		stat = end + 1;
	} else {
		return 0;
	}
	if (dot <= stat)
		return 0;
	return target_add(t, stat, (size_t)(dot - stat), kind, boolean, value);
}

/*
 * XML's five entities and character references undone in place (libvirt
 * writes metadata back as XML). A reference to NUL, or one that is not
 * valid, is kept as it is.
 */
static char *xml_unescape(char *s)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	char *w = s;

	if (!s)
		return NULL;
	for (const char *r = s; *r;) {
		bool done = false;

		if (*r == '&') {
			for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]) && !done; i++) {
				size_t n = strlen(ents[i].ent);

				if (strncmp(r, ents[i].ent, n) == 0) {
					*w++ = ents[i].c;
					r += n;
					done = true;
				}
			}
			if (!done && r[1] == '#') {
				bool hex = r[2] == 'x';
				char *end;
				unsigned long cp;

				errno = 0;
				cp = strtoul(r + (hex ? 3 : 2), &end, hex ? 16 : 10);
				if (!errno && *end == ';' && cp > 0 && cp <= 0x10FFFF &&
				    end > r + (hex ? 3 : 2)) {
					/* UTF-8 of cp; surrogates are left for the front ends' check. */
					if (cp < 0x80) {
						*w++ = (char)cp;
					} else if (cp < 0x800) {
						*w++ = (char)(0xC0 | (cp >> 6));
						*w++ = (char)(0x80 | (cp & 0x3F));
					} else if (cp < 0x10000) {
						*w++ = (char)(0xE0 | (cp >> 12));
						*w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
						*w++ = (char)(0x80 | (cp & 0x3F));
					} else {
						*w++ = (char)(0xF0 | (cp >> 18));
						*w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
						*w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
						*w++ = (char)(0x80 | (cp & 0x3F));
					}
					r = end + 1;
					done = true;
				}
			}
		}
		if (!done)
			*w++ = *r++;
	}
	*w = '\0';
	return s;
}

/* The text of the first <tag ...>text</tag> (any prefix) in xml, malloc'ed. */
static char *xml_text(const char *xml, const char *tag)
{
	size_t n = strlen(tag);

	for (const char *p = strchr(xml, '<'); p; p = strchr(p + 1, '<')) {
		const char *q = p + 1, *colon, *gt, *end;

		colon = strpbrk(q, ": >/");
		if (colon && *colon == ':')
			q = colon + 1;
		if (strncmp(q, tag, n) != 0 || (q[n] != '>' && q[n] != ' '))
			continue;
		gt = strchr(q, '>');
		if (!gt || gt[-1] == '/')
			continue;
		end = strchr(gt + 1, '<');
		if (!end)
			return NULL;
		return xml_unescape(strndup(gt + 1, (size_t)(end - gt - 1)));
	}
	return NULL;
}

/* The value of attribute attr of the first <tag> in xml, malloc'ed. */
static char *xml_attr(const char *xml, const char *tag, const char *attr)
{
	size_t n = strlen(tag), an = strlen(attr);

	for (const char *p = strchr(xml, '<'); p; p = strchr(p + 1, '<')) {
		const char *q = p + 1, *colon, *gt;

		colon = strpbrk(q, ": >/");
		if (colon && *colon == ':')
			q = colon + 1;
		if (strncmp(q, tag, n) != 0 || q[n] != ' ')
			continue;
		gt = strchr(q, '>');
		for (const char *a = q + n; a && gt && a < gt; a = strchr(a + 1, ' ')) {
			char quote;
			const char *v, *e;

			if (strncmp(a + 1, attr, an) != 0 || a[1 + an] != '=')
				continue;
			quote = a[2 + an];
			if (quote != '"' && quote != '\'')
				continue;
			v = a + 3 + an;
			e = strchr(v, quote);
			return e ? xml_unescape(strndup(v, (size_t)(e - v))) : NULL;
		}
	}
	return NULL;
}

static void add_label(struct lv_domain *d, const char *key, char *value)
{
	if (!value)
		return;
	if (!*value || d->nlabels == 4) {
		free(value);
		return;
	}
	d->labels[d->nlabels].key = key;
	d->labels[d->nlabels].value = value;
	d->nlabels++;
}

/* Title and Nova's <nova:instance> (name, flavor, project): optional. */
static void fetch_labels(struct lv_domain *d, virDomainPtr dom)
{
	char *nova;

	add_label(d, "title", api.metadata(dom, VIR_DOMAIN_METADATA_TITLE, NULL, 0));
	nova = api.metadata(dom, VIR_DOMAIN_METADATA_ELEMENT, NOVA_NS, 0);
	if (!nova)
		return;
	add_label(d, "nova_name", xml_text(nova, "name"));
	add_label(d, "nova_flavor", xml_attr(nova, "flavor", "name"));
	add_label(d, "nova_project", xml_text(nova, "project"));
	free(nova);
}

/*
 * d's labels: from the worker's cache, fetched (two calls) only for a
 * domain not seen before or every LABELS_EVERY_US. Copies into d.
 */
static void take_labels(struct lv_shared *sh, struct lv_domain *d, virDomainPtr dom,
			uint64_t gen, uint64_t now)
{
	struct lv_named *n = NULL;

	for (size_t i = 0; i < sh->nnamed && !n; i++)
		if (strcmp(sh->named[i].uuid, d->uuid) == 0)
			n = &sh->named[i];
	if (!n) {
		struct lv_named *v = reallocarray(sh->named, sh->nnamed + 1, sizeof(*v));

		if (!v)
			return;
		sh->named = v;
		n = &v[sh->nnamed++];
		memset(n, 0, sizeof(*n));
		memcpy(n->uuid, d->uuid, sizeof(n->uuid));
	}
	n->seen = gen;
	if (n->fetched_us == 0 || now - n->fetched_us >= LABELS_EVERY_US) {
		for (size_t k = 0; k < n->nlabels; k++)
			free((char *)n->labels[k].value);
		fetch_labels(d, dom);
		memcpy(n->labels, d->labels, sizeof(n->labels));
		n->nlabels = d->nlabels;
		n->fetched_us = now;
	}
	/* d gets copies: the answer is freed on the sampler's side. */
	d->nlabels = 0;
	for (size_t k = 0; k < n->nlabels; k++) {
		char *v = strdup(n->labels[k].value);

		if (!v)
			break;
		d->labels[d->nlabels].key = n->labels[k].key;
		d->labels[d->nlabels].value = v;
		d->nlabels++;
	}
}

/* Forgets the labels of domains the last answer did not list. */
static void prune_labels(struct lv_shared *sh, uint64_t gen)
{
	size_t j = 0;

	for (size_t i = 0; i < sh->nnamed; i++) {
		if (sh->named[i].seen == gen) {
			sh->named[j++] = sh->named[i];
			continue;
		}
		for (size_t k = 0; k < sh->named[i].nlabels; k++)
			free((char *)sh->named[i].labels[k].value);
	}
	sh->nnamed = j;
}

static int errno_of_libvirt(void)
{
	virErrorPtr e = api.last_error();

	if (!e)
		return -EIO;
	switch (e->code) {
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_SYSTEM_ERROR:
		return -ECONNREFUSED;
	case VIR_ERR_AUTH_FAILED:
	case VIR_ERR_AUTH_CANCELLED:
	case VIR_ERR_OPERATION_DENIED:
	case VIR_ERR_ACCESS_DENIED:
		return -EACCES;
	case VIR_ERR_NO_SUPPORT:
		return -ENOTSUP;
	default:
		return -ECONNRESET;
	}
}

/* One request: connect if need be, one all-domains stats call. */
static struct lv_answer *ask(struct lv_shared *sh, uint64_t gen)
{
	struct lv_answer *a = calloc(1, sizeof(*a));
	virDomainStatsRecordPtr *recs = NULL;
	uint64_t now = source_now_usec();
	int n;

	if (!a)
		return NULL;
	if (!sh->conn) {
		if (now < sh->retry_at_us) {
			a->error = -EAGAIN;	/* backing off: the state is unchanged */
			return a;
		}
		sh->conn = api.open_ro(sh->uri);
		if (!sh->conn) {
			a->error = errno_of_libvirt();
			sh->backoff_us = sh->backoff_us ? sh->backoff_us * 2 : BACKOFF_MIN_US;
			if (sh->backoff_us > BACKOFF_MAX_US)
				sh->backoff_us = BACKOFF_MAX_US;
			sh->retry_at_us = now + sh->backoff_us;
			return a;
		}
	}
	n = api.all_stats(sh->conn, VIR_DOMAIN_STATS_VM | VIR_DOMAIN_STATS_VCPU, &recs,
			  VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE);
	if (n < 0) {
		a->error = errno_of_libvirt();
		/* libvirtd went or broke the connection: a new one next time. */
		api.close(sh->conn);
		sh->conn = NULL;
		sh->backoff_us = BACKOFF_MIN_US;
		sh->retry_at_us = now;	/* once at once: a restart is quick */
		return a;
	}
	sh->backoff_us = 0;
	a->dom = calloc(n ? (size_t)n : 1, sizeof(*a->dom));
	if (!a->dom) {
		a->error = -ENOMEM;
		api.stats_free(recs);
		return a;
	}
	for (int i = 0; i < n; i++) {
		struct lv_domain *d = &a->dom[a->ndom];
		const char *name;
		int r = 0;

		/* A domain gone between the list and the stats has no uuid: skip it. */
		if (api.uuid(recs[i]->dom, d->uuid) < 0 || !(name = api.name(recs[i]->dom)))
			continue;
		d->name = strdup(name);
		for (int k = 0; d->name && r >= 0 && k < recs[i]->nparams; k++)
			r = libvirt_take_param(d, &recs[i]->params[k]);
		if (!d->name || r < 0) {
			a->error = -ENOMEM;
			a->ndom++;
			break;
		}
		take_labels(sh, d, recs[i]->dom, gen, now);
		a->ndom++;
	}
	api.stats_free(recs);
	if (a->error == 0)
		prune_labels(sh, gen);
	return a;
}

static void *worker(void *arg)
{
	struct lv_shared *sh = arg;
	uint64_t done = 0;

	pthread_mutex_lock(&sh->mu);
	for (;;) {
		struct lv_answer *a;
		uint64_t gen;

		while (!sh->quit && sh->asked == done)
			pthread_cond_wait(&sh->cv, &sh->mu);
		if (sh->quit)
			break;
		gen = sh->asked;
		pthread_mutex_unlock(&sh->mu);
		a = ask(sh, gen);
		pthread_mutex_lock(&sh->mu);
		done = gen;
		answer_free(sh->answer);
		sh->answer = a;
		sh->answered = gen;
		pthread_cond_broadcast(&sh->cv);
	}
	pthread_mutex_unlock(&sh->mu);
	shared_unref(sh);
	return NULL;
}

static void stop_worker(struct lv_state *st)
{
	if (!st->sh)
		return;
	pthread_mutex_lock(&st->sh->mu);
	st->sh->quit = true;
	pthread_cond_broadcast(&st->sh->cv);
	pthread_mutex_unlock(&st->sh->mu);
	shared_unref(st->sh);	/* a worker blocked in libvirtd frees it later */
	st->sh = NULL;
	free(st->uri);
	st->uri = NULL;
}

static int start_worker(struct lv_state *st, const char *uri)
{
	struct lv_shared *sh;
	pthread_attr_t attr;
	pthread_condattr_t cattr;
	sigset_t all, old;
	pthread_t t;
	int r;

	pthread_once(&api_once, api_load);
	if (api_error)
		return api_error;
	sh = calloc(1, sizeof(*sh));
	if (!sh || !(sh->uri = strdup(uri)) || !(st->uri = strdup(uri))) {
		if (sh)
			free(sh->uri);
		free(sh);
		return -ENOMEM;
	}
	pthread_mutex_init(&sh->mu, NULL);
	/*
	 * The sample's wait is timed on CLOCK_MONOTONIC: a step of the wall
	 * clock (NTP, an admin) must neither stretch nor cut it.
	 */
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&sh->cv, &cattr);
	pthread_condattr_destroy(&cattr);
	sh->refs = 2;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/*
	 * The worker blocks every signal (it inherits the mask): libvirt's
	 * client writes to a socket libvirtd may have closed, and the SIGPIPE
	 * that would kill the process (kvmstat, the Netdata plugin keep its
	 * default action) stays pending on the worker instead; signals meant
	 * for the process go to its other threads.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&t, &attr, worker, sh);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r < 0) {
		sh->refs = 1;
		shared_unref(sh);
		free(st->uri);
		st->uri = NULL;
		return r;
	}
	st->sh = sh;
	return 0;
}

static void libvirt_prepare(struct source_env *env, struct kvmstats_scan_report *rep)
{
	struct lv_state *st = env->state[FROM_LIBVIRT];
	int r;

	if (!st && env->libvirt_uri) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return;
		env->state[FROM_LIBVIRT] = st;
	}
	if (!st)
		return;
	if (st->sh && (!env->libvirt_uri || strcmp(st->uri, env->libvirt_uri) != 0))
		stop_worker(st);
	if (!st->sh && env->libvirt_uri && !st->thread_failed) {
		r = start_worker(st, env->libvirt_uri);
		if (r < 0) {
			st->thread_failed = true;
			st->error = r;
		}
	}
	rep->libvirt_asked = env->libvirt_uri != NULL;
	rep->libvirt_error = st->error;
}

/* What the held fds say of a stat called name (the kernel's typing), or NULL. */
static const struct kvmstats_desc *known_desc(const struct statsfd_cache *cache,
					     const char *name)
{
	const struct kvmstats_schema *const *known;
	size_t n = statsfd_cache_schemas(cache, &known);

	for (size_t i = 0; i < n; i++) {
		int d = schema_find(known[i], name);

		if (d >= 0)
			return &known[i]->desc[d];
	}
	return NULL;
}

static int value_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lv_value *)a)->name, ((const struct lv_value *)b)->name);
}

/*
 * Names are checked here, where the schema is built: libvirt passes on
 * what QEMU's query-stats says, and a peer's names end up in chart ids and
 * file names.
 */
int libvirt_target_schema(const struct statsfd_cache *cache, struct lv_target *t,
			  struct kvmstats_schema **ret_schema, uint64_t **ret_values)
{
	struct kvmstats_refused refused = { 0 };
	struct kvmstats_schema *s;
	size_t names_len = 0, n = 0;
	uint64_t *values;
	char *p;

	if (t->n == 0)
		return -ENOENT;
	qsort(t->v, t->n, sizeof(*t->v), value_cmp);
	for (size_t i = 0; i < t->n; i++) {
		if (decode_name_valid(t->v[i].name)) {
			names_len += strlen(t->v[i].name) + 1;
			n++;
		} else {
			decode_name_refuse(&refused, t->v[i].name);
		}
	}
	if (n == 0)
		return -ENOENT;
	s = calloc(1, sizeof(*s));
	values = calloc(n, sizeof(*values));
	if (!s || !values)
		goto nomem;
	s->refs = 1;
	s->refused = refused;
	s->num_desc = s->num_values = (uint32_t)n;
	s->data_len = (uint32_t)(n * sizeof(uint64_t));
	s->desc = calloc(n, sizeof(*s->desc));
	s->names = malloc(names_len);
	if (!s->desc || !s->names)
		goto nomem;
	p = s->names;
	for (size_t j = 0, i = 0; j < t->n; j++) {
		const struct lv_value *v = &t->v[j];
		const struct kvmstats_desc *k;
		struct kvmstats_desc *d = &s->desc[i];
		size_t len;

		if (!decode_name_valid(v->name))
			continue;
		k = known_desc(cache, v->name);
		len = strlen(v->name) + 1;
		memcpy(p, v->name, len);
		*d = (struct kvmstats_desc){ .name = p, .size = 1, .index = (uint32_t)i,
					     .known = true };
		p += len;
		if (k && k->size == 1 && k->type != KVM_STATS_TYPE_LINEAR_HIST &&
		    k->type != KVM_STATS_TYPE_LOG_HIST) {
			d->type = k->type;
			d->unit = k->unit;
			d->base = k->base;
			d->exponent = k->exponent;
			d->known = k->known;
		} else {
			d->type = v->kind == 's' ? KVM_STATS_TYPE_CUMULATIVE :
				  v->kind == 'm' ? KVM_STATS_TYPE_PEAK : KVM_STATS_TYPE_INSTANT;
			if (v->boolean) {
				d->unit = KVM_STATS_UNIT_BOOLEAN;
			} else if (len > 4 && strcmp(v->name + len - 4, "_ns") == 0) {
				d->unit = KVM_STATS_UNIT_SECONDS;
				d->base = KVM_STATS_BASE_POW10;
				d->exponent = -9;
			}
		}
		d->flags = d->type | d->unit | d->base;
		values[i++] = v->value;
	}
	*ret_schema = s;
	*ret_values = values;
	return 0;

nomem:
	schema_unref(s);
	free(values);
	return -ENOMEM;
}

static bool uuid_eq(const char *a, const char *b)
{
	return a && b && strcasecmp(a, b) == 0;
}

/* The one VMM process this domain runs in, or NULL (none, or two claim it). */
static struct host_vm *match(struct source_env *env, const struct lv_domain *d)
{
	struct host_vm *found = NULL;

	for (size_t i = 0; i < env->nvms; i++) {
		struct host_vm *hv = env->vms[i];
		const struct lv_vm *lv = hv->priv[FROM_LIBVIRT];

		if (lv && strcmp(lv->uuid, d->uuid) == 0)
			return hv;	/* matched before: the same process */
		if (!uuid_eq(hv->pub.uuid, d->uuid))
			continue;
		if (found)
			return NULL;	/* two processes claim one uuid: neither */
		found = hv;
	}
	if (found && (found->pub.name_source != DISCOVER_NAME_CMDLINE ||
		      !found->pub.name || strcmp(found->pub.name, d->name) != 0))
		return NULL;
	if (found && found->pub.nvms != 1)
		return NULL;	/* one domain is one VM */
	return found;
}

static void lv_vm_free_labels(struct lv_vm *lv)
{
	for (size_t k = 0; k < lv->nlabels; k++)
		free((char *)lv->labels[k].value);
	lv->nlabels = 0;
}

/* Moves d's labels into lv (and the VM's public view) when they differ. */
static void take_domain_labels(struct host_vm *hv, struct lv_vm *lv, struct lv_domain *d)
{
	bool same = lv->nlabels == d->nlabels;

	for (size_t k = 0; same && k < d->nlabels; k++)
		same = strcmp(lv->labels[k].key, d->labels[k].key) == 0 &&
		       strcmp(lv->labels[k].value, d->labels[k].value) == 0;
	if (same)
		return;
	lv_vm_free_labels(lv);
	memcpy(lv->labels, d->labels, d->nlabels * sizeof(d->labels[0]));
	lv->nlabels = d->nlabels;
	d->nlabels = 0;
	hv->pub.labels = lv->labels;
	hv->pub.nlabels = lv->nlabels;
	hv->changed = true;
}

/*
 * Pushes target t's values into c (NULL: hv's VM-wide slot), taking it
 * over from a worse source, or with a new holder when libvirt's schema for
 * it changed.
 */
static int push(struct source_env *env, struct host_vm *hv, struct kvmstats_vcpu *c,
		struct lv_target *t)
{
	struct statsfd **holder = c ? &c->stats : &hv->pub.vm_stats;
	bool mine = c ? c->source == FROM_LIBVIRT : hv->pub.vm_source == FROM_LIBVIRT;
	struct kvmstats_schema *s;
	uint64_t *values;
	int r;

	r = libvirt_target_schema(env->cache, t, &s, &values);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	if (!mine || !schema_equal((*holder)->schema, s)) {
		struct statsfd *fresh;

		r = statsfd_virtual(s, "libvirt", env->vcache, &fresh);
		if (r >= 0 && !mine && c) {
			vm_take_vcpu(env, hv, c, &source_libvirt, fresh, -1);
		} else if (r >= 0 && !mine) {
			vm_take_vm_stats(env, hv, &source_libvirt, fresh);
		} else if (r >= 0) {
			statsfd_close(*holder);
			*holder = fresh;
			hv->changed = true;
			env->changes++;
		}
	}
	if (r >= 0)
		statsfd_push(*holder, values);
	schema_unref(s);
	free(values);
	return r;
}

/* What d has that no better source serves for hv (source_may_take_*). */
static int apply(struct source_env *env, struct host_vm *hv, struct lv_domain *d)
{
	struct kvmstats_vm *vm = &hv->pub;
	struct lv_vm *lv = hv->priv[FROM_LIBVIRT];
	int r = 0;

	if (!lv) {
		lv = calloc(1, sizeof(*lv));
		if (!lv)
			return -ENOMEM;
		memcpy(lv->uuid, d->uuid, sizeof(lv->uuid));
		hv->priv[FROM_LIBVIRT] = lv;
	}
	take_domain_labels(hv, lv, d);
	if (vm->vm_source == FROM_LIBVIRT || source_may_take_vm(hv, &source_libvirt))
		r = push(env, hv, NULL, &d->vm);
	for (size_t i = 0; r >= 0 && i < d->nvcpus; i++) {
		struct kvmstats_vcpu *c = vm_find_vcpu(vm, (int)i);
		struct kvmstats_schema *s;
		uint64_t *values;

		if (c && c->source != FROM_LIBVIRT && !source_may_take_vcpu(c, &source_libvirt))
			continue;	/* a better source has it */
		if (!c) {
			r = libvirt_target_schema(env->cache, &d->vcpu[i], &s, &values);
			if (r == -ENOENT) {
				r = 0;
				continue;
			}
			if (r >= 0)
				r = vm_add_virtual_vcpu(env, hv, (int)i, FROM_LIBVIRT,
							"libvirt", s, &c);
			if (r >= 0)
				statsfd_push(c->stats, values);
			schema_unref(s);
			free(values);
			continue;
		}
		r = push(env, hv, c, &d->vcpu[i]);
	}
	return r;
}

/* No values this interval for what libvirt serves (error < 0). */
static void mark_all(struct source_env *env, int error)
{
	for (size_t i = 0; i < env->nvms; i++) {
		struct kvmstats_vm *vm = &env->vms[i]->pub;

		if (vm->vm_source == FROM_LIBVIRT)
			vm->vm_stats->error = error;
		for (size_t j = 0; j < vm->nvcpus; j++)
			if (vm->vcpus[j]->source == FROM_LIBVIRT)
				vm->vcpus[j]->stats->error = error;
	}
}

/* Whether some VM lacks what libvirt could give: else no call at all. */
static bool wanted(const struct source_env *env)
{
	for (size_t i = 0; i < env->nvms; i++) {
		const struct host_vm *hv = env->vms[i];
		const struct kvmstats_vm *vm = &hv->pub;

		if (vm->vm_source == FROM_LIBVIRT || source_may_take_vm(hv, &source_libvirt))
			return true;
		if (vm->nvcpus == 0)
			return true;
		for (size_t j = 0; j < vm->nvcpus; j++)
			if (vm->vcpus[j]->source == FROM_LIBVIRT ||
			    source_may_take_vcpu(vm->vcpus[j], &source_libvirt))
				return true;
	}
	return false;
}

static int libvirt_sample(struct source_env *env)
{
	struct lv_state *st = env->state[FROM_LIBVIRT];
	struct lv_shared *sh;
	struct lv_answer *a = NULL;
	struct timespec until;
	uint64_t gen;
	int r = 0;

	if (!st || !(sh = st->sh) || !wanted(env))
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &until);	/* the clock of sh->cv */
	until.tv_sec += env->libvirt_timeout_ms / 1000;
	until.tv_nsec += (long)(env->libvirt_timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sh->mu);
	if (sh->answered == sh->asked) {	/* idle: ask anew */
		gen = ++sh->asked;
		pthread_cond_broadcast(&sh->cv);
		while (sh->answered != gen)
			if (pthread_cond_timedwait(&sh->cv, &sh->mu, &until) == ETIMEDOUT)
				break;
		if (sh->answered == gen) {
			a = sh->answer;
			sh->answer = NULL;
		}
	}
	/* else the worker is still in an earlier call: no wait, no stale answer. */
	pthread_mutex_unlock(&sh->mu);

	if (!a) {
		st->error = -ETIMEDOUT;
		mark_all(env, -ETIMEDOUT);
		return 0;
	}
	if (a->error == -EAGAIN)
		a->error = st->error ? st->error : -ECONNREFUSED;
	st->error = a->error;
	if (a->error < 0 && a->ndom == 0) {
		mark_all(env, a->error);
		answer_free(a);
		return 0;
	}
	/* A VM libvirt served that is not in this answer has no values now. */
	mark_all(env, -ENOENT);
	for (size_t i = 0; r >= 0 && i < a->ndom; i++) {
		struct host_vm *hv = match(env, &a->dom[i]);

		if (hv)
			r = apply(env, hv, &a->dom[i]);
	}
	answer_free(a);
	return r == -ENOMEM ? r : 0;
}

static void libvirt_detach(struct source_env *env, struct host_vm *hv)
{
	struct lv_vm *lv = hv->priv[FROM_LIBVIRT];

	(void)env;
	if (!lv)
		return;
	hv->pub.labels = NULL;
	hv->pub.nlabels = 0;
	lv_vm_free_labels(lv);
	free(lv);
	hv->priv[FROM_LIBVIRT] = NULL;
}

static void libvirt_cleanup(struct source_env *env)
{
	struct lv_state *st = env->state[FROM_LIBVIRT];

	if (!st)
		return;
	stop_worker(st);
	free(st);
	env->state[FROM_LIBVIRT] = NULL;
}

const struct source_ops source_libvirt = {
	.name = "libvirt",
	.id = FROM_LIBVIRT,
	.serves = SOURCE_VM_STATS | SOURCE_VCPU_STATS | SOURCE_NAMES,
	.prepare = libvirt_prepare,
	.sample = libvirt_sample,
	.detach = libvirt_detach,
	.cleanup = libvirt_cleanup,
};
