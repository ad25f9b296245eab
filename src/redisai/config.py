"""Module arguments (`loadmodule redisai.so KEY VALUE ...`) and the settings they give."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .backends import NAMES as BACKEND_NAMES
from .errors import err

DEFAULT_MODEL_CHUNK_SIZE = 511 * 1024 * 1024


@dataclass
class Config:
    backends_path: str = ""
    threads_per_queue: int = 1
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0
    model_chunk_size: int = DEFAULT_MODEL_CHUNK_SIZE
    model_execution_timeout: int = 5000
    backend_memory_limit: int | None = None  # MB; None: derived at load (backends/memory.py); 0: no limit
    worker_spin_us: int = 500  # an idle worker's spin before it sleeps (module/handoff.c)
    # Runs waiting or running on one device queue before a new one is refused at once (admission control):
    # far above what RedisAI's and redisai-py's suites queue, low enough that a flood fails fast.
    queue_max_length: int = 1024
    # While a queue's oldest run has waited longer than this, its newest runs start first (0: always oldest
    # first): under overload it answers clients that still wait (execution/queues.py).
    queue_newest_first_after_ms: int = 100
    # At most this many warm-up runs of a model after it is built, before it serves (execution/warmup.py);
    # 0: none.
    warmup_runs: int = 3
    python_env: str = ""
    # A script's redis.execute / redisAI.model_execute may touch only the keys of its KEYS scope
    # (what Cluster routes on), unless the module argument SCRIPT_UNDECLARED_KEYS ALLOW relaxes it.
    script_undeclared_keys: str = "DENY"
    # Models and scripts run in executors closed by an OS sandbox (execution/executors.py); "OFF" only when the
    # operator says so, and where seccomp cannot be applied, stores are refused unless it is OFF.
    sandbox: str = "ON"
    # A model or script whose jobs brought their executor down this many times answers an error until it is
    # stored again; 0: never.
    quarantine_after: int = 3
    # A model's load or a script's compile in its executor stops (the executor replaced) past this (ms).
    model_load_timeout: int = 60_000
    # A second executor per worker, started and sandboxed ahead, that takes over when the first dies: the
    # queue goes on without waiting for the frameworks' imports, for a second executor's memory.
    executor_spare: str = "OFF"
    backends_at_load: dict[str, str] = field(default_factory=dict)
    retired_args: list[str] = field(default_factory=list)  # accepted for old configurations, logged at load


def _refused(name: str, value: bytes, rule: str):
    """RedisAI's log line (`error processing argument: NAME value`), then what is wrong with it."""
    shown = f"{name} {value.decode(errors='replace')}" if value else name
    return err(f"error processing argument: {shown}: {rule}")


def _positive(name: str, value: bytes, minimum: int = 1) -> int:
    unit = _UNITS.get(name, "")
    try:
        number = int(value)
    except ValueError:
        raise _refused(name, value, f"{name} must be an integer{unit}") from None
    if number < minimum:
        raise _refused(name, value, f"{name} must be at least {minimum}{unit}")
    return number


_UNITS = {"MODEL_EXECUTION_TIMEOUT": " (ms)", "MODEL_LOAD_TIMEOUT": " (ms)", "QUEUE_NEWEST_FIRST_AFTER_MS": " (ms)",
          "WORKER_SPIN_US": " (µs)", "BACKEND_MEMORY_LIMIT": " (MB)", "MODEL_CHUNK_SIZE": " (bytes)"}


_INTEGER_ARGS = {
    "THREADS_PER_QUEUE": ("threads_per_queue", 1),
    "INTRA_OP_PARALLELISM": ("intra_op_parallelism", 1),
    "INTER_OP_PARALLELISM": ("inter_op_parallelism", 1),
    "MODEL_CHUNK_SIZE": ("model_chunk_size", 1),
    "MODEL_EXECUTION_TIMEOUT": ("model_execution_timeout", 1000),
    "BACKEND_MEMORY_LIMIT": ("backend_memory_limit", 0),
    "WORKER_SPIN_US": ("worker_spin_us", 0),
    "QUEUE_MAX_LENGTH": ("queue_max_length", 1),
    "QUEUE_NEWEST_FIRST_AFTER_MS": ("queue_newest_first_after_ms", 0),
    "WARMUP_RUNS": ("warmup_runs", 0),
    "QUARANTINE_AFTER": ("quarantine_after", 0),
    "MODEL_LOAD_TIMEOUT": ("model_load_timeout", 1000),
}
# Arguments that no longer change anything: a configuration naming one still loads, and the log says so.
RETIRED_ARGS = {
    # Runs on Redis's main thread: a model's run time can depend on its input values (NonMaxSuppression,
    # Range, Tile, loops), so no run may hold the main thread; every run goes to a worker.
    "INLINE_RUN_MAX_US": "every model run goes to a worker: no run holds Redis's main thread",
}


def parse_module_args(args: list[bytes], module_dir: str, python_env: str) -> Config:
    """RedisAI's rules: KEY VALUE pairs; an odd count or unknown key fails the load."""
    config = Config(backends_path=os.path.join(module_dir, "backends"), python_env=python_env)
    if len(args) % 2:
        raise _refused(args[-1].decode(errors="replace"), b"", "module arguments are KEY VALUE pairs, and this one "
                       "has no value")
    for name_bytes, value in zip(args[::2], args[1::2]):
        name = name_bytes.decode(errors="replace").upper()
        if name in _INTEGER_ARGS:
            attribute, minimum = _INTEGER_ARGS[name]
            setattr(config, attribute, _positive(name, value, minimum))
        elif name in RETIRED_ARGS:
            _positive(name, value, 0)
            config.retired_args.append(name)
        elif name == "BACKENDSPATH":
            config.backends_path = value.decode()
        elif name in BACKEND_NAMES:
            config.backends_at_load[name] = value.decode()
        elif name == "SCRIPT_UNDECLARED_KEYS":
            choice = value.decode(errors="replace").upper()
            if choice not in ("DENY", "ALLOW"):
                raise _refused(name, value, f"{name} must be DENY or ALLOW")
            config.script_undeclared_keys = choice
        elif name == "SANDBOX":
            choice = value.decode(errors="replace").upper()
            if choice not in ("ON", "OFF"):
                raise _refused(name, value, f"{name} must be ON or OFF")
            config.sandbox = choice
        elif name == "EXECUTOR_SPARE":
            choice = value.decode(errors="replace").upper()
            if choice not in ("ON", "OFF"):
                raise _refused(name, value, f"{name} must be ON or OFF")
            config.executor_spare = choice
        elif name == "PYTHON_ENV":
            pass  # used by the C shim to start Python
        else:
            raise _refused(name, value, f"unknown argument {name} (known: {', '.join(sorted(KNOWN_ARGS))})")
    return config


KNOWN_ARGS = {*_INTEGER_ARGS, *RETIRED_ARGS, *BACKEND_NAMES, "BACKENDSPATH", "SCRIPT_UNDECLARED_KEYS", "SANDBOX",
              "EXECUTOR_SPARE", "PYTHON_ENV"}


config = Config()
