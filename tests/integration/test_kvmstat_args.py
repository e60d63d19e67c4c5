# SPDX-License-Identifier: MIT
"""kvmstat's arguments: every option and positional is understood or
refused with a message and exit status 2.

kvmstat reads its arguments before it looks for /dev/kvm, so these tests
need no KVM: a refusal is exit 2 with a line naming what is wrong; an
accepted command line gets past the arguments (exit 0, or 1 with why it
cannot report: no /dev/kvm, no VM).
"""
import subprocess

import pytest

from conftest import BUILD

KVMSTAT = str(BUILD / "kvmstat")
# A pid no VMM has (pid_max is at most 2^22): an accepted command line ends
# at once, whatever runs on the host.
NO_PID = "2147483647"


def run(*args):
    return subprocess.run([KVMSTAT, *args], capture_output=True, text=True, timeout=60)


# (arguments, what the first line of stderr must hold)
REFUSED = [
    # strtoul() takes blanks and a sign: " -1" was a count of ULONG_MAX,
    # " 5" and "+5" an interval of 5.
    (["1", " -1"], "count must be a whole number from 1 to"),
    ([" 5"], "interval must be 1 to 86400 seconds:  5"),
    (["+5"], "interval must be 1 to 86400 seconds: +5"),
    (["--pid", " 7"], 'bad --pid: " 7"'),
    (["--pid", "+7"], 'bad --pid: "+7"'),
    # Empty values: --qmp "" was a glob, --debugfs "" a directory,
    # --libvirt= the empty URI.
    (["--qmp", ""], "--qmp needs a socket path or glob"),
    (["--debugfs="], "--debugfs needs a directory"),
    (["--libvirt="], "--libvirt= needs a URI"),
    # One debugfs directory, one libvirtd: the second silently won.
    (["--debugfs", "/a", "--debugfs", "/b"], "--debugfs or --no-debugfs given twice"),
    (["--debugfs", "/a", "--no-debugfs"], "--debugfs or --no-debugfs given twice"),
    (["--libvirt", "-L"], "--libvirt given twice"),
    (["-L", "qemu:///system", "--libvirt=qemu:///session"], "--libvirt given twice"),
    # Options a view never reads were ignored.
    (["--sources", "1"], "--sources prints once and takes no interval or count"),
    (["--sources", "--json"], "--sources prints once and takes no --json"),
    (["--sources", "--memory"], "--sources prints once and takes no --memory"),
    (["--sources", "--totals"], "--sources prints once and takes no --totals"),
    (["--sources", "--stat", "exits"], "--sources prints once and takes no --stat"),
    (["--memory", "--totals"], "--memory shows no --totals"),
    (["--memory", "--stat", "exits"], "--memory shows no --stat"),
    (["1", "2", "3"], "unexpected argument after the count: 3"),
    # Refused before too; the message stays.
    (["0"], "interval must be 1 to 86400 seconds: 0"),
    (["86401"], "interval must be 1 to 86400 seconds: 86401"),
    (["1.5"], "interval must be 1 to 86400 seconds: 1.5"),
    (["5x"], "interval must be 1 to 86400 seconds: 5x"),
    (["--", "-1"], "interval must be 1 to 86400 seconds: -1"),
    (["99999999999999999999999"], "interval must be 1 to 86400 seconds"),
    (["1", "0"], "count must be a whole number from 1 to"),
    (["1", "99999999999999999999999"], "count must be a whole number from 1 to"),
    (["1", "-1x"], "invalid option"),
    (["--pid", "0"], 'bad --pid: "0"'),
    (["--pid", "2147483648"], 'bad --pid: "2147483648"'),
    (["--pid", "12ab"], 'bad --pid: "12ab"'),
    (["--pid"], "requires an argument"),
    (["--stat", "/(/"], 'bad --stat: "/(/"'),
    (["--name", ""], 'bad --name: ""'),
    (["-x"], "invalid option"),
    (["--bogus"], "unrecognized option"),
]


@pytest.mark.parametrize("args,message", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_refused_with_status_2_and_a_reason(args, message):
    r = run(*args)
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    assert r.stdout == "", r.stdout
    first = r.stderr.splitlines()[0] if r.stderr else ""
    assert message in first, (args, r.stderr)


def test_too_many_pids_and_qmp_sockets():
    pids = [x for i in range(65) for x in ("--pid", str(i + 1))]
    assert run(*pids[:128], "1", "1").returncode != 2
    r = run(*pids)
    assert r.returncode == 2 and "more than 64 --pid" in r.stderr, r.stderr
    qmp = [x for i in range(65) for x in ("--qmp", f"/run/q{i}.qmp")]
    r = run(*qmp)
    assert r.returncode == 2 and "more than 64 --qmp" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [
    ["1", "1"],
    ["--json", "--totals", "--stat", "/_exits$/", "1", "1"],
    ["--memory", "--json", "1", "1"],
    ["--sources"],
    ["--no-debugfs", "1", "1"],
    ["--debugfs", "/nonexistent", "1", "1"],
    ["--qmp", "/nonexistent/*.qmp", "--qmp", "/run/q.qmp", "1", "1"],
    ["-t", "-t", "--json", "--json", "1", "1"],      # flags said twice mean the same
    ["--pid", NO_PID, "--pid", NO_PID, "1", "1"],
    ["1", "18446744073709551615"],
    ["86400", "1"],
], ids=lambda a: " ".join(a))
def test_accepted(args):
    """Past the arguments: kvmstat then reports, or says why it cannot
    (exit 1). --pid NO_PID keeps it from waiting out an interval."""
    r = run("--pid", NO_PID, *args)
    assert r.returncode in (0, 1), (args, r.returncode, r.stderr)
    assert "usage:" not in r.stderr, r.stderr
    assert r.stderr.startswith("kvmstat: ") or r.stderr == "", r.stderr
