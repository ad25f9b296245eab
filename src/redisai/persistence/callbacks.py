"""The data types' callbacks (RDB load and save, AOF rewrite, DIGEST, MEMORY USAGE, free, COPY) that
the shim calls through `redisai.module`: values read and written in RedisAI's RDB layouts (rdb.py) and
recreated as commands (commands.py).

A model or script loaded from a dump is rebuilt on a worker through `rebuild`, which the module sets at
load (the commands layer knows how a stored value is built; this layer only hands it over).
"""

from __future__ import annotations

import traceback
from typing import Callable

import cbridge
from cbridge import DIGEST, IO, STRING, ffi, rm

from .. import config as config_module
from .. import keyspace
from ..domain.model import Model
from ..domain.script import Script
from ..domain.tensor import Tensor
from . import rdb
from .commands import modelstore_args, scriptstore_args, tensorset_args
from .redis_io import RedisIO

_KINDS = ("tensor", "model", "script")

# (kind "model" or "script", value) -> None: builds a loaded value on a worker (set by redisai.module).
rebuild: Callable[[str, object], None] = lambda kind, value: None  # noqa: E731


def _log_exception(where: str) -> None:
    cbridge.log("warning", f"{where}: {traceback.format_exc().strip()}")


def on_rdb_load(io: int, kind_and_encver: tuple[int, int]) -> int:
    kind, encver = kind_and_encver
    stream = RedisIO(io)
    try:
        if _KINDS[kind] == "tensor":
            # While Redis loads a dump (start, DEBUG RELOAD, full sync) a value that cannot load stops
            # the whole load, so such data is repaired and logged; RESTORE just refuses it.
            loading = rm.GetContextFlags(0) & cbridge.CTX_FLAGS_LOADING
            report = (lambda problem: cbridge.log("warning", f"tensor '{stream.key_name()}': {problem}"))
            value = rdb.load_tensor(stream, encver, on_problem=report if loading else None)
        elif _KINDS[kind] == "model":
            value = rdb.load_model(stream, encver)
            value.key_name = stream.key_name().encode()
            rebuild("model", value)
        else:
            value = rdb.load_script(stream, encver)
            value.key_name = stream.key_name().encode()
            rebuild("script", value)
    except (rdb.RdbFormatError, EOFError) as e:
        stream.log_error(f"cannot load {_KINDS[kind]} '{stream.key_name()}': {e}")
        return 0
    return keyspace.register(value)


def _storable(value, key_name) -> object:
    """What RDB save, AOF rewrite and DIGEST write for a value: a tensor that is not valid (which no
    door should ever have let in) is replaced by the closest valid one and logged with its key, so
    that whatever is written loads back."""
    if isinstance(value, Tensor):
        tensor, problem = value.storable()
        if problem is not None:
            cbridge.log("warning", f"tensor '{key_name()}' is not valid ({problem}); "
                                   f"written as {tensor.dtype.name} {list(tensor.shape)}")
        return tensor
    return value


def _record(value) -> rdb.Record:
    record = rdb.Record()
    if isinstance(value, Tensor):
        rdb.save_tensor(record, value)
    elif isinstance(value, Model):
        rdb.save_model(record, value, config_module.config.model_chunk_size)
    else:
        rdb.save_script(record, value)
    return record


def _placeholder(value):
    """A value of the same kind that always serialises, for a value whose record failed (a bug)."""
    if isinstance(value, Tensor):
        return Tensor.zeros(value.dtype, (0,))
    if isinstance(value, Model):
        return Model(value.backend, "CPU", b"", 0, 0, 0, [], [], b"")
    return Script("CPU", b"", b"", None)


def on_rdb_save(io: int, address: int) -> None:
    stream = RedisIO(io)
    value = _storable(keyspace.value_at(address), stream.key_name)
    try:
        record = _record(value)
    except Exception:
        _log_exception(f"cannot save '{stream.key_name()}', written empty")
        record = _record(_placeholder(value))
    record.replay(stream)


def on_aof_rewrite(io: int, key: int, address: int) -> None:
    name = cbridge.string_bytes(ffi.cast(STRING, key))
    value = _storable(keyspace.value_at(address), lambda: name.decode(errors="replace"))
    try:
        command, args = _recreate(name, value)
    except Exception:
        _log_exception(f"cannot rewrite '{name.decode(errors='replace')}', written empty")
        command, args = _recreate(name, _placeholder(value))
    cbridge.emit_aof(ffi.cast(IO, io), command, args)


def _recreate(name: bytes, value) -> tuple[bytes, list]:
    """The command and arguments that recreate a value, each argument checked to be a buffer."""
    if isinstance(value, Tensor):
        command, args = b"AI.TENSORSET", tensorset_args(name, value)
    elif isinstance(value, Model):
        command, args = b"AI.MODELSTORE", modelstore_args(name, value, config_module.config.model_chunk_size)
    else:
        command = b"AI.SCRIPTSTORE" if value.entry_points is not None else b"AI.SCRIPTSET"
        args = scriptstore_args(name, value)
    for arg in args:
        memoryview(arg)
    return command, args


_OBJECT_OVERHEAD = 96  # the Python object and array header, roughly


def on_mem_usage(address: int) -> int:
    return keyspace.value_at(address).nbytes() + _OBJECT_OVERHEAD


def on_digest(md: int, address: int) -> None:
    value = _storable(keyspace.value_at(address), lambda: "?")
    digest = ffi.cast(DIGEST, md)
    if isinstance(value, Tensor):
        parts = [value.dtype.name.encode(), *(str(d).encode() for d in value.shape), value.blob()]
    elif isinstance(value, Model):
        parts = modelstore_args(b"", value, 1 << 62)
    else:
        parts = scriptstore_args(b"", value)
    for part in parts:
        data = ffi.from_buffer(part)
        rm.DigestAddStringBuffer(digest, data, len(data))
    rm.DigestEndSequence(digest)


def on_free(address: int) -> None:
    keyspace.release(address)


def on_copy(from_key: int, to_key: int, address: int) -> int:
    value = keyspace.value_at(address)
    twin = value.copy()  # values are immutable: the copy shares the data
    if not isinstance(twin, Tensor):
        twin.key_name = cbridge.string_bytes(ffi.cast(STRING, to_key))
    return keyspace.register(twin)
