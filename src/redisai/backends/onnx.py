"""ONNX models through onnxruntime."""

from __future__ import annotations

import math
import os
import re
import threading
import time

import ml_dtypes
import numpy as np
import onnxruntime
from onnx import TensorProto

from . import memory
from .base import ALLOW_LISTS, BackendError, Device, Options
# The model's check (external data, operators, its size once its functions are inlined).
from .onnx_ops import EXTERNAL_DATA, STANDARD_DOMAINS, check_model  # noqa: F401


class _KillSwitch:
    """MODEL_EXECUTION_TIMEOUT, as RedisAI's cron-driven kill switch: one thread checks the running
    sessions every tick and sets the terminate flag of those past their deadline."""

    TICK_S = 0.05

    def __init__(self):
        # Each run has its own options (about 0.2 us to make), so stopping one that has just ended
        # harms nothing and needs no lock: dict updates are atomic under the GIL.
        self._running: dict[int, tuple[float, onnxruntime.RunOptions]] = {}
        self._thread: threading.Thread | None = None
        # With nothing running the thread sleeps until the next run instead of ticking: an idle server
        # stays idle. The loop says it is going to sleep before it looks at `_running` one last time,
        # and watch() adds its run before it looks at `_idle`, so no run goes unwatched.
        self._idle = False
        self._wake = threading.Event()

    def watch(self, run_options: onnxruntime.RunOptions, timeout_s: float) -> int:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="redisai-onnx-killswitch", daemon=True)
            self._thread.start()
        run_id = id(run_options)
        self._running[run_id] = (time.monotonic() + timeout_s, run_options)
        if self._idle:
            self._idle = False
            self._wake.set()
        return run_id

    def done(self, run_id: int) -> None:
        self._running.pop(run_id, None)

    def _loop(self) -> None:
        while True:
            if not self._running:
                self._wake.clear()
                self._idle = True
                if not self._running:
                    self._wake.wait()
                self._idle = False
            time.sleep(self.TICK_S)
            now = time.monotonic()
            for deadline, run_options in list(self._running.values()):
                if now > deadline:
                    run_options.terminate = True


_kill_switch = _KillSwitch()




def _share_a_capped_arena() -> bool:
    """BACKEND_MEMORY_LIMIT: one CPU arena for every session, capped at the limit (onnxruntime's own
    BFC arena; RedisAI registered a counting allocator to the same end). Not counted: memory a kernel
    takes outside the session's allocator (thread pools, MLAS scratch, the model's graph itself)."""
    if not memory.budget.limit_bytes:
        return False
    info = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                     onnxruntime.OrtMemType.DEFAULT)
    # kSameAsRequested (1): the arena grows by what is asked, not by doubling past the cap.
    onnxruntime.create_and_register_allocator(info, onnxruntime.OrtArenaCfg(memory.budget.limit_bytes, 1, -1, -1))
    return True


_capped_arena = _share_a_capped_arena()
# With ORT_LOAD_CONFIG_FROM_MODEL=1 in the server's environment, onnxruntime takes session options from a
# model's `ort_config` metadata: profiling, which writes onnxruntime_profile_*.json into the working
# directory (Redis's dir), and thread counts. Its C++ reads the variable too (and fails every session when
# Python says no), so it leaves this process's environment.
os.environ.pop("ORT_LOAD_CONFIG_FROM_MODEL", None)
os.unsetenv("ORT_LOAD_CONFIG_FROM_MODEL")  # Valkey gives Python an almost empty os.environ: the C one too
# The BFC arena's words when a request does not fit under its cap.
_ARENA_FULL = re.compile(r"Available memory of \d+ is smaller than requested bytes|Failed to allocate memory")


class OnnxModel:
    def __init__(self, session: onnxruntime.InferenceSession, options: Options):
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.outputs = [o.name for o in session.get_outputs()]
        # Sequences and maps (skl2onnx's ZipMap probabilities) are no tensors: a run answers an error
        # naming them rather than storing something a tensor key cannot hold.
        self.not_tensors = [(o.name, o.type) for o in session.get_outputs() if not o.type.startswith("tensor(")]
        self.timeout_s = options.execution_timeout_ms / 1000
        # On CPU, the binding's own run: Session.run adds checks that are ours already (input names)
        # and a provider fallback that only GPU sessions need.
        cpu_only = session.get_providers() == ["CPUExecutionProvider"]
        self._run = session._sess.run if cpu_only and hasattr(session, "_sess") else session.run
        # bfloat16 goes through OrtValues: onnxruntime's numpy conversions do not know numpy's bfloat16.
        types = [i.type for i in session.get_inputs()] + [o.type for o in session.get_outputs()]
        if _ORT_BFLOAT16 in types:
            self._run = self._run_with_ort_values

    def declared_inputs(self) -> list[tuple[np.dtype, tuple[int, ...]]] | None:
        """The inputs' types and shapes as the model declares them (a dimension without a size: 1), for
        warm-up (execution/warmup.py); None when an input is no numeric tensor."""
        declared = []
        for node in self.session.get_inputs():
            dtype = _WARMUP_TYPES.get(node.type)
            if dtype is None:
                return None
            shape = tuple(dim if isinstance(dim, int) and dim > 0 else 1 for dim in (node.shape or ()))
            declared.append((dtype, shape))
        return declared

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.inputs):
            raise BackendError(f"Expected {len(self.inputs)} inputs but got {len(inputs)}")
        if self.not_tensors:
            name, kind = self.not_tensors[0]
            raise BackendError(f"Output '{name}' of the model is a {kind}, not a tensor: only tensor outputs can be "
                               "stored (skl2onnx: convert with options={'zipmap': False})")
        run_options = onnxruntime.RunOptions()
        run_id = _kill_switch.watch(run_options, self.timeout_s)
        try:
            feeds = {name: _feed(array) if array.dtype is _OBJECT else array for name, array in zip(self.inputs, inputs)}
            # Views of the arena, no copy: memory.check_outputs holds them to the limit before the tensor
            # layer copies them into Redis.
            return [output if type(output) is np.ndarray else np.asarray(output)
                    for output in self._run(self.outputs, feeds, run_options)]
        except BackendError:
            raise
        except UnicodeDecodeError:
            # onnxruntime's Python API decodes string outputs as UTF-8 and cannot return other bytes
            raise BackendError("a STRING output of the model is not UTF-8 text, which onnxruntime's Python "
                               "API cannot return") from None
        except Exception as e:
            if run_options.terminate:
                raise BackendError("Exiting due to terminate flag being set to true.") from None
            message = _ort_message(e)
            if _capped_arena and _ARENA_FULL.search(message):
                memory.budget.count_refusal("ONNX")
                raise BackendError(memory.exceeded("ONNX")) from None
            raise BackendError(message) from None
        finally:
            _kill_switch.done(run_id)

    def _run_with_ort_values(self, names, feeds, run_options):
        values = {name: _ort_value(array) for name, array in feeds.items()}
        return [_from_ort_value(value) for value in self.session.run_with_ort_values(names, values, run_options)]


_ORT_BFLOAT16 = "tensor(bfloat16)"
_WARMUP_TYPES = {f"tensor({name})": np.dtype(dtype) for name, dtype in (
    ("float", np.float32), ("double", np.float64), ("int8", np.int8), ("int16", np.int16), ("int32", np.int32),
    ("int64", np.int64), ("uint8", np.uint8), ("uint16", np.uint16), ("bool", np.bool_), ("float16", np.float16),
    ("bfloat16", ml_dtypes.bfloat16))}
_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def _ort_value(array: np.ndarray):
    if array.dtype == _BFLOAT16:
        return onnxruntime.OrtValue.ortvalue_from_numpy_with_onnx_type(array.view(np.uint16), TensorProto.BFLOAT16)
    return onnxruntime.OrtValue.ortvalue_from_numpy(array)


def _from_ort_value(value) -> np.ndarray:
    if value.data_type() != _ORT_BFLOAT16:
        return value.numpy()
    shape = tuple(value.shape())
    if not math.prod(shape):
        return np.empty(shape, _BFLOAT16)
    return np.asarray(_OrtValueMemory(value, "<u2", shape)).view(_BFLOAT16)


class _OrtValueMemory:
    """An OrtValue's memory as numpy sees it, without a copy: the array made from it holds this object, and
    so the OrtValue, until the tensor layer has copied the data into Redis (as `Session.run`'s arrays do)."""

    __slots__ = ("__array_interface__", "_value")

    def __init__(self, value, typestr: str, shape: tuple[int, ...]):
        self._value = value
        self.__array_interface__ = {"data": (value.data_ptr(), False), "typestr": typestr, "shape": shape,
                                    "version": 3}


_OBJECT = np.dtype(object)
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")


def _ort_message(error: Exception) -> str:
    """onnxruntime's own message, as RedisAI replied it (GetErrorMessage): without the Python
    binding's `[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : ` prefix, every line kept."""
    return _ORT_PREFIX.sub("", str(error).strip()) or type(error).__name__


def _feed(array: np.ndarray) -> np.ndarray:
    if array.dtype == object:
        # STRING tensors: onnxruntime's Python API takes them only as str (it would str() a bytes
        # element, and misreads fixed-width bytes), so only UTF-8 text passes, and comes back.
        try:
            return np.vectorize(bytes.decode, otypes=[object])(array) if array.size else array
        except BackendError:
            raise
        except UnicodeDecodeError:
            raise BackendError("a STRING input is not UTF-8 text, which onnxruntime's Python API cannot take") from None
    return array


_NOT_AT_LOAD = ["ConstantFolding"]


class OnnxBackend:
    name = "ONNX"

    def version(self) -> str:
        return onnxruntime.__version__

    def load(self, blob: bytes, device: Device, inputs, outputs, options: Options) -> OnnxModel:
        if device.kind == "GPU" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise BackendError("GPU requested but ONNX couldn't find CUDA")
        if ALLOW_LISTS:
            check_model(blob)
        session_options = onnxruntime.SessionOptions()
        # The bytes checked above are an ONNX protobuf; onnxruntime would also take its own ORT format.
        session_options.add_session_config_entry("session.load_model_format", "ONNX")
        if _capped_arena:
            session_options.add_session_config_entry("session.use_env_allocators", "1")
        if options.intra_op_parallelism:
            session_options.intra_op_num_threads = options.intra_op_parallelism
        if options.inter_op_parallelism:
            session_options.inter_op_num_threads = options.inter_op_parallelism
        providers = ["CPUExecutionProvider"]
        if device.kind == "GPU":
            cuda = {"device_id": device.index or 0}
            if memory.budget.limit_bytes:  # the CUDA arena's own cap (not tried here: no GPU in this project's CI)
                cuda["gpu_mem_limit"] = memory.budget.limit_bytes
            providers.insert(0, ("CUDAExecutionProvider", cuda))
        try:
            # read_config_from_model 0: session options never come from the model (ORT_LOAD_CONFIG_FROM_MODEL above).
            # ConstantFolding runs the nodes whose inputs are
            # constants while the session is made, with an allocator of its own: a Tile of a constant took
            # gigabytes at AI.MODELSTORE, past BACKEND_MEMORY_LIMIT and MODEL_EXECUTION_TIMEOUT. Unfolded,
            # they run with the model, in the capped arena, under the kill switch.
            session = onnxruntime.InferenceSession(blob, session_options, providers=providers, read_config_from_model=0,
                                                   disabled_optimizers=_NOT_AT_LOAD)
        except Exception as e:
            message = _ort_message(e)
            raise BackendError(memory.exceeded("ONNX") if _capped_arena and _ARENA_FULL.search(message)
                               else message) from None
        return OnnxModel(session, options)


BACKEND = OnnxBackend()
