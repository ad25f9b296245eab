"""Resident memory (VmRSS of redis-server), each figure against a baseline from the same run:

* 256 MiB stored as 256 tensors of 1 MiB (AI.TENSORSET FLOAT 262144 BLOB): (RSS after - RSS before) /
  bytes stored, versus the same bytes stored as 256 strings with SET on a server set up the same way.
  Target: <= 1.1 RSS bytes per tensor byte.
* Idle RSS of a fresh server after AI.CONFIG LOADBACKEND of each backend, versus a fresh server with the
  module and no backend (plain redis-server without the module is listed too).
"""

from __future__ import annotations

import os
import time

from common import CpuShare, Row, fmt_bytes, print_rows, rss_bytes, start_server

SECTION = "5. Memory"
TENSOR = 1 << 20
COUNT = 256
BACKENDS = ("ONNX", "TFLITE", "TORCH", "TF")
SETTLE = 0.5  # seconds after the last command before RSS is read


def stored_rss(kind: str) -> tuple[int, int, int, CpuShare]:
    """RSS before, RSS after storing COUNT x TENSOR bytes as `kind` ("tensor" or "string"), used_memory delta."""
    server = start_server()
    try:
        client = server.client()
        pid = server.process.pid
        blob = os.urandom(TENSOR)
        # One small write first, so that what the first write of a kind sets up is not counted.
        client.execute_command("AI.TENSORSET", "warm", "FLOAT", 4, "BLOB", blob[:16])
        client.set("warm2", blob[:16])
        client.delete("warm", "warm2")
        time.sleep(SETTLE)
        before, used_before = rss_bytes(pid), client.info("memory")["used_memory"]
        pipe = client.pipeline(transaction=False)
        with CpuShare(pid) as cpu:
            for i in range(COUNT):
                if kind == "tensor":
                    pipe.execute_command("AI.TENSORSET", f"t{i}", "FLOAT", TENSOR // 4, "BLOB", blob)
                else:
                    pipe.execute_command("SET", f"t{i}", blob)
                if i % 8 == 7:
                    pipe.execute()
            pipe.execute()
        assert client.dbsize() == COUNT
        time.sleep(SETTLE)
        after, used_after = rss_bytes(pid), client.info("memory")["used_memory"]
        return before, after, used_after - used_before, cpu
    finally:
        server.stop()


def idle_rss(backend: str | None, module: bool = True) -> tuple[int, CpuShare]:
    server = start_server(load_module=module)
    try:
        with CpuShare(server.process.pid) as cpu:
            if backend:
                server.client().execute_command("AI.CONFIG", "LOADBACKEND", backend, "redisai_backend.so")
            time.sleep(SETTLE)
        return rss_bytes(server.process.pid), cpu
    finally:
        server.stop()


def main() -> list[Row]:
    rows: list[Row] = []
    total = TENSOR * COUNT
    t_before, t_after, t_used, t_cpu = stored_rss("tensor")
    s_before, s_after, s_used, s_cpu = stored_rss("string")
    ours, base = (t_after - t_before) / total, (s_after - s_before) / total
    rows.append(Row(
        SECTION, f"RSS per byte stored: {COUNT} tensors of 1 MiB",
        f"{ours:.3f} B/B (RSS {fmt_bytes(t_before)} → {fmt_bytes(t_after)}; used_memory +{fmt_bytes(t_used)})",
        "SET strings", f"{base:.3f} B/B (RSS {fmt_bytes(s_before)} → {fmt_bytes(s_after)}; "
        f"used_memory +{fmt_bytes(s_used)})",
        ours, "(RSS after − before) / bytes", ("<=", 1.1), t_cpu.text(), s_cpu.text(),
        data={"kind": "per_byte", "ours": ours, "base": base}))
    print_rows(rows[-1:])

    plain, plain_cpu = idle_rss(None, module=False)
    none, none_cpu = idle_rss(None)
    rows.append(Row(
        SECTION, "Idle RSS, module loaded, no backend", fmt_bytes(none), "redis-server without the module",
        fmt_bytes(plain), none / plain, "RSS / RSS without module", None, none_cpu.text(), plain_cpu.text(),
        data={"kind": "idle", "backend": "none", "ours": none, "base": plain}))
    print_rows(rows[-1:])
    for backend in BACKENDS:
        value, cpu = idle_rss(backend)
        rows.append(Row(
            SECTION, f"Idle RSS with {backend} loaded (LOADBACKEND)",
            f"{fmt_bytes(value)} (+{fmt_bytes(value - none)})", "no backend", fmt_bytes(none), value / none,
            "RSS / no-backend RSS", None, cpu.text(), none_cpu.text(),
            data={"kind": "idle", "backend": backend, "ours": value, "base": none, "plain": plain}))
        print_rows(rows[-1:])
    return rows


if __name__ == "__main__":
    main()
