# SPDX-License-Identifier: MIT
"""Processes, VMs and their fds vanishing while kvmstat and the Netdata
plugin scan /proc and read stats fds.

Around one stable VM with known counts, a churn loop keeps starting short
processes (their /proc entries come and go during every walk) and
short-lived test VMs: some exit by themselves as soon as their vCPUs halt,
some are SIGKILLed or SIGTERMed at random moments (before, during or after
they create their stats fds, while a scan may be listing or taking them),
and some are left as zombies for a while. Each front end keeps running
through it: the stable VM's values stay exactly testvm's own counts at
every interval, a vanished VM is never reported under another pid or with
more exits than it made, it leaves the output, and its fds are closed.
"""
import json
import os
import random
import select
import shlex
import signal
import subprocess
import time

import pytest

from conftest import BUILD, kvm_links, requires_kvm, wait_for
from test_netdata_plugin import KEYWORDS_137, WORDS, plugin  # noqa: F401 (fixture)

KVMSTAT = str(BUILD / "kvmstat")
TESTVM = str(BUILD / "tests/fixtures/testvm")
CHURN_SECONDS = 12

pytestmark = requires_kvm


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Ephemeral:
    """A short-lived testvm: how it ends, and the most exits it can make."""

    def __init__(self, tmp_path, i, rng):
        self.name = f"vanish-eph-{i}"
        self.kind = rng.choice(["exits", "kill-early", "kill-halted", "kill-steady", "term"])
        self.k = 1000 + i
        args = ["--vcpus", rng.choice([1, 2]), "--hold", rng.choice(["vcpu", "vm,vcpu"])]
        if self.kind == "kill-steady":
            self.k = None       # no bound: it exits forever
            args += ["--steady", 300]
        else:
            args += ["--mmio", self.k]
        if self.kind == "exits":
            args += ["--exit-when-done"]
        # Counts go to a file nobody reads: testvm needs a path.
        argv = [TESTVM, "--counts", str(tmp_path / f"eph-{i}.json"), *map(str, args),
                "-name", f"guest={self.name},debug-threads=on"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        delay = {"kill-early": rng.uniform(0, 0.02), "kill-halted": rng.uniform(0.1, 2.5),
                 "kill-steady": rng.uniform(0.2, 2.0), "term": rng.uniform(0, 1.0)}
        self.deadline = time.monotonic() + delay.get(self.kind, 30)
        self.reap_after = time.monotonic() + rng.uniform(0, 2)   # a zombie until then

    def tick(self, now):
        if self.proc.returncode is None and now >= self.deadline:
            sig = signal.SIGTERM if self.kind == "term" else signal.SIGKILL
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
        if now >= self.reap_after:
            self.proc.poll()

    def finish(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)


def churn(tmp_path, seconds, drain, seed):
    """Starts and ends processes and VMs for `seconds`, calling drain()
    between steps so the front end's pipe never fills. Returns the
    ephemeral VMs, all ended and reaped."""
    rng = random.Random(seed)
    vms, shorts, i = [], [], 0
    end = time.monotonic() + seconds
    next_vm = time.monotonic()
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            # Plain short processes: /proc entries that vanish during a walk.
            for _ in range(4):
                shorts.append(subprocess.Popen(["sleep", f"{rng.uniform(0, 0.3):.3f}"]))
            shorts = [p for p in shorts if p.poll() is None]
            if now >= next_vm:
                vms.append(Ephemeral(tmp_path, i, rng))
                i += 1
                next_vm = now + rng.uniform(0.05, 0.4)
            for vm in vms:
                vm.tick(now)
            drain()
            time.sleep(0.05)
    finally:
        for p in shorts:
            p.wait(timeout=10)
        for vm in vms:
            vm.finish()
    return vms


class JsonLines:
    """A running `kvmstat --json 1`, its stdout read without blocking."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([KVMSTAT, "--json", *map(str, args), "1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.docs, self.partial = [], b""

    def drain(self, seconds=0.0):
        deadline = time.monotonic() + seconds
        fd = self.proc.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], 0.05 if seconds else 0)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return
                *lines, self.partial = (self.partial + chunk).split(b"\n")
                self.docs.extend(json.loads(line) for line in lines if line)
            elif time.monotonic() >= deadline:
                return


def check_vanished(vms, seen):
    """seen: {pid: [(name, [mmio_exits per vCPU])]} as a front end reported
    them. A VM is only ever reported under its own pid, with at most the
    exits it made."""
    by_name = {vm.name: vm for vm in vms}
    for pid, reports in seen.items():
        for name, mmio in reports:
            vm = by_name[name]
            assert vm.pid == pid, f"{name} (pid {vm.pid}) reported as pid {pid}"
            if vm.k is not None:
                assert all(m <= vm.k for m in mmio), (name, vm.kind, mmio)


@pytest.fixture
def stable(testvm):
    k = 4321
    vm = testvm("--vcpus", 2, "--mmio", k, "--hold", "vm,vcpu", name="vanish-stable")
    truth = vm.counts()["vms"][0]["vcpus"]
    assert [c["mmio"] for c in truth] == [k, k] and [c["hlt"] for c in truth] == [1, 1]
    return vm, truth


def test_kvmstat_through_vanishing_vms(tmp_path, stable):
    vm, truth = stable
    f = JsonLines("--name", "/^vanish-/")
    try:
        wait_for(lambda: f.drain(0.1) or len(f.docs) >= 2, timeout=10, what="two intervals")
        fds_before = fd_count(f.proc.pid)
        vms = churn(tmp_path, CHURN_SECONDS, f.drain, seed=os.getpid())
        churned = len(f.docs)
        # Two full intervals after the last ephemeral VM was reaped.
        wait_for(lambda: f.drain(0.1) or len(f.docs) >= churned + 3, timeout=10,
                 what="three more intervals")
        assert f.proc.poll() is None, f.proc.stderr.read()
        after = {"links": kvm_links(f.proc.pid), "fds": fd_count(f.proc.pid)}
    finally:
        if f.proc.poll() is None:
            f.proc.send_signal(signal.SIGTERM)
        f.proc.wait(timeout=10)
    stderr = f.proc.stderr.read().decode(errors="replace")

    assert stderr == ""
    seen = {}
    for doc in f.docs:
        entries = [e for e in doc["vms"] if e["pid"] == vm.pid]
        assert len(entries) == 1, doc
        stable_entry = entries[0]
        assert stable_entry["name"] == "vanish-stable"
        assert [c["vcpu"] for c in stable_entry["vcpus"]] == [0, 1]
        for c, counted in zip(stable_entry["vcpus"], truth):
            assert c["stats"]["mmio_exits"]["value"] == counted["mmio"]
            assert c["stats"]["halt_exits"]["value"] == counted["hlt"]
            assert c["stats"]["mmio_exits"]["delta"] in (0, None)
        for e in doc["vms"]:
            if e["name"].startswith("vanish-eph-"):
                seen.setdefault(e["pid"], []).append(
                    (e["name"], [c["stats"]["mmio_exits"]["value"] for c in e["vcpus"]]))
    check_vanished(vms, seen)
    # The churn did reach kvmstat: VMs came and went under its eyes.
    assert len(vms) >= 15 and len(seen) >= 4, (len(vms), len(seen))
    for doc in f.docs[-2:]:
        assert [e["name"] for e in doc["vms"]] == ["vanish-stable"]
    assert after["links"] == ["anon_inode:kvm-vcpu-stats:0", "anon_inode:kvm-vcpu-stats:1",
                              "anon_inode:kvm-vm-stats"]
    assert after["fds"] == fds_before


def test_netdata_plugin_through_vanishing_vms(tmp_path, stable, plugin):  # noqa: F811
    vm, truth = stable
    p = plugin(config="include vm = /^vanish-/\n")
    p.read_until(lambda p: "kvm_vanish_stable.vcpu1_exits" in p.last_values())
    fds_before = fd_count(p.proc.pid)
    vms = churn(tmp_path, CHURN_SECONDS, lambda: p.read_for(0.01), seed=os.getpid())
    p.read_for(3.5)
    assert p.proc.poll() is None, p.proc.stderr.read()
    links, fds_after = kvm_links(p.proc.pid), fd_count(p.proc.pid)

    for line in p.lines:
        if line:
            w = shlex.split(line)
            assert w[0] in KEYWORDS_137 and len(w) in WORDS[w[0]], line
    assert "DISABLE" not in p.lines
    # Every value the stable VM got, at every iteration, is exact.
    sets, chart = [], None
    for w in p.words():
        if w[0] == "BEGIN":
            chart = w[1]
        elif w[0] == "SET" and chart in ("kvm_vanish_stable.exits",
                                         "kvm_vanish_stable.vcpu0_exits",
                                         "kvm_vanish_stable.vcpu1_exits"):
            sets.append((chart, w[1], int(w[3])))
    want = {"kvm_vanish_stable.exits": (2 * truth[0]["mmio"], 2),
            "kvm_vanish_stable.vcpu0_exits": (truth[0]["mmio"], 1),
            "kvm_vanish_stable.vcpu1_exits": (truth[1]["mmio"], 1)}
    assert len(sets) > 3 * CHURN_SECONDS
    for chart, dim, value in sets:
        if dim == "mmio_exits":
            assert value == want[chart][0], (chart, value)
        elif dim == "halt_exits":
            assert value == want[chart][1], (chart, value)

    # Each ephemeral VM: charted under its own pid and name, its vCPUs
    # never above their count, and every chart it got is obsolete by now.
    labels, chart, seen = {}, None, {}
    for w in p.words():
        if w[0] in ("CHART", "BEGIN"):
            chart = w[1]
        elif w[0] == "CLABEL":
            labels.setdefault(chart, {})[w[1]] = w[2]
        elif w[0] == "SET" and chart.startswith("kvm_vanish_eph_") and w[1] == "mmio_exits" \
                and "_exits" in chart and ".vcpu" in chart:
            pid, name = int(labels[chart]["vm_pid"]), labels[chart]["vm_name"]
            seen.setdefault(pid, []).append((name, [int(w[3])]))
    for c, words in p.charts().items():
        if c.startswith("kvm_vanish_eph_"):
            assert "obsolete" in words, c
            type_id = "kvm_" + labels[c]["vm_name"].replace("-", "_")
            assert c.split(".")[0] in (type_id, f"{type_id}_{labels[c]['vm_pid']}"), c
    check_vanished(vms, seen)
    assert len(vms) >= 15 and len(seen) >= 4, (len(vms), len(seen))
    assert links == ["anon_inode:kvm-vcpu-stats:0", "anon_inode:kvm-vcpu-stats:1",
                     "anon_inode:kvm-vm-stats"]
    assert fds_after == fds_before
    assert all("obsolete" not in w for c, w in p.charts().items()
               if c.startswith("kvm_vanish_stable."))
