"""Limits: huge shapes, blobs at proto-max-bulk-len, long VALUES lists, many chunks, big DAGs."""

import numpy as np
import pytest
import redis

import model_fixtures as mf
from resp import Error


@pytest.mark.parametrize("shape", [(2**32, 2**32, 2), (2**62, 4), (2**31, 2**31), (2**41, 2**21)])
def test_shapes_that_overflow(raw, shape):
    assert raw.call("AI.TENSORSET", "t", "FLOAT", *shape) == Error(b"ERR invalid or negative value found in tensor shape")
    assert raw.call("AI.TENSORSET", "t", "FLOAT", *shape, "BLOB", b"\0" * 8) == Error(
        b"ERR invalid or negative value found in tensor shape")


def test_zero_tensors_are_bounded_by_proto_max_bulk_len(raw):
    for shape in ((2**30, 2**30), (2**31,), (2**27 + 1,)):  # 8 EiB, 8 GiB, 512 MiB + 4 bytes
        reply = raw.call("AI.TENSORSET", "t", "FLOAT", *shape)
        assert isinstance(reply, Error) and b"larger than proto-max-bulk-len" in reply, reply
    assert raw.call("PING") == b"PONG" and raw.call("EXISTS", "t") == 0
    assert raw.call("AI.TENSORSET", "t", "UINT8", 1 << 20) == b"OK"


def test_blob_at_proto_max_bulk_len(new_server):
    server = new_server(config=("--proto-max-bulk-len", "16mb"))
    client = server.client()
    blob = np.arange(4 << 20, dtype=np.float32).tobytes()  # exactly 16 MiB
    assert client.execute_command("AI.TENSORSET", "t", "FLOAT", 4 << 20, "BLOB", blob) == b"OK"
    assert client.execute_command("AI.TENSORGET", "t", "BLOB") == blob
    with pytest.raises(redis.ConnectionError):
        client.execute_command("AI.TENSORSET", "t", "FLOAT", (4 << 20) + 1, "BLOB", blob + b"\0\0\0\0")
    assert server.client().ping()


def test_a_million_values(r):
    values = [str(i % 100) for i in range(10**6)]
    assert r.execute_command("AI.TENSORSET", "t", "INT32", 10**6, "VALUES", *values) == b"OK"
    assert np.frombuffer(r.execute_command("AI.TENSORGET", "t", "BLOB"), np.int32)[-1] == 99
    with pytest.raises(redis.ResponseError, match="wrong number of values"):
        r.execute_command("AI.TENSORSET", "t", "INT32", 10**6 + 1, "VALUES", *values)


def test_model_blob_in_ten_thousand_chunks(r):
    blob = mf.onnx_mlp()
    size = -(-len(blob) // 10_000)
    chunks = [blob[i * size:(i + 1) * size] for i in range(10_000)]
    assert r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", *chunks) == b"OK"
    assert r.execute_command("AI.MODELGET", "m", "BLOB") == blob


def test_a_thousand_keys_in_one_dag(r):
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.execute_command("AI.TENSORSET", f"{{d}}in{i}", "FLOAT", 1, "VALUES", i)
    pipe.execute()
    r.execute_command("AI.MODELSTORE", "{d}m", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    ops = []
    for i in range(1000):
        ops += ["|>", "AI.MODELEXECUTE", "{d}m", "INPUTS", 2, f"{{d}}in{i}", f"{{d}}in{i}", "OUTPUTS", 1, f"{{d}}out{i}"]
    reply = r.execute_command("AI.DAGEXECUTE", "LOAD", 1000, *(f"{{d}}in{i}" for i in range(1000)),
                              "PERSIST", 1000, *(f"{{d}}out{i}" for i in range(1000)), *ops)
    assert reply == [b"OK"] * 1000
    assert r.execute_command("AI.TENSORGET", "{d}out999", "VALUES") == [b"998001"]
