# SPDX-License-Identifier: MIT
"""Debian 13 (trixie), Debian's stable since August 2025, in a chroot.

scripts/deps test makes the chroot (scripts/debian-chroot ensure: debootstrap
from the archive apt already uses, then scripts/deps deb inside, cached
under $KVMSTATS_CACHE/trixie). Each step here runs through
scripts/debian-chroot run: an overlay over the cached chroot whose writable
layer is this module's (so the cache stays as made and the steps see each
other's results), a copy of this tree (the files git knows, as make deb
copies them) bound at /src, /proc and /dev mounted in a mount namespace of
its own, and a time limit. In order: the build with trixie's gcc 14 and
-Werror, the unit tests, make deb with lintian, and the packages installed,
upgraded and purged there, the Netdata plugin's package included (no
Netdata in Debian 13: it installs without one, and links itself into the
plugins directory of Netdata's own package installed after it).
"""
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT

CHROOT = ROOT / "scripts/debian-chroot"
CACHE = Path(os.environ.get("KVMSTATS_CACHE", "/var/cache/kvm_stats"))
TRIXIE = CACHE / "trixie"
# Out of /src: make deb copies the tree (without .git, everything but
# build/), and the objects need not go with it.
O = "/var/tmp/kvmstats-build"
DEB = f"{O}/deb"
PLUGIN = "/usr/lib/netdata/plugins.d/kvm_stats.plugin"
UPSTREAM_DIR = "/usr/libexec/netdata/plugins.d"


def missing_reason():
    if os.geteuid() != 0:
        return "SKIP: a chroot needs root"
    if not (TRIXIE / ".kvmstats-complete").exists():
        return f"SKIP: no Debian 13 chroot at {TRIXIE}: scripts/deps test makes it"
    for tool in ("unshare", "git", "tar"):
        if shutil.which(tool) is None:
            return f"SKIP: {tool} is missing"
    return None


pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")


class Chroot:
    def __init__(self, work):
        self.work = work
        self.src = work / "src"
        self.upper = work / "upper"
        self.src.mkdir()
        files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                                "--exclude-standard"], capture_output=True, check=True).stdout
        tar = subprocess.run(["tar", "-C", str(ROOT), "--null", "--files-from=-",
                              "--ignore-failed-read", "-cf", "-"], input=files,
                             capture_output=True, check=True).stdout
        subprocess.run(["tar", "-C", str(self.src), "-xf", "-"], input=tar, check=True)

    def run(self, script, timeout, check=True):
        """Runs sh -c script in the chroot; its exit status and output.
        timeout bounds it inside (timeout(1)) and here (the process group)."""
        argv = [str(CHROOT), "run", str(self.upper), str(self.src), str(timeout),
                "sh", "-c", script]
        start = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            raise AssertionError(f"{script}: still running after {timeout + 30}s:\n{out[-3000:]}")
        took = time.monotonic() - start
        print(f"\n[trixie {took:.0f}s, exit {p.returncode}] {script}")
        if check and p.returncode != 0:
            raise AssertionError(f"{script}: exit {p.returncode} in the trixie chroot:\n"
                                 f"{out[-4000:]}")
        return p.returncode, out


@pytest.fixture(scope="module")
def trixie(tmp_path_factory):
    work = tmp_path_factory.mktemp("trixie")
    chroot = Chroot(work)
    yield chroot
    # The mounts lived in the runs' own namespaces: nothing is mounted here.
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def built(trixie):
    rc, out = trixie.run("gcc --version | head -n 1 && . /etc/os-release && echo $PRETTY_NAME && "
                         f"make -j2 O={O} WERROR=1 all 2>&1", timeout=900, check=False)
    return rc, out


def test_build_with_trixie_gcc_werror(built):
    rc, out = built
    print(out[:400])
    assert "Debian GNU/Linux 13" in out, out[:400]
    assert re.search(r"gcc.* 14\.", out), out[:400]
    assert rc == 0, out[-4000:]
    warnings = [line for line in out.splitlines() if "warning:" in line]
    assert not warnings, warnings


def test_unit_tests_on_trixie(trixie, built):
    assert built[0] == 0, "the build failed"
    rc, out = trixie.run(f"n=0; failed=; for t in {O}/tests/unit/test_*; do "
                         "[ -x \"$t\" ] || continue; case $t in *.d|*.o) continue;; esac; "
                         "n=$((n+1)); \"$t\" >\"$t.log\" 2>&1 || failed=\"$failed ${t##*/}\"; done; "
                         "echo \"unit binaries: $n\"; for f in $failed; do echo \"FAILED $f\"; "
                         f"grep -E '^\\[  (FAILED|ERROR)' {O}/tests/unit/$f.log || "
                         f"tail -n 5 {O}/tests/unit/$f.log; done; [ -z \"$failed\" ]",
                         timeout=300, check=False)
    print(out)
    n = int(re.search(r"unit binaries: (\d+)", out).group(1))
    expected = len(list((ROOT / "tests/unit").glob("test_*.c")))
    assert n == expected, f"{n} unit binaries built, {expected} sources"
    assert rc == 0, out


@pytest.fixture(scope="module")
def debs(trixie):
    # scripts/deps deb first, as a user runs make deb: on the cached chroot
    # it finds everything installed (the chroot was made by it).
    rc, out = trixie.run(f"make deb O={O} DEB_DIR={DEB} 2>&1", timeout=900, check=False)
    return rc, out


def test_make_deb_and_lintian_on_trixie(debs):
    rc, out = debs
    summary = re.search(r"build-deb: lintian: (\d+) errors, (\d+) warnings, (\d+) info, "
                        r"(\d+) overridden", out)
    print("\n".join(line for line in out.splitlines()
                    if line.startswith(("build-deb:", "E: ", "W: ", "deps:"))))
    assert summary, out[-4000:]
    errors, warnings = int(summary.group(1)), int(summary.group(2))
    assert errors == 0, out[-4000:]
    # build-deb fails on a warning lintian's overrides do not explain.
    assert rc == 0 and warnings == 0, out[-4000:]


# What the install test does inside, step by step; any failed step fails it.
INSTALL = r"""
set -eux
export DEBIAN_FRONTEND=noninteractive
cd /src
ls {deb}
apt-get install -y -q --no-install-recommends {deb}/kvmstat_*.deb {deb}/collectd-kvm-stats_*.deb \
    {deb}/netdata-plugin-kvm-stats_*.deb
dpkg-query -W kvmstat collectd-kvm-stats netdata-plugin-kvm-stats
kvmstat --help >/dev/null
# collectd 5.12 loads the packaged plugin through the packaged conffile.
collectd -t -C /etc/collectd/collectd.conf
echo "collectd -t: $?"
stat -c 'plugin %U:%G %a' {plugin}
echo "caps [$(getcap {plugin})]"
"""

# Netdata's own package, as far as its layout goes: a stand-in named and
# versioned like it that creates group netdata and ships a plugin in
# /usr/libexec/netdata/plugins.d (Debian 13 has no Netdata; the real one
# was run in the session that wrote this, see docs/packaging.md).
STANDIN = r"""
set -eux
export DEBIAN_FRONTEND=noninteractive
d=/tmp/standin
rm -rf $d && mkdir -p $d/DEBIAN $d{dir}
printf '#!/bin/sh\nexit 0\n' >$d{dir}/apps.plugin && chmod 755 $d{dir}/apps.plugin
printf 'Package: netdata\nVersion: 2.10.4-1\nArchitecture: all\nMaintainer: test <t@example.invalid>\nDescription: stand-in for Netdata layout\n' >$d/DEBIAN/control
printf '#!/bin/sh\ngetent group netdata >/dev/null || groupadd --system netdata\n' >$d/DEBIAN/preinst
chmod 755 $d/DEBIAN/preinst
dpkg-deb --root-owner-group -b $d /tmp/netdata-standin.deb >/dev/null
apt-get install -y -q /tmp/netdata-standin.deb
readlink {dir}/kvm_stats.plugin
stat -c 'plugin %U:%G %a' {plugin}
echo "caps [$(getcap {plugin})]"
"""


def test_packages_install_upgrade_purge_on_trixie(trixie, debs):
    assert debs[0] == 0, "make deb failed"
    rc, out = trixie.run(INSTALL.format(deb=DEB, plugin=PLUGIN), timeout=300, check=False)
    print(out[-3000:])
    assert rc == 0, out[-4000:]
    assert "collectd -t: 0" in out
    # No Netdata here yet: no group netdata, so no capabilities and the
    # package's own owner and mode.
    assert "plugin root:root 755" in out and "caps []" in out, out[-2000:]
    assert "no group netdata (Netdata is not installed)" in out

    # Netdata's own package installed after the plugin: the trigger on its
    # plugins.d links the plugin in and, group netdata there, gives it its
    # owner and capabilities.
    rc, out = trixie.run(STANDIN.format(dir=UPSTREAM_DIR, plugin=PLUGIN), timeout=300,
                         check=False)
    print(out[-3000:])
    assert rc == 0, out[-4000:]
    assert f"\n{PLUGIN}\n" in out, out[-2000:]
    assert "plugin root:netdata 750" in out
    assert "caps [/usr/lib/netdata/plugins.d/kvm_stats.plugin cap_dac_read_search,cap_sys_ptrace=ep]" in out

    # A higher version: the upgrade keeps owner, capabilities and link.
    rc, out = trixie.run(
        "set -eux; export DEBIAN_FRONTEND=noninteractive; "
        f"scripts/build-deb /tmp/v2 99.0.0 >/tmp/v2.log 2>&1 || {{ tail -n 30 /tmp/v2.log; exit 1; }}; "
        "apt-get install -y -q --no-install-recommends /tmp/v2/kvmstat_*.deb "
        "/tmp/v2/collectd-kvm-stats_*.deb /tmp/v2/netdata-plugin-kvm-stats_*.deb; "
        "dpkg-query -W -f '${Package} ${Version}\\n' kvmstat collectd-kvm-stats netdata-plugin-kvm-stats; "
        f"stat -c 'plugin %U:%G %a' {PLUGIN}; echo \"caps [$(getcap {PLUGIN})]\"; "
        f"readlink {UPSTREAM_DIR}/kvm_stats.plugin", timeout=900, check=False)
    print(out[-2000:])
    assert rc == 0, out[-4000:]
    for pkg in ("kvmstat", "collectd-kvm-stats", "netdata-plugin-kvm-stats"):
        assert f"{pkg} 99.0.0" in out
    assert "plugin root:netdata 750" in out and "cap_sys_ptrace=ep]" in out
    assert f"\n{PLUGIN}\n" in out

    # Purge: every file, the link, the statoverride gone.
    rc, out = trixie.run(
        "set -eu; export DEBIAN_FRONTEND=noninteractive; "
        "dpkg -L kvmstat collectd-kvm-stats netdata-plugin-kvm-stats | sort -u >/tmp/listed; "
        "apt-get purge -y -q kvmstat collectd-kvm-stats netdata-plugin-kvm-stats; "
        "while read -r p; do [ -d \"$p\" ] || [ ! -e \"$p\" ] || echo \"LEFT $p\"; done </tmp/listed; "
        f"[ -L {UPSTREAM_DIR}/kvm_stats.plugin ] && echo 'LEFT link' || true; "
        "echo \"overrides [$(dpkg-statoverride --list | grep kvm_stats || true)]\"; "
        "echo \"listed $(wc -l </tmp/listed)\"", timeout=300, check=False)
    print(out[-2000:])
    assert rc == 0, out[-4000:]
    assert "LEFT" not in out, out
    assert "overrides []" in out
    assert int(re.search(r"listed (\d+)", out).group(1)) > 10
