"""Every AI.* command, in one table: its handler, its Redis flags and where its keys are (for ACL and
Cluster), and its ACL categories.

Commands whose keys depend on their arguments use Redis's getkeys API; `keys_of` computes the
positions from the same grammar as the parsers (never raising on malformed input: Redis calls it
before the command runs, also for commands that will fail).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..domain.model import Model
from ..domain.script import Script
from . import dag, info, model, script, tensor


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Callable  # Request -> None: parses, runs and replies (or blocks the client)
    flags: str
    first_key: int
    last_key: int
    key_step: int
    keys_of: Callable[[list[bytes]], list[int]] | None = None  # getkeys-api commands only
    c_entry: str = "RedisAI_Command"  # the shim's command callback (module/shim.h)


def _upper(token: bytes) -> bytes:
    return token.upper()


def _counted(args: list[bytes], at: int) -> tuple[list[int], int]:
    """Positions of `<n> key...` starting at the count `args[at]`; returns (positions, next index)."""
    try:
        count = int(args[at])
    except (IndexError, ValueError):
        return [], at + 1
    count = max(0, min(count, len(args) - at - 1))
    return list(range(at + 1, at + 1 + count)), at + 1 + count


def modelexecute_keys(args: list[bytes]) -> list[int]:
    keys = [1] if len(args) > 1 else []
    i = 2
    while i < len(args):
        token = _upper(args[i])
        if token in (b"INPUTS", b"OUTPUTS"):
            found, i = _counted(args, i + 1)
            keys += found
        else:
            i += 1
    return keys


def modelrun_keys(args: list[bytes]) -> list[int]:
    keys = [1] if len(args) > 1 else []
    in_scope = False
    for i in range(2, len(args)):
        token = _upper(args[i])
        if token in (b"INPUTS", b"OUTPUTS"):
            in_scope = True
        elif token == b"TIMEOUT" and not in_scope:
            continue
        elif in_scope and token != b"$":
            keys.append(i)
    return keys


def scriptexecute_keys(args: list[bytes]) -> list[int]:
    keys = [1] if len(args) > 1 else []
    i = 3
    while i < len(args):
        token = _upper(args[i])
        if token in (b"KEYS", b"INPUTS", b"OUTPUTS"):
            found, i = _counted(args, i + 1)
            keys += found
        elif token == b"ARGS":
            _, i = _counted(args, i + 1)
        else:
            i += 1
    return keys


def scriptrun_keys(args: list[bytes]) -> list[int]:
    keys = [1] if len(args) > 1 else []
    in_scope = False
    skip_next = False
    for i in range(3, len(args)):
        token = _upper(args[i])
        if skip_next:
            skip_next = False
        elif token == b"TIMEOUT" and not in_scope:
            skip_next = True
        elif token in (b"INPUTS", b"OUTPUTS"):
            in_scope = True
        elif in_scope and token != b"$":
            keys.append(i)
    return keys


def dag_keys(args: list[bytes]) -> list[int]:
    """LOAD/PERSIST keys and ROUTING in the header; each op's model or script key."""
    keys: list[int] = []
    i = 1
    while i < len(args) and args[i] != b"|>":
        token = _upper(args[i])
        if token in (b"LOAD", b"PERSIST"):
            found, i = _counted(args, i + 1)
            keys += found
        elif token == b"ROUTING" and i + 1 < len(args):
            keys.append(i + 1)
            i += 2
        else:
            i += 1
    for j in range(i, len(args) - 2):
        if args[j] == b"|>" and _upper(args[j + 1]) in (
            b"AI.MODELEXECUTE", b"AI.SCRIPTEXECUTE", b"AI.MODELRUN", b"AI.SCRIPTRUN"
        ):
            keys.append(j + 2)
            if _upper(args[j + 1]) == b"AI.SCRIPTEXECUTE":
                keys += _script_op_keys(args, j + 4)
    return keys


def _script_op_keys(args: list[bytes], i: int) -> list[int]:
    """The KEYS of a DAG's AI.SCRIPTEXECUTE op whose scopes start at args[i]: the keys its script may
    touch with redis.execute, so they are the DAG's keys too (ACL, Cluster)."""
    end = args.index(b"|>", i) if b"|>" in args[i:] else len(args)
    keys: list[int] = []
    while i < end:
        token = _upper(args[i])
        if token in (b"KEYS", b"INPUTS", b"ARGS", b"OUTPUTS"):
            found, i = _counted(args[:end], i + 1)
            if token == b"KEYS":
                keys += found
        else:
            i += 1
    return keys


_W = "write deny-oom"
COMMANDS = [
    CommandSpec("ai.tensorset", tensor.tensorset, _W + " fast", 1, 1, 1, c_entry="RedisAI_TensorSetCommand"),
    CommandSpec("ai.tensorget", tensor.tensorget, "readonly fast", 1, 1, 1, c_entry="RedisAI_TensorGetCommand"),
    CommandSpec("ai.modelset", model.modelset, _W, 1, 1, 1),
    CommandSpec("ai.modelstore", model.modelstore, _W, 1, 1, 1),
    CommandSpec("ai.modelget", model.modelget, "readonly", 1, 1, 1),
    CommandSpec("ai.modeldel", model.modeldel, "write fast", 1, 1, 1),
    CommandSpec("ai.modelrun", model.modelrun, _W + " getkeys-api", 1, 1, 1, modelrun_keys),
    CommandSpec("ai.modelexecute", model.modelexecute, _W + " getkeys-api", 1, 1, 1, modelexecute_keys,
                c_entry="RedisAI_ModelExecuteCommand"),
    CommandSpec("ai._modelscan", info.scan(Model), "readonly", 0, 0, 0),
    CommandSpec("ai.scriptset", script.scriptset, _W, 1, 1, 1),
    CommandSpec("ai.scriptstore", script.scriptstore, _W, 1, 1, 1),
    CommandSpec("ai.scriptget", script.scriptget, "readonly", 1, 1, 1),
    CommandSpec("ai.scriptdel", script.scriptdel, "write fast", 1, 1, 1),
    CommandSpec("ai.scriptrun", script.scriptrun, _W + " getkeys-api", 1, 1, 1, scriptrun_keys),
    CommandSpec("ai.scriptexecute", script.scriptexecute, _W + " getkeys-api", 1, 1, 1, scriptexecute_keys),
    CommandSpec("ai._scriptscan", info.scan(Script), "readonly", 0, 0, 0),
    CommandSpec("ai.info", info.info, "readonly", 1, 1, 1),
    CommandSpec("ai.config", info.configure, "write", 0, 0, 0),
    CommandSpec("ai.dagrun", dag.dagrun, _W + " getkeys-api", 0, 0, 0, dag_keys),
    CommandSpec("ai.dagexecute", dag.dagexecute, _W + " getkeys-api", 0, 0, 0, dag_keys,
                c_entry="RedisAI_DagExecuteCommand"),
    CommandSpec("ai.dagrun_ro", dag.dagrun_ro, "readonly getkeys-api", 0, 0, 0, dag_keys),
    CommandSpec("ai.dagexecute_ro", dag.dagexecute_ro, "readonly getkeys-api", 0, 0, 0, dag_keys,
                c_entry="RedisAI_DagExecuteReadonlyCommand"),
]


# What loads code into the server (a model or script is a program; see the README's Security section).
LOADS_CODE = frozenset({"ai.modelset", "ai.modelstore", "ai.scriptset", "ai.scriptstore"})
ACL_CATEGORY = "ai"


def acl_categories(spec: CommandSpec) -> str:
    """The command's ACL categories on servers that let a module set them (Redis 7.2+, Valkey): `@ai` for
    every AI.* command, `@read` or `@write` and `@fast` or `@slow` as its flags say, and `@dangerous`
    for the commands that load code and for AI.CONFIG, so that `-@dangerous` keeps them from an
    application user."""
    flags = spec.flags.split()
    categories = [ACL_CATEGORY, "write" if "write" in flags else "read", "fast" if "fast" in flags else "slow"]
    if spec.name in LOADS_CODE or spec.name == "ai.config":
        categories.append("dangerous")
    return " ".join(categories)
