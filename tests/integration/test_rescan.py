"""Rescans on a real host: new VMs are found from KVM's uevents, without
walking /proc again, and their counts are exact.

A walk of /proc reads the /proc directory to its end: strace -y shows it as
getdents64(N</proc>, ...) = 0. kvmstat rescans at every interval; after the
first rescan only KVM's create/destroy uevents and the known VMMs' fd
counts should lead it anywhere (the next full walk is a minute away).
"""
import json
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, requires_kvm, requires_root

KVMSTAT = str(BUILD / "kvmstat")
STRACE = shutil.which("strace")

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
    proc = subprocess.Popen(
        [STRACE, "-f", "-y", "-qq", "-e", "trace=getdents64", "-o", str(log),
         KVMSTAT, "--json", "--name", "/^rescan-(early|late)$/", "1", str(intervals)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
