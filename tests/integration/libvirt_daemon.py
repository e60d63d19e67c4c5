# SPDX-License-Identifier: MIT
"""A private libvirtd (11.3, bookworm-backports) for the tests, without systemd.

It runs in a mount namespace of its own (unshare -m) where /etc/libvirt,
/var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and /run are
directories under one temporary root: its sockets, state and config are its
own, and a libvirtd the host runs is never touched (its sockets are not
even visible in there). The tests reach it through the read-only socket
outside: qemu:///system?socket=<root>/run/libvirt/libvirt-sock-ro.

With chroot= (scripts/debian-chroot's sid chroot: libvirt 12, QEMU 11) the
same libvirtd runs inside that chroot, read-only but for those directories,
with the host's /proc, /dev, /sys and /tmp and PID namespace: its sockets
and its domains' pid files are where the host's tests look, and its QEMUs'
pids are the host's.

QEMU's output goes to files (stdio_handler = "file"), so no virtlogd is
needed. On this machine QEMU only starts under libvirt with namespaces = [],
user/group root and no cgroup controllers (KVM_STATS_FACTS.md). Started and
stopped by pid: libvirtd's pid file, each domain's pid file.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

LIBVIRTD = "/usr/sbin/libvirtd"
VIRSH = "/usr/bin/virsh"


def missing_reason():
    for path in (LIBVIRTD, VIRSH, "/usr/bin/unshare"):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (run scripts/deps test)"
    if os.geteuid() != 0:
        return "a private system libvirtd needs root"
    return None


def version():
    out = subprocess.run([LIBVIRTD, "--version"], capture_output=True, text=True).stdout
    return out.strip().split()[-1] if out.strip() else "?"


class PrivateLibvirtd:
    def __init__(self, root=None, chroot=None):
        self.root = Path(root or tempfile.mkdtemp(prefix="kvmstats-libvirt-"))
        self.chroot = Path(chroot) if chroot else None
        self.dirs = {
            "/etc/libvirt": self.root / "etc",
            "/var/lib/libvirt": self.root / "lib",
            "/var/log/libvirt": self.root / "log",
            "/var/cache/libvirt": self.root / "cache",
        }
        self.run = self.root / "run"		# mounted as /run inside
        self.pidfile = self.run / "libvirtd.pid"
        self.pid = None
        self.rw_uri = f"qemu:///system?socket={self.run}/libvirt/libvirt-sock"
        self.uri = f"qemu:///system?socket={self.run}/libvirt/libvirt-sock-ro"
        self._setup()

    def _setup(self):
        for d in (*self.dirs.values(), self.run / "libvirt"):
            d.mkdir(parents=True, exist_ok=True)
        etc = self.dirs["/etc/libvirt"]
        (etc / "libvirtd.conf").write_text(
            'unix_sock_group = "root"\nunix_sock_ro_perms = "0777"\n'
            'unix_sock_rw_perms = "0700"\nauth_unix_ro = "none"\nauth_unix_rw = "none"\n'
            'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n')
        (etc / "qemu.conf").write_text(
            'namespaces = [ ]\nuser = "root"\ngroup = "root"\ncgroup_controllers = [ ]\n'
            'stdio_handler = "file"\nsecurity_driver = "none"\n'
            'dynamic_ownership = 0\nremember_owner = 0\n')
        (etc / "libvirt.conf").write_text("")
        (etc / "qemu").mkdir(exist_ok=True)

    def start(self, timeout=30):
        t = self.chroot or ""
        binds = "".join(f"mount --bind {host} {t}{inside} && "
                        for inside, host in self.dirs.items())
        daemon = f"{LIBVIRTD} -d -p /run/libvirtd.pid -f /etc/libvirt/libvirtd.conf"
        if self.chroot:
            # The chroot read-only (the cache stays as made), its mount
            # points made first; the host's /proc, /dev, /sys and /tmp.
            mkdirs = " ".join(f"{t}{inside}" for inside in self.dirs)
            script = (f"mount --make-rprivate / && mkdir -p {mkdirs} && "
                      f"mount --bind {t} {t} && mount -o remount,bind,ro {t} && {binds}"
                      f"mount --bind {self.run} {t}/run && mount -t proc proc {t}/proc && "
                      f"mount --rbind /dev {t}/dev && mount --rbind /sys {t}/sys && "
                      f"mount --rbind /tmp {t}/tmp && exec chroot {t} {daemon}")
        else:
            # /run inside is ours: the host's libvirt sockets are not reachable.
            script = (f"mount --make-rprivate / && {binds}"
                      f"mount --bind {self.run} /run && exec {daemon}")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
        r = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"libvirtd did not start: {r.stderr.strip()}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pidfile.exists() and (self.run / "libvirt/libvirt-sock-ro").exists():
                try:
                    self.pid = int(self.pidfile.read_text().strip())
                except ValueError:
                    pass
                if self.pid and self.virsh("uri", check=False).returncode == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"libvirtd did not answer in {timeout} s: {self.log_tail()}")

    def log_tail(self, n=20):
        log = self.dirs["/var/log/libvirt"] / "libvirtd.log"
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def virsh(self, *args, check=True, ro=False, timeout=60):
        uri = self.uri if ro else self.rw_uri
        r = subprocess.run([VIRSH, "-q", "-c", uri, *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"virsh {' '.join(args)}: {r.stderr.strip()}")
        return r

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=20):
        """Stops libvirtd by pid (domains keep running, as with a real one)."""
        if not self.pid:
            return
        try:
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None
        for p in (self.pidfile, self.run / "libvirt/libvirt-sock",
                  self.run / "libvirt/libvirt-sock-ro"):
            try:
                p.unlink()
            except OSError:
                pass

    def domain_pid(self, name):
        try:
            return int((self.run / f"libvirt/qemu/{name}.pid").read_text().strip())
        except (OSError, ValueError):
            pass
        # libvirt escapes odd names in its file names: find -uuid instead.
        uuid = self.virsh("domuuid", name, check=False).stdout.strip()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if uuid and b"-uuid" in argv and uuid.encode() in argv:
                return int(d.name)
        return None

    def domain_pids(self):
        out = {}
        for p in (self.run / "libvirt/qemu").glob("*.pid"):
            try:
                out[p.stem] = int(p.read_text().strip())
            except (OSError, ValueError):
                pass
        return out

    def close(self):
        """Destroys the domains, stops libvirtd, kills leftovers by pid."""
        pids = self.domain_pids()
        if self.pid:
            for name in pids:
                self.virsh("destroy", name, check=False, timeout=20)
        self.stop()
        for pid in self.domain_pids().values() or pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def domain_xml(name, emulator, cpu_model, vcpus=2, memory_mib=64, uuid=None,
               title=None, description=None, metadata=""):
    """A paused-friendly domain: no disks, no devices but what QEMU needs."""
    import html
    esc = html.escape
    parts = [f"<domain type='kvm'><name>{esc(name)}</name>"]
    if uuid:
        parts.append(f"<uuid>{uuid}</uuid>")
    if title is not None:
        parts.append(f"<title>{esc(title)}</title>")
    if description is not None:
        parts.append(f"<description>{esc(description)}</description>")
    if metadata:
        parts.append(f"<metadata>{metadata}</metadata>")
    if cpu_model.startswith("host"):
        feats = "".join(f"<feature policy='disable' name='{f[1:]}'/>"
                        for f in cpu_model.split(",")[1:] if f.startswith("-"))
        cpu = f"<cpu mode='host-passthrough' check='none' migratable='off'>{feats}</cpu>"
    else:
        cpu = f"<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>{esc(cpu_model)}</model></cpu>"
    parts.append(
        f"<memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>"
        f"<os><type arch='x86_64' machine='pc'>hvm</type></os>{cpu}"
        f"<devices><emulator>{emulator}</emulator><memballoon model='none'/>"
        f"<controller type='usb' model='none'/></devices></domain>")
    return "".join(parts)
