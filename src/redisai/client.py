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
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import redis
from redis.client import NEVER_DECODE
from redis.exceptions import ResponseError

__all__ = [
    "AI_COMMANDS",
    "AICommandsMixin",
    "Builder",
    "Client",
    "Dag",
    "Pipeline",
    "load_model",
    "load_script",
    "parse_reply",
]

#: Models are sent as several BLOB arguments of at most this many bytes when the server's
#: MODEL_CHUNK_SIZE is not asked (pipelines, cluster clients, and modelset, as in redisai-py).
MODEL_CHUNK_SIZE = 500 * 1024 * 1024
#: Redis's default proto-max-bulk-len: a larger MODEL_CHUNK_SIZE from the server is not used for
#: BLOB arguments (the server would refuse them).
MAX_ARGUMENT_SIZE = 512 * 1024 * 1024

ALLOWED_DEVICES = {"CPU", "GPU"}
ALLOWED_BACKENDS = {"TF", "TFLITE", "TORCH", "ONNX"}

# Type names a caller may give for a list/tuple tensor (matched case-insensitively), as in
# redisai-py, plus RedisAI's own names. UINT32/UINT64 are passed on: the server refuses them.
DTYPES = {
    "float": "FLOAT", "double": "DOUBLE", "float32": "FLOAT", "float64": "DOUBLE",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "bool": "BOOL", "str": "STRING", "string": "STRING",
}

# numpy dtype name -> RedisAI type, for numpy arrays.
_NUMPY_TO_RAI = {
    "float32": "FLOAT", "float64": "DOUBLE", "int8": "INT8", "int16": "INT16", "int32": "INT32",
    "int64": "INT64", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "bool": "BOOL",
}

# RedisAI type -> numpy dtype of a BLOB reply (RedisAI blobs are little-endian).
_RAI_TO_NUMPY = {
    "FLOAT": np.dtype("<f4"), "DOUBLE": np.dtype("<f8"), "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"), "UINT16": np.dtype("<u2"), "BOOL": np.dtype("?"),
}

#: Every command this client sends (each gets the ``parse_reply`` response callback).
AI_COMMANDS = (
    "AI.TENSORSET", "AI.TENSORGET", "AI.MODELSTORE", "AI.MODELSET", "AI.MODELGET", "AI.MODELDEL",
    "AI.MODELEXECUTE", "AI.MODELRUN", "AI._MODELSCAN", "AI.SCRIPTSTORE", "AI.SCRIPTSET",
    "AI.SCRIPTGET", "AI.SCRIPTDEL", "AI.SCRIPTEXECUTE", "AI.SCRIPTRUN", "AI._SCRIPTSCAN",
    "AI.INFO", "AI.CONFIG", "AI.DAGEXECUTE", "AI.DAGEXECUTE_RO", "AI.DAGRUN", "AI.DAGRUN_RO",
)

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
        try:
            np_dtype = _RAI_TO_NUMPY[dtype]
        except KeyError:
            raise TypeError(f"unknown tensor type {dtype!r} in the reply") from None
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


# ---------------------------------------------------------------------------------------------
# Commands

class Builder:
    """The arguments of every command (as redisai-py's command_builder)."""

    @staticmethod
    def _check_device(device: str) -> None:
        if not isinstance(device, str) or device.split(":")[0].upper() not in ALLOWED_DEVICES:
            raise ValueError(f"Device not allowed. Use any from {ALLOWED_DEVICES}")

    @staticmethod
    def _check_backend(backend: str) -> None:
        if not isinstance(backend, str) or backend.upper() not in ALLOWED_BACKENDS:
            raise ValueError(f"Backend not allowed. Use any from {ALLOWED_BACKENDS}")

    @staticmethod
    def _chunks(data: Blob, size: int | None = None) -> list:
        size = size or MODEL_CHUNK_SIZE
        if len(data) <= size:
            return [data]
        view = memoryview(data)
        return [view[i:i + size] for i in range(0, len(data), size)]

    @staticmethod
    def loadbackend(identifier: KeyT, path: KeyT) -> list:
        return ["AI.CONFIG", "LOADBACKEND", identifier, path]

    @staticmethod
    def config(name: str, value=None) -> list:
        if value is not None:
            return ["AI.CONFIG", name, value]
        return ["AI.CONFIG", "GET", name]

    @staticmethod
    def _model_options(tag, batch, minbatch, minbatchtimeout) -> list:
        """TAG, BATCHSIZE, MINBATCHSIZE, MINBATCHTIMEOUT in the order the server requires."""
        args = []
        if tag is not None:
            args += ["TAG", tag]
        if batch is not None:
            args += ["BATCHSIZE", batch]
        if minbatch is not None:
            if batch is None:
                raise ValueError("Minbatch is not allowed without batch")
            args += ["MINBATCHSIZE", minbatch]
        if minbatchtimeout is not None:
            if minbatch is None:
                raise ValueError("Minbatchtimeout is not allowed without minbatch")
            args += ["MINBATCHTIMEOUT", minbatchtimeout]
        return args

    @staticmethod
    def modelstore(key, backend, device, data, batch, minbatch, minbatchtimeout, tag, inputs,
                   outputs, chunk_size: int | None = None) -> list:
        if key is None:
            raise ValueError("Model name was not given")
        Builder._check_device(device)
        Builder._check_backend(backend)
        args = ["AI.MODELSTORE", key, backend, device, *Builder._model_options(tag, batch, minbatch, minbatchtimeout)]
        if backend.upper() == "TF":
            if not (inputs and outputs):
                raise ValueError("Require keyword arguments inputs and outputs for TF models")
            inputs, outputs = listify(inputs), listify(outputs)
            args += ["INPUTS", len(inputs), *inputs, "OUTPUTS", len(outputs), *outputs]
        elif inputs is not None or outputs is not None:
            raise ValueError("Inputs and outputs keywords should not be specified for this backend")
        return args + ["BLOB", *Builder._chunks(data, chunk_size)]

    @staticmethod
    def modelset(key, backend, device, data, batch, minbatch, tag, inputs, outputs) -> list:
        Builder._check_device(device)
        Builder._check_backend(backend)
        args = ["AI.MODELSET", key, backend, device, *Builder._model_options(tag, batch, minbatch, None)]
        if backend.upper() == "TF":
            if not (inputs and outputs):
                raise ValueError("Require keyword arguments input and output for TF models")
            args += ["INPUTS", *listify(inputs), "OUTPUTS", *listify(outputs)]
        return args + ["BLOB", *Builder._chunks(data)]

    @staticmethod
    def modelget(key, meta_only=False) -> list:
        return ["AI.MODELGET", key, "META"] + ([] if meta_only else ["BLOB"])

    @staticmethod
    def modeldel(key) -> list:
        return ["AI.MODELDEL", key]

    @staticmethod
    def modelexecute(key, inputs, outputs, timeout) -> list:
        if key is None or inputs is None or outputs is None:
            raise ValueError("Missing required arguments for model execute command")
        inputs, outputs = listify(inputs), listify(outputs)
        args = ["AI.MODELEXECUTE", key, "INPUTS", len(inputs), *inputs, "OUTPUTS", len(outputs),
                *outputs]
        if timeout is not None:
            args += ["TIMEOUT", timeout]
        return args

    @staticmethod
    def modelrun(key, inputs, outputs) -> list:
        return ["AI.MODELRUN", key, "INPUTS", *listify(inputs), "OUTPUTS", *listify(outputs)]

    @staticmethod
    def modelscan() -> list:
        return ["AI._MODELSCAN"]

    @staticmethod
    def tensorset(key, tensor, shape=None, dtype=None) -> list:
        if isinstance(tensor, np.ndarray):
            rai_type, shape, blob = numpy2blob(tensor)
            return ["AI.TENSORSET", key, rai_type, *shape, "BLOB", blob]
        if isinstance(tensor, (list, tuple)):
            rai_type = _rai_dtype(dtype)
            if shape is None:
                shape = _nested_shape(tensor)
            elif isinstance(shape, (int, np.integer)):
                shape = (shape,)
            return ["AI.TENSORSET", key, rai_type, *(int(d) for d in shape), "VALUES",
                    *_flatten(tensor, [])]
        raise TypeError(f"``tensor`` argument must be a numpy array or a list or a tuple, but got "
                        f"{type(tensor)}")

    @staticmethod
    def tensorget(key, as_numpy=True, as_numpy_mutable=False, meta_only=False) -> list:
        args = ["AI.TENSORGET", key, "META"]
        if not meta_only:
            args.append("BLOB" if (as_numpy or as_numpy_mutable) else "VALUES")
        return args

    @staticmethod
    def scriptstore(key, device, script, entry_points, tag=None) -> list:
        Builder._check_device(device)
        if key is None or script is None or entry_points is None:
            raise ValueError("Missing required arguments for script store command")
        entry_points = listify(entry_points)
        args = ["AI.SCRIPTSTORE", key, device]
        if tag:
            args += ["TAG", tag]
        return args + ["ENTRY_POINTS", len(entry_points), *entry_points, "SOURCE", script]

    @staticmethod
    def scriptset(key, device, script, tag=None) -> list:
        Builder._check_device(device)
        args = ["AI.SCRIPTSET", key, device]
        if tag:
            args += ["TAG", tag]
        return args + ["SOURCE", script]

    @staticmethod
    def scriptget(key, meta_only=False) -> list:
        return ["AI.SCRIPTGET", key, "META"] + ([] if meta_only else ["SOURCE"])

    @staticmethod
    def scriptdel(key) -> list:
        return ["AI.SCRIPTDEL", key]

    @staticmethod
    def scriptrun(key, function, inputs, outputs) -> list:
        if key is None or function is None:
            raise ValueError("Missing required arguments for script run command")
        return ["AI.SCRIPTRUN", key, function, "INPUTS", *listify(inputs), "OUTPUTS",
                *listify(outputs)]

    @staticmethod
    def scriptexecute(key, function, keys, inputs, args, outputs, timeout) -> list:
        if key is None or function is None or (keys is None and inputs is None):
            raise ValueError("Missing required arguments for script execute command")
        command = ["AI.SCRIPTEXECUTE", key, function]
        for name, values in (("KEYS", keys), ("INPUTS", inputs), ("ARGS", args),
                             ("OUTPUTS", outputs)):
            if values is not None:
                values = listify(values)
                command += [name, len(values), *values]
        if timeout is not None:
            command += ["TIMEOUT", timeout]
        return command

    @staticmethod
    def scriptscan() -> list:
        return ["AI._SCRIPTSCAN"]

    @staticmethod
    def infoget(key) -> list:
        return ["AI.INFO", key]

    @staticmethod
    def inforeset(key) -> list:
        return ["AI.INFO", key, "RESETSTAT"]

    @staticmethod
    def dag_header(load, persist, routing, timeout, readonly, deprecated_mode) -> list:
        if deprecated_mode:
            args = ["AI.DAGRUN_RO" if readonly else "AI.DAGRUN"]
        else:
            args = ["AI.DAGEXECUTE_RO" if readonly else "AI.DAGEXECUTE"]
        if load is not None:
            load = listify(load)
            args += ["LOAD", len(load), *load]
        if persist is not None:
            persist = listify(persist)
            args += ["PERSIST", len(persist), *persist]
        if routing is not None:
            args += ["ROUTING", routing]
        if timeout is not None:
            args += ["TIMEOUT", timeout]
        return args


# ---------------------------------------------------------------------------------------------
# Replies

def _text(value):
    return value.decode() if isinstance(value, (bytes, bytearray)) else value


def _decode_all(value):
    if isinstance(value, list):
        return [_decode_all(v) for v in value]
    return _text(value)


def _as_dict(reply) -> dict:
    """The dict of a flat [name, value, ...] reply (or a RESP3 map), names lower-cased; values
    as they are."""
    if isinstance(reply, dict):
        items = reply.items()
    else:
        if len(reply) % 2:
            raise RuntimeError(f"Can't unpack the list: {reply}")
        items = zip(reply[::2], reply[1::2])
    return {_text(name).lower(): value for name, value in items}


def _as_record(reply) -> dict:
    """As redisai-py's replies as dicts: names lower-cased, string values decoded, the blob and
    lists left as they are."""
    return {name: (value if name == "blob" else _text(value))
            for name, value in _as_dict(reply).items()}


def _parse_status(reply, **options):
    return _text(reply)


def _parse_tensor(reply, as_numpy=True, as_numpy_mutable=False, meta_only=False, **options):
    fields = _as_dict(reply)
    dtype = _text(fields["dtype"])
    shape = [int(d) for d in fields["shape"]]
    if meta_only:
        return {"dtype": dtype, "shape": shape}
    if as_numpy or as_numpy_mutable:
        blob = fields["blob"]
        if isinstance(blob, str):  # a transaction's EXEC reply is decoded by redis-py
            blob = blob.encode()
        return blob2numpy(blob, shape, dtype, mutable=as_numpy_mutable)
    if dtype in ("FLOAT", "DOUBLE"):
        convert = float
    elif dtype == "STRING":
        convert = _text
    else:
        convert = int
    return {"dtype": dtype, "shape": shape, "values": [convert(v) for v in fields["values"]]}


def _parse_modelget(reply, **options):
    """A dict; inputs and outputs decoded. The blob is bytes, or the list of its chunks when the
    server sent it in chunks (it is as long as its MODEL_CHUNK_SIZE or longer), as redisai-py
    returns it."""
    fields = _as_record(reply)
    for name in ("inputs", "outputs"):
        if name in fields:
            fields[name] = _decode_all(fields[name])
    return fields


def _parse_record(reply, **options):
    """SCRIPTGET / INFO: a dict (SCRIPTGET's 'entry points' stay bytes, as in redisai-py)."""
    return _as_record(reply)


def _parse_scan(reply, **options):
    return _decode_all(reply)


def _parse_dag(reply, dag_ops=(), **options):
    """The list of the DAG's op replies, each parsed by its op's parser; an op's error stays in
    the list as a ResponseError (Dag.execute raises it). A timed-out DAG answers 'TIMEDOUT'."""
    if not isinstance(reply, list):
        return _text(reply)
    out = []
    for i, item in enumerate(reply):
        if isinstance(item, Exception):
            out.append(item)
        elif item in (b"NA", "NA"):
            out.append("NA")
        elif i < len(dag_ops):
            out.append(dag_ops[i](item))
        else:
            out.append(_decode_all(item))
    return out


_PARSERS = {
    "status": _parse_status,
    "tensor": _parse_tensor,
    "modelget": _parse_modelget,
    "record": _parse_record,
    "scan": _parse_scan,
    "dag": _parse_dag,
}


def parse_reply(response, **options):
    """The response callback of every AI.* command: parses the reply with the parser named by
    the command's options; replies of commands sent without one (and errors) are returned as they
    are."""
    kind = options.get(REPLY_OPTION)
    if kind is None or isinstance(response, Exception):
        return response
    return _PARSERS[kind](response, **{k: v for k, v in options.items() if k != REPLY_OPTION})


def install_callbacks(callbacks) -> None:
    for command in AI_COMMANDS:
        callbacks[command] = parse_reply


# ---------------------------------------------------------------------------------------------
# The commands, shared by Client, Pipeline and the cluster clients

class AICommandsMixin:
    """RedisAI's commands as redisai-py 1.3 methods. The class it is mixed into provides
    ``execute_command`` (and ``enable_postprocess``). Each method returns what
    ``execute_command`` returns: the parsed reply (Client), the pipeline (pipelines) or a
    coroutine (redisai.asyncio.Client)."""

    enable_postprocess = True
    _dag_class: type = None  # Dag, set below

    def _ai(self, args: list, kind: str, **options):
        if self.enable_postprocess:
            options[REPLY_OPTION] = kind
            options[NEVER_DECODE] = []
        return self.execute_command(*args, **options)

    def _with_chunk_size(self, send: Callable):
        """``send(chunk_size)``: modelstore's command with the model in BLOB arguments of that
        size (None: MODEL_CHUNK_SIZE). Clients override this to ask the server first."""
        return send(None)

    # --- DAG

    def dag(self, load: Names | None = None, persist: Names | None = None,
            routing: KeyT | None = None, timeout: int | None = None,
            readonly: bool = False) -> Dag:
        """A DAG whose ops are queued by its methods and sent as one AI.DAGEXECUTE (or
        AI.DAGEXECUTE_RO when ``readonly``) by ``execute()``. Without any of load, persist and
        routing it is the deprecated AI.DAGRUN, as in redisai-py. Its replies are parsed whatever
        the client's ``enable_postprocess`` (as in redisai-py: set ``dag.enable_postprocess``)."""
        return self._dag_class(load, persist, routing, timeout, self.execute_command, readonly)

    # --- backends and configuration

    def loadbackend(self, identifier: KeyT, path: KeyT) -> str:
        """AI.CONFIG LOADBACKEND: 'OK'."""
        return self._ai(Builder.loadbackend(identifier, path), "status")

    def config(self, name: str, value: str | int | None = None) -> str:
        """AI.CONFIG <name> <value> ('OK') when a value is given, else AI.CONFIG GET <name>."""
        return self._ai(Builder.config(name, value), "status")

    # --- models

    def modelstore(self, key: KeyT, backend: str, device: str, data: Blob,
                   batch: int | None = None, minbatch: int | None = None,
                   minbatchtimeout: int | None = None, tag: KeyT | None = None,
                   inputs: Names | None = None, outputs: Names | None = None) -> str:
        """AI.MODELSTORE: 'OK'. Inputs and outputs are for TF models only. As redisai-py, a
        client first asks the server's MODEL_CHUNK_SIZE (AI.CONFIG GET) and sends the model in
        BLOB arguments of that size."""
        return self._with_chunk_size(lambda chunk_size: self._ai(
            Builder.modelstore(key, backend, device, data, batch, minbatch, minbatchtimeout, tag,
                               inputs, outputs, chunk_size), "status"))

    @_deprecated("Use modelstore instead")
    def modelset(self, key: KeyT, backend: str, device: str, data: Blob,
                 batch: int | None = None, minbatch: int | None = None, tag: KeyT | None = None,
                 inputs: Names | None = None, outputs: Names | None = None) -> str:
        """AI.MODELSET (deprecated): 'OK'."""
        return self._ai(Builder.modelset(key, backend, device, data, batch, minbatch, tag, inputs,
                                         outputs), "status")

    def modelget(self, key: KeyT, meta_only=False) -> dict:
        """AI.MODELGET: a dict with backend, device, tag, batchsize, minbatchsize, inputs,
        outputs, minbatchtimeout and (unless meta_only) blob: bytes, or a list of bytes when the
        model is at least the server's MODEL_CHUNK_SIZE long (the server sends it in chunks)."""
        return self._ai(Builder.modelget(key, meta_only), "modelget")

    def modeldel(self, key: KeyT) -> str:
        return self._ai(Builder.modeldel(key), "status")

    def modelexecute(self, key: KeyT, inputs: Names, outputs: Names,
                     timeout: int | None = None) -> str:
        """AI.MODELEXECUTE: 'OK' (or 'TIMEDOUT')."""
        return self._ai(Builder.modelexecute(key, inputs, outputs, timeout), "status")

    @_deprecated("Use modelexecute instead")
    def modelrun(self, key: KeyT, inputs: Names, outputs: Names) -> str:
        return self._ai(Builder.modelrun(key, inputs, outputs), "status")

    def modelscan(self) -> list[list[str]]:
        """AI._MODELSCAN (experimental): [[key, tag], ...]."""
        warnings.warn("Experimental: Model List API is experimental and might change in the "
                      "future without any notice", UserWarning, stacklevel=2)
        return self._ai(Builder.modelscan(), "scan")

    # --- tensors

    def tensorset(self, key: KeyT, tensor: np.ndarray | list | tuple,
                  shape: Sequence[int] | int | None = None, dtype: Any = None) -> str:
        """AI.TENSORSET: a numpy array as a BLOB, or a list/tuple as VALUES (dtype required;
        shape defaults to the list's length)."""
        return self._ai(Builder.tensorset(key, tensor, shape, dtype), "status")

    def tensorget(self, key: KeyT, as_numpy: bool = True, as_numpy_mutable: bool = False,
                  meta_only: bool = False) -> dict | np.ndarray:
        """AI.TENSORGET: a numpy array (read-only unless as_numpy_mutable), or with
        as_numpy=False a dict of dtype, shape and values, or with meta_only a dict of dtype and
        shape."""
        return self._ai(Builder.tensorget(key, as_numpy, as_numpy_mutable, meta_only), "tensor",
                        as_numpy=as_numpy, as_numpy_mutable=as_numpy_mutable, meta_only=meta_only)

    # --- scripts

    def scriptstore(self, key: KeyT, device: str, script: str, entry_points: Names,
                    tag: KeyT | None = None) -> str:
        """AI.SCRIPTSTORE: 'OK'."""
        return self._ai(Builder.scriptstore(key, device, script, entry_points, tag), "status")

    @_deprecated("Use scriptstore instead")
    def scriptset(self, key: KeyT, device: str, script: str, tag: KeyT | None = None) -> str:
        return self._ai(Builder.scriptset(key, device, script, tag), "status")

    def scriptget(self, key: KeyT, meta_only=False) -> dict:
        """AI.SCRIPTGET: a dict with device, tag, 'entry points' (a list of bytes, as redisai-py
        returns it) and (unless meta_only) source."""
        return self._ai(Builder.scriptget(key, meta_only), "record")

    def scriptdel(self, key: KeyT) -> str:
        return self._ai(Builder.scriptdel(key), "status")

    @_deprecated("Use scriptexecute instead")
    def scriptrun(self, key: KeyT, function: str, inputs: Names, outputs: Names) -> str:
        return self._ai(Builder.scriptrun(key, function, inputs, outputs), "status")

    def scriptexecute(self, key: KeyT, function: str, keys: Names | None = None,
                      inputs: Names | None = None, args: Names | None = None,
                      outputs: Names | None = None, timeout: int | None = None) -> str:
        """AI.SCRIPTEXECUTE: 'OK' (or 'TIMEDOUT'). Needs keys or inputs."""
        return self._ai(Builder.scriptexecute(key, function, keys, inputs, args, outputs, timeout),
                        "status")

    def scriptscan(self) -> list[list[str]]:
        """AI._SCRIPTSCAN (experimental): [[key, tag], ...]."""
        warnings.warn("Experimental: Script List API is experimental and might change in the "
                      "future without any notice", UserWarning, stacklevel=2)
        return self._ai(Builder.scriptscan(), "scan")

    # --- statistics

    def infoget(self, key: KeyT) -> dict:
        """AI.INFO: a dict of key, type, backend, device, tag, duration, samples, calls and
        errors."""
        return self._ai(Builder.infoget(key), "record")

    def inforeset(self, key: KeyT) -> str:
        """AI.INFO <key> RESETSTAT: 'OK'."""
        return self._ai(Builder.inforeset(key), "status")


# ---------------------------------------------------------------------------------------------
# DAG

class Dag:
    """Ops queued for one AI.DAGEXECUTE (redisai-py's Dag). Each op method returns the Dag, so
    calls chain; ``execute()`` sends the command and returns the list of the ops' replies
    (TENSORSET/MODELEXECUTE/SCRIPTEXECUTE: 'OK'; TENSORGET: as ``Client.tensorget``).

    ``commands`` is the command being built, as in redisai-py (each op followed by '|>')."""

    def __init__(self, load, persist, routing, timeout, executor: Callable, readonly=False):
        self.result_processors: list = []
        self.enable_postprocess = True
        self.deprecatedDagrunMode = load is None and persist is None and routing is None
        self.readonly = readonly
        self.executor = executor
        if readonly and persist:
            raise RuntimeError("READONLY requests cannot write (duh!) and should not have "
                               "PERSISTing values")
        if self.deprecatedDagrunMode:
            warnings.warn(DAGRUN_WARNING, DeprecationWarning)
        self.commands = Builder.dag_header(load, persist, routing, timeout, readonly,
                                           self.deprecatedDagrunMode) + ["|>"]

    def _add(self, args: list, processor) -> Dag:
        self.commands += [*args, "|>"]
        self.result_processors.append(processor)
        return self

    def tensorset(self, key: KeyT, tensor: np.ndarray | list | tuple,
                  shape: Sequence[int] | int | None = None, dtype: Any = None) -> Dag:
        return self._add(Builder.tensorset(key, tensor, shape, dtype), _parse_status)

    def tensorget(self, key: KeyT, as_numpy: bool = True, as_numpy_mutable: bool = False,
                  meta_only: bool = False) -> Dag:
        return self._add(Builder.tensorget(key, as_numpy, as_numpy_mutable, meta_only),
                         functools.partial(_parse_tensor, as_numpy=as_numpy,
                                           as_numpy_mutable=as_numpy_mutable, meta_only=meta_only))

    def modelexecute(self, key: KeyT, inputs: Names, outputs: Names) -> Dag:
        if self.deprecatedDagrunMode:
            raise RuntimeError(_DEPRECATED_DAG_ERROR.format("MODELEXECUTE"))
        return self._add(Builder.modelexecute(key, inputs, outputs, None), _parse_status)

    @_deprecated("Use modelexecute instead")
    def modelrun(self, key: KeyT, inputs: Names, outputs: Names) -> Dag:
        if not self.deprecatedDagrunMode:
            return self.modelexecute(key, inputs, outputs)
        return self._add(Builder.modelrun(key, inputs, outputs), _parse_status)

    def scriptexecute(self, key: KeyT, function: str, keys: Names | None = None,
                      inputs: Names | None = None, args: Names | None = None,
                      outputs: Names | None = None) -> Dag:
        if self.readonly:
            raise RuntimeError("AI.SCRIPTEXECUTE cannot be used in readonly mode")
        if self.deprecatedDagrunMode:
            raise RuntimeError(_DEPRECATED_DAG_ERROR.format("SCRIPTEXECUTE"))
        return self._add(Builder.scriptexecute(key, function, keys, inputs, args, outputs, None),
                         _parse_status)

    @_deprecated("Use scriptexecute instead")
    def scriptrun(self, key: KeyT, function: str, inputs: Names, outputs: Names) -> Dag:
        if self.readonly:
            raise RuntimeError("AI.SCRIPTRUN cannot be used in readonly mode")
        if not self.deprecatedDagrunMode:
            return self.scriptexecute(key, function, inputs=inputs, outputs=outputs)
        return self._add(Builder.scriptrun(key, function, inputs, outputs), _parse_status)

    @_deprecated("Use execute instead")
    def run(self):
        return self.execute()

    def _send(self):
        """The command (without the last '|>'), sent with the ops' parsers."""
        if not self.enable_postprocess:
            return self.executor(*self.commands[:-1])
        return self.executor(*self.commands[:-1], **{REPLY_OPTION: "dag", NEVER_DECODE: [],
                                                     "dag_ops": list(self.result_processors)})

    def _check(self, results, raise_on_error: bool):
        if raise_on_error and self.enable_postprocess and isinstance(results, list):
            for result in results:
                if isinstance(result, ResponseError):
                    raise result
        return results

    def execute(self, raise_on_error: bool = True):
        """Sends the DAG; the list of its ops' replies ('TIMEDOUT' if the DAG timed out). An op's
        error is raised as a ResponseError, or with raise_on_error=False left in the list (ops
        not run after it answer 'NA')."""
        return self._check(self._send(), raise_on_error)


AICommandsMixin._dag_class = Dag


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


class Client(AICommandsMixin, redis.Redis):
    """A redis.Redis with RedisAI's commands, as redisai-py 1.3's Client:
    ``Client(debug=False, enable_postprocess=True, *args, **kwargs)``.

    ``debug`` prints every command sent; ``enable_postprocess=False`` returns the server's
    replies as redis-py reads them (not for pipelines and DAGs, as in redisai-py). Other
    arguments are redis.Redis's (after those two when positional); the protocol defaults to RESP2.
    """

    def __init__(self, debug: bool = False, enable_postprocess: bool = True, *args, **kwargs):
        if "connection_pool" not in kwargs:
            kwargs.setdefault("protocol", 2)
        super().__init__(*args, **kwargs)
        setup_client(self, self.response_callbacks, debug, enable_postprocess)

    @classmethod
    def from_url(cls, url: str, *, debug: bool = False, enable_postprocess: bool = True,
                 **kwargs) -> Client:
        """A client configured from a redis:// URL (RESP2 unless the URL or kwargs say)."""
        return _from_url(cls, redis.ConnectionPool, url, debug, enable_postprocess, kwargs)

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
    single_connection_client = kwargs.pop("single_connection_client", False)
    client = cls(connection_pool=pool_class.from_url(url, **kwargs),
                 single_connection_client=single_connection_client, debug=debug,
                 enable_postprocess=enable_postprocess)
    client.auto_close_connection_pool = True
    return client
