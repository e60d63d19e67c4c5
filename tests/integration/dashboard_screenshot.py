#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Takes a PNG of Netdata's dashboard showing kvm_stats.plugin's charts.

Starts a test VM (2 vCPUs exiting at a steady pace), a private Netdata on
loopback with the plugin installed as a package would, waits for some
history, and shoots the VM's section with netdata/screenshot. Everything
it started is stopped by pid at the end.

usage: tests/integration/dashboard_screenshot.py OUT.png   (make screenshot)
Needs root, /dev/kvm, and Debian's netdata-core, netdata-web and chromium.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conftest import BUILD, TestVM  # noqa: E402
from netdata_daemon import Netdata  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main(out):
    with tempfile.TemporaryDirectory(prefix="kvmstats-shot-") as tmp:
        tmp = Path(tmp)
        vm = TestVM(tmp, "--vcpus", 2, "--steady", 300, "--hold", "vm,vcpu",
                    name="demo", state="running")
        try:
            with Netdata(tmp, plugins={"kvm_stats.plugin": str(BUILD / "kvm_stats.plugin")},
                         plugin_configs={"kvm_stats.conf": "[kvm_stats]\nrescan every = 1\n"
                                                           "per vcpu charts = yes\n"},
                         hostname="kvm-demo") as nd:
                nd.wait_for_chart("kvm_demo.vcpu1_exits", timeout=30)
                time.sleep(40)
                subprocess.run([str(ROOT / "netdata/screenshot"),
                                nd.dashboard_url("kvm_demo", after=-30), out,
                                "--wait", "8", "--size", "1600,2200"], check=True)
        finally:
            vm.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(os.path.abspath(sys.argv[1]))
