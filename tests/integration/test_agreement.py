# SPDX-License-Identifier: MIT
"""Every source of a stat gives the same value, on paused QEMU VMs.

kvm_stats serves each stat from one source (held fds first, then QMP, then
debugfs), so a source that disagrees with the others would go unseen
wherever another one wins. Here one VM is paused (QMP "stop", then a moment
for in-flight halts to finish: a stopped vCPU is out of KVM_RUN and no
counter moves) and each stat is read through every source that has it:

  fd          kvmstat --json: the vCPU stats fds QEMU 10 holds
  kvmstat     kvmstat --json's VM-wide stats (QEMU 10: from debugfs;
              QEMU 7.2 with --qmp: its vCPUs and VM stats from QMP)
  qmp         QEMU's own query-stats answer, asked here over its socket.
              QEMU sends every list last element first (QAPI_LIST_PREPEND in
              its add_kvmstat_entry()); this test turns them round itself,
              so comparing with the held fds checks kvm_stats' fix too
  qmp_query   kvm_stats' QMP source (tests/fixtures/qmp_query), which QEMU
              10's VMs never get from kvmstat: the held fds win there
  debugfs     the files of /sys/kernel/debug/kvm/<pid>-<fd>/ read here,
              whatever lockdown lets through (VM stats, and vCPU stats
              summed over the vCPUs; histograms show bucket 0 only: left out)
  debugfs_ks  kvm_stats' debugfs source (tests/fixtures/debugfs_read)
  totals      kvmstat --json --totals: the VM-wide values the Netdata and
              collectd plugins report (sum over the vCPUs, peaks the maximum)

A source with per-vCPU values is also summed here into VM-wide values
(peaks: the maximum), so it meets debugfs and totals too. Every pair of
sources is compared on the stats both have, exactly, histograms bucket by
bucket, and the test prints the agreement table. A second query-stats after
everything else proves the VM stood still.
"""
import glob
import itertools
import json
import os
import subprocess
import time

import pytest

from conftest import (BUILD, mount_debugfs, requires_qemu, requires_qemu10, requires_qemu11,
                      requires_root,
                      wait_for)

KVMSTAT = str(BUILD / "kvmstat")
QMP_QUERY = str(BUILD / "tests/fixtures/qmp_query")
DEBUGFS_READ = str(BUILD / "tests/fixtures/debugfs_read")
DEBUGFS = "/sys/kernel/debug"
KVM_DEBUGFS = f"{DEBUGFS}/kvm"

pytestmark = requires_root


@pytest.fixture(scope="module", autouse=True)
def debugfs_mounted():
    """debugfs is where VM-wide stats come from for most VMMs: mount it."""
    reason = mount_debugfs()
    if reason:
        pytest.skip(reason)


def run_json(*argv):
    r = subprocess.run([*map(str, argv)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{argv[0]}: {r.returncode} {r.stderr}"
    return json.loads(r.stdout.splitlines()[-1])


def as_int(v):
    return [int(x) for x in v] if isinstance(v, list) else int(v)


class View:
    """One source's values: per vCPU {name: v} and VM-wide {name: v}."""

    def __init__(self, name, vcpus=None, vm=None):
        self.name = name
        self.vcpus = {i: {k: as_int(v) for k, v in s.items()} for i, s in (vcpus or {}).items()}
        self.vm = {k: as_int(v) for k, v in (vm or {}).items()}

    def keys(self):
        out = {("vm", k): v for k, v in self.vm.items()}
        for i, stats in self.vcpus.items():
            out.update({(f"vcpu{i}", k): v for k, v in stats.items()})
        return out

    def summed(self, types):
        """The VM-wide view of the vCPUs (plus the VM stats), as kvm_stats sums it."""
        vm = dict(self.vm)
        for name in set().union(*(s.keys() for s in self.vcpus.values())):
            vals = [s[name] for s in self.vcpus.values() if name in s]
            op = max if types.get(name) == "peak" else sum
            vm[name] = [op(b) for b in zip(*vals)] if isinstance(vals[0], list) else op(vals)
        return View(f"{self.name} summed", vm=vm)


def qmp_raw(vm, types):
    """QEMU's answer over its socket: (vcpus, vm), lists in the kernel's order."""
    vm_ans, vcpu_ans, cpus = vm.qmp_command(
        {"execute": "query-stats", "arguments": {"target": "vm"}},
        {"execute": "query-stats", "arguments": {"target": "vcpu"}},
        {"execute": "query-cpus-fast"})
    index = {c["qom-path"]: c["cpu-index"] for c in cpus}

    def flat(entry):
        return {s["name"]: s["value"][::-1] if isinstance(s["value"], list) else s["value"]
                for s in entry["stats"]}
    [vm_stats] = [flat(e) for e in vm_ans if e["provider"] == "kvm"]
    return {index[e["qom-path"]]: flat(e) for e in vcpu_ans if e["provider"] == "kvm"}, vm_stats


def stat_types(vm):
    [schemas] = vm.qmp_command({"execute": "query-stats-schemas"})
    return {s["name"]: s["type"] for entry in schemas if entry["provider"] == "kvm"
            for s in entry["stats"]}


def debugfs_dir(pid):
    [d] = glob.glob(f"{KVM_DEBUGFS}/{pid}-*")
    return d


def debugfs_raw(pid, types):
    d, vm, denied = debugfs_dir(pid), {}, 0
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if os.path.isdir(path) or types.get(name, "").endswith("histogram"):
            continue
        try:
            with open(path) as f:
                vm[name] = int(f.read())
        except PermissionError:
            denied += 1     # lockdown: files with a write bit
    return View("debugfs", vm=vm), denied


def debugfs_ks(pid):
    vm_fd = int(debugfs_dir(pid).rsplit("-", 1)[1])
    out = run_json(DEBUGFS_READ, KVM_DEBUGFS, pid, vm_fd)
    assert out["open"] == 0, out
    return View("debugfs_ks", vm=out["values"])


def kvmstat_views(pid, *args, vcpu_name="fd", vm_name="kvmstat"):
    doc = run_json(KVMSTAT, "--json", "--totals", "--pid", pid, *args, 1, 1)
    [vm] = [v for v in doc["vms"] if v["pid"] == pid]
    vcpus = {c["vcpu"]: {k: s["value"] for k, s in c["stats"].items()} for c in vm["vcpus"]}
    vm_stats = {k: s["value"] for k, s in (vm["stats"] or {}).items()}
    totals = vm["totals"]
    if vcpus:
        assert totals["vcpus"] == len(vcpus)
    return vm, View(vcpu_name, vcpus=vcpus), View(vm_name, vm=vm_stats), \
        View("totals", vm=totals["stats"] if totals else {})


def qmp_query_view(sock, name="qmp_query"):
    out = run_json(QMP_QUERY, sock, 2000)
    return View(name, vcpus={v["cpu-index"]: v["stats"] for v in out["vcpus"]}, vm=out["vm"])


def compare(a, b):
    """(compared, equal, differences) on the keys both views have."""
    ka, kb = a.keys(), b.keys()
    common = sorted(set(ka) & set(kb))
    diff = [(k, ka[k], kb[k]) for k in common if ka[k] != kb[k]]
    return len(common), len(common) - len(diff), diff


def paused(qemu, name, version):
    vm = qemu(name, vcpus=2, version=version)
    types = stat_types(vm)

    def halted():   # a halt in some histogram: the order can be checked
        vcpus, _ = qmp_raw(vm, types)
        return any(sum(s["halt_wait_hist"]) for s in vcpus.values())
    wait_for(halted, timeout=15, step=0.2, what="a vCPU halt")
    vm.qmp_command({"execute": "stop"})
    time.sleep(0.3)     # in-flight halts finish; nothing moves from here
    return vm, types


def agreement(vm_label, vm, types, views, capsys):
    """Compares every pair, prints the table, returns the differences."""
    views = views + [v.summed(types) for v in views if v.vcpus]
    again = View("qmp (again)", *qmp_raw(vm, types))
    views.append(again)
    rows, diffs = [], []
    for a, b in itertools.combinations(views, 2):
        if b.name == f"{a.name} summed":
            continue    # its own VM stats again
        n, eq, diff = compare(a, b)
        if n:
            rows.append((vm_label, f"{a.name} / {b.name}", n, eq, len(diff),
                         frozenset((a.name, b.name))))
            diffs += [(a.name, b.name, *d) for d in diff]
    with capsys.disabled():
        print(f"\n{'VM':<8} {'sources':<40} {'compared':>8} {'equal':>6} {'different':>9}")
        for r in rows:
            print(f"{r[0]:<8} {r[1]:<40} {r[2]:>8} {r[3]:>6} {r[4]:>9}")
    return rows, diffs


# QEMU 10 (bookworm-backports) and sid's QEMU 11 (run from its chroot)
# both hold one stats fd per vCPU and none for the VM.
@pytest.mark.parametrize("version", [pytest.param("10", marks=requires_qemu10),
                                     pytest.param("11", marks=requires_qemu11)])
def test_qemu10_held_fds_qmp_debugfs_agree(qemu, capsys, version):
    vm, types = paused(qemu, f"agree{version}", version)
    entry, fd, kvmstat_vm, totals = kvmstat_views(vm.pid)
    assert {c["source"] for c in entry["vcpus"]} == {"fd"}
    views = [fd, kvmstat_vm, totals, View("qmp", *qmp_raw(vm, types)),
             qmp_query_view(vm.qmp), debugfs_raw(vm.pid, types)[0], debugfs_ks(vm.pid)]
    rows, diffs = agreement(f"qemu{version}", vm, types, views, capsys)
    assert not diffs, diffs[:20]
    pairs = {r[5]: r for r in rows}
    for p in ("fd / qmp", "fd / qmp_query", "qmp / qmp_query", "fd summed / totals",
              "qmp / debugfs", "debugfs / debugfs_ks", "fd summed / debugfs"):
        assert frozenset(p.split(" / ")) in pairs, p
    # Every vCPU stat of both vCPUs, histograms included, fd against QMP.
    assert pairs[frozenset(("fd", "qmp"))][2] == 2 * len(fd.vcpus[0])


@requires_qemu
def test_qemu72_qmp_debugfs_agree(qemu, capsys):
    vm, types = paused(qemu, "agree72", "7.2")
    entry, via_qmp, kvmstat_vm, totals = kvmstat_views(
        vm.pid, "--qmp", vm.qmp, vcpu_name="kvmstat --qmp", vm_name="kvmstat --qmp vm")
    assert {c["source"] for c in entry["vcpus"]} == {"qmp"}
    entry, _, kvmstat_dbg, _ = kvmstat_views(vm.pid, vm_name="kvmstat debugfs")
    assert entry["source"] == "debugfs" and not entry["vcpus"]
    views = [via_qmp, kvmstat_vm, totals, kvmstat_dbg, View("qmp", *qmp_raw(vm, types)),
             qmp_query_view(vm.qmp), debugfs_raw(vm.pid, types)[0], debugfs_ks(vm.pid)]
    rows, diffs = agreement("qemu7.2", vm, types, views, capsys)
    assert not diffs, diffs[:20]
    pairs = {r[5] for r in rows}
    for p in ("kvmstat --qmp / qmp", "qmp / qmp_query", "kvmstat --qmp summed / totals",
              "qmp / debugfs", "kvmstat debugfs / debugfs", "debugfs / debugfs_ks"):
        assert frozenset(p.split(" / ")) in pairs, p
