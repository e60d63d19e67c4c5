# SPDX-License-Identifier: MIT
"""What the docs say of kvmstat's options is what kvmstat takes.

The options are read from `kvmstat --help` (the program's own usage, made
from the same table getopt reads) and looked up in the man page
(debian/kvmstat.1, one .TP entry per option) and in README's usage block:
an option added to the code without its docs, or documented and gone,
fails here. Needs no KVM and no root.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT

KVMSTAT = str(BUILD / "kvmstat")


def help_options():
    out = subprocess.run([KVMSTAT, "--help"], capture_output=True, text=True,
                         timeout=10).stdout
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]*)", out, re.M))


def man_options():
    text = (ROOT / "debian/kvmstat.1").read_text()
    entries = re.findall(r"^\.TP\n(.*)$", text, re.M)
    found = set()
    for line in entries:
        m = re.search(r"\\-\\-([a-z][a-z\\-]*)", line)
        if m:
            found.add("--" + m.group(1).replace("\\-", "-"))
    return found


def readme_options():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```\nkvmstat \[options\].*?```", text, re.S).group(0)
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]*)", block, re.M))


def test_every_option_is_in_the_man_page_and_readme():
    options = help_options()
    assert len(options) >= 13, options
    assert man_options() == options, ("man page", man_options() ^ options)
    assert readme_options() - {"--help"} == options - {"--help"}, \
        ("README", readme_options() ^ options)


# ------------------------------------------------------- metrics reference

def test_metrics_reference_is_current():
    """docs/metrics.md is what `make docs` writes from the golden blobs and
    the code: a stat, a chart or a collectd type changed without `make
    docs` fails here."""
    gen = BUILD / "docs/metrics_gen"
    golden = ROOT / "tests/fixtures/golden"
    out = subprocess.run([str(gen), str(golden / "vm.bin"), str(golden / "vcpu.bin")],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    committed = (ROOT / "docs/metrics.md").read_text()
    assert out == committed, "docs/metrics.md is stale: run `make docs`"
    # Every stat of the golden blobs has its row.
    listing = (golden / "listing.txt").read_text()
    stats = re.findall(r"^  (\w+) +flags=", listing, re.M)
    rows = re.findall(r"^\| `(\w+)` \|", committed, re.M)
    assert len(stats) >= 60 and sorted(rows) == sorted(stats)


# ----------------------------------------------- Netdata settings, defaults

def c_function(text, signature):
    """The body of the C function whose definition starts with signature."""
    start = text.index(signature)
    body = text.index("\n{\n", start)
    return text[body:text.index("\n}\n", body)]


def netdata_settings():
    """{setting: default as the docs must say it} from netdata/config.c."""
    code = (ROOT / "netdata/config.c").read_text()
    header = (ROOT / "netdata/config.h").read_text()
    apply_ = c_function(code, "static int apply(")
    defaults = c_function(code, "void plugin_config_defaults(")
    literal = dict(re.findall(r"\.(\w+) = (\w+),", defaults))
    vcpu_groups = re.findall(r"cfg->vcpu_groups\[CATALOG_(\w+)\] = true", defaults)
    default_groups = re.search(r'#define CONFIG_DEFAULT_GROUPS "([^"]*)"', header).group(1)
    settings = {}
    for block in re.split(r"\n\tif \(", apply_)[1:]:
        names = re.findall(r'strcmp\(name, "([^"]+)"\) == 0', block)
        fields = [f for f in re.findall(r"cfg->(\w+)", block) if f != "groups_set"]
        assert names, block
        field = fields[0] if fields else ""
        if field == "groups":
            want = default_groups
        elif field == "vcpu_groups":
            want = " ".join(g.lower() for g in vcpu_groups)
        elif literal.get(field) in ("true", "false"):
            want = {"true": "yes", "false": "no"}[literal[field]]
        elif literal.get(field, "").isdigit():
            want = literal[field]
        elif field in literal:
            want = None                     # from Netdata (update every)
        elif "parse_bool" in block:
            want = "no"                     # zeroed: false
        else:
            want = ""                       # zeroed: none, off
        for name in names:
            settings[name] = want
    return settings


def netdata_doc_table():
    text = (ROOT / "docs/netdata.md").read_text()
    start = text.index("| setting | default |", text.index("#### Options"))
    table = text[start:text.index("\n\n", start)]
    rows = {}
    for line in re.findall(r"^\|.*\|$", table, re.M)[2:]:
        cells = [c.strip() for c in line.split("|")[1:-1]]
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rows[name] = cells[1].replace("`", "")
    return rows


def test_every_netdata_setting_is_documented_with_its_default():
    settings = netdata_settings()
    assert len(settings) >= 16, settings
    rows = netdata_doc_table()
    missing = sorted(set(settings) - set(rows))
    assert not missing, ("settings netdata/config.c takes that docs/netdata.md's "
                         "options table lacks", missing)
    gone = sorted(set(rows) - set(settings))
    assert not gone, ("documented settings netdata/config.c does not take", gone)
    for name, want in settings.items():
        if want is None:
            continue
        got = rows[name]
        ok = got == want or (want == "" and got in ("", "no", "none"))
        assert ok, (name, "docs say", got, "the code", want)


# ---------------------------------------------- collectd options, defaults

def collectd_options():
    """{Option: default as the man page must say it} from collectd/kvm_stats.c."""
    code = (ROOT / "collectd/kvm_stats.c").read_text()
    new = c_function(code, "static struct context *context_new(void)")
    default_groups = re.search(r'#define DEFAULT_GROUPS "([^"]*)"', code).group(1)
    first = re.search(r"enum hostname_format \{ HOSTNAME_(\w+),", code).group(1).lower()
    set_ = {}
    for field, value in re.findall(r"ctx->(\w+) = ([^;]+);", new):
        m = re.fullmatch(r"TIME_T_TO_CDTIME_T\((\d+)\)", value)
        set_[field] = m.group(1) if m else value
    options = {}
    for name, call in re.findall(r'strcasecmp\(item->key, "(\w+)"\) == 0\)\n\t+r = ([^;]+);',
                                 code):
        field = re.search(r"(?:ctx->|&)(\w+)\)?$", call)
        field = field.group(1) if field else ""
        if "groups_option" in call:
            want = default_groups
        elif "hostname_format" in call:
            want = first
        elif field in set_:
            want = set_[field]
        elif "cf_util_get_boolean" in call:
            want = "false"
        else:
            want = "none"
        options[name] = want
    return options


def collectd_man_entries():
    text = (ROOT / "docs/collectd-kvm_stats.5").read_text()
    options = text[text.index(".SH OPTIONS"):text.index(".SH IDENTIFIERS")]
    entries = {}
    for entry in options.split(".TP\n")[1:]:
        name = re.match(r"\\fB(\w+)\\fR", entry).group(1)
        m = re.search(r"Default: (?:\\fB(.*?)\\fR|(\w+))", entry)
        assert m, ("no Default: in the entry of", name)
        entries[name] = (m.group(1) or m.group(2)).strip('"')
    return entries


def test_every_collectd_option_is_documented_with_its_default():
    options = collectd_options()
    assert len(options) >= 13, options
    entries = collectd_man_entries()
    missing = sorted(set(options) - set(entries))
    assert not missing, ("options collectd/kvm_stats.c takes that "
                         "collectd-kvm_stats(5) lacks", missing)
    gone = sorted(set(entries) - set(options))
    assert not gone, ("documented options collectd/kvm_stats.c does not take", gone)
    for name, want in options.items():
        assert entries[name] == want, (name, "man page says", entries[name], "the code", want)


# ---------------------------------------------------------------- man pages

@pytest.mark.skipif(shutil.which("man") is None, reason="SKIP: no man (man-db)")
@pytest.mark.parametrize("page", ["debian/kvmstat.1", "docs/collectd-kvm_stats.5"])
def test_man_page_renders_without_warnings(page):
    """As lintian's manpage-has-errors-from-man check renders it: 80 columns."""
    r = subprocess.run(["man", "--warnings", "-l", str(ROOT / page)], capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "DEFAULT" in r.stdout.upper() or "EXIT STATUS" in r.stdout
