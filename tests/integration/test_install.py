# SPDX-License-Identifier: MIT
"""make install-netdata: the plugin goes where the installed Netdata looks.

Netdata reads plugins from one directory fixed at its build (Debian:
/usr/lib/netdata/plugins.d, upstream packages: /usr/libexec/netdata/...).
A directory that merely exists proves nothing: a `make install` run before
Netdata was installed creates one. Every case installs into a scratch
DESTDIR; the installed Netdata is either this system's (asked through dpkg,
with a leftover /usr/libexec/netdata faked in a private mount namespace) or
a scratch tree named by NETDATA_ROOT. Nothing under the real / is written.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, requires_root

APPS_PLUGIN = "/usr/lib/netdata/plugins.d/apps.plugin"


def make_install(destdir, *overrides, wrapper=()):
    argv = [*wrapper, "make", "-s", "--no-print-directory", "-C", str(ROOT),
            f"O={BUILD}", "install-netdata", f"DESTDIR={destdir}", *overrides]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def files(tree):
    return sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())


def fake_netdata(tree, plugins_dir, stock_dir="/usr/lib/netdata/conf.d"):
    """A Netdata's own files, as far as install-netdata looks at them."""
    (tree / plugins_dir.lstrip("/")).mkdir(parents=True)
    (tree / plugins_dir.lstrip("/") / "apps.plugin").write_text("")
    (tree / stock_dir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (tree / stock_dir.lstrip("/") / "apps_groups.conf").write_text("")


@requires_root
@pytest.mark.skipif(not os.path.exists(APPS_PLUGIN) or shutil.which("unshare") is None,
                    reason=f"SKIP: needs Debian's Netdata ({APPS_PLUGIN}) and unshare")
def test_debian_netdata_wins_over_a_leftover_libexec_dir(tmp_path):
    """The order bug: make install before Netdata created /usr/libexec/netdata;
    Debian's Netdata, installed later, reads only /usr/lib/netdata/plugins.d.
    The leftover directory is faked in a private mount namespace (a tmpfs
    over /usr/libexec), so the real one is never touched."""
    dest = tmp_path / "dest"
    script = ('mount -t tmpfs kvmstats-test /usr/libexec && '
              'mkdir -p /usr/libexec/netdata/plugins.d && exec "$@"')
    r = make_install(dest, wrapper=("unshare", "--mount", "--propagation", "private",
                                    "sh", "-c", script, "sh"))
    assert files(dest) == ["usr/lib/netdata/conf.d/health.d/kvm_stats.conf",
                           "usr/lib/netdata/conf.d/kvm_stats.conf",
                           "usr/lib/netdata/plugins.d/kvm_stats.plugin"], r.stdout + r.stderr
    print(r.stdout + r.stderr)
    assert (f"installed {dest}/usr/lib/netdata/plugins.d/kvm_stats.plugin: package "
            "netdata-core installed Netdata's own apps.plugin there (dpkg -S apps.plugin)"
            in r.stdout)
    assert "WARNING" not in r.stderr


def test_root_with_both_directories_takes_the_one_netdata_uses(tmp_path):
    root, dest = tmp_path / "root", tmp_path / "dest"
    fake_netdata(root, "/usr/lib/netdata/plugins.d")
    (root / "usr/libexec/netdata/plugins.d").mkdir(parents=True)   # leftover
    r = make_install(dest, f"NETDATA_ROOT={root}")
    assert files(dest) == ["usr/lib/netdata/conf.d/health.d/kvm_stats.conf",
                           "usr/lib/netdata/conf.d/kvm_stats.conf",
                           "usr/lib/netdata/plugins.d/kvm_stats.plugin"]
    assert (f"installed {dest}/usr/lib/netdata/plugins.d/kvm_stats.plugin: "
            "Netdata's own apps.plugin is there" in r.stdout)


def test_upstream_layout_libexec_plugins_lib_stock_config(tmp_path):
    root, dest = tmp_path / "root", tmp_path / "dest"
    fake_netdata(root, "/usr/libexec/netdata/plugins.d")
    (root / "usr/lib/netdata/plugins.d").mkdir(parents=True)       # no Netdata there
    r = make_install(dest, f"NETDATA_ROOT={root}")
    assert files(dest) == ["usr/lib/netdata/conf.d/health.d/kvm_stats.conf",
                           "usr/lib/netdata/conf.d/kvm_stats.conf",
                           "usr/libexec/netdata/plugins.d/kvm_stats.plugin"], r.stdout


def test_no_netdata_installed_warns(tmp_path):
    root, dest = tmp_path / "root", tmp_path / "dest"
    (root / "etc").mkdir(parents=True)
    (root / "etc/debian_version").write_text("12.0\n")
    r = make_install(dest, f"NETDATA_ROOT={root}")
    assert files(dest) == ["usr/lib/netdata/conf.d/health.d/kvm_stats.conf",
                           "usr/lib/netdata/conf.d/kvm_stats.conf",
                           "usr/lib/netdata/plugins.d/kvm_stats.plugin"]
    assert "WARNING: no Netdata is installed" in r.stderr
    assert "install Netdata, then run make install-netdata again" in r.stderr


def test_an_earlier_copy_netdata_does_not_read_is_named(tmp_path):
    root, dest = tmp_path / "root", tmp_path / "dest"
    fake_netdata(root, "/usr/lib/netdata/plugins.d")
    stale = dest / "usr/libexec/netdata/plugins.d/kvm_stats.plugin"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    r = make_install(dest, f"NETDATA_ROOT={root}")
    assert (dest / "usr/lib/netdata/plugins.d/kvm_stats.plugin").exists()
    assert f"WARNING: an earlier {stale} is there" in r.stderr


def test_explicit_plugins_dir_is_obeyed(tmp_path):
    dest = tmp_path / "dest"
    r = make_install(dest, "NETDATA_PLUGINS_DIR=/srv/nd/plugins.d",
                     f"NETDATA_ROOT={tmp_path}")
    assert files(dest) == ["srv/nd/conf.d/health.d/kvm_stats.conf", "srv/nd/conf.d/kvm_stats.conf",
                           "srv/nd/plugins.d/kvm_stats.plugin"]
    assert "NETDATA_PLUGINS_DIR was given" in r.stdout


def test_install_then_uninstall_leaves_no_file(tmp_path):
    """make install puts the man pages and the docs the configs point to in
    place, beside the binaries and configs; make uninstall removes every
    file it put there (into a scratch DESTDIR; no root needed)."""
    dest = tmp_path / "stage"
    common = [f"O={BUILD}", f"DESTDIR={dest}", "PREFIX=/usr",
              "NETDATA_PLUGINS_DIR=/usr/lib/netdata/plugins.d"]
    # NO_DEPS=1: no package provisioning (the build is there).
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), *common,
                        "install", "NO_DEPS=1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    installed = files(dest)
    for path in ("usr/bin/kvmstat", "usr/share/man/man1/kvmstat.1",
                 "usr/share/man/man5/collectd-kvm_stats.5",
                 "usr/share/doc/kvm-stats/netdata.md", "usr/share/doc/kvm-stats/alerts.md",
                 "usr/share/doc/kvm-stats/metrics.md",
                 "usr/lib/netdata/plugins.d/kvm_stats.plugin",
                 "usr/lib/netdata/conf.d/health.d/kvm_stats.conf",
                 "usr/lib/collectd/kvm_stats.so",
                 "etc/collectd/collectd.conf.d/kvm_stats.conf"):
        assert path in installed, (path, installed)
    # The docs the installed configs name are installed.
    for conf in dest.rglob("*.conf"):
        for name in set(re.findall(r"\b(\w+\.md)\b", conf.read_text())):
            assert f"usr/share/doc/kvm-stats/{name}" in installed, (conf, name)
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), *common,
                        "uninstall"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert files(dest) == [], files(dest)
