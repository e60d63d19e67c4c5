# SPDX-License-Identifier: MIT
"""Stats fds a VMM holds that the core could not take are tried again.

A copy can fail for a moment: the VMM closes an fd between our listing and
pidfd_getfd(), or a transient refusal. If the VMM's fd count then stays the
same, nothing on the host changes, and a core that only looks again where
something changed never takes those fds: the VM goes without vCPU stats
until the next full walk, a minute later, and nobody says why. The shim
lose_vcpu_fds.so makes the first copies of vCPU stats fds fail with EBADF;
the VM stats fd is taken, so the VM is known from the first interval.
"""
import json
import os
import subprocess

from conftest import BUILD, requires_kvm, requires_root, sanitizer_runtimes

KVMSTAT = BUILD / "kvmstat"
SHIM = BUILD / "tests/fixtures/lose_vcpu_fds.so"

pytestmark = requires_kvm


def test_lost_vcpu_fds_are_taken_at_the_next_rescan_and_said(testvm):
    k = 1357
    vm = testvm("--vcpus", 2, "--mmio", k, "--hold", "vm,vcpu", name="unread-fds")
    env = dict(os.environ, KVMSTATS_SHIM_LOSE_VCPU_FDS="4",
               LD_PRELOAD=":".join(sanitizer_runtimes(KVMSTAT) + [str(SHIM)]))
    result = subprocess.run([str(KVMSTAT), "--json", "--no-debugfs", "--pid", str(vm.pid),
                             "1", "4"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    vcpus = [[c["stats"]["mmio_exits"]["value"] for c in d["vms"][0]["vcpus"]]
             for d in docs]
    # Rescans 1 and 2 lose both vCPU fds (4 copies), rescan 3 takes them:
    # with the fd count unchanged, only a retry finds them before a walk.
    assert vcpus == [[], [k, k], [k, k], [k, k]], vcpus
    assert docs[0]["vms"][0]["stats"] is not None   # the VM stats fd was taken
    # Said once when a retry failed too, and once when it worked.
    lines = result.stderr.splitlines()
    assert lines == [
        f"kvmstat: VM unread-fds (pid {vm.pid}): 2 stats fds its VMM holds could "
        "not be taken: Bad file descriptor; tried again at every rescan",
        "kvmstat: every stats fd the VMMs hold is taken now",
    ], result.stderr


@requires_root
def test_vcpus_taken_late_leave_debugfs(testvm, debugfs_mounted):
    """A VMM that holds only vCPU stats fds (QEMU 10) gets its VM-wide stats
    from debugfs, minus what its vCPUs serve. If the vCPU fds come after
    debugfs was opened (here: lost at the first scan), the summed vCPU
    stats debugfs serves (blocking, guest_mode, ...) must leave it, or a
    stat comes from two sources and the VM totals count it twice."""
    vm = testvm("--vcpus", 2, "--mmio", 99, "--hold", "vcpu", name="late-vcpus")
    # Lost at the first two rescans (kvmstat's first line follows the
    # second), taken at the third.
    env = dict(os.environ, KVMSTATS_SHIM_LOSE_VCPU_FDS="4",
               LD_PRELOAD=":".join(sanitizer_runtimes(KVMSTAT) + [str(SHIM)]))
    result = subprocess.run([str(KVMSTAT), "--json", "--pid", str(vm.pid), "1", "3"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    first, _, last = (json.loads(line)["vms"][0] for line in result.stdout.splitlines())
    assert first["source"] == last["source"] == "debugfs"
    assert first["vcpus"] == []
    assert [c["stats"]["mmio_exits"]["value"] for c in last["vcpus"]] == [99, 99]
    vcpu_names = set(last["vcpus"][0]["stats"])
    # At first debugfs served the vCPU stats it has (summed); then only the rest.
    assert set(first["stats"]) & vcpu_names
    assert not set(last["stats"]) & vcpu_names, set(last["stats"]) & vcpu_names
