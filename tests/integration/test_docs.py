# SPDX-License-Identifier: MIT
"""What the docs say of kvmstat's options is what kvmstat takes.

The options are read from `kvmstat --help` (the program's own usage, made
from the same table getopt reads) and looked up in the man page
(debian/kvmstat.1, one .TP entry per option) and in README's usage block:
an option added to the code without its docs, or documented and gone,
fails here. Needs no KVM and no root.
"""
import re
import subprocess

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
