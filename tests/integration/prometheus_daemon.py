# SPDX-License-Identifier: MIT
"""Debian 12's Prometheus 2.42 (package prometheus) in the foreground, on
127.0.0.1 with its own config and TSDB in a private directory; stopped by
pid (daemons._Daemon). Scrapes the targets given every second.

    prom = Prometheus(tmp_path, {"netdata": ("127.0.0.1:19999",
                                             "/api/v1/allmetrics", {"format": ["prometheus"]})})
    prom.start()
    prom.query('up')
"""
import json
import os

import urllib.parse
import urllib.request

from daemons import _Daemon, free_port, port_accepts, wait_until

PROMETHEUS_BIN = "/usr/bin/prometheus"


def prometheus_missing_reason():
    if not os.path.exists(PROMETHEUS_BIN):
        return f"SKIP: {PROMETHEUS_BIN} is missing (Debian package prometheus)"
    return None


class Prometheus(_Daemon):
    name = "prometheus"

    def __init__(self, tmp, jobs):
        """jobs: {job name: (host:port, metrics_path, params or None)}."""
        super().__init__(tmp)
        self.port = free_port()
        self.conf_path = self.root / "prometheus.yml"
        lines = ["global:", "  scrape_interval: 1s", "  evaluation_interval: 1s",
                 "scrape_configs:"]
        for job, (target, path, params) in jobs.items():
            lines += [f"  - job_name: {json.dumps(job)}", f"    metrics_path: {json.dumps(path)}",
                      "    honor_labels: true"]
            if params:
                lines.append(f"    params: {json.dumps(params)}")
            lines.append(f"    static_configs: [{{targets: [{json.dumps(target)}]}}]")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def argv(self):
        return [PROMETHEUS_BIN, f"--config.file={self.conf_path}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle"]

    def start(self, timeout=60):
        return self._start(timeout)

    def _ready(self):
        if not port_accepts(self.port):
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, promql):
        """An instant query: [(labels, float value)]."""
        data = self.api("/api/v1/query", query=promql)
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def wait_query(self, promql, predicate=bool, timeout=60):
        def check():
            r = self.query(promql)
            return r if r and predicate(r) else None
        return wait_until(check, timeout, step=1, what=f"PromQL {promql}")

    def targets_up(self):
        return {t["labels"]["job"]: t["health"] for t in self.api("/api/v1/targets")["activeTargets"]}

    def stop(self, timeout=None):
        status = super().stop(timeout)
        return status



