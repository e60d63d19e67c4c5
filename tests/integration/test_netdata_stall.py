# SPDX-License-Identifier: MIT
"""kvm_stats.plugin while Netdata does not read its output.

A stats fd the plugin holds keeps its VM alive after the VMM exits. If the
plugin blocked in write() on a full pipe, a VM that exited meanwhile would
live on until Netdata read again; the plugin must release it at once and
tell Netdata (obsolete charts) once the pipe takes more.
"""
import fcntl
import time

from conftest import kvm_links, requires_kvm, requires_root, wait_for
from test_netdata_plugin import plugin  # noqa: F401 (fixture)
from test_kvmstat import destroyed_pids, uevent_socket

pytestmark = [requires_kvm, requires_root]

F_SETPIPE_SZ = 1031


def wchan(pid):
    with open(f"/proc/{pid}/wchan") as f:
        return f.read()


def test_vm_released_while_netdata_does_not_read(testvm, plugin):  # noqa: F811
    vm = testvm("--vcpus", 2, "--steady", 50, "--hold", "vm,vcpu", name="stalled",
                state="running")
    p = plugin(config="include vm = /^stalled$/\n")
    p.read_until(lambda p: "kvm_stalled.vcpu1_exits" in p.last_values())
    defined = {c for c in p.charts() if c.startswith("kvm_stalled.")}
    assert len(kvm_links(p.proc.pid)) == 3

    # Netdata stalls: a one-page pipe, not read, fills within an iteration.
    fcntl.fcntl(p.proc.stdout.fileno(), F_SETPIPE_SZ, 4096)
    wait_for(lambda: "poll" in wchan(p.proc.pid), timeout=10,
             what="the plugin waiting for its pipe")
    time.sleep(1.5)
    assert "poll" in wchan(p.proc.pid), "the plugin went on without writing"

    events = uevent_socket()
    exited = time.monotonic()
    vm.stop()
    wait_for(lambda: not kvm_links(p.proc.pid), timeout=2,
             what="the stalled plugin closing the exited VM's fds")
    released = time.monotonic() - exited
    assert vm.pid in destroyed_pids(events, 3.0)  # the kernel freed the VM
    events.close()
    assert "poll" in wchan(p.proc.pid), "the pipe was never full: nothing shown"

    # Netdata reads again: the VM's charts are obsoleted.
    p.read_until(lambda p: all("obsolete" in p.charts()[c] for c in defined), timeout=15)
    print(f"released {released * 1000:.0f} ms after the VMM exited, pipe full")
