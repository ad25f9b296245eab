"""Throughput knobs, each against itself switched off in the same run:

* auto-batching: 16 clients running the ONNX MLP ([1,4] inputs) stored with BATCHSIZE 16 versus the same
  model stored without BATCHSIZE, one server, A B B A slices of 1.5 s;
* THREADS_PER_QUEUE 2 versus 1 on a compute-bound model (torch_slow, ~1.5 s a run on one core, with
  INTRA_OP_PARALLELISM 1): two servers, 2 concurrent clients each sending 2 runs after a warm-up round.
  Target: >= 1.7x on 2 cores.
"""

from __future__ import annotations

import threading

import numpy as np

from common import CpuShare, Row, fmt_rate, fmt_time, load_summary, print_rows, start_server
from models import load

import model_fixtures as mf  # noqa: E402

SECTION = "4. Batching and threads"
CLIENTS = 16
SLICE = 1.5
SLOW_CLIENTS = 2
SLOW_RUNS = 2


def batching() -> list[Row]:
    server = start_server()
    try:
        client = server.client()
        blob = mf.onnx_mlp()
        client.execute_command("AI.MODELSTORE", "batched", "ONNX", "CPU", "BATCHSIZE", CLIENTS, "BLOB", blob)
        client.execute_command("AI.MODELSTORE", "single", "ONNX", "CPU", "BLOB", blob)
        rng = np.random.default_rng(0)
        for i in range(CLIENTS):
            client.execute_command("AI.TENSORSET", f"x{i}", "FLOAT", 1, 4, "BLOB",
                                   rng.standard_normal((1, 4)).astype(np.float32).tobytes())
        commands = {key: [("AI.MODELEXECUTE", key, "INPUTS", 1, f"x{i}", "OUTPUTS", 1, f"y{key}{i}")
                          for i in range(CLIENTS)] for key in ("batched", "single")}
        # The batched model's answers are the unbatched one's.
        for i in range(CLIENTS):
            client.execute_command(*commands["batched"][i])
            client.execute_command(*commands["single"][i])
            assert client.execute_command("AI.TENSORGET", f"ybatched{i}", "BLOB") == \
                client.execute_command("AI.TENSORGET", f"ysingle{i}", "BLOB")
        client.execute_command("AI.INFO", "batched", "RESETSTAT")
        runs = {"batched": [], "single": []}
        for key in ("batched", "single", "single", "batched"):
            runs[key].append(load(server, None, CLIENTS, SLICE, commands=commands[key]))
        info = client.execute_command("AI.INFO", "batched", "EXTENDED")  # with runs
        info = dict(zip(info[::2], info[1::2]))
        mean_batch = int(info[b"calls"]) / max(1, int(info[b"runs"]))
    finally:
        server.stop()

    on, off = load_summary(runs["batched"]), load_summary(runs["single"])
    return [Row(SECTION, f"Auto-batching, ONNX MLP, {CLIENTS} clients: BATCHSIZE {CLIENTS} vs none",
                f"{fmt_rate(on['rate'])} · p50 {fmt_time(on['p50'])} · p99 {fmt_time(on['p99'])} · "
                f"{mean_batch:.1f} requests per backend run (AI.INFO calls/runs)", "no BATCHSIZE",
                f"{fmt_rate(off['rate'])} · p50 {fmt_time(off['p50'])} · p99 {fmt_time(off['p99'])}",
                on["rate"] / off["rate"], "on/off ops/s", None, on["cpu"], off["cpu"],
                data={"kind": "batching", "ours": on["rate"], "base": off["rate"], "mean_batch": mean_batch})]


def slow_throughput(threads: int) -> tuple[float, CpuShare]:
    server = start_server(module_args=("THREADS_PER_QUEUE", str(threads), "INTRA_OP_PARALLELISM", "1"))
    try:
        client = server.client()
        client.execute_command("AI.MODELSTORE", "slow", "TORCH", "CPU", "BLOB", mf.torch_slow())
        for i in range(SLOW_CLIENTS):
            client.execute_command("AI.TENSORSET", f"x{i}", "FLOAT", 2, "VALUES", 1, 2)
        connections = [server.client() for _ in range(SLOW_CLIENTS)]

        def round_of(runs: int):
            def worker(i):
                for _ in range(runs):
                    connections[i].execute_command("AI.MODELEXECUTE", "slow", "INPUTS", 1, f"x{i}",
                                                   "OUTPUTS", 1, f"y{i}")
            workers = [threading.Thread(target=worker, args=(i,)) for i in range(SLOW_CLIENTS)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        round_of(1)  # warm-up: TorchScript's profiling runs, every worker thread's first run
        with CpuShare(server.process.pid) as cpu:
            round_of(SLOW_RUNS)
        return SLOW_CLIENTS * SLOW_RUNS / cpu.wall, cpu
    finally:
        server.stop()


def threads_per_queue() -> list[Row]:
    one, one_cpu = slow_throughput(1)
    two, two_cpu = slow_throughput(2)
    return [Row(SECTION, f"THREADS_PER_QUEUE 2 vs 1, torch_slow, {SLOW_CLIENTS} clients (INTRA_OP_PARALLELISM 1)",
                f"{fmt_rate(two, 'runs/s')} ({1 / two * SLOW_CLIENTS:.2f} s per run)", "THREADS_PER_QUEUE 1",
                f"{fmt_rate(one, 'runs/s')} ({1 / one * SLOW_CLIENTS:.2f} s per run)",
                two / one, "2/1 runs/s", (">=", 1.7), two_cpu.text(), one_cpu.text(),
                data={"kind": "threads", "ours": two, "base": one})]


def main() -> list[Row]:
    rows = batching()
    print_rows(rows)
    rows += threads_per_queue()
    print_rows(rows[-1:])
    return rows


if __name__ == "__main__":
    main()
