# SPDX-License-Identifier: MIT
"""kvmstat --memory on real VMs: one row per VM, sorted by mapped memory,
pages_* exactly what KVM's own VM-wide stats say (debugfs, read beside it),
the configured RAM from the VMM's -m, the vCPU count and the exit rate of a
steady VM. On this machine pages_4k/2m/1g are 0 for every VM (nested PVM),
so structure, sorting and equality are tested, not non-zero values."""
import json
import os
import subprocess

import pytest

from conftest import BUILD, mount_debugfs, requires_kvm, requires_root

KVMSTAT = str(BUILD / "kvmstat")
pytestmark = [requires_kvm, requires_root]


def memory_json(pids, interval=1):
    argv = [KVMSTAT, "--memory", "--json"]
    for pid in pids:
        argv += ["-p", str(pid)]
    r = subprocess.run(argv + [str(interval), "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def debugfs_pages(pid):
    """Each pages_* of the VM of pid, from KVM's debugfs directory."""
    root = "/sys/kernel/debug/kvm"
    dirs = [d for d in os.listdir(root) if d.startswith(f"{pid}-")]
    assert len(dirs) == 1, dirs
    return {n: int(open(f"{root}/{dirs[0]}/{n}").read()) for n in ("pages_4k", "pages_2m", "pages_1g")}


def test_memory_rows(testvm):
    reason = mount_debugfs()
    if reason:
        pytest.skip(reason)
    big = testvm("--vcpus", 2, "--steady", 100, "-m", "2G", name="memview-big", state="running")
    small = testvm("--hold", "vm,vcpu", "-m", "size=524288k,slots=2", name="memview-small")
    bare = testvm("--vcpus", 3, name="memview-bare")
    doc = memory_json([big.pid, small.pid, bare.pid])
    rows = doc["vms"]
    assert [r["pid"] for r in rows if r["pid"] in (big.pid, small.pid, bare.pid)] and len(rows) == 3
    by_pid = {r["pid"]: r for r in rows}
    keys = {"pid", "name", "pages_4k", "pages_2m", "pages_1g", "mapped_bytes", "ram_bytes",
            "mapped_percent", "vcpus", "exits_per_sec"}
    for r in rows:
        assert set(r) == keys
    # Sorted by mapped memory, largest first; equal mapped bytes by pid.
    order = [(-r["mapped_bytes"], r["pid"]) for r in rows]
    assert order == sorted(order)
    for vm in (big, small, bare):
        r = by_pid[vm.pid]
        pages = debugfs_pages(vm.pid)
        assert {k: r[k] for k in pages} == pages
        assert r["mapped_bytes"] == pages["pages_4k"] * 4096 + pages["pages_2m"] * (2 << 20) \
            + pages["pages_1g"] * (1 << 30)
    assert by_pid[big.pid]["name"] == "memview-big"
    assert by_pid[big.pid]["ram_bytes"] == 2 << 30
    assert by_pid[small.pid]["ram_bytes"] == 512 << 20
    assert by_pid[bare.pid]["ram_bytes"] is None and by_pid[bare.pid]["mapped_percent"] is None
    assert by_pid[big.pid]["mapped_percent"] == 100.0 * by_pid[big.pid]["mapped_bytes"] / (2 << 30)
    assert [by_pid[p]["vcpus"] for p in (big.pid, small.pid, bare.pid)] == [2, 1, 3]
    # 2 vCPUs at 100 MMIO exits/s each, over a 1 s interval.
    assert 150 <= by_pid[big.pid]["exits_per_sec"] <= 250, by_pid[big.pid]
    assert by_pid[bare.pid]["exits_per_sec"] == 0


def test_memory_table(testvm):
    vm = testvm("-m", "1G", name="memview-table")
    r = subprocess.run([KVMSTAT, "--memory", "-p", str(vm.pid), "1", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l]
    assert lines[0].split() == ["pid", "vm", "pages_4k", "pages_2m", "pages_1g", "mapped_MiB",
                                "ram_MiB", "mapped%", "vcpus", "exits/s", "run%", "wait%"]
    cells = lines[1].split()
    assert cells[0] == str(vm.pid) and cells[1] == "memview-table"
    assert cells[6] == "1024.0" and cells[8] == "1"
