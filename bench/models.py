"""AI.MODELEXECUTE round trips for a small ONNX MLP and a small TorchScript model at 1, 4 and 16 concurrent
clients (threads, one redis-py connection each), next to the bare in-process backend call and PING at the
same concurrency (measured just before and just after the models, 1 s each), all measured in this run.

Target: p50 overhead over the bare call <= 1.5x one PING round trip's p50 (concurrency 1).
Client and server share the machine's cores: the load generator's CPU share is reported too.
"""

from __future__ import annotations

import io
import threading
import time

import numpy as np

from common import CpuShare, Row, fmt_rate, fmt_time, median, percentile, print_rows, start_server

import model_fixtures as mf  # noqa: E402  (tests/ is on sys.path through common)

SECTION = "2. MODELEXECUTE"
SECONDS = 2.0
CONCURRENCY = (1, 4, 16)


def load(server, command: tuple, clients: int, seconds: float = SECONDS,
         commands: list[tuple] | None = None) -> tuple[list[float], float, CpuShare]:
    """Latencies (s) of `command` sent in a loop by `clients` threads, each on its own connection; also
    ops/s and the CPU shares. `commands[i]`, when given, is what client i sends instead."""
    latencies: list[float] = []
    lock = threading.Lock()
    connections = [server.client() for _ in range(clients)]
    for connection in connections:
        connection.ping()
    barrier = threading.Barrier(clients + 1)
    stop = [0.0]

    def worker(i):
        client = connections[i]
        mine = []
        mine_command = commands[i] if commands else command
        client.execute_command(*mine_command)  # warm-up
        barrier.wait()
        end = stop[0]
        while True:
            start = time.perf_counter()
            if start >= end:
                break
            client.execute_command(*mine_command)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    with CpuShare(server.process.pid) as cpu:
        stop[0] = time.perf_counter() + seconds
        barrier.wait()
        for t in threads:
            t.join()
    for connection in connections:
        connection.close()
    return latencies, len(latencies) / cpu.wall, cpu


def bare(call, seconds: float = 1.0) -> tuple[list[float], CpuShare]:
    for _ in range(20):
        call()
    samples = []
    with CpuShare() as cpu:
        end = time.perf_counter() + seconds
        while True:
            start = time.perf_counter()
            if start >= end:
                break
            call()
            samples.append(time.perf_counter() - start)
    return samples, cpu


def bare_onnx(x):
    import onnxruntime
    session = onnxruntime.InferenceSession(mf.onnx_mlp(), providers=["CPUExecutionProvider"])
    return bare(lambda: session.run(None, {"x": x}))


def bare_torch(a):
    import torch
    module = torch.jit.load(io.BytesIO(mf.torch_add_mul()))
    ta = torch.from_numpy(a)
    with torch.inference_mode():
        return bare(lambda: module(ta, ta).numpy())


def main() -> list[Row]:
    server = start_server()
    rows: list[Row] = []
    try:
        client = server.client()
        x = np.random.default_rng(0).standard_normal((1, 4)).astype(np.float32)
        client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x.tobytes())
        client.execute_command("AI.MODELSTORE", "onnx", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
        client.execute_command("AI.MODELSTORE", "torch", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
        cases = {
            "ONNX MLP [1,4]": (("AI.MODELEXECUTE", "onnx", "INPUTS", 1, "x", "OUTPUTS", 1, "y"), bare_onnx(x)),
            "TorchScript a*b+a [1,4]": (("AI.MODELEXECUTE", "torch", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y"),
                                        bare_torch(x)),
        }
        measured = {}
        for clients in CONCURRENCY:
            # PING, the models, PING again: the baseline brackets what it is compared with.
            first = load(server, ("PING",), clients, SECONDS / 2)
            for name, (command, _) in cases.items():
                measured[name, clients] = load(server, command, clients)
            second = load(server, ("PING",), clients, SECONDS / 2)
            latencies = first[0] + second[0]
            wall = first[2].wall + second[2].wall
            ping_cpu = CpuShare(server.process.pid)
            ping_cpu.client = (first[2].client * first[2].wall + second[2].client * second[2].wall) / wall
            ping_cpu.server = (first[2].server * first[2].wall + second[2].server * second[2].wall) / wall
            ping = (median(latencies), percentile(latencies, 99), len(latencies) / wall, ping_cpu)
            print(f"PING x{clients}: p50 {fmt_time(ping[0])}, {fmt_rate(ping[2])}", flush=True)
            for name, (command, (bare_samples, bare_cpu)) in cases.items():
                bare_p50 = median(bare_samples)
                bare_rate = len(bare_samples) / bare_cpu.wall
                latencies, throughput, cpu = measured[name, clients]
                p50, p99 = median(latencies), percentile(latencies, 99)
                ping_p50, ping_p99, ping_rate, ping_cpu = ping
                overhead = p50 - bare_p50
                rows.append(Row(
                    SECTION, f"{name}, {clients} client{'s' if clients > 1 else ''}: p50 overhead",
                    f"p50 {fmt_time(p50)} · p99 {fmt_time(p99)} · {fmt_rate(throughput)}",
                    "bare call; PING",
                    f"bare p50 {fmt_time(bare_p50)} ({fmt_rate(bare_rate, 'calls/s')}); PING p50 "
                    f"{fmt_time(ping_p50)} · p99 {fmt_time(ping_p99)} · {fmt_rate(ping_rate)}",
                    overhead / ping_p50, "(p50 − bare p50) / PING p50",
                    (("<=", 1.5) if clients == 1 else None), cpu.text(), ping_cpu.text(),
                    data={"model": name, "clients": clients, "p50": p50, "p99": p99, "ops": throughput,
                          "bare_p50": bare_p50, "bare_rate": bare_rate, "ping_p50": ping_p50, "ping_p99": ping_p99,
                          "ping_ops": ping_rate}))
                print_rows(rows[-1:])
        rows.sort(key=lambda row: list(cases).index(row.data["model"]))
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    main()
