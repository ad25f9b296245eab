"""What a torch.export archive may hold: checked field by field before torch.export.load reads it, and the
archive rebuilt from what was checked, so that the loader only ever reads text this module produced.

Why every field: torch.export.load interprets much of the program JSON (torch 2.13, read in
torch/_export/serde/serialize.py, torch/export/pt2_archive/_package.py, torch/export/_unlift.py,
torch/utils/_pytree.py, torch/fx/graph.py):

- size expressions (`SymExpr.expr_str`) go to `sympy.sympify`, which is Python's eval;
- placeholder and node names, `forward_arg_names` and graph attribute names end up in the Python source
  that FX generates and exec's (`GraphModule.recompile`);
- operator targets (`Node.target`, `Argument.as_operator`, metadata `source_fn_stack`) are resolved by
  getattr walks over `torch`, `_operator` and `math` (`_operator.attrgetter`, `methodcaller` and `call`
  would be primitives of their own); metadata `custom` and `from_node` are json.loads'd and rebuilt;
- `module_call_graph` in_spec / out_spec go to pytree's treespec_loads, whose `defaultdict` context and
  `__enum__` objects import a module and getattr names given by the archive;
- `guards_code` is exec'd when `program.module()` is built with sample inputs present;
- `verifiers` are looked up in a registry, `PayloadMeta.path_name` names the record a weight is read from
  (`custom_obj_*` records are unpickled by TorchScript's unpickler, `opaque_obj_*` by pickle), and
  `use_pickle` weights are torch.load'ed with weights_only=False; an empty weight record makes torch
  allocate zeros of the sizes the JSON gives.

So `check_program` walks the JSON along torch's own schema dataclasses (torch._export.serde.schema, read with
typing.get_type_hints), refusing any key the schema does not define and any string field this module has
no grammar for (a field a later torch adds is refused until it is reviewed here), and gives every string
field the grammar of what it holds: names are identifiers, module paths dotted identifiers, operators
the schemas torch registers in the allowed namespaces or the Python arithmetic torch writes for sizes,
size expressions the sympy text torch prints (parsed and printed again by `_Expression`, never by
sympy), guards a small subset of Python expressions over input sizes (parsed by `ast`, which runs nothing,
and printed again), treespecs the plain containers. Metadata (stack traces, module stacks, annotations) is
dropped: a run needs none of it. What it returns is the program as this module prints it.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import io
import json
import keyword
import math
import re
import types
import typing
import zipfile

from .base import BackendError

# Control flow and context HOPs whose bodies are graphs of the same archive, checked like the main graph:
# cond / while_loop / map / scan, and `with torch.no_grad()` / `torch.autocast` inside a forward.
HIGHER_ORDER_OPERATORS = frozenset({"cond", "while_loop", "map_impl", "scan", "wrap_with_set_grad_enabled",
                                    "wrap_with_autocast"})
# Python callables torch writes as node targets: its serializer's `_SYM_OPS` (arithmetic on sizes), the
# only Python functions torch.export serializes as nodes (getitem is never a node in the JSON).
# tests/security/test_hostile_torch.py checks this list against torch's own.
PYTHON_TARGETS = frozenset({
    "_operator.add", "_operator.and_", "_operator.eq", "_operator.floordiv", "_operator.ge", "_operator.gt",
    "_operator.le", "_operator.lshift", "_operator.lt", "_operator.mod", "_operator.mul", "_operator.ne",
    "_operator.neg", "_operator.or_", "_operator.pos", "_operator.pow", "_operator.rshift", "_operator.sub",
    "_operator.truediv", "math.trunc", "torch._sym_sqrt", "torch.sym_float", "torch.sym_int", "torch.sym_ite",
    "torch.sym_max", "torch.sym_min", "torch.sym_not",
})
# Bounds, far above what real programs hold (BERT: 388 KB of JSON checked in ~100 ms, expressions under
# 200 characters, nesting under 10, names under 60 characters) and low enough to keep each parse short.
MAX_JSON_BYTES = 16 << 20
MAX_EXPRESSION_CHARS = 16 << 10
MAX_NESTING = 100
MAX_EXPONENT = 64
MAX_NAME_CHARS = 256
MAX_TEXT_CHARS = 4096
MAX_GUARD_CHARS = 16 << 10
INT64 = (-(1 << 63), (1 << 63) - 1)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FQN_PART = re.compile(r"[A-Za-z0-9_]+")
# Symbols as torch names them (torch.utils._sympy.symbol.prefix_str: s, u, zf, zuf, ps, ...) with an index;
# the index is bounded: the loader counts up to the highest unbacked one.
_SYMBOL = re.compile(r"(?:[a-z]{1,8}|r[01]_)\d{1,6}")
_RANGE_KEY = re.compile(r"[A-Za-z0-9_*+\-/%(), ]{1,1024}")
_FLOAT_TEXT = re.compile(r"-?(?:\d+\.?\d*(?:e[+-]?\d+)?|inf|nan)", re.IGNORECASE)
_VERSION_TEXT = re.compile(r"[A-Za-z0-9.+_<=-]{1,64}")
_DEVICES = frozenset({"cpu", "cuda", "meta"})
_VERIFIERS = frozenset({"", "ATEN", "TRAINING"})
_METADATA_KEYS = frozenset({"stack_trace", "nn_module_stack", "source_fn_stack", "torch_fn", "custom", "from_node"})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]")


def _refused(where: str, why: str) -> BackendError:
    return BackendError(f"torch.export program field {where} is not served: {why}")


def operator_refusal(operator: str, where: str) -> BackendError:
    return BackendError(f"Operator {operator} is not allowed in a model (torch.export program, {where})")


def custom_object_refusal() -> BackendError:
    return BackendError("Custom objects are not allowed in a model (torch.export program)")


# ------------------------------------------------------------------ grammars of string fields

def _name(value: str, where: str) -> str:
    """A Python identifier that is no keyword: what FX may print into the source it exec's."""
    if len(value) > MAX_NAME_CHARS or not _IDENTIFIER.fullmatch(value) or keyword.iskeyword(value):
        raise _refused(where, "not a name")
    return value


def _name_or_empty(value: str, where: str) -> str:
    return value if value == "" else _name(value, where)


def _fqn(value: str, where: str) -> str:
    """A module path (`layers.0.weight`): setattr along it; no part may be a dunder."""
    parts = value.split(".")
    if len(value) > MAX_NAME_CHARS or not all(_FQN_PART.fullmatch(p) and not p.startswith("__") for p in parts):
        raise _refused(where, "not a module path")
    return value


def _fqn_or_empty(value: str, where: str) -> str:
    return value if value == "" else _fqn(value, where)


def _text(value: str, where: str) -> str:
    """A string argument of an operator (`tanh`, `ij,jk->ik`, an assertion message): a value, never code."""
    if len(value) > MAX_TEXT_CHARS or _CONTROL.search(value):
        raise _refused(where, "not a plain string")
    return value


def _device(value: str, where: str) -> str:
    if value not in _DEVICES:
        raise _refused(where, "not a device type")
    return value


def _verifier(value: str, where: str) -> str:
    if value not in _VERIFIERS:
        raise _refused(where, "not a verifier")
    return value


def _version(value: str, where: str) -> str:
    if not _VERSION_TEXT.fullmatch(value):
        raise _refused(where, "not a version")
    return value


@functools.cache
def _registered_operators() -> frozenset[tuple[str, str]]:
    """(namespace::name, overload) of every operator schema torch registers."""
    import torch

    return frozenset((s.name, s.overload_name or "default") for s in torch._C._jit_get_all_schemas())


def operator_target(value: str, where: str) -> str:
    """`torch.ops.<ns>.<name>.<overload>` of a registered schema in an allowed namespace, an allowed
    higher-order operator, or torch's arithmetic on sizes."""
    from . import torch_ops

    if value in PYTHON_TARGETS:
        return value
    parts = value.split(".")
    if len(parts) == 4 and parts[:3] == ["torch", "ops", "higher_order"]:
        if parts[3] not in HIGHER_ORDER_OPERATORS:
            raise operator_refusal(f"higher_order::{parts[3]}", where)
        return value
    if len(parts) != 5 or parts[:2] != ["torch", "ops"] or not all(_IDENTIFIER.fullmatch(p) for p in parts):
        raise operator_refusal(value[:MAX_NAME_CHARS], where)
    operator = f"{parts[2]}::{parts[3]}"
    if parts[2] not in torch_ops.ALLOWED_NAMESPACES or operator in torch_ops.refused_operators():
        raise operator_refusal(operator, where)
    if (operator, parts[4]) not in _registered_operators():
        raise operator_refusal(f"{operator}.{parts[4]}", where)
    return value


class _Expression:
    """The sympy text torch prints for sizes (sympy's srepr: `Add(Symbol('s0', integer=True, positive=True),
    Integer(1))`), parsed by this grammar alone and printed again:

        expression := NAME '(' [argument (',' argument)*] ')' | CONSTANT | '-' CONSTANT
        argument   := expression | INTEGER | STRING | NAME '=' (True | False | INTEGER)

    NAME is one of `FUNCTIONS` (sympy's classes and torch's size functions, torch.utils._sympy.functions,
    as torch's deserializer names them); `Symbol` takes one symbol name and assumptions, `Integer` one
    integer, `Float` one number's text and a precision, `Rational` two integers; every other function
    takes expressions only."""

    FUNCTIONS = frozenset({
        # sympy, as srepr prints sizes and conditions on them
        "Add", "Mul", "Pow", "Max", "Min", "Abs", "Eq", "Ne", "LessThan", "StrictLessThan", "GreaterThan",
        "StrictGreaterThan", "And", "Or", "Not", "floor", "ceiling",
        # torch.utils._sympy.functions, as serialize.py's deserializer names them
        "FloorDiv", "ModularIndexing", "Where", "PythonMod", "Mod", "CleanDiv", "CeilToInt", "FloorToInt",
        "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
        "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal",
        "ToFloat", "Identity",
    })
    ATOMS = frozenset({"Symbol", "Integer", "Float", "Rational"})
    # Their last argument raises or shifts by: a small integer (torch writes Pow(s0, Integer(2))) or a
    # symbol; a constant sub-expression would be evaluated as the text is read.
    EXPONENTS = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift", "RShift"})
    CONSTANTS = frozenset({"true", "false", "oo", "zoo", "nan"})
    ASSUMPTIONS = frozenset({"integer", "positive", "nonnegative", "negative", "nonpositive", "real", "finite",
                             "zero", "nonzero", "even", "odd", "extended_real", "rational"})
    _TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>-?\d{1,64})|'(?P<str>[A-Za-z0-9_.+-]{1,64})'"
                        r"|(?P<punct>[(),=-]))")

    def __init__(self, text: str, where: str):
        self.text, self.where, self.position = text, where, 0

    def _refused(self, why: str) -> BackendError:
        return _refused(self.where, f"not a size expression ({why} at character {self.position})")

    def _next(self):
        match = self._TOKEN.match(self.text, self.position)
        if match is None:
            raise self._refused("unexpected text")
        self.position = match.end()
        kind = match.lastgroup
        return kind, match.group(kind)

    def _peek(self):
        saved = self.position
        try:
            return self._next()
        finally:
            self.position = saved

    def _expect(self, punct: str) -> None:
        if self._next() != ("punct", punct):
            raise self._refused(f"'{punct}' expected")

    def parse(self) -> str:
        if len(self.text) > MAX_EXPRESSION_CHARS:
            raise _refused(self.where, "size expression too long")
        printed = self._expression(0)
        if self.text[self.position:].strip():
            raise self._refused("text after the expression")
        return printed

    def _expression(self, depth: int) -> str:
        if depth > MAX_NESTING:
            raise self._refused("nested too deep")
        kind, value = self._next()
        if (kind, value) == ("punct", "-"):
            kind, value = self._next()
            if kind == "name" and value in ("oo",):
                return f"-{value}"
            raise self._refused("'-' before no constant")
        if kind != "name":
            raise self._refused("a function expected")
        if value in self.CONSTANTS:
            return value
        if value not in self.FUNCTIONS and value not in self.ATOMS:
            raise self._refused(f"name {value[:64]} is no size function")
        self._expect("(")
        arguments: list[tuple[str, str]] = []
        if self._peek() != ("punct", ")"):
            while True:
                arguments.append(self._argument(depth))
                separator = self._next()
                if separator == ("punct", ")"):
                    break
                if separator != ("punct", ","):
                    raise self._refused("',' or ')' expected")
        else:
            self._next()
        self._check_arity(value, arguments)
        return f"{value}({', '.join(text for _, text in arguments)})"

    def _argument(self, depth: int) -> tuple[str, str]:
        """(kind, printed): kind is int, str, keyword or expression."""
        kind, value = self._peek()
        if kind == "int":
            self._next()
            return "int", str(int(value))
        if kind == "str":
            self._next()
            return "str", f"'{value}'"
        if kind == "name":
            saved = self.position
            self._next()
            if self._peek() == ("punct", "="):
                self._next()
                kind_, setting = self._next()
                if kind_ == "name" and setting in ("True", "False"):
                    return "keyword", f"{value}={setting}"
                if kind_ == "int":
                    return "keyword", f"{value}={int(setting)}"
                raise self._refused("True, False or an integer expected")
            self.position = saved
        return "expression", self._expression(depth + 1)

    def _check_arity(self, function: str, arguments: list[tuple[str, str]]) -> None:
        kinds = [kind for kind, _ in arguments if kind != "keyword"]
        texts = [text for kind, text in arguments if kind != "keyword"]
        keywords = [text.partition("=") for kind, text in arguments if kind == "keyword"]
        names = [name for name, _, _ in keywords]
        if function == "Symbol":
            ok = kinds == ["str"] and _SYMBOL.fullmatch(texts[0][1:-1]) is not None \
                and all(name in self.ASSUMPTIONS and setting in ("True", "False") for name, _, setting in keywords)
        elif function == "Integer":
            ok = kinds == ["int"] and not keywords
        elif function == "Rational":
            ok = kinds == ["int", "int"] and not keywords
        elif function == "Float":
            ok = kinds == ["str"] and _FLOAT_TEXT.fullmatch(texts[0][1:-1]) is not None \
                and names in ([], ["precision"]) and all(setting.isdigit() for _, _, setting in keywords)
        else:
            ok = 0 < len(kinds) <= 64 and set(kinds) == {"expression"} and not keywords
            if ok and function in self.EXPONENTS:  # sympy evaluates Integer(10) ** Integer(10 ** 18) at once
                exponent = re.fullmatch(r"Integer\((-?\d+)\)", texts[-1])
                ok = texts[-1].startswith("Symbol(") if exponent is None else abs(int(exponent.group(1))) <= MAX_EXPONENT
        if function in ("Integer", "Rational") and ok:
            ok = all(abs(int(text)) < 1 << 64 for text in texts)
        if not ok or len(set(names)) != len(names):
            raise self._refused(f"arguments of {function}")


def expression(value: str, where: str) -> str:
    return _Expression(value, where).parse()


class _Guard(ast.NodeVisitor):
    """A guard torch writes on the inputs' sizes (`L['x'].size()[0] == L['y'].size()[0]`, `max(1, ...)`):
    comparisons and arithmetic over integers and the sizes, strides and offsets of inputs `L[...]`."""

    NODES = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.And, ast.Or, ast.Add, ast.Sub,
             ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not, ast.Eq, ast.NotEq,
             ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Load)
    FUNCTIONS = frozenset({"max", "min", "abs", "int", "float"})
    MATH = frozenset({"floor", "ceil", "trunc", "sqrt", "isnan", "inf"})
    METHODS = frozenset({"size", "stride", "storage_offset", "dim"})

    def __init__(self, where: str):
        self.where = where

    def _refused(self, node) -> BackendError:
        return _refused(self.where, f"not a guard on sizes ({type(node).__name__})")

    def generic_visit(self, node):
        if not isinstance(node, self.NODES):
            raise self._refused(node)
        super().generic_visit(node)

    def visit_Constant(self, node):
        if type(node.value) not in (int, float, bool):
            raise self._refused(node)

    def visit_Name(self, node):
        if node.id != "inf":
            raise self._refused(node)

    def visit_Call(self, node):
        if node.keywords:
            raise self._refused(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id in self.FUNCTIONS:
            pass
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "math" \
                and func.attr in self.MATH:
            pass
        elif isinstance(func, ast.Attribute) and func.attr in self.METHODS and not node.args:
            self._source(func.value)
            return
        else:
            raise self._refused(node)
        for argument in node.args:
            self.visit(argument)

    def visit_Attribute(self, node):  # math.inf
        if not (isinstance(node.value, ast.Name) and node.value.id == "math" and node.attr in self.MATH):
            raise self._refused(node)

    def visit_Subscript(self, node):  # x.size()[0] or an input L['x'][0]
        if isinstance(node.value, ast.Call):
            self.visit(node.value)
            self._index(node.slice, (int,))
        else:
            self._source(node)

    def _source(self, node):
        """`L['x']`, `L['inputs']['a']`, `L['flat_args'][0]`."""
        while isinstance(node, ast.Subscript):
            self._index(node.slice, (int, str))
            node = node.value
        if not (isinstance(node, ast.Name) and node.id == "L"):
            raise self._refused(node)

    def _index(self, node, kinds):
        if not (isinstance(node, ast.Constant) and type(node.value) in kinds):
            raise self._refused(node)
        if isinstance(node.value, str) and (len(node.value) > MAX_NAME_CHARS or _CONTROL.search(node.value)):
            raise self._refused(node)


def guard(value: str, where: str) -> str:
    if len(value) > MAX_GUARD_CHARS:
        raise _refused(where, "guard too long")
    try:
        tree = ast.parse(value, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _refused(where, "not a guard on sizes (no expression)") from None
    try:
        _Guard(where).visit(tree)
        return ast.unparse(tree)
    except RecursionError:
        raise _refused(where, "not a guard on sizes (nested too deep)") from None


_TREESPEC_TYPES = frozenset({"builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict",
                             "torch.fx.immutable_collections.immutable_list",
                             "torch.fx.immutable_collections.immutable_dict"})


def treespec(value: str, where: str) -> str:
    """treespec_dumps' JSON of plain containers: `[1, node]`, node = {type, context, children_spec}, whose
    context is JSON `null` (sequences) or a JSON list of string or integer keys (mappings). Other types
    (defaultdict: import by name; namedtuples; enums in a context: import by name) are refused."""
    try:
        protocol, root = json.loads(value)
    except (ValueError, TypeError, RecursionError):
        raise _refused(where, "not a treespec") from None
    if protocol != 1:
        raise _refused(where, "not a treespec of protocol 1")

    def node(item, depth):
        if depth > MAX_NESTING or not isinstance(item, dict) or set(item) != {"type", "context", "children_spec"}:
            raise _refused(where, "not a treespec")
        kind, context, children = item["type"], item["context"], item["children_spec"]
        if not isinstance(children, list):
            raise _refused(where, "not a treespec")
        if kind is None:
            if context is not None or children:
                raise _refused(where, "not a treespec")
            return {"type": None, "context": None, "children_spec": []}
        if kind not in _TREESPEC_TYPES or not isinstance(context, str):
            raise _refused(where, f"container type {str(kind)[:64]} is not served")
        try:
            keys = json.loads(context)
        except (ValueError, RecursionError):
            raise _refused(where, "not a treespec") from None
        if keys is None:
            if "dict" in kind.lower():
                raise _refused(where, "not a treespec")
        elif not (isinstance(keys, list) and "dict" in kind.lower()
                  and all(type(k) is int or (type(k) is str and _text(k, where) is k) for k in keys)):
            raise _refused(where, "treespec keys are not plain strings or integers")
        return {"type": kind, "context": json.dumps(keys), "children_spec": [node(c, depth + 1) for c in children]}

    return json.dumps([1, node(root, 0)])


def _range_key(value: str, where: str) -> str:
    """range_constraints keys: sympy's str() of a symbol or of an expression of symbols (`s0`, `2*s6`),
    compared with the parsed expressions' text; never evaluated."""
    if not _RANGE_KEY.fullmatch(value):
        raise _refused(where, "not a symbol")
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", value):
        if not _SYMBOL.fullmatch(word) and word not in _Expression.FUNCTIONS:
            raise _refused(where, "not a symbol")
    return value


def _namespace(value: str, where: str) -> str:
    from . import torch_ops

    if value not in torch_ops.ALLOWED_NAMESPACES:
        raise _refused(where, "not an allowed operator namespace")
    return value


def _refuse_custom_object(value, where):
    raise custom_object_refusal()


# (schema class, field) -> the grammar of that string field, of each string of a list field, or of the keys
# of a dict field. `None`: the field is dropped (metadata).
STRING_FIELDS = {
    ("Device", "type"): _device,
    ("SymExpr", "expr_str"): expression,
    ("SymIntArgument", "as_name"): _name, ("SymFloatArgument", "as_name"): _name,
    ("SymBoolArgument", "as_name"): _name,
    ("TensorArgument", "name"): _name, ("TokenArgument", "name"): _name, ("GraphArgument", "name"): _name,
    ("CustomObjArgument", "name"): _refuse_custom_object, ("CustomObjArgument", "class_fqn"): _refuse_custom_object,
    ("Argument", "as_string"): _text, ("Argument", "as_strings"): _text, ("Argument", "as_operator"): operator_target,
    ("Argument", "as_string_to_argument"): _text,
    ("NamedArgument", "name"): _name_or_empty,
    ("Node", "target"): operator_target, ("Node", "name"): _name, ("Node", "metadata"): None,
    ("Graph", "tensor_values"): _name, ("Graph", "sym_int_values"): _name, ("Graph", "sym_bool_values"): _name,
    ("Graph", "sym_float_values"): _name, ("Graph", "custom_obj_values"): _refuse_custom_object,
    ("ConstantValue", "as_string"): _text,
    ("InputToConstantInputSpec", "name"): _name,
    ("InputToParameterSpec", "parameter_name"): _fqn, ("InputToBufferSpec", "buffer_name"): _fqn,
    ("InputToTensorConstantSpec", "tensor_constant_name"): _fqn,
    ("InputToCustomObjSpec", "custom_obj_name"): _refuse_custom_object,
    ("BufferMutationSpec", "buffer_name"): _fqn, ("ParameterMutationSpec", "parameter_name"): _fqn,
    ("GradientToParameterSpec", "parameter_name"): _fqn,
    ("GradientToUserInputSpec", "user_input_name"): _name, ("UserInputMutationSpec", "user_input_name"): _name,
    ("ModuleCallSignature", "in_spec"): treespec, ("ModuleCallSignature", "out_spec"): treespec,
    ("ModuleCallSignature", "forward_arg_names"): _name,
    ("ModuleCallEntry", "fqn"): _fqn_or_empty,
    ("GraphModule", "metadata"): None, ("GraphModule", "treespec_namedtuple_fields"): None,
    ("NamedTupleDef", "field_names"): _name,  # checked by _Walk.dropped: the namedtuple fields are dropped
    ("ExportedProgram", "opset_version"): _namespace, ("ExportedProgram", "range_constraints"): _range_key,
    ("ExportedProgram", "verifiers"): _verifier, ("ExportedProgram", "torch_version"): _version,
    ("ExportedProgram", "guards_code"): guard,
    ("PayloadConfig", "config"): _fqn,
    # PayloadMeta.path_name: checked by check_payload_config, which knows the folder
}


# ------------------------------------------------------------------ the walk along torch's schema

class _Walk:
    """Validates a JSON value as schema type `kind` and returns it as this module prints it."""

    def __init__(self, path_names: dict | None = None):
        from torch._export.serde import schema

        self.schema = schema
        self.path_names = path_names

    @staticmethod
    @functools.cache
    def hints(cls) -> dict:
        return typing.get_type_hints(cls, include_extras=True)

    def value(self, kind, data, where: str, grammar=None, depth: int = 0):
        if depth > 150:
            raise _refused(where, "nested too deep")
        if typing.get_origin(kind) is typing.Annotated:
            kind = typing.get_args(kind)[0]
        origin = typing.get_origin(kind)
        if origin in (typing.Union, types.UnionType):
            options = [k for k in typing.get_args(kind) if k is not type(None)]
            if data is None:
                return None
            if len(options) != 1:
                raise _refused(where, "an unexpected union")
            return self.value(options[0], data, where, grammar, depth + 1)
        if origin is list:
            if not isinstance(data, list):
                raise _refused(where, "a list expected")
            (item,) = typing.get_args(kind)
            return [self.value(item, v, f"{where}[{i}]", grammar, depth + 1) for i, v in enumerate(data)]
        if origin is dict:
            if not isinstance(data, dict):
                raise _refused(where, "an object expected")
            _, item = typing.get_args(kind)
            if grammar is None:
                raise _refused(where, "no grammar for its keys")
            return {grammar(k, f"{where} key"): self.value(item, v, f"{where}.{k[:64]}", None, depth + 1)
                    for k, v in data.items()}
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            return self.dataclass(kind, data, where, depth)
        if isinstance(kind, type) and issubclass(kind, enum.IntEnum):
            if type(data) is not int or data not in kind._value2member_map_:
                raise _refused(where, f"not a {kind.__name__}")
            return data
        if kind is bool:
            if type(data) is not bool:
                raise _refused(where, "a boolean expected")
            return data
        if kind is int:
            if type(data) is not int or not INT64[0] <= data <= INT64[1]:
                raise _refused(where, "a 64-bit integer expected")
            return data
        if kind is float:
            if type(data) not in (int, float):
                raise _refused(where, "a number expected")
            return float(data)
        if kind is str:
            if not isinstance(data, str):
                raise _refused(where, "a string expected")
            if grammar is None:
                raise _refused(where, "no grammar for this field")
            return grammar(data, where)
        raise _refused(where, f"type {kind!r} is not served")

    def dataclass(self, cls, data, where: str, depth: int):
        from torch._export.serde.union import _Union

        if not isinstance(data, dict):
            raise _refused(where, "an object expected")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [key for key in data if key not in fields]
        if unknown:
            raise _refused(f"{where}.{str(unknown[0])[:64]}", f"{cls.__name__} has no such field")
        if issubclass(cls, _Union) and len(data) != 1:
            raise _refused(where, f"{cls.__name__} holds one of its fields")
        if not issubclass(cls, _Union):
            missing = [name for name, f in fields.items() if name not in data
                       and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
            if missing:
                raise _refused(f"{where}.{missing[0]}", "missing")
        out = {}
        for name, data_value in data.items():
            field_where = f"{where}.{name}" if where else name
            if (cls.__name__, name) in STRING_FIELDS and STRING_FIELDS[(cls.__name__, name)] is None:
                self.dropped(cls.__name__, name, data_value, field_where)
                out[name] = {}
                continue
            if (cls.__name__, name) == ("PayloadMeta", "path_name"):
                out[name] = self.path_name(data_value, field_where)
                continue
            grammar = STRING_FIELDS.get((cls.__name__, name))
            out[name] = self.value(self.hints(cls)[name], data_value, field_where, grammar, depth + 1)
        return out

    def dropped(self, cls_name: str, name: str, data, where: str) -> None:
        """Metadata (only known keys and plain strings) and namedtuple field names (names): dropped from the
        rebuilt program, which needs none of them to run."""
        if not isinstance(data, dict):
            raise _refused(where, "an object expected")
        if name == "treespec_namedtuple_fields":
            for key, value in data.items():
                if not (isinstance(value, dict) and set(value) == {"field_names"}
                        and isinstance(value["field_names"], list)):
                    raise _refused(f"{where}.{str(key)[:64]}", "not a namedtuple definition")
                _fqn(key, f"{where} key")
                for field in value["field_names"]:
                    _name(field, f"{where}.{key[:64]}.field_names")
        if name == "metadata":
            for key, value in data.items():
                if key not in _METADATA_KEYS and cls_name == "Node":
                    raise _refused(f"{where}.{str(key)[:64]}", "unknown metadata")
                if not isinstance(value, str) or len(value) > (1 << 20):
                    raise _refused(f"{where}.{str(key)[:64]}", "not a string")

    def path_name(self, data, where: str) -> str:
        if not isinstance(data, str) or self.path_names is None or not self.path_names.fullmatch(data):
            raise _refused(where, "not a tensor record of this archive")
        return data


def check_program(program) -> dict:
    """The program JSON (models/model.json), checked and printed again (see the module's docstring)."""
    from torch._export.serde import schema

    try:
        return _Walk().dataclass(schema.ExportedProgram, program, "", 0)
    except RecursionError:
        raise BackendError("torch.export program is nested too deep") from None


def check_payload_config(config, folder: str, record_sizes: dict[str, int]) -> dict:
    """A weights or constants config: every entry a raw tensor record of `folder` (never pickled, never a
    custom or opaque object), whose sizes, strides and offset stay inside the record (an empty record:
    an empty tensor, since torch would allocate zeros of the sizes given)."""
    from torch._export.serde import schema

    prefix = "weight" if folder == "weights" else "tensor"
    walked = _Walk(re.compile(prefix + r"_\d{1,9}")).dataclass(schema.PayloadConfig, config, "config", 0)
    for name, payload in walked["config"].items():
        where = f"config.{name}"
        if payload.get("use_pickle"):
            raise BackendError(f"torch.export archive value {name} is pickled, which is not served")
        meta = payload.get("tensor_meta")
        if meta is None:
            raise _refused(where, "no tensor")
        record = record_sizes.get(payload["path_name"])
        if record is None:
            raise _refused(f"{where}.path_name", "not a tensor record of this archive")
        sizes, strides, offset = meta["sizes"], meta["strides"], meta["storage_offset"]
        if any("as_int" not in s for s in [*sizes, *strides, offset]):
            raise _refused(where, "a stored tensor has fixed sizes")
        sizes = [s["as_int"] for s in sizes]
        strides = [s["as_int"] for s in strides]
        if len(sizes) != len(strides) or any(v < 0 for v in [*sizes, *strides, offset["as_int"]]):
            raise _refused(where, "sizes and strides do not describe a tensor")
        dtype = _DTYPES().get(meta["dtype"])
        if dtype is None:
            raise _refused(f"{where}.tensor_meta.dtype", "not a tensor type")
        if math.prod(sizes) == 0:
            continue
        last = offset["as_int"] + sum((size - 1) * stride for size, stride in zip(sizes, strides))
        if (last + 1) * dtype.itemsize > record:
            raise _refused(where, f"the tensor reaches past its record ({record} bytes)")
    return walked


@functools.cache
def _DTYPES() -> dict:
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    return {int(k): v for k, v in _SERIALIZE_TO_TORCH_DTYPE.items()}


# ------------------------------------------------------------------ the archive

EXPORT_FORMAT = b"pt2"
_ROOT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENTRY = re.compile(r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                    r"|models/model\.json|data/weights/model_weights_config\.json|data/weights/weight_\d{1,9}"
                    r"|data/constants/model_constants_config\.json|data/constants/tensor_\d{1,9}"
                    r"|data/sample_inputs/model\.pt")
_FIXED = {"archive_format": re.compile(rb"pt2"), "archive_version": re.compile(rb"0"),
          "byteorder": re.compile(rb"little"), ".data/version": re.compile(rb"\d{1,3}\n?"),
          ".data/serialization_id": re.compile(rb"\d{0,64}")}
MAX_RATIO = 32  # of an entry's size to its compressed size; torch writes these archives uncompressed


def exported_program_archive(blob: bytes) -> zipfile.ZipFile | None:
    """The archive, when `blob` is a torch.export program; None for anything else."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return None
    if not entries:
        return None
    root = entries[0].filename.split("/")[0]
    try:
        return archive if archive.read(f"{root}/archive_format").strip() == EXPORT_FORMAT else None
    except (KeyError, zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError):
        return None


def check_archive(archive: zipfile.ZipFile) -> bytes:
    """Refuses what would make torch.export.load run code, read past a record or the program run a refused
    operator; returns the archive rebuilt from what was checked: the program and configs as this module
    printed them, raw tensor records as they were, no sample inputs (which a server never needs)."""
    entries = archive.infolist()
    root = entries[0].filename.split("/")[0]
    if not _ROOT.fullmatch(root):
        raise BackendError(f"torch.export archive entry {entries[0].filename[:128]} is not served")
    seen = set()
    for entry in entries:
        folded = entry.filename.lower()
        if folded in seen:
            raise BackendError(f"torch.export archive holds {entry.filename[:128]} twice")
        seen.add(folded)
        inside = entry.filename[len(root) + 1:] if entry.filename.startswith(root + "/") else None
        if inside is None or not _ENTRY.fullmatch(inside):
            raise BackendError(f"torch.export archive entry {entry.filename[:128]} is not served (only graphs and "
                               "raw tensor data are: no pickled values, no compiled code)")
        if entry.file_size > MAX_RATIO * max(entry.compress_size, 1) and entry.file_size > (1 << 16):
            raise BackendError(f"torch.export archive entry {entry.filename[:128]} is too large to check "
                               f"(compressed {entry.file_size // max(entry.compress_size, 1)} times)")
        if inside.endswith(".json") and entry.file_size > MAX_JSON_BYTES:
            raise BackendError(f"torch.export archive entry {entry.filename[:128]} is too large to check")
    names = {entry.filename[len(root) + 1:]: entry for entry in entries}
    for required in ("models/model.json", "data/weights/model_weights_config.json",
                     "data/constants/model_constants_config.json", "archive_version"):
        if required not in names:
            raise BackendError(f"torch.export archive has no {required}")
    rebuilt = {}
    for inside, pattern in _FIXED.items():
        if inside in names:
            data = _read(archive, names[inside])
            if not pattern.fullmatch(data):
                raise BackendError(f"torch.export archive entry {names[inside].filename[:128]} is not served")
            rebuilt[inside] = data
    for folder in ("weights", "constants"):
        prefix = f"data/{folder}/"
        records = {inside[len(prefix):]: names[inside].file_size for inside in names
                   if inside.startswith(prefix) and not inside.endswith(".json")}
        config_name = f"{prefix}model_{folder}_config.json"
        config = check_payload_config(_json(archive, names[config_name]), folder, records)
        rebuilt[config_name] = json.dumps(config).encode()
        for record in records:
            rebuilt[prefix + record] = _read(archive, names[prefix + record])
    rebuilt["models/model.json"] = json.dumps(check_program(_json(archive, names["models/model.json"]))).encode()
    rebuilt["data/sample_inputs/model.pt"] = b""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as written:
        for inside, data in rebuilt.items():
            written.writestr(f"{root}/{inside}", data)
    return out.getvalue()


def _read(archive: zipfile.ZipFile, entry) -> bytes:
    try:
        return archive.read(entry)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as e:
        raise BackendError(f"torch.export archive entry {entry.filename[:128]} could not be read "
                           f"({type(e).__name__})") from None


def _json(archive: zipfile.ZipFile, entry) -> dict:
    try:
        value = json.loads(_read(archive, entry))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise BackendError(f"torch.export archive entry {entry.filename[:128]} could not be read "
                           f"({type(e).__name__})") from None
    if not isinstance(value, dict):
        raise BackendError(f"torch.export archive entry {entry.filename[:128]} could not be read")
    return value


# ------------------------------------------------------------------ after the load

@functools.cache
def python_targets() -> dict:
    """The callables PYTHON_TARGETS names, as torch's deserializer resolves them."""
    import importlib
    import operator

    found = {operator.getitem: "_operator.getitem"}  # the deserializer's own, for operators with several outputs
    for name in PYTHON_TARGETS:
        module, _, attribute = name.rpartition(".")
        found[getattr(importlib.import_module(module), attribute)] = name
    return found


def check_program_graph(program) -> None:
    """After the load: every call of every graph of the program's module (the bodies of control flow are
    its submodules) is an allowed operator, an allowed higher-order operator or one of PYTHON_TARGETS."""
    import torch

    from . import torch_ops

    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        for node in graph.nodes if graph is not None else ():
            where = f"node {node.name}"
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            if node.op != "call_function":
                raise operator_refusal(f"{node.op} {node.target}", where)
            target = node.target
            if isinstance(target, torch._ops.OpOverload):
                operator = target._schema.name
                if operator.partition("::")[0] not in torch_ops.ALLOWED_NAMESPACES \
                        or operator in torch_ops.refused_operators():
                    raise operator_refusal(operator, where)
            elif isinstance(target, torch._ops.HigherOrderOperator):
                if target.name() not in HIGHER_ORDER_OPERATORS:
                    raise operator_refusal(f"higher_order::{target.name()}", where)
            else:
                try:
                    allowed = target in python_targets()
                except TypeError:  # unhashable
                    allowed = False
                if not allowed:
                    module_name = getattr(target, "__module__", "?")
                    raise operator_refusal(f"{module_name}.{getattr(target, '__name__', type(target).__name__)}", where)
