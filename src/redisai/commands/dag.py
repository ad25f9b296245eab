"""AI.DAGEXECUTE / AI.DAGEXECUTE_RO and the deprecated AI.DAGRUN / AI.DAGRUN_RO."""

from __future__ import annotations

from .. import keyspace, reply
from ..domain.tensor import parse_integer
from ..errors import RedisAIError, err
from ..execution import blocking, queues
from ..execution.dag import DagRun, Op
from . import model as model_commands
from . import runs
from . import script as script_commands
from .request import Request, reply_failure
from .tensor import parse_tensorget_format, parse_tensorset

SEPARATOR = b"|>"


class DagParser:
    def __init__(self, req: Request, deprecated: bool, readonly: bool):
        self.req = req
        self.deprecated = deprecated
        self.readonly = readonly
        self.command = req.args[0].decode(errors="replace").upper()
        self.slots: list = []
        self.names: dict[bytes, int] = {}  # DAG-local tensor name -> its latest slot
        self.ops: list[Op] = []
        self.persist: list[bytes] = []
        self.timeout = 0

    def _new_slot(self, name: bytes, tensor=None) -> int:
        self.slots.append(tensor)
        self.names[name] = len(self.slots) - 1
        return self.names[name]

    def _slot_of(self, name: bytes) -> int:
        if name not in self.names:
            raise err("INPUT key cannot be found in DAG")
        return self.names[name]

    def _counted(self, args: list[bytes], i: int, what: str) -> tuple[list[bytes], int]:
        if i + 2 >= len(args):  # as RedisAI: the keyword, a count and at least one name
            raise err(f"missing arguments after {what} keyword in DAG command")
        count = parse_integer(args[i + 1])
        if count is None or count <= 0:
            raise err(f"invalid or negative value found in number of keys to {what}")
        keys = args[i + 2:i + 2 + count]
        if len(keys) < count or SEPARATOR in keys:
            raise err("number of keys to LOAD into DAG does not match the number of given arguments" if what == "LOAD"
                      else "number of keys to PERSIST after DAG execution does not match the number of given arguments")
        return keys, i + 2 + count

    def parse(self) -> None:
        args = self.req.args
        i, seen = 1, set()
        while i < len(args) and args[i] != SEPARATOR:
            token = args[i].upper()
            if token in seen:
                raise err(f"Invalid DAG command. Unexpected argument:  {args[i].decode(errors='replace')}")
            seen.add(token)
            if token == b"LOAD":
                keys, i = self._counted(args, i, "LOAD")
                for name, tensor in zip(keys, model_commands.read_tensors(self.req.ctx, keys)):
                    self._new_slot(name, tensor)
            elif token == b"PERSIST":
                if self.readonly:
                    raise err("PERSIST cannot be specified in a read-only DAG")
                self.persist, i = self._counted(args, i, "PERSIST")
                if len(set(self.persist)) != len(self.persist):
                    raise err("PERSIST keys must be unique")
            elif token == b"ROUTING":
                if i + 1 >= len(args) or args[i + 1] == SEPARATOR:
                    raise err("Missing ROUTING value")
                i += 2
            elif token == b"TIMEOUT":
                if i + 1 >= len(args) or args[i + 1] == SEPARATOR:
                    raise err("No value provided for TIMEOUT")
                self.timeout = model_commands.parse_timeout(args, i)
                i += 2
            else:
                raise err(f"Invalid DAG command. Unexpected argument:  {args[i].decode(errors='replace')}")
        if not self.deprecated and not seen & {b"LOAD", b"PERSIST", b"ROUTING"}:
            raise err("AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, "
                      "PERSIST keywords")
        ops = []
        while i < len(args):  # args[i] is a separator; list.index finds the next without a Python loop
            try:
                end = args.index(SEPARATOR, i + 1)
            except ValueError:
                end = len(args)
            if end > i + 1:
                ops.append(args[i + 1:end])
            i = end
        if not ops:
            raise err("DAG is empty")
        for tokens in ops:
            self._parse_op(tokens)
        for name in self.persist:
            if name not in self.names:
                raise err("PERSIST key cannot be found in DAG")

    def _parse_op(self, tokens: list[bytes]) -> None:
        name = tokens[0].upper()
        if name == b"AI.TENSORSET":
            if len(tokens) < 3:
                raise err("wrong number of arguments for 'AI.TENSORSET' command")
            tensor = parse_tensorset(tokens, start=2)
            self.ops.append(Op("set", outputs=[self._new_slot(tokens[1], tensor)]))
        elif name == b"AI.TENSORGET":
            if not 2 <= len(tokens) <= 4:
                raise err("wrong number of arguments for 'AI.TENSORGET' command")
            self.ops.append(Op("get", inputs=[self._slot_of(tokens[1])], get_format=parse_tensorget_format(tokens[2:])))
        elif name in (b"AI.MODELEXECUTE", b"AI.MODELRUN"):
            self._model_op(name, tokens)
        elif name in (b"AI.SCRIPTEXECUTE", b"AI.SCRIPTRUN"):
            self._script_op(name, tokens)
        else:
            raise RedisAIError("Unsupported command within DAG")

    def _check_form(self, name: bytes) -> None:
        deprecated_op = name in (b"AI.MODELRUN", b"AI.SCRIPTRUN")
        if deprecated_op and not self.deprecated:
            raise RedisAIError(f"Deprecated {name.decode()} cannot be used in AI.DAGEXECUTE command")
        if not deprecated_op and self.deprecated:
            raise RedisAIError(f"{name.decode()} cannot be used in a deprecated AI.DAGRUN command")

    def _lookup(self, kind: str, tokens: list[bytes]):
        if len(tokens) < 2:
            raise err(f"wrong number of arguments for '{tokens[0].decode(errors='replace').upper()}' command")
        value = keyspace.read(self.req.ctx, tokens[1], kind)
        if value is None:
            raise err(f"{kind} key is empty")
        return value

    def _model_op(self, name: bytes, tokens: list[bytes]) -> None:
        self._check_form(name)
        model = self._lookup("model", tokens)
        if b"TIMEOUT" in [t.upper() for t in tokens if len(t) == 7]:
            raise err("TIMEOUT not allowed within a DAG command")
        parse = model_commands.parse_modelexecute if name == b"AI.MODELEXECUTE" else model_commands.parse_modelrun
        if len(tokens) < 3:
            raise err("INPUTS not specified")
        inputs, outputs, _ = parse(tokens, model)
        op = Op("model", inputs=[self._slot_of(n) for n in inputs], target=model)
        op.outputs = [self._new_slot(n) for n in outputs]
        self.ops.append(op)

    def _script_op(self, name: bytes, tokens: list[bytes]) -> None:
        self._check_form(name)
        if self.readonly:
            raise err(f"{name.decode()} command cannot be specified in a read-only DAG")
        script = self._lookup("script", tokens)
        if len(tokens) < 3:
            raise err("function name not specified")
        function = tokens[2].decode(errors="replace")
        if name == b"AI.SCRIPTEXECUTE":
            scopes, _, stop = script_commands.parse_scriptexecute_scopes(tokens, 3, in_dag=True)
            if stop < len(tokens):
                raise err(f"Invalid AI.SCRIPTEXECUTE command. Unexpected argument: {tokens[stop].decode(errors='replace')}")
            script_commands.check_function(script, function)
            inputs, outputs, variadic = scopes.get(b"INPUTS", []), scopes.get(b"OUTPUTS", []), None
            keys = [k.decode(errors="replace") for k in scopes.get(b"KEYS", [])]
            extra = [a.decode(errors="replace") for a in scopes.get(b"ARGS", [])]
        else:
            inputs, outputs, variadic, _ = script_commands.parse_scriptrun(tokens, in_dag=True)
            keys, extra = [], []
        op = Op("script", inputs=[self._slot_of(n) for n in inputs], target=script, function=function,
                keys=keys, args=extra, variadic_from=variadic)
        op.outputs = [self._new_slot(n) for n in outputs]
        self.ops.append(op)


def _execute(req: Request, deprecated: bool, readonly: bool) -> None:
    command = req.args[0].decode(errors="replace").upper()
    if deprecated and len(req.args) < 4:
        return reply.error(req.ctx, f"ERR wrong number of arguments for '{command}' command".encode())
    if not deprecated and len(req.args) < 6:
        return reply.error(req.ctx, f"ERR missing arguments for '{command}' command".encode())
    if not blocking.can_block(req.ctx):
        raise err(model_commands.IN_TRANSACTION)
    parser = DagParser(req, deprecated, readonly)
    parser.parse()
    persist = [(name, parser.names[name]) for name in parser.persist]
    run = DagRun(parser.ops, parser.slots, parser.timeout, persist, command)
    for device in {op.target.device for op in run.ops if op.kind in ("model", "script")}:
        model_commands.admitting_queue(device)
    runs.start(req.ctx, run)


# The op codes of module/dagpath.c's ops, and its TENSORGET formats (by meta * 3 + data, data None, BLOB
# or VALUES: parse_tensorget_format's replies).
OP_SET, OP_GET, OP_MODEL = 0, 1, 2
FORMATS = tuple((meta, data) for meta in (False, True) for data in (None, b"BLOB", b"VALUES"))


def submit_resolved_dag(ctx: int, slots: list, ops: tuple, persist: tuple, timeout_ms: int) -> bool:
    """AI.DAGEXECUTE's fast path (module/dagpath.c): C has parsed the common grammar into slots and ops,
    made the TENSORSET ops' tensors and read the LOAD and model keys. Runs the DAG as `_execute` would,
    or returns False, having changed nothing, for anything the general path answers otherwise (a
    model that failed to load or counts that do not match its definition, a client that cannot block,
    a full queue), so that it gives its own reply. What it raises is answered as on_command answers it
    (request.reply_failure)."""
    try:
        if not blocking.can_block(ctx):
            return False
        parsed = []
        for op in ops:
            if op[0] == OP_MODEL:
                model, inputs, outputs = op[1], op[2], op[3]
                if not model_commands.runs_as_given(model, len(inputs), len(outputs)) or queues.get(model.device).full():
                    return False
                parsed.append(Op("model", inputs=list(inputs), outputs=list(outputs), target=model))
            elif op[0] == OP_GET:
                parsed.append(Op("get", inputs=[op[1]], get_format=op[2]))
            else:
                parsed.append(Op("set", outputs=[op[1]]))
        runs.start(ctx, DagRun(parsed, slots, timeout_ms, persist))
    except Exception as e:
        reply_failure(ctx, "AI.DAGEXECUTE", e)
    return True


def dagexecute(req: Request) -> None:
    _execute(req, deprecated=False, readonly=False)


def dagexecute_ro(req: Request) -> None:
    _execute(req, deprecated=False, readonly=True)


def dagrun(req: Request) -> None:
    _execute(req, deprecated=True, readonly=False)


def dagrun_ro(req: Request) -> None:
    _execute(req, deprecated=True, readonly=True)
