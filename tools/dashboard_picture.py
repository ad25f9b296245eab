"""Draws docs/grafana/redisai.png: the panels of docs/grafana/redisai.json, laid out as Grafana lays them
out (its 24-column grid), each query of the dashboard answered by a real Prometheus scraping a real
`redisai exporter` of a real server under a load that changes over a few minutes.

Grafana itself draws nothing here: it could not be installed on the machine this was made on (no package in
Debian or PyPI, no network beyond them), so matplotlib draws what each panel's queries return, with the
panel's title, unit and legend format. Prometheus is Debian's `prometheus` package (installed when missing).

    .venv/bin/python tools/dashboard_picture.py [--minutes 4] [--out docs/grafana/redisai.png]

The load, all from the demo models (`redisai demo-models`): phase 1, four clients run model.onnx and the
TorchScript churn.pt; phase 2, sixteen clients add resnet.onnx with a short TIMEOUT under QUEUE_MAX_LENGTH
(so that runs wait, time out and are refused) and a BATCHSIZE model; phase 3, quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import redis

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "docs" / "grafana" / "redisai.json"
STEP_S = 2  # scrape interval and query step
RATE_WINDOW = "10s"  # $__rate_interval: four scrapes, as Grafana would choose for a 2 s scrape


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], check=True,
                   env=env)
    subprocess.run(sudo + ["systemctl", "stop", "prometheus"], capture_output=True)  # its own service, if started
    return shutil.which("prometheus") or "/usr/bin/prometheus"


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise TimeoutError(what)


# ---------------------------------------------------------------------------------------------- the load

def load(port: int, models: Path, seconds: float, stop: threading.Event) -> None:
    time.sleep(3 * STEP_S)  # Prometheus sees the counters before the stores: increase() counts the warm-ups
    db = redis.Redis(port=port)
    db.execute_command("AI.MODELSTORE", "model", "ONNX", "CPU", "BLOB", (models / "model.onnx").read_bytes())
    db.execute_command("AI.MODELSTORE", "model:batched", "ONNX", "CPU", "BATCHSIZE", 8, "MINBATCHSIZE", 4,
                       "MINBATCHTIMEOUT", 5, "BLOB", (models / "model.onnx").read_bytes())
    db.execute_command("AI.MODELSTORE", "churn", "TORCH", "CPU", "BLOB", (models / "churn.pt").read_bytes())
    db.execute_command("AI.MODELSTORE", "resnet", "ONNX", "CPU", "BLOB", (models / "resnet.onnx").read_bytes())
    db.execute_command("AI.TENSORSET", "x", "FLOAT", 1, 4, "BLOB", np.ones((1, 4), np.float32).tobytes())
    db.execute_command("AI.TENSORSET", "features", "FLOAT", 2, 3, "BLOB", np.ones((2, 3), np.float32).tobytes())
    db.execute_command("AI.TENSORSET", "image", "FLOAT", 8, 3, 64, 64,
                       "BLOB", np.random.default_rng(0).random((8, 3, 64, 64), np.float32).tobytes())
    start = time.monotonic()
    phase_length = seconds / 3

    def client(index: int) -> None:
        conn = redis.Redis(port=port)
        while not stop.is_set():
            elapsed = time.monotonic() - start
            phase = int(elapsed // phase_length)
            if phase >= 2 or (phase == 0 and index >= 4):
                time.sleep(0.2)
                continue
            try:
                choice = index % 4 if phase == 1 else index % 2
                if choice == 0:
                    conn.execute_command("AI.MODELEXECUTE", "model", "INPUTS", 1, "x", "OUTPUTS", 1, f"y{index}")
                elif choice == 1:
                    conn.execute_command("AI.MODELEXECUTE", "churn", "INPUTS", 1, "features", "OUTPUTS", 1,
                                         f"p{index}")
                elif choice == 2:
                    conn.execute_command("AI.MODELEXECUTE", "resnet", "INPUTS", 1, "image", "OUTPUTS", 1,
                                         f"r{index}", "TIMEOUT", 20)
                else:
                    conn.execute_command("AI.MODELEXECUTE", "model:batched", "INPUTS", 1, "x", "OUTPUTS", 1,
                                         f"b{index}")
            except redis.ResponseError:
                time.sleep(0.01)  # refused (queue full): as a client would back off

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(16)]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


# ---------------------------------------------------------------------------------------------- queries

def query_range(base: str, expr: str, start: float, end: float) -> list[dict]:
    expr = expr.replace("$__rate_interval", RATE_WINDOW).replace("$__range", f"{int(end - start)}s")
    expr = expr.replace('server=~"$server"', 'server=~".*"')
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": STEP_S})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=30) as response:
        answer = json.load(response)
    if answer.get("status") != "success":
        raise RuntimeError(f"{expr}: {answer}")
    return answer["data"]["result"]


def legend(template: str, labels: dict) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template or "")
    return text.replace("127.0.0.1:", "port ").strip() or ", ".join(f"{k}={v}" for k, v in labels.items())


def formatter(unit: str):
    from matplotlib.ticker import FuncFormatter

    def seconds(value, _):
        if value == 0:
            return "0"
        for scale, suffix in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {suffix}"
        return f"{value * 1e9:.3g} ns"

    def size(value, _):
        for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {suffix}"
        return f"{value:.0f} B"

    plain = {"s": seconds, "bytes": size, "ops": lambda v, _: f"{v:.3g}/s",
             "percentunit": lambda v, _: f"{v * 100:.0f} %"}.get(unit, lambda v, _: f"{v:.3g}")
    return FuncFormatter(plain), plain


# ---------------------------------------------------------------------------------------------- drawing

BACKGROUND, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLOURS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a", "#96d98d",
           "#ffb357", "#ca95e5", "#ff9830"]


def draw(dashboard: dict, series: dict, start: float, end: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_w, unit_h = 0.75, 0.42  # inches per grid column and row
    fig = plt.figure(figsize=(24 * unit_w, rows * unit_h + 0.7), facecolor=BACKGROUND)
    total_h = rows * unit_h + 0.7
    fig.text(0.01, 1 - 0.35 / total_h, f"{dashboard['title']}  ·  drawn from docs/grafana/redisai.json by "
             "tools/dashboard_picture.py (Prometheus's answers to each panel's queries; not Grafana's rendering)",
             color=TEXT, fontsize=11, va="center")
    for panel in panels:
        grid = panel["gridPos"]
        gap = 0.06
        left, width = grid["x"] / 24 + gap / (24 * unit_w), grid["w"] / 24 - 2 * gap / (24 * unit_w)
        top = (grid["y"] * unit_h + 0.7) / total_h
        height = grid["h"] * unit_h / total_h - 2 * gap / total_h
        frame = fig.add_axes([left, 1 - top - height - gap / total_h, width, height])
        frame.set_facecolor(PANEL)
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color(GRID)
        frame.text(0.01, 0.97, panel["title"], transform=frame.transAxes, color=TEXT, fontsize=11,
                   fontweight="bold", va="top")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")
        ticks, plain = formatter(unit)
        results = series[panel["title"]]
        if panel["type"] == "stat":
            items = [(legend(fmt, s["metric"]), float(s["values"][-1][1])) for fmt, found in results for s in found
                     if s["values"]]
            for i, (name, value) in enumerate(items[:6]):
                x = (i + 0.5) / max(1, min(len(items), 6))
                frame.text(x, 0.42, plain(value, None), transform=frame.transAxes, ha="center", va="center",
                           color=COLOURS[i % len(COLOURS)], fontsize=22, fontweight="bold")
                frame.text(x, 0.12, name, transform=frame.transAxes, ha="center", va="center", color=TEXT, fontsize=8)
            if not items:
                frame.text(0.5, 0.4, "no data", transform=frame.transAxes, ha="center", color=TEXT, fontsize=12)
            continue
        plot = fig.add_axes([left + 0.075 * width, 1 - top - height + 0.2 * height, width * 0.56, height * 0.68])
        plot.set_facecolor(PANEL)
        plot.tick_params(colors=TEXT, labelsize=8)
        for spine in plot.spines.values():
            spine.set_color(GRID)
        plot.grid(color=GRID, linewidth=0.6)
        plot.yaxis.set_major_formatter(ticks)
        colour = 0
        for fmt, found in results:
            for s in found:
                times = np.array([float(t) for t, _ in s["values"]]) - start
                values = np.array([float(v) for _, v in s["values"]])
                plot.plot(times, values, color=COLOURS[colour % len(COLOURS)], linewidth=1.4,
                          label=legend(fmt, s["metric"]))
                colour += 1
        plot.set_xlim(0, end - start)
        plot.set_xlabel("seconds into the load", color=TEXT, fontsize=8)
        if colour:
            plot.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False, labelcolor=TEXT)
        else:
            plot.text(0.5, 0.5, "no data", transform=plot.transAxes, ha="center", color=TEXT, fontsize=12)
    fig.savefig(out, dpi=80, facecolor=BACKGROUND)


# ---------------------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--out", default=str(ROOT / "docs" / "grafana" / "redisai.png"))
    args = parser.parse_args()
    dashboard = json.loads(DASHBOARD.read_text())
    work = Path(tempfile.mkdtemp(prefix="redisai-dashboard-"))
    processes = []
    try:
        models = work / "models"
        subprocess.run([sys.executable, "-m", "redisai.demo_models", str(models)], check=True, capture_output=True)
        port, exporter_port, prometheus_port = free_port(), free_port(), free_port()
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(work),
             "--loadmodule", str(ROOT / "build" / "redisai.so"), "QUEUE_MAX_LENGTH", "24",
             "BACKEND_MEMORY_LIMIT", "2048"], stdout=subprocess.DEVNULL))
        wait_until(lambda: redis.Redis(port=port).ping(), 60, "the server")
        processes.append(subprocess.Popen([str(Path(sys.executable).parent / "redisai"), "exporter", f"127.0.0.1:{port}",
                                           "--listen", f"127.0.0.1:{exporter_port}"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        config = work / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: {STEP_S}s\n  scrape_timeout: {STEP_S}s\nscrape_configs:\n"
                          f"  - job_name: redisai\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n")
        processes.append(subprocess.Popen([prometheus_binary(), f"--config.file={config}",
                                           f"--storage.tsdb.path={work / 'tsdb'}",
                                           f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{prometheus_port}"
        wait_until(lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200, 60, "Prometheus")
        start = time.time()
        stop = threading.Event()
        load(port, models, args.minutes * 60, stop)
        time.sleep(3 * STEP_S)
        end = time.time()
        series = {panel["title"]: [(target.get("legendFormat", ""), query_range(base, target["expr"], start, end))
                                   for target in panel["targets"]] for panel in dashboard["panels"]}
        draw(dashboard, series, start, end, Path(args.out))
        print(f"wrote {args.out}")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
