"""The models, scripts and files the README, docs/ and examples' commands name, built with each framework's
current export path (small, random or fixed weights, nothing downloaded):

    python -m redisai.demo_models DIR [FILE ...]        # or: redisai demo-models DIR

then run the README's commands from DIR. Each file is built in this process from its framework's own API:

    graph.pb      TF2: tf.function -> convert_variables_to_constants_v2 (a frozen GraphDef)
    mul.tflite    TF2: tf.function -> tf.lite.TFLiteConverter.from_concrete_functions
    churn.pt      TorchScript: torch.jit.script -> torch.jit.save
    model.pt2     torch.export.export -> torch.export.save (a torch.export program, for the TORCH backend)
    model.onnx    PyTorch -> torch.onnx.export (the torch.export-based exporter; needs onnxscript)
    resnet.onnx   PyTorch -> torch.onnx.export, batch, height and width dynamic
    iris.onnx     scikit-learn -> skl2onnx.convert_sklearn (the `real` extra)
    score.py, script.py   TorchScript source for AI.SCRIPTSTORE; a.npy a numpy array for `redisai tensor set`

A file whose framework is not installed is skipped with the `pip install` that brings it; the exit status is
1 only when a build fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# The same as examples/feature_store_score.py, so `HGET {user:42} score` shows the README's 0.2242...
CHURN_WEIGHTS = ([0.02, -0.15, -0.002], 0.5)

# The README's feature-store script (examples/feature_store_score.py's SCRIPT), stored from score.py.
SCORE_SCRIPT = '''def score_user(tensors: List[Tensor], keys: List[str], args: List[str]):
    user, model = keys[0], keys[1]
    fields = redis.asList(redis.execute("HMGET", user, "age", "visits", "spend"))
    features = torch.tensor([[float(str(v)) for v in fields]])
    score = redisAI.model_execute(model, [features], 1)[0]
    redis.execute("HSET", user, "score", str(float(score.item())))
'''

# `redisai script store s script.py --entry-points f g`: two entry points with AI.SCRIPTEXECUTE's signature.
TWO_ENTRY_POINTS_SCRIPT = '''def f(tensors: List[Tensor], keys: List[str], args: List[str]):
    return tensors[0] + tensors[1]


def g(tensors: List[Tensor], keys: List[str], args: List[str]):
    return tensors[0] * float(args[0])
'''

SEED = 0


class BuildError(Exception):
    """A framework failed to build a demo file."""


@dataclass(frozen=True)
class Demo:
    name: str
    how: str          # what it is and how to run it, printed as it is written
    build: Callable[[], bytes]
    needs: tuple[str, ...]  # modules whose absence skips it
    install: str      # what brings them


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Else TF's import prints a notice about oneDNN's round-off on stderr; nothing here runs a TF kernel's math.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    return tf


def _mul_function(tf, shape):
    """c = a * b as a tf.function whose placeholders are named a and b and whose product node is c."""

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="a"), tf.TensorSpec(shape, tf.float32, name="b")])
    def mul(a, b):
        return tf.multiply(a, b, name="c")

    return mul


def build_graph_pb() -> bytes:
    tf = _quiet_tensorflow()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(_mul_function(tf, None).get_concrete_function())
    return frozen.graph.as_graph_def().SerializeToString(deterministic=True)


def build_mul_tflite() -> bytes:
    tf = _quiet_tensorflow()
    mul = _mul_function(tf, [2])
    # Passing the tf.function as the trackable keeps the inputs in the signature's order: a (0), b (1).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([mul.get_concrete_function()], mul)
    with _quiet_stdout():
        return bytes(converter.convert())


@contextlib.contextmanager
def _quiet_stdout():
    """The exporters print progress and warn about their own deprecations; the tool prints one line a file."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _torch():
    import torch

    torch.manual_seed(SEED)
    return torch


def _churn_module(torch):
    class Churn(torch.nn.Module):
        """features [N, 3] (age, visits, spend) -> probability of churn [N, 1]."""

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 1)
            with torch.no_grad():
                self.linear.weight.copy_(torch.tensor([CHURN_WEIGHTS[0]]))
                self.linear.bias.fill_(CHURN_WEIGHTS[1])

        def forward(self, x):
            return torch.sigmoid(self.linear(x))

    return Churn()


def build_churn_pt() -> bytes:
    torch = _torch()
    buffer = io.BytesIO()
    with _quiet_stdout():  # torch 2.13 marks torch.jit deprecated; TorchScript is still RedisAI's TORCH format
        torch.jit.save(torch.jit.script(_churn_module(torch)), buffer)
    return buffer.getvalue()


def _classifier(torch):
    """x [N, 4] -> class probabilities [N, 3]; the same weights every time (seeded)."""
    torch.manual_seed(SEED)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3),
                               torch.nn.Softmax(dim=1)).eval()


def build_model_pt2() -> bytes:
    torch = _torch()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with _quiet_stdout():
        program = torch.export.export(_classifier(torch), (torch.zeros(2, 4),), dynamic_shapes=({0: batch},))
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
    return buffer.getvalue()


def _tiny_resnet(torch):
    """A ResNet in miniature: stem, one residual block, global average pooling, 10 logits."""
    nn = torch.nn

    class TinyResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16),
                                      nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                       nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            h = self.stem(x)
            h = torch.relu(h + self.block(h))
            return self.head(h.mean(dim=(2, 3)))

    torch.manual_seed(SEED)
    return TinyResNet().eval()


def _onnx_export(torch, module, example, dynamic_shapes) -> bytes:
    """torch.onnx.export's current exporter (torch.export-based, the default since torch 2.9), which needs
    onnxscript; without it the TorchScript-based one (dynamo=False), which torch still ships but deprecates."""
    with _quiet_stdout():
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            print("  onnxscript is not installed (pip install 'redisai[torch]' brings it): "
                  "using torch.onnx.export(dynamo=False)", file=sys.stderr)
            dynamic_axes = {"x": {axis: f"d{axis}" for axis in dynamic_shapes[0]}, "y": {0: "d0"}}
            buffer = io.BytesIO()
            torch.onnx.export(module, example, buffer, input_names=["x"], output_names=["y"],
                              dynamic_axes=dynamic_axes, dynamo=False)
            return buffer.getvalue()
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" per operator
        program = torch.onnx.export(module, example, input_names=["x"], output_names=["y"],
                                    dynamic_shapes=dynamic_shapes, dynamo=True, verbose=False)
        return program.model_proto.SerializeToString()


def build_model_onnx() -> bytes:
    torch = _torch()
    batch = torch.export.Dim("batch", min=1, max=4096)
    return _onnx_export(torch, _classifier(torch), (torch.zeros(2, 4),), ({0: batch},))


def build_resnet_onnx() -> bytes:
    torch = _torch()
    dims = {0: torch.export.Dim("batch", min=1, max=4096), 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    return _onnx_export(torch, _tiny_resnet(torch), (torch.zeros(2, 3, 32, 32),), (dims,))


def build_iris_onnx() -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_iris(return_X_y=True)  # shipped inside scikit-learn, not downloaded
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, labels)
    # zipmap off: the probabilities as a tensor [N, 3] (a ZipMap gives a sequence of maps, which no tensor holds)
    with _quiet_stdout():
        model = convert_sklearn(pipeline, initial_types=[("x", FloatTensorType([None, 4]))],
                                options={LogisticRegression: {"zipmap": False}})
    return model.SerializeToString()


def build_a_npy() -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.float32).reshape(2, 3))
    return buffer.getvalue()


TF = ("tensorflow",)
TORCH = ("torch",)
DEMOS = (
    Demo("graph.pb", "TF frozen graph: inputs a, b (float, any shape) -> c = a * b", build_graph_pb, TF,
         "pip install 'redisai[tf]'"),
    Demo("mul.tflite", "TFLITE: inputs a, b float [2] -> a * b", build_mul_tflite, TF, "pip install 'redisai[tf]'"),
    Demo("churn.pt", "TORCH (TorchScript): features float [N, 3] -> churn probability [N, 1]", build_churn_pt,
         TORCH, "pip install 'redisai[torch]'"),
    Demo("model.pt2", "TORCH (torch.export program): x float [N, 4] -> probabilities [N, 3]", build_model_pt2,
         TORCH, "pip install 'redisai[torch]'"),
    Demo("model.onnx", "ONNX from PyTorch: x float [N, 4] -> probabilities [N, 3]", build_model_onnx, TORCH + ("onnx",),
         "pip install 'redisai[backends]'"),
    Demo("resnet.onnx", "ONNX from PyTorch: image float [N, 3, H, W] -> 10 logits [N, 10]", build_resnet_onnx,
         TORCH + ("onnx",), "pip install 'redisai[backends]'"),
    Demo("iris.onnx", "ONNX from scikit-learn: x float [N, 4] -> label int64 [N], probabilities [N, 3]",
         build_iris_onnx, ("sklearn", "skl2onnx"), "pip install 'redisai[real]'"),
    Demo("score.py", "script: score_user, the README's feature-store scoring", lambda: SCORE_SCRIPT.encode(), (), ""),
    Demo("script.py", "script: entry points f (a + b) and g (a * ARGS[0])", lambda: TWO_ENTRY_POINTS_SCRIPT.encode(),
         (), ""),
    Demo("a.npy", "numpy array float32 [2, 3] for `redisai tensor set`", build_a_npy, ("numpy",), ""),
)


def _missing(modules: Sequence[str]) -> str | None:
    import importlib.util

    return next((name for name in modules if importlib.util.find_spec(name) is None), None)


def build(directory: Path, names: Sequence[str] = ()) -> dict[str, str]:
    """Writes the demo files (all, or those named) into `directory`; returns name -> 'built' / why skipped."""
    unknown = sorted(set(names) - {demo.name for demo in DEMOS})
    if unknown:
        raise ValueError(f"unknown demo file {', '.join(unknown)} (known: {', '.join(d.name for d in DEMOS)})")
    directory.mkdir(parents=True, exist_ok=True)
    outcome = {}
    for demo in DEMOS:
        if names and demo.name not in names:
            continue
        missing = _missing(demo.needs)
        if missing:
            outcome[demo.name] = f"skipped: {missing} is not installed ({demo.install})"
            print(f"{demo.name:12} {outcome[demo.name]}", flush=True)
            continue
        started = time.monotonic()
        try:
            data = demo.build()
        except Exception as error:
            raise BuildError(f"{demo.name}: {type(error).__name__}: {error}") from error
        (directory / demo.name).write_bytes(data)
        outcome[demo.name] = "built"
        print(f"{demo.name:12} {len(data):>7} bytes  {time.monotonic() - started:4.1f} s  {demo.how}", flush=True)
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m redisai.demo_models",
                                     description="Writes the models and files the README's examples use into DIR.")
    parser.add_argument("directory", metavar="DIR", type=Path)
    parser.add_argument("names", metavar="FILE", nargs="*", help="only these (default: all)")
    options = parser.parse_args(argv)
    try:
        outcome = build(options.directory, options.names)
    except ValueError as error:
        parser.error(str(error))
    except BuildError as error:  # a framework that fails to build: which file and why, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 1
    built = sum(1 for what in outcome.values() if what == "built")
    print(f"{built} of {len(outcome)} files in {options.directory}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
