"""What TorchScript a client stores may run: one allow-list for models and scripts.

A TorchScript archive is a program: `torch.jit.load` compiles the source in its `code/` folder and runs
the `__setstate__` methods it defines while it unpickles the weights, and every call of the model runs
whatever operators its methods name. So the check has two halves, both before anything of the model runs:

- `check_archive(blob)`, before `torch.jit.load`: the archive's source, read as Python syntax (`ast`,
  which parses and runs nothing), names no refused operator, operator namespace or custom class. This
  is what keeps `__setstate__` (run during the load) harmless.
- `check_compiled(unit)`, after the load or a script's compile and before the first run: every graph of
  every function and method in the compilation unit (submodules, TorchScript classes, nested blocks of
  `prim::If`/`prim::Loop`, closures and forked subgraphs) holds only allowed operators and types.

The allow-list, and how it was derived:
- operators of the `aten`, `prim` and `quantized` namespaces (what computes on tensors and values;
  torch 2.13 registers 3,754 `aten`, 128 `prim` and 174 `quantized` schemas); `redis::` and
  `redisAI::` (backends/torch_redis.py) in scripts only. Every other namespace (`c10d` and
  `_c10d_functional`: the network; `profiler`, `inductor`, `mkldnn`, `static_runtime`, ...) is refused;
- less the operators of those namespaces whose schema takes a string argument naming a file
  (`_operators_naming_files`, computed from `torch._C._jit_get_all_schemas()`: in torch 2.13 that is
  `aten::from_file` and `aten::save`);
- less the nodes that have no schema and leave the process: `prim::PythonOp` (a call into Python) and
  the `prim::rpc_*` family (torch.distributed.rpc: the network);
- custom C++ classes (`__torch__.torch.classes.<namespace>.*`) only from the `quantized` and `rnn`
  namespaces: the packed weights of quantized layers (Linear, Conv, Embedding; `rnn.CellParamsBase` of
  quantized LSTM/GRU cells). Those of `c10d`, `dist_rpc`, `profiler`, `mkldnn` and `sparse` are refused.
"""

from __future__ import annotations

import ast
import functools
import io
import pickletools
import re
import zipfile

from .base import BackendError
# torch.export programs: torch_export_ops.py checks them; these names stay for this module's callers.
from .torch_export_ops import check_archive as check_exported_archive  # noqa: F401
from .torch_export_ops import check_program_graph as check_exported_program  # noqa: F401
from .torch_export_ops import exported_program_archive  # noqa: F401

ALLOWED_NAMESPACES = frozenset({"aten", "prim", "quantized"})
SCRIPT_EXTENSIONS = frozenset({"redis", "redisAI"})  # backends/torch_redis.py: redis.execute is no exec
CUSTOM_CLASS_NAMESPACES = frozenset({"quantized", "rnn"})  # packed weights of quantized layers
# No schema to derive them from; each leaves the process: a call back into Python, the RPC framework.
LEAVE_THE_PROCESS = frozenset({"prim::PythonOp", "prim::rpc_async", "prim::rpc_sync", "prim::rpc_remote"})

_FILE_ARGUMENT = re.compile(r"file|path|dir", re.IGNORECASE)
_STRING_TYPES = ("str", "Optional[str]", "List[str]")
_CUSTOM_CLASS = re.compile(r"__torch__\.torch\.classes\.(\w+)\.(\w+)")
FLATBUFFER_MAGIC = b"PTMF"  # torch's other module format (bytes 4-8), which holds no source to check
NOT_AN_ARCHIVE = "PytorchStreamReader failed reading zip archive: failed finding central directory"
MAX_SOURCE_BYTES = 64 << 20  # per source file; BERT's largest is a few KB


@functools.cache
def _operators_naming_files() -> frozenset[str]:
    """The allowed namespaces' operators with a string argument named like a file or path."""
    import torch

    found = set()
    for schema in torch._C._jit_get_all_schemas():
        namespace = schema.name.partition("::")[0]
        if namespace in ALLOWED_NAMESPACES and any(
                str(argument.type) in _STRING_TYPES and _FILE_ARGUMENT.search(argument.name)
                for argument in schema.arguments):
            found.add(schema.name)
    return frozenset(found)


@functools.cache
def refused_operators() -> frozenset[str]:
    return _operators_naming_files() | LEAVE_THE_PROCESS


@functools.cache
def _refused_names() -> dict[str, str]:
    """Bare names of the refused operators, as they appear in TorchScript source (`torch.from_file`,
    `ops.aten.save`, `t.save(...)`), to the operator's qualified name."""
    return {operator.partition("::")[2]: operator for operator in refused_operators()}


def _refusal(operator: str, kind: str, where: str) -> BackendError:
    return BackendError(f"Operator {operator} is not allowed in a {kind} ({where})")


def _class_refusal(name: str, kind: str, where: str) -> BackendError:
    return BackendError(f"Custom class torch.classes.{name} is not allowed in a {kind} ({where})")


# ------------------------------------------------------------------ before torch.jit.load

def check_archive(blob: bytes, kind: str = "model") -> None:
    """Refuses an archive whose source names a refused operator, namespace or custom class, before
    torch reads any of it. Only archives Python's zipfile reads the same way as torch's reader pass:
    no duplicate names (also not by case: torch's lookup may ignore it), source read as UTF-8 Python."""
    if blob[4:8] == FLATBUFFER_MAGIC:
        raise BackendError("TorchScript flatbuffer modules are not served: save the model with torch.jit.save")
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise BackendError(NOT_AN_ARCHIVE) from None
    seen = set()
    for entry in entries:
        folded = entry.filename.lower()
        if folded in seen:
            raise BackendError(f"TorchScript archive holds {entry.filename} twice")
        seen.add(folded)
    root_class = _root_class(archive, entries)
    for entry in entries:
        if not entry.filename.lower().endswith(".py"):
            continue
        if entry.file_size > MAX_SOURCE_BYTES:  # a compressed entry may unpack to far more than the blob
            raise BackendError(f"TorchScript archive source {entry.filename} is too large to check")
        try:
            source = archive.read(entry).decode("utf-8")
            tree = ast.parse(source, filename=entry.filename)
        except (zipfile.BadZipFile, UnicodeDecodeError, SyntaxError, ValueError, OSError, EOFError) as e:
            raise BackendError(f"TorchScript archive source {entry.filename} could not be checked "
                               f"({type(e).__name__})") from None
        module = _module_name(entry.filename)
        _SourceCheck(kind, module, root_class).visit(tree)


def _module_name(path: str) -> str:
    """`archive/code/__torch__/torch/nn/functional.py` -> `__torch__.torch.nn.functional`."""
    parts = path[:-3].split("/")
    if "code" in parts:
        parts = parts[parts.index("code") + 1:]
    return ".".join(parts)


def _root_class(archive: zipfile.ZipFile, entries) -> str | None:
    """The class of the archive's root module: the first GLOBAL of data.pkl, read opcode by opcode
    (pickletools only decodes; nothing is unpickled)."""
    data = next((entry for entry in entries if entry.filename.endswith("/data.pkl")), None)
    if data is None:
        return None
    try:
        for opcode, argument, _ in pickletools.genops(archive.read(data)):
            if opcode.name == "GLOBAL":
                module, _, name = str(argument).partition(" ")
                return f"{module}.{name}"
    except Exception:  # a malformed pickle: torch's own unpickler will refuse it
        return None
    return None


def _name_of(node) -> str | None:
    """`ops` for `ops` and `torch.ops`: the last name of a dotted reference."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


class _SourceCheck(ast.NodeVisitor):
    """Walks one source file of the archive, knowing which function each name sits in."""

    def __init__(self, kind: str, module: str, root_class: str | None):
        self.kind = kind
        self.module = module
        self.root_class = root_class
        self.scope: list[tuple[str, str]] = []  # ("class" | "function", name)

    def where(self) -> str:
        classes = [name for what, name in self.scope if what == "class"]
        functions = [name for what, name in self.scope if what == "function"]
        function = functions[0] if functions else "<module>"
        if not classes:
            return f"function {function}"
        qualified = f"{self.module}.{classes[-1]}"
        if qualified == self.root_class:
            return f"method {function}"
        return f"method {function} of {qualified.removeprefix('__torch__.')}"

    def _scoped(self, what: str, node) -> None:
        self.scope.append((what, node.name))
        self.generic_visit(node)
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped("class", node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._name(node.name)
        self._scoped("function", node)

    def visit_Name(self, node: ast.Name) -> None:
        self._name(node.id)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):  # getattr(torch, "from_file")
            self._name(node.value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._name(node.attr)
        owner = node.value
        if isinstance(owner, ast.Attribute) and _name_of(owner.value) == "ops":  # ops.<namespace>.<name>
            if owner.attr not in self._namespaces():
                raise _refusal(f"{owner.attr}::{node.attr}", self.kind, self.where())
        elif _name_of(owner) == "ops" and node.attr not in self._namespaces():
            raise _refusal(f"{node.attr}::*", self.kind, self.where())
        if isinstance(owner, ast.Attribute) and _name_of(owner.value) == "classes":  # classes.<namespace>.<name>
            if owner.attr not in CUSTOM_CLASS_NAMESPACES:
                raise _class_refusal(f"{owner.attr}.{node.attr}", self.kind, self.where())
        elif _name_of(owner) == "classes" and node.attr not in CUSTOM_CLASS_NAMESPACES:
            raise _class_refusal(f"{node.attr}.*", self.kind, self.where())
        self.generic_visit(node)

    def _namespaces(self) -> frozenset[str]:
        return ALLOWED_NAMESPACES | SCRIPT_EXTENSIONS if self.kind == "script" else ALLOWED_NAMESPACES

    def _name(self, name: str) -> None:
        operator = _refused_names().get(name)
        if operator is not None:
            raise _refusal(operator, self.kind, self.where())


# ------------------------------------------------------------------ after the load or compile

def check_compiled(unit, kind: str = "model", root_class: str | None = None) -> None:
    """Every graph of every function of a compilation unit (a loaded archive's, or a script's)."""
    namespaces = ALLOWED_NAMESPACES | SCRIPT_EXTENSIONS if kind == "script" else ALLOWED_NAMESPACES
    refused = refused_operators()
    for function in unit.get_functions():
        where = _function_where(unit, function.qualified_name, kind, root_class)
        graph = function.graph
        for value in graph.inputs():
            _check_type(value.type(), kind, where)
        for node in _nodes(graph):
            operator = node.kind()
            if operator.partition("::")[0] not in namespaces or operator in refused:
                raise _refusal(operator, kind, where)
            for value in node.outputs():
                _check_type(value.type(), kind, where)


def _nodes(block):
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from _nodes(inner)
        for name in node.attributeNames():
            attribute_kind = node.kindOf(name)
            if attribute_kind == "g":  # prim::fork's subgraph
                yield from _nodes(node.g(name))
            elif attribute_kind == "gs":
                for graph in node.gs(name):
                    yield from _nodes(graph)


def _check_type(value_type, kind: str, where: str) -> None:
    for namespace, name in _CUSTOM_CLASS.findall(str(value_type)):
        if namespace not in CUSTOM_CLASS_NAMESPACES:
            raise _class_refusal(f"{namespace}.{name}", kind, where)


def _function_where(unit, qualified: str, kind: str, root_class: str | None) -> str:
    owner, _, name = qualified.rpartition(".")
    if kind == "script" or unit.get_class(owner) is None:
        return f"function {name}"
    if owner == root_class:
        return f"method {name}"
    return f"method {name} of {owner.removeprefix('__torch__.')}"
