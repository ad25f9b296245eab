"""RSS of redis-server over 100,000 TENSORSET/TENSORGET/DEL cycles and 10,000 MODELEXECUTE calls.
Target: within +-5% of the RSS after warm-up (the baseline, from the same run)."""

from common import CpuShare, Row, fmt_bytes, print_rows, start_server

import leak_check  # noqa: E402

SECTION = "8. Leaks"


def main() -> list[Row]:
    server = start_server()
    try:
        with CpuShare(server.process.pid) as cpu:
            points = leak_check.run(
                server.client(), cycles=100_000, executes=10_000, samples=10,
                report=lambda phase, done, rss: print(f"{phase:>14} {done:>7} RSS {rss / 2**20:8.1f} MiB", flush=True))
    finally:
        server.stop()
    rows = []
    for phase, label in (("tensor cycles", "100,000 TENSORSET/TENSORGET/DEL cycles"),
                         ("MODELEXECUTE", "10,000 MODELEXECUTE (ONNX MLP)")):
        values = [value for name, _, value in points if name == phase]
        growth = leak_check.growth(points, phase)
        rows.append(Row(SECTION, f"RSS change over {label}", f"{fmt_bytes(values[-1])} ({growth:+.1%})",
                        "RSS after warm-up", fmt_bytes(values[0]), abs(growth), "|RSS change| / RSS",
                        ("<=", 0.05), cpu.text(), "", data={"phase": phase, "values": values}))
    print_rows(rows)
    return rows


if __name__ == "__main__":
    main()
