# SPDX-License-Identifier: MIT
"""common/debugfs.c on the real /sys/kernel/debug/kvm of this machine.

Needs root and /dev/kvm (SKIP otherwise). If debugfs is not mounted, the
test mounts it (`mount -t debugfs none /sys/kernel/debug`) and leaves it
mounted: other tools and tests may rely on it from then on, and unmounting
a file system someone else may be using is not a test's business.

A tiny driver program (tests/fixtures/debugfs_read.c) runs debugfs_scan(),
debugfs_open() and debugfs_sample() and prints what they returned as JSON.
The ground truth is tests/fixtures/testvm (a VMM on the raw KVM API that
keeps its stats fds) and `kvmstat --json`, which reads the same stats
through those stats fds.

Under kernel lockdown (this machine: lockdown=integrity) debugfs refuses
every file with a write bit with EPERM and serves the 0444 (INSTANT) ones;
the test checks whichever of the two worlds it finds.
"""
import ctypes
import json
import os
import signal
import stat
import subprocess

import pytest

from conftest import BUILD, ROOT, debugfs_missing_reason, wait_for

DEBUGFS = "/sys/kernel/debug"
KVM_DEBUGFS = f"{DEBUGFS}/kvm"
GOLDEN = ROOT / "tests/fixtures/golden"
SYS_pidfd_getfd = 438


pytestmark = pytest.mark.skipif(debugfs_missing_reason() is not None,
                                reason=debugfs_missing_reason() or "")

@pytest.fixture(scope="module")
def kvm_debugfs():
    """/sys/kernel/debug/kvm, mounting debugfs first if nobody has."""
    if subprocess.run(["mountpoint", "-q", DEBUGFS]).returncode != 0:
        # Left mounted on purpose: see the module docstring.
        subprocess.run(["mount", "-t", "debugfs", "none", DEBUGFS], check=True)
    if not os.path.isdir(KVM_DEBUGFS):
        pytest.skip(f"SKIP: {KVM_DEBUGFS} missing although debugfs is mounted "
                    "(KVM built without debugfs?)")
    return KVM_DEBUGFS


@pytest.fixture(scope="module")
def driver():
    """tests/fixtures/debugfs_read, built by make with the library."""
    return BUILD / "tests/fixtures/debugfs_read"


def run_driver(driver, pid, vm_fd, *known):
    out = subprocess.run([str(driver), KVM_DEBUGFS, str(pid), str(vm_fd),
                          *map(str, known)],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def start_vm(testvm):
    vm = testvm("--vcpus", 2, "--mmio", 100, "--hold", "vm,vcpu")
    vm_fd = vm.counts()["vms"][0]["vm_fd"]
    assert os.path.isdir(f"{KVM_DEBUGFS}/{vm.pid}-{vm_fd}")
    return vm, vm_fd


def vm_files(vm_dir):
    """{name: mode} of the regular files of a VM's debugfs directory."""
    files = {}
    for name in os.listdir(vm_dir):
        st = os.lstat(f"{vm_dir}/{name}")
        if stat.S_ISREG(st.st_mode):
            files[name] = stat.S_IMODE(st.st_mode)
    return files


def locked_down(vm_dir):
    """Whether debugfs refuses the files with a write bit (EPERM)."""
    try:
        os.close(os.open(f"{vm_dir}/exits", os.O_RDONLY))
        return False
    except PermissionError:
        return True


def kvmstat_json(pid):
    out = subprocess.run([str(BUILD / "kvmstat"), "--json", "--pid", str(pid),
                          "1", "1"], capture_output=True, text=True,
                         timeout=60, check=True)
    vms = json.loads(out.stdout.splitlines()[-1])["vms"]
    assert len(vms) == 1, out.stdout
    return vms[0]


def test_scan_finds_the_test_vm(kvm_debugfs, driver, testvm):
    vm, vm_fd = start_vm(testvm)
    got = run_driver(driver, vm.pid, vm_fd)
    assert [vm.pid, vm_fd] in got["scan"]
    assert got["scan_result"] == len(got["scan"])
    # Exactly the "<pid>-<fd>" directories, nothing else of the top level.
    dirs = {n for n in os.listdir(kvm_debugfs)
            if os.path.isdir(f"{kvm_debugfs}/{n}")}
    assert {f"{p}-{f}" for p, f in got["scan"]} <= dirs


def test_open_serves_what_lockdown_allows(kvm_debugfs, driver, testvm):
    vm, vm_fd = start_vm(testvm)
    vm_dir = f"{kvm_debugfs}/{vm.pid}-{vm_fd}"
    got = run_driver(driver, vm.pid, vm_fd)
    assert got["open"] == 0 and got["sample"] == 0
    files = vm_files(vm_dir)
    served = {s["name"] for s in got["stats"]}
    histograms = {n for n in files if n.endswith("_hist")}
    assert histograms, files      # x86 has halt_wait_hist & co.
    assert not served & histograms
    assert [s["index"] for s in got["stats"]] == list(range(len(served)))
    assert [s["name"] for s in got["stats"]] == sorted(served)
    instant = {n for n, mode in files.items() if not mode & 0o222}
    assert {"pages_4k", "pages_2m", "pages_1g"} <= instant
    if locked_down(vm_dir):
        # Everything with a write bit is refused and counted, except the
        # histograms, which are left out before any read.
        writable = {n for n, mode in files.items() if mode & 0o222}
        assert "exits" in writable
        assert served == instant
        assert got["denied"] == len(writable - histograms)
        assert all(s["type"] == "instant" for s in got["stats"])
    else:
        assert got["denied"] == 0
        assert instant <= served and "exits" in served
        by_name = {s["name"]: s for s in got["stats"]}
        assert by_name["exits"]["type"] == "cumulative"
        assert by_name["halt_wait_ns"]["unit"] == "seconds"
        assert by_name["halt_wait_ns"]["exponent"] == -9
        assert set(got["values"]) == served


def test_values_equal_the_stats_fd(kvm_debugfs, driver, testvm):
    vm, vm_fd = start_vm(testvm)
    got = run_driver(driver, vm.pid, vm_fd)
    k = kvmstat_json(vm.pid)
    vm_stats = {n: s["value"] for n, s in k["stats"].items()}
    vcpu_sums = {}
    for vcpu in k["vcpus"]:
        for n, s in vcpu["stats"].items():
            if isinstance(s["value"], int):
                vcpu_sums[n] = vcpu_sums.get(n, 0) + s["value"]
    compared = 0
    for name, value in got["values"].items():
        # A VM stat as is; a vCPU stat summed over the vCPUs, as debugfs
        # does (kvm_get_stat_per_vcpu()). The VM is halted: nothing moves.
        if name in vm_stats:
            assert value == vm_stats[name], name
        elif name in vcpu_sums:
            assert value == vcpu_sums[name], name
        else:
            continue
        compared += 1
    assert {"pages_4k", "pages_2m", "pages_1g", "mmu_unsync"} <= set(got["values"])
    assert compared >= 4
    if not locked_down(f"{kvm_debugfs}/{vm.pid}-{vm_fd}"):
        assert got["values"]["mmio_exits"] == 200      # 2 vCPUs x 100


def test_known_schemas_type_the_files(kvm_debugfs, driver, testvm):
    blobs = [GOLDEN / "vm.bin", GOLDEN / "vcpu.bin"]
    if not all(b.exists() for b in blobs):
        pytest.skip(f"SKIP: no golden stats blobs in {GOLDEN} (make golden)")
    vm, vm_fd = start_vm(testvm)
    plain = run_driver(driver, vm.pid, vm_fd)
    typed = run_driver(driver, vm.pid, vm_fd, *blobs)
    assert typed["open"] == 0 and typed["sample"] == 0
    by_name = {s["name"]: s for s in typed["stats"]}
    # The same files are served and refused; blocking is a vCPU boolean
    # in the schema, but debugfs sums it over the vCPUs: a count.
    assert set(by_name) == {s["name"] for s in plain["stats"]}
    assert typed["denied"] == plain["denied"]
    assert by_name["pages_4k"]["type"] == "instant"
    if "blocking" in by_name:
        assert by_name["blocking"]["unit"] == "none"


def test_sample_after_the_vmm_exits_is_esrch(kvm_debugfs, driver, testvm):
    vm, vm_fd = start_vm(testvm)
    vm_dir = f"{kvm_debugfs}/{vm.pid}-{vm_fd}"
    proc = subprocess.Popen([str(driver), kvm_debugfs, str(vm.pid), str(vm_fd),
                             "--wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["open"] == 0 and first["sample"] == 0
        vm.stop()
        # The driver holds the VM's directory open: that must not keep the
        # VM (and its directory) alive.
        wait_for(lambda: not os.path.exists(vm_dir), what=f"{vm_dir} removed")
        proc.stdin.write("again\n")
        proc.stdin.flush()
        second = json.loads(proc.stdout.readline())
        assert second["sample"] == -3      # -ESRCH
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def test_directory_outlives_the_vmm_while_a_stats_fd_is_held(kvm_debugfs, driver,
                                                             testvm):
    """KVM_STATS_FACTS: a stats fd holds a reference on the VM (6.5+)."""
    vm, vm_fd = start_vm(testvm)
    vm_dir = f"{kvm_debugfs}/{vm.pid}-{vm_fd}"
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(vm.pid)
    stats_fd = -1
    try:
        for n in os.listdir(f"/proc/{vm.pid}/fd"):
            if os.readlink(f"/proc/{vm.pid}/fd/{n}") == "anon_inode:kvm-vm-stats":
                stats_fd = libc.syscall(SYS_pidfd_getfd, pidfd, int(n), 0)
                assert stats_fd >= 0, os.strerror(ctypes.get_errno())
                break
        assert stats_fd >= 0, "testvm --hold vm,vcpu holds no VM stats fd"
        vm.stop()
        assert os.path.isdir(vm_dir)
        got = run_driver(driver, vm.pid, vm_fd)
        assert got["open"] == 0 and got["sample"] == 0
        assert "pages_4k" in got["values"]
    finally:
        os.close(pidfd)
        if stats_fd >= 0:
            os.close(stats_fd)
    wait_for(lambda: not os.path.exists(vm_dir),
             what=f"{vm_dir} removed once the stats fd is closed")
