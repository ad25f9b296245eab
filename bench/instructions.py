"""Instructions per command, counted on the server: a measure that holds on any machine (issue 24).

Time per command moves with the CPU (interpreted Python and thread hand-offs most of all: the same
commit was two to three times further from native on one AMD EPYC host than on an Intel Xeon one);
instruction counts do not. One redis-server with the module runs under `valgrind --tool=callgrind
--separate-threads=yes`; redis-benchmark (C) sends each command, and callgrind_control zeroes the
counters before and dumps them after (per thread). Each figure is marginal: the counts of N and of 2N
commands, (I(2N) - I(N)) / N, so that redis-benchmark's connections and its start-up commands cancel out,
less what an idle server executes over the difference in wall time (serverCron, measured first).

Thread 1 is Redis's main thread; "other threads" are the rest (the device queue's worker, the
framework's own threads, Redis's bio threads). A run's own cost is the bare framework call, counted the same way
in a Python process of its own under callgrind (the model's `InferenceSession` called with the same inputs,
through the binding call our worker makes): issue 24's MODELEXECUTE and DAG targets exclude it.

The server runs with `WORKER_SPIN_US 0`: under valgrind, threads take turns on one core, so a spinning
worker's instructions would count wall time, not work (the time-based sections measure the spin).
The slow log's threshold is raised: under valgrind a blocked command takes longer than its 10 ms
default and would be logged, which at full speed it never is. Everything else is the default
configuration. Needs valgrind (Debian's package); without it the section
prints why and returns no rows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import MODELEXECUTE_COMMAND, Row, dag_command, load_server_side_keys, print_rows

from server import RedisServer  # noqa: E402  (tests/ is on sys.path through common)

SECTION = "14. Instructions per command (callgrind)"
VALGRIND = shutil.which("valgrind")
CALLGRIND_CONTROL = shutil.which("callgrind_control")
CALLGRIND_ANNOTATE = shutil.which("callgrind_annotate")
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
SCALE = float(os.environ.get("BENCH_INSTRUCTIONS_SCALE", "1"))  # multiplies every N
FLOATS = np.array([1.1, 2.2, 3.3, 4.4], np.float32)
REPORT = ""  # markdown, set by main(): where the main thread's instructions go, by shared object


# name -> (command, clients, pipeline, N)
COMMANDS = {
    "SET 16 B": ([b"SET", b"s16", b"x" * 16], 4, 32, 6400),
    "AI.TENSORSET 16 B": ([b"AI.TENSORSET", b"u", b"UINT8", b"16", b"BLOB", b"x" * 16], 4, 32, 3200),
    "SET 4 KiB": ([b"SET", b"s4k", b"x" * 4096], 4, 32, 6400),
    "AI.TENSORSET 4 KiB": ([b"AI.TENSORSET", b"u4k", b"UINT8", b"4096", b"BLOB", b"x" * 4096], 4, 32, 3200),
    "GET 16 B": ([b"GET", b"s16"], 4, 32, 6400),
    "AI.TENSORGET 16 B": ([b"AI.TENSORGET", b"u", b"BLOB"], 4, 32, 3200),
    "GET 4 KiB": ([b"GET", b"s4k"], 4, 32, 6400),
    "AI.TENSORGET 4 KiB": ([b"AI.TENSORGET", b"u4k", b"BLOB"], 4, 32, 3200),
    "AI.CONFIG GET (floor)": ([b"AI.CONFIG", b"GET", b"BACKENDSPATH"], 4, 32, 3200),
    "PING": ([b"PING"], 16, 1, 3200),
    "AI.MODELEXECUTE": (MODELEXECUTE_COMMAND, 16, 1, 800),
    "SET ab 32 B (pair)": ([b"SET", b"ab", FLOATS.tobytes() * 2], 16, 2, 3200),
    "GET ab (pair)": ([b"GET", b"ab"], 16, 2, 3200),
    "AI.DAGEXECUTE (4 ops)": (dag_command(FLOATS), 16, 1, 400),
}

# (ours, baseline(s) summed, ratio name, target ≤, threads: "main" or "all")
TARGETS = [
    ("AI.TENSORSET 16 B", ["SET 16 B"], "TENSORSET/SET 16 B", 4.0, "main"),
    ("AI.TENSORSET 4 KiB", ["SET 4 KiB"], "TENSORSET/SET 4 KiB", 4.0, "main"),
    ("AI.TENSORGET 16 B", ["GET 16 B"], "TENSORGET/GET 16 B", 3.0, "main"),
    ("AI.TENSORGET 4 KiB", ["GET 4 KiB"], "TENSORGET/GET 4 KiB", 3.0, "main"),
    ("AI.CONFIG GET (floor)", ["GET 16 B"], "CONFIG GET/GET (the floor)", None, "main"),
    ("AI.MODELEXECUTE", ["PING"], "MODELEXECUTE/PING, all threads, model's run excluded", 6.0, "all"),
    ("AI.DAGEXECUTE (4 ops)", ["SET ab 32 B (pair)", "GET ab (pair)"], "DAG/(SET+GET pair), all threads", 10.0,
     "all"),
]


class Callgrind:
    """A redis-server with the module under callgrind, and per-thread instruction counts of a load."""

    def __init__(self, directory: Path):
        self.dir = directory
        wrapper = (VALGRIND, "--tool=callgrind", "--separate-threads=yes", "--dump-instr=no", "--compress-strings=no",
                   "--compress-pos=no",
                   f"--callgrind-out-file={directory}/cg.%p")
        # Under valgrind a blocked command lasts longer than the slow log's 10 ms and would be logged (3.7 k
        # instructions each) where at full speed it never is.
        self.server = RedisServer(directory / "data", module_args=("WORKER_SPIN_US", "0"),
                                  wrapper=wrapper,
                                  config=("--slowlog-log-slower-than", "100000000"))
        self.parts_seen = 0

    def start(self) -> "Callgrind":
        self.server.start(timeout=900)  # CPython, numpy and the module start ~50x slower under valgrind
        self.pid = self.server.process.pid
        return self

    def _control(self, flag: str) -> None:
        subprocess.run([CALLGRIND_CONTROL, flag, str(self.pid)], capture_output=True, timeout=300, check=True)

    def count(self, load) -> tuple[dict[int, int], float, dict[int, Path]]:
        """Instructions per thread while `load()` runs, its wall time, and the dump files."""
        self._control("-z")
        start = time.perf_counter()
        load()
        wall = time.perf_counter() - start
        self._control("-d")
        self.parts_seen += 1
        counts, files = {}, {}
        for path in self.dir.glob(f"cg.{self.pid}.{self.parts_seen}-*"):
            thread = int(path.name.rsplit("-", 1)[1])
            counts[thread], files[thread] = _summary(path), path
        if not files:
            raise RuntimeError(f"callgrind wrote no dump {self.parts_seen} for {self.pid}")
        return counts, wall, files

    def stop(self) -> None:
        self.server.stop()


def _summary(path: Path) -> int:
    """A dump's total instructions (its `summary:` line)."""
    match = re.search(r"^summary: (\d+)", path.read_text(errors="replace"), re.M)
    return int(match.group(1)) if match else 0


def _benchmark(port: int, command: list[bytes], clients: int, pipeline: int, n: int) -> None:
    subprocess.run([REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-P", str(pipeline),
                    "-n", str(n), "-q", *command], capture_output=True, timeout=1800, check=True)


BARE_RUN = r"""
import os, subprocess, sys
import numpy as np
import onnxruntime
sys.path.insert(0, sys.argv[2])
import model_fixtures as mf
session = onnxruntime.InferenceSession(mf.onnx_mul(), providers=["CPUExecutionProvider"])
run = session._sess.run  # what the worker calls (backends/onnx.py)
feeds = {"a": np.array([1.1, 2.2, 3.3, 4.4], np.float32), "b": np.array([1.1, 2.2, 3.3, 4.4], np.float32)}
n = int(sys.argv[1])
for _ in range(200):
    run(["c"], feeds, None)
for count in (n, 2 * n):
    subprocess.run(["callgrind_control", "-z", str(os.getpid())], capture_output=True, check=True)
    for _ in range(count):
        run(["c"], feeds, None)
    subprocess.run(["callgrind_control", "-d", str(os.getpid())], capture_output=True, check=True)
"""


def bare_run(directory: Path, n: int = 2000) -> float:
    """Instructions of one bare onnxruntime call of the model (all threads), marginal as above."""
    out = directory / "bare"
    out.mkdir()
    subprocess.run([VALGRIND, "--tool=callgrind", "--separate-threads=yes", "--dump-instr=no",
                    f"--callgrind-out-file={out}/cg.%p", sys.executable, "-c", BARE_RUN, str(n),
                    str(Path(__file__).resolve().parent.parent / "tests")],
                   capture_output=True, timeout=1800, check=True)
    totals = {}
    for path in out.glob("cg.*.*-*"):
        part = int(path.name.split(".")[2].split("-")[0])
        totals[part] = totals.get(part, 0) + _summary(path)
    first, second = sorted(totals)[-2:]
    return (totals[second] - totals[first]) / n


def _object_name(path: str) -> str:
    name = Path(path).name
    name = {"redis-check-rdb": "redis-server"}.get(name, name)  # Debian's binaries are one file
    return re.sub(r"\.cpython-\d+.*\.so$", ".so", name)


def _by_object(path: Path) -> dict[str, int]:
    """One thread's dump (written with --compress-strings=no), read directly: self instructions by shared
    object. In callgrind's format `ob=` names the object of the `fn=` lines that follow, the cost line
    after a `calls=` line is that call's inclusive cost (the callee's, not self), and every other cost
    line is self cost."""
    by_object: dict[str, int] = {}
    current, in_call = "?", False
    with open(path, errors="replace") as lines:
        for line in lines:
            if line.startswith("ob="):
                current = _object_name(line[3:].strip())
            elif line.startswith("calls="):
                in_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                fields = line.split()
                if in_call:
                    in_call = False
                elif len(fields) > 1:
                    by_object[current] = by_object.get(current, 0) + int(fields[-1])
    return by_object


def measure(grind: Callgrind, port: int, idle_per_s: dict[int, float], model_call: float) -> dict[str, dict]:
    results = {}
    for name, (command, clients, pipeline, n) in COMMANDS.items():
        n = max(clients * pipeline, int(n * SCALE) // (clients * pipeline) * clients * pipeline)
        _benchmark(port, command, clients, pipeline, n)  # warm: first calls import and cache
        one, wall1, _ = grind.count(lambda: _benchmark(port, command, clients, pipeline, n))
        two, wall2, files = grind.count(lambda: _benchmark(port, command, clients, pipeline, 2 * n))
        threads = set(one) | set(two)
        per = {t: max(0.0, (two.get(t, 0) - one.get(t, 0) - idle_per_s.get(t, 0.0) * (wall2 - wall1)) / n)
               for t in threads}
        model_run = model_call if b"AI.MODELEXECUTE" in command else 0.0
        results[name] = {"main": per.get(1, 0.0), "other": sum(v for t, v in per.items() if t != 1),
                         "model_run": model_run, "n": n, "files": files}
        print(f"  {name:<26} main {results[name]['main']:>9,.0f}  other threads {results[name]['other']:>9,.0f}"
              f"  (of them the model's run {results[name]['model_run']:,.0f}) instructions/command, N={n}",
              flush=True)
    return results


def main() -> list[Row]:
    global REPORT
    if not (VALGRIND and CALLGRIND_CONTROL and CALLGRIND_ANNOTATE):
        print("  valgrind is not installed (apt-get install valgrind): no instruction counts", flush=True)
        return []
    directory = Path(tempfile.mkdtemp(prefix="redisai-callgrind-"))
    grind = Callgrind(directory).start()
    rows: list[Row] = []
    try:
        client = grind.server.client(socket_timeout=600)
        load_server_side_keys(client, FLOATS)
        client.set("s16", b"x" * 16)
        client.set("ab", FLOATS.tobytes() * 2)
        client.execute_command(*dag_command(FLOATS))
        idle, idle_wall, _ = grind.count(lambda: time.sleep(2.0))
        idle_per_s = {t: v / idle_wall for t, v in idle.items()}
        print(f"  idle server: {sum(idle_per_s.values()):,.0f} instructions/s (serverCron), subtracted", flush=True)
        model_call = bare_run(directory)
        print(f"  the bare onnxruntime call of the model: {model_call:,.0f} instructions", flush=True)
        results = measure(grind, grind.server.port, idle_per_s, model_call)
        for ours_name, base_names, ratio_of, target, threads in TARGETS:
            ours = results[ours_name]
            base = {"main": sum(results[b]["main"] for b in base_names),
                    "other": sum(results[b]["other"] for b in base_names)}
            if threads == "main":
                ours_count, base_count = ours["main"], base["main"]
                ours_text = f"{ours_count:,.0f} instr/cmd (main thread)"
                base_text = f"{base_count:,.0f} instr/cmd"
            else:
                ours_count = ours["main"] + ours["other"] - ours["model_run"]
                base_count = base["main"] + base["other"]
                ours_text = (f"{ours_count:,.0f} instr/cmd (main {ours['main']:,.0f} + other threads "
                             f"{ours['other']:,.0f} − model's run {ours['model_run']:,.0f})")
                base_text = f"{base_count:,.0f} instr/cmd"
            ratio = ours_count / base_count
            rows.append(Row(SECTION, ours_name, ours_text, " + ".join(base_names), base_text, ratio, ratio_of,
                            ("<=", target) if target is not None else None,
                            data={"kind": "instructions", "ours": {k: v for k, v in ours.items() if k != "files"},
                                  "base": base}))
            print_rows(rows[-1:])
        REPORT = _report(results)
    finally:
        grind.stop()
        if not os.environ.get("BENCH_KEEP_CALLGRIND"):  # the dumps, for callgrind_annotate by hand
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"  callgrind dumps kept in {directory}", flush=True)
    return rows


def _report(results: dict[str, dict]) -> str:
    """Markdown: the main thread's instructions per command by shared object, for the AI.* rows."""
    lines = ["| per command, main thread | instructions | " + " | ".join(_OBJECTS) + " | other |",
             "|---|---|" + "---|" * (len(_OBJECTS) + 1)]
    for name in ("AI.TENSORSET 16 B", "AI.TENSORGET 16 B", "AI.CONFIG GET (floor)", "AI.MODELEXECUTE",
                 "AI.DAGEXECUTE (4 ops)", "SET 16 B", "GET 16 B", "PING"):
        result = results[name]
        objects = _by_object(result["files"][1])
        total = sum(objects.values()) or 1
        shares = [objects.get(o, 0) / total for o in _OBJECTS]
        lines.append(f"| {name} | {result['main']:,.0f} | " + " | ".join(f"{s:.0%}" for s in shares)
                     + f" | {1 - sum(shares):.0%} |")
    return "\n".join(lines)


_OBJECTS = ["libpython3.11.so.1.0", "redis-server", "_multiarray_umath.so", "libjemalloc.so.2", "libc.so.6",
            "redisai.so"]


if __name__ == "__main__":
    main()
    print(REPORT)
