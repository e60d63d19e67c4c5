# SPDX-License-Identifier: MIT
"""The <Plugin kvm_stats> block as a real collectd 5.12 reads it.

Every option is either understood or refused: collectd's "-T" reads the
config, and when the plugin's config callback fails it prints "Parsing the
config file failed" and exits 1 (a normal start stops the same way), so the
plugin's own line must say which option is wrong and why. These tests need
collectd only, not KVM: a refused block stops collectd before the plugin's
init (which is what looks for /dev/kvm); an accepted one gets past parsing.
"""
import pytest

from conftest import BUILD, sanitizer_runtimes
from daemons import collectd_missing_reason, daemon_factory

PLUGIN = str(BUILD / "kvm_stats.so")
PARSE_FAILED = "Parsing the config file failed"

pytestmark = pytest.mark.skipif(collectd_missing_reason() is not None,
                                reason=collectd_missing_reason() or "")


def block(*lines):
    body = "".join(f"  {line}\n" for line in lines)
    return f"<Plugin kvm_stats>\n{body}</Plugin>\n"


@pytest.fixture
def collectd(tmp_path):
    runtimes = sanitizer_runtimes(PLUGIN)
    env = {"LD_PRELOAD": ":".join(runtimes), "ASAN_OPTIONS": "detect_leaks=0"} if runtimes else {}
    with daemon_factory(tmp_path) as d:
        yield d.collectd(start=False, plugin_dir_extra=PLUGIN, debian_plugins=(), env=env)


def read_config(cd, *blocks):
    """collectd -T on the base config, LoadPlugin kvm_stats and blocks."""
    return cd.test_config(cd.base_config() + "LoadPlugin kvm_stats\n" + "".join(blocks))


# (option line, what the plugin's message must hold). Each was accepted,
# or refused without a word from the plugin, before.
REFUSED = [
    # A block inside the plugin's block: its lines were read by nobody.
    ('<VM "web1">\n    Stat "exits"\n  </VM>', '<VM> is not a block'),
    ('<Stat "exits">\n    IgnoreSelected true\n  </Stat>', '<Stat> is not a block'),
    # Empty strings: QMPSocket "" was a socket glob, LibvirtURI "" made
    # libvirt pick its default URI.
    ('QMPSocket ""', 'QMPSocket "": give a value'),
    ('LibvirtURI ""', 'LibvirtURI "": give a value'),
    # Intervals past cdtime_t: 1e20 s overflowed the conversion.
    ("RefreshInterval 99999999999999999999", "RefreshInterval 1e+20: at most 86400 seconds"),
    ("DebugfsInterval 86401", "DebugfsInterval 86401: at most 86400 seconds"),
    ("RefreshInterval 0", "RefreshInterval must be more than 0 seconds"),
    ("RefreshInterval 0.0000000001", "RefreshInterval must be more than 0 seconds"),
    # Those that were already refused keep naming the option.
    ("Bogus 1", 'unknown option "Bogus"'),
    ('RefreshInterval "10"', '"RefreshInterval"'),
    ("RefreshInterval -1", '"RefreshInterval"'),
    ("PerVCPU true false", '"PerVCPU"'),
    ("Histograms 3", '"Histograms"'),
    ("QMPSocket 5", '"QMPSocket"'),
    ('HostnameFormat "fqdn"', "HostnameFormat"),
    ('HostnameFormat "host" "name"', '"HostnameFormat"'),
    ("Stat 5", "Stat takes one string"),
    ('VM "a" "b"', "VM takes one string"),
    ('Stat "/(/"', 'Stat "/(/"'),
    ('Groups "exits" "bogus"', 'no group "bogus"'),
    ('Groups ""', '"Groups"'),
]


@pytest.mark.parametrize("line,message", REFUSED, ids=[r[0].split("\n")[0] for r in REFUSED])
def test_bad_option_is_refused_naming_it(collectd, line, message):
    rc, out = read_config(collectd, block('VM "web1"', line))
    assert rc != 0, out
    assert PARSE_FAILED in out, out
    said = [x for x in out.splitlines() if x.startswith("kvm_stats plugin:")]
    assert any(message in x for x in said), (message, out)


def test_more_qmp_sockets_than_held_is_refused(collectd):
    lines = [f'QMPSocket "/run/q{i}.qmp"' for i in range(65)]
    rc, out = read_config(collectd, block(*lines[:64]))
    assert PARSE_FAILED not in out, out
    rc, out = read_config(collectd, block(*lines))
    assert rc != 0 and PARSE_FAILED in out, out
    assert "kvm_stats plugin: more than 64 QMPSocket entries" in out, out


def test_second_block_is_refused(collectd):
    """The package's all-defaults block in collectd.conf.d and the user's
    own in collectd.conf: the later one replaced the earlier, silently."""
    rc, out = read_config(collectd, block('VM "web1"'), block("PerVCPU true"))
    assert rc != 0, out
    assert PARSE_FAILED in out, out
    assert "kvm_stats plugin: a second <Plugin kvm_stats> block" in out, out


@pytest.mark.parametrize("lines", [
    (),
    ("DebugfsInterval 0", "RefreshInterval 0.5"),
    ("RefreshInterval 86400", "DebugfsInterval 86400"),
    ('QMPSocket "/run/a.qmp"', 'QMPSocket "/run/b/*.qmp"', 'LibvirtURI "qemu:///system"'),
    ('Stat "mmio_exits"', "IgnoreSelected true", 'VM "/^prod-/"', "IgnoreSelectedVM false",
     'Groups "exits" "halt"', "PerVCPU true", "Histograms false", 'HostnameFormat "name"',
     "Debugfs false"),
])
def test_good_options_get_past_parsing(collectd, lines):
    """Accepted: collectd goes on to the plugin's init (which passes with
    /dev/kvm and says it is missing without)."""
    rc, out = read_config(collectd, block(*lines))
    assert PARSE_FAILED not in out, out
    assert not any(x.startswith("kvm_stats plugin:") and "/dev/kvm" not in x
                   for x in out.splitlines()), out
