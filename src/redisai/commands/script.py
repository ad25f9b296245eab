"""AI.SCRIPTSTORE / SCRIPTSET / SCRIPTGET / SCRIPTDEL / SCRIPTEXECUTE / SCRIPTRUN."""

from __future__ import annotations


from .. import reply
from ..backends.base import Device
from ..domain.script import Script
from ..domain.tensor import parse_integer
from ..errors import err
from ..execution.dag import OneOpRun
from ..execution.jobs import ScriptLoadJob, ScriptRunJob
from ..persistence.commands import scriptstore_args
from .model import admitting_queue, can_run, parse_timeout, read_tensors
from . import runs, stored
from .request import Request


def _tag(args: list[bytes], i: int) -> tuple[bytes, int]:
    if i < len(args) and args[i].upper() == b"TAG" and i + 1 < len(args):
        return args[i + 1], i + 2
    return b"", i


def parse_scriptstore(args: list[bytes]) -> Script:
    device = args[2].decode(errors="replace")
    tag, i = _tag(args, 3)
    if i >= len(args) or args[i].upper() != b"ENTRY_POINTS":
        raise err("Insufficient arguments, missing script entry points")
    count = parse_integer(args[i + 1]) if i + 1 < len(args) else None
    if count is None or count < 0:
        raise err("Non numeric entry points number provided to AI.SCRIPTSTORE command")
    names = args[i + 2:i + 2 + count]
    if len(names) < count or any(name.upper() == b"SOURCE" for name in names):
        raise err("Insufficient arguments, missing script entry points")
    i += 2 + count
    if i >= len(args) or args[i].upper() != b"SOURCE" or i + 1 >= len(args):
        raise err("Insufficient arguments, missing script SOURCE")
    return Script(device, tag, args[i + 1], [n.decode(errors="replace") for n in names])


def parse_scriptset(args: list[bytes]) -> Script:
    device = args[2].decode(errors="replace")
    tag, i = _tag(args, 3)
    if i >= len(args) or args[i].upper() != b"SOURCE" or i + 1 >= len(args):
        raise err("Insufficient arguments, missing script SOURCE")
    return Script(device, tag, args[i + 1], None)


def _check_device(script: Script) -> None:
    if not Device.valid(script.device):
        raise err("Error configuring script: unsupported device")


SCRIPT = stored.Kind(
    "script",
    load_job=ScriptLoadJob,
    store_command=lambda script: (b"AI.SCRIPTSTORE" if script.entry_points is not None else b"AI.SCRIPTSET",
                                  scriptstore_args(script.key_name, script)),
)


def _store(req: Request, parse, arity_ok) -> None:
    if not arity_ok(len(req.args)):
        return req.wrong_arity()
    stored.check_writable(req, SCRIPT)
    script = parse(req.args)
    _check_device(script)
    stored.store(req, SCRIPT, script)


def scriptstore(req: Request) -> None:
    _store(req, parse_scriptstore, lambda n: n >= 8)


def scriptset(req: Request) -> None:
    _store(req, parse_scriptset, lambda n: n in (5, 7))


def get_script(req: Request) -> Script:
    return stored.lookup(req, SCRIPT)


def scriptget(req: Request) -> None:
    if not 2 <= len(req.args) <= 4:
        return req.wrong_arity()
    script = get_script(req)
    options = {token.upper() for token in req.args[2:]}
    meta = b"META" in options or b"SOURCE" not in options
    source = b"SOURCE" in options or b"META" not in options
    if not meta:
        return reply.bulk(req.ctx, script.source)
    fields = [b"device", script.device, b"tag", script.tag, b"Entry Points", script.entry_points or []]
    if source:
        fields += [b"source", script.source]
    reply.value(req.ctx, fields)


def scriptdel(req: Request) -> None:
    stored.delete(req, SCRIPT)


# ------------------------------------------------------------------ execution

_SCOPES = (b"KEYS", b"INPUTS", b"ARGS", b"OUTPUTS")


def _check_keys_scope(args: list[bytes], i: int) -> None:
    """RedisAI's checks of `KEYS <n> <key>...` at args[i] (ValidateKeysArgs): a count and at least one
    key, a positive count, and that many keys."""
    remaining = len(args) - i
    if remaining < 3:
        raise err("Missing arguments after KEYS keyword")
    count = parse_integer(args[i + 1])
    if count is None or count <= 0:
        raise err("Invalid or negative value found in number of KEYS")
    if 2 + count > remaining:
        raise err("Number of pre declared KEYS to be used in the command does not match the number of given arguments")


def parse_scriptexecute_scopes(args: list[bytes], i: int, in_dag: bool = False) -> tuple[dict, int, int]:
    """Scopes from args[i:]: {b"KEYS": [...], ...}, the TIMEOUT (0 if none) and where parsing stopped."""
    scopes: dict[bytes, list[bytes]] = {}
    timeout = 0
    if not in_dag and (i >= len(args) or args[i].upper() not in (b"KEYS", b"INPUTS")):
        raise err("KEYS or INPUTS scope must be provided first for AI.SCRIPTEXECUTE command")
    while i < len(args):
        token = args[i].upper()
        if token in _SCOPES:
            if token in scopes:
                raise err(f"Already Encountered {token.decode()} scope in AI.SCRIPTEXECUTE command")
            if token == b"KEYS":
                _check_keys_scope(args, i)
            if i + 1 >= len(args):
                raise err("Missing arguments after KEYS keyword" if token == b"KEYS"
                          else "Invalid arguments provided to AI.SCRIPTEXECUTE")
            count = parse_integer(args[i + 1])
            what = token.decode().lower()
            if count is None or count < 0:
                raise err("Invalid or negative value found in number of KEYS" if token == b"KEYS"
                          else f"Invalid argument for {what} count in AI.SCRIPTEXECUTE")
            values = args[i + 2:i + 2 + count]
            if len(values) < count:
                raise err("Number of pre declared KEYS to be used in the command does not match the number of given arguments"
                          if token == b"KEYS" else
                          f"number of {what} to AI.SCRIPTEXECUTE command does not match the number of given arguments")
            scopes[token] = values
            i += 2 + count
        elif token == b"TIMEOUT":
            if in_dag:
                raise err("TIMEOUT not allowed within a DAG command")
            timeout = parse_timeout(args, i, " in AI.SCRIPTEXECUTE")
            i += 2
            if i < len(args):
                raise err(f"Invalid AI.SCRIPTEXECUTE command. Unexpected argument: {args[i].decode(errors='replace')}")
        else:
            if in_dag:
                break
            raise err(f"Invalid AI.SCRIPTEXECUTE command. Unexpected argument: {args[i].decode(errors='replace')}")
    return scopes, timeout, i


def check_function(script: Script, function: str) -> None:
    if script.runtime.error is not None:
        raise err(f"script could not be loaded: {script.runtime.error}")
    if script.entry_points is not None and function not in script.entry_points:
        raise err(f"Function {function} is not an entry point of the script")


def scriptexecute(req: Request) -> None:
    args = req.args
    if not can_run(req, 4, "AI.SCRIPTEXECUTE"):
        return
    script = get_script(req)
    function = args[2].decode(errors="replace")
    scopes, timeout, _ = parse_scriptexecute_scopes(args, 3)
    check_function(script, function)
    inputs = read_tensors(req.ctx, scopes.get(b"INPUTS", []))
    outputs = scopes.get(b"OUTPUTS", [])
    job = ScriptRunJob(script, function, inputs, [k.decode(errors="replace") for k in scopes.get(b"KEYS", [])],
                       [a.decode(errors="replace") for a in scopes.get(b"ARGS", [])],
                       len(outputs) if outputs or script.entry_points is not None else None, timeout)
    runs.start(req.ctx, OneOpRun(job, admitting_queue(script.device), outputs, "AI.SCRIPTEXECUTE"))


def parse_scriptrun(args: list[bytes], start: int = 3, in_dag: bool = False):
    """`[TIMEOUT t] INPUTS in... [$ in...] OUTPUTS out...`: (inputs, outputs, variadic_from, timeout)."""
    inputs: list[bytes] = []
    outputs: list[bytes] = []
    variadic_from = None
    timeout = 0
    scope = None
    seen = set()
    i = start
    while i < len(args):
        token = args[i].upper()
        if token == b"INPUTS":
            if b"INPUTS" in seen:
                raise err("Already encountered an INPUTS section in SCRIPTRUN")
            seen.add(b"INPUTS")
            scope = inputs
        elif token == b"OUTPUTS":
            if b"OUTPUTS" in seen:
                raise err("Already encountered an OUTPUTS keyword in SCRIPTRUN")
            seen.add(b"OUTPUTS")
            scope = outputs
        elif token == b"TIMEOUT" and scope is None:
            if in_dag:
                raise err("TIMEOUT not allowed within a DAG command")
            if b"TIMEOUT" in seen:
                raise err("Already encountered an TIMEOUT section in SCRIPTRUN")
            seen.add(b"TIMEOUT")
            timeout = parse_timeout(args, i)
            i += 1
        elif token == b"$":
            if scope is not inputs:
                raise err("Encountered a variable size list of tensors outside of input section")
            if variadic_from is not None:
                raise err("Already encountered a variable size list of tensors")
            variadic_from = len(inputs)
        elif scope is None:
            raise err("Unrecongnized parameter to SCRIPTRUN")
        else:
            scope.append(args[i])
        i += 1
    return inputs, outputs, variadic_from, timeout


def scriptrun(req: Request) -> None:
    args = req.args
    if not can_run(req, 3, "AI.SCRIPTRUN"):
        return
    script = get_script(req)
    function = args[2].decode(errors="replace")
    if not function or function.upper() in ("INPUTS", "OUTPUTS", "TIMEOUT"):
        raise err("function name not specified")
    input_names, outputs, variadic_from, timeout = parse_scriptrun(args)
    if script.runtime.error is not None:
        raise err(f"script could not be loaded: {script.runtime.error}")
    inputs = read_tensors(req.ctx, input_names)
    job = ScriptRunJob(script, function, inputs, [], [], len(outputs), timeout, variadic_from)
    runs.start(req.ctx, OneOpRun(job, admitting_queue(script.device), outputs, "AI.SCRIPTRUN"))
