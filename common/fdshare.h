/* SPDX-License-Identifier: MIT */
/*
 * fdshare.h: how the stats fd budget is shared among the VMMs (source_fd.c).
 * Internal to the core: pure arithmetic, no fds, no table.
 */
#ifndef KVMSTATS_FDSHARE_H
#define KVMSTATS_FDSHARE_H

#include <stddef.h>

/*
 * Max-min fair shares of budget among n claimants (the VMMs) whose
 * demands (the stats fds each holds) are demand[0..n): no claimant gets
 * more than its demand, and none gets more than another whose demand is
 * not met. Every claimant gets min(demand, level), level the largest that
 * fits in budget; what is then left (fewer fds than the claimants above
 * the level) goes one each to the first of those in index order, so the
 * shares add up to min(budget, sum of demands) exactly. Budget 0, or no
 * claimant, gives only zeros. Writes ret_share[0..n); cannot fail.
 */
void fdshare_compute(const size_t *demand, size_t n, size_t budget,
		     size_t *ret_share);

#endif
