"""Hostile input: crafted models and scripts must not make the server touch files, sockets or processes."""

import pickle
from pathlib import Path

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


# ---------------------------------------------------------------- the hostile corpus (hostile_fixtures.py)

import hostile_fixtures as hf  # noqa: E402
import rdb_payloads as payloads  # noqa: E402
from server import start_replica, wait_for, wait_for_persistence  # noqa: E402

BACKEND_CODES = {"TF": 0, "TFLITE": 1, "TORCH": 2, "ONNX": 3}


@pytest.fixture(scope="module")
def targets():
    hf.ensure_target_files()
    yield
    assert hf.untouched(), "a hostile model read, changed or created a server file"


def _store_args(key: str, backend: str, blob: bytes, io_names) -> list:
    names = ["INPUTS", len(io_names[0]), *io_names[0], "OUTPUTS", len(io_names[1]), *io_names[1]] if io_names else []
    return ["AI.MODELSTORE", key, backend, "CPU", *names, "BLOB", blob]


def _refused(reply, expected: str) -> None:
    assert isinstance(reply, Error), reply
    assert expected.encode() in reply, reply
    assert hf.SECRET_TEXT[:24] not in reply, "the refusal quotes the secret"


@pytest.mark.parametrize("name,backend,build,expected,io_names", hf.CASES, ids=[case[0] for case in hf.CASES])
def test_hostile_model_is_refused_at_store(raw, targets, name, backend, build, expected, io_names):
    _refused(raw.call(*_store_args("m", backend, build(), io_names)), expected)
    assert raw.call("EXISTS", "m") == 0
    assert hf.untouched()


@pytest.mark.parametrize("source,expected", hf.SCRIPTS)
def test_hostile_script_is_refused_at_store(raw, targets, source, expected):
    _refused(raw.call("AI.SCRIPTSET", "s", "CPU", "SOURCE", source), expected)
    _refused(raw.call("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", source), expected)
    assert raw.call("EXISTS", "s") == 0 and hf.untouched()


# One case per backend, through every other way in.
ONE_PER_BACKEND = [case for case in hf.CASES if case[0] in
                   ("torch_read_at_load", "tf_generate_vocab_remapping", "onnx_in_function", "tflite_custom_op")]


@pytest.mark.parametrize("name,backend,build,expected,io_names", ONE_PER_BACKEND, ids=[c[0] for c in ONE_PER_BACKEND])
def test_hostile_model_is_refused_through_modelset_chunks_and_multi(raw, targets, name, backend, build, expected,
                                                                    io_names):
    blob = build()
    old_names = ["INPUTS", *io_names[0], "OUTPUTS", *io_names[1]] if io_names else []
    _refused(raw.call("AI.MODELSET", "m", backend, "CPU", *old_names, "BLOB", blob), expected)
    chunks = [blob[i:i + 1000] for i in range(0, len(blob), 1000)]
    _refused(raw.call(*_store_args("m", backend, b"", io_names)[:-1], *chunks), expected)
    assert raw.call("MULTI") == b"OK"
    raw.call(*_store_args("m", backend, blob, io_names))
    replies = raw.call("EXEC")
    _refused(replies[0], expected)
    assert raw.call("EXISTS", "m") == 0 and hf.untouched()


def _restore_hostile(client, key: str, backend: str, blob: bytes, io_names) -> None:
    inputs, outputs = io_names or ((), ())
    client.restore(key, 0, payloads.model_v4(BACKEND_CODES[backend], blob, inputs, outputs))


def _assert_kept_and_refused(client, server, key: str, blob: bytes, expected: str) -> None:
    """A loaded hostile model stays as bytes: MODELGET returns them, a run answers the refusal, the log
    names the key, and nothing was touched."""
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    with pytest.raises(redis.ResponseError) as refusal:
        client.execute_command("AI.MODELEXECUTE", key, "INPUTS", 1, "x", "OUTPUTS", 1, "y")
    assert expected in str(refusal.value) and hf.SECRET_TEXT[:24].decode() not in str(refusal.value)
    assert client.execute_command("AI.MODELGET", key, "BLOB") == blob
    wait_for(lambda: f"model '{key}' could not be rebuilt" in server.log(), message="log line naming the key")
    assert client.exists("y") == 0 and hf.untouched()


@pytest.mark.parametrize("name,backend,build,expected,io_names", ONE_PER_BACKEND, ids=[c[0] for c in ONE_PER_BACKEND])
def test_hostile_model_in_restore_rdb_and_aof_is_kept_but_never_built(new_server, targets, name, backend, build,
                                                                       expected, io_names):
    blob = build()
    server = new_server(config=("--appendonly", "yes", "--aof-use-rdb-preamble", "no"))
    client = server.client()
    client.set("unsaved", "intact")
    _restore_hostile(client, "evil", backend, blob, io_names)  # RESTORE: the RDB loader of one value
    _assert_kept_and_refused(client, server, "evil", blob, expected)
    client.execute_command("DEBUG", "RELOAD")  # a dump.rdb holding it
    _assert_kept_and_refused(client, server, "evil", blob, expected)
    client.bgrewriteaof()  # an AOF holding its AI.MODELSTORE
    wait_for_persistence(client)
    server.restart(save=False)
    client = server.client()
    assert client.get("unsaved") == b"intact"
    _assert_kept_and_refused(client, server, "evil", blob, expected)


def test_hostile_model_reaching_a_replica_is_kept_but_never_built(new_server, targets):
    name, backend, build, expected, io_names = ONE_PER_BACKEND[0]
    blob = build()
    master = new_server("master")
    client = master.client()
    _restore_hostile(client, "early", backend, blob, io_names)  # in the replica's first sync (RDB)
    replica = start_replica(new_server, master)
    _restore_hostile(client, "late", backend, blob, io_names)  # in the replication stream
    assert client.wait(1, 10000) == 1
    replica_client = replica.client()
    for key in ("early", "late"):
        assert replica_client.execute_command("AI.MODELGET", key, "BLOB") == blob
        wait_for(lambda key=key: f"model '{key}' could not be rebuilt" in replica.log(), message="replica log line")
    assert hf.untouched()


def test_hostile_script_in_restore_is_kept_but_never_compiled(r, server, targets):
    source, expected = hf.SCRIPTS[0]
    r.restore("evil_script", 0, payloads.script_v4(source))
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 2, "VALUES", 1, 2)
    with pytest.raises(redis.ResponseError, match=expected):
        r.execute_command("AI.SCRIPTRUN", "evil_script", "f", "INPUTS", "x", "OUTPUTS", "y")
    wait_for(lambda: "script 'evil_script' could not be rebuilt" in server.log(), message="log line")
    assert hf.untouched()


def test_readme_acl_lines_keep_code_loading_commands_for_the_admin(new_server):
    """The README's ACL advice, as written there."""
    server = new_server()
    admin = server.client()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for line in [line for line in readme.splitlines() if line.startswith("ACL SETUSER ")]:
        assert admin.execute_command(*line.split()) == b"OK"
    app = server.client(username="app", password="app-secret")
    blob = mf.onnx_mul()
    for command in (("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", blob), ("AI.MODELSET", "m", "ONNX", "CPU", "BLOB", blob),
                    ("AI.SCRIPTSET", "s", "CPU", "SOURCE", "def f(x):\n    return x\n"),
                    ("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "f", "SOURCE", "def f(x):\n    return x\n"),
                    ("RESTORE", "m", 0, b"payload"), ("AI.CONFIG", "MODEL_CHUNK_SIZE", 1024),
                    ("AI.CONFIG", "LOADBACKEND", "TORCH", "x")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command)
    admin.execute_command("AUTH", "admin", "admin-secret")
    assert admin.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", blob) == b"OK"
    app.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    assert app.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "c") == b"OK"
    assert app.execute_command("AI.TENSORGET", "c", "VALUES") == [b"4", b"9"]


def test_export_sample_inputs_are_never_unpickled(raw, targets):
    """torch.export.load unpickles sample inputs in full when the restricted unpickler refuses them;
    the server drops them before the load, and the program itself still serves."""
    assert raw.call("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", hf.export_pickled_sample_inputs()) == b"OK"
    raw.call("AI.TENSORSET", "x", "FLOAT", 1, 4, "VALUES", 1, 2, 3, 4)
    assert raw.call("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    assert hf.untouched()
