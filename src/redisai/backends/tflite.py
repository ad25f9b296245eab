"""TFLite flatbuffers through LiteRT's interpreter."""

from __future__ import annotations

import threading
import weakref

import numpy as np
from ai_edge_litert import interpreter as litert
from ai_edge_litert import schema_py_generated as schema

from . import memory
from .base import ALLOW_LISTS, BackendError, Device, Options, first_line

# What a served model may run: TFLite's built-in operators (every code of schema.BuiltinOperator but
# CUSTOM). A custom operator, Flex (SELECT_TF_OPS: TensorFlow operators run through the Flex delegate)
# included, is refused by name: its code is whatever the runtime registered under that name.
_CUSTOM = schema.BuiltinOperator.CUSTOM


def check_model(blob: bytes) -> None:
    """Reads the flatbuffer's operator codes and buffers (the generated schema reader: nothing is built or
    run). A buffer may keep its data outside the flatbuffer (models over 2 GB: `offset` and `size` from
    the start of the file); LiteRT reads it from the bytes it was given, so it must lie inside them."""
    try:
        model = schema.Model.GetRootAs(blob, 0)
        count = model.OperatorCodesLength()
        if count > len(blob) // 4 or model.BuffersLength() > len(blob) // 4:  # no real buffer holds that many
            raise ValueError("count out of range")
        for index in range(count):
            code = model.OperatorCodes(index)
            # The builtin code moved to a 32-bit field; the old 8-bit one stays, capped (TFLite's own rule).
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == _CUSTOM:
                name = (code.CustomCode() or b"").decode(errors="replace")
                raise BackendError(f"Custom operator {name} is not allowed in a served model")
        for index in range(model.BuffersLength()):
            buffer = model.Buffers(index)
            # offset 0 (data inline) or 1 (TFLite's "no data" marker); any other is where the data starts.
            if buffer.Offset() > 1 and buffer.Offset() + buffer.Size() > len(blob):
                raise BackendError(f"Buffer {index} of the model lies outside the model's bytes")
    except BackendError:
        raise
    except Exception:  # an offset out of the buffer: LiteRT's verifier refuses such a buffer the same way
        raise BackendError("Failed to load model from buffer (The model is not a valid Flatbuffer buffer)") from None


def dynamic_tensor(blob: bytes, shapes: list[tuple[int, ...]]) -> str | None:
    """The first tensor whose size the interpreter learns only while the model runs (a dynamic tensor:
    FILL, BROADCAST_TO, TILE, RANGE, ... of sizes computed from input values), with the operator that
    makes it; None when there is none. Found by allocating a model without delegates (a delegate keeps
    the tensors it runs out of the arena, where they would look the same) at the given input shapes:
    a dynamic tensor has no data then. Its memory is taken while the model runs, after the check of
    planned bytes, so with BACKEND_MEMORY_LIMIT such models are refused."""
    interpreter = litert.Interpreter(model_content=blob, num_threads=1,
                                     experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    inputs = interpreter.get_input_details()
    for detail, shape in zip(inputs, shapes):
        interpreter.resize_tensor_input(detail["index"], shape)
    if memory.budget.limit_bytes and planned_bytes(interpreter) > memory.budget.limit_bytes:
        return None  # not allocated here: TFLiteModel answers the limit's error
    interpreter.allocate_tensors()
    string_inputs = {detail["index"] for detail in inputs if np.dtype(detail["dtype"]).kind in "OSU"}
    for subgraph in range(interpreter.num_subgraphs()):
        for detail in interpreter.get_tensor_details(subgraph):
            if subgraph == 0 and detail["index"] in string_inputs:
                continue  # the client's bytes, held once
            try:
                interpreter.get_tensor(detail["index"], subgraph)
            except ValueError:
                return f"{detail['name'] or detail['index']}" + _made_by(interpreter, detail["index"], subgraph)
    return None


def _made_by(interpreter, tensor: int, subgraph: int) -> str:
    if subgraph:
        return f" (subgraph {subgraph})"
    for op in interpreter._get_ops_details():
        if tensor in list(op["outputs"]):
            return f" (output of {op['op_name']})"
    return ""


def planned_bytes(interpreter) -> int:
    """What the interpreter's tensors take at their current shapes, in every subgraph (control flow's
    bodies): an upper bound of the arenas it allocates (weights included). BACKEND_MEMORY_LIMIT is held
    against it before any allocation; a dynamic tensor (its shape known only while the model runs) would
    escape it, and such models are refused (`dynamic_tensor`)."""
    return sum(int(np.prod(detail["shape"], dtype=np.int64)) * np.dtype(detail["dtype"]).itemsize
               for subgraph in range(interpreter.num_subgraphs())
               for detail in interpreter.get_tensor_details(subgraph))


class _Planned:
    """TFLite's share of INFO's backend memory: the planned bytes of the interpreters alive."""

    def __init__(self):
        self.lock = threading.Lock()
        self.used = 0
        self.peak = 0

    def add(self, size: int) -> None:
        with self.lock:
            self.used += size
            self.peak = max(self.peak, self.used)


planned = _Planned()


class TFLiteModel:
    def __init__(self, interpreter):
        self.interpreter = interpreter
        self._size = [0]  # planned bytes allocated, a cell so that the finalizer gives back the last size
        weakref.finalize(self, lambda cell: planned.add(-cell[0]), self._size)
        self._allocated = False
        self._inputs = interpreter.get_input_details()
        self._outputs = interpreter.get_output_details()
        self.inputs = [detail["name"] for detail in self._inputs]
        self.outputs = [detail["name"] for detail in self._outputs]
        self._lock = threading.Lock()  # an interpreter runs one inference at a time

    def declared_shapes(self) -> list[tuple[np.dtype, tuple[int, ...]]]:
        """The inputs' types and shapes, a dimension of unknown size (-1) taken as 1."""
        return [(np.dtype(detail["dtype"]), tuple(int(dim) if dim > 0 else 1
                                                  for dim in detail.get("shape_signature", detail["shape"])))
                for detail in self._inputs]

    def declared_inputs(self) -> list[tuple[np.dtype, tuple[int, ...]]] | None:
        """The declared shapes, for warm-up; None for strings."""
        declared = self.declared_shapes()
        return None if any(dtype.kind in "OSU" for dtype, _ in declared) else declared

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise BackendError(f"Expected {len(self._inputs)} inputs but got {len(inputs)}")
        # Framework exceptions become the client's error in the job (execution/jobs.py), first line only.
        with self._lock:
            for detail, array in zip(self._inputs, inputs):
                if array.dtype != detail["dtype"]:
                    raise BackendError("Input tensor type doesn't match the type expected by the model definition")
            if not self._allocated or any(tuple(d["shape"]) != a.shape for d, a in zip(self._inputs, inputs)):
                for detail, array in zip(self._inputs, inputs):
                    self.interpreter.resize_tensor_input(detail["index"], array.shape)
                self._allocated = False
                self._allocate()
            for detail, array in zip(self._inputs, inputs):
                self.interpreter.set_tensor(detail["index"], array)
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(detail["index"]).copy() for detail in self._outputs]

    def _allocate(self) -> None:
        """The arena for the current shapes, once they fit BACKEND_MEMORY_LIMIT: a run whose shapes do
        not fit answers the limit's error and allocates nothing (the next run may fit)."""
        size = planned_bytes(self.interpreter)
        if memory.budget.limit_bytes and size > memory.budget.limit_bytes:
            memory.budget.count_refusal("TFLITE")
            raise BackendError(memory.exceeded("TFLITE"))
        self.interpreter.allocate_tensors()
        self._allocated = True
        planned.add(size - self._size[0])
        self._size[0] = size
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()


class TFLiteBackend:
    name = "TFLITE"

    def version(self) -> str:
        import ai_edge_litert

        return getattr(ai_edge_litert, "__version__", "unknown")

    def load(self, blob: bytes, device: Device, inputs, outputs, options: Options) -> TFLiteModel:
        if device.kind == "GPU":
            raise BackendError("GPU requested but TFLITE couldn't find CUDA")
        blob = bytes(blob)
        if ALLOW_LISTS:
            check_model(blob)
        try:
            interpreter = litert.Interpreter(model_content=blob, num_threads=options.intra_op_parallelism or None)
            model = TFLiteModel(interpreter)
            dynamic = memory.budget.limit_bytes and dynamic_tensor(blob, [s for _, s in model.declared_shapes()])
            if not memory.budget.limit_bytes or planned_bytes(interpreter) <= memory.budget.limit_bytes:
                model._allocate()  # else the first run answers the limit's error
        except Exception as e:
            raise BackendError(f"Failed to load model from buffer ({first_line(e)})") from None
        if dynamic:
            raise BackendError(f"Tensor {dynamic} of the model has a size known only while it runs: not allowed "
                               "with BACKEND_MEMORY_LIMIT (its memory would be taken after the limit's check)")
        return model

    def memory_in_use(self) -> tuple[int, int]:
        return planned.used, planned.peak


BACKEND = TFLiteBackend()
