"""Backends by name, imported on first use (a framework import costs seconds and hundreds of MB)."""

from __future__ import annotations

import importlib
import threading

from .base import Backend, BackendError, Device, LoadedModel, Options

NAMES = ("TF", "TFLITE", "TORCH", "ONNX")
_MODULES = {"TF": "tf", "TFLITE": "tflite", "TORCH": "torch", "ONNX": "onnx"}
CODES = {"TF": 0, "TFLITE": 1, "TORCH": 2, "ONNX": 3}  # RedisAI's persisted backend numbers

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
                module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
                _loaded[name] = module.BACKEND
            except Exception as e:
                raise BackendError(f"Could not load backend ({name}: {type(e).__name__}: {e})".splitlines()[0]) from e
        return _loaded[name]


def quiesce(timeout_s: float = 60) -> None:
    """The process is about to exit: wait for a framework import in progress (its static
    initializers must not race exit()'s static destructors) and start no other."""
    _lock.acquire(timeout=timeout_s)  # kept until the process ends


def loaded() -> dict[str, Backend]:
    return dict(_loaded)


__all__ = ["Backend", "BackendError", "Device", "LoadedModel", "Options", "NAMES", "CODES", "get", "loaded"]
