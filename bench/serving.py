"""Serving one small ONNX model over the network: FastAPI + uvicorn + onnxruntime (bench/http_app.py, a
separate process, 1 worker) versus one AI.DAGEXECUTE per request (set inputs, run, get output) versus
plain Redis SET+GET of the same bytes (the data-movement floor), at 1 and 16 concurrent requests.

The model is mf.onnx_mul() with 16-float inputs a, b -> c = a * b. Load generators are asyncio: aiohttp
for HTTP (keep-alive, one connection per concurrent request), redis.asyncio for Redis (a pool of one
connection per concurrent request), on the same event loop implementation. Each figure is two 1.5 s
slices, measured A B C D D C B A.

Targets: DAGEXECUTE >= 5x HTTP(JSON) at concurrency 1, >= 10x at 16, and >= 0.5x the SET+GET floor.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import numpy as np
import redis.asyncio

from common import CpuShare, Row, fmt_rate, fmt_time, median, percentile, print_rows, start_server

import model_fixtures as mf  # noqa: E402
from server import free_port  # noqa: E402

SECTION = "3. Serving vs HTTP"
HERE = Path(__file__).resolve().parent
N = 16
CONCURRENCY = (1, 16)
SLICE = 1.5
TARGET_JSON = {1: 5.0, 16: 10.0}

try:
    import uvloop
    LOOP_FACTORY, LOOP_NAME = uvloop.new_event_loop, f"uvloop {uvloop.__version__}"
except ImportError:  # pragma: no cover
    LOOP_FACTORY, LOOP_NAME = asyncio.new_event_loop, "asyncio"


class Uvicorn:
    """uvicorn serving http_app:app with 1 worker; terminated by stop(), or at exit at the latest."""

    def __init__(self, model_path: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="bench-uvicorn-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "http_app:app", "--app-dir", str(HERE), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1", "--log-level", "warning", "--no-access-log"],
            env=dict(os.environ, BENCH_ONNX_MODEL=model_path), stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT)
        atexit.register(self.stop)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}: {Path(self.log.name).read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError("uvicorn did not answer /health")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


async def drive(request, concurrency: int, seconds: float, server_pid: int):
    """`concurrency` tasks each sending `request()` back to back for `seconds`: latencies, CPU shares."""
    await asyncio.gather(*(request() for _ in range(concurrency)))  # warm-up, opens the connections
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def worker():
        while (start := time.perf_counter()) < end:
            await request()
            latencies.append(time.perf_counter() - start)

    with CpuShare(server_pid) as cpu:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, cpu


async def measure(uvicorn: Uvicorn, redis_port: int, redis_pid: int) -> dict:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    expected = a * b
    ab = a.tobytes() + b.tobytes()
    payload = {"a": a.tolist(), "b": b.tolist()}
    dag = ("AI.DAGEXECUTE", "ROUTING", "a", "|>", "AI.TENSORSET", "a", "FLOAT", N, "BLOB", a.tobytes(),
           "|>", "AI.TENSORSET", "b", "FLOAT", N, "BLOB", b.tobytes(),
           "|>", "AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c", "|>", "AI.TENSORGET", "c", "BLOB")
    results: dict = {}
    for concurrency in CONCURRENCY:
        connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as http:
            db = redis.asyncio.Redis(port=redis_port, protocol=2, socket_timeout=60)
            pipes = [db.pipeline(transaction=False)]

            async def http_json():
                async with http.post(uvicorn.url + "/predict", json=payload) as response:
                    return (await response.json())["c"]

            async def http_raw():
                async with http.post(uvicorn.url + "/predict/raw", data=ab) as response:
                    return await response.read()

            async def dagexecute():
                return (await db.execute_command(*dag))[-1]

            async def set_get():
                # SET + GET pipelined: one round trip, the input bytes in and the same bytes back
                pipe = pipes.pop() if pipes else db.pipeline(transaction=False)
                pipe.set("ab", ab)
                pipe.get("ab")
                reply = (await pipe.execute())[1]
                pipes.append(pipe)
                return reply

            # Every path computes what it should before it is timed.
            assert np.allclose(await http_json(), expected)
            assert np.frombuffer(await http_raw(), np.float32).tobytes() == expected.tobytes()
            assert await dagexecute() == expected.tobytes()
            assert await set_get() == ab

            cases = {"HTTP JSON": (http_json, uvicorn.process.pid), "HTTP raw": (http_raw, uvicorn.process.pid),
                     "DAGEXECUTE": (dagexecute, redis_pid), "SET+GET": (set_get, redis_pid)}
            samples: dict = {name: [] for name in cases}
            for name in [*cases, *reversed(cases)]:
                request, pid = cases[name]
                samples[name].append(await drive(request, concurrency, SLICE, pid))
            for name, runs in samples.items():
                latencies = [x for lat, _ in runs for x in lat]
                wall = sum(cpu.wall for _, cpu in runs)
                results[name, concurrency] = {
                    "rate": len(latencies) / wall, "p50": median(latencies), "p99": percentile(latencies, 99),
                    "client": sum(cpu.client * cpu.wall for _, cpu in runs) / wall,
                    "server": sum(cpu.server * cpu.wall for _, cpu in runs) / wall,
                }
            await db.aclose()
    return results


def main() -> list[Row]:
    model_file = tempfile.NamedTemporaryFile(prefix="bench-onnx-mul-", suffix=".onnx", delete=False)
    model_file.write(mf.onnx_mul())
    model_file.close()
    server = uvicorn = None
    rows: list[Row] = []
    try:
        server = start_server()
        server.client().execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
        uvicorn = Uvicorn(model_file.name)
        with asyncio.Runner(loop_factory=LOOP_FACTORY) as runner:
            results = runner.run(measure(uvicorn, server.port, server.process.pid))
    finally:
        if uvicorn is not None:
            uvicorn.stop()
        if server is not None:
            server.stop()
        os.unlink(model_file.name)

    def text(r):
        return f"{fmt_rate(r['rate'], 'req/s')} · p50 {fmt_time(r['p50'])} · p99 {fmt_time(r['p99'])}"

    def cpu(r):
        return f"{r['client']:.0%} (server {r['server']:.0%})"

    for concurrency in CONCURRENCY:
        ours = results["DAGEXECUTE", concurrency]
        for base, target, label in (("HTTP JSON", (">=", TARGET_JSON[concurrency]), "FastAPI JSON"),
                                    ("HTTP raw", None, "FastAPI raw float32 body"),
                                    ("SET+GET", (">=", 0.5), "SET+GET pipelined (floor)")):
            theirs = results[base, concurrency]
            rows.append(Row(
                SECTION, f"DAGEXECUTE vs {label}, concurrency {concurrency}", text(ours), base, text(theirs),
                ours["rate"] / theirs["rate"], f"DAG/{base} req/s", target, cpu(ours), cpu(theirs),
                data={"concurrency": concurrency, "base": base, "ours": ours, "theirs": theirs}))
            print_rows(rows[-1:])
    return rows


if __name__ == "__main__":
    main()
