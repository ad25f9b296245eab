"""ONNX models through onnxruntime."""

from __future__ import annotations

import threading

import numpy as np
import onnxruntime

from .base import BackendError, Device, Options, first_line


def _reject_external_data(blob: bytes) -> None:
    """ONNX can point initializers at files; a served model must carry all of its data."""
    from onnx import ModelProto, TensorProto

    try:
        model = ModelProto.FromString(blob)  # only parses the protobuf: no file is touched
    except Exception as e:
        raise BackendError(f"No graph was found in the protobuf. ({first_line(e)})") from None
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for tensor in graph.initializer:
            if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
                raise BackendError("Initializer tensors with external data is not allowed.")
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.t.data_location == TensorProto.EXTERNAL or attribute.t.external_data:
                    raise BackendError("Initializer tensors with external data is not allowed.")
                graphs.extend(attribute.graphs)
                if attribute.HasField("g"):
                    graphs.append(attribute.g)


class OnnxModel:
    def __init__(self, session: onnxruntime.InferenceSession, options: Options):
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.outputs = [o.name for o in session.get_outputs()]
        self.timeout_s = options.execution_timeout_ms / 1000

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.inputs):
            raise BackendError(f"Expected {len(self.inputs)} inputs but got {len(inputs)}")
        run_options = onnxruntime.RunOptions()
        # MODEL_EXECUTION_TIMEOUT: a watchdog sets the terminate flag of a run that takes too long.
        watchdog = threading.Timer(self.timeout_s, lambda: setattr(run_options, "terminate", True))
        watchdog.daemon = True
        watchdog.start()
        try:
            feeds = {name: _feed(array) for name, array in zip(self.inputs, inputs)}
            return [np.asarray(output) for output in self.session.run(None, feeds, run_options)]
        except Exception as e:
            if run_options.terminate:
                raise BackendError("Exiting due to terminate flag being set to true.") from None
            raise BackendError(first_line(e)) from None
        finally:
            watchdog.cancel()


def _feed(array: np.ndarray) -> np.ndarray:
    if array.dtype == object:  # STRING tensors: onnxruntime wants str elements
        return np.vectorize(lambda b: b.decode(errors="replace"), otypes=[object])(array)
    return array


class OnnxBackend:
    name = "ONNX"

    def version(self) -> str:
        return onnxruntime.__version__

    def load(self, blob: bytes, device: Device, inputs, outputs, options: Options) -> OnnxModel:
        if device.kind == "GPU" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise BackendError("GPU requested but ONNX couldn't find CUDA")
        _reject_external_data(blob)
        session_options = onnxruntime.SessionOptions()
        if options.intra_op_parallelism:
            session_options.intra_op_num_threads = options.intra_op_parallelism
        if options.inter_op_parallelism:
            session_options.inter_op_num_threads = options.inter_op_parallelism
        providers = ["CPUExecutionProvider"]
        if device.kind == "GPU":
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
        try:
            session = onnxruntime.InferenceSession(blob, session_options, providers=providers)
        except Exception as e:
            raise BackendError(first_line(e)) from None
        return OnnxModel(session, options)


BACKEND = OnnxBackend()
