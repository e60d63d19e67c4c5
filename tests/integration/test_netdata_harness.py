# SPDX-License-Identifier: MIT
"""The Netdata harness (netdata.py) on a real Netdata 1.37, with a fake plugin.

The fake plugin is a /bin/sh script speaking the plugins.d protocol, so these
tests prove the harness and show how Netdata 1.37 exposes what a plugin sends
(contexts, labels, obsolete charts, streaming) before kvm_stats.plugin does.
"""
import os
import pwd
import stat

import pytest

from netdata_daemon import NETDATA_USER, netdata_factory, netdata_missing_reason, wait_until

pytestmark = pytest.mark.skipif(netdata_missing_reason() is not None,
                                reason=netdata_missing_reason() or "")

CAP_DAC_READ_SEARCH = 2
CAP_SYS_PTRACE = 19
STREAM_KEY = "0b5c7a52-6f3e-4a43-9d8e-1c2f3a4b5c6d"

# Sends fake.test (context fake.ctx, label vm_name, SET a = 1, 2, 3, ...) and
# fake.other (SET b = the `value` read from fake.conf in the user config dir)
# every second. Once $NETDATA_USER_CONFIG_DIR/obsolete exists it re-sends
# fake.test with the option `obsolete` and stops updating it.
FAKE_PLUGIN = r"""#!/bin/sh
value=0
[ -r "$NETDATA_USER_CONFIG_DIR/fake.conf" ] && . "$NETDATA_USER_CONFIG_DIR/fake.conf"
echo "fake.plugin: started with update_every=$1 value=$value" >&2
echo "CHART fake.test '' 'Fake' 'units' fam fake.ctx line 1000 $1"
echo "CLABEL 'vm_name' 'x' 1"
echo "CLABEL_COMMIT"
echo "DIMENSION a '' absolute 1 1"
echo "CHART fake.other '' 'Other' 'units' fam fake.ctx2 line 1001 $1"
echo "DIMENSION b '' absolute 1 1"
n=0
gone=
while :; do
    n=$((n + 1))
    if [ -z "$gone" ] && [ -e "$NETDATA_USER_CONFIG_DIR/obsolete" ]; then
        echo "CHART fake.test '' 'Fake' 'units' fam fake.ctx line 1000 $1 obsolete"
        gone=1
    fi
    if [ -z "$gone" ]; then
        printf 'BEGIN fake.test\nSET a = %d\nEND\n' "$n"
    fi
    printf 'BEGIN fake.other\nSET b = %d\nEND\n' "$value"
    sleep "$1"
done
"""


@pytest.fixture
def netdata(tmp_path):
    with netdata_factory(tmp_path) as start:
        yield start


@pytest.fixture
def fake_plugin(tmp_path):
    path = tmp_path / "fake.plugin"
    path.write_text(FAKE_PLUGIN)
    path.chmod(0o755)
    return path


def status_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines())


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def values(doc):
    """{timestamp: value} of the non-null points of a one-dimension data doc."""
    return {row[0]: row[1] for row in (doc or {}).get("data", []) if row[1] is not None}


def test_chart_context_data_and_clean_stop(netdata, fake_plugin):
    nd = netdata(plugins={"fake.plugin": fake_plugin})
    chart = nd.wait_for_chart("fake.test", timeout=20)
    assert chart["context"] == "fake.ctx"
    assert chart["units"] == "units" and chart["chart_type"] == "line"
    assert chart["plugin"] == "fake.plugin"
    # Every internal collector is off: the fake plugin's charts are all there is.
    assert set(nd.charts()) == {"fake.test", "fake.other"}

    # SET a = 1, 2, 3, ...: consecutive seconds hold consecutive values.
    got = wait_until(lambda: len(values(nd.data("fake.test", after=-10, points=10))) >= 3 and
                     values(nd.data("fake.test", after=-10, points=10)),
                     timeout=15, what="three values of fake.test")
    stamps = sorted(got)
    for t0, t1 in zip(stamps, stamps[1:]):
        assert got[t1] - got[t0] == t1 - t0, got

    pids = nd.plugin_pids("fake.plugin")
    assert len(pids) == 1
    assert nd.stop() == 0
    assert nd.stray_processes == []
    assert not running(pids[0])
    assert (nd.tmp_path / "netdata-kvmtest-child" / "error.log").exists()


def test_labels_via_charts_and_context(netdata, fake_plugin):
    nd = netdata(plugins={"fake.plugin": fake_plugin})
    chart = nd.wait_for_chart("fake.test", timeout=20)
    # 1.37: /api/v1/charts and /api/v1/chart carry the labels as "chart_labels",
    assert chart["chart_labels"]["vm_name"] == "x"
    assert chart["chart_labels"]["_collect_plugin"] == "fake.plugin"
    assert nd.chart("fake.test")["chart_labels"]["vm_name"] == "x"
    # and /api/v1/context?options=instances,labels per instance as "labels".
    ctx = wait_until(lambda: nd.context("fake.ctx"), timeout=10, what="context fake.ctx")
    assert ctx["charts"]["fake.test"]["labels"]["vm_name"] == "x"
    assert "vm_name" not in nd.context("fake.ctx2")["charts"]["fake.other"]["labels"]
    assert nd.context("no.such.ctx") is None


def test_obsolete_chart(netdata, fake_plugin):
    nd = netdata(plugins={"fake.plugin": fake_plugin})
    nd.wait_for_chart("fake.test", timeout=20)
    # The context API catches up asynchronously (the RRDCONTEXT thread).
    wait_until(lambda: (nd.context("fake.ctx") or {}).get("collected") is True,
               timeout=10, what="fake.ctx collected")
    (nd.config_dir / "obsolete").touch()     # the plugin re-sends CHART ... obsolete

    # 1.37: an obsolete chart leaves /api/v1/charts at once,
    nd.wait_for_chart(lambda charts: "fake.test" not in charts, timeout=10)
    assert "fake.other" in nd.charts()
    # /api/v1/context keeps it with "collected": false (flags: ARCHIVED),
    ctx = wait_until(lambda: (c := nd.context("fake.ctx", options="instances,labels,flags"))
                     and c["collected"] is False and c,
                     timeout=10, what="fake.ctx no longer collected")
    assert ctx["charts"]["fake.test"]["collected"] is False
    assert "ARCHIVED" in ctx["charts"]["fake.test"]["flags"].split()
    assert nd.context("fake.ctx2")["collected"] is True
    # and /api/v1/chart still answers, with no field saying obsolete.
    assert nd.chart("fake.test")["id"] == "fake.test"


def test_plugin_user_environment_and_capabilities(netdata, fake_plugin):
    # capyes/capno are copies of /usr/bin/sleep: file capabilities need an
    # ELF binary (the kernel ignores them on scripts). With update every =
    # 30, Netdata runs `capyes.plugin 30`: a process that lives 30 s.
    nd = netdata(plugins={"fake.plugin": fake_plugin,
                          "capyes.plugin": "/usr/bin/sleep",
                          "capno.plugin": "/usr/bin/sleep"},
                 caps={"fake.plugin", "capyes.plugin"},
                 plugin_configs={"fake.conf": "value=42\n"},
                 netdata_conf={"plugin:capyes": {"update every": 30},
                               "plugin:capno": {"update every": 30}})
    nd.wait_for_chart("fake.other", timeout=20)
    assert wait_until(lambda: 42 in values(nd.data("fake.other", after=-5, points=5)).values(),
                      timeout=10, what="fake.other = 42 from fake.conf")

    netdata_uid = str(pwd.getpwnam(NETDATA_USER).pw_uid)
    for name in ("fake.plugin", "capyes.plugin", "capno.plugin"):
        installed = os.stat(nd.plugins_dir / name)
        assert stat.S_IMODE(installed.st_mode) == 0o750 and installed.st_uid == 0
        assert os.path.islink(nd.plugins_dir / name) is False
        pids = wait_until(lambda: nd.plugin_pids(name), timeout=10, what=f"{name} running")
        assert len(pids) == 1, pids
        st = status_of(pids[0])
        assert st["Uid"].split() == [netdata_uid] * 4, (name, st["Uid"])
        with open(f"/proc/{pids[0]}/environ", "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        assert env[b"NETDATA_USER_CONFIG_DIR"] == str(nd.config_dir).encode()
        assert env[b"NETDATA_STOCK_CONFIG_DIR"] == b"/usr/lib/netdata/conf.d"
        assert env[b"NETDATA_VERSION"].startswith(b"v1.")
        eff = int(st["CapEff"], 16)
        if name == "capyes.plugin":
            assert eff == (1 << CAP_DAC_READ_SEARCH) | (1 << CAP_SYS_PTRACE), st["CapEff"]
        else:
            assert eff == 0, (name, st["CapEff"])
    assert os.getxattr(nd.plugins_dir / "capyes.plugin", "security.capability")
    assert os.getxattr(nd.plugins_dir / "fake.plugin", "security.capability")
    with pytest.raises(OSError):
        os.getxattr(nd.plugins_dir / "capno.plugin", "security.capability")


def test_streaming_child_to_parent(netdata, fake_plugin):
    parent = netdata(hostname="kvmtest-parent", accept_stream_key=STREAM_KEY)
    child = netdata(hostname="kvmtest-child", stream_to=(parent.port, STREAM_KEY),
                    plugins={"fake.plugin": fake_plugin})
    assert parent.charts() == {}          # the parent collects nothing itself
    chart = parent.wait_for_chart("fake.test", host="kvmtest-child", timeout=20)
    assert chart["context"] == "fake.ctx"
    assert chart["chart_labels"]["vm_name"] == "x"
    assert "kvmtest-child" in parent.api("/api/v1/info")["mirrored_hosts"]
    ctx = wait_until(lambda: parent.context("fake.ctx", host="kvmtest-child"), timeout=10,
                     what="context fake.ctx on the parent")
    assert ctx["charts"]["fake.test"]["labels"]["vm_name"] == "x"

    # The parent stores the values the child collected, at the same times.
    def same_values():
        p = values(parent.data("fake.test", host="kvmtest-child", after=-10, points=10))
        c = values(child.data("fake.test", after=-10, points=10))
        common = set(p) & set(c)
        return len(common) >= 2 and all(p[t] == c[t] for t in common) and common
    wait_until(same_values, timeout=15, what="parent and child agree on fake.test")
