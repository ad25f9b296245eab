"""Real architectures for the benchmarks, built with their frameworks from their own model zoos with random
weights (nothing is downloaded), cached under bench/.cache/ like tests/model_fixtures.py caches its models:
the first call builds and writes the file (temporary name, then a hard link, so concurrent builders never
see a torn file), later calls only read it.

    bert_torchscript()   BERT, 4 layers, hidden 256, 4 heads, intermediate 1024 (BERT-mini's shape),
    bert_exported()      the same BERT as a torch.export program (batch dynamic),
    bert_onnx()          transformers' BertModel from a BertConfig, eager attention, seq 64:
                         inputs input_ids, attention_mask (int64 [N, 64]) -> outputs
                         last_hidden_state (float [N, 64, 256]), pooler_output (float [N, 256]);
                         TorchScript by torch.jit.trace, ONNX by torch.onnx.export (opset 17, dim 0 dynamic)
    mobilenet_tf()       keras.applications.MobileNetV2(weights=None), 224x224x3 -> 1000: a frozen GraphDef
                         (convert_variables_to_constants_v2), input "input" (float [N, 224, 224, 3]),
                         output "Identity"
    mobilenet_tflite()   the same Keras model converted by TFLiteConverter (float32, input [1, 224, 224, 3])
    resnet50_tf()        keras.applications.ResNet50(weights=None), frozen as mobilenet_tf (input "input")
    resnet50_tflite()    the same converted as mobilenet_tflite
    torch_resnet()       a ResNet-18-shaped network written with torch.nn blocks (torchvision does not import
                         beside the CPU torch), scripted: input x (float [N, 3, 224, 224]) -> [N, 1000]
    sklearn_onnx()       a scikit-learn pipeline (StandardScaler, PCA, LogisticRegression) by skl2onnx,
                         zipmap off: input X (float [N, 8]) -> label (int64 [N]), probabilities (float [N, 3])

`python bench/real_fixtures.py` builds whatever is missing (bench/real_models.py runs it in a child process,
so that the benchmark process itself imports none of the frameworks).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
_CACHE_VERSION = 1  # bump when a builder changes

SEQ = 64
BERT = dict(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
            max_position_embeddings=512)
IMAGE = (224, 224, 3)


def path(name: str) -> Path:
    return CACHE_DIR / f"{name}.v{_CACHE_VERSION}.bin"


def _cached(name: str, build: Callable[[], bytes]) -> bytes:
    # tests/ holds the cache helper; this file also runs alone (bench/real_models.py's child process,
    # tests/models/test_real_architectures.py), where bench/common.py has not put tests/ on the path.
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import model_fixtures

    return model_fixtures._cached(name, build, CACHE_DIR, _CACHE_VERSION)


def _bert_module():
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(**BERT, attn_implementation="eager")
    model = BertModel(config).eval()

    class Bert(torch.nn.Module):
        """BertModel's forward with positional tensors in and a tuple out, as TorchScript and RedisAI want."""

        def __init__(self):
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)
            return out[0], out[1]

    return Bert().eval()


def bert_inputs(batch: int = 1, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, BERT["vocab_size"], size=(batch, SEQ), dtype=np.int64)
    mask = np.ones((batch, SEQ), np.int64)
    mask[:, SEQ - 8:] = 0  # some padding, as a real batch of sentences has
    return ids, mask


def bert_torchscript() -> bytes:
    def build() -> bytes:
        import io

        import torch

        module = _bert_module()
        ids, mask = (torch.from_numpy(x) for x in bert_inputs())
        with torch.no_grad():
            traced = torch.jit.trace(module, (ids, mask), strict=False, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        return buffer.getvalue()

    return _cached("bert_torchscript", build)


def bert_exported() -> bytes:
    """The same BERT as a torch.export program (torch.export.save), batch dimension dynamic."""
    def build() -> bytes:
        import io

        import torch

        module = _bert_module()
        ids, mask = (torch.from_numpy(x) for x in bert_inputs(batch=2))  # batch 1 would be specialised
        batch = torch.export.Dim("batch", min=1, max=64)
        with torch.no_grad():
            program = torch.export.export(module, (ids, mask),
                                          dynamic_shapes={"input_ids": {0: batch}, "attention_mask": {0: batch}})
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        return buffer.getvalue()

    return _cached("bert_exported", build)


def bert_onnx() -> bytes:
    def build() -> bytes:
        import torch

        module = _bert_module()
        ids, mask = (torch.from_numpy(x) for x in bert_inputs())
        with tempfile.TemporaryDirectory() as directory:
            out = os.path.join(directory, "bert.onnx")
            with torch.no_grad():
                torch.onnx.export(module, (ids, mask), out, dynamo=False, opset_version=17,
                                  input_names=["input_ids", "attention_mask"],
                                  output_names=["last_hidden_state", "pooler_output"],
                                  dynamic_axes={"input_ids": {0: "batch"}, "attention_mask": {0: "batch"},
                                                "last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}})
            return Path(out).read_bytes()

    return _cached("bert_onnx", build)


def _mobilenet():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.applications.MobileNetV2(weights=None, input_shape=IMAGE)
    return tf, model


def mobilenet_tf() -> bytes:
    def build() -> bytes:
        tf, model = _mobilenet()
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        function = tf.function(lambda x: model(x, training=False))
        concrete = function.get_concrete_function(tf.TensorSpec([None, *IMAGE], tf.float32, name="input"))
        frozen = convert_variables_to_constants_v2(concrete)
        graph_def = frozen.graph.as_graph_def()
        names = {node.name for node in graph_def.node}
        assert "input" in names and "Identity" in names, sorted(names)[:20]
        return graph_def.SerializeToString()

    return _cached("mobilenet_tf", build)


def mobilenet_tflite() -> bytes:
    def build() -> bytes:
        tf, model = _mobilenet()
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        # From the frozen function: converting the Keras 3 model's own concrete function leaves every
        # weight buffer empty (the model answers NaN).
        function = tf.function(lambda x: model(x, training=False))
        concrete = function.get_concrete_function(tf.TensorSpec([1, *IMAGE], tf.float32, name="input"))
        frozen = convert_variables_to_constants_v2(concrete)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        return bytes(converter.convert())

    return _cached("mobilenet_tflite", build)


def _keras_frozen(architecture, batch):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    tf.keras.utils.set_random_seed(0)
    model = getattr(tf.keras.applications, architecture)(weights=None, input_shape=IMAGE)
    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec([batch, *IMAGE], tf.float32, name="input"))
    return tf, convert_variables_to_constants_v2(concrete)


def resnet50_tf() -> bytes:
    return _cached("resnet50_tf", lambda: _keras_frozen("ResNet50", None)[1].graph.as_graph_def().SerializeToString())


def resnet50_tflite() -> bytes:
    def build() -> bytes:
        tf, frozen = _keras_frozen("ResNet50", 1)
        return bytes(tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert())

    return _cached("resnet50_tflite", build)


def torch_resnet() -> bytes:
    def build() -> bytes:
        import io

        import torch
        from torch import nn

        class Block(nn.Module):
            def __init__(self, inputs: int, outputs: int, stride: int):
                super().__init__()
                self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(outputs)
                self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(outputs)
                self.shortcut = nn.Sequential()
                if stride != 1 or inputs != outputs:
                    self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False),
                                                  nn.BatchNorm2d(outputs))

            def forward(self, x):
                y = torch.relu(self.bn1(self.conv1(x)))
                return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))

        class ResNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                          nn.MaxPool2d(3, 2, 1))
                widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
                self.layers = nn.Sequential(*[nn.Sequential(Block(i, o, s), Block(o, o, 1)) for i, o, s in widths])
                self.pool = nn.AdaptiveAvgPool2d(1)
                self.fc = nn.Linear(512, 1000)

            def forward(self, x):
                return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))

        torch.manual_seed(0)
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.script(ResNet().eval()), buffer)
        return buffer.getvalue()

    return _cached("torch_resnet", build)


SKLEARN_FEATURES = 8


def sklearn_onnx() -> bytes:
    def build() -> bytes:
        import numpy as np
        from skl2onnx import to_onnx
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        rng = np.random.default_rng(0)
        features = rng.normal(size=(300, SKLEARN_FEATURES)).astype(np.float32)
        labels = (features[:, 0] > 0).astype(np.int64) + (features[:, 1] > 1)
        pipeline = make_pipeline(StandardScaler(), PCA(4), LogisticRegression()).fit(features, labels)
        return to_onnx(pipeline, features[:1], options={"zipmap": False}, target_opset=17).SerializeToString()

    return _cached("sklearn_onnx", build)


def image(batch: int = 1, seed: int = 0):
    import numpy as np

    return np.random.default_rng(seed).uniform(-1, 1, size=(batch, *IMAGE)).astype(np.float32)


BUILDERS = {"bert_torchscript": bert_torchscript, "bert_exported": bert_exported, "bert_onnx": bert_onnx,
            "mobilenet_tf": mobilenet_tf, "mobilenet_tflite": mobilenet_tflite}
# Built only for the false-alarm test of the allow-lists (tests/models/test_real_architectures.py).
MORE_BUILDERS = {"resnet50_tf": resnet50_tf, "resnet50_tflite": resnet50_tflite, "torch_resnet": torch_resnet,
                 "sklearn_onnx": sklearn_onnx}


def missing() -> list[str]:
    return [name for name in BUILDERS if not path(name).exists()]


if __name__ == "__main__":
    for name in sys.argv[1:] or missing():
        blob = {**BUILDERS, **MORE_BUILDERS}[name]()
        print(f"{name}: {len(blob):,} bytes at {path(name)}", flush=True)
