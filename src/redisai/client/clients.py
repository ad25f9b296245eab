"""`Client` and its `Pipeline`: redis-py's classes with the AI methods and reply parsing."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.client import NEVER_DECODE
from redis.retry import Retry
from redis.exceptions import ResponseError

from .commands import AICommandsMixin
from .replies import install_callbacks
from .tables import MAX_ARGUMENT_SIZE, REPLY_OPTION, WAITING_COMMANDS


# ---------------------------------------------------------------------------------------------
# Clients

def setup_client(client, callbacks, debug: bool, enable_postprocess: bool) -> None:
    """What every client class (sync, asyncio, cluster) does after redis-py's own __init__: the
    postprocessing switch, the AI.* reply callbacks and redisai-py's debug printing."""
    client.enable_postprocess = enable_postprocess
    install_callbacks(callbacks)
    if debug:
        client.execute_command = _debug(client.execute_command)


def _debug(execute_command):
    """Prints each command before sending it, as redisai-py's debug mode."""
    @functools.wraps(execute_command)
    def wrapper(*args, **options):
        print(*args)
        return execute_command(*args, **options)
    return wrapper


def _usable_chunk_size(size) -> int | None:
    """The server's MODEL_CHUNK_SIZE if it can size BLOB arguments, else None (the default)."""
    return size if isinstance(size, int) and 0 < size <= MAX_ARGUMENT_SIZE else None


class PipelineReplies:
    """What redisai-py's pipelines return: status replies as redis-py reads them (``b'OK'``),
    the others parsed whatever the client's ``enable_postprocess``."""

    def _ai(self, args: list, kind: str, **options):
        if kind != "status":
            options[REPLY_OPTION] = kind
            options[NEVER_DECODE] = []
        return self.execute_command(*args, **options)

    def dag(self, *args, **kwargs):
        raise RuntimeError("Pipeline object doesn't allow DAG creation currently")


class Pipeline(PipelineReplies, AICommandsMixin, redis.client.Pipeline):
    """A redis-py pipeline with the AI.* methods: they queue their command, and ``execute()``
    returns their replies (status replies as ``b'OK'``, the others parsed, as redisai-py's
    pipeline does for tensorset and tensorget)."""

    def __init__(self, enable_postprocess, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.enable_postprocess = enable_postprocess


class WaitTimeoutError(redis.TimeoutError):
    """A command that waits on the server (a store, a run, a DAG) had no reply within the client's
    ``socket_timeout``. The server goes on with it: a model may be stored, an output written, after this."""


def _retry_without_timeouts(retry_class):
    """redis-py 8's default retry (10 tries, jittered backoff from 10 ms to 1 s) on a lost connection, but not
    on a timeout: redis-py would send a timed-out store or run again, queueing the same work twice on a server
    that still does the first, and the caller's socket_timeout would be a tenth of the time it waits."""
    return retry_class(ExponentialWithJitterBackoff(base=0.01, cap=1), 10, supported_errors=(redis.ConnectionError,))


# redis.Redis's positional arguments before socket_timeout (host, port, db, password): given five, the fifth is it.
_POSITIONAL_BEFORE_SOCKET_TIMEOUT = 4


class ClientSetup:
    """What the sync and asyncio clients share: their arguments before redis-py's (RESP2 unless told,
    no socket timeout unless told), `from_url`, and the error of a wait cut short; `_pool_class` is the
    connection pool `from_url` makes.

    redis-py 8 gives up on a reply after 5 s by default; a store waits for its model's build and warm-up
    and for its queue, a run for its queue: both can take longer on a busy server, as redisai-py (no
    timeout) let them. ``socket_timeout=<seconds>`` sets one, and a wait it cuts raises WaitTimeoutError."""

    _pool_class = redis.ConnectionPool
    _retry_class = Retry

    def __init__(self, debug: bool = False, enable_postprocess: bool = True, *args, **kwargs):
        if "connection_pool" not in kwargs:
            kwargs.setdefault("protocol", 2)
            if len(args) <= _POSITIONAL_BEFORE_SOCKET_TIMEOUT:
                kwargs.setdefault("socket_timeout", None)
            kwargs.setdefault("retry", _retry_without_timeouts(self._retry_class))
        super().__init__(*args, **kwargs)
        setup_client(self, self.response_callbacks, debug, enable_postprocess)

    def _wait_cut(self, args: tuple, error: redis.TimeoutError) -> Exception:
        """The error to raise for a TimeoutError of a command: WaitTimeoutError, saying what to do, for a
        command that waits on the server; the error itself for others."""
        command = str(args[0]).upper() if args else ""
        if command not in WAITING_COMMANDS or "connecting" in str(error).lower():
            return error
        timeout = self.connection_pool.connection_kwargs.get("socket_timeout")
        key = args[1] if len(args) > 1 and not command.startswith("AI.DAG") else ""  # a DAG's is LOAD ...
        key = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
        return WaitTimeoutError(
            f"{command}{' ' + key if key else ''}: no reply within socket_timeout={timeout} s. The server goes on with the command "
            f"(it waits on a model's build and warm-up, or on its queue) and may still complete it. Pass a "
            f"larger socket_timeout, or None (this client's default) to wait as long as the server takes")

    def execute_command(self, *args, **options):
        try:
            return super().execute_command(*args, **options)
        except redis.TimeoutError as e:
            raise self._wait_cut(args, e) from e

    @classmethod
    def from_url(cls, url: str, *, debug: bool = False, enable_postprocess: bool = True,
                 **kwargs) -> Client:
        """A client configured from a redis:// URL (RESP2 unless the URL or kwargs say)."""
        return _from_url(cls, cls._pool_class, url, debug, enable_postprocess, kwargs)


class Client(ClientSetup, AICommandsMixin, redis.Redis):
    """A redis.Redis with RedisAI's commands, as redisai-py 1.3's Client:
    ``Client(debug=False, enable_postprocess=True, *args, **kwargs)``.

    ``debug`` prints every command sent; ``enable_postprocess=False`` returns the server's
    replies as redis-py reads them (not for pipelines and DAGs, as in redisai-py). Other
    arguments are redis.Redis's (after those two when positional); the protocol defaults to RESP2.
    """


    def _with_chunk_size(self, send: Callable):
        try:
            size = self.config("MODEL_CHUNK_SIZE")
        except ResponseError:  # e.g. an ACL user without AI.CONFIG: the default size
            size = None
        return send(_usable_chunk_size(size))

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        """A pipeline with the AI.* methods. Blocking commands (MODELEXECUTE, SCRIPTEXECUTE,
        MODELRUN, SCRIPTRUN) are refused by RedisAI inside MULTI: use transaction=False for them."""
        return Pipeline(self.enable_postprocess, self.connection_pool, self.response_callbacks,
                        transaction, shard_hint)


def _from_url(cls, pool_class, url: str, debug: bool, enable_postprocess: bool, kwargs: dict):
    kwargs.setdefault("protocol", 2)
    kwargs.setdefault("socket_timeout", None)  # the URL's ?socket_timeout= wins
    kwargs.setdefault("retry", _retry_without_timeouts(cls._retry_class))
    single_connection_client = kwargs.pop("single_connection_client", False)
    client = cls(connection_pool=pool_class.from_url(url, **kwargs),
                 single_connection_client=single_connection_client, debug=debug,
                 enable_postprocess=enable_postprocess)
    client.auto_close_connection_pool = True
    return client
