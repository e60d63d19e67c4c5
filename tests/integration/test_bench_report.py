# SPDX-License-Identifier: MIT
"""bench/run's verdicts and report, without KVM (issue #22).

The Targets table may say "met" only beside a number it measured: a target
whose size was not run, or whose figure is missing, says "not measured"
with the reason. Checked on the report's own functions (bench/run loaded
as a module) with synthetic measurements, and on `bench/run` itself run as
on a host without KVM (--dev-kvm pointing at nothing): exit status 0, every
size and target "not measured", no "met".
"""
import importlib.machinery
import importlib.util
import subprocess
import sys

from conftest import ROOT

RUN = ROOT / "bench" / "run"


def load_bench():
    loader = importlib.machinery.SourceFileLoader("bench_run", str(RUN))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


bench = load_bench()


def verdicts(rows):
    """{target: verdict} of Targets rows "| target | measured | verdict |"."""
    out = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == 3, line
        out[cells[0]] = (cells[1], cells[2])
    return out


def test_verdict_needs_every_figure():
    assert bench.verdict([]).startswith("not measured")
    assert bench.verdict([], ["1000 x 4 not run: memory"]) == \
        "not measured (1000 x 4 not run: memory)"
    assert bench.verdict([True], ["1000 x 4 not run: memory"]).startswith("not measured")
    assert bench.verdict([True, True]) == "met"
    # A measured miss is a miss, whatever else is missing.
    assert bench.verdict([True, False], ["x"]) == "**missed**"
    assert bench.verdict([False]) == "**missed**"


def test_reasons_grouped_once():
    v = bench.verdict([], ["10 x 4 not run: no KVM", "50 x 4 not run: no KVM",
                           "200 x 4: plugin exited"])
    assert v == "not measured (10 x 4, 50 x 4 not run: no KVM; 200 x 4: plugin exited)"


def test_nothing_measured_nothing_met():
    skipped = [(size, "no usable KVM") for size in bench.SIZES]
    rows = verdicts(bench.targets([], bench.SIZES, skipped))
    assert len(rows) >= 15
    for target, (measured, v) in rows.items():
        assert v.startswith("not measured (") and "no usable KVM" in v, (target, v)
        assert measured == "-", target


def small_size(n, m, cob=1.0, plugin_pct=None, loops=None):
    """A measured size as measure_size() leaves it, figures made up."""
    core = {"core": {"cpu_ns": 75000 * n // 10}, "bare": {"cpu_ns": 60000 * n // 10},
            "vcpus": n * m}
    rescan = {"rescan": {"cpu_ns": 17000}, "scanned": 0}
    s = {"n": n, "m": m, "core_over_bare": cob, "core_over_bare_hot": cob,
         "syscalls": {"epoll_wait": 1, "pread64": n * m},
         "drv": {"core_cold": dict(core, fds=n * m), "core_hot": dict(core, fds=n * m),
                 "rescan_host": rescan, "rescan_walk_host": rescan,
                 "qmp": {"error": "not measured: no QEMU 7.2"}}}
    if plugin_pct is not None:
        s["plugin"] = {"cpu_pct": plugin_pct, "rss_kib": 4096, "hwm_kib": 4096, "fds": 100}
    if loops is not None:
        s["loops"] = {"stats_pct": loops[0], "stats_sched_pct": loops[1]}
    return s


def test_a_size_not_run_is_never_met():
    """10 x 4 within every target it has a figure for, 1,000 x 4 refused:
    the every-size and 1,000 x 4 targets are not met, and say why."""
    sizes = [small_size(10, 4, plugin_pct=0.04, loops=(0.01, 0.03))]
    skipped = [((1000, 4), "memory: 1000 x 3 MiB per VM > half of MemAvailable")]
    rows = verdicts(bench.targets(sizes, [(10, 4), (1000, 4)], skipped))
    cob = rows["core / bare pread <= 1.25 at every size"]
    assert cob[0] == "10x4: 1.00 (hot 1.00)"
    assert cob[1] == "not measured (1000 x 4 not run: memory: 1000 x 3 MiB per VM > half " \
        "of MemAvailable)"
    qmp = rows["QMP / core >= 50 per VM at every size"][1]
    assert qmp.startswith("not measured (") and "no QEMU 7.2" in qmp
    big = [k for k in rows if k.startswith("Netdata plugin 1000 x 4")]
    assert len(big) == 2
    for k in big:
        assert rows[k][1].startswith("not measured (1000 x 4 not run: memory"), k
    assert rows["rescan of an unchanged host < one sample of 10 VMs"][1] == "met"
    assert not any(v == "met" for k, (_, v) in rows.items() if "1000" in k or "every" in k)


def test_plugin_against_bare_reads():
    """At 1,000 x 4 the plugin may spend twice the bare reads (stats fds and
    schedstat), no more; both numbers are printed."""
    for plugin_pct, expect in ((2.0, "met"), (2.3, "**missed**")):
        sizes = [small_size(1000, 4, plugin_pct=plugin_pct, loops=(0.25, 1.10))]
        rows = verdicts(bench.targets(sizes, [(1000, 4)], []))
        key = next(k for k in rows if k.startswith("Netdata plugin 1000 x 4: whole CPU"))
        measured, v = rows[key]
        assert v == expect and f"plugin {plugin_pct:.2f} %" in measured
        assert "bare 0.25 %" in measured and "1.10 % (+ schedstat)" in measured
    sizes = [small_size(1000, 4, plugin_pct=1.0)]
    rows = verdicts(bench.targets(sizes, [(1000, 4)], []))
    key = next(k for k in rows if k.startswith("Netdata plugin 1000 x 4: whole CPU"))
    assert rows[key] == ("-", "not measured (bare loops not measured)")


def test_bench_without_kvm_exits_0_and_says_not_measured():
    r = subprocess.run([sys.executable, str(RUN), "--dev-kvm", "/nonexistent/kvm"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "nothing measured: no usable KVM" in r.stderr
    out = r.stdout
    for n in (10, 50, 200, 1000):
        assert f"Not run: {n} x 4: no usable KVM: /nonexistent/kvm" in out
        assert f"| {n} x 4 | not measured ({n} x 4 not run: no usable KVM" in out
    targets = out.split("### Targets", 1)[1]
    lines = [l for l in targets.splitlines() if l.startswith("| ") and "---" not in l][1:]
    assert len(lines) >= 15
    assert all(l.endswith(") |") and "| not measured (" in l for l in lines), lines
    assert "| met |" not in out
