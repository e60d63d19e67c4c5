# SPDX-License-Identifier: MIT
"""kvmstat --top in a real terminal: tmux, driven by its keys.

Three QEMUs played by tests/fixtures/fakevmm.py (--no-vm, counters growing
at known, different rates), listed as VMMs in a fake /proc tree
(KVMSTATS_PROC_ROOT), are read through their QMP sockets, so this runs on
a host without /dev/kvm. The view runs inside a tmux server of its own (a
private socket in a temporary directory, no config file), at a fixed size;
keys go in with send-keys, the screen comes back with capture-pane, and the
server is stopped with kill-server on that socket. Each screen is checked:
the rows, their order, the rates against what the fakes make, the header.
A variant on testvm VMs needs /dev/kvm and skips without it.
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, FIXTURES, ROOT, requires_kvm, wait_for
from fakeproc import FakeProc

KVMSTAT = str(BUILD / "kvmstat")
FAKEVMM = str(FIXTURES / "fakevmm.py")
requires_tmux = pytest.mark.skipif(shutil.which("tmux") is None,
                                   reason="no tmux (scripts/deps test installs it)")
# Per vCPU and second; each fake has two vCPUs (the captured QEMU's).
RATES = {"alpha": 100, "bravo": 900, "charlie": 300}
VCPUS = 2


class Fakes:
    """fakevmm.py QEMUs in one fake /proc; stopped by pid."""

    def __init__(self, tmp):
        self.tmp, self.fake, self.procs = tmp, FakeProc(), {}

    def start(self, name, rate, proc_name=None, spin=False):
        """spin: busy vCPU threads named "CPU N/KVM" (their tids in
        proc.spin_tids), listed with kvm-vcpu fds and the real task/
        directory, as QEMU's look to the core."""
        sock = self.tmp / f"{name}.qmp"
        proc = subprocess.Popen([FAKEVMM, "--no-vm", "--qmp", str(sock), "--rate", str(rate),
                                 "--hist", *(["--spin"] if spin else [])],
                                stdout=subprocess.PIPE, text=True)
        self.procs[name] = proc
        line = proc.stdout.readline().split()
        assert line[:1] == ["ready"], line
        proc.spin_tids = [int(t) for w in line[2:] if w.startswith("spin=")
                          for t in w[5:].split(",")]
        fds = {10: "anon_inode:kvm-vm"}
        fds.update({11 + i: f"anon_inode:kvm-vcpu:{i}" for i in range(len(proc.spin_tids))})
        self.fake.add(proc.pid, fds=fds, tasks=spin,
                      cmdline=["qemu-system-x86_64", "-name", f"guest={proc_name or name}"])
        return proc

    def kill(self, name):
        proc = self.procs[name]
        proc.kill()
        proc.wait(timeout=10)
        self.fake.remove(proc.pid)

    def qmp_args(self):
        return [a for name in self.procs for a in ("--qmp", str(self.tmp / f"{name}.qmp"))]

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
        self.fake.cleanup()


class Tmux:
    """One tmux server on a private socket, one window running argv."""

    def __init__(self, tmp, argv, env, width=80, height=24):
        self.sock = str(tmp / "tmux.sock")
        # tmux 3.3 keeps no exit status of a dead pane: the shell writes it.
        self.status_path = tmp / f"status-{time.monotonic_ns()}"
        cmd = "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + \
              " " + " ".join(map(shlex.quote, argv)) + f"; echo $? > {self.status_path}"
        self.tmux("new-session", "-d", "-s", "top", "-x", str(width), "-y", str(height),
                  cmd, ";", "set-option", "-t", "top", "remain-on-exit", "on")
        self.server_pid = int(self.tmux("display-message", "-p", "#{pid}").strip())
        shell = int(self.tmux("display-message", "-p", "#{pane_pid}").strip())
        # The view: the shell's child (env execs it).
        self.pid = wait_for(lambda: self.child_of(shell), 10, what="the view starts")

    @staticmethod
    def child_of(pid):
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def tmux(self, *args):
        # -f /dev/null: no user or system config changes what is drawn.
        return subprocess.run(["tmux", "-f", "/dev/null", "-S", self.sock, *args],
                              capture_output=True, text=True, timeout=10, check=True).stdout

    def screen(self, escapes=False):
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "top")

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "top", *keys)

    def type(self, text):
        self.tmux("send-keys", "-t", "top", "-l", text)

    def resize(self, width, height):
        self.tmux("resize-window", "-t", "top", "-x", str(width), "-y", str(height))

    def exit_status(self):
        """Waits for the view to end; its exit status."""
        def status():
            try:
                return self.status_path.read_text().strip() or None
            except FileNotFoundError:
                return None
        return wait_for(status, 20, what="the view ends")

    def running(self):
        return self.status_path.exists() is False and os.path.exists(f"/proc/{self.pid}")

    def wait_screen(self, predicate, what, timeout=15):
        last = [""]

        def check():
            last[0] = self.screen()
            return predicate(last[0])
        try:
            wait_for(check, timeout, step=0.1, what=what)
        except AssertionError:
            raise AssertionError(f"{what}; screen:\n{last[0]}") from None
        return last[0]

    def kill(self):
        if self.status_path.exists():
            self.status_path.unlink()
        try:
            self.tmux("kill-server")
        except subprocess.CalledProcessError:
            pass
        wait_for(lambda: not os.path.exists(f"/proc/{self.server_pid}"), 10,
                 what="tmux server gone")


@pytest.fixture
def fakes():
    tmp = Path(tempfile.mkdtemp(prefix="kvmstats-top-"))
    f = Fakes(tmp)
    yield f
    f.stop()
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


@pytest.fixture
def tmux(fakes):
    sessions = []

    def start(*args, env=None, width=80, height=24):
        e = {"KVMSTATS_PROC_ROOT": str(fakes.fake.root), "NO_COLOR": "1"}
        e.update(env or {})
        t = Tmux(fakes.tmp, [KVMSTAT, "--top", *fakes.qmp_args(), *map(str, args)], e,
                 width, height)
        sessions.append(t)
        return t
    yield start
    for t in sessions:
        t.kill()


def num(text):
    """A number as the view prints it: 950, 1.80k, 2.5M."""
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}.get(text[-1:], 1)
    return float(text.rstrip("kMG")) * scale


def host_rows(screen):
    """{name: (pid, vcpus, exits)} and the names in screen order."""
    rows, order = {}, []
    for line in screen.splitlines()[3:-1]:
        f = line.split()
        if len(f) >= 5 and f[0].isdigit():
            exits = None if f[4] == "-" else num(f[4])
            rows[f[1]] = (int(f[0]), f[2], exits)
            order.append(f[1])
    return rows, order


def all_rated(names):
    def ok(screen):
        rows, _ = host_rows(screen)
        return all(n in rows and rows[n][2] is not None and rows[n][2] > 0 for n in names)
    return ok


def within(value, want, share=0.10):
    return abs(value - want) <= want * share


def check_size(screen, width, height):
    lines = screen.split("\n")
    # capture-pane ends each of the pane's lines with a newline.
    assert len(lines) - 1 == height, len(lines)
    assert max(len(line) for line in lines) <= width


@requires_tmux
def test_top_drives_like_top(fakes, tmux):
    for name, rate in RATES.items():
        fakes.start(name, rate)
    t = tmux()
    screen = t.wait_screen(all_rated(RATES), "three VMs with rates")
    check_size(screen, 80, 24)
    lines = screen.splitlines()
    assert lines[0].startswith("kvmstat --top: host  sort: exits desc")
    assert lines[0].endswith("interval 1s")
    assert re.fullmatch(r"3 VMs  6 vCPUs  [\d.k]+ exits/s  sources: qmp 3", lines[1]), lines[1]
    assert lines[2].split()[:5] == ["PID", "VM", "VCPUS", "SRC", "exits"], lines[2]
    assert "eptv" not in lines[2]          # 80 columns: the first five stat columns

    # Busiest first; each VM's exits/s within 10 % of what its fake makes
    # (the median of three screens: one late answer on a loaded host moves
    # one interval, not the rate).
    seen = {n: [] for n in RATES}
    for _ in range(3):
        rows, order = host_rows(t.screen())
        assert order == ["bravo", "charlie", "alpha"], screen
        for n in RATES:
            assert rows[n][1] == str(VCPUS) and rows[n][0] == fakes.procs[n].pid
            seen[n].append(rows[n][2])
        time.sleep(1)
    for n, rate in RATES.items():
        median = sorted(seen[n])[1]
        assert within(median, rate * VCPUS), (n, seen[n], rate * VCPUS)
    host = t.screen()

    # Sort: < moves to vcpus, then name (ascending); R reverses; > back.
    t.keys("<", "<")
    s = t.wait_screen(lambda s: "sort: name asc" in s, "sort by name")
    assert host_rows(s)[1] == ["alpha", "bravo", "charlie"]
    t.keys("R")
    s = t.wait_screen(lambda s: "sort: name desc" in s, "reversed")
    assert host_rows(s)[1] == ["charlie", "bravo", "alpha"]
    t.keys(">", ">")
    s = t.wait_screen(lambda s: "sort: exits desc" in s, "back to exits")
    assert host_rows(s)[1] == ["bravo", "charlie", "alpha"]
    t.keys("I")
    s = t.wait_screen(lambda s: "sort: exits asc" in s, "exits ascending")
    assert host_rows(s)[1] == ["alpha", "charlie", "bravo"]
    t.keys("R")
    t.wait_screen(lambda s: "sort: exits desc" in s, "exits descending")

    # Filter by /regex/, then by a name, then cleared.
    t.keys("f")
    t.type("/^(alpha|charlie)$/")
    t.keys("Enter")
    s = t.wait_screen(lambda s: "filter: /^(alpha|charlie)$/" in s, "regex filter")
    assert host_rows(s)[1] == ["charlie", "alpha"]
    t.keys("/")
    t.keys(*["BSpace"] * 30)
    t.type("bravo")
    t.keys("Enter")
    s = t.wait_screen(lambda s: "filter: bravo" in s, "name filter")
    assert host_rows(s)[1] == ["bravo"]
    t.keys("f", *["BSpace"] * 30, "Enter")
    s = t.wait_screen(lambda s: "filter:" not in s and len(host_rows(s)[1]) == 3, "no filter")

    # Drill into the busiest VM: its vCPUs as rows, each at its fake's rate.
    t.keys("Home", "Enter")
    vm = t.wait_screen(lambda s: s.startswith("kvmstat --top: VM") and "VM bravo" in s
                       and s.count(" qmp ") >= 2, "VM screen")
    check_size(vm, 80, 24)
    assert vm.splitlines()[2].split()[:4] == ["PID", "VCPU", "SRC", "exits"], vm
    vcpu_rows = [line.split() for line in vm.splitlines()[3:-1] if line.strip()]
    assert [r[1] for r in sorted(vcpu_rows, key=lambda r: r[1])] == ["0", "1"], vm
    for r in vcpu_rows:
        assert r[0] == str(fakes.procs["bravo"].pid) and r[2] == "qmp"
        assert within(num(r[3]), RATES["bravo"], 0.15), vm

    # Into a vCPU: every stat with rate and value, grouped, histograms as bars.
    t.keys("Enter")
    vcpu = t.wait_screen(lambda s: s.startswith("kvmstat --top: vCPU"), "vCPU screen")
    check_size(vcpu, 80, 24)
    lines = vcpu.splitlines()
    assert re.match(r"vCPU [01] of bravo  pid \d+  source qmp  values since start", lines[1])
    assert lines[2].split() == ["STAT", "RATE/s", "VALUE", "HISTOGRAM"]
    assert lines[3] == "VM exits"
    exits = [line.split() for line in lines if line.split()[:1] == ["exits"]]
    assert exits and within(num(exits[0][1]), RATES["bravo"], 0.15), vcpu
    t.keys("f")
    t.type("/hist/")
    t.keys("Enter")
    hist = t.wait_screen(lambda s: "halt_wait_hist" in s and "filter: /hist/" in s, "histograms")
    bars = [line for line in hist.splitlines() if line.strip().endswith("|")]
    assert len(bars) == 3, hist
    for b in bars:
        # Bucket i grows by (a counter's growth) >> i: tallest first, lower
        # and lower, one character per bucket.
        bar = re.search(r"\|([_.:=+*#-]+)\|$", b).group(1)
        assert bar[0] == "#" and len(bar) >= 8, hist
        heights = [" .:-=+*#".index(c) if c != "_" else 0 for c in bar]
        assert heights == sorted(heights, reverse=True), hist
        assert num(b.split()[1]) > 0 and num(b.split()[2]) > 0, hist
    assert "Halt polling" in hist and "VM exits" not in hist
    vcpu_screen = vcpu

    # r: values since reset, small again.
    t.keys("f", *["BSpace"] * 10, "Enter", "r")
    s = t.wait_screen(lambda s: "values since reset" in s, "reset")
    exits = [line.split() for line in s.splitlines() if line.split()[:1] == ["exits"]]
    assert exits and num(exits[0][2]) < 5 * RATES["bravo"], s

    # Back out: Esc to the VM, Left to the host.
    t.keys("Escape")
    t.wait_screen(lambda s: s.startswith("kvmstat --top: VM"), "back to the VM")
    t.keys("Left")
    t.wait_screen(lambda s: s.startswith("kvmstat --top: host") and len(host_rows(s)[1]) == 3,
                  "back to the host")

    # Help lists the keys; any key closes it.
    t.keys("h")
    s = t.wait_screen(lambda s: "kvmstat --top keys" in s, "help")
    assert "p space" in s and "Enter Right" in s
    t.keys("x")
    t.wait_screen(lambda s: s.startswith("kvmstat --top: host"), "help closed")

    # Pause: the numbers stand still; + and - change the interval.
    t.keys("p")
    paused = t.wait_screen(lambda s: "PAUSED" in s.splitlines()[0], "paused")
    time.sleep(2.5)
    assert t.screen() == paused
    t.keys(" ", "+", "+")
    t.wait_screen(lambda s: s.splitlines()[0].endswith("interval 3s"), "interval 3s")
    t.keys("-", "-")
    t.wait_screen(lambda s: s.splitlines()[0].endswith("interval 1s"), "interval 1s")

    # Columns by name: any stat.
    t.keys("c", *["BSpace"] * 80)
    t.type("halt_wait_ns,exits pf_taken")
    t.keys("Enter")
    s = t.wait_screen(lambda s: s.splitlines()[2].split()[4:] == ["halt_wait_ns", "exits", "pf_taken"]
                      and "sort: halt_wait_ns desc" in s, "chosen columns")
    t.keys("c", *["BSpace"] * 80, "Enter")
    t.wait_screen(lambda s: s.splitlines()[2].split()[4] == "exits", "default columns")

    # Resize: 200x60 shows every kvmstat column; back to 80x24 fits again.
    t.resize(200, 60)
    big = t.wait_screen(lambda s: len(s.split("\n")) - 1 == 60 and "eptv" in s, "200x60")
    check_size(big, 200, 60)
    assert big.splitlines()[0].endswith("interval 1s") and len(big.splitlines()[0]) == 200
    assert host_rows(big)[1] == ["bravo", "charlie", "alpha"]
    t.resize(80, 24)
    small = t.wait_screen(lambda s: len(s.split("\n")) - 1 == 24 and "eptv" not in s, "80x24")
    check_size(small, 80, 24)
    assert small.splitlines()[-1].startswith("q quit  h help  Enter vCPUs")

    # A QEMU killed while viewing: marked gone, then dropped; no crash.
    fakes.kill("charlie")
    t.wait_screen(lambda s: re.search(r"\d+ charlie\s+gone", s) is not None, "charlie gone")
    s = t.wait_screen(lambda s: host_rows(s)[1] == ["bravo", "alpha"], "charlie dropped")
    assert "charlie" not in "\n".join(s.splitlines()[:-1])
    assert s.splitlines()[1].startswith("2 VMs  4 vCPUs")
    assert t.running()

    t.keys("q")
    assert t.exit_status() == "0"
    print("HOST\n" + host + "\nVM\n" + vm + "\nVCPU\n" + vcpu_screen + "\nHIST\n" + hist)


@requires_tmux
def test_new_vm_appears(fakes):
    fakes.start("alpha", 100)
    # A glob: sockets made later are found at a later rescan.
    t = Tmux(fakes.tmp, [KVMSTAT, "--top", "--qmp", str(fakes.tmp / "*.qmp")],
             {"KVMSTATS_PROC_ROOT": str(fakes.fake.root), "NO_COLOR": "1"})
    try:
        t.wait_screen(all_rated(["alpha"]), "alpha")
        fakes.start("bravo", 900)
        s = t.wait_screen(all_rated(["alpha", "bravo"]), "bravo appears")
        assert host_rows(s)[1] == ["bravo", "alpha"]
    finally:
        t.kill()


def has_color(screen):
    # SGR colour parameters: 30-38, 40-48, 90-107 (39 and 49, the default
    # colours, tmux writes anyway).
    return re.search(r"\x1b\[([0-9;]*;)?(3[0-8]|4[0-8]|9[0-7]|10[0-7])[;m]", screen) is not None


@requires_tmux
@pytest.mark.parametrize("no_color", [None, "1", ""])
def test_colours_only_without_no_color(fakes, tmux, no_color):
    fakes.start("alpha", 100)
    env = {"TERM": "screen-256color"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    t = Tmux(fakes.tmp, ["/usr/bin/env", *(["-u", "NO_COLOR"] if no_color is None else []),
                         KVMSTAT, "--top", *fakes.qmp_args()],
             {"KVMSTATS_PROC_ROOT": str(fakes.fake.root), **env})
    try:
        t.wait_screen(all_rated(["alpha"]), "alpha")
        assert has_color(t.screen(escapes=True)) == (no_color is None)
    finally:
        t.kill()


@requires_tmux
def test_hostile_name_is_printed_safely(fakes, tmux):
    evil = "ev\x1b]0;pwned\x07il\x1b[2J\x9b31m"
    fakes.start("evil", 100, proc_name=evil)
    t = tmux()
    s = t.wait_screen(all_rated(["ev?]0;pwned?il?[2J??31m"[:16]]), "the evil VM")
    raw = t.screen(escapes=True)
    assert "pwned" in s and "\x07" not in raw and "]0;" in s
    assert t.tmux("display-message", "-p", "#{pane_title}").strip() != "pwned"
    t.keys("Enter")
    s = t.wait_screen(lambda s: s.startswith("kvmstat --top: VM"), "VM screen")
    assert "VM ev?]0;pwned?il?[2J" in s


def test_pipe_gets_the_table(fakes):
    fakes.start("alpha", 100)
    env = dict(os.environ, KVMSTATS_PROC_ROOT=str(fakes.fake.root))
    out = subprocess.run([KVMSTAT, "--top", *fakes.qmp_args(), "1", "2"], env=env,
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    plain = subprocess.run([KVMSTAT, *fakes.qmp_args(), "1", "2"], env=env,
                           capture_output=True, text=True, timeout=30)
    first = out.stdout.splitlines()
    assert first[0] == plain.stdout.splitlines()[0]
    assert first[0].split()[:4] == ["pid", "vm", "vcpu", "exits"]
    assert "\x1b" not in out.stdout
    assert len([line for line in first if line.split()[1:2] == ["alpha"]]) == 2 * VCPUS


@requires_tmux
def test_count_ends_the_view(fakes, tmux):
    fakes.start("alpha", 100)
    t = tmux(1, 2)
    assert t.exit_status() == "0"


def test_top_refuses_other_views():
    for other in ("--json", "--sources", "--memory"):
        out = subprocess.run([KVMSTAT, "--top", other], capture_output=True, text=True, timeout=10)
        assert out.returncode == 2
        assert f"--top is a view of its own: not with {other}" in out.stderr


@requires_kvm
@requires_tmux
def test_top_testvms(testvm, tmp_path):
    """The same view on real VMs: testvm's steady MMIO exits."""
    rates = {"slow": 200, "fast": 1800, "mid": 600}
    vms = {n: testvm("--vcpus", 1, "--steady", r, name=n, state="running")
           for n, r in rates.items()}
    t = Tmux(tmp_path, [KVMSTAT, "--top", "-s", "mmio_exits",
                        *[a for vm in vms.values() for a in ("--pid", str(vm.pid))]],
             {"NO_COLOR": "1"})
    try:
        t.wait_screen(all_rated(rates), "three testvms")
        s = t.screen()
        rows, order = host_rows(s)
        assert order == ["fast", "mid", "slow"], s
        for n, r in rates.items():
            assert within(rows[n][2], r), s
        vms["mid"].stop(signal.SIGKILL)
        t.wait_screen(lambda s: host_rows(s)[1] == ["fast", "slow"], "mid dropped", timeout=20)
        assert t.running()
    finally:
        t.kill()


def schedstat(pid, tid):
    """(run ns, run-queue wait ns) of a thread, from the kernel."""
    run, wait, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
    return int(run), int(wait)


class Samples:
    """When the view samples, seen from outside, with the threads' counters
    around it. Each sample of the view is a burst of read syscalls (the
    /proc files of its rescan, the vCPU threads' schedstat) counted in
    /proc/<view>/io's syscr; between samples it reads nothing (QMP's
    recv() is no read). Each poll reads the threads' schedstat, then
    syscr, then schedstat again, so for a burst seen between the polls
    `before` (syscr not yet moved) and `moved` (syscr at its final value)
    every counter the view read lies between before.first and moved.last
    (the counters never go back), and the view's own clock of the sample
    (taken right after its reads, before it draws: a write, counted in
    syscw) between before.t and the end of the first poll that saw syscw
    move (settled, if the screen did not change)."""

    class Poll:
        pass

    def __init__(self, view_pid, threads):
        self.view, self.threads = view_pid, threads

    def poll(self):
        p = self.Poll()
        p.t = time.monotonic()
        p.first = [schedstat(pid, tid) for pid, tid in self.threads]
        io = Path(f"/proc/{self.view}/io").read_text()
        p.syscr = int(re.search(r"^syscr: (\d+)$", io, re.M).group(1))
        p.syscw = int(re.search(r"^syscw: (\d+)$", io, re.M).group(1))
        p.last = [schedstat(pid, tid) for pid, tid in self.threads]
        p.t_end = time.monotonic()
        return p

    def next(self, settle=0.7, timeout=15):
        """The next sample's (before, moved, clock) polls: clock.t_end is
        the latest its clock can have been read. A sample's reads may
        pause while QMP answers (at most its 500 ms deadline): reads
        after settle seconds of none belong to the next sample."""
        deadline = time.monotonic() + timeout
        # Not in the middle of one: first settle seconds without a read.
        before = quiet = self.poll()
        while before.t - quiet.t < settle:
            assert time.monotonic() < deadline, "the view never rests"
            time.sleep(0.002)
            before = self.poll()
            if before.syscr != quiet.syscr:
                quiet = before
        while (moved := self.poll()).syscr == before.syscr:
            assert time.monotonic() < deadline, "the view took no sample"
            before = moved
            time.sleep(0.002)
        settled, drawn = moved, None
        while settled.t - moved.t < settle:
            time.sleep(0.002)
            settled = self.poll()
            if settled.syscr != moved.syscr:
                moved = settled
            if drawn is None and settled.syscw != before.syscw:
                drawn = settled
        return before, moved, drawn or settled


def pct_bounds(a, b, which):
    """The least and most percent of one CPU that the view can have shown
    for each thread (which: 0 run, 1 wait) between samples a and b (each
    Samples.next()): counters bracketed by the polls, the interval by the
    clocks."""
    (a_before, a_moved, a_settled), (b_before, b_moved, b_settled) = a, b
    d_min = b_before.t - a_settled.t_end
    d_max = b_settled.t_end - a_before.t
    out = []
    for i in range(len(a_before.first)):
        n_min = max(0, b_before.first[i][which] - a_moved.last[i][which])
        n_max = b_moved.last[i][which] - a_before.first[i][which]
        out.append((100 * n_min / (d_max * 1e9), 100 * n_max / (d_min * 1e9)))
    return out


def pct_cols(screen, name_col, key):
    """{row key: (run%, wait%)} of a table whose heading has run% and wait%."""
    lines = screen.splitlines()
    head = lines[2].split()
    run, wait = head.index("run%"), head.index("wait%")
    out = {}
    for line in lines[3:-1]:
        f = line.split()
        if len(f) > wait and f[0].isdigit() and f[name_col] == key(f):
            out[f[name_col]] = (None if f[run] == "-" else float(f[run]),
                                None if f[wait] == "-" else float(f[wait]))
    return out


def shown_within(shown, bounds):
    """shown (printed with one decimal) within [lo, hi] of the bounds."""
    lo, hi = bounds
    return lo - 0.05 <= shown <= hi + 0.05


@requires_tmux
def test_top_run_wait(fakes, tmux):
    """run% and wait% per VM and per vCPU against the threads' schedstat,
    read by the test around the view's own samples; sorted by them with the
    same keys as any column."""
    busy = fakes.start("busy", 100, spin=True)
    idle = fakes.start("idle", 100, spin=True)
    os.kill(idle.pid, signal.SIGUSR2)            # its vCPU threads stop spinning
    cpu = min(os.sched_getaffinity(0))
    for tid in busy.spin_tids:                   # both of busy's on one CPU: each waits
        os.sched_setaffinity(tid, {cpu})
    interval = 2
    t = tmux(interval)
    t.wait_screen(lambda s: "run%" in s and "wait%" in s, "run% and wait% columns")
    s = t.wait_screen(lambda s: all(v[0] is not None for v in pct_cols(
        s, 1, lambda f: f[1]).values()) and len(pct_cols(s, 1, lambda f: f[1])) == 2,
        "run% of both VMs", timeout=20)
    head = s.splitlines()[2].split()
    assert head[:7] == ["PID", "VM", "VCPUS", "SRC", "exits", "run%", "wait%"], head

    # The VM's row: its two vCPU threads' sum, over the view's last interval.
    threads = [(busy.pid, tid) for tid in busy.spin_tids]
    samples = Samples(t.pid, threads)
    checked = 0
    a = samples.next()
    for _ in range(3):
        b = samples.next()
        screen = t.screen()
        assert samples.poll().syscr == b[1].syscr, "a sample while capturing"
        bounds = pct_bounds(a, b, 0), pct_bounds(a, b, 1)
        shown = pct_cols(screen, 1, lambda f: f[1])["busy"]
        for which in (0, 1):
            lo = sum(x[0] for x in bounds[which])
            hi = sum(x[1] for x in bounds[which])
            print(f"busy {'run wait'.split()[which]}%: shown {shown[which]}, "
                  f"schedstat says {lo:.2f}..{hi:.2f}")
            assert shown_within(shown[which], (lo, hi)), (which, shown, lo, hi, screen)
        checked += 1
        a = b
    # Two threads on one CPU: together at most one CPU, each waiting.
    assert shown[0] <= 100 + 0.05 and shown[1] > 10, shown
    idle_shown = pct_cols(screen, 1, lambda f: f[1])["idle"]
    assert idle_shown[0] < 5, idle_shown

    # Sorting: > from exits to run%, then wait%; s by name; busy first.
    t.keys(">")
    s = t.wait_screen(lambda s: "sort: run% desc" in s, "sort by run%")
    assert host_rows(s)[1] == ["busy", "idle"]
    t.keys(">")
    s = t.wait_screen(lambda s: "sort: wait% desc" in s, "sort by wait%")
    assert host_rows(s)[1] == ["busy", "idle"]
    t.keys("I")
    s = t.wait_screen(lambda s: "sort: wait% asc" in s, "wait% ascending")
    assert host_rows(s)[1] == ["idle", "busy"]
    t.keys("s")
    t.type("run%")
    t.keys("Enter")
    s = t.wait_screen(lambda s: "sort: run% desc" in s, "s run%")
    assert host_rows(s)[1] == ["busy", "idle"]

    # The VM's vCPUs: each thread's own.
    t.keys("Home", "Enter")
    t.wait_screen(lambda s: "VM busy" in s and len(pct_cols(s, 1, lambda f: f[1])) == 2
                  and all(v[0] is not None for v in pct_cols(s, 1, lambda f: f[1]).values()),
                  "busy's vCPUs with run%")
    a = samples.next()
    b = samples.next()
    screen = t.screen()
    assert samples.poll().syscr == b[1].syscr, "a sample while capturing"
    rows = pct_cols(screen, 1, lambda f: f[1])
    for which in (0, 1):
        bounds = pct_bounds(a, b, which)
        for vcpu, (lo, hi) in enumerate(bounds):
            got = rows[str(vcpu)][which]
            print(f"vCPU {vcpu} {'run wait'.split()[which]}%: shown {got}, "
                  f"schedstat says {lo:.2f}..{hi:.2f}")
            assert shown_within(got, (lo, hi)), (vcpu, which, got, lo, hi, screen)
    t.keys("q")
    assert t.exit_status() == "0"


@requires_tmux
def test_man_page_lists_the_default_columns(fakes, tmux):
    """debian/kvmstat.1's c key names the default columns, in the order a
    terminal wide enough for all of them shows them."""
    text = (ROOT / "debian/kvmstat.1").read_text()
    m = re.search(r"default columns' headings\n\(([^)]*)\)", text)
    assert m, "the c key's list in debian/kvmstat.1"
    listed = m.group(1).split()
    fakes.start("alpha", 100)
    t = tmux(width=200)
    s = t.wait_screen(all_rated(["alpha"]), "alpha")
    assert s.splitlines()[2].split()[4:] == listed, s.splitlines()[2]
    # --no-sched: the same without run% and wait%.
    t.kill()
    t2 = tmux("--no-sched", width=200)
    s = t2.wait_screen(all_rated(["alpha"]), "alpha without sched")
    assert s.splitlines()[2].split()[4:] == [c for c in listed if c not in ("run%", "wait%")]
