"""What model and script commands share: a value is built off Redis's main thread (framework import,
compile), then stored, replicated and announced; lookups and deletes say which kind was expected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import keyspace, reply
from ..errors import RedisAIError, err
from ..execution import blocking, queues
from .request import Request


@dataclass(frozen=True)
class Kind:
    name: str  # "model" or "script": the keyspace kind
    load_job: Callable  # value -> a Job that builds it
    store_command: Callable  # value -> (command, args) that recreates it, for replicas and the AOF


def lookup(req: Request, kind: Kind):
    value = keyspace.read(req.ctx, req.args[1], kind.name)
    if value is None:
        raise err(f"{kind.name} key is empty")
    return value


def delete(req: Request, kind: Kind) -> None:
    if len(req.args) != 2:
        return req.wrong_arity()
    if keyspace.read(req.ctx, req.args[1], kind.name) is None:
        raise err(f"{kind.name} key is empty")
    keyspace.delete(req.ctx, req.argv[1])
    reply.ok(req.ctx)
    req.replicate_verbatim()
    keyspace.notify(req.ctx, f"ai.{kind.name}del".encode(), req.args[1])


def check_writable(req: Request, kind: Kind) -> None:
    """WRONGTYPE before anything is parsed, as RedisAI."""
    keyspace.read(req.ctx, req.args[1], kind.name)


def store(req: Request, kind: Kind, value) -> None:
    """Builds `value` on its device's queue with the client blocked; replies and writes the key after."""
    value.key_name = req.args[1]
    if blocking.can_block(req.ctx):
        job = kind.load_job(value)
        blocking.block(req.ctx, job, lambda ctx, finished: _reply_stored(ctx, kind, finished.model, finished.error))
        queues.get(value.device).submit(job)
        return
    # A transaction, a Lua script, the master's stream or the AOF: no blocking here. Users in MULTI
    # get the outcome now; replicated and loaded values are built on a worker (see rebuild()).
    if req.from_our_stream():
        rebuild(kind, value)
        return _reply_stored(req.ctx, kind, value, None)
    job = kind.load_job(value)
    job.inline = True
    job.run()
    _reply_stored(req.ctx, kind, value, job.error)


def rebuild(kind: Kind, value) -> None:
    """Builds a value loaded from an RDB, the AOF or the master on a worker; a failure is logged (the
    key keeps its bytes, and runs report the error)."""
    job = kind.load_job(value)
    key_name = value.key_name.decode(errors="replace")

    def log_failure(finished) -> None:
        if finished.error:
            keyspace.warn(f"{kind.name} '{key_name}' could not be rebuilt: {finished.error}")

    job.on_finish = log_failure
    queues.get(value.device).submit(job)


def _reply_stored(ctx, kind: Kind, value, error: str | None) -> None:
    if error is not None:
        return reply.error(ctx, b"ERR " + error.encode(errors="replace"))
    try:
        keyspace.write(ctx, value.key_name, kind.name, value)
    except RedisAIError as e:
        return reply.error(ctx, e.message)
    reply.ok(ctx)
    command, args = kind.store_command(value)
    keyspace.replicate(ctx, command, args)
    keyspace.notify(ctx, f"ai.{kind.name}store".encode(), value.key_name)
