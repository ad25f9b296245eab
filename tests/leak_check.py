"""Resident memory of a server over many tensor cycles and model runs (shared by the leak test and
bench/leaks.py)."""

from __future__ import annotations

import numpy as np

import model_fixtures as mf


def rss(client) -> int:
    return client.info("memory")["used_memory_rss"]


def run(client, cycles: int, executes: int, samples: int = 10, report=None) -> list[tuple[str, int, int]]:
    """Returns (phase, operations done, RSS) samples; the first sample of each phase is after warm-up."""
    client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 4, 4, "BLOB", x.tobytes())
    blob = np.arange(256, dtype=np.float32).tobytes()
    pipe = client.pipeline(transaction=False)
    points = []

    def tensor_cycles(n):
        for i in range(n):
            pipe.execute_command("AI.TENSORSET", f"k{i % 100}", "FLOAT", 256, "BLOB", blob)
            pipe.execute_command("AI.TENSORGET", f"k{i % 100}", "VALUES")
            pipe.execute_command("DEL", f"k{i % 100}")
            if i % 100 == 99:
                pipe.execute()
        pipe.execute()

    def model_runs(n):
        for i in range(n):
            pipe.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, f"y{i % 10}")
            if i % 50 == 49:
                pipe.execute()
        pipe.execute()

    for phase, work, total in (("tensor cycles", tensor_cycles, cycles), ("MODELEXECUTE", model_runs, executes)):
        step = max(1, total // samples)
        work(step)  # warm-up
        for done in range(0, total + 1, step):
            if done:
                work(step)
            points.append((phase, done, rss(client)))
            if report:
                report(*points[-1])
    return points


def growth(points, phase: str) -> float:
    values = [value for name, _, value in points if name == phase]
    return (values[-1] - values[0]) / values[0]
