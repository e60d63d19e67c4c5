# SPDX-License-Identifier: MIT
"""The cpu chart and kvm_vm_cpu_wait in a real Netdata 1.37, on a QEMU played by fakevmm.py.

No KVM is needed: fakevmm.py --spin runs two vCPU threads named as QEMU
names them ("CPU 0/KVM", "CPU 1/KVM") that keep a CPU busy, and
fakeproc.py lists it as a VMM holding kvm-vcpu:0 and :1, its task/
directory the real one. The plugin finds the threads and reads their
schedstat. The test pins both threads and a CPU hog to one host CPU, so
that each vCPU thread waits on the run queue for most of the time:

- the chart kvm_cpuhog.cpu (context kvm.vm.cpu) carries run and wait as
  percent of one CPU per vCPU, equal to what the test computes from the
  threads' own /proc/<pid>/task/<tid>/schedstat over the same seconds;
- kvm_vm_cpu_wait (its 5-minute windows shortened to 20 s) is raised, and
  clears once the hog is gone and the vCPUs idle.
"""
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import BUILD, requires_root
from fakeqemu import FakeQemus
from kvm_health import alarm_of, remove, scaled_health, wait_status
from netdata_daemon import netdata_factory, netdata_missing_reason

PLUGIN = str(BUILD / "kvm_stats.plugin")
RAISED = ("WARNING", "CRITICAL")
WINDOW_S = 20

pytestmark = [
    requires_root,
    pytest.mark.skipif(netdata_missing_reason() is not None,
                       reason=netdata_missing_reason() or ""),
]


def schedstat(pid, tid):
    """(run ns, wait ns) of a thread, read by the test itself."""
    run, wait, _ = open(f"/proc/{pid}/task/{tid}/schedstat").read().split()
    return int(run), int(wait)




def chart_average(nd, chart, after, before):
    """{dimension: average} of chart over [after, before] (epoch seconds)."""
    d = nd.api("/api/v1/data", chart=chart, format="json", after=after, before=before,
               points=1, group="average", options="unaligned")
    return dict(zip(d["labels"][1:], d["data"][0][1:]))


@pytest.fixture
def fakes():
    with FakeQemus(prefix="kvmstats-cpuqmp-") as qemus:
        yield qemus


@pytest.fixture
def hog():
    """A process that spins on whatever CPU it is given; killed by pid."""
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield p
    p.kill()
    p.wait()


def test_cpu_chart_and_wait_alert(fakes, hog, tmp_path):
    stock = scaled_health(cpu_s=WINDOW_S)
    vm = fakes.start("cpuhog", "--spin")
    assert len(vm.spin_tids) == 2
    cpu = min(os.sched_getaffinity(0))
    for tid in vm.spin_tids:                     # both vCPUs and the hog: one CPU
        os.sched_setaffinity(tid, {cpu})
    os.sched_setaffinity(hog.pid, {cpu})
    conf = f"[kvm_stats]\nrescan every = 1\nper vcpu charts = yes\nqmp socket = {fakes.sockdir}/*.qmp\n"
    try:
        with netdata_factory(tmp_path) as start:
            nd = start(plugins={"kvm_stats.plugin": PLUGIN},
                       plugin_configs={"kvm_stats.conf": conf},
                       caps=False, env={"KVMSTATS_PROC_ROOT": fakes.proc_root},
                       netdata_conf={"health": {"enabled": True, "run at least every seconds": 1},
                                     "directories": {"stock health config": stock}})
            chart = nd.wait_for_chart("kvm_cpuhog.cpu", timeout=40)
            assert chart["context"] == "kvm.vm.cpu"
            assert chart["units"] == "% per vCPU"
            assert set(chart["dimensions"]) == {"run", "wait", "vmm_other"}
            assert nd.wait_for_chart("kvm_cpuhog.vcpu1_cpu", timeout=20)["context"] == "kvm.vcpu.cpu"

            # Ground truth: the threads' own schedstat over 10 whole seconds.
            time.sleep(3)
            t0 = int(time.time()) + 1
            time.sleep(t0 - time.time())
            s0 = [schedstat(vm.pid, t) for t in vm.spin_tids]
            time.sleep(10)
            s1 = [schedstat(vm.pid, t) for t in vm.spin_tids]
            t1 = t0 + 10
            run = sum(b[0] - a[0] for a, b in zip(s0, s1)) / 10 / 1e7 / 2
            wait = sum(b[1] - a[1] for a, b in zip(s0, s1)) / 10 / 1e7 / 2
            time.sleep(3)                        # Netdata has stored t1
            got = chart_average(nd, "kvm_cpuhog.cpu", t0, t1)
            print(f"schedstat: run {run:.1f} %, wait {wait:.1f} % per vCPU; "
                  f"Netdata: {got}")
            # Three busy threads on one CPU: each runs about a third.
            assert 2 < run < 45 and wait > 40, (run, wait)
            assert abs(got["run"] - run) <= 2 + 0.05 * run, (got, run)
            assert abs(got["wait"] - wait) <= 2 + 0.05 * wait, (got, wait)
            v1 = chart_average(nd, "kvm_cpuhog.vcpu1_cpu", t0, t1)
            run1 = (s1[1][0] - s0[1][0]) / 10 / 1e7
            assert abs(v1["run"] - run1) <= 2 + 0.05 * run1, (v1, run1)

            # Prometheus, as docs/prometheus.md names it: the ns counters.
            with urllib.request.urlopen(nd.url + "/api/v1/allmetrics?format=prometheus"
                                        "&source=as-collected", timeout=10) as resp:
                prom = resp.read().decode()
            lines = [line for line in prom.splitlines()
                     if line.startswith("netdata_kvm_vm_cpu_total{")
                     and 'chart="kvm_cpuhog.cpu"' in line and 'dimension="wait"' in line]
            assert len(lines) == 1, [line for line in prom.splitlines() if "cpuhog" in line]
            value = int(float(lines[0].rsplit("}", 1)[1].split()[0]))     # ns, as collected
            assert value >= sum(s[1] for s in s1), lines

            entry = wait_status(nd, "kvm_cpuhog.cpu", "kvm_vm_cpu_wait", RAISED, WINDOW_S + 30)
            print("raised:", entry["status"], entry["value"])
            assert entry["value"] > 50 and entry["units"] == "%"

            hog.kill()                           # the host has room again,
            vm.send_signal(signal.SIGUSR2)       # and the vCPUs idle
            t2 = time.monotonic()
            wait_status(nd, "kvm_cpuhog.cpu", "kvm_vm_cpu_wait", ("CLEAR",), WINDOW_S + 40)
            print(f"cleared {time.monotonic() - t2:.0f} s after the hog stopped")
    finally:
        remove(stock)
