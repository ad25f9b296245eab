"""The client's vocabulary: RedisAI's type names and their numpy dtypes, devices, backends, the commands
it sends, and tensors to and from command arguments and replies."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np


#: Models are sent as several BLOB arguments of at most this many bytes when the server's
#: MODEL_CHUNK_SIZE is not asked (pipelines, cluster clients, and modelset, as in redisai-py).
MODEL_CHUNK_SIZE = 500 * 1024 * 1024
#: Redis's default proto-max-bulk-len: a larger MODEL_CHUNK_SIZE from the server is not used for
#: BLOB arguments (the server would refuse them).
MAX_ARGUMENT_SIZE = 512 * 1024 * 1024

ALLOWED_DEVICES = {"CPU", "GPU"}
BACKENDS = ("TF", "TFLITE", "TORCH", "ONNX")  # RedisAI's order
ALLOWED_BACKENDS = set(BACKENDS)

# Type names a caller may give for a list/tuple tensor (matched case-insensitively), as in
# redisai-py, plus RedisAI's own names. UINT32/UINT64 are passed on: the server refuses them.
DTYPES = {
    "float": "FLOAT", "double": "DOUBLE", "float32": "FLOAT", "float64": "DOUBLE",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "bool": "BOOL", "str": "STRING", "string": "STRING",
    "float16": "FLOAT16", "half": "FLOAT16", "bfloat16": "BFLOAT16",
}

# RedisAI type -> numpy dtype of a BLOB reply (RedisAI blobs are little-endian): the client's one table.
# FLOAT16 and BFLOAT16 are ours beyond RedisAI (numpy's float16; bfloat16 through ml_dtypes, which
# `numpy_dtype` imports on first use: importing it takes about a second, too long for every start).
RAI_TO_NUMPY = {
    "FLOAT": np.dtype("<f4"), "DOUBLE": np.dtype("<f8"), "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"), "UINT16": np.dtype("<u2"), "BOOL": np.dtype("?"),
    "FLOAT16": np.dtype("<f2"),
}

# numpy dtype name -> RedisAI type, for numpy arrays (a bfloat16 array means its caller imported ml_dtypes);
# uint32 and uint64 are passed on (the server refuses them).
_NUMPY_TO_RAI = ({dtype.name: name for name, dtype in RAI_TO_NUMPY.items()}
                 | {"bfloat16": "BFLOAT16", "uint32": "UINT32", "uint64": "UINT64"})


def numpy_dtype(rai_type: str) -> np.dtype | None:
    """The numpy dtype of a RedisAI type (None for STRING and unknown names)."""
    if rai_type == "BFLOAT16" and "BFLOAT16" not in RAI_TO_NUMPY:
        try:
            import ml_dtypes
        except ImportError:  # a client without ml_dtypes: BFLOAT16 replies are refused with a clear error
            return None
        RAI_TO_NUMPY["BFLOAT16"] = np.dtype(ml_dtypes.bfloat16)
    return RAI_TO_NUMPY.get(rai_type)

#: Every command this client sends (each gets the ``parse_reply`` response callback).
AI_COMMANDS = (
    "AI.TENSORSET", "AI.TENSORGET", "AI.MODELSTORE", "AI.MODELSET", "AI.MODELGET", "AI.MODELDEL",
    "AI.MODELEXECUTE", "AI.MODELRUN", "AI._MODELSCAN", "AI.SCRIPTSTORE", "AI.SCRIPTSET",
    "AI.SCRIPTGET", "AI.SCRIPTDEL", "AI.SCRIPTEXECUTE", "AI.SCRIPTRUN", "AI._SCRIPTSCAN",
    "AI.INFO", "AI.CONFIG", "AI.DAGEXECUTE", "AI.DAGEXECUTE_RO", "AI.DAGRUN", "AI.DAGRUN_RO",
)

#: The commands that wait on the server (a model's build and warm-up, a queue, a run): no socket timeout
#: should cut them short unless the caller set one.
WAITING_COMMANDS = frozenset({
    "AI.MODELSTORE", "AI.MODELSET", "AI.MODELEXECUTE", "AI.MODELRUN", "AI.SCRIPTSTORE", "AI.SCRIPTSET",
    "AI.SCRIPTEXECUTE", "AI.SCRIPTRUN", "AI.DAGEXECUTE", "AI.DAGEXECUTE_RO", "AI.DAGRUN", "AI.DAGRUN_RO",
})

KeyT = str | bytes
#: One name or several (a single name needs no list, as in redisai-py).
Names = str | bytes | Sequence[str | bytes]
Blob = bytes | bytearray | memoryview

# The command option that names the reply's parser (see parse_reply).
REPLY_OPTION = "redisai_reply"


def load_model(path) -> bytes:
    """The bytes of a model file (as ml2rt.load_model)."""
    with open(path, "rb") as f:
        return f.read()


def load_script(path) -> str:
    """The text of a TorchScript file (as ml2rt.load_script)."""
    with open(path, "r") as f:
        return f.read()


def listify(value) -> Sequence:
    """A single name as a one-element tuple; lists and tuples as they are."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _deprecated(reason: str):
    """The warning redisai-py's ``@deprecated(version="1.2.0", reason=...)`` methods give (text,
    category, and the caller as the warning's location)."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            warnings.warn(f"Call to deprecated method {method.__name__}. ({reason}) "
                          "-- Deprecated since version 1.2.0.", DeprecationWarning, stacklevel=2)
            return method(*args, **kwargs)
        return wrapper
    return decorate


# redisai-py's texts, missing spaces included (code written for it may compare them).
DAGRUN_WARNING = ("Creating Dag without any of LOAD, PERSIST and ROUTING arguments"
                  "is allowed only in deprecated AI.DAGRUN or AI.DAGRUN_RO commands")
_DEPRECATED_DAG_ERROR = ("You are using deprecated version of DAG, that does not supports {}."
                         "The new version requires giving at least one of LOAD, PERSIST and ROUTING"
                         "arguments when constructing the Dag")


# ---------------------------------------------------------------------------------------------
# Tensors <-> arguments and replies

def numpy2blob(tensor: np.ndarray) -> tuple:
    """(RedisAI type, shape, blob) of a numpy array: C order, little-endian."""
    shape = tensor.shape
    if tensor.dtype.kind in ("U", "S"):
        items = (s.encode() if isinstance(s, str) else bytes(s) for s in tensor.flat)
        return "STRING", shape, b"".join(item + b"\0" for item in items)
    name = tensor.dtype.name
    if name not in _NUMPY_TO_RAI:
        raise TypeError(f"RedisAI doesn't support tensors of type {tensor.dtype}")
    little = np.ascontiguousarray(tensor, dtype=tensor.dtype.newbyteorder("<"))
    return _NUMPY_TO_RAI[name], shape, little.tobytes()


def blob2numpy(blob: bytes, shape: Sequence[int], dtype: str, mutable: bool = False) -> np.ndarray:
    """The numpy array of a tensor's BLOB reply: read-only (sharing the reply's buffer) unless
    ``mutable``."""
    if dtype == "STRING":
        items = blob.split(b"\0")[:-1] if blob else []
        array = np.array([item.decode() for item in items], dtype=str).reshape(shape)
    else:
        np_dtype = numpy_dtype(dtype)
        if np_dtype is None:
            raise TypeError(f"unknown tensor type {dtype!r} in the reply")
        array = np.frombuffer(blob, dtype=np_dtype).reshape(shape)
        if mutable:
            return array.copy()
    if not mutable:
        array.flags.writeable = False
    return array


def _rai_dtype(dtype) -> str:
    """RedisAI's name of the type a caller gave for a list/tuple tensor."""
    if dtype is None:
        raise TypeError("tensorset() missing argument 'dtype' or value of 'dtype' is None")
    if isinstance(dtype, str):
        key = dtype.lower()
    else:
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"``{dtype}`` is not supported by RedisAI. Currently supported types "
                            f"are {list(DTYPES)}") from None
        key = "str" if np_dtype.kind == "U" else np_dtype.name
    try:
        return DTYPES[key]
    except KeyError:
        raise TypeError(f"``{dtype}`` is not supported by RedisAI. Currently supported types are "
                        f"{list(DTYPES)}") from None


def _flatten(values, out: list) -> list:
    for value in values:
        if isinstance(value, (list, tuple)):
            _flatten(value, out)
        elif isinstance(value, np.ndarray):
            _flatten(value.tolist(), out)
        elif isinstance(value, np.generic):
            out.append(value.item() if not isinstance(value, np.bool_) else int(value))
        elif isinstance(value, bool):
            out.append(int(value))
        else:
            out.append(value)
    return out


def _nested_shape(values) -> tuple:
    shape = [len(values)]
    first = values[0] if len(values) else None
    while isinstance(first, (list, tuple)):
        shape.append(len(first))
        first = first[0] if len(first) else None
    return tuple(shape)
