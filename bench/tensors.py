"""AI.TENSORSET / AI.TENSORGET BLOB versus plain SET / GET of the same bytes, measured in one run with the
same client: redis-py, pipelined (no MULTI), CONNECTIONS connections each driven by its own thread, so that
the client builds one pipeline while the server executes another (with one connection, client and server
take turns and the figure is their sum, not the server's rate).

Targets: >= 0.8x of SET/GET at >= 64 KiB, >= 0.5x at 16 B. Each pair is measured A B B A (1 s each)
so that drift of the shared 2-core machine hits both alike.
"""

from __future__ import annotations

import os
import threading
import time

from common import Row, fmt_rate, measured_rate, print_rows, start_server

SECTION = "1. Tensor I/O"
SIZES = {"16 B": 16, "4 KiB": 4096, "64 KiB": 65536, "1 MiB": 1 << 20, "16 MiB": 16 << 20}
SLICE = 1.0  # seconds per measurement; each figure is two of them
CONNECTIONS = 2


def target(size: int):
    if size >= 65536:
        return (">=", 0.8)
    if size == 16:
        return (">=", 0.5)
    return None


def batch_for(size: int) -> int:
    return 200 if size <= 4096 else 40 if size <= 65536 else 8 if size <= (1 << 20) else 2


def measure_pair(pipes, batch: int, ours: tuple, base: tuple, server_pid: int):
    def runner(command):
        def pipeline_rounds(pipe, end: float, done: list) -> None:
            while time.perf_counter() < end:
                for _ in range(batch):
                    pipe.execute_command(*command)
                pipe.execute()
                done.append(batch)

        def run_batch():
            """Every connection sends `batch` commands per round trip for a short while."""
            done: list[int] = []
            end = time.perf_counter() + 0.05
            threads = [threading.Thread(target=pipeline_rounds, args=(pipe, end, done)) for pipe in pipes]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sum(done)
        return run_batch

    results = {"ours": [], "base": []}
    for which in ("ours", "base", "base", "ours"):
        command = ours if which == "ours" else base
        results[which].append(measured_rate(runner(command), None, SLICE, server_pid))

    def combine(samples):
        value = sum(r for r, _ in samples) / len(samples)
        client = sum(c.client for _, c in samples) / len(samples)
        server = sum(c.server for _, c in samples) / len(samples)
        return value, f"{client:.0%} (server {server:.0%})"

    return combine(results["ours"]), combine(results["base"])


def main() -> list[Row]:
    server = start_server()
    rows: list[Row] = []
    try:
        client = server.client()
        pipes = [server.client().pipeline(transaction=False) for _ in range(CONNECTIONS)]
        pid = server.process.pid
        for label, size in SIZES.items():
            blob = os.urandom(size)
            floats = size // 4
            client.set("s", blob)
            client.execute_command("AI.TENSORSET", "t", "FLOAT", floats, "BLOB", blob)
            assert client.execute_command("AI.TENSORGET", "t", "BLOB") == blob
            batch = batch_for(size)
            pairs = (
                ("TENSORSET", ("AI.TENSORSET", "t", "FLOAT", floats, "BLOB", blob), "SET", ("SET", "s", blob)),
                ("TENSORGET", ("AI.TENSORGET", "t", "BLOB"), "GET", ("GET", "s")),
            )
            for ours_name, ours, base_name, base in pairs:
                (value, cpu), (base_value, base_cpu) = measure_pair(pipes, batch, ours, base, pid)
                mb, base_mb = value * size / 1e6, base_value * size / 1e6
                rows.append(Row(
                    SECTION, f"AI.{ours_name} BLOB {label}",
                    f"{fmt_rate(value)} · {fmt_rate(mb, 'MB/s')}", base_name,
                    f"{fmt_rate(base_value)} · {fmt_rate(base_mb, 'MB/s')}",
                    value / base_value, f"{ours_name}/{base_name}", target(size), cpu, base_cpu,
                    data={"size": size, "op": ours_name, "base_op": base_name, "ops": value, "base_ops": base_value,
                          "mbps": mb, "base_mbps": base_mb}))
                print_rows(rows[-1:])
            client.delete("s", "t")
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    main()
