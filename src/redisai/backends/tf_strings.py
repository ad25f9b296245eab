"""Strings in a TensorFlow graph, held to BACKEND_MEMORY_LIMIT.

TensorFlow's capped allocator holds a string tensor's elements (24 bytes each, a tstring), but the
characters of a string longer than 22 bytes live on the heap, out of its sight: a graph that copies one
long string many times (Fill, Tile, BroadcastTo, a Gather with repeated indices, a lookup's default
value, a loop that stores a fresh copy each iteration, a chain of joins) would take any amount of
memory in one kernel, with a few bytes of graph or input. So the operations that make strings are an
allow-list of their own (`RULES`), each with what it may copy:
- `copies`: how many times at most its output's characters are those of its string inputs (0: it passes
  them on, or holds only short strings; a join of n inputs: n);
- `short`: inputs it may repeat many times, which must be constants of short strings (at most 22 bytes
  each, which TensorFlow keeps inline: the allocator counts them);
- in a loop (a While's body or condition, a TF1 frame) only operations that copy nothing.
Every other operation that outputs strings is refused, named. What is left is bounded by the graph:
`check` adds up the copies, and a run whose string inputs (with the graph's string constants) times
that sum would pass the limit answers the limit's error before it starts (`Copies.fit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.python.framework import op_def_registry

from .base import BackendError

INLINE = 22  # tstring's small form: characters up to this many stay in the 24 bytes the allocator counts
MAX_REWRITE = 64  # a regular expression's replacement, at most (each byte may multiply the input's)
MAX_NGRAM = 16  # an n-gram's width, at most


@dataclass
class Copies:
    """What a model's runs may hold of string characters: `factor` times what they are given."""

    factor: int = 0  # 0: the graph makes no string
    constant_heap: int = 0  # characters of its long string constants

    def fit(self, inputs: list[np.ndarray], limit: int) -> bool:
        if not limit or not self.factor:
            return True
        heap = self.constant_heap
        for array in inputs:
            if array.dtype == object:
                heap += sum(len(value) + 1 for value in array.flat if len(value) > INLINE)
        return self.factor * heap <= limit


@dataclass(frozen=True)
class Rule:
    copies: int | Callable = 1
    short: tuple[str, ...] = ()  # input arguments that must be constants of short strings


def _attr_s(node, name: str) -> bytes:
    return node.attr[name].s if name in node.attr else b""


def _rewrite_copies(node) -> int:
    rewrite = _attr_s(node, "rewrite")
    if len(rewrite) > MAX_REWRITE:
        raise _Unbounded(f"a replacement of {len(rewrite)} bytes (at most {MAX_REWRITE})")
    # A match of m bytes (or an empty one, between two bytes) becomes at most len(rewrite) * (m + 1).
    return 1 + 2 * len(rewrite)


def _ngram_copies(node) -> int:
    """Each n-gram of width w holds w tokens and w - 1 separators; a token is in w n-grams of each width.
    Padding makes n-grams of pads alone, one more per row the client adds: only where such an n-gram is
    short (held inline)."""
    widths = list(node.attr["ngram_widths"].list.i) if "ngram_widths" in node.attr else []
    separator = len(_attr_s(node, "separator"))
    if separator > INLINE or max(widths, default=1) > MAX_NGRAM or min(widths, default=1) < 1:
        raise _Unbounded(f"a separator over {INLINE} bytes or a width over {MAX_NGRAM}")
    pad = max(len(_attr_s(node, "left_pad")), len(_attr_s(node, "right_pad")))
    pad_width = node.attr["pad_width"].i if "pad_width" in node.attr else 0
    if pad_width and max(widths, default=1) * (pad + separator) > INLINE:
        raise _Unbounded(f"padding whose n-grams are over {INLINE} bytes")
    return sum(width * (1 + separator) for width in widths) + 1


def _separator_copies(node) -> int:
    if len(_attr_s(node, "separator")) > INLINE:
        raise _Unbounded(f"a separator over {INLINE} bytes")
    return 2


def _join_copies(node) -> int:
    """A concatenation or join of N inputs holds N copies (the same input may be named N times)."""
    if len(_attr_s(node, "separator")) > INLINE:
        raise _Unbounded(f"a separator over {INLINE} bytes")
    return max(1, node.attr["N"].i if "N" in node.attr else 1)


def _as_string_copies(node) -> int:
    """Numbers as text: short when integers, or floats written shortest or in scientific notation with a
    bounded precision; `%f` of a float64 takes 300 characters."""
    dtype = node.attr["T"].type if "T" in node.attr else types_pb2.DT_FLOAT
    width = node.attr["width"].i if "width" in node.attr else -1
    precision = node.attr["precision"].i if "precision" in node.attr else -1
    if width > INLINE or len(_attr_s(node, "fill")) > 1:
        raise _Unbounded(f"a width over {INLINE}")
    if dtype in _FLOATING:
        shortest = "shortest" in node.attr and node.attr["shortest"].b
        scientific = "scientific" in node.attr and node.attr["scientific"].b
        if not (shortest or scientific) or precision > 17:
            raise _Unbounded("floats written in full (%f): set shortest or scientific, precision at most 17")
    return 1


_FLOATING = {types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF, types_pb2.DT_BFLOAT16,
             types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128}


class _Unbounded(Exception):
    pass


# Operations that pass strings on (the same buffers) or keep only short ones.
_PASSING = {"Placeholder", "PlaceholderWithDefault", "Const", "Identity", "IdentityN", "Snapshot", "StopGradient",
            "PreventGradient", "EnsureShape", "Reshape", "ExpandDims", "Squeeze", "Switch", "Merge", "Enter",
            "Exit", "NextIteration", "GuaranteeConst", "TensorListGetItem", "TensorListSetItem",
            "TensorListPushBack", "TensorListPopBack", "TensorArrayReadV3", "TensorArrayWriteV3",
            "PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf", "Case", "StatelessCase", "While",
            "StatelessWhile"}
# Operations whose output holds each input element at most once.
_ONCE = {"StridedSlice", "Slice", "Split", "SplitV", "Unpack", "Transpose", "ReverseV2", "BatchToSpaceND",
         "SpaceToBatchND", "DepthToSpace", "SpaceToDepth", "Roll", "Unique", "UniqueV2", "UniqueWithCounts",
         "UniqueWithCountsV2", "DynamicPartition", "StringStrip", "StringSplit", "StringSplitV2", "DecodeBase64",
         "TensorListFromTensor", "TensorArrayScatterV3", "TensorArraySplitV3", "SparseReorder", "SparseSlice",
         "SparseSplit", "Pad", "ListDiff", "UnicodeEncode", "Where", "InvertPermutation"}

RULES: dict[str, Rule] = {
    **{op: Rule(0) for op in _PASSING},
    **{op: Rule(1) for op in _ONCE},
    # Unicode case mapping changes a character's length by half at most.
    "StringLower": Rule(2), "StringUpper": Rule(2),
    "EncodeBase64": Rule(2), "UnicodeTranscode": Rule(3),  # an invalid byte becomes U+FFFD (3 bytes)
    "ConcatV2": Rule(_join_copies), "Concat": Rule(_join_copies), "Pack": Rule(_join_copies),
    "StringJoin": Rule(_join_copies),  # inputs broadcast against each other: see _check_join
    "ReduceJoin": Rule(_separator_copies), "StaticRegexReplace": Rule(_rewrite_copies), "RegexReplace": Rule(46, ("rewrite",)),
    "StringNGrams": Rule(_ngram_copies), "AsString": Rule(_as_string_copies),
    "Substr": Rule(1),  # pos and len: scalar constants (see _check_substr), so no broadcast
    # Repeat what they are given: only short constants.
    "Fill": Rule(0, ("value",)), "Tile": Rule(0, ("input",)), "BroadcastTo": Rule(0, ("input",)),
    "GatherV2": Rule(0, ("params",)), "Gather": Rule(0, ("params",)), "GatherNd": Rule(0, ("params",)),
    "OneHot": Rule(0, ("on_value", "off_value")), "SelectV2": Rule(0, ("t", "e")), "Select": Rule(0, ("t", "e")),
    "MirrorPad": Rule(0, ("input",)), "PadV2": Rule(1, ("constant_values",)),
    "SparseToDense": Rule(1, ("default_value",)), "RaggedTensorToTensor": Rule(1, ("default_value",)),
    "SparseFillEmptyRows": Rule(1, ("default_value",)), "LookupTableFindV2": Rule(0, ("default_value",)),
    "ParseExampleV2": Rule(1, ("dense_defaults",)), "ParseExample": Rule(1, ("dense_defaults",)),
    "ParseSingleExample": Rule(1, ("dense_defaults",)),
    "ParseSequenceExampleV2": Rule(1, ("context_dense_defaults",)),
    "ParseSequenceExample": Rule(1, ("context_dense_defaults",)),
    "ParseSingleSequenceExample": Rule(1, ("context_dense_defaults",)),
    "DecodeCSV": Rule(1, ("record_defaults",)),
}
# Operations whose strings are some of their inputs' strings: short when those are.
_SHORT_KEPT = (_PASSING | _ONCE | {"ConcatV2", "Concat", "Pack", "Fill", "Tile", "BroadcastTo", "GatherV2", "Gather",
                                   "GatherNd", "OneHot", "SelectV2", "Select", "MirrorPad", "PadV2", "SparseToDense",
                                   "RaggedTensorToTensor", "SparseFillEmptyRows"}) - {
    "Placeholder", "PlaceholderWithDefault", "Const", "PartitionedCall", "StatefulPartitionedCall", "If",
    "StatelessIf", "Case", "StatelessCase", "While", "StatelessWhile", "UnicodeEncode"}
# Tables copy string values in at initialization and out at each lookup: those values must be short.
_TABLE_VALUES = {"LookupTableImportV2": "values", "InitializeTableV2": "values"}
_LOOPS = {"While": ("cond", "body"), "StatelessWhile": ("cond", "body")}


def _refuse(op: str, node: str, function: str | None, why: str) -> BackendError:
    where = f'node "{node}"' + (f' in function "{function}"' if function else "")
    return BackendError(f"Operation {op} ({where}) on strings is not allowed in a served graph: {why}")


def _op_def(op: str, library: dict):
    return op_def_registry.get(op) if op not in library else None


def _output_types(node, op_def, library) -> list[int]:
    if node.op in library:
        return [arg.type for arg in library[node.op].signature.output_arg]
    types = []
    for arg in op_def.output_arg:
        if arg.type_list_attr:
            types += list(node.attr[arg.type_list_attr].list.type) if arg.type_list_attr in node.attr else []
            continue
        dtype = arg.type if arg.type else (node.attr[arg.type_attr].type if arg.type_attr in node.attr
                                           else _default_type(op_def, arg.type_attr))
        count = node.attr[arg.number_attr].i if arg.number_attr and arg.number_attr in node.attr else 1
        types += [dtype] * max(count, 1)
    return types


def _default_type(op_def, attr_name: str) -> int:
    for attr in op_def.attr:
        if attr.name == attr_name and attr.HasField("default_value"):
            return attr.default_value.type
    return types_pb2.DT_INVALID


def _inputs_by_arg(node, op_def) -> dict[str, list[str]]:
    """The node's data inputs, grouped by its OpDef's input arguments."""
    data = [name for name in node.input if not name.startswith("^")]
    grouped, at = {}, 0
    for arg in op_def.input_arg:
        if arg.number_attr:
            count = node.attr[arg.number_attr].i if arg.number_attr in node.attr else 0
        elif arg.type_list_attr:
            count = len(node.attr[arg.type_list_attr].list.type) if arg.type_list_attr in node.attr else 0
        else:
            count = 1
        grouped[arg.name] = data[at:at + count]
        at += count
    return grouped


def _source(name: str) -> str:
    """The node an input names: "n", "n:1" (graph) or "n:out:0" (function body)."""
    return name.lstrip("^").split(":", 1)[0]


class _Scope:
    """The nodes of the graph or of one function body, and which of them run in a loop."""

    def __init__(self, nodes, function: str | None, fed: set[str], in_loop: bool):
        self.nodes = {node.name: node for node in nodes}
        self.function = function
        self.fed = fed  # placeholders the client feeds (graph scope)
        self.in_loop = in_loop
        self.framed = self._tf1_frames()

    def _tf1_frames(self) -> set[str]:
        """Nodes inside a TF1 loop: reached from an Enter without passing its Exit."""
        consumers: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for name in node.input:
                consumers.setdefault(_source(name), []).append(node.name)
        framed, pending = set(), [n.name for n in self.nodes.values() if n.op == "Enter"]
        while pending:
            name = pending.pop()
            if name in framed:
                continue
            framed.add(name)
            if self.nodes[name].op != "Exit":
                pending += consumers.get(name, [])
        return framed

    def scalar_short_constant(self, name: str) -> bool:
        node = self.nodes.get(_source(name))
        while node is not None and node.op == "Identity":
            node = self.nodes.get(_source(node.input[0]))
        if node is None or node.op != "Const":
            return False
        tensor = node.attr["value"].tensor
        return not tensor.tensor_shape.dim and all(len(v) <= INLINE for v in tensor.string_val)

    def short_constant(self, name: str, library: dict, seen: set | None = None) -> bool:
        """Whether an input is made of constants of strings of at most INLINE bytes (through operations
        that pass or rearrange them), or of no strings at all."""
        seen = seen if seen is not None else set()
        source = _source(name)
        if source in seen:
            return True  # a cycle (NextIteration): the other inputs decide
        seen.add(source)
        node = self.nodes.get(source)
        if node is None:
            return False  # a function's argument: anything
        if node.op == "Const":
            tensor = node.attr["value"].tensor
            return tensor.dtype != types_pb2.DT_STRING or all(len(v) <= INLINE for v in tensor.string_val)
        if node.op == "PlaceholderWithDefault" and source not in self.fed:
            return self.short_constant(node.input[0], library, seen)
        if node.op in _SHORT_KEPT and node.op not in library:
            op_def = op_def_registry.get(node.op)
            strings = [i for arg, names in _inputs_by_arg(node, op_def).items()
                       for i in names if _arg_may_be_string(node, op_def, arg)]
            return all(self.short_constant(i, library, seen) for i in strings)
        return False


def _arg_may_be_string(node, op_def, arg_name: str) -> bool:
    arg = next(a for a in op_def.input_arg if a.name == arg_name)
    if arg.type:
        return arg.type == types_pb2.DT_STRING
    if arg.type_attr:
        return arg.type_attr not in node.attr or node.attr[arg.type_attr].type == types_pb2.DT_STRING
    return True


def _loop_functions(graph_def, library: dict) -> set[str]:
    """Functions run as a loop's body or condition, and every function they call."""
    calls: dict[str, set[str]] = {}
    roots: set[str] = set()
    for function, nodes in [(None, graph_def.node)] + [(f.signature.name, f.node_def)
                                                        for f in graph_def.library.function]:
        called = calls.setdefault(function, set())
        for node in nodes:
            if node.op in library:
                called.add(node.op)
            for key, value in node.attr.items():
                names = {value.func.name} if value.WhichOneof("value") == "func" else \
                    {f.name for f in value.list.func}
                called |= names & set(library)
                if node.op in _LOOPS and key in _LOOPS[node.op]:
                    roots |= names & set(library)
    looped, pending = set(), list(roots)
    while pending:
        name = pending.pop()
        if name not in looped:
            looped.add(name)
            pending += calls.get(name, ())
    _refuse_recursion(calls)
    return looped


def _refuse_recursion(calls: dict) -> None:
    """A function that calls itself, directly or not, would recurse without end."""
    done: set = set()

    def visit(name, path):
        if name in path:
            raise BackendError(f'Function "{name}" calls itself: not allowed in a served graph')
        if name in done:
            return
        for callee in calls.get(name, ()):
            visit(callee, path | {name})
        done.add(name)

    for name in list(calls):
        visit(name, set())


def check(graph_def, inputs: list[str]) -> Copies:
    """Refuses the string operations whose copies are not bounded; returns the bound of the rest."""
    library = {f.signature.name: f for f in graph_def.library.function}
    looped = _loop_functions(graph_def, library)
    scopes = [_Scope(graph_def.node, None, set(inputs), False)]
    scopes += [_Scope(f.node_def, f.signature.name, set(), f.signature.name in looped)
               for f in graph_def.library.function]
    total, makes_strings = 0, False
    for scope in scopes:
        for node in scope.nodes.values():
            op_def = _op_def(node.op, library)
            if op_def is None and node.op not in library:
                continue  # not an operation TensorFlow knows: the import refuses it
            if op_def is not None and node.op in _TABLE_VALUES and _table_holds_strings(node):
                if not scope.short_constant(_inputs_by_arg(node, op_def)[_TABLE_VALUES[node.op]][0], library):
                    raise _refuse(node.op, node.name, scope.function,
                                  f"a table's string values must be constants of at most {INLINE} bytes each")
            if types_pb2.DT_STRING not in _output_types(node, op_def, library):
                continue
            makes_strings = True
            if node.op in library:
                continue  # its body is a scope of its own
            total += _node_copies(node, op_def, scope, library)
    return Copies(total + 2 if makes_strings else 0)  # + the inputs' copy into TensorFlow and the outputs'


def _table_holds_strings(node) -> bool:
    return "Tout" in node.attr and node.attr["Tout"].type == types_pb2.DT_STRING


def _node_copies(node, op_def, scope: _Scope, library: dict) -> int:
    rule = RULES.get(node.op)
    if rule is None:
        raise _refuse(node.op, node.name, scope.function, "its copies of a string are not bounded (a string's "
                      "characters are outside BACKEND_MEMORY_LIMIT's allocator)")
    grouped = _inputs_by_arg(node, op_def)
    for arg in rule.short:
        for name in grouped.get(arg, []):
            if not scope.short_constant(name, library):
                raise _refuse(node.op, node.name, scope.function,
                              f"it repeats its {arg}, which must be a constant of strings of at most {INLINE} bytes")
    if node.op == "StringJoin":
        others = [name for name in grouped.get("inputs", []) if not scope.scalar_short_constant(name)]
        if len(others) > 1:  # inputs broadcast against each other: the smaller would be repeated
            raise _refuse(node.op, node.name, scope.function, "it joins more than one input that is not a "
                          f"scalar constant of at most {INLINE} bytes")
    if node.op == "Substr":
        for arg in ("pos", "len"):
            source = scope.nodes.get(_source(grouped[arg][0]))
            if source is None or source.op != "Const" or source.attr["value"].tensor.tensor_shape.dim:
                raise _refuse(node.op, node.name, scope.function, f"its {arg} must be a scalar constant")
    try:
        copies = rule.copies(node) if callable(rule.copies) else rule.copies
    except _Unbounded as e:
        raise _refuse(node.op, node.name, scope.function, str(e)) from None
    if copies and (scope.in_loop or node.name in scope.framed):
        raise _refuse(node.op, node.name, scope.function, "it copies strings inside a loop, which may keep a "
                      "copy per iteration")
    return copies
