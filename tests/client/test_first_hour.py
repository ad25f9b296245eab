"""A new user's first hour with the client side (issue 38): stores that outlast redis-py's default socket
timeout, the CLI's start-up, closed pipes, WARMUP, the wait after the upload, units in `redisai info`, and
`redisai server`'s default address. The exporter's part is in test_exporter.py."""

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import model_fixtures as mf
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from server import ROOT, wait_for

import redisai
import redisai.asyncio
from redisai import cli
from redisai.client import WaitTimeoutError

CONSOLE_SCRIPT = Path(sys.executable).parent / "redisai"
if not CONSOLE_SCRIPT.exists():
    CONSOLE_SCRIPT = ROOT / ".venv" / "bin" / "redisai"
REDIS_PY_DEFAULT_TIMEOUT = 5  # redis.Redis's socket_timeout when none is given (redis-py 8)
BUSY_MS = 20_000  # how long the never-ending run holds the queue: MODEL_EXECUTION_TIMEOUT stops it


def _info(client: redis.Redis) -> dict:
    return client.info("ai")


def test_stores_wait_as_long_as_a_busy_queue_takes(new_server, tmp_path):
    """With the device's one worker held by a run that only MODEL_EXECUTION_TIMEOUT stops, a store waits its
    turn for well over 5 s: redis-py's default gives up, the CLI and both clients wait and store; with a
    socket timeout set, the cut wait is an error that says so."""
    assert redis.Redis().connection_pool.connection_kwargs["socket_timeout"] == REDIS_PY_DEFAULT_TIMEOUT
    instance = new_server(module_args=("THREADS_PER_QUEUE", "1", "MODEL_EXECUTION_TIMEOUT", str(BUSY_MS)))
    client = instance.client(socket_timeout=None)
    client.execute_command("AI.MODELSTORE", "forever", "ONNX", "CPU", "WARMUP", 0, "BLOB", mf.onnx_loop_forever())
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    model_file = tmp_path / "mul.onnx"
    model_file.write_bytes(mf.onnx_mul())
    blob = mf.onnx_mul()

    outcomes: dict[str, object] = {}

    def record(name, action):
        def run():
            started = time.monotonic()
            try:
                outcomes[name] = action()
            except Exception as e:  # noqa: BLE001 - recorded for the assertions below
                outcomes[name] = e
            outcomes[name + ":seconds"] = time.monotonic() - started
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    busy = record("busy", lambda: client.execute_command("AI.MODELEXECUTE", "forever", "INPUTS", 1, "x",
                                                         "OUTPUTS", 1, "y"))
    wait_for(lambda: _info(client).get("ai_queue_CPU_running") == 1, message="the endless run started")

    def console(*argv):
        return subprocess.run([str(CONSOLE_SCRIPT), *argv, "-p", str(instance.port)], capture_output=True,
                              text=True, timeout=300)

    async def async_store():
        con = redisai.asyncio.Client(port=instance.port)
        try:
            return await con.modelstore("async_m", "ONNX", "CPU", blob)
        finally:
            await con.aclose()

    async def async_cut():
        con = redisai.asyncio.Client(port=instance.port, socket_timeout=1)
        try:
            return await con.dag(load="x").modelexecute("forever", "x", "w").execute()
        finally:
            await con.aclose()

    threads = [
        record("cli", lambda: console("model", "store", "cli_m", str(model_file))),
        record("cli_cut", lambda: console("--socket-timeout", "1", "model", "store", "cli_cut_m", str(model_file))),
        record("client", lambda: redisai.Client(port=instance.port).modelstore("client_m", "ONNX", "CPU", blob)),
        record("async", lambda: asyncio.run(async_store())),
        record("async_cut", lambda: asyncio.run(async_cut())),
        # redis-py's defaults but for its retries (which would send the store again at each timeout)
        record("redis_py", lambda: redis.Redis(port=instance.port, protocol=2, retry=Retry(NoBackoff(), 0))
               .execute_command("AI.MODELSTORE", "redis_py_m", "ONNX", "CPU", "BLOB", blob)),
        record("client_cut", lambda: redisai.Client(port=instance.port, socket_timeout=1).modelexecute(
            "forever", ["x"], ["z"])),
    ]
    for thread in [busy, *threads]:
        thread.join(timeout=300)

    # The premise: redis-py's own default gives up on this store.
    assert isinstance(outcomes["redis_py"], redis.TimeoutError), outcomes["redis_py"]
    assert outcomes["redis_py:seconds"] >= REDIS_PY_DEFAULT_TIMEOUT

    cli_run = outcomes["cli"]
    assert cli_run.returncode == 0, cli_run.stderr
    assert cli_run.stdout.strip() == "OK" and outcomes["cli:seconds"] > REDIS_PY_DEFAULT_TIMEOUT
    # after the upload, a status line shows the server's part: what INFO ai says of models and the queue
    assert "cli_m: building and warming up on the server" in cli_run.stderr
    assert "CPU queue: " in cli_run.stderr and "running" in cli_run.stderr
    assert outcomes["client"] == "OK" and outcomes["client:seconds"] > REDIS_PY_DEFAULT_TIMEOUT
    assert outcomes["async"] == "OK" and outcomes["async:seconds"] > REDIS_PY_DEFAULT_TIMEOUT
    for key in ("cli_m", "client_m", "async_m"):
        assert client.type(key) == b"AI__MODEL", key

    cut = outcomes["cli_cut"]
    assert cut.returncode == 2
    assert f"error: no reply from Redis at 127.0.0.1:{instance.port} within 1 s (--socket-timeout)" in cut.stderr
    assert "Traceback" not in cut.stderr
    cut = outcomes["client_cut"]
    assert isinstance(cut, WaitTimeoutError) and isinstance(cut, redis.TimeoutError), cut
    assert str(cut).startswith("AI.MODELEXECUTE forever: no reply within socket_timeout=1 s.")
    assert outcomes["client_cut:seconds"] < BUSY_MS / 1000  # cut, not sent again and again until the queue moved
    cut = outcomes["async_cut"]
    assert isinstance(cut, WaitTimeoutError), cut
    assert str(cut).startswith("AI.DAGEXECUTE: no reply within socket_timeout=1 s.")
    assert outcomes["async_cut:seconds"] < BUSY_MS / 1000
    assert isinstance(outcomes["busy"], redis.ResponseError)  # the endless run was stopped at its timeout


def test_clients_have_no_socket_timeout_unless_told(server):
    def timeout_of(client):
        return client.connection_pool.connection_kwargs.get("socket_timeout")

    assert timeout_of(redisai.Client(port=server.port)) is None
    assert timeout_of(redisai.Client(port=server.port, socket_timeout=3)) == 3
    assert timeout_of(redisai.Client(False, True, "127.0.0.1", server.port, 0, None, 4)) == 4  # positional
    assert timeout_of(redisai.Client.from_url(f"redis://127.0.0.1:{server.port}")) is None
    assert timeout_of(redisai.Client.from_url(f"redis://127.0.0.1:{server.port}?socket_timeout=2")) == 2
    assert timeout_of(redisai.asyncio.Client(port=server.port)) is None
    assert timeout_of(redisai.asyncio.Client(port=server.port, socket_timeout=3)) == 3
    assert redisai.Client(port=server.port).ping()
    args = cli.build_parser().parse_args(["ls"])
    assert cli._client(args).connection_pool.connection_kwargs["socket_timeout"] is None
    args = cli.build_parser().parse_args(["ls", "--socket-timeout", "2.5"])
    assert cli._client(args).connection_pool.connection_kwargs["socket_timeout"] == 2.5
    assert cli.main(["--socket-timeout", "0", "ls"]) == 2


HEAVY_MODULES = ("numpy", "redis", "ml_dtypes", "tqdm", "prometheus_client", "torch", "tensorflow", "onnxruntime")


def test_help_imports_nothing_heavy():
    """`redisai --help` answers without importing numpy, redis or ml_dtypes (most of a second together); the
    time itself is measured for the README, not tested."""
    code = ("import sys; from redisai import cli; status = cli.main(['--help']); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r}), status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip().endswith("[] 0"), out
    code = "import sys, redisai.client; print('ml_dtypes' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120).stdout.strip() == "False"


def test_closed_pipe_ends_quietly(new_server):
    instance = new_server()
    client = instance.client()
    pipe = client.pipeline(transaction=False)
    for i in range(5000):  # ~200 KB of `ls` lines: more than a pipe holds, so the writer meets the closed end
        pipe.execute_command("AI.TENSORSET", f"pipe:tensor:{i:06d}:padding-padding", "FLOAT", 1, "VALUES", i)
    pipe.execute()
    run = subprocess.run(f"'{CONSOLE_SCRIPT}' ls -p {instance.port} | head -2; echo \"status ${{PIPESTATUS[0]}}\"",
                         shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120)
    lines = run.stdout.splitlines()
    assert lines[:2] == ["tensor\tpipe:tensor:000000:padding-padding", "tensor\tpipe:tensor:000001:padding-padding"]
    assert lines[2] == f"status {cli.BROKEN_PIPE_STATUS}"
    assert run.stderr == ""


def _torchscript_never_run_here() -> bytes:
    """A TorchScript model whose bytes no server of this test run has run: the server warms a model up on the
    shapes of an earlier run of the same bytes, which a shared server may have seen from another test."""
    import io
    import uuid

    import torch

    class Scale(torch.nn.Module):
        def __init__(self, factor: float):
            super().__init__()
            self.factor = factor

        def forward(self, a, b):
            return a * b * self.factor

    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(Scale(1.0 + uuid.uuid4().int % 1000 / 1000)), buffer)
    return buffer.getvalue()


def test_warmup_option(run, r, tmp_path):
    model = tmp_path / "scale.pt"
    model.write_bytes(_torchscript_never_run_here())
    before = r.info("ai")
    status, out, err = run("model", "store", "warm", model, "--warmup", "float:2", "FLOAT:2", "-q")
    assert (status, out.strip()) == (0, "OK"), err
    after = r.info("ai")
    assert after["ai_warmup_done"] == before["ai_warmup_done"] + 1  # warmed on the shapes given
    status, out, err = run("model", "store", "cold", model, "-q")  # TorchScript declares no input shapes
    assert r.info("ai")["ai_warmup_skipped"] == after["ai_warmup_skipped"] + 1
    status, out, err = run("model", "store", "off", model, "--warmup", "off", "-q")
    assert (status, out.strip()) == (0, "OK")
    assert r.info("ai")["ai_warmup_done"] == after["ai_warmup_done"]
    status, out, err = run("model", "store", "bad", model, "--warmup", "FLOAT", "-q")
    assert status == 2 and "--warmup 'FLOAT': expected TYPE:DIMS" in err
    status, out, err = run("model", "store", "bad", model, "--warmup", "FLOAT:0,x", "-q")
    assert status == 1 and "Invalid WARMUP shape 0,x" in err
    assert not r.exists("bad")


def test_info_prints_units(run, r, tmp_path):
    model = tmp_path / "mul.onnx"
    model.write_bytes(mf.onnx_mul())
    status, _, err = run("model", "store", "units", model, "-q")
    assert status == 0, err
    r.execute_command("AI.TENSORSET", "units:a", "FLOAT", 2, "VALUES", 2, 3)
    r.execute_command("AI.MODELEXECUTE", "units", "INPUTS", 2, "units:a", "units:a", "OUTPUTS", 1, "units:c")
    status, out, _ = run("info", "units")
    fields = dict(line.split(":", 1) for line in out.splitlines())
    for name in ("duration", "duration_p50", "duration_p95", "duration_p99"):
        assert fields[name].strip().split(" ")[1] == "µs", fields[name]
    assert fields["memory"].strip().split(" ")[1] == "B"
    assert fields["calls"].strip() == "1"  # a count has no unit

    status, out, _ = run("info")
    lines = out.splitlines()
    assert "ai_model_execution_timeout:5000 ms (5 s)" in lines
    assert any(line.startswith("ai_queue_CPU_wait_p50_us:") and " µs" in line for line in lines)
    assert any(line.startswith("ai_self_used_cpu_user:") and line.endswith(" s") for line in lines)
    assert any(line.startswith("ai_backend_memory_limit:") and line.endswith(" MB") for line in lines)
    assert "ai_threads_per_queue:1" in lines
    assert cli.with_unit("2500000", "µs") == "2500000 µs (2.5 s)"
    assert cli.with_unit("3145728", "B") == "3145728 B (3 MiB)"
    assert cli.with_unit("on", "B") == "on"


@pytest.fixture
def run(server, capsys):
    def run_cli(*argv):
        capsys.readouterr()
        status = cli.main([str(a) for a in argv] + ["-p", str(server.port)])
        out, err = capsys.readouterr()
        return status, out, err

    return run_cli


def test_server_listens_on_this_machine_only_by_default(new_server, tmp_path):
    """`redisai server` as a user starts it: on 127.0.0.1 unless --host says otherwise."""
    from server import free_port

    port = free_port()
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "server", "--port", str(port), "--", "--save", "",
                                "--dir", str(tmp_path), "--logfile", str(tmp_path / "log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=30)
        wait_for(lambda: _pings(client), timeout=120, message="redisai server answers")
        assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        process.terminate()
        process.wait(timeout=60)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
