# SPDX-License-Identifier: MIT
"""Shared fixtures: where the build is, and test VMs with known exit counts.

The test VMs come from tests/fixtures/testvm.c, a small VMM on the raw KVM
API that writes the exits it saw itself to a JSON file: the ground truth
every integration test compares the reported stats with.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import inih_versions
import qemus

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("KVMSTATS_BUILD", Path(__file__).parent.parent / "build"))
FIXTURES = Path(__file__).parent / "fixtures"


# The versions the report header names for each Debian the tests build on.
HEADER_PACKAGES = (("gcc", ("gcc-14", "gcc-12")), ("libinih", ("libinih1",)),
                   ("collectd", ("collectd-core",)), ("lintian", ("lintian",)))


def dpkg_installed(root):
    """{package: version} of what the dpkg database under root has installed."""
    try:
        status = (Path(root) / "var/lib/dpkg/status").read_text()
    except OSError:
        return {}
    versions = {}
    for para in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in para.splitlines()
                      if ": " in line and not line.startswith(" "))
        if fields.get("Status", "").endswith(" installed"):
            versions[fields.get("Package")] = fields.get("Version")
    return versions


def debian_versions(root="/"):
    """'Debian 12.10: gcc 12.2.0-14, libinih 55-1, ...' for the system at
    root, read from its debian_version and dpkg database; None if there is
    none."""
    try:
        release = (Path(root) / "etc/debian_version").read_text().strip()
    except OSError:
        return None
    versions = dpkg_installed(root)
    parts = []
    for label, names in HEADER_PACKAGES:
        found = next((versions[n] for n in names if n in versions), None)
        parts.append(f"{label} {found or 'absent'}")
    return f"Debian {release}: " + ", ".join(parts)


def vmm_versions():
    """The QEMUs and libvirt scripts/deps provisions, as present here."""
    host = dpkg_installed("/")
    sid = dpkg_installed(qemus.CACHE / "sid")
    cached = qemus.CACHE / "qemu-7.2/.deb-version"
    q72 = cached.read_text().split("Version: ")[-1].strip() if cached.exists() else "absent"
    return (f"QEMU {host.get('qemu-system-x86', 'absent')} (installed), QEMU {q72} "
            f"(unpacked in {qemus.CACHE / 'qemu-7.2'}), QEMU "
            f"{sid.get('qemu-system-x86', 'absent')} (sid chroot {qemus.CACHE / 'sid'}), "
            f"libvirt {host.get('libvirt-daemon', 'absent')} (installed), libvirt "
            f"{sid.get('libvirt-daemon', 'absent')} (sid chroot)")


def pytest_report_header(config):
    """The Debians the tests build on (this machine's and the Debian 13
    chroot's), the VMMs present, which QEMUs the tests run with which -cpu
    this host took, and which libinih versions the config unit test runs
    with."""
    trixie = qemus.CACHE / "trixie"
    lines = [debian_versions("/") or "Debian: not a Debian system",
             (debian_versions(trixie) or f"Debian 13: no chroot at {trixie} (scripts/deps test)")
             + (f" (chroot {trixie})" if (trixie / ".kvmstats-complete").exists() else ""),
             vmm_versions(), inih_versions.describe(BUILD)]
    if kvm_missing_reason():
        return lines + [f"QEMU: not run: {kvm_missing_reason()}"]
    return lines + [qemus.describe(q) for q in qemus.QEMUS.values()]


def kvm_missing_reason():
    if not os.path.exists("/dev/kvm"):
        return "SKIP: /dev/kvm does not exist on this machine"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "SKIP: /dev/kvm is not accessible to this user"
    return None


requires_kvm = pytest.mark.skipif(kvm_missing_reason() is not None,
                                  reason=kvm_missing_reason() or "")
requires_root = pytest.mark.skipif(os.geteuid() != 0,
                                   reason="SKIP: needs root to test privilege handling")


def sanitizer_runtimes(binary):
    """The sanitizer runtimes an instrumented binary or plugin needs loaded
    first (a SANITIZE= build), for LD_PRELOAD; [] for a plain build."""
    needed = subprocess.run(["readelf", "-d", str(binary)], capture_output=True,
                            text=True).stdout
    libs = [lib for lib in ("libasan.so", "libubsan.so") if lib.split(".")[0] in needed]
    return [subprocess.run(["cc", f"-print-file-name={lib}"], capture_output=True,
                           text=True).stdout.strip() for lib in libs]


def kvm_links(pid):
    """The anon_inode:kvm-* fds process pid holds, sorted (fds closing meanwhile skipped)."""
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return sorted(link for link in links if link.startswith("anon_inode:kvm-"))


DEBUGFS = "/sys/kernel/debug"


def debugfs_missing_reason():
    """Why the debugfs tests cannot run here (root-only, and real VMs), or None."""
    if os.geteuid() != 0:
        return "SKIP: debugfs is root-only: run as root"
    return kvm_missing_reason()


def escaped_to_tmp(mark):
    """What /tmp and its subdirectories hold named with mark: a name that
    escaped the directory it was meant for. Other tests make and remove
    directories there meanwhile: one that goes while it is listed is
    skipped, not an error."""
    found = []
    for top in [Path("/tmp"), *Path("/tmp").iterdir()]:
        try:
            found += [p for p in top.iterdir() if mark in p.name]
        except OSError:
            pass
    return found


def mount_debugfs():
    """Mounts debugfs if nobody has (and leaves it mounted: other tools may
    rely on it from then on); None when /sys/kernel/debug/kvm is there,
    else the SKIP reason."""
    if subprocess.run(["mountpoint", "-q", DEBUGFS]).returncode != 0:
        r = subprocess.run(["mount", "-t", "debugfs", "none", DEBUGFS],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"SKIP: cannot mount debugfs: {r.stderr.strip()}"
    if not os.path.isdir(f"{DEBUGFS}/kvm"):
        return "SKIP: no /sys/kernel/debug/kvm (KVM built without debugfs)"
    return None


@pytest.fixture
def debugfs_mounted():
    reason = mount_debugfs()
    if reason:
        pytest.skip(reason)


def wait_for(predicate, timeout=10.0, step=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class TestVM:
    """One testvm process; stopped by pid at teardown."""

    def __init__(self, tmp_path, *args, name=None, uuid=None, state="halted", wrapper=()):
        self.shared_dir = None
        if "--user" in map(str, args):
            # The VMM drops to another user, who cannot enter pytest's
            # private tmp_path: give it a directory of its own under /tmp.
            self.shared_dir = tmp_path = Path(tempfile.mkdtemp(prefix="kvmstats-"))
            tmp_path.chmod(0o1777)
        self.counts_path = tmp_path / f"counts-{time.monotonic_ns()}.json"
        argv = [*wrapper, str(BUILD / "tests/fixtures/testvm"), "--counts", str(self.counts_path)]
        argv += [str(a) for a in args]
        if name is not None:
            argv += ["-name", f"guest={name},debug-threads=on"]
        if uuid is not None:
            argv += ["-uuid", uuid]
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        if state:
            self.wait_state(state)

    def counts(self):
        try:
            return json.loads(self.counts_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def wait_state(self, state, timeout=20.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"testvm exited with {self.proc.returncode}")
            c = self.counts()
            return c if c and c["state"] == state else None
        return wait_for(ready, timeout, what=f"testvm state {state}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        status = self.proc.wait(timeout=20)
        if self.shared_dir:
            shutil.rmtree(self.shared_dir, ignore_errors=True)
        return status


@pytest.fixture
def testvm(tmp_path):
    vms = []

    def start(*args, **kwargs):
        vm = TestVM(tmp_path, *args, **kwargs)
        vms.append(vm)
        return vm

    yield start
    for vm in vms:
        vm.stop()


def qemu_missing_reason(version="7.2"):
    if kvm_missing_reason():
        return kvm_missing_reason()
    reason = qemus.QEMUS[version].missing_reason()
    return f"SKIP: {reason}" if reason else None


def requires_qemu_version(version):
    return pytest.mark.skipif(qemu_missing_reason(version) is not None,
                              reason=qemu_missing_reason(version) or "")


requires_qemu = requires_qemu_version("7.2")
requires_qemu10 = requires_qemu_version("10")
requires_qemu11 = requires_qemu_version("11")


class QemuVM:
    """A real QEMU with KVM and a QMP socket; no disk, so SeaBIOS runs and
    the vCPUs keep exiting. QEMU 7.2 holds no stats fds (QMP and debugfs
    serve it), QEMU 10 holds one per vCPU. Stopped by pid."""

    def __init__(self, tmp_path, name, vcpus=2, version="7.2", args=()):
        self.qemu = qemus.QEMUS[version]
        self.qmp = str(tmp_path / f"{name}.qmp")
        self.log = tmp_path / f"{name}.log"
        argv = self.qemu.argv("-m", "64", "-smp", vcpus, "-nographic",
                              "-name", f"guest={name},debug-threads=on",
                              "-qmp", f"unix:{self.qmp},server=on,wait=off", *args)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        self.pid = self.proc.pid
        wait_for(lambda: os.path.exists(self.qmp) or self.proc.poll() is not None,
                 what="QEMU's QMP socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"QEMU exited: {self.log.read_text()}")

    def qmp_command(self, *commands):
        """Runs QMP commands on a connection of our own; their returns."""
        import json as _json
        import socket as _socket
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.qmp)
        f = s.makefile("rw")
        f.readline()
        answers = []
        for cmd in ({"execute": "qmp_capabilities"},) + commands:
            f.write(_json.dumps(cmd) + "\n")
            f.flush()
            while True:
                msg = _json.loads(f.readline())
                if "event" not in msg:
                    break
            answers.append(msg.get("return", msg))
        s.close()
        return answers[1:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=20)


@pytest.fixture
def qemu(tmp_path):
    vms = []

    def start(name, vcpus=2, version="7.2", args=()):
        vm = QemuVM(tmp_path, name, vcpus, version, args)
        vms.append(vm)
        return vm

    yield start
    for vm in vms:
        vm.stop()
