"""The one interface every framework backend implements.

A backend turns model bytes into a loaded model (only through the framework's own loader) and runs
it on numpy arrays. Backends know nothing of Redis: errors are BackendError with the text the
client will see after `ERR `.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np


_DEVICE = re.compile(r"(?i)(CPU|GPU)(:[0-9]*)?")  # RedisAI's MODELSTORE took "CPU:" (no digits) too


# Test-only: REDISAI_TEST_SKIP_ALLOWLISTS=1 in the server's environment (passed on to its executors) turns the
# backends' allow-lists and model rewrites off, so that a test can show what the executor's sandbox holds alone
# (tests/security/test_executors.py). Never for a server that serves anyone.
ALLOW_LISTS = os.environ.get("REDISAI_TEST_SKIP_ALLOWLISTS") != "1"


class BackendError(Exception):
    """A failure to report to the client; str(e) is the message after `ERR `."""


@dataclass(frozen=True)
class Device:
    kind: str  # "CPU" or "GPU"
    index: int | None  # GPU:1 -> 1; None when not given

    @classmethod
    def parse(cls, text: str) -> "Device":
        kind, _, index = text.upper().partition(":")
        return cls(kind, int(index) if index else None)

    @staticmethod
    def valid(text: str) -> bool:
        """RedisAI's device grammar: CPU or GPU, any case, optionally `:<digits>`."""
        return _DEVICE.fullmatch(text) is not None


@dataclass(frozen=True)
class Options:
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    execution_timeout_ms: int = 5000


class LoadedModel(Protocol):
    inputs: list[str]
    outputs: list[str]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


class Backend(Protocol):
    name: str  # as in commands: TF, TFLITE, TORCH, ONNX

    def version(self) -> str: ...

    def load(self, blob: bytes, device: Device, inputs: list[str], outputs: list[str],
             options: Options) -> LoadedModel: ...


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
