"""RedisAI 1.2's TorchScript extensions: `redis.execute`, `redis.asList` and `redisAI.model_execute`.

They are TorchScript operators (`torch.library`, namespaces `redis` and `redisAI`) whose kernels are
Python functions; a script is compiled with a resolution callback that maps the names `redis` and
`redisAI` to those namespaces, so a script is still compiled TorchScript and nothing else. The
kernels run on the worker thread that runs the script (TorchScript calls them with the GIL taken
again) and know nothing of Redis: they call the *host* the run was given (`run_with`), which
`execution/script_host.py` implements with the Modules API:
    host.execute(command: str, args: list[str]) -> bytes | int | float | None | list (of those)
    host.model_execute(model_key: str, inputs: list[np.ndarray], num_outputs: int) -> list[np.ndarray]
A host's exception with a `script_message` attribute fails the script with that text as it is.
Outside a run with a host (a script compiled or run on its own) they fail with a clear message.

Operator schemas, as RedisAI's (`torch_redis.cpp`):
    redis::execute(str command, str[] args) -> Any       redis.execute("SET", key, value) works too:
    redis::execute.command(str command) -> Any               TorchScript packs trailing str arguments
    redis::asList(Any value) -> Any[]                        into the list
    redisAI::model_execute(str model_key, Tensor[] inputs, int num_outputs) -> Tensor[]
All three are CONSERVATIVE for alias analysis: TorchScript must never drop a call whose result is
unused (a SET) nor run one at compile time (constant folding).

Replies map as RedisAI mapped them: a bulk or status string is a `str` (UTF-8, undecodable bytes
replaced), an integer an `int`, a nil `None`, an array a list (`redis.asList` gives `List[Any]`;
an array whose elements are not all str or all int travels inside `Any` as a tuple, because
TorchScript infers one element type for a list).
"""

from __future__ import annotations

import threading

import numpy as np
import torch


_local = threading.local()  # .host (the running script's), .error (the first failure's message)
_register_lock = threading.Lock()
_libraries: list = []  # the torch.library.Library objects: the operators live as long as these


def _fail(message: str):
    """Records the message for the run (TorchScript wraps a kernel's exception in its own traceback
    text) and raises."""
    if getattr(_local, "error", None) is None:
        _local.error = message
    raise RuntimeError(message)


def _host():
    host = getattr(_local, "host", None)
    if host is None:
        _fail("redis.execute and redisAI.model_execute are only available while a script runs in Redis")
    return host


def _script_value(value):
    """A reply as TorchScript can hold it in `Any`."""
    if type(value) is bytes:
        return value.decode("utf-8", errors="replace")
    if type(value) is list:
        items = [_script_value(item) for item in value]
        if items and type(items[0]) in (str, int) and all(type(item) is type(items[0]) for item in items):
            return items
        return tuple(items)  # TorchScript infers a list's type from its elements: mixed ones go as a tuple
    return value  # int, float, None


def _host_failed(error: Exception):
    """A host's exception: one with `script_message` is the error as the client should read it."""
    _fail(getattr(error, "script_message", None) or f"{type(error).__name__}: {error}")


def _execute(command: str, args: list[str]):
    host = _host()
    try:
        reply = host.execute(command, args)
    except Exception as e:
        _host_failed(e)
    return _script_value(reply)


def _execute_command(command: str):
    return _execute(command, [])


def _as_list(value):
    if isinstance(value, (list, tuple)):
        return list(value)
    _fail(f"redis.asList expects a list (an array reply), got {type(value).__name__}")


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    return np.ascontiguousarray(tensor.numpy())


def _to_torch(array: np.ndarray) -> torch.Tensor:
    if array.dtype == object:
        _fail("redisAI.model_execute: a STRING output cannot be a TorchScript tensor")
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array)  # a copy torch may own and write
    return torch.from_numpy(array)


def _model_execute(model_key: str, inputs: list[torch.Tensor], num_outputs: int) -> list[torch.Tensor]:
    host = _host()
    if num_outputs < 0:
        _fail("redisAI.model_execute: the number of outputs cannot be negative")
    arrays = [_to_numpy(tensor) for tensor in inputs]
    try:
        outputs = host.model_execute(model_key, arrays, num_outputs)
    except Exception as e:
        _host_failed(e)
    device = inputs[0].device if inputs else torch.device("cpu")
    tensors = [_to_torch(array) for array in outputs]
    return [tensor.to(device) for tensor in tensors] if device.type != "cpu" else tensors


def register() -> None:
    """Defines the operators once per process (before the first script compiles)."""
    with _register_lock:
        if _libraries:
            return
        redis_lib = torch.library.Library("redis", "DEF")
        redis_lib.define("execute(str command, str[] args) -> Any", alias_analysis="CONSERVATIVE")
        redis_lib.define("execute.command(str command) -> Any", alias_analysis="CONSERVATIVE")
        redis_lib.define("asList(Any value) -> Any[]", alias_analysis="CONSERVATIVE")
        redis_lib.impl("execute", _execute, "CompositeImplicitAutograd")
        redis_lib.impl("execute.command", _execute_command, "CompositeImplicitAutograd")
        redis_lib.impl("asList", _as_list, "CompositeImplicitAutograd")
        ai_lib = torch.library.Library("redisAI", "DEF")
        ai_lib.define("model_execute(str model_key, Tensor[] inputs, int num_outputs) -> Tensor[]",
                      alias_analysis="CONSERVATIVE")
        ai_lib.impl("model_execute", _model_execute, "CompositeImplicitAutograd")
        _libraries.extend((redis_lib, ai_lib))


def resolve(name: str):
    """The resolution callback of script compilation: the only Python names a script can reach, as
    RedisAI's resolver (torch, redis, redisAI). TorchScript's own builtins (len, range, int, str,
    float, print, List, Tensor, ...) need none."""
    if name == "torch":
        return torch
    if name == "redis":
        return torch.ops.redis
    if name == "redisAI":
        return torch.ops.redisAI
    return None


class run_with:
    """`with run_with(host):` the extensions of scripts run on this thread call `host`; on leaving,
    `error` holds the message of the first extension call that failed (None if none did)."""

    def __init__(self, host):
        self.host = host
        self.error: str | None = None

    def __enter__(self) -> "run_with":
        _local.host, _local.error = self.host, None
        return self

    def __exit__(self, *exc) -> None:
        self.error = getattr(_local, "error", None)
        _local.host = _local.error = None
