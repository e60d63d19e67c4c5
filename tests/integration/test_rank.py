# SPDX-License-Identifier: MIT
"""One rank: a better source that comes later takes over at the next rescan.

A VMM that opens its VM stats fd only after the first rescan (testvm
--vm-stats-after 3: KVM_GET_STATS_FD on the VM fd, in the VMM, 3 s after
start) first has its VM-wide stats from debugfs (on this kind of host
under lockdown only the instant files are readable, which is still enough
for debugfs to take the slot), then, within one rescan of the fd's
appearance, from the fd: never from two sources at once, never with an
interval without them, and the vCPU counts exact against what testvm saw.

Needs root (debugfs), /dev/kvm (SKIP otherwise); mounts debugfs if nobody
has (conftest.mount_debugfs, left mounted).
"""
import json
import subprocess

import pytest

from conftest import BUILD, debugfs_missing_reason, mount_debugfs
from test_netdata_plugin import plugin  # noqa: F401 (fixture)

KVMSTAT = str(BUILD / "kvmstat")
K = 321         # MMIO writes per vCPU: exact on every backend (KVM_STATS_FACTS)
DELAY = 3       # seconds until testvm opens its VM stats fd
PAGES = ("pages_4k", "pages_2m", "pages_1g")


pytestmark = pytest.mark.skipif(debugfs_missing_reason() is not None,
                                reason=debugfs_missing_reason() or "")


@pytest.fixture
def debugfs():
    reason = mount_debugfs()
    if reason:
        pytest.skip(reason)


def late_vm(testvm, name):
    return testvm("--vcpus", 2, "--mmio", K, "--vm-stats-after", DELAY, name=name)


def vm_entry(doc, pid):
    return next(vm for vm in doc["vms"] if vm["pid"] == pid)


def opened_at(vm):
    """CLOCK_REALTIME at which testvm held its VM stats fd (after the ioctl)."""
    c = vm.counts()["vms"][0]
    assert c["vm_stats_fd"] >= 0 and c["vm_stats_fd_at"] > 0, c
    return c["vm_stats_fd_at"]


def test_late_vm_stats_fd_takes_over_from_debugfs(testvm, debugfs):
    vm = late_vm(testvm, "rank-late")
    intervals = DELAY + 5
    proc = subprocess.run([KVMSTAT, "--json", "--pid", str(vm.pid), "1", str(intervals)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines() if line]
    assert len(docs) == intervals
    at = opened_at(vm)
    counted = vm.counts()["vms"][0]["vcpus"]
    entries = [vm_entry(d, vm.pid) for d in docs]
    sources = [e["source"] for e in entries]

    # debugfs took the VM-wide slot first: the fd was not there yet.
    before = [i for i, d in enumerate(docs) if d["time"] < at]
    assert before, f"kvmstat printed nothing before the fd appeared: {sources}"
    assert sources[before[0]] == "debugfs", sources
    assert set(PAGES) <= set(entries[before[0]]["stats"])
    # Doc k is printed after the fd appeared, so the rescan of doc k + 1
    # ran after it too: from then on the fd serves, and never debugfs again.
    k = next(i for i, d in enumerate(docs) if d["time"] >= at)
    assert k + 1 < len(docs), sources
    switch = sources.index("fd")
    assert switch <= k + 1, f"fd appeared before doc {k}, served from doc {switch}: {sources}"
    assert sources == ["debugfs"] * switch + ["fd"] * (len(sources) - switch), sources

    for i, e in enumerate(entries):
        # No interval without VM-wide stats, none from two sources: one
        # holder, and no name both VM-wide and a vCPU's.
        assert e["stats"] is not None and "error" not in e, (i, e)
        vm_names = set(e["stats"])
        assert len(e["vcpus"]) == 2
        for v, c in zip(e["vcpus"], counted):
            assert v["source"] == "fd"
            assert not vm_names & set(v["stats"]), (i, vm_names & set(v["stats"]))
            # Exact where every backend counts exactly.
            assert v["stats"]["mmio_exits"]["value"] == c["mmio"] == K
            assert v["stats"]["halt_exits"]["value"] == c["hlt"] == 1
        # No change is computed across two holders; counters never go back.
        for name, s in e["stats"].items():
            if i == switch:
                assert s["delta"] is None, name
            elif s["type"] == "cumulative" and s["delta"] is not None:
                assert s["delta"] >= 0, (i, name)
    # The fd has what debugfs could not give (under lockdown, counters);
    # the halted VM's mapped memory reads the same through both.
    first_fd, last_debugfs = entries[switch]["stats"], entries[switch - 1]["stats"]
    assert "remote_tlb_flush" in first_fd
    assert first_fd["remote_tlb_flush"]["type"] == "cumulative"
    for name in PAGES:
        assert first_fd[name]["value"] == last_debugfs[name]["value"], name

    out = subprocess.run([KVMSTAT, "--sources", "--pid", str(vm.pid)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    row = next(line.split() for line in out.splitlines()[1:] if line.split()[0] == str(vm.pid))
    assert row[3:5] == ["fd", "fd"], out       # vcpu-src, vm-src


def test_netdata_charts_follow_the_takeover(testvm, debugfs, plugin):  # noqa: F811
    """The plugin hears vm_changed: the VM charts are defined again with the
    fd's stats, no dimension is set twice in one update, no counter goes
    back, and the mapped memory has a value at every update."""
    vm = late_vm(testvm, "rank-nd")
    p = plugin(config="include vm = /^rank-nd$/\n")
    p.read_until(lambda p: vm.counts()["vms"][0]["vm_stats_fd"] >= 0, timeout=DELAY + 10)
    p.read_for(3.5)
    assert p.stop() == 0, p.stderr

    words = p.words()
    dims = list(_dimensions(words))
    incremental = {(c, w[1]) for c, w in dims if w[3] == "incremental"}
    # Under lockdown debugfs has no counter: only the fd brings this one.
    assert any(c.startswith("kvm_rank_nd.") and w[1] == "remote_tlb_flush"
               for c, w in dims), "the VM stats fd's counters were never charted"

    blocks = p.blocks("kvm_rank_nd.memory")
    assert len(blocks) >= 3
    last = {}
    for i, b in enumerate(blocks):
        # The mapped memory has a value at every update, through the switch.
        assert set(PAGES) <= set(b["kvm_rank_nd.memory"]), (i, b["kvm_rank_nd.memory"])
        for c, values in b.items():
            for d, value in values.items():
                if (c, d) in incremental and (c, d) in last:
                    assert value >= last[(c, d)], (i, c, d, value, last[(c, d)])
                last[(c, d)] = value
    # SET twice for one dimension in one update would be two sources.
    begun, sets = None, set()
    for w in words:
        if w[0] == "BEGIN":
            begun, sets = w[1], set()
        elif w[0] == "SET" and begun:
            assert w[1] not in sets, (begun, w[1])
            sets.add(w[1])


def _dimensions(words):
    """(chart, DIMENSION words) in the order printed."""
    chart = None
    for w in words:
        if w[0] == "CHART":
            chart = w[1]
        elif w[0] == "DIMENSION":
            yield chart, w
