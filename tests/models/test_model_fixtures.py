"""Checks that each model in model_fixtures builds, loads, and (where cheap) computes."""

import io

import numpy as np
import pytest

import model_fixtures as mf

# torch 2.13 flags torch.jit (TorchScript, which RedisAI loads) as deprecated.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:DeprecationWarning")


def _blob(fn, *args):
    blob = fn(*args)
    assert isinstance(blob, bytes) and blob
    # A second call comes from the cache and is byte-identical.
    assert fn(*args) == blob
    return blob


# --------------------------------------------------------------------------
# cache


def test_cache_builds_once_and_reads_back(tmp_path, monkeypatch):
    monkeypatch.setattr(mf, "CACHE_DIR", tmp_path / "cache")
    calls = []

    def build():
        calls.append(1)
        return b"model-bytes"

    assert mf._cached("thing", build) == b"model-bytes"
    assert mf._cached("thing", build) == b"model-bytes"
    assert calls == [1]
    files = list((tmp_path / "cache").iterdir())
    assert [f.read_bytes() for f in files] == [b"model-bytes"]  # no temp files left


def test_cache_first_writer_wins(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(mf, "CACHE_DIR", cache)

    def build():
        # Another process finishes the same model while this one builds.
        cache.mkdir()
        (cache / f"race.v{mf._CACHE_VERSION}.bin").write_bytes(b"theirs")
        return b"mine"

    assert mf._cached("race", build) == b"theirs"
    assert [f.name for f in cache.iterdir()] == [f"race.v{mf._CACHE_VERSION}.bin"]


def test_cache_rejects_empty_build(tmp_path, monkeypatch):
    monkeypatch.setattr(mf, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(RuntimeError):
        mf._cached("empty", lambda: b"")


# --------------------------------------------------------------------------
# TensorFlow


def _tf_graph(blob):
    tf = mf._import_tf()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(blob)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return tf, graph_def, graph


def test_tf_mul_graph():
    tf, _, graph = _tf_graph(_blob(mf.tf_mul_graph))
    assert graph.get_operation_by_name("c").type == "Mul"
    with tf.compat.v1.Session(graph=graph) as session:
        out = session.run("c:0", {"a:0": [2.0, 3.0], "b:0": [3.0, 5.0]})
        np.testing.assert_array_equal(out, np.array([6.0, 15.0], np.float32))
        # Any rank works.
        out = session.run("c:0", {"a:0": [[1.0, 2.0], [3.0, 4.0]], "b:0": [[2.0, 2.0], [2.0, 2.0]]})
        np.testing.assert_array_equal(out, np.array([[2.0, 4.0], [6.0, 8.0]], np.float32))


def test_tf_slow_graph_loads():
    _, _, graph = _tf_graph(_blob(mf.tf_slow_graph))
    assert graph.get_operation_by_name("a").type == "Placeholder"
    assert graph.get_operation_by_name("c").outputs[0].dtype.name == "float32"


def test_tf_file_ops_graph():
    tf, graph_def, _ = _tf_graph(_blob(mf.tf_file_ops_graph))
    nodes = {node.name: node for node in graph_def.node}
    assert nodes["path"].op == "Placeholder"
    assert nodes["path"].attr["dtype"].type == tf.string.as_datatype_enum
    assert nodes["c"].op == "ReadFile"
    assert list(nodes["c"].input) == ["path"]


# --------------------------------------------------------------------------
# ONNX


def _ort_session(blob):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])


def _io_names(session):
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]


def test_onnx_mul():
    session = _ort_session(_blob(mf.onnx_mul))
    assert _io_names(session) == (["a", "b"], ["c"])
    a = np.array([2, 3], np.float32)
    b = np.array([3, 5], np.float32)
    (out,) = session.run(["c"], {"a": a, "b": b})
    np.testing.assert_array_equal(out, np.array([6, 15], np.float32))
    (out,) = session.run(["c"], {"a": np.arange(5, dtype=np.float32), "b": np.full(5, 2, np.float32)})
    np.testing.assert_array_equal(out, np.arange(5, dtype=np.float32) * 2)


@pytest.mark.parametrize("symbolic", [True, False])
def test_onnx_mlp(symbolic):
    session = _ort_session(_blob(mf.onnx_mlp, symbolic))
    assert _io_names(session) == (["x"], ["y"])
    batch = 5 if symbolic else 1
    x = np.random.default_rng(1).standard_normal((batch, 4)).astype(np.float32)
    (out,) = session.run(["y"], {"x": x})
    assert out.shape == (batch, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, mf.onnx_mlp_reference(x), rtol=1e-5, atol=1e-5)


def test_onnx_mlp_variants_differ():
    assert mf.onnx_mlp(True) != mf.onnx_mlp(False)


def test_onnx_slow_loads():
    session = _ort_session(_blob(mf.onnx_slow))
    assert _io_names(session) == (["x"], ["y"])


def test_onnx_loop_forever_loads():
    import onnx

    blob = _blob(mf.onnx_loop_forever)
    model = onnx.load_from_string(blob)
    trip = next(t for t in model.graph.initializer if t.name == "trip_count")
    assert onnx.numpy_helper.to_array(trip) == 2**62
    session = _ort_session(blob)
    assert _io_names(session) == (["x"], ["y"])


# --------------------------------------------------------------------------
# TorchScript


def _torch_load(blob):
    import torch

    return torch, torch.jit.load(io.BytesIO(blob))


def test_torch_add_mul():
    torch, module = _torch_load(_blob(mf.torch_add_mul))
    out = module(torch.tensor([2.0, 3.0]), torch.tensor([3.0, 5.0]))
    assert out.tolist() == [8.0, 18.0]


def test_torch_two_outputs():
    torch, module = _torch_load(_blob(mf.torch_two_outputs))
    doubled, incremented = module(torch.tensor([1.0, 2.0]))
    assert doubled.tolist() == [2.0, 4.0]
    assert incremented.tolist() == [2.0, 3.0]


def test_torch_slow_loads():
    _, module = _torch_load(_blob(mf.torch_slow))
    assert module.iterations == mf.TORCH_SLOW_ITERATIONS


# --------------------------------------------------------------------------
# TFLite


def test_tflite_mul():
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=_blob(mf.tflite_mul))
    interpreter.allocate_tensors()
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    assert [d["name"] for d in inputs] == ["a", "b"]
    assert [d["name"] for d in outputs] == ["c"]
    interpreter.set_tensor(inputs[0]["index"], np.array([2, 3], np.float32))
    interpreter.set_tensor(inputs[1]["index"], np.array([3, 5], np.float32))
    interpreter.invoke()
    np.testing.assert_array_equal(interpreter.get_tensor(outputs[0]["index"]), np.array([6, 15], np.float32))
