"""Where the Redis main thread's time goes per AI.TENSORSET, AI.TENSORGET, AI.MODELEXECUTE and
AI.DAGEXECUTE: the input for cutting the per-command cost (issue 15, points 3 and 5).

For each workload, redis-benchmark drives one server with the module (the same command lines as
bench/server_side.py) and, while it runs:

1. CPU per command, unprofiled: Δ(utime + stime) of the main thread (/proc/<pid>/task/<pid>/stat) over
   Δcalls of the command (INFO commandstats), then the same for the native command it is compared with
   (SET, GET, PING) on the same server.
2. `perf record -e cpu-clock -t <main thread>` (on-CPU samples of the main thread only, no call graphs):
   shares by shared object and by symbol. µs per command = share x the CPU per command of step 1.
3. `py-spy record --native -r 500 --threads --idle` (wall-clock samples of every thread, Python and
   native frames): the main thread's samples split into idle (epoll_wait), waiting for the GIL, the
   command callback (RedisAI_Command, or a fast path's RedisAI_*Command, -> Python), the reply callback of blocked clients
   (RedisAI_Unblocked -> Python), socket I/O and the rest of Redis; and the Python functions below the
   callbacks (inclusive). py-spy stops the process for each sample, so its window runs slower than step
   1's; its shares are applied to step 1's CPU per command.

Both profilers are optional: a missing one leaves its tables out. The report (REPORT, markdown) goes into
docs/performance.md under "Where the main thread's time goes".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from common import MODELEXECUTE_COMMAND, Row, dag_command, load_server_side_keys, print_rows, process_cpu_seconds, start_server, thread_cpu_seconds


SECTION = "11. Main-thread profile"
WINDOW = float(os.environ.get("BENCH_PROFILE_WINDOW", "2.5"))
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
PY_SPY = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
PERF = shutil.which("perf")
FLOATS = np.array([1.1, 2.2, 3.3, 4.4], np.float32)
REPORT = ""  # markdown, set by main()


def workloads() -> list[dict]:
    dag = dag_command(FLOATS)
    return [
        {"name": "AI.TENSORSET u UINT8 16 BLOB <16 B>", "short": "TENSORSET", "stat": "ai.tensorset",
         "command": [b"AI.TENSORSET", b"u", b"UINT8", b"16", b"BLOB", b"x" * 16], "clients": 4, "pipeline": 32,
         "native": [b"SET", b"s", b"x" * 16], "native_stat": "set"},
        {"name": "AI.TENSORGET t BLOB (FLOAT 4)", "short": "TENSORGET", "stat": "ai.tensorget",
         "command": [b"AI.TENSORGET", b"t", b"BLOB"], "clients": 4, "pipeline": 32,
         "native": [b"GET", b"s"], "native_stat": "get"},
        {"name": "AI.MODELEXECUTE (ONNX Mul, 4 floats), -c 16", "short": "MODELEXECUTE", "stat": "ai.modelexecute",
         "command": MODELEXECUTE_COMMAND, "clients": 16,
         "pipeline": 1, "native": [b"PING"], "native_stat": "ping"},
        {"name": "AI.DAGEXECUTE (2 TENSORSET, MODELEXECUTE, TENSORGET), -c 16", "short": "DAGEXECUTE",
         "stat": "ai.dagexecute", "command": dag, "clients": 16, "pipeline": 1,
         "native": [b"GET", b"s"], "native_stat": "get"},
    ]


def calls(client, stat: str) -> tuple[int, int]:
    """(calls, usec) of a command from INFO commandstats: usec is Redis's own wall clock around the
    command's callback (and, for a blocked client, around its reply callback)."""
    entry = client.info("commandstats").get(f"cmdstat_{stat}", {})
    return int(entry.get("calls", 0)), int(entry.get("usec", 0))


class Load:
    """redis-benchmark sending `command` until stopped."""

    def __init__(self, port: int, command: list[bytes], clients: int, pipeline: int):
        self.process = subprocess.Popen(
            [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-P", str(pipeline),
             "-n", "2000000000", "-q", *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of the main thread so far."""
    values = {}
    with open(f"/proc/{pid}/task/{pid}/status") as f:
        for line in f:
            if "ctxt_switches" in line:
                name, value = line.split(":")
                values[name.strip()] = int(value)
    return values.get("voluntary_ctxt_switches", 0), values.get("nonvoluntary_ctxt_switches", 0)


def measure(client, pid: int, stat: str, seconds: float) -> dict:
    """Over `seconds`, unprofiled: µs of main-thread CPU per call, calls/s, the main thread's CPU share,
    commandstats µs per call, and the main thread's context switches per call."""
    (c0, u0), t0, w0, (v0, i0) = calls(client, stat), thread_cpu_seconds(pid), time.perf_counter(), context_switches(pid)
    p0 = process_cpu_seconds(pid)
    time.sleep(seconds)
    (c1, u1), t1, w1, (v1, i1) = calls(client, stat), thread_cpu_seconds(pid), time.perf_counter(), context_switches(pid)
    p1 = process_cpu_seconds(pid)
    n = max(1, c1 - c0)
    return {"us": (t1 - t0) / n * 1e6, "rate": n / (w1 - w0), "share": (t1 - t0) / (w1 - w0), "usec": (u1 - u0) / n,
            "voluntary": (v1 - v0) / n, "involuntary": (i1 - i0) / n,
            "other_us": ((p1 - p0) - (t1 - t0)) / n * 1e6}  # every other thread: workers, framework pools


# -- perf ---------------------------------------------------------------------------------------------

DSO_GROUPS = [
    ("CPython interpreter (libpython)", re.compile(r"libpython")),
    ("cffi (_cffi_backend)", re.compile(r"_cffi_backend")),
    ("numpy", re.compile(r"_multiarray|numpy")),
    ("Redis (redis-server)", re.compile(r"redis-server|redis-check")),
    ("the shim (redisai.so)", re.compile(r"redisai\.so")),
    ("kernel", re.compile(r"kernel|vdso")),
    ("libc", re.compile(r"libc\.so|ld-linux")),
    ("jemalloc", re.compile(r"jemalloc")),
    ("onnxruntime", re.compile(r"onnxruntime")),
]


def perf_profile(pid: int, seconds: float) -> dict | None:
    if not PERF:
        return None
    with tempfile.TemporaryDirectory() as directory:
        data = os.path.join(directory, "perf.data")
        record = subprocess.run([PERF, "record", "-q", "-e", "cpu-clock", "-F", "1999", "-t", str(pid), "-o", data,
                                 "--", "sleep", str(seconds)], capture_output=True, text=True, timeout=seconds + 60)
        if record.returncode != 0 or not os.path.exists(data):
            return None
        report = subprocess.run([PERF, "report", "-i", data, "--stdio", "--sort", "dso,sym", "--no-children",
                                 "--percent-limit", "0"], capture_output=True, text=True, timeout=120).stdout
    symbols: list[tuple[float, str, str]] = []
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if m:
            symbols.append((float(m.group(1)) / 100, m.group(2), m.group(3).strip()))
    if not symbols:
        return None
    groups: Counter = Counter()
    for share, dso, _ in symbols:
        groups[next((name for name, pattern in DSO_GROUPS if pattern.search(dso)), f"other ({dso})")] += share
    return {"groups": groups, "symbols": symbols}


# -- py-spy -------------------------------------------------------------------------------------------

CATEGORIES = ["command callback (RedisAI_Command or a fast path's RedisAI_*Command → Python)", "reply callback (RedisAI_Unblocked → Python)",
              "waiting for the GIL (take_gil)", "free callback (RedisAI_FreePrivdata / value free)",
              "socket I/O (read/write)", "rest of Redis (event loop, parsing, replies)", "idle (epoll_wait)"]


def pyspy_profile(pid: int, seconds: float) -> dict | None:
    if not PY_SPY:
        return None
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "raw.txt")
        record = subprocess.run([PY_SPY, "record", "--native", "-r", "500", "--threads", "--idle", "--format", "raw",
                                 "-o", out, "--pid", str(pid), "--duration", str(int(round(seconds)))],
                                capture_output=True, text=True, timeout=seconds + 120)
        if record.returncode != 0 or not os.path.exists(out):
            print(f"py-spy failed: {record.stderr[-500:]}", flush=True)
            return None
        lines = Path(out).read_text().splitlines()
    main: Counter = Counter()
    python_inclusive: Counter = Counter()
    python_self: Counter = Counter()
    workers: Counter = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames[0]
        frames = [re.sub(r":\d+\)$", ")", f) for f in frames[1:]]
        if "MainThread" not in thread and f"({pid})" not in thread:
            if "redisai-" in thread:
                workers[_worker_category(frames)] += n
            continue
        total += n
        category = _main_category(frames)
        main[category] += n
        python = [f for f in frames if f.endswith(".py)")]
        if python:
            for f in set(python):
                python_inclusive[f] += n
            python_self[python[-1]] += n
    if not total:
        return None
    return {"main": main, "total": total, "python_inclusive": python_inclusive, "python_self": python_self,
            "workers": workers}


def _main_category(frames: list[str]) -> str:
    names = [f.split(" ")[0] for f in frames]
    if any(n == "take_gil" for n in names):
        return CATEGORIES[2]
    if any(n.startswith("RedisAI_") and n.endswith("Command") for n in names):  # the fast paths' entries too
        return CATEGORIES[0]
    if "RedisAI_Unblocked" in names:
        return CATEGORIES[1]
    if any(n in ("RedisAI_FreePrivdata", "freeValue") for n in names):
        return CATEGORIES[3]
    leaf = names[-1] if names else ""
    if leaf == "epoll_wait":
        return CATEGORIES[6]
    if leaf in ("write", "read", "writev", "__libc_write", "__libc_read"):
        return CATEGORIES[4]
    return CATEGORIES[5]


def _worker_category(frames: list[str]) -> str:
    names = [f.split(" ")[0] for f in frames]
    if "RedisAI_SignalWait" in names and not any(n == "take_gil" for n in names):
        spinning = not any(n.startswith("pthread_cond") or n == "futex" or "futex" in n for n in names)
        return "waiting for a job (spinning)" if spinning else "waiting for a job (asleep)"
    if any(n == "take_gil" for n in names):
        return "waiting for the GIL"
    if any("onnxruntime" in f or "OrtSession" in f or "InferenceSession.run" in f for f in frames):
        return "in onnxruntime (InferenceSession.run)"
    if any(f.endswith(".py)") for f in frames):
        return "Python (queue, job, outputs)"
    return "other native"


# -- the report ----------------------------------------------------------------------------------------

def fmt_us(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


PYTHON_SIDE = ("CPython interpreter (libpython)", "cffi (_cffi_backend)", "numpy", "the shim (redisai.so)")


def section(w: dict, ours: dict, native: dict, perf: dict | None, spy: dict | None) -> list[str]:
    us, name = ours["us"], w["native"][0].decode()
    lines = [f"### {w['short']}: `{w['name']}` (redis-benchmark -c {w['clients']} -P {w['pipeline']})", "",
             f"Main thread: **{fmt_us(us)} µs CPU per command** at {ours['rate']:,.0f} commands/s (main thread busy "
             f"{ours['share']:.0%}); native `{name}` on the same server: {fmt_us(native['us'])} µs per command at "
             f"{native['rate']:,.0f}/s, so one {w['short']} costs the main thread {us / native['us']:.1f} native "
             f"commands. Context switches of the main thread per command: {ours['voluntary']:.2f} voluntary, "
             f"{ours['involuntary']:.2f} involuntary ({name}: {native['voluntary']:.3f} and "
             f"{native['involuntary']:.3f}). The server's other threads (workers, framework pools) used "
             f"{fmt_us(ours['other_us'])} µs of CPU per command. " + (
                 f"Redis's own clock around the command callback (INFO commandstats usec_per_call, wall time): "
                 f"{fmt_us(ours['usec'])} µs, {name} {fmt_us(native['usec'])} µs." if w["pipeline"] > 1 else
                 f"(INFO commandstats' {fmt_us(ours['usec'])} µs per call covers the time the client was blocked.)"),
             ""]
    python_us = None
    if perf:
        python_share = sum(perf["groups"][g] for g in PYTHON_SIDE)
        python_us = python_share * us
        lines += ["perf, the main thread's on-CPU samples by shared object (µs = share × CPU per command): " + ", ".join(
            f"{group} {share:.0%} ({fmt_us(share * us)} µs)" for group, share in perf["groups"].most_common()) +
            f". Python side (interpreter, cffi, numpy, shim): **{fmt_us(python_us)} µs**; Redis, kernel, libc and "
            f"jemalloc: {fmt_us(us - python_us)} µs.", "",
            "| native symbol (top 15) | object | % on-CPU | µs per command |", "|---|---|---|---|"]
        for share, dso, symbol in perf["symbols"][:15]:
            lines.append(f"| `{symbol}` | {dso.replace('.cpython-311-x86_64-linux-gnu', '')} | {share:.1%} | "
                         f"{fmt_us(share * us)} |")
        lines.append("")
    if spy:
        active = spy["total"] - spy["main"][CATEGORIES[6]]
        in_python = spy["main"][CATEGORIES[0]] + spy["main"][CATEGORIES[1]] + spy["main"][CATEGORIES[3]]
        lines += ["py-spy, the main thread's wall-clock samples (py-spy stops the process to sample, which "
                  "over-counts syscalls such as the socket write; perf above is the CPU split):", "",
                  "| where | % of samples | % of non-idle |", "|---|---|---|"]
        for category in CATEGORIES:
            n = spy["main"][category]
            if n:
                lines.append(f"| {category} | {n / spy['total']:.1%} | "
                             f"{'—' if category == CATEGORIES[6] else f'{n / active:.1%}'} |")
        if in_python:
            scale = f" × the Python side's {fmt_us(python_us)} µs (perf)" if python_us is not None else ""
            lines += ["", f"Python functions on the main thread, inclusive, top 12 (% of the samples inside the AI "
                      f"callbacks; µs = that share{scale}):", "",
                      "| function | % of callback samples | µs per command | self % |", "|---|---|---|---|"]
            for frame, n in spy["python_inclusive"].most_common(12):
                cost = fmt_us(n / in_python * python_us) if python_us is not None else "—"
                lines.append(f"| `{frame}` | {n / in_python:.1%} | {cost} | {spy['python_self'][frame] / in_python:.1%} |")
        if spy["workers"]:
            total = sum(spy["workers"].values())
            lines += ["", "Worker threads (`redisai-CPU-*`, all together), share of their wall-clock samples: " +
                      ", ".join(f"{worker} {n / total:.0%}" for worker, n in spy["workers"].most_common()) + "."]
        lines.append("")
    return lines


def main() -> list[Row]:
    global REPORT
    server = start_server()
    pid = server.process.pid
    rows: list[Row] = []
    body: list[str] = []
    try:
        client = server.client()
        load_server_side_keys(client, FLOATS)
        for w in workloads():
            load = Load(server.port, w["native"], w["clients"], w["pipeline"])
            try:
                native = measure(client, pid, w["native_stat"], WINDOW / 2)
            finally:
                load.stop()
            load = Load(server.port, w["command"], w["clients"], w["pipeline"])
            try:
                ours = measure(client, pid, w["stat"], WINDOW)
                perf = perf_profile(pid, WINDOW)
                spy = pyspy_profile(pid, WINDOW)
            finally:
                load.stop()
            body += section(w, ours, native, perf, spy)
            us, native_us, name = ours["us"], native["us"], w["native"][0].decode()
            python_us = sum(perf["groups"][g] for g in PYTHON_SIDE) * us if perf else None
            rows.append(Row(SECTION, f"main thread CPU per {w['short']} (-c {w['clients']} -P {w['pipeline']})",
                            f"{fmt_us(us)} µs per command ({ours['rate']:,.0f}/s, main thread {ours['share']:.0%} busy"
                            + (f"; Python side {fmt_us(python_us)} µs" if python_us is not None else "") +
                            f"; {ours['voluntary'] + ours['involuntary']:.2f} context switches"
                            + (f"; other threads {fmt_us(ours['other_us'])} µs" if ours["other_us"] >= 0.5 else "") + ")",
                            name, f"{fmt_us(native_us)} µs per command ({native['rate']:,.0f}/s)",
                            us / native_us, f"µs {w['short']} / µs {name}", None,
                            data={"kind": "profile", "short": w["short"], "us": us, "native_us": native_us,
                                  "python_us": python_us, "ours": ours, "native": native}))
            print_rows(rows[-1:])
    finally:
        server.stop()
    tools = [t for t, p in (("perf", PERF), ("py-spy", PY_SPY)) if p]
    REPORT = "\n".join([
        f"Profiled with {' and '.join(tools) or 'no profiler (neither perf nor py-spy found)'} while "
        f"redis-benchmark drove each command ({WINDOW:g} s windows: CPU per command unprofiled, then perf, then "
        "py-spy). The µs columns split the unprofiled main-thread CPU per command by the profilers' shares. "
        "py-spy's wall-clock shares include time the main thread was runnable but not running, which on a "
        "loaded 2-core machine is not negligible.", "", *body])
    return rows


if __name__ == "__main__":
    main()
    print(REPORT)
