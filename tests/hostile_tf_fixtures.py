"""Hostile TensorFlow and TFLite models of the aborts, endless runs and memory the server must not
suffer, built with the real frameworks and cached like model_fixtures': each tries to end the server
(a CHECK failure in a kernel), to keep a worker forever, or to take memory past BACKEND_MEMORY_LIMIT.

`REFUSED` lists the models refused at store: (name, backend, builder, text the refusal must hold, TF
inputs, TF outputs). The others (loops, big constants, neutralized attributes) are named functions
the tests use one by one.
"""

from __future__ import annotations

from model_fixtures import _cached, _import_tf

_VERSION = 1
GIB4 = 4 * 1024**3
LONG = "x" * 1000  # a string TensorFlow keeps on the heap (over 22 bytes)


def _hostile(name: str, build) -> bytes:
    return _cached(f"hostile_tf_{name}", build, version=_VERSION)


def _graph(body, v1_control_flow: bool = False) -> bytes:
    """GraphDef of what `body(tf, x)` adds beside a float placeholder "x" of any shape; output "y"."""
    tf = _import_tf()
    graph = tf.Graph()
    with graph.as_default():
        if v1_control_flow:
            tf.compat.v1.disable_control_flow_v2()
        try:
            x = tf.compat.v1.placeholder(tf.float32, shape=None, name="x")
            body(tf, x)
        finally:
            tf.compat.v1.enable_control_flow_v2()
    return graph.as_graph_def().SerializeToString()


def _edited(blob: bytes, edit) -> bytes:
    """The GraphDef with `edit(graph_def)` applied (for what TensorFlow's Python API will not write)."""
    tf = _import_tf()
    graph_def = tf.compat.v1.GraphDef.FromString(blob)
    edit(graph_def)
    return graph_def.SerializeToString()


def _node(graph_def, op: str, name: str, inputs=(), **attrs):
    node = graph_def.node.add(name=name, op=op)
    node.input.extend(inputs)
    for key, value in attrs.items():
        node.attr[key].CopyFrom(value)
    return node


def _attr(**value):
    tf = _import_tf()
    return tf.compat.v1.AttrValue(**value)


def _float():
    tf = _import_tf()
    return _attr(type=tf.float32.as_datatype_enum)


# --------------------------------------------------------------------------
# 4: kernels that abort the process on inconsistent shapes (gradients, fused rewrites, legacy quantized)
# --------------------------------------------------------------------------


def _shaped(tf, x, shape):
    """x reshaped, its static shape unknown (the shape comes through a PlaceholderWithDefault), so that
    nothing checks it before the kernel does."""
    return tf.reshape(x, tf.compat.v1.placeholder_with_default(tf.constant(shape, tf.int32), [None]))


def lrn_grad() -> bytes:
    """The report's: output_image of rank 3 beside rank-4 gradients: tensor_shape.cc Check failed: d < dims()."""
    return _hostile("lrn_grad", lambda: _graph(lambda tf, x: tf.identity(tf.raw_ops.LRNGrad(
        input_grads=_shaped(tf, x, [3, 1, 1, 3]), input_image=_shaped(tf, x, [3, 1, 1, 3]),
        output_image=_shaped(tf, x[:3], [3, 1, 1])), name="y")))


def fused_pad_conv2d() -> bytes:
    """The report's other: a graph-rewrite kernel fed a rank-2 image (TensorFlow's Python refuses to write
    this node, so it is added to the GraphDef by hand)."""
    def build():
        tf = _import_tf()

        def edit(graph_def):
            paddings = tf.compat.v1.make_tensor_proto([[0], [0]], dtype=tf.int32)
            _node(graph_def, "Const", "paddings", value=_attr(tensor=paddings), dtype=_attr(type=tf.int32.as_datatype_enum))
            _node(graph_def, "FusedPadConv2D", "y", ["x", "paddings", "x"], T=_float(), mode=_attr(s=b"REFLECT"),
                  strides=_attr(list=tf.compat.v1.AttrValue.ListValue(i=[1, 2])), padding=_attr(s=b"VALID"))
        return _edited(_graph(lambda tf, x: None), edit)
    return _hostile("fused_pad_conv2d", build)


def fused_resize_and_pad_conv2d() -> bytes:
    return _hostile("fused_resize_and_pad_conv2d", lambda: _graph(lambda tf, x: tf.identity(
        tf.raw_ops.FusedResizeAndPadConv2D(input=_shaped(tf, x, [1, 2, 2]), size=[2, 2], paddings=tf.zeros([4, 2], tf.int32),
                                          filter=_shaped(tf, x, [1, 1, 4]), mode="REFLECT", strides=[1, 1, 1, 1],
                                          padding="VALID"), name="y")))


def max_pool_grad() -> bytes:
    return _hostile("max_pool_grad", lambda: _graph(lambda tf, x: tf.identity(tf.raw_ops.MaxPoolGrad(
        orig_input=_shaped(tf, x, [1, 2, 2, 1]), orig_output=_shaped(tf, x, [1, 2, 2]), grad=_shaped(tf, x, [4]),
        ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1], padding="SAME"), name="y")))


def conv2d_backprop_filter() -> bytes:
    return _hostile("conv2d_backprop_filter", lambda: _graph(lambda tf, x: tf.identity(tf.raw_ops.Conv2DBackpropFilter(
        input=_shaped(tf, x, [1, 2, 2, 1]), filter_sizes=_shaped(tf, tf.constant([3]), [1]), out_backprop=_shaped(tf, x, [4]), strides=[1, 1, 1, 1],
        padding="SAME"), name="y")))


def fused_batch_norm_grad() -> bytes:
    return _hostile("fused_batch_norm_grad", lambda: _graph(lambda tf, x: tf.identity(tf.raw_ops.FusedBatchNormGradV3(
        y_backprop=_shaped(tf, x, [1, 2, 2, 1]), x=_shaped(tf, x, [4]), scale=x, reserve_space_1=x, reserve_space_2=x,
        reserve_space_3=x, is_training=False)[0], name="y")))


def relu_grad_in_function() -> bytes:
    """A gradient kernel hidden in a tf.function's body (the graph holds only a call)."""
    def build():
        tf = _import_tf()

        @tf.function
        def gradient(x):
            return tf.raw_ops.ReluGrad(gradients=_shaped(tf, x, [2, 2]), features=_shaped(tf, x, [4]))

        return _graph(lambda tf, x: tf.identity(gradient(x), name="y"))
    return _hostile("relu_grad_in_function", build)


def quantized_conv2d() -> bytes:
    def build():
        def body(tf, x):
            quantized = tf.cast(_shaped(tf, x, [1, 2, 2, 1]), tf.quint8)
            result = tf.raw_ops.QuantizedConv2D(input=quantized, filter=tf.cast(_shaped(tf, x, [2, 2]), tf.quint8),
                                                min_input=0.0, max_input=1.0, min_filter=0.0, max_filter=1.0,
                                                strides=[1, 1, 1, 1], padding="SAME")
            tf.identity(tf.cast(result.output, tf.float32), name="y")
        return _graph(body)
    return _hostile("quantized_conv2d", build)


def symbolic_gradient() -> bytes:
    """SymbolicGradient: instantiates a function from the gradient registry."""
    def build():
        tf = _import_tf()

        @tf.function
        def square(x):
            return x * x

        def body(tf, x):
            square.get_concrete_function(tf.TensorSpec(None, tf.float32)).add_to_graph()
            name = square.get_concrete_function(tf.TensorSpec(None, tf.float32)).name
            tf.identity(tf.raw_ops.SymbolicGradient(input=[x, x], Tout=[tf.float32], f=name)[0], name="y")
        return _graph(body)
    return _hostile("symbolic_gradient", build)


def attribute_abort_in_loop_body() -> bytes:
    """AudioSpectrogram (kept: speech models) with window_size -1 inside a While body: TensorFlow checks
    that attribute only where it infers shapes, which it does not do for a loop's body at import; the
    kernel ends the process (std::length_error)."""
    def build():
        tf = _import_tf()

        @tf.function
        def spectrogram(x):
            return tf.while_loop(lambda i, total: i < 1, lambda i, total: (i + 1, total + tf.reduce_sum(
                tf.raw_ops.AudioSpectrogram(input=tf.reshape(x, [1, -1]), window_size=2, stride=1))), [0, 0.0])[1]

        def edit(graph_def):
            for function in graph_def.library.function:
                for node in function.node_def:
                    if node.op == "AudioSpectrogram":
                        node.attr["window_size"].i = -1
                        node.attr["stride"].i = -1
        return _edited(_graph(lambda tf, x: tf.identity(spectrogram(x), name="y")), edit)
    return _hostile("attribute_abort_in_loop_body", build)


def conjugate_transpose() -> bytes:
    """A scalar and an empty permutation: mkl_util.h Check failed: dims_tf_order.size() > 0."""
    return _hostile("conjugate_transpose", lambda: _graph(lambda tf, x: tf.identity(tf.raw_ops.ConjugateTranspose(
        x=tf.reduce_sum(x), perm=tf.zeros([0], tf.int64)), name="y")))


def empty_uninitialized() -> bytes:
    """Empty with init=false: the allocator's previous contents (another model's tensors)."""
    return _hostile("empty_uninitialized", lambda: _graph(lambda tf, x: tf.identity(
        tf.raw_ops.Empty(shape=[1024], dtype=tf.float32, init=False) + x[0], name="y")))


# --------------------------------------------------------------------------
# 6: runs without end
# --------------------------------------------------------------------------

TRIPS = 10**15


def stateless_while_forever() -> bytes:
    """A functional While (StatelessWhile in a function body) of 10^15 iterations."""
    def build():
        tf = _import_tf()

        @tf.function
        def loop(x):
            return tf.while_loop(lambda i, x: i < TRIPS, lambda i, x: (i + 1, x + 1.0), [tf.constant(0, tf.int64), x])[1]
        return _graph(lambda tf, x: tf.identity(loop(x), name="y"))
    return _hostile("stateless_while_forever", build)


def while_forever() -> bytes:
    """The same loop lowered in the graph by control flow v2 (While with a function body)."""
    return _hostile("while_forever", lambda: _graph(lambda tf, x: tf.identity(tf.while_loop(
        lambda i, x: i < TRIPS, lambda i, x: (i + 1, x + 1.0), [tf.constant(0, tf.int64), x])[1], name="y")))


def tf1_loop_forever() -> bytes:
    """TF1 control flow: Enter, Merge, Switch, NextIteration, Exit."""
    return _hostile("tf1_loop_forever", lambda: _graph(lambda tf, x: tf.identity(tf.compat.v1.while_loop(
        lambda i, x: i < TRIPS, lambda i, x: (i + 1, x + 1.0), [tf.constant(0, tf.int64), x])[1], name="y"),
        v1_control_flow=True))


# --------------------------------------------------------------------------
# 7: memory past BACKEND_MEMORY_LIMIT
# --------------------------------------------------------------------------


def fill_through_placeholder_with_default() -> bytes:
    """The report's: a 4 GB float Fill whose shape comes through a PlaceholderWithDefault (no static shape)."""
    return _hostile("fill_through_placeholder_with_default", lambda: _graph(lambda tf, x: tf.add(
        x, tf.reduce_sum(tf.fill(tf.compat.v1.placeholder_with_default(tf.constant([GIB4 // 4], tf.int64), [None]),
                                 1.0)) * 0.0, name="y")))


def strings_constant() -> bytes:
    """The report's: 4 GB of strings in a graph of a few KB: one 1000-byte value, which TensorFlow repeats
    to fill a shape of 4 million."""
    def build():
        tf = _import_tf()

        def edit(graph_def):
            values = tf.compat.v1.make_tensor_proto([LONG], dtype=tf.string)
            values.tensor_shape.dim[0].size = 4_000_000
            next(node for node in graph_def.node if node.name == "strings").attr["value"].tensor.CopyFrom(values)
        return _edited(_graph(lambda tf, x: tf.add(x, tf.cast(tf.reduce_sum(tf.strings.length(
            tf.constant([""], name="strings"))), tf.float32), name="y")), edit)
    return _hostile("strings_constant", build)


def string_fill_through_placeholder_with_default() -> bytes:
    """1 GB of strings: a 1000-byte string filled to a shape that comes through a PlaceholderWithDefault
    (made while the session was set up, by the classic graph optimizer's constant folding)."""
    return _hostile("string_fill_pwd", lambda: _graph(lambda tf, x: tf.add(x, tf.cast(tf.strings.length(tf.fill(
        tf.compat.v1.placeholder_with_default(tf.constant([1_000_000], tf.int64), [None]), LONG)[0]), tf.float32),
        name="y")))


def string_tile() -> bytes:
    return _hostile("string_tile", lambda: _graph(lambda tf, x: tf.add(x, tf.cast(tf.strings.length(
        tf.tile(tf.constant([LONG]), tf.cast(tf.reshape(x, [1]), tf.int32))[0]), tf.float32), name="y")))


def string_broadcast() -> bytes:
    return _hostile("string_broadcast", lambda: _graph(lambda tf, x: tf.add(x, tf.cast(tf.strings.length(
        tf.broadcast_to(tf.constant(LONG), tf.cast(tf.reshape(x, [1]), tf.int32))[0]), tf.float32), name="y")))


def string_gather_repeated() -> bytes:
    """A long label gathered as many times as the client's indices say."""
    return _hostile("string_gather_repeated", lambda: _graph(lambda tf, x: tf.add(x[0], tf.cast(tf.strings.length(
        tf.gather(tf.constant([LONG, LONG]), tf.zeros(tf.cast(tf.reshape(x, [1]), tf.int32), tf.int32))[0]),
        tf.float32), name="y")))


def string_join_doubling_in_loop() -> bytes:
    """A loop that joins a string to itself: 2^n bytes after n iterations."""
    def build():
        tf = _import_tf()

        @tf.function
        def doubling(x):
            return tf.while_loop(lambda i, s: i < 40, lambda i, s: (i + 1, tf.strings.join([s, s])),
                                 [0, tf.strings.as_string(x[0], shortest=True)])[1]
        return _graph(lambda tf, x: tf.add(x, tf.cast(tf.strings.length(doubling(x)), tf.float32), name="y"))
    return _hostile("string_join_doubling_in_loop", build)


def string_copies_in_tf1_loop() -> bytes:
    """A TF1 loop that writes a fresh copy of the client's string into a TensorArray each iteration."""
    def build():
        tf = _import_tf()
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.disable_control_flow_v2()
            try:
                s = tf.compat.v1.placeholder(tf.string, shape=[], name="x")
                array = tf.TensorArray(tf.string, size=0, dynamic_size=True)
                _, array = tf.compat.v1.while_loop(lambda i, a: i < 10**6, lambda i, a: (
                    i + 1, a.write(i, tf.strings.lower(s))), [0, array])
                tf.identity(tf.strings.length(array.read(0)), name="y")
            finally:
                tf.compat.v1.enable_control_flow_v2()
        return graph.as_graph_def().SerializeToString()
    return _hostile("string_copies_in_tf1_loop", build)


def string_long_rewrite() -> bytes:
    """Each character of the input replaced by 100 KB."""
    return _hostile("string_long_rewrite", lambda: _graph(lambda tf, x: tf.add(x, tf.cast(tf.strings.length(
        tf.strings.regex_replace(tf.strings.as_string(x[0], shortest=True), ".", "y" * 100_000)), tf.float32),
        name="y")))


def string_as_string_width() -> bytes:
    return _hostile("string_as_string_width", lambda: _graph(lambda tf, x: tf.add(x, tf.cast(tf.reduce_sum(
        tf.strings.length(tf.strings.as_string(x, width=10_000_000))), tf.float32), name="y")))


def string_lookup_long_default() -> bytes:
    """A table lookup whose default (a long string) is repeated for every missing key."""
    def build():
        def body(tf, x):
            lookup = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant([1], tf.int64), tf.constant(["one"])), LONG)
            keys = tf.zeros(tf.cast(tf.reshape(x, [1]), tf.int32), tf.int64)
            tf.identity(tf.strings.length(lookup.lookup(keys)[0]), name="y")
        return _graph(body)
    return _hostile("string_lookup_long_default", build)


def mutable_hash_table() -> bytes:
    """A table the session keeps from run to run, each run inserting keys: it grows without end."""
    def build():
        def body(tf, x):
            table = tf.raw_ops.MutableHashTableV2(key_dtype=tf.float32, value_dtype=tf.float32)
            insert = tf.raw_ops.LookupTableInsertV2(table_handle=table, keys=x, values=x)
            with tf.control_dependencies([insert]):
                tf.identity(tf.raw_ops.LookupTableSizeV2(table_handle=table), name="y")
        return _graph(body)
    return _hostile("mutable_hash_table", build)


def mutable_dense_hash_table() -> bytes:
    def build():
        def body(tf, x):
            table = tf.raw_ops.MutableDenseHashTableV2(empty_key=tf.constant(-1.0), deleted_key=tf.constant(-2.0),
                                                       value_dtype=tf.float32)
            insert = tf.raw_ops.LookupTableInsertV2(table_handle=table, keys=x, values=x)
            with tf.control_dependencies([insert]):
                tf.identity(tf.raw_ops.LookupTableSizeV2(table_handle=table), name="y")
        return _graph(body)
    return _hostile("mutable_dense_hash_table", build)


def sparse_tensors_map() -> bytes:
    """AddSparseToTensorsMap keeps every sparse tensor it is given in the session, run after run."""
    return _hostile("sparse_tensors_map", lambda: _graph(lambda tf, x: tf.identity(tf.raw_ops.AddSparseToTensorsMap(
        sparse_indices=tf.zeros([1, 1], tf.int64), sparse_values=tf.reshape(x, [-1])[:1],
        sparse_shape=tf.constant([1], tf.int64)), name="y")))


def parse_tensor() -> bytes:
    """ParseTensor: a TensorProto of a few bytes declaring any shape (its last value repeated)."""
    return _hostile("parse_tensor", lambda: _graph(lambda tf, x: tf.identity(tf.io.parse_tensor(
        tf.strings.as_string(x[0], shortest=True), tf.float32), name="y")))


def decode_compressed() -> bytes:
    return _hostile("decode_compressed", lambda: _graph(lambda tf, x: tf.identity(tf.strings.length(
        tf.io.decode_compressed(tf.strings.as_string(x[0], shortest=True), "ZLIB")), name="y")))


# --------------------------------------------------------------------------
# E: what TensorFlow would read as placement, compilation or objects
# --------------------------------------------------------------------------


def _handle_constant(dtype_name: str) -> bytes:
    def build():
        tf = _import_tf()

        def edit(graph_def):
            tensor = tf.compat.v1.make_tensor_proto(0.0)
            tensor.Clear()
            tensor.dtype = getattr(tf, dtype_name).as_datatype_enum
            if dtype_name == "resource":
                handle = tensor.resource_handle_val.add()
                handle.device, handle.container, handle.name = "/job:worker/task:1/device:CPU:0", "shared", "table"
            else:
                tensor.variant_val.add().type_name = "tensorflow::TensorList"
            _node(graph_def, "Const", "handle", value=_attr(tensor=tensor), dtype=_attr(type=tensor.dtype))
            _node(graph_def, "Identity", "y", ["x"], T=_float())
        return _edited(_graph(lambda tf, x: None), edit)
    return _hostile(f"{dtype_name}_constant", build)


def resource_constant() -> bytes:
    return _handle_constant("resource")


def variant_constant() -> bytes:
    return _handle_constant("variant")


def function_named_like_an_operation() -> bytes:
    """A library function called "Relu": a node of op Relu would be the function or the kernel."""
    def build():
        tf = _import_tf()

        @tf.function
        def double(x):
            return x * 2.0

        def edit(graph_def):
            for function in graph_def.library.function:
                old = function.signature.name
                function.signature.name = "Relu"
                for node in graph_def.node:
                    if node.op == "PartitionedCall" and node.attr["f"].func.name == old:
                        node.attr["f"].func.name = "Relu"
        return _edited(_graph(lambda tf, x: tf.identity(double(x), name="y")), edit)
    return _hostile("function_named_like_an_operation", build)


def recursive_function() -> bytes:
    """A function whose body calls itself: recursion without end when instantiated."""
    def build():
        tf = _import_tf()

        @tf.function
        def inner(x):
            return x + 1.0

        @tf.function
        def outer(x):
            return inner(x) * 2.0

        def edit(graph_def):
            names = {f.signature.name for f in graph_def.library.function}
            outer_name = next(n for n in names if "outer" in n)
            for function in graph_def.library.function:
                for node in function.node_def:
                    if node.op in ("PartitionedCall", "StatefulPartitionedCall"):
                        node.attr["f"].func.name = outer_name
        return _edited(_graph(lambda tf, x: tf.identity(outer(x), name="y")), edit)
    return _hostile("recursive_function", build)


def placement_and_compilation_attributes() -> bytes:
    """A correct model (y = 2x) whose nodes name a remote task's device, colocate with a missing node,
    ask for XLA and a kernel label, and whose call asks for another executor and session configuration:
    all cleared, it runs here."""
    def build():
        tf = _import_tf()

        @tf.function(jit_compile=True)
        def double(x):
            return x * 2.0

        def edit(graph_def):
            from tensorflow.core.protobuf import config_pb2

            config = config_pb2.ConfigProto(device_count={"CPU": 64}, inter_op_parallelism_threads=1000)
            config.graph_options.rewrite_options.custom_optimizers.add(name="NoSuchOptimizer")
            for node in list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]:
                node.device = "/job:worker/replica:0/task:1/device:CPU:0"
                node.attr["_class"].list.s.append(b"loc:@missing")
                node.attr["_XlaCompile"].b = True
                node.attr["_kernel"].s = b"no_such_label"
                if node.op in ("PartitionedCall", "StatefulPartitionedCall"):
                    node.attr["executor_type"].s = b"NO_SUCH_EXECUTOR"
                    node.attr["config_proto"].s = config.SerializeToString()
            for function in graph_def.library.function:
                function.attr["_XlaMustCompile"].b = True
            graph_def.library.gradient.add(function_name=graph_def.library.function[0].signature.name,
                                           gradient_func="ReadFile")
        return _edited(_graph(lambda tf, x: tf.identity(double(x), name="y")), edit)
    return _hostile("placement_and_compilation_attributes", build)


# --------------------------------------------------------------------------
# TFLite: tensors whose size is known only while the model runs
# --------------------------------------------------------------------------


def _tflite(function, *specs) -> bytes:
    tf = _import_tf()
    concrete = tf.function(function).get_concrete_function(*specs)
    return bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())


def tflite_dynamic_fill() -> bytes:
    """The report's: FILL whose dims are the input's values (4 GB for an input of [1073741824])."""
    def build():
        tf = _import_tf()
        return _tflite(lambda n: tf.reduce_sum(tf.fill(tf.reshape(n, [1]), 1.0), keepdims=True),
                       tf.TensorSpec([1], tf.int32))
    return _hostile("tflite_dynamic_fill", build)


def tflite_dynamic_range() -> bytes:
    def build():
        tf = _import_tf()
        return _tflite(lambda n: tf.reduce_sum(tf.cast(tf.range(n[0]), tf.float32), keepdims=True),
                       tf.TensorSpec([1], tf.int32))
    return _hostile("tflite_dynamic_range", build)


def tflite_dynamic_broadcast() -> bytes:
    def build():
        tf = _import_tf()
        return _tflite(lambda n: tf.reduce_sum(tf.broadcast_to(tf.constant(1.0), tf.reshape(n, [1])), keepdims=True),
                       tf.TensorSpec([1], tf.int32))
    return _hostile("tflite_dynamic_broadcast", build)


def tflite_dynamic_tile() -> bytes:
    def build():
        tf = _import_tf()
        return _tflite(lambda n: tf.reduce_sum(tf.tile(tf.ones([4]), tf.reshape(n, [1])), keepdims=True),
                       tf.TensorSpec([1], tf.int32))
    return _hostile("tflite_dynamic_tile", build)


def tflite_buffer_outside() -> bytes:
    """tflite_mul with a weight buffer's data declared at an offset past the model's bytes (the large
    model layout): LiteRT would read beyond the model."""
    def build():
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema

        from model_fixtures import tflite_memory_bomb

        model = schema.ModelT.InitFromPackedBuf(tflite_memory_bomb(), 0)
        target = next(b for b in model.buffers if b.data is not None and len(b.data))
        target.data, target.offset, target.size = None, 1 << 30, 4096
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
    return _hostile("tflite_buffer_outside", build)


TF_IO = (["x"], ["y"])
REFUSED = [
    ("lrn_grad", "TF", lrn_grad, "LRNGrad", TF_IO),
    ("fused_pad_conv2d", "TF", fused_pad_conv2d, "FusedPadConv2D", TF_IO),
    ("fused_resize_and_pad_conv2d", "TF", fused_resize_and_pad_conv2d, "FusedResizeAndPadConv2D", TF_IO),
    ("max_pool_grad", "TF", max_pool_grad, "MaxPoolGrad", TF_IO),
    ("conv2d_backprop_filter", "TF", conv2d_backprop_filter, "Conv2DBackpropFilter", TF_IO),
    ("fused_batch_norm_grad", "TF", fused_batch_norm_grad, "FusedBatchNormGradV3", TF_IO),
    ("relu_grad_in_function", "TF", relu_grad_in_function, "ReluGrad", TF_IO),
    ("quantized_conv2d", "TF", quantized_conv2d, "QuantizedConv2D", TF_IO),
    ("symbolic_gradient", "TF", symbolic_gradient, "SymbolicGradient", TF_IO),
    ("attribute_abort_in_loop_body", "TF", attribute_abort_in_loop_body, "AudioSpectrogram", TF_IO),
    ("conjugate_transpose", "TF", conjugate_transpose, "ConjugateTranspose", TF_IO),
    ("empty_uninitialized", "TF", empty_uninitialized, "Empty", TF_IO),
    ("string_fill_pwd", "TF", string_fill_through_placeholder_with_default, "Fill", TF_IO),
    ("string_tile", "TF", string_tile, "Tile", TF_IO),
    ("string_broadcast", "TF", string_broadcast, "BroadcastTo", TF_IO),
    ("string_gather_repeated", "TF", string_gather_repeated, "GatherV2", TF_IO),
    ("string_join_doubling_in_loop", "TF", string_join_doubling_in_loop, "StringJoin", TF_IO),
    ("string_copies_in_tf1_loop", "TF", string_copies_in_tf1_loop, "StringLower", TF_IO),
    ("string_long_rewrite", "TF", string_long_rewrite, "StaticRegexReplace", TF_IO),
    ("string_as_string_width", "TF", string_as_string_width, "AsString", TF_IO),
    ("string_lookup_long_default", "TF", string_lookup_long_default, "LookupTableFindV2", TF_IO),
    ("mutable_hash_table", "TF", mutable_hash_table, "MutableHashTableV2", TF_IO),
    ("mutable_dense_hash_table", "TF", mutable_dense_hash_table, "MutableDenseHashTableV2", TF_IO),
    ("sparse_tensors_map", "TF", sparse_tensors_map, "AddSparseToTensorsMap", TF_IO),
    ("parse_tensor", "TF", parse_tensor, "ParseTensor", TF_IO),
    ("decode_compressed", "TF", decode_compressed, "DecodeCompressed", TF_IO),
    ("resource_constant", "TF", resource_constant, "resource or variant constant", TF_IO),
    ("variant_constant", "TF", variant_constant, "resource or variant constant", TF_IO),
    ("function_named_like_an_operation", "TF", function_named_like_an_operation, "Relu", TF_IO),
    ("recursive_function", "TF", recursive_function, "calls itself", TF_IO),
    ("tflite_dynamic_fill", "TFLITE", tflite_dynamic_fill, "FILL", None),
    ("tflite_dynamic_range", "TFLITE", tflite_dynamic_range, "RANGE", None),
    ("tflite_dynamic_broadcast", "TFLITE", tflite_dynamic_broadcast, "BROADCAST_TO", None),
    ("tflite_dynamic_tile", "TFLITE", tflite_dynamic_tile, "TILE", None),
    ("tflite_buffer_outside", "TFLITE", tflite_buffer_outside, "outside the model", None),
]
