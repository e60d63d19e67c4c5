# SPDX-License-Identifier: MIT
"""conf/netdata/health.d/kvm_stats.conf in a real Netdata 1.37, driven by real VMs.

Netdata reads the file as its stock health configuration (its `stock
health config` directory points at a directory holding only it), the
plugin runs with its default settings, and:
- a VM whose exits jump from 10/s to 3000/s (testvm --burst, SIGHUP)
  raises kvm_vm_exit_storm, which clears once it is back at 10/s;
- a VM doing port I/O as fast as it can (counted as insn_emulation on this
  machine) raises kvm_vm_emulation_rate, which clears once it halts;
- a quiet VM raises none of them, ever.
"""
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, requires_kvm, requires_root, wait_for
from netdata_daemon import netdata_factory, netdata_missing_reason

REPO = Path(__file__).resolve().parents[2]
PLUGIN = str(BUILD / "kvm_stats.plugin")
HEALTH = REPO / "conf" / "netdata" / "health.d" / "kvm_stats.conf"
RAISED = ("WARNING", "CRITICAL")

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
    """A stock health directory holding only our file, which user netdata
    can read (pytest's tmp_path is root's alone)."""
    stock = Path(tempfile.mkdtemp(prefix="kvmstats-health-"))
    stock.chmod(0o755)
    shutil.copyfile(HEALTH, stock / "kvm_stats.conf")
    (stock / "kvm_stats.conf").chmod(0o644)
    yield stock
    shutil.rmtree(stock, ignore_errors=True)


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


def alarm_of(nd, chart, name):
    """The alert as its chart lists it (id, status, units), whatever its
    status; with its full /api/v1/alarms entry when it is raised."""
    info = nd.chart(chart) or {}
    a = dict(info.get("alarms", {}).get(name) or {})
    if a.get("status") in RAISED:
        a.update(raised(nd).get(f"{chart}.{name}") or {})
    return a or None


def wait_status(nd, chart, name, statuses, timeout):
    def check():
        a = alarm_of(nd, chart, name)
        return a if a and a["status"] in statuses and "value" in a or \
            a and a["status"] in statuses and statuses == ("CLEAR",) else None
    return wait_for(check, timeout=timeout, step=1, what=f"{chart}.{name} in {statuses}")


def raised_on(nd, prefix):
    return {k: a["status"] for k, a in raised(nd).items() if a["chart"].startswith(prefix)}


def test_alerts_raise_and_clear(testvm, netdata, stock_health):
    nd = start_with_alerts(netdata, stock_health)
    quiet = testvm("--steady", 10, name="alertquiet", state="running")
    storm = testvm("--steady", 10, "--burst", 3000, name="alertstorm", state="running")
    for chart in ("kvm_alertquiet.exits", "kvm_alertstorm.exits"):
        nd.wait_for_chart(chart, timeout=40)
    # Every template on the charts there are, linked and not raised.
    a = wait_status(nd, "kvm_alertstorm.exits", "kvm_vm_exit_storm", ("CLEAR",), 90)
    assert a["units"] == "%"
    # The baseline needs history older than 30 s.
    time.sleep(40)
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

    # Port I/O as fast as this host runs it, then a halt.
    pio = testvm("--pio", 1500000, name="alertpio", state="running")
    nd.wait_for_chart("kvm_alertpio.emulation", timeout=40)
    entry = wait_status(nd, "kvm_alertpio.emulation", "kvm_vm_emulation_rate", RAISED, 90)
    assert entry["value"] > 20000 and entry["units"] == "instructions/s"
    pio.wait_state("halted", timeout=120)
    wait_status(nd, "kvm_alertpio.emulation", "kvm_vm_emulation_rate", ("CLEAR",), 90)

    # The quiet VM, at 10 exits/s all along: linked, never raised.
    assert alarm_of(nd, "kvm_alertquiet.exits", "kvm_vm_exit_storm")["status"] == "CLEAR"
    emulation = alarm_of(nd, "kvm_alertquiet.emulation", "kvm_vm_emulation_rate")
    assert emulation is None or emulation["status"] not in RAISED
    log = nd.api("/api/v1/alarm_log")
    quiet_raised = [e for e in log if e["chart"].startswith("kvm_alertquiet")
                    and e["status"] in RAISED]
    assert quiet_raised == []
    quiet.stop()
