"""Running a parsed DAG: each model or script op goes to its device's queue as soon as the tensors it
reads exist, so independent ops (and ops on different devices) run at the same time.

Every run is one: AI.MODELEXECUTE, MODELRUN, SCRIPTEXECUTE and SCRIPTRUN are DAGs of one op (`OneOpRun`),
answered as any DAG is (commands/runs.py).
Tensors live in numbered slots local to the DAG; every op reads and writes slots, never keys.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from . import queues
from .jobs import ModelRunJob, ScriptRunJob


@dataclass(slots=True)
class Op:
    kind: str  # "set", "get", "model", "script"
    inputs: Sequence[int] = ()  # slots read
    outputs: Sequence[int] = ()  # slots written
    target: object = None  # the Model or Script
    function: str = ""
    keys: Sequence[str] = ()
    args: Sequence[str] = ()
    variadic_from: int | None = None
    get_format: tuple = (True, b"BLOB")
    # outcome
    state: str = "pending"  # pending, submitted, done, failed, timedout
    error: str | None = None


class DagRun:
    """A DAG being run: blocking.block's job for its client, finished when no op runs and none can start."""

    one_op = False  # OneOpRun: replied OK or its op's error, not a DAG's array
    # What blocking.block and the outcome read, set where they differ.
    failed = timed_out = client_left = _finished = False
    caller = None  # who scripts' redis.execute calls run as (blocking.block fills it)
    on_finish = None  # called once when nothing more will run
    reply = None  # blocking.block's

    def __init__(self, ops: list[Op], slots: list, timeout_ms: int, persist=(), command: str = "AI.DAGEXECUTE"):
        self.ops = ops
        self.slots = slots  # Tensor or None (not produced yet)
        self.timeout_ms = timeout_ms
        self.persist = persist  # (key name, slot): the keys written when it succeeds
        self.command = command  # the command it answers, named in internal errors
        self.lock = threading.Lock()
        self.running = 0
        self.started_at = None
        kinds = {op.kind for op in ops}
        self.wants_caller = "script" in kinds  # read by blocking.block
        self.needs_workers = "model" in kinds or self.wants_caller

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
            else:
                job = ScriptRunJob(op.target, op.function, tensors, op.keys, op.args, len(op.outputs),
                                   self.timeout_ms, op.variadic_from, caller=self.caller)
            job.enqueued_at = self.started_at
            job.parent = self
            job.on_finish = lambda finished, op=op: self._op_done(op, finished)
            queues.get(op.target.device).submit(job)

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


class OneOpRun(DagRun):
    """A run command's DAG: one op, whose inputs exist when it is parsed, so that its op's job is made
    then (the same ModelRunJob or ScriptRunJob a DAG's op becomes, batched alike), and whose outputs
    are written to the command's output keys in order. The DAG's slots, persist list and lock have no
    use with one op: leaving them out keeps a run command's cost that of the job it runs."""

    one_op = needs_workers = True

    def __init__(self, job, queue, output_names: Sequence[bytes], command: str):
        self.job = job
        self.queue = queue  # its device's (queues.get)
        self.output_names = output_names
        self.command = command
        self.timeout_ms = job.timeout_ms
        self.wants_caller = type(job) is ScriptRunJob

    def start(self, started_at: float) -> None:
        job = self.job  # its TIMEOUT counts from its making, at the command
        job.parent = self
        if self.wants_caller:
            job.caller = self.caller
        job.on_finish = self._op_done
        self.queue.submit(job)

    def _op_done(self, job) -> None:
        job.parent = job.on_finish = None  # no cycle left: the model is freed with the run (AI.MODELDEL)
        self.timed_out = job.timed_out
        self.failed = job.error is not None
        self.on_finish(self)
