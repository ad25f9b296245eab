"""The ``redisai`` command-line tool (src/redisai/cli.py), in-process and as the console script."""

import os
import subprocess
import sys
from pathlib import Path

import model_fixtures as mf
import numpy as np
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from server import MODULE, ROOT, free_port, wait_for
from tqdm import tqdm

from redisai import cli

CONSOLE_SCRIPT = Path(sys.executable).parent / "redisai"
if not CONSOLE_SCRIPT.exists():  # e.g. run with a python that is not the venv's
    CONSOLE_SCRIPT = ROOT / ".venv" / "bin" / "redisai"

SCRIPT = """
def double(tensors: List[Tensor], keys: List[str], args: List[str]):
    return tensors[0] * 2

def add(a, b):
    return a + b
"""


@pytest.fixture
def run(server, r, capsys):
    """run(*argv) -> (exit status, stdout, stderr); -p <shared server port> is appended."""

    def run_cli(*argv, port=None):
        capsys.readouterr()
        status = cli.main([str(a) for a in argv] + ["-p", str(port or server.port)])
        out, err = capsys.readouterr()
        return status, out, err

    return run_cli


@pytest.fixture
def files(tmp_path):
    """Model files with the usual extensions."""
    onnx = tmp_path / "mul.onnx"
    onnx.write_bytes(mf.onnx_mul())
    torch = tmp_path / "add_mul.pt"
    torch.write_bytes(mf.torch_add_mul())
    return {"onnx": onnx, "torch": torch, "dir": tmp_path}


def big_onnx_model(path: Path, elements: int = 13_000_000) -> bytes:
    """A valid ~50 MB ONNX model: y = Gather(W, idx), W = arange(elements) as one float32 initializer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.arange(elements, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["W", "idx"], ["y"], axis=0, name="gather")],
        "big_gather",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", mf.ONNX_OPSET)])
    model.ir_version = mf.ONNX_IR_VERSION
    onnx.checker.check_model(model)
    blob = model.SerializeToString()
    path.write_bytes(blob)
    return blob


def model_blob(client, key) -> bytes:
    blob = client.execute_command("AI.MODELGET", key, "BLOB")
    return b"".join(blob) if isinstance(blob, list) else blob


def meta(client, key) -> dict:
    reply = client.execute_command("AI.MODELGET", key, "META")
    return {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------


def test_store_50mb_model_streams_in_chunks_with_progress(run, r, tmp_path):
    path = tmp_path / "big.onnx"
    blob = big_onnx_model(path)
    assert 50_000_000 <= len(blob) < 60_000_000

    status, out, err = run("model", "store", "big", path, "--chunk-size", "16M", "--tag", "large")
    assert (status, out) == (0, "OK\n"), err

    # The progress bar (tqdm on stderr) counts bytes read from the file and ends at 100 %; then a status
    # line shows the server's part (the build and warm-up).
    assert "big:" in err
    final = [line for line in err.replace("\r", "\n").splitlines() if "%" in line][-1]
    assert "big: building and warming up on the server" in err.split(final, 1)[1]
    total = tqdm.format_sizeof(len(blob), divisor=1024)  # "49.6M"
    assert "100%" in final and f"{total}/{total}" in final, final

    assert model_blob(r, "big") == blob
    assert meta(r, "big")["tag"] == b"large"

    # The stored model is valid and runs: Gather picks W[idx] = idx.
    r.execute_command("AI.TENSORSET", "idx", "INT64", 3, "VALUES", 0, 12_999_999, 42)
    assert r.execute_command("AI.MODELEXECUTE", "big", "INPUTS", 1, "idx", "OUTPUTS", 1, "y") == b"OK"
    assert [float(v) for v in r.execute_command("AI.TENSORGET", "y", "VALUES")] == [0.0, 12_999_999.0, 42.0]

    # model get -o writes the blob back, byte-identical.
    status, out, err = run("model", "get", "big", "-o", tmp_path / "back.onnx")
    assert status == 0, err
    assert (tmp_path / "back.onnx").read_bytes() == blob


def test_chunking_splits_blob_into_several_arguments(run, r, files, monkeypatch):
    sent = []
    original = cli._resp_header
    monkeypatch.setattr(cli, "_resp_header", lambda args, extra: sent.append((list(args), extra)) or original(args, extra))
    blob = files["onnx"].read_bytes()
    status, out, err = run("model", "store", "m", files["onnx"], "--chunk-size", "10", "--quiet")
    assert (status, out, err) == (0, "OK\n", "")  # --quiet: no progress bar
    head, chunk_count = sent[0]
    assert head == ["AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB"]
    assert chunk_count == -(-len(blob) // 10) > 1
    assert model_blob(r, "m") == blob


@pytest.mark.parametrize("name, backend", [
    ("m.onnx", "ONNX"), ("m.ONNX", "ONNX"), ("m.pt", "TORCH"), ("m.pth", "TORCH"), ("m.torchscript", "TORCH"),
    ("m.pb", "TF"), ("m.tflite", "TFLITE"), ("m.bin", None), ("model", None),
])
def test_backend_guessed_from_extension(name, backend):
    assert cli.guess_backend(name) == backend


def test_store_guesses_backend_and_override_wins(run, r, files):
    assert run("model", "store", "o", files["onnx"], "-q")[:2] == (0, "OK\n")
    assert run("model", "store", "t", files["torch"], "-q")[:2] == (0, "OK\n")
    assert meta(r, "o")["backend"] == b"ONNX"
    assert meta(r, "t")["backend"] == b"TORCH"

    # An ONNX model under a misleading name: --backend (case-insensitive) overrides the guess.
    odd = files["dir"] / "really_onnx.pt"
    odd.write_bytes(mf.onnx_mul())
    assert run("model", "store", "x", odd, "--backend", "onnx", "-q")[:2] == (0, "OK\n")
    assert meta(r, "x")["backend"] == b"ONNX"
    # Without the override the TORCH backend gets it and rejects it: the server's error, exit 1.
    status, out, err = run("model", "store", "y", odd, "-q")
    assert status == 1 and err.startswith("error: ") and out == ""
    assert r.exists("y") == 0

    # No extension to go by: a usage error, nothing sent.
    unknown = files["dir"] / "model.bin"
    unknown.write_bytes(mf.onnx_mul())
    status, out, err = run("model", "store", "z", unknown)
    assert status == 2 and "cannot guess the backend" in err and "--backend" in err
    assert run("model", "store", "z", unknown, "--backend", "ONNX", "-q")[:2] == (0, "OK\n")


def test_store_options_reach_the_server(run, r, files):
    status, out, err = run("model", "store", "b", files["onnx"], "--device", "cpu", "--tag", "v2", "--batch", 8,
                           "--minbatch", 2, "--minbatchtimeout", 50, "-q")
    assert status == 0, err
    m = meta(r, "b")
    assert (m["device"], m["tag"], m["batchsize"], m["minbatchsize"], m["minbatchtimeout"]) == (b"cpu", b"v2", 8, 2, 50)

    status, out, err = run("model", "get", "b")  # metadata by default, aligned
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["backend:", "ONNX"] and "inputs:          a, b" in lines
    assert len({line.index(line.split()[1]) for line in lines if len(line.split()) > 1}) == 1


def test_tf_needs_inputs_and_outputs(run, r, tmp_path):
    graph = tmp_path / "graph.pb"
    graph.write_bytes(b"not really a graph")
    status, out, err = run("model", "store", "tf", graph, "--inputs", "a")
    assert status == 2 and out == "" and "--inputs and --outputs" in err
    assert r.exists("tf") == 0
    # --inputs/--outputs on another backend: passed through, the server refuses.
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(mf.onnx_mul())
    status, _, err = run("model", "store", "o", onnx, "--inputs", "a", "b", "--outputs", "c", "-q")
    assert (status, err) == (1, "error: INPUTS argument should not be specified for this backend\n")


def test_model_del_and_missing_model(run, r, files):
    run("model", "store", "m", files["onnx"], "-q")
    assert run("model", "del", "m")[:2] == (0, "OK\n")
    status, out, err = run("model", "get", "m", "-o", files["dir"] / "x")
    assert (status, out, err) == (1, "", "error: model key is empty\n")
    assert not (files["dir"] / "x").exists()


# ---------------------------------------------------------------------------------------------
# scripts
# ---------------------------------------------------------------------------------------------


def test_script_store_with_and_without_entry_points(run, r, tmp_path):
    source = tmp_path / "script.py"
    source.write_text(SCRIPT)
    assert run("script", "store", "s", source, "--tag", "t1", "--entry-points", "double")[:2] == (0, "OK\n")
    reply = r.execute_command("AI.SCRIPTGET", "s", "META")
    assert reply == [b"device", b"CPU", b"tag", b"t1", b"Entry Points", [b"double"]]

    assert run("script", "store", "legacy", source)[:2] == (0, "OK\n")  # AI.SCRIPTSET
    r.execute_command("AI.TENSORSET", "a", "FLOAT", 2, "VALUES", 1, 2)
    assert r.execute_command("AI.SCRIPTRUN", "legacy", "add", "INPUTS", "a", "a", "OUTPUTS", "b") == b"OK"
    assert r.execute_command("AI.TENSORGET", "b", "VALUES") == [b"2", b"4"]

    status, out, err = run("script", "get", "s")
    assert status == 0 and "Entry Points: double" in out and "return tensors[0] * 2" in out
    status, out, err = run("script", "store", "bad", source, "--entry-points", "nope")
    assert (status, err) == (1, "error: Function nope does not exist in the given script.\n")


# ---------------------------------------------------------------------------------------------
# tensors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, ai_type", [
    ("float32", "FLOAT"), ("float64", "DOUBLE"), ("int8", "INT8"), ("int16", "INT16"), ("int32", "INT32"),
    ("int64", "INT64"), ("uint8", "UINT8"), ("uint16", "UINT16"), ("bool", "BOOL"),
])
def test_tensor_npy_round_trip(run, r, tmp_path, dtype, ai_type):
    rng = np.random.default_rng(1)
    if dtype == "bool":
        array = rng.integers(0, 2, size=(3, 4, 2)).astype(bool)
    elif dtype.startswith("float"):
        array = rng.standard_normal((3, 4, 2)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=(3, 4, 2), endpoint=True, dtype=dtype)
    np.save(tmp_path / "in.npy", array)
    assert run("tensor", "set", "t", tmp_path / "in.npy")[:2] == (0, "OK\n")
    assert r.execute_command("AI.TENSORGET", "t", "META") == [b"dtype", ai_type.encode(), b"shape", [3, 4, 2]]

    assert run("tensor", "get", "t", "-o", tmp_path / "out.npy")[:2] == (0, "")
    back = np.load(tmp_path / "out.npy")
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_tensor_set_non_native_order_and_views(run, r, tmp_path):
    big_endian = np.arange(6, dtype=">i4").reshape(2, 3)
    np.save(tmp_path / "be.npy", big_endian)
    assert run("tensor", "set", "be", tmp_path / "be.npy")[0] == 0
    assert r.execute_command("AI.TENSORGET", "be", "VALUES") == [0, 1, 2, 3, 4, 5]

    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.save(tmp_path / "f.npy", fortran)
    assert run("tensor", "set", "f", tmp_path / "f.npy")[0] == 0
    assert r.execute_command("AI.TENSORGET", "f", "VALUES") == [b"0", b"1", b"2", b"3", b"4", b"5"]


def test_tensor_get_prints_and_unsupported_dtypes(run, r, tmp_path):
    r.execute_command("AI.TENSORSET", "t", "FLOAT", 2, 2, "VALUES", 1, 2, 3, 4.5)
    status, out, err = run("tensor", "get", "t")
    assert status == 0
    assert out == "dtype: FLOAT\nshape: [2, 2]\nvalues:\n[[1. , 2. ],\n [3. , 4.5]]\n"

    for bad in (np.array([1 + 2j]), np.array([1, 2], dtype=np.uint32), np.array(["a"]), np.float32(1.0)):
        np.save(tmp_path / "bad.npy", bad)
        status, out, err = run("tensor", "set", "bad", tmp_path / "bad.npy")
        assert status == 1 and err.startswith("error: ") and out == "", (bad, err)
    assert r.exists("bad") == 0

    r.execute_command("AI.TENSORSET", "big", "INT32", 2000, "VALUES", *range(2000))
    status, out, err = run("tensor", "get", "big")
    assert status == 0 and out.startswith("dtype: INT32\nshape: [2000]\nvalues:\n[   0,    1,")
    assert "..." in out and out.endswith("(2000 values, summarized; -o FILE.npy writes them all)\n")

    status, out, err = run("tensor", "get", "missing")
    assert (status, err) == (1, "error: tensor key is empty or in a different shard\n")


# ---------------------------------------------------------------------------------------------
# info, ls
# ---------------------------------------------------------------------------------------------


def test_info_key_and_server(run, r, files):
    run("model", "store", "m", files["onnx"], "-q", "--tag", "tg")
    status, out, err = run("info", "m")
    assert (status, err) == (0, "")
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert {k: v.strip() for k, v in fields.items() if k in ("key", "type", "backend", "tag", "calls")} == \
        {"key": "m", "type": "MODEL", "backend": "ONNX", "tag": "tg", "calls": "0"}
    value_columns = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in out.splitlines()}
    assert len(value_columns) == 1  # aligned

    status, out, _ = run("info")
    assert status == 0 and "# ai_versions" in out and "ai_RedisAI_version:" in out

    assert run("info", "nothing") == (1, "", "error: cannot find run info for key\n")


def test_ls_by_type_and_pattern(run, r, files, tmp_path):
    run("model", "store", "model:a", files["onnx"], "-q")
    run("model", "store", "model:b", files["torch"], "-q")
    r.execute_command("AI.TENSORSET", "tensor:x", "FLOAT", 1, "VALUES", 1)
    r.execute_command("AI.TENSORSET", "model:tensor", "FLOAT", 1, "VALUES", 1)
    r.execute_command("AI.SCRIPTSET", "script:s", "CPU", "SOURCE", SCRIPT)
    r.set("plain", "value")
    for i in range(1500):  # more than one SCAN page
        r.set(f"filler:{i}", i)

    listing = "model\tmodel:a\nmodel\tmodel:b\nscript\tscript:s\ntensor\tmodel:tensor\ntensor\ttensor:x\n"
    assert run("ls") == (0, listing, "")
    assert run("ls", "--type", "model")[1] == "model\tmodel:a\nmodel\tmodel:b\n"
    assert run("ls", "--type", "tensor", "--match", "model:*")[1] == "tensor\tmodel:tensor\n"
    assert run("ls", "--type", "script")[1] == "script\tscript:s\n"
    assert run("ls", "--match", "nothing*") == (0, "", "")


# ---------------------------------------------------------------------------------------------
# connection flags, errors
# ---------------------------------------------------------------------------------------------


def test_connection_refused_names_host_and_port(capsys):
    port = free_port()
    assert cli.main(["ls", "--host", "127.0.0.1", "-p", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"127.0.0.1:{port}" in err and "refused" in err
    assert cli.main(["info", "-u", f"redis://127.0.0.1:{port}/0"]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_wrong_type_is_a_server_error(run, r, files):
    r.set("s", "x")
    status, out, err = run("tensor", "get", "s")
    assert status == 1 and out == "" and err.startswith("error: WRONGTYPE")
    status, _, err = run("model", "store", "s", files["onnx"], "-q")
    assert status == 1 and err.startswith("error: WRONGTYPE")


def test_usage_errors(capsys):
    assert cli.main(["--help"]) == 0
    assert "model" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert cli.main(["model", "store", "k"]) == 2  # missing FILE
    assert cli.main(["ls", "--type", "queue"]) == 2
    assert cli.main(["model", "store", "k", "f.onnx", "--chunk-size", "0"]) == 2
    capsys.readouterr()
    assert cli.main(["model", "store", "k", "/nonexistent/f.onnx"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_url_db_and_password(new_server, capsys, tmp_path):
    secured = new_server("secured")
    port = secured.port
    secured.client().config_set("requirepass", "s3cret")
    try:
        np.save(tmp_path / "a.npy", np.ones(3, dtype=np.float32))
        assert cli.main(["tensor", "set", "a", str(tmp_path / "a.npy"), "-p", str(port), "--password", "s3cret",
                         "-n", "3"]) == 0
        assert cli.main(["ls", "-u", f"redis://:s3cret@127.0.0.1:{port}/3"]) == 0
        assert cli.main(["ls", "-u", f"redis://:s3cret@127.0.0.1:{port}/3", "-n", "0"]) == 0  # -n wins over /3
        assert cli.main(["ls", "-u", f"redis://default:s3cret@127.0.0.1:{port}", "-n", "3", "--type", "tensor"]) == 0
        assert capsys.readouterr().out == "OK\ntensor\ta\ntensor\ta\n"

        assert cli.main(["ls", "-p", str(port)]) == 2  # no password
        assert cli.main(["ls", "-p", str(port), "--user", "default", "--password", "wrong"]) == 2
        err = capsys.readouterr().err
        assert err.count(f"error: authentication failed at 127.0.0.1:{port}") == 2, err
    finally:
        redis.Redis(port=port, password="s3cret").config_set("requirepass", "")  # so the fixture can stop it


def test_connection_options_before_or_after_the_subcommand(server, r, capsys, tmp_path):
    """redis-cli's habit (`redisai -p 7000 ls`) and the subcommand's (`redisai ls -p 7000`) both work."""
    port = str(server.port)
    r.execute_command("AI.TENSORSET", "t", "INT8", 2, "VALUES", 1, 2)
    capsys.readouterr()
    for argv in (["-p", port, "ls"], ["ls", "-p", port], ["-h", "127.0.0.1", "-p", port, "ls"],
                 ["--host", "127.0.0.1", "ls", "--port", port], ["-p", "1", "ls", "-p", port],  # after wins
                 ["-u", f"redis://127.0.0.1:{port}/0", "ls"], ["-n", "0", "-p", port, "ls", "--type", "tensor"],
                 ["-p", port, "tensor", "get", "t", "-o", str(tmp_path / "t.npy")]):
        assert cli.main(argv) == 0, argv
    assert capsys.readouterr().out == "tensor\tt\n" * 7
    assert np.load(tmp_path / "t.npy").tolist() == [1, 2]
    assert cli.main(["tensor", "-p", port, "get", "t"]) == 0  # between the two words too
    assert "values:\n[1, 2]" in capsys.readouterr().out
    assert cli.main(["-p", port, "-n", "1", "ls"]) == 0 and capsys.readouterr().out == ""  # -n before: db 1
    # an option after the subcommand wins over the same one before it
    assert cli.main(["-p", port, "ls", "-p", str(free_port())]) == 2
    assert "refused" in capsys.readouterr().err
    parser = cli.build_parser()
    args = parser.parse_args(["-h", "h", "-p", "1", "-a", "pw", "--user", "u", "--tls", "-n", "4", "ls"])
    assert cli._connection_kwargs(args) == {"host": "h", "port": 1, "password": "pw", "username": "u", "db": 4,
                                            "ssl": True}
    args = parser.parse_args(["--host", "h", "--tls", "model", "get", "k", "-a", "pw2", "--host", "h2"])
    assert cli._connection_kwargs(args) == {"host": "h2", "port": 6379, "password": "pw2", "username": None,
                                            "db": 0, "ssl": True}
    assert cli._connection_kwargs(parser.parse_args(["ls"])) == {"host": "127.0.0.1", "port": 6379, "password": None,
                                                                "username": None, "db": 0}
    # -h is the host (as in redis-cli): help is --help
    assert cli.main(["--help"]) == 0 and "connection" in capsys.readouterr().out
    assert cli.main(["tensor", "get", "--help"]) == 0 and "-h HOST, --host HOST" in capsys.readouterr().out
    assert cli.main(["-h"]) == 2
    assert cli.main(["-p", "x", "ls"]) == 2  # not a number: a usage error, as before


def test_password_option_before_the_subcommand(new_server, capsys):
    secured = new_server("secured")
    secured.client().config_set("requirepass", "s3cret")
    try:
        assert cli.main(["-p", str(secured.port), "-a", "s3cret", "ls"]) == 0
        assert cli.main(["-p", str(secured.port), "--user", "default", "-a", "s3cret", "info"]) == 0
        assert cli.main(["-a", "wrong", "ls", "-p", str(secured.port)]) == 2
        assert "authentication failed" in capsys.readouterr().err
    finally:
        redis.Redis(port=secured.port, password="s3cret").config_set("requirepass", "")


def test_connection_kwargs():
    parser = cli.build_parser()
    args = parser.parse_args(["ls", "--host", "h", "-p", "1", "--password", "pw", "--user", "u", "--tls", "-n", "4"])
    assert cli._connection_kwargs(args) == {"host": "h", "port": 1, "password": "pw", "username": "u", "db": 4,
                                            "ssl": True}
    args = parser.parse_args(["ls", "-p", "1", "--password", "pw", "-u", "rediss://x:9/2"])
    assert cli._connection_kwargs(args) == {"host": "x", "port": 9, "password": "pw", "username": None, "db": 2,
                                            "ssl": True}
    args = parser.parse_args(["ls", "-u", "unix:///tmp/r.sock?db=5"])
    kwargs = cli._connection_kwargs(args)
    assert kwargs["unix_socket_path"] == "/tmp/r.sock" and kwargs["db"] == 5 and "host" not in kwargs


# ---------------------------------------------------------------------------------------------
# server subcommand, console script
# ---------------------------------------------------------------------------------------------


def test_server_command_line(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(os, "execvp", lambda file, argv: calls.append(argv))
    assert cli.main(["server", "--port", "7000", "--dir", str(tmp_path / "d"), "--module-arg", "THREADS_PER_QUEUE",
                     "2", "--module-arg", "MODEL_CHUNK_SIZE", "1024", "--", "--save", "", "--appendonly", "yes"]) == 0
    argv = calls[0]
    assert Path(argv[0]).name == "redis-server"
    # 127.0.0.1 unless told: a server reachable from the network is the user's choice
    assert argv[1:] == ["--port", "7000", "--bind", "127.0.0.1", "--dir", str(tmp_path / "d"), "--loadmodule",
                        str(MODULE.resolve()),
                        "THREADS_PER_QUEUE", "2", "MODEL_CHUNK_SIZE", "1024", "--save", "", "--appendonly", "yes"]
    assert (tmp_path / "d").is_dir()
    assert cli.default_module_path().resolve() == MODULE.resolve()

    assert cli.main(["server", "--module", str(tmp_path / "missing.so")]) == 1
    assert len(calls) == 1

    # the listening options before the subcommand too, and redis-cli's short forms
    assert cli.main(["-p", "7001", "-h", "127.0.0.1", "-a", "pw", "server", "--", "--save", ""]) == 0
    assert calls[1][1:] == ["--port", "7001", "--bind", "127.0.0.1", "--requirepass", "pw", "--loadmodule",
                            str(MODULE.resolve()), "--save", ""]
    assert cli.main(["-p", "7001", "server", "-p", "7002"]) == 0 and calls[2][1:3] == ["--port", "7002"]
    assert cli.main(["server"]) == 0 and calls[3][1:5] == ["--port", "6379", "--bind", "127.0.0.1"]
    assert cli.main(["server", "-h", "0.0.0.0"]) == 0 and calls[4][3:5] == ["--bind", "0.0.0.0"]
    assert cli.main(["--tls", "server"]) == 2  # client options mean nothing to the server
    assert "--tls apply to client commands only" in capsys.readouterr().err
    assert cli.main(["--socket-timeout", "3", "server"]) == 2
    assert len(calls) == 5


def test_console_script_end_to_end(tmp_path, files):
    """The installed `redisai` script: `server` execs redis-server; then client subcommands against it."""
    assert CONSOLE_SCRIPT.exists(), CONSOLE_SCRIPT
    port = free_port()
    data = tmp_path / "data"
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "server", "--port", str(port), "--host", "127.0.0.1", "--dir", str(data),
         "--module-arg", "THREADS_PER_QUEUE", "2", "--", "--save", "", "--logfile", str(tmp_path / "log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # poll without redis-py's backoff; a generous timeout on a loaded machine (redis-py's default is 5 s)
    client = redis.Redis(port=port, protocol=2, retry=Retry(NoBackoff(), 0), socket_timeout=120)
    try:
        def up():
            assert process.poll() is None, (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
            try:
                return client.ping()
            except redis.ConnectionError:
                return False
        wait_for(up, timeout=30, message="redisai server")
        assert client.info("ai")["ai_threads_per_queue"] == 2
        assert client.config_get("dir")["dir"] == str(data.resolve())

        def redisai(*argv):
            return subprocess.run([str(CONSOLE_SCRIPT), *map(str, argv), "-p", str(port)], check=False,
                                  capture_output=True, text=True, timeout=60)

        done = redisai("model", "store", "m", files["onnx"], "--chunk-size", "32")
        assert (done.returncode, done.stdout) == (0, "OK\n"), done.stderr
        assert "100%" in done.stderr  # the bar shows on a pipe too
        assert model_blob(client, "m") == files["onnx"].read_bytes()

        np.save(tmp_path / "a.npy", np.arange(4, dtype=np.int16).reshape(2, 2))
        assert redisai("tensor", "set", "a", tmp_path / "a.npy").returncode == 0
        assert redisai("tensor", "get", "a", "-o", tmp_path / "b.npy").returncode == 0
        np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.arange(4, dtype=np.int16).reshape(2, 2))
        done = redisai("ls")
        assert (done.returncode, done.stdout) == (0, "model\tm\ntensor\ta\n")
        done = subprocess.run([str(CONSOLE_SCRIPT), "-p", str(port), "ls"], capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout) == (0, "model\tm\ntensor\ta\n"), done.stderr
        done = redisai("info", "nope")
        assert (done.returncode, done.stderr) == (1, "error: cannot find run info for key\n")
        done = subprocess.run([str(CONSOLE_SCRIPT), "ls", "-p", str(free_port())], check=False,
                              capture_output=True, text=True)
        assert done.returncode == 2 and "refused" in done.stderr
    finally:
        try:
            client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0
