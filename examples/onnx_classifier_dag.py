"""Classify a batch of raw feature rows with ONE AI.DAGEXECUTE: TorchScript pre-processing + ONNX model.

What it shows
-------------
1. Building a small ONNX classifier in-process with ``onnx.helper`` (no downloads): input ``x`` float
   [N, 4] -> Gemm -> Softmax -> ``probs`` float [N, 3]. The weights come from a seeded RNG, so every run
   predicts the same thing: they make a nearest-centroid classifier (logit_k = z . c_k - |c_k|^2 / 2).
2. Storing it with ``AI.MODELSTORE <key> ONNX CPU BLOB <bytes>``.
3. Storing a TorchScript pre-processing script with ``AI.SCRIPTSTORE``; its entry point
   ``standardize(tensors, keys, args)`` computes ``(x - mean) / std`` where mean and std arrive as ARGS.
4. Running the whole pipeline server-side in a single round trip::

       AI.DAGEXECUTE PERSIST 1 {clf}probs
         |> AI.TENSORSET {clf}raw FLOAT N 4 BLOB <raw rows>
         |> AI.SCRIPTEXECUTE {clf}prep standardize INPUTS 1 {clf}raw ARGS 8 <mean..> <std..> OUTPUTS 1 {clf}z
         |> AI.MODELEXECUTE {clf}model INPUTS 1 {clf}z OUTPUTS 1 {clf}probs
         |> AI.TENSORGET {clf}probs BLOB

   ``{clf}raw`` and ``{clf}z`` live only inside the DAG; ``{clf}probs`` is also PERSISTed to the keyspace.
5. Checking the probabilities against the same pipeline computed locally with numpy (within 1e-5).

Every key carries the ``{clf}`` hash tag, so all of them map to one slot and the example would also work
against a cluster node that owns that slot.

How to run
----------
In one terminal start the server with the module::

    make run

and in another::

    .venv/bin/python examples/onnx_classifier_dag.py            # --host / --port to point elsewhere

Only redis-py, numpy and onnx are needed on the client side.
"""

from __future__ import annotations

import argparse

import numpy as np
import redis

N_FEATURES = 4
N_CLASSES = 3
N_ROWS = 12
SEED = 7
TOLERANCE = 1e-5

MODEL_KEY = "{clf}model"
SCRIPT_KEY = "{clf}prep"
RAW = "{clf}raw"            # DAG-local
STANDARDIZED = "{clf}z"     # DAG-local
PROBS_KEY = "{clf}probs"    # DAG-local, persisted

# Raw feature scale (e.g. sensor units); the script removes it before the model sees the data.
FEATURE_MEAN = np.array([5.8, 3.0, 3.7, 1.2], dtype=np.float32)
FEATURE_STD = np.array([0.8, 0.4, 1.8, 0.75], dtype=np.float32)

PREPROCESS_SOURCE = """
def standardize(tensors: List[Tensor], keys: List[str], args: List[str]):
    x = tensors[0]
    n = x.size(1)
    mean = torch.tensor([float(a) for a in args[0:n]], dtype=x.dtype)
    std = torch.tensor([float(a) for a in args[n:2 * n]], dtype=x.dtype)
    return (x - mean) / std
"""


def class_centroids(seed: int = SEED) -> np.ndarray:
    """Three well separated class centroids in standardized feature space, shape [3, 4]."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.5, size=(N_CLASSES, N_FEATURES)).astype(np.float32)


def classifier_weights(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Gemm weights of a nearest-centroid classifier: W [4, 3], b [3]."""
    centroids = class_centroids(seed)
    weights = centroids.T.copy()
    bias = (-0.5 * (centroids ** 2).sum(axis=1)).astype(np.float32)
    return weights, bias


def build_onnx_classifier(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """x float [N, 4] -> Gemm(W, b) -> Softmax(axis=1) -> probs float [N, 3], serialized ONNX bytes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", N_FEATURES])
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", N_CLASSES])
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=1)],
        "centroid_classifier",
        [x],
        [probs],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    # Pin a widely supported opset / IR version so any recent ONNXRuntime accepts it.
    model = helper.make_model(graph, producer_name="redisai-example", opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_batch(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """N_ROWS raw feature rows drawn around the class centroids, and their true labels."""
    rng = np.random.default_rng(seed + 1)
    centroids = class_centroids(seed)
    labels = np.arange(N_ROWS) % N_CLASSES
    rng.shuffle(labels)
    standardized = centroids[labels] + rng.normal(0.0, 0.35, size=(N_ROWS, N_FEATURES))
    raw = standardized * FEATURE_STD + FEATURE_MEAN
    return raw.astype(np.float32), labels


def local_pipeline(raw: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The same computation as the DAG, in numpy (float32 like the server)."""
    z = (raw - FEATURE_MEAN) / FEATURE_STD
    logits = z @ weights + bias
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def float_arg(value: np.float32) -> str:
    """Shortest decimal that round-trips to the same float32 (the script parses it back as a float)."""
    return repr(float(value))


def main(host: str = "127.0.0.1", port: int = 6379) -> dict:
    client = redis.Redis(host=host, port=port, protocol=2)
    client.ping()
    client.delete(MODEL_KEY, SCRIPT_KEY, PROBS_KEY)

    weights, bias = classifier_weights()
    model_bytes = build_onnx_classifier(weights, bias)
    print(f"Built ONNX classifier: {len(model_bytes)} bytes, x[N,{N_FEATURES}] -> Gemm -> Softmax -> probs[N,{N_CLASSES}]")
    client.execute_command("AI.MODELSTORE", MODEL_KEY, "ONNX", "CPU", "TAG", "example:v1", "BLOB", model_bytes)
    meta = client.execute_command("AI.MODELGET", MODEL_KEY, "META")
    meta = dict(zip(meta[0::2], meta[1::2]))
    print(f"AI.MODELSTORE {MODEL_KEY}: backend={meta[b'backend'].decode()} inputs={meta[b'inputs']} "
          f"outputs={meta[b'outputs']}")

    client.execute_command("AI.SCRIPTSTORE", SCRIPT_KEY, "CPU", "TAG", "example:v1",
                           "ENTRY_POINTS", 1, "standardize", "SOURCE", PREPROCESS_SOURCE)
    print(f"AI.SCRIPTSTORE {SCRIPT_KEY}: entry point 'standardize' ((x - mean) / std, mean/std as ARGS)")

    raw, labels = make_batch()
    script_args = [float_arg(v) for v in FEATURE_MEAN] + [float_arg(v) for v in FEATURE_STD]
    dag = [
        "AI.DAGEXECUTE", "PERSIST", 1, PROBS_KEY,
        "|>", "AI.TENSORSET", RAW, "FLOAT", *raw.shape, "BLOB", raw.tobytes(),
        "|>", "AI.SCRIPTEXECUTE", SCRIPT_KEY, "standardize", "INPUTS", 1, RAW,
        "ARGS", len(script_args), *script_args, "OUTPUTS", 1, STANDARDIZED,
        "|>", "AI.MODELEXECUTE", MODEL_KEY, "INPUTS", 1, STANDARDIZED, "OUTPUTS", 1, PROBS_KEY,
        "|>", "AI.TENSORGET", PROBS_KEY, "BLOB",
    ]
    print(f"AI.DAGEXECUTE with 4 ops on a batch of {raw.shape[0]} raw rows ...")
    replies = client.execute_command(*dag)
    if len(replies) != 4 or any(isinstance(reply, Exception) for reply in replies):
        raise RuntimeError(f"DAG failed: {replies!r}")
    statuses = [reply.decode() if isinstance(reply, bytes) else reply for reply in replies[:3]]
    print(f"  op replies: {statuses} + {len(replies[3])}-byte probability blob")
    probs = np.frombuffer(replies[3], dtype=np.float32).reshape(raw.shape[0], N_CLASSES)

    expected = local_pipeline(raw, weights, bias)
    max_abs_diff = float(np.abs(probs - expected).max())
    if not np.allclose(probs, expected, atol=TOLERANCE, rtol=0):
        raise AssertionError(f"server and local probabilities differ by {max_abs_diff}")
    print(f"Matches the local numpy pipeline: max |diff| = {max_abs_diff:.2e} (tolerance {TOLERANCE})")

    stored = client.execute_command("AI.TENSORGET", PROBS_KEY, "META", "BLOB")
    stored = dict(zip(stored[0::2], stored[1::2]))
    persisted = np.frombuffer(stored[b"blob"], dtype=np.float32).reshape(stored[b"shape"])
    if not np.array_equal(persisted, probs):
        raise AssertionError("persisted probabilities differ from the DAG's TENSORGET reply")
    print(f"PERSIST {PROBS_KEY}: {stored[b'dtype'].decode()} tensor of shape {list(stored[b'shape'])}")

    predictions = probs.argmax(axis=1)
    accuracy = float((predictions == labels).mean())
    for i, (row, p) in enumerate(zip(raw, probs)):
        print(f"  row {i:2d} raw={np.array2string(row, precision=2)} -> class {predictions[i]} "
              f"(p={p[predictions[i]]:.3f}, true {labels[i]})")
    print(f"Accuracy against the generating labels: {accuracy:.0%}")

    client.close()
    return {
        "predictions": predictions.tolist(),
        "labels": labels.tolist(),
        "accuracy": accuracy,
        "probs": probs,
        "expected": expected,
        "max_abs_diff": max_abs_diff,
        "persisted_key": PROBS_KEY,
        "persisted_shape": [int(d) for d in stored[b"shape"]],
        "dag_replies": statuses,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    options = parser.parse_args()
    main(host=options.host, port=options.port)
