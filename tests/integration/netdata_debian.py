# SPDX-License-Identifier: MIT
"""Netdata started the way Debian's netdata package starts it (a helper).

What /lib/systemd/system/netdata.service (netdata-core 1.37) does, and how
it is mirrored here without systemd and without touching the system:

  ExecStart=/usr/sbin/netdata -D     the same, no -c: it reads
                                     /etc/netdata/netdata.conf
  User=netdata Group=netdata         setpriv --reuid/--regid netdata
                                     --init-groups (netdata is in adm)
  CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_SETGID
    CAP_SETUID CAP_NET_RAW CAP_AUDIT_WRITE    setpriv --bounding-set
  NoNewPrivileges=false              file capabilities of plugins work
  no AmbientCapabilities             --inh-caps=-all: netdata has none
  LimitNOFILE=65536                  prlimit (capped at the hard limit
                                     where a sandbox has a lower one)
  WorkingDirectory=/tmp, PrivateTmp=true   a private tmpfs on /tmp and
                                     /var/tmp, cwd /tmp
  Environment=netdata_LOG_LOCATION=/var/log/netdata/log

Debian's directories are Debian's paths, inside a private mount namespace:
/usr/lib/netdata (plugins.d, conf.d) and /etc/netdata are overlays whose
upper layers are private, /var/{lib,cache,log}/netdata are private bind
mounts. Inside that namespace `make install-netdata` runs with no override
at all, as a user runs it: it finds Debian's plugins directory itself (dpkg
-S apps.plugin), chowns root:netdata 0750 and setcaps; what it writes lands
in the upper layers only. ProtectSystem/ReadOnlyDirectories are not
mirrored (they only make paths read-only that the plugin never writes).

The private netdata.conf is Debian's plus: a free 127.0.0.1 port, RAM
database, and only kvm_stats.plugin running (no other internal or external
collector), so the test measures the plugin alone.
"""
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import BUILD, ROOT
from netdata_daemon import INTERNAL_PLUGINS_OFF, NETDATA_BIN, Netdata, _conf_text, free_port

DEBIAN_UNIT = "/lib/systemd/system/netdata.service"
BOUNDING_SET = ("dac_read_search", "sys_ptrace", "setgid", "setuid", "net_raw", "audit_write")
# Not /tmp: PrivateTmp hides it. On / (no nosuid): file capabilities work.
ROOTS_DIR = "/var/cache/kvm_stats/netdata-debian"


def missing_reason():
    for path in (NETDATA_BIN, "/etc/netdata/netdata.conf", "/usr/lib/netdata/plugins.d/apps.plugin"):
        if not os.path.exists(path):
            return f"SKIP: {path} is missing (Debian package netdata-core)"
    if os.geteuid() != 0:
        return "SKIP: mirroring netdata.service needs root"
    for tool in ("unshare", "setpriv", "prlimit", "setcap", "dpkg-query"):
        if shutil.which(tool) is None:
            return f"SKIP: {tool} is missing"
    return None


SCRIPT = r"""
set -eu
R=$1; shift
ov() { mkdir -p "$R/$2-upper" "$R/$2-work"
       mount -t overlay kvmstats-test -o "lowerdir=$1,upperdir=$R/$2-upper,workdir=$R/$2-work" "$1"; }
ov /usr/lib/netdata usrlib
ov /etc/netdata etc
for d in lib cache log; do mount --bind "$R/var-$d" "/var/$d/netdata"; done
make -s --no-print-directory -C "$KVMSTATS_SRC" O="$KVMSTATS_BUILD" install-netdata \
    >"$R/install.log" 2>&1 || { cat "$R/install.log" >&2; exit 1; }
ls -l /usr/lib/netdata/plugins.d/kvm_stats.plugin >>"$R/install.log"
getcap /usr/lib/netdata/plugins.d/kvm_stats.plugin >>"$R/install.log"
mount -t tmpfs -o mode=1777 kvmstats-private-tmp /tmp
mount -t tmpfs -o mode=1777 kvmstats-private-tmp /var/tmp
cd /tmp
exec "$@"
"""


class DebianNetdata(Netdata):
    """netdata.service mirrored; the Netdata query methods are inherited.

    plugin_config: text of /etc/netdata/kvm_stats.conf (the user config).
    script: what runs in the namespace before Netdata (a subclass may put
    the plugin in place another way; test_deb.py uses the installed package).
    """

    script = SCRIPT

    def __init__(self, tmp_path, plugin_config=None, hostname="kvmtest-debian"):
        self.tmp_path = Path(tmp_path)
        self.hostname = hostname
        self.binary = NETDATA_BIN
        self.proc = None
        self.pid = None
        self.stray_processes = []
        self.exit_status = None
        os.makedirs(ROOTS_DIR, mode=0o755, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="root-", dir=ROOTS_DIR))
        self.root.chmod(0o755)
        self.port = free_port()
        # What stop() copies: the conf, the daemon's own output, its error log.
        self.conf_path = self.root / "etc-upper/netdata.conf"
        self.stdio_path = self.root / "stdio.log"
        self.log_dir = self.root / "var-log"
        self.plugins_dir = Path("/usr/lib/netdata/plugins.d")
        self.config_dir = self.root / "etc-upper"
        uid, gid = _ids()
        for d in ("var-lib", "var-cache"):
            (self.root / d).mkdir(mode=0o755)
            os.chown(self.root / d, uid, gid)
        # Debian: /var/log/netdata is netdata:adm 2750.
        self.log_dir.mkdir()
        os.chown(self.log_dir, uid, _gid("adm"))
        self.log_dir.chmod(0o2750)
        self.config_dir.mkdir(mode=0o755)
        cloud = self.root / "var-lib/cloud.d"
        cloud.mkdir()
        (cloud / "cloud.conf").write_text("[global]\n    enabled = no\n")
        os.chown(cloud, uid, gid)
        plugins = {opt: False for opt in INTERNAL_PLUGINS_OFF}
        plugins.update({"enable running new plugins": False, "kvm_stats": True,
                        "check for new plugins every": 60})
        ours = _conf_text({
            "global": {"hostname": hostname},
            "db": {"mode": "ram", "update every": 1},
            "web": {"bind to": f"127.0.0.1:{self.port}", "web server threads": 2},
            "health": {"enabled": False},
            "registry": {"enabled": False},
            "plugins": plugins,
        })
        # Debian's netdata.conf first (run as user = netdata, ...), then ours.
        self.conf_path.write_text(Path("/etc/netdata/netdata.conf").read_text() + "\n" + ours)
        if plugin_config is not None:
            (self.config_dir / "kvm_stats.conf").write_text(plugin_config)
            (self.config_dir / "kvm_stats.conf").chmod(0o644)

    def _start(self, timeout):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C",
               "KVMSTATS_SRC": str(ROOT), "KVMSTATS_BUILD": str(BUILD)}
        # LimitNOFILE=65536, or this sandbox's hard limit if lower (no
        # CAP_SYS_RESOURCE to raise it).
        nofile = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        daemon = ["prlimit", f"--nofile={nofile}:{nofile}", "--",
                  "setpriv", "--reuid=netdata", "--regid=netdata", "--init-groups",
                  "--bounding-set=-all," + ",".join("+" + c for c in BOUNDING_SET),
                  "--inh-caps=-all", "--",
                  "env", "-i", "netdata_LOG_LOCATION=/var/log/netdata/log",
                  "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DO_NOT_TRACK=1",
                  NETDATA_BIN, "-D"]
        # unshare, sh, prlimit, setpriv and env exec: the pid is netdata's.
        argv = ["unshare", "--mount", "--propagation", "private",
                "sh", "-c", self.script, "sh", str(self.root), *daemon]
        t0 = time.monotonic()
        with open(self.stdio_path, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=env, start_new_session=True)
        self.pid = self.proc.pid
        self._wait_ready(t0, timeout, f"Debian-style netdata on {self.url}")
        return self

    def start(self, timeout=60):
        return self._start(timeout)

    def install_log(self):
        """What make install-netdata printed, and the installed file's
        ls -l and getcap, as seen inside the namespace."""
        return (self.root / "install.log").read_text()

    def process_status(self):
        """/proc/<netdata>/status as a dict (user, capability sets)."""
        with open(f"/proc/{self.pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _ids():
    import pwd
    pw = pwd.getpwnam("netdata")
    return pw.pw_uid, pw.pw_gid


def _gid(group):
    import grp
    return grp.getgrnam(group).gr_gid
