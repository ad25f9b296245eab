"""TensorFlow frozen GraphDefs, run through TensorFlow's graph API (tf.compat.v1.Session)."""

from __future__ import annotations

import os

from . import memory

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if memory.budget.limit_bytes:
    # BACKEND_MEMORY_LIMIT, read by TensorFlow when it makes its CPU allocator (so before the import):
    # oneDNN builds (x86) allocate through MklCPUAllocator, capped by TF_MKL_ALLOC_MAX_BYTES; other
    # builds through the BFC allocator these two select and cap. Not counted: Eigen's and oneDNN's
    # scratch outside the allocator, the graph and session structures, and the characters of strings
    # longer than 22 bytes (each on the heap: see tf_strings.py).
    os.environ.setdefault("TF_MKL_ALLOC_MAX_BYTES", str(memory.budget.limit_bytes))
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    os.environ.setdefault("TF_CPU_BFC_MEM_LIMIT_IN_MB", str(max(1, memory.budget.limit_bytes >> 20)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import types_pb2  # noqa: E402
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2  # noqa: E402
from tensorflow.python.framework import function_def_to_graph, op_def_registry  # noqa: E402

from . import tf_strings  # noqa: E402
from .base import ALLOW_LISTS, BackendError, Device, Options, first_line  # noqa: E402
from .tf_ops import ALLOWED_OPS  # noqa: E402

tf1 = tf.compat.v1

# A served graph computes on its inputs; it must not reach the file system, the network or Python, end
# the process, keep a worker past MODEL_EXECUTION_TIMEOUT, or hold memory past BACKEND_MEMORY_LIMIT.
# TFBackend.load, in order, before TensorFlow runs anything:
# - every node of the graph and of every function in its library, and every function an attribute names,
#   is an allowed operation (tf_ops.py, derived by tools/allowlists.py) or a function of the library; no
#   function takes the name of an operation; no constant is a resource handle or a variant (their protos
#   name devices and containers, or encode C++ objects TensorFlow decodes by type name);
# - what TensorFlow would read as choices of where and how to run, rather than what to compute, is
#   cleared (`_neutralize`), and a PlaceholderWithDefault nobody feeds becomes its default (`_fix_defaults`);
# - strings: which operations may copy them, and how often (tf_strings.py);
# - kept operations that abort on some inputs get checks before them (`GUARDS`, `ATTRIBUTE_CHECKS`);
# - constants are counted at their real size (a TensorProto's last value repeats to fill its shape);
# - the graph is imported (TensorFlow infers shapes, checking attributes) and so is every function body,
#   which the import does not infer (`_infer_function_bodies`);
# - the session: no constant folding by the classic optimizer, Grappler bounded in time, and every run,
#   warm-up included, cancelled at MODEL_EXECUTION_TIMEOUT (`session_config`, TFModel).


def _refusal(op: str, node: str, function: str | None) -> BackendError:
    where = f'node "{node}"' + (f' in function "{function}"' if function else "")
    return BackendError(f"Operation {op} ({where}) is not allowed in a served graph")


def _functions_named(value):
    """Function names in an AttrValue: `func`, `list.func`, and those in their own attributes."""
    kind = value.WhichOneof("value")
    named = [value.func] if kind == "func" else list(value.list.func) if kind == "list" else []
    for function in named:
        yield function.name
        for inner in function.attr.values():
            yield from _functions_named(inner)


def _bodies(graph_def):
    """(function name or None, nodes) of the graph and of each library function."""
    return [(None, graph_def.node)] + [(f.signature.name, f.node_def) for f in graph_def.library.function]


def _check_operations(graph_def) -> None:
    library = {function.signature.name: function for function in graph_def.library.function}
    for name in library:
        if op_def_registry.get(name) is not None:  # a call of it would be ambiguous: TF resolves either
            raise BackendError(f'Function "{name}" takes the name of an operation: not allowed in a served graph')
    for function, nodes in _bodies(graph_def):
        for node in nodes:
            if node.op not in ALLOWED_OPS and node.op not in library:
                raise _refusal(node.op, node.name, function)
            for value in node.attr.values():
                for name in _functions_named(value):
                    if name not in ALLOWED_OPS and name not in library:
                        raise _refusal(name, node.name, function)
                if _holds_handle_or_variant(value):
                    raise BackendError(f'Node "{node.name}" ({node.op}) holds a resource or variant constant: '
                                       "not allowed in a served graph")


_HANDLE_TYPES = {types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT}


def _holds_handle_or_variant(value) -> bool:
    """A tensor attribute (Const's value) whose proto is a resource handle (a device, container and name
    of a resource) or variants (encoded C++ objects TensorFlow decodes by type name)."""
    kind = value.WhichOneof("value")
    tensors = [value.tensor] if kind == "tensor" else list(value.list.tensor) if kind == "list" else []
    return any(t.dtype in _HANDLE_TYPES or t.resource_handle_val or t.variant_val for t in tensors)


# Call attributes that choose how a function runs: its session configuration (Grappler's optimizers,
# devices, thread pools) and its executor. Cleared: the defaults run every exported graph.
_CALL_SETTINGS = ("config", "config_proto", "executor_type")


def _fix_defaults(graph_def, inputs: list[str]) -> None:
    """A PlaceholderWithDefault the client does not feed (not among INPUTS, or in a function) always gives
    its default: made an Identity of it, so that TensorFlow's shape inference sees the shapes it gives. A
    4 GB Fill whose shape comes through one is then known at store (the limit's check) instead of asking
    the allocator while the model runs, where the allocator waits 10 s for memory before it answers
    (past MODEL_EXECUTION_TIMEOUT's default)."""
    fed = set(inputs)
    for function, nodes in _bodies(graph_def):
        for node in nodes:
            if node.op == "PlaceholderWithDefault" and (function is not None or node.name not in fed):
                dtype = node.attr["dtype"].type
                node.op = "Identity"
                node.ClearField("attr")
                node.attr["T"].type = dtype


def _neutralize(graph_def) -> None:
    """Clears, in place, what TensorFlow reads as choices about where and how the graph runs rather
    than what it computes: nodes' devices (another task or job, a named device) and full types,
    underscore attributes (colocation `_class`, XLA `_XlaCompile`/`_XlaMustCompile`/`_XlaScope`, a kernel
    label `_kernel`, `_noinline`, lowering hints), function calls' session configuration and executor,
    functions' own attributes and their arguments' attributes, and gradient definitions
    (`library.gradient`, `registered_gradients`: only gradient computations read them). The model's
    bytes stay as stored."""
    for _, nodes in _bodies(graph_def):
        for node in nodes:
            node.ClearField("device")
            node.ClearField("experimental_type")  # full types TensorFlow infers again itself
            for key in [key for key in node.attr if key.startswith("_")]:
                del node.attr[key]
            for key in _CALL_SETTINGS:
                if key in node.attr:
                    node.attr[key].s = b""
    for function in graph_def.library.function:
        function.ClearField("attr")
        function.ClearField("arg_attr")
        function.ClearField("resource_arg_unique_id")
    graph_def.library.ClearField("gradient")
    graph_def.library.ClearField("registered_gradients")


# One tstring per element, 24 bytes in the allocator; the characters of a string longer than 22 bytes on
# the heap (tstring's small-string form holds up to 22 inline).
_TSTRING_BYTES = 24
_INLINE_STRING = 22


def _heap_bytes(length: int) -> int:
    return length + 1 if length > _INLINE_STRING else 0


def constant_bytes(tensor) -> tuple[int, int]:
    """(bytes in the allocator, characters on the heap) of the tensor a TensorProto makes. TensorFlow
    fills the shape by repeating the proto's last value: a few bytes can declare gigabytes."""
    count = 1
    for dim in tensor.tensor_shape.dim:
        count *= max(dim.size, 0)
    if tensor.dtype == types_pb2.DT_STRING:
        values = list(tensor.string_val)
        heap = sum(_heap_bytes(len(v)) for v in values[:count])
        if values and count > len(values):
            heap += (count - len(values)) * _heap_bytes(len(values[-1]))
        return count * _TSTRING_BYTES, heap
    try:
        size = tf.dtypes.as_dtype(tensor.dtype).size
    except TypeError:
        size = 8
    return count * size, 0


def _constants_bytes(graph_def) -> tuple[int, int]:
    """Allocator and heap bytes of every constant of the graph and its functions: a session holds them all."""
    allocated = heap = 0
    for _, nodes in _bodies(graph_def):
        for node in nodes:
            for value in node.attr.values():
                kind = value.WhichOneof("value")
                for tensor in [value.tensor] if kind == "tensor" else list(value.list.tensor) if kind == "list" else []:
                    more_allocated, more_heap = constant_bytes(tensor)
                    allocated, heap = allocated + more_allocated, heap + more_heap
    return allocated, heap


def _infer_function_bodies(graph, graph_def) -> None:
    """TensorFlow infers shapes, checking attributes as it goes, for the graph's nodes at import, but
    not for a loop's body or condition: an attribute its shape function refuses (AudioSpectrogram's
    window_size -1) would reach the kernel there and end the process. Each function is imported here
    the same way."""
    with graph.as_default():
        for function in graph_def.library.function:
            try:
                function_def_to_graph.function_def_to_graph(function)
            except Exception as e:
                raise BackendError(f'Invalid GraphDef (function "{function.signature.name}": {first_line(e)})') from None


# Kept operations that the crash probe (tools/allowlists.py --probe) saw end the process, because real
# exports hold them (Keras RNNs: TensorListGetItem/SetItem; transposed convolutions; quantization-aware
# training; tf.signal): before each such node the graph gets checks of what the probe found fatal, so
# that the run answers an error (InvalidArgument from an Assert) where the kernel would abort. A check:
# (what is measured of an input: its rank, its size or its smallest value; the input; a comparison; a
# bound). Attributes, which never change, are checked at store (`ATTRIBUTE_CHECKS`).
GUARDS: dict[str, list[tuple[str, str, str, int]]] = {
    "TensorListGetItem": [("size", "index", "==", 1), ("rank", "element_shape", "<=", 1)],
    "TensorListSetItem": [("size", "index", "==", 1), ("min", "index", ">=", 0)],
    "RFFT": [("rank", "fft_length", "==", 1), ("min", "fft_length", ">=", 1)],
    "RFFT2D": [("rank", "fft_length", "==", 1), ("min", "fft_length", ">=", 1)],
    "RFFT3D": [("rank", "fft_length", "==", 1), ("min", "fft_length", ">=", 1)],
    "FakeQuantWithMinMaxVarsPerChannel": [("rank", "inputs", ">=", 1), ("rank", "min", "==", 1),
                                          ("rank", "max", "==", 1)],
    "Conv2DBackpropInput": [("rank", "input_sizes", "==", 1), ("rank", "filter", "==", 4),
                            ("rank", "out_backprop", "==", 4)],
    "Conv3DBackpropInputV2": [("rank", "input_sizes", "==", 1), ("rank", "filter", "==", 5),
                              ("rank", "out_backprop", "==", 5)],
}
_COMPARISONS = {"==": "Equal", "<=": "LessEqual", ">=": "GreaterEqual"}


def _positive_list(node, name: str, length: int, allow_empty: bool = False) -> str | None:
    values = list(node.attr[name].list.i) if name in node.attr else []
    if allow_empty and not values:
        return None
    if len(values) != length or any(v < 1 for v in values):
        return f"{name} must be {length} numbers of at least 1"
    return None


def _convolution_attributes(rank: int):
    def check(node) -> str | None:
        return _positive_list(node, "strides", rank) or _positive_list(node, "dilations", rank, allow_empty=True)
    return check


def _spectrogram_attributes(node) -> str | None:
    if node.attr["window_size"].i <= 1 or node.attr["stride"].i < 1:
        return "window_size must be over 1 and stride at least 1"
    return None


def _parallel_iterations(node) -> str | None:
    """A loop's iterations run at once: 0 or fewer divide by zero in the executor (SIGFPE)."""
    if "parallel_iterations" in node.attr and node.attr["parallel_iterations"].i < 1:
        return "parallel_iterations must be at least 1"
    return None


ATTRIBUTE_CHECKS = {"Conv2DBackpropInput": _convolution_attributes(4),
                    "Conv3DBackpropInputV2": _convolution_attributes(5),
                    "AudioSpectrogram": _spectrogram_attributes,
                    "Enter": _parallel_iterations, "While": _parallel_iterations,
                    "StatelessWhile": _parallel_iterations}


def _guard(graph_def) -> None:
    """Adds `GUARDS`' checks before the nodes they guard (in place), and refuses attributes
    `ATTRIBUTE_CHECKS` finds fatal."""
    taken = {node.name for _, nodes in _bodies(graph_def) for node in nodes}
    for function, nodes in [(None, graph_def.node)] + [(f.signature.name, f.node_def)
                                                        for f in graph_def.library.function]:
        for node in list(nodes):
            attribute_check = ATTRIBUTE_CHECKS.get(node.op)
            problem = attribute_check(node) if attribute_check else None
            if problem:
                raise BackendError(f'Operation {node.op} (node "{node.name}"{_in(function)}): {problem}')
            if node.op in GUARDS:
                _add_checks(nodes, node, function, taken)


def _in(function: str | None) -> str:
    return f' in function "{function}"' if function else ""


def _add_checks(nodes, node, function: str | None, taken: set) -> None:
    op_def = op_def_registry.get(node.op)
    data = [name for name in node.input if not name.startswith("^")]
    arguments, at = {}, 0
    for arg in op_def.input_arg:
        arguments[arg.name] = (data[at] if at < len(data) else None,
                               arg.type or node.attr[arg.type_attr].type)
        at += 1

    def add(op: str, inputs: list[str], output: str = "output", **attrs) -> str:
        name = f"{node.name}/redisai_check_{len(taken)}"
        taken.add(name)
        new = nodes.add(name=name, op=op)
        new.input.extend(inputs)
        for key, value in attrs.items():
            new.attr[key].CopyFrom(value)
        return name if function is None else f"{name}:{output}:0"

    def constant(value, dtype: int, anchor: str) -> str:
        tensor = tf.make_tensor_proto(value, dtype=tf.dtypes.as_dtype(dtype))
        # In the graph, a constant joins the checked tensor's loop frame through a control input.
        inputs = [] if function is not None else ["^" + anchor.split(":")[0]]
        return add("Const", inputs, value=tf1.AttrValue(tensor=tensor), dtype=tf1.AttrValue(type=dtype))

    int32 = types_pb2.DT_INT32
    for measure, argument, comparison, bound in GUARDS[node.op]:
        tensor, dtype = arguments[argument]
        if tensor is None:
            continue
        if measure == "min":
            axes = add("Range", [constant(0, int32, tensor), add("Rank", [tensor], T=tf1.AttrValue(type=dtype)),
                                 constant(1, int32, tensor)], Tidx=tf1.AttrValue(type=int32))
            measured = add("Min", [tensor, axes], T=tf1.AttrValue(type=dtype), Tidx=tf1.AttrValue(type=int32))
            compared_type = dtype
        else:
            measured = add("Rank" if measure == "rank" else "Size", [tensor], T=tf1.AttrValue(type=dtype))
            compared_type = int32
        condition = add(_COMPARISONS[comparison], [measured, constant(bound, compared_type, tensor)], output="z",
                        T=tf1.AttrValue(type=compared_type))
        message = constant(f"{node.op} (node {node.name}): {measure} of {argument} must be {comparison} {bound}",
                           types_pb2.DT_STRING, tensor)
        check = add("Assert", [condition, message], T=tf1.AttrValue(list=tf1.AttrValue.ListValue(
            type=[types_pb2.DT_STRING])))
        node.input.append("^" + check.split(":")[0])


class TFModel:
    def __init__(self, session, inputs: list[str], outputs: list[str], feeds, fetches, timeout_ms: int = 0,
                 strings: tf_strings.Copies | None = None):
        self.session = session
        self.inputs = inputs
        self.outputs = outputs
        self._feeds = feeds
        self._timeout_ms = timeout_ms
        self._strings = strings or tf_strings.Copies()
        # A callable over the graph, as RedisAI's TF_SessionRun fed it: without Session.run's check of
        # a fed value against the placeholder's static shape (a (1, 1, 28, 28) tensor into a
        # (None, 28, 28) placeholder that the graph reshapes runs, as in RedisAI), and with TF's own
        # error text rather than Session.run's "Graph execution error:" rewrite. MODEL_EXECUTION_TIMEOUT
        # reaches TensorFlow: a run past it is cancelled (a loop stops between two iterations) and its
        # worker takes its next job.
        options = config_pb2.CallableOptions(feed=[t.name for t in feeds], fetch=[t.name for t in fetches])
        options.run_options.timeout_in_ms = timeout_ms
        self._call = session._make_callable_from_options(options) if session is not None else None

    def declared_inputs(self) -> list[tuple[np.dtype, tuple[int, ...]]] | None:
        """The placeholders' types and static shapes (an unknown dimension: 1), for warm-up; None when
        one has no known rank or is no numeric tensor."""
        declared = []
        for feed in self._feeds:
            if feed.shape.rank is None or feed.dtype == tf.string or not feed.dtype.is_numpy_compatible:
                return None
            declared.append((np.dtype(feed.dtype.as_numpy_dtype),
                             tuple(dim if dim is not None and dim > 0 else 1 for dim in feed.shape.as_list())))
        return declared

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self._call is not None and len(inputs) != len(self._feeds):
            raise BackendError(f"Expected {len(self._feeds)} inputs but got {len(inputs)}")
        if self._call is None or not self._strings.fit(inputs, memory.budget.limit_bytes):
            # A tensor of the graph is bigger than BACKEND_MEMORY_LIMIT (TFBackend.load), or the copies
            # of these input strings the graph may make would pass it (tf_strings.py).
            memory.budget.count_refusal("TF")
            raise BackendError(memory.exceeded("TF"))
        try:
            results = self._call(*inputs)
        except tf.errors.DeadlineExceededError:
            raise BackendError(f"Model execution exceeded MODEL_EXECUTION_TIMEOUT ({self._timeout_ms} ms)") from None
        except tf.errors.OpError as e:
            if _out_of_budget(e):
                memory.budget.count_refusal("TF")
                raise BackendError(memory.exceeded("TF")) from None
            raise BackendError(e.message) from None  # whole: the reply puts it on one line, as RedisAI
        except Exception as e:
            raise BackendError(first_line(e)) from None
        return [_from_tf(result) for result in results]


def _out_of_budget(error) -> bool:
    """A run stopped by the capped allocator (TensorFlow's OOM)."""
    return bool(memory.budget.limit_bytes) and isinstance(error, tf.errors.ResourceExhaustedError)


def _from_tf(value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind == "S" or array.dtype == object:  # TF strings come back as bytes
        return np.array(array.tolist(), dtype=object).reshape(array.shape)
    return array


def _largest_static_tensor(graph) -> int:
    """Bytes of the biggest output whose shape TensorFlow's shape inference knows when the graph is
    imported (every shape computed from constants; a string counted as its tstring). A tensor whose
    shape depends on an input is held to the limit by the allocator while the model runs (TensorFlow
    first waits 10 s for memory to be freed, then answers)."""
    largest = 0
    for operation in graph.get_operations():
        for output in operation.outputs:
            if output.shape.is_fully_defined():
                size = _TSTRING_BYTES if output.dtype == tf.string else output.dtype.size
                largest = max(largest, output.shape.num_elements() * size)
    return largest


def session_config(options: Options):
    config = tf1.ConfigProto(allow_soft_placement=True)
    if options.intra_op_parallelism:
        config.intra_op_parallelism_threads = options.intra_op_parallelism
    if options.inter_op_parallelism:
        config.inter_op_parallelism_threads = options.inter_op_parallelism
    # The classic graph optimizer's constant folding computes constant subgraphs while the session is
    # made (at MODELSTORE), with no deadline and, for strings, on the heap: a Fill of strings whose
    # shape comes through a PlaceholderWithDefault took 1 GB there. Off (common subexpressions stay):
    # those subgraphs run in the model's runs, under the deadline and the allocator's cap. Grappler's
    # constant folding stays (it skips outputs over 10 MB and MobileNetV2 runs 35% slower without it):
    # it sees no string copy tf_strings.py has not bounded.
    optimizer = config.graph_options.optimizer_options
    optimizer.opt_level = config_pb2.OptimizerOptions.L0
    optimizer.do_common_subexpression_elimination = True
    optimizer.do_constant_folding = False
    # Grappler gives up (keeping what it optimized) past this: a graph made to keep it busy does not hold
    # the build's worker longer.
    config.graph_options.rewrite_options.meta_optimizer_timeout_ms = GRAPPLER_TIMEOUT_MS
    config.graph_options.rewrite_options.constant_folding = rewriter_config_pb2.RewriterConfig.DEFAULT
    return config


GRAPPLER_TIMEOUT_MS = 30_000


class TFBackend:
    name = "TF"

    def version(self) -> str:
        return tf.__version__

    def memory_in_use(self) -> tuple[int, int] | None:
        """The CPU allocator's bytes in use and peak (shared by every session)."""
        try:
            info = tf.config.experimental.get_memory_info("CPU:0")
        except (ValueError, RuntimeError):
            return None
        return info["current"], info["peak"]

    def load(self, blob: bytes, device: Device, inputs: list[str], outputs: list[str], options: Options) -> TFModel:
        if device.kind == "GPU" and not tf.config.list_physical_devices("GPU"):
            raise BackendError("GPU requested but TF couldn't find CUDA")
        graph_def = tf1.GraphDef()
        try:
            graph_def.ParseFromString(blob)
        except Exception:
            raise BackendError("Invalid GraphDef") from None
        if ALLOW_LISTS:
            _check_operations(graph_def)
            _neutralize(graph_def)
            _fix_defaults(graph_def, inputs)
        strings = tf_strings.check(graph_def, inputs) if ALLOW_LISTS else tf_strings.Copies()
        if ALLOW_LISTS:
            _guard(graph_def)
        constants, constant_heap = _constants_bytes(graph_def)
        limit = memory.budget.limit_bytes
        names = {node.name for node in graph_def.node}
        for name in inputs:
            if name not in names:
                raise BackendError(f'Input node named "{name}" not found in TF graph.')
        for name in outputs:
            if name not in names:
                raise BackendError(f'Output node named "{name}" not found in TF graph')
        if limit and constants + constant_heap > limit:
            # Never imported: TensorFlow makes constants' tensors when it infers shapes and makes the
            # session, strings on the heap. Its runs answer the limit's error.
            return TFModel(None, list(inputs), list(outputs), [], [])
        graph = tf.Graph()
        device_name = f"/{device.kind}:{device.index or 0}"
        try:
            with graph.as_default(), graph.device(device_name):
                tf1.import_graph_def(graph_def, name="")
        except Exception as e:
            raise BackendError(f"Invalid GraphDef ({first_line(e)})") from None
        _infer_function_bodies(graph, graph_def)
        feeds = [graph.get_operation_by_name(name).outputs[0] for name in inputs]
        fetches = [graph.get_operation_by_name(name).outputs[0] for name in outputs]
        if limit and max(_largest_static_tensor(graph), constants + constant_heap) > limit:
            # Never made into a session: constant folding would compute that tensor while the session
            # prepares its first run, with an allocator no cap holds. Its runs answer the limit's error.
            return TFModel(None, list(inputs), list(outputs), feeds, fetches)
        strings.constant_heap = constant_heap
        session = tf1.Session(graph=graph, config=session_config(options))
        try:
            return TFModel(session, list(inputs), list(outputs), feeds, fetches, options.execution_timeout_ms, strings)
        except tf.errors.OpError as e:
            session.close()
            if _out_of_budget(e):
                return TFModel(None, list(inputs), list(outputs), feeds, fetches)
            raise BackendError(f"Invalid GraphDef ({first_line(e)})") from None


BACKEND = TFBackend()
