# SPDX-License-Identifier: MIT
"""A fake /proc tree in which real processes look like VMMs.

The core takes its proc root as a parameter, and the front ends read it
from KVMSTATS_PROC_ROOT (host_new() with NULL), so a test can make a real
process (tests/fixtures/fakevmm.py --no-vm, say) look like a VMM that holds
a kvm-vm fd without any KVM on the host: its stat (whose starttime the core
checks against the pidfd it opens of the real pid), comm and cmdline are
copied from the real /proc, its fd directory holds the symlinks the test
names. Only the QMP, libvirt and debugfs paths can be tested that way: a
stats fd is taken from the real process with pidfd_getfd().
"""
import os
import shutil
import tempfile
from pathlib import Path


class FakeProc:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="kvmstats-fakeproc-"))
        self.root.chmod(0o755)  # readable by a plugin of user netdata, as /proc is

    def add(self, pid, fds=None, cmdline=None, tasks=False):
        """Lists real process pid with fds {number: link target}; by
        default one kvm-vm fd (number 10). cmdline: a list of arguments
        instead of the real one. tasks: its task/ directory is the real
        one (a symlink), so its threads' comm, syscall and schedstat are
        live."""
        d = self.root / str(pid)
        (d / "fd").mkdir(parents=True)
        for name in ("stat", "comm", "cgroup"):
            (d / name).write_bytes(Path(f"/proc/{pid}/{name}").read_bytes())
        if cmdline is None:
            (d / "cmdline").write_bytes(Path(f"/proc/{pid}/cmdline").read_bytes())
        else:
            (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in cmdline))
        for fd, target in (fds or {10: "anon_inode:kvm-vm"}).items():
            os.symlink(target, d / "fd" / str(fd))
        if tasks:
            os.symlink(f"/proc/{pid}/task", d / "task")
        return d

    def remove(self, pid):
        shutil.rmtree(self.root / str(pid), ignore_errors=True)

    def env(self):
        """The environment a front end needs to read this tree."""
        return dict(os.environ, KVMSTATS_PROC_ROOT=str(self.root))

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)
