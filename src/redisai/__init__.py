"""RedisAI-compatible model serving inside Redis, with its core in Python.

Inside redis-server, `redisai.module` is the entry point that the C shim calls. For applications,
`redisai.Client` is a redisai-py compatible client (imported lazily, so the server never loads it).
"""

__version__ = "1.2.7"

_LAZY = {"Client": ("redisai.client", "Client"), "Dag": ("redisai.client", "Dag"),
         "ClusterClient": ("redisai.cluster", "ClusterClient"),
         "load_model": ("redisai.client", "load_model"), "load_script": ("redisai.client", "load_script"),
         "WaitTimeoutError": ("redisai.client", "WaitTimeoutError")}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        return getattr(importlib.import_module(module_name), attribute)
    raise AttributeError(f"module 'redisai' has no attribute {name!r}")
