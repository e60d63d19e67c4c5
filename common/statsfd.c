/* SPDX-License-Identifier: MIT */
/*
 * statsfd.c: the only code that reads a KVM stats fd.
 *
 * The header, id and descriptors never change for the life of an fd
 * (Documentation/virt/kvm/api.rst, KVM_GET_STATS_FD), so they are read and
 * decoded once; a sample is then one pread() of the whole data block.
 *
 * pread() only, never read() or lseek(): an fd duplicated from the VMM with
 * pidfd_getfd() shares its file offset with the VMM's own copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "statsfd.h"

struct statsfd_slot {
	int fd;
	uint32_t len;
	off_t off;
	struct statsfd *s;
};

struct statsfd_cache {
	struct kvmstats_schema **schemas;
	size_t n, cap;
};

/*
 * Reads exactly len bytes at off, retrying EINTR. A short read is -EIO: the
 * kernel returns the whole block or nothing, so less means a broken file.
 */
static int pread_exact(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n;

	do {
		n = pread(fd, buf, len, off);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int statsfd_cache_new(struct statsfd_cache **ret_cache)
{
	struct statsfd_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	*ret_cache = c;
	return 0;
}

void statsfd_cache_free(struct statsfd_cache *cache)
{
	if (!cache)
		return;
	for (size_t i = 0; i < cache->n; i++)
		schema_unref(cache->schemas[i]);
	free(cache->schemas);
	free(cache);
}

size_t statsfd_cache_schemas(const struct statsfd_cache *cache,
			     const struct kvmstats_schema *const **ret_schemas)
{
	*ret_schemas = (const struct kvmstats_schema *const *)cache->schemas;
	return cache->n;
}

/*
 * Makes *schema the cache's: a cached schema equal to it replaces it
 * (*schema is dropped, the cached one referenced), else it is added. Every
 * vCPU of every VM on one kernel has the same descriptors: hundreds of fds
 * share one schema. -ENOMEM: it could not be added (*schema unchanged).
 * Never hand out a schema the cache does not hold: front ends key caches
 * by schema pointer (the Netdata plugin's layouts, collectd's wanted[]),
 * and one freed with its holder could have its address reused by another
 * schema, which would then be taken for it.
 */
static int cache_intern(struct statsfd_cache *c, struct kvmstats_schema **schema)
{
	size_t i;

	if (!c)
		return 0;
	for (i = 0; i < c->n; i++) {
		if (schema_equal(c->schemas[i], *schema)) {
			schema_unref(*schema);
			*schema = schema_ref(c->schemas[i]);
			return 0;
		}
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 4;
		void *p = reallocarray(c->schemas, cap, sizeof(*c->schemas));

		if (!p)
			return -ENOMEM;
		c->schemas = p;
		c->cap = cap;
	}
	c->schemas[c->n++] = schema_ref(*schema);
	return 0;
}

static int alloc_samples(struct statsfd *s);

static int read_schema(int fd, char *ret_id, size_t id_size,
		       struct kvmstats_schema **ret_schema)
{
	struct kvm_stats_header h;
	size_t meta_len;
	uint8_t *meta;
	int r;

	r = pread_exact(fd, &h, sizeof(h), 0);
	if (r < 0)
		return r;
	r = decode_header(&h, sizeof(h), &h);
	if (r < 0)
		return r;
	r = decode_meta_len(&h, &meta_len);
	if (r < 0)
		return r;
	meta = malloc(meta_len);
	if (!meta)
		return -ENOMEM;
	r = pread_exact(fd, meta, meta_len, 0);
	if (r >= 0)
		r = decode_id(meta, meta_len, ret_id, id_size);
	if (r >= 0)
		r = decode_schema(meta, meta_len, ret_schema);
	free(meta);
	return r;
}

int statsfd_open(int fd, struct statsfd_cache *cache,
		 struct statsfd **ret_statsfd)
{
	struct statsfd *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->fd = fd;
	r = read_schema(fd, s->id, sizeof(s->id), &s->schema);
	if (r < 0)
		goto fail;
	r = cache_intern(cache, &s->schema);
	if (r < 0)
		goto fail;
	r = alloc_samples(s);
	if (r < 0)
		goto fail;
	*ret_statsfd = s;
	return 0;

fail:
	statsfd_close(s);
	return r;
}

static int alloc_samples(struct statsfd *s)
{
	/* cur and prev in one allocation; swapped by every new sample. */
	s->cur = calloc(2 * (size_t)s->schema->num_values + 1, sizeof(uint64_t));
	if (!s->cur)
		return -ENOMEM;
	s->prev = s->cur + s->schema->num_values;
	return 0;
}

int statsfd_virtual(struct kvmstats_schema *schema, const char *id,
		    struct statsfd_cache *cache, struct statsfd **ret_statsfd)
{
	struct statsfd *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->fd = -1;
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->schema = schema_ref(schema);
	r = cache_intern(cache, &s->schema);
	if (r >= 0)
		r = alloc_samples(s);
	if (r < 0) {
		statsfd_close(s);
		return r;
	}
	*ret_statsfd = s;
	return 0;
}

void statsfd_push(struct statsfd *s, const uint64_t *values)
{
	uint64_t *prev = s->prev;

	memcpy(prev, values, s->schema->num_values * sizeof(*prev));
	s->prev = s->cur;
	s->cur = prev;
	s->samples++;
	s->error = 0;
}

static int sample_at(struct statsfd *s, int fd, size_t len, off_t off)
{
	uint64_t *prev = s->prev;
	int r;

	r = pread_exact(fd, prev, len, off);
	if (r < 0)
		return r;
	s->prev = s->cur;
	s->cur = prev;
	s->samples++;
	return 0;
}

int statsfd_sample(struct statsfd *s)
{
	return sample_at(s, s->fd, s->schema->data_len, s->schema->data_offset);
}

int statsfd_batch_add(struct statsfd_batch *b, struct statsfd *s)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		void *p = reallocarray(b->slot, cap, sizeof(*b->slot));

		if (!p)
			return -ENOMEM;
		b->slot = p;
		b->cap = cap;
	}
	b->slot[b->n++] = (struct statsfd_slot){
		.fd = s->fd,
		.len = s->schema->data_len,
		.off = s->schema->data_offset,
		.s = s,
	};
	return 0;
}

void statsfd_batch_clear(struct statsfd_batch *b)
{
	b->n = 0;
}

void statsfd_batch_free(struct statsfd_batch *b)
{
	free(b->slot);
	*b = (struct statsfd_batch){ 0 };
}

void statsfd_batch_sample(const struct statsfd_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct statsfd_slot *slot = &b->slot[i];

		slot->s->error = sample_at(slot->s, slot->fd, slot->len, slot->off);
	}
}

void statsfd_close(struct statsfd *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	schema_unref(s->schema);
	/* cur and prev share one block: free whichever starts it. */
	free(s->cur < s->prev || !s->prev ? s->cur : s->prev);
	free(s);
}

void statsfd_give_back(struct statsfd *s, int error)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->error = error;
	s->given_back = true;
}

int statsfd_refill(struct statsfd *s, int fd, struct statsfd_cache *cache)
{
	struct statsfd *n;
	int r;

	if (s->fd >= 0) {
		close(fd);
		return -EBUSY;
	}
	r = statsfd_open(fd, cache, &n);
	if (r < 0)
		return r;
	/* Same stats at the same places, or cur and prev would mean other things. */
	if (n->schema != s->schema && schema_equal(n->schema, s->schema) != 1) {
		statsfd_close(n);
		return -ESTALE;
	}
	s->fd = n->fd;
	s->given_back = false;
	n->fd = -1;
	statsfd_close(n);
	return 0;
}

int statsfd_supported(void)
{
	int kvm, r;

	kvm = open("/dev/kvm", O_RDONLY | O_CLOEXEC);
	if (kvm < 0)
		return -errno;
	r = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD);
	close(kvm);
	if (r < 0)
		return -errno;
	return r > 0;
}
