"""The entry point inside redis-server: the C shim calls the on_* functions here.

Every function takes pointers as ints (the shim passes them that way) and never lets an exception
escape: a failing command gets an error reply, a failing callback is logged.
"""

from __future__ import annotations

import os
import sys

import cbridge
from cbridge import INFO, alloc, ffi, outcome, rm

from . import config as config_module
from . import keyspace, reply
from .backends import memory
from .commands import dag as dag_commands
from .commands import info as info_commands
from .commands import info_section
from .commands import model as model_commands
from .commands import script as script_commands
from .commands import stored
from .commands import tensor as tensor_commands
from .commands.request import Request, ViewArgs, log_exception, reply_failure, reply_internal_error
from .commands.table import ACL_CATEGORY, COMMANDS, acl_categories
from .domain.tensor import limits as tensor_limits
from .errors import RedisAIError
from .execution import blocking, executors, queues, warmup
from .persistence import callbacks
from .persistence.callbacks import (  # noqa: F401 - the shim calls them by name on this module
    on_aof_rewrite, on_copy, on_digest, on_free, on_mem_usage, on_rdb_load, on_rdb_save)


_HANDLERS = {spec.name.encode(): spec.handler for spec in COMMANDS}
_KEYS_OF = {spec.name.encode(): spec.keys_of for spec in COMMANDS if spec.keys_of}


def on_load(ctx: int, shim_path: str, args: list[bytes], python_env: str) -> bool:
    cbridge.bind(shim_path)
    keyspace.bind_types()
    kinds = {"model": model_commands.MODEL, "script": script_commands.SCRIPT}
    callbacks.rebuild = lambda kind, value: stored.rebuild(kinds[kind], value)
    sys.setswitchinterval(0.001)  # the main thread waits for the GIL at most this long
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        parsed = config_module.parse_module_args(args, os.path.dirname(shim_path), python_env)
    except RedisAIError as e:
        cbridge.log("warning", e.message.decode(errors="replace"))
        return False
    vars(config_module.config).update(vars(parsed))
    alloc.use_redis_allocator()  # tensors made on the main thread
    queues.configure(queues.Settings(parsed.threads_per_queue, alloc.use_redis_allocator, parsed.worker_spin_us,
                                     parsed.queue_max_length, parsed.queue_newest_first_after_ms))
    warmup.configure(parsed.warmup_runs)
    for name in parsed.retired_args:
        cbridge.log("warning", f"{name} no longer has an effect: {config_module.RETIRED_ARGS[name]}")
    maxmemory = cbridge.config_get(ctx, b"maxmemory")
    budget = memory.configure(parsed.backend_memory_limit, int(maxmemory) if maxmemory and maxmemory.isdigit() else 0,
                              os.path.dirname(shim_path))
    cbridge.log("notice", f"backend memory limit: {budget.limit_bytes // memory.MB} MB ({budget.source})")
    _configure_executors(parsed, budget)
    for name in parsed.backends_at_load:
        info_commands.load_backend_at_start(name)
    bulk_limit = cbridge.config_get(ctx, b"proto-max-bulk-len")
    if bulk_limit and bulk_limit.isdigit():
        tensor_limits["max_tensor_bytes"] = int(bulk_limit)
    # Tests compare the shim's fast paths with the general path by turning them off in the server's
    # environment (REDISAI_GENERAL_PATH_ONLY=1; never from a client): every command then takes the latter.
    if os.environ.get("REDISAI_GENERAL_PATH_ONLY") != "1":
        cbridge.calls.fast_paths(*tensor_commands.fast_path(), model_commands.submit_resolved_run)
        cbridge.calls.dag_fast_path(tensor_commands.local_maker(), dag_commands.submit_resolved_dag,
                                    dag_commands.FORMATS)
    for spec in COMMANDS:
        if rm.CreateCommand(ctx, spec.name.encode(), getattr(cbridge.shim, spec.c_entry), spec.flags.encode(),
                            spec.first_key, spec.last_key, spec.key_step) != cbridge.OK:
            cbridge.log("warning", f"cannot register command {spec.name} ({spec.handler.__name__})")
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
    except Exception as e:
        reply_failure(ctx, args[0].decode(errors="replace"), e)


def on_unblocked(ctx: int, privdata: int) -> None:
    """The reply of an outcome the shim did not answer in C (module/outcome.c): a job Python replies to,
    or prepared outputs whose values the shim could not park (no memory) when a key held another type:
    they are released here and the reply is WRONGTYPE, as outcome.c answers it otherwise."""
    try:
        kind, job_id, unstored = outcome.read(privdata)
        if kind == outcome.PYTHON:
            blocking.reply(ctx, job_id)
        else:
            for address in unstored:
                keyspace.release(address)
            reply.error(ctx, cbridge.WRONGTYPE)
    except Exception as e:
        reply_internal_error(ctx, "reply of a blocked command failed", e)
    finally:
        outcome.dispose(privdata)


def on_block_timeout(ctx: int) -> None:
    reply.simple(ctx, b"TIMEDOUT")


def on_disconnected(ctx: int, client: int) -> None:
    try:
        blocking.client_left(client)
    except Exception:
        log_exception("a blocked client's disconnect")


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
    executors.stop_all()


def _configure_executors(parsed: config_module.Config, budget: memory.Budget) -> None:
    settings = executors.settings
    settings.python = sys.executable  # the environment's (PYTHON_ENV's) Python
    settings.sandbox = parsed.sandbox == "ON"
    settings.budget, settings.budget_source = budget.limit_bytes, budget.source
    settings.memory_bound = budget.limit_bytes + executors.FOOTPRINT if budget.limit_bytes else 0
    settings.native_dir = budget.native_dir
    settings.intra, settings.inter = parsed.intra_op_parallelism, parsed.inter_op_parallelism
    settings.quarantine_after = parsed.quarantine_after
    settings.load_timeout_ms = parsed.model_load_timeout
    settings.spare = parsed.executor_spare == "ON"
    settings.environment = executors.framework_environment()
    if not settings.sandbox:
        cbridge.log("warning", "SANDBOX OFF: models and scripts run in executor processes without the OS sandbox "
                               "(no seccomp, Landlock or memory bound): a model that escapes an allow-list reaches "
                               "the server's files, network and processes")


def on_info(info_ctx: int) -> None:
    try:
        info_section.reply_info(ffi.cast(INFO, info_ctx))
    except Exception:
        log_exception("INFO failed")
