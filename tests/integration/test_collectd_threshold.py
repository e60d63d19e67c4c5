# SPDX-License-Identifier: MIT
"""conf/collectd/kvm_stats_threshold.conf in a real collectd 5.12: a VM
doing port I/O as fast as it can (insn_emulation on this machine) crosses
the insn_emulation rule, and collectd's logfile plugin writes the
notification; once the VM halts, the OKAY one. A quiet VM gets none."""
import re
from pathlib import Path

import pytest

from conftest import BUILD, requires_kvm, requires_root
from daemons import collectd_missing_reason, daemon_factory, wait_until

REPO = Path(__file__).resolve().parents[2]
PLUGIN = BUILD / "kvm_stats.so"
RULES = REPO / "conf" / "collectd" / "kvm_stats_threshold.conf"

pytestmark = [
    requires_kvm,
    requires_root,
    pytest.mark.skipif(collectd_missing_reason() is not None,
                       reason=collectd_missing_reason() or ""),
]


@pytest.fixture
def daemons(tmp_path):
    with daemon_factory(tmp_path) as d:
        yield d


def notifications(log, vm, type_instance):
    pat = re.compile(r"Notification: severity = (\w+), host = [^,]+, plugin = kvm_stats, "
                     rf"plugin_instance = {re.escape(vm)}, type = derive, "
                     rf"type_instance = {re.escape(type_instance)}, message = (.*)")
    return [m.groups() for m in pat.finditer(log)]


def test_threshold_notifications(testvm, daemons):
    quiet = testvm("--steady", 10, name="thrquiet", state="running")
    cd = daemons.collectd(plugin_dir_extra=PLUGIN, debian_plugins=("threshold",),
                          plugin_blocks="LoadPlugin kvm_stats\n<Plugin kvm_stats>\n"
                                        "  RefreshInterval 1\n</Plugin>\n" + RULES.read_text())
    busy = testvm("--pio", 3000000, name="thrbusy", state="running")

    def raised():
        n = notifications(cd.log(), "thrbusy", "insn_emulation")
        return [x for x in n if x[0] in ("WARNING", "FAILURE")]
    first = wait_until(raised, timeout=60, step=0.5, what="a notification for thrbusy")[0]
    print("notification:", first)
    assert "above the" in first[1] and "threshold" in first[1]
    busy.wait_state("halted", timeout=120)

    def okay_after():
        n = notifications(cd.log(), "thrbusy", "insn_emulation")
        i = n.index(first)
        return [x for x in n[i + 1:] if x[0] == "OKAY"]
    okay = wait_until(okay_after, timeout=30, step=0.5, what="OKAY for thrbusy")
    print("okay:", okay[0])
    # collectd says OKAY ("value" is nan) once for each value it first
    # sees; the quiet VM never gets more than that.
    assert not re.search(r"severity = (WARNING|FAILURE), host = [^,]+, plugin = kvm_stats, "
                         r"plugin_instance = thrquiet\b", cd.log())
    quiet.stop()
