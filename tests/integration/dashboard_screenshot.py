#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Takes a PNG of Netdata's dashboard showing kvm_stats.plugin's charts.

Starts a test VM (2 vCPUs exiting at a steady pace), a private Netdata on
loopback with the plugin installed as a package would, waits for some
history, and shoots the VM's section with netdata/screenshot. Everything
it started is stopped by pid at the end.

usage: tests/integration/dashboard_screenshot.py OUT.png   (make screenshot)
Needs root, and Debian's netdata-core, netdata-web and chromium. Without
/dev/kvm the VM is a QEMU played by tests/fixtures/fakevmm.py (its
counters growing at a steady rate), read over QMP through a fake /proc.
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
from fakeproc import FakeProc  # noqa: E402
from netdata_daemon import Netdata  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class FakeDemo:
    """A QEMU called demo played by fakevmm.py, in a fake /proc."""

    def __init__(self, tmp):
        tmp.chmod(0o755)        # the plugin runs as user netdata
        self.sock = tmp / "demo.qmp"
        self.fake = FakeProc()
        self.proc = subprocess.Popen([str(ROOT / "tests/fixtures/fakevmm.py"), "--no-vm",
                                      "--qmp", str(self.sock), "--rate", "300"],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().startswith("ready"), "fakevmm.py did not start"
        self.sock.chmod(0o666)
        self.fake.add(self.proc.pid, cmdline=["qemu-system-x86_64", "-name", "guest=demo"])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.fake.cleanup()


def main(out):
    with tempfile.TemporaryDirectory(prefix="kvmstats-shot-") as tmp:
        tmp = Path(tmp)
        conf = "[kvm_stats]\nrescan every = 1\nper vcpu charts = yes\n"
        extra = {}
        if os.path.exists("/dev/kvm"):
            vm = TestVM(tmp, "--vcpus", 2, "--steady", 300, "--hold", "vm,vcpu",
                        name="demo", state="running")
        else:
            vm = FakeDemo(tmp)
            conf += f"qmp socket = {vm.sock}\n"
            # No file capabilities: secure_getenv() would ignore the fake /proc.
            extra = dict(caps=False, env={"KVMSTATS_PROC_ROOT": str(vm.fake.root)})
        try:
            with Netdata(tmp, plugins={"kvm_stats.plugin": str(BUILD / "kvm_stats.plugin")},
                         plugin_configs={"kvm_stats.conf": conf},
                         hostname="kvm-demo", **extra) as nd:
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
