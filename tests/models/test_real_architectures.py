"""No false alarms: real architectures, built from their frameworks' own code with random weights (nothing
downloaded; bench/real_fixtures.py builds and caches them), pass the allow-lists and give the frameworks'
own results through AI.MODELSTORE and AI.MODELEXECUTE. Slow to build: `make test-long`."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import real_fixtures as rf  # noqa: E402

pytestmark = pytest.mark.long


def _bert_inputs():
    return list(rf.bert_inputs(batch=2))


def _image():
    return [rf.image(batch=1)]


def _sklearn_inputs():
    return [np.random.default_rng(1).normal(size=(5, rf.SKLEARN_FEATURES)).astype(np.float32)]


def _torch_image():
    return [np.random.default_rng(2).uniform(-1, 1, size=(1, 3, 224, 224)).astype(np.float32)]


def _reference(backend: str, blob: bytes, inputs, names):
    """The framework's own outputs for the same inputs, in this process."""
    if backend == "TORCH":
        import io

        import torch
        module = torch.jit.load(io.BytesIO(blob))
        with torch.no_grad():
            out = module(*[torch.from_numpy(x) for x in inputs])
        return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
    if backend == "ONNX":
        import onnxruntime
        session = onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])
        return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})
    if backend == "TF":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        graph_def = tf.compat.v1.GraphDef.FromString(blob)
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run([f"{n}:0" for n in names[1]], {f"{n}:0": x for n, x in zip(names[0], inputs)})
    from ai_edge_litert import interpreter as litert
    interpreter = litert.Interpreter(model_content=blob)
    interpreter.allocate_tensors()
    for detail, x in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


TF_NAMES = (["input"], ["Identity"])
ARCHITECTURES = [
    ("bert_torchscript", "TORCH", rf.bert_torchscript, _bert_inputs, None),
    ("bert_onnx", "ONNX", rf.bert_onnx, _bert_inputs, None),
    ("mobilenet_v2_tf", "TF", rf.mobilenet_tf, _image, TF_NAMES),
    ("mobilenet_v2_tflite", "TFLITE", rf.mobilenet_tflite, _image, None),
    ("resnet50_tf", "TF", rf.resnet50_tf, _image, TF_NAMES),
    ("resnet50_tflite", "TFLITE", rf.resnet50_tflite, _image, None),
    ("torch_nn_resnet", "TORCH", rf.torch_resnet, _torch_image, None),
    ("sklearn_pipeline_onnx", "ONNX", rf.sklearn_onnx, _sklearn_inputs, None),
]


@pytest.mark.parametrize("name,backend,build,make_inputs,names", ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def test_real_architecture_passes_and_matches_its_framework(r, name, backend, build, make_inputs, names):
    blob, inputs = build(), make_inputs()
    io_names = ["INPUTS", len(names[0]), *names[0], "OUTPUTS", len(names[1]), *names[1]] if names else []
    assert r.execute_command("AI.MODELSTORE", name, backend, "CPU", *io_names, "BLOB", blob) == b"OK"
    expected = _reference(backend, blob, inputs, names)
    input_keys = [f"{name}_in{i}" for i in range(len(inputs))]
    output_keys = [f"{name}_out{i}" for i in range(len(expected))]
    for key, array in zip(input_keys, inputs):
        dtype = {np.float32: "FLOAT", np.int64: "INT64"}[array.dtype.type]
        r.execute_command("AI.TENSORSET", key, dtype, *array.shape, "BLOB", array.tobytes())
    r.execute_command("AI.MODELEXECUTE", name, "INPUTS", len(input_keys), *input_keys,
                      "OUTPUTS", len(output_keys), *output_keys)
    for key, want in zip(output_keys, expected):
        meta = r.execute_command("AI.TENSORGET", key, "META", "BLOB")
        dtype = {b"FLOAT": np.float32, b"INT64": np.int64}[meta[1]]
        got = np.frombuffer(meta[5], dtype).reshape(meta[3])
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-4)
