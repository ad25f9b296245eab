"""The executor's sandbox (redisai.executor.sandbox), closed by child processes on themselves: this process is
never sandboxed. Each child is tests/sandbox_probe.py run by this environment's Python, in an empty
directory with the environment an executor gets; it reports what held and the outcome of each thing it
tried, and the tests hold it to: nothing outside the environment read, nothing written, created, removed,
connected, started or signalled, and the frameworks still loading and running new models.

Parts that need a layer this machine lacks (a kernel without Landlock or seccomp, no libseccomp, no cgroup
v2 memory controller for the server) are skipped with the reason.
"""

import base64
import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from redisai.executor import sandbox

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "sandbox_probe.py"
SECRET = "the secret of another tenant"

LANDLOCK_ABI, NO_LANDLOCK_WHY = sandbox.landlock_abi()


def _seccomp_missing() -> str:
    with open("/proc/self/status") as status:
        if "Seccomp:" not in status.read():
            return "the kernel has no seccomp"
    try:
        sandbox._ffi.dlopen(sandbox.LIBSECCOMP)
    except OSError:
        return f"{sandbox.LIBSECCOMP} is not installed"
    return ""


NO_SECCOMP_WHY = _seccomp_missing()
needs_landlock = pytest.mark.skipif(not LANDLOCK_ABI, reason=NO_LANDLOCK_WHY or "no Landlock")
needs_seccomp = pytest.mark.skipif(bool(NO_SECCOMP_WHY), reason=NO_SECCOMP_WHY)
needs_frameworks = pytest.mark.skipif(
    not all(find_spec(name) for name in ("torch", "tensorflow", "onnxruntime", "ai_edge_litert")),
    reason="the backends are not installed (pip install -e '.[backends]')")


def probe(tmp_path: Path, timeout: float = 300, **config) -> tuple[dict, list[dict], str]:
    """Runs the probe with `config`; its report, the lines it printed after it, and its stderr."""
    workdir = tmp_path / "executor"
    workdir.mkdir()
    config = {"src": str(ROOT / "src"), **config}
    result = subprocess.run([sys.executable, str(PROBE)], input=json.dumps(config), capture_output=True, text=True,
                            cwd=workdir, env=sandbox.executor_environment(str(workdir)), timeout=timeout)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, f"probe failed ({result.returncode}):\n{result.stderr[-4000:]}"
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]], result.stderr


@pytest.fixture
def targets(tmp_path, monkeypatch):
    """A secret file the child must not read or change, a path it must not create, and a file in this
    process's cwd (the child's parent) that it must not reach through /proc/<parent>/cwd."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secret = secrets / "secret.txt"
    secret.write_text(SECRET)
    monkeypatch.chdir(secrets)
    return {"secret": str(secret), "created": str(tmp_path / "created"), "parent_cwd_file": secret.name,
            "secret_mode": secret.stat().st_mode}


def untouched(targets) -> None:
    assert Path(targets["secret"]).read_text() == SECRET
    assert Path(targets["secret"]).stat().st_mode == targets["secret_mode"]
    assert not os.path.lexists(targets["created"])


REFUSED = ("PermissionError:EPERM", "PermissionError:EACCES")

# What a hostile model or script tries once the sandbox is closed, and what must come of it.
HOSTILE = {
    # reads outside the environment (Landlock's EACCES; seccomp's EPERM where every open is refused)
    "read_passwd": REFUSED, "read_secret": REFUSED, "read_secret_low_level": REFUSED,
    "read_parent_environ": REFUSED, "read_parent_cwd_file": REFUSED, "read_parent_mem": REFUSED,
    "read_secret_via_proc_self_root": REFUSED, "read_parent_via_proc_self_dotdot": REFUSED, "list_secret_dir": REFUSED,
    # writing, creating, changing
    "write_new_file": REFUSED, "create_low_level": REFUSED, "append_secret": REFUSED,
    "truncate_secret": REFUSED, "unlink_secret": REFUSED, "rename_secret": REFUSED, "chmod_secret": REFUSED,
    "mkdir": REFUSED, "symlink": REFUSED, "link": REFUSED,
    # network, processes, other processes
    "socket_inet": REFUSED, "socket_unix": REFUSED, "socketpair": REFUSED,
    "subprocess": REFUSED, "fork": REFUSED, "execv": REFUSED,
    "kill_parent_0": REFUSED, "ptrace_parent": REFUSED, "process_vm_readv_parent": REFUSED,
    "pidfd_parent": REFUSED, "fcntl_setown_parent": REFUSED,
    # the bounds themselves
    "raise_rlimit": ("ValueError:not allowed to raise maximum limit",), "renice": REFUSED,
    "allocate_past_limit": ("MemoryError:",),
}
# What a computation does, which must keep working.
ALLOWED = {
    "thread": "ok:499500", "kill_self_0": "ok", "memfd_mmap_ftruncate": "ok:hello",
    "allocate_small": "ok:1048576",
}


def check_outcomes(outcomes: dict) -> None:
    for name, expected in HOSTILE.items():
        assert outcomes[name] in expected, f"{name}: {outcomes[name]}"
    # os.system's shell never starts: glibc's system() reports 127, the shell's "could not run".
    assert outcomes["os_system"] == "ok:32512:False", outcomes["os_system"]
    for name, expected in ALLOWED.items():
        assert outcomes[name] == expected, f"{name}: {outcomes[name]}"


# Reads beneath the environment: its files, this process's /proc, modules not imported yet (pure Python, a
# package, a C extension, which is a dlopen). With Landlock they work; without, every open is refused.
READS = ("read_venv_file", "read_stdlib_file", "read_proc_self_status", "import_stdlib_module",
         "import_stdlib_package", "import_stdlib_extension")
CHECKS = [*HOSTILE, "os_system", *ALLOWED, *READS]


@needs_landlock
@needs_seccomp
def test_closed_executor_reaches_nothing_but_its_environment(tmp_path, targets):
    report, _, _ = probe(tmp_path, checks=CHECKS, memory_limit=1 << 30, **targets)
    layers = report["layers"]
    assert layers["seccomp"] and layers["no_new_privs"] and layers["capabilities_dropped"], layers
    assert layers["landlock"] == LANDLOCK_ABI, layers
    assert (layers["memory"], layers["memory_limit"]) == ("rlimit_data", 1 << 30), layers
    outcomes = report["outcomes"]
    check_outcomes(outcomes)
    for name in READS:
        assert outcomes[name].startswith("ok"), f"{name}: {outcomes[name]}"
    untouched(targets)
    assert report["begin_seconds"] < 5 and report["close_seconds"] < 5  # milliseconds, measured


x86_64 = pytest.mark.skipif(os.uname().machine != "x86_64", reason="the raw system call numbers are x86_64's")


@needs_seccomp
@x86_64
def test_calls_a_computation_never_makes_are_refused(tmp_path, targets):
    """Made raw, past Python: io_uring (whose operations seccomp never sees), bpf, mount, namespaces,
    modules, handles, other processes, System V IPC, priorities, limits... all EPERM; clone3 and openat2
    ENOSYS, so that glibc falls back to the calls whose flags the filter reads."""
    report, _, _ = probe(tmp_path, checks=["raw_syscalls"], **targets)
    results = json.loads(report["outcomes"]["raw_syscalls"][3:])
    assert results.pop("clone3") == results.pop("openat2") == "ENOSYS"
    assert {name: code for name, code in results.items() if code != "EPERM"} == {}


@needs_seccomp
@x86_64
def test_another_abi_ends_the_process(tmp_path, targets):
    """A call through the x32 ABI (what only an exploit makes) kills the executor: the filter's checks on
    arguments are written for x86_64's numbers."""
    workdir = tmp_path / "executor"
    workdir.mkdir()
    config = {"src": str(ROOT / "src"), "checks": ["thread", "x32_syscall"], **targets}
    result = subprocess.run([sys.executable, str(PROBE)], input=json.dumps(config), capture_output=True,
                            text=True, cwd=workdir, env=sandbox.executor_environment(str(workdir)), timeout=300)
    assert result.returncode == -31 and not result.stdout, (result.returncode, result.stdout, result.stderr[-2000:])


@needs_landlock
@needs_seccomp
def test_threads_started_before_close_are_closed_too(tmp_path, targets):
    """The frameworks start their thread pools between begin and close: Landlock reaches those threads
    because they started after it, seccomp because close() synchronises its filter onto every thread."""
    between = ["read_secret", "read_parent_environ", "write_new_file", "socket_inet", "fork", "kill_parent_0",
               "read_venv_file"]
    report, _, _ = probe(tmp_path, between_checks=between, **targets)
    outcomes = report["between_outcomes"]
    assert outcomes.pop("read_venv_file").startswith("ok")
    assert all(outcome in REFUSED for outcome in outcomes.values()), outcomes
    untouched(targets)


@needs_seccomp
def test_without_landlock_every_open_is_refused(tmp_path, targets):
    """On a kernel without Landlock (left off here), seccomp refuses every open once closed: reads would
    otherwise reach any file by its absolute path."""
    report, _, _ = probe(tmp_path, checks=CHECKS, memory_limit=1 << 30, landlock=False, **targets)
    layers = report["layers"]
    assert layers["seccomp"] and layers["landlock"] == 0, layers
    assert "every file open refused (no Landlock to say where reads may go)" in layers["notes"]
    outcomes = report["outcomes"]
    check_outcomes(outcomes)
    for name in READS:
        assert not outcomes[name].startswith("ok"), f"{name}: {outcomes[name]}"
    untouched(targets)


@needs_landlock
@needs_seccomp
def test_a_thread_before_begin_means_no_landlock(tmp_path, targets):
    """Landlock binds only the thread that applies it: with another thread running, begin() applies none and
    says why, and close() then refuses every open."""
    report, _, _ = probe(tmp_path, checks=["read_secret", "read_venv_file"], thread_before_begin=True,
                         **targets)
    layers = report["layers"]
    assert layers["landlock"] == 0 and layers["seccomp"], layers
    assert any("2 threads were running" in note for note in layers["notes"]), layers["notes"]
    assert report["outcomes"] == {"read_secret": "PermissionError:EPERM", "read_venv_file": "PermissionError:EPERM"}


@needs_landlock
def test_without_libseccomp_close_says_so(tmp_path, targets):
    """Without libseccomp the filter is not applied and Layers says why (the server then refuses model
    stores unless the operator turned the sandbox off); Landlock still holds."""
    report, _, _ = probe(tmp_path, checks=["read_secret"], libseccomp="libseccomp-absent.so.2", **targets)
    layers = report["layers"]
    assert not layers["seccomp"] and layers["landlock"] == LANDLOCK_ABI, layers
    assert any("libseccomp-absent.so.2 not found" in note for note in layers["notes"]), layers["notes"]
    assert report["outcomes"] == {"read_secret": "PermissionError:EACCES"}


def _blobs() -> dict:
    import model_fixtures as fixtures

    blobs = {"onnx_warm": fixtures.onnx_mul(), "onnx_fresh": fixtures.onnx_mlp(),
             "torch_warm": fixtures.torch_add_mul(), "torch_fresh": fixtures.torch_two_outputs(),
             "tf_warm": fixtures.tf_mul_graph(), "tf_fresh": fixtures.tf_reshape_sum(),
             "tflite": fixtures.tflite_mul(), "torch_exported": fixtures.torch_exported(),
             **{f"{name}_memory_bomb": getattr(fixtures, f"{name}_memory_bomb")() for name in ("onnx", "torch", "tflite")}}
    return {name: base64.b64encode(blob).decode() for name, blob in blobs.items()}


# What each backend gives for the probe's models (tests/sandbox_probe.py Frameworks.run_all): a * b and
# a * b + a of [2, 3]; the MLP of ones, two samples (tests/model_fixtures.py onnx_mlp_reference); the
# first output of (x * 2, x + 1); the sum of a 28 x 28 of ones; relu(Linear(4, 3)) of ones.
WARM = {"onnx": [4.0, 9.0], "torch": [6.0, 12.0], "torch_compile": [3.0], "tf": [4.0, 9.0], "tflite": [4.0, 9.0]}
FRESH = {"torch": [4.0, 6.0], "torch_compile": [3.0], "tf": [784.0], "tflite": [4.0, 9.0]}


def check_frameworks(report: dict) -> None:
    import numpy as np
    from model_fixtures import onnx_mlp_reference

    for round_name, expected in (("warm", WARM), ("fresh", FRESH)):
        for backend, values in expected.items():
            assert report[round_name][backend] == f"ok:{values}", (round_name, backend, report[round_name][backend])
    mlp = onnx_mlp_reference(np.ones((2, 4), np.float32)).reshape(-1)
    assert report["fresh"]["onnx"].startswith("ok:"), report["fresh"]["onnx"]
    np.testing.assert_allclose(json.loads(report["fresh"]["onnx"][3:]), mlp, atol=1e-3)
    # torch.export: the same program, before and after close.
    assert report["warm"]["torch_export"].startswith("ok:"), report["warm"]["torch_export"]
    assert report["fresh"]["torch_export"] == report["warm"]["torch_export"]


def check_loaders(loaders: dict) -> None:
    """The loaders' own interpreters, with no allow-list before them: torch.load's unpickler runs os.system,
    whose shell never starts (127); TensorFlow's ReadFile and WriteFile kernels get a permission error."""
    assert loaders["torch_load_os_system"] == "ok:32512", loaders
    assert loaders["tf_read_file"].startswith("PermissionDeniedError:"), loaders
    assert loaders["tf_write_file"].startswith("PermissionDeniedError:"), loaders
    assert SECRET not in json.dumps(loaders)


@needs_landlock
@needs_seccomp
@needs_frameworks
def test_frameworks_load_and_run_new_models_after_close(tmp_path, targets):
    """Imported and warmed (a model of each backend run, a TorchScript compile, a torch.export program
    loaded) before close(): afterwards new models of each backend load from bytes and run, reading only
    beneath the environment; a memory bomb of each fails with the framework's error, under a limit of the
    executor's data size plus 512 MiB, and the executor goes on. (TensorFlow's bomb fails too, after its
    oneDNN allocator has retried for 10 s at each of its 8 tries: too slow for this tier.)"""
    report, bombs, _ = probe(tmp_path, timeout=600, frameworks=["onnx", "torch", "tf", "tflite"], blobs=_blobs(),
                             memory_headroom=512 << 20, bombs=["onnx", "torch", "tflite"],
                             checks=["read_secret", "socket_inet", "thread"], **targets)
    layers = report["layers"]
    assert layers["seccomp"] and layers["landlock"] == LANDLOCK_ABI and layers["memory"] == "rlimit_data", layers
    check_frameworks(report)
    assert report["outcomes"] == {"read_secret": "PermissionError:EACCES", "socket_inet": "PermissionError:EPERM",
                                  "thread": "ok:499500"}
    check_loaders(report["loaders"])
    assert [bomb["bomb"] for bomb in bombs] == ["onnx", "torch", "tflite"]
    for bomb in bombs:
        assert not bomb["outcome"].startswith("ok") and bomb["after"] == "ok:499500", bomb
    untouched(targets)


@needs_seccomp
@needs_frameworks
def test_frameworks_need_no_file_after_close(tmp_path, targets):
    """Without Landlock, every open refused: the warm-up left nothing lazy that needs a file."""
    report, _, _ = probe(tmp_path, timeout=600, frameworks=["onnx", "torch", "tf", "tflite"], blobs=_blobs(),
                         landlock=False, checks=["read_venv_file"], **targets)
    assert report["layers"]["landlock"] == 0 and report["layers"]["seccomp"], report["layers"]
    check_frameworks(report)
    check_loaders(report["loaders"])
    assert report["outcomes"] == {"read_venv_file": "PermissionError:EPERM"}
    untouched(targets)


def test_cgroup_for_an_executor(tmp_path, targets):
    """prepare_cgroup makes a memory-bounded child of the server's cgroup where cgroup v2 delegates memory
    to it, and says why not elsewhere (this machine: cgroup v1 holds the memory controller)."""
    path, why = sandbox.prepare_cgroup(f"redisai-test-{os.getpid()}", 1 << 30)
    if path is None:
        assert why
        pytest.skip(f"no cgroup for executors here: {why}")
    try:
        assert Path(path, "memory.max").read_text().strip() == str(1 << 30)
        report, _, _ = probe(tmp_path, cgroup_dir=path, memory_limit=1 << 30, checks=["allocate_small"], **targets)
        assert (report["layers"]["memory"], report["layers"]["memory_limit"]) == ("cgroup2", 1 << 30), report["layers"]
    finally:
        sandbox.remove_cgroup(path)


def test_default_readable_leaves_out_the_server_directory(tmp_path):
    readable = sandbox.default_readable()
    assert sys.prefix in readable or os.path.realpath(sys.prefix) in readable
    assert "/proc/self" in readable and "/" not in readable
    assert not any(path in ("/etc", "/tmp", "/root", "/home", "/proc", "/var") for path in readable)
    # A server whose dir is inside the environment: the environment is no longer readable as a whole.
    server_dir = os.path.join(sys.prefix, "data")
    assert os.path.realpath(sys.prefix) not in sandbox.default_readable(exclude=[server_dir])


def test_layers_describe():
    layers = sandbox.Layers(no_new_privs=True, seccomp=True, landlock=7, memory="cgroup2", memory_limit=1024,
                            capabilities_dropped=True, notes=())
    assert layers.describe() == "seccomp=yes landlock=7 no_new_privs=yes memory=cgroup2:1024 capabilities=none"
