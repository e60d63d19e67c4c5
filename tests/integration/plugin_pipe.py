# SPDX-License-Identifier: MIT
"""kvm_stats.plugin run as Netdata runs it, its stdin and stdout on pipes.

The protocol lines it prints are read without blocking and kept: `lines`
(consumed by wait_line() and result()) and `seen` (every line, for checks
on the keywords a Netdata version would receive).
"""
import os
import select
import subprocess
import time


class PluginPipe:
    def __init__(self, argv, env, poll=0.2):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.poll = poll
        self.buf = b""
        self.lines = []
        self.seen = []

    def _fill(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if r:
            chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            if not chunk:
                raise AssertionError(f"plugin closed stdout, rc={self.proc.poll()}, "
                                     f"stderr={self.proc.stderr.read()!r}")
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            new = [l.decode(errors="replace") for l in done]
            self.lines += new
            self.seen += new

    def wait_line(self, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.lines):
                if predicate(line):
                    del self.lines[:i + 1]
                    return line
            self.lines.clear()
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for a line")
            self._fill(self.poll)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def result_text(self, transaction, timeout=20):
        """(status, content type, body text) of the next result of transaction."""
        begin = self.wait_line(lambda l: l.startswith(f"FUNCTION_RESULT_BEGIN {transaction} "),
                               timeout)
        _, _, status, ctype, _expires = begin.split(" ")
        body = []
        deadline = time.monotonic() + timeout
        while True:
            while self.lines:
                line = self.lines.pop(0)
                if line == "FUNCTION_RESULT_END":
                    return int(status), ctype, "\n".join(body)
                body.append(line)
            if time.monotonic() > deadline:
                raise AssertionError("no FUNCTION_RESULT_END")
            self._fill(self.poll)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=20)
        return self.proc.returncode
