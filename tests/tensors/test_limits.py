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


BIG = 100 * 1024  # above the size at which the shim passes arguments as views (module/redisai.c)


def test_large_arguments_in_every_position(raw):
    """Arguments of 64 KiB and more reach Python as views of Redis's memory: each use works as for
    small ones, and nothing outlives the command (a view kept afterwards would be logged)."""
    big = bytes(range(256)) * (BIG // 256)
    floats = np.frombuffer(big, np.float32)
    assert raw.call("AI.TENSORSET", "t", "FLOAT", floats.size, "BLOB", big) == b"OK"
    assert raw.call("AI.TENSORGET", "t", "BLOB") == big
    bools = bytes(BIG)
    assert raw.call("AI.TENSORSET", "b", "BOOL", BIG, "BLOB", bools) == b"OK"
    assert raw.call("AI.TENSORSET", "b", "BOOL", BIG, "BLOB", b"\2" * BIG) == Error(
        b"ERR BOOL tensor elements must be 0 or 1")
    strings = b"x" * (BIG - 1) + b"\0"
    assert raw.call("AI.TENSORSET", "s", "STRING", 1, "BLOB", strings) == b"OK"
    assert raw.call("AI.TENSORGET", "s", "BLOB") == strings
    assert raw.call("AI.TENSORSET", "t", big, 1) == Error(b"ERR invalid data type")
    assert raw.call("AI.TENSORSET", "t", "FLOAT", big) == Error(b"ERR invalid or negative value found in tensor shape")
    assert raw.call("AI.TENSORSET", "t", "FLOAT", 2, "VALUES", big, 1) == Error(b"ERR invalid value")
    assert raw.call("AI.TENSORGET", "t", big) == Error(b"ERR unsupported data format")
    reply = raw.call("AI.MODELEXECUTE", "m", "INPUTS", 1, big, "OUTPUTS", 1, "y")
    assert isinstance(reply, Error) and b"model key is empty" in reply
    assert raw.call("AI.DAGEXECUTE", "PERSIST", 1, "d", "|>", "AI.TENSORSET", "d", "FLOAT", floats.size, "BLOB", big,
                    "|>", "AI.TENSORGET", "d", "BLOB") == [b"OK", big]
    source = ("def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0]\n"
              + "# padding\n" * (BIG // 10))
    assert raw.call("AI.SCRIPTSTORE", "sc", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", source) == b"OK"
    assert raw.call("AI.SCRIPTGET", "sc", "SOURCE") == source.encode()
    assert raw.call("AI.TENSORGET", "t", "BLOB") == big  # the failed writes changed nothing
    assert raw.call("PING") == b"PONG"


def test_no_argument_view_outlives_its_command(server, raw):
    raw.call("AI.TENSORSET", "t", "UINT8", BIG, "BLOB", b"\1" * BIG)
    assert "outlived its command" not in server.log()
