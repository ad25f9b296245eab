"""What running models in executor processes costs against running them in redis-server's own process
(issue 37): every row pairs a server of this checkout (each device-queue worker owns a sandboxed executor;
tensors cross in sealed memfd arenas, control over a SOCK_SEQPACKET pair) with a server of the in-process
baseline, a checkout of the last in-process commit given by `--baseline PATH` or REDISAI_BASELINE (its own
build/redisai.so, which runs its own .venv). Without one, rows measure this checkout alone and say
"no baseline".

    .venv/bin/python bench/executors.py --baseline /work/clone36
    REDISAI_BASELINE=/work/clone36 .venv/bin/python bench/run.py executors

Both servers run side by side and every pair of figures is measured interleaved, A B B A (executors,
in-process, in-process, executors; twice where slices are short), so that drift of a shared machine hits
both; the load average is recorded with each row.

1. The boundary per run: the tiny ONNX Mul (4 floats, tests/model_fixtures.py onnx_mul, the keys of
   bench/server_side.py) run with AI.MODELEXECUTE by one raw-socket client; p50/p99, and CPU per run of the
   server and its executors together (/proc: utime + stime of redis-server and every descendant) with the
   executors' share and their busiest threads (onnxruntime's pool spinning, the serve loop).
2. The floor of any such channel: a Python-to-Python round trip over a SOCK_SEQPACKET socket pair with
   the data (two 16-byte inputs, one output) in memfd arenas, in two processes; and the protocol's own round
   trip (executor/protocol.py's Channel driving `python -m redisai.executor --backends ONNX`, sandbox on,
   with the same model: LOAD once, then RUN) next to onnxruntime's bare run of it in the same kind of process.
3. Real models (bench/real_models.py's: BERT ONNX / TorchScript / torch.export, MobileNetV2 TF / TFLite), one
   redis-py client, p50. Acceptance: p50 <= 1.05 x in-process p50 + 0.3 ms.
4. Tiny-model MODELEXECUTE with redis-benchmark (C) at -c 16, as a ratio to PING on the same server
   (bench/server_side.py's runner). Acceptance: >= 0.2 x PING.
5. Scaling: THREADS_PER_QUEUE 2 against 1 (INTRA_OP_PARALLELISM 1) on a CPU-bound ONNX model (4 MatMuls
   [64, 1024] x [1024, 1024], ~0.5 GFLOP: 3 ms a run on one core of the 2-core Xeon VM), 2 clients; four
   servers. Acceptance: >= 1.8x. Beside it, what the machine allows: onnxruntime's bare run of the same model
   (one thread) in 2 processes against 1, no server (the cores, not the server, as the limit).
6. Memory: RSS of redis-server and of each executor once a model of each backend (and the real models) and
   a TorchScript script are stored and have run, against the in-process server's RSS.
7. BGSAVE: INFO's latest_fork_usec with the same keys, median of 3 forks each, interleaved.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import (CLOCK_TICKS, MODELEXECUTE_COMMAND, Row, fmt_bytes, load_server_side_keys, median,  # noqa: E402
                    percentile, print_rows, rss_bytes, start_server, tree_cpu_seconds)

import model_fixtures as mf  # noqa: E402  (tests/ is on sys.path through common)

SECTION = "16. Executors"
EXECUTORS, BASELINE = "executors", "in-process"
TINY_SLICE = float(os.environ.get("BENCH_EXECUTORS_SLICE", "0.6"))
REAL_SLICE = 0.4
SERVER_SLICE = 0.6  # redis-benchmark slices
SCALING_SLICE = 1.0
FLOOR_TRIPS = 4000
SCRIPT = "def add(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] + tensors[1]\n"
FLOATS = np.array([1.1, 2.2, 3.3, 4.4], np.float32)
MATMUL_ROWS, MATMUL_WIDTH, MATMUL_LAYERS = 64, 1024, 4


# -- the two servers -----------------------------------------------------------------------------------

def baseline_path() -> Path | None:
    value = os.environ.get("REDISAI_BASELINE", "").strip()
    return Path(value).resolve() if value else None


def baseline_commit(path: Path) -> str:
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return (out.stdout.strip() or "?") if out.returncode == 0 else "?"


def start(side: str, module_args: tuple[str, ...] = ()):
    """A server of this checkout (EXECUTORS) or of the baseline's (its build/redisai.so)."""
    if side == EXECUTORS:
        return start_server(module_args=module_args)
    return start_server(load_module=False,
                        config=("--loadmodule", str(baseline_path() / "build" / "redisai.so"), *module_args))


def sides() -> list[str]:
    return [EXECUTORS, BASELINE] if baseline_path() else [EXECUTORS]


def interleaved(names: list[str], rounds: int = 1) -> list[str]:
    """A B B A (per round); one name: that name, as often as it would have come."""
    if len(names) == 1:
        return names * 2 * rounds
    a, b = names
    return [a, b, b, a] * rounds


def descendants(pid: int) -> list[int]:
    """Live processes below `pid` (its executors), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        todo += children
    return found


def thread_times(pid: int) -> dict[tuple[int, str], float]:
    """CPU seconds of each thread of `pid`, keyed (tid, name)."""
    times = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return times
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, _, rest = f.read().rpartition(")")
            fields = rest.split()
            times[int(tid), head.split("(", 1)[1]] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except (OSError, IndexError):
            continue
    return times


def load_text() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def raw_command(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def store_everything(server, real: bool) -> None:
    """A model of each backend, a TorchScript script, each run once; with `real`, the real models too (bench/
    real_models.py's keys), each checked against nothing here (row 3 compares the two servers' answers)."""
    db = server.client(socket_timeout=600)
    for backend in ("ONNX", "TORCH", "TF", "TFLITE"):  # one executor with all four, not four replacements
        db.execute_command("AI.CONFIG", "LOADBACKEND", backend, "redisai_backend.so")
    load_server_side_keys(db, FLOATS)  # m (ONNX Mul), a, b, t, s
    db.execute_command(*MODELEXECUTE_COMMAND)
    db.execute_command("AI.TENSORSET", "x2", "FLOAT", 2, "VALUES", 2, 3)
    db.execute_command("AI.MODELSTORE", "m_torch", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    db.execute_command("AI.MODELEXECUTE", "m_torch", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c_torch")
    db.execute_command("AI.MODELSTORE", "m_tf", "TF", "CPU", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c",
                       "BLOB", mf.tf_mul_graph())
    db.execute_command("AI.MODELEXECUTE", "m_tf", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c_tf")
    db.execute_command("AI.MODELSTORE", "m_tflite", "TFLITE", "CPU", "BLOB", mf.tflite_mul())
    db.execute_command("AI.MODELEXECUTE", "m_tflite", "INPUTS", 2, "x2", "x2", "OUTPUTS", 1, "c_tflite")
    db.execute_command("AI.SCRIPTSTORE", "script", "CPU", "ENTRY_POINTS", 1, "add", "SOURCE", SCRIPT)
    db.execute_command("AI.SCRIPTEXECUTE", "script", "add", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c_script")
    if real:
        import real_models as rm
        import real_fixtures as rf

        for fixture, backend, options, inputs, _ in rm.MODELS.values():
            db.execute_command("AI.MODELSTORE", fixture, backend, "CPU", *options, "BLOB",
                               rf.path(fixture).read_bytes())
            for input_name, array in zip(inputs, rm.inputs_of(fixture)):
                db.execute_command("AI.TENSORSET", rm.key(fixture, input_name), rm.rf_type(array), *array.shape,
                                   "BLOB", array.tobytes())
    db.close()


def baseline_text(text: str) -> str:
    return text if baseline_path() else "no baseline"


# -- 1. the boundary per run ---------------------------------------------------------------------------------

def tiny(servers: dict, setting: str = "default settings (WORKER_SPIN_US 500)") -> list[Row]:
    command = raw_command(MODELEXECUTE_COMMAND)
    connections = {}
    for side, server in servers.items():
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections[side] = (sock, sock.makefile("rb"))

    def call(side):
        sock, reader = connections[side]
        sock.sendall(command)
        line = reader.readline()
        if line != b"+OK\r\n":
            raise RuntimeError(f"{side}: MODELEXECUTE answered {line!r}")

    for side in servers:
        for _ in range(300):
            call(side)
    latencies = {side: [] for side in servers}
    cpu = {side: 0.0 for side in servers}
    executor_cpu = {side: 0.0 for side in servers}
    threads: dict[tuple[int, int, str], float] = {}  # (pid, tid, name) -> CPU seconds, executors' side
    loads = [load_text()]
    for side in interleaved(list(servers), rounds=2):
        server = servers[side]
        pid = server.process.pid
        children = descendants(pid)
        before = {p: thread_times(p) for p in [pid, *children]} if side == EXECUTORS else {}
        time.sleep(0.1)
        tree0, kids0 = tree_cpu_seconds(pid), sum(tree_cpu_seconds(c) for c in children)
        end = time.perf_counter() + TINY_SLICE
        samples = latencies[side]
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            call(side)
            samples.append(time.perf_counter() - t0)
        cpu[side] += tree_cpu_seconds(pid) - tree0
        executor_cpu[side] += sum(tree_cpu_seconds(c) for c in children) - kids0
        for p, times in before.items():
            for (tid, name), seconds in thread_times(p).items():
                if (tid, name) in times:
                    threads[p, tid, name] = threads.get((p, tid, name), 0.0) + seconds - times[tid, name]
    loads.append(load_text())
    for sock, reader in connections.values():
        reader.close()
        sock.close()

    figures = {}
    for side in servers:
        runs = len(latencies[side])
        figures[side] = {"p50": median(latencies[side]), "p99": percentile(latencies[side], 99), "runs": runs,
                         "cpu_us": cpu[side] / runs * 1e6, "executor_us": executor_cpu[side] / runs * 1e6}
    pid = servers[EXECUTORS].process.pid
    runs = figures[EXECUTORS]["runs"]
    by_role: dict[str, float] = {}
    for (p, tid, name), seconds in threads.items():
        if p == pid:
            role = "server main thread" if tid == p else "server's other threads (the worker)"
        else:
            role = "executor main thread" if tid == p else f"executor {name}"
        by_role[role] = by_role.get(role, 0.0) + seconds
    busiest = sorted(((seconds / runs * 1e6, role) for role, seconds in by_role.items() if seconds > 0),
                     reverse=True)[:6]
    thread_text = ", ".join(f"{name} {us:.0f}" for us, name in busiest)
    ours, base = figures[EXECUTORS], figures.get(BASELINE)

    def text(f, executors: bool) -> str:
        extra = f" (executors {f['executor_us']:.0f})" if executors else ""
        return (f"p50 {f['p50'] * 1e6:.0f} µs · p99 {f['p99'] * 1e6:.0f} µs · CPU {f['cpu_us']:.0f} µs/run{extra} "
                f"· {f['runs']} runs")

    rows = [
        Row(SECTION, f"tiny ONNX Mul, 1 raw-socket client, {setting}: MODELEXECUTE latency, executors vs in-process",
            text(ours, True), baseline_name(), text(base, False) if base else "no baseline",
            ours["p50"] / base["p50"] if base else None, "p50 executors / in-process", None,
            f"load {loads[0]} → {loads[1]}", "",
            data={"kind": "tiny", "setting": setting, "ours": ours, "base": base, "loadavg": loads,
                  "p50_delta_us": (ours["p50"] - base["p50"]) * 1e6 if base else None}),
        Row(SECTION, f"tiny ONNX Mul, 1 client, {setting}: CPU per run (server + executors), executors vs in-process",
            f"{ours['cpu_us']:.0f} µs/run, of which executors {ours['executor_us']:.0f}; busiest threads µs/run: "
            f"{thread_text}", baseline_name(), f"{base['cpu_us']:.0f} µs/run" if base else "no baseline",
            ours["cpu_us"] / base["cpu_us"] if base else None, "CPU/run executors / in-process", None,
            f"load {loads[0]} → {loads[1]}", "",
            data={"kind": "tiny_cpu", "setting": setting, "ours": ours["cpu_us"], "base": base["cpu_us"] if base else None,
                  "threads": busiest, "loadavg": loads}),
    ]
    print_rows(rows)
    return rows


def tiny_without_spin() -> list[Row]:
    """Row 1 again on servers with WORKER_SPIN_US 0 (ONNX only): the worker sleeps at once between jobs, so CPU
    per run is the work of a run, not the default 500 µs spin that follows each one."""
    servers = {}
    starting = [threading.Thread(target=lambda s=side: servers.__setitem__(s, start(s, ("WORKER_SPIN_US", "0"))))
                for side in sides()]
    for t in starting:
        t.start()
    for t in starting:
        t.join()
    try:
        for server in servers.values():
            db = server.client(socket_timeout=600)
            load_server_side_keys(db, FLOATS)
            db.execute_command(*MODELEXECUTE_COMMAND)
            db.close()
        return tiny({side: servers[side] for side in sides()}, "WORKER_SPIN_US 0")
    finally:
        for server in servers.values():
            server.stop()


# -- 2. the channel's floor and the protocol's round trip -------------------------------------------------------

FLOOR_CHILD = r"""
import mmap, os, socket, struct, sys
import numpy as np
sock = socket.socket(fileno=int(sys.argv[1]))
arenas = [np.frombuffer(mmap.mmap(int(fd), 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE), np.uint8)
          for fd in sys.argv[2:4]]
inputs, outputs = arenas
frame = struct.Struct("<HHQQQQ")
while True:
    data = sock.recv(256)
    if not data:
        break
    _, kind, a, b, size, _ = frame.unpack(data)
    x = np.array(inputs[a:a + size].view(np.float32), copy=True)
    y = np.array(inputs[b:b + size].view(np.float32), copy=True)
    outputs[0:size] = (x * y).view(np.uint8)
    sock.send(frame.pack(0x4941, 101, 0, 0, size, 0))
"""

BARE_ONNX_CHILD = r"""
import json, sys, time
import numpy as np
import onnxruntime
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = onnxruntime.InferenceSession(open(sys.argv[1], "rb").read(), options, providers=["CPUExecutionProvider"])
feeds = {"a": np.array([1.1, 2.2, 3.3, 4.4], np.float32), "b": np.array([1.1, 2.2, 3.3, 4.4], np.float32)}
for _ in range(500):
    session.run(None, feeds)
samples = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    session.run(None, feeds)
    samples.append(time.perf_counter() - t0)
print("RESULT " + json.dumps(samples))
"""


def channel_floor() -> list[float]:
    """Round trips of two processes over a SOCK_SEQPACKET pair, data in memfd arenas, seconds each."""
    import fcntl
    import mmap
    import struct

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    fds = []
    for name in ("floor-in", "floor-out"):
        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(fd, 1 << 20)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        fds.append(fd)
    child = subprocess.Popen([sys.executable, "-c", FLOOR_CHILD, str(theirs.fileno()), *map(str, fds)],
                             pass_fds=(theirs.fileno(), *fds))
    theirs.close()
    inputs, outputs = (np.frombuffer(mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE),
                                     np.uint8) for fd in fds)
    frame = struct.Struct("<HHQQQQ")
    data = FLOATS.view(np.uint8)
    samples = []
    try:
        for i in range(FLOOR_TRIPS + 500):
            t0 = time.perf_counter()
            inputs[0:16] = data
            inputs[16:32] = data
            ours.send(frame.pack(0x4941, 2, 0, 16, 16, 0))
            ours.recv(256)
            result = np.array(outputs[0:16].view(np.float32), copy=True)
            if i >= 500:
                samples.append(time.perf_counter() - t0)
        assert np.allclose(result, FLOATS * FLOATS)
    finally:
        ours.close()
        child.wait(timeout=30)
        for fd in fds:
            os.close(fd)
    return samples


def protocol_round_trip(sandbox_on: bool = True) -> tuple[list[float], str, dict]:
    """RUN round trips of the tiny ONNX Mul through executor/protocol.py, against `python -m redisai.executor`
    started as the worker starts one (sandbox on, no cgroup), seconds each; and what its sandbox holds."""
    sys.path.insert(0, str(ROOT / "src"))
    from redisai.executor import protocol, sandbox
    from redisai.executor.protocol import Writer

    directory = tempfile.mkdtemp(prefix="redisai-bench-executor-")
    ours, theirs = protocol.make_pair()
    command = [sys.executable, "-m", "redisai.executor", "--socket", str(theirs.fileno()), "--parent",
               str(os.getpid()), "--backends", "ONNX", "--intra", "1", "--inter", "1",
               "--sandbox", "on" if sandbox_on else "off",
               "--exclude", directory]
    environment = {**sandbox.executor_environment(directory), "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), cwd=directory, env=environment,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    theirs.close()
    channel = protocol.Channel(ours, protocol.Arena.create(protocol.MIN_ARENA, "redisai-in"),
                               protocol.Arena.create(protocol.MIN_ARENA, "redisai-out"))
    samples, parts = [], []
    try:
        protocol.send(ours, protocol.ARENA_IN, fds=[channel.ours.fd])
        protocol.send(ours, protocol.ARENA_OUT, fds=[channel.theirs.fd])
        kind, reader, fds = channel.receive(120)
        protocol.close_fds(fds)
        if kind != protocol.READY:
            raise RuntimeError(f"the executor started with {kind}")
        reader.u64()
        for _ in range(reader.count(16)):
            reader.str(), reader.str()
        for _ in range(reader.count(16)):
            reader.str(), reader.str()
        layers = "sandbox off"
        if reader.u8():
            no_new_privs, seccomp, landlock = reader.u8(), reader.u8(), reader.u32()
            layers = f"seccomp {'on' if seccomp else 'off'}, Landlock ABI {landlock}, no_new_privs {no_new_privs}"
        channel.start_request()
        blob = protocol.sealed_memfd(mf.onnx_mul(), "redisai-model")
        body = Writer().u64(1).str("ONNX").str("CPU").strs([]).strs([]).u32(5000)
        channel.send(protocol.LOAD, body, fds=[blob])
        os.close(blob)
        kind, reader, fds = channel.receive(60)
        if kind != protocol.DONE:
            raise RuntimeError(f"LOAD answered {protocol.KIND_NAMES.get(kind, kind)}: {reader.str()}")

        def run():
            t0 = time.perf_counter()
            channel.start_request()
            body = Writer().u64(1)
            protocol.write_arrays(body, channel.ours, [FLOATS, FLOATS])
            t1 = time.perf_counter()
            channel.send(protocol.RUN, body)
            kind, reader, fds = channel.receive()
            t2 = time.perf_counter()
            if kind != protocol.DONE:
                raise RuntimeError(f"RUN answered {protocol.KIND_NAMES.get(kind, kind)}")
            outputs = [np.array(a, copy=True) for a in protocol.read_arrays(reader, channel.theirs)]
            parts.append((t1 - t0, t2 - t1, time.perf_counter() - t2))
            return outputs

        for _ in range(500):
            out = run()
        assert np.allclose(out[0], FLOATS * FLOATS)
        parts.clear()
        for _ in range(FLOOR_TRIPS):
            t0 = time.perf_counter()
            run()
            samples.append(time.perf_counter() - t0)
    finally:
        channel.close()
        process.kill()
        process.wait()
    split = {name: median([p[i] for p in parts]) for i, name in enumerate(("encode", "wait", "decode"))}
    return samples, layers, split


def bare_onnx() -> list[float]:
    import json

    mf.onnx_mul()
    path = next(mf.CACHE_DIR.glob("onnx_mul.v*.bin"))
    out = subprocess.run([sys.executable, "-c", BARE_ONNX_CHILD, str(path), str(FLOOR_TRIPS)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "ORT_DISABLE_TELEMETRY": "1"})
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"bare onnxruntime child failed: {out.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def channel_rows() -> list[Row]:
    loads = [load_text()]
    floor = channel_floor()
    trips, layers, split = protocol_round_trip()
    open_trips, _, open_split = protocol_round_trip(sandbox_on=False)
    bare = bare_onnx()
    loads.append(load_text())

    def text(samples):
        return f"p50 {median(samples) * 1e6:.1f} µs · p99 {percentile(samples, 99) * 1e6:.1f} µs"

    rows = [
        Row(SECTION, "channel floor: Python↔Python round trip, SOCK_SEQPACKET pair + memfd arenas (2×16 B in, 16 B out)",
            text(floor), "—", "(the floor of any such channel)", None, "", None, f"load {loads[0]} → {loads[1]}",
            data={"kind": "floor", "p50": median(floor), "p99": percentile(floor, 99), "loadavg": loads}),
        Row(SECTION, "protocol round trip: executor/protocol.py RUN of the tiny ONNX Mul against `python -m "
            f"redisai.executor` ({layers})", f"{text(trips)} (this side's p50s: encode {split['encode'] * 1e6:.1f} µs, "
            f"send + wait for the answer {split['wait'] * 1e6:.1f} µs, decode {split['decode'] * 1e6:.1f} µs)",
            "channel floor + bare onnxruntime run",
            f"floor p50 {median(floor) * 1e6:.1f} µs + bare run {text(bare)}",
            median(trips) / (median(floor) + median(bare)), "p50 / (floor p50 + bare run p50)", None,
            f"load {loads[0]} → {loads[1]}",
            data={"kind": "protocol", "split": split, "p50": median(trips), "p99": percentile(trips, 99), "bare_p50": median(bare),
                  "bare_p99": percentile(bare, 99), "loadavg": loads}),
        Row(SECTION, "protocol round trip as above, sandbox on vs `--sandbox off` (what seccomp and Landlock cost a run)",
            text(trips), "--sandbox off", f"{text(open_trips)} (encode {open_split['encode'] * 1e6:.1f} µs, "
            f"wait {open_split['wait'] * 1e6:.1f} µs, decode {open_split['decode'] * 1e6:.1f} µs)",
            median(trips) / median(open_trips), "p50 sandbox on / off", None, f"load {loads[0]} → {loads[1]}",
            data={"kind": "protocol_sandbox", "on": median(trips), "off": median(open_trips), "loadavg": loads}),
    ]
    print_rows(rows)
    return rows


# -- 3. real models ------------------------------------------------------------------------------------------

def real(servers: dict) -> list[Row]:
    import real_models as rm

    rows = []
    clients = {side: server.client(socket_timeout=600) for side, server in servers.items()}
    for name, (fixture, _, _, inputs, outputs) in rm.MODELS.items():
        command = ("AI.MODELEXECUTE", fixture, "INPUTS", len(inputs), *[rm.key(fixture, i) for i in inputs],
                   "OUTPUTS", len(outputs), *[rm.key(fixture, "out:" + o) for o in outputs])
        calls = {side: (lambda db=db: db.execute_command(*command)) for side, db in clients.items()}
        answers = {}
        for side, db in clients.items():
            for _ in range(5):
                calls[side]()
            answers[side] = db.execute_command("AI.TENSORGET", rm.key(fixture, "out:" + outputs[-1]), "BLOB")
        if BASELINE in answers:
            a, b = (np.frombuffer(answers[s], np.float32) for s in (EXECUTORS, BASELINE))
            assert np.allclose(a, b, rtol=1e-3, atol=1e-4), f"{name}: the two servers answer differently"
        load0 = load_text()
        slices = {side: [] for side in servers}
        for side in interleaved(list(servers), rounds=3):
            time.sleep(0.2)  # the frameworks' pools go idle between slices, as in bench/real_models.py
            slices[side].append(rm.timed(calls[side], REAL_SLICE))
        loads = [load0, load_text()]
        ours = [x for s in slices[EXECUTORS] for x in s]
        p50 = median(ours)
        if BASELINE in slices:
            base = [x for s in slices[BASELINE] for x in s]
            bp50 = median(base)
            bound = 1.05 * bp50 + 0.3e-3
            pairs = " / ".join(f"{median(e) * 1e3:.2f}:{median(b) * 1e3:.2f}"
                               for e, b in zip(slices[EXECUTORS], slices[BASELINE]))
            base_text = f"p50 {bp50 * 1e3:.2f} ms · p99 {percentile(base, 99) * 1e3:.2f} ms (slices exec:in-proc {pairs})"
            ratio = p50 / bound
            # adjacent slices (E B B E ...) paired: less moved by load that comes and goes than the pooled p50s
            paired = median([median(e) / median(b) for e, b in zip(slices[EXECUTORS], slices[BASELINE])])
            ours_text = (f"p50 {p50 * 1e3:.2f} ms · p99 {percentile(ours, 99) * 1e3:.2f} ms "
                         f"({p50 / bp50:.3f}× in-process, {(p50 - bp50) * 1e3:+.2f} ms; median of the slice pairs' "
                         f"ratios {paired:.3f}×)")
        else:
            bp50, base_text, ratio = None, "no baseline", None
            ours_text = f"p50 {p50 * 1e3:.2f} ms · p99 {percentile(ours, 99) * 1e3:.2f} ms"
        rows.append(Row(
            SECTION, f"{name}, 1 client: MODELEXECUTE p50, executors vs in-process", ours_text, baseline_name(),
            base_text, ratio, "p50 / (1.05 × in-process p50 + 0.3 ms)", ("<=", 1.0), f"load {loads[0]} → {loads[1]}",
            data={"kind": "real", "model": name, "p50": p50, "inproc_p50": bp50, "loadavg": loads,
                  "paired": paired if bp50 else None,
                  "times": p50 / bp50 if bp50 else None}))
        print_rows(rows[-1:])
    for db in clients.values():
        db.close()
    return rows


# -- 4. redis-benchmark ----------------------------------------------------------------------------------------

def server_side_rows(servers: dict) -> list[Row]:
    import server_side as ss

    commands = {"me": MODELEXECUTE_COMMAND, "ping": [b"PING"]}
    sizes = {}
    for side, server in servers.items():
        for what, command in commands.items():
            n = ss.calibrate(server.port, server.process.pid, command, 16, 1)
            sizes[side, what] = max(16, int(n * SERVER_SLICE / ss.SLICE) // 16 * 16)
    load0 = load_text()
    runs = {key: [] for key in sizes}
    for side in interleaved(list(servers)):
        server = servers[side]
        for what in (("me", "ping") if len(runs[side, "me"]) % 2 == 0 else ("ping", "me")):
            runs[side, what].append(ss.run_benchmark(server.port, server.process.pid, commands[what], 16, 1,
                                                     sizes[side, what]))
    loads = [load0, load_text()]
    figures = {key: ss.combine(value) for key, value in runs.items()}

    def text(side):
        me, ping = figures[side, "me"], figures[side, "ping"]
        return (f"{me['rps']:,.0f} runs/s = {me['rps'] / ping['rps']:.2f}× PING ({ping['rps']:,.0f}/s) · "
                f"p50 {me['p50'] * 1e3:.2f} ms · server CPU {me['server']:.0%}")

    ratio = figures[EXECUTORS, "me"]["rps"] / figures[EXECUTORS, "ping"]["rps"]
    base = (figures[BASELINE, "me"]["rps"] / figures[BASELINE, "ping"]["rps"]) if BASELINE in servers else None
    rows = [Row(SECTION, "tiny ONNX Mul, redis-benchmark -c 16: MODELEXECUTE / PING on the same server",
                text(EXECUTORS) + (f"; {ratio / base:.2f}× the in-process ratio" if base else ""), baseline_name(),
                text(BASELINE) if base else "no baseline", ratio, "MODELEXECUTE/PING (executors)", (">=", 0.2),
                f"load {loads[0]} → {loads[1]}",
                data={"kind": "server", "ours": ratio, "base": base, "loadavg": loads,
                      "figures": {f"{k[0]}:{k[1]}": v for k, v in figures.items()}})]
    print_rows(rows)
    return rows


# -- 5. scaling ----------------------------------------------------------------------------------------------

def matmul_model() -> bytes:
    """ONNX: x float [64, 1024] through 4 MatMuls by [1024, 1024] constants (Relu between): ~0.5 GFLOP."""
    import real_fixtures as rf

    def build() -> bytes:
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        nodes, weights, current = [], [], "x"
        for i in range(MATMUL_LAYERS):
            w = (rng.standard_normal((MATMUL_WIDTH, MATMUL_WIDTH)) / np.sqrt(MATMUL_WIDTH)).astype(np.float32)
            weights.append(numpy_helper.from_array(w, f"w{i}"))
            last = i == MATMUL_LAYERS - 1
            nodes.append(helper.make_node("MatMul", [current, f"w{i}"], ["y" if last else f"m{i}"]))
            if not last:
                nodes.append(helper.make_node("Relu", [f"m{i}"], [f"r{i}"]))
                current = f"r{i}"
        graph = helper.make_graph(nodes, "matmuls",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [MATMUL_ROWS, MATMUL_WIDTH])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [MATMUL_ROWS, MATMUL_WIDTH])],
                                  initializer=weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", mf.ONNX_OPSET)])
        model.ir_version = mf.ONNX_IR_VERSION
        onnx.checker.check_model(model)
        return model.SerializeToString()

    return mf._cached("matmul_4x1024", build, rf.CACHE_DIR, rf._CACHE_VERSION)


_BARE_SCALING_CHILD = """
import sys, time
import numpy as np, onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = options.inter_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
x = np.random.default_rng(1).standard_normal((int(sys.argv[2]), int(sys.argv[3]))).astype(np.float32)
for _ in range(3):
    session.run(None, {"x": x})
print("ready", flush=True)
sys.stdin.readline()
runs, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[4]):
    session.run(None, {"x": x})
    runs += 1
print(runs / (time.perf_counter() - start), flush=True)
"""


def bare_scaling(blob: bytes, rounds: int = 2) -> tuple[float, float]:
    """(runs/s of 1 process, of 2 together): onnxruntime's bare run of `blob` on one thread per process,
    started together once both are warm; 1 and 2 alternate, `rounds` of each."""
    with tempfile.TemporaryDirectory() as directory:
        model = Path(directory, "matmuls.onnx")
        model.write_bytes(blob)
        totals = {1: [], 2: []}
        for round_ in range(rounds):
            for count in ((1, 2) if round_ % 2 == 0 else (2, 1)):
                children = [subprocess.Popen([sys.executable, "-c", _BARE_SCALING_CHILD, str(model), str(MATMUL_ROWS),
                                              str(MATMUL_WIDTH), str(SCALING_SLICE * 2)],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                            for _ in range(count)]
                for child in children:
                    if child.stdout.readline().strip() != "ready":
                        raise RuntimeError("the bare onnxruntime child did not start")
                for child in children:
                    child.stdin.write("go\n")
                    child.stdin.flush()
                totals[count].append(sum(float(child.communicate()[0]) for child in children))
    return statistics.mean(totals[1]), statistics.mean(totals[2])


def scaling_rows() -> list[Row]:
    from models import load

    blob = matmul_model()
    x = np.random.default_rng(1).standard_normal((MATMUL_ROWS, MATMUL_WIDTH)).astype(np.float32)
    servers = {}
    starting = []

    def start_one(side, threads):
        servers[side, threads] = start(side, ("THREADS_PER_QUEUE", str(threads), "INTRA_OP_PARALLELISM", "1"))

    for side in sides():
        for threads in (1, 2):
            starting.append(threading.Thread(target=start_one, args=(side, threads)))
    for t in starting:
        t.start()
    for t in starting:
        t.join()
    try:
        commands = [("AI.MODELEXECUTE", "mm", "INPUTS", 1, "x", "OUTPUTS", 1, f"y{i}") for i in range(2)]
        for server in servers.values():
            db = server.client(socket_timeout=600)
            db.execute_command("AI.MODELSTORE", "mm", "ONNX", "CPU", "BLOB", blob)
            db.execute_command("AI.TENSORSET", "x", "FLOAT", MATMUL_ROWS, MATMUL_WIDTH, "BLOB", x.tobytes())
            connections = [server.client(socket_timeout=600) for _ in commands]
            for _ in range(3):  # each worker's executor (and its session) warmed
                threads = [threading.Thread(target=c.execute_command, args=command)
                           for c, command in zip(connections, commands)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            for c in [db, *connections]:
                c.close()
        load0 = load_text()
        done = {key: [] for key in servers}
        order = []
        for side in interleaved(sides(), rounds=2):
            order += [(side, 1), (side, 2)] if len(done[side, 1]) % 2 == 0 else [(side, 2), (side, 1)]
            for key in order[-2:]:
                pid = servers[key].process.pid
                tree0 = tree_cpu_seconds(pid)
                latencies, _, cpu = load(servers[key], None, 2, SCALING_SLICE, commands=commands)
                done[key].append((len(latencies), cpu.wall, tree_cpu_seconds(pid) - tree0))
        loads = [load0, load_text()]
    finally:
        for server in servers.values():
            server.stop()
    bare_one, bare_two = bare_scaling(blob)

    def rate(key):
        return sum(n for n, _, _ in done[key]) / sum(w for _, w, _ in done[key])

    def cores(key):  # the server's and its executors' CPU over the slices: what the machine let them have
        return sum(c for _, _, c in done[key]) / sum(w for _, w, _ in done[key])

    figures = {side: (rate((side, 1)), rate((side, 2)), cores((side, 1)), cores((side, 2))) for side in sides()}

    def text(side):
        one, two, cores_one, cores_two = figures[side]
        return (f"{two:.1f} runs/s with 2 threads, {one:.1f} with 1 ({two / one:.2f}×; one thread: "
                f"{1e3 / one:.1f} ms a run; server + executors busy {cores_two:.2f} cores with 2, {cores_one:.2f} with 1)")

    e_one, e_two = figures[EXECUTORS][:2]
    base = figures.get(BASELINE)
    rows = [Row(SECTION, f"THREADS_PER_QUEUE 2 vs 1, INTRA_OP_PARALLELISM 1, ONNX {MATMUL_LAYERS} MatMuls "
                f"[{MATMUL_ROWS},{MATMUL_WIDTH}]×[{MATMUL_WIDTH},{MATMUL_WIDTH}], 2 clients",
                f"{text(EXECUTORS)}; what the cores allow: {bare_two / bare_one:.2f}× (onnxruntime's bare run, one "
                f"thread a process, no server: {bare_two:.1f} runs/s in 2 processes, {bare_one:.1f} in 1)",
                baseline_name(), text(BASELINE) if base else "no baseline", e_two / e_one,
                "2/1 runs/s (executors)", (">=", 1.8), f"load {loads[0]} → {loads[1]}",
                data={"kind": "scaling", "ours": e_two / e_one, "base": base[1] / base[0] if base else None,
                      "bare": bare_two / bare_one, "loadavg": loads, "figures": figures})]
    print_rows(rows)
    return rows


# -- 6. memory, 7. BGSAVE --------------------------------------------------------------------------------------

def memory_rows(servers: dict) -> list[Row]:
    time.sleep(0.5)
    figures = {}
    for side, server in servers.items():
        pid = server.process.pid
        children = descendants(pid)
        figures[side] = {"server": rss_bytes(pid), "executors": [rss_bytes(c) for c in children]}
    ours, base = figures[EXECUTORS], figures.get(BASELINE)
    total = ours["server"] + sum(ours["executors"])
    executors_text = ", ".join(fmt_bytes(x) for x in ours["executors"]) or "none"
    rows = [Row(SECTION, "RSS, all four backends in use (a model of each, the real models, a script; stored and run)",
                f"{fmt_bytes(total)} in all: redis-server {fmt_bytes(ours['server'])} + executors {executors_text}",
                baseline_name(), f"redis-server {fmt_bytes(base['server'])}" if base else "no baseline",
                total / base["server"] if base else None, "RSS all processes / in-process RSS", None,
                f"load {load_text()}",
                data={"kind": "memory", "ours": ours, "base": base, "loadavg": [load_text()],
                      "server_ratio": ours["server"] / base["server"] if base else None})]
    print_rows(rows)
    return rows


def fork_rows(servers: dict) -> list[Row]:
    from server import wait_for_persistence

    clients = {side: server.client(socket_timeout=600) for side, server in servers.items()}
    forks = {side: [] for side in servers}
    load0 = load_text()
    for side in interleaved(list(servers)) + [EXECUTORS] + ([BASELINE] if BASELINE in servers else []):
        db = clients[side]
        wait_for_persistence(db)
        db.bgsave()
        wait_for_persistence(db)
        forks[side].append(db.info("stats")["latest_fork_usec"])
    loads = [load0, load_text()]
    for db in clients.values():
        db.close()
    ours = statistics.median(forks[EXECUTORS])
    base = statistics.median(forks[BASELINE]) if BASELINE in forks else None
    rows = [Row(SECTION, "BGSAVE fork time (latest_fork_usec, median of 3), same keys, all four backends in use",
                f"{ours / 1e3:.2f} ms ({', '.join(f'{x / 1e3:.2f}' for x in forks[EXECUTORS])})", baseline_name(),
                (f"{base / 1e3:.2f} ms ({', '.join(f'{x / 1e3:.2f}' for x in forks[BASELINE])})" if base is not None
                 else "no baseline"),
                ours / base if base else None, "fork µs executors / in-process", None,
                f"load {loads[0]} → {loads[1]}",
                data={"kind": "fork", "ours": forks[EXECUTORS], "base": forks.get(BASELINE), "loadavg": loads})]
    print_rows(rows)
    return rows


# -- the section -----------------------------------------------------------------------------------------------

def baseline_name() -> str:
    path = baseline_path()
    return f"in-process, {baseline_commit(path)}" if path else "in-process"


def main() -> list[Row]:
    path = baseline_path()
    if path and not (path / "build" / "redisai.so").exists():
        raise FileNotFoundError(f"the baseline {path} has no build/redisai.so (run make there)")
    import real_fixtures as rf

    if rf.missing():
        subprocess.run([sys.executable, str(HERE / "real_fixtures.py")], check=True, timeout=1200)
    print(f"baseline: {baseline_name() if path else 'none (rows say no baseline)'}; load {load_text()}", flush=True)
    rows = channel_rows()
    servers = {}
    starting = [threading.Thread(target=lambda s=side: servers.__setitem__(s, start(s))) for side in sides()]
    for t in starting:
        t.start()
    for t in starting:
        t.join()
    try:
        stores = [threading.Thread(target=store_everything, args=(server, True)) for server in servers.values()]
        for t in stores:
            t.start()
        for t in stores:
            t.join()
        servers = {side: servers[side] for side in sides()}  # executors first
        rows += tiny(servers)
        rows += tiny_without_spin()
        rows += real(servers)
        rows += server_side_rows(servers)
        rows += memory_rows(servers)
        rows += fork_rows(servers)
    finally:
        for server in servers.values():
            server.stop()
    rows += scaling_rows()
    print_table(rows)
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"\n{SECTION}: executors ({os.popen('git -C ' + str(ROOT) + ' rev-parse --short HEAD').read().strip()}) "
          f"vs {baseline_name()}; load average now {load_text()}")
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.3f}"
        verdict = {None: "", True: "PASS", False: "FAIL"}[row.met]
        print(f"* {row.name}\n    executors: {row.ours}\n    {row.baseline_name}: {row.baseline}\n"
              f"    ratio {ratio} ({row.ratio_of}) target {row.target_text()} {verdict} · {row.cpu}")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--baseline"] and len(arguments) > 1:
        os.environ["REDISAI_BASELINE"] = arguments[1]
    main()
