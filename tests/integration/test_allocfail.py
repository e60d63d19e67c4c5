# SPDX-License-Identifier: MIT
"""Every heap allocation of a rescan and of a sample fails in turn, and the
core recovers exactly.

tests/fixtures/allocfail (the driver) runs a host (common/kvmstats.h) with
tests/fixtures/shim/failalloc.c preloaded, which fails the Nth allocation
after the driver arms it. For N = 1, 2, ... it fails the Nth allocation of
host_new() with host_set_sources() (which must then fail cleanly), of a
first rescan, of a first sample, of a second rescan, each on a fresh host,
until N passes the number the operation makes; after each, one clean
rescan and one clean sample must give every VM and vCPU from the expected
source with the exact exit counts, one shared schema per kind, as many KVM
stats fds in /proc/self/fd as the host's table holds and as it counts
itself (report.fds_held; max_fds is exactly what is needed, so a count that
drifts up leaves an fd untaken), and after host_free() no fd and no heap
byte left (the heap is counted exactly by mallinfo2() with glibc's tcache
off; in a SANITIZE= build LeakSanitizer checks it instead).

Not valgrind: Debian 12's valgrind (3.19) refuses pidfd_open and
pidfd_getfd (ENOSYS), without which the core takes no VM at all.

As root the driver also clears CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH from
its effective set first (as the Netdata plugin runs) and checks that no
failure leaves them raised.

Two worlds: real test VMs (tests/fixtures/testvm, needs /dev/kvm), with
the VM-wide stats of one of them from debugfs when it can be mounted; and,
anywhere, fake VMMs that the driver builds with --fake: child processes
holding copies of the golden stats files under a fake /proc and debugfs,
and one that answers QMP with the answers captured from QEMU 7.2
(tests/fixtures/qmp). Every N is run: about 2400 for the first rescan and
the first sample of the fake world (QMP's JSON), 20-40 s here.
"""
import json
import os
import subprocess

import pytest

from conftest import BUILD, ROOT, mount_debugfs, requires_kvm, sanitizer_runtimes

DRIVER = BUILD / "tests/fixtures/allocfail"
SHIM = BUILD / "tests/fixtures/failalloc.so"
KVM_DEBUGFS = "/sys/kernel/debug/kvm"


def run_driver(*args):
    """Runs the driver with the shim; its summary, after checking it passed."""
    env = dict(os.environ)
    runtimes = sanitizer_runtimes(DRIVER)
    if runtimes:
        # The shim first, so that its malloc is the one called; it passes
        # on to the sanitizer's. LeakSanitizer fails the run on a leak.
        env["LD_PRELOAD"] = ":".join([str(SHIM), *runtimes])
        env["ASAN_OPTIONS"] = "verify_asan_link_order=0:detect_leaks=1:exitcode=99"
    else:
        env["LD_PRELOAD"] = str(SHIM)
        env["GLIBC_TUNABLES"] = "glibc.malloc.tcache_count=0"
    p = subprocess.run([str(DRIVER), *map(str, args)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "not preloaded" not in p.stdout, p.stdout
    summary = json.loads(p.stdout.splitlines()[-1])
    assert summary["failures"] == 0, p.stdout
    return summary


def test_every_allocation_fails_in_turn_fake_vmms():
    summary = run_driver("--fake", ROOT / "tests/fixtures/golden")
    assert summary["new"] >= 3, summary  # the host, its caches, its settings
    # Four VMMs, six vCPUs, a debugfs VM and a QMP one: thousands of
    # allocations in the first rescan and sample (QMP's JSON), a few dozen
    # in a second rescan (the fds listed again, QMP tied already).
    assert summary["rescan"] >= 1000, summary
    assert summary["sample"] >= 1000, summary
    assert summary["rescan2"] >= 10, summary


def vm_arg(vm, source):
    counts = vm.counts()
    assert counts and counts["state"] == "halted", counts
    vcpus = sorted(counts["vms"][0]["vcpus"], key=lambda c: c["vcpu"])
    assert [c["vcpu"] for c in vcpus] == list(range(len(vcpus)))
    return f"{vm.pid}:{source}:" + ",".join(f"{c['mmio']}/{c['hlt']}" for c in vcpus)


@requires_kvm
def test_every_allocation_fails_in_turn_test_vms(testvm):
    debugfs = os.geteuid() == 0 and mount_debugfs() is None
    a = testvm("--vcpus", 2, "--mmio", 100, "--hold", "vm,vcpu")
    b = testvm("--vcpus", 1, "--mmio", 50, "--hold", "vcpu")
    c = testvm("--vcpus", 1, "--mmio", 30, "--hold", "vm,vcpu")
    args = ["--debugfs", KVM_DEBUGFS] if debugfs else []
    args += [vm_arg(a, "fd"), vm_arg(b, "debugfs" if debugfs else "none"), vm_arg(c, "fd")]
    summary = run_driver(*args)
    assert summary["rescan"] >= 30, summary
    assert summary["sample"] >= 1, summary
    assert summary["rescan2"] >= 1, summary
