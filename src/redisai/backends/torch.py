"""TorchScript models, loaded with torch.jit.load (TorchScript's own archive format, no Python pickle)."""

from __future__ import annotations

import io
import threading

import numpy as np
import torch

from .base import BackendError, Device, Options, first_line

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


def torch_device(device: Device) -> torch.device:
    if device.kind == "GPU":
        if not torch.cuda.is_available():
            raise BackendError("GPU requested but Torch couldn't find CUDA")
        return torch.device("cuda", device.index or 0)
    return torch.device("cpu")


def to_torch(array: np.ndarray, device: torch.device) -> torch.Tensor:
    if array.dtype == object:
        raise BackendError("STRING tensors are not supported by the TORCH backend")
    if not array.flags.writeable:  # torch wants writable memory; inputs are never modified
        array = array.copy()
    return torch.from_numpy(array).to(device)


def to_numpy(value) -> list[np.ndarray]:
    if isinstance(value, torch.Tensor):
        return [value.detach().cpu().contiguous().numpy()]
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
        try:
            with torch.inference_mode():
                return to_numpy(self.module(*[to_torch(array, self.device) for array in inputs]))
        except BackendError:
            raise
        except Exception as e:
            raise BackendError(first_line(e)) from None


class TorchBackend:
    name = "TORCH"

    def version(self) -> str:
        return torch.__version__

    def load(self, blob: bytes, device: Device, inputs, outputs, options: Options) -> TorchModel:
        _configure_threads(options)
        target = torch_device(device)
        try:
            module = torch.jit.load(io.BytesIO(blob), map_location=target)
        except Exception as e:
            raise BackendError(first_line(e)) from None
        module.eval()
        return TorchModel(module, target)


BACKEND = TorchBackend()
