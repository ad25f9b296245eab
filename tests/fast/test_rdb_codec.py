"""RedisAI's RDB layouts (docs/rdb-format.md) written and read back without a server."""

import numpy as np

from redisai.domain.model import Model
from redisai.domain.script import Script
from redisai.domain.tensor import DTYPES, Tensor
from redisai.persistence import rdb


class Stream:
    """An RdbIO over a list of fields."""

    def __init__(self, fields=None):
        self.fields = list(fields or [])

    def save_unsigned(self, value: int) -> None:
        self.fields.append(int(value))

    def save_buffer(self, data) -> None:
        self.fields.append(bytes(data))

    def load_unsigned(self) -> int:
        return self.fields.pop(0)

    def load_buffer(self) -> bytes:
        return self.fields.pop(0)


def _round_trip(save, load, value, encver: int = 4):
    stream = Stream()
    record = rdb.Record()
    save(record, value)
    record.replay(stream)
    written = list(stream.fields)
    return load(Stream(written), encver), written


def test_tensor_layout_4_as_redisai_wrote_it():
    tensor = Tensor.from_array(np.array([[1], [2]], np.int32))
    loaded, fields = _round_trip(rdb.save_tensor, rdb.load_tensor, tensor)
    assert fields == [0, 32, 2, 2, 1, b"\x01\0\0\0\x02\0\0\0"]  # the layout example of RedisAI's dumps
    assert loaded.array.tolist() == [[1], [2]] and loaded.dtype is DTYPES["INT32"]


def test_string_tensor_keeps_its_offsets():
    tensor = Tensor.from_values(DTYPES["STRING"], (2,), [b"str_val1", b"str_val2"])
    loaded, fields = _round_trip(rdb.save_tensor, rdb.load_tensor, tensor)
    assert fields[-2:] == [0, 9] and loaded.array.tolist() == [b"str_val1", b"str_val2"]


def test_model_chunks_and_names():
    model = Model("TF", "CPU", b"v1", 4, 2, 10, ["a", "b"], ["c"], b"0123456789")
    stream = Stream()
    record = rdb.Record()
    rdb.save_model(record, model, chunk_size=4)
    record.replay(stream)
    loaded = rdb.load_model(Stream(stream.fields), 4)
    assert (loaded.backend, loaded.device, loaded.tag, loaded.batchsize, loaded.minbatchsize) == ("TF", "CPU", b"v1", 4, 2)
    assert (loaded.minbatchtimeout, loaded.inputs, loaded.outputs, loaded.blob) == (10, ["a", "b"], ["c"], b"0123456789")


def test_script_with_and_without_entry_points():
    for entry_points in (["f", "g"], None):
        script = Script("CPU", b"t", b"def f(x):\n    return x\n", entry_points)
        loaded, _ = _round_trip(rdb.save_script, rdb.load_script, script)
        assert loaded.source == script.source and loaded.entry_points == entry_points
