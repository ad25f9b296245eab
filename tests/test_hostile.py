"""Hostile input: crafted models and scripts must not make the server touch files, sockets or processes."""

import pickle

import numpy as np
import pytest
import redis

import model_fixtures as mf
from resp import Error


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    key, size, out = (number << 3) | 2, len(payload), b""
    for value in (key, size):
        while value > 0x7F:
            out += bytes([(value & 0x7F) | 0x80])
            value >>= 7
        out += bytes([value])
    return out + payload


def node_def(name: str, op: str, *inputs: str) -> bytes:
    return _field(1, name.encode()) + _field(2, op.encode()) + b"".join(_field(3, i.encode()) for i in inputs)


def graph_def(*nodes: bytes, function_nodes: tuple[bytes, ...] = ()) -> bytes:
    """GraphDef bytes, built by hand: no TensorFlow needed in the test process."""
    graph = b"".join(_field(1, n) for n in nodes)
    if function_nodes:
        function = _field(1, _field(1, b"f")) + b"".join(_field(3, n) for n in function_nodes)
        graph += _field(2, _field(1, function))
    return graph


IO_OPS = ["ReadFile", "WriteFile", "MatchingFiles", "SaveV2", "RestoreV2", "ImmutableConst", "TFRecordDatasetV2",
          "PyFunc", "MergeV2Checkpoints", "InitializeTableFromTextFileV2", "WholeFileReaderV2"]


@pytest.mark.parametrize("op", IO_OPS)
def test_tf_graphs_with_io_ops_are_rejected(raw, tmp_path, op):
    sentinel = tmp_path / "sentinel"
    blob = graph_def(node_def("a", "Placeholder"), node_def("b", "Placeholder"), node_def("c", op, "a", "b"))
    reply = raw.call("AI.MODELSTORE", "m", "TF", "CPU", "INPUTS", 2, "a", "b", "OUTPUTS", 1, "c", "BLOB", blob)
    assert isinstance(reply, Error) and b"is not allowed" in reply and op.encode() in reply, reply
    assert raw.call("EXISTS", "m") == 0 and not sentinel.exists()


def test_tf_io_op_hidden_in_a_function_library_is_rejected(raw):
    blob = graph_def(node_def("a", "Placeholder"), node_def("c", "Identity", "a"),
                     function_nodes=(node_def("w", "WriteFile", "a", "a"),))
    reply = raw.call("AI.MODELSTORE", "m", "TF", "CPU", "INPUTS", 1, "a", "OUTPUTS", 1, "c", "BLOB", blob)
    assert isinstance(reply, Error) and b"WriteFile" in reply


def test_real_tf_read_file_graph_is_rejected(raw):
    reply = raw.call("AI.MODELSET", "m", "TF", "CPU", "INPUTS", "path", "OUTPUTS", "c", "BLOB", mf.tf_file_ops_graph())
    assert isinstance(reply, Error) and b"ReadFile" in reply


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "dump.rdb", "appendonlydir/x.aof"])
def test_onnx_external_data_is_rejected(raw, location):
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2], [0.0, 0.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    reply = raw.call("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", model.SerializeToString())
    assert reply == Error(b"ERR Initializer tensors with external data is not allowed.")
    assert raw.call("EXISTS", "m") == 0


class _Boom:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/redisai-pickle-sentinel",))


def test_pickles_are_never_loaded(raw, tmp_path):
    import os
    sentinel = "/tmp/redisai-pickle-sentinel"
    if os.path.exists(sentinel):
        os.remove(sentinel)
    for backend in ("TORCH", "ONNX", "TFLITE"):
        reply = raw.call("AI.MODELSTORE", "m", backend, "CPU", "BLOB", pickle.dumps(_Boom()))
        assert isinstance(reply, Error), backend
    reply = raw.call("AI.MODELSTORE", "m", "TF", "CPU", "INPUTS", 1, "a", "OUTPUTS", 1, "c", "BLOB", pickle.dumps(_Boom()))
    assert isinstance(reply, Error)
    raw.call("AI.TENSORSET", "x", "FLOAT", 1)
    # a RESTORE payload cannot smuggle one either: our RDB loader reads fixed layouts only
    import rdb_payloads as p
    fields = (p.unsigned(2) + p.buffer(b"CPU\0") + p.buffer(b"") + p.unsigned(0) * 3 + p.unsigned(0) + p.unsigned(0)
              + p.unsigned(len(pickle.dumps(_Boom()))) + p.unsigned(1) + p.buffer(pickle.dumps(_Boom())))
    raw.call("RESTORE", "r", 0, p.payload("AI__MODEL", 4, fields))
    assert isinstance(raw.call("AI.MODELEXECUTE", "r", "INPUTS", 1, "x", "OUTPUTS", 1, "y"), Error)
    assert not os.path.exists(sentinel) and raw.call("PING") == b"PONG"


def test_torchscript_archive_with_a_pickle_inside_is_refused(raw, r):
    """A TorchScript zip whose data.pkl asks for os.system: TorchScript's own unpickler refuses it."""
    import io
    import os
    import zipfile

    sentinel = "/tmp/redisai-zip-sentinel"
    if os.path.exists(sentinel):
        os.remove(sentinel)
    genuine = zipfile.ZipFile(io.BytesIO(mf.torch_add_mul()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as forged:
        for item in genuine.infolist():
            data = genuine.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps(_Boom().__reduce__()[0], protocol=2)
            forged.writestr(item, data)
    reply = raw.call("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", out.getvalue())
    assert isinstance(reply, Error) and not os.path.exists(sentinel)


def test_values_of_tensor_never_reach_eval(r):
    with pytest.raises(redis.ResponseError, match="invalid value"):
        r.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", "__import__('os').system('true')")
    with pytest.raises(redis.ResponseError, match="invalid value"):
        r.execute_command("AI.TENSORSET", "t", "INT32", 1, "VALUES", "1+1")
    assert np.isclose(float(r.execute_command("AI.TENSORSET", "t", "FLOAT", 1, "VALUES", "1e3") == b"OK"), 1.0)
