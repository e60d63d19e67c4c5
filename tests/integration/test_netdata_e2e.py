# SPDX-License-Identifier: MIT
"""kvm_stats.plugin inside a real Netdata 1.37 (Debian), on real KVM VMs.

Netdata is started by the test with its own config, plugins directory and
loopback port, runs as user netdata, and finds the plugin by itself; the
plugin is installed as a package would (root:netdata 0750 with file
capabilities). What Netdata's API shows is compared with the test VMs.
"""
import pwd

import pytest

from conftest import BUILD, requires_kvm, requires_root, wait_for
from netdata_daemon import netdata_factory, netdata_missing_reason

PLUGIN = str(BUILD / "kvm_stats.plugin")
ACQUIRE_CAPS = (1 << 19) | (1 << 2)  # CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH

pytestmark = [
    requires_kvm,
    requires_root,
    pytest.mark.skipif(netdata_missing_reason() is not None,
                       reason=netdata_missing_reason() or ""),
]

# Per-vCPU charts, histograms and stats still at zero are off by default;
# these tests read them.
CONFIG = ("[kvm_stats]\nrescan every = 1\nper vcpu charts = yes\nhistograms = yes\n"
          "zero dimensions = yes\n")


@pytest.fixture
def netdata(tmp_path):
    with netdata_factory(tmp_path) as start:
        yield start


def start_netdata(netdata, **kwargs):
    return netdata(plugins={"kvm_stats.plugin": PLUGIN},
                   plugin_configs={"kvm_stats.conf": CONFIG}, **kwargs)


def settled_rates(nd, chart, dim, host=None, history=10, seconds=5):
    """Per-second values of dim over complete seconds, once chart has
    `history` seconds of data (its first seconds are interpolated from
    before the first sample), newest second left out (still filling)."""
    def ready():
        info = nd.chart(chart, host=host)
        return info and info["last_entry"] - info["first_entry"] >= history
    wait_for(ready, timeout=history + 30, step=1, what=f"{history}s of {chart}")
    d = nd.data(chart, after=-(seconds + 1), points=seconds + 1, host=host)
    col = d["labels"].index(dim)
    return [row[col] for row in d["data"][1:]]


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_charts_contexts_labels_and_rate(testvm, netdata):
    rate, vcpus = 400, 2
    uuid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    vm = testvm("--vcpus", vcpus, "--steady", rate, "--hold", "vm,vcpu",
                name="e2e", uuid=uuid, state="running")
    nd = start_netdata(netdata)
    nd.wait_for_chart("kvm_e2e.vcpu1_exits", timeout=30)

    charts = nd.charts()
    exits = charts["kvm_e2e.exits"]
    assert exits["context"] == "kvm.vm.exits"
    assert exits["type"] == "kvm_e2e"
    assert exits["family"] == "exits"
    assert exits["units"] == "exits/s"
    assert exits["plugin"] == "kvm_stats.plugin" and exits["module"] == "vm"
    labels = exits["chart_labels"]
    assert labels["vm_name"] == "e2e"
    assert labels["vm_pid"] == str(vm.pid)
    assert labels["vm_uuid"] == uuid
    vcpu1 = charts["kvm_e2e.vcpu1_exits"]
    assert vcpu1["context"] == "kvm.vcpu.exits"
    assert vcpu1["chart_labels"]["vcpu"] == "1"
    assert charts["kvm_e2e.memory"]["units"] == "MiB"
    assert charts["kvm_e2e.halt_wait_hist"]["chart_type"] == "stacked"

    # The rate Netdata computes from the plugin's counters is the pace the
    # test VM keeps: within 10 %.
    rows = settled_rates(nd, "kvm_e2e.exits", "mmio_exits")
    assert len(rows) == 5
    for r in rows:
        assert abs(r - rate * vcpus) <= rate * vcpus * 0.10, rows
    for r in settled_rates(nd, "kvm_e2e.vcpu0_exits", "mmio_exits", history=1):
        assert abs(r - rate) <= rate * 0.10

    context = wait_for(lambda: (nd.context("kvm.vm.exits") or {}).get("charts", {}).get("kvm_e2e.exits"),
                       timeout=20, step=0.5, what="kvm.vm.exits context")
    assert context["labels"]["vm_name"] == "e2e"


def test_plugin_process_privileges(testvm, netdata):
    testvm("--mmio", 1, name="privs")
    nd = start_netdata(netdata)
    nd.wait_for_chart("kvm_privs.exits", timeout=30)
    [pid] = nd.plugin_pids("kvm_stats.plugin")
    status = proc_status(pid)
    netdata_uid = pwd.getpwnam("netdata").pw_uid
    assert int(status["Uid"].split()[0]) == netdata_uid
    assert int(status["CapPrm"], 16) == ACQUIRE_CAPS
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapInh"], 16) == 0
    assert int(status["CapAmb"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"


def test_vm_exit_makes_its_charts_obsolete(testvm, netdata):
    keeper = testvm("--mmio", 1, name="keeper")
    vm = testvm("--vcpus", 2, "--mmio", 5, "--hold", "vm,vcpu", name="leaving")
    nd = start_netdata(netdata)
    nd.wait_for_chart("kvm_leaving.vcpu1_exits", timeout=30)
    ids = [c for c in nd.charts() if c.startswith("kvm_leaving.")]
    assert vm.stop() == 0

    # Obsolete charts leave /api/v1/charts; the context keeps them, not collected.
    wait_for(lambda: not any(c.startswith("kvm_leaving.") for c in nd.charts()),
             timeout=20, step=0.5, what="obsolete charts to leave /api/v1/charts")
    assert "kvm_keeper.exits" in nd.charts()

    def not_collected():
        ctx = nd.context("kvm.vm.exits") or {}
        chart = ctx.get("charts", {}).get("kvm_leaving.exits")
        return chart is not None and chart.get("collected") is False
    wait_for(not_collected, timeout=30, step=0.5, what="kvm_leaving.exits not collected")
    assert ids and keeper.pid
    assert not nd.stray_processes


def test_streaming_child_to_parent(testvm, netdata):
    vm = testvm("--vcpus", 1, "--steady", 200, name="streamed", state="running")
    key = "6a1c1b0e-3f1e-4b8e-9a4c-0d5e2b7f9c11"
    parent = netdata(hostname="kvmtest-parent", accept_stream_key=key)
    start_netdata(netdata, hostname="kvmtest-child", stream_to=(parent.port, key))
    chart = parent.wait_for_chart("kvm_streamed.exits", timeout=40, host="kvmtest-child")
    assert chart["context"] == "kvm.vm.exits"
    assert chart["chart_labels"]["vm_name"] == "streamed"

    rows = settled_rates(parent, "kvm_streamed.exits", "mmio_exits", host="kvmtest-child",
                         seconds=3)
    for r in rows:
        assert abs(r - 200) <= 20, rows
    assert vm.pid
