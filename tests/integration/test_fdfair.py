# SPDX-License-Identifier: MIT
"""One VMM must not starve the others of stats fds (issue 18), on real KVM.

kvmstat holds at most --max-fds stats fds, shared max-min fairly among the
VMMs. A VMM of 60 vCPUs started first takes 60 of a budget of 64; three
VMMs of 4 vCPUs started after it must each be fully watched, with exact
values, while the big one gives back the fds of its 8 highest vCPUs, is
named once on stderr, and its total never goes back. When the small ones
leave, it takes its fds back and every value goes on.

kvmstat is stopped (SIGSTOP) while the small VMMs start, so that one rescan
finds the three of them: the big one's share changes once, and is said once.
The same logic runs without KVM in tests/unit/test_fdfair.c.
"""
import fcntl
import json
import os
import re
import signal
import subprocess

import pytest

from conftest import BUILD, kvm_links, requires_kvm, requires_root

KVMSTAT = str(BUILD / "kvmstat")
TESTVM = str(BUILD / "tests/fixtures/testvm")
BIG, SMALL, BUDGET = 60, 4, 64
K = 111                         # MMIO writes per vCPU of the big VM

pytestmark = [requires_kvm, requires_root]

KVM_CHECK_EXTENSION = 0xAE03    # _IO(KVMIO, 0x03)
KVM_CAP_MAX_VCPUS = 66


def refused_60_vcpus(tmp_path):
    """None when this host's KVM runs a VM of BIG vCPUs holding their stats
    fds, else why not (a SKIP reason). Asked, never assumed: nested and
    PVM backends may cap vCPUs lower."""
    with open("/dev/kvm", "rb", buffering=0) as kvm:
        most = fcntl.ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS)
    if 0 < most < BIG:
        return f"SKIP: this host's KVM allows {most} vCPUs per VM (KVM_CAP_MAX_VCPUS), not {BIG}"
    probe = subprocess.run([TESTVM, "--vcpus", str(BIG), "--hold", "vcpu", "--exit-when-done",
                            "--counts", str(tmp_path / "probe.json")],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode == 77 or (probe.returncode != 0 and "KVM_CREATE_VCPU" in probe.stderr):
        return f"SKIP: this host's KVM refused a VM of {BIG} vCPUs: {probe.stderr.strip()}"
    assert probe.returncode == 0, probe.stderr
    return None


def vm_entry(doc, pid):
    return next((vm for vm in doc["vms"] if vm["pid"] == pid), None)


def vcpu_stats_fds(pid):
    return [link for link in kvm_links(pid) if link.startswith("anon_inode:kvm-vcpu-stats:")]


def test_late_vmms_get_their_share_of_the_fd_budget(testvm, tmp_path):
    reason = refused_60_vcpus(tmp_path)
    if reason:
        pytest.skip(reason)
    big = testvm("--vcpus", BIG, "--mmio", K, name="fdfair-big")
    truth = sum(c["mmio"] for c in big.counts()["vms"][0]["vcpus"])
    assert truth == BIG * K

    err = (tmp_path / "kvmstat.err").open("w+")
    proc = subprocess.Popen(
        [KVMSTAT, "--json", "--totals", "--no-debugfs", "--max-fds", str(BUDGET),
         "--name", "/^fdfair-/", "1", "12"],
        stdout=subprocess.PIPE, stderr=err, text=True)
    smalls = []
    try:
        first = json.loads(proc.stdout.readline())
        entry = vm_entry(first, big.pid)
        assert entry and len(entry["vcpus"]) == BIG
        assert all(v["stats"] is not None for v in entry["vcpus"])
        assert entry["totals"]["stats"]["mmio_exits"] == truth
        assert len(vcpu_stats_fds(proc.pid)) == BIG

        # No rescan while they start: one rescan finds all three.
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            smalls = [testvm("--vcpus", SMALL, "--mmio", 7 + i, name=f"fdfair-small{i}",
                             state=None) for i in range(3)]
            for vm in smalls:
                vm.wait_state("halted")
        finally:
            os.kill(proc.pid, signal.SIGCONT)

        docs = [json.loads(proc.stdout.readline()) for _ in range(4)]
        # kvmstat holds exactly the budget: the count matches after give-backs.
        held = vcpu_stats_fds(proc.pid)
        assert len(held) == BUDGET, held

        for doc in docs:
            for i, vm in enumerate(smalls):
                e = vm_entry(doc, vm.pid)
                assert e, f"small VM {i} not reported"
                want = [c["mmio"] for c in vm.counts()["vms"][0]["vcpus"]]
                assert want == [7 + i] * SMALL
                assert [v["vcpu"] for v in e["vcpus"]] == list(range(SMALL))
                assert [v["stats"]["mmio_exits"]["value"] for v in e["vcpus"]] == want
                assert e["totals"]["stats"]["mmio_exits"] == sum(want)
            e = vm_entry(doc, big.pid)
            assert [v["vcpu"] for v in e["vcpus"]] == list(range(BIG))
            read = [v["vcpu"] for v in e["vcpus"] if v["stats"] is not None]
            assert read == list(range(BIG - 8)), read
            for v in e["vcpus"][BIG - 8:]:
                assert v["error"] == os.strerror(24)        # EMFILE: given back
            for v in e["vcpus"][:BIG - 8]:
                assert v["stats"]["mmio_exits"]["value"] == K
            # Given-back vCPUs count with their last values: exact, never back.
            assert e["totals"]["vcpus"] == BIG
            assert e["totals"]["stats"]["mmio_exits"] == truth

        # The small VMMs leave: the big one takes its fds back.
        for vm in smalls:
            vm.stop()
        later = [json.loads(line) for line in proc.stdout]
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    e = vm_entry(later[-1], big.pid)
    assert all(vm_entry(later[-1], vm.pid) is None for vm in smalls)
    assert all(v["stats"] is not None and v["stats"]["mmio_exits"]["value"] == K
               for v in e["vcpus"])
    totals = [vm_entry(d, big.pid)["totals"]["stats"]["mmio_exits"]
              for d in [first, *docs, *later]]
    assert totals == [truth] * len(totals), totals

    err.seek(0)
    lines = err.read().splitlines()
    err.close()
    named = [line for line in lines if f"(pid {big.pid})" in line]
    assert named == [
        f"kvmstat: VM fdfair-big (pid {big.pid}): 8 of the {BIG} stats fds its VMM holds "
        f"are not read: the budget of {BUDGET} stats fds is shared fairly among 4 VMMs "
        f"and its share is {BUDGET - 3 * SMALL}; its highest-numbered vCPUs show no new "
        "values until the budget allows"], lines
    assert sum("fits in the fd budget again" in line for line in lines) == 1, lines
    for vm in smalls:
        assert not any(f"(pid {vm.pid})" in line for line in lines), lines
