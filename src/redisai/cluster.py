"""The redisai-py compatible client for a Redis Cluster of RedisAI servers.

``ClusterClient`` is a ``redis.cluster.RedisCluster`` with the same AI.* methods as
``redisai.Client`` (both take them from ``AICommandsMixin``). RedisCluster sends each command to
the shard of its keys, which it learns from the server (RedisAI declares the keys of every
AI.* command, COMMAND GETKEYS included), so every key of one command must hash to the same slot:
use hash tags (``model{user1}``, ``input{user1}``). A DAG's slot is the one of its LOAD, PERSIST
and ROUTING keys (and the model/script keys of its ops).

AI.CONFIG (and so ``config`` and ``loadbackend``) goes to every primary: each server has its own
configuration. ``modelscan``/``scriptscan`` gather the lists of all primaries.

Pipelines (``pipeline()``) queue AI.* commands like redis-py's cluster pipelines, and return their
replies as ``redisai.Client``'s pipelines do; AI.CONFIG, DAGs and transactions over several slots
are not available in them. ``modelstore`` sends models in BLOB arguments of 500 MiB at most without
asking the servers' MODEL_CHUNK_SIZE first.
"""

from __future__ import annotations

from typing import ClassVar

from redis.cluster import ClusterPipeline as _RedisClusterPipeline
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from .client.clients import PipelineReplies, setup_client
from .client.commands import AICommandsMixin

__all__ = ["ClusterClient", "ClusterPipeline"]


def _first_result(command, results, **options):
    """AI.CONFIG sent to every primary: one answer (they all answer OK, or the same value)."""
    values = list(results.values())
    return values[0] if values else None


def _joined_results(command, results, **options):
    joined = []
    for value in results.values():
        joined.extend(value)
    return joined


_AI_COMMAND_FLAGS = {
    "AI.CONFIG": RedisCluster.PRIMARIES,
    "AI._MODELSCAN": RedisCluster.PRIMARIES,
    "AI._SCRIPTSCAN": RedisCluster.PRIMARIES,
}

_AI_RESULT_CALLBACKS = {
    "AI.CONFIG": _first_result,
    "AI._MODELSCAN": _joined_results,
    "AI._SCRIPTSCAN": _joined_results,
}


class ClusterPipeline(PipelineReplies, AICommandsMixin, _RedisClusterPipeline):
    """A redis-py cluster pipeline with the AI.* methods (their replies parsed at execute(),
    status replies left as ``b'OK'``, as in ``redisai.Client``'s pipelines)."""

    COMMAND_FLAGS: ClassVar[dict] = {**_RedisClusterPipeline.COMMAND_FLAGS, **_AI_COMMAND_FLAGS}

    def __init__(self, *args, enable_postprocess: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.enable_postprocess = enable_postprocess

    def config(self, *args, **kwargs):
        raise RedisClusterException("ERROR: Calling pipelined function config is blocked when "
                                    "running redis in cluster mode...")

    def loadbackend(self, *args, **kwargs):
        raise RedisClusterException("ERROR: Calling pipelined function loadbackend is blocked "
                                    "when running redis in cluster mode...")


class ClusterClient(AICommandsMixin, RedisCluster):
    """A redis.cluster.RedisCluster with RedisAI's commands (see redisai.Client). The protocol
    defaults to RESP2, and there is no socket timeout unless ``socket_timeout`` sets one."""

    COMMAND_FLAGS: ClassVar[dict] = {**RedisCluster.COMMAND_FLAGS, **_AI_COMMAND_FLAGS}
    RESULT_CALLBACKS: ClassVar[dict] = {**RedisCluster.RESULT_CALLBACKS, **_AI_RESULT_CALLBACKS}

    def __init__(self, *args, debug: bool = False, enable_postprocess: bool = True, **kwargs):
        kwargs.setdefault("protocol", 2)
        # As redisai.Client: stores and runs wait as long as the server takes (redis-py's default is 5 s).
        kwargs.setdefault("socket_timeout", None)
        super().__init__(*args, **kwargs)
        setup_client(self, self.cluster_response_callbacks, debug, enable_postprocess)

    def pipeline(self, transaction=None, shard_hint=None) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return ClusterPipeline(
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            startup_nodes=self.nodes_manager.startup_nodes,
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=self.retry,
            lock=self._lock,
            transaction=transaction,
            event_dispatcher=self._event_dispatcher,
            enable_postprocess=self.enable_postprocess,
        )
