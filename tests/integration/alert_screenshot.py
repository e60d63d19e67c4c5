#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Takes a PNG of Netdata's dashboard with a raised KVM alert.

Starts a test VM at 10 exits/s, a private Netdata on loopback with the
plugin and conf/netdata/health.d/kvm_stats.conf as its stock alerts (its 30-minute
history windows shortened to a minute: kvm_health.py), switches the VM to
3000 exits/s (testvm --burst, SIGHUP) until kvm_vm_exit_storm is raised,
and shoots the VM's section with netdata/screenshot, opened the way
Netdata's alert notifications link to it (alarm=..., alarm_when=...; the
header's bell counts the raised alert), and the alert's own badge
(/api/v1/badge.svg) into OUT-badge.png.
Prints the /api/v1/alarms entry. Everything it started is stopped by pid.

usage: tests/integration/alert_screenshot.py OUT.png
Needs root, /dev/kvm, and Debian's netdata-core, netdata-web and chromium.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conftest import BUILD, TestVM, wait_for  # noqa: E402
from kvm_health import remove, scaled_health  # noqa: E402
from netdata_daemon import Netdata  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHART, ALERT = "kvm_alertdemo.exits", "kvm_vm_exit_storm"


def main(out):
    with tempfile.TemporaryDirectory(prefix="kvmstats-shot-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        stock = scaled_health(60, 60)
        vm = TestVM(tmp, "--vcpus", 2, "--steady", 10, "--burst", 3000,
                    name="alertdemo", state="running")
        try:
            with Netdata(tmp, plugins={"kvm_stats.plugin": str(BUILD / "kvm_stats.plugin")},
                         plugin_configs={"kvm_stats.conf": "[kvm_stats]\nrescan every = 1\n"},
                         netdata_conf={"health": {"enabled": True,
                                                  "run at least every seconds": 1},
                                       "directories": {"stock health config": stock}},
                         hostname="kvm-demo") as nd:
                nd.wait_for_chart(CHART, timeout=30)
                wait_for(lambda: (nd.api("/api/v1/alarms?all")["alarms"].get(
                    f"{CHART}.kvm_vm_exits_history") or {}).get("value") == 1,
                    timeout=150, step=1, what="the VM's history")
                time.sleep(5)
                vm.proc.send_signal(signal.SIGHUP)
                entry = wait_for(lambda: nd.api("/api/v1/alarms")["alarms"].get(f"{CHART}.{ALERT}"),
                                 timeout=90, step=1, what="the alert raised")
                time.sleep(5)
                print(json.dumps(entry, indent=1))
                # The dashboard's hash, as an alert notification links to it.
                alarm = (f";chart={CHART};alarm={ALERT};alarm_chart={CHART}"
                         f";alarm_status={entry['status']}"
                         f";alarm_when={entry['last_status_change']}")
                url = nd.dashboard_url("kvm_alertdemo", after=-90) + alarm
                subprocess.run([str(ROOT / "netdata/screenshot"), url, out,
                                "--wait", "40", "--size", "1600,1400"], check=True)
                # The alert itself, as Netdata's badge API draws it.
                badge = out[:-4] + "-badge.png" if out.endswith(".png") else out + "-badge.png"
                url = f"{nd.url}/api/v1/badge.svg?chart={CHART}&alarm={ALERT}&label=kvm_vm_exit_storm"
                subprocess.run([str(ROOT / "netdata/screenshot"), url, badge,
                                "--wait", "2", "--size", "400,60"], check=True)
        finally:
            vm.stop()
            remove(stock)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(os.path.abspath(sys.argv[1]))
