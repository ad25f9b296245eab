"""The entry point inside redis-server: the C shim calls the on_* functions here.

Every function takes pointers as ints (the shim passes them that way) and never lets an exception
escape: a failing command gets an error reply, a failing callback is logged.
"""

from __future__ import annotations

import os
import sys
import traceback

import cbridge
from cbridge import ARGV, CTX, ffi, rm

from . import config as config_module
from . import keyspace, reply
from .commands import tensor as tensor_commands
from .commands.request import Request
from .commands.table import COMMANDS
from .errors import RedisAIError
from .persistence import rdb
from .persistence.redis_io import RedisIO

_KINDS = ("tensor", "model", "script")


def _not_implemented(req: Request) -> None:
    raise RedisAIError(f"ERR {req.name.upper()} is not supported by this version of the module yet")


_HANDLERS = {
    b"ai.tensorset": tensor_commands.tensorset,
    b"ai.tensorget": tensor_commands.tensorget,
}
_KEYS_OF = {spec.name.encode(): spec.keys_of for spec in COMMANDS if spec.keys_of}


def _log_exception(where: str) -> None:
    cbridge.log("warning", f"{where}: {traceback.format_exc().strip()}")


def on_load(ctx: int, shim_path: str, args: list[bytes], python_env: str) -> bool:
    cbridge.bind(shim_path)
    keyspace.bind_types()
    sys.setswitchinterval(0.001)  # the main thread waits for the GIL at most this long
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        config_module.config = config_module.parse_module_args(args, os.path.dirname(shim_path), python_env)
    except RedisAIError as e:
        cbridge.log("warning", e.message.decode(errors="replace"))
        return False
    c = ffi.cast("RedisModuleCtx *", ctx)
    for spec in COMMANDS:
        handler = _HANDLERS.get(spec.name.encode(), _not_implemented)
        _HANDLERS[spec.name.encode()] = handler
        if rm.CreateCommand(c, spec.name.encode(), cbridge.shim.RedisAI_Command, spec.flags.encode(),
                            spec.first_key, spec.last_key, spec.key_step) != cbridge.OK:
            cbridge.log("warning", f"cannot register command {spec.name}")
            return False
    return True


def on_command(ctx: int, argv: int, args: list[bytes]) -> None:
    c = ffi.cast(CTX, ctx)
    command = args[0].lower()
    try:
        keys_of = _KEYS_OF.get(command)
        if keys_of is not None and rm.IsKeysPositionRequest(c):
            for position in keys_of(args):
                rm.KeyAtPos(c, position)
            return
        _HANDLERS[command](Request(c, ffi.cast(ARGV, argv), args))
    except RedisAIError as e:
        reply.error(c, e.message)
    except MemoryError:
        reply.error(c, b"ERR not enough memory for this request")
    except Exception as e:
        _log_exception(f"{args[0].decode(errors='replace')} failed")
        reply.error(c, f"ERR internal error: {type(e).__name__}: {e}".encode(errors="replace"))


def on_unblocked(ctx: int) -> None:
    pass


def on_block_timeout(ctx: int) -> None:
    pass


def on_free_privdata(ctx: int, privdata: int) -> None:
    pass


# ------------------------------------------------------------------ data type callbacks

def on_rdb_load(io: int, kind_and_encver: tuple[int, int]) -> int:
    kind, encver = kind_and_encver
    stream = RedisIO(io)
    try:
        if _KINDS[kind] == "tensor":
            value = rdb.load_tensor(stream, encver)
        else:
            raise rdb.RdbFormatError(f"{_KINDS[kind]} values are not supported by this version yet")
    except (rdb.RdbFormatError, EOFError) as e:
        stream.log_error(f"cannot load {_KINDS[kind]} '{stream.key_name()}': {e}")
        return 0
    return keyspace.register(value)


def on_rdb_save(io: int, address: int) -> None:
    rdb.save_tensor(RedisIO(io), keyspace.value_at(address))


def on_aof_rewrite(io: int, key: int, address: int) -> None:
    tensor = keyspace.value_at(address)
    aof = ffi.cast("RedisModuleIO *", io)
    fmt = b"sc" + b"l" * len(tensor.shape) + b"cb"
    blob = tensor.blob()
    data = ffi.from_buffer(blob)
    dims = [ffi.cast("long long", d) for d in tensor.shape]
    rm.EmitAOF(aof, b"AI.TENSORSET", fmt, ffi.cast("RedisModuleString *", key),
               ffi.new("char[]", tensor.dtype.name.encode()), *dims, ffi.new("char[]", b"BLOB"),
               data, ffi.cast("size_t", len(data)))


_OBJECT_OVERHEAD = 96  # the Python object and array header, roughly


def on_mem_usage(address: int) -> int:
    return keyspace.value_at(address).nbytes() + _OBJECT_OVERHEAD


def on_digest(md: int, address: int) -> None:
    tensor = keyspace.value_at(address)
    digest = ffi.cast("RedisModuleDigest *", md)
    name = tensor.dtype.name.encode()
    rm.DigestAddStringBuffer(digest, name, len(name))
    for dim in tensor.shape:
        rm.DigestAddLongLong(digest, dim)
    data = ffi.from_buffer(tensor.blob())
    rm.DigestAddStringBuffer(digest, data, len(data))
    rm.DigestEndSequence(digest)


def on_free(address: int) -> None:
    keyspace.release(address)


def on_copy(from_key: int, to_key: int, address: int) -> int:
    value = keyspace.value_at(address)
    # Values are immutable, so the copy shares the data with the original.
    return keyspace.register(type(value)(value.dtype, value.array))
