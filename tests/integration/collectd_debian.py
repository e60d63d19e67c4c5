# SPDX-License-Identifier: MIT
"""collectd started the way Debian's collectd package starts it (a helper).

/lib/systemd/system/collectd.service (collectd-core 5.12) runs
`/usr/sbin/collectd` as root with no capability or user change, reading
/etc/collectd/collectd.conf, whose Debian version (package collectd) ends
with <Include "/etc/collectd/collectd.conf.d"> Filter "*.conf"; plugins
load from /usr/lib/collectd. Mirrored here in a private mount namespace:
/usr/lib/collectd and /etc/collectd are overlays with private upper
layers, `make install-collectd` runs inside it with no override (so the
plugin and its conf snippet land where a user's `make install` puts them,
in the upper layers only), then `collectd -f` starts (foreground instead
of Type=notify) with the default config path. collectd.conf is Debian's
shape: globals, logfile, csv (into the private directory), the Include.
"""
from pathlib import Path

from conftest import BUILD, ROOT
from daemons import Collectd, TYPES_DB, COLLECTD_BIN

SCRIPT = r"""
set -eu
R=$1; shift
ov() { mkdir -p "$R/$2-upper" "$R/$2-work"
       mount -t overlay kvmstats-test -o "lowerdir=$1,upperdir=$R/$2-upper,workdir=$R/$2-work" "$1"; }
ov /usr/lib/collectd usrlib
ov /etc/collectd etc
make -s --no-print-directory -C "$KVMSTATS_SRC" O="$KVMSTATS_BUILD" install-collectd \
    >"$R/install.log" 2>&1 || { cat "$R/install.log" >&2; exit 1; }
ls -l /usr/lib/collectd/kvm_stats.so /etc/collectd/collectd.conf.d/ >>"$R/install.log"
exec "$@"
"""


class DebianCollectd(Collectd):
    name = "collectd-debian"

    def __init__(self, tmp, hostname="kvmtest-debian"):
        super().__init__(tmp, hostname=hostname, debian_plugins=(), csv=True,
                         env={"KVMSTATS_SRC": str(ROOT), "KVMSTATS_BUILD": str(BUILD)})
        self.conf_path = self.root / "etc-upper/collectd.conf"

    def config_text(self):
        return (f'Hostname "{self.hostname}"\n'
                "FQDNLookup false\n"
                f'BaseDir "{self.root}"\n'          # Debian: /var/lib/collectd
                f'PIDFile "{self.pid_file}"\n'      # Debian: /var/run/collectd.pid
                'PluginDir "/usr/lib/collectd"\n'
                f'TypesDB "{TYPES_DB}"\n'
                f"Interval {self.interval}\n"
                "LoadPlugin logfile\n<Plugin logfile>\n"
                f'  LogLevel "{self.log_level}"\n  File "{self.log_path}"\n'
                "  Timestamp true\n  PrintSeverity true\n</Plugin>\n"
                + "".join(self._outputs)
                + '<Include "/etc/collectd/collectd.conf.d">\n\tFilter "*.conf"\n</Include>\n')

    def start(self, timeout=30):
        self.conf_path.parent.mkdir(mode=0o755, exist_ok=True)
        self.conf_path.write_text(self.config_text())
        return self._start(timeout)

    def argv(self):
        return ["unshare", "--mount", "--propagation", "private",
                "sh", "-c", SCRIPT, "sh", str(self.root), COLLECTD_BIN, "-f"]

    def install_log(self):
        return (self.root / "install.log").read_text()

    def _extra_saved_files(self):
        return [self.root / "install.log"]
