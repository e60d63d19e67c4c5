"""common/debugfs.c on the real /sys/kernel/debug/kvm of this machine.

Needs root and /dev/kvm (SKIP otherwise). If debugfs is not mounted, the
test mounts it (`mount -t debugfs none /sys/kernel/debug`) and leaves it
mounted: other tools and tests may rely on it from then on, and unmounting
a file system someone else may be using is not a test's business.

A tiny driver program (DRIVER_SRC below, compiled from common/debugfs.c and
common/decode.c into the test's tmp dir) runs debugfs_scan(),
debugfs_open() and debugfs_sample() and prints what they returned as JSON.
The ground truth is tests/fixtures/testvm (a VMM on the raw KVM API that
keeps its stats fds) and `kvmstat --json`, which reads the same stats
through those stats fds.

Under kernel lockdown (this machine: lockdown=integrity) debugfs refuses
every file with a write bit with EPERM and serves the 0444 (INSTANT) ones;
the test checks whichever of the two worlds it finds.
"""
import ctypes
import json
import os
import signal
import stat
import subprocess

import pytest

from conftest import BUILD, ROOT, kvm_missing_reason, wait_for

DEBUGFS = "/sys/kernel/debug"
KVM_DEBUGFS = f"{DEBUGFS}/kvm"
GOLDEN = ROOT / "tests/fixtures/golden"
SYS_pidfd_getfd = 438


def missing_reason():
    if os.geteuid() != 0:
        return "SKIP: debugfs is root-only: run as root"
    return kvm_missing_reason()


pytestmark = pytest.mark.skipif(missing_reason() is not None,
                                reason=missing_reason() or "")

DRIVER_SRC = r"""
/*
 * debugfs_read ROOT PID VM_FD [--wait] [KNOWN.bin...]: scan, open (typed by
 * the binary stats schemas in the KNOWN files) and sample once, printed as
 * one JSON line. With --wait, then waits for a line on stdin and samples
 * again (a second JSON line), to see what a sample meets after a change.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmstats.h"

static int print_scanned(pid_t pid, int vm_fd, void *ctx)
{
	int *n = ctx;

	printf("%s[%d, %d]", (*n)++ ? ", " : "", (int)pid, vm_fd);
	return 0;
}

static int load_schema(const char *path, struct kvmstats_schema **ret)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	close(fd);
	return decode_schema(buf, len, ret);
}

static int parse_int(const char *s, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static void print_sample(struct debugfs_vm *vm)
{
	const struct kvmstats_schema *s = debugfs_schema(vm);
	uint64_t *v = calloc(s->num_values + 1, sizeof(*v));
	int r = v ? debugfs_sample(vm, v) : -ENOMEM;

	printf("\"sample\": %d, \"values\": {", r);
	for (uint32_t i = 0; r == 0 && i < s->num_desc; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", s->desc[i].name,
		       (unsigned long long)v[s->desc[i].index]);
	printf("}");
	free(v);
}

int main(int argc, char **argv)
{
	struct kvmstats_schema *known[8] = { 0 };
	struct debugfs_vm *vm = NULL;
	unsigned denied = 0;
	size_t nknown = 0;
	int n = 0, r, i = 4, pid, vm_fd;
	int wait = argc > 4 && strcmp(argv[4], "--wait") == 0;

	if (argc < 4 || parse_int(argv[2], &pid) < 0 ||
	    parse_int(argv[3], &vm_fd) < 0)
		return 2;
	for (i += wait; i < argc && nknown < 8; i++)
		if (load_schema(argv[i], &known[nknown++]) < 0)
			return 3;

	printf("{\"scan\": [");
	r = debugfs_scan(argv[1], print_scanned, &n);
	printf("], \"scan_result\": %d", r);
	r = debugfs_open(argv[1], pid, vm_fd,
			 (const struct kvmstats_schema *const *)known, nknown,
			 NULL, NULL, &vm, &denied);
	printf(", \"open\": %d", r);
	if (r == 0) {
		const struct kvmstats_schema *s = debugfs_schema(vm);

		printf(", \"denied\": %u, \"stats\": [", denied);
		for (uint32_t j = 0; j < s->num_desc; j++)
			printf("%s{\"name\": \"%s\", \"type\": \"%s\", "
			       "\"unit\": \"%s\", \"exponent\": %d, "
			       "\"index\": %u}", j ? ", " : "",
			       s->desc[j].name,
			       decode_type_name(s->desc[j].type),
			       decode_unit_name(s->desc[j].unit),
			       s->desc[j].exponent, s->desc[j].index);
		printf("], ");
		print_sample(vm);
	}
	printf("}\n");
	fflush(stdout);
	if (r == 0 && wait) {
		char line[16];

		if (fgets(line, sizeof(line), stdin)) {
			printf("{");
			print_sample(vm);
			printf("}\n");
		}
	}
	debugfs_close(vm);
	for (size_t k = 0; k < nknown; k++)
		schema_unref(known[k]);
	return 0;
}
"""


@pytest.fixture(scope="module")
def kvm_debugfs():
    """/sys/kernel/debug/kvm, mounting debugfs first if nobody has."""
    if subprocess.run(["mountpoint", "-q", DEBUGFS]).returncode != 0:
        # Left mounted on purpose: see the module docstring.
        subprocess.run(["mount", "-t", "debugfs", "none", DEBUGFS], check=True)
    if not os.path.isdir(KVM_DEBUGFS):
        pytest.skip(f"SKIP: {KVM_DEBUGFS} missing although debugfs is mounted "
                    "(KVM built without debugfs?)")
    return KVM_DEBUGFS


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """The driver, built from the sources (not a build dir's library)."""
    out = tmp_path_factory.mktemp("debugfs") / "debugfs_read"
    src = out.with_suffix(".c")
    src.write_text(DRIVER_SRC)
    subprocess.run(["cc", "-std=gnu11", "-O2", "-g", "-D_GNU_SOURCE",
                    "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'common'}",
                    str(ROOT / "common/debugfs.c"), str(ROOT / "common/decode.c"),
                    str(src), "-o", str(out)], check=True)
    return out


def run_driver(driver, pid, vm_fd, *known):
    out = subprocess.run([str(driver), KVM_DEBUGFS, str(pid), str(vm_fd),
                          *map(str, known)],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def start_vm(testvm):
    vm = testvm("--vcpus", 2, "--mmio", 100, "--hold", "vm,vcpu")
    vm_fd = vm.counts()["vms"][0]["vm_fd"]
    assert os.path.isdir(f"{KVM_DEBUGFS}/{vm.pid}-{vm_fd}")
    return vm, vm_fd


def vm_files(vm_dir):
    """{name: mode} of the regular files of a VM's debugfs directory."""
    files = {}
    for name in os.listdir(vm_dir):
        st = os.lstat(f"{vm_dir}/{name}")
        if stat.S_ISREG(st.st_mode):
            files[name] = stat.S_IMODE(st.st_mode)
    return files


def locked_down(vm_dir):
    """Whether debugfs refuses the files with a write bit (EPERM)."""
    try:
        os.close(os.open(f"{vm_dir}/exits", os.O_RDONLY))
        return False
    except PermissionError:
        return True


def kvmstat_json(pid):
    out = subprocess.run([str(BUILD / "kvmstat"), "--json", "--pid", str(pid),
                          "1", "1"], capture_output=True, text=True,
                         timeout=60, check=True)
    vms = json.loads(out.stdout.splitlines()[-1])["vms"]
    assert len(vms) == 1, out.stdout
    return vms[0]


def test_scan_finds_the_test_vm(kvm_debugfs, driver, testvm):
    vm, vm_fd = start_vm(testvm)
    got = run_driver(driver, vm.pid, vm_fd)
    assert [vm.pid, vm_fd] in got["scan"]
    assert got["scan_result"] == len(got["scan"])
    # Exactly the "<pid>-<fd>" directories, nothing else of the top level.
    dirs = {n for n in os.listdir(kvm_debugfs)
            if os.path.isdir(f"{kvm_debugfs}/{n}")}
    assert {f"{p}-{f}" for p, f in got["scan"]} <= dirs


def test_open_serves_what_lockdown_allows(kvm_debugfs, driver, testvm):
    vm, vm_fd = start_vm(testvm)
    vm_dir = f"{kvm_debugfs}/{vm.pid}-{vm_fd}"
    got = run_driver(driver, vm.pid, vm_fd)
    assert got["open"] == 0 and got["sample"] == 0
    files = vm_files(vm_dir)
    served = {s["name"] for s in got["stats"]}
    histograms = {n for n in files if n.endswith("_hist")}
    assert histograms, files      # x86 has halt_wait_hist & co.
    assert not served & histograms
    assert [s["index"] for s in got["stats"]] == list(range(len(served)))
    assert [s["name"] for s in got["stats"]] == sorted(served)
    instant = {n for n, mode in files.items() if not mode & 0o222}
    assert {"pages_4k", "pages_2m", "pages_1g"} <= instant
    if locked_down(vm_dir):
        # Everything with a write bit is refused and counted, except the
        # histograms, which are left out before any read.
        writable = {n for n, mode in files.items() if mode & 0o222}
        assert "exits" in writable
        assert served == instant
        assert got["denied"] == len(writable - histograms)
        assert all(s["type"] == "instant" for s in got["stats"])
    else:
        assert got["denied"] == 0
        assert instant <= served and "exits" in served
        by_name = {s["name"]: s for s in got["stats"]}
        assert by_name["exits"]["type"] == "cumulative"
        assert by_name["halt_wait_ns"]["unit"] == "seconds"
        assert by_name["halt_wait_ns"]["exponent"] == -9
        assert set(got["values"]) == served


def test_values_equal_the_stats_fd(kvm_debugfs, driver, testvm):
    vm, vm_fd = start_vm(testvm)
    got = run_driver(driver, vm.pid, vm_fd)
    k = kvmstat_json(vm.pid)
    vm_stats = {n: s["value"] for n, s in k["stats"].items()}
    vcpu_sums = {}
    for vcpu in k["vcpus"]:
        for n, s in vcpu["stats"].items():
            if isinstance(s["value"], int):
                vcpu_sums[n] = vcpu_sums.get(n, 0) + s["value"]
    compared = 0
    for name, value in got["values"].items():
        # A VM stat as is; a vCPU stat summed over the vCPUs, as debugfs
        # does (kvm_get_stat_per_vcpu()). The VM is halted: nothing moves.
        if name in vm_stats:
            assert value == vm_stats[name], name
        elif name in vcpu_sums:
            assert value == vcpu_sums[name], name
        else:
            continue
        compared += 1
    assert {"pages_4k", "pages_2m", "pages_1g", "mmu_unsync"} <= set(got["values"])
    assert compared >= 4
    if not locked_down(f"{kvm_debugfs}/{vm.pid}-{vm_fd}"):
        assert got["values"]["mmio_exits"] == 200      # 2 vCPUs x 100


def test_known_schemas_type_the_files(kvm_debugfs, driver, testvm):
    blobs = [GOLDEN / "vm.bin", GOLDEN / "vcpu.bin"]
    if not all(b.exists() for b in blobs):
        pytest.skip(f"SKIP: no golden stats blobs in {GOLDEN} (make golden)")
    vm, vm_fd = start_vm(testvm)
    plain = run_driver(driver, vm.pid, vm_fd)
    typed = run_driver(driver, vm.pid, vm_fd, *blobs)
    assert typed["open"] == 0 and typed["sample"] == 0
    by_name = {s["name"]: s for s in typed["stats"]}
    # The same files are served and refused; blocking is a vCPU boolean
    # in the schema, but debugfs sums it over the vCPUs: a count.
    assert set(by_name) == {s["name"] for s in plain["stats"]}
    assert typed["denied"] == plain["denied"]
    assert by_name["pages_4k"]["type"] == "instant"
    if "blocking" in by_name:
        assert by_name["blocking"]["unit"] == "none"


def test_sample_after_the_vmm_exits_is_esrch(kvm_debugfs, driver, testvm):
    vm, vm_fd = start_vm(testvm)
    vm_dir = f"{kvm_debugfs}/{vm.pid}-{vm_fd}"
    proc = subprocess.Popen([str(driver), kvm_debugfs, str(vm.pid), str(vm_fd),
                             "--wait"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["open"] == 0 and first["sample"] == 0
        vm.stop()
        # The driver holds the VM's directory open: that must not keep the
        # VM (and its directory) alive.
        wait_for(lambda: not os.path.exists(vm_dir), what=f"{vm_dir} removed")
        proc.stdin.write("again\n")
        proc.stdin.flush()
        second = json.loads(proc.stdout.readline())
        assert second["sample"] == -3      # -ESRCH
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def test_directory_outlives_the_vmm_while_a_stats_fd_is_held(kvm_debugfs, driver,
                                                             testvm):
    """KVM_STATS_FACTS: a stats fd holds a reference on the VM (6.5+)."""
    vm, vm_fd = start_vm(testvm)
    vm_dir = f"{kvm_debugfs}/{vm.pid}-{vm_fd}"
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(vm.pid)
    stats_fd = -1
    try:
        for n in os.listdir(f"/proc/{vm.pid}/fd"):
            if os.readlink(f"/proc/{vm.pid}/fd/{n}") == "anon_inode:kvm-vm-stats":
                stats_fd = libc.syscall(SYS_pidfd_getfd, pidfd, int(n), 0)
                assert stats_fd >= 0, os.strerror(ctypes.get_errno())
                break
        assert stats_fd >= 0, "testvm --hold vm,vcpu holds no VM stats fd"
        vm.stop()
        assert os.path.isdir(vm_dir)
        got = run_driver(driver, vm.pid, vm_fd)
        assert got["open"] == 0 and got["sample"] == 0
        assert "pages_4k" in got["values"]
    finally:
        os.close(pidfd)
        if stats_fd >= 0:
            os.close(stats_fd)
    wait_for(lambda: not os.path.exists(vm_dir),
             what=f"{vm_dir} removed once the stats fd is closed")
