/* SPDX-License-Identifier: MIT */
/*
 * test_sinks.c: what each sink does with names it did not make, when a
 * check upstream was missed. The Netdata plugin's chart ids and protocol
 * words (netdata/charts.c) and collectd's identifiers (collectd/ident.c)
 * are fed stat and VM names no kernel gives: a schema is built here by
 * hand, not through the core's checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../collectd/ident.h"
#include "../../netdata/charts.h"
#include "kvmstats.h"

static const char *const hostile[] = {
	"evil\nCHART evil.injected '' t u\nBEGIN evil",
	"../../../../tmp/x",
	"q' \"x",
	"a\\b\rc\td\x1b[31m",
	"caf\xc3\xa9 \xff\xfe",
	"\xc2\x85next line (C1 NEL)",
	".hidden",
	"",
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

/* --------------------------------------------------------------- Netdata */

/* Netdata's id rule, stricter: [a-z0-9_] only, within the buffer. */
static void test_chart_id_part(void **state)
{
	char buf[16];
	(void)state;

	for (size_t i = 0; i < NHOSTILE; i++) {
		chart_id_part(hostile[i], buf, sizeof(buf));
		for (const char *p = buf; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				    *p == '_');
		assert_true(strlen(buf) < sizeof(buf));
	}
	chart_id_part("Halt_Wait-hist.x", buf, sizeof(buf));
	assert_string_equal(buf, "halt_wait_hist_");
}

/* What out received, NUL-terminated; the caller frees it. */
static char *written(FILE *out, char **buf)
{
	assert_int_equal(fclose(out), 0);
	return *buf;
}

/* One quoted word: no quote, backslash, newline or control byte inside. */
static void test_chart_quote(void **state)
{
	(void)state;

	for (size_t i = 0; i < NHOSTILE; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&buf, &len);
		char *text;
		size_t n;

		assert_non_null(out);
		chart_quote(out, hostile[i]);
		text = written(out, &buf);
		n = strlen(text);
		assert_true(n >= 2);
		assert_int_equal(text[0], '"');
		assert_int_equal(text[n - 1], '"');
		for (size_t k = 1; k + 1 < n; k++) {
			unsigned char c = (unsigned char)text[k];

			assert_true(c != '"' && c != '\\' && c >= 0x20 && c != 0x7f);
		}
		free(text);
	}
}

static bool keyword(const char *line)
{
	static const char *const words[] = {
		"CHART ", "DIMENSION ", "CLABEL ", "CLABEL_COMMIT", "BEGIN ", "SET ", "END",
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strncmp(line, words[i], strlen(words[i])) == 0)
			return true;
	return false;
}

/*
 * A schema with hostile names (histograms included) charted with every
 * group, histograms on: every line the plugin writes starts with a
 * protocol keyword, and each chart id is [a-z0-9_.] only.
 */
static void test_charts_of_hostile_schema(void **state)
{
	struct kvmstats_desc desc[NHOSTILE * 2];
	struct kvmstats_schema s = { .refs = 1 };
	struct layout_options opt = { .histograms = true, .vcpu_histograms = true };
	struct kvmstats_label labels[] = { { "title", hostile[0] } };
	struct kvmstats_vm vm = {
		.pid = 42, .name = (char *)hostile[0], .uuid = (char *)hostile[2],
		.labels = labels, .nlabels = 1,
	};
	struct chart_labels cl = { .vm = &vm, .vcpu = 1 };
	uint64_t values[NHOSTILE * 2 * 4] = { 0 };
	const uint64_t *const sources[CHART_NSOURCES] = { values, values, values, values };
	struct layout *l;
	uint32_t slot = 0;
	char *buf = NULL, *text, *line, *save = NULL;
	size_t len = 0, lines = 0;
	FILE *out;
	(void)state;

	for (size_t i = 0; i < CATALOG_NGROUPS; i++)
		opt.groups[i] = opt.vcpu_groups[i] = true;
	for (size_t i = 0; i < NHOSTILE; i++) {
		desc[2 * i] = (struct kvmstats_desc){
			.name = hostile[i], .type = KVM_STATS_TYPE_CUMULATIVE,
			.size = 1, .index = slot++, .known = true,
		};
		desc[2 * i + 1] = (struct kvmstats_desc){
			.name = hostile[i], .type = KVM_STATS_TYPE_LOG_HIST,
			.unit = KVM_STATS_UNIT_SECONDS, .exponent = -9,
			.size = 3, .index = slot, .known = true,
		};
		desc[2 * i + 1].flags = desc[2 * i + 1].type | desc[2 * i + 1].unit;
		slot += 3;
	}
	s.desc = desc;
	s.num_desc = NHOSTILE * 2;
	s.num_values = slot;
	s.data_len = slot * 8;

	assert_int_equal(layout_build(&s, &s, false, &opt, &l), 0);
	assert_true(l->ncharts > NHOSTILE);
	out = open_memstream(&buf, &len);
	assert_non_null(out);
	for (size_t i = 0; i < l->ncharts; i++) {
		for (const char *p = l->charts[i].key; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				    *p == '_');
		for (const char *p = l->charts[i].context; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				    *p == '_' || *p == '.');
		chart_define(out, "kvm_evil", "vcpu1_", &l->charts[i], &cl, 1, false, NULL);
		chart_update(out, "kvm_evil", "vcpu1_", &l->charts[i], sources, 0, NULL);
	}
	text = written(out, &buf);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!keyword(line))
			fail_msg("not a protocol line: %s", line);
		for (const char *p = line; *p; p++)
			assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
		lines++;
	}
	assert_true(lines > 4 * l->ncharts);
	free(text);
	layout_free(l);
}

/*
 * chart_show_nonzero(): a counter chart shows each dimension once it is
 * not zero; a histogram's, every bucket up to the last not zero, so that
 * no bucket is ever defined after a larger one (Netdata keeps the order in
 * which it learns dimensions). Bucket 5 first, bucket 2 later: 0..5 at
 * once, nothing more; then 7: 6 and 7 appended.
 */
static void test_show_nonzero_buckets_in_order(void **state)
{
	struct kvmstats_desc desc[] = {
		{ .name = "exits", .type = KVM_STATS_TYPE_CUMULATIVE, .size = 1, .index = 0,
		  .known = true },
		{ .name = "halt_exits", .type = KVM_STATS_TYPE_CUMULATIVE, .size = 1, .index = 1,
		  .known = true },
		{ .name = "halt_wait_hist", .type = KVM_STATS_TYPE_LOG_HIST,
		  .unit = KVM_STATS_UNIT_SECONDS, .exponent = -9, .size = 10, .index = 2,
		  .known = true },
	};
	struct kvmstats_schema s = { .refs = 1, .desc = desc, .num_desc = 3,
				     .num_values = 12, .data_len = 12 * 8 };
	struct layout_options opt = { .histograms = true, .vcpu_histograms = true };
	uint64_t v[12] = { 0 };
	const uint64_t *const sources[CHART_NSOURCES] = { v, v, v, v };
	const struct chart *hist = NULL, *exits = NULL;
	struct layout *l;
	bool shown_h[10] = { false }, shown_e[8] = { false };
	(void)state;

	for (size_t i = 0; i < CATALOG_NGROUPS; i++)
		opt.groups[i] = opt.vcpu_groups[i] = true;
	assert_int_equal(layout_build(NULL, &s, true, &opt, &l), 0);
	for (size_t i = 0; i < l->ncharts; i++) {
		if (strcmp(l->charts[i].key, "halt_wait_hist") == 0)
			hist = &l->charts[i];
		for (size_t d = 0; d < l->charts[i].ndims; d++)
			if (strcmp(l->charts[i].dims[d].id, "halt_exits") == 0)
				exits = &l->charts[i];
	}
	assert_non_null(hist);
	assert_non_null(exits);
	assert_int_equal(hist->ndims, 10);
	assert_true(exits->ndims <= 8);
	assert_false(exits->buckets);

	v[2 + 5] = 3;				/* bucket 5 */
	v[1] = 1;				/* halt_exits */
	assert_int_equal(chart_show_nonzero(hist, sources, shown_h), 1);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(shown_h[i], i <= 5);
	assert_int_equal(chart_show_nonzero(exits, sources, shown_e), 1);
	for (size_t i = 0; i < exits->ndims; i++)
		assert_int_equal(shown_e[i], strcmp(exits->dims[i].id, "halt_exits") == 0);
	v[2 + 2] = 1;				/* bucket 2: shown already */
	assert_int_equal(chart_show_nonzero(hist, sources, shown_h), 0);
	v[2 + 7] = 1;				/* bucket 7: 6 and 7 come */
	assert_int_equal(chart_show_nonzero(hist, sources, shown_h), 1);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(shown_h[i], i <= 7);
	layout_free(l);
}

/*
 * A histogram's dimensions: bucketN ids in bucket order, named by the
 * bucket's upper bound in the stat's unit (the last, open, by its lower
 * one). A log2 histogram of ns: bucket i is [2^(i-1), 2^i) ns, bucket 0
 * holds 0; a linear one of bucket_size 10: [10 i, 10 i + 10).
 */
static void test_histogram_dim_names(void **state)
{
	struct kvmstats_desc desc[] = {
		{ .name = "halt_wait_hist", .type = KVM_STATS_TYPE_LOG_HIST,
		  .unit = KVM_STATS_UNIT_SECONDS, .exponent = -9, .size = 32, .index = 0,
		  .known = true },
		{ .name = "some_linear_hist", .type = KVM_STATS_TYPE_LINEAR_HIST,
		  .unit = KVM_STATS_UNIT_NONE, .size = 4, .bucket_size = 10, .index = 32,
		  .known = true },
	};
	struct kvmstats_schema s = { .refs = 1, .desc = desc, .num_desc = 2,
				     .num_values = 36, .data_len = 36 * 8 };
	struct layout_options opt = { .histograms = true, .vcpu_histograms = true };
	static const char *const log_names[][2] = {
		{ "bucket0", "<1ns" }, { "bucket1", "<2ns" }, { "bucket10", "<1.02us" },
		{ "bucket20", "<1.05ms" }, { "bucket29", "<537ms" }, { "bucket30", "<1.07s" },
		{ "bucket31", ">=1.07s" },
	};
	static const char *const lin_names[] = { "<10", "<20", "<30", ">=30" };
	struct layout *l;
	const struct chart *log = NULL, *lin = NULL;
	(void)state;

	for (size_t i = 0; i < CATALOG_NGROUPS; i++)
		opt.groups[i] = opt.vcpu_groups[i] = true;
	assert_int_equal(layout_build(NULL, &s, true, &opt, &l), 0);
	for (size_t i = 0; i < l->ncharts; i++) {
		if (strcmp(l->charts[i].key, "halt_wait_hist") == 0)
			log = &l->charts[i];
		if (strcmp(l->charts[i].key, "some_linear_hist") == 0)
			lin = &l->charts[i];
	}
	assert_non_null(log);
	assert_non_null(lin);
	assert_int_equal(log->ndims, 32);
	for (size_t i = 0; i < 32; i++) {
		char id[16];

		snprintf(id, sizeof(id), "bucket%zu", i);
		assert_string_equal(log->dims[i].id, id);
		assert_int_equal(log->dims[i].slot, i);
	}
	for (size_t k = 0; k < sizeof(log_names) / sizeof(log_names[0]); k++) {
		unsigned i = (unsigned)strtoul(log_names[k][0] + 6, NULL, 10);

		assert_string_equal(log->dims[i].name, log_names[k][1]);
	}
	assert_int_equal(lin->ndims, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(lin->dims[i].name, lin_names[i]);
		assert_int_equal(lin->dims[i].slot, 32 + i);
	}
	layout_free(l);
}

/*
 * The cpu chart of a VM with 3 vCPUs, 2 of whose threads are known: the
 * protocol lines, word for word, from the fields the core fills. The
 * divisor makes Netdata's incremental rate of the ns counters percent of
 * one CPU per known vCPU: 2 x 10^7 ns/s is 1 %.
 */
static void test_cpu_chart(void **state)
{
	struct kvmstats_vcpu c0 = { .id = 0, .sched = { .tid = 101, .run_ns = 7 },
				    .sched_total = { 900, 80, 7 } };
	struct kvmstats_vm vm = {
		.pid = 42, .name = "web1",
		.sched_vcpus = { .run_ns = 3000000000ULL, .wait_ns = 1500000000ULL, .timeslices = 9 },
		.other_run_ns = 250000000ULL, .sched_known = 2,
	};
	struct chart_labels cl = { .vm = &vm, .vcpu = -1 }, vl = { .vm = &vm, .vcpu = 0 };
	uint64_t sched[SCHED_NSLOTS];
	const uint64_t *values[CHART_NSOURCES] = { [SOURCE_SCHED] = sched };
	struct cpu_chart cc, vc;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	(void)state;

	assert_non_null(out);
	cpu_chart_init(&cc, false, vm.sched_known);
	cpu_chart_values(&vm, NULL, sched);
	chart_define(out, "kvm_web1", "", &cc.chart, &cl, 1, false, NULL);
	chart_update(out, "kvm_web1", "", &cc.chart, values, 1000000, NULL);
	cpu_chart_init(&vc, true, 1);
	cpu_chart_values(NULL, &c0, sched);
	chart_define(out, "kvm_web1", "vcpu0_", &vc.chart, &vl, 1, false, NULL);
	chart_update(out, "kvm_web1", "vcpu0_", &vc.chart, values, 0, NULL);
	chart_define(out, "kvm_web1", "vcpu0_", &vc.chart, &vl, 1, true, NULL);
	assert_string_equal(written(out, &buf),
		"CHART kvm_web1.cpu '' \"CPU: vCPU threads on a host CPU (run) and runnable "
		"waiting for one (wait); 100% = every vCPU always runnable\" \"% per vCPU\" "
		"\"cpu\" \"kvm.vm.cpu\" stacked 38099 1 \"\" \"kvm_stats.plugin\" \"vm\"\n"
		"CLABEL \"vm_name\" \"web1\" 1\n"
		"CLABEL \"vm_pid\" \"42\" 1\n"
		"CLABEL_COMMIT\n"
		"DIMENSION \"run\" \"run\" incremental 1 20000000 ''\n"
		"DIMENSION \"wait\" \"wait\" incremental 1 20000000 ''\n"
		"DIMENSION \"vmm_other\" \"vmm_other\" incremental 1 20000000 ''\n"
		"BEGIN kvm_web1.cpu 1000000\n"
		"SET 'run' = 3000000000\n"
		"SET 'wait' = 1500000000\n"
		"SET 'vmm_other' = 250000000\n"
		"END\n"
		"CHART kvm_web1.vcpu0_cpu '' \"CPU: the vCPU thread on a host CPU (run) and "
		"runnable waiting for one (wait); 100% = always runnable\" \"% of one CPU\" "
		"\"cpu\" \"kvm.vcpu.cpu\" stacked 40099 1 \"\" \"kvm_stats.plugin\" \"vcpu\"\n"
		"CLABEL \"vm_name\" \"web1\" 1\n"
		"CLABEL \"vm_pid\" \"42\" 1\n"
		"CLABEL \"vcpu\" \"0\" 1\n"
		"CLABEL_COMMIT\n"
		"DIMENSION \"run\" \"run\" incremental 1 10000000 ''\n"
		"DIMENSION \"wait\" \"wait\" incremental 1 10000000 ''\n"
		"BEGIN kvm_web1.vcpu0_cpu\n"
		"SET 'run' = 900\n"
		"SET 'wait' = 80\n"
		"END\n"
		"CHART kvm_web1.vcpu0_cpu '' \"CPU: the vCPU thread on a host CPU (run) and "
		"runnable waiting for one (wait); 100% = always runnable\" \"% of one CPU\" "
		"\"cpu\" \"kvm.vcpu.cpu\" stacked 40099 1 \"obsolete\" \"kvm_stats.plugin\" \"vcpu\"\n");
	free(buf);

	/* No known thread is no divisor of 0; at most what 64 bits hold. */
	cpu_chart_init(&cc, false, 0);
	assert_int_equal(cc.dims[SCHED_RUN].divisor, 10000000);
	cpu_chart_init(&cc, false, 4096);
	assert_int_equal(cc.dims[SCHED_WAIT].divisor, 40960000000LL);
	assert_ptr_equal(cc.chart.dims, cc.dims);
}

/* -------------------------------------------------------------- collectd */

/* No '/', no leading '.', no "..", no control byte, space or '"'. */
static void check_ident(const char *s)
{
	assert_true(s[0] != '.');
	assert_null(strstr(s, ".."));
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;

		assert_true(c != '/' && c != '"' && c != ' ' && c >= 0x20 && c != 0x7f);
		if (c == 0xc2)
			assert_true((unsigned char)p[1] >= 0xa0);	/* no C1 */
	}
}

static void test_collectd_ident(void **state)
{
	char buf[64], ti[128];
	(void)state;

	for (size_t i = 0; i < NHOSTILE; i++) {
		ident_safe_name(hostile[i], buf, sizeof(buf));
		check_ident(buf);
		assert_true(strlen(buf) < sizeof(buf));
		/* A histogram bucket's type_instance, as the plugin builds it. */
		snprintf(ti, sizeof(ti), "%s-lt1024ns", hostile[i]);
		ident_safe_name(ti, buf, sizeof(buf));
		check_ident(buf);
	}
	ident_safe_name("../../../../tmp/x", buf, sizeof(buf));
	assert_string_equal(buf, "_._.__.__.__tmp_x");
	ident_safe_name("halt_wait_hist-lt1024ns", buf, sizeof(buf));
	assert_string_equal(buf, "halt_wait_hist-lt1024ns");
}

/* The scheduler values collectd gets: none until a thread is known. */
static void test_collectd_sched(void **state)
{
	struct kvmstats_vcpu c0 = { .sched = { .tid = 0 }, .sched_total = { 5, 6, 7 } };
	struct kvmstats_vm vm = { .sched_vcpus = { 11, 12, 13 }, .other_run_ns = 14 };
	struct ident_sched v[IDENT_SCHED_MAX];
	(void)state;

	assert_int_equal(ident_sched_values(&vm, NULL, v), 0);
	assert_int_equal(ident_sched_values(&vm, &c0, v), 0);
	vm.sched_known = 1;
	c0.sched.tid = 77;
	assert_int_equal(ident_sched_values(&vm, NULL, v), 3);
	assert_string_equal(v[0].type_instance, "vcpu_run_ns");
	assert_int_equal(v[0].value, 11);
	assert_string_equal(v[1].type_instance, "vcpu_wait_ns");
	assert_int_equal(v[1].value, 12);
	assert_string_equal(v[2].type_instance, "vmm_other_run_ns");
	assert_int_equal(v[2].value, 14);
	/* A vCPU's totals, not its current thread's own counters. */
	c0.sched.run_ns = 1;
	assert_int_equal(ident_sched_values(&vm, &c0, v), 2);
	assert_int_equal(v[0].value, 5);
	assert_int_equal(v[1].value, 6);
	for (size_t i = 0; i < 3; i++) {
		char buf[64];

		ident_safe_name(v[i % 2].type_instance, buf, sizeof(buf));
		assert_string_equal(buf, v[i % 2].type_instance);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chart_id_part),
		cmocka_unit_test(test_chart_quote),
		cmocka_unit_test(test_charts_of_hostile_schema),
		cmocka_unit_test(test_show_nonzero_buckets_in_order),
		cmocka_unit_test(test_histogram_dim_names),
		cmocka_unit_test(test_collectd_ident),
		cmocka_unit_test(test_cpu_chart),
		cmocka_unit_test(test_collectd_sched),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
