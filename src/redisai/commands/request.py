"""One command call: the Redis context, the raw argv pointers and the arguments as bytes."""

from __future__ import annotations

import traceback

import cbridge
from cbridge import rm

from .. import reply
from ..errors import RedisAIError


def log_exception(where: str) -> None:
    cbridge.log("warning", f"{where}: {traceback.format_exc().strip()}")


def reply_failure(ctx: int, command: str, e: Exception) -> None:
    """The reply of a command whose Python raised (on_command, and the fast paths' calls, so that a
    failure gets the same reply whichever path the command took): its error, or what went wrong inside."""
    if isinstance(e, RedisAIError):
        reply.error(ctx, e.message)
    elif isinstance(e, MemoryError):
        reply.error(ctx, b"ERR not enough memory for this request")
    else:
        reply_internal_error(ctx, f"{command} failed", e)


def reply_internal_error(ctx: int, where: str, e: Exception) -> None:
    """An exception no reply foresaw: to the log with its traceback, and to the client by its name."""
    log_exception(where)
    reply.error(ctx, f"ERR internal error: {type(e).__name__}: {e}".encode(errors="replace"))


class ViewArgs(list):
    """Arguments of which the largest are read-only views of Redis's argument memory (module/redisai.c).

    A view is valid only during the command (the shim releases it afterwards). Indexing, slicing and
    iteration give bytes, as for any command, so parsers need not care; `raw(i)` gives the view
    itself to the code that copies a BLOB once into a tensor."""

    __slots__ = ()

    def __getitem__(self, index):
        if type(index) is slice:
            return [self[i] for i in range(*index.indices(len(self)))]
        item = list.__getitem__(self, index)
        if type(item) is memoryview:
            item = bytes(item)
            list.__setitem__(self, index, item)  # copied at most once
        return item

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def raw(self, index: int):
        return list.__getitem__(self, index)


def raw_arg(args: list, index: int):
    """args[index] without a copy where the shim passed a view (a BLOB to copy into a tensor)."""
    return args.raw(index) if type(args) is ViewArgs else args[index]


class Request:
    __slots__ = ("ctx", "_argv", "args")

    def __init__(self, ctx: int, argv: int, args: list[bytes]):
        self.ctx = ctx  # RedisModuleCtx * as an int
        self._argv = argv
        self.args = args

    @property
    def argv(self):
        """RedisModuleString ** (for the few calls that take a key as a Redis string)."""
        return cbridge.ffi.cast(cbridge.ARGV, self._argv)

    @property
    def name(self) -> str:
        return self.args[0].decode(errors="replace")

    def wrong_arity(self) -> None:
        # Redis 7's RM_WrongArity names the command in lower case; RedisAI's clients and tests
        # expect the name as typed (Redis 6's behaviour), e.g. 'AI.TENSORSET'.
        rm.ReplyWithError(self.ctx, b"ERR wrong number of arguments for '%s' command" % self.args[0])

    def from_our_stream(self) -> bool:
        """True for a command replayed from the master's stream or the AOF: what the module wrote
        itself (an empty tensor, a model's output, replicates as AI.TENSORSET with a zero dim)."""
        return bool(cbridge.calls.context_flags(self.ctx) & (cbridge.CTX_FLAGS_REPLICATED | cbridge.CTX_FLAGS_LOADING))

    def replicate_verbatim(self) -> None:
        cbridge.calls.replicate_verbatim(self.ctx)
