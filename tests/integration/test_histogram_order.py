# SPDX-License-Identifier: MIT
"""Histogram buckets in bucket order and with the values QEMU sent: a real
Netdata 1.37, kvmstat --json and collectd, on a QEMU played by fakevmm.py.

A histogram chart has one dimension per bucket, and a heatmap (Netdata
2.2+) reads its rows in the order of the dimensions, which is the order
Netdata learnt them: with "zero dimensions = no" a bucket is defined once
it is not zero, so a bucket first seen after larger ones would land after
them. The captured QEMU answer has vCPU 1's halt_wait_hist at 2 in bucket
29 (2^28..2^29 ns) from the start; fakevmm.py --hist then grows bucket k by
(rate x seconds) >> k, so buckets 0, 1, 2, ... turn non-zero one after the
other, seconds apart, all after bucket 29 was charted.

Ground truth is what the fake QEMU sent (fakevmm --log), read by the test
in QEMU's own order (last bucket first: QEMU builds the list with
QAPI_LIST_PREPEND), and the bucket bounds from the kernel's rule for a log2
histogram (bucket 0 holds 0, bucket k [2^(k-1), 2^k), the last one is open),
both written here without the project's code.
"""
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import BUILD, requires_root, wait_for
from fakeqemu import FakeQemus
from daemons import Collectd, collectd_missing_reason
from netdata_daemon import NETDATA_BIN, netdata_factory, netdata_missing_reason

PLUGIN = str(BUILD / "kvm_stats.plugin")
KVMSTAT = str(BUILD / "kvmstat")
VCPU0 = "/machine/unattached/device[0]"      # cpu-index 0 (query-cpus-fast)
VCPU1 = "/machine/unattached/device[2]"      # cpu-index 1
HIST = "halt_wait_hist"
NBUCKETS = 32
RATE = 16           # bucket k turns non-zero after 2^k / 16 s: 8 at 16 s
UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def buckets_sent(fake, qom_path=None):
    """{bucket: count} of HIST as last sent, of one vCPU or summed over all."""
    sent = fake.sent()["vcpu"]
    paths = [qom_path] if qom_path else list(sent)
    total = [0] * NBUCKETS
    for p in paths:
        values = sent[p][HIST]
        assert len(values) == NBUCKETS
        for i, v in enumerate(reversed(values)):     # QEMU: last bucket first
            total[i] += v
    return dict(enumerate(total))


def bounds_ns(k):
    """Bucket k of a 32-bucket log2 histogram: [lo, hi) in ns, hi None if open."""
    lo = 0 if k == 0 else 2 ** (k - 1)
    return lo, (None if k == NBUCKETS - 1 else 2 ** k)


def check_name(k, name):
    """A dimension name says bucket k's bound: "<1.02us", ">=1.07s"."""
    m = re.fullmatch(r"(<|>=)([0-9.e+]+)(ns|us|ms|s)", name)
    assert m, f"bucket {k}: {name!r}"
    lo, hi = bounds_ns(k)
    want_op, want_ns = ("<", hi) if hi is not None else (">=", lo)
    got_ns = float(m.group(2)) * UNITS[m.group(3)] * 1e9
    assert m.group(1) == want_op, (k, name)
    assert abs(got_ns - want_ns) <= 0.005 * want_ns, (k, name, want_ns)   # 3 digits


def bucket_of(dim_id):
    m = re.fullmatch(r"bucket([0-9]+)", dim_id)
    assert m, dim_id
    return int(m.group(1))


def prom_text(nd, server):
    """Netdata's Prometheus export of the values as the plugin sent them
    (the bucket counters, not rates). Netdata gives a server (by default
    the client's address) only what was collected since its last fetch:
    each fetch names a server of its own."""
    with urllib.request.urlopen(nd.url + "/api/v1/allmetrics?format=prometheus"
                                f"&source=as-collected&server={server}", timeout=10) as resp:
        return resp.read().decode()


def as_collected(text, chart):
    """{dimension label: value} of chart in prom_text()."""
    out = {}
    for line in text.splitlines():
        if f'chart="{chart}"' not in line:
            continue
        m = re.search(r'dimension="([^"]*)"', line)       # 2.x: labels after it
        assert m, line
        out[m.group(1)] = int(float(line.rsplit("}", 1)[1].split()[0]))
    return out


@pytest.fixture
def fakes():
    with FakeQemus(prefix="kvmstats-histqmp-") as qemus:
        yield qemus


# A Netdata 2.x built from its source (not in Debian's archive; see the
# README's Netdata versions): where there is one, the same test with
# heatmap charts (NETDATA_VERSION >= 2.2).
NETDATA2_BIN = os.environ.get("KVMSTATS_NETDATA2", "/opt/netdata2/usr/sbin/netdata")


@requires_root
@pytest.mark.parametrize("binary", [
    pytest.param(NETDATA_BIN, id="netdata-1.37", marks=pytest.mark.skipif(
        netdata_missing_reason() is not None, reason=netdata_missing_reason() or "")),
    pytest.param(NETDATA2_BIN, id="netdata-2.x", marks=pytest.mark.skipif(
        not os.path.exists(NETDATA2_BIN),
        reason=f"SKIP: no Netdata 2.x at {NETDATA2_BIN} (KVMSTATS_NETDATA2 names one)")),
])
def test_netdata_buckets_in_order_with_sent_values(fakes, tmp_path, binary):
    fake = fakes.start("histvm", "--hist", "--rate", RATE, "--burst-factor", 0)
    conf = ("[kvm_stats]\nrescan every = 1\ngroups = halt\nhistograms = yes\n"
            "per vcpu charts = yes\nper vcpu groups = halt\nper vcpu histograms = yes\n"
            f"qmp socket = {fakes.sockdir}/*.qmp\n")
    # vCPU 0's buckets all start at zero: they are defined as they grow.
    charts = {"kvm_histvm.vcpu1_" + HIST: VCPU1, "kvm_histvm." + HIST: None,
              "kvm_histvm.vcpu0_" + HIST: VCPU0}
    with netdata_factory(tmp_path) as start:
        nd = start(plugins={"kvm_stats.plugin": PLUGIN},
                   plugin_configs={"kvm_stats.conf": conf}, binary=binary,
                   caps=False, env={"KVMSTATS_PROC_ROOT": fakes.proc_root})
        for chart in charts:
            got = nd.wait_for_chart(chart, timeout=40)
            assert got["chart_type"] == ("stacked" if binary == NETDATA_BIN else "heatmap")
        # Bucket 8 turns non-zero 16 s into the fake's life, long after
        # bucket 29 was charted.
        wait_for(lambda: buckets_sent(fake, VCPU1)[8] > 0, timeout=60, step=1,
                 what="bucket 8 sent")
        time.sleep(2)                           # and charted
        fake.send_signal(signal.SIGUSR1)        # pace x 0: every answer alike from now
        time.sleep(1.5)
        frozen = fake.sent()
        time.sleep(3)                           # and Netdata has one of them
        assert {k: v for k, v in fake.sent().items() if k != "queries"} == \
            {k: v for k, v in frozen.items() if k != "queries"}, "the fake still moves"
        for chart, qom_path in charts.items():
            sent = buckets_sent(fake, qom_path)
            assert sent[8] > 0 and sent[20] == 0, sent
            assert (sent[29] >= 2) == (qom_path != VCPU0), sent
            dims = nd.chart(chart)["dimensions"]            # in Netdata's order
            ids = list(dims)
            order = [bucket_of(i) for i in ids]
            print(chart, "dimensions:", order)
            # Ascending by lower bound, as a heatmap reads them.
            assert order == sorted(order), order
            assert [bounds_ns(k)[0] for k in order] == sorted(bounds_ns(k)[0] for k in order)
            # Every bucket not zero is there, and none is missing
            # below it: the rows of a heatmap are contiguous.
            assert order == list(range(len(order))), order
            assert max(k for k, v in sent.items() if v) in order
            labels = nd.data(chart, after=-5, points=1)["labels"][1:]
            assert labels == [dims[i]["name"] for i in ids], labels
            for i in ids:
                check_name(bucket_of(i), dims[i]["name"])
            got = as_collected(prom_text(nd, "test-" + chart), chart)
            assert got, f"{chart} not in the Prometheus export"
            for i in ids:
                key = dims[i]["name"] if dims[i]["name"] in got else i
                assert got[key] == sent[bucket_of(i)], (chart, i, got, sent)


def test_kvmstat_json_buckets_in_order(fakes):
    """kvmstat --json: each vCPU's histogram as an array in bucket order,
    with each bucket's upper bound (raw ns), equal to what was sent."""
    fake = fakes.start("histjson", "--hist", "--rate", 1000)
    out = subprocess.run([KVMSTAT, "--json", "--qmp", fake.sock, "-s", HIST, "1", "2"],
                         env=fakes.env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # kvmstat's last sample is the fake's last answer: no query comes after.
    [vm] = json.loads(out.stdout.splitlines()[-1])["vms"]
    sent = fake.sent()["vcpu"]
    assert len(vm["vcpus"]) == 2
    for vcpu in vm["vcpus"]:
        qom = VCPU0 if vcpu["vcpu"] == 0 else VCPU1
        st = vcpu["stats"][HIST]
        assert st["bucket_upper_bounds"] == [bounds_ns(k)[1] for k in range(NBUCKETS)]
        assert st["value"] == list(reversed(sent[qom][HIST])), (vcpu["vcpu"], st)
    assert vm["vcpus"][1]["stats"][HIST]["value"][29] >= 2


def collectd_name(k):
    """The type instance of bucket k: its upper bound, or the last one's
    lower bound, in the stat's raw unit (ns)."""
    lo, hi = bounds_ns(k)
    return f"{HIST}-lt{hi}ns" if hi is not None else f"{HIST}-ge{lo}ns"


@requires_root
@pytest.mark.skipif(collectd_missing_reason() is not None,
                    reason=collectd_missing_reason() or "")
def test_collectd_bucket_values(fakes, tmp_path):
    """collectd: one derive per bucket, named by its bound, equal to what
    was sent, per vCPU and summed for the VM."""
    fake = fakes.start("histcd", "--hist", "--rate", RATE, "--burst-factor", 0)
    blocks = ("LoadPlugin kvm_stats\n<Plugin kvm_stats>\n  PerVCPU true\n  Histograms true\n"
              f'  Groups "halt"\n  QMPSocket "{fakes.sockdir}/*.qmp"\n</Plugin>\n')
    cd = Collectd(tmp_path, plugin_dir_extra=BUILD / "kvm_stats.so", plugin_blocks=blocks,
                  env={"KVMSTATS_PROC_ROOT": fakes.proc_root})
    cd.csv(store_rates=False)
    names = [collectd_name(k) for k in range(NBUCKETS)]
    assert len(set(names)) == NBUCKETS

    def last(inst, ti):
        try:
            rows = cd.csv_rows(f"kvm_stats-{inst}", f"derive-{ti}")
        except FileNotFoundError:
            return None
        return rows[-1]["value"] if rows else None
    try:
        cd.start()
        wait_for(lambda: buckets_sent(fake, VCPU1)[8] > 0, timeout=60, step=1,
                 what="bucket 8 sent")
        fake.send_signal(signal.SIGUSR1)        # pace x 0: every answer alike from now
        time.sleep(1.5)
        frozen = buckets_sent(fake)
        wait_for(lambda: last("histcd", names[8]) == frozen[8], timeout=30, step=0.5,
                 what="the frozen values in the csv files")
        time.sleep(1.5)
        assert buckets_sent(fake) == frozen, "the fake still moves"
        for inst, qom_path in (("histcd", None), ("histcd-vcpu0", VCPU0),
                               ("histcd-vcpu1", VCPU1)):
            sent = buckets_sent(fake, qom_path)
            got = {k: last(inst, names[k]) for k in range(NBUCKETS)}
            assert got == sent, (inst, got, sent)
        assert buckets_sent(fake, VCPU1)[29] >= 2
    finally:
        cd.stop()
