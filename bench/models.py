"""AI.MODELEXECUTE round trips for a small ONNX MLP and a small TorchScript model, next to the bare
in-process backend call and PING, all measured in this run.

Target: p50 overhead over the bare call <= 1.5x one PING round trip (concurrency 1).
Client and server share the machine's cores: the load generator's CPU share is printed too.
"""

from __future__ import annotations

import io
import statistics
import threading
import time

import numpy as np

from common import start_server

import model_fixtures as mf  # noqa: E402  (tests/ is on sys.path through common)

SECONDS = 2.0


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def load(server, command: tuple, clients: int) -> tuple[list[float], float, float]:
    """Latencies (s) of `command` sent in a loop by `clients` threads; also ops/s and client CPU share."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + SECONDS

    def worker():
        client = server.client()
        mine = []
        while time.perf_counter() < stop:
            start = time.perf_counter()
            client.execute_command(*command)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    cpu, wall = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    return latencies, len(latencies) / wall, (time.process_time() - cpu) / wall


def bare(call, repeat: int = 2000) -> list[float]:
    call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


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


def main() -> list[tuple]:
    server = start_server()
    rows = []
    try:
        client = server.client()
        x = np.random.default_rng(0).standard_normal((1, 4)).astype(np.float32)
        client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x.tobytes())
        client.execute_command("AI.MODELSTORE", "onnx", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
        client.execute_command("AI.MODELSTORE", "torch", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
        ping, _, _ = load(server, ("PING",), 1)
        ping_p50 = statistics.median(ping)
        print(f"PING p50 {ping_p50 * 1e6:.0f} us")
        cases = {
            "ONNX MLP": (("AI.MODELEXECUTE", "onnx", "INPUTS", 1, "x", "OUTPUTS", 1, "y"), bare_onnx(x)),
            "TORCH a*b+a": (("AI.MODELEXECUTE", "torch", "INPUTS", 2, "x", "x", "OUTPUTS", 1, "y"), bare_torch(x)),
        }
        print(f"{'model':>12} {'clients':>7} {'p50 us':>8} {'p99 us':>8} {'ops/s':>8} {'bare p50':>9} "
              f"{'overhead':>9} {'/PING':>6} {'client CPU':>10}")
        for name, (command, bare_samples) in cases.items():
            bare_p50 = statistics.median(bare_samples)
            for clients in (1, 4, 16):
                latencies, throughput, client_cpu = load(server, command, clients)
                p50, p99 = statistics.median(latencies), percentile(latencies, 99)
                overhead = p50 - bare_p50
                rows.append((name, clients, p50, p99, throughput, bare_p50, overhead, overhead / ping_p50, client_cpu))
                print(f"{name:>12} {clients:>7} {p50 * 1e6:>8.0f} {p99 * 1e6:>8.0f} {throughput:>8.0f} "
                      f"{bare_p50 * 1e6:>9.1f} {overhead * 1e6:>9.0f} {overhead / ping_p50:>6.2f} {client_cpu:>9.0%}")
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    main()
