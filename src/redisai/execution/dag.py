"""Running a parsed DAG: each model or script op goes to its device's queue as soon as the tensors it
reads exist, so independent ops (and ops on different devices) run at the same time.

Tensors live in numbered slots local to the DAG; every op reads and writes slots, never keys.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from . import queues
from .jobs import ModelRunJob, ScriptRunJob


@dataclass
class Op:
    kind: str  # "set", "get", "model", "script"
    inputs: list[int] = field(default_factory=list)  # slots read
    outputs: list[int] = field(default_factory=list)  # slots written
    target: object = None  # the Model or Script
    function: str = ""
    keys: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    variadic_from: int | None = None
    get_format: tuple = (True, b"BLOB")
    # outcome
    state: str = "pending"  # pending, submitted, done, failed, timedout
    error: str | None = None


class DagRun:
    def __init__(self, ops: list[Op], slots: list, timeout_ms: int):
        self.ops = ops
        self.slots = slots  # Tensor or None (not produced yet)
        self.timeout_ms = timeout_ms
        self.lock = threading.Lock()
        self.failed = False
        self.timed_out = False
        self.running = 0
        self.on_finish = None  # called once when nothing more will run
        self._finished = False
        self.started_at = None
        self.caller = None  # who scripts' redis.execute calls run as (blocking.block fills it)
        self.client_left = False  # its client disconnected: no op starts any more

    @property
    def wants_caller(self) -> bool:
        return any(op.kind == "script" for op in self.ops)

    @property
    def needs_workers(self) -> bool:
        return any(op.kind in ("model", "script") for op in self.ops)

    def start(self, started_at: float) -> None:
        self.started_at = started_at
        with self.lock:
            self._submit_ready()
            done = self._check_finished()
        if done:
            self.on_finish(self)

    def _submit_ready(self) -> None:
        """Called with the lock held."""
        if self.failed or self.timed_out or self.client_left:
            return
        for op in self.ops:
            if op.state != "pending" or op.kind not in ("model", "script"):
                continue
            if any(self.slots[slot] is None for slot in op.inputs):
                continue
            op.state = "submitted"
            self.running += 1
            tensors = [self.slots[slot] for slot in op.inputs]
            if op.kind == "model":
                job = ModelRunJob(op.target, tensors, len(op.outputs), self.timeout_ms)
                device = op.target.device
            else:
                job = ScriptRunJob(op.target, op.function, tensors, op.keys, op.args, len(op.outputs),
                                   self.timeout_ms, op.variadic_from, caller=self.caller)
                device = op.target.device
            job.enqueued_at = self.started_at
            job.parent = self
            job.on_finish = lambda finished, op=op: self._op_done(op, finished)
            queues.get(device).submit(job)

    def _op_done(self, op: Op, job) -> None:
        with self.lock:
            self.running -= 1
            if job.timed_out:
                op.state = "timedout"
                self.timed_out = True
            elif job.error is not None:
                op.state, op.error = "failed", job.error
                self.failed = True
            else:
                op.state = "done"
                for slot, tensor in zip(op.outputs, job.outputs):
                    self.slots[slot] = tensor
            self._submit_ready()
            done = self._check_finished()
        if done:
            self.on_finish(self)

    def _check_finished(self) -> bool:
        """Called with the lock held: True exactly once, when no op runs and none can start."""
        if self._finished or self.running:
            return False
        self._finished = True
        return True
