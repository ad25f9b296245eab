"""The DAG builder: AI.DAGEXECUTE's operations queued in one command."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from redis.client import NEVER_DECODE
from redis.exceptions import ResponseError

from .commands import AICommandsMixin, Builder
from .replies import _parse_status, _parse_tensor
from .tables import DAGRUN_WARNING, KeyT, Names, REPLY_OPTION, _DEPRECATED_DAG_ERROR, _deprecated


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
