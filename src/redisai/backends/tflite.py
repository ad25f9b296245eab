"""TFLite flatbuffers through LiteRT's interpreter."""

from __future__ import annotations

import threading

import numpy as np
from ai_edge_litert import interpreter as litert
from ai_edge_litert import schema_py_generated as schema

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


class TFLiteModel:
    def __init__(self, interpreter):
        self.interpreter = interpreter
        self._inputs = interpreter.get_input_details()
        self._outputs = interpreter.get_output_details()
        self.inputs = [detail["name"] for detail in self._inputs]
        self.outputs = [detail["name"] for detail in self._outputs]
        self._lock = threading.Lock()  # an interpreter runs one inference at a time

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._inputs):
            raise BackendError(f"Expected {len(self._inputs)} inputs but got {len(inputs)}")
        # Framework exceptions become the client's error in the job (execution/jobs.py), first line only.
        with self._lock:
            for detail, array in zip(self._inputs, inputs):
                if array.dtype != detail["dtype"]:
                    raise BackendError("Input tensor type doesn't match the type expected by the model definition")
                if tuple(detail["shape"]) != array.shape:
                    self.interpreter.resize_tensor_input(detail["index"], array.shape)
                    self.interpreter.allocate_tensors()
                    self._inputs = self.interpreter.get_input_details()
                    self._outputs = self.interpreter.get_output_details()
                    detail = next(d for d in self._inputs if d["name"] == detail["name"])
                self.interpreter.set_tensor(detail["index"], array)
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(detail["index"]).copy() for detail in self._outputs]


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
            interpreter.allocate_tensors()
        except Exception as e:
            raise BackendError(f"Failed to load model from buffer ({first_line(e)})") from None
        return TFLiteModel(interpreter)


BACKEND = TFLiteBackend()
