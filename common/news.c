/* SPDX-License-Identifier: MIT */
/*
 * news.c: what of a rescan is worth saying, said once per change.
 *
 * A front end must say why the core could not take a VM's stats fds, or
 * why a rescan failed, but not at every interval: the same state is said
 * once, and said again only when it changes (another VM, another reason,
 * or the problem gone). The core never logs; this only builds the lines
 * and hands them to the front end's say(), which decides where they go.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "news.h"

/* One per enum kvmstats_source value. */
#define SOURCE_NAMES_SLOTS (FROM_LIBVIRT + 1)

static void say_unread(const struct kvmstats_scan_report *rep,
		       struct kvmstats_host *host,
		       void (*say)(const char *line, void *ctx), void *ctx)
{
	const char *name = "?";
	char line[512];

	for (size_t i = 0; i < host_nvms(host); i++)
		if (host_vm(host, i)->pid == rep->unread_pid)
			name = host_vm(host, i)->name;
	snprintf(line, sizeof(line),
		 "VM %.64s (pid %d): %u stats fd%s its VMM holds could not be "
		 "taken: %s; tried again at every rescan",
		 name, (int)rep->unread_pid,
		 rep->vms_unread == 1 ? rep->fds_unread : 1,
		 rep->vms_unread == 1 && rep->fds_unread == 1 ? "" : "s",
		 strerror(-rep->unread_error));
	if (rep->vms_unread > 1) {
		size_t n = strlen(line);

		snprintf(line + n, sizeof(line) - n,
			 " (%u VMs, %u stats fds in all)", rep->vms_unread,
			 rep->fds_unread);
	}
	say(line, ctx);
}

/*
 * s as a C string literal's inside, at most max bytes of s: printable
 * ASCII as it is but '"' and '\\', the rest as \n, \t, \r or \xNN. Never a
 * control byte or a non-ASCII one, so a log line holds it safely.
 */
static void escape(const char *s, size_t max, char *buf, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[8];

		if (c == '"' || c == '\\')
			snprintf(e, sizeof(e), "\\%c", c);
		else if (c == '\n')
			snprintf(e, sizeof(e), "\\n");
		else if (c == '\t')
			snprintf(e, sizeof(e), "\\t");
		else if (c == '\r')
			snprintf(e, sizeof(e), "\\r");
		else if (c < 0x20 || c >= 0x7f)
			snprintf(e, sizeof(e), "\\x%02x", c);
		else
			snprintf(e, sizeof(e), "%c", c);
		if (n + strlen(e) >= size)
			break;
		memcpy(buf + n, e, strlen(e));
		n += strlen(e);
	}
	buf[n] = '\0';
}

/* Adds what schema left out to the count and first name of its source. */
static void add_refused(struct kvmstats_refused *to, const struct statsfd *s)
{
	const struct kvmstats_refused *r;

	if (!s || !s->schema || s->schema->refused.count == 0)
		return;
	r = &s->schema->refused;
	if (to->count == 0)
		memcpy(to->first, r->first, sizeof(to->first));
	to->count += r->count;
}

/*
 * Once per VM and source: the stat names that source gave which were left
 * out. A schema shared by several vCPUs is counted once.
 */
static void say_names(struct kvmstats_vm *vm,
		      void (*say)(const char *line, void *ctx), void *ctx)
{
	struct kvmstats_refused by[SOURCE_NAMES_SLOTS] = { 0 };
	char name[72], first[4 * DECODE_NAME_MAX + 1], line[512];

	if (vm->vm_source < SOURCE_NAMES_SLOTS)
		add_refused(&by[vm->vm_source], vm->vm_stats);
	for (size_t i = 0; i < vm->nvcpus; i++) {
		const struct kvmstats_vcpu *c = vm->vcpus[i];
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = vm->vcpus[j]->stats && c->stats &&
			       vm->vcpus[j]->stats->schema == c->stats->schema;
		if (!seen && c->source < SOURCE_NAMES_SLOTS)
			add_refused(&by[c->source], c->stats);
	}
	for (unsigned src = 0; src < SOURCE_NAMES_SLOTS; src++) {
		if (by[src].count == 0 || (vm->names_said & (1u << src)))
			continue;
		vm->names_said |= 1u << src;
		escape(vm->name ? vm->name : "?", 64, name, sizeof(name));
		escape(by[src].first, DECODE_NAME_MAX, first, sizeof(first));
		snprintf(line, sizeof(line),
			 "VM %s (pid %d): %u stat name%s from %s left out: not C "
			 "identifiers of at most %d characters (first: \"%s\")",
			 name, (int)vm->pid, by[src].count, by[src].count == 1 ? "" : "s",
			 host_source_name((enum kvmstats_source)src), DECODE_NAME_MAX,
			 first);
		say(line, ctx);
	}
}

static const char *vm_name(struct kvmstats_host *host, pid_t pid)
{
	for (size_t i = 0; i < host_nvms(host); i++)
		if (host_vm(host, i)->pid == pid)
			return host_vm(host, i)->name;
	return "?";
}

static bool over_said(const struct scan_said *said, const struct kvmstats_fd_over *o)
{
	size_t n = said->vms_over < KVMSTATS_OVER_MAX ? said->vms_over : KVMSTATS_OVER_MAX;

	for (size_t i = 0; i < n; i++)
		if (said->over[i].pid == o->pid && said->over[i].holds == o->holds &&
		    said->over[i].taken == o->taken)
			return true;
	return false;
}

/*
 * Each VMM over its share of the fd budget, once per change of what it
 * holds or was given, naming it; once more when every VMM fits again.
 */
static void say_over(struct scan_said *said, const struct kvmstats_scan_report *rep,
		     struct kvmstats_host *host,
		     void (*say)(const char *line, void *ctx), void *ctx)
{
	size_t n = rep->vms_over < KVMSTATS_OVER_MAX ? rep->vms_over : KVMSTATS_OVER_MAX;
	char line[512], name[72], budget[96];

	if (rep->vms_over == 0) {
		if (said->vms_over > 0)
			say("every stats fd the VMMs hold fits in the fd budget again: "
			    "all are read", ctx);
		return;
	}
	snprintf(budget, sizeof(budget), "the budget of %zu stats fds%s", rep->fd_budget,
		 rep->fd_budget_nofile ? " (cut by the open file limit, ulimit -n)" : "");
	for (size_t i = 0; i < n; i++) {
		const struct kvmstats_fd_over *o = &rep->over[i];

		if (over_said(said, o))
			continue;
		escape(vm_name(host, o->pid), 64, name, sizeof(name));
		if (o->taken < o->share)
			snprintf(line, sizeof(line), "VM %s (pid %d): %u of the %u stats fds "
				 "its VMM holds are not read: the open file limit (ulimit "
				 "-n) was reached; its highest-numbered vCPUs show no new "
				 "values until fds can be taken", name, (int)o->pid,
				 o->holds - o->taken, o->holds);
		else
			snprintf(line, sizeof(line), "VM %s (pid %d): %u of the %u stats fds "
				 "its VMM holds are not read: %s is shared fairly among %u "
				 "VMM%s and its share is %u; its highest-numbered vCPUs show "
				 "no new values until the budget allows", name, (int)o->pid,
				 o->holds - o->taken, o->holds, budget, rep->fd_vmms,
				 rep->fd_vmms == 1 ? "" : "s", o->share);
		say(line, ctx);
	}
	if (rep->vms_over > KVMSTATS_OVER_MAX &&
	    (rep->vms_over != said->vms_over || rep->fds_over != said->fds_over)) {
		snprintf(line, sizeof(line), "%u VMMs in all hold more stats fds than their "
			 "share of %s: %u stats fds are not read", rep->vms_over, budget,
			 rep->fds_over);
		say(line, ctx);
	}
}

/* "QMP socket PATH (VM NAME, pid PID)", as much of it as is known. */
static void qmp_who(char *out, size_t size, const char *path, pid_t pid,
		    struct kvmstats_host *host)
{
	char epath[4 * 108 + 1], ename[4 * 64 + 1];
	const char *name = NULL;

	for (size_t i = 0; pid > 0 && i < host_nvms(host); i++)
		if (host_vm(host, i)->pid == pid)
			name = host_vm(host, i)->name;
	escape(path, 108, epath, sizeof(epath));
	escape(name ? name : "", 64, ename, sizeof(ename));
	if (name)
		snprintf(out, size, "QMP socket %s (VM %s, pid %d)", epath, ename, (int)pid);
	else if (pid > 0)
		snprintf(out, size, "QMP socket %s (pid %d)", epath, (int)pid);
	else
		snprintf(out, size, "QMP socket %s", epath);
}

/* No answer in time is one state, whether connect or the greeting stalled. */
static int qmp_class(int error)
{
	return error == -EBUSY ? -ETIMEDOUT : error;
}

/*
 * Why a QMP socket failed, for the line: strerror(), and for the two
 * refusals what grants the access (qmp_exchange_start(); docs/sources.md,
 * "QMP sockets in containers").
 */
static const char *qmp_reason(int error, char *buf, size_t size)
{
	if (error == -EACCES)
		snprintf(buf, size, "%s (connecting needs write permission on the socket "
			 "for this user, and search permission on its directories)",
			 strerror(EACCES));
	else if (error == -EPERM)
		snprintf(buf, size, "%s (a socket under /proc/PID/root is reached only with "
			 "ptrace access to that process: CAP_SYS_PTRACE)", strerror(EPERM));
	else
		snprintf(buf, size, "%s", strerror(-error));
	return buf;
}

static void say_qmp(struct scan_said *said, const struct kvmstats_scan_report *rep,
		    struct kvmstats_host *host,
		    void (*say)(const char *line, void *ctx), void *ctx)
{
	char who[1024], line[1536], why[256];

	for (unsigned i = 0; i < rep->nqmp_stuck; i++) {
		const struct kvmstats_qmp_stuck *s = &rep->qmp_stuck[i];
		bool same = false;

		for (unsigned j = 0; j < said->nqmp && !same; j++)
			same = strcmp(said->qmp[j].path, s->path) == 0 &&
			       said->qmp[j].pid == s->pid &&
			       said->qmp[j].error == qmp_class(s->error);
		if (same)
			continue;
		qmp_who(who, sizeof(who), s->path, s->pid, host);
		if (qmp_class(s->error) == -ETIMEDOUT)
			snprintf(line, sizeof(line), "%s did not answer within %d ms: "
				 "asked again in %u s", who, rep->qmp_timeout_ms, s->retry_s);
		else
			snprintf(line, sizeof(line), "%s failed: %s: asked again in %u s",
				 who, qmp_reason(s->error, why, sizeof(why)), s->retry_s);
		say(line, ctx);
	}
	for (unsigned j = 0; j < said->nqmp; j++) {
		bool still = false;
		const struct kvmstats_vm *vm = NULL;

		for (unsigned i = 0; i < rep->nqmp_stuck && !still; i++)
			still = strcmp(said->qmp[j].path, rep->qmp_stuck[i].path) == 0;
		if (still || rep->qmp_stuck_total > rep->nqmp_stuck)
			continue;	/* beyond the list it may still fail */
		for (size_t i = 0; i < host_nvms(host); i++)
			if (host_vm(host, i)->qmp_path &&
			    strcmp(host_vm(host, i)->qmp_path, said->qmp[j].path) == 0)
				vm = host_vm(host, i);
		qmp_who(who, sizeof(who), said->qmp[j].path, vm ? vm->pid : 0, host);
		snprintf(line, sizeof(line), vm ? "%s answers again" : "%s: no longer asked",
			 who);
		say(line, ctx);
	}
	if (rep->qmp_stuck_total > rep->nqmp_stuck &&
	    said->qmp_more != rep->qmp_stuck_total - rep->nqmp_stuck) {
		snprintf(line, sizeof(line), "%u more QMP sockets did not answer: "
			 "each is asked again with backoff",
			 rep->qmp_stuck_total - rep->nqmp_stuck);
		say(line, ctx);
	}
	said->qmp_more = rep->qmp_stuck_total - rep->nqmp_stuck;
	said->nqmp = rep->nqmp_stuck;
	for (unsigned i = 0; i < rep->nqmp_stuck; i++) {
		memcpy(said->qmp[i].path, rep->qmp_stuck[i].path, sizeof(said->qmp[i].path));
		said->qmp[i].pid = rep->qmp_stuck[i].pid;
		said->qmp[i].error = qmp_class(rep->qmp_stuck[i].error);
	}
}

void scan_news(struct scan_said *said, int r,
	       const struct kvmstats_scan_report *rep, struct kvmstats_host *host,
	       void (*say)(const char *line, void *ctx), void *ctx)
{
	char line[256];

	if (r < 0) {
		if (said->rescan_error != r) {
			snprintf(line, sizeof(line),
				 "looking for VMs failed: %s; tried again at the next "
				 "rescan", strerror(-r));
			say(line, ctx);
			said->rescan_error = r;
		}
		return;
	}
	if (said->rescan_error < 0) {
		say("looking for VMs works again", ctx);
		said->rescan_error = 0;
	}

	if (rep->discover.failed > 0 &&
	    said->failed_error != rep->discover.failed_error) {
		snprintf(line, sizeof(line),
			 "%u processes could not be read in /proc (%s) and were "
			 "skipped", rep->discover.failed,
			 strerror(-rep->discover.failed_error));
		say(line, ctx);
		said->failed_error = rep->discover.failed_error;
	}

	if (rep->vms_unread > 0 &&
	    (said->unread_vms != rep->vms_unread || said->unread_fds != rep->fds_unread ||
	     said->unread_error != rep->unread_error ||
	     said->unread_pid != rep->unread_pid)) {
		say_unread(rep, host, say, ctx);
	} else if (rep->vms_unread == 0 && said->unread_vms > 0) {
		say("every stats fd the VMMs hold is taken now", ctx);
	}
	if (rep->libvirt_asked && said->libvirt_error != rep->libvirt_error) {
		if (rep->libvirt_error == 0)
			say("libvirt: domain stats are read again", ctx);
		else if (rep->libvirt_error == -ETIMEDOUT)
			snprintf(line, sizeof(line), "libvirt: libvirtd did not answer in "
				 "time; samples go on without its values until it does");
		else
			snprintf(line, sizeof(line), "libvirt: no domain stats (%s); the "
				 "connection is retried with backoff",
				 strerror(-rep->libvirt_error));
		if (rep->libvirt_error != 0)
			say(line, ctx);
		said->libvirt_error = rep->libvirt_error;
	}

	for (size_t i = 0; i < host_nvms(host); i++)
		say_names(host_vm(host, i), say, ctx);
	say_over(said, rep, host, say, ctx);
	said->vms_over = rep->vms_over;
	said->fds_over = rep->fds_over;
	memcpy(said->over, rep->over, sizeof(said->over));
	say_qmp(said, rep, host, say, ctx);

	said->unread_vms = rep->vms_unread;
	said->unread_fds = rep->fds_unread;
	said->unread_error = rep->unread_error;
	said->unread_pid = rep->unread_pid;
}
