"""The backends' allow-lists, in this process (no server): what they refuse, what they accept, how they
were derived, and that the hostile corpus is hostile when nothing checks it."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hostile_fixtures as hf
import model_fixtures as mf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from redisai.backends import BackendError  # noqa: E402
from redisai.backends.base import Device, Options  # noqa: E402

CPU = Device("CPU", None)


@pytest.fixture(scope="module", autouse=True)
def targets():
    hf.ensure_target_files()
    yield
    assert hf.untouched()


# ---------------------------------------------------------------- TorchScript

def test_torch_refused_operators_are_derived_from_the_schemas():
    from redisai.backends import torch_ops

    refused = torch_ops.refused_operators()
    assert {"aten::from_file", "aten::save", "prim::PythonOp", "prim::rpc_async"} <= refused
    assert not any(name.startswith(("aten::add", "aten::matmul", "aten::linear")) for name in refused)


@pytest.mark.parametrize("build,expected", [
    (hf.torch_read_file, "aten::from_file"), (hf.torch_create_file, "aten::save"),
    (hf.torch_in_submodule, "aten::from_file"), (hf.torch_in_class_and_fork, "aten::from_file"),
    (hf.torch_network, "_c10d_functional::all_reduce"), (hf.torch_custom_class, "dist_rpc.WorkerInfo"),
])
def test_torch_compiled_check_alone_refuses_what_the_archive_check_does(build, expected):
    """Both halves refuse: the check of the compiled functions does not rely on the source check."""
    import torch

    from redisai.backends import torch_ops

    unit = torch._C.CompilationUnit()
    compiled = torch._C.import_ir_module_from_buffer(unit, build(), torch.device("cpu"), {}, False)
    with pytest.raises(BackendError, match=expected):
        torch_ops.check_compiled(unit, "model", compiled._type().qualified_name())


def test_torch_refusal_names_the_method():
    from redisai.backends import torch_ops

    with pytest.raises(BackendError, match=r"^Operator aten::from_file is not allowed in a model \(method forward\)$"):
        torch_ops.check_archive(hf.torch_read_file())
    with pytest.raises(BackendError, match=r"\(method __setstate__\)$"):
        torch_ops.check_archive(hf.torch_read_at_load())


def test_torch_archives_that_zipfile_and_torch_could_read_differently_are_refused():
    from redisai.backends import torch_ops

    with pytest.raises(BackendError, match="twice"):
        torch_ops.check_archive(hf.torch_duplicate_entry())
    with pytest.raises(BackendError, match="flatbuffer"):
        torch_ops.check_archive(b"\x00\x00\x00\x00PTMF" + b"\x00" * 32)
    with pytest.raises(BackendError, match="failed finding central directory"):
        torch_ops.check_archive(b"not a zip at all")


def test_unchecked_torch_would_read_the_secret():
    """The corpus is real: torch.jit.load alone runs the load-time read, and forward returns the bytes."""
    import torch

    loaded = torch.jit.load(io.BytesIO(hf.torch_read_at_load()))
    assert loaded.n == hf.SECRET_TEXT[0]
    leaked = torch.jit.load(io.BytesIO(hf.torch_read_file()))(torch.zeros(1))
    assert bytes(leaked.to(torch.uint8).tolist()) == hf.SECRET_TEXT[:64]


def test_torch_fixtures_and_quantized_layers_pass():
    import torch

    from redisai.backends import torch as torch_backend

    for blob in (mf.torch_add_mul(), mf.torch_two_outputs(), mf.torch_slow(), mf.torch_empty_output()):
        torch_backend.BACKEND.load(blob, CPU, [], [], Options())
    layers = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.LSTM(4, 4))
    quantized = torch.ao.quantization.quantize_dynamic(layers, {torch.nn.Linear, torch.nn.LSTM}, dtype=torch.qint8)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(quantized[:2]), buffer)
    torch_backend.BACKEND.load(buffer.getvalue(), CPU, [], [], Options())


# ---------------------------------------------------------------- TensorFlow

def test_tf_allow_list_is_what_the_derivation_gives_for_this_tensorflow():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "allowlists.py"), "--check"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tf_allow_list_holds_no_operation_that_names_a_file_or_address():
    sys.path.insert(0, str(ROOT / "tools"))
    import allowlists

    from redisai.backends.tf_ops import ALLOWED_OPS

    registry = allowlists.registry()
    assert ALLOWED_OPS <= set(registry)
    assert not [op for op in ALLOWED_OPS if allowlists.reaches_out(registry[op])]
    for op in ("ReadFile", "WriteFile", "MatchingFiles", "GenerateVocabRemapping", "RecordInput", "Skipgram",
               "FixedUnigramCandidateSampler", "RpcClient", "RpcServer", "PyFunc", "EagerPyFunc", "SaveV2",
               "RestoreV2", "ImmutableConst", "PrintV2", "Abort", "RemoteCall", "InitializeTableFromTextFileV2",
               "DecodeProtoV2", "TFRecordDatasetV2", "VarHandleOp"):
        assert op not in ALLOWED_OPS, op


def test_tf_allow_list_keeps_what_exports_hold_and_drops_training_and_rewrite_families():
    sys.path.insert(0, str(ROOT / "tools"))
    import allowlists

    from redisai.backends.tf_ops import ALLOWED_OPS

    measured = {op for ops in allowlists.MEASURED.values() for op in ops}
    assert measured <= ALLOWED_OPS
    assert {"Conv2DBackpropInput", "Conv3DBackpropInputV2", "FusedBatchNormV3", "StopGradient", "TensorListGetItem",
            "While", "StatelessWhile", "Enter", "HashTableV2", "LookupTableImportV2", "DecodeJpeg"} <= ALLOWED_OPS
    for op in ("LRNGrad", "MaxPoolGrad", "Conv2DBackpropFilter", "FusedBatchNormGradV3", "SymbolicGradient",
               "BroadcastGradientArgs", "FusedPadConv2D", "FusedResizeAndPadConv2D", "QuantizedConv2D", "Requantize",
               "MutableHashTableV2", "MutableDenseHashTableV2", "AnonymousMutableHashTable", "LookupTableInsertV2",
               "LookupTableRemoveV2", "AddSparseToTensorsMap", "Empty", "ParseTensor", "DecodeCompressed",
               "RefEnter", "TensorArrayV2", "TopK", "L2Loss", "TensorScatterUpdate", "ConjugateTranspose"):
        assert op not in ALLOWED_OPS, op
    assert set(allowlists.ABORTS).isdisjoint(ALLOWED_OPS)


def test_tf_string_copies_are_refused_or_bounded():
    """tf_strings.check on graphs made in this process: a repeat of a long string is refused, a repeat of a
    short constant passes, a join of inputs that may broadcast is refused, a concatenation of n counts n."""
    import tensorflow as tf

    from redisai.backends import tf_strings

    def graph(body):
        g = tf.Graph()
        with g.as_default():
            body(tf.compat.v1.placeholder(tf.string, shape=None, name="s"))
        return g.as_graph_def()

    with pytest.raises(BackendError, match="Operation Tile .* repeats its input"):
        tf_strings.check(graph(lambda s: tf.tile(s, [1000])), ["s"])
    with pytest.raises(BackendError, match="Operation Fill"):
        tf_strings.check(graph(lambda s: tf.fill([1000], "x" * 30)), ["s"])
    assert tf_strings.check(graph(lambda s: tf.fill([1000], "short label")), ["s"]).factor == 2
    with pytest.raises(BackendError, match="Operation StringJoin .* more than one input"):
        tf_strings.check(graph(lambda s: tf.strings.join([s, s])), ["s"])
    assert tf_strings.check(graph(lambda s: tf.strings.join(["[CLS]", s])), ["s"]).factor == 2 + 2
    copies = tf_strings.check(graph(lambda s: tf.concat([s, s, s], 0)), ["s"])
    assert copies.factor == 3 + 2
    assert copies.fit([np.array([b"x" * 100], dtype=object)], 10_000)
    assert not copies.fit([np.array([b"x" * 1000], dtype=object)], 1_000)


def test_tf_constants_count_the_repeated_last_value():
    import tensorflow as tf

    from redisai.backends import tf as tf_backend

    strings = tf.compat.v1.make_tensor_proto(["x" * 1000], dtype=tf.string)
    strings.tensor_shape.dim[0].size = 4_000_000
    allocated, heap = tf_backend.constant_bytes(strings)
    assert allocated == 4_000_000 * 24 and heap == 4_000_000 * 1001
    floats = tf.compat.v1.make_tensor_proto([1.0], dtype=tf.float32)
    floats.tensor_shape.dim[0].size = 10**9
    assert tf_backend.constant_bytes(floats) == (4 * 10**9, 0)


def test_tf_fixtures_pass():
    from redisai.backends import tf

    for blob, names in ((mf.tf_mul_graph(), (["a", "b"], ["c"])), (mf.tf_slow_graph(), (["a"], ["c"])),
                        (mf.tf_string_identity(), (["s"], ["t"])), (mf.tf_reshape_sum(), (["x"], ["y"]))):
        tf.BACKEND.load(blob, CPU, *names, Options())


# ---------------------------------------------------------------- ONNX and TFLite

def test_onnx_and_tflite_fixtures_pass():
    from redisai.backends import onnx, tflite

    for blob in (mf.onnx_mul(), mf.onnx_mlp(), mf.onnx_slow(), mf.onnx_loop_forever(), mf.onnx_zipmap_classifier()):
        onnx.check_model(blob)
    model = tflite.BACKEND.load(mf.tflite_mul(), CPU, [], [], Options())
    a, b = np.array([2, 3], np.float32), np.array([4, 5], np.float32)
    assert model.run([a, b])[0].tolist() == [8, 15]


def test_tflite_dynamic_tensor_is_found_and_a_static_model_has_none():
    from redisai.backends import tflite

    import hostile_tf_fixtures as ht

    assert "FILL" in tflite.dynamic_tensor(ht.tflite_dynamic_fill(), [(1,)])
    assert tflite.dynamic_tensor(mf.tflite_mul(), [(2,), (2,)]) is None


def test_tflite_garbage_is_not_a_model():
    from redisai.backends import tflite

    for blob in (b"", b"garbage" * 10, b"\xff" * 64):
        with pytest.raises(BackendError, match="not a valid Flatbuffer"):
            tflite.check_model(blob)


def test_torch_source_that_unpacks_past_the_cap_is_refused_unread():
    """A zip bomb in the code folder: refused from its declared size, never decompressed."""
    import zipfile

    from redisai.backends import torch_ops

    genuine = zipfile.ZipFile(io.BytesIO(mf.torch_add_mul()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as forged:
        for item in genuine.infolist():
            forged.writestr(item.filename, genuine.read(item.filename))
        forged.writestr("archive/code/__torch__/bomb.py", b"#" * (torch_ops.MAX_SOURCE_BYTES + 1))
    with pytest.raises(BackendError, match="too large to check"):
        torch_ops.check_archive(out.getvalue())


def test_export_program_check_alone_refuses_what_the_archive_check_does():
    """The check of the program torch built does not rely on the JSON check."""
    import torch

    from redisai.backends import torch_ops

    archive = torch_ops.exported_program_archive(hf.export_refused_operator())
    with pytest.raises(BackendError, match="aten::from_file"):
        torch_ops.check_exported_archive(archive)
    genuine = torch_ops.check_exported_archive(torch_ops.exported_program_archive(mf.torch_exported()))
    torch_ops.check_exported_program(torch.export.load(io.BytesIO(genuine)))
    program = torch.export.load(io.BytesIO(genuine))
    node = next(n for n in program.graph_module.graph.nodes if n.target is torch.ops.aten.relu.default)
    node.target = torch.ops.aten.from_file.default  # as a graph torch built from a forged archive would hold
    with pytest.raises(BackendError, match="aten::from_file"):
        torch_ops.check_exported_program(program)
