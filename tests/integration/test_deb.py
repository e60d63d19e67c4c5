# SPDX-License-Identifier: MIT
"""The Debian packages (make deb), installed into this machine as users install them.

The packages are built from a copy of this tree (scripts/build-deb, what
make deb runs), twice: the version in debian/changelog, and a higher one
(a changelog entry added to the copy) to upgrade to. lintian must pass on
both. Then, on the real system: `apt-get install ./*.deb`; Debian's Netdata
(run as netdata.service runs it, netdata_debian.py) runs the packaged
plugin and charts a test VM; Debian's collectd (collectd_debian.py) loads
the packaged .so through the packaged conffile, edited as a user edits it,
and writes its CSV; the packaged kvmstat reads the VM exactly. An upgrade
keeps the edit; `apt-get purge` removes every path the packages had, the
file capabilities and the statoverride, and nothing else.

The module installs, tests and purges within itself: the fixture purges
at teardown whatever a failed step left installed, and puts back files a
`make install` had left where the packages install theirs. Netdata and
collectd are stopped by pid. Other modules see the system as it was.
"""
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, requires_kvm, wait_for
import netdata_debian
from netdata_debian import DebianNetdata
from collectd_debian import DebianCollectd
from daemons import collectd_missing_reason

PACKAGES = ("kvmstat", "netdata-plugin-kvm-stats", "collectd-kvm-stats")
PLUGIN = "/usr/lib/netdata/plugins.d/kvm_stats.plugin"
SNIPPET = "/etc/collectd/collectd.conf.d/kvm_stats.conf"
KVMSTAT = "/usr/bin/kvmstat"
CAPS = "cap_dac_read_search,cap_sys_ptrace=ep"
CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH = 19, 2
# What the tests compare before the install and after the purge.
WATCHED = ("/usr/lib/netdata", "/usr/lib/collectd", "/etc/collectd", "/usr/bin",
           "/usr/share/doc", "/usr/share/man/man1", "/usr/share/man/man5")
APT = ["apt-get", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120"]
ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")


def missing_reason():
    if os.geteuid() != 0:
        return "SKIP: installing packages needs root"
    for tool in ("dpkg", "apt-get", "dpkg-buildpackage", "dh", "lintian", "getcap"):
        if shutil.which(tool) is None:
            return f"SKIP: {tool} is missing (scripts/deps test installs it)"
    if not os.access("/var/lib/dpkg", os.W_OK):
        return "SKIP: the dpkg database is not writable"
    return netdata_debian.missing_reason() or collectd_missing_reason()


pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or "")


def quiet(log):
    """apt's and dpkg's output without the progress lines."""
    return "\n".join(line for line in log.splitlines() if not line.startswith("(Reading"))


def run(*argv, check=True, timeout=300):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       timeout=timeout, env=ENV, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))}: exit {r.returncode}\n"
                             f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def status(pkg):
    """dpkg's "Status" and "Version" of pkg, or None when dpkg has no record."""
    r = run("dpkg-query", "-W", "-f=${Status}\t${Version}", pkg, check=False)
    return tuple(r.stdout.split("\t")) if r.returncode == 0 and r.stdout else None


def installed(pkg):
    s = status(pkg)
    return s is not None and s[0] != "unknown ok not-installed"


def getcap(path):
    """getcap's capabilities of path ("" for none)."""
    out = run("getcap", path).stdout.split()
    return out[1] if len(out) > 1 else ""


def statoverride(path):
    r = run("dpkg-statoverride", "--list", path, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def tree(paths):
    """Every path under paths, and the capabilities of those that have any."""
    found = set()
    for top in paths:
        for dirpath, dirnames, filenames in os.walk(top):
            found.add(dirpath)
            found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    caps = run("getcap", "-r", *[p for p in paths if os.path.exists(p)], check=False).stdout
    return found, sorted(caps.splitlines())


def package_statuses():
    """Every package dpkg knows, its status and version (ours left out)."""
    out = run("dpkg-query", "-W", "-f=${Package}\t${Status}\t${Version}\n").stdout
    return sorted(line for line in out.splitlines() if line.split("\t")[0] not in PACKAGES)


def deb_paths(deb):
    """The paths a .deb installs, as dpkg -c lists them (no leading ".")."""
    out = run("dpkg-deb", "-c", deb).stdout
    paths = []
    for line in out.splitlines():
        name = line.split(None, 5)[5].split(" -> ")[0]
        paths.append(name[1:].rstrip("/") or "/")
    return paths


def apt_install(debs):
    """apt-get install ./X.deb ...: first simulated, so that nothing but our
    packages is installed (every dependency is there; else the purge could not
    leave the machine as it was)."""
    sim = run(*APT, "-s", "install", *debs).stdout
    others = sorted({line.split()[1] for line in sim.splitlines()
                     if line.startswith("Inst ")} - set(PACKAGES))
    assert not others, f"apt-get would also install {others}:\n{sim}"
    return run(*APT, "install", *debs).stdout


class Build:
    def __init__(self, out, version, log):
        self.out, self.version, self.log = out, version, log

    def deb(self, pkg):
        return str(self.out / f"{pkg}_{self.version}_{arch()}.deb")

    def debs(self):
        return [self.deb(p) for p in PACKAGES]


def arch():
    return run("dpkg", "--print-architecture").stdout.strip()


def build_both(base):
    """scripts/build-deb of this tree's version and of a higher one, side by
    side (each dpkg-buildpackage in its own copy of the tree)."""
    version = run("dpkg-parsechangelog", "-l", ROOT / "debian/changelog",
                  "-S", "Version").stdout.strip()
    newer = f"{version}+upgradetest1"
    procs = []
    for name, ver in (("v1", None), ("v2", newer)):
        out = base / name
        argv = [str(ROOT / "scripts/build-deb"), str(out)] + ([ver] if ver else [])
        procs.append((out, ver or version, subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)))
    builds = []
    for out, ver, p in procs:
        log = p.communicate(timeout=600)[0]
        assert p.returncode == 0, f"scripts/build-deb {out} {ver}: exit {p.returncode}\n{log}"
        builds.append(Build(out, ver, log))
    assert run("dpkg", "--compare-versions", newer, "gt", version, check=False).returncode == 0
    return builds


def purge():
    present = [p for p in PACKAGES if status(p) is not None]
    if present:
        return run(*APT, "purge", *present).stdout
    return ""


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """Both builds, and version 1 installed; at teardown, whatever is still
    installed is purged and set-aside files are put back, even after a failure."""
    already = [p for p in PACKAGES if installed(p)]
    if already:
        pytest.skip(f"SKIP: {', '.join(already)} installed on this machine: "
                    "the package tests would replace and purge it")
    v1, v2 = build_both(tmp_path_factory.mktemp("deb"))
    before_packages = package_statuses()
    before_overrides = run("dpkg-statoverride", "--list").stdout
    paths = sorted({p for pkg in PACKAGES for p in deb_paths(v1.deb(pkg))})
    existed = {p for p in paths if os.path.lexists(p)}
    # Files a `make install` left where the packages install theirs: set
    # aside (a rename keeps their capabilities), put back after the purge.
    aside = []
    try:
        for p in sorted(existed):
            if not os.path.isdir(p) or os.path.islink(p):
                assert run("dpkg", "-S", p, check=False).returncode != 0, \
                    f"{p} belongs to another package"
                os.rename(p, p + ".kvmstats-test-aside")
                aside.append(p)
        # What the purge must leave: the tree with those files set aside
        # (they come back after it), so a `make install` before `make
        # test`, the README's own order, is no difference.
        before_tree = tree(WATCHED)
        install_log = apt_install(v1.debs())
        yield dict(v1=v1, v2=v2, install_log=install_log, paths=paths, existed=existed,
                   tree=before_tree, packages=before_packages, overrides=before_overrides)
    finally:
        try:
            purge()
        finally:
            for p in aside:
                os.rename(p + ".kvmstats-test-aside", p)


def test_lintian_clean_and_contents(packages):
    for build in (packages["v1"], packages["v2"]):
        assert "build-deb: lintian: 0 errors, 0 warnings" in build.log, build.log
    v1 = packages["v1"]
    print(f"\n{v1.log}")
    contents = {pkg: deb_paths(v1.deb(pkg)) for pkg in PACKAGES}
    for pkg in PACKAGES:
        print(f"dpkg -c {Path(v1.deb(pkg)).name}:\n{run('dpkg-deb', '-c', v1.deb(pkg)).stdout}")
    assert KVMSTAT in contents["kvmstat"]
    assert "/usr/share/man/man1/kvmstat.1.gz" in contents["kvmstat"]
    assert {PLUGIN, "/usr/lib/netdata/conf.d/kvm_stats.conf"} <= set(
        contents["netdata-plugin-kvm-stats"])
    assert {"/usr/lib/collectd/kvm_stats.so", SNIPPET,
            "/usr/share/doc/collectd-kvm-stats/examples/kvm_stats.service.conf"} <= set(
        contents["collectd-kvm-stats"])
    # The man pages, and the docs the configs and man pages point to.
    assert {"/usr/share/man/man5/collectd-kvm_stats.5.gz",
            "/usr/share/doc/collectd-kvm-stats/alerts.md",
            "/usr/share/doc/collectd-kvm-stats/metrics.md"} <= set(contents["collectd-kvm-stats"])
    assert {"/usr/share/doc/netdata-plugin-kvm-stats/netdata.md",
            "/usr/share/doc/netdata-plugin-kvm-stats/alerts.md"} <= set(
        contents["netdata-plugin-kvm-stats"])
    assert "/usr/share/doc/kvmstat/metrics.md" in contents["kvmstat"]
    conffiles = run("dpkg-deb", "-I", v1.deb("collectd-kvm-stats"), "conffiles").stdout
    assert conffiles.split() == [SNIPPET]
    assert "Depends: netdata-core" not in run("dpkg-deb", "-f", v1.deb("kvmstat")).stdout


def test_installed_as_debian_installs_apps_plugin(packages):
    print(f"\n{quiet(packages['install_log'])}")
    for pkg in PACKAGES:
        assert status(pkg) == ("install ok installed", packages["v1"].version)
    st = os.stat(PLUGIN)
    assert stat.S_IMODE(st.st_mode) == 0o750
    assert (st.st_uid, st.st_gid) == (0, netdata_gid())
    assert getcap(PLUGIN) == CAPS
    assert statoverride(PLUGIN) == f"root netdata 750 {PLUGIN}"
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "collectd-kvm-stats").stdout
    assert SNIPPET in conffiles
    print(f"ls -l: {run('ls', '-l', PLUGIN).stdout.strip()}\ngetcap: {getcap(PLUGIN)}\n"
          f"dpkg-statoverride: {statoverride(PLUGIN)}\nconffiles:{conffiles}")


def netdata_gid():
    import grp
    return grp.getgrnam("netdata").gr_gid


@requires_kvm
def test_kvmstat_from_the_package_reads_the_vm_exactly(packages, testvm):
    k = 1234
    vm = testvm("--vcpus", 2, "--mmio", k, name="pkgexact")
    truth = vm.counts()["vms"][0]["vcpus"]
    r = run(KVMSTAT, "--json", "--no-debugfs", "--pid", vm.pid, 1, 1)
    [entry] = [e for e in json.loads(r.stdout.splitlines()[0])["vms"] if e["pid"] == vm.pid]
    seen = [(c["stats"]["mmio_exits"]["value"], c["stats"]["halt_exits"]["value"])
            for c in entry["vcpus"]]
    counted = [(c["mmio"], c["hlt"]) for c in truth]
    print(f"\ntestvm counted (mmio, hlt) per vCPU {counted}; {KVMSTAT} reported {seen}")
    assert counted == [(k, 1), (k, 1)]
    assert seen == counted


PACKAGED_NETDATA = r"""
set -eu
R=$1; shift
mkdir -p "$R/etc-upper" "$R/etc-work"
mount -t overlay kvmstats-test -o "lowerdir=/etc/netdata,upperdir=$R/etc-upper,workdir=$R/etc-work" /etc/netdata
for d in lib cache log; do mount --bind "$R/var-$d" "/var/$d/netdata"; done
{ ls -l /usr/lib/netdata/plugins.d/kvm_stats.plugin; getcap /usr/lib/netdata/plugins.d/kvm_stats.plugin; } >"$R/install.log"
mount -t tmpfs -o mode=1777 kvmstats-private-tmp /tmp
mount -t tmpfs -o mode=1777 kvmstats-private-tmp /var/tmp
cd /tmp
exec "$@"
"""


class PackagedNetdata(DebianNetdata):
    """netdata.service mirrored, with the plugin the package installed: no
    overlay on /usr/lib/netdata, nothing put there by the test."""
    script = PACKAGED_NETDATA


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@requires_kvm
def test_debian_netdata_runs_the_packaged_plugin(packages, testvm, tmp_path):
    rate = 200
    steady = testvm("--steady", rate, name="pkgsteady", state="running")
    exact = testvm("--vcpus", 2, "--mmio", 77, name="pkgnd")
    nd = PackagedNetdata(tmp_path, plugin_config="[kvm_stats]\n    rescan every = 1\n")
    try:
        nd.start()
        nd.wait_for_chart("kvm_pkgsteady.exits", timeout=40)
        nd.wait_for_chart("kvm_pkgnd.exits", timeout=20)
        charts = nd.charts()
        assert charts["kvm_pkgnd.exits"]["chart_labels"]["vm_pid"] == str(exact.pid)
        assert charts["kvm_pkgsteady.exits"]["plugin"] == "kvm_stats.plugin"
        [pid] = wait_for(lambda: nd.plugin_pids("kvm_stats.plugin"), what="plugin pid")
        plugin = proc_status(pid)
        assert int(plugin["Uid"].split()[0]) == int(proc_status(nd.pid)["Uid"].split()[0])
        assert int(plugin["CapPrm"], 16) == (1 << CAP_SYS_PTRACE) | (1 << CAP_DAC_READ_SEARCH)

        def settled():
            info = nd.chart("kvm_pkgsteady.exits")
            return info and info["last_entry"] - info["first_entry"] >= 6
        wait_for(settled, timeout=30, step=0.5, what="6 s of kvm_pkgsteady.exits")
        d = nd.data("kvm_pkgsteady.exits", after=-4, points=4)
        col = d["labels"].index("mmio_exits")
        rates = [row[col] for row in d["data"][1:]]
        print(f"\n{nd.install_log()}charts {sorted(c for c in charts if c.startswith('kvm_pkg'))}\n"
              f"kvm_pkgsteady mmio_exits/s {rates} (the VM keeps {rate}/s)")
        # One second can come out low when a collection lands late on a busy
        # host (Netdata interpolates to the second); over the window the
        # counts are all there. Exact counts are checked through kvmstat and
        # collectd.
        assert rates and abs(sum(rates) / len(rates) - rate) <= rate * 0.10, rates
        assert "kvm_stats.plugin:" not in nd.log(), nd.log()[-2000:]
        assert "-rwxr-x--- 1 root netdata" in nd.install_log()
        assert CAPS in nd.install_log()
    finally:
        nd.stop()


PACKAGED_COLLECTD = r"""
set -eu
R=$1; shift
mkdir -p "$R/etc-upper" "$R/etc-work"
mount -t overlay kvmstats-test -o "lowerdir=/etc/collectd,upperdir=$R/etc-upper,workdir=$R/etc-work" /etc/collectd
ls -l /usr/lib/collectd/kvm_stats.so /etc/collectd/collectd.conf.d/ >"$R/install.log"
exec "$@"
"""


class PackagedCollectd(DebianCollectd):
    """collectd.service mirrored, loading the packaged .so through the
    packaged conffile (collectd.conf's Include); only collectd.conf is the
    test's, in a private upper layer of /etc/collectd."""

    def argv(self):
        from daemons import COLLECTD_BIN
        return ["unshare", "--mount", "--propagation", "private",
                "sh", "-c", PACKAGED_COLLECTD, "sh", str(self.root), COLLECTD_BIN, "-f"]


EDIT = ("  #PerVCPU false\n", "  # Edited by test_deb.py: per-vCPU values too.\n  PerVCPU true\n")


def edit_snippet():
    """What a user does: turns PerVCPU on in the packaged conffile."""
    text = Path(SNIPPET).read_text()
    if EDIT[1] not in text:
        assert EDIT[0] in text, text
        Path(SNIPPET).write_text(text.replace(EDIT[0], EDIT[1]))
    return Path(SNIPPET).read_text()


@requires_kvm
def test_debian_collectd_loads_the_packaged_plugin(packages, testvm, tmp_path):
    k = 321
    vm = testvm("--vcpus", 2, "--mmio", k, name="pkgcd")
    counted = [c["mmio"] for c in vm.counts()["vms"][0]["vcpus"]]
    edit_snippet()
    with PackagedCollectd(tmp_path) as cd:
        def value(inst):
            rows = cd.csv_rows(inst, "derive-mmio_exits")
            return rows[-1]["value"] if rows else None
        total = wait_for(lambda: value("kvm_stats-pkgcd"), timeout=20, what="the VM's CSV")
        per_vcpu = [wait_for(lambda i=i: value(f"kvm_stats-pkgcd-vcpu{i}"), timeout=10,
                             what=f"vCPU {i}'s CSV") for i in (0, 1)]
        print(f"\n{cd.install_log()}testvm counted mmio {counted}; collectd CSV "
              f"kvm_stats-pkgcd/derive-mmio_exits {total}, per vCPU {per_vcpu}")
    assert counted == [k, k]
    assert per_vcpu == counted and total == sum(counted)
    assert "kvm_stats plugin" not in cd.log(), cd.log()


def test_trigger_sets_capabilities_again_after_netdata_core_chowns(packages):
    """netdata-core's postinst chowns plugins.d, which clears file
    capabilities; the file trigger on plugins.d sets ours again."""
    os.chown(PLUGIN, 0, netdata_gid())      # what its chown -R does to our file
    assert getcap(PLUGIN) == ""
    run("dpkg-trigger", "--by-package=netdata-core", "--no-await", "/usr/lib/netdata/plugins.d")
    out = run("dpkg", "--triggers-only", "netdata-plugin-kvm-stats").stdout
    print(f"\n{out}")
    assert getcap(PLUGIN) == CAPS
    assert status("netdata-plugin-kvm-stats")[0] == "install ok installed"


def test_upgrade_keeps_the_edited_conffile(packages):
    edited = edit_snippet()
    v2 = packages["v2"]
    log = apt_install(v2.debs())
    print(f"\n{quiet(log)}")
    for pkg in PACKAGES:
        assert status(pkg) == ("install ok installed", v2.version)
    assert Path(SNIPPET).read_text() == edited
    st = os.stat(PLUGIN)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 0, netdata_gid())
    assert getcap(PLUGIN) == CAPS
    assert statoverride(PLUGIN) == f"root netdata 750 {PLUGIN}"


def test_purge_removes_every_path_and_nothing_else(packages):
    listed = sorted({p for pkg in PACKAGES
                     for p in run("dpkg", "-L", pkg).stdout.splitlines() if p != "/."})
    log = purge()
    print(f"\n{quiet(log)}")
    left = [p for p in listed if os.path.lexists(p) and p not in packages["existed"]]
    assert not left, f"left behind by the purge: {left}"
    for p in listed:
        if os.path.lexists(p):
            assert os.path.isdir(p), f"{p} is still there"
    for pkg in PACKAGES:
        assert status(pkg) is None or status(pkg)[0] == "unknown ok not-installed", status(pkg)
    assert statoverride(PLUGIN) is None
    assert run("dpkg-statoverride", "--list").stdout == packages["overrides"]
    after_tree = tree(WATCHED)
    assert after_tree[1] == packages["tree"][1], "capabilities differ"
    gone = sorted(packages["tree"][0] - after_tree[0])
    new = sorted(after_tree[0] - packages["tree"][0])
    assert not gone and not new, f"removed: {gone}; added: {new}"
    assert package_statuses() == packages["packages"]
    print(f"{len(listed)} paths listed by dpkg -L: every file gone, "
          f"{sum(os.path.isdir(p) for p in listed)} shared directories kept; getcap -r: "
          f"{after_tree[1]}")
