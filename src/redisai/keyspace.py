"""Module-typed keys: open, type-check, read and write values through the Modules API.

A key's value is a Python object (Tensor, Model, Script). Redis stores the object's address; this
module keeps the object alive in `_values` until Redis calls the type's free callback.
"""

from __future__ import annotations

import cbridge
from cbridge import KEYTYPE_EMPTY, KEYTYPE_MODULE, NOTIFY_MODULE, READ, UINTPTR, VOIDP, WRITE, WRONGTYPE, ffi, rm

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


_types: dict[str, object] = {}


def bind_types() -> None:
    """Reads the three RedisModuleType pointers the shim created; called once at load."""
    shim = cbridge.shim
    _types.update(tensor=shim.RedisAI_TensorType, model=shim.RedisAI_ModelType, script=shim.RedisAI_ScriptType)


def redis_type(kind: str):
    return _types[kind]


class Key:
    """An open key, used as a context manager so it is always closed."""

    __slots__ = ("handle", "name", "ctx", "owned_name")

    def __init__(self, ctx, name, mode: int = READ, owned_name: bool = False):
        self.ctx = ctx
        self.name = name
        self.owned_name = owned_name  # a RedisModuleString we created, freed on close
        self.handle = rm.OpenKey(ctx, name, mode)

    def __enter__(self) -> "Key":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.handle is not None:
            rm.CloseKey(self.handle)
            self.handle = None
            if self.owned_name:
                rm.FreeString(self.ctx, self.name)

    def is_empty(self) -> bool:
        return rm.KeyType(self.handle) == KEYTYPE_EMPTY

    def value(self, kind: str):
        """The value if the key holds `kind`, None if empty; WRONGTYPE otherwise."""
        key_type = rm.KeyType(self.handle)
        if key_type == KEYTYPE_EMPTY:
            return None
        if key_type != KEYTYPE_MODULE or rm.ModuleTypeGetType(self.handle) != redis_type(kind):
            raise RedisAIError(WRONGTYPE)
        return _values[int(ffi.cast(UINTPTR, rm.ModuleTypeGetValue(self.handle)))]

    def check_writable(self, kind: str) -> None:
        """WRONGTYPE unless empty or of `kind`: checked before anything is parsed or changed."""
        self.value(kind)

    def set(self, kind: str, value: object) -> None:
        if id(value) in _values:
            # Already held by a key (e.g. a DAG persisting a tensor it loaded): each key owns its own
            # object, so that freeing one key's value never drops another's. Data stays shared.
            value = value.copy()
        address = register(value)
        if rm.ModuleTypeSetValue(self.handle, redis_type(kind), ffi.cast(VOIDP, address)) != 0:
            release(address)
            raise RedisAIError(WRONGTYPE)

    def set_checked(self, kind: str, value: object) -> None:
        self.check_writable(kind)
        self.set(kind, value)

    def delete(self) -> None:
        rm.DeleteKey(self.handle)


def open_key(ctx, name, write: bool = False) -> Key:
    return Key(ctx, name, READ | WRITE if write else READ)


def open_key_named(ctx, name: bytes, write: bool = False) -> Key:
    """Opens a key named by bytes (not by a command argument)."""
    return Key(ctx, rm.CreateString(ctx, name, len(name)), READ | WRITE if write else READ, owned_name=True)


def notify(ctx, event: bytes, name) -> None:
    rm.NotifyKeyspaceEvent(ctx, NOTIFY_MODULE, event, name)


def notify_named(ctx, event: bytes, name: bytes) -> None:
    string = rm.CreateString(ctx, name, len(name))
    rm.NotifyKeyspaceEvent(ctx, NOTIFY_MODULE, event, string)
    rm.FreeString(ctx, string)


def values_of(cls) -> list:
    """Every stored value of a Python class (AI._MODELSCAN / AI._SCRIPTSCAN)."""
    return [value for value in _values.values() if isinstance(value, cls)]
