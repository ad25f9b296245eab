"""The entry point inside redis-server: the C shim calls the on_* functions here.

Every function takes pointers as ints (the shim passes them that way) and never lets an exception
escape: a failing command gets an error reply, a failing callback is logged.
"""

from __future__ import annotations

import os
import sys
import traceback

import _redisai_outcome as outcome  # registered by the C shim (module/outcome.c)

import cbridge
from cbridge import DIGEST, INFO, IO, STRING, ffi, rm

from . import config as config_module
from . import keyspace, reply
from .backends import memory
from .commands import info as info_commands
from .commands import info_section
from .commands import dag as dag_commands
from .commands import model as model_commands
from .commands import script as script_commands
from .commands import stored
from .commands import tensor as tensor_commands
from .commands.request import Request, ViewArgs
from .commands.table import ACL_CATEGORY, COMMANDS, acl_categories
from .domain.model import Model
from .domain.script import Script
from .domain.tensor import Tensor
from .domain.tensor import limits as tensor_limits
from .errors import RedisAIError
from .execution import blocking, queues
from .persistence import rdb
from .persistence.commands import modelstore_args, scriptstore_args, tensorset_args
from .persistence.redis_io import RedisIO

_KINDS = ("tensor", "model", "script")


def _not_implemented(req: Request) -> None:
    raise RedisAIError(f"ERR {req.name.upper()} is not supported by this version of the module yet")


_HANDLERS = {
    b"ai.tensorset": tensor_commands.tensorset,
    b"ai.tensorget": tensor_commands.tensorget,
    b"ai.modelstore": model_commands.modelstore,
    b"ai.modelset": model_commands.modelset,
    b"ai.modelget": model_commands.modelget,
    b"ai.modeldel": model_commands.modeldel,
    b"ai.modelexecute": model_commands.modelexecute,
    b"ai.modelrun": model_commands.modelrun,
    b"ai.info": info_commands.info,
    b"ai.config": info_commands.configure,
    b"ai._modelscan": info_commands.scan(Model),
    b"ai.scriptstore": script_commands.scriptstore,
    b"ai.scriptset": script_commands.scriptset,
    b"ai.scriptget": script_commands.scriptget,
    b"ai.scriptdel": script_commands.scriptdel,
    b"ai.scriptexecute": script_commands.scriptexecute,
    b"ai.scriptrun": script_commands.scriptrun,
    b"ai._scriptscan": info_commands.scan(Script),
    b"ai.dagexecute": dag_commands.dagexecute,
    b"ai.dagexecute_ro": dag_commands.dagexecute_ro,
    b"ai.dagrun": dag_commands.dagrun,
    b"ai.dagrun_ro": dag_commands.dagrun_ro,
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
        parsed = config_module.parse_module_args(args, os.path.dirname(shim_path), python_env)
    except RedisAIError as e:
        cbridge.log("warning", e.message.decode(errors="replace"))
        return False
    vars(config_module.config).update(vars(parsed))
    import _redisai_alloc  # registered by the C shim (module/allocator.c)

    _redisai_alloc.use_redis_allocator()  # tensors made on the main thread
    queues.configure(parsed.threads_per_queue, thread_init=_redisai_alloc.use_redis_allocator,
                     spin_us=parsed.worker_spin_us)
    for name in parsed.backends_at_load:
        info_commands.load_backend_at_start(name)
    maxmemory = cbridge.config_get(ctx, b"maxmemory")
    budget = memory.configure(parsed.backend_memory_limit, int(maxmemory) if maxmemory and maxmemory.isdigit() else 0,
                              os.path.dirname(shim_path))
    cbridge.log("notice", f"backend memory limit: {budget.limit_bytes // memory.MB} MB ({budget.source})")
    bulk_limit = cbridge.config_get(ctx, b"proto-max-bulk-len")
    if bulk_limit and bulk_limit.isdigit():
        tensor_limits["max_tensor_bytes"] = int(bulk_limit)
    for spec in COMMANDS:
        handler = _HANDLERS.setdefault(spec.name.encode(), _not_implemented)
        if rm.CreateCommand(ctx, spec.name.encode(), cbridge.shim.RedisAI_Command, spec.flags.encode(),
                            spec.first_key, spec.last_key, spec.key_step) != cbridge.OK:
            cbridge.log("warning", f"cannot register command {spec.name} ({handler.__name__})")
            return False
    _set_acl_categories(ctx)
    rm.RegisterInfoFunc(ctx, cbridge.shim.RedisAI_Info)
    return True


def _set_acl_categories(ctx: int) -> None:
    """`@ai` and the commands' categories (commands/table.py) where the server lets a module set them;
    elsewhere (Redis 7.0) the AI.* commands are in `@all` alone, as with RedisAI."""
    if rm.AddACLCategory is None or rm.SetCommandACLCategories is None or rm.GetCommand is None:
        cbridge.log("notice", "this server sets no ACL categories for module commands: AI.* commands are in @all only")
        return
    if rm.AddACLCategory(ctx, ACL_CATEGORY.encode()) != cbridge.OK:
        cbridge.log("warning", f"could not add the ACL category @{ACL_CATEGORY}")
        return
    for spec in COMMANDS:
        command = rm.GetCommand(ctx, spec.name.encode())
        if command == ffi.NULL or rm.SetCommandACLCategories(command, acl_categories(spec).encode()) != cbridge.OK:
            cbridge.log("warning", f"could not set the ACL categories of {spec.name}")


def on_command(ctx: int, argv: int, args: list, has_views: bool, keys_request: bool) -> None:
    """`args` holds bytes, and memoryviews for the largest arguments when `has_views` (see ViewArgs);
    with `keys_request`, Redis only asks where the keys are (getkeys-api commands)."""
    if has_views:
        args = ViewArgs(args)
    command = args[0].lower()
    try:
        if keys_request:
            keys_of = _KEYS_OF.get(command)
            for position in keys_of(args) if keys_of is not None else ():
                rm.KeyAtPos(ctx, position)
            return
        _HANDLERS[command](Request(ctx, argv, args))
    except RedisAIError as e:
        reply.error(ctx, e.message)
    except MemoryError:
        reply.error(ctx, b"ERR not enough memory for this request")
    except Exception as e:
        _log_exception(f"{args[0].decode(errors='replace')} failed")
        reply.error(ctx, f"ERR internal error: {type(e).__name__}: {e}".encode(errors="replace"))


def on_unblocked(ctx: int, privdata: int) -> None:
    """The reply of an outcome the shim did not answer in C (module/outcome.c): a job Python replies
    to, or prepared outputs one of whose keys holds another type."""
    try:
        kind, job_id, unstored = outcome.read(privdata)
        if kind == outcome.PYTHON:
            blocking.reply(ctx, job_id)
        else:
            for address in unstored:
                keyspace.release(address)
            reply.error(ctx, cbridge.WRONGTYPE)
    except Exception as e:
        _log_exception("reply of a blocked command failed")
        reply.error(ctx, f"ERR internal error: {type(e).__name__}: {e}".encode(errors="replace"))
    finally:
        outcome.dispose(privdata)


def on_block_timeout(ctx: int) -> None:
    reply.simple(ctx, b"TIMEDOUT")


def on_free_privdata(ctx: int, privdata: int) -> None:
    """A client that disconnected before its reply: its outcome is dropped."""
    kind, job_id, unstored = outcome.read(privdata)
    if kind == outcome.PYTHON:
        blocking.free(job_id)
    for address in unstored:
        keyspace.release(address)
    outcome.dispose(privdata)


def on_parked() -> None:
    """After each sleep of the event loop, when keys written from prepared outcomes replaced values."""
    keyspace.release_parked()


def on_shutdown() -> None:
    from . import backends

    backends.quiesce()


def on_info(info_ctx: int) -> None:
    try:
        info_section.reply_info(ffi.cast(INFO, info_ctx))
    except Exception:
        _log_exception("INFO failed")


# ------------------------------------------------------------------ data type callbacks

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
            stored.rebuild(model_commands.MODEL, value)
        else:
            value = rdb.load_script(stream, encver)
            value.key_name = stream.key_name().encode()
            stored.rebuild(script_commands.SCRIPT, value)
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
