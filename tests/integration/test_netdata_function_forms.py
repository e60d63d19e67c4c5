# SPDX-License-Identifier: MIT
"""The function kvm-vms called as Netdata 1.37 and 2.x call it, without KVM.

QEMUs are played by tests/fixtures/fakevmm.py (--no-vm) and listed as VMMs
in a fake /proc (fakeproc.py); kvm_stats.plugin reads them over QMP (one
"qmp socket" glob) and runs as Netdata runs it: argv[1], NETDATA_VERSION,
calls on its stdin, the protocol on its stdout. The 2.x lines come from
tests/fixtures/netdata2_calls.txt (their source is said there); 1.37's are
the four words 1.37 writes. Checked: the declaration each version is sent
(1.37: the words 1.37 knows, nothing else; 2.x: tags, access, priority),
the table and Functions v3 fields, a payload call, cancelled calls,
malformed calls (an error result, never a hang, never a dead plugin), an
unfinished payload answered within its timeout, a call while 24 VMs are
charted answered within 1 s, and one while 200 are (one fakevmm.py --fleet;
all charted within a few intervals of the start), whose answer is longer
than a line 1.37 reads at once.
"""
import json
import os
import shlex
import time

import pytest

from conftest import BUILD, FIXTURES
from fakeqemu import FakeQemus
from plugin_pipe import PluginPipe as BasePipe

PLUGIN = str(BUILD / "kvm_stats.plugin")
CALLS = FIXTURES / "netdata2_calls.txt"
NVMS = 24
KEYWORDS_137 = {"CHART", "DIMENSION", "CLABEL", "CLABEL_COMMIT", "BEGIN", "SET",
                "END", "DISABLE", "FUNCTION", "FUNCTION_RESULT_BEGIN", "FUNCTION_RESULT_END"}
V3_COLUMN_KEYS = {"visualization", "value_options", "filter", "sticky"}


def exchanges():
    """netdata2_calls.txt: {name: [protocol lines]}."""
    out, name = {}, None
    for line in CALLS.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("@"):
            name = line[1:].strip()
            out[name] = []
        else:
            out[name].append(line)
    return out


CALLS_2X = exchanges()


def tx_of(name):
    return CALLS_2X[name][0].split()[1]


@pytest.fixture(scope="module")
def fleet():
    """NVMS fake QEMUs fn00..fnNN in one fake /proc, their sockets in one
    directory; stopped by pid."""
    with FakeQemus(prefix="kvmstats-fnforms-") as qemus:
        qemus.start_many([(f"fn{i:02d}", ("--rate", 100 * (i + 1))) for i in range(NVMS)])
        yield qemus


class PluginPipe(BasePipe):
    """kvm_stats.plugin on the fleet, its stdin and stdout pipes."""

    def __init__(self, fleet, tmp_path, version):
        conf = tmp_path / "conf"
        conf.mkdir(exist_ok=True)
        (conf / "kvm_stats.conf").write_text(
            f"[kvm_stats]\nrescan every = 1\nqmp socket = {fleet.sockdir}/*.qmp\n")
        env = fleet.env(NETDATA_VERSION=version, NETDATA_UPDATE_EVERY="1",
                        NETDATA_USER_CONFIG_DIR=str(conf),
                        NETDATA_STOCK_CONFIG_DIR="/nonexistent")
        super().__init__([PLUGIN, "1"], env)

    def result(self, transaction, timeout=20):
        """(status, body JSON) of the next result of transaction."""
        status, ctype, body = self.result_text(transaction, timeout)
        assert ctype == "application/json"
        return status, json.loads(body)

    def results_for(self, seconds):
        """Every FUNCTION_RESULT_BEGIN printed in the next seconds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._fill(0.1)
        out = [l for l in self.lines if l.startswith("FUNCTION_RESULT_BEGIN")]
        self.lines.clear()
        return out

    def replay(self, name):
        self.send("".join(l + "\n" for l in CALLS_2X[name]))

    def charted(self, n=NVMS, timeout=60):
        names = set()

        def more(line):
            if line.startswith("CHART kvm_fn"):
                names.add(line.split()[1].split(".")[0])
            return len(names) >= n
        self.wait_line(more, timeout)
        return names



@pytest.fixture
def plugin(fleet, tmp_path):
    started = []

    def start(version):
        p = PluginPipe(fleet, tmp_path / version, version)
        started.append(p)
        return p
    (tmp_path / "v1.37.1").mkdir()
    (tmp_path / "v2.11.0").mkdir()
    yield start
    for p in started:
        p.stop()


def keywords(lines):
    """The first words of lines, result bodies left out."""
    out, body = set(), False
    for line in lines:
        if body:
            body = line != "FUNCTION_RESULT_END"
            if body:
                continue
        elif line.startswith("FUNCTION_RESULT_BEGIN "):
            body = True
        if line:
            out.add(line.split(" ", 1)[0])
    return out


def names_of(table):
    col = table["columns"]["name"]["index"]
    return [r[col] for r in table["data"]]


def test_declaration_as_137_sees_it(plugin):
    p = plugin("v1.37.1")
    declared = p.wait_line(lambda l: l.startswith("FUNCTION "))
    words = shlex.split(declared)
    assert words[:4] == ["FUNCTION", "GLOBAL", "kvm-vms", "10"] and len(words) == 5
    p.charted(1)
    p._fill(1.5)
    assert keywords(p.seen) <= KEYWORDS_137


def test_declaration_as_2x_sees_it(plugin):
    p = plugin("v2.11.0")
    declared = p.wait_line(lambda l: l.startswith("FUNCTION "))
    words = shlex.split(declared)
    # FUNCTION [GLOBAL] "name" timeout "help" "tags" "access" priority
    # (src/plugins.d/pluginsd_functions.c pluginsd_function()).
    assert words[:4] == ["FUNCTION", "GLOBAL", "kvm-vms", "10"] and len(words) == 8
    assert words[5] == "top"
    # HTTP_ACCESS_SIGNED_ID | SAME_SPACE | SENSITIVE_DATA: no anonymous caller.
    assert int(words[6], 16) == 0x13
    assert words[7] == "100"


@pytest.mark.parametrize("version", ["v1.37.1", "v2.11.0"])
def test_the_137_call_form(plugin, version):
    p = plugin(version)
    p.charted()
    time.sleep(1.5)             # two samples: exits/s
    p.send('FUNCTION 6c1e6f36-0000-4000-8000-000000000001 10 "kvm-vms sort:name"\n')
    status, t = p.result("6c1e6f36-0000-4000-8000-000000000001")
    assert status == 200 and t["type"] == "table" and t["default_sort_column"] == "name"
    assert names_of(t) == [f"fn{i:02d}" for i in range(NVMS)]
    exits = t["columns"]["exits"]["index"]
    by_name = {r[t["columns"]["name"]["index"]]: r[exits] for r in t["data"]}
    # fnNN's two vCPUs count 100 * (NN + 1) exits a second each.
    assert 0.8 * 2 * 100 <= by_name["fn00"] <= 1.2 * 2 * 100, by_name
    assert 0.8 * 2 * 2400 <= by_name["fn23"] <= 1.2 * 2 * 2400, by_name
    v3 = any(V3_COLUMN_KEYS & set(c) for c in t["columns"].values()) or "has_history" in t
    assert v3 == (version == "v2.11.0")


def test_the_2x_call_forms(plugin):
    p = plugin("v2.11.0")
    p.charted()

    p.replay("member")
    status, t = p.result(tx_of("member"))
    assert status == 200 and names_of(t) == sorted(names_of(t)) and len(t["data"]) == NVMS
    assert t["has_history"] is False and t["accepted_params"] == ["info", "sort"]
    for key, c in t["columns"].items():
        assert V3_COLUMN_KEYS <= set(c), key
        assert c["filter"] == ("multiselect" if c["type"] == "string" else "range")
    mapped = t["columns"]["exits"]
    assert mapped["visualization"] == "bar" and mapped["value_options"]["units"] == "exits/s"
    assert mapped["max"] == max(r[mapped["index"]] or 0 for r in t["data"])
    assert [k for k, c in t["columns"].items() if c["unique_key"]] == ["pid"]

    p.replay("info")
    status, i = p.result(tx_of("info"))
    assert status == 200 and i["v"] == 3 and i["has_history"] is False
    assert i["accepted_params"] == ["info", "sort"] and "data" not in i

    p.replay("anonymous")
    status, e = p.result(tx_of("anonymous"))
    assert status == 403 and "signed-in" in e["error_message"]

    p.replay("progress")        # nothing to say
    p.replay("payload")
    status, t = p.result(tx_of("payload"))
    assert status == 200 and names_of(t) == [f"fn{i:02d}" for i in range(NVMS)]
    assert t["default_sort_column"] == "name"
    assert p.results_for(1) == []    # one answer each, none for the progress


def test_cancelled_calls_are_answered(plugin):
    p = plugin("v2.11.0")
    p.charted(1)
    # A GET cancelled at once: answered (it ran when it came), once.
    p.replay("cancel")
    status, _ = p.result(tx_of("cancel"))
    assert status == 200
    assert p.results_for(1) == []
    # A payload call cancelled before its body ended: 499, and its END later
    # makes no second answer.
    p.send('FUNCTION_PAYLOAD c-1 10 "kvm-vms" "0x13" "src" "application/json"\n{"sort":\n'
           'FUNCTION_CANCEL c-1\n')
    status, e = p.result("c-1", timeout=5)
    assert status == 499 and e["status"] == 499
    p.send('"name"}\nFUNCTION_PAYLOAD_END\n')
    assert p.results_for(1) == []
    # Still answering.
    p.send('FUNCTION c-2 10 "kvm-vms" "0x13" "src"\n')
    assert p.result("c-2")[0] == 200


@pytest.mark.parametrize("version", ["v1.37.1", "v2.11.0"])
def test_malformed_calls_get_errors_never_a_hang(plugin, version):
    p = plugin(version)
    p.charted(1)
    cases = [
        ('FUNCTION m-1 10 "no-such-function"', 404),
        ('FUNCTION m-2 10 "kvm-vms sort:nothing"', 400),
        ('FUNCTION m-3 "kvm-vms"', 400),                          # no timeout
        ('FUNCTION m-4 ten "kvm-vms"', 400),                      # not a number
        ('FUNCTION m-5 0 "kvm-vms"', 400),
        ('FUNCTION m-6 10 "kvm-vms" "0xzz" "src"', 400),          # access not hex
        ('FUNCTION m-7 10 "kvm-vms" "0x8" "src"', 403),
        ('FUNCTION m-8 10 "kvm-vms" "0x1b" "src" "extra" "more"', 200),   # extra fields
        ('FUNCTION m-9 10 "kvm-vms --bogus"', 400),
        ('FUNCTION_PAYLOAD m-10 10 "kvm-vms"', 400),              # no content type
    ]
    for line, status in cases:
        t0 = time.monotonic()
        p.send(line + "\n")
        got, body = p.result(line.split()[1], timeout=5)
        assert (got, time.monotonic() - t0 < 5) == (status, True), line
        assert status == 200 or body["status"] == status and body["error_message"], line
    p.send("x\nFUNCTION_PAYLOAD_END\n")                          # m-10's body, skipped
    payloads = [
        ('"application/json"', "not json", 400),
        ('"application/json"', '["an", "array"]', 400),
        ('"application/json"', '{"sort": "nothing"}', 400),
        ('"application/json"', '{"info": "yes"}', 400),
        ('"text/plain"', '{"sort": "name"}', 415),
        ('"application/json"', ('{"x": "' + "y" * 15000 + '"}\n') * 5, 413),
        ('"application/json; charset=utf-8"', '{"sort": "pid", "unknown": 1}', 200),
    ]
    for n, (ctype, body, status) in enumerate(payloads):
        tx = f"pl-{n}"
        p.send(f'FUNCTION_PAYLOAD {tx} 10 "kvm-vms" "0x13" "src" {ctype}\n{body}\n'
               'FUNCTION_PAYLOAD_END\n')
        assert p.result(tx, timeout=5)[0] == status, body[:40]
    # Nobody to answer: no transaction, or one Netdata never writes.
    p.send('FUNCTION\nFUNCTION bad/transaction 10 "kvm-vms"\n')
    p.send("x" * 100000 + "\n")                                  # past the line limit
    p.send("\x00\xff garbage\n\nFUNCTION_CANCEL\nFUNCTION_PROGRESS nobody\n")
    assert p.results_for(1) == []
    p.send('FUNCTION m-last 10 "kvm-vms"\n')
    assert p.result("m-last", timeout=5)[0] == 200
    assert p.proc.poll() is None
    if version == "v1.37.1":
        assert keywords(p.seen) <= KEYWORDS_137


def test_an_unfinished_payload_is_answered_within_its_timeout(plugin):
    p = plugin("v2.11.0")
    p.charted(1)
    t0 = time.monotonic()
    p.send('FUNCTION_PAYLOAD u-1 3 "kvm-vms" "0x13" "src" "application/json"\n{"sort":\n')
    status, e = p.result("u-1", timeout=10)
    took = time.monotonic() - t0
    assert status == 408 and took < 3, took
    # The next call is a call again, not more of that body.
    p.send('FUNCTION u-2 10 "kvm-vms" "0x13" "src"\n')
    assert p.result("u-2", timeout=5)[0] == 200


@pytest.mark.parametrize("version", ["v1.37.1", "v2.11.0"])
def test_a_call_while_many_vms_are_charted(plugin, version):
    p = plugin(version)
    assert len(p.charted()) == NVMS
    p.wait_line(lambda l: l.startswith("BEGIN kvm_fn23"), 20)
    worst = 0
    for n in range(5):
        t0 = time.monotonic()
        p.send(f'FUNCTION many-{n} 10 "kvm-vms"\n')
        status, t = p.result(f"many-{n}", timeout=5)
        worst = max(worst, time.monotonic() - t0)
        assert status == 200 and len(t["data"]) == NVMS
        time.sleep(0.37)        # land at other points of the plugin's second
    print(f"slowest of 5 answers with {NVMS} VMs charted: {worst * 1000:.0f} ms")
    assert worst < 1.0


CAPTURED = FIXTURES / "netdata2-function-lines.txt"


def test_every_line_a_real_netdata_2x_sent_is_answered_once(plugin):
    """The lines Netdata v2.10.4, built from its source, wrote to the
    plugin's stdin (tests/fixtures/netdata2-function-lines.txt: anonymous
    GETs, a POST with its payload, two cancels, a progress request, and the
    MCP registry's "kvm-vms info" with god access), replayed in order:
    every call gets exactly one answer, 403 for the anonymous ones (0x8
    lacks the access the function declares) and 200 for the info, and the
    plugin lives on."""
    p = plugin("v2.11.0")
    p.charted(1)
    lines = [l for l in CAPTURED.read_text().splitlines() if l and not l.startswith("#")]
    calls = {}
    for line in lines:
        words = line.split()
        if words[0] in ("FUNCTION", "FUNCTION_PAYLOAD"):
            calls[words[1]] = shlex.split(line)[4]      # the access field
    p.send("".join(l + "\n" for l in lines))
    answers = p.results_for(6)
    answered = {}
    for begin in answers:
        tx, status = begin.split(" ")[1:3]
        assert tx not in answered, f"{tx} answered twice"
        answered[tx] = int(status)
    assert set(answered) == set(calls), (answered, calls)
    for tx, access in calls.items():
        assert answered[tx] == (200 if access == "0x7ff" else 403), (tx, access, answered[tx])
    assert p.proc.poll() is None


# ------------------------------------------------------- 200 VMs charted

NBIG = 200
# What Netdata takes of a function's answer: 2.x keeps at most
# PLUGINSD_MAX_DEFERRED_SIZE (100 MiB) of a result body and reads a line of
# any length (src/plugins.d/pluginsd_parser.h, buffered_reader.h of 2.10.4).
# 1.37 keeps 10 MiB and reads a line in fgets() pieces of PLUGINSD_LINE_MAX
# (0x4000 - 1024) bytes, each appended as is to the body, except a piece
# whose first word (up to a byte of pluginsd_space(): space, tab, CR, LF,
# '=') is FUNCTION_RESULT_END, which ends it (parser/parser.c,
# libnetdata/libnetdata.{c,h} of v1.37.1).
MAX_BODY_2X = 100 * 1024 * 1024
MAX_BODY_137 = 10 * 1024 * 1024
LINE_PIECE_137 = 0x4000 - 1024
SPACES_137 = set(" \t\r\n=")


def big_name(i):
    """A name that would end 1.37's read of the answer if a piece of it
    began with its second word; long enough that 200 rows make a line of
    more than one piece."""
    return f"fb{i:03d} FUNCTION_RESULT_END x=y {'v' * 40}"


@pytest.fixture(scope="module")
def fleet200():
    """200 fake QEMUs played by one fakevmm.py --fleet, for both forms."""
    with FakeQemus(prefix="kvmstats-fn200-") as qemus:
        t0 = time.monotonic()
        qemus.start_fleet([(big_name(i), ("--rate", 10 * (i + 1))) for i in range(NBIG)])
        print(f"200 fake QEMUs up in {time.monotonic() - t0:.1f} s")
        yield qemus


def timed_result(p, transaction, send):
    """Sends, then (seconds to FUNCTION_RESULT_END, status, body text)."""
    t0 = time.monotonic()
    send()
    status, ctype, body = p.result_text(transaction, timeout=15)
    assert ctype == "application/json"
    return time.monotonic() - t0, status, body


@pytest.mark.parametrize("version", ["v1.37.1", "v2.11.0"])
def test_a_call_while_200_vms_are_charted(fleet200, tmp_path, version):
    """Netdata's 200-VM call (issue #19): every VM charted within a few
    intervals of the start, then the answer within 1 s, complete (every
    VM, right pids, rates in order) and valid JSON, within what Netdata
    takes; the 1.37 form under 1.37, the captured 2.x form under 2.x.
    The body is one line longer than a 1.37 piece in which no byte is one
    1.37 splits words at, so wherever fgets() cuts it no piece can begin
    with the end keyword the VM names hold."""
    p = PluginPipe(fleet200, tmp_path, version)
    try:
        names = set()

        def more(line):
            if line.startswith("CHART kvm_fb"):
                names.add(line.split()[1].split(".")[0])
            return len(names) >= NBIG
        t0 = time.monotonic()
        p.wait_line(more, timeout=10)
        print(f"{version}: all {NBIG} VMs charted {time.monotonic() - t0:.1f} s after start")
        time.sleep(2.5)         # two samples of every VM: exits/s
        if version == "v1.37.1":
            tx = "6c1e6f36-0000-4000-8000-000000000200"
            took, status, body = timed_result(
                p, tx, lambda: p.send(f'FUNCTION {tx} 10 "kvm-vms sort:name"\n'))
        else:
            tx = tx_of("member")
            took, status, body = timed_result(p, tx, lambda: p.replay("member"))
        print(f"{version}: answer in {took * 1000:.0f} ms, {len(body)} bytes, "
              f"{len(body.splitlines())} line(s)")
        assert status == 200
        assert took < 1.0, took
        assert len(body.encode()) < (MAX_BODY_137 if version == "v1.37.1" else MAX_BODY_2X)
        assert "\n" not in body and len(body.encode()) > LINE_PIECE_137
        assert not SPACES_137 & set(body), SPACES_137 & set(body)
        t = json.loads(body)
        assert names_of(t) == [big_name(i) for i in range(NBIG)]
        pids = t["columns"]["pid"]["index"]
        assert [r[pids] for r in t["data"]] == [fleet200.qemus[big_name(i)].pid
                                               for i in range(NBIG)]
        exits = t["columns"]["exits"]["index"]
        # fbNNN's two vCPUs count 10 * (NNN + 1) exits a second each (the
        # values themselves are checked on 24 VMs above): 10x and 2x apart.
        rates = [t["data"][i][exits] for i in (0, 99, 199)]
        assert 0 < rates[0] < rates[1] < rates[2], rates
        assert p.proc.poll() is None
    finally:
        p.stop()
