# SPDX-License-Identifier: MIT
"""common/qmp.c against a real QEMU 7.2 (Debian 12's) with KVM.

Each test starts qemu-system-x86_64 with two vCPUs, no disk (SeaBIOS runs,
finds nothing to boot and keeps the KVM counters moving) and a QMP socket,
and stops it by pid. qmp.c has no front end of its own yet, so
tests/fixtures/qmp_query (a small driver on the library) calls
qmp_query_stats() and prints the result as JSON. The test asks QEMU itself,
over the same socket, just before and just after: every cumulative or peak
value the driver reports must lie between the two, histograms must have the
sizes QEMU reports, and the peer pid must be QEMU's.

QEMU sends every list of query-stats last element first (QAPI_LIST_PREPEND
in its add_kvmstat_entry(), 7.1 to 10.0 at least), so QEMU's own lists are
turned round here before they are compared; that the result is the kernel's
bucket order is checked against the kernel's own rule for log histograms
(test_histograms_in_kernel_order), on QEMU 7.2 and QEMU 10.
"""
import errno
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import qemus
from conftest import BUILD, requires_qemu, requires_qemu10, wait_for

QMP_QUERY = BUILD / "tests/fixtures/qmp_query"
pytestmark = requires_qemu

# QMP type names -> decode_type_name(); units absent in QMP are "none".
TYPES = {"cumulative": "cumulative", "instant": "instant", "peak": "peak",
         "linear-histogram": "linear_hist", "log2-histogram": "log_hist"}
ORDERED = {"cumulative", "peak", "linear-histogram", "log2-histogram"}


class Qmp:
    """A minimal QMP client: greeting, capabilities, commands, events skipped."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rwb")
        self.greeting = self._read()
        assert "QMP" in self.greeting, self.greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.file.readline()
            assert line, "QEMU closed the QMP socket"
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, execute, **arguments):
        req = {"execute": execute}
        if arguments:
            req["arguments"] = arguments
        self.file.write(json.dumps(req).encode() + b"\n")
        self.file.flush()
        msg = self._read()
        assert "return" in msg, msg
        return msg["return"]

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def qemu_sample(path):
    """query-stats for both targets, keyed like qmp_query's output."""
    with Qmp(path) as q:
        vm = q.cmd("query-stats", target="vm")
        vcpu = q.cmd("query-stats", target="vcpu")
        cpus = {c["qom-path"]: c["cpu-index"] for c in q.cmd("query-cpus-fast")}
    def flat(entry):    # lists back in the kernel's order
        return {s["name"]: s["value"][::-1] if isinstance(s["value"], list) else s["value"]
                for s in entry["stats"]}
    return {"vm": flat(next(e for e in vm if e["provider"] == "kvm")),
            "vcpus": {cpus[e["qom-path"]]: flat(e) for e in vcpu if e["provider"] == "kvm"}}


def qmp_query(path, timeout_ms=2000, repeat=1):
    result = subprocess.run([str(QMP_QUERY), str(path), str(timeout_ms), str(repeat)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"qmp_query: {result.returncode} {result.stderr}"
    return json.loads(result.stdout)


class Qemu:
    def __init__(self, version="7.2"):
        # sun_path holds 108 bytes: a short directory of our own, not tmp_path.
        self.dir = Path(tempfile.mkdtemp(prefix="qmp-"))
        self.sock = self.dir / "qmp.sock"
        self.proc = subprocess.Popen(
            qemus.QEMUS[version].argv("-m", "64", "-smp", "2", "-nographic",
                               "-name", "guest=qmptest,debug-threads=on",
                               "-qmp", f"unix:{self.sock},server=on,wait=off"),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.pid = self.proc.pid

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"QEMU exited: {self.proc.stderr.read().decode()}")
            return self.sock.exists()
        wait_for(ready, timeout=20, what="QEMU's QMP socket")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()       # this pid only
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def qemu():
    assert QMP_QUERY.exists(), f"{QMP_QUERY} not built: run make first"
    vm = Qemu()
    yield vm
    vm.stop()


def between(name, lo, mid, hi):
    if isinstance(mid, list):
        assert len(lo) == len(mid) == len(hi), name
        for i, (a, b, c) in enumerate(zip(lo, mid, hi)):
            assert a <= b <= c, f"{name}[{i}]: {a} <= {b} <= {c}"
    else:
        assert int(lo) <= mid <= int(hi), f"{name}: {lo} <= {mid} <= {hi}"


def test_matches_qemu(qemu):
    time.sleep(0.5)     # let SeaBIOS bring both vCPUs up
    with Qmp(qemu.sock) as q:
        schemas = {s["target"]: {x["name"]: x for x in s["stats"]}
                   for s in q.cmd("query-stats-schemas") if s["provider"] == "kvm"}
    before = qemu_sample(qemu.sock)
    ours = qmp_query(qemu.sock)
    after = qemu_sample(qemu.sock)

    assert ours["pid"] == qemu.pid
    assert [v["cpu-index"] for v in ours["vcpus"]] == [0, 1]

    for target in ("vm", "vcpu"):
        assert set(ours["schema"][target]) == set(schemas[target])
        for name, qs in schemas[target].items():
            d = ours["schema"][target][name]
            assert d["known"], name
            assert d["type"] == TYPES[qs["type"]], name
            assert d["unit"] == qs.get("unit", "none"), name
            assert d["exponent"] == qs["exponent"], name
            assert d["base"] == qs.get("base", 10), name
            assert d["bucket_size"] == qs.get("bucket-size", 0), name

    samples = [(ours["vm"], before["vm"], after["vm"], schemas["vm"], ours["schema"]["vm"])]
    for v in ours["vcpus"]:
        i = v["cpu-index"]
        samples.append((v["stats"], before["vcpus"][i], after["vcpus"][i],
                        schemas["vcpu"], ours["schema"]["vcpu"]))
    for mine, lo, hi, qschema, schema in samples:
        assert set(mine) == set(lo)
        for name, value in mine.items():
            if isinstance(hi[name], list):
                # the size QEMU reports (32 for KVM's log histograms)
                assert schema[name]["size"] == len(hi[name]), name
            if qschema[name]["type"] in ORDERED:
                between(name, lo[name], value, hi[name])
            else:
                assert isinstance(value, int) and value >= 0, name
    # The guest runs: something counted while we looked.
    assert sum(after["vcpus"][i]["exits"] + after["vcpus"][i]["halt_wakeup"]
               for i in (0, 1)) > sum(before["vcpus"][i]["exits"] +
                                      before["vcpus"][i]["halt_wakeup"] for i in (0, 1))


def test_counters_move_and_timing(qemu):
    first = qmp_query(qemu.sock)
    time.sleep(1.0)
    runs = qmp_query(qemu.sock, repeat=20)
    for a, b in zip(first["vcpus"], runs["vcpus"]):
        for name, v in b["stats"].items():
            if first["schema"]["vcpu"][name]["type"] == "cumulative":
                assert v >= a["stats"][name], name
    assert sum(v["stats"]["halt_wait_ns"] for v in runs["vcpus"]) > \
        sum(v["stats"]["halt_wait_ns"] for v in first["vcpus"])
    median_ms = statistics.median(runs["elapsed_us"]) / 1000
    print(f"qmp_query_stats round trip: median {median_ms:.1f} ms, "
          f"max {max(runs['elapsed_us']) / 1000:.1f} ms over 20 calls")
    assert median_ms < 100


def test_busy_while_monitor_held(qemu):
    """QEMU serves one QMP client: a second waits unanswered, bounded by the timeout."""
    with Qmp(qemu.sock):
        t0 = time.monotonic()
        result = subprocess.run([str(QMP_QUERY), str(qemu.sock), "300"],
                                capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - t0
        assert result.returncode == errno.EBUSY, result.stderr
        assert 0.3 <= elapsed < 1.0
    assert qmp_query(qemu.sock)["pid"] == qemu.pid


def test_qemu_gone(qemu):
    sock = qemu.sock
    qemu.proc.terminate()
    qemu.proc.wait(timeout=10)
    result = subprocess.run([str(QMP_QUERY), str(sock), "300"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode in (errno.ECONNREFUSED, errno.ENOENT), result.stderr


HALT_HISTS = (("halt_wait_hist", "halt_wait_ns"),
              ("halt_poll_success_hist", "halt_poll_success_ns"),
              ("halt_poll_fail_hist", "halt_poll_fail_ns"))


def log_hist_fits(hist, ns):
    """The kernel's KVM_STATS_LOG_HIST_UPDATE(hist, v) counts v in bucket
    fls64(v) (bucket n >= 1 holds [2^(n-1), 2^n), the last one all above)
    and adds the same v to the *_ns counter. So in the right order:
    sum hist[n] * lo(n) <= ns and, the last bucket empty, ns < sum hist[n] * 2^n."""
    lo = sum(c * (1 << (n - 1) if n else 0) for n, c in enumerate(hist))
    hi = sum(c << n for n, c in enumerate(hist))
    return lo <= ns and (hist[-1] > 0 or ns < hi or hi == ns == 0)


@pytest.mark.parametrize("version", ["7.2", pytest.param("10", marks=requires_qemu10)])
def test_histograms_in_kernel_order(version):
    """kvm_stats' QMP source gives each halt histogram in the kernel's order:
    it fits the matching *_ns counter, on a paused VM (nothing moves), and
    QEMU's list as sent does not wherever the order tells."""
    assert QMP_QUERY.exists(), f"{QMP_QUERY} not built: run make first"
    vm = Qemu(version)
    try:
        def halted():
            return any(sum(v["stats"]["halt_wait_hist"]) for v in qmp_query(vm.sock)["vcpus"])
        wait_for(halted, timeout=15, step=0.2, what="a vCPU halt")
        with Qmp(vm.sock) as q:
            q.cmd("stop")
        time.sleep(0.3)     # in-flight halts finish
        ours = qmp_query(vm.sock)
        sent = qemu_sample(vm.sock)
    finally:
        vm.stop()
    told = 0
    for v in ours["vcpus"]:
        for hist, ns in HALT_HISTS:
            h, n = v["stats"][hist], v["stats"][ns]
            assert len(h) == 32, hist
            assert log_hist_fits(h, n), f"vCPU {v['cpu-index']} {hist} {h} vs {ns} {n}"
            # qemu_sample() turned QEMU's list round: as sent, it is h[::-1].
            assert sent["vcpus"][v["cpu-index"]][hist] == h, hist
            if not log_hist_fits(h[::-1], n):
                told += 1
    assert told > 0, "no histogram whose order the counters tell"
