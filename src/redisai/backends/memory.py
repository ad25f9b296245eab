"""BACKEND_MEMORY_LIMIT: the memory each backend may take, so that no run gets the server killed.

RedisAI enforced the limit for ONNX alone, through its own onnxruntime allocator; here every backend
has it, each through its framework's own mechanism, each held to the limit separately:
- ONNX: an arena allocator shared by every session, capped at the limit (onnx.py);
- TF: TensorFlow's CPU allocator capped before TensorFlow starts (tf.py);
- TORCH: a counting CPU allocator of ours in c10 (module/torch_allocator.cpp, loaded by torch.py);
- TFLITE: the interpreter's tensors, summed before they are allocated (tflite.py).
A run that would pass the limit fails with `<Framework> memory limit exceeded, memory allocation
failed.` (RedisAI's text for ONNX); the server, its keys and the model stay, and the next run works.

Without the module argument the limit is derived (`derived_limit`): half of the memory the server may
use beside Redis's own data, i.e. of (the machine's memory, or its cgroup's limit if lower) minus
`maxmemory`, and at least 256 MB. `BACKEND_MEMORY_LIMIT 0` turns it off, as RedisAI's default did.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from . import REGISTRY
from .base import BackendError

MB = 1_000_000  # RedisAI's megabyte (1000000 * BACKEND_MEMORY_LIMIT bytes)
MINIMUM_DERIVED = 256 * MB


def exceeded(backend: str) -> str:
    return f"{REGISTRY[backend].framework} memory limit exceeded, memory allocation failed."


# A run's outputs are held three times at once: by the framework (ONNX's arena: Session.run's arrays are
# views of it; torch's and TensorFlow's allocators), in Redis once copied into a key, and in the
# AI.TENSORSET that replicates the key (or the reply that carries them). A 1.4 GB ONNX output under a
# 1.6 GB limit got the server OOM-killed in a 3 GiB cgroup.
OUTPUT_COPIES = 3


def check_outputs(backend: str, arrays) -> None:
    """Refuses, as the framework's allocator would (counted, with its error), a run whose outputs so counted
    pass the limit: called before they are copied into Redis."""
    if budget.limit_bytes and OUTPUT_COPIES * sum(array.nbytes for array in arrays) > budget.limit_bytes:
        budget.count_refusal(backend)
        raise BackendError(exceeded(backend))


@dataclass
class Budget:
    limit_bytes: int = 0  # 0: no limit
    source: str = "none"  # "BACKEND_MEMORY_LIMIT", "derived" or "none"
    native_dir: str = ""  # where build/redisai_torch.so lives
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REGISTRY, 0))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_refusal(self, backend: str) -> None:
        with self._lock:
            self.refused[backend] += 1


budget = Budget()


def configure(limit_mb: int | None, maxmemory: int, native_dir: str) -> Budget:
    """Sets the budget once, at module load, before any framework starts."""
    budget.native_dir = native_dir
    if limit_mb is None:
        budget.limit_bytes, budget.source = derived_limit(maxmemory), "derived"
    elif limit_mb == 0:
        budget.limit_bytes, budget.source = 0, "none"
    else:
        budget.limit_bytes, budget.source = limit_mb * MB, "BACKEND_MEMORY_LIMIT"
    return budget


def derived_limit(maxmemory: int) -> int:
    return max(MINIMUM_DERIVED, (available_memory() - maxmemory) // 2)


def available_memory() -> int:
    """The machine's memory, or the limit of the cgroup this process is in when it is lower."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    for path in _cgroup_limit_files():
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    return min(limits)


def _cgroup_limit_files() -> list[str]:
    """cgroup v2 (memory.max) and v1 (memory.limit_in_bytes) files of this process's cgroup."""
    files = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return files
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            files.append(f"/sys/fs/cgroup{path}/memory.max")
            files.append(f"/sys/fs/cgroup/unified{path}/memory.max")
        elif "memory" in controllers.split(","):
            files.append(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
    return files
