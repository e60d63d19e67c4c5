# SPDX-License-Identifier: MIT
"""Prometheus end to end: Debian's Prometheus 2.42, started here on
loopback, scrapes Netdata's /api/v1/allmetrics?format=prometheus (source
as-collected: the counters as the plugin sent them) and collectd's
write_prometheus, both fed by the real plugins on real VMs. PromQL must
give the exact counts a halted test VM made, and the rate of a steady one.

Names, as these versions make them:
- Netdata: netdata_<context with . as _>_total{chart, family, dimension}
  for an incremental dimension, e.g.
  netdata_kvm_vm_exits_total{chart="kvm_web1.exits",dimension="mmio_exits"};
- collectd: collectd_<plugin>_<type>_total{<plugin>=<plugin instance>,
  type=<type instance>, instance=<host>} for a derive, e.g.
  collectd_kvm_stats_derive_total{kvm_stats="web1",type="mmio_exits"}.
"""
import pytest

from conftest import BUILD, requires_kvm, requires_root
from daemons import collectd_missing_reason, daemon_factory, free_port
from netdata_daemon import netdata_factory, netdata_missing_reason
from prometheus_daemon import Prometheus, prometheus_missing_reason

PLUGIN = str(BUILD / "kvm_stats.plugin")
COLLECTD_PLUGIN = BUILD / "kvm_stats.so"

pytestmark = [
    requires_kvm,
    requires_root,
    pytest.mark.skipif(netdata_missing_reason() is not None,
                       reason=netdata_missing_reason() or ""),
    pytest.mark.skipif(collectd_missing_reason() is not None,
                       reason=collectd_missing_reason() or ""),
    pytest.mark.skipif(prometheus_missing_reason() is not None,
                       reason=prometheus_missing_reason() or ""),
]


@pytest.fixture
def netdata(tmp_path):
    with netdata_factory(tmp_path) as start:
        yield start


@pytest.fixture
def daemons(tmp_path):
    with daemon_factory(tmp_path) as d:
        yield d


def one(result):
    assert len(result) == 1, result
    return result[0][1]


def test_promql_exact_counts_and_rate(testvm, netdata, daemons, tmp_path):
    k, vcpus, rate = 4321, 2, 200
    counted = testvm("--vcpus", vcpus, "--mmio", k, "--hold", "vm,vcpu", name="promcount")
    steady = testvm("--steady", rate, name="promsteady", state="running")
    truth = counted.counts()["vms"][0]["vcpus"]
    mmio, hlt = sum(c["mmio"] for c in truth), sum(c["hlt"] for c in truth)
    assert (mmio, hlt) == (k * vcpus, vcpus)

    nd = netdata(plugins={"kvm_stats.plugin": PLUGIN},
                 plugin_configs={"kvm_stats.conf": "[kvm_stats]\nrescan every = 1\n"})
    wp_port = free_port()
    cd = daemons.collectd(plugin_dir_extra=COLLECTD_PLUGIN, debian_plugins=(), start=False,
                          plugin_blocks="LoadPlugin kvm_stats\n<Plugin kvm_stats>\n"
                                        "  RefreshInterval 1\n</Plugin>\n"
                                        "LoadPlugin write_prometheus\n<Plugin write_prometheus>\n"
                                        f'  Host "127.0.0.1"\n  Port "{wp_port}"\n</Plugin>\n')
    cd.add_plugin("/usr/lib/collectd/write_prometheus.so")
    cd.start()
    prom = daemons._keep(Prometheus(tmp_path, {
        "netdata": (f"127.0.0.1:{nd.port}", "/api/v1/allmetrics",
                    {"format": ["prometheus"], "source": ["as-collected"]}),
        "collectd": (f"127.0.0.1:{wp_port}", "/metrics", None),
    }), True)

    nd_q = 'netdata_kvm_vm_exits_total{chart="kvm_%s.exits",dimension="%s"}'
    cd_q = 'collectd_kvm_stats_derive_total{kvm_stats="%s",type="%s"}'
    got = {}
    for name, q in (("netdata", nd_q), ("collectd", cd_q)):
        got[name] = {
            "mmio_exits": one(prom.wait_query(q % ("promcount", "mmio_exits"), timeout=90)),
            "halt_exits": one(prom.wait_query(q % ("promcount", "halt_exits"), timeout=30)),
        }
        assert got[name] == {"mmio_exits": mmio, "halt_exits": hlt}, (name, got)
    assert prom.targets_up() == {"netdata": "up", "collectd": "up"}

    # The steady VM: rate() over 20 s of 1 s scrapes is its pace.
    for name, q in (("netdata", nd_q), ("collectd", cd_q)):
        sel = q % ("promsteady", "mmio_exits")
        prom.wait_query(f"count_over_time({sel}[30s])", lambda r: r[0][1] >= 25, timeout=90)
        r = one(prom.query(f"rate({sel}[20s])"))
        got[name]["rate"] = r
        assert abs(r - rate) <= rate * 0.1, (name, r)
    print("PromQL:", got, "testvm counts:", {"mmio": mmio, "hlt": hlt, "steady rate": rate})
