"""The server's own cost per command, without a Python client in the way: `redis-benchmark` (C, from
redis-tools) against one redis-server with the module, each AI.* command next to the native command it
is compared with, in the same run, on the same server.

Each pair is measured A B B A (ours, native, native, ours), each slice ~SLICE seconds, after a short
calibration run that sizes `-n` for that slice. Reported per figure: requests/s (redis-benchmark's own),
its p50/p99, and the server's main-thread CPU per command (Δ utime+stime of the main thread from
/proc/<pid>/task/<pid>/stat divided by the commands sent): that is what limits throughput when the main
thread is the bottleneck.

The SET+GET pair of the DAG row: redis-benchmark repeats one command, so the pair is measured as
`SET ab <32 bytes>` and `GET ab`, each with `-P 2` (two commands per round trip, as a pipelined pair
sends them) at the same concurrency, and pairs/s = 1 / (1/SET rps + 1/GET rps).

Targets (issue 15): TENSORGET/GET >= 0.2, TENSORSET/SET (16 B BLOB) >= 0.15, MODELEXECUTE/PING at
-c 16 >= 0.35, DAGEXECUTE/(SET+GET pair) at -c 16 >= 0.3; AI.CONFIG GET BACKENDSPATH (C -> Python ->
reply, nothing else) against GET is the floor of what an AI.* command can cost.
"""

from __future__ import annotations

import csv
import io
import os
import resource
import shutil
import subprocess
import time

import numpy as np

from common import MODELEXECUTE_COMMAND, Row, dag_command, load_server_side_keys, fmt_rate, fmt_time, print_rows, process_cpu_seconds, start_server, thread_cpu_seconds


SECTION = "9. Server-side (redis-benchmark)"
SLICE = float(os.environ.get("BENCH_SERVER_SLICE", "1.0"))
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"

# float32 values none of whose bytes is NUL: redis-benchmark takes its command from argv.
FLOATS = np.array([1.1, 2.2, 3.3, 4.4], np.float32)
assert 0 not in FLOATS.tobytes()


def run_benchmark(port: int, pid: int, command: list[bytes], clients: int, pipeline: int, requests: int) -> dict:
    """One redis-benchmark run: its rps and latency percentiles, its own CPU share, and the server's
    (whole process and main thread) over the same interval."""
    line = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-P", str(pipeline),
            "-n", str(requests), "--csv", *command]
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0, main0, wall0 = process_cpu_seconds(pid), thread_cpu_seconds(pid), time.perf_counter()
    out = subprocess.run(line, capture_output=True, timeout=120, check=True).stdout.decode(errors="replace")
    wall = time.perf_counter() - wall0
    server, main = process_cpu_seconds(pid) - server0, thread_cpu_seconds(pid) - main0
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after_children.ru_utime + after_children.ru_stime
              - before_children.ru_utime - before_children.ru_stime)
    rows = list(csv.reader(io.StringIO(out)))
    header, values = rows[0], rows[-1]
    fields = dict(zip(header, values))
    if "rps" not in fields or float(fields["rps"]) <= 0:
        raise RuntimeError(f"redis-benchmark printed no rate: {out!r}")
    rps = float(fields["rps"])
    return {"rps": rps, "n": requests, "seconds": requests / rps, "wall": wall,
            "p50": float(fields["p50_latency_ms"]) / 1e3, "p99": float(fields["p99_latency_ms"]) / 1e3,
            "client_cpu": client, "server_cpu": server, "main_cpu": main}


def calibrate(port: int, pid: int, command: list[bytes], clients: int, pipeline: int) -> int:
    """Requests for a slice of ~SLICE seconds (and the warm-up of the command)."""
    probe = max(clients * pipeline * 50, 2000)
    first = run_benchmark(port, pid, command, clients, pipeline, probe)
    if first["seconds"] < 0.1:  # too short to trust: once more, ~0.2 s
        first = run_benchmark(port, pid, command, clients, pipeline, int(first["rps"] * 0.2) + 1)
    return max(clients * pipeline, int(first["rps"] * SLICE) // (clients * pipeline) * clients * pipeline)


def pair(port: int, pid: int, ours: list[bytes], base: list[bytes], clients: int, pipeline: int,
         base_pipeline: int | None = None) -> tuple[dict, dict]:
    """ours and base, A B B A, each summed over its two slices."""
    base_pipeline = base_pipeline or pipeline
    n_ours = calibrate(port, pid, ours, clients, pipeline)
    n_base = calibrate(port, pid, base, clients, base_pipeline)
    runs: dict[str, list[dict]] = {"ours": [], "base": []}
    for which in ("ours", "base", "base", "ours"):
        command, n, p = (ours, n_ours, pipeline) if which == "ours" else (base, n_base, base_pipeline)
        runs[which].append(run_benchmark(port, pid, command, clients, p, n))
    return combine(runs["ours"]), combine(runs["base"])


def combine(slices: list[dict]) -> dict:
    n = sum(s["n"] for s in slices)
    seconds = sum(s["seconds"] for s in slices)
    wall = sum(s["wall"] for s in slices)
    return {"rps": n / seconds, "n": n, "seconds": seconds,
            "p50": sorted(s["p50"] for s in slices)[len(slices) // 2],  # the larger of two slices' p50
            "p99": max(s["p99"] for s in slices),
            "client": sum(s["client_cpu"] for s in slices) / wall,
            "server": sum(s["server_cpu"] for s in slices) / wall,
            "main": sum(s["main_cpu"] for s in slices) / wall,
            "main_us": sum(s["main_cpu"] for s in slices) / n * 1e6}


def text(r: dict, unit: str = "ops/s") -> str:
    return (f"{fmt_rate(r['rps'], unit)} · p50 {fmt_time(r['p50'])} · p99 {fmt_time(r['p99'])} · "
            f"main thread {r['main_us']:.1f} µs/cmd")


def cpu(r: dict) -> str:
    return f"{r['client']:.0%} (server {r['server']:.0%}, main thread {r['main']:.0%})"


def main() -> list[Row]:
    server = start_server()
    port, pid = server.port, server.process.pid
    rows: list[Row] = []
    try:
        client = server.client()
        load_server_side_keys(client, FLOATS)
        client.set("ab", FLOATS.tobytes() * 2)
        dag = dag_command(FLOATS)
        reply = client.execute_command(*dag)
        assert reply[-1] == (FLOATS * FLOATS).tobytes(), reply
        client.execute_command(*MODELEXECUTE_COMMAND)
        assert client.execute_command("AI.TENSORGET", "c", "BLOB") == (FLOATS * FLOATS).tobytes()

        def add(name, ours, base_name, base, ratio_of, target, data, unit="ops/s", base_unit="ops/s"):
            ratio = ours["rps"] / base["rps"]
            extra = {}
            if target is not None:
                extra["issue15"] = [{"target": f"server-side {ratio_of}: {name}", "ratio": ratio, "op": target[0],
                                     "value": target[1]}]
            elif "floor" in data:
                extra["issue15"] = [{"target": f"the floor, reported: {ratio_of}: {name}", "ratio": ratio,
                                     "op": None, "value": None}]
            rows.append(Row(SECTION, name, text(ours, unit), base_name, text(base, base_unit),
                            ratio, ratio_of, target, cpu(ours), cpu(base),
                            data={"kind": "server", "label": data, "ours": ours, "base": base, **extra}))
            print_rows(rows[-1:])

        for size, target in ((16, (">=", 0.15)), (4096, None), (65536, None)):
            payload = b"x" * size
            label = {16: "16 B", 4096: "4 KiB", 65536: "64 KiB"}[size]
            ours, base = pair(port, pid, [b"AI.TENSORSET", b"u", b"UINT8", str(size).encode(), b"BLOB", payload],
                              [b"SET", b"s%d" % size, payload], 4, 32)
            add(f"AI.TENSORSET u UINT8 {label} BLOB, -P 32 -c 4", ours, f"SET {label}", base, "TENSORSET/SET",
                target, f"TENSORSET {label}")

        ours, base = pair(port, pid, [b"AI.TENSORSET", b"t", b"FLOAT", b"4", b"VALUES", b"1", b"2", b"3", b"4"],
                          [b"SET", b"s", b"x" * 16], 4, 32)
        add("AI.TENSORSET t FLOAT 4 VALUES 1 2 3 4, -P 32 -c 4", ours, "SET 16 B", base, "TENSORSET/SET", None,
            "TENSORSET VALUES")

        ours, base = pair(port, pid, [b"AI.TENSORGET", b"t", b"BLOB"], [b"GET", b"s"], 4, 32)
        add("AI.TENSORGET t BLOB (FLOAT 4), -P 32 -c 4", ours, "GET 16 B", base, "TENSORGET/GET", (">=", 0.2),
            "TENSORGET")

        ours, base = pair(port, pid, [b"AI.CONFIG", b"GET", b"BACKENDSPATH"], [b"GET", b"s"], 4, 32)
        add("AI.CONFIG GET BACKENDSPATH (C → Python → reply floor), -P 32 -c 4", ours, "GET 16 B", base,
            "CONFIG GET/GET", None, "CONFIG GET (floor)")

        for clients, target in ((16, (">=", 0.35)), (1, None)):
            ours, base = pair(port, pid, MODELEXECUTE_COMMAND, [b"PING"], clients, 1)
            add(f"AI.MODELEXECUTE (ONNX Mul, 4 floats), -c {clients}", ours, "PING", base, "MODELEXECUTE/PING",
                target, f"MODELEXECUTE c={clients}")

        ours, set_ = pair(port, pid, dag, [b"SET", b"ab", FLOATS.tobytes() * 2], 16, 1, base_pipeline=2)
        get = combine([run_benchmark(port, pid, [b"GET", b"ab"], 16, 2, set_["n"] // 2)])
        base = {"rps": 1 / (1 / set_["rps"] + 1 / get["rps"]), "p50": max(set_["p50"], get["p50"]),
                "p99": max(set_["p99"], get["p99"]), "client": (set_["client"] + get["client"]) / 2,
                "server": (set_["server"] + get["server"]) / 2, "main": (set_["main"] + get["main"]) / 2,
                "main_us": set_["main_us"] + get["main_us"]}  # per pair
        add("one AI.DAGEXECUTE (2 TENSORSET, MODELEXECUTE, TENSORGET), -c 16", ours, "SET+GET pair (-P 2)", base,
            "DAG/(SET+GET) per s", (">=", 0.3), "DAGEXECUTE c=16", "req/s", "pairs/s")
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    main()
