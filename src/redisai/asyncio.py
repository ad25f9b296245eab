"""``redisai.asyncio.Client``: redisai.Client's API on ``redis.asyncio``, for asyncio services.

Every method has the arguments and the return value of ``redisai.Client``'s, and is awaited::

    from redisai.asyncio import Client

    con = Client(host="127.0.0.1", port=6379)
    await con.tensorset("x", np.array([1, 2], dtype=np.float32))
    await con.modelexecute("m", inputs=["x"], outputs=["y"])
    y = await con.tensorget("y")
    result = await con.dag(load="x").modelexecute("m", "x", "y").tensorget("y").execute()
    async with con.pipeline(transaction=False) as pipe:
        pipe.tensorset("a", [1, 2], dtype="float").tensorget("a")
        ok, a = await pipe.execute()
    await con.aclose()

The methods, the command arguments (``Builder``) and the reply parsers (``parse_reply``) are the
sync client's: a method returns ``execute_command``'s coroutine. Only ``modelstore`` (which asks
for the server's MODEL_CHUNK_SIZE first) and ``Dag.execute`` wait for a reply of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio
import redis.asyncio.retry
from redis.exceptions import ResponseError

from .client.clients import ClientSetup, PipelineReplies, _usable_chunk_size
from .client.commands import AICommandsMixin
from .client.dag import Dag as _Dag
from .client.tables import _deprecated

__all__ = ["Client", "Dag", "Pipeline"]


class Dag(_Dag):
    """redisai.Dag whose ``execute()`` (and deprecated ``run()``) is awaited."""

    async def execute(self, raise_on_error: bool = True):
        """Sends the DAG; the list of its ops' replies (see redisai.Dag.execute)."""
        return self._check(await self._send(), raise_on_error)

    @_deprecated("Use execute instead")
    async def run(self):
        return await self.execute()


class Pipeline(PipelineReplies, AICommandsMixin, redis.asyncio.client.Pipeline):
    """A redis.asyncio pipeline with the AI.* methods: they queue their command (no await), and
    ``await pipe.execute()`` returns their replies as redisai.Client's pipelines do."""

    def __init__(self, enable_postprocess, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.enable_postprocess = enable_postprocess


class Client(ClientSetup, AICommandsMixin, redis.asyncio.Redis):
    """A redis.asyncio.Redis with RedisAI's commands: ``Client(debug=False,
    enable_postprocess=True, **kwargs)`` as redisai.Client (redis.asyncio.Redis takes its own
    arguments by keyword only). The protocol defaults to RESP2."""

    _dag_class = Dag
    _pool_class = redis.asyncio.ConnectionPool
    _retry_class = redis.asyncio.retry.Retry

    async def execute_command(self, *args, **options):
        try:
            return await redis.asyncio.Redis.execute_command(self, *args, **options)
        except redis.TimeoutError as e:
            raise self._wait_cut(args, e) from e

    async def _with_chunk_size(self, send: Callable):
        try:
            size = await self.config("MODEL_CHUNK_SIZE")
        except ResponseError:
            size = None
        return await send(_usable_chunk_size(size))

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        """A pipeline with the AI.* methods (see redisai.Client.pipeline)."""
        return Pipeline(self.enable_postprocess, self.connection_pool, self.response_callbacks,
                        transaction, shard_hint)
