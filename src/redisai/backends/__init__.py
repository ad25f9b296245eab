"""Backends by name, imported on first use (a framework import costs seconds and hundreds of MB)."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass

from .base import Backend, BackendError, Device, LoadedModel, Options


@dataclass(frozen=True)
class Registered:
    """What the rest of the package knows of a backend before (or without) importing it."""

    module: str  # backends/<module>.py, and the name of its extra in pyproject.toml
    code: int  # RedisAI's persisted backend number (RDB)
    version_field: str  # INFO ai's backends_info field, RedisAI's name
    framework: str  # in the memory limit's error text, as RedisAI named onnxruntime


# The one list of backends, in RedisAI's order.
REGISTRY = {
    "TF": Registered("tf", 0, "TensorFlow_version", "Tensorflow"),
    "TFLITE": Registered("tflite", 1, "TensorFlowLite_version", "TFLite"),
    "TORCH": Registered("torch", 2, "Torch_version", "Torch"),
    "ONNX": Registered("onnx", 3, "onnxruntime_version", "Onnxruntime"),
}
NAMES = tuple(REGISTRY)
CODES = {name: registered.code for name, registered in REGISTRY.items()}

_loaded: dict[str, Backend] = {}
_lock = threading.Lock()


def get(name: str) -> Backend:
    """The backend, importing its framework if needed: call off Redis's main thread."""
    backend = _loaded.get(name)
    if backend is not None:
        return backend
    with _lock:
        if name not in _loaded:
            try:
                module = importlib.import_module(f"{__name__}.{REGISTRY[name].module}")
                _loaded[name] = module.BACKEND
            except ModuleNotFoundError as e:  # an environment installed without this backend's extra
                extra = REGISTRY[name].module
                raise BackendError(f"Could not load backend ({name}: {e.name} is not installed in this environment; "
                                   f"install the '{extra}' extra: pip install -e '.[{extra}]' or make run "
                                   f"BACKENDS={extra})") from e
            except Exception as e:
                raise BackendError(f"Could not load backend ({name}: {type(e).__name__}: {e})".splitlines()[0]) from e
        return _loaded[name]


def quiesce(timeout_s: float = 60) -> None:
    """The process is about to exit: wait for a framework import in progress (its static
    initializers must not race exit()'s static destructors) and start no other."""
    _lock.acquire(timeout=timeout_s)  # kept until the process ends


def loaded() -> dict[str, Backend]:
    return dict(_loaded)


__all__ = ["Backend", "BackendError", "Device", "LoadedModel", "Options", "REGISTRY", "NAMES", "CODES", "get",
           "loaded"]
