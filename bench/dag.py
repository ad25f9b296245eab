"""One AI.DAGEXECUTE (set input, script, model, get output) versus the same four commands sent one by
one and pipelined, measured in one run with the same client (redis-py, concurrency 1)."""

from __future__ import annotations

import numpy as np

from common import Row, fmt_rate, measured_rate, print_rows, start_server

import model_fixtures as mf  # noqa: E402

SECTION = "7. DAG round trips"
SECONDS = 2.0
SCRIPT = "def pre(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2.0\n"


def main() -> list[Row]:
    server = start_server()
    try:
        client = server.client()
        pid = server.process.pid
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

        ours, ours_cpu = measured_rate(lambda: client.execute_command(*dag), 1, SECONDS, pid)
        rows = []
        for name, run in (("4 commands one by one", one_by_one), ("4 commands pipelined", pipelined)):
            value, cpu = measured_rate(run, 1, SECONDS, pid)
            rows.append(Row(SECTION, f"DAGEXECUTE (set, script, model, get) vs {name}", fmt_rate(ours, "req/s"),
                            name, fmt_rate(value, "req/s"), ours / value, "DAG/base req/s", None,
                            ours_cpu.text(), cpu.text(), data={"ours": ours, "base": value, "name": name}))
        print_rows(rows)
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    main()
