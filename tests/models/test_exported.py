"""torch.export programs in the TORCH backend: stored, run by position, batched on their dynamic dim,
returned by MODELGET as stored, persisted and replicated as any model."""

import threading

import numpy as np
import pytest

import model_fixtures as mf


def _expected(x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return mf.torch_exported_module()(torch.from_numpy(x)).numpy()


def _run(client, x: np.ndarray, model: str = "ep", key: str = "x") -> np.ndarray:
    client.execute_command("AI.TENSORSET", key, "FLOAT", *x.shape, "BLOB", x.tobytes())
    assert client.execute_command("AI.MODELEXECUTE", model, "INPUTS", 1, key, "OUTPUTS", 1, key + "y") == b"OK"
    meta = client.execute_command("AI.TENSORGET", key + "y", "META", "BLOB")
    return np.frombuffer(meta[5], np.float32).reshape(meta[3])


def test_an_exported_program_serves_by_position(r):
    blob = mf.torch_exported()
    assert r.execute_command("AI.MODELSTORE", "ep", "TORCH", "CPU", "TAG", "v1", "BLOB", blob) == b"OK"
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(r, x), _expected(x), rtol=1e-6, atol=1e-6)
    assert r.execute_command("AI.MODELGET", "ep", "BLOB") == blob
    meta = r.execute_command("AI.MODELGET", "ep", "META")
    assert meta[meta.index(b"inputs") + 1] == [b"x"] and meta[meta.index(b"backend") + 1] == b"TORCH"
    r.execute_command("DEBUG", "RELOAD")
    np.testing.assert_allclose(_run(r, x), _expected(x), rtol=1e-6, atol=1e-6)


def test_an_exported_program_batches_on_its_dynamic_dimension(r):
    r.execute_command("AI.MODELSTORE", "ep", "TORCH", "CPU", "BATCHSIZE", 8, "MINBATCHSIZE", 2, "MINBATCHTIMEOUT", 200,
                      "BLOB", mf.torch_exported())
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((1, 4)).astype(np.float32) for _ in range(4)]
    results = {}

    def client(i):
        results[i] = _run(r.__class__(connection_pool=r.connection_pool), inputs[i], key=f"x{i}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, x in enumerate(inputs):
        np.testing.assert_allclose(results[i], _expected(x), rtol=1e-6, atol=1e-6)
    info = r.execute_command("AI.INFO", "ep", "EXTENDED")
    assert info[info.index(b"calls") + 1] == 4


@pytest.mark.long
def test_bert_as_an_exported_program_gives_torchs_outputs(r):
    """A real architecture through every check of the program JSON (bench/real_fixtures.py builds it with
    transformers' own code, random weights): stored, and run with torch's own outputs."""
    import sys
    from pathlib import Path

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import real_fixtures as rf

    blob = rf.bert_exported()
    assert r.execute_command("AI.MODELSTORE", "bert", "TORCH", "CPU", "BLOB", blob) == b"OK"
    ids, mask = rf.bert_inputs(batch=3)
    r.execute_command("AI.TENSORSET", "ids", "INT64", *ids.shape, "BLOB", ids.tobytes())
    r.execute_command("AI.TENSORSET", "mask", "INT64", *mask.shape, "BLOB", mask.tobytes())
    assert r.execute_command("AI.MODELEXECUTE", "bert", "INPUTS", 2, "ids", "mask", "OUTPUTS", 2, "o0", "o1") == b"OK"
    import io
    with torch.no_grad():
        expected = torch.export.load(io.BytesIO(blob)).module()(torch.from_numpy(ids), torch.from_numpy(mask))
    for key, want in zip(("o0", "o1"), expected):
        meta = r.execute_command("AI.TENSORGET", key, "META", "BLOB")
        np.testing.assert_allclose(np.frombuffer(meta[5], np.float32).reshape(meta[3]), want.numpy(), rtol=1e-4,
                                   atol=1e-4)
