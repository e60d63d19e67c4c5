# SPDX-License-Identifier: MIT
"""The daemons harness (daemons.py) on real Debian daemons, without kvm_stats.

A collectd 5.12 runs Debian's `load` plugin and an `exec` script whose values
are known in advance (a derive counter 100, 200, 300, ... one step a second,
and a gauge 7), and writes them to csv, to a carbon-cache through
write_graphite and to InfluxDB's collectd listener through the network
plugin. These tests prove the harness and show how each output names a
value host/plugin-plugin_instance/type-type_instance before kvm_stats.so
exists.
"""
import os
import time

import pytest

from daemons import (Collectd, carbon_missing_reason, collectd_missing_reason,
                     daemon_factory, influxdb_missing_reason, valgrind_missing_reason,
                     _starttime)

pytestmark = pytest.mark.skipif(collectd_missing_reason() is not None,
                                reason=collectd_missing_reason() or "")

# Runs as `nobody` (the exec plugin refuses root). The identifiers have a
# plugin instance and a type instance, like kvm_stats' will; "vm.dot" shows
# how write_graphite escapes a dot.
FAKE_EXEC = r"""#!/bin/sh
n=0
while :; do
    n=$((n + 1))
    echo "PUTVAL \"$COLLECTD_HOSTNAME/fake-vm1/derive-exits\" interval=$COLLECTD_INTERVAL N:$((n * 100))"
    echo "PUTVAL \"$COLLECTD_HOSTNAME/fake-vm1/gauge-pages\" interval=$COLLECTD_INTERVAL N:7"
    echo "PUTVAL \"$COLLECTD_HOSTNAME/fake-vm.dot/gauge-pages\" interval=$COLLECTD_INTERVAL N:9"
    sleep 1
done
"""


def exec_blocks(script):
    return ("LoadPlugin load\n"
            "LoadPlugin exec\n"
            f'<Plugin exec>\n  Exec "nobody" "{script}"\n</Plugin>\n')


def assert_counts_by_100(values):
    """Raw derive values of the fake script: consecutive multiples of 100."""
    assert values, "no values"
    assert all(v % 100 == 0 and v > 0 for v in values), values
    assert all(b - a == 100 for a, b in zip(values, values[1:])), values


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    for reason in (carbon_missing_reason(), influxdb_missing_reason()):
        if reason:
            pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("pipeline")
    with daemon_factory(tmp) as d:
        carbon = d.carbon()
        influx = d.influxdb()
        cd = d.collectd(start=False, csv=True, unixsock=True, network=influx)
        cd.write_graphite(carbon)
        cd.write_graphite(carbon, prefix="sep.", separate_instances=True)
        script = cd.write_file("fake.sh", FAKE_EXEC, mode=0o755)
        cd.plugin_blocks = exec_blocks(script)
        cd.start()
        yield {"collectd": cd, "carbon": carbon, "influx": influx}


def test_start_times(pipeline):
    times = {name: round(d.start_seconds, 2) for name, d in pipeline.items()}
    assert all(t < 10 for t in times.values()), times


def test_csv_raw_values(pipeline):
    cd = pipeline["collectd"]
    rows = cd.wait_for_csv("fake-vm1", "derive-exits", rows=3, timeout=20)
    # StoreRates false: the raw derive values, not rates.
    assert_counts_by_100([r["value"] for r in rows])
    assert all(isinstance(r["value"], int) for r in rows)
    assert all(abs(r["epoch"] - time.time()) < 60 for r in rows)
    assert {r["value"] for r in cd.wait_for_csv("fake-vm1", "gauge-pages")} == {7.0}
    load = cd.wait_for_csv("load", "load")
    assert set(load[0]) == {"epoch", "shortterm", "midterm", "longterm"}
    files = cd.csv_files()
    day = time.strftime("%Y-%m-%d")
    for name in ("fake-vm1/derive-exits", "fake-vm1/gauge-pages", "fake-vm.dot/gauge-pages",
                 "load/load"):
        assert any(f.startswith(name + "-") for f in files), files
    assert any(f.endswith(day) for f in files), files
    status, _, lines = cd.command("LISTVAL")
    assert status > 0
    assert any(line.endswith(" kvmtest/fake-vm1/derive-exits") for line in lines), lines


def test_write_graphite_to_carbon(pipeline):
    carbon = pipeline["carbon"]
    # Default node: <host>.<plugin>-<pinst>.<type>-<tinst>, dots escaped to
    # "_", one more level (the ds name) for types with several data sources.
    points = carbon.wait_for_points("kvmtest.fake-vm1.derive-exits", points=3, timeout=20)
    assert_counts_by_100([int(v) for _, v in points])
    stamps = [t for t, _ in points]
    assert stamps == sorted(set(stamps))
    assert {v for _, v in carbon.wait_for_points("kvmtest.fake-vm_dot.gauge-pages")} == {9.0}
    assert carbon.wait_for_points("kvmtest.load.load.shortterm")
    # SeparateInstances true and a Prefix: <prefix><host>.<plugin>.<pinst>.<type>.<tinst>
    points = carbon.wait_for_points("sep.kvmtest.fake.vm1.derive.exits", points=2)
    assert_counts_by_100([int(v) for _, v in points])
    path = carbon.wait_for_metric("sep.kvmtest.fake.vm1.*.exits")
    assert path.endswith("/sep/kvmtest/fake/vm1/derive/exits.wsp")
    assert "kvmtest.fake-vm1.gauge-pages" in carbon.metrics()


def test_network_to_influxdb(pipeline):
    influx = pipeline["influx"]
    # Measurement <plugin>_<ds name> (ds "value" for derive and gauge);
    # tags host, instance (plugin instance), type, type_instance.
    rows = influx.wait_for_rows(
        "SELECT * FROM fake_value WHERE type_instance = 'exits'", rows=3, timeout=20)
    assert {(r["host"], r["instance"], r["type"]) for r in rows} == {("kvmtest", "vm1", "derive")}
    assert_counts_by_100([int(r["value"]) for r in rows])
    rows = influx.wait_for_rows("SELECT * FROM load_shortterm")
    assert rows[0]["host"] == "kvmtest" and rows[0]["type"] == "load"
    assert "instance" not in rows[0] and "type_instance" not in rows[0]
    doc = influx.wait_for("SHOW TAG KEYS FROM fake_value",
                          lambda d: d["results"][0].get("series"))
    keys = {v[0] for v in doc["results"][0]["series"][0]["values"]}
    assert keys == {"host", "instance", "type", "type_instance"}
    rows = influx.rows("SELECT value FROM fake_value WHERE instance = 'vm.dot'")
    assert rows and {r["value"] for r in rows} == {9}


def test_config_check(tmp_path):
    cd = Collectd(tmp_path, csv=True)
    try:
        good = cd.base_config() + f'LoadPlugin csv\n<Plugin csv>\n  DataDir "{cd.root}/c"\n</Plugin>\n'
        rc, out = cd.test_config(good)
        assert rc == 0, out
        bad = good.replace("</Plugin>", "  BogusOption 1\n</Plugin>")
        rc, out = cd.test_config(bad)
        assert rc != 0
        assert "BogusOption" in out and "Error: Parsing the config file failed!" in out, out
        rc, out = cd.test_config(cd.base_config() + "LoadPlugin nosuch\n")
        assert rc != 0 and 'Could not find plugin "nosuch"' in out, out
        # collectd 5.12's -t exits 0 before it reads the config at all.
        rc, out = cd.test_config(bad, flag="-t")
        assert rc == 0 and out == ""
    finally:
        cd.stop()


@pytest.mark.skipif(valgrind_missing_reason() is not None,
                    reason=valgrind_missing_reason() or "")
def test_valgrind_run_and_sigterm(tmp_path):
    cd = Collectd(tmp_path, csv=True, valgrind=True)
    try:
        script = cd.write_file("fake.sh", FAKE_EXEC, mode=0o755)
        cd.plugin_blocks = exec_blocks(script)
        cd.start()
        time.sleep(3)
        assert cd.csv_rows("fake-vm1", "derive-exits")
    finally:
        vglog = cd.stop()
    assert "Memcheck" in vglog and "ERROR SUMMARY: 0 errors" in vglog, vglog
    assert "definitely lost: 0 bytes" in vglog or "no leaks are possible" in vglog, vglog
    assert cd.exit_status == 0, vglog
    log = cd.log()
    assert "Exiting normally." in log
    # The exec plugin's shutdown callback ran: collectd shut down cleanly.
    assert "exec plugin: Sent SIGTERM to" in log, log
    assert not cd.root.exists()
    assert (cd.saved_dir / "valgrind.log").exists()


def test_factory_stops_everything(tmp_path):
    if influxdb_missing_reason():
        pytest.skip(influxdb_missing_reason())
    started = []
    with pytest.raises(RuntimeError, match="test failed"):
        with daemon_factory(tmp_path) as d:
            influx = d.influxdb()
            cd = d.collectd(network=influx)
            started = [(x.pid, _starttime(x.pid), x.root) for x in (influx, cd)]
            raise RuntimeError("test failed")
    for pid, start, root in started:
        assert start is not None
        assert _starttime(pid) != start, f"pid {pid} still running"
        assert not os.path.exists(root)
    assert "Exiting normally." in cd.log()
