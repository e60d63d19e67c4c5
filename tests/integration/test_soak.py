# SPDX-License-Identifier: MIT
"""make soak, shortened: VM churn under the Netdata plugin, collectd and
kvmstat (soak/run), about 45 seconds instead of 5 minutes.

soak/run prints each check with its numbers and exits 1 if any failed
(77: something it needs is missing), so this test fails with its output
whenever the soak does.
"""
import os
import subprocess

import pytest

from conftest import BUILD, ROOT, requires_kvm, requires_root
from daemons import collectd_missing_reason

pytestmark = [
    requires_kvm,
    requires_root,
    pytest.mark.skipif(collectd_missing_reason() is not None,
                       reason=collectd_missing_reason() or ""),
]


def test_short_soak_passes_every_check():
    result = subprocess.run([str(ROOT / "soak" / "run"), "--minutes", "0.75"],
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, KVMSTATS_BUILD=str(BUILD)))
    out = result.stdout + result.stderr
    if result.returncode == 77:
        pytest.skip(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, out[-8000:]
    assert "PASS 4 netdata protocol" in out and "all checks passed" in out, out[-8000:]
