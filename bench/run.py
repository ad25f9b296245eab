"""`make bench`: runs every benchmark in this folder, each against its baseline measured in the same run,
and writes docs/performance.md (the table, machine facts, method), docs/performance.png (plots) and
docs/performance.json (every row, so that a partial run keeps the other sections' last figures).

    .venv/bin/python bench/run.py                  # everything (about 7-9 minutes on 2 cores)
    .venv/bin/python bench/run.py tensors server   # only the named benchmarks
    BENCH_ONLY=server,peers,real make bench        # the same through make (comma-separated)
    .venv/bin/python bench/run.py --baseline ../clone executors   # executors against an in-process checkout

Names: tensors, models, serving (alias peers), batching, memory, startup, dag, leaks, server (redis-benchmark,
server-side), real (real models), profile (the main thread's profile), overload (more clients than capacity,
with timeouts and retries), cold (first runs after store and reload), instructions (instructions per command
under callgrind), cluster (one shard against two), executors (executor processes against an in-process
baseline checkout: `--baseline PATH` or REDISAI_BASELINE). Sections not run keep their rows from
the run recorded in docs/performance.json, marked with that run's date in the report.

bench/fuzz.py is not part of it (a correctness run, not a measurement).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(HERE))

from common import Row, machine_busy  # noqa: E402

BENCHMARKS = ["tensors", "models", "serving", "batching", "memory", "startup", "dag", "leaks", "server", "real",
              "profile", "overload", "cold", "instructions", "cluster", "executors"]
ALIASES = {"peers": "serving"}
MODULES = {"server": "server_side", "real": "real_models", "profile": "profile_main",
           "cold": "cold_start"}  # name -> bench/<module>.py
PACKAGES = ["redis", "numpy", "onnxruntime", "torch", "tensorflow-cpu", "ai-edge-litert", "transformers", "fastapi",
            "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "aiohttp", "litserve", "ray", "py-spy",
            "matplotlib"]
RESULTS = DOCS / "performance.json"


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
        ("Load average at start (1/5/15 min)", load_text()),
        ("Busiest other processes at start", other_processes()),
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
The first column's number is the section: 1–6 are the first performance issue's rows, 7–8 the earlier
benchmarks, 9–11 and the LitServe / Ray Serve rows of 3 are issue 15's.

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
  flight, each figure two 1.5 s slices (A B C D E F F E D C B A). Every path's answer is checked before timing.
  LitServe and Ray Serve (bench/peer_apps.py) serve the same model with the same onnxruntime session and the
  same JSON request and answer as FastAPI's JSON endpoint, each in its documented default setup: LitServe
  with one worker on the CPU (`LitServer(api, accelerator="cpu", devices=1, workers_per_device=1)`), Ray Serve
  with one replica of a deployment on a local single-node Ray that the peer process starts (no dashboard,
  usage stats off). Every server listens on 127.0.0.1 only, runs in its own process group and is stopped at
  the end; the server CPU share of a peer is that of its whole process tree (workers, Ray's raylet and actors).
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
* **9. Server-side (redis-benchmark)** — bench/server_side.py. `redis-benchmark` (C, redis-tools) against one
  server with the module, each AI.* command next to its native command on the same server: AI.TENSORSET of a
  UINT8 BLOB of 16 B / 4 KiB / 64 KiB against SET of as many bytes and `AI.TENSORSET t FLOAT 4 VALUES 1 2 3 4`
  against SET of 16 B, AI.TENSORGET t BLOB against GET of 16 B and `AI.CONFIG GET BACKENDSPATH` (the C →
  Python → reply floor, nothing else) against GET, all at `-P 32 -c 4`; AI.MODELEXECUTE of onnx_mul (two
  FLOAT 4 inputs) against PING at `-c 16` (and `-c 1`); one AI.DAGEXECUTE (TENSORSET a, TENSORSET b,
  MODELEXECUTE, TENSORGET c BLOB) against a SET+GET pair at `-c 16`. Each pair is measured A B B A, each slice
  sized to ~1 s by a calibration run. Requests/s and p50/p99 are redis-benchmark's; "main thread µs/cmd" is the
  server main thread's CPU (utime + stime from /proc) over the slice divided by the requests sent. The pair:
  redis-benchmark repeats one command, so `SET ab <32 B>` and `GET ab` are each run with `-P 2` (two commands a
  round trip, as a pipelined pair) and pairs/s = 1 / (1 / SET rps + 1 / GET rps).
* **10. Real models** — bench/real_models.py, models from bench/real_fixtures.py (built once with their
  frameworks, random weights, cached in bench/.cache/): BERT with 4 layers, hidden 256, 4 heads,
  intermediate 1024, seq 64 (transformers' `BertModel` from a `BertConfig`, eager attention; TorchScript by
  `torch.jit.trace`, ONNX by `torch.onnx.export`, opset 17, batch dimension dynamic), inputs input_ids and
  attention_mask (int64 [1, 64]), outputs last_hidden_state and pooler_output; Keras `MobileNetV2(weights=None)`
  224×224×3 as a frozen GraphDef (`convert_variables_to_constants_v2`) and as TFLite (converted from the frozen
  function). Serving tax: one child process per model imports that framework, checks that its in-process
  answer equals MODELEXECUTE's, then measures in-process calls and AI.MODELEXECUTE (redis-py, 1 client, inputs
  already in keys) A B B A, 1.5 s slices (at least 20 calls), 0.3 s of sleep between slices. Ratio: MODELEXECUTE
  p50 / (1.05 × in-process p50 + 0.2 ms), target ≤ 1. Batching: 16 threads, each its own redis-py connection
  and input keys, MODELEXECUTE of BERT ONNX stored with `BATCHSIZE 16` and without, A B B A, 2 s slices.
* **11. Main-thread profile** — bench/profile_main.py, see *Where the main thread's time goes*: redis-benchmark
  drives AI.TENSORSET, AI.TENSORGET, AI.MODELEXECUTE and AI.DAGEXECUTE (the command lines of section 9); the
  main thread's CPU per command is measured without a profiler (Δ CPU / Δ calls from INFO commandstats), then
  split by `perf record -e cpu-clock -t <main thread>` (on-CPU, by shared object and symbol) and by `py-spy
  record --native -r 500 --threads --idle` (wall clock, callbacks and Python functions, worker threads).
* **12. Overload** — bench/overload.py (issue 21): capacity (4 closed-loop redis-py clients, AI.MODELEXECUTE of an
  ONNX model of eight 1024×1024 MatMul+Relu whose input rows are sized at the start so that a run takes ~10 ms),
  then 48 clients with a 150 ms socket timeout and redis-py 8.1's default retries (10, with backoff), without and
  with `TIMEOUT 150` on every command; per scenario 3 rounds of (capacity 1.3 s, overload 2 s after 0.5 s of
  filling), summed, so that the VM's drift over seconds hits capacity and overload alike. Goodput: answers OK
  that reached a client, per second, over capacity; wasted: the server's runs in the window (AI.INFO calls) less those answers; PING
  every 20 ms on its own connection; after the clients stop, time until `queue_CPU_length` is 0; used_memory
  against its level before the load. All of it twice: on a server with the defaults, then on one whose
  framework uses one core (`INTRA_OP_PARALLELISM 1`), so that the clients sharing this machine do not take the
  model's cores (rows prefixed "framework on 1 core").
* **13. Cold start** — bench/cold_start.py (issue 21): per real model (section 10's fixtures) on a fresh server,
  the first AI.MODELEXECUTE after each of 5 MODELSTOREs (median), the steady p50 of 30 back-to-back runs, and
  the first run after each of 3 DEBUG RELOADs once INFO ai reports `warmup_pending` 0 (median); beside them a
  run after 0.5 s idle and the first run on a server with `WARMUP_RUNS 0` (RedisAI's behaviour).
* **14. Instructions per command** — bench/instructions.py (issue 24): one server with the module under
  `valgrind --tool=callgrind --separate-threads=yes` (`WORKER_SPIN_US 0`: under valgrind threads take turns,
  so a spinning worker would count wall time), redis-benchmark sending each command N and then 2N times
  (TENSORSET/GET and their natives at `-P 32 -c 4`, MODELEXECUTE, PING and the DAG at `-c 16`, the SET+GET
  pair at `-P 2 -c 16`), counters zeroed before and dumped after each (`callgrind_control`). Instructions per
  command = (I(2N) − I(N)) / N per thread, less an idle server's instructions per second (serverCron) over
  the difference in wall time. Counts move by up to ~10 % between runs (how many commands one event-loop
  iteration reads depends on timing: SET 4.3–4.8 k), the ratios of one run by ≤ 2 %. Main
  thread = thread 1; other threads = the rest (the queue's worker, onnxruntime's threads); the model's own
  run (inclusive cost of onnxruntime's `InferenceSession::Run`) is read from the same dumps and excluded
  from the MODELEXECUTE and DAG ratios. Callgrind counts user-space instructions only: the kernel's share
  (socket reads and writes, epoll, futexes), which is most of a native command's CPU, is in none of the
  figures, so instruction ratios are harsher than CPU ratios.
* **15. Cluster** — bench/cluster.py (issue 24): a one-shard and a two-shard Redis Cluster of servers with
  the module (slots split evenly by CLUSTER ADDSLOTSRANGE, joined by CLUSTER MEET), each shard with its own
  model and tensors under a hash tag of one of its slots; one redis-benchmark per shard, started together,
  half the connections each (one shard: one process with all of them), ~2 s slices, the better of two.
  Requests/s: the sum of the processes' rates; server CPU per command from /proc over all shards.
* **16. Executors** — bench/executors.py (issue 37): a server of this checkout (models run in sandboxed executor
  processes) beside a server of the in-process baseline checkout (`--baseline PATH` / REDISAI_BASELINE, its own
  build/redisai.so and .venv; the rows name its commit; without one they say "no baseline"), every pair
  interleaved A B B A, the load average recorded per row. The tiny ONNX Mul by one raw-socket client (p50/p99,
  CPU per run of redis-server and its executors from /proc, with the default WORKER_SPIN_US and with 0); the
  channel's floor (a SOCK_SEQPACKET pair with memfd arenas between two Python processes) and the protocol's
  own RUN round trip against `python -m redisai.executor`; the real models of section 10 at 1 client (target
  p50 ≤ 1.05 × in-process + 0.3 ms); redis-benchmark -c 16 MODELEXECUTE/PING (target ≥ 0.2); THREADS_PER_QUEUE
  2 / 1 with INTRA_OP_PARALLELISM 1 on an ONNX of 4 MatMuls (target ≥ 1.8); RSS of every process with all
  four backends in use; BGSAVE's latest_fork_usec (median of 3).
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
* One run per `make bench`, short slices (1–3 s) to keep it under 10 minutes: no confidence intervals.
* Section 9 and 11 take the Python client out (redis-benchmark is C), but redis-benchmark still shares the
  two cores with the server: at `-P 32` it uses 5–50 % of a core, so the native commands' rates are partly
  client-bound and the ratios err towards us.
* Other work on the machine (other developers' test suites, a docker build) moves every figure; the table
  below records the load average and the whole machine's busy share while each section ran. A frameworks'
  thread pool with 2 threads on 2 busy cores loses whole scheduler slices at its barriers, so the real-model
  rows (section 10) are the most sensitive to load.
"""


LIMITING = """\
Issue 24's rows (sections 9, 11, 14 and 15, 2026-12-02 and -03, AMD EPYC 2 cores, Firecracker VM; server-side
figures from redis-benchmark, instruction counts from callgrind, which do not move with the machine):

* **Instructions per command (14).** TENSORSET 16 B 45.3–46.1 k → 16.7–16.8 k instructions on the main thread
  (SET 4.3 k: 10.6× → 3.9×, target ≤ 4 met; 2026-12-03, with the type looked up once and the replaced tensor released in batches: 3.75–4.08× over
  five runs, at the target within callgrind's run-to-run spread), 4 KiB 48.9 k → 18.5 k (3.2×, met); TENSORGET 16 B 17.7–17.9 k →
  5.4–5.6 k (GET 3.3 k: 5.3× → 1.7×, met), 4 KiB 1.5× (met). What did it: `module/fastpath.c` takes the
  common forms (`key TYPE dims BLOB data`, `key BLOB`) without a Python object per argument, a Request, the
  dispatch or the parse; Python still decides the types it may take and makes the tensor (one call). In CPU
  time (section 11): TENSORSET 3.2 µs vs SET 0.8 µs (4.1×), TENSORGET 0.9 vs 0.8 µs (1.1×); server-side
  TENSORSET/SET 0.12 → 0.26, TENSORGET/GET 0.29 → 0.73. The C → Python → reply floor (AI.CONFIG GET) is
  11.8–12.2 k instructions, 3.6× GET: any command that enters Python pays at least that.
* **MODELEXECUTE (missed in instructions: 30.0–34.5× PING, target ≤ 6; ~3.3–3.5× in CPU).** 2026-12-07: the
  inline runs described below are removed (a run's cost can follow its input values: one NonMaxSuppression
  run of a model whose earlier runs were tiny held the main thread 30 s); every run is queued again, as in
  RedisAI: 42.6 k instructions on the main thread + 108 k in the worker − the 34.7 k bare call = 116 k, 34.3×
  PING (callgrind, same machine, the other core busy); the earlier inline figures measured ~20 % more runs/s
  at 16 clients. 2026-12-03, same machine.
  Before: 70.0 k instructions on the main thread and 104 k in the worker (39.5×). Two changes: the common
  form `key INPUTS n ... OUTPUTS m ... [TIMEOUT t]` is parsed in C (module/fastpath.c), which reads the model
  and input keys and makes one Python call that queues the run (main thread 70.0 k → 41.7–42.7 k; 31.3× with
  the worker's 105 k); and a model whose runs of the same input shapes keep taking at most
  `INLINE_RUN_MAX_US` (100 µs) runs on the main thread when nothing waits on its queue
  (execution/inline.py): no block, no worker wake-up, no unblocked-client callback. Inline, one command is
  133–154 k instructions on the main thread and almost none elsewhere, of which 34.7–44.6 k the bare
  onnxruntime call (counted in its own process, it moves between runs): about what the queued path executes in both threads, so callgrind barely sees the change. Its
  gain is what callgrind does not count: the kernel's part of the two thread hand-offs, the wake-ups and
  the cache misses of moving the job between cores. In CPU time (section 11) MODELEXECUTE at 16 clients is
  42.2–46.9 µs per command, all in the main thread (before: 121 µs main + 144 µs other threads; queued with the
  fast path, 30 µs main + 52 µs worker), against PING 9.7 µs: 4.4× with the run, ~3.3× without the bare
  run (~10 µs), so the ≤ 6 target holds in CPU here but not in instructions. Throughput (section 9,
  redis-benchmark -c 16): 16.0–26.6 k/s against PING 61–87 k/s, 0.26–0.31 (target ≥ 0.35; queued with the
  fast path: 17.0 k/s). What is left is Python: ~75 k instructions of job, binding call, outputs, key write,
  replication and reply per run, whichever thread runs them; meeting 6× in instructions needs the run's
  glue and the output tensor in C (the tensor values are Python objects today), which this session did
  not build.
* **DAGEXECUTE (missed: 18.3–20.2× the SET+GET pair in instructions, target ≤ 10; 29.8–32.5× before the
  2026-12-03 session's C parse).** (2026-12-07: no DAG runs on the main thread any more, see MODELEXECUTE; 111 k main +
  138 k worker instructions per DAG.) Before the inline runs: 215–217 k instructions on the main thread and
  140–149 k in the worker (36.6–37.1×). A DAG whose model ops read tensors it holds and are each allowed
  inline runs whole on the main thread: 307–330 k there, ~1 k elsewhere. Then AI.DAGEXECUTE's common form
  (TENSORSET BLOB, TENSORGET and MODELEXECUTE ops, LOAD / PERSIST / ROUTING / TIMEOUT) is parsed in C
  (`module/dagpath.c`: names resolved to slots, LOAD and model keys read, the TENSORSET tensors made, one
  Python call with slots and ops; any other form or any error takes the Python parse): 199–207 k on the main
  thread. Throughput at 16 clients (section 9): 5.7 k → 8.8–11.0 k DAGs/s with the inline runs, 9.5–11.4 k with
  the C parse on 2026-12-03, a day this VM ran everything about twice as slowly (BERT ONNX steady p50 9.0 ms
  against 4.4 ms the day before; PING's main-thread CPU 13.9 against 9.7 µs), so that day's times are not
  comparable with the earlier ones; the instruction counts are. What is left, by py-spy over the main
  thread's Python (non-blocking samples): building the op objects and the run (~25 %), the model run's glue
  and the onnxruntime binding (~35 %, a third of it the run itself), the reply's parts and their C send
  (~25 %). Meeting 10× needs the run's glue, its output tensor and the reply in C, as for MODELEXECUTE.
  In CPU (section 11): 70 µs per DAG on 2026-12-02, all on the main thread (before: 79 µs main + 102 µs
  worker), against 9.4 µs per GET.
* **Cluster (15).** Two shards on this machine against one: TENSORSET 1.55–2.03× (each shard's main thread
  is the limit and gets a core of its own), MODELEXECUTE of the tiny model 1.34–1.55× (one shard already keeps
  1.5 cores busy: main thread plus worker; two shards and two redis-benchmark processes share 2 cores). On a
  machine with a core per busy thread, throughput grows with the shards: a shard needs ~1 core per
  290 k TENSORSET/s and ~1.5 cores per 14–16 k tiny-model MODELEXECUTE/s (section 15's CPU per command), so
  N shards on 1.5 N cores serve ~N × that, as Redis Cluster scales any command whose keys share a slot.

Issue 21's rows (sections 12 and 13, 2026-12-02, AMD EPYC 2 cores; redis-py clients in the benchmark process):

* **Overload (12).** Before the changes, the same scenario gave goodput 0.17–0.28 of capacity with 63–82 % of
  the server's runs done for clients that had left. Skipping queued runs whose client disconnected alone did
  not fix it: with runs in arrival order the oldest live request is served, it is ~150 ms old, and most
  answers still came after their client's timeout (goodput ~0.3, 63 % wasted, measured with
  `QUEUE_NEWEST_FIRST_AFTER_MS 0`). Serving the newest first while the oldest has waited 100 ms answers
  clients that still wait; the abandoned runs, reached later, are skipped at no cost: no run wasted in any
  run of the section. With `TIMEOUT 150` as well, goodput was 0.68–0.92 until the TIMEOUT thread stopped
  waking for every command (now only for a new earliest deadline, deadlines within 5 ms met in one wake,
  answered runs dropped): the model's mean run went from 10–11 ms back to 8 ms, TIMEDOUT answers fell by
  ten, and goodput is 0.80–0.99. What keeps goodput under capacity is the machine: the 48 client threads
  take 17–25 % of a core from the two the server's framework uses; per server CPU-second, goodput is
  0.86–0.99 of capacity. Per thread (/proc, 5 s windows): at capacity the model's two threads (the worker and
  onnxruntime's pool thread) get 0.95–0.98 of a core each; under the 48 clients 0.83–0.90, the main thread
  0.09–0.11 (0.03 at capacity) and the load generator 0.16–0.22: the 2 cores are shared, and a parallel
  section whose other thread is preempted waits for it. The VM's own speed drifts too: capacity measured
  alone moved 92–157 runs/s between runs of the same code, and within one run overload once exceeded the
  capacity measured 10 s earlier. The phases are therefore interleaved (3 rounds of capacity then overload,
  summed); with that, 7 runs on 2026-12-02 gave goodput 0.77–0.90 without TIMEOUT (6 of 7 ≥ 0.8) and
  0.77–0.88 with it (4 of 7). onnxruntime's `session.intra_op.allow_spinning 0` (measured: the pool thread
  drops to 0.65–0.71 of a core) did not move goodput out of that noise; not adopted. PING stays fast
  throughout (the main thread never waits for runs). On 2026-12-03 the load generator took more (0.32–0.39
  of a core: redis-py reconnects after every timeout, ~250 a second, each with four round trips — HELLO,
  two CLIENT SETINFO, CLIENT MAINT_NOTIFICATIONS — costing it 0.5–0.7 ms of CPU, hiredis or not) and
  goodput with the framework's default threads fell to 0.66–0.81 over 12 runs (per server CPU-second 0.79–0.87): the model's
  two threads got 0.75 of a core each, the main thread 0.13 (half of it the kernel's accept/close work for
  those reconnects, Python 2 % of a core). The second server of the section (framework on one core,
  `INTRA_OP_PARALLELISM 1`, capacity measured on it the same way) leaves a core to the clients and the main
  thread, as on a server whose clients run elsewhere: goodput 0.93–1.10 over 6 runs, with and without TIMEOUT,
  no run wasted. The server's overload handling meets the target; on this machine with the defaults, the
  share of the two cores the clients take is what it misses by.
* **Cold start (13).** Warm-up removes the slow first runs (BERT TorchScript 6.5–7.5× → 1.1–1.8×, MobileNetV2
  TF 1.9× → 1.1×). The first run of a model stored earlier is 1.00–1.14× the steady p50 for TorchScript, TF
  and TFLite: the model itself is warm. The first run right after its MODELSTORE also pays what the store
  leaves the machine doing (BERT TorchScript: 6–33 ms runs inside the torch call, at random, in about a third
  of the stores; not Python's collector, not page faults, not jemalloc's background thread: each measured
  and ruled out), and every run after a pause pays the VM's wake-up (a run after 0.5 s idle: 1.2–2.0×). BERT
  ONNX's first runs (1.4–1.5×) are that wake-up: its run after idle is 1.7–2.0×.

""" + """\
Issue 15's targets after the changes of 2026-11-29, from two full runs that day, 15:12 and 16:08 (load average
~1.4; the table above is the second); where they differ both figures are given. Section 11 and *Where the main
thread's time goes* give the split:

* **Server-side, redis-benchmark.** TENSORSET/SET (16 B) 0.155–0.16 and TENSORGET/GET 0.37–0.38: met (the
  main thread went from 10–11.6 to 5.8 µs per TENSORSET and from 5–5.9 to 2.2 µs per TENSORGET).
  MODELEXECUTE/PING at `-c 16` 0.14–0.15 (19–22 k/s, was 11–13 k/s) and DAG/(SET+GET) 0.07 (9.3–10 k/s, was
  8.2 k/s): missed. The main thread is no longer what limits them: 25–31 µs per MODELEXECUTE (was 40–75),
  7–9 µs of it Python, idle ~40 % of the time; the worker is. Its Python per job (the run's glue, the onnxruntime binding's own conversions,
  the outputs copied into Redis's memory, the prepared reply) holds the GIL about 85 % of the time at
  `-c 16` (py-spy `--gil`), so main thread and worker take turns on one GIL: 0.35 of PING would need ~45 k/s,
  i.e. the two together under ~20 µs of GIL time per command, against ~50 µs today. The floor itself, one
  C → Python → reply (AI.CONFIG GET), is 0.52–0.53 of GET.
* **Against the peers, Python asyncio client, 16 clients.** 1.33–1.34× FastAPI + JSON (≥ 3: missed), 7.2–7.7×
  LitServe (≥ 15: missed), 73–77× Ray Serve (≥ 50: met); DAG p99 1.9–2.0× FastAPI's p50 (missed). The DAG
  served 6.8–7.2 k req/s (was 3.3–3.8 k under load, 5.6–7.5 k in the issue), with the client at ~61 % and the
  server at 89–96 % of a core: client and server share the two cores, and FastAPI (one uvicorn process running
  onnxruntime inline) costs about what a DAG costs the server's main thread and worker together.
* **Real models: MODELEXECUTE p50 ≤ 1.05 × the in-process call + 0.2 ms (1 client).** MobileNetV2 frozen TF
  0.92–0.94: met. TFLite 0.97, then 1.04 (5.7 vs 5.4 ms, then 6.2 vs 5.5 ms), and BERT ONNX 1.01, then 0.99
  (2.7–2.8 vs 2.4 ms): at the edge, met in one run of two. BERT TorchScript 1.04–1.06 (3.8–3.9 vs 3.2–3.4 ms):
  missed by ~0.2 ms. Measured inside the server (AI.INFO's run time against the client's p50), a BERT run
  costs 0.25–0.35 ms of plumbing (round trip, hand-off to the worker, outputs copied into Redis's memory and
  into the prepared reply; the tiny ONNX model's whole MODELEXECUTE is 0.11 ms at 1 client), and the
  framework itself runs 0–10 % slower than in a plain Python process: inside redis-server every allocation
  goes to Redis's jemalloc (2–3 % slower for TorchScript BERT alone, measured with `LD_PRELOAD`), and the
  framework's 2-thread pool shares the 2 cores with the main thread and the client. Turning onnxruntime's
  thread spinning off made BERT ONNX a third slower; the worker's own spin (`WORKER_SPIN_US`) made no
  measurable difference either way.
* **BATCHSIZE 16 ≥ 2× without, BERT ONNX at 16 clients.** 1.32–1.35 (428–477 vs 324–352 req/s, 7.7–7.8
  requests per backend run): missed, and out of reach on this machine. The new row *BERT ONNX in onnxruntime
  alone* is the ceiling: onnxruntime with no server at all does 1.36–1.38× the samples per second at batch 16
  as at batch 1, because at batch 1 it already keeps both cores busy. Batching through the server gets
  97–98 % of that ceiling.

Earlier targets, measured on this machine while tuning (server-side figures from `redis-benchmark -c 1`, so the Python load
generator is out of the picture; timelines from `perf_counter_ns` stamps at each hand-off):

* **TENSORSET 16 MiB** (target 0.8). The BLOB is copied once, from Redis's argument straight into the
  tensor (by the shim's fast path for the common form, at any size since 2026-12-03 — it took BLOBs under
  64 KiB only, and larger ones paid the general path's Python, ~35 µs a command: 64 KiB 0.68 → 0.87 of SET,
  1 MiB 0.73 → 0.90; elsewhere arguments of 64 KiB or more reach Python as views). `perf record` of the server shows
  the rest: page faults (`exc_page_fault` + `clear_page_erms`, ~27 % of samples) on the tensor's fresh
  16 MiB block — jemalloc serves blocks of 8 MiB and more from an arena that returns them to the kernel at
  once, so every new tensor faults its pages in again — and the `memmove` into it. SET does neither: it
  keeps the query buffer itself as the value. We cannot adopt that buffer: its data starts 9 bytes into the
  allocation (the sds header), misaligned for FLOAT/DOUBLE arrays. Server time per 16 MiB TENSORSET fell
  from 31 ms to 24 ms with the single copy; SET takes 11–13 ms.
* **MODELEXECUTE p50 overhead ≤ 1.5 × PING** (ONNX at the edge, TorchScript above). Server-side p50 went
  from ~200 µs to ~110–140 µs (PING: 55–70 µs). Per request, medians measured before the reply moved to C:
  main thread in Python ~18 µs for the command and ~19 µs for the reply (the reply now takes no Python), the
  worker ~20–25 µs around a 5 µs framework call, and ~30 µs from `RM_UnblockClient` to Redis calling the
  reply callback, measured in the shim: that is the main thread waking from `epoll_wait` on this VM. Keeping the event loop polling while runs are in flight (a
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


PROFILE_READING = """\
What the profile says, after issue 15's changes (the tables after this list are the last recorded run's;
the figures before the changes are the ranges of five runs earlier on 2026-11-29).

* **Main-thread CPU per command, before → after.** TENSORSET (16 B BLOB) 10–11.6 → 5.8 µs, TENSORGET 5–5.9 →
  2.2 µs, MODELEXECUTE at `-c 16` 40–75 → 25–31 µs, DAGEXECUTE 66–128 → 63–68 µs; SET, GET and PING cost
  0.5–0.8, 0.6 and 5.4–6.2 µs. TENSORSET VALUES (server-side) 0.07 → 0.11 of SET. The C → Python → reply floor (AI.CONFIG GET) went from 2.3–2.6 to 1.5 µs.
* **What changed it** (each kept only after a redis-benchmark A/B on the same server build):
  - The main thread keeps the GIL between two sleeps of the event loop (given back at BEFORE_SLEEP): before,
    every command took the GIL from a busy worker and gave it back, two futex wake-ups and context switches
    each. MODELEXECUTE `-c 16` 11.5 k → 16.7–17.7 k/s.
  - The Modules API calls made for every command keep the GIL (`module/calls.c`): cffi releases it around
    each call, which let a waiting worker take it in the middle of a command. MODELEXECUTE → 18.8 k/s,
    TENSORGET 246 k → 391 k/s. Releasing it again around the worker's `RM_UnblockClient` (a pipe write)
    cost a quarter of MODELEXECUTE's rate, so it stays held there too.
  - A run's reply is prepared by the worker and answered by the shim in C (`module/outcome.c`): the main
    thread enters Python once per MODELEXECUTE instead of twice. On its own it moved main-thread CPU per
    command from ~63 to ~57 µs and throughput by 5–10 %: the work moved to the worker, which holds the same
    GIL. A DAG's reply is prepared the same way.
  - Replies of any shape go out in one C call from a list of parts (`module/replies.c`): TENSORGET META
    VALUES 86 k → 166 k/s.
  - TENSORSET: the value a key write replaces is released right after the write instead of through a nested
    free callback, REPLICATE VERBATIM keeps the GIL, argv is cast only where a command needs it, decimal
    dims and type names skip the general parse: 131 k → 165 k/s.
  - TENSORSET VALUES: plain decimals checked with one regular-expression match over the joined tokens and
    read with `float()`/`int()` (the general parse for anything else): 92 k → 115 k/s.
  - Tried and dropped: a second worker per queue (`THREADS_PER_QUEUE 2`: 24 k → 18 k/s, the GIL again),
    parking replaced values until the next sleep for every key write (64 KiB TENSORSET 12 % slower: the
    freed block is the next write's), and a worker that waits at most 50 µs for the main thread's GIL before
    queueing for it (no better than spinning up to `WORKER_SPIN_US`).
* **TENSORSET (5.8 µs).** Python 4.0 µs: `parse_tensorset` ~1.9 (`Tensor.from_blob` 1.1), the key write
  ~0.9; the interpreter loop is still a third of the samples. What is left is the number of Python frames
  and objects per command.
* **TENSORGET (2.2 µs).** Python 1.1 µs; the kernel (socket writes) a quarter.
* **MODELEXECUTE (25–31 µs on the main thread).** The kernel is about half of it (`finish_task_switch` alone
  ~6 µs: ~1 context switch per command), Python 7–9 µs. The main thread is idle 40 % of the time: the worker is
  the limit. py-spy finds the worker 60 % in Python (queue, job, the onnxruntime binding, outputs, prepared
  reply), 27 % spinning for the next job, 4 % inside onnxruntime; with `--gil`, the worker holds the GIL
  ~85 % of the time at `-c 16`. Next levers: fewer Python frames per job on the worker (the job's glue is
  ~10 calls), and the binding's own per-call conversions.
* **DAGEXECUTE (63–68 µs).** Python 37–40 µs, mostly `DagParser.parse` (the two TENSORSET ops and the MODELEXECUTE
  op); the worker does a run plus the DAG's bookkeeping and its prepared reply (~87 µs of other threads' CPU
  per DAG). Parsing without a Python object per argument is the lever left on the main thread.
"""


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_section: dict[str, list[Row]] = {}
    for row in rows:
        by_section.setdefault(row.section.split(".")[0], []).append(row)
    fig = plt.figure(figsize=(19, 23))
    spec = fig.add_gridspec(4, 3, height_ratios=(1, 1, 1, 1.5))
    cells = [[fig.add_subplot(spec[i, j]) for j in range(3)] for i in range(3)]
    axes = [[cells[0][0], cells[0][2], cells[1][0]], [cells[1][1], cells[1][2], cells[2][0]]]
    ratio_ax, server_ax, real_ax = cells[0][1], cells[2][1], cells[2][2]
    profile_ax, targets_ax = fig.add_subplot(spec[3, 0]), fig.add_subplot(spec[3, 1:])
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
            name = name.replace(": MODELEXECUTE vs in-process", " vs in-process").replace(" (frozen graph)", "")
            name = name.replace("one DAGEXECUTE (2 TENSORSET, MODELEXECUTE, TENSORGET)", "DAG vs SET+GET")
            if r.section.startswith("9."):
                name = "server: " + name
            name = name.replace("DAGEXECUTE p99 vs the peers' lowest p50", "DAG p99 vs peers' p50")
            name = re.sub(r" \[run of [^]]*\]", "", name)
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
    serve_rows = [r for r in by_section.get("3", []) if "concurrency" in r.data]
    if serve_rows:
        import numpy as np
        concurrency = sorted({r.data["concurrency"] for r in serve_rows})
        series = {"HTTP JSON": "tab:red", "HTTP raw": "tab:orange", "LitServe": "tab:purple", "Ray Serve": "tab:brown",
                  "DAGEXECUTE": "tab:blue", "SET+GET": "gray"}
        series = {name: color for name, color in series.items()
                  if name == "DAGEXECUTE" or any(r.data["base"] == name for r in serve_rows)}
        values = {name: [] for name in series}
        for c in concurrency:
            for name in series:
                if name == "DAGEXECUTE":
                    data = next(r.data["ours"] for r in serve_rows if r.data["concurrency"] == c)
                else:
                    data = next((r.data["theirs"] for r in serve_rows
                                 if r.data["concurrency"] == c and r.data["base"] == name), {"rate": float("nan")})
                values[name].append(data["rate"])
        x = np.arange(len(concurrency))
        width = 0.8 / len(series)
        for i, (name, color) in enumerate(series.items()):
            bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values[name], width, color=color,
                          label={"SET+GET": "SET+GET floor", "HTTP raw": "FastAPI raw bytes",
                                 "HTTP JSON": "FastAPI JSON"}.get(name, name))
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(x, [f"concurrency {c}" for c in concurrency])
        ax.set_ylabel("requests/s (log)")
        ax.set_title("3. ONNX Mul [16]: serving frameworks vs DAGEXECUTE")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    else:
        missing(ax, "3. Serving")

    # 9. Server-side ratios (redis-benchmark)
    ax = server_ax
    server_rows = [r for r in by_section.get("9", []) if r.ratio is not None]
    if server_rows:
        labels = [r.data.get("label", r.name)[:22] for r in server_rows]
        bars = ax.barh(range(len(server_rows)), [r.ratio for r in server_rows],
                       color=["tab:green" if r.met else "tab:red" if r.met is False else "tab:blue" for r in server_rows])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        for i, r in enumerate(server_rows):
            if r.target:
                ax.plot([r.target[1]] * 2, [i - 0.4, i + 0.4], "k--", lw=1.5)
        ax.set_yticks(range(len(server_rows)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(1.05, max(r.ratio for r in server_rows) * 1.15))
        ax.set_xlabel("ours / native, requests/s (dashes: issue 15's targets)")
        ax.set_title("9. Server-side, redis-benchmark: AI.* vs native")
        ax.grid(True, axis="x", alpha=0.3)
    else:
        missing(ax, "9. Server-side")

    # 10. Real models: MODELEXECUTE vs in-process
    ax = real_ax
    tax_rows = [r for r in by_section.get("10", []) if r.data.get("kind") == "tax"]
    if tax_rows:
        import numpy as np
        x = np.arange(len(tax_rows))
        inproc = [r.data["inproc_p50"] * 1e3 for r in tax_rows]
        served = [r.data["p50"] * 1e3 for r in tax_rows]
        bars = ax.bar(x - 0.2, inproc, 0.4, color="gray", label="in-process call p50")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        bars = ax.bar(x + 0.2, served, 0.4, color="tab:blue", label="AI.MODELEXECUTE p50 (1 client)")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.plot(np.concatenate([[xi - 0.4, xi + 0.4, np.nan] for xi in x]),
                np.concatenate([[1.05 * v + 0.2] * 2 + [np.nan] for v in inproc]), "k--", lw=1.2,
                label="target: 1.05 × in-process + 0.2 ms")
        batching = next((r for r in by_section.get("10", []) if r.data.get("kind") == "batching"), None)
        title = "10. Real models, p50 (ms)"
        if batching:
            title += (f"\nBERT ONNX, 16 clients, BATCHSIZE 16 vs none:\n{batching.data['ours']:.0f} vs "
                      f"{batching.data['base']:.0f} req/s ({batching.ratio:.2f}×, target 2×)")
        ax.set_xticks(x, [r.data["model"].replace(" (frozen graph)", "\n(frozen graph)") for r in tax_rows], fontsize=8)
        ax.set_ylabel("ms")
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    else:
        missing(ax, "10. Real models")

    # 11. Main-thread CPU per command
    ax = profile_ax
    profile_rows = [r for r in by_section.get("11", []) if r.data.get("kind") == "profile"]
    if profile_rows:
        import numpy as np
        x = np.arange(len(profile_rows))
        bars = ax.bar(x - 0.2, [r.data["us"] for r in profile_rows], 0.4, color="tab:blue", label="AI.* command")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        bars = ax.bar(x + 0.2, [r.data["native_us"] for r in profile_rows], 0.4, color="gray",
                      label="native command (SET/GET/PING)")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_xticks(x, [r.data["short"] for r in profile_rows], fontsize=8, rotation=15)
        ax.set_yscale("log")
        ax.set_ylabel("main-thread CPU µs per command (log)")
        ax.set_title("11. Main thread's CPU per command (redis-benchmark)")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    else:
        missing(ax, "11. Main-thread profile")

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


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def other_processes(limit: int = 5) -> str:
    """The busiest processes not started by this run, by CPU share over the last ~0.5 s."""
    mine = {os.getpid()}

    def sample():
        seen = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in mine:
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        head, _, rest = f.read().rpartition(")")
                    fields = rest.split()
                    seen[int(entry)] = (head.split("(", 1)[1], int(fields[11]) + int(fields[12]))
                except (OSError, IndexError):
                    continue
        return seen

    first = sample()
    time.sleep(0.5)
    second = sample()
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sorted(((second[pid][1] - first[pid][1]) / ticks / 0.5, second[pid][0]) for pid in second
                  if pid in first and second[pid][1] > first[pid][1])
    return ", ".join(f"{name} {share:.0%}" for share, name in reversed(busy[-limit:])) or "none"


def row_to_json(row: Row) -> dict:
    return dataclasses.asdict(row)


def row_from_json(data: dict) -> Row:
    data = dict(data)
    if data.get("target") is not None:
        data["target"] = tuple(data["target"])
    return Row(**data)


def load_results() -> dict:
    try:
        return json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}


def issue15(rows: list[Row]) -> list[str]:
    """Issue 15's targets, each with its measured ratio, from the rows that carry them."""
    lines = ["| target | measured | met |", "|---|---|---|"]
    for row in rows:
        for item in row.data.get("issue15", []):
            detail = f" ({item['detail']})" if item.get("detail") else ""
            if item.get("value") is None:
                lines.append(f"| {cell(item['target'])} | {item['ratio']:.2f}{cell(detail)} | — |")
                continue
            ok = item["ratio"] >= item["value"] if item["op"] == ">=" else item["ratio"] <= item["value"]
            lines.append(f"| {cell(item['target'])} ({'≥' if item['op'] == '>=' else '≤'} {item['value']:g}) | "
                         f"{item['ratio']:.2f}{cell(detail)} | {'met' if ok else '**missed**'} |")
    return lines if len(lines) > 2 else []


def write_report(sections: dict, names: list[str], failures: list[tuple[str, str]], facts, elapsed: float,
                 started: str) -> list[Row]:
    """The report from `sections` (name -> what a run of that benchmark left: rows, report, load), in
    BENCHMARKS order; those not run now are marked with the date of their run."""
    DOCS.mkdir(exist_ok=True)
    rows: list[Row] = []
    older: list[str] = []
    loads: list[str] = []
    reports: list[str] = []
    for name in BENCHMARKS:
        entry = sections.get(name)
        if entry is None:
            continue
        section_rows = [row_from_json(r) for r in entry["rows"]]
        if name not in names:
            older.append(f"`{name}` ({entry['started']}, commit {entry.get('commit', '?')})")
            for row in section_rows:
                row.name += f" [run of {entry['started'].split()[0]}]"
        rows += section_rows
        if entry.get("report"):
            reports.append(entry["report"])
        load = entry.get("load")
        if load:
            loads.append(f"| {name} | {entry['started']} | {load['seconds']:.0f} s | {load['before']} → {load['after']} "
                         f"| {load['busy']:.0%} | {cell(load['others'])} |")
    plot(rows, DOCS / "performance.png")
    targeted = [r for r in rows if r.target is not None]
    met = [r for r in targeted if r.met]
    missed = [r for r in targeted if r.met is False]
    scope = ("every benchmark" if set(names) >= set(BENCHMARKS)
             else "the benchmarks " + ", ".join(f"`{n}`" for n in names))
    lines = [
        "# Performance",
        "",
        f"Generated by `make bench` (`bench/run.py`) on {started}, running {scope}; that took "
        f"{elapsed / 60:.1f} minutes ({elapsed:.0f} s). Every row pairs our figure with a baseline measured in "
        "the same run, on the same machine, with the same client. Regenerate with `make bench`; the numbers "
        "below are from one run and move from run to run (see *Limits*).",
        "",
    ]
    if older:
        lines += ["Rows of sections not run this time come from their last recorded run (docs/performance.json), "
                  "marked [run of DATE]: " + ", ".join(older) + ".", ""]
    lines += [
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
    ]
    if loads:
        lines += ["Load while each section ran (load average 1/5/15 min before → after; the whole machine's busy "
                  "share from /proc/stat, 100 % = both cores, whoever used them; the busiest processes that were "
                  "not this run's just before it started):", "",
                  "| section | run | took | load average | machine busy | other busy processes at its start |",
                  "|---|---|---|---|---|---|", *loads, ""]
    lines += [
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
    summary = issue15(rows)
    if summary:
        lines += ["", "## Issue 15's targets", "",
                  "Server-side (redis-benchmark), against the serving frameworks, and on real models; each ratio is "
                  "the row's above.", "", *summary]
    lines += ["", "## What limits the targets that are hard to meet here", "", LIMITING]
    if reports:
        lines += ["", "## Where the main thread's time goes (profile)", "", PROFILE_READING, "", *reports]
    lines += ["", "## How each figure is measured", "", METHOD]
    (DOCS / "performance.md").write_text("\n".join(lines))
    return rows


def main(names: list[str]) -> int:
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    begin = time.perf_counter()
    facts = machine()
    for key, value in facts:
        print(f"{key}: {value}")
    commit = dict(facts).get("Commit", "?")
    sections = load_results()
    failures: list[tuple[str, str]] = []
    for name in names:
        print(f"\n== {name}", flush=True)
        section_started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        load = {"before": load_text(), "others": other_processes()}
        busy0 = machine_busy()
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(MODULES.get(name, name))
            result = module.main()
            rows = [r for r in result or [] if isinstance(r, Row)]
            busy1 = machine_busy()
            load.update(after=load_text(), seconds=time.perf_counter() - t0,
                        busy=(busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]))
            sections[name] = {"started": section_started, "commit": commit, "rows": [row_to_json(r) for r in rows],
                              "report": getattr(module, "REPORT", "") or "", "load": load}
        except Exception:  # one failing benchmark must not lose the others' figures
            error = traceback.format_exc()
            print(error, file=sys.stderr, flush=True)
            failures.append((name, error))
            sections.pop(name, None)  # no stale figures under today's date
        print(f"   ({time.perf_counter() - t0:.0f} s; load average {load_text()})", flush=True)
    elapsed = time.perf_counter() - begin
    DOCS.mkdir(exist_ok=True)
    sections["_machine"] = facts
    RESULTS.write_text(json.dumps(sections, indent=1, ensure_ascii=False, default=str) + "\n")
    rows = write_report(sections, names, failures, facts, elapsed, started)
    print(f"\n{table(rows)}\n")
    print(f"wrote {DOCS / 'performance.md'}, {DOCS / 'performance.png'} and {RESULTS} in {elapsed:.0f} s")
    return 1 if failures else 0


def chosen_benchmarks(argv: list[str]) -> list[str]:
    words = argv or [w for w in os.environ.get("BENCH_ONLY", "").replace(",", " ").split()] or BENCHMARKS
    names = [ALIASES.get(w, w) for w in words]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS + list(ALIASES))}")
    return [n for n in BENCHMARKS if n in names]


def report_only() -> int:
    """`bench/run.py --report`: rewrite docs/performance.md and .png from docs/performance.json, measuring
    nothing (after a change to the report's text or plots)."""
    sections = load_results()
    if not sections:
        sys.exit(f"{RESULTS} has no recorded run")
    names = [n for n in BENCHMARKS if n in sections]
    started = min(sections[n]["started"] for n in names)
    elapsed = sum(sections[n].get("load", {}).get("seconds", 0.0) for n in names)
    facts = [tuple(f) for f in sections.get("_machine", [])] or machine()
    write_report(sections, names, [], facts, elapsed, started)
    print(f"rewrote {DOCS / 'performance.md'} and {DOCS / 'performance.png'} from {RESULTS}")
    return 0


if __name__ == "__main__":
    if "--baseline" in sys.argv[1:-1]:  # the in-process checkout bench/executors.py compares with
        at = sys.argv.index("--baseline")
        os.environ["REDISAI_BASELINE"] = sys.argv[at + 1]
        del sys.argv[at:at + 2]
    if sys.argv[1:] == ["--report"]:
        sys.exit(report_only())
    sys.exit(main(chosen_benchmarks(sys.argv[1:])))
