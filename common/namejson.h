/* SPDX-License-Identifier: MIT */
/*
 * namejson.h: a VM name as a JSON string, for the front ends that print
 * JSON (kvmstat --json, the Netdata function kvm-vms). Apart from
 * kvmstats.h so that only they include jansson.
 */
#ifndef KVMSTATS_NAMEJSON_H
#define KVMSTATS_NAMEJSON_H

#include <jansson.h>

/*
 * s as a JSON string. jansson refuses strings that are not UTF-8, and VM
 * names are anybody's bytes: each byte that starts no valid character is
 * replaced by U+FFFD. A new reference; NULL: out of memory.
 */
json_t *name_json(const char *s);

#endif
