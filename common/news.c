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

#include "kvmstats.h"

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

/* VM names are untrusted: no control byte reaches a log line. */
static void clean_name(char *dst, size_t size, const char *name)
{
	size_t n = 0;

	for (; *name && n + 1 < size; name++)
		dst[n++] = (unsigned char)*name < 0x20 || *name == 0x7f ? '?' : *name;
	dst[n] = '\0';
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
	char line[512], name[65], budget[96];

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
		clean_name(name, sizeof(name), vm_name(host, o->pid));
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

	say_over(said, rep, host, say, ctx);
	said->vms_over = rep->vms_over;
	said->fds_over = rep->fds_over;
	memcpy(said->over, rep->over, sizeof(said->over));

	said->unread_vms = rep->vms_unread;
	said->unread_fds = rep->fds_unread;
	said->unread_error = rep->unread_error;
	said->unread_pid = rep->unread_pid;
}
