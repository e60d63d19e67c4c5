# SPDX-License-Identifier: MIT
"""Runs each C unit test binary (cmocka) built under $KVMSTATS_BUILD."""
import os
import subprocess

import pytest

from conftest import BUILD, FIXTURES

UNIT_DIR = BUILD / "tests/unit"
BINARIES = sorted(p for p in UNIT_DIR.glob("test_*") if os.access(p, os.X_OK)) \
    if UNIT_DIR.is_dir() else []


def test_unit_binaries_were_built():
    assert BINARIES, f"no unit test binaries under {UNIT_DIR}: run make first"


@pytest.mark.parametrize("binary", BINARIES, ids=lambda p: p.name)
def test_unit(binary):
    env = dict(os.environ, KVMSTATS_FIXTURES=str(FIXTURES))
    result = subprocess.run([str(binary)], capture_output=True, text=True,
                            timeout=600, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[  PASSED  ]" in output, output
