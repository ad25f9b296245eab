"""`make bench`: runs every benchmark in this folder, each against its baseline measured in the same run,
and writes docs/performance.md (the table, machine facts, method) and docs/performance.png (plots).

    .venv/bin/python bench/run.py            # everything (about 3-4 minutes on 2 cores)
    .venv/bin/python bench/run.py tensors    # only the named benchmarks (the docs are still rewritten)

bench/fuzz.py is not part of it (a correctness run, not a measurement).
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(HERE))

from common import Row  # noqa: E402

BENCHMARKS = ["tensors", "models", "serving", "batching", "memory", "startup", "dag", "leaks"]
PACKAGES = ["redis", "numpy", "onnxruntime", "torch", "tensorflow-cpu", "ai-edge-litert", "fastapi", "starlette",
            "pydantic", "uvicorn", "uvloop", "httptools", "aiohttp", "matplotlib"]


# -- machine facts -------------------------------------------------------------------------------------

def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _run(*command: str) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> list[tuple[str, str]]:
    cpuinfo = _read("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    mhz = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("cpu MHz")]
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal")), 0)
    mem = f"{mem_kb / 2**20:.1f} GiB" if mem_kb else "?"
    os_name = next((line.split("=", 1)[1].strip('"') for line in _read("/etc/os-release").splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.system())
    commit = _run("git", "rev-parse", "--short", "HEAD")
    if _run("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return [
        ("nproc", f"{_run('nproc') or os.cpu_count()} (os.cpu_count() {os.cpu_count()})"),
        ("CPU model (/proc/cpuinfo)", f"{models[0] if models else '?'}" + (f", {mhz[0]} MHz" if mhz else "")),
        ("Memory", mem),
        ("OS, kernel", f"{os_name}, Linux {platform.release()}"),
        ("redis-server", _run("redis-server", "--version")),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("Packages", ", ".join(versions)),
        ("Commit", commit or "?"),
    ]


# -- the report ------------------------------------------------------------------------------------------

def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(rows: list[Row]) -> str:
    lines = ["| Benchmark | Ours | Baseline (same run) | Ratio | Target | Result "
             "| Load generator CPU: ours / baseline |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "—" if row.ratio is None else f"**{row.ratio:.2f}** ({row.ratio_of})"
        lines.append("| " + " | ".join(cell(x) for x in (
            f"{row.section.split('.')[0]} · {row.name}", row.ours, f"{row.baseline_name}: {row.baseline}", ratio,
            row.target_text(), row.met_text(),
            f"{row.cpu} / {row.cpu_baseline}" if row.cpu_baseline else row.cpu)) + " |")
    return "\n".join(lines)


METHOD = """\
The first column's number is the section: 1–6 are the issue's rows, 7–8 the earlier benchmarks.

* **1. Tensor I/O** — two redis-py connections, each pipelined (`pipeline(transaction=False)`, 200 commands
  per round trip up to 4 KiB, 40 at 64 KiB, 8 at 1 MiB, 2 at 16 MiB) from its own thread, so that the client
  builds one round trip while the server executes the other (with one connection they take turns, and the
  figure measures client plus server time instead of the server's rate). `AI.TENSORSET t FLOAT n BLOB <bytes>` /
  `AI.TENSORGET t BLOB` against `SET s <bytes>` / `GET s` of the same random bytes; each figure is two 1 s
  slices taken A B B A with its baseline. MB/s = ops/s × payload (10⁶ bytes).
* **2. MODELEXECUTE** — `AI.MODELEXECUTE` of the ONNX MLP (x [1,4] → y [1,3]) and the TorchScript
  `a*b+a` ([1,4]) from tests/model_fixtures.py, 1/4/16 threads each on its own connection, 2 s each. The bare
  call is `InferenceSession.run` / the TorchScript module called in the benchmark process (same model, same
  input, 1 s of back-to-back calls); PING is measured with the same threads at the same concurrency.
  Ratio = (MODELEXECUTE p50 − bare p50) / PING p50. The target applies at 1 client.
* **3. Serving vs HTTP** — model: `mf.onnx_mul()` with inputs a, b of 16 floats. HTTP: bench/http_app.py
  (FastAPI, `async def` handlers calling onnxruntime inline; pydantic `{"a": [...], "b": [...]}` JSON endpoint
  and a raw float32 body endpoint) under `uvicorn --workers 1` (uvloop and httptools, access log off) in its own
  process, terminated at the end. Redis: one `AI.DAGEXECUTE ROUTING a |> AI.TENSORSET a … |> AI.TENSORSET b … |>
  AI.MODELEXECUTE … |> AI.TENSORGET c BLOB` per request; floor: `SET ab <a‖b bytes>` + `GET ab` pipelined
  (one round trip, 128 B in and out). Load: asyncio (uvloop) with aiohttp / redis.asyncio, 1 or 16 requests in
  flight, each figure two 1.5 s slices (A B C D D C B A). Every path's answer is checked before timing.
* **4. Batching and threads** — 16 threads sending `AI.MODELEXECUTE` of the ONNX MLP, each on its own
  input key, to a model stored with `BATCHSIZE 16` and to the same model without it (one server, A B B A,
  1.5 s slices). `THREADS_PER_QUEUE 2` vs `1`: two servers with `INTRA_OP_PARALLELISM 1`, `mf.torch_slow()`
  (~1.5 s a run), 2 clients × 2 runs after a warm-up round.
* **5. Memory** — VmRSS of redis-server from /proc. 256 × 1 MiB stored (pipelined, 8 per round trip) on a
  fresh server, RSS read 0.5 s after the last write, versus the same with SET on another fresh server. Idle
  RSS: one fresh server per backend, `AI.CONFIG LOADBACKEND <backend> redisai_backend.so`, RSS 0.5 s later.
* **6. Start time** — from `Popen` of redis-server to the first `+PONG` (raw socket, polled every 2 ms), and
  with module arguments `TF x TORCH x ONNX x TFLITE x` until `INFO ai` lists `ai_TensorFlow_version`,
  `ai_TensorFlowLite_version`, `ai_Torch_version` and `ai_onnxruntime_version` (polled every 10 ms); median
  of 3 starts each.
* **7. DAG round trips** and **8. Leaks** — not rows of the issue, kept from the earlier benchmarks: one
  DAG versus the same 4 commands one by one and pipelined; RSS drift over 100,000 tensor cycles and 10,000
  model runs (target ±5 %).
"""

LIMITS = """\
* **Client and server share the same 2 cores.** Every load generator runs on the machine it measures, so
  each figure is a joint limit of client and server. The last column gives the load generator's own CPU
  share (`time.process_time()` / wall time; 100 % = one core) while it measured our figure and while it
  measured the baseline, and in parentheses the server process's share over the same interval (from
  /proc/<pid>/stat). Where client + server approach 200 %, the machine is saturated and a faster server can
  only show up as a smaller client share, not as more throughput.
* The load generators are Python (redis-py, redis.asyncio, aiohttp), so per-request client cost is tens of
  microseconds; the baselines (SET/GET, PING, HTTP) pay the same client cost as our figures, which is why
  each ratio is measured with the same client in the same run.
* This is a shared virtual machine: absolute figures move by 10–30 % from run to run. Ratios are more stable
  because each pair is measured back to back (interleaved where the table says so); treat ratios within
  ~10 % of a target as inconclusive.
* One run per `make bench`, short slices (1–3 s) to keep it under 15 minutes: no confidence intervals.
"""


LIMITING = """\
Measured on this machine while tuning (server-side figures from `redis-benchmark -c 1`, so the Python load
generator is out of the picture; timelines from `perf_counter_ns` stamps at each hand-off):

* **TENSORSET 16 MiB** (target 0.8). The BLOB is copied once, from Redis's argument straight into the
  tensor (arguments of 64 KiB or more reach Python as views, not bytes). `perf record` of the server shows
  the rest: page faults (`exc_page_fault` + `clear_page_erms`, ~27 % of samples) on the tensor's fresh
  16 MiB block — jemalloc serves blocks of 8 MiB and more from an arena that returns them to the kernel at
  once, so every new tensor faults its pages in again — and the `memmove` into it. SET does neither: it
  keeps the query buffer itself as the value. We cannot adopt that buffer: its data starts 9 bytes into the
  allocation (the sds header), misaligned for FLOAT/DOUBLE arrays. Server time per 16 MiB TENSORSET fell
  from 31 ms to 24 ms with the single copy; SET takes 11–13 ms.
* **MODELEXECUTE p50 overhead ≤ 1.5 × PING** (ONNX at the edge, TorchScript above). Server-side p50 went
  from ~200 µs to ~115–140 µs (PING: 55 µs). Per request now, medians: main thread in Python ~18 µs for the
  command and ~19 µs for the reply (the same code runs ~3× faster in a hot loop: after each sleep the caches
  are cold), the worker ~20–25 µs around a 5 µs framework call, and ~30 µs from `RM_UnblockClient` to
  Redis calling the reply callback, measured in the shim (the GIL wait there is 0.2 µs): that is the main
  thread waking from `epoll_wait` on this VM. Keeping the event loop polling while runs are in flight (a
  0 ms module timer, `RM_EventLoopAddOneShot`) did not shorten it and cost throughput, so it was dropped.
  TorchScript adds ~5 µs of dispatcher overhead per call over onnxruntime.
* **DAGEXECUTE ≥ 5× / ≥ 10× FastAPI + JSON.** The targets were set from a run where HTTP+JSON served 742
  req/s; FastAPI with uvloop and httptools serves ~1,900–2,000 req/s here, and even the data-movement floor
  (SET+GET, one round trip) is only ~3.3× (1 client) and ~2.7× (16 clients) the HTTP rate on this machine:
  no DAG can reach 5× or 10× HTTP while it costs more than SET+GET. The DAG beats HTTP+JSON at both
  concurrencies; against the raw-body endpoint (no JSON) it is on par.
* **DAGEXECUTE ≥ 0.5 × SET+GET.** A DAG pays everything MODELEXECUTE pays (two thread hand-offs, Python
  on both ends) plus parsing 30 arguments, against a floor of one Redis round trip with two C commands. The
  Python client's own per-request cost (redis.asyncio packs and parses the 30-argument DAG in ~20 µs more
  than PING) is in both figures. At one client, a worker that spins for the next job only helps if that job
  arrives within `WORKER_SPIN_US`; with this client the gap between DAGs is ~250–300 µs, which is why the
  default is 500 µs.
"""


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_section: dict[str, list[Row]] = {}
    for row in rows:
        by_section.setdefault(row.section.split(".")[0], []).append(row)
    fig = plt.figure(figsize=(19, 16))
    spec = fig.add_gridspec(3, 3)
    cells = [[fig.add_subplot(spec[i, j]) for j in range(3)] for i in range(2)]
    axes = [[cells[0][0], cells[0][2], cells[1][0]], [cells[1][1], cells[1][2], fig.add_subplot(spec[2, 0])]]
    ratio_ax, targets_ax = cells[0][1], fig.add_subplot(spec[2, 1:])
    fig.suptitle("RedisAI (Python core) — make bench, each figure next to its baseline from the same run "
                 f"({os.cpu_count()} cores shared by client and server)", fontsize=13)

    def missing(ax, title):
        ax.set_title(title)
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)

    # 1. Tensor I/O
    ax = axes[0][0]
    tensor_rows = [r for r in by_section.get("1", []) if r.data]
    if tensor_rows:
        for op, base, color in (("TENSORSET", "SET", "tab:blue"), ("TENSORGET", "GET", "tab:orange")):
            mine = sorted((r.data for r in tensor_rows if r.data["op"] == op), key=lambda d: d["size"])
            sizes = [d["size"] for d in mine]
            ax.plot(sizes, [d["mbps"] for d in mine], "o-", color=color, label=f"AI.{op}")
            ax.plot(sizes, [d["base_mbps"] for d in mine], "s--", color=color, alpha=0.6, label=base)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks([16, 4096, 65536, 1 << 20, 16 << 20], ["16 B", "4 KiB", "64 KiB", "1 MiB", "16 MiB"])
        ax.set_xlabel("payload")
        ax.set_ylabel("MB/s (pipelined, 2 connections)")
        ax.set_title("1. Tensor I/O vs SET/GET")
        ax.legend(fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    else:
        missing(ax, "1. Tensor I/O")

    # 1b. Tensor I/O ratios against their targets
    ax = ratio_ax
    if tensor_rows:
        for op, color in (("TENSORSET", "tab:blue"), ("TENSORGET", "tab:orange")):
            mine = sorted((r for r in tensor_rows if r.data["op"] == op), key=lambda r: r.data["size"])
            ax.plot([r.data["size"] for r in mine], [r.ratio for r in mine], "o-", color=color,
                    label=f"{op}/{mine[0].data['base_op']}")
        ax.plot([65536, 16 << 20], [0.8, 0.8], "k--", lw=1.2, label="target (≥ 0.8 from 64 KiB, ≥ 0.5 at 16 B)")
        ax.plot([16], [0.5], "k_", markersize=18, markeredgewidth=2)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks([16, 4096, 65536, 1 << 20, 16 << 20], ["16 B", "4 KiB", "64 KiB", "1 MiB", "16 MiB"])
        ax.set_ylim(0, max(1.3, max(r.ratio for r in tensor_rows) * 1.1))
        ax.set_xlabel("payload")
        ax.set_ylabel("ratio, ops/s (ours / SET or GET)")
        ax.set_title("1. Tensor I/O: ratio to SET/GET")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(True, alpha=0.3)
    else:
        missing(ax, "1. Tensor I/O ratios")

    # Every target: how far each ratio is from it (>= 1 means met)
    ax = targets_ax
    targeted = [r for r in rows if r.target is not None and r.ratio is not None]
    if targeted:
        def score(r):
            op, value = r.target
            return r.ratio / value if op == ">=" else (value / r.ratio if r.ratio else float("inf"))

        def short(r):
            name = r.name.replace("AI.", "").replace(" BLOB", "").replace(": p50 overhead", "")
            name = name.replace("FastAPI ", "").replace(" pipelined (floor)", " floor").replace("concurrency ", "c=")
            name = name.replace(", torch_slow, 2 clients (INTRA_OP_PARALLELISM 1)", "")
            name = name.replace("RSS per byte stored: 256 tensors of 1 MiB", "RSS per tensor byte")
            name = name.replace("TorchScript a*b+a [1,4]", "Torch").replace("ONNX MLP [1,4]", "ONNX")
            name = name.replace("RSS change over 100,000 TENSORSET/TENSORGET/DEL cycles", "RSS drift, tensors")
            name = name.replace("RSS change over 10,000 MODELEXECUTE (ONNX MLP)", "RSS drift, MODELEXECUTE")
            return name[:60]

        scores = [min(score(r), 3.0) for r in targeted]
        y = range(len(targeted))
        ax.barh(y, scores, color=["tab:green" if r.met else "tab:red" for r in targeted])
        for i, (r, sc) in enumerate(zip(targeted, scores)):
            ax.text(sc + 0.03, i, f"{r.ratio:.2f} vs {r.target_text()}", va="center", fontsize=9)
        ax.axvline(1.0, color="black", lw=1.2)
        ax.set_yticks(list(y), [short(r) for r in targeted], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, 3.4)
        ax.set_xlabel("ratio / target (≤-targets inverted; ≥ 1 = met, capped at 3)")
        met = sum(1 for r in targeted if r.met)
        ax.set_title(f"Targets: {met} of {len(targeted)} met")
        ax.grid(True, axis="x", alpha=0.3)
    else:
        missing(ax, "Targets")

    # 2. MODELEXECUTE latency
    ax = axes[0][1]
    model_rows = [r for r in by_section.get("2", []) if r.data]
    if model_rows:
        names = list(dict.fromkeys(r.data["model"] for r in model_rows))
        for name, color in zip(names, ("tab:blue", "tab:green")):
            mine = sorted((r.data for r in model_rows if r.data["model"] == name), key=lambda d: d["clients"])
            clients = [d["clients"] for d in mine]
            ax.plot(clients, [d["p50"] * 1e3 for d in mine], "o-", color=color, label=f"{name} p50")
            ax.plot(clients, [d["p99"] * 1e3 for d in mine], "o:", color=color, alpha=0.6, label=f"{name} p99")
            ax.axhline(mine[0]["bare_p50"] * 1e3, color=color, ls="--", lw=1, alpha=0.7,
                       label=f"bare call p50 ({name.split()[0]})")
        mine = sorted((r.data for r in model_rows if r.data["model"] == names[0]), key=lambda d: d["clients"])
        ax.plot([d["clients"] for d in mine], [d["ping_p50"] * 1e3 for d in mine], "s-", color="gray",
                label="PING p50")
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 4, 16], ["1", "4", "16"])
        ax.set_yscale("log")
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("latency (ms)")
        ax.set_title("2. MODELEXECUTE latency vs bare call and PING")
        ax.legend(fontsize=7.5, loc="upper left")
        ax.grid(True, which="both", alpha=0.3)
    else:
        missing(ax, "2. MODELEXECUTE")

    # 3. Serving
    ax = axes[0][2]
    serve_rows = [r for r in by_section.get("3", []) if r.data]
    if serve_rows:
        import numpy as np
        concurrency = sorted({r.data["concurrency"] for r in serve_rows})
        series = {"HTTP JSON": "tab:red", "HTTP raw": "tab:orange", "DAGEXECUTE": "tab:blue", "SET+GET": "gray"}
        values = {name: [] for name in series}
        for c in concurrency:
            for name in series:
                if name == "DAGEXECUTE":
                    data = next(r.data["ours"] for r in serve_rows if r.data["concurrency"] == c)
                else:
                    data = next(r.data["theirs"] for r in serve_rows
                                if r.data["concurrency"] == c and r.data["base"] == name)
                values[name].append(data["rate"])
        x = np.arange(len(concurrency))
        width = 0.2
        for i, (name, color) in enumerate(series.items()):
            bars = ax.bar(x + (i - 1.5) * width, values[name], width, color=color,
                          label={"SET+GET": "SET+GET floor", "HTTP raw": "HTTP raw bytes"}.get(name, name))
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_xticks(x, [f"concurrency {c}" for c in concurrency])
        ax.set_ylabel("requests/s")
        ax.set_title("3. ONNX Mul [16]: FastAPI+uvicorn vs DAGEXECUTE")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    else:
        missing(ax, "3. Serving")

    # 4. Ratios of the throughput knobs (and the DAG), with targets
    ax = axes[1][0]
    knob_rows = [r for r in by_section.get("4", []) + by_section.get("7", []) if r.ratio is not None]
    if knob_rows:
        labels = []
        for r in knob_rows:
            if r.data.get("kind") == "batching":
                labels.append("auto-\nbatching\non / off")
            elif r.data.get("kind") == "threads":
                labels.append("threads\nper queue\n2 / 1")
            else:
                way = "one by one" if "one" in r.data.get("name", "") else "pipelined"
                labels.append(f"DAG /\n4 commands\n{way}")
        bars = ax.bar(range(len(knob_rows)), [r.ratio for r in knob_rows],
                      color=["tab:green" if r.met else "tab:red" if r.met is False else "tab:blue"
                             for r in knob_rows])
        ax.bar_label(bars, fmt="%.2fx", fontsize=9)
        for i, r in enumerate(knob_rows):
            if r.target:
                ax.plot([i - 0.4, i + 0.4], [r.target[1]] * 2, "k--", lw=1.5)
                ax.text(i + 0.42, r.target[1], f"target {r.target[1]:g}x", va="center", fontsize=8)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xticks(range(len(knob_rows)), labels, fontsize=9)
        ax.set_ylabel("throughput ratio (ours / baseline)")
        ax.set_title("4 & 7. Batching, threads, DAG: speed-up")
        ax.grid(True, axis="y", alpha=0.3)
    else:
        missing(ax, "4. Batching and threads")

    # 5. Memory
    ax = axes[1][1]
    idle = [r for r in by_section.get("5", []) if r.data.get("kind") == "idle"]
    per_byte = next((r for r in by_section.get("5", []) if r.data.get("kind") == "per_byte"), None)
    if idle:
        plain = idle[0].data["base"]
        labels = ["redis\nalone", "module\nonly"] + [r.data["backend"] for r in idle[1:]]
        values = [plain / 2**20, idle[0].data["ours"] / 2**20] + [r.data["ours"] / 2**20 for r in idle[1:]]
        bars = ax.bar(labels, values, color=["gray", "tab:blue"] + ["tab:purple"] * (len(values) - 2))
        ax.bar_label(bars, fmt="%.0f", fontsize=9)
        ax.set_ylabel("idle RSS (MiB)")
        title = "5. Idle RSS per backend (a fresh server each)"
        if per_byte:
            title += (f"\nRSS per tensor byte {per_byte.data['ours']:.3f} (≤ 1.1); SET {per_byte.data['base']:.3f}")
        ax.set_title(title, fontsize=11)
        ax.grid(True, axis="y", alpha=0.3)
    else:
        missing(ax, "5. Memory")

    # 6. Start time
    ax = axes[1][2]
    start_rows = {r.data.get("kind"): r.data for r in by_section.get("6", [])}
    if "ping" in start_rows and "all" in start_rows:
        labels = ["redis alone:\nfirst PING", "module:\nfirst PING", "4 backends:\nfirst PING",
                  "4 backends:\nall in INFO"]
        values = [start_rows["ping"]["base"], start_rows["ping"]["ours"], start_rows["all"]["first_ping"],
                  start_rows["all"]["ours"]]
        bars = ax.bar(labels, [v * 1e3 for v in values], color=["gray", "tab:blue", "tab:cyan", "tab:purple"])
        ax.bar_label(bars, labels=[f"{v * 1e3:.0f} ms" if v < 1 else f"{v:.2f} s" for v in values], fontsize=9)
        ax.set_yscale("log")
        ax.set_ylabel("ms from process start (log)")
        ax.tick_params(axis="x", labelsize=9)
        ax.set_title("6. Start time (median of 3)")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    else:
        missing(ax, "6. Start time")

    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(rows: list[Row], failures: list[tuple[str, str]], facts, elapsed: float, started: str) -> None:
    DOCS.mkdir(exist_ok=True)
    plot(rows, DOCS / "performance.png")
    targeted = [r for r in rows if r.target is not None]
    met = [r for r in targeted if r.met]
    missed = [r for r in targeted if r.met is False]
    lines = [
        "# Performance",
        "",
        f"Generated by `make bench` (`bench/run.py`) on {started}; the whole run took "
        f"{elapsed / 60:.1f} minutes ({elapsed:.0f} s). Every row pairs our figure with a baseline measured in "
        "the same run, on the same machine, with the same client. Regenerate with `make bench`; the numbers "
        "below are from one run and move from run to run (see *Limits*).",
        "",
        "![make bench plots](performance.png)",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {cell(k)} | {cell(v)} |" for k, v in facts],
        "",
        "## Limits of these numbers",
        "",
        LIMITS,
        "## Results",
        "",
        f"Targets: {len(met)} met, {len(missed)} missed of {len(targeted)}.",
        "",
        table(rows),
        "",
    ]
    if failures:
        lines += ["## Benchmarks that failed in this run", ""]
        lines += [f"* `{name}`: `{cell(error.strip().splitlines()[-1])}`" for name, error in failures]
        lines.append("")
    lines += ["## Targets", ""]
    lines += [f"* {'met' if r.met else '**missed**'}: {r.name} — {r.ratio:.2f} ({r.ratio_of}), target "
              f"{r.target_text()}" for r in targeted]
    lines += ["", "## What limits the targets that are hard to meet here", "", LIMITING]
    lines += ["", "## How each figure is measured", "", METHOD]
    (DOCS / "performance.md").write_text("\n".join(lines))


def main(names: list[str]) -> int:
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    begin = time.perf_counter()
    facts = machine()
    for key, value in facts:
        print(f"{key}: {value}")
    rows: list[Row] = []
    failures: list[tuple[str, str]] = []
    for name in names:
        print(f"\n== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            result = importlib.import_module(name).main()
            rows += [r for r in result or [] if isinstance(r, Row)]
        except Exception:  # one failing benchmark must not lose the others' figures
            error = traceback.format_exc()
            print(error, file=sys.stderr, flush=True)
            failures.append((name, error))
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    elapsed = time.perf_counter() - begin
    write_report(rows, failures, facts, elapsed, started)
    print(f"\n{table(rows)}\n")
    print(f"wrote {DOCS / 'performance.md'} and {DOCS / 'performance.png'} in {elapsed:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    chosen = sys.argv[1:] or BENCHMARKS
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    sys.exit(main(chosen))
