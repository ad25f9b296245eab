"""Module-typed keys: open, type-check, read and write values through the Modules API.

A key's value is a Python object (Tensor, Model, Script). Redis stores the object's address; this
module keeps the object alive in `_values` until Redis calls the type's free callback.
"""

from __future__ import annotations

import _redisai_outcome  # registered by the C shim (module/outcome.c)

import cbridge
from cbridge import NOTIFY_MODULE, NULL, READ, WRITE, WRONGTYPE, ffi, rm

from .errors import RedisAIError

_values: dict[int, object] = {}


def register(value: object) -> int:
    """Keeps `value` alive for Redis and returns the address Redis will hold."""
    address = id(value)
    _values[address] = value
    return address


def value_at(address: int) -> object:
    return _values[address]


def release(address: int) -> None:
    _values.pop(address, None)


_take_parked = _redisai_outcome.take_parked


def release_parked() -> None:
    """Releases the values that keys written from prepared outcomes replaced (module/outcome.c)."""
    parked = _take_parked()
    if parked:
        for address in parked:
            _values.pop(address, None)


def register_output(value) -> int:
    """`register` for a value a prepared outcome will store: each key owns its own object."""
    return register(value.copy() if id(value) in _values else value)


_types: dict[str, object] = {}


_shim_read = _shim_write = None
# The out-parameter of reads: keys are only ever touched on Redis's main thread.
_read_value = None


def bind_types() -> None:
    """Reads the three RedisModuleType pointers the shim created; called once at load."""
    global _shim_read, _shim_write, _read_value
    shim = cbridge.shim
    _types.update(tensor=shim.RedisAI_TensorType, model=shim.RedisAI_ModelType, script=shim.RedisAI_ScriptType)
    _shim_read, _shim_write = shim.RedisAI_KeyRead, shim.RedisAI_KeyWrite
    _read_value = ffi.new("uintptr_t *")


_HOLDS, _EMPTY = 1, 0


def read(ctx, name, kind: str):
    """The value of key `name` (bytes, or a command argument) if it holds `kind`; None if the key is
    empty; WRONGTYPE otherwise. One call into the shim (module/keys.c)."""
    if type(name) is bytes:
        state = _shim_read(ctx, NULL, name, len(name), _types[kind], _read_value)
    else:
        state = _shim_read(ctx, name, NULL, 0, _types[kind], _read_value)
    if state == _HOLDS:
        return _values[_read_value[0]]
    if state == _EMPTY:
        return None
    raise RedisAIError(WRONGTYPE)


def write(ctx, name, kind: str, value: object, validated: bool = False) -> None:
    """Stores `value` in key `name` (bytes, or a command argument) unless it holds another type
    (WRONGTYPE, nothing changes)."""
    if kind == "tensor" and not validated:
        value.validate()  # the last door: no malformed tensor enters the keyspace
    if id(value) in _values:
        # Already held by a key (e.g. a DAG persisting a tensor it loaded): each key owns its own
        # object, so that freeing one key's value never drops another's. Data stays shared.
        value = value.copy()
    address = register(value)
    if type(name) is bytes:
        state = _shim_write(ctx, NULL, name, len(name), _types[kind], address)
    else:
        state = _shim_write(ctx, name, NULL, 0, _types[kind], address)
    if state != _HOLDS:
        release(address)
        raise RedisAIError(WRONGTYPE)


def delete(ctx, name) -> None:
    """Deletes key `name` (a command argument); the caller has checked what it holds."""
    key = rm.OpenKey(ctx, name, READ | WRITE)
    rm.DeleteKey(key)
    rm.CloseKey(key)


def notify(ctx, event: bytes, name) -> None:
    rm.NotifyKeyspaceEvent(ctx, NOTIFY_MODULE, event, name)


def notify_named(ctx, event: bytes, name: bytes) -> None:
    cbridge.shim.RedisAI_NotifyNamed(ctx, NOTIFY_MODULE, event, name, len(name))


def values_of(cls) -> list:
    """Every stored value of a Python class (AI._MODELSCAN / AI._SCRIPTSCAN)."""
    return [value for value in _values.values() if isinstance(value, cls)]
