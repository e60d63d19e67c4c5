# SPDX-License-Identifier: MIT
"""kvm_stats.so under collectd run as Debian's collectd.service runs it.

See collectd_debian.py: root, /usr/lib/collectd and the conf snippet in
/etc/collectd/collectd.conf.d put there by `make install-collectd`, loaded
through collectd.conf's Include. Reads a QEMU 10 VM (vCPU stats fds) and
checks the values against QEMU's own QMP query-stats.
"""
import os
import shutil

import pytest

from conftest import requires_qemu10, wait_for
from collectd_debian import DebianCollectd
from daemons import collectd_missing_reason

pytestmark = pytest.mark.skipif(
    collectd_missing_reason() is not None or os.geteuid() != 0
    or shutil.which("unshare") is None,
    reason=collectd_missing_reason() or "SKIP: needs root and unshare")


def qmp_vcpu_sum(vm, name):
    ret = vm.qmp_command({"execute": "query-stats",
                          "arguments": {"target": "vcpu", "providers": [
                              {"provider": "kvm", "names": [name]}]}})[0]
    return sum(s["value"] for entry in ret for s in entry["stats"] if s["name"] == name)


@requires_qemu10
def test_qemu10_vm_under_collectd_as_debian_runs_it(qemu, tmp_path):
    q = qemu("debc10", version="10")
    cd = DebianCollectd(tmp_path)
    with cd:
        log = cd.install_log()
        assert "kvm_stats.so" in log and "kvm_stats.conf" in log, log
        inst = "kvm_stats-debc10"
        rows = wait_for(lambda: len(cd.csv_rows(inst, "derive-exits")) >= 3 and
                        cd.csv_rows(inst, "derive-exits"), timeout=20, what="3 exits rows")
        after = qmp_vcpu_sum(q, "exits")
        values = [r["value"] for r in rows]
        # Real counters: non-zero, never falling, never ahead of QEMU's own.
        assert 0 < values[0] <= values[-1] <= after, (values, after)
        assert values == sorted(values)
        # VM-wide stats (debugfs, read as root) besides the vCPU sums.
        assert cd.csv_rows(inst, "gauge-pages_4k")
        print(f"\n{len(cd.csv_files())} csv files; exits {values} <= QMP {after}")
    assert "kvm_stats plugin" not in cd.log(), cd.log()
