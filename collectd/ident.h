/* SPDX-License-Identifier: MIT */
/* ident.h: names made safe for collectd identifiers (ident.c). */
#ifndef KVMSTATS_COLLECTD_IDENT_H
#define KVMSTATS_COLLECTD_IDENT_H

#include <stddef.h>

#include "decode.h"

/*
 * s (a VM's or a stat's name, any bytes) into buf as part of a collectd
 * identifier and file name: no '/', no leading '.' or "..", no control
 * byte, space or '"', valid UTF-8; at most size - 1 bytes.
 */
void ident_safe_name(const char *s, char *buf, size_t size);

/*
 * The collectd type a stat is sent as: counters "derive" (collectd computes
 * the rates), instant and peak values and booleans "gauge", byte sizes
 * "bytes"; a histogram one "derive" per bucket; a stat this build does not
 * know raw as "gauge". Also what docs/metrics.md says (make docs).
 */
const char *ident_type_of(const struct kvmstats_desc *d);

#endif
