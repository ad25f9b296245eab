"""TensorFlow frozen GraphDefs, run through TensorFlow's graph API (tf.compat.v1.Session)."""

from __future__ import annotations

import os

from . import memory

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if memory.budget.limit_bytes:
    # BACKEND_MEMORY_LIMIT, read by TensorFlow when it makes its CPU allocator (so before the import):
    # oneDNN builds (x86) allocate through MklCPUAllocator, capped by TF_MKL_ALLOC_MAX_BYTES; other
    # builds through the BFC allocator these two select and cap. Not counted: Eigen's and oneDNN's
    # scratch outside the allocator, and the graph and session structures.
    os.environ.setdefault("TF_MKL_ALLOC_MAX_BYTES", str(memory.budget.limit_bytes))
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    os.environ.setdefault("TF_CPU_BFC_MEM_LIMIT_IN_MB", str(max(1, memory.budget.limit_bytes >> 20)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import config_pb2  # noqa: E402

from .base import BackendError, Device, Options, first_line  # noqa: E402
from .tf_ops import ALLOWED_OPS  # noqa: E402

tf1 = tf.compat.v1

# A served graph computes on its inputs; it must not reach the file system, the network or Python.
# An allow-list of operation types (tf_ops.py, derived by tools/allowlists.py), applied to every node of
# the graph and of every function in its library, and to every function an attribute names (a function
# attribute naming an operation instead of a library function would instantiate that operation).


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


def _check_operations(graph_def) -> None:
    library = {function.signature.name: function for function in graph_def.library.function}
    bodies = [(None, graph_def.node)] + [(name, function.node_def) for name, function in library.items()]
    for function, nodes in bodies:
        for node in nodes:
            if node.op not in ALLOWED_OPS and node.op not in library:
                raise _refusal(node.op, node.name, function)
            for value in node.attr.values():
                for name in _functions_named(value):
                    if name not in ALLOWED_OPS and name not in library:
                        raise _refusal(name, node.name, function)
    for gradient in graph_def.library.gradient:
        if gradient.gradient_func not in ALLOWED_OPS and gradient.gradient_func not in library:
            raise _refusal(gradient.gradient_func, gradient.function_name, None)


class TFModel:
    def __init__(self, session, inputs: list[str], outputs: list[str], feeds, fetches):
        self.session = session
        self.inputs = inputs
        self.outputs = outputs
        self._feeds = feeds
        # A callable over the graph, as RedisAI's TF_SessionRun fed it: without Session.run's check of
        # a fed value against the placeholder's static shape (a (1, 1, 28, 28) tensor into a
        # (None, 28, 28) placeholder that the graph reshapes runs, as in RedisAI), and with TF's own
        # error text rather than Session.run's "Graph execution error:" rewrite.
        self._call = session._make_callable_from_options(config_pb2.CallableOptions(
            feed=[t.name for t in feeds], fetch=[t.name for t in fetches])) if session is not None else None

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
        if len(inputs) != len(self._feeds):
            raise BackendError(f"Expected {len(self._feeds)} inputs but got {len(inputs)}")
        if self._call is None:  # a tensor of the graph is bigger than BACKEND_MEMORY_LIMIT (TFBackend.load)
            memory.budget.count_refusal("TF")
            raise BackendError(memory.exceeded("TF"))
        try:
            results = self._call(*inputs)
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
    imported (every shape computed from constants). A tensor whose shape depends on an input is held
    to the limit by the allocator while the model runs (TensorFlow first waits 10 s for memory to be
    freed, then answers)."""
    largest = 0
    for operation in graph.get_operations():
        for output in operation.outputs:
            if output.shape.is_fully_defined():
                largest = max(largest, output.shape.num_elements() * output.dtype.size)
    return largest


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
        _check_operations(graph_def)
        graph = tf.Graph()
        device_name = f"/{device.kind}:{device.index or 0}"
        try:
            with graph.as_default(), graph.device(device_name):
                tf1.import_graph_def(graph_def, name="")
        except Exception as e:
            raise BackendError(f"Invalid GraphDef ({first_line(e)})") from None
        operations = {op.name for op in graph.get_operations()}
        for name in inputs:
            if name not in operations:
                raise BackendError(f'Input node named "{name}" not found in TF graph.')
        for name in outputs:
            if name not in operations:
                raise BackendError(f'Output node named "{name}" not found in TF graph')
        config = tf1.ConfigProto(allow_soft_placement=True)
        if options.intra_op_parallelism:
            config.intra_op_parallelism_threads = options.intra_op_parallelism
        if options.inter_op_parallelism:
            config.inter_op_parallelism_threads = options.inter_op_parallelism
        feeds = [graph.get_operation_by_name(name).outputs[0] for name in inputs]
        fetches = [graph.get_operation_by_name(name).outputs[0] for name in outputs]
        if memory.budget.limit_bytes and _largest_static_tensor(graph) > memory.budget.limit_bytes:
            # Never made into a session: constant folding would compute that tensor while the session
            # prepares its first run, with an allocator no cap holds. Its runs answer the limit's error.
            return TFModel(None, list(inputs), list(outputs), feeds, fetches)
        session = tf1.Session(graph=graph, config=config)
        return TFModel(session, list(inputs), list(outputs), feeds, fetches)


BACKEND = TFBackend()
