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

Its vCPU threads (common/sources/sched.c) can be real threads of another
process (tests/fixtures/vcputhreads): task/<tid>/schedstat is a symlink to
the real /proc/<owner>/task/<tid>/schedstat, so the counters are live and
a read fails as the kernel's does once the thread exits; comm and syscall
are files the test writes (which thread is in KVM_RUN on which vCPU fd).
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

    def add_fd(self, pid, fd, target):
        """One more fd link of a listed process, e.g. anon_inode:kvm-vcpu:0."""
        os.symlink(target, self.root / str(pid) / "fd" / str(fd))

    def add_thread(self, pid, owner, tid, comm=None, syscall="running\n"):
        """Thread tid of the real process owner shown as a thread of listed
        process pid: live schedstat, comm (default: the real one) and
        syscall as given (kvm_run(fd) for a thread in KVM_RUN)."""
        d = self.root / str(pid) / "task" / str(tid)
        d.mkdir(parents=True)
        os.symlink(f"/proc/{owner}/task/{tid}/schedstat", d / "schedstat")
        if comm is None:
            comm = Path(f"/proc/{owner}/task/{tid}/comm").read_text()
        (d / "comm").write_text(comm if comm.endswith("\n") else comm + "\n")
        self.set_syscall(pid, tid, syscall)
        return d

    def set_syscall(self, pid, tid, text):
        path = self.root / str(pid) / "task" / str(tid) / "syscall"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.rename(path)  # never half written when read

    def remove_thread(self, pid, tid):
        shutil.rmtree(self.root / str(pid) / "task" / str(tid), ignore_errors=True)

    def remove(self, pid):
        shutil.rmtree(self.root / str(pid), ignore_errors=True)

    def env(self):
        """The environment a front end needs to read this tree."""
        return dict(os.environ, KVMSTATS_PROC_ROOT=str(self.root))

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def kvm_run(fd):
    """What /proc/<pid>/task/<tid>/syscall says of a thread blocked in
    ioctl(fd, KVM_RUN) on x86-64 (16 is ioctl, 0xae80 KVM_RUN)."""
    return f"16 {fd:#x} 0xae80 0x0 0x0 0x0 0x0 0x7ffc12345670 0x7f0012345678\n"
