# SPDX-License-Identifier: MIT
"""collectd's derive-vcpu_run_ns / derive-vcpu_wait_ns, on a QEMU played by fakevmm.py.

fakevmm.py --spin runs two busy vCPU threads named as QEMU names them;
fakeproc.py lists it as a VMM with kvm-vcpu:0 and :1 and its real task/
directory. Once the threads have run, they idle (SIGUSR2), so their
counters stand still: the values collectd's csv plugin wrote (StoreRates
false: the counters as dispatched) equal, to the nanosecond, the
threads' own /proc/<pid>/task/<tid>/schedstat read by the test.
"""
import signal
import time

import pytest

from conftest import BUILD, requires_root, wait_for
from daemons import Collectd, collectd_missing_reason
from fakeqemu import FakeQemus

pytestmark = [
    requires_root,
    pytest.mark.skipif(collectd_missing_reason() is not None,
                       reason=collectd_missing_reason() or ""),
]


def schedstat(pid, tid):
    run, wait, _ = open(f"/proc/{pid}/task/{tid}/schedstat").read().split()
    return int(run), int(wait)


def test_collectd_sched_values(tmp_path):
    with FakeQemus(prefix="kvmstats-cpucd-") as fakes:
        vm = fakes.start("cpucd", "--spin")
        time.sleep(1)
        vm.send_signal(signal.SIGUSR2)               # idle: the counters stand still
        time.sleep(0.5)
        truth = [schedstat(vm.pid, t) for t in vm.spin_tids]
        blocks = ("LoadPlugin kvm_stats\n<Plugin kvm_stats>\n  PerVCPU true\n"
                  f'  QMPSocket "{fakes.sockdir}/*.qmp"\n</Plugin>\n')
        cd = Collectd(tmp_path, plugin_dir_extra=BUILD / "kvm_stats.so", plugin_blocks=blocks,
                      env={"KVMSTATS_PROC_ROOT": fakes.proc_root})
        cd.csv(store_rates=False)
        try:
            cd.start()

            def last(inst, ti):
                try:
                    rows = cd.csv_rows(f"kvm_stats-{inst}", f"derive-{ti}")
                except FileNotFoundError:
                    return None
                return rows[-1]["value"] if len(rows) >= 2 else None
            wait_for(lambda: last("cpucd", "vcpu_wait_ns"), timeout=30, step=0.5,
                     what="derive-vcpu_wait_ns of cpucd in the csv files")
            time.sleep(1.5)
            assert truth == [schedstat(vm.pid, t) for t in vm.spin_tids], "the threads moved"
            assert last("cpucd", "vcpu_run_ns") == sum(r for r, _ in truth)
            assert last("cpucd", "vcpu_wait_ns") == sum(w for _, w in truth)
            for i, (run, wait) in enumerate(truth):
                assert last(f"cpucd-vcpu{i}", "vcpu_run_ns") == run
                assert last(f"cpucd-vcpu{i}", "vcpu_wait_ns") == wait
            assert last("cpucd", "vmm_other_run_ns") is not None
        finally:
            cd.stop()
