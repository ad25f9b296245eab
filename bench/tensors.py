"""AI.TENSORSET / AI.TENSORGET BLOB versus plain SET / GET of the same bytes, measured in one run.

Targets: >= 0.8x of SET/GET at 1 MiB, >= 0.5x at 16 B. Prints one row per size and operation.
"""

from __future__ import annotations

import os

from common import rate, start_server

SIZES = {"16 B": 16, "4 KiB": 4096, "1 MiB": 1 << 20}


def measure(client, size: int) -> dict[str, float]:
    blob = os.urandom(size)
    batch = 200 if size < 65536 else 10
    pipe = client.pipeline(transaction=False)

    def run(*command):
        def batch_of():
            for _ in range(batch):
                pipe.execute_command(*command)
            pipe.execute()
        return rate(batch_of, batch)

    client.set("s", blob)
    client.execute_command("AI.TENSORSET", "t", "UINT8", size, "BLOB", blob)
    return {
        "SET": run("SET", "s", blob),
        "TENSORSET": run("AI.TENSORSET", "t", "UINT8", size, "BLOB", blob),
        "GET": run("GET", "s"),
        "TENSORGET": run("AI.TENSORGET", "t", "BLOB"),
    }


def main() -> list[tuple]:
    server = start_server()
    rows = []
    try:
        client = server.client()
        print(f"{'size':>6} {'op':>10} {'ops/s':>10} {'baseline':>9} {'ops/s':>10} {'ratio':>6}")
        for label, size in SIZES.items():
            result = measure(client, size)
            for ours, base in (("TENSORSET", "SET"), ("TENSORGET", "GET")):
                ratio = result[ours] / result[base]
                rows.append((label, ours, result[ours], base, result[base], ratio))
                print(f"{label:>6} {ours:>10} {result[ours]:>10.0f} {base:>9} {result[base]:>10.0f} {ratio:>6.2f}")
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    main()
