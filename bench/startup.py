"""Server start time, from the redis-server process's start (Popen) to:

* the first PING answered: the module with no backend, versus redis-server without the module;
* INFO ai listing all four ai_*_version fields in backends_info, with the module loaded with
  `TF x TORCH x ONNX x TFLITE x` (each imported on a worker at load), versus the module with no backend's
  first PING.

PING is polled every 2 ms on a raw socket, INFO every 10 ms. Starts are repeated (STARTS) and the
median is reported.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import CpuShare, Row, fmt_time, print_rows

from server import RedisServer  # noqa: E402

SECTION = "6. Start time"
STARTS = 3
ALL_BACKENDS = ("TF", "x", "TORCH", "x", "ONNX", "x", "TFLITE", "x")
VERSION_FIELDS = (b"ai_TensorFlow_version", b"ai_TensorFlowLite_version", b"ai_Torch_version",
                  b"ai_onnxruntime_version")


def call(port: int, *words: str) -> bytes | None:
    """One command on a fresh connection; the raw reply, or None when nothing answers yet."""
    request = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request)
            reply = s.recv(65536)
            if reply.startswith(b"$"):
                header, _, body = reply.partition(b"\r\n")
                while len(body) < int(header[1:]) + 2:
                    body += s.recv(65536)
                return body
            return reply
    except OSError:
        return None


def one_start(module_args: tuple[str, ...] | None, wait_backends: bool = False) -> tuple[float, float | None, CpuShare]:
    """(seconds to first PONG, seconds until INFO ai lists every backend or None, CpuShare)."""
    server = RedisServer(Path(tempfile.mkdtemp(prefix="redisai-bench-start-")), module_args=module_args or (),
                         load_module=module_args is not None)
    process = None
    try:
        with CpuShare() as cpu:
            start = time.perf_counter()
            process = subprocess.Popen(server.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            server.process = process
            while call(server.port, "PING") != b"+PONG\r\n":
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {server.log()[-2000:]}")
                if time.perf_counter() - start > 120:
                    raise TimeoutError("no PONG")
                time.sleep(0.002)
            first_ping = time.perf_counter() - start
            ready = None
            if wait_backends:
                while True:
                    info = call(server.port, "INFO", "ai") or b""
                    if all(field in info for field in VERSION_FIELDS):
                        ready = time.perf_counter() - start
                        break
                    if time.perf_counter() - start > 180:
                        raise TimeoutError(f"backends not all loaded: {info!r}")
                    time.sleep(0.01)
        return first_ping, ready, cpu
    finally:
        if process is not None:
            server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def main() -> list[Row]:
    plain = [one_start(None) for _ in range(STARTS)]
    bare = [one_start(()) for _ in range(STARTS)]
    full = [one_start(ALL_BACKENDS, wait_backends=True) for _ in range(STARTS)]
    plain_ping = statistics.median(p for p, _, _ in plain)
    bare_ping = statistics.median(p for p, _, _ in bare)
    full_ping = statistics.median(p for p, _, _ in full)
    full_ready = statistics.median(r for _, r, _ in full)

    def cpu(samples):
        return f"{statistics.mean(c.client for _, _, c in samples):.0%}"

    rows = [
        Row(SECTION, "Start to first PING, module loaded, no backend", fmt_time(bare_ping),
            "redis-server without the module", fmt_time(plain_ping), bare_ping / plain_ping, "time / time", None,
            cpu(bare), cpu(plain), data={"kind": "ping", "ours": bare_ping, "base": plain_ping}),
        Row(SECTION, "Start with TF TORCH ONNX TFLITE until INFO ai lists all four",
            f"{fmt_time(full_ready)} (first PING at {fmt_time(full_ping)})", "module, no backend: first PING",
            fmt_time(bare_ping), full_ready / bare_ping, "time / time", None, cpu(full), cpu(bare),
            data={"kind": "all", "ours": full_ready, "first_ping": full_ping, "base": bare_ping,
                  "plain": plain_ping}),
    ]
    print_rows(rows)
    return rows


if __name__ == "__main__":
    main()
