/* SPDX-License-Identifier: MIT */
/*
 * kvm_stats.c: a collectd read plugin for KVM binary stats.
 *
 * Built against collectd 5.12's headers (Debian collectd-dev) and loaded
 * with "LoadPlugin kvm_stats". It only translates: the <Plugin kvm_stats>
 * block becomes filters and options, and each read callback hands what
 * common/ sampled to plugin_dispatch_values() as collectd's own types, so
 * the values flow through every output collectd has.
 *
 * collectd passes user data to read callbacks only. So that no state lives
 * in file-scope variables, module_register() registers the read callback
 * with a context of defaults, and the config callback replaces that
 * registration with one carrying the configured context (collectd frees
 * the old one through its free_func).
 *
 * Identifiers: host/kvm_stats-<vm>/<type>-<stat>, with <vm> the VM's name
 * made safe, "<vm>-vcpu<N>" for per-vCPU values, and with HostnameFormat
 * "name" the VM as host: <vm>/kvm_stats[-vcpu<N>]/<type>-<stat>.
 */
#include "collectd.h"

#include "plugin.h"
#include "utils/common/common.h"
#include "utils/metadata/meta_data.h"
#include "utils_complain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "acquire.h"
#include "catalog.h"
#include "cmdline.h"
#include "filter.h"
#include "ident.h"
#include "kvmstats.h"
#include "news.h"
#include "priv.h"

#define PLUGIN_NAME "kvm_stats"
#define DROP_IN "/etc/systemd/system/collectd.service.d/kvm_stats.conf"
#define DEBUGFS_KVM "/sys/kernel/debug/kvm"
#define MAX_QMP 64
#define MAX_SCHEMAS 16
/*
 * What is dispatched out of the box: every value costs collectd ~6 µs
 * (queue, cache) whatever the plugin, so the groups a host rarely needs
 * are left to Groups "all".
 */
#define DEFAULT_GROUPS "exits page_faults halt interrupts emulation memory"

enum hostname_format { HOSTNAME_HOST, HOSTNAME_NAME };

struct context {
	struct kvmstats_host *host;
	struct filter *stats;
	struct filter *vms;
	bool groups[CATALOG_NGROUPS];	/* Groups: what is dispatched */
	bool groups_set;
	/*
	 * Per schema (interned by the host, so stable while it lives), which
	 * descriptors Stat and Groups let through: decided once, not per value.
	 */
	struct {
		const struct kvmstats_schema *schema;
		bool *want;
	} wanted[MAX_SCHEMAS];
	size_t nwanted;
	bool per_vcpu;
	bool histograms;
	bool sched;		/* SchedStats: vCPU threads' run and wait */
	enum hostname_format hostname_format;
	cdtime_t refresh_interval;
	cdtime_t next_rescan;
	bool debugfs;
	cdtime_t debugfs_interval;	/* DebugfsInterval: between debugfs reads */
	char *qmp[MAX_QMP];	/* QMPSocket paths or globs */
	size_t nqmp;
	char *libvirt_uri;	/* LibvirtURI; NULL: off */
	uint64_t *totals;	/* scratch: the vCPUs summed */
	size_t totals_len;
	c_complain_t complain_denied;
	c_complain_t complain_error;
	c_complain_t complain_nostats;
	c_complain_t complain_nokvm;
	struct scan_said news;	/* what scan_news() said last */
};

static int parse_groups(const char *v, bool groups[CATALOG_NGROUPS]);

/* Per-VM state, in kvmstats_vm.user. */
struct plugin_vm {
	char instance[DATA_MAX_NAME_LEN - 32];	/* room for "-vcpuN" */
};

/* ----------------------------------------------------------------- names */

/*
 * With the VM in plugin_instance, vCPU N of VM "a" is "a-vcpuN": a VM
 * named "a-vcpuN" would share its identifiers, now that '-' is kept.
 */
static bool is_vcpu_of(const char *instance, const char *vm)
{
	size_t n = strlen(vm);

	return strncmp(instance, vm, n) == 0 && strncmp(instance + n, "-vcpu", 5) == 0;
}

static bool instance_taken(struct context *ctx, const char *instance)
{
	bool vcpus_share = ctx->hostname_format != HOSTNAME_NAME;

	for (size_t i = 0; i < host_nvms(ctx->host); i++) {
		const struct plugin_vm *pv = host_vm(ctx->host, i)->user;

		if (!pv)
			continue;
		if (strcmp(pv->instance, instance) == 0 ||
		    (vcpus_share && (is_vcpu_of(pv->instance, instance) ||
				     is_vcpu_of(instance, pv->instance))))
			return true;
	}
	return false;
}

/* Unique per host: the pid is added when names clash or none was given. */
static void on_vm_added(struct kvmstats_vm *vm, void *arg)
{
	struct context *ctx = arg;
	struct plugin_vm *pv = calloc(1, sizeof(*pv));
	char name[DATA_MAX_NAME_LEN - 48];

	if (!pv)
		return;	/* read_vm() skips a VM without state */
	ident_safe_name(vm->name, name, sizeof(name));
	if (vm->name_source != DISCOVER_NAME_NONE && name[0] && !instance_taken(ctx, name))
		sstrncpy(pv->instance, name, sizeof(pv->instance));
	else
		snprintf(pv->instance, sizeof(pv->instance), "%s_%d", name, (int)vm->pid);
	vm->user = pv;
}

static void on_vm_removed(struct kvmstats_vm *vm, void *arg)
{
	(void)arg;
	free(vm->user);
	vm->user = NULL;
}

static bool want_vmm(const struct discover_proc *p, void *arg)
{
	const struct context *ctx = arg;

	return filter_match(ctx->vms, discover_proc_name(p)) == 1;
}

/* -------------------------------------------------------------- dispatch */

struct target {
	value_list_t vl;
	const char *host;	/* NULL: collectd's hostname */
};

static void dispatch(struct target *t, const char *type, const char *type_instance,
		     value_t value)
{
	t->vl.values = &value;
	t->vl.values_len = 1;
	sstrncpy(t->vl.type, type, sizeof(t->vl.type));
	/*
	 * Stat names are checked where their schema is built (C identifiers
	 * only); made safe here too, so one missed check is no file name.
	 */
	ident_safe_name(type_instance, t->vl.type_instance, sizeof(t->vl.type_instance));
	plugin_dispatch_values(&t->vl);
}

/* "ns" for a SECONDS stat with exponent -9, for histogram bucket names. */
static const char *raw_unit(const struct kvmstats_desc *d)
{
	if (d->unit != KVM_STATS_UNIT_SECONDS)
		return "";
	switch (d->exponent) {
	case -9: return "ns";
	case -6: return "us";
	case -3: return "ms";
	case 0: return "s";
	}
	return "";
}

static void dispatch_histogram(struct target *t, const struct kvmstats_desc *d,
			       const uint64_t *v)
{
	char ti[DATA_MAX_NAME_LEN];
	uint64_t lo, hi;

	for (uint32_t i = 0; i < d->size; i++) {
		if (decode_bucket_bounds(d, i, &lo, &hi) < 0)
			continue;
		if (hi == UINT64_MAX)
			snprintf(ti, sizeof(ti), "%s-ge%" PRIu64 "%s", d->name, lo, raw_unit(d));
		else
			snprintf(ti, sizeof(ti), "%s-lt%" PRIu64 "%s", d->name, hi, raw_unit(d));
		dispatch(t, "derive", ti, (value_t){ .derive = (derive_t)v[d->index + i] });
	}
}

/* Whether Stat and Groups let a stat called name through. */
static bool want_stat(const struct context *ctx, const char *name)
{
	return ctx->groups[catalog_group_of(name)] && filter_match(ctx->stats, name) == 1;
}

/* want[i] for each descriptor of s, or NULL (then decided per value). */
static const bool *wanted_of(struct context *ctx, const struct kvmstats_schema *s)
{
	bool *want;

	for (size_t i = 0; i < ctx->nwanted; i++)
		if (ctx->wanted[i].schema == s)
			return ctx->wanted[i].want;
	if (ctx->nwanted == MAX_SCHEMAS || !(want = calloc(s->num_desc + 1, sizeof(*want))))
		return NULL;
	for (uint32_t i = 0; i < s->num_desc; i++)
		want[i] = want_stat(ctx, s->desc[i].name);
	ctx->wanted[ctx->nwanted].schema = s;
	ctx->wanted[ctx->nwanted].want = want;
	ctx->nwanted++;
	return want;
}

/*
 * One stat: counters as derive (collectd computes the rates), instant and
 * peak values and booleans as gauge, byte sizes as bytes, histograms one
 * derive per bucket. A stat this build does not know is sent raw as gauge.
 */
static void dispatch_stat(struct context *ctx, struct target *t,
			  const struct kvmstats_desc *d, const uint64_t *v)
{
	bool hist = d->type == KVM_STATS_TYPE_LINEAR_HIST ||
		    d->type == KVM_STATS_TYPE_LOG_HIST;
	uint64_t raw = v[d->index];
	const char *type = ident_type_of(d);

	if (d->known && hist)
		ctx->histograms ? dispatch_histogram(t, d, v) : (void)0;
	else if (strcmp(type, "derive") == 0)
		dispatch(t, type, d->name, (value_t){ .derive = (derive_t)raw });
	else if (strcmp(type, "bytes") == 0)
		dispatch(t, type, d->name,
			 (value_t){ .gauge = (gauge_t)raw * decode_scale(d) });
	else
		dispatch(t, type, d->name, (value_t){ .gauge = (gauge_t)raw });
}

static void dispatch_schema(struct context *ctx, struct target *t,
			    const struct kvmstats_schema *s, const uint64_t *v)
{
	const bool *want = wanted_of(ctx, s);

	for (uint32_t i = 0; i < s->num_desc; i++)
		if (want ? want[i] : want_stat(ctx, s->desc[i].name))
			dispatch_stat(ctx, t, &s->desc[i], v);
}

/*
 * The memory KVM maps for the guest (pages_4k/2m/1g), in bytes: the
 * smaller, the cheaper the VM is to live-migrate.
 */
static void dispatch_mapped_memory(struct context *ctx, struct target *t,
				   const struct kvmstats_vm *vm)
{
	uint64_t bytes;

	if (ctx->groups[CATALOG_MEMORY] &&
	    filter_match(ctx->stats, "mapped_guest_memory") == 1 &&
	    host_mapped_bytes(vm, &bytes) == 0)
		dispatch(t, "bytes", "mapped_guest_memory", (value_t){ .gauge = (gauge_t)bytes });
}

/*
 * The vCPU threads' run and run-queue wait (and the VMM's other threads'
 * run, per VM) as derives of ns: rates are ns a second, 10^7 = 1 % of a
 * CPU. Not filtered by Stat or Groups: SchedStats says.
 */
static void dispatch_sched(struct context *ctx, struct target *t,
			   const struct kvmstats_vm *vm, const struct kvmstats_vcpu *vcpu)
{
	struct ident_sched v[IDENT_SCHED_MAX];
	size_t n = ctx->sched ? ident_sched_values(vm, vcpu, v) : 0;

	for (size_t i = 0; i < n; i++)
		dispatch(t, "derive", v[i].type_instance,
			 (value_t){ .derive = (derive_t)v[i].value });
}

static void set_instance(struct context *ctx, struct target *t,
			 const struct plugin_vm *pv, const char *vcpu)
{
	if (ctx->hostname_format == HOSTNAME_NAME) {
		sstrncpy(t->vl.host, pv->instance, sizeof(t->vl.host));
		sstrncpy(t->vl.plugin_instance, vcpu ? vcpu : "", sizeof(t->vl.plugin_instance));
	} else {
		if (vcpu)
			snprintf(t->vl.plugin_instance, sizeof(t->vl.plugin_instance),
				 "%s-%s", pv->instance, vcpu);
		else
			sstrncpy(t->vl.plugin_instance, pv->instance,
				 sizeof(t->vl.plugin_instance));
	}
}

static int grow_totals(struct context *ctx, size_t n)
{
	uint64_t *p;

	if (n <= ctx->totals_len)
		return 0;
	p = realloc(ctx->totals, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	ctx->totals = p;
	ctx->totals_len = n;
	return 0;
}

static meta_data_t *vm_meta(const struct kvmstats_vm *vm)
{
	meta_data_t *meta = meta_data_create();

	if (!meta)
		return NULL;
	meta_data_add_signed_int(meta, "vm_pid", vm->pid);
	if (vm->uuid)
		meta_data_add_string(meta, "vm_uuid", vm->uuid);
	/* libvirt's title and Nova's names; untrusted, as every name. */
	for (size_t i = 0; i < vm->nlabels; i++) {
		char key[48];

		snprintf(key, sizeof(key), "vm_%s", vm->labels[i].key);
		meta_data_add_string(meta, key, vm->labels[i].value);
	}
	return meta;
}

static void read_vm(struct context *ctx, const struct kvmstats_vm *vm)
{
	const struct plugin_vm *pv = vm->user;
	struct target t = { .vl = VALUE_LIST_INIT };
	const struct kvmstats_schema *vcpu_schema;

	if (!pv)
		return;
	sstrncpy(t.vl.plugin, PLUGIN_NAME, sizeof(t.vl.plugin));
	t.vl.meta = vm_meta(vm);
	set_instance(ctx, &t, pv, NULL);
	if (vm->vm_stats && vm->vm_stats->samples > 0 && vm->vm_stats->error == 0) {
		dispatch_schema(ctx, &t, vm->vm_stats->schema, vm->vm_stats->cur);
		dispatch_mapped_memory(ctx, &t, vm);
	}
	vcpu_schema = vm->nvcpus > 0 ? vm->vcpus[0]->stats->schema : NULL;
	if (vcpu_schema && grow_totals(ctx, vcpu_schema->num_values) == 0 &&
	    host_vcpu_totals(vm, vcpu_schema, ctx->totals) > 0)
		dispatch_schema(ctx, &t, vcpu_schema, ctx->totals);
	dispatch_sched(ctx, &t, vm, NULL);

	for (size_t i = 0; ctx->per_vcpu && i < vm->nvcpus; i++) {
		const struct kvmstats_vcpu *c = vm->vcpus[i];
		char vcpu[32];

		/* vCPU ids repeat in a process with several VMs: add the fd. */
		if (vm->nvms > 1)
			snprintf(vcpu, sizeof(vcpu), "vcpu%d_fd%d", c->id, c->vmm_fd);
		else
			snprintf(vcpu, sizeof(vcpu), "vcpu%d", c->id);
		set_instance(ctx, &t, pv, vcpu);
		dispatch_sched(ctx, &t, vm, c);
		if (c->stats->samples == 0 || c->stats->error != 0)
			continue;
		dispatch_schema(ctx, &t, c->stats->schema, c->stats->cur);
	}
	meta_data_destroy(t.vl.meta);
}

/* ------------------------------------------------------------------ read */

static void say_news(const char *line, void *ctx)
{
	(void)ctx;
	WARNING(PLUGIN_NAME " plugin: %s", line);
}

static void rescan(struct context *ctx)
{
	struct kvmstats_scan_report rep;
	int r = host_rescan(ctx->host, &rep);

	if (r < 0)
		rep = (struct kvmstats_scan_report){ .first_error = r };
	else	/* a failed rescan is the complaint below */
		scan_news(&ctx->news, r, &rep, ctx->host, say_news, NULL);
	if (rep.acquire_denied > 0)
		c_complain(LOG_WARNING, &ctx->complain_denied,
			   PLUGIN_NAME " plugin: %u stats fds could not be taken: "
			   "CAP_SYS_PTRACE is missing. Run collectd as root, or as a "
			   "user with the capabilities of " DROP_IN " (shipped in conf/)",
			   rep.acquire_denied);
	else
		c_release(LOG_INFO, &ctx->complain_denied,
			  PLUGIN_NAME " plugin: stats fds can be taken again");
	if (rep.first_error < 0)
		c_complain(LOG_WARNING, &ctx->complain_error,
			   PLUGIN_NAME " plugin: reading the VMs failed: %s",
			   STRERROR(-rep.first_error));
	else
		c_release(LOG_INFO, &ctx->complain_error,
			  PLUGIN_NAME " plugin: reading the VMs works again");
	if (rep.vms_without_stats > 0)
		c_complain_once(LOG_NOTICE, &ctx->complain_nostats,
				PLUGIN_NAME " plugin: %u VMs hold no KVM stats fd (QEMU "
				"before 8.1, Firecracker, ...) and neither QMPSocket nor "
				"debugfs (%s) serves them", rep.vms_without_stats,
				rep.debugfs_missing ? "not mounted" : "off");
}

static int kvm_stats_read(user_data_t *ud)
{
	struct context *ctx = ud->data;
	cdtime_t now = cdtime();
	int r;

	if (!ctx->host) {
		int k = statsfd_supported();
		bool nokvm = k == -ENOENT || k == -ENXIO || k == -ENODEV;
		const struct kvmstats_hooks hooks = {
			.want = want_vmm, .vm_added = on_vm_added,
			.vm_removed = on_vm_removed,
		};

		const struct kvmstats_sources sources = {
			.qmp = (const char *const *)ctx->qmp, .nqmp = ctx->nqmp,
			.libvirt_uri = ctx->libvirt_uri,
			.debugfs = ctx->debugfs ? DEBUGFS_KVM : NULL,
			.debugfs_every_ms = (unsigned)CDTIME_T_TO_MS(ctx->debugfs_interval),
			.no_fds = k == 0 || nokvm,
			.no_sched = !ctx->sched,
		};

		/*
		 * Without /dev/kvm (a container, a host whose KVM does not
		 * bind) only the QEMUs of QMPSocket or LibvirtURI can be read.
		 */
		if (nokvm && ctx->nqmp == 0 && !ctx->libvirt_uri) {
			c_complain_once(LOG_ERR, &ctx->complain_nokvm, PLUGIN_NAME
					" plugin: no /dev/kvm: KVM is not available on this host");
			return -1;
		}

		/* Inside collectd: raise what is permitted, restore it exactly. */
		r = host_new(NULL, true, &hooks, ctx, &ctx->host);
		if (r >= 0)
			r = host_set_sources(ctx->host, &sources);
		if (r < 0) {
			ERROR(PLUGIN_NAME " plugin: %s", STRERROR(-r));
			return -1;
		}
	}
	/* Half an interval early is on time: read calls jitter. */
	if (now + plugin_get_interval() / 2 >= ctx->next_rescan) {
		rescan(ctx);
		ctx->next_rescan = now + ctx->refresh_interval;
	}
	/* Releases the fds of VMs whose VMM exited, then one pread per fd. */
	host_sample(ctx->host);
	for (size_t i = 0; i < host_nvms(ctx->host); i++)
		read_vm(ctx, host_vm(ctx->host, i));
	return 0;
}

/* ---------------------------------------------------------------- config */

static void context_free(void *arg)
{
	struct context *ctx = arg;

	if (!ctx)
		return;
	host_free(ctx->host);
	filter_free(ctx->stats);
	filter_free(ctx->vms);
	for (size_t i = 0; i < ctx->nqmp; i++)
		free(ctx->qmp[i]);
	free(ctx->libvirt_uri);
	for (size_t i = 0; i < ctx->nwanted; i++)
		free(ctx->wanted[i].want);
	free(ctx->totals);
	free(ctx);
}

static struct context *context_new(void)
{
	struct context *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->refresh_interval = TIME_T_TO_CDTIME_T(10);
	ctx->debugfs = true;
	ctx->sched = true;
	/*
	 * debugfs costs three syscalls a value (open, read, close) and serves
	 * VM-wide values that change slowly (mapped memory): read once a
	 * minute, the last values sent at every interval in between.
	 */
	ctx->debugfs_interval = TIME_T_TO_CDTIME_T(60);
	parse_groups(DEFAULT_GROUPS, ctx->groups);
	C_COMPLAIN_INIT(&ctx->complain_denied);
	C_COMPLAIN_INIT(&ctx->complain_error);
	C_COMPLAIN_INIT(&ctx->complain_nostats);
	C_COMPLAIN_INIT(&ctx->complain_nokvm);
	return ctx;
}

static int register_read(struct context *ctx)
{
	user_data_t ud = { .data = ctx, .free_func = context_free };

	return plugin_register_complex_read(NULL, PLUGIN_NAME, kvm_stats_read, 0, &ud);
}

/* Entries of Stat/VM, kept until IgnoreSelected* says which list they join. */
struct entries {
	const oconfig_item_t *items[256];
	size_t n;
};

static int add_entries(struct filter **f, const struct entries *e, bool exclude)
{
	int r;

	if (e->n == 0)
		return 0;
	r = filter_new(f);
	for (size_t i = 0; r >= 0 && i < e->n; i++) {
		r = filter_add(*f, e->items[i]->values[0].value.string, exclude);
		if (r < 0)
			ERROR(PLUGIN_NAME " plugin: %s \"%s\": %s", e->items[i]->key,
			      e->items[i]->values[0].value.string,
			      r == -EINVAL ? "not a valid /regex/, or one too complex to compile" : STRERROR(-r));
	}
	return r;
}

static int keep_entry(const oconfig_item_t *item, struct entries *e)
{
	if (item->values_num != 1 || item->values[0].type != OCONFIG_TYPE_STRING) {
		ERROR(PLUGIN_NAME " plugin: %s takes one string", item->key);
		return -1;
	}
	if (e->n == sizeof(e->items) / sizeof(e->items[0])) {
		ERROR(PLUGIN_NAME " plugin: more than %zu %s entries",
		      sizeof(e->items) / sizeof(e->items[0]), item->key);
		return -1;
	}
	e->items[e->n++] = item;
	return 0;
}

/* "exits halt" or "all" (catalog group names): 0, or -1 naming the bad word. */
static int parse_groups(const char *v, bool groups[CATALOG_NGROUPS])
{
	char buf[512], *save = NULL;

	if (strlen(v) >= sizeof(buf))
		return -1;
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
		if (!found) {
			ERROR(PLUGIN_NAME " plugin: Groups: no group \"%s\" (exits page_faults "
			      "mmu tlb halt interrupts emulation memory nested preemption "
			      "other, or all)", w);
			return -1;
		}
	}
	return 0;
}

/* Groups takes one string, or several. */
static int groups_option(const oconfig_item_t *item, struct context *ctx)
{
	bool groups[CATALOG_NGROUPS], any = false;

	if (item->values_num < 1)
		return -1;
	memset(ctx->groups, 0, sizeof(ctx->groups));
	for (int i = 0; i < item->values_num; i++) {
		if (item->values[i].type != OCONFIG_TYPE_STRING ||
		    parse_groups(item->values[i].value.string, groups) < 0)
			return -1;
		for (int g = 0; g < CATALOG_NGROUPS; g++) {
			ctx->groups[g] |= groups[g];
			any |= groups[g];
		}
	}
	ctx->groups_set = true;
	return any ? 0 : -1;
}

/* A string that is not empty, replacing *ret (freed). */
static int string_option(const oconfig_item_t *item, char **ret)
{
	char *value = NULL;

	if (cf_util_get_string(item, &value) != 0)
		return -1;
	if (!*value) {
		ERROR(PLUGIN_NAME " plugin: %s \"\": give a value, or leave the option out",
		      item->key);
		free(value);
		return -1;
	}
	free(*ret);
	*ret = value;
	return 0;
}

/* One more QMPSocket path or glob, up to MAX_QMP. */
static int qmp_option(const oconfig_item_t *item, struct context *ctx)
{
	if (ctx->nqmp == MAX_QMP) {
		ERROR(PLUGIN_NAME " plugin: more than %d QMPSocket entries", MAX_QMP);
		return -1;
	}
	if (string_option(item, &ctx->qmp[ctx->nqmp]) != 0)
		return -1;
	ctx->nqmp++;
	return 0;
}

/*
 * Seconds, 0 (when zero_ok) to MAX_INTERVAL_S: a larger number would
 * overflow cdtime_t (2^30 ticks a second) or the milliseconds the core
 * takes, and is no interval anyone means.
 */
#define MAX_INTERVAL_S 86400
static int interval_option(const oconfig_item_t *item, bool zero_ok, cdtime_t *ret)
{
	cdtime_t t;

	if (item->values_num == 1 && item->values[0].type == OCONFIG_TYPE_NUMBER &&
	    !(item->values[0].value.number <= MAX_INTERVAL_S)) {
		ERROR(PLUGIN_NAME " plugin: %s %g: at most %d seconds", item->key,
		      item->values[0].value.number, MAX_INTERVAL_S);
		return -1;
	}
	if (cf_util_get_cdtime(item, &t) != 0)
		return -1;
	if (t == 0 && !zero_ok) {
		ERROR(PLUGIN_NAME " plugin: %s must be more than 0 seconds", item->key);
		return -1;
	}
	*ret = t;
	return 0;
}

static int hostname_format(const oconfig_item_t *item, enum hostname_format *ret)
{
	char buf[16];

	if (cf_util_get_string_buffer(item, buf, sizeof(buf)) != 0)
		return -1;
	if (strcasecmp(buf, "host") == 0)
		*ret = HOSTNAME_HOST;
	else if (strcasecmp(buf, "name") == 0)
		*ret = HOSTNAME_NAME;
	else {
		ERROR(PLUGIN_NAME " plugin: HostnameFormat \"%s\": use \"host\" or \"name\"", buf);
		return -1;
	}
	return 0;
}

static int parse_options(const oconfig_item_t *ci, struct context *ctx)
{
	struct entries stats = { .n = 0 }, vms = { .n = 0 };
	bool ignore_stats = false, ignore_vms = false;
	int r = 0;

	for (int i = 0; r == 0 && i < ci->children_num; i++) {
		const oconfig_item_t *item = &ci->children[i];

		/* "<VM x> ... </VM>": its lines would be read by nobody. */
		if (item->children_num > 0) {
			ERROR(PLUGIN_NAME " plugin: <%s> is not a block in <Plugin "
			      PLUGIN_NAME ">: write %s with its value on one line",
			      item->key, item->key);
			return -1;
		}
		if (strcasecmp(item->key, "Stat") == 0)
			r = keep_entry(item, &stats);
		else if (strcasecmp(item->key, "VM") == 0)
			r = keep_entry(item, &vms);
		else if (strcasecmp(item->key, "IgnoreSelected") == 0)
			r = cf_util_get_boolean(item, &ignore_stats);
		else if (strcasecmp(item->key, "IgnoreSelectedVM") == 0)
			r = cf_util_get_boolean(item, &ignore_vms);
		else if (strcasecmp(item->key, "Groups") == 0)
			r = groups_option(item, ctx);
		else if (strcasecmp(item->key, "PerVCPU") == 0)
			r = cf_util_get_boolean(item, &ctx->per_vcpu);
		else if (strcasecmp(item->key, "Histograms") == 0)
			r = cf_util_get_boolean(item, &ctx->histograms);
		else if (strcasecmp(item->key, "SchedStats") == 0)
			r = cf_util_get_boolean(item, &ctx->sched);
		else if (strcasecmp(item->key, "HostnameFormat") == 0)
			r = hostname_format(item, &ctx->hostname_format);
		else if (strcasecmp(item->key, "Debugfs") == 0)
			r = cf_util_get_boolean(item, &ctx->debugfs);
		else if (strcasecmp(item->key, "QMPSocket") == 0)
			r = qmp_option(item, ctx);
		else if (strcasecmp(item->key, "LibvirtURI") == 0)
			r = string_option(item, &ctx->libvirt_uri);
		else if (strcasecmp(item->key, "DebugfsInterval") == 0)
			r = interval_option(item, true, &ctx->debugfs_interval);
		else if (strcasecmp(item->key, "RefreshInterval") == 0)
			r = interval_option(item, false, &ctx->refresh_interval);
		else {
			ERROR(PLUGIN_NAME " plugin: unknown option \"%s\" in <Plugin "
			      PLUGIN_NAME ">", item->key);
			return -1;
		}
		if (r != 0)
			ERROR(PLUGIN_NAME " plugin: bad value for option \"%s\"", item->key);
	}
	if (r == 0)
		r = add_entries(&ctx->stats, &stats, ignore_stats);
	/* Stats listed without Groups are dispatched wherever they are. */
	if (r == 0 && !ctx->groups_set && filter_has_includes(ctx->stats) == 1)
		for (int g = 0; g < CATALOG_NGROUPS; g++)
			ctx->groups[g] = true;
	if (r == 0)
		r = add_entries(&ctx->vms, &vms, ignore_vms);
	return r == 0 ? 0 : -1;
}

/*
 * Whether a <Plugin kvm_stats> block was read. The one state kept at file
 * scope: collectd calls this callback once per block, and a second block
 * would silently replace the first (the package's block in
 * collectd.conf.d and one in collectd.conf, say); nothing else lives
 * long enough to tell.
 */
static bool configured;

static int kvm_stats_config(oconfig_item_t *ci)
{
	struct context *ctx;

	if (configured) {
		ERROR(PLUGIN_NAME " plugin: a second <Plugin " PLUGIN_NAME "> block; it would "
		      "replace the first one's options: merge them into one block");
		return -1;
	}
	configured = true;
	ctx = context_new();
	if (!ctx)
		return -1;
	if (parse_options(ci, ctx) < 0) {
		context_free(ctx);
		return -1;
	}
	/* Replaces the registration with defaults (freeing its context). */
	plugin_unregister_read(PLUGIN_NAME);
	return register_read(ctx) == 0 ? 0 : -1;
}

/* Says once, at start, what stands in the way. */
static int kvm_stats_init(void)
{
	struct priv_report priv;
	int r = statsfd_supported();

	if (r == 0) {
		/* debugfs may still serve; whether it does is said at the first scan. */
		WARNING(PLUGIN_NAME " plugin: this kernel has no KVM binary stats API "
			"(KVM_CAP_BINARY_STATS_FD, Linux 5.14 or later): reading debugfs only");
	}
	/* No /dev/kvm is said at the first read: QMPSocket may still serve. */
	if (priv_probe(&priv) == 0 && !priv.sys_ptrace)
		WARNING(PLUGIN_NAME " plugin: %s without CAP_SYS_PTRACE: only VMs whose "
			"VMM runs as collectd's user with no capability collectd lacks "
			"can be read. See " DROP_IN " in conf/",
			priv.root ? "running as root but" : "not root and");
	return 0;
}

/*
 * Closes every stats fd at once, so no VM is kept alive while collectd
 * finishes shutting down its other plugins.
 */
static int kvm_stats_shutdown(void)
{
	plugin_unregister_read(PLUGIN_NAME);
	return 0;
}

void module_register(void)
{
	struct context *ctx = context_new();

	plugin_register_complex_config(PLUGIN_NAME, kvm_stats_config);
	plugin_register_init(PLUGIN_NAME, kvm_stats_init);
	plugin_register_shutdown(PLUGIN_NAME, kvm_stats_shutdown);
	if (ctx && register_read(ctx) != 0)
		ERROR(PLUGIN_NAME " plugin: cannot register the read callback");
}
