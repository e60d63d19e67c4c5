# SPDX-License-Identifier: MIT
"""Rescans on a real host: new VMs are found from KVM's uevents, without
walking /proc again, and their counts are exact.

A walk of /proc reads the /proc directory to its end: strace -y shows it as
getdents64(N</proc>, ...) = 0. kvmstat rescans at every interval; after the
first rescan only KVM's create/destroy uevents and the known VMMs' fd
counts should lead it anywhere (the next full walk is a minute away).
"""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import BUILD, requires_kvm, requires_root, sanitizer_runtimes

KVMSTAT = str(BUILD / "kvmstat")
STRACE = shutil.which("strace")
SANITIZED = bool(sanitizer_runtimes(KVMSTAT))

pytestmark = [requires_kvm, requires_root,
              pytest.mark.skipif(STRACE is None, reason="SKIP: strace is not installed")]


def vm_entry(doc, pid):
    return next((vm for vm in doc["vms"] if vm["pid"] == pid), None)


def mmio_total(entry):
    return sum(v["stats"]["mmio_exits"]["value"] for v in entry["vcpus"])


def test_late_vm_found_from_its_uevent_without_a_walk(testvm, tmp_path):
    k, intervals = 777, 7
    early = testvm("--vcpus", 2, "--mmio", k, name="rescan-early")
    log = tmp_path / "strace.log"
    # LeakSanitizer cannot run under ptrace; ASan itself can.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    proc = subprocess.Popen(
        [STRACE, "-f", "-y", "-qq", "-e", "trace=getdents64", "-o", str(log),
         KVMSTAT, "--json", "--name", "/^rescan-(early|late)$/", "1", str(intervals)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = json.loads(proc.stdout.readline())
        assert mmio_total(vm_entry(first, early.pid)) == 2 * k
        late = testvm("--vcpus", 3, "--mmio", k, name="rescan-late")
        docs = [json.loads(line) for line in proc.stdout]
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # Seen by the end, with exact counts, and within two intervals of its start.
    seen = [i for i, d in enumerate(docs) if vm_entry(d, late.pid)]
    assert seen, f"late VM {late.pid} never reported"
    assert seen[0] <= 2, f"late VM first reported {seen[0] + 1} intervals after it started"
    last = vm_entry(docs[-1], late.pid)
    assert last["name"] == "rescan-late"
    assert len(last["vcpus"]) == 3
    assert mmio_total(last) == 3 * k == sum(
        v["mmio"] for v in late.counts()["vms"][0]["vcpus"])
    assert mmio_total(vm_entry(docs[-1], early.pid)) == 2 * k

    # One walk of /proc in intervals + 1 rescans: the first.
    walks = re.findall(r"getdents64\(\d+</proc>, .*\) = 0$", log.read_text(), re.M)
    assert len(walks) == 1, f"{len(walks)} walks of /proc in {intervals + 1} rescans"


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def kvmstat_with_nofile(nofile, *args):
    """kvmstat under an open file limit: (status, stdout, stderr, peak RSS
    in KiB as last seen in /proc while it ran; ru_maxrss would count the
    forked Python before the exec)."""
    argv = ["prlimit", f"--nofile={nofile}:{nofile}", "--", KVMSTAT, *map(str, args)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hwm = [0]

    def watch():
        while proc.poll() is None:
            hwm[0] = max(hwm[0], vm_hwm_kib(proc.pid) or 0)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out, err = proc.communicate(timeout=120)
    watcher.join()
    return proc.returncode, out, err, hwm[0]


def test_many_vcpu_fds_bounded_and_said(testvm):
    """A process with 4 VMs of 64 vCPUs (256 vCPU stats fds): all read when
    the open file limit allows, and when it does not, kvmstat reads what it
    can, says how many it left out, and its memory stays bounded."""
    vms, vcpus, k = 4, 64, 5
    vm = testvm("--vms", vms, "--vcpus", vcpus, "--mmio", k, name="rescan-many")
    truth = sum(c["mmio"] for v in vm.counts()["vms"] for c in v["vcpus"])
    assert truth == vms * vcpus * k

    status, out, err, _ = kvmstat_with_nofile(4096, "--json", "--pid", vm.pid, 1, 1)
    assert status == 0, err
    entry = vm_entry(json.loads(out), vm.pid)
    assert entry["nvms"] == vms and len(entry["vcpus"]) == vms * vcpus
    assert mmio_total(entry) == truth
    assert "are not read" not in err

    status, out, err, _ = kvmstat_with_nofile(96, "--json", "--pid", vm.pid, 1, 1)
    assert status == 0, err
    entry = vm_entry(json.loads(out), vm.pid)
    taken = len(entry["vcpus"])
    assert 0 < taken < vms * vcpus
    assert mmio_total(entry) == taken * k
    left = vms * vcpus - taken
    # The fd budget, cut by the open file limit, is said once, naming the VMM.
    assert re.search(rf"kvmstat: VM rescan-many \(pid {vm.pid}\): {left} of the "
                     rf"{vms * vcpus} stats fds its VMM holds are not read: the budget "
                     rf"of {taken} stats fds \(cut by the open file limit", err), err
    assert err.count("are not read") == 1

    if SANITIZED:
        return  # ASan's redzones and quarantine are not the core's memory
    # The table (JSON documents are the printer's, not the core's memory):
    # ~2.5 KiB a held fd, so 256 fds cost well under 2 MiB more.
    rss = {n: kvmstat_with_nofile(n, "--pid", vm.pid, 1, 2)[3] for n in (4096, 96)}
    assert 0 < rss[96] <= rss[4096] < rss[96] + 2048, rss
    print(f"kvmstat peak RSS: {rss[4096]} KiB holding {vms * vcpus} vCPU fds, "
          f"{rss[96]} KiB holding {taken}")
