"""The end-to-end examples in examples/ run against a real server and produce what they promise."""

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

import onnx_classifier_dag  # noqa: E402
import torch_stream  # noqa: E402

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def test_onnx_classifier_dag(server, r):
    result = onnx_classifier_dag.main(port=server.port)

    probs = result["probs"]
    assert probs.shape == (onnx_classifier_dag.N_ROWS, onnx_classifier_dag.N_CLASSES)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(probs, result["expected"], atol=1e-5, rtol=0)
    assert result["max_abs_diff"] <= 1e-5
    assert result["dag_replies"] == ["OK", "OK", "OK"]
    assert result["predictions"] == probs.argmax(axis=1).tolist()
    # The rows are drawn around the class centroids the classifier is built from: all classified right.
    assert result["predictions"] == result["labels"]
    assert result["accuracy"] == 1.0
    assert set(result["predictions"]) == {0, 1, 2}

    # PERSIST left the probabilities in the keyspace; the DAG-local tensors did not leak out.
    assert result["persisted_shape"] == [onnx_classifier_dag.N_ROWS, onnx_classifier_dag.N_CLASSES]
    assert r.execute_command("AI.TENSORGET", onnx_classifier_dag.PROBS_KEY, "BLOB") == probs.tobytes()
    assert not r.exists(onnx_classifier_dag.RAW, onnx_classifier_dag.STANDARDIZED)
    assert r.execute_command("AI.MODELGET", onnx_classifier_dag.MODEL_KEY, "META")[:2] == [b"backend", b"ONNX"]
    assert r.execute_command("AI.SCRIPTGET", onnx_classifier_dag.SCRIPT_KEY, "META")[4:6] == [b"Entry Points", [b"standardize"]]

    # Deterministic: a second run (over the keys the first one left) predicts exactly the same.
    again = onnx_classifier_dag.main(port=server.port)
    assert again["predictions"] == result["predictions"]
    assert np.array_equal(again["probs"], probs)


def test_torch_stream(server, r):
    result = torch_stream.main(port=server.port)

    assert result["windows"] == 50 and result["readings"] == 400
    assert result["scores"].shape == (50,)
    assert result["max_abs_diff"] <= 1e-5
    assert 1 <= result["model_runs"] <= 50
    # The injected spikes, and only they, are flagged, and they top the ranking.
    assert result["anomalies"] == list(torch_stream.SPIKE_WINDOWS)
    assert {member for member, _ in result["top"][:3]} == {f"window:{w}" for w in torch_stream.SPIKE_WINDOWS}
    assert result["max_score"] > result["threshold"] > result["median_score"]

    # What the example wrote back to Redis.
    assert r.xlen(torch_stream.STREAM_IN) == 400
    assert result["output_stream_length"] == r.xlen(torch_stream.STREAM_OUT) == 50
    assert r.zcard(torch_stream.RANKING) == 50
    entries = r.xrange(torch_stream.STREAM_OUT)
    assert [int(fields[b"window"]) for _, fields in entries] == list(range(50))
    np.testing.assert_allclose([float(fields[b"score"]) for _, fields in entries], result["scores"], rtol=1e-6)
    for window in torch_stream.SPIKE_WINDOWS:
        assert r.zscore(torch_stream.RANKING, f"window:{window}") > result["threshold"]
    assert r.execute_command("AI.MODELGET", torch_stream.MODEL_KEY, "META")[:2] == [b"backend", b"TORCH"]
    info = r.execute_command("AI.INFO", torch_stream.MODEL_KEY)
    info = dict(zip(info[0::2], info[1::2]))
    assert info[b"calls"] == result["model_runs"] and info[b"samples"] == 50 and info[b"errors"] == 0


def test_onnx_example_runs_as_a_script(server, r):
    python = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
    completed = subprocess.run([python, "examples/onnx_classifier_dag.py", "--port", str(server.port)],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "Matches the local numpy pipeline" in completed.stdout
    assert "Accuracy against the generating labels: 100%" in completed.stdout
    assert r.exists(onnx_classifier_dag.PROBS_KEY)
