# SPDX-License-Identifier: MIT
"""Real, isolated collectd, carbon-cache and InfluxDB daemons for integration
tests (a helper, not a test).

Each class runs a Debian 12 daemon in the foreground, as a child of the test,
with a config of its own in a private directory (tempfile.mkdtemp under /tmp,
mode 0755 so that an exec'd script running as `nobody` can read it), on free
127.0.0.1 ports picked by binding port 0. stop() sends SIGTERM by pid, waits,
sends SIGKILL by pid if the daemon hangs, copies the logs to the test's tmp
directory (`tmp`, e.g. pytest's tmp_path) and removes the private directory.

    Collectd   Debian collectd-core 5.12  (/usr/sbin/collectd -f -C conf)
    Carbon     Debian graphite-carbon 1.1.7 (carbon-cache --nodaemon) and
               python3-whisper to read the .wsp files
    InfluxDB   Debian influxdb 1.6.7       (influxd -config conf), with its
               native collectd (network protocol) listener

Usage in a test module:

    from daemons import daemon_factory

    @pytest.fixture
    def daemons(tmp_path):
        with daemon_factory(tmp_path) as d:
            yield d

    def test_x(daemons):
        carbon = daemons.carbon()                      # started
        influx = daemons.influxdb()                    # started
        cd = daemons.collectd(plugin_dir_extra=BUILD / "collectd",
                              plugin_blocks='LoadPlugin kvm_stats\\n',
                              csv=True, graphite=carbon, network=influx)
        rows = cd.wait_for_csv("kvm_stats-vm1", "derive-mmio_exits", rows=2)
        path = carbon.wait_for_metric("kvmtest.kvm_stats-vm1.derive-mmio_exits")
        doc = influx.wait_for("SELECT * FROM kvm_stats_value", lambda r: rows_of(r))

Every daemon the factory made is stopped when the `with` block ends, also
when the test failed; collectd instances first, so they flush to the others.

collectd 5.12 facts this module relies on (checked on Debian 12):
- `collectd -t` is a no-op in 5.12: it exits 0 before reading the config
  (init_config() tests the flag before configure_collectd()), even for a
  file that does not exist. `collectd -T` does read the config, loads the
  plugins, runs init, one read and shutdown, and exits 1 if the config,
  an init or a read callback failed. Collectd.test_config() uses -T.
- A plugin's complex config callback returning non-zero makes the daemon
  exit 1 ("Error: Parsing the config file failed!"); unknown keys of a
  simple (key/value) config plugin do too. Plugins that only log an error
  and return 0 (write_graphite, network) do not.
- Messages go to stderr until the logfile plugin is loaded, then only to
  the log file: the logfile plugin is always loaded first here.
- write_graphite and network buffer values until their ~1.4 KB buffer is
  full; here they are loaded with `FlushInterval <Interval>` so values reach
  carbon/InfluxDB within about one interval.
- A plugin symlinked into PluginDir is refused: plugins are copied.
"""
import contextlib
import glob as globmod
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import sanitizer_runtimes

COLLECTD_BIN = "/usr/sbin/collectd"
COLLECTD_PLUGIN_DIR = "/usr/lib/collectd"
TYPES_DB = "/usr/share/collectd/types.db"
CARBON_BIN = "/usr/bin/carbon-cache"
INFLUXD_BIN = "/usr/bin/influxd"
VALGRIND_BIN = "/usr/bin/valgrind"

# Debian packages, for the project's install script.
DEBIAN_PACKAGES = ("collectd-core", "collectd-dev", "graphite-carbon", "python3-whisper",
                   "influxdb", "valgrind")

# Debian plugins always copied into a Collectd's private PluginDir (outputs
# and logging), and the read plugins copied by default.
BASE_PLUGINS = ("logfile", "csv", "write_graphite", "network", "unixsock")
DEFAULT_READ_PLUGINS = ("load", "exec", "cpu", "memory")

READY_LINE = "Initialization complete, entering read-loop."

_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}


# ------------------------------------------------------------------ helpers

def _missing(binary, package):
    if not os.path.exists(binary):
        return f"SKIP: {binary} is missing (Debian package {package})"
    return None


def collectd_missing_reason():
    return _missing(COLLECTD_BIN, "collectd-core") or _missing(TYPES_DB, "collectd-core")


def carbon_missing_reason():
    reason = _missing(CARBON_BIN, "graphite-carbon")
    if reason:
        return reason
    import importlib.util
    if importlib.util.find_spec("whisper") is None:
        return "SKIP: python module whisper is missing (Debian package python3-whisper)"
    return None


def influxdb_missing_reason():
    return _missing(INFLUXD_BIN, "influxdb")


def valgrind_missing_reason():
    return _missing(VALGRIND_BIN, "valgrind")


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that was free a moment ago (TCP or SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=30.0, step=0.1, what="condition"):
    """Returns the first truthy predicate() or raises AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _starttime(pid):
    """The kernel start time of a live, non-zombie pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _descendants(root):
    """{pid: starttime} of the live descendants of root (root excluded)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            continue
        children.setdefault(int(fields[1]), []).append((int(entry), int(fields[19])))
    found, todo = {}, [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def _signal_if_same(pid, starttime, sig):
    if _starttime(pid) == starttime:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _read(path):
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _number(text):
    try:
        return int(text)
    except ValueError:
        return float(text)


# ------------------------------------------------------------------ base

class _Daemon:
    """A foreground daemon in a private directory; stopped by pid."""

    name = "daemon"
    stop_timeout = 30.0

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=f"kvmstats-{self.name}-"))
        self.root.chmod(0o755)
        self.stdio_path = self.root / "stdio.log"
        self.proc = None
        self.pid = None
        self.start_seconds = None
        self.stop_seconds = None
        self.exit_status = None
        self.saved_dir = None          # where the logs went at stop()
        self.stray_processes = []      # (pid, argv) of children killed at stop()

    # subclasses: argv(), _ready() -> truthy, _log_files() -> [Path]
    def argv(self):
        raise NotImplementedError

    def _ready(self):
        raise NotImplementedError

    def _log_files(self):
        return [self.stdio_path]

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def output(self):
        """The daemon's stdout and stderr so far."""
        return _read(self.stdio_path if self.saved_dir is None
                     else self.saved_dir / self.stdio_path.name)

    def _start(self, timeout):
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        t0 = time.monotonic()
        with open(self.stdio_path, "ab") as out:
            self.proc = subprocess.Popen([str(a) for a in self.argv()],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=dict(_ENV, HOME=str(self.root),
                                                  **getattr(self, "extra_env", {})),
                                         cwd=self.root,
                                         start_new_session=True)
        self.pid = self.proc.pid

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} "
                                     f"during start-up:\n{self._diagnostics()}")
            return self._ready()
        try:
            wait_until(ready, timeout, step=0.05, what=f"{self.name} to start")
        except AssertionError as e:
            if self.running():
                raise AssertionError(f"{e}\n{self._diagnostics()}") from None
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _diagnostics(self):
        return "\n".join(f"--- {p.name}:\n{_read(p)[-4000:]}" for p in self._log_files())

    def stop(self, timeout=None):
        """SIGTERM by pid, wait; SIGKILL by pid if it hangs. Children the
        daemon left behind are signalled by pid. Saves the logs to tmp and
        removes the private directory. Returns the exit status (negative:
        killed by that signal; None if never started). Idempotent."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.proc is not None and self.exit_status is None:
            t0 = time.monotonic()
            children = _descendants(self.pid) if self.running() else {}
            if self.running():
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
            self.exit_status = self.proc.returncode
            self.stop_seconds = time.monotonic() - t0
            self._reap(children)
        if self.root.exists():
            self._save_logs()
            shutil.rmtree(self.root, ignore_errors=True)
        return self.exit_status

    def _reap(self, children):
        """Waits up to 3 s for the daemon's children to go, then SIGKILLs
        by pid (checking the start time) any still there."""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if all(_starttime(p) != s for p, s in children.items()):
                return
            time.sleep(0.05)
        for pid, start in children.items():
            if _starttime(pid) == start:
                with contextlib.suppress(OSError):
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    self.stray_processes.append((pid, [a.decode() for a in argv if a]))
                _signal_if_same(pid, start, signal.SIGKILL)

    def _save_logs(self):
        dest = self.tmp / f"{self.name}-{self.root.name.rsplit('-', 1)[-1]}"
        dest.mkdir(parents=True, exist_ok=True)
        for path in self._log_files() + self._extra_saved_files():
            if path.is_file():
                shutil.copyfile(path, dest / path.name)
        self.saved_dir = dest

    def _extra_saved_files(self):
        return []


# ------------------------------------------------------------------ collectd

class Collectd(_Daemon):
    """collectd 5.12 in the foreground with a config of its own.

    tmp: where logs are saved at stop() (pytest's tmp_path).
    plugin_dir_extra: a directory whose *.so are copied into the private
        PluginDir (or a single .so file); e.g. the build dir of kvm_stats.so.
    plugin_blocks: config text inserted verbatim after the logfile plugin
        and before the outputs (LoadPlugin lines and <Plugin> blocks).
    interval: the global Interval (seconds) and the outputs' FlushInterval.
    debian_plugins: Debian read plugins copied besides BASE_PLUGINS.
    csv / graphite / network / unixsock: shortcuts for the methods below
        (graphite: a Carbon or a port; network: an InfluxDB or a port).
    valgrind: run under valgrind memcheck (definite leaks are errors,
        --error-exitcode=99); stop() then returns the valgrind log text.
    """

    name = "collectd"

    def __init__(self, tmp, plugin_dir_extra=None, plugin_blocks="", interval=1,
                 hostname="kvmtest", debian_plugins=DEFAULT_READ_PLUGINS, csv=False,
                 graphite=None, network=None, unixsock=False, valgrind=False,
                 valgrind_args=(), log_level="info", env=None):
        super().__init__(tmp)
        # Extra environment, e.g. LD_PRELOAD of the ASan runtime for a
        # sanitizer build of a plugin.
        self.extra_env = dict(env or {})
        try:
            self.hostname = hostname
            self.interval = interval
            self.plugin_blocks = plugin_blocks
            self.log_level = log_level
            self.valgrind = valgrind
            self.valgrind_args = list(valgrind_args)
            self.plugin_dir = self.root / "plugins"
            self.conf_path = self.root / "collectd.conf"
            self.log_path = self.root / "collectd.log"
            self.valgrind_log_path = self.root / "valgrind.log"
            self.pid_file = self.root / "collectd.pid"
            self.data_dir = None
            self.socket_path = None
            self._outputs = []
            self._graphite_nodes = []
            self._network_servers = []
            self.plugin_dir.mkdir(mode=0o755)
            for plugin in tuple(BASE_PLUGINS) + tuple(debian_plugins):
                self.add_plugin(Path(COLLECTD_PLUGIN_DIR) / f"{plugin}.so")
            if plugin_dir_extra is not None:
                extra = Path(plugin_dir_extra)
                sources = [extra] if extra.is_file() else sorted(extra.glob("*.so"))
                if not sources:
                    raise FileNotFoundError(f"no .so plugin in {extra}")
                for so in sources:
                    self.add_plugin(so)
                    self._preload_sanitizers(so)
            if csv:
                self.csv()
            if graphite is not None:
                self.write_graphite(graphite)
            if network is not None:
                self.network(network)
            if unixsock:
                self.unixsock()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    # ------------------------------------------------------------ config

    def _preload_sanitizers(self, so_path):
        """A plugin built with SANITIZE= needs its runtimes loaded first into
        Debian's (uninstrumented) collectd; leak checking stays off there (it
        would judge the whole daemon; valgrind judges the plugin's leaks).
        Under valgrind nothing is preloaded."""
        runtimes = sanitizer_runtimes(so_path)
        if not runtimes or self.valgrind or "LD_PRELOAD" in self.extra_env:
            return
        self.extra_env["LD_PRELOAD"] = ":".join(runtimes)
        self.extra_env.setdefault("ASAN_OPTIONS", "detect_leaks=0")

    def add_plugin(self, so_path):
        """Copies a plugin into the private PluginDir (a copy: collectd
        refuses a symlinked plugin). Returns the copy's path."""
        dest = self.plugin_dir / Path(so_path).name
        shutil.copy(so_path, dest)      # follows symlinks
        dest.chmod(0o644)
        return dest

    def csv(self, store_rates=False):
        """Enables the csv plugin: <DataDir>/<host>/<plugin>[-<pinst>]/
        <type>[-<tinst>]-YYYY-MM-DD. StoreRates false stores raw derive and
        counter values. Returns DataDir."""
        self.data_dir = self.root / "csv"
        self._outputs.append(
            "LoadPlugin csv\n<Plugin csv>\n"
            f'  DataDir "{self.data_dir}"\n'
            f"  StoreRates {'true' if store_rates else 'false'}\n"
            "</Plugin>\n")
        return self.data_dir

    def write_graphite(self, carbon_or_port, node=None, prefix=None, postfix=None,
                       separate_instances=False, store_rates=False, always_append_ds=False,
                       escape_character=None, protocol="tcp"):
        """Adds a write_graphite <Node> sending plaintext to 127.0.0.1:port.
        Defaults give <prefix><host>.<plugin>[-<pinst>].<type>[-<tinst>]
        (plus .<ds name> for types with several data sources). StoreRates
        defaults to false here (raw derive values); collectd's own default
        is true (rates). Can be called again for more nodes."""
        port = getattr(carbon_or_port, "line_port", carbon_or_port)
        node = node or f"node{len(self._graphite_nodes)}"
        lines = [f'  <Node "{node}">', '    Host "127.0.0.1"', f'    Port "{port}"',
                 f'    Protocol "{protocol}"', "    LogSendErrors true",
                 "    ReconnectInterval 1",
                 f"    StoreRates {'true' if store_rates else 'false'}",
                 f"    SeparateInstances {'true' if separate_instances else 'false'}",
                 f"    AlwaysAppendDS {'true' if always_append_ds else 'false'}"]
        if prefix is not None:
            lines.append(f'    Prefix "{prefix}"')
        if postfix is not None:
            lines.append(f'    Postfix "{postfix}"')
        if escape_character is not None:
            lines.append(f'    EscapeCharacter "{escape_character}"')
        lines.append("  </Node>")
        self._graphite_nodes.append("\n".join(lines))

    def network(self, influx_or_port):
        """Adds a network plugin <Server "127.0.0.1" "port"> (collectd
        binary protocol, e.g. to InfluxDB's collectd listener)."""
        port = getattr(influx_or_port, "collectd_port", influx_or_port)
        self._network_servers.append(f'  Server "127.0.0.1" "{port}"')

    def unixsock(self):
        """Enables the unixsock plugin (see command())."""
        self.socket_path = self.root / "collectd.sock"
        self._outputs.append(
            "LoadPlugin unixsock\n<Plugin unixsock>\n"
            f'  SocketFile "{self.socket_path}"\n  SocketPerms "0600"\n'
            "  DeleteSocket true\n</Plugin>\n")
        return self.socket_path

    def base_config(self):
        """The global part of the config (no logfile, no plugins)."""
        return (f"Interval {self.interval}\n"
                f'BaseDir "{self.root}"\n'
                f'PIDFile "{self.pid_file}"\n'
                f'PluginDir "{self.plugin_dir}"\n'
                f'TypesDB "{TYPES_DB}"\n'
                "FQDNLookup false\n"
                f'Hostname "{self.hostname}"\n'
                "AutoLoadPlugin false\n")

    def config_text(self):
        parts = [self.base_config(),
                 "LoadPlugin logfile\n<Plugin logfile>\n"
                 f'  LogLevel "{self.log_level}"\n'
                 f'  File "{self.log_path}"\n'
                 "  Timestamp true\n  PrintSeverity true\n</Plugin>\n",
                 self.plugin_blocks.rstrip("\n") + "\n" if self.plugin_blocks else ""]
        parts += self._outputs
        if self._graphite_nodes:
            parts.append(f"<LoadPlugin write_graphite>\n  FlushInterval {self.interval}\n"
                         "</LoadPlugin>\n<Plugin write_graphite>\n"
                         + "\n".join(self._graphite_nodes) + "\n</Plugin>\n")
        if self._network_servers:
            parts.append(f"<LoadPlugin network>\n  FlushInterval {self.interval}\n"
                         "</LoadPlugin>\n<Plugin network>\n"
                         + "\n".join(self._network_servers) + "\n</Plugin>\n")
        return "\n".join(parts)

    def write_file(self, name, text, mode=0o644):
        """Writes a file into the private directory (readable by other
        users, e.g. an exec plugin script run as nobody). Returns its path."""
        path = self.root / name
        path.write_text(text)
        path.chmod(mode)
        return path

    def test_config(self, conf_text=None, flag="-T", timeout=60):
        """Runs `collectd <flag> -C file` on conf_text (default: this
        instance's own config) and returns (returncode, stdout+stderr).

        flag "-T" (default) reads the config, loads the plugins, runs init,
        one read and shutdown: rc 1 on a config, init or read error. flag
        "-t" is accepted but useless on 5.12: it exits 0 without reading
        the config. Messages logged after a logfile plugin is loaded go to
        that file, not to the output: leave logfile out of conf_text to
        see them here (base_config() has no logfile)."""
        text = self.config_text() if conf_text is None else conf_text
        with tempfile.NamedTemporaryFile("w", dir=self.root, prefix="test-",
                                         suffix=".conf", delete=False) as f:
            f.write(text)
        result = subprocess.run([COLLECTD_BIN, flag, "-C", f.name], capture_output=True,
                                text=True, timeout=timeout,
                                env=dict(_ENV, **getattr(self, "extra_env", {})), cwd=self.root)
        return result.returncode, result.stdout + result.stderr

    # ------------------------------------------------------------ life

    def argv(self):
        cmd = [COLLECTD_BIN, "-f", "-C", self.conf_path]
        if not self.valgrind:
            return cmd
        return [VALGRIND_BIN, "--leak-check=full", "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                "--child-silent-after-fork=yes", f"--log-file={self.valgrind_log_path}",
                *self.valgrind_args, *cmd]

    def start(self, timeout=None):
        """Writes the config, starts collectd -f (under valgrind if asked)
        and waits for "Initialization complete, entering read-loop." in the
        log. Raises AssertionError with the logs if collectd exits first."""
        if timeout is None:
            timeout = 120 if self.valgrind else 30
        self.conf_path.write_text(self.config_text())
        return self._start(timeout)

    def _ready(self):
        return READY_LINE in _read(self.log_path)

    def _log_files(self):
        return [self.conf_path, self.log_path, self.stdio_path, self.valgrind_log_path]

    def stop(self, timeout=None):
        """SIGTERM by pid: collectd leaves its read loop and runs the
        shutdown callbacks ("Exiting normally." in the log). Returns the
        valgrind log text when run under valgrind (exit status in
        self.exit_status: 99 = valgrind found errors), else the exit status."""
        if timeout is None:
            timeout = 120 if self.valgrind else 30
        status = super().stop(timeout)
        if self.valgrind:
            return self.valgrind_log()
        return status

    def log(self):
        """The logfile plugin's output (info and above)."""
        return _read(self.log_path if self.saved_dir is None
                     else self.saved_dir / self.log_path.name)

    def valgrind_log(self):
        return _read(self.valgrind_log_path if self.saved_dir is None
                     else self.saved_dir / self.valgrind_log_path.name)

    def wait_for_log(self, text, timeout=30):
        return wait_until(lambda: text in self.log(), timeout,
                          what=f"{text!r} in the collectd log")

    # ------------------------------------------------------------ outputs

    def csv_files(self):
        """Paths relative to <DataDir>/<host>, e.g. "load/load-2026-01-02"."""
        base = self.data_dir / self.hostname
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

    def csv_rows(self, plugin_instance_dir, type_file):
        """Rows of <DataDir>/<host>/<plugin_instance_dir>/<type_file>-DATE
        (all dates, in order) as dicts {"epoch": float, <ds name>: value};
        values are int when collectd wrote an integer (derive, counter with
        StoreRates false), float otherwise (gauge, nan)."""
        if self.data_dir is None:
            raise RuntimeError("csv output not enabled")
        pattern = (self.data_dir / self.hostname / plugin_instance_dir
                   / f"{type_file}-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]")
        rows = []
        for path in sorted(globmod.glob(globmod.escape(str(pattern.parent)) + "/"
                                        + pattern.name)):
            lines = Path(path).read_text().splitlines()
            if not lines:
                continue
            header = lines[0].split(",")
            for line in lines[1:]:
                cells = line.split(",")
                if len(cells) != len(header):
                    continue        # a line being written
                row = {"epoch": float(cells[0])}
                row.update((h, _number(c)) for h, c in zip(header[1:], cells[1:]))
                rows.append(row)
        return rows

    def wait_for_csv(self, plugin_instance_dir, type_file, rows=1, timeout=30):
        """Waits until csv_rows() has at least `rows` rows; returns them."""
        def enough():
            found = self.csv_rows(plugin_instance_dir, type_file)
            return found if len(found) >= rows else None
        return wait_until(enough, timeout,
                          what=f"{rows} csv rows in {plugin_instance_dir}/{type_file}")

    def command(self, line, timeout=10):
        """Sends one unixsock command (e.g. "LISTVAL", 'GETVAL "h/p/t"')
        and returns (status, message, lines): status > 0 is the number of
        lines that follow, < 0 an error."""
        if self.socket_path is None:
            raise RuntimeError("unixsock not enabled")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.socket_path))
            f = s.makefile("rw")
            f.write(line.rstrip("\n") + "\n")
            f.flush()
            status, _, message = f.readline().rstrip("\n").partition(" ")
            status = int(status)
            lines = [f.readline().rstrip("\n") for _ in range(max(status, 0))]
        return status, message, lines


# ------------------------------------------------------------------ carbon

CARBON_CONF = """[cache]
STORAGE_DIR = {root}/storage/
LOCAL_DATA_DIR = {root}/storage/whisper/
WHITELISTS_DIR = {root}/storage/lists/
CONF_DIR = {root}/conf/
LOG_DIR = {root}/log/
PID_DIR = {root}/
DATABASE = whisper
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 100000
MAX_CREATES_PER_MINUTE = 100000
MIN_TIMESTAMP_RESOLUTION = 1
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line_port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle_port}
USE_INSECURE_UNPICKLER = False
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {cache_query_port}
USE_FLOW_CONTROL = True
LOG_UPDATES = False
LOG_CREATES = True
LOG_CACHE_HITS = False
LOG_LISTENER_CONN_SUCCESS = False
CACHE_WRITE_STRATEGY = sorted
WHISPER_AUTOFLUSH = True
WHISPER_FALLOCATE_CREATE = False
ENABLE_TAGS = False
CARBON_METRIC_INTERVAL = 0
"""


class Carbon(_Daemon):
    """carbon-cache 1.1.7 (Debian graphite-carbon) in the foreground.

    Plaintext on 127.0.0.1:line_port; pickle and cache-query receivers on
    other loopback ports; whisper files under a private STORAGE_DIR with one
    schema for every metric (retentions, default 1 s for an hour). Tags
    (which would query a graphite-web on 127.0.0.1:80) and carbon's own
    metrics are off.
    """

    name = "carbon"
    stop_timeout = 20.0

    def __init__(self, tmp, retentions="1s:1h"):
        super().__init__(tmp)
        self.retentions = retentions
        self.line_port = free_port()
        self.pickle_port = free_port()
        self.cache_query_port = free_port()
        self.conf_dir = self.root / "conf"
        self.whisper_dir = self.root / "storage" / "whisper"
        self.log_dir = self.root / "log"
        for d in (self.conf_dir, self.whisper_dir, self.log_dir):
            d.mkdir(parents=True)
        self.conf_path = self.conf_dir / "carbon.conf"
        self.conf_path.write_text(CARBON_CONF.format(
            root=self.root, line_port=self.line_port, pickle_port=self.pickle_port,
            cache_query_port=self.cache_query_port))
        (self.conf_dir / "storage-schemas.conf").write_text(
            f"[all]\npattern = .*\nretentions = {retentions}\n")
        (self.conf_dir / "storage-aggregation.conf").write_text(
            "[all]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n")

    def argv(self):
        return [CARBON_BIN, f"--config={self.conf_path}", "--nodaemon",
                f"--pidfile={self.root / 'carbon-cache.pid'}", f"--logdir={self.log_dir}",
                "start"]

    def start(self, timeout=30):
        """Starts carbon-cache --nodaemon; waits until the line port accepts."""
        return self._start(timeout)

    def _ready(self):
        return port_accepts(self.line_port)

    def _log_files(self):
        return [self.stdio_path, self.conf_path] + sorted(self.log_dir.glob("*.log"))

    def log(self):
        """carbon's log (with --nodaemon it logs to stdout)."""
        return self.output()

    def send(self, name, value, timestamp=None):
        """Sends one plaintext line (for tests of the harness itself)."""
        ts = int(time.time() if timestamp is None else timestamp)
        with socket.create_connection(("127.0.0.1", self.line_port), timeout=5) as s:
            s.sendall(f"{name} {value} {ts}\n".encode())

    def _path_of(self, name):
        if str(name).endswith(".wsp") or os.sep in str(name):
            return str(name)
        return str(self.whisper_dir / (str(name).replace(".", os.sep) + ".wsp"))

    def metrics(self):
        """The dotted names of all whisper files so far."""
        return sorted(str(p.relative_to(self.whisper_dir))[:-4].replace(os.sep, ".")
                      for p in self.whisper_dir.rglob("*.wsp"))

    def wait_for_metric(self, name, timeout=30):
        """Waits until the whisper file of a dotted metric name (glob
        characters allowed: "kvmtest.*.derive-*") exists; returns its path."""
        pattern = self._path_of(name)

        def found():
            paths = sorted(globmod.glob(pattern))
            return paths[0] if paths else None
        return wait_until(found, timeout, what=f"whisper file for {name}"
                          f" (have: {', '.join(self.metrics()[:20])})")

    def fetch(self, path_or_name, since=None):
        """The non-None (timestamp, value) points of a whisper file (or a
        dotted metric name), oldest first, from `since` (epoch seconds;
        default: the whole retention)."""
        import whisper       # python3-whisper
        path = self._path_of(path_or_name)
        info = whisper.info(path)
        now = int(time.time())
        start = now - info["maxRetention"] + 1 if since is None else int(since)
        (t0, _t1, step), values = whisper.fetch(path, start, now + 1)
        return [(t0 + i * step, v) for i, v in enumerate(values) if v is not None]

    def wait_for_points(self, name, points=1, timeout=30):
        """Waits until the metric has at least `points` points; returns them."""
        def enough():
            try:
                found = self.fetch(self.wait_for_metric(name, timeout=0))
            except (AssertionError, OSError, ValueError):
                return None
            return found if len(found) >= points else None
        return wait_until(enough, timeout, what=f"{points} points of {name}")


# ------------------------------------------------------------------ influxdb

INFLUXDB_CONF = """reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false

[ifql]
  enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[[collectd]]
  enabled = true
  bind-address = "127.0.0.1:{collectd_port}"
  database = "{database}"
  typesdb = "{typesdb}"
  batch-size = 100
  batch-pending = 10
  batch-timeout = "200ms"
  parse-multivalue-plugin = "{multivalue}"
"""


class InfluxDB(_Daemon):
    """influxd 1.6.7 (Debian influxdb) with its collectd listener.

    HTTP on 127.0.0.1:http_port, RPC on 127.0.0.1:rpc_port, the collectd
    network-protocol listener on UDP 127.0.0.1:collectd_port writing to
    database `database` (created at start). typesdb may be a file or a
    directory of types.db files. parse_multivalue: "split" (1.6 default:
    measurement <plugin>_<ds name> per data source) or "join".
    """

    name = "influxdb"

    def __init__(self, tmp, database="collectd", typesdb=TYPES_DB, parse_multivalue="split"):
        super().__init__(tmp)
        self.database = database
        self.http_port = free_port()
        self.rpc_port = free_port()
        self.collectd_port = free_port(socket.SOCK_DGRAM)
        self.conf_path = self.root / "influxdb.conf"
        self.conf_path.write_text(INFLUXDB_CONF.format(
            root=self.root, rpc_port=self.rpc_port, http_port=self.http_port,
            collectd_port=self.collectd_port, database=database, typesdb=typesdb,
            multivalue=parse_multivalue))

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def argv(self):
        return [INFLUXD_BIN, "-config", self.conf_path]

    def start(self, timeout=30):
        """Starts influxd; waits for /ping and the collectd UDP listener,
        then creates the database."""
        self._start(timeout)
        self.query(f'CREATE DATABASE "{self.database}"', db=None, method="POST")
        return self

    def _ready(self):
        if not any("Listening on UDP" in line and "service=collectd" in line
                   for line in self.output().splitlines()):
            return False
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                return r.status == 204
        except OSError:
            return False

    def _log_files(self):
        return [self.stdio_path, self.conf_path]

    def log(self):
        return self.output()

    def query(self, influxql, db="collectd", epoch=None, method="GET"):
        """Runs InfluxQL through HTTP /query; returns the parsed JSON."""
        params = {"q": influxql}
        if db is not None:
            params["db"] = db
        if epoch is not None:
            params["epoch"] = epoch
        data = None
        url = self.url + "/query"
        if method == "POST":
            data = urllib.parse.urlencode(params).encode()
        else:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read() or b"{}")

    def rows(self, influxql, db="collectd", epoch=None):
        """The query's rows as dicts: {"measurement": name, <column>: value,
        and the series' GROUP BY tags}; [] if none or on error."""
        out = []
        for result in self.query(influxql, db=db, epoch=epoch).get("results", []):
            for series in result.get("series", []):
                for values in series.get("values", []):
                    row = {"measurement": series["name"], **series.get("tags", {})}
                    row.update(zip(series["columns"], values))
                    out.append(row)
        return out

    def wait_for(self, influxql, predicate, timeout=30, db="collectd", epoch=None):
        """Repeats the query until predicate(parsed JSON) is truthy;
        returns the parsed JSON."""
        def ok():
            doc = self.query(influxql, db=db, epoch=epoch)
            return doc if predicate(doc) else None
        return wait_until(ok, timeout, step=0.2, what=f"InfluxDB: {influxql}")

    def wait_for_rows(self, influxql, rows=1, timeout=30, db="collectd", epoch=None):
        """Waits until rows() returns at least `rows` rows; returns them."""
        def enough():
            found = self.rows(influxql, db=db, epoch=epoch)
            return found if len(found) >= rows else None
        return wait_until(enough, timeout, step=0.2, what=f"{rows} rows of {influxql}")


# ------------------------------------------------------------------ factory

class DaemonFactory:
    """Makes daemons for one test and stops them all at the end."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.daemons = []

    def _keep(self, daemon, start):
        self.daemons.append(daemon)
        if start:
            daemon.start()
        return daemon

    def collectd(self, start=True, **kwargs):
        """A Collectd(tmp, **kwargs), started unless start=False (then
        configure outputs and call start() yourself)."""
        return self._keep(Collectd(self.tmp, **kwargs), start)

    def carbon(self, start=True, **kwargs):
        return self._keep(Carbon(self.tmp, **kwargs), start)

    def influxdb(self, start=True, **kwargs):
        return self._keep(InfluxDB(self.tmp, **kwargs), start)

    def stop_all(self):
        """Stops collectd instances first (they flush to the others), then
        the rest in reverse order; raises the first error after trying all."""
        order = ([d for d in reversed(self.daemons) if isinstance(d, Collectd)]
                 + [d for d in reversed(self.daemons) if not isinstance(d, Collectd)])
        first_error = None
        for daemon in order:
            try:
                daemon.stop()
            except Exception as e:      # keep stopping the others
                first_error = first_error or e
        if first_error is not None:
            raise first_error


@contextlib.contextmanager
def daemon_factory(tmp):
    """with daemon_factory(tmp_path) as d: d.carbon(), d.influxdb(),
    d.collectd(...); everything is stopped by pid when the block ends."""
    factory = DaemonFactory(tmp)
    try:
        yield factory
    finally:
        factory.stop_all()
