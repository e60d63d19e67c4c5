/* SPDX-License-Identifier: MIT */
/*
 * collectd_null_write.c: a collectd write plugin that drops every value,
 * for `make bench` (LoadPlugin bench_null_write).
 *
 * collectd 5.12 with no write plugin at all logs "Available write targets:
 * [none]" for every value it dispatches (one open, write and close of the
 * log file per value), which no real set-up does. With this plugin loaded
 * the bench measures what collectd itself spends per value (queue, value
 * cache, filter chain) and nothing that a writer of one's choice adds.
 */
#include "collectd.h"

#include "plugin.h"

void module_register(void);

static int null_write(const data_set_t *ds, const value_list_t *vl, user_data_t *ud)
{
	(void)ds;
	(void)vl;
	(void)ud;
	return 0;
}

void module_register(void)
{
	plugin_register_write("bench_null_write", null_write, NULL);
}
