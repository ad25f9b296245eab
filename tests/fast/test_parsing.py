"""Command grammars parsed without a server: what a value is made of, and RedisAI's error texts."""

import numpy as np
import pytest

from redisai.commands import model, tensor
from redisai.errors import RedisAIError


def _error(parse, args) -> str:
    with pytest.raises(RedisAIError) as caught:
        parse([token if isinstance(token, bytes) else str(token).encode() for token in args])
    return caught.value.message.decode()


def _args(*tokens) -> list[bytes]:
    return [token if isinstance(token, bytes) else str(token).encode() for token in tokens]


def test_modelstore_reads_redisai_12_grammar():
    parsed = model.parse_modelstore(_args("AI.MODELSTORE", "m", "TF", "CPU:0", "TAG", "v1", "BATCHSIZE", 4,
                                          "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c", "BLOB", b"x", b"y"))
    assert (parsed.backend, parsed.device, parsed.tag, parsed.batchsize) == ("TF", "CPU:0", b"v1", 4)
    assert (parsed.inputs, parsed.outputs, parsed.blob) == (["a", "b"], ["c"], b"xy")


def test_modelset_reads_the_old_form():
    parsed = model.parse_modelset(_args("AI.MODELSET", "m", "TF", "CPU", "INPUTS", "a", "b", "OUTPUTS", "c", "BLOB", b"g"))
    assert (parsed.inputs, parsed.outputs, parsed.blob) == (["a", "b"], ["c"], b"g")


@pytest.mark.parametrize("args,message", [
    (("AI.MODELSTORE", "m", "PYTORCH", "CPU", "BLOB", "x"), "ERR unsupported backend"),
    (("AI.MODELSTORE", "m", "ONNX", "TPU", "BLOB", "x"), "ERR Invalid DEVICE"),
    (("AI.MODELSTORE", "m", "ONNX", "CPU:123456789", "BLOB", "x"), "ERR Invalid DEVICE"),
    (("AI.MODELSTORE", "m", "ONNX", "CPU", "BATCHSIZE", "x", "BLOB", "x"), "ERR Invalid argument for BATCHSIZE"),
    (("AI.MODELSTORE", "m", "TF", "CPU", "BLOB", "x"), "ERR INPUTS not specified for TF"),
    (("AI.MODELSTORE", "m", "ONNX", "CPU", "INPUTS", 1, "a", "BLOB", "x"),
     "ERR INPUTS argument should not be specified for this backend"),
    (("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB"), "ERR Insufficient arguments, missing model BLOB"),
])
def test_modelstore_errors_are_redisais(args, message):
    assert _error(model.parse_modelstore, args) == message


def test_tensorset_values_blob_and_shape_alone():
    values = tensor.parse_tensorset(_args("AI.TENSORSET", "t", "INT32", 2, 2, "VALUES", 1, 2, 3, 4))
    assert values.array.tolist() == [[1, 2], [3, 4]] and values.dtype.name == "INT32"
    blob = tensor.parse_tensorset(_args("AI.TENSORSET", "t", "FLOAT", 2, "BLOB", np.array([1.5, 2], "<f4").tobytes()))
    assert blob.array.tolist() == [1.5, 2.0]
    zeros = tensor.parse_tensorset(_args("AI.TENSORSET", "t", "DOUBLE", 3))
    assert zeros.array.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("args,message", [
    (("AI.TENSORSET", "t", "FLOAT", -1), "ERR invalid or negative value found in tensor shape"),
    (("AI.TENSORSET", "t", "FLOAT", 2, "VALUES"), "ERR wrong number of values was given in 'AI.TENSORSET' command"),
    (("AI.TENSORSET", "t", "FLOAT", 1, "BLOB", "a", "b"),
     "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"),
])
def test_tensorset_errors_are_redisais(args, message):
    assert _error(tensor.parse_tensorset, args) == message


def test_tensorget_formats():
    assert tensor.parse_tensorget_format([b"META", b"VALUES"]) == (True, b"VALUES")
    assert tensor.parse_tensorget_format([b"blob"]) == (False, b"BLOB")
