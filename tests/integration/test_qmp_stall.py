# SPDX-License-Identifier: MIT
"""No QMP peer can stall the others (issue 18): ten stuck QMP sockets and
one healthy one, in the Netdata plugin and in a real collectd.

The stuck peers are tests/fixtures/fakevmm.py processes, mixed the three
ways a QEMU can stop answering: four answered normally and were then
SIGSTOPped (a QEMU whose main loop stopped: the kernel still queues our
connections in its listen backlog, then refuses them once it is full),
three accept and never say a word (--behave silent: a monitor another
client holds looks the same), three say everything a byte a second
(--behave trickle). The healthy one grows its counters at every query
(--tick), so a test can tell this sample's values from stale ones. On a
host without KVM they run with --no-vm and a fake /proc tree (FakeProc)
lists them as VMMs; the requires_kvm variant is the issue's literal case,
the healthy VM served by held stats fds.

What is judged, after a warm-up: the healthy VM keeps its 1 s cadence,
with this sample's values, every sample. Why skip the warm-up: by design
two things may cost the others one deadline (500 ms) once: the first
rescan waits for new sockets (so the first sample has their values), and
a peer that was answering and suddenly stalls (the SIGSTOP) costs its
deadline once before it is known stuck. Both are over within the first
two samples after the stop; the warm-up is three. Before the fix every
sample waited 500 ms for each stuck socket in turn (several seconds per
sample here).

How the cadence is measured: the issue's bound is 50 ms. It is asserted on
the plugin's own clock (the microseconds since the last sample that each
BEGIN line carries, taken by the plugin on CLOCK_MONOTONIC) and on
collectd's csv timestamps (its dispatch time: a late sample is late there).
The time at which this test reads each BEGIN line from the pipe is noisier
on a loaded 2-core box (the test's own scheduling), so it is held to the
same bound in its median and to 250 ms for every interval: still far below
what one stuck peer cost before the fix (500 ms per sample).

Then the stopped peers get SIGCONT: their VMs must have values again within
the backoff bound (1 s doubling to 60 s), and each stuck socket must have
been said exactly once ("did not answer within 500 ms"), the stopped ones
then "answers again" once.
"""
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import BUILD, ROOT, requires_kvm, requires_root  # noqa: E402
from daemons import collectd_missing_reason, daemon_factory  # noqa: E402
from fakeproc import FakeProc  # noqa: E402

FAKEVMM = ROOT / "tests/fixtures/fakevmm.py"
PLUGIN = BUILD / "kvm_stats.plugin"
COLLECTD_PLUGIN = BUILD / "kvm_stats.so"
TICK = 5
# Per sample the healthy VM's "exits" (summed over its 2 vCPUs) grows by
# TICK per query-stats (vm and vcpu: two per exchange) on each vCPU.
STEP = TICK * 2 * 2
BOUND = 0.050           # the issue's: every interval within 50 ms of 1 s
READ_BOUND = 0.250      # the test's own reading of a pipe, on a loaded box
WARMUP = 3.0
WINDOW = 12.0
BACKOFF_MAX = 60.0


class Peers:
    """The fake QEMUs of one test, stopped by pid."""

    def __init__(self, tmp_path, kvm):
        self.dir = tmp_path / "qmp"
        self.dir.mkdir()
        self.kvm = kvm
        self.procs = {}         # name -> Popen
        self.pids = {}
        self.stopped = set()

    def start(self, name, *args):
        argv = [sys.executable, str(FAKEVMM), "--qmp", str(self.path(name)), *args]
        # With KVM: a real VM in the real /proc, named as QEMU names it.
        argv += ["-name", f"guest={name}"] if self.kvm else ["--no-vm"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.procs[name] = proc
        line = proc.stdout.readline().split()
        assert line[:1] == ["ready"], f"fakevmm {name}: {line}"
        self.pids[name] = int(line[1])
        return self.pids[name]

    def path(self, name):
        return self.dir / f"{name}.sock"

    def signal(self, names, sig):
        for name in names:
            os.kill(self.pids[name], sig)

    def cleanup(self):
        for name, proc in self.procs.items():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


STOPPED = [f"stop{i}" for i in range(4)]
SILENT = [f"silent{i}" for i in range(3)]
TRICKLE = [f"trickle{i}" for i in range(3)]
STUCK = STOPPED + SILENT + TRICKLE


@pytest.fixture
def peers(tmp_path):
    p = Peers(tmp_path, kvm=False)
    fake = FakeProc()
    try:
        names = {"healthy": ("--tick", str(TICK))}
        names.update({n: () for n in STOPPED})
        names.update({n: ("--behave", "silent") for n in SILENT})
        names.update({n: ("--behave", "trickle") for n in TRICKLE})
        for name, args in names.items():
            pid = p.start(name, *args)
            fake.add(pid, cmdline=["qemu-system-x86_64", "-name", f"guest={name}"])
        p.fake = fake
        yield p
    finally:
        p.cleanup()
        fake.cleanup()


class TimedPlugin:
    """kvm_stats.plugin run as Netdata runs it; each stdout line with the
    CLOCK_MONOTONIC time this test read it."""

    def __init__(self, tmp_path, config, env):
        conf = tmp_path / "netdata-conf"
        conf.mkdir()
        (conf / "kvm_stats.conf").write_text("[kvm_stats]\nrescan every = 1\n" + config)
        env = dict(env, NETDATA_USER_CONFIG_DIR=str(conf),
                   NETDATA_STOCK_CONFIG_DIR="/nonexistent", NETDATA_VERSION="v1.37.1",
                   NETDATA_UPDATE_EVERY="1")
        self.err_path = tmp_path / "plugin.err"
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen([str(PLUGIN), "1"], stdout=subprocess.PIPE,
                                     stderr=self.err, env=env)
        self.lines = []         # (time, line)
        self.partial = b""

    def read_for(self, seconds):
        deadline = time.monotonic() + seconds
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                continue
            now = time.monotonic()
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the plugin exited: {self.stderr()}")
            *lines, self.partial = (self.partial + chunk).split(b"\n")
            self.lines.extend((now, line.decode(errors="replace")) for line in lines)

    def read_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_for(0.2)
            if predicate():
                return time.monotonic()
        raise AssertionError(f"timed out; stderr: {self.stderr()}")

    def begins(self, chart, since=0.0):
        """(read time, usec or None, {dimension: value}) of each sample of chart."""
        out, current = [], None
        for t, line in self.lines:
            w = line.split()
            if not w:
                continue
            if w[0] == "BEGIN":
                current = None
                if w[1] == chart and t >= since:
                    current = {}
                    out.append((t, int(w[2]) if len(w) > 2 else None, current))
            elif w[0] == "SET" and current is not None:
                current[w[1].strip("'")] = int(w[3])
        return out

    def stderr(self):
        self.err.flush()
        return self.err_path.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def said_counts(text, peers):
    """How often each stuck socket was said to fail, and to answer again."""
    stuck = {n: len(re.findall(re.escape(f"QMP socket {peers.path(n)} (")
                               + r"[^\n]*did not answer within 500 ms: asked again in \d+ s",
                               text)) for n in STUCK}
    again = {n: text.count(f"QMP socket {peers.path(n)} (VM {n}, pid {peers.pids[n]}) "
                           "answers again") for n in STOPPED}
    return stuck, again


def judge_cadence(stamps, what, own_clock=None):
    """stamps: times of consecutive samples (s). own_clock: the intervals
    the front end measured itself (s), held to the issue's bound."""
    assert len(stamps) >= WINDOW - 1, f"{what}: only {len(stamps)} samples in {WINDOW} s"
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    worst = max(abs(g - 1.0) for g in gaps)
    median = statistics.median(abs(g - 1.0) for g in gaps)
    print(f"{what}: {len(gaps)} intervals, worst {worst * 1000:.0f} ms off 1 s, "
          f"median {median * 1000:.1f} ms")
    if own_clock is not None:
        own = max(abs(g - 1.0) for g in own_clock)
        print(f"{what}: the plugin's own intervals: worst {own * 1000:.1f} ms off 1 s")
        assert own <= BOUND, f"{what}: the plugin's own intervals {own_clock}"
        assert worst <= READ_BOUND, f"{what}: intervals {gaps}"
    else:
        assert worst <= BOUND, f"{what}: intervals {gaps}"
    assert median <= BOUND, f"{what}: intervals {gaps}"


def recovery_bound(stuck_for):
    """The backoff in force after stuck_for s of failures is at most about
    stuck_for (1 s doubling, capped at 60 s); then the probe is judged at
    the next sample, and the VM is asked (waited for) at the one after."""
    return min(BACKOFF_MAX, stuck_for + 1.0) + 3.0


def netdata_stall(tmp_path, peers, healthy_chart, env, fresh=True):
    plugin = TimedPlugin(tmp_path, f"qmp socket = {peers.dir}/*.sock\n", env)
    try:
        # Everyone that answers has answered: the healthy VM and the four
        # to be stopped print their charts.
        charts = [f"kvm_{n}.exits" for n in STOPPED] + [healthy_chart]
        plugin.read_until(lambda: all(len([v for _, _, v in plugin.begins(c) if v]) >= 2
                                      for c in charts), 30)
        peers.signal(STOPPED, signal.SIGSTOP)
        stopped_at = time.monotonic()
        plugin.read_for(WARMUP)
        since = time.monotonic()
        plugin.read_for(WINDOW)

        samples = plugin.begins(healthy_chart, since)
        judge_cadence([t for t, _, _ in samples], "netdata, as read",
                      [u / 1e6 for _, u, _ in samples])
        if fresh:
            values = [v["hypercalls"] for _, _, v in samples]
            assert [b - a for a, b in zip(values, values[1:])] == [STEP] * (len(values) - 1)
        # No stuck VM had values meanwhile (a BEGIN without SET is a gap).
        for n in STOPPED:
            assert [v for _, _, v in plugin.begins(f"kvm_{n}.exits", since) if v] == []

        cont_at = time.monotonic()
        peers.signal(STOPPED, signal.SIGCONT)
        bound = recovery_bound(cont_at - stopped_at)
        back = plugin.read_until(
            lambda: all(any(v for _, _, v in plugin.begins(f"kvm_{n}.exits", cont_at))
                        for n in STOPPED),
            bound + 5)
        print(f"netdata: stopped peers back {back - cont_at:.1f} s after SIGCONT "
              f"(bound {bound:.1f} s)")
        assert back - cont_at <= bound
        plugin.read_for(1.5)        # a rescan says it
        stuck, again = said_counts(plugin.stderr(), peers)
        assert stuck == {n: 1 for n in STUCK}, plugin.stderr()
        assert again == {n: 1 for n in STOPPED}, plugin.stderr()
    finally:
        plugin.stop()


def test_netdata_stuck_peers_do_not_stall_a_healthy_vm(tmp_path, peers):
    netdata_stall(tmp_path, peers, "kvm_healthy.exits", peers.fake.env())


requires_collectd = pytest.mark.skipif(collectd_missing_reason() is not None,
                                       reason=collectd_missing_reason() or "")


def collectd_block(peers):
    return ("LoadPlugin kvm_stats\n<Plugin kvm_stats>\n"
            f'  QMPSocket "{peers.dir}/*.sock"\n  RefreshInterval 1\n</Plugin>\n')


@requires_root
@requires_collectd
def test_collectd_stuck_peers_do_not_stall_a_healthy_vm(tmp_path, peers):
    with daemon_factory(tmp_path) as d:
        cd = d.collectd(plugin_dir_extra=str(COLLECTD_PLUGIN), debian_plugins=(),
                        plugin_blocks=collectd_block(peers), csv=True, interval=1,
                        env={"KVMSTATS_PROC_ROOT": str(peers.fake.root)})
        for n in STOPPED + ["healthy"]:
            cd.wait_for_csv(f"kvm_stats-{n}", "derive-exits", rows=2)
        peers.signal(STOPPED, signal.SIGSTOP)
        stopped_at = time.time()
        time.sleep(WARMUP + WINDOW)
        since = stopped_at + WARMUP

        rows = [r for r in cd.csv_rows("kvm_stats-healthy", "derive-exits")
                if r["epoch"] >= since]
        judge_cadence([r["epoch"] for r in rows], "collectd csv")
        values = [r["value"] for r in rows]
        assert [b - a for a, b in zip(values, values[1:])] == [STEP] * (len(values) - 1)
        for n in STOPPED:
            assert not [r for r in cd.csv_rows(f"kvm_stats-{n}", "derive-exits")
                        if r["epoch"] >= since]

        cont_at = time.time()
        peers.signal(STOPPED, signal.SIGCONT)
        bound = recovery_bound(cont_at - stopped_at)

        def back():
            return all(any(r["epoch"] > cont_at
                           for r in cd.csv_rows(f"kvm_stats-{n}", "derive-exits"))
                       for n in STOPPED)
        deadline = time.time() + bound + 5
        while not back() and time.time() < deadline:
            time.sleep(0.2)
        print(f"collectd: stopped peers back {time.time() - cont_at:.1f} s after "
              f"SIGCONT (bound {bound:.1f} s)")
        assert back() and time.time() - cont_at <= bound + 1.5
        time.sleep(1.5)
        stuck, again = said_counts(cd.log(), peers)
        assert stuck == {n: 1 for n in STUCK}, cd.log()
        assert again == {n: 1 for n in STOPPED}, cd.log()


@requires_kvm
def test_netdata_stuck_peers_do_not_stall_held_fds(tmp_path, testvm):
    """The issue's literal case: the healthy VM is a real test VM whose
    stats fds are held (its values need no QMP at all), beside the same ten
    stuck QMP peers, here real KVM VMs themselves (fakevmm without --no-vm)
    found in the real /proc."""
    p = Peers(tmp_path, kvm=True)
    try:
        for n in STOPPED:
            p.start(n)
        for n in SILENT:
            p.start(n, "--behave", "silent")
        for n in TRICKLE:
            p.start(n, "--behave", "trickle")
        testvm("--vcpus", 2, "--steady", 100, "--hold", "vm,vcpu", name="heldfds",
               state="running")
        netdata_stall(tmp_path, p, "kvm_heldfds.exits", dict(os.environ), fresh=False)
    finally:
        p.cleanup()
