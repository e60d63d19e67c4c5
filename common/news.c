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

/* Untrusted bytes (a socket path, a VM name) made one printable line. */
static void escape(char *out, size_t size, const char *in, size_t max)
{
	size_t o = 0;

	for (size_t i = 0; in[i] && i < max && o + 5 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c == 0x7f || c == '\\')
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
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
	escape(epath, sizeof(epath), path, 108);
	escape(ename, sizeof(ename), name ? name : "", 64);
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

static void say_qmp(struct scan_said *said, const struct kvmstats_scan_report *rep,
		    struct kvmstats_host *host,
		    void (*say)(const char *line, void *ctx), void *ctx)
{
	char who[1024], line[1280];

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
				 who, strerror(-s->error), s->retry_s);
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

	say_qmp(said, rep, host, say, ctx);

	said->unread_vms = rep->vms_unread;
	said->unread_fds = rep->fds_unread;
	said->unread_error = rep->unread_error;
	said->unread_pid = rep->unread_pid;
}
