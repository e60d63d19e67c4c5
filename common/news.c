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
#include <stdio.h>
#include <string.h>

#include "news.h"

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

	said->unread_vms = rep->vms_unread;
	said->unread_fds = rep->fds_unread;
	said->unread_error = rep->unread_error;
	said->unread_pid = rep->unread_pid;
}
