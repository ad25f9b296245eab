"""Blocked clients: a command blocks its client, a worker finishes the job, and the reply (with any
key writes) happens back on Redis's main thread in `reply`.

Redis carries an int id as the blocked client's private data; the job itself waits in `_pending`.
"""

from __future__ import annotations

import itertools

import cbridge
from cbridge import VOIDP, ffi, rm

from . import queues, script_host

_pending: dict[int, object] = {}
_ids = itertools.count(1)


def block(ctx, job, on_reply, timeout_ms: int = 0) -> None:
    """Blocks the calling client until `job` is finished; then `on_reply(ctx, job)` runs on the main thread.

    With a timeout, Redis answers TIMEDOUT at the deadline even if the run never ends (a model stuck in
    a loop keeps its worker, but not its client); the job's outcome is then dropped.
    """
    shim = cbridge.shim
    client = rm.BlockClient(ctx, shim.RedisAI_Unblocked, shim.RedisAI_BlockTimeout, shim.RedisAI_FreePrivdata,
                            timeout_ms)
    rm.BlockedClientMeasureTimeStart(client)
    job.reply = on_reply
    if getattr(job, "wants_caller", False):  # a script run: its redis.execute calls run as this client
        job.caller = script_host.capture(ctx)

    def unblock(finished) -> None:
        rm.BlockedClientMeasureTimeEnd(client)
        job_id = next(_ids)
        _pending[job_id] = finished
        queues.hand_off(client, ffi.cast(VOIDP, job_id))

    job.on_finish = unblock


def reply(ctx, job_id: int) -> None:
    """RedisAI_Unblocked (given the private data): the client gets its reply."""
    job = _pending.pop(job_id, None)
    if job is None:  # never leave a client without a reply
        cbridge.log("warning", f"no outcome for blocked client job {job_id}")
        return rm.ReplyWithError(ctx, b"ERR internal error: the run's outcome was lost (see the server log)")
    job.reply(ctx, job)


def free(privdata: int) -> None:
    """RedisAI_FreePrivdata: for a client that disconnected or timed out before its reply (the shim
    skips the call after a reply, which already dropped the job)."""
    _pending.pop(privdata, None)


def can_block(ctx) -> bool:
    flags = rm.GetContextFlags(ctx)
    return not flags & (cbridge.CTX_FLAGS_MULTI | cbridge.CTX_FLAGS_LUA | cbridge.CTX_FLAGS_DENY_BLOCKING
                        | cbridge.CTX_FLAGS_REPLICATED | cbridge.CTX_FLAGS_LOADING)
