"""Small models built with the real frameworks, cached on disk for the tests.

Every public function returns the model blob as ``bytes``.  The first call
builds it with its framework (nothing is ever downloaded) and writes it under
``tests/.cache/``; later calls, from any process, only read that file.  Files
are written to a temporary name and then hard-linked into place, which fails
if the file is already there: when two pytest-xdist workers build the same
model at once, both may build it, but the first to finish wins, nobody sees a
torn file, and every caller gets the same bytes (a rebuilt TensorFlow graph is
not always byte-identical to the last one).

Framework imports stay inside the functions: a test that needs no TensorFlow
does not pay for importing it.

Input and output names of each model:

=====================  ==========================  ===========================
function               inputs                      outputs
=====================  ==========================  ===========================
tf_mul_graph           a, b (float32, any shape)   c = a * b
tf_slow_graph          a (float32, any shape)      c = a (after ~1.7-1.8 s)
tf_file_ops_graph      path (string scalar)        c = ReadFile(path)
onnx_mul               a, b (float [N])            c = a * b
onnx_mlp               x (float [N, 4])            y (float [N, 3])
onnx_slow              x (float [N])               y = x + 2_000_000
onnx_loop_forever      x (float [N])               y (never finishes)
torch_add_mul          a, b (forward arguments)    a * b + a
torch_two_outputs      x                           (x * 2, x + 1)
torch_slow             x                           x (after ~1.5-1.7 s)
torch_forever          x (float, >= 0)             (never finishes)
tflite_mul             a, b (float32 [2])          c = a * b (in this order)
tf_string_identity     s (string, any shape)       t = s
tf_reshape_sum         x (float (None, 28, 28))    y = sum of each sample's 784 values
onnx_identity(T)       x (T [N, M])                y = x
onnx_zipmap_classifier x (float [N, 2])            label (int64 [N]), probabilities
                                                   (seq(map(int64, float)), skl2onnx's ZipMap)
torch_empty_output     x                           x[0:0] (dim 0 of size 0)
=====================  ==========================  ===========================
"""

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / ".cache"

# Bump when a builder changes, so stale cached blobs are not reused.
_CACHE_VERSION = 3

ONNX_OPSET = 17
ONNX_IR_VERSION = 8

# Iteration counts of the slow models.  Timings were measured on a 2-core CPU
# dev box with one thread and a 2-element input; the box is noisy (+-15%), see
# each builder.
ONNX_SLOW_TRIP_COUNT = 2_000_000
TORCH_SLOW_ITERATIONS = 3_000
TF_SLOW_ITERATIONS = 4_000


def _cached(name: str, build: Callable[[], bytes], cache_dir: Path | None = None, version: int | None = None) -> bytes:
    """The blob `build()` makes, cached as `<cache_dir>/<name>.v<version>.bin` (bench/real_fixtures.py
    uses its own folder and version)."""
    cache_dir = cache_dir or CACHE_DIR
    path = cache_dir / f"{name}.v{_CACHE_VERSION if version is None else version}.bin"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    blob = build()
    if not isinstance(blob, bytes) or not blob:
        raise RuntimeError(f"builder for {name} returned no bytes")
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=cache_dir)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # never overwrites
        except FileExistsError:
            return path.read_bytes()  # another process won the race
        except OSError:
            os.replace(tmp, path)  # no hard links here: last writer wins
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return blob


def _import_tf():
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf

    return tf


# --------------------------------------------------------------------------
# TensorFlow GraphDefs
# --------------------------------------------------------------------------


def tf_mul_graph() -> bytes:
    """Frozen GraphDef: float32 placeholders ``a`` and ``b`` (unknown shape), ``c = a * b``."""

    def build() -> bytes:
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            a = tf.compat.v1.placeholder(tf.float32, shape=None, name="a")
            b = tf.compat.v1.placeholder(tf.float32, shape=None, name="b")
            tf.multiply(a, b, name="c")
        return graph.as_graph_def().SerializeToString(deterministic=True)

    return _cached("tf_mul_graph", build)


def tf_slow_graph() -> bytes:
    """GraphDef with input ``a`` and output ``c`` (= ``a``) that runs a while
    loop of TF_SLOW_ITERATIONS 256x256 matmul+tanh steps first.

    Measured (tf.compat.v1.Session, 1 or 2 intra-op threads alike):
    4000 iterations take ~1.7-1.8 s per run (3500 took 1.2-1.5 s, 4500 took
    1.8-2.1 s).
    """

    def build() -> bytes:
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            a = tf.compat.v1.placeholder(tf.float32, shape=None, name="a")
            w = tf.fill([256, 256], tf.constant(1.0 / 256, tf.float32), name="w")
            # Tie the loop's start to the input so no optimizer can fold it away.
            h0 = tf.fill([256, 256], 0.01 + 0.0 * tf.cast(tf.size(a), tf.float32), name="h0")
            n = tf.constant(TF_SLOW_ITERATIONS, tf.int32, name="n")

            def cond(i, h):
                return i < n

            def body(i, h):
                return i + 1, tf.tanh(tf.matmul(h, w))

            _, h = tf.while_loop(cond, body, [tf.constant(0, tf.int32), h0], name="spin")
            # Make c depend on the loop without changing its value.
            tf.add(a, tf.reduce_mean(h) * 0.0, name="c")
        return graph.as_graph_def().SerializeToString(deterministic=True)

    return _cached("tf_slow_graph", build)


def tf_reshape_sum() -> bytes:
    """GraphDef: placeholder ``x`` of static shape (None, 28, 28), output ``y`` = the sum of each
    sample's 784 values after a Reshape to (-1, 784) (a (1, 1, 28, 28) input runs, as in RedisAI)."""

    def build() -> bytes:
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, shape=(None, 28, 28), name="x")
            tf.reduce_sum(tf.reshape(x, (-1, 784)), axis=1, name="y")
        return graph.as_graph_def().SerializeToString()

    return _cached("tf_reshape_sum", build)


def tf_string_identity() -> bytes:
    """GraphDef: string placeholder ``s`` of any shape, output ``t = Identity(s)``."""

    def build() -> bytes:
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            s = tf.compat.v1.placeholder(tf.string, shape=None, name="s")
            tf.identity(s, name="t")
        return graph.as_graph_def().SerializeToString()

    return _cached("tf_string_identity", build)


def tf_file_ops_graph() -> bytes:
    """GraphDef with a string placeholder ``path`` and a ``ReadFile`` op named ``c``."""

    def build() -> bytes:
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            path = tf.compat.v1.placeholder(tf.string, shape=[], name="path")
            tf.io.read_file(path, name="c")
        return graph.as_graph_def().SerializeToString(deterministic=True)

    return _cached("tf_file_ops_graph", build)


# --------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------


def _onnx_model(graph) -> bytes:
    import onnx
    from onnx import helper

    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="redisai-tests",
    )
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_mul() -> bytes:
    """ONNX: float inputs ``a``, ``b`` of shape ["N"], output ``c = Mul(a, b)``."""

    def build() -> bytes:
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("Mul", ["a", "b"], ["c"], name="mul")],
            "mul",
            [
                helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N"]),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N"]),
            ],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N"])],
        )
        return _onnx_model(graph)

    return _cached("onnx_mul", build)


def _mlp_weights() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((4, 8)).astype(np.float32)
    b1 = rng.standard_normal(8).astype(np.float32)
    w2 = rng.standard_normal((8, 3)).astype(np.float32)
    b2 = rng.standard_normal(3).astype(np.float32)
    return w1, b1, w2, b2


def onnx_mlp(batch_dim_symbolic: bool = True) -> bytes:
    """ONNX MLP: ``x`` float [N, 4] -> Gemm -> Relu (8) -> Gemm -> ``y`` float [N, 3].

    With ``batch_dim_symbolic=False`` the batch dimension is fixed at 1.
    Weights come from ``numpy.random.default_rng(0)``; see onnx_mlp_reference.
    """

    def build() -> bytes:
        from onnx import TensorProto, helper, numpy_helper

        w1, b1, w2, b2 = _mlp_weights()
        batch = "N" if batch_dim_symbolic else 1
        graph = helper.make_graph(
            [
                helper.make_node("Gemm", ["x", "w1", "b1"], ["h_pre"], name="fc1"),
                helper.make_node("Relu", ["h_pre"], ["h"], name="relu"),
                helper.make_node("Gemm", ["h", "w2", "b2"], ["y"], name="fc2"),
            ],
            "mlp",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
            [
                numpy_helper.from_array(w1, "w1"),
                numpy_helper.from_array(b1, "b1"),
                numpy_helper.from_array(w2, "w2"),
                numpy_helper.from_array(b2, "b2"),
            ],
        )
        return _onnx_model(graph)

    suffix = "symbolic" if batch_dim_symbolic else "fixed"
    return _cached(f"onnx_mlp_{suffix}", build)


def onnx_mlp_reference(x: np.ndarray) -> np.ndarray:
    """What onnx_mlp computes, in numpy (float32 [N, 4] -> float32 [N, 3])."""
    w1, b1, w2, b2 = _mlp_weights()
    x = np.asarray(x, dtype=np.float32)
    h = np.maximum(x @ w1 + b1, 0.0).astype(np.float32)
    return (h @ w2 + b2).astype(np.float32)


def _onnx_add_loop(name: str, trip_count: int) -> bytes:
    """``y = x + trip_count`` (saturating in float32), one Add per Loop iteration."""
    from onnx import TensorProto, helper, numpy_helper

    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["x_in", "one"], ["x_out"]),
        ],
        f"{name}_body",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_out", TensorProto.FLOAT, None),
        ],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one")],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trip_count", "", "x"], ["y"], body=body, name="spin")],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(np.array(trip_count, np.int64), "trip_count")],
    )
    return _onnx_model(graph)


def onnx_slow() -> bytes:
    """ONNX: ``x`` float [N] -> ``y`` = x + 2e6, via a Loop of 2_000_000 Adds.

    Measured with onnxruntime 1.32, intra_op_num_threads=1, x of 2 floats:
    100_000 trips ~0.085 s, 2_400_000 trips ~2.05-2.2 s, and these 2_000_000
    trips ~1.65-2.0 s per run.
    """
    return _cached("onnx_slow", lambda: _onnx_add_loop("slow", ONNX_SLOW_TRIP_COUNT))


def onnx_loop_forever() -> bytes:
    """ONNX: ``x`` float [N] -> ``y``, a Loop of 2**62 trips (never finishes)."""
    return _cached("onnx_loop_forever", lambda: _onnx_add_loop("forever", 2**62))


_ONNX_TYPES = {
    "FLOAT": "FLOAT", "DOUBLE": "DOUBLE", "INT8": "INT8", "INT16": "INT16", "INT32": "INT32", "INT64": "INT64",
    "UINT8": "UINT8", "UINT16": "UINT16", "BOOL": "BOOL", "STRING": "STRING", "FLOAT16": "FLOAT16",
    "BFLOAT16": "BFLOAT16",
}


def onnx_identity(rai_type: str = "STRING") -> bytes:
    """ONNX: ``y = Identity(x)`` over a 2-D tensor of one RedisAI type (``STRING``, ``FLOAT`` ...)."""

    def build() -> bytes:
        from onnx import TensorProto, helper

        elem = getattr(TensorProto, _ONNX_TYPES[rai_type])
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"], name="identity")],
            f"identity_{rai_type.lower()}",
            [helper.make_tensor_value_info("x", elem, ["N", "M"])],
            [helper.make_tensor_value_info("y", elem, ["N", "M"])],
        )
        return _onnx_model(graph)

    return _cached(f"onnx_identity_{rai_type.lower()}", build)


def onnx_zipmap_classifier() -> bytes:
    """ONNX as skl2onnx converts a classifier by default: ``label`` (int64 [N]) and ``probabilities``, a
    ZipMap (a sequence of maps from class to probability), over two classes of ``x`` (float [N, 2])."""

    def build() -> bytes:
        import onnx
        from onnx import TensorProto, helper

        nodes = [
            helper.make_node("Softmax", ["x"], ["p"], axis=1),
            helper.make_node("ArgMax", ["p"], ["label"], axis=1, keepdims=0),
            helper.make_node("ZipMap", ["p"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=[0, 1]),
        ]
        graph = helper.make_graph(
            nodes, "zipmap_classifier",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
            [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
             helper.make_value_info("probabilities", helper.make_sequence_type_proto(
                 helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])))),
             ],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET),
                                                        helper.make_opsetid("ai.onnx.ml", 3)])
        model.ir_version = ONNX_IR_VERSION
        onnx.checker.check_model(model)
        return model.SerializeToString()

    return _cached("onnx_zipmap_classifier", build)


# --------------------------------------------------------------------------
# TorchScript
# --------------------------------------------------------------------------


def torch_empty_output() -> bytes:
    """TorchScript: forward(x) -> x[0:0], an empty tensor (a detector that found nothing)."""

    def build() -> bytes:
        import torch
        from torch import Tensor

        class Empty(torch.nn.Module):
            def forward(self, x: Tensor) -> Tensor:
                return x[0:0]

        return _torchscript_bytes(Empty())

    return _cached("torch_empty_output", build)


def _torchscript_bytes(module) -> bytes:
    import torch

    # torch 2.13 flags torch.jit as deprecated; TorchScript is what RedisAI loads.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.", DeprecationWarning)
        scripted = torch.jit.script(module)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
    return buffer.getvalue()


def torch_add_mul() -> bytes:
    """TorchScript: forward(a, b) -> a * b + a."""

    def build() -> bytes:
        import torch
        from torch import Tensor

        class AddMul(torch.nn.Module):
            def forward(self, a: Tensor, b: Tensor) -> Tensor:
                return a * b + a

        return _torchscript_bytes(AddMul())

    return _cached("torch_add_mul", build)


def torch_forever() -> bytes:
    """TorchScript: y = x + 1 while y.sum() > -1: never ends for x >= 0."""
    def build():
        import torch

        class Forever(torch.nn.Module):
            def forward(self, x):
                y = x
                while bool(y.sum() > -1.0):
                    y = y + 1.0
                return y

        return _torchscript_bytes(Forever())

    return _cached("torch_forever", build)


def torch_two_outputs() -> bytes:
    """TorchScript: forward(x) -> (x * 2, x + 1)."""

    def build() -> bytes:
        from typing import Tuple

        import torch
        from torch import Tensor

        class TwoOutputs(torch.nn.Module):
            def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
                return x * 2, x + 1

        return _torchscript_bytes(TwoOutputs())

    return _cached("torch_two_outputs", build)


def torch_slow() -> bytes:
    """TorchScript: forward(x) -> x, after TORCH_SLOW_ITERATIONS 256x256 matmuls.

    Measured with torch.set_num_threads(1): 1000 iterations ~0.55 s,
    these 3000 iterations ~1.5-1.7 s per call.
    """

    def build() -> bytes:
        import torch
        from torch import Tensor

        class Slow(torch.nn.Module):
            iterations: int

            def __init__(self, iterations: int):
                super().__init__()
                self.iterations = iterations

            def forward(self, x: Tensor) -> Tensor:
                w = torch.full((256, 256), 1.0 / 256)
                h = torch.full((256, 256), 0.01)
                for _ in range(self.iterations):
                    h = torch.tanh(torch.mm(h, w))
                # Depend on the loop without changing the value.
                return x + (h.mean() * 0.0).to(x.dtype)

        return _torchscript_bytes(Slow(TORCH_SLOW_ITERATIONS))

    return _cached("torch_slow", build)


# --------------------------------------------------------------------------
# TFLite
# --------------------------------------------------------------------------


def tflite_mul() -> bytes:
    """TFLite flatbuffer: float32 [2] inputs ``a``, ``b``; output ``c = a * b``.

    Converted from a v1 session graph (TFLiteConverter.from_session), so the
    LiteRT interpreter reports inputs ``a`` (index 0) and ``b`` (index 1) in
    that order and output ``c``, and there is no signature.  (Converting a
    tf.function with from_concrete_functions instead names them
    ``serving_default_a:0`` / ``serving_default_b:0`` / ``PartitionedCall:0``
    and puts ``b`` first, which would break positional feeding.)
    """

    def build() -> bytes:
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            a = tf.compat.v1.placeholder(tf.float32, shape=[2], name="a")
            b = tf.compat.v1.placeholder(tf.float32, shape=[2], name="b")
            c = tf.multiply(a, b, name="c")
            with tf.compat.v1.Session(graph=graph) as session:
                converter = tf.compat.v1.lite.TFLiteConverter.from_session(session, [a, b], [c])
                return bytes(converter.convert())

    return _cached("tflite_mul", build)


# --------------------------------------------------------------------------
# Memory bombs: each needs ~4 GB for one intermediate (10^9 floats), from a float input x [1]
# (TF: "x" -> "y"), output y [1] = x + sum(big) * 0. BACKEND_MEMORY_LIMIT must stop them.
# --------------------------------------------------------------------------

BOMB_ELEMENTS = 1_000_000_000


def torch_memory_bomb() -> bytes:
    def build() -> bytes:
        import torch

        class Bomb(torch.nn.Module):
            def forward(self, x):
                big = torch.ones(1000000000) * x[0]
                return big[:1] + big.sum() * 0

        return _torchscript_bytes(Bomb())

    return _cached("torch_memory_bomb", build)


def onnx_memory_bomb() -> bytes:
    def build() -> bytes:
        from onnx import TensorProto, helper

        shape = helper.make_tensor("shape", TensorProto.INT64, [1], [BOMB_ELEMENTS])
        one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
        nodes = [helper.make_node("Constant", [], ["shape"], value=shape),
                 helper.make_node("ConstantOfShape", ["shape"], ["big"], value=one),
                 helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
                 helper.make_node("Mul", ["total", "zero"], ["nothing"]),
                 helper.make_node("Add", ["x", "nothing"], ["y"])]
        zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
        graph = helper.make_graph(nodes, "bomb", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [zero])
        return _onnx_model(graph)

    return _cached("onnx_memory_bomb", build)


def tf_memory_bomb() -> bytes:
    def build() -> bytes:
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, shape=[1], name="x")
            big = tf.fill([BOMB_ELEMENTS], 1.0)
            tf.add(x, tf.reduce_sum(big) * 0.0, name="y")
        return graph.as_graph_def().SerializeToString()

    return _cached("tf_memory_bomb", build)


def tflite_memory_bomb() -> bytes:
    """The intermediate's shape is static here, so the interpreter plans it before it allocates."""
    def build() -> bytes:
        tf = _import_tf()

        @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
        def bomb(x):
            big = tf.broadcast_to(x, [BOMB_ELEMENTS]) + 1.0  # the converter folds x + sum(...) * 0 away
            return tf.reduce_min(big, keepdims=True) - 1.0

        converter = tf.lite.TFLiteConverter.from_concrete_functions([bomb.get_concrete_function()], bomb)
        return bytes(converter.convert())

    return _cached("tflite_memory_bomb", build)


# --------------------------------------------------------------------------
# Half precision
# --------------------------------------------------------------------------


def torch_scaled(rai_type: str = "FLOAT16") -> bytes:
    """TorchScript: forward(x) = x * w with w = [2, 2, 2], the module converted by ``.half()`` (FLOAT16) or
    ``.to(torch.bfloat16)`` (BFLOAT16): input and output x [3] of that type."""

    def build() -> bytes:
        import torch

        class Scaled(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.full((3,), 2.0))

            def forward(self, x):
                return x * self.w

        module = Scaled().eval()
        module = module.half() if rai_type == "FLOAT16" else module.to(torch.bfloat16)
        return _torchscript_bytes(module)

    return _cached(f"torch_scaled_{rai_type.lower()}", build)


def tf_half_double() -> bytes:
    """GraphDef: float16 placeholder ``x`` (any shape), ``y = x * 2`` in float16."""

    def build() -> bytes:
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float16, shape=None, name="x")
            tf.multiply(x, tf.constant(2.0, tf.float16), name="y")
        return graph.as_graph_def().SerializeToString()

    return _cached("tf_half_double", build)


def onnx_mlp_float16() -> bytes:
    """onnx_mlp converted to float16 by onnxruntime's own converter (the usual step before serving on a GPU):
    input x (float16 [N, 4]) -> y (float16 [N, 3])."""

    def build() -> bytes:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        return convert_float_to_float16(onnx.ModelProto.FromString(onnx_mlp()), keep_io_types=False).SerializeToString()

    return _cached("onnx_mlp_float16", build)


# --------------------------------------------------------------------------
# torch.export programs
# --------------------------------------------------------------------------


def torch_exported() -> bytes:
    """torch.export program (torch.export.save): y = relu(Linear(4, 3)(x)), x float [N, 4] with N dynamic.
    Its weights are fixed (seed 0): `torch_exported_module()` is the same module, for expected values."""

    def build() -> bytes:
        import torch

        module = torch_exported_module()
        batch = torch.export.Dim("batch", min=1, max=1024)
        program = torch.export.export(module, (torch.zeros(2, 4),), dynamic_shapes={"x": {0: batch}})
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        return buffer.getvalue()

    return _cached("torch_exported", build)


def torch_exported_module():
    import torch

    class LinearRelu(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.relu(self.linear(x))

    return LinearRelu().eval()
