# SPDX-License-Identifier: MIT
"""kvm_stats.plugin under Netdata run as Debian's netdata.service runs it.

See netdata_debian.py: user netdata, the unit's capability bounding set,
PrivateTmp, Debian's directories, and the plugin put in place by `make
install-netdata` itself. The charts are checked for a QEMU 10 VM (vCPU
stats fds; VM-wide stats from debugfs) and a QEMU 7.2 VM (no stats fds;
QMP, on a socket user netdata may open and PrivateTmp does not hide).
"""
import grp
import os
import shutil
import tempfile
import time

import pytest

from conftest import requires_qemu, requires_qemu10, wait_for
import netdata_debian
from netdata_debian import DebianNetdata

pytestmark = pytest.mark.skipif(netdata_debian.missing_reason() is not None,
                                reason=netdata_debian.missing_reason() or "")

CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH = 19, 2


@pytest.fixture
def debian_netdata(tmp_path):
    started = []

    def start(**kwargs):
        nd = DebianNetdata(tmp_path, **kwargs)
        started.append(nd)
        return nd.start()

    yield start
    for nd in started:
        nd.stop()


def listing(nd, prefix):
    """id, context and dimensions of the charts whose id starts with prefix."""
    charts = {k: v for k, v in nd.charts().items() if k.startswith(prefix)}
    lines = [f"{cid:34} {c['context']:28} {','.join(sorted(c['dimensions']))}"
             for cid, c in sorted(charts.items())]
    return charts, "\n".join(lines)


def last_values(nd, chart):
    data = nd.data(chart, after=-5, points=1, options="abs")
    return dict(zip(data["labels"][1:], data["data"][0][1:]))


def status_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def check_like_debian(nd):
    """The daemon and the plugin run as netdata.service would run them."""
    log = nd.install_log()
    assert ("installed /usr/lib/netdata/plugins.d/kvm_stats.plugin: package netdata-core "
            "installed Netdata's own apps.plugin there (dpkg -S apps.plugin)") in log, log
    assert "-rwxr-x--- 1 root netdata" in log, log
    assert "cap_dac_read_search,cap_sys_ptrace=ep" in log, log
    daemon = nd.process_status()
    netdata_uid = str(os.stat(nd.root / "var-lib").st_uid)
    assert daemon["Uid"].split()[:2] == [netdata_uid, netdata_uid]
    assert int(daemon["CapEff"], 16) == 0
    bound = int(daemon["CapBnd"], 16)
    assert bound & (1 << CAP_SYS_PTRACE) and bound & (1 << CAP_DAC_READ_SEARCH)
    assert bin(bound).count("1") == 6       # the unit's six
    pids = wait_for(lambda: nd.plugin_pids("kvm_stats.plugin"), what="kvm_stats.plugin pid")
    plugin = status_of(pids[0])
    assert plugin["Uid"].split()[:2] == [netdata_uid, netdata_uid]
    assert int(plugin["CapPrm"], 16) == (1 << CAP_SYS_PTRACE) | (1 << CAP_DAC_READ_SEARCH)


@requires_qemu10
def test_qemu10_vm_charts_under_netdata_as_debian_runs_it(qemu, debian_netdata):
    q = qemu("debq10", version="10")
    nd = debian_netdata()           # no kvm_stats.conf of ours: the stock one
    nd.wait_for_chart("kvm_debq10.exits", timeout=40)
    charts, text = listing(nd, "kvm_debq10.")
    print(f"\n/api/v1/charts, kvm_debq10.* (QEMU 10, pid {q.pid}):\n{text}")
    # The memory chart (debugfs, as user netdata) with every stat: the
    # stock file charts no dimension whose stat is still zero (pages_* on a
    # PVM host), so the QMP test below asks for them.
    # The stock defaults: VM charts of the default groups only (README "Settings").
    assert {c.split(".", 1)[1] for c in charts} <= {
        "exits", "page_faults", "halt", "halt_time", "halt_state", "interrupts",
        "emulation", "memory"}, sorted(charts)
    assert charts["kvm_debq10.exits"]["context"] == "kvm.vm.exits"
    check_like_debian(nd)
    # Real values: QEMU's vCPUs keep exiting under SeaBIOS.
    first = wait_for(lambda: last_values(nd, "kvm_debq10.exits").get("exits"),
                     timeout=10, what="exits")
    time.sleep(2.5)
    assert last_values(nd, "kvm_debq10.exits")["exits"] > 0 < first
    assert "kvm_stats.plugin:" not in nd.log(), nd.log()[-2000:]


@pytest.fixture
def qmp_dir():
    """A directory for QMP sockets that netdata.service's PrivateTmp does not
    hide (not /tmp) and that group netdata may enter."""
    d = tempfile.mkdtemp(prefix="kvmstats-qmp-", dir="/run")
    os.chown(d, 0, grp.getgrnam("netdata").gr_gid)
    os.chmod(d, 0o750)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@requires_qemu
def test_qemu72_vm_through_qmp_under_netdata_as_debian_runs_it(qemu, debian_netdata, qmp_dir):
    sock = f"{qmp_dir}/debq72.qmp"
    q = qemu("debq72", version="7.2", args=("-qmp", f"unix:{sock},server=on,wait=off"))
    wait_for(lambda: os.path.exists(sock), what="the second QMP socket")
    # connect() needs write permission on the socket: group netdata gets it.
    os.chown(sock, 0, grp.getgrnam("netdata").gr_gid)
    os.chmod(sock, 0o660)
    nd = debian_netdata(plugin_config=f"[kvm_stats]\n    qmp socket = {sock}\n"
                        "per vcpu charts = yes\nzero dimensions = yes\n")
    nd.wait_for_chart("kvm_debq72.vcpu1_exits", timeout=40)
    nd.wait_for_chart("kvm_debq72.memory", timeout=20)
    charts, text = listing(nd, "kvm_debq72.")
    print(f"\n/api/v1/charts, kvm_debq72.* (QEMU 7.2 via QMP, pid {q.pid}):\n{text}")
    check_like_debian(nd)
    first = wait_for(lambda: last_values(nd, "kvm_debq72.exits").get("exits"),
                     timeout=10, what="exits")
    assert first > 0
    assert set(charts["kvm_debq72.memory"]["dimensions"]) == {"pages_4k", "pages_2m", "pages_1g"}
