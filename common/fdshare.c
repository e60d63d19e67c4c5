/* SPDX-License-Identifier: MIT */
/*
 * fdshare.c: max-min fair shares of the stats fd budget (fdshare.h).
 *
 * First come, first served let one VMM with thousands of vCPUs take every
 * fd and leave the VMs started after it unwatched. Water-filling instead:
 * the level is found by bisection (the fds a level costs grow with it),
 * so nothing is sorted or allocated and the result is the same whatever
 * the order of the claimants, except where the last few fds go.
 */
#include <stdbool.h>

#include "fdshare.h"

/* The fds every claimant at most level costs; false once it exceeds budget. */
static bool level_fits(const size_t *demand, size_t n, size_t level, size_t budget)
{
	size_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		if (__builtin_add_overflow(sum, demand[i] < level ? demand[i] : level, &sum) ||
		    sum > budget)
			return false;
	}
	return true;
}

void fdshare_compute(const size_t *demand, size_t n, size_t budget,
		     size_t *ret_share)
{
	size_t lo = 0, hi = 0, used = 0, left;

	for (size_t i = 0; i < n; i++)
		if (demand[i] > hi)
			hi = demand[i];
	/* The largest level in [0, hi] that fits: level 0 always does. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2 + 1;	/* in (lo, hi], no overflow */

		if (level_fits(demand, n, mid, budget))
			lo = mid;
		else
			hi = mid - 1;
	}
	for (size_t i = 0; i < n; i++) {
		ret_share[i] = demand[i] < lo ? demand[i] : lo;
		used += ret_share[i];
	}
	/* Fewer than the claimants above the level, or level lo + 1 would fit. */
	left = budget - used;
	for (size_t i = 0; i < n && left > 0; i++) {
		if (demand[i] > lo) {
			ret_share[i]++;
			left--;
		}
	}
}
