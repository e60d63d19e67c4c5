# SPDX-License-Identifier: MIT
"""The Netdata Function kvm-vms (Netdata's FUNCTION protocol, 1.37+).

Netdata 1.37 lists the function a plugin declares (/api/v1/info
"functions") but lets only Netdata Cloud call it: its /api/v1/function
answers a local client 403. So the calls are made here the way Netdata
makes them: the plugin runs as Netdata runs it (argv[1], NETDATA_VERSION,
requests on its stdin, the protocol on its stdout), and gets
`FUNCTION <transaction> <timeout> "kvm-vms <params>"` lines; answers are
FUNCTION_RESULT_BEGIN <transaction> <status> application/json <expires> /
body / FUNCTION_RESULT_END. The table must equal kvmstat --memory for the
same VMs; malformed and unknown requests get error results, and the plugin
keeps charting and answering.
"""
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import BUILD, requires_kvm, requires_root, wait_for
from netdata_daemon import netdata_factory, netdata_missing_reason
from plugin_pipe import PluginPipe as BasePipe

PLUGIN = str(BUILD / "kvm_stats.plugin")
KVMSTAT = str(BUILD / "kvmstat")

pytestmark = [requires_kvm, requires_root]


class PluginPipe(BasePipe):
    """kvm_stats.plugin with pipes on stdin and stdout, read line by line."""

    def __init__(self, version="v1.37.1"):
        env = dict(os.environ, NETDATA_VERSION=version, NETDATA_UPDATE_EVERY="1")
        env.pop("NETDATA_USER_CONFIG_DIR", None)
        super().__init__([PLUGIN, "1"], env, poll=0.5)

    def call(self, transaction, request, timeout=20):
        """Sends a FUNCTION line; returns (status, content type, body text)."""
        self.send(f"FUNCTION {transaction} 10 \"{request}\"\n")
        return self.result(transaction, timeout)

    def result(self, transaction, timeout=20):
        """(status, content type, body text) of the next result of transaction."""
        return self.result_text(transaction, timeout)


@pytest.fixture
def plugin_pipe():
    pipes = []

    def start(**kw):
        p = PluginPipe(**kw)
        pipes.append(p)
        return p
    yield start
    for p in pipes:
        p.stop()


def memory_json(pids):
    argv = [KVMSTAT, "--memory", "--json"]
    for pid in pids:
        argv += ["-p", str(pid)]
    r = subprocess.run(argv + ["1", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["vms"]


def three_vms(testvm):
    return [testvm("--vcpus", 2, "--steady", 100, "-m", "2G", name="fn-big", state="running"),
            testvm("--hold", "vm,vcpu", "-m", "512M", name="fn-small"),
            testvm("--vcpus", 3, name="fn-bare")]


def rows_by_pid(table, pids):
    cols = table["columns"]
    idx = {k: c["index"] for k, c in cols.items()}
    return {r[idx["pid"]]: {k: r[i] for k, i in idx.items()} for r in table["data"]
            if r[idx["pid"]] in pids}


def test_function_table_through_the_protocol(testvm, plugin_pipe):
    vms = three_vms(testvm)
    pids = [vm.pid for vm in vms]
    p = plugin_pipe()
    declared = p.wait_line(lambda l: l.startswith("FUNCTION "))
    assert declared.startswith('FUNCTION GLOBAL "kvm-vms" 10 "')
    p.wait_line(lambda l: l.startswith("CHART kvm_fn_"), 30)
    time.sleep(2.5)            # two samples: exits/s

    status, ctype, body = p.call("6c1e6f36-0000-4000-8000-000000000001", "kvm-vms")
    assert (status, ctype) == (200, "application/json")
    table = json.loads(body)
    assert table["type"] == "table" and table["status"] == 200
    assert table["default_sort_column"] == "mapped"
    assert set(table["columns"]) == {"pid", "name", "mapped", "ram", "mapped_pct", "pages_4k",
                                     "pages_2m", "pages_1g", "vcpus", "exits"}
    assert table["columns"]["pid"]["unique_key"] is True
    assert all(c["sortable"] for c in table["columns"].values())
    mapped = [r[table["columns"]["mapped"]["index"]] for r in table["data"]]
    assert mapped == sorted(mapped, key=lambda m: -1 if m is None else -m)
    rows = rows_by_pid(table, pids)
    assert sorted(rows) == sorted(pids)
    print("kvm-vms:", json.dumps([rows[pid] for pid in pids]))

    # The same VMs in kvmstat --memory.
    mem = {r["pid"]: r for r in memory_json(pids)}
    print("kvmstat --memory:", json.dumps([mem[pid] for pid in pids]))
    for pid in pids:
        r, m = rows[pid], mem[pid]
        assert r["name"] == m["name"]
        assert [r["pages_4k"], r["pages_2m"], r["pages_1g"]] == \
            [m["pages_4k"], m["pages_2m"], m["pages_1g"]]
        assert r["mapped"] == m["mapped_bytes"] / 1048576
        assert r["ram"] == (None if m["ram_bytes"] is None else m["ram_bytes"] / 1048576)
        assert r["vcpus"] == m["vcpus"]
    assert rows[vms[0].pid]["ram"] == 2048 and rows[vms[1].pid]["ram"] == 512
    assert rows[vms[2].pid]["ram"] is None
    assert 150 <= rows[vms[0].pid]["exits"] <= 250

    # Sorted by another column, as Netdata's sort parameter asks.
    status, _, body = p.call("t-sort", "kvm-vms sort:pid")
    t = json.loads(body)
    col = t["columns"]["pid"]["index"]
    assert status == 200 and t["default_sort_column"] == "pid"
    assert [r[col] for r in t["data"]] == sorted(r[col] for r in t["data"])
    status, _, body = p.call("t-sort2", "kvm-vms sort=vcpus")
    col = json.loads(body)["columns"]["vcpus"]["index"]
    assert [r[col] for r in json.loads(body)["data"]] == \
        sorted((r[col] for r in json.loads(body)["data"]), reverse=True)


def test_function_errors_never_kill_the_plugin(testvm, plugin_pipe):
    vm = testvm("--steady", 50, name="fn-err", state="running")
    p = plugin_pipe()
    p.wait_line(lambda l: l.startswith("CHART kvm_fn"), 30)
    assert p.call("e1", "no-such-function")[0] == 404
    assert p.call("e2", "kvm-vms sort:nothing")[0] == 400
    assert p.call("e3", "kvm-vms --bogus")[0] == 400
    p.send("FUNCTION e4 \"kvm-vms\"\n")                    # no timeout
    assert p.result("e4")[0] == 400
    p.send("FUNCTION\nFUNCTION bad/transaction 10 \"kvm-vms\"\n")   # nobody to answer
    p.send("x" * 100000 + "\n")                             # past Netdata's line limit
    p.send("\x00\xff garbage\n\n")
    status, _, body = p.call("e5", "kvm-vms info")
    assert status == 200 and "sort:" in json.loads(body)["parameters"]
    # Still charting, still answering, still alive.
    p.wait_line(lambda l: l.startswith("BEGIN kvm_fn"), 10)
    status, _, body = p.call("e6", "kvm-vms")
    assert status == 200 and vm.pid in rows_by_pid(json.loads(body), [vm.pid])
    assert p.proc.poll() is None
    assert p.stop() in (0, -15)
    err = p.proc.stderr.read().decode()
    assert "without a transaction: ignored" in err and "longer than 16 KiB" in err


def test_older_netdata_gets_no_function(testvm, plugin_pipe):
    """Netdata before 1.37 drops a plugin that prints FUNCTION."""
    testvm("--steady", 50, name="fn-old", state="running")
    p = plugin_pipe(version="v1.36.1")
    p.wait_line(lambda l: l.startswith("BEGIN kvm_fn"), 30)
    p._fill(1.5)
    assert not any(l.startswith("FUNCTION") for l in p.lines)


@pytest.mark.skipif(netdata_missing_reason() is not None,
                    reason=netdata_missing_reason() or "")
def test_netdata_lists_the_function(testvm, tmp_path):
    testvm("-m", "1G", name="fn-nd")
    with netdata_factory(tmp_path) as start:
        nd = start(plugins={"kvm_stats.plugin": PLUGIN},
                   plugin_configs={"kvm_stats.conf": "[kvm_stats]\nrescan every = 1\n"})
        nd.wait_for_chart("kvm_fn_nd.exits", timeout=40)
        fns = wait_for(lambda: nd.api("/api/v1/info").get("functions"), timeout=20)
        assert fns["kvm-vms"]["timeout"] == 10 and "GLOBAL" in fns["kvm-vms"]["options"]
        assert "mapped" in fns["kvm-vms"]["help"]
        # 1.37 runs functions for Netdata Cloud only (ACLK): a local client gets 403.
        url = nd.url + "/api/v1/function?" + urllib.parse.urlencode(
            {"function": "kvm-vms", "timeout": 10})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=20)
        assert e.value.code == 403
        assert nd.plugin_pids("kvm_stats.plugin")
