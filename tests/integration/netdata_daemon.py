# SPDX-License-Identifier: MIT
"""A real, isolated Netdata daemon for integration tests (a helper, not a test).

`Netdata` runs Debian's /usr/sbin/netdata (1.37) in the foreground with a
netdata.conf of its own: a free 127.0.0.1 port, in-memory database, private
cache/lib/log/config/plugins directories, and every internal collector, stock
external plugin, health, ML, registry and anonymous statistics switched off,
so the only collector running is the plugin(s) under test.

As in a real deployment Netdata starts as root and drops to user `netdata`,
and runs its plugins as `netdata`. Its files therefore live in a directory
of its own under /tmp (pytest's tmp_path is 0700 root); the logs are copied
to tmp_path when the daemon stops. Plugins are installed like a package
installs them: copied, root:netdata 0750, and (caps=True) with the file
capabilities cap_dac_read_search,cap_sys_ptrace+ep. setcap is in Debian's
libcap2-bin. Note the kernel ignores file capabilities on scripts.

Usage in a test module:

    from netdata import Netdata, netdata_factory, NETDATA_BIN

    @pytest.fixture
    def netdata(tmp_path):
        with netdata_factory(tmp_path) as start:
            yield start

    def test_x(netdata):
        nd = netdata(plugins={"kvm_stats.plugin": BUILD / "kvm_stats.plugin"})
        chart = nd.wait_for_chart("kvm.exits")

Everything started is stopped by pid (SIGTERM, then SIGKILL by pid), and the
plugin processes Netdata started are waited for by pid.
"""
import contextlib
import json
import os
import pwd
import grp
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from daemons import free_port, wait_until  # noqa: F401 (also used by tests)

NETDATA_BIN = "/usr/sbin/netdata"
STOCK_CONFIG_DIR = "/usr/lib/netdata/conf.d"
WEB_DIR = "/usr/share/netdata/web"
STOCK_PLUGINS_DIR = "/usr/lib/netdata/plugins.d"
# Helper scripts (not plugins) Netdata runs from its plugins directory.
# system-info.sh (Debian netdata-plugins-bash) fills the host's system info;
# without it a 1.37 child aborts in the stream sender ("munmap_chunk():
# invalid pointer") when it connects to a parent.
HELPERS = ("system-info.sh",)
NETDATA_USER = "netdata"
PLUGIN_CAPS = "cap_dac_read_search,cap_sys_ptrace+ep"

# Netdata 1.37's internal collectors, by their [plugins] option name. The
# stock external plugins (apps, python.d, charts.d, go.d, ebpf, ...) are not
# listed: they never run because the private plugins directory holds only
# the plugins given, and `enable running new plugins = no` runs only the
# ones enabled by name.
INTERNAL_PLUGINS_OFF = ("proc", "diskspace", "cgroups", "tc", "idlejitter", "timex",
                        "netdata monitoring", "statsd", "slabinfo")


def netdata_missing_reason(binary=NETDATA_BIN):
    if not os.path.exists(binary):
        return f"SKIP: {binary} is missing (Debian package netdata-core)"
    if os.geteuid() != 0:
        return "SKIP: the Netdata harness needs root (Netdata drops to user netdata)"
    try:
        pwd.getpwnam(NETDATA_USER)
    except KeyError:
        return f"SKIP: user {NETDATA_USER} does not exist"
    return None


def _proc_stat(pid):
    """(ppid, starttime) of a live pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None          # a zombie is gone for our purposes
    return int(fields[1]), int(fields[19])


def _process_table():
    """{pid: (ppid, starttime)} of every live, non-zombie process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st:
                table[int(entry)] = st
    return table


def _descendants(roots, table=None):
    """{pid: starttime} of roots (if alive) and all their live descendants."""
    table = _process_table() if table is None else table
    children = {}
    for pid, (ppid, start) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table and pid not in found:
            found[pid] = table[pid][1]
            todo.extend(children.get(pid, []))
    return found


def _argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")]
    except OSError:
        return []


def _same_process_alive(pid, starttime):
    st = _proc_stat(pid)
    return st is not None and st[1] == starttime


def _conf_text(sections):
    out = []
    for name, opts in sections.items():
        out.append(f"[{name}]")
        for key, value in opts.items():
            if isinstance(value, bool):
                value = "yes" if value else "no"
            out.append(f"    {key} = {value}")
        out.append("")
    return "\n".join(out)


class Netdata:
    """One netdata daemon on 127.0.0.1:<free port>; see the module docstring.

    plugins: {"name.plugin": path}: installed copies, the only plugins run.
    plugin_configs: {"file.conf": text}: written to the user config dir
        ($NETDATA_USER_CONFIG_DIR for the plugins).
    caps: True (all plugins), False, or a collection of plugin file names
        that get PLUGIN_CAPS with setcap.
    stream_to: (port, api_key): stream this host's charts to a parent.
    accept_stream_key: api_key: accept children streaming with that key.
    netdata_conf: {section: {option: value}} merged over the generated conf.
    env: {name: value} added to the daemon's environment (its plugins
        inherit it), e.g. KVMSTATS_PROC_ROOT for a fake /proc tree.
    """

    def __init__(self, tmp_path, plugins=None, plugin_configs=None, hostname="kvmtest-child",
                 stream_to=None, accept_stream_key=None, update_every=1, caps=True,
                 netdata_conf=None, helpers=None, binary=NETDATA_BIN, env=None):
        self.tmp_path = Path(tmp_path)
        self.hostname = hostname
        self.binary = binary
        self.extra_env = dict(env or {})
        self.update_every = update_every
        self.proc = None
        self.pid = None
        self.port = None
        self.stray_processes = []
        self.exit_status = None
        self.start_seconds = None
        self.root = Path(tempfile.mkdtemp(prefix=f"kvmstats-netdata-{hostname}-"))
        self.root.chmod(0o755)
        self.conf_path = self.root / "netdata.conf"
        self.config_dir = self.root / "etc"       # user config dir
        self.plugins_dir = self.root / "plugins.d"
        self.cache_dir = self.root / "cache"
        self.lib_dir = self.root / "lib"
        self.log_dir = self.root / "log"
        self.stdio_path = self.root / "stdio.log"
        try:
            self._setup(plugins, plugin_configs, hostname, stream_to, accept_stream_key,
                        update_every, caps, netdata_conf, helpers)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _setup(self, plugins, plugin_configs, hostname, stream_to, accept_stream_key,
               update_every, caps, netdata_conf, helpers):
        uid = pwd.getpwnam(NETDATA_USER).pw_uid
        gid = grp.getgrnam(NETDATA_USER).gr_gid
        for d in (self.cache_dir, self.lib_dir, self.log_dir):
            d.mkdir()
            os.chown(d, uid, gid)
            d.chmod(0o755)
        self.config_dir.mkdir(mode=0o755)
        self.plugins_dir.mkdir()
        os.chown(self.plugins_dir, 0, gid)
        self.plugins_dir.chmod(0o750)

        plugins = dict(plugins or {})
        for name, source in plugins.items():
            if not name.endswith(".plugin"):
                raise ValueError(f"plugin file name must end in .plugin: {name}")
            dest = self.plugins_dir / name
            shutil.copyfile(source, dest)
            os.chown(dest, 0, gid)
            dest.chmod(0o750)
            if caps is True or (caps and not isinstance(caps, bool) and name in caps):
                if shutil.which("setcap") is None:
                    raise RuntimeError("setcap is missing (Debian libcap2-bin)")
                subprocess.run(["setcap", PLUGIN_CAPS, str(dest)], check=True,
                               capture_output=True, text=True)
        if helpers is None:
            helpers = [p for p in (f"{STOCK_PLUGINS_DIR}/{h}" for h in HELPERS)
                       if os.path.exists(p)]
        for source in helpers:
            dest = self.plugins_dir / Path(source).name
            shutil.copyfile(source, dest)
            dest.chmod(0o755)
        for name, text in (plugin_configs or {}).items():
            path = self.config_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o644)
        # Anonymous statistics: opted out by file and by DO_NOT_TRACK.
        (self.config_dir / ".opt-out-from-anonymous-statistics").touch()
        (self.config_dir / ".environment").touch()
        for d in ("health.d", "statsd.d", "go.d", "python.d", "charts.d"):
            (self.config_dir / d).mkdir(exist_ok=True)
        cloud = self.lib_dir / "cloud.d"
        cloud.mkdir()
        (cloud / "cloud.conf").write_text("[global]\n    enabled = no\n")
        os.chown(cloud, uid, gid)

        stream = None
        if stream_to is not None and not (self.plugins_dir / "system-info.sh").exists():
            raise RuntimeError("streaming needs system-info.sh (Debian netdata-plugins-bash): "
                               "without it Netdata 1.37's stream sender aborts")
        if stream_to is not None:
            parent_port, key = stream_to
            stream = {"stream": {
                "enabled": True,
                "destination": f"tcp:127.0.0.1:{parent_port}",
                "api key": key,
                "timeout seconds": 60,
                "reconnect delay seconds": 1,
                "enable replication": False,
            }}
        if accept_stream_key is not None:
            stream = stream or {"stream": {"enabled": False}}
            stream[accept_stream_key] = {
                "enabled": True,
                "allow from": "127.0.0.1 localhost *",
                "default memory mode": "ram",
                "health enabled by default": False,
                "enable replication": False,
            }
        if stream is not None:
            path = self.config_dir / "stream.conf"
            path.write_text(_conf_text(stream))
            path.chmod(0o644)

        plugin_switches = {opt: False for opt in INTERNAL_PLUGINS_OFF}
        plugin_switches["enable running new plugins"] = False
        plugin_switches["check for new plugins every"] = 60
        for name in plugins:
            plugin_switches[name[:-len(".plugin")]] = True
        self.sections = {
            "global": {
                "hostname": hostname,
                # The compiled-in default is nobody: Debian's own
                # /etc/netdata/netdata.conf is what says netdata.
                "run as user": NETDATA_USER,
            },
            "db": {
                "mode": "ram",
                "update every": update_every,
            },
            "directories": {
                "config": self.config_dir,
                "stock config": STOCK_CONFIG_DIR,
                "cache": self.cache_dir,
                "lib": self.lib_dir,
                "log": self.log_dir,
                "plugins": self.plugins_dir,
                "web": WEB_DIR,
                "home": self.lib_dir,
            },
            "logs": {
                "debug": "none",
                "access": "none",
                "error": self.log_dir / "error.log",
                "health": "none",
            },
            "web": {
                "bind to": None,         # set by _write_conf()
                "web server threads": 2,
                "allow connections from": "localhost *",
                "allow dashboard from": "localhost *",
                "allow netdata.conf from": "localhost *",
            },
            "health": {"enabled": False},
            "registry": {"enabled": False},
            "plugins": plugin_switches,
        }
        for section, opts in (netdata_conf or {}).items():
            self.sections.setdefault(section, {}).update(opts)
        self._write_conf()

    def _write_conf(self):
        """Picks a free loopback port and writes netdata.conf."""
        self.port = free_port()
        self.sections["web"]["bind to"] = f"127.0.0.1:{self.port}"
        self.conf_path.write_text(_conf_text(self.sections))

    # ---------------------------------------------------------------- life

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def dashboard_url(self, menu, after=-60, host=None):
        """The 1.37 dashboard (Debian netdata-web) scrolled to a section:
        menu is the chart type (the part of the id before the dot), e.g.
        "kvm" for kvm.*; after is the window in seconds before now."""
        base = self.url + (f"/host/{urllib.parse.quote(host)}/" if host else "/")
        return f"{base}#menu_{menu};after={after};before=0"

    def start(self, timeout=60):
        """Starts `netdata -D -c conf` and waits for /api/v1/info. If the
        port picked was taken meanwhile, retries on another one."""
        for attempt in range(3):
            try:
                return self._start(timeout)
            except AssertionError:
                if self.running() or "Cannot listen on any API socket" not in self.log():
                    raise
                self.stdio_path.rename(self.root / f"stdio-{attempt}.log")
                (self.log_dir / "error.log").rename(self.root / f"error-{attempt}.log")
                self._write_conf()
        return self._start(timeout)

    def _start(self, timeout):
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LC_ALL": "C",
            "TZ": "UTC",
            "DO_NOT_TRACK": "1",
            "HOME": str(self.lib_dir),
            **self.extra_env,
        }
        t0 = time.monotonic()
        with open(self.stdio_path, "ab") as out:
            self.proc = subprocess.Popen([self.binary, "-D", "-c", str(self.conf_path)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=env, cwd=self.root, start_new_session=True)
        self.pid = self.proc.pid
        self._wait_ready(t0, timeout, f"netdata {self.hostname} on {self.url}")
        return self

    def _wait_ready(self, t0, timeout, what):
        """Waits for /api/v1/info of the netdata just started at t0."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"netdata exited with {self.proc.returncode}:\n"
                                     + self.log()[-4000:])
            try:
                return self.api("/api/v1/info", timeout=2)
            except (OSError, ValueError):
                return None
        wait_until(ready, timeout, step=0.1, what=what)
        self.start_seconds = time.monotonic() - t0

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _our_processes(self):
        """{pid: starttime}: this netdata's descendants, plus any process
        (and its descendants) running a file from, or with its cwd in, this
        instance's private directory: plugins orphaned by a crashed daemon
        are found that way."""
        table = _process_table()
        roots = [self.pid] if self.running() else []
        prefix = str(self.root) + "/"
        for pid in table:
            paths = _argv(pid)[:3]
            for link in ("exe", "cwd"):
                with contextlib.suppress(OSError):
                    paths.append(os.readlink(f"/proc/{pid}/{link}") + "/")
            if any(p.startswith(prefix) for p in paths):
                roots.append(pid)
        return _descendants(roots, table)

    def stop(self, timeout=30, children_timeout=10):
        """SIGTERM to the daemon by pid (SIGKILL by pid after timeout), then
        waits for the processes it started (plugins and their children) to
        go, by pid; any still there after children_timeout get SIGTERM then
        SIGKILL by pid and are listed in self.stray_processes as
        (pid, argv). Copies the logs to tmp_path/netdata-<hostname>[-N] and
        removes the private directory. Returns the daemon's exit status
        (negative: killed by that signal; None if never started)."""
        status = None
        if self.proc is not None:
            ours = self._our_processes()
            ours.pop(self.pid, None)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.send_signal(signal.SIGKILL)
                    self.proc.wait(timeout=timeout)
            status = self.proc.returncode
            self.exit_status = status
            ours.update(self._our_processes())

            def alive():
                return {p: s for p, s in ours.items() if _same_process_alive(p, s)}
            deadline = time.monotonic() + children_timeout
            while alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                left = alive()
                if not left:
                    break
                for pid in left:
                    if sig == signal.SIGTERM:
                        self.stray_processes.append((pid, _argv(pid)))
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                deadline = time.monotonic() + 5
                while alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
            self.proc = None
        if self.root.exists():
            keep = self.tmp_path / f"netdata-{self.hostname}"
            n = 1
            while keep.exists():
                n += 1
                keep = self.tmp_path / f"netdata-{self.hostname}-{n}"
            with contextlib.suppress(OSError):
                keep.mkdir(parents=True)
                for src in (self.conf_path, self.stdio_path, self.log_dir / "error.log",
                            self.config_dir / "stream.conf"):
                    if src.exists():
                        shutil.copy(src, keep / src.name)
            shutil.rmtree(self.root, ignore_errors=True)
        return status

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ queries

    def api(self, path, host=None, timeout=10, **params):
        """GET path (optionally under /host/<host>) and decode JSON; raises
        urllib.error.HTTPError on HTTP errors."""
        if host is not None:
            path = f"/host/{urllib.parse.quote(host)}{path}"
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = self.url + path + ("?" + query if query else "")
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read().decode())

    def _api_or_none(self, path, **kw):
        try:
            return self.api(path, **kw)
        except urllib.error.HTTPError as e:
            if e.code in (400, 404):
                return None
            raise

    def charts(self, host=None):
        """The "charts" member of /api/v1/charts: {chart_id: chart}."""
        return self.api("/api/v1/charts", host=host)["charts"]

    def chart(self, chart_id, host=None):
        """/api/v1/chart?chart=ID, or None if Netdata does not know it."""
        return self._api_or_none("/api/v1/chart", host=host, chart=chart_id)

    def data(self, chart_id, after=-10, points=10, options=None, host=None, **params):
        """/api/v1/data?chart=ID&format=json; None for an unknown chart."""
        return self._api_or_none("/api/v1/data", host=host, chart=chart_id, format="json",
                                 after=after, points=points, options=options, **params)

    def context(self, ctx, options="instances,labels", host=None):
        """/api/v1/context?context=CTX&options=...; None for an unknown context."""
        return self._api_or_none("/api/v1/context", host=host, context=ctx, options=options)

    def contexts(self, options="instances,labels", host=None):
        return self.api("/api/v1/contexts", host=host, options=options)

    def wait_for_chart(self, chart, timeout=30, host=None):
        """chart: an id (returns that chart's entry from charts()) or a
        predicate called with the charts() dict (returns its truthy value)."""
        def check():
            try:
                charts = self.charts(host=host)
            except urllib.error.HTTPError:
                return None        # e.g. 404 while a child is not known yet
            if callable(chart):
                return chart(charts)
            return charts.get(chart)
        if not self.running():
            raise AssertionError(f"netdata {self.hostname} is not running")
        try:
            return wait_until(check, timeout, step=0.2, what=f"chart {chart} on {self.hostname}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- netdata log tail ---\n{self.log()[-3000:]}") from None

    def log(self):
        """Netdata's stdout/stderr before the log files opened, then
        error.log, where plugins' stderr lands."""
        text = ""
        for path in (self.stdio_path, self.log_dir / "error.log"):
            with contextlib.suppress(FileNotFoundError):
                text += path.read_text(errors="replace")
        return text

    def plugin_pids(self, name):
        """Pids of live processes running plugin `name` (file name, e.g.
        "kvm_stats.plugin") whose parent chain leads to this netdata."""
        if not self.running():
            return []
        target = str(self.plugins_dir / name)
        pids = []
        for pid in _descendants([self.pid]):
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                exe = None
            argv = _argv(pid)
            # An ELF plugin: exe (or argv[0]) is the plugin. A script: the
            # kernel runs `interpreter [arg] script ...`.
            if exe == target or target in argv[:3]:
                pids.append(pid)
        return sorted(pids)


@contextlib.contextmanager
def netdata_factory(tmp_path):
    """Yields start(**kwargs) -> a started Netdata(tmp_path, **kwargs);
    stops every daemon it started on exit, even when the test failed."""
    started = []

    def start(timeout=60, **kwargs):
        nd = Netdata(tmp_path, **kwargs)
        started.append(nd)
        return nd.start(timeout=timeout)

    try:
        yield start
    finally:
        errors = []
        for nd in reversed(started):
            try:
                nd.stop()
            except Exception as e:    # keep stopping the others
                errors.append(e)
        if errors:
            raise errors[0]
