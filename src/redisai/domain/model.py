"""Models and scripts as stored in keys, with their run statistics (AI.INFO)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

LATENCY_WINDOW = 1024  # run durations kept per key for AI.INFO's percentiles


@dataclass
class RunStats:
    """AI.INFO counters of one model or script key."""

    duration_us: int = 0
    samples: int = 0
    calls: int = 0
    errors: int = 0
    runs: int = 0  # backend invocations: fewer than calls when auto-batching joins requests
    recent: deque = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW), repr=False, compare=False)

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, duration_us: int, samples: int, failed: bool, new_run: bool = True) -> None:
        with self.lock:
            self.calls += 1
            self.runs += new_run
            self.recent.append(duration_us)
            if failed:
                self.errors += 1
            else:
                self.duration_us += duration_us
                self.samples += samples

    def reset(self) -> None:
        self.duration_us = self.samples = self.calls = self.errors = self.runs = 0
        self.recent.clear()

    def percentiles(self, *quantiles: float) -> list[int]:
        """Run durations (us) at the given quantiles over the last LATENCY_WINDOW runs; 0 before any."""
        with self.lock:
            ordered = sorted(self.recent)
        return at_quantiles(ordered, quantiles)


def at_quantiles(ordered: list[int], quantiles) -> list[int]:
    """The values of sorted `ordered` at `quantiles` (nearest rank); 0 for each when there are none."""
    if not ordered:
        return [0 for _ in quantiles]
    return [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in quantiles]


class Runtime:
    """The loaded backend object of a model, built off the main thread; shared by COPY'd keys."""

    def __init__(self):
        self.loaded = None  # backends.LoadedModel
        self.error: str | None = None  # why the model could not be built
        self.ready = threading.Event()
        self.digest: bytes | None = None  # of the blob, once built (execution/warmup.py)
        self.shapes_seen = False  # a run's input shapes were kept for a later build of the same bytes
        self._lock = threading.Lock()
        self._waiting: list = []  # callbacks for when the build is done

    def set_loaded(self, loaded) -> None:
        self.loaded = loaded
        self._done()

    def set_failed(self, message: str) -> None:
        self.error = message
        self._done()

    def _done(self) -> None:
        with self._lock:
            self.ready.set()
            waiting, self._waiting = self._waiting, []
        for callback in waiting:
            callback()

    def when_ready(self, callback) -> None:
        """Calls `callback()` once the build is done: now, or on the thread that finishes it."""
        with self._lock:
            if not self.ready.is_set():
                self._waiting.append(callback)
                return
        callback()


@dataclass
class Model:
    backend: str  # TF, TFLITE, TORCH, ONNX
    device: str  # as the client wrote it
    tag: bytes
    batchsize: int
    minbatchsize: int
    minbatchtimeout: int
    inputs: list[str]  # TF: as given; others: read from the loaded model
    outputs: list[str]
    blob: bytes
    runtime: Runtime = field(default_factory=Runtime)
    stats: RunStats = field(default_factory=RunStats)
    key_name: bytes = b""  # where it was stored (AI._MODELSCAN)
    # MODELSTORE's WARMUP: [(type name, shape)] to warm the model on; [] (WARMUP 0) for none; None: the
    # shapes of earlier runs or those the model declares (execution/warmup.py)
    warmup: list | None = None

    def adopt(self, loaded) -> None:
        """Takes the loaded backend object; non-TF models name their inputs and outputs themselves."""
        if self.backend != "TF":
            self.inputs = list(loaded.inputs)
            self.outputs = list(loaded.outputs)
        self.runtime.set_loaded(loaded)

    def nbytes(self) -> int:
        return len(self.blob)

    def copy(self) -> "Model":
        """Another key's model: shares the immutable blob and the backend object, not the stats."""
        return Model(self.backend, self.device, self.tag, self.batchsize, self.minbatchsize, self.minbatchtimeout,
                     self.inputs, self.outputs, self.blob, self.runtime, key_name=self.key_name, warmup=self.warmup)
