"""Executors: each device-queue worker thread owns one process in which its models load and run.

redis-server's own process never imports a framework: a worker hands its executor (src/redisai/executor/)
model bytes to load, scripts to compile and runs to do, over the wire of executor/protocol.py, and copies
the outputs into Redis tensors. The executor closes an OS sandbox on itself before it sees any of them.

- Start: spawned lazily, on a worker's first job that needs one, with the frameworks its queue has needed so
  far (`DeviceQueue.backends`: what stored models and LOADBACKEND asked for); a job of a backend it lacks
  replaces it with one that imports the larger set. Started by the worker, so the main thread never waits.
- Models and scripts load lazily in each executor: where the build job ran (store, RDB load, replication),
  and in another worker's executor, or a replaced one, at its first run there, from the bytes the key holds.
- Deadlines: a run past its client's TIMEOUT or MODEL_EXECUTION_TIMEOUT (the first to come) and a short
  grace, a load or compile past MODEL_LOAD_TIMEOUT, and a script's Redis calls aside, any wait past its bound: the executor
  is killed and replaced, and the job answers naming the deadline.
- Faults are answers: an executor that dies (a signal, the memory bound, an exit) or breaks the protocol
  makes its job answer an error naming the cause, and is replaced; a model or script whose jobs brought
  executors down QUARANTINE_AFTER times is quarantined: its runs answer an error until it is stored again.
- Counted for INFO (`executors` section) and the exporter: starts, restarts by cause, quarantines.
"""

from __future__ import annotations

import itertools
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

import cbridge

from ..backends import memory, onnx_figures
from ..backends.base import BackendError
from ..executor import protocol
from ..executor.protocol import Writer
from .tally import Tally

# Past a run's deadline, before its executor is killed: a client's TIMEOUT (the client is answered TIMEDOUT at
# the deadline itself), and MODEL_EXECUTION_TIMEOUT, which ONNX and TF runs answer themselves when they can
# (between kernels), with their own error texts.
CLIENT_GRACE_S = 0.1
CLIENT_TIMEOUT = "TIMEOUT "  # how a kill at a client's TIMEOUT is worded (Limits.deadline; ExecutorDied)
EXECUTION_GRACE_S = 1.0
START_TIMEOUT_S = 120.0  # from spawn to READY (importing TensorFlow takes seconds; a busy machine more)
STATS_EVERY_S = 1.0  # memory figures asked of an executor at most this often, after a job
PACK_PARTS = 4096  # a pack's frame stays well inside protocol.MAX_FRAME (a run adds ~8 parts per input)
CAUSES = ("crash", "memory", "deadline", "exit", "protocol")
# An executor's own memory beyond BACKEND_MEMORY_LIMIT (Python, the frameworks' code and data, thread
# stacks: 0.9 GB with all four imported) for a memory cgroup's bound; under RLIMIT_DATA the executor measures
# its own at close.
FOOTPRINT = 1 << 30
QUARANTINE_DEFAULT = 3

restarts = Tally(*CAUSES)  # INFO executors: executors replaced, by cause
counts = Tally("started", "quarantined", "reloaded")  # reloaded: models and scripts, after a replacement


@dataclass
class Settings:
    """What every executor is started with (module arguments, set at load)."""

    python: str = sys.executable  # the environment's Python (PYTHON_ENV's)
    sandbox: bool = True  # SANDBOX: off only when the operator says so
    memory_bound: int = 0  # bytes the executor may take (BACKEND_MEMORY_LIMIT + its own footprint), 0: none
    budget: int = 0  # BACKEND_MEMORY_LIMIT in bytes, for the frameworks' own hooks
    budget_source: str = "none"
    native_dir: str = ""  # where build/redisai_torch.so is
    intra: int = 0
    inter: int = 0
    quarantine_after: int = QUARANTINE_DEFAULT
    load_timeout_ms: int = 60_000  # MODEL_LOAD_TIMEOUT: a model's load (its warm-up runs are runs), a script's compile
    spare: bool = False  # EXECUTOR_SPARE: each worker keeps a second executor started, to replace the first at once
    environment: dict = field(default_factory=dict)  # variables passed on to the frameworks


settings = Settings()
_ids = itertools.count(1)
_all: "weakref.WeakSet[ExecutorProcess]" = weakref.WeakSet()
# Ids of models and scripts whose value was freed: each executor unloads those it holds before its next job.
_released: set[int] = set()
_released_lock = threading.Lock()
# Framework versions and load errors as the executors reported them at READY (INFO's backends_info).
versions: dict[str, str] = {}
# The sandbox's layers as the last executor to start reported them (None before any, or with SANDBOX OFF).
layers: dict | None = None


def new_id() -> int:
    """A model's or script's identity in executors (one per built value, shared by COPY'd keys)."""
    return next(_ids)


def release(identifier: int) -> None:
    """Called when a built value is freed: every executor drops it at its next job."""
    with _released_lock:
        _released.add(identifier)


class ExecutorDied(Exception):
    """The job's executor is gone: `cause` is one of CAUSES, `detail` what is known (a signal, a text)."""

    def __init__(self, cause: str, detail: str):
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail

    @property
    def client_deadline(self) -> bool:
        """Killed at a client's TIMEOUT (Limits.deadline's words), not at the server's own bound."""
        return self.cause == "deadline" and self.detail.startswith(CLIENT_TIMEOUT)


class Quarantined(Exception):
    pass


def died_message(what: str, error: ExecutorDied) -> str:
    """The error a job answers when its executor went down under it."""
    if error.cause == "deadline":
        return f"{what} stopped at its deadline ({error.detail}): its executor was replaced"
    if error.cause == "memory":
        return f"{what} ended its executor by exceeding its memory bound ({error.detail}); the executor was replaced"
    if error.cause == "protocol":
        return f"{what} broke its executor ({error.detail}); the executor was replaced"
    return f"{what} crashed its executor ({error.detail}); the executor was replaced"


# ------------------------------------------------------------------------------ what a worker holds loaded

@dataclass
class LoadSpec:
    """How to load a model in any executor: its bytes and definition."""

    backend: str
    device: str
    blob: bytes
    inputs: list
    outputs: list
    timeout_ms: int


class Fault:
    """Faults of one built model or script (shared by its remote handle): executors it brought down."""

    def __init__(self, identifier: int):
        self.identifier = identifier
        self.downs = 0
        self.last = ""

    def count(self, error: ExecutorDied) -> None:
        if error.client_deadline:  # a client's short TIMEOUT says nothing of the model: no client may get a
            return  # model quarantined for the others by asking for less time than its runs take
        self.downs += 1
        self.last = error.cause
        if self.downs == settings.quarantine_after:
            counts.add("quarantined")

    @property
    def quarantined(self) -> bool:
        return bool(settings.quarantine_after) and self.downs >= settings.quarantine_after


class RemoteModel:
    """A model built in an executor: what backends.LoadedModel was in-process (runtime.loaded)."""

    def __init__(self, identifier: int, spec: LoadSpec, inputs, outputs, declared):
        self.id = identifier
        self.spec = spec
        self.backend = spec.backend
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._declared = declared
        self.counted = True  # False during warm-up: out of RedisAI's allocation figures (ONNX)
        self.warm_shapes: list = []  # (dtype, shape) of the inputs its warm-up ran, to warm a reload the same way
        self.fault = Fault(self.id)
        weakref.finalize(self, release, self.id)
        if spec.backend == "ONNX":
            onnx_figures.allocations.model_created(self, len(spec.blob))

    def declared_inputs(self):
        return self._declared

    def run(self, arrays: list[np.ndarray], client_deadline: float | None = None, client_timeout_ms: int = 0) -> list:
        """Runs in this worker's executor, killed past MODEL_EXECUTION_TIMEOUT or the client's deadline."""
        if self.counted and self.backend == "ONNX" and len(arrays) == len(self.inputs):
            onnx_figures.allocations.ran(self)
        limits = Limits(self.spec.timeout_ms, client_deadline, client_timeout_ms)
        return _guarded(self, self.backend, lambda process: process.run_model(self, arrays, limits))

    def pack_run(self, arrays: list[np.ndarray], client_deadline: float | None = None,
                 client_timeout_ms: int = 0) -> PackRun:
        """This model's run as a pack's member (run_pack), with the same deadlines as `run`."""
        if self.counted and self.backend == "ONNX" and len(arrays) == len(self.inputs):
            onnx_figures.allocations.ran(self)
        return PackRun(self, arrays, Limits(self.spec.timeout_ms, client_deadline, client_timeout_ms))


@dataclass
class PackRun:
    """One run of a pack (run_pack): what to run, and once done its `outputs` (the executor's items, views of
    its arena until the worker's next request) or `error`, and the microseconds the executor measured."""

    remote: "RemoteModel"
    arrays: list
    limits: Limits
    outputs: list | None = None
    error: str | None = None
    duration_us: int = 0
    timed_out: bool = False  # not started: the executor reached it after its client's TIMEOUT

    @property
    def done(self) -> bool:
        return self.outputs is not None or self.error is not None or self.timed_out


class MovedOn(Exception):
    """A pack's run ended while its deadline passed: the executor is on its next run."""


class PackDied(Exception):
    """The executor died during a pack, while the run at `index` was running (-1: it cannot be told)."""

    def __init__(self, index: int, error: ExecutorDied):
        super().__init__(str(error))
        self.index = index
        self.error = error


class RemoteScript:
    """A script compiled in an executor (runtime.loaded of a script)."""

    def __init__(self, identifier: int, source: str, device: str, entry_points, functions, timeout_ms: int):
        self.id = identifier
        self.timeout_ms = timeout_ms
        self.source = source
        self.device = device
        self.entry_points = entry_points
        self.functions = set(functions)
        self.fault = Fault(self.id)
        weakref.finalize(self, release, self.id)

    def function(self, name: str):
        return name if name in self.functions else None

    def run(self, name, tensors, keys, args, variadic_from=None, host=None, client_deadline: float | None = None,
            client_timeout_ms: int = 0) -> list:
        if name not in self.functions:
            raise BackendError(f"Function {name} does not exist in the given script.")
        limits = Limits(self.timeout_ms, client_deadline, client_timeout_ms)
        return _guarded(self, "TORCH", lambda process: process.run_script(self, name, tensors, keys, args,
                                                                          variadic_from, host, limits))


@dataclass(frozen=True)
class Limits:
    """A run's time: MODEL_EXECUTION_TIMEOUT from when it starts in its executor (a load or an executor's
    start before it does not count), or the client's TIMEOUT deadline, the first to come."""

    execution_ms: int
    client_deadline: float | None = None
    client_timeout_ms: int = 0

    def start_by_ns(self) -> int:
        """When a run of a pack may start at the latest (CLOCK_MONOTONIC ns, 0: any time): its client's
        deadline. The executor answers a run it reaches later NOT_STARTED instead of running it."""
        return int(self.client_deadline * 1e9) if self.client_deadline is not None else 0

    def execution_deadline(self, started: float) -> tuple[float, str]:
        """(when to kill, what for) by the server's own bound alone, MODEL_EXECUTION_TIMEOUT from `started`."""
        return started + self.execution_ms / 1000 + EXECUTION_GRACE_S, f"MODEL_EXECUTION_TIMEOUT {self.execution_ms} ms"

    def deadline(self, started: float | None = None) -> tuple[float, str]:
        """(when to kill, what for) for a run that started at `started` (time.monotonic(); default now)."""
        started = time.monotonic() if started is None else started
        deadline, what = self.execution_deadline(started)
        if self.client_deadline is not None and self.client_deadline + CLIENT_GRACE_S < deadline:
            deadline, what = self.client_deadline + CLIENT_GRACE_S, f"{CLIENT_TIMEOUT}{self.client_timeout_ms} ms"
        return deadline, what


# ------------------------------------------------------------------------------ one executor process

class ExecutorProcess:
    """One executor and this side's end of its wire; used by one worker thread only."""

    def __init__(self, device: str, wanted: frozenset):
        self.device = device
        self.backends = wanted
        self.process: subprocess.Popen | None = None
        self.channel: protocol.Channel | None = None
        self.loaded: set[int] = set()  # ids of models and scripts loaded here
        self.directory = tempfile.mkdtemp(prefix="redisai-executor-")
        self.cgroup: str | None = None
        self.stats: dict[str, int] = {}
        self.stats_at = 0.0
        self.pid = 0
        self.killed_for: str | None = None  # why this side killed it (deadline, protocol)
        self.layers: dict | None = None  # what its sandbox holds, as it said at READY
        self.held: dict = {}  # id -> weak reference of each model and script loaded here, to reload after a fault
        self.spawned_at = 0.0
        self.is_spare = False  # started ahead by EXECUTOR_SPARE, not serving yet
        _all.add(self)

    # -- life
    def start(self) -> None:
        self.spawn()
        self.await_ready()

    def spawn(self) -> None:
        """Starts the process and hands it its arenas; it imports its frameworks and closes its sandbox on its own
        (await_ready waits for that)."""
        ours, theirs = protocol.make_pair()
        try:
            command = [settings.python, "-m", "redisai.executor", "--socket", str(theirs.fileno()),
                       "--parent", str(os.getpid()), "--backends", ",".join(sorted(self.backends)),
                       "--budget", str(settings.budget), "--budget-source", settings.budget_source,
                       "--native-dir", settings.native_dir, "--intra", str(settings.intra),
                       "--inter", str(settings.inter), "--sandbox", "on" if settings.sandbox else "off",
                       "--exclude", os.getcwd()]  # Redis's dir: its dump, AOF, logs
            torch_allocator = os.path.join(settings.native_dir, "redisai_torch.so")
            if os.path.exists(torch_allocator):
                command += ["--extra-readable", torch_allocator]
            if settings.sandbox:
                from ..executor import sandbox

                self.cgroup, _ = sandbox.prepare_cgroup(os.path.basename(self.directory), settings.memory_bound)
                if self.cgroup:
                    command += ["--cgroup", self.cgroup]
                environment = {**settings.environment, **sandbox.executor_environment(self.directory)}
            else:
                environment = dict(settings.environment)
            self.process = subprocess.Popen(command, pass_fds=(theirs.fileno(),), cwd=self.directory,
                                            env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, close_fds=True)
        finally:
            theirs.close()
        self.pid = self.process.pid
        _StderrDrain.watch(self)
        counts.add("started")
        self.channel = protocol.Channel(ours, protocol.Arena.create(protocol.MIN_ARENA, "redisai-in"),
                                        protocol.Arena.create(protocol.MIN_ARENA, "redisai-out"))
        protocol.send(ours, protocol.ARENA_IN, fds=[self.channel.ours.fd])
        protocol.send(ours, protocol.ARENA_OUT, fds=[self.channel.theirs.fd])
        self.spawned_at = time.monotonic()

    def await_ready(self) -> None:
        """Reads READY: the frameworks it imported (or failed to), and what its sandbox holds."""
        global layers
        kind, reader, fds = self._receive(self.spawned_at + START_TIMEOUT_S, "its start")
        protocol.close_fds(fds)
        if kind != protocol.READY:
            self._broken(f"started with {protocol.KIND_NAMES.get(kind, kind)}")
        reader.u64()
        for _ in range(reader.count(16)):
            name, version = reader.str(), reader.str()
            versions[name] = version
        errors = {}
        for _ in range(reader.count(16)):
            name, error = reader.str(), reader.str()
            errors[name] = error
        if reader.u8():
            layers = self.layers = {"no_new_privs": reader.u8(), "seccomp": reader.u8(), "landlock": reader.u32(),
                                    "memory": reader.str(), "memory_limit": reader.u64(),
                                    "capabilities_dropped": reader.u8(), "notes": reader.strs()}
        self.load_errors = errors

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Kills the process (if still there) and frees what this side holds of it."""
        if self.process is not None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.cgroup:
            from ..executor import sandbox

            sandbox.remove_cgroup(self.cgroup)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.loaded.clear()

    def _gone(self) -> ExecutorDied:
        """Why the process is gone (it closed its end, or this side killed it): reaped, and the cause."""
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        tail = self.last_words = _StderrDrain.tail(self)
        if self.killed_for is not None:
            return ExecutorDied(self.killed_for[0], self.killed_for[1])
        if code < 0:
            number = -code
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
            if number == signal.SIGKILL or _mentions_memory(tail):
                return ExecutorDied("memory", f"{name}" + (f", {settings.memory_bound // 1_000_000} MB bound"
                                                             if settings.memory_bound else ""))
            return ExecutorDied("crash", name)
        if _mentions_memory(tail):
            return ExecutorDied("memory", f"exit status {code}")
        return ExecutorDied("exit", f"exit status {code}")

    def _broken(self, detail: str):
        self.kill_for("protocol", detail)
        raise self._gone()

    def kill_for(self, cause: str, detail: str) -> None:
        self.killed_for = (cause, detail)
        try:
            self.process.kill()
        except ProcessLookupError:
            pass

    # -- the wire
    def _receive(self, deadline: float | None, what: str, moved_on=None):
        """The next frame, waiting until `deadline` at most; past it the executor is killed, unless `moved_on()`
        says a pack's run ended meanwhile (raises MovedOn: the caller waits again with the next run's deadline)."""
        try:
            return self.channel.receive(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            if moved_on is not None and moved_on():
                raise MovedOn from None
            self.kill_for("deadline", what)
            raise self._gone() from None
        except protocol.PeerGone:
            raise self._gone() from None
        except protocol.ProtocolError as e:
            self._broken(str(e))

    def _send(self, kind: int, body=b"", fds=()) -> None:
        try:
            self.channel.send(kind, body, fds)
        except protocol.PeerGone:
            raise self._gone() from None
        except protocol.DoesNotFit as e:
            self._grow_ours(self.channel.ours.used + e.needed)
            self.channel.send(kind, body, fds)

    def _grow_ours(self, size: int) -> None:
        arena = protocol.Arena.create(max(size, 2 * self.channel.ours.size), "redisai-in")
        self.channel.replace("ours", arena)
        protocol.send(self.channel.sock, protocol.ARENA_IN, fds=[arena.fd])

    def _request(self, kind: int, body: Writer, deadline: float | None, what: str, fds=(), host=None,
                 calls_extend: bool = False):
        """Sends a request and serves the executor's questions until its answer: the DONE body's reader, or
        BackendError with the ERROR text. With `calls_extend`, the time spent serving a script's Redis calls
        moves the deadline (MODEL_EXECUTION_TIMEOUT bounds what the script computes, not Redis's work)."""
        self._send(kind, body, fds)
        while True:
            answer, reader, received = self._receive(deadline, what)
            protocol.close_fds(received)
            if answer == protocol.DONE:
                return reader
            if answer == protocol.ERROR:
                raise BackendError(reader.str())
            if answer == protocol.NEED:
                self._new_output_arena(reader)
            elif answer in (protocol.CALL, protocol.MODEL_CALL, protocol.MODEL_RAN) and host is not None:
                started = time.monotonic()
                self._serve_call(answer, reader, host, deadline)
                if calls_extend and deadline is not None:
                    deadline += time.monotonic() - started
            else:
                self._broken(f"answered {protocol.KIND_NAMES.get(answer, answer)}")

    def _serve_call(self, kind: int, reader, host, deadline) -> None:
        """A running script's question: redis.execute, redisAI.model_execute, or a model_execute's statistics."""
        if kind == protocol.CALL:
            command, args = reader.str(), reader.strs()
            reader.end()
            try:
                value = host.execute(command, args)
            except Exception as e:
                return self._send(protocol.ERROR, Writer().str(getattr(e, "script_message", None) or str(e)))
            writer = Writer()
            protocol.write_value(writer, value)
            return self._send(protocol.CALL_REPLY, writer)
        if kind == protocol.MODEL_CALL:
            key, _ = reader.str(), reader.u32()
            reader.end()
            try:
                remote = host.resolve_model(key)
                self.ensure_model(remote, deadline)
            except ExecutorDied:
                raise
            except Exception as e:
                return self._send(protocol.ERROR, Writer().str(getattr(e, "script_message", None) or str(e)))
            return self._send(protocol.MODEL_READY, Writer().u64(remote.id))
        identifier, duration_us, samples, failed = reader.u64(), reader.u64(), reader.u64(), reader.u8()
        reader.end()
        host.model_ran(identifier, duration_us, samples, bool(failed))

    def _release(self) -> None:
        """Drops what was freed since the last job."""
        if not _released or not self.loaded:
            return
        with _released_lock:
            gone = self.loaded & _released
        for identifier in gone:
            self._send(protocol.UNLOAD, Writer().u64(identifier))
            self.loaded.discard(identifier)

    # -- jobs
    def _check_sandbox(self) -> None:
        """Fails closed: where seccomp could not be applied, no model or script reaches a framework unless the
        operator turned the sandbox off."""
        if settings.sandbox and not (self.layers and self.layers["seccomp"]):
            notes = "; ".join(note for note in (self.layers or {}).get("notes", []) if "seccomp" in note)
            raise BackendError("the executors' sandbox cannot be applied on this machine"
                               + (f" ({notes})" if notes else "") + ": models and scripts are refused; "
                               "SANDBOX OFF runs them without it")

    def load(self, spec: LoadSpec, identifier: int | None = None, deadline: float | None = None):
        """Loads a model here: (inputs, outputs, declared inputs) as the executor read them."""
        self._check_sandbox()
        self.channel.start_request()
        identifier = identifier if identifier is not None else new_id()
        body = Writer().u64(identifier).str(spec.backend).str(spec.device).strs(spec.inputs).strs(spec.outputs)
        body.u32(spec.timeout_ms)
        blob = protocol.sealed_memfd(spec.blob, "redisai-model")
        try:
            reader = self._request(protocol.LOAD, body, deadline or time.monotonic() + settings.load_timeout_ms / 1000,
                                   f"MODEL_LOAD_TIMEOUT {settings.load_timeout_ms} ms", fds=[blob])
        finally:
            os.close(blob)
        inputs, outputs = reader.strs(), reader.strs()
        declared = None
        if reader.u8():
            declared = []
            for _ in range(reader.count(4096)):
                code = reader.u8()
                if code >= len(protocol.NUMERIC_DTYPES):
                    self._broken("a declared input of an unknown type")
                dims = reader.u8()
                if dims > protocol.MAX_DIMS:
                    self._broken("a declared input of too many dimensions")
                declared.append((protocol.NUMERIC_DTYPES[code], tuple(reader.u64() for _ in range(dims))))
        reader.end()
        self.loaded.add(identifier)
        return identifier, inputs, outputs, declared

    def ensure_model(self, remote: RemoteModel, deadline: float | None = None) -> None:
        if remote.fault.quarantined:
            raise Quarantined(remote)
        if remote.id not in self.loaded:
            self.load(remote.spec, remote.id, deadline)
            self.held[remote.id] = weakref.ref(remote)

    def run_model(self, remote: "RemoteModel", arrays: list, limits: Limits) -> list:
        self._release()
        self.ensure_model(remote)
        self.channel.start_request()
        body = Writer().u64(remote.id)
        self._write_arrays(body, arrays)
        reader = self._request(protocol.RUN, body, *limits.deadline())
        outputs = protocol.read_arrays(reader, self.channel.theirs)
        reader.end()
        return outputs

    def run_models(self, runs: list[PackRun]) -> int:
        """Sends the runs of `runs` whose inputs fit one request (at least the first) as a pack, and fills in
        the answered ones; returns how many were answered (the rest go in the caller's next pack). Each run is
        held to its own deadline from when the executor says it started it, and the whole pack to the sum of
        its runs' (what the executor says cannot move that). Raises PackDied when the executor goes down."""
        channel = self.channel
        channel.start_request()
        body, sent = Writer(), 0
        for run in runs[:protocol.MAX_PACK]:
            piece = Writer().u64(run.remote.id).u64(run.limits.start_by_ns())
            if not sent:
                self._write_arrays(piece, run.arrays)  # the first run always goes: the arena grows for it
            elif len(body.parts) > PACK_PARTS:
                break
            else:
                try:
                    protocol.write_arrays(piece, channel.ours, run.arrays)
                except protocol.DoesNotFit:
                    break  # in the next request
            body.parts += piece.parts
            sent += 1
        body.parts.insert(0, Writer().u32(sent).parts[0])
        pack = runs[:sent]
        protocol.Progress.clear(channel.ours)
        sent_at = time.monotonic()
        whole = sent_at + sum(run.limits.execution_ms / 1000 + EXECUTION_GRACE_S for run in pack)  # no claim moves it
        try:
            self._send(protocol.RUNS, body)
            while True:
                index, started = protocol.Progress.read(channel.ours)
                if 0 <= index < sent:
                    deadline, what = pack[index].limits.deadline(started)
                elif pack[0].limits.client_deadline is not None and pack[0].limits.client_deadline < sent_at:
                    # Sent past its client's TIMEOUT (its executor was being replaced): the executor answers it
                    # NOT_STARTED, so only the server's bound holds until the next run starts.
                    deadline, what = pack[0].limits.execution_deadline(sent_at)
                else:
                    deadline, what = pack[0].limits.deadline(sent_at)
                try:
                    answer, reader, received = self._receive(
                        min(deadline, whole), what, lambda at=(index, started): (
                            protocol.Progress.read(channel.ours) != at and time.monotonic() < whole))
                except MovedOn:
                    continue
                protocol.close_fds(received)
                if answer == protocol.DONE:
                    break
                if answer == protocol.NEED:
                    self._new_output_arena(reader)
                elif answer == protocol.ERROR:  # the pack as a whole failed: every run answers it
                    text = reader.str()
                    for run in pack:
                        run.error = text
                    return sent
                else:
                    self._broken(f"answered {protocol.KIND_NAMES.get(answer, answer)} to a pack")
            try:
                answered = reader.count(sent)
                if not answered:
                    self._broken("answered none of a pack")
                for run in pack[:answered]:
                    status, run.duration_us = reader.u8(), reader.u64()
                    if status == protocol.RAN:
                        run.outputs = protocol.read_arrays(reader, channel.theirs)
                    elif status == protocol.FAILED:
                        run.error = reader.str()
                    elif status == protocol.NOT_STARTED and run.limits.client_deadline is not None:
                        run.timed_out = True
                    else:
                        self._broken(f"a pack's run answered with status {status}")
                reader.end()
            except protocol.ProtocolError as e:
                self._broken(str(e))
        except ExecutorDied as e:
            for run in pack:  # nothing of a broken answer is kept
                run.outputs = run.error = None
                run.timed_out = False
            index = protocol.Progress.read(channel.ours)[0]
            raise PackDied(max(index, 0) if index < sent else -1, e) from None
        return answered

    def _new_output_arena(self, reader) -> None:
        """NEED: the executor's outputs want a larger output arena."""
        wanted = reader.u64()
        if wanted > (1 << 40):
            self._broken(f"asked for an arena of {wanted} bytes")
        arena = protocol.Arena.create(wanted, "redisai-out")
        self.channel.replace("theirs", arena)
        protocol.send(self.channel.sock, protocol.ARENA_OUT, fds=[arena.fd])

    def compile_script(self, script: RemoteScript | None, source: str, device: str, entry_points,
                       identifier: int | None = None) -> tuple[int, list[str]]:
        self._check_sandbox()
        self.channel.start_request()
        identifier = identifier if identifier is not None else new_id()
        body = Writer().u64(identifier).str(device)
        if entry_points is None:
            body.u8(0)
        else:
            body.u8(1).strs(list(entry_points))
        text = protocol.sealed_memfd(source.encode("utf-8", "surrogateescape"), "redisai-script")
        try:
            reader = self._request(protocol.SCRIPT, body, time.monotonic() + settings.load_timeout_ms / 1000,
                                   f"MODEL_LOAD_TIMEOUT {settings.load_timeout_ms} ms", fds=[text])
        finally:
            os.close(text)
        functions = reader.strs()
        reader.end()
        self.loaded.add(identifier)
        return identifier, functions

    def run_script(self, script: RemoteScript, name, tensors, keys, args, variadic_from, host,
                   limits: Limits) -> list:
        self._release()
        if script.fault.quarantined:
            raise Quarantined(script)
        if script.id not in self.loaded:
            self.compile_script(script, script.source, script.device, script.entry_points, script.id)
            self.held[script.id] = weakref.ref(script)
        self.channel.start_request()
        body = Writer().u64(script.id).str(name)
        self._write_arrays(body, tensors)
        body.strs(list(keys)).strs(list(args)).i64(-1 if variadic_from is None else variadic_from)
        deadline, what = limits.deadline()
        reader = self._request(protocol.SCRIPT_RUN, body, deadline, what, host=host,
                               calls_extend=what.startswith("MODEL_EXECUTION_TIMEOUT"))
        outputs = protocol.read_arrays(reader, self.channel.theirs)
        reader.end()
        return outputs

    def _write_arrays(self, body: Writer, arrays) -> None:
        try:
            protocol.write_arrays(body, self.channel.ours, arrays)
        except protocol.DoesNotFit as e:
            self._grow_ours(self.channel.ours.used + e.needed)
            protocol.write_arrays(body, self.channel.ours, arrays)

    def refresh_stats(self) -> None:
        if time.monotonic() - self.stats_at < STATS_EVERY_S:
            return
        self.stats_at = time.monotonic()
        self.channel.start_request()
        reader = self._request(protocol.STATS, Writer(), time.monotonic() + 10, "its statistics")
        stats = {}
        for _ in range(reader.count(256)):
            name, value = reader.str(), reader.i64()
            stats[name] = value
        reader.end()
        self.stats = stats


def output_arrays(items: list, kind: str) -> list[np.ndarray]:
    """An executor's outputs as arrays for the tensor layer (numeric ones are views of the arena: copied into
    Redis before the next request); one that no tensor can hold raises with the tensor layer's own words."""
    arrays = []
    for index, item in enumerate(items):
        if isinstance(item, protocol.StringArray):
            array = np.empty(len(item.elements), dtype=object)
            array[:] = item.elements
            arrays.append(array.reshape(item.shape))
        elif isinstance(item, protocol.UnsupportedArray):
            what = f"output {index} of the {kind}"
            if item.values:
                raise BackendError(f"{what} holds {item.type_name} values, which no tensor type can hold")
            raise BackendError(f"{what} has type {item.type_name}, which no tensor type holds")
        else:
            arrays.append(item)
    return arrays


_TELLING = re.compile(r"check failed|fatal|abort|terminate|error|exception|memory|segmentation", re.IGNORECASE)


def _telling_lines(tail: str) -> list[str]:
    """What an executor wrote before it died that says why (a CHECK failure, bad_alloc), else its last lines:
    a stack trace's frames say little."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    telling = [line for line in lines if _TELLING.search(line) and not line.startswith("@")]
    return (telling or lines)[-3:]


def _mentions_memory(tail: str) -> bool:
    lowered = tail.lower()
    return any(word in lowered for word in ("memoryerror", "bad_alloc", "out of memory", "cannot allocate memory"))


# ------------------------------------------------------------------------------ a worker's executor

_thread = threading.local()  # .slot: the worker thread's Slot


class Slot:
    """A worker thread's executor: started on first need, replaced when it dies or lacks a backend."""

    def __init__(self, queue):
        self.queue = queue
        self.process: ExecutorProcess | None = None
        self.spare: ExecutorProcess | None = None  # EXECUTOR_SPARE: started ahead, takes over when `process` dies
        self.reloads: list = []  # weak references of what a replaced executor held, reloaded between jobs

    def get(self, backend: str | None = None) -> ExecutorProcess:
        wanted = frozenset(self.queue.backends | ({backend} if backend else set()))
        process = self.process
        if process is not None and (not process.alive() or (backend is not None and backend not in process.backends)):
            self.reloads += process.held.values()  # a framework added: what it held moves to the new one
            process.stop()
            process = self.process = None
        if process is None:
            if backend is not None:
                self.queue.backends.add(backend)
            process = self._take_spare(wanted)
            if process is None:
                process = ExecutorProcess(self.queue.name, wanted)
                try:
                    process.start()
                except ExecutorDied:
                    process.stop()
                    raise
            # A framework that failed to import (not installed) is not asked of this queue's next executors.
            self.queue.backends.difference_update(process.load_errors)
            self.process = process
            if settings.spare and self.spare is None and not isinstance(self.queue, _MainThreadQueue):
                self.spare = ExecutorProcess(self.queue.name, process.backends - set(process.load_errors))
                self.spare.is_spare = True
                self.spare.spawn()  # imports while this one serves; its READY is read when it takes over
        return process

    def _take_spare(self, wanted: frozenset) -> ExecutorProcess | None:
        """The spare, ready, if it imports what `wanted` names; else None (a spare that cannot serve is stopped)."""
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        try:
            if not wanted <= spare.backends or not spare.alive():
                raise ExecutorDied("exit", "not the frameworks wanted")
            spare.await_ready()
            spare.is_spare = False
            return spare
        except ExecutorDied:
            spare.stop()
            return None

    def replace(self, error: ExecutorDied, culprit=None) -> None:
        """After a death: counted and logged (with what it wrote last); the next job starts a new one, and
        what the dead one held (but `culprit`, the model or script whose job it was) is reloaded between jobs."""
        restarts.add(error.cause)
        if self.process is not None:
            self.reloads += [ref for identifier, ref in self.process.held.items()
                             if culprit is None or identifier != culprit.id]
            words = " | ".join(_telling_lines(getattr(self.process, "last_words", "")))
            cbridge.log("warning", f"executor {self.process.pid} of queue {self.queue.name} replaced: {error.cause} "
                                   f"({error.detail})" + (f"; it wrote last: {words[-600:]}" if words else ""))
            self.process.stop()
            self.process = None


def bind(queue) -> None:
    """Called first on each worker thread of `queue`."""
    _thread.slot = Slot(queue)


class _MainThreadQueue:
    """What the main thread's slot stands on: a model or script stored inside MULTI or a Lua script is built
    there and then (Redis cannot block that client), in an executor of the main thread's own, as RedisAI
    built every model on its main thread."""

    name = "main"

    def __init__(self):
        self.backends: set[str] = set()


_main_slot: Slot | None = None


def current_slot() -> Slot:
    global _main_slot
    slot = getattr(_thread, "slot", None)
    if slot is not None:
        return slot
    if threading.current_thread() is not threading.main_thread():
        raise BackendError("models run on a device queue's worker only")
    if _main_slot is None:
        _main_slot = Slot(_MainThreadQueue())
    return _main_slot


# Variables of the server's environment the frameworks read (thread counts, devices, libraries), and the
# test-only switches (REDISAI_TEST_*: the allow-lists, backends/base.py; libseccomp, executor/main.py); the
# rest (credentials, the server's own settings) never reach an executor.
_PASSED_ON = ("OMP_", "MKL_", "KMP_", "OPENBLAS_", "GOTO_", "CUDA_", "NVIDIA_", "CUDNN_", "NCCL_", "TF_", "TORCH_",
              "ORT_", "LD_LIBRARY_PATH", "REDISAI_TEST_")


def framework_environment() -> dict[str, str]:
    """The server's variables that frameworks read, from the C library's environment (Valkey gives a module's
    Python an almost empty os.environ; /proc/self/environ is where Redis writes its process title)."""
    import ctypes

    entries = []
    try:
        environ = ctypes.POINTER(ctypes.c_char_p).in_dll(ctypes.CDLL(None), "environ")
        index = 0
        while environ[index] is not None:
            entries.append(environ[index])
            index += 1
    except (ValueError, OSError):
        entries = [f"{name}={value}".encode() for name, value in os.environ.items()]
    passed = {}
    for entry in entries:
        name, _, value = entry.decode(errors="replace").partition("=")
        if name.startswith(_PASSED_ON) and name != "ORT_LOAD_CONFIG_FROM_MODEL":
            passed[name] = value
    return passed


def build_model(spec: LoadSpec) -> RemoteModel:
    """Loads a model in this worker's executor (the store's, the RDB load's, the replica's build)."""
    slot = current_slot()
    try:
        process = slot.get(spec.backend)
        _check_backend(process, spec.backend)
        identifier, inputs, outputs, declared = process.load(spec)
    except BackendError as e:
        _count_memory_refusal(spec.backend, e)
        raise
    except ExecutorDied as e:
        slot.replace(e)
        raise BackendError(died_message("the model's load", e)) from None
    remote = RemoteModel(identifier, spec, inputs, outputs, declared)
    process.held[identifier] = weakref.ref(remote)
    return remote


def build_script(source: str, device: str, entry_points, timeout_ms: int) -> RemoteScript:
    """Compiles a script in this worker's executor."""
    slot = current_slot()
    try:
        process = slot.get("TORCH")
        _check_backend(process, "TORCH")
        identifier, functions = process.compile_script(None, source, device, entry_points)
    except ExecutorDied as e:
        slot.replace(e)
        raise BackendError(died_message("the script's compile", e)) from None
    script = RemoteScript(identifier, source, device, entry_points, functions, timeout_ms)
    process.held[identifier] = weakref.ref(script)
    return script


def load_backend(name: str) -> None:
    """AI.CONFIG LOADBACKEND and the backends named at load: this worker's executor with `name` imported."""
    slot = current_slot()
    try:
        _check_backend(slot.get(name), name)
    except ExecutorDied as e:
        slot.replace(e)
        raise BackendError(f"Could not load backend ({name}: {died_message('its executor', e)})") from None


def _count_memory_refusal(backend: str, error: BackendError) -> None:
    """A load or run its framework refused for BACKEND_MEMORY_LIMIT, counted for INFO as it is answered."""
    if str(error) == memory.exceeded(backend):
        memory.budget.count_refusal(backend)


def _check_backend(process: "ExecutorProcess", name: str) -> None:
    error = process.load_errors.get(name)
    if error is not None:
        raise BackendError(error)


def _guarded(remote, backend: str, action):
    """`action(process)` on the worker's executor; a death is counted against `remote`, the executor
    replaced, and the job answered with the cause."""
    slot = current_slot()
    try:
        process = slot.get(backend)
        _check_backend(process, backend)
        return action(process)
    except Quarantined:
        raise BackendError(quarantine_message(remote)) from None
    except BackendError as e:
        _count_memory_refusal(backend, e)
        raise
    except ExecutorDied as e:
        remote.fault.count(e)
        slot.replace(e, remote)
        raise BackendError(died_message("the run", e)) from None
    finally:
        _refresh_stats(slot)


def run_pack(runs: list[PackRun]) -> None:
    """Runs `runs` (queued runs of any models of this worker's queue) in its executor, as few requests as their
    inputs allow; each run ends with its outputs or its error. A run whose model cannot be made ready here
    answers why, as `RemoteModel.run` would. When the executor dies, the run that was running answers the
    cause (and counts against its model, as a single run's death does); the others are sent again to the new
    executor: a run has no effect but its outputs, so running one twice changes nothing."""
    slot = current_slot()
    todo = runs
    while todo:
        ready, process = [], None
        for run in todo:
            remote = run.remote
            try:
                # The executor is looked up (a waitpid) once per pack, again only when a run needs another one.
                if process is None or process is not slot.process or remote.backend not in process.backends:
                    process = slot.get(remote.backend)
                    process._release()
                _check_backend(process, remote.backend)
                process.ensure_model(remote)
                ready.append(run)
            except Quarantined:
                run.error = quarantine_message(remote)
            except BackendError as e:
                _count_memory_refusal(remote.backend, e)
                run.error = str(e)
            except ExecutorDied as e:
                remote.fault.count(e)
                slot.replace(e, remote)
                run.error = died_message("the run", e)
        process = slot.process
        if not ready or process is None:
            todo = ready
            continue
        if any(run.remote.id not in process.loaded for run in ready):
            todo = ready  # a later run's framework replaced the executor: load them all again
            continue
        try:
            answered = process.run_models(ready)
            todo = ready[answered:]
            for run in ready[:answered]:
                if run.error is not None:
                    _count_memory_refusal(run.remote.backend, BackendError(run.error))
            if todo:  # the next request reuses the output arena: what was answered leaves it first
                for run in ready[:answered]:
                    if run.outputs is not None:
                        run.outputs = [np.array(item) if isinstance(item, np.ndarray) else item for item in run.outputs]
        except PackDied as died:
            culprit = ready[died.index] if died.index >= 0 else None
            slot.replace(died.error, culprit.remote if culprit is not None else None)
            for run in ready if culprit is None else [culprit]:
                run.remote.fault.count(died.error)
                run.error = died_message("the run", died.error)
            todo = [run for run in ready if not run.done]
    _refresh_stats(slot)


def _refresh_stats(slot: Slot) -> None:
    """After a job: the executor's memory figures for INFO, at most every STATS_EVERY_S."""
    process = slot.process
    if process is not None and process.alive():
        try:
            process.refresh_stats()
        except ExecutorDied as e:
            slot.replace(e)


def reload_pending() -> bool:
    slot = getattr(_thread, "slot", None)
    return slot is not None and bool(slot.reloads)


def reload_one() -> bool:
    """Between jobs, on a worker whose executor was replaced: loads one model or script the dead executor
    held into the new one, and warms a model up with the inputs its store's warm-up used. False when there
    is nothing left to reload."""
    slot = getattr(_thread, "slot", None)
    if slot is None or not slot.reloads:
        return False
    held = slot.reloads.pop()()
    if held is None or held.fault.quarantined:
        return True
    try:
        if isinstance(held, RemoteModel):
            process = slot.get(held.backend)
            process.ensure_model(held)
            held.counted = False  # warm-up runs stay out of RedisAI's allocation figures, as at store
            try:
                for _ in range(WARM_RELOAD_RUNS.get(held.backend, 1) if held.warm_shapes else 0):
                    process.run_model(held, [np.ones(shape, dtype) for dtype, shape in held.warm_shapes],
                                      Limits(held.spec.timeout_ms))
            finally:
                held.counted = True
        else:
            process = slot.get("TORCH")
            if held.id not in process.loaded:
                process.compile_script(held, held.source, held.device, held.entry_points, held.id)
                process.held[held.id] = weakref.ref(held)
        counts.add("reloaded")
    except ExecutorDied as e:
        held.fault.count(e)
        slot.replace(e, held)
    except (BackendError, Quarantined, protocol.ProtocolError):
        pass  # its next job answers the same error
    return True


WARM_RELOAD_RUNS = {"TORCH": 3}  # as warm-up at store (execution/warmup.py): TorchScript settles on its third run


def quarantine_message(remote) -> str:
    kind = "script" if isinstance(remote, RemoteScript) else "model"
    return (f"{kind} quarantined: it brought its executor down {remote.fault.downs} times (last: "
            f"{remote.fault.last}); store it again to serve it")


# ------------------------------------------------------------------------------ executors' stderr

class _StderrDrain:
    """One thread reads every executor's stderr (frameworks log there) and keeps its last few KB, which
    name the cause when an executor dies (a CHECK failure, bad_alloc)."""

    TAIL = 4096
    _lock = threading.Lock()
    _tails: dict[int, bytearray] = {}
    _files: dict[int, object] = {}
    _thread: threading.Thread | None = None
    _wake_r, _wake_w = -1, -1

    @classmethod
    def watch(cls, process: ExecutorProcess) -> None:
        with cls._lock:
            if cls._thread is None:
                cls._wake_r, cls._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
                cls._thread = threading.Thread(target=cls._loop, name="redisai-executor-stderr", daemon=True)
                cls._thread.start()
            cls._tails[process.pid] = bytearray()
            cls._files[process.pid] = process.process.stderr
        os.write(cls._wake_w, b"x")

    @classmethod
    def tail(cls, process: ExecutorProcess) -> str:
        time.sleep(0.01)  # what the executor wrote as it died
        with cls._lock:
            data = bytes(cls._tails.pop(process.pid, b""))
            stream = cls._files.pop(process.pid, None)
        if stream is not None:
            try:
                data += os.read(stream.fileno(), cls.TAIL) if select.select([stream], [], [], 0)[0] else b""
            except (OSError, ValueError):
                pass
            stream.close()
        return data[-cls.TAIL:].decode(errors="replace")

    @classmethod
    def _loop(cls) -> None:
        while True:
            with cls._lock:
                streams = {stream.fileno(): pid for pid, stream in cls._files.items() if not stream.closed}
            try:
                ready, _, _ = select.select([cls._wake_r, *streams], [], [], 5.0)
            except (OSError, ValueError):
                time.sleep(0.05)
                continue
            for fd in ready:
                if fd == cls._wake_r:
                    try:
                        os.read(cls._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                with cls._lock:
                    pid = streams.get(fd)
                    if pid not in cls._tails:
                        continue
                    if not chunk:
                        stream = cls._files.get(pid)
                        # EOF: keep the tail for tail(); stop selecting on it
                        if stream is not None:
                            cls._files[pid] = _Closed(stream)
                        continue
                    tail = cls._tails[pid]
                    tail += chunk
                    del tail[:-cls.TAIL]


class _Closed:
    """A stream at EOF: no longer selected on, closed by tail()."""

    def __init__(self, stream):
        self.stream = stream
        self.closed = True

    def fileno(self) -> int:
        return self.stream.fileno()

    def close(self) -> None:
        self.stream.close()


def stop_all() -> None:
    """The server is going (SHUTDOWN, module unload): every executor is killed."""
    for process in list(_all):
        try:
            if process.process is not None:
                process.process.kill()
        except (ProcessLookupError, OSError):
            pass


def memory_stats() -> dict[str, int]:
    """The executors' last reported figures, summed (peaks: the largest), for INFO."""
    total: dict[str, int] = {}
    for process in list(_all):
        for name, value in process.stats.items():
            if name.endswith("_peak") or name == "vmhwm":
                total[name] = max(total.get(name, 0), value)
            else:
                total[name] = total.get(name, 0) + value
    return total


def processes() -> list[ExecutorProcess]:
    return [process for process in list(_all) if process.alive()]


def spares() -> int:
    """Spare executors (EXECUTOR_SPARE) ready to take over: their READY is waiting to be read. Looked at from
    another thread than the worker's, without reading it."""
    ready = 0
    for process in processes():
        channel = process.channel
        if process.is_spare and channel is not None:
            try:
                ready += bool(select.select([channel.sock], [], [], 0)[0])
            except (OSError, ValueError):  # closed meanwhile by its worker
                pass
    return ready


__all__ = ["Settings", "settings", "RemoteModel", "RemoteScript", "LoadSpec", "ExecutorDied", "bind", "build_model",
           "build_script", "load_backend", "current_slot", "stop_all", "restarts", "counts", "versions",
           "memory_stats", "processes"]
