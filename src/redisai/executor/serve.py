"""What an executor does with its worker's frames (protocol.py), once its sandbox is closed (main.py).

One request at a time, in the order the worker sends them:
    LOAD         model id, backend, device, names, run timeout; the model's bytes in a sealed memfd
                 -> DONE(input names, output names, declared inputs) | ERROR(text)
    RUN          model id, inputs (arrays in the worker's arena) -> DONE(outputs) | ERROR(text)
    RUNS         a pack: count, then per run a model id, the CLOCK_MONOTONIC ns after which it is not started
                 (its client's TIMEOUT; 0: none) and its inputs -> DONE(count answered, then per run: status
                 RAN, FAILED or NOT_STARTED, microseconds, outputs or error text); the runs are done in order,
                 each marked in the input arena's Progress as it starts; fewer are answered than sent when
                 the next one's outputs do not fit (the worker sends the rest again)
    UNLOAD       model id (no answer)
    SCRIPT       script id, device, entry points; the source in a sealed memfd -> DONE(function names) | ERROR
    SCRIPT_RUN   script id, function, inputs, keys, args -> DONE(outputs) | ERROR; meanwhile the script's
                 redis.execute asks CALL(command, args) -> CALL_REPLY(value) | ERROR(text), and its
                 redisAI.model_execute asks MODEL_CALL(key, outputs) -> [LOAD ...] MODEL_READY(id) | ERROR,
                 then says MODEL_RAN(id, microseconds, samples, failed) for the model's statistics
    STATS        -> DONE(name, value pairs: memory per backend, refusals, RSS)
    ARENA_IN/OUT a new arena (its memfd beside the frame), whenever the worker makes one
When outputs do not fit the output arena, the executor asks NEED(bytes) and waits for ARENA_OUT.
Inputs are copied out of the arena before a framework sees them: a model that kept a view of them would
otherwise read the next runs' inputs, another client's data.
"""

from __future__ import annotations

import mmap
import os
import time

import numpy as np

from .. import backends
from ..backends.base import BackendError, Device, Options, first_line
from . import protocol
from .protocol import Reader, StringArray, UnsupportedArray, Writer

MODEL_EXECUTE_ERROR = "redisAI.model_execute: "  # before a model_execute's error, as the worker words its own


def warm(names: list[str], intra: int, inter: int) -> None:
    """Runs what the frameworks otherwise do lazily on their first model (thread pools, kernel registries),
    while files may still be opened."""
    if "TORCH" in names:
        from ..backends import torch as torch_backend

        torch_backend._configure_threads(Options(intra, inter))
        torch_backend.compile_script("def warm(a):\n    return a + a\n", Device("CPU", None), None)


def _blob(fds: list[int]) -> bytes:
    """The bytes of the one sealed memfd that came with a frame (closed after)."""
    if len(fds) != 1:
        protocol.close_fds(fds)
        raise protocol.ProtocolError(f"{len(fds)} descriptors where one memfd was expected")
    fd = fds[0]
    try:
        size = os.fstat(fd).st_size
        if not size:
            return b""
        with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ) as view:
            return view[:]
    finally:
        os.close(fd)


def _as_inputs(arrays: list) -> list[np.ndarray]:
    """The worker's arrays as the frameworks take them, copied out of the arena."""
    inputs = []
    for array in arrays:
        if isinstance(array, StringArray):
            out = np.empty(len(array.elements), dtype=object)
            out[:] = array.elements
            inputs.append(out.reshape(array.shape))
        elif isinstance(array, UnsupportedArray):
            raise protocol.ProtocolError("an input of a type no tensor holds")
        elif array.nbytes < _ALIGNED_FROM:
            inputs.append(np.array(array, copy=True))
        else:
            inputs.append(_aligned_copy(array))
    return inputs


# Large inputs are copied to 64-byte aligned memory: TensorFlow takes such an array as it is and copies any
# other (MobileNetV2's 602 KB input: 35-50 us a run here); a small one is not worth the extra calls.
_ALIGNED_FROM = 64 * 1024
_ALIGNMENT = 64


def _aligned_copy(array: np.ndarray) -> np.ndarray:
    memory = np.empty(array.nbytes + _ALIGNMENT, np.uint8)
    start = -memory.ctypes.data % _ALIGNMENT
    copy = memory[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    np.copyto(copy, array)
    return copy


def _dtype_code(dtype) -> int | None:
    try:
        return protocol.NUMERIC_DTYPES.index(np.dtype(dtype))
    except (TypeError, ValueError):
        return None


class _Failed(Exception):
    """A request answered with ERROR(text)."""


class Executor:
    def __init__(self, channel: protocol.Channel, intra: int, inter: int):
        self.channel = channel
        self.intra = intra
        self.inter = inter
        self.models: dict[int, object] = {}
        self.scripts: dict[int, object] = {}
        self.handlers = {protocol.LOAD: self._load, protocol.RUN: self._run, protocol.RUNS: self._runs,
                         protocol.UNLOAD: self._unload,
                         protocol.SCRIPT: self._script, protocol.SCRIPT_RUN: self._script_run,
                         protocol.STATS: self._stats}

    # ------------------------------------------------------------------ the loop

    def ready(self, names: list[str], errors: dict[str, str], layers) -> None:
        writer = Writer().u64(os.getpid())
        loaded = backends.loaded()
        writer.u32(len(loaded))
        for name, backend in sorted(loaded.items()):
            writer.str(name).str(backend.version())
        writer.u32(len(errors))
        for name, error in sorted(errors.items()):
            writer.str(name).str(error)
        if layers is None:
            writer.u8(0)
        else:
            writer.u8(1).u8(layers.no_new_privs).u8(layers.seccomp).u32(layers.landlock).str(layers.memory)
            writer.u64(layers.memory_limit).u8(layers.capabilities_dropped).strs(list(layers.notes))
        self.channel.send(protocol.READY, writer)

    def serve(self) -> None:
        while True:
            kind, reader, fds = self.channel.receive()
            if self._arena(kind, fds):
                continue
            handler = self.handlers.get(kind)
            if handler is None:
                protocol.close_fds(fds)
                raise protocol.ProtocolError(f"an unexpected frame {protocol.KIND_NAMES.get(kind, kind)}")
            self.channel.start_request()
            self._answer(handler, reader, fds)

    def _answer(self, handler, reader: Reader, fds: list[int]) -> None:
        try:
            reply = handler(reader, fds)
        except _Failed as e:
            return self.channel.send(protocol.ERROR, Writer().str(str(e)))
        except BackendError as e:
            return self.channel.send(protocol.ERROR, Writer().str(str(e)))
        except (protocol.ProtocolError, protocol.PeerGone):
            raise
        except Exception as e:  # a framework raising something unexpected: the request's fault
            return self.channel.send(protocol.ERROR, Writer().str(first_line(e)))
        if reply is not None:
            self.channel.send(protocol.DONE, reply)

    def _arena(self, kind: int, fds: list[int]) -> bool:
        """ARENA_IN / ARENA_OUT: the worker's new arena, adopted."""
        if kind not in (protocol.ARENA_IN, protocol.ARENA_OUT):
            return False
        if len(fds) != 1:
            protocol.close_fds(fds)
            raise protocol.ProtocolError("an arena frame without its memfd")
        self.channel.replace("theirs" if kind == protocol.ARENA_IN else "ours", protocol.Arena.adopt(fds[0]))
        return True

    def _await(self, *expected: int) -> tuple[int, Reader]:
        """The worker's answer to a question of a running request: arenas and model loads (for a script's
        model_execute) are served meanwhile."""
        while True:
            kind, reader, fds = self.channel.receive()
            if self._arena(kind, fds):
                continue
            if kind == protocol.LOAD:
                self._answer(self._load, reader, fds)
                continue
            protocol.close_fds(fds)
            if kind in expected:
                return kind, reader
            raise protocol.ProtocolError(f"an unexpected frame {protocol.KIND_NAMES.get(kind, kind)} while waiting")

    # ------------------------------------------------------------------ requests

    def _load(self, reader: Reader, fds: list[int]) -> Writer:
        model_id, name, device = reader.u64(), reader.str(), reader.str()
        inputs, outputs, timeout_ms = reader.strs(), reader.strs(), reader.u32()
        reader.end()
        blob = _blob(fds)
        if name not in backends.loaded():
            raise _Failed(f"backend {name} is not loaded in this executor")
        backend = backends.get(name)
        loaded = backend.load(blob, Device.parse(device), inputs, outputs, Options(self.intra, self.inter, timeout_ms))
        self.models[model_id] = loaded
        writer = Writer().strs(list(loaded.inputs)).strs(list(loaded.outputs))
        declared = getattr(loaded, "declared_inputs", None)
        shapes = declared() if declared is not None else None
        codes = [_dtype_code(dtype) for dtype, _ in shapes] if shapes is not None else None
        if shapes is None or None in codes:
            return writer.u8(0)
        writer.u8(1).u32(len(shapes))
        for code, (_, shape) in zip(codes, shapes):
            writer.u8(code).u8(len(shape))
            for dim in shape:
                writer.u64(dim)
        return writer

    def _model(self, model_id: int):
        model = self.models.get(model_id)
        if model is None:
            raise protocol.ProtocolError(f"a run of model {model_id}, never loaded here")
        return model

    def _run(self, reader: Reader, fds: list[int]) -> Writer:
        protocol.close_fds(fds)
        model_id = reader.u64()
        inputs = _as_inputs(protocol.read_arrays(reader, self.channel.theirs))
        reader.end()
        return self._outputs(self._model(model_id).run(inputs))

    def _runs(self, reader: Reader, fds: list[int]) -> Writer:
        protocol.close_fds(fds)
        arena = self.channel.theirs
        if arena is None or arena.size < protocol.ARENA_HEADER:
            raise protocol.ProtocolError("a pack before any input arena")
        pack = []
        for _ in range(reader.count(protocol.MAX_PACK)):
            model_id, start_by = reader.u64(), reader.u64()
            pack.append((model_id, start_by, protocol.read_arrays(reader, arena)))
        reader.end()
        answers, answered = Writer(), 0
        for index, (model_id, start_by, arrays) in enumerate(pack):
            model = self._model(model_id)
            if start_by and time.monotonic_ns() > start_by:  # its client has had TIMEDOUT: nobody waits
                answers.u8(protocol.NOT_STARTED).u64(0)
                answered += 1
                continue
            protocol.Progress.started(arena, index)
            started = time.perf_counter_ns()
            try:
                outputs = model.run(_as_inputs(arrays))
            except (protocol.ProtocolError, protocol.PeerGone):
                raise
            except Exception as e:  # this run's answer; the pack goes on
                text = str(e) if isinstance(e, BackendError) else first_line(e)
                answers.u8(protocol.FAILED).u64((time.perf_counter_ns() - started) // 1000).str(text)
                answered += 1
                continue
            elapsed_us = (time.perf_counter_ns() - started) // 1000
            if index == 0:
                written = self._outputs(outputs)  # asks for a larger arena when they do not fit
            else:
                written = Writer()
                try:
                    protocol.write_arrays(written, self.channel.ours, outputs)
                except protocol.DoesNotFit:
                    break  # answered in the worker's next pack, which starts with it
            answers.u8(protocol.RAN).u64(elapsed_us).parts.extend(written.parts)
            answered += 1
        head = Writer().u32(answered)
        head.parts.extend(answers.parts)
        return head

    def _outputs(self, outputs: list) -> Writer:
        """DONE's body: the outputs, written into the output arena (a larger one asked for when needed)."""
        while True:
            writer = Writer()
            try:
                protocol.write_arrays(writer, self.channel.ours, outputs)
                return writer
            except protocol.DoesNotFit as e:
                self.channel.send(protocol.NEED, Writer().u64(self.channel.ours.used + e.needed + 64))
                self._await_arena()

    def _await_arena(self) -> None:
        kind, reader, fds = self.channel.receive()
        if kind != protocol.ARENA_OUT or not self._arena(kind, fds):
            protocol.close_fds(fds)
            raise protocol.ProtocolError("NEED answered by something else than an arena")

    def _unload(self, reader: Reader, fds: list[int]) -> None:
        protocol.close_fds(fds)
        identifier = reader.u64()
        reader.end()
        self.models.pop(identifier, None)
        self.scripts.pop(identifier, None)
        return None

    def _script(self, reader: Reader, fds: list[int]) -> Writer:
        script_id, device = reader.u64(), reader.str()
        entry_points = reader.strs() if reader.u8() else None
        reader.end()
        source = _blob(fds).decode(errors="replace")
        if "TORCH" not in backends.loaded():
            raise _Failed("backend TORCH is not loaded in this executor")
        from ..backends.torch import compile_script

        script = compile_script(source, Device.parse(device), entry_points)
        self.scripts[script_id] = script
        names = [function.name for function in script.unit.get_functions()]
        return Writer().strs(names)

    def _script_run(self, reader: Reader, fds: list[int]) -> Writer:
        protocol.close_fds(fds)
        script_id, function = reader.u64(), reader.str()
        inputs = _as_inputs(protocol.read_arrays(reader, self.channel.theirs))
        keys, args, variadic = reader.strs(), reader.strs(), reader.i64()
        reader.end()
        script = self.scripts.get(script_id)
        if script is None:
            raise protocol.ProtocolError(f"a run of script {script_id}, never compiled here")
        outputs = script.run(function, inputs, keys, args, None if variadic < 0 else variadic, host=_Host(self))
        return self._outputs(outputs)

    def _stats(self, reader: Reader, fds: list[int]) -> Writer:
        protocol.close_fds(fds)
        reader.end()
        pairs = []
        for name, backend in sorted(backends.loaded().items()):
            in_use = getattr(backend, "memory_in_use", None)
            figures = in_use() if in_use is not None else None
            if figures is not None:
                pairs += [(f"{name.lower()}_used", figures[0]), (f"{name.lower()}_peak", figures[1])]
        pairs += _own_memory()
        writer = Writer().u32(len(pairs))
        for name, value in pairs:
            writer.str(name).i64(int(value))
        return writer


_status_fd = -1


def open_status() -> None:
    """/proc/self/status, opened before the sandbox closes (without Landlock no file opens after): read again
    with pread for every STATS."""
    global _status_fd
    try:
        _status_fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        _status_fd = -1


def _own_memory() -> list[tuple[str, int]]:
    figures = []
    if _status_fd < 0:
        return figures
    try:
        text = os.pread(_status_fd, 8192, 0).decode(errors="replace")
    except OSError:
        return figures
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM") and rest.split():
            figures.append((key.lower(), int(rest.split()[0]) * 1024))
    return figures


class _Host:
    """A running script's redis.execute and redisAI.model_execute (backends/torch_redis.py's host), asked of
    the worker, which runs them in Redis under the caller's ACL user."""

    def __init__(self, executor: Executor):
        self.executor = executor

    def execute(self, command: str, args: list[str]):
        channel = self.executor.channel
        channel.send(protocol.CALL, Writer().str(command).strs(list(args)))
        kind, reader = self.executor._await(protocol.CALL_REPLY, protocol.ERROR)
        if kind == protocol.ERROR:
            raise _ScriptError(reader.str())
        value = protocol.read_value(reader)
        reader.end()
        return value

    def model_execute(self, model_key: str, inputs: list[np.ndarray], num_outputs: int) -> list[np.ndarray]:
        executor = self.executor
        executor.channel.send(protocol.MODEL_CALL, Writer().str(model_key).u32(max(0, num_outputs)))
        kind, reader = executor._await(protocol.MODEL_READY, protocol.ERROR)
        if kind == protocol.ERROR:
            raise _ScriptError(reader.str())
        model_id = reader.u64()
        reader.end()
        model = executor._model(model_id)
        start, error = time.perf_counter(), None
        try:
            outputs = model.run(inputs)
            if len(outputs) != num_outputs:
                raise BackendError("Model did not generate the expected number of outputs")
        except BackendError as e:
            error = str(e)
        except Exception as e:
            error = first_line(e)
        samples = inputs[0].shape[0] if inputs and inputs[0].shape else 0
        executor.channel.send(protocol.MODEL_RAN, Writer().u64(model_id).u64(int((time.perf_counter() - start) * 1e6))
                              .u64(samples).u8(error is not None))
        if error is not None:
            raise _ScriptError(MODEL_EXECUTE_ERROR + error)
        return outputs


class _ScriptError(Exception):
    """A failed redis.execute / model_execute: the script fails with this text as it is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.script_message = message
