"""A RedisAI client for applications, compatible with redisai-py 1.3.

``Client`` is a ``redis.Redis`` that also has redisai-py's methods (``tensorset``, ``modelstore``,
``modelexecute``, ``dag`` ...), with the same names, arguments and return values. Its pipelines
have the same methods; ``redisai.cluster.ClusterClient`` has them on a Redis Cluster client.

How it is put together, in redis-py's style:

* ``Builder`` turns a method's arguments into the command's arguments (the only place that knows
  the commands' syntax).
* The methods, in ``AICommandsMixin``, send that command with ``execute_command`` and name the
  reply's parser in the command's options. The same methods therefore work on a client (the reply
  comes back at once), on a pipeline (queued; parsed at ``execute()``) and on a cluster client.
* ``parse_reply`` is the response callback registered for every AI.* command: it hands the reply
  to the parser the options name (the only place that knows the replies' shapes). A reply of a
  command sent without that option (``client.execute_command("AI.TENSORGET", ...)``) is left as
  redis-py returns it.
* ``redisai.asyncio.Client`` mixes the same methods into ``redis.asyncio.Redis``: a method returns
  what ``execute_command`` returns, there a coroutine to await. The two methods that do more than
  send one command (``modelstore``, which asks for the server's MODEL_CHUNK_SIZE first, and
  ``Dag.execute``) have hooks the async classes override.

Where redisai-py 1.3's behaviour is odd but visible to its users, it is kept: a pipeline returns
status replies as redis-py reads them (``b'OK'``) and ignores ``enable_postprocess``, as does a
DAG; ``scriptget``'s entry points are bytes; a model blob the server sends in chunks comes back as
the list of chunks; warnings have redisai-py's texts and categories.

Replies are read in RESP2 (floats in VALUES replies are bulk strings there); ``Client`` asks for
protocol 2 unless told otherwise, and the parsers also accept RESP3 replies. AI replies are read
without decoding (``decode_responses`` would otherwise mangle tensor and model blobs) and decoded
by the parsers.

The package, by concern: `tables` (type names, dtypes, the commands sent), `commands` (`Builder` and
the methods), `replies` (the parsers), `dag` (the DAG builder), `clients` (`Client`, `Pipeline`).
"""

from .clients import Client, Pipeline, WaitTimeoutError
from .commands import AICommandsMixin, Builder
from .dag import Dag
from .replies import parse_reply
from .tables import (AI_COMMANDS, ALLOWED_BACKENDS, ALLOWED_DEVICES, DTYPES, MODEL_CHUNK_SIZE, blob2numpy,
                     load_model, load_script, numpy2blob)

__all__ = [
    "AI_COMMANDS",
    "ALLOWED_BACKENDS",
    "ALLOWED_DEVICES",
    "AICommandsMixin",
    "Builder",
    "Client",
    "DTYPES",
    "Dag",
    "MODEL_CHUNK_SIZE",
    "Pipeline",
    "blob2numpy",
    "load_model",
    "load_script",
    "numpy2blob",
    "parse_reply",
    "WaitTimeoutError",
]
