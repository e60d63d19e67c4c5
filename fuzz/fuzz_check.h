/* SPDX-License-Identifier: MIT */
/*
 * fuzz_check.h: what the libFuzzer targets in fuzz/ share. A broken
 * invariant is reported and aborts, so libFuzzer saves the input as a crash
 * like any sanitizer finding.
 */
#ifndef KVMSTATS_FUZZ_CHECK_H
#define KVMSTATS_FUZZ_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",      \
				__FILE__, __LINE__, #cond);                   \
			abort();                                              \
		}                                                             \
	} while (0)

/*
 * A heap copy of exactly len bytes (one byte for len 0), so that ASan
 * reports a read past a part of the input that is followed by other parts.
 * The caller frees it.
 */
static inline char *fuzz_copy(const uint8_t *data, size_t len)
{
	char *p = malloc(len ? len : 1);

	if (!p)
		abort();
	if (len)
		memcpy(p, data, len);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
