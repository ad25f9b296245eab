"""Warm-up: a model's first runs after it is built (lazy kernel choice, memory arenas, TorchScript's
profiling runs) are several times slower than the steady ones. The build job (jobs.ModelLoadJob) runs
the model here before it is marked ready, so the first client's run is a steady one; runs that arrive
meanwhile wait for it (they wait for the build), and MODELSTORE answers once the model is warm.

Inputs, the first that applies:
1. the shapes the client named at store time (`MODELSTORE ... WARMUP <n> <TYPE> <dims> ... BLOB`);
2. the shapes of this process's last run of the same model bytes (a DEBUG RELOAD, a RESTORE or a
   FLUSHALL and re-store of a model that served before);
3. the inputs the model declares (ONNX, TF placeholders, TFLite, torch.export programs), a dimension
   of unknown size taken as 1;
otherwise (a TorchScript model, no shapes) the model is not warmed (counted as skipped).
Inputs are ones: valid indices and lengths for every dtype, and attention masks that keep every token (a
model whose graph branches on a mask's values warms the path real inputs take). A failed warm-up run is
logged and counted, and the model is served as usual (its first run will be cold).
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

import cbridge

from ..domain.tensor import DTYPES, element_count
from .tally import Tally

MAX_RUNS = 3  # TorchScript's profiling executor settles on its third run; the others on their second
# TorchScript's first run profiles and its second optimizes: the second may be no faster than the first,
# so runs continue regardless up to this many.
MIN_RUNS = {"TORCH": 3}
STEADY = 1.25  # a run not this much faster than the one before is steady: no more runs
TIME_CAP_S = 1.0  # no further warm-up run once this long was spent (a slow model is warmed by one run)
MAX_INPUT_BYTES = 256 * 1024 * 1024  # all inputs of one warm-up together


# INFO ai, `warmup` section: models built or warming now, and warm-ups done, failed and skipped.
counts = Tally("pending", "done", "failed", "skipped")
max_runs = MAX_RUNS  # WARMUP_RUNS (module argument, see configure); 0 turns warm-up off


def configure(runs: int) -> None:
    global max_runs
    max_runs = runs

# Blob digest -> [(numpy dtype, shape)] of the last successful run of those bytes in this process.
_seen_shapes: dict[bytes, list[tuple[np.dtype, tuple[int, ...]]]] = {}
_SEEN_MAX = 4096


_SAMPLES, _SAMPLE_BYTES = 32, 4096


def digest(blob: bytes) -> bytes:
    """Names a model's bytes for the shapes cache, in constant time: its length and 32 pieces of 4 KiB spread
    over it (hashing all of a 500 MB model would cost about 0.4 s a store). Two models that match here
    and differ elsewhere share warm-up shapes, which at worst fail the warm-up (counted; the model serves)."""
    view = memoryview(blob)
    hasher = hashlib.blake2b(len(blob).to_bytes(8, "little"), digest_size=16)
    if len(view) <= _SAMPLES * _SAMPLE_BYTES:
        hasher.update(view)
    else:
        step = (len(view) - _SAMPLE_BYTES) // (_SAMPLES - 1)
        for offset in range(0, step * _SAMPLES, step):
            hasher.update(view[offset:offset + _SAMPLE_BYTES])
    return hasher.digest()


def remember(model, arrays: list[np.ndarray]) -> None:
    """Called after a model's first successful run: its input shapes, for a later build of the same bytes."""
    runtime = model.runtime
    if runtime.digest is None:
        return
    if len(_seen_shapes) >= _SEEN_MAX:  # the oldest goes (another worker may have taken it already)
        _seen_shapes.pop(next(iter(_seen_shapes), None), None)
    _seen_shapes[runtime.digest] = [(array.dtype, array.shape) for array in arrays]


def _inputs(model, loaded) -> list[np.ndarray] | None:
    if model.warmup:
        return [np.ones(shape, DTYPES[name].numpy) for name, shape in model.warmup]
    seen = _seen_shapes.get(model.runtime.digest)
    if seen is not None:
        return [np.ones(shape, dtype) for dtype, shape in seen]
    declared = getattr(loaded, "declared_inputs", None)
    shapes = declared() if declared is not None else None
    if shapes is None:
        return None
    if sum(element_count(shape, dtype.itemsize) * dtype.itemsize for dtype, shape in shapes) > MAX_INPUT_BYTES:
        return None
    return [np.ones(shape, dtype) for dtype, shape in shapes]


def warm_up(model, loaded) -> None:
    """Runs `loaded` (not yet adopted by `model`) on warm-up inputs, on the build's worker."""
    model.runtime.digest = digest(model.blob)
    if model.warmup == [] or not max_runs:  # WARMUP 0, or WARMUP_RUNS 0
        return
    try:
        inputs = _inputs(model, loaded)
    except Exception:  # a declared shape numpy cannot make: not warmed
        inputs = None
    if inputs is None:
        counts.add("skipped")
        return
    loaded.warm_shapes = [(array.dtype, array.shape) for array in inputs]  # to warm a reload after a fault
    started, previous = time.perf_counter(), None
    at_least = min(MIN_RUNS.get(model.backend, 1), max_runs)
    counted = getattr(loaded, "counted", None)  # ONNX: out of RedisAI's allocator figures (INFO), as in RedisAI
    if counted is not None:
        loaded.counted = False
    try:
        for done in range(1, max_runs + 1):
            run_started = time.perf_counter()
            loaded.run(inputs)
            took = time.perf_counter() - run_started
            if previous is not None and done > at_least and took * STEADY >= previous:
                break
            previous = took
            if time.perf_counter() - started > TIME_CAP_S:
                break
    except Exception as e:  # noqa: BLE001 - any failure leaves a usable, cold model
        counts.add("failed")
        cbridge.log("notice", f"warm-up of model {model.key_name.decode(errors='replace')} failed "
                              f"(it is served cold): {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return
    finally:
        if counted is not None:
            loaded.counted = counted
    counts.add("done")
