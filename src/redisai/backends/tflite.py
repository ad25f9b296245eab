"""TFLite flatbuffers through LiteRT's interpreter."""

from __future__ import annotations

import threading
import weakref

import numpy as np
from ai_edge_litert import interpreter as litert
from ai_edge_litert import schema_py_generated as schema

from . import memory
from .base import BackendError, Device, Options, first_line

# What a served model may run: TFLite's built-in operators (every code of schema.BuiltinOperator but
# CUSTOM). A custom operator, Flex (SELECT_TF_OPS: TensorFlow operators run through the Flex delegate)
# included, is refused by name: its code is whatever the runtime registered under that name.
_CUSTOM = schema.BuiltinOperator.CUSTOM


def check_model(blob: bytes) -> None:
    """Reads the flatbuffer's operator codes (the generated schema reader: nothing is built or run)."""
    try:
        model = schema.Model.GetRootAs(blob, 0)
        count = model.OperatorCodesLength()
        if count > len(blob) // 4:  # a length no real buffer can hold: not a model
            raise ValueError("operator code count out of range")
        for index in range(count):
            code = model.OperatorCodes(index)
            # The builtin code moved to a 32-bit field; the old 8-bit one stays, capped (TFLite's own rule).
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == _CUSTOM:
                name = (code.CustomCode() or b"").decode(errors="replace")
                raise BackendError(f"Custom operator {name} is not allowed in a served model")
    except BackendError:
        raise
    except Exception:  # an offset out of the buffer: LiteRT's verifier refuses such a buffer the same way
        raise BackendError("Failed to load model from buffer (The model is not a valid Flatbuffer buffer)") from None


def planned_bytes(interpreter) -> int:
    """What the interpreter's tensors take at their current shapes: an upper bound of the arena it
    allocates (weights included). BACKEND_MEMORY_LIMIT is held against it before any allocation; a
    dynamic tensor (its shape known only while the model runs) escapes it."""
    return sum(int(np.prod(detail["shape"], dtype=np.int64)) * np.dtype(detail["dtype"]).itemsize
               for detail in interpreter.get_tensor_details())


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

    def declared_inputs(self) -> list[tuple[np.dtype, tuple[int, ...]]] | None:
        """The inputs' types and shapes (a dimension of unknown size, -1: 1), for warm-up; None for strings."""
        declared = []
        for detail in self._inputs:
            dtype = np.dtype(detail["dtype"])
            if dtype.kind in "OSU":
                return None
            signature = detail.get("shape_signature", detail["shape"])
            declared.append((dtype, tuple(int(dim) if dim > 0 else 1 for dim in signature)))
        return declared

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
        check_model(blob)
        try:
            interpreter = litert.Interpreter(model_content=blob, num_threads=options.intra_op_parallelism or None)
            model = TFLiteModel(interpreter)
            if not memory.budget.limit_bytes or planned_bytes(interpreter) <= memory.budget.limit_bytes:
                model._allocate()  # else the first run answers the limit's error
        except Exception as e:
            raise BackendError(f"Failed to load model from buffer ({first_line(e)})") from None
        return model

    def memory_in_use(self) -> tuple[int, int]:
        return planned.used, planned.peak


BACKEND = TFLiteBackend()
