# SPDX-License-Identifier: MIT
"""The libinih versions the Netdata plugin's config unit test runs with.

"installed": the build's own tests/unit/test_netdata_config, linked with
the libinih of this machine (Debian 12: 55). The others: the same test
built by tests/inih.mk against a suite's libinih that scripts/fetch-inih
unpacked under $KVMSTATS_CACHE/inih/<suite>/ (Debian 13 "trixie": 59,
sid: 61), found through the binary's rpath.
"""
import os
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("KVMSTATS_CACHE", "/var/cache/kvm_stats")) / "inih"
SUITES = ("trixie", "sid")


def _codename():
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip('"') or "installed"
    except OSError:
        pass
    return "installed"


class Inih:
    """One libinih: the test binary, the directory its libinih.so.1 must
    load from (None: the system's), its Debian version, or why not."""

    def __init__(self, build, suite):
        self.suite = suite
        if suite == "installed":
            self.label = f"{_codename()}, installed"
            self.binary = Path(build) / "tests/unit/test_netdata_config"
            self.libdir = None
            self.version = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", "libinih1"],
                capture_output=True, text=True).stdout.strip() or None
            self.missing = None if self.version else "libinih1 is not installed"
            return
        self.label = suite
        self.binary = Path(build) / "inih" / suite / "test_netdata_config"
        root = CACHE / suite
        libs = sorted(root.glob("usr/lib/*/libinih.so.1"))
        self.libdir = libs[0].parent if libs else None
        try:
            self.version = (root / ".deb-version").read_text().strip()
            self.missing = None
        except OSError:
            self.version = None
            try:
                why = (CACHE / f"{suite}.failed").read_text().strip()
            except OSError:
                why = "not fetched"
            self.missing = (f"libinih of {suite} is not unpacked in {root} ({why}): "
                            f"scripts/deps test fetches it (scripts/fetch-inih {suite})")

    @property
    def id(self):
        return f"libinih-{self.version or 'missing'}-{self.suite}"

    def describe(self):
        if self.missing:
            return f"libinih {self.suite}: not tested: {self.missing}"
        return f"libinih {self.version} ({self.label})"


def all_inih(build):
    return [Inih(build, s) for s in ("installed", *SUITES)]


def describe(build):
    return "config unit test with: " + "; ".join(i.describe() for i in all_inih(build))
