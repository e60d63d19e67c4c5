# SPDX-License-Identifier: MIT
"""The Netdata plugin's config unit test with every libinih Debian ships.

libinih changed what it does with a line that fills its 200-byte buffer
between Debian 12 (55: the rest is read as a line of its own) and Debian
13 (59) and sid (61: the rest is read and dropped, the line counted as an
error), which once made the plugin refuse a whole kvm_stats.conf on
Debian 13 for one long comment. test_long_lines (a 250-byte comment, a
198-byte setting applied, a 199-byte one refused with its line) must pass
with each. The test ids name the version; a libinih that could not be
fetched is a SKIP with the reason, never a pass.
"""
import os
import subprocess

import pytest

from conftest import BUILD, FIXTURES
from inih_versions import all_inih

CASES = all_inih(BUILD)


def loaded_libinih(binary):
    """The path ld.so resolves libinih.so.1 to for binary."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                         timeout=60).stdout
    for line in out.splitlines():
        if line.strip().startswith("libinih.so"):
            return os.path.realpath(line.split("=>")[1].split("(")[0].strip())
    raise AssertionError(f"{binary} does not load libinih:\n{out}")


@pytest.mark.parametrize("inih", CASES, ids=[c.id for c in CASES])
def test_config_with_libinih(inih):
    if inih.missing:
        pytest.skip(f"SKIP: {inih.missing}")
    assert inih.binary.exists(), \
        f"{inih.binary} was not built: make inih-tests (make test does)"
    loaded = loaded_libinih(inih.binary)
    if inih.libdir is None:
        owner = subprocess.run(["dpkg-query", "-S", loaded], capture_output=True,
                               text=True).stdout
        assert owner.startswith("libinih1"), f"{loaded} is not the installed libinih1's"
    else:
        assert loaded.startswith(os.path.realpath(inih.libdir) + "/"), \
            f"{inih.binary} loads {loaded}, not libinih {inih.version} of {inih.suite}"
    env = dict(os.environ, KVMSTATS_FIXTURES=str(FIXTURES))
    result = subprocess.run([str(inih.binary)], capture_output=True, text=True,
                            timeout=300, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[       OK ] test_long_lines" in output, output
    assert "[  PASSED  ]" in output, output
