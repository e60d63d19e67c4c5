# SPDX-License-Identifier: MIT
"""conf/netdata/health.d/kvm_stats.conf in a real Netdata 1.37, driven by real VMs.

Netdata reads the file as its stock health configuration (its `stock
health config` directory points at a directory holding only it, the file
with its 30-minute history windows shortened to a minute: kvm_health.py),
the plugin runs with its default settings, and:
- a VM doing port I/O as fast as it can from its start (counted as
  insn_emulation on this machine: a boot's legacy devices) raises nothing;
- a VM whose exits jump from 10/s to 3000/s (testvm --burst, SIGHUP) once
  it has its history raises kvm_vm_exit_storm, which clears once it is
  back at 10/s;
- a quiet VM raises none of them, ever.
test_netdata_alerts_fake.py drives every alert both ways without KVM.
"""
import json
import os
import signal
import time
from pathlib import Path

import pytest

from conftest import BUILD, requires_kvm, requires_root, wait_for
from kvm_health import alarm_of, remove, scaled_health, wait_status
from netdata_daemon import netdata_factory, netdata_missing_reason

PLUGIN = str(BUILD / "kvm_stats.plugin")
RAISED = ("WARNING", "CRITICAL")
HISTORY_S = 60

pytestmark = [
    requires_kvm,
    requires_root,
    pytest.mark.skipif(netdata_missing_reason() is not None,
                       reason=netdata_missing_reason() or ""),
]


@pytest.fixture
def netdata(tmp_path):
    with netdata_factory(tmp_path) as start:
        yield start


@pytest.fixture
def stock_health():
    """A stock health directory holding only our file (its history windows
    shortened), which user netdata can read (pytest's tmp_path is root's
    alone)."""
    stock = scaled_health(HISTORY_S, HISTORY_S)
    yield stock
    remove(stock)


def start_with_alerts(netdata, stock):
    return netdata(plugins={"kvm_stats.plugin": PLUGIN},
                   # Only how soon a new VM is seen; the charts are the defaults.
                   plugin_configs={"kvm_stats.conf": "[kvm_stats]\nrescan every = 1\n"},
                   # 1.37 takes the stock health directory from [directories]
                   # "stock health config".
                   netdata_conf={"health": {"enabled": True, "run at least every seconds": 1},
                                 "directories": {"stock health config": stock}})


def raised(nd):
    """/api/v1/alarms: the alerts that are raised (WARNING, CRITICAL)."""
    return nd.api("/api/v1/alarms")["alarms"]




def raised_on(nd, prefix):
    return {k: a["status"] for k, a in raised(nd).items() if a["chart"].startswith(prefix)}


def test_alerts_raise_and_clear(testvm, netdata, stock_health):
    nd = start_with_alerts(netdata, stock_health)
    quiet = testvm("--steady", 10, name="alertquiet", state="running")
    storm = testvm("--steady", 10, "--burst", 3000, name="alertstorm", state="running")
    # Port I/O as fast as this host runs it from the VM's start, then a halt.
    pio = testvm("--pio", 1500000, name="alertpio", state="running")
    for chart in ("kvm_alertquiet.exits", "kvm_alertstorm.exits", "kvm_alertpio.emulation"):
        nd.wait_for_chart(chart, timeout=40)
    # Every template on the charts there are, linked and not raised.
    a = wait_status(nd, "kvm_alertstorm.exits", "kvm_vm_exit_storm", ("CLEAR",), 90)
    assert a["units"] == "%"
    # The storm is judged once the VM has its (shortened) history.
    wait_for(lambda: (alarm_of(nd, "kvm_alertstorm.exits", "kvm_vm_exits_history")
                      or {}).get("value") == 1, timeout=HISTORY_S + 90, step=1,
             what="the storm VM's history gate open")
    time.sleep(10)
    assert raised_on(nd, "kvm_alert") == {}

    storm.proc.send_signal(signal.SIGHUP)        # 10 -> 3000 exits/s
    t0 = time.monotonic()
    entry = wait_status(nd, "kvm_alertstorm.exits", "kvm_vm_exit_storm", RAISED, 60)
    print("raised:", json.dumps(entry, indent=1))
    assert entry["value"] > 500 and entry["info"] and entry["units"] == "%"
    if os.environ.get("KVMSTATS_ALARM_QUOTE"):
        Path(os.environ["KVMSTATS_ALARM_QUOTE"]).write_text(json.dumps(entry, indent=1))
    storm.proc.send_signal(signal.SIGHUP)        # back to 10 exits/s
    cleared = wait_status(nd, "kvm_alertstorm.exits", "kvm_vm_exit_storm", ("CLEAR",), 120)
    print(f"storm raised and cleared in {time.monotonic() - t0:.0f}s: {cleared['status']}")

    # The quiet VM at 10 exits/s all along, the port I/O of a young VM: never raised.
    pio.wait_state("halted", timeout=120)
    assert alarm_of(nd, "kvm_alertquiet.exits", "kvm_vm_exit_storm")["status"] == "CLEAR"
    emulation = alarm_of(nd, "kvm_alertquiet.emulation", "kvm_vm_emulation_rate")
    assert emulation is None or emulation["status"] not in RAISED
    log = nd.api("/api/v1/alarm_log")
    quiet_raised = [e for e in log if e["chart"].startswith(("kvm_alertquiet", "kvm_alertpio"))
                    and e["status"] in RAISED]
    assert quiet_raised == []
    quiet.stop()
