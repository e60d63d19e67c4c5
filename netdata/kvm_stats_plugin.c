/* SPDX-License-Identifier: MIT */
/*
 * kvm_stats.plugin: a Netdata external plugin for KVM binary stats.
 *
 * Netdata runs every executable *.plugin in its plugins directory with
 * argv[1] = update_every and reads the protocol from its stdout (Netdata's
 * plugins.d documentation). This file translates what common/ hands it:
 * VMs appear (charts defined), are sampled (BEGIN/SET/END) and go (charts
 * re-sent obsolete). Only main() chooses the exit status, because Netdata
 * reads it: non-zero before any data disables the plugin, 0 restarts it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "charts.h"
#include "config.h"
#include "functions.h"
#include "acquire.h"
#include "debugfs.h"
#include "filter.h"
#include "news.h"
#include "priv.h"
#include "output.h"

#define CONFIG_NAME "kvm_stats.conf"
#define DEBUGFS_MOUNT "/sys/kernel/debug"
#define DEBUGFS_KVM DEBUGFS_MOUNT "/kvm"
#define USEC_PER_SEC 1000000ULL

/* One layout per pair of schemas: every VM of one kernel shares it. */
struct cached_layout {
	const struct kvmstats_schema *vm_schema, *vcpu_schema;
	bool vcpu_only;
	struct layout *layout;
};

struct plugin {
	struct plugin_config cfg;
	struct layout_options lopt;
	struct output output;
	FILE *out;		/* output.file */
	struct functions functions;	/* Netdata's FUNCTION requests on stdin */
	struct kvmstats_host *host;
	struct cached_layout *layouts;
	size_t nlayouts;
	struct priv_report priv;	/* the capabilities it started with */
	int error;		/* first -errno a hook met (out of memory) */
	bool exiting;		/* VMs released at exit are not gone: no obsolete */
};

/* Per-VM state, in kvmstats_vm.user. */
struct plugin_vm {
	char type_id[80];	/* "kvm_<name>", unique on the host */
	const struct kvmstats_schema *vm_schema, *vcpu_schema;
	const struct layout *layout, *vcpu_layout;
	uint64_t *totals;	/* the vCPUs summed, vcpu_schema->num_values */
	uint64_t last_usec;	/* monotonic time of the last update */
	bool *shown;		/* per layout dimension: charted yet (NULL: all are) */
	size_t nshown;
	struct cpu_chart cpu;	/* its own: the divisor is its known vCPUs */
};

/* Per-vCPU state, in kvmstats_vcpu.user. */
struct plugin_vcpu {
	char prefix[32];	/* "vcpu<N>_" before each chart key */
	bool defined;
	bool *shown;		/* as plugin_vm's, over the vCPU layout */
	size_t nshown;
	struct cpu_chart cpu;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/* --------------------------------------------------------------- config */

/*
 * The user's file, else the stock one, else the defaults (config.c reads
 * them). Returns 0, or -EINVAL with the message printed. A file that is
 * there but cannot be opened (one only root may read) is reported, then
 * skipped like an absent one.
 */
static int config_load(struct plugin_config *cfg)
{
	const char *dirs[] = { getenv("NETDATA_USER_CONFIG_DIR"),
			       getenv("NETDATA_STOCK_CONFIG_DIR") };
	char path[PATH_MAX], err[PATH_MAX + 1100];	/* config.c: up to 1 KiB after it */
	int r;

	for (size_t i = 0; i < 2; i++) {
		if (!dirs[i] || !*dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirs[i], CONFIG_NAME);
		r = plugin_config_parse_file(path, cfg, err, sizeof(err));
		if (r == 0)
			return 0;
		if (r == -EINVAL || r == -ENOMEM || r == -EIO) {
			fprintf(stderr, "kvm_stats.plugin: %s\n", err);
			return -EINVAL;
		}
		if (r != -ENOENT)
			fprintf(stderr, "kvm_stats.plugin: %s cannot be opened (%s): "
				"its settings are ignored\n", path, strerror(-r));
	}
	return 0;
}

/* -------------------------------------------------------------- layouts */

static const struct layout *layout_get(struct plugin *p,
				       const struct kvmstats_schema *vm_schema,
				       const struct kvmstats_schema *vcpu_schema,
				       bool vcpu_only)
{
	struct cached_layout *c;
	struct layout *l;

	for (size_t i = 0; i < p->nlayouts; i++) {
		c = &p->layouts[i];
		if (c->vm_schema == vm_schema && c->vcpu_schema == vcpu_schema &&
		    c->vcpu_only == vcpu_only)
			return c->layout;
	}
	if (layout_build(vm_schema, vcpu_schema, vcpu_only, &p->lopt, &l) < 0)
		return NULL;
	c = reallocarray(p->layouts, p->nlayouts + 1, sizeof(*c));
	if (!c) {
		layout_free(l);
		return NULL;
	}
	p->layouts = c;
	p->layouts[p->nlayouts++] = (struct cached_layout){
		vm_schema, vcpu_schema, vcpu_only, l,
	};
	return l;
}

/* ----------------------------------------------------------------- VMs */

static bool type_id_taken(struct plugin *p, const char *id)
{
	for (size_t i = 0; i < host_nvms(p->host); i++) {
		const struct plugin_vm *pv = host_vm(p->host, i)->user;

		if (pv && strcmp(pv->type_id, id) == 0)
			return true;
	}
	return false;
}

/*
 * Unless "zero dimensions = yes", a dimension is charted once its stat is
 * not zero, and a chart once one of its dimensions is: Netdata stores every
 * dimension it is told of (dbengine pages, work at every update), and most
 * stats of a VM stay zero for its life (nested_run, nmi_window_exits, ...).
 * shown[] holds, per dimension of a layout (its charts' in order), whether
 * it is charted; NULL: every dimension is.
 */
static size_t layout_ndims(const struct layout *l)
{
	size_t n = 0;

	for (size_t i = 0; l && i < l->ncharts; i++)
		n += l->charts[i].ndims;
	return n;
}

static bool any_shown(const bool *shown, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (shown[i])
			return true;
	return false;
}

/* Sizes *shown for l, all hidden; NULL when every dimension is charted. -ENOMEM. */
static int shown_reset(const struct plugin *p, const struct layout *l, bool **shown,
		       size_t *nshown)
{
	size_t n = layout_ndims(l);

	free(*shown);
	*shown = NULL;
	*nshown = 0;
	if (p->cfg.zero_dims || !l)
		return 0;
	*shown = calloc(n + 1, sizeof(**shown));
	if (!*shown)
		return -ENOMEM;
	*nshown = n;
	return 0;
}

static void define_charts(struct plugin *p, const char *type_id, const char *prefix,
			  const struct layout *l, const bool *shown,
			  const struct chart_labels *labels, bool obsolete)
{
	size_t off = 0;

	for (size_t i = 0; l && i < l->ncharts; off += l->charts[i].ndims, i++) {
		const bool *sh = shown ? shown + off : NULL;

		if (!sh || any_shown(sh, l->charts[i].ndims))
			chart_define(p->out, type_id, prefix, &l->charts[i], labels,
				     p->cfg.update_every, obsolete, sh);
	}
}

static void define_vm_charts(struct plugin *p, const struct kvmstats_vm *vm,
			     bool obsolete)
{
	const struct plugin_vm *pv = vm->user;
	const struct chart_labels labels = { .vm = vm, .vcpu = -1 };

	define_charts(p, pv->type_id, "", pv->layout, pv->shown, &labels, obsolete);
}

static void define_vcpu_charts(struct plugin *p, const struct kvmstats_vm *vm,
			       const struct kvmstats_vcpu *vcpu, bool obsolete)
{
	const struct plugin_vm *pv = vm->user;
	const struct plugin_vcpu *pc = vcpu->user;
	const struct chart_labels labels = { .vm = vm, .vcpu = vcpu->id };

	if (pc)
		define_charts(p, pv->type_id, pc->prefix, pv->vcpu_layout, pc->shown, &labels,
			      obsolete);
}

/* BEGIN/SET/END of a layout's charts, first defining what became non-zero. */
static void update_charts(struct plugin *p, const char *type_id, const char *prefix,
			  const struct layout *l, bool *shown,
			  const struct chart_labels *labels,
			  const uint64_t *const values[CHART_NSOURCES], uint64_t usec)
{
	size_t off = 0;

	for (size_t i = 0; i < l->ncharts; off += l->charts[i].ndims, i++) {
		const struct chart *c = &l->charts[i];
		bool *sh = shown ? shown + off : NULL;

		if (sh) {
			if (chart_show_nonzero(c, values, sh))
				chart_define(p->out, type_id, prefix, c, labels,
					     p->cfg.update_every, false, sh);
			if (!any_shown(sh, c->ndims))
				continue;
		}
		chart_update(p->out, type_id, prefix, c, values, usec, sh);
	}
}

/* The chart of l with key, and its offset into l's shown[]; NULL if none. */
static const struct chart *layout_chart(const struct layout *l, const char *key,
					size_t *ret_off)
{
	size_t off = 0;

	for (size_t i = 0; l && i < l->ncharts; off += l->charts[i].ndims, i++) {
		if (strcmp(l->charts[i].key, key) == 0) {
			*ret_off = off;
			return &l->charts[i];
		}
	}
	return NULL;
}

/*
 * A source change gave the VM (or a vCPU) a new layout, was -> now. A
 * dimension charted before and still there stays charted (it keeps its
 * values: no gap); a chart of was that now lacks, if it was defined, is
 * sent obsolete, since nothing updates it any more.
 */
static void layout_moved(struct plugin *p, const char *type_id, const char *prefix,
			 const struct layout *was, const bool *was_shown,
			 const struct layout *now, bool *now_shown,
			 const struct chart_labels *labels)
{
	size_t off = 0;

	for (size_t i = 0; was && i < was->ncharts; off += was->charts[i].ndims, i++) {
		const struct chart *c = &was->charts[i];
		const bool *sh = was_shown ? was_shown + off : NULL;
		const struct chart *n;
		size_t noff;

		if (sh && !any_shown(sh, c->ndims))
			continue;	/* never defined */
		n = layout_chart(now, c->key, &noff);
		if (!n) {
			chart_define(p->out, type_id, prefix, c, labels, p->cfg.update_every,
				     true, sh);
			continue;
		}
		for (size_t d = 0; now_shown && d < c->ndims; d++) {
			if (sh && !sh[d])
				continue;
			for (size_t e = 0; e < n->ndims; e++)
				if (strcmp(n->dims[e].id, c->dims[d].id) == 0)
					now_shown[noff + e] = true;
		}
	}
}

/*
 * (Re)defines the VM's charts when its schemas changed: at its start, when
 * its first vCPU stats fd arrives after it, and when a better source takes
 * its VM-wide stats or its vCPUs (vm_changed: debugfs -> the VM stats fd,
 * libvirt -> QMP, QMP -> vCPU stats fds). Dimensions of the same id keep
 * their chart and values (the same kernel counter, read another way).
 */
static int refresh_vm(struct plugin *p, struct kvmstats_vm *vm)
{
	struct plugin_vm *pv = vm->user;
	const struct kvmstats_schema *vm_schema = vm->vm_stats ? vm->vm_stats->schema : NULL;
	const struct kvmstats_schema *vcpu_schema =
		vm->nvcpus ? vm->vcpus[0]->stats->schema : NULL;
	const struct layout *was = pv->layout, *vcpu_was = pv->vcpu_layout;
	const struct chart_labels labels = { .vm = vm, .vcpu = -1 };
	bool *was_shown = pv->shown;

	if (pv->layout && pv->vm_schema == vm_schema && pv->vcpu_schema == vcpu_schema)
		return 0;
	pv->layout = layout_get(p, vm_schema, vcpu_schema, false);
	pv->vcpu_layout = vcpu_schema && p->cfg.per_vcpu ?
			  layout_get(p, NULL, vcpu_schema, true) : NULL;
	free(pv->totals);
	pv->totals = vcpu_schema ? calloc(vcpu_schema->num_values, sizeof(uint64_t)) : NULL;
	if (!pv->layout || (vcpu_schema && !pv->totals) ||
	    (vcpu_schema && p->cfg.per_vcpu && !pv->vcpu_layout))
		return -ENOMEM;
	pv->shown = NULL;	/* was_shown, until layout_moved() read it */
	if (shown_reset(p, pv->layout, &pv->shown, &pv->nshown) < 0) {
		free(was_shown);
		return -ENOMEM;
	}
	layout_moved(p, pv->type_id, "", was, was_shown, pv->layout, pv->shown, &labels);
	free(was_shown);
	pv->vm_schema = vm_schema;
	pv->vcpu_schema = vcpu_schema;
	define_vm_charts(p, vm, false);
	if (pv->vcpu_layout == vcpu_was)
		return 0;
	/* vCPUs already charted: the same for their charts. */
	for (size_t i = 0; i < vm->nvcpus; i++) {
		struct plugin_vcpu *pc = vm->vcpus[i]->user;
		const struct chart_labels vlabels = { .vm = vm, .vcpu = vm->vcpus[i]->id };
		bool *vcpu_shown;

		if (!pc)
			continue;
		vcpu_shown = pc->shown;
		pc->shown = NULL;
		if (shown_reset(p, pv->vcpu_layout, &pc->shown, &pc->nshown) < 0) {
			free(vcpu_shown);
			return -ENOMEM;
		}
		layout_moved(p, pv->type_id, pc->prefix, vcpu_was, vcpu_shown, pv->vcpu_layout,
			     pc->shown, &vlabels);
		free(vcpu_shown);
		define_vcpu_charts(p, vm, vm->vcpus[i], false);
	}
	return 0;
}

static void add_vcpu(struct plugin *p, struct kvmstats_vm *vm,
		     struct kvmstats_vcpu *vcpu)
{
	struct plugin_vcpu *pc = calloc(1, sizeof(*pc));

	if (!pc) {
		p->error = -ENOMEM;
		return;
	}
	/* In a process with several VMs vCPU ids repeat: add the fd. */
	if (vm->nvms > 1)
		snprintf(pc->prefix, sizeof(pc->prefix), "vcpu%d_fd%d_", vcpu->id,
			 vcpu->vmm_fd);
	else
		snprintf(pc->prefix, sizeof(pc->prefix), "vcpu%d_", vcpu->id);
	if (shown_reset(p, ((const struct plugin_vm *)vm->user)->vcpu_layout, &pc->shown,
			&pc->nshown) < 0) {
		free(pc);
		p->error = -ENOMEM;
		return;
	}
	vcpu->user = pc;
	define_vcpu_charts(p, vm, vcpu, false);
}

static void on_vm_added(struct kvmstats_vm *vm, void *ctx)
{
	struct plugin *p = ctx;
	struct plugin_vm *pv = calloc(1, sizeof(*pv));
	char part[49];

	if (!pv) {
		p->error = -ENOMEM;
		return;
	}
	chart_id_part(vm->name, part, sizeof(part));
	snprintf(pv->type_id, sizeof(pv->type_id), "kvm_%s", part);
	if (type_id_taken(p, pv->type_id) || vm->nvms > 1)
		snprintf(pv->type_id, sizeof(pv->type_id), "kvm_%s_%d", part, (int)vm->pid);
	vm->user = pv;
	if (refresh_vm(p, vm) < 0)
		p->error = -ENOMEM;
	for (size_t i = 0; i < vm->nvcpus; i++)
		add_vcpu(p, vm, vm->vcpus[i]);
}

static void on_vcpu_added(struct kvmstats_vm *vm, struct kvmstats_vcpu *vcpu, void *ctx)
{
	struct plugin *p = ctx;

	if (refresh_vm(p, vm) < 0)
		p->error = -ENOMEM;
	add_vcpu(p, vm, vcpu);
}

/* VM-wide stats arrived later (QMP answered, debugfs appeared). */
static void on_vm_changed(struct kvmstats_vm *vm, void *ctx)
{
	struct plugin *p = ctx;

	if (vm->user && refresh_vm(p, vm) < 0)
		p->error = -ENOMEM;
}

/* A cpu chart that was sent goes obsolete with its VM. */
static void cpu_obsolete(struct plugin *p, const char *type_id, const char *prefix,
			 const struct cpu_chart *cc, const struct chart_labels *labels)
{
	if (cc->defined)
		chart_define(p->out, type_id, prefix, &cc->chart, labels, p->cfg.update_every,
			     true, NULL);
}

static void on_vm_removed(struct kvmstats_vm *vm, void *ctx)
{
	struct plugin *p = ctx;
	struct plugin_vm *pv = vm->user;

	if (!pv)
		return;
	if (!p->exiting)
		define_vm_charts(p, vm, true);
	if (!p->exiting)
		cpu_obsolete(p, pv->type_id, "", &pv->cpu, &(struct chart_labels){ vm, -1 });
	for (size_t i = 0; i < vm->nvcpus; i++) {
		struct plugin_vcpu *pc = vm->vcpus[i]->user;

		if (!p->exiting)
			define_vcpu_charts(p, vm, vm->vcpus[i], true);
		if (!p->exiting && pc)
			cpu_obsolete(p, pv->type_id, pc->prefix, &pc->cpu,
				     &(struct chart_labels){ vm, vm->vcpus[i]->id });
		if (pc)
			free(pc->shown);
		free(pc);
		vm->vcpus[i]->user = NULL;
	}
	free(pv->totals);
	free(pv->shown);
	free(pv);
	vm->user = NULL;
}

static bool want_vmm(const struct discover_proc *proc, void *ctx)
{
	const struct plugin *p = ctx;

	return filter_match(p->cfg.vms, discover_proc_name(proc)) == 1;
}

/* --------------------------------------------------------------- sample */

/*
 * The cpu chart of a VM (known: its vCPUs whose thread is known) or of a
 * vCPU (known: 1 when its thread is), from sched[]: defined once a thread
 * is known, again with the divisor for as many vCPUs when that changes,
 * and not updated while none is (a gap, not a drop to zero).
 */
static void update_cpu(struct plugin *p, const char *type_id, const char *prefix,
		       struct cpu_chart *cc, bool vcpu_level, unsigned known,
		       const uint64_t sched[SCHED_NSLOTS], const struct chart_labels *labels,
		       uint64_t now)
{
	const uint64_t *values[CHART_NSOURCES] = { [SOURCE_SCHED] = sched };
	uint64_t last = cc->last_usec;

	if (known == 0)
		return;
	if (!cc->defined || cc->vcpus != known) {
		cpu_chart_init(cc, vcpu_level, known);
		chart_define(p->out, type_id, prefix, &cc->chart, labels, p->cfg.update_every,
			     false, NULL);
		cc->defined = true;
	}
	chart_update(p->out, type_id, prefix, &cc->chart, values, last ? now - last : 0, NULL);
	cc->last_usec = now;
}

static void update_vm(struct plugin *p, struct kvmstats_vm *vm, uint64_t now)
{
	struct plugin_vm *pv = vm->user;
	const uint64_t *values[CHART_NSOURCES] = { 0 };
	uint64_t sched[SCHED_NSLOTS];
	uint64_t usec = pv->last_usec ? now - pv->last_usec : 0;
	const struct chart_labels labels = { .vm = vm, .vcpu = -1 };

	if (!pv->layout)
		return;
	if (vm->vm_stats && vm->vm_stats->samples > 0 && vm->vm_stats->error == 0)
		values[SOURCE_VM_FD] = vm->vm_stats->cur;
	if (pv->vcpu_schema && host_vcpu_totals(vm, pv->vcpu_schema, pv->totals) > 0)
		values[SOURCE_VCPU_TOTAL] = pv->totals;
	update_charts(p, pv->type_id, "", pv->layout, pv->shown, &labels, values, usec);
	if (p->cfg.cpu_charts) {
		cpu_chart_values(vm, NULL, sched);
		update_cpu(p, pv->type_id, "", &pv->cpu, false, vm->sched_known, sched, &labels,
			   now);
	}

	for (size_t j = 0; p->cfg.per_vcpu && j < vm->nvcpus; j++) {
		const struct kvmstats_vcpu *c = vm->vcpus[j];
		struct plugin_vcpu *pc = c->user;
		const struct chart_labels vlabels = { .vm = vm, .vcpu = c->id };

		if (pc && p->cfg.cpu_charts) {
			cpu_chart_values(NULL, c, sched);
			update_cpu(p, pv->type_id, pc->prefix, &pc->cpu, true, c->sched.tid != 0,
				   sched, &vlabels, now);
		}
		if (!pv->vcpu_layout || !pc || c->stats->samples == 0 || c->stats->error != 0 ||
		    c->stats->schema != pv->vcpu_schema)
			continue;
		/* The vCPU layout changed under it (a new schema): start again. */
		if (pc->shown && pc->nshown != layout_ndims(pv->vcpu_layout) &&
		    shown_reset(p, pv->vcpu_layout, &pc->shown, &pc->nshown) < 0) {
			p->error = -ENOMEM;
			continue;
		}
		values[SOURCE_VCPU] = c->stats->cur;
		update_charts(p, pv->type_id, pc->prefix, pv->vcpu_layout, pc->shown, &vlabels,
			      values, usec);
	}
	pv->last_usec = now;
}

/* -------------------------------------------------------------- startup */

/* Netdata >= major.minor, from NETDATA_VERSION ("v1.37.1", "2.2.0"). */
static bool netdata_at_least(unsigned major, unsigned minor)
{
	const char *v = getenv("NETDATA_VERSION");
	unsigned a = 0, b = 0;

	if (!v)
		return false;
	if (*v == 'v')
		v++;
	if (sscanf(v, "%u.%u", &a, &b) != 2)
		return false;
	return a > major || (a == major && b >= minor);
}

/*
 * Says, once, why the plugin cannot work here, and tells Netdata not to
 * restart it (DISABLE, and a non-zero exit before any data).
 */
__attribute__((format(printf, 1, 2)))
static int disable(const char *fmt, ...)
{
	va_list ap;

	fputs("kvm_stats.plugin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs("DISABLE\n", stdout);
	fflush(stdout);
	return 1;
}

/* The plugin's own path, for the setcap line; "" if unknown. */
static void self_path(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);

	buf[n > 0 ? n : 0] = '\0';
}

/*
 * debugfs is root's (the mount point is 0700): look with CAP_DAC_READ_SEARCH
 * raised, by opening it. access(2) would check with the real uid (netdata)
 * and no capability at all, and say no although the plugin may read it.
 */
static int debugfs_check(void)
{
	struct priv_saved saved = { 0 };
	int r;

	priv_raise(&saved);
	r = debugfs_probe(DEBUGFS_KVM);
	priv_restore(&saved);
	return r;
}

/* Is debugfs mounted on its usual place? statfs needs no search on it. */
static bool debugfs_mounted(void)
{
	struct statfs st;

	return statfs(DEBUGFS_MOUNT, &st) == 0 && st.f_type == DEBUGFS_MAGIC;
}

/*
 * Says once why debugfs cannot serve the VM-wide stats (mapped memory,
 * MMU) of a VMM that holds no VM stats fd, and what fixes it. err is
 * debugfs_probe()'s -errno.
 */
static void report_debugfs(const struct priv_report *priv, int err)
{
	char self[PATH_MAX];

	fputs("kvm_stats.plugin: VM-wide stats of VMs whose VMM holds no VM "
	      "stats fd (QEMU 8.1 and later hold only vCPU ones, QEMU 7.x none) "
	      "come from " DEBUGFS_KVM ", which ", stderr);
	if (err == -ENOENT && !debugfs_mounted())
		fputs("does not exist: debugfs is not mounted. Mount it: mount -t "
		      "debugfs none " DEBUGFS_MOUNT " (or a debugfs line in "
		      "/etc/fstab)\n", stderr);
	else if (err == -ENOENT)
		fputs("does not exist although debugfs is mounted: this kernel's "
		      "KVM has no debugfs entries\n", stderr);
	else if ((err == -EACCES || err == -EPERM) && !priv->dac_read_search &&
		 priv->root)
		fputs("is root's and CAP_DAC_READ_SEARCH is not in the plugin's "
		      "bounding set: allow it (CapabilityBoundingSet) in "
		      "netdata.service\n", stderr);
	else if ((err == -EACCES || err == -EPERM) && !priv->dac_read_search) {
		self_path(self, sizeof(self));
		fprintf(stderr, "is root's (0700) and CAP_DAC_READ_SEARCH is missing. "
			"Grant it: setcap cap_sys_ptrace,cap_dac_read_search+ep %s\n",
			self);
	} else
		fprintf(stderr, "cannot be read: %s\n", strerror(-err));
}

/* A VM that debugfs would serve, if it could be read. */
static bool wants_debugfs(const struct kvmstats_vm *vm)
{
	return !vm->vm_stats && vm->vm_fd >= 0;
}

static int check_system(const struct priv_report *priv, const struct plugin_config *cfg,
			bool *ret_no_fds)
{
	char self[PATH_MAX];
	struct utsname u;
	int r = statsfd_supported();

	self_path(self, sizeof(self));
	*ret_no_fds = false;
	if (r == 0) {
		uname(&u);
		if (cfg->debugfs && debugfs_check() == 0) {
			fprintf(stderr, "kvm_stats.plugin: kernel %s has no KVM binary stats "
				"API: reading debugfs only\n", u.release);
			*ret_no_fds = true;
			return 0;
		}
		return disable("kernel %s has no KVM binary stats API "
			       "(KVM_CAP_BINARY_STATS_FD, Linux 5.14 or later) and "
			       DEBUGFS_KVM " is not readable", u.release);
	}
	if (r == -ENOENT || r == -ENXIO || r == -ENODEV) {
		/*
		 * As kvmstat: without /dev/kvm (a container, a host whose KVM
		 * does not bind) the QEMUs of the QMP sockets or libvirtd
		 * configured can still be read.
		 */
		if (cfg->nqmp > 0 || cfg->libvirt_uri) {
			*ret_no_fds = true;
			return 0;
		}
		return disable("%s", "no /dev/kvm: KVM is not available on this host");
	}
	if (!priv->sys_ptrace && !priv->root)
		return disable("CAP_SYS_PTRACE is missing, so the VMMs' stats fds cannot be "
			       "read. Grant it: setcap cap_sys_ptrace,cap_dac_read_search+ep %s",
			       self);
	if (!priv->sys_ptrace)
		return disable("%s", "running as root but without CAP_SYS_PTRACE (the "
			       "service's bounding set drops it): allow it in netdata.service");
	return 0;
}

static int parse_update_every(int argc, char **argv, int *ret)
{
	const char *v = argc > 1 ? argv[1] : getenv("NETDATA_UPDATE_EVERY");

	if (!v) {
		*ret = 1;
		return 0;
	}
	return plugin_config_update_every(v, ret);
}

/* ----------------------------------------------------------------- loop */

static void report_scan(const struct plugin *p, const struct kvmstats_scan_report *rep,
			bool *said)
{
	if (rep->debugfs_error < 0 && !said[3]) {
		for (size_t i = 0; i < host_nvms(p->host); i++)
			if (wants_debugfs(host_vm(p->host, i))) {
				report_debugfs(&p->priv, rep->debugfs_error);
				said[3] = true;
				break;
			}
	}
	/*
	 * CAP_SYS_PTRACE passes the ptrace check of /proc/PID/fd, but the
	 * directory is its owner's 0500: without CAP_DAC_READ_SEARCH another
	 * user's VMM cannot be listed, so it is not even seen.
	 */
	if (rep->discover.denied > 0 && !p->priv.dac_read_search && !p->priv.root &&
	    !said[4]) {
		char self[PATH_MAX];

		self_path(self, sizeof(self));
		fprintf(stderr, "kvm_stats.plugin: the fds of %u processes of other users "
			"could not be listed: CAP_DAC_READ_SEARCH is missing, so their VMs "
			"are not seen. Grant it: setcap cap_sys_ptrace,cap_dac_read_search+ep "
			"%s\n", rep->discover.denied, self);
		said[4] = true;
	}
	if (rep->acquire_denied > 0 && !said[0]) {
		fprintf(stderr, "kvm_stats.plugin: %u stats fds could not be taken "
			"(pidfd_getfd refused): CAP_SYS_PTRACE is not effective\n",
			rep->acquire_denied);
		said[0] = true;
	}
	if (rep->first_error < 0 && !said[1]) {
		fprintf(stderr, "kvm_stats.plugin: reading a VM failed: %s\n",
			strerror(-rep->first_error));
		said[1] = true;
	}
}

/* A line of scan_news(), on Netdata's error log. */
static void say_news(const char *line, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "kvm_stats.plugin: %s\n", line);
}

/* While the output waits for Netdata: release the VMs whose VMM exited. */
static void reap(void *host)
{
	host_reap(host);
}

static int run(struct plugin *p)
{
	uint64_t step = (uint64_t)p->cfg.update_every * USEC_PER_SEC;
	uint64_t rescan_step = (uint64_t)p->cfg.rescan_every * USEC_PER_SEC;
	uint64_t next = now_usec(), rescan_at = next;
	bool said[5] = { false, false, false, false, false };
	struct scan_said news = { 0 };
	int r;

	while (!stop) {
		uint64_t now = now_usec();

		/* Half a step early is on time: wake-ups jitter by microseconds. */
		if (now + step / 2 >= rescan_at) {
			struct kvmstats_scan_report rep;

			r = host_rescan(p->host, &rep);
			if (r >= 0)
				report_scan(p, &rep, said);
			scan_news(&news, r, &rep, p->host, say_news, NULL);
			rescan_at = now + rescan_step;
		}
		host_sample(p->host);
		if (p->error < 0)
			return p->error;
		for (size_t i = 0; i < host_nvms(p->host); i++)
			update_vm(p, host_vm(p->host, i), now);
		r = output_flush(&p->output, reap, p->host, &stop);
		if (r == -EPIPE || r == -EINTR)
			return 0;	/* Netdata closed our stdout, or stops us */
		if (r < 0)
			return r;

		/* Absolute deadlines: no drift, and no burst after a stall. */
		next += step;
		now = now_usec();
		if (next <= now)
			next = now + step - (now - next) % step;
		/* Until then, answer Netdata's function calls (kvm-vms). */
		while (!stop && functions_sleep(&p->functions, next, p->host, p->out) > 0) {
			r = output_flush(&p->output, reap, p->host, &stop);
			if (r == -EPIPE || r == -EINTR)
				return 0;
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct kvmstats_hooks hooks = {
		.want = want_vmm, .vm_added = on_vm_added, .vcpu_added = on_vcpu_added,
		.vm_changed = on_vm_changed, .vm_removed = on_vm_removed,
	};
	struct sigaction sa = { .sa_handler = on_signal };
	struct plugin p = { .output.fd = -1, .functions.fd = -1 };
	struct kvmstats_sources sources = { 0 };
	struct priv_report priv;
	int update_every, r, status = 1;

	if (parse_update_every(argc, argv, &update_every) < 0) {
		fprintf(stderr, "usage: kvm_stats.plugin [update_every (1-3600)]\n");
		return 1;
	}
	/* Keep CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH only, before anything. */
	r = priv_probe(&priv);
	if (r >= 0)
		r = priv_restrict();
	p.priv = priv;
	if (r < 0) {
		status = disable("cannot drop capabilities: %s", strerror(-r));
		goto out;
	}
	/*
	 * The configuration is read with no capability effective: its path
	 * comes from the environment, and CAP_DAC_READ_SEARCH would open
	 * any file there, whose lines the error message quotes.
	 */
	plugin_config_defaults(&p.cfg, update_every);
	if (config_load(&p.cfg) < 0) {
		status = disable("%s", "fix the configuration and restart Netdata");
		goto out;
	}
	if (p.cfg.update_every < update_every)
		p.cfg.update_every = update_every;
	p.lopt = (struct layout_options){
		.stats = p.cfg.stats, .histograms = p.cfg.histograms,
		.vcpu_histograms = p.cfg.histograms && p.cfg.vcpu_histograms,
		.heatmap = netdata_at_least(2, 2),
	};
	memcpy(p.lopt.vcpu_groups, p.cfg.vcpu_groups, sizeof(p.lopt.vcpu_groups));
	plugin_config_vm_groups(&p.cfg, p.lopt.groups);

	status = check_system(&priv, &p.cfg, &sources.no_fds);
	if (status != 0)
		goto out;
	sources.qmp = (const char *const *)p.cfg.qmp;
	sources.nqmp = p.cfg.nqmp;
	sources.libvirt_uri = p.cfg.libvirt_uri;	/* libvirt is dlopen()ed only then */
	sources.debugfs = p.cfg.debugfs ? DEBUGFS_KVM : NULL;
	sources.debugfs_every_ms = (unsigned)p.cfg.debugfs_every * 1000;
	sources.no_sched = !p.cfg.cpu_charts;
	sources.stop = &stop;	/* SIGTERM: no QMP peer is waited for any longer */

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);	/* a closed stdout is seen as -EPIPE */
	acquire_raise_nofile();	/* each held stats fd counts against it */
	r = host_new(NULL, true, &hooks, &p, &p.host);
	/* Output that never blocks the release of VMs whose VMM exited. */
	if (r >= 0)
		r = output_open(&p.output, STDOUT_FILENO, host_reap_fd(p.host), &stop);
	p.out = p.output.file;
	/*
	 * FUNCTION (1.37+): a keyword older Netdata would drop the plugin for;
	 * its 2.x words (tags, access, priority) 1.37 would take as garbage.
	 */
	if (r >= 0)
		r = functions_open(&p.functions, STDIN_FILENO,
				   netdata_at_least(2, 0) ? FUNCTIONS_V2 :
				   netdata_at_least(1, 37) ? FUNCTIONS_V1 : FUNCTIONS_NONE,
				   (unsigned)p.cfg.update_every);
	if (r >= 0)
		functions_declare(&p.functions, p.out);
	if (r >= 0)
		r = host_set_sources(p.host, &sources);
	if (r >= 0)
		r = run(&p);
	if (r < 0)
		fprintf(stderr, "kvm_stats.plugin: %s\n", strerror(-r));
	status = r < 0 ? 1 : 0;
out:
	p.exiting = true;
	host_free(p.host);
	for (size_t i = 0; i < p.nlayouts; i++)
		layout_free(p.layouts[i].layout);
	free(p.layouts);
	output_close(&p.output);
	functions_close(&p.functions);
	plugin_config_done(&p.cfg);
	return status;
}
