# SPDX-License-Identifier: MIT
"""The QMP path end to end, on any host: a QEMU played by fakevmm.py.

tests/fixtures/fakevmm.py answers QMP from a real QEMU's captured answers
(tests/fixtures/qmp/), its counters growing at a known pace, and logs what
it sent; tests/integration/fakeproc.py lists it as a VMM in a fake /proc
tree that the front ends read through KVMSTATS_PROC_ROOT. No /dev/kvm is
needed, so on a host whose kernel has no KVM (this kind of host, when its
kernel is itself a PVM guest) kvmstat and the Netdata plugin inside a real
Netdata 1.37 are still run and compared with what QEMU said, exactly where
the values can be (kvmstat's last sample against the peer's last answer),
and within 10 % where Netdata's per-second interpolation stands between.
"""
import json
import subprocess

import pytest

from conftest import BUILD, FIXTURES, requires_root, wait_for
from fakeqemu import FakeQemus
from daemons import collectd_missing_reason, daemon_factory
from netdata_daemon import netdata_factory, netdata_missing_reason

KVMSTAT = str(BUILD / "kvmstat")
PLUGIN = str(BUILD / "kvm_stats.plugin")
CPUS = json.loads((FIXTURES / "qmp/query-cpus-fast.json").read_text())["return"]
QOM = {c["cpu-index"]: c["qom-path"] for c in CPUS}


@pytest.fixture
def fake_qemu():
    """Starts fakevmm.py --no-vm QEMUs named as asked, in one fake /proc;
    stops them by pid."""
    with FakeQemus() as qemus:
        yield qemus


def kvmstat_json(fake_qemu, *args):
    r = subprocess.run([KVMSTAT, "--json", *args], env=fake_qemu.env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()], r.stderr


def test_kvmstat_reports_exactly_what_qemu_said(fake_qemu):
    """kvmstat's last sample against the peer's last answer, every scalar
    of every vCPU and of the VM; no QMP exchange happens after it."""
    q = fake_qemu.start("web1", "--tick", 3, "--rate", 1000)
    reports, _ = kvmstat_json(fake_qemu, "--qmp", q.sock, "-s", "/.*/", "1", "3")
    assert len(reports) == 3
    [vm] = reports[-1]["vms"]
    assert vm["name"] == "web1" and vm["pid"] == q.pid and vm["source"] == "qmp"
    sent = q.sent()
    compared = 0
    for vcpu in vm["vcpus"]:
        assert vcpu["source"] == "qmp"
        said = sent["vcpu"][QOM[vcpu["vcpu"]]]
        for name, stat in vcpu["stats"].items():
            if isinstance(said[name], bool):
                assert stat["value"] == int(said[name]), name
            elif isinstance(said[name], int):
                assert stat["value"] == said[name], name
                compared += 1
    for name, stat in vm["stats"].items():
        if isinstance(sent["vm"].get(name), int) and not isinstance(sent["vm"][name], bool):
            assert stat["value"] == sent["vm"][name], name
            compared += 1
    assert compared > 80, compared
    # Each sample is one exchange: two query-stats; the counters grow
    # by tick per query plus the pace, so deltas are at least 2 x tick.
    for vcpu in vm["vcpus"]:
        assert vcpu["stats"]["exits"]["delta"] >= 6


@requires_root
@pytest.mark.skipif(netdata_missing_reason() is not None, reason=netdata_missing_reason() or "")
def test_netdata_charts_a_qemu_it_reads_over_qmp(fake_qemu, tmp_path):
    """The plugin inside Debian's Netdata 1.37, as user netdata, without
    file capabilities (secure_getenv() would ignore the fake /proc with
    them; QMP needs none): charts, labels and the rate QEMU's counters
    keep, per VM and per vCPU."""
    rate = 500
    q = fake_qemu.start("db1", "--rate", rate)
    conf = (f"[kvm_stats]\nrescan every = 1\nper vcpu charts = yes\nqmp socket = {q.sock}\n")
    with netdata_factory(tmp_path) as start:
        nd = start(plugins={"kvm_stats.plugin": PLUGIN}, plugin_configs={"kvm_stats.conf": conf},
                   caps=False, env={"KVMSTATS_PROC_ROOT": fake_qemu.proc_root})
        chart = nd.wait_for_chart("kvm_db1.vcpu1_exits", timeout=40)
        assert chart["context"] == "kvm.vcpu.exits"
        labels = nd.charts()["kvm_db1.exits"]["chart_labels"]
        assert labels["vm_name"] == "db1" and labels["vm_pid"] == str(q.pid)

        def settled(chart_id, seconds=5, history=10):
            def ready():
                info = nd.chart(chart_id)
                return info and info["last_entry"] - info["first_entry"] >= history
            wait_for(ready, timeout=history + 30, step=1, what=f"{history}s of {chart_id}")
            d = nd.data(chart_id, after=-(seconds + 1), points=seconds + 1)
            col = d["labels"].index("exits")
            return [row[col] for row in d["data"][1:]]

        # Both vCPUs' counters grow at `rate` a second (plus 2 per query).
        for r in settled("kvm_db1.exits"):
            assert abs(r - 2 * rate) <= 2 * rate * 0.10, r
        for r in settled("kvm_db1.vcpu0_exits", history=1):
            assert abs(r - rate) <= rate * 0.10, r


@requires_root
@pytest.mark.skipif(collectd_missing_reason() is not None,
                    reason=collectd_missing_reason() or "")
def test_collectd_writes_what_qemu_said(fake_qemu, tmp_path):
    """kvm_stats.so inside Debian's collectd 5.12 reading two QEMUs over
    QMP: one whose counters stand still (every value written must be
    QEMU's own, exactly), one whose counters grow at a known pace (the
    raw derive values written grow at it)."""
    still = fake_qemu.start("still1")
    moving = fake_qemu.start("moving1", "--rate", 500)
    vcpu_said = {c["cpu-index"]: {} for c in CPUS}
    answer = json.loads((FIXTURES / "qmp/query-stats-vcpu.json").read_text())["return"]
    for entry in answer:
        index = next(c["cpu-index"] for c in CPUS if c["qom-path"] == entry["qom-path"])
        vcpu_said[index] = {s["name"]: s["value"] for s in entry["stats"]}
    block = ("LoadPlugin kvm_stats\n<Plugin kvm_stats>\n  PerVCPU true\n"
             f'  QMPSocket "{still.sock}"\n  QMPSocket "{moving.sock}"\n</Plugin>\n')
    with daemon_factory(tmp_path) as d:
        cd = d.collectd(plugin_dir_extra=str(BUILD / "kvm_stats.so"), debian_plugins=(),
                        plugin_blocks=block, csv=True, env={"KVMSTATS_PROC_ROOT":
                                                            fake_qemu.proc_root})

        def rows(vm, vcpu, stat):
            return cd.csv_rows(f"kvm_stats-{vm}-vcpu{vcpu}", f"derive-{stat}")
        wait_for(lambda: len(rows("moving1", 0, "exits")) >= 6, timeout=40,
                 what="six reads of moving1")
        checked = 0
        for vcpu in (0, 1):
            for stat in ("exits", "insn_emulation", "halt_wakeup", "signal_exits"):
                values = {r["value"] for r in rows("still1", vcpu, stat)}
                assert values == {vcpu_said[vcpu][stat]}, (vcpu, stat, values)
                checked += 1
        moved = rows("moving1", 1, "exits")[-5:]
        pace = (moved[-1]["value"] - moved[0]["value"]) / (moved[-1]["epoch"] - moved[0]["epoch"])
        assert abs(pace - 500) <= 50, moved
        assert checked == 8
