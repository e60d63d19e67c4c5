# SPDX-License-Identifier: MIT
"""SIGTERM ends kvm_stats.plugin at once, whatever its QMP peers and its
reader do: Netdata stops a plugin with SIGTERM when it shuts down, after it
has stopped reading the plugin's output, and kills what is left.

200 fake QEMUs from one fakevmm.py --fleet, listed in a fake /proc: half
answer, a quarter accept and never say a word (--behave silent), a quarter
say everything a byte a second (--behave trickle). The plugin is signalled
(1) during its first rescan, while it waits for the silent and trickling
peers' deadlines, and (2) once its stdout pipe is full and it has more to
write than it holds in memory (the reader gone quiet). Before the fixes,
(2) never exited and (1) took up to the QMP deadline per run.
"""
import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from conftest import BUILD
from fakeqemu import FakeQemus

PLUGIN = str(BUILD / "kvm_stats.plugin")
N = 200
PIPE_FULL = 65536       # Linux's default pipe capacity
PROMPT = 1.5            # s: "promptly", with room for a loaded host


def behave(i):
    return {1: ("--behave", "silent"), 3: ("--behave", "trickle")}.get(i % 4, ())


@pytest.fixture(scope="module")
def fleet():
    with FakeQemus(prefix="kvmstats-sigterm-") as qemus:
        qemus.start_fleet([(f"st{i:03d}", ("--rate", 100, *behave(i))) for i in range(N)])
        yield qemus


@pytest.fixture
def plugins():
    """Every plugin a test starts; one a failed assertion left running is
    killed by pid at teardown."""
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def start(fleet, tmp_path, plugins, stdout=subprocess.PIPE):
    """The plugin on the fleet. stdout: where its output goes; a pipe
    nobody reads fills within a second (200 VMs' charts) and then holds
    the plugin in its wait for Netdata, before it says anything of QMP."""
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "kvm_stats.conf").write_text(
        f"[kvm_stats]\nrescan every = 1\nqmp socket = {fleet.sockdir}/*.qmp\n")
    env = fleet.env(NETDATA_VERSION="v1.37.1", NETDATA_UPDATE_EVERY="1",
                    NETDATA_USER_CONFIG_DIR=str(conf), NETDATA_STOCK_CONFIG_DIR="/nonexistent")
    p = subprocess.Popen([PLUGIN, "1"], stdin=subprocess.PIPE, stdout=stdout,
                         stderr=subprocess.PIPE, env=env)
    plugins.append(p)
    return p


def in_pipe(fd):
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def term(p):
    """SIGTERM; seconds until it exited (status 0), or a failure."""
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        wchan = open(f"/proc/{p.pid}/wchan").read()
        p.kill()
        p.wait()
        pytest.fail(f"no exit within 20 s of SIGTERM (waiting in {wchan})")
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr.read()
    return took


def test_sigterm_while_waiting_for_silent_and_trickling_peers(fleet, tmp_path, plugins):
    """During the first rescan: 100 peers that will miss their deadline
    are still waited for (the plugin names a stuck QMP socket once they have)."""
    took = []
    for delay in (0.1, 0.3):
        p = start(fleet, tmp_path, plugins, stdout=subprocess.DEVNULL)
        time.sleep(delay)
        took.append(term(p))
    p = start(fleet, tmp_path, plugins, stdout=subprocess.DEVNULL)
    stuck, deadline = b"", time.monotonic() + 30
    # Read from the fd itself: a buffered readline() would keep lines that
    # came in one burst where select() no longer sees them.
    fd = p.stderr.fileno()
    while b"QMP socket" not in stuck:      # the same wait, seen through
        assert time.monotonic() < deadline, stuck
        if select.select([fd], [], [], 0.1)[0]:
            stuck += os.read(fd, 65536)
    took.append(term(p))
    print("exit after SIGTERM: " + ", ".join(f"{t * 1000:.0f} ms" for t in took))
    assert max(took) < PROMPT, took


def test_sigterm_while_netdata_no_longer_reads(fleet, tmp_path, plugins):
    """Its stdout pipe full and 3 s more of output waiting (more than the
    256 KiB it holds before it waits for the reader): it exits anyway."""
    p = start(fleet, tmp_path, plugins)
    deadline = time.monotonic() + 30
    while in_pipe(p.stdout.fileno()) < PIPE_FULL:
        assert time.monotonic() < deadline, in_pipe(p.stdout.fileno())
        time.sleep(0.1)
    time.sleep(3)
    assert in_pipe(p.stdout.fileno()) == PIPE_FULL
    took = term(p)
    print(f"exit after SIGTERM, output unread: {took * 1000:.0f} ms")
    assert took < PROMPT, took
