"""One AI.DAGEXECUTE (set input, script, model, get output) versus the same four commands sent one by
one and pipelined, measured in one run with the same client."""

from __future__ import annotations

import numpy as np

from common import rate, start_server

import model_fixtures as mf  # noqa: E402

SCRIPT = "def pre(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2.0\n"


def main() -> list[tuple]:
    server = start_server()
    try:
        client = server.client()
        client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mlp())
        client.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "pre", "SOURCE", SCRIPT)
        x = np.random.default_rng(0).standard_normal((1, 4)).astype(np.float32).tobytes()
        steps = [
            ("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x),
            ("AI.SCRIPTEXECUTE", "s", "pre", "INPUTS", 1, "x", "OUTPUTS", 1, "x2"),
            ("AI.MODELEXECUTE", "m", "INPUTS", 1, "x2", "OUTPUTS", 1, "y"),
            ("AI.TENSORGET", "y", "BLOB"),
        ]
        dag = ("AI.DAGEXECUTE", "ROUTING", "x", "|>", "AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", x, "|>",
               "AI.SCRIPTEXECUTE", "s", "pre", "INPUTS", 1, "x", "OUTPUTS", 1, "x2", "|>",
               "AI.MODELEXECUTE", "m", "INPUTS", 1, "x2", "OUTPUTS", 1, "y", "|>", "AI.TENSORGET", "y", "BLOB")

        def one_by_one():
            for step in steps:
                client.execute_command(*step)

        pipe = client.pipeline(transaction=False)

        def pipelined():
            for step in steps:
                pipe.execute_command(*step)
            pipe.execute()

        results = {
            "DAGEXECUTE": rate(lambda: client.execute_command(*dag), 1, 3),
            "4 commands one by one": rate(one_by_one, 1, 3),
            "4 commands pipelined": rate(pipelined, 1, 3),
        }
        base = results["DAGEXECUTE"]
        rows = []
        print(f"{'pipeline':>24} {'req/s':>8} {'DAG / this':>10}")
        for name, value in results.items():
            rows.append((name, value, base / value))
            print(f"{name:>24} {value:>8.0f} {base / value:>10.2f}")
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    main()
