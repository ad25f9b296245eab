"""One command call: the Redis context, the raw argv pointers and the arguments as bytes."""

from __future__ import annotations

from cbridge import rm


class Request:
    __slots__ = ("ctx", "argv", "args")

    def __init__(self, ctx, argv, args: list[bytes]):
        self.ctx = ctx
        self.argv = argv  # RedisModuleString ** (key names are passed to Redis as these)
        self.args = args

    @property
    def name(self) -> str:
        return self.args[0].decode(errors="replace")

    def wrong_arity(self) -> None:
        # Redis 7's RM_WrongArity names the command in lower case; RedisAI's clients and tests
        # expect the name as typed (Redis 6's behaviour), e.g. 'AI.TENSORSET'.
        rm.ReplyWithError(self.ctx, b"ERR wrong number of arguments for '%s' command" % self.args[0])

    def replicate_verbatim(self) -> None:
        rm.ReplicateVerbatim(self.ctx)
