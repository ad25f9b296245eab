"""Hostile models, built with the real frameworks and cached like model_fixtures': each one tries to reach
the server's files, network or process, and the server must refuse it when it is stored or loaded.

The files they aim at sit at fixed paths (the paths are inside the cached models), made by
`ensure_target_files()` with fixed contents, so a test can prove nothing was read (the secret never
appears in a reply), changed (the sentinel keeps its bytes) or created (CREATED stays absent).

`CASES` lists every model: (name, backend, builder, the operator the refusal must name, TF inputs, TF
outputs). SCRIPTS lists hostile TorchScript sources with the operator their refusal names.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

from model_fixtures import ONNX_IR_VERSION, ONNX_OPSET, _cached, _import_tf

TARGET_DIR = Path("/tmp/redisai-hostile-targets")
SECRET = TARGET_DIR / "secret.txt"
SECRET_TEXT = b"redisai hostile-corpus secret 6f1c2b: requirepass would be here\n" * 2
SENTINEL = TARGET_DIR / "sentinel.bin"
SENTINEL_BYTES = bytes(range(128))
CREATED = TARGET_DIR / "created-by-model"
# TorchScript models hold them as str attributes (it takes no closed-over global).
SECRET_PATH, SENTINEL_PATH, CREATED_PATH = str(SECRET), str(SENTINEL), str(CREATED)
_VERSION = 1


def ensure_target_files() -> None:
    """The secret and the sentinel with their fixed contents (written whole, then renamed: two test
    workers may do this at once)."""
    TARGET_DIR.mkdir(parents=True, exist_ok=True)
    for path, content in ((SECRET, SECRET_TEXT), (SENTINEL, SENTINEL_BYTES)):
        if path.exists() and path.read_bytes() == content:
            continue
        fd, tmp = tempfile.mkstemp(dir=TARGET_DIR)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)


def untouched() -> bool:
    return (SECRET.read_bytes() == SECRET_TEXT and SENTINEL.read_bytes() == SENTINEL_BYTES
            and not CREATED.exists())


def _hostile(name: str, build) -> bytes:
    return _cached(f"hostile_{name}", build, version=_VERSION)


# --------------------------------------------------------------------------
# TorchScript
# --------------------------------------------------------------------------


def _torchscript(module) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def torch_read_file() -> bytes:
    """The issue's model: forward returns the first bytes of the secret as floats."""
    def build():
        import torch

        class ReadFile(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.path = SECRET_PATH

            def forward(self, x):
                t = torch.from_file(self.path, shared=False, size=64, dtype=torch.uint8)
                return t.to(torch.float32) + x[0] * 0
        return _torchscript(ReadFile())
    return _hostile("torch_read_file", build)


def torch_overwrite_file() -> bytes:
    """Maps the sentinel shared and copies the input over it: an in-place write to a server file."""
    def build():
        import torch

        class Overwrite(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.path = SENTINEL_PATH

            def forward(self, x):
                t = torch.from_file(self.path, shared=True, size=128, dtype=torch.uint8)
                t.copy_(x.to(torch.uint8).expand(128))
                return x + t.float().sum() * 0  # uses t: TorchScript would drop an unused write
        return _torchscript(Overwrite())
    return _hostile("torch_overwrite_file", build)


def torch_create_file() -> bytes:
    """torch.save (aten::save): creates a file anywhere the server may write."""
    def build():
        import torch

        class Create(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.path = CREATED_PATH

            def forward(self, x):
                torch.save(x, self.path)
                return x
        return _torchscript(Create())
    return _hostile("torch_create_file", build)


def torch_read_at_load() -> bytes:
    """__setstate__ runs while torch.jit.load unpickles the module: a read before any forward."""
    def build():
        import torch

        class ReadAtLoad(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.n = 1
                self.path = SECRET_PATH

            def forward(self, x):
                return x + self.n

            @torch.jit.export
            def __getstate__(self) -> tuple[int, bool, str]:
                return (self.n, self.training, self.path)

            @torch.jit.export
            def __setstate__(self, state: tuple[int, bool, str]) -> None:
                t = torch.from_file(state[2], shared=False, size=1, dtype=torch.uint8)
                self.n = int(t[0])
                self.training = state[1]
                self.path = state[2]
        return _torchscript(ReadAtLoad())
    return _hostile("torch_read_at_load", build)


def torch_in_submodule() -> bytes:
    """The read hidden two submodules down."""
    def build():
        import torch

        class Reader(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.path = SECRET_PATH

            def forward(self, x):
                return torch.from_file(self.path, shared=False, size=4, dtype=torch.uint8).float() + x

        class Middle(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.reader = Reader()

            def forward(self, x):
                return self.reader(x)

        class Outer(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.middle = Middle()

            def forward(self, x):
                return self.middle(x).relu()
        return _torchscript(Outer())
    return _hostile("torch_in_submodule", build)


def torch_in_class_and_fork() -> bytes:
    """The read in a TorchScript class's method, reached from a forked function."""
    def build():
        import torch

        @torch.jit.script
        class Helper:
            def __init__(self, path: str):
                self.path = path

            def read(self, x: torch.Tensor) -> torch.Tensor:
                return torch.from_file(self.path, shared=False, size=4, dtype=torch.uint8).float() + x

        def forked(x: torch.Tensor, path: str) -> torch.Tensor:
            return Helper(path).read(x)

        class Forking(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.path = SECRET_PATH

            def forward(self, x):
                future = torch.jit.fork(forked, x, self.path)
                return torch.jit.wait(future)
        return _torchscript(Forking())
    return _hostile("torch_in_class_and_fork", build)


def torch_network() -> bytes:
    """A collective of torch.distributed (the network)."""
    def build():
        import torch

        class Collective(torch.nn.Module):
            def forward(self, x):
                return torch.ops._c10d_functional.all_reduce(x, "sum", "0")
        return _torchscript(Collective())
    return _hostile("torch_network", build)


def torch_custom_class() -> bytes:
    """A custom C++ class of torch.distributed.rpc."""
    def build():
        import torch

        class CustomClass(torch.nn.Module):
            def forward(self, x):
                torch.classes.dist_rpc.WorkerInfo("worker", 0)
                return x
        return _torchscript(CustomClass())
    return _hostile("torch_custom_class", build)


def torch_duplicate_entry() -> bytes:
    """A harmless model whose archive holds its source twice, the second copy reading the secret: Python's
    zipfile and torch's reader may each pick another copy."""
    def build():
        from model_fixtures import torch_add_mul

        genuine = zipfile.ZipFile(io.BytesIO(torch_add_mul()))
        source = next(name for name in genuine.namelist() if name.endswith(".py"))
        text = genuine.read(source).decode()
        hostile = text.replace("    return ", f'    _0 = torch.from_file("{SECRET}", False, 4, dtype=0)\n    return ', 1)
        out = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of the duplicate name: that is the point
            with zipfile.ZipFile(out, "w") as forged:
                for item in genuine.infolist():
                    forged.writestr(item, genuine.read(item.filename))
                forged.writestr(source, hostile)
        return out.getvalue()
    return _hostile("torch_duplicate_entry", build)


# --------------------------------------------------------------------------
# TensorFlow GraphDefs
# --------------------------------------------------------------------------


def _graph(body) -> bytes:
    """GraphDef of what `body(tf)` adds to a new graph (with placeholder "x"), output "c"."""
    tf = _import_tf()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, shape=None, name="x")
        body(tf, x)
    return graph.as_graph_def().SerializeToString()


def _with_node(op: str, attrs: dict, inputs=()) -> bytes:
    """A GraphDef with placeholder "x" and a node "c" of `op`, for operations TensorFlow registers but
    gives no Python wrapper (its own protobuf classes build the node)."""
    tf = _import_tf()
    graph_def = tf.compat.v1.GraphDef.FromString(_graph(lambda tf, x: None))
    node = graph_def.node.add(name="c", op=op)
    node.input.extend(inputs)
    for key, value in attrs.items():
        node.attr[key].CopyFrom(value)
    return graph_def.SerializeToString()


def _attr(**value):
    tf = _import_tf()
    return tf.compat.v1.AttrValue(**value)


def tf_generate_vocab_remapping() -> bytes:
    def build():
        return _graph(lambda tf, x: tf.raw_ops.GenerateVocabRemapping(
            new_vocab_file=str(SECRET), old_vocab_file=str(SECRET), new_vocab_offset=0, num_new_vocab=1, name="c"))
    return _hostile("tf_generate_vocab_remapping", build)


def tf_record_input() -> bytes:
    """Opens files by glob; its error told which exist."""
    def build():
        return _graph(lambda tf, x: tf.raw_ops.RecordInput(file_pattern=f"{TARGET_DIR}/*", name="c"))
    return _hostile("tf_record_input", build)


def tf_fixed_unigram_sampler() -> bytes:
    """Reads its vocab_file while the graph is loaded; the error quoted the file's first line."""
    def build():
        def body(tf, x):
            classes = tf.constant([[0]], tf.int64)
            tf.raw_ops.FixedUnigramCandidateSampler(true_classes=classes, num_true=1, num_sampled=1, unique=True,
                                                    range_max=2, vocab_file=str(SECRET), name="c")
        return _graph(body)
    return _hostile("tf_fixed_unigram_sampler", build)


def tf_skipgram() -> bytes:
    def build():
        return _with_node("Skipgram", {"filename": _attr(s=str(SECRET).encode()), "batch_size": _attr(i=1)})
    return _hostile("tf_skipgram", build)


def tf_rpc_client() -> bytes:
    """A TensorFlow RPC client: the network."""
    def build():
        tf = _import_tf()
        graph_def = tf.compat.v1.GraphDef.FromString(_graph(lambda tf, x: tf.constant("127.0.0.1:1", name="address")))
        node = graph_def.node.add(name="c", op="RpcClient", input=["address", "address"])
        node.attr["shared_name"].CopyFrom(_attr(s=b""))
        node.attr["list_registered_methods"].CopyFrom(_attr(b=False))
        return graph_def.SerializeToString()
    return _hostile("tf_rpc_client", build)


def tf_write_file() -> bytes:
    def build():
        return _graph(lambda tf, x: tf.io.write_file(str(SENTINEL), tf.strings.as_string(x[0]), name="c"))
    return _hostile("tf_write_file", build)


def tf_read_in_function_library() -> bytes:
    """ReadFile inside a tf.function: the graph holds only a call, the read is in its function library."""
    def build():
        tf = _import_tf()

        @tf.function
        def read(x):
            return tf.strings.length(tf.io.read_file(str(SECRET))) + tf.cast(x[0], tf.int32) * 0

        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, shape=None, name="x")
            tf.identity(read(x), name="c")
        return graph.as_graph_def().SerializeToString()
    return _hostile("tf_read_in_function_library", build)


def tf_function_attr_names_op() -> bytes:
    """A PartitionedCall whose function attribute names an operation instead of a library function."""
    def build():
        tf = _import_tf()
        graph_def = tf.compat.v1.GraphDef.FromString(_graph(lambda tf, x: tf.constant(str(SECRET), name="path")))
        node = graph_def.node.add(name="c", op="PartitionedCall", input=["path"])
        node.attr["Tin"].CopyFrom(_attr(list=tf.compat.v1.AttrValue.ListValue(type=[tf.string.as_datatype_enum])))
        node.attr["Tout"].CopyFrom(_attr(list=tf.compat.v1.AttrValue.ListValue(type=[tf.string.as_datatype_enum])))
        node.attr["f"].CopyFrom(_attr(func=tf.compat.v1.NameAttrList(name="ReadFile")))
        return graph_def.SerializeToString()
    return _hostile("tf_function_attr_names_op", build)


def tf_abort() -> bytes:
    """Abort ends the process it runs in: the server."""
    def build():
        return _graph(lambda tf, x: tf.raw_ops.Abort(error_msg="bye", name="c"))
    return _hostile("tf_abort", build)


# --------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------


def _onnx_model(nodes, functions=(), initializers=(), sparse_initializers=()) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(list(nodes), "hostile", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], list(initializers),
                              sparse_initializer=list(sparse_initializers))
    opsets = [helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("com.example", 1),
              helper.make_opsetid("local", 1)]
    model = helper.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = ONNX_IR_VERSION
    return model.SerializeToString()


def onnx_custom_domain() -> bytes:
    """An operator of a custom domain, as a custom-operator library would provide."""
    def build():
        from onnx import helper
        return _onnx_model([helper.make_node("ReadFile", ["x"], ["y"], domain="com.example", name="reader")])
    return _hostile("onnx_custom_domain", build)


def onnx_in_function() -> bytes:
    """The custom operator inside a model-local function."""
    def build():
        from onnx import helper
        function = helper.make_function("local", "Innocent", ["a"], ["b"],
                                        [helper.make_node("ReadFile", ["a"], ["b"], domain="com.example", name="in_fn")],
                                        [helper.make_opsetid("", ONNX_OPSET), helper.make_opsetid("com.example", 1)])
        return _onnx_model([helper.make_node("Innocent", ["x"], ["y"], domain="local", name="call")], [function])
    return _hostile("onnx_in_function", build)


def onnx_in_subgraph() -> bytes:
    """The custom operator in an If branch."""
    def build():
        from onnx import TensorProto, helper
        branch = helper.make_graph([helper.make_node("ReadFile", ["x"], ["z"], domain="com.example", name="in_branch")],
                                   "branch", [], [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])])
        condition = helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True]))
        choice = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch, name="if")
        return _onnx_model([condition, choice])
    return _hostile("onnx_in_subgraph", build)


def onnx_sparse_external_data() -> bytes:
    """A sparse initializer whose values live in a server file."""
    def build():
        from onnx import TensorProto, helper
        values = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
        values.ClearField("float_data")
        values.data_location = TensorProto.EXTERNAL
        entry = values.external_data.add()
        entry.key, entry.value = "location", str(SECRET)
        indices = helper.make_tensor("w_indices", TensorProto.INT64, [1], [0])
        sparse = helper.make_sparse_tensor(values, indices, [2])
        return _onnx_model([helper.make_node("Add", ["x", "w"], ["y"])], sparse_initializers=[sparse])
    return _hostile("onnx_sparse_external_data", build)


def onnx_ort_format() -> bytes:
    """onnxruntime's own ORT format (a flatbuffer), which the protobuf checks cannot read."""
    def build():
        import onnxruntime

        from model_fixtures import onnx_mul
        with tempfile.TemporaryDirectory() as directory:
            target = os.path.join(directory, "model.ort")
            options = onnxruntime.SessionOptions()
            options.optimized_model_filepath = target
            options.add_session_config_entry("session.save_model_format", "ORT")
            onnxruntime.InferenceSession(onnx_mul(), options, providers=["CPUExecutionProvider"])
            return Path(target).read_bytes()
    return _hostile("onnx_ort_format", build)


# --------------------------------------------------------------------------
# TFLite
# --------------------------------------------------------------------------


def _tflite_reading_a_file(flex: bool) -> bytes:
    tf = _import_tf()

    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32)])
    def read(x):
        return tf.cast(tf.strings.length(tf.io.read_file(str(SECRET))), tf.float32) + x

    converter = tf.lite.TFLiteConverter.from_concrete_functions([read.get_concrete_function()], read)
    if flex:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    else:
        converter.allow_custom_ops = True
    return bytes(converter.convert())


def tflite_custom_op() -> bytes:
    return _hostile("tflite_custom_op", lambda: _tflite_reading_a_file(flex=False))


def tflite_flex_op() -> bytes:
    return _hostile("tflite_flex_op", lambda: _tflite_reading_a_file(flex=True))


TF_IO = (["x"], ["c"])
CASES = [
    ("torch_read_file", "TORCH", torch_read_file, "aten::from_file", None),
    ("torch_overwrite_file", "TORCH", torch_overwrite_file, "aten::from_file", None),
    ("torch_create_file", "TORCH", torch_create_file, "aten::save", None),
    ("torch_read_at_load", "TORCH", torch_read_at_load, "aten::from_file", None),
    ("torch_in_submodule", "TORCH", torch_in_submodule, "aten::from_file", None),
    ("torch_in_class_and_fork", "TORCH", torch_in_class_and_fork, "aten::from_file", None),
    ("torch_network", "TORCH", torch_network, "_c10d_functional::all_reduce", None),
    ("torch_custom_class", "TORCH", torch_custom_class, "torch.classes.dist_rpc.WorkerInfo", None),
    ("torch_duplicate_entry", "TORCH", torch_duplicate_entry, "twice", None),
    ("tf_generate_vocab_remapping", "TF", tf_generate_vocab_remapping, "GenerateVocabRemapping", TF_IO),
    ("tf_record_input", "TF", tf_record_input, "RecordInput", TF_IO),
    ("tf_fixed_unigram_sampler", "TF", tf_fixed_unigram_sampler, "FixedUnigramCandidateSampler", TF_IO),
    ("tf_skipgram", "TF", tf_skipgram, "Skipgram", TF_IO),
    ("tf_rpc_client", "TF", tf_rpc_client, "RpcClient", TF_IO),
    ("tf_write_file", "TF", tf_write_file, "WriteFile", TF_IO),
    ("tf_read_in_function_library", "TF", tf_read_in_function_library, "ReadFile", TF_IO),
    ("tf_function_attr_names_op", "TF", tf_function_attr_names_op, "ReadFile", TF_IO),
    ("tf_abort", "TF", tf_abort, "Abort", TF_IO),
    ("onnx_custom_domain", "ONNX", onnx_custom_domain, "com.example::ReadFile", None),
    ("onnx_in_function", "ONNX", onnx_in_function, "com.example::ReadFile", None),
    ("onnx_in_subgraph", "ONNX", onnx_in_subgraph, "com.example::ReadFile", None),
    ("onnx_sparse_external_data", "ONNX", onnx_sparse_external_data, "external data", None),
    ("onnx_ort_format", "ONNX", onnx_ort_format, "", None),
    ("tflite_custom_op", "TFLITE", tflite_custom_op, "Custom operator ReadFile", None),
    ("tflite_flex_op", "TFLITE", tflite_flex_op, "Custom operator FlexReadFile", None),
]

SCRIPTS = [
    (f'def f(x):\n    return torch.from_file("{SECRET}", False, 4, dtype=torch.uint8).float() + x\n', "aten::from_file"),
    (f'def f(x):\n    torch.save(x, "{CREATED}")\n    return x\n', "aten::save"),
    ('def f(x):\n    return torch.ops._c10d_functional.all_reduce(x, "sum", "0")\n', "_c10d_functional::all_reduce"),
    ('def f(x):\n    torch.classes.dist_rpc.WorkerInfo("w", 0)\n    return x\n', "torch.classes.dist_rpc.WorkerInfo"),
    (f'def helper(x):\n    return torch.from_file("{SECRET}", False, 4, dtype=torch.uint8).float() + x\n\n'
     'def f(x):\n    if bool(x.sum() > 0):\n        return helper(x)\n    return x\n', "aten::from_file"),
]


# --------------------------------------------------------------------------
# torch.export archives: what torch.export.load would unpickle, or an operator refused
# --------------------------------------------------------------------------


def _edited_export(edit) -> bytes:
    """model_fixtures.torch_exported with `edit(name, data) -> data` applied to its entries (a hostile
    archive is an ordinary one changed by hand)."""
    from model_fixtures import torch_exported

    genuine = zipfile.ZipFile(io.BytesIO(torch_exported()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as forged:
        for item in genuine.infolist():
            forged.writestr(item, edit(item.filename, genuine.read(item.filename)))
    return out.getvalue()


class _CreatesTheFile:
    def __reduce__(self):
        return (open, (str(CREATED), "w"))


def export_pickled_sample_inputs() -> bytes:
    """Sample inputs that the restricted unpickler refuses, so that torch.export.load unpickles them in
    full: creating a file (the server drops sample inputs unread)."""
    import pickle

    def edit(name, data):
        return pickle.dumps(_CreatesTheFile()) if "/data/sample_inputs/" in name else data
    return _hostile("export_pickled_sample_inputs", lambda: _edited_export(edit))


def export_pickled_weight() -> bytes:
    """A weight marked use_pickle: torch.export.load would torch.load it with weights_only=False."""
    import json

    def edit(name, data):
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            for payload in config["config"].values():
                payload["use_pickle"] = True
            return json.dumps(config).encode()
        return data
    return _hostile("export_pickled_weight", lambda: _edited_export(edit))


def export_refused_operator() -> bytes:
    """The program's relu renamed to aten::from_file by hand."""
    def edit(name, data):
        return data.replace(b"torch.ops.aten.relu.default", b"torch.ops.aten.from_file.default") \
            if name.endswith(".json") else data
    return _hostile("export_refused_operator", lambda: _edited_export(edit))


def export_network_operator() -> bytes:
    def edit(name, data):
        return data.replace(b"torch.ops.aten.relu.default", b"torch.ops._c10d_functional.all_reduce.default") \
            if name.endswith(".json") else data
    return _hostile("export_network_operator", lambda: _edited_export(edit))


def export_compiled_code() -> bytes:
    """An AOTInductor package's shared library inside the archive (native code: never loaded)."""
    def build():
        genuine = _edited_export(lambda name, data: data)
        archive = zipfile.ZipFile(io.BytesIO(genuine))
        root = archive.namelist()[0].split("/")[0]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as forged:
            for item in archive.infolist():
                forged.writestr(item, archive.read(item.filename))
            forged.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF")
        return out.getvalue()
    return _hostile("export_compiled_code", build)


CASES += [
    ("export_pickled_weight", "TORCH", export_pickled_weight, "is pickled", None),
    ("export_refused_operator", "TORCH", export_refused_operator, "aten::from_file", None),
    ("export_network_operator", "TORCH", export_network_operator, "_c10d_functional::all_reduce", None),
    ("export_compiled_code", "TORCH", export_compiled_code, "not served", None),
]
