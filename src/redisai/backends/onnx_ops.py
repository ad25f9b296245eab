"""What an ONNX model may hold, checked on its protobuf before onnxruntime sees it.

A model is a program, and onnxruntime interprets more of it than its graph's nodes: a tensor with external
data names a file (relative to the process's working directory, Redis's `dir`: dump.rdb, the log) or, with
onnxruntime's `*/_ORT_MEM_ADDR_/*` location, a memory address; a model-local function is inlined at every
call, so a few hundred bytes of functions calling each other become millions of nodes. So:

- every message of the model is visited by its protobuf type (descriptors, not known field names): no
  TensorProto anywhere (graphs, subgraphs, functions, attribute defaults, training info, sparse tensors)
  points at external data, and every NodeProto anywhere runs an operator of a standard domain or a local
  function (operators of other domains could only come from a custom-operator library, never registered);
- operators that name files or compiled code (EPContext, Snpe) and StringNormalizer locales that glibc
  would read as a path are refused;
- values reach function bodies by reference (ref_attr_name) only as numbers and strings, never as
  tensors or graphs, so that what a function's inlining copies is its own body;
- the model's size once its functions are inlined is bounded (MAX_INLINED_NODES), and so is what loading
  makes beyond the blob's own bytes (MAX_EXPANDED_BYTES: function bodies copied at every call, sparse
  tensors made dense, as onnxruntime does with every sparse initializer and Constant); no function calls
  itself;
- the blob's protobuf fields are counted before it is parsed (MAX_FIELDS: a few bytes of protobuf make a
  message of a hundred), and a field this onnx package does not define is refused.
"""

from __future__ import annotations

import math
import re

from .base import BackendError, first_line

# The operator sets onnxruntime implements itself: ONNX ("" / "ai.onnx"), ONNX-ML and onnxruntime's contrib set.
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
EXTERNAL_DATA = "Initializer tensors with external data is not allowed."

# Standard-domain operators a served model does not need and that reach outside the model: EPContext's
# ep_cache_context names a file (relative to the model) holding an execution provider's compiled code when
# embed_mode is 0, and Snpe carries a compiled SNPE program. Neither runs on onnxruntime's CPU provider.
REFUSED_OPERATORS = {("com.microsoft", "EPContext"): "it loads an execution provider's compiled code",
                     ("com.microsoft", "Snpe"): "it carries compiled SNPE code"}
# StringNormalizer's locale goes to std::locale, i.e. glibc's newlocale, which reads a name starting with
# "/" as a directory of locale files: a name is letters, digits and `_ . @ -` (en_US.UTF-8, C, de_DE@euro).
_LOCALE = re.compile(r"[A-Za-z0-9_.@-]{0,64}")

# onnxruntime inlines every call of a local function, level by level, and its load time grows with the
# nodes each level holds: a node counts once, plus once per function it was inlined through. On a 2-core
# VM about 40 to 120 us each (a flat graph of 65536 nodes loads in 5 s, the same nodes through two levels
# of functions in 24 s); under the bound, the slowest shapes load in 6 s (a flat graph of 99000 nodes).
# Real models: transformers' BERT 453 (no functions), the scikit-learn pipeline 5.
MAX_INLINED_NODES = 100_000
# What loading makes beyond the blob's own bytes: each call of a function copies its body (Constant tensors
# included), and a sparse tensor becomes dense (a 127-byte model took 400 MB, and would take any size).
MAX_EXPANDED_BYTES = 256 * 1024 * 1024
# Protobuf fields of the blob, counted before parsing: an empty message is 2 bytes of protobuf and about
# 150 of memory once parsed (here and again in onnxruntime): 5 million took 750 MB from a 10 MB blob.
# BERT (44 MB) has 4013; a 2 GB language model about 200000.
MAX_FIELDS = 2_000_000

# Attribute fields holding what may not pass to a function body by reference.
_VALUE_FIELDS = ("t", "g", "sparse_tensor", "tp", "tensors", "graphs", "sparse_tensors", "type_protos")


def check_model(blob: bytes) -> None:
    """Raises BackendError naming what the model may not hold; only reads the protobuf."""
    from onnx import ModelProto

    _count_fields(blob, ModelProto.DESCRIPTOR)
    try:
        model = ModelProto.FromString(blob)
    except Exception as e:
        raise BackendError(f"No graph was found in the protobuf. ({first_line(e)})") from None
    functions = {(f.domain, f.name, f.overload): f for f in model.functions}
    # What a function's attributes may hold is said after the walk, so that a tensor there with external
    # data, or an operator refused, is what the error names.
    deferred: list[str] = []
    dense = 0  # sparse tensors outside functions, made dense (those in functions: at each call)
    for message, path in _messages(model):
        kind = message.DESCRIPTOR.full_name
        check = _CHECKS.get(kind)
        if check is not None:
            check(message, path, functions, deferred)
        elif kind == "onnx.SparseTensorProto" and path[0][0] != "functions":
            dense += _dense_bytes(message)
    if deferred:
        raise BackendError(deferred[0])
    _bound_inlined_size(model, functions, dense)


# ---------------------------------------------------------------- every message, by type


def _messages(root):
    """Every message inside `root` (itself included) with its path from the root, a tuple of
    (field name, element) pairs, found through the descriptors: no field of any type is left out."""
    stack = [(root, ())]
    while stack:
        message, path = stack.pop()
        yield message, path
        for field, repeated in _message_fields(message.DESCRIPTOR):
            if repeated:
                stack.extend((child, (*path, (field, child))) for child in getattr(message, field))
            elif message.HasField(field):
                child = getattr(message, field)
                stack.append((child, (*path, (field, child))))


_FIELDS_BY_TYPE: dict[str, list[tuple[str, bool]]] = {}


def _message_fields(descriptor) -> list[tuple[str, bool]]:
    """The message-typed fields of a message type: (name, repeated). ONNX has no map field; one would be
    refused here rather than walked wrongly (iterating a map gives its keys)."""
    fields = _FIELDS_BY_TYPE.get(descriptor.full_name)
    if fields is None:
        fields = []
        for field in descriptor.fields:
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                raise BackendError(f"{descriptor.full_name}.{field.name} is a map, which no ONNX message has")
            fields.append((field.name, _is_repeated(field)))
        _FIELDS_BY_TYPE[descriptor.full_name] = fields
    return fields


def _is_repeated(field) -> bool:
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


def _where(path) -> str:
    """`functions[local::Leak].attribute_proto[secret].t`: each step's field and what names the element."""
    steps = []
    for field, message in path:
        name = _name_of(message)
        steps.append(f"{field}[{name}]" if name else field)
    return ".".join(steps) or "the model"


def _name_of(message) -> str:
    kind = message.DESCRIPTOR.full_name
    if kind == "onnx.FunctionProto":
        return f"{message.domain}::{message.name}"
    if kind == "onnx.NodeProto":
        return message.name or f"{message.domain}::{message.op_type}"
    return getattr(message, "name", "") if kind != "onnx.ModelProto" else ""


def _check_tensor(tensor, path, functions, deferred) -> None:
    from onnx import TensorProto

    if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
        if len(path) == 2 and path[0][0] == "graph" and path[1][0] == "initializer":
            raise BackendError(EXTERNAL_DATA)  # RedisAI's text, for the place RedisAI checked
        raise BackendError(f"Tensor '{tensor.name}' at {_where(path)} has external data, which is not allowed.")


def _check_node(node, path, functions, deferred) -> None:
    key = (node.domain, node.op_type)
    refused = REFUSED_OPERATORS.get(key)
    if refused is None and node.domain not in STANDARD_DOMAINS and (*key, node.overload) not in functions:
        refused = "no custom-operator library is loaded"
    if refused is not None:
        raise BackendError(f'Operator {node.domain}::{node.op_type} (node "{node.name}") is not allowed in a served '
                           f"model ({refused})")
    if node.op_type == "StringNormalizer" and node.domain in ("", "ai.onnx"):
        for attribute in node.attribute:
            if attribute.name != "locale":
                continue
            if attribute.ref_attr_name:
                raise BackendError(f'StringNormalizer (node "{node.name}"): a locale given by reference '
                                   f"('{attribute.ref_attr_name}') is not allowed")
            if not _LOCALE.fullmatch(_text(attribute.s)):
                raise BackendError(f'StringNormalizer (node "{node.name}"): locale \'{_text(attribute.s[:64])}\' is '
                                   "not a locale name (letters, digits, _ . @ -)")
    if (*key, node.overload) in functions:
        for attribute in node.attribute:
            if any(_set(attribute, field) for field in _VALUE_FIELDS):
                deferred.append(f'Node "{node.name}" passes attribute \'{attribute.name}\' to function '
                                f"{node.domain}::{node.op_type} as a tensor, graph or type: a function's "
                                "attributes may only be numbers and strings")


def _check_function(function, path, functions, deferred) -> None:
    for attribute in function.attribute_proto:
        if any(_set(attribute, field) for field in _VALUE_FIELDS):
            deferred.append(f"Function {function.domain}::{function.name}: the default of attribute "
                            f"'{attribute.name}' is a tensor, graph or type: a function's attributes may only be "
                            "numbers and strings")


def _set(attribute, field: str) -> bool:
    value = getattr(attribute, field)
    return len(value) > 0 if field.endswith("s") else attribute.HasField(field)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


_CHECKS = {"onnx.TensorProto": _check_tensor, "onnx.NodeProto": _check_node, "onnx.FunctionProto": _check_function}


# ---------------------------------------------------------------- the model once its functions are inlined


def _bound_inlined_size(model, functions, dense: int) -> None:
    sizes: dict = {}  # function key -> (nodes, weighted nodes, bytes) of its body once inlined
    visiting: set = set()

    def function_size(key) -> tuple[int, int, int]:
        size = sizes.get(key)
        if size is None:
            if key in visiting:
                raise BackendError(f"Function {key[0]}::{key[1]} calls itself (directly or through other "
                                   "functions), which onnxruntime would inline without end")
            visiting.add(key)
            body = functions[key].node
            nodes, weighted, inlined_bytes = nodes_size(body)
            own = sum(node.ByteSize() + _dense_in(node) for node in body)
            size = sizes[key] = (nodes, weighted, inlined_bytes + own)
            visiting.discard(key)
        return size

    def nodes_size(nodes_list) -> tuple[int, int, int]:
        """(nodes, nodes weighted by the function levels below this list, bytes that calls copy)."""
        total = weighted = copied = 0
        for node in nodes_list:
            total += 1
            weighted += 1
            key = (node.domain, node.op_type, node.overload)
            if key in functions:
                inner, inner_weighted, inner_bytes = function_size(key)
                total += inner
                weighted += inner_weighted + inner  # each of its nodes one level deeper
                copied += inner_bytes
            for attribute in node.attribute:
                graphs = [*attribute.graphs, attribute.g] if attribute.HasField("g") else attribute.graphs
                for graph in graphs:
                    inner, inner_weighted, inner_bytes = nodes_size(graph.node)
                    total, weighted, copied = total + inner, weighted + inner_weighted, copied + inner_bytes
            if weighted > MAX_INLINED_NODES or copied > MAX_EXPANDED_BYTES:
                break  # already over: the caller says so
        return total, weighted, copied

    graphs = [model.graph] + [g for t in model.training_info for g in (t.initialization, t.algorithm)]
    total = weighted = copied = 0
    for graph in graphs:
        nodes, graph_weighted, graph_bytes = nodes_size(graph.node)
        total, weighted, copied = total + nodes, weighted + graph_weighted, copied + graph_bytes
    if weighted > MAX_INLINED_NODES:
        raise BackendError(f"The model has over {MAX_INLINED_NODES} nodes once its functions are inlined (a node "
                           "counted once, plus once per function it is inlined through): the bound is "
                           f"MAX_INLINED_NODES ({MAX_INLINED_NODES})")
    if copied + dense > MAX_EXPANDED_BYTES:
        raise BackendError(f"Loading the model would make over {MAX_EXPANDED_BYTES} bytes beyond its own (function "
                           "bodies copied at every call, sparse tensors made dense): the bound is MAX_EXPANDED_BYTES "
                           f"({MAX_EXPANDED_BYTES})")


def _dense_in(node) -> int:
    return sum(_dense_bytes(message) for message, _ in _messages(node)
               if message.DESCRIPTOR.full_name == "onnx.SparseTensorProto")


def _dense_bytes(sparse) -> int:
    """A sparse tensor's size once dense: its dims' product times its values' element size (a string
    counted as the 32 bytes of an empty std::string)."""
    from onnx import helper

    try:
        itemsize = helper.tensor_dtype_to_np_dtype(sparse.values.data_type).itemsize
    except Exception:
        itemsize = 8
    if itemsize == 0 or sparse.values.data_type == 8:  # STRING
        itemsize = 32
    return math.prod(max(dim, 0) for dim in sparse.dims) * itemsize


# ---------------------------------------------------------------- the blob's fields, before it is parsed


def _count_fields(blob: bytes, descriptor) -> int:
    """The protobuf fields of `blob` at every depth (message-typed fields entered through the descriptors);
    raises BackendError past MAX_FIELDS, on a field this onnx does not define, or on bytes that are no
    protobuf. Unknown fields are refused so that the walk by type sees every message onnxruntime will, should
    its ONNX schema be newer than this onnx package's."""
    data = blob
    count = 0
    stack = [(0, len(blob), descriptor)]
    while stack:
        position, end, message_type = stack.pop()
        by_number = _SUBMESSAGES.get(message_type.full_name)
        if by_number is None:
            by_number = _SUBMESSAGES[message_type.full_name] = {field.number: field.message_type
                                                                 for field in message_type.fields}
        while position < end:
            key = data[position]
            if key < 0x80:  # one byte: the common case, kept out of the call
                position += 1
            else:
                key, position = _varint(data, position, end)
            wire_type, number = key & 7, key >> 3
            if number not in by_number:
                raise BackendError(f"Field {number} of {message_type.full_name} is not one this server's onnx "
                                   f"package ({_onnx_version()}) defines")
            count += 1
            if count > MAX_FIELDS:
                raise BackendError(f"The model's protobuf has over {MAX_FIELDS} fields: the bound is MAX_FIELDS "
                                   f"({MAX_FIELDS})")
            if wire_type == 0:
                _, position = _varint(data, position, end)
            elif wire_type == 2:
                length = data[position] if position < end else 0x80
                if length < 0x80:
                    position += 1
                else:
                    length, position = _varint(data, position, end)
                if position + length > end:
                    raise BackendError("No graph was found in the protobuf. (a field runs past its message)")
                inner = by_number[number]
                if inner is not None and length:
                    stack.append((position, position + length, inner))
                position += length
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            else:  # groups (3, 4) are in no ONNX message
                raise BackendError(f"No graph was found in the protobuf. (wire type {wire_type})")
        if position > end:
            raise BackendError("No graph was found in the protobuf. (a field runs past its message)")
    return count


_SUBMESSAGES: dict = {}  # message type -> {field number: its message type, None for a scalar}


def _onnx_version() -> str:
    import onnx
    return onnx.__version__


def _varint(data: memoryview, position: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= end or shift > 63:
            raise BackendError("No graph was found in the protobuf. (a truncated number)")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
