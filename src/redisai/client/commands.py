"""The commands' arguments (`Builder`, the only place that knows their syntax) and the methods that send
them (`AICommandsMixin`, shared by the client, its pipelines and the cluster clients)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from redis.client import NEVER_DECODE

from .tables import (ALLOWED_BACKENDS, ALLOWED_DEVICES, Blob, KeyT, MODEL_CHUNK_SIZE, Names, REPLY_OPTION,
                     _deprecated, _flatten, _nested_shape, _rai_dtype, listify, numpy2blob)

if TYPE_CHECKING:  # dag.py builds on this module
    from .dag import Dag


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
