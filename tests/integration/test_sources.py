# SPDX-License-Identifier: MIT
"""Sources besides held stats fds, on real VMs: QEMU 7.2's QMP and debugfs.

A VM whose VMM holds stats fds is read through them; QEMU 7.2 holds none
and is read through query-stats on its QMP socket; a VMM with neither is
read through /sys/kernel/debug/kvm/<pid>-<fd>/. No stat comes from two
sources. A kernel without the binary stats API is simulated with an
LD_PRELOAD shim that answers KVM_CHECK_EXTENSION as such a kernel does.
"""
import json
import os
import re
import subprocess

import pytest

from conftest import (BUILD, mount_debugfs, requires_kvm, requires_qemu, requires_root,
                      sanitizer_runtimes)

KVMSTAT = str(BUILD / "kvmstat")
NO_BINARY_STATS = str(BUILD / "tests/fixtures/no_binary_stats.so")

pytestmark = [requires_kvm, requires_root]


@pytest.fixture(scope="module", autouse=True)
def debugfs_mounted():
    """debugfs is where VM-wide stats come from for most VMMs: mount it."""
    reason = mount_debugfs()
    if reason:
        pytest.skip(reason)


def kvmstat(*args, preload=None):
    env = dict(os.environ)
    if preload:
        # A sanitizer build needs its runtime first in the preload list.
        env["LD_PRELOAD"] = ":".join(sanitizer_runtimes(KVMSTAT) + [preload])
    return subprocess.run([KVMSTAT, *map(str, args)], capture_output=True, text=True,
                          timeout=60, env=env)


def kvmstat_json(*args, **kw):
    r = kvmstat("--json", *args, **kw)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line], r.stderr


def only_vm(doc, pid):
    [vm] = [v for v in doc["vms"] if v["pid"] == pid]
    return vm


@requires_qemu
def test_sources_view_names_each_source(testvm, qemu):
    held = testvm("--vcpus", 2, "--mmio", 10, "--hold", "vcpu", name="src-held")
    none = testvm("--vcpus", 1, "--mmio", 10, "--hold", "none", name="src-none")
    q = qemu("src-qemu")
    r = kvmstat("--sources", "--qmp", q.qmp, "--name", "/^src-/")
    assert r.returncode == 0, r.stderr
    rows = {int(line.split()[0]): line.split() for line in r.stdout.splitlines()[1:]}
    # pid vm vcpus vcpu-src vm-src mapped("N.N MiB") qmp
    assert rows[held.pid][2:5] == ["2", "fd", "debugfs"]
    assert rows[none.pid][2:5] == ["0", "none", "debugfs"]
    assert rows[q.pid][2:5] == ["2", "qmp", "qmp"]
    assert rows[q.pid][7] == q.qmp
    for pid in (held.pid, none.pid, q.pid):
        assert re.fullmatch(r"\d+\.\d", rows[pid][5]) and rows[pid][6] == "MiB", rows[pid]


@requires_qemu
def test_qmp_values_agree_with_qemus_own_answer(qemu):
    q = qemu("agree")
    cpus = {c["qom-path"]: c["cpu-index"] for c in q.qmp_command({"execute": "query-cpus-fast"})[0]}

    def exits_by_cpu():
        [answer] = q.qmp_command({"execute": "query-stats", "arguments": {"target": "vcpu"}})
        return {cpus[e["qom-path"]]: {s["name"]: s["value"] for s in e["stats"]}["exits"]
                for e in answer}

    before = exits_by_cpu()
    [doc], _ = kvmstat_json("--qmp", q.qmp, "--pid", q.pid, 1, 1)
    after = exits_by_cpu()
    vm = only_vm(doc, q.pid)
    assert vm["source"] == "qmp"
    assert [c["vcpu"] for c in vm["vcpus"]] == [0, 1]
    for c in vm["vcpus"]:
        assert c["source"] == "qmp"
        # Counters never lower than QEMU said before, never higher than after.
        assert before[c["vcpu"]] <= c["stats"]["exits"]["value"] <= after[c["vcpu"]]
        assert len(c["stats"]["halt_wait_hist"]["value"]) == 32
    assert vm["stats"]["pages_4k"]["type"] == "instant"


def test_debugfs_alone_equals_the_held_vm_fd(testvm):
    vm = testvm("--vcpus", 2, "--mmio", 10, "--hold", "vm,vcpu", name="twice")
    [by_fd], _ = kvmstat_json("--pid", vm.pid, 1, 1)
    docs, err = kvmstat_json("--pid", vm.pid, 1, 2, preload=NO_BINARY_STATS)
    # Said once, not every interval.
    assert err.count("has no binary stats API: reading debugfs only") == 1
    fd_vm, dbg_vm = only_vm(by_fd, vm.pid), only_vm(docs[-1], vm.pid)
    assert fd_vm["source"] == "fd" and dbg_vm["source"] == "debugfs"
    assert dbg_vm["vcpus"] == []  # no fd was taken
    for name in ("pages_4k", "pages_2m", "pages_1g", "mmu_unsync", "nx_lpage_splits"):
        assert dbg_vm["stats"][name]["value"] == fd_vm["stats"][name]["value"], name
        assert dbg_vm["stats"][name]["type"] == "instant"
    # vCPU stats are summed over the vCPUs in debugfs.
    blocking = sum(c["stats"]["blocking"]["value"] for c in fd_vm["vcpus"])
    assert dbg_vm["stats"]["blocking"]["value"] == blocking


def test_debugfs_cumulative_stats_from_a_fake_tree(testvm, tmp_path):
    vm = testvm("--vcpus", 1, "--mmio", 10, "--hold", "none", name="fake-dbg")
    vm_fd = vm.counts()["vms"][0]["vm_fd"]
    d = tmp_path / "kvm" / f"{vm.pid}-{vm_fd}"
    (d / "vcpu0").mkdir(parents=True)
    for name, value, mode in (("exits", 1234, 0o644), ("mmio_exits", 1000, 0o644),
                              ("halt_poll_success_ns", 5000, 0o644),
                              ("max_mmu_rmap_size", 9, 0o644), ("pages_4k", 7, 0o444),
                              ("halt_wait_hist", 5, 0o644)):
        (d / name).write_text(f"{value}\n")
        (d / name).chmod(mode)
    [doc], _ = kvmstat_json("--debugfs", tmp_path / "kvm", "--pid", vm.pid, 1, 1)
    stats = only_vm(doc, vm.pid)["stats"]
    assert stats["exits"] == {"value": 1234, "delta": 0, "type": "cumulative",
                              "unit": "none", "exponent": 0}
    assert stats["mmio_exits"]["value"] == 1000
    # Typed from this kernel's binary schema when one is known, else by name.
    assert stats["halt_poll_success_ns"]["unit"] == "seconds"
    assert stats["halt_poll_success_ns"]["exponent"] == -9
    assert stats["max_mmu_rmap_size"]["type"] == "peak"
    assert stats["pages_4k"] == {"value": 7, "delta": 0, "type": "instant",
                                 "unit": "none", "exponent": 0}
    assert "halt_wait_hist" not in stats  # debugfs shows bucket 0 only


def test_held_fds_win_and_debugfs_fills_the_rest(testvm):
    vm = testvm("--vcpus", 2, "--mmio", 25, "--hold", "vcpu", name="mixed")
    [doc], _ = kvmstat_json("--pid", vm.pid, 1, 1)
    entry = only_vm(doc, vm.pid)
    assert {c["source"] for c in entry["vcpus"]} == {"fd"}
    assert [c["stats"]["mmio_exits"]["value"] for c in entry["vcpus"]] == [25, 25]
    # VM-wide stats from debugfs, none of the vCPU stats again.
    assert entry["source"] == "debugfs"
    assert "pages_4k" in entry["stats"]
    vcpu_names = set(entry["vcpus"][0]["stats"])
    assert not vcpu_names & set(entry["stats"]), vcpu_names & set(entry["stats"])
