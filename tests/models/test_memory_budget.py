"""BACKEND_MEMORY_LIMIT: a run that needs more memory than the budget answers an error, and the server,
its keys and the model stay. The bombs (model_fixtures: ~4 GB for one intermediate) run against a server
in a 3 GiB memory cgroup, with maxmemory 1gb, as an operator would run it: without the budget the
kernel's OOM killer would end the server."""

import os
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis

import model_fixtures as mf

CGROUP_BYTES = 3 * 1024**3
BOMBS = [("TORCH", mf.torch_memory_bomb, "Torch"), ("ONNX", mf.onnx_memory_bomb, "Onnxruntime"),
         ("TF", mf.tf_memory_bomb, "Tensorflow"), ("TFLITE", mf.tflite_memory_bomb, "TFLite")]


def _make_cgroup() -> tuple[Path, Path]:
    """A memory cgroup of CGROUP_BYTES (v2, else v1): its directory and the file that takes a pid."""
    name = f"redisai-test-{uuid.uuid4().hex[:8]}"
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists() and "memory" in (v2 / "cgroup.subtree_control").read_text():
        directory = v2 / name
        directory.mkdir()
        (directory / "memory.max").write_text(str(CGROUP_BYTES))
        (directory / "memory.swap.max").write_text("0") if (directory / "memory.swap.max").exists() else None
        return directory, directory / "cgroup.procs"
    v1 = Path("/sys/fs/cgroup/memory")
    directory = v1 / name
    directory.mkdir()
    (directory / "memory.limit_in_bytes").write_text(str(CGROUP_BYTES))
    return directory, directory / "cgroup.procs"


@pytest.fixture
def memory_cgroup():
    try:
        directory, procs = _make_cgroup()
    except OSError as e:
        pytest.skip(f"no memory cgroup can be made here ({e}): the suite needs root and a writable cgroup fs")
    yield procs
    for pid in procs.read_text().split():  # a server left in it (a failed test)
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass
    try:
        directory.rmdir()
    except OSError:
        pass


def _server_in(new_server, procs: Path, *module_args: str):
    wrapper = ("sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh")
    return new_server(module_args=module_args, config=("--maxmemory", "1gb"), wrapper=wrapper)


def _run_bombs_and_check(server):
    client = server.client()
    client.set("unsaved", "intact")  # never saved: a killed server would lose it
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 1)
    for backend, build, framework in BOMBS:
        names = ["INPUTS", 1, "x", "OUTPUTS", 1, "y"] if backend == "TF" else []
        assert client.execute_command("AI.MODELSTORE", f"bomb_{backend}", backend, "CPU", *names, "WARMUP", 0,
                                      "BLOB", build()) == b"OK"
        for _ in range(2):  # the model stays, and answers the same the second time
            with pytest.raises(redis.ResponseError, match=f"^{framework} memory limit exceeded, memory allocation failed.$"):
                client.execute_command("AI.MODELEXECUTE", f"bomb_{backend}", "INPUTS", 1, "x", "OUTPUTS", 1, "y")
        assert server.alive() and client.get("unsaved") == b"intact" and client.exists("y") == 0
    # Its warm-up (ONNX declares its input) is held to the limit too: refused and counted, the model stored.
    failed = client.info("ai")["ai_warmup_failed"]
    onnx_bomb = next(build for backend, build, _ in BOMBS if backend == "ONNX")
    assert client.execute_command("AI.MODELSTORE", "bomb_warm", "ONNX", "CPU", "BLOB", onnx_bomb()) == b"OK"
    assert client.info("ai")["ai_warmup_failed"] == failed + 1 and server.alive()
    # an ordinary model right after works
    client.execute_command("AI.MODELSTORE", "mul", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    client.execute_command("AI.MODELEXECUTE", "mul", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "b")
    assert client.execute_command("AI.TENSORGET", "b", "VALUES") == [b"4", b"9"]
    return client.info("ai")


def test_memory_bombs_answer_an_error_and_the_server_stays(new_server, memory_cgroup):
    server = _server_in(new_server, memory_cgroup, "BACKEND_MEMORY_LIMIT", "1024")
    info = _run_bombs_and_check(server)
    assert info["ai_backend_memory_limit"] == 1024 and info["ai_limit"] == 1024 * 10**6
    assert info["ai_limit_source"] == "BACKEND_MEMORY_LIMIT"
    for backend, _, _ in BOMBS:
        assert info[f"ai_{backend.lower()}_refused"] == 2 + (backend == "ONNX"), backend  # ONNX: + its warm-up
    assert info["ai_torch_used"] < info["ai_limit"] and info["ai_torch_peak"] <= info["ai_limit"]


def test_the_derived_default_protects_a_server_whose_operator_set_nothing(new_server, memory_cgroup):
    server = _server_in(new_server, memory_cgroup)
    info = _run_bombs_and_check(server)
    assert info["ai_limit_source"] == "derived"
    assert info["ai_limit"] == (CGROUP_BYTES - 1024**3) // 2  # maxmemory 1gb is 1024**3 bytes
    assert "backend memory limit" in server.log()


def test_zero_keeps_redisai_no_limit(new_server):
    server = new_server(module_args=("BACKEND_MEMORY_LIMIT", "0"))
    client = server.client()
    info = client.info("ai")
    assert info["ai_limit"] == 0 and info["ai_limit_source"] == "none" and info["ai_backend_memory_limit"] == 0
    client.execute_command("AI.MODELSTORE", "m", "TORCH", "CPU", "BLOB", mf.torch_add_mul())
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    client.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "b")
    assert np.allclose([float(v) for v in client.execute_command("AI.TENSORGET", "b", "VALUES")], [6, 12])
    assert client.info("ai")["ai_torch_used"] > 0  # counted, not limited


def _tf_fill_graph() -> bytes:
    """TF: y = Fill(shape, 1.0), float32 of the INT64 shape fed (a big output from a few bytes)."""
    def build():
        tf = mf._import_tf()
        graph = tf.Graph()
        with graph.as_default():
            shape = tf.compat.v1.placeholder(tf.int64, shape=[1], name="shape")
            tf.fill(shape, tf.constant(1.0), name="y")
        return graph.as_graph_def().SerializeToString()
    return mf._cached("tf_fill_of_input_shape", build)


_BIG_OUTPUT_SCRIPT = "def fill(tensors: List[Tensor], keys: List[str], args: List[str]):\n" \
                     "    return torch.ones(int(tensors[0][0].item()))\n"


@pytest.mark.parametrize("kind", ["TF", "TORCH script"])
def test_outputs_are_counted_against_the_limit(new_server, kind):
    """160 MB of output under a 300 MB limit fits the framework's allocator, but it is held three times
    (the framework's, the key's, the replicated AI.TENSORSET's): refused with the framework's memory error,
    no key written; a small output of the same model is stored."""
    server = new_server(module_args=("BACKEND_MEMORY_LIMIT", "300"))
    client = server.client()
    if kind == "TF":
        client.execute_command("AI.MODELSTORE", "m", "TF", "CPU", "INPUTS", 1, "shape", "OUTPUTS", 1, "y",
                               "WARMUP", 0, "BLOB", _tf_fill_graph())
        command, framework = ("AI.MODELEXECUTE", "m", "INPUTS", 1, "shape", "OUTPUTS", 1, "y"), "Tensorflow"
    else:
        client.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 1, "fill", "SOURCE", _BIG_OUTPUT_SCRIPT)
        command, framework = ("AI.SCRIPTEXECUTE", "s", "fill", "INPUTS", 1, "shape", "OUTPUTS", 1, "y"), "Torch"
    client.execute_command("AI.TENSORSET", "shape", "INT64", 1, "VALUES", 40 * 10**6)
    with pytest.raises(redis.ResponseError, match=f"^{framework} memory limit exceeded, memory allocation failed.$"):
        client.execute_command(*command)
    assert client.exists("y") == 0 and server.alive()
    client.execute_command("AI.TENSORSET", "shape", "INT64", 1, "VALUES", 1000)
    assert client.execute_command(*command) == b"OK"
    assert client.execute_command("AI.TENSORGET", "y", "META")[-1] == [1000]


# ---------------------------------------------------------------------------- out of the frameworks' hooks
# Memory no allocator hook of ours sees: TorchScript lists and strings (c10's heap), TensorFlow's string
# characters and lookup tables, onnxruntime's std::string elements. The allow-lists refuse what they can
# see of these at store (backends/tf_strings.py); with them off (a test-only switch) the executor's bound
# alone must hold: each run answers an error, and the server and its keys stay.

OUT_OF_HOOKS_SCRIPT = (
    "def list_bomb(tensors: List[Tensor], keys: List[str], args: List[str]):\n"
    "    big = [0] * 500000000\n"  # 500 M IValues of 16 bytes: 8 GB
    "    return tensors[0] + len(big) * 0\n"
    "def string_bomb(tensors: List[Tensor], keys: List[str], args: List[str]):\n"
    "    text = 'ab'\n"
    "    for _ in range(32):\n"  # 8 GB of characters, the last copies
    "        text = text + text\n"
    "    return tensors[0] + len(text) * 0\n")


def _tf_string_fill() -> bytes:
    """TF: 4 M copies of a 1 KiB string (4 GiB of characters on the heap), from a float input x."""
    def build():
        tf = mf._import_tf()
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, shape=[1], name="x")
            copies = tf.fill(tf.constant([4 * 1024 * 1024], tf.int64) + tf.cast(x, tf.int64) * 0, "a" * 1024)
            tf.add(x, tf.cast(tf.reduce_sum(tf.strings.length(copies)), tf.float32) * 0.0, name="y")
        return graph.as_graph_def().SerializeToString()
    return mf._cached("tf_string_fill_bomb", build)


def _tf_lookup_table() -> bytes:
    """TF: a hash table of 300 M int64 keys imported at run time (several GB of buckets), x looked up."""
    def build():
        tf = mf._import_tf()
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, shape=[1], name="x")
            keys = tf.range(tf.constant(300_000_000, tf.int64) + tf.cast(x[0], tf.int64) * 0)
            table = tf.raw_ops.HashTableV2(key_dtype=tf.int64, value_dtype=tf.int64)
            imported = tf.raw_ops.LookupTableImportV2(table_handle=table, keys=keys, values=keys)
            with tf.control_dependencies([imported]):
                found = tf.raw_ops.LookupTableFindV2(table_handle=table, keys=tf.cast(x, tf.int64),
                                                     default_value=tf.constant(-1, tf.int64))
            tf.add(x, tf.cast(found, tf.float32) * 0.0, name="y")
        return graph.as_graph_def().SerializeToString()
    return mf._cached("tf_lookup_table_bomb", build)


def _onnx_string_expand() -> bytes:
    """ONNX: a 1 KiB string constant expanded to 4 M elements (std::strings, beside the arena)."""
    def build():
        from onnx import TensorProto, helper

        text = helper.make_tensor("text", TensorProto.STRING, [1], [b"a" * 1024])
        shape = helper.make_tensor("shape", TensorProto.INT64, [1], [4 * 1024 * 1024])
        nodes = [helper.make_node("Constant", [], ["text"], value=text),
                 helper.make_node("Constant", [], ["shape"], value=shape),
                 helper.make_node("Expand", ["text", "shape"], ["copies"]),
                 helper.make_node("Shape", ["copies"], ["count"]),
                 helper.make_node("Cast", ["count"], ["count_float"], to=TensorProto.FLOAT),
                 helper.make_node("ReduceSum", ["count_float"], ["total"], keepdims=0),
                 helper.make_node("Mul", ["total", "zero"], ["nothing"]),
                 helper.make_node("Add", ["x", "nothing"], ["y"])]
        zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
        graph = helper.make_graph(nodes, "strings", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [zero])
        return mf._onnx_model(graph)
    return mf._cached("onnx_string_expand_bomb", build)


OUT_OF_HOOKS = [
    ("torchscript list", ("AI.SCRIPTEXECUTE", "s", "list_bomb", "INPUTS", 1, "x", "OUTPUTS", 1, "y")),
    ("torchscript string", ("AI.SCRIPTEXECUTE", "s", "string_bomb", "INPUTS", 1, "x", "OUTPUTS", 1, "y")),
    ("tf strings", ("AI.MODELEXECUTE", "tf_strings", "INPUTS", 1, "x", "OUTPUTS", 1, "y")),
    ("tf lookup table", ("AI.MODELEXECUTE", "tf_table", "INPUTS", 1, "x", "OUTPUTS", 1, "y")),
    ("onnx strings", ("AI.MODELEXECUTE", "onnx_strings", "INPUTS", 1, "x", "OUTPUTS", 1, "y")),
]


def test_memory_out_of_the_frameworks_hooks_is_held_by_the_executors_bound(new_server, memory_cgroup):
    wrapper = ("sh", "-c", f'echo $$ > {memory_cgroup} && exec "$@"', "sh")
    server = new_server(module_args=("BACKEND_MEMORY_LIMIT", "1024"), config=("--maxmemory", "1gb"),
                        wrapper=wrapper, env={"REDISAI_TEST_SKIP_ALLOWLISTS": "1"})
    client = server.client()
    client.set("unsaved", "intact")
    client.execute_command("AI.TENSORSET", "x", "FLOAT", 1, "VALUES", 1)
    client.execute_command("AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", 2, "list_bomb", "string_bomb",
                           "SOURCE", OUT_OF_HOOKS_SCRIPT)
    io = ("INPUTS", 1, "x", "OUTPUTS", 1, "y")
    client.execute_command("AI.MODELSTORE", "tf_strings", "TF", "CPU", *io, "WARMUP", 0, "BLOB", _tf_string_fill())
    client.execute_command("AI.MODELSTORE", "tf_table", "TF", "CPU", *io, "WARMUP", 0, "BLOB", _tf_lookup_table())
    client.execute_command("AI.MODELSTORE", "onnx_strings", "ONNX", "CPU", "WARMUP", 0, "BLOB", _onnx_string_expand())
    answers = {}
    for name, command in OUT_OF_HOOKS:
        with pytest.raises(redis.ResponseError) as error:
            client.execute_command(*command)
        answers[name] = str(error.value)
        assert server.alive() and client.get("unsaved") == b"intact" and client.exists("y") == 0, name
    print("\n" + "\n".join(f"{name}: {answer}" for name, answer in answers.items()))
    client.execute_command("AI.MODELSTORE", "mul", "ONNX", "CPU", "BLOB", mf.onnx_mul())
    client.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 2, 3)
    client.execute_command("AI.MODELEXECUTE", "mul", "INPUTS", 2, "a", "a", "OUTPUTS", 1, "b")
    assert client.execute_command("AI.TENSORGET", "b", "VALUES") == [b"4", b"9"]
