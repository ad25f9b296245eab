"""TFLite flatbuffers through LiteRT's interpreter."""

from __future__ import annotations

import threading

import numpy as np
from ai_edge_litert import interpreter as litert

from .base import BackendError, Device, Options, first_line


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
        try:
            interpreter = litert.Interpreter(model_content=bytes(blob), num_threads=options.intra_op_parallelism or None)
            interpreter.allocate_tensors()
        except Exception as e:
            raise BackendError(f"Failed to load model from buffer ({first_line(e)})") from None
        return TFLiteModel(interpreter)


BACKEND = TFLiteBackend()
