"""HTTP model servers run next to Redis for the serving comparisons (bench/serving.py, bench/real_models.py):
FastAPI + uvicorn (bench/http_app.py), LitServe and Ray Serve (bench/peer_apps.py). Each runs in its own
process group on 127.0.0.1, is ready once it answers a real prediction, and is stopped (SIGTERM to its
group, then SIGKILL) by stop() or at exit at the latest."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import common  # noqa: F401  (puts tests/ on sys.path, for server)
from server import free_port  # noqa: E402

HERE = Path(__file__).resolve().parent


class HttpPeer:
    """A server process answering POST `url` with JSON; `ready_body` is a request that must succeed."""

    name = "HTTP"
    start_timeout = 120.0

    def __init__(self, model_path: str, ready_body: dict):
        self.port = free_port()
        self.model_path = model_path
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{self.name.lower().replace(' ', '')}-", suffix=".log",
                                               delete=False)
        self.temp_dirs: list[str] = []
        env = dict(os.environ, BENCH_ONNX_MODEL=model_path, **self.environment())
        self.process = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True, cwd=str(HERE))
        atexit.register(self.stop)
        self.started = time.monotonic()
        deadline = self.started + self.start_timeout
        data = json.dumps(ready_body).encode()
        while True:
            if self.process.poll() is not None:
                text = Path(self.log.name).read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {text}")
            try:
                request = urllib.request.Request(self.url, data=data, headers={"content-type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"{self.name} did not answer {self.url}")
                time.sleep(0.2)
        self.startup_seconds = time.monotonic() - self.started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/predict"

    @property
    def pid(self) -> int:
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:  # what the server started in its group (workers, Ray's raylet and GCS)
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
        for directory in self.temp_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        self.temp_dirs = []


class Uvicorn(HttpPeer):
    """FastAPI (bench/http_app.py) under uvicorn, 1 worker, uvloop and httptools, access log off."""

    name = "FastAPI"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "http_app:app", "--app-dir", str(HERE), "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1", "--log-level", "warning", "--no-access-log"]


class LitServe(HttpPeer):
    name = "LitServe"

    def command(self) -> list[str]:
        return [sys.executable, str(HERE / "peer_apps.py"), "litserve", str(self.port), self.model_path]


class RayServe(HttpPeer):
    name = "Ray Serve"

    def environment(self) -> dict[str, str]:
        directory = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths are limited
        self.temp_dirs.append(directory)
        return {"BENCH_RAY_TEMP": directory, "RAY_USAGE_STATS_ENABLED": "0"}

    def command(self) -> list[str]:
        return [sys.executable, str(HERE / "peer_apps.py"), "rayserve", str(self.port), self.model_path]

    def stop(self) -> None:
        # Ray's actors run in sessions of their own: the driver's SIGTERM handler shuts Serve and Ray
        # down (they exit with their raylet); what is left afterwards is found by its temp dir.
        directories = list(self.temp_dirs)
        super().stop()
        for pid in _pids_mentioning(directories):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _pids_mentioning(words: list[str]) -> list[int]:
    found = []
    if not words:
        return found
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(word in cmdline for word in words):
                found.append(int(entry))
    return found


PEERS = {"FastAPI": Uvicorn, "LitServe": LitServe, "Ray Serve": RayServe}
