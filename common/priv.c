/* SPDX-License-Identifier: MIT */
/*
 * priv.c: the only file that includes <sys/capability.h>.
 *
 * Reading another process's fd table needs PTRACE_MODE_READ and
 * pidfd_getfd() needs PTRACE_MODE_ATTACH_REALCREDS over the VMM: for VMMs
 * of other users that is CAP_SYS_PTRACE. CAP_DAC_READ_SEARCH lets an
 * unprivileged user (netdata) list /proc/PID/fd of others and search
 * root-only directories (debugfs). Nothing else is ever needed.
 *
 * Capability sets are per thread: priv_raise()/priv_restore() change only
 * the calling thread, which is what a plugin inside collectd wants.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "acquire.h"
#include "priv.h"

static const cap_value_t acquire_caps[] = { CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH };
#define N_ACQUIRE_CAPS (sizeof(acquire_caps) / sizeof(acquire_caps[0]))

static bool has_flag(cap_t caps, cap_value_t cap, cap_flag_t set)
{
	cap_flag_value_t v = CAP_CLEAR;

	return cap_get_flag(caps, cap, set, &v) == 0 && v == CAP_SET;
}

int priv_probe(struct priv_report *ret_report)
{
	cap_t caps = cap_get_proc();

	if (!caps)
		return -errno;
	*ret_report = (struct priv_report){
		.root = geteuid() == 0,
		.sys_ptrace = has_flag(caps, CAP_SYS_PTRACE, CAP_PERMITTED),
		.dac_read_search = has_flag(caps, CAP_DAC_READ_SEARCH, CAP_PERMITTED),
	};
	cap_free(caps);
	return 0;
}

/* Drops every other capability from the bounding set, if we may. */
static int reduce_bounding_set(cap_t caps)
{
	cap_value_t setpcap = CAP_SETPCAP;
	int max = (int)cap_max_bits();

	if (!has_flag(caps, CAP_SETPCAP, CAP_PERMITTED))
		return 0;	/* not root: the bounding set cannot be changed */
	if (cap_set_flag(caps, CAP_EFFECTIVE, 1, &setpcap, CAP_SET) < 0 ||
	    cap_set_proc(caps) < 0)
		return -errno;
	for (cap_value_t c = 0; c < max; c++) {
		bool keep = c == CAP_SYS_PTRACE || c == CAP_DAC_READ_SEARCH;

		if (!keep && CAP_IS_SUPPORTED(c) && cap_drop_bound(c) < 0)
			return -errno;
	}
	return 0;
}

int priv_restrict(void)
{
	cap_t caps, keep;
	int r = 0;

	caps = cap_get_proc();
	if (!caps)
		return -errno;
	keep = cap_init();
	if (!keep) {
		r = -errno;
		goto out_caps;
	}
	for (size_t i = 0; i < N_ACQUIRE_CAPS; i++)
		if (has_flag(caps, acquire_caps[i], CAP_PERMITTED) &&
		    cap_set_flag(keep, CAP_PERMITTED, 1, &acquire_caps[i], CAP_SET) < 0) {
			r = -errno;
			goto out_keep;
		}
	r = reduce_bounding_set(caps);
	if (r < 0)
		goto out_keep;
	/* Ambient capabilities would survive an exec: none. */
	if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() < 0) {
		r = -errno;
		goto out_keep;
	}
	/* Permitted: at most the two; effective and inheritable: empty. */
	if (cap_set_proc(keep) < 0) {
		r = -errno;
		goto out_keep;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = -errno;
out_keep:
	cap_free(keep);
out_caps:
	cap_free(caps);
	return r;
}

/* Sets or clears the acquisition capabilities that want[] names. */
static int set_effective(cap_t caps, const bool want[N_ACQUIRE_CAPS],
			 cap_flag_value_t value)
{
	for (size_t i = 0; i < N_ACQUIRE_CAPS; i++)
		if (want[i] && cap_set_flag(caps, CAP_EFFECTIVE, 1,
					    &acquire_caps[i], value) < 0)
			return -errno;
	return cap_set_proc(caps) < 0 ? -errno : 0;
}

int priv_raise(struct priv_saved *ret_saved)
{
	struct priv_saved saved = { 0 };
	bool want[N_ACQUIRE_CAPS];
	cap_t caps;
	int r = 0;

	caps = cap_get_proc();
	if (!caps)
		return -errno;
	saved.had_ptrace = has_flag(caps, CAP_SYS_PTRACE, CAP_EFFECTIVE);
	saved.had_dac = has_flag(caps, CAP_DAC_READ_SEARCH, CAP_EFFECTIVE);
	for (size_t i = 0; i < N_ACQUIRE_CAPS; i++) {
		want[i] = has_flag(caps, acquire_caps[i], CAP_PERMITTED) &&
			  !has_flag(caps, acquire_caps[i], CAP_EFFECTIVE);
		saved.raised |= want[i];
	}
	/* Already effective (collectd as root): change nothing. */
	if (saved.raised)
		r = set_effective(caps, want, CAP_SET);
	cap_free(caps);
	if (r < 0)
		return r;
	*ret_saved = saved;
	return 0;
}

/*
 * Allocates nothing (capget/capset on the stack, not a cap_t): a restore
 * that failed for want of memory would leave CAP_SYS_PTRACE and
 * CAP_DAC_READ_SEARCH effective for all the code that runs after it.
 */
int priv_restore(const struct priv_saved *saved)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	const bool clear[N_ACQUIRE_CAPS] = { !saved->had_ptrace, !saved->had_dac };

	if (!saved->raised)
		return 0;
	if (capget(&h, d) < 0)
		return -errno;
	for (size_t i = 0; i < N_ACQUIRE_CAPS; i++)
		if (clear[i])
			d[CAP_TO_INDEX(acquire_caps[i])].effective &= ~CAP_TO_MASK(acquire_caps[i]);
	return capset(&h, d) < 0 ? -errno : 0;
}
