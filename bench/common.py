"""Shared by the benchmarks: a fresh server with the module, timing and CPU helpers, and the `Row`
every benchmark's `main()` returns (bench/run.py turns the rows into docs/performance.md)."""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from server import RedisServer  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


_started: list[RedisServer] = []


def start_server(module_args: tuple[str, ...] = (), config: tuple[str, ...] = (),
                 load_module: bool = True) -> RedisServer:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="redisai-bench-")), module_args=module_args, config=config,
                         load_module=load_module)
    _started.append(server)
    return server.start()


@atexit.register
def _stop_leftovers() -> None:
    """A benchmark that fails between start and stop must not leave its redis-server behind; the
    servers' temporary directories (logs, no data: saving is off) go too."""
    for server in _started:
        if server.alive():
            server.kill()
        shutil.rmtree(server.dir, ignore_errors=True)


def rate(run_batch, batch: int, seconds: float = 1.0) -> float:
    """Operations per second of `run_batch()` (which performs `batch` operations), over ~`seconds`."""
    run_batch()  # warm up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run_batch()
        done += batch
    return done / (time.perf_counter() - start)


# -- CPU and memory of processes ------------------------------------------------------------------

def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and every live descendant (a serving framework's workers, Ray's raylet and
    actors), from /proc."""
    parents: dict[int, int] = {}
    seconds: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        seconds[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, todo = 0.0, [pid]
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    while todo:
        current = todo.pop()
        total += seconds.get(current, 0.0)
        todo.extend(children.get(current, []))
    return total


def thread_cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of one thread of `pid` (its main thread by default), from /proc."""
    with open(f"/proc/{pid}/task/{tid or pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat: busy share over an interval =
    Δbusy / Δtotal (1.0 = every core busy), whoever was running."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class CpuShare:
    """`with CpuShare(server_pid) as cpu: ...` then `cpu.client` (this process's CPU seconds / wall
    seconds: the load generator's share, 1.0 = one core) and `cpu.server` (the same for `server_pid`)."""

    def __init__(self, server_pid: int | None = None, tree: bool = False):
        self.server_pid = server_pid
        self._server_cpu = tree_cpu_seconds if tree else process_cpu_seconds
        self.client = self.server = self.wall = float("nan")

    def __enter__(self) -> "CpuShare":
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._server = self._server_cpu(self.server_pid) if self.server_pid else 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.client = (time.process_time() - self._cpu) / self.wall
        if self.server_pid:
            self.server = (self._server_cpu(self.server_pid) - self._server) / self.wall

    @classmethod
    def combined(cls, shares: list["CpuShare"]) -> "CpuShare":
        """The shares of several intervals as one, each weighted by its wall time."""
        total = cls(shares[0].server_pid)
        total.wall = sum(share.wall for share in shares)
        total.client = sum(share.client * share.wall for share in shares) / total.wall
        total.server = sum(share.server * share.wall for share in shares) / total.wall
        return total

    def text(self) -> str:
        if self.server_pid:
            return f"{self.client:.0%} (server {self.server:.0%})"
        return f"{self.client:.0%}"


def measured_rate(run_batch, batch: int | None, seconds: float,
                  server_pid: int | None = None) -> tuple[float, CpuShare]:
    """`rate()` with the CPU shares of the load generator and the server over the same interval.
    With `batch` None, `run_batch()` returns how many operations it performed."""
    run_batch()  # warm up
    with CpuShare(server_pid) as cpu:
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            performed = run_batch()
            done += batch if batch is not None else performed
        elapsed = time.perf_counter() - start
    return done / elapsed, cpu


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def load_summary(samples: list) -> dict:
    """Slices of `models.load` (latencies, _, CpuShare) as one figure: rate over the summed wall time,
    p50, p99, and the load generator's and server's CPU share weighted by each slice's wall time."""
    latencies = [x for lat, _, _ in samples for x in lat]
    wall = sum(cpu.wall for _, _, cpu in samples)
    client = sum(cpu.client * cpu.wall for _, _, cpu in samples) / wall
    server_cpu = sum(cpu.server * cpu.wall for _, _, cpu in samples) / wall
    return {"rate": len(latencies) / wall, "p50": median(latencies), "p99": percentile(latencies, 99),
            "cpu": f"{client:.0%} (server {server_cpu:.0%})"}


# -- formatting ---------------------------------------------------------------------------------------

def fmt_rate(value: float, unit: str = "ops/s") -> str:
    if value >= 100:
        return f"{value:,.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs" if seconds >= 1e-5 else f"{seconds * 1e6:.1f} µs"


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


# -- the rows of docs/performance.md -----------------------------------------------------------------

@dataclass
class Row:
    """One line of the report: our figure next to its baseline from the same run.

    `ratio` is defined per row (`ratio_of`, e.g. "TENSORSET/SET"); `target` is a comparison on it,
    (">=", 0.8) or ("<=", 1.5), or None where the issue sets none. `cpu` is the load generator's CPU share
    (process_time / wall) while measuring our figure, `cpu_baseline` while measuring the baseline.
    `data` carries the numbers bench/run.py plots."""

    section: str
    name: str
    ours: str
    baseline_name: str
    baseline: str
    ratio: float | None
    ratio_of: str
    target: tuple[str, float] | None = None
    cpu: str = ""
    cpu_baseline: str = ""
    data: dict = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.target is None or self.ratio is None:
            return None
        op, value = self.target
        return self.ratio >= value if op == ">=" else self.ratio <= value

    def target_text(self) -> str:
        if self.target is None:
            return "—"
        op, value = self.target
        return f"{'≥' if op == '>=' else '≤'} {value:g}"

    def met_text(self) -> str:
        return {None: "", True: "met", False: "**missed**"}[self.met]


def print_rows(rows: list[Row]) -> None:
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        print(f"  {row.name:<44} {row.ours:<40} | {row.baseline_name}: {row.baseline:<36} | {row.ratio_of} {ratio} "
              f"target {row.target_text()} {row.met_text()} | client CPU {row.cpu} / {row.cpu_baseline}", flush=True)


# The server-side commands over the keys below (bench/server_side.py, profile_main.py, instructions.py).
MODELEXECUTE_COMMAND = [b"AI.MODELEXECUTE", b"m", b"INPUTS", b"2", b"a", b"b", b"OUTPUTS", b"1", b"c"]


def dag_command(floats) -> list[bytes]:
    """One AI.DAGEXECUTE: TENSORSET a, TENSORSET b (FLOAT 4 BLOBs of `floats`), MODELEXECUTE m, TENSORGET c."""
    blob = floats.tobytes()
    return [b"AI.DAGEXECUTE", b"ROUTING", b"a", b"|>", b"AI.TENSORSET", b"a", b"FLOAT", b"4", b"BLOB", blob,
            b"|>", b"AI.TENSORSET", b"b", b"FLOAT", b"4", b"BLOB", blob,
            b"|>", *MODELEXECUTE_COMMAND, b"|>", b"AI.TENSORGET", b"c", b"BLOB"]


def load_server_side_keys(client, floats) -> None:
    """The keys the server-side benchmark and the main-thread profile drive (bench/server_side.py,
    bench/profile_main.py): an ONNX Mul model `m`, FLOAT tensors `a`, `b`, `t` and a 16-byte string `s`."""
    import model_fixtures as mf

    client.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 4, "BLOB", floats.tobytes())
    client.execute_command("AI.TENSORSET", "b", "FLOAT", 4, "BLOB", floats.tobytes())
    client.execute_command("AI.TENSORSET", "t", "FLOAT", 4, "VALUES", 1, 2, 3, 4)
    client.set("s", b"x" * 16)
