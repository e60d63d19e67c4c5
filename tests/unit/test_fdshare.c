/* SPDX-License-Identifier: MIT */
/*
 * test_fdshare.c: unit tests of fdshare_compute(), the max-min fair shares
 * of the stats fd budget among the VMMs (common/fdshare.c): edge cases
 * (budget 0, no VMM, more VMMs than fds, equal demands, one huge demand,
 * sums that overflow), and random demands against a reference that hands
 * out one fd at a time to the VMM with the smallest share still short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "fdshare.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void check(const size_t *demand, size_t n, size_t budget, const size_t *want)
{
	size_t share[16];

	assert_true(n <= N(share));
	for (size_t i = 0; i < n; i++)
		share[i] = 12345;	/* every slot is written */
	fdshare_compute(demand, n, budget, share);
	for (size_t i = 0; i < n; i++) {
		if (share[i] != want[i])
			fail_msg("budget %zu: share[%zu] = %zu, want %zu", budget, i,
				 share[i], want[i]);
	}
}

static void test_budget_zero(void **state)
{
	(void)state;
	check((size_t[]){ 60, 4, 0, 1 }, 4, 0, (size_t[]){ 0, 0, 0, 0 });
}

static void test_no_vmm(void **state)
{
	size_t share[1] = { 7 };

	(void)state;
	fdshare_compute(NULL, 0, 64, share);
	assert_int_equal(share[0], 7);	/* nothing written */
}

static void test_all_fit(void **state)
{
	(void)state;
	check((size_t[]){ 3, 0, 7 }, 3, 100, (size_t[]){ 3, 0, 7 });
	check((size_t[]){ 3, 0, 7 }, 3, 10, (size_t[]){ 3, 0, 7 });
}

static void test_more_vmms_than_fds(void **state)
{
	(void)state;
	/* One each to the first in order; none gets two while one has none. */
	check((size_t[]){ 5, 5, 5, 5, 5 }, 5, 3, (size_t[]){ 1, 1, 1, 0, 0 });
	check((size_t[]){ 0, 9, 0, 9 }, 4, 1, (size_t[]){ 0, 1, 0, 0 });
	check((size_t[]){ 1, 1, 1 }, 3, 2, (size_t[]){ 1, 1, 0 });
}

static void test_equal_demands(void **state)
{
	(void)state;
	check((size_t[]){ 10, 10, 10 }, 3, 30, (size_t[]){ 10, 10, 10 });
	check((size_t[]){ 10, 10, 10 }, 3, 31, (size_t[]){ 10, 10, 10 });
	check((size_t[]){ 10, 10, 10 }, 3, 29, (size_t[]){ 10, 10, 9 });
	check((size_t[]){ 10, 10, 10 }, 3, 16, (size_t[]){ 6, 5, 5 });
}

static void test_one_huge_demand(void **state)
{
	(void)state;
	/* The integration test's host: 60 vCPUs first, then three of 4. */
	check((size_t[]){ 60, 4, 4, 4 }, 4, 64, (size_t[]){ 52, 4, 4, 4 });
	check((size_t[]){ 60, 4, 4 }, 3, 64, (size_t[]){ 56, 4, 4 });
	check((size_t[]){ 60 }, 1, 64, (size_t[]){ 60 });
	check((size_t[]){ 1000000, 1, 2 }, 3, 4096, (size_t[]){ 4093, 1, 2 });
	/* Two big ones split what the small ones leave. */
	check((size_t[]){ 3, 5000, 7, 5000 }, 4, 4096, (size_t[]){ 3, 2043, 7, 2043 });
	check((size_t[]){ 3, 5000, 7, 5000 }, 4, 4097, (size_t[]){ 3, 2044, 7, 2043 });
}

static void test_overflow(void **state)
{
	(void)state;
	/* Sums past SIZE_MAX must not wrap into "fits". */
	check((size_t[]){ SIZE_MAX, SIZE_MAX }, 2, SIZE_MAX,
	      (size_t[]){ SIZE_MAX / 2 + 1, SIZE_MAX / 2 });
	check((size_t[]){ SIZE_MAX, SIZE_MAX, 1 }, 3, 5, (size_t[]){ 2, 2, 1 });
}

/* One fd at a time to the VMM with the smallest share still short, first on ties. */
static void reference(const size_t *demand, size_t n, size_t budget, size_t *share)
{
	for (size_t i = 0; i < n; i++)
		share[i] = 0;
	for (; budget > 0; budget--) {
		size_t best = n;

		for (size_t i = 0; i < n; i++)
			if (share[i] < demand[i] && (best == n || share[i] < share[best]))
				best = i;
		if (best == n)
			return;
		share[best]++;
	}
}

static void test_random_against_reference(void **state)
{
	size_t demand[16], share[16], want[16];

	(void)state;
	srand(18);
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)rand() % 17, budget = (size_t)rand() % 200, sum = 0, dsum = 0;

		for (size_t i = 0; i < n; i++) {
			demand[i] = rand() % 4 == 0 ? (size_t)rand() % 300 : (size_t)rand() % 20;
			dsum += demand[i];
		}
		fdshare_compute(demand, n, budget, share);
		reference(demand, n, budget, want);
		for (size_t i = 0; i < n; i++) {
			assert_true(share[i] <= demand[i]);
			if (share[i] != want[i])
				fail_msg("round %d, budget %zu: share[%zu] = %zu, want %zu",
					 round, budget, i, share[i], want[i]);
			sum += share[i];
		}
		assert_int_equal(sum, budget < dsum ? budget : dsum);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_zero),
		cmocka_unit_test(test_no_vmm),
		cmocka_unit_test(test_all_fit),
		cmocka_unit_test(test_more_vmms_than_fds),
		cmocka_unit_test(test_equal_demands),
		cmocka_unit_test(test_one_huge_demand),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_random_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
