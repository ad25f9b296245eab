"""Module-typed keys: open, type-check, read and write values through the Modules API.

A key's value is a Python object (Tensor, Model, Script). Redis stores the object's address; this
module keeps the object alive in `_values` until Redis calls the type's free callback.
"""

from __future__ import annotations


import cbridge
from cbridge import READ, WRITE, WRONGTYPE, outcome, rm

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


_take_parked = outcome.take_parked if outcome is not None else None  # None outside redis-server


def release_parked() -> None:
    """Releases the values that keys written from prepared outcomes replaced (module/outcome.c)."""
    parked = _take_parked()
    if parked:
        for address in parked:
            _values.pop(address, None)


def register_output(value) -> int:
    """`register` for a value about to be stored in a key. One already held by a key (e.g. a DAG
    persisting a tensor it loaded) is copied: each key owns its own object, so that freeing one key's
    value never drops another's. Data stays shared."""
    return register(value.copy() if id(value) in _values else value)


_KINDS = {"tensor": 0, "model": 1, "script": 2}  # as module/calls.c numbers them
_key_read = _key_write = _notify = None


def bind_types() -> None:
    """Binds the shim's key calls; called once at load."""
    global _key_read, _key_write, _notify
    _key_read, _key_write, _notify = cbridge.calls.key_read, cbridge.calls.key_write, cbridge.calls.notify


def read(ctx: int, name: bytes, kind: str):
    """The value of key `name` if it holds `kind`; None if the key is empty; WRONGTYPE otherwise.
    One call into the shim (module/calls.c), keeping the GIL."""
    address = _key_read(ctx, name, _KINDS[kind])
    if address > 0:
        return _values[address]
    if address == 0:
        return None
    raise RedisAIError(WRONGTYPE)


def write(ctx: int, name: bytes, kind: str, value: object, validated: bool = False) -> None:
    """Stores `value` in key `name` unless it holds another type (WRONGTYPE, nothing changes)."""
    if kind == "tensor" and not validated:
        value.validate()  # the last door: no malformed tensor enters the keyspace
    address = register_output(value)
    if _key_write(ctx, name, _KINDS[kind], address) != 1:
        release(address)
        raise RedisAIError(WRONGTYPE)
    release_parked()  # the value it replaced, at once: its memory is the next one's


def delete(ctx, name) -> None:
    """Deletes key `name` (a command argument); the caller has checked what it holds."""
    key = rm.OpenKey(ctx, name, READ | WRITE)
    rm.DeleteKey(key)
    rm.CloseKey(key)


def notify(ctx: int, event: bytes, name: bytes) -> None:
    _notify(ctx, event, name)


def tensor_written(ctx: int, name: bytes) -> None:
    """After AI.TENSORSET wrote key `name`: the command replicated as sent and the ai.tensorset event, by
    the C that does it for every tensor write (module/outcome.c, RedisAI_TensorWritten)."""
    outcome.tensor_written(ctx, name)


def values_of(cls) -> list:
    """Every stored value of a Python class (AI._MODELSCAN / AI._SCRIPTSCAN)."""
    release_parked()  # values that keys no longer hold
    return [value for value in _values.values() if isinstance(value, cls)]


def replicate(ctx: int, command: bytes, args: list) -> None:
    """Propagates a write to replicas and the AOF as `command args...` (module/varargs.c)."""
    cbridge.replicate(ctx, command, args)


def warn(message: str) -> None:
    """A warning in the server's log about a value (one that could not be rebuilt, say)."""
    cbridge.log("warning", message)
