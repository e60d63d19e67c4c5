# SPDX-License-Identifier: MIT
"""kvmstat on real KVM VMs, checked against the exits the VMs counted.

Every VM here is a tests/fixtures/testvm process: each vCPU makes exactly K
MMIO writes to an unbacked address (K KVM_EXIT_MMIO) and then one hlt
(one KVM_EXIT_HLT), and testvm writes what it saw to a JSON file. On every
backend KVM counts these two exactly (mmio_exits, halt_exits), so they are
compared for equality; exits of other kinds are not (KVM_STATS_FACTS.md).
"""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUILD, requires_kvm, requires_root, wait_for

KVMSTAT = str(BUILD / "kvmstat")
CAP_DAC_READ_SEARCH = 2
CAP_SYS_PTRACE = 19
ACQUIRE_CAPS = (1 << CAP_SYS_PTRACE) | (1 << CAP_DAC_READ_SEARCH)

pytestmark = requires_kvm


def run_kvmstat(*args, user=None, timeout=60):
    argv = [KVMSTAT, *map(str, args)]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                "--inh-caps=-all", "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def kvmstat_json(*args):
    result = run_kvmstat("--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line]


def entry_of(doc, pid):
    entries = [vm for vm in doc["vms"] if vm["pid"] == pid]
    assert len(entries) == 1, f"pid {pid} reported {len(entries)} times: {doc}"
    return entries[0]


def stat(vcpu, name):
    return vcpu["stats"][name]


class Follower:
    """A long-running `kvmstat --json 1`, read one interval at a time."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([KVMSTAT, "--json", *map(str, args), "1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.pid = self.proc.pid

    def next(self):
        line = self.proc.stdout.readline()
        assert line, f"kvmstat ended: {self.proc.wait()} {self.proc.stderr.read()}"
        return json.loads(line)

    def until(self, predicate, intervals=10):
        for _ in range(intervals):
            doc = self.next()
            if predicate(doc):
                return doc
        raise AssertionError(f"not seen in {intervals} intervals")

    def fds(self):
        fd_dir = f"/proc/{self.pid}/fd"
        links = []
        for fd in os.listdir(fd_dir):
            try:
                links.append(os.readlink(f"{fd_dir}/{fd}"))
            except FileNotFoundError:
                pass
        return links

    def status(self):
        with open(f"/proc/{self.pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


@pytest.fixture
def follower():
    followers = []

    def start(*args):
        f = Follower(*args)
        followers.append(f)
        return f

    yield start
    for f in followers:
        if f.proc.poll() is None:
            f.stop()


@pytest.mark.parametrize("hold", ["vcpu", "vm,vcpu"])
@pytest.mark.parametrize("vcpus", [1, 4])
def test_exact_counts(testvm, vcpus, hold):
    k = 2345
    vm = testvm("--vcpus", vcpus, "--mmio", k, "--hold", hold, name=f"exact{vcpus}")
    truth = vm.counts()["vms"][0]

    entry = entry_of(kvmstat_json("--no-debugfs", "--pid", vm.pid, 1, 1)[0], vm.pid)

    assert entry["name"] == f"exact{vcpus}"
    assert entry["name_source"] == "cmdline"
    assert entry["vm_fd"] == truth["vm_fd"]
    assert entry["nvms"] == 1
    assert [c["vcpu"] for c in entry["vcpus"]] == [c["vcpu"] for c in truth["vcpus"]]
    for seen, counted in zip(entry["vcpus"], truth["vcpus"]):
        assert counted["mmio"] == k and counted["hlt"] == 1
        assert stat(seen, "mmio_exits")["value"] == counted["mmio"]
        assert stat(seen, "halt_exits")["value"] == counted["hlt"]
        # The VM halted before the interval began: nothing changed in it.
        assert stat(seen, "mmio_exits")["delta"] == 0
        assert stat(seen, "halt_wait_hist")["type"] == "log_hist"
        assert len(stat(seen, "halt_wait_hist")["value"]) == 32
        # Bounds in raw units, the scale of "value" (ns here), as exact
        # integers: bucket i of a log histogram ends at 2^i, the last is open.
        hist = stat(seen, "halt_wait_hist")
        assert (hist["unit"], hist["exponent"]) == ("seconds", -9)
        assert hist["bucket_upper_bounds"] == [1 << i for i in range(31)] + [None]
        assert all(type(b) is int for b in hist["bucket_upper_bounds"][:-1])
    total = sum(stat(c, "mmio_exits")["value"] for c in entry["vcpus"])
    assert total == k * vcpus
    assert {c["source"] for c in entry["vcpus"]} == {"fd"}
    if "vm" in hold.split(","):
        assert entry["source"] == "fd"
        assert entry["stats"]["pages_4k"]["type"] == "instant"
    else:
        assert entry["source"] == "none"
        assert entry["stats"] is None


def test_table_rows_and_totals(testvm):
    k = 1000
    vm = testvm("--vcpus", 2, "--steady", 500, name="table", state="running")
    result = run_kvmstat("--pid", vm.pid, "--totals", 1, 2)
    assert result.returncode == 0, result.stderr
    reports = [r for r in result.stdout.split("\n\n") if r.strip()]
    assert len(reports) == 2
    header, *rows = reports[-1].splitlines()
    assert header.split() == ["pid", "vm", "vcpu", "exits", "haltx", "irqx", "irqwx",
                              "iox", "mmiox", "irqs", "emul", "eptv", "run%", "wait%"]
    cells = [row.split() for row in rows]
    assert [c[2] for c in cells] == ["0", "1", "all"]
    mmiox = [int(c[header.split().index("mmiox")]) for c in cells]
    # A steady 500 exits/s per vCPU; the total row is the sum of the others.
    assert all(400 <= m <= 600 for m in mmiox[:2]), mmiox
    assert mmiox[2] == mmiox[0] + mmiox[1]
    assert k  # the steady VM needs no K


def test_steady_rate_delta(testvm):
    rate = 2000
    vm = testvm("--vcpus", 1, "--steady", rate, name="steady", state="running")
    docs = kvmstat_json("--pid", vm.pid, 1, 3)
    deltas = [stat(entry_of(d, vm.pid)["vcpus"][0], "mmio_exits")["delta"] for d in docs]
    for delta in deltas:
        assert abs(delta - rate) <= rate * 0.1, deltas
    values = [stat(entry_of(d, vm.pid)["vcpus"][0], "mmio_exits")["value"] for d in docs]
    assert values[2] - values[1] == deltas[2]
    vm.stop()
    assert vm.counts()["state"] == "exited"


def test_several_vms_in_one_process(testvm):
    k = 700
    vm = testvm("--vms", 2, "--vcpus", 2, "--mmio", k, "--hold", "vm,vcpu", name="pair")
    entry = entry_of(kvmstat_json("--no-debugfs", "--pid", vm.pid, 1, 1)[0], vm.pid)
    # One entry for the process: the kernel does not say which VM a vCPU
    # stats fd belongs to. Every vCPU once, none twice.
    assert entry["nvms"] == 2
    assert entry["vm_fd"] == -1
    assert entry["stats"] is None
    assert sorted(c["vcpu"] for c in entry["vcpus"]) == [0, 0, 1, 1]
    assert len({c["vmm_fd"] for c in entry["vcpus"]}) == 4
    assert [stat(c, "mmio_exits")["value"] for c in entry["vcpus"]] == [k] * 4


def test_filters(testvm):
    a = testvm("--mmio", 10, name="prod-web")
    b = testvm("--mmio", 20, name="test-db")
    doc = kvmstat_json("--name", "/^prod-/", "--stat", "mmio_exits",
                       "--stat", "/^halt_exits$/", 1, 1)[0]
    pids = {vm["pid"] for vm in doc["vms"]}
    assert a.pid in pids and b.pid not in pids
    stats = entry_of(doc, a.pid)["vcpus"][0]["stats"]
    assert sorted(stats) == ["halt_exits", "mmio_exits"]
    assert stats["mmio_exits"]["value"] == 10

    table = run_kvmstat("--pid", b.pid, "--stat", "mmio_exits", 1, 1)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.strip().splitlines()
    assert header.split() == ["pid", "vm", "vcpu", "mmio_exits"]
    assert row.split() == [str(b.pid), "test-db", "0", "0"]


# VM names anybody may choose (QEMU -name guest=...), as testvm passes them.
# common/cmdline.c keeps at most 4096 bytes of a name; "\udcXX" is the byte
# XX, not UTF-8, through Python's surrogateescape.
NAME_MAX = 4096
LONG = "0123456789abcdef" * 320     # 5120 bytes: cut to 4096
HOSTILE_NAMES = {
    "quotes-newline-esc": "a'b\"c\nCHART x \\ \x1b[31m",
    "spaces": "my vm  two ",
    "slashes": "a/b/../c/",
    "dotdot": "..",
    "traversal": "../../etc/passwd",
    "leading-dash": "-n--json",
    "dashes": "web-1-a",
    "4096": LONG[:NAME_MAX],
    "over-4096": LONG,
    "invalid-utf8": "bad\udcff\udcfe\udcc3utf8",
    # 1400 three-byte characters: the 4096-byte cut leaves one stray byte.
    "utf8-cut-at-4096": "\u20ac" * 1400,
}


def reported_bytes(name):
    """The name as kvm_stats keeps it: its bytes, cut at 4096."""
    return os.fsencode(name)[:NAME_MAX]


def table_cell(name):
    """kvmstat's vm column: 16 bytes, control bytes as '?', padded."""
    cell = bytes(b if b >= 0x20 and b != 0x7f else ord("?") for b in reported_bytes(name)[:16])
    return cell.ljust(16)


@pytest.mark.parametrize("name", [pytest.param(n, id=i) for i, n in HOSTILE_NAMES.items()])
def test_hostile_name(testvm, name):
    k = 5 + len(name) % 50
    vm = testvm("--mmio", k, name=name)
    truth = vm.counts()["vms"][0]["vcpus"][0]
    assert truth["mmio"] == k and truth["hlt"] == 1

    # The table: one header and one row; the vm column is the name's first
    # 16 bytes with control bytes as '?', and every other column is intact.
    table = subprocess.run([KVMSTAT, "--pid", str(vm.pid), "1", "1"],
                           capture_output=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert table.stderr == b""
    lines = table.stdout.split(b"\n")
    assert lines[2:] == [b"", b""], lines
    row = lines[1]
    assert row[:8] == b"%7d " % vm.pid
    assert row[8:24] == table_cell(name)
    cells = row[24:].split()
    assert cells[:10] == [b"0"] + [b"0"] * 9     # vcpu 0, no exit this interval
    assert len(cells) == 12                      # and its thread's run% and wait%
    assert b"\x1b" not in table.stdout

    # JSON: the name, cut at 4096 bytes, bad UTF-8 bytes replaced; the
    # counts exact.
    entry = entry_of(kvmstat_json("--pid", vm.pid, 1, 1)[0], vm.pid)
    assert entry["name"] == reported_bytes(name).decode("utf-8", errors="replace")
    assert entry["name_source"] == "cmdline"
    assert stat(entry["vcpus"][0], "mmio_exits")["value"] == truth["mmio"]
    assert stat(entry["vcpus"][0], "halt_exits")["value"] == truth["hlt"]


def test_hotplugged_vcpu_is_picked_up(testvm, follower):
    k = 300
    vm = testvm("--vcpus", 1, "--mmio", k, name="hotplug")
    f = follower("--pid", vm.pid)
    assert len(entry_of(f.next(), vm.pid)["vcpus"]) == 1
    vm.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: len(vm.counts()["vms"][0]["vcpus"]) == 2
             and vm.counts()["state"] == "halted", what="hot-plugged vCPU halted")
    doc = f.until(lambda d: len(entry_of(d, vm.pid)["vcpus"]) == 2)
    new = entry_of(doc, vm.pid)["vcpus"][1]
    assert new["vcpu"] == 1
    assert stat(new, "mmio_exits")["value"] == k
    assert stat(new, "halt_exits")["value"] == 1


def uevent_socket():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)  # KOBJECT_UEVENT
    s.bind((0, 1))
    s.settimeout(0.2)
    return s


def destroyed_pids(sock, seconds):
    """PIDs of KVM VMs destroyed (last reference dropped) within seconds."""
    pids, deadline = set(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            fields = sock.recv(65536).split(b"\0")
        except socket.timeout:
            continue
        if b"EVENT=destroy" in fields:
            pids |= {int(f[4:]) for f in fields if f.startswith(b"PID=")}
    return pids


def test_exited_vm_is_released(testvm, follower):
    keeper = testvm("--mmio", 1, name="keeper")
    f = follower("--name", "/^(keeper|leaver)$/")
    f.until(lambda d: any(vm["pid"] == keeper.pid for vm in d["vms"]))
    baseline = sorted(f.fds())

    vm = testvm("--vcpus", 4, "--mmio", 50, "--hold", "vm,vcpu", name="leaver")
    f.until(lambda d: any(e["pid"] == vm.pid for e in d["vms"]))
    stats_fds = [l for l in f.fds() if l.startswith("anon_inode:kvm-")]
    assert len(stats_fds) == len([l for l in baseline if l.startswith("anon_inode:kvm-")]) + 5

    events = uevent_socket()
    assert vm.stop() == 0
    doc = f.next()  # one interval after the VMM exited
    assert all(e["pid"] != vm.pid for e in doc["vms"])
    assert sorted(f.fds()) == baseline
    # The kernel destroys the VM only when the last stats fd is closed: ours.
    assert vm.pid in destroyed_pids(events, 3.0)
    events.close()


@requires_root
def test_capabilities_when_run_as_root(testvm, follower):
    vm = testvm("--mmio", 1, name="caps")
    f = follower("--pid", vm.pid)
    f.next()
    # Right after a report kvmstat sleeps until the next interval.
    status = f.status()
    assert int(status["CapPrm"], 16) == ACQUIRE_CAPS
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapInh"], 16) == 0
    assert int(status["CapAmb"], 16) == 0
    assert int(status["CapBnd"], 16) == ACQUIRE_CAPS
    assert status["NoNewPrivs"].strip() == "1"
    f.next()
    assert int(f.status()["CapEff"], 16) == 0


@requires_root
def test_unprivileged_user_is_told_what_is_missing(testvm):
    testvm("--mmio", 1, name="rootvm")
    result = run_kvmstat(1, 1, user=65534)
    assert result.returncode == 1
    assert result.stdout == ""
    # One line, exactly: what is missing and the command that grants it.
    assert re.fullmatch(r"kvmstat: [1-9]\d* processes could not be inspected: not root and "
                        r"without CAP_SYS_PTRACE\. Run as root, or grant it: setcap "
                        r"cap_sys_ptrace,cap_dac_read_search\+ep " + re.escape(KVMSTAT) + "\n",
                        result.stderr), result.stderr


def test_unselected_vms_are_not_touched(testvm, follower):
    mine = testvm("--vcpus", 2, "--mmio", 1, name="mine")
    theirs = testvm("--vcpus", 3, "--mmio", 1, name="theirs")
    f = follower("--name", "mine")
    assert [e["pid"] for e in f.next()["vms"]] == [mine.pid]
    links = [l for l in f.fds() if l.startswith("anon_inode:kvm-")]
    assert sorted(links) == ["anon_inode:kvm-vcpu-stats:0", "anon_inode:kvm-vcpu-stats:1"]
    assert theirs.pid


@requires_root
def test_root_without_ptrace_is_told_apart(testvm):
    vm = testvm("--mmio", 3, "--user", 65534, name="nobodys")
    # Root whose bounding set lacks CAP_SYS_PTRACE, as in some containers:
    # another user's VMM is out of reach.
    result = subprocess.run(
        ["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-all", "--",
         KVMSTAT, "--pid", str(vm.pid), "1", "1"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "running as root but without CAP_SYS_PTRACE" in result.stderr
    # With it, the same VM is read, and its counts are exact.
    entry = entry_of(kvmstat_json("--pid", vm.pid, 1, 1)[0], vm.pid)
    assert stat(entry["vcpus"][0], "mmio_exits")["value"] == 3


@requires_root
def test_user_sees_own_vm_without_privilege(testvm):
    vm = testvm("--mmio", 4, "--user", 65534, name="own")
    result = run_kvmstat("--json", "--pid", vm.pid, 1, 1, user=65534)
    assert result.returncode == 0, result.stderr
    entry = entry_of(json.loads(result.stdout), vm.pid)
    assert stat(entry["vcpus"][0], "mmio_exits")["value"] == 4


def test_vmm_without_stats_fds(testvm):
    vm = testvm("--mmio", 1, "--hold", "none", name="nostats")
    result = run_kvmstat("--no-debugfs", "--pid", vm.pid, 1, 1)
    assert result.returncode == 1
    assert "hold no KVM stats fd" in result.stderr


def test_no_vm_matches(testvm):
    testvm("--mmio", 1, name="other")
    result = run_kvmstat("--name", "no-such-vm", 1, 1)
    assert result.returncode == 1
    assert "no VM matches" in result.stderr


def test_bad_arguments():
    for args in (["0"], ["1", "0"], ["-x"], ["--stat", "/(/"], ["1", "2", "3"]):
        result = run_kvmstat(*args)
        assert result.returncode == 2, args
        assert result.stderr
