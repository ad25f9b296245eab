"""redisai.asyncio.Client: redisai.Client's methods on redis.asyncio, against a real server.

pytest-asyncio is not a dependency: each test runs its coroutine with asyncio.run.
"""

import asyncio
import warnings

import model_fixtures as mf
import numpy as np
import pytest
import redis
import redis.asyncio
from redis.exceptions import ResponseError

import redisai.asyncio as rai_async
from redisai.asyncio import Client, Dag, Pipeline

SCRIPT = "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    return tensors[0] * 2.0\n"
OLD_SCRIPT = "def bar(a, b):\n    return a + b\n"


def run(test, server, **kwargs):
    """Runs ``await test(client)`` with a fresh client of the shared server, then closes it."""
    async def main():
        client = Client(port=server.port, socket_timeout=120, **kwargs)
        try:
            return await test(client)
        finally:
            await client.aclose()
    return asyncio.run(main())


def test_client_is_a_redis_asyncio_client(r, server):
    async def test(con):
        assert isinstance(con, redis.asyncio.Redis)
        assert con.connection_pool.connection_kwargs["protocol"] == 2
        assert await con.set("plain", "v") and await con.get("plain") == b"v"
        assert await con.tensorset("x", np.array([1, 2], dtype=np.float32)) == "OK"
        # methods are plain functions returning a coroutine: nothing is sent until it is awaited
        pending = con.tensorset("y", [1], dtype="int8")
        assert asyncio.iscoroutine(pending) and await con.exists("y") == 0
        assert await pending == "OK" and await con.exists("y") == 1
        url = Client.from_url(f"redis://127.0.0.1:{server.port}/0")
        assert url.connection_pool.connection_kwargs["protocol"] == 2
        assert (await url.tensorget("x")).tolist() == [1.0, 2.0]
        await url.aclose()
        resp3 = Client(port=server.port, protocol=3)
        assert await resp3.tensorget("x", as_numpy=False) == {"dtype": "FLOAT", "shape": [2], "values": [1.0, 2.0]}
        await resp3.aclose()
    run(test, server)


def test_positional_debug_and_postprocess(r, server, capsys):
    async def test():
        loud = Client(True, port=server.port)
        assert await loud.tensorset("t", (2, 3, 4, 5), dtype="float") == "OK"
        assert capsys.readouterr().out.splitlines() == ["AI.TENSORSET t FLOAT 4 VALUES 2 3 4 5"]
        with pytest.raises(ResponseError):
            await loud.modelstore("m", "onnx", "cpu", b"no model")
        assert capsys.readouterr().out.splitlines() == ["AI.CONFIG GET MODEL_CHUNK_SIZE",
                                                        "AI.MODELSTORE m onnx cpu BLOB b'no model'"]
        raw = Client(False, False, port=server.port)
        assert await raw.tensorset("u", [3], dtype="int8") == b"OK"
        assert await raw.tensorget("u", as_numpy=False) == [b"dtype", b"INT8", b"shape", [1], b"values", [3]]
        assert await raw.dag(load="u").tensorget("u", meta_only=True).execute() == [{"dtype": "INT8", "shape": [1]}]
        for client in (loud, raw):
            await client.aclose()
        with pytest.raises(TypeError):  # redis.asyncio.Redis takes its own arguments by keyword only
            Client(False, True, "127.0.0.1")
    asyncio.run(test())


def test_tensors(r, server):
    async def test(con):
        array = np.arange(6, dtype=np.int16).reshape(2, 3)
        assert await con.tensorset("a", array) == "OK"
        got = await con.tensorget("a")
        assert got.dtype == np.int16 and got.tolist() == array.tolist() and not got.flags.writeable
        assert (await con.tensorget("a", as_numpy_mutable=True)).flags.writeable
        assert await con.tensorget("a", meta_only=True) == {"dtype": "INT16", "shape": [2, 3]}
        assert await con.tensorset("v", [1, 2.5, 3, 4], shape=(2, 2), dtype="float") == "OK"
        assert await con.tensorget("v", as_numpy=False) == {"dtype": "FLOAT", "shape": [2, 2],
                                                            "values": [1.0, 2.5, 3.0, 4.0]}
        await con.tensorset("s", np.array(["ab", "⚓"]))
        assert (await con.tensorget("s")).tolist() == ["ab", "⚓"]
        with pytest.raises(TypeError):
            await con.tensorset("x", [1, 2])
        with pytest.raises(ResponseError, match="^tensor key is empty or in a different shard$"):
            await con.tensorget("missing")
        await con.set("str", "x")
        with pytest.raises(ResponseError, match="^WRONGTYPE"):
            await con.tensorget("str")
    run(test, server)


def test_models(r, server):
    async def test(con):
        blob = mf.onnx_mul()
        assert await con.modelstore("m", "ONNX", "CPU", blob, tag="v1") == "OK"
        meta = await con.modelget("m", meta_only=True)
        assert meta == {"backend": "ONNX", "device": "CPU", "tag": "v1", "batchsize": 0, "minbatchsize": 0,
                        "inputs": ["a", "b"], "outputs": ["c"], "minbatchtimeout": 0}
        assert (await con.modelget("m"))["blob"] == blob
        await con.tensorset("a", np.array([2, 3], dtype=np.float32))
        await con.tensorset("b", np.array([12, 10], dtype=np.float32))
        assert await con.modelexecute("m", ["a", "b"], "c", timeout=10_000) == "OK"
        assert (await con.tensorget("c")).tolist() == [24.0, 30.0]
        with pytest.warns(DeprecationWarning):
            assert await con.modelrun("m", ["b", "a"], ["d"]) == "OK"
        assert (await con.tensorget("d")).tolist() == [24.0, 30.0]
        graph = mf.tf_mul_graph()
        with pytest.warns(DeprecationWarning):
            assert await con.modelset("tf", "TF", "CPU", graph, inputs=["a", "b"], outputs="c") == "OK"
        assert (await con.modelget("tf", meta_only=True))["outputs"] == ["c"]
        assert await con.modelstore("tf2", "TF", "CPU", graph, batch=4, minbatch=2, minbatchtimeout=10,
                                    inputs=["a", "b"], outputs=["c"]) == "OK"
        meta = await con.modelget("tf2", meta_only=True)
        assert (meta["batchsize"], meta["minbatchsize"], meta["minbatchtimeout"]) == (4, 2, 10)
        with pytest.warns(UserWarning):
            assert sorted(await con.modelscan()) == [["m", "v1"], ["tf", ""], ["tf2", ""]]
        # the server's chunks come back as a list, as from redisai.Client
        assert await con.config("MODEL_CHUNK_SIZE", 100) == "OK"
        try:
            assert await con.modelstore("m", "ONNX", "CPU", blob) == "OK"
            chunks = (await con.modelget("m"))["blob"]
            assert isinstance(chunks, list) and b"".join(chunks) == blob
        finally:
            await con.config("MODEL_CHUNK_SIZE", 511 * 1024 * 1024)
        assert await con.modeldel("m") == "OK"
        with pytest.raises(ResponseError, match="^model key is empty$"):
            await con.modelget("m")
        with pytest.raises(ValueError, match="^Backend not allowed"):
            await con.modelstore("m", "CAFFE", "CPU", blob)
        with pytest.raises(ResponseError):
            await con.modelstore("m", "ONNX", "CPU", b"not a model")
    run(test, server)


def test_scripts_info_config(r, server):
    async def test(con):
        assert await con.scriptstore("s", "CPU", SCRIPT, "f", tag="t") == "OK"
        assert await con.scriptget("s") == {"device": "CPU", "tag": "t", "entry points": [b"f"], "source": SCRIPT}
        assert await con.scriptget("s", meta_only=True) == {"device": "CPU", "tag": "t", "entry points": [b"f"]}
        await con.tensorset("a", [1, 2], dtype="float")
        assert await con.scriptexecute("s", "f", keys="a", inputs="a", args=["1"], outputs="b", timeout=10_000) == "OK"
        assert (await con.tensorget("b")).tolist() == [2.0, 4.0]
        with pytest.warns(DeprecationWarning):
            assert await con.scriptset("old", "CPU", OLD_SCRIPT) == "OK"
        with pytest.warns(DeprecationWarning):
            assert await con.scriptrun("old", "bar", ["a", "b"], "c") == "OK"
        assert (await con.tensorget("c")).tolist() == [3.0, 6.0]
        with pytest.warns(UserWarning):
            assert sorted(await con.scriptscan()) == [["old", ""], ["s", "t"]]
        info = await con.infoget("s")
        assert info == {"key": "s", "type": "SCRIPT", "backend": "TORCH", "device": "CPU", "tag": "t",
                        "duration": info["duration"], "samples": -1, "calls": 1, "errors": 0}
        assert await con.inforeset("s") == "OK" and (await con.infoget("s"))["calls"] == 0
        assert await con.scriptdel("s") == "OK"
        with pytest.raises(ResponseError, match="^script key is empty$"):
            await con.scriptget("s")
        with pytest.raises(ResponseError, match="^cannot find run info for key$"):
            await con.infoget("s")
        assert isinstance(await con.config("BACKENDSPATH"), str)
        assert await con.config("MODEL_CHUNK_SIZE") == 511 * 1024 * 1024
        assert await con.config("NOTHING") is None
        assert await con.loadbackend("ONNX", "redisai_onnxruntime/redisai_onnxruntime.so") == "OK"
        with pytest.raises(ResponseError, match="^unsupported backend$"):
            await con.loadbackend("CAFFE", "x.so")
    run(test, server)


def test_dag(r, server):
    async def test(con):
        await con.modelstore("m", "ONNX", "CPU", mf.onnx_mul())
        await con.scriptstore("s", "CPU", SCRIPT, "f")
        await con.tensorset("a", np.array([2, 3], dtype=np.float32))
        dag = con.dag(load="a", persist=["out"], timeout=10_000)
        assert isinstance(dag, Dag) and dag.tensorset("t", [1, 2], dtype="float") is dag
        dag.modelexecute("m", ["a", "t"], "c").scriptexecute("s", "f", inputs="c", outputs="out")
        dag.tensorget("out").tensorget("c", as_numpy=False).tensorget("t", meta_only=True)
        result = await dag.execute()
        assert result[:3] == ["OK", "OK", "OK"] and result[3].tolist() == [4.0, 12.0]
        assert result[4] == {"dtype": "FLOAT", "shape": [2], "values": [2.0, 6.0]}
        assert result[5] == {"dtype": "FLOAT", "shape": [2]}
        assert (await con.tensorget("out")).tolist() == [4.0, 12.0] and await con.exists("c", "t") == 0
        ro = con.dag(load="a", readonly=True).modelexecute("m", ["a", "a"], "y").tensorget("y")
        assert (await ro.execute())[1].tolist() == [4.0, 9.0]
        with pytest.warns(DeprecationWarning):
            old = con.dag()
        old.tensorset("x", [1, 2], dtype="float")
        with pytest.warns(DeprecationWarning):
            old.modelrun("m", ["x", "x"], "y").tensorget("y")
        with pytest.warns(DeprecationWarning):
            pending = old.run()
        result = await pending
        assert result[:2] == ["OK", "OK"] and result[2].tolist() == [1.0, 4.0]
        # errors: an op's error is raised (or left in the list), the DAG's own error raised
        await con.tensorset("three", [1, 2, 3], dtype="float")
        failing = con.dag(load=["a", "three"]).modelexecute("m", ["a", "three"], "c").tensorget("c")
        with pytest.raises(ResponseError):
            await failing.execute()
        result = await failing.execute(raise_on_error=False)
        assert isinstance(result[0], ResponseError) and result[1] == "NA"
        with pytest.raises(ResponseError, match="^tensor key is empty or in a different shard$"):
            await con.dag(load="missing").tensorget("missing").execute()
        with pytest.raises(RuntimeError):
            con.dag(load="a", persist="x", readonly=True)
    run(test, server)


def test_pipeline(r, server):
    async def test(con):
        await con.modelstore("m", "ONNX", "CPU", mf.onnx_mul())
        await con.tensorset("a", np.array([2, 3], dtype=np.float32))
        pipe = con.pipeline()
        assert isinstance(pipe, Pipeline) and isinstance(pipe, redis.asyncio.client.Pipeline)
        assert pipe.tensorset("p", np.arange(3, dtype=np.int32)) is pipe
        pipe.tensorget("p").tensorget("p", as_numpy=False).set("k", "v").get("k").modelget("m", meta_only=True)
        result = await pipe.execute()
        assert result[0] == b"OK" and result[1].tolist() == [0, 1, 2]  # status replies as in redisai-py's pipelines
        assert result[2] == {"dtype": "INT32", "shape": [3], "values": [0, 1, 2]}
        assert result[3:5] == [True, b"v"] and result[5]["inputs"] == ["a", "b"]
        async with con.pipeline(transaction=False) as pipe:
            pipe.modelexecute("m", ["a", "a"], "c").tensorget("c").tensorget("missing").infoget("m")
            result = await pipe.execute(raise_on_error=False)
        assert result[0] == b"OK" and result[1].tolist() == [4.0, 9.0]
        assert isinstance(result[2], ResponseError) and result[3]["calls"] == 1
        pipe = con.pipeline(transaction=True)
        pipe.modelexecute("m", ["a", "a"], "c")
        with pytest.raises(ResponseError, match="Cannot run RedisAI command within a transaction"):
            await pipe.execute()
        with pytest.raises(RuntimeError):
            con.pipeline().dag(load="a")
    run(test, server)


def test_concurrent_requests_share_the_pool(r, server):
    """What an async service does: many requests in flight at once on one client."""
    async def test(con):
        await con.modelstore("m", "ONNX", "CPU", mf.onnx_mul())

        async def request(i):
            x = np.array([i, i + 1], dtype=np.float32)
            result = await con.dag(persist=f"y{i}", routing=f"y{i}").tensorset(f"x{i}", x).modelexecute(
                "m", [f"x{i}", f"x{i}"], f"y{i}").tensorget(f"y{i}").execute()
            return result[2].tolist()

        results = await asyncio.gather(*(request(i) for i in range(32)))
        assert results == [[float(i * i), float((i + 1) ** 2)] for i in range(32)]
        assert len(con.connection_pool._available_connections) + len(con.connection_pool._in_use_connections) > 1
    run(test, server)


def test_module_exports():
    assert rai_async.__all__ == ["Client", "Dag", "Pipeline"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import redisai.asyncio  # noqa: F401  (imports without warnings)
