# SPDX-License-Identifier: MIT
"""QEMUs played by tests/fixtures/fakevmm.py, for tests on any host.

FakeQemus starts fakevmm.py processes on QMP sockets in one directory
every user may traverse (a plugin of user netdata connects too), waits for
each to say "ready", and, without KVM, lists each as a VMM in one fake
/proc tree (fakeproc.py) that the front ends read through
KVMSTATS_PROC_ROOT. With kvm=True each holds a real KVM VM in the real
/proc instead. Everything is stopped by pid (SIGCONT first: a test may
have stopped one) and removed at cleanup().

start_fleet() plays many at once from one fakevmm.py (--fleet): each VM's
pid is a `sleep` child that made its socket listen (what SO_PEERCRED
names), one Python answers them all; 200 VMs cost ~1 MiB each, not a
Python each.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import FIXTURES
from fakeproc import FakeProc

FAKEVMM = str(FIXTURES / "fakevmm.py")


class FakeQemu:
    def __init__(self, name, proc, sock, log, pid=None):
        self.name, self.proc, self.pid = name, proc, proc.pid if proc else pid
        self.sock, self.log = str(sock), str(log)
        self.spin_tids = []     # fakevmm --spin: its vCPU threads, by vCPU

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def sent(self):
        """What it last answered query-stats with (fakevmm --log)."""
        import json
        return json.loads(Path(self.log).read_text())


class FakeQemus:
    def __init__(self, kvm=False, prefix="kvmstats-fakeqmp-"):
        self.kvm = kvm
        self.fake = None if kvm else FakeProc()
        self.sockdir = Path(tempfile.mkdtemp(prefix=prefix))
        self.sockdir.chmod(0o755)
        self.qemus = {}
        self.fleets = []        # fakevmm.py --fleet servers

    def start(self, name, *args):
        """A fake QEMU called name (QEMU's -name guest=NAME), with more
        fakevmm.py arguments; returns its FakeQemu."""
        return self.start_many([(name, args)])[0]

    def start_many(self, specs):
        """[(name, args), ...] started together, then waited for: a fleet
        starts in the time of one."""
        started = [self._launch(name, *args) for name, args in specs]
        for q in started:
            self._ready(q)
        return started

    def start_fleet(self, specs, log=False):
        """[(name, args), ...] played by one fakevmm.py --fleet (no KVM);
        with log, each writes what it sent (FakeQemu.sent()), which costs
        the one server a file per answer."""
        assert not self.kvm, "a fleet holds no KVM VM"
        spec_path = self.sockdir / f"fleet-{len(self.fleets)}.spec"
        spec_path.write_text(json.dumps([
            {"name": name, "qmp": str(self.sockdir / f"{name}.qmp"),
             **({"log": str(self.sockdir / f"{name}.json")} if log else {}),
             "args": list(map(str, args))}
            for name, args in specs]))
        server = subprocess.Popen([sys.executable, FAKEVMM, "--fleet", str(spec_path)],
                                  stdout=subprocess.PIPE, text=True)
        self.fleets.append(server)
        started = []
        for _ in specs:
            line = server.stdout.readline().rstrip("\n").split(" ", 2)
            assert line[:1] == ["ready"] and len(line) == 3, f"fakevmm --fleet: {line}"
            pid, name = int(line[1]), line[2]       # a name may hold spaces
            q = FakeQemu(name, None, self.sockdir / f"{name}.qmp", self.sockdir / f"{name}.json",
                         pid=pid)
            self.qemus[name] = q
            Path(q.sock).chmod(0o666)
            self.fake.add(pid, cmdline=["qemu-system-x86_64", "-name", f"guest={name}"])
            started.append(q)
        return started

    def _launch(self, name, *args):
        sock, log = self.sockdir / f"{name}.qmp", self.sockdir / f"{name}.json"
        argv = [sys.executable, FAKEVMM, "--qmp", str(sock), "--log", str(log),
                *map(str, args), "-name", f"guest={name}"]
        if not self.kvm:
            argv.append("--no-vm")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        q = FakeQemu(name, proc, sock, log)
        self.qemus[name] = q
        return q

    def _ready(self, q):
        line = q.proc.stdout.readline().split()
        assert line[:1] == ["ready"], f"fakevmm {q.name}: {line}"
        Path(q.sock).chmod(0o666)
        for word in line[2:]:
            if word.startswith("spin="):
                q.spin_tids = [int(t) for t in word[5:].split(",")]
        if self.fake:
            # With --spin, its vCPU fds and threads too, as QEMU's look.
            fds = {10: "anon_inode:kvm-vm"}
            fds.update({11 + i: f"anon_inode:kvm-vcpu:{i}" for i in range(len(q.spin_tids))})
            self.fake.add(q.pid, fds=fds, tasks=bool(q.spin_tids),
                          cmdline=["qemu-system-x86_64", "-name", f"guest={q.name}"])

    def kill(self, name):
        """SIGKILL one, as a VMM that dies; gone from the fake /proc too."""
        q = self.qemus[name]
        if q.proc:
            q.proc.kill()
            q.proc.wait(timeout=10)
        else:
            os.kill(q.pid, signal.SIGKILL)   # a fleet's child: its parent reaps it
        if self.fake:
            self.fake.remove(q.pid)

    def signal(self, names, sig):
        for name in names:
            os.kill(self.qemus[name].pid, sig)

    def qmp_args(self):
        return [a for q in self.qemus.values() for a in ("--qmp", q.sock)]

    @property
    def proc_root(self):
        return str(self.fake.root) if self.fake else "/proc"

    def env(self, **extra):
        """The environment a front end needs to see them."""
        env = self.fake.env() if self.fake else dict(os.environ)
        env.update(extra)
        return env

    def cleanup(self):
        for q in self.qemus.values():
            if q.proc and q.proc.poll() is None:
                os.kill(q.pid, signal.SIGCONT)
                os.kill(q.pid, signal.SIGTERM)
        for q in self.qemus.values():
            if not q.proc:
                continue
            try:
                q.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                q.proc.kill()
                q.proc.wait()
        for server in self.fleets:       # its children (by pid) with it
            server.terminate()
            server.wait(timeout=10)
        if self.fake:
            self.fake.cleanup()
        for p in self.sockdir.iterdir():
            p.unlink()
        self.sockdir.rmdir()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
