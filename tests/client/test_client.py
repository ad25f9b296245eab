"""redisai.Client / redisai.cluster.ClusterClient: the redisai-py 1.3 compatible clients, against
real servers."""

import warnings

import model_fixtures as mf
import numpy as np
import pytest
import redis
from redis.exceptions import RedisClusterException, ResponseError

import redisai
import redisai.client as rclient
from redisai import Client, Dag, load_model, load_script
from redisai.cluster import ClusterClient

SCRIPT = "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2.0\n"
OLD_SCRIPT = "def bar(a, b):\n    return a + b\n"


@pytest.fixture
def con(r, server):
    client = Client(port=server.port, socket_timeout=120)
    yield client
    client.close()


@pytest.fixture
def mul(con):
    """ONNX model 'm' (c = a * b) and tensors a=[2, 3], b=[12, 10]."""
    con.modelstore("m", "ONNX", "CPU", mf.onnx_mul())
    con.tensorset("a", np.array([2, 3], dtype=np.float32))
    con.tensorset("b", np.array([12, 10], dtype=np.float32))
    return con


# --- the client itself ------------------------------------------------------------------------

def test_client_is_a_redis_client_speaking_resp2(con, server):
    assert isinstance(con, redis.Redis)
    assert con.connection_pool.connection_kwargs["protocol"] == 2
    assert con.set("plain", "v") and con.get("plain") == b"v"
    assert redisai.Dag is Dag
    explicit = Client(port=server.port, protocol=3)
    assert explicit.connection_pool.connection_kwargs["protocol"] == 3
    explicit.tensorset("r3", [1.5, 2], dtype="float")  # RESP3 replies parse the same
    assert explicit.tensorget("r3", as_numpy=False) == {"dtype": "FLOAT", "shape": [2], "values": [1.5, 2.0]}
    assert explicit.tensorget("r3").tolist() == [1.5, 2.0]
    explicit.close()
    from_url = Client.from_url(f"redis://127.0.0.1:{server.port}/0")
    assert from_url.connection_pool.connection_kwargs["protocol"] == 2
    assert from_url.tensorget("r3", meta_only=True) == {"dtype": "FLOAT", "shape": [2]}
    from_url.close()


def test_positional_arguments_are_redisai_pys(server, capsys):
    """Client(debug=False, enable_postprocess=True, *args, **kwargs), as redisai-py 1.3."""
    quiet = Client(False, port=server.port)  # redisai-py's tests build their client as Client(debug)
    assert quiet.tensorset("p", [1, 2], dtype="int32") == "OK"
    assert capsys.readouterr().out == ""
    loud = Client(True, port=server.port)
    assert loud.tensorget("p", meta_only=True) == {"dtype": "INT32", "shape": [2]}
    assert capsys.readouterr().out == "AI.TENSORGET p META\n"
    raw = Client(False, False, port=server.port)
    assert raw.tensorset("p", [3], dtype="int8") == b"OK"
    everything = Client(False, True, "127.0.0.1", server.port)  # then redis.Redis's positional arguments
    assert everything.tensorget("p").tolist() == [3]
    assert everything.connection_pool.connection_kwargs["port"] == server.port
    for client in (quiet, loud, raw, everything):
        client.close()


def test_raw_execute_command_and_postprocess_off(con, server):
    con.tensorset("t", [1, 2], dtype="int32")
    # A command sent by hand is answered as by redis.Redis.
    assert con.execute_command("AI.TENSORGET", "t", "META") == [b"dtype", b"INT32", b"shape", [2]]
    raw = Client(port=server.port, enable_postprocess=False)
    assert raw.tensorset("u", [3], dtype="int8") == b"OK"
    assert raw.tensorget("u", as_numpy=False) == [b"dtype", b"INT8", b"shape", [1], b"values", [3]]
    assert raw.tensorget("u", meta_only=True) == [b"dtype", b"INT8", b"shape", [1]]
    assert raw.config("MODEL_CHUNK_SIZE") == 511 * 1024 * 1024 and isinstance(raw.config("BACKENDSPATH"), bytes)
    assert raw.modelstore("m", "ONNX", "CPU", mf.onnx_mul()) == b"OK"
    assert raw.modelget("m", meta_only=True)[:4] == [b"backend", b"ONNX", b"device", b"CPU"]
    assert raw.scriptstore("s", "CPU", SCRIPT, "f") == b"OK"
    assert raw.scriptget("s", meta_only=True) == [b"device", b"CPU", b"tag", b"", b"Entry Points", [b"f"]]
    assert raw.infoget("s")[:4] == [b"key", b"s", b"type", b"SCRIPT"] and raw.inforeset("s") == b"OK"
    with pytest.warns(UserWarning):
        assert raw.modelscan() == [[b"m", b""]]
    # DAGs and pipelines parse their replies whatever the flag, as in redisai-py
    assert raw.dag(load="u").tensorget("u", meta_only=True).execute() == [{"dtype": "INT8", "shape": [1]}]
    dag = raw.dag(load="u").tensorget("u", as_numpy=False)
    dag.enable_postprocess = False  # the only switch redisai-py's Dag has
    assert dag.execute() == [[b"dtype", b"INT8", b"shape", [1], b"values", [3]]]
    assert raw.pipeline().tensorset("v", [4], dtype="int8").tensorget("v").execute()[1].tolist() == [4]
    raw.close()


def test_decode_responses_does_not_touch_blobs(r, server, mul):
    client = Client(port=server.port, decode_responses=True)
    data = np.array([0xFF, 0xFE, 0], dtype=np.uint8)  # not UTF-8
    assert client.tensorset("bin", data) == "OK"
    assert client.tensorget("bin").tolist() == [255, 254, 0]
    assert client.modelget("m")["blob"] == mf.onnx_mul()
    assert client.get("nothing") is None and client.set("s", "x") and client.get("s") == "x"
    client.close()


def test_debug_prints_commands_as_redisai_py(server, capsys):
    client = Client(True, port=server.port)
    client.tensorset("dbg", (2, 3, 4, 5), dtype="float")
    assert capsys.readouterr().out.splitlines() == ["AI.TENSORSET dbg FLOAT 4 VALUES 2 3 4 5"]
    client.tensorset("n", np.array([[1, 2]], dtype=np.int8))
    assert capsys.readouterr().out.splitlines() == ["AI.TENSORSET n INT8 1 2 BLOB b'\\x01\\x02'"]
    # modelstore asks the server's chunk size first, as redisai-py does
    with pytest.raises(ResponseError):  # not a model: the debug lines come first
        client.modelstore("m", "onnx", "cpu", b"model bytes", tag="v1")
    assert capsys.readouterr().out.splitlines() == ["AI.CONFIG GET MODEL_CHUNK_SIZE",
                                                    "AI.MODELSTORE m onnx cpu TAG v1 BLOB b'model bytes'"]
    client.dag(load="dbg").tensorget("dbg").execute()
    assert capsys.readouterr().out.splitlines() == ["AI.DAGEXECUTE LOAD 1 dbg |> AI.TENSORGET dbg META BLOB"]
    client.close()


def test_load_model_and_load_script(tmp_path):
    (tmp_path / "m.onnx").write_bytes(mf.onnx_mul())
    (tmp_path / "s.txt").write_text(SCRIPT)
    assert load_model(tmp_path / "m.onnx") == mf.onnx_mul()
    assert load_script(str(tmp_path / "s.txt")) == SCRIPT
    assert redisai.load_model is load_model and redisai.load_script is load_script


# --- tensors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "bool"])
def test_tensor_numpy_roundtrip(con, dtype):
    array = (np.arange(6).reshape(2, 3) % (2 if dtype == "bool" else 7)).astype(dtype)
    assert con.tensorset("x", array) == "OK"
    got = con.tensorget("x")
    assert got.dtype == np.dtype(dtype) and got.shape == (2, 3)
    np.testing.assert_array_equal(got, array)
    assert not got.flags.writeable
    mutable = con.tensorget("x", as_numpy_mutable=True)
    assert mutable.flags.writeable
    mutable[0, 0] = 1
    np.testing.assert_array_equal(con.tensorget("x"), array)


def test_tensor_numpy_layouts(con):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    con.tensorset("t", base.T)  # not C-contiguous
    np.testing.assert_array_equal(con.tensorget("t"), base.T)
    con.tensorset("f", np.asfortranarray(base))
    np.testing.assert_array_equal(con.tensorget("f"), base)
    big_endian = base.astype(">f8")
    con.tensorset("be", big_endian)
    assert con.tensorget("be", meta_only=True) == {"dtype": "DOUBLE", "shape": [3, 4]}
    np.testing.assert_array_equal(con.tensorget("be"), base)
    con.tensorset("s", np.array([["ab", "c"], ["", "déf"]]))
    strings = con.tensorget("s")
    assert strings.shape == (2, 2) and strings.tolist() == [["ab", "c"], ["", "déf"]]
    assert con.tensorget("s", as_numpy=False) == {"dtype": "STRING", "shape": [2, 2], "values": ["ab", "c", "", "déf"]}


def test_tensor_values_and_meta(con):
    assert con.tensorset("v", [1, 2.5, 3, 4], shape=(2, 2), dtype="float") == "OK"
    assert con.tensorget("v", as_numpy=False) == {"dtype": "FLOAT", "shape": [2, 2], "values": [1.0, 2.5, 3.0, 4.0]}
    assert con.tensorget("v", meta_only=True) == {"dtype": "FLOAT", "shape": [2, 2]}
    con.tensorset("i", (7, 8, 9), dtype="INT64")  # RedisAI's own type names work too
    assert con.tensorget("i", as_numpy=False) == {"dtype": "INT64", "shape": [3], "values": [7, 8, 9]}
    con.tensorset("n", [[1, 2], [3, 4]], dtype=np.int16)  # nested lists give the shape
    assert con.tensorget("n").tolist() == [[1, 2], [3, 4]]
    con.tensorset("b", [True, False, np.bool_(True)], dtype="bool")
    assert con.tensorget("b").tolist() == [True, False, True]
    con.tensorset("d", [np.float64(0.1), np.float32(2)], dtype="double")
    assert con.tensorget("d").tolist() == [0.1, 2.0]
    con.tensorset("s", ["x", "yz"], dtype="str")
    assert con.tensorget("s").tolist() == ["x", "yz"]
    con.tensorset("s8", ["q"], dtype=np.dtype("<U8"))
    assert con.tensorget("s8", as_numpy=False)["values"] == ["q"]
    con.tensorset("shape_int", [1, 2, 3], shape=3, dtype="int32")
    con.tensorset("shape_np", [np.array([1, 2]), np.array([3, 4])], shape=np.array([2, 2]), dtype="uint8")
    assert con.tensorget("shape_np", meta_only=True) == {"dtype": "UINT8", "shape": [2, 2]}
    dag = con.dag(routing="s").tensorset("ds", ["a", "b"], dtype="str").tensorget("ds")
    result = dag.tensorget("ds", as_numpy=False).execute()
    assert result[1].tolist() == ["a", "b"]
    assert result[2] == {"dtype": "STRING", "shape": [2], "values": ["a", "b"]}


def test_tensor_errors(con):
    with pytest.raises(TypeError, match="dtype"):
        con.tensorset("x", [1, 2])
    with pytest.raises(TypeError):
        con.tensorset("x", [1, 2], dtype="complex")
    with pytest.raises(TypeError):
        con.tensorset("x", np.zeros(2, dtype=np.complex64))  # float16 is a type (FLOAT16)
    with pytest.raises(TypeError):
        con.tensorset("x", 1)
    with pytest.raises(ResponseError, match="invalid value"):
        con.tensorset("x", [1, "a"], dtype="int32")
    with pytest.raises(ResponseError, match="^invalid data type$"):
        con.tensorset("x", np.zeros(2, dtype=np.uint32))
    with pytest.raises(ResponseError, match="^wrong number of values was given in 'AI.TENSORSET' command$"):
        con.tensorset("x", [1, 2, 3], shape=(2, 2), dtype="float")
    with pytest.raises(ResponseError, match="^tensor key is empty or in a different shard$"):
        con.tensorget("missing")
    con.set("str", "x")
    with pytest.raises(ResponseError, match="^WRONGTYPE"):
        con.tensorget("str")


# --- models --------------------------------------------------------------------------------------

def test_model_store_get_execute_delete(mul):
    con = mul
    assert con.modelstore("m", "onnx", "cpu", mf.onnx_mul(), tag="v1.0") == "OK"
    meta = con.modelget("m", meta_only=True)
    assert meta == {"backend": "ONNX", "device": "cpu", "tag": "v1.0", "batchsize": 0, "minbatchsize": 0,
                    "inputs": ["a", "b"], "outputs": ["c"], "minbatchtimeout": 0}
    full = con.modelget("m")
    assert full["blob"] == mf.onnx_mul() and {k: v for k, v in full.items() if k != "blob"} == meta
    assert con.modelexecute("m", inputs=["a", "b"], outputs=["c"]) == "OK"
    assert con.tensorget("c").tolist() == [24.0, 30.0]
    assert con.modelexecute("m", ("b", "a"), "d", timeout=10_000) == "OK"
    assert con.tensorget("d").tolist() == [24.0, 30.0]
    assert con.modeldel("m") == "OK"
    with pytest.raises(ResponseError, match="^model key is empty$"):
        con.modelget("m")
    with pytest.raises(ResponseError, match="^model key is empty$"):
        con.modelexecute("m", ["a", "b"], ["c"])
    with pytest.raises(ResponseError, match="^model key is empty$"):
        con.modeldel("m")


def test_model_batching_options(con):
    assert con.modelstore("mlp", "ONNX", "CPU", mf.onnx_mlp(), batch=4, minbatch=2, minbatchtimeout=50,
                          tag="b") == "OK"
    meta = con.modelget("mlp", meta_only=True)
    assert (meta["batchsize"], meta["minbatchsize"], meta["minbatchtimeout"], meta["tag"]) == (4, 2, 50, "b")
    x = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    con.tensorset("x", x)
    assert con.modelexecute("mlp", "x", "y") == "OK"
    np.testing.assert_allclose(con.tensorget("y"), mf.onnx_mlp_reference(x), rtol=1e-5, atol=1e-6)


def test_model_client_side_checks(con):
    blob = mf.onnx_mul()
    with pytest.raises(ValueError):
        con.modelstore("m", "ONNX", "TPU", blob)
    with pytest.raises(ValueError):
        con.modelstore("m", "CAFFE", "CPU", blob)
    with pytest.raises(ValueError):
        con.modelstore("m", "ONNX", "CPU", blob, minbatch=2)
    with pytest.raises(ValueError):
        con.modelstore("m", "ONNX", "CPU", blob, batch=2, minbatchtimeout=2)
    with pytest.raises(ValueError):
        con.modelstore("m", "ONNX", "CPU", blob, inputs=["a", "b"], outputs=["c"])
    with pytest.raises(ValueError):
        con.modelstore("m", "TF", "CPU", blob)
    with pytest.raises(ValueError):
        con.modelexecute("m", None, "c")
    with pytest.raises(ResponseError):  # the server refuses the blob
        con.modelstore("m", "ONNX", "CPU", b"not a model")
    with pytest.raises(ResponseError, match="^Invalid DEVICE$"):
        con.modelstore("m", "ONNX", "CPU:x", blob)


def test_model_torch_and_gpu_device_format(con):
    assert con.modelstore("pt", "TORCH", "CPU", mf.torch_add_mul(), tag="t") == "OK"
    con.tensorset("a", np.array([2, 3], dtype=np.float32))
    con.tensorset("b", np.array([4, 5], dtype=np.float32))
    assert con.modelexecute("pt", ["a", "b"], ["c"]) == "OK"
    assert con.tensorget("c").tolist() == [10.0, 18.0]
    assert con.modelget("pt", meta_only=True)["backend"] == "TORCH"
    cmd = rclient.Builder.modelstore("g", "torch", "GPU:1", b"x", None, None, None, None, None, None)
    assert cmd[:4] == ["AI.MODELSTORE", "g", "torch", "GPU:1"]


def test_model_tf_inputs_outputs_and_modelset(con):
    graph = mf.tf_mul_graph()
    assert con.modelstore("tf", "TF", "CPU", graph, inputs=["a", "b"], outputs="c", tag="v") == "OK"
    meta = con.modelget("tf", meta_only=True)
    assert (meta["backend"], meta["inputs"], meta["outputs"], meta["tag"]) == ("TF", ["a", "b"], ["c"], "v")
    con.tensorset("x", [2, 3], dtype="float")
    con.tensorset("y", [4, 5], dtype="float")
    assert con.modelexecute("tf", ["x", "y"], "z") == "OK"
    assert con.tensorget("z").tolist() == [8.0, 15.0]
    with pytest.warns(DeprecationWarning):
        assert con.modelset("tf2", "tf", "cpu", graph, inputs=("a", "b"), outputs=["c"]) == "OK"
    assert con.modelget("tf2", meta_only=True)["inputs"] == ["a", "b"]
    with pytest.warns(DeprecationWarning):
        assert con.modelrun("tf2", ["x", "y"], ["w"]) == "OK"
    assert con.tensorget("w").tolist() == [8.0, 15.0]
    with pytest.raises(ResponseError, match="not found in TF graph"):
        con.modelstore("tf3", "TF", "CPU", graph, inputs=["nope", "b"], outputs=["c"])


def test_model_chunks(new_server, monkeypatch):
    server = new_server()
    con = Client(port=server.port)
    blob = mf.onnx_mul()
    monkeypatch.setattr(rclient.commands, "MODEL_CHUNK_SIZE", 64)  # where modelstore reads it
    args = rclient.Builder.modelstore("m", "ONNX", "CPU", blob, None, None, None, None, None, None)
    chunks = args[args.index("BLOB") + 1:]
    assert len(chunks) == -(-len(blob) // 64) and b"".join(bytes(c) for c in chunks) == blob
    monkeypatch.undo()

    sent = []
    send = con.execute_command
    con.execute_command = lambda *args, **options: sent.append(args) or send(*args, **options)
    assert con.modelstore("m", "ONNX", "CPU", blob) == "OK"
    assert sent[0] == ("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") and sent[1][-2:] == ("BLOB", blob)
    # As redisai-py, modelstore sends the model in BLOB arguments of the server's MODEL_CHUNK_SIZE,
    assert con.config("MODEL_CHUNK_SIZE", 100) == "OK"
    assert con.config("MODEL_CHUNK_SIZE") == 100
    sent.clear()
    assert con.modelstore("m", "ONNX", "CPU", blob) == "OK"
    pieces = sent[-1][sent[-1].index("BLOB") + 1:]
    assert len(pieces) == -(-len(blob) // 100) and b"".join(bytes(c) for c in pieces) == blob
    # and modelget returns the chunks the server sends once the blob reaches that size, as a list.
    assert isinstance(con.execute_command("AI.MODELGET", "m", "BLOB"), list)
    chunks = con.modelget("m")["blob"]
    assert isinstance(chunks, list) and len(chunks) > 1 and b"".join(chunks) == blob
    assert con.modelget("m", meta_only=True)["inputs"] == ["a", "b"]
    con.tensorset("a", [2, 3], dtype="float")
    assert con.modelexecute("m", ["a", "a"], "c") == "OK"
    assert con.tensorget("c").tolist() == [4.0, 9.0]
    # modelset (as in redisai-py) and pipelines do not ask: 500 MiB arguments
    with pytest.warns(DeprecationWarning):
        assert con.modelset("m2", "ONNX", "CPU", blob) == "OK"
    assert sent[-1][-2:] == ("BLOB", blob)
    assert con.pipeline().modelstore("m3", "ONNX", "CPU", blob).execute() == [b"OK"]
    # a server's size that Redis would refuse as an argument length is not used
    assert con.config("MODEL_CHUNK_SIZE", 600 * 1024 * 1024) == "OK"
    sent.clear()
    assert con.modelstore("m", "ONNX", "CPU", blob) == "OK"
    assert sent[-1][-2:] == ("BLOB", blob)
    con.close()


def test_modelscan_and_scriptscan(con):
    con.modelstore("m1", "ONNX", "CPU", mf.onnx_mul(), tag="x")
    con.scriptstore("s1", "CPU", SCRIPT, "f")
    with pytest.warns(UserWarning):
        assert con.modelscan() == [["m1", "x"]]
    with pytest.warns(UserWarning):
        assert con.scriptscan() == [["s1", ""]]


# --- scripts -------------------------------------------------------------------------------------

def test_script_store_get_execute_delete(con):
    assert con.scriptstore("s", "CPU", SCRIPT, entry_points="f", tag="v2") == "OK"
    # the entry points stay bytes, as redisai-py returns them
    assert con.scriptget("s") == {"device": "CPU", "tag": "v2", "entry points": [b"f"], "source": SCRIPT}
    assert con.scriptget("s", meta_only=True) == {"device": "CPU", "tag": "v2", "entry points": [b"f"]}
    con.tensorset("a", np.array([1, 2], dtype=np.float32))
    assert con.scriptexecute("s", "f", inputs="a", outputs="b") == "OK"
    assert con.tensorget("b").tolist() == [2.0, 4.0]
    assert con.scriptexecute("s", "f", keys=["a"], inputs=["a"], args=["1", "x"], outputs=["c"], timeout=10_000) == "OK"
    assert con.tensorget("c").tolist() == [2.0, 4.0]
    with pytest.raises(ValueError):
        con.scriptexecute("s", "f", outputs="c")
    with pytest.raises(ResponseError, match="g"):
        con.scriptexecute("s", "g", inputs="a", outputs="c")
    with pytest.raises(ResponseError, match="^Function nope does not exist in the given script.$"):
        con.scriptstore("s2", "CPU", SCRIPT, ["f", "nope"])
    assert con.scriptdel("s") == "OK"
    with pytest.raises(ResponseError, match="^script key is empty$"):
        con.scriptget("s")


def test_deprecated_script_aliases(con):
    with pytest.warns(DeprecationWarning):
        assert con.scriptset("old", "cpu", OLD_SCRIPT, tag="t") == "OK"
    assert con.scriptget("old", meta_only=True)["tag"] == "t"
    con.tensorset("a", [1, 2], dtype="float")
    con.tensorset("b", [10, 20], dtype="float")
    with pytest.warns(DeprecationWarning):
        assert con.scriptrun("old", "bar", inputs=["a", "b"], outputs="c") == "OK"
    assert con.tensorget("c").tolist() == [11.0, 22.0]


# --- statistics, configuration ------------------------------------------------------------------

def test_infoget_inforeset(mul):
    con = mul
    con.modelstore("m", "ONNX", "CPU", mf.onnx_mul(), tag="t")
    first = con.infoget("m")
    # exactly RedisAI's fields (code written for redisai-py compares the whole dict)
    assert first == {"key": "m", "type": "MODEL", "backend": "ONNX", "device": "CPU", "tag": "t", "duration": 0,
                     "samples": 0, "calls": 0, "errors": 0}
    con.modelexecute("m", ["a", "b"], "c")
    con.modelexecute("m", ["a", "b"], "c")
    info = con.infoget("m")
    assert (info["calls"], info["samples"], info["errors"]) == (2, 4, 0) and info["duration"] > 0
    assert con.inforeset("m") == "OK"
    assert con.infoget("m") == first
    con.scriptstore("s", "CPU", SCRIPT, "f")
    assert con.infoget("s") == {"key": "s", "type": "SCRIPT", "backend": "TORCH", "device": "CPU", "tag": "",
                                "duration": 0, "samples": -1, "calls": 0, "errors": 0}
    with pytest.raises(ResponseError, match="^cannot find run info for key$"):
        con.infoget("nothing")
    # this module's extra statistics, asked for explicitly
    extended = con.execute_command("AI.INFO", "m", "EXTENDED")
    assert len(extended) == 28 and extended[18::2] == [b"runs", b"memory", b"duration_p50", b"duration_p95",
                                                        b"duration_p99"]


def test_config_and_loadbackend(con):
    assert isinstance(con.config("BACKENDSPATH"), str)
    assert isinstance(con.config("MODEL_CHUNK_SIZE"), int)
    assert con.config("NO_SUCH_SETTING") is None
    assert con.loadbackend("ONNX", "redisai_onnxruntime/redisai_onnxruntime.so") == "OK"
    with pytest.raises(ResponseError, match="^unsupported backend$"):
        con.loadbackend("CAFFE", "x.so")
    with pytest.raises(ResponseError, match="^MODEL_CHUNK_SIZE: invalid chunk size$"):
        con.config("MODEL_CHUNK_SIZE", 0)


# --- DAG -----------------------------------------------------------------------------------------

def test_dag_load_persist_and_ops(mul):
    con = mul
    con.scriptstore("s", "CPU", SCRIPT, "f")
    dag = con.dag(load=["a", "b"], persist=["out"], timeout=10_000)
    assert dag.tensorset("local", np.array([1, 1], dtype=np.float32)) is dag
    dag.modelexecute("m", inputs=["a", "b"], outputs=["c"])
    dag.scriptexecute("s", "f", inputs="c", outputs="out")
    dag.tensorget("out").tensorget("c", as_numpy=False).tensorget("local", meta_only=True)
    dag.tensorget("out", as_numpy_mutable=True)
    result = dag.execute()
    assert result[:3] == ["OK", "OK", "OK"]
    assert result[3].tolist() == [48.0, 60.0] and not result[3].flags.writeable
    assert result[4] == {"dtype": "FLOAT", "shape": [2], "values": [24.0, 30.0]}
    assert result[5] == {"dtype": "FLOAT", "shape": [2]}
    assert result[6].flags.writeable
    assert con.tensorget("out").tolist() == [48.0, 60.0]
    assert con.exists("c", "local") == 0  # only PERSIST keys reach the keyspace
    # a single key needs no list; ROUTING alone is enough for AI.DAGEXECUTE
    assert con.dag(load="a", persist="a2").modelexecute("m", ["a", "a"], "a2").execute() == ["OK"]
    assert con.tensorget("a2").tolist() == [4.0, 9.0]
    assert con.dag(routing="a").tensorset("t", [5], dtype="float").tensorget("t").execute()[1].tolist() == [5.0]


def test_dag_readonly(mul):
    con = mul
    con.scriptstore("s", "CPU", SCRIPT, "f")
    with pytest.raises(RuntimeError):
        con.dag(load="a", persist="x", readonly=True)
    ro = con.dag(load=["a", "b"], readonly=True)
    assert ro.commands[0] == "AI.DAGEXECUTE_RO"
    with pytest.raises(RuntimeError):
        ro.scriptexecute("s", "f", inputs="a", outputs="x")
    with pytest.warns(DeprecationWarning), pytest.raises(RuntimeError):
        ro.scriptrun("s", "f", inputs="a", outputs="x")
    result = ro.tensorset("t", [2, 2], dtype="float").modelexecute("m", ["a", "t"], "c").tensorget("c").execute()
    assert result[:2] == ["OK", "OK"] and result[2].tolist() == [4.0, 6.0]
    assert con.exists("c", "t") == 0


def test_dag_errors(mul):
    con = mul
    con.tensorset("three", [1, 2, 3], dtype="float")
    dag = con.dag(load=["a", "three"]).modelexecute("m", ["a", "three"], "c").tensorget("c")
    with pytest.raises(ResponseError):
        dag.execute()
    result = dag.execute(raise_on_error=False)
    assert isinstance(result[0], ResponseError) and result[1] == "NA"
    with pytest.raises(ResponseError, match="^tensor key is empty or in a different shard$"):
        con.dag(load="missing").tensorget("missing").execute()
    with pytest.raises(ResponseError, match="^missing arguments for 'AI.DAGEXECUTE' command$"):
        con.dag(load="a").execute()
    with pytest.raises(ResponseError, match="^DAG is empty$"):
        con.dag(load=["a", "b"], timeout=1000).execute()


def test_dag_deprecated_dagrun(mul):
    con = mul
    with pytest.warns(DeprecationWarning):
        dag = con.dag()
    assert dag.commands[0] == "AI.DAGRUN"
    with pytest.raises(RuntimeError):
        dag.modelexecute("m", ["a", "b"], "c")
    with pytest.raises(RuntimeError):
        dag.scriptexecute("s", "f", inputs="a")
    dag.tensorset("x", [1, 2], dtype="float")
    with pytest.warns(DeprecationWarning):
        dag.modelrun("m", ["x", "x"], "y")
    dag.tensorget("y")
    with pytest.warns(DeprecationWarning):
        result = dag.run()
    assert result[:2] == ["OK", "OK"] and result[2].tolist() == [1.0, 4.0]
    with pytest.warns(DeprecationWarning):
        ro = con.dag(readonly=True)
    assert ro.commands[0] == "AI.DAGRUN_RO"
    # in a DAGEXECUTE, the deprecated op methods send the new ops
    with pytest.warns(DeprecationWarning):
        new = con.dag(load=["a", "b"]).modelrun("m", ["a", "b"], "c")
    assert "AI.MODELEXECUTE" in new.commands
    assert new.tensorget("c").execute()[1].tolist() == [24.0, 30.0]


# --- pipelines -----------------------------------------------------------------------------------

def test_pipeline_transaction(mul):
    con = mul
    con.scriptstore("s", "CPU", SCRIPT, "f", tag="st")
    pipe = con.pipeline()
    assert isinstance(pipe, redis.client.Pipeline) and pipe.transaction
    assert pipe.tensorset("p", np.arange(3, dtype=np.int32)) is pipe
    pipe.tensorget("p").tensorget("p", as_numpy=False).tensorget("p", meta_only=True)
    pipe.set("k", "v").get("k").modelget("m", meta_only=True).scriptget("s", meta_only=True).infoget("s")
    pipe.lrange("nothing", 0, -1).rpush("l", 1, 2, 3, 4).lrange("l", 0, -1)
    result = pipe.execute()
    # status replies as redis-py reads them (b'OK'), as redisai-py's pipelines return them
    assert result[0] == b"OK" and result[1].tolist() == [0, 1, 2]
    assert result[2] == {"dtype": "INT32", "shape": [3], "values": [0, 1, 2]}
    assert result[3] == {"dtype": "INT32", "shape": [3]}
    assert result[4] is True and result[5] == b"v"
    assert result[6]["inputs"] == ["a", "b"] and result[7]["tag"] == "st" and result[8]["type"] == "SCRIPT"
    assert result[9:] == [[], 4, [b"1", b"2", b"3", b"4"]]  # other replies untouched
    # RedisAI refuses its blocking commands inside MULTI
    pipe = con.pipeline(transaction=True)
    pipe.modelexecute("m", ["a", "b"], "c")
    with pytest.raises(ResponseError, match="Cannot run RedisAI command within a transaction"):
        pipe.execute()


def test_pipeline_without_transaction(mul):
    con = mul
    con.scriptstore("s", "CPU", SCRIPT, "f")
    with con.pipeline(transaction=False) as pipe:
        assert not pipe.transaction
        pipe.modelexecute("m", ["a", "b"], "c").scriptexecute("s", "f", inputs="c", outputs="d")
        pipe.tensorget("d").tensorget("missing")
        with pytest.warns(DeprecationWarning):
            pipe.modelrun("m", ["a", "b"], "e")
        pipe.config("MODEL_CHUNK_SIZE").inforeset("m").modeldel("m")
        result = pipe.execute(raise_on_error=False)
    assert result[:2] == [b"OK", b"OK"] and result[2].tolist() == [48.0, 60.0]
    assert isinstance(result[3], ResponseError) and result[4] == b"OK"
    assert result[5:] == [511 * 1024 * 1024, b"OK", b"OK"]
    pipe = con.pipeline(transaction=False)
    pipe.tensorget("missing")
    with pytest.raises(ResponseError, match="tensor key is empty"):
        pipe.execute()
    with pytest.raises(RuntimeError):
        con.pipeline().dag(load="a")


# --- code written for redisai-py -----------------------------------------------------------------

def test_readme_style_example(server, r, tmp_path):
    (tmp_path / "mul.onnx").write_bytes(mf.onnx_mul())
    (tmp_path / "script.txt").write_text(SCRIPT)
    model_path, script_path = str(tmp_path / "mul.onnx"), str(tmp_path / "script.txt")

    # --- as in redisai-py's README and docstrings ---
    import redisai as rai

    con = rai.Client(host="localhost", port=server.port)

    arr = np.array([2, 3], dtype=np.float32)
    con.tensorset("x", arr)
    assert con.tensorget("x").tolist() == [2.0, 3.0]

    con.tensorset("a", (2, 3), dtype="float")
    con.tensorset("b", (12, 10), dtype="float")
    model = rai.load_model(model_path)
    con.modelstore("m", "onnx", "cpu", model, tag="v1.0")
    con.modelexecute("m", inputs=["a", "b"], outputs=["c"])
    assert con.tensorget("c").tolist() == [24.0, 30.0]
    assert con.tensorget("c", as_numpy=False) == {"values": [24.0, 30.0], "dtype": "FLOAT", "shape": [2]}
    assert con.modelget("m", meta_only=True)["tag"] == "v1.0"

    script = rai.load_script(script_path)
    con.scriptstore("ket", "cpu", script, entry_points="f")
    con.scriptexecute("ket", "f", inputs=["c"], outputs=["d"])
    assert con.tensorget("d").tolist() == [48.0, 60.0]

    dag = con.dag(load=["a", "b"], persist="output")
    dag.tensorset("another", arr)
    dag.modelexecute("m", inputs=["a", "another"], outputs=["output"])
    output = dag.tensorget("output").execute()
    assert output[0] == "OK" and output[1] == "OK" and output[2].tolist() == [4.0, 9.0]
    assert con.tensorget("output").tolist() == [4.0, 9.0]
    result = con.dag(load="a", routing="a").tensorset("t", (1, 1), dtype="float").modelexecute(
        "m", ["a", "t"], ["o"]).tensorget("o").execute()
    assert result[2].tolist() == [2.0, 3.0]
    con.close()


# --- redisai-py 1.3's texts, errors and return types, as code written for it relies on them -------

def _warned(record, category):
    """The one warning of that category recorded, checked to point at this file (the caller)."""
    found = [w for w in record if issubclass(w.category, category)]
    assert len(found) == 1, [str(w.message) for w in record]
    return found[0]


def test_deprecation_warnings_are_redisai_pys(mul):
    con = mul
    deprecated = [
        ("modelset", lambda: con.modelset("m2", "onnx", "cpu", mf.onnx_mul()), "Use modelstore instead"),
        ("modelrun", lambda: con.modelrun("m", ["a", "b"], "c"), "Use modelexecute instead"),
        ("scriptset", lambda: con.scriptset("s", "cpu", OLD_SCRIPT), "Use scriptstore instead"),
        ("scriptrun", lambda: con.scriptrun("s", "bar", ["a", "b"], "d"), "Use scriptexecute instead"),
    ]
    for name, call, reason in deprecated:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert call() == "OK"
        warning = _warned(record, DeprecationWarning)
        assert str(warning.message) == f"Call to deprecated method {name}. ({reason}) -- Deprecated since version 1.2.0."
        assert warning.filename == __file__

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        dag = con.dag()
    assert issubclass(record[-1].category, DeprecationWarning)
    assert str(record[-1].message) == ("Creating Dag without any of LOAD, PERSIST and ROUTING argumentsis allowed "
                                       "only in deprecated AI.DAGRUN or AI.DAGRUN_RO commands")
    with pytest.raises(RuntimeError) as error:
        dag.modelexecute("m", ["a", "b"], ["c"])
    assert str(error.value) == ("You are using deprecated version of DAG, that does not supports MODELEXECUTE.The new "
                                "version requires giving at least one of LOAD, PERSIST and ROUTINGarguments when "
                                "constructing the Dag")
    with pytest.raises(RuntimeError) as error:
        dag.scriptexecute("s", "bar", inputs=["a", "b"], outputs=["c"])
    assert "does not supports SCRIPTEXECUTE.The new version" in str(error.value)
    dag.tensorset("a", [2, 3], dtype="float").tensorset("b", [12, 10], dtype="float")  # AI.DAGRUN has no LOAD
    for name, call, reason in [("modelrun", lambda: dag.modelrun("m", ["a", "b"], "c"), "Use modelexecute instead"),
                               ("run", lambda: dag.tensorget("c").run(), "Use execute instead")]:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            call()
        warning = _warned(record, DeprecationWarning)
        assert str(warning.message) == f"Call to deprecated method {name}. ({reason}) -- Deprecated since version 1.2.0."
    with pytest.raises(RuntimeError) as error:
        con.dag(load="a", readonly=True).scriptexecute("s", "bar", inputs=["a", "b"], outputs=["c"])
    assert str(error.value) == "AI.SCRIPTEXECUTE cannot be used in readonly mode"
    with pytest.raises(RuntimeError, match="^READONLY requests cannot write"):
        con.dag(persist="x", readonly=True)
    for scan, text in ((con.modelscan, "Model"), (con.scriptscan, "Script")):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            scan()
        assert str(_warned(record, UserWarning).message) == (
            f"Experimental: {text} List API is experimental and might change in the future without any notice")


def test_client_side_errors_are_redisai_pys(con):
    blob = mf.onnx_mul()
    expected = [
        (lambda: con.modelstore(None, "onnx", "cpu", blob), ValueError, "Model name was not given"),
        (lambda: con.modelstore("m", "onnx", "wrongdevice", blob), ValueError, "Device not allowed. Use any from "),
        (lambda: con.modelstore("m", "wrongbackend", "cpu", blob), ValueError, "Backend not allowed. Use any from "),
        (lambda: con.modelstore("m", "onnx", "cpu", blob, minbatch=2), ValueError,
         "Minbatch is not allowed without batch"),
        (lambda: con.modelstore("m", "onnx", "cpu", blob, batch=4, minbatchtimeout=1000), ValueError,
         "Minbatchtimeout is not allowed without minbatch"),
        (lambda: con.modelstore("m", "tf", "cpu", blob), ValueError,
         "Require keyword arguments inputs and outputs for TF models"),
        (lambda: con.modelstore("m", "torch", "cpu", blob, inputs=["a"], outputs=["b"]), ValueError,
         "Inputs and outputs keywords should not be specified for this backend"),
        (lambda: con.modelexecute("m", inputs=None, outputs=None), ValueError,
         "Missing required arguments for model execute command"),
        (lambda: con.scriptstore("s", "cpu", SCRIPT, entry_points=None), ValueError,
         "Missing required arguments for script store command"),
        (lambda: con.scriptstore("s", "cpu", script=None, entry_points="f"), ValueError,
         "Missing required arguments for script store command"),
        (lambda: con.scriptexecute("s", function=None, keys=None, inputs=None), ValueError,
         "Missing required arguments for script execute command"),
        (lambda: con.tensorset("x", (2, 3), dtype="wrongtype"), TypeError, "``wrongtype`` is not supported by RedisAI"),
        (lambda: con.tensorset("x", (2, 3)), TypeError, "tensorset() missing argument 'dtype' or value of 'dtype' is None"),
        (lambda: con.tensorset("x", "text"), TypeError, "``tensor`` argument must be a numpy array or a list or a tuple"),
        (lambda: con.tensorset("x"), TypeError, None),
    ]
    for call, error, text in expected:
        with pytest.raises(error) as raised:
            call()
        if text is not None:
            assert str(raised.value).startswith(text), str(raised.value)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="^Device not allowed"):
        con.modelset("m", "tf", "wrongdevice", blob, inputs=["a"], outputs=["b"])
    with pytest.raises(ResponseError) as raised:  # server errors as redis-py raises them, the text as RedisAI's
        con.scriptexecute("test", "bar", inputs=["a"], outputs=["c"])
    assert str(raised.value) == "script key is empty"
    with pytest.raises(ResponseError) as raised:
        con.config("non-existing", "val")
    assert str(raised.value) == "unsupported subcommand"


def test_tensors_as_redisai_py_users_set_them(con):
    assert con.tensorset("x", (2, 3, 4, 5), dtype="float") == "OK"
    assert con.tensorget("x", as_numpy=False) == {"dtype": "FLOAT", "shape": [4], "values": [2.0, 3.0, 4.0, 5.0]}
    for dtype, rai in (("float64", "DOUBLE"), ("int16", "INT16"), ("int8", "INT8"), ("uint8", "UINT8"),
                       ("int64", "INT64"), ("bool", "BOOL"), ("double", "DOUBLE"), ("int32", "INT32")):
        values = (1, 1, 0, 0) if dtype == "bool" else (2, 3, 4, 5)
        con.tensorset("x", values, dtype=dtype, shape=(2, 2))
        result = con.tensorget("x", as_numpy=False)
        assert result == {"dtype": rai, "shape": [2, 2], "values": list(values)}
        assert all(type(v) is (float if rai == "DOUBLE" else int) for v in result["values"])
    con.tensorset("x", (12, "a", "G", "four"), dtype="str", shape=(2, 2))
    assert con.tensorget("x", as_numpy=False) == {"dtype": "STRING", "shape": [2, 2], "values": ["12", "a", "G", "four"]}
    assert con.tensorget("x", meta_only=True) == {"dtype": "STRING", "shape": [2, 2]}

    for array in (np.array([2, 3], dtype=np.float32), np.array([2, 3], dtype=np.float64), np.array([True, False]),
                  np.array([2, 3]), np.array(["a", "bb", "⚓⚓⚓", "d♻d♻"]).reshape((2, 2))):
        assert con.tensorset("x", array) == "OK"
        got = con.tensorget("x")
        assert got.dtype == array.dtype and got.shape == array.shape and np.array_equal(got, array)
    with pytest.raises(ValueError):  # read-only unless as_numpy_mutable, as in redisai-py
        np.put(con.tensorget("x", as_numpy=True), 0, "z")
    mutable = con.tensorget("x", as_numpy_mutable=True)
    np.put(mutable, 0, "z")
    assert mutable[0, 0] == "z"
    # a numpy array ignores shape and dtype, as in redisai-py
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert con.tensorset("img", tensor=image, shape=(4, 3), dtype="UINT8") == "OK"
    assert con.tensorget("img").shape == (3, 4)


def test_models_as_redisai_py_users_store_them(con):
    graph = mf.tf_mul_graph()
    assert con.modelstore("m", "tf", "cpu", graph, inputs=["a", "b"], outputs=["c"], tag="v1.0") == "OK"
    assert con.modelget("m", meta_only=True) == {"backend": "TF", "batchsize": 0, "device": "cpu",
                                                 "inputs": ["a", "b"], "minbatchsize": 0, "minbatchtimeout": 0,
                                                 "outputs": ["c"], "tag": "v1.0"}
    full = con.modelget("m")
    assert full["blob"] == graph and type(full["batchsize"]) is int
    assert con.modelstore("m", "tf", "cpu:1", graph, inputs=["a", "b"], outputs="c") == "OK"  # device with an id
    nonascii = "ĉ"
    assert con.modelstore("m" + nonascii, "tf", "cpu", graph, inputs=["a", "b"], outputs=["c"]) == "OK"
    con.tensorset("a" + nonascii, (2, 3), dtype="float")
    con.tensorset("b", (2, 3), dtype="float")
    assert con.modelexecute("m" + nonascii, ["a" + nonascii, "b"], "c" + nonascii) == "OK"  # outputs: one name
    assert np.allclose(con.tensorget("c" + nonascii), [4.0, 9.0])
    with pytest.raises(ResponseError) as raised:
        con.modelstore("m", "tf", "cpu", mf.torch_add_mul(), inputs=["a", "b"], outputs=["c"])
    assert str(raised.value) == "Invalid GraphDef"
    assert con.modeldel("m") == "OK"
    with pytest.raises(ResponseError):
        con.modelget("m")


def test_config_as_redisai_py(new_server):
    con = Client(port=new_server().port)
    assert con.config("MODEL_CHUNK_SIZE") == 511 * 1024 * 1024
    default_path = con.config("BACKENDSPATH")
    assert isinstance(default_path, str)
    assert con.config("BACKENDSPATH", "my/backends/path") == "OK"
    assert con.config("BACKENDSPATH") == "my/backends/path"
    assert con.config("BACKENDSPATH", default_path) == "OK"
    assert con.config("MODEL_CHUNK_SIZE", 1024) == "OK" and con.config("MODEL_CHUNK_SIZE") == 1024
    with pytest.raises(ResponseError) as raised:
        con.config("MODEL_CHUNK_SIZE", "not-a-number")
    assert str(raised.value) == "MODEL_CHUNK_SIZE: invalid chunk size"
    assert con.config("non-existing") is None
    con.close()


def test_dags_as_redisai_py_users_build_them(con):
    con.modelstore("pt", "torch", "cpu", mf.torch_add_mul(), tag="v7.0")
    con.tensorset("a", [2, 3, 2, 3], shape=(2, 2), dtype="float")
    con.tensorset("b", [2, 3, 2, 3], shape=(2, 2), dtype="float")
    expected = np.array([[6.0, 12.0], [6.0, 12.0]], dtype=np.float32)  # a * b + a
    # LOAD as one name, ops chained on the return value
    result = con.dag(load="a").tensorset("c", [2, 3, 2, 3], shape=(2, 2), dtype="float").modelexecute(
        "pt", ["a", "c"], ["out"]).tensorget("out").execute()
    assert result[:2] == ["OK", "OK"] and np.allclose(result[2], expected)
    assert not con.exists("c", "out")
    # LOAD as a list, PERSIST as one name; the same Dag runs twice
    dag = con.dag(load=["a", "b"], persist="out")
    dag.modelexecute("pt", ["a", "b"], ["out"]).tensorget("out")
    for _ in range(2):
        result = dag.execute()
        assert result[0] == "OK" and np.allclose(result[1], expected)
    assert np.allclose(con.tensorget("out"), expected)
    # a PERSIST key no op writes, a LOAD key that does not exist: the server's errors
    with pytest.raises(ResponseError):
        con.dag(persist="wrongkey").tensorset("x", [1], dtype="float").execute()
    with pytest.raises(ResponseError) as raised:
        con.dag(load="wrongkey").tensorget("wrongkey").execute()
    assert str(raised.value) == "tensor key is empty or in a different shard"
    # read-only
    result = con.dag(load=["a", "b"], readonly=True).modelexecute("pt", ["a", "b"], ["o"]).tensorget("o").execute()
    assert result[0] == "OK" and np.allclose(result[1], expected)
    # deprecated AI.DAGRUN: tensorset / modelrun / tensorget, run()
    with pytest.warns(DeprecationWarning):
        dag = con.dag()
        dag.tensorset("x", [2, 3, 2, 3], shape=(2, 2), dtype="float").tensorset("y", [2, 3, 2, 3], shape=(2, 2),
                                                                                dtype="float")
        dag.modelrun("pt", ["x", "y"], ["z"]).tensorget("z")
        result = dag.run()
    assert result[:3] == ["OK", "OK", "OK"] and np.allclose(result[3], expected)
    assert dag.commands[0] == "AI.DAGRUN" and dag.commands[-1] == "|>"  # as redisai-py builds it


# --- cluster -------------------------------------------------------------------------------------

def test_cluster_client(cluster):
    con = ClusterClient(host="127.0.0.1", port=cluster[0].port)
    assert isinstance(con, redis.cluster.RedisCluster)
    for node in con.get_nodes():  # no socket timeout: a store or run waits as long as the server takes
        assert node.redis_connection.connection_pool.connection_kwargs.get("socket_timeout") is None
    blob = mf.onnx_mul()
    for tag in ("u1", "u2", "u3"):  # three tags: more than one shard is used
        m, a, c = (f"{name}{{{tag}}}" for name in ("m", "a", "c"))
        assert con.tensorset(a, np.array([2, 3], dtype=np.float32)) == "OK"
        assert con.modelstore(m, "ONNX", "CPU", blob, tag=tag) == "OK"
        assert con.modelexecute(m, [a, a], c) == "OK"
        assert con.tensorget(c).tolist() == [4.0, 9.0]
        assert con.modelget(m, meta_only=True)["tag"] == tag
        assert con.infoget(m)["calls"] == 1
        dag = con.dag(load=a, persist=f"p{{{tag}}}").modelexecute(m, [a, a], f"p{{{tag}}}").tensorget(f"p{{{tag}}}")
        assert dag.execute()[1].tolist() == [4.0, 9.0]
        assert con.tensorget(f"p{{{tag}}}", as_numpy=False)["values"] == [4.0, 9.0]
    owners = {con.get_node_from_key(f"m{{{tag}}}").name for tag in ("u1", "u2", "u3")}
    assert len(owners) > 1
    assert con.scriptstore("s{u1}", "CPU", SCRIPT, "f") == "OK"
    assert con.scriptexecute("s{u1}", "f", inputs="a{u1}", outputs="o{u1}") == "OK"
    assert con.tensorget("o{u1}").tolist() == [4.0, 6.0]
    assert con.scriptget("s{u1}")["entry points"] == [b"f"]
    routed = con.dag(routing="{u2}").tensorset("t", [1, 2], dtype="float").modelexecute("m{u2}", ["t", "t"], "v")
    assert routed.tensorget("v").execute()[2].tolist() == [1.0, 4.0]
    with pytest.raises(RedisClusterException):  # keys of different slots in one command
        con.modelexecute("m{u1}", ["a{u2}", "a{u1}"], "c{u1}")
    with pytest.raises(ResponseError, match="^model key is empty$"):
        con.modelget("nothing{u3}")
    # AI.CONFIG goes to every primary
    assert con.config("MODEL_CHUNK_SIZE", 123456) == "OK"
    assert {node.client().execute_command("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") for node in cluster} == {123456}
    assert con.config("MODEL_CHUNK_SIZE") == 123456
    assert con.loadbackend("ONNX", "redisai_onnxruntime/redisai_onnxruntime.so") == "OK"
    with pytest.warns(UserWarning):
        assert sorted(con.modelscan()) == [["m{u1}", "u1"], ["m{u2}", "u2"], ["m{u3}", "u3"]]
    pipe = con.pipeline()
    pipe.tensorset("q{u1}", [7], dtype="int32").tensorget("q{u1}").tensorget("c{u2}", meta_only=True)
    pipe.modelexecute("m{u3}", ["a{u3}", "a{u3}"], "r{u3}").tensorget("r{u3}")
    result = pipe.execute()
    assert result[0] == b"OK" and result[1].tolist() == [7] and result[2] == {"dtype": "FLOAT", "shape": [2]}
    assert result[3] == b"OK" and result[4].tolist() == [4.0, 9.0]
    with pytest.raises(RuntimeError):
        pipe.dag(load="a{u1}")
    con.close()
