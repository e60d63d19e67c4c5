# SPDX-License-Identifier: MIT
"""kvm_stats.plugin run standalone: the protocol it speaks, on real KVM VMs.

The plugin is started the way Netdata starts it (argv[1] = update_every,
NETDATA_* in the environment) and its stdout is parsed line by line. The
SET values are compared with what the test VMs counted themselves.
"""
import grp
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, requires_kvm, requires_qemu, requires_qemu10, requires_root

PLUGIN = str(BUILD / "kvm_stats.plugin")
# Every keyword Netdata 1.37 knows that this plugin may send; 1.37 drops a
# plugin that sends any other.
KEYWORDS_137 = {"CHART", "DIMENSION", "CLABEL", "CLABEL_COMMIT", "BEGIN", "SET",
                "END", "DISABLE", "FUNCTION"}

pytestmark = requires_kvm


# The defaults chart little (README "Settings"); these tests test what the
# settings below turn on (per-vCPU charts, histograms, every group, stats
# still at zero, debugfs at every sample), so they ask for it.
# test_defaults_* runs without them.
EVERYTHING = ("groups = all\nper vcpu charts = yes\nhistograms = yes\nzero dimensions = yes\n"
              "debugfs every = 1\n")


class Plugin:
    """A running kvm_stats.plugin and everything it printed so far."""

    def __init__(self, tmp_path, config="", version="v1.37.1", user=None, conf_dir=None,
                 binary=PLUGIN, features=EVERYTHING):
        conf_dir = conf_dir or tmp_path / "netdata-conf"
        conf_dir.mkdir(exist_ok=True)
        (conf_dir / "kvm_stats.conf").write_text("[kvm_stats]\nrescan every = 1\n" + config
                                                 + features)
        env = dict(os.environ, NETDATA_USER_CONFIG_DIR=str(conf_dir),
                   NETDATA_STOCK_CONFIG_DIR="/nonexistent", NETDATA_VERSION=version,
                   NETDATA_UPDATE_EVERY="1")
        argv = [str(binary), "1"]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                    "--inh-caps=-all", "--"] + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, text=True)
        self.lines = []
        self.partial = b""

    def read_for(self, seconds):
        """Collects the lines printed within the next `seconds`. Reads the
        pipe's fd itself: select() cannot see lines already sitting in a
        Python file object's buffer, which would hide the last lines the
        plugin printed before going quiet."""
        deadline = time.monotonic() + seconds
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            *lines, self.partial = (self.partial + chunk).split(b"\n")
            self.lines.extend(line.decode(errors="replace") for line in lines)
        return self.lines

    def read_until(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_for(0.5)
            if predicate(self):
                return
        raise AssertionError("the plugin never printed what was expected")

    def words(self):
        return [shlex.split(line) for line in self.lines if line]

    def charts(self):
        """chart id -> the words of its last CHART line."""
        return {w[1]: w for w in self.words() if w[0] == "CHART"}

    def last_values(self):
        """chart id -> {dimension: last SET value}."""
        values, chart = {}, None
        for w in self.words():
            if w[0] == "BEGIN":
                chart = values.setdefault(w[1], {})
            elif w[0] == "SET":
                chart[w[1]] = int(w[3])
        return values

    def blocks(self, first_chart):
        """The SET values of each iteration, from one BEGIN of first_chart
        to the next: {chart: {dimension: value}} per complete iteration."""
        blocks, current, chart = [], None, None
        for w in self.words():
            if w[0] == "BEGIN":
                if w[1] == first_chart:
                    if current is not None:
                        blocks.append(current)
                    current = {}
                chart = w[1]
                if current is not None:
                    current[chart] = {}
            elif w[0] == "SET" and current is not None:
                current[chart][w[1]] = int(w[3])
        return blocks  # the last, maybe partial, iteration is left out

    def labels(self, chart_id):
        labels, current = {}, None
        for w in self.words():
            if w[0] == "CHART":
                current = w[1]
                if current == chart_id:
                    labels = {}
            elif w[0] == "CLABEL" and current == chart_id:
                labels[w[1]] = w[2]
        return labels

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        # A plugin blocked on a full pipe finishes its write before it can
        # see the signal, as under Netdata, which reads until the end.
        if not self.proc.stdout.closed:
            self.read_for(10)
        status = self.proc.wait(timeout=10)
        self.stderr = self.proc.stderr.read()
        return status


@pytest.fixture
def plugin(tmp_path):
    plugins = []

    def start(**kwargs):
        p = Plugin(tmp_path, **kwargs)
        plugins.append(p)
        return p

    yield start
    for p in plugins:
        p.stop()


def test_set_values_equal_the_vms_own_counts(testvm, plugin):
    k, vcpus = 1234, 3
    vm = testvm("--vcpus", vcpus, "--mmio", k, "--hold", "vm,vcpu", name="exact")
    truth = vm.counts()["vms"][0]["vcpus"]
    p = plugin()
    p.read_until(lambda p: "kvm_exact.vcpu2_exits" in p.last_values())

    values = p.last_values()
    assert values["kvm_exact.exits"]["mmio_exits"] == sum(c["mmio"] for c in truth) == k * vcpus
    assert values["kvm_exact.exits"]["halt_exits"] == sum(c["hlt"] for c in truth) == vcpus
    for c in truth:
        per_vcpu = values[f"kvm_exact.vcpu{c['vcpu']}_exits"]
        assert per_vcpu["mmio_exits"] == c["mmio"] == k
        assert per_vcpu["halt_exits"] == c["hlt"] == 1
    # Mapped guest memory, from the VM stats fd, in MiB via the multiplier.
    memory = values["kvm_exact.memory"]
    assert set(memory) == {"pages_4k", "pages_2m", "pages_1g"}
    dims = {w[1]: w for w in p.words() if w[0] == "DIMENSION" and w[1].startswith("pages_")}
    assert dims["pages_4k"][3:6] == ["absolute", "4096", "1048576"]


def test_defaults_chart_the_default_groups_per_vm_only(testvm, plugin):
    k, vcpus = 777, 2
    vm = testvm("--vcpus", vcpus, "--mmio", k, "--hold", "vm,vcpu", name="small")
    truth = vm.counts()["vms"][0]["vcpus"]
    p = plugin(features="")
    p.read_until(lambda p: "kvm_small.exits" in p.last_values())
    p.read_for(1.5)
    keys = {c.split(".", 1)[1] for c in p.charts()}
    assert keys <= {"exits", "page_faults", "halt", "halt_time", "halt_state", "interrupts",
                    "emulation", "memory"}, keys
    values = p.last_values()
    assert values["kvm_small.exits"]["mmio_exits"] == sum(c["mmio"] for c in truth) == k * vcpus
    assert values["kvm_small.exits"]["halt_exits"] == sum(c["hlt"] for c in truth) == vcpus
    # A stat still at zero gets no dimension (nmi_window_exits: no NMI here).
    assert "nmi_window_exits" not in values["kvm_small.exits"]
    assert all(v != 0 for chart in values.values() for v in chart.values()), values
    # "include stat" without "groups": the stats listed, wherever they are
    # (tlb_flush stays zero here: shown with zero dimensions = yes).
    q = plugin(config="include stat = tlb_flush\ninclude stat = mmio_exits\n"
                      "zero dimensions = yes\n", features="")
    q.read_until(lambda p: "kvm_small.tlb" in p.last_values())
    assert q.last_values()["kvm_small.exits"] == {"mmio_exits": k * vcpus}


def test_charts_names_contexts_labels(testvm, plugin):
    vm_uuid = "5c3f2f2e-8d1f-4a43-9d59-0d2d8e0a4c11"
    vm = testvm("--vcpus", 2, "--mmio", 10, "--hold", "vm,vcpu", name="web-1", uuid=vm_uuid)
    other = testvm("--mmio", 10, name="web-1")  # same name: its own type id
    p = plugin(config="histograms = yes\n")
    p.read_until(lambda p: any(c.startswith(f"kvm_web_1_{other.pid}.") for c in p.charts()))
    charts = p.charts()

    exits = charts["kvm_web_1.exits"]
    # CHART type.id name title units family context charttype priority
    #       update_every options plugin module
    assert exits[3:8] == ["VM exits", "exits/s", "exits", "kvm.vm.exits", "line"]
    assert exits[9:] == ["1", "", "kvm_stats.plugin", "vm"]
    assert charts["kvm_web_1.vcpu1_exits"][6] == "kvm.vcpu.exits"
    assert charts["kvm_web_1.halt_time"][4] == "milliseconds/s"
    assert charts["kvm_web_1.halt_wait_hist"][7] == "stacked"  # heatmap needs 2.2
    assert charts["kvm_web_1.memory"][4] == "MiB"
    assert p.labels("kvm_web_1.exits") == {"vm_name": "web-1", "vm_pid": str(vm.pid),
                                           "vm_uuid": vm_uuid}
    assert p.labels("kvm_web_1.vcpu1_exits") == {"vm_name": "web-1", "vm_pid": str(vm.pid),
                                                 "vm_uuid": vm_uuid, "vcpu": "1"}
    assert "vm_uuid" not in p.labels(f"kvm_web_1_{other.pid}.exits")
    # Priorities form one block, VM charts before vCPU charts.
    priorities = [int(c[8]) for c in charts.values()]
    assert 38000 <= min(priorities) and max(priorities) < 41000
    # Every dimension of the histogram is named by its bucket's bound.
    buckets = [w for w in p.words() if w[0] == "DIMENSION" and w[1].startswith("bucket")]
    assert ["bucket0", "<1ns"] == buckets[0][1:3]
    assert any(b[2] == "<1.02us" for b in buckets)


def test_heatmap_only_for_netdata_that_knows_it(testvm, plugin):
    testvm("--mmio", 1, name="heat")
    p = plugin(version="v2.2.0")
    p.read_until(lambda p: "kvm_heat.halt_wait_hist" in p.charts())
    assert p.charts()["kvm_heat.halt_wait_hist"][7] == "heatmap"


def test_excluded_stats_and_vms_never_appear(testvm, plugin):
    testvm("--mmio", 5, name="prod-a")
    testvm("--mmio", 5, name="scratch")
    p = plugin(config="exclude stat = /^pf_/\nexclude stat = halt_exits\n"
                      "include vm = /^prod-/\n")
    p.read_until(lambda p: "kvm_prod_a.exits" in p.last_values())
    p.read_for(1.5)
    text = "\n".join(p.lines)
    assert "scratch" not in text
    assert "'pf_" not in text and "halt_exits" not in text
    assert p.last_values()["kvm_prod_a.exits"]["mmio_exits"] == 5


def test_only_netdata_137_keywords(testvm, plugin):
    vm = testvm("--vcpus", 2, "--steady", 100, name="kw", state="running")
    p = plugin()
    p.read_until(lambda p: "kvm_kw.vcpu1_exits" in p.last_values())
    vm.stop()
    p.read_until(lambda p: "obsolete" in p.charts().get("kvm_kw.exits", []))
    assert {w[0] for w in p.words()} <= KEYWORDS_137


# VM names anybody may choose (QEMU -name guest=...), as testvm passes them.
# common/cmdline.c keeps at most 4096 bytes of a name; "\udcXX" is the byte
# XX, not UTF-8, through Python's surrogateescape.
NAME_MAX = 4096
LONG = "0123456789abcdef" * 320     # 5120 bytes: cut to 4096
HOSTILE_NAMES = {
    "quotes-newline-backslash": "a'b\"c\nCHART x y\\",
    "esc": "\x1b[31mred\x7f",
    "spaces": "my vm  two ",
    "slashes": "a/b/../c/",
    "dotdot": "..",
    "traversal": "../../etc/passwd",
    "leading-dash": "-n--json",
    "dashes": "web-1-a",
    "upper": "Web_VM.01",
    "4096": LONG[:NAME_MAX],
    "over-4096": LONG,
    "invalid-utf8": "bad\udcff\udcfe\udcc3utf8",
    "utf8": "caf\u00e9 \u20ac",
    # 1400 three-byte characters: the 4096-byte cut leaves one stray byte.
    "utf8-cut-at-4096": "\u20ac" * 1400,
}
# Words on each line the plugin may print: a hostile name must never add one.
WORDS = {"CHART": {13}, "DIMENSION": {7}, "CLABEL": {4}, "CLABEL_COMMIT": {1},
         "BEGIN": {2, 3}, "SET": {4}, "END": {1}, "DISABLE": {1},
         "FUNCTION": {5}}   # FUNCTION GLOBAL "kvm-vms" 10 "help" (functions.c)


def reported_bytes(name):
    """The name as kvm_stats keeps it: its bytes, cut at 4096."""
    return os.fsencode(name)[:NAME_MAX]


def expected_type_id(name):
    """netdata/charts.c chart_id_part() into 49 bytes, after "kvm_"."""
    part = "".join(chr(b).lower() if chr(b).isascii() and (chr(b).isalnum() or b == ord("_"))
                   else "_" for b in reported_bytes(name)[:48])
    return "kvm_" + part


def expected_label(name):
    """netdata/charts.c chart_quote(): 200 characters at most, valid UTF-8
    kept, other bytes and controls '?', '"' as "'", backslash as '/'."""
    raw, out, i = reported_bytes(name), [], 0
    while i < len(raw) and len(out) < 200:
        for n in (4, 3, 2):
            try:
                ch = raw[i:i + n].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1 and ord(ch) >= 0x80:
                out.append(ch)
                i += n
                break
        else:
            b = raw[i]
            out.append("?" if b >= 0x80 or b < 0x20 or b == 0x7f else
                       "'" if b == ord('"') else "/" if b == ord("\\") else chr(b))
            i += 1
    return "".join(out)


def all_labels(p):
    """chart id -> its labels, in one pass over what p printed (labels()
    reads every line once per chart: too slow for every chart of a host)."""
    labels, chart = {}, None
    for w in p.words():
        if w[0] == "CHART":
            chart = w[1]
        elif w[0] == "CLABEL":
            labels.setdefault(chart, {})[w[1]] = w[2]
    return labels


def charts_of_pid(p, pid):
    """The charts labelled vm_pid=pid."""
    return {c for c, labels in all_labels(p).items() if labels.get("vm_pid") == str(pid)}


def assert_protocol_intact(p):
    for line in p.lines:
        if line:
            w = shlex.split(line)
            assert w[0] in WORDS and len(w) in WORDS[w[0]], line


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_vm_name_adds_no_protocol_line(testvm, plugin, name):
    k = 7 + len(name) % 50
    vm = testvm("--vcpus", 2, "--mmio", k, name=name)
    truth = vm.counts()["vms"][0]["vcpus"]
    p = plugin()
    p.read_until(lambda p: any(c.endswith(".vcpu1_exits") and c in p.last_values()
                               for c in charts_of_pid(p, vm.pid)))
    assert not any(line.startswith("CHART x") for line in p.lines)
    assert_protocol_intact(p)
    mine = charts_of_pid(p, vm.pid)
    type_ids = {c.split(".")[0] for c in mine}
    # "_<pid>" is added only when another VM on the host has a name alike.
    assert type_ids in ({expected_type_id(name)}, {f"{expected_type_id(name)}_{vm.pid}"})
    type_id = type_ids.pop()
    assert f"{type_id}.exits" in mine and f"{type_id}.vcpu0_exits" in mine
    labels = all_labels(p)
    for chart in mine:
        assert labels[chart]["vm_name"] == expected_label(name), chart
    values = p.last_values()
    assert values[f"{type_id}.exits"]["mmio_exits"] == sum(c["mmio"] for c in truth) == 2 * k
    assert values[f"{type_id}.exits"]["halt_exits"] == sum(c["hlt"] for c in truth) == 2
    for c in truth:
        assert values[f"{type_id}.vcpu{c['vcpu']}_exits"]["mmio_exits"] == c["mmio"]


def test_names_that_look_alike_get_their_own_charts(testvm, plugin):
    """Names that reduce to one chart id (by sanitizing, or by the cut at 48
    bytes) get the pid added: "kvm_a_b", "kvm_a_b_<pid>", ..."""
    groups = {"kvm_a_b": ["a b", "a/b", "a-b"],
              "kvm_" + "l" * 48: ["L" * 60 + "1", "L" * 60 + "2"]}
    vms, k = {}, 20
    for plain, names in groups.items():
        for name in names:
            k += 1
            vms[testvm("--mmio", k, name=name)] = (plain, k)
    p = plugin()
    p.read_until(lambda p: len({labels["vm_pid"] for c, labels in all_labels(p).items()
                                if c.endswith(".exits")} & {str(v.pid) for v in vms}) == 5)
    assert_protocol_intact(p)
    exits = {labels["vm_pid"]: c.split(".")[0] for c, labels in all_labels(p).items()
             if c.endswith(".exits")}
    values = p.last_values()
    for plain in groups:
        mine = {vm: exits[str(vm.pid)] for vm, (g, _) in vms.items() if g == plain}
        # One keeps the plain id, unless another VM on the host has it.
        held = [pid for pid, t in exits.items() if t == plain]
        assert len(held) == 1 and sorted(mine.values()).count(plain) <= 1, (mine, held)
        for vm, type_id in mine.items():
            assert type_id in (plain, f"{plain}_{vm.pid}")
            assert values[f"{type_id}.exits"]["mmio_exits"] == vms[vm][1] \
                == vm.counts()["vms"][0]["vcpus"][0]["mmio"]


def test_vm_exit_makes_charts_obsolete_and_releases_fds(testvm, plugin):
    keeper = testvm("--mmio", 1, name="keeper")
    vm = testvm("--vcpus", 2, "--mmio", 3, "--hold", "vm,vcpu", name="goner")
    p = plugin(config="include vm = /^(keeper|goner)$/\n")
    p.read_until(lambda p: "kvm_goner.vcpu1_exits" in p.last_values())
    defined = {c for c in p.charts() if c.startswith("kvm_goner.")}
    assert vm.stop() == 0
    p.read_until(lambda p: all("obsolete" in p.charts()[c] for c in defined))
    fds = [os.readlink(f"/proc/{p.proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{p.proc.pid}/fd")]
    assert len([f for f in fds if f.startswith("anon_inode:kvm-")]) == 1  # keeper's
    assert all("obsolete" not in w for c, w in p.charts().items() if c.startswith("kvm_keeper."))
    assert keeper.pid


def test_new_vm_and_hotplugged_vcpu_get_charts(testvm, plugin):
    p = plugin()
    p.read_for(1.5)
    vm = testvm("--vcpus", 1, "--mmio", 9, name="late")
    p.read_until(lambda p: "kvm_late.vcpu0_exits" in p.last_values())
    vm.proc.send_signal(signal.SIGUSR1)
    p.read_until(lambda p: p.last_values().get("kvm_late.vcpu1_exits", {}).get("halt_exits") == 1)
    assert p.last_values()["kvm_late.exits"]["mmio_exits"] == 18
    assert p.labels("kvm_late.vcpu1_exits")["vcpu"] == "1"


def test_sigterm_and_closed_stdout_end_it_cleanly(testvm, plugin):
    testvm("--mmio", 1, name="bye")
    p = plugin()
    p.read_until(lambda p: "kvm_bye.exits" in p.last_values())
    start = time.monotonic()
    assert p.stop() == 0
    assert time.monotonic() - start < 2

    q = plugin()
    q.read_until(lambda p: "kvm_bye.exits" in p.last_values())
    q.proc.stdout.close()
    assert q.proc.wait(timeout=5) == 0


@requires_root
def test_capabilities_of_the_running_plugin(testvm, plugin):
    testvm("--mmio", 1, name="caps")
    p = plugin()
    p.read_until(lambda p: "kvm_caps.exits" in p.last_values())
    with open(f"/proc/{p.proc.pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    assert int(status["CapPrm"], 16) == (1 << 19) | (1 << 2)
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapBnd"], 16) == (1 << 19) | (1 << 2)
    assert status["NoNewPrivs"].strip() == "1"


@requires_root
def test_without_privilege_it_disables_itself(plugin):
    # Netdata's config directory is readable by the plugin's user; pytest's
    # tmp_path is not (root's 0700 directories), so the config goes apart.
    with tempfile.TemporaryDirectory(prefix="kvmstats-") as d:
        os.chmod(d, 0o755)
        p = plugin(user=65534, conf_dir=Path(d))
        assert p.proc.wait(timeout=10) == 1
    out = p.proc.stdout.read()
    assert out.strip() == "DISABLE"
    err = p.proc.stderr.read()
    assert err == ("kvm_stats.plugin: CAP_SYS_PTRACE is missing, so the VMMs' stats fds "
                   "cannot be read. Grant it: setcap cap_sys_ptrace,cap_dac_read_search+ep "
                   f"{PLUGIN}\n")


def test_bad_config_names_the_setting_and_line(plugin):
    p = plugin(config="histograms = maybe\n")
    assert p.proc.wait(timeout=10) == 1
    err = p.proc.stderr.read()
    assert "kvm_stats.conf:3:" in err and "'histograms'" in err and "maybe" in err
    q = plugin(config="colour = blue\n")
    assert q.proc.wait(timeout=10) == 1
    assert "unknown setting 'colour'" in q.proc.stderr.read()


@requires_qemu
def test_qemu_72_through_qmp(qemu, plugin):
    q = qemu("qemu72")
    p = plugin(config=f"qmp socket = {q.qmp}\n")
    p.read_until(lambda p: "kvm_qemu72.vcpu1_exits" in p.last_values())
    first = p.last_values()["kvm_qemu72.exits"]["exits"]
    p.read_for(2.5)
    values = p.blocks("kvm_qemu72.exits")[-1]
    # QEMU's vCPUs keep exiting: the counters move, per vCPU and summed.
    assert values["kvm_qemu72.exits"]["exits"] > first > 0
    assert values["kvm_qemu72.exits"]["exits"] == sum(
        values[f"kvm_qemu72.vcpu{i}_exits"]["exits"] for i in (0, 1))
    # VM-wide stats (QMP target vm) give the mapped memory chart.
    assert set(values["kvm_qemu72.memory"]) == {"pages_4k", "pages_2m", "pages_1g"}
    assert p.labels("kvm_qemu72.exits")["vm_pid"] == str(q.pid)


@pytest.fixture
def installed_plugin():
    """install(caps) -> a copy of the plugin installed as `make install`
    installs it (root:netdata 0750, setcap caps) in a directory user netdata
    can reach, with a config directory it can read: (binary, conf_dir)."""
    dirs = []

    def install(caps):
        d = Path(tempfile.mkdtemp(prefix="kvmstats-plugin-"))
        dirs.append(d)
        d.chmod(0o755)
        binary = d / "kvm_stats.plugin"
        shutil.copyfile(PLUGIN, binary)
        os.chown(binary, 0, grp.getgrnam("netdata").gr_gid)
        binary.chmod(0o750)
        subprocess.run(["setcap", caps, str(binary)], check=True)
        conf_dir = d / "etc"
        conf_dir.mkdir(mode=0o755)
        return binary, conf_dir

    yield install
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def netdata_user_missing_reason():
    try:
        pwd.getpwnam("netdata")
    except KeyError:
        return "SKIP: no user netdata (Debian netdata-core)"
    if shutil.which("setcap") is None:
        return "SKIP: setcap is missing (Debian libcap2-bin)"
    return None


requires_netdata_user = pytest.mark.skipif(netdata_user_missing_reason() is not None,
                                           reason=netdata_user_missing_reason() or "")


@requires_root
@requires_qemu10
@requires_netdata_user
def test_netdata_user_with_file_caps_reads_debugfs(qemu, plugin, installed_plugin):
    """As user netdata with the file capabilities `make install` sets, the
    VM-wide stats of a QEMU 10 VM (vCPU stats fds only) come from debugfs,
    the 0700 root directory CAP_DAC_READ_SEARCH opens, as they do for root."""
    q = qemu("dbgcaps", version="10")
    binary, conf_dir = installed_plugin("cap_dac_read_search,cap_sys_ptrace+ep")
    p = plugin(user="netdata", conf_dir=conf_dir, binary=binary)
    p.read_until(lambda p: {"kvm_dbgcaps.memory", "kvm_dbgcaps.mmu_current",
                            "kvm_dbgcaps.vcpu1_exits"} <= set(p.last_values()), timeout=15)
    assert set(p.last_values()["kvm_dbgcaps.memory"]) == {"pages_4k", "pages_2m", "pages_1g"}
    assert p.labels("kvm_dbgcaps.exits")["vm_pid"] == str(q.pid)
    p.stop()
    assert "debugfs" not in p.stderr, p.stderr


@requires_root
@requires_netdata_user
def test_netdata_user_without_dac_read_search_says_why_once(testvm, plugin,
                                                           installed_plugin):
    """Without CAP_DAC_READ_SEARCH debugfs cannot be opened: the vCPU charts
    still come, and Netdata's log gets one line saying what to setcap, and
    one that other users' processes (root's VMMs) cannot be listed. The
    VMM (vCPU stats fds only, as QEMU 10) runs as netdata too: without
    CAP_DAC_READ_SEARCH the plugin could not list a root VMM's /proc/PID/fd."""
    testvm("--hold", "vcpu", "--vcpus", 2,
           "--user", pwd.getpwnam("netdata").pw_uid, name="dbgnocap")
    binary, conf_dir = installed_plugin("cap_sys_ptrace+ep")
    p = plugin(user="netdata", conf_dir=conf_dir, binary=binary)
    p.read_until(lambda p: "kvm_dbgnocap.vcpu1_exits" in p.last_values(), timeout=15)
    p.read_for(2.5)     # more rescans: still said once
    assert "kvm_dbgnocap.memory" not in p.charts()
    assert p.stop() == 0
    debugfs, others = p.stderr.splitlines()
    assert debugfs == (
        "kvm_stats.plugin: VM-wide stats of VMs whose VMM holds no VM stats fd "
        "(QEMU 8.1 and later hold only vCPU ones, QEMU 7.x none) come from "
        "/sys/kernel/debug/kvm, which is root's (0700) and CAP_DAC_READ_SEARCH is "
        f"missing. Grant it: setcap cap_sys_ptrace,cap_dac_read_search+ep {binary}"), p.stderr
    # Root's processes (this host's count) cannot be listed: their VMs are unseen.
    assert re.fullmatch(
        r"kvm_stats\.plugin: the fds of [1-9][0-9]* processes of other users could not "
        r"be listed: CAP_DAC_READ_SEARCH is missing, so their VMs are not seen\. Grant "
        r"it: setcap cap_sys_ptrace,cap_dac_read_search\+ep " + re.escape(str(binary)),
        others), p.stderr
