"""Work that runs on the device queues: building a model, running one (alone or batched)."""

from __future__ import annotations

import time

import numpy as np

from .. import backends
from ..backends import memory
from ..config import config
from ..domain.model import Model
from ..domain.tensor import Tensor
from . import executors, queues, warmup
from .script_host import ScriptHost
from .tally import Tally

TIMEDOUT = "TIMEDOUT"
CLIENT_LEFT = "the client disconnected before the run started"


# Runs never started because nobody would get their answer (INFO ai, `queues` section).
skipped = Tally("client_gone", "deadline")


class Job:
    """Base: an outcome (`error` text or success) and a completion callback set by the caller."""

    reorderable = False  # runs may start newest first under overload (queues.DeviceQueue._next_job)

    def __init__(self, timeout_ms: int = 0):
        self.timeout_ms = timeout_ms
        self.enqueued_at = time.monotonic()
        self.error: str | None = None  # message after "ERR " (or a full reply error when raw)
        self.timed_out = False
        self.on_finish = None  # called on the worker when done
        self.client_left = False  # set on the main thread when the blocked client disconnects
        self.parent = None  # a DAG's op: the DAG, whose client it answers

    def batch_group(self):
        return None

    def expired(self) -> bool:
        return bool(self.timeout_ms) and (time.monotonic() - self.enqueued_at) * 1000 > self.timeout_ms

    def abandoned(self) -> bool:
        """Whether nobody waits for this job's outcome any more (not_wanted, without counting)."""
        return (self.parent or self).client_left or self.expired()

    def not_wanted(self) -> bool:
        """True (counted) when the run would answer nobody: its TIMEOUT passed while it was queued, or
        its client (a DAG's, for an op) disconnected. Checked before a run starts, never during one."""
        if self.expired():
            self.timed_out = True
            skipped.add("deadline")
            return True
        if (self.parent or self).client_left:
            self.error = CLIENT_LEFT
            skipped.add("client_gone")
            return True
        return False

    def finish(self) -> None:
        if self.on_finish is not None:
            self.on_finish(self)


class ModelLoadJob(Job):
    """Imports the backend if needed and builds the model from its bytes."""

    def __init__(self, model: Model, options: backends.Options):
        super().__init__()
        self.model = model
        self.options = options
        self.inline = False  # built on the main thread (MULTI, Lua): warmed afterwards on its queue
        warmup.counts.add("pending")

    def run(self) -> None:
        try:
            self._build()
        finally:
            warmup.counts.add("pending", -1)

    def _build(self) -> None:
        model = self.model
        try:
            loaded = executors.build_model(executors.LoadSpec(
                model.backend, model.device, model.blob, list(model.inputs), list(model.outputs),
                self.options.execution_timeout_ms))
        except backends.BackendError as e:
            self.error = str(e)
            model.runtime.set_failed(self.error)
            return
        except Exception as e:  # a framework raising something unexpected is still the blob's fault
            self.error = backends.base.first_line(e)
            model.runtime.set_failed(self.error)
            return
        if self.inline:
            model.adopt(loaded)
            queues.get(model.device).submit(WarmUpJob(model, loaded))
            return
        warmup.warm_up(model, loaded)  # before the model is ready: its first client run is a warm one
        model.adopt(loaded)


class WarmUpJob(Job):
    """The warm-up of a model built on the main thread, on its queue (runs sent after it wait behind it)."""

    def __init__(self, model: Model, loaded):
        super().__init__()
        self.model = model
        self.loaded = loaded
        warmup.counts.add("pending")

    def run(self) -> None:
        try:
            warmup.warm_up(self.model, self.loaded)
        finally:
            warmup.counts.add("pending", -1)


class ModelRunJob(Job):
    reorderable = True

    def __init__(self, model: Model, inputs: list[Tensor], output_count: int, timeout_ms: int = 0):
        super().__init__(timeout_ms)
        self.model = model
        self.inputs = inputs
        self.output_count = output_count
        self.outputs: list[Tensor] = []

    # -- batching: jobs of the same model object whose inputs differ only in dim 0
    def batch_group(self):
        return self.model if self.model.batchsize > 0 else None

    def batch_size(self) -> int:
        dims = {tensor.shape[0] if tensor.shape else 0 for tensor in self.inputs}
        return dims.pop() if len(dims) == 1 else self.model.batchsize  # unbatchable: runs alone

    def compatible(self, other: "ModelRunJob") -> bool:
        return len(self.inputs) == len(other.inputs) and all(
            a.dtype is b.dtype and len(a.shape) == len(b.shape) and a.shape[1:] == b.shape[1:] and a.shape
            for a, b in zip(self.inputs, other.inputs)) and other.batch_size() < self.model.batchsize

    def _ready(self) -> bool:
        runtime = self.model.runtime
        if not runtime.ready.is_set():
            runtime.ready.wait()
        if runtime.error is not None:
            self.error = f"model could not be loaded: {runtime.error}"
            return False
        return True

    def client_deadline(self) -> float | None:
        """When blocking answers the client TIMEDOUT (its run is stopped a little after)."""
        return self.enqueued_at + self.timeout_ms / 1000 if self.timeout_ms else None

    def packable(self) -> bool:
        """Whether this run may go to its executor in one request with other queued runs (queues._pack): any
        run of a model that does not batch."""
        return self.model.batchsize == 0

    def run(self) -> None:
        self.run_pack([self])

    @staticmethod
    def run_pack(jobs: list["ModelRunJob"]) -> None:
        """Runs `jobs` (of any models) in the worker's executor, in as few requests as their inputs allow
        (executors.run_pack); each keeps its own outcome, deadline and statistics, as if it ran alone."""
        try:
            live = [job for job in jobs if not job.not_wanted() and job._ready()]
            runs = [job.model.runtime.loaded.pack_run([tensor.array for tensor in job.inputs], job.client_deadline(),
                                                       job.timeout_ms) for job in live]
            if runs:
                executors.run_pack(runs)
            for job, run in zip(live, runs):
                job._settle(run)
        except Exception as e:  # never a run without an outcome: one that has none answers what went wrong
            for job in jobs:
                if job.error is None and not job.outputs and not job.timed_out:
                    job.error = backends.base.first_line(e)

    def _settle(self, run) -> None:
        """Its run's outputs into tensors (copied out of the executor's arena), or its error; statistics."""
        if run.timed_out:  # reached in its pack after its TIMEOUT: never started, as not_wanted() would say
            self.timed_out = True
            skipped.add("deadline")
            return
        self.error = run.error
        if self.error is None:
            try:
                arrays = executors.output_arrays(run.outputs, "model")
                memory.check_outputs(self.model.backend, arrays)
                self.outputs = self._tensors(arrays)
            except backends.BackendError as e:
                self.error = str(e)
            except Exception as e:
                self.error = backends.base.first_line(e)
        if self.error is None and not self.model.runtime.shapes_seen:
            self.model.runtime.shapes_seen = True
            warmup.remember(self.model, [tensor.array for tensor in self.inputs])
        samples = self.outputs[0].shape[0] if self.outputs and self.outputs[0].shape else 0
        self.model.stats.record(run.duration_us, samples, self.error is not None)

    def _tensors(self, arrays: list[np.ndarray]) -> list[Tensor]:
        if len(arrays) != self.output_count:
            raise backends.BackendError("Model did not generate the expected number of outputs")
        return [Tensor.from_array(array, f"output {i} of the model") for i, array in enumerate(arrays)]

    def run_batch(self, jobs: list["ModelRunJob"]) -> None:
        live = [job for job in jobs if not job.not_wanted()]
        if not live or not self._ready():
            for job in live:
                job.error = self.error
            return
        sizes = [job.batch_size() for job in live]
        total = sum(sizes)
        start = time.perf_counter()
        error = None
        try:
            inputs = [np.concatenate([job.inputs[i].array for job in live]) for i in range(len(self.inputs))]
            arrays = executors.output_arrays(self.model.runtime.loaded.run(
                inputs, min(job.client_deadline() or float("inf") for job in live) if any(
                    job.timeout_ms for job in live) else None, self.timeout_ms), "model")
            memory.check_outputs(self.model.backend, arrays)
            if len(arrays) != self.output_count:
                raise backends.BackendError("Model did not generate the expected number of outputs")
            if any(not array.shape or array.shape[0] != total for array in arrays):
                raise backends.BackendError("Model did not generate the expected batch size")
            offset = 0
            for job, size in zip(live, sizes):
                job.outputs = [Tensor.from_array(array[offset:offset + size], f"output {i} of the model")
                               for i, array in enumerate(arrays)]
                offset += size
        except backends.BackendError as e:
            error = str(e)
        except Exception as e:
            error = backends.base.first_line(e)
        duration_us = int((time.perf_counter() - start) * 1e6)
        for index, (job, size) in enumerate(zip(live, sizes)):
            job.error = error
            self.model.stats.record(duration_us, size, error is not None, new_run=index == 0)


class BackendLoadJob(Job):
    """AI.CONFIG LOADBACKEND and backends named at load: the framework import, off the main thread."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def run(self) -> None:
        try:
            executors.load_backend(self.name)
        except backends.BackendError as e:
            self.error = str(e)


class ScriptLoadJob(Job):
    """Imports torch if needed and compiles a script's TorchScript source."""

    def __init__(self, script):
        super().__init__()
        self.model = script  # the stored value, named like ModelLoadJob's for the shared reply path

    def run(self) -> None:
        script = self.model
        try:
            compiled = executors.build_script(script.source.decode(errors="replace"), script.device,
                                              script.entry_points, config.model_execution_timeout)
        except backends.BackendError as e:
            self.error = str(e)
            script.runtime.set_failed(self.error)
            return
        except Exception as e:
            self.error = backends.base.first_line(e)
            script.runtime.set_failed(self.error)
            return
        script.runtime.set_loaded(compiled)


class ScriptRunJob(Job):
    """Runs a script function. `caller` (script_host.capture at command time: the client's ACL user
    and database) is who the script's redis.execute / redisAI.model_execute calls run as; the
    blocking layer fills it for jobs that ask (`wants_caller`), a DAG passes its own."""

    wants_caller = True
    reorderable = True

    def __init__(self, script, function: str, inputs: list[Tensor], keys: list[str], args: list[str],
                 output_count: int | None, timeout_ms: int = 0, variadic_from: int | None = None, caller=None):
        super().__init__(timeout_ms)
        self.script = script
        self.function = function
        self.inputs = inputs
        self.keys = keys
        self.args = args
        self.output_count = output_count
        self.variadic_from = variadic_from
        self.caller = caller
        self.outputs: list[Tensor] = []

    def run(self) -> None:
        if self.not_wanted():
            return
        runtime = self.script.runtime
        runtime.ready.wait()
        if runtime.error is not None:
            self.error = f"script could not be loaded: {runtime.error}"
            return
        host = ScriptHost(self.caller, self.keys)
        start = time.perf_counter()
        try:
            arrays = executors.output_arrays(runtime.loaded.run(
                self.function, [t.array for t in self.inputs], self.keys, self.args, self.variadic_from, host=host,
                client_deadline=self.enqueued_at + self.timeout_ms / 1000 if self.timeout_ms else None,
                client_timeout_ms=self.timeout_ms), "script")
            if self.output_count is not None and len(arrays) != self.output_count:
                raise backends.BackendError(f"Function returned unexpected number of outputs - {self.function}")
            memory.check_outputs("TORCH", arrays)
            self.outputs = [Tensor.from_array(array, f"output {i} of the script") for i, array in enumerate(arrays)]
        except backends.BackendError as e:
            self.error = str(e)
        except Exception as e:
            self.error = backends.base.first_line(e)
        finally:
            host.close()
        self.script.stats.record(int((time.perf_counter() - start) * 1e6), -1, self.error is not None)
