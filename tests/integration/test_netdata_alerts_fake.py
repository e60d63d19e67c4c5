# SPDX-License-Identifier: MIT
"""conf/netdata/health.d/kvm_stats.conf in a real Netdata 1.37, on QEMUs played by fakevmm.py.

No KVM is needed: tests/fixtures/fakevmm.py answers QMP with counters that
grow at a pace the test sets (--rate) and switches between that pace and a
burst (--burst-factor, SIGUSR1); fakeproc.py lists each as a VMM. The
plugin runs inside Debian's Netdata 1.37 with the stock alerts, their
30-minute history windows shortened to a minute (kvm_health.py says how;
only the windows change). Three VMs:

- alertboot bursts at 30,000 exits and emulated instructions a second for
  its first 20 seconds (a boot), then idles at 20/s: nothing is raised;
- alertbusy runs at 10,000 exits/s from its start, steadily: nothing;
- alertstorm idles at 20/s, then bursts to 30,000/s once it has its
  history: kvm_vm_exit_storm and kvm_vm_emulation_rate are raised, and
  clear once it idles again.
"""
import json
import signal
import time

import pytest

from conftest import BUILD, requires_root, wait_for
from fakeqemu import FakeQemus
from kvm_health import alarm_of, assert_stock_windows, remove, scaled_health, wait_status
from netdata_daemon import netdata_factory, netdata_missing_reason

PLUGIN = str(BUILD / "kvm_stats.plugin")
RAISED = ("WARNING", "CRITICAL")
GATE_S = 60

pytestmark = [
    requires_root,
    pytest.mark.skipif(netdata_missing_reason() is not None,
                       reason=netdata_missing_reason() or ""),
]


@pytest.fixture
def fakes():
    with FakeQemus(prefix="kvmstats-alertqmp-") as qemus:
        yield qemus


@pytest.fixture
def stock_health():
    stock = scaled_health(gate_s=GATE_S, baseline_s=60)
    yield stock
    remove(stock)




def raised_in_log(nd, prefix):
    return [(e["chart"], e["name"], e["status"]) for e in nd.api("/api/v1/alarm_log")
            if e["chart"].startswith(prefix) and e["status"] in RAISED]


def test_the_stock_file_keeps_its_30_minute_windows():
    assert_stock_windows()


def test_storm_raised_boot_and_busy_silent(fakes, stock_health, tmp_path):
    boot = fakes.start("alertboot", "--rate", 10, "--burst-factor", 1500)
    boot.send_signal(signal.SIGUSR1)             # booting: 15,000/s per vCPU
    fakes.start("alertbusy", "--rate", 5000)           # 10,000 exits/s, all along
    storm = fakes.start("alertstorm", "--rate", 10, "--burst-factor", 1500)
    conf = f"[kvm_stats]\nrescan every = 1\nqmp socket = {fakes.sockdir}/*.qmp\n"
    with netdata_factory(tmp_path) as start:
        nd = start(plugins={"kvm_stats.plugin": PLUGIN},
                   plugin_configs={"kvm_stats.conf": conf},
                   caps=False, env={"KVMSTATS_PROC_ROOT": fakes.proc_root},
                   netdata_conf={"health": {"enabled": True, "run at least every seconds": 1},
                                 "directories": {"stock health config": stock_health}})
        for vm in ("alertboot", "alertbusy", "alertstorm"):
            nd.wait_for_chart(f"kvm_{vm}.exits", timeout=40)
        t0 = time.monotonic()
        time.sleep(20)
        boot.send_signal(signal.SIGUSR1)         # booted: 10/s per vCPU
        # Linked and judged, through the boot and past the gate.
        a = wait_status(nd, "kvm_alertstorm.exits", "kvm_vm_exit_storm", ("CLEAR",), 60)
        assert a["units"] == "%"
        assert raised_in_log(nd, "kvm_alert") == []      # the boot, and busy from the start
        wait_for(lambda: (alarm_of(nd, "kvm_alertstorm.exits", "kvm_vm_exits_history")
                          or {}).get("value") == 1, timeout=GATE_S + 60, step=1,
                 what="the storm VM's history gate open")
        history_opened = time.monotonic() - t0
        time.sleep(max(0, GATE_S + 40 - (time.monotonic() - t0)))   # a baseline of 20/s
        assert raised_in_log(nd, "kvm_alert") == []
        for vm in ("alertboot", "alertbusy"):
            assert alarm_of(nd, f"kvm_{vm}.exits", "kvm_vm_exits_history")["value"] == 1
        assert alarm_of(nd, "kvm_alertbusy.exits", "kvm_vm_exits_baseline")["value"] > 9000
        assert alarm_of(nd, "kvm_alertbusy.exits", "kvm_vm_exit_storm")["value"] > 50

        storm.send_signal(signal.SIGUSR1)        # 20 -> 30,000 exits/s
        t1 = time.monotonic()
        entry = wait_status(nd, "kvm_alertstorm.exits", "kvm_vm_exit_storm", RAISED, 40)
        raised_after = time.monotonic() - t1
        print("storm raised:", json.dumps(entry, indent=1))
        assert entry["value"] > 500
        emu = wait_status(nd, "kvm_alertstorm.emulation", "kvm_vm_emulation_rate", RAISED, 60)
        assert emu["value"] > 20000
        storm.send_signal(signal.SIGUSR1)        # back to 20/s
        wait_status(nd, "kvm_alertstorm.exits", "kvm_vm_exit_storm", ("CLEAR",), 90)
        wait_status(nd, "kvm_alertstorm.emulation", "kvm_vm_emulation_rate", ("CLEAR",), 120)
        print(f"gate open after {history_opened:.0f}s, storm raised {raised_after:.0f}s "
              f"after it began, all clear {time.monotonic() - t1:.0f}s after")
        # The boot and the busy VM: linked, never raised.
        for vm in ("alertboot", "alertbusy"):
            assert alarm_of(nd, f"kvm_{vm}.exits", "kvm_vm_exit_storm")["status"] == "CLEAR"
            assert alarm_of(nd, f"kvm_{vm}.emulation",
                            "kvm_vm_emulation_rate")["status"] == "CLEAR"
        assert raised_in_log(nd, "kvm_alertboot") == []
        assert raised_in_log(nd, "kvm_alertbusy") == []
