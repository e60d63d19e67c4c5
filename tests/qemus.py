# SPDX-License-Identifier: MIT
"""The QEMUs the tests and the bench run, and how to start them on this host.

scripts/deps provisions three (under $KVMSTATS_CACHE, /var/cache/kvm_stats):
  - "10": QEMU 10.0 from bookworm-backports, installed as
    /usr/bin/qemu-system-x86_64. It holds one stats fd per vCPU and no VM
    stats fd, as every QEMU >= 8.1 does;
  - "7.2": QEMU 7.2 from bookworm, unpacked into qemu-7.2/, run with -L for
    the firmware of the installed QEMU. It holds no stats fd at all;
  - "11": sid's QEMU 11, installed in a sid chroot (sid/, made by
    scripts/debian-chroot ensure sid: its libraries are newer than Debian
    12's) and run through scripts/debian-chroot exec, which execs down to
    QEMU, so the pid a test started is QEMU's, and /tmp, /dev and /proc are
    the host's: the tests read it as they read the others.

Which -cpu a host's KVM accepts is probed, never assumed: on some hosts of
this kind QEMU aborts with -cpu host ("failed to set MSR 0x10a", the
arch-capabilities MSR). The probe starts each candidate with one vCPU,
resumes it and asks QMP whether it runs; the first that does is used for
every VM of that QEMU. KVMSTATS_QEMU_CPUS (';'-separated -cpu values) puts
candidates of your own first, for example a model this host refuses, to
show the fallback works.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(os.environ.get("KVMSTATS_CACHE", "/var/cache/kvm_stats"))
DEBIAN_CHROOT = Path(__file__).resolve().parent.parent / "scripts/debian-chroot"
CPU_CANDIDATES = ("host", "host,-arch-capabilities", "max", "qemu64")
FIRMWARE = ("-L", "/usr/share/seabios", "-L", "/usr/share/qemu")


class Unavailable(Exception):
    """This QEMU cannot run VMs here; str() is the reason."""


def _version(argv):
    binary = " ".join(argv)
    try:
        out = subprocess.run([*argv, "--version"], capture_output=True, text=True,
                             timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"{binary}: {getattr(e, 'strerror', None) or e}") from None
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise Unavailable(f"{binary} --version printed no version: {out[:80]!r}")
    return tuple(int(x) for x in m.groups())


class Qemu:
    """One QEMU binary: its argv prefix, its version, the -cpu this host takes."""

    def __init__(self, label, binary, prefix_args=(), chroot=None):
        """chroot: the name of a scripts/debian-chroot chroot binary is in."""
        self.label = label
        self.binary = str(binary)
        runner = [str(DEBIAN_CHROOT), "exec", chroot] if chroot else []
        self.prefix = [*runner, self.binary, *prefix_args]
        on_disk = CACHE / chroot / self.binary.lstrip("/") if chroot else Path(self.binary)
        self._cpu = None
        self._error = None
        self.refused = []       # "cpu: why" of each -cpu the probe refused
        if not os.access(on_disk, os.X_OK):
            self._error = f"QEMU {label}: {on_disk} is missing (run scripts/deps test)"
            self.version = None
        else:
            try:
                self.version = _version([*runner, self.binary])
            except Unavailable as e:
                self._error = str(e)
                self.version = None

    def __repr__(self):
        return f"QEMU {self.label} ({self.binary})"

    def missing_reason(self):
        """None when this QEMU can run a KVM VM here, else why not (probes once)."""
        if self._error is None and self._cpu is None:
            try:
                self._cpu = self._probe_cpu()
            except Unavailable as e:
                self._error = str(e)
        return self._error

    def cpu(self):
        reason = self.missing_reason()
        if reason:
            raise Unavailable(reason)
        return self._cpu

    def argv(self, *args, machine="pc"):
        """The command line of a KVM VM with the probed -cpu, then args."""
        return [*self.prefix, "-enable-kvm", "-machine", machine, "-cpu", self.cpu(),
                "-nodefaults", "-display", "none", *map(str, args)]

    def _probe_cpu(self):
        if not os.path.exists("/dev/kvm"):
            raise Unavailable("/dev/kvm does not exist on this machine")
        first = [c for c in os.environ.get("KVMSTATS_QEMU_CPUS", "").split(";") if c]
        refused = self.refused
        for cpu in [*first, *CPU_CANDIDATES]:
            why = self._runs_with(cpu)
            if why is None:
                if refused:
                    print(f"qemus: {self!r}: -cpu {cpu} (refused: {'; '.join(refused)})",
                          file=sys.stderr)
                return cpu
            refused.append(f"{cpu}: {why}")
        raise Unavailable(f"{self!r} starts no KVM VM on this host: " + "; ".join(refused))

    def _runs_with(self, cpu):
        """None when a 1-vCPU VM with -cpu cpu starts and runs, else why not."""
        argv = [*self.prefix, "-enable-kvm", "-machine", "pc", "-cpu", cpu, "-m", "16",
                "-smp", "1", "-nodefaults", "-display", "none", "-S", "-qmp", "stdio"]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            proc.stdin.write('{"execute": "qmp_capabilities"}\n{"execute": "cont"}\n')
            proc.stdin.flush()
            time.sleep(0.3)
            proc.stdin.write('{"execute": "query-status"}\n{"execute": "quit"}\n')
            proc.stdin.flush()
            out, err = proc.communicate(timeout=20)
        except (BrokenPipeError, OSError):
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return "no answer in 20 s"
        for line in out.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg.get("return"), dict) and msg["return"].get("running"):
                if proc.returncode == 0:
                    return None
        lines = [x for x in err.splitlines() if x.strip()]
        return lines[0] if lines else f"exit status {proc.returncode}"


QEMU_10 = Qemu("10", "/usr/bin/qemu-system-x86_64")
QEMU_72 = Qemu("7.2", CACHE / "qemu-7.2/usr/bin/qemu-system-x86_64", FIRMWARE)
QEMU_11 = Qemu("11", "/usr/bin/qemu-system-x86_64", chroot="sid")
QEMUS = {"10": QEMU_10, "7.2": QEMU_72, "11": QEMU_11}


def describe(q):
    """One line on what q is and how it runs here, for test reports."""
    reason = q.missing_reason()
    if reason:
        return f"QEMU {q.label}: not run: {reason}"
    line = f"QEMU {q.label}: {q.binary} {'.'.join(map(str, q.version))}, -cpu {q.cpu()}"
    return line + (f" (refused: {'; '.join(q.refused)})" if q.refused else "")


def check_versions():
    """Each QEMU is the version its label says, or why not."""
    for label, q in QEMUS.items():
        if q.version and ".".join(map(str, q.version[:len(label.split("."))])) != label:
            return f"{q!r} is version {'.'.join(map(str, q.version))}, not {label}"
    return None


def kvm_runs_unmodified_kernels():
    """None when this host's KVM runs an unmodified guest kernel in hardware,
    else why not. KVM's PVM backend (module kvm_pvm, for hosts that are
    themselves guests without nested VMX/SVM) runs only PVM-aware guest
    kernels natively; any other kernel goes through KVM's instruction
    emulator (seen here: ~1 million insn_emulation a second, a boot of
    minutes, then "emulation failure" on cmpxchg16b or xrstor). Firmware
    runs fine there, so the QEMU tests do."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    if flags & {"vmx", "svm"}:
        return None
    if os.path.isdir("/sys/module/kvm_pvm"):
        return ("this host's KVM is the PVM backend (kvm_pvm, no vmx/svm in /proc/cpuinfo): "
                "it runs only PVM-aware guest kernels natively, and emulates Debian's "
                "instruction by instruction")
    return None


def linux_guest():
    """(vmlinuz, busybox) of the Linux guest scripts/deps provisions, or why not."""
    kernels = sorted((CACHE / "linux/boot").glob("vmlinuz-*"))
    if not kernels:
        return None, f"no kernel in {CACHE}/linux/boot (run scripts/deps test)"
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        return None, "/bin/busybox is missing (Debian busybox-static)"
    return (kernels[-1], busybox), None
