"""RedisAI-compatible model serving inside Redis, with its core in Python.

Inside redis-server, `redisai.module` is the entry point that the C shim calls.
"""

__version__ = "1.2.7"
