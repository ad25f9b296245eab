"""Model runs on Redis's main thread, for models whose runs take a few microseconds.

For such a model the hand-off to a worker (blocking the client, waking the worker, handing the reply
back, the unblocked client's callback) costs more than the run itself. A run goes inline only when all
of these hold, so that runs which hold the main thread longer than INLINE_RUN_MAX_US stay rare:
- the backend says a run's time is set by its inputs' types and shapes (ONNX on the CPU without a
  Loop or a contrib operator: no data-dependent loop; backends.base.LoadedModel.shape_bounded_runs);
- the model is built and warm, and does not batch (batching needs the queue);
- its runs with the same input types and shapes have been short: each run within the bound (on a
  worker or here) adds one to that signature's credit, up to CREDIT_CAP, each longer one takes
  LONG_RUN_DEBIT off, and runs go inline while the credit is at least CREDIT_NEEDED. A first run on a new
  thread or a moment of a busy machine costs one long run; a model whose runs are long at least one time
  in LONG_RUN_DEBIT + 1 goes back to the queue after a couple of them, and stays there;
- no run is waiting on its device queue: an inline run never overtakes a queued one.
MODEL_EXECUTION_TIMEOUT stops a run on the main thread as it stops one on a worker. INLINE_RUN_MAX_US 0
turns this off.
"""

from __future__ import annotations

from .tally import Tally

CREDIT_NEEDED = 16
CREDIT_CAP = 32
LONG_RUN_DEBIT = 8
MAX_SIGNATURES = 8  # input signatures counted per model: a model called with ever-new shapes stays queued

max_us = 0  # INLINE_RUN_MAX_US, set at load
counts = Tally("runs", "long")  # INFO ai: runs_inline, runs_inline_long


def configure(bound_us: int) -> None:
    global max_us
    max_us = bound_us


def signature(inputs) -> tuple:
    # The type's name, not the DType: a frozen dataclass hashes all its fields in Python at every lookup.
    return tuple([(tensor.dtype.name, tensor.array.shape) for tensor in inputs])


def learn(model, inputs, duration_us: int) -> None:
    """After a successful single run on a worker: its signature's credit, for a model that may go inline."""
    if max_us and not model.batchsize and getattr(model.runtime.loaded, "shape_bounded_runs", False):
        _credit(model.runtime.run_credit, signature(inputs), duration_us)


def _credit(credit: dict, key: tuple, duration_us: int) -> None:
    if duration_us > max_us:
        if key in credit:
            credit[key] = max(0, credit[key] - LONG_RUN_DEBIT)
    elif key in credit:
        if credit[key] < CREDIT_CAP:
            credit[key] += 1
    elif len(credit) < MAX_SIGNATURES:
        credit[key] = 1


def allowed(model, inputs, queue) -> tuple | None:
    """The run's input signature when it may go inline now (see the module's docstring), else None; on
    the main thread."""
    runtime = model.runtime
    if not (max_us and runtime.run_credit and not queue.jobs and not model.batchsize and runtime.ready.is_set()
            and runtime.error is None):
        return None
    key = signature(inputs)
    return key if runtime.run_credit.get(key, 0) >= CREDIT_NEEDED else None


def ran(model, key: tuple, duration_us: int, failed: bool) -> None:
    """After a run on the main thread (`key` from allowed()): counted, and its signature's credit."""
    counts.add("runs")
    if duration_us > max_us:
        counts.add("long")
    if not failed:  # allowed() gave `key`: the model may go inline, no need to ask again
        _credit(model.runtime.run_credit, key, duration_us)
