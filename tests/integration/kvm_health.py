# SPDX-License-Identifier: MIT
"""conf/netdata/health.d/kvm_stats.conf on a test's clock.

The stock alerts judge a VM against 30 minutes of its own history and
raise nothing before it has them. A test cannot wait half an hour, so it
gives Netdata a copy whose history windows are shortened, and nothing
else changed: the gates open once the chart holds data GATE seconds old,
the storm baseline spans the first two thirds of the last BASELINE
seconds (stock: the 20 minutes before the last 10). Users get
the file as it is; the tests check the file itself holds the 30-minute
windows (assert_stock_windows).

The gates look at the 30 seconds 30 minutes ago ("average -30s at -30m":
30m30s to 30m ago), where the baseline begins ("average -20m at -10m": 30
to 10 minutes ago); shortened, the same with BASELINE seconds for 30
minutes.
"""
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEALTH = Path(os.environ.get("KVMSTATS_HEALTH_FILE", REPO / "conf" / "netdata" / "health.d" / "kvm_stats.conf"))
GATE = "average -30s at -30m"          # the history gates: where the baseline starts
BASELINE = "average -20m at -10m"      # the storm's baseline
CPU_WINDOWS = ("average -5m unaligned of run", "average -5m unaligned of wait")


def assert_stock_windows(text=None):
    text = text if text is not None else (REPO / "conf" / "netdata" / "health.d" / "kvm_stats.conf").read_text()
    assert text.count(GATE) == 3, "history gates of exits, emulation, mmu"
    assert text.count(BASELINE) == 1
    for window in CPU_WINDOWS:
        assert text.count(window) == 1, window


def scaled_cpu_windows(text, cpu_s):
    """The cpu alert's 5-minute windows as cpu_s seconds."""
    for window in CPU_WINDOWS:
        text = text.replace(window, window.replace("-5m", f"-{cpu_s}s"))
    return text


def scaled_health(gate_s=60, baseline_s=60, cpu_s=None):
    """A stock health directory (user netdata can read it) holding the
    file with its history windows shortened (and with cpu_s, the cpu
    alert's). The caller removes it."""
    text = HEALTH.read_text()
    if cpu_s is not None:
        text = scaled_cpu_windows(text, cpu_s)
    text = text.replace(GATE, f"average -30s at -{gate_s}s")
    text = text.replace(BASELINE, f"average -{baseline_s * 2 // 3}s at -{baseline_s // 3}s")
    stock = Path(tempfile.mkdtemp(prefix="kvmstats-health-"))
    stock.chmod(0o755)
    (stock / "kvm_stats.conf").write_text(text)
    (stock / "kvm_stats.conf").chmod(0o644)
    return stock


def alarm_of(nd, chart, name):
    """The alert's /api/v1/alarms?all entry (status, value, ...), or None.
    1.37 leaves an alert whose lookup found no data UNINITIALIZED, its value
    null: a history gate before the chart holds data that old."""
    return nd.api("/api/v1/alarms?all")["alarms"].get(f"{chart}.{name}")


def wait_status(nd, chart, name, statuses, timeout):
    """Until the alert's status is one of statuses; its entry."""
    from conftest import wait_for

    def check():
        a = alarm_of(nd, chart, name)
        return a if a and a["status"] in statuses else None
    return wait_for(check, timeout=timeout, step=1, what=f"{chart}.{name} in {statuses}")


def remove(stock):
    shutil.rmtree(stock, ignore_errors=True)
