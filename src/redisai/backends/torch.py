"""TorchScript models, loaded as torch.jit.load does (TorchScript's own archive format, no Python pickle),
torch.export programs (`torch.export.save`'s archive), and scripts compiled from TorchScript source; what any
of them may run is checked by torch_ops.py first."""

from __future__ import annotations

import ctypes
import io
import os
import re
import threading

import ml_dtypes
import numpy as np
import torch

from . import memory, torch_ops, torch_redis
from .base import ALLOW_LISTS, BackendError, Device, Options, first_line

_threads_lock = threading.Lock()
_threads_set = False


def _configure_threads(options: Options) -> None:
    global _threads_set
    with _threads_lock:
        if _threads_set:
            return
        if options.intra_op_parallelism:
            torch.set_num_threads(options.intra_op_parallelism)
        if options.inter_op_parallelism:
            try:
                torch.set_num_interop_threads(options.inter_op_parallelism)
            except RuntimeError:
                pass  # only settable before the first parallel work
        _threads_set = True


def _load_allocator():
    """BACKEND_MEMORY_LIMIT's counting allocator (module/torch_allocator.cpp), installed before any
    model is loaded; without its library (a build without torch), torch memory is not counted."""
    path = os.path.join(memory.budget.native_dir, "redisai_torch.so")
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return None
    for name in ("redisai_torch_memory_used", "redisai_torch_memory_peak", "redisai_torch_memory_refused"):
        getattr(library, name).restype = ctypes.c_int64
    library.redisai_torch_memory_install(ctypes.c_int64(memory.budget.limit_bytes))
    return library


_allocator = _load_allocator()
_EXCEEDED = memory.exceeded("TORCH")


def _out_of_budget(error: BaseException) -> bool:
    if _EXCEEDED in str(error):
        memory.budget.count_refusal("TORCH")
        return True
    return False


def torch_device(device: Device) -> torch.device:
    if device.kind == "GPU":
        if not torch.cuda.is_available():
            raise BackendError("GPU requested but Torch couldn't find CUDA")
        target = torch.device("cuda", device.index or 0)
        if memory.budget.limit_bytes:  # the caching allocator's cap on that device (not tried here: no GPU in CI)
            total = torch.cuda.get_device_properties(target).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, memory.budget.limit_bytes / total), target)
        return target
    return torch.device("cpu")


_thread = threading.local()


def _inference_mode() -> None:
    """Inference mode for good on this worker thread (it only ever runs models and scripts): entering
    the context manager on every call cost a few microseconds per run."""
    if getattr(_thread, "inference_mode", None) is None:
        _thread.inference_mode = torch.inference_mode()
        _thread.inference_mode.__enter__()


_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)  # numpy's bfloat16 (ml_dtypes), which torch.from_numpy does not take


def to_torch(array: np.ndarray, device: torch.device) -> torch.Tensor:
    if array.dtype == object:
        raise BackendError("STRING tensors are not supported by the TORCH backend")
    if not array.flags.writeable:  # torch wants writable memory; inputs are never modified
        array = array.copy()
    if array.dtype == _BFLOAT16:
        tensor = torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    else:
        tensor = torch.from_numpy(array)
    return tensor if device.type == "cpu" else tensor.to(device)


def to_numpy(value) -> list[np.ndarray]:
    """Outputs as numpy arrays (any layout: the tensor layer copies them into Redis's memory)."""
    if isinstance(value, torch.Tensor):
        if value.device.type != "cpu":
            value = value.cpu()
        if value.requires_grad:
            value = value.detach()
        if value.dtype is torch.bfloat16:
            return [value.view(torch.int16).numpy().view(_BFLOAT16)]
        return [value.numpy()]
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in to_numpy(item)]
    raise BackendError(f"Model returned a {type(value).__name__}, expected tensors")


def _output_count(method) -> int:
    returns = method.schema.returns
    if len(returns) == 1 and isinstance(returns[0].type, torch.TupleType):
        return len(returns[0].type.elements())
    return len(returns)


class TorchModel:
    def __init__(self, module, device: torch.device):
        self.module = module
        self.device = device
        forward = module.forward
        self.inputs = [argument.name for argument in forward.schema.arguments[1:]]
        self.outputs = [""] * _output_count(forward)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.inputs):
            raise BackendError(f"Expected {len(self.inputs)} inputs but got {len(inputs)}")
        # Framework exceptions become the client's error in the job (execution/jobs.py), first line only.
        _inference_mode()
        try:
            return to_numpy(self.module(*[to_torch(array, self.device) for array in inputs]))
        except RuntimeError as e:
            if _out_of_budget(e):
                raise BackendError(_EXCEEDED) from None
            raise


class TorchBackend:
    name = "TORCH"

    def version(self) -> str:
        return torch.__version__

    def memory_in_use(self) -> tuple[int, int] | None:
        if _allocator is None:
            return None
        return _allocator.redisai_torch_memory_used(), _allocator.redisai_torch_memory_peak()

    def load(self, blob: bytes, device: Device, inputs, outputs, options: Options):
        _configure_threads(options)
        target = torch_device(device)
        exported = torch_ops.exported_program_archive(blob)
        if exported is not None:
            return _load_exported(exported, blob, target)
        if ALLOW_LISTS:
            torch_ops.check_archive(blob)
        # torch.jit.load's own steps, keeping the compilation unit: every function in it is checked
        # before the model first runs (the archive check already covered what the load itself ran).
        unit = torch._C.CompilationUnit()
        try:
            compiled = torch._C.import_ir_module_from_buffer(unit, bytes(blob), target, {}, False)
        except Exception as e:
            raise BackendError(_EXCEEDED if _out_of_budget(e) else first_line(e)) from None
        if ALLOW_LISTS:
            torch_ops.check_compiled(unit, "model", compiled._type().qualified_name())
        module = torch.jit._recursive.wrap_cpp_module(compiled)
        module.eval()
        return TorchModel(module, target)


def _load_exported(archive, blob: bytes, target: torch.device) -> "ExportedModel":
    """A torch.export program (`torch.export.save`'s archive): every field checked before torch reads it
    and the archive rebuilt from what was checked (torch_export_ops.py: torch.export.load only reads text
    the check printed), loaded, checked again as the graph torch built, and run through its module."""
    checked = torch_ops.check_exported_archive(archive) if ALLOW_LISTS else blob
    try:
        program = torch.export.load(io.BytesIO(checked))
    except Exception as e:
        raise BackendError(_EXCEEDED if _out_of_budget(e) else first_line(e)) from None
    if ALLOW_LISTS:
        torch_ops.check_exported_program(program)
    return ExportedModel(program, target)


class ExportedModel(TorchModel):
    """Inputs by position (the program's user inputs), outputs as the program returns them."""

    def __init__(self, program, device: torch.device):
        module = program.module()
        if device.type != "cpu":
            module = module.to(device)
        self.module = module
        self.device = device
        signature = program.graph_signature
        self.inputs = [str(name) for name in signature.user_inputs]
        self.outputs = [""] * len(signature.user_outputs)


BACKEND = TorchBackend()


# ------------------------------------------------------------------ scripts

_ENTRY_SIGNATURE = "Expected signature similar to: def {fn}(tensors: List[Tensor], keys: List[str], args: List[str])"


class TorchScript:
    def __init__(self, unit, device: torch.device, entry_points: list[str] | None):
        self.unit = unit
        self.device = device
        self.entry_points = entry_points  # None: a SCRIPTSET script, any function may be called

    def function(self, name: str):
        try:
            return self.unit.find_function(name)
        except Exception:
            return None

    def run(self, name: str, tensors: list[np.ndarray], keys: list[str], args: list[str],
            variadic_from: int | None = None, host=None) -> list[np.ndarray]:
        """Runs function `name`; `host` serves the script's redis.execute / redisAI.model_execute
        calls (backends/torch_redis.py); their first failure is the run's error, as they worded it."""
        function = self.function(name)
        if function is None:
            raise BackendError(f"Function {name} does not exist in the given script.")
        inputs = [to_torch(array, self.device) for array in tensors]
        with torch_redis.run_with(host) as extensions:
            try:
                _inference_mode()
                if self.entry_points is not None:
                    result = function(inputs, keys, args)
                elif variadic_from is not None:
                    result = function(*inputs[:variadic_from], inputs[variadic_from:])
                else:
                    result = function(*inputs)
            except Exception as e:
                error = e
            else:
                error = None
        if error is not None:
            raise BackendError(extensions.error or (_EXCEEDED if _out_of_budget(error) else run_error(error))) from None
        if result is None:
            return []
        return to_numpy(result)


_INTERPRETER = "The following operation failed in the TorchScript interpreter."
_WHERE = re.compile(r'File "<string>", line (\d+), in (\w+)')
_RAISED = re.compile(r"^\w*(?:Error|Exception): (.*)$")


def run_error(error: BaseException) -> str:
    """A script's runtime error: the exception TorchScript raised and where (its first line alone is
    "The following operation failed in the TorchScript interpreter.")."""
    text = str(error)
    if not text.startswith(_INTERPRETER):
        return first_line(error)
    lines = [line for line in text.splitlines() if line.strip()]
    raised = next((m.group(1) for m in map(_RAISED.match, reversed(lines)) if m), None)
    where = _WHERE.findall(text)
    if raised is None:
        return first_line(error)
    return f"{raised} (line {where[-1][0]}, in {where[-1][1]})" if where else raised


def one_line(error: BaseException) -> str:
    """The whole message with line breaks as spaces, as RedisAI replied with TorchScript's errors."""
    return (str(error) or type(error).__name__).replace("\r", " ").replace("\n", " ")


def compile_script(source: str, device: Device, entry_points: list[str] | None) -> TorchScript:
    """Compiles TorchScript source (never Python): the TorchScript compiler knows no open, eval,
    __import__ or os, and the only Python names a script can reach are torch, redis and redisAI
    (torch_redis.resolve); what the compiled functions may run is torch_ops.py's allow-list."""
    target = torch_device(device)
    torch_redis.register()
    try:
        unit = torch.jit.CompilationUnit()
        unit.define(source, rcb=torch_redis.resolve)
    except Exception as e:
        raise BackendError(one_line(e)) from None
    if ALLOW_LISTS:
        torch_ops.check_compiled(unit, "script")
    script = TorchScript(unit, target, entry_points)
    for name in entry_points or ():
        function = script.function(name)
        if function is None:
            raise BackendError(f"Function {name} does not exist in the given script.")
        arguments = function.schema.arguments
        if len(arguments) != 3:
            raise BackendError(f"Wrong number of inputs in function {name}. Expected 3 but was {len(arguments)}")
        types = [str(argument.type) for argument in arguments]
        if types != ["List[Tensor]", "List[str]", "List[str]"]:
            raise BackendError(f"Wrong inputs type in function {name}. " + _ENTRY_SIGNATURE.format(fn=name))
    return script
