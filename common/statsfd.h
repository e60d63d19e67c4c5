/* SPDX-License-Identifier: MIT */
/*
 * statsfd.h: an open stats fd, its schema and its last two samples (statsfd.c):
 * the only code that reads a stats fd, with pread() only.
 *
 * Conventions as in kvmstats.h: >= 0 success, -errno failure, ret_*
 * written only on success; nothing here logs or exits.
 */
#ifndef KVMSTATS_STATSFD_H
#define KVMSTATS_STATSFD_H

#include <stddef.h>
#include <stdint.h>
#include "decode.h"

/*
 * An open stats fd with its schema and its last two samples. The only code
 * that reads a stats fd. Reads use pread() only: a duplicated stats fd shares
 * its file offset with the VMM's copy.
 */
struct statsfd {
	/* What a sample touches first, in one cache line. */
	int fd;
	int error;		/* host_sample(): 0 or the last sample's -errno */
	bool given_back;	/* statsfd_give_back(): no fd, last values kept */
	uint64_t *cur;		/* num_values slots, last sample */
	uint64_t *prev;		/* the sample before, valid when samples > 1 */
	uint64_t samples;	/* successful statsfd_sample() calls */
	struct kvmstats_schema *schema;
	char id[64];
};

struct statsfd_cache;

/*
 * Takes ownership of fd (closed on failure too), reads the header, id and
 * descriptors once. A schema equal to one in cache (may be NULL) is shared.
 * The caller frees the result with statsfd_close().
 * -EBADMSG, -EOVERFLOW: malformed. -EIO: short read. -ENOMEM.
 */
int statsfd_open(int fd, struct statsfd_cache *cache,
		 struct statsfd **ret_statsfd);

/*
 * One pread() of the whole data block into cur (the previous cur becomes
 * prev). -EIO: short read (nothing is changed); other -errno from pread.
 */
int statsfd_sample(struct statsfd *s);

void statsfd_close(struct statsfd *s);	/* accepts NULL */

/*
 * Closes the fd of s but keeps s, its schema and its last two samples: a
 * holder without an fd until statsfd_refill(). Its error becomes error, so
 * that front ends show no new value for it, while what sums its last
 * sample (host_vcpu_totals()) goes on counting it: no total goes back.
 */
void statsfd_give_back(struct statsfd *s, int error);	/* sets given_back */

/*
 * Gives s, which gave its fd back, fd again: a new copy of the same stats
 * fd. Takes ownership of fd (closed on failure too). The kernel's counters
 * are absolute, so the next sample goes on from the last one (its change
 * covers the time without an fd). -ESTALE: fd describes other stats than
 * s's schema. -EBUSY: s has an fd. Else as statsfd_open().
 */
int statsfd_refill(struct statsfd *s, int fd, struct statsfd_cache *cache);

/*
 * The stats fds of a host in one flat array, sampled in one tight loop:
 * what a sample of every VM costs is then little more than the preads
 * themselves. Lends the statsfds: the owner removes none while it is in use.
 */
struct statsfd_batch {
	struct statsfd_slot *slot;
	size_t n, cap;
};

/* Appends s (an fd holder, not a virtual one). -ENOMEM. */
int statsfd_batch_add(struct statsfd_batch *b, struct statsfd *s);
void statsfd_batch_clear(struct statsfd_batch *b);	/* keeps the memory */
void statsfd_batch_free(struct statsfd_batch *b);
/* statsfd_sample() of each, its result in s->error. */
void statsfd_batch_sample(const struct statsfd_batch *b);

/*
 * A holder without an fd, for values that come from elsewhere (QMP,
 * debugfs) but are read by front ends exactly like a stats fd's. Takes a
 * reference on schema (interned through cache when given). id names the
 * source ("qmp", "debugfs"). The caller frees it with statsfd_close().
 */
int statsfd_virtual(struct kvmstats_schema *schema, const char *id,
		    struct statsfd_cache *cache, struct statsfd **ret_statsfd);

/* Makes values (schema->num_values slots) the new sample of a virtual holder. */
void statsfd_push(struct statsfd *s, const uint64_t *values);

/*
 * Whether this kernel has KVM_GET_STATS_FD (KVM_CAP_BINARY_STATS_FD, 5.14):
 * 1 yes, 0 no. -ENOENT: no /dev/kvm. -EACCES: /dev/kvm not openable.
 */
int statsfd_supported(void);

/*
 * Interns schemas so that every vCPU of every VM on one kernel shares one.
 * statsfd_cache_free() drops the cache's references only.
 */
int statsfd_cache_new(struct statsfd_cache **ret_cache);
/* The schemas interned so far (binary ones tell debugfs files' types). */
size_t statsfd_cache_schemas(const struct statsfd_cache *cache,
			     const struct kvmstats_schema *const **ret_schemas);
void statsfd_cache_free(struct statsfd_cache *cache);	/* accepts NULL */

#endif
