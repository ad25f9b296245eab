"""Hostile ONNX models, built with onnx's helpers and cached like model_fixtures': each one tries to reach the
server's files (a tensor's external data, read by onnxruntime relative to the server's working directory,
Redis's `dir`), its memory (onnxruntime's `*/_ORT_MEM_ADDR_/*` location), or its time and memory at store
(functions that inline into millions of nodes, sparse tensors made dense, a protobuf of millions of empty
messages).

External data sits in every place a TensorProto can: graph and sparse initializers, Constant values,
function attribute defaults, call-site attributes, function bodies, subgraphs inside functions, graphs in
attribute defaults, training info, lists of tensors, several levels down. The files named are those of the
server's dir: dump.rdb (other users' keys), redis.log, the AOF.

`STORE_CASES`: (name, builder, what the refusal must name). `LEAKS_ALONE`: the cases that do read the
file when onnxruntime loads them by itself (the attack is real, not a model onnxruntime would refuse anyway).
"""

from __future__ import annotations

from model_fixtures import ONNX_IR_VERSION, ONNX_OPSET, _cached

_VERSION = 2
DUMP, LOG, AOF = "dump.rdb", "redis.log", "appendonlydir/appendonly.aof.1.base.rdb"
MEMORY_TAG = "*/_ORT_MEM_ADDR_/*"
SECRET_BYTES = 16  # what each hostile tensor asks of the file


def _hostile(name: str, build) -> bytes:
    return _cached(f"hostile_onnx_{name}", build, version=_VERSION)


def _helpers():
    from onnx import TensorProto, helper
    return TensorProto, helper


def _opsets(*extra):
    _, helper = _helpers()
    return [helper.make_opsetid("", ONNX_OPSET), *(helper.make_opsetid(domain, 1) for domain in extra)]


def _model(nodes, functions=(), initializers=(), sparse=(), inputs=None, output_type=None, training=None,
           metadata=None) -> bytes:
    """A model with output "y" (uint8 [16] unless told), input "x" (float [2]) unless `inputs` is given."""
    TensorProto, helper = _helpers()
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])] if inputs is None else inputs
    outputs = [helper.make_tensor_value_info("y", output_type or TensorProto.UINT8, None)]
    graph = helper.make_graph(list(nodes), "hostile", inputs, outputs, list(initializers),
                              sparse_initializer=list(sparse))
    model = helper.make_model(graph, opset_imports=_opsets("local", "com.microsoft", "com.example"),
                              functions=list(functions))
    model.ir_version = ONNX_IR_VERSION
    if training is not None:
        model.training_info.append(training)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def external(name: str, location: str, length: int = SECRET_BYTES, offset: int | None = None):
    """A uint8 tensor whose data is `length` bytes of the file `location`."""
    TensorProto, helper = _helpers()
    tensor = helper.make_tensor(name, TensorProto.UINT8, [length], [0] * length)
    tensor.ClearField("int32_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("length", str(length)),
                       *((("offset", str(offset)),) if offset is not None else ())):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _constant(output: str, tensor, name: str = ""):
    _, helper = _helpers()
    return helper.make_node("Constant", [], [output], value=tensor, name=name)


def _function(name: str, inputs, outputs, nodes, attributes=(), domain: str = "local"):
    _, helper = _helpers()
    return helper.make_function(domain, name, list(inputs), list(outputs), list(nodes),
                                _opsets("local", "com.microsoft", "com.example"), attributes=list(attributes))


def _branch(nodes, output: str = "z"):
    """A subgraph (If branch) with no inputs whose output is `output` (uint8)."""
    TensorProto, helper = _helpers()
    return helper.make_graph(list(nodes), "branch", [],
                             [helper.make_tensor_value_info(output, TensorProto.UINT8, None)])


def _if(output: str, branch, name: str = "if"):
    TensorProto, helper = _helpers()
    condition = helper.make_node("Constant", [], [f"{output}_cond"],
                                 value=helper.make_tensor("c", TensorProto.BOOL, [], [True]))
    return [condition, helper.make_node("If", [f"{output}_cond"], [output], then_branch=branch, else_branch=branch,
                                        name=name)]


# ---------------------------------------------------------------- external data, in every place


def ext_initializer() -> bytes:
    def build():
        _, helper = _helpers()
        return _model([helper.make_node("Identity", ["w"], ["y"])], initializers=[external("w", DUMP)])
    return _hostile("ext_initializer", build)


def ext_sparse_indices() -> bytes:
    """A sparse initializer whose indices (not values) are in the log."""
    def build():
        TensorProto, helper = _helpers()
        values = helper.make_tensor("w", TensorProto.UINT8, [SECRET_BYTES], [1] * SECRET_BYTES)
        indices = external("w_indices", LOG, SECRET_BYTES * 8)
        indices.data_type = TensorProto.INT64
        indices.dims[:] = [SECRET_BYTES]
        sparse = helper.make_sparse_tensor(values, indices, [1 << 20])
        return _model([helper.make_node("Identity", ["w"], ["y"])], sparse=[sparse])
    return _hostile("ext_sparse_indices", build)


def ext_constant_value() -> bytes:
    def build():
        return _model([_constant("y", external("c", DUMP), "leak")])
    return _hostile("ext_constant_value", build)


def ext_constant_sparse_value() -> bytes:
    def build():
        TensorProto, helper = _helpers()
        values = external("v", LOG)
        indices = helper.make_tensor("i", TensorProto.INT64, [SECRET_BYTES], list(range(SECRET_BYTES)))
        node = helper.make_node("Constant", [], ["s"], sparse_value=helper.make_sparse_tensor(values, indices,
                                                                                               [SECRET_BYTES]))
        return _model([node, helper.make_node("Identity", ["s"], ["y"])])
    return _hostile("ext_constant_sparse_value", build)


def ext_function_attribute_default() -> bytes:
    """The issue's model: a function's attribute default is a tensor in dump.rdb, used by a Constant of its body
    through ref_attr_name; the call passes nothing, so the default is what onnxruntime inlines."""
    def build():
        _, helper = _helpers()
        constant = helper.make_node("Constant", [], ["b"])
        reference = constant.attribute.add()
        reference.name, reference.ref_attr_name, reference.type = "value", "secret", helper.AttributeProto.TENSOR
        function = _function("Leak", [], ["b"], [constant])
        function.attribute_proto.append(helper.make_attribute("secret", external("s", DUMP)))
        return _model([helper.make_node("Leak", [], ["y"], domain="local")], [function], inputs=[])
    return _hostile("ext_function_attribute_default", build)


def ext_function_call_attribute() -> bytes:
    """The same tensor passed by the call (the function's attribute has no default)."""
    def build():
        _, helper = _helpers()
        constant = helper.make_node("Constant", [], ["b"])
        reference = constant.attribute.add()
        reference.name, reference.ref_attr_name, reference.type = "value", "secret", helper.AttributeProto.TENSOR
        function = _function("Leak", [], ["b"], [constant], attributes=["secret"])
        call = helper.make_node("Leak", [], ["y"], domain="local", name="call")
        call.attribute.append(helper.make_attribute("secret", external("s", DUMP)))
        return _model([call], [function], inputs=[])
    return _hostile("ext_function_call_attribute", build)


def ext_constant_in_function() -> bytes:
    def build():
        _, helper = _helpers()
        function = _function("Leak", [], ["b"], [_constant("b", external("s", DUMP), "in_fn")])
        return _model([helper.make_node("Leak", [], ["y"], domain="local")], [function], inputs=[])
    return _hostile("ext_constant_in_function", build)


def ext_subgraph_in_function() -> bytes:
    """An If inside a function, its branch's Constant in the AOF."""
    def build():
        _, helper = _helpers()
        branch = _branch([_constant("z", external("s", AOF), "in_branch")])
        function = _function("Leak", [], ["b"], _if("b", branch))
        return _model([helper.make_node("Leak", [], ["y"], domain="local")], [function], inputs=[])
    return _hostile("ext_subgraph_in_function", build)


def ext_graph_in_function_default() -> bytes:
    """A function attribute's default is a graph (an If branch, by reference) whose initializer is the log."""
    def build():
        TensorProto, helper = _helpers()
        branch = helper.make_graph([helper.make_node("Identity", ["w"], ["z"])], "branch", [],
                                   [helper.make_tensor_value_info("z", TensorProto.UINT8, None)], [external("w", LOG)])
        condition = helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [1]))
        choice = helper.make_node("If", ["cond"], ["b"])
        for name in ("then_branch", "else_branch"):
            reference = choice.attribute.add()
            reference.name, reference.ref_attr_name, reference.type = name, "body", helper.AttributeProto.GRAPH
        function = _function("Leak", [], ["b"], [condition, choice])
        function.attribute_proto.append(helper.make_attribute("body", branch))
        return _model([helper.make_node("Leak", [], ["y"], domain="local")], [function], inputs=[])
    return _hostile("ext_graph_in_function_default", build)


def ext_training_info() -> bytes:
    """training_info's initialization graph, its initializer in dump.rdb."""
    def build():
        TensorProto, helper = _helpers()
        from onnx import TrainingInfoProto

        training = TrainingInfoProto()
        training.initialization.CopyFrom(helper.make_graph(
            [helper.make_node("Identity", ["w"], ["w_out"])], "init", [],
            [helper.make_tensor_value_info("w_out", TensorProto.UINT8, None)], [external("w", DUMP)]))
        training.algorithm.CopyFrom(helper.make_graph([], "algorithm", [], []))
        return _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8)], training=training)
    return _hostile("ext_training_info", build)


def ext_tensors_list() -> bytes:
    """A list-of-tensors attribute (no operator reads it: the check must not care which attributes are read)."""
    def build():
        TensorProto, helper = _helpers()
        node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8, name="cast")
        node.attribute.append(helper.make_attribute("extra", [helper.make_tensor("ok", TensorProto.UINT8, [1], [0]),
                                                              external("s", DUMP)]))
        return _model([node])
    return _hostile("ext_tensors_list", build)


def ext_nested_deep() -> bytes:
    """Four levels down: If in the graph -> a function call in its branch -> an If in the function -> a Loop
    body -> a Constant in the log."""
    def build():
        TensorProto, helper = _helpers()
        loop_body = helper.make_graph(
            [_constant("leak", external("s", LOG), "deep"), helper.make_node("Identity", ["cond_in"], ["cond_out"])],
            "loop_body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                          helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("leak", TensorProto.UINT8, None)])
        trip = helper.make_node("Constant", [], ["trip"], value=helper.make_tensor("t", TensorProto.INT64, [], [1]))
        loop = helper.make_node("Loop", ["trip", ""], ["scan_out"], body=loop_body)
        flat = helper.make_node("Reshape", ["scan_out", "shape"], ["z"])
        shape = helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("s", TensorProto.INT64, [1], [-1]))
        function = _function("Inner", [], ["b"], _if("b", _branch([trip, loop, shape, flat])))
        outer = _branch([helper.make_node("Inner", [], ["z"], domain="local")])
        return _model(_if("y", outer, "outer"), [function], inputs=[])
    return _hostile("ext_nested_deep", build)


def ext_memory_address() -> bytes:
    """onnxruntime's in-memory location: the offset is an address in the server's process."""
    def build():
        _, helper = _helpers()
        function = _function("Leak", [], ["b"], [_constant("b", external("s", MEMORY_TAG, offset=0x400000), "peek")])
        return _model([helper.make_node("Leak", [], ["y"], domain="local")], [function], inputs=[])
    return _hostile("ext_memory_address", build)


def ext_location_without_flag() -> bytes:
    """external_data entries on a tensor whose data_location says DEFAULT."""
    def build():
        TensorProto, helper = _helpers()
        tensor = external("c", DUMP)
        tensor.data_location = TensorProto.DEFAULT
        return _model([_constant("y", tensor, "quiet")])
    return _hostile("ext_location_without_flag", build)


# ---------------------------------------------------------------- operators


def epcontext() -> bytes:
    """EPContext with embed_mode 0: ep_cache_context names a file beside the model (here: Redis's dir)."""
    def build():
        _, helper = _helpers()
        node = helper.make_node("EPContext", ["x"], ["y"], domain="com.microsoft", name="ctx", embed_mode=0,
                                ep_cache_context=DUMP, source="CPUExecutionProvider", main_context=1)
        return _model([node])
    return _hostile("epcontext", build)


def epcontext_in_function() -> bytes:
    def build():
        _, helper = _helpers()
        node = helper.make_node("EPContext", ["a"], ["b"], domain="com.microsoft", name="ctx_in_fn", embed_mode=0,
                                ep_cache_context=LOG, source="CPUExecutionProvider", main_context=1)
        function = _function("Wrap", ["a"], ["b"], [node])
        return _model([helper.make_node("Wrap", ["x"], ["y"], domain="local")], [function])
    return _hostile("epcontext_in_function", build)


def snpe() -> bytes:
    def build():
        _, helper = _helpers()
        return _model([helper.make_node("Snpe", ["x"], ["y"], domain="com.microsoft", name="snpe", DLC=b"\0" * 16)])
    return _hostile("snpe", build)


def custom_op_in_function_default_graph() -> bytes:
    """A custom operator inside a graph that is a function attribute's default."""
    def build():
        TensorProto, helper = _helpers()
        branch = helper.make_graph([helper.make_node("ReadFile", [], ["z"], domain="com.example", name="in_default")],
                                   "branch", [], [helper.make_tensor_value_info("z", TensorProto.UINT8, None)])
        choice = helper.make_node("If", ["cond"], ["b"])
        for name in ("then_branch", "else_branch"):
            reference = choice.attribute.add()
            reference.name, reference.ref_attr_name, reference.type = name, "body", helper.AttributeProto.GRAPH
        condition = helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [1]))
        function = _function("Choose", [], ["b"], [condition, choice])
        function.attribute_proto.append(helper.make_attribute("body", branch))
        return _model([helper.make_node("Choose", [], ["y"], domain="local")], [function], inputs=[])
    return _hostile("custom_op_in_function_default_graph", build)


def custom_op_in_training_info() -> bytes:
    def build():
        TensorProto, helper = _helpers()
        from onnx import TrainingInfoProto

        training = TrainingInfoProto()
        training.algorithm.CopyFrom(helper.make_graph(
            [helper.make_node("ReadFile", [], ["z"], domain="com.example", name="in_training")], "algorithm", [],
            [helper.make_tensor_value_info("z", TensorProto.UINT8, None)]))
        training.initialization.CopyFrom(helper.make_graph([], "init", [], []))
        return _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8)], training=training)
    return _hostile("custom_op_in_training_info", build)


def custom_op_deep() -> bytes:
    """A custom operator in a Loop body inside a function called from an If branch."""
    def build():
        TensorProto, helper = _helpers()
        body = helper.make_graph([helper.make_node("ReadFile", ["cond_in"], ["cond_out"], domain="com.example",
                                                   name="deep_reader")], "body",
                                 [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                  helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
                                 [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])])
        trip = helper.make_node("Constant", [], ["trip"], value=helper.make_tensor("t", TensorProto.INT64, [], [1]))
        loop = helper.make_node("Loop", ["trip", ""], [], body=body)
        cast = helper.make_node("Cast", ["trip"], ["b"], to=TensorProto.UINT8)
        function = _function("Inner", [], ["b"], [trip, loop, cast])
        return _model(_if("y", _branch([helper.make_node("Inner", [], ["z"], domain="local")])), [function], inputs=[])
    return _hostile("custom_op_deep", build)


def string_normalizer_locale_path() -> bytes:
    """glibc's newlocale reads a locale name starting with "/" as a directory of locale files."""
    def build():
        TensorProto, helper = _helpers()
        node = helper.make_node("StringNormalizer", ["x"], ["y"], name="normalize", case_change_action="LOWER",
                                locale="/tmp/redisai-hostile-targets")
        return _model([node], inputs=[helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
                      output_type=TensorProto.STRING)
    return _hostile("string_normalizer_locale_path", build)


def string_normalizer_locale_by_reference() -> bytes:
    """The locale passed to a function's StringNormalizer by the call, where the node itself holds none."""
    def build():
        TensorProto, helper = _helpers()
        node = helper.make_node("StringNormalizer", ["a"], ["b"], name="normalize_ref", case_change_action="LOWER")
        reference = node.attribute.add()
        reference.name, reference.ref_attr_name, reference.type = "locale", "where", helper.AttributeProto.STRING
        function = _function("Normalize", ["a"], ["b"], [node], attributes=["where"])
        call = helper.make_node("Normalize", ["x"], ["y"], domain="local", where="/tmp/redisai-hostile-targets")
        return _model([call], [function], inputs=[helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
                      output_type=TensorProto.STRING)
    return _hostile("string_normalizer_locale_by_reference", build)


# ---------------------------------------------------------------- size once inlined


def _chain(name: str, callee: str | None, fan: int, domain: str = "local"):
    """A function whose body is `fan` calls of `callee` in a chain (or `fan` Relus)."""
    _, helper = _helpers()
    nodes = [helper.make_node(callee or "Relu", ["a" if i == 0 else f"m{i - 1}"], ["b" if i == fan - 1 else f"m{i}"],
                              domain=domain if callee else "") for i in range(fan)]
    return _function(name, ["a"], ["b"], nodes, domain=domain)


def _float_model(nodes, functions) -> bytes:
    TensorProto, _ = _helpers()
    return _model(nodes, functions, output_type=TensorProto.FLOAT)


def nested_functions(depth: int = 18, fan: int = 2) -> bytes:
    """The issue's model: functions calling the one below `fan` times, `depth` deep (fan ** depth Relus)."""
    def build():
        _, helper = _helpers()
        functions = [_chain("f0", None, 1)] + [_chain(f"f{d}", f"f{d - 1}", fan) for d in range(1, depth + 1)]
        return _float_model([helper.make_node(f"f{depth}", ["x"], ["y"], domain="local")], functions)
    return _hostile(f"nested_functions_{depth}_{fan}", build)


def wide_functions() -> bytes:
    """Two levels, 400 calls each: 160000 Relus from a model of a few kilobytes."""
    return nested_functions(depth=2, fan=400)


def recursive_direct() -> bytes:
    def build():
        _, helper = _helpers()
        return _float_model([helper.make_node("f", ["x"], ["y"], domain="local")], [_chain("f", "f", 1)])
    return _hostile("recursive_direct", build)


def recursive_indirect() -> bytes:
    def build():
        _, helper = _helpers()
        return _float_model([helper.make_node("f", ["x"], ["y"], domain="local")],
                            [_chain("f", "g", 1), _chain("g", "h", 1), _chain("h", "f", 1)])
    return _hostile("recursive_indirect", build)


def recursive_through_subgraph() -> bytes:
    """f's body is an If whose branch calls f."""
    def build():
        TensorProto, helper = _helpers()
        branch = helper.make_graph([helper.make_node("f", ["a"], ["z"], domain="local")], "branch", [],
                                   [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
        condition = helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [1]))
        body = [condition, helper.make_node("If", ["cond"], ["b"], then_branch=branch, else_branch=branch)]
        return _float_model([helper.make_node("f", ["x"], ["y"], domain="local")],
                            [_function("f", ["a"], ["b"], body)])
    return _hostile("recursive_through_subgraph", build)


def function_constant_copies() -> bytes:
    """A function holding a 1 MB constant, called 300 times: inlining copies 300 MB."""
    def build():
        TensorProto, helper = _helpers()
        big = helper.make_tensor("big", TensorProto.UINT8, [1 << 20], b"\1" * (1 << 20), raw=True)
        body = [_constant("c", big), helper.make_node("ReduceMax", ["c"], ["m"], keepdims=0),
                helper.make_node("Cast", ["m"], ["mf"], to=TensorProto.FLOAT),
                helper.make_node("Add", ["a", "mf"], ["b"])]
        calls = [helper.make_node("Big", ["x" if i == 0 else f"t{i - 1}"], ["y" if i == 299 else f"t{i}"],
                                  domain="local") for i in range(300)]
        return _float_model(calls, [_function("Big", ["a"], ["b"], body)])
    return _hostile("function_constant_copies", build)


def _sparse(elements: int):
    """One 1.0 among `elements` floats: onnxruntime makes every sparse initializer and Constant dense at load."""
    TensorProto, helper = _helpers()
    return helper.make_sparse_tensor(helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0]),
                                     helper.make_tensor("w_i", TensorProto.INT64, [1], [5]), [elements])


def _sum_of(name: str):
    TensorProto, helper = _helpers()
    return [helper.make_node("ReduceSum", [name], [f"{name}_sum"], keepdims=0),
            helper.make_node("Add", ["x", f"{name}_sum"], ["y"])]


def sparse_initializer_made_dense() -> bytes:
    """A model of about a hundred bytes whose sparse initializer is 4 TB once dense."""
    def build():
        TensorProto, _ = _helpers()
        return _model(_sum_of("w"), sparse=[_sparse(1 << 40)], output_type=TensorProto.FLOAT)
    return _hostile("sparse_initializer_made_dense", build)


def sparse_constant_made_dense() -> bytes:
    def build():
        TensorProto, helper = _helpers()
        constant = helper.make_node("Constant", [], ["w"], sparse_value=_sparse(1 << 36))
        return _model([constant, *_sum_of("w")], output_type=TensorProto.FLOAT)
    return _hostile("sparse_constant_made_dense", build)


def sparse_in_function_calls() -> bytes:
    """A 100 MB (dense) sparse Constant in a function called three times: each call makes its own."""
    def build():
        TensorProto, helper = _helpers()
        body = [helper.make_node("Constant", [], ["w"], sparse_value=_sparse(25_000_000)),
                helper.make_node("ReduceSum", ["w"], ["s"], keepdims=0), helper.make_node("Add", ["a", "s"], ["b"])]
        calls = [helper.make_node("Dense", ["x" if i == 0 else f"t{i - 1}"], ["y" if i == 2 else f"t{i}"],
                                  domain="local") for i in range(3)]
        return _model(calls, [_function("Dense", ["a"], ["b"], body)], output_type=TensorProto.FLOAT)
    return _hostile("sparse_in_function_calls", build)


def call_site_tensor_attribute() -> bytes:
    """A tensor (its own data, nothing external) passed to a function by the call."""
    def build():
        TensorProto, helper = _helpers()
        constant = helper.make_node("Constant", [], ["b"])
        reference = constant.attribute.add()
        reference.name, reference.ref_attr_name, reference.type = "value", "t", helper.AttributeProto.TENSOR
        function = _function("Const", [], ["b"], [constant], attributes=["t"])
        call = helper.make_node("Const", [], ["y"], domain="local", name="const_call",
                                t=helper.make_tensor("v", TensorProto.UINT8, [2], [1, 2]))
        return _model([call], [function], inputs=[])
    return _hostile("call_site_tensor_attribute", build)


def field_bomb(count: int = 5_000_000) -> bytes:
    """`count` empty value_info entries: 2 bytes of protobuf each, a message of about 150 bytes once parsed."""
    def build():
        blob = _model([])
        payload = b"\x52\x00" * count  # GraphProto.value_info (field 10), empty
        return blob + _length_delimited(7, payload)  # merged into the model's graph by any protobuf parser
    return _hostile(f"field_bomb_{count}", build)


def unknown_field() -> bytes:
    """A graph field no ONNX version defines, holding an external tensor: a newer schema (onnxruntime's) could
    read what this onnx package would not see."""
    def build():
        return _model([]) + _length_delimited(7, _length_delimited(99, external("s", DUMP).SerializeToString()))
    return _hostile("unknown_field", build)


def _length_delimited(number: int, payload: bytes) -> bytes:
    out = b""
    for value in ((number << 3) | 2, len(payload)):
        while value > 0x7F:
            out += bytes([(value & 0x7F) | 0x80])
            value >>= 7
        out += bytes([value])
    return out + payload


# ---------------------------------------------------------------- run time: memory


def big_output() -> bytes:
    """ConstantOfShape: the output's size is the input's value (float32)."""
    def build():
        TensorProto, helper = _helpers()
        node = helper.make_node("ConstantOfShape", ["shape"], ["y"],
                                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))
        return _model([node], inputs=[helper.make_tensor_value_info("shape", TensorProto.INT64, [1])],
                      output_type=TensorProto.FLOAT)
    return _hostile("big_output", build)


def folded_at_load(elements: int = 500_000_000) -> bytes:
    """A Tile of a constant: onnxruntime's constant folding would compute it (2 GB) while the session is made."""
    def build():
        TensorProto, helper = _helpers()
        nodes = [_constant("one", helper.make_tensor("o", TensorProto.FLOAT, [1], [1.0])),
                 _constant("reps", helper.make_tensor("r", TensorProto.INT64, [1], [elements])),
                 helper.make_node("Tile", ["one", "reps"], ["big"]),
                 helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
                 helper.make_node("Add", ["x", "total"], ["y"])]
        return _model(nodes, output_type=TensorProto.FLOAT)
    return _hostile(f"folded_at_load_{elements}", build)


def config_from_metadata() -> bytes:
    """onnxruntime's `ort_config` metadata (read with ORT_LOAD_CONFIG_FROM_MODEL=1): profiling, which writes
    onnxruntime_profile_*.json into the working directory."""
    def build():
        import json

        TensorProto, helper = _helpers()
        config = {"session_options": {"enable_profiling": 1, "intra_op_num_threads": 1}}
        return _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8)],
                      metadata={"ort_config": json.dumps(config)})
    return _hostile("config_from_metadata", build)


def legit_functions() -> bytes:
    """What a served model may do with functions: three levels, attributes by reference (numbers)."""
    def build():
        TensorProto, helper = _helpers()
        scale = helper.make_node("Constant", [], ["s"])
        reference = scale.attribute.add()
        reference.name, reference.ref_attr_name, reference.type = "value_float", "factor", helper.AttributeProto.FLOAT
        inner = _function("Scale", ["a"], ["b"], [scale, helper.make_node("Mul", ["a", "s"], ["b"])],
                          attributes=["factor"])
        middle = _function("Twice", ["a"], ["b"], [helper.make_node("Scale", ["a"], ["m"], domain="local", factor=2.0),
                                                   helper.make_node("Scale", ["m"], ["b"], domain="local", factor=3.0)])
        outer = _function("Outer", ["a"], ["b"], [helper.make_node("Twice", ["a"], ["m"], domain="local"),
                                                  helper.make_node("Relu", ["m"], ["b"])])
        return _float_model([helper.make_node("Outer", ["x"], ["y"], domain="local")], [inner, middle, outer])
    return _hostile("legit_functions", build)


STORE_CASES = [
    ("ext_initializer", ext_initializer, "Initializer tensors with external data is not allowed."),
    ("ext_sparse_indices", ext_sparse_indices, "external data"),
    ("ext_constant_value", ext_constant_value, "external data"),
    ("ext_constant_sparse_value", ext_constant_sparse_value, "external data"),
    ("ext_function_attribute_default", ext_function_attribute_default, "external data"),
    ("ext_function_call_attribute", ext_function_call_attribute, "external data"),
    ("ext_constant_in_function", ext_constant_in_function, "external data"),
    ("ext_subgraph_in_function", ext_subgraph_in_function, "external data"),
    ("ext_graph_in_function_default", ext_graph_in_function_default, "external data"),
    ("ext_training_info", ext_training_info, "external data"),
    ("ext_tensors_list", ext_tensors_list, "external data"),
    ("ext_nested_deep", ext_nested_deep, "external data"),
    ("ext_memory_address", ext_memory_address, "external data"),
    ("ext_location_without_flag", ext_location_without_flag, "external data"),
    ("epcontext", epcontext, "com.microsoft::EPContext"),
    ("epcontext_in_function", epcontext_in_function, "com.microsoft::EPContext"),
    ("snpe", snpe, "com.microsoft::Snpe"),
    ("custom_op_in_function_default_graph", custom_op_in_function_default_graph, "com.example::ReadFile"),
    ("custom_op_in_training_info", custom_op_in_training_info, "com.example::ReadFile"),
    ("custom_op_deep", custom_op_deep, "com.example::ReadFile"),
    ("string_normalizer_locale_path", string_normalizer_locale_path, "locale"),
    ("string_normalizer_locale_by_reference", string_normalizer_locale_by_reference, "locale"),
    ("nested_functions_18", nested_functions, "MAX_INLINED_NODES"),
    ("wide_functions", wide_functions, "MAX_INLINED_NODES"),
    ("recursive_direct", recursive_direct, "local::f calls itself"),
    ("recursive_indirect", recursive_indirect, "calls itself"),
    ("recursive_through_subgraph", recursive_through_subgraph, "local::f calls itself"),
    ("function_constant_copies", function_constant_copies, "MAX_EXPANDED_BYTES"),
    ("sparse_initializer_made_dense", sparse_initializer_made_dense, "MAX_EXPANDED_BYTES"),
    ("sparse_constant_made_dense", sparse_constant_made_dense, "MAX_EXPANDED_BYTES"),
    ("sparse_in_function_calls", sparse_in_function_calls, "MAX_EXPANDED_BYTES"),
    ("call_site_tensor_attribute", call_site_tensor_attribute, "as a tensor, graph or type"),
    ("field_bomb", field_bomb, "MAX_FIELDS"),
    ("unknown_field", unknown_field, "Field 99 of onnx.GraphProto"),
]

# The models whose tensor onnxruntime reads from Redis's dir when it loads them by itself (checked by
# test_hostile_onnx: the attack is real).
LEAKS_ALONE = ["ext_initializer", "ext_constant_value", "ext_constant_sparse_value", "ext_function_attribute_default",
               "ext_function_call_attribute", "ext_constant_in_function", "ext_subgraph_in_function",
               "ext_graph_in_function_default"]
