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
  quantized LSTM/GRU cells). Those of `c10d`, `dist_rpc`, `profiler`, `mkldnn` and `sparse` are refused;
- less what trusts its input without a check in a release build (`_memory_unsafe_operators`):
  TorchScript's interpreter reads an object's attribute by the slot index the compiler computed from the
  static type (interpreter.cpp GET_ATTR: `userObj.getSlot(inst.X)`, bounds-checked only in debug builds:
  reading slot 4,095 of a one-slot object gives a SIGSEGV or a garbage value in torch 2.13, while a write,
  setSlot, fails a release assertion), and unpacks a tuple by its static arity; tags (Tensor, int, None,
  Object, Tuple, ...) are checked in release builds (`AT_ASSERT` in IValue::to*), shapes of objects and
  tuples are not. A value reaches code with a wrong class or arity only through the two
  operators that change a static type without a run-time check, `prim::unchecked_cast` and
  `prim::unchecked_unwrap_optional` (found in the registry by their names, `_jit_get_all_schemas`, and read
  in register_prim_ops.cpp: both are no-ops at run time). `prim::unchecked_unwrap_optional` is refused (the
  compiler emits `unchecked_cast` instead); `prim::unchecked_cast` is kept where its output type follows
  from its input's: `_check_cast` (after the compile) and `_SourceCheck._cast` (in the source, before the
  load) give the rule. The other "unsafe" and "unchecked" names of the registry, tried one by one with
  out-of-range indices: `aten::_unsafe_index*` and `_unsafe_masked_index*` check or clamp their indices,
  `aten::set_`, `as_strided`, `_unsafe_view` and `_nested_view_from_buffer` check the storage's bounds;
  sparse tensors are not: their constructors do not check indices against sizes and their index
  accessors return the indices as a writable alias (`torch.sparse_coo_tensor(...).to_dense()` with an
  index past the size, or `x.to_sparse()._indices().fill_(10**9)` then `to_dense()`, or the same with a
  CSR tensor's `crow_indices()`, is a SIGSEGV; torch's sparse invariant checks are off by default), so
  every operator of sparse tensors and the index accessors are refused (`_SPARSE`: tensors stay dense).
"""

from __future__ import annotations

import ast
import dataclasses
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
# Sparse tensors: built from unchecked indices, or indices written through an accessor (module docstring).
_SPARSE = re.compile(r"aten::\w*sparse\w*|aten::_?(?:indices|crow_indices|col_indices|ccol_indices|row_indices)")
# Change a value's static type with no run-time check (see the module's docstring).
UNCHECKED_REFINEMENTS = frozenset({"prim::unchecked_unwrap_optional"})

_FILE_ARGUMENT = re.compile(r"file|path|dir", re.IGNORECASE)
_STRING_TYPES = ("str", "Optional[str]", "List[str]")
_CUSTOM_CLASS = re.compile(r"__torch__\.torch\.classes\.(\w+)\.(\w+)")
FLATBUFFER_MAGIC = b"PTMF"  # torch's other module format (bytes 4-8), which holds no source to check
NOT_AN_ARCHIVE = "PytorchStreamReader failed reading zip archive: failed finding central directory"


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
def _memory_unsafe_operators() -> frozenset[str]:
    """Operators that trust their input where a release build checks nothing (see the module's docstring)."""
    import torch

    names = {schema.name for schema in torch._C._jit_get_all_schemas()}
    return frozenset({name for name in names if _SPARSE.fullmatch(name)}) | UNCHECKED_REFINEMENTS


@functools.cache
def refused_operators() -> frozenset[str]:
    return _operators_naming_files() | LEAVE_THE_PROCESS | _memory_unsafe_operators()


@functools.cache
def _refused_names() -> dict[str, str]:
    """Bare names of the refused operators, as they appear in TorchScript source (`torch.from_file`,
    `ops.aten.save`, `t.save(...)`), to the operator's qualified name."""
    return {operator.partition("::")[2]: operator for operator in _operators_naming_files() | LEAVE_THE_PROCESS}


@functools.cache
def _refused_calls() -> dict[str, str]:
    """Bare names of the memory-unsafe operators, refused where source calls them (`x.indices()`,
    `torch.sparse_coo_tensor(...)`, `ops.prim.unchecked_unwrap_optional(...)`): as a local variable's or an
    attribute's name (`indices = ...`) they are common and harmless."""
    return {operator.partition("::")[2]: operator for operator in _memory_unsafe_operators()}


def _refusal(operator: str, kind: str, where: str) -> BackendError:
    return BackendError(f"Operator {operator} is not allowed in a {kind} ({where})")


def _class_refusal(name: str, kind: str, where: str) -> BackendError:
    return BackendError(f"Custom class torch.classes.{name} is not allowed in a {kind} ({where})")


# ------------------------------------------------------------------ before torch.jit.load

def check_archive(blob: bytes, kind: str = "model") -> None:
    """Refuses an archive whose source names a refused operator, namespace or custom class, or casts
    unchecked where nothing tested the value, before torch reads any of it. Only archives Python's zipfile
    reads the same way as torch's reader pass: no duplicate names (also not by case: torch's lookup may
    ignore it), source read as UTF-8 Python; and only archives whose entries unpack to bounded sizes
    (`_check_sizes`), since torch's reader inflates what it reads whole and `ast` takes ~450 bytes of
    memory per byte of source it parses."""
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
    _check_sizes(entries, len(blob))
    root_class = _root_class(archive, entries)
    sources = {}
    for entry in entries:
        if not entry.filename.lower().endswith(".py"):
            continue
        try:
            sources[entry.filename] = archive.read(entry).decode("utf-8")
        except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, OSError, EOFError, RuntimeError,
                NotImplementedError) as e:
            raise BackendError(f"TorchScript archive source {entry.filename} could not be checked "
                               f"({type(e).__name__})") from None
    loads_state = any("__setstate__" in source for source in sources.values())
    declared: dict[str, _Declared] = {}
    for filename, source in sources.items():
        try:
            tree = ast.parse(source, filename=filename)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            raise BackendError(f"TorchScript archive source {filename} could not be checked "
                               f"({type(e).__name__})") from None
        try:
            _SourceCheck(kind, _module_name(filename), root_class, loads_state).visit(tree)
        except RecursionError:
            raise BackendError(f"TorchScript archive source {filename} is nested too deep to check") from None
        declared.update(_declarations(tree, _module_name(filename)))
        del tree  # one file's tree at a time
    for entry in entries:
        if entry.filename.endswith("/data.pkl"):
            _PickledTypes(declared, kind).check(archive.read(entry), entry.filename)


# ------------------------------------------------------------------ the values data.pkl gives the attributes

@dataclasses.dataclass
class _Declared:
    """What a class of the archive's source declares: its attributes' types (`small : __torch__.Small`), the
    type `__setstate__` takes, the fields of a NamedTuple."""
    attributes: dict[str, ast.expr]
    state: ast.expr | None
    fields: int | None


def _declarations(tree: ast.Module, module: str) -> dict[str, _Declared]:
    found = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        attributes = {item.target.id: item.annotation for item in node.body
                      if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)}
        state = next((item.args.args[1].annotation for item in node.body if isinstance(item, ast.FunctionDef)
                      and item.name == "__setstate__" and len(item.args.args) == 2), None)
        fields = len(attributes) if any(_name_of(base) == "NamedTuple" for base in node.bases) else None
        found[f"{module}.{node.name}"] = _Declared(attributes, state, fields)
    return found


class _Object:
    def __init__(self, cls: str):
        self.cls, self.state = cls, None


class _Reduced:
    def __init__(self, function: str, arguments):
        self.function, self.arguments = function, arguments


_GLOBAL, _MARK = object(), object()
# Wrappers TorchScript's pickler puts around a list or dict: the value is their first argument.
_WRAPPERS = frozenset({"torch.jit._pickle.restore_type_tag", "torch.jit._pickle.build_intlist",
                       "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.build_doublelist",
                       "torch.jit._pickle.build_boollist", "torch.jit._pickle.build_list", "collections.OrderedDict"})


class _PickledTypes:
    """TorchScript's loader sets each attribute to the value data.pkl gives it, and hands a class's pickled
    state to its `__setstate__`, without checking either against the declared type: an Optional[Big]
    attribute given a Small object passes every check of the code (`unchecked_cast` of Optional[Big] to Big
    is sound) and a run reads slot 4,095 of a one-slot object (SIGSEGV). So data.pkl is read here opcode
    by opcode (pickletools decodes, nothing is unpickled), each object and tuple it builds checked against
    the type declared for where it goes: an object of exactly the declared class, a tuple of the declared
    arity. Values whose type a release build checks by their tag (tensors, numbers, strings, lists and
    dicts as such) pass; so do Any (a cast from it needs an isinstance test, `_check_cast`) and custom
    C++ classes (their own __setstate__ checks the tags)."""

    def __init__(self, declared: dict[str, _Declared], kind: str):
        self.declared, self.kind, self.seen = declared, kind, set()

    def _refused(self, what: str) -> BackendError:
        return BackendError(f"TorchScript archive data.pkl gives {what}, which its type does not allow")

    def check(self, data: bytes, filename: str) -> None:
        try:
            root = self._run(data)
        except BackendError:
            raise
        except Exception as e:  # a malformed pickle: torch's own unpickler refuses it
            raise BackendError(f"TorchScript archive {filename} could not be read ({type(e).__name__})") from None
        if isinstance(root, _Object):
            self._object(root, root.cls)

    def _run(self, data: bytes):
        stack: list = []
        memo: dict = {}
        for opcode, argument, _ in pickletools.genops(data):
            name = opcode.name
            if name in ("PROTO", "FRAME", "STOP"):
                continue
            if name == "MARK":
                stack.append(_MARK)
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "STACK_GLOBAL":
                    attribute, module = stack.pop(), stack.pop()
                    argument = f"{module} {attribute}"
                stack.append((_GLOBAL, str(argument).replace(" ", ".")))
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[argument] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                stack.append(memo[argument])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                count = int(name[-1])
                items = tuple(stack[-count:])
                del stack[-count:]
                stack.append(items)
            elif name == "TUPLE":
                stack.append(tuple(self._pop_mark(stack)))
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "LIST":
                stack.append(list(self._pop_mark(stack)))
            elif name == "APPEND":
                item = stack.pop()
                stack[-1].append(item)
            elif name == "APPENDS":
                items = self._pop_mark(stack)
                stack[-1].extend(items)
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "DICT":
                items = self._pop_mark(stack)
                stack.append(dict(zip(map(_key, items[::2]), items[1::2])))
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                stack[-1][_key(key)] = value
            elif name == "SETITEMS":
                items = self._pop_mark(stack)
                stack[-1].update(zip(map(_key, items[::2]), items[1::2]))
            elif name in ("NEWOBJ", "NEWOBJ_EX"):
                if name == "NEWOBJ_EX":
                    stack.pop()
                stack.pop()
                cls = stack.pop()
                stack.append(_Object(cls[1]))
            elif name == "BUILD":
                state = stack.pop()
                if isinstance(stack[-1], _Object):
                    stack[-1].state = state
            elif name == "REDUCE":
                arguments, function = stack.pop(), stack.pop()
                stack.append(_Reduced(function[1] if isinstance(function, tuple) and function[:1] == (_GLOBAL,)
                                      else "?", arguments))
            elif name in ("BINPERSID", "PERSID"):
                stack.pop() if name == "BINPERSID" else None
                stack.append(_Reduced("storage", ()))
            elif name == "POP":
                stack.pop()
            elif name == "POP_MARK":
                self._pop_mark(stack)
            elif name == "DUP":
                stack.append(stack[-1])
            elif opcode.stack_after and not opcode.stack_before:  # a constant: NONE, ints, floats, strings, ...
                stack.append(argument)
            else:
                raise BackendError(f"TorchScript archive data.pkl holds opcode {name}, which is not served")
        return stack[-1] if stack else None

    @staticmethod
    def _pop_mark(stack: list) -> list:
        index = len(stack) - 1 - stack[::-1].index(_MARK)
        items = stack[index + 1:]
        del stack[index:]
        return items

    def _object(self, value: _Object, cls: str) -> None:
        if id(value) in self.seen:
            return
        self.seen.add(id(value))
        declared = self.declared.get(cls)
        if declared is None:
            return  # a custom C++ class (torch.classes.*): its own __setstate__ checks the tags
        if declared.state is not None:
            self._value(value.state, declared.state, f"the state of {cls.removeprefix('__torch__.')}")
        elif isinstance(value.state, dict):
            for attribute, annotation in declared.attributes.items():
                if attribute in value.state:
                    self._value(value.state[attribute], annotation,
                                f"attribute {attribute} of {cls.removeprefix('__torch__.')}")

    def _value(self, value, annotation: ast.expr, where: str) -> None:
        while isinstance(value, _Reduced) and value.function in _WRAPPERS and value.arguments:
            value = value.arguments[0]
        if isinstance(annotation, ast.Subscript):
            outer = _name_of(annotation.value)
            inner = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
            if outer == "Optional":
                if value is not None:
                    self._value(value, inner[0], where)
            elif outer == "Union":
                for member in inner:
                    try:
                        self._value(value, member, where)
                        return
                    except BackendError:
                        continue
                raise self._refused(f"{where} a value of none of its types")
            elif outer == "Tuple":
                if not isinstance(value, tuple) or len(value) != len(inner):
                    raise self._refused(f"{where} a value other than a tuple of {len(inner)}")
                for item, member in zip(value, inner):
                    self._value(item, member, where)
            elif outer == "List" and isinstance(value, list):
                for item in value:
                    self._value(item, inner[0], where)
            elif outer == "Dict" and isinstance(value, dict) and len(inner) == 2:
                for item in value.values():
                    self._value(item, inner[1], where)
            return
        cls = ast.unparse(annotation)
        declared = self.declared.get(cls)
        if declared is None:
            return  # Tensor, int, str, Any, a custom C++ class, ...: checked by tag or by a cast's isinstance
        if declared.fields is not None:
            if not isinstance(value, tuple) or len(value) != declared.fields:
                raise self._refused(f"{where} a value other than a {cls.removeprefix('__torch__.')}")
            for item, member in zip(value, declared.attributes.values()):
                self._value(item, member, where)
            return
        if not isinstance(value, _Object) or value.cls != cls:
            raise self._refused(f"{where} a value other than a {cls.removeprefix('__torch__.')}")
        self._object(value, cls)


def _key(key):
    return key if isinstance(key, (str, int, float, bool, type(None))) else id(key)


# Bounds on what torch's reader inflates and what the check parses, measured on real archives (this VM,
# AMD EPYC, torch 2.13): BERT traced (44.8 MB) holds 76 source files, 47.5 KB in all, the largest 10.9 KB,
# deflated at most 5.2 times; .debug_pkl 186 KB in all, the largest 23 KB, at most 6.8 times; data.pkl
# and constants.pkl 12 KB; tensor data are stored uncompressed. A torch.nn ResNet: 36 files, 35 KB.
# ast.parse takes ~1.6 s and ~120 MiB per MB of TorchScript source, holding the GIL (PING does not wait
# on it: 4 MB parsed in 6.5 s kept PING under 12 ms), so the bounds stay ~50 times above BERT's.
MAX_SOURCE_BYTES = 512 << 10  # per source file
MAX_TOTAL_SOURCE_BYTES = 4 << 20
MAX_PICKLE_BYTES = 8 << 20  # data.pkl, constants.pkl, .debug_pkl: read whole by TorchScript and data.pkl by _PickledTypes (~0.2 us a byte)
MAX_RATIO = 32  # an entry's size to its compressed size, for entries over MIN_RATIO_BYTES
MIN_RATIO_BYTES = 1 << 16
MAX_INFLATED_BYTES = 64 << 20  # all entries together, beyond the archive's own size


def _check_sizes(entries, archive_bytes: int) -> None:
    total = sources = 0
    for entry in entries:
        name = entry.filename.lower()
        total += entry.file_size
        if entry.file_size > MIN_RATIO_BYTES and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
            raise BackendError(f"TorchScript archive entry {entry.filename} is too large to check "
                               f"(compressed {entry.file_size // max(entry.compress_size, 1)} times)")
        if name.endswith(".py"):
            sources += entry.file_size
            if entry.file_size > MAX_SOURCE_BYTES:
                raise BackendError(f"TorchScript archive source {entry.filename} is too large to check")
        elif name.endswith(".pkl") and entry.file_size > MAX_PICKLE_BYTES:
            raise BackendError(f"TorchScript archive entry {entry.filename} is too large to check")
    if sources > MAX_TOTAL_SOURCE_BYTES:
        raise BackendError(f"TorchScript archive source is too large to check ({sources} bytes)")
    if total > archive_bytes + MAX_INFLATED_BYTES:
        raise BackendError(f"TorchScript archive is too large to check (unpacks to {total} bytes)")


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

    def __init__(self, kind: str, module: str, root_class: str | None, loads_state: bool = False):
        self.kind = kind
        self.module = module
        self.root_class = root_class
        self.loads_state = loads_state  # the archive defines __setstate__: its code runs during the load
        self.scope: list[tuple[str, str]] = []  # ("class" | "function", name)
        self.conditions: list[tuple[ast.expr, bool]] = []  # enclosing `if` tests, True in the body
        self.checks: dict[str, ast.expr] = {}  # `_1 = isinstance(y, Tensor)`: _1 -> the call

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
        saved, self.checks = self.checks, {}
        self._scoped("function", node)
        self.checks = saved

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and _type_check(node.value):
            self.checks[node.targets[0].id] = node.value
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        for branch, body in ((True, node.body), (False, node.orelse)):
            self.conditions.append((node.test, branch))
            for statement in body:
                self.visit(statement)
            self.conditions.pop()

    def visit_Call(self, node: ast.Call) -> None:
        called = _name_of(node.func)
        if called == "unchecked_cast":
            self._cast(node)
        operator = _refused_calls().get(called)
        if operator is not None:
            raise _refusal(operator, self.kind, self.where())
        self.generic_visit(node)

    def _cast(self, node: ast.Call) -> None:
        """`unchecked_cast(T, v)` as the compiler writes it: in a branch of an `if`, most often one that tested
        v with `isinstance` or against None. In the branch where isinstance held, T must be one of its
        types; where v is None, T is NoneType. Elsewhere the cast's soundness needs v's static type, which
        only the compiled graph has (`_check_cast`): that is enough when nothing runs before the graph is
        checked, but an archive with `__setstate__` runs code during the load, so there such casts may
        only reach types whose misuse a release build still catches (`_TAG_CHECKED`)."""
        if len(node.args) != 2 or node.keywords or not isinstance(node.args[1], ast.Name):
            raise _cast_refusal("not in the form the compiler writes", self.kind, self.where())
        target, value = ast.unparse(node.args[0]), node.args[1].id
        for test, branch in reversed(self.conditions):
            check = self.checks.get(test.id) if isinstance(test, ast.Name) else test
            if check is None or not _type_check(check) or _name_of(check.args[0]) != value:
                continue
            if _name_of(check.func) == "isinstance":
                types = [ast.unparse(t) for t in (check.args[1].elts if isinstance(check.args[1], ast.Tuple)
                                                  else [check.args[1]])]
                if branch:
                    if target in types:
                        return
                    if "[" in target:  # a Union or Optional of the tested types: the graph check decides
                        break
                    raise _cast_refusal(f"to {target} where isinstance tested {', '.join(types)}", self.kind,
                                        self.where())
            elif (_name_of(check.func) == "__is__") == branch:  # `v is None` held
                if target == "NoneType":
                    return
                raise _cast_refusal(f"to {target} where the value is None", self.kind, self.where())
            break
        else:
            if not self.conditions:
                raise _cast_refusal(f"to {target} with no test of the value", self.kind, self.where())
        # A test of another value (`if b is not None and b.v > 0` joins the two into one condition).
        if self.loads_state and target not in _TAG_CHECKED:
            raise _cast_refusal(f"to {target} in an archive whose code runs during the load", self.kind,
                                self.where())

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


# Types whose misuse a release build still catches: IValue's tag is checked (`AT_ASSERT` in IValue::to*),
# a class's slots and a tuple's arity are not.
_TAG_CHECKED = frozenset({"Tensor", "int", "float", "bool", "str", "complex", "NoneType", "Device", "number"})


def _type_check(node) -> bool:
    """`isinstance(v, T)`, `torch.__isnot__(v, None)` or `torch.__is__(v, None)`."""
    if not isinstance(node, ast.Call) or node.keywords or len(node.args) != 2:
        return False
    called = _name_of(node.func)
    if called == "isinstance":
        return True
    return called in ("__is__", "__isnot__") and isinstance(node.args[1], ast.Constant) and node.args[1].value is None


def _cast_refusal(why: str, kind: str, where: str) -> BackendError:
    return BackendError(f"Operator prim::unchecked_cast is not allowed in a {kind} ({where}): a cast {why}")


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
            if operator == "prim::unchecked_cast":
                _check_cast(node, kind, where)
            for value in node.outputs():
                _check_type(value.type(), kind, where)


def _check_cast(node, kind: str, where: str) -> None:
    """A cast from I to O is sound when O follows from I: an upcast (I a subtype of O), Optional[T] to T or
    to NoneType (a None used as T fails a release build's tag check), or a downcast inside the branch of a
    `prim::If` whose condition is `prim::isinstance` of this very value: in the branch where it held,
    every type it tested must be a subtype of O; in the other, every member of I it did not test. A
    downcast from Any, a Union or one class to another with nothing testing the value is refused."""
    import torch

    value = node.inputsAt(0)
    source, target = value.type(), node.outputsAt(0).type()
    if source.isSubtypeOf(target):
        return
    if isinstance(source, torch._C.OptionalType) and target in (source.getElementType(), torch._C.NoneType.get()):
        return
    block = node.owningBlock()
    while block is not None and block.owningNode() is not None:
        branch_node = block.owningNode()
        if branch_node.kind() == "prim::If":
            test = branch_node.inputsAt(0).node()
            if test.kind() == "prim::isinstance" and test.inputsAt(0).unique() == value.unique():
                tested = list(test.tys("types"))
                held = list(branch_node.blocks())[0] is block
                if held and all(t.isSubtypeOf(target) for t in tested):
                    return
                members = _members(source)
                if not held and members is not None and all(
                        m.isSubtypeOf(target) for m in members if not any(m.isSubtypeOf(t) for t in tested)):
                    return
                break
        block = branch_node.owningBlock()
    raise BackendError(f"Operator prim::unchecked_cast is not allowed in a {kind} ({where}): a cast from "
                       f"{source} to {target} with nothing testing the value")


def _members(union_type):
    """The members of a Union or Optional type; None for any other type (Any: unknown members)."""
    import torch

    if isinstance(union_type, torch._C.OptionalType):
        return [union_type.getElementType(), torch._C.NoneType.get()]
    if isinstance(union_type, torch._C.UnionType):
        return list(union_type.containedTypes())
    return None


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
