# SPDX-License-Identifier: MIT
"""QMP sockets of VMMs in containers, reached from the host as
/proc/PID/root/PATH: what it takes, on any host (no KVM needed).

A QEMU played by tests/fixtures/fakevmm.py runs in a mount namespace of its
own with a private /tmp (unshare -m, a tmpfs on /tmp), as root or as user
nobody, its socket at /tmp/q.qmp there: invisible at that path from the
host, reachable as /proc/PID/root/tmp/q.qmp. fakeproc.py lists it as a VMM.

What the kernel asks (verified here with python connects under setpriv):
  - following /proc/PID/root needs ptrace read access to PID
    (PTRACE_MODE_READ_FSCREDS): CAP_SYS_PTRACE for a VMM of another user,
    and for a root VMM too once the reader holds fewer capabilities than it
    (commoncap); kvmstat and the Netdata plugin hold CAP_SYS_PTRACE
    permitted and now raise it around their connects as around fd
    acquisition;
  - connect() needs write permission on the socket inode; root's own
    connect passes by CAP_DAC_OVERRIDE, which kvm_stats never holds: the
    socket's owner must grant it (mode, group, ACL).
And what kvm_stats adds: the rest of the path is resolved inside the
VMM's root (openat2 RESOLVE_IN_ROOT), so a symlink among the container's
files cannot point the host's kvmstat at a host socket.
"""
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD, FIXTURES, requires_root
from fakeproc import FakeProc

KVMSTAT = str(BUILD / "kvmstat")
FAKEVMM = str(FIXTURES / "fakevmm.py")
CPUS = json.loads((FIXTURES / "qmp/query-cpus-fast.json").read_text())["return"]
QOM = {c["cpu-index"]: c["qom-path"] for c in CPUS}


def unshare_missing_reason():
    if os.geteuid() != 0:
        return "SKIP: needs root to make a mount namespace"
    if not shutil.which("unshare") or not shutil.which("setpriv"):
        return "SKIP: unshare or setpriv (util-linux) is missing"
    r = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"SKIP: unshare -m is refused here: {r.stderr.strip()}"
    return None


pytestmark = [requires_root,
              pytest.mark.skipif(unshare_missing_reason() is not None,
                                 reason=unshare_missing_reason() or "")]


class ContainedQemu:
    """fakevmm.py in a new mount namespace with a private /tmp, as user;
    its log (what it sent) in a host directory."""

    def __init__(self, user="root", mode="0600", group=None, link_to=None, tick=3,
                 path="/tmp/q.qmp"):
        self.logdir = Path(tempfile.mkdtemp(prefix="kvmstats-ctr-", dir="/var/tmp"))
        self.logdir.chmod(0o777)
        self.log = self.logdir / "sent.json"
        pw = pwd.getpwnam(user)
        setpriv = [] if user == "root" else [
            "setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
        # The fixtures are bound to a host directory first: the tree may
        # itself be under /tmp (a clone in CI), which the tmpfs hides, or
        # under a directory user cannot enter.
        hold = self.logdir / "fixtures"
        hold.mkdir()
        # The socket is made ready (mode, group) before the test sees it.
        inner = " ".join([
            f"mount --bind {FIXTURES} {hold} &&",
            "mount -t tmpfs -o mode=1777 tmpfs /tmp &&",
            f"mkdir -p -m 1777 {os.path.dirname(path)} &&",
            *(["ln -s", link_to, f"{path} &&"] if link_to else []),
            "exec", *setpriv, sys.executable, str(hold / "fakevmm.py"),
            "--qmp", "/tmp/q.sock" if link_to else path,
            "--log", str(self.log), "--tick", str(tick), "--no-vm",
            "-name", "guest=ctr1"])
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                                      "sh", "-c", inner], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["ready"], f"fakevmm in a container: {line}"
        self.pid = int(line[1])
        self.sock = f"/proc/{self.pid}/root{path}"
        real = f"/proc/{self.pid}/root/tmp/q.sock" if link_to else self.sock
        os.chmod(real, int(mode, 8))
        if group:
            shutil.chown(real, group=group)
        self.fake = FakeProc()
        self.fake.add(self.pid, cmdline=["qemu-system-x86_64", "-name", "guest=ctr1"])

    def sent(self):
        return json.loads(self.log.read_text())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.fake.cleanup()
        shutil.rmtree(self.logdir, ignore_errors=True)


@pytest.fixture
def contained():
    started = []

    def start(**kw):
        q = ContainedQemu(**kw)
        started.append(q)
        return q
    yield start
    for q in started:
        q.stop()


def run_kvmstat(q, *args, user=None, caps=()):
    """kvmstat --json on q's socket; as user, with caps permitted (given as
    ambient capabilities: file capabilities would put glibc in secure mode,
    which ignores KVMSTATS_PROC_ROOT, the fake /proc)."""
    argv = [KVMSTAT, "--json", "--qmp", q.sock, "-s", "/.*/", *args]
    if user:
        pw = pwd.getpwnam(user)
        ambient = ",".join(f"+{c}" for c in caps) or "-all"
        argv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
                f"--inh-caps={ambient}", f"--ambient-caps={ambient}", *argv]
    r = subprocess.run(argv, env=q.fake.env(), capture_output=True, text=True, timeout=60)
    return r, [json.loads(line) for line in r.stdout.splitlines()]


def python_connect(path, caps):
    """Whether a python connect to path succeeds as root with only caps in
    its bounding (so effective) set: the kernel's answer, independent of
    kvm_stats."""
    code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1]); print('ok')\n"
            "except OSError as e:\n print(e.errno)\n")
    bound = "-all" + "".join(f",+{c}" for c in caps)
    out = subprocess.run(["setpriv", f"--bounding-set={bound}", sys.executable, "-c", code,
                          path], capture_output=True, text=True, timeout=30).stdout.strip()
    return out


def assert_values_are_what_qemu_sent(q, reports):
    """kvmstat's last sample against the peer's last answer: every integer
    scalar of each vCPU and of the VM."""
    [vm] = reports[-1]["vms"]
    assert vm["pid"] == q.pid and vm["name"] == "ctr1" and vm["source"] == "qmp"
    sent, compared = q.sent(), 0
    for vcpu in vm["vcpus"]:
        said = sent["vcpu"][QOM[vcpu["vcpu"]]]
        for name, stat in vcpu["stats"].items():
            if isinstance(said[name], int) and not isinstance(said[name], bool):
                assert stat["value"] == said[name], name
                compared += 1
    for name, stat in vm["stats"].items():
        if isinstance(sent["vm"].get(name), int) and not isinstance(sent["vm"][name], bool):
            assert stat["value"] == sent["vm"][name], name
            compared += 1
    assert compared > 80, compared


def test_root_qemu_in_container(contained):
    """A root VMM's 0600 socket: the kernel lets a root reader without
    CAP_SYS_PTRACE no further than /proc/PID/root; kvmstat, which raises
    it around each connect, reads every sample, none failed."""
    q = contained(user="root", mode="0600")
    assert python_connect(q.sock, []) == "13"                 # EACCES: ptrace
    assert python_connect(q.sock, ["sys_ptrace"]) == "ok"
    r, reports = run_kvmstat(q, "1", "3")
    assert r.returncode == 0, r.stderr
    assert "failed" not in r.stderr, r.stderr
    assert len(reports) == 3
    for report in reports:
        assert report["vms"][0]["vcpus"][0]["stats"], report
    assert_values_are_what_qemu_sent(q, reports)


def test_path_longer_than_sun_path(contained):
    """/proc/PID/root and a socket path of 100 bytes in the container: more
    than sun_path's 108 bytes from the host, connected through an O_PATH
    fd all the same."""
    inner = "/tmp/" + "d" * 88 + "/q.qmp"
    q = contained(user="root", mode="0600", path=inner)
    assert len(q.sock.encode()) > 108
    r, reports = run_kvmstat(q, "1", "2")
    assert r.returncode == 0, r.stderr
    assert_values_are_what_qemu_sent(q, reports)


def test_socket_of_another_user_needs_write_permission(contained):
    """nobody's socket, 0600: root connects by CAP_DAC_OVERRIDE only, which
    kvmstat never holds: it says exactly that. Made writable (0666) by its
    owner, kvmstat reads it."""
    q = contained(user="nobody", mode="0600")
    assert python_connect(q.sock, ["sys_ptrace"]) == "13"
    assert python_connect(q.sock, ["sys_ptrace", "dac_override"]) == "ok"
    r, _ = run_kvmstat(q, "1", "1")
    assert r.returncode != 0
    assert (f"QMP socket {q.sock} failed: Permission denied (connecting needs write "
            "permission on the socket for this user") in r.stderr, r.stderr

    os.chmod(q.sock, 0o666)
    r, reports = run_kvmstat(q, "1", "2")
    assert r.returncode == 0, r.stderr
    assert_values_are_what_qemu_sent(q, reports)


def test_plugin_user_with_its_capabilities(contained):
    """As the Netdata plugin runs: user netdata, holding CAP_SYS_PTRACE and
    CAP_DAC_READ_SEARCH (its file capabilities; none effective but around
    acquisition and connects). Without them /proc/PID/root is refused, and
    said as such; with them and a socket of group netdata, mode 0660 (as
    docs/sources.md asks of a container's VMM), the values are read."""
    try:
        pwd.getpwnam("netdata")
    except KeyError:
        pytest.skip("SKIP: no user netdata (netdata-core is not installed)")
    q = contained(user="nobody", mode="0660", group="netdata")

    r, _ = run_kvmstat(q, "1", "1", user="netdata")
    assert r.returncode != 0
    assert (f"QMP socket {q.sock} failed: Operation not permitted (a socket under "
            "/proc/PID/root is reached only with ptrace access") in r.stderr, r.stderr

    r, reports = run_kvmstat(q, "1", "2", user="netdata",
                             caps=("sys_ptrace", "dac_read_search"))
    assert r.returncode == 0, r.stderr
    assert "failed" not in r.stderr, r.stderr
    assert_values_are_what_qemu_sent(q, reports)


def test_symlink_stays_in_the_container(contained):
    """The container's /tmp/q.qmp is a symlink to an absolute path that on
    the host is another QEMU's socket. The kernel's plain path walk would
    take it on the host (python's connect reaches the host QEMU); kvmstat
    resolves it inside the container, where nothing is there."""
    hostdir = Path(tempfile.mkdtemp(prefix="kvmstats-hostqmp-", dir="/tmp"))  # hidden there
    host_sock = hostdir / "host.qmp"
    host = subprocess.Popen([sys.executable, FAKEVMM, "--qmp", str(host_sock), "--no-vm",
                             "-name", "guest=host1"], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().startswith("ready")
        q = contained(user="root", mode="0600", link_to=str(host_sock))
        # Listed as a VMM too: a connect that reached it would be tied to it.
        q.fake.add(host.pid, cmdline=["qemu-system-x86_64", "-name", "guest=host1"])
        assert python_connect(q.sock, ["sys_ptrace"]) == "ok"     # the host's socket
        r, reports = run_kvmstat(q, "1", "1")
        assert f"QMP socket {q.sock} failed: No such file or directory" in r.stderr, r.stderr
        assert r.returncode != 0, reports
    finally:
        host.terminate()
        host.wait(timeout=10)
        shutil.rmtree(hostdir, ignore_errors=True)
