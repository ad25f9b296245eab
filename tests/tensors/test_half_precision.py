"""FLOAT16 and BFLOAT16 tensors (ours beyond RedisAI: RedisAI had neither): TENSORSET/TENSORGET, every
backend that has the type, scripts, DAGs, RDB (DLPack's float code with 16 bits, and its bfloat code),
AOF, replication and the Python client."""

import ml_dtypes
import numpy as np
import pytest
import redis

import model_fixtures as mf
from server import start_replica, wait_for_persistence

BF16 = np.dtype(ml_dtypes.bfloat16)
HALF_TYPES = [("FLOAT16", np.dtype("<f2")), ("BFLOAT16", BF16)]


def _get(client, key) -> np.ndarray:
    dtype, _, shape, _, blob = client.execute_command("AI.TENSORGET", key, "META", "BLOB")[1:6]
    numpy = {b"FLOAT16": np.dtype("<f2"), b"BFLOAT16": BF16, b"FLOAT": np.dtype("<f4")}[dtype]
    return np.frombuffer(blob, numpy).reshape(shape)


@pytest.mark.parametrize("name,dtype", HALF_TYPES)
def test_values_blob_and_meta(r, name, dtype):
    assert r.execute_command("AI.TENSORSET", "v", name, 2, 2, "VALUES", 1.5, -2, 0.25, 100) == b"OK"
    assert r.execute_command("AI.TENSORGET", "v", "META") == [b"dtype", name.encode(), b"shape", [2, 2]]
    assert r.execute_command("AI.TENSORGET", "v", "VALUES") == [b"1.5", b"-2", b"0.25", b"100"]
    data = np.array([[3, 0.5]], dtype)
    r.execute_command("AI.TENSORSET", "b", name, 1, 2, "BLOB", data.tobytes())
    assert r.execute_command("AI.TENSORGET", "b", "BLOB") == data.tobytes()
    assert _get(r, "v").dtype == dtype


def test_values_beyond_the_range_become_infinity_as_for_float(r):
    r.execute_command("AI.TENSORSET", "h", "FLOAT16", 2, "VALUES", 70000, -1e6)
    assert r.execute_command("AI.TENSORGET", "h", "VALUES") == [b"inf", b"-inf"]
    with pytest.raises(redis.ResponseError, match="invalid value"):
        r.execute_command("AI.TENSORSET", "h", "BFLOAT16", 1, "VALUES", "half")


def test_reload_aof_restart_and_replica_keep_them(new_server):
    server = new_server(config=("--appendonly", "yes", "--aof-use-rdb-preamble", "no"))
    client = server.client()
    for name, dtype in HALF_TYPES:
        client.execute_command("AI.TENSORSET", name, name, 3, "BLOB", np.array([1, 2.5, -4], dtype).tobytes())
    digests = {name: client.execute_command("DEBUG", "DIGEST-VALUE", name) for name, _ in HALF_TYPES}
    client.execute_command("DEBUG", "RELOAD")
    client.bgrewriteaof()
    wait_for_persistence(client)
    server.restart(save=False)  # from the AOF
    client = server.client()
    for name, dtype in HALF_TYPES:
        assert client.execute_command("DEBUG", "DIGEST-VALUE", name) == digests[name]
        assert _get(client, name).tolist() == np.array([1, 2.5, -4], dtype).tolist()
    replica = start_replica(new_server, server)
    replica_client = replica.client()
    for name, _ in HALF_TYPES:
        assert replica_client.execute_command("DEBUG", "DIGEST-VALUE", name) == digests[name]


@pytest.mark.parametrize("name,dtype", HALF_TYPES)
def test_onnx_models_take_and_give_them(r, name, dtype):
    r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", mf.onnx_identity(name))
    x = np.array([[1.5, -2], [0.125, 3]], dtype)
    r.execute_command("AI.TENSORSET", "x", name, 2, 2, "BLOB", x.tobytes())
    assert r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    y = _get(r, "y")
    assert y.dtype == dtype and y.tolist() == x.tolist()


@pytest.mark.parametrize("name,dtype", HALF_TYPES)
def test_torchscript_half_and_bfloat16_models(r, name, dtype):
    r.execute_command("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", mf.torch_scaled(name))
    x = np.array([1.5, -2, 8], dtype)
    r.execute_command("AI.TENSORSET", "x", name, 3, "BLOB", x.tobytes())
    r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    y = _get(r, "y")
    assert y.dtype == dtype and y.tolist() == (x.astype(np.float32) * 2).astype(dtype).tolist()


def test_tf_half_graph(r):
    r.execute_command("AI.MODELSTORE", "m", "TF", "CPU", "INPUTS", 1, "x", "OUTPUTS", 1, "y", "BLOB", mf.tf_half_double())
    x = np.array([1.5, -2], np.float16)
    r.execute_command("AI.TENSORSET", "x", "FLOAT16", 2, "BLOB", x.tobytes())
    r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert _get(r, "y").tolist() == [3.0, -4.0]


def test_scripts_and_dags(r):
    r.execute_command("AI.SCRIPTSET", "s", "CPU", "SOURCE", "def twice(x):\n    return x * 2\n")
    r.execute_command("AI.TENSORSET", "x", "FLOAT16", 2, "VALUES", 1.5, 3)
    r.execute_command("AI.SCRIPTRUN", "s", "twice", "INPUTS", "x", "OUTPUTS", "y")
    assert r.execute_command("AI.TENSORGET", "y", "VALUES") == [b"3", b"6"]
    reply = r.execute_command("AI.DAGEXECUTE", "PERSIST", 1, "z", "|>", "AI.TENSORSET", "a", "BFLOAT16", 2, "VALUES", 1, 2,
                              "|>", "AI.SCRIPTEXECUTE", "s", "twice", "INPUTS", 1, "a", "OUTPUTS", 1, "z",
                              "|>", "AI.TENSORGET", "z", "VALUES")
    assert reply == [b"OK", b"OK", [b"2", b"4"]]
    assert r.execute_command("AI.TENSORGET", "z", "META")[1] == b"BFLOAT16"


def test_the_python_client(server):
    from redisai import Client

    con = Client(port=server.port)
    for dtype in (np.float16, ml_dtypes.bfloat16):
        con.tensorset("t", np.array([[1, 2.5]], dtype))
        back = con.tensorget("t")
        assert back.dtype == np.dtype(dtype) and back.tolist() == [[1, 2.5]]
    con.tensorset("l", [1.5, 2], dtype="float16")
    assert con.tensorget("l", meta_only=True)["dtype"] == "FLOAT16"


def test_an_onnx_model_converted_to_float16_gives_onnxruntimes_answer(r):
    import onnxruntime

    blob = mf.onnx_mlp_float16()
    r.execute_command("AI.MODELSTORE", "mlp16", "ONNX", "CPU", "BLOB", blob)
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float16)
    r.execute_command("AI.TENSORSET", "x", "FLOAT16", 5, 4, "BLOB", x.tobytes())
    r.execute_command("AI.MODELEXECUTE", "mlp16", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    expected = onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert _get(r, "y").tolist() == expected.tolist()
