# SPDX-License-Identifier: MIT
"""Stat names are input: a QMP peer that names its stats like no kernel does.

A QMP peer is any process whose socket matches a configured glob, so a
hostile QEMU can name its stats anything. tests/fixtures/fakevmm.py plays
QEMU from captured answers with three real vCPU stats renamed: a counter to
a name that holds protocol lines, another to a path, and a histogram to a
name with both quote characters. Every front end must leave those stats out
(and say so once), keep the others, and print nothing the names could
shape: kvmstat --json stays valid JSON, the Netdata plugin writes protocol
lines only (histograms and per-vCPU charts on), a real collectd writes csv
files inside its DataDir only, with no control byte in a file name.

Variant "fake" runs anywhere: fakevmm --no-vm, listed as a VMM in a fake
/proc (fakeproc.py). Variant "kvm" holds a real KVM VM and is discovered in
the real /proc; it SKIPs without /dev/kvm.
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BUILD, FIXTURES, kvm_missing_reason, requires_root, escaped_to_tmp
from daemons import collectd_missing_reason, daemon_factory, wait_until
from fakeproc import FakeProc

KVMSTAT = str(BUILD / "kvmstat")
PLUGIN = str(BUILD / "kvm_stats.plugin")
COLLECTD_PLUGIN = str(BUILD / "kvm_stats.so")
FAKEVMM = str(FIXTURES / "fakevmm.py")
ESCAPE = f"kvmstats-names-{os.getpid()}"

# Real stats renamed: a histogram to protocol lines (the Netdata plugin
# makes a chart of each histogram, named after it), a counter to a path
# (collectd's csv makes a file of each), another to both quote characters.
# pf_park_timeouts comes first in the vCPU schema, so its name, with
# control bytes, is the one the message quotes (escaped).
EVIL = "evil\nCHART evil.injected '' t u\nBEGIN evil"
HOSTILE = {
    "pf_park_timeouts": "first\x1b[31m\t\x07",
    "halt_poll_fail_hist": EVIL,
    "exits": f"../../../../tmp/{ESCAPE}",
    "halt_exits": "q' \"x",
}
FIRST_ESCAPED = r"first\x1b[31m\t\x07"
KEYWORDS_137 = {"CHART", "DIMENSION", "CLABEL", "CLABEL_COMMIT", "BEGIN", "SET",
                "END", "DISABLE", "FUNCTION"}


def message_re(prefix, pid, name):
    """The one line a front end says about this VM's names."""
    return re.compile(
        re.escape(prefix) + r"VM " + re.escape(name)
        + re.escape(f" (pid {pid}): 4 stat names from qmp left out: not C identifiers"
                    f" of at most 64 characters (first: \"{FIRST_ESCAPED}\")") + "$")


class Peer:
    """A fakevmm with the hostile names, and the /proc it is seen in."""

    def __init__(self, tmp_path, mode):
        self.sock = str(tmp_path / "qmp.sock")
        argv = [sys.executable, FAKEVMM, "--qmp", self.sock, "--tick", "5"]
        for old, new in HOSTILE.items():
            argv += ["--rename", f"{old}={new}"]
        if mode == "fake":
            argv.append("--no-vm")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if self.proc.poll() == 77 or not line.startswith("ready "):
            self.stop()
            pytest.skip(f"SKIP: fakevmm could not make a KVM VM: {line!r}")
        self.pid = int(line.split()[1])
        self.fake = None
        if mode == "fake":
            self.fake = FakeProc()
            self.fake.add(self.pid, cmdline=["qemu-system-x86_64", "-name", "guest=web1"])
            self.name = "web1"
        else:
            # A real VM of a process no VMM table knows: named by its comm.
            self.name = Path(f"/proc/{self.pid}/comm").read_text().strip()

    def env(self, **extra):
        env = self.fake.env() if self.fake else dict(os.environ)
        env.update(extra)
        return env

    def proc_root(self):
        return {"KVMSTATS_PROC_ROOT": str(self.fake.root)} if self.fake else {}

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        if getattr(self, "fake", None):
            self.fake.cleanup()


MODES = [
    "fake",
    pytest.param("kvm", marks=pytest.mark.skipif(kvm_missing_reason() is not None,
                                                 reason=kvm_missing_reason() or "")),
]


@pytest.fixture(params=MODES)
def peer(request, tmp_path):
    p = Peer(tmp_path, request.param)
    yield p
    p.stop()


def bad_in(text):
    """The hostile names (or their telling parts) found in text."""
    return [n for n in (*HOSTILE.values(), "CHART evil", "BEGIN evil", ESCAPE, "q'",
                        "\x1b")
            if n in text]


def walk_keys(o):
    if isinstance(o, dict):
        for k, v in o.items():
            yield k
            yield from walk_keys(v)
    elif isinstance(o, list):
        for v in o:
            yield from walk_keys(v)



def test_kvmstat(peer):
    r = subprocess.run([KVMSTAT, "--qmp", peer.sock, "--pid", str(peer.pid), "--no-debugfs",
                        "--json", "1", "3"], env=peer.env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode("utf-8")      # valid UTF-8, or this raises
    lines = out.splitlines()
    assert len(lines) == 3
    for line in lines:
        doc = json.loads(line)
        (vm,) = [v for v in doc["vms"] if v["pid"] == peer.pid]
        assert len(vm["vcpus"]) == 2
        for c in vm["vcpus"]:
            assert c["source"] == "qmp"
            stats = c["stats"]
            assert not bad_in(" ".join(walk_keys(stats)))
            # The others are kept, histograms too, with QEMU's values.
            assert len(stats["halt_wait_hist"]["value"]) == 32
            assert stats["irq_exits"]["value"] >= 0
            assert "halt_poll_success_hist" in stats
    assert not bad_in(out)
    assert lines[-1] != lines[0]        # --tick: fresh answers each interval

    err = r.stderr.decode("ascii")      # escaped: ASCII only
    said = [l for l in err.splitlines() if "left out" in l]
    assert len(said) == 1, err
    assert message_re("kvmstat: ", peer.pid, peer.name).match(said[0]), said[0]
    assert all(l.startswith("kvmstat: ") for l in err.splitlines()), err

    # The table with every stat as a column (-s): no control byte.
    r = subprocess.run([KVMSTAT, "--qmp", peer.sock, "--pid", str(peer.pid), "--no-debugfs",
                        "-s", "/./", "1", "2"], env=peer.env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"halt_wait_ns" in r.stdout
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", r.stdout)
    assert not bad_in(r.stdout.decode("utf-8"))


def run_plugin(peer, tmp_path, seconds_after_charts=3):
    conf = tmp_path / "netdata-conf"
    conf.mkdir()
    (conf / "kvm_stats.conf").write_text(
        "[kvm_stats]\nrescan every = 1\n"
        f"qmp socket = {peer.sock}\n"
        "groups = all\nper vcpu charts = yes\nper vcpu groups = all\n"
        "histograms = yes\nper vcpu histograms = yes\nzero dimensions = yes\n")
    env = peer.env(NETDATA_USER_CONFIG_DIR=str(conf), NETDATA_STOCK_CONFIG_DIR="/nonexistent",
                   NETDATA_VERSION="v1.37.1", NETDATA_UPDATE_EVERY="1")
    proc = subprocess.Popen([PLUGIN, "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    data, deadline, charted = b"", time.monotonic() + 60, None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                data += chunk
            if charted is None and re.search(rb"^CHART \S*vcpu1_halt_wait_hist ", data, re.M):
                charted = time.monotonic()
            if charted is not None and time.monotonic() > charted + seconds_after_charts:
                break
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    return (data + rest), err


def test_netdata_plugin(peer, tmp_path):
    out, err = run_plugin(peer, tmp_path)
    text = out.decode("utf-8")
    lines = [l for l in text.split("\n") if l]
    assert lines, err
    for line in lines:
        assert line.split(" ", 1)[0] in KEYWORDS_137, line
    assert not bad_in(text)
    # Histograms and per-vCPU charts were on, and QEMU's other stats charted.
    charts = [l.split(" ")[1] for l in lines if l.startswith("CHART ")]
    assert any(c.endswith(".halt_wait_hist") for c in charts), charts
    assert any(c.endswith(".vcpu0_halt_poll_success_hist") for c in charts), charts
    assert not any("halt_poll_fail_hist" in c for c in charts)
    assert "SET 'irq_exits' = " in text

    err = err.decode("ascii")
    said = [l for l in err.splitlines() if "left out" in l]
    assert len(said) == 1, err
    assert message_re("kvm_stats.plugin: ", peer.pid, peer.name).match(said[0]), said[0]


@requires_root
@pytest.mark.skipif(collectd_missing_reason() is not None,
                    reason=collectd_missing_reason() or "")
def test_collectd(peer, tmp_path):
    plugin = ("LoadPlugin kvm_stats\n<Plugin kvm_stats>\n"
              f'  QMPSocket "{peer.sock}"\n'
              "  PerVCPU true\n  Histograms true\n  RefreshInterval 1\n</Plugin>\n")
    with daemon_factory(tmp_path) as daemons:
        cd = daemons.collectd(plugin_dir_extra=COLLECTD_PLUGIN, debian_plugins=(),
                              plugin_blocks=plugin, csv=True, env=peer.proc_root())
        # Another VM of that name gets "_<pid>" (README, Identifiers).
        base = Path(cd.data_dir) / cd.hostname
        names = (f"kvm_stats-{peer.name}", f"kvm_stats-{peer.name}_{peer.pid}")
        wait_until(lambda: any((base / n).is_dir() for n in names), 30,
                   what=f"a csv directory for pid {peer.pid}")
        inst = next(n for n in names if (base / n).is_dir())
        cd.wait_for_csv(inst, "derive-irq_exits", rows=2)
        cd.wait_for_csv(f"{inst}-vcpu1", "derive-halt_wait_hist-lt1ns", rows=2)
        root, data_dir = Path(cd.root), Path(cd.data_dir)
        files = [p for p in root.rglob("*")]
        log = cd.log()
    # Everything collectd wrote is its own files or csv under DataDir.
    own = {"collectd.conf", "collectd.log", "collectd.pid", "stdio.log", "plugins"}
    for p in files:
        rel = p.relative_to(root)
        assert rel.parts[0] in own | {"csv"} or rel.name.startswith("test-"), rel
        assert not re.search(r"[\x00-\x1f\x7f]", str(rel)), rel
        assert not bad_in(str(rel)), rel
    csv_files = [p for p in files if str(p).startswith(f"{data_dir}/")]
    assert any("derive-halt_wait_hist-" in p.name for p in csv_files), files
    assert not any("halt_poll_fail_hist" in p.name for p in csv_files)
    assert not escaped_to_tmp(ESCAPE)

    said = [l for l in log.splitlines() if "left out" in l]
    assert len(said) == 1, log
    line = said[0].split("] ", 2)[-1]   # after "[time] [warning] "
    assert message_re("kvm_stats plugin: ", peer.pid, peer.name).match(line), said[0]
