"""Shared by the benchmarks: a fresh server with the module, and timing helpers."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from server import RedisServer  # noqa: E402


def start_server(module_args: tuple[str, ...] = (), config: tuple[str, ...] = ()) -> RedisServer:
    return RedisServer(Path(tempfile.mkdtemp(prefix="redisai-bench-")), module_args=module_args, config=config).start()


def rate(run_batch, batch: int, seconds: float = 1.0) -> float:
    """Operations per second of `run_batch()` (which performs `batch` operations), over ~`seconds`."""
    run_batch()  # warm up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run_batch()
        done += batch
    return done / (time.perf_counter() - start)
