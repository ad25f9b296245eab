"""RedisAI's allocator figures of ONNX models, counted where the models are known: in the server, beside the
executors that run them (execution/executors.py), without onnxruntime."""

from __future__ import annotations

import threading
import weakref


class _Allocations:
    """RedisAI's `onnxruntime_memory` and `onnxruntime_memory_access_num` (INFO, backends_info), counted
    as RedisAI's allocator counted them: the model and each input and output name are allocated when a
    model is created and freed with it (each block with the 63 + 8 bytes RedisAI added to align it);
    a run allocates and frees its input and output names and its outputs. onnxruntime's own allocator
    does the work here, so these are the figures a RedisAI dashboard expects, not a measurement."""

    OVERHEAD = 63 + 8

    def __init__(self):
        self.lock = threading.Lock()
        self.memory = 0
        self.accesses = 0

    def model_created(self, model: object, blob_size: int) -> None:
        blocks = [blob_size] + [len(name.encode()) + 1 for name in model.inputs + model.outputs]
        size = sum(blocks) + self.OVERHEAD * len(blocks)
        with self.lock:
            self.memory += size
            self.accesses += len(blocks)
        weakref.finalize(model, self._model_freed, size, len(blocks))

    def _model_freed(self, size: int, blocks: int) -> None:
        with self.lock:
            self.memory -= size
            self.accesses += blocks

    def ran(self, model: object) -> None:
        with self.lock:
            self.accesses += 2 * len(model.inputs) + 4 * len(model.outputs)


allocations = _Allocations()
