"""Serving one small ONNX model over the network: FastAPI + uvicorn + onnxruntime (bench/http_app.py, a
separate process, 1 worker), LitServe and Ray Serve (bench/peer_apps.py, each in its default setup, one
worker / replica) versus one AI.DAGEXECUTE per request (set inputs, run, get output) versus plain Redis
SET+GET of the same bytes (the data-movement floor), at 1 and 16 concurrent requests.

The model is mf.onnx_mul() with 16-float inputs a, b -> c = a * b. Load generators are asyncio: aiohttp
for HTTP (keep-alive, one connection per concurrent request), redis.asyncio for Redis (a pool of one
connection per concurrent request), on the same event loop implementation. Each figure is two 1.5 s
slices, measured A B C D E F F E D C B A.

Targets: DAGEXECUTE >= 5x HTTP(JSON) at concurrency 1, >= 10x at 16, and >= 0.5x the SET+GET floor.
Issue 15's: DAGEXECUTE >= 3x FastAPI (JSON) at 16 clients, >= 15x LitServe, >= 50x Ray Serve, and its
p99 at 16 clients below every peer's p50.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

import aiohttp
import numpy as np
import redis.asyncio

from common import CpuShare, Row, fmt_rate, fmt_time, median, percentile, print_rows, start_server

import model_fixtures as mf  # noqa: E402
from peers import LitServe, RayServe, Uvicorn

SECTION = "3. Serving vs HTTP"
N = 16
CONCURRENCY = (1, 16)
SLICE = 1.5
TARGET_JSON = {1: 5.0, 16: 10.0}
# Issue 15, at 16 clients: DAGEXECUTE req/s over each peer's (JSON body, same model, same client).
ISSUE15 = {"HTTP JSON": 3.0, "LitServe": 15.0, "Ray Serve": 50.0}

try:
    import uvloop
    LOOP_FACTORY, LOOP_NAME = uvloop.new_event_loop, f"uvloop {uvloop.__version__}"
except ImportError:  # pragma: no cover
    LOOP_FACTORY, LOOP_NAME = asyncio.new_event_loop, "asyncio"


async def drive(request, concurrency: int, seconds: float, server_pid: int, tree: bool = False):
    """`concurrency` tasks each sending `request()` back to back for `seconds`: latencies, CPU shares."""
    await asyncio.gather(*(request() for _ in range(concurrency)))  # warm-up, opens the connections
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def worker():
        while (start := time.perf_counter()) < end:
            await request()
            latencies.append(time.perf_counter() - start)

    with CpuShare(server_pid, tree=tree) as cpu:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, cpu


async def measure(uvicorn: Uvicorn, others: dict, redis_port: int, redis_pid: int) -> dict:
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
                async with http.post(uvicorn.url, json=payload) as response:
                    return (await response.json())["c"]

            def peer_json(url):
                async def request():
                    async with http.post(url, json=payload) as response:
                        response.raise_for_status()
                        return (await response.json())["c"]
                return request

            async def http_raw():
                async with http.post(uvicorn.url + "/raw", data=ab) as response:
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
            for peer in others.values():
                assert np.allclose(await peer_json(peer.url)(), expected)

            cases = {"HTTP JSON": (http_json, uvicorn.pid), "HTTP raw": (http_raw, uvicorn.pid),
                     **{name: (peer_json(peer.url), peer.pid) for name, peer in others.items()},
                     "DAGEXECUTE": (dagexecute, redis_pid), "SET+GET": (set_get, redis_pid)}
            samples: dict = {name: [] for name in cases}
            for name in [*cases, *reversed(cases)]:
                request, pid = cases[name]
                samples[name].append(await drive(request, concurrency, SLICE, pid, tree=pid != redis_pid))
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
    others: dict = {}
    rows: list[Row] = []
    ready = {"a": [1.0] * N, "b": [2.0] * N}
    startup: dict[str, float] = {}
    try:
        server = start_server()
        server.client().execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
        uvicorn = Uvicorn(model_file.name, ready)
        startup["HTTP JSON"] = uvicorn.startup_seconds
        for name, kind in (("LitServe", LitServe), ("Ray Serve", RayServe)):
            try:
                others[name] = kind(model_file.name, ready)
                startup[name] = others[name].startup_seconds
            except Exception as e:  # a peer that cannot start here loses its rows, not the others'
                print(f"{name} did not start: {e}", flush=True)
        with asyncio.Runner(loop_factory=LOOP_FACTORY) as runner:
            results = runner.run(measure(uvicorn, others, server.port, server.process.pid))
    finally:
        for peer in [uvicorn, *others.values()]:
            if peer is not None:
                peer.stop()
        if server is not None:
            server.stop()
        os.unlink(model_file.name)

    def text(r):
        return f"{fmt_rate(r['rate'], 'req/s')} · p50 {fmt_time(r['p50'])} · p99 {fmt_time(r['p99'])}"

    def cpu(r):
        return f"{r['client']:.0%} (server {r['server']:.0%})"

    for concurrency in CONCURRENCY:
        ours = results["DAGEXECUTE", concurrency]
        bases = [("HTTP JSON", (">=", TARGET_JSON[concurrency]), "FastAPI JSON"),
                 ("HTTP raw", None, "FastAPI raw float32 body")]
        bases += [(name, (">=", ISSUE15[name]) if concurrency == 16 else None, f"{name} (JSON)") for name in others]
        bases += [("SET+GET", (">=", 0.5), "SET+GET pipelined (floor)")]
        for base, target, label in bases:
            theirs = results[base, concurrency]
            ratio = ours["rate"] / theirs["rate"]
            data = {"concurrency": concurrency, "base": base, "ours": ours, "theirs": theirs}
            if base in startup:
                data["startup_s"] = startup[base]
            if concurrency == 16 and base in ISSUE15:
                data["issue15"] = [{"target": f"DAGEXECUTE / {label} req/s, 16 clients", "ratio": ratio,
                                    "op": ">=", "value": ISSUE15[base]}]
            rows.append(Row(
                SECTION, f"DAGEXECUTE vs {label}, concurrency {concurrency}", text(ours), base, text(theirs),
                ratio, f"DAG/{base} req/s", target, cpu(ours), cpu(theirs), data=data))
            print_rows(rows[-1:])
        if concurrency == 16:
            peers = [name for name in ("HTTP JSON", *others) if (name, 16) in results]
            lowest = min(peers, key=lambda name: results[name, 16]["p50"])
            p50 = results[lowest, 16]["p50"]
            rows.append(Row(
                SECTION, "DAGEXECUTE p99 vs the peers' lowest p50, concurrency 16",
                f"p99 {fmt_time(ours['p99'])}", f"lowest peer p50 ({lowest})",
                " · ".join(f"{n}: p50 {fmt_time(results[n, 16]['p50'])}" for n in peers),
                ours["p99"] / p50, "DAG p99 / lowest peer p50", ("<=", 1.0), cpu(ours), "",
                data={"kind": "p99", "issue15": [{"target": "DAGEXECUTE p99 at 16 clients below every peer's p50",
                                                   "ratio": ours["p99"] / p50, "op": "<=", "value": 1.0}]}))
            print_rows(rows[-1:])
    return rows


if __name__ == "__main__":
    main()
