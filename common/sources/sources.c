/*
 * sources.c: the table of sources (source.h), best first. A source is one
 * file (source_*.c) and one line here; the host walks the table in this
 * order at every rescan and sample, so a source earlier in it is preferred
 * for every stat both have.
 */
#include <stddef.h>

#include "source.h"

const struct source_ops *const sources[] = {
	&source_fd,		/* held stats fds: every stat, one pread */
	&source_qmp,		/* QMP sockets a front end names */
	&source_libvirt,	/* libvirtd's domain stats, when asked for */
	&source_debugfs,	/* what no other source serves */
};
const size_t nsources = sizeof(sources) / sizeof(sources[0]);

const char *host_source_name(enum kvmstats_source source)
{
	for (size_t i = 0; i < nsources; i++)
		if (sources[i]->id == source)
			return sources[i]->name;
	return "none";
}
