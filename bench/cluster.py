"""Past one shard (issue 24, point 3): one redis-server has one main thread and one GIL, so users scale a
RedisAI deployment with Redis Cluster, a shard per core. The same load against a cluster of one shard
and of two shards on this machine, with Redis's own tool.

Each cluster is made of servers with the module loaded, in cluster mode, their slots split evenly
(CLUSTER ADDSLOTSRANGE, CLUSTER MEET; a one-shard cluster owns every slot, so both runs are in cluster
mode). Every shard gets its own keys, with a hash tag of
one of its slots (`m{t0}`, `a{t0}`, ...): what a cluster client does for a user who tags a model with
its inputs. The load: one redis-benchmark process per shard, all started together, each sending its
shard's keys with half the connections (the one-shard run: one process with all of them), so that both
runs offer the same concurrency: requests/s is the sum of the processes' own rates, the server CPU per
command the shards' CPU over their commands. Commands: AI.MODELEXECUTE of the tiny ONNX Mul model at 16
connections, and AI.TENSORSET of 16 B at `-P 32`, 4 connections.

On a machine with fewer cores than shards' busy threads plus the load generators, the shards share the
cores and the ratio measures that sharing; the report projects from the CPU per command (a shard's main
thread, its worker) how many cores a shard keeps busy, which is what throughput grows with.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from redis.cluster import key_slot

from common import Row, fmt_rate, print_rows, process_cpu_seconds, thread_cpu_seconds

import model_fixtures as mf  # noqa: E402  (tests/ is on sys.path through common)
from server import RedisServer, free_cluster_port  # noqa: E402

SECTION = "15. Cluster: shards on one machine"
SLICE = float(os.environ.get("BENCH_CLUSTER_SLICE", "2.0"))
REDIS_BENCHMARK = "redis-benchmark"
FLOATS = np.array([1.1, 2.2, 3.3, 4.4], np.float32)
assert 0 not in FLOATS.tobytes()  # redis-benchmark takes its command from argv


def start_cluster(shards: int) -> list[RedisServer]:
    nodes = []
    try:
        for i in range(shards):
            nodes.append(RedisServer(Path(tempfile.mkdtemp(prefix=f"redisai-cluster{shards}-{i}-")),
                                     config=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                             "--cluster-node-timeout", "15000"),
                                     port=free_cluster_port()).start())
        # By hand: `redis-cli --cluster create` wants three masters at least.
        per_shard = 16384 // shards
        for i, node in enumerate(nodes):
            last = 16383 if i == shards - 1 else (i + 1) * per_shard - 1
            node.client().execute_command("CLUSTER", "ADDSLOTSRANGE", i * per_shard, last)
            if i:
                node.client().execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port)
        deadline = time.monotonic() + 120
        while not all(n.client().cluster("info")["cluster_state"] == "ok" for n in nodes):
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        return nodes
    except BaseException:
        for node in nodes:
            node.stop()
        raise


def tag_of(node: RedisServer) -> str:
    """A hash tag whose slot this node owns."""
    owned = []
    for start, end, master, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
        if int(master[1]) == node.port:
            owned.append((int(start), int(end)))
    for i in range(100000):
        tag = f"t{i}"
        slot = key_slot(tag.encode())
        if any(start <= slot <= end for start, end in owned):
            return tag
    raise RuntimeError(f"no tag found for {node.port}")


def workloads(tag: str) -> dict[str, tuple[list[bytes], int, int]]:
    """name -> (command for one shard's keys, connections in all, pipeline)"""
    t = tag.encode()
    return {
        "AI.MODELEXECUTE (ONNX Mul, 4 floats), 16 connections":
            ([b"AI.MODELEXECUTE", b"m{%s}" % t, b"INPUTS", b"2", b"a{%s}" % t, b"b{%s}" % t, b"OUTPUTS", b"1",
              b"c{%s}" % t], 16, 1),
        "AI.TENSORSET 16 B, -P 32, 4 connections":
            ([b"AI.TENSORSET", b"u{%s}" % t, b"UINT8", b"16", b"BLOB", b"x" * 16], 4, 32),
    }


def load_keys(node: RedisServer, tag: str) -> None:
    client = node.client()
    client.execute_command("AI.MODELSTORE", f"m{{{tag}}}", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    for name in ("a", "b"):
        client.execute_command("AI.TENSORSET", f"{name}{{{tag}}}", "FLOAT", 4, "BLOB", FLOATS.tobytes())
    client.execute_command("AI.MODELEXECUTE", f"m{{{tag}}}", "INPUTS", 2, f"a{{{tag}}}", f"b{{{tag}}}",
                           "OUTPUTS", 1, f"c{{{tag}}}")
    assert client.execute_command("AI.TENSORGET", f"c{{{tag}}}", "BLOB") == (FLOATS * FLOATS).tobytes()


def _line(node: RedisServer, command: list[bytes], clients: int, pipeline: int, n: int) -> list[str]:
    return [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(node.port), "-c", str(clients), "-P", str(pipeline),
            "-n", str(n), "--csv", *command]


def run_together(nodes: list[RedisServer], commands: list[list[bytes]], clients: int, pipeline: int,
                 n: int) -> dict:
    """One redis-benchmark per shard, started together: summed rate, server CPU per command."""
    pids = [node.process.pid for node in nodes]
    cpu0 = [process_cpu_seconds(p) for p in pids]
    main0 = [thread_cpu_seconds(p) for p in pids]
    start = time.perf_counter()
    processes = [subprocess.Popen(_line(node, command, clients, pipeline, n), stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL) for node, command in zip(nodes, commands)]
    outputs = [p.communicate(timeout=600)[0].decode(errors="replace") for p in processes]
    wall = time.perf_counter() - start
    cpu = sum(process_cpu_seconds(p) - c for p, c in zip(pids, cpu0))
    main = sum(thread_cpu_seconds(p) - c for p, c in zip(pids, main0))
    rates = []
    for out in outputs:
        rows = list(csv.reader(io.StringIO(out)))
        rates.append(float(dict(zip(rows[0], rows[-1]))["rps"]))
    total = n * len(nodes)
    return {"rps": sum(rates), "rates": rates, "wall_rps": total / wall, "server_us": cpu / total * 1e6,
            "main_us": main / total * 1e6, "server_share": cpu / wall}


def measure(nodes: list[RedisServer], tags: list[str], name: str) -> dict:
    commands = [workloads(tag)[name][0] for tag in tags]
    connections, pipeline = workloads(tags[0])[name][1:]
    clients = max(1, connections // len(nodes))
    probe = run_together(nodes, commands, clients, pipeline, max(2000, clients * pipeline * 50))
    n = max(clients * pipeline, int(probe["rps"] / len(nodes) * SLICE) // (clients * pipeline) * clients * pipeline)
    slices = [run_together(nodes, commands, clients, pipeline, n) for _ in range(2)]
    best = max(slices, key=lambda s: s["rps"])
    return {**best, "slices": [s["rps"] for s in slices]}


def text(r: dict, shards: int) -> str:
    return (f"{fmt_rate(r['rps'])} ({shards} shard{'s' if shards > 1 else ''}) · server CPU {r['server_us']:.1f} µs/cmd "
            f"(main threads {r['main_us']:.1f}) · servers busy {r['server_share']:.0%} of a core")


def main() -> list[Row]:
    rows: list[Row] = []
    results: dict[int, dict[str, dict]] = {}
    for shards in (1, 2):
        nodes = start_cluster(shards)
        try:
            tags = [tag_of(node) for node in nodes]
            for node, tag in zip(nodes, tags):
                load_keys(node, tag)
            results[shards] = {name: measure(nodes, tags, name) for name in workloads(tags[0])}
        finally:
            for node in nodes:
                node.stop()
    cores = os.cpu_count() or 1
    for name in results[1]:
        one, two = results[1][name], results[2][name]
        ratio = two["rps"] / one["rps"]
        # A shard keeps busy server_share cores at one shard's load; shards on their own cores add up.
        per_core = one["rps"] / max(one["server_share"], 1e-9)
        rows.append(Row(SECTION, name, text(two, 2), "one shard", text(one, 1), ratio, "2 shards / 1 shard",
                        None, data={"kind": "cluster", "one": one, "two": two, "cores": cores,
                                    "rps_per_server_core": per_core}))
        print_rows(rows[-1:])
    return rows


if __name__ == "__main__":
    main()
