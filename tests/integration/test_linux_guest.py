# SPDX-License-Identifier: MIT
"""kvm_stats on a running Linux guest: Debian's kernel under QEMU 10.

The other QEMU tests run firmware only. Here QEMU 10 boots Debian's kernel
(scripts/deps unpacks linux-image-amd64) with an initramfs built at test
time from busybox-static, so the counters are those of a real Linux: timer
interrupts, halts of the idle loop, page faults. The guest's /init mounts
proc, sys and devtmpfs, prints a marker on the serial console and then
obeys one-line commands read from it: "mmio N" makes N `devmem` writes to
an unbacked guest-physical address from vCPU 1 (each a KVM_EXIT_MMIO to
QEMU) and prints a done marker; between commands the guest idles (halts).

Linux's own MMIO is kept out (-machine hpet=off, in-kernel irqchip: the
LAPIC and IOAPIC are emulated in KVM and do not exit to userspace; the
console is port I/O), and a window with no command measures what is left.
With the VM paused (QMP stop) around each window, the mmio_exits delta
kvmstat --json reports is compared exactly with what the guest did, and
every vCPU stat kvmstat read from QEMU's held fds is compared with QEMU's
own query-stats answer for the same paused vCPU: both read the same fds.

Probed, not assumed: on a host whose KVM is the PVM backend (a cloud guest
without nested VMX/SVM, as this project's machines are) an unmodified
kernel is emulated instruction by instruction and cannot boot in minutes;
the test then SKIPs saying so (tests/qemus.py kvm_runs_unmodified_kernels).
"""
import json
import lzma
import os
import socket
import subprocess
import threading
import time

import pytest

import qemus
from conftest import BUILD, requires_qemu10, wait_for

KVMSTAT = str(BUILD / "kvmstat")
MMIO_WRITES = 200
MMIO_ADDR = 0xd0000000      # in the PCI hole of a 256 MiB pc: nothing there
# Generous for a host where the guest runs at hardware speed (a few s);
# raise it for a slow one. The whole test then stays under ~60 s.
BOOT_TIMEOUT = float(os.environ.get("KVMSTATS_LINUX_BOOT_TIMEOUT", "40"))
READY = "KVMSTATS-GUEST-READY"
DONE = "KVMSTATS-MMIO-DONE"

pytestmark = requires_qemu10

INIT = f"""#!/bin/sh
export PATH=/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
stty -echo 2>/dev/null
echo "{READY} cpus=$(nproc)"
while read cmd n; do
    case "$cmd" in
    mmio)
        i=0
        while [ "$i" -lt "$n" ]; do
            taskset -c 1 devmem {MMIO_ADDR:#x} 32 0
            i=$((i + 1))
        done
        echo "{DONE} $n"
        ;;
    esac
done
"""


def newc_entry(name, mode, data=b"", rdev=(0, 0)):
    """One cpio "newc" record (the initramfs format, Documentation/
    driver-api/early-userspace/buffer-format.rst), padded to 4 bytes."""
    name_b = name.encode() + b"\0"
    fields = (0, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
    hdr = b"070701" + b"".join(b"%08x" % f for f in fields)
    pad = lambda n: b"\0" * (-n % 4)
    return hdr + name_b + pad(len(hdr) + len(name_b)) + data + pad(len(data))


def build_initramfs(path, busybox):
    """busybox-static as /bin/busybox with its applets linked, /init,
    /dev/console for init's stdio; written to path (nothing committed)."""
    applets = ("sh", "mount", "mkdir", "echo", "stty", "nproc", "taskset", "devmem",
               "sleep", "cat")
    out = [newc_entry(d, 0o40755) for d in ("bin", "dev", "proc", "sys")]
    out.append(newc_entry("bin/busybox", 0o100755, busybox.read_bytes()))
    out += [newc_entry(f"bin/{a}", 0o120777, b"busybox") for a in applets]
    out.append(newc_entry("dev/console", 0o20600, rdev=(5, 1)))
    out.append(newc_entry("init", 0o100755, INIT.encode()))
    out.append(newc_entry("TRAILER!!!", 0))
    path.write_bytes(b"".join(out))


def vmlinux_of(vmlinuz, path):
    """The ELF vmlinux inside Debian's xz bzImage, written to path, or
    vmlinuz itself when it holds none. QEMU boots the ELF through its PVH
    entry, so the guest skips its own decompressor (the longest part of
    an early boot where instructions are emulated)."""
    data = vmlinuz.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        return vmlinuz
    try:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    except lzma.LZMAError:
        return vmlinuz
    if not elf.startswith(b"\x7fELF"):
        return vmlinuz
    path.write_bytes(elf)
    return path


class Console:
    """The guest's ttyS0 on a unix socket: a thread copies what it prints
    to a log, and commands are written to it."""

    def __init__(self, path, log):
        self.sock = wait_for(lambda: self._connect(path), timeout=20,
                             what="QEMU's serial socket")
        self.log = log
        self.text = ""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    @staticmethod
    def _connect(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            return None
        return s

    def _read(self):
        with open(self.log, "a", errors="replace") as log:
            while True:
                try:
                    data = self.sock.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                chunk = data.decode(errors="replace")
                with self.lock:
                    self.text += chunk
                log.write(chunk)
                log.flush()

    def wait(self, marker, timeout, vm):
        def seen():
            if vm.proc.poll() is not None:
                return "exited"
            # QEMU pauses the VM and stays up when KVM gives up on a guest
            # instruction: no point waiting for the marker then.
            if "KVM internal error" in vm.log.read_text(errors="replace"):
                return "internal"
            with self.lock:
                return marker in self.text
        try:
            got = wait_for(seen, timeout=timeout, step=0.05, what=marker)
        except AssertionError:
            got = None
        if got is not True:
            with self.lock:
                text = self.text
            how = {"exited": "QEMU exited",
                   "internal": "KVM internal error"}.get(got, f"not within {timeout:g} s")
            pytest.fail(f"guest printed no {marker!r} ({how}); {running_rate(vm)}\n"
                        f"QEMU said: {vm.log.read_text(errors='replace')[-1500:]}\n"
                        f"console:\n{text[-4000:]}")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def close(self):
        self.sock.close()


def kvmstat_sample(pid):
    r = subprocess.run([KVMSTAT, "--json", "--pid", str(pid), "1", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    [doc] = [json.loads(line) for line in r.stdout.splitlines() if line]
    [vm] = [v for v in doc["vms"] if v["pid"] == pid]
    return vm


def running_rate(vm):
    """What kvm_stats sees the vCPUs do over one second, for a failure
    message: a guest kernel whose instructions the host's KVM emulates one
    by one shows as a huge insn_emulation rate with few exits."""
    if vm.proc.poll() is not None:
        return f"QEMU exited with {vm.proc.returncode}"
    r = subprocess.run([KVMSTAT, "--json", "--pid", str(vm.pid), "1", "2"],
                       capture_output=True, text=True, timeout=60)
    docs = [json.loads(line) for line in r.stdout.splitlines() if line]
    if r.returncode != 0 or len(docs) != 2:
        return f"kvmstat: {r.stderr.strip()}"
    [last] = [v for v in docs[1]["vms"] if v["pid"] == vm.pid]
    per = {c["vcpu"]: {n: c["stats"][n]["delta"] for n in
                       ("exits", "insn_emulation", "halt_exits", "mmio_exits")
                       if n in c["stats"]} for c in last["vcpus"]}
    return f"kvm_stats over the last second, per vCPU: {per}"


def qemu_vcpu_stats(vm):
    """query-stats target vcpu, keyed by the vCPU thread's tid. QEMU sends
    a histogram last bucket first (QAPI_LIST_PREPEND in add_kvmstat_entry(),
    common/qmp_parse.c): put it back in the kernel's order."""
    cpus, stats = vm.qmp_command({"execute": "query-cpus-fast"},
                                 {"execute": "query-stats",
                                  "arguments": {"target": "vcpu"}})
    tid = {c["qom-path"]: c["thread-id"] for c in cpus}
    kernel_order = lambda v: v[::-1] if isinstance(v, list) else v
    return {tid[e["qom-path"]]: {s["name"]: kernel_order(s["value"]) for s in e["stats"]}
            for e in stats if e["provider"] == "kvm"}


def paused_sample(vm):
    """kvmstat's view of the paused VM, checked equal to QEMU's own, as
    {vcpu id: {stat: value}}."""
    assert vm.qmp_command({"execute": "query-status"})[0]["status"] == "paused"
    ours = kvmstat_sample(vm.pid)
    theirs = qemu_vcpu_stats(vm)
    assert len(ours["vcpus"]) == 2, ours["vcpus"]
    assert [c["vcpu"] for c in ours["vcpus"]] == [0, 1]
    values = {}
    for c in ours["vcpus"]:
        assert c["source"] == "fd", c
        tid = int(c["stats_id"].split("/")[0].removeprefix("kvm-"))
        mine = {name: s["value"] for name, s in c["stats"].items()}
        # Every stat QEMU reports for this vCPU, equal value for value
        # (histograms bucket by bucket).
        assert set(mine) == set(theirs[tid]), set(mine) ^ set(theirs[tid])
        differ = {n: (mine[n], theirs[tid][n]) for n in mine if mine[n] != theirs[tid][n]}
        assert not differ, f"vCPU {c['vcpu']}: kvmstat != query-stats: {differ}"
        values[c["vcpu"]] = mine
    return values, len(mine)


def delta(before, after, name):
    return {i: after[i][name] - before[i][name] for i in before}


def stop(vm):
    vm.qmp_command({"execute": "stop"})


def cont(vm):
    vm.qmp_command({"execute": "cont"})


def test_linux_guest_counts_what_it_did(qemu, tmp_path):
    guest, reason = qemus.linux_guest()
    reason = reason or qemus.kvm_runs_unmodified_kernels()
    if reason:
        pytest.skip(f"SKIP: {reason}")
    vmlinuz, busybox = guest
    initrd = tmp_path / "initramfs.cpio"
    build_initramfs(initrd, busybox)
    kernel = vmlinux_of(vmlinuz, tmp_path / "vmlinux")
    con_sock = tmp_path / "con.sock"
    started = time.monotonic()
    vm = qemu("linuxguest", vcpus=2, version="10", args=(
        "-m", "256", "-machine", "hpet=off,kernel-irqchip=on", "-no-reboot",
        "-kernel", kernel, "-initrd", initrd,
        "-append", "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 rdinit=/init "
                   "tsc=reliable no_timer_check",
        "-chardev", f"socket,id=con,path={con_sock},server=on,wait=off",
        "-serial", "chardev:con"))
    console = Console(con_sock, tmp_path / "console.log")
    try:
        console.wait(READY, BOOT_TIMEOUT, vm)
        booted = time.monotonic() - started
        assert f"{READY} cpus=2" in console.text, console.text[-2000:]
        time.sleep(1.0)     # boot work settles; the guest idles

        stop(vm)
        first, nstats = paused_sample(vm)
        # A window of pure idle: what the guest does without being asked.
        cont(vm)
        time.sleep(1.0)
        stop(vm)
        idle, _ = paused_sample(vm)
        # The N writes, then paused again once the guest said it is done.
        cont(vm)
        console.send(f"mmio {MMIO_WRITES}")
        console.wait(f"{DONE} {MMIO_WRITES}", 30, vm)
        stop(vm)
        done, _ = paused_sample(vm)
        cont(vm)
    finally:
        console.close()

    background = delta(first, idle, "mmio_exits")
    writes = delta(idle, done, "mmio_exits")
    print(f"boot to marker {booted:.1f} s; {nstats} vCPU stats equal to query-stats "
          f"in each of 3 paused samples; mmio_exits idle window {background}, "
          f"{MMIO_WRITES} writes window {writes}; "
          f"halt_exits {delta(first, idle, 'halt_exits')}, "
          f"halt_wakeup {delta(first, idle, 'halt_wakeup')}, "
          f"irq_injections {delta(first, idle, 'irq_injections')} (idle window); "
          f"total {time.monotonic() - started:.1f} s")

    # A quiet Linux makes no MMIO exit of its own...
    assert background == {0: 0, 1: 0}
    # ...so the writes window holds the guest's writes, all on vCPU 1.
    assert writes == {0: 0, 1: MMIO_WRITES}
    assert sum(writes.values()) == MMIO_WRITES
    # A running Linux's timer: it halts, is woken and gets interrupts.
    for name in ("halt_exits", "halt_wakeup", "irq_injections"):
        assert sum(delta(first, idle, name).values()) > 0, name
